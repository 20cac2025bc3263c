//! The HTTP side of the blocklist daemon (`pentavision-blocklist`): `GET /blocklist.csv` and
//! `GET /healthz`. The list itself is built by [`pv_security::blocklist`].
//!
//! Settings come from the users database's `blocklist_settings` row when there is one, else
//! from `[blocklist]` in the configuration. With a token configured, clients must send
//! `Authorization: Bearer TOKEN` (its SHA-256 compared in constant time).
//!
//! Caching: the settings and a cheap fingerprint of the rules ([`RulesMarker`]) are re-read at
//! most every [`Options::revalidate_after`] (1 s), so an admin's change applies within a second
//! and without a restart. The list is rebuilt only when the fingerprint changes (or every
//! [`Options::rebuild_after`], 60 s, as a safety net); between rebuilds every response is the
//! same shared buffer. When the database cannot be read, the last list and settings stay in
//! force. Responses carry a strong `ETag` (SHA-256 of the exact body, so the `?header=1` variant
//! has its own) and `Cache-Control: no-cache, max-age=60`; `If-None-Match` with the current tag
//! gets `304 Not Modified` without a body. Every request is logged once (client, status, entries).
//!
//! [`RulesMarker`]: pv_security::blocklist::RulesMarker

use std::net::IpAddr;
use std::sync::{Arc, RwLock};
use std::time::{Duration, Instant};

use poem::http::{HeaderValue, StatusCode, header};
use poem::web::{Data, Query};
use poem::{Body, Endpoint, EndpointExt, IntoResponse, Request, Response, Route, get, handler};
use pv_core::Clock;
use pv_core::config::{BlocklistConfig, Config};
use pv_core::db::users::blocklist_setting;
use pv_security::blocklist::{self as list, RulesMarker};
use sea_orm::{DatabaseConnection, EntityTrait};
use sha2::{Digest, Sha256};

use crate::problem::Problem;

/// The `Cache-Control` of the list: caches must revalidate (the `ETag` makes that cheap).
pub const CACHE_CONTROL: &str = "no-cache, max-age=60";

/// The effective settings for one request.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct EffectiveSettings {
    /// Serve the list.
    pub enabled: bool,
    /// Requests per minute per client.
    pub requests_per_minute: u32,
    /// Hex SHA-256 of the required token, if any.
    pub token_sha256: Option<String>,
}

/// Read the settings: the database row wins over the configuration.
pub async fn effective_settings(
    db: &DatabaseConnection,
    fallback: &BlocklistConfig,
) -> Result<EffectiveSettings, sea_orm::DbErr> {
    let row = blocklist_setting::Entity::find().one(db).await?;
    Ok(match row {
        Some(row) => EffectiveSettings {
            enabled: row.enabled,
            requests_per_minute: u32::try_from(row.requests_per_minute.max(1)).unwrap_or(1),
            token_sha256: row.token_hash,
        },
        None => EffectiveSettings {
            enabled: fallback.enabled,
            requests_per_minute: fallback.requests_per_minute,
            token_sha256: fallback.token.as_deref().map(sha256_hex),
        },
    })
}

/// Hex SHA-256 of a token.
pub fn sha256_hex(token: &str) -> String {
    hex::encode(Sha256::digest(token.as_bytes()))
}

/// Whether `authorization` (the header's value) carries the token whose hex SHA-256 is
/// `expected`. The scheme is matched case-insensitively (RFC 9110 §11.1).
fn token_matches(authorization: Option<&str>, expected: &str) -> bool {
    let token = authorization
        .and_then(|v| v.trim().split_once(' '))
        .filter(|(scheme, _)| scheme.eq_ignore_ascii_case("bearer"))
        .map(|(_, token)| token.trim())
        .filter(|token| !token.is_empty());
    // Hash something even without a token so both paths take about as long.
    let sent = sha256_hex(token.unwrap_or(""));
    pv_security::secret::constant_time_eq(sent.as_bytes(), expected.as_bytes()) & token.is_some()
}

/// Cache timing of the daemon.
#[derive(Debug, Clone)]
pub struct Options {
    /// How long settings and the rules fingerprint are trusted before being re-read. Default 1 s;
    /// zero re-reads them on every request.
    pub revalidate_after: Duration,
    /// Rebuild the list after this long even when the fingerprint is unchanged. Default 60 s.
    pub rebuild_after: Duration,
}

