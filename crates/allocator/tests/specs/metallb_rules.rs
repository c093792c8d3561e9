//! MetalLB's allocation rules that ferrolb keeps, one spec per rule.

use std::collections::BTreeSet;

use ferrolb_allocator::{
    AllocationFailure, Family, FamilyPolicy, LabelSelector, PoolConfigError, PoolRefusal,
    RequestError, ServiceAllocation, SharingRefusal, TrafficPolicy,
};

use crate::support::*;

// ----- addresses inside a pool ----------------------------------------------------------------

#[test]
fn lowest_free_address_is_handed_out_first_including_the_network_address() {
    let mut allocator = allocator(vec![pool("p", &["10.0.0.0/30"])]);
    for (name, expected) in [("a", "10.0.0.0"), ("b", "10.0.0.1"), ("c", "10.0.0.2")] {
        assert_eq!(
            assign(&mut allocator, &v4(name)).addresses,
            ips(&[expected])
        );
    }
    allocator.release(&key("b")).unwrap();
    assert_eq!(
        assign(&mut allocator, &v4("d")).addresses,
        ips(&["10.0.0.1"])
    );
}

#[test]
fn avoid_buggy_ips_skips_addresses_ending_in_0_and_255() {
    let mut spec = pool("p", &["10.0.0.0/23"]);
    spec.avoid_buggy_ips = true;
    let mut allocator = allocator(vec![spec]);
    let mut last = None;
    for i in 0..255 {
        last = Some(assign(&mut allocator, &v4(&format!("s{i}"))).addresses);
    }
    // 254 usable addresses in the first /24, then .1 of the second.
    assert_eq!(last, Some(ips(&["10.0.1.1"])));
    assert_eq!(addresses_of(&allocator, "s0"), ips(&["10.0.0.1"]));
    assert_eq!(addresses_of(&allocator, "s253"), ips(&["10.0.0.254"]));
}

#[test]
fn avoid_buggy_ips_has_no_effect_on_ipv6() {
    let mut spec = pool("p", &["2001:db8::/126"]);
    spec.avoid_buggy_ips = true;
    let mut allocator = allocator(vec![spec]);
    assert_eq!(
        assign(&mut allocator, &v6("a")).addresses,
        ips(&["2001:db8::"])
    );
}

#[test]
fn ranges_and_cidrs_of_both_families_make_one_pool() {
    let mut allocator = allocator(vec![pool(
        "p",
        &["10.0.0.5-10.0.0.6", "2001:db8::10-2001:db8::11"],
    )]);
    assert_eq!(
        assign(&mut allocator, &v4("a")).addresses,
        ips(&["10.0.0.5"])
    );
    assert_eq!(
        assign(&mut allocator, &v4("b")).addresses,
        ips(&["10.0.0.6"])
    );
    assert_eq!(
        assign(&mut allocator, &v6("c")).addresses,
        ips(&["2001:db8::10"])
    );
    assert!(matches!(
        failure(&mut allocator, &v4("d")),
        AllocationFailure::Exhausted { .. }
    ));
}

// ----- requested addresses and pools (annotations) ------------------------------------------

#[test]
fn requested_address_is_honoured_even_from_a_pool_without_auto_assign() {
    let mut manual = pool("manual", &["10.0.1.0/24"]);
    manual.auto_assign = false;
    let mut allocator = allocator(vec![pool("auto", &["10.0.0.0/24"]), manual]);
    let mut request = v4("a");
    request.requested_addresses = ips(&["10.0.1.7"]);
    let assignment = assign(&mut allocator, &request);
    assert_eq!(assignment.addresses, ips(&["10.0.1.7"]));
    assert_eq!(assignment.pool.as_deref(), Some("manual"));
}

#[test]
fn requested_pool_ignores_auto_assign() {
    let mut manual = pool("manual", &["10.0.1.0/24"]);
    manual.auto_assign = false;
    let mut allocator = allocator(vec![pool("auto", &["10.0.0.0/24"]), manual]);
    let mut request = v4("a");
    request.requested_pool = Some("manual".to_owned());
    assert_eq!(
        assign(&mut allocator, &request).addresses,
        ips(&["10.0.1.0"])
    );
}

