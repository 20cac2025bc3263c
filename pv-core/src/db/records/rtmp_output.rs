//! `rtmp_outputs`: a restream of a camera to an RTMP server (YouTube, Twitch, a media server).

use sea_orm::entity::prelude::*;

#[derive(Clone, Debug, PartialEq, Eq, DeriveEntityModel)]
#[sea_orm(table_name = "rtmp_outputs")]
pub struct Model {
    #[sea_orm(primary_key)]
    pub id: i64,
    pub camera_id: i64,
    pub name: String,
    /// `rtmp(s)://…` target including the stream key. Never exposed by the API.
    #[seaography(ignore)]
    pub target_url: String,
    pub enabled: bool,
    /// `idle`, `pushing`, `reconnecting` or `failed`.
    pub status: String,
    pub last_error: Option<String>,
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
