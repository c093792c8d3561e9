//! Where ferrolb deliberately differs from MetalLB, one spec per difference.

use ferrolb_allocator::{
    AllocationFailure, ConflictReason, Family, FamilyPolicy, LabelSelector, PoolRefusal,
    ServiceAllocation, ServiceKey, SharingRefusal, TrafficPolicy,
};

use crate::support::*;

#[test]
fn pools_of_equal_priority_are_tried_by_name_not_at_random() {
    for order in [["b", "a", "c"], ["c", "b", "a"], ["a", "c", "b"]] {
        let ranges = |name: &str| match name {
            "a" => "10.0.1.0/24",
            "b" => "10.0.2.0/24",
            _ => "10.0.3.0/24",
        };
        let mut allocator = allocator(
            order
                .iter()
                .map(|name| pool(name, &[ranges(name)]))
                .collect(),
        );
        assert_eq!(assign(&mut allocator, &v4("s")).pool.as_deref(), Some("a"));
    }
}

#[test]
fn negative_priorities_come_before_positive_ones() {
    let mut allocator = allocator(vec![
        with_priority(pool("a", &["10.0.0.0/24"]), 1),
        with_priority(pool("b", &["10.0.1.0/24"]), -5),
    ]);
    assert_eq!(assign(&mut allocator, &v4("s")).pool.as_deref(), Some("b"));
}

#[test]
fn addresses_inside_a_pool_go_lowest_first_whatever_the_configured_order() {
    let mut allocator = allocator(vec![pool("p", &["10.0.9.0/24", "10.0.1.0/24"])]);
    assert_eq!(
        assign(&mut allocator, &v4("s")).addresses,
        ips(&["10.0.1.0"])
    );
}

#[test]
fn ipv6_capacity_is_exact_for_prefixes_wider_than_62() {
    let allocator = allocator(vec![pool("wide", &["2001:db8::/48", "2001:db9::/64"])]);
    let stats = allocator.pool_stats("wide").unwrap();
    assert_eq!(stats.ipv6.total, (1u128 << 80) + (1u128 << 64));
    assert_eq!(stats.ipv6.available, stats.ipv6.total);
}

#[test]
fn address_outside_every_pool_is_kept_as_a_conflict_not_reallocated() {
    let mut allocator = allocator(vec![
        pool("a-old", &["10.0.0.0/24"]),
        pool("b-new", &["10.0.1.0/24"]),
    ]);
    assign(&mut allocator, &v4("s"));
    let changes = allocator
        .set_pools(vec![pool("b-new", &["10.0.1.0/24"])])
        .unwrap();
    assert_eq!(changes.len(), 1);
    let after = changes[0].after.clone().unwrap();
    assert_eq!(after.addresses, ips(&["10.0.0.0"]));
    assert_eq!(after.pool, None);
    assert_eq!(after.conflicts[0].reason, ConflictReason::NotInAnyPool);
    // Assigning again (any Service event) does not move it either.
    assert_eq!(
        assign(&mut allocator, &v4("s")).addresses,
        ips(&["10.0.0.0"])
    );
}

#[test]
fn namespace_no_longer_allowed_is_reported_as_a_conflict() {
    let restricted = |namespaces: &[&str]| {
        let mut spec = pool("p", &["10.0.0.0/24"]);
        spec.service_allocation = Some(ServiceAllocation {
            namespaces: namespaces.iter().map(|n| (*n).to_owned()).collect(),
            ..ServiceAllocation::default()
        });
        spec
    };
    let mut allocator = allocator(vec![restricted(&["default"])]);
    assign(&mut allocator, &v4("s"));
    let changes = allocator.set_pools(vec![restricted(&["prod"])]).unwrap();
    let after = changes[0].after.clone().unwrap();
    assert_eq!(after.addresses, ips(&["10.0.0.0"]));
    assert_eq!(
        after.conflicts[0].reason,
        ConflictReason::PoolRefuses {
            pool: "p".into(),
            refusal: PoolRefusal::NamespaceNotAllowed {
                namespace: "default".to_owned()
            }
        }
    );
}

#[test]
fn namespace_selectors_matching_no_namespace_serve_no_namespace() {
    // MetalLB resolves namespaceSelectors into a set of names and treats an empty set as
    // "no restriction"; ferrolb treats a selector that matches nothing as matching nothing.
    let mut spec = pool("p", &["10.0.0.0/24"]);
    spec.service_allocation = Some(ServiceAllocation {
        namespace_selectors: vec![LabelSelector::with_labels([("team", "nobody")])],
        ..ServiceAllocation::default()
    });
    let mut allocator = allocator(vec![spec]);
    assert_eq!(
        failure(&mut allocator, &v4("s")),
        AllocationFailure::NoEligiblePool
    );
}

