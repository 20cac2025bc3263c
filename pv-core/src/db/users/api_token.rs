//! `api_tokens`: a long-lived bearer token a user created for scripts and integrations.

use sea_orm::entity::prelude::*;

#[derive(Clone, Debug, PartialEq, Eq, DeriveEntityModel)]
#[sea_orm(table_name = "api_tokens")]
pub struct Model {
    #[sea_orm(primary_key)]
    pub id: i64,
    pub user_id: i64,
    /// Label the user gave the token.
    pub name: String,
    /// First characters of the token, shown so the user can tell tokens apart.
    pub prefix: String,
    /// Hex SHA-256 of the token; the token itself is shown once and never stored.
    #[sea_orm(unique)]
    #[seaography(ignore)]
    pub token_hash: String,
    /// Permission keys the token is limited to: JSON list of strings (e.g.
    /// `["cameras.live_view"]`); never more than the owner has.
    pub scopes: Json,
    pub created_at: DateTimeUtc,
    /// None: never expires.
    pub expires_at: Option<DateTimeUtc>,
    pub last_used_at: Option<DateTimeUtc>,
    pub revoked_at: Option<DateTimeUtc>,
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
