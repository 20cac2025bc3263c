//! Storage modules in the records database: installed providers, configured modules, per-camera
//! targets, the durable upload queue, write statistics, health checks and per-module logs.
//!
//! The upload engine (`pv_storage::UploadQueue`) works on the jobs this module stores; pv-web
//! and the recorder call these functions. Every function takes `now`/`at` from the caller, so
//! time-dependent behaviour is tested with a simulated clock.
//!
//! # Chains and tiers
//! A camera's targets (`camera_storage_targets`, in priority order) are a failover chain: a
//! finished segment gets ONE job per chain, and the engine uploads it to the first healthy
//! module of the chain. A camera without target rows uses the *global default*: every enabled,
//! non-draining, writable module in priority order ([`default_chain`]).
//!
//! Targets have a tier ([`UploadMode`]): `all` uploads every segment, `motion` only segments
//! with motion within `padding_seconds` before or after them. A camera's `all` targets form one
//! chain and its `motion` targets another, so [`enqueue_segment`] queues at most two jobs (e.g.
//! everything to the NAS, motion only to a metered cloud bucket). Disabled targets, and
//! modules that are disabled, draining or read-only when the segment is queued, are left out.
//!
//! A job stores its chain in `upload_queue.chain` (a JSON array of module ids) and its tier in
//! the `mode` and `padding_seconds` columns. A `motion` job is not due before the segment's end
//! plus its padding plus [`MOTION_SETTLE_SECONDS`], so motion after the segment is known;
//! [`claim_due_jobs`] then decides: motion in the window → uploaded, else the job is `skipped`.
//!
//! # Job states
//! `pending` → `uploading` (claimed with a lease) → `done` (verified remote copy), or back to
//! `pending` after a failure (`attempts` + 1, `last_error`, a later `next_attempt_at`: a
//! failed upload is never dropped). `skipped`: not uploaded (no motion, or the local file was
//! gone). `expired`: the remote copy was removed by remote retention.
//!
//! ```no_run
//! # async fn demo(db: &sea_orm::DatabaseConnection) -> pv_core::Result<()> {
//! use chrono::{Duration, Utc};
//! use pv_core::storage::{self, NewModule};
//! let now = Utc::now();
//! let nas = storage::create_module(db, &NewModule::new("smb", "NAS", serde_json::json!({})), now).await?;
//! let queued = storage::enqueue_segment(db, 42, 1, now).await?;
//! for due in storage::claim_due_jobs(db, now, Duration::minutes(10), 8).await? {
//!     // upload due.segment.path to the first healthy module of due.chain, then:
//!     storage::finish_job(db, due.job.id, nas, "front/2026/12/05/x.mp4", 1234, None, now).await?;
//! }
//! # let _ = queued; Ok(()) }
//! ```

use std::collections::{HashMap, HashSet};

use chrono::{DateTime, Datelike, Duration, NaiveTime, TimeZone, Utc};
use sea_orm::ActiveValue::{NotSet, Set};
use sea_orm::sea_query::{Expr, Func, LikeExpr};
use sea_orm::{
    ActiveModelTrait, ColumnTrait, Condition, ConnectionTrait, DbBackend, EntityTrait,
    IntoActiveModel, PaginatorTrait, QueryFilter, QueryOrder, QuerySelect, SqlErr,
};
use serde::{Deserialize, Serialize};

use crate::db::records::{
    camera, camera_storage_target, motion_event, segment, storage_module,
    storage_module_health_check, storage_module_log, storage_module_write_stat, storage_provider,
    upload_queue,
};
use crate::error::{Error, Result};
use crate::input::{check_name, quote};

fn db_err(source: sea_orm::DbErr) -> Error {
    Error::Database { db: "records", source }
}

/// Job status: waiting for its `next_attempt_at` (also after a failed attempt).
pub const PENDING: &str = "pending";
/// Job status: claimed by a worker until `lease_until`.
pub const UPLOADING: &str = "uploading";
/// Job status: the remote copy was written and verified.
pub const DONE: &str = "done";
/// Job status: not uploaded on purpose (no motion in a `motion` tier, file gone).
pub const SKIPPED: &str = "skipped";
/// Job status: the remote copy was removed by the module's remote retention.
pub const EXPIRED: &str = "expired";

/// Seconds a `motion` job waits after the segment's end plus padding, so motion detected right
/// after the segment is already stored when the job is decided.
pub const MOTION_SETTLE_SECONDS: i64 = 5;

/// Days of write statistics, health checks and logs kept by [`prune_history`].
pub const HISTORY_DAYS: i64 = 60;

/// Log levels, least severe first.
pub const LOG_LEVELS: [&str; 4] = ["debug", "info", "warn", "error"];

/// Longest padding a target may ask for, in seconds (one hour).
pub const MAX_PADDING_SECONDS: i32 = 3600;

// ---------------------------------------------------------------------------------------------
// Providers

/// Record an installed provider (at every start, for each loaded definition): inserted the first
/// time, updated (name, category, definition, source) afterwards. Returns its row id.
#[allow(clippy::too_many_arguments)]
pub async fn upsert_provider(
    db: &impl ConnectionTrait,
    key: &str,
    name: &str,
    category: &str,
    definition: &serde_json::Value,
    source: &str,
    now: DateTime<Utc>,
) -> Result<i64> {
    check_name("a storage provider id", key, 64)?;
    let existing = storage_provider::Entity::find()
        .filter(storage_provider::Column::Key.eq(key))
        .one(db)
        .await
        .map_err(db_err)?;
    let mut row = match existing {
        Some(row) => row.into_active_model(),
        None => storage_provider::ActiveModel {
            key: Set(key.to_owned()),
            installed_at: Set(now),
            ..Default::default()
        },
    };
    row.name = Set(truncate(name, 128));
    row.category = Set(truncate(category, 32));
    row.definition = Set(definition.clone());
    row.source = Set(truncate(source, 32));
    row.updated_at = Set(now);
    let saved = row.save(db).await.map_err(db_err)?;
    match saved.id {
        Set(id) | sea_orm::ActiveValue::Unchanged(id) => Ok(id),
        NotSet => Err(Error::NotFound(format!("storage provider {} was not saved", quote(key)))),
    }
}

/// Every recorded provider, by key.
pub async fn list_providers(db: &impl ConnectionTrait) -> Result<Vec<storage_provider::Model>> {
    storage_provider::Entity::find()
        .order_by_asc(storage_provider::Column::Key)
        .all(db)
        .await
        .map_err(db_err)
}

// ---------------------------------------------------------------------------------------------
// Modules

/// A new storage module (a configured instance of a provider).
#[derive(Clone, PartialEq)]
pub struct NewModule {
    /// The provider's id (`aws-s3`, `webdav`, …).
    pub provider_key: String,
    /// Unique display name (1–128 characters, unique ignoring case).
    pub name: String,
    /// Whether uploads go to it.
    pub enabled: bool,
    /// Non-secret configuration values.
    pub config: serde_json::Value,
    /// Secret values, already sealed with the server key (never plain text).
    pub secrets_sealed: Option<String>,
    /// The proof of the passing test of these values.
    pub proof: Option<String>,
    /// Lower is tried first.
    pub priority: i32,
    /// Free-form labels (a JSON list of strings).
    pub tags: Option<serde_json::Value>,
    /// Remote object key template.
    pub key_template: String,
    /// Remote retention in days; None: keep forever.
    pub retention_days: Option<i32>,
    /// Part size of multipart / chunked uploads; None: the provider's default.
    pub chunk_size_bytes: Option<i64>,
    /// Uploads to this module at once (at least 1).
    pub parallel_uploads: i32,
    /// Bandwidth cap in bytes per second; None: unlimited.
    pub bandwidth_limit_bytes_per_second: Option<i64>,
    /// Only read from (restore, browse), never written to.
    pub read_only: bool,
    /// Segments are encrypted on the client side before upload.
    pub encrypted: bool,
}

