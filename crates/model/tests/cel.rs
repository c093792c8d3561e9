//! The CEL rules (`x-kubernetes-validations`) of the generated CRDs, evaluated by kube's
//! client-side CEL validator (kube-cel, the same function library as the API server) against
//! the schemas exactly as they are written to `manifests/crds/`. No cluster is needed.
//!
//! Every case is also given to `Config::build`, which must agree on accept/reject: the speaker
//! reads the same YAML from a directory with no API server to run the CEL rules, so the Rust
//! rules must cover everything CEL does (and may check more, like range order).

// Test helpers outside `#[test]` functions may fail loudly on fixtures the test itself wrote.
#![allow(clippy::expect_used, clippy::unwrap_used)]

use ferrolb_model::config::Config;
use ferrolb_model::crd::ResourceKind;
use ferrolb_model::load::decode_object;
use ferrolb_model::manifests::openapi_schema;
use kube::core::cel::{ScopeContext, Validator, WarningKind, analyze_rule, compile_schema};
use serde_json::Value;

/// Which layer is expected to reject a case.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Rejected {
    /// Valid for both.
    Nowhere,
    /// CEL with these messages, and `Config::build` too.
    ByBoth,
    /// Only `Config::build` (a rule CEL cannot express, or one needing other objects).
    OnlyByConfig,
}

fn object(kind: ResourceKind, spec: &str) -> Value {
    let spec: Value = serde_saphyr::from_str(spec).expect("test spec parses");
    serde_json::json!({
        "apiVersion": "ferrolb.io/v1beta1",
        "kind": kind.as_str(),
        "metadata": {"name": "case"},
        "spec": spec,
    })
}

/// The CEL failures for an object, as `field: message`.
fn cel_failures(kind: ResourceKind, object: &Value) -> Vec<String> {
    let schema = openapi_schema(kind).expect("schema generates");
    match Validator::new().validate(schema, object, None) {
        Ok(()) => Vec::new(),
        Err(errors) => errors
            .iter()
            .map(|e| format!("{}: {}", e.field_path, e.message))
            .collect(),
    }
}

fn config_rejects(object: &Value) -> bool {
    let decoded = decode_object(object).expect("test object decodes");
    Config::build(&std::iter::once(decoded).collect()).is_err()
}

#[track_caller]
fn case(kind: ResourceKind, spec: &str, expected: &[&str], rejected: Rejected) {
    let object = object(kind, spec);
    let failures = cel_failures(kind, &object);
    assert_eq!(failures, expected, "CEL on {kind} spec {spec}");
    assert_eq!(
        config_rejects(&object),
        rejected != Rejected::Nowhere,
        "Config::build on {kind} spec {spec}"
    );
    let cel_rejects = !failures.is_empty();
    assert_eq!(
        cel_rejects,
        rejected == Rejected::ByBoth,
        "{kind} spec {spec}"
    );
}

use Rejected::{ByBoth, Nowhere, OnlyByConfig};
use ResourceKind::{BGPAdvertisement, BGPPeer, Community, IPAddressPool};

#[test]
fn valid_peer_passes() {
    case(
        BGPPeer,
        "{myASN: 64500, peerASN: 64501, peerAddress: 10.0.0.1, holdTime: 1m30s, keepaliveTime: 30s}",
        &[],
        Nowhere,
    );
}

#[test]
fn peer_asn_and_dynamic_asn_are_exclusive() {
    case(
        BGPPeer,
        "{myASN: 64500, peerASN: 64501, dynamicASN: external, peerAddress: 10.0.0.1}",
        &["spec: exactly one of peerASN or dynamicASN must be set"],
        ByBoth,
    );
    case(
        BGPPeer,
        "{myASN: 64500, peerAddress: 10.0.0.1}",
        &["spec: exactly one of peerASN or dynamicASN must be set"],
        ByBoth,
    );
}

#[test]
fn peer_address_and_interface_are_exclusive() {
    case(
        BGPPeer,
        "{myASN: 64500, peerASN: 64501, peerAddress: 10.0.0.1, interface: eth0}",
        &["spec: exactly one of peerAddress or interface must be set"],
        ByBoth,
    );
    case(
        BGPPeer,
        "{myASN: 64500, dynamicASN: internal, interface: eth0}",
        &[],
        Nowhere,
    );
}

#[test]
fn password_and_password_secret_are_exclusive() {
    case(
        BGPPeer,
        "{myASN: 1, peerASN: 2, peerAddress: 10.0.0.1, password: x, passwordSecret: {name: s}}",
        &["spec: password and passwordSecret are mutually exclusive; set at most one"],
        ByBoth,
    );
}

