//! `ferrolb speaker --config-dir DIR --node-name NAME`: the node agent, run from a folder of
//! the same YAML a cluster would hold (ferrolb.io resources and v1 Services).

use std::collections::BTreeMap;
use std::net::Ipv4Addr;
use std::path::PathBuf;
use std::time::Duration;

use anyhow::{Context, bail};
use ferrolb_model::duration::parse_duration;
use ferrolb_speaker::agent::{Agent, AgentOptions};
use ferrolb_speaker::planner::Node;
use tokio::signal::unix::{SignalKind, signal};

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
    runtime.block_on(async {
        let agent = Agent::start(options).await?;
        let mut term = signal(SignalKind::terminate()).context("cannot watch SIGTERM")?;
        let mut int = signal(SignalKind::interrupt()).context("cannot watch SIGINT")?;
        let shutdown = async move {
            tokio::select! {
                _ = term.recv() => {}
                _ = int.recv() => {}
            }
        };
        agent.run(shutdown).await?;
        Ok(Outcome::Clean)
    })
}
