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
//! - A timeline thumbnail is the key frame at or before the moment, from the finished segment
//!   covering it or from the file being written (the newest file of the camera that has no row
//!   yet); a moment of the last seconds whose file has no fragment yet is shown from the
//!   recorder's latest key frame in memory (never more than [`TAP_SECONDS`] after it). Pictures are cached in memory by file, key frame and width (least recently used
//!   out), finished segments' key-frame lists by segment; at most [`THUMB_DECODERS`] decode at
//!   once.
//! - Decoding, joining and file I/O run on blocking threads; errors keep their kind (a disk
//!   failure is internal, never the caller's mistake).

use std::num::NonZeroUsize;
use std::path::{Path, PathBuf};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use chrono::{DateTime, Utc};
use lru::LruCache;
use pv_core::cameras;
use pv_core::db::Databases;
use pv_core::db::records::camera;
use pv_core::ids::CameraId;
use pv_core::recordings;
use pv_media::layout::{CameraDir, MacAddress};
use pv_media::snapshot::{self, FramePick, Jpeg, SnapshotError, SnapshotOptions};
use pv_media::tap::StreamTap;

use super::NvrError;

/// How many thumbnails may be decoded at the same time (the others wait their turn).
pub const THUMB_DECODERS: usize = 2;
/// How many thumbnail pictures the cache keeps (a 240-px JPEG is about 10 KB).
const THUMB_PICTURES: NonZeroUsize = match NonZeroUsize::new(600) {
    Some(n) => n,
    None => NonZeroUsize::MIN,
};
/// How many finished segments' key-frame lists the cache keeps.
const THUMB_INDEXES: NonZeroUsize = match NonZeroUsize::new(256) {
    Some(n) => n,
    None => NonZeroUsize::MIN,
};
/// How recent a moment may be to be shown from the recorder's latest key frame in memory (when
/// the file being written has no fragment yet), and how far after the moment that frame may be.
const TAP_SECONDS: i64 = 3;
/// How long reading a file's key frames or decoding one may take.
const THUMB_TIMEOUT: Duration = Duration::from_secs(10);

/// Reads and deletes the files (see the module documentation).
pub(super) struct Footage {
    dbs: Databases,
    data_dir: PathBuf,
    /// Key-frame offsets of finished segments, by segment id.
    indexes: Mutex<LruCache<i64, Arc<Vec<Duration>>>>,
    /// Pictures by (file, key-frame offset in ms, width).
    pictures: Mutex<LruCache<(String, u64, u32), Arc<Jpeg>>>,
    decoders: tokio::sync::Semaphore,
}

/// A timeline thumbnail: the picture of the key frame at or before a moment.
#[derive(Debug, Clone)]
pub struct Thumbnail {
    /// The JPEG.
    pub jpeg: Arc<Jpeg>,
    /// Wall-clock time of the key frame shown.
    pub frame_at: DateTime<Utc>,
    /// From a finished segment: the picture for this moment will not change (a moment in the
    /// segment being written may get a later key frame).
    pub settled: bool,
}

