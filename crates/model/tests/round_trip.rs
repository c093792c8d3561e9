//! YAML → types → YAML keeps every field as written: nothing is added, dropped or reordered in
//! meaning, so `kubectl get -o yaml`, `ferrolb migrate` and the API server all see the same
//! object.

// Test helpers outside `#[test]` functions may fail loudly on fixtures the test itself wrote.
#![allow(clippy::expect_used, clippy::unwrap_used)]

use std::fs;
use std::path::PathBuf;

use ferrolb_model::config::{Config, Resources};
use ferrolb_model::load::{decode_object, split_documents};
use serde_json::Value;

/// Every field of every kind, including status.
const EVERY_FIELD: &str = r#"
apiVersion: ferrolb.io/v1beta1
kind: IPAddressPool
metadata:
  name: prod
  namespace: ferrolb-system
  labels: {exposure: public}
spec:
  addresses: [192.168.32.0/24, 172.16.16.10-172.16.16.20, 'fc00:f853:ccd:e799::/124']
  autoAssign: false
  avoidBuggyIPs: true
  serviceAllocation:
    priority: 10
    namespaces: [shop]
    namespaceSelectors: [{matchLabels: {team: web}}]
    serviceSelectors: [{matchExpressions: [{key: tier, operator: In, values: [gold]}]}]
status:
  assignedIPv4: '3'
  assignedIPv6: '0'
  availableIPv4: '264'
  availableIPv6: '16'
  conditions:
  - {type: Valid, status: 'True', reason: Accepted, message: ok, lastTransitionTime: '2026-01-01T00:00:00Z'}
---
apiVersion: ferrolb.io/v1beta1
kind: BGPPeer
metadata: {name: router, namespace: ferrolb-system}
spec:
  myASN: 4200000000
  peerASN: 64501
  localASN: 64999
  peerAddress: 10.0.0.1
  sourceAddress: 10.0.0.2
  peerPort: 180
  holdTime: 1m30s
  keepaliveTime: 30s
  connectTime: 10s
  routerID: 10.0.0.2
  nodeSelectors: [{matchLabels: {rack: a}}]
  passwordSecret: {name: bgp-auth, namespace: ferrolb-system}
  bfdProfile: fast
  enableGracefulRestart: true
  ebgpMultiHop: true
  vrf: red
  dualStackAddressFamily: true
status:
  nodes:
  - {node: worker-1, state: Established, lastTransitionTime: '2026-01-01T00:00:00Z', advertisedPrefixes: 2}
  - {node: worker-2, state: Active, message: connection refused}
---
apiVersion: ferrolb.io/v1beta1
kind: BGPPeer
metadata: {name: unnumbered, namespace: ferrolb-system}
spec: {myASN: 64500, dynamicASN: external, interface: eth1, password: secret}
---
apiVersion: ferrolb.io/v1beta1
kind: BGPAdvertisement
metadata: {name: local, namespace: ferrolb-system}
spec:
  aggregationLength: 32
  aggregationLengthV6: 128
  localPref: 100
  communities: ['65535:65282', gold, 'large:4200000000:1:2', no-export]
  ipAddressPools: [prod]
  ipAddressPoolSelectors: [{matchLabels: {exposure: public}}]
  nodeSelectors: [{matchLabels: {rack: a}}]
  peers: [router]
  serviceSelectors: [{matchLabels: {tier: gold}}]
---
apiVersion: ferrolb.io/v1beta1
kind: L2Advertisement
metadata: {name: l2, namespace: ferrolb-system}
spec:
  ipAddressPools: [prod]
  ipAddressPoolSelectors: [{matchLabels: {exposure: public}}]
  nodeSelectors: [{matchLabels: {rack: a}}]
  interfaces: [eth0]
  serviceSelectors: [{matchLabels: {tier: gold}}]
  preferredNodeSelectors: [{weight: 50, preference: {matchLabels: {zone: a}}}]
---
apiVersion: ferrolb.io/v1beta1
kind: Community
metadata: {name: aliases, namespace: ferrolb-system}
spec:
  communities: [{name: gold, value: '64500:100'}]
---
apiVersion: ferrolb.io/v1beta1
kind: BFDProfile
metadata: {name: fast, namespace: ferrolb-system}
spec:
  receiveInterval: 50
  transmitInterval: 50
  detectMultiplier: 3
  echoInterval: 50
  echoMode: false
  passiveMode: true
  minimumTtl: 250
"#;

fn round_trip_every_document(text: &str) -> usize {
    let mut count = 0;
    for document in split_documents(text) {
        let original = document.parse().expect("the YAML parses");
        let object = decode_object(&original).expect("the document decodes");
        let written = object.to_yaml().expect("the object renders");
        let reread: Value = serde_saphyr::from_str(&written).expect("the output parses");
        assert_eq!(
            reread, original,
            "document {} came back different:\n{written}",
            document.index
        );
        assert_eq!(
            decode_object(&reread).expect("the output decodes"),
            object,
            "document {}",
            document.index
        );
        count += 1;
    }
    count
}

#[test]
fn every_field_of_every_kind_survives_a_round_trip() {
    assert_eq!(round_trip_every_document(EVERY_FIELD), 7);
}

#[test]
fn every_field_example_is_a_valid_configuration() {
    let resources: Resources = split_documents(EVERY_FIELD)
        .iter()
        .map(|d| decode_object(&d.parse().expect("parses")).expect("decodes"))
        .collect();
    let config = Config::build(&resources).unwrap_or_else(|errors| panic!("{errors:#?}"));
    assert_eq!(config.pools.len(), 1);
    assert_eq!(config.peers.len(), 2);
}

#[test]
fn converted_examples_survive_a_round_trip() {
    let directory =
        PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("../../examples/metallb/converted");
    let mut documents = 0;
    for entry in fs::read_dir(directory).expect("the examples exist") {
        let text = fs::read_to_string(entry.expect("entry reads").path()).expect("file reads");
        documents += round_trip_every_document(&text);
    }
    assert_eq!(documents, 7);
}
