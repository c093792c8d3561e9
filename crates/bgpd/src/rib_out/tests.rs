//! Tests of the Adj-RIB-Out: desired routes in, the UPDATEs that carry the difference out.

use super::*;
use crate::wire::{MAX_EXTENDED_MESSAGE_LEN, MAX_MESSAGE_LEN, Message};

fn params() -> SessionParams {
    SessionParams {
        local_as: 4_200_000_000,
        ibgp: false,
        codec: CodecContext {
            four_octet_as: true,
            max_message_len: MAX_MESSAGE_LEN,
            ..CodecContext::default()
        },
        families: vec![Family::IPV4_UNICAST, Family::IPV6_UNICAST],
        next_hop_v4: Some(Ipv4Addr::new(192, 0, 2, 11)),
        next_hop_v6: Some(("2001:db8:0:1::11".parse().unwrap(), None)),
    }
}

fn net(s: &str) -> IpNet {
    s.parse().unwrap()
}

fn attrs(community: u16) -> RouteAttributes {
    RouteAttributes::new(Some(200), None, [Community::new(64512, community)], [])
}

fn drain(rib: &mut AdjRibOut, params: &SessionParams) -> Vec<Update> {
    let mut out = Vec::new();
    while let Some(u) = rib.next_update(params) {
        let bytes = Message::Update(u.clone())
            .encode(&params.codec)
            .expect("encodes");
        assert!(
            bytes.len() <= params.codec.max_message_len,
            "{} bytes",
            bytes.len()
        );
        out.push(u);
        assert!(out.len() < 100_000, "runaway packer");
    }
    out
}

fn announced(u: &Update) -> Vec<IpNet> {
    let mut v: Vec<IpNet> = u.nlri.iter().map(|p| IpNet::V4(*p)).collect();
    for a in &u.attributes {
        if let PathAttribute::MpReach(r) = a {
            v.extend(r.nlri.iter().copied());
        }
    }
    v
}

fn withdrawn(u: &Update) -> Vec<IpNet> {
    let mut v: Vec<IpNet> = u.withdrawn.iter().map(|p| IpNet::V4(*p)).collect();
    for a in &u.attributes {
        if let PathAttribute::MpUnreach(r) = a {
            v.extend(r.withdrawn.iter().copied());
        }
    }
    v
}

fn v4_hosts(n: u32) -> Vec<(IpNet, RouteAttributes)> {
    let base = u32::from(Ipv4Addr::new(198, 18, 0, 0));
    (0..n)
        .map(|i| {
            (
                IpNet::V4(Ipv4Net::new(Ipv4Addr::from(base + i), 32).unwrap()),
                attrs(1),
            )
        })
        .collect()
}

#[test]
fn nothing_is_sent_before_the_session_is_up() {
    let mut rib = AdjRibOut::new();
    rib.set_desired(v4_hosts(3));
    assert!(!rib.has_pending());
    assert_eq!(rib.next_update(&params()), None);
}

#[test]
fn session_up_sends_everything_then_end_of_rib_per_family() {
    let mut rib = AdjRibOut::new();
    rib.set_desired([
        (net("203.0.113.10/32"), attrs(1)),
        (net("2001:db8:ff::10/128"), attrs(1)),
    ]);
    rib.session_up(&[Family::IPV4_UNICAST, Family::IPV6_UNICAST]);
    let updates = drain(&mut rib, &params());
    assert_eq!(updates.len(), 4);
    assert_eq!(announced(&updates[0]), vec![net("203.0.113.10/32")]);
    assert_eq!(announced(&updates[1]), vec![net("2001:db8:ff::10/128")]);
    assert_eq!(updates[2].end_of_rib_family(), Some(Family::IPV4_UNICAST));
    assert_eq!(updates[3].end_of_rib_family(), Some(Family::IPV6_UNICAST));
    assert!(rib.initial_sync_done());
    assert_eq!(rib.advertised_count(Family::IPV4_UNICAST), 1);
    assert_eq!(rib.advertised_count(Family::IPV6_UNICAST), 1);
}

