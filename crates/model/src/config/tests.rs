//! The rules of `Config::build`, one test per rule, each asserting the exact message.

use std::net::IpAddr;
use std::time::Duration;

use super::*;
use crate::community::{Community as CommunityNumber, LargeCommunity};
use crate::load::{decode_object, split_documents};

fn resources(yaml: &str) -> Resources {
    split_documents(yaml)
        .iter()
        .map(|document| {
            let value = document.parse().expect("test YAML parses");
            decode_object(&value).expect("test YAML decodes")
        })
        .collect()
}

fn errors(yaml: &str) -> Vec<String> {
    match Config::build(&resources(yaml)) {
        Ok(_) => Vec::new(),
        Err(errors) => errors.iter().map(ToString::to_string).collect(),
    }
}

fn config(yaml: &str) -> Config {
    Config::build(&resources(yaml)).unwrap_or_else(|errors| {
        panic!(
            "expected a valid config, got:\n{}",
            errors
                .iter()
                .map(|e| format!("  {e}\n"))
                .collect::<String>()
        )
    })
}

const POOL: &str = "
apiVersion: ferrolb.io/v1beta1
kind: IPAddressPool
metadata: {name: prod}
spec:
  addresses: [192.168.32.0/24]
";

const PEER: &str = "
apiVersion: ferrolb.io/v1beta1
kind: BGPPeer
metadata: {name: router}
spec: {myASN: 64500, peerASN: 64501, peerAddress: 10.0.0.1}
";

fn with(parts: &[&str]) -> String {
    parts.join("\n---\n")
}

// ---------------------------------------------------------------------------------------------
// The MetalLB-docs configuration builds, with defaults applied.

#[test]
fn metallb_docs_configuration_builds_with_defaults() {
    let config = config(&with(&[
        POOL,
        PEER,
        "
apiVersion: ferrolb.io/v1beta1
kind: BGPAdvertisement
metadata: {name: local}
spec:
  ipAddressPools: [prod]
  aggregationLength: 32
  localPref: 100
  communities: [65535:65282]
",
    ]));
    let pool = config.pool("prod").unwrap();
    assert!(pool.auto_assign);
    assert!(!pool.avoid_buggy_ips);
    assert_eq!(pool.cidrs, vec!["192.168.32.0/24".parse().unwrap()]);

    let peer = config.peer("router").unwrap();
    assert_eq!(peer.my_asn, 64500);
    assert_eq!(peer.remote_asn, RemoteAsn::Fixed(64501));
    assert_eq!(
        peer.endpoint,
        PeerEndpoint::Address("10.0.0.1".parse().unwrap())
    );
    assert_eq!(peer.port, 179);
    assert_eq!(peer.hold_time, Duration::from_secs(90));
    assert_eq!(peer.keepalive_time, Duration::from_secs(30));
    assert!(!peer.is_internal());

    let advertisement = &config.bgp_advertisements[0];
    assert_eq!(advertisement.aggregation_length_v4, 32);
    assert_eq!(advertisement.aggregation_length_v6, 128);
    assert_eq!(advertisement.local_pref, Some(100));
    assert_eq!(
        advertisement.communities,
        vec![CommunityValue::Standard(CommunityNumber::NO_ADVERTISE)]
    );
    assert_eq!(advertisement.pools, ["prod"]);
    assert!(advertisement.applies_to_peer("router"));
}

#[test]
fn empty_resources_build_an_empty_config() {
    assert_eq!(Config::build(&Resources::default()), Ok(Config::default()));
}

// ---------------------------------------------------------------------------------------------
// IPAddressPool

#[test]
fn range_start_after_end_is_reported_with_field_path() {
    assert_eq!(
        errors(
            "
apiVersion: ferrolb.io/v1beta1
kind: IPAddressPool
metadata: {name: prod}
spec:
  addresses: [172.16.16.0/28, 172.16.16.150-172.16.16.20]
"
        ),
        [
            "IPAddressPool/prod spec.addresses[1]: range start 172.16.16.150 is after end 172.16.16.20"
        ]
    );
}

