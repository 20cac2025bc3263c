//! SCP backend: the system `ssh` client (OpenSSH) runs `scp -t` on the server and this side
//! speaks the SCP sink protocol over its standard input, so uploads stream without a local
//! copy. Reads, listings, stat and delete run POSIX shell commands (`cat`, `tail`/`head`,
//! `stat -c`, GNU `find -printf`, `rm`) over the same kind of session, so the account needs a
//! shell (not an SFTP-only or scp-only jail; use the SFTP provider for those).
//!
//! Configuration:
//! - `host` (required), `port` (default 22), `user` (required);
//! - `root` (optional): the folder under which all keys live (absolute, or relative to the
//!   account's home folder);
//! - `known_hosts` (optional): `known_hosts` lines for the server; without them the first key
//!   seen is accepted for the life of the module (trust on first use);
//! - secret `key`: the private key text (OpenSSH format). Password sign-in is not supported
//!   (the client runs in batch mode).
//!
//! Uploads go to `.pvtmp.<name>.<random>` next to the key and are renamed over it with `mv -f`
//! when complete; on failure the temporary file is removed.

use std::ops::Range;
use std::path::PathBuf;
use std::process::Stdio;
use std::time::Duration;

use async_trait::async_trait;
use chrono::{DateTime, Utc};
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::process::{Child, Command};

use super::smb::remote;
use super::{Backend, BackendCaps, Body, WriteOptions, redact};
use crate::definition::ResolvedConfig;
use crate::error::RemoteKind;
use crate::module::ObjectMeta;
use crate::{Error, Key, Result};

/// Exit code our scripts use for "no such file".
const EXIT_MISSING: i32 = 44;

/// A file holding key material, readable only by us, removed when dropped.
struct TempFile(PathBuf);

impl Drop for TempFile {
    fn drop(&mut self) {
        let _ = std::fs::remove_file(&self.0);
    }
}

fn temp_file(what: &str, text: &str) -> Result<TempFile> {
    use std::io::Write as _;
    use std::os::unix::fs::OpenOptionsExt as _;
    let path =
        std::env::temp_dir().join(format!("pentavision-scp-{what}-{:016x}", rand::random::<u64>()));
    let mut file = std::fs::OpenOptions::new()
        .write(true)
        .create_new(true)
        .mode(0o600)
        .open(&path)
        .map_err(|e| Error::io(&path, e))?;
    let guard = TempFile(path.clone());
    let mut text = text.to_owned();
    if !text.ends_with('\n') {
        text.push('\n');
    }
    file.write_all(text.as_bytes()).map_err(|e| Error::io(&path, e))?;
    Ok(guard)
}

/// Quote for a POSIX shell.
fn sh(s: &str) -> String {
    format!("'{}'", s.replace('\'', "'\\''"))
}

/// The SCP backend.
pub(crate) struct ScpBackend {
    host: String,
    port: u16,
    user: String,
    root: String,
    key: TempFile,
    known_hosts: TempFile,
    strict: bool,
    timeout: Duration,
    secrets: Vec<String>,
}

impl std::fmt::Debug for ScpBackend {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("ScpBackend")
            .field("host", &self.host)
            .field("port", &self.port)
            .field("user", &self.user)
            .field("root", &self.root)
            .finish_non_exhaustive()
    }
}

impl ScpBackend {
    /// Build from a module's resolved configuration; `timeout` bounds each command.
    pub(crate) fn from_resolved(cfg: &ResolvedConfig, timeout: Duration) -> Result<Self> {
        let key = cfg
            .secret("key")
            .ok_or_else(|| Error::Provider("The private key is required.".to_owned()))?;
        if !key.contains("PRIVATE KEY") {
            return Err(Error::Provider(
                "The private key must be the text of an OpenSSH private key (\"-----BEGIN OPENSSH PRIVATE KEY-----\" …)."
                    .to_owned(),
            ));
        }
        let port = match cfg.get("port") {
            None => 22,
            Some(p) => p.parse::<u16>().ok().filter(|p| *p != 0).ok_or_else(|| {
                Error::Provider(format!("The port must be a number from 1 to 65535, not \"{p}\"."))
            })?,
        };
        let known = cfg.get("known_hosts");
        Ok(Self {
            host: cfg
                .get("host")
                .ok_or_else(|| Error::Provider("The server is required.".to_owned()))?,
            port,
            user: cfg
                .any("user")
                .ok_or_else(|| Error::Provider("The user name is required.".to_owned()))?,
            root: cfg.get("root").unwrap_or_default().trim_end_matches('/').to_owned(),
            key: temp_file("key", &key)?,
            known_hosts: temp_file("known-hosts", known.as_deref().unwrap_or(""))?,
            strict: known.is_some(),
            timeout,
            secrets: vec![key],
        })
    }

