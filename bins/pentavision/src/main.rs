//! `pentavision`: the PentaVision server and its maintenance commands.
//!
//! This file only parses the command line and dispatches; each subcommand lives in `cmds/`.

use std::net::SocketAddr;
use std::path::PathBuf;
use std::process::ExitCode;

use clap::{Parser, Subcommand};

mod cmds;

/// PentaVision: a self-hosted security-camera platform.
#[derive(Debug, Parser)]
#[command(name = "pentavision", version, about, long_about = None)]
struct Cli {
    /// TOML configuration file (default: DATA_DIR/pentavision.toml when it exists); also read from $PENTAVISION_CONFIG.
    #[arg(long, global = true, value_name = "FILE")]
    config: Option<PathBuf>,
    /// Data directory for SQLite databases, logs and recordings [default: ./pentavision-data].
    #[arg(long, global = true, value_name = "DIR")]
    data_dir: Option<PathBuf>,
    /// Address to listen on [default: 127.0.0.1:8080].
    #[arg(long, global = true, value_name = "ADDR")]
    listen: Option<SocketAddr>,
    #[command(subcommand)]
    command: Option<Command>,
}

#[derive(Debug, Subcommand)]
enum Command {
    /// Run the server (the default when no command is given).
    Run,
    /// Apply database migrations to the three databases and exit.
    Migrate(cmds::migrate::Args),
    /// Check the configuration and print it with secrets redacted.
    Config,
    /// Write the OpenAPI document and the GraphQL SDL (the committed API snapshots).
    ExportSchema(cmds::export_schema::Args),
    /// Reconcile recorded files with the segment index (`--repair` fixes what it finds).
    Check(cmds::check::Args),
    /// Check the tamper-evident audit log.
    Audit(cmds::audit::Args),
    /// Block, exempt, remove or list IP addresses and networks.
    Ip(cmds::ip::Args),
    /// Create, revoke or list API tokens.
    Token(cmds::token::Args),
    /// Decrypt an object that an encrypting storage module uploaded.
    Decrypt(cmds::decrypt::Args),
    /// Download the face models, or measure how well they tell people apart.
    Faces(cmds::faces::Args),
}

impl Cli {
    fn overrides(&self) -> pv_core::config::CliOverrides {
        pv_core::config::CliOverrides { data_dir: self.data_dir.clone(), listen: self.listen }
    }
}

fn main() -> ExitCode {
    let cli = Cli::parse();
    let runtime = match tokio::runtime::Runtime::new() {
        Ok(rt) => rt,
        Err(e) => return fail(&anyhow::anyhow!("cannot start the async runtime: {e}")),
    };
    let overrides = cli.overrides();
    let config_path = cli.config.as_deref();
    let result = runtime.block_on(async {
        match cli.command.unwrap_or(Command::Run) {
            Command::Run => cmds::run::run(config_path, &overrides).await,
            Command::Migrate(args) => cmds::migrate::run(config_path, &overrides, args).await,
            Command::Config => cmds::config::run(config_path, &overrides),
            Command::ExportSchema(args) => cmds::export_schema::run(args).await,
            Command::Check(args) => cmds::check::run(config_path, &overrides, args).await,
            Command::Audit(args) => cmds::audit::run(config_path, &overrides, args).await,
            Command::Ip(args) => cmds::ip::run(config_path, &overrides, args).await,
            Command::Token(args) => cmds::token::run(config_path, &overrides, args).await,
            Command::Decrypt(args) => cmds::decrypt::run(config_path, &overrides, args),
            // Blocking work (downloads, inference) off the async workers.
            Command::Faces(args) => {
                let (path, overrides) = (config_path.map(PathBuf::from), overrides.clone());
                tokio::task::spawn_blocking(move || {
                    cmds::faces::run(path.as_deref(), &overrides, args)
                })
                .await
                .unwrap_or_else(|e| Err(anyhow::anyhow!("the faces command failed: {e}")))
            }
        }
    });
    match result {
        Ok(()) => ExitCode::SUCCESS,
        Err(e) => fail(&e),
    }
}

/// Print an error as one line (`pentavision: what: why`) and return a failing exit code.
fn fail(e: &anyhow::Error) -> ExitCode {
    eprintln!("pentavision: {}", pv_core::error::one_line(e.as_ref()));
    ExitCode::FAILURE
}