#[test]
fn every_error_is_reported_at_once() {
    assert_eq!(
        errors(
            "
apiVersion: ferrolb.io/v1beta1
kind: IPAddressPool
metadata: {name: prod}
spec:
  addresses: [10.0.0.5/24, not-an-address]
  serviceAllocation:
    namespaces: [Bad_Name]
"
        ),
        [
            "IPAddressPool/prod spec.addresses[0]: 10.0.0.5/24 has host bits set: write the \
             network 10.0.0.0/24, or 10.0.0.5/32 for the single address",
            "IPAddressPool/prod spec.addresses[1]: \"not-an-address\" is neither a CIDR \
             (192.168.10.0/24) nor a range (192.168.10.10-192.168.10.20)",
            "IPAddressPool/prod spec.serviceAllocation.namespaces[0]: \"Bad_Name\" is not a valid \
             namespace name: use at most 63 lowercase letters, digits and '-', starting and \
             ending with a letter or digit",
        ]
    );
}

#[test]
fn pool_without_addresses_is_rejected() {
    assert_eq!(
        errors(
            "
apiVersion: ferrolb.io/v1beta1
kind: IPAddressPool
metadata: {name: empty}
spec: {addresses: []}
"
        ),
        [
            "IPAddressPool/empty spec.addresses: at least one address (a CIDR or a range) is required"
        ]
    );
}

#[test]
fn list_sizes_follow_the_crd_limits() {
    let addresses: Vec<String> = (0..1001)
        .map(|i| format!("'10.{}.{}.0/24'", i / 256, i % 256))
        .collect();
    let communities: Vec<String> = (0..65).map(|i| format!("'64500:{i}'")).collect();
    assert_eq!(
        errors(&with(&[
            &format!(
                "apiVersion: ferrolb.io/v1beta1\nkind: IPAddressPool\nmetadata: {{name: big}}\n\
                 spec: {{addresses: [{}]}}\n",
                addresses.join(", ")
            ),
            &advertisement(&format!("{{communities: [{}]}}", communities.join(", "))),
        ])),
        [
            "IPAddressPool/big spec.addresses: 1001 entries; a pool holds at most 1000 (one CIDR \
             or range can cover many addresses)",
            "BGPAdvertisement/ads spec.communities: 65 communities; an advertisement carries at \
             most 64",
        ]
    );
}

#[test]
fn overlapping_pools_are_reported_on_the_later_entry() {
    assert_eq!(
        errors(&with(&[
            POOL,
            "
apiVersion: ferrolb.io/v1beta1
kind: IPAddressPool
metadata: {name: staging}
spec:
  addresses: [10.1.0.0/24, 192.168.32.100-192.168.32.110]
"
        ])),
        [
            "IPAddressPool/staging spec.addresses[1]: 192.168.32.100-192.168.32.110 overlaps \
             192.168.32.0/24 (IPAddressPool/prod spec.addresses[0]); a pool address must belong \
             to exactly one entry"
        ]
    );
}

#[test]
fn overlapping_entries_within_one_pool_are_reported() {
    assert_eq!(
        errors(
            "
apiVersion: ferrolb.io/v1beta1
kind: IPAddressPool
metadata: {name: prod}
spec:
  addresses: [fc00::/120, 'fc00::10-fc00::20']
"
        ),
        [
            "IPAddressPool/prod spec.addresses[1]: fc00::10-fc00::20 overlaps fc00::/120 \
             (IPAddressPool/prod spec.addresses[0]); a pool address must belong to exactly one entry"
        ]
    );
}

#[test]
fn adjacent_pools_and_different_families_do_not_overlap() {
    let config = config(&with(&[
        POOL,
        "
apiVersion: ferrolb.io/v1beta1
kind: IPAddressPool
metadata: {name: next}
spec:
  addresses: [192.168.33.0/24, 'fc00::/64']
",
    ]));
    assert_eq!(config.pools.len(), 2);
    let address: IpAddr = "192.168.33.9".parse().unwrap();
    assert_eq!(config.pool_containing(address).unwrap().name, "next");
}

