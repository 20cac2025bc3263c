//! Sign-in for OpenStack Swift and Rackspace Cloud Files.
//!
//! OpenDAL's swift service takes a storage URL and a ready token; getting them is left to the
//! caller. This module does it:
//! - **Keystone v3** (any OpenStack cloud): `POST {auth_url}/v3/auth/tokens` with the password
//!   method and a project scope; the token comes back in the `X-Subject-Token` header and the
//!   storage URL is the `public` endpoint of the catalogue's `object-store` service in the
//!   configured region.
//! - **Rackspace identity v2.0**: `POST {identity_url}/tokens` with
//!   `RAX-KSKEY:apiKeyCredentials {username, apiKey}`; the token is `access.token.id` and the
//!   storage URL the `publicURL` of the `cloudFiles` service for the region.
//!
//! [`SwiftTokens`] caches the session and signs in again five minutes before the token expires
//! (or at once after [`SwiftTokens::invalidate`], e.g. when Swift answered 401).
//!
//! Passwords, API keys and tokens never appear in `Debug` output or error messages.

use std::fmt;
use std::ops::Range;
use std::sync::Arc;
use std::time::Duration;

use async_trait::async_trait;
use chrono::{DateTime, NaiveDateTime, TimeDelta, Utc};
use serde_json::{Map, Value, json};
use tokio::sync::Mutex;

use crate::backend::opendal::OpendalBackend;
use crate::backend::{Backend, BackendCaps, Body, ByteStream, LayerSettings, WriteOptions};
use crate::definition::ResolvedConfig;
use crate::error::{Error, RemoteKind, Result};
use crate::module::ObjectMeta;

/// Default Rackspace identity service.
pub const RACKSPACE_IDENTITY_URL: &str = "https://identity.api.rackspacecloud.com/v2.0/";

/// How long before a token's expiry [`SwiftTokens`] signs in again.
pub const REFRESH_MARGIN: Duration = Duration::from_secs(5 * 60);

/// Lifetime assumed when the identity service does not say when a token expires.
const DEFAULT_LIFETIME: TimeDelta = TimeDelta::hours(1);

/// Time allowed for one sign-in request.
const LOGIN_TIMEOUT: Duration = Duration::from_secs(30);

/// How to sign in to a Swift object store.
#[derive(Clone)]
pub enum SwiftIdentity {
    /// OpenStack Keystone v3, password method, project-scoped.
    Keystone {
        /// Keystone's base URL (`OS_AUTH_URL`), with or without the trailing `/v3`.
        auth_url: String,
        /// User name.
        username: String,
        /// Password.
        password: String,
        /// Project (tenant) name to scope the token to.
        project_name: String,
        /// Domain of the user (usually `Default`).
        user_domain_name: String,
        /// Domain of the project (usually `Default`).
        project_domain_name: String,
        /// Region of the object-store endpoint; `None` takes the first public one.
        region: Option<String>,
    },
    /// Rackspace Cloud identity v2.0 with an API key.
    Rackspace {
        /// Identity service base URL, normally [`RACKSPACE_IDENTITY_URL`].
        identity_url: String,
        /// Rackspace user name.
        username: String,
        /// The user's API key.
        api_key: String,
        /// Cloud Files region (`DFW`, `ORD`, `IAD`, `LON`, `SYD`, `HKG`).
        region: String,
    },
}

impl fmt::Debug for SwiftIdentity {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            SwiftIdentity::Keystone {
                auth_url,
                username,
                project_name,
                user_domain_name,
                project_domain_name,
                region,
                ..
            } => f
                .debug_struct("Keystone")
                .field("auth_url", auth_url)
                .field("username", username)
                .field("password", &"<redacted>")
                .field("project_name", project_name)
                .field("user_domain_name", user_domain_name)
                .field("project_domain_name", project_domain_name)
                .field("region", region)
                .finish(),
            SwiftIdentity::Rackspace { identity_url, username, region, .. } => f
                .debug_struct("Rackspace")
                .field("identity_url", identity_url)
                .field("username", username)
                .field("api_key", &"<redacted>")
                .field("region", region)
                .finish(),
        }
    }
}

impl SwiftIdentity {
    /// Build the identity from a module's configuration and secrets (the field keys of the
    /// `openstack-swift` and `rackspace-cloud-files` providers).
    ///
    /// Returns `Ok(None)` when the configuration has no identity fields (a ready `endpoint` and
    /// `token` are used as they are), and an error naming the missing field when it has some but
    /// not all of them.
    pub fn from_config(
        config: &Map<String, Value>,
        secrets: &Map<String, Value>,
    ) -> Result<Option<SwiftIdentity>> {
        let get = |key: &str| -> Option<String> {
            config
                .get(key)
                .or_else(|| secrets.get(key))
                .and_then(Value::as_str)
                .map(str::trim)
                .filter(|s| !s.is_empty())
                .map(str::to_owned)
        };
        let need = |key: &str, label: &str| -> Result<String> {
            get(key).ok_or_else(|| {
                Error::Provider(format!("{label} is required to sign in to the object store."))
            })
        };
        if get("api_key").is_some() {
            return Ok(Some(SwiftIdentity::Rackspace {
                identity_url: get("identity_url")
                    .unwrap_or_else(|| RACKSPACE_IDENTITY_URL.to_owned()),
                username: need("username", "The user name")?,
                api_key: need("api_key", "The API key")?,
                region: need("region", "The region")?,
            }));
        }
        if get("auth_url").is_some() {
            return Ok(Some(SwiftIdentity::Keystone {
                auth_url: need("auth_url", "The identity (Keystone) URL")?,
                username: need("username", "The user name")?,
                password: need("password", "The password")?,
                project_name: need("project_name", "The project name")?,
                user_domain_name: get("user_domain_name").unwrap_or_else(|| "Default".to_owned()),
                project_domain_name: get("project_domain_name")
                    .unwrap_or_else(|| "Default".to_owned()),
                region: get("region"),
            }));
        }
        Ok(None)
    }
}

