//! `camera_storage_targets`: a storage module a camera's segments are uploaded to.

use sea_orm::entity::prelude::*;

#[derive(Clone, Debug, PartialEq, Eq, DeriveEntityModel)]
#[sea_orm(table_name = "camera_storage_targets")]
pub struct Model {
    #[sea_orm(primary_key)]
    pub id: i64,
    pub camera_id: i64,
    pub module_id: i64,
    /// Lower is uploaded first.
    pub priority: i32,
    pub enabled: bool,
    /// `all`: upload every segment; `motion`: only segments with motion within
    /// `padding_seconds` before or after them.
    pub mode: String,
    /// Motion padding in seconds (mode `motion`).
    pub padding_seconds: i32,
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
        belongs_to = "super::storage_module::Entity",
        from = "Column::ModuleId",
        to = "super::storage_module::Column::Id",
        on_delete = "Cascade"
    )]
    StorageModule,
}

impl Related<super::camera::Entity> for Entity {
    fn to() -> RelationDef {
        Relation::Camera.def()
    }
}

impl Related<super::storage_module::Entity> for Entity {
    fn to() -> RelationDef {
        Relation::StorageModule.def()
    }
}

#[derive(Copy, Clone, Debug, EnumIter, DeriveRelatedEntity)]
pub enum RelatedEntity {
    #[sea_orm(entity = "super::camera::Entity")]
    Camera,
    #[sea_orm(entity = "super::storage_module::Entity")]
    StorageModule,
}

impl ActiveModelBehavior for ActiveModel {}
