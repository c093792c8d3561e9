//! Oracles: every kind of message ferrolb encodes is decoded by two independent decoders,
//! `zettabgp` 0.6 and `netgauze-bgp-pkt` 0.13, and must mean the same to both as the value we
//! encoded: prefixes, AS path (segment types included), next hop, communities, large
//! communities, LOCAL_PREF, MED, hold time, ASN, router id, capabilities.
//!
//! Each decoder's view is reduced to a common "meaning" struct and compared field by field.
//! Where an oracle cannot express a feature the comparison drops that field for that oracle only
//! and says so at the spot; the other oracle still checks it:
//! - zettabgp ignores the Extended Message capability (6) and the graceful restart N bit;
//! - zettabgp reads only the global address of a 32-octet IPv6 next hop (no link-local);
//! - zettabgp keeps only the first two octets of NOTIFICATION data (a `u16`);
//! - zettabgp has no ROUTE-REFRESH subtype other than what it reads as a raw octet (fine) and no
//!   RFC 9003 text.

// Helpers outside #[test] functions unwrap too: a failed unwrap is a failed test.
#![allow(clippy::unwrap_used, clippy::expect_used)]

use std::collections::HashMap;
use std::net::{IpAddr, Ipv4Addr, Ipv6Addr};

use ferrolb_bgpd::wire::{
    AsPath, AsSegment, Capability, CodecContext, Community, Family, GracefulRestart,
    GracefulRestartFamily, LargeCommunity, MAX_EXTENDED_MESSAGE_LEN, Message, MpReach, MpUnreach,
    NextHop, Notification, Open, Origin, PathAttribute, RouteRefresh, Update, cease_subcode,
};
use ipnet::{IpNet, Ipv4Net};

use netgauze_bgp_pkt as ng;
use netgauze_parse_utils::reader::SliceReader;
use netgauze_parse_utils::traits::ParseFromWithOneInput;
use zettabgp::BgpMessage as _;
use zettabgp::prelude as zb;

// ---------------------------------------------------------------------------------------------
// The common meaning

/// (AFI, SAFI, next hop, link-local next hop, NLRI).
type MpReachMeaning = (u16, u8, IpAddr, Option<Ipv6Addr>, Vec<IpNet>);
/// (R bit, N bit if the oracle knows it, restart time, [(AFI, SAFI, F bit)]).
type GracefulRestartMeaning = (bool, Option<bool>, u16, Vec<(u16, u8, bool)>);

#[derive(Clone, Debug, Default, PartialEq)]
struct UpdateMeaning {
    withdrawn: Vec<IpNet>,
    nlri: Vec<IpNet>,
    origin: Option<u8>,
    /// (segment type, ASNs) per segment.
    as_path: Option<Vec<(u8, Vec<u32>)>>,
    next_hop: Option<Ipv4Addr>,
    med: Option<u32>,
    local_pref: Option<u32>,
    /// Sorted: zettabgp keeps communities in a set.
    communities: Option<Vec<u32>>,
    large_communities: Option<Vec<(u32, u32, u32)>>,
    mp_reach: Option<MpReachMeaning>,
    mp_unreach: Option<(u16, u8, Vec<IpNet>)>,
}

#[derive(Clone, Debug, Default, PartialEq)]
struct OpenMeaning {
    my_as: u16,
    asn: u32,
    hold_time: u16,
    router_id: Option<Ipv4Addr>,
    families: Vec<(u16, u8)>,
    route_refresh: bool,
    extended_message: Option<bool>,
    four_octet_as: Option<u32>,
    graceful_restart: Option<GracefulRestartMeaning>,
}

fn sorted<T: Ord>(mut v: Vec<T>) -> Vec<T> {
    v.sort();
    v
}

fn as_path_meaning(path: &AsPath) -> Vec<(u8, Vec<u32>)> {
    path.segments
        .iter()
        .map(|s| match s {
            AsSegment::Set(v) => (1, v.clone()),
            AsSegment::Sequence(v) => (2, v.clone()),
            AsSegment::ConfedSequence(v) => (3, v.clone()),
            AsSegment::ConfedSet(v) => (4, v.clone()),
        })
        .collect()
}

