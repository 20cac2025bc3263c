//! Motion watching on a live stream: one supervised watcher per camera decodes a stream at a
//! low frame rate and resolution and reports motion events.
//!
//! Pipeline: `rtspsrc` (video only, credentials and transport as for the recorder) →
//! `decodebin` (depayloader, parser, decoder) → `videorate` ([`MotionSettings::fps`], frames are
//! only dropped, never duplicated) → `videoconvert` to GRAY8 → `videoscale` to
//! [`MotionSettings::width`] (the height keeps the aspect ratio: 640x360 for a 16:9 stream) →
//! `appsink` (never blocks: it keeps at most one frame and drops the rest) → a
//! [`MotionDetector`] with the camera's zones and masks. Watch the camera's sub stream when it
//! has one: decoding a main stream costs several times more.
//!
//! Hysteresis: an event starts after [`MotionSettings::start_frames`] triggered frames in a row
//! (a single noisy frame never starts one) and ends once no frame has triggered for
//! [`MotionSettings::end_after`]. Times are wall-clock times of the frames (the [`Clock`]'s time
//! at the first frame of a connection, plus the stream's own time stamps from then on):
//! [`RecorderEvent::MotionStarted`] carries the time of the first triggered frame of the run
//! that started the event, [`RecorderEvent::MotionEnded`] the time of the last triggered frame.
//! A connection that is lost or a watcher that is stopped during motion ends the event at its
//! last triggered frame, so every started event is ended.
//!
//! The watcher reconnects with the recorder's capped back-off and publishes its status
//! ([`WatcherState`]) on a watch channel. Events go to an unbounded channel: a slow receiver
//! never holds up the stream.
//!
//! A recorder in [`RecordingMode::Motion`](crate::RecordingMode::Motion) runs its own watcher
//! and forwards its events. In continuous mode, start one beside the recorder with
//! [`WatcherConfig::for_recorder`] and the same event channel to store motion events and flag
//! the segments they overlap:
//!
//! ```no_run
//! # async fn demo() -> pv_media::Result<()> {
//! use std::sync::Arc;
//! use pv_core::{SystemClock, ids::CameraId};
//! use pv_media::layout::CameraDir;
//! use pv_media::record::{Recorder, RecorderConfig, RecorderEvent};
//! use pv_media::watch::{MotionWatcher, WatcherConfig};
//!
//! let camera = CameraId(1);
//! let mut config = RecorderConfig::new(
//!     camera,
//!     "rtsp://192.0.2.10/stream1",
//!     "/var/lib/pentavision",
//!     CameraDir::new(camera, None)?,
//! );
//! config.motion_url = Some("rtsp://192.0.2.10/stream2".into());
//! let clock = Arc::new(SystemClock::new());
//! let (tx, mut rx) = tokio::sync::mpsc::unbounded_channel();
//! let watcher = MotionWatcher::start(WatcherConfig::for_recorder(&config), clock.clone(), tx.clone())?;
//! let recorder = Recorder::start(config, clock, tx)?;
//! while let Some(event) = rx.recv().await {
//!     match event {
//!         RecorderEvent::MotionStarted { at, score, .. } => println!("motion at {at} ({score:.3})"),
//!         RecorderEvent::MotionEnded { started_at, ended_at, .. } => {
//!             println!("motion {started_at} – {ended_at}: flag the segments in between")
//!         }
//!         _ => {}
//!     }
//! }
//! watcher.stop().await;
//! recorder.stop().await;
//! # Ok(()) }
//! ```

use std::fmt;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::{Arc, Mutex};
use std::thread::JoinHandle;
use std::time::{Duration, Instant};

use chrono::{DateTime, Utc};
use gstreamer as gst;
use gstreamer::prelude::*;
use gstreamer_app as gst_app;
use pv_core::Clock;
use pv_core::ids::CameraId;
use tokio::sync::{mpsc, watch};

use crate::motion::{LumaFrame, MotionConfig, MotionDetector, ZoneSpec};
use crate::record::{
    RecorderConfig, RecorderEvent, RecorderStatus, StopSignal, Transport, check_rtsp_url,
    redact_url,
};
use crate::{Error, Result};

/// How the bus loop waits for a message before checking stop and watchdogs.
const POLL: Duration = Duration::from_millis(100);

