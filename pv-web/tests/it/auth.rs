//! Sign-in flows over HTTP: setup code → TOTP enrolment, lock-out and its exemption, bad
//! input and replayed passkey challenges, and secrets kept out of logs.

use poem::http::StatusCode;
use poem::test::TestClient;
use pv_core::testkit::Engine;
use serde_json::{Value, json};

use crate::{state, user_with_role};

fn cookie_of(resp: &poem::test::TestResponse) -> String {
    let set = resp.0.headers().get("set-cookie").expect("set-cookie").to_str().unwrap().to_string();
    assert!(set.contains("HttpOnly") && set.contains("SameSite=Strict"), "{set}");
    set.split(';').next().unwrap().to_string()
}

#[tokio::test]
async fn setup_code_then_totp_enrolment_then_password_and_code() {
    let (env, state) = state(Engine::Sqlite).await;
    let seed = pv_security::account::seed_admin(
        &state.dbs().users,
        env.data_dir.path(),
        chrono::Utc::now(),
    )
    .await
    .unwrap();
    let pv_security::account::Seed::Created { code, file } = seed else { panic!("seeded") };
    {
        use std::os::unix::fs::PermissionsExt;
        assert_eq!(std::fs::metadata(&file).unwrap().permissions().mode() & 0o777, 0o600);
    }
    let cli = TestClient::new(pv_web::app::build(state.clone()));
    let login = |body: Value| cli.post("/api/v1/auth/login").body_json(&body).send();

    let resp = login(json!({ "username": "Thalia", "password": "WRONG-CODE-0000" })).await;
    resp.assert_status(StatusCode::UNAUTHORIZED);
    resp.assert_content_type("application/problem+json");

    let resp = login(json!({ "username": "thalia", "password": code })).await;
    resp.assert_status_is_ok();
    let cookie = cookie_of(&resp);
    let body: Value = resp.0.into_body().into_json().await.unwrap();
    assert_eq!(body["stage"], "enrol");
    // An enrol session can do nothing else.
    cli.get("/api/v1/system")
        .header("cookie", &cookie)
        .send()
        .await
        .assert_status(StatusCode::FORBIDDEN);

    // Choose a password, then TOTP.
    cli.post("/api/v1/auth/password")
        .header("cookie", &cookie)
        .body_json(&json!({ "new_password": "correct horse battery" }))
        .send()
        .await
        .assert_status(StatusCode::NO_CONTENT);
    let start: Value = cli
        .post("/api/v1/auth/totp/start")
        .header("cookie", &cookie)
        .send()
        .await
        .0
        .into_body()
        .into_json()
        .await
        .unwrap();
    let secret = start["secret"].as_str().unwrap().to_string();
    assert!(
        start["qr_svg"].as_str().unwrap().starts_with("<?xml")
            || start["qr_svg"].as_str().unwrap().contains("<svg")
    );
    // Stored sealed, never in clear.
    use sea_orm::EntityTrait;
    let stored =
        pv_core::db::users::totp_credential::Entity::find().all(&state.dbs().users).await.unwrap();
    assert!(stored.iter().all(|c| !c.secret.contains(&secret) && c.secret.starts_with("v1:")));

    let now = chrono::Utc::now();
    let code_now = pv_security::totp::code_at(&secret, now).unwrap();
    let resp = cli
        .post("/api/v1/auth/totp/confirm")
        .header("cookie", &cookie)
        .body_json(&json!({ "code": code_now }))
        .send()
        .await;
    resp.assert_status_is_ok();
    let codes: Value = resp.0.into_body().into_json().await.unwrap();
    assert_eq!(codes["recovery_codes"].as_array().unwrap().len(), 10);
    // The session is now full and the setup code is dead.
    cli.get("/api/v1/auth/me").header("cookie", &cookie).send().await.assert_status_is_ok();
    assert!(!file.exists(), "setup code file removed");
    login(json!({ "username": "Thalia", "password": code }))
        .await
        .assert_status(StatusCode::UNAUTHORIZED);

    // Password alone now asks for the code; a replayed code is refused; the next step works.
    let resp = login(json!({ "username": "Thalia", "password": "correct horse battery" })).await;
    resp.assert_status(StatusCode::UNAUTHORIZED);
    let detail: Value = resp.0.into_body().into_json().await.unwrap();
    assert!(detail["detail"].as_str().unwrap().contains("authenticator app"), "{detail}");
    login(json!({ "username": "Thalia", "password": "correct horse battery", "code": code_now }))
        .await
        .assert_status(StatusCode::UNAUTHORIZED);
    let next = pv_security::totp::code_at(&secret, now + chrono::Duration::seconds(30)).unwrap();
    let resp =
        login(json!({ "username": "Thalia", "password": "correct horse battery", "code": next }))
            .await;
    resp.assert_status_is_ok();
    let body: Value = resp.0.into_body().into_json().await.unwrap();
    assert_eq!(body["stage"], "full");

    // The audit chain recorded it all and verifies.
    let v = pv_security::audit::verify(&state.dbs().users).await.unwrap();
    assert!(v.first_broken.is_none());
    assert!(v.events >= 5, "{}", v.events);
}

