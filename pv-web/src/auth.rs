//! Who is signed in, and the guards every REST operation, GraphQL field and UI page goes
//! through.
//!
//! [`identify`] (middleware, after the IP rules) turns the `pv_session` cookie or an
//! `Authorization: Bearer pvt_…` API token into a [`Principal`] in the request's extensions:
//! the user (re-read on every request, so a suspension applies at once), the session stage and
//! the RBAC [`Subject`]. Nothing else reads credentials.
//!
//! REST operations declare what they need in their signature:
//! - [`Signed`]: any signed-in session or token (even an `enrol`-stage session): sign-out,
//!   "who am I", enrolling a passkey or TOTP;
//! - [`Guarded<P>`](Guarded): a full session or token whose subject holds permission `P`
//!   globally; operations on one property's resources call [`Principal::authorize`] with it. Both are poem-openapi security schemes, so the OpenAPI
//!   document lists the session cookie and bearer token on every guarded operation.

use std::marker::PhantomData;
use std::net::IpAddr;

use poem::http::StatusCode;
use poem::{Endpoint, Request, Response};
use poem_openapi::auth::{ApiKey, Bearer};
use poem_openapi::{ApiExtractor, ApiExtractorType, ExtractParamOptions, SecurityScheme};
use pv_core::db::users::user;
use pv_security::rbac::{self, Permission, Resource, Subject};
use pv_security::session::{self, ClientInfo, Stage};

use crate::state::AppState;

/// The session cookie's name.
pub const SESSION_COOKIE: &str = "pv_session";

/// An authenticated caller.
#[derive(Debug, Clone)]
pub struct Principal {
    /// The user (as of this request).
    pub user: user::Model,
    /// The browser session, when signed in by cookie.
    pub session_id: Option<i64>,
    /// The API token, when signed in by bearer token.
    pub token_id: Option<i64>,
    /// What the session may do.
    pub stage: Stage,
    /// Roles, grants and token scope for [`rbac::authorize`].
    pub subject: Subject,
    /// Client address as the security layer sees it.
    pub ip: Option<IpAddr>,
    /// `User-Agent`.
    pub user_agent: Option<String>,
}

impl Principal {
    /// [`rbac::authorize`] for this caller at `state`'s clock time, as a problem response.
    pub fn authorize(
        &self,
        state: &AppState,
        permission: Permission,
        resource: &Resource,
    ) -> poem::Result<()> {
        rbac::authorize(&self.subject, permission, resource, state.clock().now()).map_err(denied)
    }

    /// Append a successful action by this caller to the audit log (a failure to write it is
    /// logged; the action already happened).
    pub async fn audit(
        &self,
        state: &AppState,
        action: &str,
        target_kind: &str,
        target_id: &str,
        details: serde_json::Value,
    ) {
        let mut event =
            pv_security::audit::Event::new(&self.user.username, action, target_kind, target_id)
                .details(details);
        event.actor_user_id = Some(self.user.id);
        event.ip = self.ip.map(|ip| ip.to_string());
        event.user_agent = self.user_agent.clone();
        if let Err(e) = state.audit().append(event, state.clock().now()).await {
            tracing::error!(error = %e, action, "cannot write audit event");
        }
    }

    /// Where this caller came from (for sessions and audit events).
    pub fn client(&self) -> ClientInfo {
        ClientInfo { ip: self.ip.map(|ip| ip.to_string()), user_agent: self.user_agent.clone() }
    }
}

/// A 403 problem for a refused permission (its message names the permission, never data).
pub fn denied(d: rbac::Denied) -> poem::Error {
    poem::Error::from_string(d.message().to_string(), StatusCode::FORBIDDEN)
}

fn unauthenticated() -> poem::Error {
    poem::Error::from_string(
        "sign in first (with a session cookie or an API token in the Authorization header)",
        StatusCode::UNAUTHORIZED,
    )
}

/// The value of cookie `name` in `req`.
pub fn cookie(req: &Request, name: &str) -> Option<String> {
    req.headers().get_all(poem::http::header::COOKIE).iter().find_map(|value| {
        value.to_str().ok()?.split(';').find_map(|pair| {
            let (k, v) = pair.trim().split_once('=')?;
            (k == name).then(|| v.trim().to_string())
        })
    })
}

