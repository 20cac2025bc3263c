//! Storage modules: the loaded provider definitions, the configured module instances (each a
//! connected [`pv_storage::StorageModule`]), the upload queue over the records database, health
//! checks, module logs, remote retention and fetching a remote copy for playback.
//!
//! Owns `modules` (the connected instances by id, behind a std mutex never held across an
//! await) and the [`UploadQueue`]. Invariants:
//! - Secrets live in the database only sealed with the server key; they are opened only to
//!   connect a module and never logged, returned or put in an audit event.
//! - A module is saved (or its connection values changed) only with a proof: an HMAC under the
//!   server key over the provider, the values and the time of a passing test, valid an hour.
//! - An upload job is marked done only after the module verified the remote object (pv-storage);
//!   jobs in flight when the server dies are put back by `requeue_stale` at start-up, and the
//!   remote key is deterministic, so a retried upload overwrites the same object: every segment
//!   arrives exactly once per camera chain.
//! - A queued upload is never dropped: a module with queued uploads is removed only when they
//!   are moved to the next module of their chain.

use std::collections::{BTreeMap, HashMap};
use std::path::{Path, PathBuf};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use chrono::{DateTime, Datelike, Utc};
use poem::http::StatusCode;
use pv_core::Clock;
use pv_core::db::Databases;
use pv_core::db::records::{segment, storage_module};
use pv_core::storage as store;
use pv_storage::definition::{Category, FieldKind, LoadNotice, ProviderSource, Registry};
use pv_storage::queue::{
    Health as QueueHealth, Job, JobStore, QueueConfig, QueueEvent, UploadQueue,
};
use pv_storage::{KeyContext, KeyTemplate, ModuleSettings, StorageModule, TestReport, Uploaded};
use serde_json::{Map, Value};

/// How often every enabled module does a test write.
const HEALTH_EVERY: Duration = Duration::from_secs(15 * 60);
/// How long a test proof is valid.
const PROOF_VALID_SECS: i64 = 3600;
/// How long an upload may hold a job before it counts as abandoned.
const LEASE: Duration = Duration::from_secs(30 * 60);

/// A storage failure, with the HTTP status it maps to.
#[derive(Debug, thiserror::Error)]
pub enum StorageError {
    /// No such module or provider.
    #[error("{0}")]
    NotFound(String),
    /// Input that cannot be used.
    #[error("{0}")]
    Invalid(String),
    /// Conflicts with the current state (uploads running, name taken).
    #[error("{0}")]
    Conflict(String),
    /// A database failure.
    #[error(transparent)]
    Core(#[from] pv_core::Error),
    /// Anything else.
    #[error("{0}")]
    Internal(String),
}

impl StorageError {
    /// The HTTP status.
    pub fn status(&self) -> StatusCode {
        match self {
            StorageError::NotFound(_) => StatusCode::NOT_FOUND,
            StorageError::Invalid(_) => StatusCode::BAD_REQUEST,
            StorageError::Conflict(_) => StatusCode::CONFLICT,
            StorageError::Core(e) => crate::problem::status_for(e.kind()),
            StorageError::Internal(_) => StatusCode::INTERNAL_SERVER_ERROR,
        }
    }
}

type Result<T, E = StorageError> = std::result::Result<T, E>;

/// The category's JSON key.
pub fn category_key(c: Category) -> &'static str {
    match c {
        Category::ObjectStorage => "object_storage",
        Category::CloudDrive => "cloud_drive",
        Category::Network => "network",
        Category::Local => "local",
    }
}

/// The field kind's JSON key.
pub fn field_kind_key(k: FieldKind) -> &'static str {
    match k {
        FieldKind::Text => "text",
        FieldKind::Password => "password",
        FieldKind::Number => "number",
        FieldKind::Bool => "bool",
        FieldKind::Select => "select",
        FieldKind::Url => "url",
        FieldKind::Path => "path",
        FieldKind::Textarea => "textarea",
    }
}

/// Where a provider came from.
pub fn source_key(s: &ProviderSource) -> &'static str {
    match s {
        ProviderSource::Builtin => "builtin",
        ProviderSource::Dropped(_) => "dropped",
    }
}

/// A test's outcome and, when it passed, the proof Save needs.
#[derive(Debug)]
pub struct TestOutcome {
    /// Each step.
    pub report: TestReport,
    /// The proof (passing tests only).
    pub proof: Option<String>,
}

/// A new module.
#[derive(Debug)]
pub struct ModuleInput {
    /// Unique name.
    pub name: String,
    /// Provider id.
    pub provider: String,
    /// Non-secret values.
    pub config: Map<String, Value>,
    /// Secret values.
    pub secrets: Map<String, Value>,
    /// The test proof.
    pub proof: String,
    /// Priority.
    pub priority: Option<i32>,
    /// Key template.
    pub key_template: Option<String>,
    /// Tags.
    pub tags: Option<Vec<String>>,
    /// Remote retention.
    pub retention_days: Option<i32>,
    /// Part size.
    pub chunk_size_bytes: Option<i64>,
    /// Parallel uploads.
    pub parallel_uploads: Option<i32>,
    /// Bandwidth limit.
    pub bandwidth_limit_bytes_per_second: Option<i64>,
    /// Encrypt.
    pub encrypted: Option<bool>,
    /// Enabled.
    pub enabled: Option<bool>,
}

/// Changes to a module.
#[derive(Debug, Default)]
pub struct ModulePatchInput {
    /// Unique name.
    pub name: Option<String>,
    /// Non-secret values.
    pub config: Option<Map<String, Value>>,
    /// Secret values (empty ones keep the stored value).
    pub secrets: Option<Map<String, Value>>,
    /// The test proof of new values.
    pub proof: Option<String>,
    /// Priority.
    pub priority: Option<i32>,
    /// Key template.
    pub key_template: Option<String>,
    /// Tags.
    pub tags: Option<Vec<String>>,
    /// Remote retention (0: none).
    pub retention_days: Option<i32>,
    /// Part size (0: default).
    pub chunk_size_bytes: Option<i64>,
    /// Parallel uploads.
    pub parallel_uploads: Option<i32>,
    /// Bandwidth limit (0: none).
    pub bandwidth_limit_bytes_per_second: Option<i64>,
    /// Encrypt.
    pub encrypted: Option<bool>,
    /// Enabled.
    pub enabled: Option<bool>,
}

/// A module as the API shows it.
#[derive(Debug, Clone)]
#[allow(missing_docs)]
pub struct ModuleView {
    pub id: i64,
    pub name: String,
    pub provider: String,
    pub provider_name: String,
    pub category: String,
    pub icon: String,
    pub enabled: bool,
    pub draining: bool,
    pub status: String,
    pub priority: i32,
    pub config: BTreeMap<String, Value>,
    pub secrets_set: Vec<String>,
    pub key_template: String,
    pub tags: Vec<String>,
    pub retention_days: Option<i32>,
    pub chunk_size_bytes: Option<i64>,
    pub parallel_uploads: i32,
    pub bandwidth_limit_bytes_per_second: Option<i64>,
    pub encrypted: bool,
    pub active_uploads: u32,
    pub pending_uploads: u64,
    pub last_write_at: Option<DateTime<Utc>>,
    pub last_ok_at: Option<DateTime<Utc>>,
    pub last_error: Option<String>,
    pub last_test_at: Option<DateTime<Utc>>,
    pub created_at: DateTime<Utc>,
    pub updated_at: DateTime<Utc>,
}

