//! Per-page CSRF tokens: short-lived, bound to one user, one route and an expiry time, and
//! authenticated with an HMAC-SHA-256 under a key derived from the server key
//! ([`ServerKey::mac`] with purpose `csrf`). Nothing is stored: a token is checked by
//! recomputing its MAC.
//!
//! A token is `v1.<expiry as Unix seconds>.<base64url MAC>`, the MAC taken over the user id,
//! the expiry and the route. The route is whatever the web layer names the protected
//! operation by (pv-web uses the REST path under `/api/v1` with numeric segments written
//! `{id}`, e.g. `/users/{id}/status`). A token for another user, another route, with an altered
//! expiry, or past its expiry is refused; refusals say which of these it was only as far as
//! the MAC allows (another user and another route look the same).
//!
//! ```
//! use chrono::{Duration, Utc};
//! use pv_security::csrf;
//! let key = pv_security::seal::ServerKey::random();
//! let now = Utc::now();
//! let token = csrf::issue(&key, 7, "/security/ip-rules", now);
//! assert!(csrf::verify(&key, Some(&token), 7, "/security/ip-rules", now).is_ok());
//! assert!(csrf::verify(&key, Some(&token), 8, "/security/ip-rules", now).is_err());
//! assert!(csrf::verify(&key, Some(&token), 7, "/users", now).is_err());
//! let later = now + csrf::ttl() + Duration::seconds(1);
//! assert_eq!(
//!     csrf::verify(&key, Some(&token), 7, "/security/ip-rules", later),
//!     Err(csrf::Rejected::Expired)
//! );
//! ```

use base64::Engine as _;
use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use chrono::{DateTime, Duration, Utc};

use crate::seal::ServerKey;
use crate::secret::constant_time_eq;

/// How long a token is valid, in seconds (30 minutes).
pub const TTL_SECONDS: i64 = 30 * 60;
const PURPOSE: &str = "csrf";
const VERSION: &str = "v1";

/// How long a token is valid.
pub fn ttl() -> Duration {
    Duration::seconds(TTL_SECONDS)
}

/// Why a token was refused.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Rejected {
    /// No token was sent.
    Missing,
    /// Not a token at all.
    Malformed,
    /// A genuine token, past its expiry.
    Expired,
    /// Not made for this user and route by this server (or altered).
    Mismatch,
}

impl Rejected {
    /// A message for the person using the page.
    pub fn message(self) -> &'static str {
        match self {
            Rejected::Missing => {
                "this change needs the page's security token (X-CSRF-Token header); reload the page and try again"
            }
            Rejected::Malformed => "the security token is malformed; reload the page and try again",
            Rejected::Expired => {
                "the page's security token has expired; reload the page and try again"
            }
            Rejected::Mismatch => {
                "the security token was not issued for you and this action; reload the page and try again"
            }
        }
    }

    /// A stable machine name (`missing`, `malformed`, `expired`, `mismatch`).
    pub fn as_str(self) -> &'static str {
        match self {
            Rejected::Missing => "missing",
            Rejected::Malformed => "malformed",
            Rejected::Expired => "expired",
            Rejected::Mismatch => "mismatch",
        }
    }
}

impl std::fmt::Display for Rejected {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(self.message())
    }
}

impl std::error::Error for Rejected {}

fn mac(key: &ServerKey, user_id: i64, route: &str, expires: i64) -> [u8; 32] {
    // Both numbers are decimal without newlines, so the route (last) cannot shift a boundary.
    key.mac(PURPOSE, format!("{VERSION}\n{user_id}\n{expires}\n{route}").as_bytes())
}

/// A token for `user_id` and `route`, valid for [`TTL_SECONDS`] from `now`.
pub fn issue(key: &ServerKey, user_id: i64, route: &str, now: DateTime<Utc>) -> String {
    issue_until(key, user_id, route, now + ttl())
}

/// A token for `user_id` and `route` valid until `expires` (second precision).
pub fn issue_until(key: &ServerKey, user_id: i64, route: &str, expires: DateTime<Utc>) -> String {
    let exp = expires.timestamp();
    format!("{VERSION}.{exp}.{}", URL_SAFE_NO_PAD.encode(mac(key, user_id, route, exp)))
}

