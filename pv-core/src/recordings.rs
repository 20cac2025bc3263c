//! The segment index in the records database: write a row for a finished segment, list a
//! camera's segments in a time range, list paths for the start-up reconciliation, and open and
//! close recording gaps.
//!
//! Callers pass plain values (the recorder in pv-media emits them; the composition layer calls
//! these functions), so pv-core stays free of media types. A segment row is written only after
//! the recorder has fsynced the file and its directory.
//!
//! ```no_run
//! # async fn demo(db: &sea_orm::DatabaseConnection) -> pv_core::Result<()> {
//! use chrono::{Duration, Utc};
//! use pv_core::ids::CameraId;
//! use pv_core::recordings::{self, NewSegment};
//! let now = Utc::now();
//! let seg = NewSegment {
//!     camera: CameraId(1),
//!     started_at: now - Duration::seconds(60),
//!     ended_at: now,
//!     media_start_ns: 0,
//!     media_end_ns: 60_000_000_000,
//!     duration_ms: 60_000,
//!     size_bytes: 7_500_000,
//!     video_codec: "h264".into(),
//!     audio_codec: None,
//!     width: Some(1920),
//!     height: Some(1080),
//!     path: "cameras/id-1/20261123T101500Z-1.mp4".into(),
//!     motion: false,
//!     end_reason: "duration".into(),
//! };
//! let id = recordings::insert_segment(db, &seg, now).await?;
//! let hour = recordings::segments_in_range(db, CameraId(1), now - Duration::hours(1), now).await?;
//! # Ok(()) }
//! ```

use chrono::{DateTime, Utc};
use sea_orm::sea_query::Expr;
use sea_orm::{
    ActiveModelTrait, ColumnTrait, Condition, ConnectionTrait, EntityTrait, PaginatorTrait,
    QueryFilter, QueryOrder, QuerySelect, QueryTrait, Set,
};

use crate::db::records::{motion_event, recording_gap, segment, upload_queue};
use crate::error::{Error, Result};
use crate::ids::{CameraId, SegmentId};

fn db_err(source: sea_orm::DbErr) -> Error {
    Error::Database { db: "records", source }
}

/// A finished segment, as plain values (everything the `segments` row needs).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct NewSegment {
    /// The camera.
    pub camera: CameraId,
    /// Wall-clock time of the first frame.
    pub started_at: DateTime<Utc>,
    /// Wall-clock time of the end of the last frame.
    pub ended_at: DateTime<Utc>,
    /// Pipeline time of the first frame, in nanoseconds.
    pub media_start_ns: i64,
    /// Pipeline time of the end of the last frame, in nanoseconds.
    pub media_end_ns: i64,
    /// Media duration in milliseconds.
    pub duration_ms: i64,
    /// File size in bytes.
    pub size_bytes: i64,
    /// Video codec (`h264`, `h265`).
    pub video_codec: String,
    /// Audio codec; None: no audio.
    pub audio_codec: Option<String>,
    /// Frame width.
    pub width: Option<i32>,
    /// Frame height.
    pub height: Option<i32>,
    /// Path relative to the data dir, `/`-separated.
    pub path: String,
    /// Motion was detected during the segment.
    pub motion: bool,
    /// `duration`, `eos`, `error`, `shutdown` or `recovered`.
    pub end_reason: String,
}

/// Insert the row of a finished segment; `now` is the row's creation time.
pub async fn insert_segment(
    db: &impl ConnectionTrait,
    seg: &NewSegment,
    now: DateTime<Utc>,
) -> Result<SegmentId> {
    if seg.ended_at < seg.started_at || seg.duration_ms < 0 || seg.size_bytes < 0 {
        return Err(Error::InvalidInput(format!(
            "segment {} ends before it starts or has a negative size",
            seg.path
        )));
    }
    let row = segment::ActiveModel {
        camera_id: Set(seg.camera.0),
        started_at: Set(seg.started_at),
        ended_at: Set(seg.ended_at),
        media_start_ns: Set(seg.media_start_ns),
        media_end_ns: Set(seg.media_end_ns),
        duration_ms: Set(seg.duration_ms),
        size_bytes: Set(seg.size_bytes),
        video_codec: Set(seg.video_codec.clone()),
        audio_codec: Set(seg.audio_codec.clone()),
        width: Set(seg.width),
        height: Set(seg.height),
        path: Set(seg.path.clone()),
        storage_key: Set(None),
        motion: Set(seg.motion),
        end_reason: Set(seg.end_reason.clone()),
        protected: Set(false),
        created_at: Set(now),
        // Set, not left to the column default: SQLite's RETURNING can give NULL for a column
        // that ALTER TABLE added with a default (seen intermittently in the tests).
        has_faces: Set(false),
        local_deleted_at: Set(None),
        ..Default::default()
    }
    .insert(db)
    .await
    .map_err(db_err)?;
    Ok(SegmentId(row.id))
}

