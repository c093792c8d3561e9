//! The pure step of the agent: from a snapshot and this node to what the node should do.
//!
//! [`desired`] runs the addressing policy, the planner and the session setup; it does no I/O
//! and reads no clock, so the golden plan tests (`tests/plans/`) drive it with nothing but
//! YAML. Applying the result (the BGP speaker, the VIP bindings, the status) is the agent's.

use std::collections::{BTreeMap, BTreeSet};
use std::net::{IpAddr, Ipv4Addr};

use ferrolb_allocator::PoolStats;
use ferrolb_bgpd::PeerConfig;
use ferrolb_bgpd::rib_out::RouteAttributes;
use ferrolb_model::node::Node;
use ipnet::IpNet;

use crate::addressing::{AddressMove, Addressing, ClassFilter};
use crate::peers::{PeerProblem, PeerWarning, session_setup};
use crate::plan::{Plan, plan_announcements};
use crate::source::Snapshot;

/// What this node should do.
#[derive(Clone, Debug, Default, PartialEq)]
pub struct Desired {
    /// The plan: per Service, per protocol, with reasons.
    pub plan: Plan,
    /// The BGP sessions to run (their routes are in `plan.bgp.sessions`).
    pub peers: Vec<PeerConfig>,
    /// BGPPeers selected for this node that have no session, and why.
    pub peer_problems: BTreeMap<String, PeerProblem>,
    /// What the user should know about sessions that do run.
    pub peer_warnings: BTreeMap<String, Vec<PeerWarning>>,
    /// Per-pool use, when this node allocates.
    pub pools: Vec<PoolStats>,
    /// Services whose address changed since the previous snapshot.
    pub moves: Vec<AddressMove>,
}

impl Desired {
    /// The routes `peer` should carry.
    pub fn routes(&self, peer: &str) -> BTreeMap<IpNet, RouteAttributes> {
        self.plan
            .bgp
            .sessions
            .get(peer)
            .map(|s| s.routes.clone())
            .unwrap_or_default()
    }

    /// The addresses to put on the host with `--bind-vips`.
    pub fn bound_addresses(&self) -> BTreeSet<IpAddr> {
        self.plan.announced_addresses()
    }
}

/// Decides what `node` does with `snapshot`. The node's labels come from the snapshot when it
/// knows the node (a cluster's Node object), else from `node` itself (`--node-labels`).
/// `router_id` is the node's BGP identifier, when it has one.
pub fn desired(
    snapshot: &Snapshot,
    node: &Node,
    router_id: Option<Ipv4Addr>,
    class: &ClassFilter,
    addressing: &mut Addressing,
) -> Desired {
    let node = snapshot.nodes.get(&node.name).unwrap_or(node);
    let addressed = addressing.address(
        &snapshot.config,
        &snapshot.services,
        &snapshot.endpoints,
        class,
    );
    let mut plan = plan_announcements(&snapshot.config, node, &addressed.services);

    let mut peers = Vec::new();
    let mut peer_problems = BTreeMap::new();
    let mut peer_warnings = BTreeMap::new();
    for (name, session) in &plan.bgp.sessions {
        let Some(router_id) = router_id else {
            peer_problems.insert(name.clone(), PeerProblem::NoRouterId);
            continue;
        };
        match session_setup(&session.peer, router_id) {
            Ok(setup) => {
                if !setup.warnings.is_empty() {
                    peer_warnings.insert(name.clone(), setup.warnings);
                }
                peers.push(setup.config);
            }
            Err(problem) => {
                peer_problems.insert(name.clone(), problem);
            }
        }
    }
    plan.without_sessions(&peer_problems.keys().cloned().collect());
    Desired {
        plan,
        peers,
        peer_problems,
        peer_warnings,
        pools: addressed.pools,
        moves: addressed.moves,
    }
}