#[test]
fn pools_are_ordered_by_priority_with_unset_and_zero_last() {
    let config = config(
        "
apiVersion: ferrolb.io/v1beta1
kind: IPAddressPool
metadata: {name: c-unset}
spec: {addresses: [10.0.0.0/24]}
---
apiVersion: ferrolb.io/v1beta1
kind: IPAddressPool
metadata: {name: b-ten}
spec: {addresses: [10.0.1.0/24], serviceAllocation: {priority: 10}}
---
apiVersion: ferrolb.io/v1beta1
kind: IPAddressPool
metadata: {name: a-zero}
spec: {addresses: [10.0.2.0/24], serviceAllocation: {priority: 0}}
---
apiVersion: ferrolb.io/v1beta1
kind: IPAddressPool
metadata: {name: d-one}
spec: {addresses: [10.0.3.0/24], serviceAllocation: {priority: 1}}
",
    );
    let order: Vec<&str> = config
        .pools_in_allocation_order()
        .iter()
        .map(|p| p.name.as_str())
        .collect();
    assert_eq!(order, ["d-one", "b-ten", "a-zero", "c-unset"]);
}

#[test]
fn service_allocation_admits_by_namespace_and_service_labels() {
    let config = config(
        "
apiVersion: ferrolb.io/v1beta1
kind: IPAddressPool
metadata: {name: team}
spec:
  addresses: [10.0.0.0/24]
  serviceAllocation:
    namespaces: [shop]
    namespaceSelectors: [{matchLabels: {team: web}}]
    serviceSelectors: [{matchLabels: {expose: public}}]
",
    );
    let allocation = &config.pool("team").unwrap().allocation;
    let labels = |pairs: &[(&str, &str)]| -> BTreeMap<String, String> {
        pairs
            .iter()
            .map(|(k, v)| (k.to_string(), v.to_string()))
            .collect()
    };
    let public = labels(&[("expose", "public")]);
    assert!(allocation.is_restricted());
    assert!(allocation.admits("shop", &labels(&[]), &public));
    assert!(allocation.admits("blog", &labels(&[("team", "web")]), &public));
    assert!(!allocation.admits("blog", &labels(&[]), &public));
    assert!(!allocation.admits("shop", &labels(&[]), &labels(&[])));
}

#[test]
fn duplicate_names_are_reported_once() {
    assert_eq!(
        errors(&with(&[POOL, POOL])),
        [
            "IPAddressPool/prod metadata.name: IPAddressPool/prod is defined more than once; names \
          must be unique per kind"
        ]
    );
}

#[test]
fn invalid_object_names_are_reported() {
    assert_eq!(
        errors(
            "
apiVersion: ferrolb.io/v1beta1
kind: IPAddressPool
metadata: {name: Prod_Pool}
spec: {addresses: [10.0.0.0/24]}
"
        ),
        [
            "IPAddressPool/Prod_Pool metadata.name: \"Prod_Pool\" is not a valid Kubernetes name: use \
          lowercase letters, digits, '-' and '.', starting and ending with a letter or digit"
        ]
    );
}

#[test]
fn bad_selectors_are_reported_with_their_full_path() {
    assert_eq!(
        errors(
            "
apiVersion: ferrolb.io/v1beta1
kind: IPAddressPool
metadata: {name: prod}
spec:
  addresses: [10.0.0.0/24]
  serviceAllocation:
    serviceSelectors:
    - matchExpressions: [{key: app, operator: Equals, values: [a]}]
    - matchLabels: {app: web}
    - matchLabels: {app: web}
"
        ),
        [
            "IPAddressPool/prod spec.serviceAllocation.serviceSelectors[0].matchExpressions[0].\
             operator: \"Equals\" is not an operator; use In, NotIn, Exists or DoesNotExist",
            "IPAddressPool/prod spec.serviceAllocation.serviceSelectors[2]: duplicate of \
             spec.serviceAllocation.serviceSelectors[1]",
        ]
    );
}

// ---------------------------------------------------------------------------------------------
// BGPPeer

fn peer(spec: &str) -> String {
    format!(
        "apiVersion: ferrolb.io/v1beta1\nkind: BGPPeer\nmetadata: {{name: router}}\nspec: {spec}\n"
    )
}

#[test]
fn peer_with_both_peer_asn_and_dynamic_asn_is_rejected() {
    assert_eq!(
        errors(&peer(
            "{myASN: 64500, peerASN: 64501, dynamicASN: external, peerAddress: 10.0.0.1}"
        )),
        [
            "BGPPeer/router spec.dynamicASN: peerASN and dynamicASN are both set; set exactly one of them"
        ]
    );
}

#[test]
fn peer_without_any_remote_asn_is_rejected() {
    assert_eq!(
        errors(&peer("{myASN: 64500, peerAddress: 10.0.0.1}")),
        ["BGPPeer/router spec.peerASN: exactly one of peerASN or dynamicASN must be set"]
    );
}

