//! `pentavision export-schema`: write `openapi.json` and `schema.graphql`, the API contracts
//! that `pv-web/schema/` snapshots. The GraphQL schema is built over throw-away in-memory
//! databases; it depends only on the entities, not on data.

use std::path::PathBuf;

use anyhow::Context;
use pv_core::config::Config;

#[derive(Debug, clap::Args)]
pub struct Args {
    /// Directory to write `openapi.json` and `schema.graphql` into.
    #[arg(long, default_value = "pv-web/schema")]
    dir: PathBuf,
}

pub async fn run(args: Args) -> anyhow::Result<()> {
    let (openapi, sdl) = pv_web::snapshots::render(&Config::default()).await?;
    std::fs::create_dir_all(&args.dir).with_context(|| format!("{}", args.dir.display()))?;
    for (name, text) in [("openapi.json", openapi), ("schema.graphql", sdl)] {
        let path = args.dir.join(name);
        std::fs::write(&path, text).with_context(|| format!("{}", path.display()))?;
        println!("wrote {}", path.display());
    }
    Ok(())
}
