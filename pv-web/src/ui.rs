//! The admin UI: server-rendered askama pages in the dark PentaVision theme, static assets
//! embedded in the binary, and the toast component (every message to the user, errors
//! included, appears bottom-right, green with black text, and fades after 10 seconds).

use askama::Template;
use poem::http::{StatusCode, header};
use poem::web::{Data, Html, Path};
use poem::{Endpoint, IntoResponse, Request, Response, handler};
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
        name: "oauth-callback.js",
        content_type: "text/javascript; charset=utf-8",
        body: include_bytes!("../static/oauth-callback.js"),
    },
    Asset {
        name: "zones.js",
        content_type: "text/javascript; charset=utf-8",
        body: include_bytes!("../static/zones.js"),
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
        name: "signin.js",
        content_type: "text/javascript; charset=utf-8",
        body: include_bytes!("../static/signin.js"),
    },
    Asset {
        name: "security.js",
        content_type: "text/javascript; charset=utf-8",
        body: include_bytes!("../static/security.js"),
    },
    Asset {
        name: "storage.js",
        content_type: "text/javascript; charset=utf-8",
        body: include_bytes!("../static/storage.js"),
    },
    Asset {
        name: "storage.css",
        content_type: "text/css; charset=utf-8",
        body: include_bytes!("../static/storage.css"),
    },
    Asset {
        name: "faces.js",
        content_type: "text/javascript; charset=utf-8",
        body: include_bytes!("../static/faces.js"),
    },
    Asset {
        name: "faces.css",
        content_type: "text/css; charset=utf-8",
        body: include_bytes!("../static/faces.css"),
    },
    Asset {
        name: "face-overlay.js",
        content_type: "text/javascript; charset=utf-8",
        body: include_bytes!("../static/face-overlay.js"),
    },
    Asset {
        name: "favicon.svg",
        content_type: "image/svg+xml",
        body: include_bytes!("../static/favicon.svg"),
    },
    // The tool pages (GraphiQL, Swagger UI): our start-up scripts and bar, and the vendored
    // third-party builds (static/vendor/README.md names their packages, versions and
    // licences), so both pages work with no internet.
    Asset {
        name: "tools.css",
        content_type: "text/css; charset=utf-8",
        body: include_bytes!("../static/tools.css"),
    },
    Asset {
        name: "graphiql-init.js",
        content_type: "text/javascript; charset=utf-8",
        body: include_bytes!("../static/graphiql-init.js"),
    },
    Asset {
        name: "api-docs.js",
        content_type: "text/javascript; charset=utf-8",
        body: include_bytes!("../static/api-docs.js"),
    },
    Asset {
        name: "react.production.min.js",
        content_type: "text/javascript; charset=utf-8",
        body: include_bytes!("../static/vendor/react.production.min.js"),
    },
    Asset {
        name: "react-dom.production.min.js",
        content_type: "text/javascript; charset=utf-8",
        body: include_bytes!("../static/vendor/react-dom.production.min.js"),
    },
    Asset {
        name: "graphiql.min.js",
        content_type: "text/javascript; charset=utf-8",
        body: include_bytes!("../static/vendor/graphiql.min.js"),
    },
    Asset {
        name: "graphiql.min.css",
        content_type: "text/css; charset=utf-8",
        body: include_bytes!("../static/vendor/graphiql.min.css"),
    },
    Asset {
        name: "swagger-ui-bundle.js",
        content_type: "text/javascript; charset=utf-8",
        body: include_bytes!("../static/vendor/swagger-ui-bundle.js"),
    },
    Asset {
        name: "swagger-ui.css",
        content_type: "text/css; charset=utf-8",
        body: include_bytes!("../static/vendor/swagger-ui.css"),
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

mod dashboard;
pub mod oauth;

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
    cameras: Vec<dashboard::CameraRow>,
    /// "3 of 4 cameras recording", "Recording is turned off", …
    recording_summary: String,
    /// Whether every enabled camera records.
    recording_ok: bool,
    disk: dashboard::DiskOutlook,
    /// Words for the disk card: footage, free, used, rate, days.
    footage: String,
    free: String,
    used: String,
    rate: String,
    days_fit: String,
    /// A warning when the disk holds fewer days than retention would keep.
    disk_warning: String,
    /// The disk guard's reserve (`recording.min_free_bytes`), in words.
    reserve: String,
    toasts_json: String,
}

