// PentaVision Storage Modules Manager (/storage): the storage modules on the left, the details of
// one on the right (Overview, Configuration, Streams, Logs, Advanced), the Add Storage Provider
// wizard, safe disable and delete, and the status bar. Talks to /api/v1/storage/ only; a test
// runs with fetch and never reloads the page or loses what was typed. Provider forms come from
// the provider's template (sanitised) completed from its field list.
"use strict";

(function () {
  const page = window.pv.page;
  const api = window.pv.api;
  const toast = function (m, l) { return window.pv.toast(m, l); };
  const canManage = !!page.can_manage;
  const BASE = "/api/v1/storage";
  const POLL_MS = 10000;

  const CATEGORIES = [
    ["object_storage", "Object storage"],
    ["cloud_drive", "Cloud drives"],
    ["network", "Network protocols"],
    ["local", "Local and on-premises"],
  ];
  const STATUS_WORDS = { healthy: "Healthy", degraded: "Degraded", failing: "Failing", disabled: "Disabled" };
  const PLACEHOLDERS = [
    ["provider", "provider id"], ["module", "module name"], ["camera", "camera name"], ["camera_id", "camera number"],
    ["year", "year"], ["month", "month"], ["day", "day"], ["hour", "hour"], ["minute", "minute"], ["second", "second"],
    ["date", "date (YYYY-MM-DD)"], ["segment", "segment file name"], ["segment_id", "segment number"],
    ["stream_id", "stream id"], ["ext", "file extension"],
  ];
  const DEFAULT_TEMPLATE = "{provider}/{camera}/{year}/{month}/{day}/{segment}.mp4";

  const state = {
    providers: [], byId: {}, notices: [], modules: [], selected: null, tab: "overview",
    queue: null, health: {}, draft: null, logs: [], logFilter: { level: "", q: "", stream: "" },
  };

  // ---- Small helpers ----

  function el(tag, attrs, children) {
    const e = document.createElement(tag);
    if (attrs) {
      Object.keys(attrs).forEach(function (k) {
        const v = attrs[k];
        if (v == null || v === false) return;
        if (k === "class") e.className = v;
        else if (k === "text") e.textContent = v;
        else if (k.slice(0, 2) === "on" && typeof v === "function") e.addEventListener(k.slice(2), v);
        else e.setAttribute(k, v === true ? "" : v);
      });
    }
    (children || []).forEach(function (c) {
      if (c == null) return;
      e.appendChild(c instanceof Node ? c : document.createTextNode(String(c)));
    });
    return e;
  }
  function btn(label, fn, cls, attrs) {
    const b = el("button", Object.assign({ type: "button", class: "btn " + (cls || "btn-small") }, attrs || {}), [label]);
    if (fn) b.addEventListener("click", fn);
    return b;
  }
  function humanBytes(n) {
    if (n == null || isNaN(n)) return "—";
    const units = ["bytes", "KB", "MB", "GB", "TB"];
    let i = 0, v = Number(n);
    while (v >= 1000 && i < units.length - 1) { v /= 1000; i++; }
    return (i === 0 ? String(Math.round(v)) : v.toFixed(v < 10 ? 2 : 1)) + " " + units[i];
  }
  function ago(value) {
    if (!value) return "never";
    const t = new Date(value).getTime();
    if (isNaN(t)) return "never";
    const s = Math.max(0, Math.round((Date.now() - t) / 1000));
    if (s < 45) return "just now";
    if (s < 3600) return Math.round(s / 60) + " min ago";
    if (s < 86400) return Math.round(s / 3600) + " h ago";
    return Math.round(s / 86400) + " days ago";
  }
  function timeEl(value, text) {
    if (!value) return el("span", { text: text || "never" });
    return el("time", { datetime: value, title: window.pv.formatTime(value), "data-rel": "1" }, [text || ago(value)]);
  }
  function statusEl(status, draining) {
    const s = STATUS_WORDS[status] ? status : "disabled";
    return el("span", { class: "st-status st-" + s }, [el("span", { class: "st-dot", "aria-hidden": "true" }),
      STATUS_WORDS[s] + (draining ? " (draining)" : "")]);
  }
  function duration(ms) {
    if (ms == null) return "—";
    const s = Math.round(ms / 1000);
    return s < 60 ? s + " s" : Math.floor(s / 60) + " min " + (s % 60) + " s";
  }
  /** A server message as a sentence for people: no field paths or backticks, a capital first. */
  function sentence(message) {
    const m = window.pv.humanMessage(message);
    return m.charAt(0).toUpperCase() + m.slice(1);
  }
  function plural(n, one, many) { return n + " " + (n === 1 ? one : many); }
  function download(name, type, text) {
    const a = el("a", { href: URL.createObjectURL(new Blob([text], { type: type })), download: name });
    document.body.appendChild(a);
    a.click();
    setTimeout(function () { URL.revokeObjectURL(a.href); a.remove(); }, 1000);
  }
  function providerName(id) { const p = state.byId[id]; return p ? p.name : id; }
  function moduleById(id) { return state.modules.find(function (m) { return m.id === id; }) || null; }

  // ---- Icons: one inline SVG per icon key (stroke drawings in the accent colour) ----

  const GLYPHS = {
    bucket: "M4 6c0-1.7 3.6-3 8-3s8 1.3 8 3-3.6 3-8 3-8-1.3-8-3zM4 6l1.8 13c.2 1.2 2.9 2 6.2 2s6-.8 6.2-2L20 6",
    cloud: "M7 18h10a4 4 0 0 0 .6-8 6 6 0 0 0-11.4 1.4A3.3 3.3 0 0 0 7 18z",
    hex: "M12 2l8.7 5v10L12 22l-8.7-5V7zM12 7.5l4 2.3v4.4l-4 2.3-4-2.3V9.8z",
    azure: "M10.5 3L4 19h5l6.5-16zM13 9l-3 8h10z",
    server: "M4 4h16v6H4zM4 14h16v6H4zM7 7h.01M7 17h.01",
    folder: "M3 6.5A1.5 1.5 0 0 1 4.5 5H10l2 2.5h7.5A1.5 1.5 0 0 1 21 9v9.5a1.5 1.5 0 0 1-1.5 1.5h-15A1.5 1.5 0 0 1 3 18.5z",
    drive: "M3 13l3-8h12l3 8v5a1 1 0 0 1-1 1H4a1 1 0 0 1-1-1zM3 13h18M16.5 16h.01",
    globe: "M12 3a9 9 0 1 0 0 18 9 9 0 0 0 0-18zM3 12h18M12 3c2.5 2.5 3.8 5.5 3.8 9s-1.3 6.5-3.8 9c-2.5-2.5-3.8-5.5-3.8-9S9.5 5.5 12 3z",
    transfer: "M4 8h13l-3-3M20 16H7l3 3",
    lock: "M6 11h12v9H6zM8.5 11V8a3.5 3.5 0 0 1 7 0v3",
    network: "M12 3v5M5 16v-3h14v3M12 8v5M9 3h6v5H9zM2 16h6v5H2zM16 16h6v5h-6z",
    box: "M3 7.5L12 3l9 4.5v9L12 21l-9-4.5zM3 7.5L12 12l9-4.5M12 12v9",
    diamond: "M7 3l5 3.2L7 9.4 2 6.2zM17 3l5 3.2-5 3.2-5-3.2zM2 12.6l5-3.2 5 3.2-5 3.2zM12 12.6l5-3.2 5 3.2-5 3.2zM7 17l5-3.2 5 3.2-5 3.2z",
    mega: "M12 3a9 9 0 1 0 0 18 9 9 0 0 0 0-18zM8 16V8.5l4 4 4-4V16",
    container: "M3 8l9-5 9 5v8l-9 5-9-5zM3 8l9 5 9-5M12 13v8M7.5 5.5l9 5",
    flame: "M12 21c-4 0-6.5-2.6-6.5-6 0-4 4-6 3.5-11 3 1.5 5 4.5 5 7 1-1 1.5-2.5 1.5-3.5 2 2 3 4.5 3 7 0 3.8-2.5 6.5-6.5 6.5z",
  };
  const ICON_GLYPH = {
    s3: "bucket", r2: "flame", wasabi: "bucket", do: "bucket", linode: "bucket", scaleway: "bucket", ovh: "bucket",
    ibm: "bucket", oracle: "bucket", b2: "flame", gcs: "hex", azure: "azure", swift: "server", cloud: "cloud",
    dropbox: "diamond", onedrive: "cloud", gdrive: "drive", box: "box", pcloud: "cloud", mega: "mega",
    webdav: "globe", nextcloud: "globe", ftp: "transfer", sftp: "lock", smb: "network", nfs: "network",
    folder: "folder", drive: "drive", server: "server", container: "container",
  };
  function icon(key, large) {
    const ns = "http://www.w3.org/2000/svg";
    const svg = document.createElementNS(ns, "svg");
    svg.setAttribute("viewBox", "0 0 24 24");
    svg.setAttribute("fill", "none");
    svg.setAttribute("stroke", "currentColor");
    svg.setAttribute("stroke-width", "1.7");
    svg.setAttribute("stroke-linecap", "round");
    svg.setAttribute("stroke-linejoin", "round");
    svg.setAttribute("aria-hidden", "true");
    svg.setAttribute("focusable", "false");
    const path = document.createElementNS(ns, "path");
    path.setAttribute("d", GLYPHS[ICON_GLYPH[key] || "cloud"]);
    svg.appendChild(path);
    return el("span", { class: "st-icon" + (large ? " st-icon-lg" : ""), "aria-hidden": "true" }, [svg]);
  }

  // ---- Provider forms: the template (sanitised), completed from the field list ----

  const ALLOWED_TAGS = ["FIELDSET", "LEGEND", "DIV", "LABEL", "INPUT", "SELECT", "OPTION", "OPTGROUP", "TEXTAREA",
    "SMALL", "A", "SPAN", "P", "STRONG", "EM", "B", "I", "CODE", "BR", "UL", "OL", "LI", "H4", "H5", "DETAILS", "SUMMARY"];
  const ALLOWED_ATTRS = ["name", "type", "id", "for", "class", "required", "pattern", "min", "max", "step",
    "placeholder", "value", "href", "title", "autocomplete", "maxlength", "minlength", "selected", "checked",
    "rows", "inputmode", "spellcheck", "role", "open", "disabled", "readonly"];
  let formSeq = 0;

  /** The template's HTML as inert nodes: no scripts, styles, event handlers or non-http links. */
  function sanitise(html) {
    const tpl = document.createElement("template");
    tpl.innerHTML = html || "";
    const walk = function (node) {
      Array.prototype.slice.call(node.childNodes).forEach(function (child) {
        if (child.nodeType === 8) { child.remove(); return; }
        if (child.nodeType !== 1) return;
        if (ALLOWED_TAGS.indexOf(child.tagName) < 0) { child.remove(); return; }
        Array.prototype.slice.call(child.attributes).forEach(function (a) {
          const n = a.name.toLowerCase();
          const ok = ALLOWED_ATTRS.indexOf(n) >= 0 || n.indexOf("data-") === 0 || n.indexOf("aria-") === 0;
          if (!ok || (n === "href" && !/^https?:\/\//i.test(a.value))) child.removeAttribute(a.name);
        });
        if (child.tagName === "A") { child.setAttribute("rel", "noopener noreferrer"); child.setAttribute("target", "_blank"); }
        walk(child);
      });
    };
    walk(tpl.content);
    return tpl.content;
  }

  function controlFor(root, field) {
    return root.querySelector('[name="config.' + field.key + '"], [name="secrets.' + field.key + '"]') ||
      root.querySelector('input[data-field="' + field.key + '"], select[data-field="' + field.key + '"], textarea[data-field="' + field.key + '"]');
  }

  function buildControl(field, id) {
    let c;
    const name = (field.secret ? "secrets." : "config.") + field.key;
    if (field.kind === "select") {
      c = el("select", { id: id, name: name });
      if (!field.required) c.appendChild(el("option", { value: "" }, ["—"]));
      (field.options || []).forEach(function (o) { c.appendChild(el("option", { value: o.value }, [o.label])); });
    } else if (field.kind === "textarea") {
      c = el("textarea", { id: id, name: name, rows: "5", spellcheck: "false" });
    } else if (field.kind === "bool") {
      c = el("input", { id: id, name: name, type: "checkbox" });
    } else {
      const type = field.secret || field.kind === "password" ? "password" : field.kind === "number" ? "number"
        : field.kind === "url" ? "url" : "text";
      c = el("input", { id: id, name: name, type: type });
    }
    c.setAttribute("data-field", field.key);
    return c;
  }

  /** Set the attributes the field list implies on a control (kept when the template has them). */
  function completeControl(c, field, stored) {
    if (field.required && !(field.secret && stored)) c.required = true;
    if (field.pattern && !c.getAttribute("pattern")) c.setAttribute("pattern", field.pattern);
    if (field.min != null && !c.getAttribute("min")) c.setAttribute("min", field.min);
    if (field.max != null && !c.getAttribute("max")) c.setAttribute("max", field.max);
    if (field.placeholder && !c.getAttribute("placeholder")) c.setAttribute("placeholder", field.placeholder);
    if (field.secret || field.kind === "password") {
      if (c.tagName === "INPUT" && c.type !== "password" && field.kind !== "textarea") c.type = "password";
      c.setAttribute("autocomplete", "new-password");
      c.setAttribute("spellcheck", "false");
      if (stored) c.setAttribute("placeholder", "Stored — leave blank to keep");
    }
    c.setAttribute("data-field", field.key);
    c.setAttribute("data-kind", field.kind || "text");
    if (field.secret) c.setAttribute("data-secret", "1");
  }

  function fieldWrapper(c) {
    return c.closest(".field") || (c.parentElement && c.parentElement.tagName === "LABEL" ? c.parentElement : null);
  }

  /**
   * A provider form: `{ root, advanced (Node with the advanced fields), values(), fill(config,
   * secretsSet), onInput(fn) }`. Fields the template lacks are generated from the definition.
   */
  function providerForm(provider, opts) {
    const prefix = "pf" + (++formSeq) + "-";
    const root = el("div", { class: "st-form" });
    root.appendChild(sanitise(provider.template_html));
    // Unique ids per form (the wizard and the details panel may show the same template).
    root.querySelectorAll("[id]").forEach(function (n) { n.id = prefix + n.id; });
    root.querySelectorAll("label[for]").forEach(function (n) { n.setAttribute("for", prefix + n.getAttribute("for")); });
    let main = root.querySelector("fieldset") || root;
    const advanced = el("div", { class: "st-form" });
    const secretsSet = opts.secretsSet || [];
    (provider.fields || []).forEach(function (f) {
      let c = controlFor(root, f);
      if (!c) {
        const id = prefix + f.key;
        c = buildControl(f, id);
        const label = el("label", { for: id }, [f.label, f.required ? el("span", { class: "st-req", "aria-hidden": "true" }, [" *"]) : null]);
        const help = el("small", { class: "field-help", id: id + "-help" }, [f.help || ""]);
        if (f.docs_url && /^https:\/\//.test(f.docs_url)) {
          help.appendChild(document.createTextNode(" "));
          help.appendChild(el("a", { href: f.docs_url, target: "_blank", rel: "noopener noreferrer" }, ["Where to find this"]));
        }
        c.setAttribute("aria-describedby", id + "-help");
        const wrap = f.kind === "bool"
          ? el("div", { class: "field" }, [el("label", { class: "st-check", for: id }, [c, " " + f.label]), help])
          : el("div", { class: "field" }, [label, c, help]);
        if (f.advanced) wrap.classList.add("field-advanced");
        main.appendChild(wrap);
      }
      completeControl(c, f, secretsSet.indexOf(f.key) >= 0);
      if (c.id && !root.querySelector('label[for="' + c.id + '"]') && !c.closest("label") && !c.getAttribute("aria-label")) {
        c.setAttribute("aria-label", f.label);
      }
      const wrap = fieldWrapper(c);
      if (f.advanced || (wrap && wrap.classList.contains("field-advanced"))) {
        if (wrap) advanced.appendChild(wrap); else advanced.appendChild(c);
      }
    });
    if (opts.advancedInline && advanced.childNodes.length) {
      root.appendChild(el("details", { class: "st-more" }, [el("summary", {}, ["More options"]), advanced]));
    }
    const containers = [root, advanced];
    const find = function (f) {
      for (let i = 0; i < containers.length; i++) { const c = controlFor(containers[i], f); if (c) return c; }
      return null;
    };
    const form = {
      root: root, advanced: advanced, provider: provider,
      values: function () {
        const config = {}, secrets = {};
        (provider.fields || []).forEach(function (f) {
          const c = find(f);
          if (!c) return;
          let v;
          if (c.type === "checkbox") v = c.checked;
          else if (f.kind === "number") { if (c.value.trim() === "") return; v = Number(c.value); }
          else { v = f.secret ? c.value : c.value.trim(); if (v === "") return; }
          (f.secret ? secrets : config)[f.key] = v;
        });
        return { config: config, secrets: secrets };
      },
      fill: function (config, existing) {
        (provider.fields || []).forEach(function (f) {
          const c = find(f);
          if (!c || f.secret) return;
          // A new form keeps the template's own value unless the definition has a default.
          const has = config && f.key in config;
          if (!has && f.default == null && !existing) return;
          const v = has ? config[f.key] : f.default;
          if (c.type === "checkbox") c.checked = !!v;
          else c.value = v == null ? "" : String(v);
        });
      },
      onInput: function (fn) { containers.forEach(function (c) { c.addEventListener("input", fn); c.addEventListener("change", fn); }); },
      check: function () {
        let firstBad = null;
        containers.forEach(function (box) {
          box.querySelectorAll("input, select, textarea").forEach(function (c) {
            const bad = !c.checkValidity();
            c.classList.toggle("st-invalid", bad);
            c.setAttribute("aria-invalid", bad ? "true" : "false");
            if (bad && !firstBad) firstBad = c;
          });
        });
        if (firstBad) {
          const f = (provider.fields || []).find(function (x) { return x.key === firstBad.getAttribute("data-field"); });
          toast((f ? f.label : "A field") + ": " + firstBad.validationMessage, "error");
          firstBad.focus();
          return false;
        }
        return true;
      },
      setDisabled: function (d) { containers.forEach(function (box) { box.querySelectorAll("input, select, textarea").forEach(function (c) { c.disabled = d; }); }); },
    };
    form.fill(opts.config || {}, !!opts.config);
    if (provider.oauth) oauthButton(form, opts.moduleId);
    return form;
  }

  /**
   * "Connect": sign in at an OAuth vendor in a pop-up; the callback page hands the refresh token
   * back (same origin only) and it lands in the form's refresh-token field, to be tested and
   * saved like a pasted one.
   */
  function oauthButton(form, moduleId) {
    const p = form.provider;
    const token = (p.fields || []).find(function (f) { return f.key === "refresh_token"; });
    const target = token && form.root.querySelector('[data-field="refresh_token"]');
    if (!target) return;
    const b = btn("Connect with " + p.name, null, "btn-small", { "data-action": "oauth-connect" });
    b.addEventListener("click", async function () {
      const v = form.values();
      if (!v.config.client_id) { toast("Fill in the app key (client ID) first, then Connect.", "error"); return; }
      const redirect = window.location.origin + "/storage/oauth/callback";
      const popup = window.open("about:blank", "pv-oauth", "popup,width=620,height=760");
      try {
        const r = await api("POST", BASE + "/oauth/start", {
          provider: p.id, client_id: String(v.config.client_id), client_secret: v.secrets.client_secret || null, redirect_uri: redirect,
        });
        const onMessage = function (e) {
          if (e.origin !== window.location.origin || !e.data || e.data.type !== "pv-oauth" || e.data.state !== r.state) return;
          window.removeEventListener("message", onMessage);
          if (e.data.refresh_token) {
            target.value = e.data.refresh_token;
            target.dispatchEvent(new Event("input", { bubbles: true }));
            toast("Connected to " + p.name + ". Test the connection, then save.", "info");
          } else toast(e.data.error || "The sign-in at " + p.name + " did not finish.", "error");
        };
        window.addEventListener("message", onMessage);
        if (popup) popup.location.href = r.authorize_url; else window.open(r.authorize_url, "pv-oauth");
        toast("Sign in at " + p.name + " in the new window. Register " + redirect + " as its redirect address.", "info");
      } catch (e) { if (popup) popup.close(); toast(e.message, "error"); }
    });
    const wrap = fieldWrapper(target) || target.parentElement;
    wrap.appendChild(el("div", { class: "button-row" }, [b]));
    void moduleId;
  }

  /** A provider `<select>` grouped by category. */
  function providerSelect(id, value) {
    const s = el("select", { id: id });
    CATEGORIES.forEach(function (cat) {
      const list = state.providers.filter(function (p) { return p.category === cat[0]; });
      if (!list.length) return;
      const g = el("optgroup", { label: cat[1] });
      list.forEach(function (p) { g.appendChild(el("option", { value: p.id, selected: p.id === value }, [p.name])); });
      s.appendChild(g);
    });
    return s;
  }

  // ---- Connection test (shared by the wizard and the Configuration tab) ----

  /** A gate: Save is allowed only when the last passing test was for exactly these values. */
  function testGate(form, moduleId, onChange) {
    const gate = { result: null, fp: null, running: false, box: el("div", { class: "st-test", hidden: true, "aria-live": "polite" }) };
    const fp = function () { const v = form.values(); return JSON.stringify([form.provider.id, v.config, v.secrets]); };
    gate.passed = function () { return !!(gate.result && gate.result.ok && gate.fp === fp()); };
    gate.proof = function () { return gate.passed() ? gate.result.proof : null; };
    form.onInput(function () {
      if (gate.result && gate.fp !== fp() && !gate.stale && gate.box.querySelector(".st-test-head")) {
        gate.stale = true;
        gate.box.querySelector(".st-test-head").lastChild.textContent = " (for earlier values — test again)";
      }
      onChange();
    });
    gate.run = async function (button) {
      if (gate.running || !form.check()) return;
      gate.running = true;
      const label = button.textContent;
      button.disabled = true;
      button.textContent = "Testing…";
      button.setAttribute("aria-busy", "true");
      const v = form.values();
      const body = { provider: form.provider.id, config: v.config, secrets: v.secrets };
      if (moduleId) body.module_id = moduleId;
      const asked = fp();
      try {
        gate.result = await api("POST", BASE + "/modules/test", body);
        gate.fp = asked;
        gate.stale = false;
        showResult(gate.box, gate.result);
        if (gate.result.ok) toast("Connection test passed in " + gate.result.total_ms + " ms.", "info");
        else {
          const bad = (gate.result.steps || []).find(function (s) { return !s.ok; });
          toast("Connection test failed" + (bad ? " at “" + bad.label + "”: " + (bad.message || "no details") : "."), "error");
        }
      } catch (e) {
        gate.result = { ok: false, steps: [], total_ms: 0, error: e.message };
        gate.fp = asked;
        showResult(gate.box, gate.result);
        toast(e.message, "error");
      } finally {
        gate.running = false;
        button.disabled = false;
        button.textContent = label;
        button.removeAttribute("aria-busy");
        onChange();
      }
    };
    return gate;
  }

  function showResult(box, r) {
    box.hidden = false;
    box.replaceChildren();
    box.appendChild(el("p", { class: "st-test-head " + (r.ok ? "st-healthy" : "st-failing") },
      [r.ok ? "✓ Test passed" : "✗ Test failed", el("span", { class: "st-ms" }, [r.total_ms ? " · " + r.total_ms + " ms" : ""])]));
    if (r.error) box.appendChild(el("p", { class: "st-step-msg", text: sentence(r.error) }));
    const ol = el("ol", { "aria-label": "Test steps" });
    (r.steps || []).forEach(function (s) {
      ol.appendChild(el("li", { "data-step": s.step }, [
        el("span", { class: s.ok ? "st-step-ok" : "st-step-bad", "aria-label": s.ok ? "passed" : "failed" }, [s.ok ? "✓" : "✗"]),
        el("span", {}, [s.label]),
        el("span", { class: "st-ms" }, [s.millis + " ms"]),
        s.message ? el("span", { class: "st-step-msg" }, [sentence(s.message)]) : null,
      ]));
    });
    box.appendChild(ol);
  }

  // ---- Loading ----

  async function loadProviders() {
    const r = await api("GET", BASE + "/providers");
    state.providers = r.providers || [];
    state.byId = {};
    state.providers.forEach(function (p) { state.byId[p.id] = p; });
    state.notices = r.notices || [];
    const box = document.getElementById("st-notices");
    box.replaceChildren();
    state.notices.forEach(function (n) {
      box.appendChild(el("div", { class: "notice warn", role: "status" }, [
        el("strong", {}, ["Provider folder “" + n.folder + "” was skipped. "]), sentence(n.message)]));
    });
  }

  async function loadModules() {
    state.modules = (await api("GET", BASE + "/modules")) || [];
    state.modules.sort(function (a, b) { return (a.priority - b.priority) || (a.id - b.id); });
    renderList();
  }

  async function refresh() {
    try {
      await loadModules();
      if (state.selected && !moduleById(state.selected)) select(null);
      const m = moduleById(state.selected);
      if (m) renderHead(m);
      if (m && state.tab === "overview") await renderOverview(m);
      if (m && state.tab === "streams") await renderStreams(m, true);
      await statusBar();
    } catch (e) { toast(e.message, "error"); }
  }

  // ---- The list ----

  function renderList() {
    const list = document.getElementById("st-list");
    // Keep the keyboard focus on the same card control across a refresh.
    const focused = document.activeElement && list.contains(document.activeElement) ? document.activeElement : null;
    const focusCard = focused && focused.closest(".st-card") ? focused.closest(".st-card").getAttribute("data-module") : null;
    const focusMenu = focused && focused.classList.contains("st-menu-btn");
    if (focused && focused.closest(".st-menu-list")) return; // an open menu stays as it is
    list.replaceChildren();
    document.getElementById("st-list-count").textContent = state.modules.length ? plural(state.modules.length, "module", "modules") : "";
    if (!state.modules.length) {
      list.appendChild(el("li", { class: "st-empty" }, [canManage
        ? "No storage modules yet. Add one to keep copies of the footage off this box."
        : "No storage modules yet."]));
      return;
    }
    state.modules.forEach(function (m, i) {
      const main = el("button", { type: "button", class: "st-card-main", "aria-label": m.name + ", " + (m.provider_name || providerName(m.provider)) + ", " + (STATUS_WORDS[m.status] || "Disabled") },
        [el("span", { class: "st-card-name" }, [m.name]), el("span", { class: "st-card-type" }, [m.provider_name || providerName(m.provider)])]);
      main.addEventListener("click", function () { select(m.id, null, true); });
      const meta = el("div", { class: "st-card-meta" }, [
        statusEl(m.status, m.draining),
        el("span", {}, [el("strong", {}, [String(m.active_uploads || 0)]), (m.active_uploads === 1 ? " upload" : " uploads") + " running"]),
        el("span", {}, ["Last write ", timeEl(m.last_ok_at || m.last_write_at)]),
        el("span", { class: "st-prio", title: "Order in the failover list" }, ["#" + (i + 1)]),
      ]);
      const li = el("li", { class: "st-card", "data-module": m.id, "aria-current": state.selected === m.id ? "true" : "false" },
        [icon(m.icon || (state.byId[m.provider] || {}).icon), main, canManage ? overflowMenu(m) : el("span"), meta]);
      li.addEventListener("click", function (e) { if (e.target === li || e.target.closest(".st-card-meta")) select(m.id, null, true); });
      list.appendChild(li);
    });
    if (focusCard) {
      const again = list.querySelector('.st-card[data-module="' + focusCard + '"] ' + (focusMenu ? ".st-menu-btn" : ".st-card-main"));
      if (again) again.focus();
    }
  }

  function overflowMenu(m) {
    const wrap = el("div", { class: "st-menu" });
    const id = "st-menu-" + m.id;
    const b = el("button", { type: "button", class: "btn st-menu-btn", "aria-haspopup": "menu", "aria-expanded": "false",
      "aria-controls": id, "aria-label": "Actions for " + m.name, title: "Actions" }, ["⋯"]);
    const menu = el("ul", { class: "st-menu-list", role: "menu", id: id, hidden: true, "aria-label": "Actions for " + m.name });
    const item = function (label, fn, danger) {
      const x = el("button", { type: "button", role: "menuitem", tabindex: "-1", class: danger ? "st-danger" : null }, [label]);
      x.addEventListener("click", function (e) { e.stopPropagation(); close(); fn(); });
      menu.appendChild(el("li", { role: "none" }, [x]));
    };
    const items = function () { return Array.prototype.slice.call(menu.querySelectorAll("[role=menuitem]")); };
    const close = function () { menu.hidden = true; b.setAttribute("aria-expanded", "false"); };
    const open = function () {
      document.querySelectorAll(".st-menu-list:not([hidden])").forEach(function (x) { x.hidden = true; });
      menu.hidden = false; b.setAttribute("aria-expanded", "true"); items()[0].focus();
    };
    item(m.enabled ? "Disable" : "Enable", function () { toggleEnabled(m); });
    item("Edit", function () { select(m.id, "config", true); });
    item("Clone", function () { cloneModule(m); });
    item("View Logs", function () { select(m.id, "logs", true); });
    item("Delete", function () { deleteModule(m); }, true);
    b.addEventListener("click", function (e) { e.stopPropagation(); if (menu.hidden) open(); else close(); });
    menu.addEventListener("keydown", function (e) {
      const all = items(), i = all.indexOf(document.activeElement);
      if (e.key === "ArrowDown") { e.preventDefault(); all[(i + 1) % all.length].focus(); }
      else if (e.key === "ArrowUp") { e.preventDefault(); all[(i - 1 + all.length) % all.length].focus(); }
      else if (e.key === "Escape" || e.key === "Tab") { close(); b.focus(); if (e.key === "Escape") e.preventDefault(); }
    });
    wrap.appendChild(b);
    wrap.appendChild(menu);
    return wrap;
  }
  document.addEventListener("click", function (e) {
    document.querySelectorAll(".st-menu-list:not([hidden])").forEach(function (menu) {
      if (!menu.parentElement.contains(e.target)) {
        menu.hidden = true;
        menu.parentElement.querySelector("[aria-haspopup]").setAttribute("aria-expanded", "false");
      }
    });
  });

  // ---- Details panel ----

  function renderHead(m) {
    const iconBox = document.getElementById("st-detail-icon");
    iconBox.replaceChildren();
    if (m) iconBox.appendChild(icon(m.icon || (state.byId[m.provider] || {}).icon, true).firstChild);
    document.getElementById("st-detail-title").textContent = m ? m.name : "No module selected";
    const sub = document.getElementById("st-detail-sub");
    sub.textContent = m ? (m.provider_name || providerName(m.provider)) + (m.tags && m.tags.length ? " · " + m.tags.join(", ") : "") +
      " · " + (m.enabled ? "enabled" : "disabled") : (canManage ? "Choose a module on the left, or add one." : "Choose a module on the left.");
    const st = document.getElementById("st-detail-status");
    st.replaceChildren();
    if (m) st.appendChild(statusEl(m.status, m.draining));
  }

  async function select(id, tab, reveal) {
    state.selected = id;
    state.draft = null;
    document.querySelectorAll(".st-card").forEach(function (c) {
      c.setAttribute("aria-current", Number(c.getAttribute("data-module")) === id ? "true" : "false");
    });
    const m = moduleById(id);
    renderHead(m);
    if (tab) state.tab = tab;
    // On a phone the details sit below the list: bring them into view when asked for.
    if (m && (reveal || tab) && window.matchMedia("(max-width: 900px)").matches) {
      document.getElementById("st-detail").scrollIntoView({ block: "start", behavior: "smooth" });
    }
    if (!m) {
      document.querySelectorAll(".st-panel").forEach(function (p) { p.replaceChildren(); });
      document.getElementById("st-panel-overview").appendChild(el("p", { class: "st-empty" },
        [state.modules.length ? "Choose a module to see its health, uploads and logs." : "Nothing to show yet."]));
      return;
    }
    ["config", "streams", "logs", "advanced"].forEach(function (t) { document.getElementById("st-panel-" + t).replaceChildren(); });
    showTab(state.tab, !!tab);
  }

  function showTab(tab, focus) {
    state.tab = tab;
    document.querySelectorAll(".st-tabs [role=tab]").forEach(function (t) {
      const on = t.getAttribute("data-tab") === tab;
      t.setAttribute("aria-selected", on ? "true" : "false");
      t.tabIndex = on ? 0 : -1;
      document.getElementById(t.getAttribute("aria-controls")).hidden = !on;
      if (on && focus && window.matchMedia("(max-width: 900px)").matches) t.scrollIntoView({ block: "nearest" });
    });
    const m = moduleById(state.selected);
    if (!m) return;
    // Typed values survive switching tabs: a filled Configuration or Advanced tab stays as it is.
    const panel = document.getElementById("st-panel-" + tab);
    if ((tab === "config" && state.draft) || (tab === "advanced" && panel.firstChild)) return;
    const run = { overview: renderOverview, config: renderConfig, streams: renderStreams, logs: renderLogs, advanced: renderAdvanced }[tab];
    Promise.resolve(run(m)).catch(function (e) { toast(e.message, "error"); });
  }

  function setupTabs() {
    const tabs = Array.prototype.slice.call(document.querySelectorAll(".st-tabs [role=tab]"));
    tabs.forEach(function (t, i) {
      t.addEventListener("click", function () { showTab(t.getAttribute("data-tab")); });
      t.addEventListener("keydown", function (e) {
        let j = null;
        if (e.key === "ArrowRight") j = (i + 1) % tabs.length;
        else if (e.key === "ArrowLeft") j = (i - 1 + tabs.length) % tabs.length;
        else if (e.key === "Home") j = 0;
        else if (e.key === "End") j = tabs.length - 1;
        if (j == null) return;
        e.preventDefault();
        tabs[j].focus();
        showTab(tabs[j].getAttribute("data-tab"));
      });
    });
  }

  function metric(title, value, hint, extra) {
    return el("div", { class: "st-metric" }, [el("h4", {}, [title]),
      el("p", {}, [value instanceof Node ? value : String(value)]), hint ? el("p", { class: "hint" }, [hint]) : null, extra || null]);
  }

  async function renderOverview(m) {
    const panel = document.getElementById("st-panel-overview");
    let h;
    try { h = await api("GET", BASE + "/modules/" + m.id + "/health"); } catch (e) { h = null; toast(e.message, "error"); }
    if (state.selected !== m.id || state.tab !== "overview") return;
    state.health[m.id] = h;
    if (h && (h.last_ok_at !== m.last_ok_at || h.status !== m.status || h.active_uploads !== m.active_uploads)) {
      // The card shows the same facts: keep it in step with the Overview.
      Object.assign(m, { last_ok_at: h.last_ok_at, last_write_at: h.last_write_at, status: h.status, active_uploads: h.active_uploads });
      renderList();
      renderHead(m);
    }
    panel.replaceChildren();
    if (!h) { panel.appendChild(el("p", { class: "st-empty" }, ["The health of this module cannot be read right now."])); return; }
    const status = STATUS_WORDS[h.status] ? h.status : "disabled";
    const badge = el("span", { class: "st-badge st-" + status }, [el("span", { class: "st-dot", "aria-hidden": "true" }), STATUS_WORDS[status]]);
    const lastTest = h.last_test_at
      ? el("span", {}, [h.last_test_ok ? "Passed " : "Failed ", timeEl(h.last_test_at)])
      : el("span", {}, ["Not tested yet"]);
    const done = h.completed_uploads || 0, active = h.active_uploads || 0, pending = h.pending_uploads || 0;
    const total = done + active + pending;
    const bar = el("div", { class: "st-bar", role: "img", "aria-label": done + " completed of " + total }, [el("span")]);
    bar.firstChild.style.width = (total ? Math.round(done * 100 / total) : 0) + "%";
    const rate = h.error_rate_24h == null ? "—" : (Math.round(h.error_rate_24h * 1000) / 10) + " %";
    panel.appendChild(el("div", { class: "st-metrics", "data-overview": "1" }, [
      metric("Health", badge, h.status === "failing" && h.last_error ? sentence(h.last_error) : null),
      metric("Last connection test", lastTest, h.last_test_ok === false && h.last_test_error ? sentence(h.last_test_error) : null),
      el("div", { class: "st-metric", "data-field": "last-write" }, [el("h4", {}, ["Last successful write"]),
        el("p", {}, [timeEl(h.last_ok_at || h.last_write_at)]),
        el("p", { class: "hint" }, [h.last_ok_at || h.last_write_at ? window.pv.formatTime(h.last_ok_at || h.last_write_at) : "Nothing written yet"])]),
      metric("Error rate (24 h)", rate, plural(h.writes_24h || 0, "write", "writes") + " in the last 24 hours"),
      metric("Storage used per day", h.gb_per_day == null ? humanBytes(h.bytes_today) : humanBytes(h.gb_per_day * 1e9),
        (h.gb_per_day == null ? "" : "Average over 30 days; ") + humanBytes(h.bytes_today) + " today"),
      metric("Storage used this month", humanBytes(h.bytes_month), null),
      metric("Uploads", active + " running · " + done + " done", pending ? plural(pending, "upload", "uploads") + " waiting" : "Nothing waiting", bar),
    ]));
    if (h.last_error && h.last_error_at) {
      panel.appendChild(el("div", { class: "st-section" }, [el("h4", {}, ["Last error"]),
        el("p", {}, [timeEl(h.last_error_at), " — " + sentence(h.last_error)])]));
    }
    // The newest uploads, as on the Streams tab.
    let recent = [];
    try { recent = ((await api("GET", BASE + "/modules/" + m.id + "/streams?limit=5")).streams || []); } catch (_) { recent = []; }
    if (state.selected !== m.id || state.tab !== "overview") return;
    if (recent.length) {
      const ul = el("ul", { class: "st-logs st-recent" });
      recent.forEach(function (u) {
        const failed = u.status === "pending" && u.last_error;
        ul.appendChild(el("li", {}, [timeEl(u.last_write_at, window.pv.formatTime(u.last_write_at)),
          el("span", { class: "st-lvl st-" + (u.status === "done" ? "healthy" : failed ? "failing" : "degraded") },
            [failed ? "Retrying" : STREAM_WORDS[u.status] || u.status]),
          el("span", { class: "st-log-msg" }, [(u.camera_name || "Camera " + u.camera_id) + " · " + humanBytes(u.size_bytes) + " · ",
            el("span", { class: "mono" }, [u.remote_key || u.stream_id])])]));
      });
      panel.appendChild(el("div", { class: "st-section" }, [el("h4", {}, ["Recent uploads"]), ul]));
    }
    const checks = (h.checks || []).slice(0, 8);
    if (checks.length) {
      const ul = el("ul", { class: "st-logs" });
      checks.forEach(function (c) {
        ul.appendChild(el("li", {}, [timeEl(c.at, window.pv.formatTime(c.at)),
          el("span", { class: "st-lvl st-" + (STATUS_WORDS[c.status] ? c.status : "failing") }, [STATUS_WORDS[c.status] || c.status]),
          el("span", { class: "st-log-msg" }, [(c.latency_ms != null ? c.latency_ms + " ms" : "") + (c.message ? " · " + sentence(c.message) : "")])]));
      });
      panel.appendChild(el("div", { class: "st-section" }, [el("h4", {}, ["Recent health checks"]), ul]));
    }
  }

  // ---- Configuration ----

  function lockNotice(m, what) {
    return el("div", { class: "st-lock", role: "status" }, [
      el("p", { style: null }, [plural(m.active_uploads, "upload is", "uploads are") + " running on this module, so its " + what +
        " cannot change now: a half-written segment would end up with two different settings. Wait until they finish, drain the module, or work on a copy."]),
      canManage ? el("div", { class: "button-row" }, [btn("Clone instead", function () { cloneModule(m); }),
        btn("Drain and disable", function () { drain(m); })]) : null,
    ]);
  }

  function renderConfig(m) {
    const panel = document.getElementById("st-panel-config");
    const provider = state.byId[m.provider];
    panel.replaceChildren();
    if (!provider) {
      panel.appendChild(el("p", { class: "st-empty" }, ["The provider of this module (" + m.provider + ") is not installed on this server any more."]));
      return;
    }
    const locked = (m.active_uploads || 0) > 0;
    if (locked) panel.appendChild(lockNotice(m, "connection settings"));
    const sel = providerSelect("st-cfg-provider", m.provider);
    sel.disabled = true;
    panel.appendChild(el("div", { class: "st-form" }, [el("div", { class: "field" }, [
      el("label", { for: "st-cfg-provider" }, ["Provider"]), sel,
      el("small", { class: "field-help" }, [provider.description + " To use another provider, add a new module. ",
        provider.docs_url ? el("a", { href: provider.docs_url, target: "_blank", rel: "noopener noreferrer" }, ["Provider documentation"]) : null])])]));
    const form = providerForm(provider, { config: m.config, secretsSet: m.secrets_set || [], moduleId: m.id });
    const testBtn = btn("Test Connection", null, "btn-small", { "data-action": "test" });
    const saveBtn = btn("Save", null, "btn-glow", { "data-action": "save", disabled: true });
    const note = el("span", { class: "st-save-note", "aria-live": "polite" });
    const update = function () {
      const passed = gate.passed();
      saveBtn.disabled = !canManage || locked || !passed;
      note.textContent = !canManage ? "Your account may look but not change." : locked ? "" : passed
        ? "Test passed for these values: you can save." : "Save is possible after a passing test of these values.";
    };
    const gate = testGate(form, m.id, update);
    testBtn.addEventListener("click", function () { gate.run(testBtn); });
    saveBtn.addEventListener("click", async function () {
      if (!gate.passed()) { update(); return; }
      const v = form.values();
      saveBtn.disabled = true;
      try {
        await api("PATCH", BASE + "/modules/" + m.id, { config: v.config, secrets: v.secrets, proof: gate.proof() });
        toast("Connection settings of " + m.name + " saved.", "info");
        await loadModules();
        select(m.id, "config");
      } catch (e) { toast(e.message, "error"); update(); }
    });
    state.draft = { form: form, gate: gate };
    panel.appendChild(form.root);
    if (form.advanced.childNodes.length) {
      panel.appendChild(el("p", { class: "hint" }, ["Provider-specific options are on the Advanced tab; they are tested with these settings."]));
    }
    panel.appendChild(el("div", { class: "st-actions" }, [testBtn, saveBtn, note]));
    panel.appendChild(gate.box);
    if (locked || !canManage) { form.setDisabled(true); testBtn.disabled = !canManage; }
    update();
  }

  // ---- Streams ----

  const STREAM_WORDS = { pending: "Waiting", uploading: "Writing", done: "Completed", skipped: "Skipped", expired: "Removed by retention", failed: "Failed" };

  async function renderStreams(m, quiet) {
    const panel = document.getElementById("st-panel-streams");
    let r;
    try { r = await api("GET", BASE + "/modules/" + m.id + "/streams?limit=100"); } catch (e) { if (!quiet) toast(e.message, "error"); return; }
    if (state.selected !== m.id || state.tab !== "streams") return;
    panel.replaceChildren();
    const rows = r.streams || [];
    panel.appendChild(el("p", { class: "hint" }, ["The newest uploads of recorded segments to this module. A failed upload is retried and, when this module stays unhealthy, moves to the next module."]));
    const body = el("tbody");
    if (!rows.length) body.appendChild(el("tr", {}, [el("td", { colspan: "8", class: "st-empty" }, ["No uploads yet."])]));
    rows.forEach(function (s) {
      const failed = s.status === "pending" && s.last_error;
      const word = failed ? "Failed, will retry" : STREAM_WORDS[s.status] || s.status;
      const cls = s.status === "done" ? "ok" : failed ? "bad" : s.status === "uploading" ? "warn" : "off";
      body.appendChild(el("tr", {}, [
        el("td", { class: "mono" }, [s.stream_id]),
        el("td", {}, [s.camera_name || ("Camera " + s.camera_id)]),
        el("td", {}, [el("span", { class: "badge " + cls, title: s.last_error ? sentence(s.last_error) : null }, [word])]),
        el("td", {}, [humanBytes(s.size_bytes)]),
        el("td", {}, [duration(s.duration_ms)]),
        el("td", {}, [timeEl(s.last_write_at, s.last_write_at ? window.pv.formatTime(s.last_write_at) : "—")]),
        el("td", {}, [String(Math.max(0, (s.attempts || 0) - 1))]),
        el("td", {}, [el("div", { class: "button-row" }, [
          btn("Inspect", function () { inspectStream(s); }, null, { "aria-label": "Inspect " + s.stream_id }),
          btn("Logs", function () { state.logFilter.stream = s.stream_id; showTab("logs", true); }, null, { "aria-label": "Logs of " + s.stream_id })])]),
      ]));
    });
    panel.appendChild(el("div", { class: "st-table-wrap" }, [el("table", { class: "table st-table" }, [
      el("thead", {}, [el("tr", {}, ["Stream ID", "Camera", "Status", "File size", "Duration", "Last write", "Retries", "Action"].map(function (h, i) {
        return el("th", { scope: "col" }, [i === 7 ? el("span", { class: "visually-hidden" }, [h]) : h]);
      }))]), body])]));
  }

  function inspectStream(s) {
    const dl = el("dl", { class: "st-summary" });
    const row = function (k, v) { dl.appendChild(el("dt", {}, [k])); dl.appendChild(el("dd", {}, [v instanceof Node ? v : String(v == null || v === "" ? "—" : v)])); };
    row("Stream ID", s.stream_id);
    row("Camera", s.camera_name || s.camera_id);
    row("Segment", s.segment_id);
    row("Status", STREAM_WORDS[s.status] || s.status);
    row("Object key", el("span", { class: "mono" }, [s.remote_key || "—"]));
    row("File size", humanBytes(s.size_bytes));
    row("Duration", duration(s.duration_ms));
    row("Attempts", s.attempts);
    row("Last write", s.last_write_at ? window.pv.formatTime(s.last_write_at) : "—");
    row("Last error", s.last_error ? sentence(s.last_error) : "none");
    modal("Upload of " + s.stream_id, [dl], true);
  }

  // ---- Logs ----

  async function renderLogs(m) {
    const panel = document.getElementById("st-panel-logs");
    if (!panel.firstChild) {
      const lvl = el("select", { id: "st-log-level", "aria-label": "Severity" }, [
        el("option", { value: "" }, ["All severities"]), el("option", { value: "info" }, ["Information and up"]),
        el("option", { value: "warn" }, ["Warnings and errors"]), el("option", { value: "error" }, ["Errors only"])]);
      const q = el("input", { type: "search", id: "st-log-q", placeholder: "Search the messages", "aria-label": "Search the logs" });
      const stream = el("input", { type: "search", id: "st-log-stream", placeholder: "Stream ID", "aria-label": "Only this stream", size: "14" });
      lvl.value = state.logFilter.level; q.value = state.logFilter.q; stream.value = state.logFilter.stream;
      let timer = null;
      const changed = function () {
        state.logFilter = { level: lvl.value, q: q.value.trim(), stream: stream.value.trim() };
        clearTimeout(timer);
        timer = setTimeout(function () { const mm = moduleById(state.selected); if (mm) loadLogs(mm); }, 250);
      };
      [lvl, q, stream].forEach(function (x) { x.addEventListener("input", changed); });
      panel.appendChild(el("div", { class: "st-toolbar", role: "search" }, [lvl, q, stream,
        btn("Copy", copyLogs, null, { "data-action": "logs-copy" }),
        btn("Export .txt", function () { exportLogs("txt"); }, null, { "data-action": "logs-txt" }),
        btn("Export .csv", function () { exportLogs("csv"); }, null, { "data-action": "logs-csv" })]));
      panel.appendChild(el("ul", { class: "st-logs", id: "st-log-list", "aria-label": "Log entries", tabindex: "0" }));
      panel.appendChild(el("p", { class: "hint", id: "st-log-count", "aria-live": "polite" }));
    } else {
      document.getElementById("st-log-level").value = state.logFilter.level;
      document.getElementById("st-log-q").value = state.logFilter.q;
      document.getElementById("st-log-stream").value = state.logFilter.stream;
    }
    await loadLogs(m);
  }

  async function loadLogs(m) {
    const f = state.logFilter;
    const qs = new URLSearchParams({ limit: "500" });
    if (f.level) qs.set("level", f.level);
    if (f.q) qs.set("q", f.q);
    if (f.stream) qs.set("stream", f.stream);
    const r = await api("GET", BASE + "/modules/" + m.id + "/logs?" + qs.toString());
    if (state.selected !== m.id) return;
    state.logs = r.entries || [];
    const list = document.getElementById("st-log-list");
    if (!list) return;
    list.replaceChildren();
    if (!state.logs.length) list.appendChild(el("li", { class: "st-empty" }, ["No log entries match."]));
    state.logs.forEach(function (e) {
      const msg = el("span", { class: "st-log-msg" }, [sentence(e.message)]);
      if (e.stream_id) {
        msg.appendChild(document.createTextNode(" "));
        msg.appendChild(el("button", { type: "button", class: "st-stream-link", title: "Only this stream", onclick: function () {
          state.logFilter.stream = e.stream_id;
          document.getElementById("st-log-stream").value = e.stream_id;
          loadLogs(m).catch(function (x) { toast(x.message, "error"); });
        } }, [e.stream_id]));
      }
      list.appendChild(el("li", { "data-level": e.level }, [el("time", { datetime: e.at }, [window.pv.formatTime(e.at)]),
        el("span", { class: "st-lvl st-lvl-" + e.level }, [e.level === "warn" ? "warning" : e.level]), msg]));
    });
    document.getElementById("st-log-count").textContent = plural(state.logs.length, "entry", "entries") + (state.logs.length >= 500 ? " (the newest 500)" : "") + ".";
  }

  function logText() {
    return state.logs.map(function (e) {
      return window.pv.formatTime(e.at) + "\t" + e.level.toUpperCase() + "\t" + (e.stream_id || "-") + "\t" + sentence(e.message);
    }).join("\n");
  }
  async function copyLogs() {
    try { await navigator.clipboard.writeText(logText()); toast(plural(state.logs.length, "log entry", "log entries") + " copied.", "info"); }
    catch (_) { toast("The browser did not allow copying; use Export instead.", "error"); }
  }
  function exportLogs(kind) {
    const m = moduleById(state.selected);
    const base = "storage-" + (m ? m.name.replace(/[^A-Za-z0-9_-]+/g, "-") : "module") + "-logs";
    if (kind === "txt") { download(base + ".txt", "text/plain", logText() + "\n"); return; }
    const q = function (v) { return '"' + String(v == null ? "" : v).replace(/"/g, '""') + '"'; };
    const rows = [["time", "severity", "event", "stream", "message"].join(",")].concat(state.logs.map(function (e) {
      return [e.at, e.level, e.event, e.stream_id || "", sentence(e.message)].map(q).join(",");
    }));
    download(base + ".csv", "text/csv", rows.join("\r\n") + "\r\n");
  }

  // ---- Advanced ----

  /** Render a key template with example values, as the server would (unknown → an error). */
  function exampleKey(template, m) {
    const now = new Date();
    const pad = function (n) { return String(n).padStart(2, "0"); };
    const vals = {
      provider: m ? m.provider : "s3", module: m ? m.name.replace(/[^A-Za-z0-9._-]+/g, "-") : "archive",
      camera: "Front-door", camera_id: "3", year: String(now.getUTCFullYear()), month: pad(now.getUTCMonth() + 1),
      day: pad(now.getUTCDate()), hour: pad(now.getUTCHours()), minute: pad(now.getUTCMinutes()), second: pad(now.getUTCSeconds()),
      date: now.toISOString().slice(0, 10), segment: "20261205T091200-000042", segment_id: "42", stream_id: "3-42", ext: "mp4",
    };
    const unknown = [];
    const out = template.replace(/\{([^{}]*)\}/g, function (_, name) {
      if (name in vals) return vals[name];
      unknown.push(name);
      return "";
    });
    if (unknown.length) return { error: "Unknown placeholder {" + unknown[0] + "}. Known: " + PLACEHOLDERS.map(function (p) { return "{" + p[0] + "}"; }).join(" ") };
    if (/[{}]/.test(out)) return { error: "A brace is not closed." };
    if (!out.trim()) return { error: "The key template is empty." };
    return { key: out };
  }

  function numberField(id, label, value, help, attrs) {
    const input = el("input", Object.assign({ id: id, type: "number", value: value == null ? "" : value, "aria-describedby": id + "-help" }, attrs || {}));
    return { input: input, node: el("div", { class: "field" }, [el("label", { for: id }, [label]), input, el("small", { class: "field-help", id: id + "-help" }, [help])]) };
  }

  function renderAdvanced(m) {
    const panel = document.getElementById("st-panel-advanced");
    panel.replaceChildren();
    const locked = (m.active_uploads || 0) > 0;
    const retention = numberField("st-adv-retention", "Keep copies here for (days)", m.retention_days || "", "Copies older than this are removed from this storage. Empty keeps them for ever; the box's own retention is set per camera.", { min: "0", max: "36500" });
    const tplInput = el("input", { id: "st-adv-template", value: m.key_template || DEFAULT_TEMPLATE, spellcheck: "false", "aria-describedby": "st-adv-template-help st-adv-example" });
    const example = el("p", { class: "st-example", id: "st-adv-example", "aria-live": "polite" });
    const chips = el("div", { class: "st-placeholders", role: "group", "aria-label": "Insert a placeholder" });
    PLACEHOLDERS.forEach(function (p) {
      chips.appendChild(btn("{" + p[0] + "}", function () {
        const s = tplInput.selectionStart == null ? tplInput.value.length : tplInput.selectionStart;
        tplInput.value = tplInput.value.slice(0, s) + "{" + p[0] + "}" + tplInput.value.slice(tplInput.selectionEnd || s);
        tplInput.dispatchEvent(new Event("input"));
        tplInput.focus();
      }, null, { title: p[1] }));
    });
    const chunk = numberField("st-adv-chunk", "Chunk size (MiB)", m.chunk_size_bytes ? Math.round(m.chunk_size_bytes / 1048576) : "", "Large files are sent in parts of this size. Empty uses the provider's best size.", { min: "1", max: "5120" });
    const parallel = numberField("st-adv-parallel", "Parallel uploads", m.parallel_uploads || 4, "How many segments are sent to this module at the same time.", { min: "1", max: "64" });
    const bw = numberField("st-adv-bw", "Bandwidth limit (Mbit/s)", m.bandwidth_limit_bytes_per_second ? Math.round(m.bandwidth_limit_bytes_per_second * 8 / 100000) / 10 : "", "Empty: no limit. Useful on a metered or slow uplink.", { min: "0.1", step: "0.1" });
    const enc = el("input", { id: "st-adv-enc", type: "checkbox", checked: !!m.encrypted });
    const encWarn = el("p", { class: "st-warn-text", id: "st-adv-enc-help" }, ["Files are encrypted on this box (AES-256-GCM) with this server's key before they leave it. Keep a copy of the server key: without it nobody, you included, can read these copies. Encrypted copies cannot be shared with signed links."]);
    enc.setAttribute("aria-describedby", "st-adv-enc-help");
    const save = btn("Save advanced settings", null, "btn-glow", { "data-action": "save-advanced" });
    const update = function () {
      const r = exampleKey(tplInput.value, m);
      example.textContent = r.error ? r.error : "Example: " + r.key;
      example.classList.toggle("st-failing", !!r.error);
      tplInput.setAttribute("aria-invalid", r.error ? "true" : "false");
      save.disabled = !canManage || !!r.error;
    };
    tplInput.addEventListener("input", update);
    const form = el("div", { class: "st-form" }, [
      el("fieldset", {}, [el("legend", {}, ["Retention"]), retention.node]),
      el("fieldset", {}, [el("legend", {}, ["Object names"]), el("div", { class: "field" }, [
        el("label", { for: "st-adv-template" }, ["Key template"]), tplInput,
        el("small", { class: "field-help", id: "st-adv-template-help" }, ["Where each segment is stored. Click a placeholder to insert it."]),
        chips, example])]),
      el("fieldset", {}, [el("legend", {}, ["Uploads"]), chunk.node, parallel.node, bw.node]),
      el("fieldset", {}, [el("legend", {}, ["Encryption"]), el("div", { class: "field" }, [el("label", { class: "st-check", for: "st-adv-enc" }, [enc, " Encrypt copies before upload"]), encWarn])]),
    ]);
    panel.appendChild(form);
    // The provider's own advanced options: part of the connection, so tested on Configuration.
    const draft = state.draft && state.draft.form && state.draft.form.provider.id === m.provider ? state.draft : null;
    const provider = state.byId[m.provider];
    const hasAdvanced = provider && (provider.fields || []).some(function (f) { return f.advanced; });
    if (hasAdvanced) {
      const box = el("fieldset", { class: "st-section" }, [el("legend", {}, ["Provider-specific options"])]);
      if (draft) {
        box.appendChild(draft.form.advanced);
        box.appendChild(el("p", { class: "hint" }, ["These change how PentaVision connects: run Test Connection on the Configuration tab, then Save there."]));
      } else {
        box.appendChild(el("p", { class: "hint" }, ["Open the Configuration tab once to edit them; they are tested together with the connection."]));
        box.appendChild(btn("Open Configuration", function () { showTab("config", true); }));
      }
      panel.appendChild(el("div", { class: "st-form" }, [box]));
    }
    panel.appendChild(el("div", { class: "st-actions" }, [save]));
    if (!canManage) form.querySelectorAll("input").forEach(function (i) { i.disabled = true; });
    save.addEventListener("click", async function () {
      const invalid = Array.prototype.slice.call(form.querySelectorAll("input")).find(function (i) { return !i.checkValidity(); });
      if (invalid) { toast((invalid.labels[0] ? invalid.labels[0].textContent : "A field") + ": " + invalid.validationMessage, "error"); invalid.focus(); return; }
      const num = function (i) { return i.value === "" ? null : Number(i.value); };
      // Empty means "none" (kept for ever, the provider's part size, no limit): sent as 0.
      const body = {
        retention_days: num(retention.input) || 0, key_template: tplInput.value.trim(),
        chunk_size_bytes: num(chunk.input) == null ? 0 : Math.round(num(chunk.input) * 1048576),
        parallel_uploads: num(parallel.input) || 1,
        bandwidth_limit_bytes_per_second: num(bw.input) == null ? 0 : Math.round(num(bw.input) * 125000),
        encrypted: enc.checked,
      };
      if (locked && (body.key_template !== (m.key_template || DEFAULT_TEMPLATE) || body.encrypted !== !!m.encrypted)) {
        toast("Uploads are running on " + m.name + ": the key template and encryption can change once they finish (or drain the module first).", "error");
        return;
      }
      save.disabled = true;
      try {
        await api("PATCH", BASE + "/modules/" + m.id, body);
        toast("Advanced settings of " + m.name + " saved.", "info");
        await loadModules();
        renderHead(moduleById(m.id));
      } catch (e) { toast(e.message, "error"); }
      update();
    });
    update();
  }

  // ---- Dialogs ----

  let lastFocus = null;
  function modal(title, nodes, small) {
    const back = document.getElementById("st-modal");
    const box = back.querySelector(".st-modal");
    box.classList.toggle("st-modal-small", !!small);
    document.getElementById("st-modal-title").textContent = title;
    const body = document.getElementById("st-modal-body");
    body.replaceChildren();
    nodes.forEach(function (n) { body.appendChild(n); });
    if (back.hidden) lastFocus = document.activeElement;
    back.hidden = false;
    const first = body.querySelector("input, select, button, [tabindex]") || back.querySelector("[data-action=modal-close]");
    setTimeout(function () { first.focus(); }, 0);
  }
  function closeModal() {
    const back = document.getElementById("st-modal");
    if (back.hidden) return;
    back.hidden = true;
    document.getElementById("st-modal-body").replaceChildren();
    if (lastFocus && lastFocus.isConnected) lastFocus.focus();
  }
  function setupModal() {
    const back = document.getElementById("st-modal");
    back.querySelector("[data-action=modal-close]").addEventListener("click", closeModal);
    back.addEventListener("keydown", function (e) {
      if (e.key === "Escape") { e.preventDefault(); closeModal(); return; }
      if (e.key !== "Tab") return;
      const f = Array.prototype.slice.call(back.querySelectorAll("button, input, select, textarea, a[href], [tabindex]:not([tabindex='-1'])"))
        .filter(function (x) { return !x.disabled && x.offsetParent !== null; });
      if (!f.length) return;
      if (e.shiftKey && document.activeElement === f[0]) { e.preventDefault(); f[f.length - 1].focus(); }
      else if (!e.shiftKey && document.activeElement === f[f.length - 1]) { e.preventDefault(); f[0].focus(); }
    });
  }

  /** A choice dialog: `choices` = [[label, fn, cls]]; resolves after the chosen action ran. */
  function choose(title, text, choices) {
    const row = el("div", { class: "st-wizard-nav" });
    choices.forEach(function (c) {
      row.appendChild(btn(c[0], async function (e) {
        e.target.disabled = true;
        try { if (c[1]) await c[1](); closeModal(); } catch (x) { toast(x.message, "error"); e.target.disabled = false; }
      }, c[2] || "btn-small"));
    });
    modal(title, text.map(function (t) { return el("p", {}, [t]); }).concat([row]), true);
  }

  async function queueOf(m) {
    try {
      const h = await api("GET", BASE + "/modules/" + m.id + "/health");
      return { active: h.active_uploads || 0, pending: h.pending_uploads || 0 };
    } catch (_) { return { active: m.active_uploads || 0, pending: m.pending_uploads || 0 }; }
  }

  async function toggleEnabled(m) {
    if (!m.enabled) {
      try {
        await api("PATCH", BASE + "/modules/" + m.id, { enabled: true });
        toast(m.name + " enabled: new uploads may go to it.", "info");
        await refresh();
      } catch (e) { toast(e.message, "error"); }
      return;
    }
    const q = await queueOf(m);
    const disableNow = async function () {
      await api("PATCH", BASE + "/modules/" + m.id, { enabled: false });
      toast(m.name + " disabled." + (q.pending ? " Its waiting uploads go to the next module of each camera's list." : ""), "info");
      await refresh();
    };
    if (!q.active && !q.pending) {
      choose("Disable " + m.name + "?", ["No uploads are running or waiting. New segments go to the next enabled module."],
        [["Cancel", null], ["Disable", disableNow, "btn-glow"]]);
      return;
    }
    choose("Disable " + m.name + "?", [
      plural(q.active, "upload is", "uploads are") + " running and " + plural(q.pending, "is", "are") + " waiting for this module.",
      "Drain and disable lets them finish here first; nothing is lost. Disable now stops at once: the running uploads are retried and the waiting ones move to the next module of each camera's list.",
    ], [["Cancel", null], ["Disable now", disableNow], ["Drain and disable", function () { return drain(m, true); }, "btn-glow"]]);
  }

  async function drain(m, quiet) {
    try {
      await api("POST", BASE + "/modules/" + m.id + "/drain");
      toast(m.name + " is draining: it takes no new uploads and turns off when its queue is empty.", "info");
      await refresh();
    } catch (e) { if (quiet) throw e; toast(e.message, "error"); }
  }

  async function cloneModule(m) {
    try {
      const c = await api("POST", BASE + "/modules/" + m.id + "/clone");
      toast("Copied as " + c.name + " (disabled). Change it, test it, then enable it.", "info");
      await loadModules();
      select(c.id, "config");
    } catch (e) { toast(e.message, "error"); }
  }

  async function deleteModule(m) {
    const q = await queueOf(m);
    const del = function (move) {
      return async function () {
        await api("DELETE", BASE + "/modules/" + m.id + (move ? "?queued=move" : ""));
        toast(m.name + " deleted." + (move ? " Its waiting uploads moved to the next module of each camera's list." : "") + " Copies already uploaded stay in the storage.", "info");
        if (state.selected === m.id) select(null);
        await refresh();
      };
    };
    if (!q.active && !q.pending) {
      choose("Delete " + m.name + "?", ["Its settings, logs and statistics are removed. Copies already uploaded stay in the storage; PentaVision forgets where they are."],
        [["Cancel", null], ["Delete", del(false), "btn-glow"]]);
      return;
    }
    choose("Delete " + m.name + "?", [
      plural(q.active, "upload is", "uploads are") + " running and " + plural(q.pending, "is", "are") + " waiting for this module; they would be lost with it.",
      "Move them to the next module of each camera's list and delete, or drain the module first (it turns off when its queue is empty; delete it then).",
    ], [["Cancel", null], ["Drain first", function () { return drain(m, true); }], ["Move waiting uploads and delete", del(true), "btn-glow"]]);
  }

  // ---- The Add Storage Provider wizard ----

  const WIZ_STEPS = ["Select provider", "Enter credentials", "Test connection", "Name and tag", "Confirm and enable"];

  function openWizard() {
    if (!state.providers.length) { toast("No storage providers are installed on this server.", "error"); return; }
    const w = { step: 0, provider: null, form: null, gate: null, search: "", name: "", tags: "", priority: null, enable: true };
    const body = el("div");
    const steps = el("ol", { class: "st-steps", "aria-label": "Steps" }, WIZ_STEPS.map(function (s) { return el("li", {}, [s]); }));
    const content = el("div", { id: "st-wizard-step" });
    const back = btn("Back", function () { go(w.step - 1); }, null, { "data-action": "wizard-back" });
    const next = btn("Next", function () { go(w.step + 1); }, "btn-glow", { "data-action": "wizard-next", id: "wz-next" });
    body.appendChild(steps);
    body.appendChild(content);
    back.style.marginRight = "auto";
    body.appendChild(el("div", { class: "st-wizard-nav" }, [back, next]));
    modal("Add Storage Provider", [body]);
    const maxPriority = state.modules.reduce(function (a, m) { return Math.max(a, m.priority || 0); }, 0);
    w.priority = state.modules.length ? maxPriority + 10 : 10;

    const canNext = function () {
      if (w.step === 0) return !!w.provider;
      if (w.step === 1) return !!w.form;
      if (w.step === 2) return !!(w.gate && w.gate.passed());
      if (w.step === 3) return !!w.name.trim();
      return true;
    };
    const refreshNav = function () {
      next.disabled = !canNext();
      back.hidden = w.step === 0;
      next.textContent = w.step === 4 ? (w.enable ? "Save and enable" : "Save") : "Next";
      Array.prototype.forEach.call(steps.children, function (li, i) {
        li.classList.toggle("done", i < w.step);
        if (i === w.step) li.setAttribute("aria-current", "step"); else li.removeAttribute("aria-current");
      });
    };
    const go = async function (to) {
      if (to > w.step && !canNext()) return;
      if (w.step === 1 && to === 2 && !w.form.check()) return;
      if (to === 5) { await saveWizard(w, next); return; }
      w.step = Math.max(0, to);
      render();
    };
    const render = function () {
      content.replaceChildren();
      [stepProvider, stepCredentials, stepTest, stepName, stepConfirm][w.step]();
      refreshNav();
    };
    const stepProvider = function () {
      const search = el("input", { type: "search", class: "st-provider-search", placeholder: "Search providers (S3, Drive, SFTP…)", "aria-label": "Search providers", value: w.search });
      const groups = el("div");
      const draw = function () {
        groups.replaceChildren();
        const q = w.search.toLowerCase();
        let shown = 0;
        CATEGORIES.forEach(function (cat) {
          const list = state.providers.filter(function (p) {
            return p.category === cat[0] && (!q || (p.name + " " + p.description + " " + p.id).toLowerCase().indexOf(q) >= 0);
          });
          if (!list.length) return;
          shown += list.length;
          const grid = el("div", { class: "st-provider-grid", role: "group", "aria-label": cat[1] });
          list.forEach(function (p) {
            const card = el("button", { type: "button", class: "st-provider", "data-provider": p.id, "aria-pressed": w.provider === p ? "true" : "false" },
              [icon(p.icon), el("span", {}, [el("span", { class: "st-pname" }, [p.name]), el("span", { class: "st-pdesc" }, [p.description])])]);
            card.addEventListener("click", function () {
              if (w.provider !== p) { w.provider = p; w.form = null; w.gate = null; }
              go(1);
            });
            grid.appendChild(card);
          });
          groups.appendChild(el("div", { class: "st-provider-group" }, [el("h4", {}, [cat[1]]), grid]));
        });
        if (!shown) groups.appendChild(el("p", { class: "st-empty" }, ["No provider matches “" + w.search + "”."]));
      };
      search.addEventListener("input", function () { w.search = search.value; draw(); });
      content.appendChild(search);
      content.appendChild(groups);
      draw();
      setTimeout(function () { search.focus(); }, 0);
    };
    const stepCredentials = function () {
      const p = w.provider;
      if (!w.form) {
        w.form = providerForm(p, { advancedInline: true });
        w.gate = testGate(w.form, null, refreshNav);
      }
      content.appendChild(el("div", { class: "st-detail-head" }, [icon(p.icon), el("div", { class: "st-detail-titles" }, [
        el("h3", {}, [p.name]), el("p", { class: "hint" }, [p.description + " ",
          p.docs_url ? el("a", { href: p.docs_url, target: "_blank", rel: "noopener noreferrer" }, ["Provider documentation"]) : null])])]));
      content.appendChild(el("p", { class: "hint" }, ["Fields marked * are needed. Secrets are stored encrypted and never shown again."]));
      content.appendChild(w.form.root);
      const first = w.form.root.querySelector("input, select, textarea");
      if (first) setTimeout(function () { first.focus(); }, 0);
    };
    const stepTest = function () {
      const testBtn = btn("Test Connection", null, "btn-glow", { "data-action": "test" });
      testBtn.addEventListener("click", function () { w.gate.run(testBtn); });
      content.appendChild(el("p", {}, ["PentaVision signs in, writes a small temporary file, reads it back, compares it and deletes it. Saving is possible once every step passes."]));
      content.appendChild(el("div", { class: "st-actions" }, [testBtn, btn("Change the credentials", function () { go(1); })]));
      content.appendChild(w.gate.box);
      setTimeout(function () { testBtn.focus(); }, 0);
    };
    const stepName = function () {
      if (!w.name) {
        const same = state.modules.filter(function (m) { return m.provider === w.provider.id; }).length;
        w.name = w.provider.name + (same ? " " + (same + 1) : "");
      }
      const name = el("input", { id: "wz-name", value: w.name, maxlength: "80", required: true });
      const tags = el("input", { id: "wz-tags", value: w.tags, placeholder: "off-site, archive", "aria-describedby": "wz-tags-help" });
      const prio = el("input", { id: "wz-priority", type: "number", min: "0", max: "100000", value: w.priority, "aria-describedby": "wz-prio-help" });
      name.addEventListener("input", function () { w.name = name.value; refreshNav(); });
      tags.addEventListener("input", function () { w.tags = tags.value; });
      prio.addEventListener("input", function () { w.priority = prio.value === "" ? null : Number(prio.value); });
      content.appendChild(el("div", { class: "st-form" }, [
        el("div", { class: "field" }, [el("label", { for: "wz-name" }, ["Name", el("span", { class: "st-req", "aria-hidden": "true" }, [" *"])]), name,
          el("small", { class: "field-help" }, ["How this module is called on this page and in the cameras' storage lists."])]),
        el("div", { class: "field" }, [el("label", { for: "wz-tags" }, ["Tags (optional)"]), tags, el("small", { class: "field-help", id: "wz-tags-help" }, ["Words to group modules, separated by commas."])]),
        el("div", { class: "field" }, [el("label", { for: "wz-priority" }, ["Priority"]), prio,
          el("small", { class: "field-help", id: "wz-prio-help" }, ["Lower numbers are tried first. Cameras without their own list upload to the first healthy module."])]),
      ]));
      setTimeout(function () { name.focus(); }, 0);
    };
    const stepConfirm = function () {
      const enable = el("input", { id: "wz-enable", type: "checkbox", checked: w.enable });
      enable.addEventListener("change", function () { w.enable = enable.checked; refreshNav(); });
      const dl = el("dl", { class: "st-summary" });
      const row = function (k, v) { dl.appendChild(el("dt", {}, [k])); dl.appendChild(el("dd", {}, [v])); };
      row("Provider", w.provider.name);
      row("Name", w.name.trim());
      row("Tags", w.tags.trim() || "none");
      row("Priority", w.priority == null ? "last" : String(w.priority));
      row("Connection test", "Passed in " + w.gate.result.total_ms + " ms");
      content.appendChild(dl);
      content.appendChild(el("p", {}, [el("label", { class: "st-check", for: "wz-enable" }, [enable, " Enable now: new segments start uploading to it"])]));
      if (w.gate.passed()) setTimeout(function () { next.focus(); }, 0);
    };
    render();
  }

  async function saveWizard(w, button) {
    if (!w.gate.passed()) { toast("Test the connection again: the values changed since the last test.", "error"); return; }
    const v = w.form.values();
    const body = {
      name: w.name.trim(), provider: w.provider.id, config: v.config, secrets: v.secrets, proof: w.gate.proof(),
      tags: w.tags.split(",").map(function (t) { return t.trim(); }).filter(Boolean), enabled: w.enable,
    };
    if (w.priority != null) body.priority = w.priority;
    button.disabled = true;
    try {
      const m = await api("POST", BASE + "/modules", body);
      closeModal();
      toast("Storage module " + m.name + " saved" + (m.enabled ? " and enabled." : "."), "info");
      await loadModules();
      select(m.id, "overview");
      statusBar();
    } catch (e) { toast(e.message, "error"); button.disabled = false; }
  }

  // ---- Status bar ----

  async function statusBar() {
    const set = function (key, cls, text) {
      const item = document.querySelector("[data-sb=" + key + "]");
      item.className = "st-sb-item " + cls;
      const t = item.querySelector(".st-sb-text");
      if (t.textContent !== text) t.textContent = text; // announced only when it changes
    };
    let q = null;
    try { q = await api("GET", BASE + "/queue"); } catch (_) { q = null; }
    state.queue = q;
    const enabled = state.modules.filter(function (m) { return m.enabled; });
    const failing = enabled.filter(function (m) { return m.status === "failing"; }).length;
    const degraded = enabled.filter(function (m) { return m.status === "degraded"; }).length;
    const healthy = enabled.length - failing - degraded;
    if (!enabled.length) set("storage", "warn", "Storage: no module enabled");
    else if (!failing && !degraded) set("storage", "ok", "Storage OK: " + healthy + " of " + enabled.length + " healthy");
    else set("storage", failing === enabled.length ? "bad" : "warn", "Storage: " + (failing ? failing + " failing" : "") + (failing && degraded ? ", " : "") + (degraded ? degraded + " degraded" : ""));
    if (q) {
      set("uploads", q.uploading ? "busy" : "ok", "Uploads running: " + q.uploading + (q.pending ? " · " + q.pending + " waiting" : ""));
      set("errors", q.failed ? "bad" : "ok", "Errors: " + (q.failed ? plural(q.failed, "upload retrying", "uploads retrying") : "none") + " · " + q.done_24h + " done in 24 h");
    } else {
      set("uploads", "", "Uploads running: unknown");
      set("errors", "", "Errors: unknown");
    }
    const bad = failing > 0 || (q && q.failed > 0);
    const warn = degraded > 0 || !enabled.length || (q && q.pending > 50);
    set("health", bad ? "bad" : warn ? "warn" : "ok", "System health: " + (bad ? "needs attention" : warn ? "fair" : "good"));
  }

  /** Relative times ("3 min ago") stay current between refreshes. */
  function tickTimes() {
    document.querySelectorAll("time[data-rel]").forEach(function (t) { t.textContent = ago(t.getAttribute("datetime")); });
  }

  document.addEventListener("DOMContentLoaded", async function () {
    setupTabs();
    setupModal();
    document.querySelectorAll("[data-action=storage-add]").forEach(function (b) { b.addEventListener("click", openWizard); });
    try {
      await loadProviders();
      await loadModules();
      await statusBar();
    } catch (e) { toast(e.message, "error"); }
    const wanted = Number((location.hash.match(/^#module-(\d+)/) || [])[1]);
    select(moduleById(wanted) ? wanted : state.modules.length ? state.modules[0].id : null);
    setInterval(function () { if (document.visibilityState === "visible") refresh(); }, POLL_MS);
    setInterval(tickTimes, 30000);
  });
})();