/// How motion is detected on a stream.
#[derive(Debug, Clone, PartialEq)]
pub struct MotionSettings {
    /// Frames analysed per second (default 5, 1..=30); the stream's other frames are decoded
    /// and dropped.
    pub fps: u32,
    /// Width frames are scaled to before analysis, a multiple of 4 in 16..=3840 (default 640;
    /// the height keeps the stream's aspect ratio, 360 for 16:9). The detector block-averages
    /// further down to [`MotionConfig::max_analysis_width`].
    pub width: u32,
    /// Detection zones and masks (the camera's `motion_zones` rows; default none: the whole
    /// frame at [`MotionConfig::default_sensitivity`]).
    pub zones: Vec<ZoneSpec>,
    /// Detector settings (default [`MotionConfig::default`]).
    pub detector: MotionConfig,
    /// Triggered frames in a row that start an event (default 2: 0.4 s at 5 fps).
    pub start_frames: u32,
    /// How long no frame may trigger before the event ends (default 5 s).
    pub end_after: Duration,
}

impl Default for MotionSettings {
    fn default() -> Self {
        Self {
            fps: 5,
            width: 640,
            zones: Vec::new(),
            detector: MotionConfig::default(),
            start_frames: 2,
            end_after: Duration::from_secs(5),
        }
    }
}

/// Everything one watcher needs to know about its camera.
#[derive(Clone)]
pub struct WatcherConfig {
    /// The camera.
    pub camera: CameraId,
    /// The stream watched, `rtsp://host[:port]/path`: the sub stream when the camera has one.
    pub url: String,
    /// Stream login.
    pub username: Option<String>,
    /// Stream password.
    pub password: Option<String>,
    /// RTSP transport (default TCP).
    pub transport: Transport,
    /// Detection settings.
    pub settings: MotionSettings,
    /// First reconnect delay (default 500 ms).
    pub backoff_initial: Duration,
    /// Longest reconnect delay (default 8 s).
    pub backoff_max: Duration,
    /// How long a new connection may take to deliver its first frame (default 15 s).
    pub start_timeout: Duration,
    /// How long a streaming camera may deliver no frame before it counts as lost (default
    /// 10 s).
    pub stall_timeout: Duration,
}

impl fmt::Debug for WatcherConfig {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("WatcherConfig")
            .field("camera", &self.camera)
            .field("url", &redact_url(&self.url))
            .field("username", &self.username)
            .field("password", &self.password.as_ref().map(|_| "<redacted>"))
            .field("transport", &self.transport)
            .field("settings", &self.settings)
            .finish_non_exhaustive()
    }
}

impl WatcherConfig {
    /// A configuration with the defaults documented on each field.
    pub fn new(camera: CameraId, url: impl Into<String>) -> Self {
        Self {
            camera,
            url: url.into(),
            username: None,
            password: None,
            transport: Transport::Tcp,
            settings: MotionSettings::default(),
            backoff_initial: Duration::from_millis(500),
            backoff_max: Duration::from_secs(8),
            start_timeout: Duration::from_secs(15),
            stall_timeout: Duration::from_secs(10),
        }
    }

    /// The watcher of a recorder's camera: its [`RecorderConfig::motion_url`] (else its main
    /// stream), credentials, transport, [`RecorderConfig::motion`] settings, back-off and
    /// timeouts.
    pub fn for_recorder(c: &RecorderConfig) -> Self {
        Self {
            camera: c.camera,
            url: c.motion_url.clone().unwrap_or_else(|| c.url.clone()),
            username: c.username.clone(),
            password: c.password.clone(),
            transport: c.transport,
            settings: c.motion.clone(),
            backoff_initial: c.backoff_initial,
            backoff_max: c.backoff_max,
            start_timeout: c.start_timeout,
            stall_timeout: c.stall_timeout,
        }
    }

    pub(crate) fn validate(&self) -> Result<()> {
        if self.camera.0 <= 0 {
            return Err(Error::InvalidCameraId(self.camera));
        }
        check_rtsp_url(&self.url)?;
        let m = &self.settings;
        let checks = [
            ((1..=30).contains(&m.fps), "motion fps must be 1..=30"),
            (
                (16..=3840).contains(&m.width) && m.width.is_multiple_of(4),
                "motion width must be a multiple of 4 in 16..=3840",
            ),
            (m.start_frames >= 1, "motion start_frames must be >= 1"),
            (!m.end_after.is_zero(), "motion end_after must be > 0"),
            (
                !self.backoff_initial.is_zero() && self.backoff_max >= self.backoff_initial,
                "backoff_initial must be > 0 and <= backoff_max",
            ),
            (!self.start_timeout.is_zero(), "start_timeout must be > 0"),
            (!self.stall_timeout.is_zero(), "stall_timeout must be > 0"),
        ];
        if let Some((_, msg)) = checks.iter().find(|(ok, _)| !ok) {
            return Err(Error::InvalidRecorderConfig((*msg).to_owned()));
        }
        // Zones and detector settings are checked by building a detector once.
        let width = m.width as usize;
        MotionDetector::new(width, width * 9 / 16, &m.zones, m.detector.clone())?;
        Ok(())
    }

