// PentaVision recordings page.
//
// - A timeline per camera over one shared, zoomable window of the chosen day (wheel, pinch,
//   + / − buttons; drag to move; tick labels adapt to the zoom). Recorded spans, motion
//   events, gaps and the segment being recorded (growing up to now) are drawn; pointing at a
//   moment shows the key frame at or before it (`/api/v1/cameras/{id}/thumbnail.jpg`,
//   debounced, cached by the browser).
// - A player that plays a camera's segments one after the other without a stall: the segment
//   files (fragmented MP4, each with its own init segment) are fetched whole and appended to
//   one MediaSource SourceBuffer, each placed (timestampOffset, read from its own fragments)
//   where the previous one's video ended, so gaps between recordings are skipped; the next
//   segment is fetched before the current one ends. Without Media Source Extensions it falls back to one <video src> per segment.
// - Up to four cameras play in sync on one playhead (the first chosen leads; the others follow
//   its wall-clock time).
// - Faces (for those who may see them, when face recognition is on): face events are marked
//   on the timelines (a purple tick, named in the hover preview), listed under the player
//   (choose one to play it), and drawn over the video while it plays (events within ±1 s of
//   the moment shown), with pv.faceOverlay (static/face-overlay.js).
// All times are shown in the browser's time zone, which is named on the page.
"use strict";