#[test]
fn requested_pool_still_enforces_service_allocation() {
    let mut restricted = pool("restricted", &["10.0.1.0/24"]);
    restricted.service_allocation = Some(ServiceAllocation {
        namespaces: vec!["prod".to_owned()],
        ..ServiceAllocation::default()
    });
    let mut allocator = allocator(vec![restricted]);
    let mut request = v4("a");
    request.requested_pool = Some("restricted".to_owned());
    assert_eq!(
        failure(&mut allocator, &request),
        AllocationFailure::PoolRefuses {
            pool: "restricted".into(),
            refusal: PoolRefusal::NamespaceNotAllowed {
                namespace: "default".to_owned()
            },
        }
    );
}

#[test]
fn pool_without_auto_assign_is_never_chosen_automatically() {
    let mut manual = pool("manual", &["10.0.1.0/24"]);
    manual.auto_assign = false;
    let mut allocator = allocator(vec![manual]);
    assert_eq!(
        failure(&mut allocator, &v4("a")),
        AllocationFailure::NoEligiblePool
    );
}

#[test]
fn at_most_two_requested_addresses_one_per_family() {
    let mut allocator = allocator(vec![pool("p", &["10.0.0.0/24", "2001:db8::/64"])]);
    let mut three = dual(
        "a",
        FamilyPolicy::RequireDualStack {
            primary: Family::V4,
        },
    );
    three.requested_addresses = ips(&["10.0.0.1", "10.0.0.2", "2001:db8::1"]);
    assert_eq!(
        failure(&mut allocator, &three),
        AllocationFailure::Request(RequestError::TooManyRequestedAddresses { count: 3 })
    );
    let mut twice = dual(
        "b",
        FamilyPolicy::RequireDualStack {
            primary: Family::V4,
        },
    );
    twice.requested_addresses = ips(&["10.0.0.1", "10.0.0.2"]);
    assert_eq!(
        failure(&mut allocator, &twice),
        AllocationFailure::Request(RequestError::RequestedFamilyTwice { family: Family::V4 })
    );
}

#[test]
fn requested_address_must_match_the_service_family() {
    let mut allocator = allocator(vec![pool("p", &["10.0.0.0/24", "2001:db8::/64"])]);
    let mut request = v4("a");
    request.requested_addresses = ips(&["2001:db8::1"]);
    assert!(matches!(
        failure(&mut allocator, &request),
        AllocationFailure::Request(RequestError::RequestedFamilyNotServed { .. })
    ));
}

#[test]
fn requested_addresses_must_be_in_one_pool() {
    let mut allocator = allocator(vec![
        pool("four", &["10.0.0.0/24"]),
        pool("six", &["2001:db8::/64"]),
    ]);
    let mut request = dual(
        "a",
        FamilyPolicy::RequireDualStack {
            primary: Family::V4,
        },
    );
    request.requested_addresses = ips(&["10.0.0.1", "2001:db8::1"]);
    assert!(matches!(
        failure(&mut allocator, &request),
        AllocationFailure::RequestedAddressesInDifferentPools { .. }
    ));
}

#[test]
fn requested_address_must_be_in_the_requested_pool() {
    let mut allocator = allocator(vec![
        pool("a", &["10.0.0.0/24"]),
        pool("b", &["10.0.1.0/24"]),
    ]);
    let mut request = v4("s");
    request.requested_addresses = ips(&["10.0.0.1"]);
    request.requested_pool = Some("b".to_owned());
    assert!(matches!(
        failure(&mut allocator, &request),
        AllocationFailure::RequestedAddressOutsideRequestedPool { .. }
    ));
}

#[test]
fn requested_address_outside_every_pool_is_refused() {
    let mut allocator = allocator(vec![pool("p", &["10.0.0.0/24"])]);
    let mut request = v4("a");
    request.requested_addresses = ips(&["192.0.2.1"]);
    assert_eq!(
        failure(&mut allocator, &request),
        AllocationFailure::RequestedAddressNotInPool {
            address: ip("192.0.2.1")
        }
    );
}

#[test]
fn requested_address_avoided_by_its_pool_is_refused() {
    let mut spec = pool("p", &["10.0.0.0/24"]);
    spec.avoid_buggy_ips = true;
    let mut allocator = allocator(vec![spec]);
    let mut request = v4("a");
    request.requested_addresses = ips(&["10.0.0.255"]);
    assert!(matches!(
        failure(&mut allocator, &request),
        AllocationFailure::RequestedAddressAvoided { .. }
    ));
}

