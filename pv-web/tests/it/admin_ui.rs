//! The administration pages: the audit log (administrators and auditors; the CSV export for
//! those who may export) and Block / Allow (IP rules; changes with the tokens the page carries).

use poem::http::{Method, StatusCode};
use poem::test::TestClient;
use pv_core::testkit::Engine;
use serde_json::{Value, json};

use crate::{session_cookie, state, user_with_role};

type Cli = TestClient<poem::endpoint::BoxEndpoint<'static>>;

async fn page(cli: &Cli, path: &str, cookie: &str) -> (StatusCode, String) {
    let resp = cli.get(path).header("cookie", cookie).send().await;
    let status = resp.0.status();
    (status, resp.0.into_body().into_string().await.unwrap())
}

/// The page's `pv-page` JSON data block.
fn data_block(html: &str) -> Value {
    let start = html.find(r#"<script type="application/json" id="pv-page">"#).expect("data block");
    let rest = &html[start..];
    let body = &rest[rest.find('>').unwrap() + 1..rest.find("</script>").unwrap()];
    serde_json::from_str(body).unwrap()
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
async fn the_audit_page_is_for_administrators_and_auditors() {
    let (_env, state) = state(Engine::Sqlite).await;
    let home = make_property(&state).await;
    let cli = TestClient::new(pv_web::app::build(state.clone()));
    for (name, role, property, status, export) in [
        ("admin", "System Administrator", None, StatusCode::OK, true),
        ("auditor", "Auditor", None, StatusCode::OK, true),
        ("manager", "Property Manager", None, StatusCode::OK, false),
        ("tech", "Technician", None, StatusCode::FORBIDDEN, false),
        ("owner", "Homeowner", Some(home), StatusCode::FORBIDDEN, false),
    ] {
        let id = user_with_role(&state, name, Some(role), property).await;
        let (got, html) = page(&cli, "/audit", &session_cookie(&state, id).await).await;
        assert_eq!(got, status, "{name}: {html}");
        if got == StatusCode::OK {
            assert!(html.contains("<h1>Audit log</h1>") && html.contains(r#"id="audit-filter""#));
            assert!(html.contains("/static/admin.js"));
            assert_eq!(html.contains("/api/v1/audit/events.csv"), export, "{name}: CSV link");
            assert_eq!(data_block(&html)["can_export"], export);
        }
    }
    let resp = cli.get("/audit").send().await;
    resp.assert_status(StatusCode::SEE_OTHER);
    assert_eq!(resp.0.headers()["location"], "/login?next=/audit");
    let resp = cli.get("/static/admin.js").send().await;
    resp.assert_status_is_ok();
    resp.assert_content_type("text/javascript; charset=utf-8");
}

#[tokio::test]
async fn block_allow_changes_go_through_with_the_pages_tokens() {
    let (_env, state) = state(Engine::Sqlite).await;
    let admin = user_with_role(&state, "admin", Some("System Administrator"), None).await;
    let auditor = user_with_role(&state, "auditor", Some("Auditor"), None).await;
    let tech = user_with_role(&state, "tech", Some("Technician"), None).await;
    let cookie = session_cookie(&state, admin).await;
    let cli = TestClient::new(pv_web::app::build(state.clone()));

    let resp = cli
        .get("/ip-rules")
        .header("cookie", &cookie)
        .header("x-forwarded-for", "198.51.100.44")
        .send()
        .await;
    resp.assert_status_is_ok();
    let html = resp.0.into_body().into_string().await.unwrap();
    assert!(html.contains("<h1>Block / Allow</h1>") && html.contains(r#"id="rule-form""#));
    assert!(html.contains("Exempt this IP (198.51.100.44)"), "{html}");
    let data = data_block(&html);
    assert_eq!(data["can_manage"], true);
    let token =
        |route: &str| data["csrf"][route].as_str().unwrap_or_else(|| panic!("{route}")).to_string();

    let send = |method: Method, path: &str, route: &str, body: Value| {
        let mut req = cli
            .request(method, format!("/api/v1{path}"))
            .header("cookie", &cookie)
            .header("x-forwarded-for", "198.51.100.44")
            .header("x-csrf-token", token(route));
        if !body.is_null() {
            req = req.body_json(&body);
        }
        req.send()
    };
    send(
        Method::POST,
        "/security/ip-rules",
        "/security/ip-rules",
        json!({ "network": "203.0.113.60", "action": "block", "reason": "scanner" }),
    )
    .await
    .assert_status(StatusCode::CREATED);
    send(
        Method::POST,
        "/security/ip-rules",
        "/security/ip-rules",
        json!({ "network": "203.0.113.60", "action": "exempt" }),
    )
    .await
    .assert_status(StatusCode::CREATED);
    send(Method::POST, "/security/ip-rules/exempt-me", "/security/ip-rules/exempt-me", json!(null))
        .await
        .assert_status(StatusCode::CREATED);
    // The row's Remove lifts only that rule.
    send(
        Method::DELETE,
        "/security/ip-rules?network=203.0.113.60&action=block",
        "/security/ip-rules",
        json!(null),
    )
    .await
    .assert_status(StatusCode::NO_CONTENT);
    let resp = send(
        Method::DELETE,
        "/security/ip-rules?network=203.0.113.60&action=allow",
        "/security/ip-rules",
        json!(null),
    )
    .await;
    resp.assert_status(StatusCode::BAD_REQUEST);
    resp.assert_content_type("application/problem+json");
    let rules =
        pv_security::access::list_rules(&state.dbs().users, chrono::Utc::now()).await.unwrap();
    let of = |net: &str| {
        rules.iter().filter(|r| r.network == net).map(|r| r.action.clone()).collect::<Vec<_>>()
    };
    assert_eq!(of("203.0.113.60"), ["exempt"]);
    assert_eq!(of("198.51.100.44"), ["exempt"]);
    // The page's token for one route does not open the other.
    let resp = cli
        .post("/api/v1/security/ip-rules/exempt-me")
        .header("cookie", &cookie)
        .header("x-csrf-token", token("/security/ip-rules"))
        .send()
        .await;
    resp.assert_status(StatusCode::FORBIDDEN);

    // An auditor sees the list but gets no form and no tokens; a technician not even the page.
    let (status, html) = page(&cli, "/ip-rules", &session_cookie(&state, auditor).await).await;
    assert_eq!(status, StatusCode::OK);
    assert!(!html.contains(r#"id="rule-form""#) && !html.contains("Exempt this IP"));
    let data = data_block(&html);
    assert_eq!(data["can_manage"], false);
    assert_eq!(data["csrf"], json!({}));
    let (status, _) = page(&cli, "/ip-rules", &session_cookie(&state, tech).await).await;
    assert_eq!(status, StatusCode::FORBIDDEN);
}

#[tokio::test]
async fn unknown_pages_are_html_for_browsers_and_problem_json_for_clients() {
    let (_env, state) = state(Engine::Sqlite).await;
    let cookie = crate::admin_cookie(&state).await;
    let cli = TestClient::new(pv_web::app::build(state));
    let html = "text/html,application/xhtml+xml,*/*;q=0.8";

    let resp =
        cli.get("/no/such/page").header("accept", html).header("cookie", &cookie).send().await;
    resp.assert_status(StatusCode::NOT_FOUND);
    resp.assert_content_type("text/html; charset=utf-8");
    let body = resp.0.into_body().into_string().await.unwrap();
    assert!(body.contains("Page not found"), "{body}");
    assert!(body.contains("href=\"/cameras\""), "the page has the navigation: {body}");
    assert!(body.contains("/no/such/page"));

    // Signed out: the same page, offering to sign in (no navigation to pages they cannot open).
    let resp = cli.get("/nope").header("accept", html).send().await;
    resp.assert_status(StatusCode::NOT_FOUND);
    let body = resp.0.into_body().into_string().await.unwrap();
    assert!(body.contains("href=\"/login\"") && !body.contains("href=\"/cameras\""), "{body}");

    // API clients, and anything under /api/, keep problem JSON.
    for (path, accept) in
        [("/no/such/page", "application/json"), ("/no/such/page", "*/*"), ("/api/v1/nope", html)]
    {
        let resp = cli.get(path).header("accept", accept).header("cookie", &cookie).send().await;
        resp.assert_status(StatusCode::NOT_FOUND);
        resp.assert_content_type("application/problem+json");
        let problem: Value = resp.0.into_body().into_json().await.unwrap();
        assert_eq!(problem["status"], 404, "{path} {accept}");
    }
    // Writes are never turned into pages.
    let resp = cli.post("/no/such/page").header("accept", html).send().await;
    assert_ne!(resp.0.headers().get("content-type").unwrap(), "text/html; charset=utf-8");
}

#[tokio::test]
async fn graphiql_and_swagger_ui_load_only_from_this_server() {
    let (_env, state) = state(Engine::Sqlite).await;
    let cli = TestClient::new(pv_web::app::build(state));
    for page in ["/graphql", "/api/docs"] {
        let resp = cli.get(page).send().await;
        resp.assert_status_is_ok();
        let csp =
            resp.0.headers().get("content-security-policy").unwrap().to_str().unwrap().to_owned();
        assert!(csp.contains("script-src 'self';") && !csp.contains("http"), "{page}: {csp}");
        let body = resp.0.into_body().into_string().await.unwrap();
        assert!(!body.contains("<script>") && !body.contains("https://"), "{page}: {body}");
        let refs: Vec<&str> = body.split('"').filter(|s| s.starts_with("/static/")).collect();
        assert!(refs.len() >= 3, "{page} loads its assets from /static/: {refs:?}");
        for asset in refs {
            let resp = cli.get(asset).send().await;
            resp.assert_status_is_ok();
            let len = resp.0.into_body().into_bytes().await.unwrap().len();
            assert!(len > 0, "{asset} is empty");
        }
    }
}

#[tokio::test]
async fn the_overview_shows_cameras_and_how_many_days_of_footage_fit() {
    let (_env, state) = state(Engine::Sqlite).await;
    let cookie = crate::admin_cookie(&state).await;
    let now = chrono::Utc::now();
    let mut settings = pv_core::cameras::CameraSettings::new("Porch", "rtsp://192.0.2.10/stream");
    settings.enabled = false;
    let cam = pv_core::cameras::create(&state.dbs().records, &settings, now).await.unwrap();
    // Thirty one-minute segments of 10 MiB in the last half hour: 300 MiB per 30 minutes,
    // about 14 GiB a day.
    for i in 0..30 {
        let start = now - chrono::Duration::minutes(30 - i);
        let seg = pv_core::recordings::NewSegment {
            camera: pv_core::ids::CameraId(cam.id),
            started_at: start,
            ended_at: start + chrono::Duration::minutes(1),
            media_start_ns: 0,
            media_end_ns: 60_000_000_000,
            duration_ms: 60_000,
            size_bytes: 10 * 1024 * 1024,
            video_codec: "h264".into(),
            audio_codec: None,
            width: Some(1280),
            height: Some(720),
            path: format!("cam/{i}.mp4"),
            motion: false,
            end_reason: "duration".into(),
        };
        pv_core::recordings::insert_segment(&state.dbs().records, &seg, now).await.unwrap();
    }
    let cli = TestClient::new(pv_web::app::build(state));
    let (status, body) = page(&cli, "/", &cookie).await;
    assert_eq!(status, StatusCode::OK);
    assert!(body.contains("data-camera=\"Porch\""), "{body}");
    assert!(body.contains(">Off<") && body.contains("This camera is disabled."), "{body}");
    assert!(body.contains("300 MiB"), "the footage on disk: {body}");
    let rate = text_after(&body, "rate of ").unwrap_or_default();
    assert!(rate.starts_with("14.0 GiB a day") || rate.starts_with("14.1 GiB a day"), "{rate}");
    assert!(
        body.contains("about ") || body.contains("more than 10 years"),
        "days that fit: {body}"
    );
}

/// The text after `marker` in `body`, up to the next `<`.
fn text_after(body: &str, marker: &str) -> Option<String> {
    let at = body.find(marker)? + marker.len();
    Some(body[at..].split('<').next().unwrap_or_default().to_owned())
}
