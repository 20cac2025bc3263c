//! `ip_rules`: client addresses or networks that are blocked, or exempt from blocking and
//! throttling.

use sea_orm::entity::prelude::*;

#[derive(Clone, Debug, PartialEq, Eq, DeriveEntityModel)]
#[sea_orm(table_name = "ip_rules")]
pub struct Model {
    #[sea_orm(primary_key)]
    pub id: i64,
    /// An IP address or a CIDR network (IPv4 or IPv6).
    pub network: String,
    /// `block` or `exempt`.
    pub action: String,
    pub reason: Option<String>,
    /// Who made the rule: `builtin`, `admin`, `cli`, `fail2ban` or `lockout`.
    pub source: String,
    /// The administrator who created it (by value); None when not made by a user.
    pub created_by: Option<i64>,
    pub created_at: DateTimeUtc,
    /// None: permanent.
    pub expires_at: Option<DateTimeUtc>,
}

#[derive(Copy, Clone, Debug, EnumIter, DeriveRelation)]
pub enum Relation {}

#[derive(Copy, Clone, Debug, EnumIter, DeriveRelatedEntity)]
pub enum RelatedEntity {}

impl ActiveModelBehavior for ActiveModel {}
