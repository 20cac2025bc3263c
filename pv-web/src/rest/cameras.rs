//! Cameras: add, list, read, change and remove cameras, with their live recorder status.
//!
//! Stream credentials are write-only: a password is sealed with the server key before it is
//! stored and is never returned (the camera shows `has_password`); credentials written into a
//! URL (`rtsp://user:pass@host/…`) are moved into the credential fields, so URLs are stored and
//! shown without them. Every change is an audit event and is applied to the running recorder at
//! once (only a change of a setting the recorder uses restarts it).

use chrono::{DateTime, Utc};
use poem::web::Data;
use poem_openapi::param::{Path, Query};
use poem_openapi::payload::{Binary, Json};
use poem_openapi::types::MaybeUndefined;
use poem_openapi::{ApiResponse, Object, OpenApi};
use pv_core::cameras::{self, CameraSettings};
use pv_core::db::records::camera;
use pv_core::ids::CameraId;
use pv_security::rbac::{self, Permission, Resource};

use super::ApiTags;
use super::auth::{Created, NoContent};
use super::error::{ApiError, ApiResult};
use crate::auth::{Principal, Scoped, perm};
use crate::state::AppState;

/// The camera API.
#[derive(Debug, Clone, Copy)]
pub struct CamerasApi;

/// What the recorder is doing right now.
#[derive(Debug, Clone, Object)]
#[oai(skip_serializing_if_is_none)]
pub struct CameraStatus {
    /// `new`, `streaming`, `reconnecting`, `failed` or `disabled`.
    pub state: String,
    /// Why, when reconnecting, failed or disabled (the last error).
    pub reason: Option<String>,
    /// The recorder backend: `native` (the built-in recorder), else `gstreamer` or `ffmpeg`
    /// when the one before could not record the camera.
    pub backend: Option<String>,
    /// Why the backend is not the one configured first (what the one before could not do).
    pub backend_reason: Option<String>,
    /// Since when (None: not recording in this server process).
    pub since: Option<DateTime<Utc>>,
    /// Motion is going on now (the camera's motion detection saw it start and not yet end).
    pub motion: bool,
}

/// A camera.
#[derive(Debug, Clone, Object)]
#[oai(skip_serializing_if_is_none)]
pub struct Camera {
    /// Id.
    pub id: i64,
    /// Unique name.
    pub name: String,
    /// Main (recorded) stream, without credentials.
    pub main_url: String,
    /// Sub stream (motion detection, live grid), without credentials.
    pub sub_url: Option<String>,
    /// Stream login.
    pub username: Option<String>,
    /// Whether a stream password is stored (it is never shown).
    pub has_password: bool,
    /// Recorded at all.
    pub enabled: bool,
    /// The property it belongs to.
    pub property_id: Option<i64>,
    /// Zone within the property.
    pub zone: Option<String>,
    /// IANA time zone (None: the property's).
    pub timezone: Option<String>,
    /// `continuous`, `motion` or `off`.
    pub recording_mode: String,
    /// RTSP transport: `tcp` (default) or `udp`.
    pub transport: String,
    /// Segment length in seconds (None: the server default).
    pub segment_seconds: Option<i32>,
    /// Seconds kept before motion.
    pub pre_roll_seconds: i32,
    /// Seconds kept after motion.
    pub post_roll_seconds: i32,
    /// Days footage is kept (None: the server default).
    pub retention_days: Option<i32>,
    /// Most bytes of footage kept (None: no limit but the disk guard).
    pub retention_max_bytes: Option<i64>,
    /// Preferred recorder backend (None: the built-in one, then GStreamer, then ffmpeg).
    pub recorder_backend: Option<String>,
    /// MAC address last seen for the camera's address.
    pub mac_address: Option<String>,
    /// Where its segments are written, relative to the data directory.
    pub ingest_dir: String,
    /// Video codec seen in the stream.
    pub video_codec: Option<String>,
    /// Audio codec seen in the stream.
    pub audio_codec: Option<String>,
    /// Frame width.
    pub width: Option<i32>,
    /// Frame height.
    pub height: Option<i32>,
    /// The live recorder status.
    pub status: CameraStatus,
    /// The RTMP push, when one runs.
    pub rtmp: Option<RtmpStatus>,
    /// Storage modules its segments are uploaded to, first choice first (the next one takes
    /// over while an earlier one fails); empty: every enabled module in priority order.
    pub storage_targets: Vec<StorageTarget>,
    /// Last time footage arrived.
    pub last_seen_at: Option<DateTime<Utc>>,
    /// Created at.
    pub created_at: DateTime<Utc>,
    /// Last changed at.
    pub updated_at: DateTime<Utc>,
}

/// One storage target of a camera.
#[derive(Debug, Clone, Object)]
pub struct StorageTarget {
    /// The storage module.
    pub module_id: i64,
    /// `all`: every segment; `motion`: only segments with motion in or near them.
    pub upload: String,
    /// With `motion`: segments this many seconds before and after motion go too (0 to 600).
    pub padding_seconds: i32,
}

/// `POST /cameras`.
#[derive(Debug, Clone, Object)]
#[oai(skip_serializing_if_is_none)]
pub struct NewCamera {
    /// Unique name (1–128 characters).
    pub name: String,
    /// Main stream, `rtsp://host[:port]/path` (credentials in the URL are moved to the
    /// credential fields).
    pub main_url: String,
    /// Sub stream URL.
    pub sub_url: Option<String>,
    /// Stream login.
    pub username: Option<String>,
    /// Stream password (stored encrypted, never shown back).
    pub password: Option<String>,
    /// Record it (default true).
    pub enabled: Option<bool>,
    /// Property.
    pub property_id: Option<i64>,
    /// Zone within the property.
    pub zone: Option<String>,
    /// IANA time zone, e.g. `Europe/Paris`.
    pub timezone: Option<String>,
    /// `continuous` (default), `motion` or `off`.
    pub recording_mode: Option<String>,
    /// Storage modules to upload to, first choice first (empty: the default of every enabled
    /// module).
    pub storage_targets: Option<Vec<StorageTarget>>,
    /// `tcp` (default) or `udp`.
    pub transport: Option<String>,
    /// Segment length in seconds, 1–3600.
    pub segment_seconds: Option<i32>,
    /// Pre-roll in seconds, 0–60 (default 5).
    pub pre_roll_seconds: Option<i32>,
    /// Post-roll in seconds, 0–600 (default 10).
    pub post_roll_seconds: Option<i32>,
    /// Days to keep footage.
    pub retention_days: Option<i32>,
    /// Most bytes of footage to keep.
    pub retention_max_bytes: Option<i64>,
    /// `native`, `gstreamer` or `ffmpeg`.
    pub recorder_backend: Option<String>,
}

