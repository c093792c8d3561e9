//! Layer-2 planning: which Services this node may answer ARP/NDP for, grouped into the VIP
//! groups the layer-2 announcer elects owners for, and on which interfaces.
//!
//! The rules, after MetalLB's:
//! - a Service is announced through every L2Advertisement that applies to its pool (by name or
//!   pool selector; an advertisement naming no pool applies to all) and selects the Service
//!   (`serviceSelectors`); this node may answer for it when one of those advertisements also
//!   selects this node (`nodeSelectors`) and the common rules allow it (an address, the node not
//!   excluded, endpoints);
//! - `interfaces` limits where the node answers; an advertisement without interfaces answers on
//!   the interface whose connected subnet holds the address ([`choose_interface`]);
//! - a Service may be in BGP, layer 2 or both.
//!
//! Groups are formed from cluster-wide facts only (addresses, pools, Service selectors): every
//! node reading the same folder forms the same groups with the same keys, which the election
//! needs. Addresses that are shared (Services with `allow-shared-ip`, a dual-stack Service's two
//! families) are one group: they can only move together. Which node may own a group is node
//! specific (node selectors, endpoints) and is this node's `eligible` verdict.
//!
//! It does not choose the owner (the announcer's election does) nor read interfaces (the agent
//! does, through netlink, and hands the facts to [`choose_interface`]).

use std::collections::{BTreeMap, BTreeSet};
use std::fmt;
use std::net::IpAddr;

use ferrolb_model::config::{Config, L2Advertisement};
use ferrolb_model::node::Node;
use ferrolb_model::service::ServiceKey;
use ipnet::IpNet;

use super::{Reason, ServiceInput, ServicePlan};

/// Where a group may be answered on this node.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum L2Interfaces {
    /// An advertisement lists no interface: the interface whose subnet holds the address.
    Any,
    /// Only these interfaces (the union of the advertisements' lists).
    Listed(BTreeSet<String>),
}

impl fmt::Display for L2Interfaces {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            L2Interfaces::Any => f.write_str("any"),
            L2Interfaces::Listed(names) => {
                f.write_str(&names.iter().cloned().collect::<Vec<_>>().join(","))
            }
        }
    }
}

/// One VIP group: addresses that move together.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct L2GroupPlan {
    /// The group's addresses; the key is the lowest.
    pub addresses: BTreeSet<IpAddr>,
    /// Every Service with an address in the group.
    pub services: BTreeSet<ServiceKey>,
    /// The L2Advertisements that announce the group's Services.
    pub advertisements: BTreeSet<String>,
    /// Whether this node may own the group (one of its Services is announced from here).
    pub eligible: bool,
    /// Where this node answers, when eligible.
    pub interfaces: L2Interfaces,
}

/// The layer-2 side of a plan.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct L2Plan {
    /// Every VIP group of the cluster, by key (its lowest address), with this node's verdict.
    pub groups: BTreeMap<IpAddr, L2GroupPlan>,
    /// What the user should know about the L2Advertisements (fields not honoured).
    pub warnings: Vec<String>,
}

impl L2Plan {
    /// Whether this node takes part in layer 2 at all (it may own some group).
    pub fn is_used(&self) -> bool {
        self.groups.values().any(|g| g.eligible)
    }

    /// The groups this node may own.
    pub fn eligible(&self) -> impl Iterator<Item = (&IpAddr, &L2GroupPlan)> {
        self.groups.iter().filter(|(_, g)| g.eligible)
    }

    /// The addresses of the groups this node may own.
    pub fn eligible_addresses(&self) -> BTreeSet<IpAddr> {
        self.eligible()
            .flat_map(|(_, g)| g.addresses.iter().copied())
            .collect()
    }
}

/// One Service's layer-2 verdict on this node, before grouping.
struct Member {
    key: ServiceKey,
    addresses: Vec<IpAddr>,
    advertisements: Vec<String>,
    /// `Some` when this node may answer for the Service.
    interfaces: Option<L2Interfaces>,
}

