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
        crate::ops::install_metrics_recorder();
        Ok(Self {
            inner: Arc::new(Inner {
                config,
                dbs,
                clock,
                graphql,
                bound: OnceLock::new(),
                ip_rules: Default::default(),
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

    /// The GraphQL API.
    pub fn graphql(&self) -> &GraphqlApi {
        &self.inner.graphql
    }
}
