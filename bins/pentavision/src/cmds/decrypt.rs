//! `pentavision decrypt --module ID IN OUT`: turn an object that a storage module with
//! encryption uploaded (downloaded from the provider by any means) back into the segment.
//!
//! The object format is documented in `pv_storage::crypt`; the module's key is derived from
//! this server's key (`DATA_DIR/server.key`) and the module's id, so the data directory of the
//! server that uploaded it is needed — keep a copy of `server.key` somewhere safe.

use std::path::{Path, PathBuf};

use pv_core::config::{CliOverrides, Config};

#[derive(Debug, clap::Args)]
pub struct Args {
    /// The storage module that uploaded the object (its number on the Storage page).
    #[arg(long)]
    module: i64,
    /// The encrypted object, as downloaded from the provider.
    input: PathBuf,
    /// Where to write the decrypted segment (must not exist yet).
    output: PathBuf,
}

pub fn run(config_path: Option<&Path>, overrides: &CliOverrides, args: Args) -> anyhow::Result<()> {
    let config = Config::load(config_path, Some(overrides))?;
    let key_file = config.data_dir.join("server.key");
    if !key_file.is_file() {
        anyhow::bail!(
            "{} does not exist: decrypting needs the server key of the server that uploaded the object",
            key_file.display()
        );
    }
    if args.output.exists() {
        anyhow::bail!("{} already exists; choose another output file", args.output.display());
    }
    let server_key = pv_security::seal::ServerKey::load_or_create(&config.data_dir)?;
    let key = pv_web::nvr::storage::encryption_key(&server_key, args.module);
    let n = pv_storage::crypt::decrypt_file(&args.input, &args.output, &key).map_err(|e| {
        anyhow::anyhow!(
            "cannot decrypt {}: {e} (is it an object of storage module {}, uploaded by this server?)",
            args.input.display(),
            args.module
        )
    })?;
    println!("decrypted {n} bytes into {}", args.output.display());
    Ok(())
}
