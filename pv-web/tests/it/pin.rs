//! The disarm PIN over HTTP: set with proof and the page's CSRF token, the last use (when,
//! where, how), verification with `alarms.disarm`, 403 for a wrong PIN, 429 during a
//! lock-out, and the lock-out exemption of 192.168.250.0/24.

use poem::http::StatusCode;
use poem::test::{TestClient, TestResponse};
use pv_core::testkit::Engine;
use serde_json::{Value, json};

use crate::{csrf_token, session_cookie, state, user_with_role};

async fn problem(resp: TestResponse, status: StatusCode) -> String {
    resp.assert_status(status);
    resp.assert_content_type("application/problem+json");
    let body: Value = resp.0.into_body().into_json().await.unwrap();
    assert_eq!(body["status"], status.as_u16());
    body["detail"].as_str().unwrap().to_string()
}

type Cli = TestClient<poem::endpoint::BoxEndpoint<'static>>;

async fn get_pin(cli: &Cli, cookie: &str) -> Value {
    let resp = cli.get("/api/v1/auth/pin").header("cookie", cookie).send().await;
    resp.assert_status_is_ok();
    resp.0.into_body().into_json::<Value>().await.unwrap()
}

async fn make_property(state: &pv_web::AppState) -> i64 {
    use sea_orm::{ActiveModelTrait, Set};
    pv_core::db::users::property::ActiveModel {
        name: Set("Home".into()),
        timezone: Set("UTC".into()),
        created_at: Set(chrono::Utc::now()),
        updated_at: Set(chrono::Utc::now()),
        ..Default::default()
    }
    .insert(&state.dbs().users)
    .await
    .unwrap()
    .id
}

