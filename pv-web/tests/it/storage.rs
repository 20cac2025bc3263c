//! Storage modules through the REST API, in process: Test → Save with a local-path module, the
//! upload queue, local and remote retention set apart (a segment older than the camera's one
//! day of local retention plays from its remote copy), clone, drain, delete, and every change
//! audited.

use std::time::{Duration, Instant};

use poem::http::StatusCode;
use poem::test::TestClient;
use pv_core::testkit::Engine;
use serde_json::{Value, json};

use crate::{csrf_token, session_cookie, state_with, user_with_role};

struct Client {
    cli: TestClient<poem::endpoint::BoxEndpoint<'static>>,
    state: pv_web::AppState,
    user: i64,
    cookie: String,
}

impl Client {
    async fn call(&self, method: &str, path: &str, body: Option<Value>) -> (StatusCode, Value) {
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
        if let Some(b) = body {
            req = req.body_json(&b);
        }
        let resp = req.send().await;
        let status = resp.0.status();
        let text = resp.0.into_body().into_string().await.unwrap();
        (status, serde_json::from_str(&text).unwrap_or(Value::String(text)))
    }

    async fn wait_queue(&self, what: &str, done: impl Fn(&Value) -> bool) -> Value {
        let deadline = Instant::now() + Duration::from_secs(30);
        loop {
            let (_, q) = self.call("GET", "/storage/queue", None).await;
            if done(&q) {
                return q;
            }
            assert!(Instant::now() < deadline, "{what}: {q}");
            tokio::time::sleep(Duration::from_millis(100)).await;
        }
    }
}

fn local_body(root: &std::path::Path) -> Value {
    json!({ "provider": "local-path", "config": { "root": root.to_str().unwrap() }, "secrets": {} })
}

