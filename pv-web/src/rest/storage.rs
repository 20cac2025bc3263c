//! Storage modules: the provider definitions, configured module instances (Test → Save), their
//! health, logs and uploads, and the upload queue.
//!
//! Secrets are write-only: they are sealed with the server key before they are stored and are
//! never returned (a module shows `secrets_set`, the keys that have a stored value). A module is
//! saved only with a proof that a connection test passed for exactly the submitted values
//! ([`crate::nvr::StorageService::test`]). Every change is an audit event.

use std::collections::BTreeMap;

use chrono::{DateTime, Utc};
use poem::web::Data;
use poem_openapi::param::{Path, Query};
use poem_openapi::payload::Json;
use poem_openapi::{ApiResponse, Object, OpenApi};
use serde_json::Value;

use super::ApiTags;
use super::auth::{Created, NoContent};
use super::error::{ApiError, ApiResult};
use crate::auth::{Guarded, perm};
use crate::nvr::storage as svc;
use crate::state::AppState;

/// The storage API.
#[derive(Debug, Clone, Copy)]
pub struct StorageApi;

/// What a provider's backend can do.
#[derive(Debug, Clone, Object)]
#[oai(skip_serializing_if_is_none)]
pub struct Capabilities {
    /// Large files go up in parts (multipart or chunked upload).
    pub multipart: bool,
    /// Part of an object can be read.
    pub range: bool,
    /// Objects can be listed.
    pub list: bool,
    /// Time-limited links to an object can be made.
    pub presign: bool,
    /// At most this many parts per object.
    pub max_parts: Option<u32>,
}

/// One choice of a select field.
#[derive(Debug, Clone, Object)]
pub struct FieldOption {
    /// Value sent back.
    pub value: String,
    /// What people see.
    pub label: String,
}

/// One form field of a provider.
#[derive(Debug, Clone, Object)]
#[oai(skip_serializing_if_is_none)]
pub struct Field {
    /// Key in `config` (or in `secrets` when `secret`).
    pub key: String,
    /// Label.
    pub label: String,
    /// `text`, `password`, `number`, `bool`, `select`, `url`, `path` or `textarea`.
    pub kind: String,
    /// Must be filled in.
    pub required: bool,
    /// Goes in `secrets`: sealed at rest, never shown back.
    pub secret: bool,
    /// Value used when left empty.
    pub default: Option<Value>,
    /// Example shown in the empty field.
    pub placeholder: Option<String>,
    /// Regular expression the value must match.
    pub pattern: Option<String>,
    /// Smallest number.
    pub min: Option<f64>,
    /// Largest number.
    pub max: Option<f64>,
    /// Choices of a select field.
    pub options: Vec<FieldOption>,
    /// Help text.
    pub help: String,
    /// Where to find this value, in the vendor's documentation.
    pub docs_url: Option<String>,
    /// Shown under Advanced.
    pub advanced: bool,
}

/// A storage provider (a loaded definition).
#[derive(Debug, Clone, Object)]
pub struct Provider {
    /// Id (the folder name).
    pub id: String,
    /// Name.
    pub name: String,
    /// `object_storage`, `cloud_drive`, `network` or `local`.
    pub category: String,
    /// Icon key.
    pub icon: String,
    /// One sentence.
    pub description: String,
    /// The vendor's documentation.
    pub docs_url: String,
    /// The backend that talks to it.
    pub backend: String,
    /// What it can do.
    pub capabilities: Capabilities,
    /// Form fields.
    pub fields: Vec<Field>,
    /// The form snippet (HTML).
    pub template_html: String,
    /// `builtin`, or `dropped` (a folder in the data directory's modules folder).
    pub source: String,
    /// It offers "Connect" (an OAuth authorisation from the browser).
    pub oauth: bool,
}

/// A provider folder that was skipped at start-up.
#[derive(Debug, Clone, Object)]
pub struct Notice {
    /// The folder.
    pub folder: String,
    /// Why, for people.
    pub message: String,
}

/// `GET /storage/providers`.
#[derive(Debug, Clone, Object)]
pub struct ProviderList {
    /// Providers, grouped by category, then by name.
    pub providers: Vec<Provider>,
    /// Folders that were skipped.
    pub notices: Vec<Notice>,
}

