//! Recovery: reconciling each camera's ingest directory with its `segments` rows after a
//! crash, and `pentavision check` (the same reconciliation, reporting or repairing).
//!
//! Owns no state and no lock; it runs before any recorder starts
//! ([`super::Nvr::start_all`]) or from the command line with no server running.
//!
//! Invariants:
//! - Recovery runs for every camera before any recorder starts.
//! - Without repair nothing changes (`recovery::inspect`); a file written in the last minute
//!   is reported as in progress, not as a problem.
//! - With repair (`recovery::scan`): a file cut short is truncated to its last complete
//!   fragment, one with nothing playable is deleted, a usable file without a row gets its row,
//!   and a row whose file is gone is dropped — so a row exists only for a usable file.
//! - Errors keep their kind: a directory that cannot be read is an internal failure, not bad
//!   input.

use std::collections::HashSet;
use std::path::Path;
use std::time::Duration;

use chrono::{DateTime, Utc};
use pv_core::cameras;
use pv_core::db::records::camera;
use pv_core::ids::CameraId;
use pv_core::recordings;
use pv_media::recovery;

use super::{NvrError, footage, new_segment};

/// One camera's reconciliation of files and rows.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct CameraCheck {
    /// The camera.
    pub camera: CameraId,
    /// Its name.
    pub name: String,
    /// Indexed segments whose file is fine.
    pub ok: usize,
    /// Files cut short by a crash (repaired when repairing).
    pub repaired: Vec<String>,
    /// Files with nothing playable (deleted when repairing).
    pub discarded: Vec<String>,
    /// Usable files without a row (indexed when repairing).
    pub unindexed: Vec<String>,
    /// Rows whose file is gone (removed when repairing).
    pub missing: Vec<String>,
    /// An unfinished file written in the last minute: a recorder is writing it right now.
    pub in_progress: Vec<String>,
    /// Whether the problems above were repaired.
    pub repairing: bool,
}

impl CameraCheck {
    fn new(cam: &camera::Model, repairing: bool) -> Self {
        Self {
            camera: CameraId(cam.id),
            name: cam.name.clone(),
            ok: 0,
            repaired: Vec::new(),
            discarded: Vec::new(),
            unindexed: Vec::new(),
            missing: Vec::new(),
            in_progress: Vec::new(),
            repairing,
        }
    }

    /// No problem found (a file in progress is not a problem).
    pub fn is_clean(&self) -> bool {
        self.repaired.is_empty()
            && self.discarded.is_empty()
            && self.unindexed.is_empty()
            && self.missing.is_empty()
    }

    /// One line: counts per finding.
    pub fn summary(&self) -> String {
        format!(
            "{} ok, {} repaired, {} discarded, {} unindexed, {} missing, {} in progress",
            self.ok,
            self.repaired.len(),
            self.discarded.len(),
            self.unindexed.len(),
            self.missing.len(),
            self.in_progress.len()
        )
    }
}

/// The recovery pass at start-up: repair every camera's directory, logging what was found
/// (a camera that cannot be recovered is logged and left to the next pass).
pub(super) async fn recover_all(
    db: &sea_orm::DatabaseConnection,
    data_dir: &Path,
    cams: &[camera::Model],
    now: DateTime<Utc>,
) {
    for cam in cams {
        match reconcile(db, data_dir, cam, true, now).await {
            Ok(r) if !r.is_clean() => {
                tracing::warn!(camera = cam.id, report = %r.summary(), "recovery pass repaired the index")
            }
            Ok(_) => {}
            Err(e) => tracing::error!(camera = cam.id, error = %e, "recovery pass failed"),
        }
    }
}

/// Reconcile one camera's ingest directory with its rows; with `repair`, fix what is found
/// (truncate or delete broken files, index unindexed ones, drop rows without a file).
pub async fn reconcile(
    db: &sea_orm::DatabaseConnection,
    data_dir: &Path,
    cam: &camera::Model,
    repair: bool,
    now: DateTime<Utc>,
) -> Result<CameraCheck, NvrError> {
    let camera = CameraId(cam.id);
    let dir = footage::camera_dir(cam)?;
    let report =
        if repair { recovery::scan(data_dir, &dir) } else { recovery::inspect(data_dir, &dir) }?;
    let rows = recordings::segment_paths(db, camera).await?;
    let known: HashSet<String> = rows.iter().cloned().collect();
    let mut check = CameraCheck::new(cam, repair);
    let fresh = |path: &Path| {
        std::fs::metadata(path)
            .and_then(|m| m.modified())
            .ok()
            .and_then(|t| t.elapsed().ok())
            .is_some_and(|age| age < Duration::from_secs(60))
    };
    for (path, _reason) in &report.discarded {
        let key = rel(data_dir, path);
        if !repair && fresh(path) {
            check.in_progress.push(key);
        } else {
            check.discarded.push(key);
        }
    }
    for file in report.usable() {
        let key = recovery::path_key(&file.relative_path);
        if let recovery::Outcome::Repaired { .. } = file.outcome {
            if !repair && fresh(&file.path) {
                check.in_progress.push(key);
                continue;
            }
            check.repaired.push(key.clone());
        }
        if known.contains(&key) {
            check.ok += 1;
        } else {
            check.unindexed.push(key);
            if repair {
                let id =
                    recordings::insert_segment(db, &new_segment(&file.to_segment(), false), now)
                        .await?;
                // A segment indexed late (the server died before its row) is uploaded too.
                pv_core::storage::enqueue_segment(db, id.0, camera.0, now).await?;
            }
        }
    }
    // Rows whose file is gone, wherever the row points (an older directory of the camera too).
    for row in &rows {
        if !data_dir.join(row).is_file() {
            check.missing.push(row.clone());
        }
    }
    if repair && !check.missing.is_empty() {
        recordings::delete_segments_by_path(db, camera, &check.missing).await?;
    }
    // Outside the scanned directory, a row whose file exists counts as ok.
    check.ok += rows
        .iter()
        .filter(|r| !check.missing.contains(r))
        .filter(|r| !report.files.iter().any(|f| &recovery::path_key(&f.relative_path) == *r))
        .count();
    if repair {
        for file in &check.unindexed {
            tracing::info!(%camera, path = %file, "recovery: indexed a segment that had no row");
        }
        for row in &check.missing {
            tracing::warn!(%camera, path = %row, "recovery: dropped the row of a missing file");
        }
    }
    Ok(check)
}

fn rel(data_dir: &Path, path: &Path) -> String {
    recovery::path_key(path.strip_prefix(data_dir).unwrap_or(path))
}

/// `pentavision check`: reconcile every camera (repairing when asked).
pub async fn check(
    db: &sea_orm::DatabaseConnection,
    data_dir: &Path,
    repair: bool,
    now: DateTime<Utc>,
) -> Result<Vec<CameraCheck>, NvrError> {
    let mut out = Vec::new();
    for cam in cameras::list(db).await? {
        out.push(reconcile(db, data_dir, &cam, repair, now).await?);
    }
    Ok(out)
}