#[tokio::test]
async fn a_segment_past_local_retention_plays_from_its_remote_copy() {
    let remote = tempfile::tempdir().unwrap();
    let (_env, state) = state_with(Engine::Sqlite, |c| {
        c.recording.enabled = false;
    })
    .await;
    state.nvr().start_all().await.unwrap();
    let user = user_with_role(&state, "admin", Some("System Administrator"), None).await;
    let cookie = session_cookie(&state, user).await;
    let c = Client {
        cli: TestClient::new(poem::EndpointExt::boxed(pv_web::app::build(state.clone()))),
        state: state.clone(),
        user,
        cookie,
    };

    // Test → Save.
    let (status, providers) = c.call("GET", "/storage/providers", None).await;
    assert_eq!(status, StatusCode::OK);
    assert!(providers["providers"].as_array().unwrap().iter().any(|p| p["id"] == "local-path"));
    let (status, test) =
        c.call("POST", "/storage/modules/test", Some(local_body(remote.path()))).await;
    assert_eq!(status, StatusCode::OK, "{test}");
    assert_eq!(test["ok"], true, "{test}");
    let steps: Vec<&str> =
        test["steps"].as_array().unwrap().iter().map(|s| s["step"].as_str().unwrap()).collect();
    for step in ["write", "read", "delete"] {
        assert!(steps.contains(&step), "{test}");
    }
    let mut save = local_body(remote.path());
    save["name"] = json!("NAS");
    save["retention_days"] = json!(30);
    save["proof"] = test["proof"].clone();
    let (status, module) = c.call("POST", "/storage/modules", Some(save)).await;
    assert_eq!(status, StatusCode::CREATED, "{module}");
    let module_id = module["id"].as_i64().unwrap();
    assert_eq!(module["enabled"], true);

    // A camera keeping one day locally, with a segment two days old.
    let (status, cam) = c
        .call(
            "POST",
            "/cameras",
            Some(json!({ "name": "Gate", "main_url": "rtsp://127.0.0.1:9/x", "enabled": false,
                         "retention_days": 1,
                         "storage_targets": [{ "module_id": module_id, "upload": "all", "padding_seconds": 0 }] })),
        )
        .await;
    assert_eq!(status, StatusCode::CREATED, "{cam}");
    assert_eq!(cam["storage_targets"][0]["module_id"], module_id);
    let camera = cam["id"].as_i64().unwrap();
    let data = state.nvr().data_dir().to_path_buf();
    let rel = format!("cameras/id-{camera}/20261203T100000Z-{camera}.mp4");
    let bytes: Vec<u8> = (0..200_000u32).map(|i| (i % 251) as u8).collect();
    std::fs::create_dir_all(data.join(format!("cameras/id-{camera}"))).unwrap();
    std::fs::write(data.join(&rel), &bytes).unwrap();
    let started = chrono::Utc::now() - chrono::Duration::days(2);
    let seg = pv_core::recordings::NewSegment {
        camera: pv_core::ids::CameraId(camera),
        started_at: started,
        ended_at: started + chrono::Duration::seconds(60),
        media_start_ns: 0,
        media_end_ns: 60_000_000_000,
        duration_ms: 60_000,
        size_bytes: bytes.len() as i64,
        video_codec: "h264".into(),
        audio_codec: None,
        width: Some(640),
        height: Some(360),
        path: rel.clone(),
        motion: false,
        end_reason: "duration".into(),
    };
    let db = &state.dbs().records;
    let id = pv_core::recordings::insert_segment(db, &seg, chrono::Utc::now()).await.unwrap();
    assert_eq!(
        pv_core::storage::enqueue_segment(db, id.0, camera, chrono::Utc::now()).await.unwrap(),
        1
    );
    state.nvr().storage().wake();
    let q = c
        .wait_queue("the upload", |q| {
            q["items"]
                .as_array()
                .is_some_and(|i| i.iter().any(|i| i["segment_id"] == id.0 && i["status"] == "done"))
        })
        .await;
    let item =
        q["items"].as_array().unwrap().iter().find(|i| i["segment_id"] == id.0).unwrap().clone();
    let key = item["remote_key"].as_str().unwrap();
    assert_eq!(std::fs::read(remote.path().join(key)).unwrap(), bytes, "the remote copy is whole");

    // Local retention removes the file; the row stays and plays from the copy.
    let report = state.nvr().retention_pass().await.unwrap();
    assert_eq!(report.by_age, 1);
    assert!(!data.join(&rel).exists());
    let from = (started - chrono::Duration::hours(1)).format("%Y-%m-%dT%H:%M:%SZ");
    let (_, list) =
        c.call("GET", &format!("/recordings?camera_id={camera}&from={from}"), None).await;
    let row = list.as_array().unwrap().iter().find(|r| r["id"] == id.0).unwrap();
    assert_eq!(row["stored"], "remote", "{row}");
    let resp = c
        .cli
        .get(format!("/api/v1/recordings/{}/media", id.0))
        .header("cookie", c.cookie.clone())
        .send()
        .await;
    assert_eq!(resp.0.status(), StatusCode::OK);
    let played = resp.0.into_body().into_vec().await.unwrap();
    assert_eq!(played, bytes, "the remote copy plays");
    // Remote retention (30 days) keeps it.
    state.nvr().storage().retention_pass().await;
    assert!(remote.path().join(key).exists());

    // Health and logs of the module.
    let (_, h) = c.call("GET", &format!("/storage/modules/{module_id}/health"), None).await;
    assert!(h["last_ok_at"].is_string(), "{h}");
    assert!(h["bytes_today"].as_i64().unwrap() >= bytes.len() as i64, "{h}");
    let (_, logs) =
        c.call("GET", &format!("/storage/modules/{module_id}/logs?q=upload"), None).await;
    assert!(!logs["entries"].as_array().unwrap().is_empty(), "{logs}");

    // Clone, drain, delete; each is audited.
    let (status, copy) = c.call("POST", &format!("/storage/modules/{module_id}/clone"), None).await;
    assert_eq!(status, StatusCode::CREATED, "{copy}");
    assert_eq!(copy["enabled"], false);
    assert_eq!(copy["name"], "NAS (copy)");
    let (status, drained) =
        c.call("POST", &format!("/storage/modules/{module_id}/drain"), None).await;
    assert_eq!(status, StatusCode::OK, "{drained}");
    assert_eq!(drained["enabled"], false, "an idle module drains at once: {drained}");
    let (status, _) = c.call("DELETE", &format!("/storage/modules/{}", copy["id"]), None).await;
    assert_eq!(status, StatusCode::NO_CONTENT);
    let (status, _) = c.call("GET", &format!("/storage/modules/{}", copy["id"]), None).await;
    assert_eq!(status, StatusCode::NOT_FOUND);
    let (_, audit) = c.call("GET", "/audit/events?limit=200", None).await;
    let actions: Vec<String> = audit
        .as_array()
        .or_else(|| audit["events"].as_array())
        .map(|a| a.iter().filter_map(|e| e["action"].as_str().map(str::to_owned)).collect())
        .unwrap_or_default();
    for a in [
        "storage.module.create",
        "storage.module.clone",
        "storage.module.drain",
        "storage.module.delete",
    ] {
        assert!(actions.iter().any(|x| x == a), "{a} audited: {actions:?}");
    }
}

