//! The MAC address audit: which device answers at each camera's address.
//!
//! Owns `checked` (when each camera's address was last read; a std mutex held only to read or
//! write the map, never across the lookup).
//!
//! Invariants:
//! - A camera's MAC address is read from the kernel neighbour table on create, on edit and at
//!   least every 12 hours; the lookup runs off the async runtime.
//! - A first sighting is stored quietly (it moves the ingest directory to the MAC address); a
//!   change of a known address is stored with a `camera_mac_changes` row and is an alert: an
//!   audit event `camera.mac_changed` and a warning in the log. An unchanged address writes
//!   nothing.

use std::collections::HashMap;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use pv_core::Clock;
use pv_core::cameras::{self, MacOutcome};
use pv_core::db::Databases;
use pv_core::db::records::camera;
use pv_core::ids::CameraId;

use super::lock;

/// How often every camera's MAC address is re-read (twice a day).
const MAC_AUDIT_EVERY: Duration = Duration::from_secs(12 * 3600);

/// The audit and its memory of when each camera was checked.
pub(super) struct MacAudit {
    dbs: Databases,
    clock: Arc<dyn Clock>,
    audit: Arc<pv_security::audit::AuditLog>,
    /// When each camera's MAC address was last checked.
    checked: Mutex<HashMap<CameraId, Instant>>,
}

impl MacAudit {
    pub(super) fn new(
        dbs: Databases,
        clock: Arc<dyn Clock>,
        audit: Arc<pv_security::audit::AuditLog>,
    ) -> Self {
        Self { dbs, clock, audit, checked: Default::default() }
    }

    /// Check every camera whose last check is older than 12 hours; returns whether an address
    /// was learned or changed (those cameras' ingest directories moved: re-read their rows).
    pub(super) async fn audit_due(&self, cams: &[camera::Model]) -> bool {
        let mut moved = false;
        for cam in cams {
            let due = lock(&self.checked)
                .get(&CameraId(cam.id))
                .is_none_or(|t| t.elapsed() >= MAC_AUDIT_EVERY);
            if due {
                moved |= matches!(
                    self.check(cam).await,
                    MacOutcome::Learned(_) | MacOutcome::Changed { .. }
                );
            }
        }
        moved
    }

    /// Read the camera's MAC address from the kernel neighbour table and store it.
    pub(super) async fn check(&self, cam: &camera::Model) -> MacOutcome {
        lock(&self.checked).insert(CameraId(cam.id), Instant::now());
        let url = cam.main_url.clone();
        let found = tokio::task::spawn_blocking(move || {
            let ip = pv_media::mac::url_host_ip(&url)?;
            Some((ip, pv_media::mac::lookup(ip)?))
        })
        .await
        .ok()
        .flatten();
        let Some((ip, mac)) = found else { return MacOutcome::Unknown };
        self.record(cam, &ip.to_string(), &mac.to_string()).await
    }

    /// Store a MAC address seen for the camera at `ip`; a change of a known one is an alert.
    pub(super) async fn record(&self, cam: &camera::Model, ip: &str, mac: &str) -> MacOutcome {
        let now = self.clock.now();
        let outcome = match cameras::record_mac(&self.dbs.records, cam.id, Some(ip), mac, now).await
        {
            Ok(o) => o,
            Err(e) => {
                tracing::error!(camera = cam.id, error = %e, "cannot store the MAC address");
                return MacOutcome::Unknown;
            }
        };
        if let MacOutcome::Changed { old, new } = &outcome {
            tracing::warn!(camera = cam.id, name = %cam.name, ip, old, new, "camera MAC address changed: the device at this address was replaced");
            let event = pv_security::audit::Event::new(
                "system",
                "camera.mac_changed",
                "camera",
                &cam.id.to_string(),
            )
            .details(
                serde_json::json!({ "name": cam.name, "ip": ip, "old_mac": old, "new_mac": new }),
            );
            if let Err(e) = self.audit.append(event, now).await {
                tracing::error!(error = %e, "cannot write audit event");
            }
        }
        outcome
    }
}
