//! Open the records database described by a PentaVision config (or the defaults) and print
//! the ten most recent segments of every camera.
//!
//! `cargo run -p pv-examples --example list_segments -- [CONFIG_FILE]`

use pv_core::config::{Config, DbKind};
use pv_core::db::records::{camera, segment};
use sea_orm::{ColumnTrait, EntityTrait, QueryFilter, QueryOrder, QuerySelect};

#[tokio::main]
async fn main() -> anyhow::Result<()> {
    let path = std::env::args().nth(1).map(std::path::PathBuf::from);
    let config = Config::load(path.as_deref(), None)?;
    let records = pv_core::db::connect(&config, DbKind::Records).await?;
    pv_core::db::check_not_newer(DbKind::Records, &records).await?;

    let cameras = camera::Entity::find().order_by_asc(camera::Column::Name).all(&records).await?;
    if cameras.is_empty() {
        println!(
            "no cameras in {}",
            pv_core::config::redact_url(&config.database_url(DbKind::Records))
        );
    }
    for cam in cameras {
        println!("{} (#{}, {})", cam.name, cam.id, cam.status);
        let recent = segment::Entity::find()
            .filter(segment::Column::CameraId.eq(cam.id))
            .order_by_desc(segment::Column::StartedAt)
            .limit(10)
            .all(&records)
            .await?;
        for s in recent {
            println!("  {} → {}  {:>10} bytes  {}", s.started_at, s.ended_at, s.size_bytes, s.path);
        }
    }
    Ok(())
}
