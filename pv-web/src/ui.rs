//! The admin UI: server-rendered askama pages in the dark PentaVision theme, static assets
//! embedded in the binary, and the toast component (every message to the user, errors
//! included, appears bottom-right, green with black text, and fades after 10 seconds).

use askama::Template;
use poem::http::{StatusCode, header};
use poem::web::{Data, Html, Path};
use poem::{IntoResponse, Request, Response, handler};
use pv_security::rbac::{self, Permission};
use pv_security::session::Stage;

use crate::auth::Principal;
use crate::problem::Problem;
use crate::rest::system::{SystemInfo, system_info};
use crate::state::AppState;

/// A message for the toast component.
#[derive(Debug, Clone, serde::Serialize)]
pub struct Toast {
    /// The text shown.
    pub message: String,
    /// `info` or `error` (errors are announced assertively to screen readers).
    pub level: &'static str,
}

/// An embedded static asset.
struct Asset {
    name: &'static str,
    content_type: &'static str,
    body: &'static [u8],
}

const ASSETS: &[Asset] = &[
    Asset {
        name: "app.css",
        content_type: "text/css; charset=utf-8",
        body: include_bytes!("../static/app.css"),
    },
    Asset {
        name: "app.js",
        content_type: "text/javascript; charset=utf-8",
        body: include_bytes!("../static/app.js"),
    },
    Asset {
        name: "cameras.js",
        content_type: "text/javascript; charset=utf-8",
        body: include_bytes!("../static/cameras.js"),
    },
    Asset {
        name: "recordings.js",
        content_type: "text/javascript; charset=utf-8",
        body: include_bytes!("../static/recordings.js"),
    },
    Asset {
        name: "admin.js",
        content_type: "text/javascript; charset=utf-8",
        body: include_bytes!("../static/admin.js"),
    },
    Asset {
        name: "services.js",
        content_type: "text/javascript; charset=utf-8",
        body: include_bytes!("../static/services.js"),
    },
    Asset {
        name: "users.js",
        content_type: "text/javascript; charset=utf-8",
        body: include_bytes!("../static/users.js"),
    },
    Asset {
        name: "player.js",
        content_type: "text/javascript; charset=utf-8",
        body: include_bytes!("../static/player.js"),
    },
    Asset {
        name: "live.js",
        content_type: "text/javascript; charset=utf-8",
        body: include_bytes!("../static/live.js"),
    },
    Asset {
        name: "camera-live.js",
        content_type: "text/javascript; charset=utf-8",
        body: include_bytes!("../static/camera-live.js"),
    },
    Asset {
        name: "favicon.svg",
        content_type: "image/svg+xml",
        body: include_bytes!("../static/favicon.svg"),
    },
];

/// `GET /static/:file`: an embedded asset.
#[handler]
pub async fn static_file(Path(file): Path<String>) -> Response {
    match ASSETS.iter().find(|a| a.name == file) {
        Some(asset) => Response::builder()
            .content_type(asset.content_type)
            .header(header::CACHE_CONTROL, "public, max-age=3600")
            .body(asset.body),
        None => Problem::new(StatusCode::NOT_FOUND, format!("no static asset named '{file}'"))
            .into_response(),
    }
}

#[derive(Template)]
#[template(path = "overview.html")]
struct OverviewPage {
    title: &'static str,
    active: &'static str,
    version: &'static str,
    username: String,
    info: SystemInfo,
    uptime: String,
    memory: String,
    toasts_json: String,
}

#[derive(Template)]
#[template(path = "login.html")]
struct LoginPage {
    title: &'static str,
    active: &'static str,
    version: &'static str,
    username: String,
    toasts_json: String,
}

#[derive(Template)]
#[template(path = "enrol.html")]
struct EnrolPage {
    title: &'static str,
    active: &'static str,
    version: &'static str,
    username: String,
    needs_password: bool,
    toasts_json: String,
}

