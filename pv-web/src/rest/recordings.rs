//! Recordings: list segments by camera and time range, stream one segment (HTTP range
//! requests, so a browser `<video>` can seek), timeline thumbnails (the key frame at or before
//! a moment, small and cached), and list motion events and recording gaps.
//!
//! Only cameras the caller may play back are listed; a segment of another camera is reported
//! as missing. Starting to watch a segment (a request without a range, or from byte 0) is an
//! audit event ("who watched what"); the further range requests of the same playback are not.

use std::io::SeekFrom;

use chrono::{DateTime, Duration, Utc};
use poem::Body;
use poem::web::Data;
use poem_openapi::param::{Header, Path, Query};
use poem_openapi::payload::{Binary, Json};
use poem_openapi::{ApiResponse, Object, OpenApi};
use pv_core::db::records::segment;
use pv_core::ids::{CameraId, SegmentId};
use pv_core::{cameras, recordings};
use pv_security::rbac::{self, Permission};
use tokio::io::{AsyncReadExt, AsyncSeekExt};

use super::ApiTags;
use super::cameras::{core_err, load_for};
use super::error::{ApiError, ApiResult};
use crate::auth::{Principal, Scoped, perm};
use crate::nvr::NvrError;
use crate::state::AppState;

/// The recordings API.
#[derive(Debug, Clone, Copy)]
pub struct RecordingsApi;

/// Longest time range one listing may ask for.
const MAX_RANGE_DAYS: i64 = 31;
/// Most rows one listing returns.
const MAX_ROWS: u64 = 10_000;
/// Most bytes one range response carries (an open range `bytes=N-` is answered with at most
/// this much; players ask for the rest).
const MAX_CHUNK: u64 = 8 * 1024 * 1024;

/// A recorded segment.
#[derive(Debug, Clone, Object)]
#[oai(skip_serializing_if_is_none)]
pub struct Recording {
    /// Id.
    pub id: i64,
    /// The camera.
    pub camera_id: i64,
    /// Wall-clock time of the first frame.
    pub started_at: DateTime<Utc>,
    /// Wall-clock time after the last frame.
    pub ended_at: DateTime<Utc>,
    /// Duration in milliseconds.
    pub duration_ms: i64,
    /// Size in bytes.
    pub bytes: i64,
    /// Video codec (`h264`, `h265`).
    pub codec: String,
    /// Audio codec, if any.
    pub audio_codec: Option<String>,
    /// Frame width.
    pub width: Option<i32>,
    /// Frame height.
    pub height: Option<i32>,
    /// Motion was seen during it.
    pub motion: bool,
    /// Why it ended: `duration`, `eos`, `error`, `shutdown` or `recovered`.
    pub end_reason: String,
    /// Kept by retention whatever its age.
    pub protected: bool,
    /// `local`: the file is on this server's disk; `remote`: local retention removed it and it
    /// plays from a storage module's copy.
    pub stored: String,
}

impl From<segment::Model> for Recording {
    fn from(s: segment::Model) -> Self {
        Self {
            id: s.id,
            camera_id: s.camera_id,
            started_at: s.started_at,
            ended_at: s.ended_at,
            duration_ms: s.duration_ms,
            bytes: s.size_bytes,
            codec: s.video_codec,
            audio_codec: s.audio_codec,
            width: s.width,
            height: s.height,
            motion: s.motion,
            end_reason: s.end_reason,
            protected: s.protected,
            stored: if s.local_deleted_at.is_some() { "remote" } else { "local" }.to_owned(),
        }
    }
}

/// A motion event or a recording gap.
#[derive(Debug, Clone, Object)]
#[oai(skip_serializing_if_is_none)]
pub struct Event {
    /// `motion` or `gap`.
    pub kind: String,
    /// The camera.
    pub camera_id: i64,
    /// When it began.
    pub started_at: DateTime<Utc>,
    /// When it ended (None: still going on).
    pub ended_at: Option<DateTime<Utc>>,
    /// Peak motion score, 0–1 (motion only).
    pub score: Option<f64>,
    /// Why recording stopped (gaps only).
    pub reason: Option<String>,
}

