//! Properties of the codec over generated input:
//! - decode(encode(m)) == m for OPEN, UPDATE, NOTIFICATION, ROUTE-REFRESH and KEEPALIVE, with
//!   2-octet ASNs (where every ASN fits) and 4-octet ASNs;
//! - decode never panics, on arbitrary bytes or on mutated valid messages, and whatever decodes
//!   encodes again;
//! - frame_len agrees with decode.

// Helpers outside #[test] functions unwrap too: a failed unwrap is a failed test.
#![allow(clippy::unwrap_used, clippy::expect_used)]

use std::net::{Ipv4Addr, Ipv6Addr};

use ferrolb_bgpd::wire::{
    Afi, Aggregator, AsPath, AsSegment, Capability, CodecContext, Community, DecodeError,
    EncodeError, Family, GracefulRestart, GracefulRestartFamily, LargeCommunity,
    MAX_EXTENDED_MESSAGE_LEN, Message, MpReach, MpUnreach, NextHop, Notification, Open, Origin,
    PathAttribute, RawAttribute, RouteRefresh, Safi, Update, frame_len,
};
use ipnet::{IpNet, Ipv4Net, Ipv6Net};
use proptest::prelude::*;

// ---------------------------------------------------------------------------------------------
// Generators of valid messages

fn ipv4_prefix() -> impl Strategy<Value = Ipv4Net> {
    (any::<u32>(), 0u8..=32).prop_map(|(a, l)| Ipv4Net::new(Ipv4Addr::from(a), l).unwrap().trunc())
}

fn ipv6_prefix() -> impl Strategy<Value = Ipv6Net> {
    (any::<u128>(), 0u8..=128)
        .prop_map(|(a, l)| Ipv6Net::new(Ipv6Addr::from(a), l).unwrap().trunc())
}

/// A usable unicast next hop: not 0.0.0.0, multicast or broadcast.
fn next_hop_v4() -> impl Strategy<Value = Ipv4Addr> {
    (1u32..0xe000_0000).prop_map(Ipv4Addr::from)
}

fn asn(four_octet: bool) -> BoxedStrategy<u32> {
    if four_octet {
        any::<u32>().boxed()
    } else {
        (0u32..=65535).boxed()
    }
}

fn as_path(asn: BoxedStrategy<u32>) -> impl Strategy<Value = AsPath> {
    let segment = (1u8..=4, prop::collection::vec(asn, 1..12)).prop_map(|(t, asns)| match t {
        1 => AsSegment::Set(asns),
        2 => AsSegment::Sequence(asns),
        3 => AsSegment::ConfedSequence(asns),
        _ => AsSegment::ConfedSet(asns),
    });
    prop::collection::vec(segment, 0..4).prop_map(|segments| AsPath { segments })
}

fn mp_reach() -> impl Strategy<Value = MpReach> {
    let v6nh = (any::<u128>(), prop::option::of(any::<u128>())).prop_map(|(g, ll)| NextHop::V6 {
        global: Ipv6Addr::from(g),
        link_local: ll.map(Ipv6Addr::from),
    });
    let v4nh = any::<u32>().prop_map(|a| NextHop::V4(Ipv4Addr::from(a)));
    prop_oneof![
        (
            prop_oneof![v4nh, v6nh.clone()],
            prop::collection::vec(ipv4_prefix(), 0..20)
        )
            .prop_map(|(next_hop, nlri)| MpReach {
                family: Family::IPV4_UNICAST,
                next_hop,
                nlri: nlri.into_iter().map(IpNet::V4).collect(),
            }),
        (v6nh, prop::collection::vec(ipv6_prefix(), 0..20)).prop_map(|(next_hop, nlri)| MpReach {
            family: Family::IPV6_UNICAST,
            next_hop,
            nlri: nlri.into_iter().map(IpNet::V6).collect(),
        }),
    ]
}

fn mp_unreach() -> impl Strategy<Value = MpUnreach> {
    prop_oneof![
        prop::collection::vec(ipv4_prefix(), 0..20).prop_map(|w| MpUnreach {
            family: Family::IPV4_UNICAST,
            withdrawn: w.into_iter().map(IpNet::V4).collect(),
        }),
        prop::collection::vec(ipv6_prefix(), 0..20).prop_map(|w| MpUnreach {
            family: Family::IPV6_UNICAST,
            withdrawn: w.into_iter().map(IpNet::V6).collect(),
        }),
    ]
}

/// Attribute types we do not interpret.
const UNKNOWN_TYPES: [u8; 8] = [11, 12, 13, 19, 25, 128, 200, 255];

