//! Authorisation of every GraphQL entity read and write, through seaography's lifecycle hooks
//! and the one decision function, [`pv_security::rbac::authorize`].
//!
//! Each entity maps to a read permission and a write rule ([`rule`]). Reads and writes need
//! the permission **globally** (GraphQL has no per-row property checks), except `cameras`,
//! which property-scoped users may read: [`entity_filter`](RbacHooks) narrows the rows to the
//! cameras [`rbac::camera_filter`] allows. Credential, audit and account tables are read-only
//! over GraphQL — they change only through the REST operations that hash, validate and audit.
//! Every allowed mutation is written to the audit log.

use async_graphql::dynamic::ResolverContext;
use chrono::{DateTime, Utc};
use pv_core::db::records::camera;
use pv_security::audit::{Event, Outcome};
use pv_security::rbac::{self, CameraFilter, CameraScope, Permission, Resource, Subject};
use sea_orm::{ColumnTrait, Condition};
use seaography::{GuardAction, LifecycleHooksInterface, OperationType};

use crate::state::AppState;

/// Who runs a GraphQL operation (request data).
#[derive(Debug, Clone)]
pub struct Caller {
    /// Roles and grants.
    pub subject: Subject,
    /// The decision time.
    pub now: DateTime<Utc>,
    /// User id and name, for audit events.
    pub user: Option<(i64, String)>,
    /// Client address, for audit events.
    pub ip: Option<String>,
}

/// How an entity may be written over GraphQL.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Write {
    /// With this permission.
    With(Permission),
    /// Only deletes, with this permission.
    DeleteWith(Permission),
    /// Creates and updates with the first permission, deletes with the second.
    Split(Permission, Permission),
    /// Never (use the REST API).
    Never,
}

/// The read permission and write rule of a GraphQL entity (object name), or None for an
/// unknown entity (refused).
pub fn rule(entity: &str) -> Option<(Permission, Write)> {
    use Permission as P;
    use Write::{Never, Split, With};
    Some(match entity {
        "ApiTokens" | "Sessions" | "Passkeys" | "TotpCredentials" | "RecoveryCodes"
        | "WebauthnCeremonies" | "DisarmPins" | "PinUses" | "AuthThrottles" => {
            (P::UsersManage, Never)
        }
        "Users" | "UserRoles" | "Roles" | "Permissions" | "RolePermissions" => {
            (P::UsersView, Never)
        }
        "UserProperties" | "NotificationSettings" => (P::UsersView, With(P::UsersManage)),
        "AuditEvents" => (P::AuditView, Never),
        "IpRules" | "BlocklistSettings" => (P::SecurityView, With(P::SecurityManage)),
        "CountryPolicies" => (P::SecurityView, Never),
        "Properties" => (P::PropertiesView, With(P::PropertiesManage)),
        "FaceIdentities" | "FaceEmbeddings" | "FacePrivacyPolicies" | "FaceMatches" => {
            (P::FacesView, Split(P::FacesEnroll, P::FacesDelete))
        }
        // Cameras and the segment index change only through REST, which validates stream URLs,
        // seals credentials, applies the change to the running recorder and deletes files with
        // their rows (a row deleted alone would be re-indexed from its file by recovery).
        "Cameras" | "RtmpOutputs" => (P::CamerasView, Never),
        "Segments" | "RecordingGaps" | "MotionEvents" => (P::CamerasPlayback, Never),
        "CameraMacChanges" | "CameraStorageTargets" | "MotionZones" | "RecordingSchedules" => {
            (P::CamerasView, With(P::CamerasManage))
        }
        "StorageProviders"
        | "StorageModules"
        | "StorageModuleHealthChecks"
        | "StorageModuleLogs"
        | "StorageModuleWriteStats" => (P::StorageView, With(P::StorageManage)),
        "UploadQueue" => (P::StorageView, Never),
        _ => return None,
    })
}

