//! Recording end to end: the real server records simulated RTSP cameras added through the REST
//! API; camera loss, `kill -9` of the server and `pentavision check`.

use std::path::Path;
use std::process::Command;
use std::time::{Duration, Instant};

use pv_media::testcam::{Clip, TestCamera};
use serde_json::{Value, json};

#[path = "support/server.rs"]
mod support;
use support::{BIN, Running, admin_token, start, wait_ready};

struct Api {
    url: String,
    token: String,
    http: reqwest::Client,
}

impl Api {
    fn new(server: &Running, token: &str) -> Self {
        Self { url: server.url.clone(), token: token.to_owned(), http: reqwest::Client::new() }
    }

    async fn get(&self, path: &str) -> Value {
        let r = self
            .http
            .get(format!("{}/api/v1{path}", self.url))
            .bearer_auth(&self.token)
            .send()
            .await
            .unwrap();
        assert!(r.status().is_success(), "GET {path}: {}", r.status());
        r.json().await.unwrap()
    }

    async fn add_camera(&self, name: &str, url: &str) -> i64 {
        let r = self
            .http
            .post(format!("{}/api/v1/cameras", self.url))
            .bearer_auth(&self.token)
            .json(&json!({ "name": name, "main_url": url }))
            .send()
            .await
            .unwrap();
        assert_eq!(r.status(), 201);
        r.json::<Value>().await.unwrap()["id"].as_i64().unwrap()
    }

    async fn segments(&self, camera: i64) -> Vec<Value> {
        self.get(&format!("/recordings?camera_id={camera}")).await.as_array().unwrap().clone()
    }

    async fn wait(&self, path: &str, timeout: Duration, done: impl Fn(&Value) -> bool) -> Value {
        let deadline = Instant::now() + timeout;
        loop {
            let v = self.get(path).await;
            if done(&v) || Instant::now() > deadline {
                return v;
            }
            tokio::time::sleep(Duration::from_millis(250)).await;
        }
    }
}

/// ffprobe's video codec and duration of a file; panics on any complaint.
fn ffprobe(path: &Path) -> (String, f64) {
    let out = Command::new("ffprobe")
        .args(["-v", "error", "-select_streams", "v:0", "-show_entries"])
        .args(["stream=codec_name:format=duration", "-of", "default=nw=1"])
        .arg(path)
        .output()
        .unwrap();
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(out.status.success() && err.trim().is_empty(), "{}: {err}", path.display());
    let text = String::from_utf8_lossy(&out.stdout).into_owned();
    let field = |n: &str| {
        text.lines().find_map(|l| l.strip_prefix(&format!("{n}="))).unwrap_or("").to_owned()
    };
    (field("codec_name"), field("duration").parse().unwrap_or(0.0))
}

/// The file of a listed segment, from the records database (the API never shows paths).
async fn segment_file(data: &Path, id: i64) -> std::path::PathBuf {
    let config = pv_core::config::Config::load(
        None,
        Some(&pv_core::config::CliOverrides { data_dir: Some(data.into()), listen: None }),
    )
    .unwrap();
    let db = pv_core::db::connect(&config, pv_core::config::DbKind::Records).await.unwrap();
    let row = pv_core::recordings::get_segment(&db, pv_core::ids::SegmentId(id)).await.unwrap();
    let _ = db.close().await;
    data.join(row.path)
}

fn env_for(segment_seconds: u32) -> Vec<(&'static str, String)> {
    vec![("PV_RECORDING__SEGMENT_SECONDS", segment_seconds.to_string())]
}

fn sigterm(server: &mut Running) {
    let pid = server.child.id().to_string();
    assert!(Command::new("kill").args(["-TERM", &pid]).status().unwrap().success());
    let deadline = Instant::now() + Duration::from_secs(20);
    while server.child.try_wait().unwrap().is_none() {
        assert!(Instant::now() < deadline, "server did not stop after SIGTERM");
        std::thread::sleep(Duration::from_millis(50));
    }
}

