//! `ferrolb speaker` end to end in the network-namespace lab: three nodes each run the real
//! binary (`--bind-vips lo`) and an HTTP server that answers with the node's name, one FRR
//! router balances a client's requests across them. Assertions come from FRR's own JSON
//! (BGP table, zebra, neighbors), bgpd's log and real requests from the client. Needs root
//! (CI runs as root); without namespaces these tests fail with the lab's message, they never
//! skip.

#![allow(clippy::unwrap_used, clippy::expect_used)]

mod lab_support;

use std::collections::BTreeSet;
use std::os::unix::process::ExitStatusExt;

use ferrolb_labtest::wait_for;
use lab_support::*;
use nix::sys::signal::Signal;
use serde_json::Value;

fn all4() -> BTreeSet<String> {
    (1..=3).map(node4).collect()
}

fn all6() -> BTreeSet<String> {
    (1..=3).map(node6).collect()
}

fn hops4(nodes: &[usize]) -> BTreeSet<String> {
    nodes.iter().map(|i| node4(*i)).collect()
}

fn hops6(nodes: &[usize]) -> BTreeSet<String> {
    nodes.iter().map(|i| node6(*i)).collect()
}

/// The lab demo: `examples/lab` in the folder, a speaker on each of three nodes, and the
/// router with three paths for both of the Service's addresses.
fn demo(cluster: &mut Cluster) {
    cluster.write_examples();
    cluster.start_speakers();
    wait_next_hops(&cluster.lab, PREFIX4, &all4());
    wait_next_hops(&cluster.lab, PREFIX6, &all6());
}

fn has_example_communities(path: &Value) -> bool {
    communities(path) == ["64500:100"] && large_communities(path) == ["4200000000:1:1"]
}

#[test]
fn three_nodes_announce_the_service_with_three_next_hops_and_communities() {
    let mut c = Cluster::up(3);
    c.write_examples();
    c.start_speakers();

    for (prefix, hops) in [(PREFIX4, all4()), (PREFIX6, all6())] {
        // Multipath flags come with the best-path run after the last path arrives.
        let paths = wait_paths(
            &c.lab,
            prefix,
            3,
            "the examples' attributes, multipath",
            |p| has_example_communities(p) && p["multipath"] == true,
        );
        let got: BTreeSet<String> = paths.iter().map(next_hop).collect();
        assert_eq!(got, hops, "{prefix}: {paths:?}");
        for p in &paths {
            assert_eq!(communities(p), ["64500:100"], "{p}");
            assert_eq!(large_communities(p), ["4200000000:1:1"], "{p}");
            assert_eq!(p["aspath"]["string"], "4200000000", "{p}");
            assert_eq!(p["origin"], "IGP", "{p}");
            assert_eq!(p["valid"], true, "{p}");
            // One IPv4 session per node carries both families (MP-BGP for IPv6).
            let peer = p["peer"]["peerId"].as_str().unwrap().to_string();
            assert!(all4().contains(&peer), "{p}");
            assert_eq!(p["peer"]["type"], "external", "{p}");
        }
        assert_eq!(
            paths
                .iter()
                .filter(|p| p["bestpath"]["overall"] == true)
                .count(),
            1,
            "{paths:?}"
        );
        // zebra installs one route with the three next hops, and so does the kernel.
        wait_fib(&c.lab, prefix, &hops);
        assert_eq!(
            kernel_next_hops(&c.lab, prefix),
            hops,
            "kernel route for {prefix}"
        );
    }
}

#[test]
fn client_requests_to_the_vip_are_answered_by_different_nodes() {
    let mut c = Cluster::up(3);
    demo(&mut c);
    wait_fib(&c.lab, PREFIX4, &all4());
    wait_fib(&c.lab, PREFIX6, &all6());
    for i in 1..=3 {
        let lo = c.lo_addresses(i);
        assert!(lo.contains(VIP4) && lo.contains(VIP6), "n{i} lo: {lo:?}");
    }

    let everyone = set(&["n1", "n2", "n3"]);
    for url in [url4(VIP4), url6(VIP6)] {
        // The router hashes each connection (new source port) onto one of three next hops:
        // within 90 requests every node answers, unless something is wrong.
        let mut answers = Vec::new();
        while answers.len() < 90 {
            answers.extend(c.requests(&url, 15));
            let (by_node, _) = tally(&answers);
            if by_node.keys().cloned().collect::<BTreeSet<_>>() == everyone {
                break;
            }
        }
        let (by_node, failed) = tally(&answers);
        assert!(failed.is_empty(), "{url}: failed requests: {failed:?}");
        assert_eq!(
            by_node.keys().cloned().collect::<BTreeSet<_>>(),
            everyone,
            "{url}: answers per node {by_node:?}"
        );
    }
}

