//! The built-in RTSP source: one camera stream read with [`retina`], handed on as whole access
//! units with their track parameters.
//!
//! [`RtspSource::connect`] sends DESCRIBE, SETUP (the first H.264 or H.265 video stream, plus
//! the first AAC or G.711 audio stream when asked) and PLAY; [`RtspSource::next`] then yields
//! [`SourceEvent`]s: the video parameters before the first video unit and again whenever the
//! camera sends new parameter sets, the audio parameters right after the first video
//! parameters, and access units. Video units are 4-byte length-prefixed NAL units (retina's
//! [`FrameFormat::MP4`]: in-band SPS/PPS/VPS are stripped and live in the `codec_data`), audio
//! units one raw AAC frame or one RTP packet's G.711 samples.
//!
//! Time stamps are durations since the first video key frame handed on (the session's time
//! origin). Each stream has its own RTP clock; retina maps both onto the PLAY response's
//! `RTP-Info` (normal play time) when the camera sends it for every stream, otherwise each
//! stream starts at its first packet. Audio is put on the video's origin through that mapping,
//! unless it disagrees with the packets' arrival times by more than [`MAX_AV_SKEW`] (cameras
//! with bogus `rtptime`), in which case arrival times align the two.
//!
//! What the source does not handle is reported as [`SourceError::Unsupported`] so the recorder
//! can fall back to GStreamer: `rtsps://` (retina speaks plain RTSP only), video other than
//! H.264/H.265, no video, SDP retina cannot use, and B-frames (retina hands frames on in
//! decode order stamped with their presentation time and knows no decode time; a picture
//! stamped earlier than the one before it is taken as a B-frame).
//!
//! Retina sends TEARDOWN from a task it spawns when its session is dropped, so a source must
//! be dropped inside a tokio runtime; [`RtspSource::close`] also waits (briefly) for that
//! TEARDOWN. Dropping outside a runtime is caught (a throw-away runtime drops it; no TEARDOWN).

use std::collections::VecDeque;
use std::fmt;
use std::sync::Arc;
use std::time::{Duration, Instant};

use bytes::Bytes;
use futures_util::StreamExt;
use retina::client::{
    Credentials, Demuxed, InitialTimestampPolicy, PlayOptions, Session, SessionGroup,
    SessionOptions, SetupOptions, TcpTransportOptions, UdpTransportOptions,
};
use retina::codec::{AudioFrame, CodecItem, FrameFormat, ParametersRef, VideoFrame};

use crate::record::Transport;
use crate::tap::{AccessUnit, AudioCodec, AudioParams, Track, VideoCodec, VideoParams};

/// Largest disagreement between the RTP-Info mapping of audio onto video and the packets'
/// arrival times that is trusted; beyond it the streams are aligned on arrival.
pub(crate) const MAX_AV_SKEW: Duration = Duration::from_secs(1);
/// How far back a video time stamp may step and still be taken for a B-frame rather than a
/// restarted camera clock.
const MAX_REORDER: Duration = Duration::from_secs(1);
/// Video time stamps may jump forward by at most the stall timeout plus this much.
const JUMP_SLACK: Duration = Duration::from_secs(5);
/// Packet loss is logged at most this often (with the total since the last message).
const LOSS_LOG_INTERVAL: Duration = Duration::from_secs(10);
/// How long [`RtspSource::close`] waits for the TEARDOWN.
const TEARDOWN_WAIT: Duration = Duration::from_secs(2);

/// How to reach the camera.
#[derive(Clone)]
pub(crate) struct SourceOptions {
    /// `rtsp://host[:port]/path`; `user:password@` in it is used when `username` is `None`.
    pub url: String,
    /// User name (overrides one in the URL).
    pub username: Option<String>,
    /// Password (with `username`).
    pub password: Option<String>,
    /// RTP over the RTSP connection (interleaved) or over UDP.
    pub transport: Transport,
    /// Whether to set up an audio stream (AAC or G.711) when the camera offers one.
    pub audio: bool,
    /// The most DESCRIBE + SETUP + PLAY may take.
    pub connect_timeout: Duration,
    /// The most [`RtspSource::next`] waits for a video frame.
    pub stall_timeout: Duration,
    /// The `User-Agent` sent with each request (none when empty).
    pub user_agent: String,
}

impl fmt::Debug for SourceOptions {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("SourceOptions")
            .field("url", &crate::record::redact_url(&self.url))
            .field("username", &self.username)
            .field("password", &self.password.as_ref().map(|_| "<redacted>"))
            .field("transport", &self.transport)
            .field("audio", &self.audio)
            .field("connect_timeout", &self.connect_timeout)
            .field("stall_timeout", &self.stall_timeout)
            .field("user_agent", &self.user_agent)
            .finish()
    }
}

/// Why the source could not start or stopped. Messages never contain the password.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) enum SourceError {
    /// The camera refused the credentials (RTSP 401 after authenticating, 401 without
    /// credentials, or 403): retrying will not help until they are fixed.
    Auth(String),
    /// Could not connect, timed out, lost the connection or the stream stalled: retry with
    /// back-off.
    Lost(String),
    /// The camera answered but the built-in client cannot record this stream (`rtsps://`,
    /// video codec, no video, SDP, B-frames): fall back to GStreamer.
    Unsupported(String),
}

impl fmt::Display for SourceError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            SourceError::Auth(m) => write!(f, "authentication failed: {m}"),
            SourceError::Lost(m) => write!(f, "stream lost: {m}"),
            SourceError::Unsupported(m) => write!(f, "not supported by the built-in client: {m}"),
        }
    }
}

impl std::error::Error for SourceError {}

/// What [`RtspSource::next`] yields.
#[derive(Debug, Clone)]
pub(crate) enum SourceEvent {
    /// The video track's parameters: before the first video unit, and again before the first
    /// unit that uses new ones (new SPS/PPS).
    Video(VideoParams),
    /// The audio track's parameters, once, right after the first [`SourceEvent::Video`].
    Audio(AudioParams),
    /// One access unit (see the module documentation for its bytes and time stamps).
    Unit(AccessUnit),
}