    fn server(&self) -> String {
        format!("the SSH server {}@{}:{}", self.user, self.host, self.port)
    }

    /// Remote path of a key (or folder key; "" is the root).
    fn path_of(&self, key: &str) -> String {
        match (self.root.is_empty(), key.is_empty()) {
            (true, true) => ".".to_owned(),
            (true, false) => format!("./{key}"),
            (false, true) => self.root.clone(),
            (false, false) => format!("{}/{key}", self.root),
        }
    }

    fn command(&self, script: &str) -> Command {
        let mut c = Command::new("ssh");
        c.arg("-p")
            .arg(self.port.to_string())
            .arg("-i")
            .arg(&self.key.0)
            .args(["-o", "BatchMode=yes", "-o", "IdentitiesOnly=yes", "-o", "LogLevel=ERROR"])
            .arg("-o")
            .arg(format!("ConnectTimeout={}", self.timeout.as_secs().clamp(5, 60)))
            .args(["-o", "ServerAliveInterval=15", "-o", "ServerAliveCountMax=4"])
            .arg("-o")
            .arg(format!("UserKnownHostsFile={}", self.known_hosts.0.display()))
            .arg("-o")
            .arg(if self.strict {
                "StrictHostKeyChecking=yes"
            } else {
                "StrictHostKeyChecking=accept-new"
            })
            .arg(format!("{}@{}", self.user, self.host))
            .arg(script)
            .stdin(Stdio::null())
            .stdout(Stdio::piped())
            .stderr(Stdio::piped())
            .kill_on_drop(true);
        c
    }

    fn spawn(&self, op: &'static str, mut c: Command) -> Result<Child> {
        c.spawn().map_err(|e| {
            remote(
                op,
                RemoteKind::Other,
                false,
                format!(
                    "The ssh client could not be started ({e}); install OpenSSH's client (ssh)."
                ),
            )
        })
    }

    /// The error for a failed command: `code` 255 is ssh's own failure.
    fn failure(&self, op: &'static str, what: &str, code: Option<i32>, stderr: &[u8]) -> Error {
        let text = redact(String::from_utf8_lossy(stderr).trim(), &self.secrets);
        let server = self.server();
        let lower = text.to_ascii_lowercase();
        if code == Some(EXIT_MISSING) || (op != "write" && lower.contains("no such file")) {
            return remote(
                op,
                RemoteKind::NotFound,
                false,
                format!("{what} does not exist on {server}."),
            );
        }
        let (kind, retryable, message) = if code == Some(255) || code.is_none() {
            if lower.contains("permission denied (")
                || lower.contains("too many authentication failures")
            {
                (
                    RemoteKind::Auth,
                    false,
                    format!(
                        "{server} refused the key: add its public key to the account's authorized_keys."
                    ),
                )
            } else if lower.contains("host key verification failed")
                || lower.contains("host identification has changed")
            {
                (
                    RemoteKind::Auth,
                    false,
                    format!(
                        "The host key of {server} does not match the known hosts given; check that it is the right server."
                    ),
                )
            } else if lower.contains("connection refused") {
                (
                    RemoteKind::Unreachable,
                    true,
                    format!("{server} refused the connection; check the address and port."),
                )
            } else if lower.contains("timed out") {
                (RemoteKind::Timeout, true, format!("{server} did not answer in time."))
            } else if lower.contains("could not resolve")
                || lower.contains("no route")
                || lower.contains("unreachable")
            {
                (
                    RemoteKind::Unreachable,
                    true,
                    format!("{server} cannot be reached from this machine ({text})."),
                )
            } else {
                (
                    RemoteKind::Unreachable,
                    true,
                    format!("The SSH session with {server} failed: {text}"),
                )
            }
        } else if lower.contains("permission denied") || lower.contains("read-only file system") {
            (RemoteKind::Permission, false, format!("{server} denied the {op} of {what}: {text}"))
        } else if lower.contains("no space left") || lower.contains("quota") {
            (RemoteKind::Other, true, format!("{server} has no space left for {what}."))
        } else {
            (RemoteKind::Other, true, format!("{server} failed to {op} {what}: {text}"))
        };
        remote(op, kind, retryable, message)
    }

