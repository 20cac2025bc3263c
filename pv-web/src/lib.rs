//! PentaVision's web layer: the poem server, the REST API (poem-openapi), the GraphQL API
//! (seaography over the entities of all three databases), the admin UI (askama) and the
//! operational endpoints.
//!
//! Module map:
//! - [`state`]: [`AppState`], what every handler can reach.
//! - [`access`]: IP access control (blocklist / exemption list) before everything else.
//! - [`client`]: the client address every security decision uses (trusted proxies).
//! - [`auth`]: who is signed in ([`auth::Principal`]) and the guards of every operation.
//! - [`csrf`]: per-page CSRF tokens required on sensitive writes from browser sessions.
//! - [`limit`]: per-client rate limits (sign-in endpoints).
//! - [`faces`]: face recognition: the engine, the enrolled gallery, face events and live
//!   analysis of cameras with motion.
//! - [`nvr`]: the recording service: a pv-media recorder per camera, wired to the records
//!   database (segment rows, gaps, status, recovery, retention, `pentavision check`).
//! - [`app`]: [`app::build`] composes every route and middleware into one endpoint.
//! - [`server`]: binding, serving and graceful shutdown.
//! - [`problem`]: RFC 9457 problem JSON, the one place an error kind becomes an HTTP status.
//! - [`rest`]: the `/api/v1` operations and the OpenAPI document.
//! - [`graphql`]: the `/graphql` schema and its one-database-per-operation routing.
//! - [`ui`]: the admin UI pages, the embedded static assets and the toast component.
//! - [`snapshots`]: the OpenAPI and GraphQL SDL texts that `pv-web/schema/` snapshots.
//! - [`blocklist`]: the HTTP side of the `pentavision-blocklist` daemon.
//! - [`ops`]: `/healthz`, `/readyz`, `/metrics`.
//!
//! Dependencies: poem + poem-openapi because they generate the OpenAPI document from the
//! handler signatures (no hand-kept spec); seaography because it derives a complete, filterable
//! GraphQL schema from the sea-orm entities; askama because templates are checked at compile
//! time and embedded in the binary; metrics-exporter-prometheus for the standard text format;
//! lru for the timeline thumbnail caches (a small, widely used LRU map, already in the tree).
//!
//! ```no_run
//! # async fn demo() -> Result<(), Box<dyn std::error::Error>> {
//! let config = pv_core::config::Config::default();
//! let state = pv_web::AppState::start(config).await?;
//! let server = pv_web::server::Server::bind(&state).await?;
//! println!("listening on {}", server.local_addr());
//! server.run(state, std::future::pending()).await?;
//! # Ok(()) }
//! ```
#![deny(missing_docs)]

pub mod access;
pub mod app;
pub mod auth;
pub mod blocklist;
pub mod client;
pub mod csrf;
pub mod faces;
pub mod graphql;
pub mod limit;
pub mod live;
pub mod live_mse;
pub mod nvr;
pub mod ops;
pub mod problem;
pub mod rest;
pub mod server;
pub mod snapshots;
pub mod state;
pub mod ui;

pub use state::AppState;

/// pv-web's error.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum Error {
    /// A pv-core failure (configuration, database).
    #[error(transparent)]
    Core(#[from] pv_core::Error),
    /// The listen address could not be bound or the server failed.
    #[error("{context}: {source}")]
    Io {
        /// What was being done.
        context: String,
        /// The OS error.
        #[source]
        source: std::io::Error,
    },
    /// The GraphQL schema could not be built (a bug).
    #[error("GraphQL schema: {0}")]
    Schema(String),
    /// Start-up could not prepare the security layer (server key, passkey origin).
    #[error("{0}")]
    Startup(String),
}

impl Error {
    /// Classify this error.
    pub fn kind(&self) -> pv_core::ErrorKind {
        match self {
            Error::Core(e) => e.kind(),
            Error::Io { .. } => pv_core::ErrorKind::Unavailable,
            Error::Schema(_) => pv_core::ErrorKind::Internal,
            Error::Startup(_) => pv_core::ErrorKind::InvalidInput,
        }
    }
}

/// pv-web's result type.
pub type Result<T, E = Error> = std::result::Result<T, E>;
