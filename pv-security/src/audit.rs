//! The tamper-evident audit log: every event carries the SHA-256 of the previous one, so an
//! edited, inserted or deleted event breaks the chain, and [`verify`] names the first broken
//! link.
//!
//! The hash covers the previous hash and every field of the event in a canonical text form:
//! the time in UTC with microseconds (what every supported database stores), absent values
//! distinct from empty ones, and `details` JSON with object keys sorted. Appends go through
//! [`AuditLog`], which serialises them so two events never claim the same predecessor.

use chrono::{DateTime, SubsecRound, Utc};
use pv_core::db::users::audit_event;
use sea_orm::{ActiveModelTrait, DatabaseConnection, EntityTrait, NotSet, QueryOrder, QuerySelect};
use sha2::{Digest, Sha256};

use crate::Result;

/// The `prev_hash` of the first event.
pub const GENESIS: &str = "0000000000000000000000000000000000000000000000000000000000000000";

/// Outcome of an audited action.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Outcome {
    /// It happened.
    Success,
    /// It was attempted and failed (wrong password, …).
    Failure,
    /// It was refused by policy.
    Denied,
}

impl Outcome {
    /// The stored value.
    pub fn as_str(self) -> &'static str {
        match self {
            Outcome::Success => "success",
            Outcome::Failure => "failure",
            Outcome::Denied => "denied",
        }
    }
}

/// An event to record. Never put secrets in any field.
#[derive(Debug, Clone, PartialEq)]
pub struct Event {
    /// The acting user, if a user.
    pub actor_user_id: Option<i64>,
    /// The actor's name (`cli`, `system`, a username).
    pub actor_name: Option<String>,
    /// Dotted action name, e.g. `ip_rule.block`.
    pub action: String,
    /// Kind of the object acted on.
    pub target_kind: Option<String>,
    /// The object's id as text.
    pub target_id: Option<String>,
    /// Client address.
    pub ip: Option<String>,
    /// Client user agent.
    pub user_agent: Option<String>,
    /// Outcome.
    pub outcome: Outcome,
    /// Event-specific details.
    pub details: Option<serde_json::Value>,
}

impl Event {
    /// A successful action by `actor_name` on `target_kind` `target_id`.
    pub fn new(actor_name: &str, action: &str, target_kind: &str, target_id: &str) -> Self {
        Self {
            actor_user_id: None,
            actor_name: Some(actor_name.into()),
            action: action.into(),
            target_kind: Some(target_kind.into()),
            target_id: Some(target_id.into()),
            ip: None,
            user_agent: None,
            outcome: Outcome::Success,
            details: None,
        }
    }

    /// With JSON details.
    pub fn details(mut self, details: serde_json::Value) -> Self {
        self.details = Some(details);
        self
    }
}

/// Serialised access to the audit log of one users database.
#[derive(Debug)]
pub struct AuditLog {
    db: DatabaseConnection,
    lock: tokio::sync::Mutex<()>,
}

impl AuditLog {
    /// The audit log in `db` (the users database).
    pub fn new(db: DatabaseConnection) -> Self {
        Self { db, lock: tokio::sync::Mutex::new(()) }
    }

    /// Append `event` at `now`, chained to the newest event.
    pub async fn append(&self, event: Event, now: DateTime<Utc>) -> Result<audit_event::Model> {
        let _guard = self.lock.lock().await;
        let prev_hash = audit_event::Entity::find()
            .order_by_desc(audit_event::Column::Id)
            .limit(1)
            .one(&self.db)
            .await?
            .map(|e| e.hash)
            .unwrap_or_else(|| GENESIS.to_string());
        let occurred_at = now.trunc_subsecs(6);
        let mut row = audit_event::Model {
            id: 0,
            occurred_at,
            actor_user_id: event.actor_user_id,
            actor_name: event.actor_name,
            action: event.action,
            target_kind: event.target_kind,
            target_id: event.target_id,
            ip: event.ip,
            user_agent: event.user_agent,
            outcome: event.outcome.as_str().into(),
            details: event.details,
            prev_hash,
            hash: String::new(),
        };
        row.hash = event_hash(&row);
        let mut active = audit_event::ActiveModel::from(row).reset_all();
        active.id = NotSet;
        let saved = active.insert(&self.db).await?;
        // Sign-ins, failures, lock-outs and every change, countable by a metrics scraper
        // (action names are a fixed set in the code, so the labels stay few).
        metrics::counter!(
            "pentavision_audit_events_total",
            "action" => saved.action.clone(),
            "outcome" => saved.outcome.clone()
        )
        .increment(1);
        Ok(saved)
    }
}

