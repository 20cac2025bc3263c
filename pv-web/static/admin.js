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

  /** An event's details as words: "method: password · stage: enrol". */
  function detailsText(details) {
    if (details == null) return "";
    if (typeof details !== "object") return String(details);
    return Object.keys(details).filter(function (k) { return details[k] !== null && details[k] !== ""; })
      .map(function (k) {
        const v = details[k];
        return k.replace(/_/g, " ") + ": " + (typeof v === "object" ? JSON.stringify(v) : String(v));
      }).join(" \u00b7 ");
  }

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
        cell(tr, window.pv.formatTime(e.occurred_at));
        cell(tr, e.actor_name);
        cell(tr, e.action).className = "mono";
        cell(tr, [e.target_kind, e.target_id].filter(Boolean).join(" "));
        cell(tr, e.ip).className = "mono";
        cell(tr, badge(e.outcome, e.outcome === "success" ? "ok" : e.outcome === "denied" ? "warn" : "bad"));
        cell(tr, detailsText(e.details)).className = "details";
        body.appendChild(tr);
      });
      if (event) toast(events.length + " event" + (events.length === 1 ? "" : "s") + " shown.", "info");
    } catch (e) {
      toast(e.message, "error");
    }
  }

  // ---- Block / Allow ----

  /** An address or CIDR network as { v: 4 | 6, bits: BigInt, prefix }, or null. */
  function parseNetwork(text) {
    const [addr, len] = String(text).trim().split("/");
    let v, bits;
    if (/^\d{1,3}(\.\d{1,3}){3}$/.test(addr)) {
      const parts = addr.split(".").map(Number);
      if (parts.some(function (p) { return p > 255; })) return null;
      v = 4;
      bits = parts.reduce(function (acc, p) { return (acc << 8n) | BigInt(p); }, 0n);
    } else if (addr.includes(":")) {
      const halves = addr.split("::");
      if (halves.length > 2) return null;
      const head = halves[0] ? halves[0].split(":") : [];
      const tail = halves.length === 2 && halves[1] ? halves[1].split(":") : [];
      const fill = halves.length === 2 ? 8 - head.length - tail.length : 0;
      const groups = head.concat(new Array(Math.max(fill, 0)).fill("0"), tail);
      if (groups.length !== 8 || groups.some(function (g) { return !/^[0-9a-f]{1,4}$/i.test(g); })) return null;
      v = 6;
      bits = groups.reduce(function (acc, g) { return (acc << 16n) | BigInt(parseInt(g, 16)); }, 0n);
    } else {
      return null;
    }
    const width = v === 4 ? 32 : 128;
    const prefix = len === undefined ? width : Number(len);
    if (!Number.isInteger(prefix) || prefix < 0 || prefix > width) return null;
    return { v: v, bits: bits, prefix: prefix, width: width };
  }

  /** Whether network `inner` lies inside network `outer` (both parsed). */
  function within(inner, outer) {
    if (!inner || !outer || inner.v !== outer.v || inner.prefix < outer.prefix) return false;
    const shift = BigInt(outer.width - outer.prefix);
    return (inner.bits >> shift) === (outer.bits >> shift);
  }

  /** The exemption (network text) that `network` lies inside, if any: an exemption wins over
   * a block, so such a block has no effect. */
  function exemptionCovering(network, rules) {
    const inner = parseNetwork(network);
    const hit = rules.find(function (r) { return r.action === "exempt" && within(inner, parseNetwork(r.network)); });
    return hit ? hit.network : null;
  }
  let currentRules = [];

  async function loadRules() {
    const body = document.getElementById("rule-rows");
    try {
      const rules = await api("GET", "/api/v1/security/ip-rules");
      currentRules = rules;
      body.replaceChildren();
      if (rules.length === 0) emptyRow(body, 6, "No rules.");
      rules.forEach(function (r) {
        const tr = document.createElement("tr");
        tr.dataset.network = r.network;
        tr.dataset.action = r.action;
        cell(tr, badge(r.action === "block" ? "Blocked" : "Exempt", r.action === "block" ? "bad" : "ok"));
        const stack = document.createElement("div");
        stack.className = "cell-stack";
        const net = document.createElement("span");
        net.className = "mono";
        net.textContent = r.network;
        stack.appendChild(net);
        const covering = r.action === "block" ? exemptionCovering(r.network, rules) : null;
        if (covering) {
          tr.dataset.overridden = covering;
          const note = document.createElement("span");
          note.className = "rule-note";
          note.textContent = "No effect: the exemption " + covering + " wins";
          stack.appendChild(note);
        }
        cell(tr, stack);
        cell(tr, r.reason);
        cell(tr, r.source);
        cell(tr, r.expires_at ? window.pv.formatTime(r.expires_at) : "never");
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
      const covering = rule.action === "block" ? exemptionCovering(rule.network, currentRules) : null;
      if (covering) {
        toast(rule.network + " lies inside the exemption " + covering +
          ", and exemptions win, so this block has no effect until that exemption is removed.", "warn");
      }
      if (rule.action === "exempt") {
        const outer = parseNetwork(rule.network);
        const inside = currentRules.filter(function (r) { return r.action === "block" && within(parseNetwork(r.network), outer); })
          .map(function (r) { return r.network; });
        if (inside.length) {
          toast("Exemptions win: the block" + (inside.length === 1 ? " on " : "s on ") + inside.join(", ") +
            " no longer " + (inside.length === 1 ? "applies" : "apply") + " while " + rule.network + " is exempt.", "warn");
        }
      }
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