impl std::fmt::Debug for NewModule {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("NewModule")
            .field("provider_key", &self.provider_key)
            .field("name", &self.name)
            .field("enabled", &self.enabled)
            .field("config", &self.config)
            .field("secrets_sealed", &self.secrets_sealed.as_ref().map(|_| "<redacted>"))
            .field("proof", &self.proof.as_ref().map(|_| "<redacted>"))
            .field("priority", &self.priority)
            .field("key_template", &self.key_template)
            .field("retention_days", &self.retention_days)
            .field("parallel_uploads", &self.parallel_uploads)
            .field("encrypted", &self.encrypted)
            .finish_non_exhaustive()
    }
}

/// The default remote key template of a new module.
pub const DEFAULT_KEY_TEMPLATE: &str = "{provider}/{camera}/{year}/{month}/{day}/{segment}.mp4";

impl NewModule {
    /// A module with the defaults: enabled, priority 100, the default key template, two
    /// parallel uploads, no secrets, no retention, unencrypted.
    pub fn new(
        provider_key: impl Into<String>,
        name: impl Into<String>,
        config: serde_json::Value,
    ) -> Self {
        NewModule {
            provider_key: provider_key.into(),
            name: name.into(),
            enabled: true,
            config,
            secrets_sealed: None,
            proof: None,
            priority: 100,
            tags: None,
            key_template: DEFAULT_KEY_TEMPLATE.to_owned(),
            retention_days: None,
            chunk_size_bytes: None,
            parallel_uploads: 2,
            bandwidth_limit_bytes_per_second: None,
            read_only: false,
            encrypted: false,
        }
    }
}

/// A change to a module: only the fields that are `Some` change; `Some(None)` clears a
/// nullable one.
#[derive(Clone, Default, PartialEq)]
pub struct ModuleUpdate {
    /// New display name.
    pub name: Option<String>,
    /// Enable / disable.
    pub enabled: Option<bool>,
    /// New non-secret configuration.
    pub config: Option<serde_json::Value>,
    /// New sealed secrets.
    pub secrets_sealed: Option<Option<String>>,
    /// New proof (with new configuration or secrets).
    pub proof: Option<Option<String>>,
    /// New priority.
    pub priority: Option<i32>,
    /// New tags.
    pub tags: Option<Option<serde_json::Value>>,
    /// New key template.
    pub key_template: Option<String>,
    /// New remote retention.
    pub retention_days: Option<Option<i32>>,
    /// New part size.
    pub chunk_size_bytes: Option<Option<i64>>,
    /// New parallelism.
    pub parallel_uploads: Option<i32>,
    /// New bandwidth cap.
    pub bandwidth_limit_bytes_per_second: Option<Option<i64>>,
    /// Read-only or not.
    pub read_only: Option<bool>,
    /// Client-side encryption on or off.
    pub encrypted: Option<bool>,
    /// Draining or not.
    pub draining: Option<bool>,
}

impl std::fmt::Debug for ModuleUpdate {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("ModuleUpdate")
            .field("name", &self.name)
            .field("enabled", &self.enabled)
            .field("config", &self.config)
            .field("secrets_sealed", &self.secrets_sealed.as_ref().map(|_| "<redacted>"))
            .field("proof", &self.proof.as_ref().map(|_| "<redacted>"))
            .field("priority", &self.priority)
            .field("key_template", &self.key_template)
            .field("retention_days", &self.retention_days)
            .field("parallel_uploads", &self.parallel_uploads)
            .field("encrypted", &self.encrypted)
            .field("draining", &self.draining)
            .finish_non_exhaustive()
    }
}

fn check_module_values(
    name: &str,
    key_template: &str,
    parallel: i32,
    retention_days: Option<i32>,
    chunk: Option<i64>,
    bandwidth: Option<i64>,
) -> Result<()> {
    check_name("a storage module name", name, 128)?;
    check_name("a key template", key_template, 255)?;
    if !(1..=64).contains(&parallel) {
        return Err(Error::InvalidInput(format!(
            "parallel uploads must be between 1 and 64, not {parallel}"
        )));
    }
    if let Some(days) = retention_days
        && days < 1
    {
        return Err(Error::InvalidInput(format!(
            "remote retention must be at least one day, not {days}"
        )));
    }
    if let Some(size) = chunk
        && size < 1
    {
        return Err(Error::InvalidInput(format!("the chunk size must be positive, not {size}")));
    }
    if let Some(rate) = bandwidth
        && rate < 1
    {
        return Err(Error::InvalidInput(format!(
            "the bandwidth limit must be positive, not {rate} bytes per second"
        )));
    }
    Ok(())
}

/// Refuse a name another module (not `except`) already has, ignoring case.
async fn check_unique_name(
    db: &impl ConnectionTrait,
    name: &str,
    except: Option<i64>,
) -> Result<()> {
    let wanted = name.trim().to_lowercase();
    let taken = list_modules(db)
        .await?
        .into_iter()
        .any(|m| Some(m.id) != except && m.name.to_lowercase() == wanted);
    if taken {
        return Err(name_conflict(name));
    }
    Ok(())
}

fn name_conflict(name: &str) -> Error {
    Error::Conflict(format!("a storage module named {} already exists", quote(name.trim())))
}

/// Map a unique-index violation on insert/update to the name conflict.
fn unique_or_db(name: &str, e: sea_orm::DbErr) -> Error {
    match e.sql_err() {
        Some(SqlErr::UniqueConstraintViolation(_)) => name_conflict(name),
        _ => db_err(e),
    }
}

/// Add a module; returns its id. A name another module has (ignoring case) is a
/// [`Error::Conflict`]: "a storage module named "NAS" already exists".
pub async fn create_module(
    db: &impl ConnectionTrait,
    new: &NewModule,
    now: DateTime<Utc>,
) -> Result<i64> {
    check_module_values(
        &new.name,
        &new.key_template,
        new.parallel_uploads,
        new.retention_days,
        new.chunk_size_bytes,
        new.bandwidth_limit_bytes_per_second,
    )?;
    check_name("a storage provider id", &new.provider_key, 64)?;
    check_unique_name(db, &new.name, None).await?;
    let row = storage_module::ActiveModel {
        provider_key: Set(new.provider_key.clone()),
        name: Set(new.name.trim().to_owned()),
        enabled: Set(new.enabled),
        config: Set(new.config.clone()),
        secrets: Set(new.secrets_sealed.clone()),
        proof: Set(new.proof.clone()),
        priority: Set(new.priority),
        tags: Set(new.tags.clone()),
        key_template: Set(new.key_template.clone()),
        retention_days: Set(new.retention_days),
        chunk_size_bytes: Set(new.chunk_size_bytes),
        parallel_uploads: Set(new.parallel_uploads),
        bandwidth_limit_bytes_per_second: Set(new.bandwidth_limit_bytes_per_second),
        read_only: Set(new.read_only),
        encrypted: Set(new.encrypted),
        draining: Set(false),
        created_at: Set(now),
        updated_at: Set(now),
        ..Default::default()
    }
    .insert(db)
    .await
    .map_err(|e| unique_or_db(&new.name, e))?;
    Ok(row.id)
}

/// One module; [`Error::NotFound`] when there is none with this id.
pub async fn get_module(db: &impl ConnectionTrait, id: i64) -> Result<storage_module::Model> {
    storage_module::Entity::find_by_id(id)
        .one(db)
        .await
        .map_err(db_err)?
        .ok_or_else(|| Error::NotFound(format!("storage module {id} does not exist")))
}

/// Every module, by priority then id (the order of the global default chain).
pub async fn list_modules(db: &impl ConnectionTrait) -> Result<Vec<storage_module::Model>> {
    storage_module::Entity::find()
        .order_by_asc(storage_module::Column::Priority)
        .order_by_asc(storage_module::Column::Id)
        .all(db)
        .await
        .map_err(db_err)
}

