//! The controller against ferrolb-testapiserver: restore before assign, class filtering,
//! sharing, dual-stack, release, Events and conditions, server-side apply ownership, pool
//! protection, and one writer under the Lease.

#![allow(clippy::unwrap_used, clippy::expect_used)]

mod common;

use common::*;
use ferrolb_controller::{ClassFilter, FIELD_MANAGER, POOL_FINALIZER};
use serde_json::json;

#[tokio::test]
async fn addresses_services_already_hold_are_kept_after_a_restart_and_new_services_do_not_take_them()
 {
    let (server, client) = start().await;
    server
        .store()
        .create(pool("public", &["192.0.2.0/30"]), "fixture")
        .unwrap();
    // Held before the controller started (a previous run wrote it): .2, not the lowest.
    let mut held = lb_service("held", 80);
    held["status"] = json!({"loadBalancer": {"ingress": [{"ip": "192.0.2.2"}]}});
    server
        .store()
        .create(lb_service("held", 80), "fixture")
        .unwrap();
    let mut stored = server.store().get("v1", "Service", "shop", "held").unwrap();
    stored["status"] = held["status"].clone();
    server.store().upsert(stored).unwrap();
    for name in ["new-a", "new-b", "new-c"] {
        server
            .store()
            .create(lb_service(name, 80), "fixture")
            .unwrap();
    }
    let mut controller = run(&client, options("a")).await;
    controller.wait_leading().await;
    eventually("the new Services get the three other addresses", || {
        ["new-a", "new-b", "new-c"]
            .iter()
            .all(|n| ingress(&server, n).len() == 1)
    })
    .await;
    assert_eq!(ingress(&server, "held"), vec!["192.0.2.2"]);
    let mut taken: Vec<String> = ["new-a", "new-b", "new-c"]
        .iter()
        .flat_map(|n| ingress(&server, n))
        .collect();
    taken.sort();
    assert_eq!(taken, vec!["192.0.2.0", "192.0.2.1", "192.0.2.3"]);
    // The held Service's ingress was never written with another address.
    assert!(
        server
            .writes()
            .iter()
            .filter(|w| w.path.ends_with("/services/held/status"))
            .all(|w| !w.body.contains("192.0.2.0")
                && !w.body.contains("192.0.2.1")
                && !w.body.contains("192.0.2.3"))
    );
    controller.stop().await;
}

#[tokio::test]
async fn services_of_another_class_are_left_alone() {
    let (server, client) = start().await;
    server
        .store()
        .create(pool("public", &["192.0.2.0/28"]), "fixture")
        .unwrap();
    let mut other = lb_service("other", 80);
    other["spec"]["loadBalancerClass"] = json!("example.com/other");
    server.store().create(other, "fixture").unwrap();
    server
        .store()
        .create(lb_service("plain", 80), "fixture")
        .unwrap();
    let mut controller = run(&client, options("a")).await;
    controller.wait_leading().await;
    eventually("the Service without a class gets an address", || {
        ingress(&server, "plain") == vec!["192.0.2.0"]
    })
    .await;
    assert!(
        !server
            .writes()
            .iter()
            .any(|w| w.path.contains("/services/other"))
    );
    assert!(ingress(&server, "other").is_empty());
    controller.stop().await;
}

#[tokio::test]
async fn with_a_required_class_only_services_of_that_class_get_addresses() {
    let (server, client) = start().await;
    server
        .store()
        .create(pool("public", &["192.0.2.0/28"]), "fixture")
        .unwrap();
    let mut ours = lb_service("ours", 80);
    ours["spec"]["loadBalancerClass"] = json!("ferrolb.io/bgp");
    server.store().create(ours, "fixture").unwrap();
    server
        .store()
        .create(lb_service("plain", 80), "fixture")
        .unwrap();
    let mut opts = options("a");
    opts.filter = ClassFilter {
        class: Some("ferrolb.io/bgp".into()),
        require_class: true,
    };
    let mut controller = run(&client, opts).await;
    controller.wait_leading().await;
    eventually("the Service of our class gets an address", || {
        ingress(&server, "ours").len() == 1
    })
    .await;
    assert!(ingress(&server, "plain").is_empty());
    assert!(condition(&server, "plain").is_none());
    controller.stop().await;
}