impl Default for Options {
    fn default() -> Self {
        Self { revalidate_after: Duration::from_secs(1), rebuild_after: Duration::from_secs(60) }
    }
}

#[derive(Debug, serde::Deserialize)]
struct CsvQuery {
    header: Option<u8>,
}

/// One rendered list: both CSV variants share one buffer.
struct Rendered {
    entries: usize,
    /// The response body with or without the header line. poem takes `bytes::Bytes` (cheap
    /// clones of one buffer) but does not re-export the type; the closure holds the buffer.
    body: Box<dyn Fn(bool) -> Body + Send + Sync>,
    /// Strong ETags: `[without header, with header]`.
    etags: [HeaderValue; 2],
    built_at: Instant,
}

/// What a request is answered from.
struct Snapshot {
    settings: EffectiveSettings,
    marker: RulesMarker,
    list: Arc<Rendered>,
    checked_at: Instant,
}

struct BlocklistState {
    config: Config,
    db: DatabaseConnection,
    clock: pv_core::SystemClock,
    limiter: RateLimiter,
    options: Options,
    current: RwLock<Option<Arc<Snapshot>>>,
    /// Held by the one request that re-reads the database; others keep using `current`.
    refreshing: tokio::sync::Mutex<()>,
}

impl BlocklistState {
    fn current(&self) -> Option<Arc<Snapshot>> {
        self.current.read().unwrap_or_else(|p| p.into_inner()).clone()
    }

    fn fresh(&self, s: &Snapshot) -> bool {
        s.checked_at.elapsed() < self.options.revalidate_after
    }

    /// The snapshot to answer from: the current one while it is fresh, else re-validated
    /// against the database. `None` only when the database has never been readable.
    async fn snapshot(&self) -> Option<Arc<Snapshot>> {
        let current = self.current();
        if let Some(s) = &current
            && self.fresh(s)
        {
            return current;
        }
        let _guard = match (self.refreshing.try_lock(), &current) {
            (Ok(guard), _) => guard,
            // Someone else is re-reading: answer from the list we have meanwhile.
            (Err(_), Some(_)) => return current,
            (Err(_), None) => self.refreshing.lock().await,
        };
        let current = self.current();
        if let Some(s) = &current
            && self.fresh(s)
        {
            return current;
        }
        let next = match self.revalidate(current.as_deref()).await {
            Ok(next) => Arc::new(next),
            Err(e) => {
                tracing::error!(error = %e, "users database unreadable; the last list stays in force");
                // Try again after the usual interval rather than on every request.
                let old = current?;
                Arc::new(Snapshot {
                    settings: old.settings.clone(),
                    marker: old.marker.clone(),
                    list: old.list.clone(),
                    checked_at: Instant::now(),
                })
            }
        };
        *self.current.write().unwrap_or_else(|p| p.into_inner()) = Some(next.clone());
        Some(next)
    }

    async fn revalidate(&self, old: Option<&Snapshot>) -> Result<Snapshot, String> {
        let now = self.clock.now();
        let settings = effective_settings(&self.db, &self.config.blocklist)
            .await
            .map_err(|e| e.to_string())?;
        // The fingerprint is read before the rules: a change in between makes the next check
        // rebuild again, never miss it.
        let marker = list::rules_marker(&self.db, now).await.map_err(|e| e.to_string())?;
        let list = match old {
            Some(old)
                if old.marker == marker
                    && old.list.built_at.elapsed() < self.options.rebuild_after =>
            {
                old.list.clone()
            }
            _ => Arc::new(build(&self.db, now).await?),
        };
        Ok(Snapshot { settings, marker, list, checked_at: Instant::now() })
    }
}

