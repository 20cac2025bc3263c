// PentaVision live player: `new window.pv.Player(container, { camera, stream, name })`.
//
// Plays a camera's live stream in `container` (a muted, inline <video>, an empty overlay canvas
// for future face boxes, a small badge with protocol, delay and bit rate). It tries WebRTC first
// (WHEP: POST the SDP offer to /api/v1/cameras/{id}/whep, DELETE the session when done) and falls
// back by itself to fragmented MP4 over a WebSocket into Media Source Extensions when WebRTC does
// not connect within 4 s, fails, or drops later. It stops when the page has been hidden for 30 s
// (and starts again when it is shown), and on pagehide.
//
// For tests and tools: `player.protocol` ("WebRTC" | "MSE" | null), `player.stats()` →
// { protocol, bytesReceived, latencyMs, bitrateKbps }, `container.pvPlayer`, and the container's
// `data-protocol` and `data-state` ("connecting" | "playing" | "failed" | "stopped").
"use strict";

(function () {
  const pv = window.pv = window.pv || {};

  const ICE_CONNECT_MS = 4000;      // WebRTC must connect within this, else MSE
  const FIRST_FRAME_MS = 10000;     // … and show a picture within this after the answer
  const DISCONNECT_GRACE_MS = 3000; // a WebRTC "disconnected" lasting longer falls back
  const GATHER_MS = 1000;           // wait at most this long for ICE candidates before the offer
  const WHEP_TIMEOUT_MS = 10000;
  const HIDDEN_STOP_MS = 30000;
  const MSE_QUEUE_MAX_BYTES = 2 * 1024 * 1024;
  const MSE_KEEP_SECONDS = 3;
  const RETRY_MAX_MS = 30000;

  // ---- CSRF tokens (the page's, else GET /api/v1/auth/csrf), as static/app.js does ----

  const tokens = Object.assign({}, (pv.page && pv.page.csrf) || {});

  /** The route a token is bound to: the path under /api/v1, numeric segments as {id}. */
  function routeOf(url) {
    const path = new URL(url, window.location.origin).pathname.replace(/^\/api\/v1/, "");
    return "/" + path.split("/").filter(Boolean).map(function (s) { return /^\d+$/.test(s) ? "{id}" : s; }).join("/");
  }

  function freshToken(route) {
    const have = tokens[route];
    const expiry = have ? Number(have.split(".")[1]) || 0 : 0;
    return expiry - Date.now() / 1000 > 30 ? have : null;
  }

  async function csrfToken(url) {
    const route = routeOf(url);
    const have = freshToken(route);
    if (have) return have;
    const r = await fetch("/api/v1/auth/csrf?route=" + encodeURIComponent(route), {
      headers: { Accept: "application/json" }, credentials: "same-origin",
    });
    if (!r.ok) throw new Error(await problemDetail(r));
    tokens[route] = (await r.json()).token;
    return tokens[route];
  }

  /** The human `detail` of a problem+json response, else a generic sentence. */
  async function problemDetail(response) {
    try {
      const text = await response.text();
      try {
        const body = JSON.parse(text);
        if (body && body.detail) return String(body.detail);
      } catch (_) { /* not JSON */ }
    } catch (_) { /* no body */ }
    return "the server answered with status " + response.status;
  }

  /** `Link: <stun:host:port>; rel="ice-server"; username=…; credential=…` → RTCIceServer[]. */
  function parseIceServers(link) {
    const out = [];
    if (!link) return out;
    const re = /<([^>]+)>((?:\s*;\s*[^;,]+)*)/g;
    let m;
    while ((m = re.exec(link)) !== null) {
      const params = {};
      m[2].split(";").forEach(function (p) {
        const kv = p.trim().match(/^([a-z-]+)\s*=\s*"?([^"]*)"?$/i);
        if (kv) params[kv[1].toLowerCase()] = kv[2];
      });
      if (params.rel !== "ice-server") continue;
      const server = { urls: m[1] };
      if (params.username) server.username = params.username;
      if (params.credential) server.credential = params.credential;
      out.push(server);
    }
    return out;
  }

  function mediaSourceClass() {
    return window.ManagedMediaSource || window.MediaSource || null;
  }

  function formatRate(kbps) {
    if (kbps == null) return "";
    return kbps >= 1000 ? (kbps / 1000).toFixed(1) + " Mb/s" : Math.round(kbps) + " kb/s";
  }

  function el(tag, cls, text) {
    const e = document.createElement(tag);
    if (cls) e.className = cls;
    if (text != null) e.textContent = text;
    return e;
  }

  const players = new Set();

  /**
   * A live player in `container`. Options: `camera` (id), `stream` ("sub" | "main"), `name`
   * (the camera's name, for messages), `autostart` (default true).
   */
  function Player(container, options) {
    this.container = container;
    this.camera = options.camera;
    this.stream = options.stream === "main" ? "main" : "sub";
    this.name = options.name || "Camera " + options.camera;
    // The camera sends sound (AAC): it plays over Media Source and HLS, not over WebRTC.
    this.cameraHasSound = Boolean(options.sound);
    this.protocol = null;
    this.state = "stopped";
    this.gen = 0;
    this.timers = new Set();
    this.lastError = null;
    this.toasted = new Set();
    this.retryMs = 2000;
    this.resetCounters();

    container.classList.add("player");
    container.pvPlayer = this;
    container.replaceChildren();
    const video = this.video = el("video");
    video.muted = true;
    video.autoplay = true;
    video.playsInline = true;
    video.setAttribute("muted", "");
    video.setAttribute("autoplay", "");
    video.setAttribute("playsinline", "");
    video.disablePictureInPicture = true;
    video.setAttribute("aria-label", "Live picture of " + this.name);
    container.appendChild(video);
    const faces = el("canvas", "overlay");
    faces.dataset.layer = "faces";
    faces.setAttribute("aria-hidden", "true");
    container.appendChild(faces);
    this.badge = el("span", "player-badge");
    this.badge.hidden = true;
    container.appendChild(this.badge);
    this.message = el("div", "player-message");
    this.messageText = el("span");
    this.message.appendChild(this.messageText);
    this.retryButton = el("button", "btn btn-small", "Try again");
    this.retryButton.type = "button";
    this.retryButton.hidden = true;
    this.retryButton.addEventListener("click", () => { this.start(); });
    this.message.appendChild(this.retryButton);
    container.appendChild(this.message);

    this.onPlaying = () => {
      if (this.state === "connecting" && (this.pc || this.ws)) {
        this.retryMs = 2000;
        this.setState("playing");
      }
    };
    video.addEventListener("playing", this.onPlaying);
    this.onVideoError = () => {
      // A Media Source the page may not load (e.g. a security policy without blob: media) or
      // a stream the decoder rejects.
      if (this.protocol === "MSE" && this.objectUrl && this.state !== "stopped") {
        this.fail("This browser refused to play the live stream. Trying again…", true);
      }
    };
    video.addEventListener("error", this.onVideoError);

    this.onVisibility = () => {
      if (document.visibilityState === "hidden") {
        if (this.state !== "stopped" && !this.hiddenTimer) {
          this.hiddenTimer = setTimeout(() => {
            this.hiddenTimer = null;
            this.stop();
            this.stoppedWhileHidden = true;
          }, HIDDEN_STOP_MS);
        }
      } else {
        if (this.hiddenTimer) { clearTimeout(this.hiddenTimer); this.hiddenTimer = null; }
        if (this.stoppedWhileHidden) { this.stoppedWhileHidden = false; this.start(); }
      }
    };
    this.onPageHide = () => {
      if (this.state !== "stopped") { this.stop(); this.stoppedByPageHide = true; }
    };
    this.onPageShow = (e) => {
      if (e.persisted && this.stoppedByPageHide) { this.stoppedByPageHide = false; this.start(); }
    };
    document.addEventListener("visibilitychange", this.onVisibility);
    window.addEventListener("pagehide", this.onPageHide);
    window.addEventListener("pageshow", this.onPageShow);

    this.statsTimer = setInterval(() => { this.sample(); }, 1000);
    this.chaseTimer = setInterval(() => { this.chase(); }, 250);
    players.add(this);
    this.setState("stopped");
    if (options.autostart !== false) this.start();
  }

  /** What this browser can play: { webrtc, mse }. */
  Player.supports = function () {
    const probe = document.createElement("video");
    return {
      webrtc: typeof window.RTCPeerConnection === "function",
      mse: mediaSourceClass() !== null,
      // Native HLS (Safari on iPhones before iOS 17.1, which have no Media Source).
      hls: probe.canPlayType("application/vnd.apple.mpegurl") !== "",
    };
  };

  Player.prototype.resetCounters = function () {
    this.bytes = 0;
    this.latencyMs = null;
    this.bitrateKbps = null;
    this.lastSample = null;
  };

  /** The numbers of the badge: { protocol, bytesReceived, latencyMs, bitrateKbps }. */
  Player.prototype.stats = function () {
    return {
      protocol: this.protocol,
      bytesReceived: this.bytes,
      latencyMs: this.latencyMs,
      bitrateKbps: this.bitrateKbps,
    };
  };

  Player.prototype.setState = function (state, text) {
    this.state = state;
    this.container.dataset.state = state;
    if (this.protocol) this.container.dataset.protocol = this.protocol;
    else delete this.container.dataset.protocol;
    const words = text || (state === "connecting" ? "Connecting…" : state === "stopped" ? "Paused" : "");
    this.messageText.textContent = words;
    this.message.hidden = state === "playing";
    this.retryButton.hidden = state !== "failed" && state !== "stopped";
    this.badge.hidden = !this.protocol || state === "stopped" || state === "failed";
    this.updateBadge();
  };

  Player.prototype.updateBadge = function () {
    if (!this.protocol) return;
    const parts = [this.protocol];
    if (this.state === "playing") {
      if (this.latencyMs != null) parts.push(Math.round(this.latencyMs) + " ms");
      if (this.bitrateKbps != null) parts.push(formatRate(this.bitrateKbps));
    }
    if (this.cameraHasSound && this.protocol === "WebRTC") parts.push("no sound");
    this.badge.textContent = parts.join(" · ");
    let title = this.protocol === "WebRTC" ? "Live over WebRTC"
      : this.protocol === "HLS" ? "Live over HLS (a few seconds behind)" : "Live over a WebSocket (Media Source)";
    if (this.latencyMs != null) title += "; delay about " + Math.round(this.latencyMs) + " ms";
    if (this.cameraHasSound && this.protocol === "WebRTC") {
      title += "; no sound in this view (the camera's sound plays over Media Source)";
    }
    if (this.bitrateKbps != null) title += "; " + formatRate(this.bitrateKbps);
    if (this.iceServers && this.iceServers.length) {
      title += "; the server offers " + this.iceServers.map(function (s) { return s.urls; }).join(", ");
    }
    this.badge.title = title;
  };

  Player.prototype.later = function (ms, fn) {
    const t = setTimeout(() => { this.timers.delete(t); fn(); }, ms);
    this.timers.add(t);
    return t;
  };

  Player.prototype.clearTimers = function () {
    this.timers.forEach(function (t) { clearTimeout(t); });
    this.timers.clear();
  };

  /** Start (or restart) playing: WebRTC first, MSE when WebRTC is not available. */
  Player.prototype.start = function () {
    this.teardown();
    const gen = ++this.gen;
    this.stoppedWhileHidden = false;
    this.lastError = null;
    const can = Player.supports();
    if (can.webrtc) {
      this.startWebRtc(gen);
    } else if (can.mse) {
      this.startMse(gen);
    } else if (can.hls) {
      this.startHls(gen);
    } else {
      this.protocol = null;
      this.fail("This browser can play live video neither over WebRTC nor with Media Source; " +
        "try a current Chrome, Edge, Firefox or Safari.", false);
    }
  };

  /** Stop playing and release the stream (the WHEP session is deleted, the socket closed). */
  Player.prototype.stop = function () {
    this.gen++;
    this.teardown();
    this.setState("stopped");
  };

  /** Stop for good: also forget the page listeners. */
  Player.prototype.destroy = function () {
    this.stop();
    clearInterval(this.statsTimer);
    clearInterval(this.chaseTimer);
    if (this.hiddenTimer) clearTimeout(this.hiddenTimer);
    this.video.removeEventListener("playing", this.onPlaying);
    this.video.removeEventListener("error", this.onVideoError);
    document.removeEventListener("visibilitychange", this.onVisibility);
    window.removeEventListener("pagehide", this.onPageHide);
    window.removeEventListener("pageshow", this.onPageShow);
    players.delete(this);
    if (this.container.pvPlayer === this) delete this.container.pvPlayer;
  };

  Player.prototype.fail = function (detail, retry) {
    this.teardown();
    this.lastError = detail;
    this.setState("failed", detail);
    this.retryButton.textContent = retry ? "Try now" : "Try again";
    if (!this.toasted.has(detail) && window.pv.toast) {
      this.toasted.add(detail);
      window.pv.toast(this.name + ": " + detail, "error");
    }
    if (retry) {
      const gen = this.gen;
      const wait = this.retryMs;
      this.retryMs = Math.min(this.retryMs * 2, RETRY_MAX_MS);
      this.later(wait, () => { if (gen === this.gen && this.state === "failed") this.start(); });
    }
  };

  /** Release everything of the current attempt (both protocols). */
  Player.prototype.teardown = function () {
    this.clearTimers();
    this.teardownWebRtc();
    this.teardownMse();
    const v = this.video;
    try { v.pause(); } catch (_) { /* nothing playing */ }
    v.playbackRate = 1;
    if (v.srcObject) v.srcObject = null;
    if (v.hasAttribute("src")) {
      v.removeAttribute("src");
      v.load();
    }
    this.resetCounters();
  };

  // ---- WebRTC (WHEP) ----

  Player.prototype.whepUrl = function () {
    return "/api/v1/cameras/" + encodeURIComponent(this.camera) + "/whep?stream=" + this.stream;
  };

  // The server's STUN/TURN servers, asked for once per page (none configured: an empty list).
  let iceServers = null;
  function loadIceServers() {
    if (!iceServers) {
      iceServers = fetch("/api/v1/live/ice-servers", { headers: { Accept: "application/json" } })
        .then(function (r) { return r.ok ? r.json() : []; })
        .then(function (list) {
          return list.map(function (s) {
            const server = { urls: s.urls };
            if (s.username) server.username = s.username;
            if (s.credential) server.credential = s.credential;
            return server;
          });
        })
        .catch(function () { return []; });
    }
    return iceServers;
  }

  Player.prototype.startWebRtc = async function (gen) {
    this.protocol = "WebRTC";
    this.setState("connecting");
    this.lastSample = { t: performance.now(), bytes: 0, jbDelay: null, jbCount: null };
    const servers = await loadIceServers();
    if (gen !== this.gen) return;
    const pc = this.pc = new RTCPeerConnection({ bundlePolicy: "max-bundle", iceServers: servers });
    this.lateCandidates = [];
    this.offerSent = false;
    const media = this.mediaStream = new MediaStream();
    pc.addTransceiver("video", { direction: "recvonly" });
    pc.addTransceiver("audio", { direction: "recvonly" });
    pc.ontrack = (e) => {
      if (gen !== this.gen) return;
      media.addTrack(e.track);
      if (this.video.srcObject !== media) this.video.srcObject = media;
      this.video.play().catch(function () { /* muted autoplay; the next frame retries */ });
    };
    pc.onicecandidate = (e) => {
      if (gen !== this.gen || !this.offerSent) return;
      this.lateCandidates.push(e.candidate); // null: end of candidates
      this.flushCandidates(gen);
    };
    pc.onconnectionstatechange = () => {
      if (gen !== this.gen) return;
      const s = pc.connectionState;
      if (s === "connected") {
        if (this.disconnectTimer) { clearTimeout(this.disconnectTimer); this.disconnectTimer = null; }
      } else if (s === "failed") {
        this.fallback(gen, "the WebRTC connection failed");
      } else if (s === "disconnected" && !this.disconnectTimer) {
        this.disconnectTimer = this.later(DISCONNECT_GRACE_MS, () => {
          this.disconnectTimer = null;
          if (gen === this.gen && pc.connectionState !== "connected") {
            this.fallback(gen, "the WebRTC connection dropped");
          }
        });
      }
    };
    try {
      await pc.setLocalDescription(await pc.createOffer());
      await this.gathered(pc, GATHER_MS);
      if (gen !== this.gen) return;
      const url = this.whepUrl();
      const token = await csrfToken(url);
      if (gen !== this.gen) return;
      const offer = pc.localDescription.sdp;
      this.offerSent = true;
      const abort = new AbortController();
      const timer = this.later(WHEP_TIMEOUT_MS, function () { abort.abort(); });
      const response = await fetch(url, {
        method: "POST",
        headers: { "Content-Type": "application/sdp", Accept: "application/sdp", "X-CSRF-Token": token },
        body: offer,
        credentials: "same-origin",
        signal: abort.signal,
      });
      clearTimeout(timer);
      this.timers.delete(timer);
      const location = response.headers.get("Location");
      const session = location ? new URL(location, new URL(url, window.location.origin)).href : null;
      if (gen !== this.gen) {
        if (session && response.ok) deleteSession(session);
        return;
      }
      if (response.status !== 201 && response.status !== 200) {
        this.fallback(gen, await problemDetail(response));
        return;
      }
      this.session = session;
      this.iceServers = parseIceServers(response.headers.get("Link"));
      const answer = await response.text();
      if (session) csrfToken(session).catch(function () { /* the DELETE will ask again */ });
      await pc.setRemoteDescription({ type: "answer", sdp: answer });
      if (gen !== this.gen) return;
      this.flushCandidates(gen);
      this.later(ICE_CONNECT_MS, () => {
        if (gen === this.gen && pc.connectionState !== "connected") {
          this.fallback(gen, "WebRTC did not connect within " + ICE_CONNECT_MS / 1000 + " s");
        }
      });
      this.later(FIRST_FRAME_MS, () => {
        if (gen === this.gen && this.state !== "playing") {
          this.fallback(gen, "WebRTC connected but showed no picture");
        }
      });
    } catch (e) {
      if (gen !== this.gen) return;
      this.fallback(gen, e.name === "AbortError" ? "the server did not answer the WebRTC offer" : e.message);
    }
  };

  /** Resolve once ICE gathering is complete, or after `ms`. */
  Player.prototype.gathered = function (pc, ms) {
    if (pc.iceGatheringState === "complete") return Promise.resolve();
    return new Promise(function (resolve) {
      const done = function () {
        if (pc.iceGatheringState !== "complete") return;
        pc.removeEventListener("icegatheringstatechange", done);
        clearTimeout(t);
        resolve();
      };
      const t = setTimeout(function () { pc.removeEventListener("icegatheringstatechange", done); resolve(); }, ms);
      pc.addEventListener("icegatheringstatechange", done);
    });
  };

  /** Trickle the candidates found after the offer went out (PATCH, application/trickle-ice-sdpfrag). */
  Player.prototype.flushCandidates = async function (gen) {
    if (!this.session || !this.pc || !this.lateCandidates.length || this.patching) return;
    const pc = this.pc;
    const batch = this.lateCandidates.splice(0);
    const sdp = pc.localDescription ? pc.localDescription.sdp : "";
    const ufrag = (sdp.match(/^a=ice-ufrag:(.*)$/m) || [])[1];
    const pwd = (sdp.match(/^a=ice-pwd:(.*)$/m) || [])[1];
    const mline = (sdp.match(/^m=.*$/m) || [])[0];
    const mid = (sdp.match(/^a=mid:(.*)$/m) || [])[1];
    if (!ufrag || !pwd || !mline) return;
    let frag = "a=ice-ufrag:" + ufrag.trim() + "\r\na=ice-pwd:" + pwd.trim() + "\r\n" + mline.trim() + "\r\n";
    if (mid) frag += "a=mid:" + mid.trim() + "\r\n";
    batch.forEach(function (c) {
      frag += c && c.candidate ? "a=" + c.candidate + "\r\n" : "a=end-of-candidates\r\n";
    });
    this.patching = true;
    try {
      const session = this.session;
      const token = await csrfToken(session);
      if (gen !== this.gen) return;
      const r = await fetch(session, {
        method: "PATCH",
        headers: { "Content-Type": "application/trickle-ice-sdpfrag", "X-CSRF-Token": token },
        body: frag,
        credentials: "same-origin",
      });
      if (!r.ok && r.status !== 405 && r.status !== 501) {
        console.info("live player: the server refused late ICE candidates:", await problemDetail(r));
      }
    } catch (e) {
      console.info("live player: cannot send late ICE candidates:", e.message);
    } finally {
      this.patching = false;
    }
    if (gen === this.gen && this.lateCandidates.length) this.flushCandidates(gen);
  };

  function deleteSession(url) {
    const token = freshToken(routeOf(url));
    const send = function (t) {
      fetch(url, {
        method: "DELETE", keepalive: true, credentials: "same-origin",
        headers: t ? { "X-CSRF-Token": t } : {},
      }).catch(function () { /* the server ends idle sessions itself */ });
    };
    if (token) send(token); else csrfToken(url).then(send, function () { send(null); });
  }

  Player.prototype.teardownWebRtc = function () {
    if (this.disconnectTimer) { clearTimeout(this.disconnectTimer); this.disconnectTimer = null; }
    if (this.pc) {
      const pc = this.pc;
      this.pc = null;
      pc.ontrack = pc.onicecandidate = pc.onconnectionstatechange = null;
      try { pc.close(); } catch (_) { /* closed already */ }
    }
    if (this.session) {
      deleteSession(this.session);
      this.session = null;
    }
    if (this.mediaStream) {
      this.mediaStream.getTracks().forEach(function (t) { t.stop(); });
      this.mediaStream = null;
    }
    this.lateCandidates = [];
  };

  /** WebRTC did not work out: note why and play over MSE instead. */
  Player.prototype.fallback = function (gen, reason) {
    if (gen !== this.gen) return;
    this.webrtcError = reason;
    console.info("live player: " + this.name + ": " + reason + "; switching to Media Source");
    this.teardown();
    const next = ++this.gen;
    if (mediaSourceClass()) this.startMse(next);
    else if (Player.supports().hls) this.startHls(next);
    else this.fail("No live picture: " + reason + ", and this browser has no Media Source support.", true);
  };

  // ---- HLS: the browser's own player (no Media Source); a few seconds behind ----

  Player.prototype.startHls = function (gen) {
    if (gen !== this.gen) return;
    this.protocol = "HLS";
    this.setState("connecting");
    this.video.src = "/api/v1/cameras/" + encodeURIComponent(this.camera) + "/live.m3u8?stream=" + this.stream;
    this.video.play().catch(function () { /* muted autoplay; the controls are there otherwise */ });
  };

  // ---- MSE: fragmented MP4 over a WebSocket ----

  Player.prototype.wsUrl = function () {
    const scheme = window.location.protocol === "https:" ? "wss:" : "ws:";
    return scheme + "//" + window.location.host + "/api/v1/cameras/" + encodeURIComponent(this.camera) +
      "/live.mp4?stream=" + this.stream;
  };

  Player.prototype.startMse = function (gen) {
    this.protocol = "MSE";
    this.setState("connecting");
    this.lastSample = { t: performance.now(), bytes: 0 };
    this.queue = [];
    this.queuedBytes = 0;
    this.serverError = null;
    let ws;
    try {
      ws = this.ws = new WebSocket(this.wsUrl());
    } catch (e) {
      this.fail("Cannot open the live stream: " + e.message, true);
      return;
    }
    ws.binaryType = "arraybuffer";
    ws.onmessage = (e) => {
      if (gen !== this.gen) return;
      if (typeof e.data === "string") {
        let msg;
        try { msg = JSON.parse(e.data); } catch (_) { return; }
        if (msg.type === "init") this.mseInit(gen, msg);
        else if (msg.type === "error") this.serverError = msg.detail || "the live stream stopped";
        return;
      }
      this.bytes += e.data.byteLength;
      this.enqueue(e.data);
    };
    ws.onclose = (e) => {
      if (gen !== this.gen) return;
      this.ws = null;
      const why = this.serverError ||
        (e.code === 1000 ? "the live stream ended" : "the connection to the live stream was lost");
      this.fail(why.charAt(0).toUpperCase() + why.slice(1) + ". Trying again…", true);
    };
  };

  /** A new stream starts: (re)create the MediaSource and its SourceBuffer for `msg.mime`. */
  Player.prototype.mseInit = function (gen, msg) {
    const MS = mediaSourceClass();
    const mime = msg.mime || "";
    if (!MS.isTypeSupported(mime)) {
      const codec = (mime.match(/codecs="?([^".]+)/) || [])[1] || "";
      const what = /^(hev1|hvc1)/.test(codec) ? "H.265 video" : "this camera's video format";
      this.fail("This browser cannot play " + what + " live. Try another browser, or set the camera to H.264.", false);
      return;
    }
    this.teardownMediaSource();
    this.queue = [];
    this.queuedBytes = 0;
    this.awaitingInit = true; // the next binary message is the init segment
    const ms = this.mediaSource = new MS();
    if (window.ManagedMediaSource && ms instanceof window.ManagedMediaSource) {
      this.video.disableRemotePlayback = true;
    }
    ms.addEventListener("sourceopen", () => {
      if (gen !== this.gen || this.mediaSource !== ms) return;
      try {
        const sb = this.sourceBuffer = ms.addSourceBuffer(mime);
        sb.mode = "segments";
        sb.addEventListener("updateend", () => { this.afterAppend(gen); });
        sb.addEventListener("error", () => {
          if (gen === this.gen) this.fail("The browser could not decode the live stream. Trying again…", true);
        });
      } catch (e) {
        this.fail("This browser cannot play this camera's video: " + e.message, false);
        return;
      }
      this.pump();
    }, { once: true });
    this.objectUrl = URL.createObjectURL(ms);
    this.video.src = this.objectUrl;
  };

  Player.prototype.enqueue = function (data) {
    const item = { data: data, init: this.awaitingInit };
    this.awaitingInit = false;
    this.queue.push(item);
    this.queuedBytes += data.byteLength;
    // Too much waiting (a background tab, a slow decoder): drop the oldest fragments, never the
    // init segment; the live-edge chase jumps over the hole.
    while (this.queuedBytes > MSE_QUEUE_MAX_BYTES && this.queue.length > 1) {
      const i = this.queue[0].init ? 1 : 0;
      if (i >= this.queue.length - 1) break;
      const dropped = this.queue.splice(i, 1)[0];
      this.queuedBytes -= dropped.data.byteLength;
    }
    this.pump();
  };

  Player.prototype.pump = function () {
    const sb = this.sourceBuffer, ms = this.mediaSource;
    if (!sb || !ms || ms.readyState !== "open" || sb.updating || !this.queue.length) return;
    const item = this.queue.shift();
    this.queuedBytes -= item.data.byteLength;
    try {
      sb.appendBuffer(item.data);
    } catch (e) {
      if (e.name === "QuotaExceededError") {
        this.queue.unshift(item);
        this.queuedBytes += item.data.byteLength;
        this.trim(0.5);
      } else {
        this.fail("The browser refused the live stream (" + e.message + "). Trying again…", true);
      }
    }
  };

  /** Remove what lies more than `keep` seconds behind the playhead. */
  Player.prototype.trim = function (keep) {
    const sb = this.sourceBuffer, v = this.video;
    if (!sb || sb.updating || !sb.buffered.length) return false;
    const start = sb.buffered.start(0), until = v.currentTime - keep;
    if (until - start < 0.5) return false;
    try { sb.remove(start, until); return true; } catch (_) { return false; }
  };

  Player.prototype.afterAppend = function (gen) {
    if (gen !== this.gen) return;
    const v = this.video;
    if (v.buffered.length && v.paused) {
      const end = v.buffered.end(v.buffered.length - 1);
      if (v.currentTime < v.buffered.start(0) || end - v.currentTime > MSE_KEEP_SECONDS) {
        v.currentTime = Math.max(v.buffered.start(v.buffered.length - 1), end - 0.3);
      }
      v.play().catch(function () { /* muted autoplay; retried on the next fragment */ });
    }
    if (!this.trim(MSE_KEEP_SECONDS + 1)) this.pump();
  };

  /** Chase the live edge: 1.1× beyond 1 s behind, a jump beyond 3 s (or out of the buffer). */
  Player.prototype.chase = function () {
    if (this.protocol !== "MSE" || !this.sourceBuffer) return;
    const v = this.video, b = v.buffered;
    if (!b.length) return;
    const end = b.end(b.length - 1), t = v.currentTime;
    let inside = false;
    for (let i = 0; i < b.length; i++) if (t >= b.start(i) && t <= b.end(i)) inside = true;
    const lag = end - t;
    if (lag > 3 || (!inside && lag > 0.3)) {
      v.currentTime = Math.max(b.start(b.length - 1), end - 0.3);
      v.playbackRate = 1;
    } else {
      const rate = lag > 1 ? 1.1 : 1;
      if (v.playbackRate !== rate) v.playbackRate = rate;
    }
  };

  Player.prototype.teardownMediaSource = function () {
    const ms = this.mediaSource;
    this.sourceBuffer = null;
    this.mediaSource = null;
    if (ms && ms.readyState === "open") {
      try { ms.endOfStream(); } catch (_) { /* updating */ }
    }
    if (this.objectUrl) {
      URL.revokeObjectURL(this.objectUrl);
      this.objectUrl = null;
    }
  };

  Player.prototype.teardownMse = function () {
    if (this.ws) {
      const ws = this.ws;
      this.ws = null;
      ws.onmessage = ws.onclose = null;
      try { ws.close(1000); } catch (_) { /* closed already */ }
    }
    this.teardownMediaSource();
    this.queue = [];
    this.queuedBytes = 0;
  };

  // ---- Numbers for the badge, once a second ----

  Player.prototype.sample = async function () {
    const gen = this.gen;
    const now = performance.now();
    if (this.protocol === "WebRTC" && this.pc) {
      let report;
      try { report = await this.pc.getStats(); } catch (_) { return; }
      if (gen !== this.gen) return;
      let bytes = 0, jbDelay = null, jbCount = null, rtt = null, pairId = null;
      report.forEach(function (s) {
        if (s.type === "inbound-rtp") {
          bytes += s.bytesReceived || 0;
          if (s.kind === "video") { jbDelay = s.jitterBufferDelay; jbCount = s.jitterBufferEmittedCount; }
        } else if (s.type === "transport" && s.selectedCandidatePairId) {
          pairId = s.selectedCandidatePairId;
        }
      });
      report.forEach(function (s) {
        if (s.type === "candidate-pair" && (s.id === pairId || (!pairId && s.nominated && s.state === "succeeded"))) {
          if (s.currentRoundTripTime != null) rtt = s.currentRoundTripTime;
        }
      });
      this.bytes = bytes;
      const last = this.lastSample;
      let buffer = null;
      if (jbDelay != null && jbCount) {
        if (last && last.jbCount != null && jbCount > last.jbCount) {
          buffer = (jbDelay - last.jbDelay) / (jbCount - last.jbCount);
        } else {
          buffer = jbDelay / jbCount;
        }
      }
      if (buffer != null) this.latencyMs = (buffer + (rtt || 0) / 2) * 1000;
      if (last) this.bitrateKbps = Math.max(0, (bytes - last.bytes) * 8 / (now - last.t));
      this.lastSample = { t: now, bytes: bytes, jbDelay: jbDelay, jbCount: jbCount };
    } else if (this.protocol === "MSE" && this.ws) {
      const v = this.video;
      if (v.buffered.length) this.latencyMs = Math.max(0, (v.buffered.end(v.buffered.length - 1) - v.currentTime) * 1000);
      const last = this.lastSample;
      if (last) this.bitrateKbps = Math.max(0, (this.bytes - last.bytes) * 8 / (now - last.t));
      this.lastSample = { t: now, bytes: this.bytes };
    }
    this.updateBadge();
  };

  /** The rectangle the picture occupies in the container (object-fit: contain), in CSS pixels. */
  Player.prototype.pictureRect = function () {
    const w = this.container.clientWidth, h = this.container.clientHeight;
    const vw = this.video.videoWidth || 16, vh = this.video.videoHeight || 9;
    const scale = Math.min(w / vw, h / vh);
    const pw = vw * scale, ph = vh * scale;
    return { x: (w - pw) / 2, y: (h - ph) / 2, width: pw, height: ph };
  };

  pv.Player = Player;
  pv.players = players;
})();
