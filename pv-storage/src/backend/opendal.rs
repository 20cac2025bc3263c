//! The [`Backend`] over Apache OpenDAL, for every kind OpenDAL has a service for.
//!
//! Config keys per kind. Values are looked up in the non-secret config first, then in the
//! secrets, so a definition may mark any of them secret (an access key ID is often not).
//!
//! | kind | keys |
//! |---|---|
//! | `s3` | `bucket`, `region` (default `us-east-1`), `endpoint`, `root`, `force_path_style` / `enable_virtual_host_style`, `storage_class`, `access_key_id`, `secret_access_key` (both absent = unsigned requests) |
//! | `gcs` | `bucket`, `endpoint`, `root`, `credential` (service-account JSON, or its base64; absent = unsigned, for emulators) |
//! | `azblob` | `container`, `endpoint` (default `https://<account>.blob.core.windows.net`), `account_name`, `root`, `account_key` or `sas_token` |
//! | `swift` | `endpoint`, `container`, `root`, `token` (the Keystone / Rackspace login that yields them is in `swift_auth`) |
//! | `b2` | `bucket`, `bucket_id`, `root`, `application_key_id`, `application_key` |
//! | `dropbox` `onedrive` `gdrive` | `root`, `refresh_token` with `client_id` and `client_secret`, or `access_token` |
//! | `pcloud` | `endpoint` (default `https://api.pcloud.com`), `root`, `username`, `password` |
//! | `webdav` | `endpoint`, `root`, `username`, `password` |
//! | `ftp` | `endpoint` (`ftp://` or `ftps://` = explicit TLS) or `host`, `port`, `encryption` (`explicit` or `none`); `root`, `user`, `password` |
//! | `sftp` | `endpoint` (`host:port` or `ssh://host:port`) or `host`, `port`; `user`, `root`, `known_hosts_strategy` (`strict`, `add`, `accept`), `key` or `private_key` (the key text; written to a 0600 file removed with the backend) |
//! | `fs` | `root` (absolute; created when missing; writes go through `<root>/.pentavision-tmp` and a rename) |
//! | `memory` | — (tests only) |
//!
//! Known limits of OpenDAL's services, handled here: one-shot services (WebDAV, the cloud
//! drives) take the whole object in one write, so it is buffered in memory; FTP range reads
//! fetch the whole object; the S3 ETag of a single PUT is compared with the MD5 of the bytes sent.
//!
//! Layers, innermost first: time-out (`op_timeout` for each call and each I/O step), retry
//! (3 attempts, jittered exponential back-off from 0.5 s; only errors OpenDAL marks temporary),
//! throttle (when a bandwidth limit is set; its burst is at least one part so a part is never
//! refused), concurrency limit. The time-out sits inside the retry so that each attempt gets its
//! own time limit and a hung attempt is retried.

use std::io::Write as _;
use std::ops::Range;
use std::path::PathBuf;
use std::time::Duration;

use async_trait::async_trait;
use base64::Engine as _;
use futures_util::{StreamExt, TryStreamExt};
use opendal::layers::{ConcurrentLimitLayer, RetryLayer, ThrottleLayer, TimeoutLayer};
use opendal::{ErrorKind as OdKind, Operator, services};

use super::{
    Backend, BackendCaps, Body, ByteStream, LayerSettings, WriteOptions, kind_name, redact,
    remote_error,
};
use crate::definition::ResolvedConfig;
use crate::error::RemoteKind;
use crate::module::ObjectMeta;
use crate::{Error, Result};

/// A private key written to a file readable only by us, removed when dropped.
struct KeyFile(PathBuf);

impl Drop for KeyFile {
    fn drop(&mut self) {
        let _ = std::fs::remove_file(&self.0);
    }
}

/// An OpenDAL operator with the context needed for good messages.
pub(crate) struct OpendalBackend {
    op: Operator,
    kind: String,
    target: String,
    /// What to name when the service cannot be reached.
    endpoint: String,
    /// The bucket/container name, for "does not exist" messages.
    bucket: Option<String>,
    /// Secret values, removed from any message.
    secrets: Vec<String>,
    caps: BackendCaps,
    _key_file: Option<KeyFile>,
}

fn need(cfg: &ResolvedConfig, key: &str, what: &str) -> Result<String> {
    cfg.any(key).ok_or_else(|| Error::Provider(format!("{what} is required")))
}

