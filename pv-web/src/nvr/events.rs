//! Recorder events: everything the recorders report, written to the records database.
//!
//! Owns the event channel's sender (cloned into every recorder and motion watcher; taken at
//! shutdown) and the one consumer task, each behind a std mutex held only to clone or take
//! them.
//!
//! Invariants:
//! - One task consumes every recorder's events, in order: a `segments` row for each finished
//!   file (sent only after the file and its directory are fsynced), `recording_gaps` rows
//!   opened and closed, motion events (and the segments they overlap flagged), the camera's
//!   status, codec, size and last-seen time.
//! - A row that cannot be written (database outage) is retried with back-off; the file stays
//!   on disk either way and the next recovery pass indexes it, so a finished segment is never
//!   lost. A retry never indexes a file twice.
//! - At shutdown the sender is dropped only after every recorder stopped, and the consumer
//!   drains the channel before [`RecorderEvents::finish`] returns.
//! - Status columns are written from [`RecorderStatus`] only (`as_str`, `reason`).

use std::collections::HashSet;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use chrono::{DateTime, Utc};
use pv_core::Clock;
use pv_core::cameras::{self, CameraObservation};
use pv_core::db::Databases;
use pv_core::ids::CameraId;
use pv_core::recordings::{self, NewSegment};
use pv_media::record::{RecorderEvent, RecorderState, RecorderStatus, SegmentFinished};
use pv_media::recovery;
use sea_orm::TransactionTrait;
use tokio::sync::mpsc;

use super::lock;

/// How often a failed row write is tried before it is left to the next recovery pass.
const ROW_ATTEMPTS: u32 = 6;

/// The event channel and its consumer (see the module documentation).
pub(super) struct RecorderEvents {
    /// The sender recorders get a clone of; taken at shutdown so the consumer can finish.
    sender: Mutex<Option<mpsc::UnboundedSender<RecorderEvent>>>,
    consumer: Mutex<Option<tokio::task::JoinHandle<()>>>,
    /// Cameras with motion going on now (between a `MotionStarted` and its `MotionEnded`,
    /// which every watcher sends, also when it stops).
    motion: Arc<Mutex<HashSet<CameraId>>>,
}

impl RecorderEvents {
    /// Spawn the consumer on the current tokio runtime.
    pub(super) fn start(dbs: Databases, clock: Arc<dyn Clock>) -> Self {
        let (tx, rx) = mpsc::unbounded_channel();
        let motion = Arc::new(Mutex::new(HashSet::new()));
        let task = tokio::spawn(consume(dbs, clock, rx, motion.clone()));
        Self { sender: Mutex::new(Some(tx)), consumer: Mutex::new(Some(task)), motion }
    }

    /// Whether motion is going on at the camera now.
    pub(super) fn motion_now(&self, camera: CameraId) -> bool {
        lock(&self.motion).contains(&camera)
    }

    /// Where a new recorder sends its events; None once shutting down.
    pub(super) fn sender(&self) -> Option<mpsc::UnboundedSender<RecorderEvent>> {
        lock(&self.sender).clone()
    }

    /// Close the channel and wait until the consumer stored the last event (call after every
    /// recorder stopped).
    pub(super) async fn finish(&self) {
        lock(&self.sender).take();
        let consumer = lock(&self.consumer).take();
        if let Some(task) = consumer {
            let _ = task.await;
        }
    }
}

/// Store a status the service decided for the camera (not its recorder): `failed` when no
/// recorder could be configured or started, `disabled` ([`RecorderStatus::Stopped`]) when the
/// camera should not record now. `why` overrides the status's own reason.
pub(super) async fn store_status(
    dbs: &Databases,
    now: DateTime<Utc>,
    camera: CameraId,
    status: &RecorderStatus,
    why: Option<&str>,
) {
    let seen = CameraObservation {
        status: Some(status.as_str().to_owned()),
        status_reason: why.or(status.reason()).map(str::to_owned),
        backend: None,
        video_codec: None,
        audio_codec: None,
        width: None,
        height: None,
        last_seen_at: None,
    };
    if let Err(e) = cameras::observe(&dbs.records, camera.0, &seen, now).await {
        tracing::error!(%camera, error = %e, "cannot store the camera status");
    }
}

/// Store status changes of one recorder until it stops.
pub(super) async fn watch_status(
    dbs: Databases,
    clock: Arc<dyn Clock>,
    camera: CameraId,
    mut state: tokio::sync::watch::Receiver<RecorderState>,
) {
    loop {
        let current = state.borrow_and_update().clone();
        let seen = CameraObservation {
            status: Some(current.status.as_str().to_owned()),
            status_reason: current.status.reason().map(str::to_owned),
            backend: Some(current.backend.as_str().to_owned()),
            video_codec: None,
            audio_codec: None,
            width: None,
            height: None,
            last_seen_at: None,
        };
        if let Err(e) = cameras::observe(&dbs.records, camera.0, &seen, clock.now()).await {
            tracing::error!(%camera, error = %e, "cannot store the camera status");
        }
        if current.status == RecorderStatus::Stopped || state.changed().await.is_err() {
            return;
        }
    }
}

