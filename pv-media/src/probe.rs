//! Probe an RTSP stream before a camera is saved: video codec, picture size, frame rate and
//! audio codec, or a clear reason why the stream cannot be used.
//!
//! [`probe`] opens one short RTSP session the way a recorder would (same transport, same
//! credentials, given to `rtspsrc` as `user-id`/`user-pw`, never put into the URL):
//!
//! - the audio codec comes from the RTP caps the camera announces in its SDP (the
//!   `encoding-name`), so no audio has to arrive. Every announced stream is set up, as a
//!   player would (some servers fail the whole session of a client that leaves one out), and
//!   all but the first video stream go straight into a `fakesink`;
//! - the first video stream runs through its depayloader and parser
//!   (`rtph264depay ! h264parse`, `rtph265depay ! h265parse`, `rtpjpegdepay ! jpegparse`,
//!   `rtpmp4vdepay ! mpeg4videoparse`) into a `fakesink`; nothing is decoded. Width, height
//!   and frame rate are read from the parser's caps once they are known (for H.264/H.265,
//!   after the first sequence parameter set: from the SDP's `sprop-parameter-sets` at once,
//!   else at the first key frame). A frame rate missing from the bitstream falls back to the
//!   SDP's `a=framerate`. Other video codecs are reported by name, without size or rate;
//! - the session ends as soon as the video is known.
//!
//! The call blocks (run it with `spawn_blocking` from async code) for at most `timeout` plus
//! the teardown of the session (the RTSP `TEARDOWN` is given 100 ms). Every failure is a
//! [`ProbeError`] whose message is written for the person who typed the URL, and which never
//! contains the password (nor user info from the URL): errors name the host and port, and the
//! path only when the path is what is wrong.
//!
//! ```no_run
//! use std::time::Duration;
//! use pv_media::probe::{probe, ProbeError};
//! use pv_media::record::Transport;
//!
//! match probe("rtsp://192.0.2.10/stream1", Some("admin"), Some("pw"), Transport::Tcp,
//!             Duration::from_secs(10)) {
//!     Ok(info) => println!("{} {:?}x{:?} @ {:?} fps, audio {:?}",
//!         info.video_codec, info.width, info.height, info.fps, info.audio_codec),
//!     Err(err @ ProbeError::WrongCredentials { .. }) => eprintln!("{err}"),
//!     Err(err) => eprintln!("{err} ({:?})", err.kind()),
//! }
//! ```

use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use gstreamer as gst;
use gstreamer::prelude::*;
use pv_core::ErrorKind;

use crate::Error;
use crate::record::{Transport, check_rtsp_url, redact_url};

/// What a probed stream carries.
#[derive(Debug, Clone, PartialEq)]
pub struct StreamInfo {
    /// The video codec: `h264`, `h265`, else a lowercase name (`mjpeg`, `mpeg4`, or the
    /// stream's RTP encoding name).
    pub video_codec: String,
    /// Picture width in pixels, when the stream's parameters carry it.
    pub width: Option<u32>,
    /// Picture height in pixels, when the stream's parameters carry it.
    pub height: Option<u32>,
    /// Frames per second, when the bitstream or the SDP carries it.
    pub fps: Option<f64>,
    /// The first audio stream's codec (`aac`, `pcma`, `pcmu`, `g722`, `opus`, …, else its RTP
    /// encoding name in lowercase); None when the camera sends no audio.
    pub audio_codec: Option<String>,
}

