//! One supervised recorder per camera: RTSP in, fragmented MP4 segments out, never transcoded.
//!
//! [`Recorder::start`] runs the camera's recording loop on its own thread, so one camera's
//! failure or stall cannot hold up another's. Each attempt runs one backend; a camera a
//! backend cannot record goes to the next one, and [`RecorderState::backend_reason`] says why:
//!
//! - built-in ([`Backend::Native`], the default; see [`native`]): RTSP read by the `retina`
//!   client and fragmented MP4 written by our own writer, inline on the recorder's thread. It
//!   costs less CPU than `ffmpeg -c copy` (bench `record_cpu`). H.264 and H.265; AAC audio kept
//!   as is, G.711 audio turned into AAC (browsers cannot play G.711 in MP4; see
//!   `ingest::audio`), the video never touched. It hands `rtsps://` URLs,
//!   other video codecs and descriptions it cannot read to GStreamer.
//! - GStreamer: `rtspsrc` (TCP interleaved by default) → `rtph264depay`/`rtph265depay`
//!   (chosen from the caps the camera announces) → `h264parse`/`h265parse` → `splitmuxsink`
//!   (`async-finalize`, `mp4mux` with `fragment-duration`, `max-size-time` = the segment length).
//!   AAC audio is passed through; G.711 is left out.
//! - ffmpeg: `ffmpeg -i URL -c copy -f segment -segment_format mp4`, used for a
//!   camera whose stream GStreamer reached but could not record (pipeline did not preroll,
//!   unsupported codec, missing element). Once a recorder falls back it stays there.
//!
//! When a segment file is closed, the recorder fsyncs the file, then its directory, and only
//! then emits [`RecorderEvent::SegmentFinished`]: a row written from that event always names a
//! durable file. A camera that disappears is retried forever with capped exponential back-off
//! ([`RecorderConfig::backoff_initial`] doubling up to [`RecorderConfig::backoff_max`]), with
//! [`RecorderEvent::GapStarted`] when recording stops and [`RecorderEvent::GapEnded`] when it
//! resumes. Status ([`RecorderState`]) is published on a watch channel. [`Recorder::stop`]
//! sends EOS so the last segment is finalised.
//!
//! In [`RecordingMode::Motion`] ([`RecorderConfig::mode`]) nothing is written while nothing
//! moves: the main stream is kept in memory (depayloaded, never decoded) for the pre-roll, a [`MotionWatcher`](crate::watch::MotionWatcher) decodes the sub stream (or the
//! main stream over a second connection) at a low rate, and on motion the buffered pictures
//! and then the live ones are written as segments until the post-roll after the last motion
//! has passed. Motion segments carry [`SegmentFinished::motion`]; the recorder forwards the
//! watcher's [`RecorderEvent::MotionStarted`] and [`RecorderEvent::MotionEnded`]. Motion mode
//! has no ffmpeg fallback (and records video only on GStreamer). In continuous mode a watcher can run beside
//! the recorder (see [`crate::watch`]).
//!
//! The built-in and GStreamer backends also feed the camera's [`StreamTap`]
//! ([`Recorder::tap`]): every access unit is handed to the tap by reference (no copy), so
//! snapshots, RTMP pushes, live view and face analysis read the camera without a second
//! connection and without decoding. Handing a unit over never waits for the tap's consumers.
//!
//! ```no_run
//! # async fn demo() -> pv_media::Result<()> {
//! use std::sync::Arc;
//! use pv_core::{SystemClock, ids::CameraId};
//! use pv_media::layout::CameraDir;
//! use pv_media::record::{Recorder, RecorderConfig, RecorderEvent};
//!
//! let camera = CameraId(1);
//! let config = RecorderConfig::new(
//!     camera,
//!     "rtsp://192.0.2.10/stream1",
//!     "/var/lib/pentavision",
//!     CameraDir::new(camera, None)?,
//! );
//! let (tx, mut rx) = tokio::sync::mpsc::unbounded_channel();
//! let recorder = Recorder::start(config, Arc::new(SystemClock::new()), tx)?;
//! while let Some(event) = rx.recv().await {
//!     if let RecorderEvent::SegmentFinished(seg) = event {
//!         println!("{} {} ms", seg.relative_path.display(), seg.duration_ms);
//!     }
//! }
//! recorder.stop().await;
//! # Ok(()) }
//! ```

mod ffmpeg;
pub(crate) mod gst;
mod motion;
pub mod native;
pub(crate) mod reason;

use std::fmt;
use std::path::{Path, PathBuf};
use std::sync::{Arc, Condvar, Mutex};
use std::thread::JoinHandle;
use std::time::Duration;

use chrono::{DateTime, Utc};
use pv_core::Clock;
use pv_core::ids::CameraId;
use tokio::sync::{mpsc, watch};

use crate::layout::CameraDir;
use crate::mp4;
use crate::tap::StreamTap;
use crate::watch::MotionSettings;
use crate::{Error, RecordingMode, Result};

