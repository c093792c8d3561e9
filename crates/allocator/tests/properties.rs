//! Property tests: invariants that must hold after any sequence of operations.
//!
//! * no address is held by two Services that may not share it, unless both report the conflict;
//! * every address a Service holds without a conflict is inside a pool that serves it, and all
//!   of a Service's addresses come from one pool;
//! * per-pool statistics equal a recount;
//! * restore is idempotent, and restoring from the status the allocator wrote reproduces it;
//! * results do not depend on the order of the input (restore batches, pool lists, ranges).
//!
//! The checks re-derive everything from the inputs with code independent of the allocator's.

// Helpers outside #[test] functions panic on purpose: a panic is a failed spec.
#![allow(clippy::unwrap_used, clippy::expect_used)]

use std::collections::{BTreeMap, BTreeSet};
use std::net::IpAddr;

use ferrolb_allocator::{
    AddressRange, Allocator, ConflictReason, Family, FamilyPolicy, LabelSelector, Labels, PoolSpec,
    ServiceAllocation, ServiceKey, ServicePort, ServiceRequest, SharingTerms, TrafficPolicy,
};
use proptest::prelude::*;

/// Disjoint ranges the generated pools are made of; small so that pools fill up, and crossing
/// a .255/.0 boundary so that avoidBuggyIPs matters.
const RANGES: [&str; 6] = [
    "10.0.0.0/29",
    "10.0.0.250-10.0.1.5",
    "10.0.2.0/30",
    "2001:db8::/126",
    "2001:db8:1::/127",
    "2001:db8:2::5-2001:db8:2::7",
];

/// Addresses that generated requests may ask for.
const CANDIDATES: [&str; 8] = [
    "10.0.0.0",
    "10.0.0.3",
    "10.0.0.255",
    "10.0.1.1",
    "10.0.2.2",
    "2001:db8::1",
    "2001:db8:1::",
    "192.0.2.1",
];

const POOL_NAMES: [&str; 3] = ["a", "b", "c"];
const NAMESPACES: [&str; 2] = ["ns1", "ns2"];

fn ip(text: &str) -> IpAddr {
    text.parse().unwrap()
}

fn pools_strategy() -> impl Strategy<Value = Vec<PoolSpec>> {
    let range_owner = proptest::collection::vec(0usize..4, RANGES.len());
    let settings = proptest::collection::vec(
        (
            any::<bool>(),
            prop_oneof![4 => Just(true), 1 => Just(false)],
            prop_oneof![
                2 => Just(None),
                1 => (prop_oneof![Just(None), (-2i32..3).prop_map(Some)], any::<bool>(), any::<bool>())
                    .prop_map(|(priority, only_ns1, only_web)| Some(ServiceAllocation {
                        priority,
                        namespaces: if only_ns1 { vec!["ns1".to_owned()] } else { vec![] },
                        namespace_selectors: vec![],
                        service_selectors: if only_web {
                            vec![LabelSelector::with_labels([("tier", "web")])]
                        } else {
                            vec![]
                        },
                    })),
            ],
        ),
        POOL_NAMES.len(),
    );
    (range_owner, settings).prop_map(|(owners, settings)| {
        POOL_NAMES
            .iter()
            .enumerate()
            .filter_map(|(index, name)| {
                let addresses: Vec<AddressRange> = RANGES
                    .iter()
                    .zip(&owners)
                    .filter(|(_, owner)| **owner == index)
                    .map(|(range, _)| range.parse().unwrap())
                    .collect();
                if addresses.is_empty() {
                    return None;
                }
                let (avoid_buggy_ips, auto_assign, service_allocation) = settings[index].clone();
                Some(PoolSpec {
                    name: (*name).to_owned(),
                    addresses,
                    auto_assign,
                    avoid_buggy_ips,
                    service_allocation,
                })
            })
            .collect()
    })
}

