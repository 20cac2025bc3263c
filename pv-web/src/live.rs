//! Live view: WHEP sessions over [`pv_media::live::WebRtcServer`] and the MSE fallback over a
//! WebSocket, both reading the camera's tap from the recording service (never a second
//! connection to the camera).
//!
//! [`Live`] owns the WebRTC server (bound on first use, so a server nobody watches holds no
//! UDP port), the sessions with who opened them for which camera, and the audit trail: every
//! session start and end is an audit event (`live.start`, `live.end` with its reason and
//! duration) — who watched what, when.
//!
//! Where a viewer's stream comes from ([`Live::source`]): the main stream of a camera that
//! records now is its recorder's tap (one RTSP connection however many viewers). A camera
//! that does not record now, and every sub stream (dashboard tiles), gets a live-only pull
//! ([`pv_media::live::pull::LivePull`]) started by the first viewer and shared by all; each
//! viewer holds a [`Lease`], and a pull without leases stops [`PULL_LINGER`] after the last
//! one went (a viewer who reloads the page finds it still running).

use std::collections::HashMap;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use pv_media::live::pull::{LivePull, PullConfig};
use pv_media::live::{Ended, LiveConfig, LiveError, Opened, SessionId, WebRtcServer};
use pv_media::tap::StreamTap;
use tokio::sync::OnceCell;

/// How long a live-only pull outlives its last viewer.
pub const PULL_LINGER: Duration = Duration::from_secs(10);
/// How long a new viewer waits for the camera's stream.
pub const READY_WAIT: Duration = Duration::from_secs(10);

/// Which of a camera's streams.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Stream {
    /// The main (full-resolution) stream.
    Main,
    /// The sub stream (small, for tiles); the main stream when the camera has none.
    Sub,
}

/// How long an HLS segmenter runs after its playlist was last asked for.
pub const HLS_IDLE: Duration = Duration::from_secs(30);

struct HlsEntry {
    segmenter: pv_media::hls::Segmenter,
    _lease: Option<Lease>,
    used: std::time::Instant,
}

struct PullEntry {
    pull: LivePull,
    leases: usize,
    idle_since: Option<std::time::Instant>,
}

/// A viewer's hold on a live-only pull; the pull may stop once no lease is left.
pub struct Lease {
    inner: std::sync::Weak<Inner>,
    key: (i64, Stream),
}

impl std::fmt::Debug for Lease {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Lease").field("key", &self.key).finish()
    }
}

impl Drop for Lease {
    fn drop(&mut self) {
        if let Some(inner) = self.inner.upgrade()
            && let Some(entry) = lock(&inner.pulls).get_mut(&self.key)
        {
            entry.leases = entry.leases.saturating_sub(1);
            if entry.leases == 0 {
                entry.idle_since = Some(std::time::Instant::now());
            }
        }
    }
}

/// Who opened a session, for which camera.
#[derive(Debug, Clone)]
pub struct SessionOwner {
    /// The camera.
    pub camera: i64,
    /// The user's id.
    pub user_id: i64,
    /// The user's name (for the audit event).
    pub username: String,
    /// Client address.
    pub ip: Option<String>,
}

impl SessionOwner {
    /// `who` watching camera `camera`.
    pub fn of(who: &crate::auth::Principal, camera: i64) -> SessionOwner {
        SessionOwner {
            camera,
            user_id: who.user.id,
            username: who.user.username.clone(),
            ip: who.ip.map(|ip| ip.to_string()),
        }
    }
}

/// The live-view service. Cheap to clone.
#[derive(Clone)]
pub struct Live {
    inner: Arc<Inner>,
}

struct Inner {
    config: pv_core::config::LiveConfig,
    listen: std::net::IpAddr,
    server: OnceCell<WebRtcServer>,
    sessions: Mutex<HashMap<SessionId, (SessionOwner, Option<Lease>)>>,
    pulls: Mutex<HashMap<(i64, Stream), PullEntry>>,
    hls: Mutex<HashMap<(i64, Stream), HlsEntry>>,
    /// When each (user, camera) last asked for an HLS playlist (its start is audited once).
    hls_viewers: Mutex<HashMap<(i64, i64), std::time::Instant>>,
    reaper: std::sync::Once,
    audit: Arc<pv_security::audit::AuditLog>,
    clock: Arc<dyn pv_core::Clock>,
    mse_viewers: std::sync::atomic::AtomicUsize,
}

impl std::fmt::Debug for Live {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Live").field("config", &self.inner.config).finish_non_exhaustive()
    }
}

