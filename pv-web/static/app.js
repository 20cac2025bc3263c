// PentaVision admin UI behaviour: the toast component and small page actions.
"use strict";

(function () {
  const TOAST_VISIBLE_MS = 10000;

  /** Field names that server messages may start with ("main_url: …"), in words. */
  const FIELD_WORDS = {
    main_url: "Main stream address", sub_url: "Sub-stream address", snapshot_url: "Snapshot address",
    new_password: "New password", display_name: "Display name", mmdb_path: "Country database file",
  };

  /** A message written for people: no Markdown backticks, no leading field path
   * (`main_url: …` → "Main stream address: …"), no trailing field path in brackets. */
  function humanMessage(message) {
    let m = String(message == null ? "" : message).trim();
    m = m.replace(/^([a-z][a-z0-9]*(?:[._][a-z0-9]+)+|[a-z]+\[\d+\](?:\.[a-z_]+)*): /, function (_, field) {
      if (FIELD_WORDS[field]) return FIELD_WORDS[field] + ": ";
      const last = field.split(/[.\]]/).filter(Boolean).pop().replace(/\[\d+$/, "");
      const words = last.replace(/_/g, " ");
      return words.charAt(0).toUpperCase() + words.slice(1) + ": ";
    });
    m = m.replace(/`([^`]*)`/g, "\u201c$1\u201d").replace(/`/g, "");
    return m;
  }

  /** Move the toast stack off the focused control: it sits bottom-right (top on phones, see
   * app.css) and flips to the other edge (`toasts--flip`) when it would cover the element
   * that has focus. */
  function placeToasts() {
    const box = document.getElementById("toasts");
    if (!box) return;
    box.classList.remove("toasts--flip");
    const focused = document.activeElement;
    if (!focused || focused === document.body || !box.firstElementChild) return;
    const overlaps = function () {
      const a = box.getBoundingClientRect(), b = focused.getBoundingClientRect();
      return a.left < b.right && b.left < a.right && a.top < b.bottom && b.top < a.bottom;
    };
    if (overlaps()) {
      box.classList.add("toasts--flip");
      if (overlaps()) box.classList.remove("toasts--flip");
    }
  }

  function dismiss(el) {
    if (el.dataset.closing) return;
    el.dataset.closing = "1";
    el.classList.add("toast--fading");
    setTimeout(function () { el.remove(); placeToasts(); }, 700);
  }

  /** Show a message bottom-right (green, black text); it fades after 10 seconds. `level` is
   * `info`, `warn` or `error`; a warning or an error has an icon and the title "Warning" or
   * "Error"; every toast has a dismiss button. The toast's text content
   * is the message alone (icon, title and × are drawn by CSS). */
  function toast(message, level) {
    const box = document.getElementById("toasts");
    if (!box) return null;
    const el = document.createElement("div");
    el.className = "toast" + (level === "error" ? " toast--error" : level === "warn" ? " toast--warn" : "");
    el.setAttribute("role", level === "error" || level === "warn" ? "alert" : "status");
    const text = document.createElement("span");
    text.className = "toast__text";
    text.textContent = humanMessage(message);
    el.appendChild(text);
    const close = document.createElement("button");
    close.type = "button";
    close.className = "toast__close";
    close.setAttribute("aria-label", "Dismiss");
    close.title = "Dismiss";
    close.addEventListener("click", function () { dismiss(el); });
    el.appendChild(close);
    box.appendChild(el);
    placeToasts();
    setTimeout(function () {
      el.classList.add("toast--fading");
      setTimeout(function () { el.remove(); placeToasts(); }, 700);
    }, TOAST_VISIBLE_MS);
    return el;
  }
  document.addEventListener("focusin", placeToasts);

  // Client-side checks (required fields, lengths, patterns) report through the same toasts
  // instead of the browser's bubble: one toast per submit, naming the field by its label.
  let lastInvalidAt = 0;
  document.addEventListener("invalid", function (e) {
    const field = e.target;
    e.preventDefault();
    const now = Date.now();
    if (now - lastInvalidAt < 500) return;
    lastInvalidAt = now;
    const label = field.labels && field.labels[0] ? field.labels[0].textContent.replace(/\s*\(.*\)\s*$/, "").trim() : "";
    toast((label ? label + ": " : "") + field.validationMessage, "error");
    field.focus();
  }, true);

  /** One formatter for every time on every page: the user's time zone, named ("5 Dec 2026,
   * 09:12:03 CET"). `value` is an ISO 8601 string, a Date or epoch milliseconds. */
  const TIME_FORMAT = new Intl.DateTimeFormat(undefined, {
    year: "numeric", month: "short", day: "numeric", hour: "2-digit", minute: "2-digit",
    second: "2-digit", timeZoneName: "short",
  });
  function formatTime(value) {
    if (value == null || value === "") return "";
    const d = value instanceof Date ? value : new Date(value);
    return isNaN(d.getTime()) ? String(value) : TIME_FORMAT.format(d);
  }
  /** The user's time zone as IANA name ("Europe/Paris"). */
  const TIME_ZONE = Intl.DateTimeFormat().resolvedOptions().timeZone || "local time";

  /** Read a problem+json (or any) error response into a human message. */
  async function errorMessage(response) {
    try {
      const body = await response.json();
      if (body && body.detail) return body.detail;
    } catch (_) { /* not JSON */ }
    return "Request failed with status " + response.status;
  }

  /** "3d 4h", "5m 12s", … (the same format the server renders). */
  function humanDuration(seconds) {
    const d = Math.floor(seconds / 86400), h = Math.floor(seconds / 3600) % 24,
      m = Math.floor(seconds / 60) % 60, s = seconds % 60;
    if (d > 0) return d + "d " + h + "h";
    if (h > 0) return h + "h " + m + "m";
    if (m > 0) return m + "m " + s + "s";
    return s + "s";
  }

  async function refreshStatus() {
    try {
      const response = await fetch("/api/v1/system", { headers: { Accept: "application/json" } });
      if (!response.ok) { toast(await errorMessage(response), "error"); return; }
      const info = await response.json();
      const ready = info.databases.filter(function (d) { return d.reachable; }).length;
      const uptime = document.querySelector("[data-field=uptime]");
      if (uptime) uptime.textContent = humanDuration(info.uptime_seconds);
      const memory = document.querySelector("[data-field=memory]");
      if (memory && info.resident_memory_bytes) {
        memory.textContent = (info.resident_memory_bytes / 1048576).toFixed(1) + " MiB";
      }
      toast("Status refreshed: " + ready + " of " + info.databases.length + " databases ready.",
        ready === info.databases.length ? "info" : "error");
    } catch (e) {
      toast("Cannot reach the server: " + e.message, "error");
    }
  }


  // ---- Sign-out (sign-in, enrolment and the security page live in signin.js) ----

  /** Sign out, then the sign-in page says so. */
  async function logout() {
    try {
      await fetch("/api/v1/auth/logout", {
        method: "POST", headers: { Accept: "application/json" }, credentials: "same-origin",
      });
    } catch (_) { /* signed out already, or the server is gone: the sign-in page tells */ }
    window.location.assign("/login?signed_out=1");
  }

  // The user menu (a <details> in the top bar) closes on Escape and on a click elsewhere.
  document.addEventListener("click", function (e) {
    document.querySelectorAll("details.user-menu[open]").forEach(function (menu) {
      if (!menu.contains(e.target)) menu.open = false;
    });
  });
  document.addEventListener("keydown", function (e) {
    if (e.key !== "Escape") return;
    document.querySelectorAll("details.user-menu[open]").forEach(function (menu) {
      menu.open = false;
      menu.querySelector("summary").focus();
    });
  });

  document.addEventListener("DOMContentLoaded", function () {
    const initial = document.getElementById("pv-initial-toasts");
    if (initial) {
      try {
        JSON.parse(initial.textContent || "[]").forEach(function (t) { toast(t.message, t.level); });
      } catch (_) { /* malformed data block: nothing to show */ }
    }
    document.querySelectorAll("[data-action=refresh-status]").forEach(function (b) {
      b.addEventListener("click", refreshStatus);
    });
    const on = function (action, type, fn) {
      document.querySelectorAll("[data-action=" + action + "]").forEach(function (el) {
        el.addEventListener(type, fn);
      });
    };
    on("logout", "click", logout);
  });

  // ---- API calls with CSRF tokens (shared by the pages' scripts) ----

  /** The page's JSON data block (`#pv-page`), if it has one. */
  const pageData = (function () {
    try { return JSON.parse((document.getElementById("pv-page") || {}).textContent || "{}"); } catch (_) { return {}; }
  })();
  const tokens = pageData.csrf || {};

  /** The route a CSRF token is bound to: the path under /api/v1, numeric segments as {id}. */
  function routeOf(url) {
    const path = url.split("?")[0].replace(/^\/api\/v1/, "");
    return "/" + path.split("/").filter(Boolean).map(function (s) { return /^\d+$/.test(s) ? "{id}" : s; }).join("/");
  }

  /** A token for `route`: the page's while it has 30 s left (`v1.<expiry>.<mac>`), else a fresh
   * one from GET /api/v1/auth/csrf. */
  async function csrfToken(route) {
    const have = tokens[route];
    const expiry = have ? Number(have.split(".")[1]) || 0 : 0;
    if (expiry - Date.now() / 1000 > 30) return have;
    const r = await fetch("/api/v1/auth/csrf?route=" + encodeURIComponent(route), {
      headers: { Accept: "application/json" }, credentials: "same-origin",
    });
    if (!r.ok) throw new Error(await errorMessage(r));
    tokens[route] = (await r.json()).token;
    return tokens[route];
  }

  /** Call the REST API; writes carry the CSRF token of their route. Resolves with the JSON
   * body (null when empty); rejects with the problem's detail. */
  async function api(method, url, body) {
    const headers = { Accept: "application/json" };
    if (body !== undefined) headers["Content-Type"] = "application/json";
    if (method !== "GET") headers["X-CSRF-Token"] = await csrfToken(routeOf(url));
    const response = await fetch(url, {
      method: method, headers: headers, credentials: "same-origin",
      body: body === undefined ? undefined : JSON.stringify(body),
    });
    if (!response.ok) throw new Error(await errorMessage(response));
    const text = await response.text();
    return text ? JSON.parse(text) : null;
  }

  // ---- Layout: the collapsing navigation and tables as cards on narrow screens ----

  /** The menu button (narrow screens): opens and closes the navigation; Escape or a click
   * elsewhere closes it. */
  function setupMenu() {
    const button = document.querySelector("[data-action=menu-toggle]");
    const bar = document.querySelector(".topbar");
    if (!button || !bar) return;
    const set = function (open) {
      bar.classList.toggle("nav-open", open);
      button.setAttribute("aria-expanded", open ? "true" : "false");
    };
    button.addEventListener("click", function (e) {
      e.stopPropagation();
      set(!bar.classList.contains("nav-open"));
    });
    document.addEventListener("keydown", function (e) {
      if (e.key === "Escape" && bar.classList.contains("nav-open")) { set(false); button.focus(); }
    });
    document.addEventListener("click", function (e) {
      if (bar.classList.contains("nav-open") && !bar.contains(e.target)) set(false);
    });
  }

  /** Label every cell of `.table` with its column heading (`data-label`), so that narrow
   * screens can show each row as a card ("Actor: Thalia"). Rows rendered later by the pages'
   * scripts are labelled as they arrive. */
  function labelTables() {
    document.querySelectorAll("table.table").forEach(function (table) {
      const heads = Array.prototype.map.call(table.querySelectorAll("thead th"), function (th) {
        return th.querySelector(".visually-hidden") ? "" : th.textContent.trim();
      });
      table.querySelectorAll("tbody tr").forEach(function (tr) {
        Array.prototype.forEach.call(tr.children, function (td, i) {
          if (td.colSpan > 1) return;
          const label = heads[i] || "";
          if (td.getAttribute("data-label") !== label) td.setAttribute("data-label", label);
        });
      });
    });
  }

  /** Times rendered by the server (`<time datetime>`) in the user's time zone, and the zone
   * named wherever a page says which zone its times are in (`[data-field=time-zone]`). */
  function localTimes() {
    document.querySelectorAll("time[datetime]").forEach(function (t) {
      t.textContent = formatTime(t.getAttribute("datetime"));
    });
    const short = (TIME_FORMAT.formatToParts(new Date()).find(function (p) { return p.type === "timeZoneName"; }) || {}).value;
    document.querySelectorAll("[data-field=time-zone]").forEach(function (el) {
      el.textContent = TIME_ZONE + (short && short !== TIME_ZONE ? " (" + short + ")" : "");
    });
  }

  document.addEventListener("DOMContentLoaded", function () {
    setupMenu();
    localTimes();
    labelTables();
    let queued = false;
    new MutationObserver(function () {
      if (queued) return;
      queued = true;
      requestAnimationFrame(function () { queued = false; labelTables(); });
    }).observe(document.getElementById("main") || document.body, { childList: true, subtree: true });
  });

  /** Navigation links shown only to holders of a permission (`data-needs`, hidden until the
   * signed-in user's permissions say so). */
  async function revealNeeded() {
    const links = document.querySelectorAll("#main-nav [data-needs][hidden]");
    if (!links.length) return;
    try {
      const r = await fetch("/api/v1/auth/me", { headers: { Accept: "application/json" }, credentials: "same-origin" });
      if (!r.ok) return;
      const me = await r.json();
      const held = new Set(me.permissions || []);
      (me.properties || []).forEach(function (g) { (g.permissions || []).forEach(function (p) { held.add(p); }); });
      links.forEach(function (a) { if (held.has(a.dataset.needs)) a.hidden = false; });
    } catch (_) { /* offline: the links stay hidden */ }
  }
  document.addEventListener("DOMContentLoaded", revealNeeded);

  window.pv = {
    toast: toast, api: api, page: pageData, formatTime: formatTime, timeZone: TIME_ZONE,
    humanMessage: humanMessage, csrfToken: function (url) { return csrfToken(routeOf(url)); },
    errorMessage: errorMessage,
  };
})();
