// PentaVision security page: the signed-in user's passkeys (add, rename, remove), authenticator
// app (set up, remove), recovery codes (make new ones), sessions (revoke) and API tokens (create —
// the secret shown once —, revoke). Uses window.pvAuth (signin.js) and window.pv (app.js).
"use strict";

(function () {
  const auth = window.pvAuth;
  const toast = function (message, level) { window.pv.toast(message, level); };
  const when = function (value) {
    if (!value) return "never";
    return window.pv.formatTime(value);
  };
  const fail = function (what) {
    return function (err) { toast(what + ": " + auth.sentence(err.message), "error"); };
  };

  function cell(text, className) {
    const td = document.createElement("td");
    td.textContent = text;
    if (className) td.className = className;
    return td;
  }

  function button(label, onClick, extra) {
    const b = document.createElement("button");
    b.type = "button";
    b.className = "btn btn-small" + (extra ? " " + extra : "");
    b.textContent = label;
    b.addEventListener("click", onClick);
    return b;
  }

  function emptyRow(tbody, columns, text) {
    const tr = document.createElement("tr");
    const td = cell(text, "hint");
    td.colSpan = columns;
    tr.appendChild(td);
    tbody.replaceChildren(tr);
  }

  // ---- Passkeys ----

  async function loadPasskeys() {
    const tbody = document.getElementById("passkey-rows");
    const rows = await auth.call("GET", "/api/v1/auth/passkeys");
    if (!rows.length) { emptyRow(tbody, 4, "No passkeys yet."); return; }
    tbody.replaceChildren();
    rows.forEach(function (p) {
      const tr = document.createElement("tr");
      tr.dataset.id = p.id;
      tr.appendChild(cell(p.name));
      tr.appendChild(cell(when(p.created_at)));
      tr.appendChild(cell(when(p.last_used_at)));
      const actions = document.createElement("td");
      actions.className = "actions";
      actions.appendChild(button("Rename", function () {
        const name = window.prompt("New name for the passkey \u201c" + p.name + "\u201d:", p.name);
        if (name === null || !name.trim() || name.trim() === p.name) return;
        auth.call("PATCH", "/api/v1/auth/passkeys/" + p.id, { name: name.trim() })
          .then(function () { toast("Passkey renamed.", "info"); return loadPasskeys(); })
          .catch(fail("Cannot rename the passkey"));
      }));
      actions.appendChild(button("Remove", function () {
        if (!window.confirm("Remove the passkey \u201c" + p.name + "\u201d? It will no longer sign you in.")) return;
        auth.call("DELETE", "/api/v1/auth/passkeys/" + p.id)
          .then(function () { toast("Passkey removed.", "info"); return loadPasskeys(); })
          .catch(fail("Cannot remove the passkey"));
      }, "btn-danger"));
      tr.appendChild(actions);
      tbody.appendChild(tr);
    });
  }

  const passkeyForm = document.getElementById("passkey-form");
  if (passkeyForm) {
    passkeyForm.addEventListener("submit", async function (e) {
      e.preventDefault();
      const name = document.getElementById("passkey-name").value.trim();
      if (!name) { toast("Name for a new passkey: give it a name.", "error"); return; }
      try {
        await auth.registerPasskey(name);
        toast("Passkey added.", "info");
        document.getElementById("passkey-name").value = "";
        await loadPasskeys();
      } catch (err) {
        toast("Passkey registration failed: " + err.message, "error");
      }
    });
  }

  // ---- Authenticator app and recovery codes ----

  const totpForm = document.getElementById("totp-form");
  const codesPanel = document.getElementById("codes-panel");

  async function loadTotp() {
    const me = await auth.call("GET", "/api/v1/auth/me");
    document.getElementById("totp-status").textContent = me.totp
      ? "An authenticator app is set up. Setting up again replaces it."
      : "No authenticator app is set up.";
    document.querySelector("[data-action=totp-setup]").textContent = me.totp ? "Replace" : "Set up";
    document.querySelector("[data-action=totp-remove]").hidden = !me.totp;
  }

  function showNewCodes(codes) {
    auth.showCodes(codes);
    codesPanel.hidden = false;
    codesPanel.scrollIntoView({ block: "nearest" });
  }

  document.querySelector("[data-action=totp-setup]").addEventListener("click", async function () {
    try {
      auth.showTotp(await auth.call("POST", "/api/v1/auth/totp/start", {}));
      totpForm.hidden = false;
      document.getElementById("totp-code").focus();
    } catch (err) {
      fail("Cannot start the set-up")(err);
    }
  });
  totpForm.querySelector("form").addEventListener("submit", async function (e) {
    e.preventDefault();
    const code = document.getElementById("totp-code").value.trim();
    if (!/^\d{6}$/.test(code)) {
      toast("Code from the app: enter the six digits the app shows.", "error");
      return;
    }
    try {
      const r = await auth.call("POST", "/api/v1/auth/totp/confirm", { code: code });
      totpForm.hidden = true;
      document.getElementById("totp-code").value = "";
      toast("Authenticator app set up.", "info");
      showNewCodes(r.recovery_codes);
      await loadTotp();
    } catch (err) {
      fail("Cannot set up the app")(err);
    }
  });
  document.querySelector("[data-action=totp-remove]").addEventListener("click", function () {
    if (!window.confirm("Remove the authenticator app? Its codes and your recovery codes stop working.")) return;
    auth.call("DELETE", "/api/v1/auth/totp")
      .then(function () { toast("Authenticator app removed.", "info"); return loadTotp(); })
      .catch(fail("Cannot remove the app"));
  });
  document.querySelector("[data-action=codes-renew]").addEventListener("click", function () {
    if (!window.confirm("Make new recovery codes? The old ones stop working.")) return;
    auth.call("POST", "/api/v1/auth/recovery-codes", {})
      .then(function (r) { showNewCodes(r.recovery_codes); })
      .catch(fail("Cannot make recovery codes"));
  });
  document.querySelector("[data-action=codes-done]").addEventListener("click", function () {
    codesPanel.hidden = true;
    document.getElementById("recovery-list").replaceChildren();
  });
  auth.wireCodeButtons();

  // ---- Sessions ----

  /** "Chrome on Linux" from a User-Agent, else the agent itself. */
  function browserName(ua) {
    if (!ua) return "Unknown browser";
    const name = /Edg\//.test(ua) ? "Edge" : /Firefox\//.test(ua) ? "Firefox"
      : /Chrome\//.test(ua) ? "Chrome" : /Safari\//.test(ua) ? "Safari" : null;
    const os = /Android/.test(ua) ? "Android" : /iPhone|iPad/.test(ua) ? "iOS"
      : /Windows/.test(ua) ? "Windows" : /Mac OS X/.test(ua) ? "macOS" : /Linux/.test(ua) ? "Linux" : null;
    if (!name) return ua.length > 60 ? ua.slice(0, 57) + "…" : ua;
    return os ? name + " on " + os : name;
  }

  async function loadSessions() {
    const tbody = document.getElementById("session-rows");
    const rows = await auth.call("GET", "/api/v1/auth/sessions");
    if (!rows.length) { emptyRow(tbody, 5, "No sessions."); return; }
    tbody.replaceChildren();
    rows.forEach(function (s) {
      const tr = document.createElement("tr");
      tr.dataset.id = s.id;
      const who = document.createElement("td");
      const name = document.createElement("span");
      name.textContent = browserName(s.user_agent);
      if (s.current) {
        const tag = document.createElement("span");
        tag.className = "tag";
        tag.textContent = "this browser";
        name.append(" ", tag);
      }
      who.appendChild(name);
      tr.appendChild(who);
      tr.appendChild(cell(s.ip || "unknown"));
      tr.appendChild(cell(when(s.created_at)));
      tr.appendChild(cell(when(s.last_seen_at)));
      const actions = document.createElement("td");
      actions.className = "actions";
      if (!s.current) {
        actions.appendChild(button("Sign out", function () {
          auth.call("DELETE", "/api/v1/auth/sessions/" + s.id)
            .then(function () { toast("That session is signed out.", "info"); return loadSessions(); })
            .catch(fail("Cannot sign out that session"));
        }));
      }
      tr.appendChild(actions);
      tbody.appendChild(tr);
    });
  }

  // ---- API tokens ----

  async function loadTokens() {
    const tbody = document.getElementById("token-rows");
    const rows = (await auth.call("GET", "/api/v1/auth/tokens")).filter(function (t) { return !t.revoked_at; });
    if (!rows.length) { emptyRow(tbody, 6, "No API tokens."); return; }
    tbody.replaceChildren();
    rows.forEach(function (t) {
      const tr = document.createElement("tr");
      tr.dataset.id = t.id;
      tr.appendChild(cell(t.name));
      const prefix = document.createElement("td");
      const mono = document.createElement("span");
      mono.className = "mono";
      mono.textContent = (t.prefix.indexOf("pvt_") === 0 ? t.prefix : "pvt_" + t.prefix) + "…";
      prefix.appendChild(mono);
      tr.appendChild(prefix);
      tr.appendChild(cell(when(t.created_at)));
      tr.appendChild(cell(t.expires_at ? when(t.expires_at) : "never"));
      tr.appendChild(cell(when(t.last_used_at)));
      const actions = document.createElement("td");
      actions.className = "actions";
      actions.appendChild(button("Revoke", function () {
        if (!window.confirm("Revoke the token \u201c" + t.name + "\u201d? Programs using it lose access at once.")) return;
        auth.call("DELETE", "/api/v1/auth/tokens/" + t.id)
          .then(function () { toast("Token revoked.", "info"); return loadTokens(); })
          .catch(fail("Cannot revoke the token"));
      }, "btn-danger"));
      tr.appendChild(actions);
      tbody.appendChild(tr);
    });
  }

  document.getElementById("token-form").addEventListener("submit", async function (e) {
    e.preventDefault();
    const name = document.getElementById("token-name").value.trim();
    const expiry = document.getElementById("token-expiry").value;
    if (!name) {
      toast("Name: give the token a name, e.g. what will use it.", "error");
      document.getElementById("token-name").focus();
      return;
    }
    const body = { name: name };
    if (expiry) {
      const at = new Date(expiry + "T23:59:59");
      if (isNaN(at.getTime()) || at.getTime() <= Date.now()) {
        toast("Expires: choose a day in the future.", "error");
        return;
      }
      body.expires_at = at.toISOString();
    }
    try {
      const t = await auth.call("POST", "/api/v1/auth/tokens", body);
      document.getElementById("token-secret").textContent = t.secret;
      document.getElementById("token-secret-box").hidden = false;
      document.getElementById("token-name").value = "";
      document.getElementById("token-expiry").value = "";
      toast("Token created. Copy it now; it is shown only once.", "info");
      await loadTokens();
    } catch (err) {
      fail("Cannot create the token")(err);
    }
  });
  document.querySelector("[data-action=token-copy]").addEventListener("click", async function () {
    const ok = await auth.copyText(document.getElementById("token-secret").textContent);
    toast(ok ? "Token copied." : "The browser did not allow copying; select the token and copy it yourself.",
      ok ? "info" : "error");
  });
  document.querySelector("[data-action=token-done]").addEventListener("click", function () {
    document.getElementById("token-secret").textContent = "";
    document.getElementById("token-secret-box").hidden = true;
  });

  function loadAll() {
    loadPasskeys().catch(fail("Cannot list your passkeys"));
    loadTotp().catch(fail("Cannot read your authenticator app"));
    loadSessions().catch(fail("Cannot list your sessions"));
    loadTokens().catch(fail("Cannot list your API tokens"));
  }
  if (document.readyState === "loading") document.addEventListener("DOMContentLoaded", loadAll);
  else loadAll();
})();