/// When `token` expires (None: not a token). Says nothing about whether it is genuine.
pub fn expires_at(token: &str) -> Option<DateTime<Utc>> {
    let (exp, _) = split(token)?;
    DateTime::from_timestamp(exp, 0)
}

fn split(token: &str) -> Option<(i64, &str)> {
    let rest = token.strip_prefix(VERSION)?.strip_prefix('.')?;
    let (exp, mac) = rest.split_once('.')?;
    if exp.is_empty() || exp.len() > 12 || !exp.bytes().all(|b| b.is_ascii_digit()) {
        return None;
    }
    Some((exp.parse().ok()?, mac))
}

/// Check `token` (None: not sent) for `user_id` and `route` at `now`.
pub fn verify(
    key: &ServerKey,
    token: Option<&str>,
    user_id: i64,
    route: &str,
    now: DateTime<Utc>,
) -> Result<(), Rejected> {
    let token = token.map(str::trim).filter(|t| !t.is_empty()).ok_or(Rejected::Missing)?;
    if token.len() > 128 {
        return Err(Rejected::Malformed);
    }
    let (exp, sent) = split(token).ok_or(Rejected::Malformed)?;
    let sent = URL_SAFE_NO_PAD.decode(sent).map_err(|_| Rejected::Malformed)?;
    if !constant_time_eq(&sent, &mac(key, user_id, route, exp)) {
        return Err(Rejected::Mismatch);
    }
    if exp <= now.timestamp() {
        return Err(Rejected::Expired);
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]
    use chrono::TimeZone;

    use super::*;

    #[test]
    fn bound_to_user_route_expiry_and_key() {
        let key = ServerKey::random();
        let now = Utc.with_ymd_and_hms(2026, 11, 23, 12, 0, 0).unwrap();
        let t = issue(&key, 1, "/users/{id}/status", now);
        assert!(t.starts_with("v1."));
        assert_eq!(expires_at(&t), Some(now + ttl()));
        assert_eq!(verify(&key, Some(&t), 1, "/users/{id}/status", now), Ok(()));
        let last = now + ttl() - Duration::seconds(1);
        assert_eq!(verify(&key, Some(&t), 1, "/users/{id}/status", last), Ok(()));
        assert_eq!(
            verify(&key, Some(&t), 1, "/users/{id}/status", now + ttl()),
            Err(Rejected::Expired)
        );
        assert_eq!(verify(&key, Some(&t), 2, "/users/{id}/status", now), Err(Rejected::Mismatch));
        assert_eq!(verify(&key, Some(&t), 1, "/users/{id}/roles", now), Err(Rejected::Mismatch));
        let other = ServerKey::random();
        assert_eq!(verify(&other, Some(&t), 1, "/users/{id}/status", now), Err(Rejected::Mismatch));

        // Stretching the expiry breaks the MAC.
        let (_, mac_part) = t.rsplit_once('.').unwrap();
        let stretched = format!("v1.{}.{mac_part}", (now + Duration::days(365)).timestamp());
        assert_eq!(
            verify(&key, Some(&stretched), 1, "/users/{id}/status", now),
            Err(Rejected::Mismatch)
        );
        // An expired token stays refused even when genuine.
        let old = issue_until(&key, 1, "/users", now - Duration::seconds(1));
        assert_eq!(verify(&key, Some(&old), 1, "/users", now), Err(Rejected::Expired));
    }

    #[test]
    fn garbage_is_refused_without_panicking() {
        let key = ServerKey::random();
        let now = Utc::now();
        assert_eq!(verify(&key, None, 1, "/users", now), Err(Rejected::Missing));
        assert_eq!(verify(&key, Some("  "), 1, "/users", now), Err(Rejected::Missing));
        for bad in ["x", "v1", "v1.", "v1..", "v1.12.", "v2.1.AAAA", "v1.-5.AAAA", "v1.1.!!!"] {
            let got = verify(&key, Some(bad), 1, "/users", now);
            assert!(matches!(got, Err(Rejected::Malformed | Rejected::Mismatch)), "{bad}: {got:?}");
        }
        assert_eq!(
            verify(&key, Some(&"v1.1.".repeat(40)), 1, "/users", now),
            Err(Rejected::Malformed)
        );
        assert!(Rejected::Expired.message().contains("expired"));
    }
}
