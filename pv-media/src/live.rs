//! Live view over WebRTC: a camera's [`StreamTap`] sent to browsers (or any WHEP client) as
//! H.264 RTP, without transcoding and without a second connection to the camera.
//!
//! Why [`str0m`]: it is sans-IO, so one UDP socket per address serves every viewer and a
//! viewer is a plain [`Rtc`] value owned by one task — no ICE agent, DTLS stack and pipeline
//! per viewer as with GStreamer's `webrtcbin` (whose libnice also leaves loopback out, which
//! breaks loopback tests and single-host set-ups). It handles NACK/RTX, RTCP, keyframe
//! requests as events and H.264 packetisation; the server does the rest (ICE-lite host
//! candidates, routing, pacing against the tap).
//!
//! The path, for each viewer:
//! - [`WebRtcServer::open`] takes the viewer's SDP offer: the tap must carry H.264 without
//!   B-frames; the answer names the camera's profile (in the canonical form browsers use), or
//!   when the browser does not offer it the closest it does, on the browser's payload type,
//!   and one host candidate per address the server listens on ([`LiveConfig::addresses`],
//!   plus [`LiveConfig::advertise`] for NAT). Never 0.0.0.0: a wildcard address is refused
//!   when the server binds.
//! - The server is ICE-lite: the browser checks, the server answers. Browsers that hide their
//!   addresses behind mDNS names are learnt from their first check (peer-reflexive), so no
//!   trickle is needed; trickled candidates ([`WebRtcServer::add_candidates`]) are accepted.
//! - One task per viewer owns its [`Rtc`]: packets reach it by ICE user name, then by source
//!   address; it reads its own [`Subscription`] of the tap (the current group of pictures
//!   first, so the picture starts at once at a key frame) and writes each frame as Annex B
//!   with SPS/PPS in front of every IDR.
//! - Bounded per viewer: a viewer whose frames are older than [`LiveConfig::max_frame_age`]
//!   when it gets to them (it cannot keep up) skips to the next key frame; the tap never waits
//!   for it, the recorder and the other viewers never notice. Sends never block: a full socket
//!   buffer drops the packet (the browser asks again with NACK).
//! - A viewer that closes its tab without saying so stops sending ICE consent checks and is
//!   dropped when the ICE agent gives up on it (about 15–18 s), or after
//!   [`LiveConfig::connect_timeout`] when it never connected; its task, queues and routes go
//!   with it. [`WebRtcServer::ended`] reports every end with its reason.

pub mod h264;
pub mod pull;

use std::collections::HashMap;
use std::fmt;
use std::net::{IpAddr, SocketAddr};
use std::sync::{Arc, Mutex, MutexGuard};
use std::time::{Duration, Instant};

use pv_core::ErrorKind;
use str0m::change::SdpOffer;
use str0m::media::{MediaTime, Mid, Pt};
use str0m::net::{Protocol, Receive};
use str0m::{Candidate, Event, IceConnectionState, IceCreds, Input, Output, Rtc, RtcConfig};
use tokio::net::UdpSocket;
use tokio::sync::mpsc;

use crate::tap::{StreamTap, Subscription, TapInfo, Track, VideoCodec};
use h264::AvcConfig;

/// Packets queued for one viewer's task before newer ones are dropped.
const NET_QUEUE: usize = 512;
/// The longest a viewer task sleeps without looking at its timers.
const MAX_SLEEP: Duration = Duration::from_millis(250);

/// How the WebRTC side of live view runs.
#[derive(Debug, Clone)]
pub struct LiveConfig {
    /// UDP port on every address (`[live] udp_port`, default 8555); 0 picks a free one per
    /// address.
    pub udp_port: u16,
    /// The addresses to listen on and announce as host candidates. Specific addresses only
    /// (see [`LiveConfig::host_addresses`]).
    pub addresses: Vec<IpAddr>,
    /// Extra addresses announced as host candidates with the same port, for a server behind
    /// NAT with a forwarded port (`[live] advertise_addresses`).
    pub advertise: Vec<IpAddr>,
    /// At most this many viewers at once over the whole server (`[live] max_viewers`).
    pub max_viewers: usize,
    /// A viewer that has not connected (ICE and DTLS) within this is dropped.
    pub connect_timeout: Duration,
    /// A frame older than this when its viewer gets to it (it fell behind) is skipped, with the
    /// rest of its group of pictures; frames of the group a viewer starts with are exempt.
    pub max_frame_age: Duration,
    /// Keep the server-side latency of every sent frame for [`WebRtcServer::take_latency`]
    /// (benchmarks; off in a server, where it would put a shared lock on every frame).
    pub record_latency: bool,
}

impl Default for LiveConfig {
    fn default() -> Self {
        LiveConfig {
            udp_port: 8555,
            addresses: Vec::new(),
            advertise: Vec::new(),
            max_viewers: 100,
            connect_timeout: Duration::from_secs(20),
            max_frame_age: Duration::from_millis(700),
            record_latency: false,
        }
    }
}

