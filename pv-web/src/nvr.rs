//! The recording service: one supervised pv-media recorder per camera, wired to the records
//! database. It is the only place that joins pv-media (which never touches a database) with
//! `pv_core::recordings`.
//!
//! [`Nvr`] is the handle the REST API, GraphQL hooks and the server use: a thin facade over
//! services, each owning its state and its lock (`nvr/*.rs`, each file states its invariants):
//!
//! - `recorders` — the running recorders, the per-camera apply locks, each camera's stream
//!   tap. A recorder restarts only when the [`pv_media::record::RecorderConfig`] it would be
//!   started with differs; no lock is held across a recorder's stop.
//! - `events` — the one consumer of every recorder's events: segment rows (only for fsynced
//!   files), gaps, motion events, the camera's status; retried, never lost.
//! - `schedules` — what a camera records now (weekly windows in their time zones), its motion
//!   zones.
//! - `retention` — deletes footage past age and size limits and when the disk runs short;
//!   never a protected segment or one waiting for upload.
//! - `mac` — the MAC address audit: a changed address is an audit event.
//! - `footage` — the files: where a camera's segments go, snapshots, timeline thumbnails
//!   (cached), exports, deleting files.
//! - `outputs` — RTMP pushes reading the camera's tap (live sessions next).
//! - `recovery` — reconciling ingest directories with rows before any recorder starts
//!   ([`check`] is `pentavision check`).
//!
//! No service calls another while holding its own lock; the facade calls them in turn.

mod events;
mod footage;
mod mac;
mod outputs;
mod recorders;
mod recovery;
mod retention;
mod schedules;
pub mod storage;

use std::path::{Path, PathBuf};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use chrono::{DateTime, Utc};
use pv_core::Clock;
use pv_core::cameras::{self, MacOutcome};
use pv_core::config::RecordingConfig;
use pv_core::db::Databases;
use pv_core::db::records::camera;
use pv_core::ids::CameraId;
use pv_media::rtmp::PushStatus;
use pv_media::snapshot::Jpeg;
use pv_media::tap::StreamTap;

pub use events::new_segment;
pub use footage::{THUMB_DECODERS, Thumbnail, camera_dir};
pub use recorders::LiveStatus;
pub use recovery::{CameraCheck, check, reconcile};
pub use retention::RetentionReport;
pub use schedules::{ModeNow, parse_polygon, schedule_entry, zone_spec};
pub use storage::StorageService;

use events::RecorderEvents;
use footage::Footage;
use mac::MacAudit;
use outputs::Outputs;
use recorders::Recorders;
use retention::Retention;
use schedules::Schedules;

/// How often the schedules are re-evaluated (and due MAC addresses re-read).
const SCHEDULE_EVERY: Duration = Duration::from_secs(20);

/// The recording service handle. Cheap to clone.
#[derive(Clone)]
pub struct Nvr {
    inner: Arc<Inner>,
}

impl std::fmt::Debug for Nvr {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Nvr").field("data_dir", &self.inner.data_dir).finish_non_exhaustive()
    }
}

struct Inner {
    dbs: Databases,
    data_dir: PathBuf,
    config: RecordingConfig,
    clock: Arc<dyn Clock>,
    key: pv_security::seal::ServerKey,
    recorders: Recorders,
    events: RecorderEvents,
    schedules: Schedules,
    retention: Retention,
    mac: MacAudit,
    footage: Footage,
    outputs: Outputs,
    storage: Arc<StorageService>,
}

impl Nvr {
    /// A service with no recorder running (call [`Nvr::start_all`] to start them). Spawns the
    /// event consumer on the current tokio runtime.
    pub fn new(
        dbs: Databases,
        data_dir: PathBuf,
        config: RecordingConfig,
        clock: Arc<dyn Clock>,
        key: pv_security::seal::ServerKey,
        audit: Arc<pv_security::audit::AuditLog>,
        storage: pv_core::config::StorageConfig,
    ) -> Self {
        let inner = Inner {
            events: RecorderEvents::start(dbs.clone(), clock.clone()),
            recorders: Recorders::new(
                dbs.clone(),
                data_dir.clone(),
                config.clone(),
                clock.clone(),
                key.clone(),
            ),
            schedules: Schedules::new(dbs.clone(), clock.clone()),
            retention: Retention::new(dbs.clone(), data_dir.clone(), config.clone(), clock.clone()),
            mac: MacAudit::new(dbs.clone(), clock.clone(), audit),
            footage: Footage::new(dbs.clone(), data_dir.clone()),
            outputs: Outputs::default(),
            storage: StorageService::new(
                dbs.clone(),
                data_dir.clone(),
                clock.clone(),
                key.clone(),
                storage,
            ),
            dbs,
            data_dir,
            config,
            clock,
            key,
        };
        Self { inner: Arc::new(inner) }
    }

