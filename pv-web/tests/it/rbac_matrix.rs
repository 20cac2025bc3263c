//! The RBAC matrix: every REST operation of the OpenAPI document and every GraphQL root query
//! field, for every role (anonymous included), against the allow/deny table kept here. A new
//! route or root field without a row fails the test.

use std::collections::BTreeSet;

use poem::http::{Method, StatusCode};
use poem::test::TestClient;
use pv_core::testkit::Engine;
use seaography::OperationType;
use serde_json::{Value, json};

use crate::{session_cookie, state, user_with_role};

// Roles: `-` anonymous, `A` System Administrator, `M` Property Manager, `T` Technician, `U`
// Auditor (all global), `H` Homeowner and `K` Housekeeper (on property 1). In the tables, `*`
// means anyone and `S` any signed-in user.

/// (method, path, body, who may).
fn rest_table() -> Vec<(Method, &'static str, Value, &'static str)> {
    use Method as M;
    vec![
        (M::GET, "/system", json!(null), "AMTU"),
        (M::POST, "/auth/login", json!({ "username": "x", "password": "y" }), "*"),
        (M::POST, "/auth/logout", json!(null), "S"),
        (M::GET, "/auth/me", json!(null), "S"),
        (M::POST, "/auth/passkeys/login/start", json!(null), "*"),
        (
            M::POST,
            "/auth/passkeys/login/finish",
            json!({ "ceremony_id": 0, "credential": {} }),
            "*",
        ),
        (M::POST, "/auth/passkeys/register/start", json!(null), "S"),
        (
            M::POST,
            "/auth/passkeys/register/finish",
            json!({ "ceremony_id": 0, "credential": {}, "name": "x" }),
            "S",
        ),
        (M::GET, "/auth/passkeys", json!(null), "S"),
        (M::PATCH, "/auth/passkeys/999", json!({ "name": "x" }), "S"),
        (M::DELETE, "/auth/passkeys/999", json!(null), "S"),
        (M::POST, "/auth/password", json!({ "new_password": "short" }), "S"),
        (M::POST, "/auth/totp/start", json!(null), "S"),
        (M::POST, "/auth/totp/confirm", json!({ "code": "000000" }), "S"),
        (M::DELETE, "/auth/totp", json!(null), "S"),
        (M::POST, "/auth/recovery-codes", json!(null), "S"),
        (M::GET, "/auth/sessions", json!(null), "S"),
        (M::DELETE, "/auth/sessions/999999", json!(null), "S"),
        (M::GET, "/auth/tokens", json!(null), "S"),
        (M::POST, "/auth/tokens", json!({ "name": "t" }), "S"),
        (M::DELETE, "/auth/tokens/999", json!(null), "S"),
        (M::GET, "/auth/csrf?route=/users", json!(null), "S"),
        (M::GET, "/auth/pin", json!(null), "S"),
        (M::PUT, "/auth/pin", json!({ "new_pin": "1234" }), "S"),
        (M::POST, "/auth/pin/verify", json!({ "pin": "12345678", "property_id": 1 }), "AMHK"),
        (M::GET, "/security/ip-rules", json!(null), "AU"),
        (
            M::POST,
            "/security/ip-rules",
            json!({ "network": "203.0.113.9", "action": "block" }),
            "A",
        ),
        (M::DELETE, "/security/ip-rules?network=198.51.100.77", json!(null), "A"),
        (M::POST, "/security/ip-rules/exempt-me", json!(null), "A"),
        (M::GET, "/security/country-policy", json!(null), "AU"),
        (M::PUT, "/security/country-policy", json!({ "mode": "off", "countries": [] }), "A"),
        (M::GET, "/users", json!(null), "AMU"),
        (M::POST, "/users", json!({ "username": "new-user" }), "A"),
        (M::PUT, "/users/999/status", json!({ "status": "suspended" }), "A"),
        (M::POST, "/users/999/roles", json!({ "role": "Guest", "property_id": 1 }), "A"),
        (M::DELETE, "/users/999/roles", json!({ "role": "Guest", "property_id": 1 }), "A"),
        (M::GET, "/audit/events", json!(null), "AMU"),
        (M::GET, "/audit/events.csv", json!(null), "AU"),
        (M::GET, "/services", json!(null), "AMTU"),
        // A numeric name is never allow-listed: 404 for those who may restart services.
        (M::POST, "/services/0/restart", json!(null), "AT"),
        (M::GET, "/storage/providers", json!(null), "ATU"),
        (
            M::POST,
            "/storage/modules/test",
            json!({ "provider": "no-such-provider", "config": {}, "secrets": {} }),
            "A",
        ),
        (M::GET, "/storage/modules", json!(null), "ATU"),
        (
            M::POST,
            "/storage/modules",
            json!({ "name": "x", "provider": "no-such-provider", "proof": "0.0" }),
            "A",
        ),
        (M::GET, "/storage/modules/999", json!(null), "ATU"),
        (M::PATCH, "/storage/modules/999", json!({ "name": "x" }), "A"),
        (M::DELETE, "/storage/modules/999", json!(null), "A"),
        (M::POST, "/storage/modules/999/clone", json!(null), "A"),
        (M::POST, "/storage/modules/999/drain", json!(null), "A"),
        (M::GET, "/storage/modules/999/health", json!(null), "ATU"),
        (M::GET, "/storage/modules/999/logs", json!(null), "ATU"),
        (M::GET, "/storage/modules/999/streams", json!(null), "ATU"),
        (M::GET, "/storage/queue", json!(null), "ATU"),
        (
            M::POST,
            "/storage/oauth/start",
            json!({ "provider": "no-such-provider", "client_id": "x", "redirect_uri": "http://localhost/storage/oauth/callback" }),
            "A",
        ),
        (M::GET, "/cameras", json!(null), "AMTUH"),
        (
            M::POST,
            "/cameras",
            json!({ "name": "c", "main_url": "rtsp://127.0.0.1:9/x", "enabled": false }),
            "AMT",
        ),
        (M::GET, "/cameras/999", json!(null), "AMTUH"),
        (M::PATCH, "/cameras/999", json!({ "name": "x" }), "AMTH"),
        (M::DELETE, "/cameras/999", json!(null), "AMTH"),
        (M::GET, "/cameras/999/snapshot.jpg", json!(null), "AMTUH"),
        (M::POST, "/cameras/999/whep", json!(null), "AMTH"),
        (M::PATCH, "/cameras/999/whep/1", json!(null), "AMTH"),
        (M::DELETE, "/cameras/999/whep/1", json!(null), "AMTH"),
        (M::GET, "/cameras/999/live.m3u8", json!(null), "AMTH"),
        (M::GET, "/live/ice-servers", json!(null), "AMTH"),
        (M::GET, "/cameras/999/live/1/2", json!(null), "AMTH"),
        (M::GET, "/cameras/999/schedule", json!(null), "AMTUH"),
        (M::GET, "/cameras/999/motion-zones", json!(null), "AMTUH"),
        (M::PUT, "/cameras/999/motion-zones", json!({ "zones": [] }), "AMTH"),
        (M::POST, "/cameras/probe", json!({ "url": "http://x/" }), "AMTH"),
        (M::POST, "/cameras/discover", json!(null), "AMTH"),
        (M::PUT, "/cameras/999/schedule", json!({ "windows": [] }), "AMTH"),
        (
            M::GET,
            "/cameras/999/export.mp4?from=2026-01-01T00:00:00Z&to=2026-01-01T01:00:00Z",
            json!(null),
            "AMH",
        ),
        (M::POST, "/cameras/999/rtmp", json!({ "url": "rtmp://127.0.0.1:9/live/x" }), "AMTH"),
        (M::DELETE, "/cameras/999/rtmp", json!(null), "AMTH"),
        (M::GET, "/events", json!(null), "AMTUH"),
        (M::GET, "/recordings", json!(null), "AMH"),
        (M::GET, "/recordings/999/media", json!(null), "AMH"),
        (M::GET, "/cameras/999/thumbnail.jpg?at=2026-01-01T00:00:00Z", json!(null), "AMH"),
        // Faces: global faces.* permissions only (the Homeowner's are on its property).
        (M::GET, "/faces/status", json!(null), "A"),
        (M::GET, "/faces/identities", json!(null), "A"),
        (M::POST, "/faces/identities", json!({ "name": "x" }), "A"),
        (M::GET, "/faces/identities/999", json!(null), "A"),
        (M::PATCH, "/faces/identities/999", json!({ "name": "x" }), "A"),
        (M::DELETE, "/faces/identities/999", json!(null), "A"),
        // No picture: 415 for those who may.
        (M::POST, "/faces/identities/999/images", json!(null), "A"),
        (M::GET, "/faces/identities/999/images", json!(null), "A"),
        (M::GET, "/faces/embeddings/999/crop.jpg", json!(null), "A"),
        (M::DELETE, "/faces/embeddings/999", json!(null), "A"),
        (M::POST, "/faces/recognize", json!(null), "A"),
        (M::GET, "/faces/events", json!(null), "A"),
        (M::GET, "/faces/events/stream", json!(null), "A"),
        (M::GET, "/faces/events/999/crop.jpg", json!(null), "A"),
        (M::POST, "/faces/events/999/label", json!({ "identity_id": 1, "correct": true }), "A"),
    ]
}