/// `POST /storage/modules/test`.
#[derive(Debug, Clone, Object)]
#[oai(skip_serializing_if_is_none)]
pub struct TestRequest {
    /// Provider id.
    pub provider: String,
    /// Non-secret field values.
    #[oai(default)]
    pub config: BTreeMap<String, Value>,
    /// Secret field values (an empty value keeps the stored one when `module_id` is given).
    #[oai(default)]
    pub secrets: BTreeMap<String, Value>,
    /// Testing new values of this module.
    pub module_id: Option<i64>,
}

/// One step of a connection test.
#[derive(Debug, Clone, Object)]
#[oai(skip_serializing_if_is_none)]
pub struct TestStep {
    /// `connect`, `write`, `read`, `compare` or `delete`.
    pub step: String,
    /// What the step does, for people.
    pub label: String,
    /// It passed.
    pub ok: bool,
    /// How long it took.
    pub millis: u64,
    /// Why it failed (or a note).
    pub message: Option<String>,
}

/// The outcome of a connection test.
#[derive(Debug, Clone, Object)]
#[oai(skip_serializing_if_is_none)]
pub struct TestResult {
    /// Every step passed.
    pub ok: bool,
    /// Each step.
    pub steps: Vec<TestStep>,
    /// All steps together.
    pub total_ms: u64,
    /// The proof to send with Save (only when `ok`); valid for these exact values for an hour.
    pub proof: Option<String>,
}

/// `POST /storage/modules`.
#[derive(Debug, Clone, Object)]
#[oai(skip_serializing_if_is_none)]
pub struct NewModule {
    /// Unique name.
    pub name: String,
    /// Provider id.
    pub provider: String,
    /// Non-secret field values.
    #[oai(default)]
    pub config: BTreeMap<String, Value>,
    /// Secret field values.
    #[oai(default)]
    pub secrets: BTreeMap<String, Value>,
    /// The proof from a passing test of these values.
    pub proof: String,
    /// Lower goes first.
    pub priority: Option<i32>,
    /// Object key template.
    pub key_template: Option<String>,
    /// Tags.
    pub tags: Option<Vec<String>>,
    /// Remote copies older than this are deleted (none: kept).
    pub retention_days: Option<i32>,
    /// Part size of large uploads.
    pub chunk_size_bytes: Option<i64>,
    /// Uploads at once.
    pub parallel_uploads: Option<i32>,
    /// Upload bandwidth limit.
    pub bandwidth_limit_bytes_per_second: Option<i64>,
    /// Encrypt before upload (AES-256-GCM with a key derived from the server key).
    pub encrypted: Option<bool>,
    /// Start uploading at once (default true).
    pub enabled: Option<bool>,
}

/// `PATCH /storage/modules/{id}`: absent fields stay.
#[derive(Debug, Clone, Object)]
#[oai(skip_serializing_if_is_none)]
pub struct ModulePatch {
    /// Unique name.
    pub name: Option<String>,
    /// New non-secret values (with `proof`).
    pub config: Option<BTreeMap<String, Value>>,
    /// New secret values; empty ones keep the stored value (with `proof`).
    pub secrets: Option<BTreeMap<String, Value>>,
    /// Proof of a passing test of the new values.
    pub proof: Option<String>,
    /// Lower goes first.
    pub priority: Option<i32>,
    /// Object key template.
    pub key_template: Option<String>,
    /// Tags.
    pub tags: Option<Vec<String>>,
    /// Remote retention in days; 0 keeps copies for ever.
    pub retention_days: Option<i32>,
    /// Part size of large uploads; 0 for the provider's default.
    pub chunk_size_bytes: Option<i64>,
    /// Uploads at once.
    pub parallel_uploads: Option<i32>,
    /// Upload bandwidth limit; 0 for none.
    pub bandwidth_limit_bytes_per_second: Option<i64>,
    /// Encrypt before upload.
    pub encrypted: Option<bool>,
    /// Enabled.
    pub enabled: Option<bool>,
}

