//! Validated BGP and layer-2 advertisements, and their rules: aggregation lengths (in range, and
//! never wider than a pool's own CIDRs), communities resolved against aliases, references to
//! pools and peers, selectors, and no two localPref values for one route.

use std::collections::{BTreeMap, BTreeSet};

use k8s_openapi::apimachinery::pkg::apis::meta::v1::LabelSelector;

use super::communities::Alias;
use super::pool::ParsedPool;
use super::{Problems, check_unique_strings, parse_selectors};
use crate::address::{AddressBlock, IpFamily};
use crate::community::{CommunityValue, parse_literal};
use crate::crd::{BGPAdvertisement, L2Advertisement as L2AdvertisementResource, ObjectRef};
use crate::names::check_interface_name;
use crate::selector::{Selector, SelectorList};

/// The most communities one advertisement may carry (the CRD's `maxItems`).
pub const MAX_COMMUNITIES: usize = 64;

/// A validated BGP advertisement.
#[derive(Debug, Clone, PartialEq)]
pub struct BgpAdvertisement {
    /// `metadata.name`.
    pub name: String,
    /// Prefix length announced for an IPv4 address, 1-32 (default 32).
    pub aggregation_length_v4: u8,
    /// Prefix length announced for an IPv6 address, 1-128 (default 128).
    pub aggregation_length_v6: u8,
    /// LOCAL_PREF for the routes (iBGP sessions only).
    pub local_pref: Option<u32>,
    /// Communities with aliases resolved, in the order written, without repeats.
    pub communities: Vec<CommunityValue>,
    /// Names of the pools the advertisement applies to, sorted.
    pub pools: Vec<String>,
    /// Nodes that announce.
    pub node_selectors: SelectorList,
    /// Names of the peers to announce to, sorted; empty means every peer.
    pub peers: Vec<String>,
    /// Services the advertisement applies to.
    pub service_selectors: SelectorList,
}

impl BgpAdvertisement {
    /// The announced prefix length for an address family.
    pub fn aggregation_length(&self, family: IpFamily) -> u8 {
        match family {
            IpFamily::V4 => self.aggregation_length_v4,
            IpFamily::V6 => self.aggregation_length_v6,
        }
    }

    /// Whether routes go to the peer with this name.
    pub fn applies_to_peer(&self, peer: &str) -> bool {
        self.peers.is_empty() || self.peers.iter().any(|p| p == peer)
    }

    /// Whether the advertisement applies to the pool with this name.
    pub fn applies_to_pool(&self, pool: &str) -> bool {
        self.pools.iter().any(|p| p == pool)
    }
}

/// A validated layer-2 advertisement.
#[derive(Debug, Clone, PartialEq)]
pub struct L2Advertisement {
    /// `metadata.name`.
    pub name: String,
    /// Names of the pools the advertisement applies to, sorted.
    pub pools: Vec<String>,
    /// Nodes that may answer.
    pub node_selectors: SelectorList,
    /// Interfaces to answer on; empty means every eligible interface.
    pub interfaces: Vec<String>,
    /// Services the advertisement applies to.
    pub service_selectors: SelectorList,
    /// Soft election preferences.
    pub preferred_nodes: Vec<WeightedSelector>,
}

impl L2Advertisement {
    /// Whether the advertisement applies to the pool with this name.
    pub fn applies_to_pool(&self, pool: &str) -> bool {
        self.pools.iter().any(|p| p == pool)
    }
}

/// A node preference with its weight (1-100).
#[derive(Debug, Clone, PartialEq)]
pub struct WeightedSelector {
    /// 1-100.
    pub weight: u8,
    /// The preferred nodes.
    pub selector: Selector,
}