/// A signed-in Swift session: where the account's containers are and the token to send.
#[derive(Clone, PartialEq, Eq)]
pub struct SwiftSession {
    /// Storage URL of the account (e.g. `https://swift.example.net/v1/AUTH_abc`), without a
    /// trailing slash.
    pub endpoint: String,
    /// The `X-Auth-Token` value.
    pub token: String,
    /// When the token stops being accepted.
    pub expires_at: DateTime<Utc>,
}

impl fmt::Debug for SwiftSession {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("SwiftSession")
            .field("endpoint", &self.endpoint)
            .field("token", &"<redacted>")
            .field("expires_at", &self.expires_at)
            .finish()
    }
}

impl SwiftSession {
    /// Whether the token should be renewed at `now`: it expires within [`REFRESH_MARGIN`].
    pub fn needs_refresh(&self, now: DateTime<Utc>) -> bool {
        let margin = TimeDelta::from_std(REFRESH_MARGIN).unwrap_or(TimeDelta::minutes(5));
        now + margin >= self.expires_at
    }
}

/// Sign in with a fresh HTTP client (30 s time-out).
pub async fn login(cfg: &SwiftIdentity) -> Result<SwiftSession> {
    let client = http_client()?;
    login_with(&client, cfg).await
}

/// Sign in with the given HTTP client.
pub async fn login_with(client: &reqwest::Client, cfg: &SwiftIdentity) -> Result<SwiftSession> {
    match cfg {
        SwiftIdentity::Keystone {
            auth_url,
            username,
            password,
            project_name,
            user_domain_name,
            project_domain_name,
            region,
        } => {
            let url = keystone_tokens_url(auth_url);
            let body = json!({
                "auth": {
                    "identity": {
                        "methods": ["password"],
                        "password": {
                            "user": {
                                "name": username,
                                "domain": { "name": user_domain_name },
                                "password": password,
                            }
                        }
                    },
                    "scope": {
                        "project": {
                            "name": project_name,
                            "domain": { "name": project_domain_name },
                        }
                    }
                }
            });
            let response = send(client, &url, &body).await?;
            let token = response
                .headers()
                .get("x-subject-token")
                .and_then(|v| v.to_str().ok())
                .map(str::to_owned)
                .filter(|t| !t.is_empty())
                .ok_or_else(|| {
                    bad_answer("the identity service signed in but returned no X-Subject-Token")
                })?;
            let doc: Value = read_json(response).await?;
            let expires_at = doc
                .pointer("/token/expires_at")
                .and_then(Value::as_str)
                .and_then(parse_time)
                .unwrap_or_else(|| Utc::now() + DEFAULT_LIFETIME);
            let catalog =
                doc.pointer("/token/catalog").and_then(Value::as_array).ok_or_else(|| {
                    bad_answer(
                        "the token has no service catalogue; check that the project name is right",
                    )
                })?;
            let endpoint = keystone_endpoint(catalog, region.as_deref())?;
            Ok(SwiftSession { endpoint, token, expires_at })
        }
        SwiftIdentity::Rackspace { identity_url, username, api_key, region } => {
            let url = format!("{}/tokens", identity_url.trim_end_matches('/'));
            let body = json!({
                "auth": {
                    "RAX-KSKEY:apiKeyCredentials": { "username": username, "apiKey": api_key }
                }
            });
            let response = send(client, &url, &body).await?;
            let doc: Value = read_json(response).await?;
            let token = doc
                .pointer("/access/token/id")
                .and_then(Value::as_str)
                .filter(|t| !t.is_empty())
                .map(str::to_owned)
                .ok_or_else(|| bad_answer("the identity service's answer has no token"))?;
            let expires_at = doc
                .pointer("/access/token/expires")
                .and_then(Value::as_str)
                .and_then(parse_time)
                .unwrap_or_else(|| Utc::now() + DEFAULT_LIFETIME);
            let catalog =
                doc.pointer("/access/serviceCatalog").and_then(Value::as_array).ok_or_else(
                    || bad_answer("the identity service's answer has no service catalogue"),
                )?;
            let endpoint = rackspace_endpoint(catalog, region)?;
            Ok(SwiftSession { endpoint, token, expires_at })
        }
    }
}

/// A cached Swift session that renews itself [`REFRESH_MARGIN`] before the token expires.
///
/// Call [`session`](Self::session) before each batch of Swift requests and rebuild the client
/// when the token or endpoint changed; call [`invalidate`](Self::invalidate) when Swift answers
/// 401 so the next call signs in again.
pub struct SwiftTokens {
    identity: SwiftIdentity,
    client: reqwest::Client,
    current: Mutex<Option<SwiftSession>>,
}

