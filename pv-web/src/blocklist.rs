//! The HTTP side of the blocklist daemon (`pentavision-blocklist`): `GET /blocklist.csv` and
//! `GET /healthz`. The list itself is built by [`pv_security::blocklist`].
//!
//! Settings come from the users database's `blocklist_settings` row when there is one, else
//! from `[blocklist]` in the configuration; they are read per request, so an admin's change
//! applies without a restart. With a token configured, clients must send
//! `Authorization: Bearer TOKEN` (compared in constant time).

use poem::http::{StatusCode, header};
use poem::web::{Data, Query};
use poem::{EndpointExt, IntoResponse, Request, Response, Route, get, handler};
use pv_core::Clock;
use pv_core::config::{BlocklistConfig, Config};
use pv_core::db::users::blocklist_setting;
use sea_orm::{DatabaseConnection, EntityTrait};
use sha2::{Digest, Sha256};

use crate::problem::Problem;

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

fn constant_time_eq(a: &[u8], b: &[u8]) -> bool {
    a.len() == b.len() && a.iter().zip(b).fold(0u8, |acc, (x, y)| acc | (x ^ y)) == 0
}

#[derive(Debug, serde::Deserialize)]
struct CsvQuery {
    header: Option<u8>,
}

struct BlocklistState {
    config: Config,
    db: DatabaseConnection,
    clock: pv_core::SystemClock,
    limiter: RateLimiter,
}

/// A fixed one-minute window per client address.
#[derive(Debug, Default)]
pub struct RateLimiter {
    windows: std::sync::Mutex<std::collections::HashMap<String, (i64, u32)>>,
}

impl RateLimiter {
    /// Count a request from `client` at unix second `now_s`; `Err(retry_after_seconds)` when the
    /// client already made `per_minute` requests in the current minute.
    pub fn check(&self, client: &str, now_s: i64, per_minute: u32) -> Result<(), i64> {
        let minute = now_s.div_euclid(60);
        let mut windows = self.windows.lock().unwrap_or_else(|p| p.into_inner());
        if windows.len() > 10_000 {
            windows.retain(|_, (m, _)| *m == minute);
        }
        let entry = windows.entry(client.to_string()).or_insert((minute, 0));
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

#[handler]
async fn blocklist_csv(
    req: &Request,
    Query(q): Query<CsvQuery>,
    state: Data<&std::sync::Arc<BlocklistState>>,
) -> Response {
    let settings = match effective_settings(&state.db, &state.config.blocklist).await {
        Ok(s) => s,
        Err(e) => {
            return Problem::new(StatusCode::SERVICE_UNAVAILABLE, format!("users database: {e}"))
                .into_response();
        }
    };
    let client = req
        .remote_addr()
        .as_socket_addr()
        .map(|a| a.ip().to_string())
        .unwrap_or_else(|| req.remote_addr().to_string());
    if let Err(retry_after) =
        state.limiter.check(&client, state.clock.now().timestamp(), settings.requests_per_minute)
    {
        tracing::warn!(client, "blocklist rate limit exceeded");
        let mut resp = Problem::new(
            StatusCode::TOO_MANY_REQUESTS,
            format!("more than {} requests this minute; retry later", settings.requests_per_minute),
        )
        .into_response();
        resp.headers_mut().insert(header::RETRY_AFTER, retry_after.into());
        return resp;
    }
    if !settings.enabled {
        return Problem::new(StatusCode::NOT_FOUND, "the blocklist is disabled").into_response();
    }
    if let Some(expected) = &settings.token_sha256 {
        let sent = req
            .header(header::AUTHORIZATION)
            .and_then(|v| v.strip_prefix("Bearer "))
            .map(|t| sha256_hex(t.trim()));
        if !sent.is_some_and(|s| constant_time_eq(s.as_bytes(), expected.as_bytes())) {
            tracing::warn!(remote = %req.remote_addr(), "blocklist request without a valid token");
            return Problem::new(StatusCode::UNAUTHORIZED, "a valid bearer token is required")
                .into_response();
        }
    }
    let (blocked, exempt) =
        match pv_security::blocklist::load_rules(&state.db, state.clock.now()).await {
            Ok(rules) => rules,
            Err(e) => return Problem::from_kind(e.kind(), e).into_response(),
        };
    let entries = pv_security::blocklist::generate(&blocked, &exempt);
    let body = pv_security::blocklist::to_csv(&entries, q.header == Some(1));
    tracing::info!(remote = %req.remote_addr(), entries = entries.len(), "blocklist served");
    Response::builder()
        .content_type("text/csv; charset=utf-8")
        .header(header::CACHE_CONTROL, "no-cache, max-age=60")
        .body(body)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn rate_limit_is_per_client_and_per_minute() {
        let l = RateLimiter::default();
        let t = 1_800_000_000; // a minute boundary
        assert!(l.check("a", t, 2).is_ok());
        assert!(l.check("a", t + 1, 2).is_ok());
        assert_eq!(l.check("a", t + 15, 2), Err(45));
        assert!(l.check("b", t + 15, 2).is_ok(), "other clients are not affected");
        assert!(l.check("a", t + 60, 2).is_ok(), "a new minute starts afresh");
    }
}

#[handler]
async fn healthz() -> &'static str {
    "ok\n"
}

/// The daemon's routes over `db` with `config`.
pub fn app(config: Config, db: DatabaseConnection) -> impl poem::Endpoint {
    let state = std::sync::Arc::new(BlocklistState {
        config,
        db,
        clock: pv_core::SystemClock::new(),
        limiter: RateLimiter::default(),
    });
    Route::new()
        .at("/blocklist.csv", get(blocklist_csv))
        .at("/healthz", get(healthz))
        .catch_all_error(crate::problem::from_poem_error)
        .with(poem::middleware::Tracing)
        .data(state)
}
