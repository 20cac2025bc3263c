//! The API contracts as text: the OpenAPI document and the GraphQL SDL. Committed copies live
//! in `pv-web/schema/`; a test fails when the served schema differs from them, and
//! `pentavision export-schema` (or the test with `UPDATE_SNAPSHOTS=1`) refreshes them.

use pv_core::config::{Config, DbKind};
use pv_core::db::{self, Databases};

use crate::graphql::GraphqlApi;

/// Render `(openapi.json, schema.graphql)`. The GraphQL schema is built over in-memory SQLite
/// connections: it depends on the entities only.
pub async fn render(config: &Config) -> crate::Result<(String, String)> {
    let memory = |kind| db::connect_url(kind, "sqlite::memory:", config);
    let dbs = Databases {
        users: memory(DbKind::Users).await?,
        faces: memory(DbKind::Faces).await?,
        records: memory(DbKind::Records).await?,
    };
    let api = GraphqlApi::build(&dbs, &config.graphql).await?;
    let sdl = api.sdl();
    dbs.close().await;
    Ok((crate::rest::openapi_json() + "\n", sdl))
}
