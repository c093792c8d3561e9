//! `ferrolb controller`: the cluster controller, one writer at a time under a Lease, assigning
//! LoadBalancer addresses from the ferrolb.io pools. The work is `ferrolb-controller`'s; this
//! module reads flags, builds the Kubernetes client and runs it inside the daemon skeleton.

use std::net::SocketAddr;
use std::path::PathBuf;
use std::sync::Arc;
use std::time::Duration;

use ferrolb_controller::{ClassFilter, Controller, ControllerMetrics, ControllerOptions};
use ferrolb_model::duration::parse_duration;
use tracing::info;

use crate::Outcome;
use crate::daemon::{self, Servers};
use crate::http::Observed;

/// Arguments of `ferrolb controller`.
#[derive(Debug, clap::Args)]
pub struct Args {
    /// Kubeconfig to use; default: $KUBECONFIG, ~/.kube/config, else the in-cluster service
    /// account.
    #[arg(long, value_name = "FILE")]
    kubeconfig: Option<PathBuf>,
    /// Handle Services with this spec.loadBalancerClass (Services without a class are handled
    /// too unless --require-load-balancer-class). Default: only Services without a class.
    #[arg(long, value_name = "CLASS")]
    load_balancer_class: Option<String>,
    /// Leave Services without spec.loadBalancerClass alone (needs --load-balancer-class).
    #[arg(long, requires = "load_balancer_class")]
    require_load_balancer_class: bool,
    /// Read ferrolb.io resources from this namespace only (the one ferrolb runs in); default:
    /// every namespace.
    #[arg(long, value_name = "NS")]
    config_namespace: Option<String>,
    /// Namespace of the leader-election Lease.
    #[arg(long, value_name = "NS", default_value = "ferrolb-system")]
    lease_namespace: String,
    /// Name of the leader-election Lease.
    #[arg(long, value_name = "NAME", default_value = "ferrolb-controller")]
    lease_name: String,
    /// This instance's identity in the Lease and its Events; default: $POD_NAME, else the host
    /// name.
    #[arg(long, value_name = "NAME")]
    identity: Option<String>,
    /// How long the Lease lasts without renewal: a crashed leader is replaced after this.
    #[arg(long, value_name = "DURATION", value_parser = parse_seconds, default_value = "15s")]
    lease_duration: Duration,
    /// A full pass runs at least this often, even without changes.
    #[arg(long, value_name = "DURATION", value_parser = parse_seconds, default_value = "5m")]
    resync: Duration,
    /// Prometheus metrics, /healthz and /readyz over HTTP.
    #[arg(long, value_name = "ADDR:PORT", default_value = "127.0.0.1:9121")]
    metrics_address: SocketAddr,
}

fn parse_seconds(s: &str) -> Result<Duration, String> {
    let duration = parse_duration(s).map_err(|e| e.to_string())?;
    if duration < Duration::from_secs(1) {
        return Err("must be at least 1s".into());
    }
    Ok(duration)
}

fn identity(args: &Args) -> String {
    args.identity
        .clone()
        .or_else(|| std::env::var("POD_NAME").ok().filter(|s| !s.is_empty()))
        .or_else(|| {
            std::fs::read_to_string("/proc/sys/kernel/hostname")
                .ok()
                .map(|h| h.trim().to_owned())
                .filter(|h| !h.is_empty())
        })
        .unwrap_or_else(|| "ferrolb-controller".into())
}

pub fn run(args: &Args) -> anyhow::Result<Outcome> {
    let duration = args.lease_duration.as_secs();
    let options = ControllerOptions {
        filter: ClassFilter {
            class: args.load_balancer_class.clone(),
            require_class: args.require_load_balancer_class,
        },
        config_namespace: args.config_namespace.clone(),
        lease_namespace: args.lease_namespace.clone(),
        lease_name: args.lease_name.clone(),
        identity: identity(args),
        lease_duration_secs: duration,
        // Renew a third of the way before expiry.
        lease_grace_secs: (duration / 3).max(1),
        resync: args.resync,
    };
    daemon::run(|| async {
        let client = crate::kubeclient::client(args.kubeconfig.as_deref()).await?;
        let metrics = ControllerMetrics::new()
            .map_err(|e| anyhow::anyhow!("cannot set up the metrics: {e}"))?;
        let controller = Controller::new(client, options.clone(), metrics.clone());
        let status = controller.status();
        let mut servers = Servers::new();
        servers
            .metrics(
                args.metrics_address,
                Observed {
                    registry: metrics.registry(),
                    ready: Arc::new(move || {
                        let status = status.borrow();
                        if status.synced {
                            Ok(())
                        } else {
                            Err("the initial lists of the cluster have not completed".into())
                        }
                    }),
                },
            )
            .await?;
        info!(identity = %options.identity, lease = %options.lease_name, "controller starting");
        let result = controller.run(daemon::terminated()?).await;
        servers.stop().await;
        result.map_err(anyhow::Error::from)
    })?;
    Ok(Outcome::Clean)
}
