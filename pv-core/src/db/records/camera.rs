//! `cameras`: one IP camera: where its streams are, how it is recorded, what was last learned
//! about it (codecs, resolution, status).

use sea_orm::entity::prelude::*;

#[derive(Clone, Debug, PartialEq, DeriveEntityModel)]
#[sea_orm(table_name = "cameras")]
pub struct Model {
    #[sea_orm(primary_key)]
    pub id: i64,
    /// Unique display name.
    #[sea_orm(unique)]
    pub name: String,
    /// Main (recorded) stream URL, `rtsp://…`, without credentials.
    pub main_url: String,
    /// Lower-resolution sub stream URL (live grid, motion detection), if any.
    pub sub_url: Option<String>,
    /// Stream login.
    pub username: Option<String>,
    /// Stream password, encrypted at rest. Never exposed by the API.
    #[seaography(ignore)]
    pub password: Option<String>,
    pub enabled: bool,
    /// Property in the users database this camera belongs to (by value, no foreign key).
    pub property_id: Option<i64>,
    /// Free-form zone within the property (`front`, `garage`, …).
    pub zone: Option<String>,
    /// IANA time zone (`Europe/Paris`); None: the property's.
    pub timezone: Option<String>,
    /// `continuous`, `motion` or `off` (when no schedule applies).
    pub recording_mode: String,
    /// RTSP transport: `tcp` or `udp`.
    pub transport: String,
    /// Segment length in seconds; None: the global default.
    pub segment_seconds: Option<i32>,
    /// Seconds kept before a motion start in `motion` mode.
    pub pre_roll_seconds: i32,
    /// Seconds kept after a motion end in `motion` mode.
    pub post_roll_seconds: i32,
    /// Delete local segments older than this many days; None: global policy.
    pub retention_days: Option<i32>,
    /// Keep at most this many bytes of local segments; None: global policy.
    pub retention_max_bytes: Option<i64>,
    /// Last MAC address seen for the camera's IP (`aa:bb:cc:dd:ee:ff`), to detect swaps.
    pub mac_address: Option<String>,
    /// Last known IP address.
    pub ip_address: Option<String>,
    /// Directory (relative to the data dir) the recorder writes this camera's segments into;
    /// None: derived from the id.
    pub ingest_dir: Option<String>,
    /// Probed video codec of the main stream (`h264`, `h265`, …).
    pub video_codec: Option<String>,
    /// Probed audio codec of the main stream (`aac`, `pcma`, …); None: no audio.
    pub audio_codec: Option<String>,
    /// Probed main stream width in pixels.
    pub width: Option<i32>,
    /// Probed main stream height in pixels.
    pub height: Option<i32>,
    /// Probed main stream frame rate (frames per second).
    pub fps: Option<f64>,
    /// `new`, `streaming`, `reconnecting`, `failed` or `disabled`.
    pub status: String,
    /// Human-readable reason for the current status (last error).
    pub status_reason: Option<String>,
    /// Recorder used for this camera: `native`, `gstreamer` or `ffmpeg`; None: the default (native, then the others).
    pub recorder_backend: Option<String>,
    /// Last time a frame was received.
    pub last_seen_at: Option<DateTimeUtc>,
    pub created_at: DateTimeUtc,
    pub updated_at: DateTimeUtc,
}

#[derive(Copy, Clone, Debug, EnumIter, DeriveRelation)]
pub enum Relation {
    #[sea_orm(has_many = "super::camera_mac_change::Entity")]
    CameraMacChange,
    #[sea_orm(has_many = "super::recording_schedule::Entity")]
    RecordingSchedule,
    #[sea_orm(has_many = "super::segment::Entity")]
    Segment,
    #[sea_orm(has_many = "super::recording_gap::Entity")]
    RecordingGap,
    #[sea_orm(has_many = "super::motion_zone::Entity")]
    MotionZone,
    #[sea_orm(has_many = "super::motion_event::Entity")]
    MotionEvent,
    #[sea_orm(has_many = "super::rtmp_output::Entity")]
    RtmpOutput,
    #[sea_orm(has_many = "super::camera_storage_target::Entity")]
    CameraStorageTarget,
}

impl Related<super::camera_mac_change::Entity> for Entity {
    fn to() -> RelationDef {
        Relation::CameraMacChange.def()
    }
}

impl Related<super::recording_schedule::Entity> for Entity {
    fn to() -> RelationDef {
        Relation::RecordingSchedule.def()
    }
}

impl Related<super::segment::Entity> for Entity {
    fn to() -> RelationDef {
        Relation::Segment.def()
    }
}

impl Related<super::recording_gap::Entity> for Entity {
    fn to() -> RelationDef {
        Relation::RecordingGap.def()
    }
}

impl Related<super::motion_zone::Entity> for Entity {
    fn to() -> RelationDef {
        Relation::MotionZone.def()
    }
}

impl Related<super::motion_event::Entity> for Entity {
    fn to() -> RelationDef {
        Relation::MotionEvent.def()
    }
}

impl Related<super::rtmp_output::Entity> for Entity {
    fn to() -> RelationDef {
        Relation::RtmpOutput.def()
    }
}

impl Related<super::camera_storage_target::Entity> for Entity {
    fn to() -> RelationDef {
        Relation::CameraStorageTarget.def()
    }
}

#[derive(Copy, Clone, Debug, EnumIter, DeriveRelatedEntity)]
pub enum RelatedEntity {
    #[sea_orm(entity = "super::camera_mac_change::Entity")]
    CameraMacChange,
    #[sea_orm(entity = "super::recording_schedule::Entity")]
    RecordingSchedule,
    #[sea_orm(entity = "super::segment::Entity")]
    Segment,
    #[sea_orm(entity = "super::recording_gap::Entity")]
    RecordingGap,
    #[sea_orm(entity = "super::motion_zone::Entity")]
    MotionZone,
    #[sea_orm(entity = "super::motion_event::Entity")]
    MotionEvent,
    #[sea_orm(entity = "super::rtmp_output::Entity")]
    RtmpOutput,
    #[sea_orm(entity = "super::camera_storage_target::Entity")]
    CameraStorageTarget,
}

impl ActiveModelBehavior for ActiveModel {}
