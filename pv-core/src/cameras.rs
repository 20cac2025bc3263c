//! Camera rows in the records database: create, read, update and delete a camera's settings,
//! write what the recorder learned (status, codec, resolution), and the camera's RTMP output.
//!
//! Callers validate what only they can (URLs are checked by pv-media, the stream password is
//! sealed by pv-security before it gets here); this module keeps the rules that need the
//! database: names are unique (case-insensitively, on every engine), ids exist.
//!
//! A change is one [`CameraPatch`] (only the fields present change; `Some(None)` clears a
//! nullable one), applied by [`update`] in one transaction with sea-orm `Set`/`NotSet`, after
//! checking the settings it results in.
//!
//! ```no_run
//! # async fn demo(db: &sea_orm::DatabaseConnection) -> pv_core::Result<()> {
//! use pv_core::cameras::{self, CameraPatch, CameraSettings};
//! let mut settings = CameraSettings::new("Front door", "rtsp://192.0.2.10/stream1");
//! settings.recording_mode = "motion".into();
//! let cam = cameras::create(db, &settings, chrono::Utc::now()).await?;
//! assert_eq!(cameras::get(db, cam.id).await?.name, "Front door");
//! let patch = CameraPatch { timezone: Some(Some("Europe/Paris".into())), ..CameraPatch::default() };
//! let cam = cameras::update(db, cam.id, &patch, chrono::Utc::now()).await?;
//! assert_eq!(cam.recording_mode, "motion", "absent fields are untouched");
//! # Ok(()) }
//! ```

use chrono::{DateTime, Utc};
use sea_orm::ActiveValue::{NotSet, Set, Unchanged};
use sea_orm::{
    ActiveModelTrait, ActiveValue, ColumnTrait, ConnectionTrait, EntityTrait, IntoActiveModel,
    QueryFilter, QueryOrder, TransactionTrait,
};

use crate::db::records::{camera, camera_mac_change, motion_zone, recording_schedule, rtmp_output};
use crate::error::{Error, Result};

fn db_err(source: sea_orm::DbErr) -> Error {
    Error::Database { db: "records", source }
}

/// What a user sets on a camera (everything but what the recorder learns).
#[derive(Debug, Clone, PartialEq)]
pub struct CameraSettings {
    /// Unique display name (1–128 characters).
    pub name: String,
    /// Main stream URL, without credentials.
    pub main_url: String,
    /// Sub stream URL.
    pub sub_url: Option<String>,
    /// Stream login.
    pub username: Option<String>,
    /// Stream password, already sealed for storage (never the plain text).
    pub password_sealed: Option<String>,
    /// Recorded at all.
    pub enabled: bool,
    /// Property (users database id).
    pub property_id: Option<i64>,
    /// Zone within the property.
    pub zone: Option<String>,
    /// IANA time zone.
    pub timezone: Option<String>,
    /// `continuous`, `motion` or `off`.
    pub recording_mode: String,
    /// `tcp` or `udp`.
    pub transport: String,
    /// Segment length override in seconds.
    pub segment_seconds: Option<i32>,
    /// Motion pre-roll in seconds.
    pub pre_roll_seconds: i32,
    /// Motion post-roll in seconds.
    pub post_roll_seconds: i32,
    /// Retention override in days.
    pub retention_days: Option<i32>,
    /// Size limit of the camera's local footage in bytes.
    pub retention_max_bytes: Option<i64>,
    /// `native`, `gstreamer` or `ffmpeg`; None: the default.
    pub recorder_backend: Option<String>,
}

impl CameraSettings {
    /// Settings with the defaults: enabled, continuous, TCP, 5 s pre-roll, 10 s post-roll.
    pub fn new(name: impl Into<String>, main_url: impl Into<String>) -> Self {
        Self {
            name: name.into(),
            main_url: main_url.into(),
            sub_url: None,
            username: None,
            password_sealed: None,
            enabled: true,
            property_id: None,
            zone: None,
            timezone: None,
            recording_mode: "continuous".into(),
            transport: "tcp".into(),
            segment_seconds: None,
            pre_roll_seconds: 5,
            post_roll_seconds: 10,
            retention_days: None,
            retention_max_bytes: None,
            recorder_backend: None,
        }
    }

