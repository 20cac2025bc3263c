//! Footage: the segment files on disk — where a camera's files go, pictures and exports made
//! from them, and deleting them.
//!
//! Owns no lock: files are written by the recorders, read here off the async runtime, and
//! deleted only through [`delete_file`] (retention and camera removal; the one place).
//!
//! Invariants:
//! - A camera's ingest directory is named by its MAC address when known, else by its id.
//! - A snapshot decodes one key frame on demand: the tap's latest (the running recorder's
//!   stream in memory, never a second camera connection) while fresh, else the newest
//!   finished segment's last.
//! - An export joins segment files without transcoding on one continuous timeline (gaps
//!   skipped), from the key frame at or before `from`; nothing recorded is [`NvrError::NoFootage`].
//! - Decoding, joining and file I/O run on blocking threads; errors keep their kind (a disk
//!   failure is internal, never the caller's mistake).

use std::path::{Path, PathBuf};
use std::time::Duration;

use chrono::{DateTime, Utc};
use pv_core::cameras;
use pv_core::db::Databases;
use pv_core::db::records::camera;
use pv_core::ids::CameraId;
use pv_core::recordings;
use pv_media::layout::{CameraDir, MacAddress};
use pv_media::snapshot::{self, FramePick, Jpeg, SnapshotError, SnapshotOptions};
use pv_media::tap::StreamTap;

use super::NvrError;

/// Reads and deletes the files (see the module documentation).
pub(super) struct Footage {
    dbs: Databases,
    data_dir: PathBuf,
}

/// The camera's ingest directory: by MAC address when known, else by id.
pub fn camera_dir(cam: &camera::Model) -> pv_media::Result<CameraDir> {
    let mac = cam.mac_address.as_deref().and_then(|m| m.parse::<MacAddress>().ok());
    CameraDir::new(CameraId(cam.id), mac)
}

/// Delete a footage file (`path` relative to the data directory): Ok(true) deleted, Ok(false)
/// it was already gone.
pub(super) fn delete_file(data_dir: &Path, path: &str) -> pv_core::Result<bool> {
    let path = data_dir.join(path);
    match std::fs::remove_file(&path) {
        Ok(()) => Ok(true),
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => Ok(false),
        Err(e) => Err(pv_core::Error::io(path, e)),
    }
}

impl Footage {
    pub(super) fn new(dbs: Databases, data_dir: PathBuf) -> Self {
        Self { dbs, data_dir }
    }

    /// A JPEG of the camera's latest key frame: from `tap` while its frame is at most 30 s
    /// old, else from the newest finished segment.
    pub(super) async fn snapshot(
        &self,
        camera: CameraId,
        tap: Option<StreamTap>,
        max_width: Option<u32>,
    ) -> Result<Jpeg, NvrError> {
        let options = SnapshotOptions {
            max_width,
            max_age: Some(Duration::from_secs(30)),
            ..SnapshotOptions::default()
        };
        if let Some(tap) = tap.filter(|t| t.key_frame().is_some()) {
            let opts = options.clone();
            let live = tokio::task::spawn_blocking(move || snapshot::from_tap(&tap, &opts))
                .await
                .map_err(|_| NvrError::internal("snapshot task failed"))?;
            match live {
                Ok(jpeg) => return Ok(jpeg),
                Err(e @ SnapshotError::Stale { .. }) => {
                    tracing::debug!(%camera, error = %e, "live frame too old; using the last segment");
                }
                Err(e) => return Err(NvrError::Media { kind: e.kind(), message: e.to_string() }),
            }
        }
        let newest = recordings::newest_segment(&self.dbs.records, camera)
            .await?
            .ok_or(NvrError::NoFootage)?;
        let path = self.data_dir.join(&newest.path);
        tokio::task::spawn_blocking(move || snapshot::from_file(&path, FramePick::Last, &options))
            .await
            .map_err(|_| NvrError::internal("snapshot task failed"))?
            .map_err(|e| NvrError::Media { kind: e.kind(), message: e.to_string() })
    }

    /// Join the camera's footage of `[from, to)` into one MP4 at `out` without transcoding.
    pub(super) async fn export(
        &self,
        camera: CameraId,
        from: DateTime<Utc>,
        to: DateTime<Utc>,
        out: &Path,
    ) -> Result<pv_media::export::ExportSummary, NvrError> {
        let segs = recordings::segments_in_range(&self.dbs.records, camera, from, to).await?;
        if segs.is_empty() {
            return Err(NvrError::NoFootage);
        }
        // Positions on the joined timeline: each segment follows the previous one.
        let mut offset = Duration::ZERO;
        let (mut start, mut end) = (None, None);
        for seg in &segs {
            let len = Duration::from_millis(u64::try_from(seg.duration_ms).unwrap_or(0));
            let at = |t: DateTime<Utc>| {
                let into = (t - seg.started_at).to_std().unwrap_or(Duration::ZERO);
                offset + into.min(len)
            };
            if start.is_none() && from < seg.ended_at {
                start = Some(at(from));
            }
            if end.is_none() && to <= seg.ended_at {
                end = Some(at(to));
            }
            offset += len;
        }
        let options = pv_media::export::ExportOptions {
            from: start.filter(|s| !s.is_zero()),
            to: end,
            ..Default::default()
        };
        let files: Vec<PathBuf> = segs.iter().map(|s| self.data_dir.join(&s.path)).collect();
        let out = out.to_path_buf();
        tokio::task::spawn_blocking(move || pv_media::export::export(&files, &out, &options))
            .await
            .map_err(|_| NvrError::internal("export task failed"))?
            .map_err(|e| NvrError::Media { kind: e.kind(), message: e.to_string() })
    }

    /// Delete the camera's row (its segment rows, gaps, zones, schedules and outputs go by
    /// cascade), then its segment files; returns how many files were deleted. A file that
    /// cannot be deleted is logged and left behind.
    pub(super) async fn delete_camera(&self, camera: CameraId) -> Result<u64, NvrError> {
        let db = &self.dbs.records;
        let paths = recordings::segment_paths(db, camera).await?;
        cameras::delete(db, camera.0).await?;
        let mut removed = 0u64;
        for path in &paths {
            match delete_file(&self.data_dir, path) {
                Ok(true) => removed += 1,
                Ok(false) => {}
                Err(e) => tracing::warn!(%camera, error = %e, "cannot delete a segment file"),
            }
        }
        Ok(removed)
    }
}
