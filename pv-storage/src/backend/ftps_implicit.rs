//! FTPS backend over `suppaftp` with rustls, in both flavours:
//! - implicit FTPS (provider `ftps`, backend `ftps_implicit`): TLS from the first byte, usually
//!   port 990 — OpenDAL's FTP service does not speak it;
//! - explicit FTPS (provider `ftp` with `encryption` = `explicit`, or an `ftps://` endpoint):
//!   plain connection, then `AUTH TLS`, usually port 21. OpenDAL's FTP service speaks it but
//!   closes the TLS data connection without `close_notify`, and the server then drops the tail
//!   of large uploads; plain FTP (`encryption` = `none`) stays on OpenDAL.
//!
//! Configuration (`config` / `secrets` of the module):
//! - `host` (required, or taken from `endpoint` = `ftps://host:port`), `port` (default 990
//!   implicit, 21 explicit), `user` (or `username`, required), secret `password`;
//! - `root` (optional): the folder under which all keys live (absolute, or relative to the
//!   account's home folder);
//! - `tls_insecure` (optional bool): accept any server certificate (self-signed NAS boxes) —
//!   the connection stays encrypted but the server is not authenticated;
//! - `tls_ca_pem` (optional): a PEM CA certificate to trust besides the public roots;
//! - `tls_server_name` (optional): the name to check the certificate against when `host` is an
//!   address.
//!
//! Trusted roots: the public web roots, the system CA bundle (or the file `SSL_CERT_FILE`
//! names, as OpenSSL does) and `tls_ca_pem`.
//!
//! One control connection per operation, passive mode, binary transfers, data channels always
//! protected (`PROT P`). Uploads stream the local file to a temporary name `.pvtmp.<name>.<n>`
//! and rename it over the key, so a reader never sees half a segment; a failed upload deletes
//! the temporary file. Range reads use `REST`.

use std::collections::HashSet;
use std::ops::Range;
use std::str::FromStr;
use std::sync::Arc;
use std::time::Duration;

use async_trait::async_trait;
use chrono::{DateTime, Utc};
use suppaftp::list::File as ListEntry;
use suppaftp::tokio::{AsyncRustlsConnector, AsyncRustlsFtpStream, ImplAsyncFtpStream};
use suppaftp::types::FileType;
use suppaftp::{FtpError, Status};
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio_rustls::rustls;

use super::smb::{io_error, remote};
use super::{Backend, BackendCaps, Body, WriteOptions};
use crate::definition::ResolvedConfig;
use crate::error::RemoteKind;
use crate::module::ObjectMeta;
use crate::{Error, Key, Result};

/// When the TLS session starts.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum TlsMode {
    /// TLS from the first byte (usually port 990).
    Implicit,
    /// Plain connection upgraded with `AUTH TLS` (usually port 21).
    Explicit,
}

/// Whether a module of the `ftp` backend asks for explicit FTPS: an `ftps://` endpoint, or
/// without an endpoint any `encryption` but `none` (explicit TLS is the field's default).
pub(crate) fn wants_explicit_tls(cfg: &ResolvedConfig) -> bool {
    match cfg.get("endpoint") {
        Some(ep) => ep.to_ascii_lowercase().starts_with("ftps://"),
        None => !cfg.get("encryption").is_some_and(|e| e.eq_ignore_ascii_case("none")),
    }
}

/// Settings of an FTPS module.
#[derive(Clone)]
pub(crate) struct FtpsConfig {
    mode: TlsMode,
    host: String,
    port: u16,
    username: String,
    password: String,
    root: String,
    tls_insecure: bool,
    tls_ca_pem: Option<String>,
    tls_server_name: Option<String>,
    /// Time allowed to connect, negotiate TLS and sign in.
    timeout: Duration,
}

impl std::fmt::Debug for FtpsConfig {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("FtpsConfig")
            .field("mode", &self.mode)
            .field("host", &self.host)
            .field("port", &self.port)
            .field("username", &self.username)
            .field("password", &"<hidden>")
            .field("root", &self.root)
            .field("tls_insecure", &self.tls_insecure)
            .field("tls_ca_pem", &self.tls_ca_pem.is_some())
            .field("tls_server_name", &self.tls_server_name)
            .finish()
    }
}

impl FtpsConfig {
    /// Read the settings of an implicit FTPS module from its resolved configuration; `timeout`
    /// bounds the connection set-up.
    pub(crate) fn from_resolved(cfg: &ResolvedConfig, timeout: Duration) -> Result<Self> {
        Self::from_resolved_mode(cfg, timeout, TlsMode::Implicit)
    }