#[tokio::test]
async fn ten_wrong_passwords_lock_the_account_but_not_for_the_exempt_network() {
    let (_env, state) = state(Engine::Sqlite).await;
    let db = &state.dbs().users;
    let new = pv_security::account::NewUser {
        username: "alice".into(),
        password: Some("the right password".into()),
        ..Default::default()
    };
    pv_security::account::create_user(db, &state.config().security, &new, chrono::Utc::now())
        .await
        .unwrap();
    let cli = TestClient::new(pv_web::app::build(state.clone()));
    let attempt = |password: &'static str, from: &'static str| {
        cli.post("/api/v1/auth/login")
            .header("x-forwarded-for", from)
            .body_json(&json!({ "username": "alice", "password": password }))
            .send()
    };
    let mut statuses = Vec::new();
    for i in 0..10 {
        // Spread over addresses so the per-address rate limit is not what stops them.
        let from =
            ["203.0.113.1", "203.0.113.2", "203.0.113.3", "203.0.113.4", "203.0.113.5"][i % 5];
        statuses.push(attempt("wrong", from).await.0.status());
    }
    assert!(statuses[..5].iter().all(|s| *s == StatusCode::UNAUTHORIZED), "{statuses:?}");
    assert_eq!(*statuses.last().unwrap(), StatusCode::TOO_MANY_REQUESTS, "{statuses:?}");
    // Locked: even the right password is refused, with Retry-After.
    let resp = attempt("the right password", "198.51.100.7").await;
    resp.assert_status(StatusCode::TOO_MANY_REQUESTS);
    assert!(resp.0.headers().get("retry-after").is_some());
    // 192.168.250.0/24 is never locked out (it still needs the right password).
    attempt("wrong", "192.168.250.7").await.assert_status(StatusCode::UNAUTHORIZED);
    let resp = attempt("the right password", "192.168.250.7").await;
    resp.assert_status_is_ok();
    let body: Value = resp.0.into_body().into_json().await.unwrap();
    assert_eq!(body["stage"], "enrol", "no second factor yet");
    // The lock-out is in the audit log.
    use sea_orm::{ColumnTrait, EntityTrait, PaginatorTrait, QueryFilter};
    let lockouts = pv_core::db::users::audit_event::Entity::find()
        .filter(pv_core::db::users::audit_event::Column::Action.eq("auth.lockout"))
        .count(db)
        .await
        .unwrap();
    assert!(lockouts >= 1);
}