/// Builds an [`L2Plan`] one Service at a time.
pub(super) struct Planner<'c> {
    node: &'c Node,
    advertisements: Vec<&'c L2Advertisement>,
    members: Vec<Member>,
}

impl<'c> Planner<'c> {
    pub(super) fn new(config: &'c Config, node: &'c Node) -> Planner<'c> {
        let mut advertisements: Vec<&L2Advertisement> = config.l2_advertisements.iter().collect();
        advertisements.sort_by(|a, b| a.name.cmp(&b.name));
        Planner {
            node,
            advertisements,
            members: Vec::new(),
        }
    }

    /// Whether any L2Advertisement applies to `pool`.
    pub(super) fn applies_to_pool(&self, pool: &str) -> bool {
        self.advertisements.iter().any(|a| a.applies_to_pool(pool))
    }

    /// Records a Service with addresses from `pool`. `eligible` is the common verdict for this
    /// node (`Ok` when nothing but the advertisements can stop it); reasons go to `out`.
    pub(super) fn plan_service(
        &mut self,
        service: &ServiceInput,
        pool: &str,
        eligible: bool,
        out: &mut ServicePlan,
    ) {
        let mut advertisements = Vec::new();
        let mut interfaces: Option<L2Interfaces> = None;
        for adv in self
            .advertisements
            .iter()
            .filter(|a| a.applies_to_pool(pool))
        {
            if !adv.service_selectors.matches(&service.labels) {
                if eligible {
                    out.reasons
                        .push(Reason::L2AdvertisementSkipsService(adv.name.clone()));
                }
                continue;
            }
            advertisements.push(adv.name.clone());
            if !eligible {
                continue;
            }
            if !adv.node_selectors.matches(&self.node.labels) {
                out.reasons
                    .push(Reason::L2AdvertisementSkipsNode(adv.name.clone()));
                continue;
            }
            interfaces = Some(match (interfaces, adv.interfaces.is_empty()) {
                (_, true) | (Some(L2Interfaces::Any), _) => L2Interfaces::Any,
                (Some(L2Interfaces::Listed(mut names)), false) => {
                    names.extend(adv.interfaces.iter().cloned());
                    L2Interfaces::Listed(names)
                }
                (None, false) => L2Interfaces::Listed(adv.interfaces.iter().cloned().collect()),
            });
        }
        if advertisements.is_empty() {
            return;
        }
        if interfaces.is_some() {
            out.l2_advertisements = advertisements.clone();
        }
        self.members.push(Member {
            key: service.key.clone(),
            addresses: service.addresses.clone(),
            advertisements,
            interfaces,
        });
    }

    /// Groups the recorded Services by shared addresses; sets each announced Service's group.
    pub(super) fn finish(self, services: &mut BTreeMap<ServiceKey, ServicePlan>) -> L2Plan {
        let mut groups: Vec<L2GroupPlan> = Vec::new();
        for member in self.members {
            let mut group = L2GroupPlan {
                addresses: member.addresses.iter().copied().collect(),
                services: BTreeSet::from([member.key]),
                advertisements: member.advertisements.into_iter().collect(),
                eligible: member.interfaces.is_some(),
                interfaces: member
                    .interfaces
                    .unwrap_or(L2Interfaces::Listed(BTreeSet::new())),
            };
            // Merge every existing group sharing an address with this one (a shared address
            // can join groups formed earlier).
            let (overlapping, rest): (Vec<L2GroupPlan>, Vec<L2GroupPlan>) = groups
                .into_iter()
                .partition(|g| !g.addresses.is_disjoint(&group.addresses));
            groups = rest;
            for other in overlapping {
                group = merge(group, other);
            }
            groups.push(group);
        }
        let mut plan = L2Plan::default();
        for group in groups {
            let Some(&key) = group.addresses.first() else {
                continue;
            };
            if group.eligible {
                for service in &group.services {
                    if let Some(s) = services.get_mut(service)
                        && !s.l2_advertisements.is_empty()
                    {
                        s.l2_group = Some(key);
                    }
                }
            }
            plan.groups.insert(key, group);
        }
        for adv in &self.advertisements {
            if !adv.preferred_nodes.is_empty() {
                plan.warnings.push(format!(
                    "L2Advertisement/{}: spec.preferredNodeSelectors is not supported yet; the \
                     owner is elected among all selected nodes (sticky, balanced)",
                    adv.name
                ));
            }
        }
        plan
    }
}