#[derive(Template)]
#[template(path = "cameras.html")]
struct CamerasPage {
    title: &'static str,
    active: &'static str,
    version: &'static str,
    username: String,
    can_manage: bool,
    page_json: String,
    toasts_json: String,
}

#[derive(Template)]
#[template(path = "recordings.html")]
struct RecordingsPage {
    title: &'static str,
    active: &'static str,
    version: &'static str,
    username: String,
    page_json: String,
    toasts_json: String,
}

/// Serialise a page's data block (`<` escaped so it cannot close the script element).
fn page_json(value: serde_json::Value) -> String {
    value.to_string().replace('<', "\\u003c")
}

/// `GET /cameras`: the camera list with live status; add, enable/disable and delete for those
/// who may manage cameras.
#[handler]
pub async fn cameras(state: Data<&AppState>, req: &Request) -> Response {
    let principal = match page_guard(&state, req, Permission::CamerasView) {
        Ok(p) => p,
        Err(response) => return response,
    };
    let now = state.clock().now();
    let can_manage =
        rbac::authorize_any_property(&principal.subject, Permission::CamerasManage, now).is_ok();
    render(&CamerasPage {
        title: "Cameras",
        active: "cameras",
        version: pv_core::VERSION,
        username: principal.user.username.clone(),
        can_manage,
        page_json: page_json(serde_json::json!({
            "can_manage": can_manage,
            "csrf": crate::csrf::page_tokens(
                &state,
                &principal,
                &["/cameras", "/cameras/{id}", "/cameras/{id}/rtmp", "/cameras/{id}/schedule"],
            ),
        })),
        toasts_json: "[]".into(),
    })
}

/// `GET /recordings`: one timeline per camera for a day, and a player.
#[handler]
pub async fn recordings(state: Data<&AppState>, req: &Request) -> Response {
    let principal = match page_guard(&state, req, Permission::CamerasPlayback) {
        Ok(p) => p,
        Err(response) => return response,
    };
    let can_export = rbac::authorize_any_property(
        &principal.subject,
        Permission::CamerasExport,
        state.clock().now(),
    )
    .is_ok();
    render(&RecordingsPage {
        title: "Recordings",
        active: "recordings",
        version: pv_core::VERSION,
        username: principal.user.username.clone(),
        page_json: page_json(serde_json::json!({ "can_export": can_export })),
        toasts_json: "[]".into(),
    })
}

#[derive(Template)]
#[template(path = "live.html")]
struct LivePage {
    title: &'static str,
    active: &'static str,
    version: &'static str,
    username: String,
    page_json: String,
    toasts_json: String,
}

#[derive(Template)]
#[template(path = "camera_live.html")]
struct CameraLivePage {
    title: String,
    active: &'static str,
    version: &'static str,
    username: String,
    can_manage: bool,
    page_json: String,
    toasts_json: String,
}

/// `GET /live`: a grid of live players, one per enabled camera the caller may see.
#[handler]
pub async fn live(state: Data<&AppState>, req: &Request) -> Response {
    let principal = match page_guard(&state, req, Permission::CamerasLive) {
        Ok(p) => p,
        Err(response) => return response,
    };
    render(&LivePage {
        title: "Live",
        active: "live",
        version: pv_core::VERSION,
        username: principal.user.username.clone(),
        page_json: page_json(serde_json::json!({
            "csrf": crate::csrf::page_tokens(&state, &principal, &["/cameras/{id}/whep"]),
        })),
        toasts_json: "[]".into(),
    })
}

