//! Address pools: their configuration, validation, order, and per-family address space.
//!
//! Owns: [`PoolSpec`] and [`ServiceAllocation`] (the allocator's plain copy of an
//! `IPAddressPool`), [`PoolConfigError`], [`PoolRefusal`] (why a pool does not serve a
//! Service), the allocation order of pools, [`PoolStats`], and the internal [`PoolTable`] that
//! answers "which pool holds this address" and "lowest free address of this pool". Does not
//! know which Service holds what (the allocator does) or anything about Kubernetes objects.

use std::collections::BTreeMap;
use std::net::IpAddr;
use std::sync::Arc;

use thiserror::Error;

use crate::address::{AddressRange, Family, Numbering, address_at, value_of};
use crate::occupancy::Occupancy;
use crate::selector::{LabelSelector, Labels};
use crate::service::ServiceKey;

/// A pool name. Cheap to clone.
pub type PoolName = Arc<str>;

/// One address pool, as the allocator needs it (`IPAddressPool.spec`).
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct PoolSpec {
    /// `metadata.name`.
    pub name: String,
    /// `spec.addresses`: CIDRs and ranges, IPv4 and IPv6, in any order.
    pub addresses: Vec<AddressRange>,
    /// `spec.autoAssign`: when false, only Services that ask for the pool or for one of its
    /// addresses get addresses from it.
    pub auto_assign: bool,
    /// `spec.avoidBuggyIPs`: never hand out IPv4 addresses ending in `.0` or `.255`.
    pub avoid_buggy_ips: bool,
    /// `spec.serviceAllocation`.
    pub service_allocation: Option<ServiceAllocation>,
}

impl PoolSpec {
    /// A pool with MetalLB's defaults: `autoAssign: true`, `avoidBuggyIPs: false`, no
    /// `serviceAllocation`.
    pub fn new(name: impl Into<String>, addresses: Vec<AddressRange>) -> PoolSpec {
        PoolSpec {
            name: name.into(),
            addresses,
            auto_assign: true,
            avoid_buggy_ips: false,
            service_allocation: None,
        }
    }
}

/// `spec.serviceAllocation`: which Services a pool serves, and in which order pools are tried.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct ServiceAllocation {
    /// Lower is tried first. `None` and `Some(0)` both mean "after every prioritised pool",
    /// because MetalLB's field is a plain integer whose zero value means unset.
    pub priority: Option<i32>,
    /// Namespaces served, by name.
    pub namespaces: Vec<String>,
    /// Namespaces served, by label (resolved against the labels given to the allocator).
    pub namespace_selectors: Vec<LabelSelector>,
    /// Services served, by label; any one matching selector is enough.
    pub service_selectors: Vec<LabelSelector>,
}

/// Why a pool does not serve a Service.
#[derive(Clone, Debug, PartialEq, Eq, Error)]
pub enum PoolRefusal {
    /// The namespace is neither listed nor selected.
    #[error(
        "namespace {namespace} is not in the pool's serviceAllocation namespaces or namespaceSelectors"
    )]
    NamespaceNotAllowed {
        /// The Service's namespace.
        namespace: String,
    },
    /// No service selector matches.
    #[error("the Service's labels match none of the pool's serviceAllocation serviceSelectors")]
    ServiceSelectorsDoNotMatch,
}