/// The one consumer of every recorder's events, in order.
async fn consume(
    dbs: Databases,
    clock: Arc<dyn Clock>,
    mut rx: mpsc::UnboundedReceiver<RecorderEvent>,
    motion: Arc<Mutex<HashSet<CameraId>>>,
) {
    while let Some(event) = rx.recv().await {
        count(&event);
        match &event {
            RecorderEvent::MotionStarted { camera, .. } => {
                lock(&motion).insert(*camera);
            }
            RecorderEvent::MotionEnded { camera, .. } => {
                lock(&motion).remove(camera);
            }
            _ => {}
        }
        let mut delay = Duration::from_millis(200);
        for attempt in 1..=ROW_ATTEMPTS {
            match store(&dbs, clock.as_ref(), &event).await {
                Ok(()) => break,
                Err(e) if attempt == ROW_ATTEMPTS => {
                    tracing::error!(error = %e, ?event, "cannot store recorder event; the next recovery pass indexes the file");
                }
                Err(e) => {
                    tracing::warn!(error = %e, attempt, "cannot store recorder event; retrying");
                    tokio::time::sleep(delay).await;
                    delay = (delay * 2).min(Duration::from_secs(5));
                }
            }
        }
    }
}

/// Per-camera counters for `/metrics`: segments and bytes written, gaps (lost connections),
/// motion events.
fn count(event: &RecorderEvent) {
    match event {
        RecorderEvent::SegmentFinished(seg) => {
            let camera = seg.camera.0.to_string();
            metrics::counter!("pentavision_segments_written_total", "camera" => camera.clone())
                .increment(1);
            metrics::counter!("pentavision_segment_bytes_written_total", "camera" => camera)
                .increment(seg.size_bytes);
        }
        RecorderEvent::GapStarted { camera, .. } => {
            metrics::counter!("pentavision_recording_gaps_total", "camera" => camera.0.to_string())
                .increment(1);
        }
        RecorderEvent::MotionStarted { camera, .. } => {
            metrics::counter!("pentavision_motion_events_total", "camera" => camera.0.to_string())
                .increment(1);
        }
        _ => {}
    }
}

async fn store(dbs: &Databases, clock: &dyn Clock, event: &RecorderEvent) -> pv_core::Result<()> {
    let db = &dbs.records;
    match event {
        RecorderEvent::SegmentFinished(seg) => {
            // A retry after a lost reply must not index the file twice.
            let path = recovery::path_key(&seg.relative_path);
            if !recordings::has_segment(db, seg.camera, &path).await? {
                // Motion that began (or is still going on) during the segment flags it too.
                let motion = seg.motion
                    || !recordings::motion_events_in_range(
                        db,
                        Some(&[seg.camera.0]),
                        seg.started_at,
                        seg.ended_at,
                        1,
                    )
                    .await?
                    .is_empty();
                // The row and its upload jobs in one transaction: a segment is never indexed
                // without being queued for its storage targets.
                let txn = db.begin().await.map_err(records_err)?;
                let id = recordings::insert_segment(&txn, &new_segment(seg, motion), clock.now())
                    .await?;
                pv_core::storage::enqueue_segment(&txn, id.0, seg.camera.0, clock.now()).await?;
                txn.commit().await.map_err(records_err)?;
            }
            let seen = CameraObservation {
                // The recorder's status is stored by its watcher, in order; this event may come
                // after a stop.
                status: None,
                status_reason: None,
                backend: Some(seg.backend.as_str().to_owned()),
                video_codec: Some(seg.video_codec.clone()),
                audio_codec: seg.audio_codec.clone(),
                width: seg.width.and_then(|w| i32::try_from(w).ok()),
                height: seg.height.and_then(|h| i32::try_from(h).ok()),
                last_seen_at: Some(seg.ended_at),
            };
            cameras::observe(db, seg.camera.0, &seen, clock.now()).await?;
        }
        RecorderEvent::GapStarted { camera, at, reason } => {
            recordings::open_gap(db, *camera, *at, reason).await?;
        }
        RecorderEvent::GapEnded { camera, ended_at, .. } => {
            recordings::close_open_gaps(db, *camera, *ended_at).await?;
        }
        RecorderEvent::MotionStarted { camera, at, score } => {
            recordings::open_motion_event(db, *camera, *at, *score).await?;
        }
        RecorderEvent::MotionEnded { camera, started_at, ended_at, peak_score } => {
            recordings::close_motion_events(db, *camera, *ended_at, *peak_score).await?;
            recordings::flag_motion(db, *camera, *started_at, *ended_at).await?;
        }
        other => tracing::debug!(event = ?other, "recorder event not stored"),
    }
    Ok(())
}

/// A finished segment as the row pv-core stores.
pub fn new_segment(seg: &SegmentFinished, motion: bool) -> NewSegment {
    NewSegment {
        camera: seg.camera,
        started_at: seg.started_at,
        ended_at: seg.ended_at,
        media_start_ns: seg.media_start_ns,
        media_end_ns: seg.media_end_ns,
        duration_ms: seg.duration_ms,
        size_bytes: i64::try_from(seg.size_bytes).unwrap_or(i64::MAX),
        video_codec: seg.video_codec.clone(),
        audio_codec: seg.audio_codec.clone(),
        width: seg.width.and_then(|w| i32::try_from(w).ok()),
        height: seg.height.and_then(|h| i32::try_from(h).ok()),
        path: recovery::path_key(&seg.relative_path),
        motion,
        end_reason: seg.end_reason.as_str().to_owned(),
    }
}

fn records_err(source: sea_orm::DbErr) -> pv_core::Error {
    pv_core::Error::Database { db: "records", source }
}
