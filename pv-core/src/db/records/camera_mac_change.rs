//! `camera_mac_changes`: a change of the MAC address answering at a camera's IP, which may mean
//! the camera was swapped for another device.

use sea_orm::entity::prelude::*;

#[derive(Clone, Debug, PartialEq, Eq, DeriveEntityModel)]
#[sea_orm(table_name = "camera_mac_changes")]
pub struct Model {
    #[sea_orm(primary_key)]
    pub id: i64,
    pub camera_id: i64,
    /// The MAC address known before (None: none was known).
    pub old_mac: Option<String>,
    /// The MAC address now observed.
    pub new_mac: String,
    pub observed_at: DateTimeUtc,
    /// Whether administrators were alerted about the change.
    pub alerted: bool,
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
