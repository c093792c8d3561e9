//! `ferrolb speaker --config-dir DIR --node-name NAME`: the node agent, run from a folder of
//! the same YAML a cluster would hold (ferrolb.io resources and v1 Services).

use std::collections::BTreeMap;
use std::net::{Ipv4Addr, SocketAddr};
use std::path::PathBuf;
use std::sync::Arc;
use std::time::Duration;

use anyhow::{Context, bail};
use ferrolb_model::duration::parse_duration;
use ferrolb_speaker::agent::{Agent, AgentOptions};
use ferrolb_speaker::metrics::{self, Metrics};
use ferrolb_speaker::planner::Node;
use ferrolb_speaker::status_api::AgentStatusSource;
use tokio::net::TcpListener;
use tokio::signal::unix::{SignalKind, signal};
use tokio::sync::watch;
use tracing::{error, info};

use crate::Outcome;

/// Arguments of `ferrolb speaker`.
#[derive(Debug, clap::Args)]
pub struct Args {
    /// Folder of YAML: ferrolb.io resources, v1 Services, optionally EndpointSlices. Watched;
    /// each change is applied atomically, and a bad change keeps the last good configuration.
    #[arg(long, value_name = "DIR")]
    config_dir: PathBuf,
    /// This node's name (what EndpointSlices' nodeName refer to).
    #[arg(long, value_name = "NAME")]
    node_name: String,
    /// This node's labels, for nodeSelectors: `key=value,key2=value2`.
    #[arg(long, value_name = "LABELS", value_parser = parse_labels, default_value = "")]
    node_labels: BTreeMap<String, String>,
    /// BGP router id; default: the local IPv4 address towards the first IPv4 peer.
    #[arg(long, value_name = "IPV4")]
    router_id: Option<Ipv4Addr>,
    /// Put announced service addresses on this interface (e.g. lo) and remove them on withdraw.
    #[arg(long, value_name = "IFACE")]
    bind_vips: Option<String>,
    /// Port to accept the routers' BGP connections on; 0 to only connect.
    #[arg(long, default_value_t = 179)]
    listen_port: u16,
    /// On SIGTERM/SIGINT, how long routes carry GRACEFUL_SHUTDOWN (RFC 8326) before they are
    /// withdrawn and sessions closed with a Cease.
    #[arg(long, value_name = "DURATION", value_parser = parse_go_duration, default_value = "5s")]
    drain_time: Duration,
    /// Handle only Services with this spec.loadBalancerClass (default: Services without one).
    #[arg(long, value_name = "CLASS")]
    load_balancer_class: Option<String>,
    /// Quiet time after a change in the folder before it is read.
    #[arg(long, value_name = "DURATION", value_parser = parse_go_duration, default_value = "50ms")]
    watch_debounce: Duration,
    /// The gRPC status API (ferrolb.v1.Status, health, reflection), read by `ferrolb status`.
    #[arg(long, value_name = "ADDR:PORT", default_value = ferrolb_api_grpc::DEFAULT_ADDRESS)]
    status_address: SocketAddr,
    /// Prometheus metrics, /healthz and /readyz over HTTP.
    #[arg(long, value_name = "ADDR:PORT", default_value = "127.0.0.1:9120")]
    metrics_address: SocketAddr,
}

fn parse_go_duration(s: &str) -> Result<Duration, String> {
    parse_duration(s).map_err(|e| e.to_string())
}

fn parse_labels(s: &str) -> Result<BTreeMap<String, String>, String> {
    let mut labels = BTreeMap::new();
    for pair in s.split(',').map(str::trim).filter(|p| !p.is_empty()) {
        let (key, value) = pair
            .split_once('=')
            .ok_or_else(|| format!("{pair:?}: expected key=value"))?;
        if key.is_empty() {
            return Err(format!("{pair:?}: empty label key"));
        }
        labels.insert(key.to_string(), value.to_string());
    }
    Ok(labels)
}

pub fn run(args: &Args) -> anyhow::Result<Outcome> {
    tracing_subscriber::fmt()
        .with_env_filter(
            tracing_subscriber::EnvFilter::try_from_default_env().unwrap_or_else(|_| "info".into()),
        )
        .init();
    if !args.config_dir.is_dir() {
        bail!(
            "--config-dir {}: not a directory",
            args.config_dir.display()
        );
    }
    let options = AgentOptions {
        config_dir: args.config_dir.clone(),
        node: Node {
            name: args.node_name.clone(),
            labels: args.node_labels.clone(),
        },
        router_id: args.router_id,
        bind_vips: args.bind_vips.clone(),
        listen_port: args.listen_port,
        drain_time: args.drain_time,
        load_balancer_class: args.load_balancer_class.clone(),
        watch_debounce: args.watch_debounce,
    };
    let runtime = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_all()
        .build()
        .context("cannot start the async runtime")?;
    let outcome = runtime.block_on(async {
        let mut agent = Agent::start(options).await?;
        let (stop_servers, servers_stop) = watch::channel(false);
        let stopped = move || {
            let mut rx = servers_stop.clone();
            async move {
                let _ = rx.wait_for(|stop| *stop).await;
            }
        };
        let status_listener = TcpListener::bind(args.status_address)
            .await
            .with_context(|| format!("--status-address {}", args.status_address))?;
        let metrics_listener = TcpListener::bind(args.metrics_address)
            .await
            .with_context(|| format!("--metrics-address {}", args.metrics_address))?;
        let source = Arc::new(AgentStatusSource::new(agent.status(), agent.speaker_status()));
        let metrics = Arc::new(
            Metrics::new(agent.status(), agent.speaker_status())
                .context("cannot set up the metrics")?,
        );
        agent.on_read(metrics.read_observer());
        info!(status = %args.status_address, metrics = %args.metrics_address, "status API and metrics listening");
        let status_server = tokio::spawn(ferrolb_api_grpc::serve(
            status_listener,
            source,
            stopped(),
        ));
        let metrics_server = tokio::spawn(metrics::serve(metrics_listener, metrics, stopped()));
        let mut term = signal(SignalKind::terminate()).context("cannot watch SIGTERM")?;
        let mut int = signal(SignalKind::interrupt()).context("cannot watch SIGINT")?;
        let shutdown = async move {
            tokio::select! {
                _ = term.recv() => {}
                _ = int.recv() => {}
            }
        };
        let result = agent.run(shutdown).await;
        let _ = stop_servers.send(true);
        // Open `--watch` streams end with the agent's status channels; do not let a stuck
        // client hold the exit.
        match tokio::time::timeout(Duration::from_secs(2), status_server).await {
            Ok(Ok(Err(e))) => error!(error = %e, "status API failed"),
            Ok(Err(e)) => error!(error = %e, "status API task failed"),
            Ok(Ok(Ok(()))) => {}
            Err(_) => info!("status API clients still connected at exit"),
        }
        let _ = tokio::time::timeout(Duration::from_secs(2), metrics_server).await;
        tracing::debug!("status API and metrics stopped");
        result?;
        Ok(Outcome::Clean)
    });
    // Everything that matters (drain, Cease, unbinding) is done; do not wait for stray
    // blocking tasks (the folder watcher's reads) to notice the runtime is going.
    runtime.shutdown_timeout(Duration::from_millis(100));
    outcome
}
