//! The planner: what this node announces, through which protocol, and why any Service is not
//! announced. A pure function of the validated configuration, this node, and the Services with
//! their assigned addresses; no I/O and no clock, so every node that sees the same inputs plans
//! the same announcements.
//!
//! This module owns what is common to every protocol: whether a Service can be announced from
//! this node at all (it has an address from a pool, the node is not excluded, its endpoints
//! allow it). [`bgp`] expands BGPAdvertisements into per-peer routes; it is the only part of the
//! speaker that sees `ferrolb_bgpd`'s route attributes. [`l2`] groups the Services that
//! L2Advertisements announce into VIP groups and says which of them this node may own. A Service
//! may be in both. The rules are MetalLB's; they are spelled out in
//! `docs/coming-from-metallb.md`.
//!
//! It does not choose addresses (the allocator does) nor talk to routers (bgpd does).

pub mod bgp;
pub mod l2;

use std::collections::{BTreeMap, BTreeSet};
use std::fmt;
use std::net::IpAddr;

use ferrolb_model::config::Config;
use ferrolb_model::endpoints::Endpoints;
use ferrolb_model::node::{EXCLUDE_LABEL, Node};
use ferrolb_model::service::ServiceKey;
use ipnet::IpNet;

pub use bgp::{BgpPlan, PeerSkip, SessionPlan};
pub use l2::{L2GroupPlan, L2Interfaces, L2Plan, LocalInterface, NoInterface, choose_interface};

/// A Service with its assigned addresses.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct ServiceInput {
    /// The Service's identity.
    pub key: ServiceKey,
    /// `metadata.labels`, for serviceSelectors.
    pub labels: BTreeMap<String, String>,
    /// The assigned addresses (one per family); empty while the Service waits for one.
    pub addresses: Vec<IpAddr>,
    /// The pool the addresses come from.
    pub pool: Option<String>,
    /// `externalTrafficPolicy: Local`.
    pub local_traffic_policy: bool,
    /// Where the Service's endpoints serve.
    pub endpoints: Endpoints,
    /// Why the Service has no address, when it has none.
    pub unassigned_reason: Option<String>,
}

/// Why a Service (or one advertisement of it) is not announced from this node.
#[derive(Clone, Debug, PartialEq, Eq, PartialOrd, Ord)]
pub enum Reason {
    /// The allocator gave it no address, for this reason.
    NoAddress(String),
    /// The node carries [`EXCLUDE_LABEL`].
    NodeExcluded,
    /// `externalTrafficPolicy: Cluster` and no endpoint serves anywhere.
    NoServingEndpoints,
    /// `externalTrafficPolicy: Local` and no endpoint serves on this node.
    NoLocalEndpoints,
    /// The Service's address is in no IPAddressPool.
    AddressInNoPool,
    /// No BGPAdvertisement and no L2Advertisement applies to the Service's pool.
    NoAdvertisementForPool(String),
    /// The BGPAdvertisement's nodeSelectors do not select this node.
    AdvertisementSkipsNode(String),
    /// The BGPAdvertisement's serviceSelectors do not select the Service.
    AdvertisementSkipsService(String),
    /// The advertisement allows none of the sessions that run on this node.
    AdvertisementHasNoSessionHere {
        /// The BGPAdvertisement.
        advertisement: String,
        /// Its `spec.peers`.
        peers: Vec<String>,
    },
    /// No BGPPeer has a session on this node.
    NoSessionOnNode,
    /// The L2Advertisement's nodeSelectors do not select this node.
    L2AdvertisementSkipsNode(String),
    /// The L2Advertisement's serviceSelectors do not select the Service.
    L2AdvertisementSkipsService(String),
    /// The BGPPeer is selected for this node but its session cannot run (the peer's status
    /// says why).
    SessionCannotRun {
        /// The BGPPeer.
        peer: String,
    },
}

impl fmt::Display for Reason {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Reason::NoAddress(why) => write!(f, "no address assigned: {why}"),
            Reason::NodeExcluded => write!(f, "this node is excluded by the label {EXCLUDE_LABEL}"),
            Reason::NoServingEndpoints => f.write_str("the Service has no serving endpoint"),
            Reason::NoLocalEndpoints => {
                f.write_str("externalTrafficPolicy is Local and this node has no serving endpoint")
            }
            Reason::AddressInNoPool => f.write_str("the address is in no IPAddressPool"),
            Reason::NoAdvertisementForPool(pool) => {
                write!(
                    f,
                    "no BGPAdvertisement or L2Advertisement applies to IPAddressPool/{pool}"
                )
            }
            Reason::AdvertisementSkipsNode(adv) => {
                write!(
                    f,
                    "BGPAdvertisement/{adv}: nodeSelectors do not select this node"
                )
            }
            Reason::AdvertisementSkipsService(adv) => {
                write!(
                    f,
                    "BGPAdvertisement/{adv}: serviceSelectors do not select the Service"
                )
            }
            Reason::AdvertisementHasNoSessionHere {
                advertisement,
                peers,
            } => write!(
                f,
                "BGPAdvertisement/{advertisement}: its peers ({}) have no session on this node",
                peers.join(", ")
            ),
            Reason::NoSessionOnNode => f.write_str("no BGPPeer has a session on this node"),
            Reason::L2AdvertisementSkipsNode(adv) => {
                write!(
                    f,
                    "L2Advertisement/{adv}: nodeSelectors do not select this node"
                )
            }
            Reason::L2AdvertisementSkipsService(adv) => {
                write!(
                    f,
                    "L2Advertisement/{adv}: serviceSelectors do not select the Service"
                )
            }
            Reason::SessionCannotRun { peer } => {
                write!(
                    f,
                    "BGPPeer/{peer} has no session on this node (see its status)"
                )
            }
        }
    }
}

