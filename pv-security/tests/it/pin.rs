//! The disarm PIN on every engine: format, proof, no reuse of the last five, use records,
//! lock-out with its exemptions, audit events, and concurrent changes.

use chrono::{Duration, TimeZone, Utc};
use pv_core::config::{DbKind, SecurityConfig};
use pv_core::db::users::{audit_event, disarm_pin, pin_use, user};
use pv_core::testkit::{Engine, TestEnv};
use pv_core::{Clock, ErrorKind, SimulatedClock};
use pv_security::access::RuleSet;
use pv_security::account::{self, NewUser};
use pv_security::audit::AuditLog;
use pv_security::pin::{Attempt, PinMethod, Pins, Proof, REMEMBERED, Refused, status};
use sea_orm::{ColumnTrait, DatabaseConnection, EntityTrait, PaginatorTrait, QueryFilter};

fn config() -> SecurityConfig {
    SecurityConfig {
        argon2_memory_kib: 1024,
        argon2_iterations: 1,
        argon2_parallelism: 1,
        lockout_free_attempts: 3,
        lockout_base_seconds: 10,
        lockout_max_seconds: 60,
        lockout_window_seconds: 3600,
        ..SecurityConfig::default()
    }
}

async fn setup(engine: Engine) -> (TestEnv, DatabaseConnection, user::Model) {
    let env = TestEnv::new(engine).await;
    let db = pv_core::db::connect(&env.config, DbKind::Users).await.unwrap();
    pv_core::db::migrate(DbKind::Users, &db).await.unwrap();
    let new = NewUser {
        username: "alice".into(),
        password: Some("the right password".into()),
        ..Default::default()
    };
    let u = account::create_user(&db, &config(), &new, Utc::now()).await.unwrap();
    (env, db, u)
}

async fn count(db: &DatabaseConnection, action: &str) -> u64 {
    audit_event::Entity::find()
        .filter(audit_event::Column::Action.eq(action))
        .count(db)
        .await
        .unwrap()
}

