//! Unit tests of the pure decision: built-in roles, token scope, inactive accounts, camera
//! scope and zones, access windows across daylight-saving changes, list filters.

#![allow(clippy::unwrap_used)]

use chrono::{DateTime, TimeZone, Utc};
use chrono_tz::Tz;
use serde_json::json;

use super::Permission::*;
use super::*;

fn t(rfc3339: &str) -> DateTime<Utc> {
    DateTime::parse_from_rfc3339(rfc3339).unwrap().to_utc()
}

fn now() -> DateTime<Utc> {
    Utc.with_ymd_and_hms(2026, 11, 24, 12, 0, 0).unwrap()
}

fn active(id: i64) -> Subject {
    Subject::user(id, &format!("user{id}"), AccountStatus::Active)
}

fn global(role: BuiltInRole) -> Subject {
    active(1).with_global(role.permissions())
}

fn on_property(role: BuiltInRole, property_id: i64) -> Subject {
    active(2).with_property(PropertyGrant::new(property_id, Some(Tz::UTC), role.permissions()))
}

fn cam(id: i64, property_id: i64, zone: Option<&str>) -> Resource {
    Resource::Camera { id, property_id: Some(property_id), zone: zone.map(str::to_string) }
}

fn reason(r: Result<(), Denied>) -> Option<DenyReason> {
    r.err().map(|d| d.reason())
}

#[test]
fn module_docs_show_the_role_table() {
    let docs = include_str!("../rbac.rs");
    let table = role_table();
    for line in table.lines() {
        assert!(docs.contains(&format!("//! {line}\n")), "rbac.rs docs lack the row:\n{line}");
    }
}

#[test]
fn system_administrator_may_do_everything_everywhere() {
    let s = global(BuiltInRole::SystemAdministrator);
    for &p in Permission::ALL {
        for r in [Resource::Global, Resource::Property(9), cam(1, 9, None)] {
            assert!(authorize(&s, p, &r, now()).is_ok(), "{p} on {r:?}");
        }
    }
}

#[test]
fn global_roles_key_permissions() {
    let g = Resource::Global;
    let pm = global(BuiltInRole::PropertyManager);
    for p in [CamerasPlayback, AlarmsDisarm, AutomationManage, PropertiesManage, UsersView] {
        assert!(authorize(&pm, p, &g, now()).is_ok(), "manager: {p}");
    }
    for p in [SystemConfigure, SecurityManage, RolesManage, UsersManage] {
        assert_eq!(reason(authorize(&pm, p, &g, now())), Some(DenyReason::MissingPermission));
    }

    let tech = global(BuiltInRole::Technician);
    for p in [CamerasView, CamerasLive, CamerasManage, CamerasPtz, StorageView, SystemView] {
        assert!(authorize(&tech, p, &g, now()).is_ok(), "technician: {p}");
    }
    for p in [CamerasPlayback, CamerasExport, RecordingsDelete, AlarmsDisarm, SystemConfigure] {
        assert!(authorize(&tech, p, &g, now()).is_err(), "technician: {p}");
    }

    let auditor = global(BuiltInRole::Auditor);
    for p in [AuditView, AuditExport, SecurityView, UsersView, CamerasView] {
        assert!(authorize(&auditor, p, &g, now()).is_ok(), "auditor: {p}");
    }
    for &p in Permission::ALL {
        if !p.is_view() && p != AuditExport {
            assert!(authorize(&auditor, p, &g, now()).is_err(), "auditor changes nothing: {p}");
        }
    }
    assert!(authorize(&auditor, CamerasLive, &g, now()).is_err(), "no live video");
    assert!(authorize(&auditor, FacesView, &g, now()).is_err(), "no face data");
}