#[tokio::test]
async fn bad_input_gets_a_clear_4xx_and_changes_nothing() {
    let (_env, state) = state(Engine::Sqlite).await;
    let admin = user_with_role(&state, "admin", Some("System Administrator"), None).await;
    let cookie = crate::session_cookie(&state, admin).await;
    let rules_token = crate::csrf_token(&state, admin, "/security/ip-rules");
    let policy_token = crate::csrf_token(&state, admin, "/security/country-policy");
    let cli = TestClient::new(pv_web::app::build(state.clone()));
    use sea_orm::{EntityTrait, PaginatorTrait};
    let rules_before =
        pv_core::db::users::ip_rule::Entity::find().count(&state.dbs().users).await.unwrap();

    let problem = |resp: poem::test::TestResponse, status: StatusCode| async move {
        resp.assert_status(status);
        resp.assert_content_type("application/problem+json");
        let body: Value = resp.0.into_body().into_json().await.unwrap();
        body["detail"].as_str().unwrap().to_string()
    };
    let detail = problem(
        cli.post("/api/v1/security/ip-rules")
            .header("cookie", &cookie)
            .header("x-csrf-token", &rules_token)
            .body_json(&json!({ "network": "10.0.0.300/33", "action": "block" }))
            .send()
            .await,
        StatusCode::BAD_REQUEST,
    )
    .await;
    assert!(detail.contains("10.0.0.300/33"), "{detail}");
    let detail = problem(
        cli.put("/api/v1/security/country-policy")
            .header("cookie", &cookie)
            .header("x-csrf-token", &policy_token)
            .body_json(&json!({ "mode": "deny", "countries": ["DE", "XX"], "mmdb_path": "/nonexistent.mmdb" }))
            .send()
            .await,
        StatusCode::BAD_REQUEST,
    )
    .await;
    assert!(detail.contains("XX"), "{detail}");
    let big = "x".repeat(usize::try_from(state.config().server.body_limit_bytes).unwrap() + 1);
    problem(
        cli.post("/api/v1/security/ip-rules")
            .header("cookie", &cookie)
            .header("x-csrf-token", &rules_token)
            .header("content-type", "application/json")
            .header("content-length", big.len())
            .body(big)
            .send()
            .await,
        StatusCode::PAYLOAD_TOO_LARGE,
    )
    .await;
    problem(
        cli.post("/api/v1/security/ip-rules")
            .header("cookie", &cookie)
            .header("x-csrf-token", &rules_token)
            .header("content-type", "application/x-www-form-urlencoded")
            .header("content-length", 20)
            .body("network=1.2.3.4&a=b")
            .send()
            .await,
        StatusCode::UNSUPPORTED_MEDIA_TYPE,
    )
    .await;
    let rules_after =
        pv_core::db::users::ip_rule::Entity::find().count(&state.dbs().users).await.unwrap();
    assert_eq!(rules_before, rules_after, "nothing changed");
    let policy = pv_security::country::load_policy(&state.dbs().users).await.unwrap();
    assert_eq!(policy.mode, pv_security::country::PolicyMode::Off);

    // A good rule goes in.
    cli.post("/api/v1/security/ip-rules")
        .header("cookie", &cookie)
        .header("x-csrf-token", &rules_token)
        .body_json(&json!({ "network": "203.0.113.0/24", "action": "block", "reason": "test" }))
        .send()
        .await
        .assert_status(StatusCode::CREATED);
}

#[tokio::test]
async fn a_passkey_challenge_works_once() {
    let (_env, state) = state(Engine::Sqlite).await;
    let cli = TestClient::new(pv_web::app::build(state.clone()));
    let start: Value = cli
        .post("/api/v1/auth/passkeys/login/start")
        .send()
        .await
        .0
        .into_body()
        .into_json()
        .await
        .unwrap();
    let id = start["ceremony_id"].as_i64().unwrap();
    assert!(start["options"]["publicKey"]["challenge"].is_string(), "{start}");
    let forged = json!({
        "id": "AAAA", "rawId": "AAAA", "type": "public-key", "extensions": {},
        "response": { "authenticatorData": "AAAA", "clientDataJSON": "AAAA", "signature": "AAAA", "userHandle": null }
    });
    for _ in 0..2 {
        let resp = cli
            .post("/api/v1/auth/passkeys/login/finish")
            .body_json(&json!({ "ceremony_id": id, "credential": forged }))
            .send()
            .await;
        resp.assert_status(StatusCode::BAD_REQUEST);
        resp.assert_content_type("application/problem+json");
    }
    // The second attempt found the challenge spent.
    use sea_orm::{EntityTrait, PaginatorTrait};
    let left = pv_core::db::users::webauthn_ceremony::Entity::find()
        .count(&state.dbs().users)
        .await
        .unwrap();
    assert_eq!(left, 0);
    let resp = cli
        .post("/api/v1/auth/passkeys/login/finish")
        .body_json(&json!({ "ceremony_id": id, "credential": forged }))
        .send()
        .await;
    let body: Value = resp.0.into_body().into_json().await.unwrap();
    assert!(body["detail"].as_str().unwrap().contains("already used"), "{body}");
}

