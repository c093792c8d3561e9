//! The node agent's shell: snapshots in, announcements out.
//!
//! The agent takes a stream of [`SourceUpdate`]s from a source (a folder, a cluster), runs the
//! pure step [`desired`] on each good snapshot, and applies the result: routes and peers to the
//! BGP speaker, VIP groups to the layer-2 shell ([`crate::l2_shell`]) and, with `--bind-vips`,
//! addresses to the host's interface. A refused update
//! changes nothing: the last good snapshot stays applied and the problems are logged and kept
//! in [`AgentStatus`]. Stopping drains first (RFC 8326 graceful shutdown, then withdraw, then
//! Cease; layer-2 groups are handed to their next owners at the same time).
//!
//! It owns the I/O of applying and the one fact it must look up itself, the router id. It does
//! not decide anything a snapshot does not say.

use std::collections::{BTreeMap, BTreeSet};
use std::net::{IpAddr, Ipv4Addr, SocketAddr, UdpSocket};
use std::time::{Duration, Instant};

use ferrolb_allocator::PoolStats;
use ferrolb_bgpd::{Speaker, SpeakerConfig, SpeakerError, SpeakerStatus};
use ferrolb_model::config::{Config, PeerEndpoint};
use ferrolb_model::node::Node;
use futures_util::{Stream, StreamExt};
use tokio::sync::watch;
use tracing::{debug, error, info, warn};

use crate::addressing::{Addressing, Allocations, ClassFilter};
use crate::desired::{Desired, desired};
use crate::l2_shell::{L2Shell, L2ShellOptions, L2View, bind_refusal};
use crate::peers::{PeerProblem, PeerWarning};
use crate::plan::Plan;
use crate::source::{Snapshot, SourceProblem, SourceUpdate};
use crate::vip_binding::{VipBindError, VipBinder};

/// How the agent runs.
#[derive(Clone, Debug)]
pub struct AgentOptions {
    /// This node (its labels are overridden by the source's Node object when it has one).
    pub node: Node,
    /// The node's BGP router id; by default the local IPv4 address towards the first IPv4
    /// peer, chosen once at the first good snapshot.
    pub router_id: Option<Ipv4Addr>,
    /// Put announced addresses on this interface.
    pub bind_vips: Option<String>,
    /// Port to accept routers' connections on; 0: connect only.
    pub listen_port: u16,
    /// How long routes carry GRACEFUL_SHUTDOWN before they are withdrawn when stopping.
    pub drain_time: Duration,
    /// Which Services to handle, by `loadBalancerClass`; the same flags as the controller's.
    pub load_balancer_class: ClassFilter,
    /// Allocate addresses on this node (a folder), or read them from the Services' status.
    pub allocate: bool,
    /// Layer 2: node id, segment and heartbeat key.
    pub l2: L2ShellOptions,
}

/// What the agent is doing, for logs, status APIs and tests.
#[derive(Clone, Debug, Default, PartialEq)]
pub struct AgentStatus {
    /// Good snapshots applied so far.
    pub generation: u64,
    /// Problems of the latest update, if it was refused (the previous snapshot stays applied).
    pub rejected: Vec<String>,
    /// The node's BGP router id.
    pub router_id: Option<Ipv4Addr>,
    /// The plan applied.
    pub plan: Plan,
    /// BGPPeers selected for this node that have no session, and why.
    pub peer_errors: BTreeMap<String, PeerProblem>,
    /// What the user should know about sessions that run.
    pub peer_warnings: BTreeMap<String, Vec<PeerWarning>>,
    /// Per-pool use (when this node allocates).
    pub pools: Vec<PoolStats>,
    /// Addresses on the `--bind-vips` interface.
    pub bound: BTreeSet<IpAddr>,
    /// Why layer-2 VIPs are not put on the `--bind-vips` interface, when they are not.
    pub l2_bind_refused: Option<String>,
    /// How long the last snapshot took from read to the speaker having the new routes.
    pub last_apply: Option<Duration>,
}