    /// Read the settings from a module's resolved configuration, for TLS `mode`.
    pub(crate) fn from_resolved_mode(
        cfg: &ResolvedConfig,
        timeout: Duration,
        mode: TlsMode,
    ) -> Result<Self> {
        // `ftps://host:port[/…]` stands in for `host` and `port` when they are not given.
        let (ep_host, ep_port) = match cfg.get("endpoint") {
            Some(ep) => {
                let rest = ep.split_once("://").map(|(_, r)| r).unwrap_or(&ep);
                let authority = rest.split('/').next().unwrap_or_default();
                match authority.rsplit_once(':') {
                    Some((h, p)) if !h.is_empty() && !p.contains(']') => {
                        (Some(h.to_owned()), Some(p.to_owned()))
                    }
                    _ if !authority.is_empty() => (Some(authority.to_owned()), None),
                    _ => (None, None),
                }
            }
            None => (None, None),
        };
        let default_port = match mode {
            TlsMode::Implicit => 990,
            TlsMode::Explicit => 21,
        };
        let port = match cfg.get("port").or(ep_port) {
            None => default_port,
            Some(p) => p.parse::<u16>().ok().filter(|p| *p != 0).ok_or_else(|| {
                Error::Provider(format!("The port must be a number from 1 to 65535, not \"{p}\"."))
            })?,
        };
        let host = cfg
            .get("host")
            .or(ep_host)
            .map(|h| h.trim_start_matches('[').trim_end_matches(']').to_owned())
            .ok_or_else(|| Error::Provider("The server is required.".to_owned()))?;
        Ok(Self {
            mode,
            host,
            port,
            // The provider form calls it `user`; `username` is accepted too.
            username: cfg
                .any("user")
                .or_else(|| cfg.any("username"))
                .ok_or_else(|| Error::Provider("The user name is required.".to_owned()))?,
            password: cfg.secret("password").unwrap_or_default(),
            root: cfg.get("root").unwrap_or_default().trim_end_matches('/').to_owned(),
            tls_insecure: cfg.flag("tls_insecure").unwrap_or(false),
            tls_ca_pem: cfg.get("tls_ca_pem"),
            tls_server_name: cfg.get("tls_server_name"),
            timeout,
        })
    }
}

/// The FTPS backend (implicit or explicit TLS).
pub(crate) struct FtpsImplicitBackend {
    config: FtpsConfig,
    tls: Arc<rustls::ClientConfig>,
    dirs: std::sync::Mutex<HashSet<String>>,
}

impl std::fmt::Debug for FtpsImplicitBackend {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("FtpsImplicitBackend").field("config", &self.config).finish_non_exhaustive()
    }
}

type Ftp = AsyncRustlsFtpStream;

impl FtpsImplicitBackend {
    /// Build the backend (no network traffic until the first operation).
    pub(crate) fn new(config: FtpsConfig) -> Result<Self> {
        let tls = Arc::new(tls_config(&config)?);
        Ok(Self { config, tls, dirs: std::sync::Mutex::new(HashSet::new()) })
    }

    /// Build an implicit FTPS backend from a module's resolved configuration.
    pub(crate) fn from_resolved(cfg: &ResolvedConfig, timeout: Duration) -> Result<Self> {
        Self::new(FtpsConfig::from_resolved(cfg, timeout)?)
    }

    /// Build an explicit FTPS (`AUTH TLS`) backend from an `ftp` module's resolved
    /// configuration.
    pub(crate) fn explicit_from_resolved(cfg: &ResolvedConfig, timeout: Duration) -> Result<Self> {
        Self::new(FtpsConfig::from_resolved_mode(cfg, timeout, TlsMode::Explicit)?)
    }

    fn server(&self) -> String {
        format!("the FTPS server {}:{}", self.config.host, self.config.port)
    }

    fn path_of(&self, key: &str) -> String {
        if self.config.root.is_empty() {
            key.to_owned()
        } else {
            format!("{}/{key}", self.config.root)
        }
    }

    async fn open(&self) -> Result<Ftp> {
        let server = self.server();
        let fut = async {
            let connector =
                AsyncRustlsConnector::from(tokio_rustls::TlsConnector::from(self.tls.clone()));
            let name =
                self.config.tls_server_name.clone().unwrap_or_else(|| self.config.host.clone());
            let address = (self.config.host.as_str(), self.config.port);
            let mut ftp = match self.config.mode {
                TlsMode::Implicit => {
                    ImplAsyncFtpStream::connect_secure_implicit(address, connector, &name)
                        .await
                        .map_err(|e| self.map_err("connect", None, e))?
                }
                TlsMode::Explicit => {
                    let plain = ImplAsyncFtpStream::connect(address)
                        .await
                        .map_err(|e| self.map_err("connect", None, e))?;
                    plain.into_secure(connector, &name).await.map_err(|e| match e {
                        // AUTH TLS (or PBSZ/PROT) refused: the server has no TLS to offer.
                        FtpError::UnexpectedResponse(r)
                            if matches!(r.status.code(), 500 | 502 | 504 | 534 | 431) =>
                        {
                            remote(
                                "connect",
                                RemoteKind::Unreachable,
                                false,
                                format!(
                                    "{server} does not offer TLS ({}): it refused AUTH TLS. Enable explicit TLS on the server, or choose no encryption only on a network you trust.",
                                    String::from_utf8_lossy(&r.body).trim()
                                ),
                            )
                        }
                        other => self.map_err("connect", None, other),
                    })?
                }
            };
            ftp.login(self.config.username.as_str(), self.config.password.as_str()).await.map_err(
                |e| match e {
                    FtpError::UnexpectedResponse(r) if r.status == Status::NotLoggedIn => remote(
                        "connect",
                        RemoteKind::Auth,
                        false,
                        format!(
                            "{server} refused the user name or password of {}.",
                            self.config.username
                        ),
                    ),
                    other => self.map_err("connect", None, other),
                },
            )?;
            ftp.transfer_type(FileType::Binary)
                .await
                .map_err(|e| self.map_err("connect", None, e))?;
            Ok(ftp)
        };
        match tokio::time::timeout(self.config.timeout, fut).await {
            Ok(r) => r,
            Err(_) => Err(remote(
                "connect",
                RemoteKind::Timeout,
                true,
                format!(
                    "{server} did not complete the TLS handshake and sign-in within {} s.",
                    self.config.timeout.as_secs()
                ),
            )),
        }
    }