/// GraphQL root query fields and who may read them.
fn graphql_table() -> Vec<(&'static str, &'static str)> {
    vec![
        ("apiTokens", "A"),
        ("sessions", "A"),
        ("passkeys", "A"),
        ("totpCredentials", "A"),
        ("recoveryCodes", "A"),
        ("webauthnCeremonies", "A"),
        ("disarmPins", "A"),
        ("pinUses", "A"),
        ("authThrottles", "A"),
        ("users", "AMU"),
        ("userRoles", "AMU"),
        ("roles", "AMU"),
        ("permissions", "AMU"),
        ("rolePermissions", "AMU"),
        ("userProperties", "AMU"),
        ("notificationSettings", "AMU"),
        ("auditEvents", "AMU"),
        ("ipRules", "AU"),
        ("blocklistSettings", "AU"),
        ("countryPolicies", "AU"),
        ("properties", "AMTU"),
        ("faceIdentities", "A"),
        ("faceEmbeddings", "A"),
        ("facePrivacyPolicies", "A"),
        ("faceMatches", "A"),
        ("cameras", "AMTUH"),
        ("cameraMacChanges", "AMTU"),
        ("cameraStorageTargets", "AMTU"),
        ("motionZones", "AMTU"),
        ("recordingSchedules", "AMTU"),
        ("rtmpOutputs", "AMTU"),
        ("segments", "AM"),
        ("recordingGaps", "AM"),
        ("motionEvents", "AM"),
        ("storageProviders", "ATU"),
        ("storageModules", "ATU"),
        ("storageModuleHealthChecks", "ATU"),
        ("storageModuleLogs", "ATU"),
        ("storageModuleWriteStats", "ATU"),
        ("uploadQueue", "ATU"),
    ]
}

