//! `storage_providers`: an installed storage provider module (S3, Google Drive, SMB, …) and its
//! definition; `storage_modules` are configured instances of one.

use sea_orm::entity::prelude::*;

#[derive(Clone, Debug, PartialEq, Eq, DeriveEntityModel)]
#[sea_orm(table_name = "storage_providers")]
pub struct Model {
    #[sea_orm(primary_key)]
    pub id: i64,
    /// Unique short identifier (`s3`, `gdrive`, `smb`…), referenced by
    /// `storage_modules.provider_key`.
    #[sea_orm(unique)]
    pub key: String,
    /// Display name.
    pub name: String,
    /// `object`, `cloud_drive`, `network` or `local`.
    pub category: String,
    /// The module's `definition.json` (configuration fields, capabilities, version).
    pub definition: Json,
    pub installed_at: DateTimeUtc,
    pub updated_at: DateTimeUtc,
    /// `builtin` (embedded in the binary) or `dropped` (a folder in `DATA_DIR/modules/`).
    pub source: String,
}

#[derive(Copy, Clone, Debug, EnumIter, DeriveRelation)]
pub enum Relation {}

#[derive(Copy, Clone, Debug, EnumIter, DeriveRelatedEntity)]
pub enum RelatedEntity {}

impl ActiveModelBehavior for ActiveModel {}