/// One health check.
#[derive(Debug, Clone)]
#[allow(missing_docs)]
pub struct CheckView {
    pub at: DateTime<Utc>,
    pub status: String,
    pub latency_ms: Option<i64>,
    pub message: Option<String>,
}

/// A module's health.
#[derive(Debug, Clone)]
#[allow(missing_docs)]
pub struct HealthView {
    pub status: String,
    pub last_test_at: Option<DateTime<Utc>>,
    pub last_test_ok: Option<bool>,
    pub last_test_error: Option<String>,
    pub last_write_at: Option<DateTime<Utc>>,
    pub last_ok_at: Option<DateTime<Utc>>,
    pub last_error_at: Option<DateTime<Utc>>,
    pub last_error: Option<String>,
    pub bytes_today: i64,
    pub bytes_month: i64,
    pub gb_per_day: f64,
    pub error_rate_24h: f64,
    pub writes_24h: i64,
    pub active_uploads: u32,
    pub completed_uploads: u64,
    pub pending_uploads: u64,
    pub checks: Vec<CheckView>,
}

/// A log filter.
#[derive(Debug, Clone)]
#[allow(missing_docs)]
pub struct LogQuery {
    pub level: Option<String>,
    pub search: Option<String>,
    pub stream: Option<String>,
    pub limit: u32,
    pub before: Option<i64>,
}

/// A log line.
#[derive(Debug, Clone)]
#[allow(missing_docs)]
pub struct LogView {
    pub id: i64,
    pub at: DateTime<Utc>,
    pub level: String,
    pub event: String,
    pub stream_id: Option<String>,
    pub message: String,
}

/// One upload.
#[derive(Debug, Clone)]
#[allow(missing_docs)]
pub struct UploadView {
    pub stream_id: String,
    pub segment_id: i64,
    pub camera_id: i64,
    pub camera_name: String,
    pub module_id: i64,
    pub status: String,
    pub size_bytes: i64,
    pub duration_ms: i64,
    pub last_write_at: DateTime<Utc>,
    pub attempts: i32,
    pub remote_key: Option<String>,
    pub last_error: Option<String>,
}

/// Queue counts.
#[derive(Debug, Clone, Copy)]
#[allow(missing_docs)]
pub struct QueueCounts {
    pub pending: u64,
    pub uploading: u64,
    pub failed: u64,
    pub done_24h: u64,
}

/// The storage service (see the module documentation).
pub struct StorageService {
    dbs: Databases,
    data_dir: PathBuf,
    clock: Arc<dyn Clock>,
    key: pv_security::seal::ServerKey,
    registry: Arc<Registry>,
    notices: Vec<LoadNotice>,
    queue: Arc<UploadQueue>,
    /// Connected modules by id.
    modules: Mutex<HashMap<i64, StorageModule>>,
    /// Remote copies being fetched for playback, one download at a time.
    fetching: tokio::sync::Mutex<()>,
    /// [`StorageService::start`] ran.
    started: std::sync::atomic::AtomicBool,
    /// `[storage]`.
    config: Mutex<pv_core::config::StorageConfig>,
    /// OAuth authorisations started from the browser, by their `state`.
    oauth: Mutex<HashMap<String, PendingOAuth>>,
}

/// An OAuth authorisation waiting for the vendor to redirect back.
struct PendingOAuth {
    provider: String,
    client_id: String,
    client_secret: String,
    redirect_uri: String,
    user_id: i64,
    started: std::time::Instant,
}

/// How long an OAuth authorisation may take.
const OAUTH_VALID: Duration = Duration::from_secs(15 * 60);

/// A refresh token obtained through the authorisation-code flow.
#[derive(Debug)]
pub struct OAuthGrant {
    /// The provider id.
    pub provider: String,
    /// The provider's name.
    pub provider_name: String,
    /// The refresh token (a secret: goes back to the form that asked for it, nowhere else).
    pub refresh_token: String,
}

impl std::fmt::Debug for StorageService {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("StorageService").field("data_dir", &self.data_dir).finish_non_exhaustive()
    }
}

/// The stream id of a segment (its file stem), as logs and the UI name it.
fn stream_id(seg: &segment::Model) -> String {
    Path::new(&seg.path)
        .file_stem()
        .map_or_else(|| seg.id.to_string(), |s| s.to_string_lossy().into_owned())
}

/// The queue's view of the records database.
struct DbJobs {
    dbs: Databases,
    data_dir: PathBuf,
    clock: Arc<dyn Clock>,
}

#[async_trait::async_trait]
impl JobStore for DbJobs {
    async fn claim_due(&self, now: DateTime<Utc>, limit: usize) -> pv_storage::Result<Vec<Job>> {
        let db = &self.dbs.records;
        let lease = chrono::Duration::from_std(LEASE).unwrap_or(chrono::Duration::minutes(30));
        let due = store::claim_due_jobs(db, now, lease, limit as u64)
            .await
            .map_err(|e| pv_storage::Error::Provider(e.to_string()))?;
        let mut jobs = Vec::with_capacity(due.len());
        for d in due {
            let seg = &d.segment;
            let ext = Path::new(&seg.path)
                .extension()
                .map_or_else(|| "mp4".to_owned(), |e| e.to_string_lossy().into_owned());
            jobs.push(Job {
                id: d.job.id,
                path: self.data_dir.join(&seg.path),
                // Provider and module names are filled in by the module the job goes to.
                ctx: KeyContext {
                    provider: String::new(),
                    module: String::new(),
                    camera: d.camera_name.clone(),
                    camera_id: seg.camera_id,
                    segment: stream_id(seg),
                    segment_id: seg.id,
                    started_at: seg.started_at,
                    ext,
                },
                chain: d.chain.clone(),
                attempts: u32::try_from(d.job.attempts).unwrap_or(0),
                stream_id: stream_id(seg),
            });
        }
        Ok(jobs)
    }

    async fn finished(&self, job: &Job, module_id: i64, up: &Uploaded) -> pv_storage::Result<()> {
        let db = &self.dbs.records;
        let now = self.clock.now();
        store::finish_job(
            db,
            job.id,
            module_id,
            up.key.as_str(),
            i64::try_from(up.size).unwrap_or(i64::MAX),
            up.checksum.as_deref(),
            now,
        )
        .await
        .map_err(|e| pv_storage::Error::Provider(e.to_string()))?;
        let module = module_id.to_string();
        metrics::counter!("pentavision_storage_uploads_total", "module" => module.clone())
            .increment(1);
        metrics::counter!("pentavision_storage_bytes_uploaded_total", "module" => module)
            .increment(up.size);
        let _ = store::record_write(
            db,
            module_id,
            now,
            true,
            i64::try_from(up.size).unwrap_or(i64::MAX),
            i64::try_from(up.millis).unwrap_or(i64::MAX),
            None,
        )
        .await;
        Ok(())
    }