#[test]
fn ebgp_announcement_carries_origin_as_sequence_next_hop_and_communities_but_no_local_pref() {
    let mut rib = AdjRibOut::new();
    let a = RouteAttributes::new(
        Some(300),
        None,
        [Community::new(64512, 7)],
        [LargeCommunity {
            global_admin: 4_200_000_000,
            local_data1: 1,
            local_data2: 2,
        }],
    );
    rib.set_desired([(net("203.0.113.10/32"), a)]);
    rib.session_up(&[Family::IPV4_UNICAST]);
    let u = rib.next_update(&params()).expect("an update");
    assert_eq!(
        u.attributes,
        vec![
            PathAttribute::Origin(Origin::Igp),
            PathAttribute::AsPath(AsPath {
                segments: vec![AsSegment::Sequence(vec![4_200_000_000])]
            }),
            PathAttribute::NextHop(Ipv4Addr::new(192, 0, 2, 11)),
            PathAttribute::Communities(vec![Community::new(64512, 7)]),
            PathAttribute::LargeCommunities(vec![LargeCommunity {
                global_admin: 4_200_000_000,
                local_data1: 1,
                local_data2: 2
            }]),
        ]
    );
}

#[test]
fn ibgp_announcement_has_empty_as_path_and_local_pref() {
    let mut rib = AdjRibOut::new();
    rib.set_desired([(net("203.0.113.10/32"), attrs(1))]);
    rib.session_up(&[Family::IPV4_UNICAST]);
    let p = SessionParams {
        ibgp: true,
        ..params()
    };
    let u = rib.next_update(&p).expect("an update");
    assert!(
        u.attributes
            .contains(&PathAttribute::AsPath(AsPath::default()))
    );
    assert!(u.attributes.contains(&PathAttribute::LocalPref(200)));
}

#[test]
fn two_octet_peer_gets_as4_path_for_a_four_octet_asn() {
    let mut rib = AdjRibOut::new();
    rib.set_desired([(net("203.0.113.10/32"), attrs(1))]);
    rib.session_up(&[Family::IPV4_UNICAST]);
    let mut p = params();
    p.codec.four_octet_as = false;
    let u = rib.next_update(&p).expect("an update");
    assert!(u.attributes.contains(&PathAttribute::As4Path(AsPath {
        segments: vec![AsSegment::Sequence(vec![4_200_000_000])]
    })));
}

#[test]
fn ipv6_routes_travel_in_mp_reach_with_the_ipv6_next_hop() {
    let mut rib = AdjRibOut::new();
    rib.set_desired([(net("2001:db8:ff::10/128"), attrs(1))]);
    rib.session_up(&[Family::IPV6_UNICAST]);
    let u = rib.next_update(&params()).expect("an update");
    assert!(u.nlri.is_empty());
    assert!(
        !u.attributes
            .iter()
            .any(|a| matches!(a, PathAttribute::NextHop(_)))
    );
    assert!(u.attributes.contains(&PathAttribute::MpReach(MpReach {
        family: Family::IPV6_UNICAST,
        next_hop: NextHop::V6 {
            global: "2001:db8:0:1::11".parse().unwrap(),
            link_local: None
        },
        nlri: vec![net("2001:db8:ff::10/128")],
    })));
}

#[test]
fn a_family_the_peer_did_not_negotiate_is_held_back_with_a_reason() {
    let mut rib = AdjRibOut::new();
    rib.set_desired([
        (net("203.0.113.10/32"), attrs(1)),
        (net("2001:db8:ff::10/128"), attrs(1)),
    ]);
    rib.session_up(&[Family::IPV4_UNICAST]);
    let p = SessionParams {
        families: vec![Family::IPV4_UNICAST],
        ..params()
    };
    let updates = drain(&mut rib, &p);
    assert_eq!(
        updates.len(),
        2,
        "one announcement and the IPv4 End-of-RIB: {updates:?}"
    );
    assert_eq!(
        p.can_send(Family::IPV6_UNICAST),
        Err("address family not negotiated with the peer")
    );
    assert_eq!(rib.advertised_count(Family::IPV6_UNICAST), 0);
}

#[test]
fn only_the_changed_prefixes_are_sent_after_the_initial_sync() {
    let mut rib = AdjRibOut::new();
    rib.set_desired(v4_hosts(100));
    rib.session_up(&[Family::IPV4_UNICAST]);
    drain(&mut rib, &params());
    let mut routes = v4_hosts(100);
    routes.remove(0); // withdraw 198.18.0.0
    routes[0].1 = attrs(2); // re-announce 198.18.0.1 with a new community
    routes.push((net("203.0.113.10/32"), attrs(1))); // announce a new one
    rib.set_desired(routes);
    let updates = drain(&mut rib, &params());
    assert_eq!(updates.len(), 3, "{updates:?}");
    assert_eq!(withdrawn(&updates[0]), vec![net("198.18.0.0/32")]);
    let mut sent: Vec<Vec<IpNet>> = updates[1..].iter().map(announced).collect();
    sent.sort();
    assert_eq!(
        sent,
        vec![vec![net("198.18.0.1/32")], vec![net("203.0.113.10/32")]]
    );
    assert_eq!(rib.advertised_count(Family::IPV4_UNICAST), 100);
}