/// Load the rules and render the list (CPU work off the async workers).
async fn build(
    db: &DatabaseConnection,
    now: chrono::DateTime<chrono::Utc>,
) -> Result<Rendered, String> {
    let started = Instant::now();
    let (blocked, exempt) = list::load_rules(db, now).await.map_err(|e| e.to_string())?;
    let rules = blocked.len() + exempt.len();
    let (entries, csv, etags) = tokio::task::spawn_blocking(move || {
        let entries = list::generate(&blocked, &exempt);
        let csv = list::to_csv(&entries, true);
        let etag = |body: &str| {
            let digest = Sha256::digest(body.as_bytes());
            HeaderValue::from_str(&format!("\"{}\"", hex::encode(&digest[..16])))
                .unwrap_or_else(|_| HeaderValue::from_static("\"\""))
        };
        let etags = [etag(&csv[list::CSV_HEADER.len()..]), etag(&csv)];
        (entries.len(), csv, etags)
    })
    .await
    .map_err(|e| format!("building the list failed: {e}"))?;
    let full = Body::from_string(csv)
        .into_bytes()
        .await
        .map_err(|e| format!("buffering the list: {e}"))?;
    let plain = full.slice(list::CSV_HEADER.len()..);
    let body = Box::new(move |header: bool| {
        Body::from_bytes(if header { full.clone() } else { plain.clone() })
    });
    tracing::info!(
        rules,
        entries,
        elapsed_ms = started.elapsed().as_millis() as u64,
        "blocklist rebuilt"
    );
    Ok(Rendered { entries, body, etags, built_at: Instant::now() })
}

/// A fixed one-minute window per client address.
#[derive(Debug, Default)]
pub struct RateLimiter {
    windows: std::sync::Mutex<std::collections::HashMap<IpAddr, (i64, u32)>>,
}

impl RateLimiter {
    /// Count a request from `client` at unix second `now_s`; `Err(retry_after_seconds)` when the
    /// client already made `per_minute` requests in the current minute.
    pub fn check(&self, client: IpAddr, now_s: i64, per_minute: u32) -> Result<(), i64> {
        let minute = now_s.div_euclid(60);
        let mut windows = self.windows.lock().unwrap_or_else(|p| p.into_inner());
        if windows.len() > 10_000 && !windows.contains_key(&client) {
            windows.retain(|_, (m, _)| *m == minute);
        }
        let entry = windows.entry(client).or_insert((minute, 0));
        if entry.0 != minute {
            *entry = (minute, 0);
        }
        if entry.1 >= per_minute {
            return Err(60 - now_s.rem_euclid(60));
        }
        entry.1 += 1;
        Ok(())
    }
}

/// The number of list entries a response describes, for the request log.
#[derive(Clone, Copy)]
struct Entries(usize);

/// The client's address (IPv4-mapped IPv6 as IPv4); unspecified when the connection has none
/// (in-process tests), which then share one rate-limit window.
fn client_ip(req: &Request) -> IpAddr {
    req.remote_addr()
        .as_socket_addr()
        .map(|a| a.ip().to_canonical())
        .unwrap_or(IpAddr::V4(std::net::Ipv4Addr::UNSPECIFIED))
}

/// Whether an `If-None-Match` header list names `etag` (weak comparison, RFC 9110 §13.1.2).
fn none_match(req: &Request, etag: &HeaderValue) -> bool {
    let etag = etag.as_bytes();
    req.headers().get_all(header::IF_NONE_MATCH).iter().any(|v| {
        v.to_str().is_ok_and(|v| {
            v.split(',')
                .map(str::trim)
                .any(|tag| tag == "*" || tag.strip_prefix("W/").unwrap_or(tag).as_bytes() == etag)
        })
    })
}

