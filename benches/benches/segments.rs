//! Segment index hot path on SQLite: one insert (what the recorder does per finished segment),
//! a batch of 100, and the playback query (one camera, one hour) over 10 000 rows.

use chrono::{Duration, TimeZone, Utc};
use criterion::{Criterion, criterion_group, criterion_main};
use pv_core::db::Databases;
use pv_core::db::records::{camera, segment};
use pv_core::testkit::{Engine, TestEnv};
use sea_orm::{ActiveModelTrait, ColumnTrait, EntityTrait, QueryFilter, QueryOrder, Set};

fn row(camera_id: i64, i: i64) -> segment::ActiveModel {
    let t0 = Utc.with_ymd_and_hms(2026, 1, 1, 0, 0, 0).unwrap();
    let start = t0 + Duration::seconds(60 * i);
    segment::ActiveModel {
        camera_id: Set(camera_id),
        started_at: Set(start),
        ended_at: Set(start + Duration::seconds(60)),
        media_start_ns: Set(i * 60_000_000_000),
        media_end_ns: Set((i + 1) * 60_000_000_000),
        duration_ms: Set(60_000),
        size_bytes: Set(8_000_000),
        video_codec: Set("h264".into()),
        path: Set(format!("cameras/id-{camera_id}/{i}.mp4")),
        end_reason: Set("duration".into()),
        created_at: Set(start + Duration::seconds(61)),
        ..Default::default()
    }
}

fn bench(c: &mut Criterion) {
    let rt = tokio::runtime::Runtime::new().unwrap();
    let (env, dbs, cam) = rt.block_on(async {
        let env = TestEnv::new(Engine::Sqlite).await;
        let dbs = Databases::connect(&env.config).await.unwrap();
        dbs.migrate().await.unwrap();
        let now = Utc::now();
        let cam = camera::ActiveModel {
            name: Set("bench".into()),
            main_url: Set("rtsp://127.0.0.1/bench".into()),
            created_at: Set(now),
            updated_at: Set(now),
            ..Default::default()
        }
        .insert(&dbs.records)
        .await
        .unwrap();
        for chunk in (0..10_000).collect::<Vec<i64>>().chunks(500) {
            segment::Entity::insert_many(chunk.iter().map(|&i| row(cam.id, i)))
                .exec(&dbs.records)
                .await
                .unwrap();
        }
        (env, dbs, cam.id)
    });

    let mut next = 1_000_000i64;
    c.bench_function("segment insert (one row)", |b| {
        b.to_async(&rt).iter(|| {
            next += 1;
            let db = dbs.records.clone();
            let r = row(cam, next);
            async move { segment::Entity::insert(r).exec(&db).await.unwrap() }
        })
    });
    c.bench_function("segment insert (batch of 100)", |b| {
        b.to_async(&rt).iter(|| {
            next += 100;
            let db = dbs.records.clone();
            let rows: Vec<_> = (next..next + 100).map(|i| row(cam, i)).collect();
            async move { segment::Entity::insert_many(rows).exec(&db).await.unwrap() }
        })
    });
    let from = Utc.with_ymd_and_hms(2026, 1, 3, 12, 0, 0).unwrap();
    c.bench_function("segments in one hour of one camera (10k rows)", |b| {
        b.to_async(&rt).iter(|| {
            let db = dbs.records.clone();
            async move {
                let rows = segment::Entity::find()
                    .filter(segment::Column::CameraId.eq(cam))
                    .filter(segment::Column::StartedAt.gte(from))
                    .filter(segment::Column::StartedAt.lt(from + Duration::hours(1)))
                    .order_by_asc(segment::Column::StartedAt)
                    .all(&db)
                    .await
                    .unwrap();
                assert_eq!(rows.len(), 60);
            }
        })
    });
    drop(dbs);
    drop(env);
}

criterion_group!(benches, bench);
criterion_main!(benches);
