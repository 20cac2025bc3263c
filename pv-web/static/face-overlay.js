// PentaVision face boxes over video: `window.pv.faceOverlay`.
//
// - `watch(player, cameraId)`: live boxes on a pv.Player (its `canvas[data-layer=faces]`), fed
//   by the face event stream (GET /api/v1/faces/events/stream, server-sent events, one FaceEvent
//   JSON per message). A page shares one stream: with one camera watched it asks for that
//   camera (`?camera_id=`), with several for all of them, and hands each event to its camera's
//   overlay. A box stays 1.5 s after the last event of its face. Returns { close() }.
// - `draw(canvas, rect, faces)`: draw faces (FaceEvent-like: box, frame_width, frame_height,
//   name) on a canvas, `rect` being where the picture is in it (CSS pixels).
// - `videoRect(video)`: where the picture is inside a <video> element's box (object-fit aware).
//
// Boxes are in pixels of the analysed frame (frame_width × frame_height), so they are scaled to
// the displayed picture whatever the stream's resolution. For tests and tools the canvas
// carries `data-faces`: the names shown now ("Unknown" for an unknown face), comma separated.
"use strict";

(function () {
  const pv = window.pv = window.pv || {};
  const HOLD_MS = 1500;
  const KNOWN = "#22c55e";
  const UNKNOWN = "#facc15";

  /** The words drawn for a face. */
  function label(face) {
    return face.name || "Unknown";
  }

  /** Where the picture is inside `video`'s own box, honouring its object-fit. */
  function videoRect(video) {
    const w = video.clientWidth, h = video.clientHeight;
    const vw = video.videoWidth || 16, vh = video.videoHeight || 9;
    const fit = getComputedStyle(video).objectFit || "contain";
    if (fit === "fill") return { x: 0, y: 0, width: w, height: h };
    let scale = fit === "cover" ? Math.max(w / vw, h / vh) : Math.min(w / vw, h / vh);
    if (fit === "none") scale = 1;
    if (fit === "scale-down") scale = Math.min(1, Math.min(w / vw, h / vh));
    const pw = vw * scale, ph = vh * scale;
    return { x: (w - pw) / 2, y: (h - ph) / 2, width: pw, height: ph };
  }

  /** Size the canvas to its CSS box (device pixels) and clear it; the 2D context in CSS pixels. */
  function prepare(canvas) {
    const w = canvas.clientWidth, h = canvas.clientHeight;
    const dpr = window.devicePixelRatio || 1;
    const cw = Math.max(1, Math.round(w * dpr)), ch = Math.max(1, Math.round(h * dpr));
    if (canvas.width !== cw) canvas.width = cw;
    if (canvas.height !== ch) canvas.height = ch;
    const ctx = canvas.getContext("2d");
    ctx.setTransform(dpr, 0, 0, dpr, 0, 0);
    ctx.clearRect(0, 0, w, h);
    return ctx;
  }

  /** Draw `faces` on `canvas`; `rect`: where the picture is in the canvas. */
  function draw(canvas, rect, faces) {
    const ctx = prepare(canvas);
    const names = [];
    (faces || []).forEach(function (f) {
      if (!f || !f.box || !f.frame_width || !f.frame_height) return;
      const sx = rect.width / f.frame_width, sy = rect.height / f.frame_height;
      const x = rect.x + f.box.x * sx, y = rect.y + f.box.y * sy;
      const w = f.box.w * sx, h = f.box.h * sy;
      const text = label(f);
      names.push(text);
      const colour = f.identity_id != null ? KNOWN : UNKNOWN;
      ctx.lineWidth = 2;
      ctx.strokeStyle = colour;
      ctx.strokeRect(x, y, w, h);
      ctx.font = "600 13px system-ui, sans-serif";
      const tw = ctx.measureText(text).width;
      // The name sits on the box's top edge, or under it when the box touches the top.
      const ly = y - 20 >= rect.y ? y - 20 : Math.min(y + h, rect.y + rect.height - 20);
      const lx = Math.min(Math.max(x - 1, rect.x), rect.x + rect.width - tw - 10);
      ctx.fillStyle = colour;
      ctx.fillRect(lx, ly, tw + 10, 20);
      ctx.fillStyle = "#000";
      ctx.fillText(text, lx + 5, ly + 14);
    });
    canvas.dataset.faces = names.join(", ");
  }

  // ---- Live: one shared event stream per page ----

  const overlays = new Map(); // camera id → Set of overlays
  let source = null, sourceKey = null, retryMs = 2000, retryTimer = null;

  function wanted() {
    const ids = Array.from(overlays.keys());
    if (ids.length === 0) return null;
    return ids.length === 1 ? "?camera_id=" + encodeURIComponent(ids[0]) : "";
  }

  function connect() {
    const key = wanted();
    if (key === sourceKey && source) return;
    if (source) { source.close(); source = null; }
    if (retryTimer) { clearTimeout(retryTimer); retryTimer = null; }
    sourceKey = key;
    if (key === null) return;
    const es = source = new EventSource("/api/v1/faces/events/stream" + key);
    es.onopen = function () { retryMs = 2000; };
    es.onmessage = function (e) {
      let ev;
      try { ev = JSON.parse(e.data); } catch (_) { return; }
      const set = ev && overlays.get(String(ev.camera_id));
      if (set) set.forEach(function (o) { o.add(ev); });
    };
    es.onerror = function () {
      // The browser reconnects by itself after a dropped connection; a refusal closes the
      // stream for good: try again later, more slowly each time.
      if (es.readyState !== EventSource.CLOSED || source !== es) return;
      source = null;
      retryTimer = setTimeout(function () { retryTimer = null; sourceKey = null; connect(); }, retryMs);
      retryMs = Math.min(retryMs * 2, 60000);
    };
  }

  /** Boxes of one face, tracked across events. */
  function sameFace(a, b) {
    if (a.identity_id != null || b.identity_id != null) return a.identity_id === b.identity_id;
    const ax = (a.box.x + a.box.w / 2) / a.frame_width, ay = (a.box.y + a.box.h / 2) / a.frame_height;
    const bx = (b.box.x + b.box.w / 2) / b.frame_width, by = (b.box.y + b.box.h / 2) / b.frame_height;
    const size = Math.max(a.box.w / a.frame_width, b.box.w / b.frame_width, 0.05);
    return Math.hypot(ax - bx, ay - by) < size;
  }

  /** Live face boxes over `player` (a pv.Player) for camera `cameraId`. */
  function watch(player, cameraId) {
    const box = player.container;
    let canvas = box.querySelector("canvas[data-layer=faces]");
    if (!canvas) {
      canvas = document.createElement("canvas");
      canvas.className = "overlay";
      canvas.dataset.layer = "faces";
      canvas.setAttribute("aria-hidden", "true");
      box.appendChild(canvas);
    }
    const key = String(cameraId);
    let tracks = []; // [{ face, until }]
    let timer = null;
    const overlay = {
      add: function (ev) {
        const now = Date.now();
        tracks = tracks.filter(function (t) { return t.until > now && !sameFace(t.face, ev); });
        tracks.push({ face: ev, until: now + HOLD_MS });
        render();
      },
      close: function () {
        const set = overlays.get(key);
        if (set) { set.delete(overlay); if (set.size === 0) overlays.delete(key); }
        if (timer) clearTimeout(timer);
        tracks = [];
        prepare(canvas);
        canvas.dataset.faces = "";
        connect();
      },
      faces: function () { return tracks.map(function (t) { return t.face; }); },
    };
    function render() {
      const now = Date.now();
      tracks = tracks.filter(function (t) { return t.until > now; });
      draw(canvas, player.pictureRect(), tracks.map(function (t) { return t.face; }));
      if (timer) clearTimeout(timer);
      timer = null;
      if (tracks.length) {
        const next = Math.min.apply(null, tracks.map(function (t) { return t.until; }));
        timer = setTimeout(render, Math.max(50, next - now + 10));
      }
    }
    if ("ResizeObserver" in window) new ResizeObserver(function () { if (tracks.length) render(); }).observe(box);
    if (!overlays.has(key)) overlays.set(key, new Set());
    overlays.get(key).add(overlay);
    // Several overlays registering at once (a dashboard) share one reconnect.
    Promise.resolve().then(connect);
    return overlay;
  }

  window.addEventListener("pagehide", function () { if (source) source.close(); source = null; sourceKey = null; });
  window.addEventListener("pageshow", function (e) { if (e.persisted) connect(); });

  pv.faceOverlay = { watch: watch, draw: draw, videoRect: videoRect, label: label, HOLD_MS: HOLD_MS };
})();
