//! `ferrolb speaker --config-dir DIR --node-name NAME`: the node agent, run from a folder of
//! the same YAML a cluster would hold (ferrolb.io resources and v1 Services); or
//! `ferrolb speaker --kubernetes --node-name NAME`, reading the same objects from the cluster
//! and the addresses the controller wrote.

use std::collections::BTreeMap;
use std::net::{Ipv4Addr, SocketAddr};
use std::path::PathBuf;
use std::sync::Arc;
use std::time::Duration;

use anyhow::bail;
use ferrolb_model::duration::parse_duration;
use ferrolb_model::names::{check_label_key, check_label_value};
use ferrolb_model::node::Node;
use ferrolb_speaker::addressing::ClassFilter;
use ferrolb_speaker::agent::{Agent, AgentOptions};
use ferrolb_speaker::l2_shell::L2ShellOptions;
use ferrolb_speaker::metrics::Metrics;
use ferrolb_speaker::source::{ClusterSource, FolderSource};
use ferrolb_speaker::status_api::AgentStatusSource;
use tracing::info;

use crate::Outcome;
use crate::daemon::{self, Servers};
use crate::http::Observed;

/// Arguments of `ferrolb speaker`.
#[derive(Debug, clap::Args)]
pub struct Args {
    /// Folder of YAML: ferrolb.io resources, v1 Services, optionally EndpointSlices. Watched;
    /// each change is applied atomically, and a bad change keeps the last good configuration.
    #[arg(
        long,
        value_name = "DIR",
        required_unless_present = "kubernetes",
        conflicts_with = "kubernetes"
    )]
    config_dir: Option<PathBuf>,
    /// Read the ferrolb.io resources, Services, EndpointSlices and Nodes from the Kubernetes
    /// cluster instead of a folder; addresses come from the Services' status (written by
    /// `ferrolb controller`), this node's labels from its Node object.
    #[arg(long)]
    kubernetes: bool,
    /// With --kubernetes: the kubeconfig; default $KUBECONFIG, ~/.kube/config, else the
    /// in-cluster service account.
    #[arg(long, value_name = "FILE", requires = "kubernetes")]
    kubeconfig: Option<PathBuf>,
    /// With --kubernetes: read ferrolb.io resources from this namespace only; default every
    /// namespace.
    #[arg(long, value_name = "NS", requires = "kubernetes")]
    config_namespace: Option<String>,
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
    /// Also handle Services with this spec.loadBalancerClass (Services without a class too,
    /// unless --require-load-balancer-class). Default: only Services without a class. Use the
    /// same class flags as the controller's.
    #[arg(long, value_name = "CLASS")]
    load_balancer_class: Option<String>,
    /// Handle only Services of --load-balancer-class; leave Services without a class alone.
    #[arg(long, requires = "load_balancer_class")]
    require_load_balancer_class: bool,
    /// Quiet time after a change in the folder before it is read.
    #[arg(long, value_name = "DURATION", value_parser = parse_go_duration, default_value = "50ms")]
    watch_debounce: Duration,
    /// The gRPC status API (ferrolb.v1.Status, health, reflection), read by `ferrolb status`.
    #[arg(long, value_name = "ADDR:PORT", default_value = ferrolb_api_grpc::DEFAULT_ADDRESS)]
    status_address: SocketAddr,
    /// The layer-2 heartbeat key: a file of at least 16 octets (32 random octets recommended,
    /// e.g. `head -c 32 /dev/urandom > l2.key`), the same on every node of the segment.
    /// Required when an L2Advertisement selects this node.
    #[arg(long, value_name = "PATH")]
    l2_key_file: Option<PathBuf>,
    /// The layer-2 segment name, the same on every node of one cluster (beats of another
    /// segment are ignored).
    #[arg(long, value_name = "NAME", default_value = ferrolb_speaker::l2_shell::DEFAULT_SEGMENT)]
    l2_segment: String,
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
        check_label_key(key).map_err(|e| format!("{pair:?}: label key: {e}"))?;
        check_label_value(value).map_err(|e| format!("{pair:?}: label value: {e}"))?;
        labels.insert(key.to_string(), value.to_string());
    }
    Ok(labels)
}

/// The heartbeat key file: its bytes, at least 16 of them.
fn read_l2_key(path: &std::path::Path) -> anyhow::Result<Vec<u8>> {
    let key = std::fs::read(path)
        .map_err(|e| anyhow::anyhow!("--l2-key-file {}: {e}", path.display()))?;
    if key.len() < 16 {
        bail!(
            "--l2-key-file {}: {} octets; the heartbeat key needs at least 16 (32 random \
             octets recommended: head -c 32 /dev/urandom > FILE)",
            path.display(),
            key.len()
        );
    }
    Ok(key)
}

pub fn run(args: &Args) -> anyhow::Result<Outcome> {
    if let Some(dir) = &args.config_dir
        && !dir.is_dir()
    {
        bail!("--config-dir {}: not a directory", dir.display());
    }
    let l2_key = args.l2_key_file.as_deref().map(read_l2_key).transpose()?;
    let options = AgentOptions {
        node: Node {
            name: args.node_name.clone(),
            labels: args.node_labels.clone(),
        },
        router_id: args.router_id,
        bind_vips: args.bind_vips.clone(),
        listen_port: args.listen_port,
        drain_time: args.drain_time,
        load_balancer_class: ClassFilter {
            class: args.load_balancer_class.clone(),
            require_class: args.require_load_balancer_class,
        },
        // In a cluster the controller allocates; a folder has no controller.
        allocate: !args.kubernetes,
        l2: L2ShellOptions {
            node_id: args.node_name.clone(),
            segment: args.l2_segment.clone(),
            key: l2_key,
        },
    };
    daemon::run(|| async {
        let mut agent = Agent::start(options).await?;
        let metrics = Metrics::new(agent.status(), agent.bgp_status())
            .map_err(|e| anyhow::anyhow!("cannot set up the metrics: {e}"))?;
        metrics
            .with_l2(agent.l2_view())
            .map_err(|e| anyhow::anyhow!("cannot set up the layer-2 metrics: {e}"))?;
        agent.on_read(metrics.read_observer());
        let mut servers = Servers::new();
        let status = Arc::new(
            AgentStatusSource::new(agent.status(), agent.bgp_status()).with_l2(agent.l2_view()),
        );
        servers.status(args.status_address, status).await?;
        let metrics = Arc::new(metrics);
        let ready = metrics.clone();
        servers
            .metrics(
                args.metrics_address,
                Observed {
                    registry: metrics.registry(),
                    ready: Arc::new(move || ready.ready()),
                },
            )
            .await?;
        match &args.config_dir {
            Some(dir) => {
                let folder = FolderSource::new(dir, args.watch_debounce);
                let (_watch, updates) = folder
                    .updates()
                    .map_err(|e| anyhow::anyhow!("cannot watch {}: {e}", dir.display()))?;
                info!(dir = %dir.display(), node = %args.node_name, "watching configuration");
                agent.run(updates, daemon::terminated()?).await;
            }
            None => {
                let client = crate::kubeclient::client(args.kubeconfig.as_deref()).await?;
                let source =
                    ClusterSource::new(client, args.config_namespace.clone(), args.watch_debounce);
                info!(node = %args.node_name, "watching the cluster");
                agent.run(source.updates(), daemon::terminated()?).await;
            }
        }
        servers.stop().await;
        Ok(())
    })?;
    Ok(Outcome::Clean)
}