/// What we meant, from the value we encoded. `four_octet_as == false` turns large ASNs into
/// AS_TRANS, as the wire does.
fn our_update_meaning(u: &Update, ctx: &CodecContext) -> UpdateMeaning {
    let mut m = UpdateMeaning {
        withdrawn: u.withdrawn.iter().copied().map(IpNet::V4).collect(),
        nlri: u.nlri.iter().copied().map(IpNet::V4).collect(),
        ..UpdateMeaning::default()
    };
    for a in &u.attributes {
        match a {
            PathAttribute::Origin(o) => m.origin = Some(*o as u8),
            PathAttribute::AsPath(p) => {
                let mut p = as_path_meaning(p);
                if !ctx.four_octet_as {
                    for (_, asns) in &mut p {
                        for asn in asns {
                            if *asn > 65535 {
                                *asn = 23456;
                            }
                        }
                    }
                }
                m.as_path = Some(p);
            }
            PathAttribute::NextHop(nh) => m.next_hop = Some(*nh),
            PathAttribute::MultiExitDisc(v) => m.med = Some(*v),
            PathAttribute::LocalPref(v) => m.local_pref = Some(*v),
            PathAttribute::Communities(c) => {
                m.communities = Some(sorted(c.iter().map(|c| c.0).collect()))
            }
            PathAttribute::LargeCommunities(c) => {
                m.large_communities = Some(sorted(
                    c.iter()
                        .map(|c| (c.global_admin, c.local_data1, c.local_data2))
                        .collect(),
                ))
            }
            PathAttribute::MpReach(mp) => {
                let (nh, ll) = match mp.next_hop {
                    NextHop::V4(a) => (IpAddr::V4(a), None),
                    NextHop::V6 { global, link_local } => (IpAddr::V6(global), link_local),
                };
                m.mp_reach = Some((mp.family.afi.0, mp.family.safi.0, nh, ll, mp.nlri.clone()));
            }
            PathAttribute::MpUnreach(mp) => {
                m.mp_unreach = Some((mp.family.afi.0, mp.family.safi.0, mp.withdrawn.clone()))
            }
            other => panic!("the oracle test does not send {other:?}"),
        }
    }
    m
}

// ---------------------------------------------------------------------------------------------
// zettabgp

fn zb_params(four_octet_as: bool) -> zb::BgpSessionParams {
    let mut p = zb::BgpSessionParams::new(
        64512,
        90,
        zb::BgpTransportMode::IPv4,
        Ipv4Addr::new(192, 0, 2, 254),
        Vec::new(),
    );
    p.has_as32bit = four_octet_as;
    // Never guess ADD-PATH path identifiers: we do not send them.
    p.fuzzy_pathid = false;
    p
}

/// zettabgp's header decoder, then the body.
fn zb_split(bytes: &[u8], params: &zb::BgpSessionParams) -> (zb::BgpMessageType, Vec<u8>) {
    let (t, len) = params
        .decode_message_head(bytes)
        .expect("zettabgp reads the header");
    assert_eq!(len + 19, bytes.len(), "zettabgp's length");
    (t, bytes[19..].to_vec())
}

fn zb_nets(addrs: &zb::BgpAddrs) -> Vec<IpNet> {
    match addrs {
        zb::BgpAddrs::None => Vec::new(),
        zb::BgpAddrs::IPV4U(v) => v
            .iter()
            .map(|a| IpNet::V4(Ipv4Net::new(a.addr, a.prefixlen).unwrap()))
            .collect(),
        zb::BgpAddrs::IPV6U(v) => v
            .iter()
            .map(|a| IpNet::V6(ipnet::Ipv6Net::new(a.addr, a.prefixlen).unwrap()))
            .collect(),
        other => panic!("unexpected zettabgp NLRI kind {other:?}"),
    }
}

