//! `pin_uses`: each attempt to use a user's disarm PIN, successful or not.

use sea_orm::entity::prelude::*;

#[derive(Clone, Debug, PartialEq, Eq, DeriveEntityModel)]
#[sea_orm(table_name = "pin_uses")]
pub struct Model {
    #[sea_orm(primary_key)]
    pub id: i64,
    pub user_id: i64,
    pub used_at: DateTimeUtc,
    /// Where the PIN was entered: panel, app or station name.
    pub location: Option<String>,
    /// How it was entered, e.g. `keypad`, `app`, `web`.
    pub method: Option<String>,
    /// Client address, when entered over the network.
    pub ip: Option<String>,
    pub success: bool,
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