/// `PATCH /cameras/{id}`: only the fields present change; `null` clears a field.
#[derive(Debug, Clone, Object)]
#[oai(skip_serializing_if_is_none)]
pub struct CameraPatch {
    /// Name.
    pub name: Option<String>,
    /// Main stream URL.
    pub main_url: Option<String>,
    /// Sub stream URL.
    pub sub_url: MaybeUndefined<String>,
    /// Stream login.
    pub username: MaybeUndefined<String>,
    /// Stream password (`null` removes it).
    pub password: MaybeUndefined<String>,
    /// Record it.
    pub enabled: Option<bool>,
    /// Property.
    pub property_id: MaybeUndefined<i64>,
    /// Zone.
    pub zone: MaybeUndefined<String>,
    /// IANA time zone.
    pub timezone: MaybeUndefined<String>,
    /// `continuous`, `motion` or `off`.
    pub recording_mode: Option<String>,
    /// Storage modules to upload to, first choice first (empty: the default).
    pub storage_targets: Option<Vec<StorageTarget>>,
    /// `tcp` or `udp`.
    pub transport: Option<String>,
    /// Segment length in seconds.
    pub segment_seconds: MaybeUndefined<i32>,
    /// Pre-roll in seconds.
    pub pre_roll_seconds: Option<i32>,
    /// Post-roll in seconds.
    pub post_roll_seconds: Option<i32>,
    /// Days to keep footage.
    pub retention_days: MaybeUndefined<i32>,
    /// Most bytes of footage to keep.
    pub retention_max_bytes: MaybeUndefined<i64>,
    /// `native`, `gstreamer` or `ffmpeg`.
    pub recorder_backend: MaybeUndefined<String>,
}

/// A camera's RTMP push.
#[derive(Debug, Clone, Object)]
#[oai(skip_serializing_if_is_none)]
pub struct RtmpStatus {
    /// The target with its stream key hidden.
    pub target: String,
    /// `waiting`, `connecting`, `pushing`, `reconnecting` or `stopped`.
    pub state: String,
    /// Why, when waiting or reconnecting.
    pub reason: Option<String>,
}

/// `POST /cameras/{id}/rtmp`.
#[derive(Debug, Clone, Object)]
#[oai(skip_serializing_if_is_none)]
pub struct RtmpTarget {
    /// `rtmp://host[:port]/app/stream-key` or `rtmps://…` (stored encrypted, never shown back
    /// with its key).
    pub url: String,
}

/// One weekly recording window.
#[derive(Debug, Clone, Object)]
#[oai(skip_serializing_if_is_none)]
pub struct ScheduleWindow {
    /// `continuous`, `motion` or `off` while the window is active.
    pub mode: String,
    /// Days it starts on: `mon`, `tue`, `wed`, `thu`, `fri`, `sat`, `sun`.
    pub days: Vec<String>,
    /// Local start, `HH:MM`.
    pub start: String,
    /// Local end, `HH:MM` (`24:00` = midnight at the end of the day); before `start`: the
    /// window runs past midnight.
    pub end: String,
    /// IANA time zone of `start`/`end` (absent: the camera's).
    pub timezone: Option<String>,
    /// Higher wins where windows overlap (ties keep more footage).
    pub priority: Option<i32>,
}

/// A camera's schedule and what it records right now.
#[derive(Debug, Clone, Object)]
#[oai(skip_serializing_if_is_none)]
pub struct Schedule {
    /// The camera's time zone (its own, else its property's, else UTC).
    pub timezone: String,
    /// The camera's local time now, `YYYY-MM-DDTHH:MM:SS`.
    pub local_time: String,
    /// What it records now.
    pub mode_now: String,
    /// Whether a window decided `mode_now` (else the camera's own `recording_mode`).
    pub from_schedule: bool,
    /// The windows. Outside all of them the camera's `recording_mode` applies.
    pub windows: Vec<ScheduleWindow>,
}

/// `PUT /cameras/{id}/schedule`.
#[derive(Debug, Clone, Object)]
#[oai(skip_serializing_if_is_none)]
pub struct ScheduleBody {
    /// The new windows (an empty list removes the schedule).
    pub windows: Vec<ScheduleWindow>,
}

const DAYS: [&str; 7] = ["mon", "tue", "wed", "thu", "fri", "sat", "sun"];

fn parse_hhmm(field: &str, text: &str) -> ApiResult<i32> {
    let bad =
        || ApiError::bad_request(format!("{field} “{text}” is not a time HH:MM (00:00 to 24:00)"));
    let (h, m) = text.split_once(':').ok_or_else(bad)?;
    let (h, m): (i32, i32) = (h.parse().map_err(|_| bad())?, m.parse().map_err(|_| bad())?);
    if !(0..=24).contains(&h) || !(0..60).contains(&m) || (h == 24 && m != 0) {
        return Err(bad());
    }
    Ok(h * 60 + m)
}

fn window_json(w: &pv_core::db::records::recording_schedule::Model) -> ScheduleWindow {
    let hhmm = |m: i32| format!("{:02}:{:02}", m / 60, m % 60);
    ScheduleWindow {
        mode: w.mode.clone(),
        days: DAYS
            .iter()
            .enumerate()
            .filter(|(i, _)| w.days_of_week & (1 << i) != 0)
            .map(|(_, d)| (*d).to_owned())
            .collect(),
        start: hhmm(w.start_minute),
        end: hhmm(w.end_minute),
        timezone: w.timezone.clone(),
        priority: Some(w.priority),
    }
}

