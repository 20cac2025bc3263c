// PentaVision recordings page: a day's timeline per camera (recorded spans, motion, gaps) and
// a player for the chosen segment.
"use strict";

(function () {
  const page = window.pv.page;
  const toast = function (m, l) { return window.pv.toast(m, l); };

  const getJson = function (url) { return window.pv.api("GET", url); };

  function dayBounds(value) {
    const start = value ? new Date(value + "T00:00:00") : new Date();
    if (!value) start.setHours(0, 0, 0, 0);
    const end = new Date(start.getTime() + 86400000);
    return [start, end];
  }

  function place(el, from, to, start, end) {
    const span = end - start;
    const a = Math.max(from, start), b = Math.min(to, end);
    el.style.left = ((a - start) / span * 100) + "%";
    el.style.width = (Math.max(b - a, 0) / span * 100) + "%";
  }

  function play(cam, seg) {
    const player = document.getElementById("player");
    player.hidden = false;
    player.src = "/api/v1/recordings/" + seg.id + "/media";
    player.play().catch(function () { /* autoplay may be refused; controls are there */ });
    const from = new Date(seg.started_at);
    document.getElementById("player-caption").textContent = cam.name + ", " + from.toLocaleString() +
      " (" + Math.round(seg.duration_ms / 1000) + " s" + (seg.motion ? ", motion" : "") + ")";
    if (page.can_export) {
      const hour = new Date(from); hour.setMinutes(0, 0, 0);
      const link = document.getElementById("export-link");
      link.href = "/api/v1/cameras/" + cam.id + "/export.mp4?from=" + encodeURIComponent(hour.toISOString()) +
        "&to=" + encodeURIComponent(new Date(hour.getTime() + 3600000).toISOString());
      link.hidden = false;
    }
  }

  // A link from an event (`?camera=ID&date=YYYY-MM-DD&at=ISO`) opens that day and plays the
  // camera's segment holding that moment.
  const params = new URLSearchParams(window.location.search);
  let jump = params.get("camera") && params.get("at")
    ? { camera: Number(params.get("camera")), at: new Date(params.get("at")) } : null;

  async function show(value) {
    const [start, end] = dayBounds(value);
    const box = document.getElementById("timelines");
    try {
      const q = "from=" + encodeURIComponent(start.toISOString()) + "&to=" + encodeURIComponent(end.toISOString());
      const [cams, segs, events] = await Promise.all([
        getJson("/api/v1/cameras"),
        getJson("/api/v1/recordings?" + q),
        getJson("/api/v1/events?" + q).catch(function () { return []; }),
      ]);
      box.replaceChildren();
      if (cams.length === 0) {
        const p = document.createElement("p");
        p.className = "hint";
        p.textContent = "No cameras yet: add one on the Cameras page.";
        box.appendChild(p);
      }
      cams.forEach(function (cam) {
        const row = document.createElement("div");
        row.className = "timeline-row";
        row.id = "camera-" + cam.id;
        const label = document.createElement("div");
        const mine = segs.filter(function (s) { return s.camera_id === cam.id; });
        label.textContent = cam.name + " (" + mine.length + ")";
        row.appendChild(label);
        const line = document.createElement("div");
        line.className = "timeline";
        line.dataset.camera = cam.id;
        line.setAttribute("role", "group");
        line.setAttribute("aria-label", "Recordings of " + cam.name);
        mine.forEach(function (s) {
          const b = document.createElement("button");
          b.type = "button";
          b.className = "span" + (s.motion ? " motion" : "");
          b.dataset.segment = s.id;
          b.title = new Date(s.started_at).toLocaleTimeString() + " – " + new Date(s.ended_at).toLocaleTimeString();
          b.setAttribute("aria-label", "Play " + b.title);
          place(b, new Date(s.started_at), new Date(s.ended_at), start, end);
          b.addEventListener("click", function () { play(cam, s); });
          line.appendChild(b);
        });
        events.filter(function (e) { return e.camera_id === cam.id && e.kind === "gap"; }).forEach(function (g) {
          const d = document.createElement("div");
          d.className = "gap";
          d.title = "Gap: " + (g.reason || "");
          place(d, new Date(g.started_at), g.ended_at ? new Date(g.ended_at) : new Date(), start, end);
          line.appendChild(d);
        });
        row.appendChild(line);
        box.appendChild(row);
        if (jump && jump.camera === cam.id) {
          const seg = mine.find(function (s) {
            return new Date(s.started_at) <= jump.at && jump.at < new Date(s.ended_at);
          }) || mine.find(function (s) { return new Date(s.started_at) >= jump.at; });
          row.scrollIntoView({ block: "center" });
          if (seg) play(cam, seg);
          else toast("Nothing was recorded at that moment.", "info");
          jump = null;
        }
      });
    } catch (e) {
      toast(e.message, "error");
    }
  }

  document.addEventListener("DOMContentLoaded", function () {
    const input = document.getElementById("day");
    const today = new Date();
    const day = params.get("date");
    input.value = day && /^\d{4}-\d{2}-\d{2}$/.test(day) ? day : today.getFullYear() + "-" + String(today.getMonth() + 1).padStart(2, "0") + "-" +
      String(today.getDate()).padStart(2, "0");
    document.getElementById("day-form").addEventListener("submit", function (e) {
      e.preventDefault();
      show(input.value);
    });
    show(input.value);
  });
})();