    fn map_err(&self, op: &'static str, key: Option<&str>, e: FtpError) -> Error {
        let server = self.server();
        let what = key.map(|k| format!("\"{k}\"")).unwrap_or_else(|| "the server".to_owned());
        match e {
            FtpError::ConnectionError(io) => io_error(op, &server, &io),
            FtpError::SecureError(text) => {
                let port_hint = match self.config.mode {
                    TlsMode::Implicit => {
                        "check too that the port speaks implicit FTPS (TLS at once, usually 990) and not plain FTP"
                    }
                    TlsMode::Explicit => {
                        "check too that the port speaks FTP with AUTH TLS (usually 21) and not implicit FTPS"
                    }
                };
                remote(
                    op,
                    RemoteKind::Unreachable,
                    false,
                    format!(
                        "The TLS handshake with {server} failed ({text}). If the server uses a self-signed certificate, give its CA certificate or allow self-signed certificates; {port_hint}."
                    ),
                )
            }
            FtpError::UnexpectedResponse(r) => {
                let body = String::from_utf8_lossy(&r.body).trim().to_owned();
                let code = r.status.code();
                let lower = body.to_ascii_lowercase();
                let (kind, retryable, text) = match code {
                    530 => (
                        RemoteKind::Auth,
                        false,
                        format!("{server} requires signing in again ({body})."),
                    ),
                    550 | 553
                        if lower.contains("permission")
                            || lower.contains("denied")
                            || lower.contains("not allowed")
                            || lower.contains("privilege") =>
                    {
                        (
                            RemoteKind::Permission,
                            false,
                            format!("{server} refused to {op} {what}: {body}"),
                        )
                    }
                    550 => {
                        (RemoteKind::NotFound, false, format!("{server} has no {what} ({body})."))
                    }
                    553 => (
                        RemoteKind::Permission,
                        false,
                        format!("{server} does not allow the name {what} ({body})."),
                    ),
                    421 | 425 | 426 => (
                        RemoteKind::Unreachable,
                        true,
                        format!(
                            "{server} closed the connection or the data channel during {op} of {what} ({body})."
                        ),
                    ),
                    452 | 552 => (
                        RemoteKind::Other,
                        true,
                        format!("{server} has no space left for {what} ({body})."),
                    ),
                    450 | 451 => (
                        RemoteKind::Other,
                        true,
                        format!("{server} could not {op} {what} right now ({body})."),
                    ),
                    _ => (
                        RemoteKind::Other,
                        true,
                        format!("{server} answered {code} to {op} of {what}: {body}"),
                    ),
                };
                remote(op, kind, retryable, text)
            }
            other => remote(
                op,
                RemoteKind::Other,
                true,
                format!("{server} failed to {op} {what}: {other}."),
            ),
        }
    }

    async fn ensure_dirs(&self, ftp: &mut Ftp, dir: &str) {
        if dir.is_empty() || self.dirs.lock().map(|d| d.contains(dir)).unwrap_or(false) {
            return;
        }
        let mut current = String::new();
        for part in dir.split('/') {
            if part.is_empty() {
                current.push('/');
                continue;
            }
            if !current.is_empty() && !current.ends_with('/') {
                current.push('/');
            }
            current.push_str(part);
            // Already existing folders answer 550; a real problem shows up in STOR.
            let _ = ftp.mkdir(&current).await;
        }
        if let Ok(mut d) = self.dirs.lock() {
            d.insert(dir.to_owned());
        }
    }

    /// Upload `body` as `key`, replacing any object with that key.
    async fn write_body(&self, key: &str, body: &mut Body) -> Result<()> {
        let mut ftp = self.open().await?;
        let target = self.path_of(key);
        let (dir, name) = match target.rsplit_once('/') {
            Some((d, n)) => (d.to_owned(), n.to_owned()),
            None => (String::new(), target.clone()),
        };
        self.ensure_dirs(&mut ftp, &dir).await;
        let temp_name = format!("{}{name}.{:016x}", Key::RESERVED_PREFIX, rand::random::<u64>());
        let temp = if dir.is_empty() { temp_name } else { format!("{dir}/{temp_name}") };

        let result = async {
            let mut stream = match ftp.put_with_stream(&temp).await {
                Ok(s) => s,
                Err(e) => {
                    // A folder we believed existed may be gone: forget the cache for a retry.
                    if let Ok(mut d) = self.dirs.lock() {
                        d.clear();
                    }
                    return Err(self.map_err("write", Some(key), e));
                }
            };
            loop {
                let piece = match body.next().await {
                    Ok(Some(p)) => p,
                    Ok(None) => break,
                    Err(e) => {
                        drop(stream);
                        return Err(e);
                    }
                };
                if let Err(e) = stream.write_all(&piece).await {
                    drop(stream);
                    return Err(io_error("write", &self.server(), &e));
                }
            }
            stream.finish().await.map_err(|e| self.map_err("write", Some(key), e))?;
            if ftp.rename(&temp, &target).await.is_err() {
                // Some servers refuse to rename over an existing file.
                let _ = ftp.rm(&target).await;
                ftp.rename(&temp, &target)
                    .await
                    .map_err(|e| self.map_err("write", Some(key), e))?;
            }
            Ok(())
        }
        .await;
        if result.is_err() {
            // Abort: remove the partial temporary file, on a fresh connection if this one broke.
            if ftp.rm(&temp).await.is_err()
                && let Ok(mut again) = self.open().await
            {
                let _ = again.rm(&temp).await;
                let _ = again.quit().await;
            }
        }
        let _ = ftp.quit().await;
        result
    }

