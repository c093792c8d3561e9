//! FRR's view, read through `vtysh` in JSON: routes and their paths, sessions, what zebra put
//! in the kernel, and bgpd's log of received UPDATEs. The `wait_*` functions poll until the
//! router shows the state and panic with the last observation after [`TIMEOUT`]; they are
//! meant to be called from tests.
//!
//! Everything that compares "before" and "after" compares FRR's counters (table versions,
//! connections established and dropped, NOTIFICATIONs), never its clock readings: FRR derives
//! the epoch fields of its JSON from the current time in whole seconds at each call, so two
//! readings of an unchanged session can differ by one.

use std::collections::{BTreeMap, BTreeSet};
use std::fs;
use std::path::PathBuf;

use serde_json::Value;

use crate::lab::Lab;
use crate::wait::{POLL, TIMEOUT, wait_for};

fn afi(prefix: &str) -> &'static str {
    if prefix.contains(':') { "ipv6" } else { "ipv4" }
}

fn strings(v: &Value) -> Vec<String> {
    v.as_array()
        .into_iter()
        .flatten()
        .filter_map(|s| s.as_str().map(str::to_string))
        .collect()
}

// ------------------------------------------------------------------------------ routes

/// `show bgp ipv4|ipv6 unicast PREFIX json` (`{}` when the router has no such route).
pub fn route(lab: &Lab, prefix: &str) -> Value {
    lab.vtysh_json(&format!("show bgp {} unicast {prefix} json", afi(prefix)))
        .unwrap_or_else(|e| panic!("{e}"))
}

/// Every path the router has for `prefix`.
pub fn paths(lab: &Lab, prefix: &str) -> Vec<Value> {
    route(lab, prefix)["paths"]
        .as_array()
        .cloned()
        .unwrap_or_default()
}

/// The router's best path for `prefix`, or None when it has no route.
pub fn best_path(lab: &Lab, prefix: &str) -> Option<Value> {
    paths(lab, prefix)
        .into_iter()
        .find(|p| p["bestpath"]["overall"] == true)
}

/// The path learned from the session with `peer` (FRR's `peer.peerId`).
pub fn path_from(lab: &Lab, prefix: &str, peer: &str) -> Option<Value> {
    paths(lab, prefix)
        .into_iter()
        .find(|p| p["peer"]["peerId"] == peer)
}

/// A path's first next hop.
pub fn next_hop(path: &Value) -> String {
    path["nexthops"][0]["ip"]
        .as_str()
        .unwrap_or("?")
        .to_string()
}

/// The first next hop of every path for `prefix`.
pub fn next_hops(lab: &Lab, prefix: &str) -> BTreeSet<String> {
    paths(lab, prefix).iter().map(next_hop).collect()
}

/// (session, next hop) of every path for `prefix`.
pub fn announcers(lab: &Lab, prefix: &str) -> BTreeSet<(String, String)> {
    paths(lab, prefix)
        .iter()
        .map(|p| {
            (
                p["peer"]["peerId"].as_str().unwrap_or("?").to_string(),
                next_hop(p),
            )
        })
        .collect()
}

/// A path's communities, as FRR lists them (empty when it has none).
pub fn communities(path: &Value) -> Vec<String> {
    strings(&path["community"]["list"])
}

/// A path's large communities, as FRR lists them.
pub fn large_communities(path: &Value) -> Vec<String> {
    strings(&path["largeCommunity"]["list"])
}

/// Waits until the best path for `prefix` passes `check`.
pub fn wait_best_path(lab: &Lab, prefix: &str, check: impl Fn(&Value) -> bool) -> Value {
    wait_for(TIMEOUT, POLL, || match best_path(lab, prefix) {
        Some(p) if check(&p) => Ok(p),
        other => Err(other),
    })
    .unwrap_or_else(|e| panic!("router never had the expected path for {prefix}: {e}"))
}

/// Waits until the paths for `prefix` have exactly these next hops (one path each).
pub fn wait_next_hops(lab: &Lab, prefix: &str, expected: &BTreeSet<String>) -> Vec<Value> {
    wait_for(TIMEOUT, POLL, || {
        let paths = paths(lab, prefix);
        let hops: Vec<String> = paths.iter().map(next_hop).collect();
        if hops.len() == expected.len()
            && hops.iter().cloned().collect::<BTreeSet<_>>() == *expected
        {
            Ok(paths)
        } else {
            Err(hops)
        }
    })
    .unwrap_or_else(|e| panic!("router never had next hops {expected:?} for {prefix}: {e}"))
}

/// Waits until every path for `prefix` passes `check` and there are `count` of them.
pub fn wait_paths(
    lab: &Lab,
    prefix: &str,
    count: usize,
    what: &str,
    check: impl Fn(&Value) -> bool,
) -> Vec<Value> {
    wait_for(TIMEOUT, POLL, || {
        let paths = paths(lab, prefix);
        if paths.len() == count && paths.iter().all(&check) {
            Ok(paths)
        } else {
            Err(paths)
        }
    })
    .unwrap_or_else(|e| panic!("router never had {count} paths for {prefix} with {what}: {e}"))
}

