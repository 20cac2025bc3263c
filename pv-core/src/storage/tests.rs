//! The storage records on SQLite, PostgreSQL and MariaDB.

use std::collections::HashSet;

use chrono::{Duration, TimeZone};
use sea_orm::DatabaseConnection;
use serde_json::json;

use super::*;
use crate::ErrorKind;
use crate::cameras::{self, CameraSettings};
use crate::db::Databases;
use crate::ids::CameraId;
use crate::recordings::{self, NewSegment};
use crate::testkit::{Engine, TestEnv};

async fn setup(engine: Engine) -> (TestEnv, Databases) {
    let env = TestEnv::new(engine).await;
    let dbs = Databases::connect(&env.config).await.expect("connect");
    dbs.migrate().await.expect("migrate");
    (env, dbs)
}

fn t0() -> DateTime<Utc> {
    Utc.with_ymd_and_hms(2026, 12, 5, 10, 0, 0).unwrap()
}

async fn cam(db: &DatabaseConnection, name: &str) -> i64 {
    cameras::create(db, &CameraSettings::new(name, format!("rtsp://192.0.2.1/{name}")), t0())
        .await
        .expect("camera")
        .id
}

/// A one-minute segment starting at `start`.
async fn seg(db: &DatabaseConnection, camera: i64, start: DateTime<Utc>, motion: bool) -> i64 {
    let s = NewSegment {
        camera: CameraId(camera),
        started_at: start,
        ended_at: start + Duration::seconds(60),
        media_start_ns: 0,
        media_end_ns: 60_000_000_000,
        duration_ms: 60_000,
        size_bytes: 4096,
        video_codec: "h264".into(),
        audio_codec: None,
        width: None,
        height: None,
        path: format!("cameras/id-{camera}/{}.mp4", start.timestamp()),
        motion,
        end_reason: "duration".into(),
    };
    recordings::insert_segment(db, &s, start + Duration::seconds(60)).await.expect("segment").0
}

async fn module(db: &DatabaseConnection, name: &str, priority: i32) -> i64 {
    let mut m = NewModule::new("aws-s3", name, json!({"bucket": name}));
    m.priority = priority;
    create_module(db, &m, t0()).await.expect("module")
}

fn target(module_id: i64, mode: UploadMode, padding: i32) -> TargetSpec {
    TargetSpec { module_id, mode, padding_seconds: padding, enabled: true }
}

async fn jobs_of(db: &DatabaseConnection, segment: i64) -> Vec<upload_queue::Model> {
    upload_queue::Entity::find()
        .filter(upload_queue::Column::SegmentId.eq(segment))
        .order_by_asc(upload_queue::Column::Id)
        .all(db)
        .await
        .unwrap()
}

