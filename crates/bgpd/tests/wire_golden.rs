//! Golden bytes: what ferrolb puts on the wire, octet for octet, for the messages and attributes
//! listed in `docs/bgp-wire.md` ("Byte facts") and the RFCs they come from. Each golden message
//! is also decoded back to the value it was encoded from.

// Helpers outside #[test] functions unwrap too: a failed unwrap is a failed test.
#![allow(clippy::unwrap_used, clippy::expect_used)]

use std::net::{Ipv4Addr, Ipv6Addr};

use ferrolb_bgpd::wire::{
    AS_TRANS, Afi, AsPath, AsSegment, Capability, CodecContext, Community, EncodeError, Family,
    GracefulRestart, GracefulRestartFamily, LargeCommunity, MAX_EXTENDED_MESSAGE_LEN, Message,
    MpReach, MpUnreach, NextHop, Notification, Open, Origin, PathAttribute, RouteRefresh, Safi,
    Update, cease_subcode,
};
use ipnet::{IpNet, Ipv4Net};

const MARKER: &str = "ffffffffffffffffffffffffffffffff";

/// Hex with spaces allowed, for readability.
fn hex(s: &str) -> Vec<u8> {
    let s: String = s.chars().filter(|c| !c.is_whitespace()).collect();
    hex::decode(s).expect("test hex")
}

fn ctx4() -> CodecContext {
    CodecContext {
        four_octet_as: true,
        ..CodecContext::default()
    }
}

fn ctx2() -> CodecContext {
    CodecContext::default()
}

fn encode(m: &Message, ctx: &CodecContext) -> Vec<u8> {
    m.encode(ctx).expect("encodes")
}

/// Encodes `m`, checks the bytes, and checks they decode back to `m`.
fn assert_golden(m: &Message, ctx: &CodecContext, expected_hex: &str) {
    let bytes = encode(m, ctx);
    assert_eq!(
        hex::encode(&bytes),
        hex::encode(hex(expected_hex)),
        "encoding of {m:?}"
    );
    assert_eq!(&Message::decode(&bytes, ctx).expect("decodes"), m);
}

fn attr_bytes(attr: &PathAttribute, ctx: &CodecContext) -> String {
    // An UPDATE with just this attribute: header (19) + withdrawn length (2) + attribute
    // length (2), then the attribute.
    let u = Update {
        attributes: vec![attr.clone()],
        ..Update::default()
    };
    let bytes = encode(&Message::Update(u), ctx);
    assert_eq!(
        bytes.len() - 23,
        attr.encoded_len(ctx),
        "encoded_len of {attr:?}"
    );
    hex::encode(&bytes[23..])
}

fn v4(s: &str) -> Ipv4Net {
    s.parse().expect("test prefix")
}

fn net(s: &str) -> IpNet {
    s.parse().expect("test prefix")
}

#[test]
fn keepalive_is_the_marker_length_19_and_type_4() {
    assert_golden(&Message::Keepalive, &ctx2(), &format!("{MARKER} 0013 04"));
}

#[test]
fn ipv4_end_of_rib_is_an_empty_update() {
    let eor = Update::end_of_rib(Family::IPV4_UNICAST);
    assert_eq!(eor.end_of_rib_family(), Some(Family::IPV4_UNICAST));
    assert_golden(
        &Message::Update(eor),
        &ctx4(),
        &format!("{MARKER} 0017 02 0000 0000"),
    );
}

#[test]
fn ipv6_end_of_rib_is_an_update_whose_only_attribute_is_an_empty_mp_unreach() {
    let eor = Update::end_of_rib(Family::IPV6_UNICAST);
    assert_eq!(eor.end_of_rib_family(), Some(Family::IPV6_UNICAST));
    // We set the extended-length bit only for values over 255 octets, as FRR and BIRD do for
    // this marker: `80 0f 03 0002 01`.
    assert_golden(
        &Message::Update(eor),
        &ctx4(),
        &format!("{MARKER} 001d 02 0000 0006 80 0f 03 0002 01"),
    );
}

#[test]
fn ipv6_end_of_rib_with_extended_length_attribute_is_recognised() {
    // `90 0f 0003 0002 01` (extended length bit on a 3-octet value, see docs/bgp-wire.md's
    // byte facts) is what some speakers send; it must decode to the same marker.
    let bytes = hex(&format!("{MARKER} 001e 02 0000 0007 90 0f 0003 0002 01"));
    let Message::Update(u) = Message::decode(&bytes, &ctx4()).expect("decodes") else {
        panic!("not an UPDATE");
    };
    assert_eq!(u, Update::end_of_rib(Family::IPV6_UNICAST));
    assert_eq!(u.end_of_rib_family(), Some(Family::IPV6_UNICAST));
}