fn zone_json(z: &pv_core::db::records::motion_zone::Model) -> MotionZone {
    MotionZone {
        name: z.name.clone(),
        polygon: crate::nvr::parse_polygon(&z.polygon)
            .unwrap_or_default()
            .into_iter()
            .map(|(x, y)| vec![x, y])
            .collect(),
        sensitivity: Some(z.sensitivity),
        mask: Some(z.is_mask),
    }
}

async fn schedule_of(state: &AppState, cam: &camera::Model) -> ApiResult<Schedule> {
    let now = state.nvr().mode_now(cam).await.map_err(core_err)?;
    let windows = cameras::schedules(&state.dbs().records, cam.id).await.map_err(core_err)?;
    Ok(Schedule {
        timezone: now.timezone,
        local_time: now.local_time.format("%Y-%m-%dT%H:%M:%S").to_string(),
        mode_now: now.mode.as_str().to_owned(),
        from_schedule: now.from_schedule,
        windows: windows.iter().map(window_json).collect(),
    })
}

/// `POST /cameras/probe`.
#[derive(Debug, Clone, Object)]
#[oai(skip_serializing_if_is_none)]
pub struct ProbeRequest {
    /// `rtsp://host[:port]/path` (credentials may be in the URL or the fields below).
    pub url: String,
    /// Stream login.
    pub username: Option<String>,
    /// Stream password (used for this probe only, never stored or shown).
    pub password: Option<String>,
    /// `tcp` (default) or `udp`.
    pub transport: Option<String>,
}

/// What a stream carries.
#[derive(Debug, Clone, Object)]
#[oai(skip_serializing_if_is_none)]
pub struct ProbeResult {
    /// `h264`, `h265`, …
    pub video_codec: String,
    /// Frame width.
    pub width: Option<u32>,
    /// Frame height.
    pub height: Option<u32>,
    /// Frames per second.
    pub fps: Option<f64>,
    /// `aac`, `pcma`, `pcmu`, … (None: no audio).
    pub audio_codec: Option<String>,
    /// Whether PentaVision records this stream without transcoding.
    pub recordable: bool,
}

/// A camera that answered ONVIF discovery.
#[derive(Debug, Clone, Object)]
#[oai(skip_serializing_if_is_none)]
pub struct DiscoveredCamera {
    /// Its endpoint reference (stable per device).
    pub endpoint: String,
    /// Its address, from its ONVIF service URL.
    pub host: Option<String>,
    /// ONVIF device service URLs.
    pub xaddrs: Vec<String>,
    /// The name the device gives itself.
    pub name: Option<String>,
    /// Its model.
    pub hardware: Option<String>,
    /// Whether a camera with this address is already added.
    pub known: bool,
}

/// A motion zone or mask.
#[derive(Debug, Clone, Object)]
#[oai(skip_serializing_if_is_none)]
pub struct MotionZone {
    /// Shown name.
    pub name: String,
    /// Corners `[[x, y], …]` (at least three) in 0..1 of the frame, from the top left.
    pub polygon: Vec<Vec<f64>>,
    /// 0..1, 1 most sensitive (default 0.5; ignored for masks).
    pub sensitivity: Option<f64>,
    /// A mask: motion inside is ignored everywhere.
    pub mask: Option<bool>,
}

/// `PUT /cameras/{id}/motion-zones`.
#[derive(Debug, Clone, Object)]
#[oai(skip_serializing_if_is_none)]
pub struct MotionZonesBody {
    /// The zones and masks (none: the whole frame at the default sensitivity).
    pub zones: Vec<MotionZone>,
}

