//! `storage_modules`: a configured instance of a storage provider (an S3 bucket, a NAS share…)
//! that segments are uploaded to.

use sea_orm::entity::prelude::*;

#[derive(Clone, Debug, PartialEq, Eq, DeriveEntityModel)]
#[sea_orm(table_name = "storage_modules")]
pub struct Model {
    #[sea_orm(primary_key)]
    pub id: i64,
    /// The provider's `storage_providers.key` (`s3`, `webdav`, …), by value.
    pub provider_key: String,
    /// Unique display name.
    #[sea_orm(unique)]
    pub name: String,
    pub enabled: bool,
    /// Non-secret configuration fields, as described by the provider's definition.
    pub config: Json,
    /// Secret configuration fields (keys, passwords) as encrypted JSON. Never exposed by the API.
    #[seaography(ignore)]
    pub secrets: Option<String>,
    /// Lower is tried first.
    pub priority: i32,
    /// Free-form labels (a JSON list of strings).
    pub tags: Option<Json>,
    /// Remote object key template; placeholders `{camera}`, `{year}`, `{month}`, `{day}`,
    /// `{segment}`.
    pub key_template: String,
    /// Delete remote copies older than this many days; None: keep forever.
    pub retention_days: Option<i32>,
    /// Multipart / chunked upload part size in bytes; None: the provider's default.
    pub chunk_size_bytes: Option<i64>,
    /// Uploads to this module running at once.
    pub parallel_uploads: i32,
    /// Upload bandwidth cap in bytes per second; None: unlimited.
    pub bandwidth_limit_bytes_per_second: Option<i64>,
    /// Only read from (restore, browse), never written to.
    pub read_only: bool,
    /// When the last connection test succeeded.
    pub last_test_ok_at: Option<DateTimeUtc>,
    /// The error of the last failed connection test.
    pub last_test_error: Option<String>,
    /// When the last connection test ran (passed when equal to `last_test_ok_at`).
    pub last_test_at: Option<DateTimeUtc>,
    /// The proof of the passing test of the saved configuration and secrets. Never exposed by
    /// the API.
    #[seaography(ignore)]
    pub proof: Option<String>,
    /// Segments are encrypted on the client side (AES-256-GCM) before upload.
    pub encrypted: bool,
    /// Draining: no new uploads are queued for it; it is disabled once its queue is empty.
    pub draining: bool,
    /// When the last upload finished (either way).
    pub last_write_at: Option<DateTimeUtc>,
    /// When the last upload succeeded.
    pub last_ok_at: Option<DateTimeUtc>,
    /// When the last upload failed.
    pub last_error_at: Option<DateTimeUtc>,
    /// The error of the last failed upload.
    pub last_error: Option<String>,
    pub created_at: DateTimeUtc,
    pub updated_at: DateTimeUtc,
}

#[derive(Copy, Clone, Debug, EnumIter, DeriveRelation)]
pub enum Relation {
    #[sea_orm(has_many = "super::storage_module_write_stat::Entity")]
    StorageModuleWriteStat,
    #[sea_orm(has_many = "super::storage_module_health_check::Entity")]
    StorageModuleHealthCheck,
    #[sea_orm(has_many = "super::storage_module_log::Entity")]
    StorageModuleLog,
    #[sea_orm(has_many = "super::camera_storage_target::Entity")]
    CameraStorageTarget,
    #[sea_orm(has_many = "super::upload_queue::Entity")]
    UploadQueue,
}

impl Related<super::storage_module_write_stat::Entity> for Entity {
    fn to() -> RelationDef {
        Relation::StorageModuleWriteStat.def()
    }
}

impl Related<super::storage_module_health_check::Entity> for Entity {
    fn to() -> RelationDef {
        Relation::StorageModuleHealthCheck.def()
    }
}

impl Related<super::storage_module_log::Entity> for Entity {
    fn to() -> RelationDef {
        Relation::StorageModuleLog.def()
    }
}

impl Related<super::camera_storage_target::Entity> for Entity {
    fn to() -> RelationDef {
        Relation::CameraStorageTarget.def()
    }
}

impl Related<super::upload_queue::Entity> for Entity {
    fn to() -> RelationDef {
        Relation::UploadQueue.def()
    }
}

#[derive(Copy, Clone, Debug, EnumIter, DeriveRelatedEntity)]
pub enum RelatedEntity {
    #[sea_orm(entity = "super::storage_module_write_stat::Entity")]
    StorageModuleWriteStat,
    #[sea_orm(entity = "super::storage_module_health_check::Entity")]
    StorageModuleHealthCheck,
    #[sea_orm(entity = "super::storage_module_log::Entity")]
    StorageModuleLog,
    #[sea_orm(entity = "super::camera_storage_target::Entity")]
    CameraStorageTarget,
    #[sea_orm(entity = "super::upload_queue::Entity")]
    UploadQueue,
}

impl ActiveModelBehavior for ActiveModel {}
