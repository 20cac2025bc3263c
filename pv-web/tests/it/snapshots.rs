//! The served API contracts must equal the committed snapshots in `pv-web/schema/`.
//! Refresh them with `UPDATE_SNAPSHOTS=1 cargo test -p pv-web --test it snapshots` or
//! `pentavision export-schema`.

use std::path::PathBuf;

use poem::test::TestClient;
use pv_core::testkit::Engine;

use crate::state;

fn snapshot_dir() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("schema")
}

fn compare(name: &str, served: &str) {
    let path = snapshot_dir().join(name);
    if std::env::var_os("UPDATE_SNAPSHOTS").is_some() {
        std::fs::write(&path, served).unwrap();
        return;
    }
    let committed = std::fs::read_to_string(&path).unwrap_or_default();
    if committed != served {
        let line = committed
            .lines()
            .zip(served.lines())
            .position(|(a, b)| a != b)
            .map(|i| i + 1)
            .unwrap_or_else(|| committed.lines().count().min(served.lines().count()) + 1);
        panic!(
            "{} differs from the served schema (first difference at line {line}); if the change \
             is intended, run `UPDATE_SNAPSHOTS=1 cargo test -p pv-web --test it snapshots` and \
             commit the result",
            path.display()
        );
    }
}

#[tokio::test]
async fn served_schemas_match_snapshots() {
    let (_env, state) = state(Engine::Sqlite).await;
    let cli = TestClient::new(pv_web::app::build(state.clone()));
    let resp = cli.get("/api/v1/openapi.json").send().await;
    resp.assert_status_is_ok();
    let served_openapi = resp.0.into_body().into_string().await.unwrap() + "\n";
    let (openapi, sdl) = pv_web::snapshots::render(state.config()).await.unwrap();
    assert_eq!(served_openapi, openapi, "export-schema renders what the server serves");
    assert_eq!(state.graphql().sdl(), sdl, "export-schema renders what the server serves");
    compare("openapi.json", &openapi);
    compare("schema.graphql", &sdl);
}