/// How RTSP media travels.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum Transport {
    /// Interleaved in the RTSP TCP connection (the default: works through NAT and loses
    /// nothing).
    #[default]
    Tcp,
    /// RTP over UDP.
    Udp,
}

impl Transport {
    /// `tcp` or `udp` (the `cameras.transport` column).
    pub fn as_str(self) -> &'static str {
        match self {
            Transport::Tcp => "tcp",
            Transport::Udp => "udp",
        }
    }
}

/// Which program records a camera.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
#[non_exhaustive]
pub enum Backend {
    /// The built-in RTSP client and MP4 writer (the default; see [`native`]).
    #[default]
    Native,
    /// The GStreamer pipeline: the first fallback.
    Gstreamer,
    /// ffmpeg: the last fallback.
    Ffmpeg,
}

impl Backend {
    /// `native`, `gstreamer` or `ffmpeg` (the `cameras.recorder_backend` column).
    pub fn as_str(self) -> &'static str {
        match self {
            Backend::Native => "native",
            Backend::Gstreamer => "gstreamer",
            Backend::Ffmpeg => "ffmpeg",
        }
    }

    /// The backend of a column value.
    pub fn parse(s: &str) -> Option<Backend> {
        match s {
            "native" => Some(Backend::Native),
            "gstreamer" => Some(Backend::Gstreamer),
            "ffmpeg" => Some(Backend::Ffmpeg),
            _ => None,
        }
    }

    /// The backend's name in messages for people.
    pub fn describe(self) -> &'static str {
        match self {
            Backend::Native => "The built-in recorder",
            Backend::Gstreamer => "GStreamer",
            Backend::Ffmpeg => "ffmpeg",
        }
    }

    /// Whether this backend feeds the camera's [`StreamTap`] (ffmpeg does not).
    pub fn feeds_tap(self) -> bool {
        self != Backend::Ffmpeg
    }

    /// The backend tried when this one cannot record a camera.
    fn next(self) -> Option<Backend> {
        match self {
            Backend::Native => Some(Backend::Gstreamer),
            Backend::Gstreamer => Some(Backend::Ffmpeg),
            Backend::Ffmpeg => None,
        }
    }
}

impl fmt::Display for Backend {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

/// Everything one recorder needs to know about its camera.
#[derive(Clone, PartialEq)]
pub struct RecorderConfig {
    /// The camera.
    pub camera: CameraId,
    /// Stream URL, `rtsp://host[:port]/path` (credentials belong in the fields below).
    pub url: String,
    /// Stream login.
    pub username: Option<String>,
    /// Stream password.
    pub password: Option<String>,
    /// RTSP transport.
    pub transport: Transport,
    /// The data directory; segment paths in events are relative to it.
    pub data_dir: PathBuf,
    /// The camera's ingest directory under `data_dir`.
    pub camera_dir: CameraDir,
    /// Target segment length (default 60 s). Segments are cut at key frames, so each is at most
    /// this long (plus 0.2 s of tolerance for time-stamp jitter) and shorter by less than one
    /// group of pictures.
    pub segment_duration: Duration,
    /// MP4 fragment length (default 1 s): at most this much of a segment is lost when the
    /// process is killed.
    pub fragment_duration: Duration,
    /// First reconnect delay (default 500 ms).
    pub backoff_initial: Duration,
    /// Longest reconnect delay (default 8 s, so recording resumes within about 10 s of a
    /// camera coming back however long it was away).
    pub backoff_max: Duration,
    /// How long a new connection may take to deliver its first video (default 15 s).
    pub start_timeout: Duration,
    /// How long a streaming camera may send nothing before it counts as lost (default 10 s).
    pub stall_timeout: Duration,
    /// Record AAC audio when the camera sends it (default true).
    pub record_audio: bool,
    /// The backend tried first (default [`Backend::Native`]; `cameras.recorder_backend`).
    /// A camera it cannot record goes to the next: built-in, then GStreamer, then ffmpeg.
    pub backend: Backend,
    /// Fall back to ffmpeg when GStreamer reaches the camera but cannot record it (default
    /// true).
    pub ffmpeg_fallback: bool,
    /// The ffmpeg program (default `ffmpeg` on `PATH`).
    pub ffmpeg_program: PathBuf,
    /// Continuous or motion (default continuous; `off` is refused: start no recorder).
    pub mode: RecordingMode,
    /// Motion mode: how much footage before the motion starts is kept (default 5 s, at most
    /// 60 s). Recordings start at the key frame at or before it, so up to one group of pictures
    /// more.
    pub pre_roll: Duration,
    /// Motion mode: how long recording goes on after the last moving frame (default 10 s, at
    /// most 10 min). Motion within this time continues the same recording.
    pub post_roll: Duration,
    /// The stream motion is detected on: the camera's sub stream (same credentials and
    /// transport). None (the default): the main stream, over a second connection.
    pub motion_url: Option<String>,
    /// How motion is detected: zones and masks, sensitivity, analysis rate and size,
    /// hysteresis (default [`MotionSettings::default`]).
    pub motion: MotionSettings,
}

impl fmt::Debug for RecorderConfig {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("RecorderConfig")
            .field("camera", &self.camera)
            .field("url", &redact_url(&self.url))
            .field("username", &self.username)
            .field("password", &self.password.as_ref().map(|_| "<redacted>"))
            .field("transport", &self.transport)
            .field("data_dir", &self.data_dir)
            .field("camera_dir", &self.camera_dir)
            .field("segment_duration", &self.segment_duration)
            .field("backend", &self.backend)
            .field("mode", &self.mode)
            .field("pre_roll", &self.pre_roll)
            .field("post_roll", &self.post_roll)
            .field("motion_url", &self.motion_url.as_deref().map(redact_url))
            .finish_non_exhaustive()
    }
}

