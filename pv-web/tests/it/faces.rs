//! Face recognition through the REST API, in process, with the real models and test pictures:
//! enrol two people, recognise other pictures of them (a PNG with alpha, a mirrored and
//! rescaled copy), a stranger and a picture without a face; bad input (text, 50 MB, no face,
//! not a picture); a corrupt model; opt-out; deletion; embeddings at rest are sealed.
//!
//! Assets: pictures in `PV_FACE_IMAGES` (default `~/.cache/pentavision/face-test-images`,
//! fetched by `bins/face-test-images.sh`), models in `PV_FACE_MODELS` (default
//! `~/.cache/pentavision/models`, fetched by `pentavision faces fetch-models`).

use std::path::PathBuf;

use poem::http::StatusCode;
use poem::test::TestClient;
use pv_core::db::faces::{face_embedding, face_match};
use pv_core::db::users::audit_event;
use pv_core::testkit::Engine;
use sea_orm::{ActiveModelTrait, ColumnTrait, EntityTrait, PaginatorTrait, QueryFilter, Set};
use serde_json::{Value, json};

use crate::{csrf_token, session_cookie, state_with, user_with_role};

fn home_cache(sub: &str) -> PathBuf {
    let home = std::env::var_os("HOME").map(PathBuf::from).unwrap_or_default();
    home.join(".cache/pentavision").join(sub)
}

/// The test pictures' folder.
fn images() -> PathBuf {
    let dir = std::env::var_os("PV_FACE_IMAGES")
        .map(PathBuf::from)
        .unwrap_or_else(|| home_cache("face-test-images"));
    assert!(
        dir.join("obama.jpg").is_file(),
        "face test pictures missing in {}: run bins/face-test-images.sh (or set PV_FACE_IMAGES)",
        dir.display()
    );
    dir
}

/// The face models' folder.
fn models() -> PathBuf {
    let dir = std::env::var_os("PV_FACE_MODELS")
        .map(PathBuf::from)
        .unwrap_or_else(|| home_cache("models"));
    assert!(
        dir.join("fr_feature.onnx").is_file()
            && dir.join("face_detection_front_128x128_barracuda.onnx").is_file(),
        "face models missing in {}: run `pentavision faces fetch-models` (or set PV_FACE_MODELS)",
        dir.display()
    );
    dir
}

fn picture(name: &str) -> Vec<u8> {
    std::fs::read(images().join(name)).unwrap()
}

struct Client {
    cli: TestClient<poem::endpoint::BoxEndpoint<'static>>,
    state: pv_web::AppState,
    user: i64,
    cookie: String,
}

enum Body {
    None,
    Json(Value),
    Raw(&'static str, Vec<u8>),
}

impl Client {
    async fn new(state: pv_web::AppState) -> Client {
        let user = user_with_role(&state, "admin", Some("System Administrator"), None).await;
        let cookie = session_cookie(&state, user).await;
        Client { cli: TestClient::new(pv_web::app::build(state.clone())), state, user, cookie }
    }

    /// Status, content type and body (JSON when it parses).
    async fn send(&self, method: &str, path: &str, body: Body) -> (StatusCode, String, Value) {
        let full = format!("/api/v1{path}");
        let route = full.split('?').next().unwrap_or(&full).to_owned();
        let mut req = match method {
            "GET" => self.cli.get(&full),
            "POST" => self.cli.post(&full),
            "PATCH" => self.cli.patch(&full),
            "DELETE" => self.cli.delete(&full),
            _ => unreachable!(),
        }
        .header("cookie", self.cookie.clone());
        if method != "GET" {
            req = req.header("x-csrf-token", csrf_token(&self.state, self.user, &route));
        }
        req = match body {
            Body::None => req,
            Body::Json(b) => req.body_json(&b),
            Body::Raw(ct, bytes) => req
                .header("content-type", ct)
                .header("content-length", bytes.len().to_string())
                .body(bytes),
        };
        let resp = req.send().await;
        let status = resp.0.status();
        let ct = resp
            .0
            .headers()
            .get("content-type")
            .and_then(|v| v.to_str().ok())
            .unwrap_or_default()
            .to_owned();
        let bytes = resp.0.into_body().into_vec().await.unwrap();
        let value = serde_json::from_slice(&bytes)
            .unwrap_or_else(|_| Value::String(format!("{} bytes", bytes.len())));
        (status, ct, value)
    }

