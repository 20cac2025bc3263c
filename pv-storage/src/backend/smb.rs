//! SMB/CIFS backend (Windows shares, Samba, most NAS boxes) over Samba's `libsmbclient`
//! (through the `pavao` crate; SMB 2 and 3, NTLM or Kerberos sign-in). The pure-Rust `smb`
//! crate cannot join this workspace (its crypto dependencies pin pre-releases the workspace's
//! other crates cannot share), so the machine needs `libsmbclient` (Debian: `libsmbclient`,
//! `libsmbclient-dev` to build).
//!
//! Configuration:
//! - `host` (required): server name or address; `port` (default 445);
//! - `share` (required): the share name, e.g. `cams`;
//! - `root` (optional): a folder inside the share under which all keys live;
//! - `username` (required; `DOMAIN\user` accepted) and `domain` (optional workgroup/domain);
//! - `require_encryption` (optional bool): refuse servers that do not encrypt the session;
//! - secret `password`.
//!
//! libsmbclient is blocking, so every call runs on a blocking thread; one client (with its
//! own library context, reconnecting by itself) serves the module. Writes stream the body to a
//! temporary file `.pvtmp.<name>.<random>` in the target folder and rename it over the final
//! name, so a reader never sees half a segment; on failure the temporary file is deleted.
//! Missing parent folders are created.

use std::collections::HashSet;
use std::io::{Read, Seek, SeekFrom, Write};
use std::ops::Range;
use std::sync::Arc;
use std::time::Duration;

use async_trait::async_trait;
use bytes::Bytes;
use chrono::{DateTime, Utc};
use pavao::{
    SmbClient, SmbCredentials, SmbDirentType, SmbEncryptionLevel, SmbError, SmbOpenOptions,
    SmbOptions,
};

use super::{Backend, BackendCaps, Body, WriteOptions};
use crate::definition::ResolvedConfig;
use crate::error::RemoteKind;
use crate::module::ObjectMeta;
use crate::{Error, Key, Result};

/// Pieces queued between the async body and the blocking writer.
const PIECES_IN_FLIGHT: usize = 4;

/// Connection settings of an SMB module.
#[derive(Clone)]
pub(crate) struct SmbConfig {
    host: String,
    port: u16,
    share: String,
    root: Vec<String>,
    username: String,
    domain: Option<String>,
    password: String,
    require_encryption: bool,
    timeout: Duration,
}

impl std::fmt::Debug for SmbConfig {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("SmbConfig")
            .field("host", &self.host)
            .field("port", &self.port)
            .field("share", &self.share)
            .field("root", &self.root)
            .field("username", &self.username)
            .field("domain", &self.domain)
            .field("password", &"<hidden>")
            .field("require_encryption", &self.require_encryption)
            .finish()
    }
}

impl SmbConfig {
    /// Read the settings from a module's resolved configuration; `timeout` bounds each request.
    pub(crate) fn from_resolved(cfg: &ResolvedConfig, timeout: Duration) -> Result<Self> {
        let host =
            cfg.get("host").ok_or_else(|| Error::Provider("The server is required.".to_owned()))?;
        let share = cfg
            .get("share")
            .ok_or_else(|| Error::Provider("The share is required.".to_owned()))?
            .trim_matches(|c| c == '/' || c == '\\')
            .to_owned();
        if share.is_empty() || share.contains(['/', '\\']) {
            return Err(Error::Provider(
                "The share is a single name such as \"cams\", without slashes.".to_owned(),
            ));
        }
        let root = cfg
            .get("root")
            .unwrap_or_default()
            .split(['/', '\\'])
            .filter(|s| !s.is_empty())
            .map(str::to_owned)
            .collect();
        let mut username = cfg
            .any("username")
            .ok_or_else(|| Error::Provider("The user name is required.".to_owned()))?;
        let mut domain = cfg.get("domain");
        if let Some((d, u)) = username.clone().split_once('\\') {
            domain = Some(d.to_owned());
            username = u.to_owned();
        }
        let port = match cfg.get("port") {
            None => 445,
            Some(p) => p.parse::<u16>().ok().filter(|p| *p != 0).ok_or_else(|| {
                Error::Provider(format!("The port must be a number from 1 to 65535, not \"{p}\"."))
            })?,
        };
        Ok(Self {
            host,
            port,
            share,
            root,
            username,
            domain,
            password: cfg.secret("password").unwrap_or_default(),
            require_encryption: cfg.flag("require_encryption").unwrap_or(false),
            timeout,
        })
    }
}

