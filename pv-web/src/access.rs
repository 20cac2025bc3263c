//! IP access control, enforced before anything else (and before authentication): clients on
//! the blocklist get 403; then the country policy refuses clients from denied (or not allowed)
//! countries with 403. The exemption list wins over both. Rules and the country policy come
//! from the users database through a short-lived cache, so a change from the UI, the API or
//! `pentavision ip …` applies within [`RULES_TTL`]; the country database (`.mmdb`) stays open
//! in memory and is read again when its path, modification time or size changes.

use std::path::PathBuf;
use std::sync::Arc;
use std::time::{Duration, Instant, SystemTime};

use poem::http::StatusCode;
use poem::{Endpoint, IntoResponse, Request, Response};
use pv_security::access::{Decision, RuleSet};
use pv_security::country::{self, CountryDecision, CountryPolicy, GeoDb, PolicyMode};
use tokio::sync::RwLock;

use crate::problem::Problem;
use crate::state::AppState;

/// How long loaded rules (and the country policy) are used before they are read again.
pub const RULES_TTL: Duration = Duration::from_secs(2);

/// The cached rule set and country policy of one server.
#[derive(Debug, Default)]
pub struct RulesCache {
    loaded: RwLock<Option<(Instant, Arc<RuleSet>)>>,
    country: RwLock<Option<(Instant, Arc<CountryFilter>)>>,
}

/// The country policy in force with its opened database.
#[derive(Debug, Default)]
pub struct CountryFilter {
    /// The policy.
    pub policy: CountryPolicy,
    /// The opened database; None when the policy is off or its database cannot be read (then
    /// no client is country-blocked).
    pub geo: Option<Arc<GeoDb>>,
    /// What the open database was read from: path, modification time, size.
    source: Option<(PathBuf, Option<SystemTime>, u64)>,
    /// The last problem reported, so a lasting one is logged once, not every reload.
    problem: Option<String>,
}

impl CountryFilter {
    /// What the filter says about `ip` (exemptions are the caller's, decided before).
    pub fn decide(&self, ip: std::net::IpAddr) -> CountryDecision {
        country::decide(&self.policy, self.geo.as_deref(), ip)
    }
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

    /// The country policy in force, reloaded when older than [`RULES_TTL`]. When the users
    /// database cannot be read the last policy stays in force; when the country database cannot
    /// be read the last one opened from the same path stays in use (none: nobody is
    /// country-blocked, and a warning is logged).
    pub async fn country(&self, state: &AppState) -> Arc<CountryFilter> {
        if let Some((at, filter)) = self.country.read().await.as_ref()
            && at.elapsed() < RULES_TTL
        {
            return filter.clone();
        }
        let mut slot = self.country.write().await;
        if let Some((at, filter)) = slot.as_ref()
            && at.elapsed() < RULES_TTL
        {
            return filter.clone();
        }
        let last = slot.as_ref().map(|(_, f)| f.clone()).unwrap_or_default();
        let filter = match country::load_policy(&state.dbs().users).await {
            Ok(policy) => Arc::new(refresh(&last, policy).await),
            Err(e) => {
                let problem = format!("cannot read the country policy; keeping the last one: {e}");
                if last.problem.as_deref() != Some(problem.as_str()) {
                    tracing::warn!(error = %e, "cannot read the country policy; keeping the last one");
                }
                Arc::new(CountryFilter {
                    policy: last.policy.clone(),
                    geo: last.geo.clone(),
                    source: last.source.clone(),
                    problem: Some(problem),
                })
            }
        };
        *slot = Some((Instant::now(), filter.clone()));
        filter
    }
}