#[tokio::test]
async fn services_with_one_sharing_key_and_distinct_ports_share_an_address() {
    let (server, client) = start().await;
    server
        .store()
        .create(pool("public", &["192.0.2.0/28"]), "fixture")
        .unwrap();
    for (name, port) in [("dns-tcp", 53), ("web", 80)] {
        let mut svc = lb_service(name, port);
        svc["metadata"]["annotations"] = json!({"metallb.io/allow-shared-ip": "edge"});
        server.store().create(svc, "fixture").unwrap();
    }
    let mut controller = run(&client, options("a")).await;
    controller.wait_leading().await;
    eventually("both Services hold an address", || {
        ingress(&server, "dns-tcp").len() == 1 && ingress(&server, "web").len() == 1
    })
    .await;
    assert_eq!(ingress(&server, "dns-tcp"), ingress(&server, "web"));
    controller.stop().await;
}

#[tokio::test]
async fn a_dual_stack_service_gets_one_address_per_family_primary_first() {
    let (server, client) = start().await;
    server
        .store()
        .create(
            pool("public", &["192.0.2.0/28", "2001:db8::/124"]),
            "fixture",
        )
        .unwrap();
    let mut svc = lb_service("dual", 80);
    svc["spec"]["ipFamilyPolicy"] = json!("RequireDualStack");
    svc["spec"]["ipFamilies"] = json!(["IPv6", "IPv4"]);
    server.store().create(svc, "fixture").unwrap();
    let mut controller = run(&client, options("a")).await;
    controller.wait_leading().await;
    eventually("two addresses", || ingress(&server, "dual").len() == 2).await;
    assert_eq!(ingress(&server, "dual"), vec!["2001:db8::", "192.0.2.0"]);
    controller.stop().await;
}

#[tokio::test]
async fn a_deleted_service_releases_its_address_for_the_next_one() {
    let (server, client) = start().await;
    server
        .store()
        .create(pool("public", &["192.0.2.0/31"]), "fixture")
        .unwrap();
    server
        .store()
        .create(lb_service("first", 80), "fixture")
        .unwrap();
    server
        .store()
        .create(lb_service("second", 80), "fixture")
        .unwrap();
    server
        .store()
        .create(lb_service("third", 80), "fixture")
        .unwrap();
    let mut controller = run(&client, options("a")).await;
    controller.wait_leading().await;
    eventually("the pool is full and third waits", || {
        condition(&server, "third").is_some_and(|c| c.1 == "AllocationFailed")
    })
    .await;
    let (_, _, message) = condition(&server, "third").unwrap();
    assert!(message.contains("no available"), "{message}");
    let freed = ingress(&server, "first");
    server
        .store()
        .delete("v1", "Service", "shop", "first")
        .unwrap();
    eventually("third gets the freed address", || {
        ingress(&server, "third") == freed
    })
    .await;
    assert_eq!(condition(&server, "third").unwrap().0, "True");
    controller.stop().await;
}