#[test]
fn zero_asns_are_rejected() {
    assert_eq!(
        errors(&peer(
            "{myASN: 0, peerASN: 0, localASN: 0, peerAddress: 10.0.0.1}"
        )),
        [
            "BGPPeer/router spec.myASN: myASN is required and must be between 1 and 4294967295",
            "BGPPeer/router spec.localASN: localASN must be between 1 and 4294967295",
            "BGPPeer/router spec.peerASN: peerASN must be between 1 and 4294967295",
        ]
    );
}

#[test]
fn peer_needs_exactly_one_of_address_and_interface() {
    assert_eq!(
        errors(&peer("{myASN: 1, peerASN: 2}")),
        ["BGPPeer/router spec.peerAddress: exactly one of peerAddress or interface must be set"]
    );
    assert_eq!(
        errors(&peer(
            "{myASN: 1, peerASN: 2, peerAddress: 10.0.0.1, interface: eth0}"
        )),
        [
            "BGPPeer/router spec.interface: peerAddress and interface are both set; set exactly one of them"
        ]
    );
}

#[test]
fn unnumbered_peer_uses_the_interface() {
    let config = config(&peer(
        "{myASN: 64500, dynamicASN: external, interface: eth1}",
    ));
    let peer = &config.peers[0];
    assert_eq!(peer.endpoint, PeerEndpoint::Interface("eth1".into()));
    assert_eq!(peer.remote_asn, RemoteAsn::External);
}

#[test]
fn addresses_must_parse_and_share_a_family() {
    assert_eq!(
        errors(&peer(
            "{myASN: 1, peerASN: 2, peerAddress: 10.0.0.1, sourceAddress: 'fc00::1', routerID: 'fc00::2'}"
        )),
        [
            "BGPPeer/router spec.sourceAddress: sourceAddress fc00::1 and peerAddress 10.0.0.1 are \
             of different address families",
            "BGPPeer/router spec.routerID: \"fc00::2\" is not an IPv4 address (the BGP identifier \
             is 32 bits)",
        ]
    );
    assert_eq!(
        errors(&peer("{myASN: 1, peerASN: 2, peerAddress: 10.0.0.256}")),
        ["BGPPeer/router spec.peerAddress: \"10.0.0.256\" is not an IP address"]
    );
}

#[test]
fn keepalive_longer_than_hold_is_rejected() {
    assert_eq!(
        errors(&peer(
            "{myASN: 1, peerASN: 2, peerAddress: 10.0.0.1, holdTime: 30s, keepaliveTime: 1m}"
        )),
        [
            "BGPPeer/router spec.keepaliveTime: keepaliveTime 1m must not be longer than holdTime 30s"
        ]
    );
}

#[test]
fn hold_time_must_be_zero_or_at_least_three_seconds() {
    assert_eq!(
        errors(&peer(
            "{myASN: 1, peerASN: 2, peerAddress: 10.0.0.1, holdTime: 2s}"
        )),
        [
            "BGPPeer/router spec.holdTime: holdTime 2s is out of range; use 0 (no keepalives) or 3s to 65535s"
        ]
    );
    let zero = config(&peer(
        "{myASN: 1, peerASN: 2, peerAddress: 10.0.0.1, holdTime: 0s}",
    ));
    assert_eq!(zero.peers[0].hold_time, Duration::ZERO);
    assert_eq!(zero.peers[0].keepalive_time, Duration::ZERO);
}

#[test]
fn timers_must_be_whole_seconds_and_valid_durations() {
    assert_eq!(
        errors(&peer(
            "{myASN: 1, peerASN: 2, peerAddress: 10.0.0.1, holdTime: 4.5s, connectTime: '10'}"
        )),
        [
            "BGPPeer/router spec.holdTime: holdTime 4.5s is not a whole number of seconds; BGP \
             timers are carried in seconds",
            "BGPPeer/router spec.connectTime: \"10\" is not a duration (a unit is missing); write \
             it like 90s, 1m30s or 500ms",
        ]
    );
}