#[test]
fn unknown_requested_pool_is_typed() {
    let mut allocator = allocator(vec![pool("p", &["10.0.0.0/24"])]);
    let mut request = v4("a");
    request.requested_pool = Some("nope".to_owned());
    assert_eq!(
        failure(&mut allocator, &request),
        AllocationFailure::UnknownPool {
            pool: "nope".to_owned()
        }
    );
}

// ----- pool order and serviceAllocation --------------------------------------------------------

#[test]
fn pool_with_lower_priority_number_is_tried_first() {
    let mut allocator = allocator(vec![
        with_priority(pool("a", &["10.0.0.0/24"]), 20),
        with_priority(pool("b", &["10.0.1.0/24"]), 10),
    ]);
    assert_eq!(assign(&mut allocator, &v4("s")).pool.as_deref(), Some("b"));
}

#[test]
fn pool_without_priority_is_tried_after_prioritised_pools() {
    let mut allocator = allocator(vec![
        pool("a", &["10.0.0.0/24"]),
        with_priority(pool("z", &["10.0.1.0/24"]), 50),
    ]);
    assert_eq!(assign(&mut allocator, &v4("s")).pool.as_deref(), Some("z"));
    assert_eq!(allocator.pool_order(), vec!["z".into(), "a".into()]);
}

#[test]
fn priority_zero_means_unset() {
    let mut allocator = allocator(vec![
        with_priority(pool("a", &["10.0.0.0/24"]), 0),
        with_priority(pool("b", &["10.0.1.0/24"]), 5),
    ]);
    assert_eq!(assign(&mut allocator, &v4("s")).pool.as_deref(), Some("b"));
}

#[test]
fn pool_with_service_allocation_is_tried_before_a_general_pool() {
    // MetalLB tries "pinned" pools (with a serviceAllocation that matches) before the others.
    let mut pinned = pool("z-pinned", &["10.0.1.0/24"]);
    pinned.service_allocation = Some(ServiceAllocation {
        namespaces: vec!["default".to_owned()],
        ..ServiceAllocation::default()
    });
    let mut allocator = allocator(vec![pool("a-general", &["10.0.0.0/24"]), pinned]);
    assert_eq!(
        assign(&mut allocator, &v4("s")).pool.as_deref(),
        Some("z-pinned")
    );
}

#[test]
fn next_pool_is_used_when_the_first_is_exhausted() {
    let mut allocator = allocator(vec![
        with_priority(pool("a", &["10.0.0.0/32"]), 1),
        with_priority(pool("b", &["10.0.1.0/32"]), 2),
    ]);
    assert_eq!(assign(&mut allocator, &v4("s1")).pool.as_deref(), Some("a"));
    assert_eq!(assign(&mut allocator, &v4("s2")).pool.as_deref(), Some("b"));
    assert_eq!(
        failure(&mut allocator, &v4("s3")),
        AllocationFailure::Exhausted {
            families: vec![Family::V4],
            pools: vec!["a".into(), "b".into()],
        }
    );
}

#[test]
fn namespaces_restrict_a_pool() {
    let mut restricted = pool("restricted", &["10.0.1.0/24"]);
    restricted.service_allocation = Some(ServiceAllocation {
        namespaces: vec!["prod".to_owned()],
        ..ServiceAllocation::default()
    });
    let mut allocator = allocator(vec![restricted, pool("general", &["10.0.0.0/24"])]);
    assert_eq!(
        assign(&mut allocator, &v4("dev")).pool.as_deref(),
        Some("general")
    );
    let mut prod = v4("api");
    prod.service = ferrolb_allocator::ServiceKey::new("prod", "api");
    assert_eq!(
        assign(&mut allocator, &prod).pool.as_deref(),
        Some("restricted")
    );
}

#[test]
fn namespace_selectors_are_resolved_from_the_given_namespace_labels() {
    let mut restricted = pool("restricted", &["10.0.1.0/24"]);
    restricted.service_allocation = Some(ServiceAllocation {
        namespace_selectors: vec![LabelSelector::with_labels([("team", "red")])],
        ..ServiceAllocation::default()
    });
    let mut allocator = allocator(vec![restricted]);
    allocator.set_namespace_labels("default", [("team".to_owned(), "red".to_owned())].into());
    assert_eq!(
        assign(&mut allocator, &v4("s")).pool.as_deref(),
        Some("restricted")
    );
}