impl LiveConfig {
    /// The host-candidate addresses for a server whose HTTP side listens on `listen`: loopback
    /// only when it listens on loopback; the listen address itself when it is specific;
    /// otherwise every up, non-loopback interface address of the machine (IPv6 link-local
    /// ones left out: browsers cannot reach them without a scope).
    pub fn host_addresses(listen: IpAddr) -> Vec<IpAddr> {
        if listen.is_loopback() || !listen.is_unspecified() {
            return vec![listen];
        }
        let mut out: Vec<IpAddr> = if_addrs::get_if_addrs()
            .unwrap_or_default()
            .into_iter()
            .map(|i| i.ip())
            .filter(|ip| !ip.is_loopback() && !ip.is_unspecified())
            .filter(|ip| match ip {
                IpAddr::V6(v6) => (v6.segments()[0] & 0xffc0) != 0xfe80,
                IpAddr::V4(_) => true,
            })
            .filter(|ip| listen.is_ipv6() || ip.is_ipv4())
            .collect();
        out.sort();
        out.dedup();
        out
    }
}

/// What live view could not do.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum LiveError {
    /// The offer is not SDP, or not an offer we can read.
    #[error("the SDP offer cannot be read: {0}")]
    MalformedOffer(String),
    /// The offer has no video codec we can send this camera in.
    #[error("{0}")]
    NoCodec(String),
    /// The camera sends something WebRTC cannot carry as it is.
    #[error("{0}")]
    Unsupported(String),
    /// The camera is not streaming into the server now.
    #[error("the camera is not streaming now; live view starts when it is")]
    NotStreaming,
    /// The server has as many viewers as it allows.
    #[error("the server already has its maximum of {max} live viewers; try again later")]
    TooManyViewers {
        /// The limit (`[live] max_viewers`).
        max: usize,
    },
    /// No live session with that id.
    #[error("no such live session")]
    UnknownSession,
    /// A trickled candidate fragment that cannot be read.
    #[error("the ICE candidate fragment cannot be read: {0}")]
    MalformedCandidate(String),
    /// The server cannot listen.
    #[error("cannot listen for WebRTC on {addr}: {reason}")]
    Bind {
        /// The address.
        addr: SocketAddr,
        /// Why.
        reason: String,
    },
    /// Something inside the WebRTC stack failed.
    #[error("live view failed: {0}")]
    Internal(String),
}

impl LiveError {
    /// Classify this error.
    pub fn kind(&self) -> ErrorKind {
        match self {
            LiveError::MalformedOffer(_)
            | LiveError::NoCodec(_)
            | LiveError::Unsupported(_)
            | LiveError::MalformedCandidate(_) => ErrorKind::InvalidInput,
            LiveError::NotStreaming | LiveError::TooManyViewers { .. } => ErrorKind::Conflict,
            LiveError::UnknownSession => ErrorKind::NotFound,
            LiveError::Bind { .. } | LiveError::Internal(_) => ErrorKind::Unavailable,
        }
    }
}

/// A live session's id: 128 random bits in hex, unguessable (it names the WHEP resource).
#[derive(Debug, Clone, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct SessionId(String);

impl SessionId {
    /// A new random id.
    pub fn random() -> SessionId {
        SessionId(format!("{:032x}", rand::random::<u128>()))
    }

    /// The id as text.
    pub fn as_str(&self) -> &str {
        &self.0
    }
}

impl fmt::Display for SessionId {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.0)
    }
}

impl std::str::FromStr for SessionId {
    type Err = LiveError;
    fn from_str(s: &str) -> Result<Self, Self::Err> {
        if s.len() == 32 && s.bytes().all(|b| b.is_ascii_hexdigit()) {
            Ok(SessionId(s.to_ascii_lowercase()))
        } else {
            Err(LiveError::UnknownSession)
        }
    }
}

/// A session just opened: its id and the SDP answer for the viewer.
#[derive(Debug, Clone)]
pub struct Opened {
    /// The session.
    pub id: SessionId,
    /// The SDP answer.
    pub answer: String,
}

/// Why a session ended.
#[derive(Debug, Clone, PartialEq, Eq)]
#[non_exhaustive]
pub enum EndReason {
    /// Closed on request (WHEP `DELETE`, or the camera was removed).
    Closed,
    /// The viewer stopped answering (tab closed, network gone): ICE consent lost.
    ConsentLost,
    /// The viewer never connected within [`LiveConfig::connect_timeout`].
    NeverConnected,
    /// The viewer's side closed the connection.
    PeerClosed,
    /// The camera's stream changed to something this session cannot carry.
    StreamChanged,
    /// The tap is gone.
    CameraGone,
    /// The WebRTC stack failed.
    Failed(String),
}

impl EndReason {
    /// A short machine-readable name (`closed`, `consent_lost`, …).
    pub fn as_str(&self) -> &'static str {
        match self {
            EndReason::Closed => "closed",
            EndReason::ConsentLost => "consent_lost",
            EndReason::NeverConnected => "never_connected",
            EndReason::PeerClosed => "peer_closed",
            EndReason::StreamChanged => "stream_changed",
            EndReason::CameraGone => "camera_gone",
            EndReason::Failed(_) => "failed",
        }
    }
}

