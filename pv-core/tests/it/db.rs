//! Migrations and basic reads/writes on every engine.

use chrono::{Duration, TimeZone, Utc};
use pv_core::ErrorKind;
use pv_core::config::DbKind;
use pv_core::db::records::{camera, segment};
use pv_core::db::users::{audit_event, user};
use pv_core::db::{self, Databases};
use pv_core::testkit::{Engine, TestEnv};
use sea_orm::{
    ActiveModelTrait, ColumnTrait, ConnectionTrait, EntityTrait, PaginatorTrait, QueryFilter,
    QueryOrder, Set,
};

async fn migrated(engine: Engine) -> (TestEnv, Databases) {
    let env = TestEnv::new(engine).await;
    let dbs = Databases::connect(&env.config).await.expect("connect");
    dbs.migrate().await.expect("migrate");
    (env, dbs)
}

async fn migrations_apply_and_are_idempotent(engine: Engine) {
    let (env, dbs) = migrated(engine).await;
    // A second run is a no-op.
    dbs.migrate().await.expect("second migrate");
    for kind in DbKind::ALL {
        let applied = db::applied_migrations(kind, dbs.get(kind)).await.unwrap();
        assert_eq!(applied, db::known_migrations(kind), "{kind} on {engine:?}");
    }
    let status = dbs.status().await;
    assert!(status.iter().all(|s| s.reachable && s.schema_version.is_some()), "{status:?}");
    if engine == Engine::Sqlite {
        for kind in DbKind::ALL {
            let path = env.config.sqlite_path(kind);
            assert!(path.is_file(), "{kind} file exists");
            use std::os::unix::fs::PermissionsExt;
            let mode = std::fs::metadata(&path).unwrap().permissions().mode() & 0o777;
            assert_eq!(mode, 0o600, "{kind} database file is private");
        }
    } else {
        assert_eq!(env.server_databases(), 3);
    }
    dbs.close().await;
}

async fn rows_round_trip(engine: Engine) {
    let (_env, dbs) = migrated(engine).await;
    let now = Utc.with_ymd_and_hms(2026, 11, 23, 8, 30, 15).unwrap();
    let cam = camera::ActiveModel {
        name: Set("Front door".into()),
        main_url: Set("rtsp://127.0.0.1:8554/front".into()),
        created_at: Set(now),
        updated_at: Set(now),
        ..Default::default()
    }
    .insert(&dbs.records)
    .await
    .expect("insert camera");
    assert_eq!(cam.recording_mode, "continuous", "column default applies");
    assert!(cam.enabled);

    for i in 0..3 {
        let start = now + Duration::seconds(60 * i);
        segment::ActiveModel {
            camera_id: Set(cam.id),
            started_at: Set(start),
            ended_at: Set(start + Duration::seconds(60)),
            media_start_ns: Set(i * 60_000_000_000),
            media_end_ns: Set((i + 1) * 60_000_000_000),
            duration_ms: Set(60_000),
            size_bytes: Set(1_000_000 + i),
            video_codec: Set("h264".into()),
            path: Set(format!("cameras/id-{}/{i}.mp4", cam.id)),
            end_reason: Set("duration".into()),
            created_at: Set(start + Duration::seconds(61)),
            has_faces: Set(false),
            ..Default::default()
        }
        .insert(&dbs.records)
        .await
        .expect("insert segment");
    }
    let in_range = segment::Entity::find()
        .filter(segment::Column::CameraId.eq(cam.id))
        .filter(segment::Column::StartedAt.gte(now + Duration::seconds(30)))
        .order_by_asc(segment::Column::StartedAt)
        .all(&dbs.records)
        .await
        .unwrap();
    assert_eq!(in_range.len(), 2);
    assert_eq!(in_range[0].started_at, now + Duration::seconds(60), "timestamps keep their value");

    // Deleting a camera removes its segments (foreign key cascade on every engine).
    camera::Entity::delete_by_id(cam.id).exec(&dbs.records).await.unwrap();
    assert_eq!(segment::Entity::find().count(&dbs.records).await.unwrap(), 0);

    // The users database is separate: a user row lives there, not in records.
    user::ActiveModel {
        username: Set("thalia".into()),
        display_name: Set("Thalia".into()),
        created_at: Set(now),
        updated_at: Set(now),
        ..Default::default()
    }
    .insert(&dbs.users)
    .await
    .expect("insert user");
    let dup = user::ActiveModel {
        username: Set("thalia".into()),
        display_name: Set("Again".into()),
        created_at: Set(now),
        updated_at: Set(now),
        ..Default::default()
    }
    .insert(&dbs.users)
    .await;
    assert!(dup.is_err(), "usernames are unique");
    assert!(dbs.records.execute_unprepared("SELECT 1 FROM users").await.is_err());

    // Far-future timestamps (past 2038) survive on SQLite and PostgreSQL. On MariaDB the
    // driver binds UTC times as TIMESTAMP parameters, whose range ends in 2038: such a write
    // must fail loudly, never store something else (documented in docs/ARCHITECTURE.md).
    let far = Utc.with_ymd_and_hms(2099, 1, 1, 0, 0, 0).unwrap();
    let ev = audit_event::ActiveModel {
        occurred_at: Set(far),
        action: Set("test".into()),
        outcome: Set("success".into()),
        prev_hash: Set("0".repeat(64)),
        hash: Set("a".repeat(64)),
        ..Default::default()
    }
    .insert(&dbs.users)
    .await;
    match engine {
        Engine::MySql => assert!(ev.is_err(), "out-of-range time must be refused: {ev:?}"),
        _ => assert_eq!(ev.expect("insert audit event").occurred_at, far),
    }
    dbs.close().await;
}

