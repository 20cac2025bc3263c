//! `/api/v1/auth/pin…`: the signed-in user's alarm disarm PIN (see [`pv_security::pin`]):
//! whether there is one and its last use, setting or changing it, and checking it.
//!
//! Setting needs the account password or the current PIN and, from a browser session, the
//! page's CSRF token ([`crate::csrf`]). Checking needs `alarms.disarm` (globally, on the
//! property named, or on some property when none is named); a wrong PIN is 403, a lock-out 429
//! with `Retry-After`.

use chrono::{DateTime, Utc};
use poem::Request;
use poem::web::Data;
use poem_openapi::payload::Json;
use poem_openapi::{Object, OpenApi};
use pv_security::pin::{self, Attempt, PinMethod, Pins, Proof, Refused};
use pv_security::rbac::{self, Permission, Resource};

use super::ApiTags;
use super::auth::{NoContent, full, limit};
use super::error::{ApiError, ApiResult};
use crate::auth::{Principal, Signed};
use crate::state::AppState;

/// The disarm PIN API.
#[derive(Debug, Clone, Copy)]
pub struct PinApi;

/// The caller's PIN (never the PIN itself).
#[derive(Debug, Clone, Object)]
#[oai(skip_serializing_if_is_none)]
pub struct PinInfo {
    /// Whether a PIN is set.
    pub has_pin: bool,
    /// When the current PIN was set.
    pub set_at: Option<DateTime<Utc>>,
    /// The most recent attempt to use it.
    pub last_use: Option<PinUseInfo>,
}

/// One use of a PIN.
#[derive(Debug, Clone, Object)]
#[oai(skip_serializing_if_is_none)]
pub struct PinUseInfo {
    /// When.
    pub at: DateTime<Utc>,
    /// Whether the PIN was right.
    pub success: bool,
    /// From which client address.
    pub ip: Option<String>,
    /// How: `api`, `ui` or `keypad`.
    pub method: Option<String>,
    /// Where (a panel or station name), if given.
    pub location: Option<String>,
}

/// `PUT /auth/pin`.
#[derive(Debug, Clone, Object)]
#[oai(skip_serializing_if_is_none)]
pub struct SetPin {
    /// Exactly 8 digits; none of your last 5 PINs.
    pub new_pin: String,
    /// Your account password (or give `current_pin`).
    pub password: Option<String>,
    /// Your current PIN (or give `password`).
    pub current_pin: Option<String>,
}

/// `POST /auth/pin/verify`.
#[derive(Debug, Clone, Object)]
#[oai(skip_serializing_if_is_none)]
pub struct VerifyPin {
    /// The PIN entered.
    pub pin: String,
    /// The property whose alarm is being disarmed (absent: any property you may disarm).
    pub property_id: Option<i64>,
    /// The alarm zone, if only one zone is disarmed.
    pub zone: Option<String>,
    /// How it was entered: `api`, `ui` or `keypad` (default: `ui` for a browser session,
    /// `api` for an API token).
    pub method: Option<String>,
    /// Where it was entered (a panel or station name, at most 64 characters).
    pub location: Option<String>,
}

fn refused(r: &Refused, now: DateTime<Utc>) -> ApiError {
    use poem::http::StatusCode;
    match r {
        Refused::Locked(until) => {
            let wait = (*until - now).num_seconds().max(1);
            ApiError::too_many(r.message(), u64::try_from(wait).unwrap_or(1))
        }
        Refused::NoPin => ApiError::new(StatusCode::CONFLICT, r.message()),
        Refused::Malformed => ApiError::bad_request(r.message()),
        Refused::WrongPin | Refused::WrongPassword | Refused::ProofRequired => {
            ApiError::new(StatusCode::FORBIDDEN, r.message())
        }
    }
}