    fn backoff(&self, attempt: u32) -> Duration {
        let factor = 1u32 << attempt.saturating_sub(1).min(16);
        self.backoff_initial.saturating_mul(factor).min(self.backoff_max)
    }
}

/// A watcher's status and whether motion is going on.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct WatcherState {
    /// The connection: `Starting`, `Streaming` (frames are being analysed), `Reconnecting`,
    /// `Failed` (this machine cannot decode the stream; retried now and then) or `Stopped`.
    pub status: RecorderStatus,
    /// When `status` was set.
    pub since: DateTime<Utc>,
    /// Start of the motion event in progress, if any.
    pub motion_since: Option<DateTime<Utc>>,
}

/// What the hysteresis makes of the frames: events, and every triggered frame inside one (a
/// motion-mode recorder extends its post-roll on each).
#[derive(Debug, Clone, Copy, PartialEq)]
pub(crate) enum Signal {
    /// An event started at `at` (its first triggered frame); `last` is the frame that started
    /// it, `score` the highest score of the run.
    Started { at: DateTime<Utc>, last: DateTime<Utc>, score: f64 },
    /// A triggered frame during an event.
    Moving { at: DateTime<Utc> },
    /// The event ended at its last triggered frame.
    Ended { started_at: DateTime<Utc>, ended_at: DateTime<Utc>, peak_score: f64 },
}

impl Signal {
    /// The public event, for the signals that are one.
    pub(crate) fn event(self, camera: CameraId) -> Option<RecorderEvent> {
        match self {
            Signal::Started { at, score, .. } => {
                Some(RecorderEvent::MotionStarted { camera, at, score })
            }
            Signal::Moving { .. } => None,
            Signal::Ended { started_at, ended_at, peak_score } => {
                Some(RecorderEvent::MotionEnded { camera, started_at, ended_at, peak_score })
            }
        }
    }
}

/// Where signals go; called on a streaming thread, so it must not block.
pub(crate) type Sink = Arc<dyn Fn(Signal) + Send + Sync>;

#[derive(Debug, Clone, Copy)]
struct OpenEvent {
    started_at: DateTime<Utc>,
    last_at: DateTime<Utc>,
    peak: f64,
}

/// Start after `start_frames` triggered frames in a row, end after `end_after` without one.
#[derive(Debug)]
pub(crate) struct Hysteresis {
    start_frames: u32,
    end_after: chrono::Duration,
    run: u32,
    run_start: Option<DateTime<Utc>>,
    run_peak: f64,
    event: Option<OpenEvent>,
}

impl Hysteresis {
    pub(crate) fn new(start_frames: u32, end_after: Duration) -> Self {
        Self {
            start_frames: start_frames.max(1),
            end_after: chrono::Duration::from_std(end_after).unwrap_or(chrono::Duration::MAX),
            run: 0,
            run_start: None,
            run_peak: 0.0,
            event: None,
        }
    }

    /// One analysed frame at `at`.
    pub(crate) fn frame(
        &mut self,
        at: DateTime<Utc>,
        triggered: bool,
        score: f64,
    ) -> Option<Signal> {
        if let Some(event) = &mut self.event {
            if triggered {
                event.last_at = at;
                event.peak = event.peak.max(score);
                return Some(Signal::Moving { at });
            }
            if at - event.last_at >= self.end_after {
                return self.finish();
            }
            return None;
        }
        if !triggered {
            self.run = 0;
            return None;
        }
        self.run += 1;
        if self.run == 1 {
            self.run_start = Some(at);
            self.run_peak = score;
        } else {
            self.run_peak = self.run_peak.max(score);
        }
        if self.run < self.start_frames {
            return None;
        }
        let started_at = self.run_start.unwrap_or(at);
        self.run = 0;
        self.event = Some(OpenEvent { started_at, last_at: at, peak: self.run_peak });
        Some(Signal::Started { at: started_at, last: at, score: self.run_peak })
    }

    /// The stream ended: end the open event at its last triggered frame, forget a run.
    pub(crate) fn finish(&mut self) -> Option<Signal> {
        self.run = 0;
        self.event.take().map(|e| Signal::Ended {
            started_at: e.started_at,
            ended_at: e.last_at,
            peak_score: e.peak,
        })
    }

