//! `upload_queue`: one pending, running or finished upload of a segment to a storage module.

use sea_orm::entity::prelude::*;

#[derive(Clone, Debug, PartialEq, Eq, DeriveEntityModel)]
#[sea_orm(table_name = "upload_queue")]
pub struct Model {
    #[sea_orm(primary_key)]
    pub id: i64,
    pub segment_id: i64,
    /// The module this job is for: the first of its chain while queued, the module that was
    /// tried last after a failure, the module that holds the copy once `done`.
    pub module_id: i64,
    /// `pending` (a failed attempt stays pending with `last_error` and a later
    /// `next_attempt_at`), `uploading` (leased until `lease_until`), `done` (verified remote
    /// copy), `skipped` (not uploaded: no motion, or the file was gone) or `expired` (the
    /// remote copy was removed by remote retention).
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
    /// The failover chain: a JSON array of module ids in the order they are tried.
    pub chain: Option<Json>,
    /// While `uploading`: the claim is void after this time (the worker died).
    pub lease_until: Option<DateTimeUtc>,
    /// Verified size of the remote object in bytes, once done.
    pub size_bytes: Option<i64>,
    /// Checksum of the remote object as the provider reports it (e.g. an MD5 ETag), once done.
    pub checksum: Option<String>,
    /// The segment's camera (0 for rows queued before this column existed).
    pub camera_id: i64,
    /// `all` or `motion` (uploaded only if motion happened within `padding_seconds` of the
    /// segment).
    pub mode: String,
    /// Motion padding in seconds (mode `motion`).
    pub padding_seconds: i32,
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