fn check(data: &Path) -> (bool, String) {
    let out = Command::new(BIN)
        .args(["--data-dir", data.to_str().unwrap(), "check"])
        .env_remove("PENTAVISION_CONFIG")
        .output()
        .unwrap();
    let text =
        format!("{}{}", String::from_utf8_lossy(&out.stdout), String::from_utf8_lossy(&out.stderr));
    (out.status.success(), text)
}

/// The default 60-second segments: three minutes give three whole segments.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn three_minutes_of_continuous_recording_make_three_segments() {
    let cam = TestCamera::start(Clip::Moving).unwrap();
    let dir = tempfile::tempdir().unwrap();
    let data = dir.path().to_path_buf();
    let server = start(&data, &[]);
    wait_ready(&server.url).await;
    let api = Api::new(&server, &admin_token(&data, &[]));
    let id = api.add_camera("Driveway", &cam.url()).await;
    let segs = api
        .wait(&format!("/recordings?camera_id={id}"), Duration::from_secs(200), |v| {
            v.as_array().is_some_and(|a| a.len() >= 3)
        })
        .await;
    let segs = segs.as_array().unwrap();
    assert_eq!(segs.len(), 3, "three segments after three minutes: {segs:?}");
    for s in segs {
        assert_eq!(s["end_reason"], "duration", "{s}");
        let (codec, duration) = ffprobe(&segment_file(&data, s["id"].as_i64().unwrap()).await);
        assert_eq!(codec, "h264");
        assert!((59.0..=60.3).contains(&duration), "within one GOP of 60 s: {duration}");
        assert!((s["duration_ms"].as_f64().unwrap() / 1000.0 - duration).abs() < 0.2);
    }
    for w in segs.windows(2) {
        let end = chrono::DateTime::parse_from_rfc3339(w[0]["ended_at"].as_str().unwrap()).unwrap();
        let start =
            chrono::DateTime::parse_from_rfc3339(w[1]["started_at"].as_str().unwrap()).unwrap();
        assert!((start - end).num_milliseconds().abs() < 300, "contiguous: {w:?}");
    }
}

/// A camera away for 30 s: a gap, then recording within 10 s of its return, nothing lost.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_camera_away_for_30_seconds_leaves_a_gap_and_loses_nothing() {
    let mut cam = TestCamera::start(Clip::Moving).unwrap();
    let dir = tempfile::tempdir().unwrap();
    let data = dir.path().to_path_buf();
    let env = env_for(4);
    let server = start(&data, &env);
    wait_ready(&server.url).await;
    let api = Api::new(&server, &admin_token(&data, &env));
    let id = api.add_camera("Garden", &cam.url()).await;
    let camera = format!("/cameras/{id}");
    api.wait(&format!("/recordings?camera_id={id}"), Duration::from_secs(30), |v| {
        v.as_array().is_some_and(|a| a.len() >= 2)
    })
    .await;

    cam.stop();
    let lost = api
        .wait(&camera, Duration::from_secs(15), |v| v["status"]["state"] == "reconnecting")
        .await;
    assert_eq!(lost["status"]["state"], "reconnecting", "{lost}");
    assert!(lost["status"]["reason"].is_string(), "{lost}");
    let before = api.segments(id).await;
    tokio::time::sleep(Duration::from_secs(30)).await;
    cam.restart().unwrap();
    let back = Instant::now();
    let resumed =
        api.wait(&camera, Duration::from_secs(20), |v| v["status"]["state"] == "streaming").await;
    let took = back.elapsed();
    assert_eq!(resumed["status"]["state"], "streaming", "{resumed}");
    assert!(
        took <= Duration::from_secs(10),
        "recording resumed {took:?} after the camera's return"
    );

    let gaps = api
        .wait(&format!("/events?camera_id={id}&kind=gap"), Duration::from_secs(10), |v| {
            v.as_array().is_some_and(|a| a.iter().all(|g| g["ended_at"].is_string()))
        })
        .await;
    let gaps = gaps.as_array().unwrap();
    assert_eq!(gaps.len(), 1, "{gaps:?}");
    let started =
        chrono::DateTime::parse_from_rfc3339(gaps[0]["started_at"].as_str().unwrap()).unwrap();
    let ended =
        chrono::DateTime::parse_from_rfc3339(gaps[0]["ended_at"].as_str().unwrap()).unwrap();
    assert!((ended - started).num_seconds() >= 29, "the gap spans the outage: {gaps:?}");

    let after = api
        .wait(&format!("/recordings?camera_id={id}"), Duration::from_secs(20), |v| {
            v.as_array().is_some_and(|a| a.len() > before.len())
        })
        .await;
    let after = after.as_array().unwrap();
    for s in &before {
        assert!(after.iter().any(|a| a["id"] == s["id"]), "segment {} kept", s["id"]);
    }
    for s in after {
        let (codec, _) = ffprobe(&segment_file(&data, s["id"].as_i64().unwrap()).await);
        assert_eq!(codec, "h264");
    }
}

