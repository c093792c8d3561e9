//! The lab has one description, `lab/netns/lab.sh` (`lab.sh env` prints it), and two other
//! places that must agree with it: this harness's constants and address functions, and the
//! containerlab topology in `lab/containerlab`. These tests need no root: they read files and
//! run `lab.sh env`, which creates nothing.

#![allow(clippy::expect_used)]

use std::collections::{BTreeMap, BTreeSet};
use std::path::{Path, PathBuf};
use std::process::Command;

use ferrolb_labtest::{GOBGP_API_PORT, Lab, MAX_NODES, ROUTER_ASN, ROUTER_ID, STATE_ROOT};
use serde::Deserialize;

fn repository() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("../..")
}

/// What `lab.sh env --nodes 3` prints.
#[derive(Debug, Default)]
struct Description {
    values: BTreeMap<String, String>,
    nodes: BTreeSet<String>,
    /// Each link as a sorted pair of `node:interface`.
    links: BTreeSet<(String, String)>,
    /// `(node, interface) -> addresses`.
    addresses: BTreeMap<(String, String), BTreeSet<String>>,
    gateways: BTreeMap<String, BTreeSet<String>>,
}

fn pair(a: &str, b: &str) -> (String, String) {
    let (a, b) = (a.to_string(), b.to_string());
    if a <= b { (a, b) } else { (b, a) }
}

fn netns_lab(nodes: usize) -> Description {
    netns_lab_with(nodes, &[])
}

