//! `storage_module_health_checks`: the result of one periodic health check of a storage module.

use sea_orm::entity::prelude::*;

#[derive(Clone, Debug, PartialEq, Eq, DeriveEntityModel)]
#[sea_orm(table_name = "storage_module_health_checks")]
pub struct Model {
    #[sea_orm(primary_key)]
    pub id: i64,
    pub module_id: i64,
    pub checked_at: DateTimeUtc,
    /// `healthy`, `degraded`, `failing` or `disabled`.
    pub status: String,
    /// Round-trip time of the check in milliseconds; None: no answer.
    pub latency_ms: Option<i64>,
    pub message: Option<String>,
}

#[derive(Copy, Clone, Debug, EnumIter, DeriveRelation)]
pub enum Relation {
    #[sea_orm(
        belongs_to = "super::storage_module::Entity",
        from = "Column::ModuleId",
        to = "super::storage_module::Column::Id",
        on_delete = "Cascade"
    )]
    StorageModule,
}

impl Related<super::storage_module::Entity> for Entity {
    fn to() -> RelationDef {
        Relation::StorageModule.def()
    }
}

#[derive(Copy, Clone, Debug, EnumIter, DeriveRelatedEntity)]
pub enum RelatedEntity {
    #[sea_orm(entity = "super::storage_module::Entity")]
    StorageModule,
}

impl ActiveModelBehavior for ActiveModel {}
