// PentaVision live dashboard (/live): one tile per enabled camera with its live picture (the
// small stream), status, a recording dot, a motion flag and a link to the camera's own page.
// Layout 1, 2×2, 3×3 or 4×4 (remembered in this browser), pages when there are more cameras;
// tiles are focusable, arrow keys move between them and Enter opens one.
"use strict";

(function () {
  const api = window.pv.api;
  const toast = function (m, l) { return window.pv.toast(m, l); };
  const LAYOUT_KEY = "pv.live.layout";
  const REFRESH_MS = 10000;
  const OFFSCREEN_STOP_MS = 10000;

  let cameras = [];
  let page = 0;
  const tiles = new Map(); // camera id → { el, player, cam }
  let observer = null;

  const STATUS = {
    streaming: ["Streaming", "ok"],
    reconnecting: ["Reconnecting", "warn"],
    new: ["Starting", "warn"],
    failed: ["Failed", "bad"],
    disabled: ["Off", "off"],
  };

  function layout() {
    const n = parseInt(document.getElementById("grid-size").value, 10);
    return [1, 2, 3, 4].includes(n) ? n : 2;
  }

  function readLayout() {
    try { return window.localStorage.getItem(LAYOUT_KEY); } catch (_) { return null; }
  }

  function saveLayout(n) {
    try { window.localStorage.setItem(LAYOUT_KEY, String(n)); } catch (_) { /* private mode */ }
  }

  function isRecording(cam) {
    return cam.status.state === "streaming" && cam.recording_mode === "continuous";
  }

  function hasMotion(cam) {
    return Boolean(cam.motion || (cam.status && cam.status.motion));
  }

  function el(tag, cls, text) {
    const e = document.createElement(tag);
    if (cls) e.className = cls;
    if (text != null) e.textContent = text;
    return e;
  }

  function makeTile(cam) {
    const tile = el("article", "live-tile");
    tile.tabIndex = 0;
    tile.setAttribute("role", "listitem");
    tile.dataset.camera = cam.id;
    tile.dataset.href = "/cameras/" + cam.id + "/live";
    const screen = el("div");
    tile.appendChild(screen);
    const bar = el("div", "tile-bar");
    const rec = el("span", "rec-dot");
    rec.dataset.field = "recording";
    rec.title = "Recording";
    rec.setAttribute("role", "img");
    rec.setAttribute("aria-label", "Recording");
    bar.appendChild(rec);
    const name = el("span", "tile-name");
    name.dataset.field = "name";
    bar.appendChild(name);
    const motion = el("span", "motion-flag", "Motion");
    motion.dataset.motion = "";
    motion.hidden = true;
    bar.appendChild(motion);
    const status = el("span", "badge");
    status.dataset.field = "status";
    bar.appendChild(status);
    const open = el("a", "btn btn-small", "Start session");
    open.href = tile.dataset.href;
    open.tabIndex = -1; // the tile itself takes focus; Enter opens this
    bar.appendChild(open);
    tile.appendChild(bar);
    const player = new window.pv.Player(screen, {
      camera: cam.id,
      stream: cam.sub_url ? "sub" : "main",
      name: cam.name,
    });
    const entry = { el: tile, player: player, cam: cam, offscreen: null };
    if (window.pv.page.faces && window.pv.faceOverlay) entry.faces = window.pv.faceOverlay.watch(player, cam.id);
    update(entry, cam);
    return entry;
  }

  function update(entry, cam) {
    entry.cam = cam;
    const t = entry.el;
    t.querySelector("[data-field=name]").textContent = cam.name;
    const [words, cls] = STATUS[cam.status.state] || [cam.status.state, "warn"];
    const status = t.querySelector("[data-field=status]");
    status.className = "badge " + cls;
    status.textContent = words;
    status.title = cam.status.reason || "";
    const recording = isRecording(cam);
    t.querySelector("[data-field=recording]").hidden = !recording;
    t.querySelector("[data-motion]").hidden = !hasMotion(cam);
    t.setAttribute("aria-label", cam.name + ", " + words.toLowerCase() +
      (recording ? ", recording" : "") + (hasMotion(cam) ? ", motion" : ""));
    entry.player.name = cam.name;
  }

  function removeTile(id) {
    const entry = tiles.get(id);
    if (!entry) return;
    if (observer) observer.unobserve(entry.el);
    if (entry.offscreen) clearTimeout(entry.offscreen);
    if (entry.faces) entry.faces.close();
    entry.player.destroy();
    entry.el.remove();
    tiles.delete(id);
  }

  function render() {
    const n = layout();
    const per = n * n;
    const pages = Math.max(1, Math.ceil(cameras.length / per));
    page = Math.min(page, pages - 1);
    const shown = cameras.slice(page * per, page * per + per);
    const grid = document.getElementById("live-grid");
    grid.className = "live-grid cols-" + n;
    const keep = new Set(shown.map(function (c) { return c.id; }));
    Array.from(tiles.keys()).forEach(function (id) { if (!keep.has(id)) removeTile(id); });
    shown.forEach(function (cam, i) {
      let entry = tiles.get(cam.id);
      if (entry) {
        update(entry, cam);
      } else {
        entry = makeTile(cam);
        tiles.set(cam.id, entry);
        if (observer) observer.observe(entry.el);
      }
      // Keep the camera order, moving a tile only when it is out of place (a move would take
      // the keyboard focus away).
      if (grid.children[i] !== entry.el) grid.insertBefore(entry.el, grid.children[i] || null);
    });
    document.getElementById("live-empty").hidden = cameras.length > 0;
    const pager = document.getElementById("live-pager");
    pager.hidden = pages <= 1;
    document.getElementById("page-label").textContent = "Page " + (page + 1) + " of " + pages;
    pager.querySelector("[data-action=page-prev]").disabled = page === 0;
    pager.querySelector("[data-action=page-next]").disabled = page >= pages - 1;
  }

  async function load() {
    try {
      const all = await api("GET", "/api/v1/cameras");
      cameras = all.filter(function (c) { return c.enabled; });
      document.getElementById("live-loading").hidden = true;
      render();
    } catch (e) {
      document.getElementById("live-loading").hidden = true;
      toast(e.message, "error");
    }
  }

  /** The number of columns the grid shows now (one on a phone, whatever the layout). */
  function columns(grid) {
    const cols = getComputedStyle(grid).gridTemplateColumns.split(" ").filter(Boolean).length;
    return Math.max(1, cols);
  }

  function onKey(event) {
    const tile = event.target;
    if (!tile.classList || !tile.classList.contains("live-tile")) return;
    if (event.key === "Enter") {
      event.preventDefault();
      window.location.assign(tile.dataset.href);
      return;
    }
    const grid = document.getElementById("live-grid");
    const all = Array.from(grid.querySelectorAll(".live-tile"));
    const i = all.indexOf(tile);
    const cols = columns(grid);
    const step = { ArrowLeft: -1, ArrowRight: 1, ArrowUp: -cols, ArrowDown: cols, Home: -i, End: all.length - 1 - i }[event.key];
    if (step === undefined) return;
    event.preventDefault();
    const next = all[i + step];
    if (next) next.focus();
  }

  /** Tiles scrolled out of sight for a while stop streaming; back in sight they start again. */
  function watchVisibility() {
    if (!("IntersectionObserver" in window)) return;
    observer = new IntersectionObserver(function (entries) {
      entries.forEach(function (e) {
        const entry = tiles.get(Number(e.target.dataset.camera));
        if (!entry) return;
        if (e.isIntersecting) {
          if (entry.offscreen) { clearTimeout(entry.offscreen); entry.offscreen = null; }
          if (entry.player.state === "stopped" && entry.stoppedOffscreen) {
            entry.stoppedOffscreen = false;
            entry.player.start();
          }
        } else if (!entry.offscreen) {
          entry.offscreen = setTimeout(function () {
            entry.offscreen = null;
            if (entry.player.state !== "stopped") {
              entry.player.stop();
              entry.stoppedOffscreen = true;
            }
          }, OFFSCREEN_STOP_MS);
        }
      });
    });
  }

  document.addEventListener("DOMContentLoaded", function () {
    const select = document.getElementById("grid-size");
    const saved = readLayout();
    if (saved && select.querySelector("option[value='" + saved + "']")) select.value = saved;
    else select.value = "2";
    select.addEventListener("change", function () {
      saveLayout(layout());
      page = 0;
      render();
    });
    document.getElementById("layout-form").addEventListener("submit", function (e) { e.preventDefault(); });
    document.querySelector("[data-action=page-prev]").addEventListener("click", function () { page--; render(); });
    document.querySelector("[data-action=page-next]").addEventListener("click", function () { page++; render(); });
    document.getElementById("live-grid").addEventListener("keydown", onKey);
    watchVisibility();
    load();
    setInterval(load, REFRESH_MS);
  });
})();