impl RecorderConfig {
    /// A configuration with the defaults documented on each field.
    pub fn new(
        camera: CameraId,
        url: impl Into<String>,
        data_dir: impl Into<PathBuf>,
        camera_dir: CameraDir,
    ) -> Self {
        Self {
            camera,
            url: url.into(),
            username: None,
            password: None,
            transport: Transport::Tcp,
            data_dir: data_dir.into(),
            camera_dir,
            segment_duration: Duration::from_secs(60),
            fragment_duration: Duration::from_secs(1),
            backoff_initial: Duration::from_millis(500),
            backoff_max: Duration::from_secs(8),
            start_timeout: Duration::from_secs(15),
            stall_timeout: Duration::from_secs(10),
            record_audio: true,
            backend: Backend::Native,
            ffmpeg_fallback: true,
            ffmpeg_program: PathBuf::from("ffmpeg"),
            mode: RecordingMode::Continuous,
            pre_roll: Duration::from_secs(5),
            post_roll: Duration::from_secs(10),
            motion_url: None,
            motion: MotionSettings::default(),
        }
    }

    /// The absolute directory segments are written to.
    pub fn ingest_dir(&self) -> PathBuf {
        self.data_dir.join(self.camera_dir.relative_path())
    }

    fn validate(&self) -> Result<()> {
        if self.camera.0 <= 0 {
            return Err(Error::InvalidCameraId(self.camera));
        }
        check_rtsp_url(&self.url)?;
        let checks = [
            (self.segment_duration >= Duration::from_secs(1), "segment_duration must be >= 1 s"),
            (
                self.fragment_duration >= Duration::from_millis(100)
                    && self.fragment_duration <= self.segment_duration,
                "fragment_duration must be >= 100 ms and <= segment_duration",
            ),
            (
                !self.backoff_initial.is_zero() && self.backoff_max >= self.backoff_initial,
                "backoff_initial must be > 0 and <= backoff_max",
            ),
            (!self.start_timeout.is_zero(), "start_timeout must be > 0"),
            (!self.stall_timeout.is_zero(), "stall_timeout must be > 0"),
        ];
        match checks.iter().find(|(ok, _)| !ok) {
            Some((_, msg)) => Err(Error::InvalidRecorderConfig((*msg).to_owned())),
            None => motion::validate(self),
        }
    }

    /// The reconnect delay before attempt `attempt` (1-based).
    fn backoff(&self, attempt: u32) -> Duration {
        let factor = 1u32 << attempt.saturating_sub(1).min(16);
        self.backoff_initial.saturating_mul(factor).min(self.backoff_max)
    }

    /// Whether a camera GStreamer cannot record goes to ffmpeg (never in motion mode).
    fn falls_back(&self) -> bool {
        self.ffmpeg_fallback && self.mode != RecordingMode::Motion
    }

    /// The backend after `backend` for this camera, if any.
    fn fallback_from(&self, backend: Backend) -> Option<Backend> {
        match backend.next()? {
            Backend::Ffmpeg if !self.falls_back() => None,
            next => Some(next),
        }
    }
}

/// Why a segment ended (the `segments.end_reason` column).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum EndReason {
    /// It reached the segment length and the next one started (`duration`).
    Duration,
    /// The camera ended the stream (`eos`).
    Eos,
    /// The camera was lost or the pipeline failed (`error`).
    Error,
    /// The recorder was stopped (`shutdown`).
    Shutdown,
    /// Rebuilt from a file found by the recovery pass (`recovered`).
    Recovered,
    /// Motion mode: the post-roll after the last motion ran out (`motion_end`).
    MotionEnd,
}

impl EndReason {
    /// The column value.
    pub fn as_str(self) -> &'static str {
        match self {
            EndReason::Duration => "duration",
            EndReason::Eos => "eos",
            EndReason::Error => "error",
            EndReason::Shutdown => "shutdown",
            EndReason::Recovered => "recovered",
            EndReason::MotionEnd => "motion_end",
        }
    }
}

