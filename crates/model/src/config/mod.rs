//! `Config`: the validated, typed view of all ferrolb resources that the allocator, the planner
//! and the controller consume. `Config::build` checks every rule, the ones a single object can
//! check (also expressed as CEL rules in the CRDs, but the same YAML is read from a directory
//! with no API server in between) and the ones that need several objects (overlapping pools,
//! references, aggregation lengths, conflicting localPref, duplicate sessions), and returns
//! either the whole `Config` or every error at once.
//!
//! Owns: defaults, parsing of addresses/ASNs/durations/selectors/communities, and the rules.
//! Does not own: what to do with a rejected configuration (the callers keep the last good one),
//! Namespace/Node/Service lookups (selectors are kept as selectors and matched by the callers).

mod advertisement;
mod bfd;
mod communities;
mod peer;
mod pool;

use std::collections::{BTreeMap, BTreeSet};
use std::fmt;
use std::net::IpAddr;

use k8s_openapi::apimachinery::pkg::apis::meta::v1::LabelSelector;
use thiserror::Error;

pub use advertisement::{BgpAdvertisement, L2Advertisement, MAX_COMMUNITIES, WeightedSelector};
pub use bfd::BfdProfile;
pub use communities::MAX_ALIASES_PER_OBJECT;
pub use peer::{
    DEFAULT_HOLD_TIME, DEFAULT_PEER_PORT, MAX_PASSWORD_BYTES, Peer, PeerEndpoint, PeerPassword,
    RemoteAsn,
};
pub use pool::{MAX_ADDRESS_ENTRIES, Pool, PoolAllocation};

use crate::community::CommunityValue;
use crate::crd::{
    BFDProfile, BGPAdvertisement, BGPPeer, Community, ConfigObject, IPAddressPool,
    L2Advertisement as L2AdvertisementResource, ObjectRef, ResourceKind,
};
use crate::names::check_object_name;
use crate::selector::{Selector, SelectorList};

/// One problem in the configuration: the object, the field path inside it, and what is wrong.
///
/// Displays as `IPAddressPool/prod spec.addresses[1]: range start 172.16.16.150 is after end
/// 172.16.16.20`.
#[derive(Debug, Clone, PartialEq, Eq, Error)]
pub struct ValidationError {
    /// The object the problem is in.
    pub object: ObjectRef,
    /// The path of the field, such as `spec.addresses[1]`.
    pub field: String,
    /// What is wrong, in a sentence without a trailing period.
    pub message: String,
}

impl fmt::Display for ValidationError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{} {}: {}", self.object, self.field, self.message)
    }
}

/// The resources a `Config` is built from, as read from the cluster or from files.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct Resources {
    /// `IPAddressPool` objects.
    pub ip_address_pools: Vec<IPAddressPool>,
    /// `BGPPeer` objects.
    pub bgp_peers: Vec<BGPPeer>,
    /// `BGPAdvertisement` objects.
    pub bgp_advertisements: Vec<BGPAdvertisement>,
    /// `L2Advertisement` objects.
    pub l2_advertisements: Vec<L2AdvertisementResource>,
    /// `Community` objects.
    pub communities: Vec<Community>,
    /// `BFDProfile` objects.
    pub bfd_profiles: Vec<BFDProfile>,
}

impl Resources {
    /// Adds one object to the set of its kind.
    pub fn add(&mut self, object: ConfigObject) {
        match object {
            ConfigObject::IPAddressPool(o) => self.ip_address_pools.push(o),
            ConfigObject::BGPPeer(o) => self.bgp_peers.push(o),
            ConfigObject::BGPAdvertisement(o) => self.bgp_advertisements.push(o),
            ConfigObject::L2Advertisement(o) => self.l2_advertisements.push(o),
            ConfigObject::Community(o) => self.communities.push(o),
            ConfigObject::BFDProfile(o) => self.bfd_profiles.push(o),
        }
    }

    /// How many objects there are, of all kinds.
    pub fn len(&self) -> usize {
        self.ip_address_pools.len()
            + self.bgp_peers.len()
            + self.bgp_advertisements.len()
            + self.l2_advertisements.len()
            + self.communities.len()
            + self.bfd_profiles.len()
    }