fn lock<T>(m: &Mutex<T>) -> std::sync::MutexGuard<'_, T> {
    m.lock().unwrap_or_else(|p| p.into_inner())
}

impl Live {
    /// A service for a server whose HTTP side listens on `listen`.
    pub fn new(
        config: pv_core::config::LiveConfig,
        listen: std::net::IpAddr,
        audit: Arc<pv_security::audit::AuditLog>,
        clock: Arc<dyn pv_core::Clock>,
    ) -> Live {
        Live {
            inner: Arc::new(Inner {
                config,
                listen,
                server: OnceCell::new(),
                sessions: Mutex::new(HashMap::new()),
                pulls: Mutex::new(HashMap::new()),
                hls: Mutex::new(HashMap::new()),
                hls_viewers: Mutex::new(HashMap::new()),
                reaper: std::sync::Once::new(),
                audit,
                clock,
                mse_viewers: Default::default(),
            }),
        }
    }

    /// The configuration.
    pub fn config(&self) -> &pv_core::config::LiveConfig {
        &self.inner.config
    }

    /// The WebRTC server, bound on first use (a failure, say a busy port, is tried again by
    /// the next viewer).
    pub async fn webrtc(&self) -> Result<&WebRtcServer, LiveError> {
        let inner = self.inner.clone();
        self.inner
            .server
            .get_or_try_init(|| async move {
                let config = LiveConfig {
                    udp_port: inner.config.udp_port,
                    addresses: LiveConfig::host_addresses(inner.listen),
                    advertise: inner.config.advertise_addresses.clone(),
                    max_viewers: inner.config.max_viewers,
                    ..LiveConfig::default()
                };
                match WebRtcServer::bind(config).await {
                    Ok((server, ended)) => {
                        tokio::spawn(audit_ends(Arc::downgrade(&inner), ended));
                        Ok(server)
                    }
                    Err(e) => {
                        tracing::error!(error = %e, "WebRTC live view cannot start");
                        Err(e)
                    }
                }
            })
            .await
    }

    /// The tap a viewer of `camera`'s `stream` reads: the recorder's (`recorder_tap`, when
    /// the camera records now and the main stream is asked for), else a live-only pull of
    /// Viewers now: WebRTC sessions per camera, and (all cameras together) Media Source
    /// viewers and HLS viewers (a user and camera whose playlist was asked for lately).
    pub fn viewer_counts(&self) -> (HashMap<i64, usize>, usize, usize) {
        let mut webrtc = HashMap::new();
        for (owner, _) in lock(&self.inner.sessions).values() {
            *webrtc.entry(owner.camera).or_insert(0) += 1;
        }
        let mse = self.inner.mse_viewers.load(std::sync::atomic::Ordering::Relaxed);
        let hls = lock(&self.inner.hls_viewers).values().filter(|t| t.elapsed() < HLS_IDLE).count();
        (webrtc, mse, hls)
    }

    /// `pull` shared by every viewer, with the viewer's lease on it.
    pub fn source(
        &self,
        camera: i64,
        stream: Stream,
        recorder_tap: Option<StreamTap>,
        pull: impl FnOnce() -> Result<PullConfig, String>,
    ) -> Result<(StreamTap, Option<Lease>), LiveError> {
        if stream == Stream::Main
            && let Some(tap) = recorder_tap
        {
            return Ok((tap, None));
        }
        self.start_reaper();
        let key = (camera, stream);
        let mut pulls = lock(&self.inner.pulls);
        let entry = match pulls.entry(key) {
            std::collections::hash_map::Entry::Occupied(e) => e.into_mut(),
            std::collections::hash_map::Entry::Vacant(v) => {
                let config = pull().map_err(LiveError::Unsupported)?;
                let pull = LivePull::start(config, StreamTap::new())
                    .map_err(|e| LiveError::Internal(e.to_string()))?;
                tracing::info!(camera, ?stream, "live-only pull started");
                v.insert(PullEntry { pull, leases: 0, idle_since: None })
            }
        };
        entry.leases += 1;
        entry.idle_since = None;
        let lease = Lease { inner: Arc::downgrade(&self.inner), key };
        Ok((entry.pull.tap().clone(), Some(lease)))
    }

    /// The running HLS segmenter of a camera's stream, if any (marked as used).
    pub fn running_hls(&self, camera: i64, stream: Stream) -> Option<pv_media::hls::Segmenter> {
        let mut hls = lock(&self.inner.hls);
        let e = hls.get_mut(&(camera, stream))?;
        e.used = std::time::Instant::now();
        Some(e.segmenter.clone())
    }