#[test]
fn one_timer_derives_the_other() {
    let hold_only = config(&peer(
        "{myASN: 1, peerASN: 2, peerAddress: 10.0.0.1, holdTime: 3m}",
    ));
    assert_eq!(hold_only.peers[0].keepalive_time, Duration::from_secs(60));
    let keepalive_only = config(&peer(
        "{myASN: 1, peerASN: 2, peerAddress: 10.0.0.1, keepaliveTime: 10s}",
    ));
    assert_eq!(keepalive_only.peers[0].hold_time, Duration::from_secs(30));
}

#[test]
fn ebgp_multihop_on_an_ibgp_session_is_rejected() {
    assert_eq!(
        errors(&peer(
            "{myASN: 64500, peerASN: 64500, peerAddress: 10.0.0.1, ebgpMultiHop: true}"
        )),
        [
            "BGPPeer/router spec.ebgpMultiHop: ebgpMultiHop applies to eBGP sessions only, and this \
          session is iBGP (the peer's AS is our own)"
        ]
    );
}

#[test]
fn password_and_password_secret_are_exclusive_and_passwords_fit_md5() {
    assert_eq!(
        errors(&peer(
            "{myASN: 1, peerASN: 2, peerAddress: 10.0.0.1, password: x, passwordSecret: {name: s}}"
        )),
        [
            "BGPPeer/router spec.passwordSecret: password and passwordSecret are mutually exclusive; \
          set at most one"
        ]
    );
    let long = "p".repeat(81);
    assert_eq!(
        errors(&peer(&format!(
            "{{myASN: 1, peerASN: 2, peerAddress: 10.0.0.1, password: {long}}}"
        ))),
        [
            "BGPPeer/router spec.password: the password is 81 bytes long; TCP MD5 keys are at most 80"
        ]
    );
}

#[test]
fn passwords_are_not_printed_in_debug_output() {
    let config = config(&peer(
        "{myASN: 1, peerASN: 2, peerAddress: 10.0.0.1, password: hunter2}",
    ));
    assert_eq!(
        config.peers[0].password,
        Some(PeerPassword::Inline("hunter2".into()))
    );
    assert!(!format!("{:?}", config.peers[0]).contains("hunter2"));
}

#[test]
fn unknown_bfd_profile_is_rejected() {
    assert_eq!(
        errors(&peer(
            "{myASN: 1, peerASN: 2, peerAddress: 10.0.0.1, bfdProfile: fast}"
        )),
        ["BGPPeer/router spec.bfdProfile: BFDProfile/fast does not exist"]
    );
}

#[test]
fn bfd_profiles_get_frr_defaults_and_range_checks() {
    let config = config(&with(&[
        &peer("{myASN: 1, peerASN: 2, peerAddress: 10.0.0.1, bfdProfile: fast}"),
        "
apiVersion: ferrolb.io/v1beta1
kind: BFDProfile
metadata: {name: fast}
spec: {receiveInterval: 50}
",
    ]));
    let profile = config.bfd_profile("fast").unwrap();
    assert_eq!(profile.receive_interval_ms, 50);
    assert_eq!(profile.transmit_interval_ms, 300);
    assert_eq!(profile.detect_multiplier, 3);
    assert_eq!(profile.minimum_ttl, 254);
    assert_eq!(
        errors(
            "
apiVersion: ferrolb.io/v1beta1
kind: BFDProfile
metadata: {name: slow}
spec: {detectMultiplier: 1, minimumTtl: 255}
"
        ),
        [
            "BFDProfile/slow spec.detectMultiplier: 1 is out of range; use 2-255",
            "BFDProfile/slow spec.minimumTtl: 255 is out of range; use 1-254",
        ]
    );
}

#[test]
fn two_sessions_to_one_router_from_one_node_are_rejected() {
    let second = "
apiVersion: ferrolb.io/v1beta1
kind: BGPPeer
metadata: {name: router-again}
spec: {myASN: 64500, peerASN: 64501, peerAddress: 10.0.0.1, peerPort: 180}
";
    assert_eq!(
        errors(&with(&[PEER, second])),
        [
            "BGPPeer/router-again spec.peerAddress: BGPPeer/router already peers with 10.0.0.1 in the \
          default VRF and their nodeSelectors can select the same node; one node can have only one \
          session to a router"
        ]
    );
}