    /// Read `key`, or the byte `range` of it (clamped to the object's end).
    async fn read_range(&self, key: &str, range: Option<Range<u64>>) -> Result<Vec<u8>> {
        let mut ftp = self.open().await?;
        let path = self.path_of(key);
        let result = async {
            let size =
                ftp.size(&path).await.map_err(|e| self.map_err("read", Some(key), e))? as u64;
            let range = range.unwrap_or(0..size);
            let end = range.end.min(size);
            let start = range.start.min(end);
            if start == end {
                return Ok((Vec::new(), true));
            }
            if start > 0 {
                let _ = ftp.resume_transfer(start as usize).await;
            }
            let mut stream =
                ftp.retr_as_stream(&path).await.map_err(|e| self.map_err("read", Some(key), e))?;
            let want = end - start;
            let mut out = Vec::with_capacity(usize::try_from(want).unwrap_or(0));
            let read = (&mut stream).take(want).read_to_end(&mut out).await;
            if let Err(e) = read {
                drop(stream);
                return Err(io_error("read", &self.server(), &e));
            }
            if end < size {
                // Stop early: this connection serves only this read, so close it rather than
                // racing ABOR against the end of the transfer.
                drop(stream);
                return Ok((out, false));
            } else {
                stream.finish().await.map_err(|e| self.map_err("read", Some(key), e))?;
            }
            Ok((out, true))
        }
        .await;
        match result {
            Ok((out, reusable)) => {
                if reusable {
                    let _ = ftp.quit().await;
                }
                Ok(out)
            }
            Err(e) => Err(e),
        }
    }

    /// Size and modification time of `key`, or `None` when there is no such file.
    async fn stat_key(&self, key: &str) -> Result<Option<ObjectMeta>> {
        let mut ftp = self.open().await?;
        let path = self.path_of(key);
        let size = match ftp.size(&path).await {
            Ok(s) => s as u64,
            Err(FtpError::UnexpectedResponse(r)) if r.status == Status::FileUnavailable => {
                let _ = ftp.quit().await;
                return Ok(None);
            }
            Err(e) => {
                let _ = ftp.quit().await;
                return Err(self.map_err("stat", Some(key), e));
            }
        };
        let modified = ftp.mdtm(&path).await.ok().map(|t| t.and_utc());
        let _ = ftp.quit().await;
        Ok(Some(ObjectMeta { key: key.to_owned(), size, etag: None, last_modified: modified }))
    }

    /// Every file whose key starts with `prefix`, sorted by key.
    async fn list_prefix(&self, prefix: &str) -> Result<Vec<ObjectMeta>> {
        let mut ftp = self.open().await?;
        let result = self.list_with(&mut ftp, prefix).await;
        let _ = ftp.quit().await;
        result
    }

    async fn list_with(&self, ftp: &mut Ftp, prefix: &str) -> Result<Vec<ObjectMeta>> {
        let start = match prefix.rfind('/') {
            Some(i) => &prefix[..i],
            None => "",
        };
        let mut out = Vec::new();
        let mut pending = vec![start.to_owned()];
        while let Some(dir_key) = pending.pop() {
            let dir_path = if dir_key.is_empty() {
                if self.config.root.is_empty() { String::new() } else { self.config.root.clone() }
            } else {
                self.path_of(&dir_key)
            };
            let lines = match ftp
                .list(if dir_path.is_empty() { None } else { Some(dir_path.as_str()) })
                .await
            {
                Ok(l) => l,
                Err(FtpError::UnexpectedResponse(r)) if r.status == Status::FileUnavailable => {
                    continue;
                }
                Err(e) => {
                    return Err(self.map_err(
                        "list",
                        Some(if dir_key.is_empty() { "/" } else { &dir_key }),
                        e,
                    ));
                }
            };
            for line in lines {
                let Ok(entry) = ListEntry::from_str(&line) else { continue };
                let name = entry.name().to_owned();
                if name == "." || name == ".." || name.starts_with(Key::RESERVED_PREFIX) {
                    continue;
                }
                let key = if dir_key.is_empty() { name } else { format!("{dir_key}/{name}") };
                if entry.is_directory() {
                    let as_dir = format!("{key}/");
                    if as_dir.starts_with(prefix) || prefix.starts_with(&as_dir) {
                        pending.push(key);
                    }
                } else if key.starts_with(prefix) {
                    out.push(ObjectMeta {
                        key,
                        size: entry.size() as u64,
                        etag: None,
                        last_modified: Some(DateTime::<Utc>::from(entry.modified())),
                    });
                }
            }
        }
        out.sort_by(|a, b| a.key.cmp(&b.key));
        Ok(out)
    }

    /// Delete `key`; deleting a missing file succeeds.
    async fn delete_key(&self, key: &str) -> Result<()> {
        let mut ftp = self.open().await?;
        let path = self.path_of(key);
        let result = match ftp.rm(&path).await {
            Ok(()) => Ok(()),
            Err(e) => match ftp.size(&path).await {
                // Gone (or never there): nothing to delete.
                Err(FtpError::UnexpectedResponse(r)) if r.status == Status::FileUnavailable => {
                    Ok(())
                }
                _ => Err(self.map_err("delete", Some(key), e)),
            },
        };
        let _ = ftp.quit().await;
        result
    }
}