pub(super) fn validate_bgp_advertisements(
    advertisements: &[(ObjectRef, &BGPAdvertisement)],
    pools: &[ParsedPool],
    known_peers: &BTreeSet<&str>,
    aliases: &BTreeMap<String, Alias>,
    problems: &mut Problems,
) -> Vec<BgpAdvertisement> {
    let validated: Vec<(&ObjectRef, Option<BgpAdvertisement>)> = advertisements
        .iter()
        .map(|(object, advertisement)| {
            let errors_before = problems.errors.len();
            let candidate = validate_bgp_advertisement(
                object,
                advertisement,
                pools,
                known_peers,
                aliases,
                problems,
            );
            let valid = problems.errors.len() == errors_before;
            (object, valid.then_some(candidate))
        })
        .collect();
    report_local_pref_conflicts(&validated, pools, problems);
    validated.into_iter().filter_map(|(_, a)| a).collect()
}

fn validate_bgp_advertisement(
    object: &ObjectRef,
    advertisement: &BGPAdvertisement,
    pools: &[ParsedPool],
    known_peers: &BTreeSet<&str>,
    aliases: &BTreeMap<String, Alias>,
    problems: &mut Problems,
) -> BgpAdvertisement {
    let spec = &advertisement.spec;
    let aggregation_length_v4 = aggregation_length(
        object,
        "spec.aggregationLength",
        spec.aggregation_length,
        IpFamily::V4,
        problems,
    );
    let aggregation_length_v6 = aggregation_length(
        object,
        "spec.aggregationLengthV6",
        spec.aggregation_length_v6,
        IpFamily::V6,
        problems,
    );

    if spec.communities.len() > MAX_COMMUNITIES {
        problems.add(
            object,
            "spec.communities",
            format!(
                "{} communities; an advertisement carries at most {MAX_COMMUNITIES}",
                spec.communities.len()
            ),
        );
    }
    check_unique_strings(object, "spec.communities", &spec.communities, problems);
    let mut communities: Vec<CommunityValue> = Vec::new();
    for (index, text) in spec.communities.iter().enumerate() {
        let field = format!("spec.communities[{index}]");
        let resolved = match parse_literal(text) {
            Ok(Some(value)) => Some(value),
            Ok(None) => match aliases.get(text) {
                Some(alias) => Some(alias.value),
                None => {
                    problems.add(
                        object,
                        field,
                        format!(
                            "{text:?} is neither a community value (A:B, large:A:B:C or a \
                             well-known name such as no-export) nor an alias defined by a \
                             Community object"
                        ),
                    );
                    None
                }
            },
            Err(error) => {
                problems.add(object, field, error.to_string());
                None
            }
        };
        if let Some(value) = resolved
            && !communities.contains(&value)
        {
            communities.push(value);
        }
    }

    let pool_names = resolve_pools(
        object,
        &spec.ip_address_pools,
        &spec.ip_address_pool_selectors,
        pools,
        problems,
    );

    for pool in pools.iter().filter(|p| pool_names.contains(&p.object.name)) {
        check_aggregation_against_pool(
            object,
            "spec.aggregationLength",
            aggregation_length_v4,
            IpFamily::V4,
            pool,
            problems,
        );
        check_aggregation_against_pool(
            object,
            "spec.aggregationLengthV6",
            aggregation_length_v6,
            IpFamily::V6,
            pool,
            problems,
        );
    }

    let node_selectors =
        parse_selectors(object, "spec.nodeSelectors", &spec.node_selectors, problems);

    check_unique_strings(object, "spec.peers", &spec.peers, problems);
    for (index, peer) in spec.peers.iter().enumerate() {
        if !known_peers.contains(peer.as_str()) {
            problems.add(
                object,
                format!("spec.peers[{index}]"),
                format!("BGPPeer/{peer} does not exist"),
            );
        }
    }

    let service_selectors = parse_selectors(
        object,
        "spec.serviceSelectors",
        &spec.service_selectors,
        problems,
    );
    if !service_selectors.selects_everything()
        && (aggregation_length_v4 != 32 || aggregation_length_v6 != 128)
    {
        problems.add(
            object,
            "spec.serviceSelectors",
            format!(
                "serviceSelectors need aggregationLength 32 and aggregationLengthV6 128, so that \
                 each Service has its own route; this advertisement uses /{aggregation_length_v4} \
                 and /{aggregation_length_v6}"
            ),
        );
    }

    let mut peers: Vec<String> = spec.peers.clone();
    peers.sort();
    peers.dedup();
    BgpAdvertisement {
        name: object.name.clone(),
        aggregation_length_v4,
        aggregation_length_v6,
        local_pref: spec.local_pref,
        communities,
        pools: pool_names.into_iter().collect(),
        node_selectors,
        peers,
        service_selectors,
    }
}

