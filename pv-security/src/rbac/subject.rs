//! [`Subject`]: the authenticated principal a request acts as, with everything
//! [`authorize`](super::authorize) needs, loaded once per request by
//! [`load_subject`](super::load_subject).

use std::collections::{BTreeMap, BTreeSet};

use chrono_tz::Tz;

use super::Permission;
use super::scope::{AccessSchedule, AlarmZones, CameraScope};
use crate::account::AccountStatus;

/// What a user holds on one property: the permissions of their role grants there (or of the
/// membership's role override, which replaces them), limited to the membership's cameras,
/// alarm zones and access windows.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct PropertyGrant {
    /// The property.
    pub property_id: i64,
    /// The property's time zone; None when its name is not an IANA zone (then only
    /// [`AccessSchedule::Always`] opens).
    pub timezone: Option<Tz>,
    /// Effective permissions on the property.
    pub permissions: BTreeSet<Permission>,
    /// Cameras the grant reaches.
    pub cameras: CameraScope,
    /// Alarm zones the grant may control.
    pub alarm_zones: AlarmZones,
    /// When the grant applies.
    pub schedule: AccessSchedule,
}

impl PropertyGrant {
    /// A grant of `permissions` on `property_id` with no limits (all cameras and zones, always).
    pub fn new(
        property_id: i64,
        timezone: Option<Tz>,
        permissions: impl IntoIterator<Item = Permission>,
    ) -> PropertyGrant {
        PropertyGrant {
            property_id,
            timezone,
            permissions: permissions.into_iter().collect(),
            cameras: CameraScope::All,
            alarm_zones: AlarmZones::All,
            schedule: AccessSchedule::Always,
        }
    }
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub(super) struct Account {
    pub(super) user_id: i64,
    pub(super) username: String,
    pub(super) status: AccountStatus,
}

/// An authenticated principal (or nobody). Build it with [`load_subject`](super::load_subject)
/// for a request; the constructors below are for tests and for principals that are not users.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Subject {
    pub(super) account: Option<Account>,
    pub(super) global: BTreeSet<Permission>,
    pub(super) properties: BTreeMap<i64, PropertyGrant>,
    pub(super) token_scope: Option<BTreeSet<Permission>>,
}

impl Subject {
    /// Nobody: every check is refused with [`DenyReason::Anonymous`](super::DenyReason).
    pub fn anonymous() -> Subject {
        Subject {
            account: None,
            global: BTreeSet::new(),
            properties: BTreeMap::new(),
            token_scope: None,
        }
    }

    /// A user holding nothing yet.
    pub fn user(user_id: i64, username: &str, status: AccountStatus) -> Subject {
        Subject {
            account: Some(Account { user_id, username: username.to_string(), status }),
            ..Subject::anonymous()
        }
    }

    /// Add global permissions.
    pub fn with_global(mut self, permissions: impl IntoIterator<Item = Permission>) -> Subject {
        self.global.extend(permissions);
        self
    }

    /// Add (or replace) the grant on `grant.property_id`.
    pub fn with_property(mut self, grant: PropertyGrant) -> Subject {
        self.properties.insert(grant.property_id, grant);
        self
    }

    /// Restrict to the permissions an API token carries: what is effective is the intersection
    /// of the user's permissions and `scope`. Restricting again narrows further.
    pub fn with_token_scope(mut self, scope: impl IntoIterator<Item = Permission>) -> Subject {
        let scope: BTreeSet<Permission> = scope.into_iter().collect();
        self.token_scope = Some(match self.token_scope.take() {
            Some(current) => current.intersection(&scope).copied().collect(),
            None => scope,
        });
        self
    }

    /// The permissions named in an API token's stored `scopes` (a JSON list of keys). Unknown
    /// keys are skipped (they grant nothing); anything but a list is no permission at all.
    pub fn token_scope_from_json(scopes: &serde_json::Value) -> BTreeSet<Permission> {
        match scopes.as_array() {
            Some(list) => {
                list.iter().filter_map(|k| k.as_str().and_then(Permission::from_key)).collect()
            }
            None => {
                tracing::warn!("API token scopes are not a list: no permission granted");
                BTreeSet::new()
            }
        }
    }

    /// Whether this is nobody.
    pub fn is_anonymous(&self) -> bool {
        self.account.is_none()
    }

    /// The user's id.
    pub fn user_id(&self) -> Option<i64> {
        self.account.as_ref().map(|a| a.user_id)
    }

    /// The user's sign-in name.
    pub fn username(&self) -> Option<&str> {
        self.account.as_ref().map(|a| a.username.as_str())
    }

    /// The account's status.
    pub fn account_status(&self) -> Option<AccountStatus> {
        self.account.as_ref().map(|a| a.status)
    }

    /// Permissions held everywhere (before the token scope).
    pub fn global_permissions(&self) -> &BTreeSet<Permission> {
        &self.global
    }

    /// The per-property grants, by property id.
    pub fn property_grants(&self) -> &BTreeMap<i64, PropertyGrant> {
        &self.properties
    }

    /// The API-token restriction, if the request came with a token.
    pub fn token_scope(&self) -> Option<&BTreeSet<Permission>> {
        self.token_scope.as_ref()
    }

    /// Whether the token scope (if any) lets `permission` through.
    pub(super) fn token_allows(&self, permission: Permission) -> bool {
        self.token_scope.as_ref().is_none_or(|s| s.contains(&permission))
    }
}