/// The audio stream set up, and where its time line stands.
#[derive(Debug)]
struct AudioTrack {
    /// Index in retina's stream list.
    stream: usize,
    params: AudioParams,
    /// RTP clock rate (AAC: the sample rate; retina insists they match).
    rate: u32,
    /// Elapsed RTP ticks that correspond to the session's time origin, fixed at the first
    /// audio frame after the origin.
    base: Option<i64>,
    /// Elapsed ticks (relative to `base`) of the last unit handed on.
    last: Option<i64>,
    announced: bool,
}

/// Where the video time line stands.
#[derive(Debug, Default)]
struct VideoClock {
    /// Elapsed RTP ticks of the first key frame handed on (the time origin).
    origin: Option<i64>,
    /// When that frame's first packet arrived.
    origin_at: Option<Instant>,
    /// Elapsed ticks of the last frame handed on.
    last: Option<i64>,
}

/// An RTSP camera stream read with retina.
pub(crate) struct RtspSource {
    /// Always `Some` until dropped (taken in `Drop`/`close`).
    demuxed: Option<Demuxed>,
    group: Arc<SessionGroup>,
    video_stream: usize,
    video_codec: VideoCodec,
    video_rate: u32,
    /// The parameters of the frames coming now (`None` until retina knows them).
    video_params: Option<VideoParams>,
    /// The parameters last handed on.
    announced: Option<VideoParams>,
    clock: VideoClock,
    audio: Option<AudioTrack>,
    pending: VecDeque<SourceEvent>,
    stall_timeout: Duration,
    /// When the last video unit was handed on (or PLAY returned).
    last_video: tokio::time::Instant,
    /// Whether any video unit was handed on yet.
    started: bool,
    lost_packets: u64,
    unlogged_loss: u64,
    last_loss_log: Option<Instant>,
    /// The URL without credentials, for messages.
    url: String,
    /// Removed from any message (retina's never contain it; belt and braces).
    password: Option<String>,
}

impl fmt::Debug for RtspSource {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("RtspSource")
            .field("url", &self.url)
            .field("video_codec", &self.video_codec)
            .field("video_params", &self.video_params)
            .field("audio", &self.audio.as_ref().map(|a| &a.params))
            .field("lost_packets", &self.lost_packets)
            .finish_non_exhaustive()
    }
}

impl RtspSource {
    /// DESCRIBE + SETUP (video, and the first supported audio stream when `opts.audio`) + PLAY,
    /// all within `opts.connect_timeout`.
    pub(crate) async fn connect(opts: &SourceOptions) -> Result<RtspSource, SourceError> {
        let target = Target::parse(opts)?;
        let redacted = target.url.to_string();
        match tokio::time::timeout(opts.connect_timeout, Self::start(opts, target)).await {
            Ok(r) => r,
            Err(_) => Err(SourceError::Lost(format!(
                "{redacted}: no answer within {} s",
                opts.connect_timeout.as_secs_f32()
            ))),
        }
    }

    async fn start(opts: &SourceOptions, target: Target) -> Result<RtspSource, SourceError> {
        let Target { url, creds } = target;
        let redacted = url.to_string();
        let password = creds.as_ref().map(|c| c.password.clone()).filter(|p| !p.is_empty());
        let errors = Classifier {
            url: &redacted,
            has_creds: creds.is_some(),
            password: password.as_deref(),
        };
        let group = Arc::new(SessionGroup::default());
        let session_options = SessionOptions::default()
            .creds(creds)
            .user_agent(opts.user_agent.clone())
            .session_group(group.clone());
        let mut session = Session::describe(url, session_options)
            .await
            .map_err(|e| errors.classify(&e, "DESCRIBE"))?;

        let (video_stream, video_codec) = pick_video(session.streams())
            .map_err(|m| SourceError::Unsupported(format!("{redacted}: {m}")))?;
        let video_rate = session.streams()[video_stream].clock_rate_hz();
        if video_rate == 0 {
            return Err(SourceError::Unsupported(format!("{redacted}: video clock rate 0")));
        }
        let transport = match opts.transport {
            Transport::Tcp => retina::client::Transport::Tcp(TcpTransportOptions::default()),
            Transport::Udp => retina::client::Transport::Udp(UdpTransportOptions::default()),
        };
        let setup =
            || SetupOptions::default().transport(transport.clone()).frame_format(FrameFormat::MP4);
        session
            .setup(video_stream, setup())
            .await
            .map_err(|e| errors.classify(&e, "SETUP (video)"))?;

        let mut audio = None;
        if opts.audio
            && let Some((stream, params)) = pick_audio(session.streams())
        {
            match session.setup(stream, setup()).await {
                Ok(()) => {
                    let rate = session.streams()[stream].clock_rate_hz();
                    audio = Some(AudioTrack {
                        stream,
                        params,
                        rate,
                        base: None,
                        last: None,
                        announced: false,
                    });
                }
                Err(e) => match errors.classify(&e, "SETUP (audio)") {
                    // The camera refused the audio stream: record video alone.
                    SourceError::Unsupported(m) | SourceError::Lost(m)
                        if e.status_code().is_some() =>
                    {
                        tracing::warn!(url = %redacted, error = %m, "audio stream refused; recording video only");
                    }
                    other => return Err(other),
                },
            }
        }

        let playing = session
            .play(PlayOptions::default().initial_timestamp(InitialTimestampPolicy::Permissive))
            .await
            .map_err(|e| errors.classify(&e, "PLAY"))?;
        let demuxed = playing.demuxed().map_err(|e| match errors.classify(&e, "PLAY") {
            // A stream set up that retina cannot depacketise (bad fmtp, codec quirk).
            SourceError::Lost(m) => SourceError::Unsupported(m),
            other => other,
        })?;
        tracing::debug!(url = %redacted, codec = %video_codec, audio = ?audio.as_ref().map(|a| &a.params), "RTSP source playing");
        let mut source = RtspSource {
            demuxed: Some(demuxed),
            group,
            video_stream,
            video_codec,
            video_rate,
            video_params: None,
            announced: None,
            clock: VideoClock::default(),
            audio,
            pending: VecDeque::new(),
            stall_timeout: opts.stall_timeout,
            last_video: tokio::time::Instant::now(),
            started: false,
            lost_packets: 0,
            unlogged_loss: 0,
            last_loss_log: None,
            url: redacted,
            password,
        };
        // Parameters from the SDP (sprop-parameter-sets), if any; in-band ones replace them.
        source.refresh_video_params();
        Ok(source)
    }