    fn motion_since(&self) -> Option<DateTime<Utc>> {
        self.event.map(|e| e.started_at)
    }
}

/// A running (or reconnecting) motion watcher. Dropping it asks it to stop without waiting.
#[derive(Debug)]
pub struct MotionWatcher {
    camera: CameraId,
    stop: Arc<StopSignal>,
    thread: Option<JoinHandle<()>>,
    state: watch::Receiver<WatcherState>,
}

impl MotionWatcher {
    /// Validate `config` and start watching on a new thread. [`RecorderEvent::MotionStarted`]
    /// and [`RecorderEvent::MotionEnded`] go to `events`; a closed receiver does not stop the
    /// watcher.
    pub fn start(
        config: WatcherConfig,
        clock: Arc<dyn Clock>,
        events: mpsc::UnboundedSender<RecorderEvent>,
    ) -> Result<MotionWatcher> {
        let camera = config.camera;
        let sink: Sink = Arc::new(move |signal: Signal| {
            if let Some(event) = signal.event(camera) {
                let _ = events.send(event);
            }
        });
        Self::start_with(config, clock, sink)
    }

    /// [`MotionWatcher::start`] with every signal going to `sink`.
    pub(crate) fn start_with(
        config: WatcherConfig,
        clock: Arc<dyn Clock>,
        sink: Sink,
    ) -> Result<MotionWatcher> {
        config.validate()?;
        crate::init()?;
        let camera = config.camera;
        let (state_tx, state) = watch::channel(WatcherState {
            status: RecorderStatus::Starting,
            since: clock.now(),
            motion_since: None,
        });
        let stop = Arc::new(StopSignal::default());
        let hysteresis =
            Mutex::new(Hysteresis::new(config.settings.start_frames, config.settings.end_after));
        let w = Arc::new(Watch {
            config,
            clock,
            sink,
            state: state_tx,
            stop: stop.clone(),
            hysteresis,
        });
        let thread = std::thread::Builder::new()
            .name(format!("motion-{camera}"))
            .spawn(move || supervise(&w))
            .map_err(|e| Error::Process {
                program: "motion watcher",
                reason: format!("cannot start thread: {e}"),
            })?;
        Ok(MotionWatcher { camera, stop, thread: Some(thread), state })
    }

    /// The camera watched.
    pub fn camera(&self) -> CameraId {
        self.camera
    }

    /// The status channel.
    pub fn state(&self) -> watch::Receiver<WatcherState> {
        self.state.clone()
    }

    /// Stop: end any motion event in progress (its [`RecorderEvent::MotionEnded`] is sent)
    /// and wait for the thread.
    pub async fn stop(mut self) {
        self.stop.set();
        if let Some(thread) = self.thread.take() {
            let _ = tokio::task::spawn_blocking(move || thread.join()).await;
        }
    }

    /// [`MotionWatcher::stop`] for synchronous callers.
    pub fn stop_blocking(mut self) {
        self.stop.set();
        if let Some(thread) = self.thread.take() {
            let _ = thread.join();
        }
    }
}

impl Drop for MotionWatcher {
    fn drop(&mut self) {
        self.stop.set();
    }
}

/// The watcher thread's state, shared with the streaming threads.
struct Watch {
    config: WatcherConfig,
    clock: Arc<dyn Clock>,
    sink: Sink,
    state: watch::Sender<WatcherState>,
    stop: Arc<StopSignal>,
    hysteresis: Mutex<Hysteresis>,
}

impl Watch {
    fn set_status(&self, status: RecorderStatus) {
        let since = self.clock.now();
        self.state.send_modify(|s| {
            if s.status != status {
                s.status = status;
                s.since = since;
            }
        });
    }

    fn signal(&self, signal: Signal, motion_since: Option<DateTime<Utc>>) {
        if !matches!(signal, Signal::Moving { .. }) {
            tracing::info!(camera = %self.config.camera, ?signal, "motion");
            self.state.send_modify(|s| s.motion_since = motion_since);
        }
        (self.sink)(signal);
    }

    fn end_event(&self) {
        let mut h = self.hysteresis.lock().unwrap_or_else(|p| p.into_inner());
        if let Some(signal) = h.finish() {
            drop(h);
            self.signal(signal, None);
        }
    }
}

/// How one attempt ended.
enum End {
    Stopped,
    Lost { reason: String, streamed: bool },
    Unusable { reason: String },
}