fn aggregation_length(
    object: &ObjectRef,
    field: &str,
    written: Option<i32>,
    family: IpFamily,
    problems: &mut Problems,
) -> u8 {
    let max = family.max_prefix_len();
    match written {
        None => max,
        Some(length) => match u8::try_from(length) {
            Ok(length) if (1..=max).contains(&length) => length,
            _ => {
                problems.add(
                    object,
                    field,
                    format!("{length} is out of range; use 1-{max}"),
                );
                max
            }
        },
    }
}

/// An aggregation length shorter than a pool CIDR would announce addresses outside the pool
/// (MetalLB only compares with the widest CIDR, which lets a mixed pool leak).
fn check_aggregation_against_pool(
    object: &ObjectRef,
    field: &str,
    length: u8,
    family: IpFamily,
    pool: &ParsedPool,
    problems: &mut Problems,
) {
    let narrowest = pool
        .blocks
        .iter()
        .filter(|(_, block)| block.family() == family)
        .flat_map(|(index, block)| block.cidrs().into_iter().map(move |c| (*index, *block, c)))
        .filter(|(_, _, cidr)| cidr.prefix_len() > length)
        .max_by_key(|(_, _, cidr)| cidr.prefix_len());
    if let Some((index, block, cidr)) = narrowest {
        let written = match block {
            AddressBlock::Cidr(_) => cidr.to_string(),
            AddressBlock::Range(range) => format!("{cidr} of range {range}"),
        };
        problems.add(
            object,
            field,
            format!(
                "{length} is shorter than the /{} of {} (spec.addresses[{index}] {written}), so \
                 the announced prefixes would cover addresses outside the pool; use {} or longer",
                cidr.prefix_len(),
                pool.object,
                cidr.prefix_len()
            ),
        );
    }
}

/// The pool names an advertisement applies to: those listed, plus those selected by label;
/// every pool when neither is given. Listed names must exist.
fn resolve_pools(
    object: &ObjectRef,
    names: &[String],
    selectors: &[LabelSelector],
    pools: &[ParsedPool],
    problems: &mut Problems,
) -> BTreeSet<String> {
    check_unique_strings(object, "spec.ipAddressPools", names, problems);
    let selectors = parse_selectors(object, "spec.ipAddressPoolSelectors", selectors, problems);
    if names.is_empty() && selectors.selects_everything() {
        return pools.iter().map(|p| p.object.name.clone()).collect();
    }
    let mut resolved = BTreeSet::new();
    for (index, name) in names.iter().enumerate() {
        if pools.iter().any(|p| &p.object.name == name) {
            resolved.insert(name.clone());
        } else {
            problems.add(
                object,
                format!("spec.ipAddressPools[{index}]"),
                format!("IPAddressPool/{name} does not exist"),
            );
        }
    }
    if !selectors.selects_everything() {
        resolved.extend(
            pools
                .iter()
                .filter(|p| selectors.matches(&p.labels))
                .map(|p| p.object.name.clone()),
        );
    }
    resolved
}