impl fmt::Debug for SwiftTokens {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("SwiftTokens").field("identity", &self.identity).finish_non_exhaustive()
    }
}

impl SwiftTokens {
    /// A cache for this identity, with its own HTTP client.
    pub fn new(identity: SwiftIdentity) -> Result<Self> {
        Ok(Self::with_client(identity, http_client()?))
    }

    /// A cache for this identity using the given HTTP client.
    pub fn with_client(identity: SwiftIdentity, client: reqwest::Client) -> Self {
        Self { identity, client, current: Mutex::new(None) }
    }

    /// The current session, signing in first when there is none or the token expires within
    /// [`REFRESH_MARGIN`]. Concurrent callers share one sign-in.
    pub async fn session(&self) -> Result<SwiftSession> {
        let mut current = self.current.lock().await;
        if let Some(session) = current.as_ref()
            && !session.needs_refresh(Utc::now())
        {
            return Ok(session.clone());
        }
        let fresh = login_with(&self.client, &self.identity).await?;
        *current = Some(fresh.clone());
        Ok(fresh)
    }

    /// Forget the cached token (Swift refused it); the next [`session`](Self::session) signs in.
    pub async fn invalidate(&self) {
        *self.current.lock().await = None;
    }
}

fn http_client() -> Result<reqwest::Client> {
    reqwest::Client::builder().timeout(LOGIN_TIMEOUT).build().map_err(|e| Error::Remote {
        op: "connect",
        message: format!("Could not prepare the connection to the identity service: {e}."),
        kind: RemoteKind::Other,
        retryable: false,
    })
}

/// `{auth_url}/v3/auth/tokens`, accepting an auth URL that already ends in `/v3`.
fn keystone_tokens_url(auth_url: &str) -> String {
    let base = auth_url.trim_end_matches('/');
    if base.ends_with("/v3") {
        format!("{base}/auth/tokens")
    } else {
        format!("{base}/v3/auth/tokens")
    }
}

async fn send(client: &reqwest::Client, url: &str, body: &Value) -> Result<reqwest::Response> {
    let response = client
        .post(url)
        .header(reqwest::header::ACCEPT, "application/json")
        .json(body)
        .send()
        .await
        .map_err(|e| transport_error(url, &e))?;
    let status = response.status();
    if status.is_success() {
        return Ok(response);
    }
    let code = status.as_u16();
    let (kind, retryable, hint) = match code {
        400 => (
            RemoteKind::Other,
            false,
            "the request was rejected; check the user, project and domain names",
        ),
        401 => (
            RemoteKind::Auth,
            false,
            "the credentials were refused; check the user name and the password or API key",
        ),
        403 => (
            RemoteKind::Permission,
            false,
            "the account may sign in but not to this project, or it is disabled",
        ),
        404 => (
            RemoteKind::NotFound,
            false,
            "no identity service at this address; check the identity URL",
        ),
        429 => (RemoteKind::RateLimited, true, "too many sign-ins; trying again later"),
        _ if status.is_server_error() => {
            (RemoteKind::Unreachable, true, "the identity service is failing; trying again later")
        }
        _ => (RemoteKind::Other, false, "unexpected answer"),
    };
    Err(Error::Remote {
        op: "connect",
        message: format!("Sign-in to the object store failed ({code} from {url}): {hint}."),
        kind,
        retryable,
    })
}

fn transport_error(url: &str, e: &reqwest::Error) -> Error {
    let (kind, what) = if e.is_timeout() {
        (RemoteKind::Timeout, "did not answer in time")
    } else if e.is_connect() {
        (RemoteKind::Unreachable, "could not be reached")
    } else {
        (RemoteKind::Unreachable, "failed")
    };
    Error::Remote {
        op: "connect",
        message: format!("The identity service at {url} {what}: check the URL and the network."),
        kind,
        retryable: true,
    }
}

async fn read_json(response: reqwest::Response) -> Result<Value> {
    response
        .json::<Value>()
        .await
        .map_err(|_| bad_answer("the identity service's answer is not JSON"))
}

fn bad_answer(what: &str) -> Error {
    Error::Remote {
        op: "connect",
        message: format!("Sign-in to the object store failed: {what}."),
        kind: RemoteKind::Other,
        retryable: false,
    }
}

fn parse_time(s: &str) -> Option<DateTime<Utc>> {
    if let Ok(t) = DateTime::parse_from_rfc3339(s) {
        return Some(t.with_timezone(&Utc));
    }
    // Some identity services omit the offset; their times are UTC.
    NaiveDateTime::parse_from_str(s, "%Y-%m-%dT%H:%M:%S%.f").ok().map(|t| t.and_utc())
}

/// The public object-store endpoint of a Keystone v3 catalogue, in `region` when given.
fn keystone_endpoint(catalog: &[Value], region: Option<&str>) -> Result<String> {
    let mut seen = Vec::new();
    for service in catalog {
        if service.get("type").and_then(Value::as_str) != Some("object-store") {
            continue;
        }
        let endpoints = service.get("endpoints").and_then(Value::as_array);
        for endpoint in endpoints.into_iter().flatten() {
            if endpoint.get("interface").and_then(Value::as_str) != Some("public") {
                continue;
            }
            let ep_region = endpoint
                .get("region_id")
                .or_else(|| endpoint.get("region"))
                .and_then(Value::as_str)
                .unwrap_or_default();
            let url = endpoint.get("url").and_then(Value::as_str).unwrap_or_default();
            if url.is_empty() {
                continue;
            }
            match region {
                Some(wanted) if !ep_region.eq_ignore_ascii_case(wanted) => {
                    seen.push(ep_region.to_owned());
                }
                _ => return Ok(url.trim_end_matches('/').to_owned()),
            }
        }
    }
    Err(no_endpoint(region, &seen))
}

