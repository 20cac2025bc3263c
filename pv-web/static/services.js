// PentaVision Services page: the allow-listed system services, their state, and a restart
// (with the page's CSRF token, through window.pv.api).
"use strict";

(function () {
  const page = window.pv.page;
  const toast = function (m, l) { return window.pv.toast(m, l); };
  /** Why a state can be unknown: the service manager did not answer about the unit. */
  const UNKNOWN = "PentaVision cannot tell: systemd, the service manager, did not answer. " +
    "Usually systemd is not running on this machine (for example inside a container), " +
    "or the service is not installed here.";

  async function load(announce) {
    const rows = document.getElementById("service-rows");
    try {
      const services = await window.pv.api("GET", "/api/v1/services");
      rows.replaceChildren();
      services.forEach(function (s) {
        const tr = document.createElement("tr");
        tr.dataset.service = s.name;
        const name = document.createElement("td");
        name.textContent = s.name;
        tr.appendChild(name);
        const cellTd = document.createElement("td");
        const state = document.createElement("div");
        state.className = "cell-stack";
        cellTd.appendChild(state);
        const badge = document.createElement("span");
        badge.className = "badge " + (s.state === "active" ? "ok" : s.state === "unknown" ? "warn" : "bad");
        badge.textContent = s.state;
        state.appendChild(badge);
        if (s.state === "unknown") {
          const why = document.createElement("span");
          why.className = "state-note";
          why.textContent = s.reason ? s.reason.charAt(0).toUpperCase() + s.reason.slice(1) + "." : UNKNOWN;
          state.appendChild(why);
          tr.dataset.unknown = "true";
        }
        tr.appendChild(cellTd);
        const actions = document.createElement("td");
        if (page.can_restart) {
          const b = document.createElement("button");
          b.type = "button";
          b.className = "btn btn-small";
          b.textContent = "Restart";
          b.addEventListener("click", async function () {
            if (!window.confirm("Restart " + s.name + "?")) return;
            try {
              await window.pv.api("POST", "/api/v1/services/" + encodeURIComponent(s.name) + "/restart");
              toast(s.name + " restarted.", "info");
              load(false);
            } catch (e) { toast(e.message, "error"); }
          });
          actions.appendChild(b);
        }
        tr.appendChild(actions);
        rows.appendChild(tr);
      });
      if (announce) toast(services.length + " services.", "info");
    } catch (e) { toast(e.message, "error"); }
  }

  document.addEventListener("DOMContentLoaded", function () {
    load(false);
    document.querySelectorAll("[data-action=services-refresh]").forEach(function (b) {
      b.addEventListener("click", function () { load(true); });
    });
  });
})();