/// A timeline thumbnail.
#[derive(ApiResponse)]
pub enum ThumbnailResponse {
    /// The key frame at or before the moment asked for, as JPEG.
    #[oai(status = 200, content_type = "image/jpeg")]
    Ok(
        Binary<Vec<u8>>,
        #[oai(header = "Cache-Control")] String,
        /// Wall-clock time (RFC 3339) of the key frame shown.
        #[oai(header = "X-Frame-Time")]
        String,
    ),
}

/// Default and limits of a thumbnail's width in pixels.
const THUMB_WIDTH: u32 = 240;
const THUMB_WIDTHS: std::ops::RangeInclusive<u32> = 32..=640;

/// A segment's bytes.
#[derive(ApiResponse)]
pub enum Media {
    /// The whole file.
    #[oai(status = 200, content_type = "video/mp4")]
    Full(
        Binary<Body>,
        #[oai(header = "Accept-Ranges")] String,
        #[oai(header = "Content-Length")] u64,
    ),
    /// The requested byte range.
    #[oai(status = 206, content_type = "video/mp4")]
    Partial(
        Binary<Body>,
        #[oai(header = "Accept-Ranges")] String,
        #[oai(header = "Content-Range")] String,
        #[oai(header = "Content-Length")] u64,
    ),
    /// The range is outside the file.
    #[oai(status = 416, content_type = "application/problem+json")]
    NotSatisfiable(Json<crate::problem::Problem>, #[oai(header = "Content-Range")] String),
}

/// The `[from, to)` a listing covers: defaults to the last 24 hours, at most 31 days.
pub fn time_range(
    state: &AppState,
    from: Option<DateTime<Utc>>,
    to: Option<DateTime<Utc>>,
) -> ApiResult<(DateTime<Utc>, DateTime<Utc>)> {
    let to = to.unwrap_or_else(|| state.clock().now() + Duration::minutes(1));
    let from = from.unwrap_or(to - Duration::hours(24));
    if from >= to {
        return Err(ApiError::bad_request("the start must be before the end"));
    }
    if to - from > Duration::days(MAX_RANGE_DAYS) {
        return Err(ApiError::bad_request(format!(
            "a time range is at most {MAX_RANGE_DAYS} days; ask for several"
        )));
    }
    Ok((from, to))
}

/// The cameras (by id) `who` may use with `permission`: one checked camera, or every camera
/// the caller's grants allow.
pub async fn cameras_for(
    state: &AppState,
    who: &Principal,
    camera_id: Option<i64>,
    permission: Permission,
) -> ApiResult<Vec<i64>> {
    if let Some(id) = camera_id {
        load_for(state, who, id, permission).await?;
        return Ok(vec![id]);
    }
    let filter = rbac::camera_filter(&who.subject, permission, state.clock().now());
    Ok(cameras::list(&state.dbs().records)
        .await
        .map_err(core_err)?
        .into_iter()
        .filter(|c| filter.allows(c.id, c.property_id, c.zone.as_deref()))
        .map(|c| c.id)
        .collect())
}

/// Motion events and gaps (`kind`: `motion`, `gap` or both when absent).
pub async fn events(
    state: &AppState,
    who: &Principal,
    camera_id: Option<i64>,
    kind: Option<String>,
    from: Option<DateTime<Utc>>,
    to: Option<DateTime<Utc>>,
) -> ApiResult<Json<Vec<Event>>> {
    let (from, to) = time_range(state, from, to)?;
    let (motion, gaps) = match kind.as_deref() {
        None => (true, true),
        Some("motion") => (true, false),
        Some("gap") => (false, true),
        Some(other) => {
            return Err(ApiError::bad_request(format!(
                "the kind must be motion or gap, not “{other}”"
            )));
        }
    };
    let ids = cameras_for(state, who, camera_id, Permission::CamerasView).await?;
    let db = &state.dbs().records;
    let mut out = Vec::new();
    if motion {
        for e in recordings::motion_events_in_range(db, Some(&ids), from, to, MAX_ROWS)
            .await
            .map_err(core_err)?
        {
            out.push(Event {
                kind: "motion".into(),
                camera_id: e.camera_id,
                started_at: e.started_at,
                ended_at: e.ended_at,
                score: Some(e.peak_score),
                reason: None,
            });
        }
    }
    if gaps {
        for id in &ids {
            for g in
                recordings::gaps_in_range(db, CameraId(*id), from, to).await.map_err(core_err)?
            {
                out.push(Event {
                    kind: "gap".into(),
                    camera_id: g.camera_id,
                    started_at: g.started_at,
                    ended_at: g.ended_at,
                    score: None,
                    reason: Some(g.reason),
                });
            }
        }
    }
    out.sort_by_key(|e| (e.started_at, e.camera_id));
    Ok(Json(out))
}

/// Parse `bytes=a-b`, `bytes=a-` or `bytes=-n` against a file of `len` bytes into an inclusive
/// range; None: unsatisfiable. Multiple ranges are answered with the first.
fn parse_range(header: &str, len: u64) -> Option<(u64, u64)> {
    let spec = header.trim().strip_prefix("bytes=")?.split(',').next()?.trim();
    let (a, b) = spec.split_once('-')?;
    let (start, end) = if a.is_empty() {
        let n: u64 = b.parse().ok()?;
        if n == 0 {
            return None;
        }
        (len.saturating_sub(n), len.checked_sub(1)?)
    } else {
        let start: u64 = a.parse().ok()?;
        let end =
            if b.is_empty() { start.saturating_add(MAX_CHUNK - 1) } else { b.parse().ok()? };
        (start, end.min(len.checked_sub(1)?))
    };
    (start <= end && start < len).then_some((start, end))
}

#[OpenApi(tag = "ApiTags::Recordings")]
impl RecordingsApi {
    /// Segments of one camera (or of every camera the caller may play back) that overlap a
    /// time range (default: the last 24 hours), oldest first.
    #[oai(path = "/recordings", method = "get", operation_id = "listRecordings")]
    async fn list(
        &self,
        state: Data<&AppState>,
        auth: Scoped<perm::CamerasPlayback>,
        camera_id: Query<Option<i64>>,
        from: Query<Option<DateTime<Utc>>>,
        to: Query<Option<DateTime<Utc>>>,
        limit: Query<Option<u64>>,
    ) -> ApiResult<Json<Vec<Recording>>> {
        let (from, to) = time_range(&state, from.0, to.0)?;
        let ids = cameras_for(&state, &auth, camera_id.0, Permission::CamerasPlayback).await?;
        let limit = limit.0.unwrap_or(MAX_ROWS).clamp(1, MAX_ROWS);
        let rows = recordings::list_segments(&state.dbs().records, Some(&ids), from, to, limit)
            .await
            .map_err(core_err)?;
        Ok(Json(rows.into_iter().map(Recording::from).collect()))
    }