/// A camera's segments that overlap `[from, to)`, oldest first.
pub async fn segments_in_range(
    db: &impl ConnectionTrait,
    camera: CameraId,
    from: DateTime<Utc>,
    to: DateTime<Utc>,
) -> Result<Vec<segment::Model>> {
    segment::Entity::find()
        .filter(segment::Column::CameraId.eq(camera.0))
        .filter(segment::Column::StartedAt.lt(to))
        .filter(segment::Column::EndedAt.gt(from))
        .order_by_asc(segment::Column::StartedAt)
        .order_by_asc(segment::Column::Id)
        .all(db)
        .await
        .map_err(db_err)
}

/// A camera's newest segment, if it has any.
pub async fn newest_segment(
    db: &impl ConnectionTrait,
    camera: CameraId,
) -> Result<Option<segment::Model>> {
    segment::Entity::find()
        .filter(segment::Column::CameraId.eq(camera.0))
        .order_by_desc(segment::Column::StartedAt)
        .order_by_desc(segment::Column::Id)
        .one(db)
        .await
        .map_err(db_err)
}

/// Every path of a camera's segments whose file should be on this disk (for reconciling rows
/// with files after a crash), sorted. Segments kept only as remote copies (`local_deleted_at`
/// set) are left out: their file is gone on purpose.
pub async fn segment_paths(db: &impl ConnectionTrait, camera: CameraId) -> Result<Vec<String>> {
    segment::Entity::find()
        .select_only()
        .column(segment::Column::Path)
        .filter(segment::Column::CameraId.eq(camera.0))
        .filter(segment::Column::LocalDeletedAt.is_null())
        .order_by_asc(segment::Column::Path)
        .into_tuple::<String>()
        .all(db)
        .await
        .map_err(db_err)
}

/// Whether the camera has a row for `path`.
pub async fn has_segment(db: &impl ConnectionTrait, camera: CameraId, path: &str) -> Result<bool> {
    let n = segment::Entity::find()
        .filter(segment::Column::CameraId.eq(camera.0))
        .filter(segment::Column::Path.eq(path))
        .count(db)
        .await
        .map_err(db_err)?;
    Ok(n > 0)
}

/// Delete a camera's rows whose file is gone (as found by the recovery pass); returns how many.
pub async fn delete_segments_by_path(
    db: &impl ConnectionTrait,
    camera: CameraId,
    paths: &[String],
) -> Result<u64> {
    if paths.is_empty() {
        return Ok(0);
    }
    let res = segment::Entity::delete_many()
        .filter(segment::Column::CameraId.eq(camera.0))
        .filter(segment::Column::Path.is_in(paths.iter().cloned()))
        .exec(db)
        .await
        .map_err(db_err)?;
    Ok(res.rows_affected)
}

/// Open a gap (recording stopped unexpectedly at `started_at`); returns its id.
pub async fn open_gap(
    db: &impl ConnectionTrait,
    camera: CameraId,
    started_at: DateTime<Utc>,
    reason: &str,
) -> Result<i64> {
    let row = recording_gap::ActiveModel {
        camera_id: Set(camera.0),
        started_at: Set(started_at),
        ended_at: Set(None),
        reason: Set(reason.to_owned()),
        ..Default::default()
    }
    .insert(db)
    .await
    .map_err(db_err)?;
    Ok(row.id)
}

/// Close every open gap of a camera at `ended_at` (recording resumed); returns how many.
/// A recorder has at most one open gap; more can remain after a crash, and all end when
/// recording resumes.
pub async fn close_open_gaps(
    db: &impl ConnectionTrait,
    camera: CameraId,
    ended_at: DateTime<Utc>,
) -> Result<u64> {
    let res = recording_gap::Entity::update_many()
        .col_expr(recording_gap::Column::EndedAt, Expr::value(ended_at))
        .filter(recording_gap::Column::CameraId.eq(camera.0))
        .filter(recording_gap::Column::EndedAt.is_null())
        .exec(db)
        .await
        .map_err(db_err)?;
    Ok(res.rows_affected)
}