fn family_policy_strategy() -> impl Strategy<Value = FamilyPolicy> {
    let family = prop_oneof![Just(Family::V4), Just(Family::V6)];
    prop_oneof![
        3 => family.clone().prop_map(FamilyPolicy::SingleStack),
        1 => family.clone().prop_map(|primary| FamilyPolicy::PreferDualStack { primary }),
        1 => family.prop_map(|primary| FamilyPolicy::RequireDualStack { primary }),
    ]
}

fn request_strategy() -> impl Strategy<Value = ServiceRequest> {
    (
        0usize..6,
        0usize..2,
        any::<bool>(),
        family_policy_strategy(),
        prop_oneof![6 => Just(None), 1 => (0usize..4).prop_map(Some)],
        prop_oneof![6 => Just(None), 1 => (0usize..CANDIDATES.len()).prop_map(Some)],
        prop_oneof![2 => Just(None), 1 => Just(Some("k1")), 1 => Just(Some("k2"))],
        proptest::collection::btree_set(prop_oneof![Just(80u16), Just(443u16)], 0..3),
        prop_oneof![3 => Just(None), 1 => Just(Some("x")), 1 => Just(Some("y"))],
    )
        .prop_map(
            |(name, namespace, web, policy, pool, address, sharing_key, ports, local)| {
                let service = ServiceKey::new(NAMESPACES[namespace], format!("s{name}"));
                let mut request = ServiceRequest::new(service, policy);
                if web {
                    request.labels = [("tier".to_owned(), "web".to_owned())].into();
                }
                // Pool "d" does not exist.
                request.requested_pool = pool.map(|p| ["a", "b", "c", "d"][p].to_owned());
                request.requested_addresses =
                    address.map(|a| ip(CANDIDATES[a])).into_iter().collect();
                request.sharing_key = sharing_key.map(str::to_owned);
                request.ports = ports.into_iter().map(ServicePort::tcp).collect();
                if let Some(app) = local {
                    request.traffic_policy = TrafficPolicy::Local {
                        selector: [("app".to_owned(), app.to_owned())].into(),
                    };
                }
                request
            },
        )
}

#[derive(Clone, Debug)]
enum Operation {
    Assign(ServiceRequest),
    Release(usize, usize),
    SetPools(Vec<PoolSpec>),
}

fn operations_strategy() -> impl Strategy<Value = Vec<Operation>> {
    proptest::collection::vec(
        prop_oneof![
            8 => request_strategy().prop_map(Operation::Assign),
            3 => (0usize..6, 0usize..2).prop_map(|(name, ns)| Operation::Release(name, ns)),
            1 => pools_strategy().prop_map(Operation::SetPools),
        ],
        1..30,
    )
}

// ----- independent re-derivations --------------------------------------------------------------

fn value(address: IpAddr) -> u128 {
    match address {
        IpAddr::V4(v4) => u128::from(u32::from(v4)),
        IpAddr::V6(v6) => u128::from(v6),
    }
}

fn buggy(address: IpAddr) -> bool {
    matches!(address, IpAddr::V4(v4) if matches!(v4.octets()[3], 0 | 255))
}

/// The pool that would hand out `address`, if any.
fn pool_serving_address(pools: &[PoolSpec], address: IpAddr) -> Option<&PoolSpec> {
    pools.iter().find(|pool| {
        !(pool.avoid_buggy_ips && buggy(address))
            && pool.addresses.iter().any(|range| {
                let (first, last) = range.bounds();
                Family::of(first) == Family::of(address)
                    && value(first) <= value(address)
                    && value(address) <= value(last)
            })
    })
}

fn pool_serves(pool: &PoolSpec, service: &ServiceKey, labels: &Labels) -> bool {
    let Some(allocation) = &pool.service_allocation else {
        return true;
    };
    let namespace_ok = allocation.namespaces.is_empty()
        || allocation
            .namespaces
            .iter()
            .any(|n| n == service.namespace());
    let labels_ok = allocation.service_selectors.is_empty()
        || allocation
            .service_selectors
            .iter()
            .any(|s| s.matches(labels));
    namespace_ok && labels_ok
}

