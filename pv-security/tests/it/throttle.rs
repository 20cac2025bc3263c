//! Lock-out with a simulated clock, on every engine.

use chrono::{Duration, TimeZone, Utc};
use pv_core::config::{DbKind, SecurityConfig};
use pv_core::testkit::{Engine, TestEnv};
use pv_core::{Clock, SimulatedClock};
use pv_security::access::RuleSet;
use pv_security::throttle::{Scope, Throttle, Verdict};

async fn backoff_lockout_and_exemptions(engine: Engine) {
    let env = TestEnv::new(engine).await;
    let db = pv_core::db::connect(&env.config, DbKind::Users).await.unwrap();
    pv_core::db::migrate(DbKind::Users, &db).await.unwrap();
    let policy = SecurityConfig {
        lockout_free_attempts: 3,
        lockout_base_seconds: 10,
        lockout_max_seconds: 60,
        lockout_window_seconds: 3600,
        ..SecurityConfig::default()
    };
    let throttle = Throttle::new(db.clone(), policy);
    let clock = SimulatedClock::new(Utc.with_ymd_and_hms(2026, 11, 23, 12, 0, 0).unwrap());
    let who = "thalia";

    for _ in 0..3 {
        assert_eq!(
            throttle.record_failure(Scope::Login, who, clock.now()).await.unwrap(),
            Verdict::Allowed
        );
    }
    // 4th failure: locked 10 s; 5th: 20 s; then 40 s; then capped at 60 s.
    for expected in [10, 20, 40, 60, 60] {
        let v = throttle.record_failure(Scope::Login, who, clock.now()).await.unwrap();
        assert_eq!(v, Verdict::LockedUntil(clock.now() + Duration::seconds(expected)));
        assert_eq!(
            throttle.check(Scope::Login, who, None, clock.now()).await.unwrap(),
            Verdict::LockedUntil(clock.now() + Duration::seconds(expected))
        );
        clock.advance(Duration::seconds(expected));
        assert_eq!(
            throttle.check(Scope::Login, who, None, clock.now()).await.unwrap(),
            Verdict::Allowed
        );
    }
    // The PIN counter is separate.
    assert_eq!(throttle.check(Scope::Pin, who, None, clock.now()).await.unwrap(), Verdict::Allowed);

    // 192.168.250.0/24 and exemption-list clients bypass a lock-out.
    throttle.record_failure(Scope::Login, who, clock.now()).await.unwrap();
    let rules = RuleSet::new(vec![], vec!["198.51.100.0/24".parse().unwrap()]);
    let locked = throttle.check(
        Scope::Login,
        who,
        Some(("203.0.113.1".parse().unwrap(), &rules)),
        clock.now(),
    );
    assert!(matches!(locked.await.unwrap(), Verdict::LockedUntil(_)));
    for ip in ["192.168.250.77", "198.51.100.4"] {
        let v = throttle
            .check(Scope::Login, who, Some((ip.parse().unwrap(), &rules)), clock.now())
            .await
            .unwrap();
        assert_eq!(v, Verdict::Allowed, "{ip}");
    }

    // A success clears the counter.
    throttle.record_success(Scope::Login, who).await.unwrap();
    assert_eq!(
        throttle.record_failure(Scope::Login, who, clock.now()).await.unwrap(),
        Verdict::Allowed
    );

    // Old failures are forgotten after the window.
    for _ in 0..2 {
        throttle.record_failure(Scope::Pin, "ip:203.0.113.9", clock.now()).await.unwrap();
    }
    clock.advance(Duration::hours(2));
    for _ in 0..3 {
        let v = throttle.record_failure(Scope::Pin, "ip:203.0.113.9", clock.now()).await.unwrap();
        assert_eq!(v, Verdict::Allowed, "the two old failures no longer count");
    }
}

macro_rules! on_every_engine {
    ($($name:ident),+ $(,)?) => {
        mod sqlite { $(#[tokio::test] async fn $name() { super::$name(pv_core::testkit::Engine::Sqlite).await })+ }
        mod postgres { $(#[tokio::test] async fn $name() { super::$name(pv_core::testkit::Engine::Postgres).await })+ }
        mod mariadb { $(#[tokio::test] async fn $name() { super::$name(pv_core::testkit::Engine::MySql).await })+ }
    };
}

on_every_engine!(backoff_lockout_and_exemptions);