fn write_key_file(text: &str) -> Result<KeyFile> {
    use std::os::unix::fs::OpenOptionsExt as _;
    let name: u64 = rand::random();
    let path = std::env::temp_dir().join(format!("pentavision-sftp-{name:016x}.key"));
    let mut file = std::fs::OpenOptions::new()
        .write(true)
        .create_new(true)
        .mode(0o600)
        .open(&path)
        .map_err(|e| Error::io(&path, e))?;
    let mut text = text.replace("\r\n", "\n");
    if !text.ends_with('\n') {
        text.push('\n');
    }
    file.write_all(text.as_bytes()).map_err(|e| Error::io(&path, e))?;
    Ok(KeyFile(path))
}

impl OpendalBackend {
    pub(crate) fn new(kind: &str, cfg: &ResolvedConfig, layers: LayerSettings) -> Result<Self> {
        // Registers the services and the default HTTP client (once per process).
        static INSTALL: std::sync::Once = std::sync::Once::new();
        INSTALL.call_once(|| {
            opendal::install_default();
            // Several TLS crypto back-ends are linked in; pick one process-wide so that rustls
            // users that do not choose (the FTP service) do not stop. An error means another
            // part of the process chose first, which is fine.
            let _ = tokio_rustls::rustls::crypto::aws_lc_rs::default_provider().install_default();
        });
        let root = cfg.get("root").unwrap_or_else(|| "/".to_owned());
        let mut key_file = None;
        let mut bucket = None;
        let mut endpoint = cfg.get("endpoint").unwrap_or_default();
        let (op, target) = match kind {
            "s3" => {
                let name = need(cfg, "bucket", "The bucket")?;
                let region = cfg.get("region").unwrap_or_else(|| "us-east-1".to_owned());
                let mut b = services::S3::default()
                    .bucket(&name)
                    .region(&region)
                    .root(&root)
                    .disable_config_load()
                    .disable_ec2_metadata();
                if !endpoint.is_empty() {
                    b = b.endpoint(&endpoint);
                } else {
                    endpoint = format!("https://s3.{region}.amazonaws.com");
                }
                match (cfg.any("access_key_id"), cfg.any("secret_access_key")) {
                    (Some(id), Some(secret)) => b = b.access_key_id(&id).secret_access_key(&secret),
                    _ => b = b.skip_signature(),
                }
                if let Some(class) = cfg.get("storage_class") {
                    b = b.default_storage_class(&class);
                }
                if cfg.flag("force_path_style") == Some(false)
                    || cfg.flag("enable_virtual_host_style") == Some(true)
                    || cfg.quirks.virtual_host_style
                {
                    b = b.enable_virtual_host_style();
                }
                if cfg.quirks.list_objects_v1 {
                    b = b.disable_list_objects_v2();
                }
                bucket = Some(name.clone());
                (Operator::new(b).map_err(|e| config_error(kind, &e))?, format!("bucket {name}"))
            }
            "gcs" => {
                let name = need(cfg, "bucket", "The bucket")?;
                let mut b = services::Gcs::default()
                    .bucket(&name)
                    .root(&root)
                    .disable_config_load()
                    .disable_vm_metadata();
                if !endpoint.is_empty() {
                    b = b.endpoint(&endpoint);
                } else {
                    endpoint = "https://storage.googleapis.com".to_owned();
                }
                match cfg.any("credential") {
                    Some(cred) => {
                        let cred = cred.trim();
                        let encoded = if cred.starts_with('{') {
                            base64::engine::general_purpose::STANDARD.encode(cred)
                        } else {
                            cred.to_owned()
                        };
                        b = b.credential(&encoded);
                    }
                    None => b = b.skip_signature(),
                }
                bucket = Some(name.clone());
                (Operator::new(b).map_err(|e| config_error(kind, &e))?, format!("bucket {name}"))
            }
            "azblob" => {
                let name = need(cfg, "container", "The container")?;
                let account = need(cfg, "account_name", "The account name")?;
                if endpoint.is_empty() {
                    endpoint = format!("https://{account}.blob.core.windows.net");
                }
                let mut b = services::Azblob::default()
                    .container(&name)
                    .root(&root)
                    .account_name(&account)
                    .endpoint(&endpoint);
                if let Some(key) = cfg.any("account_key") {
                    b = b.account_key(&key);
                } else if let Some(sas) = cfg.any("sas_token") {
                    b = b.sas_token(sas.trim_start_matches('?'));
                }
                bucket = Some(name.clone());
                (Operator::new(b).map_err(|e| config_error(kind, &e))?, format!("container {name}"))
            }
            "swift" => {
                let name = need(cfg, "container", "The container")?;
                let mut b = services::Swift::default()
                    .endpoint(&need(cfg, "endpoint", "The endpoint")?)
                    .container(&name)
                    .root(&root);
                if let Some(token) = cfg.any("token") {
                    b = b.token(&token);
                }
                bucket = Some(name.clone());
                (Operator::new(b).map_err(|e| config_error(kind, &e))?, format!("container {name}"))
            }
            "b2" => {
                let name = need(cfg, "bucket", "The bucket")?;
                let b = services::B2::default()
                    .bucket(&name)
                    .bucket_id(&need(cfg, "bucket_id", "The bucket ID")?)
                    .root(&root)
                    .application_key_id(&need(cfg, "application_key_id", "The application key ID")?)
                    .application_key(&need(cfg, "application_key", "The application key")?);
                endpoint = "https://api.backblazeb2.com".to_owned();
                bucket = Some(name.clone());
                (Operator::new(b).map_err(|e| config_error(kind, &e))?, format!("bucket {name}"))
            }
            "dropbox" | "onedrive" | "gdrive" => {
                let access = cfg.any("access_token");
                let refresh = cfg.any("refresh_token");
                let id = cfg.any("client_id");
                let secret = cfg.any("client_secret");
                macro_rules! oauth {
                    ($b:expr) => {{
                        let mut b = $b.root(&root);
                        if let Some(t) = &refresh {
                            b = b.refresh_token(t);
                            if let Some(id) = &id {
                                b = b.client_id(id);
                            }
                            if let Some(s) = &secret {
                                b = b.client_secret(s);
                            }
                        } else if let Some(t) = &access {
                            b = b.access_token(t);
                        } else {
                            return Err(Error::Provider(
                                "a refresh token (with the client ID and secret) or an access token is required".to_owned(),
                            ));
                        }
                        Operator::new(b).map_err(|e| config_error(kind, &e))?
                    }};
                }
                let op = match kind {
                    "dropbox" => {
                        endpoint = "https://api.dropboxapi.com".to_owned();
                        oauth!(services::Dropbox::default())
                    }
                    "onedrive" => {
                        endpoint = "https://graph.microsoft.com".to_owned();
                        oauth!(services::Onedrive::default())
                    }
                    _ => {
                        endpoint = "https://www.googleapis.com".to_owned();
                        oauth!(services::Gdrive::default())
                    }
                };
                (op, format!("{} folder {root}", kind_name(kind)))
            }
            "pcloud" => {
                if endpoint.is_empty() {
                    endpoint = "https://api.pcloud.com".to_owned();
                }
                let b = services::Pcloud::default()
                    .endpoint(&endpoint)
                    .root(&root)
                    .username(&need(cfg, "username", "The user name")?)
                    .password(&need(cfg, "password", "The password")?);
                (
                    Operator::new(b).map_err(|e| config_error(kind, &e))?,
                    format!("pCloud folder {root}"),
                )
            }
            "webdav" => {
                let ep = need(cfg, "endpoint", "The server address")?;
                let mut b = services::Webdav::default().endpoint(&ep).root(&root);
                if let Some(u) = cfg.any("username") {
                    b = b.username(&u);
                }
                if let Some(p) = cfg.any("password") {
                    b = b.password(&p);
                }
                if cfg.quirks.disable_create_dir {
                    b = b.disable_create_dir(true);
                }
                (
                    Operator::new(b).map_err(|e| config_error(kind, &e))?,
                    format!("{}{}", ep.trim_end_matches('/'), root),
                )
            }
            "ftp" => {
                let ep = match cfg.get("endpoint") {
                    Some(ep) => ep,
                    None => {
                        let host = need(cfg, "host", "The server address")?;
                        let port = cfg.get("port").unwrap_or_else(|| "21".to_owned());
                        let scheme = match cfg.get("encryption").as_deref() {
                            Some("none") => "ftp",
                            _ => "ftps",
                        };
                        format!("{scheme}://{host}:{port}")
                    }
                };
                endpoint = ep.clone();
                let mut b = services::Ftp::default().endpoint(&ep).root(&root);
                if let Some(u) = cfg.any("user").or_else(|| cfg.any("username")) {
                    b = b.user(&u);
                }
                if let Some(p) = cfg.any("password") {
                    b = b.password(&p);
                }
                (
                    Operator::new(b).map_err(|e| config_error(kind, &e))?,
                    format!("{}{}", ep.trim_end_matches('/'), root),
                )
            }
            "sftp" => {
                let ep = match cfg.get("endpoint") {
                    Some(ep) => ep,
                    None => {
                        let host = need(cfg, "host", "The server address")?;
                        let port = cfg.get("port").unwrap_or_else(|| "22".to_owned());
                        format!("{host}:{port}")
                    }
                };
                // OpenSSH's form: `ssh://host:port` (a bare `host:port` would be a host name).
                let ep = if ep.contains("://") { ep } else { format!("ssh://{ep}") };
                endpoint = ep.replacen("ssh://", "sftp://", 1);
                let mut b = services::Sftp::default().endpoint(&ep).root(&root);
                if let Some(u) = cfg.any("user").or_else(|| cfg.any("username")) {
                    b = b.user(&u);
                }
                if let Some(strategy) = cfg.get("known_hosts_strategy") {
                    b = b.known_hosts_strategy(&strategy);
                }
                if let Some(key) = cfg.any("key").or_else(|| cfg.any("private_key")) {
                    let file = write_key_file(&key)?;
                    b = b.key(&file.0.to_string_lossy());
                    key_file = Some(file);
                }
                (Operator::new(b).map_err(|e| config_error(kind, &e))?, format!("{endpoint}{root}"))
            }
            "fs" => {
                let root = need(cfg, "root", "The folder")?;
                if !root.starts_with('/') {
                    return Err(Error::Provider("the folder must be an absolute path".to_owned()));
                }
                std::fs::create_dir_all(&root).map_err(|e| Error::io(&root, e))?;
                let b = services::Fs::default()
                    .root(&root)
                    .atomic_write_dir(&format!("{}/.pentavision-tmp", root.trim_end_matches('/')));
                endpoint = root.clone();
                (Operator::new(b).map_err(|e| config_error(kind, &e))?, format!("folder {root}"))
            }
            "memory" => {
                let b = services::Memory::default().root(&root);
                endpoint = "memory".to_owned();
                (Operator::new(b).map_err(|e| config_error(kind, &e))?, "memory".to_owned())
            }
            other => {
                return Err(Error::Provider(format!(
                    "the storage backend \"{other}\" is not an OpenDAL backend"
                )));
            }
        };

        let op = Self::with_layers(op, kind, layers)?;
        let full = op.info().capability();
        let caps = BackendCaps {
            multipart: full.write_can_multi,
            range: full.read,
            presign: full.presign_read,
            etag_is_md5: kind == "s3",
        };
        let secrets = cfg.secrets.values().filter_map(|v| v.as_str().map(str::to_owned)).collect();
        Ok(OpendalBackend {
            op,
            kind: kind.to_owned(),
            target,
            endpoint: redact(&endpoint, &[]),
            bucket,
            secrets,
            caps,
            _key_file: key_file,
        })
    }

