//! IP access control, enforced before anything else (and before authentication): clients on
//! the blocklist get 403; the exemption list wins over any block. Rules come from the users
//! database through a short-lived cache, so a change from the UI, the API or
//! `pentavision ip …` applies within [`RULES_TTL`].

use std::sync::Arc;
use std::time::{Duration, Instant};

use poem::http::StatusCode;
use poem::{Endpoint, IntoResponse, Request, Response};
use pv_security::access::{Decision, RuleSet};
use tokio::sync::RwLock;

use crate::problem::Problem;
use crate::state::AppState;

/// How long loaded rules are used before they are read again.
pub const RULES_TTL: Duration = Duration::from_secs(2);

/// The cached rule set of one server.
#[derive(Debug, Default)]
pub struct RulesCache {
    loaded: RwLock<Option<(Instant, Arc<RuleSet>)>>,
}

impl RulesCache {
    /// The rules in force, reloaded when older than [`RULES_TTL`]. When the database cannot be
    /// read the last rules stay in force (none at all before the first successful read).
    pub async fn current(&self, state: &AppState) -> Arc<RuleSet> {
        if let Some((at, rules)) = self.loaded.read().await.as_ref()
            && at.elapsed() < RULES_TTL
        {
            return rules.clone();
        }
        let mut slot = self.loaded.write().await;
        if let Some((at, rules)) = slot.as_ref()
            && at.elapsed() < RULES_TTL
        {
            return rules.clone();
        }
        match RuleSet::load(&state.dbs().users, state.clock().now()).await {
            Ok(rules) => {
                let rules = Arc::new(rules);
                *slot = Some((Instant::now(), rules.clone()));
                rules
            }
            Err(e) => {
                tracing::warn!(error = %e, "cannot read IP rules; keeping the last ones");
                let last = slot.as_ref().map(|(_, r)| r.clone()).unwrap_or_default();
                *slot = Some((Instant::now(), last.clone()));
                last
            }
        }
    }
}

/// Refuse blocked clients with 403 before any other processing.
pub async fn enforce<E: Endpoint>(next: E, req: Request) -> poem::Result<Response> {
    let ip = req.remote_addr().as_socket_addr().map(|a| a.ip());
    if let (Some(ip), Some(state)) = (ip, req.data::<AppState>()) {
        let rules = state.ip_rules().current(state).await;
        if rules.decide(ip) == Decision::Blocked {
            tracing::warn!(%ip, path = req.uri().path(), "blocked client refused");
            metrics::counter!("pentavision_blocked_requests_total").increment(1);
            return Ok(
                Problem::new(StatusCode::FORBIDDEN, "your address is blocked").into_response()
            );
        }
    }
    Ok(next.get_response(req).await)
}