    async fn failed(
        &self,
        job: &Job,
        module_id: i64,
        error: &str,
        next_attempt_at: DateTime<Utc>,
    ) -> pv_storage::Result<()> {
        let db = &self.dbs.records;
        let now = self.clock.now();
        store::fail_job(db, job.id, module_id, error, next_attempt_at, now)
            .await
            .map_err(|e| pv_storage::Error::Provider(e.to_string()))?;
        metrics::counter!("pentavision_storage_upload_failures_total", "module" => module_id.to_string())
            .increment(1);
        let _ = store::record_write(db, module_id, now, false, 0, 0, Some(error)).await;
        Ok(())
    }
}

impl StorageService {
    /// Load the providers (built-ins and `DATA_DIR/modules/`) and build the queue; nothing
    /// runs until [`StorageService::start`].
    pub(super) fn new(
        dbs: Databases,
        data_dir: PathBuf,
        clock: Arc<dyn Clock>,
        key: pv_security::seal::ServerKey,
        config: pv_core::config::StorageConfig,
    ) -> Arc<Self> {
        let (registry, notices) = Registry::load(Some(&data_dir.join("modules")));
        for n in &notices {
            tracing::warn!(folder = %n.folder, reason = %n.message, "storage provider folder skipped");
        }
        let jobs = DbJobs { dbs: dbs.clone(), data_dir: data_dir.clone(), clock: clock.clone() };
        let queue = Arc::new(UploadQueue::new(Arc::new(jobs), queue_config(&config)));
        Arc::new(Self {
            dbs,
            data_dir,
            clock,
            key,
            registry: Arc::new(registry),
            notices,
            queue,
            modules: Mutex::new(HashMap::new()),
            fetching: tokio::sync::Mutex::new(()),
            started: std::sync::atomic::AtomicBool::new(false),
            config: Mutex::new(config),
            oauth: Mutex::new(HashMap::new()),
        })
    }

    /// Record the providers, put uploads a stop interrupted back in the queue, connect every
    /// module and start the queue, the health checks and the log writer (once).
    pub async fn start(self: &Arc<Self>) {
        if self.started.swap(true, std::sync::atomic::Ordering::SeqCst) {
            return;
        }
        let dbs = &self.dbs;
        let now = self.clock.now();
        for p in self.registry.providers() {
            let d = &p.definition;
            let def = serde_json::to_value(d).unwrap_or(Value::Null);
            if let Err(e) = store::upsert_provider(
                &dbs.records,
                &d.id,
                &d.name,
                category_key(d.category),
                &def,
                source_key(&p.source),
                now,
            )
            .await
            {
                tracing::warn!(provider = %d.id, error = %e, "cannot record storage provider");
            }
        }
        match store::requeue_all_uploading(&dbs.records, now).await {
            Ok(0) => {}
            Ok(n) => tracing::info!(uploads = n, "uploads interrupted by a stop are queued again"),
            Err(e) => tracing::error!(error = %e, "cannot re-queue interrupted uploads"),
        }
        self.spawn_log_writer();
        match store::list_modules(&dbs.records).await {
            Ok(rows) => {
                for row in rows {
                    self.connect_row(&row).await;
                }
            }
            Err(e) => tracing::error!(error = %e, "cannot read storage modules"),
        }
        let q = self.queue.clone();
        tokio::spawn(async move { q.run(std::future::pending::<()>()).await });
        self.spawn_health_loop();
    }

    /// The loaded providers and the folders skipped.
    pub fn providers(&self) -> (Arc<Registry>, &[LoadNotice]) {
        (self.registry.clone(), &self.notices)
    }

    /// A segment was indexed (and enqueued): start its uploads now.
    pub fn wake(&self) {
        self.queue.wake();
    }

    fn spawn_log_writer(self: &Arc<Self>) {
        let mut rx = self.queue.subscribe();
        let dbs = self.dbs.clone();
        tokio::spawn(async move {
            loop {
                match rx.recv().await {
                    Ok(ev) => write_event(&dbs, &ev).await,
                    Err(tokio::sync::broadcast::error::RecvError::Lagged(n)) => {
                        tracing::warn!(missed = n, "storage log writer fell behind");
                    }
                    Err(tokio::sync::broadcast::error::RecvError::Closed) => break,
                }
            }
        });
    }

    fn spawn_health_loop(self: &Arc<Self>) {
        let me = Arc::downgrade(self);
        tokio::spawn(async move {
            let mut first = true;
            loop {
                if !first {
                    let every = me
                        .upgrade()
                        .and_then(|s| s.config.lock().ok().map(|c| c.health_check_seconds))
                        .map_or(HEALTH_EVERY, |s| Duration::from_secs(s.max(10)));
                    tokio::time::sleep(every).await;
                }
                first = false;
                let Some(svc) = me.upgrade() else { break };
                svc.health_pass().await;
                svc.retention_pass().await;
                svc.prune_cache().await;
                let _ = store::prune_history(&svc.dbs.records, svc.clock.now()).await;
            }
        });
    }

    /// A test write on every enabled module, stored as a health check.
    pub async fn health_pass(&self) {
        let modules: Vec<(i64, StorageModule)> = self
            .modules
            .lock()
            .map(|m| m.iter().map(|(k, v)| (*k, v.clone())).collect())
            .unwrap_or_default();
        let db = &self.dbs.records;
        for (id, module) in modules {
            let Ok(row) = store::get_module(db, id).await else { continue };
            if !row.enabled {
                continue;
            }
            let report = module.test().await;
            let now = self.clock.now();
            let message = report.steps.iter().find(|s| !s.ok).and_then(|s| s.message.clone());
            let status = if report.ok { "healthy" } else { "failing" };
            let _ = store::record_health(
                db,
                id,
                now,
                status,
                Some(i64::try_from(report.total_ms).unwrap_or(i64::MAX)),
                message.as_deref(),
            )
            .await;
            let _ = store::record_write(
                db,
                id,
                now,
                report.ok,
                0,
                i64::try_from(report.total_ms).unwrap_or(i64::MAX),
                message.as_deref(),
            )
            .await;
            self.queue.mark_probe_result(id, report.ok);
            let (level, text) = if report.ok {
                ("info", format!("health check passed in {} ms", report.total_ms))
            } else {
                ("error", format!("health check failed: {}", message.unwrap_or_default()))
            };
            let _ = store::append_log(db, id, now, level, None, "probe", &text).await;
        }
    }

    /// Delete remote copies older than each module's retention.
    pub async fn retention_pass(&self) {
        let db = &self.dbs.records;
        let Ok(rows) = store::list_modules(db).await else { return };
        for row in rows {
            let Some(days) = row.retention_days.filter(|d| *d > 0) else { continue };
            let Some(module) = self.module(row.id) else { continue };
            let before = self.clock.now() - chrono::Duration::days(i64::from(days));
            let Ok(expired) = store::segments_past_remote_retention(db, row.id, before, 500).await
            else {
                continue;
            };
            for copy in expired {
                let now = self.clock.now();
                let key = match pv_storage::Key::new(copy.remote_key.clone()) {
                    Ok(k) => k,
                    Err(_) => continue,
                };
                match module.delete(&key).await {
                    Ok(()) => {
                        if store::mark_expired(db, copy.job_id, now).await.unwrap_or(false) {
                            self.forget_if_gone(copy.segment_id).await;
                        }
                    }
                    Err(e) => {
                        let _ = store::append_log(
                            db,
                            row.id,
                            now,
                            "warn",
                            None,
                            "cleanup",
                            &format!("cannot delete the expired copy {}: {e}", copy.remote_key),
                        )
                        .await;
                    }
                }
            }
        }
    }