    /// Run a shell script on the server; its standard output on success.
    async fn run(&self, op: &'static str, what: &str, script: &str) -> Result<Vec<u8>> {
        let child = self.spawn(op, self.command(script))?;
        let out = match tokio::time::timeout(self.timeout, child.wait_with_output()).await {
            Ok(Ok(out)) => out,
            Ok(Err(e)) => {
                return Err(remote(
                    op,
                    RemoteKind::Other,
                    true,
                    format!("The ssh client failed: {e}."),
                ));
            }
            Err(_) => {
                return Err(remote(
                    op,
                    RemoteKind::Timeout,
                    true,
                    format!("{} did not finish the {op} in time.", self.server()),
                ));
            }
        };
        if out.status.success() {
            Ok(out.stdout)
        } else {
            Err(self.failure(op, what, out.status.code(), &out.stderr))
        }
    }

    async fn write_body(&self, key: &str, body: &mut Body) -> Result<()> {
        let target = self.path_of(key);
        let (dir, name) = target.rsplit_once('/').unwrap_or((".", &target));
        let temp = format!("{dir}/{}{name}.{:016x}", Key::RESERVED_PREFIX, rand::random::<u64>());
        let script = format!(
            "mkdir -p -- {d} && {{ scp -t -- {t} && mv -f -- {t} {f} || {{ rm -f -- {t}; exit 1; }}; }}",
            d = sh(dir),
            t = sh(&temp),
            f = sh(&target)
        );
        let what = format!("\"{key}\"");
        let mut c = self.command(&script);
        c.stdin(Stdio::piped());
        let mut child = self.spawn("write", c)?;
        let (Some(mut stdin), Some(mut stdout)) = (child.stdin.take(), child.stdout.take()) else {
            return Err(remote(
                "write",
                RemoteKind::Other,
                true,
                "The ssh client has no pipes.".to_owned(),
            ));
        };
        let size = body.size();
        let name_line = format!("C0644 {size} {}\n", name.replace('\n', "_"));
        let protocol = async {
            ack(&mut stdout).await?;
            stdin.write_all(name_line.as_bytes()).await.map_err(|e| e.to_string())?;
            ack(&mut stdout).await?;
            while let Some(piece) = body.next().await.map_err(|e| e.to_string())? {
                stdin.write_all(&piece).await.map_err(|e| e.to_string())?;
            }
            stdin.write_all(&[0]).await.map_err(|e| e.to_string())?;
            ack(&mut stdout).await?;
            drop(stdin);
            Ok::<(), String>(())
        };
        let sent = match tokio::time::timeout(
            self.timeout.max(Duration::from_secs(size / 100_000 + 30)),
            protocol,
        )
        .await
        {
            Ok(r) => r,
            Err(_) => Err("the transfer timed out".to_owned()),
        };
        let mut stderr = Vec::new();
        if let Some(mut e) = child.stderr.take() {
            let _ = tokio::time::timeout(Duration::from_secs(5), e.read_to_end(&mut stderr)).await;
        }
        let status = match tokio::time::timeout(self.timeout, child.wait()).await {
            Ok(Ok(s)) => Some(s),
            _ => {
                let _ = child.kill().await;
                None
            }
        };
        match (sent, status) {
            (Ok(()), Some(s)) if s.success() => Ok(()),
            (Ok(()), s) => Err(self.failure("write", &what, s.and_then(|s| s.code()), &stderr)),
            (Err(protocol_error), s) => {
                let mut detail = stderr;
                if detail.is_empty() {
                    detail = protocol_error.into_bytes();
                }
                Err(self.failure("write", &what, s.and_then(|s| s.code()).or(Some(1)), &detail))
            }
        }
    }

