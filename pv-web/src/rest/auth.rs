//! `/api/v1/auth/…`: sign-in (password + second factor, setup code, passkey), sign-out, the
//! caller's passkeys, TOTP, sessions and API tokens.

use chrono::{DateTime, Utc};
use poem::Request;
use poem::web::Data;
use poem_openapi::param::{Path, Query};
use poem_openapi::payload::Json;
use poem_openapi::{ApiResponse, Object, OpenApi};
use pv_security::session::{self, Stage};
use pv_security::signin::{Credentials, Granted, Refused, SignIn};
use pv_security::{account, passkey, token};

use super::ApiTags;
use super::error::{ApiError, ApiResult};
use crate::auth::{self, Principal, Signed, check_stage};
use crate::state::AppState;

/// The authentication API.
#[derive(Debug, Clone, Copy)]
pub struct AuthApi;

/// `POST /auth/login`.
#[derive(Debug, Clone, Object)]
#[oai(skip_serializing_if_is_none)]
pub struct LoginRequest {
    /// User name.
    pub username: String,
    /// Password (or, for the seeded administrator, the one-time setup code).
    pub password: String,
    /// TOTP code or recovery code, when the account has TOTP.
    pub code: Option<String>,
}

/// The signed-in user.
#[derive(Debug, Clone, Object)]
#[oai(skip_serializing_if_is_none)]
pub struct SignedIn {
    /// User id.
    pub user_id: i64,
    /// User name.
    pub username: String,
    /// `full`, or `enrol`: enrol a passkey or TOTP next.
    pub stage: String,
}

