//! The allocator: who holds which address, and every decision about it.
//!
//! Owns [`Allocator`]: the pool table, the Services' records, the holders of each address, the
//! index of shared addresses by sharing key, the Services waiting for a request that cannot be
//! met yet, and the bookkeeping that reports which other Services a call changed. Does not own
//! pool validation (`pool`), the sharing rules (`sharing`) or the numbering of addresses
//! (`address`), and knows nothing of Kubernetes: callers hand in plain requests and get plain
//! answers.
//!
//! # Costs
//! With `S` Services known, `A` addresses held, `r` runs of taken indexes in a pool family,
//! `s` segments (configured ranges after merging) in a pool, `P` pools and `g` addresses
//! carrying the requester's sharing key:
//! * assign a new Service: O(1) expected for the Service lookup, O(P) to find eligible pools,
//!   O(tried pools × s × log r) for the lowest free address, O(log A) to record it; plus
//!   O(g log A) for a Service with a sharing key;
//! * release: O(1) expected + O(log A + log r), plus the waiting Services it serves;
//! * stats: O(1) per pool (counts are kept, never recounted);
//! * `set_pools`, `restore`: O((S + A) log A), once per configuration change or restart.
//!
//! Memory is O(S + A + r + configured ranges): nothing is proportional to pool size.

use std::collections::{BTreeMap, BTreeSet, HashMap, VecDeque, btree_map};
use std::net::{IpAddr, Ipv4Addr, Ipv6Addr};
use std::ops::Bound;
use std::sync::Arc;

use crate::address::Family;
use crate::holders::HolderBook;
use crate::outcome::{
    AllocationError, AllocationFailure, Assigned, Assignment, AssignmentChange, Conflict,
    ConflictReason, PendingService, ReleaseError, Released, RestoreReport,
};
use crate::pool::{Location, PoolConfigError, PoolId, PoolName, PoolSpec, PoolStats, PoolTable};
use crate::selector::Labels;
use crate::service::{FamilyPolicy, PrecomputedHash, ServiceKey, ServiceRequest};
use crate::sharing::{self, SharingGroup, SharingMember, SharingRefusal, SharingTerms};

/// Deterministic IP address management for `LoadBalancer` Services.
///
/// Same calls in the same order give the same results on every node: pools are tried by
/// priority then name, addresses lowest first, and no hash-map order is involved.
#[derive(Clone, Debug, Default)]
pub struct Allocator {
    table: PoolTable,
    namespace_labels: BTreeMap<String, Labels>,
    /// A hash map for O(1) lookups on the hot path. Its iteration order never reaches a
    /// result: every walk over it sorts first. Records are boxed so that growing the table
    /// moves 24-byte entries.
    records: HashMap<ServiceKey, Box<ServiceRecord>, PrecomputedHash>,
    holders: HolderBook,
    /// Sharing key → addresses with at least one holder using that key; lets a Service with a
    /// key find the lowest shareable address without scanning the pool.
    shared: BTreeMap<String, BTreeSet<IpAddr>>,
    waiting: BTreeMap<ServiceKey, Waiting>,
    waiters: BTreeMap<WaitTopic, WaiterSet>,
    /// Topics whose waiters should be retried before the current call returns.
    woken: VecDeque<WaitTopic>,
    journal: Journal,
}

/// What the allocator remembers about a Service holding addresses.
#[derive(Clone, Debug)]
struct ServiceRecord {
    /// `[v4, v6]`.
    held: [Option<IpAddr>; 2],
    /// The family policy these addresses were chosen for.
    policy: FamilyPolicy,
    /// The pool annotation these addresses were chosen for. A request naming another pool is
    /// a user's change and may move the Service; a configuration change never does.
    requested_pool: Option<PoolName>,
    /// `None` when empty (most Services), to keep records small.
    labels: Option<Box<Labels>>,
    /// `None` for a Service without a sharing key: it holds its addresses alone.
    terms: Option<Box<SharingTerms>>,
    conflicts: Box<[Conflict]>,
}

/// The labels of a Service without labels.
static NO_LABELS: Labels = Labels::new();

impl ServiceRecord {
    fn labels(&self) -> &Labels {
        self.labels.as_deref().unwrap_or(&NO_LABELS)
    }

    /// Held addresses in status order (the policy's primary family first).
    fn addresses(&self) -> impl Iterator<Item = IpAddr> + '_ {
        let primary = self.policy.primary();
        [self.held[primary.slot()], self.held[primary.other().slot()]]
            .into_iter()
            .flatten()
    }
}

/// A Service whose request is not (fully) met yet, with the request to retry.
#[derive(Clone, Debug)]
struct Waiting {
    request: ServiceRequest,
    /// `None` for a PreferDualStack Service served with one family and waiting for the other.
    failure: Option<AllocationFailure>,
    topics: Vec<WaitTopic>,
}

/// What a waiting Service waits for. Freeing an address wakes only the Services registered on
/// its topics, never a resweep of every Service.
#[derive(Clone, Debug, PartialEq, Eq, PartialOrd, Ord)]
enum WaitTopic {
    /// A specific requested address becoming free or shareable.
    Address(IpAddr),
    /// Any address of this family in this pool becoming free or shareable.
    PoolFamily(PoolName, Family),
}

#[derive(Clone, Debug, Default)]
struct WaiterSet {
    /// Services without a sharing key: only a free address helps them.
    exclusive: BTreeSet<ServiceKey>,
    /// Services with a sharing key: a shareable address may help them too.
    sharing: BTreeSet<ServiceKey>,
}

/// Per-call record of the assignments of other Services before the call touched them.
#[derive(Clone, Debug, Default)]
struct Journal {
    /// The Service the call is about (its changes are the call's answer, not knock-on).
    subject: Option<ServiceKey>,
    /// Services a batch call is about.
    batch: BTreeSet<ServiceKey>,
    before: BTreeMap<ServiceKey, Option<Assignment>>,
}

