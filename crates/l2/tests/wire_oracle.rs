//! Differential and property tests of the codec: whatever we encode, two independent parsers
//! (etherparse and smoltcp) read the same fields and accept the checksum; whatever they accept
//! from random field values, we decode the same; and encode/decode round-trips.

#![allow(clippy::unwrap_used, clippy::expect_used)]

use std::net::{IpAddr, Ipv4Addr, Ipv6Addr};

use etherparse::{NetSlice, SlicedPacket, TransportSlice};
use ferrolb_l2::wire::*;
use proptest::prelude::*;
use smoltcp::phy::ChecksumCapabilities;
use smoltcp::wire::{
    ArpOperation as SmolArpOp, ArpPacket as SmolArpPacket, ArpRepr, Icmpv6Packet, Icmpv6Repr,
    NdiscNeighborFlags, NdiscRepr,
};

fn mac() -> impl Strategy<Value = MacAddr> {
    any::<[u8; 6]>().prop_map(MacAddr)
}

fn unicast_v6() -> impl Strategy<Value = Ipv6Addr> {
    any::<u128>()
        .prop_map(Ipv6Addr::from)
        .prop_filter("not multicast", |a| !a.is_multicast())
}

fn arp() -> impl Strategy<Value = ArpPacket> {
    (any::<bool>(), mac(), any::<u32>(), mac(), any::<u32>()).prop_map(|(req, sm, si, tm, ti)| {
        ArpPacket {
            operation: if req {
                ArpOperation::Request
            } else {
                ArpOperation::Reply
            },
            sender_mac: sm,
            sender_ip: Ipv4Addr::from(si),
            target_mac: tm,
            target_ip: Ipv4Addr::from(ti),
        }
    })
}

/// NS/NA that satisfy RFC 4861 §7.1 (what our decoder accepts).
fn ndp() -> impl Strategy<Value = NdpPacket> {
    let ns = (
        unicast_v6(),
        unicast_v6(),
        proptest::option::of(mac()),
        any::<bool>(),
        any::<bool>(),
    )
        .prop_map(|(src, target, lla, dad, to_group)| {
            let (src, lla) = if dad {
                (Ipv6Addr::UNSPECIFIED, None)
            } else {
                (src, lla)
            };
            let dst = if dad || to_group {
                solicited_node(target)
            } else {
                target
            };
            NdpPacket {
                src,
                dst,
                message: NdpMessage::Solicit(NeighborSolicit {
                    target,
                    source_lla: lla,
                }),
            }
        });
    let na = (
        unicast_v6(),
        unicast_v6(),
        unicast_v6(),
        proptest::option::of(mac()),
        any::<[bool; 4]>(),
    )
        .prop_map(|(src, dst, target, lla, [r, s, o, multicast])| {
            let dst = if multicast && !s {
                "ff02::1".parse().unwrap()
            } else {
                dst
            };
            NdpPacket {
                src,
                dst,
                message: NdpMessage::Advert(NeighborAdvert {
                    router: r,
                    solicited: s,
                    override_flag: o,
                    target,
                    target_lla: lla,
                }),
            }
        });
    prop_oneof![ns, na]
}

fn etherparse_arp(frame: &[u8]) -> etherparse::ArpEthIpv4Packet {
    let sliced = SlicedPacket::from_ethernet(frame).expect("etherparse slices it");
    let Some(NetSlice::Arp(arp)) = sliced.net else {
        panic!("etherparse: not ARP")
    };
    arp.to_packet().try_eth_ipv4().expect("Ethernet/IPv4 ARP")
}