#[test]
fn local_service_without_selector_does_not_share_with_a_cluster_service() {
    // MetalLB's backend key is "" for both; ferrolb compares traffic policies.
    let mut allocator = allocator(vec![pool("p", &["10.0.0.0/24"])]);
    assign(&mut allocator, &sharing(v4("cluster"), "k", &[80]));
    let mut local = sharing(v4("local"), "k", &[81]);
    local.traffic_policy = TrafficPolicy::Local {
        selector: Default::default(),
    };
    local.requested_addresses = ips(&["10.0.0.0"]);
    assert!(matches!(
        failure(&mut allocator, &local),
        AllocationFailure::Sharing {
            refusal: SharingRefusal::DifferentBackend { .. },
            ..
        }
    ));
}

#[test]
fn sharing_key_change_while_others_share_keeps_the_address_and_reports_both() {
    // MetalLB refuses ("can't change sharing key") and then re-IPs the Service.
    let mut allocator = allocator(vec![pool("p", &["10.0.0.0/24"])]);
    assign(&mut allocator, &sharing(v4("a"), "k", &[80]));
    assign(&mut allocator, &sharing(v4("b"), "k", &[81]));
    let assigned = allocator.assign(&sharing(v4("a"), "other", &[80])).unwrap();
    assert_eq!(assigned.assignment.addresses, ips(&["10.0.0.0"]));
    assert!(matches!(
        &assigned.assignment.conflicts[0].reason,
        ConflictReason::Sharing(SharingRefusal::DifferentKey { holder, .. }) if *holder == key("b")
    ));
    assert_eq!(
        assigned.knock_on.len(),
        1,
        "b learns about the conflict too"
    );
    assert_eq!(assigned.knock_on[0].service, key("b"));
    // Putting the key back clears both.
    let fixed = allocator.assign(&sharing(v4("a"), "k", &[80])).unwrap();
    assert!(fixed.assignment.conflicts.is_empty());
    assert!(
        fixed.knock_on[0]
            .after
            .as_ref()
            .unwrap()
            .conflicts
            .is_empty()
    );
}

#[test]
fn changed_request_that_cannot_be_met_keeps_the_old_address() {
    // MetalLB clears the address first, then fails to allocate.
    let mut allocator = allocator(vec![
        pool("a", &["10.0.0.0/24"]),
        pool("b", &["10.0.1.0/32"]),
    ]);
    let mut holder = v4("holder-b");
    holder.requested_pool = Some("b".to_owned());
    assign(&mut allocator, &holder);
    let mut request = v4("s");
    assert_eq!(
        assign(&mut allocator, &request).addresses,
        ips(&["10.0.0.0"])
    );
    request.requested_pool = Some("b".to_owned());
    let error = refuse(&mut allocator, &request);
    assert!(matches!(error.failure, AllocationFailure::Exhausted { .. }));
    assert_eq!(error.kept.unwrap().addresses, ips(&["10.0.0.0"]));
    // Once pool b has room, the move happens by itself.
    let released = allocator.release(&key("holder-b")).unwrap();
    assert_eq!(released.knock_on.len(), 1);
    assert_eq!(
        released.knock_on[0].after.as_ref().unwrap().addresses,
        ips(&["10.0.1.0"])
    );
    assert_eq!(allocator.pool_stats("a").unwrap().ipv4.in_use, 0);
}

#[test]
fn changed_requested_pool_moves_the_service_when_it_can() {
    let mut allocator = allocator(vec![
        pool("a", &["10.0.0.0/24"]),
        pool("b", &["10.0.1.0/24"]),
    ]);
    let mut request = v4("s");
    assert_eq!(assign(&mut allocator, &request).pool.as_deref(), Some("a"));
    request.requested_pool = Some("b".to_owned());
    assert_eq!(
        assign(&mut allocator, &request).addresses,
        ips(&["10.0.1.0"])
    );
    assert_eq!(allocator.pool_stats("a").unwrap().ipv4.in_use, 0);
}

#[test]
fn one_requested_address_of_a_dual_stack_service_gets_the_other_family_from_its_pool() {
    // MetalLB requires the requested families to equal the Service's families.
    let mut allocator = allocator(vec![pool("p", &["10.0.0.0/24", "2001:db8::/64"])]);
    let mut request = dual(
        "s",
        FamilyPolicy::RequireDualStack {
            primary: Family::V4,
        },
    );
    request.requested_addresses = ips(&["10.0.0.9"]);
    assert_eq!(
        assign(&mut allocator, &request).addresses,
        ips(&["10.0.0.9", "2001:db8::"])
    );
}

#[test]
fn freed_address_goes_to_a_waiting_service_without_a_resweep() {
    // MetalLB retries pending Services only on a full resweep of every Service.
    let mut allocator = allocator(vec![pool("p", &["10.0.0.0/32"])]);
    assign(&mut allocator, &v4("holder"));
    for name in ["w3", "w1", "w2"] {
        refuse(&mut allocator, &v4(name));
    }
    assert_eq!(allocator.pending().len(), 3);
    let released = allocator.release(&key("holder")).unwrap();
    let served: Vec<&ServiceKey> = released.knock_on.iter().map(|c| &c.service).collect();
    assert_eq!(
        served,
        vec![&key("w1")],
        "one address, one waiting Service, in key order"
    );
    assert_eq!(allocator.pending().len(), 2);
}
