//! Role-based access control: one function, [`authorize`], decides whether a [`Subject`] may use
//! a [`Permission`] on a [`Resource`] at a given time. It is pure (no I/O, time is a parameter);
//! [`load_subject`] reads everything it needs from the users database in five queries.
//!
//! # Rules
//!
//! 1. Nobody ([`Subject::anonymous`]) is refused everything ([`DenyReason::Anonymous`]); an
//!    account that is not `active` (suspended, disabled, or an unknown status) is refused
//!    everything ([`DenyReason::AccountInactive`]).
//! 2. An API token's scope restricts: the effective permissions are the intersection of the
//!    user's and the token's ([`Subject::with_token_scope`]).
//! 3. Permissions of **global** grants (a role granted with no property) apply to every resource,
//!    with no camera, zone or time limit.
//! 4. Permissions of **property** grants apply to that property and to its cameras and alarm
//!    zones only — never to [`Resource::Global`]. On one property the effective set is the union
//!    of the roles granted there (`user_roles.property_id`), or, when the membership
//!    (`user_properties`) names a `role_override_id`, that role's permissions alone. A global-
//!    scope role granted on one property (a Property Manager of one site) is a property grant.
//!    Role grants without a membership row apply without limits.
//! 5. The membership limits its property grant:
//!    - `camera_scope` (NULL: all cameras; else camera ids and zone names) limits every
//!      permission on a [`Resource::Camera`]; on [`Resource::Property`] a limited scope refuses
//!      camera-category permissions other than `cameras.view` (no property-wide camera actions
//!      for someone who may see only some cameras);
//!    - `authorized_zones` (empty: all zones) limits alarm permissions other than `alarms.view`
//!      on [`Resource::Alarm`] (a zone-less alarm resource, the whole panel, needs all zones) and
//!      on [`Resource::Property`];
//!    - `access_windows` (empty: always) opens the grant only inside its weekly windows, in the
//!      **property's** IANA time zone, DST-correct ([`AccessSchedule`]).
//!
//!    Unreadable stored limits grant nothing (fail closed).
//! 6. Reasons are checked in this order: anonymous, inactive, token scope (missing permission),
//!    global grant (allowed), property grant holding the permission (else missing permission),
//!    scope (out of scope), window (outside access window).
//!
//! # Lists for property-only users
//!
//! A list endpoint cannot ask about each row with [`Resource::Global`] (a property-only user
//! holds nothing globally). It asks [`authorize_any_property`] whether the permission is held
//! anywhere right now (403 if not), then filters rows with [`camera_filter`] or
//! [`property_filter`], which agree with [`authorize`] row by row at the same instant.
//!
//! # Built-in roles
//!
//! Seeded by the users-database migration `m20261123_000003_seed_roles` (see [`BuiltInRole`]),
//! as changed by later migrations (`m20261205_000001_faces_permissions` replaced `faces.manage`
//! by `faces.enroll` and `faces.delete`, for every role and API token that had it); `all`
//! means every permission of the category.
//!
//! | Role | Scope | System | Cameras | Alarms | Automation |
//! |---|---|---|---|---|---|
//! | System Administrator | global | all | all | all | all |
//! | Property Manager | global | system.view, users.view, audit.view, properties.view, properties.manage | all | all | all |
//! | Technician | global | system.view, services.restart, properties.view, storage.view | cameras.view, cameras.live, cameras.manage, cameras.ptz | alarms.view, alarms.diagnostics | automation.view |
//! | Auditor | global | system.view, users.view, audit.view, audit.export, security.view, properties.view, storage.view | cameras.view | alarms.view | automation.view |
//! | Homeowner | property | users.view, users.manage, audit.view, properties.view, properties.manage, faces.view, faces.enroll, faces.delete | all | all | all |
//! | Adult Resident | property | users.view, properties.view, faces.view | cameras.view, cameras.live, cameras.playback, cameras.export, cameras.ptz | alarms.view, alarms.arm, alarms.disarm, alarms.silence, alarms.acknowledge, alarms.bypass | automation.view, automation.run, automation.locks, automation.garage, automation.hvac, automation.lighting, automation.intercom |
//! | Child Resident | property | properties.view | cameras.view, cameras.live | alarms.view, alarms.arm, alarms.disarm | automation.view, automation.lighting, automation.intercom |
//! | Guest | property | properties.view | — | alarms.view, alarms.arm, alarms.disarm | automation.view, automation.locks, automation.hvac, automation.lighting, automation.intercom |
//! | Housekeeper | property | properties.view | — | alarms.view, alarms.arm, alarms.disarm | automation.view, automation.locks, automation.lighting |
//! | Temporary Contractor | property | properties.view | — | alarms.view, alarms.arm, alarms.disarm | automation.view, automation.locks, automation.garage |
//! | Monitoring Center Viewer | property | properties.view | cameras.view, cameras.live, cameras.playback | alarms.view, alarms.acknowledge | — |
//!
//! Choices: the Technician sees live video and maintains cameras but gets no recorded footage
//! (playback, export, deletion) and no alarm control; the Auditor reads configuration, users,
//! properties and the audit log (with export) but no video (not even live) and no face data;
//! on a property, `users.manage` means managing that property's members and `audit.view` its
//! events. Guests, housekeepers and contractors get no camera permission; owners add cameras
//! with a role override or an extra grant limited by camera scope.
//!
//! # Role management
//!
//! [`assign_role`], [`revoke_role`], [`set_admin`], [`list_roles`] and [`role_permissions`]
//! change and read grants; the caller writes the audit event (`role.grant`, `role.revoke`).
//! The last active System Administrator cannot lose that role ([`ensure_not_last_admin`], also
//! for callers that suspend or delete users).
//!
//! ```
//! use chrono::Utc;
//! use pv_security::rbac::{AccountStatus, Permission, PropertyGrant, Resource, Subject, authorize};
//!
//! let alice = Subject::user(7, "alice", AccountStatus::Active)
//!     .with_property(PropertyGrant::new(1, Some(chrono_tz::Tz::UTC), [Permission::CamerasLive]));
//! let cam = Resource::Camera { id: 3, property_id: Some(1), zone: None };
//! assert!(authorize(&alice, Permission::CamerasLive, &cam, Utc::now()).is_ok());
//! assert!(authorize(&alice, Permission::CamerasLive, &Resource::Global, Utc::now()).is_err());
//! ```

