//! Storage modules, the durable upload queue and storage tiers (issue 11).
//!
//! - `storage_modules`: the test proof of the saved values, client-side encryption, draining,
//!   the time of the last connection test and the last write / success / error.
//! - `camera_storage_targets`: the upload `mode` (`all` or `motion`) and the motion padding.
//! - `upload_queue`: the failover `chain` (a JSON array of module ids in the order they are
//!   tried), the upload lease, the verified size and checksum, the camera, and the job's tier
//!   (`mode` and `padding_seconds`, copied from the targets when the job was queued).
//! - `segments`: `local_deleted_at`, set when local retention removed the file but remote
//!   copies remain.
//! - `storage_providers`: where a provider comes from (`builtin` or `dropped`).
//!
//! SQLite alters one column per statement, so every column is its own `ALTER TABLE`.

use sea_orm_migration::prelude::*;
use sea_orm_migration::schema::*;

use crate::db::schema_util::{add, c, drop_col, index, ts_null};

#[derive(DeriveMigrationName)]
pub(crate) struct Migration;

/// The added columns, by table, in the order they are added (dropped in reverse).
const ADDED: [(&str, &[&str]); 5] = [
    (
        "storage_modules",
        &[
            "proof",
            "encrypted",
            "draining",
            "last_test_at",
            "last_write_at",
            "last_ok_at",
            "last_error_at",
            "last_error",
        ],
    ),
    ("camera_storage_targets", &["mode", "padding_seconds"]),
    (
        "upload_queue",
        &["chain", "lease_until", "size_bytes", "checksum", "camera_id", "mode", "padding_seconds"],
    ),
    ("segments", &["local_deleted_at"]),
    ("storage_providers", &["source"]),
];

#[async_trait::async_trait]
impl MigrationTrait for Migration {
    async fn up(&self, m: &SchemaManager) -> Result<(), DbErr> {
        let b = m.get_database_backend();

        let t = "storage_modules";
        add(m, t, text_null(c("proof"))).await?;
        add(m, t, boolean(c("encrypted")).default(false).to_owned()).await?;
        add(m, t, boolean(c("draining")).default(false).to_owned()).await?;
        add(m, t, ts_null(b, c("last_test_at"))).await?;
        add(m, t, ts_null(b, c("last_write_at"))).await?;
        add(m, t, ts_null(b, c("last_ok_at"))).await?;
        add(m, t, ts_null(b, c("last_error_at"))).await?;
        add(m, t, text_null(c("last_error"))).await?;

        let t = "camera_storage_targets";
        add(m, t, string_len(c("mode"), 16).default("all").to_owned()).await?;
        add(m, t, integer(c("padding_seconds")).default(10).to_owned()).await?;

        let t = "upload_queue";
        add(m, t, json_null(c("chain"))).await?;
        add(m, t, ts_null(b, c("lease_until"))).await?;
        add(m, t, big_integer_null(c("size_bytes"))).await?;
        add(m, t, string_len_null(c("checksum"), 128)).await?;
        add(m, t, big_integer(c("camera_id")).default(0).to_owned()).await?;
        add(m, t, string_len(c("mode"), 16).default("all").to_owned()).await?;
        add(m, t, integer(c("padding_seconds")).default(0).to_owned()).await?;
        m.create_index(index("upload_queue", &["module_id", "status"], false)).await?;

        add(m, "segments", ts_null(b, c("local_deleted_at"))).await?;

        add(m, "storage_providers", string_len(c("source"), 32).default("builtin").to_owned())
            .await?;
        Ok(())
    }

    async fn down(&self, m: &SchemaManager) -> Result<(), DbErr> {
        m.drop_index(
            Index::drop()
                .name("idx_upload_queue_module_id_status")
                .table(c("upload_queue"))
                .to_owned(),
        )
        .await?;
        for (table, cols) in ADDED.iter().rev() {
            for col in cols.iter().rev() {
                drop_col(m, table, col).await?;
            }
        }
        Ok(())
    }
}
