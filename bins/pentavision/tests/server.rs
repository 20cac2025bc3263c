//! End-to-end tests of the real `pentavision` binary on `127.0.0.1:0`.

use std::process::Command;
use std::time::{Duration, Instant};

use pv_core::testkit::{Engine, TestEnv};

#[path = "support/server.rs"]
mod support;
use support::{BIN, admin_token, start, wait_ready};

async fn get(url: &str) -> reqwest::Response {
    reqwest::get(url).await.unwrap_or_else(|e| panic!("GET {url}: {e}"))
}

async fn get_as(url: &str, token: &str) -> reqwest::Response {
    reqwest::Client::new()
        .get(url)
        .bearer_auth(token)
        .send()
        .await
        .unwrap_or_else(|e| panic!("GET {url}: {e}"))
}

async fn check_surfaces(url: &str, token: &str) {
    wait_ready(url).await;
    // Signed out: the API refuses, the UI sends to the sign-in page.
    assert_eq!(get(&format!("{url}/api/v1/system")).await.status(), 401);
    let spec: serde_json::Value =
        get(&format!("{url}/api/v1/openapi.json")).await.json().await.unwrap();
    assert!(spec["openapi"].as_str().unwrap().starts_with("3."));
    let gql: serde_json::Value = reqwest::Client::new()
        .post(format!("{url}/graphql"))
        .bearer_auth(token)
        .json(&serde_json::json!({ "query": "{ __schema { queryType { name } } cameras { nodes { id } } }" }))
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    assert_eq!(gql["data"]["__schema"]["queryType"]["name"], "Query", "{gql}");
    let page = get_as(&format!("{url}/"), token).await;
    assert_eq!(page.status(), 200);
    assert!(page.text().await.unwrap().contains("System overview"));
}

#[tokio::test]
async fn default_start_uses_three_sqlite_files_and_serves_everything() {
    let dir = tempfile::tempdir().unwrap();
    let data = dir.path().join("data");
    let server = start(&data, &[]);
    wait_ready(&server.url).await;
    let token = admin_token(&data, &[]);
    check_surfaces(&server.url, &token).await;
    for db in ["users", "faces", "records"] {
        assert!(data.join(format!("{db}.sqlite")).is_file(), "{db}.sqlite");
    }
    let info: serde_json::Value =
        get_as(&format!("{}/api/v1/system", server.url), &token).await.json().await.unwrap();
    assert!(info["databases"].as_array().unwrap().iter().all(|d| d["backend"] == "sqlite"));
    assert!(data.join("logs").is_dir(), "log files go to the data dir");
}

async fn start_on_server_engine(engine: Engine) {
    let env = TestEnv::new(engine).await;
    let db = &env.config.database;
    let vars = [
        ("PV_DATABASE__USERS_URL", db.users_url.clone().unwrap()),
        ("PV_DATABASE__FACES_URL", db.faces_url.clone().unwrap()),
        ("PV_DATABASE__RECORDS_URL", db.records_url.clone().unwrap()),
    ];
    let server = start(env.data_dir.path(), &vars);
    wait_ready(&server.url).await;
    let token = admin_token(env.data_dir.path(), &vars);
    check_surfaces(&server.url, &token).await;
    let info: serde_json::Value =
        get_as(&format!("{}/api/v1/system", server.url), &token).await.json().await.unwrap();
    let expected = if engine == Engine::Postgres { "postgres" } else { "mysql" };
    for d in info["databases"].as_array().unwrap() {
        assert_eq!(d["backend"], expected, "{d}");
        assert_eq!(d["reachable"], true);
    }
    drop(server);
}

#[tokio::test]
async fn starts_on_postgres() {
    start_on_server_engine(Engine::Postgres).await;
}

#[tokio::test]
async fn starts_on_mariadb() {
    start_on_server_engine(Engine::MySql).await;
}

fn run_to_end(args: &[&str], env: &[(&str, &str)]) -> std::process::Output {
    let mut cmd = Command::new(BIN);
    cmd.args(args).env_remove("PENTAVISION_CONFIG");
    for (k, v) in env {
        cmd.env(k, v);
    }
    cmd.output().expect("run pentavision")
}