    /// The next event. `Err(Lost)` when no video unit came for the stall timeout, on
    /// connection loss or end of stream; `Err(Unsupported)` on B-frames. Never waits longer
    /// than the stall timeout. Cancel-safe (state lives in the source, not the future). After
    /// an error the source is finished: drop it.
    pub(crate) async fn next(&mut self) -> Result<SourceEvent, SourceError> {
        loop {
            if let Some(event) = self.pending.pop_front() {
                return Ok(event);
            }
            let deadline = self.last_video + self.stall_timeout;
            let Some(demuxed) = self.demuxed.as_mut() else {
                return Err(SourceError::Lost(format!("{}: source closed", self.url)));
            };
            let item = match tokio::time::timeout_at(deadline, demuxed.next()).await {
                Err(_) if self.started => {
                    return Err(SourceError::Lost(format!(
                        "{}: no video for {} s",
                        self.url,
                        self.stall_timeout.as_secs_f32()
                    )));
                }
                Err(_) => {
                    return Err(SourceError::Lost(format!(
                        "{}: no key frame with parameter sets within {} s",
                        self.url,
                        self.stall_timeout.as_secs_f32()
                    )));
                }
                Ok(None) => {
                    return Err(SourceError::Lost(format!(
                        "{}: the camera ended the stream",
                        self.url
                    )));
                }
                Ok(Some(Err(e))) => {
                    let errors = Classifier {
                        url: &self.url,
                        has_creds: true,
                        password: self.password.as_deref(),
                    };
                    return Err(errors.classify(&e, "stream"));
                }
                Ok(Some(Ok(item))) => item,
            };
            match item {
                CodecItem::VideoFrame(frame) if frame.stream_id() == self.video_stream => {
                    self.on_video(frame)?;
                }
                CodecItem::AudioFrame(frame) => self.on_audio(&frame),
                _ => {}
            }
        }
    }

    /// Whether an audio track was set up.
    pub(crate) fn has_audio(&self) -> bool {
        self.audio.is_some()
    }

    /// Ends the session and waits (at most 2 s) for the TEARDOWN retina sends in the
    /// background. Dropping the source instead sends it too, if the runtime keeps running.
    pub(crate) async fn close(mut self) {
        drop(self.demuxed.take());
        if tokio::time::timeout(TEARDOWN_WAIT, self.group.await_teardown()).await.is_err() {
            tracing::debug!(url = %self.url, "TEARDOWN still pending");
        }
    }

    /// Re-reads the video parameters from retina (after a frame with new parameter sets).
    fn refresh_video_params(&mut self) {
        let Some(demuxed) = self.demuxed.as_ref() else { return };
        let params = match demuxed.streams().get(self.video_stream).and_then(|s| s.parameters()) {
            Some(ParametersRef::Video(p)) => p,
            _ => return,
        };
        let (width, height) = params.pixel_dimensions();
        self.video_params = Some(VideoParams {
            codec: self.video_codec,
            codec_data: Bytes::copy_from_slice(params.extra_data()),
            width,
            height,
            framerate: params.frame_rate().and_then(fps),
        });
    }

    fn on_video(&mut self, frame: VideoFrame) -> Result<(), SourceError> {
        self.note_loss(frame.loss());
        if frame.has_new_parameters() || self.video_params.is_none() {
            self.refresh_video_params();
        }
        let Some(params) = self.video_params.as_ref() else {
            tracing::trace!(url = %self.url, "video frame before parameters dropped");
            return Ok(());
        };
        // Retina counts only IDR pictures as H.265 random access points; a CRA picture (what
        // x265 and some cameras put at GOP starts) is one too when nothing reorders, and
        // B-frame streams are refused below.
        let key = frame.is_random_access_point()
            || (params.codec == VideoCodec::H265 && h265_irap(frame.data()));
        let ts = frame.timestamp().elapsed();
        let origin = match self.clock.origin {
            Some(o) => o,
            None if key => {
                self.clock.origin = Some(ts);
                self.clock.origin_at = Some(frame.start_ctx().received());
                ts
            }
            // Recording starts at a key frame.
            None => return Ok(()),
        };
        if let Some(last) = self.clock.last {
            let step = ts - last;
            if step < 0 {
                let back = ticks_to_duration(-step, self.video_rate).unwrap_or(Duration::MAX);
                return Err(if back <= MAX_REORDER {
                    SourceError::Unsupported(format!(
                        "{}: the camera sends B-frames (pictures out of presentation order); \
                         turn them off in the camera or use the GStreamer recorder",
                        self.url
                    ))
                } else {
                    SourceError::Lost(format!(
                        "{}: video time stamps went back by {:.1} s",
                        self.url,
                        back.as_secs_f32()
                    ))
                });
            }
            let ahead = ticks_to_duration(step, self.video_rate).unwrap_or(Duration::MAX);
            if ahead > self.stall_timeout + JUMP_SLACK {
                return Err(SourceError::Lost(format!(
                    "{}: video time stamps jumped ahead by {:.1} s",
                    self.url,
                    ahead.as_secs_f32()
                )));
            }
        }
        self.clock.last = Some(ts);
        let pts = ticks_to_duration(ts - origin, self.video_rate).unwrap_or_default();
        if self.announced.as_ref() != Some(params) {
            let first = self.announced.is_none();
            self.announced = Some(params.clone());
            self.pending.push_back(SourceEvent::Video(params.clone()));
            if first
                && let Some(audio) = self.audio.as_mut()
                && !audio.announced
            {
                audio.announced = true;
                self.pending.push_back(SourceEvent::Audio(audio.params.clone()));
            }
        }
        // Only frames handed on count against the stall timeout: a camera sending frames that
        // never decode (no parameter sets, no key frame) is lost too.
        self.last_video = tokio::time::Instant::now();
        self.started = true;
        let data = Bytes::from(frame.into_data());
        self.pending.push_back(SourceEvent::Unit(AccessUnit::new(
            Track::Video,
            data,
            Some(pts),
            Some(pts),
            None,
            key,
        )));
        Ok(())
    }