/// Why a stream could not be probed. Messages are shown to users as they are: they name the
/// camera by host and port and never contain a password.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum ProbeError {
    /// Not a URL a recorder can use (`rtsp://` or `rtsps://` with a host).
    #[error("invalid stream URL {url:?}: {reason}")]
    InvalidUrl {
        /// The URL as given, user info removed.
        url: String,
        /// What is wrong with it.
        reason: &'static str,
    },
    /// Nothing could be connected to: connection refused, host unreachable, name not resolved.
    #[error(
        "cannot connect to {host}: {reason}; check the address and port, and that the camera is on"
    )]
    Unreachable {
        /// `host[:port]` from the URL.
        host: String,
        /// What the network said (`connection refused`, …).
        reason: String,
    },
    /// The camera wants a user name and password and none was given (RTSP 401).
    #[error("the camera at {host} requires a user name and password")]
    CredentialsRequired {
        /// `host[:port]` from the URL.
        host: String,
    },
    /// The camera refused the user name and password given (RTSP 401).
    #[error("the camera at {host} refused the user name and password (401 Unauthorized)")]
    WrongCredentials {
        /// `host[:port]` from the URL.
        host: String,
    },
    /// The camera answered but has no stream at this path (RTSP 404).
    #[error(
        "the camera at {host} has no stream at {path:?} (404 Not Found); check the stream path"
    )]
    NoSuchStream {
        /// `host[:port]` from the URL.
        host: String,
        /// The URL's path, without the query.
        path: String,
    },
    /// The stream announces no video.
    #[error("the stream at {host} has no video{}", audio_note(.audio_codec.as_deref()))]
    NoVideo {
        /// `host[:port]` from the URL.
        host: String,
        /// The audio it announces, if any.
        audio_codec: Option<String>,
    },
    /// Video data arrives, but no picture size could be read from it: the stream is not what
    /// it claims to be (or its key frames are further apart than the timeout).
    #[error(
        "the camera at {host} sends {} video that cannot be parsed: no valid picture parameters within {}; the stream is not valid {0} (or its key frames are further apart than that)",
        codec_label(.codec),
        secs(.waited)
    )]
    Unparseable {
        /// `host[:port]` from the URL.
        host: String,
        /// The codec the camera announced.
        codec: String,
        /// How long the probe waited.
        waited: Duration,
    },
    /// Nothing usable arrived within the timeout.
    #[error("{}", timed_out(.host, *.waited, *.answered, *.transport))]
    TimedOut {
        /// `host[:port]` from the URL.
        host: String,
        /// How long the probe waited.
        waited: Duration,
        /// The camera answered the RTSP request (so the address is right) but sent no video.
        answered: bool,
        /// The transport tried.
        transport: Transport,
    },
    /// The camera refused or broke the RTSP session for another reason (403, an unsupported
    /// transport, a stream that ended at once, …).
    #[error("the camera at {host} could not be streamed: {reason}")]
    Stream {
        /// `host[:port]` from the URL.
        host: String,
        /// What the camera or GStreamer said.
        reason: String,
    },
    /// GStreamer is not usable here (not initialised, an element is not installed).
    #[error("GStreamer: {0}")]
    Gstreamer(String),
}

impl ProbeError {
    /// Classify this error.
    ///
    /// - [`ErrorKind::InvalidInput`]: a bad URL, missing or wrong credentials, no such path, no
    ///   video, video that cannot be parsed: what the user typed must change. Credentials are
    ///   input of the probe request, not the permissions of whoever asks, so a 401 from the
    ///   camera is *not* [`ErrorKind::PermissionDenied`] (which becomes 403 and reads as "you
    ///   may not do this" to the signed-in user).
    /// - [`ErrorKind::Unavailable`]: unreachable, timed out, or another refusal by the camera:
    ///   it may work later.
    /// - [`ErrorKind::Internal`]: GStreamer itself.
    pub fn kind(&self) -> ErrorKind {
        match self {
            ProbeError::InvalidUrl { .. }
            | ProbeError::CredentialsRequired { .. }
            | ProbeError::WrongCredentials { .. }
            | ProbeError::NoSuchStream { .. }
            | ProbeError::NoVideo { .. }
            | ProbeError::Unparseable { .. } => ErrorKind::InvalidInput,
            ProbeError::Unreachable { .. }
            | ProbeError::TimedOut { .. }
            | ProbeError::Stream { .. } => ErrorKind::Unavailable,
            ProbeError::Gstreamer(_) => ErrorKind::Internal,
        }
    }
}

/// How a codec is written in prose: `H.264`, `H.265`, else its name.
fn codec_label(codec: &str) -> &str {
    match codec {
        "h264" => "H.264",
        "h265" => "H.265",
        "mjpeg" => "MJPEG",
        "mpeg4" => "MPEG-4",
        other => other,
    }
}

fn audio_note(audio: Option<&str>) -> String {
    audio.map(|a| format!(" (only {a} audio)")).unwrap_or_default()
}

/// `4 s`, `2.5 s`.
fn secs(d: &Duration) -> String {
    let s = d.as_secs_f64();
    if d.subsec_millis() == 0 { format!("{s:.0} s") } else { format!("{s:.1} s") }
}

fn timed_out(host: &str, waited: Duration, answered: bool, transport: Transport) -> String {
    let waited = secs(&waited);
    match (answered, transport) {
        (false, _) => format!("the camera at {host} did not answer within {waited}"),
        (true, Transport::Tcp) => {
            format!("the camera at {host} answered but sent no video within {waited}")
        }
        (true, Transport::Udp) => format!(
            "the camera at {host} answered but sent no video within {waited}; RTP over UDP may be blocked by a firewall or NAT, try TCP"
        ),
    }
}

/// Name of the message the streaming threads post when the video is known.
const DONE: &str = "pv-probe-done";

