//! RTMP out: push a camera's [`StreamTap`] to an RTMP or RTMPS endpoint (YouTube, Twitch, a
//! local nginx-rtmp, …) without transcoding.
//!
//! [`RtmpPush::start`] runs one push on its own thread:
//!
//! `appsrc (tap caps) → h264parse → flvmux streamable=true → rtmp2sink`, plus
//! `appsrc → aacparse → flvmux` when the camera sends AAC.
//!
//! The access units come from the tap the recorder feeds, so a push costs no camera connection
//! and no decoding, and it can never slow the recorder: the tap's broadcast drops units for a
//! push that falls behind, and the push then skips to the next key frame (as it does when the
//! endpoint is slower than the camera and more than [`RtmpConfig::max_queue_bytes`] wait to be
//! sent). A new push starts from the tap's current group of pictures, so the endpoint gets a
//! key frame at once. FLV carries H.264, not H.265: an H.265 camera is refused
//! ([`RtmpError::UnsupportedCodec`]). G.711 is never in the tap (the recorder takes AAC only).
//!
//! The sink is `rtmp2sink` (gst-plugins-bad), not `rtmpsink` (librtmp): on Debian 12's
//! GStreamer 1.22 `rtmp2sink` connects asynchronously (a dead endpoint never blocks a state
//! change), reports a refused or dropped connection as a bus error at once (that is what the
//! reconnect loop acts on), speaks RTMPS through GIO's TLS (`glib-networking`), and takes the
//! host, application and stream key as separate properties, so a stream key is never parsed
//! out of a URL by C code or printed by it. `rtmpsink` blocks in librtmp's connect and write
//! calls and reports failures late and vaguely.
//!
//! When the endpoint refuses or drops the connection the push reconnects with capped
//! exponential back-off ([`RtmpConfig::backoff_initial`] doubling up to
//! [`RtmpConfig::backoff_max`]). When the camera reconnects (a new tap generation) with the
//! same caps the push continues on the same connection with continuous time stamps; when the
//! caps change it reconnects. Status ([`PushStatus`]) is published on a watch channel.
//!
//! Stream keys are secrets: logs and errors show the target as [`redact_rtmp_url`] does
//! (no user info, the stream key — the path's last component — and the query replaced).
//!
//! ```no_run
//! # async fn demo(recorder: &pv_media::record::Recorder) -> Result<(), pv_media::rtmp::RtmpError> {
//! use pv_media::rtmp::{PushStatus, RtmpConfig, RtmpPush};
//! let push = RtmpPush::start(
//!     recorder.tap(),
//!     RtmpConfig::new("rtmp://a.rtmp.youtube.com/live2/xxxx-xxxx-xxxx"),
//! )?;
//! let mut status = push.status();
//! while status.changed().await.is_ok() {
//!     if *status.borrow() == PushStatus::Pushing {
//!         break;
//!     }
//! }
//! push.stop().await;
//! # Ok(()) }
//! ```

use std::fmt;
use std::thread::JoinHandle;
use std::time::{Duration, Instant};

use gstreamer as gst;
use gstreamer::prelude::*;
use gstreamer_app as gst_app;
use pv_core::ErrorKind;
use tokio::sync::watch;

use crate::tap::gst::{audio_caps, buffer_of, video_caps};
use crate::tap::{AccessUnit, AudioCodec, StreamTap, Subscription, TapInfo, Track, VideoCodec};

/// How often the push looks at its pipeline's bus and the tap when no unit arrives.
const TICK: Duration = Duration::from_millis(200);
/// How long a clean stop may take to send the end of the stream.
const STOP_TIMEOUT: Duration = Duration::from_secs(3);
/// What flvmux waits for the other track before writing what it has.
const MUX_LATENCY: Duration = Duration::from_millis(500);

/// One push's settings.
#[derive(Clone)]
pub struct RtmpConfig {
    /// `rtmp://[user:password@]host[:port]/application/stream-key` or `rtmps://…` (port 1935
    /// and 443 by default). The last path component is the stream key.
    pub url: String,
    /// Push AAC audio when the camera sends it (default true).
    pub audio: bool,
    /// First reconnect delay (default 1 s).
    pub backoff_initial: Duration,
    /// Longest reconnect delay (default 30 s).
    pub backoff_max: Duration,
    /// How long connecting and each network operation may take (default 10 s; whole
    /// seconds).
    pub timeout: Duration,
    /// How long to wait for the audio caps of a camera that announced audio before pushing
    /// video only (default 3 s).
    pub audio_wait: Duration,
    /// Bytes that may wait to be sent before the push drops frames up to the next key frame
    /// (default 8 MiB).
    pub max_queue_bytes: u64,
}

