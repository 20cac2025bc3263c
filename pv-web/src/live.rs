//! Live view: WHEP sessions over [`pv_media::live::WebRtcServer`] and the MSE fallback over a
//! WebSocket, both reading the camera's tap from the recording service (never a second
//! connection to the camera).
//!
//! [`Live`] owns the WebRTC server (bound on first use, so a server nobody watches holds no
//! UDP port), the sessions with who opened them for which camera, and the audit trail: every
//! session start and end is an audit event (`live.start`, `live.end` with its reason and
//! duration) — who watched what, when.

use std::collections::HashMap;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use pv_media::live::{Ended, LiveConfig, LiveError, Opened, SessionId, WebRtcServer};
use pv_media::tap::StreamTap;
use tokio::sync::OnceCell;

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

/// The live-view service. Cheap to clone.
#[derive(Clone)]
pub struct Live {
    inner: Arc<Inner>,
}

struct Inner {
    config: pv_core::config::LiveConfig,
    listen: std::net::IpAddr,
    server: OnceCell<Result<WebRtcServer, String>>,
    sessions: Mutex<HashMap<SessionId, SessionOwner>>,
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

    /// The WebRTC server, bound on first use.
    pub async fn webrtc(&self) -> Result<&WebRtcServer, LiveError> {
        let inner = self.inner.clone();
        let result = self
            .inner
            .server
            .get_or_init(|| async move {
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
                        Err(e.to_string())
                    }
                }
            })
            .await;
        result.as_ref().map_err(|e| LiveError::Internal(e.clone()))
    }

    /// Open a WHEP session for `owner` on `tap`, answering `offer`; audited.
    pub async fn open(
        &self,
        tap: &StreamTap,
        offer: &str,
        owner: SessionOwner,
    ) -> Result<Opened, LiveError> {
        let server = self.webrtc().await?;
        let opened = server.open(tap, offer)?;
        self.audit(&owner, "live.start", &opened.id, serde_json::json!({ "protocol": "webrtc" }))
            .await;
        lock(&self.inner.sessions).insert(opened.id.clone(), owner);
        Ok(opened)
    }

    /// The owner of a session, if it is open.
    pub fn owner(&self, id: &SessionId) -> Option<SessionOwner> {
        lock(&self.inner.sessions).get(id).cloned()
    }

    /// Trickled candidates for a session.
    pub async fn add_candidates(&self, id: &SessionId, fragment: &str) -> Result<(), LiveError> {
        self.webrtc().await?.add_candidates(id, fragment)
    }

    /// End a session (its end is audited when it is over).
    pub async fn close(&self, id: &SessionId) -> bool {
        match self.inner.server.get() {
            Some(Ok(server)) => server.close(id),
            _ => false,
        }
    }

    /// End every session of a camera (it was deleted).
    pub async fn close_camera(&self, camera: i64) {
        let ids: Vec<SessionId> = lock(&self.inner.sessions)
            .iter()
            .filter(|(_, o)| o.camera == camera)
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
        if let Some(owner) = owner {
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

fn round_secs(d: Duration) -> f64 {
    (d.as_secs_f64() * 10.0).round() / 10.0
}