async fn enqueue_with_targets_or_default(engine: Engine) {
    let (_env, dbs) = setup(engine).await;
    let db = &dbs.records;
    let now = t0() + Duration::minutes(1);
    let a = module(db, "A", 10).await;
    let b = module(db, "B", 5).await;
    let c = module(db, "C", 20).await;
    set_enabled(db, c, false, now).await.unwrap();
    let d = module(db, "D", 1).await;
    set_draining(db, d, true, now).await.unwrap();
    assert_eq!(default_chain(db).await.unwrap(), vec![b, a], "enabled, not draining, by priority");

    // No targets: the global default, one job, due now.
    let front = cam(db, "front").await;
    let s1 = seg(db, front, t0(), false).await;
    assert_eq!(enqueue_segment(db, s1, front, now).await.unwrap(), 1);
    assert_eq!(enqueue_segment(db, s1, front, now).await.unwrap(), 0, "queued once");
    let jobs = jobs_of(db, s1).await;
    assert_eq!(jobs.len(), 1);
    assert_eq!((jobs[0].module_id, jobs[0].camera_id), (b, front));
    assert_eq!(job_chain(&jobs[0]), vec![b, a]);
    assert_eq!((jobs[0].status.as_str(), jobs[0].mode.as_str()), (PENDING, "all"));
    assert_eq!(jobs[0].next_attempt_at, now);
    let err = enqueue_segment(db, s1 + 1000, front, now).await.unwrap_err();
    assert_eq!(err.kind(), ErrorKind::NotFound);

    // Targets: the `all` ones form one chain (a disabled module left out), the `motion` ones
    // another, due after the segment's end + padding + settle time.
    let back = cam(db, "back").await;
    replace_camera_targets(
        db,
        back,
        &[
            target(a, UploadMode::All, 10),
            target(c, UploadMode::All, 10),
            target(b, UploadMode::Motion, 30),
        ],
    )
    .await
    .unwrap();
    let rows = camera_targets(db, back).await.unwrap();
    assert_eq!(
        rows.iter().map(|r| (r.module_id, r.priority, r.mode)).collect::<Vec<_>>(),
        vec![(a, 0, UploadMode::All), (c, 1, UploadMode::All), (b, 2, UploadMode::Motion)]
    );
    assert_eq!(rows[2].padding_seconds, 30);
    let s2 = seg(db, back, t0(), false).await;
    let err = enqueue_segment(db, s2, front, now).await.unwrap_err();
    assert_eq!(err.kind(), ErrorKind::InvalidInput, "the segment is not the front camera's");
    assert_eq!(enqueue_segment(db, s2, back, now).await.unwrap(), 2);
    let jobs = jobs_of(db, s2).await;
    assert_eq!((job_chain(&jobs[0]), jobs[0].mode.as_str()), (vec![a], "all"));
    assert_eq!(jobs[0].next_attempt_at, now);
    assert_eq!((job_chain(&jobs[1]), jobs[1].mode.as_str()), (vec![b], "motion"));
    assert_eq!(jobs[1].padding_seconds, 30);
    assert_eq!(jobs[1].next_attempt_at, t0() + Duration::seconds(60 + 30 + MOTION_SETTLE_SECONDS));

    // Targets that are all disabled: nothing, and not the default.
    let side = cam(db, "side").await;
    replace_camera_targets(
        db,
        side,
        &[TargetSpec { enabled: false, ..target(a, UploadMode::All, 0) }],
    )
    .await
    .unwrap();
    let s3 = seg(db, side, t0(), false).await;
    assert_eq!(enqueue_segment(db, s3, side, now).await.unwrap(), 0);

    // Refused target lists change nothing.
    for bad in [
        vec![target(a + 100, UploadMode::All, 0)],
        vec![target(a, UploadMode::All, 0), target(a, UploadMode::Motion, 0)],
        vec![target(a, UploadMode::Motion, 5000)],
    ] {
        let err = replace_camera_targets(db, back, &bad).await.unwrap_err();
        assert_eq!(err.kind(), ErrorKind::InvalidInput, "{err}");
    }
    assert_eq!(camera_targets(db, back).await.unwrap(), rows);
    let err = replace_camera_targets(db, back + 100, &[]).await.unwrap_err();
    assert_eq!(err.kind(), ErrorKind::NotFound);
    replace_camera_targets(db, back, &[]).await.unwrap();
    assert!(camera_targets(db, back).await.unwrap().is_empty(), "back to the default");

    // No usable module at all: no job.
    for m in [a, b] {
        set_enabled(db, m, false, now).await.unwrap();
    }
    let s4 = seg(db, front, t0() + Duration::minutes(1), false).await;
    assert_eq!(enqueue_segment(db, s4, front, now).await.unwrap(), 0);
    dbs.close().await;
}