#[test]
fn keepalive_must_not_exceed_hold() {
    case(
        BGPPeer,
        "{myASN: 1, peerASN: 2, peerAddress: 10.0.0.1, holdTime: 30s, keepaliveTime: 1m}",
        &["spec.keepaliveTime: keepaliveTime must not be longer than holdTime"],
        ByBoth,
    );
}

#[test]
fn hold_time_is_zero_or_three_to_65535_whole_seconds() {
    case(
        BGPPeer,
        "{myASN: 1, peerASN: 2, peerAddress: 10.0.0.1, holdTime: 2s}",
        &["spec.holdTime: holdTime must be whole seconds, 0 or between 3s and 65535s"],
        ByBoth,
    );
    case(
        BGPPeer,
        "{myASN: 1, peerASN: 2, peerAddress: 10.0.0.1, holdTime: 4500ms}",
        &["spec.holdTime: holdTime must be whole seconds, 0 or between 3s and 65535s"],
        ByBoth,
    );
    case(
        BGPPeer,
        "{myASN: 1, peerASN: 2, peerAddress: 10.0.0.1, holdTime: '90'}",
        &["spec.holdTime: holdTime must be a duration such as 90s or 1m30s"],
        ByBoth,
    );
    case(
        BGPPeer,
        "{myASN: 1, peerASN: 2, peerAddress: 10.0.0.1, holdTime: 0s}",
        &[],
        Nowhere,
    );
}

#[test]
fn keepalive_time_is_whole_seconds() {
    case(
        BGPPeer,
        "{myASN: 1, peerASN: 2, peerAddress: 10.0.0.1, keepaliveTime: 1.5s}",
        &["spec.keepaliveTime: keepaliveTime must be whole seconds, at most 65535s"],
        ByBoth,
    );
    case(
        BGPPeer,
        "{myASN: 1, peerASN: 2, peerAddress: 10.0.0.1, keepaliveTime: soon}",
        &["spec.keepaliveTime: keepaliveTime must be a duration such as 30s"],
        ByBoth,
    );
}

#[test]
fn connect_time_is_one_to_65535_whole_seconds() {
    case(
        BGPPeer,
        "{myASN: 1, peerASN: 2, peerAddress: 10.0.0.1, connectTime: 0s}",
        &["spec.connectTime: connectTime must be whole seconds between 1s and 65535s"],
        ByBoth,
    );
    case(
        BGPPeer,
        "{myASN: 1, peerASN: 2, peerAddress: 10.0.0.1, connectTime: 10s}",
        &[],
        Nowhere,
    );
}

#[test]
fn ebgp_multihop_needs_an_ebgp_session() {
    case(
        BGPPeer,
        "{myASN: 64500, peerASN: 64500, peerAddress: 10.0.0.1, ebgpMultiHop: true}",
        &[
            "spec.ebgpMultiHop: ebgpMultiHop applies to eBGP sessions only (peerASN different from myASN or localASN)",
        ],
        ByBoth,
    );
    case(
        BGPPeer,
        "{myASN: 64500, peerASN: 64501, localASN: 64501, peerAddress: 10.0.0.1, ebgpMultiHop: true}",
        &[
            "spec.ebgpMultiHop: ebgpMultiHop applies to eBGP sessions only (peerASN different from myASN or localASN)",
        ],
        ByBoth,
    );
    case(
        BGPPeer,
        "{myASN: 64500, dynamicASN: external, peerAddress: 10.0.0.1, ebgpMultiHop: true}",
        &[],
        Nowhere,
    );
}

#[test]
fn addresses_must_be_ip_addresses_of_one_family() {
    case(
        BGPPeer,
        "{myASN: 1, peerASN: 2, peerAddress: 10.0.0.256}",
        &["spec.peerAddress: peerAddress must be an IP address"],
        ByBoth,
    );
    case(
        BGPPeer,
        "{myASN: 1, peerASN: 2, peerAddress: 10.0.0.1, sourceAddress: 'fc00::1'}",
        &["spec.sourceAddress: sourceAddress and peerAddress must be of the same address family"],
        ByBoth,
    );
    case(
        BGPPeer,
        "{myASN: 1, peerASN: 2, peerAddress: 10.0.0.1, sourceAddress: local}",
        &["spec.sourceAddress: sourceAddress must be an IP address"],
        ByBoth,
    );
    case(
        BGPPeer,
        "{myASN: 1, peerASN: 2, peerAddress: 10.0.0.1, routerID: 'fc00::1'}",
        &["spec.routerID: routerID must be an IPv4 address (the BGP identifier is 32 bits)"],
        ByBoth,
    );
}

