// PentaVision camera page (/cameras/{id}/live): the camera live at full size (main stream),
// a snapshot download, its motion zones drawn over the picture, its recent motion with links to
// the recordings, and its RTMP push (started and stopped by those who manage the camera).
"use strict";

(function () {
  const page = window.pv.page;
  const api = window.pv.api;
  const toast = function (m, l) { return window.pv.toast(m, l); };
  const id = page.camera_id;
  const base = "/api/v1/cameras/" + id;
  let camera = { id: id, name: page.name };
  let player = null;
  let zones = null;
  let zonesCanvas = null;

  const STATUS = {
    streaming: "Streaming",
    reconnecting: "Reconnecting",
    new: "Starting",
    failed: "Failed",
    disabled: "Off",
  };
  const MODE = {
    continuous: "records all the time",
    motion: "records when something moves",
    off: "does not record",
  };
  const PUSH = {
    waiting: "waiting for the camera",
    connecting: "connecting",
    pushing: "live",
    reconnecting: "reconnecting",
    stopped: "stopped",
  };

  function el(tag, cls, text) {
    const e = document.createElement(tag);
    if (cls) e.className = cls;
    if (text != null) e.textContent = text;
    return e;
  }

  function two(n) { return String(n).padStart(2, "0"); }

  function localDate(d) {
    return d.getFullYear() + "-" + two(d.getMonth() + 1) + "-" + two(d.getDate());
  }

  // ---- Camera status and RTMP push ----

  function showRtmp(rtmp) {
    const line = document.getElementById("rtmp-state");
    document.querySelectorAll("[data-action=rtmp-stop]").forEach(function (b) { b.disabled = !rtmp; });
    if (!rtmp) {
      line.textContent = "Not streaming anywhere.";
      return;
    }
    let text = "Streaming to " + rtmp.target + ": " + (PUSH[rtmp.state] || rtmp.state);
    if (rtmp.reason) text += " (" + rtmp.reason + ")";
    line.textContent = text + ".";
  }

  async function loadCamera() {
    try {
      camera = await api("GET", base);
      document.getElementById("camera-title").textContent = camera.name;
      document.title = camera.name + " · PentaVision";
      const s = camera.status;
      let text = (STATUS[s.state] || s.state);
      if (s.reason && s.state !== "streaming") text += ": " + s.reason;
      if (camera.enabled) text += " · " + (MODE[camera.recording_mode] || camera.recording_mode);
      else text += " · the camera is turned off";
      document.getElementById("camera-status").textContent = text;
      showRtmp(camera.rtmp);
      if (player) player.name = camera.name;
    } catch (e) {
      toast(e.message, "error");
    }
  }

  async function startPush(event) {
    event.preventDefault();
    const input = event.target.elements.url;
    try {
      const s = await api("POST", base + "/rtmp", { url: input.value.trim() });
      input.value = "";
      showRtmp(s);
      toast("Streaming of " + camera.name + " to " + s.target + " started.", "info");
    } catch (e) {
      toast(e.message, "error");
    }
  }

  async function stopPush() {
    try {
      await api("DELETE", base + "/rtmp");
      showRtmp(null);
      toast("Streaming of " + camera.name + " stopped.", "info");
    } catch (e) {
      toast(e.message, "error");
    }
  }

  // ---- Snapshot ----

  async function snapshot() {
    try {
      const r = await fetch(base + "/snapshot.jpg", { credentials: "same-origin" });
      if (!r.ok) {
        let detail = "no picture (status " + r.status + ")";
        try { detail = (await r.json()).detail || detail; } catch (_) { /* not JSON */ }
        throw new Error(detail);
      }
      const blob = await r.blob();
      const now = new Date();
      const stamp = localDate(now) + " " + two(now.getHours()) + "." + two(now.getMinutes()) + "." + two(now.getSeconds());
      const a = document.createElement("a");
      a.href = URL.createObjectURL(blob);
      a.download = (camera.name || "camera").replace(/[\\/:*?"<>|]+/g, "-") + " " + stamp + ".jpg";
      document.body.appendChild(a);
      a.click();
      a.remove();
      setTimeout(function () { URL.revokeObjectURL(a.href); }, 10000);
      toast("Snapshot of " + camera.name + " saved.", "info");
    } catch (e) {
      toast("No snapshot: " + e.message, "error");
    }
  }

  // ---- Motion zones over the picture ----

  function drawZones() {
    if (!zonesCanvas || zonesCanvas.hidden || !zones) return;
    const box = player.container;
    const w = box.clientWidth, h = box.clientHeight;
    const dpr = window.devicePixelRatio || 1;
    zonesCanvas.width = Math.max(1, Math.round(w * dpr));
    zonesCanvas.height = Math.max(1, Math.round(h * dpr));
    const ctx = zonesCanvas.getContext("2d");
    ctx.setTransform(dpr, 0, 0, dpr, 0, 0);
    ctx.clearRect(0, 0, w, h);
    const r = player.pictureRect();
    const at = function (p) { return [r.x + p[0] * r.width, r.y + p[1] * r.height]; };
    const shapes = zones.length ? zones : [{ name: "Whole picture", polygon: [[0, 0], [1, 0], [1, 1], [0, 1]], whole: true }];
    ctx.font = "600 13px system-ui, sans-serif";
    ctx.lineWidth = 2;
    shapes.forEach(function (z) {
      if (!z.polygon || z.polygon.length < 3) return;
      ctx.beginPath();
      z.polygon.forEach(function (p, i) {
        const [x, y] = at(p);
        if (i === 0) ctx.moveTo(x, y); else ctx.lineTo(x, y);
      });
      ctx.closePath();
      if (z.mask) {
        ctx.fillStyle = "rgba(248, 113, 113, 0.28)";
        ctx.strokeStyle = "#f87171";
        ctx.setLineDash([6, 4]);
      } else {
        ctx.fillStyle = z.whole ? "rgba(56, 189, 248, 0.06)" : "rgba(56, 189, 248, 0.2)";
        ctx.strokeStyle = "#38bdf8";
        ctx.setLineDash([]);
      }
      ctx.fill();
      ctx.stroke();
      ctx.setLineDash([]);
      const label = z.mask ? z.name + " (ignored)" : z.name;
      const [lx, ly] = at(z.polygon.reduce(function (m, p) { return p[1] < m[1] || (p[1] === m[1] && p[0] < m[0]) ? p : m; }));
      const tw = ctx.measureText(label).width;
      const x = Math.min(Math.max(lx + 4, r.x + 4), r.x + r.width - tw - 12);
      const y = Math.max(ly + 4, r.y + 4);
      ctx.fillStyle = "rgba(7, 15, 36, 0.8)";
      ctx.fillRect(x, y, tw + 8, 20);
      ctx.fillStyle = z.mask ? "#fca5a5" : "#e6efff";
      ctx.fillText(label, x + 4, y + 14);
    });
  }

  async function toggleZones(event) {
    const on = event.target.checked;
    zonesCanvas.hidden = !on;
    if (!on) return;
    try {
      zones = await api("GET", base + "/motion-zones");
      if (zones.length === 0) {
        toast(camera.name + " has no motion zones: movement anywhere in the picture counts.", "info");
      }
      drawZones();
    } catch (e) {
      event.target.checked = false;
      zonesCanvas.hidden = true;
      toast(e.message, "error");
    }
  }

  // ---- Recent motion ----

  function describe(e) {
    const from = new Date(e.started_at);
    const today = localDate(from) === localDate(new Date());
    let text = today ? "Today " + from.toLocaleTimeString(undefined, { timeZoneName: "short" }) : window.pv.formatTime(from);
    if (e.ended_at) {
      const s = Math.max(1, Math.round((new Date(e.ended_at) - from) / 1000));
      text += s < 60 ? ", " + s + " s" : ", " + Math.floor(s / 60) + " min " + (s % 60) + " s";
    } else {
      text += ", still going on";
    }
    return text;
  }

  async function loadEvents() {
    const list = document.getElementById("event-list");
    try {
      const events = await api("GET", "/api/v1/events?camera_id=" + id + "&kind=motion");
      events.sort(function (a, b) { return new Date(b.started_at) - new Date(a.started_at); });
      list.replaceChildren();
      document.getElementById("events-hint").textContent = "The last 24 hours, newest first." +
        (events.length && page.can_playback ? " Choose one to see its recording." : "");
      if (events.length === 0) list.appendChild(el("li", "hint", "No motion in the last 24 hours."));
      events.slice(0, 20).forEach(function (e) {
        const li = el("li");
        li.appendChild(el("span", null, describe(e)));
        if (page.can_playback) {
          const a = el("a", "btn btn-small", "See recording");
          a.href = "/recordings?camera=" + id + "&date=" + localDate(new Date(e.started_at)) +
            "&at=" + encodeURIComponent(e.started_at);
          a.setAttribute("aria-label", "See the recording of the motion at " + describe(e));
          li.appendChild(a);
        }
        list.appendChild(li);
      });
    } catch (e) {
      list.replaceChildren(el("li", "hint", "Recent motion cannot be shown."));
      toast(e.message, "error");
    }
  }

  document.addEventListener("DOMContentLoaded", function () {
    const box = document.getElementById("session-player");
    player = new window.pv.Player(box, {
      camera: id, stream: "main", name: camera.name, sound: Boolean(camera.audio_codec),
    });
    zonesCanvas = document.createElement("canvas");
    zonesCanvas.className = "overlay";
    zonesCanvas.dataset.layer = "zones";
    zonesCanvas.setAttribute("aria-hidden", "true");
    zonesCanvas.hidden = true;
    box.insertBefore(zonesCanvas, player.badge);
    if ("ResizeObserver" in window) new ResizeObserver(drawZones).observe(box);
    player.video.addEventListener("loadedmetadata", drawZones);
    player.video.addEventListener("resize", drawZones);
    if (page.faces && window.pv.faceOverlay) window.pv.faceOverlay.watch(player, id);

    document.getElementById("zones-toggle").addEventListener("change", toggleZones);
    document.querySelectorAll("[data-action=snapshot]").forEach(function (b) { b.addEventListener("click", snapshot); });
    const form = document.getElementById("rtmp-form");
    if (form) {
      form.addEventListener("submit", startPush);
      document.querySelectorAll("[data-action=rtmp-stop]").forEach(function (b) { b.addEventListener("click", stopPush); });
    }
    loadCamera();
    loadEvents();
    setInterval(loadCamera, 15000);
    setInterval(loadEvents, 30000);
  });
})();