/// The Service looking for addresses, as the search needs it.
struct Seeker<'a> {
    key: &'a ServiceKey,
    terms: Option<&'a SharingTerms>,
    labels: &'a Labels,
    /// Addresses it already holds and would like to keep, `[v4, v6]`.
    own: [Option<IpAddr>; 2],
}

/// The addresses chosen for a request, `[v4, v6]`.
type Picks = [Option<IpAddr>; 2];

/// The pools a request may draw from.
#[derive(Clone, Copy, Debug)]
enum CandidatePools {
    /// The pool annotation names this pool.
    Requested(PoolId),
    /// Every pool with autoAssign that serves the Service, in allocation order.
    Automatic,
}

/// How [`Allocator::commit`] treats the Service's previous record.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum Commit {
    /// The allocator does not know the Service yet.
    New,
    /// The request was met: its pool annotation and family policy become the ones the
    /// addresses were chosen for.
    AdoptRequest,
    /// The request was not met: the previous pool annotation and family policy stay, so that
    /// a retry still sees the user's change.
    KeepPreviousRequest,
}

impl Allocator {
    /// An allocator with no pools.
    pub fn new() -> Allocator {
        Allocator::default()
    }

    // ----- configuration -------------------------------------------------------------------

    /// Replaces the pool configuration. An invalid configuration changes nothing.
    ///
    /// No Service is moved: an address outside every pool, or in a pool that no longer serves
    /// its Service, is kept and reported as a [`Conflict`]. Waiting Services are retried, and
    /// PreferDualStack Services get their second family if their pool gained it. Returns every
    /// assignment that changed (pool name, conflicts or addresses), by Service key.
    pub fn set_pools(
        &mut self,
        pools: Vec<PoolSpec>,
    ) -> Result<Vec<AssignmentChange>, PoolConfigError> {
        let table = PoolTable::build(pools)?;
        self.begin(None, BTreeSet::new());
        let keys = self.sorted_keys(|_| true);
        for key in &keys {
            self.touch(key);
        }
        self.table = table;
        for address in self.holders.addresses() {
            occupy(&mut self.table, address);
        }
        for key in &keys {
            self.refresh_conflicts(key);
        }
        self.retry_waiting_where(|_| true);
        self.serve_woken();
        Ok(self.finish())
    }

    /// What [`Allocator::set_pools`] would change, without changing anything.
    pub fn preview_pools(
        &self,
        pools: Vec<PoolSpec>,
    ) -> Result<Vec<AssignmentChange>, PoolConfigError> {
        self.clone().set_pools(pools)
    }

    /// Sets the labels of a namespace, for pools' `namespaceSelectors`. Returns the assignments
    /// that changed (conflicts appearing or clearing, waiting Services served).
    pub fn set_namespace_labels(
        &mut self,
        namespace: &str,
        labels: Labels,
    ) -> Vec<AssignmentChange> {
        if self.namespace_labels.get(namespace) == Some(&labels) {
            return Vec::new();
        }
        self.begin(None, BTreeSet::new());
        self.namespace_labels.insert(namespace.to_owned(), labels);
        let keys = self.sorted_keys(|key| key.namespace() == namespace);
        for key in &keys {
            self.refresh_conflicts(key);
        }
        self.retry_waiting_where(|key| key.namespace() == namespace);
        self.serve_woken();
        self.finish()
    }

    // ----- Services --------------------------------------------------------------------------

    /// Gives a Service its addresses, or confirms and updates the ones it holds.
    ///
    /// Order of choice: the requested addresses; else the requested pool; else every pool
    /// with autoAssign that serves the Service, by priority (unset last), pools with a
    /// serviceAllocation before pools without, then name. Inside a pool: the address the
    /// Service already holds, else the lowest address that is free or shareable with it.
    ///
    /// A Service the allocator does not know yet first claims `current_addresses` (its status),
    /// whatever the configuration says. Known Services are never moved unless their own
    /// request changed (another requested address, another pool annotation, another family
    /// policy) and the new request can be met.
    ///
    /// The error is boxed: it carries what the Service kept and the knock-on changes.
    pub fn assign(&mut self, request: &ServiceRequest) -> Result<Assigned, Box<AllocationError>> {
        let key = request.service.clone();
        self.begin(Some(key.clone()), BTreeSet::new());
        let result = self.assign_and_track(request);
        let served_others = self.serve_woken();
        let knock_on = self.finish();
        match result {
            Ok(assignment) => {
                // Serving others can, rarely, complete this Service's second family too.
                let assignment = if served_others {
                    self.assignment(&key).unwrap_or(assignment)
                } else {
                    assignment
                };
                Ok(Assigned {
                    assignment,
                    knock_on,
                })
            }
            Err(failure) => Err(Box::new(AllocationError {
                service: key.clone(),
                failure,
                kept: self.assignment(&key),
                knock_on,
            })),
        }
    }

    /// Forgets a Service (deleted, or no longer of type LoadBalancer): frees its addresses and
    /// serves the Services waiting for them.
    pub fn release(&mut self, service: &ServiceKey) -> Result<Released, ReleaseError> {
        let record = self.records.remove(service);
        if record.is_none() && !self.waiting.contains_key(service) {
            return Err(ReleaseError::UnknownService {
                service: service.clone(),
            });
        }
        self.begin(Some(service.clone()), BTreeSet::new());
        self.stop_waiting(service);
        let mut addresses = Vec::new();
        if let Some(record) = record {
            let key_name = record.terms.as_ref().map(|terms| terms.key.as_str());
            addresses = record.addresses().collect();
            for &address in &addresses {
                self.leave(address, service, key_name);
            }
            for &address in &addresses {
                self.refresh_holders_of(address, service);
            }
        }
        self.serve_woken();
        let knock_on = self.finish();
        Ok(Released {
            service: service.clone(),
            addresses,
            knock_on,
        })
    }

