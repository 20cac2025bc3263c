//! RBAC over the users database on every engine: the seeded catalogue, loading a subject,
//! role management and the last-administrator guard.

use std::collections::{BTreeMap, BTreeSet};

use chrono::{DateTime, TimeZone, Utc};
use pv_core::ErrorKind;
use pv_core::config::DbKind;
use pv_core::db::users::{
    api_token, permission, property, role, role_permission, user, user_property,
};
use pv_core::testkit::{Engine, TestEnv};
use pv_security::account;
use pv_security::rbac::{
    self, AccessSchedule, AccountStatus, BuiltInRole, CameraScope, DenyReason, Permission,
    Resource, RoleScope, Subject, authorize,
};
use sea_orm::{
    ActiveModelTrait, ColumnTrait, ConnectionTrait, DatabaseConnection, EntityTrait,
    PaginatorTrait, QueryFilter, Set,
};
use serde_json::json;

fn t0() -> DateTime<Utc> {
    Utc.with_ymd_and_hms(2026, 11, 23, 10, 0, 0).unwrap()
}

fn t(rfc3339: &str) -> DateTime<Utc> {
    DateTime::parse_from_rfc3339(rfc3339).unwrap().to_utc()
}

async fn users_db(engine: Engine) -> (TestEnv, DatabaseConnection) {
    let env = TestEnv::new(engine).await;
    let db = pv_core::db::connect(&env.config, DbKind::Users).await.unwrap();
    pv_core::db::migrate(DbKind::Users, &db).await.unwrap();
    (env, db)
}

async fn make_user(db: &DatabaseConnection, name: &str, status: AccountStatus) -> i64 {
    user::ActiveModel {
        username: Set(name.into()),
        display_name: Set(name.into()),
        timezone: Set("UTC".into()),
        account_status: Set(status.as_str().into()),
        mfa_preference: Set("passkey".into()),
        failed_login_count: Set(0),
        is_seed_admin: Set(false),
        created_at: Set(t0()),
        updated_at: Set(t0()),
        ..Default::default()
    }
    .insert(db)
    .await
    .unwrap()
    .id
}

async fn make_property(db: &DatabaseConnection, name: &str, tz: &str) -> i64 {
    property::ActiveModel {
        name: Set(name.into()),
        timezone: Set(tz.into()),
        created_at: Set(t0()),
        updated_at: Set(t0()),
        ..Default::default()
    }
    .insert(db)
    .await
    .unwrap()
    .id
}

async fn join_property(
    db: &DatabaseConnection,
    user_id: i64,
    property_id: i64,
    camera_scope: Option<serde_json::Value>,
    access_windows: serde_json::Value,
    role_override: Option<BuiltInRole>,
) {
    let role_override_id = match role_override {
        Some(r) => Some(
            role::Entity::find()
                .filter(role::Column::Name.eq(r.name()))
                .one(db)
                .await
                .unwrap()
                .unwrap()
                .id,
        ),
        None => None,
    };
    user_property::ActiveModel {
        user_id: Set(user_id),
        property_id: Set(property_id),
        residency_status: Set("staff".into()),
        authorized_zones: Set(json!([])),
        camera_scope: Set(camera_scope),
        access_windows: Set(access_windows),
        role_override_id: Set(role_override_id),
        created_at: Set(t0()),
        updated_at: Set(t0()),
        ..Default::default()
    }
    .insert(db)
    .await
    .unwrap();
}

async fn set_status(db: &DatabaseConnection, user_id: i64, status: AccountStatus) {
    let mut u: user::ActiveModel =
        user::Entity::find_by_id(user_id).one(db).await.unwrap().unwrap().into();
    u.account_status = Set(status.as_str().into());
    u.update(db).await.unwrap();
}

async fn catalogue(
    db: &DatabaseConnection,
) -> (BTreeMap<String, (String, Option<String>)>, BTreeMap<String, BTreeSet<Permission>>) {
    let perms = permission::Entity::find()
        .all(db)
        .await
        .unwrap()
        .into_iter()
        .map(|p| (p.key, (p.category, p.description)))
        .collect();
    let roles =
        rbac::list_roles(db).await.unwrap().into_iter().map(|r| (r.name, r.permissions)).collect();
    (perms, roles)
}