/// A session's end, as [`WebRtcServer::ended`] reports it.
#[derive(Debug, Clone)]
pub struct Ended {
    /// The session.
    pub id: SessionId,
    /// Why.
    pub reason: EndReason,
    /// How long it lasted.
    pub duration: Duration,
    /// Video frames sent.
    pub frames: u64,
    /// Bytes sent (UDP payloads).
    pub bytes: u64,
}

/// Server-side latency of sent frames: from entering the tap to the frame's last RTP packet
/// handed to the socket.
#[derive(Debug, Clone, Default)]
pub struct LatencySamples {
    /// Microseconds, most recent last (at most [`LatencySamples::CAP`] are kept).
    pub micros: Vec<u32>,
}

impl LatencySamples {
    /// How many samples are kept.
    pub const CAP: usize = 200_000;
}

/// One datagram for a viewer task.
struct Packet {
    at: Instant,
    source: SocketAddr,
    destination: SocketAddr,
    data: Vec<u8>,
}

enum Command {
    Candidates(Vec<Candidate>),
    Close,
}

struct SessionHandle {
    commands: mpsc::UnboundedSender<Command>,
    packets: mpsc::Sender<Packet>,
    ufrag: String,
}

#[derive(Default)]
struct Routes {
    sessions: HashMap<SessionId, SessionHandle>,
    by_ufrag: HashMap<String, SessionId>,
    by_source: HashMap<SocketAddr, SessionId>,
}

struct Shared {
    config: LiveConfig,
    sockets: Vec<Arc<UdpSocket>>,
    /// Every announced candidate address with the socket it arrives on.
    candidates: Vec<(SocketAddr, usize)>,
    routes: Mutex<Routes>,
    ended: mpsc::UnboundedSender<Ended>,
    latency: Mutex<LatencySamples>,
}

impl Shared {
    fn routes(&self) -> MutexGuard<'_, Routes> {
        self.routes.lock().unwrap_or_else(|p| p.into_inner())
    }

    fn socket_for(&self, source: SocketAddr) -> Option<&Arc<UdpSocket>> {
        let i = self.candidates.iter().find(|(a, _)| *a == source).map(|(_, i)| *i)?;
        self.sockets.get(i)
    }

    fn forget(&self, id: &SessionId) {
        let mut routes = self.routes();
        if let Some(h) = routes.sessions.remove(id) {
            routes.by_ufrag.remove(&h.ufrag);
        }
        routes.by_source.retain(|_, s| s != id);
    }
}

/// The WebRTC live server: its sockets, and one task per viewer. Cheap to clone.
#[derive(Clone)]
pub struct WebRtcServer {
    shared: Arc<Shared>,
    receivers: Arc<Vec<tokio::task::JoinHandle<()>>>,
}

impl fmt::Debug for WebRtcServer {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("WebRtcServer")
            .field("candidates", &self.candidate_addresses())
            .field("sessions", &self.sessions())
            .finish()
    }
}

impl Drop for Shared {
    fn drop(&mut self) {
        for h in self.routes().sessions.values() {
            let _ = h.commands.send(Command::Close);
        }
    }
}

impl WebRtcServer {
    /// Bind one UDP socket per address and start receiving. Returns the server and the
    /// channel on which every session's end is reported (for the audit trail).
    pub async fn bind(
        config: LiveConfig,
    ) -> Result<(WebRtcServer, mpsc::UnboundedReceiver<Ended>), LiveError> {
        let mut sockets = Vec::new();
        let mut candidates = Vec::new();
        for ip in &config.addresses {
            let addr = SocketAddr::new(*ip, config.udp_port);
            if ip.is_unspecified() {
                let reason = "a wildcard address cannot be announced to browsers; name the \
                              machine's addresses"
                    .to_owned();
                return Err(LiveError::Bind { addr, reason });
            }
            let socket = UdpSocket::bind(addr)
                .await
                .map_err(|e| LiveError::Bind { addr, reason: e.to_string() })?;
            let local =
                socket.local_addr().map_err(|e| LiveError::Bind { addr, reason: e.to_string() })?;
            candidates.push((local, sockets.len()));
            for extra in &config.advertise {
                if extra.is_ipv4() == ip.is_ipv4() && !extra.is_unspecified() {
                    candidates.push((SocketAddr::new(*extra, local.port()), sockets.len()));
                }
            }
            sockets.push(Arc::new(socket));
        }
        if sockets.is_empty() {
            let addr = SocketAddr::new(IpAddr::from([0, 0, 0, 0]), config.udp_port);
            return Err(LiveError::Bind { addr, reason: "no address to listen on".into() });
        }
        let (ended, ended_rx) = mpsc::unbounded_channel();
        let shared = Arc::new(Shared {
            config,
            sockets,
            candidates,
            routes: Mutex::new(Routes::default()),
            ended,
            latency: Mutex::new(LatencySamples::default()),
        });
        let receivers = (0..shared.sockets.len())
            .map(|i| tokio::spawn(receive(Arc::downgrade(&shared), shared.sockets[i].clone())))
            .collect();
        tracing::info!(candidates = ?shared.candidates.iter().map(|c| c.0).collect::<Vec<_>>(), "WebRTC live view listening");
        Ok((WebRtcServer { shared, receivers: Arc::new(receivers) }, ended_rx))
    }

