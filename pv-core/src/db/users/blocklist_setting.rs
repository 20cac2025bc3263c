//! `blocklist_settings`: the blocklist feed that exports blocked addresses to firewalls and
//! fail2ban (a single row).

use sea_orm::entity::prelude::*;

#[derive(Clone, Debug, PartialEq, Eq, DeriveEntityModel)]
#[sea_orm(table_name = "blocklist_settings")]
pub struct Model {
    #[sea_orm(primary_key)]
    pub id: i64,
    /// Whether the feed is served.
    pub enabled: bool,
    /// Hex SHA-256 of the bearer token the feed requires; None: no token required.
    #[seaography(ignore)]
    pub token_hash: Option<String>,
    /// Rate limit of the feed endpoint per client.
    pub requests_per_minute: i32,
    pub updated_at: DateTimeUtc,
    /// The administrator who last changed it (by value).
    pub updated_by: Option<i64>,
}

#[derive(Copy, Clone, Debug, EnumIter, DeriveRelation)]
pub enum Relation {}

#[derive(Copy, Clone, Debug, EnumIter, DeriveRelatedEntity)]
pub enum RelatedEntity {}

impl ActiveModelBehavior for ActiveModel {}