#[async_trait]
impl Backend for FtpsImplicitBackend {
    fn target(&self) -> String {
        let root =
            if self.config.root.is_empty() { "/".to_owned() } else { self.config.root.clone() };
        format!("ftps://{}:{} {root}", self.config.host, self.config.port)
    }

    fn caps(&self) -> BackendCaps {
        BackendCaps { multipart: true, range: true, presign: false, etag_is_md5: false }
    }

    async fn check(&self) -> Result<()> {
        let mut ftp = self.open().await?;
        let result = self.list_with(&mut ftp, ".pentavision-check/").await.map(|_| ());
        let _ = ftp.quit().await;
        result
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

/// The rustls client configuration for the control and data channels (one session cache, so
/// servers that require TLS session reuse on the data channel accept it).
fn tls_config(config: &FtpsConfig) -> Result<rustls::ClientConfig> {
    let provider = Arc::new(rustls::crypto::aws_lc_rs::default_provider());
    let builder = rustls::ClientConfig::builder_with_provider(provider.clone())
        .with_safe_default_protocol_versions()
        .map_err(|e| Error::Provider(format!("TLS cannot be set up: {e}.")))?;
    if config.tls_insecure {
        return Ok(builder
            .dangerous()
            .with_custom_certificate_verifier(Arc::new(AcceptAnyCert(provider)))
            .with_no_client_auth());
    }
    let mut roots = rustls::RootCertStore::empty();
    roots.extend(webpki_roots::TLS_SERVER_ROOTS.iter().cloned());
    add_system_roots(&mut roots);
    if let Some(pem) = &config.tls_ca_pem {
        use rustls::pki_types::pem::PemObject;
        let mut added = 0;
        for cert in rustls::pki_types::CertificateDer::pem_slice_iter(pem.as_bytes()) {
            let cert = cert.map_err(|_| {
                Error::Provider(
                    "The CA certificate is not valid PEM (\"-----BEGIN CERTIFICATE-----\" …)."
                        .to_owned(),
                )
            })?;
            roots
                .add(cert)
                .map_err(|e| Error::Provider(format!("The CA certificate cannot be used: {e}.")))?;
            added += 1;
        }
        if added == 0 {
            return Err(Error::Provider(
                "The CA certificate field holds no \"-----BEGIN CERTIFICATE-----\" block."
                    .to_owned(),
            ));
        }
    }
    Ok(builder.with_root_certificates(roots).with_no_client_auth())
}

/// Add the system's CA bundle: the file `SSL_CERT_FILE` names when set (as OpenSSL does),
/// otherwise the first of the usual distribution bundles that exists. Unreadable files and
/// certificates rustls cannot use are skipped: the public roots are there anyway.
fn add_system_roots(roots: &mut rustls::RootCertStore) {
    use rustls::pki_types::pem::PemObject;
    const BUNDLES: [&str; 4] = [
        "/etc/ssl/certs/ca-certificates.crt",
        "/etc/pki/tls/certs/ca-bundle.crt",
        "/etc/ssl/ca-bundle.pem",
        "/etc/ssl/cert.pem",
    ];
    let file = match std::env::var_os("SSL_CERT_FILE") {
        Some(f) if !f.is_empty() => Some(std::path::PathBuf::from(f)),
        _ => BUNDLES.iter().map(std::path::PathBuf::from).find(|p| p.is_file()),
    };
    let Some(pem) = file.and_then(|f| std::fs::read(f).ok()) else { return };
    let certs = rustls::pki_types::CertificateDer::pem_slice_iter(&pem).filter_map(|c| c.ok());
    roots.add_parsable_certificates(certs);
}

/// Certificate check for `tls_insecure`: the handshake signatures are still verified (so the
/// session is encrypted to whoever holds the key), but the certificate itself is not.
#[derive(Debug)]
struct AcceptAnyCert(Arc<rustls::crypto::CryptoProvider>);

impl rustls::client::danger::ServerCertVerifier for AcceptAnyCert {
    fn verify_server_cert(
        &self,
        _end_entity: &rustls::pki_types::CertificateDer<'_>,
        _intermediates: &[rustls::pki_types::CertificateDer<'_>],
        _server_name: &rustls::pki_types::ServerName<'_>,
        _ocsp: &[u8],
        _now: rustls::pki_types::UnixTime,
    ) -> std::result::Result<rustls::client::danger::ServerCertVerified, rustls::Error> {
        Ok(rustls::client::danger::ServerCertVerified::assertion())
    }

    fn verify_tls12_signature(
        &self,
        message: &[u8],
        cert: &rustls::pki_types::CertificateDer<'_>,
        dss: &rustls::DigitallySignedStruct,
    ) -> std::result::Result<rustls::client::danger::HandshakeSignatureValid, rustls::Error> {
        rustls::crypto::verify_tls12_signature(
            message,
            cert,
            dss,
            &self.0.signature_verification_algorithms,
        )
    }

    fn verify_tls13_signature(
        &self,
        message: &[u8],
        cert: &rustls::pki_types::CertificateDer<'_>,
        dss: &rustls::DigitallySignedStruct,
    ) -> std::result::Result<rustls::client::danger::HandshakeSignatureValid, rustls::Error> {
        rustls::crypto::verify_tls13_signature(
            message,
            cert,
            dss,
            &self.0.signature_verification_algorithms,
        )
    }

    fn supported_verify_schemes(&self) -> Vec<rustls::SignatureScheme> {
        self.0.signature_verification_algorithms.supported_schemes()
    }
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

    use super::*;
    use serde_json::Value;

    /// The loopback test servers' settings written by `bins/storage-servers.sh start`, or
    /// `None` (with a note) when they are not running; `PV_TEST_REQUIRE_SERVERS=1` makes their
    /// absence a failure.
    fn test_servers_env() -> Option<std::collections::HashMap<String, String>> {
        let dir = std::env::var("PV_STORAGE_DIR")
            .unwrap_or_else(|_| "/tmp/pv-storage-servers".to_owned());
        let Ok(text) = std::fs::read_to_string(std::path::Path::new(&dir).join("env")) else {
            assert!(
                std::env::var("PV_TEST_REQUIRE_SERVERS").is_err(),
                "the storage test servers are not running: bins/storage-servers.sh start"
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

    async fn put(b: &FtpsImplicitBackend, key: &str, path: &std::path::Path) -> Result<()> {
        let len = std::fs::metadata(path).unwrap().len();
        let mut body = Body::file(tokio::fs::File::open(path).await.unwrap(), len, None);
        b.write(key, &mut body, WriteOptions { chunk: None, concurrent: 1 }).await
    }

    fn backend(
        env: &std::collections::HashMap<String, String>,
        extra: Value,
        password: &str,
    ) -> FtpsImplicitBackend {
        let mut config = serde_json::json!({
            "host": env["PV_TEST_FTP_HOST"],
            "port": env["PV_TEST_FTPS_IMPLICIT_PORT"],
            "username": env["PV_TEST_FTP_USER"],
            "tls_ca_pem": std::fs::read_to_string(&env["PV_TEST_TLS_CA"]).unwrap(),
        });
        for (k, v) in extra.as_object().unwrap() {
            config[k] = v.clone();
        }
        let secrets = serde_json::json!({ "password": password });
        FtpsImplicitBackend::from_resolved(
            &ResolvedConfig::for_tests("ftps_implicit", config, secrets),
            Duration::from_secs(20),
        )
        .unwrap()
    }

    /// An explicit FTPS (`AUTH TLS`) backend on the test server's explicit port.
    fn explicit(
        env: &std::collections::HashMap<String, String>,
        extra: Value,
        password: &str,
    ) -> FtpsImplicitBackend {
        let mut config = serde_json::json!({
            "host": env["PV_TEST_FTP_HOST"],
            "port": env["PV_TEST_FTPS_PORT"],
            "user": env["PV_TEST_FTP_USER"],
            "encryption": "explicit",
            "tls_ca_pem": std::fs::read_to_string(&env["PV_TEST_TLS_CA"]).unwrap(),
        });
        for (k, v) in extra.as_object().unwrap() {
            config[k] = v.clone();
        }
        let secrets = serde_json::json!({ "password": password });
        FtpsImplicitBackend::explicit_from_resolved(
            &ResolvedConfig::for_tests("ftp", config, secrets),
            Duration::from_secs(20),
        )
        .unwrap()
    }

    fn root() -> String {
        format!("h7-ftps-{:08x}", rand::random::<u32>())
    }

    #[tokio::test]
    async fn ftps_implicit_write_read_stat_list_overwrite_delete() {
        let Some(env) = test_servers_env() else { return };
        let root = root();
        let b = backend(&env, serde_json::json!({ "root": root }), &env["PV_TEST_FTP_PASS"]);
        b.check().await.unwrap();
        let local = tempfile::tempdir().unwrap();
        let key = "front door/2026/12/05/ünïcode 001.mp4".to_owned();
        let data: Vec<u8> = (0..300_000u32).map(|i| (i * 13 % 251) as u8).collect();
        let src = local.path().join("a");
        std::fs::write(&src, &data).unwrap();

        assert_eq!(b.stat(&key).await.unwrap(), None);
        put(&b, &key, &src).await.unwrap();
        let meta = b.stat(&key).await.unwrap().unwrap();
        assert_eq!(meta.size, data.len() as u64);
        assert!(meta.last_modified.is_some());
        assert_eq!(b.read(&key, None).await.unwrap(), data);
        assert_eq!(b.read(&key, Some(5..15)).await.unwrap(), &data[5..15]);
        assert_eq!(b.read(&key, Some(299_990..400_000)).await.unwrap(), &data[299_990..]);
        // A read stopped early does not disturb the server for the next one.
        assert_eq!(b.read(&key, Some(0..3)).await.unwrap(), &data[..3]);

        let other = "front door/2026/12/06/b.mp4".to_owned();
        std::fs::write(local.path().join("b"), b"second").unwrap();
        put(&b, &other, &local.path().join("b")).await.unwrap();
        let listed = b.list("front door/2026/12/0").await.unwrap();
        assert_eq!(
            listed.iter().map(|m| m.key.as_str()).collect::<Vec<_>>(),
            vec![key.as_str(), other.as_str()]
        );
        assert_eq!(listed[1].size, 6);
        assert_eq!(b.list("").await.unwrap().len(), 2, "no temporary files are left behind");
        assert!(b.list("nothing/").await.unwrap().is_empty());

        std::fs::write(local.path().join("c"), b"short").unwrap();
        put(&b, &key, &local.path().join("c")).await.unwrap();
        assert_eq!(b.read(&key, None).await.unwrap(), b"short");

        b.delete(&key).await.unwrap();
        b.delete(&other).await.unwrap();
        assert_eq!(b.stat(&key).await.unwrap(), None);
        b.delete(&key).await.unwrap();
        let err = b.read(&key, None).await.unwrap_err();
        assert_eq!(err.remote_kind(), Some(RemoteKind::NotFound), "{err}");
        let _ = std::fs::remove_dir_all(
            std::path::Path::new(&env["PV_STORAGE_DIR"]).join("ftp/data").join(&root),
        );
    }

    #[tokio::test]
    async fn ftps_implicit_large_file_round_trip() {
        let Some(env) = test_servers_env() else { return };
        let root = root();
        let b = backend(&env, serde_json::json!({ "root": root }), &env["PV_TEST_FTP_PASS"]);
        let local = tempfile::tempdir().unwrap();
        let size = 40 * 1024 * 1024 + 321;
        let mut data = vec![0u8; size];
        let mut x: u32 = 0x9e37_79b9;
        for byte in data.iter_mut() {
            x ^= x << 13;
            x ^= x >> 17;
            x ^= x << 5;
            *byte = x as u8;
        }
        let src = local.path().join("big");
        std::fs::write(&src, &data).unwrap();
        let key = "cam/big.mp4".to_owned();
        put(&b, &key, &src).await.unwrap();
        assert_eq!(b.stat(&key).await.unwrap().unwrap().size, size as u64);
        let back = b.read(&key, None).await.unwrap();
        assert!(back == data, "content differs after a round trip");
        b.delete(&key).await.unwrap();
        let _ = std::fs::remove_dir_all(
            std::path::Path::new(&env["PV_STORAGE_DIR"]).join("ftp/data").join(&root),
        );
    }

    #[tokio::test]
    async fn ftps_implicit_errors_are_sentences_without_secrets() {
        let Some(env) = test_servers_env() else { return };
        let wrong = "Wrong-Secret-123";
        let err = backend(&env, serde_json::json!({}), wrong).check().await.unwrap_err();
        assert_eq!(err.remote_kind(), Some(RemoteKind::Auth), "{err}");
        assert!(!err.to_string().contains(wrong), "{err}");

        // Without the test CA the self-signed chain is refused, with a hint.
        let b = backend(&env, serde_json::json!({ "tls_ca_pem": "" }), &env["PV_TEST_FTP_PASS"]);
        let err = b.check().await.unwrap_err();
        assert_eq!(err.remote_kind(), Some(RemoteKind::Unreachable), "{err}");
        assert!(err.to_string().contains("self-signed"), "{err}");
        // ... and accepted when self-signed certificates are allowed.
        let b = backend(
            &env,
            serde_json::json!({ "tls_ca_pem": "", "tls_insecure": true }),
            &env["PV_TEST_FTP_PASS"],
        );
        b.check().await.unwrap();

        // Plain FTP on the port: the handshake fails with a sentence.
        let b = backend(
            &env,
            serde_json::json!({ "port": env["PV_TEST_FTP_PORT"] }),
            &env["PV_TEST_FTP_PASS"],
        );
        let err = b.check().await.unwrap_err();
        assert!(
            matches!(err.remote_kind(), Some(RemoteKind::Unreachable | RemoteKind::Timeout)),
            "{err}"
        );

        // Read-only account: the write is refused as a permission problem.
        let mut config = serde_json::json!({
            "host": env["PV_TEST_FTP_HOST"], "port": env["PV_TEST_FTPS_IMPLICIT_PORT"],
            "username": env["PV_TEST_FTP_RO_USER"], "tls_insecure": true,
        });
        config["root"] = Value::from(root());
        let ro = FtpsImplicitBackend::from_resolved(
            &ResolvedConfig::for_tests(
                "ftps_implicit",
                config,
                serde_json::json!({ "password": env["PV_TEST_FTP_RO_PASS"] }),
            ),
            Duration::from_secs(20),
        )
        .unwrap();
        let local = tempfile::tempdir().unwrap();
        std::fs::write(local.path().join("x"), b"x").unwrap();
        let err = put(&ro, "x.mp4", &local.path().join("x")).await.unwrap_err();
        assert_eq!(err.remote_kind(), Some(RemoteKind::Permission), "{err}");
        assert!(!format!("{ro:?}").contains(&env["PV_TEST_FTP_RO_PASS"]));

        let closed =
            std::net::TcpListener::bind("127.0.0.1:0").unwrap().local_addr().unwrap().port();
        let b = backend(&env, serde_json::json!({ "port": closed }), "x");
        let err = b.check().await.unwrap_err();
        assert_eq!(err.remote_kind(), Some(RemoteKind::Unreachable), "{err}");
        assert!(err.is_retryable());
    }

    #[test]
    fn explicit_tls_is_chosen_unless_plain_ftp_is_asked_for() {
        let cfg = |v: Value| ResolvedConfig::for_tests("ftp", v, serde_json::json!({}));
        assert!(wants_explicit_tls(&cfg(serde_json::json!({ "encryption": "explicit" }))));
        assert!(wants_explicit_tls(&cfg(serde_json::json!({ "host": "nas" }))));
        assert!(!wants_explicit_tls(&cfg(serde_json::json!({ "encryption": "none" }))));
        assert!(wants_explicit_tls(&cfg(serde_json::json!({ "endpoint": "FTPS://nas:21" }))));
        assert!(!wants_explicit_tls(&cfg(serde_json::json!({ "endpoint": "ftp://nas:21" }))));

        // Host and port come from the endpoint when the fields are absent; 21 by default.
        let c = FtpsConfig::from_resolved_mode(
            &cfg(serde_json::json!({ "endpoint": "ftps://nas.lan:2121/x", "user": "u" })),
            Duration::from_secs(1),
            TlsMode::Explicit,
        )
        .unwrap();
        assert_eq!((c.host.as_str(), c.port), ("nas.lan", 2121));
        let c = FtpsConfig::from_resolved_mode(
            &cfg(serde_json::json!({ "endpoint": "ftps://[::1]", "user": "u" })),
            Duration::from_secs(1),
            TlsMode::Explicit,
        )
        .unwrap();
        assert_eq!((c.host.as_str(), c.port), ("::1", 21));
        let c = FtpsConfig::from_resolved(
            &cfg(serde_json::json!({ "host": "nas", "user": "u" })),
            Duration::from_secs(1),
        )
        .unwrap();
        assert_eq!((c.mode, c.port), (TlsMode::Implicit, 990));
        let err = FtpsConfig::from_resolved_mode(
            &cfg(serde_json::json!({ "user": "u" })),
            Duration::from_secs(1),
            TlsMode::Explicit,
        )
        .unwrap_err();
        assert!(err.to_string().contains("server is required"), "{err}");
    }

    #[tokio::test]
    async fn ftps_explicit_large_file_round_trip() {
        let Some(env) = test_servers_env() else { return };
        let root = root();
        let b = explicit(&env, serde_json::json!({ "root": root }), &env["PV_TEST_FTP_PASS"]);
        b.check().await.unwrap();
        let local = tempfile::tempdir().unwrap();
        // Past the size OpenDAL's explicit FTPS used to cut short (24 MiB arrived as ~22 MB).
        let size = 30 * 1024 * 1024 + 77;
        let mut data = vec![0u8; size];
        let mut x: u32 = 0x1234_5679;
        for byte in data.iter_mut() {
            x ^= x << 13;
            x ^= x >> 17;
            x ^= x << 5;
            *byte = x as u8;
        }
        let src = local.path().join("big");
        std::fs::write(&src, &data).unwrap();
        let key = "cam/2026/big.mp4".to_owned();
        put(&b, &key, &src).await.unwrap();
        assert_eq!(b.stat(&key).await.unwrap().unwrap().size, size as u64);
        assert_eq!(
            b.read(&key, Some(25_000_000..25_000_100)).await.unwrap(),
            &data[25_000_000..25_000_100]
        );
        let back = b.read(&key, None).await.unwrap();
        assert!(back == data, "content differs after a round trip");
        assert_eq!(b.list("cam/").await.unwrap().len(), 1, "no temporary files are left behind");
        b.delete(&key).await.unwrap();
        assert_eq!(b.stat(&key).await.unwrap(), None);
        let _ = std::fs::remove_dir_all(
            std::path::Path::new(&env["PV_STORAGE_DIR"]).join("ftp/data").join(&root),
        );
    }

    #[tokio::test]
    async fn ftps_explicit_errors_are_sentences_without_secrets() {
        let Some(env) = test_servers_env() else { return };
        let wrong = "Wrong-Secret-456";
        let err = explicit(&env, serde_json::json!({}), wrong).check().await.unwrap_err();
        assert_eq!(err.remote_kind(), Some(RemoteKind::Auth), "{err}");
        assert!(!err.to_string().contains(wrong), "{err}");

        // The test CA is needed: without it the chain is refused, with a hint.
        let b = explicit(&env, serde_json::json!({ "tls_ca_pem": "" }), &env["PV_TEST_FTP_PASS"]);
        if std::env::var_os("SSL_CERT_FILE").is_none() {
            let err = b.check().await.unwrap_err();
            assert_eq!(err.remote_kind(), Some(RemoteKind::Unreachable), "{err}");
            assert!(err.to_string().contains("self-signed"), "{err}");
            assert!(err.to_string().contains("AUTH TLS"), "{err}");
        }

        // A plain-FTP-only port refuses AUTH TLS: said so, not a raw status code.
        let b = explicit(
            &env,
            serde_json::json!({ "port": env["PV_TEST_FTP_PORT"] }),
            &env["PV_TEST_FTP_PASS"],
        );
        let err = b.check().await.unwrap_err();
        assert_eq!(err.remote_kind(), Some(RemoteKind::Unreachable), "{err}");
        assert!(err.to_string().contains("does not offer TLS"), "{err}");

        // The implicit port speaks TLS at once: the plain greeting never comes.
        let mut b = explicit(
            &env,
            serde_json::json!({ "port": env["PV_TEST_FTPS_IMPLICIT_PORT"] }),
            &env["PV_TEST_FTP_PASS"],
        );
        b.config.timeout = Duration::from_secs(3);
        let err = b.check().await.unwrap_err();
        assert!(
            matches!(err.remote_kind(), Some(RemoteKind::Unreachable | RemoteKind::Timeout)),
            "{err}"
        );

        // Read-only account: the write is refused as a permission problem.
        let ro = explicit(
            &env,
            serde_json::json!({ "user": env["PV_TEST_FTP_RO_USER"], "root": root() }),
            &env["PV_TEST_FTP_RO_PASS"],
        );
        let local = tempfile::tempdir().unwrap();
        std::fs::write(local.path().join("x"), b"x").unwrap();
        let err = put(&ro, "x.mp4", &local.path().join("x")).await.unwrap_err();
        assert_eq!(err.remote_kind(), Some(RemoteKind::Permission), "{err}");
        assert!(!format!("{ro:?}").contains(&env["PV_TEST_FTP_RO_PASS"]));
        assert!(ro.target().starts_with("ftps://"), "{}", ro.target());
    }
}