    /// The candidate addresses announced in every answer.
    pub fn candidate_addresses(&self) -> Vec<SocketAddr> {
        self.shared.candidates.iter().map(|c| c.0).collect()
    }

    /// Sessions open now.
    pub fn sessions(&self) -> usize {
        self.shared.routes().sessions.len()
    }

    /// Whether a session is open.
    pub fn is_open(&self, id: &SessionId) -> bool {
        self.shared.routes().sessions.contains_key(id)
    }

    /// Server-side latency of the frames sent so far (see [`LatencySamples`]; only with
    /// [`LiveConfig::record_latency`]); clears them.
    pub fn take_latency(&self) -> LatencySamples {
        std::mem::take(&mut *self.shared.latency.lock().unwrap_or_else(|p| p.into_inner()))
    }

    /// Open a session for `tap` answering `offer` (SDP). The tap must be streaming H.264.
    pub fn open(&self, tap: &StreamTap, offer: &str) -> Result<Opened, LiveError> {
        let max = self.shared.config.max_viewers;
        if self.sessions() >= max {
            return Err(LiveError::TooManyViewers { max });
        }
        let offer_text = offer;
        let offer = SdpOffer::from_sdp_string(offer)
            .map_err(|e| LiveError::MalformedOffer(e.to_string()))?;
        if !offer.to_sdp_string().contains("m=video") {
            return Err(LiveError::NoCodec(
                "the offer asks for no video; live view sends the camera's video".into(),
            ));
        }
        let info = tap.info();
        if !info.live {
            return Err(LiveError::NotStreaming);
        }
        let video = info.video.as_ref().ok_or(LiveError::NotStreaming)?;
        if video.codec != VideoCodec::H264 {
            return Err(LiveError::Unsupported(format!(
                "the camera sends {}, which this browser cannot receive over WebRTC; the player \
                 falls back to MSE",
                video.codec.as_str().to_uppercase()
            )));
        }
        let avc = AvcConfig::parse(&video.codec_data).ok_or_else(|| {
            LiveError::Unsupported("the camera's H.264 configuration cannot be read".into())
        })?;
        if has_b_frames(tap) {
            return Err(LiveError::Unsupported(
                "the camera's stream uses B-frames, which WebRTC cannot show without a broken \
                 picture; turn B-frames off in the camera's encoder settings (the player falls \
                 back to MSE)"
                    .into(),
            ));
        }
        let creds = IceCreds::new();
        let mut config = RtcConfig::new().set_ice_lite(true).clear_codecs();
        // One H.264 format in the answer: the camera's profile when the browser offers it;
        // else the closest the browser offers, and the stream is sent as it is (browsers do not
        // all offer every profile — Debian's Chromium offers no high — and their decoders
        // play any of them; go2rtc does the same).
        let camera_plid = avc.answer_profile_level_id();
        let plid = h264::choose_profile(offer_text, camera_plid).ok_or_else(|| {
            LiveError::NoCodec(format!(
                "the offer has no H.264 video (packetization-mode 1) this server can answer; \
                 the camera sends H.264 {} profile",
                avc.profile_name()
            ))
        })?;
        config.codec_config().add_h264(Pt::from(102), Some(Pt::from(103)), true, plid);
        let mut rtc = config.set_local_ice_credentials(creds.clone()).build(Instant::now());
        for (addr, _) in &self.shared.candidates {
            let c =
                Candidate::host(*addr, "udp").map_err(|e| LiveError::Internal(e.to_string()))?;
            rtc.add_local_candidate(c);
        }
        // str0m panics on a few inconsistent offers; a bad offer must never take a task down.
        let answer = std::panic::catch_unwind(std::panic::AssertUnwindSafe(|| {
            rtc.sdp_api().accept_offer(offer)
        }))
        .map_err(|_| LiveError::MalformedOffer("inconsistent payload types".into()))?
        .map_err(|e| LiveError::MalformedOffer(e.to_string()))?;
        // Drain what accepting produced (nothing goes out before the browser's first check).
        loop {
            match rtc.poll_output() {
                Ok(Output::Timeout(_)) => break,
                Ok(_) => {}
                Err(e) => return Err(LiveError::Internal(e.to_string())),
            }
        }
        let no_codec = || {
            LiveError::NoCodec(format!(
                "the offer has no H.264 video (packetization-mode 1) this server can answer; the \
                 camera sends H.264 {} profile",
                avc.profile_name()
            ))
        };
        // The answer's enabled video section: its mid and the payload type H.264 goes on (the
        // browser's number for it).
        let answer = answer.to_sdp_string();
        let (mid, pt) = answer_video(&answer).ok_or_else(no_codec)?;
        let id = SessionId::random();
        let (commands, commands_rx) = mpsc::unbounded_channel();
        let (packets, packets_rx) = mpsc::channel(NET_QUEUE);
        {
            let mut routes = self.shared.routes();
            if routes.sessions.len() >= max {
                return Err(LiveError::TooManyViewers { max });
            }
            routes.by_ufrag.insert(creds.ufrag.clone(), id.clone());
            routes
                .sessions
                .insert(id.clone(), SessionHandle { commands, packets, ufrag: creds.ufrag });
        }
        let viewer = Viewer {
            id: id.clone(),
            tap: tap.clone(),
            shared: self.shared.clone(),
            rtc,
            mid,
            pt,
            avc,
            info,
            started: Instant::now(),
            connected: None,
            end: None,
            frames: 0,
            bytes: 0,
            timeline: crate::tap::Timeline::new(Duration::from_millis(33)),
        };
        tokio::spawn(viewer.run(commands_rx, packets_rx));
        tracing::debug!(session = %id, "live session opened");
        Ok(Opened { id, answer })
    }