/// One route of one Service to one peer.
#[derive(Clone, Debug, PartialEq, Eq, PartialOrd, Ord)]
pub struct Announcement {
    /// The BGPPeer.
    pub peer: String,
    /// The prefix (the address masked to the aggregation length).
    pub prefix: IpNet,
    /// The BGPAdvertisement it comes from.
    pub advertisement: String,
}

/// What happens to one Service on this node.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct ServicePlan {
    /// Its addresses.
    pub addresses: Vec<IpAddr>,
    /// Their pool.
    pub pool: Option<String>,
    /// Its routes, per peer.
    pub announcements: Vec<Announcement>,
    /// The L2Advertisements that let this node answer ARP/NDP for it (empty: not by layer 2).
    pub l2_advertisements: Vec<String>,
    /// The VIP group (its key) this node may own for it, when announced by layer 2.
    pub l2_group: Option<IpAddr>,
    /// Why it is not announced at all, or why some advertisements of it do not apply here.
    pub reasons: Vec<Reason>,
}

impl ServicePlan {
    /// Whether this node announces the Service to anyone, by BGP or layer 2 (as a candidate
    /// owner of its VIP group).
    pub fn is_announced(&self) -> bool {
        !self.announcements.is_empty() || self.l2_group.is_some()
    }

    /// Whether this node announces the Service to a BGP peer.
    pub fn is_announced_by_bgp(&self) -> bool {
        !self.announcements.is_empty()
    }
}

/// Everything this node should announce.
#[derive(Clone, Debug, Default, PartialEq)]
pub struct Plan {
    /// Per Service: its announcements, or why not.
    pub services: BTreeMap<ServiceKey, ServicePlan>,
    /// The BGP sessions of this node and their routes.
    pub bgp: BgpPlan,
    /// The VIP groups of layer 2 and whether this node may own them.
    pub l2: L2Plan,
}

impl Plan {
    /// Takes the sessions of `peers` out of the plan (their setup failed): their routes go, and
    /// each Service that was to be announced to one says so.
    pub fn without_sessions(&mut self, peers: &BTreeSet<String>) {
        if peers.is_empty() {
            return;
        }
        self.bgp.sessions.retain(|name, _| !peers.contains(name));
        for service in self.services.values_mut() {
            let mut lost: Vec<String> = Vec::new();
            service.announcements.retain(|a| {
                let keep = !peers.contains(&a.peer);
                if !keep && !lost.contains(&a.peer) {
                    lost.push(a.peer.clone());
                }
                keep
            });
            service.reasons.extend(
                lost.into_iter()
                    .map(|peer| Reason::SessionCannotRun { peer }),
            );
        }
    }

    /// The addresses announced to at least one BGP peer.
    pub fn announced_addresses(&self) -> BTreeSet<IpAddr> {
        self.services
            .values()
            .filter(|s| s.is_announced_by_bgp())
            .flat_map(|s| s.addresses.iter().copied())
            .collect()
    }
}

/// Plans this node's announcements.
pub fn plan_announcements(config: &Config, node: &Node, services: &[ServiceInput]) -> Plan {
    let mut bgp = bgp::Planner::new(config, node);
    let mut l2 = l2::Planner::new(config, node);
    let mut ordered: Vec<&ServiceInput> = services.iter().collect();
    ordered.sort_by(|a, b| a.key.cmp(&b.key));
    let mut plan = Plan::default();
    for service in ordered {
        let mut out = ServicePlan {
            addresses: service.addresses.clone(),
            pool: service.pool.clone(),
            ..ServicePlan::default()
        };
        let eligible = eligible_pool(node, service);
        if let Err(reason) = &eligible {
            out.reasons.push(reason.clone());
        }
        // Layer-2 groups are formed from every addressed Service, eligible here or not, so
        // that every node forms the same groups.
        if let (false, Some(pool)) = (service.addresses.is_empty(), service.pool.as_deref()) {
            let by_bgp = bgp.applies_to_pool(pool);
            let by_l2 = l2.applies_to_pool(pool);
            if eligible.is_ok() && !by_bgp && !by_l2 {
                out.reasons
                    .push(Reason::NoAdvertisementForPool(pool.to_string()));
            }
            if eligible.is_ok() && by_bgp {
                bgp.plan_service(service, pool, &mut out);
            }
            if by_l2 {
                l2.plan_service(service, pool, eligible.is_ok(), &mut out);
            }
        }
        plan.services.insert(service.key.clone(), out);
    }
    plan.bgp = bgp.finish();
    plan.l2 = l2.finish(&mut plan.services);
    plan
}

/// Whether the Service can be announced from this node by any protocol, and from which pool.
fn eligible_pool<'s>(node: &Node, service: &'s ServiceInput) -> Result<&'s str, Reason> {
    if service.addresses.is_empty() {
        let why = service
            .unassigned_reason
            .clone()
            .unwrap_or_else(|| "pending".to_string());
        return Err(Reason::NoAddress(why));
    }
    if node.excluded() {
        return Err(Reason::NodeExcluded);
    }
    if let Endpoints::Known { serving_nodes } = &service.endpoints {
        if serving_nodes.is_empty() {
            return Err(Reason::NoServingEndpoints);
        }
        if service.local_traffic_policy && !serving_nodes.contains(&node.name) {
            return Err(Reason::NoLocalEndpoints);
        }
    }
    service.pool.as_deref().ok_or(Reason::AddressInNoPool)
}

#[cfg(test)]
mod tests;