    async fn read_range(&self, key: &str, range: Option<Range<u64>>) -> Result<Vec<u8>> {
        let p = sh(&self.path_of(key));
        let guard = format!("[ -f {p} ] || exit {EXIT_MISSING}; ");
        let script = match range {
            None => format!("{guard}cat -- {p}"),
            Some(r) if r.start >= r.end => return Ok(Vec::new()),
            Some(r) => {
                format!("{guard}tail -c +{} -- {p} | head -c {}", r.start + 1, r.end - r.start)
            }
        };
        self.run("read", &format!("\"{key}\""), &script).await
    }

    async fn stat_key(&self, key: &str) -> Result<Option<ObjectMeta>> {
        let p = sh(&self.path_of(key));
        let script = format!("[ -f {p} ] || exit {EXIT_MISSING}; stat -c '%s %Y' -- {p}");
        match self.run("stat", &format!("\"{key}\""), &script).await {
            Ok(out) => {
                let text = String::from_utf8_lossy(&out);
                let mut it = text.split_whitespace();
                let size = it.next().and_then(|s| s.parse().ok()).unwrap_or(0);
                let modified = it
                    .next()
                    .and_then(|s| s.parse::<i64>().ok())
                    .and_then(|t| DateTime::<Utc>::from_timestamp(t, 0));
                Ok(Some(ObjectMeta {
                    key: key.to_owned(),
                    size,
                    etag: None,
                    last_modified: modified,
                }))
            }
            Err(e) if e.remote_kind() == Some(RemoteKind::NotFound) => Ok(None),
            Err(e) => Err(e),
        }
    }

    async fn list_prefix(&self, prefix: &str) -> Result<Vec<ObjectMeta>> {
        let start = prefix.rfind('/').map(|i| &prefix[..i]).unwrap_or("");
        let start_path = if start.is_empty() { ".".to_owned() } else { format!("./{start}") };
        let script = format!(
            "cd -- {} 2>/dev/null || exit 0; [ -d {s} ] || exit 0; find {s} -type f -printf '%s %T@ %p\\n'",
            sh(&self.path_of("")),
            s = sh(&start_path)
        );
        let out = self.run("list", &format!("\"{prefix}\""), &script).await?;
        let mut items = Vec::new();
        for line in String::from_utf8_lossy(&out).lines() {
            let mut it = line.splitn(3, ' ');
            let (Some(size), Some(time), Some(path)) = (it.next(), it.next(), it.next()) else {
                continue;
            };
            let key = path.trim_start_matches("./").to_owned();
            let name = key.rsplit('/').next().unwrap_or(&key);
            if !key.starts_with(prefix) || name.starts_with(Key::RESERVED_PREFIX) {
                continue;
            }
            let secs = time.split('.').next().and_then(|s| s.parse::<i64>().ok());
            items.push(ObjectMeta {
                key,
                size: size.parse().unwrap_or(0),
                etag: None,
                last_modified: secs.and_then(|s| DateTime::<Utc>::from_timestamp(s, 0)),
            });
        }
        items.sort_by(|a, b| a.key.cmp(&b.key));
        Ok(items)
    }
}

/// Read one SCP acknowledgement: 0 is OK; 1 and 2 are followed by a message line.
async fn ack(out: &mut tokio::process::ChildStdout) -> std::result::Result<(), String> {
    let mut b = [0u8; 1];
    out.read_exact(&mut b).await.map_err(|_| "the server closed the SCP session".to_owned())?;
    if b[0] == 0 {
        return Ok(());
    }
    let mut msg = Vec::new();
    loop {
        let mut c = [0u8; 1];
        if out.read_exact(&mut c).await.is_err() || c[0] == b'\n' {
            break;
        }
        msg.push(c[0]);
    }
    Err(String::from_utf8_lossy(&msg).trim().to_owned())
}

#[async_trait]
impl Backend for ScpBackend {
    fn target(&self) -> String {
        format!(
            "scp://{}@{}:{}/{}",
            self.user,
            self.host,
            self.port,
            self.root.trim_start_matches('/')
        )
    }

    fn caps(&self) -> BackendCaps {
        BackendCaps { multipart: true, range: true, presign: false, etag_is_md5: false }
    }

    async fn check(&self) -> Result<()> {
        let root = sh(&self.path_of(""));
        let script = format!(
            "mkdir -p -- {root} && [ -w {root} ] || {{ echo 'Permission denied' >&2; exit 1; }}"
        );
        self.run("connect", "the root folder", &script).await.map(|_| ())
    }