#[test]
fn draining_a_node_loses_no_request() {
    // n1 is a configured neighbor of the router, so FRR keeps it (and the NOTIFICATION it
    // received) after the session closes.
    let mut c = Cluster::with_router_config(3, frr_config(&[1]));
    demo(&mut c);
    wait_fib(&c.lab, PREFIX4, &all4());
    wait_fib(&c.lab, PREFIX6, &all6());
    let n1 = node4(1);
    let log = UpdateLog::start(&c.lab);

    let client = c.client_loop(VIP4);
    client.wait_answer_from("n1");
    c.signal(1, Signal::SIGTERM);

    // 1. n1's routes come back with GRACEFUL_SHUTDOWN; the router's policy gives them
    //    local-pref 0, so n1 leaves the ECMP route while its session and paths remain.
    for (prefix, others) in [(PREFIX4, hops4(&[2, 3])), (PREFIX6, hops6(&[2, 3]))] {
        wait_for(TIMEOUT, POLL, || match path_from(&c.lab, prefix, &n1) {
            Some(p)
                if communities(&p) == ["64500:100", "gracefulShutdown"]
                    && large_communities(&p) == ["4200000000:1:1"]
                    && p["locPrf"] == 0 =>
            {
                Ok(())
            }
            other => Err(other),
        })
        .unwrap_or_else(|e| panic!("n1's {prefix} never carried graceful-shutdown: {e}"));
        wait_for(TIMEOUT, POLL, || {
            let fib = fib_next_hops(&c.lab, prefix);
            let draining = path_from(&c.lab, prefix, &n1).is_some();
            if fib == others && draining {
                Ok(())
            } else {
                Err((fib, draining))
            }
        })
        .unwrap_or_else(|e| {
            panic!("{prefix}: n1 did not leave the ECMP route before its path went: {e}")
        });
    }
    let during = neighbor(&c.lab, &n1);
    assert_eq!(during["bgpState"], "Established", "{during}");
    let updates_while_draining = during["messageStats"]["updatesRecv"].as_u64().unwrap();

    // 2. Then the routes are withdrawn...
    for (prefix, others) in [(PREFIX4, hops4(&[2, 3])), (PREFIX6, hops6(&[2, 3]))] {
        wait_next_hops(&c.lab, prefix, &others);
    }
    // 3. ...and the session closed with a Cease carrying the speaker's reason.
    let gone = wait_for(TIMEOUT, POLL, || {
        let n = neighbor(&c.lab, &n1);
        if n["bgpState"] != "Established" && n.get("lastNotificationReason").is_some() {
            Ok(n)
        } else {
            Err(n["bgpState"].clone())
        }
    })
    .unwrap_or_else(|e| panic!("n1's session never closed with a NOTIFICATION: {e}"));
    assert_eq!(
        gone["lastNotificationReason"], "Cease/Administrative Shutdown",
        "{gone}"
    );
    assert_eq!(gone["lastErrorCodeSubcode"], "0602", "{gone}");
    assert_eq!(
        gone["lastShutdownDescription"], "ferrolb speaker on n1 stopping",
        "{gone}"
    );
    assert_eq!(
        gone["lastResetDueTo"], "BGP Notification received",
        "{gone}"
    );
    // The withdrawals were UPDATEs received before the NOTIFICATION (not the session
    // dropping the routes): bgpd logged them, in that order.
    assert!(
        gone["messageStats"]["updatesRecv"].as_u64().unwrap() > updates_while_draining,
        "no UPDATE after the graceful-shutdown ones: {gone}"
    );
    let text = log.text();
    let lines: Vec<&str> = text.lines().collect();
    let notification = lines
        .iter()
        .position(|l| l.contains(&format!("%NOTIFICATION: received from neighbor {n1} 6/2")))
        .unwrap_or_else(|| panic!("bgpd did not log the NOTIFICATION:\n{text}"));
    for prefix in [PREFIX4, PREFIX6] {
        let withdrawn = lines
            .iter()
            .position(|l| {
                l.contains(&format!("{n1}("))
                    && l.contains(&format!("rcvd UPDATE about {prefix} "))
                    && l.contains("withdrawn")
            })
            .unwrap_or_else(|| panic!("bgpd logged no withdrawal of {prefix} from n1:\n{text}"));
        assert!(
            withdrawn < notification,
            "{prefix} withdrawn after the Cease:\n{text}"
        );
    }

    let status = c.wait_exit(1);
    assert!(
        status.success(),
        "the speaker exits 0 after draining: {status}"
    );
    let lo = c.lo_addresses(1);
    assert!(
        !lo.contains(VIP4) && !lo.contains(VIP6),
        "n1 unbound its VIPs: {lo:?}"
    );

    client.wait_more(20);
    let report = client.finish();
    report.assert_nothing_lost("during the drain");
    let by_node = report.by_node();
    assert!(by_node.contains_key("n1"), "{by_node:?}");
    assert!(
        by_node.contains_key("n2") && by_node.contains_key("n3"),
        "{by_node:?}"
    );
}