fn attempt(p: &Principal, method: Option<&str>, location: Option<String>) -> ApiResult<Attempt> {
    let method = match method {
        Some(m) => PinMethod::parse(m)?,
        None if p.token_id.is_some() => PinMethod::Api,
        None => PinMethod::Ui,
    };
    Ok(Attempt { ip: p.ip, user_agent: p.user_agent.clone(), method, location })
}

#[OpenApi(tag = "ApiTags::Auth")]
impl PinApi {
    /// Whether you have a disarm PIN, when it was set, and its last use (when, from where,
    /// how, whether it was right).
    #[oai(path = "/auth/pin", method = "get", operation_id = "getPin")]
    async fn get_pin(&self, state: Data<&AppState>, auth: Signed) -> ApiResult<Json<PinInfo>> {
        let p = auth.principal();
        full(p)?;
        let st = pin::status(&state.dbs().users, p.user.id).await?;
        Ok(Json(PinInfo {
            has_pin: st.has_pin(),
            set_at: st.set_at,
            last_use: st.last_use.map(|u| PinUseInfo {
                at: u.used_at,
                success: u.success,
                ip: u.ip,
                method: u.method,
                location: u.location,
            }),
        }))
    }

    /// Set or change your disarm PIN: exactly 8 digits, none of your last 5. Confirm with your
    /// account password or your current PIN (an account with neither sets its first PIN
    /// without). From a browser session the request needs the page's `X-CSRF-Token`.
    #[oai(path = "/auth/pin", method = "put", operation_id = "setPin")]
    async fn set_pin(
        &self,
        state: Data<&AppState>,
        req: &Request,
        auth: Signed,
        body: Json<SetPin>,
    ) -> ApiResult<NoContent> {
        let p = auth.principal();
        full(p)?;
        limit(&state, req)?;
        let proof = match (&body.0.current_pin, &body.0.password) {
            (Some(pin), _) => Proof::CurrentPin(pin),
            (None, Some(pw)) => Proof::Password(pw),
            (None, None) => Proof::Session,
        };
        let rules = state.ip_rules().current(&state).await;
        let pins = Pins {
            db: &state.dbs().users,
            config: &state.config().security,
            rules: &rules,
            audit: state.audit(),
        };
        let now = state.clock().now();
        let attempt = attempt(p, None, None)?;
        match pins.set(&p.user, &body.0.new_pin, proof, &attempt, now).await? {
            Ok(()) => Ok(NoContent::Done),
            Err(r) => Err(refused(&r, now)),
        }
    }

    /// Check your disarm PIN (what an alarm panel or the UI does before disarming). Needs
    /// `alarms.disarm` on the property named (or on some property). Answers 204 when right,
    /// 403 when wrong, 429 during a lock-out; every attempt is recorded and audited.
    #[oai(path = "/auth/pin/verify", method = "post", operation_id = "verifyPin")]
    async fn verify_pin(
        &self,
        state: Data<&AppState>,
        req: &Request,
        auth: Signed,
        body: Json<VerifyPin>,
    ) -> ApiResult<NoContent> {
        let p = auth.principal();
        full(p)?;
        match body.0.property_id {
            Some(property_id) => p.authorize(
                &state,
                Permission::AlarmsDisarm,
                &Resource::Alarm { property_id, zone: body.0.zone.clone() },
            )?,
            None => {
                rbac::authorize_any_property(
                    &p.subject,
                    Permission::AlarmsDisarm,
                    state.clock().now(),
                )
                .map_err(crate::auth::denied)?;
            }
        }
        limit(&state, req)?;
        let attempt = attempt(p, body.0.method.as_deref(), body.0.location.clone())?;
        let rules = state.ip_rules().current(&state).await;
        let pins = Pins {
            db: &state.dbs().users,
            config: &state.config().security,
            rules: &rules,
            audit: state.audit(),
        };
        let now = state.clock().now();
        match pins.verify(&p.user, &body.0.pin, &attempt, now).await? {
            Ok(()) => Ok(NoContent::Done),
            Err(r) => Err(refused(&r, now)),
        }
    }
}