/// A camera's gaps that overlap `[from, to)` (open gaps extend to now), oldest first.
pub async fn gaps_in_range(
    db: &impl ConnectionTrait,
    camera: CameraId,
    from: DateTime<Utc>,
    to: DateTime<Utc>,
) -> Result<Vec<recording_gap::Model>> {
    recording_gap::Entity::find()
        .filter(recording_gap::Column::CameraId.eq(camera.0))
        .filter(recording_gap::Column::StartedAt.lt(to))
        .filter(
            Condition::any()
                .add(recording_gap::Column::EndedAt.is_null())
                .add(recording_gap::Column::EndedAt.gt(from)),
        )
        .order_by_asc(recording_gap::Column::StartedAt)
        .all(db)
        .await
        .map_err(db_err)
}

/// One segment row.
pub async fn get_segment(db: &impl ConnectionTrait, id: SegmentId) -> Result<segment::Model> {
    segment::Entity::find_by_id(id.0)
        .one(db)
        .await
        .map_err(db_err)?
        .ok_or_else(|| Error::NotFound(format!("recording {id} does not exist")))
}

/// Segments of the cameras in `cameras` (None: every camera) overlapping `[from, to)`, oldest
/// first, at most `limit`.
pub async fn list_segments(
    db: &impl ConnectionTrait,
    cameras: Option<&[i64]>,
    from: DateTime<Utc>,
    to: DateTime<Utc>,
    limit: u64,
) -> Result<Vec<segment::Model>> {
    let mut q = segment::Entity::find()
        .filter(segment::Column::StartedAt.lt(to))
        .filter(segment::Column::EndedAt.gt(from));
    if let Some(ids) = cameras {
        q = q.filter(segment::Column::CameraId.is_in(ids.iter().copied()));
    }
    q.order_by_asc(segment::Column::StartedAt)
        .order_by_asc(segment::Column::Id)
        .limit(limit)
        .all(db)
        .await
        .map_err(db_err)
}

/// Flag a camera's segments that overlap `[from, to]` as holding motion; returns how many.
pub async fn flag_motion(
    db: &impl ConnectionTrait,
    camera: CameraId,
    from: DateTime<Utc>,
    to: DateTime<Utc>,
) -> Result<u64> {
    let res = segment::Entity::update_many()
        .col_expr(segment::Column::Motion, Expr::value(true))
        .filter(segment::Column::CameraId.eq(camera.0))
        .filter(segment::Column::StartedAt.lte(to))
        .filter(segment::Column::EndedAt.gte(from))
        .exec(db)
        .await
        .map_err(db_err)?;
    Ok(res.rows_affected)
}

/// Store a motion event that began at `started_at` (open while `ended_at` is None); returns
/// its id.
pub async fn open_motion_event(
    db: &impl ConnectionTrait,
    camera: CameraId,
    started_at: DateTime<Utc>,
    score: f64,
) -> Result<i64> {
    let row = motion_event::ActiveModel {
        camera_id: Set(camera.0),
        zone_id: Set(None),
        started_at: Set(started_at),
        ended_at: Set(None),
        peak_score: Set(score),
        segment_id: Set(None),
        ..Default::default()
    }
    .insert(db)
    .await
    .map_err(db_err)?;
    Ok(row.id)
}

/// End a camera's open motion events at `ended_at` with their peak score; returns how many.
pub async fn close_motion_events(
    db: &impl ConnectionTrait,
    camera: CameraId,
    ended_at: DateTime<Utc>,
    peak_score: f64,
) -> Result<u64> {
    let res = motion_event::Entity::update_many()
        .col_expr(motion_event::Column::EndedAt, Expr::value(ended_at))
        .col_expr(motion_event::Column::PeakScore, Expr::value(peak_score))
        .filter(motion_event::Column::CameraId.eq(camera.0))
        .filter(motion_event::Column::EndedAt.is_null())
        .exec(db)
        .await
        .map_err(db_err)?;
    Ok(res.rows_affected)
}

