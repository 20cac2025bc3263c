//! The permission catalogue: every action the code checks, with a stable dotted key.
//!
//! Keys are part of the API (the web layer, API-token scopes and the `permissions` table use
//! them): never rename one; add a new permission instead.

use std::fmt;
use std::str::FromStr;

use crate::{Error, Result};

/// How permissions are grouped in the interface (the `category` column).
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub enum PermissionCategory {
    /// Administration: system settings, users, roles, audit, security, storage, faces.
    System,
    /// Cameras and recordings.
    Cameras,
    /// The alarm panel.
    Alarms,
    /// Home automation: locks, gates, HVAC, lighting, intercom, integrations.
    Automation,
}

impl PermissionCategory {
    /// Every category, in display order.
    pub const ALL: [PermissionCategory; 4] = [
        PermissionCategory::System,
        PermissionCategory::Cameras,
        PermissionCategory::Alarms,
        PermissionCategory::Automation,
    ];

    /// The stored name: `system`, `cameras`, `alarms` or `automation`.
    pub fn as_str(self) -> &'static str {
        match self {
            PermissionCategory::System => "system",
            PermissionCategory::Cameras => "cameras",
            PermissionCategory::Alarms => "alarms",
            PermissionCategory::Automation => "automation",
        }
    }
}