async fn newer_schema_is_refused(engine: Engine) {
    let (_env, dbs) = migrated(engine).await;
    dbs.faces
        .execute_unprepared(
            "INSERT INTO pv_faces_migrations (version, applied_at) VALUES ('m20991231_000001_from_the_future', 0)",
        )
        .await
        .expect("fake a newer migration");
    let err = dbs.migrate().await.unwrap_err();
    assert_eq!(err.kind(), ErrorKind::Unavailable);
    let text = err.to_string();
    assert!(text.contains("faces database"), "{text}");
    assert!(text.contains("m20991231_000001_from_the_future"), "{text}");
    dbs.close().await;
}

async fn camera_patches_change_only_their_fields(engine: Engine) {
    use pv_core::cameras::{self, CameraPatch, CameraSettings};
    let (_env, dbs) = migrated(engine).await;
    let db = &dbs.records;
    let now = Utc.with_ymd_and_hms(2026, 11, 23, 8, 30, 15).unwrap();
    let mut settings = CameraSettings::new("Front door", "rtsp://192.0.2.10/main");
    settings.sub_url = Some("rtsp://192.0.2.10/sub".into());
    settings.timezone = Some("Europe/Paris".into());
    settings.recording_mode = "motion".into();
    let cam = cameras::create(db, &settings, now).await.unwrap();
    cameras::create(db, &CameraSettings::new("Garage", "rtsp://192.0.2.11/main"), now)
        .await
        .unwrap();

    let later = now + Duration::minutes(5);
    let patch = CameraPatch {
        name: Some("  Porch ".into()),
        sub_url: Some(None),
        segment_seconds: Some(Some(30)),
        ..CameraPatch::default()
    };
    let changed = cameras::update(db, cam.id, &patch, later).await.unwrap();
    assert_eq!(changed.name, "Porch", "stored trimmed");
    assert_eq!(changed.sub_url, None, "Some(None) clears");
    assert_eq!(changed.segment_seconds, Some(30));
    assert_eq!(changed.timezone.as_deref(), Some("Europe/Paris"), "absent fields are untouched");
    assert_eq!(changed.recording_mode, "motion");
    assert_eq!(changed.main_url, "rtsp://192.0.2.10/main");
    assert_eq!(changed.updated_at, later);
    assert_eq!(cameras::get(db, cam.id).await.unwrap(), changed, "what is returned is stored");

    // The settings the patch results in are checked; nothing is written when they are wrong.
    for (patch, kind, needle) in [
        (
            CameraPatch { recording_mode: Some("sometimes".into()), ..CameraPatch::default() },
            ErrorKind::InvalidInput,
            "recording_mode",
        ),
        (
            CameraPatch {
                name: Some("garage".into()),
                segment_seconds: Some(None),
                ..CameraPatch::default()
            },
            ErrorKind::Conflict,
            "exists already",
        ),
    ] {
        let err = cameras::update(db, cam.id, &patch, later).await.unwrap_err();
        assert_eq!(err.kind(), kind, "{err}");
        assert!(err.to_string().contains(needle), "{err}");
    }
    assert_eq!(cameras::get(db, cam.id).await.unwrap(), changed, "a refused patch changes nothing");
    let err = cameras::update(db, cam.id + 100, &CameraPatch::default(), later).await.unwrap_err();
    assert_eq!(err.kind(), ErrorKind::NotFound);
    dbs.close().await;
}

macro_rules! on_every_engine {
    ($($name:ident),+ $(,)?) => {
        mod sqlite {
            $(#[tokio::test] async fn $name() { super::$name(pv_core::testkit::Engine::Sqlite).await })+
        }
        mod postgres {
            $(#[tokio::test] async fn $name() { super::$name(pv_core::testkit::Engine::Postgres).await })+
        }
        mod mariadb {
            $(#[tokio::test] async fn $name() { super::$name(pv_core::testkit::Engine::MySql).await })+
        }
    };
}

on_every_engine!(
    migrations_apply_and_are_idempotent,
    rows_round_trip,
    newer_schema_is_refused,
    camera_patches_change_only_their_fields,
);
