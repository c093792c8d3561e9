//! Configuration changes report exactly the assignments they affect, and move nothing.

use ferrolb_allocator::{
    ConflictReason, LabelSelector, PoolRefusal, ServiceAllocation, ServiceKey,
};

use crate::support::*;

fn three_services() -> ferrolb_allocator::Allocator {
    let mut allocator = allocator(vec![
        with_priority(pool("a", &["10.0.0.0/24"]), 1),
        with_priority(pool("b", &["10.0.1.0/24"]), 2),
    ]);
    assign(&mut allocator, &v4("in-a"));
    let mut in_b = v4("in-b");
    in_b.requested_pool = Some("b".to_owned());
    assign(&mut allocator, &in_b);
    let mut also_b = v4("also-in-b");
    also_b.requested_addresses = ips(&["10.0.1.200"]);
    assign(&mut allocator, &also_b);
    allocator
}

#[test]
fn shrinking_a_pool_reports_only_the_services_outside_the_new_ranges() {
    let mut allocator = three_services();
    let changes = allocator
        .set_pools(vec![
            with_priority(pool("a", &["10.0.0.0/24"]), 1),
            with_priority(pool("b", &["10.0.1.0/25"]), 2),
        ])
        .unwrap();
    let affected: Vec<&ServiceKey> = changes.iter().map(|c| &c.service).collect();
    assert_eq!(affected, vec![&key("also-in-b")]);
    let after = changes[0].after.as_ref().unwrap();
    assert_eq!(after.addresses, ips(&["10.0.1.200"]));
    assert_eq!(after.conflicts[0].reason, ConflictReason::NotInAnyPool);
}

#[test]
fn unchanged_configuration_reports_nothing() {
    let mut allocator = three_services();
    let changes = allocator
        .set_pools(vec![
            with_priority(pool("b", &["10.0.1.0/24"]), 2),
            with_priority(pool("a", &["10.0.0.0/24"]), 1),
        ])
        .unwrap();
    assert_eq!(changes, vec![]);
}

#[test]
fn renaming_a_pool_rehomes_its_addresses_without_moving_them() {
    let mut allocator = allocator(vec![pool("old", &["10.0.0.0/24"])]);
    assign(&mut allocator, &v4("s"));
    let changes = allocator
        .set_pools(vec![pool("new", &["10.0.0.0/24"])])
        .unwrap();
    let after = changes[0].after.as_ref().unwrap();
    assert_eq!(after.pool.as_deref(), Some("new"));
    assert_eq!(after.addresses, ips(&["10.0.0.0"]));
    assert!(after.conflicts.is_empty());
    assert_eq!(allocator.pool_stats("new").unwrap().ipv4.in_use, 1);
}

#[test]
fn address_moved_away_from_the_requested_pool_is_a_conflict() {
    let mut allocator = allocator(vec![pool("old", &["10.0.0.0/24"])]);
    let mut request = v4("s");
    request.requested_pool = Some("old".to_owned());
    assign(&mut allocator, &request);
    let changes = allocator
        .set_pools(vec![pool("new", &["10.0.0.0/24"])])
        .unwrap();
    assert_eq!(
        changes[0].after.as_ref().unwrap().conflicts[0].reason,
        ConflictReason::NotInRequestedPool {
            requested: "old".into(),
            actual: "new".into()
        }
    );
    // The same request, re-sent by the controller, still does not move the Service.
    let assignment = assign(&mut allocator, &request);
    assert_eq!(assignment.addresses, ips(&["10.0.0.0"]));
}

#[test]
fn restoring_a_deleted_pool_clears_the_conflicts() {
    let mut allocator = three_services();
    allocator
        .set_pools(vec![with_priority(pool("a", &["10.0.0.0/24"]), 1)])
        .unwrap();
    let changes = allocator
        .set_pools(vec![
            with_priority(pool("a", &["10.0.0.0/24"]), 1),
            with_priority(pool("b", &["10.0.1.0/24"]), 2),
        ])
        .unwrap();
    assert_eq!(changes.len(), 2);
    assert!(
        changes
            .iter()
            .all(|c| c.after.as_ref().unwrap().conflicts.is_empty())
    );
    assert_eq!(allocator.pool_stats("b").unwrap().ipv4.in_use, 2);
}