/// The SMB backend.
pub(crate) struct SmbBackend {
    config: SmbConfig,
    client: Arc<SmbClient>,
    /// Folders (share paths) known to exist.
    dirs: Arc<std::sync::Mutex<HashSet<String>>>,
}

impl std::fmt::Debug for SmbBackend {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("SmbBackend").field("config", &self.config).finish_non_exhaustive()
    }
}

impl SmbBackend {
    /// Build the backend; the first operation connects and signs in.
    pub(crate) fn new(config: SmbConfig) -> Result<Self> {
        let mut creds = SmbCredentials::default()
            .server(format!("smb://{}:{}", config.host, config.port))
            .share(format!("/{}", config.share))
            .username(&config.username)
            .password(&config.password);
        if let Some(domain) = &config.domain {
            creds = creds.workgroup(domain);
        }
        let options = SmbOptions::default()
            .no_auto_anonymous_login(true)
            .case_sensitive(true)
            .encryption_level(if config.require_encryption {
                SmbEncryptionLevel::Require
            } else {
                SmbEncryptionLevel::Request
            });
        let client = SmbClient::new(creds, options).map_err(|e| {
            Error::Provider(format!("The SMB client library could not be set up: {e}."))
        })?;
        let _ = client.set_timeout(config.timeout);
        Ok(Self {
            config,
            client: Arc::new(client),
            dirs: Arc::new(std::sync::Mutex::new(HashSet::new())),
        })
    }

    /// Build from a module's resolved configuration.
    pub(crate) fn from_resolved(cfg: &ResolvedConfig, timeout: Duration) -> Result<Self> {
        Self::new(SmbConfig::from_resolved(cfg, timeout)?)
    }

    fn server_label(&self) -> String {
        format!("{}:{} (share {})", self.config.host, self.config.port, self.config.share)
    }

    /// Share path (`/`-separated, leading `/`) of a key or folder key.
    fn path_of(&self, key: &str) -> String {
        let mut out = String::new();
        for part in self
            .config
            .root
            .iter()
            .map(String::as_str)
            .chain(key.split('/').filter(|s| !s.is_empty()))
        {
            out.push('/');
            out.push_str(part);
        }
        if out.is_empty() { "/".to_owned() } else { out }
    }