/// Motion events of the cameras in `cameras` (None: all) overlapping `[from, to)`, oldest
/// first, at most `limit`.
pub async fn motion_events_in_range(
    db: &impl ConnectionTrait,
    cameras: Option<&[i64]>,
    from: DateTime<Utc>,
    to: DateTime<Utc>,
    limit: u64,
) -> Result<Vec<motion_event::Model>> {
    let mut q = motion_event::Entity::find().filter(motion_event::Column::StartedAt.lt(to)).filter(
        Condition::any()
            .add(motion_event::Column::EndedAt.is_null())
            .add(motion_event::Column::EndedAt.gt(from)),
    );
    if let Some(ids) = cameras {
        q = q.filter(motion_event::Column::CameraId.is_in(ids.iter().copied()));
    }
    q.order_by_asc(motion_event::Column::StartedAt).limit(limit).all(db).await.map_err(db_err)
}

/// Segments that retention may delete, oldest first, at most `limit`: not protected, not
/// waiting for (or in the middle of) an upload to a storage target, and whose local file is
/// still there (`local_deleted_at` unset: segments kept only as remote copies are not local
/// retention's business). `camera` None: every camera; `before` None: any age.
pub async fn deletable_segments(
    db: &impl ConnectionTrait,
    camera: Option<CameraId>,
    before: Option<DateTime<Utc>>,
    limit: u64,
) -> Result<Vec<segment::Model>> {
    let waiting = upload_queue::Entity::find()
        .select_only()
        .column(upload_queue::Column::SegmentId)
        .filter(upload_queue::Column::Status.is_in(["pending", "uploading", "failed"]))
        .into_query();
    let mut q = segment::Entity::find()
        .filter(segment::Column::Protected.eq(false))
        .filter(segment::Column::LocalDeletedAt.is_null())
        .filter(segment::Column::Id.not_in_subquery(waiting));
    if let Some(camera) = camera {
        q = q.filter(segment::Column::CameraId.eq(camera.0));
    }
    if let Some(before) = before {
        q = q.filter(segment::Column::EndedAt.lt(before));
    }
    q.order_by_asc(segment::Column::StartedAt)
        .order_by_asc(segment::Column::Id)
        .limit(limit)
        .all(db)
        .await
        .map_err(db_err)
}

/// Bytes of a camera's segments on this disk (remote-only ones not counted). (Summed here
/// rather than with SQL `SUM`, whose result type differs between the three engines.)
pub async fn camera_bytes(db: &impl ConnectionTrait, camera: CameraId) -> Result<i64> {
    let sizes: Vec<i64> = segment::Entity::find()
        .select_only()
        .column(segment::Column::SizeBytes)
        .filter(segment::Column::CameraId.eq(camera.0))
        .filter(segment::Column::LocalDeletedAt.is_null())
        .into_tuple()
        .all(db)
        .await
        .map_err(db_err)?;
    Ok(sizes.iter().sum())
}

/// Delete one segment row (after its file was removed).
pub async fn delete_segment(db: &impl ConnectionTrait, id: SegmentId) -> Result<()> {
    segment::Entity::delete_by_id(id.0).exec(db).await.map_err(db_err)?;
    Ok(())
}

#[cfg(all(test, feature = "testkit"))]
mod tests {
    use chrono::{Duration, TimeZone};
    use sea_orm::Set;

    use super::*;
    use crate::db::Databases;
    use crate::db::records::camera;
    use crate::testkit::{Engine, TestEnv};

    fn segment_at(camera: CameraId, start: DateTime<Utc>, i: i64) -> NewSegment {
        NewSegment {
            camera,
            started_at: start,
            ended_at: start + Duration::seconds(60),
            media_start_ns: i * 60_000_000_000,
            media_end_ns: (i + 1) * 60_000_000_000,
            duration_ms: 60_000,
            size_bytes: 1_000 + i,
            video_codec: "h264".into(),
            audio_codec: (i == 1).then(|| "aac".to_owned()),
            width: Some(1280),
            height: Some(720),
            path: format!("cameras/id-{camera}/{i:02}.mp4"),
            motion: i == 2,
            end_reason: "duration".into(),
        }
    }