/// Waits until the router has no route for `prefix`.
pub fn wait_gone(lab: &Lab, prefix: &str) {
    wait_for(TIMEOUT, POLL, || {
        let paths = paths(lab, prefix);
        if paths.is_empty() { Ok(()) } else { Err(paths) }
    })
    .unwrap_or_else(|e| panic!("router kept {prefix}: {e}"));
}

/// What identifies the router's current state of one route: the table version FRR gave its
/// destination, and the version of the path from each session.
#[derive(Clone, Debug, PartialEq)]
pub struct RouteStamp {
    /// The prefix.
    pub prefix: String,
    /// The destination's table version.
    pub version: Value,
    /// By session: the path's table version.
    pub paths: BTreeMap<String, Value>,
}

/// The route's [`RouteStamp`] now.
pub fn route_stamp(lab: &Lab, prefix: &str) -> RouteStamp {
    let route = route(lab, prefix);
    let paths = route["paths"]
        .as_array()
        .into_iter()
        .flatten()
        .map(|p| {
            (
                p["peer"]["peerId"].as_str().unwrap_or("?").to_string(),
                p["version"].clone(),
            )
        })
        .collect();
    RouteStamp {
        prefix: prefix.to_string(),
        version: route["version"].clone(),
        paths,
    }
}

/// Asserts the route is as `before`: same table versions, same sessions. FRR bumps a path's
/// version on every UPDATE that touches it, so an unchanged version means no UPDATE came.
pub fn assert_route_untouched(lab: &Lab, before: &RouteStamp) {
    let now = route_stamp(lab, &before.prefix);
    assert_eq!(
        &now, before,
        "{} changed: before {before:?}, now {now:?}",
        before.prefix
    );
}

// ---------------------------------------------------------------------------- sessions

/// `show bgp neighbors ADDR json` for one neighbor (`null` when the router has none).
pub fn neighbor(lab: &Lab, addr: &str) -> Value {
    lab.vtysh_json(&format!("show bgp neighbors {addr} json"))
        .map(|v| v[addr].clone())
        .unwrap_or(Value::Null)
}

/// Waits until the neighbor passes `check`.
pub fn wait_neighbor(lab: &Lab, addr: &str, check: impl Fn(&Value) -> bool) -> Value {
    wait_for(TIMEOUT, POLL, || {
        let n = neighbor(lab, addr);
        if check(&n) { Ok(n) } else { Err(n) }
    })
    .unwrap_or_else(|e| panic!("neighbor {addr} never matched: {e}"))
}

/// Waits until every neighbor in `addrs` is Established.
pub fn wait_established(lab: &Lab, addrs: &[String]) {
    for addr in addrs {
        wait_for(TIMEOUT, POLL, || {
            let n = neighbor(lab, addr);
            if n["bgpState"] == "Established" {
                Ok(())
            } else {
                Err(n["bgpState"].clone())
            }
        })
        .unwrap_or_else(|e| panic!("neighbor {addr} never Established: {e}"));
    }
}

/// A session as FRR counts it: connections established and dropped, NOTIFICATIONs received.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct SessionLife {
    /// `connectionsEstablished`.
    pub established: u64,
    /// `connectionsDropped`.
    pub dropped: u64,
    /// `messageStats.notificationsRecv`.
    pub notifications_received: u64,
}

/// The session's counters now; panics unless it is Established.
pub fn session_life(lab: &Lab, addr: &str) -> SessionLife {
    let n = neighbor(lab, addr);
    assert_eq!(n["bgpState"], "Established", "neighbor {addr}: {n}");
    let count = |v: &Value| {
        v.as_u64()
            .unwrap_or_else(|| panic!("neighbor {addr}: not a counter: {v}"))
    };
    SessionLife {
        established: count(&n["connectionsEstablished"]),
        dropped: count(&n["connectionsDropped"]),
        notifications_received: count(&n["messageStats"]["notificationsRecv"]),
    }
}

/// Asserts the session with `addr` is the same one as `before`: still Established, no
/// connection made or dropped since, no NOTIFICATION received.
pub fn assert_same_session(lab: &Lab, addr: &str, before: &SessionLife) {
    let now = session_life(lab, addr);
    assert_eq!(
        &now, before,
        "neighbor {addr} was reset: before {before:?}, now {now:?}"
    );
}

// ------------------------------------------------------------------------------- zebra