/// Open `url` and report its video codec, picture size, frame rate and audio codec.
///
/// `username`/`password` are given to the camera when it asks (a password without a user name
/// is ignored); user info inside `url` is used when `username` is None. `transport` is the one
/// the camera will be recorded with. Blocks for at most `timeout` plus the session's teardown;
/// never panics; errors never contain the password. See the [module docs](self).
pub fn probe(
    url: &str,
    username: Option<&str>,
    password: Option<&str>,
    transport: Transport,
    timeout: Duration,
) -> Result<StreamInfo, ProbeError> {
    let started = Instant::now();
    let target = Target::new(url, username, password, transport);
    if let Err(err) = check_rtsp_url(url) {
        let reason = match err {
            Error::InvalidUrl { reason, .. } => reason,
            _ => "expected rtsp:// or rtsps://",
        };
        return Err(ProbeError::InvalidUrl { url: target.scrub(&redact_url(url)), reason });
    }
    crate::init().map_err(|e| ProbeError::Gstreamer(e.to_string()))?;
    let session = Session::build(url, username, password, &target, timeout)?;
    let result = session.run(&target, started, timeout);
    let _ = session.pipeline.set_state(gst::State::Null);
    // Queued messages hold references to the elements whose callbacks hold the bus.
    session.bus.set_flushing(true);
    match &result {
        Ok(info) => tracing::debug!(
            host = %target.host,
            ?info,
            elapsed_ms = started.elapsed().as_millis() as u64,
            "stream probed"
        ),
        Err(err) => tracing::debug!(
            host = %target.host,
            error = %err,
            elapsed_ms = started.elapsed().as_millis() as u64,
            "stream probe failed"
        ),
    }
    result
}

/// What is known about the URL, for messages.
struct Target {
    /// `host[:port]`.
    host: String,
    /// The host alone (no brackets around IPv6 addresses) and the port (554, 322 for rtsps).
    connect_host: String,
    port: u16,
    /// The path, without query or fragment, scrubbed.
    path: String,
    /// Credentials were given (parameters or URL user info).
    credentials: bool,
    /// `rtsps://`.
    tls: bool,
    transport: Transport,
    /// Text that must never appear in a message or log line.
    secrets: Vec<String>,
}

impl Target {
    fn new(
        url: &str,
        username: Option<&str>,
        password: Option<&str>,
        transport: Transport,
    ) -> Self {
        let rest = url.split_once("://").map_or(url, |(_, rest)| rest);
        let (authority, path) = match rest.find('/') {
            Some(i) => rest.split_at(i),
            None => (rest, "/"),
        };
        let (userinfo, host) = match authority.rsplit_once('@') {
            Some((userinfo, host)) => (Some(userinfo), host),
            None => (None, authority),
        };
        let mut secrets: Vec<String> = Vec::new();
        if let Some(pass) = password.filter(|p| !p.is_empty()) {
            secrets.push(pass.to_owned());
        }
        if let Some((_, pass)) = userinfo.and_then(|u| u.split_once(':'))
            && !pass.is_empty()
        {
            secrets.push(pass.to_owned());
            secrets.push(percent_decode(pass));
        }
        let path = path.split(['?', '#']).next().unwrap_or("/");
        let tls = url.get(..8).is_some_and(|s| s.eq_ignore_ascii_case("rtsps://"));
        let (connect_host, port) = host_and_port(host, if tls { 322 } else { 554 });
        let mut target = Target {
            host: host.to_owned(),
            connect_host,
            port,
            path: String::new(),
            credentials: username.is_some() || userinfo.is_some(),
            tls,
            transport,
            secrets,
        };
        target.path = target.scrub(path);
        target
    }

    /// `text` without URL user info or any of the secrets.
    fn scrub(&self, text: &str) -> String {
        let mut out = strip_userinfo(text);
        for secret in &self.secrets {
            if !secret.is_empty() {
                out = out.replace(secret.as_str(), "<redacted>");
            }
        }
        out
    }
}

/// `host`, `host:port`, `[v6]`, `[v6]:port` → (host, port).
pub(crate) fn host_and_port(authority: &str, default_port: u16) -> (String, u16) {
    if let Some((host, after)) = authority.strip_prefix('[').and_then(|r| r.split_once(']')) {
        let port = after.strip_prefix(':').and_then(|p| p.parse().ok()).unwrap_or(default_port);
        return (host.to_owned(), port);
    }
    match authority.rsplit_once(':') {
        Some((host, port)) if !host.contains(':') => {
            (host.to_owned(), port.parse().unwrap_or(default_port))
        }
        _ => (authority.to_owned(), default_port),
    }
}