    fn on_audio(&mut self, frame: &AudioFrame) {
        if self.audio.as_ref().is_none_or(|a| a.stream != frame.stream_id()) {
            return;
        }
        self.note_loss(frame.loss());
        let Some(audio) = self.audio.as_mut() else { return };
        // Audio starts with the video: nothing before the time origin is kept.
        let (Some(origin), Some(origin_at), true) =
            (self.clock.origin, self.clock.origin_at, audio.announced)
        else {
            return;
        };
        let ts = frame.timestamp().elapsed();
        let base = match audio.base {
            Some(b) => b,
            None => {
                let arrival = signed_secs(frame.ctx().received(), origin_at);
                let (b, by_arrival) = audio_base(origin, self.video_rate, ts, audio.rate, arrival);
                if by_arrival {
                    tracing::warn!(url = %self.url, "audio and video RTP-Info disagree; aligned on arrival");
                }
                audio.base = Some(b);
                b
            }
        };
        let rel = ts - base;
        if rel < 0 || audio.last.is_some_and(|l| rel < l) {
            tracing::trace!(url = %self.url, rel, "audio frame out of order or before the origin dropped");
            return;
        }
        audio.last = Some(rel);
        let (Some(pts), duration) = (
            ticks_to_duration(rel, audio.rate),
            ticks_to_duration(i64::from(frame.frame_length().get()), audio.rate),
        ) else {
            return;
        };
        self.pending.push_back(SourceEvent::Unit(AccessUnit::new(
            Track::Audio,
            Bytes::copy_from_slice(frame.data()),
            Some(pts),
            Some(pts),
            duration,
            false,
        )));
    }

    fn note_loss(&mut self, loss: u16) {
        if loss == 0 {
            return;
        }
        self.lost_packets += u64::from(loss);
        self.unlogged_loss += u64::from(loss);
        let now = Instant::now();
        if self.last_loss_log.is_none_or(|t| now.duration_since(t) >= LOSS_LOG_INTERVAL) {
            tracing::warn!(url = %self.url, lost = self.unlogged_loss, total = self.lost_packets, "RTP packets lost");
            self.unlogged_loss = 0;
            self.last_loss_log = Some(now);
        }
    }
}

impl Drop for RtspSource {
    fn drop(&mut self) {
        let Some(demuxed) = self.demuxed.take() else { return };
        if tokio::runtime::Handle::try_current().is_ok() {
            drop(demuxed);
            return;
        }
        // Retina spawns its TEARDOWN task on drop, which panics outside a runtime.
        match tokio::runtime::Builder::new_current_thread().enable_all().build() {
            Ok(rt) => {
                let _guard = rt.enter();
                drop(demuxed);
            }
            Err(e) => {
                tracing::error!(error = %e, "no runtime to drop the RTSP session in; leaking it");
                std::mem::forget(demuxed);
            }
        }
    }
}

/// The URL retina gets (no credentials in it) and the credentials.
struct Target {
    url: url::Url,
    creds: Option<Credentials>,
}

impl fmt::Debug for Target {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Target")
            .field("url", &self.url.as_str())
            .field("username", &self.creds.as_ref().map(|c| &c.username))
            .finish_non_exhaustive()
    }
}

impl Target {
    fn parse(opts: &SourceOptions) -> Result<Target, SourceError> {
        let redacted = crate::record::redact_url(&opts.url);
        let mut url = url::Url::parse(&opts.url)
            .map_err(|e| SourceError::Unsupported(format!("{redacted}: not a URL ({e})")))?;
        match url.scheme() {
            "rtsp" => {}
            "rtsps" => {
                return Err(SourceError::Unsupported(format!(
                    "{redacted}: rtsps:// (RTSP over TLS) is not supported"
                )));
            }
            other => {
                return Err(SourceError::Unsupported(format!(
                    "{redacted}: scheme {other}:// is not RTSP"
                )));
            }
        }
        let url_user = crate::rtmp::percent_decode(url.username());
        let url_pass = url.password().map(crate::rtmp::percent_decode);
        let creds = match (&opts.username, url_user.is_empty()) {
            (Some(user), _) => Some(Credentials {
                username: user.clone(),
                password: opts.password.clone().unwrap_or_default(),
            }),
            (None, false) => {
                Some(Credentials { username: url_user, password: url_pass.unwrap_or_default() })
            }
            (None, true) => None,
        };
        // Retina refuses URLs with credentials in them.
        if url.set_username("").is_err() || url.set_password(None).is_err() {
            return Err(SourceError::Unsupported(format!("{redacted}: URL has no host")));
        }
        Ok(Target { url, creds })
    }
}

/// Maps retina's errors onto [`SourceError`].
struct Classifier<'a> {
    url: &'a str,
    has_creds: bool,
    password: Option<&'a str>,
}

impl Classifier<'_> {
    fn classify(&self, e: &retina::Error, stage: &str) -> SourceError {
        let full = e.to_string();
        tracing::debug!(url = %self.url, stage, error = %self.scrub(&full), "retina error");
        let first = full.lines().next().unwrap_or_default();
        let msg = self.scrub(&format!("{}: {stage}: {first}", self.url));
        match e.status_code() {
            Some(401) if self.has_creds => SourceError::Auth(format!(
                "{}: the camera rejected the user name or password (RTSP 401 Unauthorized)",
                self.url
            )),
            Some(401) => SourceError::Auth(format!(
                "{}: the camera requires a user name and password (RTSP 401 Unauthorized)",
                self.url
            )),
            Some(403) => SourceError::Auth(format!(
                "{}: the camera refused access for this user name and password (RTSP 403 Forbidden)",
                self.url
            )),
            // A successful DESCRIBE whose SDP retina cannot use.
            Some(200..=299) => SourceError::Unsupported(msg),
            Some(461) => SourceError::Unsupported(msg),
            _ if first.starts_with("Unsupported:") || first.starts_with("Invalid argument:") => {
                SourceError::Unsupported(msg)
            }
            _ => SourceError::Lost(msg),
        }
    }

    fn scrub(&self, text: &str) -> String {
        match self.password {
            Some(p) if !p.is_empty() => text.replace(p, "<redacted>"),
            _ => text.to_owned(),
        }
    }
}