    /// A segment whose local file retention removed and whose last remote copy expired is
    /// gone: its row goes too.
    async fn forget_if_gone(&self, segment_id: i64) {
        let db = &self.dbs.records;
        let Ok(seg) =
            pv_core::recordings::get_segment(db, pv_core::ids::SegmentId(segment_id)).await
        else {
            return;
        };
        if seg.local_deleted_at.is_some()
            && store::remote_copies(db, segment_id).await.is_ok_and(|c| c.is_empty())
        {
            let _ =
                pv_core::recordings::delete_segment(db, pv_core::ids::SegmentId(segment_id)).await;
        }
    }

    fn module(&self, id: i64) -> Option<StorageModule> {
        self.modules.lock().ok().and_then(|m| m.get(&id).cloned())
    }

    fn open_secrets(&self, row: &storage_module::Model) -> Result<Map<String, Value>> {
        let Some(sealed) = &row.secrets else { return Ok(Map::new()) };
        let plain = self.key.open(sealed).map_err(|_| {
            StorageError::Internal(format!(
                "the secrets of storage module {} cannot be opened with this server's key",
                row.name
            ))
        })?;
        match serde_json::from_str(&plain) {
            Ok(Value::Object(m)) => Ok(m),
            _ => Err(StorageError::Internal(format!(
                "the stored secrets of storage module {} are damaged",
                row.name
            ))),
        }
    }

    fn seal_secrets(&self, secrets: &Map<String, Value>) -> Result<Option<String>> {
        if secrets.is_empty() {
            return Ok(None);
        }
        let text = Value::Object(secrets.clone()).to_string();
        self.key
            .seal(&text)
            .map(Some)
            .map_err(|_| StorageError::Internal("cannot seal the secrets".to_owned()))
    }

    fn encryption_key(&self, module_id: i64) -> [u8; 32] {
        encryption_key(&self.key, module_id)
    }

    fn settings(&self, row: &storage_module::Model) -> Result<ModuleSettings> {
        let key_template = KeyTemplate::parse(&row.key_template)
            .map_err(|e| StorageError::Invalid(e.to_string()))?;
        Ok(ModuleSettings {
            name: row.name.clone(),
            key_template,
            chunk_size: row.chunk_size_bytes.and_then(|c| u64::try_from(c).ok()).filter(|c| *c > 0),
            parallel: u32::try_from(row.parallel_uploads.max(1)).unwrap_or(1),
            bandwidth_bytes_per_sec: row
                .bandwidth_limit_bytes_per_second
                .and_then(|c| u64::try_from(c).ok())
                .filter(|c| *c > 0),
            encryption_key: row.encrypted.then(|| self.encryption_key(row.id)),
            op_timeout: Duration::from_secs(120),
        })
    }

    /// Connect a stored module and hand it to the queue; a module that cannot connect is kept
    /// out of the queue with its error logged.
    async fn connect_row(&self, row: &storage_module::Model) {
        let db = &self.dbs.records;
        let now = self.clock.now();
        let Some(provider) = self.registry.get(&row.provider_key) else {
            let _ = store::append_log(
                db,
                row.id,
                now,
                "error",
                None,
                "auth",
                &format!("the provider {} is no longer installed", row.provider_key),
            )
            .await;
            return;
        };
        let connected = async {
            let secrets = self.open_secrets(row)?;
            let config = match &row.config {
                Value::Object(m) => m.clone(),
                _ => Map::new(),
            };
            let settings = self.settings(row)?;
            StorageModule::connect(provider, &config, &secrets, settings)
                .await
                .map_err(|e| StorageError::Invalid(e.to_string()))
        }
        .await;
        match connected {
            Ok(module) => {
                self.queue.set_module(row.id, module.clone(), row.enabled && !row.draining);
                if let Ok(mut m) = self.modules.lock() {
                    m.insert(row.id, module);
                }
                let _ = store::append_log(db, row.id, now, "info", None, "auth", "connected").await;
            }
            Err(e) => {
                self.queue.remove_module(row.id);
                if let Ok(mut m) = self.modules.lock() {
                    m.remove(&row.id);
                }
                tracing::warn!(module = %row.name, error = %e, "storage module not connected");
                let _ = store::append_log(
                    db,
                    row.id,
                    now,
                    "error",
                    None,
                    "auth",
                    &format!("cannot connect: {e}"),
                )
                .await;
            }
        }
    }

    /// The proof of a passing test of these values at `at`.
    fn proof(
        &self,
        provider: &str,
        config: &Map<String, Value>,
        secrets: &Map<String, Value>,
        at: i64,
    ) -> String {
        let canonical = serde_json::json!([provider, config, secrets, at]).to_string();
        let mac = self.key.mac("storage-test-proof", canonical.as_bytes());
        format!("{at}.{}", hex::encode(mac))
    }

    fn check_proof(
        &self,
        proof: &str,
        provider: &str,
        config: &Map<String, Value>,
        secrets: &Map<String, Value>,
    ) -> Result<()> {
        let refused = || {
            StorageError::Invalid(
                "test the connection with these values first: Save is possible once the test passes"
                    .to_owned(),
            )
        };
        let (at, _) = proof.split_once('.').ok_or_else(refused)?;
        let at: i64 = at.parse().map_err(|_| refused())?;
        let age = self.clock.now().timestamp() - at;
        if !(0..=PROOF_VALID_SECS).contains(&age) {
            return Err(StorageError::Invalid(
                "the connection test is more than an hour old: test again, then save".to_owned(),
            ));
        }
        let want = self.proof(provider, config, secrets, at);
        if subtle_eq(want.as_bytes(), proof.as_bytes()) { Ok(()) } else { Err(refused()) }
    }

    /// Secrets as submitted, with empty values replaced by the stored ones of `existing`.
    fn merged_secrets(
        &self,
        submitted: &Map<String, Value>,
        existing: Option<&storage_module::Model>,
    ) -> Result<Map<String, Value>> {
        let mut out = match existing {
            Some(row) => self.open_secrets(row)?,
            None => Map::new(),
        };
        for (k, v) in submitted {
            let empty = matches!(v, Value::Null) || v.as_str().is_some_and(str::is_empty);
            if !empty {
                out.insert(k.clone(), v.clone());
            } else if existing.is_none() {
                out.remove(k);
            }
        }
        Ok(out)
    }

    fn split_and_validate(
        &self,
        provider: &str,
        config: &Map<String, Value>,
        secrets: &Map<String, Value>,
    ) -> Result<(Map<String, Value>, Map<String, Value>)> {
        let p = self.registry.get(provider).ok_or_else(|| {
            StorageError::NotFound(format!("there is no storage provider “{provider}”"))
        })?;
        let config: Map<String, Value> = config
            .iter()
            .filter(|(_, v)| !matches!(v, Value::Null) && v.as_str() != Some(""))
            .map(|(k, v)| (k.clone(), v.clone()))
            .collect();
        if let Err(errors) = p.validate(&config, secrets) {
            let text: Vec<String> = errors.iter().map(|e| e.message.clone()).collect();
            return Err(StorageError::Invalid(text.join("; ")));
        }
        Ok((config, secrets.clone()))
    }

