//! `recording_schedules`: a weekly time window in which a camera records in a given mode. When
//! windows overlap the highest `priority` wins; outside all windows `cameras.recording_mode`
//! applies.

use sea_orm::entity::prelude::*;

#[derive(Clone, Debug, PartialEq, Eq, DeriveEntityModel)]
#[sea_orm(table_name = "recording_schedules")]
pub struct Model {
    #[sea_orm(primary_key)]
    pub id: i64,
    pub camera_id: i64,
    /// `continuous`, `motion` or `off`.
    pub mode: String,
    /// Days the window applies to, a bitmask: Monday = 1, Tuesday = 2, … Sunday = 64.
    pub days_of_week: i32,
    /// Window start, minutes after local midnight (0..1439).
    pub start_minute: i32,
    /// Window end, minutes after local midnight (1..=1440, 1440 = midnight at the end of the day); a
    /// window that starts and ends on the same minute is invalid (see `pv_media::schedule`); a
    /// window whose end is before its start
    /// runs past midnight.
    pub end_minute: i32,
    /// IANA time zone the minutes are in; None: the camera's.
    pub timezone: Option<String>,
    pub enabled: bool,
    /// Higher wins when windows overlap.
    pub priority: i32,
    pub created_at: DateTimeUtc,
    pub updated_at: DateTimeUtc,
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
}

impl Related<super::camera::Entity> for Entity {
    fn to() -> RelationDef {
        Relation::Camera.def()
    }
}

#[derive(Copy, Clone, Debug, EnumIter, DeriveRelatedEntity)]
pub enum RelatedEntity {
    #[sea_orm(entity = "super::camera::Entity")]
    Camera,
}

impl ActiveModelBehavior for ActiveModel {}