/// The `publicURL` of the Cloud Files service of a Rackspace v2.0 catalogue in `region`.
fn rackspace_endpoint(catalog: &[Value], region: &str) -> Result<String> {
    let mut seen = Vec::new();
    for service in catalog {
        let name = service.get("name").and_then(Value::as_str);
        let kind = service.get("type").and_then(Value::as_str);
        if name != Some("cloudFiles") && kind != Some("object-store") {
            continue;
        }
        let endpoints = service.get("endpoints").and_then(Value::as_array);
        for endpoint in endpoints.into_iter().flatten() {
            let ep_region = endpoint.get("region").and_then(Value::as_str).unwrap_or_default();
            let url = endpoint.get("publicURL").and_then(Value::as_str).unwrap_or_default();
            if url.is_empty() {
                continue;
            }
            if ep_region.eq_ignore_ascii_case(region) {
                return Ok(url.trim_end_matches('/').to_owned());
            }
            seen.push(ep_region.to_owned());
        }
    }
    Err(no_endpoint(Some(region), &seen))
}

fn no_endpoint(region: Option<&str>, seen: &[String]) -> Error {
    let message = match (region, seen.is_empty()) {
        (_, true) => "Signed in, but the account's service catalogue has no object storage \
                      endpoint: check that object storage is enabled for this project."
            .to_owned(),
        (Some(r), false) => format!(
            "Signed in, but there is no object storage in region {r}; the account has it in: {}.",
            seen.join(", ")
        ),
        (None, false) => "Signed in, but no public object storage endpoint was found.".to_owned(),
    };
    Error::Remote { op: "connect", message, kind: RemoteKind::NotFound, retryable: false }
}

/// The `swift` backend: OpenDAL's swift service behind an identity sign-in.
///
/// With identity fields in the configuration (Keystone v3 or Rackspace), the storage URL and
/// token come from [`SwiftTokens`]; the OpenDAL operator is rebuilt whenever the token changes
/// (renewal five minutes before expiry), and a call refused as unauthorised drops the token so
/// the next call signs in again (read-only calls are retried once at once). Without identity
/// fields the configured `endpoint` and `token` are used as they are. Building never touches
/// the network: a sign-in failure shows up in the first call (the connection test's first step).
pub(crate) async fn build_backend(
    cfg: &ResolvedConfig,
    layers: LayerSettings,
) -> Result<Arc<dyn Backend>> {
    let Some(identity) = SwiftIdentity::from_config(&cfg.values, &cfg.secrets)? else {
        return Ok(Arc::new(OpendalBackend::new("swift", cfg, layers)?));
    };
    // A placeholder operator gives the target and capabilities without signing in.
    let placeholder = with_session(
        cfg,
        &SwiftSession {
            endpoint: "https://swift.invalid/v1/pending".to_owned(),
            token: String::new(),
            expires_at: Utc::now(),
        },
    );
    let probe = OpendalBackend::new("swift", &placeholder, layers)?;
    Ok(Arc::new(SwiftBackend {
        target: probe.target(),
        caps: probe.caps(),
        tokens: SwiftTokens::new(identity)?,
        cfg: cfg.clone(),
        layers,
        current: Mutex::new(None),
    }))
}

/// `cfg` with the session's storage URL and token in place of the identity fields.
fn with_session(cfg: &ResolvedConfig, session: &SwiftSession) -> ResolvedConfig {
    let mut cfg = cfg.clone();
    cfg.values.insert("endpoint".to_owned(), Value::String(session.endpoint.clone()));
    cfg.secrets.insert("token".to_owned(), Value::String(session.token.clone()));
    cfg
}

struct SwiftBackend {
    target: String,
    caps: BackendCaps,
    tokens: SwiftTokens,
    cfg: ResolvedConfig,
    layers: LayerSettings,
    /// The operator built for the current token.
    current: Mutex<Option<(String, Arc<dyn Backend>)>>,
}

impl SwiftBackend {
    /// The operator for a valid token, signing in or rebuilding it when needed.
    async fn inner(&self) -> Result<Arc<dyn Backend>> {
        let session = self.tokens.session().await?;
        let mut current = self.current.lock().await;
        if let Some((token, backend)) = current.as_ref()
            && *token == session.token
        {
            return Ok(backend.clone());
        }
        let backend: Arc<dyn Backend> = Arc::new(OpendalBackend::new(
            "swift",
            &with_session(&self.cfg, &session),
            self.layers,
        )?);
        *current = Some((session.token, backend.clone()));
        Ok(backend)
    }

    /// After an unauthorised answer, forget the token; `true` when the call may be retried.
    async fn refused(&self, result_err: &Error) -> bool {
        if result_err.remote_kind() == Some(RemoteKind::Auth) {
            self.tokens.invalidate().await;
            *self.current.lock().await = None;
            return true;
        }
        false
    }
}