fn usable_addresses(pool: &PoolSpec, family: Family) -> u128 {
    pool.addresses
        .iter()
        .map(|range| range.bounds())
        .filter(|(first, _)| Family::of(*first) == family)
        .map(|(first, last)| {
            (value(first)..=value(last))
                .filter(|&v| {
                    let address = match family {
                        Family::V4 => IpAddr::from(std::net::Ipv4Addr::from(v as u32)),
                        Family::V6 => IpAddr::from(std::net::Ipv6Addr::from(v)),
                    };
                    !(pool.avoid_buggy_ips && buggy(address))
                })
                .count() as u128
        })
        .sum()
}

fn may_share(a: Option<&SharingTerms>, b: Option<&SharingTerms>) -> bool {
    match (a, b) {
        (Some(a), Some(b)) => {
            a.key == b.key
                && a.traffic_policy == b.traffic_policy
                && a.ports.iter().all(|port| !b.ports.contains(port))
        }
        _ => false,
    }
}

/// Every invariant that must hold between operations.
fn check_invariants(
    allocator: &Allocator,
    pools: &[PoolSpec],
    labels: &BTreeMap<ServiceKey, Labels>,
) -> Result<(), TestCaseError> {
    let assignments = allocator.assignments();
    let mut held: BTreeMap<IpAddr, BTreeSet<ServiceKey>> = BTreeMap::new();
    for assignment in &assignments {
        let mut pools_used = BTreeSet::new();
        prop_assert!(!assignment.addresses.is_empty());
        for &address in &assignment.addresses {
            held.entry(address)
                .or_default()
                .insert(assignment.service.clone());
            let conflicted = assignment.conflicts.iter().any(|c| c.address == address);
            if conflicted {
                continue;
            }
            let pool = pool_serving_address(pools, address);
            prop_assert!(
                pool.is_some(),
                "{address} of {} is in no pool",
                assignment.service
            );
            let pool = pool.unwrap();
            let no_labels = Labels::new();
            let service_labels = labels.get(&assignment.service).unwrap_or(&no_labels);
            prop_assert!(
                pool_serves(pool, &assignment.service, service_labels),
                "{address} of {} is in pool {} which does not serve it",
                assignment.service,
                pool.name
            );
            pools_used.insert(pool.name.clone());
        }
        let split = assignment
            .conflicts
            .iter()
            .any(|c| matches!(c.reason, ConflictReason::SplitAcrossPools { .. }));
        prop_assert!(
            pools_used.len() <= 1 || split,
            "{} spans pools",
            assignment.service
        );
    }

    for (&address, services) in &held {
        let group = allocator.sharing_group(address).unwrap();
        let members: BTreeSet<ServiceKey> =
            group.members.iter().map(|m| m.service.clone()).collect();
        prop_assert_eq!(&members, services);
        for (i, a) in group.members.iter().enumerate() {
            for b in &group.members[i + 1..] {
                if may_share(a.terms.as_ref(), b.terms.as_ref()) {
                    continue;
                }
                for (me, other) in [(a, b), (b, a)] {
                    let reported = allocator
                        .assignment(&me.service)
                        .unwrap()
                        .conflicts
                        .iter()
                        .any(|c| {
                            c.address == address
                                && matches!(&c.reason, ConflictReason::Sharing(r) if *r.holder() == other.service)
                        });
                    prop_assert!(
                        reported,
                        "{} and {} hold {address} without being allowed to share, unreported",
                        me.service,
                        other.service
                    );
                }
            }
        }
    }

    for pool in pools {
        let stats = allocator.pool_stats(&pool.name).unwrap();
        for (family, family_stats) in [(Family::V4, stats.ipv4), (Family::V6, stats.ipv6)] {
            let in_use = held
                .keys()
                .filter(|&&address| {
                    Family::of(address) == family
                        && pool_serving_address(pools, address).map(|p| &p.name) == Some(&pool.name)
                })
                .count() as u128;
            prop_assert_eq!(
                family_stats.in_use,
                in_use,
                "in use in {} {}",
                pool.name,
                family
            );
            prop_assert_eq!(family_stats.total, usable_addresses(pool, family));
            prop_assert_eq!(family_stats.available, family_stats.total - in_use);
        }
    }
    Ok(())
}