async fn seeded_catalogue_matches_the_code(engine: Engine) {
    let (_env, db) = users_db(engine).await;
    let (perms, _) = catalogue(&db).await;
    let expected: BTreeMap<String, (String, Option<String>)> = Permission::ALL
        .iter()
        .map(|p| (p.as_str().into(), (p.category().as_str().into(), Some(p.description().into()))))
        .collect();
    assert_eq!(perms, expected, "{engine:?}");

    let roles = rbac::list_roles(&db).await.unwrap();
    assert_eq!(roles.len(), BuiltInRole::ALL.len());
    for built_in in BuiltInRole::ALL {
        let r = roles.iter().find(|r| r.name == built_in.name()).unwrap();
        assert!(r.built_in, "{built_in}");
        assert_eq!(r.scope, Some(built_in.scope()), "{built_in}");
        assert_eq!(r.description.as_deref(), Some(built_in.description()), "{built_in}");
        assert_eq!(r.permissions, built_in.permissions(), "{built_in} on {engine:?}");
        assert_eq!(rbac::role_permissions(&db, built_in).await.unwrap(), built_in.permissions());
        assert_eq!(rbac::role_permissions(&db, r.id).await.unwrap(), built_in.permissions());
    }
    assert_eq!(roles[0].scope, Some(RoleScope::Global), "global roles first");

    // Running the seed again, and the migrations that change its catalogue after it (as on a
    // database that got a later migration first), adds nothing.
    let before = (catalogue(&db).await, role_permission::Entity::find().count(&db).await.unwrap());
    db.execute_unprepared(
        "DELETE FROM pv_users_migrations WHERE version IN \
         ('m20261123_000003_seed_roles', 'm20261205_000001_faces_permissions')",
    )
    .await
    .unwrap();
    pv_core::db::migrate(DbKind::Users, &db).await.unwrap();
    let after = (catalogue(&db).await, role_permission::Entity::find().count(&db).await.unwrap());
    assert_eq!(before, after, "{engine:?}");
    assert_eq!(
        pv_core::db::applied_migrations(DbKind::Users, &db).await.unwrap().len(),
        pv_core::db::known_migrations(DbKind::Users).len()
    );
}

