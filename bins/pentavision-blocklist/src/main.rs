//! `pentavision-blocklist`: serves the firewall blocklist as CSV on `GET /blocklist.csv`
//! (default `127.0.0.1:7080`) for pfSense/OPNsense URL-table aliases and similar.
//!
//! It reads the users database (same `--config`/`--data-dir` as the server), re-checking it at
//! most every second, so rule and setting changes apply within a second and without a restart
//! (caching, ETags and logging: `pv_web::blocklist`). Deployment: `deploy/` (systemd units,
//! fail2ban filter and action).

use std::net::SocketAddr;
use std::path::PathBuf;
use std::process::ExitCode;

use clap::Parser;

/// Serve PentaVision's IP blocklist for firewalls.
#[derive(Debug, Parser)]
#[command(name = "pentavision-blocklist", version, about)]
struct Cli {
    /// TOML configuration file (the server's); also read from $PENTAVISION_CONFIG.
    #[arg(long, value_name = "FILE")]
    config: Option<PathBuf>,
    /// Data directory [default: ./pentavision-data].
    #[arg(long, value_name = "DIR")]
    data_dir: Option<PathBuf>,
    /// Address to listen on [default: blocklist.listen, 127.0.0.1:7080].
    #[arg(long, value_name = "ADDR")]
    listen: Option<SocketAddr>,
}

fn main() -> ExitCode {
    let cli = Cli::parse();
    let result = tokio::runtime::Runtime::new()
        .map_err(anyhow::Error::from)
        .and_then(|rt| rt.block_on(run(cli)));
    match result {
        Ok(()) => ExitCode::SUCCESS,
        Err(e) => {
            eprintln!("pentavision-blocklist: {}", pv_core::error::one_line(e.as_ref()));
            ExitCode::FAILURE
        }
    }
}

async fn run(cli: Cli) -> anyhow::Result<()> {
    let overrides = pv_core::config::CliOverrides { data_dir: cli.data_dir.clone(), listen: None };
    let mut config = pv_core::config::Config::load(cli.config.as_deref(), Some(&overrides))?;
    if let Some(listen) = cli.listen {
        config.blocklist.listen = listen;
    }
    let _telemetry = pv_core::telemetry::init(&config, "pentavision-blocklist")?;
    let users = pv_core::db::connect(&config, pv_core::config::DbKind::Users).await?;
    pv_core::db::migrate(pv_core::config::DbKind::Users, &users).await?;
    let server = pv_web::server::Server::bind_addr(config.blocklist.listen).await?;
    println!("pentavision-blocklist serving http://{}/blocklist.csv", server.local_addr());
    let app = pv_web::blocklist::app(config, users);
    let grace = std::time::Duration::from_secs(5);
    server.serve(app, pv_web::server::shutdown_signal(), grace).await?;
    Ok(())
}
