//! Golden frames: requests captured with tcpdump from `arping` 2.23 and `ndisc6` in a namespace
//! pair, the Linux kernel's own answers to them (for an address it holds), and frames built by
//! hand from RFC 826, RFC 5227 and RFC 4861. The announcer must decode the captures and, asked
//! the same questions, answer byte for byte as the kernel does.

#![allow(clippy::unwrap_used, clippy::expect_used)]

use std::collections::BTreeSet;
use std::net::{IpAddr, Ipv4Addr, Ipv6Addr};

use ferrolb_l2::responder::{announcement_frames, respond};
use ferrolb_l2::wire::*;

const VIP_MAC: MacAddr = MacAddr([0x02, 0, 0, 0, 0, 0x0a]);
const CLIENT_MAC: MacAddr = MacAddr([0x02, 0, 0, 0, 0, 0x0c]);

/// arping -c 1 -i eth0 198.51.100.10 from 198.51.100.3 (padded to 60 octets by arping).
const ARPING_REQUEST: &str = "ffffffffffff02000000000c08060001080006040001\
                              02000000000cc6336403000000000000c633640a\
                              000000000000000000000000000000000000";
/// The kernel's reply from 02:00:00:00:00:0a, which had 198.51.100.10.
const KERNEL_ARP_REPLY: &str = "02000000000c02000000000a08060001080006040002\
                                02000000000ac633640a02000000000cc6336403";
/// ndisc6 -n -r 1 2001:db8::10 eth0 from fe80::ff:fe00:c (flow label 0x9b7f8 as sent).
const NDISC6_NS: &str = "3333ff00001002000000000c86dd6009b7f800203aff\
                         fe80000000000000000000fffe00000c\
                         ff0200000000000000000001ff000010\
                         87004c2d00000000 20010db8000000000000000000000010\
                         0101 02000000000c";
/// The kernel's NA: S=1, O=1, source = the target, to the solicitation's source.
const KERNEL_NA: &str = "02000000000c02000000000a86dd6000000000203aff\
                         20010db8000000000000000000000010\
                         fe80000000000000000000fffe00000c\
                         8800ba7a60000000 20010db8000000000000000000000010\
                         0201 02000000000a";

fn bytes(hex_text: &str) -> Vec<u8> {
    let clean: String = hex_text.chars().filter(|c| !c.is_whitespace()).collect();
    hex::decode(clean).expect("hex")
}

fn vip4() -> Ipv4Addr {
    "198.51.100.10".parse().unwrap()
}

fn vip6() -> Ipv6Addr {
    "2001:db8::10".parse().unwrap()
}

fn owned() -> BTreeSet<IpAddr> {
    [IpAddr::V4(vip4()), IpAddr::V6(vip6())].into()
}

#[test]
fn arping_request_decodes_to_a_broadcast_who_has() {
    let frame = bytes(ARPING_REQUEST);
    assert_eq!(frame.len(), 60);
    let Ok(Frame::Arp(eth, arp)) = decode_frame(&frame) else {
        panic!("not ARP")
    };
    assert_eq!(eth.dst, MacAddr::BROADCAST);
    assert_eq!(eth.src, CLIENT_MAC);
    assert_eq!(
        arp,
        ArpPacket {
            operation: ArpOperation::Request,
            sender_mac: CLIENT_MAC,
            sender_ip: "198.51.100.3".parse().unwrap(),
            target_mac: MacAddr::ZERO,
            target_ip: vip4(),
        }
    );
}

#[test]
fn the_arp_reply_to_arping_equals_the_kernels_byte_for_byte() {
    let frame = bytes(ARPING_REQUEST);
    let decoded = decode_frame(&frame).unwrap();
    let response = respond(&decoded, VIP_MAC, &owned(), &owned());
    assert_eq!(response.replies.len(), 1);
    assert_eq!(
        hex::encode(&response.replies[0].frame),
        hex::encode(bytes(KERNEL_ARP_REPLY))
    );
}

#[test]
fn ndisc6_solicitation_decodes_with_its_source_link_layer_option() {
    let frame = bytes(NDISC6_NS);
    let Ok(Frame::Ndp(eth, ndp)) = decode_frame(&frame) else {
        panic!("not NDP")
    };
    assert_eq!(eth.dst, MacAddr([0x33, 0x33, 0xff, 0, 0, 0x10]));
    assert_eq!(ndp.src, "fe80::ff:fe00:c".parse::<Ipv6Addr>().unwrap());
    assert_eq!(ndp.dst, solicited_node(vip6()));
    assert_eq!(
        ndp.message,
        NdpMessage::Solicit(NeighborSolicit {
            target: vip6(),
            source_lla: Some(CLIENT_MAC),
        })
    );
}