/// A storage module (a configured instance of a provider).
#[derive(Debug, Clone, Object)]
#[oai(skip_serializing_if_is_none)]
pub struct Module {
    /// Id.
    pub id: i64,
    /// Name.
    pub name: String,
    /// Provider id.
    pub provider: String,
    /// Provider name.
    pub provider_name: String,
    /// Provider category.
    pub category: String,
    /// Icon key.
    pub icon: String,
    /// Uploads go to it.
    pub enabled: bool,
    /// It is disabled once its queued uploads are done.
    pub draining: bool,
    /// `healthy`, `degraded`, `failing` or `disabled`.
    pub status: String,
    /// Lower goes first.
    pub priority: i32,
    /// Non-secret values.
    pub config: BTreeMap<String, Value>,
    /// Secret fields that have a stored value (the values are never shown).
    pub secrets_set: Vec<String>,
    /// Object key template.
    pub key_template: String,
    /// Tags.
    pub tags: Vec<String>,
    /// Remote retention in days.
    pub retention_days: Option<i32>,
    /// Part size of large uploads.
    pub chunk_size_bytes: Option<i64>,
    /// Uploads at once.
    pub parallel_uploads: i32,
    /// Upload bandwidth limit.
    pub bandwidth_limit_bytes_per_second: Option<i64>,
    /// Encrypted before upload.
    pub encrypted: bool,
    /// Uploads running now.
    pub active_uploads: u32,
    /// Uploads waiting.
    pub pending_uploads: u64,
    /// Last write attempt.
    pub last_write_at: Option<DateTime<Utc>>,
    /// Last successful write.
    pub last_ok_at: Option<DateTime<Utc>>,
    /// Last error.
    pub last_error: Option<String>,
    /// Last connection test.
    pub last_test_at: Option<DateTime<Utc>>,
    /// Created at.
    pub created_at: DateTime<Utc>,
    /// Changed at.
    pub updated_at: DateTime<Utc>,
}

/// One health check.
#[derive(Debug, Clone, Object)]
#[oai(skip_serializing_if_is_none)]
pub struct HealthCheck {
    /// When.
    pub at: DateTime<Utc>,
    /// `healthy` or `failing`.
    pub status: String,
    /// How long the test write took.
    pub latency_ms: Option<i64>,
    /// What went wrong.
    pub message: Option<String>,
}

/// `GET /storage/modules/{id}/health`.
#[derive(Debug, Clone, Object)]
#[oai(skip_serializing_if_is_none)]
pub struct Health {
    /// `healthy`, `degraded`, `failing` or `disabled`.
    pub status: String,
    /// Last connection test.
    pub last_test_at: Option<DateTime<Utc>>,
    /// It passed.
    pub last_test_ok: Option<bool>,
    /// Why it failed.
    pub last_test_error: Option<String>,
    /// Last write attempt.
    pub last_write_at: Option<DateTime<Utc>>,
    /// Last successful write.
    pub last_ok_at: Option<DateTime<Utc>>,
    /// Last failed write.
    pub last_error_at: Option<DateTime<Utc>>,
    /// Its error.
    pub last_error: Option<String>,
    /// Bytes written today (UTC).
    pub bytes_today: i64,
    /// Bytes written this month (UTC).
    pub bytes_month: i64,
    /// Average gigabytes per day over the last 30 days.
    pub gb_per_day: f64,
    /// Failed writes / writes over the last 24 hours (0 to 1).
    pub error_rate_24h: f64,
    /// Writes over the last 24 hours.
    pub writes_24h: i64,
    /// Uploads running now.
    pub active_uploads: u32,
    /// Uploads finished.
    pub completed_uploads: u64,
    /// Uploads waiting.
    pub pending_uploads: u64,
    /// Recent health checks, newest first.
    pub checks: Vec<HealthCheck>,
}

/// One log line of a module.
#[derive(Debug, Clone, Object)]
#[oai(skip_serializing_if_is_none)]
pub struct LogEntry {
    /// Id (page with `before`).
    pub id: i64,
    /// When.
    pub at: DateTime<Utc>,
    /// `debug`, `info`, `warn` or `error`.
    pub level: String,
    /// What happened: `auth`, `upload_start`, `upload_done`, `upload_failed`, `chunk_retry`,
    /// `timeout`, `permission`, `cleanup`, `failover`, `probe`, `test`.
    pub event: String,
    /// The segment (stream) it concerns.
    pub stream_id: Option<String>,
    /// For people.
    pub message: String,
}

