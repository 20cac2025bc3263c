//! The built-in roles and their permission sets. The users-database migration
//! `m20261123_000003_seed_roles` seeds the same rows (a migration is a frozen snapshot, so it
//! carries its own copy); the integration test `rbac::seeded_catalogue_matches_the_code` keeps
//! the two equal.

use std::collections::BTreeSet;
use std::fmt;

use super::Permission::{self, *};
use super::permission::PermissionCategory;

/// Where a role is granted (`roles.scope`).
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub enum RoleScope {
    /// System-wide (`global`). May also be granted on one property, where it then applies only
    /// there.
    Global,
    /// On one property (`property`); a grant must name the property.
    Property,
}

impl RoleScope {
    /// The stored name.
    pub fn as_str(self) -> &'static str {
        match self {
            RoleScope::Global => "global",
            RoleScope::Property => "property",
        }
    }

    /// Parse the stored name.
    pub fn from_stored(s: &str) -> Option<RoleScope> {
        match s {
            "global" => Some(RoleScope::Global),
            "property" => Some(RoleScope::Property),
            _ => None,
        }
    }
}

impl fmt::Display for RoleScope {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

/// A role shipped with the product (`roles.built_in`).
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub enum BuiltInRole {
    /// Everything.
    SystemAdministrator,
    /// Runs properties: cameras, alarms, automation everywhere; no system settings.
    PropertyManager,
    /// Installs and maintains cameras; no recorded footage, no alarm control.
    Technician,
    /// Read-only review of configuration and the audit log; no footage.
    Auditor,
    /// Owns the property: everything on it.
    Homeowner,
    /// Lives there: uses cameras, alarm and automation; configures nothing.
    AdultResident,
    /// Lives there, limited.
    ChildResident,
    /// Stays for a while: alarm and comfort controls, no cameras.
    Guest,
    /// Housekeeper or other staff: gets in and out, usually within access windows.
    Housekeeper,
    /// Works on the site for a limited time.
    TemporaryContractor,
    /// A monitoring centre operator verifying alarms.
    MonitoringCenterViewer,
}

impl BuiltInRole {
    /// Every built-in role, global ones first.
    pub const ALL: [BuiltInRole; 11] = [
        BuiltInRole::SystemAdministrator,
        BuiltInRole::PropertyManager,
        BuiltInRole::Technician,
        BuiltInRole::Auditor,
        BuiltInRole::Homeowner,
        BuiltInRole::AdultResident,
        BuiltInRole::ChildResident,
        BuiltInRole::Guest,
        BuiltInRole::Housekeeper,
        BuiltInRole::TemporaryContractor,
        BuiltInRole::MonitoringCenterViewer,
    ];

    /// The role's name (`roles.name`, unique).
    pub fn name(self) -> &'static str {
        match self {
            BuiltInRole::SystemAdministrator => "System Administrator",
            BuiltInRole::PropertyManager => "Property Manager",
            BuiltInRole::Technician => "Technician",
            BuiltInRole::Auditor => "Auditor",
            BuiltInRole::Homeowner => "Homeowner",
            BuiltInRole::AdultResident => "Adult Resident",
            BuiltInRole::ChildResident => "Child Resident",
            BuiltInRole::Guest => "Guest",
            BuiltInRole::Housekeeper => "Housekeeper",
            BuiltInRole::TemporaryContractor => "Temporary Contractor",
            BuiltInRole::MonitoringCenterViewer => "Monitoring Center Viewer",
        }
    }

    /// The built-in role called `name` (exact).
    pub fn from_name(name: &str) -> Option<BuiltInRole> {
        BuiltInRole::ALL.into_iter().find(|r| r.name() == name)
    }

    /// Global or property.
    pub fn scope(self) -> RoleScope {
        match self {
            BuiltInRole::SystemAdministrator
            | BuiltInRole::PropertyManager
            | BuiltInRole::Technician
            | BuiltInRole::Auditor => RoleScope::Global,
            _ => RoleScope::Property,
        }
    }

