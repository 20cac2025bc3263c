//! The start-up recovery pass over a camera's ingest directory.
//!
//! Run it before the camera's recorder starts (it truncates and removes files). Every file with
//! a segment name ([`crate::layout::parse_segment_file_name`]) is classified by reading its MP4
//! boxes ([`crate::mp4`]):
//!
//! - **complete**: finalised by the recorder (every box whole, `mfra` present);
//! - **repaired**: cut short by a crash or power loss; everything after the last complete
//!   `moof`+`mdat` fragment is cut off (at most one fragment, 1 s by default, is lost) and the
//!   file is fsynced, leaving a valid, playable file;
//! - **discarded** (deleted): nothing playable (empty, no `moov`, no complete fragment, no
//!   video track).
//!
//! Files whose names are not segment names are left alone and listed as ignored. The
//! [`RecoveryReport`] is what the composition layer reconciles against the `segments` rows:
//! usable files without a row get one (end reason `recovered`), rows whose file is gone are
//! removed or flagged.
//!
//! ```no_run
//! # fn main() -> pv_media::Result<()> {
//! use pv_core::ids::CameraId;
//! use pv_media::layout::CameraDir;
//! let report = pv_media::recovery::scan("/var/lib/pentavision".as_ref(), &CameraDir::new(CameraId(1), None)?)?;
//! for file in report.usable() {
//!     println!("{} {:?} {} ms", file.relative_path.display(), file.outcome, file.duration_ms);
//! }
//! # Ok(()) }
//! ```

use std::collections::HashSet;
use std::path::{Path, PathBuf};

use chrono::{DateTime, Utc};
use pv_core::ids::CameraId;

use crate::layout::{CameraDir, SEGMENT_EXTENSION, parse_segment_file_name};
use crate::mp4;
use crate::record::{Backend, EndReason, SegmentFinished};
use crate::{Error, Result};

/// What the recovery pass did with one file.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Outcome {
    /// Whole and finalised; untouched.
    Complete,
    /// Was cut short; `cut_bytes` of unfinished tail were removed (0: it ended on a fragment
    /// boundary and only lacked the closing index).
    Repaired {
        /// Bytes removed from the end.
        cut_bytes: u64,
    },
}

/// A usable segment file found by the recovery pass.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RecoveredFile {
    /// The camera (from the file name).
    pub camera: CameraId,
    /// Absolute path.
    pub path: PathBuf,
    /// Path relative to the data dir (the `segments.path` column).
    pub relative_path: PathBuf,
    /// Start time from the file name (whole seconds).
    pub started_at: DateTime<Utc>,
    /// Whether it was complete or repaired.
    pub outcome: Outcome,
    /// Media duration in milliseconds.
    pub duration_ms: i64,
    /// File size after any repair.
    pub size_bytes: u64,
    /// Video codec.
    pub video_codec: String,
    /// Audio codec, if any.
    pub audio_codec: Option<String>,
    /// Frame width.
    pub width: Option<u32>,
    /// Frame height.
    pub height: Option<u32>,
}

impl RecoveredFile {
    /// The file as a finished segment with end reason `recovered`, to rebuild a missing row
    /// through the same path as live segments. Media times are unknown (0-based).
    pub fn to_segment(&self) -> SegmentFinished {
        let duration = chrono::Duration::milliseconds(self.duration_ms);
        SegmentFinished {
            camera: self.camera,
            path: self.path.clone(),
            relative_path: self.relative_path.clone(),
            started_at: self.started_at,
            ended_at: self.started_at + duration,
            media_start_ns: 0,
            media_end_ns: self.duration_ms.saturating_mul(1_000_000),
            duration_ms: self.duration_ms,
            size_bytes: self.size_bytes,
            video_codec: self.video_codec.clone(),
            audio_codec: self.audio_codec.clone(),
            width: self.width,
            height: self.height,
            end_reason: EndReason::Recovered,
            backend: Backend::Gstreamer,
            // Not known after a crash; the motion events the file overlaps tell.
            motion: false,
        }
    }
}

/// What the recovery pass found in one camera directory.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct RecoveryReport {
    /// The directory scanned (absolute).
    pub dir: PathBuf,
    /// Complete and repaired files, in name (= time) order.
    pub files: Vec<RecoveredFile>,
    /// Segment files deleted because nothing in them was playable, with the reason.
    pub discarded: Vec<(PathBuf, String)>,
    /// Files left alone because they are not segment files, with the reason.
    pub ignored: Vec<(PathBuf, String)>,
}

impl RecoveryReport {
    /// Complete and repaired files.
    pub fn usable(&self) -> impl Iterator<Item = &RecoveredFile> {
        self.files.iter()
    }

    /// Files that were repaired.
    pub fn repaired(&self) -> impl Iterator<Item = &RecoveredFile> {
        self.files.iter().filter(|f| matches!(f.outcome, Outcome::Repaired { .. }))
    }