fn zb_update_meaning(bytes: &[u8], ctx: &CodecContext) -> UpdateMeaning {
    let params = zb_params(ctx.four_octet_as);
    let (t, body) = zb_split(bytes, &params);
    assert_eq!(t, zb::BgpMessageType::Update);
    let mut u = zb::BgpUpdateMessage::new();
    u.decode_from(&params, &body)
        .expect("zettabgp decodes the UPDATE");
    let mut m = UpdateMeaning {
        withdrawn: zb_nets(&u.withdraws),
        nlri: zb_nets(&u.updates),
        ..UpdateMeaning::default()
    };
    for a in &u.attrs {
        match a {
            zb::BgpAttrItem::Origin(o) => {
                m.origin = Some(match o.value {
                    zb::BgpAttrOrigin::Igp => 0,
                    zb::BgpAttrOrigin::Egp => 1,
                    zb::BgpAttrOrigin::Incomplete => 2,
                })
            }
            zb::BgpAttrItem::ASPath(p) => {
                m.as_path = Some(
                    p.value
                        .iter()
                        .map(|item| match item {
                            zb::BgpASitem::Seq(s) => (2, s.value.iter().map(|a| a.value).collect()),
                            zb::BgpASitem::Set(s) => (1, s.value.iter().map(|a| a.value).collect()),
                        })
                        .collect(),
                )
            }
            zb::BgpAttrItem::NextHop(nh) => match nh.value {
                IpAddr::V4(a) => m.next_hop = Some(a),
                IpAddr::V6(a) => panic!("zettabgp read an IPv6 NEXT_HOP {a}"),
            },
            zb::BgpAttrItem::MED(v) => m.med = Some(v.value),
            zb::BgpAttrItem::LocalPref(v) => m.local_pref = Some(v.value),
            zb::BgpAttrItem::CommunityList(c) => {
                m.communities = Some(sorted(c.value.iter().map(|c| c.value).collect()))
            }
            zb::BgpAttrItem::LargeCommunityList(c) => {
                m.large_communities = Some(sorted(
                    c.value.iter().map(|c| (c.ga, c.ldp1, c.ldp2)).collect(),
                ))
            }
            zb::BgpAttrItem::MPUpdates(mp) => {
                let (afi, safi) = mp.addrs.get_afi_safi();
                let nh = match &mp.nexthop {
                    zb::BgpAddr::V4(a) => IpAddr::V4(*a),
                    zb::BgpAddr::V6(a) => IpAddr::V6(*a),
                    other => panic!("unexpected zettabgp next hop {other:?}"),
                };
                // zettabgp cannot express a link-local next hop: it reads the global one only.
                m.mp_reach = Some((afi, safi, nh, None, zb_nets(&mp.addrs)));
            }
            zb::BgpAttrItem::MPWithdraws(mp) => {
                let (afi, safi) = mp.addrs.get_afi_safi();
                m.mp_unreach = Some((afi, safi, zb_nets(&mp.addrs)));
            }
            other => panic!("unexpected zettabgp attribute {other:?}"),
        }
    }
    m
}

fn zb_open_meaning(bytes: &[u8]) -> OpenMeaning {
    let params = zb_params(false);
    let (t, body) = zb_split(bytes, &params);
    assert_eq!(t, zb::BgpMessageType::Open);
    let mut o = zb::BgpOpenMessage::new();
    o.decode_from(&params, &body)
        .expect("zettabgp decodes the OPEN");
    let my_as = u16::try_from(o.as_num).expect("2-octet My AS");
    let mut m = OpenMeaning {
        my_as,
        asn: u32::from(my_as),
        hold_time: o.hold_time,
        router_id: Some(o.router_id),
        // zettabgp does not know the Extended Message capability; it skips it silently.
        extended_message: None,
        ..OpenMeaning::default()
    };
    for c in &o.caps {
        match c {
            zb::BgpCapability::CapRR => m.route_refresh = true,
            zb::BgpCapability::CapASN32(asn) => {
                m.four_octet_as = Some(*asn);
                m.asn = *asn;
            }
            zb::BgpCapability::CapGR {
                restart_time,
                restart_state,
                afis,
            } => {
                // zettabgp has no N bit (RFC 8538).
                m.graceful_restart = Some((
                    *restart_state,
                    None,
                    *restart_time,
                    afis.iter()
                        .map(|f| (f.afi, f.safi, f.forwarding_state))
                        .collect(),
                ))
            }
            other => match other.afi_safi() {
                Some(f) => m.families.push(f),
                None => panic!("unexpected zettabgp capability {other:?}"),
            },
        }
    }
    m
}

// ---------------------------------------------------------------------------------------------
// netgauze

