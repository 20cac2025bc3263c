//! `motion_events`: a period of detected motion on a camera, in a zone or the whole frame.

use sea_orm::entity::prelude::*;

#[derive(Clone, Debug, PartialEq, DeriveEntityModel)]
#[sea_orm(table_name = "motion_events")]
pub struct Model {
    #[sea_orm(primary_key)]
    pub id: i64,
    pub camera_id: i64,
    /// The zone that triggered; None: the whole frame, or the zone was deleted.
    pub zone_id: Option<i64>,
    pub started_at: DateTimeUtc,
    /// None while motion is ongoing.
    pub ended_at: Option<DateTimeUtc>,
    /// Highest motion score seen during the event, in 0..1.
    pub peak_score: f64,
    /// The segment the event started in; None: not recorded, or the segment was deleted.
    pub segment_id: Option<i64>,
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
    #[sea_orm(
        belongs_to = "super::motion_zone::Entity",
        from = "Column::ZoneId",
        to = "super::motion_zone::Column::Id",
        on_delete = "SetNull"
    )]
    MotionZone,
    #[sea_orm(
        belongs_to = "super::segment::Entity",
        from = "Column::SegmentId",
        to = "super::segment::Column::Id",
        on_delete = "SetNull"
    )]
    Segment,
}

impl Related<super::camera::Entity> for Entity {
    fn to() -> RelationDef {
        Relation::Camera.def()
    }
}

impl Related<super::motion_zone::Entity> for Entity {
    fn to() -> RelationDef {
        Relation::MotionZone.def()
    }
}

impl Related<super::segment::Entity> for Entity {
    fn to() -> RelationDef {
        Relation::Segment.def()
    }
}

#[derive(Copy, Clone, Debug, EnumIter, DeriveRelatedEntity)]
pub enum RelatedEntity {
    #[sea_orm(entity = "super::camera::Entity")]
    Camera,
    #[sea_orm(entity = "super::motion_zone::Entity")]
    MotionZone,
    #[sea_orm(entity = "super::segment::Entity")]
    Segment,
}

impl ActiveModelBehavior for ActiveModel {}
