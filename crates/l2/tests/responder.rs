//! The responder's decisions, frame by frame, and through a node: what is answered, on which
//! interface, from which address, with which flags; what is a conflict; when announcements go
//! out.

#![allow(clippy::unwrap_used, clippy::expect_used)]

mod common;

use std::collections::BTreeSet;
use std::net::{IpAddr, Ipv4Addr, Ipv6Addr};
use std::time::{Duration, SystemTime};

use ferrolb_l2::config::{InterfaceFacts, L2Config, VipGroup};
use ferrolb_l2::node::{L2Node, Output, SentKind};
use ferrolb_l2::responder::{AnnounceSchedule, ConflictEvidence, ReplyKind, respond};
use ferrolb_l2::wire::*;

const OURS: MacAddr = MacAddr([2, 0, 0, 0, 0, 0x0a]);
const CLIENT: MacAddr = MacAddr([2, 0, 0, 0, 0, 0x0c]);
const OTHER: MacAddr = MacAddr([2, 0, 0, 0, 0, 0x0b]);

fn v4(s: &str) -> Ipv4Addr {
    s.parse().unwrap()
}

fn v6(s: &str) -> Ipv6Addr {
    s.parse().unwrap()
}

fn owned() -> BTreeSet<IpAddr> {
    ["198.51.100.10", "2001:db8::10"]
        .iter()
        .map(|s| s.parse().unwrap())
        .collect()
}

fn arp(op: ArpOperation, eth_dst: MacAddr, sender: (MacAddr, &str), target_ip: &str) -> Vec<u8> {
    arp_frame(
        eth_dst,
        sender.0,
        &ArpPacket {
            operation: op,
            sender_mac: sender.0,
            sender_ip: v4(sender.1),
            target_mac: MacAddr::ZERO,
            target_ip: v4(target_ip),
        },
    )
}

fn ns(eth_dst: MacAddr, src: &str, dst: Ipv6Addr, target: &str, lla: Option<MacAddr>) -> Vec<u8> {
    ndp_frame(
        eth_dst,
        CLIENT,
        &NdpPacket {
            src: v6(src),
            dst,
            message: NdpMessage::Solicit(NeighborSolicit {
                target: v6(target),
                source_lla: lla,
            }),
        },
    )
}

fn answer(frame: &[u8]) -> ferrolb_l2::responder::Response {
    respond(&decode_frame(frame).unwrap(), OURS, &owned(), &owned())
}

fn only_na(frame: &[u8]) -> (EthernetHeader, NdpPacket, NeighborAdvert) {
    let response = answer(frame);
    assert_eq!(response.replies.len(), 1, "{response:?}");
    assert_eq!(response.replies[0].kind, ReplyKind::NeighborAdvert);
    let Ok(Frame::Ndp(eth, packet)) = decode_frame(&response.replies[0].frame) else {
        panic!()
    };
    let NdpMessage::Advert(na) = packet.message else {
        panic!()
    };
    (eth, packet, na)
}

#[test]
fn arp_request_for_an_owned_vip_gets_a_reply_from_our_mac_to_the_asker() {
    let response = answer(&arp(
        ArpOperation::Request,
        MacAddr::BROADCAST,
        (CLIENT, "198.51.100.3"),
        "198.51.100.10",
    ));
    assert_eq!(response.replies.len(), 1);
    let Ok(Frame::Arp(eth, reply)) = decode_frame(&response.replies[0].frame) else {
        panic!()
    };
    assert_eq!((eth.dst, eth.src), (CLIENT, OURS));
    assert_eq!(reply.operation, ArpOperation::Reply);
    assert_eq!(
        (reply.sender_mac, reply.sender_ip),
        (OURS, v4("198.51.100.10"))
    );
    assert_eq!(
        (reply.target_mac, reply.target_ip),
        (CLIENT, v4("198.51.100.3"))
    );
}

#[test]
fn unicast_arp_request_to_our_mac_is_answered_but_one_to_another_mac_is_not() {
    let to_us = arp(
        ArpOperation::Request,
        OURS,
        (CLIENT, "198.51.100.3"),
        "198.51.100.10",
    );
    assert_eq!(answer(&to_us).replies.len(), 1);
    let to_other = arp(
        ArpOperation::Request,
        OTHER,
        (CLIENT, "198.51.100.3"),
        "198.51.100.10",
    );
    assert!(answer(&to_other).replies.is_empty());
}