fn ng_ctx(four_octet_as: bool) -> ng::wire::deserializer::BgpParsingContext {
    ng::wire::deserializer::BgpParsingContext::new(
        four_octet_as,
        HashMap::new(),
        HashMap::new(),
        true,
        true,
        true,
        true,
    )
}

fn ng_decode(bytes: &[u8], ctx: &CodecContext) -> ng::BgpMessage {
    let mut reader = SliceReader::new(bytes);
    let mut pctx = ng_ctx(ctx.four_octet_as);
    let m = ng::BgpMessage::parse(&mut reader, &mut pctx).expect("netgauze decodes the message");
    assert_eq!(reader.remaining(), 0, "netgauze consumed the whole message");
    m
}

fn ng_family(at: netgauze_iana::address_family::AddressType) -> (u16, u8) {
    (
        u16::from(at.address_family()),
        u8::from(at.subsequent_address_family()),
    )
}

fn ng_update_meaning(bytes: &[u8], ctx: &CodecContext) -> UpdateMeaning {
    let ng::BgpMessage::Update(u) = ng_decode(bytes, ctx) else {
        panic!("netgauze: not an UPDATE")
    };
    use ng::path_attribute::{MpReach as NgReach, MpUnreach as NgUnreach, PathAttributeValue as V};
    let v4 = |a: &ng::nlri::Ipv4UnicastAddress| IpNet::V4(a.network().address());
    let v6 = |a: &ng::nlri::Ipv6UnicastAddress| IpNet::V6(a.network().address());
    let mut m = UpdateMeaning {
        withdrawn: u.withdraw_routes().iter().map(v4).collect(),
        nlri: u.nlri().iter().map(v4).collect(),
        ..UpdateMeaning::default()
    };
    for a in u.path_attributes() {
        // Independent check of the flags we send: never Partial on what we originate.
        assert!(!a.partial(), "Partial bit set on {a:?}");
        match a.value() {
            V::Origin(o) => m.origin = Some(*o as u8),
            V::AsPath(ng::path_attribute::AsPath::As2PathSegments(segs)) => {
                m.as_path = Some(
                    segs.iter()
                        .map(|s| {
                            (
                                s.segment_type() as u8,
                                s.as_numbers().iter().map(|&a| u32::from(a)).collect(),
                            )
                        })
                        .collect(),
                )
            }
            V::AsPath(ng::path_attribute::AsPath::As4PathSegments(segs)) => {
                m.as_path = Some(
                    segs.iter()
                        .map(|s| (s.segment_type() as u8, s.as_numbers().to_vec()))
                        .collect(),
                )
            }
            V::NextHop(nh) => m.next_hop = Some(nh.next_hop()),
            V::MultiExitDiscriminator(v) => m.med = Some(v.metric()),
            V::LocalPreference(v) => m.local_pref = Some(v.metric()),
            V::Communities(c) => {
                m.communities = Some(sorted(c.communities().iter().map(|c| c.value()).collect()))
            }
            V::LargeCommunities(c) => {
                m.large_communities = Some(sorted(
                    c.communities()
                        .iter()
                        .map(|c| (c.global_admin(), c.local_data1(), c.local_data2()))
                        .collect(),
                ))
            }
            V::MpReach(NgReach::Ipv4Unicast {
                next_hop,
                next_hop_local,
                nlri,
            }) => {
                m.mp_reach = Some((
                    1,
                    1,
                    *next_hop,
                    *next_hop_local,
                    nlri.iter().map(v4).collect(),
                ))
            }
            V::MpReach(NgReach::Ipv6Unicast {
                next_hop_global,
                next_hop_local,
                nlri,
            }) => {
                m.mp_reach = Some((
                    2,
                    1,
                    IpAddr::V6(*next_hop_global),
                    *next_hop_local,
                    nlri.iter().map(v6).collect(),
                ))
            }
            V::MpUnreach(NgUnreach::Ipv4Unicast { nlri }) => {
                m.mp_unreach = Some((1, 1, nlri.iter().map(v4).collect()))
            }
            V::MpUnreach(NgUnreach::Ipv6Unicast { nlri }) => {
                m.mp_unreach = Some((2, 1, nlri.iter().map(v6).collect()))
            }
            other => panic!("unexpected netgauze attribute {other:?}"),
        }
    }
    m
}