    /// Run a connection test of these values (of module `module_id` when editing one: empty
    /// secrets keep its stored values).
    pub async fn test(
        &self,
        provider: &str,
        config: Map<String, Value>,
        secrets: Map<String, Value>,
        module_id: Option<i64>,
    ) -> Result<TestOutcome> {
        let existing = match module_id {
            Some(id) => Some(self.row(id).await?),
            None => None,
        };
        let secrets = self.merged_secrets(&secrets, existing.as_ref())?;
        let (config, secrets) = self.split_and_validate(provider, &config, &secrets)?;
        let p = self
            .registry
            .get(provider)
            .ok_or_else(|| StorageError::NotFound(provider.to_owned()))?;
        let settings = ModuleSettings {
            name: existing.as_ref().map_or_else(|| "test".to_owned(), |r| r.name.clone()),
            key_template: KeyTemplate::parse(KeyTemplate::DEFAULT)
                .map_err(|e| StorageError::Internal(e.to_string()))?,
            chunk_size: None,
            parallel: 1,
            bandwidth_bytes_per_sec: None,
            encryption_key: None,
            op_timeout: Duration::from_secs(30),
        };
        let report = match StorageModule::connect(p, &config, &secrets, settings).await {
            Ok(module) => module.test().await,
            Err(e) => TestReport {
                ok: false,
                steps: vec![pv_storage::TestStep {
                    step: "connect".to_owned(),
                    label: "Connect and sign in".to_owned(),
                    ok: false,
                    millis: 0,
                    message: Some(e.to_string()),
                }],
                total_ms: 0,
            },
        };
        let now = self.clock.now();
        if let Some(row) = &existing {
            let error = report.steps.iter().find(|s| !s.ok).and_then(|s| s.message.clone());
            let _ = store::record_test(&self.dbs.records, row.id, report.ok, error.as_deref(), now)
                .await;
            let text = match &error {
                None => format!("connection test passed in {} ms", report.total_ms),
                Some(e) => format!("connection test failed: {e}"),
            };
            let level = if report.ok { "info" } else { "warn" };
            let _ =
                store::append_log(&self.dbs.records, row.id, now, level, None, "test", &text).await;
        }
        let proof = report.ok.then(|| self.proof(provider, &config, &secrets, now.timestamp()));
        Ok(TestOutcome { report, proof })
    }

    async fn row(&self, id: i64) -> Result<storage_module::Model> {
        store::get_module(&self.dbs.records, id).await.map_err(|e| match e.kind() {
            pv_core::ErrorKind::NotFound => {
                StorageError::NotFound(format!("storage module {id} does not exist"))
            }
            _ => StorageError::Core(e),
        })
    }

    fn check_settings(
        key_template: Option<&str>,
        parallel: Option<i32>,
        chunk: Option<i64>,
        retention: Option<i32>,
        bandwidth: Option<i64>,
    ) -> Result<()> {
        if let Some(t) = key_template {
            KeyTemplate::parse(t).map_err(|e| StorageError::Invalid(e.to_string()))?;
        }
        if let Some(p) = parallel
            && !(1..=64).contains(&p)
        {
            return Err(StorageError::Invalid("parallel uploads must be between 1 and 64".into()));
        }
        if let Some(c) = chunk
            && c != 0
            && !(5 * 1024 * 1024..=5 * 1024 * 1024 * 1024).contains(&c)
        {
            return Err(StorageError::Invalid(
                "the part size must be between 5 MiB and 5 GiB (or 0 for the provider's default)"
                    .into(),
            ));
        }
        if let Some(r) = retention
            && !(0..=36_500).contains(&r)
        {
            return Err(StorageError::Invalid(
                "remote retention must be between 0 (keep for ever) and 36500 days".into(),
            ));
        }
        if let Some(b) = bandwidth
            && b != 0
            && b < 64 * 1024
        {
            return Err(StorageError::Invalid(
                "a bandwidth limit below 64 KiB/s would stall uploads; use 0 for no limit".into(),
            ));
        }
        Ok(())
    }

    /// Save a new module (with the proof of a passing test of exactly these values).
    pub async fn create(&self, input: ModuleInput) -> Result<ModuleView> {
        let name = input.name.trim().to_owned();
        if name.is_empty() || name.chars().count() > 100 {
            return Err(StorageError::Invalid(
                "give the module a name of 1 to 100 characters".into(),
            ));
        }
        Self::check_settings(
            input.key_template.as_deref(),
            input.parallel_uploads,
            input.chunk_size_bytes,
            input.retention_days,
            input.bandwidth_limit_bytes_per_second,
        )?;
        let secrets = self.merged_secrets(&input.secrets, None)?;
        let (config, secrets) =
            self.split_and_validate(&input.provider, &input.config, &secrets)?;
        self.check_proof(&input.proof, &input.provider, &config, &secrets)?;
        let db = &self.dbs.records;
        let now = self.clock.now();
        let priority = match input.priority {
            Some(p) => p,
            None => store::list_modules(db)
                .await?
                .iter()
                .map(|m| m.priority)
                .max()
                .map_or(10, |p| p + 10),
        };
        let new = store::NewModule {
            provider_key: input.provider.clone(),
            name,
            enabled: input.enabled.unwrap_or(true),
            config: Value::Object(config),
            secrets_sealed: self.seal_secrets(&secrets)?,
            priority,
            tags: input.tags.map(|t| serde_json::json!(t)),
            key_template: input.key_template.unwrap_or_else(|| KeyTemplate::DEFAULT.to_owned()),
            retention_days: input.retention_days.filter(|d| *d > 0),
            chunk_size_bytes: input.chunk_size_bytes.filter(|c| *c > 0),
            parallel_uploads: input.parallel_uploads.unwrap_or(4),
            bandwidth_limit_bytes_per_second: input
                .bandwidth_limit_bytes_per_second
                .filter(|b| *b > 0),
            encrypted: input.encrypted.unwrap_or(false),
            read_only: false,
            proof: Some(input.proof.clone()),
        };
        let id = store::create_module(db, &new, now).await.map_err(name_conflict)?;
        let _ = store::record_test(db, id, true, None, now).await;
        let row = self.row(id).await?;
        self.connect_row(&row).await;
        self.queue.wake();
        self.view(&row).await
    }

