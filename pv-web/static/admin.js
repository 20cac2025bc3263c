// PentaVision administration pages: the audit log (filter, search, CSV export) and Block /
// Allow (IP rules: list, add, remove, "Exempt this IP"). Changes carry the page's CSRF token
// for their route (X-CSRF-Token), read from the page's data block; an expired one is replaced
// from GET /api/v1/auth/csrf before the request.
"use strict";

(function () {
  const page = window.pv.page;
  const api = window.pv.api;
  const toast = function (m, l) { return window.pv.toast(m, l); };

  function cell(row, content) {
    const td = document.createElement("td");
    if (content instanceof Node) td.appendChild(content); else td.textContent = content == null ? "" : String(content);
    row.appendChild(td);
    return td;
  }

  function badge(text, cls) {
    const el = document.createElement("span");
    el.className = "badge " + cls;
    el.textContent = text;
    return el;
  }

  function emptyRow(body, columns, text) {
    const tr = document.createElement("tr");
    const td = cell(tr, text);
    td.colSpan = columns;
    td.className = "hint";
    body.appendChild(tr);
  }

  // ---- Audit log ----

  function auditQuery(form) {
    const q = new URLSearchParams();
    ["q", "action", "actor", "outcome"].forEach(function (k) {
      const v = form.elements[k].value.trim();
      if (v) q.set(k, v);
    });
    ["from", "to"].forEach(function (k) {
      const v = form.elements[k].value;
      if (v) q.set(k, new Date(v).toISOString());
    });
    return q;
  }

  async function loadAudit(event) {
    if (event) event.preventDefault();
    const form = document.getElementById("audit-filter");
    const body = document.getElementById("audit-rows");
    const q = auditQuery(form);
    const csv = document.getElementById("audit-csv");
    if (csv) csv.href = "/api/v1/audit/events.csv" + (q.toString() ? "?" + q.toString() : "");
    q.set("limit", form.elements.limit.value);
    try {
      const events = await api("GET", "/api/v1/audit/events?" + q.toString());
      body.replaceChildren();
      if (events.length === 0) emptyRow(body, 7, "No events match.");
      events.forEach(function (e) {
        const tr = document.createElement("tr");
        cell(tr, e.occurred_at.replace("T", " ").replace(/\.\d+/, "").replace("Z", ""));
        cell(tr, e.actor_name);
        cell(tr, e.action).className = "mono";
        cell(tr, [e.target_kind, e.target_id].filter(Boolean).join(" "));
        cell(tr, e.ip).className = "mono";
        cell(tr, badge(e.outcome, e.outcome === "success" ? "ok" : e.outcome === "denied" ? "warn" : "bad"));
        cell(tr, e.details ? JSON.stringify(e.details) : "").className = "mono";
        body.appendChild(tr);
      });
      if (event) toast(events.length + " event" + (events.length === 1 ? "" : "s") + " shown.", "info");
    } catch (e) {
      toast(e.message, "error");
    }
  }

  // ---- Block / Allow ----

  async function loadRules() {
    const body = document.getElementById("rule-rows");
    try {
      const rules = await api("GET", "/api/v1/security/ip-rules");
      body.replaceChildren();
      if (rules.length === 0) emptyRow(body, 6, "No rules.");
      rules.forEach(function (r) {
        const tr = document.createElement("tr");
        tr.dataset.network = r.network;
        tr.dataset.action = r.action;
        cell(tr, badge(r.action === "block" ? "Blocked" : "Exempt", r.action === "block" ? "bad" : "ok"));
        cell(tr, r.network).className = "mono";
        cell(tr, r.reason);
        cell(tr, r.source);
        cell(tr, r.expires_at ? r.expires_at.replace("T", " ").replace(/\.\d+/, "") : "never");
        const actions = cell(tr, "");
        if (page.can_manage) {
          const b = document.createElement("button");
          b.type = "button";
          b.className = "btn btn-small";
          b.textContent = "Remove";
          b.setAttribute("aria-label", "Remove the " + r.action + " rule for " + r.network);
          b.addEventListener("click", function () { removeRule(r.network, r.action); });
          actions.appendChild(b);
        }
        body.appendChild(tr);
      });
    } catch (e) {
      toast(e.message, "error");
    }
  }

  async function addRule(event) {
    event.preventDefault();
    const f = event.target;
    const body = { network: f.network.value.trim(), action: f.action.value };
    if (f.reason.value.trim()) body.reason = f.reason.value.trim();
    if (f.expires.value.trim()) body.expires = f.expires.value.trim();
    try {
      const rule = await api("POST", "/api/v1/security/ip-rules", body);
      toast((rule.action === "block" ? "Blocked " : "Exempted ") + rule.network + ".", "info");
      f.reset();
      await loadRules();
    } catch (e) {
      toast(e.message, "error");
    }
  }

  async function removeRule(network, action) {
    try {
      await api("DELETE", "/api/v1/security/ip-rules?network=" + encodeURIComponent(network) +
        "&action=" + encodeURIComponent(action));
      toast("Removed the " + action + " rule for " + network + ".", "info");
      await loadRules();
    } catch (e) {
      toast(e.message, "error");
    }
  }

  async function exemptMe() {
    try {
      const rule = await api("POST", "/api/v1/security/ip-rules/exempt-me");
      toast("Your address " + rule.network + " is exempt.", "info");
      await loadRules();
    } catch (e) {
      toast(e.message, "error");
    }
  }

  document.addEventListener("DOMContentLoaded", function () {
    const filter = document.getElementById("audit-filter");
    if (filter) {
      filter.addEventListener("submit", loadAudit);
      loadAudit();
    }
    if (document.getElementById("rule-rows")) {
      const form = document.getElementById("rule-form");
      if (form) form.addEventListener("submit", addRule);
      document.querySelectorAll("[data-action=exempt-me]").forEach(function (b) {
        b.addEventListener("click", exemptMe);
      });
      loadRules();
    }
  });
})();