#[test]
fn property_roles_key_permissions() {
    let p = Resource::Property(5);
    let allowed =
        |role: BuiltInRole, perm| authorize(&on_property(role, 5), perm, &p, now()).is_ok();
    use BuiltInRole::*;
    for perm in [
        UsersManage,
        PropertiesManage,
        CamerasManage,
        RecordingsDelete,
        AlarmsManage,
        FacesEnroll,
        FacesDelete,
    ] {
        assert!(allowed(Homeowner, perm), "homeowner: {perm}");
    }
    assert!(!allowed(Homeowner, SystemConfigure) && !allowed(Homeowner, RolesManage));
    for perm in [CamerasPlayback, CamerasExport, AlarmsDisarm, AlarmsBypass, AutomationGarage] {
        assert!(allowed(AdultResident, perm), "adult: {perm}");
    }
    for perm in [CamerasManage, AlarmsManage, UsersManage, RecordingsDelete] {
        assert!(!allowed(AdultResident, perm), "adult: {perm}");
    }
    assert!(allowed(ChildResident, CamerasLive) && allowed(ChildResident, AlarmsDisarm));
    assert!(!allowed(ChildResident, CamerasPlayback) && !allowed(ChildResident, AutomationLocks));
    assert!(allowed(Guest, AlarmsDisarm) && allowed(Guest, AutomationLocks));
    assert!(!allowed(Guest, CamerasView) && !allowed(Guest, CamerasLive));
    assert!(allowed(Housekeeper, AlarmsDisarm) && !allowed(Housekeeper, CamerasLive));
    assert!(allowed(TemporaryContractor, AutomationGarage));
    assert!(!allowed(TemporaryContractor, AutomationHvac));
    for perm in [CamerasLive, CamerasPlayback, AlarmsAcknowledge] {
        assert!(allowed(MonitoringCenterViewer, perm), "monitoring: {perm}");
    }
    assert!(!allowed(MonitoringCenterViewer, AlarmsDisarm));
    assert!(!allowed(MonitoringCenterViewer, CamerasExport));
}

#[test]
fn property_grants_stay_on_their_property() {
    let s = on_property(BuiltInRole::Homeowner, 5);
    assert!(authorize(&s, CamerasLive, &cam(1, 5, None), now()).is_ok());
    assert_eq!(
        reason(authorize(&s, CamerasLive, &cam(1, 6, None), now())),
        Some(DenyReason::MissingPermission)
    );
    let orphan = Resource::Camera { id: 1, property_id: None, zone: None };
    assert_eq!(
        reason(authorize(&s, CamerasLive, &orphan, now())),
        Some(DenyReason::MissingPermission)
    );
    assert_eq!(
        reason(authorize(&s, PropertiesView, &Resource::Global, now())),
        Some(DenyReason::MissingPermission),
        "property grants never count on Global"
    );
    assert!(authorize_any_property(&s, PropertiesView, now()).is_ok());
    assert!(authorize_any_property(&s, SystemConfigure, now()).is_err());
}

#[test]
fn anonymous_and_inactive_are_refused_everything() {
    let anon = Subject::anonymous();
    let d = authorize(&anon, CamerasView, &Resource::Global, now()).unwrap_err();
    assert_eq!(d.reason(), DenyReason::Anonymous);
    assert_eq!(d.kind(), pv_core::ErrorKind::Unauthenticated);
    assert!(camera_filter(&anon, CamerasView, now()).is_empty());

    for status in [AccountStatus::Suspended, AccountStatus::Disabled] {
        let s = Subject::user(1, "x", status)
            .with_global(BuiltInRole::SystemAdministrator.permissions())
            .with_property(PropertyGrant::new(5, Some(Tz::UTC), [CamerasLive]));
        for r in [Resource::Global, Resource::Property(5), cam(1, 5, None)] {
            let d = authorize(&s, CamerasLive, &r, now()).unwrap_err();
            assert_eq!(d.reason(), DenyReason::AccountInactive);
            assert_eq!(d.kind(), pv_core::ErrorKind::PermissionDenied);
            assert!(d.message().contains(status.as_str()), "{}", d.message());
        }
        assert!(authorize_any_property(&s, CamerasLive, now()).is_err());
        assert!(camera_filter(&s, CamerasLive, now()).is_empty());
        assert_eq!(
            property_filter(&s, CamerasLive, now()),
            PropertyFilter::Only(Default::default())
        );
    }
}

