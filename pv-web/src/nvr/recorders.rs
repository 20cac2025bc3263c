//! Recorders: one supervised pv-media recorder per camera whose mode records now, a motion
//! watcher beside a continuous recorder with a sub stream, and each camera's stream tap.
//!
//! Owns `running` (the recorders by camera; a tokio mutex), `applying` (one tokio mutex per
//! camera) and `taps` (each camera's [`StreamTap`]).
//!
//! Invariants:
//! - At most one recorder per camera. It runs only while recording is on for the server, the
//!   camera is enabled and its mode now is not off; otherwise the camera's status is `disabled`
//!   with the reason, and a recorder that cannot be configured or started leaves it `failed`.
//! - A recorder restarts only when the [`RecorderConfig`] it would be started with (with the
//!   sub stream watched for motion beside it) differs from the running one's. When only the
//!   motion zones of a continuous recorder changed, only its motion watcher restarts.
//! - A continuous recorder has a motion watcher beside it when the camera has a sub stream
//!   (watched), or motion zones (the main stream is watched over a second connection).
//! - `running` is locked only to look up, insert or take out a recorder, never across a
//!   recorder's start or stop: other cameras' status, snapshots and pushes do not wait while
//!   a segment is finalised.
//! - Changes of one camera (`apply`, `remove`) are serialised by its apply lock.
//! - A camera's tap outlives its recorders: every recorder of the camera feeds the same tap,
//!   so its consumers (RTMP pushes, live viewers) see a new generation, never a new tap. The
//!   tap goes only with the camera (`remove`).

use std::collections::HashMap;
use std::path::PathBuf;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use chrono::{DateTime, Utc};
use pv_core::Clock;
use pv_core::config::RecordingConfig;
use pv_core::db::Databases;
use pv_core::db::records::camera;
use pv_core::ids::CameraId;
use pv_media::RecordingMode;
use pv_media::motion::ZoneSpec;
use pv_media::record::{
    Backend, Recorder, RecorderConfig, RecorderEvent, RecorderState, RecorderStatus, Transport,
};
use pv_media::tap::StreamTap;
use pv_media::watch::{MotionWatcher, WatcherConfig};
use tokio::sync::mpsc::UnboundedSender;

use super::{events, footage, lock, schedules};

/// The running recorders and the camera taps (see the module documentation).
pub(super) struct Recorders {
    dbs: Databases,
    data_dir: PathBuf,
    config: RecordingConfig,
    clock: Arc<dyn Clock>,
    key: pv_security::seal::ServerKey,
    /// Running recorders.
    running: tokio::sync::Mutex<HashMap<CameraId, Running>>,
    /// One lock per camera serialising [`Recorders::apply`] and [`Recorders::remove`] for that
    /// camera, so `running` itself is only locked for lookups, inserts and removals.
    applying: Mutex<HashMap<CameraId, Arc<tokio::sync::Mutex<()>>>>,
    /// Each camera's stream tap, fed by each of its recorders in turn.
    taps: Mutex<HashMap<CameraId, StreamTap>>,
}

struct Running {
    recorder: Recorder,
    /// Motion detection beside a continuous recorder (its sub stream), flagging segments.
    motion: Option<MotionWatcher>,
    /// The configuration the recorder was started with (and the sub stream watched for
    /// motion); a difference restarts it.
    config: RecorderConfig,
    sub_url: Option<String>,
    /// Stores the recorder's status changes.
    watcher: tokio::task::JoinHandle<()>,
}

/// A camera's live recorder status, as the API shows it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct LiveStatus {
    /// [`RecorderStatus::as_str`]: `new`, `streaming`, `reconnecting`, `failed` or `disabled`.
    pub state: String,
    /// [`RecorderStatus::reason`]: the last error, when reconnecting or failed.
    pub reason: Option<String>,
    /// `native`, `gstreamer` or `ffmpeg`.
    pub backend: String,
    /// Why that backend records the camera when it is not the one configured first.
    pub backend_reason: Option<String>,
    /// Since when.
    pub since: DateTime<Utc>,
}

impl From<&RecorderState> for LiveStatus {
    fn from(s: &RecorderState) -> Self {
        Self {
            state: s.status.as_str().to_owned(),
            reason: s.status.reason().map(str::to_owned),
            backend: s.backend.as_str().to_owned(),
            backend_reason: s.backend_reason.clone(),
            since: s.since,
        }
    }
}

impl Recorders {
    /// No recorder running yet.
    pub(super) fn new(
        dbs: Databases,
        data_dir: PathBuf,
        config: RecordingConfig,
        clock: Arc<dyn Clock>,
        key: pv_security::seal::ServerKey,
    ) -> Self {
        Self {
            dbs,
            data_dir,
            config,
            clock,
            key,
            running: Default::default(),
            applying: Default::default(),
            taps: Default::default(),
        }
    }