    /// Run a blocking libsmbclient call on a blocking thread.
    async fn blocking<T: Send + 'static>(
        &self,
        f: impl FnOnce(&SmbClient) -> std::result::Result<T, SmbError> + Send + 'static,
    ) -> std::result::Result<T, SmbError> {
        let client = self.client.clone();
        match tokio::task::spawn_blocking(move || f(&client)).await {
            Ok(r) => r,
            Err(_) => Err(SmbError::Io(std::io::Error::other("the SMB worker thread stopped"))),
        }
    }

    /// Connect and sign in: stat the root folder.
    pub(crate) async fn connect(&self) -> Result<()> {
        let root = self.path_of("");
        match self.blocking(move |c| c.stat(root)).await {
            Ok(st) if st.mode.is_dir() => Ok(()),
            Ok(_) => Err(remote(
                "connect",
                RemoteKind::NotFound,
                false,
                format!("The folder set as root on {} is a file.", self.server_label()),
            )),
            Err(SmbError::Io(e)) if e.kind() == std::io::ErrorKind::PermissionDenied => {
                Err(remote(
                    "connect",
                    RemoteKind::Auth,
                    false,
                    format!(
                        "The SMB server {} refused the sign-in of {}: check the user name, domain and password, and that the account may use the share.",
                        self.server_label(),
                        self.config.username
                    ),
                ))
            }
            Err(SmbError::Io(e)) if e.kind() == std::io::ErrorKind::NotFound => {
                // A missing root folder is created by the first write; a missing share is not.
                if !self.config.root.is_empty() && self.blocking(|c| c.stat("/")).await.is_ok() {
                    return Ok(());
                }
                Err(remote(
                    "connect",
                    RemoteKind::NotFound,
                    false,
                    format!(
                        "The SMB server {}:{} has no share named \"{}\"; check the share name.",
                        self.config.host, self.config.port, self.config.share
                    ),
                ))
            }
            Err(e) => Err(self.map_err("connect", None, e)),
        }
    }

    fn map_err(&self, op: &'static str, key: Option<&str>, e: SmbError) -> Error {
        let server = format!("the SMB server {}", self.server_label());
        let what = key.map(|k| format!("\"{k}\"")).unwrap_or_else(|| "the share".to_owned());
        match e {
            SmbError::Io(io) => {
                use std::io::ErrorKind as K;
                match io.kind() {
                    K::NotFound => remote(
                        op,
                        RemoteKind::NotFound,
                        false,
                        format!("{what} does not exist on {server}."),
                    ),
                    K::PermissionDenied => remote(
                        op,
                        RemoteKind::Permission,
                        false,
                        format!(
                            "{server} denied {} permission to {op} {what}.",
                            self.config.username
                        ),
                    ),
                    K::StorageFull | K::QuotaExceeded => remote(
                        op,
                        RemoteKind::Other,
                        true,
                        format!("{server} has no space left for {what}."),
                    ),
                    K::IsADirectory => remote(
                        op,
                        RemoteKind::Other,
                        false,
                        format!("{what} is a folder on {server}."),
                    ),
                    _ => io_error(op, &server, &io),
                }
            }
            other => remote(
                op,
                RemoteKind::Other,
                true,
                format!("{server} failed to {op} {what}: {other}."),
            ),
        }
    }

    /// Write `body` as `key`, replacing any object with that key.
    async fn write_body(&self, key: &str, body: &mut Body) -> Result<()> {
        let target = self.path_of(key);
        let (dir, name) = match target.rsplit_once('/') {
            Some((d, n)) => (d.to_owned(), n.to_owned()),
            None => (String::new(), target.clone()),
        };
        let temp = format!("{dir}/{}{name}.{:016x}", Key::RESERVED_PREFIX, rand::random::<u64>());
        let (tx, mut rx) = tokio::sync::mpsc::channel::<Bytes>(PIECES_IN_FLIGHT);
        let client = self.client.clone();
        let dirs = self.dirs.clone();
        let (temp2, target2, dir2) = (temp.clone(), target.clone(), dir.clone());
        // The blocking side: create folders, write the temporary file, rename it.
        let writer = tokio::task::spawn_blocking(move || -> std::result::Result<(), SmbError> {
            let mkdir_error = ensure_dirs(&client, &dirs, &dir2);
            let result = (|| {
                let mut file = match client.open_with(
                    temp2.as_str(),
                    SmbOpenOptions::default().create(true).write(true).truncate(true),
                ) {
                    Ok(f) => f,
                    // The folder could not be created: its reason is the better message.
                    Err(SmbError::Io(e)) if e.kind() == std::io::ErrorKind::NotFound => {
                        return Err(mkdir_error.unwrap_or(SmbError::Io(e)));
                    }
                    Err(e) => return Err(e),
                };
                while let Some(piece) = rx.blocking_recv() {
                    file.write_all(&piece).map_err(SmbError::Io)?;
                }
                file.flush().map_err(SmbError::Io)?;
                drop(file);
                if client.rename(temp2.as_str(), target2.as_str()).is_err() {
                    // Some servers refuse to rename over an existing file.
                    let _ = client.unlink(target2.as_str());
                    client.rename(temp2.as_str(), target2.as_str())?;
                }
                Ok(())
            })();
            if result.is_err() {
                let _ = client.unlink(temp2.as_str());
                if let Ok(mut d) = dirs.lock() {
                    d.clear();
                }
            }
            result
        });
        let mut fed = Ok(());
        loop {
            match body.next().await {
                Ok(Some(piece)) => {
                    if tx.send(piece).await.is_err() {
                        break; // the writer failed; its error is reported below
                    }
                }
                Ok(None) => break,
                Err(e) => {
                    fed = Err(e);
                    break;
                }
            }
        }
        if fed.is_err() {
            // Dropping the sender ends the file early; mark it as failed so it gets removed.
            drop(tx);
            let _ = writer.await;
            let temp = temp.clone();
            let _ = self.blocking(move |c| c.unlink(temp)).await;
            return fed;
        }
        drop(tx);
        match writer.await {
            Ok(Ok(())) => Ok(()),
            Ok(Err(e)) => Err(self.map_err("write", Some(key), e)),
            Err(_) => Err(remote(
                "write",
                RemoteKind::Other,
                true,
                "The SMB writer thread stopped unexpectedly.".to_owned(),
            )),
        }
    }

    async fn read_range(&self, key: &str, range: Option<Range<u64>>) -> Result<Vec<u8>> {
        let path = self.path_of(key);
        self.blocking(move |c| {
            let size = c.stat(path.as_str())?.size;
            let range = range.unwrap_or(0..size);
            let end = range.end.min(size);
            let start = range.start.min(end);
            let mut file = c.open_with(path.as_str(), SmbOpenOptions::default().read(true))?;
            if start > 0 {
                file.seek(SeekFrom::Start(start)).map_err(SmbError::Io)?;
            }
            let mut out = Vec::with_capacity(usize::try_from(end - start).unwrap_or(0));
            (&mut file).take(end - start).read_to_end(&mut out).map_err(SmbError::Io)?;
            Ok(out)
        })
        .await
        .map_err(|e| self.map_err("read", Some(key), e))
    }

    async fn stat_key(&self, key: &str) -> Result<Option<ObjectMeta>> {
        let path = self.path_of(key);
        match self.blocking(move |c| c.stat(path)).await {
            Ok(st) if st.mode.is_dir() => Ok(None),
            Ok(st) => Ok(Some(ObjectMeta {
                key: key.to_owned(),
                size: st.size,
                etag: None,
                last_modified: Some(DateTime::<Utc>::from(st.modified)),
            })),
            Err(SmbError::Io(e)) if e.kind() == std::io::ErrorKind::NotFound => Ok(None),
            Err(e) => Err(self.map_err("stat", Some(key), e)),
        }
    }

    async fn list_prefix(&self, prefix: &str) -> Result<Vec<ObjectMeta>> {
        let start = match prefix.rfind('/') {
            Some(i) => prefix[..i].to_owned(),
            None => String::new(),
        };
        let root: Vec<String> = self.config.root.clone();
        let prefix_owned = prefix.to_owned();
        let path_of = move |key: &str| -> String {
            let mut out = String::new();
            for part in
                root.iter().map(String::as_str).chain(key.split('/').filter(|s| !s.is_empty()))
            {
                out.push('/');
                out.push_str(part);
            }
            if out.is_empty() { "/".to_owned() } else { out }
        };
        let listed = self
            .blocking(move |c| {
                let prefix = prefix_owned;
                let mut out = Vec::new();
                let mut pending = vec![start];
                while let Some(dir_key) = pending.pop() {
                    let dir_path = path_of(&dir_key);
                    // A missing folder lists as empty (libsmbclient gives no reason on opendir).
                    match c.stat(dir_path.as_str()) {
                        Ok(st) if st.mode.is_dir() => {}
                        Ok(_) => continue,
                        Err(SmbError::Io(e)) if e.kind() == std::io::ErrorKind::NotFound => {
                            continue;
                        }
                        Err(e) => return Err(e),
                    }
                    for entry in c.list_dirplus(dir_path.as_str())? {
                        let name = entry.name().to_owned();
                        if name == "." || name == ".." || name.starts_with(Key::RESERVED_PREFIX) {
                            continue;
                        }
                        let key =
                            if dir_key.is_empty() { name } else { format!("{dir_key}/{name}") };
                        match entry.get_type() {
                            SmbDirentType::Dir => {
                                let as_dir = format!("{key}/");
                                if as_dir.starts_with(&prefix) || prefix.starts_with(&as_dir) {
                                    pending.push(key);
                                }
                            }
                            SmbDirentType::File if key.starts_with(&prefix) => {
                                out.push(ObjectMeta {
                                    key,
                                    size: entry.size,
                                    etag: None,
                                    last_modified: Some(DateTime::<Utc>::from(entry.mtime)),
                                })
                            }
                            _ => {}
                        }
                    }
                }
                Ok(out)
            })
            .await
            .map_err(|e| {
                self.map_err("list", Some(if prefix.is_empty() { "/" } else { prefix }), e)
            })?;
        let mut listed = listed;
        listed.sort_by(|a, b| a.key.cmp(&b.key));
        Ok(listed)
    }

    async fn delete_key(&self, key: &str) -> Result<()> {
        let path = self.path_of(key);
        match self.blocking(move |c| c.unlink(path)).await {
            Ok(()) => Ok(()),
            Err(SmbError::Io(e)) if e.kind() == std::io::ErrorKind::NotFound => Ok(()),
            Err(e) => Err(self.map_err("delete", Some(key), e)),
        }
    }
}