fn allowed(who: &str, role: char) -> bool {
    who == "*" || (who == "S" && role != '-') || who.contains(role)
}

async fn users(state: &pv_web::AppState) -> Vec<(char, Option<i64>)> {
    use sea_orm::{ActiveModelTrait, Set};
    pv_core::db::users::property::ActiveModel {
        name: Set("Home".into()),
        timezone: Set("America/New_York".into()),
        created_at: Set(chrono::Utc::now()),
        updated_at: Set(chrono::Utc::now()),
        ..Default::default()
    }
    .insert(&state.dbs().users)
    .await
    .unwrap();
    let mut out = vec![('-', None)];
    for (c, name, role, property) in [
        ('A', "admin", "System Administrator", None),
        ('M', "manager", "Property Manager", None),
        ('T', "tech", "Technician", None),
        ('U', "auditor", "Auditor", None),
        ('H', "owner", "Homeowner", Some(1)),
        ('K', "keeper", "Housekeeper", Some(1)),
    ] {
        out.push((c, Some(user_with_role(state, name, Some(role), property).await)));
    }
    out
}

#[tokio::test]
async fn every_rest_operation_for_every_role() {
    let (_env, state) = state(Engine::Sqlite).await;
    let cli = TestClient::new(pv_web::app::build(state.clone()));
    let table = rest_table();

    // The table covers the whole OpenAPI document.
    let spec: Value = serde_json::from_str(&pv_web::rest::openapi_json()).unwrap();
    let mut documented = BTreeSet::new();
    for (path, ops) in spec["paths"].as_object().unwrap() {
        for method in ops.as_object().unwrap().keys() {
            // Path parameters by any name (`{id}`, `{name}`) are written `{id}` here.
            let path: String = path
                .split('/')
                .map(|seg| if seg.starts_with('{') { "{id}" } else { seg })
                .collect::<Vec<_>>()
                .join("/");
            documented.insert(format!("{} {path}", method.to_uppercase()));
        }
    }
    let normalise = |p: &str| {
        let p = p.split('?').next().unwrap().to_string();
        p.split('/')
            .map(
                |seg| if seg.parse::<i64>().is_ok() { "{id}".to_string() } else { seg.to_string() },
            )
            .collect::<Vec<_>>()
            .join("/")
    };
    let tabled: BTreeSet<String> =
        table.iter().map(|(m, p, _, _)| format!("{m} {}", normalise(p))).collect();
    assert_eq!(documented, tabled, "the RBAC table must list exactly the documented operations");

    let mut failures = Vec::new();
    for (role, user) in users(&state).await {
        for (method, path, body, who) in &table {
            let mut req = cli.request(method.clone(), format!("/api/v1{path}"));
            if let Some(id) = user {
                req = req.header("cookie", session_cookie(&state, id).await);
                // Sensitive writes carry the page's CSRF token, as the UI sends it.
                req = req.header(pv_web::csrf::HEADER, crate::csrf_token(&state, id, path));
            }
            if !body.is_null() {
                req = req.body_json(body);
            }
            let status = req.send().await.0.status();
            let expect = allowed(who, role);
            let got = !(status == StatusCode::FORBIDDEN
                || (status == StatusCode::UNAUTHORIZED && role == '-' && *who != "*"));
            let wrong_denial = status == StatusCode::UNAUTHORIZED && role != '-' && *who != "*";
            if expect != got || wrong_denial {
                failures.push(format!(
                    "{role} {method} {path}: {status} (expected {})",
                    if expect { "allow" } else { "deny" }
                ));
            }
            if role == '-' && *who != "*" {
                assert_eq!(status, StatusCode::UNAUTHORIZED, "anonymous {method} {path}");
            }
        }
    }
    assert!(failures.is_empty(), "RBAC matrix mismatches:\n{}", failures.join("\n"));
}