#[test]
fn sessions_to_one_router_from_disjoint_nodes_are_fine() {
    let config = config(
        "
apiVersion: ferrolb.io/v1beta1
kind: BGPPeer
metadata: {name: rack-a}
spec:
  myASN: 64500
  peerASN: 64501
  peerAddress: 10.0.0.1
  nodeSelectors: [{matchLabels: {rack: a}}]
---
apiVersion: ferrolb.io/v1beta1
kind: BGPPeer
metadata: {name: rack-b}
spec:
  myASN: 64500
  peerASN: 64501
  peerAddress: 10.0.0.1
  nodeSelectors: [{matchLabels: {rack: b}}]
",
    );
    assert_eq!(config.peers.len(), 2);
}

// ---------------------------------------------------------------------------------------------
// BGPAdvertisement

fn advertisement(spec: &str) -> String {
    format!(
        "apiVersion: ferrolb.io/v1beta1\nkind: BGPAdvertisement\nmetadata: {{name: ads}}\nspec: {spec}\n"
    )
}

#[test]
fn unknown_community_alias_is_rejected() {
    assert_eq!(
        errors(&with(&[
            POOL,
            &advertisement("{communities: [65535:65282, gold]}")
        ])),
        [
            "BGPAdvertisement/ads spec.communities[1]: \"gold\" is neither a community value (A:B, \
          large:A:B:C or a well-known name such as no-export) nor an alias defined by a Community \
          object"
        ]
    );
}

#[test]
fn community_aliases_well_known_names_and_large_communities_resolve() {
    let config = config(&with(&[
        POOL,
        &advertisement("{communities: [gold, no-export, 'large:64500:1:2', '64500:7']}"),
        "
apiVersion: ferrolb.io/v1beta1
kind: Community
metadata: {name: aliases}
spec:
  communities:
  - {name: gold, value: '64500:7'}
",
    ]));
    assert_eq!(
        config.bgp_advertisements[0].communities,
        vec![
            CommunityValue::Standard(CommunityNumber::from_parts(64500, 7)),
            CommunityValue::Standard(CommunityNumber::NO_EXPORT),
            CommunityValue::Large(LargeCommunity {
                global: 64500,
                local1: 1,
                local2: 2
            }),
        ]
    );
    assert_eq!(
        config.community_aliases.get("gold"),
        Some(&CommunityValue::Standard(CommunityNumber::from_parts(
            64500, 7
        )))
    );
}

#[test]
fn community_aliases_are_unique_across_objects_and_must_be_values() {
    assert_eq!(
        errors(
            "
apiVersion: ferrolb.io/v1beta1
kind: Community
metadata: {name: a}
spec:
  communities:
  - {name: gold, value: '64500:7'}
  - {name: silver, value: bronze}
---
apiVersion: ferrolb.io/v1beta1
kind: Community
metadata: {name: b}
spec:
  communities:
  - {name: gold, value: '64500:8'}
  - {name: no-export, value: '1:1'}
"
        ),
        [
            "Community/a spec.communities[1].value: \"bronze\" is not a community value: write A:B \
             (16-bit numbers), large:A:B:C (32-bit numbers) or a well-known name; aliases cannot \
             refer to other aliases",
            "Community/b spec.communities[0].name: alias \"gold\" is already defined by \
             Community/a; alias names must be unique",
            "Community/b spec.communities[1].name: \"no-export\" is a well-known community name \
             and cannot be redefined as an alias",
        ]
    );
}

#[test]
fn malformed_community_values_are_rejected() {
    assert_eq!(
        errors(&with(&[POOL, &advertisement("{communities: ['65536:1']}")])),
        [
            "BGPAdvertisement/ads spec.communities[0]: \"65536:1\" is not a valid community: \
          \"65536\" is not a number from 0 to 65535 (a standard community is A:B with two 16-bit \
          numbers)"
        ]
    );
}

#[test]
fn unknown_pool_and_peer_references_are_rejected() {
    assert_eq!(
        errors(&with(&[
            POOL,
            PEER,
            &advertisement("{ipAddressPools: [prod, missing], peers: [router, nobody]}")
        ])),
        [
            "BGPAdvertisement/ads spec.ipAddressPools[1]: IPAddressPool/missing does not exist",
            "BGPAdvertisement/ads spec.peers[1]: BGPPeer/nobody does not exist",
        ]
    );
}