    /// The settings stored in `row`.
    pub fn from_model(row: &camera::Model) -> Self {
        Self {
            name: row.name.clone(),
            main_url: row.main_url.clone(),
            sub_url: row.sub_url.clone(),
            username: row.username.clone(),
            password_sealed: row.password.clone(),
            enabled: row.enabled,
            property_id: row.property_id,
            zone: row.zone.clone(),
            timezone: row.timezone.clone(),
            recording_mode: row.recording_mode.clone(),
            transport: row.transport.clone(),
            segment_seconds: row.segment_seconds,
            pre_roll_seconds: row.pre_roll_seconds,
            post_roll_seconds: row.post_roll_seconds,
            retention_days: row.retention_days,
            retention_max_bytes: row.retention_max_bytes,
            recorder_backend: row.recorder_backend.clone(),
        }
    }

    fn check(&self) -> Result<()> {
        let name = self.name.trim();
        if name.is_empty() || name.chars().count() > 128 || name.chars().any(char::is_control) {
            return Err(Error::InvalidInput(
                "a camera name is 1 to 128 characters without control characters".into(),
            ));
        }
        if !matches!(self.recording_mode.as_str(), "continuous" | "motion" | "off") {
            return Err(Error::InvalidInput(format!(
                "recording_mode `{}` is not one of continuous, motion, off",
                self.recording_mode
            )));
        }
        if !matches!(self.transport.as_str(), "tcp" | "udp") {
            return Err(Error::InvalidInput(format!(
                "transport `{}` is not tcp or udp",
                self.transport
            )));
        }
        if let Some(b) = &self.recorder_backend
            && !matches!(b.as_str(), "native" | "gstreamer" | "ffmpeg")
        {
            return Err(Error::InvalidInput(format!(
                "recorder_backend `{b}` is not native, gstreamer or ffmpeg"
            )));
        }
        let ranges = [
            (self.segment_seconds.is_none_or(|s| (1..=3600).contains(&s)), "segment_seconds"),
            ((0..=60).contains(&self.pre_roll_seconds), "pre_roll_seconds (0-60)"),
            ((0..=600).contains(&self.post_roll_seconds), "post_roll_seconds (0-600)"),
            (self.retention_days.is_none_or(|d| d >= 0), "retention_days"),
            (self.retention_max_bytes.is_none_or(|b| b >= 0), "retention_max_bytes"),
        ];
        if let Some((_, field)) = ranges.iter().find(|(ok, _)| !ok) {
            return Err(Error::InvalidInput(format!("{field} is out of range")));
        }
        Ok(())
    }

    fn apply(&self, row: &mut camera::ActiveModel) {
        row.name = Set(self.name.trim().to_owned());
        row.main_url = Set(self.main_url.clone());
        row.sub_url = Set(self.sub_url.clone());
        row.username = Set(self.username.clone());
        row.password = Set(self.password_sealed.clone());
        row.enabled = Set(self.enabled);
        row.property_id = Set(self.property_id);
        row.zone = Set(self.zone.clone());
        row.timezone = Set(self.timezone.clone());
        row.recording_mode = Set(self.recording_mode.clone());
        row.transport = Set(self.transport.clone());
        row.segment_seconds = Set(self.segment_seconds);
        row.pre_roll_seconds = Set(self.pre_roll_seconds);
        row.post_roll_seconds = Set(self.post_roll_seconds);
        row.retention_days = Set(self.retention_days);
        row.retention_max_bytes = Set(self.retention_max_bytes);
        row.recorder_backend = Set(self.recorder_backend.clone());
    }
}

/// A change of a camera's settings: `None` leaves a field as it is; for a nullable field
/// `Some(None)` clears it and `Some(Some(v))` sets it (lldap's update requests do the same).
/// Applied once by [`update`]; a new camera is [`CameraSettings::from_patch`].
#[derive(Debug, Clone, Default, PartialEq)]
pub struct CameraPatch {
    /// Unique display name (1–128 characters; stored trimmed).
    pub name: Option<String>,
    /// Main stream URL, without credentials.
    pub main_url: Option<String>,
    /// Sub stream URL.
    pub sub_url: Option<Option<String>>,
    /// Stream login.
    pub username: Option<Option<String>>,
    /// Stream password, already sealed for storage (never the plain text).
    pub password_sealed: Option<Option<String>>,
    /// Recorded at all.
    pub enabled: Option<bool>,
    /// Property (users database id).
    pub property_id: Option<Option<i64>>,
    /// Zone within the property.
    pub zone: Option<Option<String>>,
    /// IANA time zone.
    pub timezone: Option<Option<String>>,
    /// `continuous`, `motion` or `off`.
    pub recording_mode: Option<String>,
    /// `tcp` or `udp`.
    pub transport: Option<String>,
    /// Segment length override in seconds.
    pub segment_seconds: Option<Option<i32>>,
    /// Motion pre-roll in seconds.
    pub pre_roll_seconds: Option<i32>,
    /// Motion post-roll in seconds.
    pub post_roll_seconds: Option<i32>,
    /// Retention override in days.
    pub retention_days: Option<Option<i32>>,
    /// Size limit of the camera's local footage in bytes.
    pub retention_max_bytes: Option<Option<i64>>,
    /// `native`, `gstreamer` or `ffmpeg`; None: the default.
    pub recorder_backend: Option<Option<String>>,
}