/// A pool configuration the allocator refuses as a whole (nothing changes).
#[derive(Clone, Debug, PartialEq, Eq, Error)]
pub enum PoolConfigError {
    /// A pool without a name.
    #[error("a pool has an empty name")]
    EmptyName,
    /// Two pools with one name.
    #[error("pool {pool} is defined twice")]
    DuplicateName {
        /// The name.
        pool: String,
    },
    /// A pool without addresses.
    #[error("pool {pool} has no addresses")]
    NoAddresses {
        /// The pool.
        pool: String,
    },
    /// A range whose ends are of different families.
    #[error("pool {pool}: range {range} mixes IPv4 and IPv6")]
    MixedFamilies {
        /// The pool.
        pool: String,
        /// The range.
        range: AddressRange,
    },
    /// A range whose first address is after its last.
    #[error("pool {pool}: range {range} starts after it ends")]
    InvertedRange {
        /// The pool.
        pool: String,
        /// The range.
        range: AddressRange,
    },
    /// Two ranges share addresses (in one pool or in two).
    #[error("pool {pool}: range {range} overlaps {other_range} of pool {other_pool}")]
    Overlap {
        /// One pool.
        pool: String,
        /// Its range.
        range: AddressRange,
        /// The other pool (may be the same).
        other_pool: String,
        /// Its range.
        other_range: AddressRange,
    },
    /// A pool covering all 2^128 IPv6 addresses, which no `u128` counter can count.
    #[error("pool {pool} covers the whole IPv6 space; use a smaller prefix than ::/0")]
    TooLarge {
        /// The pool.
        pool: String,
    },
}

/// Address counts of one pool family. Exact: a /64 or a /0 IPv4 pool is counted, not
/// estimated.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Hash)]
pub struct FamilyStats {
    /// Usable addresses (without `.0`/`.255` when avoidBuggyIPs is set).
    pub total: u128,
    /// Addresses held by at least one Service (a shared address counts once).
    pub in_use: u128,
    /// `total - in_use`.
    pub available: u128,
}

/// Address counts of one pool, per family (for metrics and `IPAddressPool.status`).
#[derive(Clone, Debug, PartialEq, Eq, Hash)]
pub struct PoolStats {
    /// The pool.
    pub pool: PoolName,
    /// IPv4 counts.
    pub ipv4: FamilyStats,
    /// IPv6 counts.
    pub ipv6: FamilyStats,
}

/// Index of a pool in [`PoolTable::pools`] (pools sorted by name). Only valid until the next
/// `set_pools`.
pub(crate) type PoolId = usize;

/// One family of one pool: its usable indexes and which of them are taken.
#[derive(Clone, Debug)]
pub(crate) struct FamilySpace {
    family: Family,
    pub(crate) numbering: Numbering,
    /// Disjoint, non-adjacent, sorted inclusive index ranges.
    segments: Vec<(u128, u128)>,
    total: u128,
    pub(crate) occupancy: Occupancy,
}

impl FamilySpace {
    pub(crate) fn is_configured(&self) -> bool {
        !self.segments.is_empty()
    }

    /// The lowest address no Service holds. O(segments × log runs).
    pub(crate) fn lowest_free(&self) -> Option<IpAddr> {
        self.segments.iter().find_map(|&(first, last)| {
            let index = self.occupancy.lowest_free_in(first, last)?;
            Some(address_at(self.family, self.numbering.value_at(index)))
        })
    }

    pub(crate) fn stats(&self) -> FamilyStats {
        let in_use = self.occupancy.taken();
        FamilyStats {
            total: self.total,
            in_use,
            available: self.total - in_use,
        }
    }
}

/// A validated pool with its address space.
#[derive(Clone, Debug)]
pub(crate) struct Pool {
    pub(crate) name: PoolName,
    pub(crate) auto_assign: bool,
    service_allocation: Option<ServiceAllocation>,
    spaces: [FamilySpace; 2],
}

impl Pool {
    pub(crate) fn space(&self, family: Family) -> &FamilySpace {
        &self.spaces[family.slot()]
    }

    pub(crate) fn space_mut(&mut self, family: Family) -> &mut FamilySpace {
        &mut self.spaces[family.slot()]
    }

    pub(crate) fn stats(&self) -> PoolStats {
        PoolStats {
            pool: self.name.clone(),
            ipv4: self.space(Family::V4).stats(),
            ipv6: self.space(Family::V6).stats(),
        }
    }