/// Apply `update` to module `id` (after checking the values it results in); returns the stored
/// row.
pub async fn update_module(
    db: &impl ConnectionTrait,
    id: i64,
    update: &ModuleUpdate,
    now: DateTime<Utc>,
) -> Result<storage_module::Model> {
    let current = get_module(db, id).await?;
    let name = update.name.as_deref().map(str::trim).unwrap_or(&current.name).to_owned();
    let template = update.key_template.clone().unwrap_or_else(|| current.key_template.clone());
    let parallel = update.parallel_uploads.unwrap_or(current.parallel_uploads);
    let retention = update.retention_days.unwrap_or(current.retention_days);
    let chunk = update.chunk_size_bytes.unwrap_or(current.chunk_size_bytes);
    let bandwidth =
        update.bandwidth_limit_bytes_per_second.unwrap_or(current.bandwidth_limit_bytes_per_second);
    check_module_values(&name, &template, parallel, retention, chunk, bandwidth)?;
    if update.name.is_some() {
        check_unique_name(db, &name, Some(id)).await?;
    }
    let mut row = current.into_active_model();
    fn put<T: Clone + Into<sea_orm::Value>>(field: &mut sea_orm::ActiveValue<T>, v: &Option<T>) {
        if let Some(v) = v {
            *field = Set(v.clone());
        }
    }
    row.name = Set(name.clone());
    row.key_template = Set(template);
    row.parallel_uploads = Set(parallel);
    row.retention_days = Set(retention);
    row.chunk_size_bytes = Set(chunk);
    row.bandwidth_limit_bytes_per_second = Set(bandwidth);
    put(&mut row.enabled, &update.enabled);
    put(&mut row.config, &update.config);
    put(&mut row.secrets, &update.secrets_sealed);
    put(&mut row.proof, &update.proof);
    put(&mut row.priority, &update.priority);
    put(&mut row.tags, &update.tags);
    put(&mut row.read_only, &update.read_only);
    put(&mut row.encrypted, &update.encrypted);
    put(&mut row.draining, &update.draining);
    row.updated_at = Set(now);
    row.update(db).await.map_err(|e| unique_or_db(&name, e))
}

/// Delete module `id` with its targets, statistics, logs and finished jobs. Refused with
/// [`Error::Conflict`] while uploads are queued or running for it: move them first with
/// [`move_jobs`] (in the same transaction) or drain the module.
pub async fn delete_module(db: &impl ConnectionTrait, id: i64) -> Result<()> {
    let module = get_module(db, id).await?;
    let queued = upload_queue::Entity::find()
        .filter(upload_queue::Column::ModuleId.eq(id))
        .filter(upload_queue::Column::Status.is_in([PENDING, UPLOADING]))
        .count(db)
        .await
        .map_err(db_err)?;
    if queued > 0 {
        return Err(Error::Conflict(format!(
            "{queued} upload(s) are queued for storage module {}; move them to the next module or drain it first",
            quote(&module.name)
        )));
    }
    storage_module::Entity::delete_by_id(id).exec(db).await.map_err(db_err)?;
    Ok(())
}

async fn set_module_cols(
    db: &impl ConnectionTrait,
    id: i64,
    cols: Vec<(storage_module::Column, sea_orm::sea_query::SimpleExpr)>,
) -> Result<()> {
    let mut q = storage_module::Entity::update_many().filter(storage_module::Column::Id.eq(id));
    for (col, v) in cols {
        q = q.col_expr(col, v);
    }
    let res = q.exec(db).await.map_err(db_err)?;
    if res.rows_affected == 0 {
        return Err(Error::NotFound(format!("storage module {id} does not exist")));
    }
    Ok(())
}

/// Enable or disable module `id`.
pub async fn set_enabled(
    db: &impl ConnectionTrait,
    id: i64,
    enabled: bool,
    now: DateTime<Utc>,
) -> Result<()> {
    use storage_module::Column as C;
    set_module_cols(
        db,
        id,
        vec![(C::Enabled, Expr::value(enabled)), (C::UpdatedAt, Expr::value(now))],
    )
    .await
}

/// Start or stop draining module `id` (no new jobs; the caller disables it once
/// [`queue_summary`] shows nothing pending or uploading for it).
pub async fn set_draining(
    db: &impl ConnectionTrait,
    id: i64,
    draining: bool,
    now: DateTime<Utc>,
) -> Result<()> {
    use storage_module::Column as C;
    set_module_cols(
        db,
        id,
        vec![(C::Draining, Expr::value(draining)), (C::UpdatedAt, Expr::value(now))],
    )
    .await
}

/// Store the outcome of a connection test of module `id` at `at`: `last_test_at`, and
/// `last_test_ok_at` (passed) or `last_test_error` (failed; `error` is a message for people).
pub async fn record_test(
    db: &impl ConnectionTrait,
    id: i64,
    ok: bool,
    error: Option<&str>,
    at: DateTime<Utc>,
) -> Result<()> {
    use storage_module::Column as C;
    let mut cols = vec![(C::LastTestAt, Expr::value(at))];
    if ok {
        cols.push((C::LastTestOkAt, Expr::value(at)));
        cols.push((C::LastTestError, Expr::value(Option::<String>::None)));
    } else {
        cols.push((C::LastTestError, Expr::value(error.unwrap_or("the test failed").to_owned())));
    }
    set_module_cols(db, id, cols).await
}

/// Store the outcome of a write to module `id` at `at` in its `last_write_at`, `last_ok_at` or
/// `last_error_at` + `last_error` (the last error stays after later successes, with its time).
pub async fn set_last_write(
    db: &impl ConnectionTrait,
    id: i64,
    ok: bool,
    error: Option<&str>,
    at: DateTime<Utc>,
) -> Result<()> {
    use storage_module::Column as C;
    get_module(db, id).await?;
    // Each time moves forward only, so writes recorded out of order keep the latest.
    let newer = |col: C| Condition::any().add(col.is_null()).add(col.lte(at));
    let mut updates = vec![(C::LastWriteAt, vec![(C::LastWriteAt, Expr::value(at))])];
    if ok {
        updates.push((C::LastOkAt, vec![(C::LastOkAt, Expr::value(at))]));
    } else {
        let message = error.unwrap_or("the write failed").to_owned();
        updates.push((
            C::LastErrorAt,
            vec![(C::LastErrorAt, Expr::value(at)), (C::LastError, Expr::value(message))],
        ));
    }
    for (guard, cols) in updates {
        let mut q = storage_module::Entity::update_many()
            .filter(storage_module::Column::Id.eq(id))
            .filter(newer(guard));
        for (col, v) in cols {
            q = q.col_expr(col, v);
        }
        q.exec(db).await.map_err(db_err)?;
    }
    Ok(())
}

// ---------------------------------------------------------------------------------------------
// Targets

/// A target's tier: which segments are uploaded to it.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum UploadMode {
    /// Every segment.
    All,
    /// Only segments with motion within the padding before or after them.
    Motion,
}

impl UploadMode {
    /// The stored value: `all` or `motion`.
    pub fn as_str(self) -> &'static str {
        match self {
            UploadMode::All => "all",
            UploadMode::Motion => "motion",
        }
    }

    /// Parse a stored or submitted value.
    pub fn parse(s: &str) -> Result<Self> {
        match s {
            "all" => Ok(UploadMode::All),
            "motion" => Ok(UploadMode::Motion),
            other => Err(Error::InvalidInput(format!(
                "the upload mode is \"all\" or \"motion\", not {}",
                quote(other)
            ))),
        }
    }
}

/// A camera's storage target as stored.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct TargetRow {
    /// The module.
    pub module_id: i64,
    /// Position in the camera's chain (lower first).
    pub priority: i32,
    /// Tier.
    pub mode: UploadMode,
    /// Motion padding in seconds.
    pub padding_seconds: i32,
    /// Whether the target is used.
    pub enabled: bool,
}

/// A target to set on a camera ([`replace_camera_targets`]); the order of the list is the
/// priority order.
#[derive(Debug, Clone, PartialEq, Eq, Deserialize)]
pub struct TargetSpec {
    /// The module.
    pub module_id: i64,
    /// Tier.
    pub mode: UploadMode,
    /// Motion padding in seconds (0–3600).
    pub padding_seconds: i32,
    /// Whether the target is used.
    pub enabled: bool,
}