async fn load_subject_reads_grants_memberships_and_overrides(engine: Engine) {
    let (_env, db) = users_db(engine).await;
    let home = make_property(&db, "Home", "America/New_York").await;
    let cabin = make_property(&db, "Cabin", "Europe/Paris").await;
    let office = make_property(&db, "Office", "Not/AZone").await;
    let maria = make_user(&db, "maria", AccountStatus::Active).await;

    rbac::assign_role(&db, maria, BuiltInRole::Auditor, None, None, t0()).await.unwrap();
    rbac::assign_role(&db, maria, BuiltInRole::Housekeeper, Some(home), None, t0()).await.unwrap();
    join_property(
        &db,
        maria,
        home,
        None,
        json!([{"days": ["tue", "thu"], "start": "13:00", "end": "16:00"}]),
        None,
    )
    .await;
    // On the cabin she is a homeowner, but the membership overrides that with Child Resident,
    // and limits her to camera 11 and the garage.
    rbac::assign_role(&db, maria, BuiltInRole::Homeowner, Some(cabin), None, t0()).await.unwrap();
    join_property(
        &db,
        maria,
        cabin,
        Some(json!([11, "garage"])),
        json!([]),
        Some(BuiltInRole::ChildResident),
    )
    .await;
    // A global-scope role granted on one property applies there only, without a membership.
    rbac::assign_role(&db, maria, BuiltInRole::PropertyManager, Some(office), None, t0())
        .await
        .unwrap();

    let s = rbac::load_subject(&db, maria).await.unwrap();
    assert_eq!((s.user_id(), s.username()), (Some(maria), Some("maria")));
    assert_eq!(s.account_status(), Some(AccountStatus::Active));
    assert_eq!(s.global_permissions(), &BuiltInRole::Auditor.permissions(), "{engine:?}");
    let grants = s.property_grants();
    assert_eq!(grants.keys().copied().collect::<Vec<_>>(), vec![home, cabin, office]);
    assert_eq!(grants[&home].permissions, BuiltInRole::Housekeeper.permissions());
    assert_eq!(grants[&home].timezone, Some(chrono_tz::America::New_York));
    assert!(matches!(grants[&home].schedule, AccessSchedule::Windows(ref w) if w.len() == 1));
    assert_eq!(grants[&cabin].permissions, BuiltInRole::ChildResident.permissions());
    assert!(!grants[&cabin].cameras.is_all());
    assert_eq!(grants[&office].permissions, BuiltInRole::PropertyManager.permissions());
    assert_eq!(grants[&office].timezone, None, "not an IANA zone");
    assert_eq!(grants[&office].cameras, CameraScope::All);

    // The housekeeper case, from the database: Tuesday/Thursday 13:00–16:00 New York time.
    let disarm = |when| authorize(&s, Permission::AlarmsDisarm, &Resource::Property(home), t(when));
    assert!(disarm("2026-11-24T19:00:00Z").is_ok(), "Tuesday 14:00 EST");
    assert_eq!(
        disarm("2026-11-24T21:30:00Z").unwrap_err().reason(),
        DenyReason::OutsideAccessWindow,
        "Tuesday 16:30"
    );
    assert_eq!(
        disarm("2026-11-25T19:00:00Z").unwrap_err().reason(),
        DenyReason::OutsideAccessWindow,
        "Wednesday 14:00"
    );
    assert!(disarm("2026-06-02T18:00:00Z").is_ok(), "Tuesday 14:00 EDT");
    assert!(disarm("2026-06-02T19:30:00Z").is_ok(), "Tuesday 15:30 EDT");
    assert!(disarm("2026-06-02T20:30:00Z").is_err(), "Tuesday 16:30 EDT");
    // Global (auditor) permissions need no window; property ones do not reach Global.
    assert!(
        authorize(&s, Permission::AuditExport, &Resource::Global, t("2026-11-25T03:00:00Z"))
            .is_ok()
    );
    assert!(authorize(&s, Permission::AlarmsDisarm, &Resource::Global, t0()).is_err());

    // Cabin: the override's permissions, within the camera scope.
    let cam = |id, zone: Option<&str>| Resource::Camera {
        id,
        property_id: Some(cabin),
        zone: zone.map(str::to_string),
    };
    assert!(authorize(&s, Permission::CamerasLive, &cam(11, None), t0()).is_ok());
    assert!(authorize(&s, Permission::CamerasLive, &cam(12, Some("Garage")), t0()).is_ok());
    assert_eq!(
        authorize(&s, Permission::CamerasLive, &cam(13, Some("porch")), t0()).unwrap_err().reason(),
        DenyReason::OutOfScope
    );
    assert_eq!(
        authorize(&s, Permission::CamerasPlayback, &cam(11, None), t0()).unwrap_err().reason(),
        DenyReason::MissingPermission,
        "the override replaces Homeowner"
    );
    let office_cam = Resource::Camera { id: 40, property_id: Some(office), zone: None };
    assert!(authorize(&s, Permission::CamerasExport, &office_cam, t0()).is_ok());

    // A token limits what the session may do.
    let token = s.clone().with_token_scope(Subject::token_scope_from_json(&json!(["audit.view"])));
    assert!(authorize(&token, Permission::AuditView, &Resource::Global, t0()).is_ok());
    assert!(authorize(&token, Permission::AuditExport, &Resource::Global, t0()).is_err());
    assert!(authorize(&token, Permission::CamerasExport, &office_cam, t0()).is_err());

    // Suspended: refused everything, global grants included.
    set_status(&db, maria, AccountStatus::Suspended).await;
    let s = rbac::load_subject(&db, maria).await.unwrap();
    for (p, r) in
        [(Permission::AuditView, Resource::Global), (Permission::CamerasExport, office_cam.clone())]
    {
        assert_eq!(authorize(&s, p, &r, t0()).unwrap_err().reason(), DenyReason::AccountInactive);
    }

    let missing = rbac::load_subject(&db, maria + 1000).await.unwrap_err();
    assert_eq!(missing.kind(), ErrorKind::NotFound);
    let nobody = make_user(&db, "nobody", AccountStatus::Active).await;
    let s = rbac::load_subject(&db, nobody).await.unwrap();
    assert!(s.global_permissions().is_empty() && s.property_grants().is_empty());
}