/// Every `scheme://user:pass@host` in `text` becomes `scheme://host`.
pub(crate) fn strip_userinfo(text: &str) -> String {
    let mut out = String::with_capacity(text.len());
    let mut rest = text;
    while let Some(i) = rest.find("://") {
        let (head, tail) = rest.split_at(i + 3);
        out.push_str(head);
        let end = tail
            .find(|c: char| c == '/' || c.is_whitespace() || "\"'()<>".contains(c))
            .unwrap_or(tail.len());
        let (authority, after) = tail.split_at(end);
        out.push_str(authority.rsplit_once('@').map_or(authority, |(_, host)| host));
        rest = after;
    }
    out.push_str(rest);
    out
}

fn percent_decode(s: &str) -> String {
    let bytes = s.as_bytes();
    let mut out = Vec::with_capacity(bytes.len());
    let mut i = 0;
    while i < bytes.len() {
        let hex = bytes.get(i + 1..i + 3).and_then(|h| std::str::from_utf8(h).ok());
        match (bytes.get(i), hex.and_then(|h| u8::from_str_radix(h, 16).ok())) {
            (Some(b'%'), Some(b)) => {
                out.push(b);
                i += 3;
            }
            (Some(&b), _) => {
                out.push(b);
                i += 1;
            }
            (None, _) => break,
        }
    }
    String::from_utf8_lossy(&out).into_owned()
}

/// The video stream chosen from the SDP.
#[derive(Debug, Clone)]
struct Video {
    /// Its index in the SDP (the first number in rtspsrc's pad name).
    stream: u32,
    /// Our codec name.
    codec: String,
    /// `a=framerate` from the SDP.
    sdp_fps: Option<f64>,
}

/// Picture parameters read from the parser.
#[derive(Debug, Clone, Copy)]
struct Picture {
    width: Option<u32>,
    height: Option<u32>,
    fps: Option<f64>,
}

#[derive(Debug, Default)]
struct Found {
    /// The camera answered DESCRIBE with a stream description.
    answered: bool,
    video: Option<Video>,
    audio_codec: Option<String>,
    picture: Option<Picture>,
    /// The video chain could not be built.
    problem: Option<String>,
}

/// State shared with the streaming threads.
#[derive(Default)]
struct Shared {
    found: Mutex<Found>,
    /// Video RTP data reached the depayloader.
    video_data: AtomicBool,
}

impl Shared {
    fn found(&self) -> std::sync::MutexGuard<'_, Found> {
        self.found.lock().unwrap_or_else(|p| p.into_inner())
    }

    /// `select-stream` (called for every stream of the SDP before any is set up): note the
    /// first video and the first audio stream. Every stream is set up, as a player would: some
    /// servers (gst-rtsp-server among them) fail the whole session when a client leaves one
    /// of a shared media's streams out.
    fn select(&self, stream: u32, caps: &gst::CapsRef) -> bool {
        let mut found = self.found();
        found.answered = true;
        let Some(st) = caps.structure(0) else { return true };
        let media = st.get::<&str>("media").unwrap_or_default();
        let encoding = st.get::<&str>("encoding-name").unwrap_or_default().to_ascii_uppercase();
        match media {
            "video" if found.video.is_none() => {
                let sdp_fps = ["a-framerate", "x-framerate"]
                    .iter()
                    .find_map(|f| st.get::<&str>(*f).ok())
                    .and_then(|v| v.trim().parse::<f64>().ok())
                    .filter(|f| f.is_finite() && *f > 0.0);
                found.video = Some(Video { stream, codec: video_codec_name(&encoding), sdp_fps });
            }
            "audio" if found.audio_codec.is_none() => {
                found.audio_codec = Some(audio_codec_name(&encoding));
            }
            _ => {}
        }
        true
    }

    /// Whether `pad` of rtspsrc (`recv_rtp_src_<stream>_<ssrc>_<pt>`) carries the chosen video
    /// stream, and its RTP encoding name.
    fn video_pad(&self, pad: &gst::Pad) -> Option<String> {
        let name = pad.name();
        let stream = name.strip_prefix("recv_rtp_src_")?.split('_').next()?.parse::<u32>().ok()?;
        if self.found().video.as_ref()?.stream != stream {
            return None;
        }
        let caps = pad.current_caps()?;
        let st = caps.structure(0)?;
        Some(st.get::<&str>("encoding-name").ok()?.to_ascii_uppercase())
    }
}

/// Our name for an RTP video encoding.
fn video_codec_name(encoding: &str) -> String {
    match encoding {
        "H264" => "h264".into(),
        "H265" => "h265".into(),
        "JPEG" => "mjpeg".into(),
        "MP4V-ES" => "mpeg4".into(),
        "H263" | "H263-1998" | "H263-2000" => "h263".into(),
        "VP8" => "vp8".into(),
        "VP9" => "vp9".into(),
        "AV1" => "av1".into(),
        "" => "unknown".into(),
        other => other.to_ascii_lowercase(),
    }
}