    /// Add trickled candidates (an `application/trickle-ice-sdpfrag` body). Candidates the
    /// server cannot use (mDNS names) are ignored; the viewer is found by its checks anyway.
    pub fn add_candidates(&self, id: &SessionId, fragment: &str) -> Result<(), LiveError> {
        if fragment.len() > 64 * 1024 {
            return Err(LiveError::MalformedCandidate("the fragment is too long".into()));
        }
        let mut found = Vec::new();
        for line in fragment.lines().map(str::trim) {
            if line.is_empty() {
                continue;
            }
            let Some(attr) = line.strip_prefix("a=") else {
                if line.starts_with("m=") || line.starts_with("c=") {
                    continue;
                }
                return Err(LiveError::MalformedCandidate(format!(
                    "'{}' is not an SDP attribute line",
                    line.chars().take(40).collect::<String>()
                )));
            };
            // mDNS names do not parse and are left out: the viewer's checks find it anyway.
            if attr.starts_with("candidate:")
                && let Ok(c) = Candidate::from_sdp_string(attr)
            {
                found.push(c);
            }
        }
        let routes = self.shared.routes();
        let h = routes.sessions.get(id).ok_or(LiveError::UnknownSession)?;
        let _ = h.commands.send(Command::Candidates(found));
        Ok(())
    }

    /// End a session (WHEP `DELETE`). False when no such session is open.
    pub fn close(&self, id: &SessionId) -> bool {
        let routes = self.shared.routes();
        match routes.sessions.get(id) {
            Some(h) => {
                let _ = h.commands.send(Command::Close);
                true
            }
            None => false,
        }
    }
}

impl Drop for WebRtcServer {
    fn drop(&mut self) {
        if Arc::strong_count(&self.receivers) == 1 {
            for r in self.receivers.iter() {
                r.abort();
            }
        }
    }
}

/// The mid and H.264 payload type of the answer's first enabled video section.
fn answer_video(answer: &str) -> Option<(Mid, Pt)> {
    for section in answer.split("\nm=").skip(1) {
        if !section.starts_with("video ") || section.starts_with("video 0 ") {
            continue;
        }
        let attrs = || section.lines().filter_map(|l| l.trim_end().strip_prefix("a="));
        let mid = attrs().find_map(|a| a.strip_prefix("mid:"))?;
        let pt = attrs().filter_map(|a| a.strip_prefix("rtpmap:")).find_map(|l| {
            let (pt, codec) = l.split_once(' ')?;
            codec.starts_with("H264/").then(|| pt.parse::<u8>().ok()).flatten()
        })?;
        return Some((Mid::from(mid), Pt::from(pt)));
    }
    None
}

/// Whether the tap's current group of pictures shows frame reordering (B-frames): a
/// presentation time differing from the decoding time.
fn has_b_frames(tap: &StreamTap) -> bool {
    let mut sub = tap.subscribe();
    let mut seen = 0;
    while let Ok(Some(unit)) = sub.try_recv() {
        if unit.track() == Track::Video
            && let (Some(p), Some(d)) = (unit.pts(), unit.dts())
            && p != d
        {
            return true;
        }
        seen += 1;
        if seen > 300 {
            break;
        }
    }
    false
}

/// The ICE user name's local part of a STUN binding request, if the datagram is one.
fn stun_local_ufrag(data: &[u8]) -> Option<&str> {
    if data.len() < 20 || data[0] & 0xc0 != 0 || data[4..8] != [0x21, 0x12, 0xa4, 0x42] {
        return None;
    }
    let mut at = 20;
    while at + 4 <= data.len() {
        let kind = u16::from_be_bytes([data[at], data[at + 1]]);
        let len = usize::from(u16::from_be_bytes([data[at + 2], data[at + 3]]));
        let value = data.get(at + 4..at + 4 + len)?;
        if kind == 0x0006 {
            let name = std::str::from_utf8(value).ok()?;
            return name.split(':').next();
        }
        at += 4 + len.div_ceil(4) * 4;
    }
    None
}

