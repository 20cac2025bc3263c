// PentaVision Services page: the allow-listed system services, their state, and a restart
// (with the page's CSRF token, through window.pv.api).
"use strict";

(function () {
  const page = window.pv.page;
  const toast = function (m, l) { return window.pv.toast(m, l); };

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
        const state = document.createElement("td");
        const badge = document.createElement("span");
        badge.className = "badge " + (s.state === "active" ? "ok" : "bad");
        badge.textContent = s.state;
        state.appendChild(badge);
        tr.appendChild(state);
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