#[test]
fn arp_request_for_an_unowned_vip_is_not_answered_and_is_counted_when_known() {
    let frame = arp(
        ArpOperation::Request,
        MacAddr::BROADCAST,
        (CLIENT, "198.51.100.3"),
        "198.51.100.11",
    );
    let known: BTreeSet<IpAddr> = ["198.51.100.11".parse().unwrap()].into();
    let response = respond(&decode_frame(&frame).unwrap(), OURS, &owned(), &known);
    assert!(response.replies.is_empty());
    assert_eq!(
        response.unowned_request,
        Some("198.51.100.11".parse().unwrap())
    );
    let response = respond(
        &decode_frame(&frame).unwrap(),
        OURS,
        &owned(),
        &BTreeSet::new(),
    );
    assert_eq!(response.unowned_request, None);
}

#[test]
fn arp_probe_from_0_0_0_0_is_answered_to_defend_the_vip() {
    let response = answer(&arp(
        ArpOperation::Request,
        MacAddr::BROADCAST,
        (CLIENT, "0.0.0.0"),
        "198.51.100.10",
    ));
    assert_eq!(response.replies.len(), 1);
    assert!(response.conflicts.is_empty());
}

#[test]
fn another_macs_reply_or_gratuitous_arp_for_an_owned_vip_is_a_conflict() {
    let reply = arp(
        ArpOperation::Reply,
        CLIENT,
        (OTHER, "198.51.100.10"),
        "198.51.100.3",
    );
    let garp = arp(
        ArpOperation::Request,
        MacAddr::BROADCAST,
        (OTHER, "198.51.100.10"),
        "198.51.100.10",
    );
    let asking = arp(
        ArpOperation::Request,
        MacAddr::BROADCAST,
        (OTHER, "198.51.100.10"),
        "198.51.100.1",
    );
    for (frame, evidence) in [
        (reply, ConflictEvidence::ArpReply),
        (garp, ConflictEvidence::GratuitousArp),
        (asking, ConflictEvidence::ArpRequestFromVip),
    ] {
        let response = answer(&frame);
        assert_eq!(response.conflicts.len(), 1);
        assert_eq!(response.conflicts[0].mac, OTHER);
        assert_eq!(response.conflicts[0].evidence, evidence);
        assert!(
            response.replies.is_empty(),
            "a gratuitous ARP is not answered"
        );
    }
    // Our own frames (seen again on a bridge) are neither answered nor conflicts.
    let ours = arp(
        ArpOperation::Request,
        MacAddr::BROADCAST,
        (OURS, "198.51.100.10"),
        "198.51.100.10",
    );
    assert_eq!(answer(&ours), Default::default());
}

#[test]
fn multicast_ns_gets_na_with_solicited_and_override_flags_sourced_from_the_vip() {
    let group = solicited_node(v6("2001:db8::10"));
    let frame = ns(
        MacAddr::ipv6_multicast(group),
        "2001:db8::3",
        group,
        "2001:db8::10",
        Some(CLIENT),
    );
    let (eth, packet, na) = only_na(&frame);
    assert_eq!((eth.dst, eth.src), (CLIENT, OURS));
    assert_eq!(packet.src, v6("2001:db8::10"));
    assert_eq!(packet.dst, v6("2001:db8::3"));
    assert!(na.solicited && na.override_flag && !na.router);
    assert_eq!(na.target, v6("2001:db8::10"));
    assert_eq!(na.target_lla, Some(OURS));
}

#[test]
fn unicast_ns_for_nud_is_answered_with_or_without_a_source_link_layer_option() {
    for lla in [Some(CLIENT), None] {
        let frame = ns(OURS, "2001:db8::3", v6("2001:db8::10"), "2001:db8::10", lla);
        let (eth, packet, na) = only_na(&frame);
        // Without the option the frame's source MAC is the way back.
        assert_eq!(eth.dst, CLIENT);
        assert_eq!(packet.dst, v6("2001:db8::3"));
        assert!(na.solicited && na.override_flag);
    }
}

#[test]
fn ns_from_a_link_local_source_is_answered_to_that_source() {
    let group = solicited_node(v6("2001:db8::10"));
    let frame = ns(
        MacAddr::ipv6_multicast(group),
        "fe80::c",
        group,
        "2001:db8::10",
        Some(CLIENT),
    );
    let (_, packet, _) = only_na(&frame);
    assert_eq!(packet.dst, v6("fe80::c"));
    assert_eq!(packet.src, v6("2001:db8::10"));
}

#[test]
fn dad_ns_is_answered_to_all_nodes_with_solicited_clear() {
    let group = solicited_node(v6("2001:db8::10"));
    let frame = ns(
        MacAddr::ipv6_multicast(group),
        "::",
        group,
        "2001:db8::10",
        None,
    );
    let (eth, packet, na) = only_na(&frame);
    assert_eq!(eth.dst, MacAddr([0x33, 0x33, 0, 0, 0, 1]));
    assert_eq!(packet.dst, v6("ff02::1"));
    assert!(!na.solicited && na.override_flag);
}