/// One socket's receive loop: route each datagram to its viewer.
async fn receive(shared: std::sync::Weak<Shared>, socket: Arc<UdpSocket>) {
    let mut buf = vec![0u8; 2048];
    let Ok(local) = socket.local_addr() else { return };
    loop {
        let Ok((n, source)) = socket.recv_from(&mut buf).await else {
            tokio::time::sleep(Duration::from_millis(10)).await;
            continue;
        };
        let Some(shared) = shared.upgrade() else { return };
        let data = &buf[..n];
        let target = {
            let mut routes = shared.routes();
            let by_name = stun_local_ufrag(data).and_then(|u| routes.by_ufrag.get(u).cloned());
            let id = match by_name {
                Some(id) => {
                    routes.by_source.insert(source, id.clone());
                    Some(id)
                }
                None => routes.by_source.get(&source).cloned(),
            };
            id.and_then(|id| routes.sessions.get(&id).map(|h| h.packets.clone()))
        };
        if let Some(tx) = target {
            // A full queue drops the datagram (the viewer is not keeping up; RTCP and STUN
            // are retried by the browser).
            let _ = tx.try_send(Packet {
                at: Instant::now(),
                source,
                destination: local,
                data: data.to_vec(),
            });
        }
    }
}

/// The next unit of the subscription, with the tap's info when the unit starts a generation
/// other than `generation`; pending forever while there is no subscription (not connected
/// yet).
async fn recv(
    sub: &mut Option<Subscription>,
    generation: u64,
) -> Option<(crate::tap::AccessUnit, Option<TapInfo>)> {
    match sub {
        Some(sub) => {
            let unit = sub.recv().await?;
            let info = (unit.generation() != generation).then(|| sub.info().clone());
            Some((unit, info))
        }
        None => std::future::pending().await,
    }
}

/// One viewer: its peer connection and its place in the tap.
struct Viewer {
    id: SessionId,
    tap: StreamTap,
    shared: Arc<Shared>,
    rtc: Rtc,
    mid: Mid,
    pt: Pt,
    avc: AvcConfig,
    info: TapInfo,
    started: Instant,
    connected: Option<Instant>,
    /// Why the session is ending, once the peer connection said so.
    end: Option<EndReason>,
    frames: u64,
    bytes: u64,
    /// The RTP timeline, continuous across the tap's generations.
    timeline: crate::tap::Timeline,
}

impl Viewer {
    async fn run(
        mut self,
        mut commands: mpsc::UnboundedReceiver<Command>,
        mut packets: mpsc::Receiver<Packet>,
    ) {
        let reason = self.serve(&mut None, &mut commands, &mut packets).await;
        if reason != EndReason::PeerClosed && self.rtc.is_alive() {
            let _ = self.rtc.close();
            let _ = self.drain();
        }
        self.shared.forget(&self.id);
        tracing::debug!(session = %self.id, reason = reason.as_str(), frames = self.frames, "live session ended");
        let _ = self.shared.ended.send(Ended {
            id: self.id.clone(),
            reason,
            duration: self.started.elapsed(),
            frames: self.frames,
            bytes: self.bytes,
        });
    }

    async fn serve(
        &mut self,
        sub: &mut Option<Subscription>,
        commands: &mut mpsc::UnboundedReceiver<Command>,
        packets: &mut mpsc::Receiver<Packet>,
    ) -> EndReason {
        let mut next = Instant::now();
        // Units before this instant belong to the group of pictures the viewer starts with.
        let mut live_from = Instant::now();
        loop {
            if self.connected.is_none()
                && self.started.elapsed() > self.shared.config.connect_timeout
            {
                return EndReason::NeverConnected;
            }
            let sleep = next.saturating_duration_since(Instant::now()).min(MAX_SLEEP);
            let step = tokio::select! {
                p = packets.recv() => match p {
                    Some(p) => self.input(p),
                    None => return EndReason::Closed,
                },
                c = commands.recv() => match c {
                    Some(Command::Candidates(cs)) => {
                        for c in cs {
                            self.rtc.add_remote_candidate(c);
                        }
                        Ok(())
                    }
                    Some(Command::Close) | None => return EndReason::Closed,
                },
                u = recv(sub, self.info.generation) => match u {
                    Some((unit, info)) => {
                        if let Some(info) = info
                            && let Err(reason) = self.follow(info)
                        {
                            return reason;
                        }
                        if unit.track() == Track::Video {
                            let behind = unit.received_at() >= live_from
                                && unit.received_at().elapsed() > self.shared.config.max_frame_age;
                            if behind && !unit.is_key_frame() {
                                if let Some(sub) = sub.as_mut() {
                                    sub.resync();
                                }
                                Ok(())
                            } else {
                                self.write(&unit)
                            }
                        } else {
                            Ok(())
                        }
                    }
                    None => return EndReason::CameraGone,
                },
                () = tokio::time::sleep(sleep) => {
                    self.rtc.handle_input(Input::Timeout(Instant::now())).map_err(|e| e.to_string())
                }
            };
            if let Err(e) = step {
                return EndReason::Failed(e);
            }
            match self.drain() {
                Ok(at) => next = at,
                Err(e) => return EndReason::Failed(e),
            }
            if let Some(end) = self.end.take() {
                return end;
            }
            if sub.is_none() && self.connected.is_some() {
                // Start from the tap's current group of pictures (at a key frame).
                *sub = Some(self.tap.subscribe());
                live_from = Instant::now();
            }
        }
    }