    /// Storage modules, the upload queue and remote copies.
    pub fn storage(&self) -> &Arc<StorageService> {
        &self.inner.storage
    }

    /// The data directory segment paths are relative to.
    pub fn data_dir(&self) -> &Path {
        &self.inner.data_dir
    }

    /// Recover every camera's directory, then start the recorders (unless `recording.enabled`
    /// is off) and resume the enabled RTMP outputs. Returns how many recorders run.
    pub async fn start_all(&self) -> pv_core::Result<usize> {
        let db = &self.inner.dbs.records;
        let cams = cameras::list(db).await?;
        recovery::recover_all(db, &self.inner.data_dir, &cams, self.inner.clock.now()).await;
        self.inner.storage.start().await;
        if !self.inner.config.enabled {
            tracing::info!("recording.enabled is off: no recorder started");
            return Ok(0);
        }
        for cam in &cams {
            self.apply(cam).await;
        }
        for out in cameras::enabled_rtmp_outputs(db).await? {
            let camera = CameraId(out.camera_id);
            match self.inner.key.open(&out.target_url) {
                Ok(url) => {
                    if let Err(e) = self.start_push(camera, &url).await {
                        tracing::warn!(%camera, error = %e, "RTMP output not resumed");
                    }
                }
                Err(_) => tracing::error!(
                    %camera,
                    "RTMP target cannot be decrypted with this server's key"
                ),
            }
        }
        Ok(self.inner.recorders.count().await)
    }

    /// Bring the camera's recorder in line with its row: start, restart (the recorder
    /// configuration it would get changed) or stop it. Failures to start are stored as the
    /// camera's `failed` status.
    pub async fn apply(&self, cam: &camera::Model) {
        let mode = match self.inner.schedules.mode_now(cam).await {
            Ok(now) => now.mode,
            Err(e) => {
                tracing::error!(camera = cam.id, error = %e, "cannot read the camera's schedule; using its own mode");
                schedules::own_mode(cam)
            }
        };
        let zones = self.inner.schedules.zones(cam).await;
        self.inner.recorders.apply(cam, mode, zones, self.inner.events.sender()).await;
    }

    /// After a camera was created or changed: re-read its MAC address (a new one moves the
    /// ingest directory; the twice-daily audit catches up on cameras not reachable now), apply
    /// the row to its recorder, and return the row as it is now (with the status that set).
    pub async fn camera_changed(&self, camera: CameraId) -> Result<camera::Model, NvrError> {
        let db = &self.inner.dbs.records;
        let cam = cameras::get(db, camera.0).await?;
        let cam = match self.inner.mac.check(&cam).await {
            MacOutcome::Learned(_) | MacOutcome::Changed { .. } => {
                cameras::get(db, camera.0).await?
            }
            MacOutcome::Unknown | MacOutcome::Unchanged => cam,
        };
        self.apply(&cam).await;
        Ok(cameras::get(db, camera.0).await?)
    }

    /// The camera's stream tap (created on first use). It lives as long as the camera: every
    /// recorder of the camera feeds it.
    pub fn tap(&self, camera: CameraId) -> StreamTap {
        self.inner.recorders.tap(camera)
    }

    /// Stop the camera's RTMP push and its recorder (the open segment is finalised and
    /// indexed), and drop its tap.
    pub async fn remove(&self, camera: CameraId) {
        self.inner.outputs.stop(camera).await;
        self.inner.recorders.remove(camera).await;
    }