    /// A small JPEG of the camera's key frame at or before `at` (default 240 pixels wide), from
    /// the recording covering that moment, also the one being recorded now. Pictures are
    /// cached; a moment of a finished recording may be cached by the browser for a day.
    /// Nothing recorded then: 404.
    #[oai(path = "/cameras/:id/thumbnail.jpg", method = "get", operation_id = "getCameraThumbnail")]
    async fn thumbnail(
        &self,
        state: Data<&AppState>,
        auth: Scoped<perm::CamerasPlayback>,
        id: Path<i64>,
        at: Query<DateTime<Utc>>,
        width: Query<Option<u32>>,
    ) -> ApiResult<ThumbnailResponse> {
        let cam = load_for(&state, &auth, id.0, Permission::CamerasPlayback).await?;
        let width = width.0.unwrap_or(THUMB_WIDTH);
        if !THUMB_WIDTHS.contains(&width) {
            return Err(ApiError::bad_request(format!(
                "width must be between {} and {} pixels",
                THUMB_WIDTHS.start(),
                THUMB_WIDTHS.end()
            )));
        }
        let thumb = match state.nvr().thumbnail(CameraId(cam.id), at.0, width).await {
            Ok(thumb) => thumb,
            Err(e) => {
                tracing::debug!(camera = cam.id, at = %at.0, error = %e, "no thumbnail");
                return Err(match e {
                    NvrError::NoFootage => ApiError::new(
                        poem::http::StatusCode::NOT_FOUND,
                        "nothing was recorded by this camera at that moment",
                    ),
                    e => super::cameras::nvr_err(e),
                });
            }
        };
        let cache = if thumb.settled { "private, max-age=86400" } else { "private, max-age=5" };
        Ok(ThumbnailResponse::Ok(
            Binary(thumb.jpeg.data.clone()),
            cache.to_owned(),
            thumb.frame_at.to_rfc3339_opts(chrono::SecondsFormat::Millis, true),
        ))
    }