/// Create every missing folder of `dir` (a share path with a leading `/`). Returns the first
/// failure other than "exists", which explains a later failure to create the file.
fn ensure_dirs(
    client: &SmbClient,
    dirs: &std::sync::Mutex<HashSet<String>>,
    dir: &str,
) -> Option<SmbError> {
    if dir.is_empty() || dir == "/" || dirs.lock().map(|d| d.contains(dir)).unwrap_or(false) {
        return None;
    }
    let mut current = String::new();
    let mut failure = None;
    for part in dir.split('/').filter(|s| !s.is_empty()) {
        current.push('/');
        current.push_str(part);
        match client.mkdir(current.as_str(), pavao::SmbMode::from(0o755)) {
            Ok(()) => {}
            Err(SmbError::Io(e)) if e.kind() == std::io::ErrorKind::AlreadyExists => {}
            Err(e) => {
                if failure.is_none() {
                    failure = Some(e);
                }
            }
        }
    }
    if failure.is_none()
        && let Ok(mut d) = dirs.lock()
    {
        d.insert(dir.to_owned());
    }
    failure
}

/// An [`Error::Remote`] with an explicit retry verdict.
pub(super) fn remote(
    op: &'static str,
    kind: RemoteKind,
    retryable: bool,
    message: String,
) -> Error {
    Error::Remote { op, message, kind, retryable }
}