/// `Set` for a field the patch carries, `NotSet` for one it does not.
fn set_or_not<T: Clone + Into<sea_orm::Value>>(field: &Option<T>) -> ActiveValue<T> {
    field.clone().map_or(NotSet, Set)
}

impl CameraPatch {
    /// The patch as a row change: `Set` for the fields present, `NotSet` for the rest (the
    /// name trimmed as it is stored).
    fn active_model(&self) -> camera::ActiveModel {
        camera::ActiveModel {
            name: set_or_not(&self.name.as_ref().map(|n| n.trim().to_owned())),
            main_url: set_or_not(&self.main_url),
            sub_url: set_or_not(&self.sub_url),
            username: set_or_not(&self.username),
            password: set_or_not(&self.password_sealed),
            enabled: set_or_not(&self.enabled),
            property_id: set_or_not(&self.property_id),
            zone: set_or_not(&self.zone),
            timezone: set_or_not(&self.timezone),
            recording_mode: set_or_not(&self.recording_mode),
            transport: set_or_not(&self.transport),
            segment_seconds: set_or_not(&self.segment_seconds),
            pre_roll_seconds: set_or_not(&self.pre_roll_seconds),
            post_roll_seconds: set_or_not(&self.post_roll_seconds),
            retention_days: set_or_not(&self.retention_days),
            retention_max_bytes: set_or_not(&self.retention_max_bytes),
            recorder_backend: set_or_not(&self.recorder_backend),
            ..Default::default()
        }
    }
}

impl CameraSettings {
    /// The settings of a new camera: the defaults of [`CameraSettings::new`] with `patch`
    /// applied (a patch without a name or main URL leaves them empty, which [`create`] refuses).
    pub fn from_patch(patch: &CameraPatch) -> Self {
        Self::new(String::new(), String::new()).patched(patch)
    }

    /// These settings with the fields `patch` carries replaced.
    pub fn patched(mut self, patch: &CameraPatch) -> Self {
        fn put<T: Clone>(field: &mut T, value: &Option<T>) {
            if let Some(v) = value {
                field.clone_from(v);
            }
        }
        put(&mut self.name, &patch.name);
        put(&mut self.main_url, &patch.main_url);
        put(&mut self.sub_url, &patch.sub_url);
        put(&mut self.username, &patch.username);
        put(&mut self.password_sealed, &patch.password_sealed);
        put(&mut self.enabled, &patch.enabled);
        put(&mut self.property_id, &patch.property_id);
        put(&mut self.zone, &patch.zone);
        put(&mut self.timezone, &patch.timezone);
        put(&mut self.recording_mode, &patch.recording_mode);
        put(&mut self.transport, &patch.transport);
        put(&mut self.segment_seconds, &patch.segment_seconds);
        put(&mut self.pre_roll_seconds, &patch.pre_roll_seconds);
        put(&mut self.post_roll_seconds, &patch.post_roll_seconds);
        put(&mut self.retention_days, &patch.retention_days);
        put(&mut self.retention_max_bytes, &patch.retention_max_bytes);
        put(&mut self.recorder_backend, &patch.recorder_backend);
        self
    }
}

/// Refuse a name another camera (not `except`) already has, ignoring case.
async fn check_unique(db: &impl ConnectionTrait, name: &str, except: Option<i64>) -> Result<()> {
    let wanted = name.trim().to_lowercase();
    let taken = list(db)
        .await?
        .into_iter()
        .any(|c| Some(c.id) != except && c.name.to_lowercase() == wanted);
    if taken {
        return Err(Error::Conflict(format!("a camera named `{}` exists already", name.trim())));
    }
    Ok(())
}

