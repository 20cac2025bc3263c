//! `sessions`: a signed-in browser session, identified by the hash of its cookie token.

use sea_orm::entity::prelude::*;

#[derive(Clone, Debug, PartialEq, Eq, DeriveEntityModel)]
#[sea_orm(table_name = "sessions")]
pub struct Model {
    #[sea_orm(primary_key)]
    pub id: i64,
    pub user_id: i64,
    /// Hex SHA-256 of the session token; the token itself lives only in the cookie.
    #[sea_orm(unique)]
    #[seaography(ignore)]
    pub token_hash: String,
    pub created_at: DateTimeUtc,
    /// Last request made with this session.
    pub last_seen_at: DateTimeUtc,
    /// The session ends if unused until this time (pushed forward on activity).
    pub idle_expires_at: DateTimeUtc,
    /// The session ends at this time whatever the activity.
    pub absolute_expires_at: DateTimeUtc,
    /// Client address when the session was created.
    pub ip: Option<String>,
    pub user_agent: Option<String>,
    /// When the session was signed out or revoked (None: live until it expires).
    pub revoked_at: Option<DateTimeUtc>,
    /// `full`, or `enrol`: signed in with a setup code or a password alone, and allowed only
    /// to enrol a passkey or TOTP (which upgrades the session to `full`).
    pub stage: String,
}

#[derive(Copy, Clone, Debug, EnumIter, DeriveRelation)]
pub enum Relation {
    #[sea_orm(
        belongs_to = "super::user::Entity",
        from = "Column::UserId",
        to = "super::user::Column::Id",
        on_delete = "Cascade"
    )]
    User,
}

impl Related<super::user::Entity> for Entity {
    fn to() -> RelationDef {
        Relation::User.def()
    }
}

#[derive(Copy, Clone, Debug, EnumIter, DeriveRelatedEntity)]
pub enum RelatedEntity {
    #[sea_orm(entity = "super::user::Entity")]
    User,
}

impl ActiveModelBehavior for ActiveModel {}