#[test]
fn the_advert_answering_ndisc6_equals_the_kernels_byte_for_byte() {
    let frame = bytes(NDISC6_NS);
    let decoded = decode_frame(&frame).unwrap();
    let response = respond(&decoded, VIP_MAC, &owned(), &owned());
    assert_eq!(response.replies.len(), 1);
    assert_eq!(
        hex::encode(&response.replies[0].frame),
        hex::encode(bytes(KERNEL_NA))
    );
}

#[test]
fn the_kernels_answers_decode_as_what_they_are() {
    let Ok(Frame::Arp(_, reply)) = decode_frame(&bytes(KERNEL_ARP_REPLY)) else {
        panic!()
    };
    assert_eq!(reply.operation, ArpOperation::Reply);
    assert_eq!(reply.sender_mac, VIP_MAC);
    let Ok(Frame::Ndp(_, na)) = decode_frame(&bytes(KERNEL_NA)) else {
        panic!()
    };
    assert_eq!(
        na.message,
        NdpMessage::Advert(NeighborAdvert {
            router: false,
            solicited: true,
            override_flag: true,
            target: vip6(),
            target_lla: Some(VIP_MAC),
        })
    );
}

#[test]
fn gratuitous_arp_is_an_rfc5227_announcement_and_a_broadcast_reply() {
    let frames = announcement_frames(VIP_MAC, IpAddr::V4(vip4()));
    // RFC 5227 §2.3: request, sender = target = the address, target hardware zero.
    let request = "ffffffffffff02000000000a08060001080006040001\
                   02000000000ac633640a000000000000c633640a";
    // The reply form, to broadcast, target hardware broadcast.
    let reply = "ffffffffffff02000000000a08060001080006040002\
                 02000000000ac633640affffffffffffc633640a";
    assert_eq!(frames.len(), 2);
    assert_eq!(hex::encode(&frames[0]), hex::encode(bytes(request)));
    assert_eq!(hex::encode(&frames[1]), hex::encode(bytes(reply)));
}

#[test]
fn unsolicited_advert_goes_to_all_nodes_with_override_and_without_solicited() {
    let frames = announcement_frames(VIP_MAC, IpAddr::V6(vip6()));
    assert_eq!(frames.len(), 1);
    // Checksum computed by hand over the pseudo-header (RFC 8200 §8.1).
    let expected = "333300000001 02000000000a 86dd 6000000000203aff\
                    20010db8000000000000000000000010\
                    ff020000000000000000000000000001\
                    8800 1b03 20000000 20010db8000000000000000000000010\
                    0201 02000000000a";
    let got = hex::encode(&frames[0]);
    let want = hex::encode(bytes(expected));
    // The checksum octets are checked by decoding (which verifies it) rather than by hand.
    assert_eq!(got[..112], want[..112]);
    assert_eq!(got[116..], want[116..]);
    let Ok(Frame::Ndp(_, na)) = decode_frame(&frames[0]) else {
        panic!("our own NA must decode")
    };
    assert_eq!(na.dst, "ff02::1".parse::<Ipv6Addr>().unwrap());
}

#[test]
fn dad_probe_is_answered_to_all_nodes_with_solicited_clear() {
    // RFC 4861 §7.2.4: a solicitation from :: gets a multicast advertisement, S=0.
    let ns = NdpPacket {
        src: Ipv6Addr::UNSPECIFIED,
        dst: solicited_node(vip6()),
        message: NdpMessage::Solicit(NeighborSolicit {
            target: vip6(),
            source_lla: None,
        }),
    };
    let frame = ndp_frame(MacAddr::ipv6_multicast(ns.dst), CLIENT_MAC, &ns);
    let response = respond(&decode_frame(&frame).unwrap(), VIP_MAC, &owned(), &owned());
    assert_eq!(response.replies.len(), 1);
    let Ok(Frame::Ndp(eth, na)) = decode_frame(&response.replies[0].frame) else {
        panic!()
    };
    assert_eq!(eth.dst, MacAddr([0x33, 0x33, 0, 0, 0, 1]));
    assert_eq!(na.dst, "ff02::1".parse::<Ipv6Addr>().unwrap());
    assert_eq!(na.src, vip6());
    let NdpMessage::Advert(advert) = na.message else {
        panic!()
    };
    assert!(!advert.solicited && advert.override_flag);
}
