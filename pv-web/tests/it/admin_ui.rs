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
    assert_eq!(resp.0.headers()["location"], "/login");
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