/// The outcome of one update, for [`Agent::on_read`] observers (metrics: event-to-UPDATE
/// latency and read counts, lossless unlike the status channel).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum ReadOutcome {
    /// Applied: `took` from reading the source to the speaker having the new routes.
    Applied {
        /// Read to routes at the speaker.
        took: Duration,
    },
    /// Refused with this many problems; the previous snapshot stays applied.
    Refused {
        /// How many problems.
        problems: usize,
    },
}

/// Called after every update.
pub type ReadObserver = Box<dyn Fn(ReadOutcome) + Send + Sync>;

/// What can stop the agent.
#[derive(Debug, thiserror::Error)]
pub enum AgentError {
    /// The BGP speaker could not start.
    #[error(transparent)]
    Speaker(#[from] SpeakerError),
    /// The `--bind-vips` interface is unusable.
    #[error("--bind-vips: {0}")]
    Bind(#[from] VipBindError),
}

/// The node agent.
pub struct Agent {
    options: AgentOptions,
    bgp: Speaker,
    binder: Option<VipBinder>,
    l2: L2Shell,
    addressing: Addressing,
    status: watch::Sender<AgentStatus>,
    router_id: Option<Ipv4Addr>,
    on_read: Option<ReadObserver>,
}

impl Agent {
    /// Binds the BGP listener and the interface for `--bind-vips`; reads nothing yet.
    pub async fn start(options: AgentOptions) -> Result<Agent, AgentError> {
        let listen = if options.listen_port == 0 {
            Vec::new()
        } else {
            vec![
                SocketAddr::new(IpAddr::V4(Ipv4Addr::UNSPECIFIED), options.listen_port),
                SocketAddr::new(
                    IpAddr::V6(std::net::Ipv6Addr::UNSPECIFIED),
                    options.listen_port,
                ),
            ]
        };
        let bgp = Speaker::start(SpeakerConfig { listen }).await?;
        let binder = match &options.bind_vips {
            Some(interface) => Some(VipBinder::new(interface).await?),
            None => None,
        };
        let l2 = L2Shell::start(options.l2.clone());
        let (status, _) = watch::channel(AgentStatus::default());
        let addressing = if options.allocate {
            Addressing::Folder(Allocations::new())
        } else {
            Addressing::FromServiceStatus
        };
        Ok(Agent {
            router_id: options.router_id,
            options,
            bgp,
            binder,
            l2,
            addressing,
            status,
            on_read: None,
        })
    }

    /// The agent's status.
    pub fn status(&self) -> watch::Receiver<AgentStatus> {
        self.status.subscribe()
    }

    /// The BGP speaker's status.
    pub fn bgp_status(&self) -> watch::Receiver<SpeakerStatus> {
        self.bgp.status()
    }

    /// The layer-2 shell's view: chosen interfaces, problems, the announcer's status.
    pub fn l2_view(&self) -> watch::Receiver<L2View> {
        self.l2.view()
    }

    /// Calls `observer` after every update (one observer; a new one replaces it).
    pub fn on_read(&mut self, observer: ReadObserver) {
        self.on_read = Some(observer);
    }

    /// Applies one update from a source: a good snapshot is applied, a refused one is reported.
    pub async fn apply(&mut self, update: SourceUpdate) {
        match update.result {
            Ok(snapshot) => {
                let took = self.apply_snapshot(&snapshot, update.started).await;
                self.observe(ReadOutcome::Applied { took });
                debug!(took = ?took, "configuration applied");
            }
            Err(problems) => {
                self.refuse(&problems);
                self.observe(ReadOutcome::Refused {
                    problems: problems.len(),
                });
            }
        }
    }

    fn observe(&self, outcome: ReadOutcome) {
        if let Some(observe) = &self.on_read {
            observe(outcome);
        }
    }

    fn refuse(&self, problems: &[SourceProblem]) {
        for p in problems {
            error!("{p}");
        }
        warn!(
            problems = problems.len(),
            "configuration refused: the last good configuration stays applied"
        );
        self.status.send_modify(|s| {
            s.rejected = problems.iter().map(ToString::to_string).collect();
        });
    }

    /// Applies one good snapshot read at `started`; returns how long it took from then until
    /// the speaker had the new routes (published with the new generation, in one update).
    async fn apply_snapshot(&mut self, snapshot: &Snapshot, started: Instant) -> Duration {
        for ignored in &snapshot.ignored {
            debug!("ignored {ignored}");
        }
        let router_id = self.router_id(&snapshot.config);
        let desired = desired(
            snapshot,
            &self.options.node,
            router_id,
            &self.options.load_balancer_class,
            &mut self.addressing,
        );
        log_decisions(&desired);
        let bound = self.apply_desired(&desired).await;
        let took = started.elapsed();
        let Desired {
            plan,
            peer_problems,
            peer_warnings,
            pools,
            ..
        } = desired;
        self.status.send_modify(|s| {
            s.generation += 1;
            s.last_apply = Some(took);
            s.rejected.clear();
            s.router_id = router_id;
            s.plan = plan;
            s.peer_errors = peer_problems;
            s.peer_warnings = peer_warnings;
            s.pools = pools;
            s.bound = bound;
        });
        took
    }

    /// Pushes the desired state to the BGP speaker and the host; returns the bound addresses.
    async fn apply_desired(&mut self, desired: &Desired) -> BTreeSet<IpAddr> {
        // Routes first, so a new peer starts with its table instead of an empty one.
        for peer in &desired.peers {
            let routes = desired.routes(&peer.name);
            if let Err(e) = self
                .bgp
                .set_routes(&peer.name, routes.into_iter().collect())
                .await
            {
                error!(peer = %peer.name, error = %e, "cannot set routes");
            }
        }
        if let Err(e) = self.bgp.set_peers(desired.peers.clone()).await {
            error!(error = %e, "peers refused by the speaker: keeping the previous sessions");
        }
        self.l2.set_plan(&desired.plan.l2);
        let Some(bind_interface) = self.binder.as_ref().map(|b| b.interface().to_string()) else {
            return BTreeSet::new();
        };
        let wanted = self.addresses_to_bind(desired, &bind_interface);
        let Some(binder) = &mut self.binder else {
            return BTreeSet::new();
        };
        if let Err(e) = binder.sync(&wanted).await {
            error!(error = %e, "cannot bind service addresses");
        }
        binder.bound().clone()
    }

    /// The BGP-announced addresses, plus the layer-2 VIPs when binding them cannot make the
    /// kernel answer ARP/NDP for them (the layer-2 owner must be the only responder).
    fn addresses_to_bind(&self, desired: &Desired, bind_interface: &str) -> BTreeSet<IpAddr> {
        let mut wanted = desired.bound_addresses();
        let l2 = desired.plan.l2.eligible_addresses();
        let answered_on: BTreeSet<String> = self
            .l2
            .view()
            .borrow()
            .interfaces
            .values()
            .filter_map(|i| i.as_ref().ok().cloned())
            .chain(
                desired
                    .plan
                    .l2
                    .eligible()
                    .filter_map(|(_, g)| match &g.interfaces {
                        crate::plan::L2Interfaces::Listed(names) => Some(names.iter().cloned()),
                        crate::plan::L2Interfaces::Any => None,
                    })
                    .flatten(),
            )
            .collect();
        let refusal = bind_refusal(bind_interface, &l2, &answered_on);
        match &refusal {
            Some(why) => {
                error!("layer-2 VIPs are not bound: {why}");
                wanted.retain(|a| !l2.contains(a));
            }
            None => wanted.extend(l2),
        }
        self.status.send_modify(|s| s.l2_bind_refused = refusal);
        wanted
    }

    /// Applies each update of `source` until `shutdown` completes or the source ends, then
    /// drains.
    pub async fn run(
        mut self,
        source: impl Stream<Item = SourceUpdate>,
        shutdown: impl Future<Output = ()>,
    ) {
        info!(node = %self.options.node.name, "agent running");
        tokio::pin!(shutdown);
        tokio::pin!(source);
        loop {
            tokio::select! {
                _ = &mut shutdown => break,
                update = source.next() => match update {
                    Some(update) => self.apply(update).await,
                    None => {
                        warn!("the configuration source ended");
                        break;
                    }
                },
            }
        }
        self.stop().await;
    }

    /// Drains and stops: GRACEFUL_SHUTDOWN for `drain_time`, withdraw, Cease, unbind.
    pub async fn stop(self) {
        let Agent {
            options,
            bgp,
            mut binder,
            l2,
            ..
        } = self;
        info!(drain_time = ?options.drain_time, "draining");
        let text = format!("ferrolb speaker on {} stopping", options.node.name);
        tokio::join!(
            bgp.drain(options.drain_time, Some(text)),
            drain_l2(l2, options.drain_time),
        );
        if let Some(binder) = &mut binder
            && let Err(e) = binder.clear().await
        {
            error!(error = %e, "cannot unbind service addresses");
        }
        info!("stopped");
    }

    fn router_id(&mut self, config: &Config) -> Option<Ipv4Addr> {
        if self.router_id.is_none() {
            self.router_id = derive_router_id(config);
            if let Some(id) = self.router_id {
                info!(router_id = %id, "router id chosen");
            }
        }
        self.router_id
    }
}

/// Hands the layer-2 groups this node owns to their next owners, for at most `timeout`.
async fn drain_l2(l2: L2Shell, timeout: Duration) {
    if let Some(report) = l2.drain(timeout).await
        && report.released > 0
    {
        warn!(
            released = report.released,
            "layer 2: some groups had no successor within the drain time"
        );
    }
}

/// Logs what the pure step decided that a user should hear about.
fn log_decisions(desired: &Desired) {
    for m in &desired.moves {
        // Every node computes the same move from the same folder, so they stay consistent;
        // but clients of the Service see a new address. Say how to avoid it.
        warn!(
            service = %m.service, before = ?m.before, after = ?m.after,
            "address changed (a Service inserted before it in the folder, or a pool \
             edited); every node moves it alike. Pin addresses with spec.loadBalancerIP, \
             ferrolb.io/loadBalancerIPs or status.loadBalancer.ingress, and add new \
             Services after the existing ones"
        );
    }
    for (peer, warnings) in &desired.peer_warnings {
        for w in warnings {
            warn!(peer = %peer, "{w}");
        }
    }
    for warning in &desired.plan.l2.warnings {
        warn!("{warning}");
    }
    for (peer, problem) in &desired.peer_problems {
        error!(peer = %peer, "no session: {problem}");
    }
    for (key, service) in &desired.plan.services {
        if service.is_announced() {
            debug!(service = %key, addresses = ?service.addresses, "announced");
        } else {
            let why: Vec<String> = service.reasons.iter().map(ToString::to_string).collect();
            info!(service = %key, addresses = ?service.addresses, reasons = ?why, "not announced");
        }
    }
}

/// The local IPv4 address the kernel would use towards the first IPv4 peer, by name.
fn derive_router_id(config: &Config) -> Option<Ipv4Addr> {
    config.peers.iter().find_map(|p| match p.endpoint {
        PeerEndpoint::Address(IpAddr::V4(peer)) => {
            let probe = UdpSocket::bind("0.0.0.0:0").ok()?;
            probe
                .connect(SocketAddr::new(IpAddr::V4(peer), p.port))
                .ok()?;
            match probe.local_addr().ok()?.ip() {
                IpAddr::V4(local) if !local.is_unspecified() => Some(local),
                _ => None,
            }
        }
        _ => None,
    })
}