fn supervise(w: &Arc<Watch>) {
    let camera = w.config.camera;
    let mut attempt = 0u32;
    tracing::info!(camera = %camera, url = %redact_url(&w.config.url), "motion watcher started");
    while !w.stop.is_set() {
        let outcome = std::panic::catch_unwind(std::panic::AssertUnwindSafe(|| run(w)));
        let end = outcome.unwrap_or_else(|_| {
            tracing::error!(camera = %camera, "motion watcher attempt panicked");
            End::Lost { reason: "internal error in the motion watcher".into(), streamed: false }
        });
        w.end_event();
        match end {
            End::Stopped => break,
            End::Unusable { reason } => {
                tracing::error!(camera = %camera, reason, "motion watcher failed");
                w.set_status(RecorderStatus::Failed { reason });
                if w.stop.sleep(w.config.backoff_max * 8) {
                    break;
                }
            }
            End::Lost { reason, streamed } => {
                if streamed {
                    attempt = 0;
                }
                attempt = attempt.saturating_add(1);
                let delay = w.config.backoff(attempt);
                tracing::warn!(camera = %camera, attempt, delay_ms = delay.as_millis() as u64, reason, "motion stream lost; reconnecting");
                w.set_status(RecorderStatus::Reconnecting { attempt, reason });
                if w.stop.sleep(delay) {
                    break;
                }
            }
        }
    }
    w.set_status(RecorderStatus::Stopped);
    tracing::info!(camera = %camera, "motion watcher stopped");
}

/// State shared between one attempt's streaming threads and its bus loop.
pub(crate) struct Liveness {
    started: Instant,
    /// Milliseconds since `started` (+1) of the last frame; 0: none yet.
    last_ms: AtomicU64,
    /// The camera answered DESCRIBE with streams.
    pub(crate) answered: AtomicBool,
}

impl Liveness {
    pub(crate) fn new() -> Self {
        Self {
            started: Instant::now(),
            last_ms: AtomicU64::new(0),
            answered: AtomicBool::new(false),
        }
    }

    pub(crate) fn touch(&self) {
        let ms = self.started.elapsed().as_millis() as u64 + 1;
        self.last_ms.store(ms, Ordering::Relaxed);
    }

    pub(crate) fn has_data(&self) -> bool {
        self.last_ms.load(Ordering::Relaxed) != 0
    }

    /// Why the stream counts as lost: nothing within `start_timeout`, or nothing for
    /// `stall_timeout`.
    pub(crate) fn verdict(
        &self,
        start_timeout: Duration,
        stall_timeout: Duration,
    ) -> Option<String> {
        let elapsed = self.started.elapsed();
        let last = self.last_ms.load(Ordering::Relaxed);
        if last == 0 {
            return (elapsed > start_timeout).then(|| {
                if self.answered.load(Ordering::SeqCst) {
                    format!("no usable video within {} s", start_timeout.as_secs())
                } else {
                    format!("camera did not answer within {} s", start_timeout.as_secs())
                }
            });
        }
        let idle = elapsed.saturating_sub(Duration::from_millis(last - 1));
        (idle > stall_timeout).then(|| format!("no media from the camera for {} s", idle.as_secs()))
    }
}

/// A GStreamer element, or why there is none.
pub(crate) fn make(factory: &str) -> std::result::Result<gst::Element, String> {
    gst::ElementFactory::make(factory)
        .build()
        .map_err(|_| format!("GStreamer element {factory} is not installed"))
}

/// An `rtspsrc` that offers only the video stream.
pub(crate) fn rtsp_source(
    url: &str,
    username: Option<&str>,
    password: Option<&str>,
    transport: Transport,
    stall_timeout: Duration,
    liveness: &Arc<Liveness>,
) -> std::result::Result<gst::Element, String> {
    let src = make("rtspsrc")?;
    src.set_property("location", url);
    crate::record::gst::accept_camera_certificates(&src, url);
    src.set_property("latency", 200u32);
    src.set_property_from_str("protocols", transport.as_str());
    let timeout_us = stall_timeout.as_micros().min(u128::from(u64::MAX)) as u64;
    src.set_property("tcp-timeout", timeout_us);
    src.set_property("timeout", timeout_us);
    if let Some(user) = username {
        src.set_property("user-id", user);
    }
    if let Some(pass) = password {
        src.set_property("user-pw", pass);
    }
    let live = liveness.clone();
    src.connect("select-stream", false, move |args| {
        live.answered.store(true, Ordering::SeqCst);
        let caps = args.get(2).and_then(|v| v.get::<gst::Caps>().ok());
        let video = caps
            .as_ref()
            .and_then(|c| c.structure(0))
            .is_some_and(|st| st.get::<&str>("media").ok() == Some("video"));
        Some(video.to_value())
    });
    Ok(src)
}