    async fn call(&self, method: &str, path: &str, body: Option<Value>) -> (StatusCode, Value) {
        let (s, _, v) = self.send(method, path, body.map_or(Body::None, Body::Json)).await;
        (s, v)
    }

    async fn recognize(&self, bytes: Vec<u8>, ct: &'static str) -> Value {
        let (s, _, v) = self.send("POST", "/faces/recognize", Body::Raw(ct, bytes)).await;
        assert_eq!(s, StatusCode::OK, "{v}");
        v
    }

    async fn enrol(&self, id: i64, name: &str) -> Value {
        let ct = if name.ends_with(".png") { "image/png" } else { "image/jpeg" };
        let (s, _, v) = self
            .send("POST", &format!("/faces/identities/{id}/images"), Body::Raw(ct, picture(name)))
            .await;
        assert_eq!(s, StatusCode::CREATED, "{name}: {v}");
        v
    }

    async fn audit(&self, action: &str) -> Vec<audit_event::Model> {
        audit_event::Entity::find()
            .filter(audit_event::Column::Action.eq(action))
            .all(&self.state.dbs().users)
            .await
            .unwrap()
    }
}

fn assert_problem(status: StatusCode, ct: &str, body: &Value, expected: StatusCode) {
    assert_eq!(status, expected, "{body}");
    assert!(ct.starts_with("application/problem+json"), "{ct}");
    assert_eq!(body["status"], expected.as_u16(), "{body}");
    let detail = body["detail"].as_str().unwrap_or_default();
    assert!(!detail.is_empty(), "{body}");
}

/// The one face of `faces` (a recognition answer).
fn only_face(r: &Value) -> &Value {
    let faces = r["faces"].as_array().unwrap();
    assert_eq!(faces.len(), 1, "{r}");
    &faces[0]
}

/// Whether `bytes` reads as `dims` little-endian f32s of a unit vector.
fn looks_like_embedding(bytes: &[u8], dims: usize) -> bool {
    if bytes.len() != dims * 4 {
        return false;
    }
    let v: Vec<f32> =
        bytes.chunks_exact(4).map(|c| f32::from_le_bytes([c[0], c[1], c[2], c[3]])).collect();
    let norm: f32 = v.iter().map(|x| x * x).sum::<f32>().sqrt();
    v.iter().all(|x| x.is_finite() && x.abs() <= 1.0) && (norm - 1.0).abs() < 0.01
}

fn contains(hay: &[u8], needle: &[u8]) -> bool {
    hay.windows(needle.len()).any(|w| w == needle)
}

#[tokio::test]
async fn enrol_recognise_opt_out_and_delete() {
    let models = models();
    let (_env, state) =
        state_with(Engine::Sqlite, |c| c.faces.model_dir = Some(models.clone())).await;
    let c = Client::new(state.clone()).await;

    let (s, status) = c.call("GET", "/faces/status", None).await;
    assert_eq!(s, StatusCode::OK);
    assert_eq!(status["enabled"], true, "{status}");
    assert!(status.get("reason").is_none(), "{status}");

    let (s, a) = c.call("POST", "/faces/identities", Some(json!({ "name": "Person A" }))).await;
    assert_eq!(s, StatusCode::CREATED, "{a}");
    let a = a["id"].as_i64().unwrap();
    let (_, b) = c.call("POST", "/faces/identities", Some(json!({ "name": "Person B" }))).await;
    let b = b["id"].as_i64().unwrap();
    let (s, p) = c.call("POST", "/faces/identities", Some(json!({ "name": "  " }))).await;
    assert_eq!(s, StatusCode::UNPROCESSABLE_ENTITY, "{p}");
    assert_eq!(c.audit("faces.identity.create").await.len(), 2);

    let first = c.enrol(a, "obama.jpg").await;
    assert_eq!(first["identity_id"], a);
    assert_eq!(first["source"], "upload");
    assert!(first["quality"].as_f64().unwrap() > 0.5, "{first}");
    c.enrol(a, "obama2.jpg").await;
    c.enrol(b, "biden.jpg").await;
    let added = c.audit("faces.image.add").await;
    assert_eq!(added.len(), 3);
    for e in &added {
        let details = e.details.clone().unwrap().to_string();
        assert!(details.len() < 200, "no picture or embedding in the audit log: {details}");
    }
    let (_, list) = c.call("GET", &format!("/faces/identities/{a}/images"), None).await;
    assert_eq!(list["images"].as_array().unwrap().len(), 2, "{list}");
    let (s, ct, crop) =
        c.send("GET", &format!("/faces/embeddings/{}/crop.jpg", first["id"]), Body::None).await;
    assert_eq!(s, StatusCode::OK, "{crop}");
    assert_eq!(ct, "image/jpeg");

    // Other pictures of the same people.
    let r = c.recognize(picture("obama3.jpg"), "image/jpeg").await;
    let face = only_face(&r);
    assert_eq!(face["identity_id"], a, "{r}");
    assert_eq!(face["name"], "Person A", "{r}");
    assert!(face["score"].as_f64().unwrap() >= 0.45, "{r}");
    let r = c.recognize(picture("32bit.png"), "image/png").await;
    assert_eq!(only_face(&r)["identity_id"], a, "{r}");
    let biden = pv_face::image::decode(&picture("biden.jpg")).unwrap();
    let (w, h) = (biden.width() * 6 / 10, biden.height() * 6 / 10);
    let changed = pv_face::image::encode_jpeg(&biden.mirrored().resized(w, h), 90).unwrap();
    let r = c.recognize(changed, "image/jpeg").await;
    assert_eq!(only_face(&r)["identity_id"], b, "{r}");
    assert_eq!(r["width"], w, "{r}");
    // A stranger: one face, nobody's; a cup of coffee: no face.
    let r = c.recognize(picture("astronaut.png"), "image/png").await;
    let face = only_face(&r);
    assert_eq!(face["identity_id"], Value::Null, "{r}");
    assert_eq!(face["name"], Value::Null, "{r}");
    let r = c.recognize(picture("coffee.png"), "image/png").await;
    assert_eq!(r["faces"], json!([]), "{r}");

    // Bad input.
    let (s, ct, p) = c
        .send("POST", "/faces/recognize", Body::Raw("text/plain", b"not a picture".to_vec()))
        .await;
    assert_problem(s, &ct, &p, StatusCode::UNSUPPORTED_MEDIA_TYPE);
    let (s, ct, p) = c.send("POST", "/faces/recognize", Body::Json(json!({"x": 1}))).await;
    assert_problem(s, &ct, &p, StatusCode::UNSUPPORTED_MEDIA_TYPE);
    let (s, ct, p) = c
        .send("POST", "/faces/recognize", Body::Raw("image/jpeg", b"not a picture".to_vec()))
        .await;
    assert_problem(s, &ct, &p, StatusCode::UNPROCESSABLE_ENTITY);
    let (s, ct, p) =
        c.send("POST", "/faces/recognize", Body::Raw("image/jpeg", vec![0xff; 50 << 20])).await;
    assert_problem(s, &ct, &p, StatusCode::PAYLOAD_TOO_LARGE);
    let (s, ct, p) = c
        .send(
            "POST",
            &format!("/faces/identities/{a}/images"),
            Body::Raw("image/png", picture("coffee.png")),
        )
        .await;
    assert_problem(s, &ct, &p, StatusCode::UNPROCESSABLE_ENTITY);
    let (_, person) = c.call("GET", &format!("/faces/identities/{a}"), None).await;
    assert_eq!(person["embeddings"], 2, "nothing stored for a picture without a face: {person}");
    let (s, ct, p) = c
        .send(
            "POST",
            "/faces/identities/999999/images",
            Body::Raw("image/jpeg", picture("obama.jpg")),
        )
        .await;
    assert_problem(s, &ct, &p, StatusCode::NOT_FOUND);

    // Embeddings at rest are sealed: compare with what pv-face computes for the same picture.
    let engine = pv_face::FaceEngine::load(&pv_web::faces::engine_config(
        &state.config().faces,
        &state.config().data_dir,
    ))
    .unwrap();
    let plain = engine.analyse(&pv_face::image::decode(&picture("obama.jpg")).unwrap()).unwrap();
    let plain: Vec<u8> = plain[0].embedding.iter().flat_map(|x| x.to_le_bytes()).collect();
    let rows = face_embedding::Entity::find()
        .filter(face_embedding::Column::IdentityId.eq(a))
        .all(&state.dbs().faces)
        .await
        .unwrap();
    assert_eq!(rows.len(), 2);
    for row in &rows {
        assert!(!contains(&row.vector, &plain[..16]), "embedding stored in the clear");
        assert!(!looks_like_embedding(&row.vector, engine.dimensions()), "embedding in the clear");
        let crop = row.crop.as_ref().unwrap();
        assert!(!crop.starts_with(&[0xff, 0xd8]), "crop stored as a plain JPEG");
    }

    // A face event of person A on a camera the admin sees.
    let (s, cam) = c
        .call(
            "POST",
            "/cameras",
            Some(json!({ "name": "door", "main_url": "rtsp://127.0.0.1:9/x", "enabled": false })),
        )
        .await;
    assert_eq!(s, StatusCode::CREATED, "{cam}");
    let cam = cam["id"].as_i64().unwrap();
    let event = |identity: i64| face_match::ActiveModel {
        identity_id: Set(Some(identity)),
        camera_id: Set(cam),
        seen_at: Set(chrono::Utc::now()),
        distance: Set(0.5),
        confidence: Set(0.9),
        bbox: Set(json!({ "x": 1.0, "y": 2.0, "w": 30.0, "h": 30.0 })),
        score: Set(0.8),
        frame_width: Set(640),
        frame_height: Set(360),
        ..Default::default()
    };
    let e1 = event(a).insert(&state.dbs().faces).await.unwrap().id;
    // Another camera's event, on a camera that does not exist: nobody's to see.
    face_match::ActiveModel { camera_id: Set(cam + 1000), ..event(a) }
        .insert(&state.dbs().faces)
        .await
        .unwrap();
    let (s, events) = c.call("GET", &format!("/faces/events?identity_id={a}"), None).await;
    assert_eq!(s, StatusCode::OK, "{events}");
    let list = events["events"].as_array().unwrap();
    assert_eq!(list.len(), 1, "{events}");
    assert_eq!(list[0]["id"], e1);
    assert_eq!(list[0]["name"], "Person A");
    assert_eq!(list[0]["segment_id"], Value::Null);
    assert_eq!(list[0]["box"]["w"], 30.0);
    let (s, p) = c
        .call(
            "POST",
            &format!("/faces/events/{e1}/label"),
            Some(json!({ "identity_id": b, "correct": true })),
        )
        .await;
    assert_eq!(s, StatusCode::UNPROCESSABLE_ENTITY, "an event without a stored face: {p}");

    // Opt-out: still found, never named; past events lose the name.
    let (s, p) =
        c.call("PATCH", &format!("/faces/identities/{a}"), Some(json!({ "opt_out": true }))).await;
    assert_eq!(s, StatusCode::OK, "{p}");
    assert_eq!(p["opt_out"], true);
    let r = c.recognize(picture("obama3.jpg"), "image/jpeg").await;
    assert_eq!(only_face(&r)["identity_id"], Value::Null, "{r}");
    assert_eq!(only_face(&r)["name"], Value::Null, "{r}");
    let updates = c.audit("faces.identity.update").await;
    assert_eq!(updates.len(), 1);
    assert_eq!(updates[0].target_id.as_deref(), Some(a.to_string().as_str()));
    assert_eq!(
        updates[0].details.as_ref().unwrap()["opt_out"],
        json!({ "from": false, "to": true })
    );
    let (_, events) = c.call("GET", &format!("/faces/events?identity_id={a}"), None).await;
    assert_eq!(events["events"], json!([]), "{events}");
    let (s, p) = c
        .call(
            "PATCH",
            &format!("/faces/identities/{a}"),
            Some(json!({ "opt_out": false, "notes": "front door" })),
        )
        .await;
    assert_eq!(s, StatusCode::OK, "{p}");
    assert_eq!(p["notes"], "front door");
    let r = c.recognize(picture("obama3.jpg"), "image/jpeg").await;
    assert_eq!(only_face(&r)["identity_id"], a, "opted back in: {r}");
    let e2 = event(a).insert(&state.dbs().faces).await.unwrap().id;

    // Deletion: no embedding of A remains, events lose the identity, audited.
    let (s, p) = c.call("DELETE", &format!("/faces/identities/{a}"), None).await;
    assert_eq!(s, StatusCode::NO_CONTENT, "{p}");
    let left = face_embedding::Entity::find()
        .filter(face_embedding::Column::IdentityId.eq(a))
        .count(&state.dbs().faces)
        .await
        .unwrap();
    assert_eq!(left, 0);
    let (_, ev) = c.call("GET", &format!("/faces/events?camera_id={cam}"), None).await;
    let ev = ev["events"].as_array().unwrap().iter().find(|e| e["id"] == e2).unwrap().clone();
    assert_eq!(ev["identity_id"], Value::Null, "{ev}");
    assert_eq!(ev["name"], Value::Null, "{ev}");
    let deletes = c.audit("faces.identity.delete").await;
    assert_eq!(deletes.len(), 1);
    assert_eq!(deletes[0].details.as_ref().unwrap()["embeddings"], 2);
    let (s, _) = c.call("GET", &format!("/faces/identities/{a}"), None).await;
    assert_eq!(s, StatusCode::NOT_FOUND);
    let r = c.recognize(picture("obama3.jpg"), "image/jpeg").await;
    assert_eq!(only_face(&r)["identity_id"], Value::Null, "A is forgotten: {r}");

    // One image of B deleted: B has none left, and is no longer recognised.
    let (_, imgs) = c.call("GET", &format!("/faces/identities/{b}/images"), None).await;
    let img = imgs["images"][0]["id"].as_i64().unwrap();
    let (s, _) = c.call("DELETE", &format!("/faces/embeddings/{img}"), None).await;
    assert_eq!(s, StatusCode::NO_CONTENT);
    assert_eq!(c.audit("faces.image.delete").await.len(), 1);
    let r = c.recognize(picture("biden.jpg"), "image/jpeg").await;
    assert_eq!(only_face(&r)["identity_id"], Value::Null, "{r}");
}

#[tokio::test]
async fn a_corrupt_model_disables_faces_only() {
    let models = models();
    let dir = tempfile::tempdir().unwrap();
    for f in std::fs::read_dir(&models).unwrap() {
        let f = f.unwrap().path();
        std::fs::copy(&f, dir.path().join(f.file_name().unwrap())).unwrap();
    }
    let embedder = std::fs::read(models.join("fr_feature.onnx")).unwrap();
    std::fs::write(dir.path().join("fr_feature.onnx"), &embedder[..embedder.len() / 3]).unwrap();
    let model_dir = dir.path().to_path_buf();
    let (_env, state) = state_with(Engine::Sqlite, |c| c.faces.model_dir = Some(model_dir)).await;
    let c = Client::new(state).await;

    let (s, status) = c.call("GET", "/faces/status", None).await;
    assert_eq!(s, StatusCode::OK);
    assert_eq!(status["enabled"], false, "{status}");
    assert!(!status["reason"].as_str().unwrap_or_default().is_empty(), "{status}");
    let (s, ct, p) =
        c.send("POST", "/faces/recognize", Body::Raw("image/jpeg", picture("obama.jpg"))).await;
    assert_problem(s, &ct, &p, StatusCode::SERVICE_UNAVAILABLE);
    let (s, a) = c.call("POST", "/faces/identities", Some(json!({ "name": "Person A" }))).await;
    assert_eq!(s, StatusCode::CREATED, "people can be listed and enrolled without a model: {a}");
    let (s, ct, p) = c
        .send(
            "POST",
            &format!("/faces/identities/{}/images", a["id"]),
            Body::Raw("image/jpeg", picture("obama.jpg")),
        )
        .await;
    assert_problem(s, &ct, &p, StatusCode::SERVICE_UNAVAILABLE);
    let (s, list) = c.call("GET", "/faces/identities", None).await;
    assert_eq!(s, StatusCode::OK, "{list}");
    let (s, _) = c.call("GET", "/system", None).await;
    assert_eq!(s, StatusCode::OK, "the rest of the server works");
    let (s, _) = c.call("GET", "/cameras", None).await;
    assert_eq!(s, StatusCode::OK);
}

#[tokio::test]
async fn the_event_stream_is_open_and_guarded() {
    use tokio::io::AsyncReadExt;
    let models = models();
    let (_env, state) = state_with(Engine::Sqlite, |c| c.faces.model_dir = Some(models)).await;
    let c = Client::new(state.clone()).await;
    let resp =
        c.cli.get("/api/v1/faces/events/stream").header("cookie", c.cookie.clone()).send().await;
    resp.assert_status_is_ok();
    resp.assert_header("content-type", "text/event-stream");
    // No camera is visible: nothing arrives but keep-alive comments. The stream is open.
    let mut body = resp.0.into_body().into_async_read();
    let mut buf = [0u8; 64];
    let read =
        tokio::time::timeout(std::time::Duration::from_millis(300), body.read(&mut buf)).await;
    assert!(read.is_err(), "no event for a camera the caller cannot see");

    let anon = c.cli.get("/api/v1/faces/events/stream").send().await;
    anon.assert_status(StatusCode::UNAUTHORIZED);
}

/// A camera frame goes through the same path as live frames: its faces become stored events
/// (sealed crop and embedding, at most one per person every `STORE_EVERY`), the segment it
/// falls in learns that it has faces (not whose), and a user teaches the gallery from events:
/// "not Person A" stops the wrong match, naming an unknown face enrols them.
#[tokio::test]
async fn camera_frames_become_events_that_teach_the_gallery() {
    let models = models();
    let (_env, state) =
        state_with(Engine::Sqlite, |c| c.faces.model_dir = Some(models.clone())).await;
    let c = Client::new(state.clone()).await;
    let faces = state.faces();
    let (_, a) = c.call("POST", "/faces/identities", Some(json!({ "name": "Person A" }))).await;
    let a = a["id"].as_i64().unwrap();
    c.enrol(a, "obama.jpg").await;
    c.enrol(a, "obama2.jpg").await;

    let now = chrono::Utc::now();
    let settings = pv_core::cameras::CameraSettings::new("Porch", "rtsp://192.0.2.10/stream");
    let cam = pv_core::cameras::create(&state.dbs().records, &settings, now).await.unwrap();
    let seg = pv_core::recordings::NewSegment {
        camera: pv_core::ids::CameraId(cam.id),
        started_at: now - chrono::Duration::seconds(30),
        ended_at: now + chrono::Duration::seconds(30),
        media_start_ns: 0,
        media_end_ns: 60_000_000_000,
        duration_ms: 60_000,
        size_bytes: 1024,
        video_codec: "h264".into(),
        audio_codec: None,
        width: Some(1280),
        height: Some(720),
        path: "cam/0.mp4".into(),
        motion: false,
        end_reason: "duration".into(),
    };
    let seg = pv_core::recordings::insert_segment(&state.dbs().records, &seg, now).await.unwrap();

    let frame = pv_face::image::decode(&picture("obama3.jpg")).unwrap();
    let mut feed = faces.subscribe();
    let events = faces.process_frame(cam.id, now, frame.clone()).await.unwrap();
    assert_eq!(events.len(), 1, "{events:?}");
    let event = &events[0];
    assert_eq!(event.identity_id, Some(a));
    assert_eq!(event.name.as_deref(), Some("Person A"));
    assert!(event.score > 0.45, "{event:?}");
    let id = event.id.expect("the first sighting is stored");
    assert_eq!(feed.try_recv().unwrap().id, Some(id), "published to live listeners");
    // The same person again at once: published, not stored again.
    let again = faces.process_frame(cam.id, now, frame).await.unwrap();
    assert_eq!(again.len(), 1);
    assert_eq!(again[0].id, None, "{again:?}");
    assert_eq!(face_match::Entity::find().count(&state.dbs().faces).await.unwrap(), 1);

    // At rest: the crop and the embedding are sealed.
    let row = face_match::Entity::find_by_id(id).one(&state.dbs().faces).await.unwrap().unwrap();
    let sealed = row.embedding.clone().unwrap();
    assert!(!looks_like_embedding(&sealed, 512), "a plaintext embedding in face_matches");
    assert!(!looks_like_embedding(&sealed[sealed.len() - 2048..], 512));
    let crop = row.crop.clone().unwrap();
    assert!(!crop.starts_with(&[0xff, 0xd8]), "a plaintext JPEG crop in face_matches");
    let (s, ct, _) = c.send("GET", &format!("/faces/events/{id}/crop.jpg"), Body::None).await;
    assert_eq!((s, ct.as_str()), (StatusCode::OK, "image/jpeg"));

    // The records database learns that the segment has faces; the event learns its segment.
    assert_eq!(faces.maintain().await.unwrap(), 1);
    let seg_row = pv_core::db::records::segment::Entity::find_by_id(seg.0)
        .one(&state.dbs().records)
        .await
        .unwrap()
        .unwrap();
    assert!(seg_row.has_faces);
    let (_, listed) = c.call("GET", &format!("/faces/events?camera_id={}", cam.id), None).await;
    let listed = listed["events"].as_array().unwrap().clone();
    assert_eq!(listed.len(), 1, "{listed:?}");
    assert_eq!(listed[0]["segment_id"], seg.0);
    assert_eq!(listed[0]["name"], "Person A");

    // "Not Person A": a negative example that vetoes this face for them from now on.
    let (s, labelled) = c
        .call(
            "POST",
            &format!("/faces/events/{id}/label"),
            Some(json!({ "identity_id": a, "correct": false })),
        )
        .await;
    assert_eq!(s, StatusCode::OK, "{labelled}");
    assert_eq!(labelled["identity_id"], Value::Null, "{labelled}");
    assert_eq!(labelled["labelled"], true, "{labelled}");
    let r = c.recognize(picture("obama3.jpg"), "image/jpeg").await;
    assert_eq!(only_face(&r)["identity_id"], Value::Null, "vetoed by the negative example: {r}");
    let r = c.recognize(picture("obama2.jpg"), "image/jpeg").await;
    assert_eq!(only_face(&r)["identity_id"], a, "other pictures still match: {r}");
    assert_eq!(c.audit("faces.event.label").await.len(), 1);

    // An unknown face seen by the camera, named afterwards: the person is enrolled from it.
    let stranger = pv_face::image::decode(&picture("astronaut.png")).unwrap();
    let later = now + chrono::Duration::seconds(5);
    let events = faces.process_frame(cam.id, later, stranger).await.unwrap();
    assert_eq!(events.len(), 1, "{events:?}");
    assert_eq!(events[0].identity_id, None);
    let unknown = events[0].id.expect("stored");
    let (_, u) = c.call("GET", "/faces/events?unknown=true", None).await;
    assert!(
        u["events"].as_array().unwrap().iter().any(|e| e["id"] == unknown),
        "listed among unknown faces: {u}"
    );
    let (_, cdr) = c.call("POST", "/faces/identities", Some(json!({ "name": "Person C" }))).await;
    let cdr = cdr["id"].as_i64().unwrap();
    let (s, named) = c
        .call(
            "POST",
            &format!("/faces/events/{unknown}/label"),
            Some(json!({ "identity_id": cdr, "correct": true })),
        )
        .await;
    assert_eq!(s, StatusCode::OK, "{named}");
    assert_eq!(named["name"], "Person C", "{named}");
    let r = c.recognize(picture("astronaut.png"), "image/jpeg").await;
    assert_eq!(only_face(&r)["identity_id"], cdr, "{r}");
    let (_, imgs) = c.call("GET", &format!("/faces/identities/{cdr}/images"), None).await;
    assert_eq!(imgs["images"][0]["source"], "recording", "{imgs}");
    assert_eq!(imgs["images"][0]["event_id"], unknown, "{imgs}");

    // Opting out: no more events of that person, and their past events lose the name.
    let (s, _) = c
        .call("PATCH", &format!("/faces/identities/{cdr}"), Some(json!({ "opt_out": true })))
        .await;
    assert_eq!(s, StatusCode::OK);
    let stranger = pv_face::image::decode(&picture("astronaut.png")).unwrap();
    let events =
        faces.process_frame(cam.id, later + chrono::Duration::seconds(10), stranger).await.unwrap();
    assert!(events.is_empty(), "an opted-out person leaves no event: {events:?}");
    let row =
        face_match::Entity::find_by_id(unknown).one(&state.dbs().faces).await.unwrap().unwrap();
    assert_eq!(row.identity_id, None);
    assert!(row.crop.is_none() && row.embedding.is_none());
}
