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

  async function refreshStatus() {
    try {
      const response = await fetch("/api/v1/system", { headers: { Accept: "application/json" } });
      if (!response.ok) { toast(await errorMessage(response), "error"); return; }
      const info = await response.json();
      const ready = info.databases.filter(function (d) { return d.reachable; }).length;
      const uptime = document.querySelector("[data-field=uptime]");
      if (uptime) uptime.textContent = info.uptime_seconds + "s";
      toast("Status refreshed: " + ready + " of " + info.databases.length + " databases ready.",
        ready === info.databases.length ? "info" : "error");
    } catch (e) {
      toast("Cannot reach the server: " + e.message, "error");
    }
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
  });

  window.pv = { toast: toast };
})();