/// Add a camera; its status starts as `new`.
pub async fn create(
    db: &impl ConnectionTrait,
    settings: &CameraSettings,
    now: DateTime<Utc>,
) -> Result<camera::Model> {
    settings.check()?;
    check_unique(db, &settings.name, None).await?;
    let mut row = camera::ActiveModel {
        status: Set("new".into()),
        created_at: Set(now),
        updated_at: Set(now),
        ..Default::default()
    };
    settings.apply(&mut row);
    row.insert(db).await.map_err(db_err)
}

/// Every camera, by id.
pub async fn list(db: &impl ConnectionTrait) -> Result<Vec<camera::Model>> {
    camera::Entity::find().order_by_asc(camera::Column::Id).all(db).await.map_err(db_err)
}

/// One camera.
pub async fn get(db: &impl ConnectionTrait, id: i64) -> Result<camera::Model> {
    camera::Entity::find_by_id(id)
        .one(db)
        .await
        .map_err(db_err)?
        .ok_or_else(|| Error::NotFound(format!("camera {id} does not exist")))
}

/// Change the fields of a camera that `patch` carries, in one transaction: the settings the
/// patch results in are checked as [`create`] checks them (same messages), the name stays
/// unique, and only the fields present are written (`NotSet` for the others).
pub async fn update(
    db: &sea_orm::DatabaseConnection,
    id: i64,
    patch: &CameraPatch,
    now: DateTime<Utc>,
) -> Result<camera::Model> {
    let txn = db.begin().await.map_err(db_err)?;
    let current = get(&txn, id).await?;
    let settings = CameraSettings::from_model(&current).patched(patch);
    settings.check()?;
    check_unique(&txn, &settings.name, Some(id)).await?;
    let mut row = patch.active_model();
    row.id = Unchanged(id);
    row.updated_at = Set(now);
    let row = row.update(&txn).await.map_err(db_err)?;
    txn.commit().await.map_err(db_err)?;
    Ok(row)
}

/// Delete a camera and (by cascade) its segment rows, gaps, zones, schedules and outputs. The
/// files stay on disk for the caller to remove or keep.
pub async fn delete(db: &impl ConnectionTrait, id: i64) -> Result<()> {
    let res = camera::Entity::delete_by_id(id).exec(db).await.map_err(db_err)?;
    if res.rows_affected == 0 {
        return Err(Error::NotFound(format!("camera {id} does not exist")));
    }
    Ok(())
}

/// What the recorder reports about a camera.
#[derive(Debug, Clone, PartialEq)]
pub struct CameraObservation {
    /// `new`, `streaming`, `reconnecting`, `failed` or `disabled`; None leaves the status and
    /// its reason as they are (a finished segment says nothing about what the recorder does
    /// now: it may have been stopped since).
    pub status: Option<String>,
    /// Why (the last error).
    pub status_reason: Option<String>,
    /// The backend in use, `native`, `gstreamer` or `ffmpeg`.
    pub backend: Option<String>,
    /// Video codec of the last segment.
    pub video_codec: Option<String>,
    /// Audio codec of the last segment.
    pub audio_codec: Option<String>,
    /// Frame width.
    pub width: Option<i32>,
    /// Frame height.
    pub height: Option<i32>,
    /// When a frame was last received.
    pub last_seen_at: Option<DateTime<Utc>>,
}

/// Store what the recorder reports (status, codec, size and last-seen when known).
/// A camera deleted in the meantime is not an error.
pub async fn observe(
    db: &impl ConnectionTrait,
    id: i64,
    seen: &CameraObservation,
    now: DateTime<Utc>,
) -> Result<()> {
    let Some(current) = camera::Entity::find_by_id(id).one(db).await.map_err(db_err)? else {
        return Ok(());
    };
    let mut row = current.into_active_model();
    if let Some(status) = &seen.status {
        row.status = Set(status.clone());
        row.status_reason = Set(seen.status_reason.clone());
    }
    if seen.video_codec.is_some() {
        row.video_codec = Set(seen.video_codec.clone());
        row.audio_codec = Set(seen.audio_codec.clone());
        row.width = Set(seen.width);
        row.height = Set(seen.height);
    }
    if seen.last_seen_at.is_some() {
        row.last_seen_at = Set(seen.last_seen_at);
    }
    row.updated_at = Set(now);
    row.update(db).await.map_err(db_err)?;
    Ok(())
}

