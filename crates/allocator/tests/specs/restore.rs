//! Restoring state from Services' status after a restart.

use ferrolb_allocator::{ConflictReason, Family, FamilyPolicy, ServiceRequest, SharingRefusal};

use crate::support::*;

fn with_status(mut request: ServiceRequest, status: &[&str]) -> ServiceRequest {
    request.current_addresses = ips(status);
    request
}

#[test]
fn status_addresses_are_claimed_before_new_services_are_served() {
    let mut allocator = allocator(vec![pool("p", &["10.0.0.0/24"])]);
    // "a-new" sorts first and has no status; it must not get the address "b-old" holds.
    let report = allocator.restore(vec![v4("a-new"), with_status(v4("b-old"), &["10.0.0.0"])]);
    assert!(report.failed.is_empty());
    assert_eq!(addresses_of(&allocator, "b-old"), ips(&["10.0.0.0"]));
    assert_eq!(addresses_of(&allocator, "a-new"), ips(&["10.0.0.1"]));
}

#[test]
fn restore_never_moves_an_address_even_one_the_configuration_no_longer_allows() {
    let mut allocator = allocator(vec![pool("p", &["10.0.0.0/24"])]);
    let report = allocator.restore(vec![with_status(v4("s"), &["192.0.2.7"])]);
    let assignment = &report.assigned[0];
    assert_eq!(assignment.addresses, ips(&["192.0.2.7"]));
    assert_eq!(assignment.conflicts[0].reason, ConflictReason::NotInAnyPool);
}

#[test]
fn restoring_twice_changes_nothing() {
    let mut allocator = allocator(vec![pool("p", &["10.0.0.0/24", "2001:db8::/64"])]);
    let requests = vec![
        with_status(v4("a"), &["10.0.0.5"]),
        v4("b"),
        dual(
            "c",
            FamilyPolicy::PreferDualStack {
                primary: Family::V6,
            },
        ),
    ];
    let first = allocator.restore(requests.clone());
    let second = allocator.restore(requests);
    assert_eq!(first.assigned, second.assigned);
    assert!(second.knock_on.is_empty());
}

#[test]
fn restoring_from_the_status_the_allocator_wrote_gives_the_same_assignments() {
    let pools = vec![pool("p", &["10.0.0.0/24", "2001:db8::/64"])];
    let mut first = allocator(pools.clone());
    let requests = vec![
        v4("a"),
        sharing(v4("b"), "k", &[80]),
        sharing(v4("c"), "k", &[81]),
        dual(
            "d",
            FamilyPolicy::RequireDualStack {
                primary: Family::V4,
            },
        ),
    ];
    let report = first.restore(requests.clone());
    let with_status: Vec<ServiceRequest> = requests
        .into_iter()
        .map(|mut request| {
            request.current_addresses = first
                .assignment(&request.service)
                .map(|a| a.addresses)
                .unwrap_or_default();
            request
        })
        .collect();
    let mut second = allocator(pools);
    assert_eq!(second.restore(with_status).assigned, report.assigned);
}

#[test]
fn restore_does_not_depend_on_input_order() {
    let requests = vec![
        with_status(v4("z"), &["10.0.0.3"]),
        v4("y"),
        sharing(v4("x"), "k", &[80]),
        sharing(v4("w"), "k", &[81]),
        with_status(v4("v"), &["10.0.0.1"]),
    ];
    let mut reversed = requests.clone();
    reversed.reverse();
    let mut first = allocator(vec![pool("p", &["10.0.0.0/24"])]);
    let mut second = allocator(vec![pool("p", &["10.0.0.0/24"])]);
    assert_eq!(
        first.restore(requests).assigned,
        second.restore(reversed).assigned
    );
}

#[test]
fn two_services_restoring_one_address_without_sharing_both_report_the_conflict() {
    let mut allocator = allocator(vec![pool("p", &["10.0.0.0/24"])]);
    let report = allocator.restore(vec![
        with_status(v4("a"), &["10.0.0.9"]),
        with_status(v4("b"), &["10.0.0.9"]),
    ]);
    for (assignment, other) in report.assigned.iter().zip(["b", "a"]) {
        assert_eq!(assignment.addresses, ips(&["10.0.0.9"]));
        assert!(matches!(
            &assignment.conflicts[0].reason,
            ConflictReason::Sharing(refusal) if *refusal.holder() == key(other)
        ));
    }
    // Nobody else gets the address meanwhile.
    assert_eq!(
        assign(&mut allocator, &v4("c")).addresses,
        ips(&["10.0.0.0"])
    );
    // When one of them goes away, the other's conflict clears.
    let released = allocator.release(&key("a")).unwrap();
    assert!(
        released.knock_on[0]
            .after
            .as_ref()
            .unwrap()
            .conflicts
            .is_empty()
    );
}

#[test]
fn restored_sharing_group_checks_every_rule() {
    let mut allocator = allocator(vec![pool("p", &["10.0.0.0/24"])]);
    let report = allocator.restore(vec![
        with_status(sharing(v4("a"), "k", &[80]), &["10.0.0.9"]),
        with_status(sharing(v4("b"), "k", &[80]), &["10.0.0.9"]),
    ]);
    assert!(matches!(
        &report.assigned[0].conflicts[0].reason,
        ConflictReason::Sharing(SharingRefusal::PortInUse { .. })
    ));
}

#[test]
fn requested_address_different_from_the_status_is_the_users_change() {
    let mut allocator = allocator(vec![pool("p", &["10.0.0.0/24"])]);
    let mut request = with_status(v4("s"), &["10.0.0.5"]);
    request.requested_addresses = ips(&["10.0.0.6"]);
    let report = allocator.restore(vec![request]);
    assert_eq!(report.assigned[0].addresses, ips(&["10.0.0.6"]));
    assert_eq!(allocator.pool_stats("p").unwrap().ipv4.in_use, 1);
}

#[test]
fn status_with_two_addresses_of_one_family_keeps_the_first() {
    let mut allocator = allocator(vec![pool("p", &["10.0.0.0/24"])]);
    let report = allocator.restore(vec![with_status(v4("s"), &["10.0.0.5", "10.0.0.6"])]);
    assert_eq!(report.assigned[0].addresses, ips(&["10.0.0.5"]));
}

#[test]
fn duplicate_services_in_a_restore_are_reported() {
    let mut allocator = allocator(vec![pool("p", &["10.0.0.0/24"])]);
    let report = allocator.restore(vec![v4("s"), v4("s")]);
    assert_eq!(report.duplicates, vec![key("s")]);
    assert_eq!(report.assigned.len(), 1);
}

#[test]
fn malformed_request_keeps_its_status_addresses() {
    let mut allocator = allocator(vec![pool("p", &["10.0.0.0/24"])]);
    let mut request = with_status(v4("s"), &["10.0.0.5"]);
    request.requested_addresses = ips(&["2001:db8::1"]);
    let report = allocator.restore(vec![request]);
    assert_eq!(
        report.failed[0].kept.as_ref().unwrap().addresses,
        ips(&["10.0.0.5"])
    );
    assert_eq!(
        assign(&mut allocator, &v4("other")).addresses,
        ips(&["10.0.0.0"])
    );
}