    /// Rebuilds state after a restart: first every Service claims the addresses in its status
    /// (none is moved, none is given to another Service, conflicts are reported), then every
    /// request is assigned in Service-key order. The result does not depend on the order of
    /// `requests`; restoring twice changes nothing.
    pub fn restore(&mut self, requests: Vec<ServiceRequest>) -> RestoreReport {
        let mut batch: BTreeMap<ServiceKey, ServiceRequest> = BTreeMap::new();
        let mut duplicates = BTreeSet::new();
        for request in requests {
            match batch.entry(request.service.clone()) {
                btree_map::Entry::Vacant(slot) => {
                    slot.insert(request);
                }
                btree_map::Entry::Occupied(slot) => {
                    duplicates.insert(slot.key().clone());
                }
            }
        }
        self.begin(None, batch.keys().cloned().collect());
        for request in batch.values() {
            if !self.records.contains_key(&request.service) && !request.current_addresses.is_empty()
            {
                self.claim(request);
            }
        }
        let mut failures = BTreeMap::new();
        for request in batch.values() {
            if let Err(failure) = self.assign_and_track(request) {
                failures.insert(request.service.clone(), failure);
            }
        }
        self.serve_woken();
        let knock_on = self.finish();
        let mut report = RestoreReport {
            duplicates: duplicates.into_iter().collect(),
            knock_on,
            ..RestoreReport::default()
        };
        for key in batch.keys() {
            match failures.remove(key) {
                Some(failure) => report.failed.push(AllocationError {
                    service: key.clone(),
                    failure,
                    kept: self.assignment(key),
                    knock_on: Vec::new(),
                }),
                None => report.assigned.extend(self.assignment(key)),
            }
        }
        report
    }

    // ----- views -----------------------------------------------------------------------------

    /// The addresses a Service holds.
    pub fn assignment(&self, service: &ServiceKey) -> Option<Assignment> {
        self.records
            .get(service)
            .map(|record| self.view_of(service, record))
    }

    /// Every assignment, by Service key. O(S log S): meant for status resyncs and tests, not
    /// for every event.
    pub fn assignments(&self) -> Vec<Assignment> {
        self.sorted_keys(|_| true)
            .iter()
            .filter_map(|key| self.assignment(key))
            .collect()
    }

    /// Keys of the Services holding addresses that `select` accepts, sorted.
    fn sorted_keys(&self, select: impl Fn(&ServiceKey) -> bool) -> Vec<ServiceKey> {
        let mut keys: Vec<ServiceKey> = self
            .records
            .keys()
            .filter(|key| select(key))
            .cloned()
            .collect();
        keys.sort_unstable();
        keys
    }

    /// How many Services hold addresses.
    pub fn len(&self) -> usize {
        self.records.len()
    }

    /// Whether no Service holds an address.
    pub fn is_empty(&self) -> bool {
        self.records.is_empty()
    }

    /// Services whose request cannot be met yet, by key. A Service listed here may still hold
    /// addresses (see [`Allocator::assignment`]).
    pub fn pending(&self) -> Vec<PendingService> {
        self.waiting
            .iter()
            .filter_map(|(key, waiting)| {
                Some(PendingService {
                    service: key.clone(),
                    failure: waiting.failure.clone()?,
                })
            })
            .collect()
    }

    /// The Services holding an address.
    pub fn sharing_group(&self, address: IpAddr) -> Option<SharingGroup> {
        let holders = self.holders.get(address)?;
        Some(SharingGroup {
            address,
            pool: self.pool_name_of(address),
            members: holders
                .iter()
                .map(|key| SharingMember {
                    service: key.clone(),
                    terms: self.terms_of(key).cloned(),
                })
                .collect(),
        })
    }

    /// Address counts of one pool.
    pub fn pool_stats(&self, pool: &str) -> Option<PoolStats> {
        self.table.id(pool).map(|id| self.table.pools[id].stats())
    }

    /// Address counts of every pool, by name.
    pub fn stats(&self) -> Vec<PoolStats> {
        self.table.pools.iter().map(|pool| pool.stats()).collect()
    }

    /// Pool names in the order automatic allocation tries them (pools without autoAssign
    /// included, at their place).
    pub fn pool_order(&self) -> Vec<PoolName> {
        self.table
            .auto_order
            .iter()
            .map(|&id| self.table.pools[id].name.clone())
            .collect()
    }

    // ----- the decision ----------------------------------------------------------------------

    /// Assigns, then records whether and on what the Service waits.
    fn assign_and_track(
        &mut self,
        request: &ServiceRequest,
    ) -> Result<Assignment, AllocationFailure> {
        let result = self.assign_untracked(request);
        self.update_waiting(request, result.as_ref().err());
        result
    }