impl fmt::Debug for RtmpConfig {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("RtmpConfig")
            .field("url", &redact_rtmp_url(&self.url))
            .field("audio", &self.audio)
            .field("backoff_initial", &self.backoff_initial)
            .field("backoff_max", &self.backoff_max)
            .field("timeout", &self.timeout)
            .finish_non_exhaustive()
    }
}

impl RtmpConfig {
    /// A configuration with the defaults documented on each field.
    pub fn new(url: impl Into<String>) -> Self {
        Self {
            url: url.into(),
            audio: true,
            backoff_initial: Duration::from_secs(1),
            backoff_max: Duration::from_secs(30),
            timeout: Duration::from_secs(10),
            audio_wait: Duration::from_secs(3),
            max_queue_bytes: 8 << 20,
        }
    }

    fn validate(&self) -> Result<(), RtmpError> {
        if self.backoff_initial.is_zero() || self.backoff_max < self.backoff_initial {
            return Err(RtmpError::InvalidConfig(
                "backoff_initial must be > 0 and <= backoff_max".into(),
            ));
        }
        if self.timeout < Duration::from_secs(1) {
            return Err(RtmpError::InvalidConfig("timeout must be >= 1 s".into()));
        }
        if self.max_queue_bytes < 64 << 10 {
            return Err(RtmpError::InvalidConfig("max_queue_bytes must be >= 64 KiB".into()));
        }
        Ok(())
    }

    /// The reconnect delay before attempt `attempt` (1-based).
    fn backoff(&self, attempt: u32) -> Duration {
        let factor = 1u32 << attempt.saturating_sub(1).min(16);
        self.backoff_initial.saturating_mul(factor).min(self.backoff_max)
    }
}

/// A push's status.
#[derive(Debug, Clone, PartialEq, Eq)]
#[non_exhaustive]
pub enum PushStatus {
    /// Nothing to push: the camera is not streaming into the tap, or sends a codec RTMP
    /// cannot carry. The push starts (or resumes) when it can.
    WaitingForVideo {
        /// Why.
        reason: String,
    },
    /// Connecting to the endpoint.
    Connecting,
    /// Connected and sending.
    Pushing,
    /// The endpoint refused or dropped the connection; retrying after a back-off delay.
    Reconnecting {
        /// Failed attempts in a row (1-based).
        attempt: u32,
        /// Why the last attempt failed (stream key removed).
        reason: String,
    },
    /// Stopped by [`RtmpPush::stop`].
    Stopped,
}

impl PushStatus {
    /// `waiting`, `connecting`, `pushing`, `reconnecting`, `stopped`.
    pub fn as_str(&self) -> &'static str {
        match self {
            PushStatus::WaitingForVideo { .. } => "waiting",
            PushStatus::Connecting => "connecting",
            PushStatus::Pushing => "pushing",
            PushStatus::Reconnecting { .. } => "reconnecting",
            PushStatus::Stopped => "stopped",
        }
    }

    /// The reason, for the states that have one.
    pub fn reason(&self) -> Option<&str> {
        match self {
            PushStatus::WaitingForVideo { reason } | PushStatus::Reconnecting { reason, .. } => {
                Some(reason)
            }
            _ => None,
        }
    }
}