impl fmt::Display for EndReason {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

/// A segment file that is complete and durable (file and directory fsynced): everything a
/// `segments` row needs.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SegmentFinished {
    /// The camera.
    pub camera: CameraId,
    /// Absolute path of the file.
    pub path: PathBuf,
    /// Path relative to the data dir (the `segments.path` column).
    pub relative_path: PathBuf,
    /// Wall-clock time of the first frame.
    pub started_at: DateTime<Utc>,
    /// Wall-clock time of the end of the last frame.
    pub ended_at: DateTime<Utc>,
    /// Pipeline running time of the first frame, in nanoseconds.
    pub media_start_ns: i64,
    /// Pipeline running time of the end of the last frame, in nanoseconds.
    pub media_end_ns: i64,
    /// Media duration in milliseconds (from the file's own sample durations).
    pub duration_ms: i64,
    /// File size in bytes.
    pub size_bytes: u64,
    /// Video codec (`h264`, `h265`).
    pub video_codec: String,
    /// Audio codec, when audio was recorded.
    pub audio_codec: Option<String>,
    /// Frame width in pixels.
    pub width: Option<u32>,
    /// Frame height in pixels.
    pub height: Option<u32>,
    /// Why the segment ended.
    pub end_reason: EndReason,
    /// Which backend wrote it.
    pub backend: Backend,
    /// Recorded because of motion (motion mode; the `segments.motion` column). Continuous
    /// segments are false here: flag them from the motion events they overlap.
    pub motion: bool,
}

/// What a recorder (or a [`MotionWatcher`](crate::watch::MotionWatcher)) reports besides its
/// status.
#[derive(Debug, Clone, PartialEq)]
#[non_exhaustive]
pub enum RecorderEvent {
    /// A segment file is complete and durable; write its row.
    SegmentFinished(SegmentFinished),
    /// Recording stopped unexpectedly at `at` (the end of the last segment, or when the first
    /// connection failed); open a gap row.
    GapStarted {
        /// The camera.
        camera: CameraId,
        /// When the gap began.
        at: DateTime<Utc>,
        /// Why.
        reason: String,
    },
    /// Recording resumed; close the gap that began at `started_at`.
    GapEnded {
        /// The camera.
        camera: CameraId,
        /// When the gap began (as in the matching [`RecorderEvent::GapStarted`]).
        started_at: DateTime<Utc>,
        /// When recording resumed.
        ended_at: DateTime<Utc>,
    },
    /// Motion began at `at` (the first moving frame); open a `motion_events` row.
    MotionStarted {
        /// The camera.
        camera: CameraId,
        /// Wall-clock time of the first moving frame.
        at: DateTime<Utc>,
        /// The highest motion score (fraction of the watched area that changed, 0..=1) of the
        /// frames that started the event.
        score: f64,
    },
    /// The motion that began at `started_at` is over; close its row and flag the segments
    /// that overlap it.
    MotionEnded {
        /// The camera.
        camera: CameraId,
        /// As in the matching [`RecorderEvent::MotionStarted`].
        started_at: DateTime<Utc>,
        /// Wall-clock time of the last moving frame.
        ended_at: DateTime<Utc>,
        /// The highest motion score of the event, 0..=1.
        peak_score: f64,
    },
}

/// A recorder's status (the `cameras.status` column and its reason).
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum RecorderStatus {
    /// Connecting for the first time.
    Starting,
    /// Segments are being written.
    Streaming,
    /// The camera was lost or never reached; the recorder will try again.
    Reconnecting {
        /// Failed attempts in a row.
        attempt: u32,
        /// The last failure.
        reason: String,
    },
    /// The recorder gave up: nothing on this machine can record the camera.
    Failed {
        /// Why.
        reason: String,
    },
    /// Stopped on request.
    Stopped,
}

impl RecorderStatus {
    /// `new`, `streaming`, `reconnecting`, `failed` or `disabled` (the column value; a stopped
    /// recorder is `disabled`).
    pub fn as_str(&self) -> &'static str {
        match self {
            RecorderStatus::Starting => "new",
            RecorderStatus::Streaming => "streaming",
            RecorderStatus::Reconnecting { .. } => "reconnecting",
            RecorderStatus::Failed { .. } => "failed",
            RecorderStatus::Stopped => "disabled",
        }
    }

    /// The human-readable reason, when there is one (`cameras.status_reason`).
    pub fn reason(&self) -> Option<&str> {
        match self {
            RecorderStatus::Reconnecting { reason, .. } | RecorderStatus::Failed { reason } => {
                Some(reason)
            }
            _ => None,
        }
    }
}

/// A recorder's status, the backend in use and when the status last changed.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RecorderState {
    /// The status.
    pub status: RecorderStatus,
    /// The backend of the current (or last) attempt.
    pub backend: Backend,
    /// Why `backend` records the camera when it is not the one configured first (the earlier
    /// backend's reason for refusing the stream).
    pub backend_reason: Option<String>,
    /// When `status` was set.
    pub since: DateTime<Utc>,
}

/// A running recorder. Dropping it asks it to stop without waiting; [`Recorder::stop`] waits
/// until the last segment is finalised.
#[derive(Debug)]
pub struct Recorder {
    camera: CameraId,
    stop: Arc<StopSignal>,
    thread: Option<JoinHandle<()>>,
    state: watch::Receiver<RecorderState>,
    tap: StreamTap,
}