/// A JPEG picture.
#[derive(ApiResponse)]
pub enum JpegResponse {
    /// The camera's latest key frame.
    #[oai(status = 200, content_type = "image/jpeg")]
    Ok(Binary<Vec<u8>>, #[oai(header = "Cache-Control")] String),
}

/// An MP4 download.
#[derive(ApiResponse)]
pub enum Mp4Download {
    /// The footage of the range as one MP4 (not transcoded).
    #[oai(status = 200, content_type = "video/mp4")]
    Ok(
        Binary<poem::Body>,
        #[oai(header = "Content-Disposition")] String,
        #[oai(header = "Content-Length")] u64,
    ),
}

/// The push, as started.
#[derive(ApiResponse)]
pub enum RtmpResponse {
    /// Started (it connects and reconnects by itself; see the camera's `rtmp` field).
    #[oai(status = 200)]
    Ok(Json<RtmpStatus>),
}

/// An NVR error as a problem response.
pub fn nvr_err(e: crate::nvr::NvrError) -> ApiError {
    let p = crate::problem::Problem::from_kind(e.kind(), &e);
    ApiError::new(crate::problem::status_for(e.kind()), p.detail)
}

/// One camera.
#[derive(ApiResponse)]
pub enum CameraResponse {
    /// The camera.
    #[oai(status = 200)]
    Ok(Json<Camera>),
}

/// The RBAC resource of a camera row.
pub fn resource(cam: &camera::Model) -> Resource {
    Resource::Camera { id: cam.id, property_id: cam.property_id, zone: cam.zone.clone() }
}

/// Load a camera and check `permission` on it; a camera the caller may not see is reported as
/// missing (404), one they may see but not act on as forbidden (403).
pub async fn load_for(
    state: &AppState,
    who: &Principal,
    id: i64,
    permission: Permission,
) -> ApiResult<camera::Model> {
    let cam = cameras::get(&state.dbs().records, id).await.map_err(core_err)?;
    let now = state.clock().now();
    if rbac::authorize(&who.subject, Permission::CamerasView, &resource(&cam), now).is_err() {
        return Err(ApiError::new(
            poem::http::StatusCode::NOT_FOUND,
            format!("camera {id} does not exist"),
        ));
    }
    who.authorize(state, permission, &resource(&cam))?;
    Ok(cam)
}

/// A pv-core error as a problem response.
pub fn core_err(e: pv_core::Error) -> ApiError {
    let p = crate::problem::Problem::from_kind(e.kind(), &e);
    ApiError::new(crate::problem::status_for(e.kind()), p.detail)
}

/// Render a camera row with its live status.
pub async fn render(state: &AppState, cam: camera::Model) -> Camera {
    let live = state.nvr().status(CameraId(cam.id)).await;
    let motion = state.nvr().motion_now(CameraId(cam.id));
    let status = match live {
        Some(s) => CameraStatus {
            state: s.state,
            reason: s.reason,
            backend: Some(s.backend),
            backend_reason: s.backend_reason,
            since: Some(s.since),
            motion,
        },
        None => CameraStatus {
            state: cam.status.clone(),
            reason: cam.status_reason.clone(),
            backend: cam.recorder_backend.clone(),
            backend_reason: None,
            since: None,
            motion,
        },
    };
    let rtmp = state.nvr().push_status(CameraId(cam.id)).await.map(|(target, s)| RtmpStatus {
        target,
        state: s.as_str().to_owned(),
        reason: s.reason().map(str::to_owned),
    });
    let ingest_dir =
        crate::nvr::camera_dir(&cam).map(|d| d.to_string()).unwrap_or_else(|_| String::new());
    let storage_targets = match pv_core::storage::camera_targets(&state.dbs().records, cam.id).await
    {
        Ok(rows) => rows
            .into_iter()
            .map(|t| StorageTarget {
                module_id: t.module_id,
                upload: t.mode.as_str().to_owned(),
                padding_seconds: t.padding_seconds,
            })
            .collect(),
        Err(e) => {
            tracing::warn!(camera = cam.id, error = %e, "cannot read the camera's storage targets");
            Vec::new()
        }
    };
    Camera {
        id: cam.id,
        name: cam.name,
        main_url: cam.main_url,
        sub_url: cam.sub_url,
        username: cam.username,
        has_password: cam.password.is_some(),
        enabled: cam.enabled,
        property_id: cam.property_id,
        zone: cam.zone,
        timezone: cam.timezone,
        recording_mode: cam.recording_mode,
        transport: cam.transport,
        segment_seconds: cam.segment_seconds,
        pre_roll_seconds: cam.pre_roll_seconds,
        post_roll_seconds: cam.post_roll_seconds,
        retention_days: cam.retention_days,
        retention_max_bytes: cam.retention_max_bytes,
        recorder_backend: cam.recorder_backend,
        mac_address: cam.mac_address,
        ingest_dir,
        video_codec: cam.video_codec,
        audio_codec: cam.audio_codec,
        width: cam.width,
        height: cam.height,
        status,
        rtmp,
        storage_targets,
        last_seen_at: cam.last_seen_at,
        created_at: cam.created_at,
        updated_at: cam.updated_at,
    }
}

/// Storage targets as pv-core's specs: modes and paddings checked, no module twice.
fn target_specs(targets: Vec<StorageTarget>) -> ApiResult<Vec<pv_core::storage::TargetSpec>> {
    if targets.len() > 16 {
        return Err(ApiError::bad_request("a camera has at most 16 storage targets"));
    }
    let mut seen = std::collections::HashSet::new();
    let mut out = Vec::with_capacity(targets.len());
    for t in targets {
        if !seen.insert(t.module_id) {
            return Err(ApiError::bad_request("each storage module can be a target only once"));
        }
        if t.upload != "all" && t.upload != "motion" {
            return Err(ApiError::bad_request(
                "a storage target uploads all segments or only those with motion",
            ));
        }
        if !(0..=600).contains(&t.padding_seconds) {
            return Err(ApiError::bad_request(
                "the padding around motion is between 0 and 600 seconds",
            ));
        }
        out.push(pv_core::storage::TargetSpec {
            module_id: t.module_id,
            mode: pv_core::storage::UploadMode::parse(&t.upload).map_err(core_err)?,
            padding_seconds: t.padding_seconds,
            enabled: true,
        });
    }
    Ok(out)
}

/// A random hex suffix for temporary file names.
fn rand_suffix() -> String {
    let mut bytes = [0u8; 8];
    rand::fill(&mut bytes);
    hex::encode(bytes)
}

/// Split `rtsp://user:pass@host/…` into the bare URL and its (percent-decoded) credentials,
/// after checking it is a usable RTSP URL.
fn split_url(field: &str, url: &str) -> ApiResult<(String, Option<String>, Option<String>)> {
    let url = url.trim();
    pv_media::record::check_rtsp_url(url).map_err(|e| match e {
        pv_media::Error::InvalidUrl { url, reason } => {
            ApiError::bad_request(format!("the {field} URL “{url}” is not usable: {reason}"))
        }
        e => ApiError::bad_request(format!("the {field} URL is not usable: {e}")),
    })?;
    let bare = pv_media::record::redact_url(url);
    let (_, rest) = url.split_once("://").unwrap_or(("", url));
    let authority = rest.split('/').next().unwrap_or_default();
    let Some((userinfo, _)) = authority.rsplit_once('@') else {
        return Ok((bare, None, None));
    };
    let (user, pass) = match userinfo.split_once(':') {
        Some((u, p)) => (u, Some(p)),
        None => (userinfo, None),
    };
    Ok((bare, Some(percent_decode(user)), pass.map(percent_decode)))
}

fn percent_decode(s: &str) -> String {
    let bytes = s.as_bytes();
    let mut out = Vec::with_capacity(bytes.len());
    let mut i = 0;
    while i < bytes.len() {
        if bytes[i] == b'%'
            && let Some(hex) = s.get(i + 1..i + 3)
            && let Ok(b) = u8::from_str_radix(hex, 16)
        {
            out.push(b);
            i += 3;
            continue;
        }
        out.push(bytes[i]);
        i += 1;
    }
    String::from_utf8_lossy(&out).into_owned()
}

/// A PATCH field: None when absent, `Some(None)` for `null`, `Some(Some(v))` for a value.
fn patch<T>(field: MaybeUndefined<T>) -> Option<Option<T>> {
    match field {
        MaybeUndefined::Undefined => None,
        MaybeUndefined::Null => Some(None),
        MaybeUndefined::Value(v) => Some(Some(v)),
    }
}

/// A `POST` field as a PATCH field: absent stays absent (the default applies).
fn given<T>(field: Option<T>) -> MaybeUndefined<T> {
    field.map_or(MaybeUndefined::Undefined, MaybeUndefined::Value)
}

impl From<NewCamera> for CameraPatch {
    fn from(b: NewCamera) -> Self {
        Self {
            name: Some(b.name),
            main_url: Some(b.main_url),
            sub_url: given(b.sub_url),
            username: given(b.username),
            password: given(b.password),
            enabled: b.enabled,
            property_id: given(b.property_id),
            zone: given(b.zone),
            timezone: given(b.timezone),
            recording_mode: b.recording_mode,
            transport: b.transport,
            segment_seconds: given(b.segment_seconds),
            pre_roll_seconds: b.pre_roll_seconds,
            post_roll_seconds: b.post_roll_seconds,
            retention_days: given(b.retention_days),
            retention_max_bytes: given(b.retention_max_bytes),
            recorder_backend: given(b.recorder_backend),
            storage_targets: b.storage_targets,
        }
    }
}

/// A create or change request as pv-core's patch: URLs checked and stripped of credentials
/// (which move to the credential fields unless the request sets those), a blank sub stream
/// or login cleared, the password sealed, the time zone checked. The rest pv-core checks.
fn to_patch(state: &AppState, p: CameraPatch) -> ApiResult<cameras::CameraPatch> {
    let mut out = cameras::CameraPatch {
        name: p.name,
        enabled: p.enabled,
        property_id: patch(p.property_id),
        zone: patch(p.zone),
        recording_mode: p.recording_mode,
        transport: p.transport,
        segment_seconds: patch(p.segment_seconds),
        pre_roll_seconds: p.pre_roll_seconds,
        post_roll_seconds: p.post_roll_seconds,
        retention_days: patch(p.retention_days),
        retention_max_bytes: patch(p.retention_max_bytes),
        recorder_backend: patch(p.recorder_backend),
        ..cameras::CameraPatch::default()
    };
    if let Some(url) = p.main_url {
        let (bare, user, pass) = split_url("main stream", &url)?;
        out.main_url = Some(bare);
        if let Some(user) = user {
            out.username = Some(Some(user).filter(|u| !u.is_empty()));
            out.password_sealed = Some(seal(state, pass.as_deref())?);
        }
    }
    match p.sub_url {
        MaybeUndefined::Value(u) if !u.trim().is_empty() => {
            out.sub_url = Some(Some(split_url("sub stream", &u)?.0));
        }
        MaybeUndefined::Value(_) | MaybeUndefined::Null => out.sub_url = Some(None),
        MaybeUndefined::Undefined => {}
    }
    if let Some(u) = patch(p.username) {
        out.username = Some(u.filter(|u| !u.is_empty()));
    }
    if let Some(pw) = patch(p.password) {
        out.password_sealed = Some(seal(state, pw.as_deref())?);
    }
    if let Some(tz) = patch(p.timezone) {
        check_timezone(tz.as_deref())?;
        out.timezone = Some(tz);
    }
    Ok(out)
}

fn check_timezone(tz: Option<&str>) -> ApiResult<()> {
    if let Some(tz) = tz
        && tz.parse::<chrono_tz::Tz>().is_err()
    {
        return Err(ApiError::bad_request(format!(
            "the time zone “{tz}” is not a known time zone name such as Europe/Paris"
        )));
    }
    Ok(())
}

fn seal(state: &AppState, password: Option<&str>) -> ApiResult<Option<String>> {
    match password {
        Some(p) if !p.is_empty() => Ok(Some(state.key().seal(p)?)),
        _ => Ok(None),
    }
}

/// What an audit event says about a camera as stored (never its credentials).
fn audit_details(cam: &camera::Model) -> serde_json::Value {
    serde_json::json!({
        "name": cam.name,
        "main_url": cam.main_url,
        "property_id": cam.property_id,
        "recording_mode": cam.recording_mode,
        "enabled": cam.enabled,
    })
}

#[OpenApi(tag = "ApiTags::Cameras")]
impl CamerasApi {
    /// The cameras the caller may see, with their live status.
    #[oai(path = "/cameras", method = "get", operation_id = "listCameras")]
    async fn list(
        &self,
        state: Data<&AppState>,
        auth: Scoped<perm::CamerasView>,
    ) -> ApiResult<Json<Vec<Camera>>> {
        let filter =
            rbac::camera_filter(&auth.subject, Permission::CamerasView, state.clock().now());
        let mut out = Vec::new();
        for cam in cameras::list(&state.dbs().records).await.map_err(core_err)? {
            if filter.allows(cam.id, cam.property_id, cam.zone.as_deref()) {
                out.push(render(&state, cam).await);
            }
        }
        Ok(Json(out))
    }

