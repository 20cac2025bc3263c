// PentaVision cameras page: the camera list with live status, add, edit (stream, login,
// recording, schedule, motion zones through zones.js), enable/disable, delete.
"use strict";

(function () {
  const page = window.pv.page;
  const toast = function (m, l) { return window.pv.toast(m, l); };

  const api = window.pv.api;

  function badge(status) {
    const cls = status.state === "streaming" ? "ok"
      : (status.state === "reconnecting" || status.state === "new") ? "warn" : "bad";
    const el = document.createElement("span");
    el.className = "badge " + cls;
    // The built-in recorder goes unnamed; a fallback says who records and (on hover) why.
    const via = { gstreamer: "GStreamer", ffmpeg: "ffmpeg" }[status.backend];
    el.textContent = status.state + (via ? " (" + via + ")" : "");
    const why = [status.reason, status.backend_reason].filter(Boolean).join(". ");
    if (why) el.title = why;
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
        // Live when streaming; otherwise the server answers from the newest recording. A
        // camera that is connecting has its first picture within seconds: ask again soon.
        let tries = 0;
        const src = function () { return "/api/v1/cameras/" + c.id + "/snapshot.jpg?width=256&t=" + Date.now(); };
        img.addEventListener("error", function () {
          const waiting = c.enabled && (c.status.state === "new" || c.status.state === "streaming") && tries < 10;
          if (waiting) {
            tries++;
            img.classList.add("thumb-loading");
            setTimeout(function () { if (img.isConnected) img.src = src(); }, 2000);
            return;
          }
          const none = document.createElement("span");
          none.className = "thumb thumb-empty";
          none.textContent = "no picture";
          img.replaceWith(none);
        });
        img.addEventListener("load", function () { img.classList.remove("thumb-loading"); });
        img.src = src();
        cell(tr, img);
        cell(tr, c.name);
        const state = cell(tr, badge(c.status));
        state.dataset.field = "status";
        if (c.status.reason && c.status.state !== "streaming") {
          const why = document.createElement("p");
          why.className = "cam-reason";
          why.textContent = c.status.reason;
          state.appendChild(why);
        }
        cell(tr, c.enabled ? c.recording_mode : "disabled");
        cell(tr, [c.video_codec, c.width && c.height ? c.width + "×" + c.height : null]
          .filter(Boolean).join(" ") || c.main_url);
        cell(tr, c.last_seen_at ? window.pv.formatTime(c.last_seen_at) : "never");
        const actions = document.createElement("div");
        const link = document.createElement("a");
        link.href = "/recordings#camera-" + c.id;
        link.className = "btn btn-small";
        link.textContent = "Recordings";
        actions.appendChild(link);
        if (page.can_manage) {
          actions.appendChild(button("Settings", function () { openSettings(c); }));
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

  // ---- Recording settings, schedule and RTMP output of one camera ----

  const DAYS = ["mon", "tue", "wed", "thu", "fri", "sat", "sun"];
  let current = null;

  function scheduleRow(w) {
    const tr = document.createElement("tr");
    const mode = document.createElement("select");
    ["continuous", "motion", "off"].forEach(function (m) {
      const o = document.createElement("option");
      o.value = m; o.textContent = m; o.selected = w.mode === m;
      mode.appendChild(o);
    });
    mode.name = "mode";
    cell(tr, mode);
    const days = document.createElement("span");
    DAYS.forEach(function (d) {
      const label = document.createElement("label");
      const box = document.createElement("input");
      box.type = "checkbox"; box.value = d; box.checked = (w.days || []).includes(d);
      label.appendChild(box);
      label.append(" " + d + " ");
      days.appendChild(label);
    });
    cell(tr, days);
    const time = function (name, value) {
      const i = document.createElement("input");
      i.name = name; i.value = value; i.size = 5; i.placeholder = "HH:MM";
      return i;
    };
    cell(tr, time("start", w.start || "08:00"));
    cell(tr, time("end", w.end || "18:00"));
    const prio = document.createElement("input");
    prio.name = "priority"; prio.type = "number"; prio.value = w.priority || 0; prio.style.width = "5em";
    cell(tr, prio);
    cell(tr, button("Remove", function () { tr.remove(); }));
    return tr;
  }

  async function showSchedule() {
    const s = await api("GET", "/api/v1/cameras/" + current.id + "/schedule");
    document.getElementById("settings-clock").textContent = current.name + ": local time " +
      s.local_time.replace("T", " ") + " (" + s.timezone + "), recording now: " + s.mode_now +
      (s.from_schedule ? " (by the schedule)" : "");
    const rows = document.getElementById("schedule-rows");
    rows.replaceChildren();
    s.windows.forEach(function (w) { rows.appendChild(scheduleRow(w)); });
  }

  /** Fill the stream-and-login form from camera `c`; the password field stays empty. */
  function fillEdit(c) {
    const e = document.getElementById("edit-form");
    e.name.value = c.name;
    e.main_url.value = c.main_url;
    e.sub_url.value = c.sub_url || "";
    e.username.value = c.username || "";
    e.password.value = "";
    e.password.placeholder = c.has_password ? "stored (hidden)" : "none";
    document.getElementById("edit-pass-hint").textContent = c.has_password
      ? "A password is stored. Leave this empty to keep it, or type a new one to replace it."
      : "No password is stored. Type one to set it.";
    document.getElementById("edit-forget-label").hidden = !c.has_password;
    e.forget.checked = false;
    e.transport.value = c.transport || "tcp";
    e.enabled.checked = c.enabled;
    document.getElementById("settings-title").textContent = "Settings of " + c.name;
  }

  /** The checks creation makes, before asking the server (which checks again). */
  function checkStream(label, url, required) {
    if (!url) return required ? label + " is needed." : null;
    if (!/^rtsps?:\/\/[^\s/:@]/i.test(url) && !/^rtsps?:\/\/[^\s/]*@[^\s/:]/i.test(url)) {
      return label + " must start with rtsp:// or rtsps:// followed by the camera's address.";
    }
    if (/\s/.test(url)) return label + " cannot contain spaces.";
    return null;
  }

  async function saveCamera(event) {
    event.preventDefault();
    const e = event.target;
    const name = e.name.value.trim();
    const main = e.main_url.value.trim();
    const sub = e.sub_url.value.trim();
    const problem = !name ? "The camera needs a name." : name.length > 128 ? "A name is at most 128 characters."
      : checkStream("The main stream URL", main, true) || checkStream("The sub stream URL", sub, false);
    if (problem) { toast(problem, "error"); return; }
    const body = {
      name: name, main_url: main, sub_url: sub || null,
      username: e.username.value.trim() || null,
      transport: e.transport.value, enabled: e.enabled.checked,
    };
    if (e.password.value) body.password = e.password.value;
    else if (e.forget.checked) body.password = null;
    const streamChanged = main !== current.main_url || (sub || null) !== (current.sub_url || null) ||
      body.username !== (current.username || null) || "password" in body || body.transport !== current.transport;
    try {
      current = await api("PATCH", "/api/v1/cameras/" + current.id, body);
      fillEdit(current);
      toast("Camera " + current.name + " saved" +
        (streamChanged && current.enabled ? "; its recorder reconnects with the new settings." : "."), "info");
      load(false);
    } catch (err) { toast(err.message, "error"); }
  }

  async function openSettings(c) {
    current = c;
    fillEdit(c);
    const box = document.getElementById("camera-settings");
    const f = document.getElementById("settings-form");
    f.recording_mode.value = c.recording_mode;
    f.segment_seconds.value = c.segment_seconds == null ? "" : c.segment_seconds;
    f.pre_roll_seconds.value = c.pre_roll_seconds;
    f.post_roll_seconds.value = c.post_roll_seconds;
    f.retention_days.value = c.retention_days == null ? "" : c.retention_days;
    f.timezone.value = c.timezone || "";
    document.getElementById("rtmp-state").textContent = c.rtmp
      ? "Pushing to " + c.rtmp.target + ": " + c.rtmp.state + (c.rtmp.reason ? " (" + c.rtmp.reason + ")" : "")
      : "No push.";
    box.hidden = false;
    storageTargets.open(c);
    if (window.pvZones) window.pvZones.open(c);
    box.scrollIntoView({ behavior: "smooth" });
    try { await showSchedule(); } catch (e) { toast(e.message, "error"); }
  }

  async function saveSettings(event) {
    event.preventDefault();
    const f = event.target;
    const num = function (v) { return v === "" ? null : parseInt(v, 10); };
    try {
      current = await api("PATCH", "/api/v1/cameras/" + current.id, {
        recording_mode: f.recording_mode.value,
        segment_seconds: num(f.segment_seconds.value),
        pre_roll_seconds: num(f.pre_roll_seconds.value),
        post_roll_seconds: num(f.post_roll_seconds.value),
        retention_days: num(f.retention_days.value),
        timezone: f.timezone.value || null,
      });
      toast("Settings of " + current.name + " saved.", "info");
      await showSchedule();
      load(false);
    } catch (e) { toast(e.message, "error"); }
  }

  async function saveSchedule() {
    const windows = Array.from(document.querySelectorAll("#schedule-rows tr")).map(function (tr) {
      return {
        mode: tr.querySelector("[name=mode]").value,
        days: Array.from(tr.querySelectorAll("input[type=checkbox]:checked")).map(function (b) { return b.value; }),
        start: tr.querySelector("[name=start]").value,
        end: tr.querySelector("[name=end]").value,
        priority: parseInt(tr.querySelector("[name=priority]").value, 10) || 0,
      };
    });
    try {
      await api("PUT", "/api/v1/cameras/" + current.id + "/schedule", { windows: windows });
      toast("Schedule of " + current.name + " saved.", "info");
      await showSchedule();
      load(false);
    } catch (e) { toast(e.message, "error"); }
  }

  async function startPush(event) {
    event.preventDefault();
    try {
      const s = await api("POST", "/api/v1/cameras/" + current.id + "/rtmp", { url: event.target.url.value });
      event.target.url.value = "";
      document.getElementById("rtmp-state").textContent = "Pushing to " + s.target + ": " + s.state;
      toast("RTMP push of " + current.name + " started.", "info");
    } catch (e) { toast(e.message, "error"); }
  }

  async function stopPush() {
    try {
      await api("DELETE", "/api/v1/cameras/" + current.id + "/rtmp");
      document.getElementById("rtmp-state").textContent = "No push.";
      toast("RTMP push of " + current.name + " stopped.", "info");
    } catch (e) { toast(e.message, "error"); }
  }

  async function probe() {
    const f = document.getElementById("camera-form");
    const body = { url: f.main_url.value };
    if (f.username.value) body.username = f.username.value;
    if (f.password.value) body.password = f.password.value;
    try {
      toast("Checking the stream…", "info");
      const s = await api("POST", "/api/v1/cameras/probe", body);
      toast("Stream: " + s.video_codec + (s.width ? " " + s.width + "×" + s.height : "") +
        (s.fps ? " at " + Math.round(s.fps * 100) / 100 + " fps" : "") +
        (s.audio_codec ? ", audio " + s.audio_codec : ", no audio") +
        (s.recordable ? "." : " — not recordable without transcoding."), s.recordable ? "info" : "error");
    } catch (e) { toast(e.message, "error"); }
  }

  async function discover() {
    const list = document.getElementById("discovered");
    try {
      toast("Looking for ONVIF cameras…", "info");
      const found = await api("POST", "/api/v1/cameras/discover");
      list.replaceChildren();
      found.forEach(function (d) {
        const li = document.createElement("li");
        li.textContent = (d.name || d.endpoint) + (d.hardware ? " (" + d.hardware + ")" : "") +
          " at " + (d.host || "?") + (d.known ? " — added already" : "") + " ";
        if (!d.known && d.host) {
          li.appendChild(button("Use", function () {
            const f = document.getElementById("camera-form");
            f.name.value = d.name || "";
            f.main_url.value = "rtsp://" + d.host + ":554/";
            f.main_url.focus();
          }));
        }
        list.appendChild(li);
      });
      toast(found.length + " ONVIF cameras answered.", "info");
    } catch (e) { toast(e.message, "error"); }
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

  // ---- Storage targets of one camera: the ordered failover list of storage modules ----

  const storageTargets = (function () {
    let modules = null;
    let targets = [];
    let section = null;

    function build() {
      if (section) return section;
      const box = document.getElementById("camera-settings");
      const before = document.getElementById("zones-title");
      if (!box || !before) return null;
      if (!document.querySelector('link[href="/static/storage.css"]')) {
        const link = document.createElement("link");
        link.rel = "stylesheet";
        link.href = "/static/storage.css";
        document.head.appendChild(link);
      }
      section = document.createElement("div");
      section.id = "storage-targets";
      section.setAttribute("role", "group");
      section.setAttribute("aria-labelledby", "st-targets-title");
      const h = document.createElement("h3");
      h.className = "cam-sub";
      h.id = "st-targets-title";
      h.textContent = "Storage";
      const hint = document.createElement("p");
      hint.className = "hint";
      hint.id = "st-targets-hint";
      hint.textContent = "Where copies of this camera's segments are uploaded. Each segment goes to the first healthy module of the list that uploads everything; the next one takes over when it fails. Modules set to only motion make a second list of their own, so segments with motion get one more copy there.";
      const list = document.createElement("ul");
      list.className = "st-targets";
      list.id = "st-targets";
      list.setAttribute("aria-label", "Storage modules of this camera, in order");
      const add = document.createElement("div");
      add.className = "st-target-add";
      const label = document.createElement("label");
      label.htmlFor = "st-target-module";
      label.textContent = "Add a module";
      const select = document.createElement("select");
      select.id = "st-target-module";
      add.appendChild(label);
      add.appendChild(select);
      add.appendChild(button("Add", function () {
        const id = Number(select.value);
        if (!id) return;
        targets.push({ module_id: id, upload: "all", padding_seconds: 10 });
        draw();
      }));
      const save = button("Save storage", saveTargets);
      save.className = "btn btn-glow";
      save.dataset.action = "storage-targets-save";
      const row = document.createElement("p");
      row.appendChild(save);
      [h, hint, list, add, row].forEach(function (n) { section.appendChild(n); });
      box.insertBefore(section, before);
      return section;
    }

    function moduleName(id) {
      const m = (modules || []).find(function (x) { return x.id === id; });
      return m ? m.name + (m.enabled ? "" : " (disabled)") : "Module " + id + " (removed)";
    }

    function draw() {
      if (!section) return;
      const list = document.getElementById("st-targets");
      list.replaceChildren();
      if (!targets.length) {
        const li = document.createElement("li");
        li.className = "hint";
        li.textContent = "Uses the default: all enabled modules in priority order.";
        list.appendChild(li);
      }
      targets.forEach(function (t, i) {
        const li = document.createElement("li");
        li.className = "st-target";
        li.dataset.module = t.module_id;
        const name = document.createElement("span");
        name.className = "st-target-name";
        name.textContent = (i + 1) + ". " + moduleName(t.module_id);
        li.appendChild(name);
        const modeLabel = document.createElement("label");
        modeLabel.textContent = "Upload ";
        const mode = document.createElement("select");
        mode.setAttribute("aria-label", "What to upload to " + moduleName(t.module_id));
        [["all", "everything"], ["motion", "only motion"]].forEach(function (o) {
          const opt = document.createElement("option");
          opt.value = o[0]; opt.textContent = o[1]; opt.selected = t.upload === o[0];
          mode.appendChild(opt);
        });
        mode.addEventListener("change", function () { t.upload = mode.value; draw(); });
        modeLabel.appendChild(mode);
        li.appendChild(modeLabel);
        if (t.upload === "motion") {
          const padLabel = document.createElement("label");
          padLabel.textContent = "Padding (s) ";
          const pad = document.createElement("input");
          pad.type = "number"; pad.min = "0"; pad.max = "600"; pad.value = t.padding_seconds;
          pad.setAttribute("aria-label", "Seconds before and after motion uploaded to " + moduleName(t.module_id));
          pad.addEventListener("input", function () { t.padding_seconds = Math.max(0, parseInt(pad.value, 10) || 0); });
          padLabel.appendChild(pad);
          li.appendChild(padLabel);
        }
        const move = function (label, aria, delta) {
          const b = button(label, function () {
            const j = i + delta;
            targets.splice(j, 0, targets.splice(i, 1)[0]);
            draw();
            const again = list.children[j] && list.children[j].querySelector('[data-move="' + delta + '"]');
            if (again && !again.disabled) again.focus();
          });
          b.setAttribute("aria-label", aria + " " + moduleName(t.module_id));
          b.dataset.move = delta;
          b.disabled = i + delta < 0 || i + delta >= targets.length;
          return b;
        };
        li.appendChild(move("↑", "Move up", -1));
        li.appendChild(move("↓", "Move down", 1));
        const rm = button("Remove", function () { targets.splice(i, 1); draw(); });
        rm.setAttribute("aria-label", "Remove " + moduleName(t.module_id));
        li.appendChild(rm);
        list.appendChild(li);
      });
      const select = document.getElementById("st-target-module");
      select.replaceChildren();
      const free = (modules || []).filter(function (m) { return !targets.some(function (t) { return t.module_id === m.id; }); });
      free.forEach(function (m) {
        const o = document.createElement("option");
        o.value = m.id; o.textContent = m.name + (m.enabled ? "" : " (disabled)");
        select.appendChild(o);
      });
      select.parentElement.hidden = !free.length;
    }

    async function open(c) {
      if (!build()) return;
      targets = (c.storage_targets || []).map(function (t) {
        return { module_id: t.module_id, upload: t.upload === "motion" ? "motion" : "all", padding_seconds: t.padding_seconds == null ? 10 : t.padding_seconds };
      });
      try {
        modules = await api("GET", "/api/v1/storage/modules");
        section.hidden = false;
      } catch (e) {
        modules = [];
        document.getElementById("st-targets-hint").textContent = "Storage modules cannot be listed for your account: " + e.message;
      }
      draw();
    }

    async function saveTargets() {
      if (!current) return;
      try {
        current = await api("PATCH", "/api/v1/cameras/" + current.id, { storage_targets: targets });
        toast(targets.length ? "Storage of " + current.name + " saved: " + targets.length + (targets.length === 1 ? " module." : " modules in order.")
          : "Storage of " + current.name + " saved: it uses the default modules.", "info");
        open(current);
      } catch (e) { toast(e.message, "error"); }
    }

    return { open: open };
  })();

  document.addEventListener("DOMContentLoaded", function () {
    load(false);
    const form = document.getElementById("camera-form");
    if (form) form.addEventListener("submit", add);
    document.querySelectorAll("[data-action=camera-probe]").forEach(function (b) { b.addEventListener("click", probe); });
    document.querySelectorAll("[data-action=camera-discover]").forEach(function (b) { b.addEventListener("click", discover); });
    const settings = document.getElementById("settings-form");
    if (settings) {
      settings.addEventListener("submit", saveSettings);
      document.getElementById("edit-form").addEventListener("submit", saveCamera);
      document.querySelectorAll("[data-action=settings-close]").forEach(function (b) {
        b.addEventListener("click", function () {
          if (window.pvZones && window.pvZones.isDirty() &&
            !window.confirm("Close without saving the motion zones?")) return;
          if (window.pvZones) window.pvZones.close();
          document.getElementById("camera-settings").hidden = true;
          current = null;
        });
      });
      document.getElementById("rtmp-form").addEventListener("submit", startPush);
      document.querySelectorAll("[data-action=rtmp-stop]").forEach(function (b) { b.addEventListener("click", stopPush); });
      document.querySelectorAll("[data-action=schedule-save]").forEach(function (b) { b.addEventListener("click", saveSchedule); });
      document.querySelectorAll("[data-action=schedule-add]").forEach(function (b) {
        b.addEventListener("click", function () {
          document.getElementById("schedule-rows").appendChild(scheduleRow({ mode: "continuous", days: DAYS }));
        });
      });
    }
    document.querySelectorAll("[data-action=cameras-refresh]").forEach(function (b) {
      b.addEventListener("click", function () { load(true); });
    });
    setInterval(function () { load(false); }, 15000);
  });
})();