async fn set_verify_reuse_and_records(engine: Engine) {
    let (_env, db, alice) = setup(engine).await;
    let cfg = config();
    let rules = RuleSet::default();
    let audit = AuditLog::new(db.clone());
    let pins = Pins { db: &db, config: &cfg, rules: &rules, audit: &audit };
    let clock = SimulatedClock::new(Utc.with_ymd_and_hms(2026, 11, 23, 12, 0, 0).unwrap());
    let ui = Attempt::new(PinMethod::Ui, Some("203.0.113.5".parse().unwrap()));

    assert!(!status(&db, alice.id).await.unwrap().has_pin());
    // Anything but eight digits is refused with a clear message, whatever the proof.
    for bad in ["1234", "123456789", "1234 678", "abcdefgh", "１２３４５６７８"] {
        let err = pins
            .set(&alice, bad, Proof::Password("the right password"), &ui, clock.now())
            .await
            .unwrap_err();
        assert_eq!(err.kind(), ErrorKind::InvalidInput, "{bad:?}");
        assert!(err.to_string().contains("exactly 8 digits"), "{err}");
    }
    // A password account must prove itself.
    let r = pins.set(&alice, "20261123", Proof::Session, &ui, clock.now()).await.unwrap();
    assert_eq!(r, Err(Refused::ProofRequired));
    let r = pins.set(&alice, "20261123", Proof::Password("wrong"), &ui, clock.now()).await.unwrap();
    assert_eq!(r, Err(Refused::WrongPassword));
    let r = pins.set(&alice, "20261123", Proof::CurrentPin("11112222"), &ui, clock.now()).await;
    assert_eq!(r.unwrap(), Err(Refused::NoPin));
    assert!(!status(&db, alice.id).await.unwrap().has_pin(), "nothing was set");

    pins.set(&alice, "20261123", Proof::Password("the right password"), &ui, clock.now())
        .await
        .unwrap()
        .unwrap();
    let st = status(&db, alice.id).await.unwrap();
    assert_eq!(st.set_at, Some(clock.now()));
    assert_eq!(st.last_use, None);
    let stored = disarm_pin::Entity::find().all(&db).await.unwrap();
    assert_eq!(stored.len(), 1);
    assert!(
        stored[0].pin_hash.starts_with("$argon2id$") && !stored[0].pin_hash.contains("20261123")
    );

    // Uses are recorded: failure and success, when, from where, how, at which panel.
    clock.advance(Duration::minutes(1));
    let wrong = pins.verify(&alice, "20261124", &ui, clock.now()).await.unwrap();
    assert_eq!(wrong, Err(Refused::WrongPin));
    clock.advance(Duration::minutes(1));
    let keypad = Attempt {
        location: Some("Front door".into()),
        ..Attempt::new(PinMethod::Keypad, Some("::ffff:198.51.100.4".parse().unwrap()))
    };
    pins.verify(&alice, "20261123", &keypad, clock.now()).await.unwrap().unwrap();
    let last = status(&db, alice.id).await.unwrap().last_use.unwrap();
    assert!(last.success);
    assert_eq!(last.used_at, clock.now());
    assert_eq!(last.ip.as_deref(), Some("198.51.100.4"), "v4-mapped stored as v4");
    assert_eq!(last.method.as_deref(), Some("keypad"));
    assert_eq!(last.location.as_deref(), Some("Front door"));
    let uses = pv_security::pin::uses(&db, alice.id, 10).await.unwrap();
    assert_eq!(uses.len(), 2);
    assert!(!uses[1].success && uses[1].method.as_deref() == Some("ui"));
    assert_eq!(uses[1].ip.as_deref(), Some("203.0.113.5"));

    // No reuse of the last five (current + four retired); the sixth-last is allowed again.
    let mut history = vec!["20261123"];
    for (i, next) in ["31415926", "27182818", "16180339", "14142135"].into_iter().enumerate() {
        clock.advance(Duration::minutes(1));
        let proof = if i % 2 == 0 {
            Proof::CurrentPin(history.last().unwrap())
        } else {
            Proof::Password("the right password")
        };
        pins.set(&alice, next, proof, &ui, clock.now()).await.unwrap().unwrap();
        history.push(next);
    }
    for old in &history {
        let err = pins
            .set(&alice, old, Proof::Password("the right password"), &ui, clock.now())
            .await
            .unwrap_err();
        assert_eq!(err.kind(), ErrorKind::InvalidInput);
        assert!(err.to_string().contains("last 5"), "{err}");
    }
    pins.set(&alice, "99999999", Proof::Password("the right password"), &ui, clock.now())
        .await
        .unwrap()
        .unwrap();
    // Now "20261123" is the sixth-last PIN: usable again; at most five hashes are kept.
    let rows = disarm_pin::Entity::find().all(&db).await.unwrap();
    assert_eq!(rows.len(), REMEMBERED);
    assert_eq!(rows.iter().filter(|r| r.retired_at.is_none()).count(), 1);
    pins.set(&alice, "20261123", Proof::CurrentPin("99999999"), &ui, clock.now())
        .await
        .unwrap()
        .unwrap();
    assert!(pins.verify(&alice, "99999999", &ui, clock.now()).await.unwrap().is_err());
    pins.verify(&alice, "20261123", &ui, clock.now()).await.unwrap().unwrap();

    // Every set and verify is audited, and no PIN or password is in any event.
    assert!(count(&db, "pin.set").await >= 15);
    assert_eq!(count(&db, "pin.verify").await, 4);
    let events = audit_event::Entity::find().all(&db).await.unwrap();
    let text = format!("{events:?}");
    for secret in ["20261123", "20261124", "31415926", "99999999", "the right password"] {
        assert!(!text.contains(secret), "{secret} in the audit log");
    }
    assert!(pv_security::audit::verify(&db).await.unwrap().first_broken.is_none());
}