/// `GET /storage/modules/{id}/logs`.
#[derive(Debug, Clone, Object)]
pub struct LogPage {
    /// Newest first.
    pub entries: Vec<LogEntry>,
}

/// One upload (a segment to a module).
#[derive(Debug, Clone, Object)]
#[oai(skip_serializing_if_is_none)]
pub struct Upload {
    /// The segment's stream id.
    pub stream_id: String,
    /// Segment id.
    pub segment_id: i64,
    /// Camera id.
    pub camera_id: i64,
    /// Camera name.
    pub camera_name: String,
    /// Module it goes (or went) to.
    pub module_id: i64,
    /// `pending`, `uploading`, `done`, `skipped` or `expired`; a pending upload with
    /// `last_error` is waiting to retry.
    pub status: String,
    /// Bytes.
    pub size_bytes: i64,
    /// Duration of the footage.
    pub duration_ms: i64,
    /// Last change.
    pub last_write_at: DateTime<Utc>,
    /// Attempts so far.
    pub attempts: i32,
    /// Object key.
    pub remote_key: Option<String>,
    /// Last error.
    pub last_error: Option<String>,
}

/// `GET /storage/modules/{id}/streams`.
#[derive(Debug, Clone, Object)]
pub struct UploadList {
    /// Newest first.
    pub streams: Vec<Upload>,
}

/// `GET /storage/queue`.
#[derive(Debug, Clone, Object)]
pub struct Queue {
    /// Waiting.
    pub pending: u64,
    /// Running.
    pub uploading: u64,
    /// Waiting after a failed attempt.
    pub failed: u64,
    /// Finished in the last 24 hours.
    pub done_24h: u64,
    /// Recent uploads, newest first.
    pub items: Vec<Upload>,
}

/// `POST /storage/oauth/start`.
#[derive(Debug, Clone, Object)]
#[oai(skip_serializing_if_is_none)]
pub struct OAuthStart {
    /// Provider id (one that signs in with OAuth).
    pub provider: String,
    /// The app key (client id) of your app at the vendor.
    pub client_id: String,
    /// The app secret (client secret), when the vendor issued one.
    pub client_secret: Option<String>,
    /// This server's `/storage/oauth/callback` as the browser reaches it; register it with
    /// the vendor's app.
    pub redirect_uri: String,
}

/// Where to send the browser to sign in.
#[derive(Debug, Clone, Object)]
pub struct OAuthRedirect {
    /// The vendor's consent page.
    pub authorize_url: String,
    /// Ties the redirect back to this request.
    pub state: String,
}

/// One module.
#[derive(ApiResponse)]
pub enum ModuleResponse {
    /// The module.
    #[oai(status = 200)]
    Ok(Json<Module>),
}

fn to_api_module(m: svc::ModuleView) -> Module {
    Module {
        id: m.id,
        name: m.name,
        provider: m.provider,
        provider_name: m.provider_name,
        category: m.category,
        icon: m.icon,
        enabled: m.enabled,
        draining: m.draining,
        status: m.status,
        priority: m.priority,
        config: m.config,
        secrets_set: m.secrets_set,
        key_template: m.key_template,
        tags: m.tags,
        retention_days: m.retention_days,
        chunk_size_bytes: m.chunk_size_bytes,
        parallel_uploads: m.parallel_uploads,
        bandwidth_limit_bytes_per_second: m.bandwidth_limit_bytes_per_second,
        encrypted: m.encrypted,
        active_uploads: m.active_uploads,
        pending_uploads: m.pending_uploads,
        last_write_at: m.last_write_at,
        last_ok_at: m.last_ok_at,
        last_error: m.last_error,
        last_test_at: m.last_test_at,
        created_at: m.created_at,
        updated_at: m.updated_at,
    }
}

fn to_api_upload(u: svc::UploadView) -> Upload {
    Upload {
        stream_id: u.stream_id,
        segment_id: u.segment_id,
        camera_id: u.camera_id,
        camera_name: u.camera_name,
        module_id: u.module_id,
        status: u.status,
        size_bytes: u.size_bytes,
        duration_ms: u.duration_ms,
        last_write_at: u.last_write_at,
        attempts: u.attempts,
        remote_key: u.remote_key,
        last_error: u.last_error,
    }
}

