//! `webauthn_ceremonies`: server-side state of a passkey registration or authentication in
//! progress, kept until the browser answers or it expires.

use sea_orm::entity::prelude::*;

#[derive(Clone, Debug, PartialEq, Eq, DeriveEntityModel)]
#[sea_orm(table_name = "webauthn_ceremonies")]
pub struct Model {
    #[sea_orm(primary_key)]
    pub id: i64,
    /// The user concerned; None for a discoverable-credential sign-in where the user is not
    /// known yet.
    pub user_id: Option<i64>,
    /// `register` or `authenticate`.
    pub kind: String,
    /// The serialized ceremony state (JSON, includes the challenge).
    #[seaography(ignore)]
    pub state: String,
    pub created_at: DateTimeUtc,
    pub expires_at: DateTimeUtc,
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