/// A successful sign-in sets the session cookie.
#[derive(ApiResponse)]
pub enum LoginResponse {
    /// Signed in.
    #[oai(status = 200)]
    Ok(Json<SignedIn>, #[oai(header = "Set-Cookie")] String),
}

/// Signed out.
#[derive(ApiResponse)]
pub enum LogoutResponse {
    /// The session is revoked and the cookie cleared.
    #[oai(status = 204)]
    Done(#[oai(header = "Set-Cookie")] String),
}

/// Who is calling.
#[derive(Debug, Clone, Object)]
#[oai(skip_serializing_if_is_none)]
pub struct Me {
    /// User id.
    pub id: i64,
    /// User name.
    pub username: String,
    /// Display name.
    pub display_name: String,
    /// `full` or `enrol`.
    pub stage: String,
    /// Permission keys held everywhere (global roles).
    pub permissions: Vec<String>,
    /// Properties on which the user has grants, with their permission keys.
    pub properties: Vec<PropertyPermissions>,
    /// Registered passkeys.
    pub passkeys: u64,
    /// Whether TOTP is enrolled.
    pub totp: bool,
}

/// Permissions on one property.
#[derive(Debug, Clone, Object)]
#[oai(skip_serializing_if_is_none)]
pub struct PropertyPermissions {
    /// Property id.
    pub property_id: i64,
    /// Permission keys.
    pub permissions: Vec<String>,
}

/// A WebAuthn ceremony's options for the browser.
#[derive(Debug, Clone, Object)]
#[oai(skip_serializing_if_is_none)]
pub struct Ceremony {
    /// Pass back with the browser's answer.
    pub ceremony_id: i64,
    /// For `navigator.credentials.create()` / `.get()` (`publicKey` inside).
    pub options: serde_json::Value,
}

/// The browser's answer to a passkey sign-in.
#[derive(Debug, Clone, Object)]
#[oai(skip_serializing_if_is_none)]
pub struct PasskeyLogin {
    /// From the start call.
    pub ceremony_id: i64,
    /// The `PublicKeyCredential` as JSON (base64url binary fields).
    pub credential: serde_json::Value,
}

/// The browser's answer to a passkey registration.
#[derive(Debug, Clone, Object)]
#[oai(skip_serializing_if_is_none)]
pub struct PasskeyRegistration {
    /// From the start call.
    pub ceremony_id: i64,
    /// The `PublicKeyCredential` as JSON (base64url binary fields).
    pub credential: serde_json::Value,
    /// A name for the passkey ("laptop", "phone").
    pub name: String,
}

/// A registered passkey.
#[derive(Debug, Clone, Object)]
#[oai(skip_serializing_if_is_none)]
pub struct PasskeyInfo {
    /// Id.
    pub id: i64,
    /// Name.
    pub name: String,
    /// Registered at.
    pub created_at: DateTime<Utc>,
    /// Last sign-in with it.
    pub last_used_at: Option<DateTime<Utc>>,
}

/// `PATCH /auth/passkeys/{id}`.
#[derive(Debug, Clone, Object)]
#[oai(skip_serializing_if_is_none)]
pub struct Rename {
    /// The new name.
    pub name: String,
}

/// A TOTP enrolment to confirm.
#[derive(Debug, Clone, Object)]
#[oai(skip_serializing_if_is_none)]
pub struct TotpStart {
    /// `otpauth://` URI (what the QR code holds).
    pub otpauth_uri: String,
    /// The QR code as SVG.
    pub qr_svg: String,
    /// The secret for manual entry (base32).
    pub secret: String,
}

/// `POST /auth/password`.
#[derive(Debug, Clone, Object)]
#[oai(skip_serializing_if_is_none)]
pub struct PasswordChange {
    /// The current password (not needed when the account has none yet).
    pub current_password: Option<String>,
    /// At least 10 characters.
    pub new_password: String,
}

/// A code from the authenticator app.
#[derive(Debug, Clone, Object)]
#[oai(skip_serializing_if_is_none)]
pub struct TotpCode {
    /// Six digits.
    pub code: String,
}

/// Recovery codes (shown once).
#[derive(Debug, Clone, Object)]
#[oai(skip_serializing_if_is_none)]
pub struct RecoveryCodes {
    /// Each works once in place of a TOTP code.
    pub recovery_codes: Vec<String>,
}

/// A live session.
#[derive(Debug, Clone, Object)]
#[oai(skip_serializing_if_is_none)]
pub struct SessionInfo {
    /// Id.
    pub id: i64,
    /// Signed in at.
    pub created_at: DateTime<Utc>,
    /// Last request.
    pub last_seen_at: DateTime<Utc>,
    /// Ends if idle until.
    pub idle_expires_at: DateTime<Utc>,
    /// Ends at the latest.
    pub absolute_expires_at: DateTime<Utc>,
    /// Client address at sign-in.
    pub ip: Option<String>,
    /// Browser.
    pub user_agent: Option<String>,
    /// Whether it is the calling session.
    pub current: bool,
}

/// `POST /auth/tokens`.
#[derive(Debug, Clone, Object)]
#[oai(skip_serializing_if_is_none)]
pub struct NewToken {
    /// A label.
    pub name: String,
    /// Permission keys to limit the token to (empty or absent: all of yours).
    pub scopes: Option<Vec<String>>,
    /// Expiry (absent: until revoked).
    pub expires_at: Option<DateTime<Utc>>,
}

/// An API token (its secret only in the create response).
#[derive(Debug, Clone, Object)]
#[oai(skip_serializing_if_is_none)]
pub struct TokenInfo {
    /// Id.
    pub id: i64,
    /// Label.
    pub name: String,
    /// Public prefix.
    pub prefix: String,
    /// Permission keys it is limited to (empty: not limited).
    pub scopes: Vec<String>,
    /// Created at.
    pub created_at: DateTime<Utc>,
    /// Expiry.
    pub expires_at: Option<DateTime<Utc>>,
    /// Last use.
    pub last_used_at: Option<DateTime<Utc>>,
    /// Revoked at.
    pub revoked_at: Option<DateTime<Utc>>,
    /// The secret, shown once at creation: send as `Authorization: Bearer …`.
    pub secret: Option<String>,
}

/// A CSRF token for one route.
#[derive(Debug, Clone, Object)]
#[oai(skip_serializing_if_is_none)]
pub struct CsrfToken {
    /// The route it is for (numeric path segments written `{id}`).
    pub route: String,
    /// Send it as the `X-CSRF-Token` header.
    pub token: String,
    /// It stops working at.
    pub expires_at: DateTime<Utc>,
}

/// Created.
#[derive(ApiResponse)]
pub enum Created<T: poem_openapi::types::ToJSON + Send + Sync> {
    /// Created.
    #[oai(status = 201)]
    Created(Json<T>),
}

/// Done, nothing to say.
#[derive(ApiResponse)]
pub enum NoContent {
    /// Done.
    #[oai(status = 204)]
    Done,
}

/// The per-client rate limit of the sign-in and credential endpoints, as a 429 problem.
pub(crate) fn limit(state: &AppState, req: &Request) -> ApiResult<()> {
    state.auth_limiter().check(state.client_ip(req)).map_err(|wait| {
        ApiError::too_many(
            format!("too many sign-in requests from your address; retry in {wait} s"),
            wait,
        )
    })
}

fn client(state: &AppState, req: &Request) -> session::ClientInfo {
    session::ClientInfo {
        ip: state.client_ip(req).map(|ip| ip.to_string()),
        user_agent: req
            .header(poem::http::header::USER_AGENT)
            .map(|ua| ua.chars().take(255).collect()),
    }
}

/// The sign-in service over this server's users database, key, rules and audit log.
fn sign_in<'a>(state: &'a AppState, rules: &'a pv_security::access::RuleSet) -> SignIn<'a> {
    SignIn {
        db: &state.dbs().users,
        config: &state.config().security,
        key: state.key(),
        rules,
        audit: state.audit(),
    }
}

fn refused(r: &Refused, now: DateTime<Utc>) -> ApiError {
    match r {
        Refused::Locked(until) => {
            let wait = (*until - now).num_seconds().max(1);
            ApiError::too_many(r.message(), u64::try_from(wait).unwrap_or(1))
        }
        Refused::Inactive(_) => ApiError::new(poem::http::StatusCode::FORBIDDEN, r.message()),
        _ => ApiError::unauthorized(r.message()),
    }
}

async fn start_session(
    state: &AppState,
    req: &Request,
    granted: Granted,
) -> ApiResult<LoginResponse> {
    let (token, _) = session::create(
        &state.dbs().users,
        granted.user.id,
        granted.stage,
        &client(state, req),
        state.session_policy(),
        state.clock().now(),
    )
    .await?;
    Ok(LoginResponse::Ok(
        Json(SignedIn {
            user_id: granted.user.id,
            username: granted.user.username,
            stage: granted.stage.as_str().into(),
        }),
        auth::session_cookie(state, &token),
    ))
}

/// After a passkey or TOTP enrolment: the session becomes full and setup codes die.
async fn enrolled(state: &AppState, p: &Principal) -> ApiResult<()> {
    if let (Stage::Enrol, Some(id)) = (p.stage, p.session_id) {
        session::upgrade(&state.dbs().users, id).await?;
    }
    account::retire_setup_codes(
        &state.dbs().users,
        &state.config().data_dir,
        p.user.id,
        state.clock().now(),
    )
    .await?;
    Ok(())
}

/// Refuse `enrol`-stage sessions.
pub(crate) fn full(p: &Principal) -> ApiResult<()> {
    check_stage(p).map_err(ApiError::from)
}

#[OpenApi(tag = "ApiTags::Auth")]
impl AuthApi {
    /// Sign in with user name and password (plus `code` when the account has TOTP). The
    /// seeded administrator signs in with her one-time setup code as the password. Sets the
    /// `pv_session` cookie. A session of stage `enrol` may only enrol a passkey or TOTP.
    #[oai(path = "/auth/login", method = "post", operation_id = "login")]
    async fn login(
        &self,
        state: Data<&AppState>,
        req: &Request,
        body: Json<LoginRequest>,
    ) -> ApiResult<LoginResponse> {
        limit(&state, req)?;
        let rules = state.ip_rules().current(&state).await;
        let signin = sign_in(&state, &rules);
        let creds =
            Credentials { username: body.0.username, secret: body.0.password, code: body.0.code };
        match signin
            .password(&creds, state.client_ip(req), &client(&state, req), state.clock().now())
            .await?
        {
            Ok(granted) => start_session(&state, req, granted).await,
            Err(r) => Err(refused(&r, state.clock().now())),
        }
    }