/// A camera's targets in priority order (empty: the camera uses the global default).
pub async fn camera_targets(db: &impl ConnectionTrait, camera: i64) -> Result<Vec<TargetRow>> {
    let rows = camera_storage_target::Entity::find()
        .filter(camera_storage_target::Column::CameraId.eq(camera))
        .order_by_asc(camera_storage_target::Column::Priority)
        .order_by_asc(camera_storage_target::Column::Id)
        .all(db)
        .await
        .map_err(db_err)?;
    rows.into_iter()
        .map(|r| {
            Ok(TargetRow {
                module_id: r.module_id,
                priority: r.priority,
                mode: UploadMode::parse(&r.mode)?,
                padding_seconds: r.padding_seconds,
                enabled: r.enabled,
            })
        })
        .collect()
}

/// Replace a camera's targets with `targets` (priority = position in the list; empty: back to
/// the global default). Checks that the camera and every module exist, that no module is
/// listed twice and that paddings are within 0–3600 s. Run it in a transaction when the
/// caller changes other things with it.
pub async fn replace_camera_targets(
    db: &impl ConnectionTrait,
    camera: i64,
    targets: &[TargetSpec],
) -> Result<()> {
    if camera::Entity::find_by_id(camera).one(db).await.map_err(db_err)?.is_none() {
        return Err(Error::NotFound(format!("camera {camera} does not exist")));
    }
    let modules: HashSet<i64> = list_modules(db).await?.into_iter().map(|m| m.id).collect();
    let mut seen = HashSet::new();
    for t in targets {
        if !modules.contains(&t.module_id) {
            return Err(Error::InvalidInput(format!(
                "storage module {} does not exist",
                t.module_id
            )));
        }
        if !seen.insert(t.module_id) {
            return Err(Error::InvalidInput(format!(
                "storage module {} is listed twice in the camera's storage targets",
                t.module_id
            )));
        }
        if !(0..=MAX_PADDING_SECONDS).contains(&t.padding_seconds) {
            return Err(Error::InvalidInput(format!(
                "the motion padding is between 0 and {MAX_PADDING_SECONDS} seconds, not {}",
                t.padding_seconds
            )));
        }
    }
    camera_storage_target::Entity::delete_many()
        .filter(camera_storage_target::Column::CameraId.eq(camera))
        .exec(db)
        .await
        .map_err(db_err)?;
    for (i, t) in targets.iter().enumerate() {
        camera_storage_target::ActiveModel {
            camera_id: Set(camera),
            module_id: Set(t.module_id),
            priority: Set(i32::try_from(i).unwrap_or(i32::MAX)),
            enabled: Set(t.enabled),
            mode: Set(t.mode.as_str().to_owned()),
            padding_seconds: Set(t.padding_seconds),
            ..Default::default()
        }
        .insert(db)
        .await
        .map_err(db_err)?;
    }
    Ok(())
}

fn writable(m: &storage_module::Model) -> bool {
    m.enabled && !m.draining && !m.read_only
}

/// The global default chain: every enabled, non-draining, writable module by priority, then id.
pub async fn default_chain(db: &impl ConnectionTrait) -> Result<Vec<i64>> {
    Ok(list_modules(db).await?.into_iter().filter(writable).map(|m| m.id).collect())
}

// ---------------------------------------------------------------------------------------------
// Queue

/// One chain a segment is queued for.
struct Chain {
    modules: Vec<i64>,
    mode: UploadMode,
    padding: i32,
}

/// The chains of a camera: its targets split by tier, or the global default.
async fn chains_for(db: &impl ConnectionTrait, camera: i64) -> Result<Vec<Chain>> {
    let targets = camera_targets(db, camera).await?;
    let modules = list_modules(db).await?;
    if targets.is_empty() {
        let modules: Vec<i64> = modules.into_iter().filter(writable).map(|m| m.id).collect();
        return Ok(vec![Chain { modules, mode: UploadMode::All, padding: 0 }]);
    }
    let usable: HashSet<i64> = modules.iter().filter(|m| writable(m)).map(|m| m.id).collect();
    let mut all = Chain { modules: Vec::new(), mode: UploadMode::All, padding: 0 };
    let mut motion = Chain { modules: Vec::new(), mode: UploadMode::Motion, padding: 0 };
    for t in targets.iter().filter(|t| t.enabled && usable.contains(&t.module_id)) {
        match t.mode {
            UploadMode::All => all.modules.push(t.module_id),
            UploadMode::Motion => {
                motion.modules.push(t.module_id);
                motion.padding = Ord::max(motion.padding, t.padding_seconds);
            }
        }
    }
    Ok(vec![all, motion])
}

/// Queue a finished segment for upload: one job per chain of its camera (the camera's `all`
/// targets, its `motion` targets, or the global default when it has no targets). Returns how
/// many jobs were queued: 0 when no module applies, or when the segment was queued before
/// (calling it twice is harmless). An `all` job is due at `now`; a `motion` job at the
/// segment's end + padding + [`MOTION_SETTLE_SECONDS`] (or `now` if later).
pub async fn enqueue_segment(
    db: &impl ConnectionTrait,
    segment_id: i64,
    camera_id: i64,
    now: DateTime<Utc>,
) -> Result<usize> {
    let seg = segment::Entity::find_by_id(segment_id)
        .one(db)
        .await
        .map_err(db_err)?
        .ok_or_else(|| Error::NotFound(format!("recording {segment_id} does not exist")))?;
    if seg.camera_id != camera_id {
        return Err(Error::InvalidInput(format!(
            "recording {segment_id} belongs to camera {}, not camera {camera_id}",
            seg.camera_id
        )));
    }
    let already = upload_queue::Entity::find()
        .filter(upload_queue::Column::SegmentId.eq(segment_id))
        .count(db)
        .await
        .map_err(db_err)?;
    if already > 0 {
        return Ok(0);
    }
    let mut queued = 0;
    for chain in chains_for(db, camera_id).await? {
        let Some(&first) = chain.modules.first() else {
            continue;
        };
        let due = match chain.mode {
            UploadMode::All => now,
            UploadMode::Motion => Ord::max(
                seg.ended_at + Duration::seconds(i64::from(chain.padding) + MOTION_SETTLE_SECONDS),
                now,
            ),
        };
        upload_queue::ActiveModel {
            segment_id: Set(segment_id),
            module_id: Set(first),
            status: Set(PENDING.into()),
            attempts: Set(0),
            next_attempt_at: Set(due),
            last_error: Set(None),
            remote_key: Set(None),
            priority: Set(100),
            created_at: Set(now),
            updated_at: Set(now),
            completed_at: Set(None),
            chain: Set(Some(serde_json::json!(chain.modules))),
            lease_until: Set(None),
            size_bytes: Set(None),
            checksum: Set(None),
            camera_id: Set(camera_id),
            mode: Set(chain.mode.as_str().into()),
            padding_seconds: Set(chain.padding),
            ..Default::default()
        }
        .insert(db)
        .await
        .map_err(db_err)?;
        queued += 1;
    }
    Ok(queued)
}

/// The module ids of a job's chain (the job's module alone for rows without a chain).
pub fn job_chain(job: &upload_queue::Model) -> Vec<i64> {
    let chain: Vec<i64> = job
        .chain
        .as_ref()
        .and_then(|v| v.as_array())
        .map(|a| a.iter().filter_map(serde_json::Value::as_i64).collect())
        .unwrap_or_default();
    if chain.is_empty() { vec![job.module_id] } else { chain }
}

/// A job with what an uploader or a listing needs: its chain, its segment and camera name.
#[derive(Debug, Clone, PartialEq)]
pub struct JobDetail {
    /// The job row.
    pub job: upload_queue::Model,
    /// Its failover chain (module ids in order).
    pub chain: Vec<i64>,
    /// The segment to upload.
    pub segment: segment::Model,
    /// The camera's name (for key templates and display).
    pub camera_name: String,
}

/// A claimed job (see [`claim_due_jobs`]).
pub type DueJob = JobDetail;

