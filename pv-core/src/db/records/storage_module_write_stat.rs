//! `storage_module_write_stats`: one write (upload) to a storage module, for throughput and
//! error-rate statistics.

use sea_orm::entity::prelude::*;

#[derive(Clone, Debug, PartialEq, Eq, DeriveEntityModel)]
#[sea_orm(table_name = "storage_module_write_stats")]
pub struct Model {
    #[sea_orm(primary_key)]
    pub id: i64,
    pub module_id: i64,
    /// When the write finished.
    pub at: DateTimeUtc,
    pub ok: bool,
    /// Bytes written.
    pub size_bytes: i64,
    /// Time the write took, in milliseconds.
    pub duration_ms: i64,
    pub error: Option<String>,
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