async fn claim_fail_retry_requeue_finish(engine: Engine) {
    let (_env, dbs) = setup(engine).await;
    let db = &dbs.records;
    let m1 = module(db, "primary", 1).await;
    let m2 = module(db, "secondary", 2).await;
    let front = cam(db, "Front door").await;
    let now = t0() + Duration::minutes(30);
    let mut segs = Vec::new();
    for i in 0..12 {
        let s = seg(db, front, t0() + Duration::minutes(i), false).await;
        assert_eq!(enqueue_segment(db, s, front, now).await.unwrap(), 1);
        segs.push(s);
    }
    let lease = Duration::minutes(5);

    // Four concurrent callers share the twelve jobs; none is claimed twice.
    let (r1, r2, r3, r4) = tokio::join!(
        claim_due_jobs(db, now, lease, 5),
        claim_due_jobs(db, now, lease, 5),
        claim_due_jobs(db, now, lease, 5),
        claim_due_jobs(db, now, lease, 5),
    );
    let all: Vec<DueJob> = [r1, r2, r3, r4].into_iter().flat_map(|r| r.unwrap()).collect();
    let ids: HashSet<i64> = all.iter().map(|d| d.job.id).collect();
    assert_eq!(ids.len(), all.len(), "a job was claimed twice");
    assert_eq!(all.len(), 12, "every due job is claimed by someone");
    assert!(claim_due_jobs(db, now, lease, 5).await.unwrap().is_empty());
    let first = &all[0];
    assert_eq!(first.camera_name, "Front door");
    assert_eq!(first.chain, vec![m1, m2]);
    assert_eq!(first.job.status, UPLOADING);
    assert_eq!(first.job.lease_until, Some(now + lease));
    assert_eq!(first.segment.id, first.job.segment_id);
    let stored = jobs_of(db, first.segment.id).await;
    assert_eq!((stored[0].status.as_str(), stored[0].lease_until), (UPLOADING, Some(now + lease)));
    assert_eq!(active_jobs(db, m1).await.unwrap(), 12);

    // A failure on the primary: pending again, on the module tried, retried only after next_at.
    let failed = all[1].job.id;
    let retry_at = now + Duration::seconds(60);
    fail_job(db, failed, m1, "connection refused", retry_at, now).await.unwrap();
    let summary = queue_summary(db, None, now).await.unwrap();
    assert_eq!((summary.pending, summary.uploading, summary.failed), (1, 11, 1));
    let listed =
        list_jobs(db, &JobFilter { status: Some("failed".into()), ..JobFilter::default() })
            .await
            .unwrap();
    assert_eq!(listed.len(), 1);
    assert_eq!(listed[0].job.last_error.as_deref(), Some("connection refused"));
    assert_eq!(listed[0].camera_name, "Front door");
    assert!(claim_due_jobs(db, now + Duration::seconds(59), lease, 5).await.unwrap().is_empty());
    let again = claim_due_jobs(db, retry_at, lease, 5).await.unwrap();
    assert_eq!(again.len(), 1);
    assert_eq!((again[0].job.id, again[0].job.attempts), (failed, 1));
    // Failover: the next attempt went to the secondary and failed too.
    fail_job(db, failed, m2, "timeout", now + Duration::hours(1), retry_at).await.unwrap();
    let row = job_exists(db, failed).await.unwrap();
    assert_eq!((row.status.as_str(), row.attempts, row.module_id), (PENDING, 2, m2));
    assert_eq!(row.lease_until, None);

    // Leases: nothing is stale before they end; afterwards the jobs are pending and due.
    assert_eq!(requeue_stale(db, now + Duration::minutes(4)).await.unwrap(), 0);
    let later = now + Duration::minutes(6);
    assert_eq!(requeue_stale(db, later).await.unwrap(), 11);
    assert_eq!(active_jobs(db, m1).await.unwrap(), 0);
    let re = claim_due_jobs(db, later, lease, 100).await.unwrap();
    assert_eq!(re.len(), 11, "the failed job still waits for its retry time");
    assert!(re.iter().all(|d| d.job.attempts == 0), "a lost lease is not a failed attempt");
    assert_eq!(requeue_all_uploading(db, later).await.unwrap(), 11, "start-up takes all back");
    let re = claim_due_jobs(db, later, lease, 100).await.unwrap();
    assert_eq!(re.len(), 11);

    // Finish: done on the module that took it, with the verified size and checksum.
    let done = &re[0];
    finish_job(db, done.job.id, m2, "front/x.mp4", 4096, Some("\"abc\""), later).await.unwrap();
    finish_job(db, done.job.id, m2, "front/x.mp4", 4096, Some("\"abc\""), later).await.unwrap();
    let row = job_exists(db, done.job.id).await.unwrap();
    assert_eq!((row.status.as_str(), row.module_id), (DONE, m2));
    assert_eq!(row.remote_key.as_deref(), Some("front/x.mp4"));
    assert_eq!((row.size_bytes, row.checksum.as_deref()), (Some(4096), Some("\"abc\"")));
    assert_eq!((row.completed_at, row.lease_until), (Some(later), None));
    let segment =
        recordings::get_segment(db, crate::ids::SegmentId(done.segment.id)).await.unwrap();
    assert_eq!(segment.storage_key.as_deref(), Some("front/x.mp4"));
    fail_job(db, done.job.id, m1, "late failure", later, later).await.unwrap();
    assert_eq!(job_exists(db, done.job.id).await.unwrap().status, DONE, "done stays done");
    skip_job(db, re[1].job.id, "no longer wanted", later).await.unwrap();
    let s = queue_summary(db, Some(m2), later + Duration::hours(1)).await.unwrap();
    assert_eq!((s.done_24h, s.done_total, s.skipped), (1, 1, 0));
    let s = queue_summary(db, None, later + Duration::hours(25)).await.unwrap();
    assert_eq!((s.done_24h, s.done_total, s.skipped, s.uploading), (0, 1, 1, 9));
    let err = finish_job(db, 999_999, m1, "k", 1, None, later).await.unwrap_err();
    assert_eq!(err.kind(), ErrorKind::NotFound);
    let err = list_jobs(db, &JobFilter { status: Some("lost".into()), ..JobFilter::default() })
        .await
        .unwrap_err();
    assert_eq!(err.kind(), ErrorKind::InvalidInput);
    let mine =
        list_jobs(db, &JobFilter { module: Some(m2), status: None, limit: 10 }).await.unwrap();
    assert_eq!(mine.len(), 2, "the done job and the failed one are m2's");
    dbs.close().await;
}