    /// Whether there are no objects at all.
    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }
}

impl FromIterator<ConfigObject> for Resources {
    fn from_iter<I: IntoIterator<Item = ConfigObject>>(objects: I) -> Resources {
        let mut resources = Resources::default();
        objects.into_iter().for_each(|o| resources.add(o));
        resources
    }
}

/// The validated configuration. Every list is sorted by name, so iteration order never depends
/// on the order objects were read in.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct Config {
    /// Address pools.
    pub pools: Vec<Pool>,
    /// BGP sessions.
    pub peers: Vec<Peer>,
    /// BGP announcement rules.
    pub bgp_advertisements: Vec<BgpAdvertisement>,
    /// Layer-2 announcement rules.
    pub l2_advertisements: Vec<L2Advertisement>,
    /// BFD settings, referenced by peers.
    pub bfd_profiles: Vec<BfdProfile>,
    /// Community aliases from all Community objects (already substituted in the
    /// advertisements; kept for display).
    pub community_aliases: BTreeMap<String, CommunityValue>,
}

impl Config {
    /// Validates the resources and builds the typed configuration, or returns every error found,
    /// sorted by object (kind, then name) and, within an object, in field order.
    pub fn build(resources: &Resources) -> Result<Config, Vec<ValidationError>> {
        let mut problems = Problems::default();

        let pools = unique_by_name(
            &resources.ip_address_pools,
            ResourceKind::IPAddressPool,
            &mut problems,
        );
        let communities = unique_by_name(
            &resources.communities,
            ResourceKind::Community,
            &mut problems,
        );
        let bfd_profiles = unique_by_name(
            &resources.bfd_profiles,
            ResourceKind::BFDProfile,
            &mut problems,
        );
        let peers = unique_by_name(&resources.bgp_peers, ResourceKind::BGPPeer, &mut problems);
        let bgp_advertisements = unique_by_name(
            &resources.bgp_advertisements,
            ResourceKind::BGPAdvertisement,
            &mut problems,
        );
        let l2_advertisements = unique_by_name(
            &resources.l2_advertisements,
            ResourceKind::L2Advertisement,
            &mut problems,
        );

        let parsed_pools = pool::validate_pools(&pools, &mut problems);
        let aliases = communities::validate_communities(&communities, &mut problems);
        let bfd_profiles = bfd::validate_bfd_profiles(&bfd_profiles, &mut problems);
        let bfd_names: BTreeSet<&str> = resources
            .bfd_profiles
            .iter()
            .filter_map(|o| o.metadata.name.as_deref())
            .collect();
        let peers = peer::validate_peers(&peers, &bfd_names, &mut problems);
        let known_peers: BTreeSet<&str> = resources
            .bgp_peers
            .iter()
            .filter_map(|o| o.metadata.name.as_deref())
            .collect();
        let bgp_advertisements = advertisement::validate_bgp_advertisements(
            &bgp_advertisements,
            &parsed_pools,
            &known_peers,
            &aliases,
            &mut problems,
        );
        let l2_advertisements = advertisement::validate_l2_advertisements(
            &l2_advertisements,
            &parsed_pools,
            &mut problems,
        );

        if !problems.errors.is_empty() {
            return Err(problems.into_sorted());
        }
        Ok(Config {
            pools: parsed_pools.into_iter().filter_map(|p| p.pool).collect(),
            peers,
            bgp_advertisements,
            l2_advertisements,
            bfd_profiles,
            community_aliases: aliases
                .into_iter()
                .map(|(name, alias)| (name, alias.value))
                .collect(),
        })
    }

    /// The pool with this name.
    pub fn pool(&self, name: &str) -> Option<&Pool> {
        self.pools.iter().find(|p| p.name == name)
    }

    /// The peer with this name.
    pub fn peer(&self, name: &str) -> Option<&Peer> {
        self.peers.iter().find(|p| p.name == name)
    }

    /// The BFD profile with this name.
    pub fn bfd_profile(&self, name: &str) -> Option<&BfdProfile> {
        self.bfd_profiles.iter().find(|p| p.name == name)
    }

