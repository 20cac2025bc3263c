//! PentaVision core: the types and services every other crate builds on.
//!
//! Module map:
//! - [`config`]: the typed TOML configuration, environment overrides and defaults.
//! - [`ids`]: newtype identifiers (`CameraId`, `UserId`, …).
//! - [`error`]: [`ErrorKind`], the one classification the web layer maps to HTTP status, and this
//!   crate's [`Error`].
//! - [`clock`]: the [`Clock`] trait so time-dependent logic is tested with a simulated clock.
//! - [`input`]: checks on names of every kind and the quoting of user input in messages.
//! - [`files`]: reading files that people name (regular files only, with a size cap).
//! - [`telemetry`]: tracing set-up (human or JSON, rotating log files in the data dir).
//! - [`setup`]: first-time set-up (what `pentavision-installer` runs).
//! - [`cameras`]: camera rows (create, list, update, delete, live status).
//! - [`recordings`]: the segment index, recording gaps and motion events.
//! - [`storage`]: storage providers and modules, camera targets, the upload queue, write
//!   statistics, health checks and module logs.
//! - [`db`]: the three logical databases (`users`, `faces`, `records`): entities, migrations,
//!   connection and readiness.
//!
//! ```no_run
//! # async fn demo() -> pv_core::Result<()> {
//! let config = pv_core::config::Config::load(None, None)?; // embedded defaults
//! let dbs = pv_core::db::Databases::connect(&config).await?;
//! dbs.migrate().await?;
//! dbs.ping().await?;
//! # Ok(()) }
//! ```
#![deny(missing_docs)]

pub mod cameras;
pub mod clock;
pub mod config;
pub mod db;
pub mod error;
pub mod files;
pub mod ids;
pub mod input;
pub mod recordings;
pub mod setup;
pub mod storage;
pub mod telemetry;
#[cfg(feature = "testkit")]
pub mod testkit;

pub use clock::{Clock, SimulatedClock, SystemClock};
pub use error::{Error, ErrorKind, Result};

/// The version of this build of PentaVision (the workspace version).
pub const VERSION: &str = env!("CARGO_PKG_VERSION");
