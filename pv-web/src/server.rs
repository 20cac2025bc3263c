//! Binding and serving, with graceful shutdown on SIGTERM/SIGINT.

use std::future::Future;
use std::net::SocketAddr;
use std::time::Duration;

use poem::listener::TcpAcceptor;

use crate::state::AppState;

/// A bound, not yet serving, HTTP server.
pub struct Server {
    acceptor: TcpAcceptor,
    local_addr: SocketAddr,
}

impl std::fmt::Debug for Server {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Server").field("local_addr", &self.local_addr).finish()
    }
}

impl Server {
    /// Bind the address in `state.config().server.listen`.
    pub async fn bind(state: &AppState) -> crate::Result<Self> {
        Self::bind_addr(state.config().server.listen).await
    }

    /// Bind `addr` (port 0 picks a free port; see [`Server::local_addr`]).
    pub async fn bind_addr(addr: SocketAddr) -> crate::Result<Self> {
        let io = |context: String| move |source| crate::Error::Io { context, source };
        let listener = tokio::net::TcpListener::bind(addr)
            .await
            .map_err(io(format!("cannot listen on {addr}")))?;
        let local_addr = listener.local_addr().map_err(io(format!("listener on {addr}")))?;
        let acceptor =
            TcpAcceptor::from_tokio(listener).map_err(io(format!("listener on {addr}")))?;
        Ok(Self { acceptor, local_addr })
    }

    /// The address actually bound.
    pub fn local_addr(&self) -> SocketAddr {
        self.local_addr
    }

    /// Serve the PentaVision application until `shutdown` completes, then let in-flight
    /// requests finish for up to `server.shutdown_grace_seconds`.
    pub async fn run(
        self,
        state: AppState,
        shutdown: impl Future<Output = ()>,
    ) -> crate::Result<()> {
        let grace = Duration::from_secs(state.config().server.shutdown_grace_seconds);
        state.set_bound_addr(self.local_addr);
        self.serve(crate::app::build(state), shutdown, grace).await
    }

    /// Serve any endpoint (the blocklist daemon uses this) until `shutdown` completes, with
    /// `grace` for in-flight requests.
    pub async fn serve<E>(
        self,
        endpoint: E,
        shutdown: impl Future<Output = ()>,
        grace: Duration,
    ) -> crate::Result<()>
    where
        E: poem::IntoEndpoint,
        E::Endpoint: 'static,
    {
        poem::Server::new_with_acceptor(self.acceptor)
            .name("pentavision")
            .run_with_graceful_shutdown(endpoint, shutdown, Some(grace))
            .await
            .map_err(|source| crate::Error::Io { context: "HTTP server".into(), source })
    }
}

/// Completes on SIGTERM or SIGINT (Ctrl-C).
pub async fn shutdown_signal() {
    let ctrl_c = async {
        let _ = tokio::signal::ctrl_c().await;
    };
    #[cfg(unix)]
    let term = async {
        match tokio::signal::unix::signal(tokio::signal::unix::SignalKind::terminate()) {
            Ok(mut s) => {
                s.recv().await;
            }
            Err(_) => std::future::pending::<()>().await,
        }
    };
    #[cfg(not(unix))]
    let term = std::future::pending::<()>();
    tokio::select! {
        () = ctrl_c => tracing::info!("SIGINT received, shutting down"),
        () = term => tracing::info!("SIGTERM received, shutting down"),
    }
}