#[tokio::test]
async fn every_graphql_root_field_for_every_role() {
    let (_env, state) = state(Engine::Sqlite).await;
    let table = graphql_table();
    let sdl = state.graphql().sdl();
    let query_block = sdl.split("type Query {").nth(1).unwrap().split('}').next().unwrap();
    let roots: BTreeSet<String> = query_block
        .lines()
        .filter_map(|l| l.trim().split('(').next().map(str::to_string))
        .filter(|s| !s.is_empty() && s != "_ping")
        .collect();
    let tabled: BTreeSet<String> = table.iter().map(|(f, _)| f.to_string()).collect();
    assert_eq!(roots, tabled, "the GraphQL table must list every root query field");

    let mut failures = Vec::new();
    for (role, user) in users(&state).await {
        let caller = match user {
            Some(id) => Some(crate::caller(&state, id).await),
            None => None,
        };
        for (field, who) in &table {
            let body = pv_web::graphql::execute_json(
                state.graphql(),
                caller.clone(),
                &format!("{{ {field} {{ nodes {{ id }} }} }}"),
            )
            .await;
            let got = body["errors"].is_null();
            if got != allowed(who, role) {
                failures.push(format!("{role} {field}: {body}"));
            }
        }
    }
    assert!(failures.is_empty(), "GraphQL matrix mismatches:\n{}", failures.join("\n"));
}