    /// Change a module.
    pub async fn update(&self, id: i64, patch: ModulePatchInput) -> Result<ModuleView> {
        let row = self.row(id).await?;
        Self::check_settings(
            patch.key_template.as_deref(),
            patch.parallel_uploads,
            patch.chunk_size_bytes,
            patch.retention_days,
            patch.bandwidth_limit_bytes_per_second,
        )?;
        let db = &self.dbs.records;
        let mut update = store::ModuleUpdate::default();
        if patch.config.is_some() || patch.secrets.is_some() {
            if self.queue.active_uploads(id) > 0 {
                return Err(StorageError::Conflict(format!(
                    "uploads to {} are running: its connection cannot change now. Clone it and \
                     change the copy, or drain it first",
                    row.name
                )));
            }
            let config = match patch.config {
                Some(c) => c,
                None => match &row.config {
                    Value::Object(m) => m.clone(),
                    _ => Map::new(),
                },
            };
            let secrets = self.merged_secrets(&patch.secrets.unwrap_or_default(), Some(&row))?;
            let (config, secrets) =
                self.split_and_validate(&row.provider_key, &config, &secrets)?;
            let proof = patch.proof.ok_or_else(|| {
                StorageError::Invalid(
                    "test the connection with the new values first: Save is possible once the test passes"
                        .to_owned(),
                )
            })?;
            self.check_proof(&proof, &row.provider_key, &config, &secrets)?;
            update.config = Some(Value::Object(config));
            update.secrets_sealed = Some(self.seal_secrets(&secrets)?);
            update.proof = Some(Some(proof));
        }
        if let Some(name) = patch.name {
            let name = name.trim().to_owned();
            if name.is_empty() || name.chars().count() > 100 {
                return Err(StorageError::Invalid(
                    "give the module a name of 1 to 100 characters".into(),
                ));
            }
            update.name = Some(name);
        }
        update.priority = patch.priority;
        update.key_template = patch.key_template;
        update.tags = patch.tags.map(|t| Some(serde_json::json!(t)));
        update.retention_days = patch.retention_days.map(|d| (d > 0).then_some(d));
        update.chunk_size_bytes = patch.chunk_size_bytes.map(|c| (c > 0).then_some(c));
        update.parallel_uploads = patch.parallel_uploads;
        update.bandwidth_limit_bytes_per_second =
            patch.bandwidth_limit_bytes_per_second.map(|b| (b > 0).then_some(b));
        update.encrypted = patch.encrypted;
        update.enabled = patch.enabled;
        if patch.enabled == Some(true) {
            update.draining = Some(false);
        }
        store::update_module(db, id, &update, self.clock.now()).await.map_err(name_conflict)?;
        let row = self.row(id).await?;
        self.connect_row(&row).await;
        self.queue.wake();
        self.view(&row).await
    }

    /// Remove a module; refused while uploads wait for it unless `move_queued`. Returns how
    /// many uploads moved.
    pub async fn delete(&self, id: i64, move_queued: bool) -> Result<u64> {
        let row = self.row(id).await?;
        let db = &self.dbs.records;
        let queued = self.pending(id).await?;
        let running = self.queue.active_uploads(id) as u64;
        if (queued > 0 || running > 0) && !move_queued {
            return Err(StorageError::Conflict(format!(
                "{} has {} upload{} waiting or running: drain it first, or remove it and move \
                 them to the next module",
                row.name,
                queued + running,
                if queued + running == 1 { "" } else { "s" }
            )));
        }
        self.queue.remove_module(id);
        if let Ok(mut m) = self.modules.lock() {
            m.remove(&id);
        }
        // Moving the queued uploads and removing the module commit together, so no upload is
        // ever left pointing at a module that is gone.
        let txn = sea_orm::TransactionTrait::begin(db)
            .await
            .map_err(|e| StorageError::Internal(format!("cannot start a transaction: {e}")))?;
        let moved = store::move_jobs(&txn, id, self.clock.now()).await?;
        store::delete_module(&txn, id).await?;
        txn.commit()
            .await
            .map_err(|e| StorageError::Internal(format!("cannot remove the module: {e}")))?;
        self.queue.wake();
        Ok(moved)
    }

    /// Copy a module, disabled, with the same secrets.
    pub async fn clone_module(&self, id: i64) -> Result<ModuleView> {
        let row = self.row(id).await?;
        let db = &self.dbs.records;
        let names: Vec<String> =
            store::list_modules(db).await?.into_iter().map(|m| m.name).collect();
        let mut name = format!("{} (copy)", row.name);
        let mut n = 2;
        while names.contains(&name) {
            name = format!("{} (copy {n})", row.name);
            n += 1;
        }
        let new = store::NewModule {
            provider_key: row.provider_key.clone(),
            name,
            enabled: false,
            config: row.config.clone(),
            secrets_sealed: row.secrets.clone(),
            priority: row.priority + 1,
            tags: row.tags.clone(),
            key_template: row.key_template.clone(),
            retention_days: row.retention_days,
            chunk_size_bytes: row.chunk_size_bytes,
            parallel_uploads: row.parallel_uploads,
            bandwidth_limit_bytes_per_second: row.bandwidth_limit_bytes_per_second,
            encrypted: row.encrypted,
            read_only: row.read_only,
            proof: row.proof.clone(),
        };
        let new_id =
            store::create_module(db, &new, self.clock.now()).await.map_err(name_conflict)?;
        let row = self.row(new_id).await?;
        self.connect_row(&row).await;
        self.view(&row).await
    }

    /// Drain and disable: no new uploads; disabled once its queue is empty.
    pub async fn drain(&self, id: i64) -> Result<ModuleView> {
        let db = &self.dbs.records;
        store::set_draining(db, id, true, self.clock.now()).await?;
        let row = self.row(id).await?;
        if self.pending(id).await? == 0 && self.queue.active_uploads(id) == 0 {
            store::set_enabled(db, id, false, self.clock.now()).await?;
        }
        let row = if row.enabled { self.row(id).await? } else { row };
        self.connect_row(&row).await;
        self.view(&row).await
    }

    /// Uploads waiting for module `id` (retries included).
    async fn pending(&self, id: i64) -> Result<u64> {
        Ok(store::queue_summary(&self.dbs.records, Some(id), self.clock.now()).await?.pending)
    }

