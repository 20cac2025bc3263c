//! Behaviour of the HTTP surfaces.

use poem::http::StatusCode;
use poem::test::TestClient;
use pv_core::config::DbKind;
use pv_core::testkit::Engine;
use serde_json::{Value, json};

use crate::{admin_cookie, caller, state, user_with_role};

#[tokio::test]
async fn health_ready_and_metrics() {
    let (_env, state) = state(Engine::Sqlite).await;
    let cli = TestClient::new(pv_web::app::build(state));
    cli.get("/healthz").send().await.assert_status_is_ok();
    let resp = cli.get("/readyz").send().await;
    resp.assert_status_is_ok();
    resp.assert_text("ready\n").await;
    let resp = cli.get("/metrics").send().await;
    resp.assert_status_is_ok();
    let text = resp.0.into_body().into_string().await.unwrap();
    assert!(text.contains("http_requests_total"), "{text}");
    assert!(text.contains("pentavision_uptime_seconds"), "{text}");
}

#[tokio::test]
async fn metrics_can_require_a_token() {
    let (_env, state) =
        crate::state_with(Engine::Sqlite, |c| c.server.metrics_token = Some("sc4pe-me".into()))
            .await;
    let cli = TestClient::new(pv_web::app::build(state));
    let resp = cli.get("/metrics").send().await;
    resp.assert_status(StatusCode::UNAUTHORIZED);
    resp.assert_content_type("application/problem+json");
    let wrong = cli.get("/metrics").header("authorization", "Bearer nope").send().await;
    wrong.assert_status(StatusCode::UNAUTHORIZED);
    let resp = cli.get("/metrics").header("authorization", "Bearer sc4pe-me").send().await;
    resp.assert_status_is_ok();
    let text = resp.0.into_body().into_string().await.unwrap();
    assert!(text.contains("pentavision_uptime_seconds"), "{text}");
    assert!(!text.contains("sc4pe-me"), "the token is never shown");
}

#[tokio::test]
async fn readyz_fails_with_a_problem_when_a_database_is_gone() {
    let (_env, state) = state(Engine::Sqlite).await;
    state.dbs().faces.clone().close().await.unwrap();
    let cli = TestClient::new(pv_web::app::build(state));
    let resp = cli.get("/readyz").send().await;
    resp.assert_status(StatusCode::SERVICE_UNAVAILABLE);
    resp.assert_content_type("application/problem+json");
    let body: Value = resp.0.into_body().into_json().await.unwrap();
    assert!(body["detail"].as_str().unwrap().contains("faces"), "{body}");
}

#[tokio::test]
async fn system_endpoint_reports_real_state() {
    let (env, state) = state(Engine::Sqlite).await;
    let cookie = admin_cookie(&state).await;
    let cli = TestClient::new(pv_web::app::build(state));
    cli.get("/api/v1/system").send().await.assert_status(StatusCode::UNAUTHORIZED);
    let resp = cli.get("/api/v1/system").header("cookie", &cookie).send().await;
    resp.assert_status_is_ok();
    let body: Value = resp.0.into_body().into_json().await.unwrap();
    assert_eq!(body["version"], pv_core::VERSION);
    let dbs = body["databases"].as_array().unwrap();
    assert_eq!(dbs.len(), 3);
    for (db, name) in dbs.iter().zip(["users", "faces", "records"]) {
        assert_eq!(db["name"], name);
        assert_eq!(db["backend"], "sqlite");
        assert_eq!(db["reachable"], true);
        assert!(db["schema_version"].as_str().unwrap().starts_with("m2026"), "{db}");
    }
    let data_dir = std::fs::canonicalize(env.data_dir.path()).unwrap();
    assert_eq!(body["data_dir"], data_dir.display().to_string());
}

#[tokio::test]
async fn errors_are_problem_json() {
    let (_env, state) = state(Engine::Sqlite).await;
    let cli = TestClient::new(pv_web::app::build(state));
    for path in ["/nope", "/api/v1/nope", "/static/nope.js"] {
        let resp = cli.get(path).send().await;
        resp.assert_status(StatusCode::NOT_FOUND);
        resp.assert_content_type("application/problem+json");
        let body: Value = resp.0.into_body().into_json().await.unwrap();
        assert_eq!(body["status"], 404, "{path}");
        assert!(!body["detail"].as_str().unwrap().is_empty());
    }
    let resp = cli.delete("/api/v1/system").send().await;
    resp.assert_status(StatusCode::METHOD_NOT_ALLOWED);
    resp.assert_content_type("application/problem+json");
}