/// Our name for an RTP audio encoding.
fn audio_codec_name(encoding: &str) -> String {
    match encoding {
        "MPEG4-GENERIC" | "MP4A-LATM" => "aac".into(),
        "PCMA" => "pcma".into(),
        "PCMU" => "pcmu".into(),
        "G722" => "g722".into(),
        "OPUS" => "opus".into(),
        "MPA" => "mp3".into(),
        "L16" => "l16".into(),
        "" => "unknown".into(),
        other => other.to_ascii_lowercase(),
    }
}

/// The depayloader and parser that reveal a video encoding's picture parameters.
fn video_chain(encoding: &str) -> Option<[&'static str; 2]> {
    match encoding {
        "H264" => Some(["rtph264depay", "h264parse"]),
        "H265" => Some(["rtph265depay", "h265parse"]),
        "JPEG" => Some(["rtpjpegdepay", "jpegparse"]),
        "MP4V-ES" => Some(["rtpmp4vdepay", "mpeg4videoparse"]),
        _ => None,
    }
}

fn make(factory: &str) -> Result<gst::Element, String> {
    gst::ElementFactory::make(factory)
        .build()
        .map_err(|_| format!("element {factory} is not installed"))
}

/// Microseconds, for rtspsrc's timeouts (at least 1 ms).
fn micros(d: Duration) -> u64 {
    d.as_micros().clamp(1000, u128::from(u64::MAX)) as u64
}

struct Session {
    pipeline: gst::Pipeline,
    bus: gst::Bus,
    shared: Arc<Shared>,
}

impl Session {
    fn build(
        url: &str,
        username: Option<&str>,
        password: Option<&str>,
        target: &Target,
        timeout: Duration,
    ) -> Result<Session, ProbeError> {
        let pipeline = gst::Pipeline::with_name("probe");
        let bus =
            pipeline.bus().ok_or_else(|| ProbeError::Gstreamer("pipeline has no bus".into()))?;
        let src = make("rtspsrc").map_err(ProbeError::Gstreamer)?;
        src.set_property("location", url);
        crate::record::gst::accept_camera_certificates(&src, url);
        src.set_property("latency", 0u32);
        src.set_property_from_str("protocols", target.transport.as_str());
        src.set_property("tcp-timeout", micros(timeout));
        src.set_property("timeout", micros(timeout));
        src.set_property("teardown-timeout", gst::ClockTime::from_mseconds(100));
        if let Some(user) = username {
            src.set_property("user-id", user);
            src.set_property("user-pw", password.unwrap_or_default());
        }
        pipeline.add(&src).map_err(|e| ProbeError::Gstreamer(e.to_string()))?;

        let shared = Arc::new(Shared::default());
        let select_shared = shared.clone();
        src.connect("select-stream", false, move |args| {
            let stream = args.get(1).and_then(|v| v.get::<u32>().ok()).unwrap_or(u32::MAX);
            let caps = args.get(2).and_then(|v| v.get::<gst::Caps>().ok());
            let selected = caps.is_none_or(|caps| select_shared.select(stream, &caps));
            Some(selected.to_value())
        });

        let pad_shared = shared.clone();
        let pad_bus = bus.clone();
        src.connect_pad_added(move |src, pad| {
            let Some(bin) = src.parent().and_downcast::<gst::Bin>() else { return };
            if let Err(problem) = link_pad(&bin, pad, &pad_shared, &pad_bus) {
                tracing::debug!(problem, "probe: cannot read the video stream");
                pad_shared.found().problem.get_or_insert(problem);
                let _ =
                    pad_bus.post(gst::message::Application::new(gst::Structure::new_empty(DONE)));
            }
        });
        Ok(Session { pipeline, bus, shared })
    }

    fn run(
        &self,
        target: &Target,
        started: Instant,
        timeout: Duration,
    ) -> Result<StreamInfo, ProbeError> {
        let deadline = started
            .checked_add(timeout)
            .or_else(|| started.checked_add(Duration::from_secs(86_400)))
            .unwrap_or(started);
        if self.pipeline.set_state(gst::State::Playing).is_err() {
            if let Some(err) = self.pending_error(target, deadline) {
                return Err(err);
            }
            return Err(ProbeError::Gstreamer("the probe pipeline did not start".into()));
        }
        loop {
            let now = Instant::now();
            if now >= deadline {
                return Err(self.timed_out(target, timeout));
            }
            let wait = (deadline - now).min(Duration::from_millis(500));
            let Some(msg) =
                self.bus.timed_pop(gst::ClockTime::from_nseconds(wait.as_nanos() as u64))
            else {
                continue;
            };
            match msg.view() {
                gst::MessageView::Application(a)
                    if a.structure().is_some_and(|s| s.name() == DONE) =>
                {
                    if let Some(result) = self.outcome(target) {
                        return result;
                    }
                }
                gst::MessageView::Error(err) => return Err(self.classify(target, err, deadline)),
                gst::MessageView::Eos(_) => {
                    return Err(self.no_video_or(target, || ProbeError::Stream {
                        host: target.host.clone(),
                        reason: "the camera ended the stream before sending video".into(),
                    }));
                }
                gst::MessageView::Warning(w) => tracing::debug!(
                    host = %target.host,
                    warning = %target.scrub(w.error().message()),
                    "probe: pipeline warning"
                ),
                _ => {}
            }
        }
    }

