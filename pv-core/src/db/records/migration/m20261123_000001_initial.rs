//! The first `records` schema.

use sea_orm_migration::prelude::*;
use sea_orm_migration::schema::*;

use crate::db::schema_util::{c, fk_cascade, fk_set_null, index, ts, ts_null};

/// Tables in creation (dependency) order; dropped in reverse.
const TABLES: [&str; 15] = [
    "cameras",
    "camera_mac_changes",
    "recording_schedules",
    "segments",
    "recording_gaps",
    "motion_zones",
    "motion_events",
    "rtmp_outputs",
    "storage_providers",
    "storage_modules",
    "storage_module_write_stats",
    "storage_module_health_checks",
    "storage_module_logs",
    "camera_storage_targets",
    "upload_queue",
];

/// Default remote object key template of a storage module.
const DEFAULT_KEY_TEMPLATE: &str = "{camera}/{year}/{month}/{day}/{segment}.mp4";

#[derive(DeriveMigrationName)]
pub(crate) struct Migration;

#[async_trait::async_trait]
impl MigrationTrait for Migration {
    async fn up(&self, m: &SchemaManager) -> Result<(), DbErr> {
        let b = m.get_database_backend();

        m.create_table(
            Table::create()
                .table(c("cameras"))
                .if_not_exists()
                .col(big_pk_auto(c("id")))
                .col(string_len_uniq(c("name"), 128))
                .col(text(c("main_url")))
                .col(text_null(c("sub_url")))
                .col(string_len_null(c("username"), 128))
                .col(text_null(c("password")))
                .col(boolean(c("enabled")).default(true))
                .col(big_integer_null(c("property_id")))
                .col(string_len_null(c("zone"), 64))
                .col(string_len_null(c("timezone"), 64))
                .col(string_len(c("recording_mode"), 32).default("continuous"))
                .col(string_len(c("transport"), 32).default("tcp"))
                .col(integer_null(c("segment_seconds")))
                .col(integer(c("pre_roll_seconds")).default(5))
                .col(integer(c("post_roll_seconds")).default(10))
                .col(integer_null(c("retention_days")))
                .col(big_integer_null(c("retention_max_bytes")))
                .col(string_len_null(c("mac_address"), 32))
                .col(string_len_null(c("ip_address"), 64))
                .col(text_null(c("ingest_dir")))
                .col(string_len_null(c("video_codec"), 32))
                .col(string_len_null(c("audio_codec"), 32))
                .col(integer_null(c("width")))
                .col(integer_null(c("height")))
                .col(double_null(c("fps")))
                .col(string_len(c("status"), 32).default("new"))
                .col(text_null(c("status_reason")))
                .col(string_len_null(c("recorder_backend"), 32))
                .col(ts_null(b, c("last_seen_at")))
                .col(ts(b, c("created_at")))
                .col(ts(b, c("updated_at")))
                .to_owned(),
        )
        .await?;
        m.create_index(index("cameras", &["mac_address"], false)).await?;
        m.create_index(index("cameras", &["property_id"], false)).await?;

        m.create_table(
            Table::create()
                .table(c("camera_mac_changes"))
                .if_not_exists()
                .col(big_pk_auto(c("id")))
                .col(big_integer(c("camera_id")))
                .col(string_len_null(c("old_mac"), 32))
                .col(string_len(c("new_mac"), 32))
                .col(ts(b, c("observed_at")))
                .col(boolean(c("alerted")).default(false))
                .foreign_key(&mut fk_cascade("camera_mac_changes", "camera_id", "cameras"))
                .to_owned(),
        )
        .await?;
        m.create_index(index("camera_mac_changes", &["camera_id", "observed_at"], false)).await?;

        m.create_table(
            Table::create()
                .table(c("recording_schedules"))
                .if_not_exists()
                .col(big_pk_auto(c("id")))
                .col(big_integer(c("camera_id")))
                .col(string_len(c("mode"), 32))
                .col(integer(c("days_of_week")))
                .col(integer(c("start_minute")))
                .col(integer(c("end_minute")))
                .col(string_len_null(c("timezone"), 64))
                .col(boolean(c("enabled")).default(true))
                .col(integer(c("priority")).default(0))
                .col(ts(b, c("created_at")))
                .col(ts(b, c("updated_at")))
                .foreign_key(&mut fk_cascade("recording_schedules", "camera_id", "cameras"))
                .to_owned(),
        )
        .await?;
        m.create_index(index("recording_schedules", &["camera_id"], false)).await?;

        m.create_table(
            Table::create()
                .table(c("segments"))
                .if_not_exists()
                .col(big_pk_auto(c("id")))
                .col(big_integer(c("camera_id")))
                .col(ts(b, c("started_at")))
                .col(ts(b, c("ended_at")))
                .col(big_integer(c("media_start_ns")))
                .col(big_integer(c("media_end_ns")))
                .col(big_integer(c("duration_ms")))
                .col(big_integer(c("size_bytes")))
                .col(string_len(c("video_codec"), 32))
                .col(string_len_null(c("audio_codec"), 32))
                .col(integer_null(c("width")))
                .col(integer_null(c("height")))
                .col(text(c("path")))
                .col(text_null(c("storage_key")))
                .col(boolean(c("motion")).default(false))
                .col(string_len(c("end_reason"), 32))
                .col(boolean(c("protected")).default(false))
                .col(ts(b, c("created_at")))
                .foreign_key(&mut fk_cascade("segments", "camera_id", "cameras"))
                .to_owned(),
        )
        .await?;
        m.create_index(index("segments", &["camera_id", "started_at"], false)).await?;
        m.create_index(index("segments", &["started_at"], false)).await?;

        m.create_table(
            Table::create()
                .table(c("recording_gaps"))
                .if_not_exists()
                .col(big_pk_auto(c("id")))
                .col(big_integer(c("camera_id")))
                .col(ts(b, c("started_at")))
                .col(ts_null(b, c("ended_at")))
                .col(text(c("reason")))
                .foreign_key(&mut fk_cascade("recording_gaps", "camera_id", "cameras"))
                .to_owned(),
        )
        .await?;
        m.create_index(index("recording_gaps", &["camera_id", "started_at"], false)).await?;

        m.create_table(
            Table::create()
                .table(c("motion_zones"))
                .if_not_exists()
                .col(big_pk_auto(c("id")))
                .col(big_integer(c("camera_id")))
                .col(string_len(c("name"), 64))
                .col(json(c("polygon")))
                .col(double(c("sensitivity")))
                .col(boolean(c("is_mask")).default(false))
                .col(boolean(c("enabled")).default(true))
                .col(ts(b, c("created_at")))
                .col(ts(b, c("updated_at")))
                .foreign_key(&mut fk_cascade("motion_zones", "camera_id", "cameras"))
                .to_owned(),
        )
        .await?;
        m.create_index(index("motion_zones", &["camera_id"], false)).await?;

        m.create_table(
            Table::create()
                .table(c("motion_events"))
                .if_not_exists()
                .col(big_pk_auto(c("id")))
                .col(big_integer(c("camera_id")))
                .col(big_integer_null(c("zone_id")))
                .col(ts(b, c("started_at")))
                .col(ts_null(b, c("ended_at")))
                .col(double(c("peak_score")))
                .col(big_integer_null(c("segment_id")))
                .foreign_key(&mut fk_cascade("motion_events", "camera_id", "cameras"))
                .foreign_key(&mut fk_set_null("motion_events", "zone_id", "motion_zones"))
                .foreign_key(&mut fk_set_null("motion_events", "segment_id", "segments"))
                .to_owned(),
        )
        .await?;
        m.create_index(index("motion_events", &["camera_id", "started_at"], false)).await?;
        m.create_index(index("motion_events", &["zone_id"], false)).await?;
        m.create_index(index("motion_events", &["segment_id"], false)).await?;

        m.create_table(
            Table::create()
                .table(c("rtmp_outputs"))
                .if_not_exists()
                .col(big_pk_auto(c("id")))
                .col(big_integer(c("camera_id")))
                .col(string_len(c("name"), 128))
                .col(text(c("target_url")))
                .col(boolean(c("enabled")).default(true))
                .col(string_len(c("status"), 32).default("idle"))
                .col(text_null(c("last_error")))
                .col(ts(b, c("created_at")))
                .col(ts(b, c("updated_at")))
                .foreign_key(&mut fk_cascade("rtmp_outputs", "camera_id", "cameras"))
                .to_owned(),
        )
        .await?;
        m.create_index(index("rtmp_outputs", &["camera_id"], false)).await?;

        m.create_table(
            Table::create()
                .table(c("storage_providers"))
                .if_not_exists()
                .col(big_pk_auto(c("id")))
                .col(string_len_uniq(c("key"), 64))
                .col(string_len(c("name"), 128))
                .col(string_len(c("category"), 32))
                .col(json(c("definition")))
                .col(ts(b, c("installed_at")))
                .col(ts(b, c("updated_at")))
                .to_owned(),
        )
        .await?;

        m.create_table(
            Table::create()
                .table(c("storage_modules"))
                .if_not_exists()
                .col(big_pk_auto(c("id")))
                .col(string_len(c("provider_key"), 64))
                .col(string_len_uniq(c("name"), 128))
                .col(boolean(c("enabled")).default(true))
                .col(json(c("config")))
                .col(text_null(c("secrets")))
                .col(integer(c("priority")).default(100))
                .col(json_null(c("tags")))
                // A short template: a varchar so the default is portable (MySQL refuses
                // literal defaults on TEXT).
                .col(string_len(c("key_template"), 255).default(DEFAULT_KEY_TEMPLATE))
                .col(integer_null(c("retention_days")))
                .col(big_integer_null(c("chunk_size_bytes")))
                .col(integer(c("parallel_uploads")).default(2))
                .col(big_integer_null(c("bandwidth_limit_bytes_per_second")))
                .col(boolean(c("read_only")).default(false))
                .col(ts_null(b, c("last_test_ok_at")))
                .col(text_null(c("last_test_error")))
                .col(ts(b, c("created_at")))
                .col(ts(b, c("updated_at")))
                .to_owned(),
        )
        .await?;
        m.create_index(index("storage_modules", &["provider_key"], false)).await?;

        m.create_table(
            Table::create()
                .table(c("storage_module_write_stats"))
                .if_not_exists()
                .col(big_pk_auto(c("id")))
                .col(big_integer(c("module_id")))
                .col(ts(b, c("at")))
                .col(boolean(c("ok")))
                .col(big_integer(c("size_bytes")))
                .col(big_integer(c("duration_ms")))
                .col(text_null(c("error")))
                .foreign_key(&mut fk_cascade(
                    "storage_module_write_stats",
                    "module_id",
                    "storage_modules",
                ))
                .to_owned(),
        )
        .await?;
        m.create_index(index("storage_module_write_stats", &["module_id", "at"], false)).await?;

        m.create_table(
            Table::create()
                .table(c("storage_module_health_checks"))
                .if_not_exists()
                .col(big_pk_auto(c("id")))
                .col(big_integer(c("module_id")))
                .col(ts(b, c("checked_at")))
                .col(string_len(c("status"), 32))
                .col(big_integer_null(c("latency_ms")))
                .col(text_null(c("message")))
                .foreign_key(&mut fk_cascade(
                    "storage_module_health_checks",
                    "module_id",
                    "storage_modules",
                ))
                .to_owned(),
        )
        .await?;
        m.create_index(index("storage_module_health_checks", &["module_id", "checked_at"], false))
            .await?;

        m.create_table(
            Table::create()
                .table(c("storage_module_logs"))
                .if_not_exists()
                .col(big_pk_auto(c("id")))
                .col(big_integer(c("module_id")))
                .col(ts(b, c("at")))
                .col(string_len(c("level"), 32))
                .col(string_len_null(c("stream_id"), 128))
                .col(string_len(c("event"), 64))
                .col(text(c("message")))
                .foreign_key(&mut fk_cascade("storage_module_logs", "module_id", "storage_modules"))
                .to_owned(),
        )
        .await?;
        m.create_index(index("storage_module_logs", &["module_id", "at"], false)).await?;

        m.create_table(
            Table::create()
                .table(c("camera_storage_targets"))
                .if_not_exists()
                .col(big_pk_auto(c("id")))
                .col(big_integer(c("camera_id")))
                .col(big_integer(c("module_id")))
                .col(integer(c("priority")).default(100))
                .col(boolean(c("enabled")).default(true))
                .foreign_key(&mut fk_cascade("camera_storage_targets", "camera_id", "cameras"))
                .foreign_key(&mut fk_cascade(
                    "camera_storage_targets",
                    "module_id",
                    "storage_modules",
                ))
                .to_owned(),
        )
        .await?;
        m.create_index(index("camera_storage_targets", &["camera_id", "module_id"], true)).await?;
        m.create_index(index("camera_storage_targets", &["module_id"], false)).await?;

        m.create_table(
            Table::create()
                .table(c("upload_queue"))
                .if_not_exists()
                .col(big_pk_auto(c("id")))
                .col(big_integer(c("segment_id")))
                .col(big_integer(c("module_id")))
                .col(string_len(c("status"), 32).default("pending"))
                .col(integer(c("attempts")).default(0))
                .col(ts(b, c("next_attempt_at")))
                .col(text_null(c("last_error")))
                .col(text_null(c("remote_key")))
                .col(integer(c("priority")).default(100))
                .col(ts(b, c("created_at")))
                .col(ts(b, c("updated_at")))
                .col(ts_null(b, c("completed_at")))
                .foreign_key(&mut fk_cascade("upload_queue", "segment_id", "segments"))
                .foreign_key(&mut fk_cascade("upload_queue", "module_id", "storage_modules"))
                .to_owned(),
        )
        .await?;
        m.create_index(index("upload_queue", &["status", "next_attempt_at"], false)).await?;
        m.create_index(index("upload_queue", &["segment_id", "module_id"], true)).await?;
        m.create_index(index("upload_queue", &["module_id"], false)).await?;
        Ok(())
    }

    async fn down(&self, m: &SchemaManager) -> Result<(), DbErr> {
        for t in TABLES.iter().rev() {
            m.drop_table(Table::drop().table(c(t)).if_exists().to_owned()).await?;
        }
        Ok(())
    }
}