#[test]
fn service_selectors_match_if_any_selector_matches() {
    let mut selective = pool("selective", &["10.0.1.0/24"]);
    selective.service_allocation = Some(ServiceAllocation {
        service_selectors: vec![
            LabelSelector::with_labels([("tier", "web")]),
            LabelSelector::with_labels([("tier", "db")]),
        ],
        ..ServiceAllocation::default()
    });
    let mut allocator = allocator(vec![selective]);
    let mut db = v4("db");
    db.labels = [("tier".to_owned(), "db".to_owned())].into();
    assert_eq!(
        assign(&mut allocator, &db).pool.as_deref(),
        Some("selective")
    );
    assert_eq!(
        failure(&mut allocator, &v4("other")),
        AllocationFailure::NoEligiblePool
    );
}

#[test]
fn namespace_and_service_selectors_must_both_hold() {
    let mut selective = pool("selective", &["10.0.1.0/24"]);
    selective.service_allocation = Some(ServiceAllocation {
        namespaces: vec!["prod".to_owned()],
        service_selectors: vec![LabelSelector::with_labels([("tier", "web")])],
        ..ServiceAllocation::default()
    });
    let mut allocator = allocator(vec![selective]);
    let mut web_in_default = v4("web");
    web_in_default.labels = [("tier".to_owned(), "web".to_owned())].into();
    let mut request = web_in_default.clone();
    request.requested_pool = Some("selective".to_owned());
    assert!(matches!(
        failure(&mut allocator, &request),
        AllocationFailure::PoolRefuses {
            refusal: PoolRefusal::NamespaceNotAllowed { .. },
            ..
        }
    ));
    let mut web_in_prod = web_in_default;
    web_in_prod.service = ferrolb_allocator::ServiceKey::new("prod", "web");
    assign(&mut allocator, &web_in_prod);
}

// ----- pool validation -------------------------------------------------------------------------

#[test]
fn overlapping_ranges_are_refused_and_nothing_changes() {
    let mut allocator = allocator(vec![pool("a", &["10.0.0.0/24"])]);
    assign(&mut allocator, &v4("s"));
    let error = allocator
        .set_pools(vec![
            pool("b", &["10.0.0.128-10.0.1.5"]),
            pool("c", &["10.0.0.0/23"]),
        ])
        .unwrap_err();
    assert!(matches!(error, PoolConfigError::Overlap { .. }), "{error}");
    assert_eq!(allocator.pool_order(), vec!["a".into()]);
    assert_eq!(addresses_of(&allocator, "s"), ips(&["10.0.0.0"]));
}

#[test]
fn invalid_pools_are_refused_with_the_reason() {
    let mut allocator = allocator(vec![]);
    let cases = [
        (vec![pool("a", &[])], "no addresses"),
        (vec![pool("a", &["10.0.0.9-10.0.0.1"])], "starts after"),
        (vec![pool("a", &["10.0.0.1-2001:db8::1"])], "mixes"),
        (
            vec![pool("a", &["10.0.0.0/24"]), pool("a", &["10.0.1.0/24"])],
            "defined twice",
        ),
        (vec![pool("a", &["10.0.0.0/24", "10.0.0.7/32"])], "overlaps"),
        (vec![pool("a", &["::/0"])], "whole IPv6 space"),
    ];
    for (pools, expected) in cases {
        let error = allocator.set_pools(pools).unwrap_err().to_string();
        assert!(
            error.contains(expected),
            "{error:?} should say {expected:?}"
        );
    }
}

// ----- sharing ---------------------------------------------------------------------------------

#[test]
fn services_with_the_same_key_share_the_lowest_shareable_address() {
    let mut allocator = allocator(vec![pool("p", &["10.0.0.0/24"])]);
    assign(&mut allocator, &v4("first"));
    let dns_tcp = assign(&mut allocator, &sharing(v4("dns-tcp"), "dns", &[53]));
    assert_eq!(dns_tcp.addresses, ips(&["10.0.0.1"]));
    let mut dns_udp = sharing(v4("dns-udp"), "dns", &[]);
    dns_udp.ports = vec![ferrolb_allocator::ServicePort::udp(53)];
    assert_eq!(
        assign(&mut allocator, &dns_udp).addresses,
        ips(&["10.0.0.1"])
    );
    let group = allocator.sharing_group(ip("10.0.0.1")).unwrap();
    let members: Vec<&str> = group.members.iter().map(|m| m.service.name()).collect();
    assert_eq!(members, vec!["dns-tcp", "dns-udp"]);
}

