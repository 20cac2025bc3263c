//! Administration: IP rules (block / exempt, "exempt my address"), the country policy, users
//! (create, status, roles) and the audit log (search and CSV export). Every change is an
//! audit event.

use std::path::PathBuf;

use chrono::{DateTime, Utc};
use poem::web::Data;
use poem_openapi::param::{Path, Query};
use poem_openapi::payload::{Json, PlainText};
use poem_openapi::{ApiResponse, Object, OpenApi};
use pv_core::db::users::{audit_event, ip_rule, role, user, user_role};
use pv_security::access::{self, NewRule, RuleAction, RuleSource};
use pv_security::country::{CountryCode, CountryPolicy, PolicyMode};
use pv_security::rbac::{self, Permission, RoleRef};
use pv_security::{account, blocklist};
use sea_orm::{ColumnTrait, EntityTrait, QueryFilter, QueryOrder, QuerySelect};

use super::ApiTags;
use super::auth::{Created, NoContent};
use super::error::{ApiError, ApiResult};
use crate::auth::{Guarded, perm};
use crate::state::AppState;

/// The administration API.
#[derive(Debug, Clone, Copy)]
pub struct AdminApi;

/// An IP rule.
#[derive(Debug, Clone, Object)]
#[oai(skip_serializing_if_is_none)]
pub struct IpRule {
    /// Id.
    pub id: i64,
    /// Address or CIDR network.
    pub network: String,
    /// `block` or `exempt`.
    pub action: String,
    /// Why.
    pub reason: Option<String>,
    /// `admin`, `cli`, `fail2ban`, `builtin`.
    pub source: String,
    /// Created at.
    pub created_at: DateTime<Utc>,
    /// Lapses at (None: permanent).
    pub expires_at: Option<DateTime<Utc>>,
}

impl From<ip_rule::Model> for IpRule {
    fn from(r: ip_rule::Model) -> Self {
        Self {
            id: r.id,
            network: r.network,
            action: r.action,
            reason: r.reason,
            source: r.source,
            created_at: r.created_at,
            expires_at: r.expires_at,
        }
    }
}

/// `POST /security/ip-rules`.
#[derive(Debug, Clone, Object)]
#[oai(skip_serializing_if_is_none)]
pub struct NewIpRule {
    /// An IPv4/IPv6 address or CIDR network.
    pub network: String,
    /// `block` or `exempt`.
    pub action: String,
    /// Why (shown in the list and the audit log).
    pub reason: Option<String>,
    /// Lifetime such as `30m`, `1h`, `7d` (absent: permanent).
    pub expires: Option<String>,
}

/// The country policy.
#[derive(Debug, Clone, Object)]
#[oai(skip_serializing_if_is_none)]
pub struct CountryPolicyBody {
    /// `off`, `allow` (only these countries) or `deny` (not these countries).
    pub mode: String,
    /// ISO 3166-1 alpha-2 codes.
    pub countries: Vec<String>,
    /// Absolute path of a MaxMind-format country database (.mmdb); needed unless `off`. It
    /// must be a regular file (not a device or a pipe) of at most 256 MiB.
    pub mmdb_path: Option<String>,
}

/// A user as administrators see it.
#[derive(Debug, Clone, Object)]
#[oai(skip_serializing_if_is_none)]
pub struct UserInfo {
    /// Id.
    pub id: i64,
    /// User name.
    pub username: String,
    /// Display name.
    pub display_name: String,
    /// `active`, `suspended` or `disabled`.
    pub account_status: String,
    /// Last sign-in.
    pub last_login_at: Option<DateTime<Utc>>,
    /// Created at.
    pub created_at: DateTime<Utc>,
    /// Roles held: global role names, and `Role (property N)` for property grants. Filled by
    /// the user list.
    pub roles: Vec<String>,
}

impl From<user::Model> for UserInfo {
    fn from(u: user::Model) -> Self {
        Self {
            roles: Vec::new(),
            id: u.id,
            username: u.username,
            display_name: u.display_name,
            account_status: u.account_status,
            last_login_at: u.last_login_at,
            created_at: u.created_at,
        }
    }
}

/// `POST /users`.
#[derive(Debug, Clone, Object)]
#[oai(skip_serializing_if_is_none)]
pub struct NewUserBody {
    /// 1–64 of letters, digits, `.`, `_`, `-`.
    pub username: String,
    /// Shown name.
    pub display_name: Option<String>,
    /// Initial password (the user enrols a second factor at first sign-in).
    pub password: Option<String>,
}