    /// Add a camera; it starts recording at once when enabled and its mode records.
    #[oai(path = "/cameras", method = "post", operation_id = "createCamera")]
    async fn create(
        &self,
        state: Data<&AppState>,
        auth: Scoped<perm::CamerasManage>,
        body: Json<NewCamera>,
    ) -> ApiResult<Created<Camera>> {
        let b = body.0;
        let target = b.property_id.map_or(Resource::Global, Resource::Property);
        auth.authorize(&state, Permission::CamerasManage, &target)?;
        let targets = b.storage_targets.clone().map(target_specs).transpose()?;
        let patch = to_patch(&state, b.into())?;
        let settings = CameraSettings::from_patch(&patch);
        let cam = cameras::create(&state.dbs().records, &settings, state.clock().now())
            .await
            .map_err(core_err)?;
        if let Some(targets) = targets {
            pv_core::storage::replace_camera_targets(&state.dbs().records, cam.id, &targets)
                .await
                .map_err(core_err)?;
        }
        auth.audit(&state, "camera.create", "camera", &cam.id.to_string(), audit_details(&cam))
            .await;
        let cam = state.nvr().camera_changed(CameraId(cam.id)).await.map_err(nvr_err)?;
        Ok(Created::Created(Json(render(&state, cam).await)))
    }

    /// One camera with its live status.
    #[oai(path = "/cameras/:id", method = "get", operation_id = "getCamera")]
    async fn get(
        &self,
        state: Data<&AppState>,
        auth: Scoped<perm::CamerasView>,
        id: Path<i64>,
    ) -> ApiResult<CameraResponse> {
        let cam = load_for(&state, &auth, id.0, Permission::CamerasView).await?;
        Ok(CameraResponse::Ok(Json(render(&state, cam).await)))
    }