#[test]
fn ebgp_as_path_with_4_octet_asns_is_one_as_sequence() {
    let path = PathAttribute::AsPath(AsPath {
        segments: vec![AsSegment::Sequence(vec![4200000001])],
    });
    assert_eq!(
        attr_bytes(&path, &ctx4()),
        "400206".to_owned() + "0201fa56ea01"
    );
}

#[test]
fn ibgp_as_path_is_empty() {
    let path = PathAttribute::AsPath(AsPath::default());
    assert_eq!(attr_bytes(&path, &ctx4()), "400200");
    assert_eq!(attr_bytes(&path, &ctx2()), "400200");
}

#[test]
fn as_path_with_2_octet_asns_carries_as_trans_for_large_asns() {
    let path = PathAttribute::AsPath(AsPath {
        segments: vec![AsSegment::Sequence(vec![4200000001, 64512])],
    });
    assert_eq!(attr_bytes(&path, &ctx2()), "40020602025ba0fc00");
}

#[test]
fn as_path_segment_types_are_kept() {
    let path = PathAttribute::AsPath(AsPath {
        segments: vec![
            AsSegment::Sequence(vec![1]),
            AsSegment::Set(vec![2]),
            AsSegment::ConfedSequence(vec![3]),
            AsSegment::ConfedSet(vec![4]),
        ],
    });
    assert_eq!(
        attr_bytes(&path, &ctx2()),
        "400210 020100 01 010100 02 030100 03 040100 04".replace(' ', "")
    );
}

#[test]
fn as_path_segment_over_255_asns_is_split_and_uses_extended_length() {
    let asns: Vec<u32> = (1..=300).collect();
    let path = PathAttribute::AsPath(AsPath {
        segments: vec![AsSegment::Sequence(asns.clone())],
    });
    let ctx = ctx4();
    // 2 + 255*4 + 2 + 45*4 = 1204 = 0x04b4.
    let got = attr_bytes(&path, &ctx);
    assert!(
        got.starts_with("500204b4" /* flags 0x40|0x10, type 2, length 1204 */),
        "{got}"
    );
    assert_eq!(&got[8..12], "02ff");
    let second = 8 + 4 + 255 * 8;
    assert_eq!(&got[second..second + 4], "022d");
    // Decodes as two consecutive AS_SEQUENCE segments with the same ASNs.
    let bytes = encode(
        &Message::Update(Update {
            attributes: vec![path],
            ..Update::default()
        }),
        &ctx,
    );
    let Message::Update(u) = Message::decode(&bytes, &ctx).expect("decodes") else {
        panic!()
    };
    let [PathAttribute::AsPath(p)] = u.attributes.as_slice() else {
        panic!("{u:?}")
    };
    assert_eq!(
        p.segments,
        vec![
            AsSegment::Sequence(asns[..255].to_vec()),
            AsSegment::Sequence(asns[255..].to_vec())
        ]
    );
}

#[test]
fn well_known_attributes_are_sent_with_flags_40() {
    let ctx = ctx4();
    assert_eq!(
        attr_bytes(&PathAttribute::Origin(Origin::Igp), &ctx),
        "40010100"
    );
    assert_eq!(
        attr_bytes(&PathAttribute::NextHop(Ipv4Addr::new(192, 0, 2, 1)), &ctx),
        "400304c0000201"
    );
    assert_eq!(
        attr_bytes(&PathAttribute::LocalPref(100), &ctx),
        "40050400000064"
    );
    assert_eq!(attr_bytes(&PathAttribute::AtomicAggregate, &ctx), "400600");
}

#[test]
fn optional_non_transitive_attributes_are_sent_with_flags_80() {
    let ctx = ctx4();
    assert_eq!(
        attr_bytes(&PathAttribute::MultiExitDisc(7), &ctx),
        "80040400000007"
    );
    assert_eq!(
        attr_bytes(
            &PathAttribute::OriginatorId(Ipv4Addr::new(10, 0, 0, 1)),
            &ctx
        ),
        "8009040a000001"
    );
    assert_eq!(
        attr_bytes(
            &PathAttribute::ClusterList(vec![Ipv4Addr::new(10, 0, 0, 2)]),
            &ctx
        ),
        "800a040a000002"
    );
}

