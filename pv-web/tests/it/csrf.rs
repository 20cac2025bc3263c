//! Per-page CSRF tokens: a sensitive write from a browser session without a valid token for
//! its user and route (missing, expired, another user's, another route's) is a 403 problem and
//! changes nothing; with one it succeeds; API-token callers need none; the same-origin check
//! still applies; `GET /auth/csrf` hands out tokens for protected routes only.

use chrono::{Duration, Utc};
use poem::http::{Method, StatusCode};
use poem::test::TestClient;
use pv_core::testkit::Engine;
use sea_orm::{EntityTrait, PaginatorTrait};
use serde_json::{Value, json};

use crate::{csrf_token, session_cookie, state, user_with_role};

/// What the database looks like, for "nothing changed".
async fn snapshot(state: &pv_web::AppState) -> (u64, u64, u64, String, Vec<String>) {
    use pv_core::db::users::{disarm_pin, ip_rule, user, user_role};
    let db = &state.dbs().users;
    let users = user::Entity::find().all(db).await.unwrap();
    (
        ip_rule::Entity::find().count(db).await.unwrap(),
        user_role::Entity::find().count(db).await.unwrap(),
        disarm_pin::Entity::find().count(db).await.unwrap(),
        pv_security::country::load_policy(db).await.unwrap().mode.as_str().to_string(),
        users.into_iter().map(|u| format!("{}:{}", u.username, u.account_status)).collect(),
    )
}

#[tokio::test]
async fn sensitive_writes_from_a_session_need_a_valid_token() {
    let (_env, state) = state(Engine::Sqlite).await;
    let admin = user_with_role(&state, "admin", Some("System Administrator"), None).await;
    let other = user_with_role(&state, "other-admin", Some("System Administrator"), None).await;
    let target = user_with_role(&state, "target", None, None).await;
    // The state changes the pages make, with the route each token is bound to.
    let writes: Vec<(Method, String, Value)> = vec![
        (
            Method::POST,
            "/security/ip-rules".into(),
            json!({ "network": "203.0.113.9", "action": "block" }),
        ),
        (Method::POST, "/security/ip-rules/exempt-me".into(), json!(null)),
        (
            Method::PUT,
            "/security/country-policy".into(),
            json!({ "mode": "off", "countries": ["DE"] }),
        ),
        (Method::POST, "/users".into(), json!({ "username": "newcomer" })),
        (Method::PUT, format!("/users/{target}/status"), json!({ "status": "suspended" })),
        (Method::POST, format!("/users/{target}/roles"), json!({ "role": "Auditor" })),
        (Method::PUT, "/auth/pin".into(), json!({ "new_pin": "86753090" })),
    ];
    let cookie = session_cookie(&state, admin).await;
    let cli = TestClient::new(pv_web::app::build(state.clone()));
    let send = |method: Method, path: String, body: Value, token: Option<String>| {
        let mut req = cli
            .request(method, format!("/api/v1{path}"))
            .header("cookie", &cookie)
            .header("x-forwarded-for", "198.51.100.20");
        if let Some(t) = token {
            req = req.header("x-csrf-token", t);
        }
        if !body.is_null() {
            req = req.body_json(&body);
        }
        req.send()
    };

    let before = snapshot(&state).await;
    let key = state.key();
    for (method, path, body) in &writes {
        let route = pv_web::csrf::route_of(path);
        let expired =
            pv_security::csrf::issue_until(key, admin, &route, Utc::now() - Duration::seconds(1));
        let other_route = if route == "/users" { "/security/ip-rules" } else { "/users" };
        for (token, expect) in [
            (None, "X-CSRF-Token"),
            (Some(expired), "expired"),
            (Some(csrf_token(&state, other, path)), "not issued for you"),
            (Some(csrf_token(&state, admin, other_route)), "not issued for you"),
            (Some("v1.notatoken".to_string()), "malformed"),
        ] {
            let resp = send(method.clone(), path.clone(), body.clone(), token).await;
            resp.assert_status(StatusCode::FORBIDDEN);
            resp.assert_content_type("application/problem+json");
            let problem: Value = resp.0.into_body().into_json().await.unwrap();
            assert_eq!(problem["status"], 403);
            let detail = problem["detail"].as_str().unwrap();
            assert!(detail.contains(expect), "{method} {path}: {detail}");
        }
    }
    assert_eq!(snapshot(&state).await, before, "refused requests changed nothing");

    // With the page's token each of them goes through.
    for (method, path, body) in &writes {
        let resp =
            send(method.clone(), path.clone(), body.clone(), Some(csrf_token(&state, admin, path)))
                .await;
        assert!(resp.0.status().is_success(), "{method} {path}: {}", resp.0.status());
    }
    let after = snapshot(&state).await;
    assert_eq!(after.0, before.0 + 2, "a block and an exemption");
    assert_eq!(after.1, before.1 + 1, "a role");
    assert_eq!(after.2, 1, "a PIN");
    assert!(after.4.contains(&"target:suspended".to_string()), "{:?}", after.4);
    assert!(after.4.iter().any(|u| u.starts_with("newcomer:")));
    // Removing a rule: the DELETE carries a query string; the route is the path.
    let resp = send(
        Method::DELETE,
        "/security/ip-rules?network=203.0.113.9".into(),
        json!(null),
        Some(csrf_token(&state, admin, "/security/ip-rules")),
    )
    .await;
    resp.assert_status(StatusCode::NO_CONTENT);

    // Reads need no token; the same-origin check still refuses a cross-site write.
    cli.get("/api/v1/users").header("cookie", &cookie).send().await.assert_status_is_ok();
    let resp = cli
        .post("/api/v1/security/ip-rules")
        .header("cookie", &cookie)
        .header("origin", "https://evil.example")
        .header("host", "localhost")
        .header("x-csrf-token", csrf_token(&state, admin, "/security/ip-rules"))
        .body_json(&json!({ "network": "203.0.113.10", "action": "block" }))
        .send()
        .await;
    resp.assert_status(StatusCode::FORBIDDEN);
    resp.assert_content_type("application/problem+json");
}