/// A remote error from a network I/O failure talking to `server` (a phrase).
pub(super) fn io_error(op: &'static str, server: &str, e: &std::io::Error) -> Error {
    use std::io::ErrorKind as K;
    let (kind, retryable, text) = match e.kind() {
        K::ConnectionRefused => (
            RemoteKind::Unreachable,
            true,
            format!(
                "{server} refused the connection; check the address and port and that the service runs."
            ),
        ),
        K::TimedOut | K::WouldBlock => {
            (RemoteKind::Timeout, true, format!("{server} did not answer in time."))
        }
        K::ConnectionReset
        | K::ConnectionAborted
        | K::BrokenPipe
        | K::UnexpectedEof
        | K::NotConnected => (
            RemoteKind::Unreachable,
            true,
            format!("The connection to {server} was closed during the transfer."),
        ),
        K::HostUnreachable | K::NetworkUnreachable | K::AddrNotAvailable => (
            RemoteKind::Unreachable,
            true,
            format!("{server} cannot be reached from this machine."),
        ),
        K::PermissionDenied => {
            (RemoteKind::Permission, false, format!("{server} denied the {op}."))
        }
        _ => (RemoteKind::Other, true, format!("Talking to {server} failed during {op}: {e}.")),
    };
    remote(op, kind, retryable, text)
}