fn storage_err(e: svc::StorageError) -> ApiError {
    ApiError::new(e.status(), e.to_string())
}

/// What an audit event says about a module (never its secrets).
fn audit_details(m: &Module) -> Value {
    serde_json::json!({
        "name": m.name,
        "provider": m.provider,
        "enabled": m.enabled,
        "priority": m.priority,
        "config": m.config,
        "secrets_set": m.secrets_set,
        "key_template": m.key_template,
        "retention_days": m.retention_days,
        "encrypted": m.encrypted,
    })
}

#[OpenApi(tag = "ApiTags::Storage")]
impl StorageApi {
    /// The storage providers PentaVision can write to, and provider folders it skipped.
    #[oai(path = "/storage/providers", method = "get", operation_id = "listStorageProviders")]
    async fn providers(
        &self,
        state: Data<&AppState>,
        _auth: Guarded<perm::StorageView>,
    ) -> ApiResult<Json<ProviderList>> {
        let storage = state.nvr().storage();
        let (registry, notices) = storage.providers();
        let providers = registry
            .providers()
            .map(|p| {
                let d = &p.definition;
                Provider {
                    id: d.id.clone(),
                    name: d.name.clone(),
                    category: svc::category_key(d.category).to_owned(),
                    icon: d.icon.clone(),
                    description: d.description.clone(),
                    docs_url: d.docs_url.clone(),
                    backend: d.backend.clone(),
                    capabilities: Capabilities {
                        multipart: d.capabilities.multipart,
                        range: d.capabilities.range,
                        list: d.capabilities.list,
                        presign: d.capabilities.presign,
                        max_parts: d.capabilities.max_parts,
                    },
                    fields: d
                        .fields
                        .iter()
                        .map(|f| Field {
                            key: f.key.clone(),
                            label: f.label.clone(),
                            kind: svc::field_kind_key(f.kind).to_owned(),
                            required: f.required,
                            secret: f.secret,
                            default: f.default.clone(),
                            placeholder: f.placeholder.clone(),
                            pattern: f.pattern.clone(),
                            min: f.min,
                            max: f.max,
                            options: f
                                .options
                                .iter()
                                .map(|o| FieldOption {
                                    value: o.value.clone(),
                                    label: o.label.clone(),
                                })
                                .collect(),
                            help: f.help.clone(),
                            docs_url: f.docs_url.clone(),
                            advanced: f.advanced,
                        })
                        .collect(),
                    template_html: p.template_html.clone(),
                    source: svc::source_key(&p.source).to_owned(),
                    oauth: d.oauth.is_some(),
                }
            })
            .collect();
        let notices = notices
            .iter()
            .map(|n| Notice { folder: n.folder.clone(), message: n.message.clone() })
            .collect();
        Ok(Json(ProviderList { providers, notices }))
    }

    /// Test a connection: sign in, write a temporary object, read it back, compare, delete it.
    /// A passing test returns the proof that Save needs.
    #[oai(path = "/storage/modules/test", method = "post", operation_id = "testStorageModule")]
    async fn test(
        &self,
        state: Data<&AppState>,
        auth: Guarded<perm::StorageManage>,
        body: Json<TestRequest>,
    ) -> ApiResult<Json<TestResult>> {
        let b = body.0;
        let outcome = state
            .nvr()
            .storage()
            .test(
                &b.provider,
                b.config.into_iter().collect(),
                b.secrets.into_iter().collect(),
                b.module_id,
            )
            .await
            .map_err(storage_err)?;
        auth.audit(
            &state,
            "storage.test",
            "storage_provider",
            &b.provider,
            serde_json::json!({ "ok": outcome.report.ok, "module_id": b.module_id }),
        )
        .await;
        Ok(Json(TestResult {
            ok: outcome.report.ok,
            steps: outcome
                .report
                .steps
                .into_iter()
                .map(|s| TestStep {
                    step: s.step,
                    label: s.label,
                    ok: s.ok,
                    millis: s.millis,
                    message: s.message,
                })
                .collect(),
            total_ms: outcome.report.total_ms,
            proof: outcome.proof,
        }))
    }