/// `PUT /users/{id}/status`.
#[derive(Debug, Clone, Object)]
#[oai(skip_serializing_if_is_none)]
pub struct StatusBody {
    /// `active`, `suspended` or `disabled`.
    pub status: String,
    /// Why.
    pub reason: Option<String>,
}

/// `POST /users/{id}/roles` and `DELETE` of the same.
#[derive(Debug, Clone, Object)]
#[oai(skip_serializing_if_is_none)]
pub struct RoleGrantBody {
    /// Role name (e.g. `Homeowner`) .
    pub role: String,
    /// The property (absent: a global grant).
    pub property_id: Option<i64>,
}

/// An audit event.
#[derive(Debug, Clone, Object)]
#[oai(skip_serializing_if_is_none)]
pub struct AuditEventInfo {
    /// Id (chain position).
    pub id: i64,
    /// When.
    pub occurred_at: DateTime<Utc>,
    /// Who.
    pub actor_name: Option<String>,
    /// What.
    pub action: String,
    /// On what kind of thing.
    pub target_kind: Option<String>,
    /// On which.
    pub target_id: Option<String>,
    /// From where.
    pub ip: Option<String>,
    /// `success`, `failure` or `denied`.
    pub outcome: String,
    /// Event details.
    pub details: Option<serde_json::Value>,
}

impl From<audit_event::Model> for AuditEventInfo {
    fn from(e: audit_event::Model) -> Self {
        Self {
            id: e.id,
            occurred_at: e.occurred_at,
            actor_name: e.actor_name,
            action: e.action,
            target_kind: e.target_kind,
            target_id: e.target_id,
            ip: e.ip,
            outcome: e.outcome,
            details: e.details,
        }
    }
}

/// The audit log as CSV.
#[derive(ApiResponse)]
pub enum AuditCsv {
    /// RFC 4180 CSV with a header row.
    #[oai(status = 200, content_type = "text/csv; charset=utf-8")]
    Ok(PlainText<String>, #[oai(header = "Content-Disposition")] String),
}

#[allow(clippy::too_many_arguments)]
async fn search_audit(
    state: &AppState,
    action: Option<String>,
    actor: Option<String>,
    outcome: Option<String>,
    from: Option<DateTime<Utc>>,
    to: Option<DateTime<Utc>>,
    q: Option<String>,
    limit: u64,
) -> ApiResult<Vec<audit_event::Model>> {
    let mut query = audit_event::Entity::find().order_by_desc(audit_event::Column::Id);
    if let Some(a) = action.filter(|s| !s.is_empty()) {
        query = query.filter(audit_event::Column::Action.starts_with(a));
    }
    if let Some(a) = actor.filter(|s| !s.is_empty()) {
        query = query.filter(audit_event::Column::ActorName.eq(a));
    }
    if let Some(o) = outcome.filter(|s| !s.is_empty()) {
        query = query.filter(audit_event::Column::Outcome.eq(o));
    }
    if let Some(f) = from {
        query = query.filter(audit_event::Column::OccurredAt.gte(f));
    }
    if let Some(t) = to {
        query = query.filter(audit_event::Column::OccurredAt.lt(t));
    }
    if let Some(text) = q.filter(|s| !s.is_empty()) {
        query = query.filter(
            sea_orm::Condition::any()
                .add(audit_event::Column::Action.contains(&text))
                .add(audit_event::Column::ActorName.contains(&text))
                .add(audit_event::Column::TargetId.contains(&text))
                .add(audit_event::Column::Ip.contains(&text)),
        );
    }
    Ok(query.limit(limit.clamp(1, 10_000)).all(&state.dbs().users).await?)
}

fn csv_field(text: &str) -> String {
    if text.contains([',', '"', '\r', '\n']) {
        format!("\"{}\"", text.replace('"', "\"\""))
    } else {
        text.to_string()
    }
}

#[OpenApi(tag = "ApiTags::Admin")]
impl AdminApi {
    /// The IP rules in force (blocks and exemptions, including the preloaded LAN ranges).
    #[oai(path = "/security/ip-rules", method = "get", operation_id = "listIpRules")]
    async fn ip_rules(
        &self,
        state: Data<&AppState>,
        _auth: Guarded<perm::SecurityView>,
    ) -> ApiResult<Json<Vec<IpRule>>> {
        let rows = access::list_rules(&state.dbs().users, state.clock().now()).await?;
        Ok(Json(rows.into_iter().map(IpRule::from).collect()))
    }