#[tokio::test]
async fn api_tokens_need_no_csrf_token_and_pages_can_ask_for_one() {
    let (_env, state) = state(Engine::Sqlite).await;
    let admin = user_with_role(&state, "admin", Some("System Administrator"), None).await;
    let target = user_with_role(&state, "target", None, None).await;
    let (secret, _) = pv_security::token::create(
        &state.dbs().users,
        admin,
        &pv_security::token::NewToken { name: "script".into(), ..Default::default() },
        Utc::now(),
    )
    .await
    .unwrap();
    let cli = TestClient::new(pv_web::app::build(state.clone()));
    cli.post("/api/v1/security/ip-rules")
        .header("authorization", format!("Bearer {secret}"))
        .body_json(&json!({ "network": "203.0.113.11", "action": "block" }))
        .send()
        .await
        .assert_status(StatusCode::CREATED);

    // A session asks for the token of a route (ids written as numbers or `{id}`).
    let cookie = session_cookie(&state, admin).await;
    let resp = cli
        .get(format!("/api/v1/auth/csrf?route=/users/{target}/status"))
        .header("cookie", &cookie)
        .send()
        .await;
    resp.assert_status_is_ok();
    let body: Value = resp.0.into_body().into_json().await.unwrap();
    assert_eq!(body["route"], "/users/{id}/status");
    let expires: chrono::DateTime<Utc> = body["expires_at"].as_str().unwrap().parse().unwrap();
    assert!(
        expires > Utc::now() + Duration::minutes(25)
            && expires <= Utc::now() + Duration::minutes(31)
    );
    cli.put(format!("/api/v1/users/{target}/status"))
        .header("cookie", &cookie)
        .header("x-csrf-token", body["token"].as_str().unwrap())
        .body_json(&json!({ "status": "disabled" }))
        .send()
        .await
        .assert_status_is_ok();
    // Routes that need no token are refused (a typo would otherwise go unnoticed).
    let resp = cli.get("/api/v1/auth/csrf?route=/auth/me").header("cookie", &cookie).send().await;
    resp.assert_status(StatusCode::BAD_REQUEST);
    resp.assert_content_type("application/problem+json");
    cli.get("/api/v1/auth/csrf?route=/users").send().await.assert_status(StatusCode::UNAUTHORIZED);
}