    fn with_layers(op: Operator, kind: &str, l: LayerSettings) -> Result<Operator> {
        let mut op = op
            .layer(TimeoutLayer::new().with_timeout(l.op_timeout).with_io_timeout(l.op_timeout))
            .layer(
                RetryLayer::new()
                    .with_max_times(3)
                    .with_jitter()
                    .with_factor(2.0)
                    .with_min_delay(Duration::from_millis(500))
                    .with_max_delay(Duration::from_secs(10))
                    .with_notify(LogRetry { kind: kind.to_owned() }),
            );
        if let Some(bandwidth) = l.bandwidth.filter(|b| *b > 0) {
            let bandwidth = u32::try_from(bandwidth).unwrap_or(u32::MAX);
            // One-shot backends send a whole file in one write: allow up to 256 MiB at once.
            let one_shot = matches!(kind, "dropbox" | "onedrive" | "gdrive" | "pcloud" | "webdav");
            let floor =
                if one_shot { 256 * 1024 * 1024 } else { l.chunk.saturating_add(1024 * 1024) };
            let burst = u32::try_from(floor).unwrap_or(u32::MAX).max(bandwidth);
            op = op.layer(ThrottleLayer::new(bandwidth, burst));
        }
        let permits = (l.parallel as usize).saturating_mul(2).saturating_add(4);
        Ok(op.layer(ConcurrentLimitLayer::new(permits)))
    }

