//! The recording service: one supervised pv-media recorder per camera, wired to the records
//! database.
//!
//! [`Nvr`] is the handle the REST API, GraphQL hooks and the server use; it is the only place
//! that joins pv-media (which never touches a database) with `pv_core::recordings`:
//!
//! - [`Nvr::start_all`] runs the recovery pass over every camera's ingest directory (repair or
//!   drop what a crash left, give usable files without a row their row, drop rows whose file is
//!   gone), then starts a recorder for every enabled camera whose mode records.
//! - [`Nvr::apply`] (after a camera is created or changed) restarts the camera's recorder only
//!   when a setting the recorder uses changed; [`Nvr::remove`] stops it.
//! - One task consumes every recorder's events in order: a `segments` row for each finished
//!   (already fsynced) file, `recording_gaps` rows opened and closed, the camera's status,
//!   codec and last-seen time. A row that cannot be written (database outage) is retried with
//!   back-off; the file stays on disk either way and the next recovery pass indexes it, so a
//!   finished segment is never lost.
//! - [`Nvr::retention_pass`] deletes footage past each camera's age and size limits and, when the
//!   file system runs short of `recording.min_free_bytes`, the oldest unprotected segments of
//!   any camera, never one waiting for upload. [`Nvr::run_retention`] repeats it.
//! - [`Nvr::shutdown`] stops every recorder (the open segment is finalised) and waits until
//!   the last event is in the database.
//! - [`check`] is `pentavision check`: the reconciliation report, optionally repairing.

use std::collections::{HashMap, HashSet};
use std::path::{Path, PathBuf};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use chrono::{DateTime, Utc};
use pv_core::Clock;
use pv_core::cameras::{self, CameraObservation};
use pv_core::config::RecordingConfig;
use pv_core::db::Databases;
use pv_core::db::records::camera;
use pv_core::ids::CameraId;
use pv_core::recordings::{self, NewSegment};
use pv_media::layout::{CameraDir, MacAddress};
use pv_media::record::{
    Backend, Recorder, RecorderConfig, RecorderEvent, RecorderState, RecorderStatus,
    SegmentFinished, Transport,
};
use pv_media::recovery;
use pv_media::rtmp::{PushStatus, RtmpConfig, RtmpPush};
use pv_media::snapshot::{self, FramePick, Jpeg, SnapshotError, SnapshotOptions};
use pv_media::tap::StreamTap;
use tokio::sync::mpsc;

/// How often every camera's MAC address is re-read (twice a day).
const MAC_AUDIT_EVERY: Duration = Duration::from_secs(12 * 3600);

/// How often a failed row write is retried before it is left to the next recovery pass.
const ROW_ATTEMPTS: u32 = 6;

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
    audit: Arc<pv_security::audit::AuditLog>,
    /// When each camera's MAC address was last checked.
    mac_checked: Mutex<HashMap<i64, std::time::Instant>>,
    /// Running recorders. Never held across a recorder's start or stop.
    recorders: tokio::sync::Mutex<HashMap<i64, Running>>,
    /// One lock per camera serialising [`Nvr::apply`] and [`Nvr::remove`] for that camera, so
    /// the recorders map itself is only locked for lookups and inserts.
    applying: Mutex<HashMap<i64, Arc<tokio::sync::Mutex<()>>>>,
    /// Each camera's stream tap. Owned here, not by the recorder: it outlives recorder
    /// restarts, so its consumers (RTMP pushes, live viewers) see a new generation, never a
    /// new tap.
    taps: Mutex<HashMap<i64, StreamTap>>,
    /// RTMP pushes by camera, with their (plain) target; they read the camera's tap.
    pushes: tokio::sync::Mutex<HashMap<i64, (String, RtmpPush)>>,
    /// The sender recorders get a clone of; taken at shutdown so the consumer can finish.
    events: Mutex<Option<mpsc::UnboundedSender<RecorderEvent>>>,
    consumer: Mutex<Option<tokio::task::JoinHandle<()>>>,
}

struct Running {
    recorder: Recorder,
    /// Motion detection beside a continuous recorder (its sub stream), flagging segments.
    motion: Option<pv_media::watch::MotionWatcher>,
    /// The configuration the recorder was started with (and the sub stream watched for
    /// motion); a difference restarts it.
    config: RecorderConfig,
    sub_url: Option<String>,
    watcher: tokio::task::JoinHandle<()>,
}

/// A camera's live recorder status, as the API shows it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct LiveStatus {
    /// `new`, `streaming`, `reconnecting`, `failed` or `disabled`.
    pub state: String,
    /// Why (the last error), when reconnecting or failed.
    pub reason: Option<String>,
    /// `gstreamer` or `ffmpeg`.
    pub backend: String,
    /// Since when.
    pub since: DateTime<Utc>,
}

