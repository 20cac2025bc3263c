//! The country policy in the access middleware: denied countries get a 403 problem, others
//! and exempt addresses pass, and a replaced country database is read again.

use std::path::Path;

use chrono::Utc;
use poem::http::StatusCode;
use poem::test::{TestClient, TestResponse};
use pv_core::testkit::Engine;
use pv_security::access::{self, NewRule, RuleAction, RuleSource};
use pv_security::country::testkit::{MmdbWriter, Shape, flat_record, sample_db};
use pv_security::country::{CountryPolicy, PolicyMode, parse_countries, save_policy};
use serde_json::Value;

use crate::state;

async fn get_from<E: poem::Endpoint>(cli: &TestClient<E>, client: &str) -> TestResponse {
    cli.get("/healthz").header("X-Forwarded-For", client).send().await
}

async fn set_policy(db: &sea_orm::DatabaseConnection, mode: PolicyMode, codes: &str, mmdb: &Path) {
    let policy = CountryPolicy {
        mode,
        countries: parse_countries(codes).unwrap(),
        mmdb_path: Some(mmdb.to_path_buf()),
    };
    save_policy(db, &policy, None, Utc::now()).await.unwrap();
}

#[tokio::test]
async fn denied_country_gets_a_problem_others_and_exempt_pass() {
    let (_env, state) = state(Engine::Sqlite).await;
    let dir = tempfile::tempdir().unwrap();
    let mmdb = dir.path().join("GeoLite2-Country.mmdb");
    std::fs::write(&mmdb, sample_db(Shape::GeoIp2)).unwrap();
    let db = state.dbs().users.clone();
    set_policy(&db, PolicyMode::Deny, "GB", &mmdb).await;
    let exempt = NewRule {
        network: "81.2.69.7/32".parse().unwrap(),
        action: RuleAction::Exempt,
        reason: Some("office".into()),
        source: RuleSource::Admin,
        created_by: None,
        expires_at: None,
    };
    access::add_rule(&db, exempt, Utc::now()).await.unwrap();
    let cli = TestClient::new(pv_web::app::build(state));

    let resp = get_from(&cli, "81.2.69.5").await;
    resp.assert_status(StatusCode::FORBIDDEN);
    resp.assert_content_type("application/problem+json");
    let body: Value = resp.0.into_body().into_json().await.unwrap();
    assert_eq!(body["status"], 403);
    let detail = body["detail"].as_str().unwrap();
    assert!(detail.contains("country policy") && detail.contains("GB"), "{detail}");
    let text = body.to_string();
    for internal in ["mmdb", "GeoLite2", "deny", dir.path().to_str().unwrap()] {
        assert!(!text.contains(internal), "leaks {internal}: {text}");
    }

    get_from(&cli, "89.160.20.10").await.assert_status_is_ok();
    get_from(&cli, "81.2.69.7").await.assert_status_is_ok(); // exempt wins
    get_from(&cli, "192.168.1.20").await.assert_status_is_ok(); // preloaded LAN exemption
    get_from(&cli, "198.51.100.4").await.assert_status_is_ok(); // not in the database
    get_from(&cli, "2001:db8:1::5").await.assert_status_is_ok(); // DE
    cli.get("/healthz").send().await.assert_status_is_ok(); // in-process, no address
}

#[tokio::test]
async fn allow_list_and_a_replaced_database_apply_after_the_cache() {
    let (_env, state) = state(Engine::Sqlite).await;
    let dir = tempfile::tempdir().unwrap();
    let mmdb = dir.path().join("country.mmdb");
    std::fs::write(&mmdb, sample_db(Shape::Flat)).unwrap();
    let db = state.dbs().users.clone();
    set_policy(&db, PolicyMode::Allow, "DE,SE", &mmdb).await;
    let cli = TestClient::new(pv_web::app::build(state));

    get_from(&cli, "2001:db8:1::5").await.assert_status_is_ok();
    get_from(&cli, "89.160.20.10").await.assert_status_is_ok();
    get_from(&cli, "81.2.69.5").await.assert_status(StatusCode::FORBIDDEN);

    // A new copy of the database (81.2.69.0/24 now in SE) is read again once the cache lapses.
    let mut w = MmdbWriter::new("ip-location-db-country");
    w.insert("81.2.69.0/24".parse().unwrap(), &flat_record("SE"));
    w.insert("2001:db8:1::/48".parse().unwrap(), &flat_record("GB"));
    std::fs::write(&mmdb, w.to_bytes()).unwrap();
    tokio::time::sleep(pv_web::access::RULES_TTL + std::time::Duration::from_millis(200)).await;
    get_from(&cli, "81.2.69.5").await.assert_status_is_ok();
    get_from(&cli, "2001:db8:1::5").await.assert_status(StatusCode::FORBIDDEN);

    // A database that becomes unreadable keeps the last good copy in use.
    std::fs::write(&mmdb, b"truncated").unwrap();
    tokio::time::sleep(pv_web::access::RULES_TTL + std::time::Duration::from_millis(200)).await;
    get_from(&cli, "2001:db8:1::5").await.assert_status(StatusCode::FORBIDDEN);

    // Off: everyone passes.
    save_policy(&db, &CountryPolicy::default(), None, Utc::now()).await.unwrap();
    tokio::time::sleep(pv_web::access::RULES_TTL + std::time::Duration::from_millis(200)).await;
    get_from(&cli, "2001:db8:1::5").await.assert_status_is_ok();
}