    /// Start signing in to an OAuth provider (Dropbox, OneDrive, Google Drive, Box) from the
    /// browser: open `authorize_url`; the vendor sends the browser back to
    /// `/storage/oauth/callback`, which hands the refresh token to the form.
    #[oai(path = "/storage/oauth/start", method = "post", operation_id = "startStorageOAuth")]
    async fn oauth_start(
        &self,
        state: Data<&AppState>,
        auth: Guarded<perm::StorageManage>,
        body: Json<OAuthStart>,
    ) -> ApiResult<Json<OAuthRedirect>> {
        let b = body.0;
        let (authorize_url, st) = state
            .nvr()
            .storage()
            .oauth_start(
                &b.provider,
                &b.client_id,
                b.client_secret.as_deref().unwrap_or(""),
                &b.redirect_uri,
                auth.user.id,
            )
            .map_err(storage_err)?;
        auth.audit(
            &state,
            "storage.oauth.start",
            "storage_provider",
            &b.provider,
            serde_json::json!({ "redirect_uri": b.redirect_uri }),
        )
        .await;
        Ok(Json(OAuthRedirect { authorize_url, state: st }))
    }

    /// The storage modules, in priority order.
    #[oai(path = "/storage/modules", method = "get", operation_id = "listStorageModules")]
    async fn list(
        &self,
        state: Data<&AppState>,
        _auth: Guarded<perm::StorageView>,
    ) -> ApiResult<Json<Vec<Module>>> {
        let views = state.nvr().storage().list().await.map_err(storage_err)?;
        Ok(Json(views.into_iter().map(to_api_module).collect()))
    }

    /// Save a module whose values passed a connection test (send the test's proof).
    #[oai(path = "/storage/modules", method = "post", operation_id = "createStorageModule")]
    async fn create(
        &self,
        state: Data<&AppState>,
        auth: Guarded<perm::StorageManage>,
        body: Json<NewModule>,
    ) -> ApiResult<Created<Module>> {
        let b = body.0;
        let input = svc::ModuleInput {
            name: b.name,
            provider: b.provider,
            config: b.config.into_iter().collect(),
            secrets: b.secrets.into_iter().collect(),
            proof: b.proof,
            priority: b.priority,
            key_template: b.key_template,
            tags: b.tags,
            retention_days: b.retention_days,
            chunk_size_bytes: b.chunk_size_bytes,
            parallel_uploads: b.parallel_uploads,
            bandwidth_limit_bytes_per_second: b.bandwidth_limit_bytes_per_second,
            encrypted: b.encrypted,
            enabled: b.enabled,
        };
        let m = to_api_module(state.nvr().storage().create(input).await.map_err(storage_err)?);
        auth.audit(
            &state,
            "storage.module.create",
            "storage_module",
            &m.id.to_string(),
            audit_details(&m),
        )
        .await;
        Ok(Created::Created(Json(m)))
    }

    /// One module.
    #[oai(path = "/storage/modules/:id", method = "get", operation_id = "getStorageModule")]
    async fn get(
        &self,
        state: Data<&AppState>,
        _auth: Guarded<perm::StorageView>,
        id: Path<i64>,
    ) -> ApiResult<ModuleResponse> {
        let m = state.nvr().storage().get(id.0).await.map_err(storage_err)?;
        Ok(ModuleResponse::Ok(Json(to_api_module(m))))
    }

    /// Change a module. New connection values need the proof of a passing test and are refused
    /// while uploads to the module run (clone it instead).
    #[oai(path = "/storage/modules/:id", method = "patch", operation_id = "updateStorageModule")]
    async fn update(
        &self,
        state: Data<&AppState>,
        auth: Guarded<perm::StorageManage>,
        id: Path<i64>,
        body: Json<ModulePatch>,
    ) -> ApiResult<ModuleResponse> {
        let b = body.0;
        let patch = svc::ModulePatchInput {
            name: b.name,
            config: b.config.map(|c| c.into_iter().collect()),
            secrets: b.secrets.map(|c| c.into_iter().collect()),
            proof: b.proof,
            priority: b.priority,
            key_template: b.key_template,
            tags: b.tags,
            retention_days: b.retention_days,
            chunk_size_bytes: b.chunk_size_bytes,
            parallel_uploads: b.parallel_uploads,
            bandwidth_limit_bytes_per_second: b.bandwidth_limit_bytes_per_second,
            encrypted: b.encrypted,
            enabled: b.enabled,
        };
        let m =
            to_api_module(state.nvr().storage().update(id.0, patch).await.map_err(storage_err)?);
        auth.audit(
            &state,
            "storage.module.update",
            "storage_module",
            &m.id.to_string(),
            audit_details(&m),
        )
        .await;
        Ok(ModuleResponse::Ok(Json(m)))
    }

