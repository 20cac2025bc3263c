//! Hostile input over HTTP: a country database path naming a device, a FIFO or a huge file is
//! refused quickly (no read, no memory growth) with a clear problem; names with control
//! characters are refused (over REST and GraphQL writes); a megabyte of user input is never
//! echoed whole; poem's own errors
//! (bad JSON, a bad path parameter, no body) come out as problem documents with a status the
//! OpenAPI document declares.

use std::time::{Duration, Instant};

use poem::http::StatusCode;
use poem::test::{TestClient, TestResponse};
use pv_core::testkit::Engine;
use serde_json::{Value, json};

use crate::{state, user_with_role};

/// The status, content type and `detail` of a problem response.
async fn problem(resp: TestResponse, status: StatusCode) -> String {
    resp.assert_status(status);
    resp.assert_content_type("application/problem+json");
    let body: Value = resp.0.into_body().into_json().await.unwrap();
    assert_eq!(body["status"], status.as_u16());
    body["detail"].as_str().unwrap().to_string()
}

/// Resident memory of this process in bytes (Linux).
fn resident_bytes() -> u64 {
    let statm = std::fs::read_to_string("/proc/self/statm").unwrap();
    let pages: u64 = statm.split_whitespace().nth(1).unwrap().parse().unwrap();
    pages * 4096
}

#[tokio::test]
async fn country_database_must_be_a_regular_file_of_bounded_size() {
    let (_env, state) = state(Engine::Sqlite).await;
    let admin = user_with_role(&state, "admin", Some("System Administrator"), None).await;
    let cookie = crate::session_cookie(&state, admin).await;
    let csrf = crate::csrf_token(&state, admin, "/security/country-policy");
    let cli = TestClient::new(pv_web::app::build(state.clone()));
    let dir = tempfile::tempdir().unwrap();
    let fifo = dir.path().join("country.mmdb.fifo");
    rustix::fs::mkfifoat(rustix::fs::CWD, &fifo, rustix::fs::Mode::from_raw_mode(0o600)).unwrap();
    let huge = dir.path().join("huge.mmdb");
    std::fs::File::create(&huge).unwrap().set_len(1 << 30).unwrap(); // 1 GiB, sparse

    let before = resident_bytes();
    for (path, expected) in [
        ("/dev/zero".to_string(), "is a device; it must be a regular file"),
        (fifo.display().to_string(), "is a named pipe (FIFO); it must be a regular file"),
        (huge.display().to_string(), "is larger than the limit of 256 MiB"),
        (dir.path().display().to_string(), "is a directory; it must be a regular file"),
    ] {
        let started = Instant::now();
        let resp = cli
            .put("/api/v1/security/country-policy")
            .header("cookie", &cookie)
            .header("x-csrf-token", &csrf)
            .body_json(&json!({ "mode": "deny", "countries": ["GB"], "mmdb_path": path }))
            .send();
        let resp = tokio::time::timeout(Duration::from_secs(10), resp)
            .await
            .unwrap_or_else(|_| panic!("PUT with mmdb_path={path} did not answer within 10 s"));
        let detail = problem(resp, StatusCode::BAD_REQUEST).await;
        assert!(detail.contains(expected) && detail.contains(&path), "{path}: {detail}");
        assert!(detail.starts_with("the country database"), "{detail}");
        assert!(started.elapsed() < Duration::from_secs(2), "{path} took {:?}", started.elapsed());
    }
    let grown = resident_bytes().saturating_sub(before);
    assert!(grown < 200 << 20, "resident memory grew by {} MiB", grown >> 20);

    // Nothing was saved: the policy is still off.
    let body: Value = cli
        .get("/api/v1/security/country-policy")
        .header("cookie", &cookie)
        .send()
        .await
        .0
        .into_body()
        .into_json()
        .await
        .unwrap();
    assert_eq!(body["mode"], "off");
    assert!(body.get("mmdb_path").is_none(), "an absent path is left out, not null: {body}");
}