#[async_trait]
impl Backend for SmbBackend {
    fn target(&self) -> String {
        let root = self.config.root.join("\\");
        let sep = if root.is_empty() { "" } else { "\\" };
        format!(
            "\\\\{}\\{}{sep}{root} (port {})",
            self.config.host, self.config.share, self.config.port
        )
    }

    fn caps(&self) -> BackendCaps {
        BackendCaps { multipart: true, range: true, presign: false, etag_is_md5: false }
    }

    async fn check(&self) -> Result<()> {
        self.connect().await
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
        self.delete_key(key).await
    }
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

    use super::*;
    use std::process::{Child, Command, Stdio};

    const PASSWORD: &str = "Smb-test-Passw0rd";

    /// A Samba server on a free loopback port, serving share `cams` from a temp dir to the
    /// local `root` account (tdbsam), stopped by PID on drop.
    struct Samba {
        child: Child,
        port: u16,
        dir: tempfile::TempDir,
    }

    impl Drop for Samba {
        fn drop(&mut self) {
            let _ = self.child.kill();
            let _ = self.child.wait();
        }
    }

    fn free_port() -> u16 {
        std::net::TcpListener::bind("127.0.0.1:0").unwrap().local_addr().unwrap().port()
    }

    /// Start smbd, or return None (and say why) when Samba is not installed here. Set
    /// `PV_TEST_REQUIRE_SERVERS=1` to make a missing server a failure.
    fn start_samba() -> Option<Samba> {
        let user = std::env::var("USER").unwrap_or_else(|_| "root".to_owned());
        if Command::new("smbd").arg("--version").output().is_err() {
            assert!(
                std::env::var("PV_TEST_REQUIRE_SERVERS").is_err(),
                "smbd is not installed (apt-get install samba)"
            );
            eprintln!("skipped: smbd is not installed (apt-get install samba)");
            return None;
        }
        let dir = tempfile::tempdir().unwrap();
        let d = dir.path();
        for sub in ["share", "private", "lock", "state", "cache", "pid", "log"] {
            std::fs::create_dir_all(d.join(sub)).unwrap();
        }
        let port = free_port();
        let conf = d.join("smb.conf");
        let p = d.display();
        std::fs::write(
            &conf,
            format!(
                "[global]\n interfaces = 127.0.0.1\n bind interfaces only = yes\n smb ports = {port}\n \
                 disable netbios = yes\n server min protocol = SMB2_10\n passdb backend = tdbsam:{p}/private/passdb.tdb\n \
                 private dir = {p}/private\n lock directory = {p}/lock\n state directory = {p}/state\n \
                 cache directory = {p}/cache\n pid directory = {p}/pid\n log file = {p}/log/log.%m\n \
                 map to guest = never\n load printers = no\n printing = bsd\n printcap name = /dev/null\n \
                 disable spoolss = yes\n[cams]\n path = {p}/share\n read only = no\n valid users = {user}\n\
                 [readonly]\n path = {p}/share\n read only = yes\n valid users = {user}\n"
            ),
        )
        .unwrap();
        let mut pdb = Command::new("pdbedit")
            .args(["-s", conf.to_str().unwrap(), "-a", "-u", &user, "-t"])
            .stdin(Stdio::piped())
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn()
            .unwrap();
        write!(pdb.stdin.take().unwrap(), "{PASSWORD}\n{PASSWORD}\n").unwrap();
        assert!(pdb.wait().unwrap().success(), "pdbedit failed");
        let child = Command::new("smbd")
            .args(["--foreground", "--no-process-group", "--configfile"])
            .arg(&conf)
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn()
            .unwrap();
        let samba = Samba { child, port, dir };
        for _ in 0..100 {
            if std::net::TcpStream::connect(("127.0.0.1", port)).is_ok() {
                return Some(samba);
            }
            std::thread::sleep(Duration::from_millis(100));
        }
        panic!("smbd did not start listening on port {port}");
    }