#[test]
fn shareable_address_below_the_lowest_free_one_is_preferred() {
    // MetalLB scans from the pool's start and takes the first address that is free or
    // shareable: a freed lower address does not beat a lower shared one.
    let mut allocator = allocator(vec![pool("p", &["10.0.0.0/24"])]);
    assign(&mut allocator, &v4("a"));
    assign(&mut allocator, &sharing(v4("web"), "k", &[80]));
    assign(&mut allocator, &v4("c"));
    allocator.release(&key("c")).unwrap();
    let joined = assign(&mut allocator, &sharing(v4("web-tls"), "k", &[443]));
    assert_eq!(joined.addresses, ips(&["10.0.0.1"]));
}

fn refusal_when_joining(
    holder: ferrolb_allocator::ServiceRequest,
    joiner: ferrolb_allocator::ServiceRequest,
) -> SharingRefusal {
    let mut allocator = allocator(vec![pool("p", &["10.0.0.0/24"])]);
    assign(&mut allocator, &holder);
    let mut joiner = joiner;
    joiner.requested_addresses = ips(&["10.0.0.0"]);
    match failure(&mut allocator, &joiner) {
        AllocationFailure::Sharing { address, refusal } => {
            assert_eq!(address, ip("10.0.0.0"));
            refusal
        }
        other => panic!("expected a sharing refusal, got {other}"),
    }
}

#[test]
fn sharing_needs_a_key_on_the_holder() {
    let refusal = refusal_when_joining(v4("a"), sharing(v4("b"), "k", &[80]));
    assert_eq!(
        refusal,
        SharingRefusal::HolderDoesNotShare { holder: key("a") }
    );
}

#[test]
fn sharing_needs_a_key_on_the_newcomer() {
    let refusal = refusal_when_joining(sharing(v4("a"), "k", &[80]), v4("b"));
    assert_eq!(
        refusal,
        SharingRefusal::RequesterDoesNotShare { holder: key("a") }
    );
}

#[test]
fn sharing_needs_the_same_key() {
    let refusal =
        refusal_when_joining(sharing(v4("a"), "k1", &[80]), sharing(v4("b"), "k2", &[81]));
    assert!(
        matches!(refusal, SharingRefusal::DifferentKey { .. }),
        "{refusal}"
    );
    assert!(refusal.to_string().starts_with("rule 1"));
}

#[test]
fn cluster_and_local_services_never_share() {
    let mut local = sharing(v4("b"), "k", &[81]);
    local.traffic_policy = TrafficPolicy::Local {
        selector: [("app".to_owned(), "x".to_owned())].into(),
    };
    let refusal = refusal_when_joining(sharing(v4("a"), "k", &[80]), local);
    assert!(
        matches!(refusal, SharingRefusal::DifferentBackend { .. }),
        "{refusal}"
    );
    assert!(refusal.to_string().starts_with("rule 2"));
}

#[test]
fn local_services_share_only_with_identical_selectors() {
    let local = |name: &str, app: &str, port: u16| {
        let mut request = sharing(v4(name), "k", &[port]);
        request.traffic_policy = TrafficPolicy::Local {
            selector: [("app".to_owned(), app.to_owned())].into(),
        };
        request
    };
    let refusal = refusal_when_joining(local("a", "x", 80), local("b", "y", 81));
    assert!(matches!(refusal, SharingRefusal::DifferentBackend { .. }));
    let mut allocator = allocator(vec![pool("p", &["10.0.0.0/24"])]);
    assign(&mut allocator, &local("a", "x", 80));
    assert_eq!(
        assign(&mut allocator, &local("b", "x", 81)).addresses,
        ips(&["10.0.0.0"])
    );
}

#[test]
fn sharing_services_may_not_use_a_common_port() {
    let refusal = refusal_when_joining(
        sharing(v4("a"), "k", &[80, 443]),
        sharing(v4("b"), "k", &[443]),
    );
    assert_eq!(
        refusal,
        SharingRefusal::PortInUse {
            holder: key("a"),
            port: ferrolb_allocator::ServicePort::tcp(443)
        }
    );
    assert!(refusal.to_string().starts_with("rule 3"));
}