/// The allocator never puts a Service on an address it may not share: every address a Service
/// gained in the last operation is compatible with every other holder. (Incompatible pairs can
/// only come from a status restored as it was, or from a holder changing its own terms; both
/// are reported, see `check_invariants`.)
fn check_new_addresses_may_be_shared(
    allocator: &Allocator,
    before: &BTreeMap<ServiceKey, Vec<IpAddr>>,
) -> Result<(), TestCaseError> {
    for assignment in allocator.assignments() {
        let previous = before.get(&assignment.service);
        for &address in &assignment.addresses {
            if previous.is_some_and(|p| p.contains(&address)) {
                continue;
            }
            let group = allocator.sharing_group(address).unwrap();
            let me = group
                .members
                .iter()
                .find(|m| m.service == assignment.service)
                .unwrap();
            for other in group
                .members
                .iter()
                .filter(|m| m.service != assignment.service)
            {
                prop_assert!(
                    may_share(me.terms.as_ref(), other.terms.as_ref()),
                    "{} was put on {address} held by {}, which it may not share with",
                    me.service,
                    other.service
                );
            }
        }
    }
    Ok(())
}

/// The state after a run of operations.
struct Run {
    allocator: Allocator,
    /// The pools in force.
    pools: Vec<PoolSpec>,
    /// The last request of every Service still known.
    requests: BTreeMap<ServiceKey, ServiceRequest>,
}

/// Runs operations, checking invariants after each.
fn run(initial: Vec<PoolSpec>, operations: Vec<Operation>) -> Result<Run, TestCaseError> {
    let mut allocator = Allocator::new();
    allocator.set_pools(initial.clone()).unwrap();
    let mut pools = initial;
    let mut requests: BTreeMap<ServiceKey, ServiceRequest> = BTreeMap::new();
    let mut labels: BTreeMap<ServiceKey, Labels> = BTreeMap::new();
    for operation in operations {
        let before = addresses_by_service(&allocator);
        match operation {
            Operation::Assign(request) => {
                let result = allocator.assign(&request);
                // A malformed request changes nothing, labels included.
                let malformed = matches!(
                    &result,
                    Err(e) if matches!(e.failure, ferrolb_allocator::AllocationFailure::Request(_))
                );
                if !malformed {
                    labels.insert(request.service.clone(), request.labels.clone());
                }
                requests.insert(request.service.clone(), request);
            }
            Operation::Release(name, namespace) => {
                let key = ServiceKey::new(NAMESPACES[namespace], format!("s{name}"));
                let known = requests.remove(&key).is_some();
                labels.remove(&key);
                prop_assert_eq!(allocator.release(&key).is_ok(), known);
            }
            Operation::SetPools(new_pools) => {
                allocator.set_pools(new_pools.clone()).unwrap();
                pools = new_pools;
            }
        }
        check_invariants(&allocator, &pools, &labels)?;
        check_new_addresses_may_be_shared(&allocator, &before)?;
    }
    Ok(Run {
        allocator,
        pools,
        requests,
    })
}

fn restore_input(
    allocator: &Allocator,
    requests: &BTreeMap<ServiceKey, ServiceRequest>,
) -> Vec<ServiceRequest> {
    requests
        .values()
        .map(|request| {
            let mut request = request.clone();
            request.current_addresses = allocator
                .assignment(&request.service)
                .map(|a| a.addresses)
                .unwrap_or_default();
            request
        })
        .collect()
}