use std::collections::{BTreeMap, BTreeSet};
use std::fmt;

use chrono::{DateTime, Utc};

mod builtin;
mod load;
mod manage;
mod permission;
mod scope;
mod subject;

pub use crate::account::AccountStatus;
pub use builtin::{BuiltInRole, RoleScope, role_table};
pub use load::load_subject;
pub use manage::{
    Grant, RoleInfo, RoleRef, assign_role, ensure_not_last_admin, list_roles, revoke_role,
    role_permissions, set_admin,
};
pub use permission::{Permission, PermissionCategory};
pub use scope::{AccessSchedule, AccessWindow, AlarmZones, CameraScope};
pub use subject::{PropertyGrant, Subject};

/// What a permission is used on.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub enum Resource {
    /// The system as a whole (settings, users, roles, audit, security, storage).
    Global,
    /// One property (site).
    Property(i64),
    /// One camera; `property_id` and `zone` are the camera's own (records database).
    Camera {
        /// Camera id.
        id: i64,
        /// The property it belongs to; None: reachable only through global grants.
        property_id: Option<i64>,
        /// Its zone name, if any.
        zone: Option<String>,
    },
    /// A property's alarm panel, or one zone of it.
    Alarm {
        /// The property.
        property_id: i64,
        /// One zone; None for the whole panel.
        zone: Option<String>,
    },
}

/// Why [`authorize`] refused.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum DenyReason {
    /// Not signed in.
    Anonymous,
    /// The account is suspended or disabled.
    AccountInactive,
    /// The permission is not held here (or the API token does not carry it).
    MissingPermission,
    /// Held on the property, but not now.
    OutsideAccessWindow,
    /// Held on the property, but not for this camera or alarm zone.
    OutOfScope,
}