fn ng_open_meaning(bytes: &[u8]) -> OpenMeaning {
    let ng::BgpMessage::Open(o) = ng_decode(bytes, &CodecContext::default()) else {
        panic!("netgauze: not an OPEN")
    };
    assert_eq!(o.version(), 4);
    let mut m = OpenMeaning {
        my_as: o.my_as(),
        asn: o.my_asn4(),
        hold_time: o.hold_time(),
        router_id: Some(o.bgp_id()),
        extended_message: Some(false),
        ..OpenMeaning::default()
    };
    use ng::capabilities::BgpCapability as C;
    for c in o.capabilities() {
        match c {
            C::MultiProtocolExtensions(mp) => m.families.push(ng_family(mp.address_type())),
            C::RouteRefresh => m.route_refresh = true,
            C::ExtendedMessage => m.extended_message = Some(true),
            C::FourOctetAs(a) => m.four_octet_as = Some(a.asn4()),
            C::GracefulRestartCapability(gr) => {
                m.graceful_restart = Some((
                    gr.restart(),
                    Some(gr.graceful_notification()),
                    gr.time(),
                    gr.address_families()
                        .iter()
                        .map(|f| {
                            let (afi, safi) = ng_family(f.address_type());
                            (afi, safi, f.forwarding_state())
                        })
                        .collect(),
                ))
            }
            other => panic!("unexpected netgauze capability {other:?}"),
        }
    }
    m
}

/// (code, subcode, data) as netgauze sees a NOTIFICATION.
fn ng_notification(bytes: &[u8]) -> (u8, u8, Vec<u8>) {
    let ng::BgpMessage::Notification(n) = ng_decode(bytes, &CodecContext::default()) else {
        panic!("netgauze: not a NOTIFICATION")
    };
    use ng::notification::{
        BgpNotificationMessage as N, CeaseError as Ce, HoldTimerExpiredError as H,
        UpdateMessageError as U,
    };
    let (code, sub, v): (u8, u8, &[u8]) = match &n {
        N::CeaseError(Ce::MaximumNumberOfPrefixesReached { value }) => (6, 1, value),
        N::CeaseError(Ce::AdministrativeShutdown { value }) => (6, 2, value),
        N::CeaseError(Ce::PeerDeConfigured { value }) => (6, 3, value),
        N::CeaseError(Ce::AdministrativeReset { value }) => (6, 4, value),
        N::CeaseError(Ce::OtherConfigurationChange { value }) => (6, 6, value),
        N::CeaseError(Ce::HardReset { value }) => (6, 9, value),
        N::HoldTimerExpiredError(H::Unspecific { sub_code, value }) => (4, *sub_code, value),
        N::UpdateMessageError(U::MalformedAsPath { value }) => (3, 11, value),
        N::UpdateMessageError(U::OptionalAttributeError { value }) => (3, 9, value),
        other => panic!("the oracle test does not send {other:?}"),
    };
    (code, sub, v.to_vec())
}

// ---------------------------------------------------------------------------------------------
// The checks

fn ctx(four_octet_as: bool) -> CodecContext {
    CodecContext {
        four_octet_as,
        ..CodecContext::default()
    }
}

/// Encodes `u`, decodes it with both oracles, and compares all three meanings.
fn check_update(u: &Update, ctx: &CodecContext) {
    let bytes = Message::Update(u.clone()).encode(ctx).expect("encodes");
    let ours = our_update_meaning(u, ctx);
    let ng = ng_update_meaning(&bytes, ctx);
    assert_eq!(ng, ours, "netgauze");
    let zb = zb_update_meaning(&bytes, ctx);
    let mut ours_for_zb = ours.clone();
    if let Some(r) = &mut ours_for_zb.mp_reach {
        // zettabgp cannot express the link-local next hop (netgauze checked it above).
        r.3 = None;
    }
    assert_eq!(zb, ours_for_zb, "zettabgp");
    // And ours, of course (through the same lens, since a 2-octet AS_PATH loses large ASNs).
    let Message::Update(back) = Message::decode(&bytes, ctx).expect("decodes") else {
        panic!("not an UPDATE")
    };
    assert!(back.recovered_errors.is_empty());
    assert_eq!(our_update_meaning(&back, ctx), ours, "ours");
}