async fn motion_mode_waits_and_decides(engine: Engine) {
    let (_env, dbs) = setup(engine).await;
    let db = &dbs.records;
    let m = module(db, "cloud", 1).await;
    let yard = cam(db, "yard").await;
    replace_camera_targets(db, yard, &[target(m, UploadMode::Motion, 10)]).await.unwrap();
    let s1 = seg(db, yard, t0(), false).await; // 10:00–10:01
    let s2 = seg(db, yard, t0() + Duration::minutes(1), false).await; // 10:01–10:02
    let s3 = seg(db, yard, t0() + Duration::minutes(5), false).await; // 10:05–10:06
    let s4 = seg(db, yard, t0() + Duration::minutes(10), true).await; // flagged
    // Motion from 10:01:08 to 10:01:20: after s1 (within its padding), during s2.
    let ev = recordings::open_motion_event(db, CameraId(yard), t0() + Duration::seconds(68), 0.8)
        .await
        .unwrap();
    assert!(ev > 0);
    recordings::close_motion_events(db, CameraId(yard), t0() + Duration::seconds(80), 0.9)
        .await
        .unwrap();
    for (s, start) in [(s1, 0), (s2, 1), (s3, 5), (s4, 10)] {
        let end = t0() + Duration::minutes(start + 1);
        assert_eq!(enqueue_segment(db, s, yard, end).await.unwrap(), 1);
    }
    let due1 = t0() + Duration::seconds(60 + 10 + MOTION_SETTLE_SECONDS);
    assert_eq!(jobs_of(db, s1).await[0].next_attempt_at, due1);
    let lease = Duration::minutes(5);
    assert!(claim_due_jobs(db, due1 - Duration::seconds(1), lease, 10).await.unwrap().is_empty());
    let got = claim_due_jobs(db, due1, lease, 10).await.unwrap();
    assert_eq!(got.iter().map(|d| d.segment.id).collect::<Vec<_>>(), vec![s1]);

    let at = t0() + Duration::minutes(12);
    let got = claim_due_jobs(db, at, lease, 10).await.unwrap();
    assert_eq!(got.iter().map(|d| d.segment.id).collect::<Vec<_>>(), vec![s2, s4]);
    let skipped = &jobs_of(db, s3).await[0];
    assert_eq!(skipped.status, SKIPPED);
    assert!(skipped.last_error.as_deref().unwrap_or_default().contains("no motion"), "{skipped:?}");
    assert!(
        motion_overlaps(db, yard, t0() + Duration::seconds(75), t0() + Duration::seconds(75))
            .await
            .unwrap()
    );
    assert!(
        !motion_overlaps(db, yard, t0() + Duration::minutes(3), t0() + Duration::minutes(4))
            .await
            .unwrap()
    );
    // An open event lasts until now.
    recordings::open_motion_event(db, CameraId(yard), t0() + Duration::minutes(20), 0.5)
        .await
        .unwrap();
    assert!(
        motion_overlaps(db, yard, t0() + Duration::hours(2), t0() + Duration::hours(3))
            .await
            .unwrap()
    );
    dbs.close().await;
}

