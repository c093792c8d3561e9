//! The node agent: configuration folder in, announcements out.
//!
//! Each good snapshot of the folder goes through the allocator (addresses), the planner (what
//! this node announces where), and then to the BGP speaker (peers and per-peer routes) and,
//! with `--bind-vips`, to the host's interface. A bad snapshot changes nothing: the last good
//! one stays applied and the problems are logged and kept in [`AgentStatus`]. Stopping drains
//! first (RFC 8326 graceful shutdown, then withdraw, then Cease).

use std::collections::{BTreeMap, BTreeSet};
use std::net::{IpAddr, Ipv4Addr, SocketAddr, UdpSocket};
use std::path::PathBuf;
use std::time::{Duration, Instant};

use ferrolb_allocator::PoolStats;
use ferrolb_bgpd::{PeerConfig, Speaker, SpeakerConfig, SpeakerError, SpeakerStatus};
use ferrolb_model::config::{Config, PeerEndpoint};
use tokio::sync::watch;
use tracing::{debug, error, info, warn};

use crate::allocation::Allocations;
use crate::peers::session_setup;
use crate::planner::{Node, Plan, plan_announcements};
use crate::source::{Snapshot, read_config_dir, watch as watch_folder};
use crate::vip_binding::{VipBindError, VipBinder};

/// How the agent runs.
#[derive(Clone, Debug)]
pub struct AgentOptions {
    pub config_dir: PathBuf,
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
    /// Handle only Services of this `loadBalancerClass` (None: Services without a class).
    pub load_balancer_class: Option<String>,
    /// Quiet time after a change in the folder before it is read.
    pub watch_debounce: Duration,
}

/// What the agent is doing, for logs, status APIs and tests.
#[derive(Clone, Debug, Default, PartialEq)]
pub struct AgentStatus {
    /// Good snapshots applied so far.
    pub generation: u64,
    /// Problems of the latest read, if it was refused (the previous snapshot stays applied).
    pub rejected: Vec<String>,
    pub router_id: Option<Ipv4Addr>,
    pub plan: Plan,
    /// BGPPeers selected for this node that have no session, and why.
    pub peer_errors: BTreeMap<String, String>,
    pub peer_warnings: BTreeMap<String, Vec<String>>,
    pub pools: Vec<PoolStats>,
    /// Addresses on the `--bind-vips` interface.
    pub bound: BTreeSet<IpAddr>,
    /// How long the last snapshot took from read to the speaker having the new routes.
    pub last_apply: Option<Duration>,
}

/// The outcome of one read of the configuration folder, for [`Agent::on_read`] observers
/// (metrics: event-to-UPDATE latency and read counts, lossless unlike the status channel).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum ReadOutcome {
    /// Applied: `took` from reading the folder to the speaker having the new routes.
    Applied { took: Duration },
    /// Refused with this many problems; the previous snapshot stays applied.
    Refused { problems: usize },
}

/// Called after every read of the configuration folder.
pub type ReadObserver = Box<dyn Fn(ReadOutcome) + Send + Sync>;