    /// Block or exempt an address or network. Applies within two seconds.
    #[oai(path = "/security/ip-rules", method = "post", operation_id = "addIpRule")]
    async fn add_ip_rule(
        &self,
        state: Data<&AppState>,
        auth: Guarded<perm::SecurityManage>,
        body: Json<NewIpRule>,
    ) -> ApiResult<Created<IpRule>> {
        auth.authorize(&state, Permission::SecurityManage, &rbac::Resource::Global)?;
        let network = blocklist::parse_network(&body.0.network)?;
        let action = match body.0.action.as_str() {
            "block" => RuleAction::Block,
            "exempt" => RuleAction::Exempt,
            other => {
                return Err(ApiError::bad_request(format!(
                    "action must be block or exempt, not {}",
                    pv_core::input::quote(other)
                )));
            }
        };
        let now = state.clock().now();
        let expires_at = match &body.0.expires {
            Some(text) => Some(now + access::parse_duration(text)?),
            None => None,
        };
        let rule = NewRule {
            network,
            action,
            reason: body.0.reason.clone(),
            source: RuleSource::Admin,
            created_by: Some(auth.user.id),
            expires_at,
        };
        let row = access::add_rule(&state.dbs().users, rule, now).await?;
        auth.audit(
            &state,
            &format!("ip.{}", action.as_str()),
            "ip_rule",
            &row.network,
            serde_json::json!({ "reason": row.reason }),
        )
        .await;
        Ok(Created::Created(Json(row.into())))
    }

    /// Exempt the caller's own address (the one-click "Exempt this IP").
    #[oai(path = "/security/ip-rules/exempt-me", method = "post", operation_id = "exemptMyAddress")]
    async fn exempt_me(
        &self,
        state: Data<&AppState>,
        auth: Guarded<perm::SecurityManage>,
    ) -> ApiResult<Created<IpRule>> {
        auth.authorize(&state, Permission::SecurityManage, &rbac::Resource::Global)?;
        let ip = auth
            .ip
            .ok_or_else(|| ApiError::bad_request("your address is not known to the server"))?;
        let rule = NewRule {
            network: ipnet::IpNet::from(ip),
            action: RuleAction::Exempt,
            reason: Some(format!("exempted by {} (own address)", auth.user.username)),
            source: RuleSource::Admin,
            created_by: Some(auth.user.id),
            expires_at: None,
        };
        let row = access::add_rule(&state.dbs().users, rule, state.clock().now()).await?;
        auth.audit(
            &state,
            "ip.exempt",
            "ip_rule",
            &row.network,
            serde_json::json!({ "own_address": true }),
        )
        .await;
        Ok(Created::Created(Json(row.into())))
    }

    /// Remove the rules for an address or network.
    ///
    /// Every rule of exactly that network, or with `action` only its `block` or only its
    /// `exempt` rule (the Block / Allow page removes one row).
    #[oai(path = "/security/ip-rules", method = "delete", operation_id = "removeIpRules")]
    async fn remove_ip_rules(
        &self,
        state: Data<&AppState>,
        auth: Guarded<perm::SecurityManage>,
        network: Query<String>,
        action: Query<Option<String>>,
    ) -> ApiResult<NoContent> {
        auth.authorize(&state, Permission::SecurityManage, &rbac::Resource::Global)?;
        let db = &state.dbs().users;
        let removed = match action.0.as_deref() {
            None => access::remove_rules(db, &network.0).await?,
            Some("block") => access::remove_action_rules(db, &network.0, RuleAction::Block).await?,
            Some("exempt") => {
                access::remove_action_rules(db, &network.0, RuleAction::Exempt).await?
            }
            Some(other) => {
                return Err(ApiError::bad_request(format!(
                    "action must be block or exempt, not {}",
                    pv_core::input::quote(other)
                )));
            }
        };
        auth.audit(
            &state,
            "ip.remove",
            "ip_rule",
            &network.0,
            serde_json::json!({ "removed": removed, "action": action.0 }),
        )
        .await;
        Ok(NoContent::Done)
    }

    /// The country policy.
    #[oai(path = "/security/country-policy", method = "get", operation_id = "getCountryPolicy")]
    async fn country_policy(
        &self,
        state: Data<&AppState>,
        _auth: Guarded<perm::SecurityView>,
    ) -> ApiResult<Json<CountryPolicyBody>> {
        let p = pv_security::country::load_policy(&state.dbs().users).await?;
        Ok(Json(CountryPolicyBody {
            mode: p.mode.as_str().into(),
            countries: p.countries.iter().map(|c| c.as_str().to_string()).collect(),
            mmdb_path: p.mmdb_path.map(|p| p.display().to_string()),
        }))
    }