async fn with_details(
    db: &impl ConnectionTrait,
    jobs: Vec<upload_queue::Model>,
) -> Result<Vec<JobDetail>> {
    let seg_ids: Vec<i64> = jobs.iter().map(|j| j.segment_id).collect();
    let segments: HashMap<i64, segment::Model> = if seg_ids.is_empty() {
        HashMap::new()
    } else {
        segment::Entity::find()
            .filter(segment::Column::Id.is_in(seg_ids))
            .all(db)
            .await
            .map_err(db_err)?
            .into_iter()
            .map(|s| (s.id, s))
            .collect()
    };
    let cam_ids: HashSet<i64> = segments.values().map(|s| s.camera_id).collect();
    let cameras: HashMap<i64, String> = if cam_ids.is_empty() {
        HashMap::new()
    } else {
        camera::Entity::find()
            .filter(camera::Column::Id.is_in(cam_ids))
            .all(db)
            .await
            .map_err(db_err)?
            .into_iter()
            .map(|c| (c.id, c.name))
            .collect()
    };
    Ok(jobs
        .into_iter()
        .filter_map(|job| {
            let segment = segments.get(&job.segment_id)?.clone();
            let camera_name = cameras.get(&segment.camera_id).cloned().unwrap_or_default();
            Some(JobDetail { chain: job_chain(&job), job, segment, camera_name })
        })
        .collect())
}

/// Move a pending job to `status` with `reason`, only if it is still pending (so two callers
/// never both act on it). Returns whether this call changed it.
async fn settle_pending(
    db: &impl ConnectionTrait,
    id: i64,
    status: &str,
    reason: &str,
    now: DateTime<Utc>,
) -> Result<bool> {
    use upload_queue::Column as C;
    let res = upload_queue::Entity::update_many()
        .col_expr(C::Status, Expr::value(status))
        .col_expr(C::LastError, Expr::value(reason))
        .col_expr(C::CompletedAt, Expr::value(now))
        .col_expr(C::UpdatedAt, Expr::value(now))
        .filter(C::Id.eq(id))
        .filter(C::Status.eq(PENDING))
        .exec(db)
        .await
        .map_err(db_err)?;
    Ok(res.rows_affected == 1)
}

/// Claim up to `limit` due jobs (pending, `next_attempt_at` ≤ `now`), by priority then due
/// time: each becomes `uploading` with `lease_until = now + lease`. A job is claimed with
/// `UPDATE … WHERE id = ? AND status = 'pending'`, so concurrent callers never get the same job.
///
/// `motion` jobs are decided here: without motion on the camera between the segment's start −
/// padding and its end + padding they become `skipped` and are not returned. A job whose
/// segment's local file is gone is skipped too.
pub async fn claim_due_jobs(
    db: &impl ConnectionTrait,
    now: DateTime<Utc>,
    lease: Duration,
    limit: u64,
) -> Result<Vec<DueJob>> {
    use upload_queue::Column as C;
    let mut claimed = Vec::new();
    // Skipped jobs, and jobs another caller claimed first, free their slot: look again until
    // `limit` are claimed or nothing is due (bounded, in case others keep winning).
    for _round in 0..16 {
        if claimed.len() as u64 >= limit {
            break;
        }
        let want = limit - claimed.len() as u64;
        let candidates = upload_queue::Entity::find()
            .filter(C::Status.eq(PENDING))
            .filter(C::NextAttemptAt.lte(now))
            .order_by_asc(C::Priority)
            .order_by_asc(C::NextAttemptAt)
            .order_by_asc(C::Id)
            .limit(want)
            .all(db)
            .await
            .map_err(db_err)?;
        if candidates.is_empty() {
            break;
        }
        let mut short = false;
        for detail in with_details(db, candidates).await? {
            let job = &detail.job;
            if detail.segment.local_deleted_at.is_some() {
                let reason = "the local file was deleted before it could be uploaded";
                settle_pending(db, job.id, SKIPPED, reason, now).await?;
                short = true;
                continue;
            }
            if job.mode == UploadMode::Motion.as_str() {
                let pad = Duration::seconds(i64::from(job.padding_seconds));
                let (from, to) = (detail.segment.started_at - pad, detail.segment.ended_at + pad);
                if !motion_overlaps(db, detail.segment.camera_id, from, to).await? {
                    let reason = format!(
                        "no motion within {} s of the segment (motion-only target)",
                        job.padding_seconds
                    );
                    settle_pending(db, job.id, SKIPPED, &reason, now).await?;
                    short = true;
                    continue;
                }
            }
            let res = upload_queue::Entity::update_many()
                .col_expr(C::Status, Expr::value(UPLOADING))
                .col_expr(C::LeaseUntil, Expr::value(now + lease))
                .col_expr(C::UpdatedAt, Expr::value(now))
                .filter(C::Id.eq(job.id))
                .filter(C::Status.eq(PENDING))
                .exec(db)
                .await
                .map_err(db_err)?;
            if res.rows_affected == 1 {
                let mut detail = detail;
                detail.job.status = UPLOADING.into();
                detail.job.lease_until = Some(now + lease);
                detail.job.updated_at = now;
                claimed.push(detail);
            } else {
                short = true;
            }
        }
        if !short {
            // Everything we saw was claimed: done for now.
            break;
        }
    }
    Ok(claimed)
}

async fn job_exists(db: &impl ConnectionTrait, id: i64) -> Result<upload_queue::Model> {
    upload_queue::Entity::find_by_id(id)
        .one(db)
        .await
        .map_err(db_err)?
        .ok_or_else(|| Error::NotFound(format!("upload job {id} does not exist")))
}

/// Mark job `id` done: its verified copy is `remote_key` in `module_id` (`size` bytes,
/// `checksum` as the provider reports it). Also sets the segment's `storage_key` when it has
/// none yet. Finishing a job that is already done changes nothing.
#[allow(clippy::too_many_arguments)]
pub async fn finish_job(
    db: &impl ConnectionTrait,
    id: i64,
    module_id: i64,
    remote_key: &str,
    size: i64,
    checksum: Option<&str>,
    now: DateTime<Utc>,
) -> Result<()> {
    use upload_queue::Column as C;
    let job = job_exists(db, id).await?;
    if job.status == DONE {
        return Ok(());
    }
    upload_queue::Entity::update_many()
        .col_expr(C::Status, Expr::value(DONE))
        .col_expr(C::ModuleId, Expr::value(module_id))
        .col_expr(C::RemoteKey, Expr::value(remote_key))
        .col_expr(C::SizeBytes, Expr::value(size))
        .col_expr(C::Checksum, Expr::value(checksum.map(|c| truncate(c, 128))))
        .col_expr(C::LeaseUntil, Expr::value(Option::<DateTime<Utc>>::None))
        .col_expr(C::LastError, Expr::value(Option::<String>::None))
        .col_expr(C::CompletedAt, Expr::value(now))
        .col_expr(C::UpdatedAt, Expr::value(now))
        .filter(C::Id.eq(id))
        .exec(db)
        .await
        .map_err(db_err)?;
    segment::Entity::update_many()
        .col_expr(segment::Column::StorageKey, Expr::value(remote_key))
        .filter(segment::Column::Id.eq(job.segment_id))
        .filter(segment::Column::StorageKey.is_null())
        .exec(db)
        .await
        .map_err(db_err)?;
    Ok(())
}

/// Record a failed attempt of job `id` on `module_id`: back to `pending`, `attempts` + 1,
/// `last_error = error`, not retried before `next_at`. A job that is no longer pending or
/// uploading (done, skipped, expired) is left as it is.
pub async fn fail_job(
    db: &impl ConnectionTrait,
    id: i64,
    module_id: i64,
    error: &str,
    next_at: DateTime<Utc>,
    now: DateTime<Utc>,
) -> Result<()> {
    use sea_orm::sea_query::ExprTrait;
    use upload_queue::Column as C;
    job_exists(db, id).await?;
    upload_queue::Entity::update_many()
        .col_expr(C::Status, Expr::value(PENDING))
        .col_expr(C::ModuleId, Expr::value(module_id))
        .col_expr(C::Attempts, Expr::col(C::Attempts).add(1))
        .col_expr(C::LastError, Expr::value(error))
        .col_expr(C::NextAttemptAt, Expr::value(next_at))
        .col_expr(C::LeaseUntil, Expr::value(Option::<DateTime<Utc>>::None))
        .col_expr(C::UpdatedAt, Expr::value(now))
        .filter(C::Id.eq(id))
        .filter(C::Status.is_in([PENDING, UPLOADING]))
        .exec(db)
        .await
        .map_err(db_err)?;
    Ok(())
}

