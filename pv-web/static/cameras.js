// PentaVision cameras page: the camera list with live status, add, enable/disable, delete.
"use strict";

(function () {
  const page = JSON.parse((document.getElementById("pv-page") || {}).textContent || "{}");
  const toast = function (m, l) { return window.pv.toast(m, l); };

  const tokens = page.csrf || {};

  /** A CSRF token for a route (`/cameras/{id}`): the page's while it has a minute left, else
   * a fresh one. Tokens are `version.expiry.mac`. */
  async function csrfToken(route) {
    const have = tokens[route];
    const expiry = have ? Number(have.split(".")[1]) || 0 : 0;
    if (expiry - Date.now() / 1000 > 60) return have;
    const r = await fetch("/api/v1/auth/csrf?route=" + encodeURIComponent(route), {
      headers: { Accept: "application/json" }, credentials: "same-origin",
    });
    if (!r.ok) throw new Error("Cannot get a CSRF token (status " + r.status + ")");
    tokens[route] = (await r.json()).token;
    return tokens[route];
  }

  async function api(method, url, body) {
    const headers = { Accept: "application/json" };
    if (body !== undefined) headers["Content-Type"] = "application/json";
    if (method !== "GET") {
      const route = url.replace(/^\/api\/v1/, "").split("?")[0].replace(/\/\d+(?=\/|$)/g, "/{id}");
      headers["X-CSRF-Token"] = await csrfToken(route);
    }
    const response = await fetch(url, {
      method: method, headers: headers, credentials: "same-origin",
      body: body === undefined ? undefined : JSON.stringify(body),
    });
    if (!response.ok) {
      let detail = "Request failed with status " + response.status;
      try { const p = await response.json(); if (p.detail) detail = p.detail; } catch (_) { /* not JSON */ }
      throw new Error(detail);
    }
    const text = await response.text();
    return text ? JSON.parse(text) : null;
  }

  function badge(status) {
    const cls = status.state === "streaming" ? "ok"
      : (status.state === "reconnecting" || status.state === "new") ? "warn" : "bad";
    const el = document.createElement("span");
    el.className = "badge " + cls;
    el.textContent = status.state + (status.backend === "ffmpeg" ? " (ffmpeg)" : "");
    if (status.reason) el.title = status.reason;
    return el;
  }

  function cell(row, content) {
    const td = document.createElement("td");
    if (content instanceof Node) td.appendChild(content); else td.textContent = content == null ? "" : content;
    row.appendChild(td);
    return td;
  }

  function button(label, fn) {
    const b = document.createElement("button");
    b.type = "button";
    b.className = "btn btn-small";
    b.textContent = label;
    b.addEventListener("click", fn);
    return b;
  }

  async function load(announce) {
    const body = document.getElementById("camera-rows");
    try {
      const cams = await api("GET", "/api/v1/cameras");
      body.replaceChildren();
      if (cams.length === 0) {
        const tr = document.createElement("tr");
        cell(tr, "No cameras yet.").colSpan = 7;
        body.appendChild(tr);
      }
      cams.forEach(function (c) {
        const tr = document.createElement("tr");
        tr.dataset.camera = c.id;
        const img = document.createElement("img");
        img.className = "thumb";
        img.alt = "Latest picture from " + c.name;
        img.loading = "lazy";
        if (c.status.state === "streaming") img.src = "/api/v1/cameras/" + c.id + "/snapshot.jpg?t=" + Date.now();
        cell(tr, img);
        cell(tr, c.name);
        cell(tr, badge(c.status)).dataset.field = "status";
        cell(tr, c.enabled ? c.recording_mode : "disabled");
        cell(tr, [c.video_codec, c.width && c.height ? c.width + "×" + c.height : null]
          .filter(Boolean).join(" ") || c.main_url);
        cell(tr, c.last_seen_at ? new Date(c.last_seen_at).toLocaleString() : "never");
        const actions = document.createElement("div");
        const link = document.createElement("a");
        link.href = "/recordings#camera-" + c.id;
        link.className = "btn btn-small";
        link.textContent = "Recordings";
        actions.appendChild(link);
        if (page.can_manage) {
          actions.appendChild(button(c.enabled ? "Disable" : "Enable", async function () {
            try {
              await api("PATCH", "/api/v1/cameras/" + c.id, { enabled: !c.enabled });
              toast(c.name + (c.enabled ? " disabled." : " enabled."), "info");
              load(false);
            } catch (e) { toast(e.message, "error"); }
          }));
          actions.appendChild(button("Delete", async function () {
            if (!window.confirm("Delete " + c.name + " and all its recordings?")) return;
            try {
              await api("DELETE", "/api/v1/cameras/" + c.id);
              toast(c.name + " deleted.", "info");
              load(false);
            } catch (e) { toast(e.message, "error"); }
          }));
        }
        cell(tr, actions);
        body.appendChild(tr);
      });
      if (announce) toast(cams.length + " cameras.", "info");
    } catch (e) {
      toast(e.message, "error");
    }
  }

  async function add(event) {
    event.preventDefault();
    const f = event.target;
    const body = { name: f.name.value, main_url: f.main_url.value, recording_mode: f.recording_mode.value };
    if (f.sub_url.value) body.sub_url = f.sub_url.value;
    if (f.username.value) body.username = f.username.value;
    if (f.password.value) body.password = f.password.value;
    if (f.segment_seconds.value) body.segment_seconds = parseInt(f.segment_seconds.value, 10);
    try {
      const cam = await api("POST", "/api/v1/cameras", body);
      f.reset();
      toast("Camera " + cam.name + " added.", "info");
      load(false);
    } catch (e) {
      toast(e.message, "error");
    }
  }

  document.addEventListener("DOMContentLoaded", function () {
    load(false);
    const form = document.getElementById("camera-form");
    if (form) form.addEventListener("submit", add);
    document.querySelectorAll("[data-action=cameras-refresh]").forEach(function (b) {
      b.addEventListener("click", function () { load(true); });
    });
    setInterval(function () { load(false); }, 15000);
  });
})();
