// PentaVision admin UI behaviour: the toast component and small page actions.
"use strict";

(function () {
  const TOAST_VISIBLE_MS = 10000;

  /** Show a message bottom-right (green, black text); it fades after 10 seconds. */
  function toast(message, level) {
    const box = document.getElementById("toasts");
    if (!box) return null;
    const el = document.createElement("div");
    el.className = "toast" + (level === "error" ? " toast--error" : "");
    el.setAttribute("role", level === "error" ? "alert" : "status");
    el.textContent = message;
    box.appendChild(el);
    setTimeout(function () {
      el.classList.add("toast--fading");
      setTimeout(function () { el.remove(); }, 700);
    }, TOAST_VISIBLE_MS);
    return el;
  }

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


  // ---- Sign-in, passkeys and TOTP enrolment ----

  function b64urlToBuf(s) {
    const pad = "=".repeat((4 - (s.length % 4)) % 4);
    const bin = atob((s + pad).replace(/-/g, "+").replace(/_/g, "/"));
    const out = new Uint8Array(bin.length);
    for (let i = 0; i < bin.length; i++) out[i] = bin.charCodeAt(i);
    return out.buffer;
  }

  function bufToB64url(buf) {
    const bytes = new Uint8Array(buf);
    let bin = "";
    for (let i = 0; i < bytes.length; i++) bin += String.fromCharCode(bytes[i]);
    return btoa(bin).replace(/\+/g, "-").replace(/\//g, "_").replace(/=+$/, "");
  }

  async function postJson(url, body) {
    const response = await fetch(url, {
      method: "POST",
      headers: { "Content-Type": "application/json", Accept: "application/json" },
      body: JSON.stringify(body || {}),
      credentials: "same-origin",
    });
    if (!response.ok) throw new Error(await errorMessage(response));
    const text = await response.text();
    return text ? JSON.parse(text) : {};
  }

  function afterSignIn(result) {
    window.location.assign(result.stage === "enrol" ? "/enrol" : "/");
  }

  async function passkeyLogin() {
    try {
      const start = await postJson("/api/v1/auth/passkeys/login/start");
      const pk = start.options.publicKey;
      pk.challenge = b64urlToBuf(pk.challenge);
      (pk.allowCredentials || []).forEach(function (c) { c.id = b64urlToBuf(c.id); });
      const cred = await navigator.credentials.get({ publicKey: pk });
      const credential = {
        id: cred.id,
        rawId: bufToB64url(cred.rawId),
        type: cred.type,
        extensions: cred.getClientExtensionResults ? cred.getClientExtensionResults() : {},
        response: {
          authenticatorData: bufToB64url(cred.response.authenticatorData),
          clientDataJSON: bufToB64url(cred.response.clientDataJSON),
          signature: bufToB64url(cred.response.signature),
          userHandle: cred.response.userHandle ? bufToB64url(cred.response.userHandle) : null,
        },
      };
      afterSignIn(await postJson("/api/v1/auth/passkeys/login/finish",
        { ceremony_id: start.ceremony_id, credential: credential }));
    } catch (e) {
      toast("Passkey sign-in failed: " + e.message, "error");
    }
  }

  async function passwordLogin(event) {
    event.preventDefault();
    const form = event.target;
    const codeRow = document.getElementById("code-row");
    const body = { username: form.username.value, password: form.password.value };
    if (codeRow && !codeRow.hidden && form.code.value) body.code = form.code.value;
    try {
      afterSignIn(await postJson("/api/v1/auth/login", body));
    } catch (e) {
      if (/authenticator app/.test(e.message) && codeRow && codeRow.hidden) {
        codeRow.hidden = false;
        form.code.focus();
      }
      toast(e.message, "error");
    }
  }

  async function passkeyRegister() {
    try {
      const start = await postJson("/api/v1/auth/passkeys/register/start");
      const pk = start.options.publicKey;
      pk.challenge = b64urlToBuf(pk.challenge);
      pk.user.id = b64urlToBuf(pk.user.id);
      (pk.excludeCredentials || []).forEach(function (c) { c.id = b64urlToBuf(c.id); });
      const cred = await navigator.credentials.create({ publicKey: pk });
      const credential = {
        id: cred.id,
        rawId: bufToB64url(cred.rawId),
        type: cred.type,
        extensions: cred.getClientExtensionResults ? cred.getClientExtensionResults() : {},
        response: {
          attestationObject: bufToB64url(cred.response.attestationObject),
          clientDataJSON: bufToB64url(cred.response.clientDataJSON),
        },
      };
      const name = (document.getElementById("passkey-name") || {}).value || "Passkey";
      await postJson("/api/v1/auth/passkeys/register/finish",
        { ceremony_id: start.ceremony_id, credential: credential, name: name });
      toast("Passkey created.", "info");
      setTimeout(function () { window.location.assign("/"); }, 600);
    } catch (e) {
      toast("Passkey registration failed: " + e.message, "error");
    }
  }

  async function totpStart() {
    try {
      const pw = document.getElementById("new-password");
      if (pw) {
        await postJson("/api/v1/auth/password", { new_password: pw.value });
        pw.disabled = true;
      }
      const t = await postJson("/api/v1/auth/totp/start");
      const qr = document.getElementById("totp-qr");
      const img = document.createElement("img");
      img.alt = "QR code for your authenticator app";
      img.src = "data:image/svg+xml;base64," + btoa(t.qr_svg);
      qr.replaceChildren(img);
      qr.hidden = false;
      const secret = document.getElementById("totp-secret");
      secret.textContent = "Or enter this key: " + t.secret;
      secret.hidden = false;
    } catch (e) {
      toast(e.message, "error");
    }
  }

  async function totpConfirm(event) {
    event.preventDefault();
    try {
      const r = await postJson("/api/v1/auth/totp/confirm",
        { code: document.getElementById("totp-code").value });
      const list = document.getElementById("recovery-list");
      list.replaceChildren();
      r.recovery_codes.forEach(function (c) {
        const li = document.createElement("li");
        li.textContent = c;
        list.appendChild(li);
      });
      document.getElementById("totp-form").hidden = true;
      document.getElementById("recovery").hidden = false;
      toast("Authenticator app enrolled.", "info");
    } catch (e) {
      toast(e.message, "error");
    }
  }

  async function logout() {
    try {
      await postJson("/api/v1/auth/logout");
    } catch (_) { /* signed out already */ }
    window.location.assign("/login");
  }

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
    on("passkey-login", "click", passkeyLogin);
    on("password-login", "submit", passwordLogin);
    on("passkey-register", "click", passkeyRegister);
    on("totp-start", "click", totpStart);
    on("logout", "click", logout);
    const totpForm = document.getElementById("totp-form");
    if (totpForm) totpForm.addEventListener("submit", totpConfirm);
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

  window.pv = { toast: toast, api: api, page: pageData };
})();