#[tokio::test]
async fn api_tokens_act_as_their_user_until_revoked() {
    let (_env, state) = state(Engine::Sqlite).await;
    let id = user_with_role(&state, "auditor", Some("Auditor"), None).await;
    let cookie = crate::session_cookie(&state, id).await;
    let cli = TestClient::new(pv_web::app::build(state.clone()));
    let resp = cli
        .post("/api/v1/auth/tokens")
        .header("cookie", &cookie)
        .body_json(&json!({ "name": "script", "scopes": ["system.view"] }))
        .send()
        .await;
    resp.assert_status(StatusCode::CREATED);
    let token: Value = resp.0.into_body().into_json().await.unwrap();
    let bearer = format!("Bearer {}", token["secret"].as_str().unwrap());
    cli.get("/api/v1/system").header("authorization", &bearer).send().await.assert_status_is_ok();
    // Scoped: the auditor may read users, the token may not.
    cli.get("/api/v1/users").header("cookie", &cookie).send().await.assert_status_is_ok();
    cli.get("/api/v1/users")
        .header("authorization", &bearer)
        .send()
        .await
        .assert_status(StatusCode::FORBIDDEN);
    pv_security::token::revoke(
        &state.dbs().users,
        token["id"].as_i64().unwrap(),
        None,
        chrono::Utc::now(),
    )
    .await
    .unwrap();
    cli.get("/api/v1/system")
        .header("authorization", &bearer)
        .send()
        .await
        .assert_status(StatusCode::UNAUTHORIZED);
    // A suspended account is refused at once.
    pv_security::account::set_status(
        &state.dbs().users,
        id,
        pv_security::account::AccountStatus::Suspended,
        None,
        chrono::Utc::now(),
    )
    .await
    .unwrap();
    cli.get("/api/v1/auth/me")
        .header("cookie", &cookie)
        .send()
        .await
        .assert_status(StatusCode::UNAUTHORIZED);
}

#[tokio::test]
async fn the_last_active_administrator_cannot_be_suspended() {
    let (_env, state) = state(Engine::Sqlite).await;
    let admin = user_with_role(&state, "admin", Some("System Administrator"), None).await;
    let cookie = crate::session_cookie(&state, admin).await;
    let cli = TestClient::new(pv_web::app::build(state.clone()));
    let path = format!("/api/v1/users/{admin}/status");
    let resp = cli
        .put(&path)
        .header("cookie", &cookie)
        .header("x-csrf-token", crate::csrf_token(&state, admin, &path))
        .body_json(&json!({ "status": "suspended" }))
        .send()
        .await;
    resp.assert_status(StatusCode::CONFLICT);
    resp.assert_content_type("application/problem+json");
    let body: Value = resp.0.into_body().into_json().await.unwrap();
    let detail = body["detail"].as_str().unwrap();
    assert!(detail.contains("last active System Administrator cannot be suspended"), "{detail}");
    // Still active and signed in.
    cli.get("/api/v1/auth/me").header("cookie", &cookie).send().await.assert_status_is_ok();
}