#[handler]
async fn blocklist_csv(
    req: &Request,
    Query(q): Query<CsvQuery>,
    state: Data<&Arc<BlocklistState>>,
) -> Response {
    let Some(snapshot) = state.snapshot().await else {
        return Problem::new(StatusCode::SERVICE_UNAVAILABLE, "the users database cannot be read")
            .into_response();
    };
    let settings = &snapshot.settings;
    let per_minute = settings.requests_per_minute;
    if let Err(retry_after) =
        state.limiter.check(client_ip(req), state.clock.now().timestamp(), per_minute)
    {
        let detail = format!("more than {per_minute} requests this minute; retry later");
        let mut resp = Problem::new(StatusCode::TOO_MANY_REQUESTS, detail).into_response();
        resp.headers_mut().insert(header::RETRY_AFTER, retry_after.into());
        return resp;
    }
    if !settings.enabled {
        return Problem::new(StatusCode::NOT_FOUND, "the blocklist is disabled").into_response();
    }
    if let Some(expected) = &settings.token_sha256
        && !token_matches(req.header(header::AUTHORIZATION), expected)
    {
        let mut resp = Problem::new(StatusCode::UNAUTHORIZED, "a valid bearer token is required")
            .into_response();
        resp.headers_mut().insert(
            header::WWW_AUTHENTICATE,
            HeaderValue::from_static("Bearer realm=\"pentavision-blocklist\""),
        );
        return resp;
    }
    let with_header = q.header == Some(1);
    let rendered = &snapshot.list;
    let etag = &rendered.etags[usize::from(with_header)];
    let builder = Response::builder()
        .header(header::ETAG, etag.clone())
        .header(header::CACHE_CONTROL, CACHE_CONTROL)
        .extension(Entries(rendered.entries));
    if none_match(req, etag) {
        return builder.status(StatusCode::NOT_MODIFIED).finish();
    }
    builder.content_type("text/csv; charset=utf-8").body((rendered.body)(with_header))
}

#[handler]
async fn healthz() -> &'static str {
    "ok\n"
}

/// Log every request once: client address, status, and the list size when a list was sent.
async fn log_request<E: Endpoint<Output = Response>>(
    next: Arc<E>,
    req: Request,
) -> poem::Result<Response> {
    let started = Instant::now();
    let client_ip = client_ip(&req);
    let method = req.method().clone();
    let uri = req.uri().clone();
    let resp = next.call(req).await?;
    let status = resp.status().as_u16();
    let entries = resp.extensions().get::<Entries>().map(|e| e.0);
    let micros = started.elapsed().as_micros() as u64;
    let path = uri.path();
    if path == "/healthz" {
        tracing::debug!(%client_ip, status, "health check");
    } else if matches!(status, 401 | 429) {
        tracing::warn!(%client_ip, %method, path, status, micros, "blocklist request refused");
    } else {
        tracing::info!(%client_ip, %method, path, status, entries, micros, "blocklist request");
    }
    Ok(resp)
}

/// The daemon's routes over `db` with `config` and the default [`Options`].
pub fn app(config: Config, db: DatabaseConnection) -> impl Endpoint {
    app_with(config, db, Options::default())
}

/// The daemon's routes with explicit cache timing (tests use zero to see every change at once).
pub fn app_with(config: Config, db: DatabaseConnection, options: Options) -> impl Endpoint {
    let state = Arc::new(BlocklistState {
        config,
        db,
        clock: pv_core::SystemClock::new(),
        limiter: RateLimiter::default(),
        options,
        current: RwLock::new(None),
        refreshing: tokio::sync::Mutex::new(()),
    });
    Route::new()
        .at("/blocklist.csv", get(blocklist_csv))
        .at("/healthz", get(healthz))
        .catch_all_error(crate::problem::from_poem_error)
        .around(log_request)
        .data(state)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn rate_limit_is_per_client_and_per_minute() {
        let l = RateLimiter::default();
        let (a, b): (IpAddr, IpAddr) =
            ("203.0.113.1".parse().unwrap(), "2001:db8::1".parse().unwrap());
        let t = 1_800_000_000; // a minute boundary
        assert!(l.check(a, t, 2).is_ok());
        assert!(l.check(a, t + 1, 2).is_ok());
        assert_eq!(l.check(a, t + 15, 2), Err(45));
        assert!(l.check(b, t + 15, 2).is_ok(), "other clients are not affected");
        assert!(l.check(a, t + 60, 2).is_ok(), "a new minute starts afresh");
    }

    #[test]
    fn bearer_tokens_are_checked_by_hash() {
        let expected = sha256_hex("s3cret");
        assert!(token_matches(Some("Bearer s3cret"), &expected));
        assert!(token_matches(Some("bearer  s3cret "), &expected));
        assert!(!token_matches(Some("Bearer s3cre"), &expected));
        assert!(!token_matches(Some("Basic s3cret"), &expected));
        assert!(!token_matches(Some("s3cret"), &expected));
        assert!(!token_matches(None, &expected));
        assert!(!token_matches(Some("Bearer "), &sha256_hex("")), "an empty token never passes");
    }
}