async fn remote_copies_and_local_deletion(engine: Engine) {
    let (_env, dbs) = setup(engine).await;
    let db = &dbs.records;
    let nas = module(db, "nas", 1).await;
    let cloud = module(db, "cloud", 2).await;
    let front = cam(db, "front").await;
    replace_camera_targets(
        db,
        front,
        &[target(cloud, UploadMode::Motion, 0), target(nas, UploadMode::All, 0)],
    )
    .await
    .unwrap();
    let s = seg(db, front, t0(), true).await;
    let end = t0() + Duration::minutes(1);
    assert_eq!(enqueue_segment(db, s, front, end).await.unwrap(), 2);
    let deletable = |db| async move {
        recordings::deletable_segments(db, None, None, 100)
            .await
            .unwrap()
            .iter()
            .map(|s| s.id)
            .collect::<Vec<_>>()
    };
    assert!(deletable(db).await.is_empty(), "waiting for its uploads");
    let at = end + Duration::minutes(1);
    let jobs = claim_due_jobs(db, at, Duration::minutes(5), 10).await.unwrap();
    assert_eq!(jobs.len(), 2);
    for d in jobs.iter().rev() {
        let m = d.chain[0];
        finish_job(db, d.job.id, m, &format!("m{m}/seg.mp4"), 4096, None, at).await.unwrap();
    }
    let copies = remote_copies(db, s).await.unwrap();
    assert_eq!(
        copies.iter().map(|c| (c.module_id, c.remote_key.as_str())).collect::<Vec<_>>(),
        vec![
            (nas, format!("m{nas}/seg.mp4").as_str()),
            (cloud, format!("m{cloud}/seg.mp4").as_str())
        ],
        "by module priority"
    );
    assert_eq!(deletable(db).await, vec![s]);
    mark_local_deleted(db, s, at).await.unwrap();
    assert!(deletable(db).await.is_empty(), "the local file is already gone");
    let row = recordings::get_segment(db, crate::ids::SegmentId(s)).await.unwrap();
    assert_eq!(row.local_deleted_at, Some(at));
    assert_eq!(mark_local_deleted(db, s + 99, at).await.unwrap_err().kind(), ErrorKind::NotFound);

    // A claimed job whose file went away is skipped, not uploaded.
    let s2 = seg(db, front, t0() + Duration::minutes(1), false).await;
    enqueue_segment(db, s2, front, at).await.unwrap();
    mark_local_deleted(db, s2, at).await.unwrap();
    assert!(claim_due_jobs(db, at, Duration::minutes(5), 10).await.unwrap().is_empty());
    assert_eq!(jobs_of(db, s2).await[0].status, SKIPPED);

    // Remote retention, per module.
    assert!(segments_past_remote_retention(db, nas, end, 10).await.unwrap().is_empty());
    let old = segments_past_remote_retention(db, nas, end + Duration::days(1), 10).await.unwrap();
    assert_eq!(old.iter().map(|c| c.segment_id).collect::<Vec<_>>(), vec![s]);
    assert!(!mark_expired(db, old[0].job_id, at).await.unwrap(), "the cloud copy remains");
    assert!(
        segments_past_remote_retention(db, nas, end + Duration::days(1), 10)
            .await
            .unwrap()
            .is_empty()
    );
    let old = segments_past_remote_retention(db, cloud, end + Duration::days(1), 10).await.unwrap();
    assert!(mark_expired(db, old[0].job_id, at).await.unwrap(), "no copy left anywhere");
    assert!(remote_copies(db, s).await.unwrap().is_empty());
    dbs.close().await;
}

