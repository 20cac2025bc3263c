//! pv-web integration tests: the whole application in process (poem's test client) over real
//! SQLite databases, plus the API-contract snapshots.

mod api;
mod blocklist;
mod country;
mod snapshots;

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