fn netns_lab_with(nodes: usize, extra: &[&str]) -> Description {
    let script = repository().join("lab/netns/lab.sh");
    let out = Command::new("bash")
        .arg(&script)
        .args(["env", "--nodes", &nodes.to_string()])
        .args(extra)
        .output()
        .expect("run lab.sh env");
    assert!(
        out.status.success(),
        "lab.sh env failed: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    let mut d = Description::default();
    for line in String::from_utf8(out.stdout).expect("utf-8").lines() {
        let words: Vec<&str> = line.split_whitespace().collect();
        match words.as_slice() {
            ["node", name] => {
                d.nodes.insert(name.to_string());
            }
            ["link", a, b] => {
                d.links.insert(pair(a, b));
            }
            ["addr", node, interface, address] => {
                d.addresses
                    .entry((node.to_string(), interface.to_string()))
                    .or_default()
                    .insert(address.to_string());
            }
            ["gateway", node, gateway] => {
                d.gateways
                    .entry(node.to_string())
                    .or_default()
                    .insert(gateway.to_string());
            }
            [kv] if kv.contains('=') => {
                let (k, v) = kv.split_once('=').expect("k=v");
                d.values.insert(k.to_string(), v.to_string());
            }
            _ => panic!("lab.sh env printed an unexpected line: {line:?}"),
        }
    }
    d
}

#[test]
fn the_harness_constants_and_addresses_are_the_labs() {
    let lab = netns_lab(MAX_NODES);
    assert_eq!(lab.values["STATE_ROOT"], STATE_ROOT);
    assert_eq!(lab.values["ASN"], ROUTER_ASN.to_string());
    assert_eq!(lab.values["ROUTER_ID"], ROUTER_ID.to_string());
    assert_eq!(lab.values["MAX_NODES"], MAX_NODES.to_string());
    assert_eq!(lab.values["GOBGP_API_PORT"], GOBGP_API_PORT.to_string());
    let has = |node: &str, interface: &str, address: String| {
        let addresses = &lab.addresses[&(node.to_string(), interface.to_string())];
        assert!(
            addresses
                .iter()
                .any(|a| a.split('/').next() == Some(address.as_str())),
            "{node} {interface}: {address} not in {addresses:?}"
        );
    };
    has("rtr", "eth0", Lab::router_v4().to_string());
    has("rtr", "eth0", Lab::router_v6().to_string());
    has("rtr", "eth1", Lab::router_client_v4().to_string());
    has("rtr", "eth1", Lab::router_client_v6().to_string());
    has("cl", "eth0", Lab::client_v4().to_string());
    has("cl", "eth0", Lab::client_v6().to_string());
    for i in 1..=MAX_NODES {
        has(&format!("n{i}"), "eth0", Lab::node_v4(i).to_string());
        has(&format!("n{i}"), "eth0", Lab::node_v6(i).to_string());
    }
}

/// `lab.sh env --l2`: the layer-2 LAN (br1) links the client's and every node's eth1, with the
/// harness's addresses, and adds nothing else.
#[test]
fn the_l2_segment_is_the_harness_one_and_only_adds_eth1() {
    let plain = netns_lab(3);
    let l2 = netns_lab_with(3, &["--l2"]);
    assert_eq!(l2.values.get("L2").map(String::as_str), Some("1"));
    assert!(!plain.values.contains_key("L2"));
    let added: BTreeSet<&(String, String)> = l2.links.difference(&plain.links).collect();
    let expected: BTreeSet<(String, String)> = std::iter::once(pair("sw:l2cl", "cl:eth1"))
        .chain((1..=3).map(|i| pair(&format!("sw:l2n{i}"), &format!("n{i}:eth1"))))
        .collect();
    assert_eq!(added, expected.iter().collect());
    assert!(plain.links.is_subset(&l2.links));
    let has = |node: &str, address: String| {
        let addresses = &l2.addresses[&(node.to_string(), "eth1".to_string())];
        assert!(
            addresses
                .iter()
                .any(|a| a.split('/').next() == Some(address.as_str())),
            "{node} eth1: {address} not in {addresses:?}"
        );
    };
    has("cl", Lab::l2_client_v4().to_string());
    has("cl", Lab::l2_client_v6().to_string());
    for i in 1..=3 {
        has(&format!("n{i}"), Lab::l2_node_v4(i).to_string());
        has(&format!("n{i}"), Lab::l2_node_v6(i).to_string());
    }
}

// ---------------------------------------------------------------------- containerlab

#[derive(Deserialize)]
struct Clab {
    name: String,
    topology: ClabTopology,
}

#[derive(Deserialize)]
struct ClabTopology {
    nodes: BTreeMap<String, ClabNode>,
    links: Vec<ClabLink>,
}

#[derive(Deserialize)]
struct ClabNode {
    #[serde(default)]
    binds: Vec<String>,
    #[serde(default)]
    cmd: Option<String>,
    #[serde(default)]
    exec: Vec<String>,
}

#[derive(Deserialize)]
struct ClabLink {
    endpoints: Vec<String>,
}

/// containerlab's eth0 is its management interface: the lab's eth0 is eth1 there, its eth1
/// is eth2, and the switch's bridge ports (named after the peer in lab/netns) are eth1.. in
/// link order.
fn netns_interface(
    node: &str,
    clab_interface: &str,
    switch_ports: &BTreeMap<String, String>,
) -> String {
    if node == "sw" {
        return switch_ports
            .get(clab_interface)
            .unwrap_or_else(|| panic!("sw:{clab_interface} is not a bridge port"))
            .clone();
    }
    match clab_interface {
        "eth1" => "eth0".into(),
        "eth2" => "eth1".into(),
        other => panic!("{node}:{other} has no counterpart in lab/netns"),
    }
}

fn containerlab() -> (Clab, Description) {
    let path = repository().join("lab/containerlab/ferrolb.clab.yml");
    let text = std::fs::read_to_string(&path).expect("read the containerlab topology");
    let clab: Clab =
        serde_saphyr::from_str(&text).unwrap_or_else(|e| panic!("{}: {e}", path.display()));
    let mut d = Description {
        nodes: clab.topology.nodes.keys().cloned().collect(),
        ..Description::default()
    };
    // The switch's ports: the clab interface of sw that faces each peer, named as lab.sh names
    // the bridge port (the peer's node name).
    let mut switch_ports = BTreeMap::new();
    for link in &clab.topology.links {
        let [a, b] = link.endpoints.as_slice() else {
            panic!("a link has {} endpoints", link.endpoints.len())
        };
        let (an, ai) = a.split_once(':').expect("node:interface");
        let (bn, _) = b.split_once(':').expect("node:interface");
        if an == "sw" {
            switch_ports.insert(ai.to_string(), bn.to_string());
        }
    }
    for link in &clab.topology.links {
        let ends: Vec<String> = link
            .endpoints
            .iter()
            .map(|e| {
                let (n, i) = e.split_once(':').expect("node:interface");
                format!("{n}:{}", netns_interface(n, i, &switch_ports))
            })
            .collect();
        d.links.insert(pair(&ends[0], &ends[1]));
    }
    for (name, node) in &clab.topology.nodes {
        for command in &node.exec {
            let words: Vec<&str> = command.split_whitespace().collect();
            match words.as_slice() {
                ["ip", "addr", "add", address, "dev", dev]
                | ["ip", "-6", "addr", "add", address, "dev", dev, ..] => {
                    d.addresses
                        .entry((name.clone(), netns_interface(name, dev, &switch_ports)))
                        .or_default()
                        .insert(address.to_string());
                }
                ["ip", "route", "add", _, "via", gateway]
                | ["ip", "-6", "route", "add", _, "via", gateway] => {
                    d.gateways
                        .entry(name.clone())
                        .or_default()
                        .insert(gateway.to_string());
                }
                _ => {}
            }
        }
    }
    (clab, d)
}

#[test]
fn the_containerlab_topology_has_the_netns_labs_nodes_links_addresses_and_gateways() {
    let netns = netns_lab(3);
    let (clab, d) = containerlab();
    assert_eq!(clab.name, "ferrolb");
    assert_eq!(d.nodes, netns.nodes, "nodes");
    assert_eq!(d.links, netns.links, "links (in lab/netns interface names)");
    assert_eq!(d.addresses, netns.addresses, "addresses");
    assert_eq!(d.gateways, netns.gateways, "gateways");
}

#[test]
fn the_containerlab_nodes_run_the_speaker_on_the_labs_configuration() {
    let netns = netns_lab(3);
    let (clab, _) = containerlab();
    for (name, node) in clab
        .topology
        .nodes
        .iter()
        .filter(|(n, _)| n.starts_with('n'))
    {
        assert!(
            node.binds
                .iter()
                .any(|b| b == "../../examples/lab:/etc/ferrolb:ro"),
            "{name} must mount examples/lab, as the netns demo uses: {:?}",
            node.binds
        );
        let v4 = netns.addresses[&(name.clone(), "eth0".to_string())]
            .iter()
            .find(|a| !a.contains(':'))
            .and_then(|a| a.split('/').next())
            .expect("an IPv4 address")
            .to_string();
        assert_eq!(
            node.cmd.as_deref(),
            Some(
                format!(
                    "speaker --config-dir /etc/ferrolb --node-name {name} --router-id {v4} --bind-vips lo"
                )
                .as_str()
            ),
            "{name}'s command"
        );
    }
}

#[test]
fn the_containerlab_router_runs_the_netns_labs_router_configuration() {
    let rendered = Command::new("bash")
        .arg(repository().join("lab/containerlab/render-router-config.sh"))
        .output()
        .expect("run render-router-config.sh");
    assert!(
        rendered.status.success(),
        "{}",
        String::from_utf8_lossy(&rendered.stderr)
    );
    let committed = std::fs::read_to_string(repository().join("lab/containerlab/rtr/frr.conf"))
        .expect("read rtr/frr.conf");
    assert_eq!(
        String::from_utf8(rendered.stdout).expect("utf-8"),
        committed,
        "lab/containerlab/rtr/frr.conf is not the netns lab's router config: run \
         lab/containerlab/render-router-config.sh >lab/containerlab/rtr/frr.conf"
    );
    let (clab, _) = containerlab();
    assert!(
        clab.topology.nodes["rtr"]
            .binds
            .contains(&"rtr/frr.conf:/etc/frr/frr.conf".to_string())
    );
}