async fn logs_filter_and_search(engine: Engine) {
    let (_env, dbs) = setup(engine).await;
    let db = &dbs.records;
    let m = module(db, "logs", 1).await;
    let other = module(db, "other", 2).await;
    let at = |s| t0() + Duration::seconds(s);
    let lines = [
        ("info", Some("s1"), "upload_start", "Upload of Front_Door/seg.mp4 started, 100% queued"),
        ("debug", Some("s1"), "chunk", "part 3 of 1000 parts written"),
        ("warn", Some("s1"), "chunk_retry", "Chunk retry 2 of 5 after a timeout"),
        ("error", Some("s2"), "permission", "403 from bucket cams: the key lacks s3:PutObject"),
        ("info", None, "probe", "FrontXDoor probe passed"),
    ];
    let mut ids = Vec::new();
    for (i, (level, stream, event, message)) in lines.iter().enumerate() {
        ids.push(append_log(db, m, at(i as i64), level, *stream, event, message).await.unwrap());
    }
    append_log(db, other, at(9), "error", None, "auth", "wrong key PutObject").await.unwrap();
    let msgs = |rows: Vec<storage_module_log::Model>| {
        rows.into_iter().map(|r| r.message).collect::<Vec<_>>()
    };
    let all = msgs(logs(db, &LogFilter::new(m)).await.unwrap());
    assert_eq!(all.len(), 5);
    assert_eq!(all[0], lines[4].3, "newest first");
    let warn = LogFilter { min_level: Some("warn".into()), ..LogFilter::new(m) };
    assert_eq!(msgs(logs(db, &warn).await.unwrap()), vec![lines[3].3, lines[2].3]);
    let q = |text: &str| LogFilter { search: Some(text.into()), ..LogFilter::new(m) };
    assert_eq!(msgs(logs(db, &q("PUTOBJECT")).await.unwrap()), vec![lines[3].3], "ignores case");
    assert_eq!(msgs(logs(db, &q("100%")).await.unwrap()), vec![lines[0].3], "% is literal");
    assert_eq!(msgs(logs(db, &q("front_door")).await.unwrap()), vec![lines[0].3], "_ is literal");
    assert_eq!(msgs(logs(db, &q("chunk_retry")).await.unwrap()), vec![lines[2].3], "events too");
    assert!(logs(db, &q("nowhere")).await.unwrap().is_empty());
    let stream = LogFilter { stream_id: Some("s1".into()), ..LogFilter::new(m) };
    assert_eq!(logs(db, &stream).await.unwrap().len(), 3);
    let page = LogFilter { limit: 2, before_id: Some(ids[3]), ..LogFilter::new(m) };
    assert_eq!(msgs(logs(db, &page).await.unwrap()), vec![lines[2].3, lines[1].3]);
    let bad = LogFilter { min_level: Some("loud".into()), ..LogFilter::new(m) };
    assert_eq!(logs(db, &bad).await.unwrap_err().kind(), ErrorKind::InvalidInput);
    let err = append_log(db, m, at(0), "fatal", None, "x", "y").await.unwrap_err();
    assert_eq!(err.kind(), ErrorKind::InvalidInput);
    dbs.close().await;
}

async fn write_stats_and_health(engine: Engine) {
    let (_env, dbs) = setup(engine).await;
    let db = &dbs.records;
    let m = module(db, "stats", 1).await;
    let idle = module(db, "idle", 2).await;
    let now = Utc.with_ymd_and_hms(2026, 12, 5, 12, 0, 0).unwrap();
    let at = |d, h| Utc.with_ymd_and_hms(2026, if d > 5 { 11 } else { 12 }, d, h, 0, 0).unwrap();
    let writes = [
        (at(30, 23), true, 7, None),            // last month
        (at(1, 0), true, 250, None),            // this month
        (at(4, 11), true, 9, None),             // this month, more than 24 h ago
        (at(4, 20), true, 500, None),           // yesterday, within 24 h
        (at(5, 1), true, 1000, None),           // today
        (at(5, 2), true, 5_000_000_000, None),  // today, more than 32 bits
        (at(5, 11), false, 0, Some("timeout")), // today, failed
    ];
    // Recorded out of order: the module's last_* columns keep the latest times.
    for (when, ok, size, err) in writes.iter().rev() {
        record_write(db, m, *when, *ok, *size, 1200, *err).await.unwrap();
    }
    let s = write_summary(db, m, now).await.unwrap();
    assert_eq!(s.bytes_today, 5_000_001_000);
    assert_eq!(s.bytes_month, 5_000_001_759);
    assert_eq!((s.writes_24h, s.errors_24h), (4, 1));
    assert!((s.error_rate_24h - 0.25).abs() < 1e-9, "{}", s.error_rate_24h);
    assert_eq!(
        (s.last_write_at, s.last_ok_at, s.last_error_at),
        (Some(at(5, 11)), Some(at(5, 2)), Some(at(5, 11)))
    );
    assert_eq!(s.last_error.as_deref(), Some("timeout"));
    let empty = write_summary(db, idle, now).await.unwrap();
    assert_eq!((empty.bytes_today, empty.bytes_month, empty.writes_24h), (0, 0, 0));
    assert_eq!((empty.error_rate_24h, empty.last_write_at), (0.0, None));
    assert_eq!(write_summary(db, idle + 50, now).await.unwrap_err().kind(), ErrorKind::NotFound);

    record_health(db, m, at(5, 10), "healthy", Some(42), None).await.unwrap();
    record_health(db, m, at(5, 11), "failing", None, Some("connection refused")).await.unwrap();
    let err = record_health(db, m, at(5, 11), "meh", None, None).await.unwrap_err();
    assert_eq!(err.kind(), ErrorKind::InvalidInput);
    let checks = recent_health(db, m, 10).await.unwrap();
    assert_eq!(
        checks.iter().map(|c| c.status.as_str()).collect::<Vec<_>>(),
        ["failing", "healthy"]
    );
    assert_eq!(checks[1].latency_ms, Some(42));
    append_log(db, m, at(30, 23), "info", None, "probe", "old").await.unwrap();

    // 60 days after 2 December, only the writes and checks from 4 December on remain.
    let pruned = prune_history(db, at(1, 0) + Duration::days(HISTORY_DAYS + 2)).await.unwrap();
    assert_eq!(pruned, 3, "two writes and one log line");
    assert_eq!(recent_health(db, m, 10).await.unwrap().len(), 2);
    dbs.close().await;
}