#[test]
fn sharing_service_takes_a_free_address_when_no_group_admits_it() {
    let mut allocator = allocator(vec![pool("p", &["10.0.0.0/24"])]);
    assign(&mut allocator, &sharing(v4("a"), "k", &[80]));
    let b = assign(&mut allocator, &sharing(v4("b"), "k", &[80]));
    assert_eq!(b.addresses, ips(&["10.0.0.1"]));
}

#[test]
fn sharing_requires_the_pool_to_serve_the_joining_service() {
    let mut restricted = pool("restricted", &["10.0.0.0/24"]);
    restricted.service_allocation = Some(ServiceAllocation {
        service_selectors: vec![LabelSelector::with_labels([("team", "a")])],
        ..ServiceAllocation::default()
    });
    let mut allocator = allocator(vec![restricted]);
    let mut holder = sharing(v4("a"), "k", &[80]);
    holder.labels = [("team".to_owned(), "a".to_owned())].into();
    assign(&mut allocator, &holder);
    let mut joiner = sharing(v4("b"), "k", &[81]);
    joiner.requested_addresses = ips(&["10.0.0.0"]);
    assert!(matches!(
        failure(&mut allocator, &joiner),
        AllocationFailure::PoolRefuses {
            refusal: PoolRefusal::ServiceSelectorsDoNotMatch,
            ..
        }
    ));
}

#[test]
fn sole_holder_may_change_its_sharing_key() {
    let mut allocator = allocator(vec![pool("p", &["10.0.0.0/24"])]);
    assign(&mut allocator, &sharing(v4("a"), "old", &[80]));
    let changed = assign(&mut allocator, &sharing(v4("a"), "new", &[80]));
    assert_eq!(changed.addresses, ips(&["10.0.0.0"]));
    assert!(changed.conflicts.is_empty());
    let joined = assign(&mut allocator, &sharing(v4("b"), "new", &[81]));
    assert_eq!(joined.addresses, ips(&["10.0.0.0"]));
}

#[test]
fn shared_address_is_freed_only_when_its_last_holder_leaves() {
    let mut allocator = allocator(vec![pool("p", &["10.0.0.0/32", "10.0.0.1/32"])]);
    assign(&mut allocator, &sharing(v4("a"), "k", &[80]));
    assign(&mut allocator, &sharing(v4("b"), "k", &[81]));
    assert_eq!(allocator.pool_stats("p").unwrap().ipv4.in_use, 1);
    allocator.release(&key("a")).unwrap();
    assert_eq!(
        assign(&mut allocator, &v4("c")).addresses,
        ips(&["10.0.0.1"])
    );
    allocator.release(&key("b")).unwrap();
    assert_eq!(
        assign(&mut allocator, &v4("d")).addresses,
        ips(&["10.0.0.0"])
    );
}

// ----- dual-stack ------------------------------------------------------------------------------

#[test]
fn require_dual_stack_takes_both_families_from_one_pool() {
    let mut allocator = allocator(vec![
        with_priority(pool("v4-only", &["10.0.0.0/24"]), 1),
        with_priority(pool("both", &["10.0.1.0/24", "2001:db8::/64"]), 2),
    ]);
    let assignment = assign(
        &mut allocator,
        &dual(
            "a",
            FamilyPolicy::RequireDualStack {
                primary: Family::V4,
            },
        ),
    );
    assert_eq!(assignment.pool.as_deref(), Some("both"));
    assert_eq!(assignment.addresses, ips(&["10.0.1.0", "2001:db8::"]));
}

#[test]
fn require_dual_stack_fails_when_no_pool_has_both_families() {
    let mut allocator = allocator(vec![
        pool("four", &["10.0.0.0/24"]),
        pool("six", &["2001:db8::/64"]),
    ]);
    assert!(matches!(
        failure(
            &mut allocator,
            &dual(
                "a",
                FamilyPolicy::RequireDualStack {
                    primary: Family::V4
                }
            )
        ),
        AllocationFailure::NoPoolHasFamily { .. }
    ));
}

#[test]
fn primary_family_is_listed_first() {
    let mut allocator = allocator(vec![pool("both", &["10.0.0.0/24", "2001:db8::/64"])]);
    let assignment = assign(
        &mut allocator,
        &dual(
            "a",
            FamilyPolicy::RequireDualStack {
                primary: Family::V6,
            },
        ),
    );
    assert_eq!(assignment.addresses, ips(&["2001:db8::", "10.0.0.0"]));
}