/// Places a stream's buffers on the wall clock: the [`Clock`]'s time when the first buffer
/// reached the sink, at the pipeline's running time then, plus running-time differences. For
/// a live RTSP source a buffer's running time is when it arrived (jitter-corrected), so two
/// connections to one camera, and the continuous recorder, agree on frame times.
#[derive(Debug, Clone, Copy, Default)]
pub(crate) struct WallMap {
    anchor: Option<(DateTime<Utc>, u64)>,
}

impl WallMap {
    /// The running time of `ts` in `sample`'s segment (`ts` itself without a time segment).
    pub(crate) fn running_time(segment: Option<&gst::Segment>, ts: gst::ClockTime) -> u64 {
        segment
            .and_then(|s| s.downcast_ref::<gst::ClockTime>())
            .and_then(|s| s.to_running_time(ts))
            .map_or(ts.nseconds(), gst::ClockTime::nseconds)
    }

    /// Anchor on the first buffer: `now` is the wall-clock time it arrived, `now_rt` the
    /// element's running time then (None: the buffer's own).
    pub(crate) fn anchor(&mut self, rt: u64, now: DateTime<Utc>, now_rt: Option<u64>) {
        if self.anchor.is_none() {
            self.anchor = Some((now, now_rt.unwrap_or(rt)));
        }
    }

    /// Whether the first buffer has been seen.
    pub(crate) fn is_anchored(&self) -> bool {
        self.anchor.is_some()
    }

    /// The wall-clock time of running time `rt`.
    pub(crate) fn wall(&self, rt: u64) -> Option<DateTime<Utc>> {
        self.anchor
            .map(|(wall, base)| wall + chrono::Duration::nanoseconds(rt as i64 - base as i64))
    }
}

/// Per-attempt analysis state, touched by the appsink's streaming thread.
struct Analysis {
    detector: Option<MotionDetector>,
    size: (usize, usize),
    wall: WallMap,
}

fn run(w: &Arc<Watch>) -> End {
    let liveness = Arc::new(Liveness::new());
    let pipeline = match build(w, &liveness) {
        Ok(p) => p,
        Err(reason) => return End::Unusable { reason },
    };
    let end = drive(w, &liveness, &pipeline);
    let _ = pipeline.set_state(gst::State::Null);
    end
}

fn build(w: &Arc<Watch>, liveness: &Arc<Liveness>) -> std::result::Result<gst::Pipeline, String> {
    let c = &w.config;
    let pipeline = gst::Pipeline::with_name(&format!("motion-{}", c.camera));
    let src = rtsp_source(
        &c.url,
        c.username.as_deref(),
        c.password.as_deref(),
        c.transport,
        c.stall_timeout,
        liveness,
    )?;
    let decode = make("decodebin")?;
    let rate = make("videorate")?;
    rate.set_property("drop-only", true);
    let convert = make("videoconvert")?;
    let scale = make("videoscale")?;
    let filter = make("capsfilter")?;
    let caps = gst::Caps::builder("video/x-raw")
        .field("format", "GRAY8")
        .field("width", c.settings.width as i32)
        .field("pixel-aspect-ratio", gst::Fraction::new(1, 1))
        .field("framerate", gst::Fraction::new(c.settings.fps as i32, 1))
        .build();
    filter.set_property("caps", &caps);
    let sink = gst_app::AppSink::builder().sync(false).max_buffers(1).drop(true).build();
    pipeline
        .add_many([&src, &decode, &rate, &convert, &scale, &filter, sink.upcast_ref()])
        .map_err(|e| e.to_string())?;
    gst::Element::link_many([&rate, &convert, &scale, &filter, sink.upcast_ref()])
        .map_err(|e| e.to_string())?;

    // One decoder thread: a low-rate analysis stream gains nothing from frame threading.
    decode.connect("element-added", false, |args| {
        if let Some(e) = args.get(1).and_then(|v| v.get::<gst::Element>().ok())
            && e.find_property("max-threads").is_some_and(|p| p.value_type() == i32::static_type())
        {
            e.set_property("max-threads", 1i32);
        }
        None
    });
    let decode_sink = decode.static_pad("sink").ok_or("decodebin has no sink pad")?;
    src.connect_pad_added(move |_, pad| {
        if !decode_sink.is_linked() {
            let _ = pad.link(&decode_sink);
        }
    });
    let rate_sink = rate.static_pad("sink").ok_or("videorate has no sink pad")?;
    decode.connect_pad_added(move |_, pad| {
        let raw = pad
            .current_caps()
            .or_else(|| Some(pad.query_caps(None)))
            .and_then(|c| c.structure(0).map(|s| s.name().starts_with("video/x-raw")))
            .unwrap_or(false);
        if raw && !rate_sink.is_linked() {
            let _ = pad.link(&rate_sink);
        }
    });

    let analysis =
        Arc::new(Mutex::new(Analysis { detector: None, size: (0, 0), wall: WallMap::default() }));
    let watch = w.clone();
    let live = liveness.clone();
    sink.set_callbacks(
        gst_app::AppSinkCallbacks::builder()
            .new_sample(move |sink| {
                let sample = sink.pull_sample().map_err(|_| gst::FlowError::Eos)?;
                live.touch();
                let mut a = analysis.lock().unwrap_or_else(|p| p.into_inner());
                if !a.wall.is_anchored()
                    && let Some(pts) = sample.buffer().and_then(|b| b.pts())
                {
                    let rt = WallMap::running_time(sample.segment(), pts);
                    let now_rt = sink.current_running_time().map(gst::ClockTime::nseconds);
                    a.wall.anchor(rt, watch.clock.now(), now_rt);
                }
                if let Err(err) = analyse(&watch, &mut a, &sample) {
                    tracing::debug!(camera = %watch.config.camera, error = %err, "frame not analysed");
                }
                Ok(gst::FlowSuccess::Ok)
            })
            .build(),
    );
    Ok(pipeline)
}