/// Store the camera's RTMP output (one per camera): the target URL sealed by the caller,
/// enabled. Replaces an earlier target.
pub async fn set_rtmp_output(
    db: &impl ConnectionTrait,
    camera: i64,
    target_sealed: &str,
    now: DateTime<Utc>,
) -> Result<rtmp_output::Model> {
    let existing = rtmp_output::Entity::find()
        .filter(rtmp_output::Column::CameraId.eq(camera))
        .one(db)
        .await
        .map_err(db_err)?;
    let mut row = match existing {
        Some(row) => row.into_active_model(),
        None => rtmp_output::ActiveModel {
            camera_id: Set(camera),
            name: Set("rtmp".into()),
            created_at: Set(now),
            ..Default::default()
        },
    };
    row.target_url = Set(target_sealed.to_owned());
    row.enabled = Set(true);
    row.status = Set("idle".into());
    row.last_error = Set(None);
    row.updated_at = Set(now);
    row.save(db).await.map_err(db_err)?;
    rtmp_output::Entity::find()
        .filter(rtmp_output::Column::CameraId.eq(camera))
        .one(db)
        .await
        .map_err(db_err)?
        .ok_or_else(|| Error::NotFound(format!("camera {camera} has no RTMP output")))
}

/// Turn the camera's RTMP output off (kept, so it can be turned on again); returns whether
/// there was one.
pub async fn disable_rtmp_output(
    db: &impl ConnectionTrait,
    camera: i64,
    now: DateTime<Utc>,
) -> Result<bool> {
    let res = rtmp_output::Entity::update_many()
        .col_expr(rtmp_output::Column::Enabled, sea_orm::sea_query::Expr::value(false))
        .col_expr(rtmp_output::Column::Status, sea_orm::sea_query::Expr::value("idle"))
        .col_expr(rtmp_output::Column::UpdatedAt, sea_orm::sea_query::Expr::value(now))
        .filter(rtmp_output::Column::CameraId.eq(camera))
        .filter(rtmp_output::Column::Enabled.eq(true))
        .exec(db)
        .await
        .map_err(db_err)?;
    Ok(res.rows_affected > 0)
}

/// Every enabled RTMP output (restarted with the server).
pub async fn enabled_rtmp_outputs(db: &impl ConnectionTrait) -> Result<Vec<rtmp_output::Model>> {
    rtmp_output::Entity::find()
        .filter(rtmp_output::Column::Enabled.eq(true))
        .order_by_asc(rtmp_output::Column::CameraId)
        .all(db)
        .await
        .map_err(db_err)
}

/// Replace a camera's rows of one table (those whose `camera_column` is `camera`) with `rows`,
/// in one transaction.
async fn replace_rows<A>(
    db: &sea_orm::DatabaseConnection,
    camera_column: <A::Entity as EntityTrait>::Column,
    camera: i64,
    rows: Vec<A>,
) -> Result<()>
where
    A: ActiveModelTrait + sea_orm::ActiveModelBehavior + Send,
    <A::Entity as EntityTrait>::Model: IntoActiveModel<A>,
{
    use sea_orm::TransactionTrait;
    let txn = db.begin().await.map_err(db_err)?;
    A::Entity::delete_many().filter(camera_column.eq(camera)).exec(&txn).await.map_err(db_err)?;
    if !rows.is_empty() {
        A::Entity::insert_many(rows).exec(&txn).await.map_err(db_err)?;
    }
    txn.commit().await.map_err(db_err)
}

/// One weekly recording window, as plain values (validated by `pv_media::schedule`).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct NewSchedule {
    /// `continuous`, `motion` or `off`.
    pub mode: String,
    /// Monday = 1, Tuesday = 2, … Sunday = 64.
    pub days_of_week: i32,
    /// Minutes after local midnight, 0..1440.
    pub start_minute: i32,
    /// Minutes after local midnight, 0..=1440; before the start: runs past midnight.
    pub end_minute: i32,
    /// IANA time zone; None: the camera's.
    pub timezone: Option<String>,
    /// Higher wins where windows overlap.
    pub priority: i32,
}

/// A camera's enabled schedule windows, by id.
pub async fn schedules(
    db: &impl ConnectionTrait,
    camera: i64,
) -> Result<Vec<recording_schedule::Model>> {
    recording_schedule::Entity::find()
        .filter(recording_schedule::Column::CameraId.eq(camera))
        .filter(recording_schedule::Column::Enabled.eq(true))
        .order_by_asc(recording_schedule::Column::Id)
        .all(db)
        .await
        .map_err(db_err)
}

