// PentaVision sign-in: the sign-in form (passkey, or password and — when the server asks for it —
// a code, in place), the enrolment wizard (password typed twice with its strength, passkey or
// authenticator app, recovery codes saved), and the passkey and recovery-code helpers the
// security page shares (window.pvAuth).
"use strict";

(function () {
  const toast = function (message, level) {
    if (window.pv && window.pv.toast) window.pv.toast(message, level);
  };
  const page = (function () {
    try { return JSON.parse((document.getElementById("pv-page") || {}).textContent || "{}"); } catch (_) { return {}; }
  })();

  // ---- Calls to /api/v1/auth (no CSRF token: these routes need none) ----

  /** Call `url`; resolves with the JSON body (null when empty), rejects with the problem's
   * detail (`err.status` holds the HTTP status). */
  async function call(method, url, body) {
    const headers = { Accept: "application/json" };
    if (body !== undefined) headers["Content-Type"] = "application/json";
    const response = await fetch(url, {
      method: method, headers: headers, credentials: "same-origin",
      body: body === undefined ? undefined : JSON.stringify(body),
    });
    if (!response.ok) {
      let detail = "the server answered " + response.status;
      try {
        const problem = await response.json();
        if (problem && problem.detail) detail = problem.detail;
      } catch (_) { /* not JSON */ }
      const err = new Error(detail);
      err.status = response.status;
      throw err;
    }
    const text = await response.text();
    return text ? JSON.parse(text) : null;
  }
  const post = function (url, body) { return call("POST", url, body === undefined ? {} : body); };

  /** A sentence from a server message: capital first letter, full stop. */
  function sentence(message) {
    const m = String(message || "").trim();
    if (!m) return m;
    const s = m.charAt(0).toUpperCase() + m.slice(1);
    return /[.!?]$/.test(s) ? s : s + ".";
  }

  // ---- WebAuthn ----

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

  /** Why the browser refused a ceremony, in words (the DOMException names are for programs). */
  function webauthnMessage(e) {
    if (e && e.name === "NotAllowedError") return "the passkey request was cancelled or timed out";
    if (e && e.name === "InvalidStateError") return "this device already holds a passkey for this account";
    if (e && e.name === "SecurityError") return "this browser refuses passkeys on this address";
    return (e && e.message) || "the browser refused";
  }

  /** Register a passkey named `name` for the signed-in user; resolves with its row. */
  async function registerPasskey(name) {
    if (!window.PublicKeyCredential) throw new Error("this browser does not support passkeys");
    const start = await post("/api/v1/auth/passkeys/register/start");
    const pk = start.options.publicKey;
    pk.challenge = b64urlToBuf(pk.challenge);
    pk.user.id = b64urlToBuf(pk.user.id);
    (pk.excludeCredentials || []).forEach(function (c) { c.id = b64urlToBuf(c.id); });
    let cred;
    try {
      cred = await navigator.credentials.create({ publicKey: pk });
    } catch (e) {
      throw new Error(webauthnMessage(e));
    }
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
    return post("/api/v1/auth/passkeys/register/finish",
      { ceremony_id: start.ceremony_id, credential: credential, name: name || "Passkey" });
  }

  // ---- Where to go after signing in ----

  /** `next` when it is a page of this site (one leading "/", never "//" or "/\"), else "/". */
  function safeNext(next) {
    return typeof next === "string" && next.charAt(0) === "/" && next.charAt(1) !== "/"
      && next.charAt(1) !== "\\" && !/[\u0000-\u001f]/.test(next) ? next : "/";
  }
  const next = safeNext(page.next);

  function afterSignIn(result) {
    if (result && result.stage === "enrol") {
      window.location.assign(next === "/" ? "/enrol" : "/enrol?next=" + encodeURIComponent(next));
    } else {
      window.location.assign(next);
    }
  }

  // ---- The sign-in page ----

  async function passkeyLogin() {
    try {
      if (!window.PublicKeyCredential) throw new Error("this browser does not support passkeys");
      const start = await post("/api/v1/auth/passkeys/login/start");
      const pk = start.options.publicKey;
      pk.challenge = b64urlToBuf(pk.challenge);
      (pk.allowCredentials || []).forEach(function (c) { c.id = b64urlToBuf(c.id); });
      let cred;
      try {
        cred = await navigator.credentials.get({ publicKey: pk });
      } catch (e) {
        throw new Error(webauthnMessage(e));
      }
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
      afterSignIn(await post("/api/v1/auth/passkeys/login/finish",
        { ceremony_id: start.ceremony_id, credential: credential }));
    } catch (e) {
      toast("Passkey sign-in failed: " + e.message, "error");
    }
  }

  /** Show the code field in place, saying what it is for. */
  function askForCode(form, label, hint) {
    const row = document.getElementById("code-row");
    document.getElementById("code-label").textContent = label;
    document.getElementById("code-hint").textContent = hint;
    if (row.hidden) {
      row.hidden = false;
      form.code.value = "";
    }
    form.code.focus();
  }

  async function passwordLogin(event) {
    event.preventDefault();
    const form = event.target;
    const codeRow = document.getElementById("code-row");
    if (!form.username.value.trim() || !form.password.value) {
      toast("Enter your user name and password.", "error");
      (form.username.value.trim() ? form.password : form.username).focus();
      return;
    }
    const body = { username: form.username.value.trim(), password: form.password.value };
    if (!codeRow.hidden && form.code.value.trim()) body.code = form.code.value.trim();
    try {
      afterSignIn(await post("/api/v1/auth/login", body));
    } catch (e) {
      // The server asks for what the account needs: the code field appears, no error.
      if (e.status === 401 && /authenticator app/.test(e.message) && !body.code) {
        askForCode(form, "Code from your authenticator app",
          "Six digits from the app, or one of your recovery codes.");
        return;
      }
      if (/signs in with its passkey/.test(e.message) && !body.code) {
        askForCode(form, "Recovery code",
          "This account signs in with its passkey. Lost it? Enter one of your recovery codes.");
        return;
      }
      toast(sentence(e.message), "error");
    }
  }

  // ---- Recovery codes: show, copy, download, print ----

  let shownCodes = [];

  function showCodes(codes) {
    shownCodes = codes.slice();
    const list = document.getElementById("recovery-list");
    list.replaceChildren();
    codes.forEach(function (c) {
      const li = document.createElement("li");
      li.textContent = c;
      list.appendChild(li);
    });
  }

  function codesText() {
    const who = page.account || page.username || "";
    return "PentaVision recovery codes" + (who ? " for " + who : "") + " (" + location.host + ")\n"
      + "Each code works once. Made " + new Date().toISOString().slice(0, 10) + ".\n\n"
      + shownCodes.join("\n") + "\n";
  }

  async function copyText(text) {
    try {
      await navigator.clipboard.writeText(text);
      return true;
    } catch (_) {
      const area = document.createElement("textarea");
      area.value = text;
      area.setAttribute("readonly", "");
      area.className = "visually-hidden";
      document.body.appendChild(area);
      area.select();
      let ok = false;
      try { ok = document.execCommand("copy"); } catch (_) { ok = false; }
      area.remove();
      return ok;
    }
  }

  async function copyCodes() {
    if (await copyText(codesText())) toast("Recovery codes copied.", "info");
    else toast("The browser did not allow copying; select the codes and copy them yourself.", "error");
  }

  function downloadCodes() {
    const url = URL.createObjectURL(new Blob([codesText()], { type: "text/plain" }));
    const a = document.createElement("a");
    a.href = url;
    a.download = "pentavision-recovery-codes.txt";
    document.body.appendChild(a);
    a.click();
    a.remove();
    setTimeout(function () { URL.revokeObjectURL(url); }, 10000);
  }

  function printCodes() {
    document.body.classList.add("printing-codes");
    window.print();
    setTimeout(function () { document.body.classList.remove("printing-codes"); }, 0);
  }

  function wireCodeButtons() {
    const on = function (action, fn) {
      document.querySelectorAll("[data-action=" + action + "]").forEach(function (el) {
        el.addEventListener("click", fn);
      });
    };
    on("codes-copy", copyCodes);
    on("codes-download", downloadCodes);
    on("codes-print", printCodes);
  }

  /** Show the QR code and key of a started TOTP enrolment. */
  function showTotp(t) {
    const qr = document.getElementById("totp-qr");
    const img = document.createElement("img");
    img.alt = "QR code for your authenticator app";
    img.src = "data:image/svg+xml;base64," + btoa(t.qr_svg);
    qr.replaceChildren(img);
    qr.hidden = false;
    const secret = document.getElementById("totp-secret");
    secret.textContent = "Or enter this key: " + t.secret;
    secret.hidden = false;
  }

  // ---- Password strength ----

  /** A rough strength of `pw` (0 too short … 4 strong) and its word. */
  function strength(pw, min, account) {
    if (pw.length < min) return { score: 0, word: "too short (at least " + min + " characters)" };
    let pool = 0;
    if (/[a-z]/.test(pw)) pool += 26;
    if (/[A-Z]/.test(pw)) pool += 26;
    if (/[0-9]/.test(pw)) pool += 10;
    if (/[^A-Za-z0-9]/.test(pw)) pool += 33;
    let bits = pw.length * Math.log2(Math.max(pool, 2));
    const lower = pw.toLowerCase();
    if (/(.)\1{2,}/.test(pw)) bits -= 15;
    ["password", "pentavision", "123456", "qwerty", "letmein", "admin"].forEach(function (w) {
      if (lower.indexOf(w) >= 0) bits -= 25;
    });
    if (account && lower.indexOf(account.toLowerCase()) >= 0) bits -= 20;
    if (bits < 45) return { score: 1, word: "weak" };
    if (bits < 60) return { score: 2, word: "fair" };
    if (bits < 80) return { score: 3, word: "good" };
    return { score: 4, word: "strong" };
  }

  // ---- The enrolment wizard ----

  function enrolWizard(root) {
    const min = page.min_password_chars || 10;
    const steps = ["password", "factor", "codes"];
    function show(step) {
      steps.forEach(function (s, i) {
        const section = document.getElementById("step-" + s);
        if (section) section.hidden = s !== step;
        const li = root.querySelector(".wizard-steps [data-step=" + s + "]");
        const at = steps.indexOf(step);
        li.classList.toggle("done", i < at);
        li.classList.toggle("current", i === at);
        if (i === at) li.setAttribute("aria-current", "step"); else li.removeAttribute("aria-current");
      });
      const heading = document.querySelector("#step-" + step + " h2");
      if (heading) { heading.tabIndex = -1; heading.focus(); }
      window.scrollTo(0, 0);
    }
    show(page.needs_password ? "password" : "factor");

    // Step 1: the password, typed twice, its strength shown as it is typed.
    const pw = document.getElementById("new-password");
    const again = document.getElementById("new-password-again");
    const bar = document.getElementById("strength-bar");
    const strengthText = document.getElementById("strength-text");
    const matchText = document.getElementById("match-text");
    function update() {
      const s = strength(pw.value, min, page.account);
      bar.style.width = (pw.value ? Math.max(8, s.score * 25) : 0) + "%";
      bar.className = "strength-bar strength-" + s.score;
      strengthText.textContent = pw.value ? "Strength: " + s.word : "Strength: type a password";
      matchText.textContent = !again.value ? "" : again.value === pw.value ? "The two match." : "The two differ.";
    }
    if (pw) {
      pw.addEventListener("input", update);
      again.addEventListener("input", update);
      document.getElementById("password-form").addEventListener("submit", async function (e) {
        e.preventDefault();
        if (pw.value.length < min) {
          toast("New password: use at least " + min + " characters.", "error");
          pw.focus();
          return;
        }
        if (again.value !== pw.value) {
          toast("The two passwords differ; type the same password twice.", "error");
          again.focus();
          return;
        }
        try {
          await post("/api/v1/auth/password", { new_password: pw.value });
          pw.value = again.value = "";
          toast("Password set.", "info");
          show("factor");
        } catch (err) {
          toast(sentence(err.message), "error");
        }
      });
    }

    // Step 3 needs codes: from the TOTP confirmation, or made after a passkey.
    async function codesAfterPasskey() {
      const retry = root.querySelector("[data-action=codes-retry]");
      try {
        showCodes((await post("/api/v1/auth/recovery-codes")).recovery_codes);
        retry.hidden = true;
      } catch (err) {
        toast("Cannot make recovery codes: " + sentence(err.message), "error");
        retry.hidden = false;
      }
    }
    root.querySelector("[data-action=codes-retry]").addEventListener("click", codesAfterPasskey);

    // Step 2, either way.
    const register = root.querySelector("[data-action=passkey-register]");
    if (register) {
      register.addEventListener("click", async function () {
        register.disabled = true;
        try {
          await registerPasskey(document.getElementById("passkey-name").value.trim());
          toast("Passkey created.", "info");
          await codesAfterPasskey();
          show("codes");
        } catch (err) {
          toast("Passkey registration failed: " + err.message, "error");
        } finally {
          register.disabled = false;
        }
      });
    }
    root.querySelector("[data-action=totp-start]").addEventListener("click", async function () {
      try {
        showTotp(await post("/api/v1/auth/totp/start"));
        document.getElementById("totp-code").focus();
      } catch (err) {
        toast(sentence(err.message), "error");
      }
    });
    document.querySelector("#totp-form form").addEventListener("submit", async function (e) {
      e.preventDefault();
      const code = document.getElementById("totp-code").value.trim();
      if (!/^\d{6}$/.test(code)) {
        toast("Code from the app: enter the six digits the app shows.", "error");
        document.getElementById("totp-code").focus();
        return;
      }
      try {
        const r = await post("/api/v1/auth/totp/confirm", { code: code });
        showCodes(r.recovery_codes);
        toast("Authenticator app enrolled.", "info");
        show("codes");
      } catch (err) {
        toast(sentence(err.message), "error");
      }
    });

    // Step 3: saved? Then finish, to the page first asked for.
    const saved = document.getElementById("codes-saved");
    const finish = document.getElementById("enrol-finish");
    saved.addEventListener("change", function () { finish.disabled = !saved.checked; });
    finish.addEventListener("click", function () {
      if (!saved.checked) {
        toast("Tick \u201cI have saved them\u201d first.", "error");
        return;
      }
      window.location.assign(next);
    });
    wireCodeButtons();
  }

  document.addEventListener("DOMContentLoaded", function () {
    document.querySelectorAll("[data-action=passkey-login]").forEach(function (b) {
      b.addEventListener("click", passkeyLogin);
    });
    const form = document.getElementById("login-form");
    if (form) form.addEventListener("submit", passwordLogin);
    const wizard = document.getElementById("enrol-wizard");
    if (wizard) enrolWizard(wizard);
  });

  window.pvAuth = {
    call: call, registerPasskey: registerPasskey, showCodes: showCodes, showTotp: showTotp,
    wireCodeButtons: wireCodeButtons, copyText: copyText, sentence: sentence, page: page,
  };
})();