impl DenyReason {
    /// A stable machine name (`anonymous`, `account_inactive`, `missing_permission`,
    /// `outside_access_window`, `out_of_scope`).
    pub fn as_str(self) -> &'static str {
        match self {
            DenyReason::Anonymous => "anonymous",
            DenyReason::AccountInactive => "account_inactive",
            DenyReason::MissingPermission => "missing_permission",
            DenyReason::OutsideAccessWindow => "outside_access_window",
            DenyReason::OutOfScope => "out_of_scope",
        }
    }
}

/// A refusal: a machine reason and a message fit to show the user (no secrets, no ids).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Denied {
    reason: DenyReason,
    permission: Permission,
    message: String,
}

impl Denied {
    fn new(reason: DenyReason, permission: Permission, message: impl Into<String>) -> Denied {
        Denied { reason, permission, message: message.into() }
    }

    fn missing(permission: Permission) -> Denied {
        Denied::new(
            DenyReason::MissingPermission,
            permission,
            format!("you do not have the '{permission}' permission here"),
        )
    }

    /// Why.
    pub fn reason(&self) -> DenyReason {
        self.reason
    }

    /// The permission that was asked for.
    pub fn permission(&self) -> Permission {
        self.permission
    }

    /// The human message.
    pub fn message(&self) -> &str {
        &self.message
    }

    /// `Unauthenticated` for nobody, `PermissionDenied` otherwise.
    pub fn kind(&self) -> pv_core::ErrorKind {
        match self.reason {
            DenyReason::Anonymous => pv_core::ErrorKind::Unauthenticated,
            _ => pv_core::ErrorKind::PermissionDenied,
        }
    }
}

impl fmt::Display for Denied {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.message)
    }
}

impl std::error::Error for Denied {}

/// Rules 1 and 2: someone active whose token carries `permission`.
fn precheck(subject: &Subject, permission: Permission) -> Result<(), Denied> {
    let Some(account) = &subject.account else {
        return Err(Denied::new(DenyReason::Anonymous, permission, "sign in to continue"));
    };
    if account.status != AccountStatus::Active {
        return Err(Denied::new(
            DenyReason::AccountInactive,
            permission,
            format!("this account is {}", account.status.as_str()),
        ));
    }
    if !subject.token_allows(permission) {
        return Err(Denied::new(
            DenyReason::MissingPermission,
            permission,
            format!("the API token used does not carry the '{permission}' permission"),
        ));
    }
    Ok(())
}

/// Whether `grant`'s camera and zone limits let `permission` reach `resource` (one of its
/// property's resources).
fn in_scope(grant: &PropertyGrant, permission: Permission, resource: &Resource) -> bool {
    match resource {
        Resource::Global => false,
        Resource::Camera { id, zone, .. } => grant.cameras.allows(*id, zone.as_deref()),
        Resource::Property(_) => match permission.category() {
            PermissionCategory::Cameras => {
                permission == Permission::CamerasView || grant.cameras.is_all()
            }
            PermissionCategory::Alarms => {
                permission == Permission::AlarmsView || grant.alarm_zones.allows(None)
            }
            _ => true,
        },
        Resource::Alarm { zone, .. } => {
            permission.category() != PermissionCategory::Alarms
                || permission == Permission::AlarmsView
                || grant.alarm_zones.allows(zone.as_deref())
        }
    }
}

/// Decide whether `subject` may use `permission` on `resource` at `now`. The only place an
/// access decision is made; see the [module docs](self) for the rules.
pub fn authorize(
    subject: &Subject,
    permission: Permission,
    resource: &Resource,
    now: DateTime<Utc>,
) -> Result<(), Denied> {
    precheck(subject, permission)?;
    if subject.global.contains(&permission) {
        return Ok(());
    }
    let property_id = match resource {
        Resource::Global | Resource::Camera { property_id: None, .. } => {
            return Err(Denied::missing(permission));
        }
        Resource::Property(p) | Resource::Camera { property_id: Some(p), .. } => *p,
        Resource::Alarm { property_id, .. } => *property_id,
    };
    let grant = subject
        .properties
        .get(&property_id)
        .filter(|g| g.permissions.contains(&permission))
        .ok_or_else(|| Denied::missing(permission))?;
    if !in_scope(grant, permission, resource) {
        return Err(Denied::new(
            DenyReason::OutOfScope,
            permission,
            "this is outside the cameras or alarm zones you may use",
        ));
    }
    if !grant.schedule.is_open(grant.timezone, now) {
        return Err(Denied::new(
            DenyReason::OutsideAccessWindow,
            permission,
            "your access to this property is limited to set hours",
        ));
    }
    Ok(())
}

