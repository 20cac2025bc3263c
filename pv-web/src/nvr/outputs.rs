//! Outputs: where a camera's live stream goes besides its recording. Today RTMP pushes; live
//! viewers (WHEP, MSE) read the same tap and come here next, then uploads.
//!
//! Owns `pushes` (one [`RtmpPush`] per camera; a tokio mutex held only to look up, insert or
//! take out a push, never across a push's start or stop).
//!
//! Invariants:
//! - At most one push per camera; a new target replaces the old push (stopped first).
//! - A push reads the camera's tap (the recorder's stream in memory, never a second camera
//!   connection, never a transcode), so it follows a restarted recorder by itself.
//! - Only the redacted target is shown; the plain URL stays inside the push (the stored
//!   target is sealed by the caller).

use std::collections::HashMap;

use pv_core::ids::CameraId;
use pv_media::rtmp::{PushStatus, RtmpConfig, RtmpPush};
use pv_media::tap::StreamTap;

use super::NvrError;

/// The running pushes (see the module documentation).
#[derive(Default)]
pub(super) struct Outputs {
    pushes: tokio::sync::Mutex<HashMap<CameraId, RtmpPush>>,
}

impl Outputs {
    /// Push `tap` to `url`, replacing the camera's earlier push.
    pub(super) async fn start(
        &self,
        camera: CameraId,
        tap: StreamTap,
        url: &str,
    ) -> Result<(), NvrError> {
        self.stop(camera).await;
        let push = RtmpPush::start(tap, RtmpConfig::new(url.to_owned()))
            .map_err(|e| NvrError::Media { kind: e.kind(), message: e.to_string() })?;
        let raced = self.pushes.lock().await.insert(camera, push);
        // Two starts at once: the later one wins, the other is stopped.
        if let Some(old) = raced {
            old.stop().await;
        }
        Ok(())
    }

    /// Stop the camera's push; returns whether one ran.
    pub(super) async fn stop(&self, camera: CameraId) -> bool {
        let old = self.pushes.lock().await.remove(&camera);
        match old {
            Some(push) => {
                push.stop().await;
                true
            }
            None => false,
        }
    }

    /// The camera's push: its redacted target and status.
    pub(super) async fn status(&self, camera: CameraId) -> Option<(String, PushStatus)> {
        let pushes = self.pushes.lock().await;
        pushes.get(&camera).map(|p| (p.target().to_owned(), p.status().borrow().clone()))
    }

    /// Stop every push at once and wait for them.
    pub(super) async fn stop_all(&self) {
        let all: Vec<RtmpPush> = self.pushes.lock().await.drain().map(|(_, p)| p).collect();
        futures_util::future::join_all(all.into_iter().map(RtmpPush::stop)).await;
    }
}
