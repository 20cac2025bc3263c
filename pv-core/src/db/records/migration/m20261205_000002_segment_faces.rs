//! `segments.has_faces` (issue 12): the records database learns only that a segment has faces
//! in it, never whose (that stays in the faces database).

use sea_orm_migration::prelude::*;
use sea_orm_migration::schema::*;

use crate::db::schema_util::{add, c, drop_col};

#[derive(DeriveMigrationName)]
pub(crate) struct Migration;

#[async_trait::async_trait]
impl MigrationTrait for Migration {
    async fn up(&self, m: &SchemaManager) -> Result<(), DbErr> {
        add(m, "segments", boolean(c("has_faces")).default(false).to_owned()).await
    }

    async fn down(&self, m: &SchemaManager) -> Result<(), DbErr> {
        drop_col(m, "segments", "has_faces").await
    }
}