#[tokio::test]
async fn a_service_that_stops_being_a_load_balancer_is_cleared_and_told_so() {
    let (server, client) = start().await;
    server
        .store()
        .create(pool("public", &["192.0.2.0/28"]), "fixture")
        .unwrap();
    server
        .store()
        .create(lb_service("web", 80), "fixture")
        .unwrap();
    let mut controller = run(&client, options("a")).await;
    controller.wait_leading().await;
    eventually("assigned", || ingress(&server, "web").len() == 1).await;
    let mut svc = server.store().get("v1", "Service", "shop", "web").unwrap();
    svc["spec"]["type"] = json!("ClusterIP");
    server.store().upsert(svc).unwrap();
    eventually("ingress and condition cleared", || {
        ingress(&server, "web").is_empty() && condition(&server, "web").is_none()
    })
    .await;
    eventually("an IPReleased Event", || {
        events(&server, "web")
            .iter()
            .any(|e| e.1 == "IPReleased" && e.2.contains("192.0.2.0"))
    })
    .await;
    // The address is free again.
    server
        .store()
        .create(lb_service("next", 80), "fixture")
        .unwrap();
    eventually("next takes it", || {
        ingress(&server, "next") == vec!["192.0.2.0"]
    })
    .await;
    controller.stop().await;
}

#[tokio::test]
async fn events_and_the_condition_say_which_address_from_which_pool_or_why_none() {
    let (server, client) = start().await;
    server
        .store()
        .create(pool("public", &["192.0.2.0/28"]), "fixture")
        .unwrap();
    server
        .store()
        .create(lb_service("web", 80), "fixture")
        .unwrap();
    let mut missing = lb_service("lost", 80);
    missing["metadata"]["annotations"] = json!({"ferrolb.io/address-pool": "nonexistent"});
    server.store().create(missing, "fixture").unwrap();
    let mut controller = run(&client, options("a")).await;
    controller.wait_leading().await;
    eventually("an IPAllocated Event", || {
        events(&server, "web").iter().any(|e| e.1 == "IPAllocated")
    })
    .await;
    let allocated = events(&server, "web");
    let event = allocated.iter().find(|e| e.1 == "IPAllocated").unwrap();
    assert_eq!(event.0, "Normal");
    assert_eq!(event.2, "assigned 192.0.2.0 from pool public");
    assert_eq!(event.3, "ferrolb.io/controller");
    assert_eq!(
        condition(&server, "web").unwrap(),
        (
            "True".into(),
            "Assigned".into(),
            "192.0.2.0 from pool public".into()
        )
    );
    eventually("an AllocationFailed Event", || {
        events(&server, "lost")
            .iter()
            .any(|e| e.1 == "AllocationFailed")
    })
    .await;
    let failed = events(&server, "lost");
    let event = failed.iter().find(|e| e.1 == "AllocationFailed").unwrap();
    assert_eq!(event.0, "Warning");
    assert_eq!(event.2, "pool nonexistent does not exist");
    assert_eq!(
        condition(&server, "lost").unwrap(),
        (
            "False".into(),
            "AllocationFailed".into(),
            "pool nonexistent does not exist".into()
        )
    );
    assert!(ingress(&server, "lost").is_empty());
    controller.stop().await;
}

#[tokio::test]
async fn status_is_written_by_server_side_apply_under_one_field_manager() {
    let (server, client) = start().await;
    server
        .store()
        .create(pool("public", &["192.0.2.0/28"]), "fixture")
        .unwrap();
    server
        .store()
        .create(lb_service("web", 80), "fixture")
        .unwrap();
    let mut controller = run(&client, options("a")).await;
    controller.wait_leading().await;
    eventually("assigned", || ingress(&server, "web").len() == 1).await;
    let writes: Vec<_> = server
        .writes()
        .into_iter()
        .filter(|w| w.path.ends_with("/services/web/status"))
        .collect();
    assert!(!writes.is_empty());
    for write in &writes {
        assert_eq!(write.method, "PATCH");
        assert_eq!(
            write.content_type.as_deref(),
            Some("application/apply-patch+yaml")
        );
        assert_eq!(write.field_manager.as_deref(), Some(FIELD_MANAGER));
        assert_eq!(write.param("force").as_deref(), Some("true"));
    }
    let managed = service(&server, "web").metadata.managed_fields.unwrap();
    let ours = managed
        .iter()
        .find(|m| m.manager.as_deref() == Some(FIELD_MANAGER))
        .expect("a managedFields entry for ferrolb-controller");
    assert_eq!(ours.operation.as_deref(), Some("Apply"));
    assert_eq!(ours.subresource.as_deref(), Some("status"));
    controller.stop().await;
}