/// Whether every picture NAL unit of an H.265 access unit (4-byte length prefixes) is an IRAP
/// (BLA, IDR or CRA: types 16 to 23).
fn h265_irap(data: &[u8]) -> bool {
    let mut rest = data;
    let mut pictures = 0;
    while rest.len() >= 5 {
        let len = u32::from_be_bytes([rest[0], rest[1], rest[2], rest[3]]) as usize;
        if len == 0 || rest.len() < 4 + len {
            return false;
        }
        let nal_type = (rest[4] >> 1) & 0x3f;
        if nal_type < 32 {
            if !(16..=23).contains(&nal_type) {
                return false;
            }
            pictures += 1;
        }
        rest = &rest[4 + len..];
    }
    pictures > 0
}

/// The first H.264/H.265 video stream, or why there is none.
fn pick_video(streams: &[retina::client::Stream]) -> Result<(usize, VideoCodec), String> {
    let mut others = Vec::new();
    for (i, s) in streams.iter().enumerate() {
        if s.media() != "video" {
            continue;
        }
        match s.encoding_name() {
            "h264" => return Ok((i, VideoCodec::H264)),
            "h265" => return Ok((i, VideoCodec::H265)),
            other => others.push(other.to_owned()),
        }
    }
    Err(if others.is_empty() {
        "the stream has no video".to_owned()
    } else {
        format!("video codec {} is not supported (H.264 and H.265 are)", others.join(", "))
    })
}

/// The first audio stream retina can depacketise into something a segment can carry.
fn pick_audio(streams: &[retina::client::Stream]) -> Option<(usize, AudioParams)> {
    streams.iter().enumerate().find_map(|(i, s)| {
        if s.media() != "audio" {
            return None;
        }
        // Parameters exist only when retina built a depacketiser (AAC: valid fmtp config).
        let Some(ParametersRef::Audio(p)) = s.parameters() else { return None };
        let (codec, codec_data) = match s.encoding_name() {
            "mpeg4-generic" => (AudioCodec::Aac, Bytes::copy_from_slice(p.extra_data())),
            "pcmu" => (AudioCodec::Pcmu, Bytes::new()),
            "pcma" => (AudioCodec::Pcma, Bytes::new()),
            _ => return None,
        };
        (p.clock_rate() > 0).then(|| {
            (
                i,
                AudioParams {
                    codec,
                    codec_data,
                    sample_rate: p.clock_rate(),
                    channels: u32::from(p.channels().get()),
                },
            )
        })
    })
}

/// Frames per second (numerator, denominator) from retina's frame duration in seconds.
fn fps((num, den): (u32, u32)) -> Option<(u32, u32)> {
    if num == 0 || den == 0 {
        return None;
    }
    let g = gcd(num, den);
    Some((den / g, num / g))
}

fn gcd(mut a: u32, mut b: u32) -> u32 {
    while b != 0 {
        (a, b) = (b, a % b);
    }
    a
}

/// `ticks` of a `rate` Hz clock as a duration, nanoseconds rounded up so that converting back
/// (`floor(ns * rate / 1e9)` or rounding) gives exactly `ticks`. `None` when negative.
pub(crate) fn ticks_to_duration(ticks: i64, rate: u32) -> Option<Duration> {
    let ticks = u64::try_from(ticks).ok()?;
    let rate = u64::from(rate);
    if rate == 0 {
        return None;
    }
    let nanos = ((ticks % rate) * 1_000_000_000).div_ceil(rate);
    Some(Duration::from_secs(ticks / rate) + Duration::from_nanos(nanos))
}

/// `a - b` in seconds, negative when `a` is earlier.
fn signed_secs(a: Instant, b: Instant) -> f64 {
    match a.checked_duration_since(b) {
        Some(d) => d.as_secs_f64(),
        None => -b.duration_since(a).as_secs_f64(),
    }
}

