//! `auth_throttles`: failure counters for sign-in and PIN attempts, per username or client
//! address, used to slow down and lock out guessing.

use sea_orm::entity::prelude::*;

#[derive(Clone, Debug, PartialEq, Eq, DeriveEntityModel)]
#[sea_orm(table_name = "auth_throttles")]
pub struct Model {
    #[sea_orm(primary_key)]
    pub id: i64,
    /// `login` or `pin`.
    pub scope: String,
    /// The username or client IP address the counter applies to.
    pub subject: String,
    /// Failures in the current window.
    pub failures: i32,
    pub first_failure_at: Option<DateTimeUtc>,
    pub last_failure_at: Option<DateTimeUtc>,
    /// Attempts refused until this time.
    pub locked_until: Option<DateTimeUtc>,
}

#[derive(Copy, Clone, Debug, EnumIter, DeriveRelation)]
pub enum Relation {}

#[derive(Copy, Clone, Debug, EnumIter, DeriveRelatedEntity)]
pub enum RelatedEntity {}

impl ActiveModelBehavior for ActiveModel {}