impl fmt::Display for PermissionCategory {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

macro_rules! permissions {
    ($($(#[$doc:meta])* $variant:ident = $key:literal, $category:ident, $description:literal;)+) => {
        /// One thing a user may be allowed to do. Granted through roles; checked only by
        /// [`authorize`](super::authorize) and its list helpers.
        #[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash)]
        #[non_exhaustive]
        pub enum Permission {
            $($(#[$doc])* $variant,)+
        }

        impl Permission {
            /// Every permission, in catalogue order.
            pub const ALL: &'static [Permission] = &[$(Permission::$variant,)+];

            /// The stable dotted key, e.g. `cameras.live`.
            pub fn as_str(self) -> &'static str {
                match self {
                    $(Permission::$variant => $key,)+
                }
            }

            /// The group it is shown in.
            pub fn category(self) -> PermissionCategory {
                match self {
                    $(Permission::$variant => PermissionCategory::$category,)+
                }
            }

            /// One line for administrators.
            pub fn description(self) -> &'static str {
                match self {
                    $(Permission::$variant => $description,)+
                }
            }

            /// The permission with this key, if the key is known.
            pub fn from_key(key: &str) -> Option<Permission> {
                match key {
                    $($key => Some(Permission::$variant),)+
                    _ => None,
                }
            }
        }
    };
}

permissions! {
    /// See the system status page and version.
    SystemView = "system.view", System, "See system status, versions and health";
    /// Change system settings.
    SystemConfigure = "system.configure", System, "Change system settings";
    /// List users and see their profiles.
    UsersView = "users.view", System, "List users and see their profiles";
    /// Create, edit, suspend and delete users (on a property: its members).
    UsersManage = "users.manage", System, "Create, edit, suspend and remove users and their property access";
    /// Edit role definitions and grant roles.
    RolesManage = "roles.manage", System, "Define roles and grant or revoke them";
    /// Read the audit log.
    AuditView = "audit.view", System, "Read the audit log";
    /// Export the audit log.
    AuditExport = "audit.export", System, "Export the audit log";
    /// See IP rules, country policy and blocklist settings.
    SecurityView = "security.view", System, "See IP rules, country policy and blocklist settings";
    /// Change IP rules, country policy and blocklist settings.
    SecurityManage = "security.manage", System, "Change IP rules, country policy and blocklist settings";
    /// Restart the allow-listed services.
    ServicesRestart = "services.restart", System, "Restart PentaVision services";
    /// See properties (sites).
    PropertiesView = "properties.view", System, "See properties, their zones and members";
    /// Create and edit properties, zones, camera groupings and alarm panels.
    PropertiesManage = "properties.manage", System, "Create and edit properties, zones and alarm panels";
    /// See storage modules and their health.
    StorageView = "storage.view", System, "See storage modules, usage and health";
    /// Configure storage modules.
    StorageManage = "storage.manage", System, "Configure storage modules and destinations";
    /// See enrolled face identities and matches.
    FacesView = "faces.view", System, "See enrolled face identities and matches";
    /// Enrol people, add their face images, name or reject recognised faces.
    FacesEnroll = "faces.enroll", System, "Enroll people, add face images and name recognised faces";
    /// Delete enrolled people and their face images.
    FacesDelete = "faces.delete", System, "Delete enrolled people and their face images";

    /// See cameras (names, status, snapshots).
    CamerasView = "cameras.view", Cameras, "See cameras, their status and snapshots";
    /// Watch live video.
    CamerasLive = "cameras.live", Cameras, "Watch live video";
    /// Play back recordings.
    CamerasPlayback = "cameras.playback", Cameras, "Play back recordings";
    /// Export footage.
    CamerasExport = "cameras.export", Cameras, "Export footage";
    /// Add, edit and remove cameras.
    CamerasManage = "cameras.manage", Cameras, "Add, edit and remove cameras";
    /// Move PTZ cameras.
    CamerasPtz = "cameras.ptz", Cameras, "Pan, tilt and zoom cameras";
    /// Configure recording retention.
    CamerasRetention = "cameras.retention", Cameras, "Configure recording retention";
    /// Delete recordings.
    RecordingsDelete = "recordings.delete", Cameras, "Delete recordings";

    /// See the alarm panel's state and its log.
    AlarmsView = "alarms.view", Alarms, "See alarm state and the alarm log";
    /// Arm the alarm.
    AlarmsArm = "alarms.arm", Alarms, "Arm the alarm";
    /// Disarm the alarm.
    AlarmsDisarm = "alarms.disarm", Alarms, "Disarm the alarm";
    /// Silence a sounding alarm.
    AlarmsSilence = "alarms.silence", Alarms, "Silence a sounding alarm";
    /// Acknowledge alerts.
    AlarmsAcknowledge = "alarms.acknowledge", Alarms, "Acknowledge alerts";
    /// Bypass zones.
    AlarmsBypass = "alarms.bypass", Alarms, "Bypass alarm zones";
    /// Configure panels and zones.
    AlarmsManage = "alarms.manage", Alarms, "Configure alarm panels and zones";
    /// Run fire-panel and alarm diagnostics.
    AlarmsDiagnostics = "alarms.diagnostics", Alarms, "Run fire-panel and alarm diagnostics";

    /// See automation devices and their state.
    AutomationView = "automation.view", Automation, "See automation devices and their state";
    /// Run scenes and routines.
    AutomationRun = "automation.run", Automation, "Run scenes and routines";
    /// Lock and unlock doors.
    AutomationLocks = "automation.locks", Automation, "Lock and unlock doors";
    /// Open and close garage doors and gates.
    AutomationGarage = "automation.garage", Automation, "Open and close garage doors and gates";
    /// Change heating and cooling.
    AutomationHvac = "automation.hvac", Automation, "Change heating and cooling";
    /// Switch lights.
    AutomationLighting = "automation.lighting", Automation, "Switch lights";
    /// Use the intercom.
    AutomationIntercom = "automation.intercom", Automation, "Use the intercom";
    /// Configure external integrations.
    AutomationIntegrations = "automation.integrations", Automation, "Configure external integrations";
    /// Configure devices, scenes and rules.
    AutomationManage = "automation.manage", Automation, "Configure automation devices, scenes and rules";
}

impl Permission {
    /// Whether this is a read-only `*.view` permission (the one a list endpoint checks).
    pub fn is_view(self) -> bool {
        self.as_str().ends_with(".view")
    }

    /// Every permission of `category`, in catalogue order.
    pub fn in_category(category: PermissionCategory) -> impl Iterator<Item = Permission> {
        Permission::ALL.iter().copied().filter(move |p| p.category() == category)
    }
}

impl fmt::Display for Permission {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

impl FromStr for Permission {
    type Err = Error;

    fn from_str(s: &str) -> Result<Self> {
        Permission::from_key(s.trim()).ok_or_else(|| {
            let s = pv_core::input::quote(s.trim());
            Error::InvalidInput(format!("{s} is not a known permission"))
        })
    }
}

impl serde::Serialize for Permission {
    fn serialize<S: serde::Serializer>(&self, s: S) -> std::result::Result<S::Ok, S::Error> {
        s.serialize_str(self.as_str())
    }
}

impl<'de> serde::Deserialize<'de> for Permission {
    fn deserialize<D: serde::Deserializer<'de>>(d: D) -> std::result::Result<Self, D::Error> {
        let key = String::deserialize(d)?;
        Permission::from_key(&key)
            .ok_or_else(|| serde::de::Error::custom(format!("unknown permission '{key}'")))
    }
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]
    use super::*;

    #[test]
    fn keys_round_trip_and_are_unique() {
        let mut seen = std::collections::BTreeSet::new();
        for &p in Permission::ALL {
            assert!(seen.insert(p.as_str()), "duplicate key {p}");
            assert_eq!(p.as_str().parse::<Permission>().ok(), Some(p));
            let (prefix, _) = p.as_str().split_once('.').unwrap();
            assert!(!prefix.is_empty(), "{p} is dotted");
            assert!(!p.description().is_empty());
        }
        assert!("cameras.live_view".parse::<Permission>().is_err());
        assert_eq!(Permission::in_category(PermissionCategory::Alarms).count(), 8);
        assert!(Permission::CamerasView.is_view() && !Permission::CamerasLive.is_view());
    }

    #[test]
    fn serde_uses_the_key() {
        let json =
            serde_json::to_string(&[Permission::CamerasLive, Permission::AlarmsArm]).unwrap();
        assert_eq!(json, r#"["cameras.live","alarms.arm"]"#);
        let back: Vec<Permission> = serde_json::from_str(&json).unwrap();
        assert_eq!(back, [Permission::CamerasLive, Permission::AlarmsArm]);
        assert!(serde_json::from_str::<Permission>(r#""nope.x""#).is_err());
    }
}