    /// Turn an OpenDAL error into a sentence for people.
    fn error(&self, op: &'static str, e: &opendal::Error) -> Error {
        let text = redact(&format!("{e}"), &self.secrets);
        let chain = redact(&source_chain(e), &self.secrets);
        tracing::debug!(backend = %self.kind, op, "storage error: {chain}");
        let status = http_status(&text);
        let code = s3_code(&text);
        let target = &self.target;
        let (kind, message) = match e.kind() {
            OdKind::NotFound if op == "connect" || code.as_deref() == Some("NoSuchBucket") => {
                (RemoteKind::NotFound, self.missing_target())
            }
            OdKind::ConfigInvalid
                if code.as_deref() == Some("NoSuchBucket")
                    || code.as_deref() == Some("NoSuchContainer") =>
            {
                (RemoteKind::NotFound, self.missing_target())
            }
            OdKind::NotFound => {
                (RemoteKind::NotFound, format!("the object does not exist in {target}"))
            }
            OdKind::PermissionDenied => {
                let code_s = code.clone().unwrap_or_default();
                if is_auth_code(&code_s) || status == Some(401) {
                    (RemoteKind::Auth, self.auth_message(status, code.as_deref()))
                } else {
                    (RemoteKind::Permission, self.permission_message(op, status, code.as_deref()))
                }
            }
            OdKind::RateLimited => (
                RemoteKind::RateLimited,
                format!(
                    "{target} asks to slow down (too many requests); uploads will continue later"
                ),
            ),
            OdKind::ConfigInvalid => (
                RemoteKind::Other,
                format!("{target} refused the configuration: {}", short(&text, e.message())),
            ),
            OdKind::Unsupported => (
                RemoteKind::Other,
                format!(
                    "{} cannot {op} here: {}",
                    kind_name(&self.kind),
                    short(&text, e.message())
                ),
            ),
            _ => {
                if let Some(code) = code.as_deref().filter(|c| is_auth_code(c)) {
                    (RemoteKind::Auth, self.auth_message(status, Some(code)))
                } else if status == Some(401) {
                    (RemoteKind::Auth, self.auth_message(status, code.as_deref()))
                } else if status == Some(403) {
                    (RemoteKind::Permission, self.permission_message(op, status, code.as_deref()))
                } else if let Some(reason) = timeout_reason(&text, &chain) {
                    (
                        RemoteKind::Timeout,
                        format!("{} did not answer in time ({reason})", self.endpoint),
                    )
                } else if let Some(reason) = unreachable_reason(&chain) {
                    (RemoteKind::Unreachable, format!("cannot reach {}: {reason}", self.endpoint))
                } else if let Some(reason) = login_reason(&chain) {
                    (RemoteKind::Auth, format!("{} refused the login: {reason}", self.endpoint))
                } else if let Some(s) = status {
                    let detail = code.map(|c| format!(" ({c})")).unwrap_or_default();
                    (RemoteKind::Other, format!("{target} answered HTTP {s}{detail} to {op}"))
                } else {
                    let cause = redact(&root_cause(e), &self.secrets);
                    (RemoteKind::Other, format!("{op} on {target} failed: {}", short(&cause, "")))
                }
            }
        };
        let retryable = e.is_temporary()
            || matches!(
                kind,
                RemoteKind::Unreachable | RemoteKind::Timeout | RemoteKind::RateLimited
            );
        Error::Remote { op, message, kind, retryable }
    }