    /// The HLS segmenter of a camera's stream, started on first use from `source` (the
    /// viewer's tap and lease), and kept while its playlist is asked for.
    pub fn hls(
        &self,
        camera: i64,
        stream: Stream,
        source: impl FnOnce() -> Result<(StreamTap, Option<Lease>), LiveError>,
    ) -> Result<pv_media::hls::Segmenter, LiveError> {
        self.start_reaper();
        let mut hls = lock(&self.inner.hls);
        if let Some(e) = hls.get_mut(&(camera, stream)) {
            e.used = std::time::Instant::now();
            return Ok(e.segmenter.clone());
        }
        let (tap, lease) = source()?;
        let segmenter = pv_media::hls::Segmenter::start(&tap);
        hls.insert(
            (camera, stream),
            HlsEntry {
                segmenter: segmenter.clone(),
                _lease: lease,
                used: std::time::Instant::now(),
            },
        );
        Ok(segmenter)
    }

    /// Whether this is `user`'s first HLS request for `camera` in a while (its start is
    /// audited then).
    pub fn hls_viewer_is_new(&self, user: i64, camera: i64) -> bool {
        lock(&self.inner.hls_viewers).insert((user, camera), std::time::Instant::now()).is_none()
    }

    /// Live-only pulls running now.
    pub fn pulls(&self) -> usize {
        lock(&self.inner.pulls).len()
    }

    fn start_reaper(&self) {
        let weak = Arc::downgrade(&self.inner);
        self.inner.reaper.call_once(|| {
            tokio::spawn(async move {
                loop {
                    tokio::time::sleep(Duration::from_secs(1)).await;
                    let Some(inner) = weak.upgrade() else { return };
                    lock(&inner.hls).retain(|_, e| {
                        let keep = e.used.elapsed() < HLS_IDLE;
                        if !keep {
                            e.segmenter.stop();
                        }
                        keep
                    });
                    lock(&inner.hls_viewers).retain(|_, t| t.elapsed() < HLS_IDLE * 2);
                    let mut pulls = lock(&inner.pulls);
                    let before = pulls.len();
                    // Dropping a pull stops it (its thread ends by itself).
                    pulls.retain(|_, e| e.idle_since.is_none_or(|t| t.elapsed() < PULL_LINGER));
                    if pulls.len() != before {
                        tracing::info!(
                            stopped = before - pulls.len(),
                            "live-only pulls without viewers stopped"
                        );
                    }
                }
            });
        });
    }

    /// Open a WHEP session for `owner` on `tap`, answering `offer`; audited. The lease (if
    /// any) is held until the session ends.
    pub async fn open(
        &self,
        tap: &StreamTap,
        lease: Option<Lease>,
        offer: &str,
        owner: SessionOwner,
    ) -> Result<Opened, LiveError> {
        let server = self.webrtc().await?;
        if !tap.wait_ready(READY_WAIT).await {
            return Err(LiveError::NotStreaming);
        }
        let opened = server.open(tap, offer)?;
        self.audit(&owner, "live.start", &opened.id, serde_json::json!({ "protocol": "webrtc" }))
            .await;
        lock(&self.inner.sessions).insert(opened.id.clone(), (owner, lease));
        Ok(opened)
    }

    /// The owner of a session, if it is open.
    pub fn owner(&self, id: &SessionId) -> Option<SessionOwner> {
        lock(&self.inner.sessions).get(id).map(|(o, _)| o.clone())
    }

    /// Trickled candidates for a session.
    pub async fn add_candidates(&self, id: &SessionId, fragment: &str) -> Result<(), LiveError> {
        self.webrtc().await?.add_candidates(id, fragment)
    }

    /// End a session (its end is audited when it is over).
    pub async fn close(&self, id: &SessionId) -> bool {
        self.inner.server.get().is_some_and(|server| server.close(id))
    }

    /// End every session of a camera (it was deleted).
    pub async fn close_camera(&self, camera: i64) {
        let ids: Vec<SessionId> = lock(&self.inner.sessions)
            .iter()
            .filter(|(_, (o, _))| o.camera == camera)
            .map(|(id, _)| id.clone())
            .collect();
        for id in ids {
            self.close(&id).await;
        }
    }

