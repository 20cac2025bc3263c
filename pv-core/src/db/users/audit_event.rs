//! `audit_events`: the security audit log. Each event carries the hash of the previous one, so
//! the log is a hash chain and any edit or deletion is detectable.

use sea_orm::entity::prelude::*;

#[derive(Clone, Debug, PartialEq, Eq, DeriveEntityModel)]
#[sea_orm(table_name = "audit_events")]
pub struct Model {
    #[sea_orm(primary_key)]
    pub id: i64,
    pub occurred_at: DateTimeUtc,
    /// The user who acted (by value, no foreign key, so deleting a user keeps the history);
    /// None for the system, the command line or an unknown client.
    pub actor_user_id: Option<i64>,
    /// The actor's name at the time (username, `system`, `cli`).
    pub actor_name: Option<String>,
    /// What happened, dotted, e.g. `auth.login`, `user.create`, `alarm.disarm`.
    pub action: String,
    /// Kind of object acted on, e.g. `user`, `camera`, `role`.
    pub target_kind: Option<String>,
    /// Id of that object, as text.
    pub target_id: Option<String>,
    /// Client address.
    pub ip: Option<String>,
    pub user_agent: Option<String>,
    /// `success`, `failure` or `denied`.
    pub outcome: String,
    /// Event-specific JSON details (never secrets).
    pub details: Option<Json>,
    /// Hex SHA-256 `hash` of the previous event (64 zeros for the first).
    pub prev_hash: String,
    /// Hex SHA-256 over `prev_hash` and this event's fields.
    #[sea_orm(unique)]
    pub hash: String,
}

#[derive(Copy, Clone, Debug, EnumIter, DeriveRelation)]
pub enum Relation {}

#[derive(Copy, Clone, Debug, EnumIter, DeriveRelatedEntity)]
pub enum RelatedEntity {}

impl ActiveModelBehavior for ActiveModel {}
