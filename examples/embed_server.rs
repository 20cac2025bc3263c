//! Run PentaVision's web server inside your own tokio application, with your own data dir and
//! listen address, and stop it from your code.
//!
//! `cargo run -p pv-examples --example embed_server -- [DATA_DIR] [ADDR] [SECONDS]`

use std::time::Duration;

use pv_core::config::{CliOverrides, Config};

#[tokio::main]
async fn main() -> anyhow::Result<()> {
    let mut args = std::env::args().skip(1);
    let data_dir = args.next().unwrap_or_else(|| "./pentavision-example-data".into());
    let listen = args.next().unwrap_or_else(|| "127.0.0.1:0".into()).parse()?;
    let seconds: u64 = args.next().map(|s| s.parse()).transpose()?.unwrap_or(3);

    // Defaults + environment (PV_SECTION__KEY) + our own overrides.
    let overrides = CliOverrides { data_dir: Some(data_dir.into()), listen: Some(listen) };
    let config = Config::load(None, Some(&overrides))?;

    let state = pv_web::AppState::start(config).await?;
    let server = pv_web::server::Server::bind(&state).await?;
    println!("serving on http://{}/ for {seconds} s", server.local_addr());

    // Stop after a while; a real application would use its own shutdown signal.
    let stop = tokio::time::sleep(Duration::from_secs(seconds));
    server.run(state, stop).await?;
    println!("stopped");
    Ok(())
}