/// The filter for `policy`, reusing the database of `last` when its file is unchanged.
async fn refresh(last: &CountryFilter, policy: CountryPolicy) -> CountryFilter {
    let path = match (&policy.mmdb_path, policy.mode) {
        (Some(path), PolicyMode::Allow | PolicyMode::Deny) => path.clone(),
        (None, PolicyMode::Allow | PolicyMode::Deny) => {
            return with_problem(
                last,
                policy,
                None,
                None,
                "the country policy names no database".into(),
            );
        }
        (_, PolicyMode::Off) => return CountryFilter { policy, ..Default::default() },
    };
    // The database last opened from this path, if any: kept while a new copy cannot be read.
    let same_path = last.source.as_ref().filter(|(p, ..)| *p == path).and(last.geo.clone());
    let meta = match tokio::fs::metadata(&path).await {
        Ok(meta) => meta,
        Err(e) => {
            let problem = format!("cannot read the country database {}: {e}", path.display());
            let source = same_path.as_ref().and(last.source.clone());
            return with_problem(last, policy, same_path, source, problem);
        }
    };
    let source = (path.clone(), meta.modified().ok(), meta.len());
    if let Some(geo) = &same_path
        && last.source.as_ref() == Some(&source)
    {
        let geo = Some(geo.clone());
        return CountryFilter { policy, geo, source: Some(source), problem: None };
    }
    // A regular file of at most `MAX_MMDB_BYTES` only (never a device or a FIFO).
    let owned = path.clone();
    let opened = match tokio::task::spawn_blocking(move || GeoDb::open(&owned)).await {
        Ok(opened) => opened.map_err(|e| e.to_string()),
        Err(e) => Err(format!("cannot read the country database {}: {e}", path.display())),
    };
    match opened {
        Ok(geo) => {
            tracing::info!(path = %path.display(), database_type = geo.database_type(), "country database opened");
            CountryFilter { policy, geo: Some(Arc::new(geo)), source: Some(source), problem: None }
        }
        Err(problem) => {
            let source = same_path.as_ref().and(last.source.clone());
            with_problem(last, policy, same_path, source, problem)
        }
    }
}

/// A filter that keeps `geo` after `problem`, logging the problem when it is new.
fn with_problem(
    last: &CountryFilter,
    policy: CountryPolicy,
    geo: Option<Arc<GeoDb>>,
    source: Option<(PathBuf, Option<SystemTime>, u64)>,
    problem: String,
) -> CountryFilter {
    if last.problem.as_deref() != Some(problem.as_str()) {
        if geo.is_some() {
            tracing::warn!(%problem, "country database unavailable; keeping the last copy");
        } else {
            tracing::warn!(%problem, "country database unavailable; no client is country-blocked");
        }
    }
    CountryFilter { policy, geo, source, problem: Some(problem) }
}

/// Refuse blocked clients with 403 before any other processing: IP rules first, then the
/// country policy (exempt clients pass both).
pub async fn enforce<E: Endpoint>(next: E, req: Request) -> poem::Result<Response> {
    let state = req.data::<AppState>();
    let ip = state.and_then(|state| state.client_ip(&req));
    if let (Some(ip), Some(state)) = (ip, state) {
        let rules = state.ip_rules().current(state).await;
        match rules.decide(ip) {
            Decision::Blocked => {
                tracing::warn!(%ip, path = req.uri().path(), "blocked client refused");
                metrics::counter!("pentavision_blocked_requests_total").increment(1);
                return Ok(
                    Problem::new(StatusCode::FORBIDDEN, "your address is blocked").into_response()
                );
            }
            Decision::Exempt => {}
            Decision::Neutral => {
                let filter = state.ip_rules().country(state).await;
                if let CountryDecision::Blocked(code) = filter.decide(ip) {
                    tracing::warn!(%ip, country = %code, path = req.uri().path(), "client refused by the country policy");
                    metrics::counter!("pentavision_country_blocked_requests_total").increment(1);
                    return Ok(Problem::new(
                        StatusCode::FORBIDDEN,
                        format!(
                            "this server's country policy does not admit connections from your \
                             country ({code})"
                        ),
                    )
                    .into_response());
                }
            }
        }
    }
    Ok(next.get_response(req).await)
}