/// Mark job `id` skipped (not uploaded on purpose) with `reason`, from pending or uploading.
pub async fn skip_job(
    db: &impl ConnectionTrait,
    id: i64,
    reason: &str,
    now: DateTime<Utc>,
) -> Result<()> {
    use upload_queue::Column as C;
    job_exists(db, id).await?;
    upload_queue::Entity::update_many()
        .col_expr(C::Status, Expr::value(SKIPPED))
        .col_expr(C::LastError, Expr::value(reason))
        .col_expr(C::LeaseUntil, Expr::value(Option::<DateTime<Utc>>::None))
        .col_expr(C::CompletedAt, Expr::value(now))
        .col_expr(C::UpdatedAt, Expr::value(now))
        .filter(C::Id.eq(id))
        .filter(C::Status.is_in([PENDING, UPLOADING]))
        .exec(db)
        .await
        .map_err(db_err)?;
    Ok(())
}

async fn requeue_where(
    db: &impl ConnectionTrait,
    cond: Condition,
    now: DateTime<Utc>,
) -> Result<u64> {
    use upload_queue::Column as C;
    let res = upload_queue::Entity::update_many()
        .col_expr(C::Status, Expr::value(PENDING))
        .col_expr(C::LeaseUntil, Expr::value(Option::<DateTime<Utc>>::None))
        .col_expr(C::NextAttemptAt, Expr::value(now))
        .col_expr(C::UpdatedAt, Expr::value(now))
        .filter(C::Status.eq(UPLOADING))
        .filter(cond)
        .exec(db)
        .await
        .map_err(db_err)?;
    Ok(res.rows_affected)
}

/// Put `uploading` jobs whose lease ended before `now` back to `pending`, due now (their worker
/// died); returns how many. `attempts` is unchanged.
pub async fn requeue_stale(db: &impl ConnectionTrait, now: DateTime<Utc>) -> Result<u64> {
    use upload_queue::Column as C;
    let cond = Condition::any().add(C::LeaseUntil.is_null()).add(C::LeaseUntil.lt(now));
    requeue_where(db, cond, now).await
}

/// At start-up, before the upload engine runs: every `uploading` job belonged to the previous
/// process (one server per records database), so all go back to `pending`, leases or not.
pub async fn requeue_all_uploading(db: &impl ConnectionTrait, now: DateTime<Utc>) -> Result<u64> {
    requeue_where(db, Condition::all(), now).await
}

/// Before deleting module `from`: its pending jobs move to the next module of their chain
/// (`from` is removed from the chain), or to the global default chain without `from` when their
/// chain has no other module. Returns how many moved. [`Error::Conflict`] while uploads to
/// `from` are running, or when a job has nowhere to go.
pub async fn move_jobs(db: &impl ConnectionTrait, from: i64, now: DateTime<Utc>) -> Result<u64> {
    use upload_queue::Column as C;
    let module = get_module(db, from).await?;
    let running = active_jobs(db, from).await?;
    if running > 0 {
        return Err(Error::Conflict(format!(
            "{running} upload(s) to storage module {} are running; wait for them to finish",
            quote(&module.name)
        )));
    }
    let fallback: Vec<i64> = default_chain(db).await?.into_iter().filter(|&m| m != from).collect();
    let jobs = upload_queue::Entity::find()
        .filter(C::Status.eq(PENDING))
        .filter(C::ModuleId.eq(from))
        .all(db)
        .await
        .map_err(db_err)?;
    let mut moved = 0;
    for job in jobs {
        let mut chain: Vec<i64> = job_chain(&job).into_iter().filter(|&m| m != from).collect();
        if chain.is_empty() {
            chain = fallback.clone();
        }
        let Some(&next) = chain.first() else {
            return Err(Error::Conflict(format!(
                "the uploads queued for storage module {} have no other module to go to; add or enable another module, or drain this one",
                quote(&module.name)
            )));
        };
        upload_queue::Entity::update_many()
            .col_expr(C::ModuleId, Expr::value(next))
            .col_expr(C::Chain, Expr::value(serde_json::json!(chain)))
            .col_expr(C::UpdatedAt, Expr::value(now))
            .filter(C::Id.eq(job.id))
            .filter(C::Status.eq(PENDING))
            .exec(db)
            .await
            .map_err(db_err)?;
        moved += 1;
    }
    Ok(moved)
}

/// How many uploads to `module` are running (`uploading`).
pub async fn active_jobs(db: &impl ConnectionTrait, module: i64) -> Result<u64> {
    upload_queue::Entity::find()
        .filter(upload_queue::Column::ModuleId.eq(module))
        .filter(upload_queue::Column::Status.eq(UPLOADING))
        .count(db)
        .await
        .map_err(db_err)
}

/// Counts of the queue (of one module, or all).
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize)]
pub struct QueueSummary {
    /// Waiting, including failed ones waiting for a retry.
    pub pending: u64,
    /// Running.
    pub uploading: u64,
    /// Pending after at least one failed attempt.
    pub failed: u64,
    /// Done in the 24 hours before `now`.
    pub done_24h: u64,
    /// Done, ever (remote copies held).
    pub done_total: u64,
    /// Skipped, ever.
    pub skipped: u64,
}

/// Queue counts for `module` (None: every module) as of `now`.
pub async fn queue_summary(
    db: &impl ConnectionTrait,
    module: Option<i64>,
    now: DateTime<Utc>,
) -> Result<QueueSummary> {
    use upload_queue::Column as C;
    let base = || {
        let q = upload_queue::Entity::find();
        match module {
            Some(m) => q.filter(C::ModuleId.eq(m)),
            None => q,
        }
    };
    let count =
        |q: sea_orm::Select<upload_queue::Entity>| async move { q.count(db).await.map_err(db_err) };
    Ok(QueueSummary {
        pending: count(base().filter(C::Status.eq(PENDING))).await?,
        uploading: count(base().filter(C::Status.eq(UPLOADING))).await?,
        failed: count(base().filter(C::Status.eq(PENDING)).filter(C::Attempts.gt(0))).await?,
        done_24h: count(
            base().filter(C::Status.eq(DONE)).filter(C::CompletedAt.gte(now - Duration::hours(24))),
        )
        .await?,
        done_total: count(base().filter(C::Status.eq(DONE))).await?,
        skipped: count(base().filter(C::Status.eq(SKIPPED))).await?,
    })
}

/// Which jobs [`list_jobs`] returns.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct JobFilter {
    /// Only this module's jobs.
    pub module: Option<i64>,
    /// Only this status; `failed` means pending after at least one failed attempt.
    pub status: Option<String>,
    /// At most this many (capped at 1000).
    pub limit: u64,
}

impl Default for JobFilter {
    fn default() -> Self {
        JobFilter { module: None, status: None, limit: 100 }
    }
}

/// Jobs matching `filter`, most recently changed first, with their segment and camera name.
pub async fn list_jobs(db: &impl ConnectionTrait, filter: &JobFilter) -> Result<Vec<JobDetail>> {
    use upload_queue::Column as C;
    let mut q = upload_queue::Entity::find();
    if let Some(m) = filter.module {
        q = q.filter(C::ModuleId.eq(m));
    }
    match filter.status.as_deref() {
        None => {}
        Some("failed") => q = q.filter(C::Status.eq(PENDING)).filter(C::Attempts.gt(0)),
        Some(s @ (PENDING | UPLOADING | DONE | SKIPPED | EXPIRED)) => q = q.filter(C::Status.eq(s)),
        Some(other) => {
            return Err(Error::InvalidInput(format!(
                "the upload status is one of pending, uploading, failed, done, skipped or expired, not {}",
                quote(other)
            )));
        }
    }
    let jobs = q
        .order_by_desc(C::UpdatedAt)
        .order_by_desc(C::Id)
        .limit(filter.limit.clamp(1, 1000))
        .all(db)
        .await
        .map_err(db_err)?;
    with_details(db, jobs).await
}