#[test]
fn communities_are_optional_transitive_type_8() {
    let attr = PathAttribute::Communities(vec![Community::new(64512, 100), Community::NO_EXPORT]);
    assert_eq!(attr_bytes(&attr, &ctx4()), "c00808fc000064ffffff01");
}

#[test]
fn large_communities_are_optional_transitive_type_32_without_partial() {
    let attr = PathAttribute::LargeCommunities(vec![LargeCommunity {
        global_admin: 4200000001,
        local_data1: 1,
        local_data2: 2,
    }]);
    assert_eq!(attr_bytes(&attr, &ctx4()), "c0200cfa56ea010000000100000002");
}

#[test]
fn other_optional_transitive_attributes_are_sent_with_flags_c0() {
    let ctx = ctx4();
    let agg = ferrolb_bgpd::wire::Aggregator {
        asn: 4200000001,
        address: Ipv4Addr::new(10, 0, 0, 1),
    };
    assert_eq!(
        attr_bytes(&PathAttribute::Aggregator(agg), &ctx),
        "c00708fa56ea010a000001"
    );
    assert_eq!(
        attr_bytes(&PathAttribute::Aggregator(agg), &ctx2()),
        "c007065ba00a000001"
    );
    assert_eq!(
        attr_bytes(&PathAttribute::As4Aggregator(agg), &ctx2()),
        "c01208fa56ea010a000001"
    );
    assert_eq!(
        attr_bytes(
            &PathAttribute::As4Path(AsPath {
                segments: vec![AsSegment::Sequence(vec![4200000001])]
            }),
            &ctx2()
        ),
        "c011060201fa56ea01"
    );
    assert_eq!(
        attr_bytes(
            &PathAttribute::ExtendedCommunities(vec![[0, 2, 0xfd, 0xe8, 0, 0, 0, 1]]),
            &ctx
        ),
        "c0100800 02fde800000001".replace(' ', "")
    );
}

#[test]
fn attribute_value_over_255_octets_sets_the_extended_length_bit() {
    // 64 communities = 256 octets.
    let attr = PathAttribute::Communities((0..64).map(Community).collect());
    let got = attr_bytes(&attr, &ctx4());
    assert!(got.starts_with("d0080100"), "{got}");
    // 63 communities = 252 octets: one length octet.
    let attr = PathAttribute::Communities((0..63).map(Community).collect());
    assert!(attr_bytes(&attr, &ctx4()).starts_with("c008fc"));
}

#[test]
fn ebgp_update_with_ipv4_nlri_and_next_hop() {
    let update = Update {
        attributes: vec![
            PathAttribute::Origin(Origin::Igp),
            PathAttribute::AsPath(AsPath {
                segments: vec![AsSegment::Sequence(vec![4200000001])],
            }),
            PathAttribute::NextHop(Ipv4Addr::new(192, 0, 2, 10)),
        ],
        nlri: vec![v4("198.51.100.7/32"), v4("203.0.113.0/24")],
        ..Update::default()
    };
    assert_golden(
        &Message::Update(update),
        &ctx4(),
        &format!(
            "{MARKER} 0034 02 0000 0014 40010100 4002060201fa56ea01 400304c000020a \
             20c6336407 18cb0071"
        ),
    );
}

#[test]
fn withdrawals_go_in_the_withdrawn_routes_field() {
    let update = Update {
        withdrawn: vec![v4("198.51.100.7/32"), v4("10.0.0.0/8")],
        ..Update::default()
    };
    assert_golden(
        &Message::Update(update),
        &ctx4(),
        &format!("{MARKER} 001e 02 0007 20c6336407 080a 0000"),
    );
}

#[test]
fn mp_reach_ipv6_with_a_global_next_hop_has_next_hop_length_16() {
    let update = Update {
        attributes: vec![
            PathAttribute::Origin(Origin::Igp),
            PathAttribute::AsPath(AsPath::default()),
            PathAttribute::MpReach(MpReach {
                family: Family::IPV6_UNICAST,
                next_hop: NextHop::V6 {
                    global: "2001:db8::1".parse().unwrap(),
                    link_local: None,
                },
                nlri: vec![net("2001:db8:1::/48")],
            }),
        ],
        ..Update::default()
    };
    assert_golden(
        &Message::Update(update),
        &ctx4(),
        &format!(
            "{MARKER} 003d 02 0000 0026 40010100 400200 800e1c 0002 01 10 20010db8000000000000000000000001 00 \
             30 20010db80001"
        ),
    );
}