/// Score one frame and feed the hysteresis.
fn analyse(w: &Watch, a: &mut Analysis, sample: &gst::Sample) -> Result<()> {
    let buffer =
        sample.buffer().ok_or_else(|| Error::InvalidFrame("sample without buffer".into()))?;
    let st = sample
        .caps()
        .and_then(|c| c.structure(0))
        .ok_or_else(|| Error::InvalidFrame("sample without caps".into()))?;
    let width = st.get::<i32>("width").ok().and_then(|v| usize::try_from(v).ok()).unwrap_or(0);
    let height = st.get::<i32>("height").ok().and_then(|v| usize::try_from(v).ok()).unwrap_or(0);
    let map = buffer.map_readable().map_err(|_| Error::InvalidFrame("unreadable buffer".into()))?;
    let data = map.as_slice();
    // GRAY8 rows are padded to 4 bytes unless the buffer says otherwise by its size.
    let stride = match data.len().checked_div(height) {
        Some(s) if s >= width && data.len().is_multiple_of(height) => s,
        _ => width.next_multiple_of(4),
    };
    let frame = LumaFrame::new(width, height, stride, data)?;
    if a.detector.is_none() || a.size != (width, height) {
        let s = &w.config.settings;
        a.detector = Some(MotionDetector::new(width, height, &s.zones, s.detector.clone())?);
        a.size = (width, height);
        tracing::debug!(camera = %w.config.camera, width, height, "motion analysis started");
    }
    let Some(detector) = a.detector.as_mut() else { return Ok(()) };
    let result = detector.process(&frame)?;
    let at = buffer
        .pts()
        .and_then(|pts| a.wall.wall(WallMap::running_time(sample.segment(), pts)))
        .unwrap_or_else(|| w.clock.now());
    let mut h = w.hysteresis.lock().unwrap_or_else(|p| p.into_inner());
    let signal = h.frame(at, result.triggered, result.score);
    let since = h.motion_since();
    drop(h);
    if let Some(signal) = signal {
        w.signal(signal, since);
    }
    Ok(())
}