#[test]
fn advertisement_edited_live_reaches_the_router_without_resetting_sessions() {
    // Configured neighbors: FRR keeps their counters across a reset (it deletes dynamic ones).
    let mut c = Cluster::with_router_config(3, frr_config(&[1, 2, 3]));
    demo(&mut c);
    let addrs: Vec<String> = (1..=3).map(node4).collect();
    wait_established(&c.lab, &addrs);
    let before: Vec<SessionLife> = addrs.iter().map(|a| session_life(&c.lab, a)).collect();
    for life in &before {
        assert_eq!((life.established, life.dropped), (1, 0), "{life:?}");
    }

    c.edit("ferrolb.yaml", "\"64500:100\"", "\"64500:200\"");
    for prefix in [PREFIX4, PREFIX6] {
        wait_paths(&c.lab, prefix, 3, "community 64500:200", |p| {
            communities(p) == ["64500:200"] && large_communities(p) == ["4200000000:1:1"]
        });
    }
    for (addr, life) in addrs.iter().zip(&before) {
        assert_same_session(&c.lab, addr, life);
    }
}

#[test]
fn killed_speaker_is_withdrawn_and_traffic_continues() {
    let mut c = Cluster::up(3);
    demo(&mut c);
    wait_fib(&c.lab, PREFIX4, &all4());
    wait_fib(&c.lab, PREFIX6, &all6());

    let client = c.client_loop(VIP4);
    client.wait_answer_from("n2");
    c.signal(2, Signal::SIGKILL);
    let status = c.wait_exit(2);
    assert_eq!(status.signal(), Some(Signal::SIGKILL as i32), "{status}");

    wait_next_hops(&c.lab, PREFIX4, &hops4(&[1, 3]));
    wait_next_hops(&c.lab, PREFIX6, &hops6(&[1, 3]));
    wait_fib(&c.lab, PREFIX4, &hops4(&[1, 3]));
    wait_fib(&c.lab, PREFIX6, &hops6(&[1, 3]));
    // The request in flight when the route changed may still reach n2; none after it.
    let switched = client.requests().len() + 1;
    client.wait_more(30);
    let report = client.finish();
    report.assert_nothing_lost("after n2's speaker was killed");
    let after: Vec<&String> = report
        .requests
        .iter()
        .skip(switched)
        .map(|r| &r.answer)
        .collect();
    assert!(
        !after.is_empty() && after.iter().all(|a| *a == "n1" || *a == "n3"),
        "answers after the withdrawal: {after:?}"
    );
}

const API_SERVICE: &str = "\
apiVersion: v1
kind: Service
metadata:
  name: api
  namespace: shop
spec:
  type: LoadBalancer
  ipFamilyPolicy: RequireDualStack
  ipFamilies: [IPv4, IPv6]
  ports:
    - {name: http, protocol: TCP, port: 8080}
";