    fn missing_target(&self) -> String {
        match &self.bucket {
            Some(_) => format!("{} does not exist", self.target),
            None => format!("{} does not exist or cannot be opened", self.target),
        }
    }

    fn auth_message(&self, status: Option<u16>, code: Option<&str>) -> String {
        let detail = match (status, code) {
            (Some(s), Some(c)) => format!(" ({s} {c})"),
            (Some(s), None) => format!(" (HTTP {s})"),
            (None, Some(c)) => format!(" ({c})"),
            (None, None) => String::new(),
        };
        match self.kind.as_str() {
            "s3" => format!("the access key or secret is wrong{detail}"),
            "gcs" => format!("the service-account credential was refused{detail}"),
            "azblob" => format!("the account key or SAS token was refused{detail}"),
            "b2" => format!("the application key ID or key is wrong{detail}"),
            "dropbox" | "onedrive" | "gdrive" => {
                format!("the sign-in token was refused; connect the account again{detail}")
            }
            "swift" => format!("the token was refused or has expired{detail}"),
            _ => format!("the user name or password is wrong{detail}"),
        }
    }

    fn permission_message(
        &self,
        op: &'static str,
        status: Option<u16>,
        code: Option<&str>,
    ) -> String {
        let status = status.unwrap_or(403);
        let target = &self.target;
        if self.kind == "s3" {
            let action = match op {
                "write" => "s3:PutObject",
                "read" | "stat" => "s3:GetObject",
                "list" | "connect" => "s3:ListBucket",
                "delete" => "s3:DeleteObject",
                _ => "the needed permission",
            };
            let code = code.map(|c| format!(" {c}")).unwrap_or_default();
            return format!(
                "{status}{code} from {target}: the key lacks {action} (or the bucket policy denies it)"
            );
        }
        let verb = match op {
            "write" => "write",
            "read" | "stat" => "read",
            "list" | "connect" => "list",
            "delete" => "delete",
            _ => "use",
        };
        format!("{status} from {target}: the credentials may not {verb} objects here")
    }
}

