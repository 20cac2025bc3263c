//! `storage_module_logs`: a log line of a storage module (authentication, uploads, retries,
//! clean-up), shown in its activity view.

use sea_orm::entity::prelude::*;

#[derive(Clone, Debug, PartialEq, Eq, DeriveEntityModel)]
#[sea_orm(table_name = "storage_module_logs")]
pub struct Model {
    #[sea_orm(primary_key)]
    pub id: i64,
    pub module_id: i64,
    pub at: DateTimeUtc,
    /// `debug`, `info`, `warn` or `error`.
    pub level: String,
    /// The upload stream / transfer the line belongs to, to group lines of one transfer.
    pub stream_id: Option<String>,
    /// `auth`, `upload_start`, `upload_done`, `retry`, `timeout`, `permission` or `cleanup`.
    pub event: String,
    pub message: String,
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