/// Run a read-only call, signing in again and retrying once when the token was refused.
macro_rules! with_retry {
    ($self:ident, $b:ident => $call:expr) => {{
        let $b = $self.inner().await?;
        match $call.await {
            Err(e) if $self.refused(&e).await => {
                let $b = $self.inner().await?;
                $call.await
            }
            other => other,
        }
    }};
}

#[async_trait]
impl Backend for SwiftBackend {
    fn target(&self) -> String {
        self.target.clone()
    }

    fn caps(&self) -> BackendCaps {
        self.caps
    }

    async fn check(&self) -> Result<()> {
        with_retry!(self, b => b.check())
    }

    async fn write(&self, key: &str, body: &mut Body, options: WriteOptions) -> Result<()> {
        // The body cannot be replayed here: the queue retries the whole upload, with a new token.
        let b = self.inner().await?;
        let result = b.write(key, body, options).await;
        if let Err(e) = &result {
            self.refused(e).await;
        }
        result
    }

    async fn read(&self, key: &str, range: Option<Range<u64>>) -> Result<Vec<u8>> {
        with_retry!(self, b => b.read(key, range.clone()))
    }

    async fn read_stream(&self, key: &str) -> Result<ByteStream> {
        with_retry!(self, b => b.read_stream(key))
    }

    async fn stat(&self, key: &str) -> Result<Option<ObjectMeta>> {
        with_retry!(self, b => b.stat(key))
    }

    async fn list(&self, prefix: &str) -> Result<Vec<ObjectMeta>> {
        with_retry!(self, b => b.list(prefix))
    }

    async fn delete(&self, key: &str) -> Result<()> {
        with_retry!(self, b => b.delete(key))
    }

    async fn presign_read(&self, key: &str, ttl: Duration) -> Result<Option<String>> {
        with_retry!(self, b => b.presign_read(key, ttl))
    }
}

#[cfg(test)]
mod tests {
    //! Against a small HTTP server on loopback that speaks the two identity APIs' slices.
    #![allow(clippy::unwrap_used, clippy::panic)]

    use std::sync::{Arc, Mutex as StdMutex};

    use tokio::io::{AsyncReadExt, AsyncWriteExt};
    use tokio::net::TcpListener;

    use super::*;

    /// One request the server received.
    #[derive(Debug, Clone)]
    struct Seen {
        method: String,
        path: String,
        content_type: String,
        auth_token: String,
        body: Value,
    }

    /// What the server answers: status, extra headers, JSON body.
    type Reply = Arc<dyn Fn(&Seen) -> (u16, Vec<(String, String)>, Value) + Send + Sync>;

    struct Server {
        base: String,
        seen: Arc<StdMutex<Vec<Seen>>>,
    }

    impl Server {
        async fn start(reply: Reply) -> Server {
            let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
            let base = format!("http://{}", listener.local_addr().unwrap());
            let seen = Arc::new(StdMutex::new(Vec::new()));
            let log = seen.clone();
            tokio::spawn(async move {
                loop {
                    let Ok((mut sock, _)) = listener.accept().await else { return };
                    let log = log.clone();
                    let reply = reply.clone();
                    tokio::spawn(async move {
                        let Some(req) = read_request(&mut sock).await else { return };
                        log.lock().unwrap().push(req.clone());
                        let (status, headers, body) = reply(&req);
                        let body = body.to_string();
                        let mut head = format!(
                            "HTTP/1.1 {status} X\r\nContent-Type: application/json\r\nContent-Length: {}\r\nConnection: close\r\n",
                            body.len()
                        );
                        for (k, v) in headers {
                            head.push_str(&format!("{k}: {v}\r\n"));
                        }
                        head.push_str("\r\n");
                        let _ = sock.write_all(head.as_bytes()).await;
                        let _ = sock.write_all(body.as_bytes()).await;
                        let _ = sock.shutdown().await;
                    });
                }
            });
            Server { base, seen }
        }

        fn requests(&self) -> Vec<Seen> {
            self.seen.lock().unwrap().clone()
        }
    }

    async fn read_request(sock: &mut tokio::net::TcpStream) -> Option<Seen> {
        let mut buf = Vec::new();
        let mut chunk = [0u8; 4096];
        let header_end = loop {
            let n = sock.read(&mut chunk).await.ok()?;
            if n == 0 {
                return None;
            }
            buf.extend_from_slice(&chunk[..n]);
            if let Some(pos) = buf.windows(4).position(|w| w == b"\r\n\r\n") {
                break pos + 4;
            }
        };
        let head = String::from_utf8_lossy(&buf[..header_end]).to_string();
        let mut lines = head.split("\r\n");
        let mut first = lines.next()?.split(' ');
        let method = first.next()?.to_owned();
        let path = first.next()?.to_owned();
        let mut length = 0usize;
        let mut content_type = String::new();
        let mut auth_token = String::new();
        for line in lines {
            if let Some((k, v)) = line.split_once(':') {
                match k.trim().to_ascii_lowercase().as_str() {
                    "content-length" => length = v.trim().parse().ok()?,
                    "content-type" => content_type = v.trim().to_owned(),
                    "x-auth-token" => auth_token = v.trim().to_owned(),
                    _ => {}
                }
            }
        }
        while buf.len() < header_end + length {
            let n = sock.read(&mut chunk).await.ok()?;
            if n == 0 {
                break;
            }
            buf.extend_from_slice(&chunk[..n]);
        }
        let body = serde_json::from_slice(&buf[header_end..]).unwrap_or(Value::Null);
        Some(Seen { method, path, content_type, auth_token, body })
    }

