//! Malformed frames, each with the exact error it must produce.

#![allow(clippy::unwrap_used, clippy::expect_used)]

use std::net::Ipv6Addr;

use ferrolb_l2::wire::heartbeat::{HeartbeatError, HeartbeatKey};
use ferrolb_l2::wire::*;

const CLIENT: MacAddr = MacAddr([2, 0, 0, 0, 0, 0x0c]);

fn v6(s: &str) -> Ipv6Addr {
    s.parse().unwrap()
}

fn arp_request() -> Vec<u8> {
    arp_frame(
        MacAddr::BROADCAST,
        CLIENT,
        &ArpPacket {
            operation: ArpOperation::Request,
            sender_mac: CLIENT,
            sender_ip: "198.51.100.3".parse().unwrap(),
            target_mac: MacAddr::ZERO,
            target_ip: "198.51.100.10".parse().unwrap(),
        },
    )
}

fn ns(src: &str, dst: Ipv6Addr, lla: Option<MacAddr>) -> Vec<u8> {
    ndp_frame(
        MacAddr::ipv6_multicast(dst),
        CLIENT,
        &NdpPacket {
            src: v6(src),
            dst,
            message: NdpMessage::Solicit(NeighborSolicit {
                target: v6("2001:db8::10"),
                source_lla: lla,
            }),
        },
    )
}

fn good_ns() -> Vec<u8> {
    ns(
        "2001:db8::3",
        solicited_node(v6("2001:db8::10")),
        Some(CLIENT),
    )
}

/// Rewrites the ICMPv6 checksum after an edit, so that the edit itself is what is tested.
fn fix_checksum(frame: &mut [u8]) {
    let src = Ipv6Addr::from(<[u8; 16]>::try_from(&frame[22..38]).unwrap());
    let dst = Ipv6Addr::from(<[u8; 16]>::try_from(&frame[38..54]).unwrap());
    let len = usize::from(u16::from_be_bytes([frame[18], frame[19]]));
    let sum = ndp::icmpv6_checksum(src, dst, &frame[54..54 + len], true);
    frame[56..58].copy_from_slice(&sum.to_be_bytes());
}

fn edited(mut frame: Vec<u8>, edit: impl FnOnce(&mut Vec<u8>), checksum: bool) -> Vec<u8> {
    edit(&mut frame);
    if checksum {
        fix_checksum(&mut frame);
    }
    frame
}