fn raw_attribute() -> impl Strategy<Value = RawAttribute> {
    (
        prop::sample::select(UNKNOWN_TYPES.to_vec()),
        0u8..8,
        prop::collection::vec(any::<u8>(), 0..300),
    )
        .prop_map(|(type_code, bits, value)| RawAttribute {
            // Optional (unknown well-known attributes are not something peers send), with any
            // Transitive/Partial combination.
            flags: 0x80 | (bits & 0x3) << 5,
            type_code,
            value,
        })
}

/// A valid UPDATE for the context: at most one attribute of each type, in a random order, with
/// ORIGIN and AS_PATH always present and NEXT_HOP whenever the NLRI field is not empty.
fn update(four_octet: bool) -> impl Strategy<Value = Update> {
    let optional = (
        prop::option::of(any::<u32>().prop_map(PathAttribute::MultiExitDisc)),
        prop::option::of(any::<u32>().prop_map(PathAttribute::LocalPref)),
        prop::option::of(Just(PathAttribute::AtomicAggregate)),
        prop::option::of((asn(four_octet), any::<u32>()).prop_map(|(asn, a)| {
            PathAttribute::Aggregator(Aggregator {
                asn,
                address: Ipv4Addr::from(a),
            })
        })),
        prop::option::of(
            prop::collection::vec(any::<u32>().prop_map(Community), 1..20)
                .prop_map(PathAttribute::Communities),
        ),
        prop::option::of(any::<u32>().prop_map(|a| PathAttribute::OriginatorId(Ipv4Addr::from(a)))),
        prop::option::of(
            prop::collection::vec(any::<u32>().prop_map(Ipv4Addr::from), 1..5)
                .prop_map(PathAttribute::ClusterList),
        ),
        prop::option::of(mp_reach().prop_map(PathAttribute::MpReach)),
        prop::option::of(mp_unreach().prop_map(PathAttribute::MpUnreach)),
        prop::option::of(
            prop::collection::vec(any::<[u8; 8]>(), 1..5)
                .prop_map(PathAttribute::ExtendedCommunities),
        ),
        prop::option::of(as_path(any::<u32>().boxed()).prop_map(PathAttribute::As4Path)),
        prop::option::of((any::<u32>(), any::<u32>()).prop_map(|(asn, a)| {
            PathAttribute::As4Aggregator(Aggregator {
                asn,
                address: Ipv4Addr::from(a),
            })
        })),
    );
    let large = prop::option::of(
        prop::collection::vec(
            (any::<u32>(), any::<u32>(), any::<u32>()).prop_map(|(g, a, b)| LargeCommunity {
                global_admin: g,
                local_data1: a,
                local_data2: b,
            }),
            1..10,
        )
        .prop_map(PathAttribute::LargeCommunities),
    );
    (
        prop::collection::vec(ipv4_prefix(), 0..30),
        prop::collection::vec(ipv4_prefix(), 0..30),
        prop::sample::select(vec![Origin::Igp, Origin::Egp, Origin::Incomplete]),
        as_path(asn(four_octet)),
        next_hop_v4(),
        optional,
        large,
        prop::option::of(raw_attribute()),
    )
        .prop_flat_map(
            move |(withdrawn, nlri, origin, path, nh, opt, large, raw)| {
                let mut attributes =
                    vec![PathAttribute::Origin(origin), PathAttribute::AsPath(path)];
                if !nlri.is_empty() {
                    attributes.push(PathAttribute::NextHop(nh));
                }
                let (a, b, c, d, e, f, g, h, i, j, k, l) = opt;
                attributes.extend(
                    [a, b, c, d, e, f, g, h, i, j, k, l, large]
                        .into_iter()
                        .flatten(),
                );
                attributes.extend(raw.map(PathAttribute::Unknown));
                (Just(withdrawn), Just(nlri), Just(attributes).prop_shuffle())
            },
        )
        .prop_map(|(withdrawn, nlri, attributes)| Update {
            withdrawn,
            attributes,
            nlri,
            recovered_errors: Vec::new(),
        })
}

const KNOWN_CAPABILITIES: [u8; 5] = [1, 2, 6, 64, 65];

fn family() -> impl Strategy<Value = Family> {
    (any::<u16>(), any::<u8>()).prop_map(|(a, s)| Family {
        afi: Afi(a),
        safi: Safi(s),
    })
}