#[test]
fn aggregation_length_shorter_than_the_pool_prefix_is_rejected() {
    assert_eq!(
        errors(&with(&[POOL, &advertisement("{aggregationLength: 16}")])),
        [
            "BGPAdvertisement/ads spec.aggregationLength: 16 is shorter than the /24 of \
          IPAddressPool/prod (spec.addresses[0] 192.168.32.0/24), so the announced prefixes would \
          cover addresses outside the pool; use 24 or longer"
        ]
    );
}

#[test]
fn aggregation_length_is_checked_against_every_cidr_of_a_range() {
    assert_eq!(
        errors(&with(&[
            "
apiVersion: ferrolb.io/v1beta1
kind: IPAddressPool
metadata: {name: small}
spec: {addresses: [192.168.10.10-192.168.10.20]}
",
            &advertisement("{aggregationLength: 30}")
        ])),
        [
            "BGPAdvertisement/ads spec.aggregationLength: 30 is shorter than the /32 of \
          IPAddressPool/small (spec.addresses[0] 192.168.10.20/32 of range \
          192.168.10.10-192.168.10.20), so the announced prefixes would cover addresses outside \
          the pool; use 32 or longer"
        ]
    );
}

#[test]
fn aggregation_length_out_of_range_is_rejected() {
    assert_eq!(
        errors(&with(&[
            POOL,
            &advertisement("{aggregationLength: 33, aggregationLengthV6: 0}")
        ])),
        [
            "BGPAdvertisement/ads spec.aggregationLength: 33 is out of range; use 1-32",
            "BGPAdvertisement/ads spec.aggregationLengthV6: 0 is out of range; use 1-128",
        ]
    );
}

#[test]
fn aggregation_to_the_pool_prefix_is_accepted() {
    let config = config(&with(&[POOL, &advertisement("{aggregationLength: 24}")]));
    assert_eq!(config.bgp_advertisements[0].aggregation_length_v4, 24);
}

#[test]
fn service_selectors_need_host_routes() {
    assert_eq!(
        errors(&with(&[
            POOL,
            &advertisement("{aggregationLength: 24, serviceSelectors: [{matchLabels: {a: b}}]}")
        ])),
        [
            "BGPAdvertisement/ads spec.serviceSelectors: serviceSelectors need aggregationLength 32 \
          and aggregationLengthV6 128, so that each Service has its own route; this advertisement \
          uses /24 and /128"
        ]
    );
}

#[test]
fn conflicting_local_pref_on_one_prefix_is_rejected() {
    let other = "
apiVersion: ferrolb.io/v1beta1
kind: BGPAdvertisement
metadata: {name: other}
spec: {ipAddressPools: [prod], localPref: 200}
";
    assert_eq!(
        errors(&with(&[POOL, &advertisement("{localPref: 100}"), other])),
        [
            "BGPAdvertisement/other spec.localPref: 200 conflicts with localPref 100 of \
          BGPAdvertisement/ads: both announce the /32 routes of IPAddressPool/prod to the same \
          peers from the same nodes; use one localPref, or make their peers, nodeSelectors or \
          serviceSelectors disjoint"
        ]
    );
}

#[test]
fn different_local_pref_is_fine_on_different_prefixes_peers_or_services() {
    let config = config(&with(&[
        POOL,
        PEER,
        "
apiVersion: ferrolb.io/v1beta1
kind: BGPPeer
metadata: {name: router-2}
spec: {myASN: 64500, peerASN: 64501, peerAddress: 10.0.0.2}
",
        &advertisement("{localPref: 100, peers: [router]}"),
        "
apiVersion: ferrolb.io/v1beta1
kind: BGPAdvertisement
metadata: {name: aggregate}
spec: {localPref: 200, aggregationLength: 24}
---
apiVersion: ferrolb.io/v1beta1
kind: BGPAdvertisement
metadata: {name: gold-services}
spec: {localPref: 400, peers: [router-2], serviceSelectors: [{matchLabels: {tier: gold}}]}
---
apiVersion: ferrolb.io/v1beta1
kind: BGPAdvertisement
metadata: {name: bronze-services}
spec: {localPref: 500, peers: [router-2], serviceSelectors: [{matchLabels: {tier: bronze}}]}
",
    ]));
    assert_eq!(config.bgp_advertisements.len(), 4);
}