    fn keystone(base: &str, region: Option<&str>) -> SwiftIdentity {
        SwiftIdentity::Keystone {
            auth_url: base.to_owned(),
            username: "nvr".to_owned(),
            password: "s3cret-pass".to_owned(),
            project_name: "cams".to_owned(),
            user_domain_name: "Default".to_owned(),
            project_domain_name: "Projects".to_owned(),
            region: region.map(str::to_owned),
        }
    }

    fn keystone_reply(expires_in: TimeDelta) -> Reply {
        Arc::new(move |req: &Seen| {
            if req.method != "POST" || req.path != "/v3/auth/tokens" {
                return (404, vec![], json!({"error": {"code": 404}}));
            }
            let password = req.body.pointer("/auth/identity/password/user/password");
            if password != Some(&json!("s3cret-pass")) {
                return (401, vec![], json!({"error": {"code": 401, "title": "Unauthorized"}}));
            }
            let expires =
                (Utc::now() + expires_in).to_rfc3339_opts(chrono::SecondsFormat::Micros, true);
            (
                201,
                vec![("X-Subject-Token".to_owned(), "gAAAAAB-token-1".to_owned())],
                json!({"token": {
                    "methods": ["password"],
                    "expires_at": expires,
                    "catalog": [
                        {"type": "identity", "name": "keystone", "endpoints": [
                            {"interface": "public", "region_id": "RegionOne", "region": "RegionOne", "url": "https://id.example.net/v3"}]},
                        {"type": "object-store", "name": "swift", "endpoints": [
                            {"interface": "internal", "region_id": "RegionOne", "region": "RegionOne", "url": "http://10.0.0.5:8080/v1/AUTH_p1"},
                            {"interface": "public", "region_id": "RegionOne", "region": "RegionOne", "url": "https://one.example.net/v1/AUTH_p1/"},
                            {"interface": "public", "region_id": "RegionTwo", "region": "RegionTwo", "url": "https://two.example.net/v1/AUTH_p1"}]}
                    ]
                }}),
            )
        })
    }

    #[tokio::test]
    async fn keystone_v3_password_login_sends_the_documented_body_and_picks_the_region() {
        let server = Server::start(keystone_reply(TimeDelta::hours(1))).await;
        let session = login(&keystone(&server.base, Some("RegionTwo"))).await.unwrap();
        assert_eq!(session.endpoint, "https://two.example.net/v1/AUTH_p1");
        assert_eq!(session.token, "gAAAAAB-token-1");
        assert!(session.expires_at > Utc::now() + TimeDelta::minutes(55));

        let reqs = server.requests();
        assert_eq!(reqs.len(), 1);
        assert_eq!(reqs[0].method, "POST");
        assert_eq!(reqs[0].path, "/v3/auth/tokens");
        assert!(reqs[0].content_type.starts_with("application/json"));
        assert_eq!(
            reqs[0].body,
            json!({"auth": {
                "identity": {"methods": ["password"], "password": {"user": {
                    "name": "nvr", "domain": {"name": "Default"}, "password": "s3cret-pass"}}},
                "scope": {"project": {"name": "cams", "domain": {"name": "Projects"}}}
            }})
        );

        // Without a region: the first public object-store endpoint (never the internal one),
        // and an auth URL that already ends in /v3 is not doubled.
        let session = login(&keystone(&format!("{}/v3/", server.base), None)).await.unwrap();
        assert_eq!(session.endpoint, "https://one.example.net/v1/AUTH_p1");
        assert_eq!(server.requests()[1].path, "/v3/auth/tokens");
    }

    #[tokio::test]
    async fn keystone_errors_are_actionable_and_never_contain_the_password() {
        let server = Server::start(keystone_reply(TimeDelta::hours(1))).await;
        let mut wrong = keystone(&server.base, None);
        if let SwiftIdentity::Keystone { password, .. } = &mut wrong {
            *password = "wrong-pass".to_owned();
        }
        let err = login(&wrong).await.unwrap_err();
        assert_eq!(err.remote_kind(), Some(RemoteKind::Auth));
        assert!(!err.is_retryable());
        let text = err.to_string();
        assert!(text.contains("401") && text.contains("password"), "{text}");
        assert!(!text.contains("wrong-pass"));
        assert!(!format!("{wrong:?}").contains("wrong-pass"));

        let err = login(&keystone(&server.base, Some("RegionNine"))).await.unwrap_err();
        assert_eq!(err.remote_kind(), Some(RemoteKind::NotFound));
        let text = err.to_string();
        assert!(text.contains("RegionNine") && text.contains("RegionOne, RegionTwo"), "{text}");

        // Nothing listening: unreachable, retryable.
        let port = {
            let l = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
            l.local_addr().unwrap().port()
        };
        let err = login(&keystone(&format!("http://127.0.0.1:{port}"), None)).await.unwrap_err();
        assert_eq!(err.remote_kind(), Some(RemoteKind::Unreachable));
        assert!(err.is_retryable());
    }