#[test]
fn malformed_frames_map_to_precise_errors() {
    use NdpError as N;
    let cases: Vec<(&str, Vec<u8>, WireError)> = vec![
        ("empty", vec![], WireError::ShortEthernet { len: 0 }),
        (
            "13 octets",
            vec![0; 13],
            WireError::ShortEthernet { len: 13 },
        ),
        (
            "IPv4",
            edited(arp_request(), |f| f[12..14].copy_from_slice(&[8, 0]), false),
            WireError::UnexpectedEtherType(0x0800),
        ),
        (
            "ARP cut to 27 octets",
            arp_request()[..14 + 27].to_vec(),
            ArpError::Short { len: 27 }.into(),
        ),
        (
            "ARP over token ring",
            edited(arp_request(), |f| f[15] = 6, false),
            ArpError::HardwareType(6).into(),
        ),
        (
            "ARP for IPv6",
            edited(
                arp_request(),
                |f| f[16..18].copy_from_slice(&[0x86, 0xdd]),
                false,
            ),
            ArpError::ProtocolType(0x86dd).into(),
        ),
        (
            "ARP hardware length 8",
            edited(arp_request(), |f| f[18] = 8, false),
            ArpError::HardwareLength(8).into(),
        ),
        (
            "ARP protocol length 16",
            edited(arp_request(), |f| f[19] = 16, false),
            ArpError::ProtocolLength(16).into(),
        ),
        (
            "RARP operation",
            edited(arp_request(), |f| f[21] = 3, false),
            ArpError::Operation(3).into(),
        ),
        (
            "IPv6 header cut",
            good_ns()[..14 + 39].to_vec(),
            N::ShortIpv6 { len: 39 }.into(),
        ),
        (
            "version 4 in an IPv6 frame",
            edited(good_ns(), |f| f[14] = 0x45, false),
            N::IpVersion(4).into(),
        ),
        (
            "payload length beyond the frame",
            edited(good_ns(), |f| f[19] = 40, false),
            N::PayloadLength {
                declared: 40,
                available: 32,
            }
            .into(),
        ),
        (
            "hop-by-hop header",
            edited(good_ns(), |f| f[20] = 0, false),
            N::NextHeader(0).into(),
        ),
        (
            "multicast source",
            edited(good_ns(), |f| f[22] = 0xff, true),
            N::MulticastSource(v6("ff01:db8::3")).into(),
        ),
        (
            "echo request",
            edited(good_ns(), |f| f[54] = 128, true),
            N::NotNeighborDiscovery(128).into(),
        ),
        (
            "hop limit 254",
            edited(good_ns(), |f| f[21] = 254, false),
            N::HopLimit(254).into(),
        ),
        (
            "bad checksum",
            edited(good_ns(), |f| f[57] ^= 0xff, false),
            N::Checksum {
                found: 0x1bfe ^ 0xff,
                expected: 0x1bfe,
            }
            .into(),
        ),
        (
            "code 1",
            edited(good_ns(), |f| f[55] = 1, true),
            N::Code(1).into(),
        ),
        (
            "ICMP shorter than 24",
            edited(
                good_ns(),
                |f| {
                    f.truncate(54 + 20);
                    f[19] = 20;
                },
                true,
            ),
            N::ShortIcmp { len: 20 }.into(),
        ),
        (
            "multicast target",
            edited(good_ns(), |f| f[62] = 0xff, true),
            N::MulticastTarget(v6("ff01:db8::10")).into(),
        ),
        (
            "option length 0",
            edited(good_ns(), |f| f[79] = 0, true),
            N::ZeroOptionLength { offset: 24 }.into(),
        ),
        (
            "option longer than the packet",
            edited(good_ns(), |f| f[79] = 2, true),
            N::TruncatedOption {
                offset: 24,
                declared: 16,
                available: 8,
            }
            .into(),
        ),
        (
            "option header cut",
            edited(
                good_ns(),
                |f| {
                    f.truncate(54 + 25);
                    f[19] = 25;
                },
                true,
            ),
            N::TruncatedOption {
                offset: 24,
                declared: 2,
                available: 1,
            }
            .into(),
        ),
        (
            "link-layer option of 2 units",
            edited(
                good_ns(),
                |f| {
                    f.extend_from_slice(&[0; 8]);
                    f[19] = 40;
                    f[79] = 2;
                },
                true,
            ),
            N::LinkLayerOptionLength {
                offset: 24,
                units: 2,
            }
            .into(),
        ),
        (
            "source link-layer option twice",
            edited(
                good_ns(),
                |f| {
                    let option = f[78..86].to_vec();
                    f.extend_from_slice(&option);
                    f[19] = 40;
                },
                true,
            ),
            N::DuplicateOption { option: 1 }.into(),
        ),
        (
            "DAD with a source link-layer option",
            ns("::", solicited_node(v6("2001:db8::10")), Some(CLIENT)),
            N::DadWithSourceLla.into(),
        ),
        (
            "DAD to the target itself",
            ns("::", v6("2001:db8::10"), None),
            N::DadNotToSolicitedNode(v6("2001:db8::10")).into(),
        ),
        (
            "solicited advert to all nodes",
            ndp_frame(
                MacAddr([0x33, 0x33, 0, 0, 0, 1]),
                CLIENT,
                &NdpPacket {
                    src: v6("2001:db8::3"),
                    dst: v6("ff02::1"),
                    message: NdpMessage::Advert(NeighborAdvert {
                        router: false,
                        solicited: true,
                        override_flag: true,
                        target: v6("2001:db8::3"),
                        target_lla: Some(CLIENT),
                    }),
                },
            ),
            N::SolicitedToMulticast(v6("ff02::1")).into(),
        ),
    ];
    for (name, frame, expected) in cases {
        assert_eq!(decode_frame(&frame), Err(expected), "{name}");
    }
}

#[test]
fn the_unmodified_frames_of_the_table_decode() {
    assert!(decode_frame(&arp_request()).is_ok());
    assert!(decode_frame(&good_ns()).is_ok());
    // Unknown options are skipped (RFC 4861 §4.3).
    let with_unknown = edited(
        good_ns(),
        |f| {
            f.extend_from_slice(&[99, 1, 0, 0, 0, 0, 0, 0]);
            f[19] = 40;
        },
        true,
    );
    assert!(decode_frame(&with_unknown).is_ok());
    // Ethernet padding after the IPv6 payload is ignored.
    let mut padded = good_ns();
    padded.extend_from_slice(&[0; 4]);
    assert!(decode_frame(&padded).is_ok());
}

#[test]
fn malformed_heartbeats_map_to_precise_errors() {
    let key = HeartbeatKey::new(b"0123456789abcdef").unwrap();
    let beat = Beat {
        segment: "s".into(),
        node_id: "n".into(),
        seq: 1,
        ..Beat::default()
    };
    let good = key.seal(&beat).unwrap().remove(0);
    let mut bad_magic = good.clone();
    bad_magic[0] = b'X';
    let mut bad_version = good.clone();
    bad_version[4] = 2;
    let mut tampered = good.clone();
    tampered[20] ^= 1;
    let cases = [
        (
            "short",
            good[..10].to_vec(),
            HeartbeatError::Short { len: 10 },
        ),
        ("magic", bad_magic, HeartbeatError::Magic(*b"XLL2")),
        ("version", bad_version, HeartbeatError::Version(2)),
        ("tampered", tampered, HeartbeatError::BadMac),
    ];
    for (name, payload, expected) in cases {
        assert_eq!(key.open(&payload), Err(expected), "{name}");
    }
}