#[tokio::test]
async fn graphql_writes_follow_the_write_rules() {
    use pv_web::graphql::guard::decide;
    let (_env, state) = state(Engine::Sqlite).await;
    let ids = users(&state).await;
    let caller_for = |c: char| {
        let id = ids.iter().find(|(r, _)| *r == c).unwrap().1.unwrap();
        crate::caller(&state, id)
    };
    let admin = caller_for('A').await;
    let auditor = caller_for('U').await;
    let manager = caller_for('M').await;
    for (entity, op, who_may) in [
        ("IpRules", OperationType::Create, "A"),
        ("AuditEvents", OperationType::Delete, ""),
        ("Users", OperationType::Update, ""),
        ("Sessions", OperationType::Create, ""),
        ("Segments", OperationType::Delete, ""),
        ("Segments", OperationType::Create, ""),
        ("Cameras", OperationType::Update, ""),
        ("RecordingSchedules", OperationType::Update, "AM"),
        ("Properties", OperationType::Create, "AM"),
        ("FaceIdentities", OperationType::Create, "A"),
        ("FaceEmbeddings", OperationType::Delete, "A"),
    ] {
        for (c, caller) in [('A', &admin), ('U', &auditor), ('M', &manager)] {
            let ok = decide(Some(caller), entity, op).is_ok();
            assert_eq!(ok, who_may.contains(c), "{c} {entity} {op:?}");
        }
        assert!(decide(None, entity, op).is_err());
    }
}

#[test]
fn face_writes_need_enroll_and_deletes_need_delete() {
    use pv_security::rbac::{AccountStatus, Permission as P, Subject};
    use pv_web::graphql::guard::{Caller, decide};
    let with = |perms: &[P]| Caller {
        subject: Subject::user(1, "u", AccountStatus::Active).with_global(perms.iter().copied()),
        now: chrono::Utc::now(),
        user: Some((1, "u".into())),
        ip: None,
    };
    let viewer = with(&[P::FacesView]);
    let enroller = with(&[P::FacesView, P::FacesEnroll]);
    let deleter = with(&[P::FacesView, P::FacesDelete]);
    for entity in ["FaceIdentities", "FaceEmbeddings", "FacePrivacyPolicies", "FaceMatches"] {
        for caller in [&viewer, &enroller, &deleter] {
            assert!(decide(Some(caller), entity, OperationType::Read).is_ok(), "{entity}");
        }
        for op in [OperationType::Create, OperationType::Update] {
            assert!(decide(Some(&viewer), entity, op).is_err(), "{entity} {op:?}");
            assert!(decide(Some(&enroller), entity, op).is_ok(), "{entity} {op:?}");
            assert!(decide(Some(&deleter), entity, op).is_err(), "{entity} {op:?}");
        }
        assert!(decide(Some(&viewer), entity, OperationType::Delete).is_err());
        assert!(decide(Some(&enroller), entity, OperationType::Delete).is_err());
        assert!(decide(Some(&deleter), entity, OperationType::Delete).is_ok());
    }
}