#[test]
fn token_scope_intersects() {
    let admin = global(BuiltInRole::SystemAdministrator);
    let scoped = admin.clone().with_token_scope(Subject::token_scope_from_json(&json!([
        "cameras.view",
        "cameras.live",
        "no.such"
    ])));
    assert!(authorize(&scoped, CamerasLive, &Resource::Global, now()).is_ok());
    let d = authorize(&scoped, SystemConfigure, &Resource::Global, now()).unwrap_err();
    assert_eq!(d.reason(), DenyReason::MissingPermission);
    assert!(d.message().contains("token"), "{}", d.message());
    // Narrowing again keeps only the common part.
    let narrower = scoped.with_token_scope([CamerasView, AlarmsArm]);
    assert!(authorize(&narrower, CamerasView, &Resource::Global, now()).is_ok());
    assert!(authorize(&narrower, CamerasLive, &Resource::Global, now()).is_err());
    assert!(authorize(&narrower, AlarmsArm, &Resource::Global, now()).is_err());
    // A token never adds: a guest's token naming cameras.live still cannot see cameras.
    let guest = on_property(BuiltInRole::Guest, 5).with_token_scope([CamerasLive, AlarmsArm]);
    assert!(authorize(&guest, CamerasLive, &cam(1, 5, None), now()).is_err());
    assert!(authorize(&guest, AlarmsArm, &Resource::Property(5), now()).is_ok());
    assert!(authorize(&guest, AlarmsDisarm, &Resource::Property(5), now()).is_err());
    // Scopes that are not a list grant nothing.
    assert!(Subject::token_scope_from_json(&json!("cameras.live")).is_empty());
}

#[test]
fn camera_scope_and_zones() {
    let mut grant = PropertyGrant::new(5, Some(Tz::UTC), BuiltInRole::AdultResident.permissions());
    grant.cameras = CameraScope::parse(Some(&json!([11, "garage"]))).unwrap();
    grant.alarm_zones = AlarmZones::parse(&json!(["perimeter"])).unwrap();
    let s = active(3).with_property(grant);

    assert!(authorize(&s, CamerasLive, &cam(11, 5, Some("kitchen")), now()).is_ok(), "listed id");
    assert!(authorize(&s, CamerasLive, &cam(12, 5, Some("Garage")), now()).is_ok(), "zone");
    let d = authorize(&s, CamerasLive, &cam(13, 5, Some("kitchen")), now()).unwrap_err();
    assert_eq!(d.reason(), DenyReason::OutOfScope);
    assert_eq!(
        reason(authorize(&s, CamerasLive, &cam(13, 5, None), now())),
        Some(DenyReason::OutOfScope)
    );
    // Property-wide: seeing the camera list is fine, property-wide actions are not.
    assert!(authorize(&s, CamerasView, &Resource::Property(5), now()).is_ok());
    assert_eq!(
        reason(authorize(&s, CamerasExport, &Resource::Property(5), now())),
        Some(DenyReason::OutOfScope)
    );

    let zone = |z: Option<&str>| Resource::Alarm { property_id: 5, zone: z.map(str::to_string) };
    assert!(authorize(&s, AlarmsDisarm, &zone(Some("Perimeter")), now()).is_ok());
    assert_eq!(
        reason(authorize(&s, AlarmsDisarm, &zone(Some("interior")), now())),
        Some(DenyReason::OutOfScope)
    );
    assert_eq!(
        reason(authorize(&s, AlarmsDisarm, &zone(None), now())),
        Some(DenyReason::OutOfScope)
    );
    assert_eq!(
        reason(authorize(&s, AlarmsDisarm, &Resource::Property(5), now())),
        Some(DenyReason::OutOfScope)
    );
    assert!(
        authorize(&s, AlarmsView, &zone(Some("interior")), now()).is_ok(),
        "viewing is not zoned"
    );
    assert!(authorize(&s, AlarmsView, &Resource::Property(5), now()).is_ok());

    // A global grant is not limited by a membership's scope.
    let both = s.with_global([CamerasLive]);
    assert!(authorize(&both, CamerasLive, &cam(13, 5, Some("kitchen")), now()).is_ok());
}