/// `GET /cameras/:id/live`: one camera live at full size, with a snapshot button, its motion
/// zones, recent motion and its RTMP push (started and stopped by those who manage it).
#[handler]
pub async fn camera_live(state: Data<&AppState>, req: &Request, Path(id): Path<i64>) -> Response {
    let principal = match page_guard(&state, req, Permission::CamerasLive) {
        Ok(p) => p,
        Err(response) => return response,
    };
    let cam = match crate::rest::cameras::load_for(&state, &principal, id, Permission::CamerasLive)
        .await
    {
        Ok(cam) => cam,
        Err(e) => return e.into_response(),
    };
    let now = state.clock().now();
    let resource = crate::rest::cameras::resource(&cam);
    let may = |p| rbac::authorize(&principal.subject, p, &resource, now).is_ok();
    let (can_manage, can_playback) =
        (may(Permission::CamerasManage), may(Permission::CamerasPlayback));
    render(&CameraLivePage {
        title: cam.name.clone(),
        active: "live",
        version: pv_core::VERSION,
        username: principal.user.username.clone(),
        can_manage,
        page_json: page_json(serde_json::json!({
            "camera_id": cam.id,
            "name": cam.name,
            "can_manage": can_manage,
            "can_playback": can_playback,
            "csrf": crate::csrf::page_tokens(
                &state,
                &principal,
                &["/cameras/{id}/whep", "/cameras/{id}/rtmp"],
            ),
        })),
        toasts_json: "[]".into(),
    })
}

#[derive(Template)]
#[template(path = "audit.html")]
struct AuditPage {
    title: &'static str,
    active: &'static str,
    version: &'static str,
    username: String,
    can_export: bool,
    page_json: String,
    toasts_json: String,
}

#[derive(Template)]
#[template(path = "ip_rules.html")]
struct IpRulesPage {
    title: &'static str,
    active: &'static str,
    version: &'static str,
    username: String,
    can_manage: bool,
    client_ip: String,
    page_json: String,
    toasts_json: String,
}

/// The signed-in caller holding `permission` globally (system-wide administration pages), or
/// the response to send instead.
#[allow(clippy::result_large_err)] // the error is the response itself, returned at once
fn global_page_guard(
    state: &AppState,
    req: &Request,
    permission: Permission,
) -> Result<Principal, Response> {
    let p = page_guard(state, req, permission)?;
    rbac::authorize(&p.subject, permission, &rbac::Resource::Global, state.clock().now())
        .map_err(|d| Problem::new(StatusCode::FORBIDDEN, d.message()).into_response())?;
    Ok(p)
}

/// `GET /audit`: the audit log with filters, search and the CSV export (administrators and
/// auditors: `audit.view` system-wide; the export needs `audit.export`).
#[handler]
pub async fn audit(state: Data<&AppState>, req: &Request) -> Response {
    let principal = match global_page_guard(&state, req, Permission::AuditView) {
        Ok(p) => p,
        Err(response) => return response,
    };
    let can_export = rbac::authorize(
        &principal.subject,
        Permission::AuditExport,
        &rbac::Resource::Global,
        state.clock().now(),
    )
    .is_ok();
    render(&AuditPage {
        title: "Audit log",
        active: "audit",
        version: pv_core::VERSION,
        username: principal.user.username.clone(),
        can_export,
        page_json: page_json(serde_json::json!({ "can_export": can_export })),
        toasts_json: "[]".into(),
    })
}

/// `GET /ip-rules`: Block / Allow — the IP rules in force; add, remove and "Exempt this IP"
/// for those with `security.manage` (the page carries their CSRF tokens).
#[handler]
pub async fn ip_rules(state: Data<&AppState>, req: &Request) -> Response {
    let principal = match global_page_guard(&state, req, Permission::SecurityView) {
        Ok(p) => p,
        Err(response) => return response,
    };
    let can_manage = rbac::authorize(
        &principal.subject,
        Permission::SecurityManage,
        &rbac::Resource::Global,
        state.clock().now(),
    )
    .is_ok();
    let csrf = if can_manage {
        let routes = ["/security/ip-rules", "/security/ip-rules/exempt-me"];
        crate::csrf::page_tokens(&state, &principal, &routes)
    } else {
        serde_json::json!({})
    };
    render(&IpRulesPage {
        title: "Block / Allow",
        active: "ip-rules",
        version: pv_core::VERSION,
        username: principal.user.username.clone(),
        can_manage,
        client_ip: principal.ip.map(|ip| ip.to_canonical().to_string()).unwrap_or_default(),
        page_json: page_json(serde_json::json!({ "can_manage": can_manage, "csrf": csrf })),
        toasts_json: "[]".into(),
    })
}