    /// Remove a module. Refused while uploads wait for it unless `queued=move`, which hands
    /// them to the next module of their camera's list.
    #[oai(path = "/storage/modules/:id", method = "delete", operation_id = "deleteStorageModule")]
    async fn delete(
        &self,
        state: Data<&AppState>,
        auth: Guarded<perm::StorageManage>,
        id: Path<i64>,
        /// `move`: hand queued uploads to the next module.
        queued: Query<Option<String>>,
    ) -> ApiResult<NoContent> {
        let move_queued = match queued.0.as_deref() {
            None | Some("") => false,
            Some("move") => true,
            Some(_) => {
                return Err(ApiError::bad_request(
                    "queued uploads can only be moved (queued=move) or the removal refused",
                ));
            }
        };
        let moved = state.nvr().storage().delete(id.0, move_queued).await.map_err(storage_err)?;
        auth.audit(
            &state,
            "storage.module.delete",
            "storage_module",
            &id.0.to_string(),
            serde_json::json!({ "moved_uploads": moved }),
        )
        .await;
        Ok(NoContent::Done)
    }

    /// Copy a module (disabled, same secrets), for example to change credentials while
    /// uploads to the original run.
    #[oai(
        path = "/storage/modules/:id/clone",
        method = "post",
        operation_id = "cloneStorageModule"
    )]
    async fn clone_module(
        &self,
        state: Data<&AppState>,
        auth: Guarded<perm::StorageManage>,
        id: Path<i64>,
    ) -> ApiResult<Created<Module>> {
        let m = to_api_module(state.nvr().storage().clone_module(id.0).await.map_err(storage_err)?);
        auth.audit(
            &state,
            "storage.module.clone",
            "storage_module",
            &m.id.to_string(),
            audit_details(&m),
        )
        .await;
        Ok(Created::Created(Json(m)))
    }

    /// Drain and disable: no new uploads go to the module; it is disabled once its queued
    /// uploads are done.
    #[oai(
        path = "/storage/modules/:id/drain",
        method = "post",
        operation_id = "drainStorageModule"
    )]
    async fn drain(
        &self,
        state: Data<&AppState>,
        auth: Guarded<perm::StorageManage>,
        id: Path<i64>,
    ) -> ApiResult<ModuleResponse> {
        let m = to_api_module(state.nvr().storage().drain(id.0).await.map_err(storage_err)?);
        auth.audit(
            &state,
            "storage.module.drain",
            "storage_module",
            &m.id.to_string(),
            audit_details(&m),
        )
        .await;
        Ok(ModuleResponse::Ok(Json(m)))
    }

    /// A module's health: status, last writes, usage, error rate and recent checks.
    #[oai(
        path = "/storage/modules/:id/health",
        method = "get",
        operation_id = "getStorageModuleHealth"
    )]
    async fn health(
        &self,
        state: Data<&AppState>,
        _auth: Guarded<perm::StorageView>,
        id: Path<i64>,
    ) -> ApiResult<Json<Health>> {
        let h = state.nvr().storage().health(id.0).await.map_err(storage_err)?;
        Ok(Json(Health {
            status: h.status,
            last_test_at: h.last_test_at,
            last_test_ok: h.last_test_ok,
            last_test_error: h.last_test_error,
            last_write_at: h.last_write_at,
            last_ok_at: h.last_ok_at,
            last_error_at: h.last_error_at,
            last_error: h.last_error,
            bytes_today: h.bytes_today,
            bytes_month: h.bytes_month,
            gb_per_day: h.gb_per_day,
            error_rate_24h: h.error_rate_24h,
            writes_24h: h.writes_24h,
            active_uploads: h.active_uploads,
            completed_uploads: h.completed_uploads,
            pending_uploads: h.pending_uploads,
            checks: h
                .checks
                .into_iter()
                .map(|c| HealthCheck {
                    at: c.at,
                    status: c.status,
                    latency_ms: c.latency_ms,
                    message: c.message,
                })
                .collect(),
        }))
    }

    /// A module's log, newest first: sign-ins, uploads, retries, time-outs, permission errors,
    /// clean-up failures.
    #[oai(
        path = "/storage/modules/:id/logs",
        method = "get",
        operation_id = "getStorageModuleLogs"
    )]
    #[allow(clippy::too_many_arguments)]
    async fn logs(
        &self,
        state: Data<&AppState>,
        _auth: Guarded<perm::StorageView>,
        id: Path<i64>,
        /// Lowest level shown: `debug`, `info`, `warn` or `error`.
        level: Query<Option<String>>,
        /// Words the message contains.
        q: Query<Option<String>>,
        /// Only this segment (stream id).
        stream: Query<Option<String>>,
        /// At most this many (1 to 1000, default 200).
        limit: Query<Option<u32>>,
        /// Entries older than this id.
        before: Query<Option<i64>>,
    ) -> ApiResult<Json<LogPage>> {
        let level = match level.0.as_deref() {
            None | Some("") => None,
            Some(l @ ("debug" | "info" | "warn" | "error")) => Some(l.to_owned()),
            Some(_) => {
                return Err(ApiError::bad_request(
                    "the level is one of debug, info, warn or error",
                ));
            }
        };
        let limit = limit.0.unwrap_or(200);
        if !(1..=1000).contains(&limit) {
            return Err(ApiError::bad_request("show between 1 and 1000 log entries at a time"));
        }
        let filter = svc::LogQuery {
            level,
            search: q.0.filter(|s| !s.is_empty()),
            stream: stream.0.filter(|s| !s.is_empty()),
            limit,
            before: before.0,
        };
        let entries = state.nvr().storage().logs(id.0, filter).await.map_err(storage_err)?;
        Ok(Json(LogPage {
            entries: entries
                .into_iter()
                .map(|e| LogEntry {
                    id: e.id,
                    at: e.at,
                    level: e.level,
                    event: e.event,
                    stream_id: e.stream_id,
                    message: e.message,
                })
                .collect(),
        }))
    }

    /// A module's recent uploads, newest first.
    #[oai(
        path = "/storage/modules/:id/streams",
        method = "get",
        operation_id = "getStorageModuleStreams"
    )]
    async fn streams(
        &self,
        state: Data<&AppState>,
        _auth: Guarded<perm::StorageView>,
        id: Path<i64>,
        /// At most this many (1 to 1000, default 100).
        limit: Query<Option<u32>>,
    ) -> ApiResult<Json<UploadList>> {
        let limit = limit.0.unwrap_or(100);
        if !(1..=1000).contains(&limit) {
            return Err(ApiError::bad_request("show between 1 and 1000 uploads at a time"));
        }
        let items = state.nvr().storage().uploads(Some(id.0), limit).await.map_err(storage_err)?;
        Ok(Json(UploadList { streams: items.into_iter().map(to_api_upload).collect() }))
    }

    /// The upload queue: counts and the most recent uploads.
    #[oai(path = "/storage/queue", method = "get", operation_id = "getStorageQueue")]
    async fn queue(
        &self,
        state: Data<&AppState>,
        _auth: Guarded<perm::StorageView>,
        /// At most this many items (0 to 1000, default 100).
        limit: Query<Option<u32>>,
    ) -> ApiResult<Json<Queue>> {
        let limit = limit.0.unwrap_or(100);
        if limit > 1000 {
            return Err(ApiError::bad_request("show at most 1000 uploads at a time"));
        }
        let storage = state.nvr().storage();
        let s = storage.queue_summary().await.map_err(storage_err)?;
        let items = if limit == 0 {
            Vec::new()
        } else {
            storage.uploads(None, limit).await.map_err(storage_err)?
        };
        Ok(Json(Queue {
            pending: s.pending,
            uploading: s.uploading,
            failed: s.failed,
            done_24h: s.done_24h,
            items: items.into_iter().map(to_api_upload).collect(),
        }))
    }
}
