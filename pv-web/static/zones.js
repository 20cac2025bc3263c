// PentaVision motion-zone editor: polygons drawn over a current picture of the camera, each a
// zone (with its sensitivity) or a mask; corners and shapes move by dragging (mouse, pen or
// touch, through pointer events); saved with PUT /api/v1/cameras/{id}/motion-zones. While the
// editor is open the camera's motion state is polled and the zones light up when it moves.
"use strict";

(function () {
  const NS = "http://www.w3.org/2000/svg";
  const W = 1000; // drawing units across; the height follows the picture's aspect ratio
  const HIT = 22; // how close (in drawing units) a click must be to close a shape
  let H = 562.5;

  let camera = null;
  let shapes = []; // { name, mask, sensitivity, points: [[x, y] in 0..1] }
  let selected = -1;
  let drawing = null; // the shape being drawn, not yet in `shapes`
  let drag = null; // { shape, corner (-1: the whole shape), start: [x, y], orig: points }
  let dirty = false;
  let pollTimer = null;
  let pictureTimer = null;

  const $ = function (id) { return document.getElementById(id); };
  const toast = function (m, l) { return window.pv.toast(m, l); };

  function el(name, attrs) {
    const e = document.createElementNS(NS, name);
    Object.keys(attrs || {}).forEach(function (k) { e.setAttribute(k, attrs[k]); });
    return e;
  }

  /** The pointer's position in 0..1 of the picture. */
  function at(event) {
    const r = $("zone-svg").getBoundingClientRect();
    const x = (event.clientX - r.left) / r.width;
    const y = (event.clientY - r.top) / r.height;
    return [Math.min(1, Math.max(0, x)), Math.min(1, Math.max(0, y))];
  }

  function px(p) { return [p[0] * W, p[1] * H]; }

  function pointsAttr(points) {
    return points.map(function (p) { const q = px(p); return q[0].toFixed(1) + "," + q[1].toFixed(1); }).join(" ");
  }

  function nextName(mask) {
    const base = mask ? "Mask " : "Zone ";
    let n = 1;
    while (shapes.some(function (s) { return s.name === base + n; })) n++;
    return base + n;
  }

  // ---- Drawing ----

  function render() {
    const svg = $("zone-svg");
    svg.setAttribute("viewBox", "0 0 " + W + " " + H);
    svg.replaceChildren();
    shapes.forEach(function (s, i) {
      const g = el("g", { "class": "zone-shape" + (s.mask ? " mask" : "") + (i === selected ? " selected" : ""), "data-index": i });
      const poly = el("polygon", { points: pointsAttr(s.points), "data-index": i });
      const title = el("title");
      title.textContent = s.name + (s.mask ? " (mask)" : " (sensitivity " + Math.round(s.sensitivity * 100) + " %)");
      poly.appendChild(title);
      g.appendChild(poly);
      const c = centroid(s.points);
      const label = el("text", { x: c[0] * W, y: c[1] * H, "class": "zone-label" });
      label.textContent = s.name;
      g.appendChild(label);
      if (i === selected) {
        s.points.forEach(function (p, k) {
          const q = px(p);
          g.appendChild(el("circle", { cx: q[0], cy: q[1], r: 11, "class": "zone-corner", "data-index": i, "data-corner": k }));
        });
      }
      svg.appendChild(g);
    });
    if (drawing) {
      const g = el("g", { "class": "zone-shape drawing" + (drawing.mask ? " mask" : "") });
      g.appendChild(el("polyline", { points: pointsAttr(drawing.points) }));
      drawing.points.forEach(function (p, k) {
        const q = px(p);
        g.appendChild(el("circle", { cx: q[0], cy: q[1], r: k === 0 ? 14 : 9, "class": "zone-corner" + (k === 0 ? " first" : "") }));
      });
      svg.appendChild(g);
    }
    $("zone-svg").classList.toggle("is-drawing", !!drawing);
    $("zone-status").textContent = !drawing ? ""
      : drawing.points.length < 3
        ? "Drawing " + drawing.name + ": click or tap its corners on the picture (" + drawing.points.length + " so far)."
        : "Drawing " + drawing.name + ": click the first corner or Finish shape to close it.";
    document.querySelector("[data-zone=finish]").disabled = !drawing || drawing.points.length < 3;
    document.querySelector("[data-zone=delete]").disabled = selected < 0 && !drawing;
    renderProps();
    renderList();
  }

  function centroid(points) {
    const n = points.length || 1;
    return [points.reduce(function (a, p) { return a + p[0]; }, 0) / n,
      points.reduce(function (a, p) { return a + p[1]; }, 0) / n];
  }

  function renderProps() {
    const s = shapes[selected];
    $("zone-props").hidden = !s;
    if (!s) return;
    if (document.activeElement !== $("zone-name")) $("zone-name").value = s.name;
    $("zone-kind").value = s.mask ? "mask" : "zone";
    $("zone-sens").value = s.sensitivity;
    $("zone-sens-out").textContent = Math.round(s.sensitivity * 100) + " %";
    $("zone-sens-box").hidden = s.mask;
    $("zone-sens-label").hidden = s.mask;
  }

  function renderList() {
    const list = $("zone-list");
    list.replaceChildren();
    if (shapes.length === 0) {
      const li = document.createElement("li");
      li.className = "hint";
      li.textContent = "No zones: motion anywhere in the picture counts.";
      list.appendChild(li);
      return;
    }
    shapes.forEach(function (s, i) {
      const li = document.createElement("li");
      const b = document.createElement("button");
      b.type = "button";
      b.className = "btn btn-small" + (i === selected ? " active" : "");
      b.setAttribute("aria-pressed", i === selected ? "true" : "false");
      b.textContent = s.name + (s.mask ? " — mask" : " — zone, sensitivity " + Math.round(s.sensitivity * 100) + " %");
      b.addEventListener("click", function () { selected = i; drawing = null; render(); });
      li.appendChild(b);
      list.appendChild(li);
    });
  }

  function startDrawing(mask) {
    drawing = { name: nextName(mask), mask: mask, sensitivity: 0.5, points: [] };
    selected = -1;
    render();
  }

  function finishDrawing() {
    if (!drawing) return;
    if (drawing.points.length < 3) {
      toast("A shape needs at least three corners.", "error");
      return;
    }
    shapes.push(drawing);
    selected = shapes.length - 1;
    drawing = null;
    dirty = true;
    render();
  }

  function deleteSelected() {
    if (drawing) { drawing = null; render(); return; }
    if (selected < 0) return;
    shapes.splice(selected, 1);
    selected = -1;
    dirty = true;
    render();
  }

  // ---- Pointer handling (mouse, pen and touch alike) ----

  function onDown(event) {
    if (event.button !== undefined && event.button !== 0) return;
    event.preventDefault();
    const p = at(event);
    if (drawing) {
      const first = drawing.points[0];
      if (first && drawing.points.length >= 3 &&
        Math.hypot((first[0] - p[0]) * W, (first[1] - p[1]) * H) <= HIT) {
        finishDrawing();
        return;
      }
      drawing.points.push(p);
      render();
      return;
    }
    const target = event.target;
    const index = target.getAttribute && target.getAttribute("data-index");
    if (index === null || index === undefined) {
      selected = -1;
      render();
      return;
    }
    const i = Number(index);
    const corner = target.hasAttribute("data-corner") ? Number(target.getAttribute("data-corner")) : -1;
    selected = i;
    drag = { shape: i, corner: corner, start: p, orig: shapes[i].points.map(function (q) { return q.slice(); }), moved: false };
    $("zone-svg").setPointerCapture(event.pointerId);
    render();
  }

  function onMove(event) {
    if (!drag) return;
    event.preventDefault();
    const p = at(event);
    const s = shapes[drag.shape];
    if (!s) return;
    if (drag.corner >= 0) {
      s.points[drag.corner] = p;
    } else {
      // Move the whole shape, kept inside the picture.
      let dx = p[0] - drag.start[0];
      let dy = p[1] - drag.start[1];
      drag.orig.forEach(function (q) {
        dx = Math.min(1 - q[0], Math.max(-q[0], dx));
        dy = Math.min(1 - q[1], Math.max(-q[1], dy));
      });
      s.points = drag.orig.map(function (q) { return [q[0] + dx, q[1] + dy]; });
    }
    drag.moved = true;
    dirty = true;
    render();
  }

  function onUp(event) {
    if (!drag) return;
    try { $("zone-svg").releasePointerCapture(event.pointerId); } catch (_) { /* not captured */ }
    drag = null;
  }

  function onKey(event) {
    if (event.key === "Escape" && drawing) { drawing = null; render(); }
    if (event.key === "Enter" && drawing) { event.preventDefault(); finishDrawing(); }
    if ((event.key === "Delete" || event.key === "Backspace") && selected >= 0 &&
      !/^(INPUT|SELECT|TEXTAREA)$/.test(document.activeElement.tagName)) {
      event.preventDefault();
      deleteSelected();
    }
  }

  // ---- Picture, motion state, load and save ----

  function loadPicture() {
    if (!camera) return;
    const img = $("zone-picture");
    const url = "/api/v1/cameras/" + camera.id + "/snapshot.jpg?width=960&t=" + Date.now();
    const probe = new Image();
    probe.onload = function () {
      img.src = probe.src;
      img.hidden = false;
      $("zone-nopic").hidden = true;
      if (probe.naturalWidth > 0) {
        const h = W * probe.naturalHeight / probe.naturalWidth;
        if (Math.abs(h - H) > 0.5) {
          H = h;
          $("zone-stage").style.aspectRatio = probe.naturalWidth + " / " + probe.naturalHeight;
          render();
        }
      }
    };
    probe.onerror = function () {
      if (!img.src) { img.hidden = true; $("zone-nopic").hidden = false; }
    };
    probe.src = url;
  }

  async function pollMotion() {
    if (!camera) return;
    try {
      const c = await window.pv.api("GET", "/api/v1/cameras/" + camera.id);
      const moving = !!(c.status && c.status.motion);
      const badge = $("zone-motion");
      badge.textContent = moving ? "Motion now" : "No motion";
      badge.className = "badge zone-motion " + (moving ? "warn" : "off");
      $("zone-stage").classList.toggle("motion", moving);
    } catch (_) { /* the next poll tries again */ }
  }

  async function load() {
    const zones = await window.pv.api("GET", "/api/v1/cameras/" + camera.id + "/motion-zones");
    shapes = zones.map(function (z) {
      return {
        name: z.name, mask: !!z.mask,
        sensitivity: z.sensitivity == null ? 0.5 : z.sensitivity,
        points: z.polygon.map(function (p) { return [p[0], p[1]]; }),
      };
    });
    selected = -1;
    drawing = null;
    dirty = false;
    render();
  }

  async function save() {
    if (drawing) {
      if (drawing.points.length >= 3) finishDrawing(); else drawing = null;
    }
    const bad = shapes.find(function (s) { return !s.name.trim(); });
    if (bad) {
      toast("Every zone needs a name.", "error");
      return;
    }
    const round = function (v) { return Math.round(Math.min(1, Math.max(0, v)) * 10000) / 10000; };
    const body = {
      zones: shapes.map(function (s) {
        const z = { name: s.name.trim(), polygon: s.points.map(function (p) { return [round(p[0]), round(p[1])]; }), mask: s.mask };
        if (!s.mask) z.sensitivity = round(s.sensitivity);
        return z;
      }),
    };
    try {
      await window.pv.api("PUT", "/api/v1/cameras/" + camera.id + "/motion-zones", body);
      dirty = false;
      toast(body.zones.length === 0
        ? "Motion zones of " + camera.name + " removed: the whole picture is watched."
        : "Motion zones of " + camera.name + " saved; motion detection uses them now.", "info");
      await load();
    } catch (e) { toast(e.message, "error"); }
  }

  /** Open the editor for camera `c` (replacing any other camera's unsaved shapes). */
  async function open(c) {
    camera = c;
    H = c.width && c.height ? W * c.height / c.width : 562.5;
    $("zone-stage").style.aspectRatio = (c.width && c.height) ? c.width + " / " + c.height : "16 / 9";
    $("zone-picture").removeAttribute("src");
    loadPicture();
    try { await load(); } catch (e) { toast(e.message, "error"); }
    pollMotion();
    clearInterval(pollTimer);
    clearInterval(pictureTimer);
    pollTimer = setInterval(pollMotion, 2000);
    pictureTimer = setInterval(loadPicture, 10000);
  }

  /** Stop polling (the settings were closed). */
  function close() {
    clearInterval(pollTimer);
    clearInterval(pictureTimer);
    camera = null;
  }

  document.addEventListener("DOMContentLoaded", function () {
    const svg = $("zone-svg");
    if (!svg) return;
    svg.addEventListener("pointerdown", onDown);
    svg.addEventListener("pointermove", onMove);
    svg.addEventListener("pointerup", onUp);
    svg.addEventListener("pointercancel", onUp);
    document.addEventListener("keydown", function (e) { if (camera) onKey(e); });
    const on = function (name, fn) {
      document.querySelector("[data-zone=" + name + "]").addEventListener("click", fn);
    };
    on("new-zone", function () { startDrawing(false); });
    on("new-mask", function () { startDrawing(true); });
    on("finish", finishDrawing);
    on("delete", deleteSelected);
    on("refresh", loadPicture);
    on("save", save);
    $("zone-name").addEventListener("input", function (e) {
      if (shapes[selected]) { shapes[selected].name = e.target.value; dirty = true; renderList(); }
    });
    $("zone-name").addEventListener("change", render);
    $("zone-kind").addEventListener("change", function (e) {
      if (shapes[selected]) { shapes[selected].mask = e.target.value === "mask"; dirty = true; render(); }
    });
    $("zone-sens").addEventListener("input", function (e) {
      if (shapes[selected]) { shapes[selected].sensitivity = Number(e.target.value); dirty = true; renderProps(); renderList(); }
    });
    window.addEventListener("beforeunload", function (e) {
      if (dirty && camera) { e.preventDefault(); e.returnValue = ""; }
    });
    render();
  });

  window.pvZones = { open: open, close: close, isDirty: function () { return dirty; } };
})();