    /// Count an MSE viewer in; None when the server has its maximum of them. The returned
    /// guard counts it out when dropped.
    pub fn mse_viewer(&self) -> Option<MseViewer> {
        use std::sync::atomic::Ordering;
        let max = self.inner.config.max_viewers;
        let n = self.inner.mse_viewers.fetch_add(1, Ordering::SeqCst);
        if n >= max {
            self.inner.mse_viewers.fetch_sub(1, Ordering::SeqCst);
            return None;
        }
        Some(MseViewer { live: self.clone() })
    }

    /// Write an audit event about a session.
    pub async fn audit(
        &self,
        owner: &SessionOwner,
        action: &str,
        id: &SessionId,
        details: serde_json::Value,
    ) {
        audit_event(&self.inner, owner, action, id.as_str(), details).await;
    }
}

/// An MSE viewer counted against `[live] max_viewers` while it lives.
#[derive(Debug)]
pub struct MseViewer {
    live: Live,
}

impl Drop for MseViewer {
    fn drop(&mut self) {
        self.live.inner.mse_viewers.fetch_sub(1, std::sync::atomic::Ordering::SeqCst);
    }
}

async fn audit_event(
    inner: &Inner,
    owner: &SessionOwner,
    action: &str,
    session: &str,
    details: serde_json::Value,
) {
    let mut details = details;
    if let Some(map) = details.as_object_mut() {
        map.insert("session".into(), session.into());
    }
    let mut event = pv_security::audit::Event::new(
        &owner.username,
        action,
        "camera",
        &owner.camera.to_string(),
    )
    .details(details);
    event.actor_user_id = Some(owner.user_id);
    event.ip = owner.ip.clone();
    if let Err(e) = inner.audit.append(event, inner.clock.now()).await {
        tracing::error!(error = %e, action, "cannot write audit event");
    }
}

/// Audit every session's end.
async fn audit_ends(
    inner: std::sync::Weak<Inner>,
    mut ended: tokio::sync::mpsc::UnboundedReceiver<Ended>,
) {
    while let Some(end) = ended.recv().await {
        let Some(inner) = inner.upgrade() else { return };
        let owner = lock(&inner.sessions).remove(&end.id);
        if let Some((owner, _lease)) = owner {
            let details = serde_json::json!({
                "protocol": "webrtc",
                "reason": end.reason.as_str(),
                "seconds": round_secs(end.duration),
                "frames": end.frames,
                "bytes": end.bytes,
            });
            audit_event(&inner, &owner, "live.end", end.id.as_str(), details).await;
        }
    }
}

/// What a live-only pull of `cam`'s `stream` connects to (the password unsealed with `key`).
pub fn pull_config(
    key: &pv_security::seal::ServerKey,
    cam: &pv_core::db::records::camera::Model,
    stream: Stream,
) -> Result<PullConfig, String> {
    let url = match stream {
        Stream::Sub => cam.sub_url.clone().unwrap_or_else(|| cam.main_url.clone()),
        Stream::Main => cam.main_url.clone(),
    };
    let password = match &cam.password {
        Some(sealed) => Some(key.open(sealed).map_err(|_| {
            "the stored stream password cannot be decrypted with this server's key; set it again"
                .to_owned()
        })?),
        None => None,
    };
    Ok(PullConfig {
        url,
        username: cam.username.clone(),
        password,
        transport: if cam.transport == "udp" {
            pv_media::record::Transport::Udp
        } else {
            pv_media::record::Transport::Tcp
        },
        audio: true,
    })
}

fn round_secs(d: Duration) -> f64 {
    (d.as_secs_f64() * 10.0).round() / 10.0
}

/// The tap (and lease) for a viewer of `cam`'s `stream`: the recorder's tap when the camera
/// records now and the main stream is asked for, else a shared live-only pull.
pub async fn viewer_source(
    state: &crate::state::AppState,
    cam: &pv_core::db::records::camera::Model,
    stream: Stream,
) -> Result<(StreamTap, Option<Lease>), LiveError> {
    let stream = if stream == Stream::Sub && cam.sub_url.is_none() { Stream::Main } else { stream };
    // The ffmpeg fallback recorder does not feed the tap: such cameras get a pull too.
    let recording = state
        .nvr()
        .status(pv_core::ids::CameraId(cam.id))
        .await
        .and_then(|s| pv_media::record::Backend::parse(&s.backend))
        .is_some_and(pv_media::record::Backend::feeds_tap);
    let recorder_tap = recording.then(|| state.nvr().tap(pv_core::ids::CameraId(cam.id)));
    let key = state.key().clone();
    state.live().source(cam.id, stream, recorder_tap, || pull_config(&key, cam, stream))
}
