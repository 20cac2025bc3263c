//! `motion_zones`: a polygon of a camera's frame where motion is detected, or masked out.

use sea_orm::entity::prelude::*;

#[derive(Clone, Debug, PartialEq, DeriveEntityModel)]
#[sea_orm(table_name = "motion_zones")]
pub struct Model {
    #[sea_orm(primary_key)]
    pub id: i64,
    pub camera_id: i64,
    pub name: String,
    /// The polygon: a JSON list of `[x, y]` points normalised to 0..1 of the frame.
    pub polygon: Json,
    /// Detection sensitivity in 0..1 (1: most sensitive).
    pub sensitivity: f64,
    /// A mask: motion inside this area is ignored.
    pub is_mask: bool,
    pub enabled: bool,
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
    #[sea_orm(has_many = "super::motion_event::Entity")]
    MotionEvent,
}

impl Related<super::camera::Entity> for Entity {
    fn to() -> RelationDef {
        Relation::Camera.def()
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
    #[sea_orm(entity = "super::motion_event::Entity")]
    MotionEvent,
}

impl ActiveModelBehavior for ActiveModel {}
