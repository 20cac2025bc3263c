//! `country_policies`: the GeoIP country filter applied to clients (a single row).

use sea_orm::entity::prelude::*;

#[derive(Clone, Debug, PartialEq, Eq, DeriveEntityModel)]
#[sea_orm(table_name = "country_policies")]
pub struct Model {
    #[sea_orm(primary_key)]
    pub id: i64,
    /// `off` (no filtering), `allow` (only the listed countries) or `deny` (all but the listed
    /// countries).
    pub mode: String,
    /// JSON list of ISO 3166-1 alpha-2 country codes, e.g. `["FR", "BE"]`.
    pub countries: Json,
    /// Path of the MaxMind-format country database; None for the default location.
    pub mmdb_path: Option<String>,
    pub updated_at: DateTimeUtc,
    /// The administrator who last changed it (by value).
    pub updated_by: Option<i64>,
}

#[derive(Copy, Clone, Debug, EnumIter, DeriveRelation)]
pub enum Relation {}

#[derive(Copy, Clone, Debug, EnumIter, DeriveRelatedEntity)]
pub enum RelatedEntity {}

impl ActiveModelBehavior for ActiveModel {}
