//! PentaVision security primitives.
//!
//! Module map:
//! - [`throttle`]: failed-attempt counters, exponential back-off and lock-out (login, PIN).
//! - [`totp`]: RFC 6238 codes with a one-step drift window, replay refusal, QR enrollment,
//!   recovery codes.
//! - [`password`]: Argon2id hashing and verification with parameters from configuration.
//! - [`access`]: IP rules (blocked networks and the exemption list): add, remove, list, expiry.
//! - [`audit`]: the hash-chained audit log: append and verify.
//! - [`blocklist`]: building the firewall blocklist (the CSV that `pentavision-blocklist`
//!   serves) from IP rules, with the never-block exclusions applied at generation time.
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
pub mod audit;
pub mod blocklist;
pub mod password;
pub mod throttle;
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
            Error::Database(_) => pv_core::ErrorKind::Unavailable,
        }
    }
}

/// pv-security's result type.
pub type Result<T, E = Error> = std::result::Result<T, E>;
