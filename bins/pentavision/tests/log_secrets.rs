//! No secret reaches a log: the real server, logging everything at debug level to its log file
//! and to stderr, goes through the whole first-sign-in and enrolment flow (setup code, a
//! password, TOTP enrolment with its recovery codes, password + TOTP sign-in, a recovery-code
//! sign-in, an API token, a disarm PIN), and then none of the secrets used appears anywhere in
//! what it logged.

use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use reqwest::header::{COOKIE, SET_COOKIE};
use serde_json::{Value, json};

const BIN: &str = env!("CARGO_BIN_EXE_pentavision");

/// The server, stopped (SIGTERM, so its log is flushed) when dropped.
struct Server {
    child: Child,
    url: String,
}

impl Server {
    fn start(data: &Path, stderr: &Path) -> Server {
        let mut child = Command::new(BIN)
            .args(["--data-dir", data.to_str().unwrap(), "--listen", "127.0.0.1:0"])
            .env_remove("PENTAVISION_CONFIG")
            .env("PV_LOGGING__FILE_ENABLED", "true")
            .env("RUST_LOG", "debug")
            .stdout(Stdio::piped())
            .stderr(std::fs::File::create(stderr).unwrap())
            .spawn()
            .expect("spawn pentavision");
        use std::io::BufRead;
        let mut lines = std::io::BufReader::new(child.stdout.take().unwrap()).lines();
        let first = lines.next().expect("a line on stdout").unwrap();
        let url = first
            .split_whitespace()
            .find(|w| w.starts_with("http://"))
            .unwrap_or_else(|| panic!("no URL in {first:?}"))
            .trim_end_matches('/')
            .to_string();
        std::thread::spawn(move || for _ in lines {});
        Server { child, url }
    }

    fn stop(&mut self) {
        if self.child.try_wait().ok().flatten().is_some() {
            return;
        }
        let pid = self.child.id().to_string();
        let _ = Command::new("kill").args(["-TERM", &pid]).status();
        let deadline = Instant::now() + Duration::from_secs(15);
        while self.child.try_wait().ok().flatten().is_none() {
            if Instant::now() > deadline {
                let _ = self.child.kill();
                break;
            }
            std::thread::sleep(Duration::from_millis(50));
        }
        let _ = self.child.wait();
    }
}

impl Drop for Server {
    fn drop(&mut self) {
        self.stop();
    }
}

fn session_of(resp: &reqwest::Response) -> String {
    let set = resp.headers()[SET_COOKIE].to_str().unwrap();
    set.split(';').next().unwrap().to_string()
}

async fn call(
    cli: &reqwest::Client,
    method: reqwest::Method,
    url: String,
    cookie: Option<&str>,
    body: Option<Value>,
) -> reqwest::Response {
    let mut req = cli.request(method, &url);
    if let Some(c) = cookie {
        req = req.header(COOKIE, c);
    }
    if let Some(b) = body {
        req = req.json(&b);
    }
    req.send().await.unwrap_or_else(|e| panic!("{url}: {e}"))
}

/// Every occurrence of `needle` in `text` that is a whole token of digits (a 6-digit code
/// inside a longer number, or the microseconds of a timestamp, `.123456`, is not a leak).
fn digit_token_positions(text: &str, needle: &str) -> Vec<usize> {
    let bytes = text.as_bytes();
    text.match_indices(needle)
        .map(|(i, _)| i)
        .filter(|&i| {
            let before = i.checked_sub(1).map(|j| bytes[j]);
            let after = bytes.get(i + needle.len()).copied();
            !before.is_some_and(|b| b.is_ascii_digit() || b == b'.')
                && !after.is_some_and(|b| b.is_ascii_digit())
        })
        .collect()
}