#[test]
fn mp_reach_ipv6_with_a_link_local_next_hop_has_next_hop_length_32() {
    let ll: Ipv6Addr = "fe80::1".parse().unwrap();
    let update = Update {
        attributes: vec![
            PathAttribute::Origin(Origin::Igp),
            PathAttribute::AsPath(AsPath::default()),
            PathAttribute::MpReach(MpReach {
                family: Family::IPV6_UNICAST,
                next_hop: NextHop::V6 {
                    global: "2001:db8::1".parse().unwrap(),
                    link_local: Some(ll),
                },
                nlri: vec![net("2001:db8:1::1/128")],
            }),
        ],
        ..Update::default()
    };
    assert_golden(
        &Message::Update(update),
        &ctx4(),
        &format!(
            "{MARKER} 0057 02 0000 0040 40010100 400200 800e36 0002 01 20 20010db8000000000000000000000001 \
             fe800000000000000000000000000001 00 80 20010db8000100000000000000000001"
        ),
    );
}

#[test]
fn mp_reach_ipv4_with_an_ipv4_next_hop_has_next_hop_length_4() {
    let update = Update {
        attributes: vec![
            PathAttribute::Origin(Origin::Igp),
            PathAttribute::AsPath(AsPath::default()),
            PathAttribute::MpReach(MpReach {
                family: Family::IPV4_UNICAST,
                next_hop: NextHop::V4(Ipv4Addr::new(192, 0, 2, 1)),
                nlri: vec![net("198.51.100.0/24")],
            }),
        ],
        ..Update::default()
    };
    assert_golden(
        &Message::Update(update),
        &ctx4(),
        &format!(
            "{MARKER} 002e 02 0000 0017 40010100 400200 800e0d 0001 01 04 c0000201 00 18c63364"
        ),
    );
}

#[test]
fn mp_unreach_ipv6_withdraws_prefixes() {
    let update = Update {
        attributes: vec![PathAttribute::MpUnreach(MpUnreach {
            family: Family::IPV6_UNICAST,
            withdrawn: vec![net("2001:db8:1::/48")],
        })],
        ..Update::default()
    };
    assert_golden(
        &Message::Update(update),
        &ctx4(),
        &format!("{MARKER} 0024 02 0000 000d 800f0a 0002 01 30 20010db80001"),
    );
}

#[test]
fn host_bits_past_the_prefix_length_are_sent_as_zero() {
    let update = Update {
        withdrawn: vec![Ipv4Net::new(Ipv4Addr::new(10, 1, 2, 255), 25).unwrap()],
        ..Update::default()
    };
    let bytes = encode(&Message::Update(update), &ctx4());
    assert_eq!(
        hex::encode(&bytes[19..]),
        "0005190a010280".to_owned() + "0000"
    );
}

#[test]
fn open_with_asn_above_65535_sends_as_trans_and_capability_65() {
    let open = Open::new(
        4200000001,
        90,
        Ipv4Addr::new(192, 0, 2, 1),
        vec![Capability::FourOctetAs(4200000001)],
    );
    assert_eq!(open.my_as, AS_TRANS);
    assert_eq!(open.asn(), 4200000001);
    assert_golden(
        &Message::Open(open),
        &ctx2(),
        &format!("{MARKER} 0025 01 04 5ba0 005a c0000201 08 0206 4104fa56ea01"),
    );
}

fn our_open() -> Open {
    Open::new(
        65001,
        90,
        Ipv4Addr::new(10, 0, 0, 1),
        vec![
            Capability::Multiprotocol(Family::IPV4_UNICAST),
            Capability::Multiprotocol(Family::IPV6_UNICAST),
            Capability::RouteRefresh,
            Capability::ExtendedMessage,
            Capability::GracefulRestart(GracefulRestart {
                restart_state: false,
                notification: true,
                restart_time: 120,
                families: vec![
                    GracefulRestartFamily {
                        family: Family::IPV4_UNICAST,
                        forwarding_preserved: false,
                    },
                    GracefulRestartFamily {
                        family: Family::IPV6_UNICAST,
                        forwarding_preserved: true,
                    },
                ],
            }),
            Capability::FourOctetAs(65001),
        ],
    )
}

#[test]
fn open_sends_one_capabilities_parameter_per_capability() {
    // MP v4, MP v6, route refresh, extended message, graceful restart (N bit, 120 s, v4 and v6
    // with F on v6), 4-octet AS.
    assert_golden(
        &Message::Open(our_open()),
        &ctx2(),
        &format!(
            "{MARKER} 004b 01 04 fde9 005a 0a000001 2e \
             0206 0104 0001 00 01 \
             0206 0104 0002 00 01 \
             0202 0200 \
             0202 0600 \
             020c 400a 4078 0001 01 00 0002 01 80 \
             0206 4104 0000fde9"
        ),
    );
}

