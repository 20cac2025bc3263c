//! Retention: deletes footage past each camera's age and size limits, and the oldest footage
//! of any camera while the disk runs short of `recording.min_free_bytes`.
//!
//! Owns `pass`, a tokio mutex held for a whole pass so two passes (the background loop and a
//! caller) never run at once and count or delete the same segment twice.
//!
//! Invariants:
//! - A protected segment, or one waiting for upload, is never deleted (pv-core's
//!   `deletable_segments` only returns the others).
//! - Oldest first: per camera by age, then by size; for space across every camera, so
//!   recording never stops because the disk is full.
//! - A segment's file is deleted before its row (a file already gone is fine); a file that
//!   cannot be deleted keeps its row and fails the pass. A segment with a remote copy keeps
//!   its row (marked deleted locally) and plays from the copy; local and remote retention are
//!   separate (the camera's days here, each storage module's days for its copies).

use std::path::{Path, PathBuf};
use std::sync::Arc;

use pv_core::Clock;
use pv_core::cameras;
use pv_core::config::RecordingConfig;
use pv_core::db::Databases;
use pv_core::db::records::segment;
use pv_core::ids::{CameraId, SegmentId};
use pv_core::recordings;

use super::footage;

/// The retention policy and its lock (see the module documentation).
pub(super) struct Retention {
    dbs: Databases,
    data_dir: PathBuf,
    config: RecordingConfig,
    clock: Arc<dyn Clock>,
    /// Held for a whole pass.
    pass: tokio::sync::Mutex<()>,
}

/// What retention deleted.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct RetentionReport {
    /// Segments past their camera's age limit.
    pub by_age: u64,
    /// Segments beyond their camera's size limit.
    pub by_size: u64,
    /// Segments deleted because the disk was nearly full.
    pub for_space: u64,
}

impl RetentionReport {
    /// All deletions.
    pub fn total(&self) -> u64 {
        self.by_age + self.by_size + self.for_space
    }
}

impl Retention {
    pub(super) fn new(
        dbs: Databases,
        data_dir: PathBuf,
        config: RecordingConfig,
        clock: Arc<dyn Clock>,
    ) -> Self {
        Self { dbs, data_dir, config, clock, pass: tokio::sync::Mutex::new(()) }
    }

    /// One pass (see [`super::Nvr::retention_pass`]).
    pub(super) async fn pass(&self) -> pv_core::Result<RetentionReport> {
        let _pass = self.pass.lock().await;
        let db = &self.dbs.records;
        let now = self.clock.now();
        let mut report = RetentionReport::default();
        for cam in cameras::list(db).await? {
            let camera = CameraId(cam.id);
            let days = cam.retention_days.map_or(self.config.retention_days, |d| d as u32);
            if days > 0 {
                let before = now - chrono::Duration::days(i64::from(days));
                loop {
                    let batch =
                        recordings::deletable_segments(db, Some(camera), Some(before), 200).await?;
                    if batch.is_empty() {
                        break;
                    }
                    for seg in batch {
                        self.delete(&seg, &mut report.by_age).await?;
                    }
                }
            }
            if let Some(limit) = cam.retention_max_bytes {
                let mut total = recordings::camera_bytes(db, camera).await?;
                while total > limit {
                    let batch = recordings::deletable_segments(db, Some(camera), None, 50).await?;
                    if batch.is_empty() {
                        break;
                    }
                    for seg in batch {
                        if total <= limit {
                            break;
                        }
                        total -= seg.size_bytes;
                        self.delete(&seg, &mut report.by_size).await?;
                    }
                }
            }
        }
        let want = self.config.min_free_bytes;
        while free_bytes(&self.data_dir).is_some_and(|free| free < want) {
            let batch = recordings::deletable_segments(db, None, None, 20).await?;
            if batch.is_empty() {
                tracing::error!(
                    min_free_bytes = want,
                    "the disk is nearly full and no segment may be deleted (all protected or waiting for upload)"
                );
                break;
            }
            for seg in batch {
                self.delete(&seg, &mut report.for_space).await?;
            }
        }
        if report.total() > 0 {
            tracing::info!(
                by_age = report.by_age,
                by_size = report.by_size,
                for_space = report.for_space,
                "retention deleted segments"
            );
        }
        Ok(report)
    }

    /// Delete one segment's file, then its row, and count it. A segment with a remote copy
    /// keeps its row, marked as no longer on this disk: it plays from the copy until the
    /// module's own retention removes that.
    async fn delete(&self, seg: &segment::Model, counter: &mut u64) -> pv_core::Result<()> {
        footage::delete_file(&self.data_dir, &seg.path)?;
        let db = &self.dbs.records;
        if pv_core::storage::remote_copies(db, seg.id).await?.is_empty() {
            recordings::delete_segment(db, SegmentId(seg.id)).await?;
        } else {
            pv_core::storage::mark_local_deleted(db, seg.id, self.clock.now()).await?;
        }
        *counter += 1;
        Ok(())
    }
}

/// Free bytes for unprivileged users on the file system holding `dir`.
fn free_bytes(dir: &Path) -> Option<u64> {
    let st = rustix::fs::statvfs(dir).ok()?;
    Some(st.f_bavail.saturating_mul(st.f_frsize))
}
