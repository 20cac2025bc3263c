//! `notification_settings`: which alerts a user receives and how (one row per user).

use sea_orm::entity::prelude::*;

#[derive(Clone, Debug, PartialEq, Eq, DeriveEntityModel)]
#[sea_orm(table_name = "notification_settings")]
pub struct Model {
    #[sea_orm(primary_key)]
    pub id: i64,
    #[sea_orm(unique)]
    pub user_id: i64,
    /// Intrusion alarms.
    pub intrusion: bool,
    /// Fire and smoke alarms.
    pub fire: bool,
    /// System faults (camera offline, storage full, power loss).
    pub system_faults: bool,
    /// Motion detected on cameras.
    pub camera_motion: bool,
    /// Door and window contacts opening.
    pub door_window: bool,
    /// Environmental sensors (water, temperature, CO).
    pub environmental: bool,
    /// Position in the escalation chain: tier 1 is notified first, higher tiers when earlier
    /// tiers do not acknowledge.
    pub escalation_tier: i32,
    /// Do not notify outside the user's access windows of the property.
    pub suppress_outside_access_windows: bool,
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