    /// Sign out: revoke this session and clear the cookie.
    #[oai(path = "/auth/logout", method = "post", operation_id = "logout")]
    async fn logout(&self, state: Data<&AppState>, auth: Signed) -> ApiResult<LogoutResponse> {
        let p = auth.principal();
        if let Some(id) = p.session_id {
            session::revoke(&state.dbs().users, p.user.id, id, state.clock().now()).await?;
        }
        p.audit(
            &state,
            "auth.logout",
            "session",
            &p.session_id.unwrap_or_default().to_string(),
            serde_json::json!({}),
        )
        .await;
        Ok(LogoutResponse::Done(auth::clear_session_cookie(&state)))
    }

    /// The signed-in user, their permissions and enrolled factors.
    #[oai(path = "/auth/me", method = "get", operation_id = "me")]
    async fn me(&self, state: Data<&AppState>, auth: Signed) -> ApiResult<Json<Me>> {
        let p = auth.principal();
        let factors = account::factors(&state.dbs().users, p.user.id).await?;
        Ok(Json(Me {
            id: p.user.id,
            username: p.user.username.clone(),
            display_name: p.user.display_name.clone(),
            stage: p.stage.as_str().into(),
            permissions: p.subject.global_permissions().iter().map(|x| x.as_str().into()).collect(),
            properties: p
                .subject
                .property_grants()
                .iter()
                .map(|(id, g)| PropertyPermissions {
                    property_id: *id,
                    permissions: g.permissions.iter().map(|x| x.as_str().into()).collect(),
                })
                .collect(),
            passkeys: factors.passkeys,
            totp: factors.totp,
        }))
    }