    /// Remove the camera: stop it ([`Nvr::remove`]), delete its row (and by cascade its
    /// segment rows, gaps, zones, schedules and outputs) and its segment files. Returns how
    /// many files were deleted.
    pub async fn delete_camera(&self, camera: CameraId) -> Result<u64, NvrError> {
        self.remove(camera).await;
        self.inner.footage.delete_camera(camera).await
    }

    /// Push the camera's live stream to `url` (`rtmp://` or `rtmps://`), replacing an earlier
    /// push; it reconnects by itself when the endpoint fails. The camera must be recording
    /// (the push reads the camera's tap in memory, never a second connection).
    pub async fn start_push(&self, camera: CameraId, url: &str) -> Result<(), NvrError> {
        if !self.inner.recorders.is_running(camera).await {
            return Err(NvrError::NotRecording);
        }
        self.inner.outputs.start(camera, self.tap(camera), url).await
    }

    /// Stop the camera's push; returns whether one ran.
    pub async fn stop_push(&self, camera: CameraId) -> bool {
        self.inner.outputs.stop(camera).await
    }

    /// The camera's push: its redacted target and status.
    pub async fn push_status(&self, camera: CameraId) -> Option<(String, PushStatus)> {
        self.inner.outputs.status(camera).await
    }

    /// A JPEG of the camera's latest key frame, decoded on demand: from its tap (the running
    /// recorder's stream in memory; a recorder still connecting is given up to 5 s for its
    /// first key frame), else from the newest finished segment.
    pub async fn snapshot(
        &self,
        camera: CameraId,
        max_width: Option<u32>,
    ) -> Result<Jpeg, NvrError> {
        let tap = self.inner.recorders.snapshot_tap(camera, Duration::from_secs(5)).await;
        self.inner.footage.snapshot(camera, tap, max_width).await
    }

    /// A timeline thumbnail: the camera's key frame at or before `at`, at most `width` pixels
    /// wide, from the finished segment covering `at` or the segment being recorded; cached in
    /// memory. [`NvrError::NoFootage`] when nothing was recorded then.
    pub async fn thumbnail(
        &self,
        camera: CameraId,
        at: DateTime<Utc>,
        width: u32,
    ) -> Result<Thumbnail, NvrError> {
        let tap = self.inner.recorders.existing_tap(camera);
        self.inner.footage.thumbnail(camera, at, width, self.inner.clock.now(), tap).await
    }

    /// Join the camera's footage of `[from, to)` into one MP4 at `out` without transcoding
    /// (from the key frame at or before `from`; recording gaps are skipped).
    pub async fn export(
        &self,
        camera: CameraId,
        from: DateTime<Utc>,
        to: DateTime<Utc>,
        out: &Path,
    ) -> Result<pv_media::export::ExportSummary, NvrError> {
        self.inner.footage.export(camera, from, to, out).await
    }

    /// The live status of the camera's recorder; None: no recorder runs for it.
    pub async fn status(&self, camera: CameraId) -> Option<LiveStatus> {
        self.inner.recorders.status(camera).await
    }

    /// Whether motion is going on at the camera now (its motion watcher saw motion start and
    /// not yet end).
    pub fn motion_now(&self, camera: CameraId) -> bool {
        self.inner.events.motion_now(camera)
    }

    /// Stop every push and recorder and wait until their last events are stored.
    pub async fn shutdown(&self) {
        self.inner.outputs.stop_all().await;
        self.inner.recorders.stop_all().await;
        self.inner.events.finish().await;
    }

    /// Delete what retention allows: per camera, segments older than its retention days and
    /// beyond its byte limit; then, while the file system has less than
    /// `recording.min_free_bytes` free, the oldest deletable segments of any camera. Protected
    /// segments and segments waiting for upload are never deleted. Returns what was deleted.
    pub async fn retention_pass(&self) -> pv_core::Result<RetentionReport> {
        self.inner.retention.pass().await
    }