    fn assign_untracked(
        &mut self,
        request: &ServiceRequest,
    ) -> Result<Assignment, AllocationFailure> {
        let key = &request.service;
        if !self.records.contains_key(key) && !request.current_addresses.is_empty() {
            self.claim(request);
        }
        // Checked after claiming: the status addresses of a malformed request are still kept,
        // so that nobody else gets them.
        request.validate().map_err(AllocationFailure::Request)?;
        let terms = SharingTerms::of(request);
        let Some(record) = self.records.get(key) else {
            let seeker = Seeker {
                key,
                terms: terms.as_ref(),
                labels: &request.labels,
                own: [None, None],
            };
            let picks = self.plan(request, &seeker)?;
            return Ok(self.commit(request, terms, picks, Commit::New));
        };
        let own = record.held;
        let policy_changed = record.policy != request.family_policy;
        let pool_request_changed =
            record.requested_pool.as_deref() != request.effective_requested_pool();
        let policy = request.family_policy;
        let requested = request.requested_by_family();
        let kept: Picks =
            Family::ALL.map(|family| own[family.slot()].filter(|_| policy.serves(family)));

        // The user asked for something the held addresses are not.
        let mut wants_move = Family::ALL
            .iter()
            .any(|family| requested[family.slot()].is_some_and(|r| Some(r) != own[family.slot()]));
        if pool_request_changed
            && let Some(name) = request.effective_requested_pool()
            && self.pool_name_of_picks(&kept).as_deref() != Some(name)
        {
            wants_move = true;
        }
        if kept == [None, None] {
            wants_move = true;
        }

        let seeker = Seeker {
            key,
            terms: terms.as_ref(),
            labels: &request.labels,
            own: kept,
        };
        if !wants_move {
            match self.complete_in_place(policy, &seeker) {
                Ok(picks) => return Ok(self.commit(request, terms, picks, Commit::AdoptRequest)),
                Err(failure) if !policy_changed => {
                    self.commit(request, terms, own, Commit::KeepPreviousRequest);
                    return Err(failure);
                }
                // The user changed the family policy and the current pool cannot follow:
                // a move to a pool that can is what they asked for.
                Err(_) => {}
            }
        }
        match self.plan(request, &seeker) {
            Ok(picks) => Ok(self.commit(request, terms, picks, Commit::AdoptRequest)),
            Err(failure) => {
                self.commit(request, terms, own, Commit::KeepPreviousRequest);
                Err(failure)
            }
        }
    }

    /// Keeps the held addresses and adds the families the policy still needs, from the same
    /// pool. Fails only if a required family cannot be added.
    fn complete_in_place(
        &self,
        policy: FamilyPolicy,
        seeker: &Seeker<'_>,
    ) -> Result<Picks, AllocationFailure> {
        let mut picks = seeker.own;
        let pool = picks
            .iter()
            .flatten()
            .find_map(|&address| match self.table.locate(address) {
                Location::InPool { pool, .. } => Some(pool),
                _ => None,
            });
        for family in policy.families() {
            if picks[family.slot()].is_some() {
                continue;
            }
            let found = pool.and_then(|pool| self.find_in_pool(pool, family, seeker));
            match found {
                Some(address) => picks[family.slot()] = Some(address),
                None if matches!(policy, FamilyPolicy::RequireDualStack { .. }) => {
                    return Err(match pool {
                        Some(pool) => self.shortage(&[pool], &[family], true),
                        None => AllocationFailure::NoPoolHasFamily {
                            families: vec![family],
                            pools: Vec::new(),
                        },
                    });
                }
                None => {}
            }
        }
        Ok(picks)
    }

    /// Chooses addresses for a request from scratch (keeping the seeker's own addresses where
    /// the chosen pool contains them).
    fn plan(
        &self,
        request: &ServiceRequest,
        seeker: &Seeker<'_>,
    ) -> Result<Picks, AllocationFailure> {
        if request.requested_addresses.is_empty() {
            self.plan_automatic(request, seeker)
        } else {
            self.plan_requested(request, seeker)
        }
    }

    fn plan_requested(
        &self,
        request: &ServiceRequest,
        seeker: &Seeker<'_>,
    ) -> Result<Picks, AllocationFailure> {
        let mut chosen: Option<(PoolId, IpAddr)> = None;
        for &address in &request.requested_addresses {
            let here = match self.table.locate(address) {
                Location::Outside => {
                    return Err(AllocationFailure::RequestedAddressNotInPool { address });
                }
                Location::Avoided { pool } => {
                    return Err(AllocationFailure::RequestedAddressAvoided {
                        address,
                        pool: self.name(pool),
                    });
                }
                Location::InPool { pool, .. } => pool,
            };
            match chosen {
                Some((pool, first)) if pool != here => {
                    return Err(AllocationFailure::RequestedAddressesInDifferentPools {
                        first,
                        first_pool: self.name(pool),
                        second: address,
                        second_pool: self.name(here),
                    });
                }
                Some(_) => {}
                None => chosen = Some((here, address)),
            }
        }
        let Some((pool, first)) = chosen else {
            return self.plan_automatic(request, seeker);
        };
        if let Some(requested) = request.effective_requested_pool()
            && *self.table.pools[pool].name != *requested
        {
            return Err(AllocationFailure::RequestedAddressOutsideRequestedPool {
                address: first,
                requested: requested.to_owned(),
                actual: self.name(pool),
            });
        }
        // autoAssign does not matter for an explicit request; serviceAllocation does.
        if let Some(refusal) = self.refusal(pool, seeker) {
            return Err(AllocationFailure::PoolRefuses {
                pool: self.name(pool),
                refusal,
            });
        }
        for &address in &request.requested_addresses {
            self.admits(address, seeker)
                .map_err(|refusal| AllocationFailure::Sharing { address, refusal })?;
        }
        let mut picks = request.requested_by_family();
        for family in request.family_policy.families() {
            if picks[family.slot()].is_some() {
                continue;
            }
            match self.find_in_pool(pool, family, seeker) {
                Some(address) => picks[family.slot()] = Some(address),
                None if matches!(request.family_policy, FamilyPolicy::RequireDualStack { .. }) => {
                    return Err(self.shortage(&[pool], &[family], true));
                }
                None => {}
            }
        }
        Ok(picks)
    }