/// Logs each retry (the message has no secrets: OpenDAL errors carry no credentials, and the
/// query string of any URL is removed).
struct LogRetry {
    kind: String,
}

impl opendal::layers::RetryInterceptor for LogRetry {
    fn intercept(&self, event: opendal::layers::RetryEvent<'_>) {
        let text = redact(&event.err.to_string(), &[]);
        tracing::warn!(backend = %self.kind, attempt = event.attempt, retry_after_ms = event.retry_after.as_millis() as u64, "storage call will be retried: {text}");
    }
}

fn config_error(kind: &str, e: &opendal::Error) -> Error {
    Error::Provider(format!(
        "the {} settings are incomplete: {}",
        kind_name(kind),
        redact(e.message(), &[])
    ))
}

fn source_chain(e: &opendal::Error) -> String {
    let mut out = e.to_string();
    let mut source = std::error::Error::source(e);
    while let Some(s) = source {
        out.push_str(": ");
        out.push_str(&s.to_string());
        source = s.source();
    }
    out
}

/// The message and the innermost cause, e.g. `ftp error: 550 No such file or directory`.
fn root_cause(e: &opendal::Error) -> String {
    let mut last = None;
    let mut source = std::error::Error::source(e);
    while let Some(s) = source {
        last = Some(s.to_string());
        source = s.source();
    }
    match last {
        Some(cause) if !e.message().is_empty() => format!("{}: {cause}", e.message()),
        Some(cause) => cause,
        None => e.message().to_owned(),
    }
}

fn http_status(text: &str) -> Option<u16> {
    let at = text.find("status: ")?;
    text[at + 8..].get(..3)?.parse().ok()
}

fn s3_code(text: &str) -> Option<String> {
    let at = text.find("code: \"")?;
    let rest = &text[at + 7..];
    let end = rest.find('"')?;
    Some(rest[..end].to_owned()).filter(|c| !c.is_empty())
}

fn is_auth_code(code: &str) -> bool {
    matches!(
        code,
        "SignatureDoesNotMatch"
            | "InvalidAccessKeyId"
            | "AuthorizationHeaderMalformed"
            | "InvalidToken"
            | "ExpiredToken"
            | "AuthenticationFailed"
            | "InvalidSecurity"
            | "unauthorized"
            | "bad_auth_token"
            | "expired_auth_token"
    )
}

fn short(text: &str, message: &str) -> String {
    let pick = if message.is_empty() { text } else { message };
    let mut out: String = pick.chars().take(240).collect();
    if pick.chars().count() > 240 {
        out.push('…');
    }
    out
}

fn timeout_reason(text: &str, chain: &str) -> Option<&'static str> {
    let lower = format!("{text} {chain}").to_lowercase();
    (lower.contains("timeout reached")
        || lower.contains("timed out")
        || lower.contains("deadline has elapsed"))
    .then_some("the time limit of a call was reached")
}