    /// The result once the streaming threads have found what they can.
    fn outcome(&self, target: &Target) -> Option<Result<StreamInfo, ProbeError>> {
        let found = self.shared.found();
        if let Some(problem) = &found.problem {
            return Some(Err(ProbeError::Gstreamer(problem.clone())));
        }
        let Some(video) = found.video.as_ref() else {
            return found.answered.then(|| {
                Err(ProbeError::NoVideo {
                    host: target.host.clone(),
                    audio_codec: found.audio_codec.clone(),
                })
            });
        };
        let picture = found.picture?;
        Some(Ok(StreamInfo {
            video_codec: video.codec.clone(),
            width: picture.width,
            height: picture.height,
            fps: picture.fps.or(video.sdp_fps),
            audio_codec: found.audio_codec.clone(),
        }))
    }

    fn pending_error(&self, target: &Target, deadline: Instant) -> Option<ProbeError> {
        let msg = self.bus.timed_pop_filtered(gst::ClockTime::ZERO, &[gst::MessageType::Error])?;
        match msg.view() {
            gst::MessageView::Error(err) => Some(self.classify(target, err, deadline)),
            _ => None,
        }
    }

    fn timed_out(&self, target: &Target, waited: Duration) -> ProbeError {
        let found = self.shared.found();
        match &found.video {
            Some(video) if self.shared.video_data.load(Ordering::SeqCst) => {
                ProbeError::Unparseable {
                    host: target.host.clone(),
                    codec: video.codec.clone(),
                    waited,
                }
            }
            _ => ProbeError::TimedOut {
                host: target.host.clone(),
                waited,
                answered: found.answered,
                transport: target.transport,
            },
        }
    }

    /// [`ProbeError::NoVideo`] when the camera described its streams and none is video, else
    /// `other()`.
    fn no_video_or(&self, target: &Target, other: impl FnOnce() -> ProbeError) -> ProbeError {
        let found = self.shared.found();
        if found.answered && found.video.is_none() {
            ProbeError::NoVideo {
                host: target.host.clone(),
                audio_codec: found.audio_codec.clone(),
            }
        } else {
            other()
        }
    }

    /// Turn a pipeline error into what went wrong, in the user's terms.
    fn classify(
        &self,
        target: &Target,
        err: &gst::message::Error,
        deadline: Instant,
    ) -> ProbeError {
        let error = err.error();
        let message = target.scrub(error.message());
        // GStreamer's debug text ends with the element's own explanation, after a path prefix.
        let detail = err
            .debug()
            .map(|d| target.scrub(d.rsplit(":\n").next().unwrap_or_default().trim()))
            .unwrap_or_default();
        tracing::debug!(host = %target.host, %message, %detail, "probe: pipeline error");
        let host = target.host.clone();
        if let Some(kind) = error.kind::<gst::ResourceError>() {
            match kind {
                gst::ResourceError::NotAuthorized => {
                    return if target.credentials {
                        ProbeError::WrongCredentials { host }
                    } else {
                        ProbeError::CredentialsRequired { host }
                    };
                }
                gst::ResourceError::NotFound => {
                    return ProbeError::NoSuchStream { host, path: target.path.clone() };
                }
                gst::ResourceError::OpenRead
                | gst::ResourceError::OpenWrite
                | gst::ResourceError::OpenReadWrite
                    if !self.shared.found().answered =>
                {
                    let reason = match diagnose_connect(target, deadline) {
                        Some(Err(reason)) => reason,
                        Some(Ok(())) if target.tls => {
                            "the TLS handshake failed (is the camera's certificate trusted?)".into()
                        }
                        _ => connect_reason(&detail),
                    };
                    return ProbeError::Unreachable { host, reason };
                }
                _ => {}
            }
        }
        let answered = self.shared.found().answered;
        if !answered && error.matches(gst::ResourceError::Read) {
            let lower = detail.to_lowercase();
            if lower.contains("parse error") {
                return ProbeError::Stream {
                    host,
                    reason: "the server's answer is not RTSP; is this the camera's RTSP port?"
                        .into(),
                };
            }
            if lower.contains("end-of-file") || lower.contains("connection reset") {
                return ProbeError::Stream {
                    host,
                    reason: "the server closed the connection without answering".into(),
                };
            }
        }
        self.no_video_or(target, || {
            let reason = match (message.is_empty(), detail.is_empty()) {
                (_, false) if detail != message => {
                    if message.is_empty() {
                        detail
                    } else {
                        format!("{message} ({detail})")
                    }
                }
                (false, _) => message,
                _ => "unknown error".into(),
            };
            ProbeError::Stream { host, reason }
        })
    }
}