async fn roles_are_granted_and_revoked(engine: Engine) {
    let (_env, db) = users_db(engine).await;
    let home = make_property(&db, "Home", "UTC").await;
    let u = make_user(&db, "sam", AccountStatus::Active).await;
    let by = make_user(&db, "owner", AccountStatus::Active).await;

    let g = rbac::assign_role(&db, u, "Guest", Some(home), Some(by), t0()).await.unwrap();
    assert!(g.created);
    assert_eq!((g.role_name.as_str(), g.property_id), ("Guest", Some(home)));
    let again = rbac::assign_role(&db, u, "Guest", Some(home), Some(by), t0()).await.unwrap();
    assert_eq!((again.created, again.id), (false, g.id));

    let err = rbac::assign_role(&db, u, "Guest", None, None, t0()).await.unwrap_err();
    assert_eq!(err.kind(), ErrorKind::InvalidInput, "a property role needs a property");
    let err = rbac::assign_role(&db, u, "Janitor", None, None, t0()).await.unwrap_err();
    assert_eq!(err.kind(), ErrorKind::NotFound);
    let err = rbac::assign_role(&db, u, "Guest", Some(home + 99), None, t0()).await.unwrap_err();
    assert_eq!(err.kind(), ErrorKind::NotFound);
    let err = rbac::assign_role(&db, u + 99, "Guest", Some(home), None, t0()).await.unwrap_err();
    assert_eq!(err.kind(), ErrorKind::NotFound);

    let s = rbac::load_subject(&db, u).await.unwrap();
    assert!(authorize(&s, Permission::AlarmsDisarm, &Resource::Property(home), t0()).is_ok());

    assert_eq!(rbac::revoke_role(&db, u, "Guest", Some(home)).await.unwrap(), 1);
    let err = rbac::revoke_role(&db, u, "Guest", Some(home)).await.unwrap_err();
    assert_eq!(err.kind(), ErrorKind::NotFound);
    let s = rbac::load_subject(&db, u).await.unwrap();
    assert_eq!(
        authorize(&s, Permission::AlarmsDisarm, &Resource::Property(home), t0())
            .unwrap_err()
            .reason(),
        DenyReason::MissingPermission
    );
}

async fn last_admin_cannot_be_demoted(engine: Engine) {
    let (_env, db) = users_db(engine).await;
    let home = make_property(&db, "Home", "UTC").await;
    let a = make_user(&db, "alice", AccountStatus::Active).await;
    let b = make_user(&db, "bob", AccountStatus::Active).await;

    assert!(rbac::set_admin(&db, a, true, None, t0()).await.unwrap());
    assert!(!rbac::set_admin(&db, a, true, None, t0()).await.unwrap(), "already admin");
    let err = rbac::set_admin(&db, a, false, Some(a), t0()).await.unwrap_err();
    assert_eq!(err.kind(), ErrorKind::Conflict, "{engine:?}: {err}");
    let err = rbac::revoke_role(&db, a, BuiltInRole::SystemAdministrator, None).await.unwrap_err();
    assert_eq!(err.kind(), ErrorKind::Conflict);
    assert_eq!(rbac::ensure_not_last_admin(&db, a).await.unwrap_err().kind(), ErrorKind::Conflict);
    assert!(rbac::ensure_not_last_admin(&db, b).await.is_ok(), "b is no admin");

    // Administrator on one property only, or suspended: does not count.
    rbac::assign_role(&db, b, BuiltInRole::SystemAdministrator, Some(home), None, t0())
        .await
        .unwrap();
    assert_eq!(
        rbac::set_admin(&db, a, false, None, t0()).await.unwrap_err().kind(),
        ErrorKind::Conflict
    );
    assert!(rbac::set_admin(&db, b, true, Some(a), t0()).await.unwrap());
    set_status(&db, b, AccountStatus::Suspended).await;
    assert_eq!(
        rbac::set_admin(&db, a, false, None, t0()).await.unwrap_err().kind(),
        ErrorKind::Conflict
    );

    // Two active administrators: one may go.
    set_status(&db, b, AccountStatus::Active).await;
    assert!(rbac::set_admin(&db, a, false, Some(b), t0()).await.unwrap());
    assert!(!rbac::set_admin(&db, a, false, Some(b), t0()).await.unwrap(), "no longer admin");
    let s = rbac::load_subject(&db, a).await.unwrap();
    assert!(authorize(&s, Permission::SystemConfigure, &Resource::Global, t0()).is_err());
    assert_eq!(
        rbac::set_admin(&db, b, false, None, t0()).await.unwrap_err().kind(),
        ErrorKind::Conflict
    );
    let s = rbac::load_subject(&db, b).await.unwrap();
    assert!(authorize(&s, Permission::SystemConfigure, &Resource::Global, t0()).is_ok());
    let err = rbac::set_admin(&db, b + 99, false, None, t0()).await.unwrap_err();
    assert_eq!(err.kind(), ErrorKind::NotFound);
}

