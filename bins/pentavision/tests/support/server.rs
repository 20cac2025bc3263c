//! Shared by the end-to-end test binaries: start the real server on `127.0.0.1:0`, wait until
//! it is ready, and make an administrator's API token.
#![allow(dead_code)]

use std::io::{BufRead, BufReader};
use std::path::Path;
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

pub const BIN: &str = env!("CARGO_BIN_EXE_pentavision");

/// A running server, killed when dropped.
pub struct Running {
    pub child: Child,
    pub url: String,
}

impl Drop for Running {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

pub fn start(data_dir: &Path, env: &[(&str, String)]) -> Running {
    let mut cmd = Command::new(BIN);
    cmd.args(["--data-dir", data_dir.to_str().unwrap(), "--listen", "127.0.0.1:0"])
        .env_remove("PENTAVISION_CONFIG")
        .env("PV_LOGGING__FILE_ENABLED", "true")
        .stdout(Stdio::piped())
        .stderr(Stdio::null());
    for (k, v) in env {
        cmd.env(k, v);
    }
    let mut child = cmd.spawn().expect("spawn pentavision");
    let stdout = child.stdout.take().unwrap();
    let mut lines = BufReader::new(stdout).lines();
    let first = lines.next().expect("a line on stdout").expect("readable stdout");
    let url = first
        .split_whitespace()
        .find(|w| w.starts_with("http://"))
        .unwrap_or_else(|| panic!("no URL in {first:?}"))
        .trim_end_matches('/')
        .to_string();
    // Keep draining stdout so the server never blocks on a full pipe.
    std::thread::spawn(move || for _ in lines {});
    Running { child, url }
}

pub async fn wait_ready(url: &str) {
    let deadline = Instant::now() + Duration::from_secs(20);
    loop {
        if let Ok(r) = reqwest::get(format!("{url}/readyz")).await
            && r.status() == 200
        {
            return;
        }
        assert!(Instant::now() < deadline, "{url} never became ready");
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
}

/// An API token for the seeded administrator, made with `pentavision token create`.
pub fn admin_token(data_dir: &Path, env: &[(&str, String)]) -> String {
    let mut cmd = Command::new(BIN);
    cmd.args(["--data-dir", data_dir.to_str().unwrap(), "token", "create", "--user", "Thalia"])
        .env_remove("PENTAVISION_CONFIG");
    for (k, v) in env {
        cmd.env(k, v);
    }
    let out = cmd.output().expect("run pentavision token");
    assert!(out.status.success(), "{out:?}");
    String::from_utf8(out.stdout).unwrap().trim().to_string()
}