fn check_open(o: &Open) {
    let bytes = Message::Open(o.clone())
        .encode(&CodecContext::default())
        .expect("encodes");
    let mut ours = OpenMeaning {
        my_as: o.my_as,
        asn: o.asn(),
        hold_time: o.hold_time,
        router_id: Some(o.router_id),
        extended_message: Some(o.has_capability(6)),
        route_refresh: o.has_capability(2),
        families: o.families().iter().map(|f| (f.afi.0, f.safi.0)).collect(),
        four_octet_as: o.capabilities.iter().find_map(|c| match c {
            Capability::FourOctetAs(a) => Some(*a),
            _ => None,
        }),
        graceful_restart: o.graceful_restart().map(|gr| {
            (
                gr.restart_state,
                Some(gr.notification),
                gr.restart_time,
                gr.families
                    .iter()
                    .map(|f| (f.family.afi.0, f.family.safi.0, f.forwarding_preserved))
                    .collect(),
            )
        }),
    };
    assert_eq!(ng_open_meaning(&bytes), ours, "netgauze");
    // zettabgp: no Extended Message capability, no N bit.
    ours.extended_message = None;
    if let Some(gr) = &mut ours.graceful_restart {
        gr.1 = None;
    }
    assert_eq!(zb_open_meaning(&bytes), ours, "zettabgp");
    assert_eq!(
        Message::decode(&bytes, &CodecContext::default()).unwrap(),
        Message::Open(o.clone())
    );
}

fn v4(s: &str) -> Ipv4Net {
    s.parse().unwrap()
}

fn net(s: &str) -> IpNet {
    s.parse().unwrap()
}

const OUR_ASN: u32 = 4200000001;

fn ebgp_attrs(next_hop: Option<Ipv4Addr>) -> Vec<PathAttribute> {
    let mut v = vec![
        PathAttribute::Origin(Origin::Igp),
        PathAttribute::AsPath(AsPath {
            segments: vec![AsSegment::Sequence(vec![OUR_ASN])],
        }),
    ];
    v.extend(next_hop.map(PathAttribute::NextHop));
    v
}

fn ibgp_attrs(next_hop: Option<Ipv4Addr>) -> Vec<PathAttribute> {
    let mut v = vec![
        PathAttribute::Origin(Origin::Igp),
        PathAttribute::AsPath(AsPath::default()),
    ];
    v.extend(next_hop.map(PathAttribute::NextHop));
    v.push(PathAttribute::LocalPref(200));
    v
}

const NH4: Ipv4Addr = Ipv4Addr::new(192, 0, 2, 10);