#[test]
fn deleted_pool_addresses_are_not_handed_out_when_a_pool_covers_them_again() {
    let mut allocator = allocator(vec![pool("p", &["10.0.0.0/31"])]);
    assign(&mut allocator, &v4("s"));
    allocator
        .set_pools(vec![pool("q", &["10.0.1.0/24"])])
        .unwrap();
    allocator
        .set_pools(vec![
            pool("q", &["10.0.1.0/24"]),
            pool("p", &["10.0.0.0/31"]),
        ])
        .unwrap();
    let mut request = v4("t");
    request.requested_pool = Some("p".to_owned());
    assert_eq!(
        assign(&mut allocator, &request).addresses,
        ips(&["10.0.0.1"])
    );
}

#[test]
fn preview_reports_the_same_changes_and_changes_nothing() {
    let mut allocator = three_services();
    let new_pools = vec![with_priority(pool("a", &["10.0.0.0/24"]), 1)];
    let preview = allocator.preview_pools(new_pools.clone()).unwrap();
    assert_eq!(preview.len(), 2);
    assert_eq!(
        allocator.assignment(&key("in-b")).unwrap().pool.as_deref(),
        Some("b")
    );
    assert_eq!(allocator.set_pools(new_pools).unwrap(), preview);
}

#[test]
fn waiting_services_are_served_when_a_pool_is_added() {
    let mut allocator = allocator(vec![pool("a", &["10.0.0.0/32"])]);
    assign(&mut allocator, &v4("first"));
    refuse(&mut allocator, &v4("second"));
    let changes = allocator
        .set_pools(vec![
            pool("a", &["10.0.0.0/32"]),
            pool("b", &["10.0.1.0/24"]),
        ])
        .unwrap();
    assert_eq!(changes.len(), 1);
    assert_eq!(changes[0].before, None);
    assert_eq!(
        changes[0].after.as_ref().unwrap().addresses,
        ips(&["10.0.1.0"])
    );
    assert!(allocator.pending().is_empty());
}

#[test]
fn service_selector_change_reports_the_services_it_no_longer_serves() {
    let selective = |tier: &str| {
        let mut spec = pool("p", &["10.0.0.0/24"]);
        spec.service_allocation = Some(ServiceAllocation {
            service_selectors: vec![LabelSelector::with_labels([("tier", tier)])],
            ..ServiceAllocation::default()
        });
        spec
    };
    let mut allocator = allocator(vec![selective("web")]);
    let mut web = v4("web");
    web.labels = [("tier".to_owned(), "web".to_owned())].into();
    assign(&mut allocator, &web);
    let changes = allocator.set_pools(vec![selective("db")]).unwrap();
    assert_eq!(
        changes[0].after.as_ref().unwrap().conflicts[0].reason,
        ConflictReason::PoolRefuses {
            pool: "p".into(),
            refusal: PoolRefusal::ServiceSelectorsDoNotMatch
        }
    );
}

#[test]
fn namespace_label_change_reports_exactly_that_namespace() {
    let mut spec = pool("p", &["10.0.0.0/24"]);
    spec.service_allocation = Some(ServiceAllocation {
        namespace_selectors: vec![LabelSelector::with_labels([("lb", "yes")])],
        ..ServiceAllocation::default()
    });
    let mut allocator = allocator(vec![spec]);
    let yes = || [("lb".to_owned(), "yes".to_owned())].into();
    allocator.set_namespace_labels("default", yes());
    allocator.set_namespace_labels("other", yes());
    assign(&mut allocator, &v4("s"));
    let mut other = v4("t");
    other.service = ServiceKey::new("other", "t");
    assign(&mut allocator, &other);
    let changes = allocator.set_namespace_labels("default", Default::default());
    assert_eq!(changes.len(), 1);
    assert_eq!(changes[0].service, key("s"));
    assert!(matches!(
        changes[0].after.as_ref().unwrap().conflicts[0].reason,
        ConflictReason::PoolRefuses { .. }
    ));
    assert!(
        allocator
            .set_namespace_labels("default", Default::default())
            .is_empty()
    );
}