#[derive(Debug, thiserror::Error)]
pub enum AgentError {
    #[error(transparent)]
    Speaker(#[from] SpeakerError),
    #[error("--bind-vips: {0}")]
    Bind(#[from] VipBindError),
    #[error("cannot watch {dir}: {source}")]
    Watch { dir: PathBuf, source: notify::Error },
}

pub struct Agent {
    options: AgentOptions,
    speaker: Speaker,
    binder: Option<VipBinder>,
    allocations: Allocations,
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
        let speaker = Speaker::start(SpeakerConfig { listen }).await?;
        let binder = match &options.bind_vips {
            Some(interface) => Some(VipBinder::new(interface).await?),
            None => None,
        };
        let (status, _) = watch::channel(AgentStatus::default());
        Ok(Agent {
            router_id: options.router_id,
            options,
            speaker,
            binder,
            allocations: Allocations::new(),
            status,
            on_read: None,
        })
    }

    pub fn status(&self) -> watch::Receiver<AgentStatus> {
        self.status.subscribe()
    }

    pub fn speaker_status(&self) -> watch::Receiver<SpeakerStatus> {
        self.speaker.status()
    }

    /// Calls `observer` after every read of the folder (one observer; a new one replaces it).
    pub fn on_read(&mut self, observer: ReadObserver) {
        self.on_read = Some(observer);
    }

    /// Reads the folder and applies it if it is good.
    pub async fn reload(&mut self) {
        let started = Instant::now();
        match read_config_dir(&self.options.config_dir) {
            Ok(snapshot) => {
                let took = self.apply_since(&snapshot, started).await;
                if let Some(observe) = &self.on_read {
                    observe(ReadOutcome::Applied { took });
                }
                debug!(took = ?took, "configuration applied");
            }
            Err(problems) => {
                for p in &problems {
                    error!(dir = %self.options.config_dir.display(), "{p}");
                }
                warn!(
                    problems = problems.len(),
                    "configuration refused: the last good configuration stays applied"
                );
                self.status.send_modify(|s| {
                    s.rejected = problems.iter().map(ToString::to_string).collect();
                });
                if let Some(observe) = &self.on_read {
                    observe(ReadOutcome::Refused {
                        problems: problems.len(),
                    });
                }
            }
        }
    }

    /// Applies one good snapshot.
    pub async fn apply(&mut self, snapshot: &Snapshot) {
        self.apply_since(snapshot, Instant::now()).await;
    }

    /// Applies one good snapshot read at `started`; returns how long it took from then until
    /// the speaker had the new routes (published with the new generation, in one update).
    async fn apply_since(&mut self, snapshot: &Snapshot, started: Instant) -> Duration {
        for ignored in &snapshot.ignored {
            debug!("ignored {ignored}");
        }
        let (services, moves) = self.allocations.update(
            &snapshot.config,
            &snapshot.services,
            &snapshot.endpoints,
            self.options.load_balancer_class.as_deref(),
        );
        for m in &moves {
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
        let plan = plan_announcements(&snapshot.config, &self.options.node, &services);
        let router_id = self.router_id(&snapshot.config);

        let mut peers: Vec<PeerConfig> = Vec::new();
        let mut peer_errors = BTreeMap::new();
        let mut peer_warnings = BTreeMap::new();
        for (name, session) in &plan.sessions {
            let Some(router_id) = router_id else {
                peer_errors.insert(
                    name.clone(),
                    "no router id: the node has no IPv4 address; set spec.routerID or --router-id"
                        .to_string(),
                );
                continue;
            };
            match session_setup(&session.peer, router_id) {
                Ok(setup) => {
                    for w in &setup.warnings {
                        warn!(peer = %name, "{w}");
                    }
                    if !setup.warnings.is_empty() {
                        peer_warnings.insert(name.clone(), setup.warnings);
                    }
                    peers.push(setup.config);
                }
                Err(why) => {
                    error!(peer = %name, "no session: {why}");
                    peer_errors.insert(name.clone(), why);
                }
            }
        }
        // Routes first, so a new peer starts with its table instead of an empty one.
        for peer in &peers {
            let routes = plan
                .sessions
                .get(&peer.name)
                .map(|s| s.routes.clone())
                .unwrap_or_default();
            if let Err(e) = self
                .speaker
                .set_routes(&peer.name, routes.into_iter().collect())
                .await
            {
                error!(peer = %peer.name, error = %e, "cannot set routes");
            }
        }
        if let Err(e) = self.speaker.set_peers(peers).await {
            error!(error = %e, "peers refused by the speaker: keeping the previous sessions");
        }

        let mut bound = BTreeSet::new();
        if let Some(binder) = &mut self.binder {
            if let Err(e) = binder.sync(&plan.announced_addresses()).await {
                error!(error = %e, "cannot bind service addresses");
            }
            bound = binder.bound().clone();
        }
        for (key, service) in &plan.services {
            if service.is_announced() {
                debug!(service = %key, addresses = ?service.addresses, "announced");
            } else {
                let why: Vec<String> = service.reasons.iter().map(ToString::to_string).collect();
                info!(service = %key, addresses = ?service.addresses, reasons = ?why, "not announced");
            }
        }
        let pools = self.allocations.stats();
        let took = started.elapsed();
        self.status.send_modify(|s| {
            s.generation += 1;
            s.last_apply = Some(took);
            s.rejected.clear();
            s.router_id = router_id;
            s.plan = plan;
            s.peer_errors = peer_errors;
            s.peer_warnings = peer_warnings;
            s.pools = pools;
            s.bound = bound;
        });
        took
    }

    /// Watches the folder and applies each change until `shutdown` completes, then drains.
    pub async fn run(mut self, shutdown: impl Future<Output = ()>) -> Result<(), AgentError> {
        let dir = self.options.config_dir.clone();
        let (_watch, mut changes) =
            watch_folder(&dir, self.options.watch_debounce).map_err(|source| {
                AgentError::Watch {
                    dir: dir.clone(),
                    source,
                }
            })?;
        info!(dir = %dir.display(), node = %self.options.node.name, "watching configuration");
        self.reload().await;
        tokio::pin!(shutdown);
        loop {
            tokio::select! {
                _ = &mut shutdown => break,
                change = changes.recv() => match change {
                    Some(()) => self.reload().await,
                    None => break,
                },
            }
        }
        self.stop().await;
        Ok(())
    }

    /// Drains and stops: GRACEFUL_SHUTDOWN for `drain_time`, withdraw, Cease, unbind.
    pub async fn stop(self) {
        let Agent {
            options,
            speaker,
            mut binder,
            ..
        } = self;
        info!(drain_time = ?options.drain_time, "draining");
        let text = format!("ferrolb speaker on {} stopping", options.node.name);
        speaker.drain(options.drain_time, Some(text)).await;
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
