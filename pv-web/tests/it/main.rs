//! pv-web integration tests: the whole application in process (poem's test client) over real
//! SQLite databases, plus the API-contract snapshots.

mod admin_ui;
mod api;
mod auth;
mod blocklist;
mod cameras;
mod country;
mod csrf;
mod faces;
mod hostile;
mod live;
mod pin;
mod rbac_matrix;
mod services;
mod snapshots;
mod storage;

use std::sync::Arc;

use pv_core::db::Databases;
use pv_core::testkit::{Engine, TestEnv};
use pv_web::AppState;

/// A migrated application state over fresh databases on `engine`.
pub async fn state(engine: Engine) -> (TestEnv, AppState) {
    let env = TestEnv::new(engine).await;
    let dbs = Databases::connect(&env.config).await.expect("connect");
    dbs.migrate().await.expect("migrate");
    let state = AppState::new(env.config.clone(), dbs, Arc::new(pv_core::SystemClock::new()))
        .await
        .expect("state");
    (env, state)
}

/// [`state`] with a configuration changed by `edit` first.
pub async fn state_with(
    engine: Engine,
    edit: impl FnOnce(&mut pv_core::config::Config),
) -> (TestEnv, AppState) {
    let env = TestEnv::new(engine).await;
    let mut config = env.config.clone();
    edit(&mut config);
    let dbs = Databases::connect(&config).await.expect("connect");
    dbs.migrate().await.expect("migrate");
    let state =
        AppState::new(config, dbs, Arc::new(pv_core::SystemClock::new())).await.expect("state");
    (env, state)
}

/// A user `name` holding `role` (globally, or on `property`), with no password.
pub async fn user_with_role(
    state: &AppState,
    name: &str,
    role: Option<&str>,
    property: Option<i64>,
) -> i64 {
    let db = &state.dbs().users;
    let new = pv_security::account::NewUser { username: name.into(), ..Default::default() };
    let u =
        pv_security::account::create_user(db, &state.config().security, &new, chrono::Utc::now())
            .await
            .expect("create user");
    if let Some(role) = role {
        pv_security::rbac::assign_role(
            db,
            u.id,
            pv_security::rbac::RoleRef::Name(role.into()),
            property,
            None,
            chrono::Utc::now(),
        )
        .await
        .expect("assign role");
    }
    u.id
}

/// A fresh full-stage session cookie (`pv_session=…`) for `user_id`.
pub async fn session_cookie(state: &AppState, user_id: i64) -> String {
    let (token, _) = pv_security::session::create(
        &state.dbs().users,
        user_id,
        pv_security::session::Stage::Full,
        &Default::default(),
        state.session_policy(),
        chrono::Utc::now(),
    )
    .await
    .expect("session");
    format!("pv_session={token}")
}

/// The `X-CSRF-Token` a page would carry for `user_id` and a request to `path` (with or
/// without the `/api/v1` prefix and query string).
pub fn csrf_token(state: &AppState, user_id: i64, path: &str) -> String {
    pv_web::csrf::token_for(state, user_id, path)
}

/// An administrator's session cookie.
pub async fn admin_cookie(state: &AppState) -> String {
    let id = user_with_role(state, "admin", Some("System Administrator"), None).await;
    session_cookie(state, id).await
}

/// The GraphQL caller for `user_id`.
pub async fn caller(state: &AppState, user_id: i64) -> pv_web::graphql::guard::Caller {
    let subject =
        pv_security::rbac::load_subject(&state.dbs().users, user_id).await.expect("subject");
    pv_web::graphql::guard::Caller {
        subject,
        now: chrono::Utc::now(),
        user: Some((user_id, "t".into())),
        ip: None,
    }
}