#[derive(Template)]
#[template(path = "services.html")]
struct ServicesPage {
    title: &'static str,
    active: &'static str,
    version: &'static str,
    username: String,
    page_json: String,
    toasts_json: String,
}

/// `GET /services`: the allow-listed system services and their state; a restart button for
/// those with `services.restart` (with the page's CSRF token).
#[handler]
pub async fn services(state: Data<&AppState>, req: &Request) -> Response {
    let principal = match global_page_guard(&state, req, Permission::SystemView) {
        Ok(p) => p,
        Err(response) => return response,
    };
    let can_restart = rbac::authorize(
        &principal.subject,
        Permission::ServicesRestart,
        &rbac::Resource::Global,
        state.clock().now(),
    )
    .is_ok();
    let csrf = if can_restart {
        let routes: Vec<String> = state
            .config()
            .services
            .allowed
            .iter()
            .map(|n| format!("/services/{n}/restart"))
            .collect();
        let routes: Vec<&str> = routes.iter().map(String::as_str).collect();
        crate::csrf::page_tokens(&state, &principal, &routes)
    } else {
        serde_json::json!({})
    };
    render(&ServicesPage {
        title: "Services",
        active: "services",
        version: pv_core::VERSION,
        username: principal.user.username.clone(),
        page_json: page_json(serde_json::json!({ "can_restart": can_restart, "csrf": csrf })),
        toasts_json: "[]".into(),
    })
}

#[derive(Template)]
#[template(path = "users.html")]
struct UsersPage {
    title: &'static str,
    active: &'static str,
    version: &'static str,
    username: String,
    can_manage: bool,
    page_json: String,
    toasts_json: String,
}

/// `GET /users`: accounts with status and roles; add and suspend (`users.manage`), make or
/// remove administrators (`roles.manage`), with the page's CSRF tokens.
#[handler]
pub async fn users(state: Data<&AppState>, req: &Request) -> Response {
    let principal = match global_page_guard(&state, req, Permission::UsersView) {
        Ok(p) => p,
        Err(response) => return response,
    };
    let now = state.clock().now();
    let may = |p| rbac::authorize(&principal.subject, p, &rbac::Resource::Global, now).is_ok();
    let (can_manage, can_grant) = (may(Permission::UsersManage), may(Permission::RolesManage));
    let routes = ["/users", "/users/{id}/status", "/users/{id}/roles"];
    let csrf = crate::csrf::page_tokens(&state, &principal, &routes);
    render(&UsersPage {
        title: "Users",
        active: "users",
        version: pv_core::VERSION,
        username: principal.user.username.clone(),
        can_manage,
        page_json: page_json(serde_json::json!({
            "can_manage": can_manage, "can_grant": can_grant, "csrf": csrf,
        })),
        toasts_json: "[]".into(),
    })
}

fn redirect(to: &str) -> Response {
    Response::builder().status(StatusCode::SEE_OTHER).header(header::LOCATION, to).finish()
}

/// The page guard: the signed-in, fully enrolled caller holding `permission` somewhere, or
/// the response to send instead (sign-in page, enrolment page, or 403).
#[allow(clippy::result_large_err)] // the error is the response itself, returned at once
fn page_guard(
    state: &AppState,
    req: &Request,
    permission: Permission,
) -> Result<Principal, Response> {
    let Some(p) = req.extensions().get::<Principal>() else { return Err(redirect("/login")) };
    if p.stage == Stage::Enrol {
        return Err(redirect("/enrol"));
    }
    rbac::authorize_any_property(&p.subject, permission, state.clock().now())
        .map_err(|d| Problem::new(StatusCode::FORBIDDEN, d.message()).into_response())?;
    Ok(p.clone())
}