/// A one-request HTTP server speaking the slice of an OAuth 2 token endpoint the flow uses
/// (`POST` form `grant_type=authorization_code&code&redirect_uri&client_id&client_secret` →
/// JSON with `refresh_token`); returns its URL and the form it received.
async fn token_endpoint() -> (String, tokio::sync::oneshot::Receiver<String>) {
    use tokio::io::{AsyncReadExt, AsyncWriteExt};
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let url = format!("http://{}/oauth2/token", listener.local_addr().unwrap());
    let (tx, rx) = tokio::sync::oneshot::channel();
    tokio::spawn(async move {
        let (mut sock, _) = listener.accept().await.unwrap();
        let mut buf = Vec::new();
        let mut chunk = [0u8; 4096];
        loop {
            let n = sock.read(&mut chunk).await.unwrap();
            buf.extend_from_slice(&chunk[..n]);
            let text = String::from_utf8_lossy(&buf).to_string();
            if let Some((head, body)) = text.split_once("\r\n\r\n") {
                let len: usize = head
                    .lines()
                    .find_map(|l| {
                        l.to_ascii_lowercase()
                            .strip_prefix("content-length:")
                            .map(|v| v.trim().parse().unwrap())
                    })
                    .unwrap_or(0);
                if body.len() >= len {
                    let _ = tx.send(format!("{}\n{body}", head.lines().next().unwrap_or("")));
                    break;
                }
            }
            if n == 0 {
                break;
            }
        }
        let json = r#"{"access_token":"at-1","token_type":"bearer","expires_in":14400,"refresh_token":"rt-from-vendor"}"#;
        let resp = format!(
            "HTTP/1.1 200 OK\r\ncontent-type: application/json\r\ncontent-length: {}\r\nconnection: close\r\n\r\n{json}",
            json.len()
        );
        sock.write_all(resp.as_bytes()).await.unwrap();
    });
    (url, rx)
}

