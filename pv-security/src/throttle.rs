//! Failed-attempt counters with exponential back-off and lock-out, for sign-in and for the
//! disarm PIN. Counters are kept per subject (a username, a client address) in the users
//! database, so they survive restarts and hold across server nodes.
//!
//! After `lockout_free_attempts` failures, each further failure locks the subject for
//! `lockout_base_seconds × 2^(extra failures − 1)`, capped at `lockout_max_seconds`. A success
//! clears the counter; failures older than `lockout_window_seconds` are forgotten. Clients in
//! 192.168.250.0/24 and on the IP exemption list are never locked out — they still have to
//! authenticate.

use std::net::IpAddr;

use chrono::{DateTime, Duration, Utc};
use ipnet::IpNet;
use pv_core::config::SecurityConfig;
use pv_core::db::users::auth_throttle;
use sea_orm::{ActiveModelTrait, ColumnTrait, DatabaseConnection, EntityTrait, QueryFilter, Set};

use crate::Result;
use crate::access::{Decision, RuleSet};

/// The network whose clients bypass lock-outs, whatever the rules say.
pub const LOCKOUT_EXEMPT_NETWORK: &str = "192.168.250.0/24";

/// What is being guessed.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Scope {
    /// Sign-in (password, second factor).
    Login,
    /// The 8-digit disarm PIN.
    Pin,
}

impl Scope {
    fn as_str(self) -> &'static str {
        match self {
            Scope::Login => "login",
            Scope::Pin => "pin",
        }
    }
}

/// The answer of [`Throttle::check`].
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Verdict {
    /// The attempt may proceed.
    Allowed,
    /// Locked: try again after this time.
    LockedUntil(DateTime<Utc>),
}

/// Lock-out policy over the users database.
#[derive(Debug, Clone)]
pub struct Throttle {
    db: DatabaseConnection,
    policy: SecurityConfig,
}

/// Whether `ip` never gets locked out: 192.168.250.0/24 or on the exemption list.
pub fn lockout_exempt(ip: IpAddr, rules: &RuleSet) -> bool {
    let ip = ip.to_canonical();
    LOCKOUT_EXEMPT_NETWORK.parse::<IpNet>().is_ok_and(|n| n.contains(&ip))
        || rules.decide(ip) == Decision::Exempt
}

impl Throttle {
    /// A throttle over `db` (the users database) with the lock-out settings of `policy`.
    pub fn new(db: DatabaseConnection, policy: SecurityConfig) -> Self {
        Self { db, policy }
    }

    async fn row(&self, scope: Scope, subject: &str) -> Result<Option<auth_throttle::Model>> {
        Ok(auth_throttle::Entity::find()
            .filter(auth_throttle::Column::Scope.eq(scope.as_str()))
            .filter(auth_throttle::Column::Subject.eq(subject))
            .one(&self.db)
            .await?)
    }

    /// May `subject` attempt `scope` now? `client` exempt clients are always allowed.
    pub async fn check(
        &self,
        scope: Scope,
        subject: &str,
        client: Option<(IpAddr, &RuleSet)>,
        now: DateTime<Utc>,
    ) -> Result<Verdict> {
        if client.is_some_and(|(ip, rules)| lockout_exempt(ip, rules)) {
            return Ok(Verdict::Allowed);
        }
        Ok(match self.row(scope, subject).await?.and_then(|r| r.locked_until) {
            Some(until) if until > now => Verdict::LockedUntil(until),
            _ => Verdict::Allowed,
        })
    }

    /// Count a failure; returns the resulting verdict (locked or not).
    pub async fn record_failure(
        &self,
        scope: Scope,
        subject: &str,
        now: DateTime<Utc>,
    ) -> Result<Verdict> {
        let window = Duration::seconds(
            i64::try_from(self.policy.lockout_window_seconds).unwrap_or(i64::MAX / 2),
        );
        let row = self.row(scope, subject).await?;
        let stale = row.as_ref().and_then(|r| r.last_failure_at).is_some_and(|t| now - t > window);
        let failures = match &row {
            Some(r) if !stale => r.failures.saturating_add(1),
            _ => 1,
        };
        let locked_until = self.lock_for(failures).map(|d| now + d);
        let first = match &row {
            Some(r) if !stale => r.first_failure_at.or(Some(now)),
            _ => Some(now),
        };
        match row {
            Some(r) => {
                let mut a: auth_throttle::ActiveModel = r.into();
                a.failures = Set(failures);
                a.first_failure_at = Set(first);
                a.last_failure_at = Set(Some(now));
                a.locked_until = Set(locked_until);
                a.update(&self.db).await?;
            }
            None => {
                auth_throttle::ActiveModel {
                    scope: Set(scope.as_str().into()),
                    subject: Set(subject.into()),
                    failures: Set(failures),
                    first_failure_at: Set(first),
                    last_failure_at: Set(Some(now)),
                    locked_until: Set(locked_until),
                    ..Default::default()
                }
                .insert(&self.db)
                .await?;
            }
        }
        if let Some(until) = locked_until {
            tracing::warn!(scope = scope.as_str(), failures, %until, "subject locked out");
            return Ok(Verdict::LockedUntil(until));
        }
        Ok(Verdict::Allowed)
    }

    /// A success clears the subject's counter.
    pub async fn record_success(&self, scope: Scope, subject: &str) -> Result<()> {
        auth_throttle::Entity::delete_many()
            .filter(auth_throttle::Column::Scope.eq(scope.as_str()))
            .filter(auth_throttle::Column::Subject.eq(subject))
            .exec(&self.db)
            .await?;
        Ok(())
    }

    /// How long `failures` failures lock for (None: not locked).
    pub fn lock_for(&self, failures: i32) -> Option<Duration> {
        let free = i64::from(self.policy.lockout_free_attempts);
        let extra = i64::from(failures) - free;
        if extra <= 0 {
            return None;
        }
        let doublings = u32::try_from(extra - 1).unwrap_or(u32::MAX).min(40);
        let secs = self.policy.lockout_base_seconds.saturating_mul(1u64 << doublings);
        let secs = secs.min(self.policy.lockout_max_seconds);
        Some(Duration::seconds(i64::try_from(secs).unwrap_or(i64::MAX / 2)))
    }
}