    fn backend(samba: &Samba, share: &str, password: &str, root: &str) -> SmbBackend {
        let user = std::env::var("USER").unwrap_or_else(|_| "root".to_owned());
        let config = serde_json::json!({
            "host": "127.0.0.1", "port": samba.port, "share": share, "root": root, "username": user,
        });
        let secrets = serde_json::json!({ "password": password });
        let cfg = ResolvedConfig::for_tests("smb", config, secrets);
        SmbBackend::from_resolved(&cfg, Duration::from_secs(30)).unwrap()
    }

    fn temp_file(dir: &std::path::Path, name: &str, data: &[u8]) -> std::path::PathBuf {
        let path = dir.join(name);
        std::fs::write(&path, data).unwrap();
        path
    }

    /// Upload a local file through the backend trait, as the module does.
    async fn put(b: &SmbBackend, key: &str, path: &std::path::Path) -> Result<()> {
        let len = std::fs::metadata(path).unwrap().len();
        let mut body = Body::file(tokio::fs::File::open(path).await.unwrap(), len, None);
        b.write(key, &mut body, WriteOptions { chunk: None, concurrent: 1 }).await
    }

    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    async fn smb_write_read_stat_list_overwrite_delete() {
        let Some(samba) = start_samba() else { return };
        let b = backend(&samba, "cams", PASSWORD, "nvr/archive");
        b.connect().await.unwrap();
        let local = tempfile::tempdir().unwrap();
        let key = "front door/2026/12/05/ünïcode-001.mp4".to_owned();
        let data: Vec<u8> = (0..200_000u32).map(|i| (i * 7 % 251) as u8).collect();
        let src = temp_file(local.path(), "a.bin", &data);

        assert_eq!(b.stat(&key).await.unwrap(), None);
        put(&b, &key, &src).await.unwrap();
        // The file really is on the share, under the root folder, and no temp file is left.
        let on_disk =
            samba.dir.path().join("share/nvr/archive/front door/2026/12/05/ünïcode-001.mp4");
        assert_eq!(std::fs::read(&on_disk).unwrap(), data);
        let dir_entries: Vec<_> = std::fs::read_dir(on_disk.parent().unwrap()).unwrap().collect();
        assert_eq!(dir_entries.len(), 1);

        let meta = b.stat(&key).await.unwrap().unwrap();
        assert_eq!(meta.size, data.len() as u64);
        assert!(meta.last_modified.is_some());
        assert_eq!(b.read(&key, None).await.unwrap(), data);
        assert_eq!(b.read(&key, Some(1000..1010)).await.unwrap(), &data[1000..1010]);
        assert_eq!(b.read(&key, Some(199_990..300_000)).await.unwrap(), &data[199_990..]);

        let other = "front door/2026/12/06/b.mp4".to_owned();
        put(&b, &other, &temp_file(local.path(), "b.bin", b"second")).await.unwrap();
        let unrelated = "back/c.mp4".to_owned();
        put(&b, &unrelated, &temp_file(local.path(), "c.bin", b"third")).await.unwrap();
        let all: Vec<String> = b.list("").await.unwrap().into_iter().map(|m| m.key).collect();
        assert_eq!(all, vec![unrelated.clone(), key.clone(), other.clone()]);
        let listed = b.list("front door/2026/12/0").await.unwrap();
        assert_eq!(
            listed.iter().map(|m| m.key.as_str()).collect::<Vec<_>>(),
            vec![key.as_str(), other.as_str()]
        );
        assert_eq!(listed[1].size, 6);
        assert!(b.list("nothing/here/").await.unwrap().is_empty());

        // Overwrite replaces the content.
        put(&b, &key, &temp_file(local.path(), "d.bin", b"short")).await.unwrap();
        assert_eq!(b.read(&key, None).await.unwrap(), b"short");
        assert_eq!(b.stat(&key).await.unwrap().unwrap().size, 5);

        b.delete(&key).await.unwrap();
        assert_eq!(b.stat(&key).await.unwrap(), None);
        assert!(!on_disk.exists());
        b.delete(&key).await.unwrap(); // idempotent
        let err = b.read(&key, None).await.unwrap_err();
        assert_eq!(err.remote_kind(), Some(RemoteKind::NotFound), "{err}");
    }

    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    async fn smb_large_file_round_trip() {
        let Some(samba) = start_samba() else { return };
        let b = backend(&samba, "cams", PASSWORD, "");
        let local = tempfile::tempdir().unwrap();
        let size = 48 * 1024 * 1024 + 12_345;
        let mut data = vec![0u8; size];
        let mut x: u32 = 0x1234_5678;
        for byte in data.iter_mut() {
            x ^= x << 13;
            x ^= x >> 17;
            x ^= x << 5;
            *byte = x as u8;
        }
        let src = temp_file(local.path(), "big.bin", &data);
        let key = "cam/big.mp4".to_owned();
        put(&b, &key, &src).await.unwrap();
        assert_eq!(b.stat(&key).await.unwrap().unwrap().size, size as u64);
        let back = b.read(&key, None).await.unwrap();
        assert_eq!(back.len(), size);
        assert!(back == data, "content differs after a round trip");
        assert_eq!(std::fs::read(samba.dir.path().join("share/cam/big.mp4")).unwrap().len(), size);
    }

    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    async fn smb_errors_are_sentences_without_secrets() {
        let Some(samba) = start_samba() else { return };
        let wrong = "Wrong-Secret-123";
        let err = backend(&samba, "cams", wrong, "").connect().await.unwrap_err();
        assert_eq!(err.remote_kind(), Some(RemoteKind::Auth), "{err}");
        assert!(!err.to_string().contains(wrong) && !format!("{err:?}").contains(wrong));
        assert!(err.to_string().contains("refused the sign-in"), "{err}");

        let err = backend(&samba, "nosuchshare", PASSWORD, "").connect().await.unwrap_err();
        assert_eq!(err.remote_kind(), Some(RemoteKind::NotFound), "{err}");
        assert!(err.to_string().contains("share"), "{err}");

        let ro = backend(&samba, "readonly", PASSWORD, "");
        let local = tempfile::tempdir().unwrap();
        let err = put(&ro, "x/y.mp4", &temp_file(local.path(), "y", b"y")).await.unwrap_err();
        assert_eq!(err.remote_kind(), Some(RemoteKind::Permission), "{err}");
        assert!(!format!("{:?}", ro).contains(PASSWORD));

        let closed = free_port();
        let mut config = backend(&samba, "cams", PASSWORD, "").config.clone();
        config.port = closed;
        let err = SmbBackend::new(config).unwrap().connect().await.unwrap_err();
        assert_eq!(err.remote_kind(), Some(RemoteKind::Unreachable), "{err}");
        assert!(err.is_retryable());
    }
}
