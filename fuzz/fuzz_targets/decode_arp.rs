//! Fuzz target for the ARP decoder and the responder's ARP decisions: `decode_frame` on an ARP
//! frame must never panic; whatever decodes must encode to the same 28 octets it was read
//! from, and answering it must never panic and only ever produce frames that decode again.

#![no_main]

use std::collections::BTreeSet;
use std::net::IpAddr;

use ferrolb_l2::responder::respond;
use ferrolb_l2::wire::{ETHERTYPE_ARP, Frame, MacAddr, decode_frame};
use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    // The harness supplies the Ethernet header so the fuzzer's effort goes into the ARP body.
    let mut frame = Vec::with_capacity(14 + data.len());
    frame.extend_from_slice(&[0xff; 6]);
    frame.extend_from_slice(&[2, 0, 0, 0, 0, 0x0c]);
    frame.extend_from_slice(&ETHERTYPE_ARP.to_be_bytes());
    frame.extend_from_slice(data);
    let Ok(decoded) = decode_frame(&frame) else {
        return;
    };
    let Frame::Arp(_, packet) = &decoded else {
        panic!("ARP EtherType decoded as {decoded:?}")
    };
    assert_eq!(&packet.encode()[..], &data[..28]);
    let owned: BTreeSet<IpAddr> =
        [IpAddr::V4(packet.target_ip), IpAddr::V4(packet.sender_ip)].into();
    let response = respond(&decoded, MacAddr([2, 0, 0, 0, 0, 0x0a]), &owned, &owned);
    for reply in response.replies {
        assert!(decode_frame(&reply.frame).is_ok());
    }
});