#[test]
fn setting_the_same_routes_again_sends_nothing() {
    let mut rib = AdjRibOut::new();
    rib.set_desired(v4_hosts(10));
    rib.session_up(&[Family::IPV4_UNICAST]);
    drain(&mut rib, &params());
    rib.set_desired(v4_hosts(10));
    assert_eq!(drain(&mut rib, &params()), vec![]);
}

#[test]
fn withdrawing_a_route_never_sent_sends_nothing() {
    let mut rib = AdjRibOut::new();
    rib.session_up(&[Family::IPV4_UNICAST]);
    drain(&mut rib, &params());
    rib.set_route(net("203.0.113.10/32"), Some(attrs(1)));
    rib.set_route(net("203.0.113.10/32"), None);
    assert_eq!(drain(&mut rib, &params()), vec![]);
}

#[test]
fn packer_fills_4096_byte_updates_with_about_800_host_routes() {
    let mut rib = AdjRibOut::new();
    rib.set_desired(v4_hosts(10_000));
    rib.session_up(&[Family::IPV4_UNICAST]);
    let updates = drain(&mut rib, &params());
    let sizes: Vec<usize> = updates.iter().map(|u| u.nlri.len()).collect();
    assert!(sizes[0] >= 800, "first UPDATE holds {} prefixes", sizes[0]);
    assert_eq!(sizes.iter().sum::<usize>(), 10_000);
    assert_eq!(
        updates.len(),
        10_000usize.div_ceil(sizes[0]) + 1,
        "packed tight, plus End-of-RIB"
    );
    for u in &updates[..updates.len() - 1] {
        let len = Message::Update(u.clone())
            .encode(&params().codec)
            .unwrap()
            .len();
        assert!(
            len > MAX_MESSAGE_LEN - 5 || u.nlri.len() < sizes[0],
            "underfilled: {len}"
        );
    }
}

#[test]
fn extended_messages_carry_sixteen_times_more_prefixes() {
    let mut rib = AdjRibOut::new();
    rib.set_desired(v4_hosts(20_000));
    rib.session_up(&[Family::IPV4_UNICAST]);
    let mut p = params();
    p.codec.max_message_len = MAX_EXTENDED_MESSAGE_LEN;
    let updates = drain(&mut rib, &p);
    assert!(updates[0].nlri.len() > 13_000, "{}", updates[0].nlri.len());
}

#[test]
fn ipv6_withdrawals_are_packed_into_mp_unreach() {
    let mut rib = AdjRibOut::new();
    let v6: Vec<_> = (0..1000u32)
        .map(|i| {
            (
                IpNet::V6(format!("2001:db8:ff::{i:x}/128").parse().unwrap()),
                attrs(1),
            )
        })
        .collect();
    rib.set_desired(v6);
    rib.session_up(&[Family::IPV6_UNICAST]);
    let ann = drain(&mut rib, &params());
    assert!(
        ann.len() >= 5,
        "1000 /128s need several 4096-byte UPDATEs, got {}",
        ann.len()
    );
    rib.set_desired(Vec::new());
    let wd = drain(&mut rib, &params());
    assert_eq!(wd.iter().map(|u| withdrawn(u).len()).sum::<usize>(), 1000);
    assert!(wd.len() <= 5);
    assert_eq!(rib.advertised_count(Family::IPV6_UNICAST), 0);
    assert_eq!(rib.desired_count(), 0);
}

#[test]
fn interleaved_attribute_sets_are_grouped_into_separate_updates() {
    let mut rib = AdjRibOut::new();
    let routes: Vec<_> = v4_hosts(1000)
        .into_iter()
        .enumerate()
        .map(|(i, (p, _))| (p, attrs((i % 2) as u16)))
        .collect();
    rib.set_desired(routes);
    rib.session_up(&[Family::IPV4_UNICAST]);
    let updates = drain(&mut rib, &params());
    assert_eq!(
        updates.len(),
        3,
        "two attribute groups of 500 and End-of-RIB"
    );
    assert_eq!(updates.iter().map(|u| u.nlri.len()).sum::<usize>(), 1000);
}

