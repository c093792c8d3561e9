//! Fuzz target for the NS/NA decoder and the responder's NDP decisions. Input: the IPv6 packet
//! after an Ethernet header the harness adds. The first octet, when the input is long enough,
//! is replaced by a valid ICMPv6 checksum half the time (its low bit chooses), so that the
//! fuzzer reaches the option parser instead of stopping at the checksum.
//! Must never panic; whatever decodes must re-encode and decode to the same packet; replies
//! must decode.

#![no_main]

use std::collections::BTreeSet;
use std::net::{IpAddr, Ipv6Addr};

use ferrolb_l2::responder::respond;
use ferrolb_l2::wire::ndp::icmpv6_checksum;
use ferrolb_l2::wire::{ETHERTYPE_IPV6, Frame, MacAddr, NdpPacket, decode_frame};
use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    let Some((&mode, rest)) = data.split_first() else {
        return;
    };
    let mut ip = rest.to_vec();
    if mode & 1 == 1 && ip.len() >= 44 {
        let src = Ipv6Addr::from(<[u8; 16]>::try_from(&ip[8..24]).unwrap());
        let dst = Ipv6Addr::from(<[u8; 16]>::try_from(&ip[24..40]).unwrap());
        let len = usize::from(u16::from_be_bytes([ip[4], ip[5]])).min(ip.len() - 40);
        let sum = icmpv6_checksum(src, dst, &ip[40..40 + len], true);
        ip[42..44].copy_from_slice(&sum.to_be_bytes());
    }
    let mut frame = Vec::with_capacity(14 + ip.len());
    frame.extend_from_slice(&[0x33, 0x33, 0xff, 0, 0, 1]);
    frame.extend_from_slice(&[2, 0, 0, 0, 0, 0x0c]);
    frame.extend_from_slice(&ETHERTYPE_IPV6.to_be_bytes());
    frame.extend_from_slice(&ip);
    let Ok(decoded) = decode_frame(&frame) else {
        return;
    };
    let Frame::Ndp(_, packet) = &decoded else {
        panic!("IPv6 EtherType decoded as {decoded:?}")
    };
    assert_eq!(NdpPacket::decode(&packet.encode()), Ok(*packet));
    let owned: BTreeSet<IpAddr> =
        [IpAddr::V6(packet.message.target()), IpAddr::V6(packet.src)].into();
    let response = respond(&decoded, MacAddr([2, 0, 0, 0, 0, 0x0a]), &owned, &owned);
    for reply in response.replies {
        assert!(
            decode_frame(&reply.frame).is_ok(),
            "our reply does not decode"
        );
    }
});