    /// Until `stop` resolves: follow the cameras' schedules (every 20 s a camera whose
    /// scheduled mode changed is restarted in the new mode; due MAC addresses are re-read
    /// first) and run [`Nvr::retention_pass`] every `recording.retention_interval_seconds`.
    pub async fn run_background(&self, stop: impl Future<Output = ()>) {
        let retention_every = Duration::from_secs(self.inner.config.retention_interval_seconds);
        let mut next_retention = tokio::time::Instant::now();
        tokio::pin!(stop);
        loop {
            if tokio::time::Instant::now() >= next_retention {
                if let Err(e) = self.retention_pass().await {
                    tracing::error!(error = %e, "retention pass failed");
                }
                next_retention = tokio::time::Instant::now() + retention_every;
            }
            tokio::select! {
                () = &mut stop => return,
                () = tokio::time::sleep(SCHEDULE_EVERY.min(retention_every)) => {}
            }
            if self.inner.config.enabled {
                self.follow_schedules().await;
            }
        }
    }

    /// One turn of the schedule loop: re-read the MAC addresses that are due, then bring every
    /// camera's recorder in line with what it records now.
    async fn follow_schedules(&self) {
        let db = &self.inner.dbs.records;
        match cameras::list(db).await {
            Ok(mut cams) => {
                // A new MAC address moves the ingest directory: re-read those rows.
                if self.inner.mac.audit_due(&cams).await {
                    cams = cameras::list(db).await.unwrap_or(cams);
                }
                for cam in &cams {
                    self.apply(cam).await;
                }
            }
            Err(e) => tracing::warn!(error = %e, "cannot read cameras for their schedules"),
        }
    }

    /// Read the camera's MAC address from the kernel neighbour table and store it (what
    /// create, edit and the twice-daily audit do). A change of a known address is an alert:
    /// an audit event `camera.mac_changed` and a warning in the log; a first sighting is not.
    pub async fn check_mac(&self, cam: &camera::Model) -> MacOutcome {
        self.inner.mac.check(cam).await
    }

    /// Store a MAC address seen for the camera at `ip` (see [`Nvr::check_mac`]).
    pub async fn record_mac(&self, cam: &camera::Model, ip: &str, mac: &str) -> MacOutcome {
        self.inner.mac.record(cam, ip, mac).await
    }

    /// The camera's time zone: its own, else its property's, else UTC.
    pub async fn camera_timezone(&self, cam: &camera::Model) -> chrono_tz::Tz {
        self.inner.schedules.timezone(cam).await
    }

    /// What the camera records now: the highest-priority schedule window active at this
    /// moment (each window in its own time zone, else the camera's), else its own mode.
    pub async fn mode_now(&self, cam: &camera::Model) -> pv_core::Result<ModeNow> {
        self.inner.schedules.mode_now(cam).await
    }
}

/// What the recording service could not do. Each error keeps its kind: a database or disk
/// failure is never reported as the caller's mistake.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum NvrError {
    /// The camera has no running recorder.
    #[error("the camera is not recording (enable it, or choose a recording mode other than off)")]
    NotRecording,
    /// Nothing has been recorded in the range asked for.
    #[error("no footage was recorded for that camera and time")]
    NoFootage,
    /// A database failure.
    #[error(transparent)]
    Core(pv_core::Error),
    /// A media failure (snapshot, export, push, recovery scan), with its kind.
    #[error("{message}")]
    Media {
        /// Its classification.
        kind: pv_core::ErrorKind,
        /// What happened.
        message: String,
    },
}

impl NvrError {
    fn internal(message: &str) -> Self {
        NvrError::Media { kind: pv_core::ErrorKind::Internal, message: message.to_owned() }
    }

    /// Classify this error.
    pub fn kind(&self) -> pv_core::ErrorKind {
        match self {
            NvrError::NotRecording => pv_core::ErrorKind::Conflict,
            NvrError::NoFootage => pv_core::ErrorKind::NotFound,
            NvrError::Core(e) => e.kind(),
            NvrError::Media { kind, .. } => *kind,
        }
    }
}

impl From<pv_core::Error> for NvrError {
    fn from(e: pv_core::Error) -> Self {
        NvrError::Core(e)
    }
}

impl From<pv_media::Error> for NvrError {
    fn from(e: pv_media::Error) -> Self {
        NvrError::Media { kind: e.kind(), message: e.to_string() }
    }
}

/// Lock a std mutex, ignoring poisoning (its data is a map that stays consistent).
fn lock<T>(m: &Mutex<T>) -> std::sync::MutexGuard<'_, T> {
    m.lock().unwrap_or_else(|p| p.into_inner())
}