impl Recorder {
    /// Validate `config`, create the ingest directory and start recording on a new thread,
    /// feeding a new tap. Events go to `events`; a closed receiver does not stop recording.
    pub fn start(
        config: RecorderConfig,
        clock: Arc<dyn Clock>,
        events: mpsc::UnboundedSender<RecorderEvent>,
    ) -> Result<Recorder> {
        Self::start_with_tap(config, clock, events, StreamTap::new())
    }

    /// [`Recorder::start`] feeding `tap`, which the caller owns and which outlives the
    /// recorder: a restarted recorder feeds the same tap (consumers see a new generation, never
    /// a new tap).
    pub fn start_with_tap(
        config: RecorderConfig,
        clock: Arc<dyn Clock>,
        events: mpsc::UnboundedSender<RecorderEvent>,
        tap: StreamTap,
    ) -> Result<Recorder> {
        config.validate()?;
        if config.backend != Backend::Ffmpeg {
            // GStreamer is the first fallback and decodes for motion and snapshots.
            crate::init()?;
        }
        let dir = config.ingest_dir();
        std::fs::create_dir_all(&dir).map_err(|e| Error::io(&dir, e))?;
        let camera = config.camera;
        let (state_tx, state) = watch::channel(RecorderState {
            status: RecorderStatus::Starting,
            backend: config.backend,
            backend_reason: None,
            since: clock.now(),
        });
        let stop = Arc::new(StopSignal::default());
        let session = Session {
            config,
            dir,
            clock,
            events,
            state: state_tx,
            stop: stop.clone(),
            tap: tap.clone(),
            gap: None,
            last_end: None,
        };
        let thread = std::thread::Builder::new()
            .name(format!("recorder-{camera}"))
            .spawn(move || supervise(session))
            .map_err(|e| Error::Process {
                program: "recorder",
                reason: format!("cannot start thread: {e}"),
            })?;
        Ok(Recorder { camera, stop, thread: Some(thread), state, tap })
    }

    /// The camera recorded.
    pub fn camera(&self) -> CameraId {
        self.camera
    }

    /// The status channel.
    pub fn state(&self) -> watch::Receiver<RecorderState> {
        self.state.clone()
    }

    /// The camera's in-memory stream: caps, last key frame and a broadcast of access units
    /// (see [`crate::tap`]). The same tap for the recorder's whole life, across reconnects
    /// (and across recorders, with [`Recorder::start_with_tap`]); it is not fed while the
    /// ffmpeg fallback records.
    pub fn tap(&self) -> StreamTap {
        self.tap.clone()
    }

    /// Stop: finalise the open segment (EOS), emit its event and wait for the thread.
    pub async fn stop(mut self) {
        let thread = self.begin_stop();
        if let Some(thread) = thread {
            let _ = tokio::task::spawn_blocking(move || thread.join()).await;
        }
    }

    /// [`Recorder::stop`] for synchronous callers.
    pub fn stop_blocking(mut self) {
        if let Some(thread) = self.begin_stop() {
            let _ = thread.join();
        }
    }

    fn begin_stop(&mut self) -> Option<JoinHandle<()>> {
        self.stop.set();
        self.thread.take()
    }
}

impl Drop for Recorder {
    fn drop(&mut self) {
        self.stop.set();
    }
}

/// A stop flag that interrupts back-off sleeps.
#[derive(Debug, Default)]
pub(crate) struct StopSignal {
    stopped: Mutex<bool>,
    cond: Condvar,
}

impl StopSignal {
    pub(crate) fn set(&self) {
        *self.stopped.lock().unwrap_or_else(|p| p.into_inner()) = true;
        self.cond.notify_all();
    }

    pub(crate) fn is_set(&self) -> bool {
        *self.stopped.lock().unwrap_or_else(|p| p.into_inner())
    }

    /// Sleep up to `d`; true when stopped.
    pub(crate) fn sleep(&self, d: Duration) -> bool {
        let guard = self.stopped.lock().unwrap_or_else(|p| p.into_inner());
        let (guard, _) =
            self.cond.wait_timeout_while(guard, d, |s| !*s).unwrap_or_else(|p| p.into_inner());
        *guard
    }
}

/// How one attempt ended.
#[derive(Debug)]
pub(crate) enum AttemptEnd {
    /// Stopped on request.
    Stopped,
    /// The camera was lost or could not be recorded.
    Lost {
        /// Why.
        reason: String,
        /// Segments were being written during the attempt.
        streamed: bool,
        /// Another backend might do better (the camera answered but this backend could not
        /// record it).
        fallback: bool,
    },
    /// This backend cannot run on this machine at all.
    Unusable {
        /// Why.
        reason: String,
    },
}

