//! The first `faces` schema.

use sea_orm_migration::prelude::*;
use sea_orm_migration::schema::*;

use crate::db::schema_util::{c, fk_cascade, fk_set_null, index, ts, ts_null};

#[derive(DeriveMigrationName)]
pub(crate) struct Migration;

#[async_trait::async_trait]
impl MigrationTrait for Migration {
    async fn up(&self, m: &SchemaManager) -> Result<(), DbErr> {
        let b = m.get_database_backend();

        m.create_table(
            Table::create()
                .table(c("face_identities"))
                .if_not_exists()
                .col(big_pk_auto(c("id")))
                .col(big_integer_null(c("user_id")))
                .col(string(c("display_name")))
                .col(text_null(c("notes")))
                .col(string_len(c("kind"), 32).default("person"))
                .col(ts(b, c("created_at")))
                .col(ts(b, c("updated_at")))
                .to_owned(),
        )
        .await?;
        m.create_index(index("face_identities", &["user_id"], false)).await?;

        m.create_table(
            Table::create()
                .table(c("face_embeddings"))
                .if_not_exists()
                .col(big_pk_auto(c("id")))
                .col(big_integer(c("identity_id")))
                .col(string_len(c("model"), 128))
                .col(integer(c("dimensions")))
                .col(blob(c("vector")))
                .col(boolean(c("encrypted")).default(false))
                .col(string_len(c("source"), 32))
                .col(string_null(c("source_ref")))
                .col(double(c("quality")))
                .col(boolean(c("is_negative")).default(false))
                .col(ts(b, c("created_at")))
                .foreign_key(&mut fk_cascade("face_embeddings", "identity_id", "face_identities"))
                .to_owned(),
        )
        .await?;
        m.create_index(index("face_embeddings", &["identity_id"], false)).await?;

        m.create_table(
            Table::create()
                .table(c("face_privacy_policies"))
                .if_not_exists()
                .col(big_pk_auto(c("id")))
                .col(big_integer_uniq(c("identity_id")))
                .col(boolean(c("opt_out_tagging")).default(false))
                .col(integer_null(c("retain_days")))
                .col(ts_null(b, c("deletion_requested_at")))
                .col(ts_null(b, c("deleted_at")))
                .col(ts(b, c("updated_at")))
                .foreign_key(&mut fk_cascade(
                    "face_privacy_policies",
                    "identity_id",
                    "face_identities",
                ))
                .to_owned(),
        )
        .await?;

        m.create_table(
            Table::create()
                .table(c("face_matches"))
                .if_not_exists()
                .col(big_pk_auto(c("id")))
                .col(big_integer_null(c("identity_id")))
                .col(big_integer(c("camera_id")))
                .col(big_integer_null(c("segment_id")))
                .col(ts(b, c("seen_at")))
                .col(double(c("distance")))
                .col(double(c("confidence")))
                .col(json(c("bbox")))
                .foreign_key(&mut fk_set_null("face_matches", "identity_id", "face_identities"))
                .to_owned(),
        )
        .await?;
        m.create_index(index("face_matches", &["camera_id", "seen_at"], false)).await?;
        m.create_index(index("face_matches", &["identity_id", "seen_at"], false)).await?;
        Ok(())
    }

    async fn down(&self, m: &SchemaManager) -> Result<(), DbErr> {
        for t in ["face_matches", "face_privacy_policies", "face_embeddings", "face_identities"] {
            m.drop_table(Table::drop().table(c(t)).if_exists().to_owned()).await?;
        }
        Ok(())
    }
}