/// Decide one entity access (the pure part of the guard, also used by tests).
pub fn decide(caller: Option<&Caller>, entity: &str, action: OperationType) -> Result<(), String> {
    let Some(caller) = caller else {
        return Err("sign in first".into());
    };
    let Some((read, write)) = rule(entity) else {
        return Err(format!("{entity} is not available over GraphQL"));
    };
    let permission = match (action, write) {
        (OperationType::Read, _) => read,
        (_, Write::Never) => {
            return Err(format!("{entity} cannot be changed over GraphQL; use the REST API"));
        }
        (OperationType::Delete, Write::DeleteWith(p)) => p,
        (_, Write::DeleteWith(_)) => {
            return Err(format!("{entity} rows are written by the recorder, not over GraphQL"));
        }
        (_, Write::With(p)) => p,
        (OperationType::Delete, Write::Split(_, p)) => p,
        (_, Write::Split(p, _)) => p,
    };
    let decision = if entity == "Cameras" && action == OperationType::Read {
        rbac::authorize_any_property(&caller.subject, permission, caller.now)
    } else {
        rbac::authorize(&caller.subject, permission, &Resource::Global, caller.now)
    };
    decision.map_err(|d| d.message().to_string())
}

/// The seaography hooks that apply [`decide`].
#[derive(Debug, Default)]
pub struct RbacHooks;

#[sea_orm::entity::prelude::async_trait::async_trait]
impl LifecycleHooksInterface for RbacHooks {
    fn entity_guard(
        &self,
        ctx: &ResolverContext,
        entity: &str,
        action: OperationType,
    ) -> GuardAction {
        match decide(ctx.data_opt::<Caller>(), entity, action) {
            Ok(()) => GuardAction::Allow,
            Err(message) => GuardAction::Block(Some(message)),
        }
    }

    fn entity_filter(
        &self,
        ctx: &ResolverContext,
        entity: &str,
        _action: OperationType,
    ) -> Option<Condition> {
        if entity != "Cameras" {
            return None;
        }
        let caller = ctx.data_opt::<Caller>()?;
        match rbac::camera_filter(&caller.subject, Permission::CamerasView, caller.now) {
            CameraFilter::All => None,
            CameraFilter::Only(properties) => {
                // No property: a condition that matches nothing.
                let mut any = Condition::any().add(camera::Column::Id.lt(i64::MIN + 1));
                for (property_id, scope) in properties {
                    let in_property = camera::Column::PropertyId.eq(property_id);
                    let cond = match scope_condition(&scope) {
                        None => Condition::all().add(in_property),
                        Some(limit) => Condition::all().add(in_property).add(limit),
                    };
                    any = any.add(cond);
                }
                Some(any)
            }
        }
    }

    async fn entity_watch(&self, ctx: &ResolverContext, entity: &str, action: OperationType) {
        if action == OperationType::Read {
            return;
        }
        let (Some(caller), Some(state)) = (ctx.data_opt::<Caller>(), ctx.data_opt::<AppState>())
        else {
            return;
        };
        let name = caller.user.as_ref().map(|(_, n)| n.clone()).unwrap_or_default();
        let verb = match action {
            OperationType::Create => "create",
            OperationType::Update => "update",
            OperationType::Delete => "delete",
            OperationType::Read => "read",
        };
        let mut event = Event::new(&name, &format!("graphql.{verb}"), entity, "");
        event.target_id = None;
        event.actor_user_id = caller.user.as_ref().map(|(id, _)| *id);
        event.ip = caller.ip.clone();
        event.outcome = Outcome::Success;
        if let Err(e) = state.audit().append(event, caller.now).await {
            tracing::error!(error = %e, entity, "cannot audit a GraphQL mutation");
        }
    }
}

/// The rows a limited camera scope allows (None: every camera of the property).
fn scope_condition(scope: &CameraScope) -> Option<Condition> {
    match scope {
        CameraScope::All => None,
        CameraScope::Only { camera_ids, zones } => {
            use sea_orm::sea_query::{Expr, ExprTrait, Func};
            let mut any = Condition::any().add(camera::Column::Id.lt(i64::MIN + 1));
            if !camera_ids.is_empty() {
                any = any.add(camera::Column::Id.is_in(camera_ids.iter().copied()));
            }
            if !zones.is_empty() {
                any = any.add(
                    Expr::expr(Func::lower(Expr::col(camera::Column::Zone)))
                        .is_in(zones.iter().cloned()),
                );
            }
            Some(any)
        }
    }
}
