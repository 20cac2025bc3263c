//! The blocklist daemon's HTTP surface in process: the CSV, conditional requests (ETag → 304),
//! bearer tokens, the rate limit and the re-validation cache.

use std::time::Duration;

use chrono::Utc;
use poem::http::StatusCode;
use poem::test::{TestClient, TestResponse};
use pv_core::config::DbKind;
use pv_core::db::users::blocklist_setting;
use pv_core::testkit::{Engine, TestEnv};
use pv_security::access::{self, NewRule, RuleAction, RuleSource};
use pv_security::blocklist::parse_network;
use pv_web::blocklist::{Options, app_with, sha256_hex};
use sea_orm::{ActiveModelTrait, DatabaseConnection, Set};
use serde_json::Value;

async fn users(engine: Engine) -> (TestEnv, DatabaseConnection) {
    let env = TestEnv::new(engine).await;
    let db = pv_core::db::connect(&env.config, DbKind::Users).await.unwrap();
    pv_core::db::migrate(DbKind::Users, &db).await.unwrap();
    (env, db)
}

async fn rule(db: &DatabaseConnection, network: &str, action: RuleAction) {
    let rule = NewRule {
        network: parse_network(network).unwrap(),
        action,
        reason: None,
        source: RuleSource::Cli,
        created_by: None,
        expires_at: None,
    };
    access::add_rule(db, rule, Utc::now()).await.unwrap();
}

async fn settings(db: &DatabaseConnection, token: Option<&str>, per_minute: i32) {
    blocklist_setting::ActiveModel {
        enabled: Set(true),
        token_hash: Set(token.map(sha256_hex)),
        requests_per_minute: Set(per_minute),
        updated_at: Set(Utc::now()),
        ..Default::default()
    }
    .insert(db)
    .await
    .unwrap();
}

/// Re-read the database on every request, as if no time had passed since a change.
fn eager() -> Options {
    Options { revalidate_after: Duration::ZERO, ..Options::default() }
}

fn etag(resp: &TestResponse) -> String {
    resp.0.headers()["etag"].to_str().unwrap().to_string()
}

async fn problem(resp: TestResponse) -> Value {
    resp.assert_content_type("application/problem+json");
    resp.0.into_body().into_json().await.unwrap()
}

#[tokio::test]
async fn serves_the_list_with_etag_and_cache_headers() {
    let (env, db) = users(Engine::Sqlite).await;
    rule(&db, "198.18.0.0/16", RuleAction::Block).await;
    rule(&db, "198.18.77.0/24", RuleAction::Exempt).await;
    rule(&db, "2001:db8::/48", RuleAction::Block).await;
    let cli = TestClient::new(app_with(env.config.clone(), db, eager()));

    let resp = cli.get("/blocklist.csv").send().await;
    resp.assert_status_is_ok();
    resp.assert_content_type("text/csv; charset=utf-8");
    resp.assert_header("cache-control", "no-cache, max-age=60");
    let tag = etag(&resp);
    assert!(tag.starts_with('"') && tag.ends_with('"') && tag.len() == 34, "strong tag: {tag}");
    resp.assert_text(
        "198.18.0.0/18\r\n198.18.64.0/21\r\n198.18.72.0/22\r\n198.18.76.0/24\r\n\
         198.18.78.0/23\r\n198.18.80.0/20\r\n198.18.96.0/19\r\n198.18.128.0/17\r\n\
         2001:db8::/48\r\n",
    )
    .await;

    // The header variant is another representation with its own tag.
    let resp = cli.get("/blocklist.csv").query("header", &1).send().await;
    resp.assert_status_is_ok();
    let header_tag = etag(&resp);
    assert_ne!(header_tag, tag);
    let body = resp.0.into_body().into_string().await.unwrap();
    assert!(body.starts_with("network\r\n198.18.0.0/18\r\n"), "{body}");

    // Same tag again for the same list.
    let again = cli.get("/blocklist.csv").send().await;
    assert_eq!(etag(&again), tag);
}

async fn unchanged_list_is_304_and_a_change_gives_a_new_etag(engine: Engine) {
    let (env, db) = users(engine).await;
    rule(&db, "203.0.113.0/24", RuleAction::Block).await;
    let cli = TestClient::new(app_with(env.config.clone(), db.clone(), eager()));
    let first = cli.get("/blocklist.csv").send().await;
    first.assert_status_is_ok();
    let tag = etag(&first);

    // Unchanged: 304 with the tag and no body, also for a weak or listed tag and for `*`.
    for value in [tag.clone(), format!("W/{tag}"), format!("\"nope\", {tag}"), "*".into()] {
        let resp = cli.get("/blocklist.csv").header("if-none-match", &value).send().await;
        resp.assert_status(StatusCode::NOT_MODIFIED);
        resp.assert_header("etag", &tag);
        resp.assert_header("cache-control", "no-cache, max-age=60");
        resp.assert_text("").await;
    }
    // The tag of the plain list does not validate the header variant.
    let resp = cli.get("/blocklist.csv?header=1").header("if-none-match", &tag).send().await;
    resp.assert_status_is_ok();

    // A new rule changes the list: the old tag no longer matches.
    rule(&db, "203.0.114.9", RuleAction::Block).await;
    let resp = cli.get("/blocklist.csv").header("if-none-match", &tag).send().await;
    resp.assert_status_is_ok();
    let changed = etag(&resp);
    assert_ne!(changed, tag);
    resp.assert_text("203.0.113.0/24\r\n203.0.114.9\r\n").await;

    // So does an exemption, and removing rules.
    rule(&db, "203.0.113.128/25", RuleAction::Exempt).await;
    let resp = cli.get("/blocklist.csv").header("if-none-match", &changed).send().await;
    resp.assert_status_is_ok();
    resp.assert_text("203.0.113.0/25\r\n203.0.114.9\r\n").await;
    access::remove_rules(&db, "203.0.113.128/25").await.unwrap();
    access::remove_rules(&db, "203.0.114.9").await.unwrap();
    let resp = cli.get("/blocklist.csv").send().await;
    resp.assert_status_is_ok();
    assert_eq!(etag(&resp), tag, "the same list has the same tag again");
}

