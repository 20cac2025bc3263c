//! Cameras and recordings through the REST API, in process, with real recorders reading
//! simulated RTSP cameras (`pv_media::testcam`).

use std::time::{Duration, Instant};

use poem::http::StatusCode;
use poem::test::TestClient;
use pv_core::testkit::Engine;
use pv_media::testcam::{Clip, TestCamera};
use sea_orm::EntityTrait;
use serde_json::{Value, json};

use crate::{csrf_token, session_cookie, state_with, user_with_role};

async fn json_of(resp: poem::test::TestResponse) -> (StatusCode, Value) {
    let status = resp.0.status();
    let body = resp.0.into_body().into_string().await.unwrap();
    (status, serde_json::from_str(&body).unwrap_or(Value::Null))
}

#[tokio::test]
async fn cameras_are_created_changed_and_deleted_with_clear_errors() {
    let (_env, state) = state_with(Engine::Sqlite, |c| c.recording.enabled = false).await;
    let cli = TestClient::new(pv_web::app::build(state.clone()));
    let admin_id = user_with_role(&state, "admin", Some("System Administrator"), None).await;
    let admin = session_cookie(&state, admin_id).await;
    let csrf = |path: &str| csrf_token(&state, admin_id, path);
    let post = |body: Value| {
        cli.post("/api/v1/cameras")
            .header("cookie", admin.clone())
            .header("x-csrf-token", csrf("/cameras"))
            .body_json(&body)
            .send()
    };

    // Credentials in the URL move to the credential fields; the password is never shown.
    let (status, cam) = json_of(
        post(json!({
            "name": "Front door",
            "main_url": "rtsp://admin:s%40cret@127.0.0.1:8554/cam",
            "recording_mode": "motion",
            "timezone": "Europe/Paris",
        }))
        .await,
    )
    .await;
    assert_eq!(status, StatusCode::CREATED, "{cam}");
    assert_eq!(cam["main_url"], "rtsp://127.0.0.1:8554/cam");
    assert_eq!(cam["username"], "admin");
    assert_eq!(cam["has_password"], true);
    assert_eq!(cam["recording_mode"], "motion");
    assert_eq!(cam["status"]["state"], "disabled", "recording is off in this server: {cam}");
    assert_eq!(cam["ingest_dir"], format!("cameras/id-{}", cam["id"]));
    assert!(!cam.to_string().contains("s@cret") && !cam.to_string().contains("s%40cret"));
    let id = cam["id"].as_i64().unwrap();
    let stored = pv_core::cameras::get(&state.dbs().records, id).await.unwrap();
    let sealed = stored.password.unwrap();
    assert!(!sealed.contains("s@cret"), "stored sealed, not in clear");
    assert_eq!(state.key().open(&sealed).unwrap(), "s@cret");

    // Bad input: a clear 400/409 problem, and nothing stored.
    for (body, status, needle) in [
        (json!({ "name": "x", "main_url": "http://127.0.0.1/cam" }), 400, "rtsp://"),
        (json!({ "name": "x", "main_url": "rtsp://" }), 400, "main stream URL"),
        (
            json!({ "name": "x", "main_url": "rtsp://h/x", "recording_mode": "sometimes" }),
            400,
            "recording_mode",
        ),
        (
            json!({ "name": "x", "main_url": "rtsp://h/x", "timezone": "Mars/Olympus" }),
            400,
            "time zone",
        ),
        (
            json!({ "name": "x", "main_url": "rtsp://h/x", "segment_seconds": 0 }),
            400,
            "segment_seconds",
        ),
        (json!({ "name": "", "main_url": "rtsp://h/x" }), 400, "name"),
        (json!({ "name": "FRONT DOOR", "main_url": "rtsp://h/x" }), 409, "exists already"),
    ] {
        let (got, problem) = json_of(post(body.clone()).await).await;
        assert_eq!(got.as_u16(), status, "{body} -> {problem}");
        assert!(problem["detail"].as_str().unwrap().contains(needle), "{body} -> {problem}");
    }
    assert_eq!(pv_core::cameras::list(&state.dbs().records).await.unwrap().len(), 1);

    // PATCH: only present fields change; null clears.
    let (status, cam) = json_of(
        cli.patch(format!("/api/v1/cameras/{id}"))
            .header("cookie", admin.clone())
            .header("x-csrf-token", csrf("/cameras/{id}"))
            .body_json(&json!({ "name": "Porch", "password": null, "timezone": null, "segment_seconds": 30 }))
            .send()
            .await,
    )
    .await;
    assert_eq!(status, StatusCode::OK, "{cam}");
    assert_eq!(cam["name"], "Porch");
    assert_eq!(cam["has_password"], false);
    assert_eq!(cam["timezone"], Value::Null);
    assert_eq!(cam["segment_seconds"], 30);
    assert_eq!(cam["username"], "admin", "absent fields are untouched");

    // A weekly schedule: checked, stored, and it decides what the camera records now.
    let put_schedule = |body: Value| {
        cli.put(format!("/api/v1/cameras/{id}/schedule"))
            .header("cookie", admin.clone())
            .header("x-csrf-token", csrf("/cameras/{id}/schedule"))
            .body_json(&body)
            .send()
    };
    for (windows, needle) in [
        (
            json!([{ "mode": "off", "days": ["someday"], "start": "08:00", "end": "18:00" }]),
            "someday",
        ),
        (json!([{ "mode": "off", "days": ["mon"], "start": "8am", "end": "18:00" }]), "HH:MM"),
        (
            json!([{ "mode": "off", "days": ["mon"], "start": "08:00", "end": "08:00" }]),
            "whole day",
        ),
        (json!([{ "mode": "never", "days": ["mon"], "start": "08:00", "end": "09:00" }]), "never"),
        (json!([{ "mode": "off", "days": [], "start": "08:00", "end": "09:00" }]), "days_of_week"),
    ] {
        let (status, problem) = json_of(put_schedule(json!({ "windows": windows })).await).await;
        assert_eq!(status, StatusCode::BAD_REQUEST, "{windows} -> {problem}");
        assert!(problem["detail"].as_str().unwrap().contains(needle), "{windows} -> {problem}");
    }
    let all_week = json!(["mon", "tue", "wed", "thu", "fri", "sat", "sun"]);
    let (status, sched) = json_of(
        put_schedule(json!({ "windows": [
            { "mode": "off", "days": all_week, "start": "00:00", "end": "24:00", "priority": 1 },
            { "mode": "continuous", "days": ["sat"], "start": "22:00", "end": "06:00" },
        ] }))
        .await,
    )
    .await;
    assert_eq!(status, StatusCode::OK, "{sched}");
    assert_eq!(sched["timezone"], "UTC", "no camera or property time zone: UTC");
    assert_eq!(sched["mode_now"], "off", "{sched}");
    assert_eq!(sched["from_schedule"], true);
    assert_eq!(sched["windows"].as_array().unwrap().len(), 2);
    assert_eq!(sched["windows"][1]["end"], "06:00");
    let local = chrono::NaiveDateTime::parse_from_str(
        sched["local_time"].as_str().unwrap(),
        "%Y-%m-%dT%H:%M:%S",
    )
    .unwrap();
    assert!((local - chrono::Utc::now().naive_utc()).num_seconds().abs() < 5, "{sched}");
    let (_, cleared) = json_of(put_schedule(json!({ "windows": [] })).await).await;
    assert_eq!(cleared["mode_now"], "motion", "the camera's own mode again: {cleared}");

    // MAC address: a first sighting is stored quietly and moves the ingest directory to the
    // MAC; a change of a known address is recorded and raises an alert.
    use pv_core::cameras::MacOutcome;
    let row = pv_core::cameras::get(&state.dbs().records, id).await.unwrap();
    let learned = state.nvr().record_mac(&row, "192.0.2.10", "aa:bb:cc:00:11:22").await;
    assert_eq!(learned, MacOutcome::Learned("aa:bb:cc:00:11:22".into()));
    let row = pv_core::cameras::get(&state.dbs().records, id).await.unwrap();
    assert_eq!(
        state.nvr().record_mac(&row, "192.0.2.10", "aa:bb:cc:00:11:22").await,
        MacOutcome::Unchanged
    );
    let (_, shown) = json_of(
        cli.get(format!("/api/v1/cameras/{id}")).header("cookie", admin.clone()).send().await,
    )
    .await;
    assert_eq!(shown["mac_address"], "aa:bb:cc:00:11:22");
    assert_eq!(shown["ingest_dir"], "cameras/mac-aa-bb-cc-00-11-22");
    let changed = state.nvr().record_mac(&row, "192.0.2.10", "de:ad:be:ef:00:01").await;
    assert_eq!(
        changed,
        MacOutcome::Changed { old: "aa:bb:cc:00:11:22".into(), new: "de:ad:be:ef:00:01".into() }
    );
    let changes = pv_core::db::records::camera_mac_change::Entity::find()
        .all(&state.dbs().records)
        .await
        .unwrap();
    assert_eq!(changes.len(), 1, "only the change of a known address is recorded");
    assert_eq!(changes[0].old_mac.as_deref(), Some("aa:bb:cc:00:11:22"));
    assert!(changes[0].alerted);
    let alerts: Vec<_> = pv_core::db::users::audit_event::Entity::find()
        .all(&state.dbs().users)
        .await
        .unwrap()
        .into_iter()
        .filter(|e| e.action == "camera.mac_changed")
        .collect();
    assert_eq!(alerts.len(), 1, "one alert, for the change only");

    let (status, list) =
        json_of(cli.get("/api/v1/cameras").header("cookie", admin.clone()).send().await).await;
    assert_eq!(status, StatusCode::OK);
    assert_eq!(list.as_array().unwrap().len(), 1);

    // Without the page's CSRF token a browser session cannot delete.
    let resp =
        cli.delete(format!("/api/v1/cameras/{id}")).header("cookie", admin.clone()).send().await;
    assert_eq!(resp.0.status(), StatusCode::FORBIDDEN);
    let resp = cli
        .delete(format!("/api/v1/cameras/{id}"))
        .header("cookie", admin.clone())
        .header("x-csrf-token", csrf("/cameras/{id}"))
        .send()
        .await;
    assert_eq!(resp.0.status(), StatusCode::NO_CONTENT);
    let (status, problem) = json_of(
        cli.get(format!("/api/v1/cameras/{id}")).header("cookie", admin.clone()).send().await,
    )
    .await;
    assert_eq!(status, StatusCode::NOT_FOUND, "{problem}");

    // Every change is in the audit log, without the password.
    let events =
        pv_core::db::users::audit_event::Entity::find().all(&state.dbs().users).await.unwrap();
    let actions: Vec<&str> = events.iter().map(|e| e.action.as_str()).collect();
    for a in ["camera.create", "camera.update", "camera.delete"] {
        assert!(actions.contains(&a), "{actions:?}");
    }
    assert!(events.iter().all(|e| !format!("{e:?}").contains("s@cret")));
}