/// Tuesdays and Thursdays 13:00–16:00 in New York.
fn housekeeper() -> Subject {
    let mut grant = PropertyGrant::new(
        5,
        Some(chrono_tz::America::New_York),
        BuiltInRole::Housekeeper.permissions(),
    );
    grant.schedule =
        AccessSchedule::parse(&json!([{"days": ["tue", "thu"], "start": "13:00", "end": "16:00"}]))
            .unwrap();
    active(4).with_property(grant)
}

#[test]
fn housekeeper_window_in_the_property_time_zone() {
    let s = housekeeper();
    let p = Resource::Property(5);
    let at = |when: &str| reason(authorize(&s, AlarmsDisarm, &p, t(when)));
    // Winter (EST, UTC−5). 2026-03-03 is a Tuesday.
    assert_eq!(at("2026-03-03T19:00:00Z"), None, "Tuesday 14:00 local");
    assert_eq!(at("2026-03-03T18:00:00Z"), None, "Tuesday 13:00 local, start inclusive");
    assert_eq!(at("2026-03-03T17:59:59Z"), Some(DenyReason::OutsideAccessWindow), "12:59");
    assert_eq!(
        at("2026-03-03T21:00:00Z"),
        Some(DenyReason::OutsideAccessWindow),
        "16:00 exclusive"
    );
    assert_eq!(at("2026-03-03T21:30:00Z"), Some(DenyReason::OutsideAccessWindow), "Tuesday 16:30");
    assert_eq!(
        at("2026-03-04T19:00:00Z"),
        Some(DenyReason::OutsideAccessWindow),
        "Wednesday 14:00"
    );
    assert_eq!(at("2026-03-05T19:00:00Z"), None, "Thursday 14:00");
    // Summer (EDT, UTC−4) after the 2026-03-08 change: the window moves an hour in UTC.
    assert_eq!(at("2026-03-10T18:00:00Z"), None, "Tuesday 14:00 EDT");
    assert_eq!(at("2026-03-10T17:30:00Z"), None, "13:30 EDT (12:30 at a fixed UTC−5)");
    assert_eq!(at("2026-03-10T20:30:00Z"), Some(DenyReason::OutsideAccessWindow), "16:30 EDT");
    assert_eq!(at("2026-03-10T19:00:00Z"), None, "15:00 EDT");
    // A UTC Tuesday afternoon that is Tuesday morning in New York.
    assert_eq!(at("2026-03-10T16:00:00Z"), Some(DenyReason::OutsideAccessWindow), "12:00 EDT");
    // Back to EST after 2026-11-01: Tuesday 2026-11-03 14:00 EST = 19:00 UTC.
    assert_eq!(at("2026-11-03T19:00:00Z"), None);
    assert_eq!(at("2026-11-03T17:30:00Z"), Some(DenyReason::OutsideAccessWindow), "12:30 EST");

    // Lists follow the window too.
    assert!(authorize_any_property(&s, AlarmsDisarm, t("2026-03-03T19:00:00Z")).is_ok());
    assert_eq!(
        reason(authorize_any_property(&s, AlarmsDisarm, t("2026-03-04T19:00:00Z"))),
        Some(DenyReason::OutsideAccessWindow)
    );
    assert!(property_filter(&s, PropertiesView, t("2026-03-03T19:00:00Z")).allows(5));
    assert!(!property_filter(&s, PropertiesView, t("2026-03-04T19:00:00Z")).allows(5));
}