    fn input(&mut self, p: Packet) -> Result<(), String> {
        // The datagram may have arrived for an advertised (NAT) address of this socket.
        let dests = std::iter::once(p.destination).chain(
            self.shared
                .candidates
                .iter()
                .map(|c| c.0)
                .filter(|a| a.port() == p.destination.port() && *a != p.destination),
        );
        for destination in dests {
            let Ok(r) = Receive::new(Protocol::Udp, p.source, destination, &p.data) else {
                return Ok(());
            };
            let input = Input::Receive(p.at, r);
            if self.rtc.accepts(&input) {
                return self.rtc.handle_input(input).map_err(|e| e.to_string());
            }
        }
        Ok(())
    }

    /// Send what the peer connection has to send; the next timeout. An end the peer
    /// connection reports is kept in `self.end` (a drain after a write must not lose it).
    fn drain(&mut self) -> Result<Instant, String> {
        loop {
            match self.rtc.poll_output().map_err(|e| e.to_string())? {
                Output::Timeout(t) => return Ok(t),
                Output::Transmit(t) => {
                    if let Some(socket) = self.shared.socket_for(t.source) {
                        self.bytes += t.contents.len() as u64;
                        // Never waits: a full buffer drops the packet (NACK asks again).
                        let _ = socket.try_send_to(&t.contents, t.destination);
                    }
                }
                Output::Event(e) => match e {
                    Event::Connected => {
                        self.connected = Some(Instant::now());
                        tracing::debug!(session = %self.id, after_ms = self.started.elapsed().as_millis() as u64, "live session connected");
                    }
                    Event::IceConnectionStateChange(IceConnectionState::Disconnected) => {
                        self.end.get_or_insert(EndReason::ConsentLost);
                    }
                    Event::Closed => {
                        self.end.get_or_insert(EndReason::PeerClosed);
                    }
                    _ => {}
                },
            }
        }
    }

    /// The tap moved to a new generation: carry on if this session can send it.
    fn follow(&mut self, info: TapInfo) -> Result<(), EndReason> {
        let Some(video) = info.video.as_ref().filter(|v| v.codec == VideoCodec::H264) else {
            return Err(EndReason::StreamChanged);
        };
        let Some(avc) = AvcConfig::parse(&video.codec_data) else {
            return Err(EndReason::StreamChanged);
        };
        if avc.answer_profile_level_id() >> 8 != self.avc.answer_profile_level_id() >> 8 {
            return Err(EndReason::StreamChanged);
        }
        self.avc = avc;
        self.info = info;
        Ok(())
    }