#[test]
fn ns_for_an_unowned_target_or_to_another_group_or_mac_is_not_answered() {
    let group = solicited_node(v6("2001:db8::11"));
    let unowned = ns(
        MacAddr::ipv6_multicast(group),
        "2001:db8::3",
        group,
        "2001:db8::11",
        Some(CLIENT),
    );
    assert!(answer(&unowned).replies.is_empty());
    // The right target, but sent to some other node's group and MAC.
    let wrong_group = ns(
        MacAddr::ipv6_multicast(group),
        "2001:db8::3",
        group,
        "2001:db8::10",
        Some(CLIENT),
    );
    assert!(answer(&wrong_group).replies.is_empty());
    let unicast_elsewhere = ns(
        OTHER,
        "2001:db8::3",
        v6("2001:db8::10"),
        "2001:db8::10",
        Some(CLIENT),
    );
    assert!(answer(&unicast_elsewhere).replies.is_empty());
}

#[test]
fn another_macs_na_or_ns_from_an_owned_vip_is_a_conflict() {
    let na = ndp_frame(
        MacAddr([0x33, 0x33, 0, 0, 0, 1]),
        OTHER,
        &NdpPacket {
            src: v6("2001:db8::10"),
            dst: v6("ff02::1"),
            message: NdpMessage::Advert(NeighborAdvert {
                router: false,
                solicited: false,
                override_flag: true,
                target: v6("2001:db8::10"),
                target_lla: Some(OTHER),
            }),
        },
    );
    let response = answer(&na);
    assert_eq!(response.conflicts.len(), 1);
    assert_eq!(
        response.conflicts[0].evidence,
        ConflictEvidence::NeighborAdvert
    );
    assert_eq!(response.conflicts[0].mac, OTHER);
    let group = solicited_node(v6("2001:db8::1"));
    let from_vip = ns(
        MacAddr::ipv6_multicast(group),
        "2001:db8::10",
        group,
        "2001:db8::1",
        Some(CLIENT),
    );
    let response = answer(&from_vip);
    assert_eq!(
        response.conflicts[0].evidence,
        ConflictEvidence::NeighborSolicitFromVip
    );
}

#[test]
fn announcement_burst_follows_the_schedule_then_refreshes() {
    let ms = Duration::from_millis;
    let mut schedule = AnnounceSchedule::new(
        [0, 50, 250, 1000, 2000, 4000].map(ms).to_vec(),
        Some(Duration::from_secs(30)),
    );
    let g: IpAddr = "198.51.100.10".parse().unwrap();
    schedule.start(g, ms(1000));
    let mut sent = Vec::new();
    let mut now = ms(1000);
    while now < ms(1000 + 70_000) {
        if let Some(at) = schedule.next_deadline().filter(|at| *at <= now + ms(1)) {
            now = at;
            for due in schedule.due(now) {
                sent.push((now - ms(1000), due.first));
            }
        } else {
            now += ms(1);
        }
    }
    let offsets: Vec<Duration> = sent.iter().map(|(t, _)| *t).collect();
    assert_eq!(
        offsets,
        [0, 50, 250, 1000, 2000, 4000, 34_000, 64_000]
            .map(ms)
            .to_vec()
    );
    assert!(sent[0].1 && sent[1..].iter().all(|(_, first)| !first));
    schedule.stop(g);
    assert_eq!(schedule.next_deadline(), None);
}

fn node_with(
    interfaces: Vec<(&str, MacAddr, bool)>,
    groups: Vec<VipGroup>,
) -> (L2Node, Vec<Output>) {
    let mut config = L2Config::new("solo", "t", b"0123456789abcdef".to_vec());
    config.incarnation = 1;
    let mut node = L2Node::new(config, Duration::ZERO, SystemTime::UNIX_EPOCH).unwrap();
    let facts = interfaces
        .into_iter()
        .enumerate()
        .map(|(i, (name, mac, up))| InterfaceFacts {
            name: name.into(),
            ifindex: i as u32 + 2,
            mac,
            carrier_up: up,
            subnets: vec![
                "198.51.100.0/24".parse().unwrap(),
                "2001:db8::/64".parse().unwrap(),
            ],
        })
        .collect();
    let mut out = node.set_interfaces(Duration::ZERO, facts).unwrap();
    out.extend(node.set_eligible(Duration::ZERO, groups).unwrap());
    out.extend(node.tick(Duration::from_secs(1)));
    (node, out)
}