    fn rackspace_reply() -> Reply {
        Arc::new(|req: &Seen| {
            if req.method != "POST" || req.path != "/v2.0/tokens" {
                return (404, vec![], json!({"itemNotFound": {"code": 404}}));
            }
            let creds = req.body.pointer("/auth/RAX-KSKEY:apiKeyCredentials");
            if creds != Some(&json!({"username": "rackuser", "apiKey": "0123456789abcdef"})) {
                return (401, vec![], json!({"unauthorized": {"code": 401}}));
            }
            (
                200,
                vec![],
                json!({"access": {
                    "token": {"id": "rax-token-42", "expires": "2099-01-02T03:04:05.000-06:00",
                              "tenant": {"id": "123456", "name": "123456"}},
                    "serviceCatalog": [
                        {"name": "cloudServersOpenStack", "type": "compute", "endpoints": [
                            {"region": "ORD", "publicURL": "https://ord.servers.api.rackspacecloud.com/v2/123456"}]},
                        {"name": "cloudFiles", "type": "object-store", "endpoints": [
                            {"region": "DFW", "tenantId": "MossoCloudFS_x",
                             "publicURL": "https://storage101.dfw1.clouddrive.com/v1/MossoCloudFS_x",
                             "internalURL": "https://snet-storage101.dfw1.clouddrive.com/v1/MossoCloudFS_x"},
                            {"region": "ORD", "tenantId": "MossoCloudFS_x",
                             "publicURL": "https://storage101.ord1.clouddrive.com/v1/MossoCloudFS_x",
                             "internalURL": "https://snet-storage101.ord1.clouddrive.com/v1/MossoCloudFS_x"}]}
                    ]
                }}),
            )
        })
    }

    #[tokio::test]
    async fn rackspace_api_key_login_from_module_config() {
        let server = Server::start(rackspace_reply()).await;
        let config: Map<String, Value> = serde_json::from_value(json!({
            "username": "rackuser", "region": "ord", "container": "cams",
            "identity_url": format!("{}/v2.0/", server.base)
        }))
        .unwrap();
        let secrets: Map<String, Value> =
            serde_json::from_value(json!({"api_key": "0123456789abcdef"})).unwrap();
        let identity = SwiftIdentity::from_config(&config, &secrets).unwrap().unwrap();
        assert!(matches!(identity, SwiftIdentity::Rackspace { .. }));
        assert!(!format!("{identity:?}").contains("0123456789abcdef"));

        let session = login(&identity).await.unwrap();
        assert_eq!(session.endpoint, "https://storage101.ord1.clouddrive.com/v1/MossoCloudFS_x");
        assert_eq!(session.token, "rax-token-42");
        assert_eq!(session.expires_at.to_rfc3339(), "2099-01-02T09:04:05+00:00");
        assert!(!format!("{session:?}").contains("rax-token-42"));

        let reqs = server.requests();
        assert_eq!(reqs.len(), 1);
        assert_eq!(reqs[0].path, "/v2.0/tokens");
        assert_eq!(
            reqs[0].body,
            json!({"auth": {"RAX-KSKEY:apiKeyCredentials": {"username": "rackuser", "apiKey": "0123456789abcdef"}}})
        );

        // A region the account does not have names the ones it has.
        let mut other = identity.clone();
        if let SwiftIdentity::Rackspace { region, .. } = &mut other {
            *region = "SYD".to_owned();
        }
        let text = login(&other).await.unwrap_err().to_string();
        assert!(text.contains("SYD") && text.contains("DFW, ORD"), "{text}");
    }

    #[test]
    fn from_config_tells_which_login_to_use() {
        let map = |v: Value| -> Map<String, Value> { serde_json::from_value(v).unwrap() };
        // A ready endpoint and token: no identity login.
        assert!(
            SwiftIdentity::from_config(
                &map(json!({"endpoint": "https://s/v1/A", "container": "c"})),
                &map(json!({"token": "t"}))
            )
            .unwrap()
            .is_none()
        );
        let ks = SwiftIdentity::from_config(
            &map(json!({"auth_url": "https://k:5000", "username": "u", "project_name": "p", "region": ""})),
            &map(json!({"password": "pw"})),
        )
        .unwrap()
        .unwrap();
        match ks {
            SwiftIdentity::Keystone { user_domain_name, project_domain_name, region, .. } => {
                assert_eq!(user_domain_name, "Default");
                assert_eq!(project_domain_name, "Default");
                assert_eq!(region, None);
            }
            SwiftIdentity::Rackspace { .. } => panic!("expected Keystone"),
        }
        let err = SwiftIdentity::from_config(
            &map(json!({"auth_url": "https://k:5000", "username": "u"})),
            &map(json!({"password": "pw"})),
        )
        .unwrap_err();
        assert_eq!(err.to_string(), "The project name is required to sign in to the object store.");
        let rax = SwiftIdentity::from_config(
            &map(json!({"username": "u", "region": "DFW"})),
            &map(json!({"api_key": "k"})),
        )
        .unwrap()
        .unwrap();
        match rax {
            SwiftIdentity::Rackspace { identity_url, .. } => {
                assert_eq!(identity_url, RACKSPACE_IDENTITY_URL);
            }
            SwiftIdentity::Keystone { .. } => panic!("expected Rackspace"),
        }
    }