    /// Change a camera; the recorder restarts only when a stream or recording setting changed.
    #[oai(path = "/cameras/:id", method = "patch", operation_id = "updateCamera")]
    async fn update(
        &self,
        state: Data<&AppState>,
        auth: Scoped<perm::CamerasManage>,
        id: Path<i64>,
        body: Json<CameraPatch>,
    ) -> ApiResult<CameraResponse> {
        let cam = load_for(&state, &auth, id.0, Permission::CamerasManage).await?;
        let targets = body.0.storage_targets.clone().map(target_specs).transpose()?;
        let patch = to_patch(&state, body.0)?;
        if let Some(targets) = targets {
            pv_core::storage::replace_camera_targets(&state.dbs().records, cam.id, &targets)
                .await
                .map_err(core_err)?;
        }
        if let Some(property) = patch.property_id
            && property != cam.property_id
        {
            let target = property.map_or(Resource::Global, Resource::Property);
            auth.authorize(&state, Permission::CamerasManage, &target)?;
        }
        let cam = cameras::update(&state.dbs().records, cam.id, &patch, state.clock().now())
            .await
            .map_err(core_err)?;
        auth.audit(&state, "camera.update", "camera", &cam.id.to_string(), audit_details(&cam))
            .await;
        let cam = state.nvr().camera_changed(CameraId(cam.id)).await.map_err(nvr_err)?;
        Ok(CameraResponse::Ok(Json(render(&state, cam).await)))
    }

    /// Remove a camera with its recordings (files and index). Needs `recordings.delete` too.
    #[oai(path = "/cameras/:id", method = "delete", operation_id = "deleteCamera")]
    async fn delete(
        &self,
        state: Data<&AppState>,
        auth: Scoped<perm::CamerasManage>,
        id: Path<i64>,
    ) -> ApiResult<NoContent> {
        let cam = load_for(&state, &auth, id.0, Permission::CamerasManage).await?;
        auth.authorize(&state, Permission::RecordingsDelete, &resource(&cam))?;
        let removed = state.nvr().delete_camera(CameraId(cam.id)).await.map_err(nvr_err)?;
        // Its live viewers end too (their pulls stop once the last lease goes).
        state.live().close_camera(cam.id).await;
        auth.audit(
            &state,
            "camera.delete",
            "camera",
            &cam.id.to_string(),
            serde_json::json!({ "name": cam.name, "segments_deleted": removed }),
        )
        .await;
        Ok(NoContent::Done)
    }

    /// Probe an RTSP stream before saving a camera: codec, resolution, frame rate, audio.
    /// Takes up to 10 seconds; a clear problem when the camera cannot be reached, refuses the
    /// login, has no such stream or sends something that is not video.
    #[oai(path = "/cameras/probe", method = "post", operation_id = "probeStream")]
    async fn probe(
        &self,
        _state: Data<&AppState>,
        _auth: Scoped<perm::CamerasManage>,
        body: Json<ProbeRequest>,
    ) -> ApiResult<Json<ProbeResult>> {
        let b = body.0;
        let (url, url_user, url_pass) = split_url("stream", &b.url)?;
        let transport = match b.transport.as_deref() {
            None | Some("tcp") => pv_media::record::Transport::Tcp,
            Some("udp") => pv_media::record::Transport::Udp,
            Some(other) => {
                return Err(ApiError::bad_request(format!(
                    "transport “{other}” is not tcp or udp"
                )));
            }
        };
        let user = b.username.or(url_user).filter(|u| !u.is_empty());
        let pass = b.password.or(url_pass);
        let info = tokio::task::spawn_blocking(move || {
            pv_media::probe::probe(
                &url,
                user.as_deref(),
                pass.as_deref(),
                transport,
                std::time::Duration::from_secs(10),
            )
        })
        .await
        .map_err(|_| ApiError::new(poem::http::StatusCode::INTERNAL_SERVER_ERROR, "probe failed"))?
        .map_err(|e| {
            let p = crate::problem::Problem::from_kind(e.kind(), &e);
            ApiError::new(crate::problem::status_for(e.kind()), p.detail)
        })?;
        let recordable = matches!(info.video_codec.as_str(), "h264" | "h265");
        Ok(Json(ProbeResult {
            video_codec: info.video_codec,
            width: info.width,
            height: info.height,
            fps: info.fps,
            audio_codec: info.audio_codec,
            recordable,
        }))
    }

    /// Look for ONVIF cameras on the local network (WS-Discovery, about 3 seconds).
    #[oai(path = "/cameras/discover", method = "post", operation_id = "discoverCameras")]
    async fn discover(
        &self,
        state: Data<&AppState>,
        auth: Scoped<perm::CamerasManage>,
    ) -> ApiResult<Json<Vec<DiscoveredCamera>>> {
        let target = state.config().recording.discovery_target;
        let found = tokio::task::spawn_blocking(move || {
            pv_media::onvif::discover(target, std::time::Duration::from_secs(3))
        })
        .await
        .map_err(|_| {
            ApiError::new(poem::http::StatusCode::INTERNAL_SERVER_ERROR, "discovery failed")
        })?
        .map_err(|e| ApiError::new(poem::http::StatusCode::SERVICE_UNAVAILABLE, e.to_string()))?;
        let known: Vec<String> = cameras::list(&state.dbs().records)
            .await
            .map_err(core_err)?
            .iter()
            .filter_map(|c| pv_media::mac::url_host(&c.main_url))
            .collect();
        auth.audit(
            &state,
            "camera.discover",
            "camera",
            "*",
            serde_json::json!({ "found": found.len() }),
        )
        .await;
        Ok(Json(
            found
                .into_iter()
                .map(|d| {
                    let host = d.xaddrs.iter().find_map(|x| pv_media::mac::url_host(x));
                    DiscoveredCamera {
                        known: host.as_ref().is_some_and(|h| known.contains(h)),
                        name: d.name(),
                        hardware: d.hardware(),
                        endpoint: d.endpoint,
                        host,
                        xaddrs: d.xaddrs,
                    }
                })
                .collect(),
        ))
    }