    /// Usable files with no row: `known` are the `segments.path` values of the camera.
    pub fn without_row<'a>(&'a self, known: &HashSet<String>) -> Vec<&'a RecoveredFile> {
        self.files.iter().filter(|f| !known.contains(&path_key(&f.relative_path))).collect()
    }

    /// Rows (by `segments.path`) whose file is not among the usable files of this directory.
    /// Only paths under the scanned camera directory are considered.
    pub fn rows_without_file<'a>(&self, data_dir: &Path, known: &'a [String]) -> Vec<&'a str> {
        let have: HashSet<String> = self.files.iter().map(|f| path_key(&f.relative_path)).collect();
        let prefix = self.dir.strip_prefix(data_dir).map(path_key).unwrap_or_default();
        known
            .iter()
            .filter(|p| prefix.is_empty() || p.starts_with(&format!("{prefix}/")))
            .filter(|p| !have.contains(p.as_str()))
            .map(String::as_str)
            .collect()
    }
}

/// A relative path as stored in the database (`/` separators).
pub fn path_key(path: &Path) -> String {
    path.components()
        .map(|c| c.as_os_str().to_string_lossy().into_owned())
        .collect::<Vec<_>>()
        .join("/")
}

/// Scan, repair and clean `data_dir/camera_dir`. A directory that does not exist yields an
/// empty report.
pub fn scan(data_dir: &Path, camera_dir: &CameraDir) -> Result<RecoveryReport> {
    scan_with(data_dir, camera_dir, true)
}

/// What [`scan`] would do, changing nothing: files that need a repair are reported as
/// [`Outcome::Repaired`] with the bytes that would be cut, files that would be deleted are in
/// [`RecoveryReport::discarded`]. For `pentavision check` without `--repair`, and safe to run
/// next to a live recorder.
pub fn inspect(data_dir: &Path, camera_dir: &CameraDir) -> Result<RecoveryReport> {
    scan_with(data_dir, camera_dir, false)
}

fn scan_with(data_dir: &Path, camera_dir: &CameraDir, repair: bool) -> Result<RecoveryReport> {
    let dir = data_dir.join(camera_dir.relative_path());
    let mut report = RecoveryReport { dir: dir.clone(), ..RecoveryReport::default() };
    let entries = match std::fs::read_dir(&dir) {
        Ok(entries) => entries,
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Ok(report),
        Err(e) => return Err(Error::io(&dir, e)),
    };
    let mut names: Vec<(String, PathBuf)> = entries
        .filter_map(|e| e.ok())
        .filter(|e| e.file_type().is_ok_and(|t| t.is_file()))
        .map(|e| (e.file_name().to_string_lossy().into_owned(), e.path()))
        .collect();
    names.sort();
    let mut changed = false;
    for (name, path) in names {
        let (started_at, camera) = match parse_segment_file_name(&name) {
            Ok(parsed) => parsed,
            Err(err) => {
                let reason = if name.ends_with(&format!(".{SEGMENT_EXTENSION}")) {
                    err.to_string()
                } else {
                    "not a segment file".to_owned()
                };
                report.ignored.push((path, reason));
                continue;
            }
        };
        match examine(&path, repair) {
            Ok((outcome, info)) => {
                changed |= matches!(outcome, Outcome::Repaired { cut_bytes } if cut_bytes > 0);
                let Some(video) = info.video else { continue };
                if repair {
                    tracing::info!(path = %path.display(), ?outcome, "recovery: usable segment");
                }
                report.files.push(RecoveredFile {
                    camera,
                    relative_path: path
                        .strip_prefix(data_dir)
                        .map(Path::to_path_buf)
                        .unwrap_or_else(|_| path.clone()),
                    path,
                    started_at,
                    outcome,
                    duration_ms: (info.duration_ns / 1_000_000) as i64,
                    size_bytes: info.file_len,
                    video_codec: video.codec,
                    audio_codec: info.audio.map(|a| a.codec),
                    width: video.width,
                    height: video.height,
                });
            }
            Err(reason) => {
                if repair {
                    tracing::warn!(path = %path.display(), reason, "recovery: discarding unplayable segment");
                    std::fs::remove_file(&path).map_err(|e| Error::io(&path, e))?;
                    changed = true;
                }
                report.discarded.push((path, reason));
            }
        }
    }
    if changed {
        let d = std::fs::File::open(&dir).map_err(|e| Error::io(&dir, e))?;
        d.sync_all().map_err(|e| Error::io(&dir, e))?;
    }
    Ok(report)
}

/// Classify one segment file, repairing it when it can be (and `repair` is set); `Err(reason)`:
/// discard it.
fn examine(path: &Path, repair: bool) -> std::result::Result<(Outcome, mp4::Mp4Info), String> {
    let info = mp4::inspect(path).map_err(|e| e.to_string())?;
    if info.file_len == 0 {
        return Err("empty file".into());
    }
    if !info.has_moov {
        return Err("no movie header (moov)".into());
    }
    if info.video.is_none() {
        return Err("no video track".into());
    }
    if info.is_complete() {
        return Ok((Outcome::Complete, info));
    }
    if info.valid_len == 0 {
        return Err("no complete fragment".into());
    }
    let cut_bytes = info.file_len - info.valid_len;
    if !repair {
        return Ok((Outcome::Repaired { cut_bytes }, info));
    }
    if cut_bytes > 0 {
        mp4::truncate(path, info.valid_len).map_err(|e| e.to_string())?;
    }
    let info = mp4::inspect(path).map_err(|e| e.to_string())?;
    if info.duration_ns == 0 {
        return Err("no media after repair".into());
    }
    Ok((Outcome::Repaired { cut_bytes }, info))
}