/// Two advertisements that can put different localPref values on one route leave the route's
/// attributes to chance; MetalLB rejects that too. "One route" here means: a pool both apply to,
/// the same prefix length for a family that pool has, and peers, nodes and Services they could
/// both select.
fn report_local_pref_conflicts(
    advertisements: &[(&ObjectRef, Option<BgpAdvertisement>)],
    pools: &[ParsedPool],
    problems: &mut Problems,
) {
    let valid: Vec<(&ObjectRef, &BgpAdvertisement)> = advertisements
        .iter()
        .filter_map(|(object, a)| a.as_ref().map(|a| (*object, a)))
        .collect();
    for (later_index, (object, later)) in valid.iter().enumerate() {
        let Some(later_pref) = later.local_pref else {
            continue;
        };
        for (earlier_object, earlier) in &valid[..later_index] {
            let Some(earlier_pref) = earlier.local_pref else {
                continue;
            };
            if earlier_pref == later_pref {
                continue;
            }
            let peers_overlap = earlier.peers.is_empty()
                || later.peers.is_empty()
                || earlier.peers.iter().any(|p| later.peers.contains(p));
            if !peers_overlap
                || earlier
                    .node_selectors
                    .is_disjoint_from(&later.node_selectors)
                || earlier
                    .service_selectors
                    .is_disjoint_from(&later.service_selectors)
            {
                continue;
            }
            let shared_route = pools
                .iter()
                .filter(|p| earlier.applies_to_pool(&p.object.name))
                .filter(|p| later.applies_to_pool(&p.object.name))
                .find_map(|pool| {
                    [IpFamily::V4, IpFamily::V6].into_iter().find_map(|family| {
                        let length = later.aggregation_length(family);
                        let has_family = pool.blocks.iter().any(|(_, b)| b.family() == family);
                        (has_family && earlier.aggregation_length(family) == length)
                            .then_some((pool, length))
                    })
                });
            if let Some((pool, length)) = shared_route {
                problems.add(
                    object,
                    "spec.localPref",
                    format!(
                        "{later_pref} conflicts with localPref {earlier_pref} of {earlier_object}: \
                         both announce the /{length} routes of {} to the same peers from the same \
                         nodes; use one localPref, or make their peers, nodeSelectors or \
                         serviceSelectors disjoint",
                        pool.object
                    ),
                );
                break;
            }
        }
    }
}

pub(super) fn validate_l2_advertisements(
    advertisements: &[(ObjectRef, &L2AdvertisementResource)],
    pools: &[ParsedPool],
    problems: &mut Problems,
) -> Vec<L2Advertisement> {
    advertisements
        .iter()
        .filter_map(|(object, advertisement)| {
            let errors_before = problems.errors.len();
            let spec = &advertisement.spec;
            let pool_names = resolve_pools(
                object,
                &spec.ip_address_pools,
                &spec.ip_address_pool_selectors,
                pools,
                problems,
            );
            let node_selectors =
                parse_selectors(object, "spec.nodeSelectors", &spec.node_selectors, problems);
            for (index, interface) in spec.interfaces.iter().enumerate() {
                if let Err(message) = check_interface_name(interface) {
                    problems.add(object, format!("spec.interfaces[{index}]"), message);
                }
            }
            check_unique_strings(object, "spec.interfaces", &spec.interfaces, problems);
            let service_selectors = parse_selectors(
                object,
                "spec.serviceSelectors",
                &spec.service_selectors,
                problems,
            );
            let mut preferred_nodes = Vec::new();
            for (index, preferred) in spec.preferred_node_selectors.iter().enumerate() {
                let field = format!("spec.preferredNodeSelectors[{index}]");
                let weight = match u8::try_from(preferred.weight) {
                    Ok(weight) if (1..=100).contains(&weight) => Some(weight),
                    _ => {
                        problems.add(
                            object,
                            format!("{field}.weight"),
                            format!("{} is out of range; use 1-100", preferred.weight),
                        );
                        None
                    }
                };
                match Selector::parse(&preferred.preference) {
                    Ok(selector) => {
                        if let Some(weight) = weight {
                            preferred_nodes.push(WeightedSelector { weight, selector });
                        }
                    }
                    Err(selector_problems) => {
                        for problem in selector_problems {
                            problems.add(
                                object,
                                format!("{field}.preference.{}", problem.field),
                                problem.message,
                            );
                        }
                    }
                }
            }
            (problems.errors.len() == errors_before).then(|| L2Advertisement {
                name: object.name.clone(),
                pools: pool_names.into_iter().collect(),
                node_selectors,
                interfaces: spec.interfaces.clone(),
                service_selectors,
                preferred_nodes,
            })
        })
        .collect()
}