    /// The camera's motion zones and masks.
    #[oai(path = "/cameras/:id/motion-zones", method = "get", operation_id = "getMotionZones")]
    async fn get_zones(
        &self,
        state: Data<&AppState>,
        auth: Scoped<perm::CamerasView>,
        id: Path<i64>,
    ) -> ApiResult<Json<Vec<MotionZone>>> {
        let cam = load_for(&state, &auth, id.0, Permission::CamerasView).await?;
        let rows = cameras::motion_zones(&state.dbs().records, cam.id).await.map_err(core_err)?;
        Ok(Json(rows.iter().map(zone_json).collect()))
    }

    /// Replace the camera's motion zones and masks; applied at once.
    #[oai(path = "/cameras/:id/motion-zones", method = "put", operation_id = "setMotionZones")]
    async fn set_zones(
        &self,
        state: Data<&AppState>,
        auth: Scoped<perm::CamerasManage>,
        id: Path<i64>,
        body: Json<MotionZonesBody>,
    ) -> ApiResult<Json<Vec<MotionZone>>> {
        let cam = load_for(&state, &auth, id.0, Permission::CamerasManage).await?;
        if body.0.zones.len() > 32 {
            return Err(ApiError::bad_request("a camera has at most 32 motion zones"));
        }
        let mut zones = Vec::new();
        for (i, z) in body.0.zones.iter().enumerate() {
            let polygon = serde_json::json!(z.polygon);
            if crate::nvr::parse_polygon(&polygon).is_none() {
                return Err(ApiError::bad_request(format!(
                    "zone {i}: a polygon is at least three [x, y] corners, each between 0 and 1"
                )));
            }
            let sensitivity = z.sensitivity.unwrap_or(0.5);
            if !(0.0..=1.0).contains(&sensitivity) {
                return Err(ApiError::bad_request(format!(
                    "zone {i}: sensitivity must be between 0 and 1"
                )));
            }
            pv_core::input::check_name(&format!("zone {i}'s name"), &z.name, 64)
                .map_err(|e| ApiError::bad_request(e.to_string()))?;
            let name = z.name.trim();
            zones.push(cameras::NewZone {
                name: name.to_owned(),
                polygon,
                sensitivity,
                is_mask: z.mask.unwrap_or(false),
            });
        }
        let db = state.dbs().records.clone();
        let rows = cameras::replace_motion_zones(&db, cam.id, &zones, state.clock().now())
            .await
            .map_err(core_err)?;
        auth.audit(
            &state,
            "camera.motion_zones",
            "camera",
            &cam.id.to_string(),
            serde_json::json!({ "zones": rows.len() }),
        )
        .await;
        state.nvr().apply(&cam).await;
        Ok(Json(rows.iter().map(zone_json).collect()))
    }

    /// The camera's weekly schedule, its local time and what it records now.
    #[oai(path = "/cameras/:id/schedule", method = "get", operation_id = "getCameraSchedule")]
    async fn get_schedule(
        &self,
        state: Data<&AppState>,
        auth: Scoped<perm::CamerasView>,
        id: Path<i64>,
    ) -> ApiResult<Json<Schedule>> {
        let cam = load_for(&state, &auth, id.0, Permission::CamerasView).await?;
        Ok(Json(schedule_of(&state, &cam).await?))
    }

    /// Replace the camera's weekly schedule; applied at once.
    #[oai(path = "/cameras/:id/schedule", method = "put", operation_id = "setCameraSchedule")]
    async fn set_schedule(
        &self,
        state: Data<&AppState>,
        auth: Scoped<perm::CamerasManage>,
        id: Path<i64>,
        body: Json<ScheduleBody>,
    ) -> ApiResult<Json<Schedule>> {
        let cam = load_for(&state, &auth, id.0, Permission::CamerasManage).await?;
        if body.0.windows.len() > 64 {
            return Err(ApiError::bad_request("a schedule has at most 64 windows"));
        }
        let mut windows = Vec::new();
        for (i, w) in body.0.windows.iter().enumerate() {
            let mut days = 0i32;
            for d in &w.days {
                let bit = DAYS.iter().position(|x| x.eq_ignore_ascii_case(d)).ok_or_else(|| {
                    ApiError::bad_request(format!(
                        "window {i}: the day “{d}” is not one of {}",
                        DAYS.join(", ")
                    ))
                })?;
                days |= 1 << bit;
            }
            check_timezone(w.timezone.as_deref())?;
            let new = cameras::NewSchedule {
                mode: w.mode.clone(),
                days_of_week: days,
                start_minute: parse_hhmm("start", &w.start)?,
                end_minute: parse_hhmm("end", &w.end)?,
                timezone: w.timezone.clone(),
                priority: w.priority.unwrap_or(0),
            };
            let mode: pv_media::RecordingMode = new
                .mode
                .parse()
                .map_err(|e: pv_media::Error| ApiError::bad_request(format!("window {i}: {e}")))?;
            pv_media::schedule::ScheduleEntry::new(
                mode,
                u8::try_from(days).unwrap_or(0),
                u16::try_from(new.start_minute).unwrap_or(u16::MAX),
                u16::try_from(new.end_minute).unwrap_or(u16::MAX),
                new.priority,
            )
            .map_err(|e| ApiError::bad_request(format!("window {i}: {e}")))?;
            windows.push(new);
        }
        let db = state.dbs().records.clone();
        cameras::replace_schedules(&db, cam.id, &windows, state.clock().now())
            .await
            .map_err(core_err)?;
        auth.audit(
            &state,
            "camera.schedule",
            "camera",
            &cam.id.to_string(),
            serde_json::json!({ "windows": windows.len() }),
        )
        .await;
        state.nvr().apply(&cam).await;
        Ok(Json(schedule_of(&state, &cam).await?))
    }

    /// A JPEG of the camera's latest key frame, decoded on demand (from the live stream, or
    /// from the newest recording when the camera is not streaming).
    #[oai(path = "/cameras/:id/snapshot.jpg", method = "get", operation_id = "getCameraSnapshot")]
    async fn snapshot(
        &self,
        state: Data<&AppState>,
        auth: Scoped<perm::CamerasView>,
        id: Path<i64>,
        width: Query<Option<u32>>,
    ) -> ApiResult<JpegResponse> {
        let cam = load_for(&state, &auth, id.0, Permission::CamerasView).await?;
        if width.0.is_some_and(|w| !(16..=7680).contains(&w)) {
            return Err(ApiError::bad_request("width must be between 16 and 7680"));
        }
        let jpeg = state.nvr().snapshot(CameraId(cam.id), width.0).await.map_err(nvr_err)?;
        Ok(JpegResponse::Ok(Binary(jpeg.data), "no-store".into()))
    }