    fn write(&mut self, unit: &crate::tap::AccessUnit) -> Result<(), String> {
        let Some(at) = self.timeline.place(unit) else { return Ok(()) };
        // RTP time stamps are presentation times (the same as decoding times: no B-frames).
        let out = (at.as_nanos() * 9 / 100_000) as u64;
        let data = h264::to_annex_b(unit.data(), &self.avc, unit.is_key_frame());
        let Some(writer) = self.rtc.writer(self.mid) else { return Ok(()) };
        writer
            .write(self.pt, unit.received_at(), MediaTime::from_90khz(out), data)
            .map_err(|e| e.to_string())?;
        self.frames += 1;
        // The frame's packets leave in the drain that follows; measure after it.
        self.drain()?;
        if !self.shared.config.record_latency {
            return Ok(());
        }
        let micros = u32::try_from(unit.received_at().elapsed().as_micros()).unwrap_or(u32::MAX);
        let mut lat = self.shared.latency.lock().unwrap_or_else(|p| p.into_inner());
        if lat.micros.len() < LatencySamples::CAP {
            lat.micros.push(micros);
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]
    use super::*;

    #[test]
    fn the_stun_user_name_routes_a_binding_request() {
        // A binding request with USERNAME "abcd:wxyz" (padded to 4 bytes).
        let mut m = vec![0x00, 0x01, 0x00, 0x0c, 0x21, 0x12, 0xa4, 0x42];
        m.extend_from_slice(&[0; 12]);
        m.extend_from_slice(&[0x00, 0x06, 0x00, 0x09]);
        m.extend_from_slice(b"abcd:wxyz\0\0\0");
        assert_eq!(stun_local_ufrag(&m), Some("abcd"));
        assert_eq!(stun_local_ufrag(&m[..10]), None);
        assert_eq!(stun_local_ufrag(&[0x80; 40]), None, "RTP is not STUN");
    }

    #[test]
    fn session_ids_are_unguessable_hex() {
        let a = SessionId::random();
        assert_eq!(a.as_str().len(), 32);
        assert_ne!(a, SessionId::random());
        assert_eq!(a.as_str().parse::<SessionId>().unwrap(), a);
        assert!("../etc".parse::<SessionId>().is_err());
    }

    /// A browser-like offer (receive-only video, str0m's default codecs: H.264 baseline,
    /// constrained baseline, main and high).
    fn offer() -> String {
        let mut rtc = RtcConfig::new().build(Instant::now());
        let mut api = rtc.sdp_api();
        api.add_media(
            str0m::media::MediaKind::Video,
            str0m::media::Direction::RecvOnly,
            None,
            None,
            None,
        );
        api.apply().unwrap().0.to_sdp_string()
    }

    fn tap(codec: VideoCodec, reorder: bool) -> StreamTap {
        use crate::tap::{AccessUnit, Bytes, VideoParams};
        let tap = StreamTap::new();
        tap.begin_stream();
        let sps = [0x67, 0x42, 0xe0, 0x1f, 0xda];
        let pps = [0x68, 0xce, 0x3c, 0x80];
        let mut avcc = vec![1, 0x42, 0xe0, 0x1f, 0xff, 0xe1, 0, sps.len() as u8];
        avcc.extend_from_slice(&sps);
        avcc.extend_from_slice(&[1, 0, pps.len() as u8]);
        avcc.extend_from_slice(&pps);
        tap.set_video(VideoParams {
            codec,
            codec_data: Bytes::from(avcc),
            width: 640,
            height: 360,
            framerate: Some((30, 1)),
        });
        let ms = |n: u64| Some(Duration::from_millis(n));
        let unit = |data: &'static [u8], pts, dts, key| {
            AccessUnit::new(Track::Video, Bytes::from_static(data), pts, dts, None, key)
        };
        tap.publish(unit(&[0, 0, 0, 2, 0x65, 0x88], ms(0), ms(0), true));
        // A B-frame stream shows a presentation time ahead of the decoding time.
        let pts = if reorder { ms(100) } else { ms(33) };
        tap.publish(unit(&[0, 0, 0, 2, 0x41, 0x9a], pts, ms(33), false));
        tap
    }

    #[tokio::test]
    async fn an_offer_is_answered_with_loopback_candidates_or_refused_clearly() {
        let config = LiveConfig {
            udp_port: 0,
            addresses: vec!["127.0.0.1".parse().unwrap()],
            max_viewers: 2,
            ..LiveConfig::default()
        };
        let (server, _ended) = WebRtcServer::bind(config).await.unwrap();

        let opened = server.open(&tap(VideoCodec::H264, false), &offer()).unwrap();
        let candidates: Vec<&str> =
            opened.answer.lines().filter(|l| l.starts_with("a=candidate")).collect();
        assert_eq!(candidates.len(), 1, "{}", opened.answer);
        assert!(candidates[0].contains(" 127.0.0.1 "), "{}", candidates[0]);
        assert!(opened.answer.contains("H264/90000"), "{}", opened.answer);
        assert!(opened.answer.contains("profile-level-id=42e01f"), "{}", opened.answer);
        assert!(server.is_open(&opened.id));

        let err = server.open(&tap(VideoCodec::H264, true), &offer()).unwrap_err();
        assert!(
            matches!(err, LiveError::Unsupported(_)) && err.to_string().contains("B-frames"),
            "{err}"
        );
        let err = server.open(&tap(VideoCodec::H265, false), &offer()).unwrap_err();
        assert!(err.to_string().contains("H265"), "{err}");
        let idle = StreamTap::new();
        assert!(matches!(server.open(&idle, &offer()), Err(LiveError::NotStreaming)));
        assert!(matches!(
            server.open(&tap(VideoCodec::H264, false), "v=0"),
            Err(LiveError::MalformedOffer(_))
        ));

        server.open(&tap(VideoCodec::H264, false), &offer()).unwrap();
        let err = server.open(&tap(VideoCodec::H264, false), &offer()).unwrap_err();
        assert!(matches!(err, LiveError::TooManyViewers { max: 2 }), "{err}");
        assert!(server.close(&opened.id));
        tokio::time::sleep(Duration::from_millis(200)).await;
        assert!(!server.is_open(&opened.id));
        assert!(!server.close(&opened.id), "a closed session is gone");
    }

    #[test]
    fn host_addresses_follow_the_listen_address() {
        let lo: IpAddr = "127.0.0.1".parse().unwrap();
        assert_eq!(LiveConfig::host_addresses(lo), vec![lo]);
        let any: IpAddr = "0.0.0.0".parse().unwrap();
        assert!(
            LiveConfig::host_addresses(any)
                .iter()
                .all(|ip| !ip.is_loopback() && !ip.is_unspecified())
        );
    }
}