/// The hash of an event: SHA-256 over its previous hash and canonical fields (not `id`, not
/// `hash`).
pub fn event_hash(e: &audit_event::Model) -> String {
    let opt = |v: &Option<String>| match v {
        Some(s) => format!("s{}:{s}", s.len()),
        None => "-".to_string(),
    };
    let details = match &e.details {
        Some(v) => {
            let c = canonical_json(v);
            format!("s{}:{c}", c.len())
        }
        None => "-".into(),
    };
    let text = [
        e.prev_hash.clone(),
        e.occurred_at.trunc_subsecs(6).format("%Y-%m-%dT%H:%M:%S%.6fZ").to_string(),
        e.actor_user_id.map(|i| i.to_string()).unwrap_or_else(|| "-".into()),
        opt(&e.actor_name),
        format!("s{}:{}", e.action.len(), e.action),
        opt(&e.target_kind),
        opt(&e.target_id),
        opt(&e.ip),
        opt(&e.user_agent),
        e.outcome.clone(),
        details,
    ]
    .join("\n");
    hex::encode(Sha256::digest(text.as_bytes()))
}

/// JSON with object keys sorted at every level, no insignificant white space.
pub fn canonical_json(v: &serde_json::Value) -> String {
    match v {
        serde_json::Value::Object(map) => {
            let mut keys: Vec<&String> = map.keys().collect();
            keys.sort();
            let parts: Vec<String> = keys
                .into_iter()
                .map(|k| {
                    format!("{}:{}", serde_json::Value::String(k.clone()), canonical_json(&map[k]))
                })
                .collect();
            format!("{{{}}}", parts.join(","))
        }
        serde_json::Value::Array(items) => {
            format!("[{}]", items.iter().map(canonical_json).collect::<Vec<_>>().join(","))
        }
        other => other.to_string(),
    }
}

/// The result of [`verify`].
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Verification {
    /// Events checked.
    pub events: u64,
    /// The first broken link: the event's id and what is wrong with it.
    pub first_broken: Option<(i64, String)>,
}

/// Walk the whole chain in id order and report the first event whose content does not match
/// its hash, or whose `prev_hash` is not the previous event's hash.
pub async fn verify(db: &DatabaseConnection) -> Result<Verification> {
    const PAGE: u64 = 1000;
    let mut expected_prev = GENESIS.to_string();
    let mut last_id = i64::MIN;
    let mut events = 0;
    loop {
        use sea_orm::{ColumnTrait, QueryFilter};
        let page = audit_event::Entity::find()
            .filter(audit_event::Column::Id.gt(last_id))
            .order_by_asc(audit_event::Column::Id)
            .limit(PAGE)
            .all(db)
            .await?;
        let n = page.len() as u64;
        for e in page {
            events += 1;
            if e.prev_hash != expected_prev {
                let why = "its previous-hash does not match the event before it (an event was removed or inserted)";
                return Ok(Verification { events, first_broken: Some((e.id, why.into())) });
            }
            if event_hash(&e) != e.hash {
                let why = "its contents do not match its hash (the event was altered)";
                return Ok(Verification { events, first_broken: Some((e.id, why.into())) });
            }
            expected_prev = e.hash;
            last_id = e.id;
        }
        if n < PAGE {
            return Ok(Verification { events, first_broken: None });
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn canonical_json_sorts_keys_at_every_level() {
        let a = serde_json::json!({"b": 1, "a": {"d": [1, {"z": 0, "y": "x"}], "c": null}});
        assert_eq!(canonical_json(&a), r#"{"a":{"c":null,"d":[1,{"y":"x","z":0}]},"b":1}"#);
    }
}