#[tokio::test]
async fn set_change_and_verify_a_pin() {
    let (_env, state) = state(Engine::Sqlite).await;
    let home = make_property(&state).await;
    let id = user_with_role(&state, "carol", Some("Adult Resident"), Some(home)).await;
    pv_security::account::set_password(
        &state.dbs().users,
        &state.config().security,
        id,
        "carol's long password",
        chrono::Utc::now(),
    )
    .await
    .unwrap();
    let cookie = session_cookie(&state, id).await;
    let csrf = csrf_token(&state, id, "/auth/pin");
    let cli = TestClient::new(pv_web::app::build(state.clone()));
    let put = |body: Value, token: Option<&str>| {
        let mut req = cli.put("/api/v1/auth/pin").header("cookie", &cookie).body_json(&body);
        if let Some(t) = token {
            req = req.header("x-csrf-token", t);
        }
        req.send()
    };

    let pin = get_pin(&cli, &cookie).await;
    assert_eq!(pin["has_pin"], false, "{pin}");
    assert!(pin["last_use"].is_null());

    let good = json!({ "new_pin": "48151623", "password": "carol's long password" });
    // From a session, the page's token is required.
    let detail = problem(put(good.clone(), None).await, StatusCode::FORBIDDEN).await;
    assert!(detail.contains("X-CSRF-Token"), "{detail}");
    // Not eight digits: a clear 400 that does not repeat the input.
    for bad in ["1234", "481516234", "4815162a", " 48151623"] {
        let body = json!({ "new_pin": bad, "password": "carol's long password" });
        let detail = problem(put(body, Some(&csrf)).await, StatusCode::BAD_REQUEST).await;
        assert!(detail.contains("exactly 8 digits"), "{detail}");
    }
    let wrong = json!({ "new_pin": "48151623", "password": "not the password" });
    problem(put(wrong, Some(&csrf)).await, StatusCode::FORBIDDEN).await;
    let none = json!({ "new_pin": "48151623" });
    let detail = problem(put(none, Some(&csrf)).await, StatusCode::FORBIDDEN).await;
    assert!(detail.contains("password or your current PIN"), "{detail}");
    assert_eq!(get_pin(&cli, &cookie).await["has_pin"], false, "nothing was set");

    put(good, Some(&csrf)).await.assert_status(StatusCode::NO_CONTENT);
    let pin = get_pin(&cli, &cookie).await;
    assert_eq!(pin["has_pin"], true);
    assert!(pin["set_at"].is_string());

    // Verify: wrong from the UI (a session), right from an integration (token) at a keypad.
    let verify = |auth: (&'static str, String), from: &'static str, body: Value| {
        cli.post("/api/v1/auth/pin/verify")
            .header(auth.0, auth.1)
            .header("x-forwarded-for", from)
            .body_json(&body)
            .send()
    };
    let session = || ("cookie", cookie.clone());
    let detail = problem(
        verify(session(), "203.0.113.5", json!({ "pin": "73737373" })).await,
        StatusCode::FORBIDDEN,
    )
    .await;
    assert_eq!(detail, "wrong PIN");
    let last = get_pin(&cli, &cookie).await["last_use"].clone();
    assert_eq!(last["success"], false, "{last}");
    assert_eq!(last["ip"], "203.0.113.5");
    assert_eq!(last["method"], "ui");

    let (secret, _) = pv_security::token::create(
        &state.dbs().users,
        id,
        &pv_security::token::NewToken { name: "panel".into(), ..Default::default() },
        chrono::Utc::now(),
    )
    .await
    .unwrap();
    let bearer = || ("authorization", format!("Bearer {secret}"));
    let body = json!({ "pin": "48151623", "property_id": home, "method": "keypad", "location": "Front door" });
    verify(bearer(), "198.51.100.3", body).await.assert_status(StatusCode::NO_CONTENT);
    let last = get_pin(&cli, &cookie).await["last_use"].clone();
    assert_eq!(last["success"], true, "{last}");
    assert_eq!(last["ip"], "198.51.100.3");
    assert_eq!(last["method"], "keypad");
    assert_eq!(last["location"], "Front door");
    assert!(last["at"].is_string());
    // No method given with a token: `api`.
    verify(bearer(), "198.51.100.3", json!({ "pin": "48151623" }))
        .await
        .assert_status(StatusCode::NO_CONTENT);
    assert_eq!(get_pin(&cli, &cookie).await["last_use"]["method"], "api");
    let detail = problem(
        verify(bearer(), "198.51.100.3", json!({ "pin": "48151623", "method": "phone" })).await,
        StatusCode::BAD_REQUEST,
    )
    .await;
    assert!(detail.contains("api, ui or keypad"), "{detail}");

    // Only on a property the caller may disarm.
    let other = make_property(&state).await;
    problem(
        verify(bearer(), "198.51.100.3", json!({ "pin": "48151623", "property_id": other })).await,
        StatusCode::FORBIDDEN,
    )
    .await;

    // Change with the current PIN through the API token (no CSRF token for bearer callers);
    // the old PIN is then wrong and cannot come back.
    let resp = cli
        .put("/api/v1/auth/pin")
        .header("authorization", format!("Bearer {secret}"))
        .body_json(&json!({ "new_pin": "42424242", "current_pin": "48151623" }))
        .send()
        .await;
    resp.assert_status(StatusCode::NO_CONTENT);
    problem(
        verify(bearer(), "198.51.100.3", json!({ "pin": "48151623" })).await,
        StatusCode::FORBIDDEN,
    )
    .await;
    let back = json!({ "new_pin": "48151623", "current_pin": "42424242" });
    let detail = problem(put(back, Some(&csrf)).await, StatusCode::BAD_REQUEST).await;
    assert!(detail.contains("last 5"), "{detail}");

    // Every set and verify is audited, without the PIN or password.
    use sea_orm::{ColumnTrait, EntityTrait, QueryFilter};
    let events = pv_core::db::users::audit_event::Entity::find()
        .filter(pv_core::db::users::audit_event::Column::Action.starts_with("pin."))
        .all(&state.dbs().users)
        .await
        .unwrap();
    assert!(events.iter().filter(|e| e.action == "pin.verify").count() >= 4);
    assert!(events.iter().filter(|e| e.action == "pin.set").count() >= 8);
    assert!(events.iter().any(|e| e.ip.as_deref() == Some("203.0.113.5")));
    let text = format!("{events:?}");
    for secret in ["48151623", "42424242", "73737373", "carol's long password"] {
        assert!(!text.contains(secret), "{secret} in the audit log");
    }
}

#[tokio::test]
async fn wrong_pins_lock_out_except_from_the_exempt_network() {
    let (_env, state) = state(Engine::Sqlite).await;
    let home = make_property(&state).await;
    let id = user_with_role(&state, "guest", Some("Guest"), Some(home)).await;
    let tech = user_with_role(&state, "tech", Some("Technician"), None).await;
    let cookie = session_cookie(&state, id).await;
    let cli = TestClient::new(pv_web::app::build(state.clone()));
    // A passkey-only account sets its first PIN with its session alone.
    cli.put("/api/v1/auth/pin")
        .header("cookie", &cookie)
        .header("x-csrf-token", csrf_token(&state, id, "/auth/pin"))
        .body_json(&json!({ "new_pin": "13572468" }))
        .send()
        .await
        .assert_status(StatusCode::NO_CONTENT);
    let verify = |pin: &'static str, from: &'static str| {
        cli.post("/api/v1/auth/pin/verify")
            .header("cookie", &cookie)
            .header("x-forwarded-for", from)
            .body_json(&json!({ "pin": pin, "property_id": home }))
            .send()
    };
    let addrs = ["203.0.113.1", "203.0.113.2", "203.0.113.3", "203.0.113.4"];
    let mut statuses = Vec::new();
    for i in 0..8 {
        statuses.push(verify("99999999", addrs[i % addrs.len()]).await.0.status());
    }
    let free = usize::try_from(state.config().security.lockout_free_attempts).unwrap();
    assert!(statuses[..=free].iter().all(|s| *s == StatusCode::FORBIDDEN), "{statuses:?}");
    assert_eq!(*statuses.last().unwrap(), StatusCode::TOO_MANY_REQUESTS, "{statuses:?}");
    // Locked: the right PIN too, with Retry-After and a problem document.
    let resp = verify("13572468", "198.51.100.9").await;
    assert!(resp.0.headers().get("retry-after").is_some());
    let detail = problem(resp, StatusCode::TOO_MANY_REQUESTS).await;
    assert!(detail.contains("too many wrong PINs"), "{detail}");
    // The management LAN is never locked out (it still needs the right PIN).
    problem(verify("99999999", "192.168.250.30").await, StatusCode::FORBIDDEN).await;
    verify("13572468", "192.168.250.30").await.assert_status(StatusCode::NO_CONTENT);

    // Without alarms.disarm: 403 before any PIN is looked at.
    let tech_cookie = session_cookie(&state, tech).await;
    let resp = cli
        .post("/api/v1/auth/pin/verify")
        .header("cookie", &tech_cookie)
        .body_json(&json!({ "pin": "13572468" }))
        .send()
        .await;
    let detail = problem(resp, StatusCode::FORBIDDEN).await;
    assert!(detail.contains("alarms.disarm"), "{detail}");
    // A user without a PIN is told to set one (409).
    let admin = crate::admin_cookie(&state).await;
    let resp = cli
        .post("/api/v1/auth/pin/verify")
        .header("cookie", &admin)
        .body_json(&json!({ "pin": "13572468" }))
        .send()
        .await;
    let detail = problem(resp, StatusCode::CONFLICT).await;
    assert!(detail.contains("set one first"), "{detail}");

    use sea_orm::{ColumnTrait, EntityTrait, PaginatorTrait, QueryFilter};
    let lockouts = pv_core::db::users::audit_event::Entity::find()
        .filter(pv_core::db::users::audit_event::Column::Action.eq("pin.lockout"))
        .count(&state.dbs().users)
        .await
        .unwrap();
    assert!(lockouts >= 1);
}