/// The `Set-Cookie` value that stores a session token: `HttpOnly`, `SameSite=Strict`, `Path=/`,
/// `Secure` when the public origin is https.
pub fn session_cookie(state: &AppState, token: &str) -> String {
    let max_age = i64::from(state.config().security.session_absolute_hours) * 3600;
    let secure = if state.public_origin().starts_with("https://") { "; Secure" } else { "" };
    format!(
        "{SESSION_COOKIE}={token}; Path=/; HttpOnly; SameSite=Strict; Max-Age={max_age}{secure}"
    )
}

/// The `Set-Cookie` value that removes the session cookie.
pub fn clear_session_cookie(state: &AppState) -> String {
    let secure = if state.public_origin().starts_with("https://") { "; Secure" } else { "" };
    format!("{SESSION_COOKIE}=; Path=/; HttpOnly; SameSite=Strict; Max-Age=0{secure}")
}

/// Resolve the caller of `req` (None: anonymous, or a dead session/token, or an inactive
/// account).
pub async fn resolve(state: &AppState, req: &Request) -> poem::Result<Option<Principal>> {
    let db = &state.dbs().users;
    let now = state.clock().now();
    let ip = state.client_ip(req);
    let user_agent =
        req.header(poem::http::header::USER_AGENT).map(|ua| ua.chars().take(255).collect());
    let bearer = req
        .header(poem::http::header::AUTHORIZATION)
        .and_then(|h| h.strip_prefix("Bearer ").or_else(|| h.strip_prefix("bearer ")))
        .map(str::trim);
    let (user_id, session_id, token_id, stage, scope) = if let Some(secret) = bearer {
        let Some(row) = pv_security::token::validate(db, secret, now).await.map_err(internal)?
        else {
            return Ok(None);
        };
        let scope = Subject::token_scope_from_json(&row.scopes);
        (row.user_id, None, Some(row.id), Stage::Full, Some(scope))
    } else if let Some(token) = cookie(req, SESSION_COOKIE) {
        let Some(row) =
            session::validate(db, &token, state.session_policy(), now).await.map_err(internal)?
        else {
            return Ok(None);
        };
        (row.user_id, Some(row.id), None, Stage::parse(&row.stage), None)
    } else {
        return Ok(None);
    };
    let Ok(user) = pv_security::account::get(db, user_id).await else { return Ok(None) };
    if user.account_status != "active" {
        return Ok(None);
    }
    let mut subject = rbac::load_subject(db, user_id).await.map_err(internal)?;
    if let Some(scope) = scope.filter(|s| !s.is_empty()) {
        subject = subject.with_token_scope(scope);
    }
    Ok(Some(Principal { user, session_id, token_id, stage, subject, ip, user_agent }))
}

fn internal(e: impl std::fmt::Display) -> poem::Error {
    tracing::error!(error = %e, "cannot resolve the signed-in user");
    poem::Error::from_string("the users database is unavailable", StatusCode::SERVICE_UNAVAILABLE)
}

/// Paths that never look at the caller: resolving a session there would only cost queries
/// (a browser sends its cookie with every asset request).
fn is_public_path(path: &str) -> bool {
    path.starts_with("/static/") || matches!(path, "/healthz" | "/readyz" | "/metrics")
}

/// Middleware: put the caller's [`Principal`] (if any) into the request.
pub async fn identify<E: Endpoint>(next: E, mut req: Request) -> poem::Result<Response> {
    if !is_public_path(req.uri().path())
        && let Some(state) = req.data::<AppState>().cloned()
        && let Some(principal) = resolve(&state, &req).await?
    {
        req.extensions_mut().insert(principal);
    }
    Ok(next.get_response(req).await)
}

async fn from_cookie(req: &Request, _key: ApiKey) -> Option<Principal> {
    req.extensions().get::<Principal>().filter(|p| p.session_id.is_some()).cloned()
}

async fn from_bearer(req: &Request, _bearer: Bearer) -> Option<Principal> {
    req.extensions().get::<Principal>().filter(|p| p.token_id.is_some()).cloned()
}

/// A browser session (the `pv_session` cookie, `HttpOnly`, `SameSite=Strict`).
#[derive(SecurityScheme)]
#[oai(ty = "api_key", key_name = "pv_session", key_in = "cookie", checker = "from_cookie")]
pub struct SessionCookie(Principal);

/// An API token: `Authorization: Bearer pvt_…` (create one with `pentavision token create`
/// or in the UI).
#[derive(SecurityScheme)]
#[oai(ty = "bearer", checker = "from_bearer")]
pub struct ApiToken(Principal);