#[derive(Template)]
#[template(path = "login.html")]
struct LoginPage {
    title: &'static str,
    active: &'static str,
    version: &'static str,
    username: String,
    /// The first administrator has not enrolled yet: explain the setup code.
    setup_pending: bool,
    /// Arrived here by signing out.
    signed_out: bool,
    /// Why passkeys cannot work at this address (an IP address, another host name).
    passkey_note: Option<String>,
    page_json: String,
    toasts_json: String,
}

#[derive(Template)]
#[template(path = "enrol.html")]
struct EnrolPage {
    title: &'static str,
    active: &'static str,
    version: &'static str,
    /// Empty: the main navigation stays hidden until enrolment is done.
    username: String,
    /// The account being enrolled.
    account: String,
    needs_password: bool,
    passkey_note: Option<String>,
    page_json: String,
    toasts_json: String,
}

#[derive(Template)]
#[template(path = "security.html")]
struct SecurityPage {
    title: &'static str,
    active: &'static str,
    version: &'static str,
    username: String,
    passkey_note: Option<String>,
    page_json: String,
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

/// Whether the caller sees face boxes over video: face recognition works and they hold
/// `faces.view` (pages then open the face event feed; otherwise they never ask).
async fn faces_overlay(state: &AppState, principal: &Principal) -> bool {
    rbac::authorize(
        &principal.subject,
        Permission::FacesView,
        &rbac::Resource::Global,
        state.clock().now(),
    )
    .is_ok()
        && state.faces().status().await.is_ok_and(|s| s.enabled)
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
                &[
                    "/cameras",
                    "/cameras/{id}",
                    "/cameras/{id}/rtmp",
                    "/cameras/{id}/schedule",
                    "/cameras/{id}/motion-zones",
                ],
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
        page_json: page_json(serde_json::json!({
            "can_export": can_export,
            "faces": faces_overlay(&state, &principal).await,
        })),
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
            "faces": faces_overlay(&state, &principal).await,
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
            "faces": faces_overlay(&state, &principal).await,
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

#[derive(Template)]
#[template(path = "storage.html")]
struct StoragePage {
    title: &'static str,
    active: &'static str,
    version: &'static str,
    username: String,
    can_manage: bool,
    page_json: String,
    toasts_json: String,
}

/// `GET /storage`: the Storage Modules Manager — storage module instances, their health, uploads
/// and logs (`storage.view`); add, test, edit, clone, drain and delete for those with
/// `storage.manage` (the page carries their CSRF tokens). The page's script talks to
/// `/api/v1/storage/`.
#[handler]
pub async fn storage(state: Data<&AppState>, req: &Request) -> Response {
    let principal = match global_page_guard(&state, req, Permission::StorageView) {
        Ok(p) => p,
        Err(response) => return response,
    };
    let can_manage = rbac::authorize(
        &principal.subject,
        Permission::StorageManage,
        &rbac::Resource::Global,
        state.clock().now(),
    )
    .is_ok();
    let csrf = if can_manage {
        let routes = [
            "/storage/modules",
            "/storage/modules/test",
            "/storage/modules/{id}",
            "/storage/modules/{id}/clone",
            "/storage/modules/{id}/drain",
            "/storage/oauth/start",
        ];
        crate::csrf::page_tokens(&state, &principal, &routes)
    } else {
        serde_json::json!({})
    };
    render(&StoragePage {
        title: "Storage",
        active: "storage",
        version: pv_core::VERSION,
        username: principal.user.username.clone(),
        can_manage,
        page_json: page_json(serde_json::json!({ "can_manage": can_manage, "csrf": csrf })),
        toasts_json: "[]".into(),
    })
}

#[derive(Template)]
#[template(path = "faces.html")]
struct FacesPage {
    title: &'static str,
    active: &'static str,
    version: &'static str,
    username: String,
    can_enroll: bool,
    page_json: String,
    toasts_json: String,
}

/// `GET /faces`: face recognition — its status (and why it is off), the enrolled people with
/// their face images, recent unknown faces to name, and a photo to try (`faces.view`); add
/// people and images, opt-out and naming for those with `faces.enroll`, deleting for those with
/// `faces.delete` (the page carries their CSRF tokens). The page's script talks to
/// `/api/v1/faces/`.
#[handler]
pub async fn faces(state: Data<&AppState>, req: &Request) -> Response {
    let principal = match global_page_guard(&state, req, Permission::FacesView) {
        Ok(p) => p,
        Err(response) => return response,
    };
    let now = state.clock().now();
    let may = |key: &str| {
        Permission::from_key(key).is_some_and(|p| {
            rbac::authorize(&principal.subject, p, &rbac::Resource::Global, now).is_ok()
        })
    };
    let (can_enroll, can_delete) = (may("faces.enroll"), may("faces.delete"));
    let routes = [
        "/faces/identities",
        "/faces/identities/{id}",
        "/faces/identities/{id}/images",
        "/faces/embeddings/{id}",
        "/faces/recognize",
        "/faces/events/{id}/label",
    ];
    let csrf = crate::csrf::page_tokens(&state, &principal, &routes);
    render(&FacesPage {
        title: "Faces",
        active: "faces",
        version: pv_core::VERSION,
        username: principal.user.username.clone(),
        can_enroll,
        page_json: page_json(serde_json::json!({
            "can_enroll": can_enroll,
            "can_delete": can_delete,
            "can_list_users": may("users.view"),
            "csrf": csrf,
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
    let Some(p) = req.extensions().get::<Principal>() else {
        return Err(redirect(&with_next("/login", req)));
    };
    if p.stage == Stage::Enrol {
        return Err(redirect(&with_next("/enrol", req)));
    }
    rbac::authorize_any_property(&p.subject, permission, state.clock().now())
        .map_err(|d| Problem::new(StatusCode::FORBIDDEN, d.message()).into_response())?;
    Ok(p.clone())
}

/// `to` with `?next=` naming the page `req` asked for (so sign-in can return there).
fn with_next(to: &str, req: &Request) -> String {
    let asked = req.uri().path_and_query().map_or("/", |pq| pq.as_str());
    if asked == "/" {
        return to.to_string();
    }
    format!("{to}?next={}", percent_encode(asked))
}

/// Percent-encode everything but RFC 3986 unreserved characters and `/`.
fn percent_encode(text: &str) -> String {
    let mut out = String::with_capacity(text.len());
    for b in text.bytes() {
        if b.is_ascii_alphanumeric() || matches!(b, b'-' | b'.' | b'_' | b'~' | b'/') {
            out.push(char::from(b));
        } else {
            out.push_str(&format!("%{b:02X}"));
        }
    }
    out
}

/// `next` when it is a page of this site: a relative path with exactly one leading `/` (never
/// `//host` or `/\host`, which browsers treat as another origin) and no control characters.
pub fn safe_next(next: &str) -> Option<&str> {
    let same_origin = next.starts_with('/')
        && !next.starts_with("//")
        && !next.starts_with("/\\")
        && next.len() <= 2048
        && !next.chars().any(char::is_control);
    same_origin.then_some(next)
}

/// The query of the sign-in and enrolment pages.
#[derive(Debug, Default, serde::Deserialize)]
struct AuthQuery {
    next: Option<String>,
    signed_out: Option<String>,
}

fn auth_query(req: &Request) -> AuthQuery {
    req.params::<AuthQuery>().unwrap_or_default()
}

/// The safe `next` of `query`, or `/`.
fn next_or_home(query: &AuthQuery) -> String {
    query.next.as_deref().and_then(safe_next).unwrap_or("/").to_string()
}

/// The host a request was sent to (from `Host`, else the URI), lower case, without port or
/// IPv6 brackets, and its port.
fn request_host(req: &Request) -> Option<(String, Option<u16>)> {
    let authority = req
        .header(header::HOST)
        .map(str::to_string)
        .or_else(|| req.uri().authority().map(|a| a.as_str().to_string()))?;
    split_authority(&authority)
}

fn split_authority(authority: &str) -> Option<(String, Option<u16>)> {
    let authority = authority.trim();
    let (host, port) = if let Some(rest) = authority.strip_prefix('[') {
        let (host, after) = rest.split_once(']')?;
        (host, after.strip_prefix(':'))
    } else {
        match authority.rsplit_once(':') {
            Some((h, p)) if !h.contains(':') => (h, Some(p)),
            _ => (authority, None),
        }
    };
    let port = match port {
        Some(p) => Some(p.parse().ok()?),
        None => None,
    };
    (!host.is_empty()).then(|| (host.to_ascii_lowercase(), port))
}

/// The host name passkeys are bound to (the public origin's host).
fn passkey_host(state: &AppState) -> Option<(String, String)> {
    let origin = state.public_origin();
    let (scheme, rest) = origin.split_once("://")?;
    let (host, _) = split_authority(rest.split('/').next().unwrap_or_default())?;
    Some((scheme.to_string(), host))
}

/// Why passkeys cannot work on the address `req` was sent to, for the person at the browser
/// (None: they can).
fn passkey_note(state: &AppState, req: &Request) -> Option<String> {
    let (host, _) = request_host(req)?;
    let (_, rp_host) = passkey_host(state)?;
    let origin = state.public_origin();
    if rp_host.parse::<std::net::IpAddr>().is_ok() {
        return Some(format!(
            "Passkeys need a host name, and this server is set up for the address {origin}. \
             Sign in with your password and authenticator app; an administrator can give the \
             server's public address a name in its configuration."
        ));
    }
    if host == rp_host {
        return None;
    }
    if host.parse::<std::net::IpAddr>().is_ok() {
        Some(format!(
            "Passkeys need a host name: this page was opened at the address {host}, and \
             browsers offer passkeys only on a named host ({origin} for this server). Sign in \
             with your password and authenticator app here, or open PentaVision by its name."
        ))
    } else {
        Some(format!(
            "Passkeys for this server work at {origin}. Open PentaVision there to use one; \
             your password and authenticator app work here too."
        ))
    }
}

/// Where a browser that asked for a page on a loopback IP address (`127.0.0.1`, `[::1]`) is
/// sent instead: the same path on `localhost` — WebAuthn refuses IP addresses, and passkeys of
/// a server with the default public origin are bound to `localhost`. API requests, assets and
/// non-browser clients (no `text/html` in `Accept`) are never redirected.
fn localhost_redirect(state: &AppState, req: &Request) -> Option<String> {
    use poem::http::Method;
    if !matches!(*req.method(), Method::GET | Method::HEAD) {
        return None;
    }
    let path = req.uri().path();
    if path.starts_with("/api/")
        || path.starts_with("/static/")
        || matches!(path, "/healthz" | "/readyz" | "/metrics")
    {
        return None;
    }
    if !req.header(header::ACCEPT).is_some_and(|a| a.contains("text/html")) {
        return None;
    }
    let (scheme, rp_host) = passkey_host(state)?;
    if rp_host != "localhost" {
        return None;
    }
    let (host, port) = request_host(req)?;
    if !host.parse::<std::net::IpAddr>().is_ok_and(|ip| ip.is_loopback()) {
        return None;
    }
    let port = port.map(|p| format!(":{p}")).unwrap_or_default();
    let asked = req.uri().path_and_query().map_or("/", |pq| pq.as_str());
    Some(format!("{scheme}://localhost{port}{asked}"))
}

/// Middleware: send browsers that opened a page on a loopback IP address to `localhost`
/// (307, same path and query; see [`localhost_redirect`]).
pub async fn loopback_to_localhost<E: Endpoint>(next: E, req: Request) -> poem::Result<Response> {
    if let Some(state) = req.data::<AppState>()
        && let Some(to) = localhost_redirect(state, &req)
    {
        return Ok(Response::builder()
            .status(StatusCode::TEMPORARY_REDIRECT)
            .header(header::LOCATION, to)
            .finish());
    }
    Ok(next.get_response(req).await)
}

/// `GET /login`: one form for what the account needs (passkey, or password and — when the
/// server asks for it — the authenticator code), then back to `?next=` (same-origin only).
#[handler]
pub async fn login(state: Data<&AppState>, req: &Request) -> Response {
    let query = auth_query(req);
    let next = next_or_home(&query);
    if let Some(p) = req.extensions().get::<Principal>() {
        if p.stage == Stage::Enrol {
            return redirect(&format!("/enrol?next={}", percent_encode(&next)));
        }
        return redirect(&next);
    }
    let setup_pending =
        pv_security::account::setup_pending(&state.dbs().users).await.unwrap_or(false);
    render(&LoginPage {
        title: "Sign in",
        active: "login",
        version: pv_core::VERSION,
        username: String::new(),
        setup_pending,
        signed_out: query.signed_out.is_some(),
        passkey_note: passkey_note(&state, req),
        page_json: page_json(serde_json::json!({ "next": next })),
        toasts_json: "[]".into(),
    })
}

/// `GET /enrol`: the enrolment wizard of a new account — a password (when it has none), a
/// passkey or an authenticator app, then recovery codes saved — before anything else; the main
/// navigation stays hidden until it is done.
#[handler]
pub async fn enrol(state: Data<&AppState>, req: &Request) -> Response {
    let query = auth_query(req);
    let next = next_or_home(&query);
    let Some(p) = req.extensions().get::<Principal>() else {
        return redirect(&with_next("/login", req));
    };
    if p.stage != Stage::Enrol {
        return redirect(&next);
    }
    render(&EnrolPage {
        title: "Secure your account",
        active: "enrol",
        version: pv_core::VERSION,
        username: String::new(),
        account: p.user.username.clone(),
        needs_password: p.user.password_hash.is_none(),
        passkey_note: passkey_note(&state, req),
        page_json: page_json(serde_json::json!({
            "next": next,
            "account": p.user.username,
            "needs_password": p.user.password_hash.is_none(),
            "min_password_chars": pv_security::account::MIN_PASSWORD_CHARS,
        })),
        toasts_json: "[]".into(),
    })
}

/// `GET /account/security`: the signed-in user's passkeys, sessions, authenticator app,
/// recovery codes and API tokens.
#[handler]
pub async fn security(state: Data<&AppState>, req: &Request) -> Response {
    let Some(p) = req.extensions().get::<Principal>() else {
        return redirect(&with_next("/login", req));
    };
    if p.stage == Stage::Enrol {
        return redirect(&with_next("/enrol", req));
    }
    let note = passkey_note(&state, req);
    render(&SecurityPage {
        title: "Security",
        active: "security",
        version: pv_core::VERSION,
        username: p.user.username.clone(),
        page_json: page_json(serde_json::json!({
            "username": p.user.username,
            "passkeys_possible": note.is_none(),
            "min_password_chars": pv_security::account::MIN_PASSWORD_CHARS,
        })),
        passkey_note: note,
        toasts_json: "[]".into(),
    })
}

/// `GET /`: the overview: cameras and their recorder state, the disk outlook (footage, free
/// space, days of footage that fit at the current rate), version, uptime and databases.
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
    let rows = dashboard::camera_rows(&state, &principal).await;
    let disk = dashboard::disk_outlook(&state).await;
    let enabled = rows.iter().filter(|c| c.badge != "off").count();
    let recording = rows.iter().filter(|c| c.state.starts_with("Recording")).count();
    let recording_summary = if !state.config().recording.enabled {
        "Recording is turned off for this server".to_string()
    } else if rows.is_empty() {
        "No cameras yet".to_string()
    } else {
        format!("{recording} of {} camera{} recording", rows.len(), plural(rows.len()))
    };
    let (rate, days_fit) = match (disk.bytes_per_day, disk.days_fit) {
        (Some(rate), Some(days)) => {
            (format!("{} a day", dashboard::human_bytes(rate)), dashboard::human_days(days))
        }
        (Some(rate), None) => {
            (format!("{} a day", dashboard::human_bytes(rate)), "Not known".into())
        }
        _ => ("no footage written in the last hour".into(), "Not known yet".into()),
    };
    let disk_warning = match disk.days_fit {
        Some(days) if disk.retention_days > 0 && days < f64::from(disk.retention_days) => format!(
            "Footage is meant to be kept {} days, but the disk holds {}: the oldest footage will \
             be deleted sooner to keep {} free.",
            disk.retention_days,
            dashboard::human_days(days),
            dashboard::human_bytes(disk.reserve_bytes)
        ),
        _ => String::new(),
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
        recording_ok: recording == enabled,
        recording_summary,
        cameras: rows,
        footage: dashboard::human_bytes(disk.footage_bytes),
        free: disk.free_bytes.map(dashboard::human_bytes).unwrap_or_else(|| "unknown".into()),
        used: disk.used_percent().map(|p| format!("{p}% of the disk used")).unwrap_or_default(),
        rate,
        days_fit,
        disk_warning,
        reserve: dashboard::human_bytes(disk.reserve_bytes),
        disk,
        toasts_json: toasts_json(&[toast]),
    };
    render(&page)
}

#[derive(Template)]
#[template(path = "error.html")]
struct ErrorPage {
    title: &'static str,
    active: &'static str,
    version: &'static str,
    username: String,
    status: u16,
    heading: &'static str,
    message: String,
    path: String,
    toasts_json: String,
}

/// Browsers get pages, API clients get problem JSON: a `GET` or `HEAD` outside `/api/` whose
/// `Accept` names `text/html` and whose answer is a 404 or 403 problem document gets an HTML
/// page with the navigation instead (same status). Everything else passes unchanged.
pub async fn html_errors<E: Endpoint>(next: E, req: Request) -> poem::Result<Response> {
    use poem::http::Method;
    let path = req.uri().path().to_string();
    let wants_html = matches!(*req.method(), Method::GET | Method::HEAD)
        && !path.starts_with("/api/")
        && req.header(header::ACCEPT).is_some_and(|a| a.contains("text/html"));
    if !wants_html {
        return Ok(next.get_response(req).await);
    }
    let username = req
        .extensions()
        .get::<Principal>()
        .filter(|p| p.stage != Stage::Enrol)
        .map(|p| p.user.username.clone())
        .unwrap_or_default();
    let resp = next.get_response(req).await;
    let status = resp.status();
    let is_problem = resp
        .headers()
        .get(header::CONTENT_TYPE)
        .and_then(|v| v.to_str().ok())
        .is_some_and(|ct| ct.starts_with(crate::problem::PROBLEM_JSON));
    if !is_problem || !matches!(status, StatusCode::NOT_FOUND | StatusCode::FORBIDDEN) {
        return Ok(resp);
    }
    let (heading, message) = if status == StatusCode::NOT_FOUND {
        (
            "Page not found",
            "There is no page at this address. It may have moved, or the link may be mistyped."
                .to_string(),
        )
    } else {
        let body = resp.into_body().into_bytes().await.unwrap_or_default();
        let detail = serde_json::from_slice::<Problem>(&body).map(|p| p.detail).unwrap_or_default();
        let mut message = "Your account may not open this page.".to_string();
        if !detail.is_empty() {
            message = format!("{message} {detail}");
        }
        ("Not allowed", message)
    };
    let page = ErrorPage {
        title: heading,
        active: "",
        version: pv_core::VERSION,
        username,
        status: status.as_u16(),
        heading,
        message,
        path: path.chars().take(200).collect(),
        toasts_json: "[]".into(),
    };
    let mut out = render(&page);
    out.set_status(status);
    Ok(out)
}

/// `GET /api/docs`: Swagger UI over `/api/v1/openapi.json`, from the vendored build (no
/// internet needed).
#[handler]
pub async fn api_docs() -> Html<&'static str> {
    Html(include_str!("../static/api-docs.html"))
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

/// `""` for one, `"s"` otherwise.
fn plural(n: usize) -> &'static str {
    if n == 1 { "" } else { "s" }
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
    fn next_is_honoured_only_for_paths_of_this_site() {
        assert_eq!(safe_next("/cameras"), Some("/cameras"));
        assert_eq!(safe_next("/recordings?day=2026-12-05"), Some("/recordings?day=2026-12-05"));
        for bad in
            ["//evil.example", "/\\evil.example", "https://evil.example/", "evil", "", "/\t/x"]
        {
            assert_eq!(safe_next(bad), None, "{bad:?}");
        }
    }

    #[test]
    fn authorities_split_into_host_and_port() {
        assert_eq!(split_authority("127.0.0.1:8080"), Some(("127.0.0.1".into(), Some(8080))));
        assert_eq!(split_authority("[::1]:9000"), Some(("::1".into(), Some(9000))));
        assert_eq!(split_authority("LocalHost"), Some(("localhost".into(), None)));
        assert_eq!(split_authority("host:x"), None);
        assert_eq!(percent_encode("/a b?c=d&e"), "/a%20b%3Fc%3Dd%26e");
    }

    #[test]
    fn toast_json_cannot_break_out_of_script() {
        let json = toasts_json(&[Toast { message: "</script><b>".into(), level: "error" }]);
        assert!(!json.contains("</script>"));
        assert!(json.contains("\\u003c/script>"));
    }
}
