//! `upload_queue`: one pending, running or finished upload of a segment to a storage module.

use sea_orm::entity::prelude::*;

#[derive(Clone, Debug, PartialEq, Eq, DeriveEntityModel)]
#[sea_orm(table_name = "upload_queue")]
pub struct Model {
    #[sea_orm(primary_key)]
    pub id: i64,
    pub segment_id: i64,
    pub module_id: i64,
    /// `pending`, `uploading`, `done` or `failed`.
    pub status: String,
    /// Attempts made so far.
    pub attempts: i32,
    /// Not to be tried before this time (retry back-off).
    pub next_attempt_at: DateTimeUtc,
    pub last_error: Option<String>,
    /// The object key in the module, once uploaded.
    pub remote_key: Option<String>,
    /// Lower is uploaded first.
    pub priority: i32,
    pub created_at: DateTimeUtc,
    pub updated_at: DateTimeUtc,
    pub completed_at: Option<DateTimeUtc>,
}

#[derive(Copy, Clone, Debug, EnumIter, DeriveRelation)]
pub enum Relation {
    #[sea_orm(
        belongs_to = "super::segment::Entity",
        from = "Column::SegmentId",
        to = "super::segment::Column::Id",
        on_delete = "Cascade"
    )]
    Segment,
    #[sea_orm(
        belongs_to = "super::storage_module::Entity",
        from = "Column::ModuleId",
        to = "super::storage_module::Column::Id",
        on_delete = "Cascade"
    )]
    StorageModule,
}

impl Related<super::segment::Entity> for Entity {
    fn to() -> RelationDef {
        Relation::Segment.def()
    }
}

impl Related<super::storage_module::Entity> for Entity {
    fn to() -> RelationDef {
        Relation::StorageModule.def()
    }
}

#[derive(Copy, Clone, Debug, EnumIter, DeriveRelatedEntity)]
pub enum RelatedEntity {
    #[sea_orm(entity = "super::segment::Entity")]
    Segment,
    #[sea_orm(entity = "super::storage_module::Entity")]
    StorageModule,
}

impl ActiveModelBehavior for ActiveModel {}