#[test]
fn open_accessors_report_what_was_advertised() {
    let open = our_open();
    assert_eq!(
        open.families(),
        vec![Family::IPV4_UNICAST, Family::IPV6_UNICAST]
    );
    assert!(open.has_capability(2));
    assert!(open.has_capability(6));
    assert!(!open.has_capability(70));
    assert_eq!(open.graceful_restart().map(|gr| gr.restart_time), Some(120));
    assert_eq!(open.asn(), 65001);
}

#[test]
fn open_with_parameters_over_255_octets_uses_rfc_9072_extended_form() {
    // 3 unknown capabilities of 100 octets: 3 * (2 + 2 + 100) = 312 > 255.
    let caps = (0..3)
        .map(|i| Capability::Unknown {
            code: 200 + i,
            value: vec![i; 100],
        })
        .collect();
    let open = Open::new(65001, 0, Ipv4Addr::new(10, 0, 0, 1), caps);
    let bytes = encode(&Message::Open(open.clone()), &ctx2());
    // Non-Ext OP Len 255, Non-Ext OP Type 255, Extended Opt. Parm. Length = 3 * (3 + 102) = 315.
    assert_eq!(hex::encode(&bytes[28..32]), "ffff013b");
    // Each parameter: type 2, 2-octet length 102, then the capability.
    assert_eq!(hex::encode(&bytes[32..37]), "020066c864");
    assert_eq!(
        Message::decode(&bytes, &ctx2()).unwrap(),
        Message::Open(open)
    );
}

#[test]
fn route_refresh_is_afi_reserved_safi() {
    let rr = RouteRefresh {
        family: Family::IPV6_UNICAST,
        subtype: 0,
    };
    assert_golden(
        &Message::RouteRefresh(rr),
        &ctx2(),
        &format!("{MARKER} 0017 05 0002 00 01"),
    );
}

#[test]
fn cease_administrative_shutdown_carries_rfc_9003_text() {
    let n = Notification::cease(cease_subcode::ADMINISTRATIVE_SHUTDOWN, Some("maintenance"));
    assert_eq!(n.shutdown_text().as_deref(), Some("maintenance"));
    assert_golden(
        &Message::Notification(n.clone()),
        &ctx2(),
        &format!("{MARKER} 0021 03 06 02 0b {}", hex::encode("maintenance")),
    );
    assert_eq!(
        n.to_string(),
        r#"Cease/Administrative Shutdown (6/2): "maintenance""#
    );
}

#[test]
fn cease_text_is_truncated_to_255_octets_on_a_character_boundary() {
    // 200 two-octet characters = 400 octets; 127 of them fit in 255 octets.
    let text = "é".repeat(200);
    let n = Notification::cease(cease_subcode::ADMINISTRATIVE_RESET, Some(&text));
    assert_eq!(n.data[0], 254);
    assert_eq!(n.data.len(), 255);
    assert_eq!(n.shutdown_text(), Some("é".repeat(127)));
}

#[test]
fn cease_without_a_text_subcode_carries_no_data() {
    let n = Notification::cease(cease_subcode::PEER_DECONFIGURED, Some("ignored"));
    assert!(n.data.is_empty());
    assert_eq!(n.shutdown_text(), None);
    assert_eq!(n.to_string(), "Cease/Peer De-configured (6/3)");
}

#[test]
fn notification_display_names_codes_and_shows_unknown_ones_by_number() {
    assert_eq!(
        Notification::new(3, 11, vec![]).to_string(),
        "UPDATE Message Error/Malformed AS_PATH (3/11)"
    );
    assert_eq!(
        Notification::new(4, 0, vec![]).to_string(),
        "Hold Timer Expired (4/0)"
    );
    assert_eq!(
        Notification::new(1, 2, vec![0, 18]).to_string(),
        "Message Header Error/Bad Message Length (1/2), data 0012"
    );
    assert_eq!(
        Notification::new(42, 7, vec![]).to_string(),
        "error code 42/subcode 7 (42/7)"
    );
    assert_eq!(
        Notification::new(3, 99, vec![]).to_string(),
        "UPDATE Message Error/subcode 99 (3/99)"
    );
}