    fn status_of(&self, row: &storage_module::Model) -> &'static str {
        if !row.enabled {
            return "disabled";
        }
        match self.queue.health(row.id) {
            QueueHealth::Healthy => "healthy",
            QueueHealth::Degraded => "degraded",
            QueueHealth::Failing => "failing",
            QueueHealth::Disabled => {
                if self.module(row.id).is_none() {
                    "failing"
                } else {
                    "disabled"
                }
            }
        }
    }

    async fn view(&self, row: &storage_module::Model) -> Result<ModuleView> {
        let provider = self.registry.get(&row.provider_key);
        let config: BTreeMap<String, Value> = match &row.config {
            Value::Object(m) => m.clone().into_iter().collect(),
            _ => BTreeMap::new(),
        };
        let secrets_set =
            self.open_secrets(row).map(|m| m.keys().cloned().collect()).unwrap_or_default();
        let tags = row
            .tags
            .as_ref()
            .and_then(|t| serde_json::from_value::<Vec<String>>(t.clone()).ok())
            .unwrap_or_default();
        Ok(ModuleView {
            id: row.id,
            name: row.name.clone(),
            provider: row.provider_key.clone(),
            provider_name: provider
                .map_or_else(|| row.provider_key.clone(), |p| p.definition.name.clone()),
            category: provider
                .map_or("object_storage", |p| category_key(p.definition.category))
                .to_owned(),
            icon: provider.map_or_else(|| "cloud".to_owned(), |p| p.definition.icon.clone()),
            enabled: row.enabled,
            draining: row.draining,
            status: self.status_of(row).to_owned(),
            priority: row.priority,
            config,
            secrets_set,
            key_template: row.key_template.clone(),
            tags,
            retention_days: row.retention_days,
            chunk_size_bytes: row.chunk_size_bytes,
            parallel_uploads: row.parallel_uploads,
            bandwidth_limit_bytes_per_second: row.bandwidth_limit_bytes_per_second,
            encrypted: row.encrypted,
            active_uploads: u32::try_from(self.queue.active_uploads(row.id)).unwrap_or(u32::MAX),
            pending_uploads: self.pending(row.id).await?,
            last_write_at: row.last_write_at,
            last_ok_at: row.last_ok_at,
            last_error: row.last_error.clone(),
            last_test_at: row.last_test_at,
            created_at: row.created_at,
            updated_at: row.updated_at,
        })
    }

    /// Every module, in priority order.
    pub async fn list(&self) -> Result<Vec<ModuleView>> {
        let mut out = Vec::new();
        for row in store::list_modules(&self.dbs.records).await? {
            out.push(self.view(&row).await?);
        }
        Ok(out)
    }

    /// One module.
    pub async fn get(&self, id: i64) -> Result<ModuleView> {
        let row = self.row(id).await?;
        self.view(&row).await
    }

    /// A module's health.
    pub async fn health(&self, id: i64) -> Result<HealthView> {
        let row = self.row(id).await?;
        let db = &self.dbs.records;
        let now = self.clock.now();
        let s = store::write_summary(db, id, now).await?;
        let checks = store::recent_health(db, id, 20)
            .await?
            .into_iter()
            .map(|c| CheckView {
                at: c.checked_at,
                status: c.status,
                latency_ms: c.latency_ms,
                message: c.message,
            })
            .collect();
        let counts = store::queue_summary(db, Some(id), now).await?;
        Ok(HealthView {
            status: self.status_of(&row).to_owned(),
            last_test_at: row.last_test_at,
            // The last test passed when it is also the last passing one.
            last_test_ok: row.last_test_at.map(|t| row.last_test_ok_at == Some(t)),
            last_test_error: row.last_test_error.clone(),
            last_write_at: s.last_write_at,
            last_ok_at: s.last_ok_at,
            last_error_at: s.last_error_at,
            last_error: s.last_error,
            bytes_today: s.bytes_today,
            bytes_month: s.bytes_month,
            gb_per_day: s.bytes_month as f64 / f64::from(now.day().max(1)) / 1e9,
            error_rate_24h: s.error_rate_24h,
            writes_24h: i64::try_from(s.writes_24h).unwrap_or(i64::MAX),
            active_uploads: u32::try_from(self.queue.active_uploads(id)).unwrap_or(u32::MAX),
            completed_uploads: counts.done_total,
            pending_uploads: counts.pending,
            checks,
        })
    }

    /// A module's log lines.
    pub async fn logs(&self, id: i64, q: LogQuery) -> Result<Vec<LogView>> {
        self.row(id).await?;
        let filter = store::LogFilter {
            module: id,
            min_level: q.level,
            search: q.search,
            stream_id: q.stream,
            limit: u64::from(q.limit),
            before_id: q.before,
        };
        Ok(store::logs(&self.dbs.records, &filter)
            .await?
            .into_iter()
            .map(|l| LogView {
                id: l.id,
                at: l.at,
                level: l.level,
                event: l.event,
                stream_id: l.stream_id,
                message: l.message,
            })
            .collect())
    }

    /// Recent uploads (of one module or all).
    pub async fn uploads(&self, module: Option<i64>, limit: u32) -> Result<Vec<UploadView>> {
        if let Some(id) = module {
            self.row(id).await?;
        }
        let filter = store::JobFilter { module, status: None, limit: u64::from(limit) };
        Ok(store::list_jobs(&self.dbs.records, &filter)
            .await?
            .into_iter()
            .map(|j| UploadView {
                stream_id: stream_id(&j.segment),
                segment_id: j.segment.id,
                camera_id: j.segment.camera_id,
                camera_name: j.camera_name,
                module_id: j.job.module_id,
                status: j.job.status,
                size_bytes: j.job.size_bytes.unwrap_or(j.segment.size_bytes),
                duration_ms: j.segment.duration_ms,
                last_write_at: j.job.updated_at,
                attempts: j.job.attempts,
                remote_key: j.job.remote_key,
                last_error: j.job.last_error,
            })
            .collect())
    }

    /// Queue counts.
    pub async fn queue_summary(&self) -> Result<QueueCounts> {
        let s = store::queue_summary(&self.dbs.records, None, self.clock.now()).await?;
        Ok(QueueCounts {
            pending: s.pending,
            uploading: s.uploading,
            failed: s.failed,
            done_24h: s.done_24h,
        })
    }

    /// The file to play for a segment: its local file, or (when retention removed it) a copy
    /// fetched from the first module that holds one, kept under `DATA_DIR/cache/remote/`.
    /// None when neither exists.
    pub async fn segment_file(&self, seg: &segment::Model) -> Option<PathBuf> {
        let local = self.data_dir.join(&seg.path);
        if seg.local_deleted_at.is_none() && tokio::fs::metadata(&local).await.is_ok() {
            return Some(local);
        }
        let cache_dir = self.data_dir.join("cache").join("remote");
        let ext = Path::new(&seg.path)
            .extension()
            .map_or_else(|| "mp4".into(), |e| e.to_string_lossy().into_owned());
        let cached = cache_dir.join(format!("{}.{ext}", seg.id));
        if tokio::fs::metadata(&cached).await.is_ok() {
            return Some(cached);
        }
        let _one = self.fetching.lock().await;
        if tokio::fs::metadata(&cached).await.is_ok() {
            return Some(cached);
        }
        let copies = store::remote_copies(&self.dbs.records, seg.id).await.ok()?;
        if tokio::fs::create_dir_all(&cache_dir).await.is_err() {
            return None;
        }
        for copy in copies {
            let Some(module) = self.module(copy.module_id) else { continue };
            let Ok(key) = pv_storage::Key::new(copy.remote_key.clone()) else { continue };
            match module.download_to(&key, &cached).await {
                Ok(_) => {
                    tracing::info!(
                        segment = seg.id,
                        module = copy.module_id,
                        "segment fetched from its remote copy"
                    );
                    return Some(cached);
                }
                Err(e) => {
                    tracing::warn!(segment = seg.id, module = copy.module_id, error = %e, "cannot fetch the remote copy");
                }
            }
        }
        None
    }

    /// Remove cached remote copies older than a day.
    pub async fn prune_cache(&self) {
        let dir = self.data_dir.join("cache").join("remote");
        let Ok(mut rd) = tokio::fs::read_dir(&dir).await else { return };
        let cutoff = std::time::SystemTime::now() - Duration::from_secs(86_400);
        while let Ok(Some(e)) = rd.next_entry().await {
            if let Ok(meta) = e.metadata().await
                && meta.modified().is_ok_and(|m| m < cutoff)
            {
                let _ = tokio::fs::remove_file(e.path()).await;
            }
        }
    }
}