    /// Bring the camera's recorder in line with its row, recording `mode` (what it records
    /// now) with motion `zones`: start, restart (the recorder configuration changed) or stop
    /// it. `events` is where a new recorder sends its events; None (shutting down): no
    /// recorder starts.
    pub(super) async fn apply(
        &self,
        cam: &camera::Model,
        mode: RecordingMode,
        zones: Vec<ZoneSpec>,
        events: Option<UnboundedSender<RecorderEvent>>,
    ) {
        let camera = CameraId(cam.id);
        let wanted = self.config.enabled && cam.enabled && mode != RecordingMode::Off;
        let serial = self.apply_lock(camera);
        let _serial = serial.lock().await;
        let config = if wanted {
            match self.recorder_config(cam, mode) {
                Ok(mut config) => {
                    config.motion.zones = zones;
                    Some(config)
                }
                Err(reason) => {
                    self.stop(camera).await;
                    self.store_status(camera, &RecorderStatus::Failed { reason }, None).await;
                    return;
                }
            }
        } else {
            None
        };
        let sub_url = cam.sub_url.clone();
        let only_zones = {
            let running = self.running.lock().await;
            match (running.get(&camera), &config) {
                (Some(running), Some(config)) if running.sub_url == sub_url => {
                    if running.config == *config {
                        return;
                    }
                    // A continuous recorder does not use the zones, only its watcher does.
                    config.mode == RecordingMode::Continuous
                        && running.config.mode == RecordingMode::Continuous
                        && RecorderConfig {
                            motion: config.motion.clone(),
                            ..running.config.clone()
                        } == *config
                }
                _ => false,
            }
        };
        if let (true, Some(config), Some(events)) = (only_zones, &config, &events) {
            self.restart_watcher(camera, config, &sub_url, events).await;
            return;
        }
        // The old recorder finalises its segment without `running` locked.
        self.stop(camera).await;
        let Some(config) = config else {
            let reason = self.why_not(cam);
            let disabled = RecorderStatus::Stopped;
            if cam.status != disabled.as_str() || cam.status_reason.as_deref() != Some(reason) {
                self.store_status(camera, &disabled, Some(reason)).await;
            }
            return;
        };
        let Some(events) = events else { return };
        let motion = self.watcher_for(&config, &sub_url, &events);
        match Recorder::start_with_tap(config.clone(), self.clock.clone(), events, self.tap(camera))
        {
            Ok(recorder) => {
                let watcher = tokio::spawn(events::watch_status(
                    self.dbs.clone(),
                    self.clock.clone(),
                    camera,
                    recorder.state(),
                ));
                let running = Running { recorder, motion, config, sub_url, watcher };
                self.running.lock().await.insert(camera, running);
            }
            Err(e) => {
                let failed = RecorderStatus::Failed { reason: e.to_string() };
                self.store_status(camera, &failed, None).await;
            }
        }
    }

    /// The motion watcher beside a continuous recorder: on the sub stream when the camera has
    /// one (decoding the small stream is cheap), else on the main stream when motion zones are
    /// set (someone asked for motion there); none otherwise. Motion-mode recorders run their
    /// own watcher.
    fn watcher_for(
        &self,
        config: &RecorderConfig,
        sub_url: &Option<String>,
        events: &UnboundedSender<RecorderEvent>,
    ) -> Option<MotionWatcher> {
        if config.mode != RecordingMode::Continuous {
            return None;
        }
        let mut w = WatcherConfig::for_recorder(config);
        match sub_url {
            Some(sub) => w.url = sub.clone(),
            None if !config.motion.zones.is_empty() => {}
            None => return None,
        }
        MotionWatcher::start(w, self.clock.clone(), events.clone())
            .map_err(
                |e| tracing::warn!(camera = %config.camera, error = %e, "motion detection not started"),
            )
            .ok()
    }

    /// New motion zones for a running continuous recorder: only its motion watcher restarts
    /// (with the new zones); the recording goes on without a cut.
    async fn restart_watcher(
        &self,
        camera: CameraId,
        config: &RecorderConfig,
        sub_url: &Option<String>,
        events: &UnboundedSender<RecorderEvent>,
    ) {
        let old = match self.running.lock().await.get_mut(&camera) {
            Some(running) => running.motion.take(),
            None => return,
        };
        if let Some(old) = old {
            old.stop().await;
        }
        let motion = self.watcher_for(config, sub_url, events);
        if let Some(running) = self.running.lock().await.get_mut(&camera) {
            running.motion = motion;
            running.config = config.clone();
        }
        tracing::info!(%camera, zones = config.motion.zones.len(), "motion zones applied");
    }

    /// Stop the camera's recorder (the open segment is finalised and indexed) and drop its
    /// tap.
    pub(super) async fn remove(&self, camera: CameraId) {
        let serial = self.apply_lock(camera);
        let _serial = serial.lock().await;
        self.stop(camera).await;
        lock(&self.taps).remove(&camera);
    }

    /// The camera's stream tap (created on first use).
    pub(super) fn tap(&self, camera: CameraId) -> StreamTap {
        lock(&self.taps).entry(camera).or_default().clone()
    }

    /// The camera's stream tap, when it has one (nothing is created).
    pub(super) fn existing_tap(&self, camera: CameraId) -> Option<StreamTap> {
        lock(&self.taps).get(&camera).cloned()
    }