fn unreachable_reason(chain: &str) -> Option<String> {
    let lower = chain.to_lowercase();
    let reason = if lower.contains("connection refused") {
        "connection refused"
    } else if lower.contains("dns error")
        || lower.contains("failed to lookup")
        || lower.contains("name or service not known")
    {
        "the host name cannot be resolved"
    } else if lower.contains("certificate")
        || lower.contains("invalidcertificate")
        || lower.contains("unknownissuer")
    {
        "its TLS certificate is not trusted"
    } else if lower.contains("network is unreachable") || lower.contains("no route to host") {
        "no network route to it"
    } else if lower.contains("connection reset")
        || lower.contains("broken pipe")
        || lower.contains("connection closed")
    {
        "the connection was dropped"
    } else if lower.contains("error sending request") || lower.contains("client error (connect)") {
        "the connection failed"
    } else {
        return None;
    };
    Some(reason.to_owned())
}

fn login_reason(chain: &str) -> Option<String> {
    let lower = chain.to_lowercase();
    if lower.contains("530") && lower.contains("login") {
        return Some("wrong user name or password (530)".to_owned());
    }
    if lower.contains("permission denied (publickey") || lower.contains("authentication failed") {
        return Some("the key was not accepted".to_owned());
    }
    if lower.contains("host key verification failed") {
        return Some("the server's host key is not known (see the known hosts setting)".to_owned());
    }
    None
}

fn to_meta(key: String, m: &opendal::Metadata) -> ObjectMeta {
    ObjectMeta {
        key,
        size: m.content_length(),
        etag: m
            .etag()
            .map(|e| e.trim_matches('"').trim_start_matches("W/").trim_matches('"').to_owned()),
        last_modified: m
            .last_modified()
            .map(|t| chrono::DateTime::<chrono::Utc>::from(std::time::SystemTime::from(t))),
    }
}

/// Whether a listed entry is one of our own working files.
fn is_internal(path: &str) -> bool {
    path.split('/').any(|s| s == ".pentavision-tmp")
}

#[async_trait]
impl Backend for OpendalBackend {
    fn target(&self) -> String {
        self.target.clone()
    }

    fn caps(&self) -> BackendCaps {
        self.caps
    }

    async fn check(&self) -> Result<()> {
        let cap = self.op.info().capability();
        let result = if cap.list {
            match self.op.lister_with("/").await {
                Ok(mut lister) => lister.next().await.transpose().map(|_| ()),
                Err(e) => Err(e),
            }
        } else {
            self.op.stat("/").await.map(|_| ())
        };
        match result {
            Ok(()) => Ok(()),
            // An empty root that does not exist yet is fine on file-like backends.
            Err(e)
                if e.kind() == OdKind::NotFound
                    && !matches!(self.kind.as_str(), "s3" | "gcs" | "azblob" | "swift" | "b2") =>
            {
                Ok(())
            }
            Err(e) => Err(self.error("connect", &e)),
        }
    }

    async fn write(&self, key: &str, body: &mut Body, options: WriteOptions) -> Result<()> {
        let mut builder = self.op.writer_with(key);
        if self.caps.multipart
            && let Some(chunk) = options.chunk
        {
            builder = builder.chunk(chunk).concurrent(options.concurrent.max(1));
        }
        let mut writer = builder.await.map_err(|e| self.error("write", &e))?;
        let multipart = self.caps.multipart;
        let result: Result<()> = async {
            if multipart {
                while let Some(piece) = body.next().await? {
                    writer.write(piece).await.map_err(|e| self.error("write", &e))?;
                }
            } else {
                // One-shot services take the whole object in a single write.
                let mut pieces = Vec::new();
                while let Some(piece) = body.next().await? {
                    pieces.push(piece);
                }
                writer
                    .write(opendal::Buffer::from(pieces))
                    .await
                    .map_err(|e| self.error("write", &e))?;
            }
            writer.close().await.map_err(|e| self.error("write", &e))?;
            Ok(())
        }
        .await;
        if let Err(e) = result {
            if let Err(abort) = writer.abort().await {
                tracing::warn!(backend = %self.kind, key, "aborting a failed upload failed too: {}", redact(&abort.to_string(), &self.secrets));
            }
            return Err(e);
        }
        Ok(())
    }

