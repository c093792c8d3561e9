//! BGP planning: which sessions run on this node (a BGPPeer's `nodeSelectors`), and which
//! prefixes each of them carries with which attributes, from the BGPAdvertisements.
//!
//! The rules, after MetalLB's:
//! - a Service is announced through every BGPAdvertisement that applies to its pool (by name or
//!   pool selector; an advertisement naming no pool applies to all), selects this node
//!   (`nodeSelectors`) and the Service (`serviceSelectors`), to every session on this node the
//!   advertisement's `peers` allow (all when empty);
//! - the prefix is the address masked to the advertisement's aggregation length;
//! - the same prefix for the same peer from several Services or advertisements is announced
//!   once: communities and large communities are unioned, the first LOCAL_PREF wins
//!   (advertisements in name order, Services in namespace/name order).
//!
//! This is the only module of the speaker that knows `ferrolb_bgpd`'s route attributes.

use std::collections::BTreeMap;
use std::fmt;
use std::net::IpAddr;

use ferrolb_bgpd::rib_out::RouteAttributes;
use ferrolb_bgpd::wire::{Community, LargeCommunity};
use ferrolb_model::CommunityValue;
use ferrolb_model::address::IpFamily;
use ferrolb_model::config::{BgpAdvertisement, Config, Peer};
use ferrolb_model::node::Node;
use ipnet::IpNet;

use super::{Announcement, Reason, ServiceInput, ServicePlan};

/// Why a BGPPeer has no session on this node.
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord)]
pub enum PeerSkip {
    /// Its `nodeSelectors` do not select this node.
    NodeNotSelected,
}

impl fmt::Display for PeerSkip {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            PeerSkip::NodeNotSelected => f.write_str("nodeSelectors do not select this node"),
        }
    }
}

/// A session this node runs, with the routes it should carry.
#[derive(Clone, Debug, PartialEq)]
pub struct SessionPlan {
    /// The BGPPeer.
    pub peer: Peer,
    /// Its routes.
    pub routes: BTreeMap<IpNet, RouteAttributes>,
}

/// The BGP side of a plan.
#[derive(Clone, Debug, Default, PartialEq)]
pub struct BgpPlan {
    /// Sessions on this node, by BGPPeer name.
    pub sessions: BTreeMap<String, SessionPlan>,
    /// BGPPeers with no session on this node, and why.
    pub skipped_peers: BTreeMap<String, PeerSkip>,
}

/// Builds a [`BgpPlan`] one Service at a time.
pub(super) struct Planner<'c> {
    node: &'c Node,
    advertisements: Vec<&'c BgpAdvertisement>,
    plan: BgpPlan,
}

impl<'c> Planner<'c> {
    pub(super) fn new(config: &'c Config, node: &'c Node) -> Planner<'c> {
        let mut plan = BgpPlan::default();
        for peer in &config.peers {
            if peer.node_selectors.matches(&node.labels) {
                plan.sessions.insert(
                    peer.name.clone(),
                    SessionPlan {
                        peer: peer.clone(),
                        routes: BTreeMap::new(),
                    },
                );
            } else {
                plan.skipped_peers
                    .insert(peer.name.clone(), PeerSkip::NodeNotSelected);
            }
        }
        let mut advertisements: Vec<&BgpAdvertisement> = config.bgp_advertisements.iter().collect();
        advertisements.sort_by(|a, b| a.name.cmp(&b.name));
        Planner {
            node,
            advertisements,
            plan,
        }
    }

    /// Whether any BGPAdvertisement applies to `pool`.
    pub(super) fn applies_to_pool(&self, pool: &str) -> bool {
        self.advertisements.iter().any(|a| a.applies_to_pool(pool))
    }

    /// Adds the routes of an eligible Service (from `pool`) and records them, or why not, in
    /// `out`.
    pub(super) fn plan_service(
        &mut self,
        service: &ServiceInput,
        pool: &str,
        out: &mut ServicePlan,
    ) {
        let applicable: Vec<&BgpAdvertisement> = self
            .advertisements
            .iter()
            .copied()
            .filter(|a| a.applies_to_pool(pool))
            .collect();
        // The caller reports a pool no advertisement of any protocol applies to.
        if applicable.is_empty() {
            return;
        }
        if self.plan.sessions.is_empty() {
            out.reasons.push(Reason::NoSessionOnNode);
            return;
        }
        for adv in applicable {
            if !adv.node_selectors.matches(&self.node.labels) {
                out.reasons
                    .push(Reason::AdvertisementSkipsNode(adv.name.clone()));
                continue;
            }
            if !adv.service_selectors.matches(&service.labels) {
                out.reasons
                    .push(Reason::AdvertisementSkipsService(adv.name.clone()));
                continue;
            }
            let targets: Vec<String> = self
                .plan
                .sessions
                .keys()
                .filter(|peer| adv.applies_to_peer(peer))
                .cloned()
                .collect();
            if targets.is_empty() {
                out.reasons.push(Reason::AdvertisementHasNoSessionHere {
                    advertisement: adv.name.clone(),
                    peers: adv.peers.clone(),
                });
                continue;
            }
            let attrs = route_attributes(adv);
            for address in &service.addresses {
                let prefix = aggregate(*address, adv);
                for peer in &targets {
                    if let Some(session) = self.plan.sessions.get_mut(peer) {
                        merge(&mut session.routes, prefix, &attrs);
                    }
                    out.announcements.push(Announcement {
                        peer: peer.clone(),
                        prefix,
                        advertisement: adv.name.clone(),
                    });
                }
            }
        }
        out.announcements.sort();
        out.announcements.dedup();
    }

    pub(super) fn finish(self) -> BgpPlan {
        self.plan
    }
}

/// The address masked to the advertisement's aggregation length for its family.
fn aggregate(address: IpAddr, adv: &BgpAdvertisement) -> IpNet {
    let (family, max) = match address {
        IpAddr::V4(_) => (IpFamily::V4, 32),
        IpAddr::V6(_) => (IpFamily::V6, 128),
    };
    let len = adv.aggregation_length(family).min(max);
    // `len` is at most the family's width, so this cannot fail; fall back to the host route.
    IpNet::new(address, len)
        .map(|n| n.trunc())
        .unwrap_or_else(|_| IpNet::from(address))
}

fn route_attributes(adv: &BgpAdvertisement) -> RouteAttributes {
    let communities = adv.communities.iter().filter_map(|c| match c {
        CommunityValue::Standard(s) => Some(Community(s.0)),
        CommunityValue::Large(_) => None,
    });
    let large = adv.communities.iter().filter_map(|c| match c {
        CommunityValue::Large(l) => Some(LargeCommunity {
            global_admin: l.global,
            local_data1: l.local1,
            local_data2: l.local2,
        }),
        CommunityValue::Standard(_) => None,
    });
    RouteAttributes::new(adv.local_pref, None, communities, large)
}

/// One prefix, several sources: communities are unioned, the first LOCAL_PREF stays.
fn merge(routes: &mut BTreeMap<IpNet, RouteAttributes>, prefix: IpNet, attrs: &RouteAttributes) {
    match routes.get_mut(&prefix) {
        None => {
            routes.insert(prefix, attrs.clone());
        }
        Some(existing) => {
            *existing = RouteAttributes::new(
                existing.local_pref.or(attrs.local_pref),
                existing.med.or(attrs.med),
                existing
                    .communities
                    .iter()
                    .chain(&attrs.communities)
                    .copied(),
                existing
                    .large_communities
                    .iter()
                    .chain(&attrs.large_communities)
                    .copied(),
            );
        }
    }
}