(function () {
  const page = window.pv.page || {};
  const toast = function (m, l) { return window.pv.toast(m, l); };
  const getJson = function (url) { return window.pv.api("GET", url); };

  const MINUTE = 60e3, HOUR = 3600e3, DAY = 86400e3;
  const MIN_SPAN = 2 * MINUTE;
  const THUMB_WIDTH = 240;
  const SPEEDS = [0.5, 1, 2, 4, 8, 16];
  const MS = window.ManagedMediaSource || window.MediaSource || null;

  const fmtHm = new Intl.DateTimeFormat(undefined, { hour: "2-digit", minute: "2-digit" });
  const fmtHms = new Intl.DateTimeFormat(undefined, { hour: "2-digit", minute: "2-digit", second: "2-digit" });
  const fmtFull = new Intl.DateTimeFormat(undefined, { dateStyle: "medium", timeStyle: "medium" });
  const zoneId = Intl.DateTimeFormat().resolvedOptions().timeZone || "";
  function zoneShort() {
    try {
      const part = new Intl.DateTimeFormat(undefined, { timeZoneName: "short" }).formatToParts(new Date())
        .find(function (p) { return p.type === "timeZoneName"; });
      return part ? part.value : "";
    } catch (e) { return ""; }
  }

  const $ = function (id) { return document.getElementById(id); };
  function el(tag, cls, text) {
    const e = document.createElement(tag);
    if (cls) e.className = cls;
    if (text !== undefined) e.textContent = text;
    return e;
  }
  const clamp = function (v, a, b) { return Math.max(a, Math.min(b, v)); };

  // ---------------------------------------------------------------------------------------
  // Data of the day.

  const st = {
    dayStart: 0, dayEnd: 0,
    view: { start: 0, end: 0 },
    cams: [],
    segs: new Map(),    // camera id → [{id, s, e, motion, raw}] oldest first
    motion: new Map(),  // camera id → [{s, e, score}]
    gaps: new Map(),    // camera id → [{s, e, reason}]
    faces: new Map(),   // camera id → [{t, ev}] oldest first (FaceEvent)
    live: new Map(),    // camera id → start (ms) of the segment being recorded
    rows: new Map(),    // camera id → {track, label}
    loadedAt: 0,
    following: true,    // the view follows the playhead
  };

  function dayBounds(value) {
    const start = value ? new Date(value + "T00:00:00") : new Date();
    if (!value) start.setHours(0, 0, 0, 0);
    const end = new Date(start);
    end.setDate(end.getDate() + 1); // a DST day is 23 or 25 hours long
    return [start.getTime(), end.getTime()];
  }
  function isToday() { return Date.now() >= st.dayStart && Date.now() < st.dayEnd; }

  async function load() {
    const q = "from=" + encodeURIComponent(new Date(st.dayStart).toISOString()) +
      "&to=" + encodeURIComponent(new Date(st.dayEnd).toISOString());
    const [cams, segs, events] = await Promise.all([
      getJson("/api/v1/cameras"),
      getJson("/api/v1/recordings?" + q),
      getJson("/api/v1/events?" + q).catch(function () { return []; }),
    ]);
    st.cams = cams;
    st.segs = new Map(); st.motion = new Map(); st.gaps = new Map(); st.live = new Map();
    cams.forEach(function (c) { st.segs.set(c.id, []); st.motion.set(c.id, []); st.gaps.set(c.id, []); });
    segs.forEach(function (s) {
      const list = st.segs.get(s.camera_id);
      if (list) list.push({ id: s.id, s: Date.parse(s.started_at), e: Date.parse(s.ended_at), motion: s.motion, raw: s });
    });
    st.segs.forEach(function (list) { list.sort(function (a, b) { return a.s - b.s || a.id - b.id; }); });
    events.forEach(function (ev) {
      const item = { s: Date.parse(ev.started_at), e: ev.ended_at ? Date.parse(ev.ended_at) : null, score: ev.score, reason: ev.reason };
      const map = ev.kind === "motion" ? st.motion : ev.kind === "gap" ? st.gaps : null;
      if (map && map.get(ev.camera_id)) map.get(ev.camera_id).push(item);
    });
    const now = Date.now();
    cams.forEach(function (c) {
      const status = c.status || {};
      const recording = status.state === "streaming" && c.enabled &&
        (c.recording_mode === "continuous" || (c.recording_mode === "motion" && status.motion));
      if (!recording || !isToday()) return;
      const list = st.segs.get(c.id);
      const last = list.length ? list[list.length - 1].e : 0;
      const since = status.since ? Date.parse(status.since) : now;
      const start = Math.max(last, since);
      if (start < now) st.live.set(c.id, start);
    });
    st.faces = await loadFaces(cams, q);
    st.loadedAt = now;
  }

  /** The day's face events per camera; none (quietly) when faces are off or not allowed. */
  async function loadFaces(cams, q) {
    const out = new Map();
    if (!page.faces) return out;
    await Promise.all(cams.map(async function (c) {
      try {
        const r = await getJson("/api/v1/faces/events?camera_id=" + c.id + "&" + q + "&limit=1000");
        const list = ((r && r.events) || []).map(function (ev) { return { t: Date.parse(ev.at), ev: ev }; });
        list.sort(function (a, b) { return a.t - b.t; });
        out.set(c.id, list);
      } catch (_) { /* no faces for this camera */ }
    }));
    return out;
  }

  function faceName(ev) { return ev.name || "Unknown face"; }

  /** The face event nearest `t` within `slack` ms on camera `camId`, or null. */
  function faceAt(camId, t, slack) {
    let best = null;
    (st.faces.get(camId) || []).forEach(function (f) {
      const d = Math.abs(f.t - t);
      if (d <= slack && (!best || d < Math.abs(best.t - t))) best = f;
    });
    return best;
  }

  // ---------------------------------------------------------------------------------------
  // Timeline drawing.

  const TICKS = [MINUTE, 2 * MINUTE, 5 * MINUTE, 10 * MINUTE, 15 * MINUTE, 30 * MINUTE, HOUR, 2 * HOUR, 3 * HOUR, 6 * HOUR];

  function trackWidth() {
    const t = $("tl-axis");
    return Math.max(t ? t.clientWidth : 0, 1);
  }
  const span = function () { return st.view.end - st.view.start; };
  function pct(t) { return ((t - st.view.start) / span() * 100) + "%"; }
  function timeAt(track, clientX) {
    const r = track.getBoundingClientRect();
    return st.view.start + clamp((clientX - r.left) / Math.max(r.width, 1), 0, 1) * span();
  }

  function zoomLabel(ms) {
    if (ms >= HOUR) {
      const h = Math.round(ms / HOUR * 10) / 10;
      return h + (h === 1 ? " hour" : " hours");
    }
    const m = Math.round(ms / MINUTE);
    return m + (m === 1 ? " minute" : " minutes");
  }

  function drawAxis() {
    const axis = $("tl-axis");
    const width = trackWidth();
    const per = span() / width; // ms per pixel
    // Room for a label: its text at the axis' font size, plus a margin.
    const room = fmtHm.format(new Date(st.dayStart)).length * 7 + 18;
    const step = TICKS.find(function (s) { return s / per >= room; }) || TICKS[TICKS.length - 1];
    const frag = document.createDocumentFragment();
    // Ticks are counted from the day's local midnight, so they fall on local hours.
    const first = st.dayStart + Math.ceil((st.view.start - st.dayStart) / step) * step;
    for (let t = first; t <= st.view.end; t += step) {
      // A label that would stick out of either end is left out.
      const x = (t - st.view.start) / per;
      if (x < room / 2 - 8 || width - x < room / 2 - 8) continue;
      const tick = el("span", "rec-tick", fmtHm.format(new Date(t)));
      tick.style.left = pct(t);
      if ((t - st.dayStart) % HOUR === 0) tick.classList.add("hour");
      frag.appendChild(tick);
    }
    axis.replaceChildren(frag);
    $("zoom-label").textContent = zoomLabel(span());
  }

  function place(node, from, to) {
    const a = Math.max(from, st.view.start), b = Math.min(to, st.view.end);
    node.style.left = pct(a);
    node.style.width = (Math.max(b - a, 0) / span() * 100) + "%";
  }
  const visible = function (from, to) { return to > st.view.start && from < st.view.end; };

  function buildRows() {
    const box = $("timelines");
    box.replaceChildren();
    st.rows = new Map();
    if (st.cams.length === 0) {
      box.appendChild(el("p", "hint", "No cameras yet: add one on the Cameras page."));
      return;
    }
    st.cams.forEach(function (cam) {
      const row = el("div", "timeline-row rec-row");
      row.id = "camera-" + cam.id;
      const label = el("div", "rec-label");
      row.appendChild(label);
      const track = el("div", "timeline rec-track");
      track.dataset.camera = cam.id;
      track.tabIndex = 0;
      track.setAttribute("role", "group");
      track.setAttribute("aria-label", "Recordings of " + cam.name + ": click a moment to play it, Enter plays the middle of the view, + and − zoom");
      row.appendChild(track);
      box.appendChild(row);
      const head = el("div", "rec-playhead");
      head.hidden = true;
      st.rows.set(cam.id, { track: track, label: label, cam: cam, head: head });
      bindTrack(track, cam);
    });
  }

  function drawTracks() {
    st.rows.forEach(function (r, camId) {
      const segs = st.segs.get(camId) || [];
      r.label.textContent = r.cam.name + " (" + segs.length + ")";
      const frag = document.createDocumentFragment();
      // Gaps first: where a gap and a recording meet at this zoom, the recording shows.
      (st.gaps.get(camId) || []).forEach(function (g) {
        const end = g.e || Date.now();
        if (!visible(g.s, end)) return;
        const d = el("div", "gap");
        d.title = "Not recorded" + (g.reason ? ": " + g.reason : "");
        place(d, g.s, end);
        frag.appendChild(d);
      });
      segs.forEach(function (s) {
        if (!visible(s.s, s.e)) return;
        const remote = s.raw && s.raw.stored === "remote";
        const d = el("div", "span" + (s.motion ? " motion" : "") + (remote ? " remote" : ""));
        if (remote) d.title = "Plays from the off-site copy (no longer on this server's disk)";
        d.dataset.segment = s.id;
        place(d, s.s, s.e);
        frag.appendChild(d);
      });
      const live = st.live.get(camId);
      if (live !== undefined) {
        const now = Date.now();
        if (visible(live, now)) {
          const d = el("div", "span live");
          d.title = "Recording now";
          place(d, live, now);
          frag.appendChild(d);
        }
      }
      (st.motion.get(camId) || []).forEach(function (m, i) {
        const end = m.e || Date.now();
        if (!visible(m.s, end)) return;
        const d = el("div", "rec-event");
        d.dataset.event = i;
        place(d, m.s, end);
        frag.appendChild(d);
      });
      // Face events: one tick per few pixels (a person in view for a minute is many events).
      let lastX = -Infinity;
      const per = span() / trackWidth();
      (st.faces.get(camId) || []).forEach(function (f) {
        if (!visible(f.t, f.t + 1)) return;
        const x = (f.t - st.view.start) / per;
        if (x - lastX < 4) return;
        lastX = x;
        const d = el("div", "rec-face" + (f.ev.identity_id == null ? " unknown" : ""));
        d.dataset.face = f.ev.id == null ? "" : f.ev.id;
        d.title = faceName(f.ev) + ", " + fmtHms.format(new Date(f.t));
        d.style.left = pct(f.t);
        frag.appendChild(d);
      });
      frag.appendChild(r.head);
      r.track.replaceChildren(frag);
    });
    drawPlayhead();
  }

  /** Move the playhead (on the rows of the cameras playing) without redrawing the rows. */
  function drawPlayhead() {
    const w = player.lead ? player.wall() : null;
    st.rows.forEach(function (r, camId) {
      const on = w !== null && visible(w, w + 1) &&
        player.cams().some(function (p) { return p.cam.id === camId; });
      r.head.hidden = !on;
      if (on) r.head.style.left = pct(w);
    });
  }

  let drawQueued = false;
  function draw() {
    if (drawQueued) return;
    drawQueued = true;
    requestAnimationFrame(function () {
      drawQueued = false;
      drawAxis();
      drawTracks();
    });
  }

  function setView(start, end) {
    let len = clamp(end - start, MIN_SPAN, st.dayEnd - st.dayStart);
    start = clamp(start, st.dayStart, st.dayEnd - len);
    st.view = { start: start, end: start + len };
    draw();
  }
  function zoom(factor, around) {
    const at = around === undefined ? (st.view.start + st.view.end) / 2 : around;
    const len = clamp(span() * factor, MIN_SPAN, st.dayEnd - st.dayStart);
    const ratio = (at - st.view.start) / span();
    setView(at - ratio * len, at - ratio * len + len);
  }

  // The + and − buttons (and keys) step through these window lengths, around the playhead,
  // else now, else the middle of the view.
  const LADDER = [DAY, 12 * HOUR, 6 * HOUR, 3 * HOUR, HOUR, 30 * MINUTE, 15 * MINUTE, 5 * MINUTE, MIN_SPAN];
  function zoomAnchor() {
    const w = player.wall();
    const inView = function (t) { return t >= st.view.start && t <= st.view.end; };
    if (w !== null && inView(w)) return { t: w, ratio: (w - st.view.start) / span() };
    const now = Date.now();
    if (inView(now)) return { t: now, ratio: 0.8 }; // now near the right edge
    return { t: (st.view.start + st.view.end) / 2, ratio: 0.5 };
  }
  function zoomStep(dir) {
    const cur = span();
    const next = dir > 0
      ? LADDER.find(function (l) { return l < cur - 1000; })
      : LADDER.slice().reverse().find(function (l) { return l > cur + 1000; });
    if (!next) return;
    const a = zoomAnchor();
    setView(a.t - a.ratio * next, a.t - a.ratio * next + next);
  }

  // ---------------------------------------------------------------------------------------
  // Pointer: hover preview, drag to pan, pinch and wheel to zoom, click to play.

  /** Whether the camera recorded at `t` (a hole shorter than `slack` ms between two segments
   * counts as recorded). */
  function recordedAt(camId, t, slack) {
    const segs = st.segs.get(camId) || [];
    const pad = slack || 0;
    for (let i = segs.length - 1; i >= 0; i--) {
      if (segs[i].s - pad <= t && t < segs[i].e + pad) return true;
      if (segs[i].e + pad <= t) break;
    }
    const live = st.live.get(camId);
    return live !== undefined && t >= live && t <= Date.now();
  }

  function motionAt(camId, t, slack) {
    return (st.motion.get(camId) || []).find(function (m) {
      return m.s - slack <= t && t <= (m.e || Date.now()) + slack;
    }) || null;
  }

  const thumbState = new Map(); // url → "ok" | "missing"
  let previewTimer = 0, previewFor = null;

  function thumbUrl(camId, t) {
    // Quantised to the zoom (a few pixels) so nearby points share a picture and the browser
    // cache answers.
    const per = span() / trackWidth();
    const q = [1, 2, 5, 10, 15, 30, 60, 120, 300].find(function (s) { return s * 1000 >= per * 3; }) || 300;
    const at = Math.floor(t / (q * 1000)) * q * 1000;
    return "/api/v1/cameras/" + camId + "/thumbnail.jpg?at=" + encodeURIComponent(new Date(Math.max(at, segStartFor(camId, t))).toISOString()) +
      "&width=" + THUMB_WIDTH;
  }
  function segStartFor(camId, t) {
    const seg = (st.segs.get(camId) || []).find(function (s) { return s.s <= t && t < s.e; });
    if (seg) return seg.s;
    const live = st.live.get(camId);
    return live !== undefined && t >= live ? live : t;
  }

  function showPreview(track, cam, clientX, t) {
    const box = $("tl-preview");
    const tl = $("tl");
    const face = faceAt(cam.id, t, span() / trackWidth() * 4);
    const ev = face ? null : motionAt(cam.id, t, span() / trackWidth() * 4);
    const at = face ? face.t : ev ? ev.s : t;
    const text = $("tl-preview-text");
    text.textContent = (face ? faceName(face.ev) + ", " : ev ? "Motion, " : "") + cam.name + ", " + fmtHms.format(new Date(at));
    const img = $("tl-preview-img");
    const recorded = recordedAt(cam.id, at) || (ev && recordedAt(cam.id, at + 1000));
    box.hidden = false;
    // Placed above the pointer, kept inside the timeline card (no horizontal overflow).
    const tr = track.getBoundingClientRect(), outer = tl.getBoundingClientRect();
    const w = box.offsetWidth || THUMB_WIDTH;
    box.style.left = clamp(clientX - outer.left - w / 2, 0, Math.max(outer.width - w, 0)) + "px";
    box.style.top = (tr.top - outer.top + tr.height + 6) + "px";
    previewFor = { cam: cam.id, at: at };
    clearTimeout(previewTimer);
    if (!recorded) {
      img.hidden = true;
      text.textContent += ": not recorded";
      return;
    }
    const url = thumbUrl(cam.id, ev ? Math.max(at, segStartFor(cam.id, at + 1000)) : at);
    if (thumbState.get(url) === "missing") { img.hidden = true; text.textContent += ": no picture"; return; }
    if (img.dataset.url === url) { img.hidden = false; return; }
    previewTimer = setTimeout(function () {
      const want = previewFor;
      const probe = new Image();
      probe.onload = function () {
        thumbState.set(url, "ok");
        if (previewFor !== want) return;
        img.src = url; img.dataset.url = url; img.hidden = false;
        img.alt = "Picture at " + fmtHms.format(new Date(at));
      };
      probe.onerror = function () {
        thumbState.set(url, "missing");
        if (previewFor === want) { img.hidden = true; }
      };
      probe.src = url;
    }, thumbState.get(url) === "ok" ? 0 : 120);
  }
  function hidePreview() {
    clearTimeout(previewTimer);
    previewFor = null;
    $("tl-preview").hidden = true;
  }

  function bindTrack(track, cam) {
    const pointers = new Map();
    let drag = null, pinch = null;
    track.addEventListener("pointerdown", function (e) {
      if (e.button !== 0) return;
      pointers.set(e.pointerId, e.clientX);
      track.setPointerCapture(e.pointerId);
      if (pointers.size === 2) {
        const xs = Array.from(pointers.values());
        pinch = { dist: Math.abs(xs[0] - xs[1]) || 1, view: Object.assign({}, st.view), mid: timeAt(track, (xs[0] + xs[1]) / 2) };
        drag = null;
      } else {
        drag = { x: e.clientX, view: Object.assign({}, st.view), moved: false };
      }
    });
    track.addEventListener("pointermove", function (e) {
      if (pointers.has(e.pointerId)) pointers.set(e.pointerId, e.clientX);
      if (pinch && pointers.size >= 2) {
        const xs = Array.from(pointers.values());
        const dist = Math.abs(xs[0] - xs[1]) || 1;
        const len = (pinch.view.end - pinch.view.start) * pinch.dist / dist;
        const ratio = (pinch.mid - pinch.view.start) / (pinch.view.end - pinch.view.start);
        setView(pinch.mid - ratio * len, pinch.mid - ratio * len + len);
        return;
      }
      if (drag) {
        const dx = e.clientX - drag.x;
        if (Math.abs(dx) > 4) drag.moved = true;
        if (drag.moved) {
          st.following = false;
          const r = track.getBoundingClientRect();
          const shift = dx / Math.max(r.width, 1) * (drag.view.end - drag.view.start);
          setView(drag.view.start - shift, drag.view.end - shift);
        }
      }
      showPreview(track, cam, e.clientX, timeAt(track, e.clientX));
    });
    function up(e) {
      pointers.delete(e.pointerId);
      if (pinch) { if (pointers.size < 2) pinch = null; drag = null; return; }
      if (drag && !drag.moved && e.type === "pointerup") {
        st.following = true;
        const t = timeAt(track, e.clientX);
        const face = faceAt(cam.id, t, span() / trackWidth() * 4);
        playAt(cam, face ? face.t : t, !face);
      }
      drag = null;
    }
    track.addEventListener("pointerup", up);
    track.addEventListener("pointercancel", up);
    track.addEventListener("pointerleave", function () { if (!drag) hidePreview(); });
    track.addEventListener("wheel", function (e) {
      e.preventDefault();
      const t = timeAt(track, e.clientX);
      if (Math.abs(e.deltaX) > Math.abs(e.deltaY)) {
        const shift = e.deltaX / trackWidth() * span();
        setView(st.view.start + shift, st.view.end + shift);
      } else {
        zoom(Math.pow(1.0015, e.deltaY), t);
      }
      st.following = false;
      showPreview(track, cam, e.clientX, t);
    }, { passive: false });
    track.addEventListener("keydown", function (e) {
      if (e.key === "Enter") { playAt(cam, (st.view.start + st.view.end) / 2, true); e.preventDefault(); }
    });
  }

  // ---------------------------------------------------------------------------------------
  // Playback of one camera: its segments back to back in one MediaSource.

  /** The MIME type of a segment file for MSE, read from its init segment (codec profile
   * from avcC; AAC when an mp4a sample entry is present). */
  function mimeOf(bytes, seg) {
    const view = new DataView(bytes.buffer, bytes.byteOffset, bytes.byteLength);
    let moov = null;
    for (let i = 0; i + 8 <= bytes.length;) {
      let size = view.getUint32(i);
      const type = String.fromCharCode(bytes[i + 4], bytes[i + 5], bytes[i + 6], bytes[i + 7]);
      if (size === 1 && i + 16 <= bytes.length) size = Number(view.getBigUint64(i + 8));
      if (size === 0) size = bytes.length - i;
      if (size < 8) break;
      if (type === "moov") { moov = bytes.subarray(i, Math.min(i + size, bytes.length)); break; }
      i += size;
    }
    const box = moov || bytes.subarray(0, Math.min(bytes.length, 65536));
    const find = function (name) {
      const c = [name.charCodeAt(0), name.charCodeAt(1), name.charCodeAt(2), name.charCodeAt(3)];
      for (let i = 0; i + 4 <= box.length; i++) {
        if (box[i] === c[0] && box[i + 1] === c[1] && box[i + 2] === c[2] && box[i + 3] === c[3]) return i;
      }
      return -1;
    };
    const hex = function (b) { return b.toString(16).padStart(2, "0"); };
    let video;
    const avcc = find("avcC");
    if (avcc >= 0 && avcc + 8 <= box.length) {
      video = "avc1." + hex(box[avcc + 5]) + hex(box[avcc + 6]) + hex(box[avcc + 7]);
    } else if (find("hvcC") >= 0 || (seg && seg.raw.codec === "h265")) {
      video = (find("hev1") >= 0 ? "hev1" : "hvc1") + ".1.6.L120.90";
    } else {
      video = "avc1.42E01E";
    }
    const codecs = find("mp4a") >= 0 ? video + ", mp4a.40.2" : video;
    return 'video/mp4; codecs="' + codecs + '"';
  }

  /** The video track's time span in a fragmented MP4 file, in seconds of its own timeline:
   * the first fragment's decode time to the end of the last sample (from the moov's track
   * ids, handlers and time scales, and each moof's tfdt and trun durations). Null when the
   * file has no video fragments. */
  function videoSpan(bytes) {
    const view = new DataView(bytes.buffer, bytes.byteOffset, bytes.byteLength);
    const type = function (i) { return String.fromCharCode(bytes[i + 4], bytes[i + 5], bytes[i + 6], bytes[i + 7]); };
    function children(from, to, visit) {
      for (let i = from; i + 8 <= to;) {
        let size = view.getUint32(i), head = 8;
        if (size === 1) { size = Number(view.getBigUint64(i + 8)); head = 16; }
        if (size === 0) size = to - i;
        if (size < head || i + size > to) break;
        visit(type(i), i + head, i + size);
        i += size;
      }
    }
    const tracks = {}; // id → {video, scale, defaultDuration}
    let video = null, start = null, end = null;
    function trak(from, to) {
      let id = 0, scale = 0, handler = "";
      children(from, to, function (t, a, b) {
        if (t === "tkhd") id = view.getUint32(a + (bytes[a] === 1 ? 20 : 12));
        if (t === "mdia") {
          children(a, b, function (t2, c) {
            if (t2 === "mdhd") scale = view.getUint32(c + (bytes[c] === 1 ? 20 : 12));
            if (t2 === "hdlr") handler = type(c + 4);
          });
        }
      });
      tracks[id] = { video: handler === "vide", scale: scale, defaultDuration: 0 };
      if (handler === "vide" && video === null) video = id;
    }
    function traf(from, to) {
      let id = 0, base = null, dflt = 0, total = 0;
      children(from, to, function (t, a) {
        const flags = view.getUint32(a) & 0xffffff;
        if (t === "tfhd") {
          id = view.getUint32(a + 4);
          let o = a + 8;
          if (flags & 0x01) o += 8;
          if (flags & 0x02) o += 4;
          if (flags & 0x08) dflt = view.getUint32(o);
        } else if (t === "tfdt") {
          base = bytes[a] === 1 ? Number(view.getBigUint64(a + 4)) : view.getUint32(a + 4);
        } else if (t === "trun") {
          const count = view.getUint32(a + 4);
          let o = a + 8;
          if (flags & 0x01) o += 4;
          if (flags & 0x04) o += 4;
          const per = ((flags & 0x100) ? 4 : 0) + ((flags & 0x200) ? 4 : 0) + ((flags & 0x400) ? 4 : 0) + ((flags & 0x800) ? 4 : 0);
          const track = tracks[id] || {};
          for (let k = 0; k < count; k++) {
            total += (flags & 0x100) ? view.getUint32(o + k * per) : (dflt || track.defaultDuration || 0);
          }
        }
      });
      const track = tracks[id];
      if (id !== video || !track || !track.scale || base === null) return;
      if (start === null || base / track.scale < start) start = base / track.scale;
      end = Math.max(end || 0, (base + total) / track.scale);
    }
    children(0, bytes.length, function (t, a, b) {
      if (t === "moov") {
        children(a, b, function (t2, c, d) {
          if (t2 === "trak") trak(c, d);
          if (t2 === "mvex") {
            children(c, d, function (t3, e) {
              if (t3 === "trex" && tracks[view.getUint32(e + 4)]) tracks[view.getUint32(e + 4)].defaultDuration = view.getUint32(e + 12);
            });
          }
        });
      }
      if (t === "moof") children(a, b, function (t2, c, d) { if (t2 === "traf") traf(c, d); });
    });
    return start === null ? null : { start: start, end: end };
  }

  const fetched = new Map(); // segment id → Promise<Uint8Array> (the next few, prefetched)
  function fetchSegment(seg) {
    let p = fetched.get(seg.id);
    if (!p) {
      p = fetch("/api/v1/recordings/" + seg.id + "/media", { credentials: "same-origin" }).then(function (r) {
        if (!r.ok) throw new Error("The recording of " + fmtHms.format(new Date(seg.s)) + " cannot be read (" + r.status + ").");
        return r.arrayBuffer();
      }).then(function (b) { return new Uint8Array(b); });
      p.catch(function () { fetched.delete(seg.id); });
      fetched.set(seg.id, p);
      while (fetched.size > 8) fetched.delete(fetched.keys().next().value);
    }
    return p;
  }

  function bufferedEnd(sb) {
    try { return sb.buffered.length ? sb.buffered.end(sb.buffered.length - 1) : 0; } catch (e) { return 0; }
  }

  /** Plays one camera's recordings in `video`. */
  function Engine(cam, video, label) {
    this.cam = cam;
    this.video = video;
    this.label = label;
    this.sess = null;
    this.gen = 0;
    const self = this;
    this.timer = setInterval(function () { self.tick(); }, 200);
  }

  Engine.prototype.segments = function () { return st.segs.get(this.cam.id) || []; };

  Engine.prototype.destroy = function () {
    clearInterval(this.timer);
    this.stop();
  };

  Engine.prototype.stop = function () {
    this.gen++;
    const s = this.sess;
    this.sess = null;
    if (s && s.url) URL.revokeObjectURL(s.url);
    this.video.removeAttribute("src");
    try { this.video.load(); } catch (e) { /* nothing loaded */ }
  };

  /** Start playing at wall-clock `at` (ms): the segment covering it, else the next one.
   * Returns false when nothing was recorded at or after `at` this day. */
  Engine.prototype.start = function (at, autoplay) {
    const segs = this.segments();
    let k = segs.findIndex(function (s) { return s.s <= at && at < s.e; });
    if (k < 0) k = segs.findIndex(function (s) { return s.s > at; });
    this.stop();
    if (k < 0) { this.setLabel("Not recorded at this moment"); return false; }
    this.setLabel("");
    const gen = this.gen;
    const sess = {
      gen: gen, first: segs[k], entries: [], startAt: Math.max(at, segs[k].s), started: false,
      autoplay: autoplay !== false, appending: false, ended: false, mime: null, ms: null, sb: null, url: null,
      rate: Number($("speed").value) || 1,
    };
    this.sess = sess;
    const self = this;
    if (!MS) return this.startPlain(sess);
    const ms = new MS();
    sess.ms = ms;
    sess.url = URL.createObjectURL(ms);
    if (window.ManagedMediaSource && ms instanceof window.ManagedMediaSource) this.video.disableRemotePlayback = true;
    ms.addEventListener("sourceopen", function () { if (self.gen === gen) self.pump(); }, { once: true });
    this.video.src = sess.url;
    return true;
  };

  /** Feed the SourceBuffer: drop what lies well behind, append the next segment when less
   * than the look-ahead is buffered, and fetch the one after it meanwhile. */
  Engine.prototype.pump = async function () {
    const sess = this.sess;
    if (!sess || !sess.ms || sess.appending || sess.ended || sess.ms.readyState !== "open") return;
    const sb = sess.sb;
    if (sb && sb.updating) return;
    const v = this.video;
    if (sb && sb.buffered.length && sb.buffered.start(0) < v.currentTime - 40) {
      try { sb.remove(0, v.currentTime - 20); } catch (e) { /* retried next tick */ }
      return;
    }
    const seg = this.nextSegment(sess);
    if (!seg) {
      // Today: the recorder may still add segments; otherwise the stream is complete.
      if (!isToday() || !st.live.has(this.cam.id)) {
        if (sess.started && !sb.updating) { try { sess.ms.endOfStream(); } catch (e) { /* closed */ } sess.ended = true; }
      }
      return;
    }
    const ahead = sb ? bufferedEnd(sb) - v.currentTime : 0;
    const lookahead = Math.max(20, 6 * (v.playbackRate || 1));
    if (sess.entries.length && ahead > lookahead) {
      fetchSegment(seg).catch(function () { /* reported when appended */ });
      return;
    }
    sess.appending = true;
    let bytes;
    try {
      bytes = await fetchSegment(seg);
    } catch (e) {
      sess.appending = false;
      if (this.sess !== sess) return;
      toast(e.message, "error");
      sess.skipped = seg;
      return;
    }
    if (this.sess !== sess || sess.ms.readyState !== "open") return;
    const mime = mimeOf(bytes, seg);
    try {
      if (!sess.sb) {
        if (MS.isTypeSupported && !MS.isTypeSupported(mime)) {
          sess.appending = false;
          return this.startPlain(sess);
        }
        sess.sb = sess.ms.addSourceBuffer(mime);
        sess.sb.mode = "segments";
        const self = this;
        sess.sb.addEventListener("updateend", function () { self.appended(sess); });
        sess.sb.addEventListener("error", function () { self.failed(sess, "The browser could not play the recording."); });
      } else if (mime !== sess.mime && sess.sb.changeType) {
        sess.sb.changeType(mime);
      }
      sess.mime = mime;
      // Each file's video starts where the previous file's video ended (its own time stamps
      // start near zero): gaps between recordings are skipped, audio keeps its place.
      const vs = videoSpan(bytes) || { start: 0, end: (seg.e - seg.s) / 1000 };
      const prev = sess.entries[sess.entries.length - 1];
      const mediaStart = prev ? prev.mediaEnd : 0;
      sess.sb.timestampOffset = mediaStart - vs.start;
      sess.entries.push({ seg: seg, mediaStart: mediaStart, mediaEnd: mediaStart + (vs.end - vs.start) });
      sess.sb.appendBuffer(bytes);
      fetched.delete(seg.id);
      const after = this.nextSegment(sess);
      if (after) fetchSegment(after).catch(function () { /* reported when appended */ });
    } catch (e) {
      sess.appending = false;
      if (e && e.name === "QuotaExceededError") {
        sess.entries.pop();
        try { sess.sb.remove(0, Math.max(v.currentTime - 2, 0)); } catch (x) { /* next tick */ }
        return;
      }
      this.failed(sess, "The browser could not play the recording (" + (e && e.message || e) + ").");
    }
  };

  Engine.prototype.appended = function (sess) {
    if (this.sess !== sess) return;
    if (sess.appending) {
      sess.appending = false;
      const last = sess.entries[sess.entries.length - 1];
      if (!sess.started && last) {
        sess.started = true;
        const first = sess.entries[0];
        this.video.currentTime = first.mediaStart + Math.max(sess.startAt - first.seg.s, 0) / 1000;
        this.video.playbackRate = sess.rate;
        if (sess.autoplay) this.video.play().catch(function () { /* the play button is there */ });
        onStarted(this);
      }
    }
    this.pump();
  };

  Engine.prototype.failed = function (sess, message) {
    if (this.sess !== sess || sess.failed) return;
    sess.failed = true;
    toast(message, "error");
  };

  /** The segment to append after the last one appended (or skipped): the next one by start
   * time in the day's list, which is reloaded while today is recorded. */
  Engine.prototype.nextSegment = function (sess) {
    const last = sess.skipped || (sess.entries.length ? sess.entries[sess.entries.length - 1].seg : null);
    const segs = this.segments();
    if (!last) return segs.find(function (s) { return s.id === sess.first.id; }) || sess.first;
    return segs.find(function (s) { return s.s > last.s || (s.s === last.s && s.id > last.id); }) || null;
  };

  /** Without MSE: one segment at a time in a plain <video src>. */
  Engine.prototype.startPlain = function (sess) {
    const self = this, v = this.video;
    sess.plain = true;
    sess.ms = null;
    function open(seg, offset) {
      if (self.sess !== sess || !seg) return;
      sess.skipped = null;
      sess.entries = [{ seg: seg, mediaStart: 0, mediaEnd: (seg.e - seg.s) / 1000 }];
      v.src = "/api/v1/recordings/" + seg.id + "/media";
      v.addEventListener("loadedmetadata", function () {
        if (self.sess !== sess) return;
        v.currentTime = offset;
        v.playbackRate = Number($("speed").value) || 1;
        if (sess.autoplay) v.play().catch(function () { /* controls */ });
        if (!sess.started) { sess.started = true; onStarted(self); }
      }, { once: true });
    }
    v.onended = function () { if (self.sess === sess) { sess.autoplay = true; open(self.nextSegment(sess), 0); } };
    open(sess.first, Math.max(sess.startAt - sess.first.s, 0) / 1000);
    return true;
  };

  /** The wall-clock time (ms) being shown, or null. */
  Engine.prototype.wall = function () {
    const sess = this.sess;
    if (!sess || !sess.started) return sess ? sess.startAt : null;
    const t = this.video.currentTime;
    let e = null;
    for (let i = sess.entries.length - 1; i >= 0; i--) {
      if (sess.entries[i].mediaStart <= t + 1e-3) { e = sess.entries[i]; break; }
    }
    if (!e) e = sess.entries[0];
    return e.seg.s + Math.min(Math.max(t - e.mediaStart, 0) * 1000, e.seg.e - e.seg.s);
  };

  /** Go to wall-clock `at`: inside what is buffered by moving the play position, else by
   * starting again there. */
  Engine.prototype.seek = function (at) {
    const sess = this.sess;
    if (sess && sess.started && !sess.plain) {
      const e = sess.entries.find(function (x) { return x.seg.s <= at && at < x.seg.e; });
      if (e) {
        const t = e.mediaStart + (at - e.seg.s) / 1000;
        const b = sess.sb.buffered;
        for (let i = 0; i < b.length; i++) {
          if (b.start(i) <= t + 0.05 && t < b.end(i)) { this.video.currentTime = Math.max(t, b.start(i)); return true; }
        }
      }
    }
    const playing = !this.video.paused || !sess;
    return this.start(at, playing);
  };

  /** Every 200 ms: keep feeding, and step over a hole in the buffer (e.g. a lost fragment). */
  Engine.prototype.tick = function () {
    const sess = this.sess;
    if (!sess || sess.plain) return;
    this.pump();
    const v = this.video;
    if (sess.started && sess.sb && v.readyState < 3 && !v.paused) {
      const b = sess.sb.buffered;
      for (let i = 0; i < b.length; i++) {
        if (b.start(i) > v.currentTime && b.start(i) - v.currentTime < 3) { v.currentTime = b.start(i) + 0.01; break; }
      }
    }
  };

  Engine.prototype.setLabel = function (text) {
    if (this.label) this.label.textContent = text ? this.cam.name + ": " + text : this.cam.name;
  };

  // ---------------------------------------------------------------------------------------
  // The player: one camera, or up to four in sync.

  const player = {
    lead: null,        // the Engine whose clock the others follow
    followers: [],
    cams: function () { return this.lead ? [this.lead].concat(this.followers) : []; },
    wall: function () { return this.lead ? this.lead.wall() : null; },
    rangeFrom: null, rangeTo: null,
  };

  function tiles(n) {
    const grid = $("player-grid");
    grid.classList.toggle("multi", n > 1);
    while (grid.children.length < n) {
      const tile = el("div", "rec-tile");
      tile.dataset.slot = grid.children.length;
      const v = el("video");
      v.playsInline = true; v.muted = true; v.preload = "auto";
      tile.appendChild(v);
      tile.appendChild(el("p", "rec-tile-label"));
      grid.appendChild(tile);
    }
    while (grid.children.length > n && grid.children.length > 1) grid.removeChild(grid.lastChild);
    return Array.from(grid.children).map(function (t) { return { video: t.querySelector("video"), label: t.querySelector(".rec-tile-label") }; });
  }

  function syncSelection() {
    return Array.from(document.querySelectorAll("#sync-cameras input:checked")).map(function (i) { return Number(i.value); });
  }

  /** Play `cam` from wall-clock `t`, with the cameras chosen to play together. */
  function playAt(cam, t, fromClick, retried) {
    let ids = syncSelection();
    if (ids.indexOf(cam.id) < 0) ids = [cam.id];
    ids = [cam.id].concat(ids.filter(function (i) { return i !== cam.id; })).slice(0, 4);
    const current = player.cams().map(function (e) { return e.cam.id; });
    if (current.join(",") !== ids.join(",")) {
      player.cams().forEach(function (e) { e.destroy(); });
      const slots = tiles(ids.length);
      const engines = ids.map(function (id, i) {
        const c = st.cams.find(function (x) { return x.id === id; });
        const e = new Engine(c, slots[i].video, slots[i].label);
        slots[i].video.hidden = false;
        e.setLabel("");
        return e;
      });
      player.lead = engines[0];
      player.followers = engines.slice(1);
      bindVideo(player.lead.video);
    }
    const segs = st.segs.get(cam.id) || [];
    const covering = segs.find(function (s) { return s.s <= t && t < s.e; });
    if (!covering) {
      const next = segs.find(function (s) { return s.s > t; });
      if (!next) {
        if (st.live.has(cam.id) && t >= st.live.get(cam.id) && !retried) {
          // Recorded since the page last asked: ask again, then play.
          show($("day").value, true).then(function () { playAt(cam, t, fromClick, true); });
          return false;
        }
        if (st.live.has(cam.id) && t >= st.live.get(cam.id)) toast("That moment is still being recorded; it can be played in a moment.", "info");
        else toast("Nothing was recorded at that moment" + (fromClick ? " or after it on this day." : "."), "info");
        return false;
      }
      if (fromClick && next.s - t > 5 * MINUTE) toast("Nothing was recorded at that moment; playing from " + fmtHm.format(new Date(next.s)) + ".", "info");
    }
    player.lead.seek(t);
    player.followers.forEach(function (f) { f.seek(t); });
    $("player-grid").hidden = false;
    $("player-controls").hidden = false;
    $("range-box").hidden = !page.can_export;
    caption();
    draw();
    return true;
  }

  function onStarted(engine) {
    if (engine === player.lead) caption();
  }

  function caption() {
    const lead = player.lead;
    if (!lead) return;
    const w = lead.wall();
    const names = player.cams().map(function (e) { return e.cam.name; }).join(", ");
    const full = window.pv.formatTime || function (d) { return fmtFull.format(d); };
    $("player-caption").textContent = names + (w !== null ? ", " + full(new Date(w)) : "");
    $("player-clock").textContent = w !== null ? fmtHms.format(new Date(w)) + " " + zoneShort() : "";
    $("play").textContent = lead.video.paused ? "Play" : "Pause";
  }

  let boundVideo = null;
  function bindVideo(v) {
    if (boundVideo === v) return;
    boundVideo = v;
    ["play", "pause", "ratechange"].forEach(function (n) { v.addEventListener(n, caption); });
  }

  // Followers keep to the lead's wall-clock time, speed and pause state.
  setInterval(function () {
    const lead = player.lead;
    if (!lead) return;
    const w = lead.wall();
    if (w === null) return;
    player.followers.forEach(function (f) {
      const v = f.video;
      if (v.playbackRate !== lead.video.playbackRate) v.playbackRate = lead.video.playbackRate;
      if (!recordedAt(f.cam.id, w, 1000)) {
        if (!v.paused) v.pause();
        f.setLabel("not recorded at this moment");
        return;
      }
      if (f.sess && !f.sess.started && !f.sess.failed) return; // still loading
      const fw = f.wall();
      if (fw === null || Math.abs(fw - w) > 400 * Math.max(1, lead.video.playbackRate / 2)) {
        f.setLabel("");
        f.seek(w);
      }
      if (lead.video.paused && !v.paused) v.pause();
      if (!lead.video.paused && v.paused && f.sess && f.sess.started) v.play().catch(function () { /* muted: allowed */ });
    });
  }, 400);

  // ---------------------------------------------------------------------------------------
  // Faces over the playing video, and the list of the lead camera's faces.

  /** Draw, over each playing camera's video, its face events within ±1 s of the moment shown. */
  function drawFaces() {
    player.cams().forEach(function (e) {
      const v = e.video, tile = v.parentNode;
      let canvas = tile.querySelector("canvas[data-layer=faces]");
      const list = st.faces.get(e.cam.id) || [];
      if (!canvas) {
        if (!list.length || !window.pv.faceOverlay) return;
        canvas = el("canvas");
        canvas.dataset.layer = "faces";
        canvas.setAttribute("aria-hidden", "true");
        canvas.style.position = "absolute";
        canvas.style.pointerEvents = "none";
        tile.style.position = "relative";
        tile.appendChild(canvas);
      }
      canvas.style.left = v.offsetLeft + "px";
      canvas.style.top = v.offsetTop + "px";
      canvas.style.width = v.offsetWidth + "px";
      canvas.style.height = v.offsetHeight + "px";
      const w = e.wall();
      const shown = v.hidden || w === null ? [] : list.filter(function (f) { return Math.abs(f.t - w) <= 1000; });
      // The newest event of each face only (a person is in several events a second).
      const faces = [];
      shown.slice().reverse().forEach(function (f) {
        const twin = faces.some(function (g) {
          return f.ev.identity_id != null ? g.identity_id === f.ev.identity_id
            : g.identity_id == null && Math.abs(g.box.x - f.ev.box.x) < f.ev.box.w && Math.abs(g.box.y - f.ev.box.y) < f.ev.box.h;
        });
        if (!twin) faces.push(f.ev);
      });
      window.pv.faceOverlay.draw(canvas, window.pv.faceOverlay.videoRect(v), faces);
    });
  }

  let faceListFor = null;
  /** The lead camera's faces of the day under the player; choosing one plays it. */
  function faceList() {
    const box = $("face-events");
    if (!box) return;
    const lead = player.lead;
    const list = lead ? st.faces.get(lead.cam.id) || [] : [];
    const key = lead ? lead.cam.id + ":" + list.length + ":" + st.dayStart : null;
    if (key === faceListFor) return;
    faceListFor = key;
    box.hidden = list.length === 0;
    if (!list.length) return;
    const ul = $("face-event-list");
    ul.replaceChildren();
    // Runs of events of one face less than 10 s apart are one sighting.
    const runs = [];
    list.forEach(function (f) {
      const run = runs.find(function (r) { return r.id === f.ev.identity_id && f.t - r.last <= 10000; });
      if (run) { run.last = f.t; run.count++; } else runs.push({ id: f.ev.identity_id, first: f.t, last: f.t, count: 1, ev: f.ev });
    });
    $("face-events-title").textContent = "Faces seen by " + lead.cam.name + " (" + runs.length + ")";
    runs.slice(-100).reverse().forEach(function (r) {
      const li = el("li");
      const b = el("button", "btn btn-small rec-face-item" + (r.id == null ? " unknown" : ""));
      b.type = "button";
      b.dataset.at = new Date(r.first).toISOString();
      b.textContent = faceName(r.ev) + ", " + fmtHms.format(new Date(r.first));
      b.setAttribute("aria-label", "Play " + faceName(r.ev) + " at " + fmtHms.format(new Date(r.first)));
      b.addEventListener("click", function () {
        st.following = true;
        playAt(lead.cam, r.first, false);
      });
      li.appendChild(b);
      ul.appendChild(li);
    });
  }

  // The playhead and the clock follow playback; the view keeps the playhead in sight.
  setInterval(function () {
    if (st.faces.size) { drawFaces(); faceList(); }
    if (!player.lead) return;
    const w = player.wall();
    if (w === null) return;
    caption();
    if (st.following && !player.lead.video.paused && (w < st.view.start || w > st.view.end - span() * 0.05)) {
      setView(w - span() * 0.1, w - span() * 0.1 + span());
    } else {
      drawPlayhead();
    }
  }, 250);

  function step(seconds) {
    const w = player.wall();
    if (w === null) return;
    player.lead.seek(w + seconds * 1000);
    player.followers.forEach(function (f) { f.seek(w + seconds * 1000); });
  }

  function jumpEvent(dir) {
    const lead = player.lead;
    if (!lead) return;
    const w = lead.wall();
    const events = (st.motion.get(lead.cam.id) || []).slice().sort(function (a, b) { return a.s - b.s; });
    const target = dir < 0
      ? events.filter(function (e) { return e.s < w - 2000; }).pop()
      : events.find(function (e) { return e.s > w + 500; });
    if (!target) {
      toast(dir < 0 ? "No earlier motion on this day." : "No later motion on this day.", "info");
      return;
    }
    st.following = true;
    playAt(lead.cam, target.s, false);
  }

  function setSpeed(rate) {
    $("speed").value = String(rate);
    player.cams().forEach(function (e) {
      e.video.playbackRate = rate;
      if (e.sess) e.sess.rate = rate;
    });
  }

  function togglePlay() {
    const lead = player.lead;
    if (!lead) return;
    if (lead.video.paused) {
      player.cams().forEach(function (e) { e.video.play().catch(function () { /* nothing loaded */ }); });
    } else {
      player.cams().forEach(function (e) { e.video.pause(); });
    }
  }

  function mark(which) {
    const w = player.wall();
    if (w === null) return;
    if (which === "in") player.rangeFrom = w; else player.rangeTo = w;
    const from = player.rangeFrom, to = player.rangeTo;
    const text = $("range-text"), link = $("export-link");
    if (from !== null && to !== null && to > from) {
      if (to - from > DAY) {
        text.textContent = "A download covers at most 24 hours.";
        link.hidden = true;
        return;
      }
      text.textContent = "From " + fmtHms.format(new Date(from)) + " to " + fmtHms.format(new Date(to)) + ".";
      link.href = "/api/v1/cameras/" + player.lead.cam.id + "/export.mp4?from=" + encodeURIComponent(new Date(from).toISOString()) +
        "&to=" + encodeURIComponent(new Date(to).toISOString());
      link.hidden = false;
    } else {
      text.textContent = (from !== null ? "Start " + fmtHms.format(new Date(from)) + ". " : "") +
        (to !== null ? "End " + fmtHms.format(new Date(to)) + ". " : "") + "Mark a start before the end.";
      link.hidden = true;
    }
  }

  // ---------------------------------------------------------------------------------------
  // Page wiring.

  const params = new URLSearchParams(window.location.search);
  let jump = params.get("camera") && params.get("at")
    ? { camera: Number(params.get("camera")), at: Date.parse(params.get("at")) } : null;

  function buildSync() {
    const box = $("sync-cameras");
    const chosen = syncSelection();
    box.replaceChildren();
    st.cams.forEach(function (c) {
      const label = el("label", "rec-sync-item");
      const input = el("input");
      input.type = "checkbox";
      input.value = c.id;
      input.checked = chosen.indexOf(c.id) >= 0;
      input.addEventListener("change", function () {
        const n = syncSelection();
        if (n.length > 4) { input.checked = false; toast("Up to four cameras play together.", "info"); }
      });
      label.appendChild(input);
      label.appendChild(document.createTextNode(" " + c.name));
      box.appendChild(label);
    });
    $("sync-box").hidden = st.cams.length < 2;
  }

  async function show(value, keepView) {
    const [start, end] = dayBounds(value);
    const sameDay = start === st.dayStart;
    st.dayStart = start; st.dayEnd = end;
    try {
      await load();
    } catch (e) {
      toast(e.message, "error");
      return;
    }
    if (!sameDay || !keepView) {
      if (jump) {
        setView(jump.at - HOUR / 2, jump.at + HOUR / 2);
      } else {
        setView(start, end);
      }
    }
    if (!sameDay || st.rows.size !== st.cams.length) { buildRows(); buildSync(); }
    draw();
    if (jump) {
      const cam = st.cams.find(function (c) { return c.id === jump.camera; });
      const at = jump.at;
      jump = null;
      if (cam) {
        const row = st.rows.get(cam.id);
        if (row) row.track.scrollIntoView({ block: "center" });
        playAt(cam, at, false);
      }
    }
  }

  function keys(e) {
    const tag = (e.target && e.target.tagName) || "";
    if (/^(INPUT|SELECT|TEXTAREA|BUTTON)$/.test(tag) && e.key !== "Escape") {
      if (!(tag === "BUTTON" && e.key !== " " && e.key !== "Enter")) return;
    }
    if (e.ctrlKey || e.metaKey || e.altKey) return;
    const k = e.key;
    let done = true;
    if (k === "+" || k === "=") zoomStep(1);
    else if (k === "-" || k === "_") zoomStep(-1);
    else if (!player.lead) done = false;
    else if (k === " " || k === "k" || k === "K") togglePlay();
    else if (k === "ArrowLeft" && e.shiftKey) jumpEvent(-1);
    else if (k === "ArrowRight" && e.shiftKey) jumpEvent(1);
    else if (k === "ArrowLeft" || k === "j" || k === "J") step(-10);
    else if (k === "ArrowRight" || k === "l" || k === "L") step(10);
    else if (k === ">" || k === ".") setSpeed(SPEEDS[Math.min(SPEEDS.indexOf(Number($("speed").value)) + 1, SPEEDS.length - 1)]);
    else if (k === "<" || k === ",") setSpeed(SPEEDS[Math.max(SPEEDS.indexOf(Number($("speed").value)) - 1, 0)]);
    else if (k === "i" || k === "I") mark("in");
    else if (k === "o" || k === "O") mark("out");
    else done = false;
    if (done) e.preventDefault();
  }

  document.addEventListener("DOMContentLoaded", function () {
    const input = $("day");
    const today = new Date();
    const day = params.get("date");
    const iso = function (d) {
      return d.getFullYear() + "-" + String(d.getMonth() + 1).padStart(2, "0") + "-" + String(d.getDate()).padStart(2, "0");
    };
    input.value = day && /^\d{4}-\d{2}-\d{2}$/.test(day) ? day : iso(today);
    if (page.faces) document.querySelectorAll("[data-legend=faces]").forEach(function (n) { n.hidden = false; });
    $("tz-note").textContent = "Times are in your time zone, " + (zoneId ? zoneId.replace(/_/g, " ") : "local time") +
      (zoneShort() ? " (" + zoneShort() + ")" : "") + ".";
    $("day-form").addEventListener("submit", function (e) {
      e.preventDefault();
      show(input.value, false);
    });
    $("zoom-in").addEventListener("click", function () { zoomStep(1); });
    $("zoom-out").addEventListener("click", function () { zoomStep(-1); });
    $("zoom-day").addEventListener("click", function () { setView(st.dayStart, st.dayEnd); });
    $("zoom-now").addEventListener("click", function () {
      if (!isToday()) { input.value = iso(new Date()); show(input.value, false); return; }
      const len = Math.min(span(), HOUR);
      setView(Date.now() - len * 0.9, Date.now() + len * 0.1);
    });
    $("play").addEventListener("click", togglePlay);
    $("back").addEventListener("click", function () { step(-10); });
    $("fwd").addEventListener("click", function () { step(10); });
    $("prev-event").addEventListener("click", function () { jumpEvent(-1); });
    $("next-event").addEventListener("click", function () { jumpEvent(1); });
    $("speed").addEventListener("change", function () { setSpeed(Number($("speed").value) || 1); });
    $("sound").addEventListener("change", function () {
      if (player.lead) player.lead.video.muted = !$("sound").checked;
    });
    $("mark-in").addEventListener("click", function () { mark("in"); });
    $("mark-out").addEventListener("click", function () { mark("out"); });
    document.addEventListener("keydown", keys);
    window.addEventListener("resize", draw);
    show(input.value, false);
    // Today: new segments and the one being recorded appear as they are written.
    // (every 30 s; every 5 s while the player waits for the segment being recorded)
    setInterval(function () {
      if (!isToday() || document.hidden) return;
      const lead = player.lead, sess = lead && lead.sess;
      const waiting = sess && sess.started && !lead.nextSegment(sess);
      if (Date.now() - st.loadedAt >= (waiting ? 5000 : 30000)) show(input.value, true);
    }, 5000);
    setInterval(function () { if (isToday() && st.live.size) draw(); }, 2000);
  });

  // For tests and the curious: the timeline's window and the player's state.
  window.__pvRecordings = {
    view: function () { return Object.assign({}, st.view); },
    wall: function () { return player.wall(); },
    session: function (i) {
      const e = player.cams()[i || 0], s = e && e.sess;
      return s ? { started: s.started, startAt: s.startAt, t: e.video.currentTime, paused: e.video.paused,
        ready: e.video.readyState, label: e.label && e.label.textContent,
        entries: s.entries.map(function (x) { return [x.seg.id, x.mediaStart, x.mediaEnd]; }) } : null;
    },
    walls: function () { return player.cams().map(function (e) { return { camera: e.cam.id, wall: e.wall(), playing: !e.video.paused }; }); },
    mse: !!MS,
    faces: function (camera) { return (st.faces.get(camera) || []).map(function (f) { return f.ev; }); },
  };
})();