    async fn read(&self, key: &str, range: Option<Range<u64>>) -> Result<Vec<u8>> {
        if self.kind == "ftp"
            && let Some(r) = range
        {
            // OpenDAL's FTP reader fails on ranges that do not start at 0 with some servers:
            // read the whole object and cut the range out.
            let all = self.op.read(key).await.map_err(|e| self.error("read", &e))?.to_vec();
            let end = usize::try_from(r.end).unwrap_or(usize::MAX).min(all.len());
            let start = usize::try_from(r.start).unwrap_or(usize::MAX).min(end);
            return Ok(all[start..end].to_vec());
        }
        let mut read = self.op.read_with(key);
        if let Some(r) = range {
            read = read.range(r);
        }
        Ok(read.await.map_err(|e| self.error("read", &e))?.to_vec())
    }

    async fn read_stream(&self, key: &str) -> Result<ByteStream> {
        let reader = self
            .op
            .reader_with(key)
            .chunk(4 * 1024 * 1024)
            .await
            .map_err(|e| self.error("read", &e))?;
        let stream = reader.into_bytes_stream(..).await.map_err(|e| self.error("read", &e))?;
        let target = self.target.clone();
        Ok(Box::pin(stream.map_err(move |e| {
            remote_error(
                "read",
                RemoteKind::Other,
                format!("reading from {target} failed: {}", redact(&e.to_string(), &[])),
            )
        })))
    }

    async fn stat(&self, key: &str) -> Result<Option<ObjectMeta>> {
        match self.op.stat(key).await {
            Ok(m) => Ok(Some(to_meta(key.to_owned(), &m))),
            Err(e) if e.kind() == OdKind::NotFound => Ok(None),
            Err(e) => Err(self.error("stat", &e)),
        }
    }

    async fn list(&self, prefix: &str) -> Result<Vec<ObjectMeta>> {
        let prefix = prefix.trim_start_matches('/');
        let dir = match prefix.rfind('/') {
            Some(i) => &prefix[..=i],
            None => "",
        };
        let mut lister =
            match self.op.lister_with(if dir.is_empty() { "/" } else { dir }).recursive(true).await
            {
                Ok(l) => l,
                Err(e) if e.kind() == OdKind::NotFound => return Ok(Vec::new()),
                Err(e) => return Err(self.error("list", &e)),
            };
        let mut out = Vec::new();
        while let Some(entry) = lister.next().await {
            let entry = entry.map_err(|e| self.error("list", &e))?;
            let path = entry.path().trim_start_matches('/');
            if entry.metadata().is_dir() || !path.starts_with(prefix) || is_internal(path) {
                continue;
            }
            let path = path.to_owned();
            let meta = if entry.metadata().content_length() == 0
                && entry.metadata().last_modified().is_none()
            {
                // Some services list names only.
                match self.op.stat(&path).await {
                    Ok(m) => to_meta(path, &m),
                    Err(_) => to_meta(path, entry.metadata()),
                }
            } else {
                to_meta(path, entry.metadata())
            };
            out.push(meta);
        }
        out.sort_by(|a, b| a.key.cmp(&b.key));
        Ok(out)
    }

    async fn delete(&self, key: &str) -> Result<()> {
        match self.op.delete(key).await {
            Ok(()) => Ok(()),
            Err(e) if e.kind() == OdKind::NotFound => Ok(()),
            Err(e) => Err(self.error("delete", &e)),
        }
    }

    async fn presign_read(&self, key: &str, ttl: Duration) -> Result<Option<String>> {
        if !self.caps.presign {
            return Ok(None);
        }
        let req = self.op.presign_read(key, ttl).await.map_err(|e| self.error("presign", &e))?;
        Ok(Some(req.uri().to_string()))
    }
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]
    use super::*;

    #[test]
    fn parses_status_and_code() {
        let text = r#"PermissionDenied (persistent) at write, context: { uri: http://x/b/k, response: Parts { status: 403, version: HTTP/1.1 } } => S3Error { code: "SignatureDoesNotMatch", message: "..." }"#;
        assert_eq!(http_status(text), Some(403));
        assert_eq!(s3_code(text).as_deref(), Some("SignatureDoesNotMatch"));
    }
}