/// Connect to the camera's port once more, directly, for the operating system's reason (rtspsrc
/// only says "Generic error"): `Err(reason)`, or `Ok(())` when a TCP connection can be made.
/// None when it takes past `deadline` (or 1 s); the attempt runs on its own thread so a slow
/// name lookup cannot hold the caller.
fn diagnose_connect(target: &Target, deadline: Instant) -> Option<Result<(), String>> {
    let budget = deadline.saturating_duration_since(Instant::now()).min(Duration::from_secs(1));
    if budget < Duration::from_millis(10) {
        return None;
    }
    let (host, port) = (target.connect_host.clone(), target.port);
    let (tx, rx) = std::sync::mpsc::channel();
    std::thread::Builder::new()
        .name("probe-connect".into())
        .spawn(move || {
            use std::net::ToSocketAddrs;
            let reason = match (host.as_str(), port).to_socket_addrs().map(|mut a| a.next()) {
                Err(_) | Ok(None) => Err("the host name could not be resolved".to_owned()),
                Ok(Some(addr)) => std::net::TcpStream::connect_timeout(&addr, budget)
                    .map(drop)
                    .map_err(|e| io_reason(&e)),
            };
            let _ = tx.send(reason);
        })
        .ok()?;
    rx.recv_timeout(budget).ok()
}

/// A connection error in plain words.
pub(crate) fn io_reason(err: &std::io::Error) -> String {
    use std::io::ErrorKind as K;
    match err.kind() {
        K::ConnectionRefused => "connection refused".into(),
        K::HostUnreachable => "host unreachable".into(),
        K::NetworkUnreachable => "network unreachable".into(),
        K::TimedOut | K::WouldBlock => "no answer (timed out)".into(),
        K::ConnectionReset => "connection reset".into(),
        K::AddrNotAvailable => "address not available".into(),
        K::PermissionDenied => "connection not permitted (a firewall?)".into(),
        _ => err.to_string().to_lowercase(),
    }
}

/// The network's reason from rtspsrc's "Failed to connect. (…)" text, in lower case.
pub(crate) fn connect_reason(detail: &str) -> String {
    let inner = detail
        .rsplit_once('(')
        .and_then(|(_, r)| r.split_once(')'))
        .map_or(detail, |(inner, _)| inner)
        .trim()
        .trim_end_matches('.');
    let lower = inner.to_lowercase();
    if lower.is_empty() || lower == "generic error" || lower == "system error" {
        "the connection failed".into()
    } else {
        lower
    }
}

