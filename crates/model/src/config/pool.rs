//! Validated address pools, and the rules on `IPAddressPool`: address syntax, namespaces,
//! selectors, and no address in two entries or two pools.

use std::collections::{BTreeMap, BTreeSet};
use std::net::IpAddr;

use ipnet::IpNet;

use super::{Problems, check_unique_strings, parse_selectors};
use crate::address::{AddressBlock, IpFamily, address_ordinal, parse_address_block};
use crate::crd::{IPAddressPool, ObjectRef};
use crate::names::check_namespace_name;
use crate::selector::SelectorList;

/// The most entries `spec.addresses` may have (the CRD's `maxItems`, which bounds the cost of
/// its CEL rule).
pub const MAX_ADDRESS_ENTRIES: usize = 1000;

/// A validated pool.
#[derive(Debug, Clone, PartialEq)]
pub struct Pool {
    /// `metadata.name`.
    pub name: String,
    /// `metadata.labels`, matched by advertisements' `ipAddressPoolSelectors`.
    pub labels: BTreeMap<String, String>,
    /// The entries of `spec.addresses`, in the order written.
    pub blocks: Vec<AddressBlock>,
    /// The same addresses as CIDRs (ranges summarised), in the order written.
    pub cidrs: Vec<IpNet>,
    /// `spec.autoAssign`, default true.
    pub auto_assign: bool,
    /// `spec.avoidBuggyIPs`, default false.
    pub avoid_buggy_ips: bool,
    /// `spec.serviceAllocation`.
    pub allocation: PoolAllocation,
}

impl Pool {
    /// Whether the pool contains an address.
    pub fn contains(&self, address: IpAddr) -> bool {
        self.blocks.iter().any(|b| b.contains(address))
    }

    /// Whether the pool has addresses of a family.
    pub fn has_family(&self, family: IpFamily) -> bool {
        self.blocks.iter().any(|b| b.family() == family)
    }
}

/// Which Services may use a pool, and its priority.
#[derive(Debug, Clone, PartialEq, Default)]
pub struct PoolAllocation {
    /// Lower is tried first; `None` when unset or 0 (tried after every pool with a priority).
    pub priority: Option<i32>,
    /// Namespaces allowed by name.
    pub namespaces: BTreeSet<String>,
    /// Namespaces allowed by label.
    pub namespace_selectors: SelectorList,
    /// Services allowed by label.
    pub service_selectors: SelectorList,
}

impl PoolAllocation {
    /// Whether the pool restricts which Services may use it at all.
    pub fn is_restricted(&self) -> bool {
        !self.namespaces.is_empty()
            || !self.namespace_selectors.selects_everything()
            || !self.service_selectors.selects_everything()
    }

    /// Whether a Service in `namespace` (whose Namespace has `namespace_labels`) with
    /// `service_labels` may use the pool: its namespace is allowed (by name or by label, when
    /// the pool restricts namespaces) and its labels match (when the pool selects Services).
    pub fn admits(
        &self,
        namespace: &str,
        namespace_labels: &BTreeMap<String, String>,
        service_labels: &BTreeMap<String, String>,
    ) -> bool {
        let restricts_namespaces =
            !self.namespaces.is_empty() || !self.namespace_selectors.selects_everything();
        let namespace_allowed = !restricts_namespaces
            || self.namespaces.contains(namespace)
            || (!self.namespace_selectors.selects_everything()
                && self.namespace_selectors.matches(namespace_labels));
        namespace_allowed && self.service_selectors.matches(service_labels)
    }
}

/// A pool as far as it could be parsed: what advertisements need to resolve and check their
/// references even when the pool itself has errors.
pub(super) struct ParsedPool {
    pub object: ObjectRef,
    pub labels: BTreeMap<String, String>,
    /// Parsed entries with their index in `spec.addresses`.
    pub blocks: Vec<(usize, AddressBlock)>,
    /// The validated pool; `None` when the pool has errors.
    pub pool: Option<Pool>,
}

pub(super) fn validate_pools(
    pools: &[(ObjectRef, &IPAddressPool)],
    problems: &mut Problems,
) -> Vec<ParsedPool> {
    let mut parsed: Vec<ParsedPool> = pools
        .iter()
        .map(|(object, pool)| validate_pool(object, pool, problems))
        .collect();
    report_overlaps(&mut parsed, problems);
    parsed
}

