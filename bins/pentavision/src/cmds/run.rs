//! `pentavision run`: start the server and serve until SIGTERM/SIGINT.

use std::path::Path;

use anyhow::Context;
use pv_core::config::{CliOverrides, Config};

pub async fn run(config_path: Option<&Path>, overrides: &CliOverrides) -> anyhow::Result<()> {
    let config = Config::load(config_path, Some(overrides))?;
    let _telemetry = pv_core::telemetry::init(&config, "pentavision")?;
    let state = pv_web::AppState::start(config).await.context("start-up")?;
    let server = pv_web::server::Server::bind(&state).await?;
    let addr = server.local_addr();
    let url = format!("http://{addr}/");
    let data_dir = std::fs::canonicalize(&state.config().data_dir)
        .unwrap_or_else(|_| state.config().data_dir.clone());
    let engines: Vec<String> = pv_core::config::DbKind::ALL
        .iter()
        .map(|&kind| {
            let backend = pv_core::db::backend_name(state.dbs().get(kind).get_database_backend());
            format!("{kind} ({backend})")
        })
        .collect();
    tracing::info!(%addr, data_dir = %data_dir.display(), "PentaVision {} listening", pv_core::VERSION);
    println!("PentaVision {} is running at {url}", pv_core::VERSION);
    println!("  data:      {}", data_dir.display());
    println!("  databases: {}", engines.join(", "));
    println!("  API:       {url}api/docs   GraphQL: {url}graphql");
    println!(
        "  First login: open {url} in a browser on this machine. No accounts exist yet, so \
         there is nothing to sign in with: until sign-in is set up the UI and API answer only \
         clients on this machine."
    );
    println!("  Stop with Ctrl-C.");
    server.run(state.clone(), pv_web::server::shutdown_signal()).await?;
    state.dbs().clone().close().await;
    tracing::info!("stopped");
    Ok(())
}