#[test]
fn every_prefix_with_unique_attributes_still_gets_sent_exactly_once() {
    let mut rib = AdjRibOut::new();
    let routes: Vec<_> = v4_hosts(3000)
        .into_iter()
        .enumerate()
        .map(|(i, (p, _))| (p, RouteAttributes::new(None, Some(i as u32), [], [])))
        .collect();
    rib.set_desired(routes);
    rib.session_up(&[Family::IPV4_UNICAST]);
    let updates = drain(&mut rib, &params());
    let mut all: Vec<IpNet> = updates.iter().flat_map(announced).collect();
    all.sort();
    all.dedup();
    assert_eq!(all.len(), 3000);
    assert_eq!(updates.len(), 3001);
}

#[test]
fn route_refresh_resends_the_whole_family_but_keeps_pending_withdrawals() {
    let mut rib = AdjRibOut::new();
    rib.set_desired(v4_hosts(10));
    rib.session_up(&[Family::IPV4_UNICAST]);
    drain(&mut rib, &params());
    rib.set_route(net("198.18.0.0/32"), None);
    rib.route_refresh(Family::IPV4_UNICAST);
    let updates = drain(&mut rib, &params());
    assert_eq!(withdrawn(&updates[0]), vec![net("198.18.0.0/32")]);
    assert_eq!(
        updates[1..]
            .iter()
            .map(|u| announced(u).len())
            .sum::<usize>(),
        9
    );
    assert!(
        updates.iter().all(|u| u.end_of_rib_family().is_none()),
        "no End-of-RIB on refresh"
    );
}

#[test]
fn session_down_forgets_what_was_advertised_and_the_next_session_resends() {
    let mut rib = AdjRibOut::new();
    rib.set_desired(v4_hosts(10));
    rib.session_up(&[Family::IPV4_UNICAST]);
    drain(&mut rib, &params());
    rib.session_down();
    assert_eq!(rib.advertised_count(Family::IPV4_UNICAST), 0);
    rib.set_route(net("198.18.0.9/32"), None);
    rib.session_up(&[Family::IPV4_UNICAST]);
    let updates = drain(&mut rib, &params());
    assert_eq!(announced(&updates[0]).len(), 9);
    assert_eq!(updates.len(), 2);
}

#[test]
fn changes_during_the_initial_walk_are_not_lost() {
    let mut rib = AdjRibOut::new();
    rib.set_desired(v4_hosts(5000));
    rib.session_up(&[Family::IPV4_UNICAST]);
    let first = rib.next_update(&params()).expect("first");
    let sent_first = announced(&first);
    // Withdraw one already sent and one not yet sent; add one at the very start.
    rib.set_route(sent_first[0], None);
    rib.set_route(net("198.18.19.0/32"), None);
    rib.set_route(net("10.0.0.0/32"), Some(attrs(1)));
    let rest = drain(&mut rib, &params());
    let mut sent: BTreeSet<IpNet> = sent_first.into_iter().collect();
    for u in &rest {
        for p in withdrawn(u) {
            assert!(sent.remove(&p), "withdrew {p} that was never sent");
        }
        sent.extend(announced(u));
    }
    let desired: BTreeSet<IpNet> = rib.desired().map(|(p, _)| *p).collect();
    assert_eq!(sent, desired);
    assert_eq!(rib.advertised_count(Family::IPV4_UNICAST), 4999);
}

#[test]
fn graceful_shutdown_adds_the_community_and_zeroes_local_pref_for_ibgp_only() {
    let a = RouteAttributes::new(Some(200), None, [Community::new(64512, 1)], []);
    let e = a.graceful_shutdown(false);
    assert_eq!(
        e.communities,
        vec![Community::new(64512, 1), Community::GRACEFUL_SHUTDOWN]
    );
    assert_eq!(e.local_pref, Some(200));
    assert_eq!(a.graceful_shutdown(true).local_pref, Some(0));
    assert_eq!(
        e.graceful_shutdown(false),
        e,
        "draining twice changes nothing"
    );
}

#[test]
fn equal_community_sets_in_any_order_are_the_same_attributes() {
    let a = RouteAttributes::new(None, None, [Community(2), Community(1), Community(2)], []);
    let b = RouteAttributes::new(None, None, [Community(1), Community(2)], []);
    assert_eq!(a, b);
}
