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
