// PentaVision Faces page (/faces): whether face recognition works (and, when it does not, what
// to do), the enrolled people with their face images (add a person, add images by upload or by
// scanning a face with this device's camera, opt out, delete an image or the person), recent
// unknown faces to name, recently recognised faces to correct, and a photo to try. Talks to
// /api/v1/faces/ only; writes carry the page's CSRF tokens (window.pv.api / pv.csrfToken).
"use strict";

(function () {
  const page = window.pv.page;
  const api = window.pv.api;
  const toast = function (m, l) { return window.pv.toast(m, l); };
  const canEnroll = !!page.can_enroll;
  const canDelete = !!page.can_delete;
  const BASE = "/api/v1/faces";
  const REFRESH_MS = 20000;

  const state = { status: null, people: [], images: new Map(), cameras: new Map(), users: [] };

  const $ = function (id) { return document.getElementById(id); };
  function el(tag, attrs, children) {
    const e = document.createElement(tag);
    Object.keys(attrs || {}).forEach(function (k) {
      const v = attrs[k];
      if (v == null || v === false) return;
      if (k === "class") e.className = v;
      else if (k === "text") e.textContent = v;
      else if (k.slice(0, 2) === "on" && typeof v === "function") e.addEventListener(k.slice(2), v);
      else e.setAttribute(k, v === true ? "" : v);
    });
    (children || []).forEach(function (c) {
      if (c == null) return;
      e.appendChild(c instanceof Node ? c : document.createTextNode(String(c)));
    });
    return e;
  }
  function btn(label, fn, cls, attrs) {
    return el("button", Object.assign({ type: "button", class: "btn " + (cls || "btn-small"), onclick: fn }, attrs || {}), [label]);
  }
  function plural(n, one, many) { return n + " " + (n === 1 ? one : many); }
  function sentence(message) {
    const m = window.pv.humanMessage(message);
    return m.charAt(0).toUpperCase() + m.slice(1);
  }
  function when(at) {
    const t = new Date(at);
    const s = Math.max(0, Math.round((Date.now() - t.getTime()) / 1000));
    if (s < 60) return "just now";
    if (s < 3600) return Math.round(s / 60) + " min ago";
    return window.pv.formatTime(t);
  }
  function cameraName(id) { return state.cameras.get(id) || "Camera " + id; }
  function person(id) { return state.people.find(function (p) { return p.id === id; }) || null; }

  /** The content type of an image file (by its name when the browser does not say). */
  function imageType(file) {
    if (file.type) return file.type;
    return /\.png$/i.test(file.name || "") ? "image/png" : "image/jpeg";
  }

  /** POST an image (raw body) with the route's CSRF token; resolves with the JSON answer. */
  async function postImage(url, blob) {
    const headers = { Accept: "application/json", "Content-Type": imageType(blob) };
    headers["X-CSRF-Token"] = await window.pv.csrfToken(url);
    const r = await fetch(url, { method: "POST", headers: headers, body: blob, credentials: "same-origin" });
    if (!r.ok) throw new Error(await window.pv.errorMessage(r));
    return r.json();
  }

  // ---- Status ----

  async function loadStatus() {
    try {
      state.status = await api("GET", BASE + "/status");
    } catch (e) {
      state.status = null;
      $("fc-summary").textContent = "The face recognition status cannot be read: " + sentence(e.message);
      return;
    }
    const s = state.status;
    $("fc-off").hidden = !!s.enabled;
    // The banner's heading already says it is off: the reason follows without repeating it.
    const why = (s.reason || "").replace(/^Face recognition is off:\s*/i, "");
    $("fc-off-reason").textContent = s.enabled ? "" : sentence(why || "Face recognition is turned off in the server's configuration.");
    if (s.enabled) {
      let text = "Face recognition is on: " + plural(s.identities, "person", "people") + " with " +
        plural(s.embeddings, "face image", "face images") + ".";
      if (s.live_cameras && s.live_cameras.length) text += " Watching " + plural(s.live_cameras.length, "camera", "cameras") + " with motion now.";
      if (s.stale_embeddings) {
        text += " " + plural(s.stale_embeddings, "face image was", "face images were") +
          " made with an older face model and are not used: add new images of those people.";
      }
      $("fc-summary").textContent = text;
    } else {
      $("fc-summary").textContent = "";
    }
    document.querySelectorAll("[data-needs-engine]").forEach(function (b) { b.disabled = !s.enabled; });
    $("fc-try-file").disabled = !s.enabled;
  }

  // ---- People ----

  async function loadPeople() {
    const list = $("fc-people");
    try {
      const r = await api("GET", BASE + "/identities");
      state.people = (r && r.identities) || [];
    } catch (e) {
      list.replaceChildren(el("li", { class: "hint", text: "The people cannot be shown: " + sentence(e.message) }));
      return;
    }
    state.people.sort(function (a, b) { return a.name.localeCompare(b.name); });
    await Promise.all(state.people.map(async function (p) {
      try {
        const r = await api("GET", BASE + "/identities/" + p.id + "/images");
        state.images.set(p.id, (r && r.images) || []);
      } catch (_) {
        state.images.set(p.id, []);
      }
    }));
    renderPeople();
    renderEvents();
  }

  function renderPeople() {
    const list = $("fc-people");
    $("fc-people-count").textContent = state.people.length ? plural(state.people.length, "person", "people") : "";
    if (state.people.length === 0) {
      list.replaceChildren(el("li", { class: "hint", text: canEnroll
        ? "Nobody yet. Add a person, then give them a few clear photos of their face."
        : "Nobody has been added yet." }));
      return;
    }
    list.replaceChildren.apply(list, state.people.map(personCard));
  }

  function personCard(p) {
    const images = state.images.get(p.id) || [];
    const positives = images.filter(function (i) { return !i.negative; });
    const li = el("li", { class: "fc-person", "data-person": p.id });
    const meta = [plural(positives.length, "face image", "face images")];
    if (p.negatives) meta.push(plural(p.negatives, "face marked as not them", "faces marked as not them"));
    if (p.user_id != null) {
      const u = state.users.find(function (x) { return x.id === p.user_id; });
      meta.push("user " + (u ? u.username : "#" + p.user_id));
    }
    li.appendChild(el("div", { class: "fc-person-head" }, [
      el("div", {}, [
        el("div", { class: "fc-person-name", text: p.name }),
        el("div", { class: "fc-person-meta", text: meta.join(" · ") }),
      ]),
      p.opt_out ? el("span", { class: "badge warn", text: "Opted out" }) : null,
    ]));
    const thumbs = el("ul", { class: "fc-thumbs", "aria-label": "Face images of " + p.name });
    images.forEach(function (img) {
      const what = img.negative ? "A face marked as not " + p.name : "Face image of " + p.name;
      const item = el("li", { class: "fc-thumb" + (img.negative ? " negative" : ""), "data-image": img.id,
        title: what + ", added " + window.pv.formatTime(img.created_at) });
      item.appendChild(img.has_crop
        ? el("img", { src: BASE + "/embeddings/" + img.id + "/crop.jpg", alt: what, loading: "lazy" })
        : el("span", { class: "fc-noimg", role: "img", "aria-label": what + " (no picture kept)" }));
      if (canDelete) {
        item.appendChild(btn("×", function () { deleteImage(p, img); }, "fc-x", {
          "aria-label": "Delete this face image of " + p.name, title: "Delete this face image",
        }));
      }
      thumbs.appendChild(item);
    });
    if (images.length) li.appendChild(thumbs);
    else li.appendChild(el("p", { class: "hint", text: "No face images yet." }));

    const actions = el("div", { class: "fc-actions" });
    if (canEnroll) {
      const input = el("input", { type: "file", accept: "image/jpeg,image/png", multiple: true, class: "visually-hidden",
        id: "fc-upload-" + p.id, "data-upload": p.id });
      input.addEventListener("change", function () { uploadFiles(p, Array.from(input.files || [])); input.value = ""; });
      actions.appendChild(input);
      const pick = btn("Add photos", function () { input.click(); }, "btn-small", { "data-needs-engine": true });
      actions.appendChild(pick);
      actions.appendChild(btn("Scan face", function () { scan(p); }, "btn-small", { "data-needs-engine": true }));
    }
    if (canDelete) {
      actions.appendChild(btn("Delete person", function () { deletePerson(p); }, "btn-small btn-danger"));
    }
    if (actions.childNodes.length) li.appendChild(actions);

    if (canEnroll) {
      const box = el("input", { type: "checkbox", id: "fc-optout-" + p.id });
      box.checked = !!p.opt_out;
      box.addEventListener("change", function () { setOptOut(p, box); });
      li.appendChild(el("label", { class: "fc-optout", for: "fc-optout-" + p.id }, [box, el("span", {}, [
        "Opted out of face tagging",
        el("small", { text: "When ticked, " + p.name + " is never named on video or in events, and no pictures or " +
          "sightings of them are kept from now on. Their face images stay, so they can be told apart from strangers." }),
      ])]));
    } else if (p.opt_out) {
      li.appendChild(el("p", { class: "hint", text: p.name + " opted out: never named, and no sightings of them are kept." }));
    }
    if (state.status && !state.status.enabled) {
      li.querySelectorAll("[data-needs-engine]").forEach(function (b) { b.disabled = true; });
    }
    return li;
  }

  async function addPerson(event) {
    event.preventDefault();
    const form = event.target;
    const name = form.elements.name.value.trim();
    if (!name) return;
    const body = { name: name };
    const user = form.elements.user_id && form.elements.user_id.value;
    if (user) body.user_id = Number(user);
    const submit = form.querySelector("button[type=submit]");
    submit.disabled = true;
    try {
      const p = await api("POST", BASE + "/identities", body);
      form.reset();
      toast(p.name + " added. Now add a few clear photos of their face.", "info");
      await loadPeople();
      const card = document.querySelector('[data-person="' + p.id + '"]');
      if (card) card.scrollIntoView({ block: "nearest" });
    } catch (e) {
      toast(sentence(e.message), "error");
    } finally {
      submit.disabled = false;
    }
  }

  async function uploadFiles(p, files) {
    if (!files.length) return;
    let added = 0;
    const failures = [];
    for (const f of files) {
      try {
        await postImage(BASE + "/identities/" + p.id + "/images", f);
        added++;
      } catch (e) {
        failures.push((f.name ? f.name + ": " : "") + sentence(e.message));
      }
    }
    if (added) toast(plural(added, "face image", "face images") + " added to " + p.name + ".", "info");
    failures.forEach(function (m) { toast(m, "error"); });
    await loadPeople();
    loadStatus();
  }

  async function setOptOut(p, box) {
    const on = box.checked;
    box.disabled = true;
    try {
      await api("PATCH", BASE + "/identities/" + p.id, { opt_out: on });
      toast(on ? p.name + " is opted out: they will not be named and no sightings of them are kept."
        : p.name + " is opted back in: they are named again.", "info");
      await loadPeople();
    } catch (e) {
      box.checked = !on;
      toast(sentence(e.message), "error");
    } finally {
      box.disabled = false;
    }
  }

  /** Ask with the confirm dialog; resolves true when the user confirms. */
  function confirmDelete(title, text, yes) {
    const dialog = $("fc-confirm");
    $("fc-confirm-title").textContent = title;
    $("fc-confirm-text").textContent = text;
    $("fc-confirm-yes").textContent = yes;
    return new Promise(function (resolve) {
      const done = function (answer) {
        $("fc-confirm-yes").onclick = null;
        $("fc-confirm-no").onclick = null;
        dialog.onclose = null;
        if (dialog.open) dialog.close();
        resolve(answer);
      };
      $("fc-confirm-yes").onclick = function () { done(true); };
      $("fc-confirm-no").onclick = function () { done(false); };
      dialog.onclose = function () { done(false); };
      dialog.showModal();
      $("fc-confirm-no").focus();
    });
  }

  async function deletePerson(p) {
    const images = (state.images.get(p.id) || []).length;
    const ok = await confirmDelete("Delete " + p.name + "?",
      "Everything biometric about " + p.name + " is deleted: their " + plural(images, "face image", "face images") +
      ", the face data made from them and their opt-out setting. Past sightings stay in the list but no longer " +
      "name them. This cannot be undone.", "Delete " + p.name);
    if (!ok) return;
    try {
      await api("DELETE", BASE + "/identities/" + p.id);
      toast(p.name + " and all their face data were deleted.", "info");
      state.images.delete(p.id);
      await loadPeople();
      loadStatus();
      loadEvents();
    } catch (e) {
      toast(sentence(e.message), "error");
    }
  }

  async function deleteImage(p, img) {
    const ok = await confirmDelete("Delete this face image?",
      "This face image of " + p.name + " and the face data made from it are deleted. " +
      "This cannot be undone.", "Delete image");
    if (!ok) return;
    try {
      await api("DELETE", BASE + "/embeddings/" + img.id);
      toast("Face image of " + p.name + " deleted.", "info");
      await loadPeople();
      loadStatus();
    } catch (e) {
      toast(sentence(e.message), "error");
    }
  }

  // ---- Scan a face with this device's camera ----

  let scanStream = null, scanPerson = null;

  async function scan(p) {
    const dialog = $("fc-scan");
    scanPerson = p;
    $("fc-scan-title").textContent = "Scan the face of " + p.name;
    if (!navigator.mediaDevices || !navigator.mediaDevices.getUserMedia) {
      toast("This browser cannot use a camera here (a camera needs a secure address, https or localhost). Upload photos instead.", "error");
      return;
    }
    try {
      scanStream = await navigator.mediaDevices.getUserMedia({ video: { facingMode: "user", width: { ideal: 1280 } }, audio: false });
    } catch (e) {
      toast("The camera cannot be used: " + (e && e.name === "NotAllowedError" ? "permission was refused." : sentence(e.message || String(e))), "error");
      return;
    }
    const video = $("fc-scan-video");
    video.srcObject = scanStream;
    dialog.showModal();
    video.play().catch(function () { /* autoplay muted */ });
  }

  function stopScan() {
    if (scanStream) scanStream.getTracks().forEach(function (t) { t.stop(); });
    scanStream = null;
    $("fc-scan-video").srcObject = null;
  }

  async function capture() {
    const video = $("fc-scan-video");
    const p = scanPerson;
    if (!p || !video.videoWidth) { toast("The camera has not started yet.", "error"); return; }
    const c = document.createElement("canvas");
    c.width = video.videoWidth;
    c.height = video.videoHeight;
    c.getContext("2d").drawImage(video, 0, 0);
    const blob = await new Promise(function (resolve) { c.toBlob(resolve, "image/jpeg", 0.92); });
    if (!blob) { toast("The picture could not be taken.", "error"); return; }
    const button = $("fc-scan-capture");
    button.disabled = true;
    try {
      await postImage(BASE + "/identities/" + p.id + "/images?source=camera", blob);
      toast("Face image added to " + p.name + ".", "info");
      loadPeople();
      loadStatus();
    } catch (e) {
      toast(sentence(e.message), "error");
    } finally {
      button.disabled = false;
    }
  }

  // ---- Face events ----

  async function loadEvents() {
    let unknown = [], recent = [];
    try {
      const [u, r] = await Promise.all([
        api("GET", BASE + "/events?unknown=true&limit=24"),
        api("GET", BASE + "/events?limit=60"),
      ]);
      unknown = (u && u.events) || [];
      recent = ((r && r.events) || []).filter(function (e) { return e.identity_id != null; }).slice(0, 24);
    } catch (e) {
      const text = "Faces cannot be shown: " + sentence(e.message);
      $("fc-unknown").replaceChildren(el("li", { class: "hint", text: text }));
      $("fc-named").replaceChildren(el("li", { class: "hint", text: text }));
      return;
    }
    state.unknown = unknown;
    state.recent = recent;
    renderEvents();
  }

  function crop(ev, alt) {
    return ev.has_crop && ev.id != null
      ? el("img", { class: "fc-crop", src: BASE + "/events/" + ev.id + "/crop.jpg", alt: alt, loading: "lazy" })
      : el("span", { class: "fc-noimg", role: "img", "aria-label": alt + " (no picture kept)" });
  }

  function eventItem(ev, named) {
    const place = cameraName(ev.camera_id);
    const li = el("li", { class: "fc-event", "data-event": ev.id });
    const alt = named ? "Face recognised as " + ev.name + " on " + place : "Unknown face on " + place;
    li.appendChild(crop(ev, alt));
    const text = el("div", { class: "fc-event-text" }, [
      named ? el("strong", { text: ev.name }) : null,
      el("span", { class: "fc-when", title: window.pv.formatTime(ev.at), text: place + ", " + when(ev.at) }),
    ]);
    if (canEnroll && ev.id != null) {
      if (named) {
        text.appendChild(el("div", { class: "fc-label-row" }, [
          btn("Not " + ev.name, function (e) { label(ev, ev.identity_id, false, e.target); }, "btn-small", {
            "aria-label": "This is not " + ev.name, title: "This face is not " + ev.name,
          }),
        ]));
      } else if (state.people.length) {
        const select = el("select", { "aria-label": "Who is this?" }, [el("option", { value: "", text: "This is…" })]
          .concat(state.people.map(function (p) { return el("option", { value: p.id, text: p.name }); })));
        text.appendChild(el("div", { class: "fc-label-row" }, [
          select,
          btn("Save", function (e) {
            if (!select.value) { toast("Choose who this is first.", "error"); select.focus(); return; }
            label(ev, Number(select.value), true, e.target);
          }),
        ]));
      }
    }
    li.appendChild(text);
    return li;
  }

  function renderEvents() {
    if (!state.unknown) return;
    const u = $("fc-unknown"), n = $("fc-named");
    u.replaceChildren.apply(u, state.unknown.length ? state.unknown.map(function (e) { return eventItem(e, false); })
      : [el("li", { class: "hint", text: "No unknown faces lately." })]);
    n.replaceChildren.apply(n, state.recent.length ? state.recent.map(function (e) { return eventItem(e, true); })
      : [el("li", { class: "hint", text: "Nobody recognised lately." })]);
  }

  async function label(ev, identity, correct, button) {
    if (button) button.disabled = true;
    const who = (person(identity) || { name: ev.name || "this person" }).name;
    try {
      await api("POST", BASE + "/events/" + ev.id + "/label", { identity_id: identity, correct: correct });
      toast(correct ? "Saved: that face is " + who + "." : "Saved: that face is not " + who + ".", "info");
      await Promise.all([loadEvents(), loadPeople()]);
      loadStatus();
    } catch (e) {
      if (button) button.disabled = false;
      toast(sentence(e.message), "error");
    }
  }

  // ---- Try a photo ----

  async function tryPhoto() {
    const input = $("fc-try-file");
    const file = input.files && input.files[0];
    input.value = "";
    if (!file) return;
    const result = $("fc-try-result");
    result.textContent = "Looking for faces…";
    // A data: URL (the page's security policy allows those for images, not blob: URLs).
    const url = await new Promise(function (resolve) {
      const reader = new FileReader();
      reader.onload = function () { resolve(reader.result); };
      reader.onerror = function () { resolve(""); };
      reader.readAsDataURL(file);
    });
    const img = $("fc-try-img"), canvas = $("fc-try-canvas");
    $("fc-try-stage").hidden = false;
    await new Promise(function (resolve) { img.onload = resolve; img.onerror = resolve; img.src = url; });
    let r;
    try {
      r = await postImage(BASE + "/recognize", file);
    } catch (e) {
      window.pv.faceOverlay.draw(canvas, { x: 0, y: 0, width: img.clientWidth, height: img.clientHeight }, []);
      result.textContent = sentence(e.message);
      return;
    }
    const faces = (r.faces || []).map(function (f) {
      return { box: f.box, identity_id: f.identity_id, name: f.name, frame_width: r.width, frame_height: r.height };
    });
    const drawTry = function () {
      window.pv.faceOverlay.draw(canvas, { x: 0, y: 0, width: img.clientWidth, height: img.clientHeight }, faces);
    };
    drawTry();
    state.redrawTry = drawTry;
    if (!faces.length) {
      result.textContent = "No face found in this photo.";
      return;
    }
    const names = faces.map(function (f) { return f.name; }).filter(Boolean);
    const unknown = faces.length - names.length;
    result.textContent = plural(faces.length, "face", "faces") + " found" +
      (names.length ? ": " + names.join(", ") + (unknown ? " and " + plural(unknown, "unknown face", "unknown faces") : "") : ", none of them known") + ".";
  }

  // ---- Start ----

  async function loadCameras() {
    try {
      const cams = await api("GET", "/api/v1/cameras");
      cams.forEach(function (c) { state.cameras.set(c.id, c.name); });
    } catch (_) { /* names fall back to numbers */ }
  }

  async function loadUsers() {
    if (!page.can_list_users || !canEnroll) return;
    try {
      state.users = await api("GET", "/api/v1/users");
    } catch (_) { return; }
    const select = $("fc-user");
    if (!select || !state.users.length) return;
    state.users.forEach(function (u) { select.appendChild(el("option", { value: u.id, text: u.display_name || u.username })); });
    $("fc-user-field").hidden = false;
  }

  async function refresh() {
    if (document.hidden) return;
    await loadStatus();
    await loadEvents();
  }

  document.addEventListener("DOMContentLoaded", async function () {
    const form = $("fc-add-form");
    if (form) form.addEventListener("submit", addPerson);
    $("fc-try-file").addEventListener("change", tryPhoto);
    $("fc-scan-capture").addEventListener("click", capture);
    $("fc-scan-close").addEventListener("click", function () { $("fc-scan").close(); });
    $("fc-scan").addEventListener("close", stopScan);
    if ("ResizeObserver" in window) new ResizeObserver(function () { if (state.redrawTry) state.redrawTry(); }).observe($("fc-try-stage"));
    await Promise.all([loadCameras(), loadUsers()]);
    await loadStatus();
    await loadPeople();
    await loadEvents();
    setInterval(refresh, REFRESH_MS);
  });
})();