#[test]
fn malformed_config_stops_start_up_with_one_line() {
    let dir = tempfile::tempdir().unwrap();
    let cfg = dir.path().join("pv.toml");
    std::fs::write(&cfg, "[server]\nlisten = \"127.0.0.1:0\"\nlisen = \"typo\"\n").unwrap();
    let out = run_to_end(
        &["--config", cfg.to_str().unwrap(), "--data-dir", dir.path().to_str().unwrap()],
        &[],
    );
    assert!(!out.status.success());
    let stderr = String::from_utf8(out.stderr).unwrap();
    assert_eq!(stderr.lines().count(), 1, "one line: {stderr}");
    assert!(stderr.contains("line 3") && stderr.contains("lisen"), "{stderr}");

    std::fs::write(&cfg, "[server\n").unwrap();
    let out = run_to_end(&["--config", cfg.to_str().unwrap(), "config"], &[]);
    assert!(!out.status.success());
    assert_eq!(String::from_utf8(out.stderr).unwrap().lines().count(), 1);

    let out = run_to_end(&["--config", "/nonexistent/pv.toml", "config"], &[]);
    assert!(!out.status.success());
    assert!(String::from_utf8(out.stderr).unwrap().contains("/nonexistent/pv.toml"));
}

#[test]
fn config_command_redacts_secrets_and_migrate_reports() {
    let dir = tempfile::tempdir().unwrap();
    let d = dir.path().to_str().unwrap();
    let out = run_to_end(
        &["--data-dir", d, "config"],
        &[
            ("PV_BLOCKLIST__TOKEN", "tok-SECRET-1"),
            ("PV_DATABASE__USERS_URL", "postgres://u:pw-SECRET-2@h/db"),
        ],
    );
    assert!(out.status.success(), "{out:?}");
    let text = String::from_utf8(out.stdout).unwrap();
    assert!(!text.contains("SECRET"), "{text}");
    assert!(text.contains("postgres://u:********@h/db"), "{text}");

    let out = run_to_end(&["--data-dir", d, "migrate"], &[]);
    assert!(out.status.success(), "{out:?}");
    let text = String::from_utf8(out.stdout).unwrap();
    assert!(text.contains("users: 0 applied before, 5 applied now"), "{text}");
    let out = run_to_end(&["--data-dir", d, "migrate", "--status"], &[]);
    let text = String::from_utf8(out.stdout).unwrap();
    assert!(text.contains("records: 3 applied before, 0 pending"), "{text}");
}

#[test]
fn help_lists_the_subcommands() {
    let out = run_to_end(&["--help"], &[]);
    let text = String::from_utf8(out.stdout).unwrap();
    for cmd in ["run", "migrate", "config", "export-schema", "ip", "audit"] {
        assert!(text.contains(cmd), "{cmd} in {text}");
    }
}

#[test]
fn sigterm_shuts_down_cleanly() {
    let dir = tempfile::tempdir().unwrap();
    let mut server = start(dir.path(), &[]);
    let pid = server.child.id().to_string();
    let rt = tokio::runtime::Runtime::new().unwrap();
    rt.block_on(wait_ready(&server.url));
    assert!(Command::new("kill").args(["-TERM", &pid]).status().unwrap().success());
    let deadline = Instant::now() + Duration::from_secs(15);
    loop {
        if let Some(status) = server.child.try_wait().unwrap() {
            assert!(status.success(), "exit status after SIGTERM: {status}");
            break;
        }
        assert!(Instant::now() < deadline, "server did not stop after SIGTERM");
        std::thread::sleep(Duration::from_millis(50));
    }
}

#[tokio::test]
async fn blocked_addresses_are_refused_until_unblocked() {
    let dir = tempfile::tempdir().unwrap();
    let server = start(dir.path(), &[]);
    wait_ready(&server.url).await;
    let d = dir.path().to_str().unwrap();
    let ip = |args: &[&str]| {
        let out = run_to_end(&[&["--data-dir", d, "ip"][..], args].concat(), &[]);
        assert!(out.status.success(), "{out:?}");
    };
    // Loopback is a preloaded exemption, which wins over blocks: remove it first.
    ip(&["remove", "127.0.0.0/8"]);
    ip(&["block", "127.0.0.1", "--reason", "test"]);
    let deadline = Instant::now() + Duration::from_secs(10);
    let refused = loop {
        let r = get(&format!("{}/", server.url)).await;
        if r.status() == 403 {
            break r;
        }
        assert!(Instant::now() < deadline, "block never applied");
        tokio::time::sleep(Duration::from_millis(200)).await;
    };
    assert_eq!(refused.headers()["content-type"], "application/problem+json");
    assert!(refused.text().await.unwrap().contains("blocked"));

    ip(&["allow", "127.0.0.1"]);
    let deadline = Instant::now() + Duration::from_secs(10);
    while get(&format!("{}/", server.url)).await.status() != 200 {
        assert!(Instant::now() < deadline, "exemption never applied");
        tokio::time::sleep(Duration::from_millis(200)).await;
    }
}
