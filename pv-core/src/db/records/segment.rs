//! `segments`: one recorded media file of a camera. A row exists only once the file was fully
//! written and fsynced (file, then directory, then row).

use sea_orm::entity::prelude::*;

#[derive(Clone, Debug, PartialEq, Eq, DeriveEntityModel)]
#[sea_orm(table_name = "segments")]
pub struct Model {
    #[sea_orm(primary_key)]
    pub id: i64,
    pub camera_id: i64,
    /// Wall-clock time of the first frame.
    pub started_at: DateTimeUtc,
    /// Wall-clock time of the end of the last frame.
    pub ended_at: DateTimeUtc,
    /// Pipeline (media) timestamp of the first frame, in nanoseconds.
    pub media_start_ns: i64,
    /// Pipeline (media) timestamp of the end of the last frame, in nanoseconds.
    pub media_end_ns: i64,
    /// Media duration in milliseconds.
    pub duration_ms: i64,
    /// File size in bytes.
    pub size_bytes: i64,
    /// Video codec (`h264`, `h265`, …).
    pub video_codec: String,
    /// Audio codec; None: no audio track.
    pub audio_codec: Option<String>,
    /// Frame width in pixels.
    pub width: Option<i32>,
    /// Frame height in pixels.
    pub height: Option<i32>,
    /// Local file path, relative to the data dir.
    pub path: String,
    /// Key of the uploaded copy in the primary remote storage, once uploaded.
    pub storage_key: Option<String>,
    /// Motion was detected during the segment.
    pub motion: bool,
    /// Why the segment ended: `duration`, `eos`, `error`, `shutdown` or `recovered` (rebuilt
    /// from a file found at start-up).
    pub end_reason: String,
    /// Exempt from retention (kept until unprotected).
    pub protected: bool,
    pub created_at: DateTimeUtc,
    /// When local retention removed the file while remote copies remain (it then plays from
    /// a remote copy); None: the local file exists.
    pub local_deleted_at: Option<DateTimeUtc>,
    /// Faces were seen in this segment (who they were is only in the faces database).
    pub has_faces: bool,
}

#[derive(Copy, Clone, Debug, EnumIter, DeriveRelation)]
pub enum Relation {
    #[sea_orm(
        belongs_to = "super::camera::Entity",
        from = "Column::CameraId",
        to = "super::camera::Column::Id",
        on_delete = "Cascade"
    )]
    Camera,
    #[sea_orm(has_many = "super::upload_queue::Entity")]
    UploadQueue,
    #[sea_orm(has_many = "super::motion_event::Entity")]
    MotionEvent,
}

impl Related<super::camera::Entity> for Entity {
    fn to() -> RelationDef {
        Relation::Camera.def()
    }
}

impl Related<super::upload_queue::Entity> for Entity {
    fn to() -> RelationDef {
        Relation::UploadQueue.def()
    }
}

impl Related<super::motion_event::Entity> for Entity {
    fn to() -> RelationDef {
        Relation::MotionEvent.def()
    }
}

#[derive(Copy, Clone, Debug, EnumIter, DeriveRelatedEntity)]
pub enum RelatedEntity {
    #[sea_orm(entity = "super::camera::Entity")]
    Camera,
    #[sea_orm(entity = "super::upload_queue::Entity")]
    UploadQueue,
    #[sea_orm(entity = "super::motion_event::Entity")]
    MotionEvent,
}

impl ActiveModelBehavior for ActiveModel {}