#[test]
fn local_pref_conflict_within_peers_of_both_is_rejected() {
    let gold = "
apiVersion: ferrolb.io/v1beta1
kind: BGPAdvertisement
metadata: {name: gold}
spec: {localPref: 400, serviceSelectors: [{matchLabels: {tier: gold}}]}
---
apiVersion: ferrolb.io/v1beta1
kind: BGPAdvertisement
metadata: {name: eu}
spec: {localPref: 500, serviceSelectors: [{matchLabels: {region: eu}}]}
";
    // A Service labelled tier=gold and region=eu would get both.
    assert_eq!(errors(&with(&[POOL, gold])).len(), 1);
}

#[test]
fn pool_selectors_and_empty_lists_resolve_pools() {
    let config = config(
        "
apiVersion: ferrolb.io/v1beta1
kind: IPAddressPool
metadata: {name: public, labels: {exposure: public}}
spec: {addresses: [10.0.0.0/24]}
---
apiVersion: ferrolb.io/v1beta1
kind: IPAddressPool
metadata: {name: private}
spec: {addresses: [10.0.1.0/24]}
---
apiVersion: ferrolb.io/v1beta1
kind: BGPAdvertisement
metadata: {name: by-label}
spec: {ipAddressPoolSelectors: [{matchLabels: {exposure: public}}]}
---
apiVersion: ferrolb.io/v1beta1
kind: L2Advertisement
metadata: {name: everything}
",
    );
    assert_eq!(config.bgp_advertisements[0].pools, ["public"]);
    assert_eq!(config.l2_advertisements[0].pools, ["private", "public"]);
}

// ---------------------------------------------------------------------------------------------
// L2Advertisement

#[test]
fn l2_advertisement_checks_interfaces_weights_and_pools() {
    assert_eq!(
        errors(&with(&[
            POOL,
            "
apiVersion: ferrolb.io/v1beta1
kind: L2Advertisement
metadata: {name: l2}
spec:
  ipAddressPools: [nope]
  interfaces: [eth0, eth0, 'has space']
  preferredNodeSelectors:
  - {weight: 0, preference: {matchLabels: {a: b}}}
  - {weight: 50, preference: {matchExpressions: [{key: a, operator: In}]}}
"
        ])),
        [
            "L2Advertisement/l2 spec.ipAddressPools[0]: IPAddressPool/nope does not exist",
            "L2Advertisement/l2 spec.interfaces[2]: \"has space\" is not a valid Linux interface \
             name: use 1-15 characters without '/', ':' or spaces",
            "L2Advertisement/l2 spec.interfaces[1]: \"eth0\" is listed twice (also at \
             spec.interfaces[0])",
            "L2Advertisement/l2 spec.preferredNodeSelectors[0].weight: 0 is out of range; use 1-100",
            "L2Advertisement/l2 spec.preferredNodeSelectors[1].preference.matchExpressions[0].\
             values: operator In needs at least one value",
        ]
    );
}

#[test]
fn l2_advertisement_keeps_weights_and_interfaces() {
    let config = config(&with(&[
        POOL,
        "
apiVersion: ferrolb.io/v1beta1
kind: L2Advertisement
metadata: {name: l2}
spec:
  ipAddressPools: [prod]
  interfaces: [eth0]
  preferredNodeSelectors:
  - {weight: 60, preference: {matchLabels: {zone: a}}}
",
    ]));
    let advertisement = &config.l2_advertisements[0];
    assert_eq!(advertisement.interfaces, ["eth0"]);
    assert_eq!(advertisement.preferred_nodes[0].weight, 60);
    assert!(advertisement.applies_to_pool("prod"));
}

#[test]
fn errors_are_grouped_by_kind_then_name() {
    let messages = errors(&with(&[
        &advertisement("{communities: [nope]}"),
        "
apiVersion: ferrolb.io/v1beta1
kind: IPAddressPool
metadata: {name: b}
spec: {addresses: [bad]}
---
apiVersion: ferrolb.io/v1beta1
kind: IPAddressPool
metadata: {name: a}
spec: {addresses: [bad]}
",
    ]));
    let objects: Vec<&str> = messages
        .iter()
        .map(|m| m.split(' ').next().unwrap_or_default())
        .collect();
    assert_eq!(
        objects,
        ["IPAddressPool/a", "IPAddressPool/b", "BGPAdvertisement/ads"]
    );
}