    /// Start a passkey sign-in (no user name needed: discoverable credentials).
    #[oai(path = "/auth/passkeys/login/start", method = "post", operation_id = "passkeyLoginStart")]
    async fn passkey_login_start(
        &self,
        state: Data<&AppState>,
        req: &Request,
    ) -> ApiResult<Json<Ceremony>> {
        limit(&state, req)?;
        let rp = state.relying_party().map_err(|e| ApiError::bad_request(e.to_string()))?;
        let (id, rcr) = rp.start_authentication(&state.dbs().users, state.clock().now()).await?;
        let options =
            serde_json::to_value(&rcr).map_err(|e| ApiError::bad_request(e.to_string()))?;
        Ok(Json(Ceremony { ceremony_id: id, options }))
    }

    /// Finish a passkey sign-in. Sets the `pv_session` cookie. A replayed or expired challenge
    /// is refused.
    #[oai(
        path = "/auth/passkeys/login/finish",
        method = "post",
        operation_id = "passkeyLoginFinish"
    )]
    async fn passkey_login_finish(
        &self,
        state: Data<&AppState>,
        req: &Request,
        body: Json<PasskeyLogin>,
    ) -> ApiResult<LoginResponse> {
        limit(&state, req)?;
        let rules = state.ip_rules().current(&state).await;
        let signin = sign_in(&state, &rules);
        let now = state.clock().now();
        let ip = state.client_ip(req);
        let info = client(&state, req);
        let credential = serde_json::from_value(body.0.credential).map_err(|e| {
            ApiError::bad_request(format!("credential is not a WebAuthn assertion: {e}"))
        })?;
        let rp = state.relying_party().map_err(|e| ApiError::bad_request(e.to_string()))?;
        match rp
            .finish_authentication(&state.dbs().users, body.0.ceremony_id, &credential, now)
            .await
        {
            Ok(user_id) => match signin.passkey_succeeded(user_id, ip, &info, now).await? {
                Ok(granted) => start_session(&state, req, granted).await,
                Err(r) => Err(refused(&r, state.clock().now())),
            },
            Err(e) => {
                signin.passkey_failed(&e.to_string(), ip, &info, now).await?;
                Err(ApiError::from(e))
            }
        }
    }