    #[tokio::test]
    async fn tokens_are_cached_and_renewed_five_minutes_before_expiry() {
        // A token valid for an hour is reused.
        let server = Server::start(keystone_reply(TimeDelta::hours(1))).await;
        let tokens = SwiftTokens::new(keystone(&server.base, None)).unwrap();
        let a = tokens.session().await.unwrap();
        let b = tokens.session().await.unwrap();
        assert_eq!(a, b);
        assert_eq!(server.requests().len(), 1);
        // After invalidate (Swift said 401) the next call signs in again.
        tokens.invalidate().await;
        tokens.session().await.unwrap();
        assert_eq!(server.requests().len(), 2);

        // A token with four minutes left is inside the five-minute margin: renewed every time.
        let server = Server::start(keystone_reply(TimeDelta::minutes(4))).await;
        let tokens = SwiftTokens::new(keystone(&server.base, None)).unwrap();
        tokens.session().await.unwrap();
        tokens.session().await.unwrap();
        assert_eq!(server.requests().len(), 2);

        // Six minutes left: still outside the margin, cached.
        let server = Server::start(keystone_reply(TimeDelta::minutes(6))).await;
        let tokens = SwiftTokens::new(keystone(&server.base, None)).unwrap();
        tokens.session().await.unwrap();
        tokens.session().await.unwrap();
        assert_eq!(server.requests().len(), 1);
    }

    #[tokio::test]
    async fn swift_backend_signs_in_lazily_and_again_when_the_token_is_refused() {
        use std::sync::OnceLock;
        use std::sync::atomic::{AtomicUsize, Ordering};

        let issued = Arc::new(AtomicUsize::new(0));
        let base_url = Arc::new(OnceLock::<String>::new());
        let (count, base) = (issued.clone(), base_url.clone());
        // Keystone issues tok-1, tok-2, …; Swift has revoked tok-1 and accepts the others.
        let reply: Reply = Arc::new(move |req: &Seen| {
            if req.method == "POST" && req.path == "/v3/auth/tokens" {
                let n = count.fetch_add(1, Ordering::SeqCst) + 1;
                let url = format!("{}/v1/AUTH_p1", base.get().cloned().unwrap_or_default());
                let expires = (Utc::now() + TimeDelta::hours(1)).to_rfc3339();
                return (
                    201,
                    vec![("X-Subject-Token".to_owned(), format!("tok-{n}"))],
                    json!({"token": {"expires_at": expires, "catalog": [{"type": "object-store",
                        "endpoints": [{"interface": "public", "region_id": "RegionOne", "url": url}]}]}}),
                );
            }
            if req.path.starts_with("/v1/AUTH_p1/cams") {
                return match req.auth_token.as_str() {
                    "tok-1" | "" => (401, vec![], json!({})),
                    _ => (200, vec![], json!([])),
                };
            }
            (404, vec![], json!({}))
        });
        let server = Server::start(reply).await;
        base_url.set(server.base.clone()).unwrap();

        let cfg = ResolvedConfig::for_tests(
            "swift",
            json!({"auth_url": server.base, "username": "nvr", "project_name": "cams-project",
                   "container": "cams", "root": "/"}),
            json!({"password": "s3cret-pass"}),
        );
        let layers = LayerSettings {
            op_timeout: Duration::from_secs(10),
            bandwidth: None,
            chunk: 8 * 1024 * 1024,
            parallel: 1,
        };
        let backend = build_backend(&cfg, layers).await.unwrap();
        assert_eq!(backend.target(), "container cams");
        assert_eq!(issued.load(Ordering::SeqCst), 0, "building must not sign in");

        backend.check().await.unwrap();
        let seen: Vec<(String, String)> =
            server.requests().iter().map(|r| (r.method.clone(), r.auth_token.clone())).collect();
        assert_eq!(
            seen,
            [
                ("POST".to_owned(), String::new()),
                ("GET".to_owned(), "tok-1".to_owned()),
                ("POST".to_owned(), String::new()),
                ("GET".to_owned(), "tok-2".to_owned()),
            ]
        );
        // The renewed token and its operator are reused.
        backend.check().await.unwrap();
        assert_eq!(issued.load(Ordering::SeqCst), 2);
        assert_eq!(server.requests().last().unwrap().auth_token, "tok-2");
    }

    #[test]
    fn needs_refresh_uses_the_margin() {
        let now = Utc::now();
        let s = |left: TimeDelta| SwiftSession {
            endpoint: "e".into(),
            token: "t".into(),
            expires_at: now + left,
        };
        assert!(s(TimeDelta::minutes(4)).needs_refresh(now));
        assert!(s(TimeDelta::minutes(5)).needs_refresh(now));
        assert!(!s(TimeDelta::minutes(6)).needs_refresh(now));
        assert!(s(TimeDelta::minutes(-1)).needs_refresh(now));
    }

    #[test]
    fn parses_identity_time_formats() {
        assert_eq!(
            parse_time("2026-12-05T11:00:00.000000Z").unwrap().to_rfc3339(),
            "2026-12-05T11:00:00+00:00"
        );
        assert_eq!(
            parse_time("2026-12-05T11:00:00.000-06:00").unwrap().to_rfc3339(),
            "2026-12-05T17:00:00+00:00"
        );
        assert_eq!(
            parse_time("2026-12-05T11:00:00").unwrap().to_rfc3339(),
            "2026-12-05T11:00:00+00:00"
        );
        assert!(parse_time("tomorrow").is_none());
    }
}
