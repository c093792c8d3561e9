//! `--bind-vips` for real: addresses appear on and disappear from an interface inside a lab
//! node's network namespace. Needs root.

#![allow(clippy::unwrap_used, clippy::expect_used)]

use std::collections::BTreeSet;
use std::net::IpAddr;

use ferrolb_labtest::{Lab, LabSpec, RouterKind};
use ferrolb_speaker::vip_binding::{VipBindError, VipBinder};

fn addresses(lab: &Lab, ns: &str, dev: &str) -> String {
    lab.exec_ok(ns, &["ip", "addr", "show", "dev", dev])
        .expect("ip addr")
}

fn set(addrs: &[&str]) -> BTreeSet<IpAddr> {
    addrs.iter().map(|a| a.parse().unwrap()).collect()
}

#[test]
fn announced_addresses_are_bound_and_only_ours_are_unbound() {
    let lab =
        Lab::up(LabSpec::new(RouterKind::Frr).with_nodes(1)).unwrap_or_else(|e| panic!("{e}"));
    let ns = lab.node_ns(1);
    // An operator's own address on lo: we must never remove it.
    lab.exec_ok(&ns, &["ip", "addr", "add", "203.0.113.99/32", "dev", "lo"])
        .unwrap();

    let result = ferrolb_labtest::spawn_in_netns(&ns, || {
        let rt = tokio::runtime::Builder::new_current_thread()
            .enable_all()
            .build()
            .unwrap();
        rt.block_on(async {
            let mut binder = VipBinder::new("lo").await?;
            let first = binder
                .sync(&set(&["203.0.113.10", "2001:db8:ff::10", "203.0.113.99"]))
                .await?;
            let second = binder.sync(&set(&["203.0.113.10"])).await?;
            Ok::<_, VipBindError>((first, second, binder.bound().clone()))
        })
        .map_err(|e| e.to_string())
    })
    .join()
    .unwrap()
    .unwrap();
    let (first, second, bound) = result.expect("binding works");
    assert_eq!(
        first.added,
        vec![
            "203.0.113.10".parse::<IpAddr>().unwrap(),
            "2001:db8:ff::10".parse().unwrap()
        ]
    );
    assert_eq!(
        second.removed,
        vec!["2001:db8:ff::10".parse::<IpAddr>().unwrap()]
    );
    assert_eq!(bound, set(&["203.0.113.10"]));
    let shown = addresses(&lab, &ns, "lo");
    assert!(shown.contains("203.0.113.10/32"), "{shown}");
    assert!(
        shown.contains("203.0.113.99/32"),
        "the operator's address stays: {shown}"
    );
    assert!(!shown.contains("2001:db8:ff::10"), "{shown}");
}

#[test]
fn unknown_interface_is_a_clear_error() {
    let lab =
        Lab::up(LabSpec::new(RouterKind::Frr).with_nodes(1)).unwrap_or_else(|e| panic!("{e}"));
    let err = ferrolb_labtest::spawn_in_netns(&lab.node_ns(1), || {
        let rt = tokio::runtime::Builder::new_current_thread()
            .enable_all()
            .build()
            .unwrap();
        rt.block_on(async { VipBinder::new("nosuch0").await.err().map(|e| e.to_string()) })
    })
    .join()
    .unwrap()
    .unwrap();
    assert_eq!(err.as_deref(), Some("interface nosuch0 not found"));
}