fn merge(a: L2GroupPlan, b: L2GroupPlan) -> L2GroupPlan {
    let interfaces = match (a.eligible, b.eligible) {
        (true, false) => a.interfaces,
        (false, true) => b.interfaces,
        (false, false) => L2Interfaces::Listed(BTreeSet::new()),
        (true, true) => match (a.interfaces, b.interfaces) {
            (L2Interfaces::Listed(mut x), L2Interfaces::Listed(y)) => {
                x.extend(y);
                L2Interfaces::Listed(x)
            }
            _ => L2Interfaces::Any,
        },
    };
    L2GroupPlan {
        addresses: a.addresses.union(&b.addresses).copied().collect(),
        services: a.services.union(&b.services).cloned().collect(),
        advertisements: a.advertisements.union(&b.advertisements).cloned().collect(),
        eligible: a.eligible || b.eligible,
        interfaces,
    }
}

/// What the agent knows about one local interface, for [`choose_interface`].
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct LocalInterface {
    /// Its name.
    pub name: String,
    /// Its connected subnets.
    pub subnets: Vec<IpNet>,
}

/// Why a group this node may own has no interface to answer on here.
#[derive(Clone, Debug, PartialEq, Eq, PartialOrd, Ord)]
pub enum NoInterface {
    /// The advertisements list interfaces, and none of them exists on this node.
    ListedMissing {
        /// The listed interfaces.
        listed: Vec<String>,
    },
    /// No listed interface, and no interface has a connected subnet holding the address.
    NoSubnet {
        /// The group's key.
        address: IpAddr,
    },
}

impl fmt::Display for NoInterface {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            NoInterface::ListedMissing { listed } => write!(
                f,
                "none of the L2Advertisement's interfaces ({}) exists on this node",
                listed.join(", ")
            ),
            NoInterface::NoSubnet { address } => write!(
                f,
                "no interface of this node has a connected subnet holding {address}; list the \
                 interface in the L2Advertisement's spec.interfaces"
            ),
        }
    }
}

/// The interface a group is answered on: among the allowed ones, the first (by name) whose
/// connected subnet holds the group's key, else (for listed interfaces) the first existing one.
/// Pure, so the choice is the same on every node with the same interfaces.
pub fn choose_interface(
    group: &L2GroupPlan,
    interfaces: &[LocalInterface],
) -> Result<String, NoInterface> {
    let Some(&key) = group.addresses.first() else {
        return Err(NoInterface::ListedMissing { listed: Vec::new() });
    };
    let mut allowed: Vec<&LocalInterface> = interfaces
        .iter()
        .filter(|i| match &group.interfaces {
            L2Interfaces::Any => true,
            L2Interfaces::Listed(names) => names.contains(&i.name),
        })
        .collect();
    allowed.sort_by(|a, b| a.name.cmp(&b.name));
    if let Some(on_subnet) = allowed
        .iter()
        .find(|i| i.subnets.iter().any(|s| s.contains(&key)))
    {
        return Ok(on_subnet.name.clone());
    }
    match &group.interfaces {
        L2Interfaces::Any => Err(NoInterface::NoSubnet { address: key }),
        L2Interfaces::Listed(names) => {
            allowed
                .first()
                .map(|i| i.name.clone())
                .ok_or_else(|| NoInterface::ListedMissing {
                    listed: names.iter().cloned().collect(),
                })
        }
    }
}