impl From<&RecorderState> for LiveStatus {
    fn from(s: &RecorderState) -> Self {
        Self {
            state: s.status.as_str().to_owned(),
            reason: s.status.reason().map(str::to_owned),
            backend: s.backend.as_str().to_owned(),
            since: s.since,
        }
    }
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
    ) -> Self {
        let (tx, rx) = mpsc::unbounded_channel();
        let inner = Arc::new(Inner {
            dbs,
            data_dir,
            config,
            clock,
            key,
            audit,
            mac_checked: Default::default(),
            recorders: Default::default(),
            applying: Default::default(),
            taps: Default::default(),
            pushes: Default::default(),
            events: Mutex::new(Some(tx)),
            consumer: Mutex::new(None),
        });
        let task = tokio::spawn(consume(inner.dbs.clone(), inner.clock.clone(), rx));
        *lock(&inner.consumer) = Some(task);
        Self { inner }
    }

    /// The data directory segment paths are relative to.
    pub fn data_dir(&self) -> &Path {
        &self.inner.data_dir
    }

    /// Recover every camera's directory, then start the recorders (unless `recording.enabled`
    /// is off). Returns how many recorders run.
    pub async fn start_all(&self) -> pv_core::Result<usize> {
        let cams = cameras::list(&self.inner.dbs.records).await?;
        for cam in &cams {
            match reconcile(&self.inner.dbs.records, &self.inner.data_dir, cam, true, self.now())
                .await
            {
                Ok(r) if !r.is_clean() => {
                    tracing::warn!(camera = cam.id, report = %r.summary(), "recovery pass repaired the index")
                }
                Ok(_) => {}
                Err(e) => tracing::error!(camera = cam.id, error = %e, "recovery pass failed"),
            }
        }
        if !self.inner.config.enabled {
            tracing::info!("recording.enabled is off: no recorder started");
            return Ok(0);
        }
        for cam in &cams {
            self.apply(cam).await;
        }
        for out in cameras::enabled_rtmp_outputs(&self.inner.dbs.records).await? {
            match self.inner.key.open(&out.target_url) {
                Ok(url) => {
                    if let Err(e) = self.start_push(out.camera_id, &url).await {
                        tracing::warn!(camera = out.camera_id, error = %e, "RTMP output not resumed");
                    }
                }
                Err(_) => tracing::error!(
                    camera = out.camera_id,
                    "RTMP target cannot be decrypted with this server's key"
                ),
            }
        }
        Ok(self.inner.recorders.lock().await.len())
    }

    /// Bring the camera's recorder in line with its row: start, restart (a recorder setting
    /// changed) or stop it. Failures to start are stored as the camera's `failed` status.
    pub async fn apply(&self, cam: &camera::Model) {
        let mode = match self.mode_now(cam).await {
            Ok(now) => now.mode,
            Err(e) => {
                tracing::error!(camera = cam.id, error = %e, "cannot read the camera's schedule; using its own mode");
                cam.recording_mode.clone()
            }
        };
        let wanted = self.inner.config.enabled && cam.enabled && mode != "off";
        let zones = match cameras::motion_zones(&self.inner.dbs.records, cam.id).await {
            Ok(rows) => rows.iter().filter_map(zone_spec).collect::<Vec<_>>(),
            Err(e) => {
                tracing::error!(camera = cam.id, error = %e, "cannot read the camera's motion zones");
                Vec::new()
            }
        };
        let serial = self.apply_lock(cam.id);
        let _serial = serial.lock().await;
        let config = if wanted {
            match self.recorder_config(cam, &mode) {
                Ok(mut config) => {
                    config.motion.zones = zones;
                    Some(config)
                }
                Err(reason) => {
                    self.stop_recorder(cam.id).await;
                    self.observe(cam.id, "failed", Some(reason)).await;
                    return;
                }
            }
        } else {
            None
        };
        let sub_url = cam.sub_url.clone();
        {
            let recorders = self.inner.recorders.lock().await;
            if let (Some(running), Some(config)) = (recorders.get(&cam.id), &config)
                && running.config == *config
                && running.sub_url == sub_url
            {
                return;
            }
        }
        // The old recorder finalises its segment without any lock held: other cameras'
        // status, snapshots and pushes do not wait for it.
        self.stop_recorder(cam.id).await;
        let Some(config) = config else {
            let reason = if !self.inner.config.enabled {
                "recording is turned off on this server (recording.enabled)"
            } else if !cam.enabled {
                "the camera is disabled"
            } else if cam.recording_mode == "off" {
                "recording mode is off"
            } else {
                "the schedule says off now"
            };
            if cam.status != "disabled" || cam.status_reason.as_deref() != Some(reason) {
                self.observe(cam.id, "disabled", Some(reason.to_owned())).await;
            }
            return;
        };
        let Some(events) = lock(&self.inner.events).clone() else { return };
        // A continuous camera with a sub stream is watched for motion too (decoding the small
        // stream is cheap); motion-mode recorders run their own watcher.
        let motion = match (&sub_url, config.mode) {
            (Some(sub), pv_media::RecordingMode::Continuous) => {
                let mut w = pv_media::watch::WatcherConfig::for_recorder(&config);
                w.url = sub.clone();
                pv_media::watch::MotionWatcher::start(w, self.inner.clock.clone(), events.clone())
                    .map_err(|e| tracing::warn!(camera = cam.id, error = %e, "motion detection not started"))
                    .ok()
            }
            _ => None,
        };
        let tap = self.tap(cam.id);
        match Recorder::start_with_tap(config.clone(), self.inner.clock.clone(), events, tap) {
            Ok(recorder) => {
                let watcher = tokio::spawn(watch_status(
                    self.inner.dbs.clone(),
                    self.inner.clock.clone(),
                    cam.id,
                    recorder.state(),
                ));
                let running = Running { recorder, motion, config, sub_url, watcher };
                self.inner.recorders.lock().await.insert(cam.id, running);
            }
            Err(e) => self.observe(cam.id, "failed", Some(e.to_string())).await,
        }
    }

    /// The lock serialising changes to one camera's recorder.
    fn apply_lock(&self, camera: i64) -> Arc<tokio::sync::Mutex<()>> {
        lock(&self.inner.applying).entry(camera).or_default().clone()
    }

    /// Stop the camera's recorder, if one runs, without holding the recorders' lock while it
    /// finalises.
    async fn stop_recorder(&self, camera: i64) {
        let old = self.inner.recorders.lock().await.remove(&camera);
        if let Some(old) = old {
            stop(old).await;
        }
    }

    /// The camera's stream tap (created on first use). It lives as long as the camera: every
    /// recorder of the camera feeds it.
    pub fn tap(&self, camera: i64) -> StreamTap {
        lock(&self.inner.taps).entry(camera).or_default().clone()
    }

    /// Stop the camera's recorder (the open segment is finalised and indexed) and its RTMP
    /// push.
    pub async fn remove(&self, camera: i64) {
        let serial = self.apply_lock(camera);
        let _serial = serial.lock().await;
        let push = self.inner.pushes.lock().await.remove(&camera);
        if let Some((_, push)) = push {
            push.stop().await;
        }
        self.stop_recorder(camera).await;
        lock(&self.inner.taps).remove(&camera);
    }

    /// Push the camera's live stream to `url` (`rtmp://` or `rtmps://`), replacing an earlier
    /// push; it reconnects by itself when the endpoint fails. The camera must be recording
    /// (the push reads the recorder's stream from memory, never a second connection).
    pub async fn start_push(&self, camera: i64, url: &str) -> Result<(), NvrError> {
        if !self.inner.recorders.lock().await.contains_key(&camera) {
            return Err(NvrError::NotRecording);
        }
        let tap = self.tap(camera);
        let old = self.inner.pushes.lock().await.remove(&camera);
        if let Some((_, push)) = old {
            push.stop().await;
        }
        let push = RtmpPush::start(tap, RtmpConfig::new(url.to_owned()))
            .map_err(|e| NvrError::Media { kind: e.kind(), message: e.to_string() })?;
        self.inner.pushes.lock().await.insert(camera, (url.to_owned(), push));
        Ok(())
    }

    /// Stop the camera's push; returns whether one ran.
    pub async fn stop_push(&self, camera: i64) -> bool {
        let old = self.inner.pushes.lock().await.remove(&camera);
        match old {
            Some((_, push)) => {
                push.stop().await;
                true
            }
            None => false,
        }
    }

    /// The camera's push: its redacted target and status.
    pub async fn push_status(&self, camera: i64) -> Option<(String, PushStatus)> {
        let pushes = self.inner.pushes.lock().await;
        pushes.get(&camera).map(|(_, p)| (p.target().to_owned(), p.status().borrow().clone()))
    }

    /// A JPEG of the camera's latest key frame, decoded on demand: from the running
    /// recorder's stream in memory, else from the newest finished segment.
    pub async fn snapshot(&self, camera: i64, max_width: Option<u32>) -> Result<Jpeg, NvrError> {
        let options = SnapshotOptions {
            max_width,
            max_age: Some(Duration::from_secs(30)),
            ..SnapshotOptions::default()
        };
        let tap = lock(&self.inner.taps).get(&camera).cloned();
        if let Some(tap) = tap.filter(|t| t.key_frame().is_some()) {
            let opts = options.clone();
            let live = tokio::task::spawn_blocking(move || snapshot::from_tap(&tap, &opts))
                .await
                .map_err(|_| NvrError::internal("snapshot task failed"))?;
            match live {
                Ok(jpeg) => return Ok(jpeg),
                Err(e @ SnapshotError::Stale { .. }) => {
                    tracing::debug!(camera, error = %e, "live frame too old; using the last segment");
                }
                Err(e) => return Err(NvrError::Media { kind: e.kind(), message: e.to_string() }),
            }
        }
        let newest = recordings::newest_segment(&self.inner.dbs.records, CameraId(camera))
            .await
            .map_err(NvrError::Core)?
            .ok_or(NvrError::NoFootage)?;
        let path = self.inner.data_dir.join(&newest.path);
        tokio::task::spawn_blocking(move || snapshot::from_file(&path, FramePick::Last, &options))
            .await
            .map_err(|_| NvrError::internal("snapshot task failed"))?
            .map_err(|e| NvrError::Media { kind: e.kind(), message: e.to_string() })
    }

    /// Join the camera's footage of `[from, to)` into one MP4 at `out` without transcoding
    /// (from the key frame at or before `from`; recording gaps are skipped).
    pub async fn export(
        &self,
        camera: i64,
        from: DateTime<Utc>,
        to: DateTime<Utc>,
        out: &Path,
    ) -> Result<pv_media::export::ExportSummary, NvrError> {
        let segs =
            recordings::segments_in_range(&self.inner.dbs.records, CameraId(camera), from, to)
                .await
                .map_err(NvrError::Core)?;
        if segs.is_empty() {
            return Err(NvrError::NoFootage);
        }
        // Positions on the joined timeline: each segment follows the previous one.
        let mut offset = Duration::ZERO;
        let (mut start, mut end) = (None, None);
        for seg in &segs {
            let len = Duration::from_millis(u64::try_from(seg.duration_ms).unwrap_or(0));
            let at = |t: DateTime<Utc>| {
                let into = (t - seg.started_at).to_std().unwrap_or(Duration::ZERO);
                offset + into.min(len)
            };
            if start.is_none() && from < seg.ended_at {
                start = Some(at(from));
            }
            if end.is_none() && to <= seg.ended_at {
                end = Some(at(to));
            }
            offset += len;
        }
        let options = pv_media::export::ExportOptions {
            from: start.filter(|s| !s.is_zero()),
            to: end,
            ..Default::default()
        };
        let files: Vec<PathBuf> = segs.iter().map(|s| self.inner.data_dir.join(&s.path)).collect();
        let out = out.to_path_buf();
        tokio::task::spawn_blocking(move || pv_media::export::export(&files, &out, &options))
            .await
            .map_err(|_| NvrError::internal("export task failed"))?
            .map_err(|e| NvrError::Media { kind: e.kind(), message: e.to_string() })
    }

    /// The live status of the camera's recorder; None: no recorder runs for it.
    pub async fn status(&self, camera: i64) -> Option<LiveStatus> {
        let recorders = self.inner.recorders.lock().await;
        recorders.get(&camera).map(|r| LiveStatus::from(&*r.recorder.state().borrow()))
    }

    /// Stop every push and recorder and wait until their last events are stored.
    pub async fn shutdown(&self) {
        let pushes: Vec<RtmpPush> =
            self.inner.pushes.lock().await.drain().map(|(_, (_, p))| p).collect();
        futures_util::future::join_all(pushes.into_iter().map(RtmpPush::stop)).await;
        let all: Vec<Running> = self.inner.recorders.lock().await.drain().map(|(_, r)| r).collect();
        futures_util::future::join_all(all.into_iter().map(stop)).await;
        lock(&self.inner.events).take();
        let consumer = lock(&self.inner.consumer).take();
        if let Some(task) = consumer {
            let _ = task.await;
        }
    }

    /// Delete what retention allows: per camera, segments older than its retention days and
    /// beyond its byte limit; then, while the file system has less than
    /// `recording.min_free_bytes` free, the oldest deletable segments of any camera. Protected
    /// segments and segments waiting for upload are never deleted. Returns what was deleted.
    pub async fn retention_pass(&self) -> pv_core::Result<RetentionReport> {
        let db = &self.inner.dbs.records;
        let now = self.now();
        let mut report = RetentionReport::default();
        for cam in cameras::list(db).await? {
            let camera = CameraId(cam.id);
            let days = cam.retention_days.map_or(self.inner.config.retention_days, |d| d as u32);
            if days > 0 {
                let before = now - chrono::Duration::days(i64::from(days));
                loop {
                    let batch =
                        recordings::deletable_segments(db, Some(camera), Some(before), 200).await?;
                    if batch.is_empty() {
                        break;
                    }
                    for seg in batch {
                        self.delete_segment(&seg, &mut report.by_age).await?;
                    }
                }
            }
            if let Some(limit) = cam.retention_max_bytes {
                let mut total = recordings::camera_bytes(db, camera).await?;
                while total > limit {
                    let batch = recordings::deletable_segments(db, Some(camera), None, 50).await?;
                    if batch.is_empty() {
                        break;
                    }
                    for seg in batch {
                        if total <= limit {
                            break;
                        }
                        total -= seg.size_bytes;
                        self.delete_segment(&seg, &mut report.by_size).await?;
                    }
                }
            }
        }
        let want = self.inner.config.min_free_bytes;
        while free_bytes(&self.inner.data_dir).is_some_and(|free| free < want) {
            let batch = recordings::deletable_segments(db, None, None, 20).await?;
            if batch.is_empty() {
                tracing::error!(
                    min_free_bytes = want,
                    "the disk is nearly full and no segment may be deleted (all protected or waiting for upload)"
                );
                break;
            }
            for seg in batch {
                self.delete_segment(&seg, &mut report.for_space).await?;
            }
        }
        if report.total() > 0 {
            tracing::info!(
                by_age = report.by_age,
                by_size = report.by_size,
                for_space = report.for_space,
                "retention deleted segments"
            );
        }
        Ok(report)
    }

    /// Until `stop` resolves: follow the cameras' schedules (every 20 s a camera whose
    /// scheduled mode changed is restarted in the new mode) and run [`Nvr::retention_pass`]
    /// every `recording.retention_interval_seconds`.
    pub async fn run_background(&self, stop: impl Future<Output = ()>) {
        let retention_every = Duration::from_secs(self.inner.config.retention_interval_seconds);
        let schedule_every = Duration::from_secs(20);
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
                () = tokio::time::sleep(schedule_every.min(retention_every)) => {}
            }
            if self.inner.config.enabled {
                match cameras::list(&self.inner.dbs.records).await {
                    Ok(mut cams) => {
                        let mut moved = false;
                        for cam in &cams {
                            let due = lock(&self.inner.mac_checked)
                                .get(&cam.id)
                                .is_none_or(|t| t.elapsed() >= MAC_AUDIT_EVERY);
                            if due {
                                moved |= matches!(
                                    self.check_mac(cam).await,
                                    cameras::MacOutcome::Learned(_)
                                        | cameras::MacOutcome::Changed { .. }
                                );
                            }
                        }
                        // A new MAC address moves the ingest directory: re-read those rows.
                        if moved {
                            cams = cameras::list(&self.inner.dbs.records).await.unwrap_or(cams);
                        }
                        for cam in &cams {
                            self.apply(cam).await;
                        }
                    }
                    Err(e) => tracing::warn!(error = %e, "cannot read cameras for their schedules"),
                }
            }
        }
    }

    /// Read the camera's MAC address from the kernel neighbour table and store it (what
    /// create, edit and the twice-daily audit do). A change of a known address is an alert:
    /// an audit event `camera.mac_changed` and a warning in the log; a first sighting is not.
    pub async fn check_mac(&self, cam: &camera::Model) -> cameras::MacOutcome {
        lock(&self.inner.mac_checked).insert(cam.id, std::time::Instant::now());
        let url = cam.main_url.clone();
        let found = tokio::task::spawn_blocking(move || {
            let ip = pv_media::mac::url_host_ip(&url)?;
            Some((ip, pv_media::mac::lookup(ip)?))
        })
        .await
        .ok()
        .flatten();
        let Some((ip, mac)) = found else { return cameras::MacOutcome::Unknown };
        self.record_mac(cam, &ip.to_string(), &mac.to_string()).await
    }

    /// Store a MAC address seen for the camera at `ip` (see [`Nvr::check_mac`]).
    pub async fn record_mac(
        &self,
        cam: &camera::Model,
        ip: &str,
        mac: &str,
    ) -> cameras::MacOutcome {
        let outcome =
            match cameras::record_mac(&self.inner.dbs.records, cam.id, Some(ip), mac, self.now())
                .await
            {
                Ok(o) => o,
                Err(e) => {
                    tracing::error!(camera = cam.id, error = %e, "cannot store the MAC address");
                    return cameras::MacOutcome::Unknown;
                }
            };
        if let cameras::MacOutcome::Changed { old, new } = &outcome {
            tracing::warn!(camera = cam.id, name = %cam.name, ip, old, new, "camera MAC address changed: the device at this address was replaced");
            let event = pv_security::audit::Event::new(
                "system",
                "camera.mac_changed",
                "camera",
                &cam.id.to_string(),
            )
            .details(
                serde_json::json!({ "name": cam.name, "ip": ip, "old_mac": old, "new_mac": new }),
            );
            if let Err(e) = self.inner.audit.append(event, self.now()).await {
                tracing::error!(error = %e, "cannot write audit event");
            }
        }
        outcome
    }

    /// The camera's time zone: its own, else its property's, else UTC.
    pub async fn camera_timezone(&self, cam: &camera::Model) -> chrono_tz::Tz {
        if let Some(tz) = cam.timezone.as_deref().and_then(|t| t.parse().ok()) {
            return tz;
        }
        if let Some(pid) = cam.property_id {
            use sea_orm::EntityTrait;
            if let Ok(Some(p)) = pv_core::db::users::property::Entity::find_by_id(pid)
                .one(&self.inner.dbs.users)
                .await
                && let Ok(tz) = p.timezone.parse()
            {
                return tz;
            }
        }
        chrono_tz::UTC
    }

    /// What the camera records now: the highest-priority schedule window active at this
    /// moment (each window in its own time zone, else the camera's), else its own mode.
    pub async fn mode_now(&self, cam: &camera::Model) -> pv_core::Result<ModeNow> {
        let tz = self.camera_timezone(cam).await;
        let now = self.now();
        let windows = cameras::schedules(&self.inner.dbs.records, cam.id).await?;
        let active = windows
            .iter()
            .filter_map(|w| {
                let entry = schedule_entry(w).ok()?;
                let wtz: chrono_tz::Tz =
                    w.timezone.as_deref().and_then(|t| t.parse().ok()).unwrap_or(tz);
                pv_media::schedule::is_active(&entry, now.with_timezone(&wtz).naive_local())
                    .then_some(entry)
            })
            .max_by_key(|e| (e.priority(), e.mode().retention_rank()));
        Ok(ModeNow {
            mode: active
                .map_or_else(|| cam.recording_mode.clone(), |e| e.mode().as_str().to_owned()),
            from_schedule: active.is_some(),
            timezone: tz.name().to_owned(),
            local_time: now.with_timezone(&tz).naive_local(),
        })
    }

    async fn delete_segment(
        &self,
        seg: &pv_core::db::records::segment::Model,
        counter: &mut u64,
    ) -> pv_core::Result<()> {
        let path = self.inner.data_dir.join(&seg.path);
        match std::fs::remove_file(&path) {
            Ok(()) => {}
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => {}
            Err(e) => return Err(pv_core::Error::io(path, e)),
        }
        recordings::delete_segment(&self.inner.dbs.records, pv_core::ids::SegmentId(seg.id))
            .await?;
        *counter += 1;
        Ok(())
    }

    fn now(&self) -> DateTime<Utc> {
        self.inner.clock.now()
    }

    async fn observe(&self, camera: i64, status: &str, reason: Option<String>) {
        let seen = CameraObservation {
            status: status.to_owned(),
            status_reason: reason,
            backend: None,
            video_codec: None,
            audio_codec: None,
            width: None,
            height: None,
            last_seen_at: None,
        };
        if let Err(e) = cameras::observe(&self.inner.dbs.records, camera, &seen, self.now()).await {
            tracing::error!(camera, error = %e, "cannot store the camera status");
        }
    }

    fn recorder_config(&self, cam: &camera::Model, mode: &str) -> Result<RecorderConfig, String> {
        let id = CameraId(cam.id);
        let mut c = RecorderConfig::new(
            id,
            cam.main_url.clone(),
            self.inner.data_dir.clone(),
            camera_dir(cam).map_err(|e| e.to_string())?,
        );
        c.username = cam.username.clone();
        c.password = match &cam.password {
            Some(sealed) => Some(self.inner.key.open(sealed).map_err(|_| {
                "the stored stream password cannot be decrypted with this server's key; set it again"
                    .to_owned()
            })?),
            None => None,
        };
        c.transport = if cam.transport == "udp" { Transport::Udp } else { Transport::Tcp };
        let seconds = cam
            .segment_seconds
            .map_or(self.inner.config.segment_seconds, |s| u32::try_from(s).unwrap_or(60));
        c.segment_duration = Duration::from_secs(u64::from(seconds.max(1)));
        c.fragment_duration = c.fragment_duration.min(c.segment_duration);
        if cam.recorder_backend.as_deref() == Some("ffmpeg") {
            c.backend = Backend::Ffmpeg;
        }
        c.ffmpeg_program = self.inner.config.ffmpeg_program.clone();
        if mode == "motion" {
            c.mode = pv_media::RecordingMode::Motion;
            c.pre_roll = Duration::from_secs(u64::try_from(cam.pre_roll_seconds).unwrap_or(5));
            c.post_roll = Duration::from_secs(u64::try_from(cam.post_roll_seconds).unwrap_or(10));
            c.motion_url = cam.sub_url.clone();
        }
        Ok(c)
    }
}

