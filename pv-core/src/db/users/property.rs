//! `properties`: a site protected by the system (a house, a building, an office), to which
//! users are attached with a residency status and property-scoped roles.

use sea_orm::entity::prelude::*;

#[derive(Clone, Debug, PartialEq, Eq, DeriveEntityModel)]
#[sea_orm(table_name = "properties")]
pub struct Model {
    #[sea_orm(primary_key)]
    pub id: i64,
    pub name: String,
    /// Postal address, free text.
    pub address: Option<String>,
    pub zip_code: Option<String>,
    /// IANA time zone name of the site, used for access windows and schedules.
    pub timezone: String,
    pub description: Option<String>,
    /// Free-form JSON for integrations (monitoring account numbers, geolocation, ...).
    pub metadata: Option<Json>,
    pub created_at: DateTimeUtc,
    pub updated_at: DateTimeUtc,
}

#[derive(Copy, Clone, Debug, EnumIter, DeriveRelation)]
pub enum Relation {
    #[sea_orm(has_many = "super::user_property::Entity")]
    UserProperty,
    #[sea_orm(has_many = "super::user_role::Entity")]
    UserRole,
}

impl Related<super::user_property::Entity> for Entity {
    fn to() -> RelationDef {
        Relation::UserProperty.def()
    }
}

impl Related<super::user_role::Entity> for Entity {
    fn to() -> RelationDef {
        Relation::UserRole.def()
    }
}

#[derive(Copy, Clone, Debug, EnumIter, DeriveRelatedEntity)]
pub enum RelatedEntity {
    #[sea_orm(entity = "super::user_property::Entity")]
    UserProperty,
    #[sea_orm(entity = "super::user_role::Entity")]
    UserRole,
}

impl ActiveModelBehavior for ActiveModel {}