    /// Start registering a passkey for the signed-in user (allowed in an `enrol` session).
    #[oai(
        path = "/auth/passkeys/register/start",
        method = "post",
        operation_id = "passkeyRegisterStart"
    )]
    async fn passkey_register_start(
        &self,
        state: Data<&AppState>,
        auth: Signed,
    ) -> ApiResult<Json<Ceremony>> {
        if auth.principal().token_id.is_some() {
            return Err(ApiError::new(
                poem::http::StatusCode::FORBIDDEN,
                "passkeys are registered from a browser session",
            ));
        }
        let rp = state.relying_party().map_err(|e| ApiError::bad_request(e.to_string()))?;
        let (id, options) = rp
            .start_registration(&state.dbs().users, &auth.principal().user, state.clock().now())
            .await?;
        Ok(Json(Ceremony { ceremony_id: id, options }))
    }

    /// Finish registering a passkey. An `enrol` session becomes a full one, and the setup code
    /// stops working.
    #[oai(
        path = "/auth/passkeys/register/finish",
        method = "post",
        operation_id = "passkeyRegisterFinish"
    )]
    async fn passkey_register_finish(
        &self,
        state: Data<&AppState>,
        auth: Signed,
        body: Json<PasskeyRegistration>,
    ) -> ApiResult<Created<PasskeyInfo>> {
        let p = auth.principal();
        let credential = serde_json::from_value(body.0.credential).map_err(|e| {
            ApiError::bad_request(format!("credential is not a WebAuthn attestation: {e}"))
        })?;
        let rp = state.relying_party().map_err(|e| ApiError::bad_request(e.to_string()))?;
        let row = rp
            .finish_registration(
                &state.dbs().users,
                p.user.id,
                body.0.ceremony_id,
                &credential,
                &body.0.name,
                state.clock().now(),
            )
            .await?;
        enrolled(&state, p).await?;
        p.audit(
            &state,
            "passkey.add",
            "passkey",
            &row.id.to_string(),
            serde_json::json!({ "name": row.name }),
        )
        .await;
        Ok(Created::Created(Json(PasskeyInfo {
            id: row.id,
            name: row.name,
            created_at: row.created_at,
            last_used_at: row.last_used_at,
        })))
    }

    /// The signed-in user's passkeys.
    #[oai(path = "/auth/passkeys", method = "get", operation_id = "listPasskeys")]
    async fn passkeys(
        &self,
        state: Data<&AppState>,
        auth: Signed,
    ) -> ApiResult<Json<Vec<PasskeyInfo>>> {
        let p = auth.principal();
        full(p)?;
        let rows = passkey::list(&state.dbs().users, p.user.id).await?;
        Ok(Json(
            rows.into_iter()
                .map(|r| PasskeyInfo {
                    id: r.id,
                    name: r.name,
                    created_at: r.created_at,
                    last_used_at: r.last_used_at,
                })
                .collect(),
        ))
    }

    /// Rename one of the signed-in user's passkeys.
    #[oai(path = "/auth/passkeys/:id", method = "patch", operation_id = "renamePasskey")]
    async fn rename_passkey(
        &self,
        state: Data<&AppState>,
        auth: Signed,
        id: Path<i64>,
        body: Json<Rename>,
    ) -> ApiResult<NoContent> {
        let p = auth.principal();
        full(p)?;
        passkey::rename(&state.dbs().users, p.user.id, id.0, &body.0.name).await?;
        p.audit(
            &state,
            "passkey.rename",
            "passkey",
            &id.0.to_string(),
            serde_json::json!({ "name": body.0.name }),
        )
        .await;
        Ok(NoContent::Done)
    }

    /// Revoke one of the signed-in user's passkeys.
    #[oai(path = "/auth/passkeys/:id", method = "delete", operation_id = "revokePasskey")]
    async fn revoke_passkey(
        &self,
        state: Data<&AppState>,
        auth: Signed,
        id: Path<i64>,
    ) -> ApiResult<NoContent> {
        let p = auth.principal();
        full(p)?;
        passkey::revoke(&state.dbs().users, p.user.id, id.0).await?;
        p.audit(&state, "passkey.revoke", "passkey", &id.0.to_string(), serde_json::json!({}))
            .await;
        Ok(NoContent::Done)
    }

    /// Set or change the signed-in user's password (with the current one, unless the account
    /// has none yet — the seeded administrator choosing the TOTP route). Other sessions are
    /// signed out.
    #[oai(path = "/auth/password", method = "post", operation_id = "setPassword")]
    async fn set_password(
        &self,
        state: Data<&AppState>,
        req: &Request,
        auth: Signed,
        body: Json<PasswordChange>,
    ) -> ApiResult<NoContent> {
        limit(&state, req)?;
        let p = auth.principal();
        if let Some(hash) = &p.user.password_hash {
            let current = body.0.current_password.as_deref().unwrap_or_default();
            if !pv_security::password::verify(current, hash).unwrap_or(false) {
                return Err(ApiError::unauthorized("the current password is not right"));
            }
        }
        let now = state.clock().now();
        account::set_password(
            &state.dbs().users,
            &state.config().security,
            p.user.id,
            &body.0.new_password,
            now,
        )
        .await?;
        session::revoke_all(&state.dbs().users, p.user.id, p.session_id, now).await?;
        p.audit(&state, "password.change", "user", &p.user.id.to_string(), serde_json::json!({}))
            .await;
        Ok(NoContent::Done)
    }

    /// Start a TOTP enrolment: a QR code for the authenticator app (allowed in an `enrol`
    /// session). Confirm with a code to activate it.
    #[oai(path = "/auth/totp/start", method = "post", operation_id = "totpStart")]
    async fn totp_start(&self, state: Data<&AppState>, auth: Signed) -> ApiResult<Json<TotpStart>> {
        let p = auth.principal();
        let e = account::totp_begin(&state.dbs().users, state.key(), &p.user, state.clock().now())
            .await?;
        Ok(Json(TotpStart {
            otpauth_uri: e.otpauth_uri,
            qr_svg: e.qr_svg,
            secret: e.secret_base32,
        }))
    }

    /// Confirm the TOTP enrolment with a code from the app. Returns ten recovery codes (shown
    /// once). An `enrol` session becomes a full one, and the setup code stops working.
    #[oai(path = "/auth/totp/confirm", method = "post", operation_id = "totpConfirm")]
    async fn totp_confirm(
        &self,
        state: Data<&AppState>,
        req: &Request,
        auth: Signed,
        body: Json<TotpCode>,
    ) -> ApiResult<Json<RecoveryCodes>> {
        limit(&state, req)?;
        let p = auth.principal();
        let Some(codes) = account::totp_confirm(
            &state.dbs().users,
            state.key(),
            p.user.id,
            &body.0.code,
            state.clock().now(),
        )
        .await?
        else {
            return Err(ApiError::bad_request(
                "that code is not right (or no enrolment was started); try the next one",
            ));
        };
        enrolled(&state, p).await?;
        p.audit(&state, "totp.enrol", "user", &p.user.id.to_string(), serde_json::json!({})).await;
        Ok(Json(RecoveryCodes { recovery_codes: codes }))
    }

    /// Remove the signed-in user's TOTP and recovery codes.
    #[oai(path = "/auth/totp", method = "delete", operation_id = "totpRemove")]
    async fn totp_remove(&self, state: Data<&AppState>, auth: Signed) -> ApiResult<NoContent> {
        let p = auth.principal();
        full(p)?;
        if !account::totp_remove(&state.dbs().users, p.user.id).await? {
            return Err(ApiError::new(poem::http::StatusCode::NOT_FOUND, "no TOTP is enrolled"));
        }
        p.audit(&state, "totp.remove", "user", &p.user.id.to_string(), serde_json::json!({})).await;
        Ok(NoContent::Done)
    }

    /// Replace the signed-in user's recovery codes with ten new ones (shown once; the old ones
    /// stop working). Each works once in place of an authenticator code, or with the password
    /// when a passkey is lost.
    #[oai(path = "/auth/recovery-codes", method = "post", operation_id = "newRecoveryCodes")]
    async fn new_recovery_codes(
        &self,
        state: Data<&AppState>,
        req: &Request,
        auth: Signed,
    ) -> ApiResult<Json<RecoveryCodes>> {
        limit(&state, req)?;
        let p = auth.principal();
        full(p)?;
        if p.token_id.is_some() {
            return Err(ApiError::new(
                poem::http::StatusCode::FORBIDDEN,
                "recovery codes are made from a browser session",
            ));
        }
        let codes =
            account::new_recovery_codes(&state.dbs().users, p.user.id, state.clock().now()).await?;
        p.audit(&state, "recovery.renew", "user", &p.user.id.to_string(), serde_json::json!({}))
            .await;
        Ok(Json(RecoveryCodes { recovery_codes: codes }))
    }

    /// The signed-in user's live sessions.
    #[oai(path = "/auth/sessions", method = "get", operation_id = "listSessions")]
    async fn sessions(
        &self,
        state: Data<&AppState>,
        auth: Signed,
    ) -> ApiResult<Json<Vec<SessionInfo>>> {
        let p = auth.principal();
        full(p)?;
        let rows = session::list(&state.dbs().users, p.user.id, state.clock().now()).await?;
        Ok(Json(
            rows.into_iter()
                .map(|r| SessionInfo {
                    current: Some(r.id) == p.session_id,
                    id: r.id,
                    created_at: r.created_at,
                    last_seen_at: r.last_seen_at,
                    idle_expires_at: r.idle_expires_at,
                    absolute_expires_at: r.absolute_expires_at,
                    ip: r.ip,
                    user_agent: r.user_agent,
                })
                .collect(),
        ))
    }

    /// Revoke one of the signed-in user's sessions.
    #[oai(path = "/auth/sessions/:id", method = "delete", operation_id = "revokeSession")]
    async fn revoke_session(
        &self,
        state: Data<&AppState>,
        auth: Signed,
        id: Path<i64>,
    ) -> ApiResult<NoContent> {
        let p = auth.principal();
        full(p)?;
        if !session::revoke(&state.dbs().users, p.user.id, id.0, state.clock().now()).await? {
            return Err(ApiError::new(
                poem::http::StatusCode::NOT_FOUND,
                format!("no live session {}", id.0),
            ));
        }
        p.audit(&state, "session.revoke", "session", &id.0.to_string(), serde_json::json!({}))
            .await;
        Ok(NoContent::Done)
    }

    /// A CSRF token for a sensitive route (`route`: the path under `/api/v1`, e.g.
    /// `/users/{id}/status` or `/users/7/status`). Browser sessions send it as `X-CSRF-Token`
    /// with changes to users, roles, IP rules, the country policy, services and their disarm
    /// PIN; API-token callers need none. Valid for 30 minutes.
    #[oai(path = "/auth/csrf", method = "get", operation_id = "csrfToken")]
    async fn csrf_token(
        &self,
        state: Data<&AppState>,
        auth: Signed,
        route: Query<String>,
    ) -> ApiResult<Json<CsrfToken>> {
        let p = auth.principal();
        full(p)?;
        if route.0.len() > 200 {
            return Err(ApiError::bad_request("route is longer than 200 characters"));
        }
        let route = crate::csrf::route_of(&route.0);
        if !crate::csrf::is_protected(&route) {
            return Err(ApiError::bad_request(format!(
                "{route} needs no CSRF token (only changes to users, roles, IP rules, the \
                 country policy, services and the disarm PIN do)"
            )));
        }
        let token = crate::csrf::token_for(&state, p.user.id, &route);
        let expires_at = pv_security::csrf::expires_at(&token)
            .ok_or_else(|| ApiError::bad_request("cannot issue a token"))?;
        Ok(Json(CsrfToken { route, token, expires_at }))
    }

    /// The signed-in user's API tokens.
    #[oai(path = "/auth/tokens", method = "get", operation_id = "listTokens")]
    async fn tokens(
        &self,
        state: Data<&AppState>,
        auth: Signed,
    ) -> ApiResult<Json<Vec<TokenInfo>>> {
        let p = auth.principal();
        full(p)?;
        let rows = token::list(&state.dbs().users, Some(p.user.id)).await?;
        Ok(Json(rows.into_iter().map(|r| token_info(r, None)).collect()))
    }

    /// Create an API token acting as the signed-in user (optionally limited to some of their
    /// permissions). The secret is in this response only.
    #[oai(path = "/auth/tokens", method = "post", operation_id = "createToken")]
    async fn create_token(
        &self,
        state: Data<&AppState>,
        auth: Signed,
        body: Json<NewToken>,
    ) -> ApiResult<Created<TokenInfo>> {
        let p = auth.principal();
        full(p)?;
        let scopes = body.0.scopes.unwrap_or_default();
        for s in &scopes {
            if pv_security::rbac::Permission::from_key(s).is_none() {
                let s = pv_core::input::quote(s);
                return Err(ApiError::bad_request(format!("unknown permission {s} in scopes")));
            }
        }
        let new = token::NewToken { name: body.0.name, scopes, expires_at: body.0.expires_at };
        let (secret, row) =
            token::create(&state.dbs().users, p.user.id, &new, state.clock().now()).await?;
        p.audit(
            &state,
            "token.create",
            "api_token",
            &row.id.to_string(),
            serde_json::json!({ "name": row.name, "prefix": row.prefix }),
        )
        .await;
        Ok(Created::Created(Json(token_info(row, Some(secret)))))
    }

    /// Revoke one of the signed-in user's API tokens.
    #[oai(path = "/auth/tokens/:id", method = "delete", operation_id = "revokeToken")]
    async fn revoke_token(
        &self,
        state: Data<&AppState>,
        auth: Signed,
        id: Path<i64>,
    ) -> ApiResult<NoContent> {
        let p = auth.principal();
        full(p)?;
        token::revoke(&state.dbs().users, id.0, Some(p.user.id), state.clock().now()).await?;
        p.audit(&state, "token.revoke", "api_token", &id.0.to_string(), serde_json::json!({}))
            .await;
        Ok(NoContent::Done)
    }
}

fn token_info(r: pv_core::db::users::api_token::Model, secret: Option<String>) -> TokenInfo {
    TokenInfo {
        scopes: token::scopes(&r),
        id: r.id,
        name: r.name,
        prefix: r.prefix,
        created_at: r.created_at,
        expires_at: r.expires_at,
        last_used_at: r.last_used_at,
        revoked_at: r.revoked_at,
        secret,
    }
}