/// Whether the camera had motion between `from` and `to` (inclusive): a motion event (open
/// ones last until now) or a segment flagged with motion overlaps the window.
pub async fn motion_overlaps(
    db: &impl ConnectionTrait,
    camera: i64,
    from: DateTime<Utc>,
    to: DateTime<Utc>,
) -> Result<bool> {
    let events = motion_event::Entity::find()
        .filter(motion_event::Column::CameraId.eq(camera))
        .filter(motion_event::Column::StartedAt.lte(to))
        .filter(
            Condition::any()
                .add(motion_event::Column::EndedAt.is_null())
                .add(motion_event::Column::EndedAt.gte(from)),
        )
        .count(db)
        .await
        .map_err(db_err)?;
    if events > 0 {
        return Ok(true);
    }
    let flagged = segment::Entity::find()
        .filter(segment::Column::CameraId.eq(camera))
        .filter(segment::Column::Motion.eq(true))
        .filter(segment::Column::StartedAt.lte(to))
        .filter(segment::Column::EndedAt.gte(from))
        .count(db)
        .await
        .map_err(db_err)?;
    Ok(flagged > 0)
}

// ---------------------------------------------------------------------------------------------
// Remote copies and retention

/// A verified remote copy of a segment.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct RemoteCopy {
    /// The job that made it.
    pub job_id: i64,
    /// The segment.
    pub segment_id: i64,
    /// The module holding it.
    pub module_id: i64,
    /// Its key in the module.
    pub remote_key: String,
    /// Its verified size in bytes.
    pub size_bytes: Option<i64>,
    /// Its checksum as the provider reports it.
    pub checksum: Option<String>,
}

fn copy_of(job: upload_queue::Model) -> Option<RemoteCopy> {
    Some(RemoteCopy {
        job_id: job.id,
        segment_id: job.segment_id,
        module_id: job.module_id,
        remote_key: job.remote_key?,
        size_bytes: job.size_bytes,
        checksum: job.checksum,
    })
}

/// The remote copies of a segment (done jobs), in the modules' priority order: play or export
/// from the first one whose module is reachable.
pub async fn remote_copies(db: &impl ConnectionTrait, segment_id: i64) -> Result<Vec<RemoteCopy>> {
    let jobs = upload_queue::Entity::find()
        .filter(upload_queue::Column::SegmentId.eq(segment_id))
        .filter(upload_queue::Column::Status.eq(DONE))
        .filter(upload_queue::Column::RemoteKey.is_not_null())
        .order_by_asc(upload_queue::Column::Id)
        .all(db)
        .await
        .map_err(db_err)?;
    let order: HashMap<i64, usize> =
        list_modules(db).await?.into_iter().enumerate().map(|(i, m)| (m.id, i)).collect();
    let mut copies: Vec<RemoteCopy> = jobs.into_iter().filter_map(copy_of).collect();
    copies.sort_by_key(|c| order.get(&c.module_id).copied().unwrap_or(usize::MAX));
    Ok(copies)
}

/// Record that local retention removed the segment's file at `at` (its row stays while remote
/// copies exist). Retention should only do this for segments that have [`remote_copies`].
pub async fn mark_local_deleted(
    db: &impl ConnectionTrait,
    segment_id: i64,
    at: DateTime<Utc>,
) -> Result<()> {
    let res = segment::Entity::update_many()
        .col_expr(segment::Column::LocalDeletedAt, Expr::value(at))
        .filter(segment::Column::Id.eq(segment_id))
        .exec(db)
        .await
        .map_err(db_err)?;
    if res.rows_affected == 0 {
        return Err(Error::NotFound(format!("recording {segment_id} does not exist")));
    }
    Ok(())
}

/// Remote copies in `module_id` whose segment ended before `before` (remote retention), not
/// protected, oldest first, at most `limit`. Delete each object, then [`mark_expired`].
pub async fn segments_past_remote_retention(
    db: &impl ConnectionTrait,
    module_id: i64,
    before: DateTime<Utc>,
    limit: u64,
) -> Result<Vec<RemoteCopy>> {
    use sea_orm::QueryTrait;
    let old = segment::Entity::find()
        .select_only()
        .column(segment::Column::Id)
        .filter(segment::Column::EndedAt.lt(before))
        .filter(segment::Column::Protected.eq(false))
        .into_query();
    let jobs = upload_queue::Entity::find()
        .filter(upload_queue::Column::ModuleId.eq(module_id))
        .filter(upload_queue::Column::Status.eq(DONE))
        .filter(upload_queue::Column::SegmentId.in_subquery(old))
        .order_by_asc(upload_queue::Column::SegmentId)
        .limit(limit)
        .all(db)
        .await
        .map_err(db_err)?;
    Ok(jobs.into_iter().filter_map(copy_of).collect())
}

/// Mark job `job_id`'s remote copy as removed by remote retention. Returns true when its
/// segment now has neither a local file nor another remote copy: the caller deletes the row.
pub async fn mark_expired(
    db: &impl ConnectionTrait,
    job_id: i64,
    now: DateTime<Utc>,
) -> Result<bool> {
    use upload_queue::Column as C;
    let job = job_exists(db, job_id).await?;
    upload_queue::Entity::update_many()
        .col_expr(C::Status, Expr::value(EXPIRED))
        .col_expr(C::UpdatedAt, Expr::value(now))
        .filter(C::Id.eq(job_id))
        .filter(C::Status.eq(DONE))
        .exec(db)
        .await
        .map_err(db_err)?;
    let Some(seg) = segment::Entity::find_by_id(job.segment_id).one(db).await.map_err(db_err)?
    else {
        return Ok(false);
    };
    if seg.local_deleted_at.is_none() {
        return Ok(false);
    }
    Ok(remote_copies(db, seg.id).await?.is_empty())
}

// ---------------------------------------------------------------------------------------------
// Write statistics and health

/// Record one write (upload) to `module` at `at`: a statistics row, and the module's
/// `last_write_at` / `last_ok_at` / `last_error_at` + `last_error`.
#[allow(clippy::too_many_arguments)]
pub async fn record_write(
    db: &impl ConnectionTrait,
    module: i64,
    at: DateTime<Utc>,
    ok: bool,
    size_bytes: i64,
    duration_ms: i64,
    error: Option<&str>,
) -> Result<()> {
    storage_module_write_stat::ActiveModel {
        module_id: Set(module),
        at: Set(at),
        ok: Set(ok),
        size_bytes: Set(size_bytes.max(0)),
        duration_ms: Set(duration_ms.max(0)),
        error: Set(if ok { None } else { error.map(str::to_owned) }),
        ..Default::default()
    }
    .insert(db)
    .await
    .map_err(db_err)?;
    set_last_write(db, module, ok, error, at).await
}

/// A module's write statistics as of `now`.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct WriteSummary {
    /// Last write, either way.
    pub last_write_at: Option<DateTime<Utc>>,
    /// Last successful write.
    pub last_ok_at: Option<DateTime<Utc>>,
    /// Last failed write.
    pub last_error_at: Option<DateTime<Utc>>,
    /// Its error.
    pub last_error: Option<String>,
    /// Bytes written successfully since midnight UTC.
    pub bytes_today: i64,
    /// Bytes written successfully since the first of the month (UTC).
    pub bytes_month: i64,
    /// Writes in the last 24 hours.
    pub writes_24h: u64,
    /// Failed writes in the last 24 hours.
    pub errors_24h: u64,
    /// `errors_24h / writes_24h` (0 without writes).
    pub error_rate_24h: f64,
}

/// Sum of successful write sizes of `module` since `since`, computed in SQL with a result type
/// each engine decodes as a 64-bit integer.
async fn bytes_since(db: &impl ConnectionTrait, module: i64, since: DateTime<Utc>) -> Result<i64> {
    use storage_module_write_stat::Column as C;
    let sum = match db.get_database_backend() {
        DbBackend::Postgres => "CAST(COALESCE(SUM(size_bytes), 0) AS BIGINT)",
        DbBackend::MySql => "CAST(COALESCE(SUM(size_bytes), 0) AS SIGNED)",
        _ => "COALESCE(SUM(size_bytes), 0)",
    };
    let total: Option<i64> = storage_module_write_stat::Entity::find()
        .select_only()
        .column_as(Expr::cust(sum), "total")
        .filter(C::ModuleId.eq(module))
        .filter(C::Ok.eq(true))
        .filter(C::At.gte(since))
        .into_tuple()
        .one(db)
        .await
        .map_err(db_err)?;
    Ok(total.unwrap_or(0))
}