fn capability() -> impl Strategy<Value = Capability> {
    prop_oneof![
        family().prop_map(Capability::Multiprotocol),
        Just(Capability::RouteRefresh),
        Just(Capability::ExtendedMessage),
        (
            any::<bool>(),
            any::<bool>(),
            0u16..=4095,
            prop::collection::vec((family(), any::<bool>()), 0..4)
        )
            .prop_map(
                |(r, n, t, fams)| Capability::GracefulRestart(GracefulRestart {
                    restart_state: r,
                    notification: n,
                    restart_time: t,
                    families: fams
                        .into_iter()
                        .map(|(family, f)| GracefulRestartFamily {
                            family,
                            forwarding_preserved: f
                        })
                        .collect(),
                })
            ),
        (1u32..).prop_map(Capability::FourOctetAs),
        (
            any::<u8>().prop_filter("unknown code", |c| !KNOWN_CAPABILITIES.contains(c)),
            prop::collection::vec(any::<u8>(), 0..40)
        )
            .prop_map(|(code, value)| Capability::Unknown { code, value }),
    ]
}

fn open() -> impl Strategy<Value = Open> {
    (
        1u16..,
        prop_oneof![Just(0u16), 3u16..],
        1u32..,
        // Enough capabilities to exercise the RFC 9072 extended form now and then.
        prop::collection::vec(capability(), 0..12),
    )
        .prop_map(|(my_as, hold_time, id, capabilities)| Open {
            version: 4,
            my_as,
            hold_time,
            router_id: Ipv4Addr::from(id),
            capabilities,
        })
}

fn message(four_octet: bool) -> impl Strategy<Value = Message> {
    prop_oneof![
        open().prop_map(Message::Open),
        update(four_octet).prop_map(Message::Update),
        (
            any::<u8>(),
            any::<u8>(),
            prop::collection::vec(any::<u8>(), 0..100)
        )
            .prop_map(|(c, s, d)| Message::Notification(Notification::new(c, s, d))),
        Just(Message::Keepalive),
        (family(), any::<u8>())
            .prop_map(|(family, subtype)| Message::RouteRefresh(RouteRefresh { family, subtype })),
    ]
}

fn context(four_octet_as: bool) -> CodecContext {
    CodecContext {
        four_octet_as,
        max_message_len: MAX_EXTENDED_MESSAGE_LEN,
        ..CodecContext::default()
    }
}

// ---------------------------------------------------------------------------------------------
// Arbitrary and mutated bytes

/// Bytes that get past the marker most of the time, so the body decoders are exercised.
fn framed_garbage() -> impl Strategy<Value = Vec<u8>> {
    (
        prop::option::weighted(0.9, Just(())),
        prop::option::weighted(0.7, Just(())),
        0u8..8,
        prop::collection::vec(any::<u8>(), 0..300),
    )
        .prop_map(|(marker, fix_len, t, body)| {
            let mut out = if marker.is_some() {
                vec![0xff; 16]
            } else {
                vec![0xfe; 16]
            };
            let len = u16::try_from(19 + body.len()).unwrap();
            let len = if fix_len.is_some() { len } else { len ^ 0x5a };
            out.extend_from_slice(&len.to_be_bytes());
            out.push(t);
            out.extend_from_slice(&body);
            out
        })
}

#[derive(Clone, Debug)]
enum Mutation {
    Set(usize, u8),
    Insert(usize, u8),
    Remove(usize),
    Truncate(usize),
}

fn mutations() -> impl Strategy<Value = Vec<Mutation>> {
    prop::collection::vec(
        prop_oneof![
            4 => (any::<usize>(), any::<u8>()).prop_map(|(i, b)| Mutation::Set(i, b)),
            1 => (any::<usize>(), any::<u8>()).prop_map(|(i, b)| Mutation::Insert(i, b)),
            1 => any::<usize>().prop_map(Mutation::Remove),
            1 => any::<usize>().prop_map(Mutation::Truncate),
        ],
        1..6,
    )
}

/// Applies the mutations to the body (the marker is left alone so the body decoders run), then
/// fixes the header length so framing passes.
fn mutate(mut bytes: Vec<u8>, muts: &[Mutation]) -> Vec<u8> {
    for m in muts {
        let n = bytes.len();
        match *m {
            Mutation::Set(i, b) if n > 16 => bytes[16 + i % (n - 16)] = b,
            Mutation::Insert(i, b) => bytes.insert(19.min(n) + i % (n.saturating_sub(19) + 1), b),
            Mutation::Remove(i) if n > 19 => {
                bytes.remove(19 + i % (n - 19));
            }
            Mutation::Truncate(i) => bytes.truncate(19 + i % (n.saturating_sub(19) + 1)),
            _ => {}
        }
    }
    if bytes.len() >= 19 {
        let len = u16::try_from(bytes.len()).unwrap_or(u16::MAX).to_be_bytes();
        bytes[16] = len[0];
        bytes[17] = len[1];
    }
    bytes
}