#[tokio::test]
async fn oauth_sign_in_hands_a_refresh_token_to_the_form() {
    let (token_url, received) = token_endpoint().await;
    let (_env, state) = state_with(Engine::Sqlite, |c| {
        c.recording.enabled = false;
        // A provider folder dropped into the modules folder, reusing the Dropbox backend with
        // its token endpoint on loopback.
        let dir = c.data_dir.join("modules/test-drive");
        std::fs::create_dir_all(&dir).unwrap();
        let def = json!({
            "id": "test-drive", "name": "Test Drive", "category": "cloud_drive", "icon": "cloud",
            "backend": "dropbox", "description": "A drive for tests.",
            "docs_url": "https://www.dropbox.com/developers/documentation",
            "capabilities": { "multipart": false, "range": true, "list": true, "presign": false, "equal_parts": false },
            "fields": [
                { "key": "client_id", "label": "App key", "kind": "text", "required": true, "secret": false, "help": "From the app console.", "options": [], "advanced": false },
                { "key": "client_secret", "label": "App secret", "kind": "password", "required": false, "secret": true, "help": "From the app console.", "options": [], "advanced": false },
                { "key": "refresh_token", "label": "Refresh token", "kind": "password", "required": true, "secret": true, "help": "Connect, or paste one.", "options": [], "advanced": false }
            ],
            "oauth": { "authorize_url": "https://www.dropbox.com/oauth2/authorize", "token_url": token_url,
                       "scopes": [], "client_id_field": "client_id", "client_secret_field": "client_secret" }
        });
        std::fs::write(dir.join("definition.json"), def.to_string()).unwrap();
        std::fs::write(
            dir.join("template.html"),
            "<fieldset><input name=\"config.client_id\" data-field=\"client_id\"><input name=\"secrets.client_secret\" data-field=\"client_secret\"><input name=\"secrets.refresh_token\" data-field=\"refresh_token\"></fieldset>",
        )
        .unwrap();
    })
    .await;
    let user = user_with_role(&state, "admin", Some("System Administrator"), None).await;
    let cookie = session_cookie(&state, user).await;
    let c = Client {
        cli: TestClient::new(poem::EndpointExt::boxed(pv_web::app::build(state.clone()))),
        state: state.clone(),
        user,
        cookie,
    };
    let (_, providers) = c.call("GET", "/storage/providers", None).await;
    let p = providers["providers"].as_array().unwrap().iter().find(|p| p["id"] == "test-drive");
    assert!(p.is_some_and(|p| p["oauth"] == true && p["source"] == "dropped"), "{providers}");

    let redirect = "http://localhost:8080/storage/oauth/callback";
    let (status, r) = c
        .call(
            "POST",
            "/storage/oauth/start",
            Some(json!({ "provider": "test-drive", "client_id": "app-key-1", "client_secret": "app-secret-1", "redirect_uri": redirect })),
        )
        .await;
    assert_eq!(status, StatusCode::OK, "{r}");
    let url = r["authorize_url"].as_str().unwrap();
    assert!(url.starts_with("https://www.dropbox.com/oauth2/authorize?"), "{url}");
    for part in ["response_type=code", "client_id=app-key-1", "token_access_type=offline", "state="]
    {
        assert!(url.contains(part), "{part} in {url}");
    }
    let st = r["state"].as_str().unwrap();
    // A redirect elsewhere than this server's callback is refused.
    let (status, _) = c
        .call(
            "POST",
            "/storage/oauth/start",
            Some(json!({ "provider": "test-drive", "client_id": "a", "redirect_uri": "https://evil.example/cb" })),
        )
        .await;
    assert_eq!(status, StatusCode::BAD_REQUEST);

    let resp = c
        .cli
        .get(format!("/storage/oauth/callback?code=the-code&state={st}"))
        .header("cookie", c.cookie.clone())
        .send()
        .await;
    assert_eq!(resp.0.status(), StatusCode::OK);
    let html = resp.0.into_body().into_string().await.unwrap();
    assert!(html.contains("data-refresh-token=\"rt-from-vendor\""), "{html}");
    assert!(html.contains("Connected to Test Drive"), "{html}");
    let form = received.await.unwrap();
    assert!(form.starts_with("POST /oauth2/token"), "{form}");
    for part in [
        "grant_type=authorization_code",
        "code=the-code",
        "client_id=app-key-1",
        "client_secret=app-secret-1",
        "redirect_uri=http%3A%2F%2Flocalhost%3A8080%2Fstorage%2Foauth%2Fcallback",
    ] {
        assert!(form.contains(part), "{part} in {form}");
    }
    // A state is used once.
    let resp = c
        .cli
        .get(format!("/storage/oauth/callback?code=again&state={st}"))
        .header("cookie", c.cookie.clone())
        .send()
        .await;
    assert_eq!(resp.0.status(), StatusCode::BAD_REQUEST);
}