fn addresses_by_service(allocator: &Allocator) -> BTreeMap<ServiceKey, Vec<IpAddr>> {
    allocator
        .assignments()
        .into_iter()
        .map(|a| (a.service, a.addresses))
        .collect()
}

proptest! {
    #![proptest_config(ProptestConfig { cases: 200, ..ProptestConfig::default() })]

    #[test]
    fn invariants_hold_after_any_sequence_of_operations(
        pools in pools_strategy(),
        operations in operations_strategy(),
    ) {
        run(pools, operations)?;
    }

    #[test]
    fn restore_is_idempotent(pools in pools_strategy(), operations in operations_strategy()) {
        let Run { allocator: original, pools, requests } = run(pools, operations)?;
        let input = restore_input(&original, &requests);

        let mut restored = Allocator::new();
        restored.set_pools(pools.clone()).unwrap();
        restored.restore(input.clone());
        let once = addresses_by_service(&restored);
        // Every address a Service had in its status is still its own.
        for request in &input {
            let now = once.get(&request.service).cloned().unwrap_or_default();
            for address in &request.current_addresses {
                // Asking for another address is the one way a user moves a Service.
                let moved_by_request = request
                    .requested_addresses
                    .iter()
                    .any(|r| !request.current_addresses.contains(r));
                let unwanted_family = !request.family_policy.serves(Family::of(*address));
                prop_assert!(
                    now.contains(address) || moved_by_request || unwanted_family,
                    "{} lost {address} on restore", request.service
                );
            }
        }

        let again = restored.restore(input);
        prop_assert!(again.knock_on.is_empty());
        prop_assert_eq!(addresses_by_service(&restored), once.clone());

        let mut from_own_status = Allocator::new();
        from_own_status.set_pools(pools).unwrap();
        from_own_status.restore(restore_input(&restored, &requests));
        prop_assert_eq!(addresses_by_service(&from_own_status), once);
    }

    #[test]
    fn restore_does_not_depend_on_input_order(
        pools in pools_strategy(),
        operations in operations_strategy(),
        seed in any::<u64>(),
    ) {
        let Run { allocator: original, pools, requests } = run(pools, operations)?;
        let input = restore_input(&original, &requests);
        let mut shuffled = input.clone();
        // A deterministic shuffle driven by the seed.
        let mut state = seed | 1;
        for i in (1..shuffled.len()).rev() {
            state ^= state << 13;
            state ^= state >> 7;
            state ^= state << 17;
            shuffled.swap(i, (state % (i as u64 + 1)) as usize);
        }
        let mut first = Allocator::new();
        first.set_pools(pools.clone()).unwrap();
        let mut second = Allocator::new();
        second.set_pools(pools).unwrap();
        let a = first.restore(input);
        let b = second.restore(shuffled);
        prop_assert_eq!(a, b);
        prop_assert_eq!(first.assignments(), second.assignments());
        prop_assert_eq!(first.pending(), second.pending());
    }

    #[test]
    fn pool_configuration_does_not_depend_on_list_order(
        pools in pools_strategy(),
        requests in proptest::collection::vec(request_strategy(), 0..12),
    ) {
        let mut reversed: Vec<PoolSpec> = pools.clone();
        reversed.reverse();
        for pool in &mut reversed {
            pool.addresses.reverse();
        }
        let mut first = Allocator::new();
        first.set_pools(pools).unwrap();
        let mut second = Allocator::new();
        second.set_pools(reversed).unwrap();
        prop_assert_eq!(first.pool_order(), second.pool_order());
        for request in &requests {
            let a = first.assign(request).map(|a| a.assignment).map_err(|e| e.failure);
            let b = second.assign(request).map(|a| a.assignment).map_err(|e| e.failure);
            prop_assert_eq!(a, b);
        }
        prop_assert_eq!(first.stats(), second.stats());
    }
}
