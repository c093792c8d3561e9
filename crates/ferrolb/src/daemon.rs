//! The skeleton every long-running subcommand (`speaker`, `controller`) shares: logging, the
//! runtime, SIGTERM/SIGINT, the status and metrics servers, and the order things stop in.
//!
//! A subcommand builds its own work and hands the servers what they serve; this module only
//! starts, signals and stops. Shutdown order: the work finishes first (a speaker drains its
//! routes), then the servers stop, so `ferrolb status --watch` sees the drain to the end.

use std::future::Future;
use std::net::SocketAddr;
use std::sync::Arc;
use std::time::Duration;

use anyhow::Context;
use ferrolb_api_grpc::StatusSource;
use tokio::net::TcpListener;
use tokio::signal::unix::{SignalKind, signal};
use tokio::sync::watch;
use tokio::task::JoinHandle;
use tracing::{debug, error, info};

use crate::http::{self, Observed};

/// Runs `main` on a two-thread runtime with logging set up (`RUST_LOG`, default `info`).
pub fn run<F>(main: impl FnOnce() -> F) -> anyhow::Result<()>
where
    F: Future<Output = anyhow::Result<()>>,
{
    tracing_subscriber::fmt()
        .with_env_filter(
            tracing_subscriber::EnvFilter::try_from_default_env().unwrap_or_else(|_| "info".into()),
        )
        .init();
    let runtime = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_all()
        .build()
        .context("cannot start the async runtime")?;
    let result = runtime.block_on(main());
    // Everything that matters (drain, Cease, unbinding, lease release) is done; do not wait for
    // stray blocking tasks (a folder watcher's reads) to notice the runtime is going.
    runtime.shutdown_timeout(Duration::from_millis(100));
    result
}

/// Completes on the first SIGTERM or SIGINT.
pub fn terminated() -> anyhow::Result<impl Future<Output = ()>> {
    let mut term = signal(SignalKind::terminate()).context("cannot watch SIGTERM")?;
    let mut int = signal(SignalKind::interrupt()).context("cannot watch SIGINT")?;
    Ok(async move {
        tokio::select! {
            _ = term.recv() => info!("SIGTERM received"),
            _ = int.recv() => info!("SIGINT received"),
        }
    })
}

/// The servers of a daemon: started one by one, stopped together.
pub struct Servers {
    stop: watch::Sender<bool>,
    running: Vec<(&'static str, JoinHandle<()>)>,
}

impl Default for Servers {
    fn default() -> Servers {
        Servers::new()
    }
}

impl Servers {
    /// No servers yet.
    pub fn new() -> Servers {
        Servers {
            stop: watch::channel(false).0,
            running: Vec::new(),
        }
    }

    fn stopped(&self) -> impl Future<Output = ()> + Send + 'static {
        let mut rx = self.stop.subscribe();
        async move {
            let _ = rx.wait_for(|stop| *stop).await;
        }
    }

    /// Serves `/metrics`, `/healthz` and `/readyz` on `address` (`--metrics-address`).
    pub async fn metrics(&mut self, address: SocketAddr, observed: Observed) -> anyhow::Result<()> {
        let listener = TcpListener::bind(address)
            .await
            .with_context(|| format!("--metrics-address {address}"))?;
        let stopped = self.stopped();
        self.running.push((
            "metrics",
            tokio::spawn(http::serve(listener, observed, stopped)),
        ));
        info!(metrics = %address, "metrics listening");
        Ok(())
    }

    /// Serves the gRPC status API on `address` (`--status-address`).
    pub async fn status<S: StatusSource>(
        &mut self,
        address: SocketAddr,
        source: Arc<S>,
    ) -> anyhow::Result<()> {
        let listener = TcpListener::bind(address)
            .await
            .with_context(|| format!("--status-address {address}"))?;
        let stopped = self.stopped();
        self.running.push((
            "status API",
            tokio::spawn(async move {
                if let Err(e) = ferrolb_api_grpc::serve(listener, source, stopped).await {
                    error!(error = %e, "status API failed");
                }
            }),
        ));
        info!(status = %address, "status API listening");
        Ok(())
    }

    /// Stops every server. Open `--watch` streams end with the status channels; a stuck client
    /// does not hold the exit longer than two seconds.
    pub async fn stop(self) {
        self.stop.send_replace(true);
        for (name, handle) in self.running {
            match tokio::time::timeout(Duration::from_secs(2), handle).await {
                Ok(Ok(())) => debug!(server = name, "stopped"),
                Ok(Err(e)) => error!(server = name, error = %e, "task failed"),
                Err(_) => info!(server = name, "clients still connected at exit"),
            }
        }
    }
}