#[test]
fn pool_addresses_are_cidrs_without_host_bits_or_single_family_ranges() {
    case(
        IPAddressPool,
        "{addresses: [192.168.32.0/24, '172.16.16.10 - 172.16.16.20', 'fc00::/120']}",
        &[],
        Nowhere,
    );
    let message = "spec.addresses: each address must be a CIDR without host bits \
                   (192.168.10.0/24) or a range of one family (192.168.10.10-192.168.10.20)";
    case(
        IPAddressPool,
        "{addresses: [192.168.32.5/24]}",
        &[message],
        ByBoth,
    );
    case(
        IPAddressPool,
        "{addresses: [10.0.0.1-fc00::1]}",
        &[message],
        ByBoth,
    );
    case(IPAddressPool, "{addresses: [10.0.0.7]}", &[message], ByBoth);
    // Kubernetes CEL cannot order addresses, so this one is left to Config::build.
    case(
        IPAddressPool,
        "{addresses: [172.16.16.150-172.16.16.20]}",
        &[],
        OnlyByConfig,
    );
}

#[test]
fn service_selectors_need_host_routes() {
    case(
        BGPAdvertisement,
        "{aggregationLength: 24, serviceSelectors: [{matchLabels: {a: b}}]}",
        &[
            "spec.serviceSelectors: serviceSelectors can only be used with aggregationLength 32 and aggregationLengthV6 128",
        ],
        ByBoth,
    );
    case(
        BGPAdvertisement,
        "{aggregationLength: 32, serviceSelectors: [{matchLabels: {a: b}}]}",
        &[],
        Nowhere,
    );
}

#[test]
fn community_syntax_is_checked() {
    let message = "spec.communities: each community must be A:B (16-bit numbers), large:A:B:C \
                   (32-bit numbers), a well-known name or a Community alias";
    case(
        BGPAdvertisement,
        "{communities: ['65535:65282', 'large:4200000000:1:2', no-export]}",
        &[],
        Nowhere,
    );
    case(
        BGPAdvertisement,
        "{communities: ['65536:1']}",
        &[message],
        ByBoth,
    );
    case(
        BGPAdvertisement,
        "{communities: ['large:1:2']}",
        &[message],
        ByBoth,
    );
    case(
        BGPAdvertisement,
        "{communities: ['large:1:2:4294967296']}",
        &[message],
        ByBoth,
    );
    case(
        BGPAdvertisement,
        "{communities: ['not an alias']}",
        &[message],
        ByBoth,
    );
    // Well-formed alias names pass CEL; whether the alias exists needs the Community objects.
    case(BGPAdvertisement, "{communities: [gold]}", &[], OnlyByConfig);
}

#[test]
fn community_aliases_are_checked() {
    case(
        Community,
        "{communities: [{name: gold, value: '64500:7'}, {name: big, value: 'large:1:2:3'}]}",
        &[],
        Nowhere,
    );
    case(
        Community,
        "{communities: [{name: no-export, value: '64500:7'}]}",
        &[
            "spec.communities[0].name: name must be letters, digits, '-', '_' and '.', and not a well-known community name",
        ],
        ByBoth,
    );
    case(
        Community,
        "{communities: [{name: gold, value: silver}]}",
        &[
            "spec.communities[0].value: value must be A:B (16-bit numbers), large:A:B:C (32-bit numbers) or a well-known name",
        ],
        ByBoth,
    );
}

#[test]
fn every_rule_compiles_uses_only_self_and_fits_the_cost_budget() {
    let mut rules = 0;
    for kind in ResourceKind::ALL {
        let schema = openapi_schema(kind).expect("schema generates");
        let compiled = compile_schema(schema);
        assert!(
            !compiled.has_errors(),
            "{kind}: {:?}",
            compiled.compilation_errors()
        );
        let mut nodes = vec![schema];
        while let Some(node) = nodes.pop() {
            if let Some(Value::Array(validations)) = node.get("x-kubernetes-validations") {
                let node_schema = compile_schema(node);
                for validation in validations {
                    let rule = validation["rule"].as_str().expect("rules are strings");
                    let mut warnings =
                        analyze_rule(rule, &node_schema, ScopeContext::CrdValidation);
                    // kube-cel's scope check counts the variables of `all`/`exists`
                    // comprehensions as free variables; ours are single letters.
                    warnings.retain(|w| {
                        !(w.kind == WarningKind::WrongScope
                            && ["'a'", "'c'", "'n'", "'p'"]
                                .iter()
                                .any(|v| w.message.contains(v)))
                    });
                    assert!(warnings.is_empty(), "{kind}: {rule}: {warnings:?}");
                    rules += 1;
                }
            }
            if let Some(Value::Object(properties)) = node.get("properties") {
                nodes.extend(properties.values());
            }
            if let Some(items) = node.get("items") {
                nodes.push(items);
            }
        }
    }
    assert_eq!(
        rules, 20,
        "a rule was added or lost; cover it with a case above"
    );
}