#[tokio::test]
async fn browsers_on_loopback_ip_go_to_localhost_and_sign_in_returns_to_the_page_asked_for() {
    let (_env, state) = state(Engine::Sqlite).await;
    let cli = TestClient::new(pv_web::app::build(state.clone()));
    let html = "text/html,application/xhtml+xml";
    let location = |resp: &poem::test::TestResponse| {
        resp.0.headers().get("location").map(|l| l.to_str().unwrap().to_string())
    };

    // A browser on 127.0.0.1 or [::1]: the same path and query on localhost.
    for host in ["127.0.0.1:8080", "[::1]:8080"] {
        let resp = cli.get("/cameras?x=1").header("host", host).header("accept", html).send().await;
        resp.assert_status(StatusCode::TEMPORARY_REDIRECT);
        assert_eq!(location(&resp).as_deref(), Some("http://localhost:8080/cameras?x=1"));
    }
    // API calls, assets and clients that do not ask for HTML stay where they are.
    for (path, accept) in
        [("/api/v1/auth/me", html), ("/static/app.css", html), ("/cameras", "*/*")]
    {
        let resp =
            cli.get(path).header("host", "127.0.0.1:8080").header("accept", accept).send().await;
        assert_ne!(resp.0.status(), StatusCode::TEMPORARY_REDIRECT, "{path} {accept}");
    }

    // Anonymous on localhost: the sign-in page, which knows where to return.
    let resp = cli.get("/recordings?day=1").header("host", "localhost:8080").send().await;
    resp.assert_status(StatusCode::SEE_OTHER);
    assert_eq!(location(&resp).as_deref(), Some("/login?next=/recordings%3Fday%3D1"));
    let resp = cli
        .get("/login?next=%2Frecordings")
        .header("host", "localhost:8080")
        .header("accept", html)
        .send()
        .await;
    resp.assert_status_is_ok();
    let body = resp.0.into_body().into_string().await.unwrap();
    assert!(body.contains(r#""next":"/recordings""#), "{body}");
    assert!(body.contains("data-action=\"passkey-login\""));
    // Another origin in next is dropped.
    for evil in ["//evil.example", "/%5Cevil.example", "https://evil.example/"] {
        let body = cli
            .get(format!("/login?next={evil}"))
            .header("host", "localhost:8080")
            .send()
            .await
            .0
            .into_body()
            .into_string()
            .await
            .unwrap();
        assert!(body.contains(r#""next":"/""#), "{evil}: {body}");
    }

    // Another IP address: no passkey button, a note why.
    let body = cli
        .get("/login")
        .header("host", "192.0.2.10:8080")
        .header("accept", html)
        .send()
        .await
        .0
        .into_body()
        .into_string()
        .await
        .unwrap();
    assert!(body.contains("Passkeys need a host name"), "{body}");
    assert!(!body.contains("data-action=\"passkey-login\""));

    // Signed in: /login sends on to next (same origin only).
    let id = user_with_role(&state, "viewer", Some("Auditor"), None).await;
    let cookie = crate::session_cookie(&state, id).await;
    for (query, to) in [("?next=%2Faudit", "/audit"), ("?next=%2F%2Fevil.example", "/")] {
        let resp = cli
            .get(format!("/login{query}"))
            .header("host", "localhost:8080")
            .header("cookie", &cookie)
            .send()
            .await;
        resp.assert_status(StatusCode::SEE_OTHER);
        assert_eq!(location(&resp).as_deref(), Some(to));
    }
}

#[tokio::test]
async fn new_recovery_codes_replace_the_old_ones() {
    let (_env, state) = state(Engine::Sqlite).await;
    let cli = TestClient::new(pv_web::app::build(state.clone()));
    let db = &state.dbs().users;
    let id = user_with_role(&state, "rowan", Some("Auditor"), None).await;
    let now = chrono::Utc::now();
    pv_security::account::set_password(
        db,
        &state.config().security,
        id,
        "rowan's long password",
        now,
    )
    .await
    .unwrap();
    let user = pv_security::account::get(db, id).await.unwrap();
    let e = pv_security::account::totp_begin(db, state.key(), &user, now).await.unwrap();
    let code = pv_security::totp::code_at(&e.secret_base32, now).unwrap();
    let old =
        pv_security::account::totp_confirm(db, state.key(), id, &code, now).await.unwrap().unwrap();
    let cookie = crate::session_cookie(&state, id).await;

    let resp = cli.post("/api/v1/auth/recovery-codes").header("cookie", &cookie).send().await;
    resp.assert_status_is_ok();
    let body: Value = resp.0.into_body().into_json().await.unwrap();
    let fresh: Vec<String> = body["recovery_codes"]
        .as_array()
        .unwrap()
        .iter()
        .map(|c| c.as_str().unwrap().to_string())
        .collect();
    assert_eq!(fresh.len(), 10);
    assert!(fresh.iter().all(|c| !old.contains(c)));

    let login = |code: &str| {
        cli.post("/api/v1/auth/login")
            .body_json(
                &json!({ "username": "rowan", "password": "rowan's long password", "code": code }),
            )
            .send()
    };
    login(&old[0]).await.assert_status(StatusCode::UNAUTHORIZED);
    login(&fresh[0]).await.assert_status_is_ok();
    login(&fresh[0]).await.assert_status(StatusCode::UNAUTHORIZED);
}