#[test]
fn adding_and_deleting_a_service_announces_and_withdraws_only_its_prefix() {
    let mut c = Cluster::with_router_config(3, frr_config(&[]));
    demo(&mut c);
    let (api4, api6) = ("203.0.113.11/32", "2001:db8:ff::11/128");
    let mut log = UpdateLog::start(&c.lab);
    let stamps = [route_stamp(&c.lab, PREFIX4), route_stamp(&c.lab, PREFIX6)];

    // Added: shop/api gets the next free addresses, from every node.
    c.write("api.yaml", API_SERVICE);
    wait_next_hops(&c.lab, api4, &all4());
    wait_next_hops(&c.lab, api6, &all6());
    // bgpd logs each prefix it receives: the new ones, once from each node, and nothing else.
    let lines = wait_for(TIMEOUT, POLL, || {
        let lines = log.prefix_lines();
        if lines.len() >= 6 {
            Ok(lines)
        } else {
            Err(lines)
        }
    })
    .unwrap_or_else(|e| panic!("bgpd did not log the new prefixes: {e}"));
    for line in &lines {
        assert!(
            line.contains(&format!(" rcvd {api4} ")) || line.contains(&format!(" rcvd {api6} ")),
            "unexpected prefix received: {line}\n{lines:#?}"
        );
    }
    assert_eq!(lines.len(), 6, "{lines:#?}");
    for stamp in &stamps {
        assert_route_untouched(&c.lab, stamp);
    }
    for i in 1..=3 {
        let lo = c.lo_addresses(i);
        assert!(
            lo.contains("203.0.113.11") && lo.contains("2001:db8:ff::11"),
            "n{i}: {lo:?}"
        );
    }
    let (by_node, failed) = tally(&c.requests(&url4("203.0.113.11"), 5));
    assert!(failed.is_empty() && !by_node.is_empty(), "{failed:?}");

    // Deleted: only its prefixes are withdrawn.
    log.mark();
    c.remove("api.yaml");
    wait_gone(&c.lab, api4);
    wait_gone(&c.lab, api6);
    let lines = wait_for(TIMEOUT, POLL, || {
        let lines = log.prefix_lines();
        if lines.len() >= 6 {
            Ok(lines)
        } else {
            Err(lines)
        }
    })
    .unwrap_or_else(|e| panic!("bgpd did not log the withdrawals: {e}"));
    for line in &lines {
        assert!(
            (line.contains(&format!(" {api4} ")) || line.contains(&format!(" {api6} ")))
                && line.contains("withdrawn"),
            "unexpected prefix received: {line}\n{lines:#?}"
        );
    }
    assert_eq!(lines.len(), 6, "{lines:#?}");
    for stamp in &stamps {
        assert_route_untouched(&c.lab, stamp);
    }
    for i in 1..=3 {
        let lo = c.lo_addresses(i);
        assert!(
            !lo.contains("203.0.113.11") && !lo.contains("2001:db8:ff::11") && lo.contains(VIP4),
            "n{i}: {lo:?}"
        );
    }
}

#[test]
fn invalid_edit_keeps_every_route() {
    let mut c = Cluster::with_router_config(3, frr_config(&[1, 2, 3]));
    demo(&mut c);
    let addrs: Vec<String> = (1..=3).map(node4).collect();
    wait_established(&c.lab, &addrs);
    let before: Vec<SessionLife> = addrs.iter().map(|a| session_life(&c.lab, a)).collect();
    let good = c.read("ferrolb.yaml");
    let log = UpdateLog::start(&c.lab);
    let stamps = [route_stamp(&c.lab, PREFIX4), route_stamp(&c.lab, PREFIX6)];

    // A pool range whose start is after its end: refused, with the field path.
    c.edit(
        "ferrolb.yaml",
        "203.0.113.10-203.0.113.50",
        "203.0.113.50-203.0.113.10",
    );
    c.wait_speakers_logged(REFUSED, 1);
    for i in 1..=3 {
        let text = c.speaker_log(i);
        assert!(
            text.contains(
                "IPAddressPool/lab: spec.addresses[0]: range start 203.0.113.50 is after end 203.0.113.10"
            ),
            "n{i}:\n{text}"
        );
    }
    // Broken YAML on top of it: refused too.
    c.write("broken.yaml", "apiVersion: v1\nkind: [unclosed\n");
    c.wait_speakers_logged(REFUSED, 2);
    for i in 1..=3 {
        let text = c.speaker_log(i);
        assert!(
            text.contains("broken.yaml (document 1): line 2"),
            "n{i}:\n{text}"
        );
    }

    // Every route is still there, untouched; nothing was sent; no session was reset.
    for stamp in &stamps {
        assert_route_untouched(&c.lab, stamp);
    }
    for prefix in [PREFIX4, PREFIX6] {
        let paths = paths(&c.lab, prefix);
        assert_eq!(paths.len(), 3, "{prefix}: {paths:?}");
        assert!(paths.iter().all(has_example_communities), "{paths:?}");
    }
    assert_eq!(log.prefix_lines(), Vec::<String>::new());
    for (addr, life) in addrs.iter().zip(&before) {
        assert_same_session(&c.lab, addr, life);
    }
    for i in 1..=3 {
        let lo = c.lo_addresses(i);
        assert!(lo.contains(VIP4) && lo.contains(VIP6), "n{i}: {lo:?}");
    }

    // Fixed (and with a new community, to see it applied).
    c.remove("broken.yaml");
    c.write(
        "ferrolb.yaml",
        &good.replacen("\"64500:100\"", "\"64500:300\"", 1),
    );
    for prefix in [PREFIX4, PREFIX6] {
        wait_paths(&c.lab, prefix, 3, "community 64500:300", |p| {
            communities(p) == ["64500:300"] && large_communities(p) == ["4200000000:1:1"]
        });
    }
    for (addr, life) in addrs.iter().zip(&before) {
        assert_same_session(&c.lab, addr, life);
    }
}

