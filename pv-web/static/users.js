// PentaVision Users page: accounts with status and roles; add, suspend/activate, make or
// remove System Administrator (the server refuses to leave no active administrator).
"use strict";

(function () {
  const page = window.pv.page;
  const api = window.pv.api;
  const toast = function (m, l) { return window.pv.toast(m, l); };
  const ADMIN = "System Administrator";

  function button(label, fn) {
    const b = document.createElement("button");
    b.type = "button";
    b.className = "btn btn-small";
    b.textContent = label;
    b.addEventListener("click", fn);
    return b;
  }

  function cell(tr, content) {
    const td = document.createElement("td");
    if (content instanceof Node) td.appendChild(content); else td.textContent = content == null ? "" : String(content);
    tr.appendChild(td);
    return td;
  }

  async function act(what, fn) {
    try { await fn(); toast(what, "info"); load(false); } catch (e) { toast(e.message, "error"); }
  }

  async function load(announce) {
    const rows = document.getElementById("user-rows");
    try {
      const users = await api("GET", "/api/v1/users");
      rows.replaceChildren();
      users.forEach(function (u) {
        const tr = document.createElement("tr");
        tr.dataset.user = u.username;
        cell(tr, u.username);
        cell(tr, u.display_name);
        const badge = document.createElement("span");
        badge.className = "badge " + (u.account_status === "active" ? "ok" : "bad");
        badge.textContent = u.account_status;
        cell(tr, badge).dataset.field = "status";
        cell(tr, u.roles.join(", ") || "none").dataset.field = "roles";
        cell(tr, u.last_login_at ? window.pv.formatTime(u.last_login_at) : "never");
        const actions = document.createElement("div");
        if (page.can_manage) {
          const active = u.account_status === "active";
          actions.appendChild(button(active ? "Suspend" : "Activate", function () {
            act(u.username + (active ? " suspended." : " activated."), function () {
              return api("PUT", "/api/v1/users/" + u.id + "/status", { status: active ? "suspended" : "active" });
            });
          }));
        }
        if (page.can_grant) {
          const admin = u.roles.includes(ADMIN);
          actions.appendChild(button(admin ? "Remove administrator" : "Make administrator", function () {
            act(u.username + (admin ? " is no longer an administrator." : " is now an administrator."), function () {
              return api(admin ? "DELETE" : "POST", "/api/v1/users/" + u.id + "/roles", { role: ADMIN });
            });
          }));
        }
        cell(tr, actions);
        rows.appendChild(tr);
      });
      if (announce) toast(users.length + " users.", "info");
    } catch (e) { toast(e.message, "error"); }
  }

  async function add(event) {
    event.preventDefault();
    const f = event.target;
    const body = { username: f.username.value };
    if (f.display_name.value) body.display_name = f.display_name.value;
    if (f.password.value) body.password = f.password.value;
    act("User " + body.username + " added.", async function () {
      await api("POST", "/api/v1/users", body);
      f.reset();
    });
  }

  document.addEventListener("DOMContentLoaded", function () {
    load(false);
    const form = document.getElementById("user-form");
    if (form) form.addEventListener("submit", add);
    document.querySelectorAll("[data-action=users-refresh]").forEach(function (b) {
      b.addEventListener("click", function () { load(true); });
    });
  });
})();
