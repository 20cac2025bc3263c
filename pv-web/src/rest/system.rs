//! `/api/v1/system`: what the server is and the state of its databases.

use poem::web::Data;
use poem_openapi::payload::Json;
use poem_openapi::{Object, OpenApi};

use super::ApiTags;
use super::error::ApiResult;
use crate::auth::{Guarded, perm};
use crate::state::AppState;

/// The system API.
#[derive(Debug, Clone, Copy)]
pub struct SystemApi;

/// One of the three databases.
#[derive(Debug, Clone, Object)]
#[oai(skip_serializing_if_is_none)]
pub struct DatabaseInfo {
    /// `users`, `faces` or `records`.
    pub name: String,
    /// `sqlite`, `postgres` or `mysql`.
    pub backend: String,
    /// Whether it answered just now.
    pub reachable: bool,
    /// The newest applied migration.
    pub schema_version: Option<String>,
    /// Why it is unreachable.
    pub error: Option<String>,
}

/// The server's state.
#[derive(Debug, Clone, Object)]
#[oai(skip_serializing_if_is_none)]
pub struct SystemInfo {
    /// PentaVision version.
    pub version: String,
    /// Seconds since the server started.
    pub uptime_seconds: u64,
    /// The data directory (absolute when it can be resolved).
    pub data_dir: String,
    /// The address the server listens on.
    pub listen: String,
    /// Resident memory of the server process in bytes, when known.
    pub resident_memory_bytes: Option<u64>,
    /// The three databases.
    pub databases: Vec<DatabaseInfo>,
}

#[OpenApi(tag = "ApiTags::System")]
impl SystemApi {
    /// Version, uptime, data directory and the state of the three databases.
    #[oai(path = "/system", method = "get", operation_id = "getSystem")]
    async fn system(
        &self,
        state: Data<&AppState>,
        _auth: Guarded<perm::SystemView>,
    ) -> ApiResult<Json<SystemInfo>> {
        Ok(Json(system_info(&state).await))
    }
}

/// Gather [`SystemInfo`] (also used by the overview page).
pub async fn system_info(state: &AppState) -> SystemInfo {
    let config = state.config();
    let data_dir = std::fs::canonicalize(&config.data_dir)
        .unwrap_or_else(|_| config.data_dir.clone())
        .display()
        .to_string();
    let databases = state
        .dbs()
        .status()
        .await
        .into_iter()
        .map(|s| DatabaseInfo {
            name: s.kind.name().to_string(),
            backend: s.backend.to_string(),
            reachable: s.reachable,
            schema_version: s.schema_version,
            error: s.error,
        })
        .collect();
    SystemInfo {
        version: pv_core::VERSION.to_string(),
        uptime_seconds: state.clock().elapsed().as_secs(),
        data_dir,
        listen: state.listen_addr().to_string(),
        resident_memory_bytes: crate::ops::resident_memory_bytes(),
        databases,
    }
}
