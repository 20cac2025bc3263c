//! The Services page's API: only allow-listed units are shown and restarted, through the
//! service manager's command (here a stand-in script that records its arguments, since no
//! systemd runs in the test sandbox), with CSRF and an audit event.

use std::os::unix::fs::PermissionsExt;

use poem::http::StatusCode;
use poem::test::TestClient;
use pv_core::testkit::Engine;
use sea_orm::EntityTrait;

use crate::{csrf_token, session_cookie, state_with, user_with_role};

#[tokio::test]
async fn only_allow_listed_services_are_restarted_with_csrf_and_an_audit_event() {
    let dir = tempfile::tempdir().unwrap();
    let calls = dir.path().join("calls.txt");
    let script = dir.path().join("systemctl");
    std::fs::write(
        &script,
        format!(
            "#!/bin/sh\necho \"$@\" >> {calls}\ncase \"$1 $2\" in\n  'is-active pentavision-blocklist.service') echo active ;;\n  'is-active pentavision.service') echo failed; exit 3 ;;\n  'restart pentavision.service') echo 'Job for pentavision.service failed.' >&2; exit 1 ;;\n  'is-active nginx.service') echo 'System has not been booted with systemd as init system (PID 1). Can'\\''t operate.' >&2; exit 1 ;;\nesac\n",
            calls = calls.display()
        ),
    )
    .unwrap();
    std::fs::set_permissions(&script, std::fs::Permissions::from_mode(0o755)).unwrap();
    let (_env, state) = state_with(Engine::Sqlite, |c| {
        c.recording.enabled = false;
        c.services.allowed =
            vec!["pentavision-blocklist".into(), "pentavision".into(), "nginx".into()];
        c.services.systemctl = script.clone();
    })
    .await;
    let cli = TestClient::new(pv_web::app::build(state.clone()));
    let admin_id = user_with_role(&state, "admin", Some("System Administrator"), None).await;
    let admin = session_cookie(&state, admin_id).await;

    let resp = cli.get("/api/v1/services").header("cookie", admin.clone()).send().await;
    assert_eq!(resp.0.status(), StatusCode::OK);
    let list: serde_json::Value =
        serde_json::from_str(&resp.0.into_body().into_string().await.unwrap()).unwrap();
    assert_eq!(
        list,
        serde_json::json!([
            { "name": "pentavision-blocklist", "state": "active" },
            { "name": "pentavision", "state": "failed" },
            { "name": "nginx", "state": "unknown", "reason": "systemd is not running on this \
              machine (for example inside a container), so PentaVision cannot tell" },
        ])
    );

    let restart = |name: &str, token: bool| {
        let path = format!("/api/v1/services/{name}/restart");
        let mut req = cli.post(&path).header("cookie", admin.clone());
        if token {
            req = req.header("x-csrf-token", csrf_token(&state, admin_id, &path));
        }
        req.send()
    };
    assert_eq!(restart("pentavision-blocklist", false).await.0.status(), StatusCode::FORBIDDEN);
    assert_eq!(restart("pentavision-blocklist", true).await.0.status(), StatusCode::NO_CONTENT);
    let refused = restart("sshd", true).await;
    assert_eq!(refused.0.status(), StatusCode::NOT_FOUND);
    assert!(
        refused
            .0
            .into_body()
            .into_string()
            .await
            .unwrap()
            .contains("not a service PentaVision may restart")
    );
    let failed = restart("pentavision", true).await;
    assert_eq!(failed.0.status(), StatusCode::SERVICE_UNAVAILABLE);
    assert!(
        failed
            .0
            .into_body()
            .into_string()
            .await
            .unwrap()
            .contains("Job for pentavision.service failed")
    );

    let log = std::fs::read_to_string(&calls).unwrap();
    let restarts: Vec<&str> = log.lines().filter(|l| l.starts_with("restart")).collect();
    assert_eq!(
        restarts,
        ["restart pentavision-blocklist.service", "restart pentavision.service"],
        "sshd was never handed to the service manager"
    );
    let actions: Vec<String> = pv_core::db::users::audit_event::Entity::find()
        .all(&state.dbs().users)
        .await
        .unwrap()
        .into_iter()
        .map(|e| format!("{} {}", e.action, e.target_id.unwrap_or_default()))
        .collect();
    for want in [
        "service.restart pentavision-blocklist",
        "service.restart_refused sshd",
        "service.restart_failed pentavision",
    ] {
        assert!(actions.iter().any(|a| a == want), "{want} in {actions:?}");
    }

    // A user without a system role may not even list them.
    let nobody = user_with_role(&state, "nobody", None, None).await;
    let resp = cli
        .get("/api/v1/services")
        .header("cookie", session_cookie(&state, nobody).await)
        .send()
        .await;
    assert_eq!(resp.0.status(), StatusCode::FORBIDDEN);
}