/// The next hops zebra has installed in the kernel for `prefix` (`show ip|ipv6 route`).
pub fn fib_next_hops(lab: &Lab, prefix: &str) -> BTreeSet<String> {
    let ip = if prefix.contains(':') { "ipv6" } else { "ip" };
    let v = lab
        .vtysh_json(&format!("show {ip} route {prefix} json"))
        .unwrap_or(Value::Null);
    v[prefix]
        .as_array()
        .into_iter()
        .flatten()
        .filter(|r| r["protocol"] == "bgp" && r["installed"] == true)
        .flat_map(|r| r["nexthops"].as_array().cloned().unwrap_or_default())
        .filter(|n| n["fib"] == true)
        .filter_map(|n| n["ip"].as_str().map(str::to_string))
        .collect()
}

/// Waits until zebra has installed `prefix` via exactly `expected`.
pub fn wait_fib(lab: &Lab, prefix: &str, expected: &BTreeSet<String>) {
    wait_for(TIMEOUT, POLL, || {
        let hops = fib_next_hops(lab, prefix);
        if hops == *expected { Ok(()) } else { Err(hops) }
    })
    .unwrap_or_else(|e| panic!("zebra never installed {prefix} via {expected:?}: {e}"));
}

/// The gateways of the router's kernel route for `prefix` (`ip -j route` in its namespace).
pub fn kernel_next_hops(lab: &Lab, prefix: &str) -> BTreeSet<String> {
    let family = if prefix.contains(':') { "-6" } else { "-4" };
    let out = lab
        .exec_ok(
            &lab.router_ns(),
            &["ip", family, "-j", "route", "show", "exact", prefix],
        )
        .unwrap_or_else(|e| panic!("{e}"));
    let routes: Value = serde_json::from_str(&out).unwrap_or(Value::Null);
    let mut hops = BTreeSet::new();
    for r in routes.as_array().into_iter().flatten() {
        if let Some(g) = r["gateway"].as_str() {
            hops.insert(g.to_string());
        }
        for n in r["nexthops"].as_array().into_iter().flatten() {
            if let Some(g) = n["gateway"].as_str() {
                hops.insert(g.to_string());
            }
        }
    }
    hops
}

// --------------------------------------------------------------------------------- log

/// bgpd's log from a point on, with `debug bgp updates in` so every received prefix and
/// withdrawal is written there.
pub struct UpdateLog {
    path: PathBuf,
    from: usize,
}

impl UpdateLog {
    /// Turns on `debug bgp updates in` and starts reading at the current end of the log.
    pub fn start(lab: &Lab) -> UpdateLog {
        lab.vtysh("debug bgp updates in")
            .unwrap_or_else(|e| panic!("{e}"));
        let path = lab.router_log();
        let from = fs::read_to_string(&path).map(|t| t.len()).unwrap_or(0);
        UpdateLog { path, from }
    }

    /// Starts reading at the current end of the log again.
    pub fn mark(&mut self) {
        self.from = fs::read_to_string(&self.path).map(|t| t.len()).unwrap_or(0);
    }

    /// The log since the mark.
    pub fn text(&self) -> String {
        let all = fs::read_to_string(&self.path).unwrap_or_default();
        all.get(self.from..).unwrap_or_default().to_string()
    }

    /// Lines about received prefixes (announced or withdrawn) since the mark.
    pub fn prefix_lines(&self) -> Vec<String> {
        self.text()
            .lines()
            .filter(|l| l.contains(" rcvd ") && (l.contains(" unicast")))
            .filter(|l| !l.contains("End-of-RIB"))
            .map(str::to_string)
            .collect()
    }
}

/// Waits until bgpd logged "rcvd End-of-RIB for AFI Unicast from PEER", i.e. the session sent
/// its whole initial table for that family.
pub fn wait_end_of_rib(lab: &Lab, peer: &str, afi: &str) {
    let needle = format!("rcvd End-of-RIB for {afi} Unicast from {peer} ");
    wait_for(TIMEOUT, POLL, || {
        let log = fs::read_to_string(lab.router_log()).unwrap_or_default();
        if log.contains(&needle) {
            Ok(())
        } else {
            Err(())
        }
    })
    .unwrap_or_else(|e| panic!("router never logged {needle:?}: {e}"));
}

// ------------------------------------------------------------------------------ config

/// A minimal bgpd configuration for the lab's router around the given `router bgp` body lines
/// and address-family lines (eBGP without policy, ECMP across ASes, 3 s / 9 s timers).
pub fn config(asn: u32, body: &str, ipv4: &str, ipv6: &str) -> String {
    format!(
        "frr defaults traditional\nhostname rtr\n!\nrouter bgp {asn}\n bgp router-id 192.0.2.1\n \
         no bgp ebgp-requires-policy\n no bgp network import-check\n \
         bgp bestpath as-path multipath-relax\n timers bgp 3 9\n{body}\n \
         address-family ipv4 unicast\n{ipv4}\n  maximum-paths 8\n exit-address-family\n \
         address-family ipv6 unicast\n{ipv6}\n  maximum-paths 8\n exit-address-family\nexit\n!\n"
    )
}