#[tokio::test]
async fn a_wrong_or_missing_token_is_401_problem_json() {
    let (env, db) = users(Engine::Sqlite).await;
    settings(&db, Some("s3cret-token"), 60).await;
    let cli = TestClient::new(app_with(env.config.clone(), db, eager()));

    for auth in [None, Some("Bearer nope"), Some("Basic czNjcmV0LXRva2Vu"), Some("Bearer ")] {
        let mut req = cli.get("/blocklist.csv");
        if let Some(auth) = auth {
            req = req.header("authorization", auth);
        }
        let resp = req.send().await;
        resp.assert_status(StatusCode::UNAUTHORIZED);
        resp.assert_header("www-authenticate", "Bearer realm=\"pentavision-blocklist\"");
        resp.assert_header_is_not_exist("etag");
        let body = problem(resp).await;
        assert_eq!(body["status"], 401);
        assert_eq!(body["detail"], "a valid bearer token is required");
    }
    let ok = cli.get("/blocklist.csv").header("authorization", "Bearer s3cret-token").send().await;
    ok.assert_status_is_ok();
    // A conditional request without the token learns nothing either.
    let tag = etag(&ok);
    let resp = cli.get("/blocklist.csv").header("if-none-match", &tag).send().await;
    resp.assert_status(StatusCode::UNAUTHORIZED);
}

#[tokio::test]
async fn a_burst_gets_429_with_retry_after() {
    let (env, db) = users(Engine::Sqlite).await;
    settings(&db, None, 5).await;
    let cli = TestClient::new(app_with(env.config.clone(), db, eager()));
    // Five a minute; a burst of twelve is refused from the sixth on (or, if a minute boundary
    // falls inside the burst, from the eleventh).
    let mut statuses = Vec::new();
    let mut limited = None;
    for _ in 0..12 {
        let resp = cli.get("/blocklist.csv").send().await;
        statuses.push(resp.0.status().as_u16());
        if resp.0.status() == StatusCode::TOO_MANY_REQUESTS && limited.is_none() {
            limited = Some(resp);
        }
    }
    assert_eq!(statuses[..5], [200; 5], "{statuses:?}");
    assert!(statuses.iter().filter(|s| **s == 429).count() >= 2, "{statuses:?}");
    let limited = limited.unwrap();
    let retry: u64 = limited.0.headers()["retry-after"].to_str().unwrap().parse().unwrap();
    assert!((1..=60).contains(&retry), "Retry-After {retry}");
    let body = problem(limited).await;
    assert_eq!(body["status"], 429);
}

#[tokio::test]
async fn changes_show_after_the_revalidation_interval_and_the_last_list_survives_a_db_outage() {
    let (env, db) = users(Engine::Sqlite).await;
    rule(&db, "192.0.2.1", RuleAction::Block).await;
    let options = Options { revalidate_after: Duration::from_millis(300), ..Options::default() };
    let cli = TestClient::new(app_with(env.config.clone(), db.clone(), options));
    cli.get("/blocklist.csv").send().await.assert_text("192.0.2.1\r\n").await;

    // Within the interval the cached list is served; after it, the new one.
    rule(&db, "192.0.2.2", RuleAction::Block).await;
    cli.get("/blocklist.csv").send().await.assert_text("192.0.2.1\r\n").await;
    tokio::time::sleep(Duration::from_millis(400)).await;
    cli.get("/blocklist.csv").send().await.assert_text("192.0.2.1\r\n192.0.2.2\r\n").await;

    // The database goes away: the last list stays in force.
    db.close().await.unwrap();
    tokio::time::sleep(Duration::from_millis(400)).await;
    cli.get("/blocklist.csv").send().await.assert_text("192.0.2.1\r\n192.0.2.2\r\n").await;
}

#[tokio::test]
async fn no_database_at_all_is_503_and_the_list_can_be_disabled() {
    let (env, db) = users(Engine::Sqlite).await;
    let mut config = env.config.clone();
    config.blocklist.enabled = false;
    let cli = TestClient::new(app_with(config, db.clone(), eager()));
    let resp = cli.get("/blocklist.csv").send().await;
    resp.assert_status(StatusCode::NOT_FOUND);
    assert_eq!(problem(resp).await["detail"], "the blocklist is disabled");

    db.close().await.unwrap();
    let (env, db) = users(Engine::Sqlite).await;
    db.clone().close().await.unwrap();
    let cli = TestClient::new(app_with(env.config.clone(), db, eager()));
    let resp = cli.get("/blocklist.csv").send().await;
    resp.assert_status(StatusCode::SERVICE_UNAVAILABLE);
    assert_eq!(problem(resp).await["detail"], "the users database cannot be read");
}

macro_rules! on_every_engine {
    ($($name:ident),+ $(,)?) => {
        mod sqlite { $(#[tokio::test] async fn $name() { super::$name(pv_core::testkit::Engine::Sqlite).await })+ }
        mod postgres { $(#[tokio::test] async fn $name() { super::$name(pv_core::testkit::Engine::Postgres).await })+ }
        mod mariadb { $(#[tokio::test] async fn $name() { super::$name(pv_core::testkit::Engine::MySql).await })+ }
    };
}

on_every_engine!(unchanged_list_is_304_and_a_change_gives_a_new_etag);