    /// One segment's MP4 file; honours `Range` so players can seek.
    #[oai(path = "/recordings/:id/media", method = "get", operation_id = "getRecordingMedia")]
    async fn media(
        &self,
        state: Data<&AppState>,
        auth: Scoped<perm::CamerasPlayback>,
        id: Path<i64>,
        #[oai(name = "Range")] range: Header<Option<String>>,
    ) -> ApiResult<Media> {
        let seg = recordings::get_segment(&state.dbs().records, SegmentId(id.0))
            .await
            .map_err(core_err)?;
        load_for(&state, &auth, seg.camera_id, Permission::CamerasPlayback).await.map_err(|e| {
            match e {
                ApiError::NotFound(_) => ApiError::new(
                    poem::http::StatusCode::NOT_FOUND,
                    format!("recording {} does not exist", id.0),
                ),
                other => other,
            }
        })?;
        // The local file, or a copy fetched from a storage module once retention removed it.
        let path = state
            .nvr()
            .storage()
            .segment_file(&seg)
            .await
            .unwrap_or_else(|| state.nvr().data_dir().join(&seg.path));
        let mut file = tokio::fs::File::open(&path).await.map_err(|e| {
            tracing::error!(path = %path.display(), error = %e, "indexed segment cannot be opened");
            ApiError::new(
                poem::http::StatusCode::NOT_FOUND,
                format!("the file of recording {} is gone (run pentavision check)", id.0),
            )
        })?;
        let len = file.metadata().await.map(|m| m.len()).unwrap_or(0);
        let bytes = "bytes".to_owned();
        let Some(header) = range.0 else {
            audit_view(&state, &auth, &seg).await;
            return Ok(Media::Full(Binary(Body::from_async_read(file)), bytes, len));
        };
        let Some((start, end)) = parse_range(&header, len) else {
            return Ok(Media::NotSatisfiable(
                Json(crate::problem::Problem::new(
                    poem::http::StatusCode::RANGE_NOT_SATISFIABLE,
                    format!("the range “{header}” is outside the {len}-byte file"),
                )),
                format!("bytes */{len}"),
            ));
        };
        if start == 0 {
            audit_view(&state, &auth, &seg).await;
        }
        file.seek(SeekFrom::Start(start)).await.map_err(|e| {
            tracing::error!(error = %e, "seek in segment");
            ApiError::new(poem::http::StatusCode::INTERNAL_SERVER_ERROR, "cannot read the file")
        })?;
        let n = end - start + 1;
        Ok(Media::Partial(
            Binary(Body::from_async_read(file.take(n))),
            bytes,
            format!("bytes {start}-{end}/{len}"),
            n,
        ))
    }
}

async fn audit_view(state: &AppState, who: &Principal, seg: &segment::Model) {
    who.audit(
        state,
        "video.view",
        "segment",
        &seg.id.to_string(),
        serde_json::json!({ "camera_id": seg.camera_id, "started_at": seg.started_at }),
    )
    .await;
}

#[cfg(test)]
mod tests {
    use super::parse_range;

    #[test]
    fn ranges_are_parsed_like_browsers_send_them() {
        assert_eq!(parse_range("bytes=0-99", 1000), Some((0, 99)));
        assert_eq!(parse_range("bytes=900-", 1000), Some((900, 999)));
        assert_eq!(parse_range("bytes=-100", 1000), Some((900, 999)));
        assert_eq!(parse_range("bytes=0-5000", 1000), Some((0, 999)));
        assert_eq!(parse_range("bytes=0-", 100_000_000), Some((0, super::MAX_CHUNK - 1)));
        assert_eq!(parse_range("bytes=5-1,7-8", 1000), None);
        assert_eq!(parse_range("bytes=1000-", 1000), None);
        assert_eq!(parse_range("bytes=-0", 1000), None);
        assert_eq!(parse_range("items=0-1", 1000), None);
        assert_eq!(parse_range("bytes=0-0", 0), None);
    }
}