#[test]
fn prefer_dual_stack_takes_the_first_pool_with_both_families() {
    let mut allocator = allocator(vec![
        with_priority(pool("v4-only", &["10.0.0.0/24"]), 1),
        with_priority(pool("both", &["10.0.1.0/24", "2001:db8::/64"]), 2),
    ]);
    let assignment = assign(
        &mut allocator,
        &dual(
            "a",
            FamilyPolicy::PreferDualStack {
                primary: Family::V4,
            },
        ),
    );
    assert_eq!(assignment.pool.as_deref(), Some("both"));
    assert_eq!(assignment.addresses.len(), 2);
}

#[test]
fn prefer_dual_stack_falls_back_to_the_primary_family_then_the_other() {
    let mut allocator = allocator(vec![
        with_priority(pool("six", &["2001:db8::/127"]), 1),
        with_priority(pool("four", &["10.0.0.0/31"]), 2),
    ]);
    let prefer_v4 = |name: &str| {
        dual(
            name,
            FamilyPolicy::PreferDualStack {
                primary: Family::V4,
            },
        )
    };
    // No pool has both: the first pool with the primary family wins, even at lower priority.
    assert_eq!(
        assign(&mut allocator, &prefer_v4("a")).addresses,
        ips(&["10.0.0.0"])
    );
    assert_eq!(
        assign(&mut allocator, &prefer_v4("b")).addresses,
        ips(&["10.0.0.1"])
    );
    // The primary family is exhausted: the other family.
    assert_eq!(
        assign(&mut allocator, &prefer_v4("c")).addresses,
        ips(&["2001:db8::"])
    );
}

#[test]
fn prefer_dual_stack_gets_the_second_family_when_its_pool_gains_it() {
    let mut allocator = allocator(vec![pool("p", &["10.0.0.0/24"])]);
    let request = dual(
        "a",
        FamilyPolicy::PreferDualStack {
            primary: Family::V4,
        },
    );
    assert_eq!(
        assign(&mut allocator, &request).addresses,
        ips(&["10.0.0.0"])
    );
    let changes = allocator
        .set_pools(vec![pool("p", &["10.0.0.0/24", "2001:db8::/64"])])
        .unwrap();
    assert_eq!(changes.len(), 1);
    assert_eq!(
        changes[0].after.as_ref().unwrap().addresses,
        ips(&["10.0.0.0", "2001:db8::"])
    );
}

#[test]
fn a_service_never_gets_addresses_from_two_pools() {
    let mut allocator = allocator(vec![
        with_priority(pool("four", &["10.0.0.0/24"]), 1),
        with_priority(pool("six", &["2001:db8::/64"]), 2),
    ]);
    let assignment = assign(
        &mut allocator,
        &dual(
            "a",
            FamilyPolicy::PreferDualStack {
                primary: Family::V4,
            },
        ),
    );
    assert_eq!(assignment.addresses, ips(&["10.0.0.0"]));
}

// ----- statistics ------------------------------------------------------------------------------

#[test]
fn stats_count_each_family_exactly_without_buggy_addresses() {
    let mut spec = pool(
        "p",
        &["10.0.0.0/23", "10.0.2.10-10.0.2.19", "2001:db8::/64"],
    );
    spec.avoid_buggy_ips = true;
    let mut allocator = allocator(vec![spec]);
    assign(&mut allocator, &v4("a"));
    assign(&mut allocator, &sharing(v6("b"), "k", &[80]));
    assign(&mut allocator, &sharing(v6("c"), "k", &[81]));
    let stats = allocator.pool_stats("p").unwrap();
    assert_eq!(stats.ipv4.total, 2 * 254 + 10);
    assert_eq!(stats.ipv4.in_use, 1);
    assert_eq!(stats.ipv4.available, 2 * 254 + 10 - 1);
    assert_eq!(stats.ipv6.total, 1 << 64);
    assert_eq!(stats.ipv6.in_use, 1, "a shared address counts once");
    assert_eq!(stats.ipv6.available, (1 << 64) - 1);
    let names: BTreeSet<_> = allocator.stats().into_iter().map(|s| s.pool).collect();
    assert_eq!(names, BTreeSet::from(["p".into()]));
}