/// What the recording service could not do.
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
    /// A media failure (snapshot, export, push), with its kind.
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

fn lock<T>(m: &Mutex<T>) -> std::sync::MutexGuard<'_, T> {
    m.lock().unwrap_or_else(|p| p.into_inner())
}

async fn stop(running: Running) {
    if let Some(motion) = running.motion {
        motion.stop().await;
    }
    running.recorder.stop().await;
    // Let the watcher store the final `disabled` status before it goes.
    let _ = tokio::time::timeout(Duration::from_secs(2), running.watcher).await;
}

/// The camera's ingest directory: by MAC address when known, else by id.
pub fn camera_dir(cam: &camera::Model) -> pv_media::Result<CameraDir> {
    let mac = cam.mac_address.as_deref().and_then(|m| m.parse::<MacAddress>().ok());
    CameraDir::new(CameraId(cam.id), mac)
}

/// Store status changes of one recorder until it stops.
async fn watch_status(
    dbs: Databases,
    clock: Arc<dyn Clock>,
    camera: i64,
    mut state: tokio::sync::watch::Receiver<RecorderState>,
) {
    loop {
        let current = state.borrow_and_update().clone();
        let seen = CameraObservation {
            status: current.status.as_str().to_owned(),
            status_reason: current.status.reason().map(str::to_owned),
            backend: Some(current.backend.as_str().to_owned()),
            video_codec: None,
            audio_codec: None,
            width: None,
            height: None,
            last_seen_at: None,
        };
        if let Err(e) = cameras::observe(&dbs.records, camera, &seen, clock.now()).await {
            tracing::error!(camera, error = %e, "cannot store the camera status");
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
) {
    while let Some(event) = rx.recv().await {
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
                recordings::insert_segment(db, &new_segment(seg, motion), clock.now()).await?;
            }
            let seen = CameraObservation {
                status: "streaming".into(),
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

/// What a camera records at this moment, and its local time.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ModeNow {
    /// `continuous`, `motion` or `off`.
    pub mode: String,
    /// A schedule window decided it (else the camera's own mode).
    pub from_schedule: bool,
    /// The camera's IANA time zone.
    pub timezone: String,
    /// The camera's local time now.
    pub local_time: chrono::NaiveDateTime,
}

/// A stored motion zone as the detector's zone (None: a malformed polygon, skipped).
pub fn zone_spec(
    z: &pv_core::db::records::motion_zone::Model,
) -> Option<pv_media::motion::ZoneSpec> {
    let polygon = parse_polygon(&z.polygon)?;
    Some(pv_media::motion::ZoneSpec {
        id: Some(z.id),
        polygon,
        sensitivity: z.sensitivity.clamp(0.0, 1.0),
        is_mask: z.is_mask,
    })
}

/// `[[x, y], …]` with at least three corners, each in 0..=1.
pub fn parse_polygon(v: &serde_json::Value) -> Option<Vec<(f64, f64)>> {
    let points: Vec<(f64, f64)> = v
        .as_array()?
        .iter()
        .map(|p| {
            let p = p.as_array()?;
            let (x, y) = (p.first()?.as_f64()?, p.get(1)?.as_f64()?);
            (p.len() == 2 && (0.0..=1.0).contains(&x) && (0.0..=1.0).contains(&y)).then_some((x, y))
        })
        .collect::<Option<_>>()?;
    (points.len() >= 3).then_some(points)
}

/// A stored window as a checked schedule entry.
pub fn schedule_entry(
    w: &pv_core::db::records::recording_schedule::Model,
) -> pv_media::Result<pv_media::schedule::ScheduleEntry> {
    let mode: pv_media::RecordingMode = w.mode.parse()?;
    let days = u8::try_from(w.days_of_week).unwrap_or(0);
    let start = u16::try_from(w.start_minute).unwrap_or(u16::MAX);
    let end = u16::try_from(w.end_minute).unwrap_or(u16::MAX);
    pv_media::schedule::ScheduleEntry::new(mode, days, start, end, w.priority)
}

/// What retention deleted.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct RetentionReport {
    /// Segments past their camera's age limit.
    pub by_age: u64,
    /// Segments beyond their camera's size limit.
    pub by_size: u64,
    /// Segments deleted because the disk was nearly full.
    pub for_space: u64,
}

impl RetentionReport {
    /// All deletions.
    pub fn total(&self) -> u64 {
        self.by_age + self.by_size + self.for_space
    }
}

/// Free bytes for unprivileged users on the file system holding `dir`.
fn free_bytes(dir: &Path) -> Option<u64> {
    let st = rustix::fs::statvfs(dir).ok()?;
    Some(st.f_bavail.saturating_mul(st.f_frsize))
}

/// One camera's reconciliation of files and rows.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct CameraCheck {
    /// The camera.
    pub camera: i64,
    /// Its name.
    pub name: String,
    /// Indexed segments whose file is fine.
    pub ok: usize,
    /// Files cut short by a crash (repaired when repairing).
    pub repaired: Vec<String>,
    /// Files with nothing playable (deleted when repairing).
    pub discarded: Vec<String>,
    /// Usable files without a row (indexed when repairing).
    pub unindexed: Vec<String>,
    /// Rows whose file is gone (removed when repairing).
    pub missing: Vec<String>,
    /// An unfinished file written in the last minute: a recorder is writing it right now.
    pub in_progress: Vec<String>,
    /// Whether the problems above were repaired.
    pub repairing: bool,
}

impl CameraCheck {
    /// No problem found (a file in progress is not a problem).
    pub fn is_clean(&self) -> bool {
        self.repaired.is_empty()
            && self.discarded.is_empty()
            && self.unindexed.is_empty()
            && self.missing.is_empty()
    }

    /// One line: counts per finding.
    pub fn summary(&self) -> String {
        format!(
            "{} ok, {} repaired, {} discarded, {} unindexed, {} missing, {} in progress",
            self.ok,
            self.repaired.len(),
            self.discarded.len(),
            self.unindexed.len(),
            self.missing.len(),
            self.in_progress.len()
        )
    }
}

/// Reconcile one camera's ingest directory with its rows; with `repair`, fix what is found
/// (truncate or delete broken files, index unindexed ones, drop rows without a file).
pub async fn reconcile(
    db: &sea_orm::DatabaseConnection,
    data_dir: &Path,
    cam: &camera::Model,
    repair: bool,
    now: DateTime<Utc>,
) -> pv_core::Result<CameraCheck> {
    let camera = CameraId(cam.id);
    let dir = camera_dir(cam).map_err(|e| pv_core::Error::InvalidInput(e.to_string()))?;
    let report =
        if repair { recovery::scan(data_dir, &dir) } else { recovery::inspect(data_dir, &dir) }
            .map_err(|e| pv_core::Error::InvalidInput(e.to_string()))?;
    let rows = recordings::segment_paths(db, camera).await?;
    let known: HashSet<String> = rows.iter().cloned().collect();
    let mut check = CameraCheck {
        camera: cam.id,
        name: cam.name.clone(),
        repairing: repair,
        ..Default::default()
    };
    let fresh = |path: &Path| {
        std::fs::metadata(path)
            .and_then(|m| m.modified())
            .ok()
            .and_then(|t| t.elapsed().ok())
            .is_some_and(|age| age < Duration::from_secs(60))
    };
    for (path, _reason) in &report.discarded {
        let key = rel(data_dir, path);
        if !repair && fresh(path) {
            check.in_progress.push(key);
        } else {
            check.discarded.push(key);
        }
    }
    for file in report.usable() {
        let key = recovery::path_key(&file.relative_path);
        if let recovery::Outcome::Repaired { .. } = file.outcome {
            if !repair && fresh(&file.path) {
                check.in_progress.push(key);
                continue;
            }
            check.repaired.push(key.clone());
        }
        if known.contains(&key) {
            check.ok += 1;
        } else {
            check.unindexed.push(key);
            if repair {
                recordings::insert_segment(db, &new_segment(&file.to_segment(), false), now)
                    .await?;
            }
        }
    }
    // Rows whose file is gone, wherever the row points (an older directory of the camera too).
    for row in &rows {
        if !data_dir.join(row).is_file() {
            check.missing.push(row.clone());
        }
    }
    if repair && !check.missing.is_empty() {
        recordings::delete_segments_by_path(db, camera, &check.missing).await?;
    }
    // Outside the scanned directory, a row whose file exists counts as ok.
    check.ok += rows
        .iter()
        .filter(|r| !check.missing.contains(r))
        .filter(|r| !report.files.iter().any(|f| &recovery::path_key(&f.relative_path) == *r))
        .count();
    if repair {
        for file in &check.unindexed {
            tracing::info!(camera = cam.id, path = %file, "recovery: indexed a segment that had no row");
        }
        for row in &check.missing {
            tracing::warn!(camera = cam.id, path = %row, "recovery: dropped the row of a missing file");
        }
    }
    Ok(check)
}

fn rel(data_dir: &Path, path: &Path) -> String {
    recovery::path_key(path.strip_prefix(data_dir).unwrap_or(path))
}

/// `pentavision check`: reconcile every camera (repairing when asked).
pub async fn check(
    db: &sea_orm::DatabaseConnection,
    data_dir: &Path,
    repair: bool,
    now: DateTime<Utc>,
) -> pv_core::Result<Vec<CameraCheck>> {
    let mut out = Vec::new();
    for cam in cameras::list(db).await? {
        out.push(reconcile(db, data_dir, &cam, repair, now).await?);
    }
    Ok(out)
}