    /// Why this pool does not serve the Service, or `None` if it does (MetalLB's
    /// `isPoolCompatibleWithService`). `autoAssign` is not part of this: it only keeps the
    /// pool out of automatic choice.
    pub(crate) fn refusal(
        &self,
        service: &ServiceKey,
        labels: &Labels,
        namespace_labels: &BTreeMap<String, Labels>,
    ) -> Option<PoolRefusal> {
        let allocation = self.service_allocation.as_ref()?;
        let restricts_namespaces =
            !allocation.namespaces.is_empty() || !allocation.namespace_selectors.is_empty();
        if restricts_namespaces {
            let namespace = service.namespace();
            let listed = allocation.namespaces.iter().any(|n| n == namespace);
            let selected = || {
                let no_labels = Labels::new();
                let labels = namespace_labels.get(namespace).unwrap_or(&no_labels);
                allocation
                    .namespace_selectors
                    .iter()
                    .any(|selector| selector.matches(labels))
            };
            if !listed && !selected() {
                return Some(PoolRefusal::NamespaceNotAllowed {
                    namespace: namespace.to_owned(),
                });
            }
        }
        if !allocation.service_selectors.is_empty()
            && !allocation
                .service_selectors
                .iter()
                .any(|selector| selector.matches(labels))
        {
            return Some(PoolRefusal::ServiceSelectorsDoNotMatch);
        }
        None
    }

    /// The key pools are tried in: priority ascending with unset (or 0) last, then pools with
    /// a serviceAllocation before pools without (MetalLB tries "pinned" pools first), then name.
    fn order_key(&self) -> (bool, i32, bool, PoolName) {
        let priority = self
            .service_allocation
            .as_ref()
            .and_then(|allocation| allocation.priority)
            .filter(|&priority| priority != 0);
        (
            priority.is_none(),
            priority.unwrap_or(0),
            self.service_allocation.is_none(),
            self.name.clone(),
        )
    }
}

/// Where an address falls in the configured pools.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) enum Location {
    /// Inside a pool, at this index of its family space.
    InPool { pool: PoolId, index: u128 },
    /// Inside a pool's range, but an `.0`/`.255` the pool avoids.
    Avoided { pool: PoolId },
    /// In no pool.
    Outside,
}

/// All pools, with the lookups the allocator needs.
#[derive(Clone, Debug, Default)]
pub(crate) struct PoolTable {
    /// Sorted by name; a [`PoolId`] indexes this.
    pub(crate) pools: Vec<Pool>,
    by_name: BTreeMap<PoolName, PoolId>,
    /// Pools in the order automatic allocation tries them.
    pub(crate) auto_order: Vec<PoolId>,
    /// Every configured range by first address: `first → (last, pool)`.
    ranges: BTreeMap<IpAddr, (IpAddr, PoolId)>,
}

struct CheckedRange {
    family: Family,
    first: u128,
    last: u128,
    pool: String,
    range: AddressRange,
}