fn drive(w: &Watch, liveness: &Liveness, pipeline: &gst::Pipeline) -> End {
    let camera = w.config.camera;
    let Some(bus) = pipeline.bus() else {
        return End::Unusable { reason: "pipeline has no bus".into() };
    };
    if let Err(err) = pipeline.set_state(gst::State::Playing) {
        return End::Lost { reason: err.to_string(), streamed: false };
    }
    let mut streamed = false;
    loop {
        if w.stop.is_set() {
            return End::Stopped;
        }
        if !streamed && liveness.has_data() {
            streamed = true;
            tracing::info!(camera = %camera, "watching for motion");
            w.set_status(RecorderStatus::Streaming);
        }
        if let Some(reason) = liveness.verdict(w.config.start_timeout, w.config.stall_timeout) {
            return End::Lost { reason, streamed };
        }
        let Some(msg) = bus.timed_pop(gst::ClockTime::from_mseconds(POLL.as_millis() as u64))
        else {
            continue;
        };
        match msg.view() {
            gst::MessageView::Eos(_) => {
                return End::Lost { reason: "the camera ended the stream".into(), streamed };
            }
            gst::MessageView::Error(err) => {
                let source = err.src().map(|s| s.name().to_string()).unwrap_or_default();
                let reason = format!("{source}: {}", err.error());
                tracing::debug!(camera = %camera, reason, debug = ?err.debug(), "motion pipeline error");
                return End::Lost { reason, streamed };
            }
            _ => {}
        }
    }
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]
    use super::*;
    use chrono::TimeZone;

    fn t(ms: i64) -> DateTime<Utc> {
        Utc.with_ymd_and_hms(2026, 1, 1, 0, 0, 0).unwrap() + chrono::Duration::milliseconds(ms)
    }

    #[test]
    fn events_start_after_n_frames_and_end_after_a_quiet_time() {
        let mut h = Hysteresis::new(3, Duration::from_secs(2));
        // Two triggered frames and a quiet one: no event.
        assert_eq!(h.frame(t(0), true, 0.1), None);
        assert_eq!(h.frame(t(200), true, 0.2), None);
        assert_eq!(h.frame(t(400), false, 0.0), None);
        assert_eq!(h.frame(t(600), true, 0.1), None);
        assert_eq!(h.frame(t(800), true, 0.3), None);
        assert_eq!(
            h.frame(t(1000), true, 0.2),
            Some(Signal::Started { at: t(600), last: t(1000), score: 0.3 })
        );
        assert_eq!(h.motion_since(), Some(t(600)));
        assert_eq!(h.frame(t(1200), true, 0.5), Some(Signal::Moving { at: t(1200) }));
        // Quiet for less than end_after: still going; a triggered frame continues it.
        assert_eq!(h.frame(t(3000), false, 0.0), None);
        assert_eq!(h.frame(t(3100), true, 0.1), Some(Signal::Moving { at: t(3100) }));
        assert_eq!(h.frame(t(5000), false, 0.0), None);
        assert_eq!(
            h.frame(t(5100), false, 0.0),
            Some(Signal::Ended { started_at: t(600), ended_at: t(3100), peak_score: 0.5 })
        );
        assert_eq!(h.motion_since(), None);
        assert_eq!(h.finish(), None);
    }

    #[test]
    fn a_lost_stream_ends_the_event_at_its_last_motion() {
        let mut h = Hysteresis::new(1, Duration::from_secs(5));
        assert!(matches!(h.frame(t(0), true, 0.4), Some(Signal::Started { .. })));
        h.frame(t(500), true, 0.2);
        assert_eq!(
            h.finish(),
            Some(Signal::Ended { started_at: t(0), ended_at: t(500), peak_score: 0.4 })
        );
        // A run in progress is forgotten, not carried into the next connection.
        let mut h = Hysteresis::new(2, Duration::from_secs(5));
        h.frame(t(0), true, 0.4);
        assert_eq!(h.finish(), None);
        assert_eq!(h.frame(t(100), true, 0.4), None);
    }

    #[test]
    fn settings_are_checked() {
        let ok = WatcherConfig::new(CameraId(1), "rtsp://127.0.0.1/cam");
        assert!(ok.validate().is_ok());
        let bad = [
            WatcherConfig { camera: CameraId(0), ..ok.clone() },
            WatcherConfig { url: "http://x/".into(), ..ok.clone() },
            WatcherConfig {
                settings: MotionSettings { fps: 0, ..MotionSettings::default() },
                ..ok.clone()
            },
            WatcherConfig {
                settings: MotionSettings { width: 642, ..MotionSettings::default() },
                ..ok.clone()
            },
            WatcherConfig {
                settings: MotionSettings { start_frames: 0, ..MotionSettings::default() },
                ..ok.clone()
            },
            WatcherConfig {
                settings: MotionSettings {
                    zones: vec![ZoneSpec::full_frame(None, 2.0)],
                    ..MotionSettings::default()
                },
                ..ok.clone()
            },
        ];
        for c in bad {
            let err = c.validate().unwrap_err();
            assert_eq!(err.kind(), pv_core::ErrorKind::InvalidInput, "{c:?}: {err}");
        }
        let debug = format!("{:?}", WatcherConfig { password: Some("hunter2".into()), ..ok });
        assert!(!debug.contains("hunter2"));
    }
}