#[tokio::test]
async fn a_pool_in_use_cannot_be_deleted_until_its_last_service_releases_it() {
    let (server, client) = start().await;
    server
        .store()
        .create(pool("public", &["192.0.2.0/28"]), "fixture")
        .unwrap();
    server
        .store()
        .create(lb_service("web", 80), "fixture")
        .unwrap();
    let mut controller = run(&client, options("a")).await;
    controller.wait_leading().await;
    let finalizers = |server: &ferrolb_testapiserver::ServerHandle| {
        server
            .store()
            .get(
                "ferrolb.io/v1beta1",
                "IPAddressPool",
                "ferrolb-system",
                "public",
            )
            .map(|p| p["metadata"]["finalizers"].clone())
    };
    eventually("the pool is protected", || {
        finalizers(&server).is_some_and(|f| f == json!([POOL_FINALIZER]))
    })
    .await;
    eventually("the pool's status counts the address", || {
        server
            .store()
            .get(
                "ferrolb.io/v1beta1",
                "IPAddressPool",
                "ferrolb-system",
                "public",
            )
            .is_some_and(|p| {
                p["status"]["assignedIPv4"] == json!("1")
                    && p["status"]["availableIPv4"] == json!("15")
            })
    })
    .await;
    server
        .store()
        .delete(
            "ferrolb.io/v1beta1",
            "IPAddressPool",
            "ferrolb-system",
            "public",
        )
        .unwrap();
    eventually("the terminating pool says who holds it", || {
        server
            .store()
            .get(
                "ferrolb.io/v1beta1",
                "IPAddressPool",
                "ferrolb-system",
                "public",
            )
            .is_some_and(|p| {
                p["status"]["conditions"]
                    .as_array()
                    .into_iter()
                    .flatten()
                    .any(|c| {
                        c["type"] == json!("InUse")
                            && c["message"].as_str().is_some_and(|m| {
                                m.contains("being deleted") && m.contains("shop/web")
                            })
                    })
            })
    })
    .await;
    assert_eq!(ingress(&server, "web"), vec!["192.0.2.0"]);
    server
        .store()
        .delete("v1", "Service", "shop", "web")
        .unwrap();
    eventually("the pool is gone", || finalizers(&server).is_none()).await;
    controller.stop().await;
}

#[tokio::test]
async fn two_controllers_never_both_write_and_the_second_takes_over_when_the_leader_stops() {
    let (server, client) = start().await;
    server
        .store()
        .create(pool("public", &["192.0.2.0/28"]), "fixture")
        .unwrap();
    server
        .store()
        .create(lb_service("web", 80), "fixture")
        .unwrap();
    let mut a = run(&client, options("a")).await;
    a.wait_leading().await;
    let b = run(&client, options("b")).await;
    eventually("assigned", || ingress(&server, "web").len() == 1).await;
    // b runs through several lease durations without leading, so without a single pass.
    let deadline = tokio::time::Instant::now() + std::time::Duration::from_secs(5);
    let mut b_status = b.status.clone();
    while tokio::time::Instant::now() < deadline {
        let status = b_status.borrow_and_update().clone();
        assert!(!status.leader && status.passes == 0, "b wrote: {status:?}");
        tokio::time::sleep(std::time::Duration::from_millis(50)).await;
    }
    a.stop().await;
    let mut b = b;
    b.wait_leading().await;
    server
        .store()
        .create(lb_service("api", 80), "fixture")
        .unwrap();
    eventually("b assigns", || ingress(&server, "api") == vec!["192.0.2.1"]).await;
    // b restored before assigning: web kept its address.
    assert_eq!(ingress(&server, "web"), vec!["192.0.2.0"]);
    b.stop().await;
}
