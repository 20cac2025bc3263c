//! `pentavision check [--repair]`: reconcile every camera's segment files with the segment
//! index and report; `--repair` fixes what it finds (what the server's start-up recovery pass
//! does). Exits non-zero when problems remain.

use std::path::Path;

use pv_core::config::{CliOverrides, Config, DbKind};

#[derive(Debug, clap::Args)]
pub struct Args {
    /// Repair: cut crash-truncated files to their last whole fragment, delete unplayable ones,
    /// index files without a row and drop rows whose file is gone.
    #[arg(long)]
    repair: bool,
}

pub async fn run(
    config_path: Option<&Path>,
    overrides: &CliOverrides,
    args: Args,
) -> anyhow::Result<()> {
    let config = Config::load(config_path, Some(overrides))?;
    let db = pv_core::db::connect(&config, DbKind::Records).await?;
    if args.repair {
        pv_core::db::migrate(DbKind::Records, &db).await?;
    } else {
        pv_core::db::check_not_newer(DbKind::Records, &db).await?;
    }
    let report = pv_web::nvr::check(&db, &config.data_dir, args.repair, chrono::Utc::now()).await?;
    let _ = db.close().await;
    let mut problems = 0usize;
    for cam in &report {
        println!("camera {} ({}): {}", cam.camera, cam.name, cam.summary());
        let lists = [
            ("repaired", &cam.repaired),
            ("unplayable", &cam.discarded),
            ("not indexed", &cam.unindexed),
            ("file missing", &cam.missing),
            ("being written", &cam.in_progress),
        ];
        for (what, files) in lists {
            for f in files {
                println!("  {what}: {f}");
            }
        }
        if !cam.is_clean() {
            problems += 1;
        }
    }
    match (problems, args.repair) {
        (0, _) => println!("clean: {} cameras checked", report.len()),
        (n, true) => println!("repaired {n} cameras"),
        (n, false) => anyhow::bail!(
            "{n} cameras have problems; run `pentavision check --repair` (the server repairs at start-up too)"
        ),
    }
    Ok(())
}