    /// The pool an address belongs to (pools never overlap, so there is at most one).
    pub fn pool_containing(&self, address: IpAddr) -> Option<&Pool> {
        self.pools.iter().find(|p| p.contains(address))
    }

    /// The pools in the order automatic allocation tries them: by priority (lower first; no
    /// priority last), then by name.
    pub fn pools_in_allocation_order(&self) -> Vec<&Pool> {
        let mut ordered: Vec<&Pool> = self.pools.iter().collect();
        ordered.sort_by(|a, b| {
            let key = |p: &Pool| (p.allocation.priority.is_none(), p.allocation.priority);
            key(a).cmp(&key(b)).then_with(|| a.name.cmp(&b.name))
        });
        ordered
    }
}

/// Collects errors while validating.
#[derive(Debug, Default)]
pub(crate) struct Problems {
    errors: Vec<ValidationError>,
}

impl Problems {
    pub(crate) fn add(
        &mut self,
        object: &ObjectRef,
        field: impl Into<String>,
        message: impl Into<String>,
    ) {
        self.errors.push(ValidationError {
            object: object.clone(),
            field: field.into(),
            message: message.into(),
        });
    }

    /// Errors grouped by object (kind order, then name); within an object, the order found.
    fn into_sorted(mut self) -> Vec<ValidationError> {
        self.errors.sort_by(|a, b| a.object.cmp(&b.object));
        self.errors
    }
}

/// Checks names and drops repeated ones (reported once each), so later stages see every name
/// once. The result is sorted by name.
fn unique_by_name<'a, T: kube::Resource>(
    objects: &'a [T],
    kind: ResourceKind,
    problems: &mut Problems,
) -> Vec<(ObjectRef, &'a T)> {
    let mut seen = BTreeSet::new();
    let mut unique = Vec::new();
    for object in objects {
        let name = object.meta().name.clone().unwrap_or_default();
        let object_ref = ObjectRef::new(kind, name.clone());
        if let Err(message) = check_object_name(&name) {
            problems.add(&object_ref, "metadata.name", message);
            continue;
        }
        if !seen.insert(name) {
            problems.add(
                &object_ref,
                "metadata.name",
                format!("{object_ref} is defined more than once; names must be unique per kind"),
            );
            continue;
        }
        unique.push((object_ref, object));
    }
    unique.sort_by(|a, b| a.0.cmp(&b.0));
    unique
}

/// Parses a list of label selectors, reporting problems under `field[i]` and duplicates.
pub(crate) fn parse_selectors(
    object: &ObjectRef,
    field: &str,
    selectors: &[LabelSelector],
    problems: &mut Problems,
) -> SelectorList {
    // `None` marks an invalid selector, so positions stay aligned with the input and an
    // invalid entry is never reported as the original of a duplicate.
    let mut parsed: Vec<Option<Selector>> = Vec::new();
    for (index, selector) in selectors.iter().enumerate() {
        match Selector::parse(selector) {
            Ok(selector) => {
                if let Some(first) = parsed.iter().position(|p| p.as_ref() == Some(&selector)) {
                    problems.add(
                        object,
                        format!("{field}[{index}]"),
                        format!("duplicate of {field}[{first}]"),
                    );
                }
                parsed.push(Some(selector));
            }
            Err(selector_problems) => {
                for problem in selector_problems {
                    problems.add(
                        object,
                        format!("{field}[{index}].{}", problem.field),
                        problem.message,
                    );
                }
                parsed.push(None);
            }
        }
    }
    SelectorList(parsed.into_iter().flatten().collect())
}

/// Reports entries of a string list that repeat an earlier one.
pub(crate) fn check_unique_strings(
    object: &ObjectRef,
    field: &str,
    values: &[String],
    problems: &mut Problems,
) {
    for (index, value) in values.iter().enumerate() {
        if let Some(first) = values[..index].iter().position(|v| v == value) {
            problems.add(
                object,
                format!("{field}[{index}]"),
                format!("{value:?} is listed twice (also at {field}[{first}])"),
            );
        }
    }
}

#[cfg(test)]
mod tests;