/// Two pools, two BGPPeers for the same router (its IPv4 and its IPv6 address) selected on
/// different nodes, an advertisement limited to some nodes and one limited to one peer.
const SELECTORS: &str = "\
apiVersion: ferrolb.io/v1beta1
kind: IPAddressPool
metadata: {name: edge, namespace: ferrolb}
spec:
  addresses: [203.0.113.10-203.0.113.19, 2001:db8:ff::10-2001:db8:ff::19]
---
apiVersion: ferrolb.io/v1beta1
kind: IPAddressPool
metadata: {name: core, namespace: ferrolb}
spec:
  addresses: [203.0.113.20-203.0.113.29]
---
apiVersion: ferrolb.io/v1beta1
kind: BGPPeer
metadata: {name: rtr-v4, namespace: ferrolb}
spec:
  myASN: 4200000000
  peerASN: 64500
  peerAddress: 192.0.2.1
  holdTime: 9s
  nodeSelectors: [{matchLabels: {rack: a}}]
---
apiVersion: ferrolb.io/v1beta1
kind: BGPPeer
metadata: {name: rtr-v6, namespace: ferrolb}
spec:
  myASN: 4200000000
  peerASN: 64500
  peerAddress: 2001:db8:0:1::1
  holdTime: 9s
  nodeSelectors: [{matchLabels: {rack: b}}]