    /// Set the country policy (allow-list or deny-list of ISO countries, from a .mmdb).
    #[oai(path = "/security/country-policy", method = "put", operation_id = "setCountryPolicy")]
    async fn set_country_policy(
        &self,
        state: Data<&AppState>,
        auth: Guarded<perm::SecurityManage>,
        body: Json<CountryPolicyBody>,
    ) -> ApiResult<Json<CountryPolicyBody>> {
        auth.authorize(&state, Permission::SecurityManage, &rbac::Resource::Global)?;
        let mode: PolicyMode = body.0.mode.parse()?;
        let countries = body
            .0
            .countries
            .iter()
            .map(|c| CountryCode::parse(c))
            .collect::<Result<Vec<_>, _>>()?;
        let policy = CountryPolicy {
            mode,
            countries,
            mmdb_path: body.0.mmdb_path.as_ref().map(PathBuf::from),
        };
        pv_security::country::save_policy(
            &state.dbs().users,
            &policy,
            Some(auth.user.id),
            state.clock().now(),
        )
        .await?;
        auth.audit(
            &state,
            "country_policy.set",
            "country_policy",
            "1",
            serde_json::json!({ "mode": body.0.mode, "countries": body.0.countries }),
        )
        .await;
        Ok(body)
    }

    /// Users.
    #[oai(path = "/users", method = "get", operation_id = "listUsers")]
    async fn users(
        &self,
        state: Data<&AppState>,
        _auth: Guarded<perm::UsersView>,
    ) -> ApiResult<Json<Vec<UserInfo>>> {
        let db = &state.dbs().users;
        let rows = user::Entity::find().order_by_asc(user::Column::Id).all(db).await?;
        let roles: std::collections::HashMap<i64, String> =
            role::Entity::find().all(db).await?.into_iter().map(|r| (r.id, r.name)).collect();
        let grants = user_role::Entity::find().order_by_asc(user_role::Column::Id).all(db).await?;
        Ok(Json(
            rows.into_iter()
                .map(|u| {
                    let id = u.id;
                    let mut info = UserInfo::from(u);
                    info.roles = grants
                        .iter()
                        .filter(|g| g.user_id == id)
                        .filter_map(|g| {
                            let name = roles.get(&g.role_id)?;
                            Some(match g.property_id {
                                Some(p) => format!("{name} (property {p})"),
                                None => name.clone(),
                            })
                        })
                        .collect();
                    info
                })
                .collect(),
        ))
    }

    /// Create a user.
    #[oai(path = "/users", method = "post", operation_id = "createUser")]
    async fn create_user(
        &self,
        state: Data<&AppState>,
        auth: Guarded<perm::UsersManage>,
        body: Json<NewUserBody>,
    ) -> ApiResult<Created<UserInfo>> {
        auth.authorize(&state, Permission::UsersManage, &rbac::Resource::Global)?;
        let new = account::NewUser {
            username: body.0.username,
            display_name: body.0.display_name,
            password: body.0.password,
            timezone: None,
        };
        let u = account::create_user(
            &state.dbs().users,
            &state.config().security,
            &new,
            state.clock().now(),
        )
        .await?;
        auth.audit(
            &state,
            "user.create",
            "user",
            &u.id.to_string(),
            serde_json::json!({ "username": u.username }),
        )
        .await;
        Ok(Created::Created(Json(u.into())))
    }

    /// Activate, suspend or disable a user (suspension and disabling sign them out). The last
    /// active System Administrator cannot be suspended or disabled.
    #[oai(path = "/users/:id/status", method = "put", operation_id = "setUserStatus")]
    async fn set_status(
        &self,
        state: Data<&AppState>,
        auth: Guarded<perm::UsersManage>,
        id: Path<i64>,
        body: Json<StatusBody>,
    ) -> ApiResult<Json<UserInfo>> {
        auth.authorize(&state, Permission::UsersManage, &rbac::Resource::Global)?;
        let status = account::AccountStatus::parse(&body.0.status)?;
        // Suspending or disabling the last active administrator is refused (409) inside.
        let u = account::set_status(
            &state.dbs().users,
            id.0,
            status,
            body.0.reason.as_deref(),
            state.clock().now(),
        )
        .await?;
        auth.audit(
            &state,
            "user.status",
            "user",
            &id.0.to_string(),
            serde_json::json!({ "status": status.as_str() }),
        )
        .await;
        Ok(Json(u.into()))
    }

