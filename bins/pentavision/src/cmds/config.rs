//! `pentavision config`: validate the configuration and print it, secrets redacted.

use std::path::Path;

use pv_core::config::{CliOverrides, Config};

pub fn run(config_path: Option<&Path>, overrides: &CliOverrides) -> anyhow::Result<()> {
    let config = Config::load(config_path, Some(overrides))?;
    print!("{}", config.redacted_toml());
    Ok(())
}
