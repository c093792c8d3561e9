//! Exhaustion, release, and Services waiting for addresses.

use ferrolb_allocator::{AllocationFailure, Family, FamilyPolicy, ReleaseError, ServicePort};

use crate::support::*;

#[test]
fn exhaustion_is_typed_with_the_families_and_pools_tried() {
    let mut allocator = allocator(vec![pool("p", &["10.0.0.0/32", "2001:db8::/127"])]);
    assign(&mut allocator, &v4("a"));
    let error = refuse(&mut allocator, &v4("b"));
    assert_eq!(
        error.failure,
        AllocationFailure::Exhausted {
            families: vec![Family::V4],
            pools: vec!["p".into()]
        }
    );
    assert_eq!(error.kept, None);
    assert_eq!(allocator.pending()[0].service, key("b"));
}

#[test]
fn release_of_an_unknown_service_is_typed() {
    let mut allocator = allocator(vec![pool("p", &["10.0.0.0/24"])]);
    assert_eq!(
        allocator.release(&key("ghost")),
        Err(ReleaseError::UnknownService {
            service: key("ghost")
        })
    );
}

#[test]
fn releasing_a_waiting_service_forgets_it() {
    let mut allocator = allocator(vec![pool("p", &["10.0.0.0/32"])]);
    assign(&mut allocator, &v4("a"));
    refuse(&mut allocator, &v4("b"));
    let released = allocator.release(&key("b")).unwrap();
    assert!(released.addresses.is_empty());
    assert!(allocator.pending().is_empty());
    assert!(allocator.release(&key("a")).unwrap().knock_on.is_empty());
}

#[test]
fn released_address_is_handed_to_the_first_waiting_service_that_can_use_it() {
    let mut allocator = allocator(vec![pool("p", &["10.0.0.0/32", "2001:db8::/128"])]);
    assign(&mut allocator, &v4("holder"));
    assign(&mut allocator, &v6("v6-holder"));
    // "a" needs both families; it cannot use a freed IPv4 address alone and is skipped.
    refuse(
        &mut allocator,
        &dual(
            "a",
            FamilyPolicy::RequireDualStack {
                primary: Family::V4,
            },
        ),
    );
    refuse(&mut allocator, &v4("b"));
    let released = allocator.release(&key("holder")).unwrap();
    assert_eq!(released.addresses, ips(&["10.0.0.0"]));
    assert_eq!(released.knock_on.len(), 1);
    assert_eq!(released.knock_on[0].service, key("b"));
    let pending: Vec<_> = allocator.pending().into_iter().map(|p| p.service).collect();
    assert_eq!(pending, vec![key("a")]);
}

#[test]
fn waiting_for_a_requested_address_is_served_when_it_is_freed() {
    let mut allocator = allocator(vec![pool("p", &["10.0.0.0/24"])]);
    let mut wants = v4("wants");
    wants.requested_addresses = ips(&["10.0.0.0"]);
    assign(&mut allocator, &v4("holder"));
    assert!(matches!(
        failure(&mut allocator, &wants),
        AllocationFailure::Sharing { .. }
    ));
    let released = allocator.release(&key("holder")).unwrap();
    assert_eq!(
        released.knock_on[0].after.as_ref().unwrap().addresses,
        ips(&["10.0.0.0"])
    );
}

#[test]
fn waiting_sharer_is_served_when_a_holder_frees_the_port() {
    let mut allocator = allocator(vec![pool("p", &["10.0.0.0/24"])]);
    assign(&mut allocator, &sharing(v4("a"), "k", &[80, 443]));
    let mut joiner = sharing(v4("b"), "k", &[443]);
    joiner.requested_addresses = ips(&["10.0.0.0"]);
    refuse(&mut allocator, &joiner);
    // "a" drops port 443: "b" can join now.
    let assigned = allocator.assign(&sharing(v4("a"), "k", &[80])).unwrap();
    assert_eq!(assigned.knock_on.len(), 1);
    assert_eq!(
        assigned.knock_on[0].after.as_ref().unwrap().addresses,
        ips(&["10.0.0.0"])
    );
}

#[test]
fn prefer_dual_stack_gets_its_second_family_when_one_is_freed() {
    let mut allocator = allocator(vec![pool("p", &["10.0.0.0/24", "2001:db8::/128"])]);
    assign(&mut allocator, &v6("v6-holder"));
    let partial = assign(
        &mut allocator,
        &dual(
            "s",
            FamilyPolicy::PreferDualStack {
                primary: Family::V4,
            },
        ),
    );
    assert_eq!(partial.addresses, ips(&["10.0.0.0"]));
    assert!(
        allocator.pending().is_empty(),
        "a partial PreferDualStack is served"
    );
    let released = allocator.release(&key("v6-holder")).unwrap();
    assert_eq!(
        released.knock_on[0].after.as_ref().unwrap().addresses,
        ips(&["10.0.0.0", "2001:db8::"])
    );
}

#[test]
fn waiting_services_of_other_pools_are_left_alone() {
    let mut allocator = allocator(vec![
        pool("a", &["10.0.0.0/32"]),
        pool("b", &["10.0.1.0/32"]),
    ]);
    let in_pool = |name: &str, pool: &str| {
        let mut request = v4(name);
        request.requested_pool = Some(pool.to_owned());
        request
    };
    assign(&mut allocator, &in_pool("holder-a", "a"));
    assign(&mut allocator, &in_pool("holder-b", "b"));
    refuse(&mut allocator, &in_pool("wait-a", "a"));
    refuse(&mut allocator, &in_pool("wait-b", "b"));
    let released = allocator.release(&key("holder-a")).unwrap();
    assert_eq!(released.knock_on.len(), 1);
    assert_eq!(released.knock_on[0].service, key("wait-a"));
    let pending: Vec<_> = allocator.pending().into_iter().map(|p| p.service).collect();
    assert_eq!(pending, vec![key("wait-b")]);
}

#[test]
fn ports_of_different_protocols_do_not_collide() {
    let mut allocator = allocator(vec![pool("p", &["10.0.0.0/24"])]);
    assign(&mut allocator, &sharing(v4("tcp"), "dns", &[53]));
    let mut udp = sharing(v4("udp"), "dns", &[]);
    udp.ports = vec![ServicePort::udp(53)];
    assert_eq!(assign(&mut allocator, &udp).addresses, ips(&["10.0.0.0"]));
}

#[test]
fn exhaustion_message_names_the_families_and_pools() {
    let mut allocator = allocator(vec![
        pool("a", &["10.0.0.0/32"]),
        pool("b", &["10.0.1.0/32"]),
    ]);
    assign(&mut allocator, &v4("x"));
    assign(&mut allocator, &v4("y"));
    assert_eq!(
        refuse(&mut allocator, &v4("z")).to_string(),
        "cannot allocate for default/z: no available IPv4 address in pools [a, b]"
    );
}