impl PoolTable {
    /// Validates and builds the pools, with empty occupancy. The result does not depend on the
    /// order of `specs` or of their addresses.
    pub(crate) fn build(mut specs: Vec<PoolSpec>) -> Result<PoolTable, PoolConfigError> {
        specs.sort_by(|a, b| a.name.cmp(&b.name));
        for pair in specs.windows(2) {
            if pair[0].name == pair[1].name {
                return Err(PoolConfigError::DuplicateName {
                    pool: pair[0].name.clone(),
                });
            }
        }
        let mut all_ranges = Vec::new();
        for spec in &specs {
            if spec.name.is_empty() {
                return Err(PoolConfigError::EmptyName);
            }
            if spec.addresses.is_empty() {
                return Err(PoolConfigError::NoAddresses {
                    pool: spec.name.clone(),
                });
            }
            let mut ranges: Vec<AddressRange> = spec.addresses.clone();
            ranges.sort();
            for range in ranges {
                let (first, last) = range.bounds();
                let family = Family::of(first);
                if family != Family::of(last) {
                    return Err(PoolConfigError::MixedFamilies {
                        pool: spec.name.clone(),
                        range,
                    });
                }
                let (first, last) = (value_of(first), value_of(last));
                if first > last {
                    return Err(PoolConfigError::InvertedRange {
                        pool: spec.name.clone(),
                        range,
                    });
                }
                all_ranges.push(CheckedRange {
                    family,
                    first,
                    last,
                    pool: spec.name.clone(),
                    range,
                });
            }
        }
        all_ranges.sort_by(|a, b| {
            (a.family, a.first, &a.pool, a.last).cmp(&(b.family, b.first, &b.pool, b.last))
        });
        for pair in all_ranges.windows(2) {
            let (a, b) = (&pair[0], &pair[1]);
            if a.family == b.family && b.first <= a.last {
                return Err(PoolConfigError::Overlap {
                    pool: b.pool.clone(),
                    range: b.range,
                    other_pool: a.pool.clone(),
                    other_range: a.range,
                });
            }
        }

        let mut table = PoolTable::default();
        for (id, spec) in specs.into_iter().enumerate() {
            let name: PoolName = Arc::from(spec.name.as_str());
            let spaces = Family::ALL.map(|family| {
                let numbering = Numbering::for_pool(family, spec.avoid_buggy_ips);
                FamilySpace {
                    family,
                    numbering,
                    segments: Vec::new(),
                    total: 0,
                    occupancy: Occupancy::default(),
                }
            });
            table.pools.push(Pool {
                name: name.clone(),
                auto_assign: spec.auto_assign,
                service_allocation: spec.service_allocation,
                spaces,
            });
            table.by_name.insert(name, id);
        }
        for checked in &all_ranges {
            let Some(&id) = table.by_name.get(checked.pool.as_str()) else {
                continue;
            };
            let (first, last) = checked.range.bounds();
            table.ranges.insert(first, (last, id));
            let space = table.pools[id].space_mut(checked.family);
            if let Some(span) = space.numbering.index_span(checked.first, checked.last) {
                space.segments.push(span);
            }
        }
        for pool in &mut table.pools {
            let name = pool.name.clone();
            for family in Family::ALL {
                let space = pool.space_mut(family);
                space.segments = merge_adjacent(std::mem::take(&mut space.segments));
                let mut total: u128 = 0;
                for &(first, last) in &space.segments {
                    // A segment of all 2^128 IPv6 addresses has no u128 size.
                    total = (last - first)
                        .checked_add(1)
                        .and_then(|size| total.checked_add(size))
                        .ok_or_else(|| PoolConfigError::TooLarge {
                            pool: name.to_string(),
                        })?;
                }
                space.total = total;
            }
        }
        let mut order: Vec<PoolId> = (0..table.pools.len()).collect();
        order.sort_by_cached_key(|&id| table.pools[id].order_key());
        table.auto_order = order;
        Ok(table)
    }

    pub(crate) fn id(&self, name: &str) -> Option<PoolId> {
        self.by_name.get(name).copied()
    }

    pub(crate) fn locate(&self, address: IpAddr) -> Location {
        let Some((_, &(last, pool))) = self.ranges.range(..=address).next_back() else {
            return Location::Outside;
        };
        // Ranges never overlap, so only the closest range starting at or before the address
        // can contain it. IpAddr orders every IPv4 address before every IPv6 one, so a range
        // of the other family never matches.
        if address > last {
            return Location::Outside;
        }
        let family = Family::of(address);
        match self.pools[pool]
            .space(family)
            .numbering
            .index_of(value_of(address))
        {
            Some(index) => Location::InPool { pool, index },
            None => Location::Avoided { pool },
        }
    }

    /// The pool an address belongs to, if any (avoided addresses included).
    pub(crate) fn pool_of(&self, address: IpAddr) -> Option<PoolId> {
        match self.locate(address) {
            Location::InPool { pool, .. } | Location::Avoided { pool } => Some(pool),
            Location::Outside => None,
        }
    }
}

/// Sorts segments and merges those that touch, so that a run of taken indexes never has to
/// cross a segment boundary.
fn merge_adjacent(mut segments: Vec<(u128, u128)>) -> Vec<(u128, u128)> {
    segments.sort_unstable();
    let mut merged: Vec<(u128, u128)> = Vec::with_capacity(segments.len());
    for (first, last) in segments {
        match merged.last_mut() {
            Some(previous) if previous.1.checked_add(1) == Some(first) => previous.1 = last,
            _ => merged.push((first, last)),
        }
    }
    merged
}