/// Where a moment's footage is: a file (relative to the data directory), the wall-clock time
/// of its first frame, and its segment row when it is finished.
struct Source {
    path: String,
    started_at: DateTime<Utc>,
    segment: Option<i64>,
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
        Self {
            dbs,
            data_dir,
            indexes: Mutex::new(LruCache::new(THUMB_INDEXES)),
            pictures: Mutex::new(LruCache::new(THUMB_PICTURES)),
            decoders: tokio::sync::Semaphore::new(THUMB_DECODERS),
        }
    }

    /// The picture of the camera's key frame at or before `at`, at most `width` pixels wide,
    /// from the segment covering `at` or the file being written (`now` bounds it).
    /// [`NvrError::NoFootage`] when nothing was recorded then.
    pub(super) async fn thumbnail(
        &self,
        camera: CameraId,
        at: DateTime<Utc>,
        width: u32,
        now: DateTime<Utc>,
        tap: Option<StreamTap>,
    ) -> Result<Thumbnail, NvrError> {
        if let Some(source) = self.finished_at(camera, at).await? {
            return self.source_picture(source, at, width).await;
        }
        let open = match self.open_at(camera, at, now).await? {
            Some(source) => self.source_picture(source, at, width).await,
            None => Err(NvrError::NoFootage),
        };
        if let Err(e) = &open {
            tracing::debug!(%camera, %at, error = %e, "thumbnail: no picture from the file being written");
        }
        match open {
            // The last seconds, before the file being written has its first fragment: the
            // recorder's latest key frame in memory.
            Err(NvrError::NoFootage) if now - at <= chrono::Duration::seconds(TAP_SECONDS) => {
                let Some(tap) = tap.filter(|t| t.key_frame().is_some()) else {
                    tracing::debug!(%camera, "thumbnail: no live key frame either");
                    return Err(NvrError::NoFootage);
                };
                self.tap_picture(tap, at, width, now).await
            }
            other => other,
        }
    }

    /// The recorder's latest key frame, when it is no later than `at` + [`TAP_SECONDS`] and
    /// at most that old.
    async fn tap_picture(
        &self,
        tap: StreamTap,
        at: DateTime<Utc>,
        width: u32,
        now: DateTime<Utc>,
    ) -> Result<Thumbnail, NvrError> {
        let frame = tap.key_frame().ok_or(NvrError::NoFootage)?;
        let age = chrono::Duration::from_std(frame.age()).unwrap_or(chrono::Duration::MAX);
        let frame_at = now.checked_sub_signed(age).unwrap_or(now);
        if age > chrono::Duration::seconds(TAP_SECONDS)
            || frame_at > at + chrono::Duration::seconds(TAP_SECONDS)
        {
            tracing::debug!(%at, %frame_at, "thumbnail: the live key frame is too old or too new");
            return Err(NvrError::NoFootage);
        }
        let options = SnapshotOptions {
            max_width: Some(width),
            timeout: THUMB_TIMEOUT,
            quality: 75,
            ..SnapshotOptions::default()
        };
        let _turn = self.decoders.acquire().await;
        let jpeg = tokio::task::spawn_blocking(move || snapshot::from_key_frame(&frame, &options))
            .await
            .map_err(|_| NvrError::internal("thumbnail task failed"))?
            .map_err(thumb_err)?;
        Ok(Thumbnail { jpeg: Arc::new(jpeg), frame_at, settled: false })
    }

    /// The picture of `source`'s key frame at or before `at`.
    async fn source_picture(
        &self,
        source: Source,
        at: DateTime<Utc>,
        width: u32,
    ) -> Result<Thumbnail, NvrError> {
        let finished = source.segment.is_some();
        let offset = (at - source.started_at).to_std().unwrap_or(Duration::ZERO);
        let file = self.data_dir.join(&source.path);
        let cached_index =
            source.segment.and_then(|id| super::lock(&self.indexes).get(&id).cloned());
        let index = match cached_index {
            Some(index) => index,
            None => {
                let _turn = self.decoders.acquire().await;
                let f = file.clone();
                let index = Arc::new(
                    tokio::task::spawn_blocking(move || {
                        snapshot::key_frame_offsets(&f, THUMB_TIMEOUT)
                    })
                    .await
                    .map_err(|_| NvrError::internal("thumbnail task failed"))?
                    .map_err(|e| open_file_err(e, finished))?,
                );
                if let Some(id) = source.segment {
                    super::lock(&self.indexes).put(id, index.clone());
                }
                index
            }
        };
        let key_frame = index.iter().rev().find(|k| **k <= offset).or(index.first()).copied();
        let key_frame = key_frame.ok_or(NvrError::NoFootage)?;
        let frame_at = source.started_at
            + chrono::Duration::from_std(key_frame).unwrap_or(chrono::Duration::zero());
        // A moment past the last key frame of the file being written may get a newer one.
        let settled = source.segment.is_some() || index.last().is_some_and(|k| *k > offset);
        let key = (source.path.clone(), key_frame.as_millis() as u64, width);
        if let Some(jpeg) = super::lock(&self.pictures).get(&key).cloned() {
            return Ok(Thumbnail { jpeg, frame_at, settled });
        }
        let _turn = self.decoders.acquire().await;
        let options = SnapshotOptions {
            max_width: Some(width),
            timeout: THUMB_TIMEOUT,
            quality: 75,
            ..SnapshotOptions::default()
        };
        let jpeg = tokio::task::spawn_blocking(move || {
            snapshot::from_file(&file, FramePick::AtOrBefore(key_frame), &options)
        })
        .await
        .map_err(|_| NvrError::internal("thumbnail task failed"))?
        .map_err(|e| open_file_err(e, finished))?;
        let jpeg = Arc::new(jpeg);
        super::lock(&self.pictures).put(key, jpeg.clone());
        Ok(Thumbnail { jpeg, frame_at, settled })
    }

    /// The finished segment covering `at` (the latest starting one when two overlap).
    async fn finished_at(
        &self,
        camera: CameraId,
        at: DateTime<Utc>,
    ) -> Result<Option<Source>, NvrError> {
        let until = at + chrono::Duration::milliseconds(1);
        let segs = recordings::segments_in_range(&self.dbs.records, camera, at, until).await?;
        Ok(segs.into_iter().rev().find(|s| s.started_at <= at).map(|s| Source {
            path: s.path,
            started_at: s.started_at,
            segment: Some(s.id),
        }))
    }

    /// The file the camera's recorder is writing, when it started at or before `at` (its
    /// start from its name, to the second): the newest segment file of the camera's ingest
    /// directory that has no row yet.
    async fn open_at(
        &self,
        camera: CameraId,
        at: DateTime<Utc>,
        now: DateTime<Utc>,
    ) -> Result<Option<Source>, NvrError> {
        if at > now + chrono::Duration::seconds(2) {
            return Ok(None);
        }
        // The file being written starts after the newest finished segment: an older moment
        // (a gap) is answered without listing the directory.
        let newest = recordings::newest_segment(&self.dbs.records, camera).await?;
        if newest.is_some_and(|n| at < n.ended_at - chrono::Duration::seconds(1)) {
            return Ok(None);
        }
        let cam = cameras::get(&self.dbs.records, camera.0).await?;
        let rel = camera_dir(&cam)?.relative_path();
        let mut dir = match tokio::fs::read_dir(self.data_dir.join(&rel)).await {
            Ok(dir) => dir,
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Ok(None),
            Err(e) => return Err(pv_core::Error::io(self.data_dir.join(&rel), e).into()),
        };
        let mut newest: Option<(DateTime<Utc>, String)> = None;
        while let Ok(Some(entry)) = dir.next_entry().await {
            let name = entry.file_name().to_string_lossy().into_owned();
            let Ok((start, id)) = pv_media::layout::parse_segment_file_name(&name) else {
                continue;
            };
            if id == camera && start <= at && newest.as_ref().is_none_or(|(t, _)| start > *t) {
                newest = Some((start, name));
            }
        }
        let Some((started_at, name)) = newest else { return Ok(None) };
        let path = pv_media::recovery::path_key(&rel.join(name));
        if recordings::has_segment(&self.dbs.records, camera, &path).await? {
            return Ok(None);
        }
        Ok(Some(Source { path, started_at, segment: None }))
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

/// A snapshot error of a file: one being written that cannot be read yet (its header only) has
/// nothing recorded yet.
fn open_file_err(e: SnapshotError, finished: bool) -> NvrError {
    match e {
        SnapshotError::BadFile { .. } if !finished => NvrError::NoFootage,
        e => thumb_err(e),
    }
}

/// A snapshot error of a thumbnail, with its kind (a file without a key frame yet is "nothing
/// recorded then").
fn thumb_err(e: SnapshotError) -> NvrError {
    match e {
        SnapshotError::NoFrameInFile { .. } => NvrError::NoFootage,
        e => NvrError::Media { kind: e.kind(), message: e.to_string() },
    }
}
