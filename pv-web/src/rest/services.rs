//! System services: the allow-listed systemd units (`services.allowed`), their state, and a
//! restart. Only a unit on the list can be named; every restart (and every refused one) is an
//! audit event, and a browser session needs the page's CSRF token.

use std::time::Duration;

use poem::web::Data;
use poem_openapi::param::Path;
use poem_openapi::payload::Json;
use poem_openapi::{Object, OpenApi};
use pv_security::rbac::{self, Permission};

use super::ApiTags;
use super::auth::NoContent;
use super::error::{ApiError, ApiResult};
use crate::auth::{Guarded, perm};
use crate::state::AppState;

/// The services API.
#[derive(Debug, Clone, Copy)]
pub struct ServicesApi;

/// A service.
#[derive(Debug, Clone, Object)]
#[oai(skip_serializing_if_is_none)]
pub struct Service {
    /// Unit name (without `.service`).
    pub name: String,
    /// What the service manager says: `active`, `inactive`, `failed`, … or `unknown`.
    pub state: String,
    /// Why the state is `unknown`, in words for people (absent otherwise).
    pub reason: Option<String>,
}

/// How long the service manager may take.
const TIMEOUT: Duration = Duration::from_secs(60);

/// Run `systemctl ARGS…`; (success, first line of its output or error).
async fn systemctl(state: &AppState, args: &[&str]) -> (bool, String) {
    let mut cmd = tokio::process::Command::new(&state.config().services.systemctl);
    cmd.args(args).kill_on_drop(true).stdin(std::process::Stdio::null());
    match tokio::time::timeout(TIMEOUT, cmd.output()).await {
        Ok(Ok(out)) => {
            let text = if out.stdout.is_empty() { &out.stderr } else { &out.stdout };
            let line = String::from_utf8_lossy(text).lines().next().unwrap_or("").trim().to_owned();
            (out.status.success(), line)
        }
        Ok(Err(e)) => (false, format!("cannot run the service manager: {e}")),
        Err(_) => {
            (false, format!("the service manager did not answer within {} s", TIMEOUT.as_secs()))
        }
    }
}

/// Why the service manager could not tell a unit's state, from the first line it printed (or
/// the error of running it), for people.
fn why_unknown(line: &str) -> String {
    let lower = line.to_ascii_lowercase();
    if lower.starts_with("cannot run the service manager") {
        "systemd's systemctl is not installed on this machine, so PentaVision cannot tell"
            .to_owned()
    } else if lower.contains("not been booted with systemd")
        || lower.contains("failed to connect to bus")
        || lower.contains("system has not been booted")
    {
        "systemd is not running on this machine (for example inside a container), so \
         PentaVision cannot tell"
            .to_owned()
    } else if lower.contains("did not answer") {
        "the service manager did not answer in time".to_owned()
    } else if line.is_empty() {
        "the service manager gave no answer".to_owned()
    } else {
        let short: String = line.chars().take(120).collect();
        format!("the service manager answered: {short}")
    }
}

fn unit(name: &str) -> String {
    format!("{name}.service")
}

#[OpenApi(tag = "ApiTags::System")]
impl ServicesApi {
    /// The services that may be restarted from here, with their state.
    #[oai(path = "/services", method = "get", operation_id = "listServices")]
    async fn list(
        &self,
        state: Data<&AppState>,
        _auth: Guarded<perm::SystemView>,
    ) -> ApiResult<Json<Vec<Service>>> {
        let mut out = Vec::new();
        for name in &state.config().services.allowed {
            let (_, line) = systemctl(&state, &["is-active", &unit(name)]).await;
            let known = ["active", "inactive", "failed", "activating", "deactivating", "reloading"];
            out.push(if known.contains(&line.as_str()) {
                Service { name: name.clone(), state: line, reason: None }
            } else {
                Service {
                    name: name.clone(),
                    state: "unknown".to_owned(),
                    reason: Some(why_unknown(&line)),
                }
            });
        }
        Ok(Json(out))
    }

    /// Restart an allow-listed service.
    #[oai(path = "/services/:name/restart", method = "post", operation_id = "restartService")]
    async fn restart(
        &self,
        state: Data<&AppState>,
        auth: Guarded<perm::ServicesRestart>,
        name: Path<String>,
    ) -> ApiResult<NoContent> {
        auth.authorize(&state, Permission::ServicesRestart, &rbac::Resource::Global)?;
        if !state.config().services.allowed.contains(&name.0) {
            auth.audit(
                &state,
                "service.restart_refused",
                "service",
                &name.0.chars().take(64).collect::<String>(),
                serde_json::json!({ "reason": "not allow-listed" }),
            )
            .await;
            return Err(ApiError::new(
                poem::http::StatusCode::NOT_FOUND,
                format!(
                    "{} is not a service PentaVision may restart (add it to the allowed \
                     services in the configuration first)",
                    name.0.chars().take(64).collect::<String>()
                ),
            ));
        }
        let (ok, line) = systemctl(&state, &["restart", &unit(&name.0)]).await;
        auth.audit(
            &state,
            if ok { "service.restart" } else { "service.restart_failed" },
            "service",
            &name.0,
            serde_json::json!({ "output": line }),
        )
        .await;
        if !ok {
            tracing::error!(service = %name.0, output = %line, "service restart failed");
            return Err(ApiError::new(
                poem::http::StatusCode::SERVICE_UNAVAILABLE,
                format!("restarting {} failed: {line}", name.0),
            ));
        }
        tracing::info!(service = %name.0, user = %auth.user.username, "service restarted");
        Ok(NoContent::Done)
    }
}