    async fn write(&self, key: &str, body: &mut Body, _options: WriteOptions) -> Result<()> {
        self.write_body(key, body).await
    }

    async fn read(&self, key: &str, range: Option<Range<u64>>) -> Result<Vec<u8>> {
        self.read_range(key, range).await
    }

    async fn stat(&self, key: &str) -> Result<Option<ObjectMeta>> {
        self.stat_key(key).await
    }

    async fn list(&self, prefix: &str) -> Result<Vec<ObjectMeta>> {
        self.list_prefix(prefix).await
    }

    async fn delete(&self, key: &str) -> Result<()> {
        self.run("delete", &format!("\"{key}\""), &format!("rm -f -- {}", sh(&self.path_of(key))))
            .await
            .map(|_| ())
    }
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

    use super::*;
    use serde_json::json;

    /// The loopback test servers' settings (`bins/storage-servers.sh start`), or `None`.
    fn env() -> Option<std::collections::HashMap<String, String>> {
        let dir = std::env::var("PV_STORAGE_DIR")
            .unwrap_or_else(|_| "/tmp/pv-storage-servers".to_owned());
        let Ok(text) = std::fs::read_to_string(std::path::Path::new(&dir).join("env")) else {
            assert!(
                std::env::var("PV_TEST_REQUIRE_SERVERS").is_err(),
                "start bins/storage-servers.sh"
            );
            eprintln!(
                "skipped: the storage test servers are not running (bins/storage-servers.sh start)"
            );
            return None;
        };
        Some(
            text.lines()
                .filter(|l| !l.starts_with('#'))
                .filter_map(|l| l.split_once('='))
                .map(|(k, v)| (k.trim().to_owned(), v.trim().trim_matches('\'').to_owned()))
                .collect(),
        )
    }

    fn backend(
        env: &std::collections::HashMap<String, String>,
        root: &str,
        known_hosts: bool,
    ) -> ScpBackend {
        let mut values = json!({
            "host": env["PV_TEST_SFTP_HOST"], "port": env["PV_TEST_SFTP_PORT"], "user": env["PV_TEST_SFTP_USER"], "root": root,
        });
        if known_hosts {
            values["known_hosts"] =
                json!(std::fs::read_to_string(&env["PV_TEST_SFTP_KNOWN_HOSTS"]).unwrap());
        }
        let key = std::fs::read_to_string(&env["PV_TEST_SFTP_KEY"]).unwrap();
        ScpBackend::from_resolved(
            &ResolvedConfig::for_tests("scp", values, json!({ "key": key })),
            Duration::from_secs(30),
        )
        .unwrap()
    }

    async fn put(b: &ScpBackend, key: &str, data: &[u8]) -> Result<()> {
        let mut body = Body::bytes(data.to_vec(), None);
        b.write(key, &mut body, WriteOptions { chunk: None, concurrent: 1 }).await
    }

    fn pattern(size: usize, seed: u32) -> Vec<u8> {
        let mut x = seed | 1;
        (0..size)
            .map(|_| {
                x ^= x << 13;
                x ^= x >> 17;
                x ^= x << 5;
                x as u8
            })
            .collect()
    }

