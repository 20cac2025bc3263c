//! `pentavision run`: start the server and serve until SIGTERM/SIGINT.

use std::path::Path;

use anyhow::Context;
use pv_core::config::{CliOverrides, Config};

pub async fn run(config_path: Option<&Path>, overrides: &CliOverrides) -> anyhow::Result<()> {
    let config = Config::load(config_path, Some(overrides))?;
    let _telemetry = pv_core::telemetry::init(&config, "pentavision")?;
    let state = pv_web::AppState::start(config).await.context("start-up")?;
    let seed = pv_security::account::seed_admin(
        &state.dbs().users,
        &state.config().data_dir,
        chrono::Utc::now(),
    )
    .await
    .context("seeding the system administrator")?;
    let server = pv_web::server::Server::bind(&state).await?;
    // Recovery runs before any recorder starts; recorders then run until shutdown.
    let recording = state.nvr().start_all().await.context("starting the recorders")?;
    let (stop_retention, retention_stopped) = tokio::sync::oneshot::channel::<()>();
    let retention = {
        let nvr = state.nvr().clone();
        tokio::spawn(async move {
            nvr.run_background(async {
                let _ = retention_stopped.await;
            })
            .await;
        })
    };
    // Face recognition on live frames of cameras with motion, and its maintenance pass.
    let (stop_faces, faces_stopped) = tokio::sync::oneshot::channel::<()>();
    let faces = {
        let state = state.clone();
        tokio::spawn(async move {
            let faces = state.faces().clone();
            faces
                .run_live(state, async {
                    let _ = faces_stopped.await;
                })
                .await;
        })
    };
    let addr = server.local_addr();
    // The printed sign-in URL and the passkey origin need the real port (listen port 0).
    state.set_bound_addr(addr);
    let url = browser_url(&state, addr);
    let data_dir = std::fs::canonicalize(&state.config().data_dir)
        .unwrap_or_else(|_| state.config().data_dir.clone());
    let engines: Vec<String> = pv_core::config::DbKind::ALL
        .iter()
        .map(|&kind| {
            let backend = pv_core::db::backend_name(state.dbs().get(kind).get_database_backend());
            format!("{kind} ({backend})")
        })
        .collect();
    tracing::info!(%addr, data_dir = %data_dir.display(), "PentaVision {} listening", pv_core::VERSION);
    println!("PentaVision {} is running at {url}", pv_core::VERSION);
    println!("  data:      {}", data_dir.display());
    println!("  databases: {}", engines.join(", "));
    println!("  API:       {url}api/docs   GraphQL: {url}graphql");
    if addr.ip().is_loopback() && url.starts_with("http://localhost:") {
        println!(
            "  (http://{addr}/ works too; the browser is sent to localhost, where passkeys work)"
        );
    }
    println!("  cameras:   {recording} recording");
    match state.faces().status().await {
        Ok(s) if s.enabled => {
            println!("  faces:     recognition on ({} people enrolled)", s.identities)
        }
        Ok(s) => println!("  faces:     {}", s.reason.unwrap_or_default()),
        Err(_) => {}
    }
    let login_url = format!("{}/login", state.public_origin());
    match seed {
        pv_security::account::Seed::Created { code, file } => {
            println!(
                "  First login: open {login_url}, sign in as `Thalia` with the one-time setup code"
            );
            println!("      {code}");
            println!(
                "    then enrol a passkey or an authenticator app. The code is also in {} (mode \
                 0600) and stops working after the enrolment.",
                file.display()
            );
        }
        pv_security::account::Seed::Pending { file } => {
            println!(
                "  First login: open {login_url} and sign in as `Thalia` with the setup code in {}.",
                file.display()
            );
        }
        pv_security::account::Seed::Done => println!("  Sign in: {login_url}"),
    }
    println!("  Stop with Ctrl-C.");
    let served = server.run(state.clone(), pv_web::server::shutdown_signal()).await;
    let _ = stop_retention.send(());
    let _ = retention.await;
    let _ = stop_faces.send(());
    let _ = faces.await;
    // Finalise every open segment and store its row before the databases close.
    state.nvr().shutdown().await;
    served?;
    state.dbs().clone().close().await;
    tracing::info!("stopped");
    Ok(())
}

/// The address to open in a browser: the public origin when one is configured; on a loopback
/// or all-interfaces listen address `http://localhost:PORT/` (passkeys are bound to a host
/// name, and browsers refuse them on IP addresses); else the listen address itself.
fn browser_url(state: &pv_web::AppState, addr: std::net::SocketAddr) -> String {
    if state.config().server.public_origin.is_some()
        || addr.ip().is_loopback()
        || addr.ip().is_unspecified()
    {
        format!("{}/", state.public_origin())
    } else {
        format!("http://{addr}/")
    }
}