async fn lockout_backoff_and_exemptions(engine: Engine) {
    let (_env, db, alice) = setup(engine).await;
    let cfg = config();
    let rules = RuleSet::new(vec![], vec!["198.51.100.0/24".parse().unwrap()]);
    let audit = AuditLog::new(db.clone());
    let pins = Pins { db: &db, config: &cfg, rules: &rules, audit: &audit };
    let clock = SimulatedClock::new(Utc.with_ymd_and_hms(2026, 11, 23, 12, 0, 0).unwrap());
    let outside = Attempt::new(PinMethod::Api, Some("203.0.113.9".parse().unwrap()));
    pins.set(&alice, "24681357", Proof::Password("the right password"), &outside, clock.now())
        .await
        .unwrap()
        .unwrap();

    // Three free failures, then 10 s, 20 s, … of lock-out; even the right PIN is refused.
    for _ in 0..3 {
        let r = pins.verify(&alice, "00000000", &outside, clock.now()).await.unwrap();
        assert_eq!(r, Err(Refused::WrongPin));
    }
    assert_eq!(count(&db, "pin.lockout").await, 0);
    let r = pins.verify(&alice, "12345678", &outside, clock.now()).await.unwrap();
    assert_eq!(r, Err(Refused::WrongPin));
    assert_eq!(count(&db, "pin.lockout").await, 1);
    let r = pins.verify(&alice, "24681357", &outside, clock.now()).await.unwrap();
    assert_eq!(r, Err(Refused::Locked(clock.now() + Duration::seconds(10))));
    // A malformed PIN is a failed attempt too (and says why).
    clock.advance(Duration::seconds(10));
    let r = pins.verify(&alice, "1234", &outside, clock.now()).await.unwrap();
    assert_eq!(r, Err(Refused::Malformed));
    assert!(r.unwrap_err().message().contains("8 digits"));
    let r = pins.verify(&alice, "24681357", &outside, clock.now()).await.unwrap();
    assert_eq!(r, Err(Refused::Locked(clock.now() + Duration::seconds(20))), "doubled");
    // Changing the PIN with the current PIN is locked as well.
    let r = pins.set(&alice, "13572468", Proof::CurrentPin("24681357"), &outside, clock.now());
    assert!(matches!(r.await.unwrap(), Err(Refused::Locked(_))));

    // 192.168.250.0/24 and the exemption list bypass the lock-out (with the right PIN only).
    for ip in ["192.168.250.20", "198.51.100.7"] {
        let lan = Attempt::new(PinMethod::Keypad, Some(ip.parse().unwrap()));
        let r = pins.verify(&alice, "11111111", &lan, clock.now()).await.unwrap();
        assert_eq!(r, Err(Refused::WrongPin), "{ip}");
        pins.verify(&alice, "24681357", &lan, clock.now()).await.unwrap().unwrap();
    }
    // That success cleared the counter for everyone.
    pins.verify(&alice, "24681357", &outside, clock.now()).await.unwrap().unwrap();

    let failures = pin_use::Entity::find()
        .filter(pin_use::Column::Success.eq(false))
        .count(&db)
        .await
        .unwrap();
    assert_eq!(failures, 10, "every refused attempt is recorded, locked ones included");
    let denied = audit_event::Entity::find()
        .filter(audit_event::Column::Action.eq("pin.verify"))
        .filter(audit_event::Column::Outcome.eq("denied"))
        .count(&db)
        .await
        .unwrap();
    assert_eq!(denied, 2);
}

async fn a_passkey_account_sets_its_first_pin_with_its_session(engine: Engine) {
    let (_env, db, _) = setup(engine).await;
    let cfg = config();
    let new = NewUser { username: "bob".into(), ..Default::default() };
    let bob = account::create_user(&db, &cfg, &new, Utc::now()).await.unwrap();
    let rules = RuleSet::default();
    let audit = AuditLog::new(db.clone());
    let pins = Pins { db: &db, config: &cfg, rules: &rules, audit: &audit };
    let a = Attempt::new(PinMethod::Ui, None);
    pins.set(&bob, "10203040", Proof::Session, &a, Utc::now()).await.unwrap().unwrap();
    // From then on the current PIN is the proof.
    let r = pins.set(&bob, "50607080", Proof::Session, &a, Utc::now()).await.unwrap();
    assert_eq!(r, Err(Refused::ProofRequired));
    pins.set(&bob, "50607080", Proof::CurrentPin("10203040"), &a, Utc::now())
        .await
        .unwrap()
        .unwrap();
}

async fn concurrent_changes_leave_one_current_pin(engine: Engine) {
    let (_env, db, alice) = setup(engine).await;
    let cfg = config();
    let rules = RuleSet::default();
    let audit = AuditLog::new(db.clone());
    let pins = Pins { db: &db, config: &cfg, rules: &rules, audit: &audit };
    let a = Attempt::new(PinMethod::Api, None);
    let pw = Proof::Password("the right password");
    let (x, y) = tokio::join!(
        pins.set(&alice, "11223344", pw, &a, Utc::now()),
        pins.set(&alice, "55667788", pw, &a, Utc::now()),
    );
    assert!(x.unwrap().is_ok() && y.unwrap().is_ok());
    let current = disarm_pin::Entity::find()
        .filter(disarm_pin::Column::UserId.eq(alice.id))
        .filter(disarm_pin::Column::RetiredAt.is_null())
        .count(&db)
        .await
        .unwrap();
    assert_eq!(current, 1, "{engine:?}");
}

macro_rules! on_every_engine {
    ($($name:ident),+ $(,)?) => {
        mod sqlite { $(#[tokio::test] async fn $name() { super::$name(pv_core::testkit::Engine::Sqlite).await })+ }
        mod postgres { $(#[tokio::test] async fn $name() { super::$name(pv_core::testkit::Engine::Postgres).await })+ }
        mod mariadb { $(#[tokio::test] async fn $name() { super::$name(pv_core::testkit::Engine::MySql).await })+ }
    };
}

on_every_engine!(
    set_verify_reuse_and_records,
    lockout_backoff_and_exemptions,
    a_passkey_account_sets_its_first_pin_with_its_session,
    concurrent_changes_leave_one_current_pin,
);