    /// Grant a role (globally, or on one property).
    #[oai(path = "/users/:id/roles", method = "post", operation_id = "grantRole")]
    async fn grant_role(
        &self,
        state: Data<&AppState>,
        auth: Guarded<perm::RolesManage>,
        id: Path<i64>,
        body: Json<RoleGrantBody>,
    ) -> ApiResult<NoContent> {
        auth.authorize(&state, Permission::RolesManage, &rbac::Resource::Global)?;
        account::get(&state.dbs().users, id.0).await?;
        rbac::assign_role(
            &state.dbs().users,
            id.0,
            RoleRef::Name(body.0.role.clone()),
            body.0.property_id,
            Some(auth.user.id),
            state.clock().now(),
        )
        .await?;
        auth.audit(
            &state,
            "role.grant",
            "user",
            &id.0.to_string(),
            serde_json::json!({ "role": body.0.role, "property_id": body.0.property_id }),
        )
        .await;
        Ok(NoContent::Done)
    }

    /// Revoke a role. The last System Administrator cannot be demoted.
    #[oai(path = "/users/:id/roles", method = "delete", operation_id = "revokeRole")]
    async fn revoke_role(
        &self,
        state: Data<&AppState>,
        auth: Guarded<perm::RolesManage>,
        id: Path<i64>,
        body: Json<RoleGrantBody>,
    ) -> ApiResult<NoContent> {
        auth.authorize(&state, Permission::RolesManage, &rbac::Resource::Global)?;
        rbac::revoke_role(
            &state.dbs().users,
            id.0,
            RoleRef::Name(body.0.role.clone()),
            body.0.property_id,
        )
        .await?;
        auth.audit(
            &state,
            "role.revoke",
            "user",
            &id.0.to_string(),
            serde_json::json!({ "role": body.0.role, "property_id": body.0.property_id }),
        )
        .await;
        Ok(NoContent::Done)
    }

    /// Search the audit log, newest first.
    #[oai(path = "/audit/events", method = "get", operation_id = "listAuditEvents")]
    #[allow(clippy::too_many_arguments)]
    async fn audit_events(
        &self,
        state: Data<&AppState>,
        _auth: Guarded<perm::AuditView>,
        action: Query<Option<String>>,
        actor: Query<Option<String>>,
        outcome: Query<Option<String>>,
        from: Query<Option<DateTime<Utc>>>,
        to: Query<Option<DateTime<Utc>>>,
        q: Query<Option<String>>,
        limit: Query<Option<u64>>,
    ) -> ApiResult<Json<Vec<AuditEventInfo>>> {
        let rows = search_audit(
            &state,
            action.0,
            actor.0,
            outcome.0,
            from.0,
            to.0,
            q.0,
            limit.0.unwrap_or(200),
        )
        .await?;
        Ok(Json(rows.into_iter().map(AuditEventInfo::from).collect()))
    }

    /// Export the audit log (same filters) as CSV.
    #[oai(path = "/audit/events.csv", method = "get", operation_id = "exportAuditEvents")]
    #[allow(clippy::too_many_arguments)]
    async fn audit_csv(
        &self,
        state: Data<&AppState>,
        auth: Guarded<perm::AuditExport>,
        action: Query<Option<String>>,
        actor: Query<Option<String>>,
        outcome: Query<Option<String>>,
        from: Query<Option<DateTime<Utc>>>,
        to: Query<Option<DateTime<Utc>>>,
        q: Query<Option<String>>,
    ) -> ApiResult<AuditCsv> {
        let rows =
            search_audit(&state, action.0, actor.0, outcome.0, from.0, to.0, q.0, 10_000).await?;
        let mut out = String::from(
            "id,occurred_at,actor,action,target_kind,target_id,ip,outcome,details,hash\r\n",
        );
        for e in &rows {
            let details = e.details.as_ref().map(|d| d.to_string()).unwrap_or_default();
            let fields = [
                e.id.to_string(),
                e.occurred_at.to_rfc3339(),
                e.actor_name.clone().unwrap_or_default(),
                e.action.clone(),
                e.target_kind.clone().unwrap_or_default(),
                e.target_id.clone().unwrap_or_default(),
                e.ip.clone().unwrap_or_default(),
                e.outcome.clone(),
                details,
                e.hash.clone(),
            ];
            out.push_str(&fields.iter().map(|f| csv_field(f)).collect::<Vec<_>>().join(","));
            out.push_str("\r\n");
        }
        auth.audit(
            &state,
            "audit.export",
            "audit_log",
            "",
            serde_json::json!({ "rows": rows.len() }),
        )
        .await;
        Ok(AuditCsv::Ok(PlainText(out), "attachment; filename=\"pentavision-audit.csv\"".into()))
    }
}