/// A module's write statistics as of `now` (days and months in UTC).
pub async fn write_summary(
    db: &impl ConnectionTrait,
    module: i64,
    now: DateTime<Utc>,
) -> Result<WriteSummary> {
    use storage_module_write_stat::Column as C;
    let m = get_module(db, module).await?;
    let midnight = Utc.from_utc_datetime(&now.date_naive().and_time(NaiveTime::MIN));
    let first = now.date_naive().with_day(1).unwrap_or(now.date_naive());
    let month = Utc.from_utc_datetime(&first.and_time(NaiveTime::MIN));
    let day_ago = now - Duration::hours(24);
    let recent = || {
        storage_module_write_stat::Entity::find()
            .filter(C::ModuleId.eq(module))
            .filter(C::At.gt(day_ago))
            .filter(C::At.lte(now))
    };
    let writes_24h = recent().count(db).await.map_err(db_err)?;
    let errors_24h = recent().filter(C::Ok.eq(false)).count(db).await.map_err(db_err)?;
    Ok(WriteSummary {
        last_write_at: m.last_write_at,
        last_ok_at: m.last_ok_at,
        last_error_at: m.last_error_at,
        last_error: m.last_error,
        bytes_today: bytes_since(db, module, midnight).await?,
        bytes_month: bytes_since(db, module, month).await?,
        writes_24h,
        errors_24h,
        error_rate_24h: if writes_24h == 0 { 0.0 } else { errors_24h as f64 / writes_24h as f64 },
    })
}

/// Store a health check of `module` at `at`: `status` (`healthy`, `degraded`, `failing` or
/// `disabled`), round-trip `latency_ms` (None: no answer) and a message for people.
pub async fn record_health(
    db: &impl ConnectionTrait,
    module: i64,
    at: DateTime<Utc>,
    status: &str,
    latency_ms: Option<i64>,
    message: Option<&str>,
) -> Result<()> {
    if !["healthy", "degraded", "failing", "disabled"].contains(&status) {
        return Err(Error::InvalidInput(format!(
            "a health status is healthy, degraded, failing or disabled, not {}",
            quote(status)
        )));
    }
    storage_module_health_check::ActiveModel {
        module_id: Set(module),
        checked_at: Set(at),
        status: Set(status.to_owned()),
        latency_ms: Set(latency_ms),
        message: Set(message.map(str::to_owned)),
        ..Default::default()
    }
    .insert(db)
    .await
    .map_err(db_err)?;
    Ok(())
}

/// A module's latest health checks, newest first, at most `limit`.
pub async fn recent_health(
    db: &impl ConnectionTrait,
    module: i64,
    limit: u64,
) -> Result<Vec<storage_module_health_check::Model>> {
    storage_module_health_check::Entity::find()
        .filter(storage_module_health_check::Column::ModuleId.eq(module))
        .order_by_desc(storage_module_health_check::Column::CheckedAt)
        .order_by_desc(storage_module_health_check::Column::Id)
        .limit(limit)
        .all(db)
        .await
        .map_err(db_err)
}

/// Delete write statistics, health checks and log lines older than [`HISTORY_DAYS`] before
/// `now` (run daily); returns how many rows went. Queue rows are kept: done ones are the
/// record of remote copies.
pub async fn prune_history(db: &impl ConnectionTrait, now: DateTime<Utc>) -> Result<u64> {
    let cutoff = now - Duration::days(HISTORY_DAYS);
    let a = storage_module_write_stat::Entity::delete_many()
        .filter(storage_module_write_stat::Column::At.lt(cutoff))
        .exec(db)
        .await
        .map_err(db_err)?;
    let b = storage_module_health_check::Entity::delete_many()
        .filter(storage_module_health_check::Column::CheckedAt.lt(cutoff))
        .exec(db)
        .await
        .map_err(db_err)?;
    let c = storage_module_log::Entity::delete_many()
        .filter(storage_module_log::Column::At.lt(cutoff))
        .exec(db)
        .await
        .map_err(db_err)?;
    Ok(a.rows_affected + b.rows_affected + c.rows_affected)
}

// ---------------------------------------------------------------------------------------------
// Logs

fn level_rank(level: &str) -> Result<usize> {
    LOG_LEVELS.iter().position(|l| *l == level).ok_or_else(|| {
        Error::InvalidInput(format!(
            "a log level is debug, info, warn or error, not {}",
            quote(level)
        ))
    })
}

/// Append a log line of `module` (never with secrets in it); returns its id. `level` is
/// `debug`, `info`, `warn` or `error`; `event` names what happened (`auth`, `upload_start`,
/// `upload_done`, `upload_failed`, `chunk_retry`, `timeout`, `permission`, `failover`,
/// `probe`, `cleanup`…); `stream_id` groups the lines of one transfer.
#[allow(clippy::too_many_arguments)]
pub async fn append_log(
    db: &impl ConnectionTrait,
    module: i64,
    at: DateTime<Utc>,
    level: &str,
    stream_id: Option<&str>,
    event: &str,
    message: &str,
) -> Result<i64> {
    level_rank(level)?;
    let row = storage_module_log::ActiveModel {
        module_id: Set(module),
        at: Set(at),
        level: Set(level.to_owned()),
        stream_id: Set(stream_id.map(|s| truncate(s, 128))),
        event: Set(truncate(event, 64)),
        message: Set(truncate(message, 4000)),
        ..Default::default()
    }
    .insert(db)
    .await
    .map_err(db_err)?;
    Ok(row.id)
}

/// Which log lines [`logs`] returns.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct LogFilter {
    /// The module.
    pub module: i64,
    /// Only lines at this level or more severe.
    pub min_level: Option<String>,
    /// Only lines whose message or event contains this text, ignoring case.
    pub search: Option<String>,
    /// Only lines of this transfer.
    pub stream_id: Option<String>,
    /// At most this many (capped at 1000).
    pub limit: u64,
    /// Only lines older than this id (paging backwards).
    pub before_id: Option<i64>,
}

impl LogFilter {
    /// The latest 200 lines of `module`, every level.
    pub fn new(module: i64) -> Self {
        LogFilter {
            module,
            min_level: None,
            search: None,
            stream_id: None,
            limit: 200,
            before_id: None,
        }
    }
}

/// Log lines matching `filter`, newest first.
pub async fn logs(
    db: &impl ConnectionTrait,
    filter: &LogFilter,
) -> Result<Vec<storage_module_log::Model>> {
    use storage_module_log::Column as C;
    let mut q = storage_module_log::Entity::find().filter(C::ModuleId.eq(filter.module));
    if let Some(level) = filter.min_level.as_deref().filter(|l| !l.is_empty()) {
        let rank = level_rank(level)?;
        q = q.filter(C::Level.is_in(LOG_LEVELS[rank..].iter().copied()));
    }
    if let Some(text) = filter.search.as_deref().filter(|t| !t.is_empty()) {
        // `!` escapes LIKE's wildcards, portably (MySQL treats a backslash specially).
        let mut pattern = String::from("%");
        for ch in text.to_lowercase().chars() {
            if matches!(ch, '%' | '_' | '!') {
                pattern.push('!');
            }
            pattern.push(ch);
        }
        pattern.push('%');
        use sea_orm::sea_query::ExprTrait;
        let like = || LikeExpr::new(pattern.clone()).escape('!');
        q = q.filter(
            Condition::any()
                .add(Expr::expr(Func::lower(Expr::col(C::Message))).like(like()))
                .add(Expr::expr(Func::lower(Expr::col(C::Event))).like(like())),
        );
    }
    if let Some(stream) = filter.stream_id.as_deref() {
        q = q.filter(C::StreamId.eq(stream));
    }
    if let Some(before) = filter.before_id {
        q = q.filter(C::Id.lt(before));
    }
    q.order_by_desc(C::Id).limit(filter.limit.clamp(1, 1000)).all(db).await.map_err(db_err)
}

/// At most `max` characters of `s` (columns have limits on MySQL).
fn truncate(s: &str, max: usize) -> String {
    s.chars().take(max).collect()
}

#[cfg(all(test, feature = "testkit"))]
mod tests;