/// The recorder thread's state, shared with the backends.
pub(crate) struct Session {
    pub(crate) config: RecorderConfig,
    pub(crate) dir: PathBuf,
    pub(crate) clock: Arc<dyn Clock>,
    events: mpsc::UnboundedSender<RecorderEvent>,
    state: watch::Sender<RecorderState>,
    pub(crate) stop: Arc<StopSignal>,
    /// The camera's stream tap (fed by the GStreamer backend).
    pub(crate) tap: StreamTap,
    /// Start of the open gap, if any.
    gap: Option<DateTime<Utc>>,
    /// End of the last finished segment.
    last_end: Option<DateTime<Utc>>,
}

impl Session {
    fn set_status(&self, status: RecorderStatus, backend: Backend) {
        let since = self.clock.now();
        self.state.send_modify(|s| {
            if s.status != status || s.backend != backend {
                s.status = status;
                s.backend = backend;
                s.since = since;
            }
        });
    }

    /// `backend` takes over the camera because the one before it could not record it.
    fn fall_back(&self, backend: Backend, reason: &str) {
        let since = self.clock.now();
        let why = format!(
            "{} could not record this camera: {reason}",
            self.state.borrow().backend.describe()
        );
        self.state.send_modify(|s| {
            s.backend = backend;
            s.backend_reason = Some(why);
            s.since = since;
        });
    }

    /// The first segment of an attempt opened: streaming, and any gap is over.
    pub(crate) fn streaming(&mut self, backend: Backend) {
        tracing::info!(camera = %self.config.camera, %backend, "recording");
        self.set_status(RecorderStatus::Streaming, backend);
        if let Some(started_at) = self.gap.take() {
            let ended_at = self.clock.now();
            tracing::info!(camera = %self.config.camera, %started_at, %ended_at, "recording gap ended");
            self.emit(RecorderEvent::GapEnded { camera: self.config.camera, started_at, ended_at });
        }
    }

    /// Fsync `seg.path` and its directory, then emit the event.
    fn segment_finished(&mut self, seg: SegmentFinished) {
        if let Err(err) = fsync_file_and_dir(&seg.path) {
            tracing::error!(camera = %seg.camera, path = %seg.path.display(), error = %err,
                "segment could not be made durable; left for the recovery pass");
            return;
        }
        tracing::info!(
            camera = %seg.camera,
            path = %seg.relative_path.display(),
            duration_ms = seg.duration_ms,
            bytes = seg.size_bytes,
            end_reason = %seg.end_reason,
            backend = %seg.backend,
            "segment finished"
        );
        self.last_end = Some(seg.ended_at);
        self.emit(RecorderEvent::SegmentFinished(seg));
    }

    /// A segment file was closed: wait up to `wait` until it is a whole file, cut off an
    /// unfinished tail (or remove a file with nothing playable), then fsync and emit it.
    /// `started_at` None: the file ends now.
    #[allow(clippy::too_many_arguments)]
    pub(crate) fn finish_file(
        &mut self,
        path: &Path,
        started_at: Option<DateTime<Utc>>,
        media_start_ns: u64,
        fallback_duration_ns: u64,
        reason: EndReason,
        backend: Backend,
        wait: Duration,
    ) {
        let camera = self.config.camera;
        let deadline = std::time::Instant::now() + wait;
        let info = loop {
            match mp4::inspect(path) {
                Ok(info) if info.is_complete() || std::time::Instant::now() >= deadline => {
                    break info;
                }
                Ok(_) => std::thread::sleep(Duration::from_millis(50)),
                Err(err) => {
                    tracing::error!(camera = %camera, error = %err, "cannot read closed segment");
                    return;
                }
            }
        };
        if !info.is_complete() {
            if info.valid_len == 0 {
                tracing::warn!(camera = %camera, path = %path.display(), "segment has no complete fragment; removed");
                let _ = std::fs::remove_file(path);
                return;
            }
            if info.trailing_bytes > 0 {
                tracing::warn!(camera = %camera, path = %path.display(), cut = info.trailing_bytes, "segment truncated to its last complete fragment");
                if let Err(err) = mp4::truncate(path, info.valid_len) {
                    tracing::error!(camera = %camera, error = %err, "cannot truncate segment");
                    return;
                }
            }
        }
        let Some(video) = info.video.as_ref() else {
            tracing::warn!(camera = %camera, path = %path.display(), "segment has no video track; removed");
            let _ = std::fs::remove_file(path);
            return;
        };
        let duration_ns =
            if info.duration_ns > 0 { info.duration_ns } else { fallback_duration_ns };
        let duration =
            chrono::Duration::nanoseconds(i64::try_from(duration_ns).unwrap_or(i64::MAX));
        let started_at = started_at.unwrap_or_else(|| self.clock.now() - duration);
        let size_bytes = std::fs::metadata(path).map(|m| m.len()).unwrap_or(info.valid_len);
        let media_start = i64::try_from(media_start_ns).unwrap_or(i64::MAX);
        let seg = SegmentFinished {
            camera,
            path: path.to_path_buf(),
            relative_path: self.relative(path),
            started_at,
            ended_at: started_at + duration,
            media_start_ns: media_start,
            media_end_ns: media_start.saturating_add(duration.num_nanoseconds().unwrap_or(0)),
            duration_ms: duration.num_milliseconds(),
            size_bytes,
            video_codec: video.codec.clone(),
            audio_codec: info.audio.as_ref().map(|a| a.codec.clone()),
            width: video.width,
            height: video.height,
            end_reason: reason,
            backend,
            motion: self.config.mode == RecordingMode::Motion,
        };
        self.segment_finished(seg);
    }