#[test]
fn housekeeper_window_with_a_simulated_clock() {
    use pv_core::clock::{Clock, SimulatedClock};
    let s = housekeeper();
    // Tuesday 2026-11-24 14:00 EST.
    let clock = SimulatedClock::new(t("2026-11-24T19:00:00Z"));
    let check = || authorize(&s, AlarmsArm, &Resource::Property(5), clock.now());
    assert!(check().is_ok());
    clock.advance(chrono::Duration::minutes(150)); // 16:30
    assert_eq!(reason(check()), Some(DenyReason::OutsideAccessWindow));
    clock.advance(chrono::Duration::minutes(21 * 60 + 30)); // Wednesday 14:00
    assert_eq!(reason(check()), Some(DenyReason::OutsideAccessWindow));
    clock.advance(chrono::Duration::hours(24)); // Thursday 14:00
    assert!(check().is_ok());
}

#[test]
fn unknown_property_time_zone_closes_windows_only() {
    let mut grant = PropertyGrant::new(5, None, [AlarmsArm]);
    assert!(
        authorize(
            &active(1).with_property(grant.clone()),
            AlarmsArm,
            &Resource::Property(5),
            now()
        )
        .is_ok()
    );
    grant.schedule = AccessSchedule::parse(&json!([{"start": "00:00", "end": "24:00"}])).unwrap();
    assert_eq!(
        reason(authorize(
            &active(1).with_property(grant),
            AlarmsArm,
            &Resource::Property(5),
            now()
        )),
        Some(DenyReason::OutsideAccessWindow)
    );
}

#[test]
fn filters_agree_with_authorize() {
    let mut limited = PropertyGrant::new(5, Some(Tz::UTC), [CamerasView, CamerasLive]);
    limited.cameras = CameraScope::parse(Some(&json!([11, "garage"]))).unwrap();
    let mut windowed = PropertyGrant::new(6, Some(Tz::UTC), [CamerasView]);
    windowed.schedule =
        AccessSchedule::parse(&json!([{"days": ["mon"], "start": "09:00", "end": "10:00"}]))
            .unwrap();
    let open = PropertyGrant::new(7, Some(Tz::UTC), [CamerasView]);
    let s = active(8).with_property(limited).with_property(windowed).with_property(open);

    let monday_9_30 = t("2026-11-23T09:30:00Z");
    for when in [now(), monday_9_30] {
        let filter = camera_filter(&s, CamerasView, when);
        for property_id in [Some(5), Some(6), Some(7), Some(8), None] {
            for (id, zone) in [(11, None), (12, Some("garage")), (13, Some("porch")), (14, None)] {
                let r = Resource::Camera { id, property_id, zone: zone.map(str::to_string) };
                assert_eq!(
                    filter.allows(id, property_id, zone),
                    authorize(&s, CamerasView, &r, when).is_ok(),
                    "{r:?} at {when}"
                );
            }
        }
    }
    assert!(!camera_filter(&s, CamerasView, now()).allows(1, Some(6), None));
    assert!(camera_filter(&s, CamerasView, monday_9_30).allows(1, Some(6), None));
    assert_eq!(property_filter(&s, CamerasView, now()), PropertyFilter::Only([5, 7].into()));
    assert_eq!(camera_filter(&global(BuiltInRole::Auditor), CamerasView, now()), CameraFilter::All);
    assert_eq!(
        property_filter(&global(BuiltInRole::Auditor), PropertiesView, now()),
        PropertyFilter::All
    );
}

#[test]
fn deny_reasons_have_stable_names_and_safe_messages() {
    let d = authorize(&active(1), SecurityManage, &Resource::Global, now()).unwrap_err();
    assert_eq!(d.reason().as_str(), "missing_permission");
    assert_eq!(d.permission(), SecurityManage);
    assert_eq!(d.to_string(), d.message());
    assert!(d.message().contains("security.manage"));
}