/// Any signed-in caller, including an `enrol`-stage session.
#[derive(SecurityScheme)]
pub enum Signed {
    /// Signed in by session cookie.
    Cookie(SessionCookie),
    /// Signed in by API token.
    Token(ApiToken),
}

impl Signed {
    /// The caller.
    pub fn principal(&self) -> &Principal {
        match self {
            Signed::Cookie(SessionCookie(p)) | Signed::Token(ApiToken(p)) => p,
        }
    }
}

/// A permission named in an operation's signature (`Guarded<perm::CamerasView>`).
pub trait RequiredPermission: Send + Sync + 'static {
    /// The permission.
    const PERMISSION: Permission;
}

/// A guard type: a fully signed-in caller (never an `enrol`-stage session) for whom `$check`
/// (`fn(&Subject, Permission, now) -> Result<(), Denied>`) allows `P`. Both guards are
/// poem-openapi security schemes listing the session cookie and the bearer token.
macro_rules! permission_guard {
    ($(#[$doc:meta])* $name:ident, $check:expr) => {
        $(#[$doc])*
        pub struct $name<P: RequiredPermission> {
            principal: Principal,
            _p: PhantomData<P>,
        }

        impl<P: RequiredPermission> std::ops::Deref for $name<P> {
            type Target = Principal;
            fn deref(&self) -> &Principal {
                &self.principal
            }
        }

        impl<'a, P: RequiredPermission> ApiExtractor<'a> for $name<P> {
            const TYPES: &'static [ApiExtractorType] = &[ApiExtractorType::SecurityScheme];
            type ParamType = ();
            type ParamRawType = ();

            fn register(registry: &mut poem_openapi::registry::Registry) {
                <Signed as ApiExtractor>::register(registry);
            }

            fn security_schemes() -> Vec<&'static str> {
                <Signed as ApiExtractor>::security_schemes()
            }

            async fn from_request(
                req: &'a Request,
                _body: &mut poem::RequestBody,
                _opts: ExtractParamOptions<()>,
            ) -> poem::Result<Self> {
                let principal =
                    req.extensions().get::<Principal>().cloned().ok_or_else(unauthenticated)?;
                check_stage(&principal)?;
                let state = req.data::<AppState>().ok_or_else(unauthenticated)?;
                let check: fn(&Subject, Permission, chrono::DateTime<chrono::Utc>) -> Result<(), rbac::Denied> = $check;
                check(&principal.subject, P::PERMISSION, state.clock().now()).map_err(denied)?;
                Ok(Self { principal, _p: PhantomData })
            }
        }
    };
}

permission_guard!(
    /// A fully signed-in caller holding `P` globally (system-wide operations). Operations on one
    /// property's resources check [`Principal::authorize`] with that resource instead.
    Guarded,
    |subject, permission, now| rbac::authorize(subject, permission, &Resource::Global, now)
);

permission_guard!(
    /// A fully signed-in caller holding `P` globally or on at least one property whose access
    /// window is open now: the guard of operations on cameras and other per-property resources.
    /// The handler then checks the resource itself with [`Principal::authorize`] (one camera) or
    /// filters with [`rbac::camera_filter`] (lists).
    Scoped,
    rbac::authorize_any_property
);

/// Refuse `enrol`-stage sessions (they may only enrol a second factor).
pub fn check_stage(principal: &Principal) -> poem::Result<()> {
    if principal.stage == Stage::Enrol {
        return Err(poem::Error::from_string(
            "enrol a passkey or an authenticator app (TOTP) before using PentaVision",
            StatusCode::FORBIDDEN,
        ));
    }
    Ok(())
}

/// Permission markers for [`Guarded`], one per [`Permission`] used by an operation.
pub mod perm {
    use super::{Permission, RequiredPermission};

    macro_rules! markers {
        ($($name:ident),+ $(,)?) => {$(
            #[doc = concat!("Requires `", stringify!($name), "`.")]
            #[derive(Debug)]
            pub struct $name;
            impl RequiredPermission for $name {
                const PERMISSION: Permission = Permission::$name;
            }
        )+};
    }

    markers!(
        SystemView,
        SystemConfigure,
        UsersView,
        UsersManage,
        RolesManage,
        AuditView,
        AuditExport,
        SecurityView,
        SecurityManage,
        ServicesRestart,
        PropertiesView,
        PropertiesManage,
        StorageView,
        StorageManage,
        FacesView,
        FacesEnroll,
        FacesDelete,
        CamerasView,
        CamerasLive,
        CamerasPlayback,
        CamerasExport,
        CamerasManage,
        RecordingsDelete,
    );
}