proptest! {
    #[test]
    fn arp_round_trips_and_etherparse_and_smoltcp_agree(p in arp(), dst in mac(), src in mac()) {
        let frame = arp_frame(dst, src, &p);
        let Ok(Frame::Arp(eth, back)) = decode_frame(&frame) else { panic!("ours") };
        prop_assert_eq!(back, p);
        prop_assert_eq!((eth.dst, eth.src), (dst, src));

        let theirs = etherparse_arp(&frame);
        prop_assert_eq!(theirs.sender_mac, p.sender_mac.0);
        prop_assert_eq!(theirs.sender_ipv4, p.sender_ip.octets());
        prop_assert_eq!(theirs.target_mac, p.target_mac.0);
        prop_assert_eq!(theirs.target_ipv4, p.target_ip.octets());
        prop_assert_eq!(theirs.operation.0, p.operation.code());

        let smol = ArpRepr::parse(&SmolArpPacket::new_checked(&frame[14..]).unwrap()).unwrap();
        let ArpRepr::EthernetIpv4 { operation, source_hardware_addr, source_protocol_addr, target_hardware_addr, target_protocol_addr } = smol else { panic!() };
        prop_assert_eq!(operation == SmolArpOp::Request, p.operation == ArpOperation::Request);
        prop_assert_eq!(source_hardware_addr.0, p.sender_mac.0);
        prop_assert_eq!(source_protocol_addr, p.sender_ip);
        prop_assert_eq!(target_hardware_addr.0, p.target_mac.0);
        prop_assert_eq!(target_protocol_addr, p.target_ip);
    }

    #[test]
    fn ndp_round_trips_and_etherparse_and_smoltcp_agree(p in ndp(), src in mac()) {
        let dst_mac = if p.dst.is_multicast() { MacAddr::ipv6_multicast(p.dst) } else { MacAddr([2, 0, 0, 0, 0, 9]) };
        let frame = ndp_frame(dst_mac, src, &p);
        let Ok(Frame::Ndp(_, back)) = decode_frame(&frame) else { panic!("ours: {:?}", decode_frame(&frame)) };
        prop_assert_eq!(back, p);

        // etherparse: IPv6 fields, ICMPv6 type and flags, checksum.
        let sliced = SlicedPacket::from_ethernet(&frame).expect("etherparse");
        let Some(NetSlice::Ipv6(ip)) = &sliced.net else { panic!("not IPv6") };
        prop_assert_eq!(ip.header().hop_limit(), 255);
        prop_assert_eq!(ip.header().source_addr(), p.src);
        prop_assert_eq!(ip.header().destination_addr(), p.dst);
        let Some(TransportSlice::Icmpv6(icmp)) = &sliced.transport else { panic!("not ICMPv6") };
        prop_assert!(icmp.is_checksum_valid(p.src.octets(), p.dst.octets()));
        match (icmp.icmp_type(), p.message) {
            (etherparse::Icmpv6Type::NeighborSolicitation, NdpMessage::Solicit(_)) => {}
            (etherparse::Icmpv6Type::NeighborAdvertisement(h), NdpMessage::Advert(na)) => {
                prop_assert_eq!((h.router, h.solicited, h.r#override), (na.router, na.solicited, na.override_flag));
            }
            (other, ours) => prop_assert!(false, "etherparse {:?} vs {:?}", other, ours),
        }

        // smoltcp: target and link-layer option, checksum verified.
        let icmp_bytes = &frame[54..];
        let packet = Icmpv6Packet::new_checked(icmp_bytes).unwrap();
        let repr = Icmpv6Repr::parse(&p.src, &p.dst, &packet, &ChecksumCapabilities::default()).unwrap();
        match (repr, p.message) {
            (Icmpv6Repr::Ndisc(NdiscRepr::NeighborSolicit { target_addr, lladdr }), NdpMessage::Solicit(ns)) => {
                prop_assert_eq!(target_addr, ns.target);
                prop_assert_eq!(lladdr.map(|l| l.as_bytes().to_vec()), ns.source_lla.map(|m| m.0.to_vec()));
            }
            (Icmpv6Repr::Ndisc(NdiscRepr::NeighborAdvert { flags, target_addr, lladdr }), NdpMessage::Advert(na)) => {
                prop_assert_eq!(target_addr, na.target);
                prop_assert_eq!(flags.contains(NdiscNeighborFlags::ROUTER), na.router);
                prop_assert_eq!(flags.contains(NdiscNeighborFlags::SOLICITED), na.solicited);
                prop_assert_eq!(flags.contains(NdiscNeighborFlags::OVERRIDE), na.override_flag);
                prop_assert_eq!(lladdr.map(|l| l.as_bytes().to_vec()), na.target_lla.map(|m| m.0.to_vec()));
            }
            (other, ours) => prop_assert!(false, "smoltcp {:?} vs {:?}", other, ours),
        }
    }

    /// Random bytes after a valid Ethernet header: our decoder never panics, and whenever it
    /// accepts an ARP packet etherparse reads the same fields.
    #[test]
    fn arbitrary_arp_bytes_decode_like_etherparse(body in proptest::collection::vec(any::<u8>(), 0..64), fixed in any::<bool>()) {
        let mut frame = vec![0xff; 12];
        frame.extend_from_slice(&ETHERTYPE_ARP.to_be_bytes());
        let mut body = body;
        if fixed && body.len() >= 8 {
            body[..6].copy_from_slice(&[0, 1, 8, 0, 6, 4]);
            body[6] = 0;
            body[7] = 1 + (body[7] & 1);
        }
        frame.extend_from_slice(&body);
        if let Ok(Frame::Arp(_, ours)) = decode_frame(&frame) {
            let theirs = etherparse_arp(&frame);
            prop_assert_eq!(theirs.sender_mac, ours.sender_mac.0);
            prop_assert_eq!(theirs.target_ipv4, ours.target_ip.octets());
        }
    }

    /// Random ICMPv6 bodies under a valid IPv6 header: never a panic; whatever we accept,
    /// smoltcp accepts with the same target.
    #[test]
    fn arbitrary_icmpv6_bodies_never_panic_and_agree_with_smoltcp(
        src in unicast_v6(), target in unicast_v6(), kind in prop_oneof![Just(135u8), Just(136u8)],
        options in proptest::collection::vec(any::<u8>(), 0..40),
    ) {
        let mut icmp = vec![kind, 0, 0, 0, 0, 0, 0, 0];
        icmp.extend_from_slice(&target.octets());
        icmp.extend_from_slice(&options);
        let dst = target;
        let sum = ndp::icmpv6_checksum(src, dst, &icmp, true);
        icmp[2..4].copy_from_slice(&sum.to_be_bytes());
        let mut frame = vec![2, 0, 0, 0, 0, 9, 2, 0, 0, 0, 0, 8, 0x86, 0xdd, 0x60, 0, 0, 0];
        frame.extend_from_slice(&(icmp.len() as u16).to_be_bytes());
        frame.extend_from_slice(&[58, 255]);
        frame.extend_from_slice(&src.octets());
        frame.extend_from_slice(&dst.octets());
        frame.extend_from_slice(&icmp);
        if let Ok(Frame::Ndp(_, ours)) = decode_frame(&frame) {
            let packet = Icmpv6Packet::new_checked(&icmp[..]).unwrap();
            let repr = Icmpv6Repr::parse(&src, &dst, &packet, &ChecksumCapabilities::default());
            let Ok(Icmpv6Repr::Ndisc(n)) = repr else { panic!("smoltcp rejects what we accept: {repr:?} / {ours:?}") };
            let theirs = match n {
                NdiscRepr::NeighborSolicit { target_addr, .. } | NdiscRepr::NeighborAdvert { target_addr, .. } => target_addr,
                other => panic!("{other:?}"),
            };
            prop_assert_eq!(theirs, ours.message.target());
        }
    }

    #[test]
    fn heartbeats_round_trip(
        node in "[a-z][a-z0-9-]{0,62}", seq in 1u64.., inc in any::<u64>(),
        eligible in proptest::collection::vec(any::<u32>(), 0..300),
        claims in proptest::collection::vec((any::<u128>(), any::<u64>(), any::<bool>(), proptest::option::of("[a-z]{1,63}")), 0..120),
        listening in any::<bool>(), draining in any::<bool>(),
    ) {
        let key = HeartbeatKey::new(b"0123456789abcdef").unwrap();
        let beat = Beat {
            segment: "seg".into(),
            node_id: node,
            incarnation: inc,
            seq,
            listening,
            draining,
            eligible: eligible.into_iter().map(|a| IpAddr::V4(Ipv4Addr::from(a))).collect(),
            claims: claims.into_iter().map(|(g, epoch, provisional, to)| BeatClaim {
                group: IpAddr::V6(Ipv6Addr::from(g)), epoch, handoff_to: to, provisional,
            }).collect(),
            echoes: vec![BeatEcho { node_id: "peer".into(), seq: 3, held_us: 17 }],
        };
        let parts = key.seal(&beat).unwrap();
        let mut eligible = Vec::new();
        let mut claims = Vec::new();
        for (i, p) in parts.iter().enumerate() {
            prop_assert!(p.len() <= heartbeat::MAX_PAYLOAD);
            let part = key.open(p).unwrap();
            prop_assert_eq!(usize::from(part.index), i);
            prop_assert_eq!(&part.beat.node_id, &beat.node_id);
            eligible.extend(part.beat.eligible);
            claims.extend(part.beat.claims);
        }
        prop_assert_eq!(eligible, beat.eligible);
        prop_assert_eq!(claims, beat.claims);
    }

    #[test]
    fn arbitrary_heartbeat_payloads_are_rejected_without_panicking(payload in proptest::collection::vec(any::<u8>(), 0..300)) {
        let key = HeartbeatKey::new(b"0123456789abcdef").unwrap();
        prop_assert!(key.open(&payload).is_err());
    }
}