    #[tokio::test]
    async fn scp_write_read_stat_list_overwrite_delete_and_large_file() {
        let Some(env) = env() else { return };
        let root = format!("{}/h7-scp-{:08x}", env["PV_TEST_SFTP_ROOT"], rand::random::<u32>());
        let b = backend(&env, &root, true);
        b.check().await.unwrap();
        let key = "front door/2026/12/05/ünïcode 'quoted' 001.mp4";
        let data = pattern(300_000, 3);
        assert!(b.stat(key).await.unwrap().is_none());
        put(&b, key, &data).await.unwrap();
        assert_eq!(std::fs::read(format!("{root}/{key}")).unwrap(), data);
        let meta = b.stat(key).await.unwrap().unwrap();
        assert_eq!(meta.size, data.len() as u64);
        assert!(meta.last_modified.is_some());
        assert_eq!(b.read(key, None).await.unwrap(), data);
        assert_eq!(b.read(key, Some(10..20)).await.unwrap(), &data[10..20]);
        assert_eq!(b.read(key, Some(299_990..400_000)).await.unwrap(), &data[299_990..]);
        put(&b, "front door/2026/12/06/b.mp4", b"second").await.unwrap();
        put(&b, "back/c.mp4", b"third").await.unwrap();
        let listed: Vec<String> =
            b.list("front door/2026/12/0").await.unwrap().into_iter().map(|m| m.key).collect();
        assert_eq!(listed, vec![key, "front door/2026/12/06/b.mp4"]);
        assert_eq!(b.list("").await.unwrap().len(), 3, "no temporary files are left");
        assert!(b.list("nothing/").await.unwrap().is_empty());
        put(&b, key, b"short").await.unwrap();
        assert_eq!(b.read(key, None).await.unwrap(), b"short");
        b.delete(key).await.unwrap();
        assert!(b.stat(key).await.unwrap().is_none());
        b.delete(key).await.unwrap();
        let err = b.read(key, None).await.unwrap_err();
        assert_eq!(err.remote_kind(), Some(RemoteKind::NotFound), "{err}");

        let big = pattern(40 * 1024 * 1024 + 7, 11);
        put(&b, "cam/big.mp4", &big).await.unwrap();
        assert_eq!(b.stat("cam/big.mp4").await.unwrap().unwrap().size, big.len() as u64);
        assert!(b.read("cam/big.mp4", None).await.unwrap() == big);
        let _ = std::fs::remove_dir_all(&root);
    }

    #[tokio::test]
    async fn scp_errors_are_sentences_without_secrets() {
        let Some(env) = env() else { return };
        let key_text = std::fs::read_to_string(&env["PV_TEST_SFTP_KEY"]).unwrap();
        // A key the server does not know.
        let other = tempfile::tempdir().unwrap();
        let status = std::process::Command::new("ssh-keygen")
            .args(["-q", "-t", "ed25519", "-N", "", "-f"])
            .arg(other.path().join("k"))
            .status()
            .unwrap();
        assert!(status.success());
        let wrong = std::fs::read_to_string(other.path().join("k")).unwrap();
        let values = json!({ "host": env["PV_TEST_SFTP_HOST"], "port": env["PV_TEST_SFTP_PORT"], "user": "root" });
        let b = ScpBackend::from_resolved(
            &ResolvedConfig::for_tests("scp", values.clone(), json!({ "key": wrong })),
            Duration::from_secs(20),
        )
        .unwrap();
        let err = b.check().await.unwrap_err();
        assert_eq!(err.remote_kind(), Some(RemoteKind::Auth), "{err}");
        assert!(!err.to_string().contains("PRIVATE KEY") && !format!("{b:?}").contains(&key_text));

        // A wrong known-hosts entry is refused.
        let mut v = values.clone();
        v["known_hosts"] = json!(format!(
            "[{}]:{} {}",
            env["PV_TEST_SFTP_HOST"],
            env["PV_TEST_SFTP_PORT"],
            std::fs::read_to_string(other.path().join("k.pub")).unwrap()
        ));
        let b = ScpBackend::from_resolved(
            &ResolvedConfig::for_tests("scp", v, json!({ "key": key_text })),
            Duration::from_secs(20),
        )
        .unwrap();
        let err = b.check().await.unwrap_err();
        assert_eq!(err.remote_kind(), Some(RemoteKind::Auth), "{err}");

        let closed =
            std::net::TcpListener::bind("127.0.0.1:0").unwrap().local_addr().unwrap().port();
        let mut v = values;
        v["port"] = json!(closed);
        let b = ScpBackend::from_resolved(
            &ResolvedConfig::for_tests("scp", v, json!({ "key": key_text })),
            Duration::from_secs(20),
        )
        .unwrap();
        let err = b.check().await.unwrap_err();
        assert_eq!(err.remote_kind(), Some(RemoteKind::Unreachable), "{err}");

        // Writing where the account may not.
        let ro = backend(&env, "/proc/pv-no-write", true);
        let err = put(&ro, "x.mp4", b"x").await.unwrap_err();
        assert!(
            matches!(err.remote_kind(), Some(RemoteKind::Permission | RemoteKind::Other)),
            "{err}"
        );
        assert!(err.to_string().contains("cannot create directory"), "{err}");
    }
}