/// Whether `subject` holds `permission` somewhere right now: globally, or on at least one
/// property whose access window is open. What a list endpoint checks before filtering with
/// [`camera_filter`] or [`property_filter`].
pub fn authorize_any_property(
    subject: &Subject,
    permission: Permission,
    now: DateTime<Utc>,
) -> Result<(), Denied> {
    precheck(subject, permission)?;
    if subject.global.contains(&permission) {
        return Ok(());
    }
    let mut holding = subject.properties.values().filter(|g| g.permissions.contains(&permission));
    let Some(first) = holding.next() else {
        return Err(Denied::missing(permission));
    };
    if std::iter::once(first).chain(holding).any(|g| g.schedule.is_open(g.timezone, now)) {
        Ok(())
    } else {
        Err(Denied::new(
            DenyReason::OutsideAccessWindow,
            permission,
            "your access is limited to set hours",
        ))
    }
}

/// Which cameras a list may show, from [`camera_filter`].
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum CameraFilter {
    /// Every camera (a global grant).
    All,
    /// Cameras of these properties, each within its scope; empty: none.
    Only(BTreeMap<i64, CameraScope>),
}

impl CameraFilter {
    /// Whether the camera `camera_id` of `property_id` in `zone` may be shown; the same answer
    /// as [`authorize`] on that camera at the same instant.
    pub fn allows(&self, camera_id: i64, property_id: Option<i64>, zone: Option<&str>) -> bool {
        match self {
            CameraFilter::All => true,
            CameraFilter::Only(by_property) => property_id
                .and_then(|p| by_property.get(&p))
                .is_some_and(|scope| scope.allows(camera_id, zone)),
        }
    }

    /// Whether nothing at all may be shown.
    pub fn is_empty(&self) -> bool {
        matches!(self, CameraFilter::Only(m) if m.is_empty())
    }
}

/// The cameras on which `subject` holds `permission` at `now`, for list endpoints.
pub fn camera_filter(
    subject: &Subject,
    permission: Permission,
    now: DateTime<Utc>,
) -> CameraFilter {
    if precheck(subject, permission).is_err() {
        return CameraFilter::Only(BTreeMap::new());
    }
    if subject.global.contains(&permission) {
        return CameraFilter::All;
    }
    CameraFilter::Only(
        open_grants(subject, permission, now).map(|g| (g.property_id, g.cameras.clone())).collect(),
    )
}

/// Which properties a list may show, from [`property_filter`].
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum PropertyFilter {
    /// Every property (a global grant).
    All,
    /// These properties; empty: none.
    Only(BTreeSet<i64>),
}

impl PropertyFilter {
    /// Whether `property_id` may be shown.
    pub fn allows(&self, property_id: i64) -> bool {
        match self {
            PropertyFilter::All => true,
            PropertyFilter::Only(ids) => ids.contains(&property_id),
        }
    }
}

/// The properties on which `subject` holds `permission` at `now` (camera and zone limits are
/// not applied: use [`camera_filter`] for cameras), for list endpoints.
pub fn property_filter(
    subject: &Subject,
    permission: Permission,
    now: DateTime<Utc>,
) -> PropertyFilter {
    if precheck(subject, permission).is_err() {
        return PropertyFilter::Only(BTreeSet::new());
    }
    if subject.global.contains(&permission) {
        return PropertyFilter::All;
    }
    PropertyFilter::Only(open_grants(subject, permission, now).map(|g| g.property_id).collect())
}

fn open_grants(
    subject: &Subject,
    permission: Permission,
    now: DateTime<Utc>,
) -> impl Iterator<Item = &PropertyGrant> {
    subject
        .properties
        .values()
        .filter(move |g| g.permissions.contains(&permission) && g.schedule.is_open(g.timezone, now))
}

#[cfg(test)]
mod tests;