#[test]
fn a_node_answers_only_on_the_vips_interface() {
    let group = VipGroup::new(["198.51.100.10".parse().unwrap()], "eth0").unwrap();
    let (mut node, _) = node_with(
        vec![("eth0", OURS, true), ("eth1", OTHER, true)],
        vec![group],
    );
    let request = arp(
        ArpOperation::Request,
        MacAddr::BROADCAST,
        (CLIENT, "198.51.100.3"),
        "198.51.100.10",
    );
    let replies = |out: Vec<Output>| {
        out.into_iter()
            .filter(|o| {
                matches!(
                    o,
                    Output::Send {
                        kind: SentKind::Reply,
                        ..
                    }
                )
            })
            .count()
    };
    assert_eq!(
        replies(node.receive(Duration::from_secs(2), "eth0", &request)),
        1
    );
    assert_eq!(
        replies(node.receive(Duration::from_secs(2), "eth1", &request)),
        0
    );
    assert_eq!(
        replies(node.receive(Duration::from_secs(2), "eth9", &request)),
        0
    );
    let status = node.status(Duration::from_secs(2));
    assert_eq!(
        status.requests_answered[&"198.51.100.10".parse::<IpAddr>().unwrap()],
        1
    );
    assert_eq!(status.counters.arp_replies_sent, 1);
}

#[test]
fn taking_a_dual_stack_group_announces_both_families_at_once() {
    let group = VipGroup::new(
        [
            "198.51.100.10".parse().unwrap(),
            "2001:db8::10".parse().unwrap(),
        ],
        "eth0",
    )
    .unwrap();
    let (_, out) = node_with(vec![("eth0", OURS, true)], vec![group.clone()]);
    assert!(out.contains(&Output::Owned(group)));
    let announcements: Vec<(Vec<u8>, bool)> = out
        .into_iter()
        .filter_map(|o| match o {
            Output::Send {
                frame,
                kind: SentKind::Announce { first, .. },
                ..
            } => Some((frame, first)),
            _ => None,
        })
        .collect();
    // Gratuitous ARP request + reply, and one unsolicited NA; only the very first is "first".
    assert_eq!(announcements.len(), 3);
    assert_eq!(announcements.iter().filter(|(_, f)| *f).count(), 1);
    let kinds: Vec<&str> = announcements
        .iter()
        .map(|(f, _)| match decode_frame(f).unwrap() {
            Frame::Arp(_, a) if a.operation == ArpOperation::Request => "garp-request",
            Frame::Arp(..) => "garp-reply",
            Frame::Ndp(_, n) => match n.message {
                NdpMessage::Advert(na) if !na.solicited && na.override_flag => "unsolicited-na",
                _ => "other",
            },
            Frame::Heartbeat(..) => "heartbeat",
        })
        .collect();
    assert_eq!(kinds, ["garp-request", "garp-reply", "unsolicited-na"]);
}

#[test]
fn a_group_on_an_interface_without_carrier_is_not_taken() {
    let group = VipGroup::new(["198.51.100.10".parse().unwrap()], "eth0").unwrap();
    let (node, out) = node_with(vec![("eth0", OURS, false)], vec![group.clone()]);
    assert!(!out.contains(&Output::Owned(group.clone())));
    let status = node.status(Duration::from_secs(1));
    assert_eq!(
        status.groups[&group.key].not_owner["solo"],
        ferrolb_l2::NotOwnerReason::NotEligible(ferrolb_l2::Ineligible::CarrierDown {
            interface: "eth0".into()
        })
    );
}

#[test]
fn invalid_groups_are_refused_and_change_nothing() {
    use ferrolb_l2::GroupError;
    let group = VipGroup::new(["198.51.100.10".parse().unwrap()], "eth0").unwrap();
    let (mut node, _) = node_with(vec![("eth0", OURS, true)], vec![group.clone()]);
    let mut bad_key = group.clone();
    bad_key.key = "198.51.100.99".parse().unwrap();
    let shared = VipGroup::new(
        [
            "198.51.100.9".parse().unwrap(),
            "198.51.100.10".parse().unwrap(),
        ],
        "eth0",
    )
    .unwrap();
    let multicast = VipGroup::new(["224.0.0.5".parse().unwrap()], "eth0").unwrap();
    let now = Duration::from_secs(2);
    assert!(matches!(
        node.set_eligible(now, vec![bad_key]),
        Err(GroupError::KeyNotLowest { .. })
    ));
    assert!(matches!(
        node.set_eligible(now, vec![group.clone(), shared]),
        Err(GroupError::SharedAddress { .. })
    ));
    assert!(matches!(
        node.set_eligible(now, vec![multicast]),
        Err(GroupError::NotUnicast { .. })
    ));
    assert!(node.status(now).groups[&group.key].owned_here);
}
