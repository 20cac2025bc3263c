//! `pentavision audit verify`: check the audit log's hash chain.

use std::path::Path;

use pv_core::config::CliOverrides;

#[derive(Debug, clap::Args)]
pub struct Args {
    #[command(subcommand)]
    command: AuditCommand,
}

#[derive(Debug, clap::Subcommand)]
enum AuditCommand {
    /// Walk the audit log and name the first event that was altered, removed or inserted.
    Verify,
}

pub async fn run(
    config_path: Option<&Path>,
    overrides: &CliOverrides,
    args: Args,
) -> anyhow::Result<()> {
    let db = super::open_users_db(config_path, overrides, false).await?;
    match args.command {
        AuditCommand::Verify => {
            let v = pv_security::audit::verify(&db).await?;
            let _ = db.close().await;
            match v.first_broken {
                None => println!("audit chain intact: {} events", v.events),
                Some((id, why)) => {
                    anyhow::bail!("audit chain broken at event #{id}: {why}")
                }
            }
        }
    }
    Ok(())
}
