//! [`AppState`]: configuration, database handles, clock and schemas shared by all handlers.

use std::net::SocketAddr;
use std::sync::{Arc, OnceLock};

use pv_core::config::Config;
use pv_core::db::Databases;
use pv_core::{Clock, SystemClock};

use crate::graphql::GraphqlApi;

/// Everything a request handler may need. Cheap to clone.
#[derive(Clone)]
pub struct AppState {
    inner: Arc<Inner>,
}

struct Inner {
    config: Config,
    dbs: Databases,
    clock: Arc<dyn Clock>,
    graphql: GraphqlApi,
    bound: OnceLock<SocketAddr>,
    ip_rules: crate::access::RulesCache,
    proxies: crate::client::TrustedProxies,
    key: pv_security::seal::ServerKey,
    audit: Arc<pv_security::audit::AuditLog>,
    relying_party: OnceLock<pv_security::passkey::RelyingParty>,
    auth_limiter: crate::limit::PerClientLimiter,
    nvr: crate::nvr::Nvr,
    live: crate::live::Live,
    faces: crate::faces::FaceService,
}

impl std::fmt::Debug for AppState {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("AppState").field("data_dir", &self.inner.config.data_dir).finish()
    }
}

impl AppState {
    /// Connect to and migrate the three databases, then build the state.
    pub async fn start(config: Config) -> crate::Result<Self> {
        let dbs = Databases::connect(&config).await?;
        dbs.migrate().await?;
        Self::new(config, dbs, Arc::new(SystemClock::new())).await
    }

    /// Build the state from already migrated databases.
    pub async fn new(config: Config, dbs: Databases, clock: Arc<dyn Clock>) -> crate::Result<Self> {
        let graphql = GraphqlApi::build(&dbs, &config.graphql).await?;
        let key = pv_security::seal::ServerKey::load_or_create(&config.data_dir)
            .map_err(|e| crate::Error::Startup(e.to_string()))?;
        let audit = Arc::new(pv_security::audit::AuditLog::new(dbs.users.clone()));
        let proxies = crate::client::TrustedProxies::from_config(&config.server);
        let auth_limiter =
            crate::limit::PerClientLimiter::per_minute(config.security.auth_requests_per_minute);
        crate::ops::install_metrics_recorder();
        let nvr = crate::nvr::Nvr::new(
            dbs.clone(),
            config.data_dir.clone(),
            config.recording.clone(),
            clock.clone(),
            key.clone(),
            audit.clone(),
            config.storage.clone(),
        );
        let faces = crate::faces::FaceService::start(
            dbs.clone(),
            key.clone(),
            clock.clone(),
            config.faces.clone(),
            &config.data_dir,
        )
        .await;
        let live = crate::live::Live::new(
            config.live.clone(),
            config.server.listen.ip(),
            audit.clone(),
            clock.clone(),
        );
        Ok(Self {
            inner: Arc::new(Inner {
                config,
                dbs,
                clock,
                graphql,
                bound: OnceLock::new(),
                ip_rules: Default::default(),
                proxies,
                key,
                audit,
                relying_party: OnceLock::new(),
                auth_limiter,
                nvr,
                live,
                faces,
            }),
        })
    }

    /// The effective configuration.
    pub fn config(&self) -> &Config {
        &self.inner.config
    }

    /// The three databases.
    pub fn dbs(&self) -> &Databases {
        &self.inner.dbs
    }

    /// The clock.
    pub fn clock(&self) -> &dyn Clock {
        self.inner.clock.as_ref()
    }

    /// The address the server actually listens on (set once bound; port 0 resolved), else the
    /// configured one.
    pub fn listen_addr(&self) -> SocketAddr {
        self.inner.bound.get().copied().unwrap_or(self.inner.config.server.listen)
    }

    /// Record the bound address (first call wins).
    pub fn set_bound_addr(&self, addr: SocketAddr) {
        let _ = self.inner.bound.set(addr);
    }

    /// The cached IP access rules.
    pub fn ip_rules(&self) -> &crate::access::RulesCache {
        &self.inner.ip_rules
    }

    /// The client address of `req` as every security decision sees it (see [`crate::client`]).
    pub fn client_ip(&self, req: &poem::Request) -> Option<std::net::IpAddr> {
        crate::client::client_ip(req, &self.inner.proxies)
    }

    /// The server key (seals secrets at rest, keys CSRF tokens).
    pub fn key(&self) -> &pv_security::seal::ServerKey {
        &self.inner.key
    }

    /// The audit log (one per server: appends are serialised through it).
    pub fn audit(&self) -> &pv_security::audit::AuditLog {
        &self.inner.audit
    }

    /// How long sessions live.
    pub fn session_policy(&self) -> pv_security::session::SessionPolicy {
        pv_security::session::SessionPolicy::from_config(&self.inner.config.security)
    }

    /// Per-client rate limit of the sign-in endpoints.
    pub fn auth_limiter(&self) -> &crate::limit::PerClientLimiter {
        &self.inner.auth_limiter
    }

    /// The origin browsers use: `server.public_origin`, else `http://localhost:PORT`.
    pub fn public_origin(&self) -> String {
        match &self.inner.config.server.public_origin {
            Some(origin) => origin.trim_end_matches('/').to_string(),
            None => format!("http://localhost:{}", self.listen_addr().port()),
        }
    }

    /// The WebAuthn relying party for [`AppState::public_origin`] (built on first use, once the
    /// listening port is known).
    pub fn relying_party(&self) -> crate::Result<&pv_security::passkey::RelyingParty> {
        if let Some(rp) = self.inner.relying_party.get() {
            return Ok(rp);
        }
        let rp = pv_security::passkey::RelyingParty::new(&self.public_origin())
            .map_err(|e| crate::Error::Startup(e.to_string()))?;
        Ok(self.inner.relying_party.get_or_init(|| rp))
    }

    /// Live view (WHEP sessions and MSE viewers).
    pub fn live(&self) -> &crate::live::Live {
        &self.inner.live
    }

    /// The recording service (recorders start with [`crate::nvr::Nvr::start_all`]).
    pub fn nvr(&self) -> &crate::nvr::Nvr {
        &self.inner.nvr
    }

    /// Face recognition: the engine, the gallery, face events and the live runtime.
    pub fn faces(&self) -> &crate::faces::FaceService {
        &self.inner.faces
    }

    /// The GraphQL API.
    pub fn graphql(&self) -> &GraphqlApi {
        &self.inner.graphql
    }
}
