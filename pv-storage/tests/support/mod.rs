//! Discovery of the loopback storage servers that `bins/storage-servers.sh` runs for the tests.
//!
//! The servers' addresses and throw-away credentials are in an env file written by
//! `bins/storage-servers.sh start`: `$PV_STORAGE_SERVERS_ENV`, else
//! `$PV_STORAGE_DIR/env`, else `/tmp/pv-storage-servers/env`. When the file is missing (or its
//! servers no longer answer), the first test that asks runs the script itself, once per test
//! binary; the script serialises concurrent starts with a file lock, so `cargo test -p
//! pv-storage` works on its own. `bins/test.sh` starts them before the test run and stops them
//! after.
#![allow(dead_code)]

use std::collections::HashMap;
use std::net::{SocketAddr, TcpStream};
use std::path::{Path, PathBuf};
use std::process::Command;
use std::sync::OnceLock;
use std::time::Duration;

use serde_json::{Map, Value, json};

/// The values of the servers' env file.
#[derive(Debug)]
pub struct Servers {
    vars: HashMap<String, String>,
    path: PathBuf,
}

/// The configuration of one provider against its loopback server.
#[derive(Debug, Clone)]
pub struct Target {
    /// Provider id (a folder of `pv-storage/modules/`).
    pub provider: &'static str,
    /// Non-secret field values.
    pub config: Map<String, Value>,
    /// Secret field values.
    pub secrets: Map<String, Value>,
    /// Required fields of the provider that this server does without (fake-gcs-server takes no
    /// credential); the test leaves them out and marks them optional in its copy of the
    /// provider.
    pub not_required: &'static [&'static str],
    /// Part size to use instead of the suite's 5 MiB, with the reason, when the server cannot do
    /// what the real service does (fake-gcs-server has no XML multipart upload).
    pub chunk_override: Option<(u64, &'static str)>,
}

/// Where the env file is expected.
pub fn env_path() -> PathBuf {
    if let Some(p) = std::env::var_os("PV_STORAGE_SERVERS_ENV") {
        return PathBuf::from(p);
    }
    let dir = std::env::var_os("PV_STORAGE_DIR")
        .map(PathBuf::from)
        .unwrap_or_else(|| PathBuf::from("/tmp/pv-storage-servers"));
    dir.join("env")
}

/// The running servers, started on first use when needed (panics with the script's output when
/// they cannot be started).
pub fn servers() -> &'static Servers {
    static SERVERS: OnceLock<Servers> = OnceLock::new();
    SERVERS.get_or_init(|| {
        let path = env_path();
        if let Some(s) = Servers::read(&path)
            && s.answering()
        {
            return s;
        }
        start(&path);
        match Servers::read(&path) {
            Some(s) => s,
            None => panic!(
                "bins/storage-servers.sh start finished but wrote no env file at {}",
                path.display()
            ),
        }
    })
}

