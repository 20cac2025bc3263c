//! `permissions`: one thing a user may be allowed to do, granted through roles.

use sea_orm::entity::prelude::*;

#[derive(Clone, Debug, PartialEq, Eq, DeriveEntityModel)]
#[sea_orm(table_name = "permissions")]
pub struct Model {
    #[sea_orm(primary_key)]
    pub id: i64,
    /// Stable dotted key checked by the code, e.g. `cameras.live_view`.
    #[sea_orm(unique)]
    pub key: String,
    /// `alarms`, `cameras`, `automation` or `admin` (for grouping in the interface).
    pub category: String,
    pub description: Option<String>,
}

#[derive(Copy, Clone, Debug, EnumIter, DeriveRelation)]
pub enum Relation {
    #[sea_orm(has_many = "super::role_permission::Entity")]
    RolePermission,
}

impl Related<super::role_permission::Entity> for Entity {
    fn to() -> RelationDef {
        Relation::RolePermission.def()
    }
}

#[derive(Copy, Clone, Debug, EnumIter, DeriveRelatedEntity)]
pub enum RelatedEntity {
    #[sea_orm(entity = "super::role_permission::Entity")]
    RolePermission,
}

impl ActiveModelBehavior for ActiveModel {}