async fn concurrent_demotions_keep_one_admin(engine: Engine) {
    let (_env, db) = users_db(engine).await;
    let a = make_user(&db, "alice", AccountStatus::Active).await;
    let b = make_user(&db, "bob", AccountStatus::Active).await;
    rbac::set_admin(&db, a, true, None, t0()).await.unwrap();
    rbac::set_admin(&db, b, true, None, t0()).await.unwrap();
    let (ra, rb) = tokio::join!(
        rbac::set_admin(&db, a, false, None, t0()),
        rbac::set_admin(&db, b, false, None, t0())
    );
    let ok = [&ra, &rb].iter().filter(|r| r.is_ok()).count();
    assert_eq!(ok, 1, "{engine:?}: {ra:?} {rb:?}");
    for r in [ra, rb] {
        if let Err(e) = r {
            assert_eq!(e.kind(), ErrorKind::Conflict, "{engine:?}: {e}");
        }
    }
}

async fn last_admin_cannot_be_suspended_or_disabled(engine: Engine) {
    let (_env, db) = users_db(engine).await;
    let a = make_user(&db, "alice", AccountStatus::Active).await;
    let b = make_user(&db, "bob", AccountStatus::Active).await;
    rbac::set_admin(&db, a, true, None, t0()).await.unwrap();
    let (_, session) = pv_security::session::create(
        &db,
        a,
        pv_security::session::Stage::Full,
        &Default::default(),
        pv_security::session::SessionPolicy::from_config(&Default::default()),
        t0(),
    )
    .await
    .unwrap();
    for status in [AccountStatus::Suspended, AccountStatus::Disabled] {
        let err = account::set_status(&db, a, status, Some("test"), t0()).await.unwrap_err();
        assert_eq!(err.kind(), ErrorKind::Conflict, "{engine:?}: {err}");
        let msg = err.to_string();
        assert!(msg.contains("last active System Administrator"), "{msg}");
        assert!(msg.contains(status.as_str()), "{msg}");
    }
    // Nothing changed: still active, session still live.
    let u = user::Entity::find_by_id(a).one(&db).await.unwrap().unwrap();
    assert_eq!(u.account_status, "active");
    let live = pv_security::session::list(&db, a, t0()).await.unwrap();
    assert_eq!(live.iter().map(|s| s.id).collect::<Vec<_>>(), vec![session.id]);
    // Others may be suspended; reactivating is never refused.
    account::set_status(&db, b, AccountStatus::Suspended, None, t0()).await.unwrap();
    account::set_status(&db, b, AccountStatus::Active, None, t0()).await.unwrap();
    account::set_status(&db, a, AccountStatus::Active, None, t0()).await.unwrap();
    // With a second active administrator the first may go (and is signed out).
    rbac::set_admin(&db, b, true, None, t0()).await.unwrap();
    account::set_status(&db, a, AccountStatus::Suspended, None, t0()).await.unwrap();
    assert!(pv_security::session::list(&db, a, t0()).await.unwrap().is_empty());
    let err = account::set_status(&db, b, AccountStatus::Disabled, None, t0()).await.unwrap_err();
    assert_eq!(err.kind(), ErrorKind::Conflict);
    assert_eq!(
        account::set_status(&db, b + 99, AccountStatus::Active, None, t0())
            .await
            .unwrap_err()
            .kind(),
        ErrorKind::NotFound
    );
}

async fn concurrent_suspensions_and_demotions_keep_one_admin(engine: Engine) {
    let (_env, db) = users_db(engine).await;
    let a = make_user(&db, "alice", AccountStatus::Active).await;
    let b = make_user(&db, "bob", AccountStatus::Active).await;
    rbac::set_admin(&db, a, true, None, t0()).await.unwrap();
    rbac::set_admin(&db, b, true, None, t0()).await.unwrap();
    // Two suspensions at once: one wins.
    let (ra, rb) = tokio::join!(
        account::set_status(&db, a, AccountStatus::Suspended, None, t0()),
        account::set_status(&db, b, AccountStatus::Disabled, None, t0()),
    );
    assert_eq!([ra.is_ok(), rb.is_ok()].iter().filter(|ok| **ok).count(), 1, "{engine:?}");
    for e in [ra.err(), rb.err()].into_iter().flatten() {
        assert_eq!(e.kind(), ErrorKind::Conflict, "{engine:?}: {e}");
    }
    // Back to two administrators; a suspension racing a demotion: one wins.
    for id in [a, b] {
        account::set_status(&db, id, AccountStatus::Active, None, t0()).await.unwrap();
    }
    let (ra, rb) = tokio::join!(
        account::set_status(&db, a, AccountStatus::Suspended, None, t0()),
        rbac::set_admin(&db, b, false, None, t0()),
    );
    assert_eq!([ra.is_ok(), rb.is_ok()].iter().filter(|ok| **ok).count(), 1, "{engine:?}");
    let admins =
        [a, b].into_iter().map(|id| rbac::ensure_not_last_admin(&db, id)).collect::<Vec<_>>();
    let mut conflicts = 0;
    for check in admins {
        if check.await.is_err() {
            conflicts += 1;
        }
    }
    assert_eq!(conflicts, 1, "exactly one active administrator is left");
}