/// The checks every input must pass: no panic; frame_len and decode agree; whatever decodes
/// encodes again and, unless errors were recovered from, decodes to the same message.
fn check_total(bytes: &[u8]) -> Result<(), TestCaseError> {
    for ctx in [context(false), context(true), CodecContext::default()] {
        let framed = frame_len(bytes, &ctx);
        let decoded = Message::decode(bytes, &ctx);
        match &framed {
            Err(e) => prop_assert_eq!(&decoded, &Err(e.clone())),
            Ok(None) => {
                prop_assert!(
                    matches!(decoded, Err(DecodeError::FrameLength { .. })),
                    "frame_len wants more bytes, decode said {:?}",
                    decoded
                )
            }
            Ok(Some(n)) => {
                prop_assert!(*n <= bytes.len());
                let whole = Message::decode(&bytes[..*n], &ctx);
                prop_assert!(
                    !matches!(whole, Err(DecodeError::FrameLength { .. })),
                    "{:?}",
                    whole
                );
                if *n == bytes.len() {
                    prop_assert_eq!(&whole, &decoded);
                }
            }
        }
        if let Ok(m) = decoded {
            match m.encode(&ctx) {
                Ok(again) => {
                    let clean = !matches!(&m, Message::Update(u) if !u.recovered_errors.is_empty());
                    if clean {
                        prop_assert_eq!(Message::decode(&again, &ctx), Ok(m));
                    }
                }
                // One capability per parameter can take more room than a peer's packed form.
                Err(EncodeError::TooLong { .. }) if matches!(m, Message::Open(_)) => {}
                Err(e) => prop_assert!(false, "decoded {:?} but cannot encode it: {}", m, e),
            }
        }
    }
    Ok(())
}

proptest! {
    #![proptest_config(ProptestConfig { cases: 512, ..ProptestConfig::default() })]

    #[test]
    fn decode_of_encode_is_identity_with_4_octet_asns(m in message(true)) {
        round_trip(&m, &context(true))?;
    }

    #[test]
    fn decode_of_encode_is_identity_with_2_octet_asns(m in message(false)) {
        round_trip(&m, &context(false))?;
    }

    #[test]
    fn update_encoded_len_is_the_encoded_length(u in update(true)) {
        let ctx = context(true);
        let bytes = Message::Update(u.clone()).encode(&ctx).unwrap();
        prop_assert_eq!(bytes.len(), u.encoded_len(&ctx));
        let attrs: usize = u.attributes.iter().map(|a| a.encoded_len(&ctx)).sum();
        let prefixes: usize = u.withdrawn.iter().chain(&u.nlri).map(|p| ferrolb_bgpd::wire::prefix_wire_len(&IpNet::V4(*p))).sum();
        prop_assert_eq!(bytes.len(), 23 + attrs + prefixes);
    }

    #[test]
    fn decode_never_panics_on_arbitrary_bytes(bytes in prop::collection::vec(any::<u8>(), 0..100)) {
        check_total(&bytes)?;
    }

    #[test]
    fn decode_never_panics_on_framed_garbage(bytes in framed_garbage()) {
        check_total(&bytes)?;
    }

    #[test]
    fn decode_never_panics_on_mutated_valid_messages(m in message(true), muts in mutations()) {
        let bytes = m.encode(&context(true)).unwrap();
        check_total(&mutate(bytes, &muts))?;
    }

    #[test]
    fn frame_len_finds_each_message_in_a_stream(ms in prop::collection::vec(message(true), 1..5)) {
        let ctx = context(true);
        let mut stream = Vec::new();
        for m in &ms {
            m.encode_into(&ctx, &mut stream).unwrap();
        }
        let mut rest = &stream[..];
        for m in &ms {
            let n = frame_len(rest, &ctx).unwrap().expect("a whole message");
            prop_assert_eq!(&Message::decode(&rest[..n], &ctx).unwrap(), m);
            rest = &rest[n..];
        }
        prop_assert_eq!(frame_len(rest, &ctx), Ok(None));
    }
}

fn round_trip(m: &Message, ctx: &CodecContext) -> Result<(), TestCaseError> {
    let bytes = match m.encode(ctx) {
        Ok(b) => b,
        // Generated OPENs can exceed 4096 octets; that is an error, never a panic.
        Err(EncodeError::TooLong { .. }) => return Ok(()),
        Err(e) => return Err(TestCaseError::fail(format!("{m:?}: {e}"))),
    };
    prop_assert_eq!(frame_len(&bytes, ctx), Ok(Some(bytes.len())));
    prop_assert_eq!(&Message::decode(&bytes, ctx).unwrap(), m);
    Ok(())
}