    /// The camera's footage of `[from, to)` (at most 24 hours) as one MP4 download, joined
    /// without transcoding; it starts at the key frame at or before `from`, and recording gaps
    /// are left out. Every export is an audit event.
    #[oai(path = "/cameras/:id/export.mp4", method = "get", operation_id = "exportCameraFootage")]
    async fn export(
        &self,
        state: Data<&AppState>,
        auth: Scoped<perm::CamerasExport>,
        id: Path<i64>,
        from: Query<DateTime<Utc>>,
        to: Query<DateTime<Utc>>,
    ) -> ApiResult<Mp4Download> {
        let cam = load_for(&state, &auth, id.0, Permission::CamerasExport).await?;
        if from.0 >= to.0 || to.0 - from.0 > chrono::Duration::hours(24) {
            return Err(ApiError::bad_request(
                "the start must be before the end, and an export covers at most 24 hours",
            ));
        }
        let dir = state.nvr().data_dir().join("exports");
        std::fs::create_dir_all(&dir).map_err(|e| {
            tracing::error!(error = %e, "cannot create the exports directory");
            ApiError::new(poem::http::StatusCode::INTERNAL_SERVER_ERROR, "cannot write the export")
        })?;
        let out = dir.join(format!("{}-{}.mp4", cam.id, rand_suffix()));
        let summary =
            state.nvr().export(CameraId(cam.id), from.0, to.0, &out).await.map_err(nvr_err)?;
        let file = tokio::fs::File::open(&out).await.map_err(|e| {
            tracing::error!(error = %e, "cannot open the export");
            ApiError::new(poem::http::StatusCode::INTERNAL_SERVER_ERROR, "cannot read the export")
        });
        // The open file stays readable after its name is gone: nothing is left behind.
        let _ = std::fs::remove_file(&out);
        let file = file?;
        auth.audit(
            &state,
            "video.export",
            "camera",
            &cam.id.to_string(),
            serde_json::json!({
                "from": from.0, "to": to.0,
                "duration_ms": summary.duration.as_millis() as u64,
                "bytes": summary.size_bytes,
            }),
        )
        .await;
        let name = format!(
            "attachment; filename=\"{}-{}.mp4\"",
            cam.name.chars().filter(|c| c.is_ascii_alphanumeric() || *c == '-').collect::<String>(),
            from.0.format("%Y%m%dT%H%M%SZ")
        );
        Ok(Mp4Download::Ok(Binary(poem::Body::from_async_read(file)), name, summary.size_bytes))
    }

    /// Push the camera's live stream to an RTMP/RTMPS endpoint without transcoding (H.264; an
    /// H.265 camera is refused). Replaces an earlier target; kept across restarts.
    #[oai(path = "/cameras/:id/rtmp", method = "post", operation_id = "startCameraRtmp")]
    async fn start_rtmp(
        &self,
        state: Data<&AppState>,
        auth: Scoped<perm::CamerasManage>,
        id: Path<i64>,
        body: Json<RtmpTarget>,
    ) -> ApiResult<RtmpResponse> {
        let cam = load_for(&state, &auth, id.0, Permission::CamerasManage).await?;
        let url = body.0.url.trim().to_owned();
        state.nvr().start_push(CameraId(cam.id), &url).await.map_err(nvr_err)?;
        let sealed = state.key().seal(&url)?;
        cameras::set_rtmp_output(&state.dbs().records, cam.id, &sealed, state.clock().now())
            .await
            .map_err(core_err)?;
        let (target, status) =
            state.nvr().push_status(CameraId(cam.id)).await.ok_or_else(|| {
                ApiError::new(poem::http::StatusCode::CONFLICT, "the push stopped at once")
            })?;
        auth.audit(
            &state,
            "camera.rtmp.start",
            "camera",
            &cam.id.to_string(),
            serde_json::json!({ "target": target }),
        )
        .await;
        Ok(RtmpResponse::Ok(Json(RtmpStatus {
            target,
            state: status.as_str().to_owned(),
            reason: status.reason().map(str::to_owned),
        })))
    }

    /// Stop the camera's RTMP push.
    #[oai(path = "/cameras/:id/rtmp", method = "delete", operation_id = "stopCameraRtmp")]
    async fn stop_rtmp(
        &self,
        state: Data<&AppState>,
        auth: Scoped<perm::CamerasManage>,
        id: Path<i64>,
    ) -> ApiResult<NoContent> {
        let cam = load_for(&state, &auth, id.0, Permission::CamerasManage).await?;
        let running = state.nvr().stop_push(CameraId(cam.id)).await;
        let stored =
            cameras::disable_rtmp_output(&state.dbs().records, cam.id, state.clock().now())
                .await
                .map_err(core_err)?;
        if !running && !stored {
            return Err(ApiError::new(
                poem::http::StatusCode::NOT_FOUND,
                format!("camera {} has no RTMP push", cam.id),
            ));
        }
        auth.audit(
            &state,
            "camera.rtmp.stop",
            "camera",
            &cam.id.to_string(),
            serde_json::json!({}),
        )
        .await;
        Ok(NoContent::Done)
    }

    /// A camera's motion events and recording gaps in a time range (default: the last 24 h).
    #[oai(path = "/events", method = "get", operation_id = "listEvents")]
    async fn events(
        &self,
        state: Data<&AppState>,
        auth: Scoped<perm::CamerasView>,
        camera_id: Query<Option<i64>>,
        kind: Query<Option<String>>,
        from: Query<Option<DateTime<Utc>>>,
        to: Query<Option<DateTime<Utc>>>,
    ) -> ApiResult<Json<Vec<super::recordings::Event>>> {
        super::recordings::events(&state, &auth, camera_id.0, kind.0, from.0, to.0).await
    }
}