fn validate_pool(object: &ObjectRef, pool: &IPAddressPool, problems: &mut Problems) -> ParsedPool {
    let errors_before = problems.errors.len();
    let spec = &pool.spec;
    if spec.addresses.is_empty() {
        problems.add(
            object,
            "spec.addresses",
            "at least one address (a CIDR or a range) is required",
        );
    }
    if spec.addresses.len() > MAX_ADDRESS_ENTRIES {
        problems.add(
            object,
            "spec.addresses",
            format!(
                "{} entries; a pool holds at most {MAX_ADDRESS_ENTRIES} (one CIDR or range can \
                 cover many addresses)",
                spec.addresses.len()
            ),
        );
    }
    let mut blocks = Vec::new();
    for (index, entry) in spec.addresses.iter().enumerate() {
        match parse_address_block(entry) {
            Ok(block) => blocks.push((index, block)),
            Err(error) => problems.add(
                object,
                format!("spec.addresses[{index}]"),
                error.to_string(),
            ),
        }
    }

    let mut allocation = PoolAllocation::default();
    if let Some(service_allocation) = &spec.service_allocation {
        allocation.priority = service_allocation.priority.filter(|p| *p != 0);
        for (index, namespace) in service_allocation.namespaces.iter().enumerate() {
            if let Err(message) = check_namespace_name(namespace) {
                problems.add(
                    object,
                    format!("spec.serviceAllocation.namespaces[{index}]"),
                    message,
                );
            }
        }
        check_unique_strings(
            object,
            "spec.serviceAllocation.namespaces",
            &service_allocation.namespaces,
            problems,
        );
        allocation.namespaces = service_allocation.namespaces.iter().cloned().collect();
        allocation.namespace_selectors = parse_selectors(
            object,
            "spec.serviceAllocation.namespaceSelectors",
            &service_allocation.namespace_selectors,
            problems,
        );
        allocation.service_selectors = parse_selectors(
            object,
            "spec.serviceAllocation.serviceSelectors",
            &service_allocation.service_selectors,
            problems,
        );
    }

    let labels = pool.metadata.labels.clone().unwrap_or_default();
    let valid = problems.errors.len() == errors_before;
    let validated = valid.then(|| Pool {
        name: object.name.clone(),
        labels: labels.clone(),
        blocks: blocks.iter().map(|(_, block)| *block).collect(),
        cidrs: blocks.iter().flat_map(|(_, block)| block.cidrs()).collect(),
        auto_assign: spec.auto_assign.unwrap_or(true),
        avoid_buggy_ips: spec.avoid_buggy_ips.unwrap_or(false),
        allocation,
    });
    ParsedPool {
        object: object.clone(),
        labels,
        blocks,
        pool: validated,
    }
}

/// Reports every entry that shares an address with an entry seen before it in address order,
/// within one pool or across pools, and marks the pool invalid.
fn report_overlaps(pools: &mut [ParsedPool], problems: &mut Problems) {
    struct Span {
        family: IpFamily,
        start: u128,
        end: u128,
        pool: usize,
        index: usize,
        block: AddressBlock,
    }
    let mut spans: Vec<Span> = pools
        .iter()
        .enumerate()
        .flat_map(|(pool, parsed)| {
            parsed.blocks.iter().map(move |(index, block)| Span {
                family: block.family(),
                start: address_ordinal(block.first()),
                end: address_ordinal(block.last()),
                pool,
                index: *index,
                block: *block,
            })
        })
        .collect();
    // Pools are already in name order, so ties sort by pool name, then position.
    spans.sort_by_key(|s| (s.family, s.start, s.end, s.pool, s.index));

    let mut reaching_furthest: Option<&Span> = None;
    let mut overlapping_pools = BTreeSet::new();
    for span in &spans {
        match reaching_furthest {
            Some(earlier) if earlier.family == span.family && span.start <= earlier.end => {
                let other = &pools[earlier.pool].object;
                problems.add(
                    &pools[span.pool].object,
                    format!("spec.addresses[{}]", span.index),
                    format!(
                        "{} overlaps {} ({other} spec.addresses[{}]); a pool address must belong \
                         to exactly one entry",
                        span.block, earlier.block, earlier.index
                    ),
                );
                overlapping_pools.insert(span.pool);
                if span.end > earlier.end {
                    reaching_furthest = Some(span);
                }
            }
            _ => reaching_furthest = Some(span),
        }
    }
    for pool in overlapping_pools {
        pools[pool].pool = None;
    }
}
