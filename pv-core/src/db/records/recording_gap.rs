//! `recording_gaps`: a period in which a camera should have recorded but did not (stream lost,
//! disk full, crash).

use sea_orm::entity::prelude::*;

#[derive(Clone, Debug, PartialEq, Eq, DeriveEntityModel)]
#[sea_orm(table_name = "recording_gaps")]
pub struct Model {
    #[sea_orm(primary_key)]
    pub id: i64,
    pub camera_id: i64,
    pub started_at: DateTimeUtc,
    /// None while the gap is still open.
    pub ended_at: Option<DateTimeUtc>,
    /// What caused the gap.
    pub reason: String,
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