#[tokio::test]
async fn oversized_bodies_are_refused() {
    let (env, _) = state(Engine::Sqlite).await;
    let mut config = env.config.clone();
    config.server.body_limit_bytes = 2048;
    let dbs = pv_core::db::Databases::connect(&config).await.unwrap();
    let state =
        pv_web::AppState::new(config, dbs, std::sync::Arc::new(pv_core::SystemClock::new()))
            .await
            .unwrap();
    let cli = TestClient::new(pv_web::app::build(state));
    let query = format!("{{ cameras {{ nodes {{ id }} }} }} #{}", "x".repeat(4096));
    let body = serde_json::to_vec(&json!({ "query": query })).unwrap();
    let resp = cli
        .post("/graphql")
        .header("content-type", "application/json")
        .header("content-length", body.len())
        .body(body)
        .send()
        .await;
    resp.assert_status(StatusCode::PAYLOAD_TOO_LARGE);
    resp.assert_content_type("application/problem+json");
}

#[tokio::test]
async fn security_headers_are_set() {
    let (_env, state) = state(Engine::Sqlite).await;
    let cli = TestClient::new(pv_web::app::build(state));
    let resp = cli.get("/login").send().await;
    resp.assert_status_is_ok();
    resp.assert_header("x-content-type-options", "nosniff");
    resp.assert_header("x-frame-options", "DENY");
    resp.assert_header("referrer-policy", "no-referrer");
    let csp = resp.0.headers().get("content-security-policy").unwrap().to_str().unwrap();
    assert!(csp.contains("script-src 'self'") && csp.contains("frame-ancestors 'none'"), "{csp}");
}

#[tokio::test]
async fn overview_page_shows_real_state_and_a_toast() {
    let (env, state) = state(Engine::Sqlite).await;
    let cookie = admin_cookie(&state).await;
    let cli = TestClient::new(pv_web::app::build(state));
    let anonymous = cli.get("/").send().await;
    anonymous.assert_status(StatusCode::SEE_OTHER);
    anonymous.assert_header("location", "/login");
    cli.get("/login").send().await.assert_status_is_ok();
    let resp = cli.get("/").header("cookie", &cookie).send().await;
    resp.assert_status_is_ok();
    resp.assert_content_type("text/html; charset=utf-8");
    let html = resp.0.into_body().into_string().await.unwrap();
    assert!(html.contains(pv_core::VERSION));
    let data_dir = std::fs::canonicalize(env.data_dir.path()).unwrap();
    assert!(html.contains(&data_dir.display().to_string()));
    for db in ["users", "faces", "records"] {
        assert!(html.contains(&format!("data-db=\"{db}\"")), "{db} row");
    }
    assert!(html.contains("All 3 databases are ready."), "initial toast");
    for asset in ["app.css", "app.js", "favicon.svg"] {
        cli.get(format!("/static/{asset}")).send().await.assert_status_is_ok();
    }
}

#[tokio::test]
async fn openapi_document_is_openapi_3_with_problem_errors() {
    let (_env, state) = state(Engine::Sqlite).await;
    let cli = TestClient::new(pv_web::app::build(state));
    let resp = cli.get("/api/v1/openapi.json").send().await;
    resp.assert_status_is_ok();
    let spec: Value = resp.0.into_body().into_json().await.unwrap();
    assert!(spec["openapi"].as_str().unwrap().starts_with("3."), "{}", spec["openapi"]);
    assert_eq!(spec["info"]["title"], "PentaVision API");
    assert!(spec["paths"]["/system"]["get"].is_object());
    let err = &spec["paths"]["/system"]["get"]["responses"]["500"]["content"];
    assert!(err["application/problem+json"].is_object(), "{err}");
    cli.get("/api/docs").send().await.assert_status_is_ok();
}

#[tokio::test]
async fn graphql_introspection_and_queries_answer() {
    let (_env, state) = state(Engine::Sqlite).await;
    let cookie = admin_cookie(&state).await;
    let admin = caller(&state, 1).await;
    let cli = TestClient::new(pv_web::app::build(state.clone()));
    cli.post("/graphql")
        .body_json(&json!({ "query": "{ __typename }" }))
        .send()
        .await
        .assert_status(StatusCode::UNAUTHORIZED);
    let resp = cli
        .post("/graphql")
        .header("cookie", &cookie)
        .body_json(&json!({ "query": "{ __schema { queryType { name } types { name } } }" }))
        .send()
        .await;
    resp.assert_status_is_ok();
    let body: Value = resp.0.into_body().into_json().await.unwrap();
    assert_eq!(body["data"]["__schema"]["queryType"]["name"], "Query", "{body}");

    // GraphiQL on GET.
    let page = cli.get("/graphql").send().await;
    page.assert_status_is_ok();
    assert!(page.0.into_body().into_string().await.unwrap().contains("graphiql"));

    // Every database answers through its own root fields.
    for (query, root) in [
        ("{ cameras { nodes { id name } } }", "cameras"),
        ("{ users { nodes { id username } } }", "users"),
        ("{ faceIdentities { nodes { id displayName } } }", "faceIdentities"),
    ] {
        let body = pv_web::graphql::execute_json(state.graphql(), Some(admin.clone()), query).await;
        assert!(body["errors"].is_null(), "{query}: {body}");
        let expected =
            if root == "users" { json!([{ "id": 1, "username": "admin" }]) } else { json!([]) };
        assert_eq!(body["data"][root]["nodes"], expected, "{query}");
    }
}

