//! The subcommands, one per file.

pub mod audit;
pub mod check;
pub mod config;
pub mod decrypt;
pub mod export_schema;
pub mod faces;
pub mod ip;
pub mod migrate;
pub mod run;
pub mod token;

use std::path::Path;

use pv_core::config::{CliOverrides, Config, DbKind};

/// Load the configuration and open the users database: migrated to this binary's schema when
/// `migrate` (commands that write), else only checked not to be newer (commands that read).
pub async fn open_users_db(
    config_path: Option<&Path>,
    overrides: &CliOverrides,
    migrate: bool,
) -> anyhow::Result<sea_orm::DatabaseConnection> {
    let config = Config::load(config_path, Some(overrides))?;
    let db = pv_core::db::connect(&config, DbKind::Users).await?;
    if migrate {
        pv_core::db::migrate(DbKind::Users, &db).await?;
    } else {
        pv_core::db::check_not_newer(DbKind::Users, &db).await?;
    }
    Ok(db)
}