/// `kill -9` mid-segment, restart: finished segments intact and indexed, the partial one
/// recovered or dropped, `pentavision check` clean.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn kill_9_mid_segment_then_restart_keeps_every_finished_segment() {
    let cam = TestCamera::start(Clip::Moving).unwrap();
    let dir = tempfile::tempdir().unwrap();
    let data = dir.path().to_path_buf();
    let env = env_for(4);
    let mut server = start(&data, &env);
    wait_ready(&server.url).await;
    let token = admin_token(&data, &env);
    let api = Api::new(&server, &token);
    let id = api.add_camera("Porch", &cam.url()).await;
    api.wait(&format!("/recordings?camera_id={id}"), Duration::from_secs(30), |v| {
        v.as_array().is_some_and(|a| a.len() >= 2)
    })
    .await;
    // Mid-segment: the open file has at least one fragment on disk.
    let ingest = data.join(format!("cameras/id-{id}"));
    let deadline = Instant::now() + Duration::from_secs(10);
    let finished = api.segments(id).await;
    loop {
        let open = std::fs::read_dir(&ingest)
            .unwrap()
            .filter_map(|e| e.ok())
            // More than the header (ftyp + moov, about 1 KB): at least one fragment written.
            .filter(|e| e.metadata().is_ok_and(|m| m.len() > 4_096))
            .count();
        if open > finished.len() {
            break;
        }
        assert!(Instant::now() < deadline, "no open segment with data");
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    let finished = api.segments(id).await;
    server.child.kill().unwrap();
    server.child.wait().unwrap();

    let mut server = start(&data, &env);
    wait_ready(&server.url).await;
    let api = Api::new(&server, &token);
    let now = api.segments(id).await;
    for s in &finished {
        let again = now.iter().find(|a| a["id"] == s["id"]).unwrap_or_else(|| panic!("{s} lost"));
        assert_eq!(again["bytes"], s["bytes"], "finished segment untouched");
        let (codec, _) = ffprobe(&segment_file(&data, s["id"].as_i64().unwrap()).await);
        assert_eq!(codec, "h264");
    }
    // The one in progress at the kill: indexed as recovered and playable, or gone.
    for s in now.iter().filter(|s| !finished.iter().any(|f| f["id"] == s["id"])) {
        let file = segment_file(&data, s["id"].as_i64().unwrap()).await;
        let (codec, duration) = ffprobe(&file);
        assert_eq!(codec, "h264");
        assert!(duration > 0.0);
    }
    assert!(
        now.iter().any(|s| s["end_reason"] == "recovered")
            || std::fs::read_dir(&ingest).unwrap().count() <= now.len() + 1,
        "the partial file is recovered or dropped: {now:?}"
    );
    // Recording goes on after the restart.
    api.wait(&format!("/cameras/{id}"), Duration::from_secs(15), |v| {
        v["status"]["state"] == "streaming"
    })
    .await;
    sigterm(&mut server);
    let (ok, report) = check(&data);
    assert!(ok, "{report}");
    assert!(report.contains("clean"), "{report}");
}
