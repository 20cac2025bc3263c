//! `pentavision migrate`: bring the three databases to this binary's schema and exit.

use std::path::Path;

use pv_core::config::{CliOverrides, Config, DbKind};
use pv_core::db::{self, Databases};

#[derive(Debug, clap::Args)]
pub struct Args {
    /// Only report applied and pending migrations; change nothing.
    #[arg(long)]
    status: bool,
}

pub async fn run(
    config_path: Option<&Path>,
    overrides: &CliOverrides,
    args: Args,
) -> anyhow::Result<()> {
    let config = Config::load(config_path, Some(overrides))?;
    let dbs = Databases::connect(&config).await?;
    for kind in DbKind::ALL {
        let conn = dbs.get(kind);
        db::check_not_newer(kind, conn).await?;
        let applied = db::applied_migrations(kind, conn).await?;
        let pending: Vec<String> =
            db::known_migrations(kind).into_iter().filter(|m| !applied.contains(m)).collect();
        if !args.status {
            db::migrate(kind, conn).await?;
        }
        let verb = if args.status { "pending" } else { "applied now" };
        println!(
            "{kind}: {} applied before, {} {verb}{}",
            applied.len(),
            pending.len(),
            if pending.is_empty() { String::new() } else { format!(" ({})", pending.join(", ")) }
        );
    }
    dbs.close().await;
    Ok(())
}