#[test]
fn our_open_means_the_same_to_both_oracles() {
    for asn in [64512, OUR_ASN] {
        let open = Open::new(
            asn,
            90,
            Ipv4Addr::new(192, 0, 2, 10),
            vec![
                Capability::Multiprotocol(Family::IPV4_UNICAST),
                Capability::Multiprotocol(Family::IPV6_UNICAST),
                Capability::RouteRefresh,
                Capability::ExtendedMessage,
                Capability::GracefulRestart(GracefulRestart {
                    restart_state: true,
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
                Capability::FourOctetAs(asn),
            ],
        );
        check_open(&open);
    }
}

#[test]
fn minimal_open_with_hold_time_zero_means_the_same_to_both_oracles() {
    check_open(&Open::new(
        65001,
        0,
        Ipv4Addr::new(10, 0, 0, 1),
        vec![Capability::Multiprotocol(Family::IPV4_UNICAST)],
    ));
}

#[test]
fn ebgp_update_with_ipv4_nlri_and_next_hop_means_the_same_to_both_oracles() {
    for four in [true, false] {
        let u = Update {
            attributes: ebgp_attrs(Some(NH4)),
            nlri: vec![
                v4("198.51.100.7/32"),
                v4("203.0.113.0/24"),
                v4("10.0.0.0/8"),
            ],
            ..Update::default()
        };
        check_update(&u, &ctx(four));
    }
}

#[test]
fn ibgp_update_with_local_pref_and_empty_as_path_means_the_same_to_both_oracles() {
    let u = Update {
        attributes: ibgp_attrs(Some(NH4)),
        nlri: vec![v4("198.51.100.8/32")],
        ..Update::default()
    };
    check_update(&u, &ctx(true));
    check_update(&u, &ctx(false));
}

#[test]
fn update_with_med_communities_and_large_communities_means_the_same_to_both_oracles() {
    let mut attributes = ebgp_attrs(Some(NH4));
    attributes.push(PathAttribute::MultiExitDisc(10));
    attributes.push(PathAttribute::Communities(vec![
        Community::new(64512, 100),
        Community::NO_EXPORT,
        Community::GRACEFUL_SHUTDOWN,
    ]));
    attributes.push(PathAttribute::LargeCommunities(vec![
        LargeCommunity {
            global_admin: OUR_ASN,
            local_data1: 1,
            local_data2: 2,
        },
        LargeCommunity {
            global_admin: 64512,
            local_data1: 0,
            local_data2: 4294967295,
        },
    ]));
    let u = Update {
        attributes,
        nlri: vec![v4("198.51.100.9/32")],
        ..Update::default()
    };
    check_update(&u, &ctx(true));
    check_update(&u, &ctx(false));
}

#[test]
fn ebgp_update_with_2_octet_asns_carries_as_trans_to_both_oracles() {
    let u = Update {
        attributes: ebgp_attrs(Some(NH4)),
        nlri: vec![v4("198.51.100.7/32")],
        ..Update::default()
    };
    // our_update_meaning maps 4200000001 to 23456 for the 2-octet context.
    check_update(&u, &ctx(false));
}

#[test]
fn mp_reach_ipv6_with_16_octet_next_hop_means_the_same_to_both_oracles() {
    let mut attributes = ebgp_attrs(None);
    attributes.push(PathAttribute::MpReach(MpReach {
        family: Family::IPV6_UNICAST,
        next_hop: NextHop::V6 {
            global: "2001:db8::10".parse().unwrap(),
            link_local: None,
        },
        nlri: vec![net("2001:db8:1::/48"), net("2001:db8:2::1/128")],
    }));
    check_update(
        &Update {
            attributes,
            ..Update::default()
        },
        &ctx(true),
    );
}

#[test]
fn mp_reach_ipv6_with_32_octet_next_hop_means_the_same_to_both_oracles() {
    let mut attributes = ibgp_attrs(None);
    attributes.push(PathAttribute::MpReach(MpReach {
        family: Family::IPV6_UNICAST,
        next_hop: NextHop::V6 {
            global: "2001:db8::10".parse().unwrap(),
            link_local: Some("fe80::10".parse().unwrap()),
        },
        nlri: vec![net("2001:db8:3::1/128")],
    }));
    check_update(
        &Update {
            attributes,
            ..Update::default()
        },
        &ctx(true),
    );
}

#[test]
fn mp_reach_ipv4_over_ipv6_session_style_means_the_same_to_both_oracles() {
    // IPv4 NLRI in MP_REACH with an IPv4 next hop (how ferrolb sends IPv4 over MP-BGP).
    let mut attributes = ebgp_attrs(None);
    attributes.push(PathAttribute::MpReach(MpReach {
        family: Family::IPV4_UNICAST,
        next_hop: NextHop::V4(NH4),
        nlri: vec![net("198.51.100.0/24")],
    }));
    check_update(
        &Update {
            attributes,
            ..Update::default()
        },
        &ctx(true),
    );
}

#[test]
fn mp_unreach_ipv6_means_the_same_to_both_oracles() {
    let u = Update {
        attributes: vec![PathAttribute::MpUnreach(MpUnreach {
            family: Family::IPV6_UNICAST,
            withdrawn: vec![net("2001:db8:1::/48"), net("2001:db8:2::1/128")],
        })],
        ..Update::default()
    };
    check_update(&u, &ctx(true));
}

#[test]
fn ipv4_withdrawals_mean_the_same_to_both_oracles() {
    let u = Update {
        withdrawn: vec![v4("198.51.100.7/32"), v4("10.0.0.0/8")],
        ..Update::default()
    };
    check_update(&u, &ctx(true));
}

#[test]
fn end_of_rib_means_end_of_rib_to_both_oracles() {
    for family in [Family::IPV4_UNICAST, Family::IPV6_UNICAST] {
        let u = Update::end_of_rib(family);
        check_update(&u, &ctx(true));
        let bytes = Message::Update(u).encode(&ctx(true)).unwrap();
        let ng::BgpMessage::Update(n) = ng_decode(&bytes, &ctx(true)) else {
            panic!()
        };
        let eor = n.end_of_rib().map(ng_family);
        assert_eq!(
            eor,
            Some((family.afi.0, family.safi.0)),
            "netgauze end_of_rib()"
        );
    }
}

#[test]
fn keepalive_means_keepalive_to_both_oracles() {
    let bytes = Message::Keepalive.encode(&CodecContext::default()).unwrap();
    assert_eq!(
        ng_decode(&bytes, &CodecContext::default()),
        ng::BgpMessage::KeepAlive
    );
    let (t, body) = zb_split(&bytes, &zb_params(false));
    assert_eq!(t, zb::BgpMessageType::Keepalive);
    assert!(body.is_empty());
}

#[test]
fn route_refresh_means_the_same_to_both_oracles() {
    for family in [Family::IPV4_UNICAST, Family::IPV6_UNICAST] {
        let bytes = Message::RouteRefresh(RouteRefresh { family, subtype: 0 })
            .encode(&CodecContext::default())
            .unwrap();
        let ng::BgpMessage::RouteRefresh(r) = ng_decode(&bytes, &CodecContext::default()) else {
            panic!()
        };
        assert_eq!(ng_family(r.address_type()), (family.afi.0, family.safi.0));
        assert_eq!(r.operation_type() as u8, 0);
        let params = zb_params(false);
        let (t, body) = zb_split(&bytes, &params);
        assert_eq!(t, zb::BgpMessageType::Routerefresh);
        let mut z = zb::BgpRouterefreshMessage::new();
        z.decode_from(&params, &body).unwrap();
        assert_eq!((z.afi, z.safi, z.subtype), (family.afi.0, family.safi.0, 0));
    }
}

#[test]
fn notifications_mean_the_same_to_both_oracles() {
    let cases = [
        Notification::cease(
            cease_subcode::ADMINISTRATIVE_SHUTDOWN,
            Some("maintenance window"),
        ),
        Notification::cease(cease_subcode::ADMINISTRATIVE_RESET, Some("")),
        Notification::cease(cease_subcode::PEER_DECONFIGURED, None),
        Notification::new(4, 0, Vec::new()),
        Notification::new(3, 11, Vec::new()),
        Notification::new(3, 9, vec![0x80, 0x0f, 0x00]),
    ];
    for n in cases {
        let bytes = Message::Notification(n.clone())
            .encode(&CodecContext::default())
            .unwrap();
        assert_eq!(
            ng_notification(&bytes),
            (n.code, n.subcode, n.data.clone()),
            "netgauze {n}"
        );
        let params = zb_params(false);
        let (t, body) = zb_split(&bytes, &params);
        assert_eq!(t, zb::BgpMessageType::Notification);
        let mut z = zb::BgpNotificationMessage::new();
        z.decode_from(&params, &body).unwrap();
        // zettabgp keeps only the first two data octets, as a u16.
        let first_two = match n.data.as_slice() {
            [] => 0,
            [a] => u16::from(*a),
            [a, b, ..] => u16::from_be_bytes([*a, *b]),
        };
        assert_eq!(
            (z.error_code, z.error_subcode, z.data),
            (n.code, n.subcode, first_two),
            "zettabgp {n}"
        );
    }
}

#[test]
fn extended_message_update_means_the_same_to_netgauze() {
    // zettabgp has no RFC 8654 support (no capability, its buffers stop at 4096 in places), so
    // only netgauze checks an UPDATE over 4096 octets.
    let ext = CodecContext {
        four_octet_as: true,
        max_message_len: MAX_EXTENDED_MESSAGE_LEN,
        ..CodecContext::default()
    };
    let nlri: Vec<Ipv4Net> = (0..2000u32)
        .map(|i| Ipv4Net::new(Ipv4Addr::from(0x0a00_0000 + i), 32).unwrap())
        .collect();
    let u = Update {
        attributes: ebgp_attrs(Some(NH4)),
        nlri,
        ..Update::default()
    };
    let bytes = Message::Update(u.clone()).encode(&ext).unwrap();
    assert!(bytes.len() > 4096);
    assert_eq!(
        ng_update_meaning(&bytes, &ext),
        our_update_meaning(&u, &ext)
    );
}
