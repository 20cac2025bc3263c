//! PentaVision security primitives.
//!
//! Module map:
//! - [`throttle`]: failed-attempt counters, exponential back-off and lock-out (login, PIN).
//! - [`totp`]: RFC 6238 codes with a one-step drift window, replay refusal, QR enrollment,
//!   recovery codes.
//! - [`password`]: Argon2id hashing and verification with parameters from configuration.
//! - [`access`]: IP rules (blocked networks and the exemption list): add, remove, list, expiry.
//! - [`rbac`]: roles and permissions; [`rbac::authorize`] makes every access decision.
//! - [`audit`]: the hash-chained audit log: append and verify.
//! - [`blocklist`]: building the firewall blocklist (the CSV that `pentavision-blocklist`
//!   serves) from IP rules, with the never-block exclusions applied at generation time.
//! - [`country`]: the country policy (allow/deny lists of ISO 3166-1 codes) over a
//!   MaxMind-format database; `testkit` (feature) writes small `.mmdb` files for tests.
//!
//! - [`account`]: users, account status, the seeded administrator and its one-time setup
//!   code, stored TOTP credentials and recovery codes.
//! - [`signin`]: the sign-in flows (password + second factor, setup code, passkey) with
//!   lock-out, audit events and the `pentavision::auth` log lines fail2ban reads.
//! - [`passkey`]: WebAuthn registration and discoverable sign-in (webauthn-rs).
//! - [`session`], [`token`]: browser sessions and API tokens; [`secret`]: how bearer secrets
//!   are made and stored; [`seal`]: the server key sealing secrets at rest.
//! - [`pin`]: the 8-digit alarm disarm PIN: set with proof, no reuse of the last five,
//!   every use recorded, lock-out, audit events.
//! - [`csrf`]: per-page CSRF tokens bound to user, route and expiry (HMAC with the server key).
//!
//! Dependencies: `argon2` (RustCrypto, pure Rust, the PHC winner recommended by OWASP) and
//! `ipnet` (the de-facto CIDR type, with aggregation).
//!
//! ```
//! let params = pv_core::config::SecurityConfig::default();
//! let hash = pv_security::password::hash("correct horse", &params).unwrap();
//! assert!(pv_security::password::verify("correct horse", &hash).unwrap());
//! ```
#![deny(missing_docs)]
#![deny(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

pub mod access;
pub mod account;
pub mod audit;
pub mod blocklist;
pub mod country;
pub mod csrf;
pub mod passkey;
pub mod password;
pub mod pin;
pub mod rbac;
pub mod seal;
pub mod secret;
pub mod session;
pub mod signin;
pub mod throttle;
pub mod token;
pub mod totp;

/// pv-security's error.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum Error {
    /// Input that cannot be used (a malformed hash, address or parameter).
    #[error("{0}")]
    InvalidInput(String),
    /// Something looked up is not there.
    #[error("{0}")]
    NotFound(String),
    /// The change contradicts the current state (a taken name, the last administrator).
    #[error("{0}")]
    Conflict(String),
    /// A database failure.
    #[error("users database: {0}")]
    Database(#[from] sea_orm::DbErr),
}

impl Error {
    /// Classify this error.
    pub fn kind(&self) -> pv_core::ErrorKind {
        match self {
            Error::InvalidInput(_) => pv_core::ErrorKind::InvalidInput,
            Error::NotFound(_) => pv_core::ErrorKind::NotFound,
            Error::Conflict(_) => pv_core::ErrorKind::Conflict,
            Error::Database(_) => pv_core::ErrorKind::Unavailable,
        }
    }
}

/// pv-security's result type.
pub type Result<T, E = Error> = std::result::Result<T, E>;