    /// The path relative to the data dir.
    pub(crate) fn relative(&self, path: &Path) -> PathBuf {
        path.strip_prefix(&self.config.data_dir).map(Path::to_path_buf).unwrap_or_else(|_| {
            self.config.camera_dir.relative_path().join(path.file_name().unwrap_or_default())
        })
    }

    fn emit(&self, event: RecorderEvent) {
        if self.events.send(event).is_err() {
            tracing::debug!(camera = %self.config.camera, "recorder event receiver is gone");
        }
    }

    fn open_gap(&mut self, reason: &str) {
        if self.gap.is_some() {
            return;
        }
        let at = self.last_end.unwrap_or_else(|| self.clock.now());
        tracing::warn!(camera = %self.config.camera, %at, reason, "recording gap started");
        self.gap = Some(at);
        self.emit(RecorderEvent::GapStarted {
            camera: self.config.camera,
            at,
            reason: reason.to_owned(),
        });
    }
}

fn supervise(mut s: Session) {
    let camera = s.config.camera;
    let mut backend = s.config.backend;
    let mut attempt = 0u32;
    tracing::info!(camera = %camera, url = %redact_url(&s.config.url), %backend, "recorder started");
    while !s.stop.is_set() {
        // A bug in one attempt must not leave this camera with a stale status: a panic ends
        // the attempt like a lost camera, and the recorder tries again.
        let outcome = std::panic::catch_unwind(std::panic::AssertUnwindSafe(|| match backend {
            Backend::Native => native::run(&mut s),
            Backend::Gstreamer if s.config.mode == RecordingMode::Motion => motion::run(&mut s),
            Backend::Gstreamer => gst::run(&mut s),
            Backend::Ffmpeg => ffmpeg::run(&mut s),
        }));
        let end = outcome.unwrap_or_else(|_| {
            tracing::error!(camera = %camera, %backend, "recorder attempt panicked");
            AttemptEnd::Lost {
                reason: "internal error in the recorder (see the log)".to_owned(),
                streamed: false,
                fallback: false,
            }
        });
        let (reason, streamed, fallback) = match end {
            AttemptEnd::Stopped => break,
            AttemptEnd::Lost { reason, streamed, fallback } => (reason, streamed, fallback),
            AttemptEnd::Unusable { reason } => {
                if let Some(next) = s.config.fallback_from(backend) {
                    tracing::warn!(camera = %camera, %backend, %next, reason, "backend unusable; falling back");
                    s.fall_back(next, &reason);
                    backend = next;
                    continue;
                }
                tracing::error!(camera = %camera, %backend, reason, "recorder failed");
                s.open_gap(&reason);
                s.set_status(RecorderStatus::Failed { reason }, backend);
                // Nothing will change by retrying quickly; check again now and then.
                if s.stop.sleep(s.config.backoff_max * 8) {
                    break;
                }
                continue;
            }
        };
        if streamed {
            attempt = 0;
        }
        if fallback && let Some(next) = s.config.fallback_from(backend) {
            tracing::warn!(camera = %camera, %backend, %next, reason, "the stream cannot be recorded by this backend; falling back");
            s.fall_back(next, &reason);
            backend = next;
            if backend == Backend::Gstreamer && !streamed {
                // The camera answered: try the next backend at once, no gap for it.
                continue;
            }
        }
        s.open_gap(&reason);
        attempt = attempt.saturating_add(1);
        let delay = s.config.backoff(attempt);
        tracing::warn!(camera = %camera, attempt, delay_ms = delay.as_millis() as u64, reason, "camera lost; reconnecting");
        s.set_status(RecorderStatus::Reconnecting { attempt, reason }, backend);
        if s.stop.sleep(delay) {
            break;
        }
    }
    s.set_status(RecorderStatus::Stopped, backend);
    tracing::info!(camera = %camera, "recorder stopped");
}

/// Fsync a file, then the directory holding it.
pub(crate) fn fsync_file_and_dir(path: &Path) -> Result<()> {
    let file = std::fs::File::open(path).map_err(|e| Error::io(path, e))?;
    file.sync_all().map_err(|e| Error::io(path, e))?;
    if let Some(dir) = path.parent() {
        let d = std::fs::File::open(dir).map_err(|e| Error::io(dir, e))?;
        d.sync_all().map_err(|e| Error::io(dir, e))?;
    }
    Ok(())
}