/// Run `bins/storage-servers.sh start` with its state next to `env_file`.
fn start(env_file: &Path) {
    let script = Path::new(env!("CARGO_MANIFEST_DIR")).join("../bins/storage-servers.sh");
    let dir = env_file.parent().unwrap_or(Path::new("/tmp/pv-storage-servers"));
    let out = Command::new("bash")
        .arg(&script)
        .arg("start")
        .env("PV_STORAGE_DIR", dir)
        .output()
        .unwrap_or_else(|e| panic!("cannot run {}: {e}", script.display()));
    assert!(
        out.status.success(),
        "{} start failed ({}):\n{}\n{}",
        script.display(),
        out.status,
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
}

impl Servers {
    /// Parse `KEY='value'` lines; `None` when the file does not exist.
    fn read(path: &Path) -> Option<Servers> {
        let text = std::fs::read_to_string(path).ok()?;
        let mut vars = HashMap::new();
        for line in text.lines() {
            let line = line.trim();
            if line.is_empty() || line.starts_with('#') {
                continue;
            }
            if let Some((k, v)) = line.split_once('=') {
                let v = v.trim();
                let v = v
                    .strip_prefix('\'')
                    .and_then(|v| v.strip_suffix('\''))
                    .or_else(|| v.strip_prefix('"').and_then(|v| v.strip_suffix('"')))
                    .unwrap_or(v);
                vars.insert(k.trim().to_string(), v.to_string());
            }
        }
        Some(Servers { vars, path: path.to_path_buf() })
    }

    /// Whether the servers of this file still accept connections (a stale file after a reboot
    /// or a `stop` of another run does not count).
    fn answering(&self) -> bool {
        ["PV_TEST_S3_ENDPOINT", "PV_TEST_FTP_ENDPOINT", "PV_TEST_SMB_PORT"].iter().all(|k| {
            match self.vars.get(*k) {
                Some(v) => port_open(v),
                None => false,
            }
        })
    }

    /// A value of the env file; panics naming the variable and the file when it is absent.
    pub fn get(&self, key: &str) -> String {
        match self.vars.get(key) {
            Some(v) => v.clone(),
            None => panic!("{key} is not in {}", self.path.display()),
        }
    }

    /// A value of the env file, if present.
    pub fn opt(&self, key: &str) -> Option<String> {
        self.vars.get(key).cloned()
    }
}

/// Whether `value` (a URL such as `http://127.0.0.1:39100/x`, `host:port` or a bare port) names
/// a port on 127.0.0.1 that accepts connections.
fn port_open(value: &str) -> bool {
    let rest = value.split_once("://").map_or(value, |(_, r)| r);
    let hostport = rest.split('/').next().unwrap_or(rest);
    let port = hostport.rsplit(':').next().unwrap_or(hostport);
    let Ok(port) = port.parse::<u16>() else {
        return false;
    };
    let addr = SocketAddr::from(([127, 0, 0, 1], port));
    TcpStream::connect_timeout(&addr, Duration::from_secs(2)).is_ok()
}

fn map(v: Value) -> Map<String, Value> {
    match v {
        Value::Object(m) => m,
        _ => Map::new(),
    }
}

fn port_of(endpoint: &str) -> u16 {
    endpoint
        .rsplit(':')
        .next()
        .and_then(|p| p.trim_end_matches('/').parse().ok())
        .unwrap_or_else(|| panic!("no port in {endpoint}"))
}

/// `rclone serve s3` (SigV4 enforced) through the generic S3-compatible provider.
pub fn s3() -> Target {
    s3_at(&servers().get("PV_TEST_S3_ENDPOINT"))
}

/// The same bucket through `rclone serve s3 --read-only` (writes fail; rclone answers them with
/// a 500 InternalError rather than a 403).
pub fn s3_read_only() -> Target {
    s3_at(&servers().get("PV_TEST_S3_RO_ENDPOINT"))
}

fn s3_at(endpoint: &str) -> Target {
    let s = servers();
    Target {
        provider: "s3-compatible",
        config: map(json!({
            "endpoint": endpoint,
            "region": s.get("PV_TEST_S3_REGION"),
            "bucket": s.get("PV_TEST_S3_BUCKET"),
            "access_key_id": s.get("PV_TEST_S3_KEY"),
        })),
        secrets: map(json!({ "secret_access_key": s.get("PV_TEST_S3_SECRET") })),
        not_required: &[],
        chunk_override: None,
    }
}

/// Azurite with the account key.
pub fn azblob() -> Target {
    let s = servers();
    Target {
        provider: "azure-blob",
        config: map(json!({
            "account_name": s.get("PV_TEST_AZBLOB_ACCOUNT"),
            "container": s.get("PV_TEST_AZBLOB_CONTAINER"),
            "endpoint": s.get("PV_TEST_AZBLOB_ENDPOINT"),
        })),
        secrets: map(json!({ "account_key": s.get("PV_TEST_AZBLOB_KEY") })),
        not_required: &[],
        chunk_override: None,
    }
}

/// fake-gcs-server, which takes no credentials: without a service-account key and with an
/// endpoint the backend signs nothing (anonymous access).
pub fn gcs() -> Target {
    let s = servers();
    Target {
        provider: "gcs",
        config: map(json!({
            "bucket": s.get("PV_TEST_GCS_BUCKET"),
            "endpoint": s.get("PV_TEST_GCS_ENDPOINT"),
        })),
        secrets: Map::new(),
        not_required: &["credential"],
        chunk_override: Some((
            64 * 1024 * 1024,
            "fake-gcs-server has no XML multipart upload: the 24 MiB file goes as one request",
        )),
    }
}

/// `rclone serve webdav` with basic auth.
pub fn webdav() -> Target {
    webdav_at(&servers().get("PV_TEST_WEBDAV_ENDPOINT"))
}

/// The same tree through `rclone serve webdav --read-only`.
pub fn webdav_read_only() -> Target {
    webdav_at(&servers().get("PV_TEST_WEBDAV_RO_ENDPOINT"))
}

fn webdav_at(endpoint: &str) -> Target {
    let s = servers();
    Target {
        provider: "webdav",
        config: map(json!({
            "endpoint": endpoint,
            "username": s.get("PV_TEST_WEBDAV_USER"),
            "root": "/PentaVision",
        })),
        secrets: map(json!({ "password": s.get("PV_TEST_WEBDAV_PASS") })),
        not_required: &[],
        chunk_override: None,
    }
}

fn ftp_target(
    provider: &'static str,
    port_var: &str,
    encryption: Option<&str>,
    read_only: bool,
) -> Target {
    let s = servers();
    let (user, pass) = if read_only {
        (s.get("PV_TEST_FTP_RO_USER"), s.get("PV_TEST_FTP_RO_PASS"))
    } else {
        (s.get("PV_TEST_FTP_USER"), s.get("PV_TEST_FTP_PASS"))
    };
    let port: u16 = s.get(port_var).parse().unwrap_or_else(|_| panic!("{port_var} is not a port"));
    let mut config = map(json!({
        "host": s.get("PV_TEST_FTP_HOST"),
        "port": port,
        "user": user,
        "root": "/PentaVision",
    }));
    if let Some(e) = encryption {
        config.insert("encryption".into(), json!(e));
    }
    Target {
        provider,
        config,
        secrets: map(json!({ "password": pass })),
        not_required: &[],
        chunk_override: None,
    }
}

/// pyftpdlib, plain FTP.
pub fn ftp() -> Target {
    ftp_target("ftp", "PV_TEST_FTP_PORT", Some("none"), false)
}

/// pyftpdlib, plain FTP, as a user with list and read permissions only.
pub fn ftp_read_only() -> Target {
    ftp_target("ftp", "PV_TEST_FTP_PORT", Some("none"), true)
}

/// pyftpdlib, explicit FTPS (AUTH TLS). The certificate is signed by the test CA in
/// [`tls_ca_bundle`]: clients that trust the platform roots need `SSL_CERT_FILE` pointed at it.
pub fn ftps_explicit() -> Target {
    ftp_target("ftp", "PV_TEST_FTPS_PORT", Some("explicit"), false)
}

/// pyftpdlib, implicit FTPS (TLS from the first byte), same certificate as [`ftps_explicit`].
pub fn ftps_implicit() -> Target {
    ftp_target("ftps", "PV_TEST_FTPS_IMPLICIT_PORT", None, false)
}

/// The platform roots plus the test CA, for `SSL_CERT_FILE`.
pub fn tls_ca_bundle() -> String {
    servers().get("PV_TEST_TLS_CA_BUNDLE")
}

/// OpenSSH's sshd with key login, files under an absolute root.
pub fn sftp() -> Target {
    sftp_at("PV_TEST_SFTP_PORT")
}

/// The same sshd on its read-only port (`internal-sftp -R`).
pub fn sftp_read_only() -> Target {
    sftp_at("PV_TEST_SFTP_RO_PORT")
}

fn sftp_at(port_var: &str) -> Target {
    let s = servers();
    let key_path = s.get("PV_TEST_SFTP_KEY");
    let key = std::fs::read_to_string(&key_path)
        .unwrap_or_else(|e| panic!("cannot read the test SSH key {key_path}: {e}"));
    let port: u16 = s.get(port_var).parse().unwrap_or_else(|_| panic!("{port_var} is not a port"));
    Target {
        provider: "sftp",
        config: map(json!({
            "host": s.get("PV_TEST_SFTP_HOST"),
            "port": port,
            "user": s.get("PV_TEST_SFTP_USER"),
            "known_hosts_strategy": "accept",
            "root": format!("{}/PentaVision", s.get("PV_TEST_SFTP_ROOT")),
        })),
        secrets: map(json!({ "private_key": key })),
        not_required: &[],
        chunk_override: None,
    }
}

/// Samba's smbd, share `pv`.
pub fn smb() -> Target {
    smb_share("PV_TEST_SMB_SHARE")
}

/// Samba's smbd, share `pv-ro` (the same directory, read only).
pub fn smb_read_only() -> Target {
    smb_share("PV_TEST_SMB_RO_SHARE")
}

fn smb_share(share_var: &str) -> Target {
    let s = servers();
    let port: u16 = s
        .get("PV_TEST_SMB_PORT")
        .parse()
        .unwrap_or_else(|_| panic!("PV_TEST_SMB_PORT is not a port"));
    Target {
        provider: "smb",
        config: map(json!({
            "host": s.get("PV_TEST_SMB_HOST"),
            "port": port,
            "share": s.get(share_var),
            "username": s.get("PV_TEST_SMB_USER"),
            "root": "/PentaVision",
        })),
        secrets: map(json!({ "password": s.get("PV_TEST_SMB_PASS") })),
        not_required: &[],
        chunk_override: None,
    }
}

/// A local directory (no server).
pub fn local(root: &Path) -> Target {
    Target {
        provider: "local-path",
        config: map(json!({ "root": root.to_string_lossy() })),
        secrets: Map::new(),
        not_required: &[],
        chunk_override: None,
    }
}

/// The port of an endpoint URL such as `http://127.0.0.1:39100`.
pub fn endpoint_port(endpoint: &str) -> u16 {
    port_of(endpoint)
}

/// OpenStack Swift (one node, tempauth) signed in through the Keystone v3 front.
pub fn swift() -> Target {
    swift_as("PV_TEST_SWIFT_USER", "PV_TEST_SWIFT_PASS")
}

/// The same container as a user who may read and list it but not write.
pub fn swift_read_only() -> Target {
    swift_as("PV_TEST_SWIFT_RO_USER", "PV_TEST_SWIFT_RO_PASS")
}

fn swift_as(user_var: &str, pass_var: &str) -> Target {
    let s = servers();
    Target {
        provider: "openstack-swift",
        config: map(json!({
            "auth_url": s.get("PV_TEST_SWIFT_AUTH_URL"),
            "username": s.get(user_var),
            "project_name": s.get("PV_TEST_SWIFT_PROJECT"),
            "region": s.get("PV_TEST_SWIFT_REGION"),
            "container": s.get("PV_TEST_SWIFT_CONTAINER"),
        })),
        secrets: map(json!({ "password": s.get(pass_var) })),
        not_required: &[],
        chunk_override: None,
    }
}