    async fn segment_index_round_trips(engine: Engine) {
        let env = TestEnv::new(engine).await;
        let dbs = Databases::connect(&env.config).await.expect("connect");
        dbs.migrate().await.expect("migrate");
        let db = &dbs.records;
        let t0 = Utc.with_ymd_and_hms(2026, 11, 23, 10, 0, 0).unwrap();
        let mut cams = Vec::new();
        for name in ["front", "back"] {
            let cam = camera::ActiveModel {
                name: Set(name.into()),
                main_url: Set(format!("rtsp://127.0.0.1/{name}")),
                created_at: Set(t0),
                updated_at: Set(t0),
                ..Default::default()
            }
            .insert(db)
            .await
            .expect("camera");
            cams.push(CameraId(cam.id));
        }
        let (front, back) = (cams[0], cams[1]);
        for i in 0..4 {
            let start = t0 + Duration::seconds(60 * i);
            insert_segment(db, &segment_at(front, start, i), start + Duration::seconds(61))
                .await
                .expect("insert");
        }
        insert_segment(db, &segment_at(back, t0, 9), t0).await.expect("insert other camera");

        // Overlap semantics: [10:01:30, 10:02:30) touches segments 1 and 2.
        let got =
            segments_in_range(db, front, t0 + Duration::seconds(90), t0 + Duration::seconds(150))
                .await
                .unwrap();
        assert_eq!(
            got.iter().map(|s| s.path.as_str()).collect::<Vec<_>>(),
            [format!("cameras/id-{front}/01.mp4"), format!("cameras/id-{front}/02.mp4")]
        );
        assert_eq!(got[0].started_at, t0 + Duration::seconds(60));
        assert_eq!(got[0].audio_codec.as_deref(), Some("aac"));
        assert!(got[1].motion && !got[1].protected);
        assert_eq!(got[1].width, Some(1280));
        // A range ending exactly where a segment starts does not include it.
        let none = segments_in_range(db, front, t0 - Duration::seconds(60), t0).await.unwrap();
        assert!(none.is_empty());

        let paths = segment_paths(db, front).await.unwrap();
        assert_eq!(paths.len(), 4);
        assert!(paths.windows(2).all(|w| w[0] < w[1]));
        let gone = vec![paths[3].clone(), "cameras/elsewhere.mp4".to_owned()];
        assert_eq!(delete_segments_by_path(db, front, &gone).await.unwrap(), 1);
        assert_eq!(delete_segments_by_path(db, back, &paths).await.unwrap(), 0, "per camera");
        assert_eq!(segment_paths(db, front).await.unwrap().len(), 3);
        assert_eq!(segment_paths(db, back).await.unwrap().len(), 1);

        let mut bad = segment_at(front, t0, 7);
        bad.ended_at = t0 - Duration::seconds(1);
        let err = insert_segment(db, &bad, t0).await.unwrap_err();
        assert_eq!(err.kind(), crate::ErrorKind::InvalidInput);

        // Gaps: one open, then closed when recording resumes.
        let lost = t0 + Duration::seconds(240);
        let gap = open_gap(db, front, lost, "rtspsrc: Could not read from resource").await.unwrap();
        assert!(gap > 0);
        let open = gaps_in_range(db, front, lost + Duration::hours(1), lost + Duration::hours(2))
            .await
            .unwrap();
        assert_eq!(open.len(), 1, "an open gap extends to now");
        assert_eq!(open[0].ended_at, None);
        let back_at = lost + Duration::seconds(42);
        assert_eq!(close_open_gaps(db, front, back_at).await.unwrap(), 1);
        assert_eq!(close_open_gaps(db, front, back_at).await.unwrap(), 0);
        let gaps = gaps_in_range(db, front, t0, t0 + Duration::hours(1)).await.unwrap();
        assert_eq!(gaps.len(), 1);
        assert_eq!(gaps[0].ended_at, Some(back_at));
        assert_eq!(gaps[0].started_at, lost);
        assert!(
            gaps_in_range(db, front, back_at, back_at + Duration::hours(1))
                .await
                .unwrap()
                .is_empty()
        );
        assert!(gaps_in_range(db, back, t0, t0 + Duration::hours(1)).await.unwrap().is_empty());
        dbs.close().await;
    }

    #[tokio::test]
    async fn segment_index_sqlite() {
        segment_index_round_trips(Engine::Sqlite).await;
    }

    #[tokio::test]
    async fn segment_index_postgres() {
        segment_index_round_trips(Engine::Postgres).await;
    }

    #[tokio::test]
    async fn segment_index_mysql() {
        segment_index_round_trips(Engine::MySql).await;
    }
}