#[tokio::test]
async fn graphql_mutations_reach_the_right_database() {
    let (_env, state) = state(Engine::Sqlite).await;
    let admin_id = user_with_role(&state, "admin", Some("System Administrator"), None).await;
    let admin = caller(&state, admin_id).await;
    let api = state.graphql();
    assert_eq!(api.database_of("cameras"), Some(DbKind::Records));
    assert_eq!(api.database_of("users"), Some(DbKind::Users));
    assert_eq!(api.database_of("faceEmbeddings"), Some(DbKind::Faces));
    assert_eq!(api.database_of("propertiesCreateOne"), Some(DbKind::Users));

    let created = pv_web::graphql::execute_json(
        api,
        Some(admin.clone()),
        r#"mutation { propertiesCreateOne(data: { name: "Lake house", timezone: "Europe/Oslo",
            createdAt: "2026-11-23T10:00:00Z", updatedAt: "2026-11-23T10:00:00Z" }) { id name } }"#,
    )
    .await;
    assert!(created["errors"].is_null(), "{created}");
    assert_eq!(created["data"]["propertiesCreateOne"]["name"], "Lake house");

    use sea_orm::{EntityTrait, PaginatorTrait};
    let in_users =
        pv_core::db::users::property::Entity::find().count(&state.dbs().users).await.unwrap();
    assert_eq!(in_users, 1, "the row went to the users database");

    let listed = pv_web::graphql::execute_json(
        api,
        Some(admin.clone()),
        "query Q { properties(filters: { name: { eq: \"Lake house\" } }) { nodes { timezone } } }",
    )
    .await;
    assert_eq!(listed["data"]["properties"]["nodes"][0]["timezone"], "Europe/Oslo", "{listed}");
}

#[tokio::test]
async fn graphql_operation_spanning_two_databases_is_refused() {
    let (_env, state) = state(Engine::Sqlite).await;
    let body = pv_web::graphql::execute_json(
        state.graphql(),
        None,
        "query { ...Cams users { nodes { id } } } fragment Cams on Query { cameras { nodes { id } } }",
    )
    .await;
    let message = body["errors"][0]["message"].as_str().unwrap();
    assert!(message.contains("only one database"), "{message}");
    assert!(body["data"].is_null());
}

#[tokio::test]
async fn graphql_limits_depth_and_hides_secrets() {
    let (_env, state) = state(Engine::Sqlite).await;
    let sdl = state.graphql().sdl();
    for secret in ["passwordHash", "tokenHash", "pinHash", "codeHash"] {
        assert!(!sdl.contains(secret), "{secret} must not be in the schema");
    }
    let depth = state.config().graphql.max_depth + 3;
    let deep = format!(
        "{{ __schema {{ types {{ fields {{ type {{ {}name{} }} }} }} }} }}",
        "ofType { ".repeat(depth),
        " }".repeat(depth)
    );
    let body = pv_web::graphql::execute_json(state.graphql(), None, &deep).await;
    let message = body["errors"][0]["message"].as_str().unwrap_or_default().to_string();
    assert!(message.contains("nested too deep"), "{message}");
    assert!(body["data"].is_null());
}

#[tokio::test]
async fn cross_site_writes_are_refused() {
    let (_env, state) = state(Engine::Sqlite).await;
    let cookie = admin_cookie(&state).await;
    let cli = TestClient::new(pv_web::app::build(state.clone()));
    let mutation = r#"{"query":"mutation { propertiesCreateOne(data: { name: \"x\", timezone: \"UTC\", createdAt: \"2026-01-01T00:00:00Z\", updatedAt: \"2026-01-01T00:00:00Z\" }) { id } }"}"#;
    let post = |ct: &'static str, origin: Option<&'static str>| {
        let mut req = cli
            .post("/graphql")
            .header("host", "127.0.0.1:8080")
            .header("content-type", ct)
            .header("cookie", &cookie)
            .header("content-length", mutation.len())
            .body(mutation);
        if let Some(o) = origin {
            req = req.header("origin", o);
        }
        req.send()
    };
    // A page on another site posting as a simple (preflight-free) request.
    let resp = post("text/plain", Some("http://evil.example")).await;
    resp.assert_status(StatusCode::FORBIDDEN);
    resp.assert_content_type("application/problem+json");
    // Without an Origin header, a non-JSON body is still refused.
    post("text/plain", None).await.assert_status(StatusCode::UNSUPPORTED_MEDIA_TYPE);
    // Same-origin JSON works.
    let ok = post("application/json", Some("http://127.0.0.1:8080")).await;
    ok.assert_status_is_ok();
    use sea_orm::{EntityTrait, PaginatorTrait};
    let n = pv_core::db::users::property::Entity::find().count(&state.dbs().users).await.unwrap();
    assert_eq!(n, 1, "only the same-origin request changed anything");
}