/// `faces.manage` (before issue 12) becomes `faces.enroll` + `faces.delete` on every role and
/// API token that had it, custom ones included.
async fn faces_manage_is_split_on_roles_and_tokens(engine: Engine) {
    let (_env, db) = users_db(engine).await;
    // A database as it was before the split: faces.manage on a custom role and a token.
    let manage = permission::ActiveModel {
        key: Set("faces.manage".into()),
        category: Set("system".into()),
        description: Set(Some("Enroll, edit and delete face identities".into())),
        ..Default::default()
    }
    .insert(&db)
    .await
    .unwrap();
    let custom = role::ActiveModel {
        name: Set("Face clerk".into()),
        scope: Set("global".into()),
        description: Set(None),
        built_in: Set(false),
        created_at: Set(t0()),
        ..Default::default()
    }
    .insert(&db)
    .await
    .unwrap();
    role_permission::ActiveModel {
        role_id: Set(custom.id),
        permission_id: Set(manage.id),
        ..Default::default()
    }
    .insert(&db)
    .await
    .unwrap();
    let owner = make_user(&db, "owner", AccountStatus::Active).await;
    let token = |name: &str, scopes: serde_json::Value| api_token::ActiveModel {
        user_id: Set(owner),
        name: Set(name.into()),
        prefix: Set("pvt_x".into()),
        token_hash: Set(format!("{name:0>64}")),
        scopes: Set(scopes),
        created_at: Set(t0()),
        ..Default::default()
    };
    let scoped = token("a", json!(["faces.manage", "cameras.view"])).insert(&db).await.unwrap();
    let other = token("b", json!(["cameras.view"])).insert(&db).await.unwrap();
    db.execute_unprepared(
        "DELETE FROM pv_users_migrations WHERE version = 'm20261205_000001_faces_permissions'",
    )
    .await
    .unwrap();
    pv_core::db::migrate(DbKind::Users, &db).await.unwrap();

    let keys = rbac::role_permissions(&db, custom.id).await.unwrap();
    assert_eq!(keys, [Permission::FacesEnroll, Permission::FacesDelete].into(), "{engine:?}");
    assert!(
        permission::Entity::find()
            .filter(permission::Column::Key.eq("faces.manage"))
            .one(&db)
            .await
            .unwrap()
            .is_none()
    );
    let scopes = |id| {
        let db = db.clone();
        async move { api_token::Entity::find_by_id(id).one(&db).await.unwrap().unwrap().scopes }
    };
    assert_eq!(scopes(scoped.id).await, json!(["faces.enroll", "faces.delete", "cameras.view"]));
    assert_eq!(scopes(other.id).await, json!(["cameras.view"]));
    let homeowner = rbac::role_permissions(&db, BuiltInRole::Homeowner).await.unwrap();
    assert!(
        homeowner.contains(&Permission::FacesEnroll)
            && homeowner.contains(&Permission::FacesDelete)
    );
}

macro_rules! on_every_engine {
    ($($name:ident),+ $(,)?) => {
        mod sqlite { $(#[tokio::test] async fn $name() { super::$name(pv_core::testkit::Engine::Sqlite).await })+ }
        mod postgres { $(#[tokio::test] async fn $name() { super::$name(pv_core::testkit::Engine::Postgres).await })+ }
        mod mariadb { $(#[tokio::test] async fn $name() { super::$name(pv_core::testkit::Engine::MySql).await })+ }
    };
}

on_every_engine!(
    seeded_catalogue_matches_the_code,
    load_subject_reads_grants_memberships_and_overrides,
    roles_are_granted_and_revoked,
    last_admin_cannot_be_demoted,
    concurrent_demotions_keep_one_admin,
    last_admin_cannot_be_suspended_or_disabled,
    concurrent_suspensions_and_demotions_keep_one_admin,
    faces_manage_is_split_on_roles_and_tokens,
);