/// Link a pad of `rtspsrc`: the video stream through its depayloader and parser, anything else
/// straight into a `fakesink`.
fn link_pad(
    bin: &gst::Bin,
    pad: &gst::Pad,
    shared: &Arc<Shared>,
    bus: &gst::Bus,
) -> Result<(), String> {
    let video = shared.video_pad(pad);
    let sink = make("fakesink")?;
    sink.set_property("sync", false);
    sink.set_property("async", false);
    let mut elements = Vec::new();
    let chain = video.as_deref().and_then(video_chain);
    if let Some(names) = chain {
        for name in names {
            elements.push(make(name)?);
        }
    }
    elements.push(sink);
    bin.add_many(&elements).map_err(|e| e.to_string())?;
    gst::Element::link_many(&elements).map_err(|e| e.to_string())?;
    for e in &elements {
        e.sync_state_with_parent().map_err(|e| e.to_string())?;
    }
    let first = elements.first().and_then(|e| e.static_pad("sink")).ok_or("no sink pad")?;
    let done = || {
        let _ = bus.post(gst::message::Application::new(gst::Structure::new_empty(DONE)));
    };
    match (&video, chain) {
        (Some(_), Some(_)) => {
            let data = shared.clone();
            first.add_probe(
                gst::PadProbeType::BUFFER | gst::PadProbeType::BUFFER_LIST,
                move |_, _| {
                    data.video_data.store(true, Ordering::SeqCst);
                    gst::PadProbeReturn::Remove
                },
            );
            let parser =
                elements.get(1).and_then(|e| e.static_pad("src")).ok_or("parser has no src pad")?;
            let caps_shared = shared.clone();
            let caps_bus = bus.clone();
            parser.add_probe(gst::PadProbeType::EVENT_DOWNSTREAM, move |_, info| {
                let Some(gst::PadProbeData::Event(ev)) = &info.data else {
                    return gst::PadProbeReturn::Ok;
                };
                let gst::EventView::Caps(c) = ev.view() else { return gst::PadProbeReturn::Ok };
                let Some(picture) = picture(c.caps()) else { return gst::PadProbeReturn::Ok };
                caps_shared.found().picture = Some(picture);
                let _ =
                    caps_bus.post(gst::message::Application::new(gst::Structure::new_empty(DONE)));
                gst::PadProbeReturn::Remove
            });
        }
        (Some(_), None) => {
            // A codec without a parser here: its name is all there is to know.
            shared.found().picture = Some(Picture { width: None, height: None, fps: None });
            done();
        }
        // Media arrives and the SDP announced no video: nothing more to wait for.
        (None, _) if shared.found().video.is_none() => done(),
        (None, _) => {}
    }
    pad.link(&first).map_err(|e| format!("cannot link {}: {e:?}", pad.name()))?;
    Ok(())
}

/// Width, height and frame rate from fixed parser caps that carry a picture size.
fn picture(caps: &gst::CapsRef) -> Option<Picture> {
    if !caps.is_fixed() {
        return None;
    }
    let st = caps.structure(0)?;
    let dim =
        |f: &str| st.get::<i32>(f).ok().and_then(|v| u32::try_from(v).ok()).filter(|v| *v > 0);
    let (width, height) = (dim("width")?, dim("height")?);
    let fps = st
        .get::<gst::Fraction>("framerate")
        .ok()
        .filter(|f| f.numer() > 0 && f.denom() > 0)
        .map(|f| f64::from(f.numer()) / f64::from(f.denom()));
    Some(Picture { width: Some(width), height: Some(height), fps })
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]
    use super::*;

    #[test]
    fn targets_name_the_host_and_keep_secrets_out() {
        let t = Target::new(
            "rtsp://admin:p%40ss@cam.local:554/live/ch0?token=x",
            None,
            None,
            Transport::Tcp,
        );
        assert_eq!(t.host, "cam.local:554");
        assert_eq!(t.path, "/live/ch0");
        assert!(t.credentials);
        assert_eq!(
            t.scrub("rtsp://admin:p%40ss@cam.local/x said p@ss"),
            "rtsp://cam.local/x said <redacted>"
        );
        let t = Target::new(
            "rtsp://h/user=a&password=hunter2",
            Some("a"),
            Some("hunter2"),
            Transport::Udp,
        );
        assert_eq!(t.path, "/user=a&password=<redacted>");
        let t = Target::new("rtsp://h", None, Some("x"), Transport::Tcp);
        assert_eq!((t.host.as_str(), t.path.as_str(), t.credentials), ("h", "/", false));
    }

    #[test]
    fn hosts_and_ports() {
        assert_eq!(host_and_port("cam:8554", 554), ("cam".into(), 8554));
        assert_eq!(host_and_port("cam", 554), ("cam".into(), 554));
        assert_eq!(host_and_port("[::1]:9", 554), ("::1".into(), 9));
        assert_eq!(host_and_port("[fe80::1]", 322), ("fe80::1".into(), 322));
        let t = Target::new("RTSPS://h/x", None, None, Transport::Tcp);
        assert_eq!((t.connect_host.as_str(), t.port), ("h", 322));
    }

    #[test]
    fn codec_names() {
        assert_eq!(video_codec_name("H264"), "h264");
        assert_eq!(video_codec_name("JPEG"), "mjpeg");
        assert_eq!(video_codec_name("X-FOO"), "x-foo");
        assert_eq!(audio_codec_name("MPEG4-GENERIC"), "aac");
        assert_eq!(audio_codec_name("PCMA"), "pcma");
        assert_eq!(audio_codec_name("G726-32"), "g726-32");
    }

    #[test]
    fn network_reasons_are_plain() {
        assert_eq!(connect_reason("Failed to connect. (Connection refused)"), "connection refused");
        assert_eq!(connect_reason("Failed to connect. (Generic error)"), "the connection failed");
        assert_eq!(connect_reason(""), "the connection failed");
        assert_eq!(secs(&Duration::from_secs(4)), "4 s");
        assert_eq!(secs(&Duration::from_millis(2500)), "2.5 s");
    }
}