/// Replace a camera's schedule with `windows` (in one transaction).
pub async fn replace_schedules(
    db: &sea_orm::DatabaseConnection,
    camera: i64,
    windows: &[NewSchedule],
    now: DateTime<Utc>,
) -> Result<Vec<recording_schedule::Model>> {
    let rows = windows.iter().map(|w| recording_schedule::ActiveModel {
        camera_id: Set(camera),
        mode: Set(w.mode.clone()),
        days_of_week: Set(w.days_of_week),
        start_minute: Set(w.start_minute),
        end_minute: Set(w.end_minute),
        timezone: Set(w.timezone.clone()),
        enabled: Set(true),
        priority: Set(w.priority),
        created_at: Set(now),
        updated_at: Set(now),
        ..Default::default()
    });
    replace_rows(db, recording_schedule::Column::CameraId, camera, rows.collect()).await?;
    schedules(db, camera).await
}

/// What [`record_mac`] found.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum MacOutcome {
    /// The camera (or its MAC address) is not known; nothing stored.
    Unknown,
    /// The same address as before.
    Unchanged,
    /// First learned (blank → known): stored, no alert.
    Learned(String),
    /// A known address changed: stored, and a `camera_mac_changes` row records it.
    Changed {
        /// The previous address.
        old: String,
        /// The new one.
        new: String,
    },
}

/// Store the MAC address (and IP) seen for a camera; a change of a known address is recorded
/// in `camera_mac_changes` (marked alerted: the caller raises the alert).
pub async fn record_mac(
    db: &impl ConnectionTrait,
    camera: i64,
    ip: Option<&str>,
    mac: &str,
    now: DateTime<Utc>,
) -> Result<MacOutcome> {
    let Some(row) = camera::Entity::find_by_id(camera).one(db).await.map_err(db_err)? else {
        return Ok(MacOutcome::Unknown);
    };
    let old = row.mac_address.clone();
    let outcome = match &old {
        Some(o) if o == mac => return Ok(MacOutcome::Unchanged),
        Some(o) => MacOutcome::Changed { old: o.clone(), new: mac.to_owned() },
        None => MacOutcome::Learned(mac.to_owned()),
    };
    if let MacOutcome::Changed { old, new } = &outcome {
        camera_mac_change::ActiveModel {
            camera_id: Set(camera),
            old_mac: Set(Some(old.clone())),
            new_mac: Set(new.clone()),
            observed_at: Set(now),
            alerted: Set(true),
            ..Default::default()
        }
        .insert(db)
        .await
        .map_err(db_err)?;
    }
    let mut row = row.into_active_model();
    row.mac_address = Set(Some(mac.to_owned()));
    if let Some(ip) = ip {
        row.ip_address = Set(Some(ip.to_owned()));
    }
    row.updated_at = Set(now);
    row.update(db).await.map_err(db_err)?;
    Ok(outcome)
}

/// One motion zone or mask, as plain values.
#[derive(Debug, Clone, PartialEq)]
pub struct NewZone {
    /// Shown name.
    pub name: String,
    /// Corners `[[x, y], …]` in 0..=1 of the frame.
    pub polygon: serde_json::Value,
    /// 0..=1, 1 most sensitive.
    pub sensitivity: f64,
    /// Motion inside is ignored.
    pub is_mask: bool,
}

/// A camera's enabled motion zones and masks, by id.
pub async fn motion_zones(
    db: &impl ConnectionTrait,
    camera: i64,
) -> Result<Vec<motion_zone::Model>> {
    motion_zone::Entity::find()
        .filter(motion_zone::Column::CameraId.eq(camera))
        .filter(motion_zone::Column::Enabled.eq(true))
        .order_by_asc(motion_zone::Column::Id)
        .all(db)
        .await
        .map_err(db_err)
}

/// Replace a camera's motion zones (in one transaction).
pub async fn replace_motion_zones(
    db: &sea_orm::DatabaseConnection,
    camera: i64,
    zones: &[NewZone],
    now: DateTime<Utc>,
) -> Result<Vec<motion_zone::Model>> {
    let rows = zones.iter().map(|z| motion_zone::ActiveModel {
        camera_id: Set(camera),
        name: Set(z.name.clone()),
        polygon: Set(z.polygon.clone()),
        sensitivity: Set(z.sensitivity),
        is_mask: Set(z.is_mask),
        enabled: Set(true),
        created_at: Set(now),
        updated_at: Set(now),
        ..Default::default()
    });
    replace_rows(db, motion_zone::Column::CameraId, camera, rows.collect()).await?;
    motion_zones(db, camera).await
}
