//! `user_properties`: a user's membership of a property: residency status, the zones and
//! cameras they may use, when they may use them, and an optional role override.

use sea_orm::entity::prelude::*;

#[derive(Clone, Debug, PartialEq, Eq, DeriveEntityModel)]
#[sea_orm(table_name = "user_properties")]
pub struct Model {
    #[sea_orm(primary_key)]
    pub id: i64,
    pub user_id: i64,
    pub property_id: i64,
    /// `owner`, `tenant`, `guest`, `staff` or `remote_viewer`.
    pub residency_status: String,
    /// Alarm zones the user may arm and disarm: JSON list of zone names or ids.
    pub authorized_zones: Json,
    /// Cameras the user may see: JSON list of zone names or camera ids; None for all cameras
    /// of the property.
    pub camera_scope: Option<Json>,
    /// When the user has access: JSON list of `{"days": ["mon", ...], "start": "HH:MM",
    /// "end": "HH:MM"}` in the property's time zone; an empty list means at any time.
    pub access_windows: Json,
    /// A role that replaces the user's roles on this property; None to use their grants.
    pub role_override_id: Option<i64>,
    pub created_at: DateTimeUtc,
    pub updated_at: DateTimeUtc,
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
    #[sea_orm(
        belongs_to = "super::property::Entity",
        from = "Column::PropertyId",
        to = "super::property::Column::Id",
        on_delete = "Cascade"
    )]
    Property,
    #[sea_orm(
        belongs_to = "super::role::Entity",
        from = "Column::RoleOverrideId",
        to = "super::role::Column::Id",
        on_delete = "SetNull"
    )]
    RoleOverride,
}

impl Related<super::user::Entity> for Entity {
    fn to() -> RelationDef {
        Relation::User.def()
    }
}

impl Related<super::property::Entity> for Entity {
    fn to() -> RelationDef {
        Relation::Property.def()
    }
}

impl Related<super::role::Entity> for Entity {
    fn to() -> RelationDef {
        Relation::RoleOverride.def()
    }
}

#[derive(Copy, Clone, Debug, EnumIter, DeriveRelatedEntity)]
pub enum RelatedEntity {
    #[sea_orm(entity = "super::user::Entity")]
    User,
    #[sea_orm(entity = "super::property::Entity")]
    Property,
    #[sea_orm(entity = "super::role::Entity")]
    Role,
}

impl ActiveModelBehavior for ActiveModel {}