/// Poll `GET path` until `done(json)` or the timeout.
async fn wait_json(
    cli: &TestClient<poem::endpoint::BoxEndpoint<'static>>,
    cookie: &str,
    path: &str,
    timeout: Duration,
    done: impl Fn(&Value) -> bool,
) -> Value {
    let deadline = Instant::now() + timeout;
    loop {
        let (_, body) =
            json_of(cli.get(path).header("cookie", cookie.to_owned()).send().await).await;
        if done(&body) || Instant::now() > deadline {
            return body;
        }
        tokio::time::sleep(Duration::from_millis(250)).await;
    }
}

/// Width and height from a JPEG's SOF0/SOF2 marker.
fn jpeg_size(data: &[u8]) -> Option<(u16, u16)> {
    let mut i = 2;
    while i + 9 < data.len() {
        if data[i] != 0xFF {
            return None;
        }
        let marker = data[i + 1];
        let len = usize::from(u16::from_be_bytes([data[i + 2], data[i + 3]]));
        if matches!(marker, 0xC0 | 0xC2) {
            let h = u16::from_be_bytes([data[i + 5], data[i + 6]]);
            let w = u16::from_be_bytes([data[i + 7], data[i + 8]]);
            return Some((w, h));
        }
        i += 2 + len;
    }
    None
}