#[tokio::test]
async fn no_secret_of_the_sign_in_and_enrolment_flow_is_logged() {
    let dir = tempfile::tempdir().unwrap();
    let data = dir.path().join("data");
    let stderr_file = dir.path().join("stderr.log");
    let mut server = Server::start(&data, &stderr_file);
    let url = server.url.clone();
    let cli = reqwest::Client::new();
    let deadline = Instant::now() + Duration::from_secs(20);
    while !matches!(cli.get(format!("{url}/readyz")).send().await, Ok(r) if r.status() == 200) {
        assert!(Instant::now() < deadline, "never ready");
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    use reqwest::Method as M;
    let api = |path: &str| format!("{url}/api/v1{path}");
    let mut secrets: Vec<(&str, String)> = Vec::new();
    let mut codes: Vec<String> = Vec::new();

    // The one-time setup code (also on stdout, by design: stdout is not a log).
    let text = std::fs::read_to_string(data.join("setup-code.txt")).unwrap();
    let setup = text.lines().next().unwrap().rsplit(' ').next().unwrap().to_string();
    assert_eq!(setup.len(), 19, "{setup}");
    secrets.push(("setup code", setup.clone()));
    secrets.push(("setup code without dashes", setup.replace('-', "")));

    // A wrong attempt first (its failure is logged for fail2ban, without the secret).
    let wrong = "WRONG-GUESS-OF-CODE";
    let r = call(
        &cli,
        M::POST,
        api("/auth/login"),
        None,
        Some(json!({ "username": "Thalia", "password": wrong })),
    )
    .await;
    assert_eq!(r.status(), 401);
    secrets.push(("wrong password", wrong.into()));

    let r = call(
        &cli,
        M::POST,
        api("/auth/login"),
        None,
        Some(json!({ "username": "Thalia", "password": setup })),
    )
    .await;
    assert_eq!(r.status(), 200);
    let enrol = session_of(&r);
    secrets.push(("enrol session", enrol.trim_start_matches("pv_session=").into()));

    let password = "Secret-Horse-Battery-Staple-9137";
    secrets.push(("password", password.into()));
    let r = call(
        &cli,
        M::POST,
        api("/auth/password"),
        Some(&enrol),
        Some(json!({ "new_password": password })),
    )
    .await;
    assert_eq!(r.status(), 204);

    let start: Value = call(&cli, M::POST, api("/auth/totp/start"), Some(&enrol), None)
        .await
        .json()
        .await
        .unwrap();
    let totp_secret = start["secret"].as_str().unwrap().to_string();
    secrets.push(("TOTP secret", totp_secret.clone()));
    secrets.push(("otpauth URI", start["otpauth_uri"].as_str().unwrap().into()));
    let now = chrono::Utc::now();
    let code = pv_security::totp::code_at(&totp_secret, now).unwrap();
    codes.push(code.clone());
    let r =
        call(&cli, M::POST, api("/auth/totp/confirm"), Some(&enrol), Some(json!({ "code": code })))
            .await;
    assert_eq!(r.status(), 200);
    let recovery: Value = r.json().await.unwrap();
    let recovery: Vec<String> = recovery["recovery_codes"]
        .as_array()
        .unwrap()
        .iter()
        .map(|c| c.as_str().unwrap().to_string())
        .collect();
    assert_eq!(recovery.len(), 10);
    for c in &recovery {
        secrets.push(("recovery code", c.clone()));
        secrets.push(("recovery code without dashes", c.replace('-', "")));
    }

    // Password + TOTP (the next step), then password + a recovery code.
    let next =
        pv_security::totp::code_at(&totp_secret, now + chrono::Duration::seconds(30)).unwrap();
    codes.push(next.clone());
    let r = call(
        &cli,
        M::POST,
        api("/auth/login"),
        None,
        Some(json!({ "username": "Thalia", "password": password, "code": next })),
    )
    .await;
    assert_eq!(r.status(), 200, "{:?}", r.text().await);
    let full = session_of(&r);
    secrets.push(("full session", full.trim_start_matches("pv_session=").into()));
    let r = call(
        &cli,
        M::POST,
        api("/auth/login"),
        None,
        Some(json!({ "username": "Thalia", "password": password, "code": recovery[3] })),
    )
    .await;
    assert_eq!(r.status(), 200);
    secrets.push(("recovery session", session_of(&r).trim_start_matches("pv_session=").into()));

    // An API token, used once.
    let r =
        call(&cli, M::POST, api("/auth/tokens"), Some(&full), Some(json!({ "name": "script" })))
            .await;
    assert_eq!(r.status(), 201);
    let token: Value = r.json().await.unwrap();
    let token = token["secret"].as_str().unwrap().to_string();
    secrets.push(("API token", token.clone()));
    let r = cli.get(api("/system")).bearer_auth(&token).send().await.unwrap();
    assert_eq!(r.status(), 200);

    // A disarm PIN, set with the page's CSRF token, checked right and wrong.
    let csrf: Value = call(&cli, M::GET, api("/auth/csrf?route=/auth/pin"), Some(&full), None)
        .await
        .json()
        .await
        .unwrap();
    let csrf = csrf["token"].as_str().unwrap().to_string();
    secrets.push(("CSRF token", csrf.clone()));
    let pin = "58293746";
    secrets.push(("PIN", pin.into()));
    let r = cli
        .put(api("/auth/pin"))
        .header(COOKIE, &full)
        .header("x-csrf-token", &csrf)
        .json(&json!({ "new_pin": pin, "password": password }))
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 204, "{:?}", r.text().await);
    let r = call(&cli, M::POST, api("/auth/pin/verify"), Some(&full), Some(json!({ "pin": pin })))
        .await;
    assert_eq!(r.status(), 204);
    let r = call(
        &cli,
        M::POST,
        api("/auth/pin/verify"),
        Some(&full),
        Some(json!({ "pin": "11335577" })),
    )
    .await;
    assert_eq!(r.status(), 403);
    secrets.push(("wrong PIN", "11335577".into()));

    server.stop();

    // Everything it logged: the log files under DATA_DIR/logs and stderr.
    let mut logs = String::new();
    let log_dir: PathBuf = data.join("logs");
    for entry in std::fs::read_dir(&log_dir).unwrap() {
        let path = entry.unwrap().path();
        logs.push_str(&String::from_utf8_lossy(&std::fs::read(&path).unwrap()));
    }
    let file_bytes = logs.len();
    logs.push_str(&String::from_utf8_lossy(&std::fs::read(&stderr_file).unwrap()));
    assert!(file_bytes > 0, "the log file is written");
    assert!(logs.contains("sign-in failed"), "the failed sign-in is logged");
    assert!(logs.contains("sign-in succeeded"), "sign-ins are logged");
    assert!(logs.contains("\"Thalia\""), "the flow's log lines (with the user name) are there");
    assert!(logs.contains("disarm PIN refused"), "the wrong PIN is logged");

    let leaks: Vec<String> = secrets
        .iter()
        .filter(|(_, s)| logs.contains(s.as_str()))
        .map(|(what, s)| format!("{what} ({s})"))
        .chain(
            codes
                .iter()
                .filter(|c| !digit_token_positions(&logs, c).is_empty())
                .map(|c| format!("TOTP code {c}")),
        )
        .collect();
    assert!(leaks.is_empty(), "secrets in the logs: {leaks:?}");
}

#[test]
fn digit_tokens_ignore_longer_numbers_and_fractions() {
    assert_eq!(digit_token_positions("code=123456 x", "123456"), [5]);
    assert!(digit_token_positions("t=10:00:00.123456Z", "123456").is_empty());
    assert!(digit_token_positions("id=91234567", "123456").is_empty());
    assert_eq!(digit_token_positions("\"123456\"", "123456"), [1]);
}