/// The audio stream's elapsed RTP ticks at the session's time origin. `video_origin` is the
/// origin in video ticks, `audio_first` the first audio frame's elapsed ticks and `arrival`
/// how many seconds after the origin frame it arrived. Returns the base and whether arrival
/// times (rather than retina's RTP-Info mapping) decided it.
fn audio_base(
    video_origin: i64,
    video_rate: u32,
    audio_first: i64,
    audio_rate: u32,
    arrival: f64,
) -> (i64, bool) {
    let by_npt =
        (i128::from(video_origin) * i128::from(audio_rate) / i128::from(video_rate.max(1))) as i64;
    let npt_offset = (audio_first - by_npt) as f64 / f64::from(audio_rate.max(1));
    if (npt_offset - arrival).abs() <= MAX_AV_SKEW.as_secs_f64() {
        (by_npt, false)
    } else {
        (audio_first - (arrival * f64::from(audio_rate)).round() as i64, true)
    }
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used, clippy::panic)]
    use super::*;

    #[test]
    fn h265_cra_and_idr_pictures_are_key_frames_and_others_are_not() {
        let nal = |t: u8, len: usize| {
            let mut v = (len as u32 + 2).to_be_bytes().to_vec();
            v.extend([t << 1, 1]);
            v.extend(std::iter::repeat_n(0xaa, len));
            v
        };
        let au = |nals: &[Vec<u8>]| nals.concat();
        assert!(h265_irap(&au(&[nal(21, 10)])), "CRA");
        assert!(h265_irap(&au(&[nal(19, 10), nal(19, 3)])), "IDR in two slices");
        assert!(h265_irap(&au(&[nal(35, 2), nal(20, 10)])), "AUD then IDR");
        assert!(!h265_irap(&au(&[nal(1, 10)])), "TRAIL_R");
        assert!(!h265_irap(&au(&[nal(21, 10), nal(1, 10)])), "a mixed picture");
        assert!(!h265_irap(&au(&[nal(39, 4)])), "SEI alone");
        assert!(!h265_irap(&[0, 0, 0, 9, 0x2a]), "truncated");
    }

    fn opts(url: &str) -> SourceOptions {
        SourceOptions {
            url: url.to_owned(),
            username: None,
            password: None,
            transport: Transport::Tcp,
            audio: true,
            connect_timeout: Duration::from_secs(5),
            stall_timeout: Duration::from_secs(5),
            user_agent: "PentaVision test".to_owned(),
        }
    }

    #[test]
    fn ticks_convert_back_exactly() {
        for rate in [8_000u32, 16_000, 44_100, 48_000, 90_000] {
            for ticks in [0i64, 1, 2, 3, 1023, 1024, 2999, 3000, 3003, 89_999, 90_001, 1 << 33] {
                let d = ticks_to_duration(ticks, rate).unwrap();
                let floor = d.as_nanos() * u128::from(rate) / 1_000_000_000;
                assert_eq!(floor, ticks as u128, "rate {rate} ticks {ticks}");
                let round = (d.as_nanos() * u128::from(rate) + 500_000_000) / 1_000_000_000;
                assert_eq!(round, ticks as u128, "rate {rate} ticks {ticks}");
            }
        }
        assert_eq!(ticks_to_duration(90_000, 90_000), Some(Duration::from_secs(1)));
        assert_eq!(ticks_to_duration(-1, 90_000), None);
        assert_eq!(ticks_to_duration(1, 0), None);
    }

    #[test]
    fn audio_is_aligned_by_rtp_info_unless_it_disagrees_with_arrival() {
        // Video origin at 2 s (90 kHz), audio (16 kHz) first frame at 2.1 s, arrived 0.1 s later.
        let (base, by_arrival) = audio_base(180_000, 90_000, 33_600, 16_000, 0.1);
        assert!(!by_arrival);
        assert_eq!(base, 32_000);
        // Same frame but RTP-Info put audio 30 s off: arrival decides (1600 ticks after origin).
        let (base, by_arrival) = audio_base(180_000, 90_000, 33_600 + 480_000, 16_000, 0.1);
        assert!(by_arrival);
        assert_eq!(33_600 + 480_000 - base, 1_600);
    }

    #[test]
    fn frame_duration_becomes_frames_per_second() {
        assert_eq!(fps((2, 60)), Some((30, 1)));
        assert_eq!(fps((1001, 30_000)), Some((30_000, 1001)));
        assert_eq!(fps((3000, 90_000)), Some((30, 1)));
        assert_eq!(fps((0, 90_000)), None);
        assert_eq!(fps((1, 0)), None);
    }

    #[test]
    fn urls_lose_credentials_and_rtsps_is_refused() {
        let t = Target::parse(&opts("rtsp://ad%40min:p%3Ass@192.0.2.1:8554/stream1?ch=1")).unwrap();
        assert_eq!(t.url.as_str(), "rtsp://192.0.2.1:8554/stream1?ch=1");
        let c = t.creds.unwrap();
        assert_eq!((c.username.as_str(), c.password.as_str()), ("ad@min", "p:ss"));

        let mut o = opts("rtsp://old:older@192.0.2.1/s");
        o.username = Some("new".into());
        o.password = Some("secret".into());
        let c = Target::parse(&o).unwrap().creds.unwrap();
        assert_eq!((c.username.as_str(), c.password.as_str()), ("new", "secret"));

        assert!(Target::parse(&opts("rtsp://192.0.2.1/s")).unwrap().creds.is_none());
        match Target::parse(&opts("rtsps://u:hunter2@192.0.2.1/s")) {
            Err(SourceError::Unsupported(m)) => {
                assert!(m.contains("rtsps"), "{m}");
                assert!(!m.contains("hunter2"), "{m}");
            }
            other => panic!("{other:?}"),
        }
        assert!(matches!(
            Target::parse(&opts("http://192.0.2.1/s")),
            Err(SourceError::Unsupported(_))
        ));
        assert!(matches!(Target::parse(&opts("not a url")), Err(SourceError::Unsupported(_))));
        let debug = format!(
            "{:?}",
            SourceOptions { password: Some("hunter2".into()), ..opts("rtsp://u:hunter2@h/") }
        );
        assert!(!debug.contains("hunter2"), "{debug}");
    }

    #[test]
    fn h264_parameters_give_avcc_size_and_rate() {
        // SPS/PPS of a 320x240 30 fps x264 baseline stream.
        let sps = hex("6742c00dd90141fb0110000003001000000303c0f142a480");
        let pps = hex("68cb83cb20");
        let p = retina::codec::h264::parameters_from_sps_and_pps(
            &sps,
            &pps,
            retina::codec::h26x::Framing::FourByteLength,
        )
        .unwrap();
        assert_eq!(p.pixel_dimensions(), (320, 240));
        assert_eq!(p.frame_rate().and_then(fps), Some((30, 1)));
        let avcc = p.extra_data();
        assert_eq!(avcc[0], 1, "configurationVersion");
        assert_eq!(avcc[4] & 0x03, 3, "4-byte NAL lengths");
    }

    #[tokio::test]
    async fn unreachable_camera_is_lost() {
        // Nothing listens on port 1 of localhost.
        match RtspSource::connect(&opts("rtsp://127.0.0.1:1/cam")).await {
            Err(SourceError::Lost(m)) => assert!(m.contains("127.0.0.1:1"), "{m}"),
            other => panic!("{other:?}"),
        }
    }

    #[tokio::test]
    async fn silent_server_times_out() {
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
        let port = listener.local_addr().unwrap().port();
        let _accept = tokio::spawn(async move {
            let (_sock, _) = listener.accept().await.unwrap();
            tokio::time::sleep(Duration::from_secs(30)).await;
        });
        let mut o = opts(&format!("rtsp://127.0.0.1:{port}/cam"));
        o.connect_timeout = Duration::from_millis(300);
        let started = Instant::now();
        assert!(matches!(RtspSource::connect(&o).await, Err(SourceError::Lost(_))));
        assert!(started.elapsed() < Duration::from_secs(3));
    }

    fn hex(s: &str) -> Vec<u8> {
        (0..s.len()).step_by(2).map(|i| u8::from_str_radix(&s[i..i + 2], 16).unwrap()).collect()
    }

    /// Against the simulated camera (gst-rtsp-server).
    #[cfg(feature = "testkit")]
    mod camera {
        use super::*;
        use crate::testcam::{Clip, TestCamera, TestCameraOptions};

        /// Reads events until `units` video units were seen; checks order and time stamps.
        async fn read(source: &mut RtspSource, units: usize) -> (Vec<SourceEvent>, usize) {
            let mut events = Vec::new();
            let mut video = 0;
            let mut audio = 0;
            while video < units {
                let e = source.next().await.unwrap();
                match &e {
                    SourceEvent::Unit(u) if u.track() == Track::Video => video += 1,
                    SourceEvent::Unit(_) => audio += 1,
                    _ => {}
                }
                events.push(e);
            }
            (events, audio)
        }

        fn check_video(events: &[SourceEvent], codec: VideoCodec) {
            let SourceEvent::Video(p) = &events[0] else { panic!("{:?}", events[0]) };
            assert_eq!(p.codec, codec);
            assert_eq!((p.width, p.height), (1280, 720));
            assert_eq!(p.codec_data[0], 1, "avcC/hvcC version");
            let units: Vec<&AccessUnit> = events
                .iter()
                .filter_map(|e| match e {
                    SourceEvent::Unit(u) if u.track() == Track::Video => Some(u),
                    _ => None,
                })
                .collect();
            assert!(units[0].is_key_frame());
            assert_eq!(units[0].dts(), Some(Duration::ZERO));
            for w in units.windows(2) {
                assert!(
                    w[1].dts() > w[0].dts(),
                    "dts increases: {:?} {:?}",
                    w[0].dts(),
                    w[1].dts()
                );
                assert_eq!(w[1].pts(), w[1].dts());
            }
            // The clips run at 15 fps: the units span (n - 1) / 15 s.
            let span = units.last().unwrap().dts().unwrap() - units[0].dts().unwrap();
            let expected = Duration::from_secs(units.len() as u64 - 1) / 15;
            assert!(
                span.abs_diff(expected) < Duration::from_millis(300),
                "{span:?} vs {expected:?}"
            );
            // Length-prefixed NAL units that fill the unit exactly.
            for u in &units {
                let d = u.data();
                let mut i = 0;
                while i < d.len() {
                    let n = u32::from_be_bytes([d[i], d[i + 1], d[i + 2], d[i + 3]]) as usize;
                    i += 4 + n;
                }
                assert_eq!(i, d.len());
            }
        }

        #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
        async fn h264_over_tcp_and_udp() {
            let cam = TestCamera::start(Clip::Moving).unwrap();
            for transport in [Transport::Tcp, Transport::Udp] {
                let mut o = opts(&cam.url());
                o.transport = transport;
                let mut s = RtspSource::connect(&o).await.unwrap();
                assert!(!s.has_audio());
                let (events, _) = read(&mut s, 60).await;
                check_video(&events, VideoCodec::H264);
                s.close().await;
            }
        }

        #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
        async fn h265() {
            let cam = TestCamera::start(Clip::MovingH265).unwrap();
            let mut s = RtspSource::connect(&opts(&cam.url())).await.unwrap();
            let (events, _) = read(&mut s, 60).await;
            check_video(&events, VideoCodec::H265);
            s.close().await;
        }

        #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
        async fn aac_audio_follows_the_video_parameters() {
            let cam = TestCamera::start(Clip::MovingAac).unwrap();
            let mut s = RtspSource::connect(&opts(&cam.url())).await.unwrap();
            assert!(s.has_audio());
            let (events, audio) = read(&mut s, 60).await;
            check_video(&events, VideoCodec::H264);
            let SourceEvent::Audio(a) = &events[1] else { panic!("{:?}", events[1]) };
            assert_eq!((a.codec, a.sample_rate, a.channels), (AudioCodec::Aac, 16_000, 1));
            assert!(!a.codec_data.is_empty());
            // 16 kHz AAC: 15.6 frames a second, about 4 s read.
            assert!(audio >= 40, "{audio} audio units in 4 s");
            let audio_units: Vec<&AccessUnit> = events
                .iter()
                .filter_map(|e| match e {
                    SourceEvent::Unit(u) if u.track() == Track::Audio => Some(u),
                    _ => None,
                })
                .collect();
            assert_eq!(audio_units[0].duration(), Some(Duration::from_millis(64)));
            for w in audio_units.windows(2) {
                assert!(w[1].dts() > w[0].dts());
            }
            // Audio starts near the video (no more than the skew bound away).
            assert!(audio_units[0].dts().unwrap() < MAX_AV_SKEW, "{:?}", audio_units[0].dts());
            s.close().await;

            // Without audio asked for, none is set up.
            let mut o = opts(&cam.url());
            o.audio = false;
            let s = RtspSource::connect(&o).await.unwrap();
            assert!(!s.has_audio());
            s.close().await;
        }

        #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
        async fn credentials_are_checked() {
            let cam = TestCamera::start_with(
                Clip::Moving,
                TestCameraOptions {
                    credentials: Some(("admin".into(), "right".into())),
                    ..Default::default()
                },
            )
            .unwrap();
            let mut o = opts(&cam.url());
            o.username = Some("admin".into());
            o.password = Some("hunter2".into());
            match RtspSource::connect(&o).await {
                Err(SourceError::Auth(m)) => {
                    assert!(m.contains("user name or password"), "{m}");
                    assert!(!m.contains("hunter2"), "{m}");
                }
                other => panic!("{other:?}"),
            }
            o.password = None;
            o.username = None;
            assert!(matches!(RtspSource::connect(&o).await, Err(SourceError::Auth(_))));
            let mut s = RtspSource::connect(&opts(&cam.url_with_credentials())).await.unwrap();
            assert!(matches!(s.next().await.unwrap(), SourceEvent::Video(_)));
            s.close().await;
        }

        #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
        async fn digest_credentials_are_checked() {
            let cam = TestCamera::start_with(
                Clip::Moving,
                TestCameraOptions {
                    credentials: Some(("admin".into(), "right".into())),
                    digest: true,
                    ..Default::default()
                },
            )
            .unwrap();
            let mut o = opts(&cam.url());
            o.username = Some("admin".into());
            o.password = Some("hunter2".into());
            match RtspSource::connect(&o).await {
                Err(SourceError::Auth(m)) => assert!(!m.contains("hunter2"), "{m}"),
                other => panic!("{other:?}"),
            }
            o.password = Some("right".into());
            let mut s = RtspSource::connect(&o).await.unwrap();
            assert!(matches!(s.next().await.unwrap(), SourceEvent::Video(_)));
            s.close().await;
        }

        #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
        async fn g711_audio_is_handed_on_raw() {
            let cam = TestCamera::start_with(
                Clip::Moving,
                TestCameraOptions { g711: true, ..Default::default() },
            )
            .unwrap();
            let mut s = RtspSource::connect(&opts(&cam.url())).await.unwrap();
            assert!(s.has_audio());
            let (events, audio) = read(&mut s, 30).await;
            let SourceEvent::Audio(a) = &events[1] else { panic!("{:?}", events[1]) };
            assert_eq!((a.codec, a.sample_rate, a.channels), (AudioCodec::Pcmu, 8_000, 1));
            assert!(a.codec_data.is_empty());
            assert!(audio >= 10, "{audio} audio units in 2 s");
            for e in &events {
                if let SourceEvent::Unit(u) = e
                    && u.track() == Track::Audio
                {
                    // One byte per sample at 8 kHz.
                    let expected = Duration::from_secs(u.len() as u64) / 8_000;
                    assert_eq!(u.duration(), Some(expected));
                }
            }
            s.close().await;
        }

        #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
        async fn camera_loss_is_noticed_within_the_stall_timeout() {
            let mut cam = TestCamera::start(Clip::Moving).unwrap();
            let mut o = opts(&cam.url());
            o.stall_timeout = Duration::from_secs(2);
            let mut s = RtspSource::connect(&o).await.unwrap();
            read(&mut s, 10).await;
            tokio::task::spawn_blocking(move || {
                cam.stop();
                cam
            })
            .await
            .unwrap();
            let started = Instant::now();
            loop {
                match s.next().await {
                    Ok(_) => continue,
                    Err(SourceError::Lost(_)) => break,
                    Err(e) => panic!("{e:?}"),
                }
            }
            assert!(started.elapsed() < Duration::from_secs(4));
        }

        /// A bare gst-rtsp-server serving `launch` at `/s`; stops when dropped.
        struct Server {
            port: i32,
            main_loop: gstreamer::glib::MainLoop,
            thread: Option<std::thread::JoinHandle<()>>,
        }

        impl Server {
            fn start(launch: &str) -> Server {
                use gstreamer::glib;
                use gstreamer_rtsp_server as gst_rtsp;
                use gstreamer_rtsp_server::prelude::*;
                crate::init().unwrap();
                let server = gst_rtsp::RTSPServer::new();
                server.set_address("127.0.0.1");
                server.set_service("0");
                let factory = gst_rtsp::RTSPMediaFactory::new();
                factory.set_launch(launch);
                factory.set_shared(true);
                server.mount_points().unwrap().add_factory("/s", factory);
                let context = glib::MainContext::new();
                let source = server.attach(Some(&context)).unwrap();
                let port = server.bound_port();
                let main_loop = glib::MainLoop::new(Some(&context), false);
                let loop_ = main_loop.clone();
                let thread = std::thread::spawn(move || {
                    let _server = server;
                    let _ = context.with_thread_default(|| loop_.run());
                    if let Some(source) = context.find_source_by_id(&source) {
                        source.destroy();
                    }
                });
                Server { port, main_loop, thread: Some(thread) }
            }

            fn url(&self) -> String {
                format!("rtsp://127.0.0.1:{}/s", self.port)
            }
        }

        impl Drop for Server {
            fn drop(&mut self) {
                self.main_loop.quit();
                if let Some(t) = self.thread.take() {
                    let _ = t.join();
                }
            }
        }

        /// A B-frame stream (x264 `bframes=2`; `profile=high`, else it negotiates baseline).
        #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
        async fn b_frames_are_unsupported() {
            let server = Server::start(
                "( videotestsrc is-live=true ! video/x-raw,width=320,height=240,framerate=15/1 \
                 ! x264enc bframes=2 b-adapt=false key-int-max=15 speed-preset=superfast \
                 ! video/x-h264,profile=high ! rtph264pay name=pay0 pt=96 config-interval=1 )",
            );
            let mut s = RtspSource::connect(&opts(&server.url())).await.unwrap();
            let result = tokio::time::timeout(Duration::from_secs(10), async {
                loop {
                    if let Err(e) = s.next().await {
                        return e;
                    }
                }
            })
            .await;
            match result {
                Ok(SourceError::Unsupported(m)) => assert!(m.contains("B-frames"), "{m}"),
                other => panic!("{other:?}"),
            }
        }

        /// G.711 A-law and µ-law (static payload types 8 and 0) beside H.264.
        #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
        async fn g711_from_static_payload_types() {
            for (enc, pay, pt, codec) in [
                ("alawenc", "rtppcmapay", 8, AudioCodec::Pcma),
                ("mulawenc", "rtppcmupay", 0, AudioCodec::Pcmu),
            ] {
                let server = Server::start(&format!(
                    "( videotestsrc is-live=true ! video/x-raw,width=320,height=240,framerate=15/1 \
                     ! x264enc key-int-max=15 speed-preset=ultrafast tune=zerolatency \
                     ! rtph264pay name=pay0 pt=96 config-interval=1 \
                     audiotestsrc is-live=true samplesperbuffer=160 ! audio/x-raw,rate=8000,channels=1 \
                     ! {enc} ! {pay} name=pay1 pt={pt} )"
                ));
                let mut s = RtspSource::connect(&opts(&server.url())).await.unwrap();
                assert!(s.has_audio());
                let (events, audio) = read(&mut s, 30).await;
                let SourceEvent::Audio(a) = &events[1] else { panic!("{:?}", events[1]) };
                assert_eq!((a.codec, a.sample_rate, a.channels), (codec, 8_000, 1));
                assert!(a.codec_data.is_empty());
                assert!(audio >= 20, "{audio} audio units in 2 s");
                let mut last = None;
                for e in &events {
                    if let SourceEvent::Unit(u) = e
                        && u.track() == Track::Audio
                    {
                        // One byte per sample at 8 kHz.
                        let expected = Duration::from_secs(u.len() as u64) / 8_000;
                        assert_eq!(u.duration(), Some(expected));
                        assert!(u.dts() > last);
                        last = u.dts();
                    }
                }
                s.close().await;
            }
        }

        #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
        async fn garbage_never_yields_a_unit() {
            let cam = TestCamera::start(Clip::Garbage).unwrap();
            let mut o = opts(&cam.url());
            o.stall_timeout = Duration::from_secs(2);
            let Ok(mut s) = RtspSource::connect(&o).await else { return };
            let r = tokio::time::timeout(Duration::from_secs(5), s.next()).await;
            match r {
                Ok(Err(SourceError::Lost(m))) => assert!(m.contains("key frame"), "{m}"),
                other => panic!("{other:?}"),
            }
        }
    }
}