fn ffprobe(path: &std::path::Path) -> (String, f64) {
    let out = std::process::Command::new("ffprobe")
        .args(["-v", "error", "-select_streams", "v:0", "-show_entries"])
        .args(["stream=codec_name:format=duration", "-of", "default=nw=1"])
        .arg(path)
        .output()
        .unwrap();
    assert!(
        out.status.success() && out.stderr.is_empty(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let text = String::from_utf8_lossy(&out.stdout).into_owned();
    let field = |n: &str| {
        text.lines().find_map(|l| l.strip_prefix(&format!("{n}="))).unwrap_or("").to_owned()
    };
    (field("codec_name"), field("duration").parse().unwrap_or(0.0))
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_camera_added_through_the_api_records_indexed_segments_and_survives_an_outage() {
    let mut cam = TestCamera::start(Clip::Moving).unwrap();
    let bad = TestCamera::start(Clip::Garbage).unwrap();
    let locked = TestCamera::start_with(
        Clip::Moving,
        pv_media::testcam::TestCameraOptions {
            credentials: Some(("viewer".into(), "right".into())),
            ..Default::default()
        },
    )
    .unwrap();
    let (_env, state) = state_with(Engine::Sqlite, |c| c.recording.segment_seconds = 3).await;
    let cli = TestClient::new(pv_web::app::build(state.clone()));
    let admin_id = user_with_role(&state, "admin", Some("System Administrator"), None).await;
    let admin = session_cookie(&state, admin_id).await;
    let create = |name: &str, url: String| {
        cli.post("/api/v1/cameras")
            .header("cookie", admin.clone())
            .header("x-csrf-token", csrf_token(&state, admin_id, "/cameras"))
            .body_json(&json!({ "name": name, "main_url": url }))
            .send()
    };
    // The sub stream (here the same stream) is watched for motion beside continuous recording.
    let (status, body) = json_of(
        cli.post("/api/v1/cameras")
            .header("cookie", admin.clone())
            .header("x-csrf-token", csrf_token(&state, admin_id, "/cameras"))
            .body_json(&json!({ "name": "Yard", "main_url": cam.url(), "sub_url": cam.url() }))
            .send()
            .await,
    )
    .await;
    assert_eq!(status, StatusCode::CREATED, "{body}");
    let id = body["id"].as_i64().unwrap();
    // The test ball is small: the whole frame, most sensitive.
    let zones = |body: Value| {
        cli.put(format!("/api/v1/cameras/{id}/motion-zones"))
            .header("cookie", admin.clone())
            .header("x-csrf-token", csrf_token(&state, admin_id, "/cameras/{id}/motion-zones"))
            .body_json(&body)
            .send()
    };
    let (status, problem) = json_of(
        zones(json!({ "zones": [{ "name": "x", "polygon": [[0, 0], [2, 0], [1, 1]] }] })).await,
    )
    .await;
    assert_eq!(status, StatusCode::BAD_REQUEST, "{problem}");
    let (status, set) = json_of(
        zones(json!({ "zones": [
            { "name": "all", "polygon": [[0, 0], [1, 0], [1, 1], [0, 1]], "sensitivity": 1.0 },
        ] }))
        .await,
    )
    .await;
    assert_eq!(status, StatusCode::OK, "{set}");
    assert_eq!(set[0]["polygon"][2], json!([1.0, 1.0]));
    // Bad cameras next to it: unreachable, and an RTSP stream of garbage.
    let (_, unreachable) = json_of(create("Gone", "rtsp://127.0.0.1:9/none".into()).await).await;
    let (_, garbage) = json_of(create("Noise", bad.url()).await).await;
    let (_, wrong_login) =
        json_of(create("Locked", locked.url().replace("rtsp://", "rtsp://viewer:wrong@")).await)
            .await;

    let list = format!("/api/v1/recordings?camera_id={id}");
    let segs = wait_json(&cli, &admin, &list, Duration::from_secs(30), |v| {
        v.as_array()
            .is_some_and(|a| a.iter().filter(|s| s["end_reason"] == "duration").count() >= 3)
    })
    .await;
    let segs = segs.as_array().unwrap().clone();
    assert!(segs.len() >= 3, "3 segments listed: {segs:?}");
    for s in &segs {
        let row = pv_core::recordings::get_segment(
            &state.dbs().records,
            pv_core::ids::SegmentId(s["id"].as_i64().unwrap()),
        )
        .await
        .unwrap();
        let (codec, duration) = ffprobe(&state.config().data_dir.join(&row.path));
        assert_eq!(codec, "h264");
        // (Zone changes restart only the motion watcher; a short segment ends only at shutdown.)
        if s["end_reason"] == "duration" {
            assert!((duration - 3.0).abs() <= 1.0, "within one GOP of 3 s: {duration}");
        } else {
            assert_eq!(s["end_reason"], "shutdown", "{s}");
        }
        assert_eq!(s["codec"], "h264");
        assert_eq!(
            s["bytes"].as_i64().unwrap() as u64,
            std::fs::metadata(state.config().data_dir.join(&row.path)).unwrap().len()
        );
    }
    // The moving ball is motion: an event is open and the segments are flagged.
    let motion = wait_json(
        &cli,
        &admin,
        &format!("/api/v1/events?camera_id={id}&kind=motion"),
        Duration::from_secs(10),
        |v| v.as_array().is_some_and(|a| !a.is_empty()),
    )
    .await;
    assert!(!motion.as_array().unwrap().is_empty(), "motion events: {motion}");
    assert!(motion[0]["score"].as_f64().unwrap() > 0.0, "{motion}");
    let flagged = wait_json(&cli, &admin, &list, Duration::from_secs(10), |v| {
        v.as_array().is_some_and(|a| a.iter().any(|s| s["motion"] == true))
    })
    .await;
    assert!(flagged.as_array().unwrap().iter().any(|s| s["motion"] == true), "{flagged}");
    let (_, cam_json) = json_of(
        cli.get(format!("/api/v1/cameras/{id}")).header("cookie", admin.clone()).send().await,
    )
    .await;
    assert_eq!(cam_json["status"]["state"], "streaming", "{cam_json}");
    assert_eq!(cam_json["video_codec"], "h264");
    assert_eq!(cam_json["width"], 1280);

    // Range requests: a player can seek.
    let first = segs[0]["id"].as_i64().unwrap();
    let bytes = segs[0]["bytes"].as_i64().unwrap();
    let resp = cli
        .get(format!("/api/v1/recordings/{first}/media"))
        .header("cookie", admin.clone())
        .header("range", "bytes=0-99")
        .send()
        .await;
    assert_eq!(resp.0.status(), StatusCode::PARTIAL_CONTENT);
    assert_eq!(resp.0.headers()["content-range"], format!("bytes 0-99/{bytes}").as_str());
    let body = resp.0.into_body().into_bytes().await.unwrap();
    assert_eq!(body.len(), 100);
    assert_eq!(&body[4..8], b"ftyp", "an MP4 starts with its ftyp box");
    let resp = cli
        .get(format!("/api/v1/recordings/{first}/media"))
        .header("cookie", admin.clone())
        .header("range", format!("bytes={bytes}-"))
        .send()
        .await;
    assert_eq!(resp.0.status(), StatusCode::RANGE_NOT_SATISFIABLE);
    let full = cli
        .get(format!("/api/v1/recordings/{first}/media"))
        .header("cookie", admin.clone())
        .send()
        .await;
    assert_eq!(full.0.status(), StatusCode::OK);
    assert_eq!(full.0.into_body().into_bytes().await.unwrap().len() as i64, bytes);

    // A snapshot of the live stream, decoded on demand.
    let resp = cli
        .get(format!("/api/v1/cameras/{id}/snapshot.jpg?width=640"))
        .header("cookie", admin.clone())
        .send()
        .await;
    assert_eq!(resp.0.status(), StatusCode::OK);
    assert_eq!(resp.0.headers()["content-type"], "image/jpeg");
    let jpeg = resp.0.into_body().into_bytes().await.unwrap();
    assert_eq!(&jpeg[..2], &[0xFF, 0xD8], "a JPEG starts with SOI");
    assert_eq!(jpeg_size(&jpeg), Some((640, 360)), "scaled to the asked width");

    // Export of the first two segments' span: one MP4, not transcoded, audited.
    let from = segs[0]["started_at"].as_str().unwrap().to_owned();
    let to = segs[1]["ended_at"].as_str().unwrap().to_owned();
    let resp = cli
        .get(format!("/api/v1/cameras/{id}/export.mp4"))
        .query("from", &from)
        .query("to", &to)
        .header("cookie", admin.clone())
        .send()
        .await;
    assert_eq!(resp.0.status(), StatusCode::OK);
    assert!(resp.0.headers()["content-disposition"].to_str().unwrap().starts_with("attachment"));
    let mp4 = resp.0.into_body().into_bytes().await.unwrap();
    let exported = state.config().data_dir.join("exported.mp4");
    std::fs::write(&exported, &mp4).unwrap();
    let (codec, duration) = ffprobe(&exported);
    let want = (segs[0]["duration_ms"].as_f64().unwrap()
        + segs[1]["duration_ms"].as_f64().unwrap())
        / 1000.0;
    assert_eq!(codec, "h264");
    assert!((duration - want).abs() < 1.1, "export lasts {duration} s, the two segments {want} s");
    assert!(
        std::fs::read_dir(state.config().data_dir.join("exports")).unwrap().next().is_none(),
        "no export file is left behind"
    );
    let (status, problem) = json_of(
        cli.get(format!("/api/v1/cameras/{id}/export.mp4"))
            .query("from", &"2001-01-01T00:00:00Z")
            .query("to", &"2001-01-01T01:00:00Z")
            .header("cookie", admin.clone())
            .send()
            .await,
    )
    .await;
    assert_eq!(status, StatusCode::NOT_FOUND, "{problem}");
    assert!(problem["detail"].as_str().unwrap().contains("no footage"));

    // The bad cameras have a clear status and never stopped the good one.
    for (bad, what) in
        [(&unreachable, "unreachable"), (&garbage, "garbage"), (&wrong_login, "wrong password")]
    {
        let bid = bad["id"].as_i64().unwrap();
        let got = wait_json(
            &cli,
            &admin,
            &format!("/api/v1/cameras/{bid}"),
            Duration::from_secs(20),
            |v| {
                matches!(v["status"]["state"].as_str(), Some("reconnecting" | "failed"))
                    && v["status"]["reason"].is_string()
            },
        )
        .await;
        assert!(
            matches!(got["status"]["state"].as_str(), Some("reconnecting" | "failed")),
            "{what}: {got}"
        );
        let reason = got["status"]["reason"].as_str().unwrap_or("").to_lowercase();
        assert!(!reason.is_empty(), "{what}: {got}");
        if what == "wrong password" {
            assert!(reason.contains("refused the user name or password"), "{got}");
            assert!(!got.to_string().contains("wrong"), "the password is never shown: {got}");
        }
        for internal in ["rtspsrc", "splitmux", "gst", "could not open resource"] {
            assert!(!reason.contains(internal), "{what}: no GStreamer names: {got}");
        }
    }

    // Camera outage: a gap is recorded and recording resumes.
    let before = segs.len();
    cam.stop();
    let lost =
        wait_json(&cli, &admin, &format!("/api/v1/cameras/{id}"), Duration::from_secs(15), |v| {
            v["status"]["state"] == "reconnecting"
        })
        .await;
    assert_eq!(lost["status"]["state"], "reconnecting", "{lost}");
    tokio::time::sleep(Duration::from_secs(4)).await;
    cam.restart().unwrap();
    let back = Instant::now();
    let resumed =
        wait_json(&cli, &admin, &format!("/api/v1/cameras/{id}"), Duration::from_secs(15), |v| {
            v["status"]["state"] == "streaming"
        })
        .await;
    assert_eq!(resumed["status"]["state"], "streaming", "{resumed}");
    assert!(
        back.elapsed() < Duration::from_secs(10),
        "resumed {:?} after the camera's return",
        back.elapsed()
    );
    let events = wait_json(
        &cli,
        &admin,
        &format!("/api/v1/events?camera_id={id}&kind=gap"),
        Duration::from_secs(10),
        |v| v.as_array().is_some_and(|a| a.iter().any(|g| g["ended_at"].is_string())),
    )
    .await;
    let gaps = events.as_array().unwrap();
    assert_eq!(gaps.len(), 1, "{events}");
    assert!(gaps[0]["ended_at"].is_string() && gaps[0]["reason"].is_string(), "{events}");
    let after = wait_json(&cli, &admin, &list, Duration::from_secs(15), |v| {
        v.as_array().is_some_and(|a| a.len() > before)
    })
    .await;
    let after = after.as_array().unwrap();
    assert!(after.len() > before, "new segments after the outage");
    for s in &segs {
        assert!(after.iter().any(|a| a["id"] == s["id"]), "segment {} kept", s["id"]);
    }

    state.nvr().shutdown().await;
    drop(bad);
    drop(locked);
}

/// Retention: age and size limits per camera delete the oldest footage first, files with
/// their rows, and never a protected segment or one waiting for upload.
#[tokio::test]
async fn retention_keeps_protected_and_unuploaded_footage() {
    use pv_core::db::records::{segment, storage_module, storage_provider, upload_queue};
    use sea_orm::{ActiveModelTrait, IntoActiveModel, Set};
    let (_env, state) = state_with(Engine::Sqlite, |c| {
        c.recording.enabled = false;
        c.recording.min_free_bytes = 0;
    })
    .await;
    let db = &state.dbs().records;
    let now = chrono::Utc::now();
    let data = state.config().data_dir.clone();
    let mut settings = pv_core::cameras::CameraSettings::new("Shed", "rtsp://127.0.0.1:9/x");
    settings.retention_days = Some(7);
    settings.retention_max_bytes = Some(5_000);
    let cam = pv_core::cameras::create(db, &settings, now).await.unwrap();
    let camera = pv_core::ids::CameraId(cam.id);
    // Ten 1000-byte segments: 0–3 are 8–11 days old, 4–9 from the last hours.
    let mut ids = Vec::new();
    for i in 0..10i64 {
        let start = if i < 4 {
            now - chrono::Duration::days(11 - i)
        } else {
            now - chrono::Duration::hours(10 - i)
        };
        let path = format!("cameras/id-{}/{i:02}.mp4", cam.id);
        std::fs::create_dir_all(data.join(format!("cameras/id-{}", cam.id))).unwrap();
        std::fs::write(data.join(&path), vec![0u8; 1000]).unwrap();
        let seg = pv_core::recordings::NewSegment {
            camera,
            started_at: start,
            ended_at: start + chrono::Duration::seconds(60),
            media_start_ns: 0,
            media_end_ns: 60_000_000_000,
            duration_ms: 60_000,
            size_bytes: 1000,
            video_codec: "h264".into(),
            audio_codec: None,
            width: None,
            height: None,
            path,
            motion: false,
            end_reason: "duration".into(),
        };
        ids.push(pv_core::recordings::insert_segment(db, &seg, now).await.unwrap().0);
    }
    // Segment 0 is protected; segments 1 and 5 wait for an upload.
    let mut row =
        segment::Entity::find_by_id(ids[0]).one(db).await.unwrap().unwrap().into_active_model();
    row.protected = Set(true);
    row.update(db).await.unwrap();
    storage_provider::ActiveModel {
        key: Set("local".into()),
        name: Set("Local".into()),
        category: Set("local".into()),
        definition: Set(json!({})),
        installed_at: Set(now),
        updated_at: Set(now),
        ..Default::default()
    }
    .insert(db)
    .await
    .unwrap();
    let module = storage_module::ActiveModel {
        provider_key: Set("local".into()),
        name: Set("NAS".into()),
        enabled: Set(true),
        config: Set(json!({})),
        priority: Set(0),
        key_template: Set("{camera}/{segment}.mp4".into()),
        parallel_uploads: Set(1),
        read_only: Set(false),
        created_at: Set(now),
        updated_at: Set(now),
        ..Default::default()
    }
    .insert(db)
    .await
    .unwrap();
    for (seg, status) in [(ids[1], "pending"), (ids[5], "failed"), (ids[6], "done")] {
        upload_queue::ActiveModel {
            segment_id: Set(seg),
            module_id: Set(module.id),
            status: Set(status.into()),
            attempts: Set(0),
            next_attempt_at: Set(now),
            priority: Set(0),
            created_at: Set(now),
            updated_at: Set(now),
            ..Default::default()
        }
        .insert(db)
        .await
        .unwrap();
    }

    let report = state.nvr().retention_pass().await.unwrap();
    // By age: 2 and 3 (0 protected, 1 not uploaded). By size, oldest first among the rest:
    // 4, 6, 7 (5 waits for a retried upload; 6 was uploaded).
    assert_eq!((report.by_age, report.by_size, report.for_space), (2, 3, 0), "{report:?}");
    let left: Vec<i64> = pv_core::recordings::segments_in_range(
        db,
        camera,
        now - chrono::Duration::days(30),
        now + chrono::Duration::days(1),
    )
    .await
    .unwrap()
    .iter()
    .map(|s| s.id)
    .collect();
    assert_eq!(left, [ids[0], ids[1], ids[5], ids[8], ids[9]]);
    for (i, id) in ids.iter().enumerate() {
        let exists = data.join(format!("cameras/id-{}/{i:02}.mp4", cam.id)).exists();
        assert_eq!(exists, left.contains(id), "file {i} deleted with its row, kept with it");
    }
    assert_eq!(state.nvr().retention_pass().await.unwrap().total(), 0, "nothing more to do");
}

/// The disk guard: while free space is below `recording.min_free_bytes` the oldest deletable
/// segments of any camera go first; protected footage stays even then.
#[tokio::test]
async fn the_disk_guard_frees_space_oldest_first_but_never_protected_footage() {
    use pv_core::db::records::segment;
    use sea_orm::{ActiveModelTrait, IntoActiveModel, Set};
    let (_env, state) = state_with(Engine::Sqlite, |c| {
        c.recording.enabled = false;
        c.recording.min_free_bytes = u64::MAX; // the disk is always "full"
    })
    .await;
    let db = &state.dbs().records;
    let now = chrono::Utc::now();
    let data = state.config().data_dir.clone();
    let mut ids = Vec::new();
    for (n, name) in ["A", "B"].iter().enumerate() {
        let cam = pv_core::cameras::create(
            db,
            &pv_core::cameras::CameraSettings::new(*name, "rtsp://127.0.0.1:9/x"),
            now,
        )
        .await
        .unwrap();
        std::fs::create_dir_all(data.join(format!("cameras/id-{}", cam.id))).unwrap();
        for i in 0..2i64 {
            let start = now - chrono::Duration::minutes(10 - i * 2 - n as i64);
            let path = format!("cameras/id-{}/{i}.mp4", cam.id);
            std::fs::write(data.join(&path), b"x").unwrap();
            let seg = pv_core::recordings::NewSegment {
                camera: pv_core::ids::CameraId(cam.id),
                started_at: start,
                ended_at: start + chrono::Duration::seconds(60),
                media_start_ns: 0,
                media_end_ns: 0,
                duration_ms: 60_000,
                size_bytes: 1,
                video_codec: "h264".into(),
                audio_codec: None,
                width: None,
                height: None,
                path,
                motion: false,
                end_reason: "duration".into(),
            };
            ids.push(pv_core::recordings::insert_segment(db, &seg, now).await.unwrap().0);
        }
    }
    let mut row =
        segment::Entity::find_by_id(ids[3]).one(db).await.unwrap().unwrap().into_active_model();
    row.protected = Set(true);
    row.update(db).await.unwrap();
    let report = state.nvr().retention_pass().await.unwrap();
    assert_eq!(report.for_space, 3, "{report:?}");
    let left: Vec<i64> =
        segment::Entity::find().all(db).await.unwrap().iter().map(|s| s.id).collect();
    assert_eq!(left, [ids[3]], "only the protected segment is left");
}

/// RTMP out through the API: the camera's stream pushed from memory to a local nginx-rtmp,
/// readable by ffprobe as H.264; the stream key is never shown; stop, and bad targets.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_camera_is_pushed_to_nginx_rtmp_through_the_api() {
    let cam = TestCamera::start(Clip::Moving).unwrap();
    let nginx = pv_media::testcam::rtmp::RtmpServer::start().unwrap();
    let (_env, state) = state_with(Engine::Sqlite, |c| c.recording.segment_seconds = 3).await;
    let cli = TestClient::new(pv_web::app::build(state.clone()));
    let admin_id = user_with_role(&state, "admin", Some("System Administrator"), None).await;
    let admin = session_cookie(&state, admin_id).await;
    let csrf = |path: &str| csrf_token(&state, admin_id, path);
    let (_, body) = json_of(
        cli.post("/api/v1/cameras")
            .header("cookie", admin.clone())
            .header("x-csrf-token", csrf("/cameras"))
            .body_json(&json!({ "name": "Gate", "main_url": cam.url() }))
            .send()
            .await,
    )
    .await;
    let id = body["id"].as_i64().unwrap();
    let camera = format!("/api/v1/cameras/{id}");
    wait_json(&cli, &admin, &camera, Duration::from_secs(20), |v| {
        v["status"]["state"] == "streaming"
    })
    .await;
    let push = |url: &str| {
        cli.post(format!("{camera}/rtmp"))
            .header("cookie", admin.clone())
            .header("x-csrf-token", csrf("/cameras/{id}/rtmp"))
            .body_json(&json!({ "url": url }))
            .send()
    };
    let (status, problem) = json_of(push("http://127.0.0.1/live/x").await).await;
    assert_eq!(status, StatusCode::BAD_REQUEST, "{problem}");
    let target = nginx.url("secret-key-123");
    let (status, started) = json_of(push(&target).await).await;
    assert_eq!(status, StatusCode::OK, "{started}");
    assert!(!started.to_string().contains("secret-key-123"), "the key is hidden: {started}");
    let pushing = wait_json(&cli, &admin, &camera, Duration::from_secs(15), |v| {
        v["rtmp"]["state"] == "pushing"
    })
    .await;
    assert_eq!(pushing["rtmp"]["state"], "pushing", "{pushing}");
    let out = tokio::task::spawn_blocking(move || {
        std::process::Command::new("timeout")
            .args([
                "30",
                "ffprobe",
                "-v",
                "error",
                "-rw_timeout",
                "15000000",
                "-select_streams",
                "v:0",
            ])
            .args(["-show_entries", "stream=codec_name,width,height", "-of", "csv=p=0"])
            .arg(target)
            .output()
            .unwrap()
    })
    .await
    .unwrap();
    assert_eq!(String::from_utf8_lossy(&out.stdout).trim(), "h264,1280,720", "{out:?}");
    let stored =
        pv_core::db::records::rtmp_output::Entity::find().all(&state.dbs().records).await.unwrap();
    assert_eq!(stored.len(), 1);
    assert!(stored[0].enabled && !stored[0].target_url.contains("secret-key-123"), "sealed");

    let stop = |()| {
        cli.delete(format!("{camera}/rtmp"))
            .header("cookie", admin.clone())
            .header("x-csrf-token", csrf("/cameras/{id}/rtmp"))
            .send()
    };
    assert_eq!(stop(()).await.0.status(), StatusCode::NO_CONTENT);
    let (_, after) = json_of(cli.get(&camera).header("cookie", admin.clone()).send().await).await;
    assert_eq!(after["rtmp"], Value::Null, "{after}");
    assert_eq!(stop(()).await.0.status(), StatusCode::NOT_FOUND, "nothing left to stop");

    // A camera that does not record cannot be pushed.
    let resp = cli
        .patch(&camera)
        .header("cookie", admin.clone())
        .header("x-csrf-token", csrf("/cameras/{id}"))
        .body_json(&json!({ "enabled": false }))
        .send()
        .await;
    assert_eq!(resp.0.status(), StatusCode::OK);
    let (status, problem) = json_of(push(&nginx.url("again")).await).await;
    assert_eq!(status, StatusCode::CONFLICT, "{problem}");
    // Its snapshot now comes from its newest recording (finalised when it was disabled).
    let resp =
        cli.get(format!("{camera}/snapshot.jpg")).header("cookie", admin.clone()).send().await;
    assert_eq!(resp.0.status(), StatusCode::OK);
    let jpeg = resp.0.into_body().into_bytes().await.unwrap();
    assert_eq!(jpeg_size(&jpeg), Some((1280, 720)));
    assert!(problem["detail"].as_str().unwrap().contains("not recording"), "{problem}");
    state.nvr().shutdown().await;
}

/// Scan before saving: probe a stream's codec and size; ONVIF discovery (a responder on
/// loopback stands in for the LAN's multicast group).
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn streams_are_probed_and_onvif_cameras_discovered() {
    let cam = TestCamera::start(Clip::Moving).unwrap();
    let responder = std::net::UdpSocket::bind("127.0.0.1:0").unwrap();
    let target = responder.local_addr().unwrap();
    let (_env, state) = state_with(Engine::Sqlite, |c| {
        c.recording.enabled = false;
        c.recording.discovery_target = target;
    })
    .await;
    let cli = TestClient::new(pv_web::app::build(state.clone()));
    let admin_id = user_with_role(&state, "admin", Some("System Administrator"), None).await;
    let admin = session_cookie(&state, admin_id).await;
    let csrf = |path: &str| csrf_token(&state, admin_id, path);
    let probe = |body: Value| {
        cli.post("/api/v1/cameras/probe")
            .header("cookie", admin.clone())
            .header("x-csrf-token", csrf("/cameras/probe"))
            .body_json(&body)
            .send()
    };
    let (status, info) = json_of(probe(json!({ "url": cam.url() })).await).await;
    assert_eq!(status, StatusCode::OK, "{info}");
    assert_eq!(
        (info["video_codec"].as_str(), info["width"].as_u64(), info["height"].as_u64()),
        (Some("h264"), Some(1280), Some(720))
    );
    assert!((info["fps"].as_f64().unwrap() - 15.0).abs() < 0.5, "{info}");
    assert_eq!(info["recordable"], true);
    let (status, problem) = json_of(probe(json!({ "url": "http://127.0.0.1/x" })).await).await;
    assert_eq!(status, StatusCode::BAD_REQUEST, "{problem}");
    let (status, problem) = json_of(probe(json!({ "url": "rtsp://127.0.0.1:9/none" })).await).await;
    assert!(status.is_client_error() || status.is_server_error(), "{problem}");
    assert!(!problem["detail"].as_str().unwrap_or("").is_empty(), "{problem}");

    // One camera is known already (same host as a discovered one).
    pv_core::cameras::create(
        &state.dbs().records,
        &pv_core::cameras::CameraSettings::new("Known", "rtsp://192.0.2.11/stream"),
        chrono::Utc::now(),
    )
    .await
    .unwrap();
    let answer = |relates: &str, uuid: &str, host: &str, name: &str| {
        format!(
            r#"<?xml version="1.0"?><e:Envelope xmlns:e="http://www.w3.org/2003/05/soap-envelope" xmlns:w="http://schemas.xmlsoap.org/ws/2004/08/addressing" xmlns:d="http://schemas.xmlsoap.org/ws/2005/04/discovery"><e:Header><w:RelatesTo>{relates}</w:RelatesTo></e:Header><e:Body><d:ProbeMatches><d:ProbeMatch><w:EndpointReference><w:Address>urn:uuid:{uuid}</w:Address></w:EndpointReference><d:Scopes>onvif://www.onvif.org/name/{name}</d:Scopes><d:XAddrs>http://{host}/onvif/device_service</d:XAddrs></d:ProbeMatch></d:ProbeMatches></e:Body></e:Envelope>"#
        )
    };
    let thread = std::thread::spawn(move || {
        let mut buf = vec![0u8; 65_536];
        let (n, from) = responder.recv_from(&mut buf).unwrap();
        let text = String::from_utf8_lossy(&buf[..n]).into_owned();
        let id = text.split("MessageID>").nth(1).unwrap().split('<').next().unwrap().to_owned();
        for (uuid, host, name) in [("a", "192.0.2.10", "Porch"), ("b", "192.0.2.11", "Garage")] {
            responder.send_to(answer(&id, uuid, host, name).as_bytes(), from).unwrap();
        }
    });
    let (status, found) = json_of(
        cli.post("/api/v1/cameras/discover")
            .header("cookie", admin.clone())
            .header("x-csrf-token", csrf("/cameras/discover"))
            .send()
            .await,
    )
    .await;
    thread.join().unwrap();
    assert_eq!(status, StatusCode::OK, "{found}");
    let found = found.as_array().unwrap();
    assert_eq!(found.len(), 2, "{found:?}");
    assert_eq!(found[0]["host"], "192.0.2.10");
    assert_eq!(found[0]["name"], "Porch");
    assert_eq!(found[0]["known"], false);
    assert_eq!(found[1]["known"], true, "the camera at 192.0.2.11 is added already");
}

/// Motion mode through the API: a scene where something moves for a while records that span
/// with its pre- and post-roll, flagged as motion, with the event stored; a still scene
/// records nothing.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn motion_mode_records_the_motion_and_a_still_scene_nothing() {
    let burst = TestCamera::start(Clip::Burst).unwrap();
    let still = TestCamera::start(Clip::Static).unwrap();
    let (_env, state) = state_with(Engine::Sqlite, |c| c.recording.segment_seconds = 3).await;
    let cli = TestClient::new(pv_web::app::build(state.clone()));
    let admin_id = user_with_role(&state, "admin", Some("System Administrator"), None).await;
    let admin = session_cookie(&state, admin_id).await;
    let mut ids = Vec::new();
    for (name, url) in [("Burst", burst.url()), ("Still", still.url())] {
        let (status, body) = json_of(
            cli.post("/api/v1/cameras")
                .header("cookie", admin.clone())
                .header("x-csrf-token", csrf_token(&state, admin_id, "/cameras"))
                .body_json(&json!({
                    "name": name, "main_url": url, "recording_mode": "motion",
                    "pre_roll_seconds": 2, "post_roll_seconds": 3,
                }))
                .send()
                .await,
        )
        .await;
        assert_eq!(status, StatusCode::CREATED, "{body}");
        ids.push(body["id"].as_i64().unwrap());
    }
    let (moving, quiet) = (ids[0], ids[1]);
    // The camera list says when motion is going on now (the dashboard's motion flag).
    let cam = wait_json(
        &cli,
        &admin,
        &format!("/api/v1/cameras/{moving}"),
        Duration::from_secs(40),
        |v| v["status"]["motion"] == true,
    )
    .await;
    assert_eq!(cam["status"]["motion"], true, "motion now: {cam}");
    let (_, still_cam) = json_of(
        cli.get(format!("/api/v1/cameras/{quiet}")).header("cookie", admin.clone()).send().await,
    )
    .await;
    assert_eq!(still_cam["status"]["motion"], false, "{still_cam}");
    let events = wait_json(
        &cli,
        &admin,
        &format!("/api/v1/events?camera_id={moving}&kind=motion"),
        Duration::from_secs(40),
        |v| v.as_array().is_some_and(|a| a.iter().any(|e| e["ended_at"].is_string())),
    )
    .await;
    let event = events.as_array().unwrap().iter().find(|e| e["ended_at"].is_string()).cloned();
    let event = event.unwrap_or_else(|| panic!("an ended motion event: {events}"));
    let t = |v: &Value| chrono::DateTime::parse_from_rfc3339(v.as_str().unwrap()).unwrap();
    let (m_start, m_end) = (t(&event["started_at"]), t(&event["ended_at"]));
    // The recording of that event: from the key frame before start − 2 s to end + 3 s.
    let list = format!("/api/v1/recordings?camera_id={moving}");
    let segs = wait_json(&cli, &admin, &list, Duration::from_secs(20), |v| {
        v.as_array().is_some_and(|a| {
            a.iter().any(|s| {
                t(&s["ended_at"])
                    >= m_end + chrono::Duration::seconds(3) - chrono::Duration::milliseconds(200)
            })
        })
    })
    .await;
    let segs: Vec<Value> = segs
        .as_array()
        .unwrap()
        .iter()
        .filter(|s| t(&s["ended_at"]) > m_start - chrono::Duration::seconds(4))
        .filter(|s| t(&s["started_at"]) < m_end + chrono::Duration::seconds(4))
        .cloned()
        .collect();
    assert!(!segs.is_empty(), "the motion was recorded");
    assert!(segs.iter().all(|s| s["motion"] == true), "{segs:?}");
    let first = t(&segs[0]["started_at"]);
    let last = t(&segs[segs.len() - 1]["ended_at"]);
    let pre = (m_start - first).num_milliseconds();
    let post = (last - m_end).num_milliseconds();
    assert!(
        (1_800..=3_200).contains(&pre),
        "starts 2 s (+ up to a GOP) before the motion: {pre} ms"
    );
    assert!((2_700..=3_400).contains(&post), "ends 3 s after the motion: {post} ms");
    for s in &segs {
        let row = pv_core::recordings::get_segment(
            &state.dbs().records,
            pv_core::ids::SegmentId(s["id"].as_i64().unwrap()),
        )
        .await
        .unwrap();
        assert_eq!(ffprobe(&state.config().data_dir.join(&row.path)).0, "h264");
    }
    // The still scene: nothing recorded, no event.
    let (_, quiet_segs) = json_of(
        cli.get(format!("/api/v1/recordings?camera_id={quiet}"))
            .header("cookie", admin.clone())
            .send()
            .await,
    )
    .await;
    assert_eq!(quiet_segs, json!([]), "a still scene records nothing");
    let (_, quiet_events) = json_of(
        cli.get(format!("/api/v1/events?camera_id={quiet}"))
            .header("cookie", admin.clone())
            .send()
            .await,
    )
    .await;
    assert_eq!(quiet_events, json!([]));
    state.nvr().shutdown().await;
}

/// Recorder failures read as what went wrong at the camera, in words for people: a closed
/// port, a wrong password, a path the camera does not serve, a host that does not answer.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn recorder_failures_are_told_in_words_for_people() {
    let open = TestCamera::start(Clip::Static).unwrap();
    let locked = TestCamera::start_with(
        Clip::Static,
        pv_media::testcam::TestCameraOptions {
            credentials: Some(("viewer".into(), "right".into())),
            ..Default::default()
        },
    )
    .unwrap();
    // A port nothing listens on.
    let closed = std::net::TcpListener::bind("127.0.0.1:0").unwrap().local_addr().unwrap().port();
    let (_env, state) = state_with(Engine::Sqlite, |c| c.recording.segment_seconds = 3).await;
    let cli = TestClient::new(pv_web::app::build(state.clone()));
    let admin_id = user_with_role(&state, "admin", Some("System Administrator"), None).await;
    let admin = session_cookie(&state, admin_id).await;
    let create = |name: &str, body: Value| {
        let mut body = body;
        body["name"] = json!(name);
        cli.post("/api/v1/cameras")
            .header("cookie", admin.clone())
            .header("x-csrf-token", csrf_token(&state, admin_id, "/cameras"))
            .body_json(&body)
            .send()
    };
    let cases = [
        (
            "Closed",
            json!({ "main_url": format!("rtsp://127.0.0.1:{closed}/x") }),
            format!("cannot connect to 127.0.0.1:{closed}: connection refused"),
        ),
        (
            "Locked",
            json!({ "main_url": locked.url(), "username": "viewer", "password": "hunter2-wrong" }),
            format!("the camera at 127.0.0.1:{} refused the user name or password", locked.port()),
        ),
        (
            "Anonymous",
            json!({ "main_url": locked.url() }),
            format!(
                "the camera at 127.0.0.1:{} asks for a user name and password; none is set",
                locked.port()
            ),
        ),
        (
            "Nowhere",
            json!({ "main_url": open.url().replace("/cam", "/no-such-stream") }),
            format!(
                "no such stream on the camera at 127.0.0.1:{} (404): check the path /no-such-stream",
                open.port()
            ),
        ),
    ];
    let mut ids = Vec::new();
    for (name, body, _) in &cases {
        let (status, cam) = json_of(create(name, body.clone()).await).await;
        assert_eq!(status, StatusCode::CREATED, "{cam}");
        ids.push(cam["id"].as_i64().unwrap());
    }
    for ((name, _, want), id) in cases.iter().zip(ids) {
        let got = wait_json(
            &cli,
            &admin,
            &format!("/api/v1/cameras/{id}"),
            Duration::from_secs(20),
            |v| v["status"]["reason"].as_str() == Some(want.as_str()),
        )
        .await;
        assert_eq!(got["status"]["state"], "reconnecting", "{name}: {got}");
        assert_eq!(got["status"]["reason"].as_str(), Some(want.as_str()), "{name}: {got}");
        assert!(!got.to_string().contains("hunter2"), "{name}: the password is never shown");
    }
    state.nvr().shutdown().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_status_names_the_backend_that_records_a_camera_and_why() {
    let plain = TestCamera::start(Clip::Moving).unwrap();
    let tls = TestCamera::start_with(
        Clip::Moving,
        pv_media::testcam::TestCameraOptions {
            tls: Some(pv_media::testcam::self_signed_certificate().unwrap()),
            ..Default::default()
        },
    )
    .unwrap();
    let (_env, state) = state_with(Engine::Sqlite, |c| c.recording.segment_seconds = 3).await;
    let cli = TestClient::new(pv_web::app::build(state.clone()));
    let admin_id = user_with_role(&state, "admin", Some("System Administrator"), None).await;
    let admin = session_cookie(&state, admin_id).await;
    let mut ids = Vec::new();
    for (name, url) in [("Porch", plain.url()), ("Gate", tls.url())] {
        let (status, cam) = json_of(
            cli.post("/api/v1/cameras")
                .header("cookie", admin.clone())
                .header("x-csrf-token", csrf_token(&state, admin_id, "/cameras"))
                .body_json(&json!({ "name": name, "main_url": url }))
                .send()
                .await,
        )
        .await;
        assert_eq!(status, StatusCode::CREATED, "{cam}");
        ids.push(cam["id"].as_i64().unwrap());
    }
    let streaming = |v: &Value| v["status"]["state"] == "streaming";
    let porch = wait_json(
        &cli,
        &admin,
        &format!("/api/v1/cameras/{}", ids[0]),
        Duration::from_secs(30),
        streaming,
    )
    .await;
    assert_eq!(porch["status"]["backend"], "native", "{porch}");
    assert!(porch["status"].get("backend_reason").is_none(), "{porch}");
    let gate = wait_json(
        &cli,
        &admin,
        &format!("/api/v1/cameras/{}", ids[1]),
        Duration::from_secs(40),
        streaming,
    )
    .await;
    assert_eq!(gate["status"]["state"], "streaming", "{gate}");
    assert_eq!(gate["status"]["backend"], "gstreamer", "{gate}");
    let why = gate["status"]["backend_reason"].as_str().unwrap_or_default();
    assert!(why.starts_with("The built-in recorder could not record this camera"), "{gate}");
    assert!(why.contains("TLS"), "{gate}");
    // It records.
    let segs = wait_json(
        &cli,
        &admin,
        &format!("/api/v1/recordings?camera_id={}", ids[1]),
        Duration::from_secs(20),
        |v| v.as_array().is_some_and(|a| !a.is_empty()),
    )
    .await;
    assert!(segs.as_array().is_some_and(|a| !a.is_empty()), "{segs}");

    // What was written, changed and asked for is on /metrics.
    let metrics = cli.get("/metrics").send().await;
    metrics.assert_status_is_ok();
    let text = metrics.0.into_body().into_string().await.unwrap();
    for want in [
        format!("pentavision_segments_written_total{{camera=\"{}\"}}", ids[1]),
        format!("pentavision_segment_bytes_written_total{{camera=\"{}\"}}", ids[1]),
        format!("pentavision_live_viewers{{camera=\"{}\",transport=\"webrtc\"}} 0", ids[0]),
        "pentavision_audit_events_total{action=\"camera.create\",outcome=\"success\"}".into(),
        "http_requests_total{method=\"GET\",route=\"/api/v1/cameras/{id}\",status=\"200\"}".into(),
        "pentavision_storage_queue_pending".into(),
    ] {
        assert!(text.contains(&want), "/metrics lacks {want}:\n{text}");
    }
    state.nvr().shutdown().await;
}