    fn plan_automatic(
        &self,
        request: &ServiceRequest,
        seeker: &Seeker<'_>,
    ) -> Result<Picks, AllocationFailure> {
        let candidates = self.candidate_pools(request, seeker)?;
        let policy = request.family_policy;
        let primary = policy.primary();
        let secondary = primary.other();
        let mut picks: Picks = [None, None];
        match policy {
            FamilyPolicy::SingleStack(family) => {
                for pool in self.pools_in(candidates, seeker) {
                    if let Some(address) = self.find_in_pool(pool, family, seeker) {
                        picks[family.slot()] = Some(address);
                        return Ok(picks);
                    }
                }
                Err(self.failure_in(candidates, seeker, &[family], true))
            }
            FamilyPolicy::RequireDualStack { .. } => {
                for pool in self.pools_in(candidates, seeker) {
                    let first = self.find_in_pool(pool, primary, seeker);
                    let second = first.and_then(|_| self.find_in_pool(pool, secondary, seeker));
                    if let (Some(first), Some(second)) = (first, second) {
                        picks[primary.slot()] = Some(first);
                        picks[secondary.slot()] = Some(second);
                        return Ok(picks);
                    }
                }
                Err(self.failure_in(candidates, seeker, &[primary, secondary], true))
            }
            FamilyPolicy::PreferDualStack { .. } => {
                // MetalLB's findBestPoolForService: the first pool with both families wins;
                // otherwise the first pool with the primary family; otherwise the first pool
                // with the other family.
                let mut primary_only: Option<IpAddr> = None;
                let mut secondary_only: Option<IpAddr> = None;
                for pool in self.pools_in(candidates, seeker) {
                    let first = self.find_in_pool(pool, primary, seeker);
                    let second = self.find_in_pool(pool, secondary, seeker);
                    match (first, second) {
                        (Some(first), Some(second)) => {
                            picks[primary.slot()] = Some(first);
                            picks[secondary.slot()] = Some(second);
                            return Ok(picks);
                        }
                        (Some(first), None) => {
                            primary_only.get_or_insert(first);
                        }
                        (None, Some(second)) => {
                            secondary_only.get_or_insert(second);
                        }
                        (None, None) => {}
                    }
                }
                if let Some(first) = primary_only {
                    picks[primary.slot()] = Some(first);
                    return Ok(picks);
                }
                if let Some(second) = secondary_only {
                    picks[secondary.slot()] = Some(second);
                    return Ok(picks);
                }
                Err(self.failure_in(candidates, seeker, &[primary, secondary], false))
            }
        }
    }

    /// Which pools a request may get addresses from: the requested one, or every eligible one.
    fn candidate_pools(
        &self,
        request: &ServiceRequest,
        seeker: &Seeker<'_>,
    ) -> Result<CandidatePools, AllocationFailure> {
        if let Some(name) = request.effective_requested_pool() {
            let pool = self
                .table
                .id(name)
                .ok_or_else(|| AllocationFailure::UnknownPool {
                    pool: name.to_owned(),
                })?;
            // The annotation overrides autoAssign, not serviceAllocation.
            if let Some(refusal) = self.refusal(pool, seeker) {
                return Err(AllocationFailure::PoolRefuses {
                    pool: self.name(pool),
                    refusal,
                });
            }
            return Ok(CandidatePools::Requested(pool));
        }
        Ok(CandidatePools::Automatic)
    }