    /// The camera's tap for a snapshot, when it has one. While the camera's recorder is still
    /// connecting or has just started streaming and no key frame has reached the tap yet, this
    /// waits up to `wait` for the first one: a camera just added gets its first picture from
    /// the live stream instead of "no footage".
    pub(super) async fn snapshot_tap(&self, camera: CameraId, wait: Duration) -> Option<StreamTap> {
        let tap = self.existing_tap(camera)?;
        let deadline = tokio::time::Instant::now() + wait;
        while tap.key_frame().is_none() && tokio::time::Instant::now() < deadline {
            let starting = {
                let running = self.running.lock().await;
                running.get(&camera).is_some_and(|r| {
                    matches!(
                        r.recorder.state().borrow().status,
                        RecorderStatus::Starting | RecorderStatus::Streaming
                    )
                })
            };
            if !starting {
                break;
            }
            tokio::time::sleep(Duration::from_millis(100)).await;
        }
        Some(tap)
    }

    /// The live status of the camera's recorder; None: no recorder runs for it.
    pub(super) async fn status(&self, camera: CameraId) -> Option<LiveStatus> {
        let running = self.running.lock().await;
        running.get(&camera).map(|r| LiveStatus::from(&*r.recorder.state().borrow()))
    }

    /// Whether a recorder runs for the camera.
    pub(super) async fn is_running(&self, camera: CameraId) -> bool {
        self.running.lock().await.contains_key(&camera)
    }

    /// How many recorders run.
    pub(super) async fn count(&self) -> usize {
        self.running.lock().await.len()
    }

    /// Stop every recorder at once (each finalises its open segment) and wait for them.
    pub(super) async fn stop_all(&self) {
        let all: Vec<Running> = self.running.lock().await.drain().map(|(_, r)| r).collect();
        futures_util::future::join_all(all.into_iter().map(stop)).await;
    }

    /// The lock serialising changes to one camera's recorder.
    fn apply_lock(&self, camera: CameraId) -> Arc<tokio::sync::Mutex<()>> {
        lock(&self.applying).entry(camera).or_default().clone()
    }

    /// Stop the camera's recorder, if one runs, with `running` unlocked while it finalises.
    async fn stop(&self, camera: CameraId) {
        let old = self.running.lock().await.remove(&camera);
        if let Some(old) = old {
            stop(old).await;
        }
    }

    async fn store_status(&self, camera: CameraId, status: &RecorderStatus, why: Option<&str>) {
        events::store_status(&self.dbs, self.clock.now(), camera, status, why).await;
    }

    /// Why a camera that should not record now does not.
    fn why_not(&self, cam: &camera::Model) -> &'static str {
        if !self.config.enabled {
            "recording is turned off on this server (recording.enabled)"
        } else if !cam.enabled {
            "the camera is disabled"
        } else if schedules::own_mode(cam) == RecordingMode::Off {
            "recording mode is off"
        } else {
            "the schedule says off now"
        }
    }

    /// The configuration the camera's recorder gets to record `mode` (Err: why it cannot be
    /// configured, stored as the `failed` reason).
    fn recorder_config(
        &self,
        cam: &camera::Model,
        mode: RecordingMode,
    ) -> Result<RecorderConfig, String> {
        let mut c = RecorderConfig::new(
            CameraId(cam.id),
            cam.main_url.clone(),
            self.data_dir.clone(),
            footage::camera_dir(cam).map_err(|e| e.to_string())?,
        );
        c.username = cam.username.clone();
        c.password = match &cam.password {
            Some(sealed) => Some(self.key.open(sealed).map_err(|_| {
                "the stored stream password cannot be decrypted with this server's key; set it again"
                    .to_owned()
            })?),
            None => None,
        };
        c.transport = if cam.transport == "udp" { Transport::Udp } else { Transport::Tcp };
        let seconds = cam
            .segment_seconds
            .map_or(self.config.segment_seconds, |s| u32::try_from(s).unwrap_or(60));
        c.segment_duration = Duration::from_secs(u64::from(seconds.max(1)));
        c.fragment_duration = c.fragment_duration.min(c.segment_duration);
        if let Some(b) = cam.recorder_backend.as_deref().and_then(Backend::parse) {
            c.backend = b;
        }
        c.ffmpeg_program = self.config.ffmpeg_program.clone();
        if mode == RecordingMode::Motion {
            c.mode = RecordingMode::Motion;
            c.pre_roll = Duration::from_secs(u64::try_from(cam.pre_roll_seconds).unwrap_or(5));
            c.post_roll = Duration::from_secs(u64::try_from(cam.post_roll_seconds).unwrap_or(10));
            c.motion_url = cam.sub_url.clone();
        }
        Ok(c)
    }
}

/// Stop a recorder and its motion watcher, then let its status watcher store the final
/// `disabled` status.
async fn stop(running: Running) {
    if let Some(motion) = running.motion {
        motion.stop().await;
    }
    running.recorder.stop().await;
    let _ = tokio::time::timeout(Duration::from_secs(2), running.watcher).await;
}