#[tokio::test]
async fn names_refuse_control_characters_and_details_quote_input_short() {
    let (_env, state) = state(Engine::Sqlite).await;
    let admin = user_with_role(&state, "admin", Some("System Administrator"), None).await;
    let cookie = crate::session_cookie(&state, admin).await;
    let cli = TestClient::new(pv_web::app::build(state.clone()));

    // A token name with NUL is refused, and no token is stored.
    let detail = problem(
        cli.post("/api/v1/auth/tokens")
            .header("cookie", &cookie)
            .body_json(&json!({ "name": "deploy\u{0}bot" }))
            .send()
            .await,
        StatusCode::BAD_REQUEST,
    )
    .await;
    assert!(detail.contains("control characters") && detail.contains("NUL"), "{detail}");
    let tokens: Value = cli
        .get("/api/v1/auth/tokens")
        .header("cookie", &cookie)
        .send()
        .await
        .0
        .into_body()
        .into_json()
        .await
        .unwrap();
    assert_eq!(tokens.as_array().map(Vec::len), Some(0), "{tokens}");

    // A 1 MB user name: refused, and the detail repeats only a short prefix.
    let users_csrf = crate::csrf_token(&state, admin, "/users");
    let huge = "a".repeat(1 << 20);
    let detail = problem(
        cli.post("/api/v1/users")
            .header("cookie", &cookie)
            .header("x-csrf-token", &users_csrf)
            .body_json(&json!({ "username": huge, "password": "correct horse battery" }))
            .send()
            .await,
        StatusCode::BAD_REQUEST,
    )
    .await;
    assert!(detail.len() < 300, "the detail is {} bytes long: {detail}", detail.len());
    assert!(detail.contains(&format!("\"{}…\"", "a".repeat(64))), "{detail}");

    // A display name with a line break, a camera name with ESC.
    let detail = problem(
        cli.post("/api/v1/users")
            .header("cookie", &cookie)
            .header("x-csrf-token", &users_csrf)
            .body_json(&json!({ "username": "eve", "display_name": "Eve\nAdmin: yes" }))
            .send()
            .await,
        StatusCode::BAD_REQUEST,
    )
    .await;
    assert!(detail.contains("control characters") && detail.contains("line break"), "{detail}");
    let detail = problem(
        cli.post("/api/v1/cameras")
            .header("cookie", &cookie)
            .header("x-csrf-token", crate::csrf_token(&state, admin, "/cameras"))
            .body_json(&json!({ "name": "door\u{1b}[2J", "main_url": "rtsp://192.0.2.1/s" }))
            .send()
            .await,
        StatusCode::BAD_REQUEST,
    )
    .await;
    assert!(detail.contains("control characters"), "{detail}");
}

#[tokio::test]
async fn poem_errors_are_problems_with_declared_statuses() {
    let (_env, state) = state(Engine::Sqlite).await;
    let admin = user_with_role(&state, "admin", Some("System Administrator"), None).await;
    let cookie = crate::session_cookie(&state, admin).await;
    let cli = TestClient::new(pv_web::app::build(state.clone()));

    // Malformed JSON, a wrong field type, a missing body, a non-numeric path id.
    for body in ["{\"name\": ", "{\"name\": [\"x\"]}", "[]"] {
        let resp = cli
            .post("/api/v1/auth/tokens")
            .header("cookie", &cookie)
            .content_type("application/json")
            .body(body)
            .send()
            .await;
        assert_eq!(resp.0.status(), StatusCode::BAD_REQUEST, "{body}");
        problem(resp, StatusCode::BAD_REQUEST).await;
    }
    let resp = cli.post("/api/v1/auth/tokens").header("cookie", &cookie).send().await;
    let status = resp.0.status();
    assert!(matches!(status.as_u16(), 400 | 415), "{status:?}");
    problem(resp, status).await;
    problem(
        cli.get("/api/v1/cameras/not-a-number").header("cookie", &cookie).send().await,
        StatusCode::BAD_REQUEST,
    )
    .await;
    // A chunked body (no length) and a form body.
    problem(
        cli.post("/api/v1/auth/tokens")
            .header("cookie", &cookie)
            .header("transfer-encoding", "chunked")
            .content_type("application/json")
            .body("{}")
            .send()
            .await,
        StatusCode::LENGTH_REQUIRED,
    )
    .await;
    problem(
        cli.post("/api/v1/auth/tokens")
            .header("cookie", &cookie)
            .content_type("text/plain")
            .header("content-length", 2)
            .body("hi")
            .send()
            .await,
        StatusCode::UNSUPPORTED_MEDIA_TYPE,
    )
    .await;

    // Every status an operation can answer is declared on it.
    let doc: Value = serde_json::from_str(&pv_web::rest::openapi_json()).unwrap();
    for (path, ops) in doc["paths"].as_object().unwrap() {
        for (method, op) in ops.as_object().unwrap() {
            let responses = op["responses"].as_object().unwrap();
            for code in ["400", "401", "403", "411", "413", "415", "429", "500", "503"] {
                assert!(responses.contains_key(code), "{method} {path} does not declare {code}");
            }
        }
    }
}

#[tokio::test]
async fn graphql_writes_refuse_control_characters_in_names() {
    let (_env, state) = state(Engine::Sqlite).await;
    let admin_id = user_with_role(&state, "admin", Some("System Administrator"), None).await;
    let admin = crate::caller(&state, admin_id).await;
    let body = pv_web::graphql::execute_json(
        state.graphql(),
        Some(admin),
        r#"mutation { propertiesCreateOne(data: { name: "Lake\u0000house", timezone: "UTC",
            createdAt: "2026-11-23T10:00:00Z", updatedAt: "2026-11-23T10:00:00Z" }) { id } }"#,
    )
    .await;
    let message = body["errors"][0]["message"].as_str().unwrap_or_default();
    assert!(message.contains("may not contain control characters"), "{body}");
    use sea_orm::{EntityTrait, PaginatorTrait};
    let rows = pv_core::db::users::property::Entity::find().count(&state.dbs().users).await;
    assert_eq!(rows.unwrap(), 0, "nothing was written");
}