impl StorageService {
    /// Start an OAuth authorisation-code flow for `provider`: the URL of the vendor's consent
    /// page and the `state` that ties the redirect back to this request. `redirect_uri` is this
    /// server's `/storage/oauth/callback` as the browser reaches it (it must be registered with
    /// the vendor's app).
    pub fn oauth_start(
        &self,
        provider: &str,
        client_id: &str,
        client_secret: &str,
        redirect_uri: &str,
        user_id: i64,
    ) -> Result<(String, String)> {
        let p = self.registry.get(provider).ok_or_else(|| {
            StorageError::NotFound(format!("there is no storage provider “{provider}”"))
        })?;
        let spec = p.definition.oauth.as_ref().ok_or_else(|| {
            StorageError::Invalid(format!("{} does not sign in with OAuth", p.definition.name))
        })?;
        if client_id.trim().is_empty() {
            return Err(StorageError::Invalid(format!(
                "enter the app key (client id) of your {} app first",
                p.definition.name
            )));
        }
        let uri = reqwest::Url::parse(redirect_uri)
            .ok()
            .filter(|u| matches!(u.scheme(), "http" | "https"))
            .filter(|u| u.path() == "/storage/oauth/callback" && u.query().is_none())
            .ok_or_else(|| {
                StorageError::Invalid(
                    "the redirect address must be this server's /storage/oauth/callback".into(),
                )
            })?;
        let mut raw = [0u8; 24];
        rand::fill(&mut raw);
        let state = hex::encode(raw);
        let mut url = reqwest::Url::parse(&spec.authorize_url).map_err(|_| {
            StorageError::Internal(format!(
                "the authorisation address of {} is not valid",
                p.definition.name
            ))
        })?;
        {
            let mut q = url.query_pairs_mut();
            q.append_pair("response_type", "code")
                .append_pair("client_id", client_id.trim())
                .append_pair("redirect_uri", uri.as_str())
                .append_pair("state", &state);
            if !spec.scopes.is_empty() {
                q.append_pair("scope", &spec.scopes.join(" "));
            }
            // What each vendor needs before it hands out a refresh token.
            match p.definition.backend.as_str() {
                "dropbox" => {
                    q.append_pair("token_access_type", "offline");
                }
                "gdrive" => {
                    q.append_pair("access_type", "offline").append_pair("prompt", "consent");
                }
                _ => {}
            }
        }
        let mut pending =
            self.oauth.lock().map_err(|_| StorageError::Internal("oauth state".into()))?;
        pending.retain(|_, p| p.started.elapsed() < OAUTH_VALID);
        if pending.len() >= 64 {
            return Err(StorageError::Conflict(
                "too many sign-ins are waiting; finish or close one and try again".into(),
            ));
        }
        pending.insert(
            state.clone(),
            PendingOAuth {
                provider: provider.to_owned(),
                client_id: client_id.trim().to_owned(),
                client_secret: client_secret.trim().to_owned(),
                redirect_uri: uri.to_string(),
                user_id,
                started: std::time::Instant::now(),
            },
        );
        Ok((url.to_string(), state))
    }

    /// The vendor redirected back with `code`: exchange it at the token endpoint for a refresh
    /// token. Only the user who started the flow can finish it, once, within 15 minutes.
    pub async fn oauth_finish(&self, state: &str, code: &str, user_id: i64) -> Result<OAuthGrant> {
        let pending = self
            .oauth
            .lock()
            .map_err(|_| StorageError::Internal("oauth state".into()))?
            .remove(state)
            .filter(|p| p.started.elapsed() < OAUTH_VALID && p.user_id == user_id)
            .ok_or_else(|| {
                StorageError::Invalid(
                    "this sign-in is unknown or has expired; start it again from the Storage page"
                        .into(),
                )
            })?;
        let p = self
            .registry
            .get(&pending.provider)
            .ok_or_else(|| StorageError::NotFound(pending.provider.clone()))?;
        let spec = p
            .definition
            .oauth
            .as_ref()
            .ok_or_else(|| StorageError::NotFound(pending.provider.clone()))?;
        let http = reqwest::Client::builder()
            .timeout(Duration::from_secs(30))
            .build()
            .map_err(|e| StorageError::Internal(e.to_string()))?;
        let mut form = vec![
            ("grant_type", "authorization_code".to_owned()),
            ("code", code.to_owned()),
            ("redirect_uri", pending.redirect_uri.clone()),
            ("client_id", pending.client_id.clone()),
        ];
        if !pending.client_secret.is_empty() {
            form.push(("client_secret", pending.client_secret.clone()));
        }
        let name = p.definition.name.clone();
        let resp = http.post(&spec.token_url).form(&form).send().await.map_err(|e| {
            StorageError::Invalid(format!(
                "cannot reach {name}'s sign-in service: {}",
                short(&e.to_string())
            ))
        })?;
        let status = resp.status();
        let body: Value = resp.json().await.unwrap_or(Value::Null);
        if !status.is_success() {
            let why = body["error_description"]
                .as_str()
                .or_else(|| body["error"].as_str())
                .unwrap_or("no reason given");
            return Err(StorageError::Invalid(format!(
                "{name} refused the sign-in ({}): {}",
                status.as_u16(),
                short(why)
            )));
        }
        let refresh_token = body["refresh_token"].as_str().filter(|t| !t.is_empty()).ok_or_else(|| {
            StorageError::Invalid(format!(
                "{name} signed in but gave no refresh token; allow offline access in the app's settings"
            ))
        })?;
        Ok(OAuthGrant {
            provider: pending.provider,
            provider_name: name,
            refresh_token: refresh_token.to_owned(),
        })
    }
}

/// The client-side encryption key of storage module `module_id`: an HMAC under the server key,
/// so `pentavision decrypt` can rebuild it from `DATA_DIR/server.key` and the module's id.
pub fn encryption_key(key: &pv_security::seal::ServerKey, module_id: i64) -> [u8; 32] {
    key.mac("storage-encryption", module_id.to_string().as_bytes())
}

/// The queue's tuning from `[storage]`.
fn queue_config(c: &pv_core::config::StorageConfig) -> QueueConfig {
    QueueConfig {
        poll: Duration::from_secs(2),
        backoff_base: Duration::from_secs(c.retry_base_seconds.max(1)),
        backoff_max: Duration::from_secs(c.retry_max_seconds.max(1)),
        failing_after: c.failing_after.max(1),
        probe_every: Duration::from_secs(c.probe_seconds.max(1)),
    }
}

fn short(text: &str) -> String {
    text.chars().take(200).collect()
}

fn name_conflict(e: pv_core::Error) -> StorageError {
    match e.kind() {
        pv_core::ErrorKind::Conflict => StorageError::Conflict(e.to_string()),
        _ => StorageError::Core(e),
    }
}

fn subtle_eq(a: &[u8], b: &[u8]) -> bool {
    use subtle::ConstantTimeEq;
    a.len() == b.len() && bool::from(a.ct_eq(b))
}

async fn write_event(dbs: &Databases, ev: &QueueEvent) {
    let level = match ev.level {
        pv_storage::queue::Level::Info => "info",
        pv_storage::queue::Level::Warn => "warn",
        pv_storage::queue::Level::Error => "error",
    };
    if let Err(e) = store::append_log(
        &dbs.records,
        ev.module_id,
        ev.at,
        level,
        ev.stream_id.as_deref(),
        &ev.event,
        &ev.message,
    )
    .await
    {
        tracing::warn!(error = %e, "cannot write a storage log line");
    }
}