/// Reject URLs the recorder cannot use: anything but `rtsp://` / `rtsps://` with a host and
/// no spaces or control characters. The error never contains the URL's credentials.
pub fn check_rtsp_url(url: &str) -> Result<()> {
    let invalid = |reason| Error::InvalidUrl { url: redact_url(url), reason };
    let lower = url.to_ascii_lowercase();
    let rest = lower
        .strip_prefix("rtsp://")
        .or_else(|| lower.strip_prefix("rtsps://"))
        .ok_or_else(|| invalid("expected rtsp:// or rtsps://"))?;
    let authority = rest.split('/').next().unwrap_or_default();
    let host = authority.rsplit('@').next().unwrap_or_default();
    if host.is_empty() || host.starts_with(':') {
        return Err(invalid("no host"));
    }
    if url.chars().any(|c| c.is_control() || c == ' ') {
        return Err(invalid("spaces and control characters are not allowed"));
    }
    Ok(())
}

/// The URL with any `user:password@` removed, for logs and errors.
pub fn redact_url(url: &str) -> String {
    let Some((scheme, rest)) = url.split_once("://") else {
        return url.to_owned();
    };
    let (authority, path) = match rest.find('/') {
        Some(i) => rest.split_at(i),
        None => (rest, ""),
    };
    match authority.rsplit_once('@') {
        Some((_, host)) => format!("{scheme}://{host}{path}"),
        None => url.to_owned(),
    }
}

/// The URL with credentials inserted (percent-encoded), for programs that take them in the URL.
pub(crate) fn url_with_credentials(url: &str, user: Option<&str>, pass: Option<&str>) -> String {
    let Some(user) = user else {
        return url.to_owned();
    };
    let Some((scheme, rest)) = url.split_once("://") else {
        return url.to_owned();
    };
    let rest = match rest.split('/').next().and_then(|a| a.rsplit_once('@')) {
        Some((userinfo, _)) => &rest[userinfo.len() + 1..],
        None => rest,
    };
    let mut out = format!("{scheme}://{}", percent_encode(user));
    if let Some(pass) = pass {
        out.push(':');
        out.push_str(&percent_encode(pass));
    }
    out.push('@');
    out.push_str(rest);
    out
}

fn percent_encode(s: &str) -> String {
    let mut out = String::with_capacity(s.len());
    for b in s.bytes() {
        if b.is_ascii_alphanumeric() || b"-._~".contains(&b) {
            out.push(char::from(b));
        } else {
            out.push_str(&format!("%{b:02X}"));
        }
    }
    out
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]
    use super::*;

    fn config() -> RecorderConfig {
        RecorderConfig::new(
            CameraId(3),
            "rtsp://127.0.0.1:8554/cam",
            "/tmp/x",
            CameraDir::new(CameraId(3), None).unwrap(),
        )
    }

    #[test]
    fn backoff_doubles_from_a_fast_first_retry_to_the_cap() {
        let c = config();
        let delays: Vec<u64> = (1..=7).map(|a| c.backoff(a).as_millis() as u64).collect();
        assert_eq!(delays, [500, 1000, 2000, 4000, 8000, 8000, 8000]);
        assert_eq!(c.backoff(u32::MAX), Duration::from_secs(8));
    }

    #[test]
    fn urls_are_checked_and_redacted() {
        for ok in ["rtsp://h/x", "RTSP://h:554/x?y=1", "rtsps://u:p@h/x", "rtsp://[::1]:8554/a"] {
            assert!(check_rtsp_url(ok).is_ok(), "{ok}");
        }
        for bad in ["http://h/x", "rtsp://", "rtsp:///x", "rtsp://:554/x", "rtsp://h/a b", "h/x"] {
            let err = check_rtsp_url(bad).unwrap_err();
            assert_eq!(err.kind(), pv_core::ErrorKind::InvalidInput, "{bad}");
        }
        assert_eq!(redact_url("rtsp://u:p@w@h:1/x@y"), "rtsp://h:1/x@y");
        assert_eq!(redact_url("rtsp://h/x"), "rtsp://h/x");
        let e = check_rtsp_url("http://admin:secret@h/").unwrap_err().to_string();
        assert!(!e.contains("secret"), "{e}");
    }

    #[test]
    fn credentials_are_percent_encoded_into_urls() {
        assert_eq!(
            url_with_credentials("rtsp://old:x@h:554/a", Some("ad min"), Some("p@ss:/")),
            "rtsp://ad%20min:p%40ss%3A%2F@h:554/a"
        );
        assert_eq!(url_with_credentials("rtsp://h/a", None, Some("x")), "rtsp://h/a");
    }

    #[test]
    fn bad_settings_are_refused() {
        let mut c = config();
        c.segment_duration = Duration::from_millis(10);
        assert!(matches!(c.validate(), Err(Error::InvalidRecorderConfig(_))));
        let mut c = config();
        c.fragment_duration = Duration::from_secs(120);
        assert!(c.validate().is_err());
        let mut c = config();
        c.backoff_initial = Duration::ZERO;
        assert!(c.validate().is_err());
        assert!(config().validate().is_ok());
        let debug =
            format!("{:?}", RecorderConfig { password: Some("hunter2".into()), ..config() });
        assert!(!debug.contains("hunter2"));
    }
}