#[test]
fn extended_message_lets_an_update_exceed_4096_octets() {
    // 1000 /32s = 5000 octets of NLRI.
    let nlri: Vec<Ipv4Net> = (0..1000u32)
        .map(|i| Ipv4Net::new(Ipv4Addr::from(0x0a00_0000 + i), 32).unwrap())
        .collect();
    let update = Message::Update(Update {
        attributes: vec![
            PathAttribute::Origin(Origin::Igp),
            PathAttribute::AsPath(AsPath::default()),
            PathAttribute::NextHop(Ipv4Addr::new(192, 0, 2, 1)),
        ],
        nlri,
        ..Update::default()
    });
    let length = 23 + 4 + 3 + 7 + 5000;
    assert_eq!(
        update.encode(&ctx4()),
        Err(EncodeError::TooLong { length, max: 4096 })
    );
    let ext = CodecContext {
        four_octet_as: true,
        max_message_len: MAX_EXTENDED_MESSAGE_LEN,
        ..CodecContext::default()
    };
    let bytes = update.encode(&ext).unwrap();
    assert_eq!(bytes.len(), length);
    assert_eq!(hex::encode(&bytes[16..18]), format!("{length:04x}"));
    assert_eq!(Message::decode(&bytes, &ext).unwrap(), update);
}

#[test]
fn a_4096_octet_update_holds_810_ipv4_host_routes_with_origin_as_path_and_next_hop() {
    let attrs = vec![
        PathAttribute::Origin(Origin::Igp),
        PathAttribute::AsPath(AsPath {
            segments: vec![AsSegment::Sequence(vec![4200000001])],
        }),
        PathAttribute::NextHop(Ipv4Addr::new(192, 0, 2, 1)),
    ];
    let mk = |n: u32| Update {
        attributes: attrs.clone(),
        nlri: (0..n)
            .map(|i| Ipv4Net::new(Ipv4Addr::from(0x0a00_0000 + i), 32).unwrap())
            .collect(),
        ..Update::default()
    };
    // 23 + (4 + 9 + 7) + 5 * n <= 4096  →  n <= 810.
    assert_eq!(mk(810).encoded_len(&ctx4()), 4093);
    assert!(Message::Update(mk(810)).encode(&ctx4()).is_ok());
    assert!(Message::Update(mk(811)).encode(&ctx4()).is_err());
}

#[test]
fn encode_into_appends_and_leaves_the_buffer_alone_on_error() {
    let mut out = vec![1, 2, 3];
    Message::Keepalive.encode_into(&ctx2(), &mut out).unwrap();
    assert_eq!(out.len(), 3 + 19);
    let too_big = Message::Notification(Notification::new(6, 0, vec![0; 5000]));
    assert!(too_big.encode_into(&ctx2(), &mut out).is_err());
    assert_eq!(out.len(), 3 + 19);
}

#[test]
fn prefix_wire_len_is_one_plus_the_octets_the_length_needs() {
    assert_eq!(ferrolb_bgpd::wire::prefix_wire_len(&net("0.0.0.0/0")), 1);
    assert_eq!(ferrolb_bgpd::wire::prefix_wire_len(&net("10.0.0.0/8")), 2);
    assert_eq!(ferrolb_bgpd::wire::prefix_wire_len(&net("10.0.0.0/9")), 3);
    assert_eq!(ferrolb_bgpd::wire::prefix_wire_len(&net("10.0.0.1/32")), 5);
    assert_eq!(
        ferrolb_bgpd::wire::prefix_wire_len(&net("2001:db8::1/128")),
        17
    );
}

#[test]
fn end_of_rib_of_other_families_is_an_mp_unreach_for_that_family() {
    let fam = Family {
        afi: Afi(25),
        safi: Safi(70),
    };
    let eor = Update::end_of_rib(fam);
    assert_eq!(eor.end_of_rib_family(), Some(fam));
    let bytes = encode(&Message::Update(eor), &ctx4());
    assert_eq!(hex::encode(&bytes[19..]), "00000006800f03001946");
    // Decoded, the family is not one we interpret, so the attribute stays raw; still End-of-RIB.
    let Message::Update(u) = Message::decode(&bytes, &ctx4()).unwrap() else {
        panic!()
    };
    assert_eq!(u.end_of_rib_family(), Some(fam));
}

#[test]
fn update_with_routes_is_not_end_of_rib() {
    let u = Update {
        nlri: vec![v4("10.0.0.0/8")],
        ..Update::default()
    };
    assert_eq!(u.end_of_rib_family(), None);
}
