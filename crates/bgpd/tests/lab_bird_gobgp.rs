//! Interop with BIRD 2 and GoBGP as eBGP peers in the network-namespace lab, asserted from
//! each router's own view (`birdc show route all`, `gobgp -j global rib`). Needs root.

#![allow(clippy::unwrap_used, clippy::expect_used)]

mod common;

use common::*;
use ferrolb_labtest::{Lab, LabSpec, RouterKind, bird, gobgp};
use serde_json::json;

const SPEAKER_AS: u32 = 4_200_000_000;
const ROUTER_AS: u32 = 64512;

fn routes() -> Vec<(ipnet::IpNet, ferrolb_bgpd::rib_out::RouteAttributes)> {
    let a = attrs(&["64512:100"], &[(SPEAKER_AS, 7, 8)], Some(300));
    vec![
        (net("203.0.113.10/32"), a.clone()),
        (net("2001:db8:ff::10/128"), a),
    ]
}

fn start_speaker(lab: &Lab) -> NodeSpeaker {
    let speaker = NodeSpeaker::start(lab, 1, vec!["0.0.0.0:179".parse().unwrap()]);
    speaker.set_routes("rtr", routes());
    speaker.set_peers(vec![peer("rtr", ip("192.0.2.1"), SPEAKER_AS, ROUTER_AS, 1)]);
    speaker.wait_synced("rtr");
    speaker
}

#[test]
fn bird_receives_routes_with_exact_attributes_and_sees_the_withdrawal() {
    let config = "router id 192.0.2.1;\nprotocol device {}\nprotocol direct { ipv4; ipv6; }\n\
        protocol bgp n1 {\n  local 192.0.2.1 as 64512;\n  neighbor 192.0.2.11 as 4200000000;\n  \
        hold time 9;\n  connect retry time 1;\n  ipv4 { import all; export none; };\n  \
        ipv6 { import all; export none; };\n}\n";
    let lab = Lab::up(
        LabSpec::new(RouterKind::Bird)
            .with_router_config(config)
            .with_nodes(1),
    )
    .unwrap_or_else(|e| panic!("{e}"));
    let speaker = start_speaker(&lab);

    let v4 = bird::wait_route(&lab, "203.0.113.10/32");
    for line in [
        "[AS4200000000i]",
        "BGP.origin: IGP",
        "BGP.as_path: 4200000000\n",
        "BGP.next_hop: 192.0.2.11\n",
        "BGP.community: (64512,100)\n",
        "BGP.large_community: (4200000000, 7, 8)\n",
        // BIRD's own default for eBGP routes: our LOCAL_PREF 300 must not have been sent.
        "BGP.local_pref: 100\n",
    ] {
        assert!(v4.contains(line), "missing {line:?} in:\n{v4}");
    }
    let v6 = bird::wait_route(&lab, "2001:db8:ff::10/128");
    assert!(v6.contains("BGP.next_hop: 2001:db8:0:1::11\n"), "{v6}");
    assert!(v6.contains("BGP.as_path: 4200000000\n"), "{v6}");

    speaker.set_routes("rtr", routes().into_iter().skip(1).collect());
    bird::wait_gone(&lab, "203.0.113.10/32");
    assert!(bird::route(&lab, "2001:db8:ff::10/128").is_some());
}

#[test]
fn gobgp_receives_routes_with_exact_attributes_and_sees_the_withdrawal() {
    let config = "[global.config]\n  as = 64512\n  router-id = \"192.0.2.1\"\n[[neighbors]]\n  \
        [neighbors.config]\n    neighbor-address = \"192.0.2.11\"\n    peer-as = 4200000000\n  \
        [neighbors.timers.config]\n    hold-time = 9\n    connect-retry = 1\n  \
        [[neighbors.afi-safis]]\n    [neighbors.afi-safis.config]\n      afi-safi-name = \"ipv4-unicast\"\n  \
        [[neighbors.afi-safis]]\n    [neighbors.afi-safis.config]\n      afi-safi-name = \"ipv6-unicast\"\n";
    let lab = Lab::up(
        LabSpec::new(RouterKind::Gobgp)
            .with_router_config(config)
            .with_nodes(1),
    )
    .unwrap_or_else(|e| panic!("{e}"));
    let speaker = start_speaker(&lab);

    let v4 = gobgp::wait_best_path(&lab, "ipv4", "203.0.113.10/32");
    assert_eq!(
        gobgp::attribute(&v4, 1),
        Some(json!({"type": 1, "value": 0})),
        "ORIGIN IGP"
    );
    assert_eq!(
        gobgp::attribute(&v4, 2),
        Some(
            json!({"type": 2, "as_paths": [{"segment_type": 2, "num": 1, "asns": [4200000000u64]}]})
        )
    );
    assert_eq!(
        gobgp::attribute(&v4, 3),
        Some(json!({"type": 3, "nexthop": "192.0.2.11"}))
    );
    assert_eq!(gobgp::attribute(&v4, 5), None, "no LOCAL_PREF towards eBGP");
    assert_eq!(
        gobgp::attribute(&v4, 8),
        Some(json!({"type": 8, "communities": [(64512u64 << 16) | 100]}))
    );
    assert_eq!(
        gobgp::attribute(&v4, 32),
        Some(
            json!({"type": 32, "value": [{"ASN": 4200000000u64, "LocalData1": 7, "LocalData2": 8}]})
        )
    );

    let v6 = gobgp::wait_best_path(&lab, "ipv6", "2001:db8:ff::10/128");
    let reach = gobgp::attribute(&v6, 14).expect("MP_REACH");
    assert_eq!(reach["nexthop"], "2001:db8:0:1::11");
    assert_eq!(reach["value"], json!([{"prefix": "2001:db8:ff::10/128"}]));

    speaker.set_routes("rtr", routes().into_iter().skip(1).collect());
    gobgp::wait_gone(&lab, "ipv4", "203.0.113.10/32");
    assert!(gobgp::best_path(&lab, "ipv6", "2001:db8:ff::10/128").is_some());
}