    /// One line for administrators (`roles.description`).
    pub fn description(self) -> &'static str {
        match self {
            BuiltInRole::SystemAdministrator => "Full control of the system",
            BuiltInRole::PropertyManager => {
                "Runs properties: cameras, alarms and automation everywhere, property settings; no system or security settings, no role definitions"
            }
            BuiltInRole::Technician => {
                "Installs and maintains cameras and panels: live view, camera settings, PTZ, diagnostics; no recorded footage, no alarm control"
            }
            BuiltInRole::Auditor => {
                "Read-only: settings, users, properties and the audit log (with export); no video, no face data"
            }
            BuiltInRole::Homeowner => "Everything on the property, including its members",
            BuiltInRole::AdultResident => {
                "Cameras (live, playback, export, PTZ), alarm control and automation; configures nothing"
            }
            BuiltInRole::ChildResident => "Live view, arm and disarm, lights and intercom",
            BuiltInRole::Guest => "Arm and disarm, locks and comfort controls; no cameras",
            BuiltInRole::Housekeeper => {
                "Housekeeper or staff: arm, disarm, locks and lights, usually within access windows"
            }
            BuiltInRole::TemporaryContractor => {
                "Arm, disarm, locks and garage, usually within access windows and zones"
            }
            BuiltInRole::MonitoringCenterViewer => {
                "Alarm verification: alarm state, acknowledge, live view and playback"
            }
        }
    }

    /// The permissions the role grants.
    pub fn permissions(self) -> BTreeSet<Permission> {
        let all = |c| Permission::in_category(c);
        match self {
            BuiltInRole::SystemAdministrator => Permission::ALL.iter().copied().collect(),
            BuiltInRole::PropertyManager => all(PermissionCategory::Cameras)
                .chain(all(PermissionCategory::Alarms))
                .chain(all(PermissionCategory::Automation))
                .chain([UsersView, PropertiesView, PropertiesManage, AuditView, SystemView])
                .collect(),
            BuiltInRole::Technician => [
                SystemView,
                ServicesRestart,
                PropertiesView,
                StorageView,
                CamerasView,
                CamerasLive,
                CamerasManage,
                CamerasPtz,
                AlarmsView,
                AlarmsDiagnostics,
                AutomationView,
            ]
            .into(),
            BuiltInRole::Auditor => [
                SystemView,
                UsersView,
                AuditView,
                AuditExport,
                SecurityView,
                PropertiesView,
                StorageView,
                CamerasView,
                AlarmsView,
                AutomationView,
            ]
            .into(),
            BuiltInRole::Homeowner => all(PermissionCategory::Cameras)
                .chain(all(PermissionCategory::Alarms))
                .chain(all(PermissionCategory::Automation))
                .chain([
                    UsersView,
                    UsersManage,
                    PropertiesView,
                    PropertiesManage,
                    AuditView,
                    FacesView,
                    FacesEnroll,
                    FacesDelete,
                ])
                .collect(),
            BuiltInRole::AdultResident => [
                UsersView,
                PropertiesView,
                FacesView,
                CamerasView,
                CamerasLive,
                CamerasPlayback,
                CamerasExport,
                CamerasPtz,
                AlarmsView,
                AlarmsArm,
                AlarmsDisarm,
                AlarmsSilence,
                AlarmsAcknowledge,
                AlarmsBypass,
                AutomationView,
                AutomationRun,
                AutomationLocks,
                AutomationGarage,
                AutomationHvac,
                AutomationLighting,
                AutomationIntercom,
            ]
            .into(),
            BuiltInRole::ChildResident => [
                PropertiesView,
                CamerasView,
                CamerasLive,
                AlarmsView,
                AlarmsArm,
                AlarmsDisarm,
                AutomationView,
                AutomationLighting,
                AutomationIntercom,
            ]
            .into(),
            BuiltInRole::Guest => [
                PropertiesView,
                AlarmsView,
                AlarmsArm,
                AlarmsDisarm,
                AutomationView,
                AutomationLocks,
                AutomationHvac,
                AutomationLighting,
                AutomationIntercom,
            ]
            .into(),
            BuiltInRole::Housekeeper => [
                PropertiesView,
                AlarmsView,
                AlarmsArm,
                AlarmsDisarm,
                AutomationView,
                AutomationLocks,
                AutomationLighting,
            ]
            .into(),
            BuiltInRole::TemporaryContractor => [
                PropertiesView,
                AlarmsView,
                AlarmsArm,
                AlarmsDisarm,
                AutomationView,
                AutomationLocks,
                AutomationGarage,
            ]
            .into(),
            BuiltInRole::MonitoringCenterViewer => [
                PropertiesView,
                CamerasView,
                CamerasLive,
                CamerasPlayback,
                AlarmsView,
                AlarmsAcknowledge,
            ]
            .into(),
        }
    }
}

impl fmt::Display for BuiltInRole {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.name())
    }
}

/// The markdown table of the built-in roles shown in the [`rbac`](super) module docs, one row
/// per role: name, scope, then per category `all`, `—` or the keys granted.
pub fn role_table() -> String {
    let mut out = String::from("| Role | Scope | System | Cameras | Alarms | Automation |\n");
    out.push_str("|---|---|---|---|---|---|\n");
    for role in BuiltInRole::ALL {
        let perms = role.permissions();
        out.push_str(&format!("| {} | {} |", role.name(), role.scope()));
        for category in PermissionCategory::ALL {
            let held: Vec<&str> = Permission::in_category(category)
                .filter(|p| perms.contains(p))
                .map(Permission::as_str)
                .collect();
            let cell = if held.is_empty() {
                "—".to_string()
            } else if held.len() == Permission::in_category(category).count() {
                "all".to_string()
            } else {
                held.join(", ")
            };
            out.push_str(&format!(" {cell} |"));
        }
        out.push('\n');
    }
    out
}