/// `GET /login`: passkey and password sign-in.
#[handler]
pub async fn login(req: &Request) -> Response {
    if let Some(p) = req.extensions().get::<Principal>() {
        return redirect(if p.stage == Stage::Enrol { "/enrol" } else { "/" });
    }
    render(&LoginPage {
        title: "Sign in",
        active: "login",
        version: pv_core::VERSION,
        username: String::new(),
        toasts_json: "[]".into(),
    })
}

/// `GET /enrol`: enrol a passkey or TOTP (where setup-code and password-only sessions land).
#[handler]
pub async fn enrol(req: &Request) -> Response {
    let Some(p) = req.extensions().get::<Principal>() else { return redirect("/login") };
    render(&EnrolPage {
        title: "Secure your account",
        active: "enrol",
        version: pv_core::VERSION,
        username: p.user.username.clone(),
        needs_password: p.user.password_hash.is_none(),
        toasts_json: "[]".into(),
    })
}

/// `GET /`: the system overview (version, databases, data dir, uptime).
#[handler]
pub async fn overview(state: Data<&AppState>, req: &Request) -> Response {
    let principal = match page_guard(&state, req, Permission::SystemView) {
        Ok(p) => p,
        Err(response) => return response,
    };
    let info = system_info(&state).await;
    let ready = info.databases.iter().filter(|d| d.reachable).count();
    let toast = if ready == info.databases.len() {
        Toast { message: format!("All {ready} databases are ready."), level: "info" }
    } else {
        let down: Vec<&str> =
            info.databases.iter().filter(|d| !d.reachable).map(|d| d.name.as_str()).collect();
        Toast { message: format!("Database unreachable: {}.", down.join(", ")), level: "error" }
    };
    let page = OverviewPage {
        title: "Overview",
        active: "overview",
        version: pv_core::VERSION,
        username: principal.user.username.clone(),
        uptime: human_duration(info.uptime_seconds),
        memory: info
            .resident_memory_bytes
            .map(|b| format!("{:.1} MiB", b as f64 / 1048576.0))
            .unwrap_or_else(|| "unknown".into()),
        info,
        toasts_json: toasts_json(&[toast]),
    };
    render(&page)
}

fn render(page: &impl Template) -> Response {
    match page.render() {
        Ok(html) => Html(html).into_response(),
        Err(e) => Problem::from_kind(pv_core::ErrorKind::Internal, e).into_response(),
    }
}

/// Serialise toasts for the page's `application/json` data block. `<` is escaped so the JSON
/// can never close the script element.
fn toasts_json(toasts: &[Toast]) -> String {
    serde_json::to_string(toasts).unwrap_or_else(|_| "[]".into()).replace('<', "\\u003c")
}

/// `3d 4h`, `5m 12s`, …
pub fn human_duration(seconds: u64) -> String {
    let (d, h, m, s) = (seconds / 86_400, seconds / 3600 % 24, seconds / 60 % 60, seconds % 60);
    match (d, h, m) {
        (0, 0, 0) => format!("{s}s"),
        (0, 0, _) => format!("{m}m {s}s"),
        (0, _, _) => format!("{h}h {m}m"),
        _ => format!("{d}d {h}h"),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn durations_read_naturally() {
        assert_eq!(human_duration(5), "5s");
        assert_eq!(human_duration(312), "5m 12s");
        assert_eq!(human_duration(3 * 3600 + 120), "3h 2m");
        assert_eq!(human_duration(2 * 86_400 + 3600), "2d 1h");
    }

    #[test]
    fn toast_json_cannot_break_out_of_script() {
        let json = toasts_json(&[Toast { message: "</script><b>".into(), level: "error" }]);
        assert!(!json.contains("</script>"));
        assert!(json.contains("\\u003c/script>"));
    }
}