---
apiVersion: ferrolb.io/v1beta1
kind: BGPAdvertisement
metadata: {name: edge, namespace: ferrolb}
spec:
  ipAddressPools: [edge]
  nodeSelectors: [{matchLabels: {role: edge}}]
  communities: [\"64500:1\"]
---
apiVersion: ferrolb.io/v1beta1
kind: BGPAdvertisement
metadata: {name: core, namespace: ferrolb}
spec:
  ipAddressPools: [core]
  peers: [rtr-v4]
  communities: [\"64500:2\"]
---
apiVersion: v1
kind: Service
metadata:
  name: web
  namespace: demo
  annotations: {ferrolb.io/address-pool: edge}
spec:
  type: LoadBalancer
  ipFamilyPolicy: RequireDualStack
  ipFamilies: [IPv4, IPv6]
  ports: [{name: http, protocol: TCP, port: 8080}]
---
apiVersion: v1
kind: Service
metadata:
  name: db
  namespace: demo
  annotations: {ferrolb.io/address-pool: core}
spec:
  type: LoadBalancer
  ports: [{name: sql, protocol: TCP, port: 8080}]
";

fn pairs(items: &[(&str, &str)]) -> BTreeSet<(String, String)> {
    items
        .iter()
        .map(|(a, b)| (a.to_string(), b.to_string()))
        .collect()
}

#[test]
fn node_selectors_and_peers_restrictions_produce_exactly_the_expected_next_hops() {
    // n1: rack a, edge  → session rtr-v4;  announces web (edge) and db (core, rtr-v4 only)
    // n2: rack b, edge  → session rtr-v6;  announces web; db's advertisement has no session here
    // n3: rack b        → session rtr-v6;  announces nothing (edge's nodeSelectors skip it)
    let mut c = Cluster::up(3);
    c.write("ferrolb.yaml", SELECTORS);
    c.start_speaker(1, "rack=a,role=edge");
    c.start_speaker(2, "rack=b,role=edge");
    c.start_speaker(3, "rack=b");
    let (v4_1, v6_2, v6_3) = (node4(1), node6(2), node6(3));

    // Wait until each session has sent its whole table (End-of-RIB for both families).
    for peer in [&v4_1, &v6_2, &v6_3] {
        wait_end_of_rib(&c.lab, peer, "IPv4");
        wait_end_of_rib(&c.lab, peer, "IPv6");
    }
    let summary = c.lab.vtysh_json("show bgp summary json").unwrap();
    let mut sessions = BTreeSet::new();
    for afi in ["ipv4Unicast", "ipv6Unicast"] {
        for (addr, peer) in summary[afi]["peers"].as_object().into_iter().flatten() {
            if peer["state"] == "Established" {
                sessions.insert(addr.clone());
            }
        }
    }
    assert_eq!(
        sessions,
        set(&[v4_1.as_str(), v6_2.as_str(), v6_3.as_str()]),
        "{summary}"
    );

    let expected = [
        (
            "203.0.113.10/32",
            pairs(&[(&v4_1, &v4_1), (&v6_2, &node4(2))].map(|(a, b)| (a.as_str(), b.as_str()))),
            "64500:1",
        ),
        (
            "2001:db8:ff::10/128",
            pairs(&[(&v4_1, &node6(1)), (&v6_2, &v6_2)].map(|(a, b)| (a.as_str(), b.as_str()))),
            "64500:1",
        ),
        (
            "203.0.113.20/32",
            pairs(&[(v4_1.as_str(), v4_1.as_str())]),
            "64500:2",
        ),
    ];
    for (prefix, announcers_expected, community) in &expected {
        let got = wait_for(TIMEOUT, POLL, || {
            let got = announcers(&c.lab, prefix);
            if got == *announcers_expected {
                Ok(got)
            } else {
                Err(got)
            }
        })
        .unwrap_or_else(|e| panic!("{prefix}: expected {announcers_expected:?}: {e}"));
        assert_eq!(&got, announcers_expected);
        for p in paths(&c.lab, prefix) {
            assert_eq!(communities(&p), [*community], "{prefix}: {p}");
        }
    }
    // Nothing else reached the router.
    for afi in ["ipv4", "ipv6"] {
        let table = c
            .lab
            .vtysh_json(&format!("show bgp {afi} unicast json"))
            .unwrap();
        let prefixes: BTreeSet<String> = table["routes"]
            .as_object()
            .into_iter()
            .flatten()
            .map(|(k, _)| k.clone())
            .collect();
        let want: BTreeSet<String> = expected
            .iter()
            .map(|(p, _, _)| p.to_string())
            .filter(|p| p.contains(':') == (afi == "ipv6"))
            .collect();
        assert_eq!(prefixes, want, "{afi} table: {table}");
    }
    // Each node binds what it announces.
    let lo: Vec<BTreeSet<String>> = (1..=3).map(|i| c.lo_addresses(i)).collect();
    assert!(
        lo[0].contains("203.0.113.10") && lo[0].contains("203.0.113.20"),
        "{lo:?}"
    );
    assert!(
        lo[1].contains("203.0.113.10") && !lo[1].contains("203.0.113.20"),
        "{lo:?}"
    );
    assert!(
        !lo[2].contains("203.0.113.10") && !lo[2].contains("203.0.113.20"),
        "{lo:?}"
    );
}

const AGGREGATION: &str = "\
apiVersion: ferrolb.io/v1beta1
kind: IPAddressPool
metadata: {name: block, namespace: ferrolb}
spec:
  addresses: [203.0.113.0/24]
---
apiVersion: ferrolb.io/v1beta1
kind: BGPPeer
metadata: {name: rtr, namespace: ferrolb}
spec: {myASN: 4200000000, peerASN: 64500, peerAddress: 192.0.2.1, holdTime: 9s}
---
apiVersion: ferrolb.io/v1beta1
kind: BGPAdvertisement
metadata: {name: host, namespace: ferrolb}
spec:
  ipAddressPools: [block]
  aggregationLength: 32
  localPref: 150
  communities: [\"64500:32\"]
---
apiVersion: ferrolb.io/v1beta1
kind: BGPAdvertisement
metadata: {name: summary, namespace: ferrolb}
spec:
  ipAddressPools: [block]
  aggregationLength: 24
  communities: [\"64500:24\"]
---
apiVersion: v1
kind: Service
metadata:
  name: web
  namespace: demo
  annotations: {ferrolb.io/loadBalancerIPs: 203.0.113.10}
spec:
  type: LoadBalancer
  ports: [{name: http, protocol: TCP, port: 8080}]
";

#[test]
fn aggregation_length_24_and_32_both_appear() {
    let mut c = Cluster::up(3);
    c.write("ferrolb.yaml", AGGREGATION);
    c.start_speakers();
    for (prefix, community) in [
        ("203.0.113.10/32", "64500:32"),
        ("203.0.113.0/24", "64500:24"),
    ] {
        let paths = wait_paths(&c.lab, prefix, 3, community, |p| {
            communities(p) == [community] && large_communities(p).is_empty()
        });
        let hops: BTreeSet<String> = paths.iter().map(next_hop).collect();
        assert_eq!(hops, all4(), "{prefix}: {paths:?}");
        // localPref is for iBGP: it must not reach this eBGP router.
        assert!(paths.iter().all(|p| p.get("locPrf").is_none()), "{paths:?}");
        wait_fib(&c.lab, prefix, &all4());
    }
    let table = c.lab.vtysh_json("show bgp ipv4 unicast json").unwrap();
    let prefixes: BTreeSet<String> = table["routes"]
        .as_object()
        .unwrap()
        .keys()
        .cloned()
        .collect();
    assert_eq!(
        prefixes,
        set(&["203.0.113.0/24", "203.0.113.10/32"]),
        "{table}"
    );
    let (by_node, failed) = tally(&c.requests(&url4(VIP4), 5));
    assert!(failed.is_empty() && !by_node.is_empty(), "{failed:?}");
}

const IPV6_ONLY: &str = "\
apiVersion: ferrolb.io/v1beta1
kind: IPAddressPool
metadata: {name: v6, namespace: ferrolb}
spec:
  addresses: [2001:db8:ff::10-2001:db8:ff::50]
---
apiVersion: ferrolb.io/v1beta1
kind: BGPPeer
metadata: {name: rtr, namespace: ferrolb}
spec: {myASN: 4200000000, peerASN: 64500, peerAddress: 192.0.2.1, holdTime: 9s}
---
apiVersion: ferrolb.io/v1beta1
kind: BGPAdvertisement
metadata: {name: v6, namespace: ferrolb}
spec:
  communities: [\"64500:6\"]
---
apiVersion: v1
kind: Service
metadata: {name: web, namespace: demo}
spec:
  type: LoadBalancer
  ipFamilyPolicy: SingleStack
  ipFamilies: [IPv6]
  ports: [{name: http, protocol: TCP, port: 8080}]
";

#[test]
fn ipv6_pool_is_announced_over_mp_bgp() {
    let mut c = Cluster::up(3);
    c.write("ferrolb.yaml", IPV6_ONLY);
    c.start_speakers();
    let paths = wait_paths(&c.lab, PREFIX6, 3, "community 64500:6", |p| {
        communities(p) == ["64500:6"]
    });
    for p in &paths {
        // Learned over the node's IPv4 session (MP_REACH_NLRI), next hop the node's IPv6
        // address.
        let peer = p["peer"]["peerId"].as_str().unwrap().to_string();
        assert!(all4().contains(&peer), "{p}");
        assert_eq!(p["nexthops"][0]["afi"], "ipv6", "{p}");
        assert_eq!(p["nexthops"][0]["scope"], "global", "{p}");
    }
    let hops: BTreeSet<String> = paths.iter().map(next_hop).collect();
    assert_eq!(hops, all6(), "{paths:?}");
    for i in 1..=3 {
        let n = neighbor(&c.lab, &node4(i));
        let af = &n["addressFamilyInfo"];
        assert_eq!(af["ipv6Unicast"]["acceptedPrefixCounter"], 1, "{n}");
        assert_eq!(af["ipv4Unicast"]["acceptedPrefixCounter"], 0, "{n}");
    }
    let v4 = c.lab.vtysh_json("show bgp ipv4 unicast json").unwrap();
    assert!(
        v4["routes"].as_object().is_none_or(|r| r.is_empty()),
        "no IPv4 route expected: {v4}"
    );
    wait_fib(&c.lab, PREFIX6, &all6());
    for i in 1..=3 {
        let lo = c.lo_addresses(i);
        assert!(
            lo.contains(VIP6) && !lo.iter().any(|a| a.starts_with("203.")),
            "{lo:?}"
        );
    }
    let (by_node, failed) = tally(&c.requests(&url6(VIP6), 5));
    assert!(failed.is_empty() && !by_node.is_empty(), "{failed:?}");
}

const TAGGED: &str = "\
apiVersion: ferrolb.io/v1beta1
kind: IPAddressPool
metadata: {name: lab, namespace: ferrolb}
spec:
  addresses: [203.0.113.10-203.0.113.50]
---
apiVersion: ferrolb.io/v1beta1
kind: BGPPeer
metadata: {name: rtr, namespace: ferrolb}
spec: {myASN: 4200000000, peerASN: 64500, peerAddress: 192.0.2.1, holdTime: 9s}
---
apiVersion: ferrolb.io/v1beta1
kind: BGPAdvertisement
metadata: {name: all, namespace: ferrolb}
spec:
  communities: [\"64500:100\"]
---
apiVersion: ferrolb.io/v1beta1
kind: BGPAdvertisement
metadata: {name: tag-web, namespace: ferrolb}
spec:
  serviceSelectors: [{matchLabels: {app: web}}]
  communities: [\"64500:80\"]
---
apiVersion: ferrolb.io/v1beta1
kind: BGPAdvertisement
metadata: {name: tag-api, namespace: ferrolb}
spec:
  serviceSelectors: [{matchLabels: {app: api}}]
  communities: [\"64500:81\"]
---
apiVersion: v1
kind: Service
metadata: {name: web, namespace: demo, labels: {app: web}}
spec:
  type: LoadBalancer
  ports: [{name: http, protocol: TCP, port: 8080}]
";

const TAGGED_API: &str = "\
apiVersion: v1
kind: Service
metadata: {name: api, namespace: demo, labels: {app: api}}
spec:
  type: LoadBalancer
  ports: [{name: http, protocol: TCP, port: 8080}]
";

/// Which Service each node announces at `prefix`, by the community only that Service's
/// advertisement adds (64500:80 web, 64500:81 api).
fn owners(c: &Cluster, prefix: &str) -> Vec<(String, Vec<String>)> {
    paths(&c.lab, prefix)
        .iter()
        .map(|p| (next_hop(p), communities(p)))
        .collect()
}

#[test]
fn a_service_appended_to_the_folder_never_moves_an_existing_address() {
    let mut c = Cluster::up(3);
    c.write("ferrolb.yaml", TAGGED);
    c.start_speakers();
    let web = ["64500:80", "64500:100"];
    let api = ["64500:81", "64500:100"];
    wait_paths(&c.lab, PREFIX4, 3, "web's communities", |p| {
        communities(p) == web
    });
    // zz-api.yaml sorts after ferrolb.yaml: api comes after web in the folder.
    c.write("zz-api.yaml", TAGGED_API);
    wait_paths(&c.lab, "203.0.113.11/32", 3, "api's communities", |p| {
        communities(p) == api
    });
    assert!(owners(&c, PREFIX4).iter().all(|(_, comms)| comms == &web));
}

#[test]
fn a_restarted_speaker_agrees_with_the_running_ones_on_every_address() {
    // The folder is the only shared state: every node must compute the same address for each
    // Service, whenever it started and whatever it saw before. api.yaml sorts before the file
    // holding web, so inserting it moves web to .11 on every node alike (the agents warn).
    let mut c = Cluster::up(3);
    c.write("ferrolb.yaml", TAGGED);
    c.start_speakers();
    let web = ["64500:80", "64500:100"];
    let api = ["64500:81", "64500:100"];
    wait_paths(&c.lab, PREFIX4, 3, "web's communities", |p| {
        communities(p) == web
    });
    c.write("api.yaml", TAGGED_API);
    wait_paths(&c.lab, PREFIX4, 3, "api at .10 on every node", |p| {
        communities(p) == api
    });
    wait_paths(
        &c.lab,
        "203.0.113.11/32",
        3,
        "web at .11 on every node",
        |p| communities(p) == web,
    );

    // n3 restarts (a node reboot, an upgrade) with the same folder.
    c.signal(3, Signal::SIGTERM);
    assert!(c.wait_exit(3).success());
    wait_next_hops(&c.lab, PREFIX4, &hops4(&[1, 2]));
    c.start_speaker(3, "");
    wait_next_hops(&c.lab, PREFIX4, &all4());
    wait_next_hops(&c.lab, "203.0.113.11/32", &all4());
    for (prefix, expected) in [(PREFIX4, api), ("203.0.113.11/32", web)] {
        let owners = owners(&c, prefix);
        assert!(
            owners.iter().all(|(_, comms)| comms == &expected),
            "every node must announce the same Service at {prefix}: {owners:?}"
        );
    }
}
