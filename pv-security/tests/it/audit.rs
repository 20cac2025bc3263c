//! The audit chain survives a round trip through every engine and detects tampering.

use chrono::{Duration, TimeZone, Utc};
use pv_core::config::DbKind;
use pv_core::testkit::{Engine, TestEnv};
use pv_security::audit::{AuditLog, Event, Outcome, verify};
use sea_orm::ConnectionTrait;
use serde_json::json;

async fn chain_verifies_and_names_the_first_broken_link(engine: Engine) {
    let env = TestEnv::new(engine).await;
    let db = pv_core::db::connect(&env.config, DbKind::Users).await.unwrap();
    pv_core::db::migrate(DbKind::Users, &db).await.unwrap();
    let log = AuditLog::new(db.clone());
    // Nanoseconds and unsorted JSON keys must survive storage on every engine.
    let t0 =
        Utc.with_ymd_and_hms(2026, 11, 23, 10, 0, 0).unwrap() + Duration::nanoseconds(123_456_789);
    let mut ids = Vec::new();
    for i in 0..5 {
        let mut e = Event::new("cli", "ip_rule.block", "ip_rule", &format!("203.0.113.{i}"))
            .details(json!({ "z": i, "reason": "brute force", "a": { "y": [1, 2.5], "b": null } }));
        if i == 3 {
            e.outcome = Outcome::Denied;
            e.ip = Some("2001:db8::1".into());
        }
        ids.push(log.append(e, t0 + Duration::seconds(i)).await.unwrap().id);
    }
    let ok = verify(&db).await.unwrap();
    assert_eq!(ok.events, 5);
    assert_eq!(ok.first_broken, None, "{engine:?}");

    // Alter event 3's outcome: verification names it.
    db.execute_unprepared(&format!(
        "UPDATE audit_events SET outcome = 'success' WHERE id = {}",
        ids[3]
    ))
    .await
    .unwrap();
    let broken = verify(&db).await.unwrap();
    let (id, why) = broken.first_broken.unwrap();
    assert_eq!(id, ids[3]);
    assert!(why.contains("altered"), "{why}");

    // Restore it, then delete event 1: the next event's link is broken.
    db.execute_unprepared(&format!(
        "UPDATE audit_events SET outcome = 'denied' WHERE id = {}",
        ids[3]
    ))
    .await
    .unwrap();
    assert_eq!(verify(&db).await.unwrap().first_broken, None);
    db.execute_unprepared(&format!("DELETE FROM audit_events WHERE id = {}", ids[1]))
        .await
        .unwrap();
    let (id, why) = verify(&db).await.unwrap().first_broken.unwrap();
    assert_eq!(id, ids[2]);
    assert!(why.contains("removed"), "{why}");
}

async fn concurrent_appends_keep_one_chain(engine: Engine) {
    let env = TestEnv::new(engine).await;
    let db = pv_core::db::connect(&env.config, DbKind::Users).await.unwrap();
    pv_core::db::migrate(DbKind::Users, &db).await.unwrap();
    let log = std::sync::Arc::new(AuditLog::new(db.clone()));
    let mut tasks = Vec::new();
    for i in 0..20 {
        let log = log.clone();
        tasks.push(tokio::spawn(async move {
            log.append(Event::new("system", "test.concurrent", "n", &i.to_string()), Utc::now())
                .await
                .unwrap()
        }));
    }
    for t in tasks {
        t.await.unwrap();
    }
    let v = verify(&db).await.unwrap();
    assert_eq!((v.events, v.first_broken), (20, None));
}

macro_rules! on_every_engine {
    ($($name:ident),+ $(,)?) => {
        mod sqlite { $(#[tokio::test] async fn $name() { super::$name(pv_core::testkit::Engine::Sqlite).await })+ }
        mod postgres { $(#[tokio::test] async fn $name() { super::$name(pv_core::testkit::Engine::Postgres).await })+ }
        mod mariadb { $(#[tokio::test] async fn $name() { super::$name(pv_core::testkit::Engine::MySql).await })+ }
    };
}

on_every_engine!(chain_verifies_and_names_the_first_broken_link, concurrent_appends_keep_one_chain);
