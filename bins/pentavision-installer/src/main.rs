//! `pentavision-installer`: the set-up wizard. Asks for (or takes as flags) the data directory,
//! the listen address and the three database URLs, checks that each database answers, migrates
//! it, and writes the configuration file with mode 0600.

use std::io::{BufRead, IsTerminal, Write};
use std::net::SocketAddr;
use std::path::PathBuf;
use std::process::ExitCode;

use anyhow::Context;
use clap::Parser;
use pv_core::setup::SetupPlan;

/// Set up PentaVision: databases, data directory, configuration file.
#[derive(Debug, Parser)]
#[command(name = "pentavision-installer", version, about)]
struct Cli {
    /// Data directory [default: ./pentavision-data].
    #[arg(long, value_name = "DIR")]
    data_dir: Option<PathBuf>,
    /// Where to write the configuration [default: DATA_DIR/pentavision.toml].
    #[arg(long, value_name = "FILE")]
    config: Option<PathBuf>,
    /// Address the server will listen on [default: 127.0.0.1:8080].
    #[arg(long, value_name = "ADDR")]
    listen: Option<SocketAddr>,
    /// users database URL (postgres://…, mysql://…, sqlite://…) [default: SQLite in DATA_DIR].
    #[arg(long, value_name = "URL")]
    users_url: Option<String>,
    /// faces database URL [default: SQLite in DATA_DIR].
    #[arg(long, value_name = "URL")]
    faces_url: Option<String>,
    /// records database URL [default: SQLite in DATA_DIR].
    #[arg(long, value_name = "URL")]
    records_url: Option<String>,
    /// Never prompt; use flags and defaults.
    #[arg(long)]
    non_interactive: bool,
    /// Replace an existing configuration file.
    #[arg(long)]
    force: bool,
}

fn main() -> ExitCode {
    let cli = Cli::parse();
    let result = tokio::runtime::Runtime::new()
        .map_err(anyhow::Error::from)
        .and_then(|rt| rt.block_on(run(cli)));
    match result {
        Ok(()) => ExitCode::SUCCESS,
        Err(e) => {
            eprintln!("pentavision-installer: {}", pv_core::error::one_line(e.as_ref()));
            ExitCode::FAILURE
        }
    }
}

/// Ask on the terminal, showing the default; an empty answer keeps it.
fn ask(interactive: bool, question: &str, default: &str) -> anyhow::Result<String> {
    if !interactive {
        return Ok(default.to_string());
    }
    print!("{question} [{default}]: ");
    std::io::stdout().flush()?;
    let mut line = String::new();
    std::io::stdin().lock().read_line(&mut line)?;
    let answer = line.trim();
    Ok(if answer.is_empty() { default.to_string() } else { answer.to_string() })
}

async fn run(cli: Cli) -> anyhow::Result<()> {
    let interactive = !cli.non_interactive && std::io::stdin().is_terminal();
    let data_dir = match cli.data_dir {
        Some(d) => d,
        None => PathBuf::from(ask(interactive, "Data directory", "./pentavision-data")?),
    };
    let listen = match cli.listen {
        Some(l) => l,
        None => ask(interactive, "Listen address", "127.0.0.1:8080")?
            .parse()
            .context("listen address")?,
    };
    let mut urls: [Option<String>; 3] = [cli.users_url, cli.faces_url, cli.records_url];
    for (url, name) in urls.iter_mut().zip(["users", "faces", "records"]) {
        if url.is_none() {
            let answer = ask(
                interactive,
                &format!("{name} database URL"),
                "sqlite (in the data directory)",
            )?;
            if !answer.starts_with("sqlite (") {
                *url = Some(answer);
            }
        }
    }
    let plan = SetupPlan { data_dir: data_dir.clone(), listen, urls };
    let path =
        cli.config.unwrap_or_else(|| data_dir.join(pv_core::config::DEFAULT_CONFIG_FILE_NAME));
    plan.render()?; // validate before touching any database
    if path.exists() && !cli.force {
        anyhow::bail!("{} already exists; pass --force to replace it", path.display());
    }
    for check in plan.check_and_migrate().await? {
        println!(
            "{} database ({}): reachable, {} migration(s) applied",
            check.kind, check.backend, check.applied_now
        );
    }
    plan.write(&path, cli.force)?;
    println!("wrote {} (mode 0600)", path.display());
    println!("start the server with: pentavision --config {}", path.display());
    Ok(())
}