    /// The candidate pools in the order to try them (no allocation: this is the hot path).
    fn pools_in<'s>(
        &'s self,
        candidates: CandidatePools,
        seeker: &'s Seeker<'_>,
    ) -> impl Iterator<Item = PoolId> + 's {
        let (requested, automatic) = match candidates {
            CandidatePools::Requested(pool) => (Some(pool), None),
            CandidatePools::Automatic => (None, Some(self.table.auto_order.iter().copied())),
        };
        requested
            .into_iter()
            .chain(automatic.into_iter().flatten().filter(move |&pool| {
                self.table.pools[pool].auto_assign && self.refusal(pool, seeker).is_none()
            }))
    }

    /// Why no candidate pool could serve the families.
    fn failure_in(
        &self,
        candidates: CandidatePools,
        seeker: &Seeker<'_>,
        families: &[Family],
        need_all: bool,
    ) -> AllocationFailure {
        let pools: Vec<PoolId> = self.pools_in(candidates, seeker).collect();
        if pools.is_empty() {
            return AllocationFailure::NoEligiblePool;
        }
        self.shortage(&pools, families, need_all)
    }

    /// The address a seeker should get from one family of one pool: the one it holds there if
    /// it may keep it, else the lowest address that is free or shareable with it (MetalLB's
    /// first-fit scan order, found without scanning).
    fn find_in_pool(&self, pool: PoolId, family: Family, seeker: &Seeker<'_>) -> Option<IpAddr> {
        let space = self.table.pools[pool].space(family);
        if !space.is_configured() {
            return None;
        }
        if let Some(own) = seeker.own[family.slot()]
            && matches!(self.table.locate(own), Location::InPool { pool: p, .. } if p == pool)
            && self.admits(own, seeker).is_ok()
        {
            return Some(own);
        }
        let free = space.lowest_free();
        let shareable = seeker
            .terms
            .and_then(|terms| self.lowest_shareable(pool, family, &terms.key, seeker, free));
        match (free, shareable) {
            (Some(free), Some(shareable)) => Some(free.min(shareable)),
            (free, None) => free,
            (None, shareable) => shareable,
        }
    }

    /// The lowest address of the pool family, below `bound`, that carries `key` and that the
    /// seeker may join. O(addresses carrying `key`).
    fn lowest_shareable(
        &self,
        pool: PoolId,
        family: Family,
        key: &str,
        seeker: &Seeker<'_>,
        bound: Option<IpAddr>,
    ) -> Option<IpAddr> {
        let addresses = self.shared.get(key)?;
        let (low, high) = family_bounds(family);
        for &address in addresses.range(low..=high) {
            if bound.is_some_and(|bound| address >= bound) {
                break;
            }
            if matches!(self.table.locate(address), Location::InPool { pool: p, .. } if p == pool)
                && self.admits(address, seeker).is_ok()
            {
                return Some(address);
            }
        }
        None
    }

    /// Whether the seeker may hold `address` together with its current holders.
    fn admits(&self, address: IpAddr, seeker: &Seeker<'_>) -> Result<(), SharingRefusal> {
        let Some(holders) = self.holders.get(address) else {
            return Ok(());
        };
        for holder in holders.iter().filter(|holder| *holder != seeker.key) {
            sharing::check(seeker.terms, holder, self.terms_of(holder))?;
        }
        Ok(())
    }

    fn refusal(&self, pool: PoolId, seeker: &Seeker<'_>) -> Option<crate::pool::PoolRefusal> {
        self.table.pools[pool].refusal(seeker.key, seeker.labels, &self.namespace_labels)
    }

    /// Typed exhaustion: `NoPoolHasFamily` when no pool tried has the families configured
    /// (a configuration problem), `Exhausted` when they are all full.
    fn shortage(&self, pools: &[PoolId], families: &[Family], need_all: bool) -> AllocationFailure {
        let configured = pools.iter().any(|&pool| {
            let has = |family: &Family| self.table.pools[pool].space(*family).is_configured();
            if need_all {
                families.iter().all(has)
            } else {
                families.iter().any(has)
            }
        });
        let families = families.to_vec();
        let pools = pools.iter().map(|&pool| self.name(pool)).collect();
        if configured {
            AllocationFailure::Exhausted { families, pools }
        } else {
            AllocationFailure::NoPoolHasFamily { families, pools }
        }
    }

    // ----- state changes ---------------------------------------------------------------------

    /// Takes the addresses of a Service's status, whatever the configuration says.
    fn claim(&mut self, request: &ServiceRequest) {
        let mut held: Picks = [None, None];
        // A status with two addresses of one family is malformed; the first one is kept and
        // the controller rewrites the status from the assignment.
        for &address in &request.current_addresses {
            held[Family::of(address).slot()].get_or_insert(address);
        }
        self.commit(request, SharingTerms::of(request), held, Commit::New);
    }

    /// Makes `held` the Service's addresses and stores its current identity (labels, sharing
    /// terms).
    fn commit(
        &mut self,
        request: &ServiceRequest,
        terms: Option<SharingTerms>,
        held: Picks,
        mode: Commit,
    ) -> Assignment {
        let key = &request.service;
        self.touch(key);
        let old = match mode {
            Commit::New => None,
            Commit::AdoptRequest | Commit::KeepPreviousRequest => self.records.remove(key),
        };
        let old_held = old.as_ref().map_or([None, None], |record| record.held);
        let old_terms = old
            .as_ref()
            .and_then(|record| record.terms.as_deref().cloned());
        let old_key = old_terms.as_ref().map(|terms| terms.key.clone());
        let new_key = terms.as_ref().map(|terms| terms.key.clone());
        let terms_changed = old.is_some() && old_terms != terms;
        // Addresses this Service now holds alone; they need no look at co-holders.
        let mut alone = [false; 2];
        for family in Family::ALL {
            let (before, after) = (old_held[family.slot()], held[family.slot()]);
            if before == after {
                if let Some(address) = after
                    && terms_changed
                {
                    self.rekey(address, key, old_key.as_deref(), new_key.as_deref());
                    // Fewer ports or another key may let a waiting Service share.
                    self.wake(address);
                }
                continue;
            }
            if let Some(address) = before {
                self.leave(address, key, old_key.as_deref());
            }
            if let Some(address) = after {
                alone[family.slot()] = self.join(address, key, new_key.as_deref());
            }
        }
        let (policy, requested_pool) = match old {
            Some(old) if mode == Commit::KeepPreviousRequest => (old.policy, old.requested_pool),
            _ => (
                request.family_policy,
                request.effective_requested_pool().map(Arc::from),
            ),
        };
        let mut record = ServiceRecord {
            held,
            policy,
            requested_pool,
            labels: (!request.labels.is_empty()).then(|| Box::new(request.labels.clone())),
            terms: terms.map(Box::new),
            conflicts: Box::default(),
        };
        record.conflicts = self.conflicts_for(key, &record, alone).into_boxed_slice();
        let view = self.view_of(key, &record);
        self.records.insert(key.clone(), Box::new(record));
        for family in Family::ALL {
            let slot = family.slot();
            if old_held[slot] != held[slot]
                && let Some(address) = old_held[slot]
            {
                self.refresh_holders_of(address, key);
            }
            if !alone[slot]
                && let Some(address) = held[slot]
            {
                self.refresh_holders_of(address, key);
            }
        }
        view
    }

    /// Adds a holder to an address; returns true if it was free (the holder is alone).
    fn join(&mut self, address: IpAddr, key: &ServiceKey, sharing_key: Option<&str>) -> bool {
        let was_free = self.holders.join(address, key);
        if was_free {
            occupy(&mut self.table, address);
        }
        if let Some(sharing_key) = sharing_key {
            self.shared
                .entry(sharing_key.to_owned())
                .or_default()
                .insert(address);
        }
        was_free
    }

    /// Removes a holder from an address (its record must already be out of `records`, or
    /// carry the key it leaves with) and wakes whoever waits for the address.
    fn leave(&mut self, address: IpAddr, key: &ServiceKey, sharing_key: Option<&str>) {
        if self.holders.leave(address, key) {
            vacate(&mut self.table, address);
        }
        if let Some(sharing_key) = sharing_key {
            self.unshare_unless_used(address, sharing_key, key);
        }
        self.wake(address);
    }

    /// Moves an address from one sharing key's index to another's for a holder that stays.
    fn rekey(&mut self, address: IpAddr, key: &ServiceKey, old: Option<&str>, new: Option<&str>) {
        if old == new {
            return;
        }
        if let Some(old) = old {
            self.unshare_unless_used(address, old, key);
        }
        if let Some(new) = new {
            self.shared
                .entry(new.to_owned())
                .or_default()
                .insert(address);
        }
    }

    /// Drops `address` from `sharing_key`'s index unless a holder other than `leaving` still
    /// uses that key.
    fn unshare_unless_used(&mut self, address: IpAddr, sharing_key: &str, leaving: &ServiceKey) {
        let still_used = self.holders.get(address).is_some_and(|holders| {
            holders.iter().any(|holder| {
                holder != leaving
                    && self
                        .terms_of(holder)
                        .is_some_and(|terms| terms.key == sharing_key)
            })
        });
        if still_used {
            return;
        }
        if let Some(addresses) = self.shared.get_mut(sharing_key) {
            addresses.remove(&address);
            if addresses.is_empty() {
                self.shared.remove(sharing_key);
            }
        }
    }

    /// Recomputes the conflicts of every holder of `address` except `except`.
    fn refresh_holders_of(&mut self, address: IpAddr, except: &ServiceKey) {
        let Some(holders) = self.holders.get(address) else {
            return;
        };
        if holders.is_only(except) {
            return;
        }
        let others: Vec<ServiceKey> = holders.iter().filter(|h| *h != except).cloned().collect();
        for other in &others {
            self.refresh_conflicts(other);
        }
    }

    fn refresh_conflicts(&mut self, key: &ServiceKey) {
        let Some(record) = self.records.get(key) else {
            return;
        };
        let conflicts = self.conflicts_for(key, record, [false; 2]);
        if *record.conflicts == *conflicts {
            return;
        }
        self.touch(key);
        if let Some(record) = self.records.get_mut(key) {
            record.conflicts = conflicts.into_boxed_slice();
        }
    }

    /// Why the current configuration would not hand the Service the addresses it holds.
    /// `alone` marks, per family, an address known to have no other holder.
    fn conflicts_for(
        &self,
        key: &ServiceKey,
        record: &ServiceRecord,
        alone: [bool; 2],
    ) -> Vec<Conflict> {
        let mut conflicts = Vec::new();
        let mut first: Option<(PoolId, IpAddr)> = None;
        for address in record.addresses() {
            let mut report = |reason| conflicts.push(Conflict { address, reason });
            match self.table.locate(address) {
                Location::Outside => report(ConflictReason::NotInAnyPool),
                Location::Avoided { pool } => report(ConflictReason::AvoidedBuggyAddress {
                    pool: self.name(pool),
                }),
                Location::InPool { pool, .. } => {
                    let name = self.name(pool);
                    if let Some(refusal) =
                        self.table.pools[pool].refusal(key, record.labels(), &self.namespace_labels)
                    {
                        report(ConflictReason::PoolRefuses {
                            pool: name.clone(),
                            refusal,
                        });
                    }
                    if let Some(requested) = &record.requested_pool
                        && *requested != name
                    {
                        report(ConflictReason::NotInRequestedPool {
                            requested: requested.clone(),
                            actual: name,
                        });
                    }
                    match first {
                        None => first = Some((pool, address)),
                        Some((other_pool, other)) if other_pool != pool => {
                            report(ConflictReason::SplitAcrossPools { other });
                        }
                        Some(_) => {}
                    }
                }
            }
            if alone[Family::of(address).slot()] {
                continue;
            }
            if let Some(holders) = self.holders.get(address) {
                for holder in holders.iter().filter(|holder| *holder != key) {
                    if let Err(refusal) =
                        sharing::check(record.terms.as_deref(), holder, self.terms_of(holder))
                    {
                        conflicts.push(Conflict {
                            address,
                            reason: ConflictReason::Sharing(refusal),
                        });
                    }
                }
            }
        }
        conflicts
    }

    // ----- waiting ---------------------------------------------------------------------------

    /// Records on what a Service waits after an assignment attempt.
    fn update_waiting(&mut self, request: &ServiceRequest, failure: Option<&AllocationFailure>) {
        let key = &request.service;
        self.stop_waiting(key);
        let (failure, topics) = match failure {
            Some(failure) => (Some(failure.clone()), self.topics_for(failure)),
            None => {
                // Only a PreferDualStack Service can be served with less than it wants.
                if !matches!(request.family_policy, FamilyPolicy::PreferDualStack { .. }) {
                    return;
                }
                let Some(record) = self.records.get(key) else {
                    return;
                };
                let Some(missing) = Family::ALL
                    .into_iter()
                    .find(|family| record.held[family.slot()].is_none())
                else {
                    return;
                };
                let pool = record.addresses().find_map(|a| self.table.pool_of(a));
                let topics = pool
                    .filter(|&pool| self.table.pools[pool].space(missing).is_configured())
                    .map(|pool| WaitTopic::PoolFamily(self.name(pool), missing))
                    .into_iter()
                    .collect();
                (None, topics)
            }
        };
        let shares = request.effective_sharing_key().is_some();
        for topic in &topics {
            let set = self.waiters.entry(topic.clone()).or_default();
            if shares {
                set.sharing.insert(key.clone());
            } else {
                set.exclusive.insert(key.clone());
            }
        }
        self.waiting.insert(
            key.clone(),
            Waiting {
                request: request.clone(),
                failure,
                topics,
            },
        );
    }

    /// What must change for a failed request to succeed. Configuration problems have no topic:
    /// `set_pools` and `set_namespace_labels` retry every waiting Service they concern.
    fn topics_for(&self, failure: &AllocationFailure) -> Vec<WaitTopic> {
        match failure {
            AllocationFailure::Exhausted { families, pools } => pools
                .iter()
                .flat_map(|pool| {
                    families
                        .iter()
                        .map(|&family| WaitTopic::PoolFamily(pool.clone(), family))
                })
                .collect(),
            AllocationFailure::Sharing { address, .. } => vec![WaitTopic::Address(*address)],
            _ => Vec::new(),
        }
    }

    fn stop_waiting(&mut self, key: &ServiceKey) {
        let Some(waiting) = self.waiting.remove(key) else {
            return;
        };
        for topic in waiting.topics {
            if let btree_map::Entry::Occupied(mut slot) = self.waiters.entry(topic) {
                let set = slot.get_mut();
                set.exclusive.remove(key);
                set.sharing.remove(key);
                if set.exclusive.is_empty() && set.sharing.is_empty() {
                    slot.remove();
                }
            }
        }
    }

    /// Queues the topics an address change may unblock.
    fn wake(&mut self, address: IpAddr) {
        if self.waiters.is_empty() {
            return;
        }
        self.woken.push_back(WaitTopic::Address(address));
        if let Some(pool) = self.table.pool_of(address) {
            self.woken
                .push_back(WaitTopic::PoolFamily(self.name(pool), Family::of(address)));
        }
    }

    /// Retries the Services waiting on woken topics. Services without a sharing key are tried
    /// in key order only while the pool family has a free address, so one freed address costs
    /// one successful retry, not a retry of every waiting Service. Returns whether anything was
    /// retried.
    fn serve_woken(&mut self) -> bool {
        let mut retried = false;
        while let Some(topic) = self.woken.pop_front() {
            for sharing in [false, true] {
                let mut after: Option<ServiceKey> = None;
                loop {
                    if !sharing
                        && let WaitTopic::PoolFamily(pool, family) = &topic
                        && !self.has_free(pool, *family)
                    {
                        break;
                    }
                    let Some(next) = self.next_waiter(&topic, sharing, after.as_ref()) else {
                        break;
                    };
                    self.retry(&next);
                    retried = true;
                    after = Some(next);
                }
            }
        }
        retried
    }

    fn next_waiter(
        &self,
        topic: &WaitTopic,
        sharing: bool,
        after: Option<&ServiceKey>,
    ) -> Option<ServiceKey> {
        let set = self.waiters.get(topic)?;
        let keys = if sharing {
            &set.sharing
        } else {
            &set.exclusive
        };
        let lower = after.map_or(Bound::Unbounded, Bound::Excluded);
        keys.range((lower, Bound::Unbounded)).next().cloned()
    }

    fn has_free(&self, pool: &str, family: Family) -> bool {
        self.table
            .id(pool)
            .is_some_and(|id| self.table.pools[id].space(family).lowest_free().is_some())
    }

    fn retry(&mut self, key: &ServiceKey) {
        let Some(request) = self.waiting.get(key).map(|waiting| waiting.request.clone()) else {
            return;
        };
        self.touch(key);
        // The outcome is recorded (assignment or waiting); the change shows in the journal.
        let _ = self.assign_and_track(&request);
    }

    fn retry_waiting_where(&mut self, select: impl Fn(&ServiceKey) -> bool) {
        let keys: Vec<ServiceKey> = self
            .waiting
            .keys()
            .filter(|key| select(key))
            .cloned()
            .collect();
        for key in &keys {
            self.retry(key);
        }
    }

    // ----- change reporting ------------------------------------------------------------------

    fn begin(&mut self, subject: Option<ServiceKey>, batch: BTreeSet<ServiceKey>) {
        self.journal = Journal {
            subject,
            batch,
            before: BTreeMap::new(),
        };
    }

    /// Remembers a Service's assignment before the current call changes it.
    fn touch(&mut self, key: &ServiceKey) {
        if self.journal.subject.as_ref() == Some(key)
            || self.journal.batch.contains(key)
            || self.journal.before.contains_key(key)
        {
            return;
        }
        let before = self.assignment(key);
        self.journal.before.insert(key.clone(), before);
    }

    /// The changes to Services other than the call's subjects, by key.
    fn finish(&mut self) -> Vec<AssignmentChange> {
        let journal = std::mem::take(&mut self.journal);
        journal
            .before
            .into_iter()
            .filter_map(|(service, before)| {
                let after = self.assignment(&service);
                (before != after).then_some(AssignmentChange {
                    service,
                    before,
                    after,
                })
            })
            .collect()
    }

    // ----- small lookups ---------------------------------------------------------------------

    fn name(&self, pool: PoolId) -> PoolName {
        self.table.pools[pool].name.clone()
    }

    fn pool_name_of(&self, address: IpAddr) -> Option<PoolName> {
        self.table.pool_of(address).map(|pool| self.name(pool))
    }

    fn pool_name_of_picks(&self, picks: &Picks) -> Option<PoolName> {
        picks
            .iter()
            .flatten()
            .find_map(|&address| self.pool_name_of(address))
    }

    fn terms_of(&self, key: &ServiceKey) -> Option<&SharingTerms> {
        self.records
            .get(key)
            .and_then(|record| record.terms.as_deref())
    }

    fn view_of(&self, key: &ServiceKey, record: &ServiceRecord) -> Assignment {
        let addresses: Vec<IpAddr> = record.addresses().collect();
        Assignment {
            service: key.clone(),
            pool: addresses.first().and_then(|&a| self.pool_name_of(a)),
            addresses,
            conflicts: record.conflicts.to_vec(),
        }
    }
}

/// Marks an address taken in its pool's occupancy, if it is in a pool.
fn occupy(table: &mut PoolTable, address: IpAddr) {
    if let Location::InPool { pool, index } = table.locate(address) {
        table.pools[pool]
            .space_mut(Family::of(address))
            .occupancy
            .insert(index);
    }
}

/// Marks an address free in its pool's occupancy, if it is in a pool.
fn vacate(table: &mut PoolTable, address: IpAddr) {
    if let Location::InPool { pool, index } = table.locate(address) {
        table.pools[pool]
            .space_mut(Family::of(address))
            .occupancy
            .remove(index);
    }
}

fn family_bounds(family: Family) -> (IpAddr, IpAddr) {
    match family {
        Family::V4 => (
            IpAddr::V4(Ipv4Addr::UNSPECIFIED),
            IpAddr::V4(Ipv4Addr::BROADCAST),
        ),
        Family::V6 => (
            IpAddr::V6(Ipv6Addr::UNSPECIFIED),
            IpAddr::V6(Ipv6Addr::from(u128::MAX)),
        ),
    }
}