async fn modules_names_and_deletion(engine: Engine) {
    let (_env, dbs) = setup(engine).await;
    let db = &dbs.records;
    let now = t0();
    let pid = upsert_provider(
        db,
        "aws-s3",
        "Amazon S3",
        "object_storage",
        &json!({"v": 1}),
        "builtin",
        now,
    )
    .await
    .unwrap();
    let again = upsert_provider(
        db,
        "aws-s3",
        "Amazon S3 (new)",
        "object_storage",
        &json!({"v": 2}),
        "dropped",
        now,
    )
    .await
    .unwrap();
    assert_eq!(pid, again);
    let providers = list_providers(db).await.unwrap();
    assert_eq!(providers.len(), 1);
    assert_eq!(
        (providers[0].name.as_str(), providers[0].source.as_str()),
        ("Amazon S3 (new)", "dropped")
    );
    assert_eq!(providers[0].definition, json!({"v": 2}));

    let mut new = NewModule::new("aws-s3", "NAS", json!({"bucket": "cams"}));
    new.secrets_sealed = Some("sealed-secret-value".into());
    new.proof = Some("proof-token".into());
    new.encrypted = true;
    let debug = format!("{new:?}");
    assert!(!debug.contains("sealed-secret-value") && !debug.contains("proof-token"), "{debug}");
    let nas = create_module(db, &new, now).await.unwrap();
    let row = get_module(db, nas).await.unwrap();
    assert!(row.encrypted && !row.draining && row.enabled);
    assert_eq!(row.proof.as_deref(), Some("proof-token"));
    let err =
        create_module(db, &NewModule::new("aws-s3", " nas ", json!({})), now).await.unwrap_err();
    assert_eq!(err.kind(), ErrorKind::Conflict);
    assert_eq!(err.to_string(), "a storage module named \"nas\" already exists");
    let cloud =
        create_module(db, &NewModule::new("aws-s3", "Cloud", json!({})), now).await.unwrap();
    let rename = ModuleUpdate { name: Some("nas".into()), ..ModuleUpdate::default() };
    assert_eq!(
        update_module(db, cloud, &rename, now).await.unwrap_err().kind(),
        ErrorKind::Conflict
    );
    let bad = ModuleUpdate { parallel_uploads: Some(0), ..ModuleUpdate::default() };
    assert_eq!(
        update_module(db, cloud, &bad, now).await.unwrap_err().kind(),
        ErrorKind::InvalidInput
    );
    let later = now + Duration::minutes(1);
    let change = ModuleUpdate {
        priority: Some(0),
        retention_days: Some(Some(30)),
        config: Some(json!({"bucket": "b2"})),
        ..ModuleUpdate::default()
    };
    let updated = update_module(db, cloud, &change, later).await.unwrap();
    assert_eq!(
        (updated.priority, updated.retention_days, updated.updated_at),
        (0, Some(30), later)
    );
    assert_eq!(updated.name, "Cloud", "absent fields are untouched");
    assert_eq!(
        list_modules(db).await.unwrap().iter().map(|m| m.id).collect::<Vec<_>>(),
        vec![cloud, nas]
    );
    assert_eq!(get_module(db, 9999).await.unwrap_err().kind(), ErrorKind::NotFound);

    record_test(db, nas, false, Some("403 from bucket cams"), now).await.unwrap();
    record_test(db, cloud, true, None, later).await.unwrap();
    let (n, c) = (get_module(db, nas).await.unwrap(), get_module(db, cloud).await.unwrap());
    assert_eq!((n.last_test_at, n.last_test_ok_at), (Some(now), None));
    assert_eq!(n.last_test_error.as_deref(), Some("403 from bucket cams"));
    assert_eq!(
        (c.last_test_at, c.last_test_ok_at, c.last_test_error),
        (Some(later), Some(later), None)
    );

    // Delete with queued uploads: refused until they move to the next module of their chain.
    let front = cam(db, "front").await;
    let s = seg(db, front, t0(), false).await;
    enqueue_segment(db, s, front, now).await.unwrap();
    assert_eq!(jobs_of(db, s).await[0].module_id, cloud);
    let err = delete_module(db, cloud).await.unwrap_err();
    assert_eq!(err.kind(), ErrorKind::Conflict);
    assert!(err.to_string().contains("\"Cloud\""), "{err}");
    assert_eq!(move_jobs(db, cloud, later).await.unwrap(), 1);
    let job = &jobs_of(db, s).await[0];
    assert_eq!((job.module_id, job_chain(job)), (nas, vec![nas]));
    delete_module(db, cloud).await.unwrap();
    assert_eq!(get_module(db, cloud).await.unwrap_err().kind(), ErrorKind::NotFound);
    // The last module: its jobs have nowhere to go.
    assert_eq!(move_jobs(db, nas, later).await.unwrap_err().kind(), ErrorKind::Conflict);
    claim_due_jobs(db, later, Duration::minutes(5), 10).await.unwrap();
    assert_eq!(move_jobs(db, nas, later).await.unwrap_err().kind(), ErrorKind::Conflict, "running");
    dbs.close().await;
}