/// Why a push cannot start.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum RtmpError {
    /// The target URL is not usable.
    #[error("invalid RTMP URL {url:?}: {reason}")]
    InvalidUrl {
        /// The URL, redacted ([`redact_rtmp_url`]).
        url: String,
        /// What is wrong with it.
        reason: &'static str,
    },
    /// The camera's codec cannot travel in FLV.
    #[error("{0} cannot be pushed over RTMP: FLV carries H.264 video only (record H.264 for RTMP)")]
    UnsupportedCodec(VideoCodec),
    /// A setting out of range.
    #[error("invalid RTMP push setting: {0}")]
    InvalidConfig(String),
    /// A GStreamer element the push needs is not installed.
    #[error("GStreamer element {0} is not installed (gstreamer1.0-plugins-bad/-good)")]
    MissingElement(&'static str),
    /// GStreamer could not be initialised, or the push thread could not start.
    #[error(transparent)]
    Media(#[from] crate::Error),
}

impl RtmpError {
    /// Classify this error.
    pub fn kind(&self) -> ErrorKind {
        match self {
            RtmpError::InvalidUrl { .. }
            | RtmpError::UnsupportedCodec(_)
            | RtmpError::InvalidConfig(_) => ErrorKind::InvalidInput,
            RtmpError::MissingElement(_) => ErrorKind::Internal,
            RtmpError::Media(e) => e.kind(),
        }
    }
}

/// A running push. Dropping it stops it (without waiting); [`RtmpPush::stop`] ends the stream
/// cleanly and waits.
#[derive(Debug)]
pub struct RtmpPush {
    target: String,
    stop: watch::Sender<bool>,
    thread: Option<JoinHandle<()>>,
    status: watch::Receiver<PushStatus>,
}

impl RtmpPush {
    /// Check the target and start pushing `tap` on a new thread. Refuses an H.265 tap; a tap
    /// that is not live yet is pushed once it is.
    pub fn start(tap: StreamTap, config: RtmpConfig) -> Result<RtmpPush, RtmpError> {
        let target = Target::parse(&config.url)?;
        config.validate()?;
        if let Some(codec @ VideoCodec::H265) = tap.info().video_codec() {
            return Err(RtmpError::UnsupportedCodec(codec));
        }
        crate::init()?;
        for factory in ["appsrc", "h264parse", "aacparse", "flvmux", "rtmp2sink"] {
            if gst::ElementFactory::find(factory).is_none() {
                return Err(RtmpError::MissingElement(factory));
            }
        }
        let runtime =
            tokio::runtime::Builder::new_current_thread().enable_time().build().map_err(|e| {
                crate::Error::Process { program: "rtmp push", reason: format!("runtime: {e}") }
            })?;
        let (status_tx, status) = watch::channel(PushStatus::Connecting);
        let (stop, stop_rx) = watch::channel(false);
        let redacted = target.redacted.clone();
        let worker = Worker {
            tap,
            config,
            target,
            status: status_tx,
            stop: stop_rx,
            started: Instant::now(),
            first_push_logged: false,
        };
        let thread = std::thread::Builder::new()
            .name("rtmp-push".into())
            .spawn(move || runtime.block_on(worker.run()))
            .map_err(|e| crate::Error::Process {
                program: "rtmp push",
                reason: format!("cannot start thread: {e}"),
            })?;
        tracing::info!(target = %redacted, "RTMP push started");
        Ok(RtmpPush { target: redacted, stop, thread: Some(thread), status })
    }

    /// The target, redacted (safe to show and log).
    pub fn target(&self) -> &str {
        &self.target
    }

    /// The status channel.
    pub fn status(&self) -> watch::Receiver<PushStatus> {
        self.status.clone()
    }

    /// Stop: end the stream cleanly (FCUnpublish / deleteStream) and wait for the thread.
    pub async fn stop(mut self) {
        let _ = self.stop.send(true);
        if let Some(thread) = self.thread.take() {
            let _ = tokio::task::spawn_blocking(move || thread.join()).await;
        }
    }

    /// [`RtmpPush::stop`] for synchronous callers.
    pub fn stop_blocking(mut self) {
        let _ = self.stop.send(true);
        if let Some(thread) = self.thread.take() {
            let _ = thread.join();
        }
    }
}

impl Drop for RtmpPush {
    fn drop(&mut self) {
        let _ = self.stop.send(true);
    }
}

/// The URL for logs: no user info, the stream key (last path component) and any query
/// replaced by `<key>`. Text that is not an RTMP URL is replaced entirely.
pub fn redact_rtmp_url(url: &str) -> String {
    let Some((scheme, rest)) = url.split_once("://") else {
        return "<not a URL>".to_owned();
    };
    let rest = rest.split(['?', '#']).next().unwrap_or_default();
    let (authority, path) = match rest.find('/') {
        Some(i) => rest.split_at(i),
        None => (rest, ""),
    };
    let host = authority.rsplit_once('@').map_or(authority, |(_, h)| h);
    let path = path.trim_end_matches('/');
    let app = match path.rfind('/') {
        Some(i) if i > 0 => &path[..i],
        _ => path,
    };
    if app.len() == path.len() {
        // No stream key in the path: it may be anywhere else; show the host only.
        return format!("{scheme}://{host}/<key>");
    }
    format!("{scheme}://{host}{app}/<key>")
}

/// A parsed push target.
#[derive(Clone)]
struct Target {
    rtmps: bool,
    host: String,
    port: u16,
    application: String,
    stream: String,
    username: Option<String>,
    password: Option<String>,
    redacted: String,
}

impl Target {
    fn parse(url: &str) -> Result<Target, RtmpError> {
        let redacted = redact_rtmp_url(url);
        let invalid = |reason| RtmpError::InvalidUrl { url: redacted.clone(), reason };
        if url.chars().any(|c| c.is_control() || c == ' ') {
            return Err(invalid("spaces and control characters are not allowed"));
        }
        let (scheme, rest) = url.split_once("://").ok_or_else(|| invalid("not a URL"))?;
        let rtmps = match scheme.to_ascii_lowercase().as_str() {
            "rtmp" => false,
            "rtmps" => true,
            _ => return Err(invalid("expected rtmp:// or rtmps://")),
        };
        let (authority, path) = match rest.find('/') {
            Some(i) => rest.split_at(i),
            None => (rest, ""),
        };
        let (userinfo, hostport) = match authority.rsplit_once('@') {
            Some((u, h)) => (Some(u), h),
            None => (None, authority),
        };
        let (host, port) = split_host_port(hostport).ok_or_else(|| invalid("bad port"))?;
        if host.is_empty() {
            return Err(invalid("no host"));
        }
        let port = port.unwrap_or(if rtmps { 443 } else { 1935 });
        let (path, query) = match path.split_once('?') {
            Some((p, q)) => (p, Some(q)),
            None => (path, None),
        };
        let path = path.trim_start_matches('/');
        let (application, stream) = path
            .rsplit_once('/')
            .filter(|(app, key)| !app.is_empty() && !key.is_empty())
            .ok_or_else(|| invalid("expected /application/stream-key"))?;
        let stream = match query {
            Some(q) => format!("{stream}?{q}"),
            None => stream.to_owned(),
        };
        let (username, password) = match userinfo {
            Some(u) => match u.split_once(':') {
                Some((user, pass)) => (Some(percent_decode(user)), Some(percent_decode(pass))),
                None => (Some(percent_decode(u)), None),
            },
            None => (None, None),
        };
        Ok(Target {
            rtmps,
            host: host.to_owned(),
            port,
            application: application.to_owned(),
            stream,
            username,
            password,
            redacted,
        })
    }

    /// Remove the secrets from a message (GStreamer errors may quote them).
    fn scrub(&self, text: &str) -> String {
        let mut out = text.to_owned();
        let key = self.stream.split('?').next().unwrap_or_default();
        for secret in [Some(self.stream.as_str()), Some(key), self.password.as_deref()]
            .into_iter()
            .flatten()
            .filter(|s| s.len() >= 3)
        {
            out = out.replace(secret, "<redacted>");
        }
        out
    }
}

/// `host[:port]`, `[v6]:port`; None when the port is not a number.
fn split_host_port(s: &str) -> Option<(&str, Option<u16>)> {
    if let Some(rest) = s.strip_prefix('[') {
        let (host, after) = rest.split_once(']')?;
        return match after.strip_prefix(':') {
            Some(p) => Some((host, Some(p.parse().ok()?))),
            None if after.is_empty() => Some((host, None)),
            None => None,
        };
    }
    match s.rsplit_once(':') {
        Some((host, port)) => Some((host, Some(port.parse().ok()?))),
        None => Some((s, None)),
    }
}

/// `%XX` escapes of a URL's user info decoded (invalid escapes kept as they are).
pub(crate) fn percent_decode(s: &str) -> String {
    let bytes = s.as_bytes();
    let mut out = Vec::with_capacity(bytes.len());
    let mut i = 0;
    while i < bytes.len() {
        if bytes[i] == b'%'
            && let Some(hex) = s.get(i + 1..i + 3)
            && let Ok(b) = u8::from_str_radix(hex, 16)
        {
            out.push(b);
            i += 3;
            continue;
        }
        out.push(bytes[i]);
        i += 1;
    }
    String::from_utf8_lossy(&out).into_owned()
}

/// How one connection ended.
enum End {
    /// Stopped on request.
    Stopped,
    /// The tap's stream changed in a way this connection cannot carry: set up again at once.
    StreamChanged,
    /// The endpoint (or the pipeline) failed.
    Failed {
        /// Why (secrets removed).
        reason: String,
        /// How long data flowed to the endpoint before the failure.
        pushed_for: Duration,
    },
}

/// The push thread.
struct Worker {
    tap: StreamTap,
    config: RtmpConfig,
    target: Target,
    status: watch::Sender<PushStatus>,
    stop: watch::Receiver<bool>,
    started: Instant,
    first_push_logged: bool,
}

impl Worker {
    fn set(&self, status: PushStatus) {
        self.status.send_if_modified(|s| {
            if *s == status {
                return false;
            }
            tracing::debug!(target = %self.target.redacted, status = status.as_str(), reason = status.reason(), "RTMP push status");
            *s = status;
            true
        });
    }

    fn stopped(&self) -> bool {
        *self.stop.borrow()
    }

    async fn run(mut self) {
        let mut attempt = 0u32;
        while let Some(sub) = self.wait_ready().await {
            self.set(PushStatus::Connecting);
            match self.session(sub).await {
                End::Stopped => break,
                End::StreamChanged => {
                    tracing::info!(target = %self.target.redacted, "camera stream changed; reconnecting the RTMP push");
                }
                End::Failed { reason, pushed_for } => {
                    // A connection that carried the stream for longer than the longest delay
                    // failed anew; one that keeps failing at once backs off to the cap.
                    if pushed_for >= self.config.backoff_max {
                        attempt = 0;
                    }
                    attempt = attempt.saturating_add(1);
                    let delay = self.config.backoff(attempt);
                    tracing::warn!(target = %self.target.redacted, attempt, delay_ms = delay.as_millis() as u64, reason, "RTMP push failed; reconnecting");
                    self.set(PushStatus::Reconnecting { attempt, reason });
                    if self.sleep(delay).await {
                        break;
                    }
                }
            }
        }
        self.set(PushStatus::Stopped);
        tracing::info!(target = %self.target.redacted, "RTMP push stopped");
    }

    /// Sleep up to `d`; true when stopped.
    async fn sleep(&mut self, d: Duration) -> bool {
        if self.stopped() {
            return true;
        }
        tokio::select! {
            _ = tokio::time::sleep(d) => self.stopped(),
            _ = self.stop.changed() => true,
        }
    }

    /// Wait until the tap can be pushed; None when stopped.
    async fn wait_ready(&mut self) -> Option<Subscription> {
        let mut info_rx = self.tap.watch();
        let mut audio_wait: Option<(u64, Instant)> = None;
        loop {
            if self.stopped() {
                return None;
            }
            let info = info_rx.borrow_and_update().clone();
            let waiting = if !info.live {
                Some("the camera is not streaming".to_owned())
            } else if info.video.is_none() {
                Some("waiting for the camera's video".to_owned())
            } else if let Some(codec @ VideoCodec::H265) = info.video_codec() {
                Some(RtmpError::UnsupportedCodec(codec).to_string())
            } else {
                None
            };
            match waiting {
                Some(reason) => {
                    // A failed endpoint keeps its reason until the next attempt.
                    if !matches!(*self.status.borrow(), PushStatus::Reconnecting { .. }) {
                        self.set(PushStatus::WaitingForVideo { reason });
                    }
                }
                None => {
                    let want_audio =
                        self.config.audio && info.audio_expected && info.audio.is_none();
                    let since = match audio_wait {
                        Some((g, t)) if g == info.generation => t,
                        _ => {
                            let now = Instant::now();
                            audio_wait = Some((info.generation, now));
                            now
                        }
                    };
                    if !want_audio || since.elapsed() >= self.config.audio_wait {
                        let sub = self.tap.subscribe();
                        if sub.info().generation == info.generation && sub.info().live {
                            return Some(sub);
                        }
                        continue;
                    }
                }
            }
            tokio::select! {
                _ = info_rx.changed() => {}
                _ = self.stop.changed() => {}
                _ = tokio::time::sleep(TICK) => {}
            }
        }
    }

    /// One connection: push until the endpoint fails, the stream changes or a stop.
    async fn session(&mut self, sub: Subscription) -> End {
        let mut sub = sub;
        let info = sub.info().clone();
        let with_audio = self.config.audio && pushable_audio(&info);
        let pipeline = match PushPipeline::build(&self.target, &self.config, &info, with_audio) {
            Ok(p) => p,
            Err(reason) => return End::Failed { reason, pushed_for: Duration::ZERO },
        };
        if let Err(err) = pipeline.pipeline.set_state(gst::State::Playing) {
            let reason = match pipeline.poll_bus() {
                Some(BusEnd::Error(e)) => e,
                _ => err.to_string(),
            };
            return End::Failed { reason: self.target.scrub(&reason), pushed_for: Duration::ZERO };
        }
        let mut feed = Feed::new(info.generation, with_audio, self.config.max_queue_bytes);
        let mut pushed: Option<Instant> = None;
        let pushed_for = |p: Option<Instant>| p.map_or(Duration::ZERO, |t| t.elapsed());
        let mut info_rx = self.tap.watch();
        loop {
            tokio::select! {
                _ = self.stop.changed() => {
                    pipeline.finish();
                    return End::Stopped;
                }
                r = sub.recv() => match r {
                    // After a lag the subscription resumes at a key frame by itself.
                    Some(unit) => {
                        if unit.generation() != feed.generation {
                            if !compatible(&info, sub.info(), with_audio, self.config.audio) {
                                return End::StreamChanged;
                            }
                            feed.new_generation(unit.generation());
                        }
                        feed.push(&pipeline, unit);
                    }
                    None => {
                        pipeline.finish();
                        return End::Stopped;
                    }
                },
                _ = info_rx.changed() => {}
                _ = tokio::time::sleep(TICK) => {}
            }
            match pipeline.poll_bus() {
                Some(BusEnd::Error(err)) => {
                    let pushed_for = pushed_for(pushed);
                    return End::Failed { reason: self.target.scrub(&err), pushed_for };
                }
                Some(BusEnd::Eos) => {
                    let reason = "the endpoint ended the stream".into();
                    return End::Failed { reason, pushed_for: pushed_for(pushed) };
                }
                None => {}
            }
            if pushed.is_none() && feed.video_sent > 0 && pipeline.connected() {
                pushed = Some(Instant::now());
                if !self.first_push_logged {
                    self.first_push_logged = true;
                    tracing::info!(target = %self.target.redacted, after_ms = self.started.elapsed().as_millis() as u64, "RTMP push connected");
                } else {
                    tracing::info!(target = %self.target.redacted, "RTMP push reconnected");
                }
            }
            if pushed.is_some() {
                let live = info_rx.borrow().live;
                self.set(if live {
                    PushStatus::Pushing
                } else {
                    PushStatus::WaitingForVideo { reason: "the camera stream ended".into() }
                });
            }
        }
    }
}

/// Whether the tap's audio can be pushed: the push pipeline carries AAC only, G.711 audio is
/// left out (the video is pushed without it).
fn pushable_audio(info: &TapInfo) -> bool {
    info.audio.as_ref().is_some_and(|a| match a.codec {
        AudioCodec::Aac => true,
        AudioCodec::Pcmu | AudioCodec::Pcma => false,
    })
}

/// Whether a push set up for `old` can carry the stream described by `new`.
fn compatible(old: &TapInfo, new: &TapInfo, with_audio: bool, audio_wanted: bool) -> bool {
    if new.video != old.video {
        return false;
    }
    if with_audio {
        new.audio.is_none() || new.audio == old.audio
    } else {
        !(audio_wanted && pushable_audio(new))
    }
}

/// Why a push pipeline stopped.
enum BusEnd {
    Error(String),
    Eos,
}

/// The GStreamer side of one connection.
struct PushPipeline {
    pipeline: gst::Pipeline,
    video: gst_app::AppSrc,
    audio: Option<gst_app::AppSrc>,
    sink: gst::Element,
}

impl Drop for PushPipeline {
    fn drop(&mut self) {
        let _ = self.pipeline.set_state(gst::State::Null);
    }
}

fn make(factory: &str) -> Result<gst::Element, String> {
    gst::ElementFactory::make(factory)
        .build()
        .map_err(|_| format!("GStreamer element {factory} is not installed"))
}

fn appsrc(caps: &gst::Caps, max_bytes: u64) -> gst_app::AppSrc {
    gst_app::AppSrc::builder()
        .caps(caps)
        .format(gst::Format::Time)
        .is_live(true)
        .stream_type(gst_app::AppStreamType::Stream)
        .block(false)
        .max_bytes(max_bytes)
        .build()
}

impl PushPipeline {
    fn build(
        target: &Target,
        config: &RtmpConfig,
        info: &TapInfo,
        with_audio: bool,
    ) -> Result<PushPipeline, String> {
        let video_caps = video_caps(info.video.as_ref().ok_or("no video caps")?);
        let pipeline = gst::Pipeline::with_name("rtmp-push");
        let video = appsrc(&video_caps, config.max_queue_bytes);
        let parse = make("h264parse")?;
        let mux = make("flvmux")?;
        mux.set_property("streamable", true);
        mux.set_property("latency", MUX_LATENCY.as_nanos() as u64);
        let sink = make("rtmp2sink")?;
        sink.set_property_from_str("scheme", if target.rtmps { "rtmps" } else { "rtmp" });
        sink.set_property("host", &target.host);
        sink.set_property("port", i32::from(target.port));
        sink.set_property("application", &target.application);
        sink.set_property("stream", &target.stream);
        if let Some(user) = &target.username {
            sink.set_property("username", user);
        }
        if let Some(pass) = &target.password {
            sink.set_property("password", pass);
        }
        sink.set_property("timeout", config.timeout.as_secs().min(u64::from(u32::MAX)) as u32);
        sink.set_property("sync", false);
        sink.set_property("async-connect", true);
        pipeline.add_many([video.upcast_ref(), &parse, &mux, &sink]).map_err(|e| e.to_string())?;
        video.link(&parse).map_err(|e| e.to_string())?;
        parse.link_pads(Some("src"), &mux, Some("video")).map_err(|e| e.to_string())?;
        mux.link(&sink).map_err(|e| e.to_string())?;
        let audio = match (with_audio, &info.audio) {
            (true, Some(params)) => {
                let asrc = appsrc(&audio_caps(params), config.max_queue_bytes);
                let aparse = make("aacparse")?;
                pipeline.add_many([asrc.upcast_ref(), &aparse]).map_err(|e| e.to_string())?;
                asrc.link(&aparse).map_err(|e| e.to_string())?;
                aparse.link_pads(Some("src"), &mux, Some("audio")).map_err(|e| e.to_string())?;
                Some(asrc)
            }
            _ => None,
        };
        Ok(PushPipeline { pipeline, video, audio, sink })
    }

    /// The pipeline's running time now.
    fn now(&self) -> u64 {
        self.pipeline.current_running_time().map_or(0, gst::ClockTime::nseconds)
    }

    /// Bytes waiting to be sent.
    fn queued_bytes(&self) -> u64 {
        self.video.current_level_bytes()
            + self.audio.as_ref().map_or(0, gst_app::AppSrc::current_level_bytes)
    }

    /// What the bus says: the first error, or the end of the stream.
    fn poll_bus(&self) -> Option<BusEnd> {
        let bus = self.pipeline.bus()?;
        while let Some(msg) = bus.pop() {
            match msg.view() {
                gst::MessageView::Error(e) => {
                    tracing::debug!(debug = ?e.debug(), "RTMP pipeline error");
                    return Some(BusEnd::Error(e.error().to_string()));
                }
                gst::MessageView::Eos(_) => return Some(BusEnd::Eos),
                _ => {}
            }
        }
        None
    }

    /// The sink is connected and has written to the endpoint.
    fn connected(&self) -> bool {
        let stats = self.sink.property::<gst::Structure>("stats");
        stats.get::<u64>("out-bytes-total").is_ok_and(|n| n > 0)
    }

    /// End the stream cleanly (the sink unpublishes), waiting up to [`STOP_TIMEOUT`].
    fn finish(&self) {
        let _ = self.video.end_of_stream();
        if let Some(a) = &self.audio {
            let _ = a.end_of_stream();
        }
        if let Some(bus) = self.pipeline.bus() {
            let _ = bus.timed_pop_filtered(
                gst::ClockTime::from_nseconds(STOP_TIMEOUT.as_nanos() as u64),
                &[gst::MessageType::Eos, gst::MessageType::Error],
            );
        }
        let _ = self.pipeline.set_state(gst::State::Null);
    }
}

/// Re-timing and dropping of the units of one connection.
struct Feed {
    generation: u64,
    with_audio: bool,
    max_queue: u64,
    /// (tap time, push time) of the key frame that started the current generation.
    rebase: Option<(u64, u64)>,
    /// End of the last video frame sent, in push time.
    video_end: u64,
    /// Time of the last audio frame sent, in push time.
    audio_last: Option<u64>,
    /// Waiting for a key frame after units were lost.
    dropping: bool,
    /// Last known frame duration.
    frame_ns: u64,
    video_sent: u64,
}

impl Feed {
    fn new(generation: u64, with_audio: bool, max_queue: u64) -> Feed {
        Feed {
            generation,
            with_audio,
            max_queue,
            rebase: None,
            video_end: 0,
            audio_last: None,
            dropping: false,
            frame_ns: 33_333_333,
            video_sent: 0,
        }
    }

    /// The camera restarted with the same caps: continue after the next key frame.
    fn new_generation(&mut self, generation: u64) {
        self.generation = generation;
        self.rebase = None;
    }

    fn push(&mut self, p: &PushPipeline, unit: AccessUnit) {
        let Some(ts) = unit.dts_or_pts().map(|t| t.as_nanos() as u64) else {
            return;
        };
        if unit.is_key_frame() && (self.rebase.is_none() || self.dropping) {
            if p.queued_bytes() > self.max_queue / 2 {
                return;
            }
            if self.rebase.is_none() {
                // Push time follows the pipeline clock, never going back.
                self.rebase = Some((ts, self.video_end.max(p.now())));
            }
            self.dropping = false;
        }
        let Some((in_base, out_base)) = self.rebase else { return };
        if self.dropping || ts < in_base {
            return;
        }
        let retime = |t: Option<Duration>| {
            t.map(|t| {
                gst::ClockTime::from_nseconds(
                    (t.as_nanos() as u64).saturating_sub(in_base) + out_base,
                )
            })
        };
        let mut buffer = buffer_of(&unit);
        {
            let b = buffer.make_mut();
            b.set_pts(retime(unit.pts()));
            b.set_dts(retime(unit.dts()));
        }
        let out = ts - in_base + out_base;
        match unit.track() {
            Track::Video => {
                if p.queued_bytes() > self.max_queue {
                    tracing::debug!(
                        "RTMP endpoint is slower than the camera; dropping to the next key frame"
                    );
                    self.dropping = true;
                    return;
                }
                if let Some(d) = unit.duration() {
                    self.frame_ns = (d.as_nanos() as u64).max(1);
                }
                self.video_end = self.video_end.max(out + self.frame_ns);
                if p.video.push_buffer(buffer).is_ok() {
                    self.video_sent += 1;
                }
            }
            Track::Audio => {
                let Some(asrc) = p.audio.as_ref().filter(|_| self.with_audio) else { return };
                if self.audio_last.is_some_and(|last| out < last) {
                    return;
                }
                self.audio_last = Some(out);
                let _ = asrc.push_buffer(buffer);
            }
        }
    }
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]
    use super::*;

    #[test]
    fn targets_are_parsed_into_sink_properties() {
        let t = Target::parse("rtmp://a.rtmp.youtube.com/live2/abcd-efgh").unwrap();
        assert!(!t.rtmps);
        assert_eq!((t.host.as_str(), t.port), ("a.rtmp.youtube.com", 1935));
        assert_eq!((t.application.as_str(), t.stream.as_str()), ("live2", "abcd-efgh"));
        let t = Target::parse("RTMPS://u:p%40ss@live.example:8443/app/sub/KEY?x=1").unwrap();
        assert!(t.rtmps);
        assert_eq!((t.host.as_str(), t.port), ("live.example", 8443));
        assert_eq!((t.application.as_str(), t.stream.as_str()), ("app/sub", "KEY?x=1"));
        assert_eq!((t.username.as_deref(), t.password.as_deref()), (Some("u"), Some("p@ss")));
        let t = Target::parse("rtmps://[::1]/live/k").unwrap();
        assert_eq!((t.host.as_str(), t.port), ("::1", 443));
        for bad in [
            "http://h/live/k",
            "rtmp://h/live",
            "rtmp://h/live/",
            "rtmp:///live/k",
            "rtmp://h:x/live/k",
            "rtmp://h/live/a b",
            "h/live/k",
        ] {
            let err = Target::parse(bad).err().unwrap();
            assert_eq!(err.kind(), ErrorKind::InvalidInput, "{bad}");
        }
    }

    #[test]
    fn stream_keys_and_passwords_never_reach_logs() {
        assert_eq!(
            redact_rtmp_url("rtmp://a.rtmp.youtube.com/live2/abcd-efgh"),
            "rtmp://a.rtmp.youtube.com/live2/<key>"
        );
        assert_eq!(
            redact_rtmp_url("rtmps://user:secret@h:443/app/sub/KEY?token=t"),
            "rtmps://h:443/app/sub/<key>"
        );
        assert_eq!(redact_rtmp_url("rtmp://h/KEY"), "rtmp://h/<key>");
        assert_eq!(redact_rtmp_url("KEY"), "<not a URL>");
        let err = Target::parse("rtmp://u:secret@h/live/abcd-efgh extra").err().unwrap();
        let text = err.to_string();
        assert!(!text.contains("abcd") && !text.contains("secret"), "{text}");
        let t = Target::parse("rtmp://u:secret@h/live/abcd-efgh").unwrap();
        assert_eq!(
            t.scrub("cannot publish abcd-efgh as u:secret"),
            "cannot publish <redacted> as u:<redacted>"
        );
        let debug = format!("{:?}", RtmpConfig::new("rtmp://h/live/abcd-efgh"));
        assert!(!debug.contains("abcd"), "{debug}");
    }

    #[test]
    fn backoff_is_capped_and_settings_are_checked() {
        let mut c = RtmpConfig::new("rtmp://h/live/k");
        c.backoff_initial = Duration::from_millis(250);
        c.backoff_max = Duration::from_secs(2);
        let d: Vec<u64> = (1..=6).map(|a| c.backoff(a).as_millis() as u64).collect();
        assert_eq!(d, [250, 500, 1000, 2000, 2000, 2000]);
        assert!(c.validate().is_ok());
        c.backoff_initial = Duration::ZERO;
        assert!(c.validate().is_err());
    }

    #[test]
    fn an_h265_tap_is_refused() {
        crate::init().unwrap();
        let tap = StreamTap::new();
        tap.begin_stream();
        tap.set_video(crate::tap::VideoParams {
            codec: VideoCodec::H265,
            codec_data: crate::tap::Bytes::from_static(&[1]),
            width: 1920,
            height: 1080,
            framerate: None,
        });
        let err = RtmpPush::start(tap, RtmpConfig::new("rtmp://127.0.0.1:1/live/k")).unwrap_err();
        assert!(matches!(err, RtmpError::UnsupportedCodec(VideoCodec::H265)), "{err}");
        assert!(err.to_string().contains("H.264"), "{err}");
    }
}