macro_rules! on_every_engine {
    ($($name:ident),+ $(,)?) => {
        mod sqlite {
            $(#[tokio::test] async fn $name() { super::$name(crate::testkit::Engine::Sqlite).await })+
        }
        mod postgres {
            $(#[tokio::test] async fn $name() { super::$name(crate::testkit::Engine::Postgres).await })+
        }
        mod mariadb {
            $(#[tokio::test] async fn $name() { super::$name(crate::testkit::Engine::MySql).await })+
        }
    };
}

on_every_engine!(
    enqueue_with_targets_or_default,
    claim_fail_retry_requeue_finish,
    motion_mode_waits_and_decides,
    remote_copies_and_local_deletion,
    logs_filter_and_search,
    write_stats_and_health,
    modules_names_and_deletion,
);

async fn storage_migration_goes_down_and_up(engine: Engine) {
    use sea_orm_migration::MigratorTrait;
    let (_env, dbs) = setup(engine).await;
    let db = &dbs.records;
    // Down past the storage migration (and the one after it, `segments.has_faces`).
    crate::db::records::migration::Migrator::down(db, Some(2)).await.expect("down");
    let err = list_modules(db).await.unwrap_err();
    assert!(err.to_string().contains("records database"), "the new columns are gone: {err}");
    crate::db::records::migration::Migrator::up(db, None).await.expect("up again");
    let m = module(db, "back", 1).await;
    assert!(!get_module(db, m).await.unwrap().draining);
    dbs.close().await;
}

mod migration {
    #[tokio::test]
    async fn down_and_up_sqlite() {
        super::storage_migration_goes_down_and_up(crate::testkit::Engine::Sqlite).await
    }
    #[tokio::test]
    async fn down_and_up_postgres() {
        super::storage_migration_goes_down_and_up(crate::testkit::Engine::Postgres).await
    }
    #[tokio::test]
    async fn down_and_up_mariadb() {
        super::storage_migration_goes_down_and_up(crate::testkit::Engine::MySql).await
    }
}
