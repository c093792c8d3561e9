//! The strict, total codec for every frame the announcer reads or writes: Ethernet II framing,
//! ARP for IPv4 over Ethernet ([`arp`]), IPv6 Neighbor Solicitation and Advertisement
//! ([`ndp`]), and the authenticated heartbeat frame ([`heartbeat`]).
//!
//! Decoders take bytes straight off an AF_PACKET socket and either return a typed packet or a
//! precise error; they never panic, allocate in proportion to attacker-chosen lengths, or accept
//! something the RFCs say a receiver must discard. Encoders produce complete Ethernet frames
//! (without the FCS, which the NIC adds, and without padding to 60 octets, which the driver adds,
//! as the kernel's own ARP does). What to answer, and when, is not decided here: see
//! `responder` and `node`.

pub mod arp;
pub mod heartbeat;
pub mod ndp;

use std::fmt;
use std::net::Ipv6Addr;
use std::str::FromStr;

pub use arp::{ArpError, ArpOperation, ArpPacket};
pub use heartbeat::{
    Beat, BeatClaim, BeatEcho, HeartbeatError, HeartbeatKey, HeartbeatPart, MAX_NODE_ID_LEN,
    MAX_SEGMENT_LEN,
};
pub use ndp::{NdpError, NdpMessage, NdpPacket, NeighborAdvert, NeighborSolicit};

/// EtherType of ARP (RFC 826).
pub const ETHERTYPE_ARP: u16 = 0x0806;
/// EtherType of IPv6 (RFC 8200).
pub const ETHERTYPE_IPV6: u16 = 0x86dd;
/// EtherType of the announcers' heartbeats: IEEE Std 802 "local experimental" 88-B5, meant for
/// protocols that never leave a site; it needs no registration and no IP address on the link.
pub const ETHERTYPE_HEARTBEAT: u16 = 0x88b5;
/// Octets in an untagged Ethernet II header.
pub const ETHERNET_HEADER_LEN: usize = 14;

/// A 48-bit IEEE 802 MAC address.
#[derive(Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord, Default)]
pub struct MacAddr(pub [u8; 6]);

impl MacAddr {
    pub const BROADCAST: MacAddr = MacAddr([0xff; 6]);
    pub const ZERO: MacAddr = MacAddr([0; 6]);

    /// The group bit (I/G) is set: multicast or broadcast.
    pub fn is_multicast(&self) -> bool {
        self.0[0] & 0x01 != 0
    }

    pub fn is_broadcast(&self) -> bool {
        *self == MacAddr::BROADCAST
    }

    /// Neither multicast nor all zeros: an address a host can have.
    pub fn is_unicast(&self) -> bool {
        !self.is_multicast() && *self != MacAddr::ZERO
    }

    /// The Ethernet multicast address an IPv6 multicast address maps to (RFC 2464 §7):
    /// 33:33 followed by the last four octets of the address.
    pub fn ipv6_multicast(group: Ipv6Addr) -> MacAddr {
        let o = group.octets();
        MacAddr([0x33, 0x33, o[12], o[13], o[14], o[15]])
    }
}

impl fmt::Display for MacAddr {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let o = self.0;
        write!(
            f,
            "{:02x}:{:02x}:{:02x}:{:02x}:{:02x}:{:02x}",
            o[0], o[1], o[2], o[3], o[4], o[5]
        )
    }
}

impl fmt::Debug for MacAddr {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        fmt::Display::fmt(self, f)
    }
}

/// A MAC address that does not parse as six colon-separated hex octets.
#[derive(Clone, Debug, PartialEq, Eq, thiserror::Error)]
#[error("{0:?} is not a MAC address (expected six hex octets separated by colons)")]
pub struct MacAddrParseError(pub String);

impl FromStr for MacAddr {
    type Err = MacAddrParseError;

    fn from_str(s: &str) -> Result<MacAddr, MacAddrParseError> {
        let err = || MacAddrParseError(s.to_string());
        let mut out = [0u8; 6];
        let mut parts = s.split(':');
        for slot in &mut out {
            let part = parts.next().ok_or_else(err)?;
            if part.is_empty() || part.len() > 2 {
                return Err(err());
            }
            *slot = u8::from_str_radix(part, 16).map_err(|_| err())?;
        }
        if parts.next().is_some() {
            return Err(err());
        }
        Ok(MacAddr(out))
    }
}

/// The solicited-node multicast address of `addr` (RFC 4291 §2.7.1): ff02::1:ff00:0/104 plus
/// the low 24 bits of the address.
pub fn solicited_node(addr: Ipv6Addr) -> Ipv6Addr {
    let o = addr.octets();
    Ipv6Addr::from([
        0xff, 0x02, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0x01, 0xff, o[13], o[14], o[15],
    ])
}

/// An untagged Ethernet II header.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct EthernetHeader {
    pub dst: MacAddr,
    pub src: MacAddr,
    pub ethertype: u16,
}

impl EthernetHeader {
    /// Splits a frame into its header and payload.
    pub fn decode(frame: &[u8]) -> Result<(EthernetHeader, &[u8]), WireError> {
        let Some((header, payload)) = frame.split_first_chunk::<ETHERNET_HEADER_LEN>() else {
            return Err(WireError::ShortEthernet { len: frame.len() });
        };
        let mut dst = [0u8; 6];
        let mut src = [0u8; 6];
        dst.copy_from_slice(&header[0..6]);
        src.copy_from_slice(&header[6..12]);
        let ethertype = u16::from_be_bytes([header[12], header[13]]);
        Ok((
            EthernetHeader {
                dst: MacAddr(dst),
                src: MacAddr(src),
                ethertype,
            },
            payload,
        ))
    }

    pub fn encode_into(&self, out: &mut Vec<u8>) {
        out.extend_from_slice(&self.dst.0);
        out.extend_from_slice(&self.src.0);
        out.extend_from_slice(&self.ethertype.to_be_bytes());
    }
}

/// A decoded frame of one of the three kinds the announcer listens to.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Frame<'a> {
    Arp(EthernetHeader, ArpPacket),
    Ndp(EthernetHeader, NdpPacket),
    /// A heartbeat frame; its payload is authenticated and decoded by
    /// [`HeartbeatKey::open`], which needs the key.
    Heartbeat(EthernetHeader, &'a [u8]),
}

/// Why a frame was not accepted.
#[derive(Clone, Debug, PartialEq, Eq, thiserror::Error)]
pub enum WireError {
    #[error("frame of {len} octets is shorter than an Ethernet header (14)")]
    ShortEthernet { len: usize },
    #[error(
        "EtherType {0:#06x} is not ARP, IPv6 or the heartbeat type (VLAN tags are not accepted)"
    )]
    UnexpectedEtherType(u16),
    #[error("ARP: {0}")]
    Arp(#[from] ArpError),
    #[error("NDP: {0}")]
    Ndp(#[from] NdpError),
}

/// Decodes one received frame. The heartbeat payload is returned as is: opening it needs the key.
pub fn decode_frame(frame: &[u8]) -> Result<Frame<'_>, WireError> {
    let (eth, payload) = EthernetHeader::decode(frame)?;
    match eth.ethertype {
        ETHERTYPE_ARP => Ok(Frame::Arp(eth, ArpPacket::decode(payload)?)),
        ETHERTYPE_IPV6 => Ok(Frame::Ndp(eth, NdpPacket::decode(payload)?)),
        ETHERTYPE_HEARTBEAT => Ok(Frame::Heartbeat(eth, payload)),
        other => Err(WireError::UnexpectedEtherType(other)),
    }
}

/// A complete Ethernet frame carrying `packet`.
pub fn arp_frame(dst: MacAddr, src: MacAddr, packet: &ArpPacket) -> Vec<u8> {
    let mut out = Vec::with_capacity(ETHERNET_HEADER_LEN + arp::ARP_LEN);
    EthernetHeader {
        dst,
        src,
        ethertype: ETHERTYPE_ARP,
    }
    .encode_into(&mut out);
    out.extend_from_slice(&packet.encode());
    out
}

/// A complete Ethernet frame carrying `packet` (IPv6 header included, checksum computed).
pub fn ndp_frame(dst: MacAddr, src: MacAddr, packet: &NdpPacket) -> Vec<u8> {
    let mut out = Vec::with_capacity(ETHERNET_HEADER_LEN + 40 + 32);
    EthernetHeader {
        dst,
        src,
        ethertype: ETHERTYPE_IPV6,
    }
    .encode_into(&mut out);
    packet.encode_into(&mut out);
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn mac_addresses_round_trip_through_text() {
        let mac: MacAddr = "02:00:5e:10:00:0a".parse().unwrap();
        assert_eq!(mac, MacAddr([0x02, 0x00, 0x5e, 0x10, 0x00, 0x0a]));
        assert_eq!(mac.to_string(), "02:00:5e:10:00:0a");
        assert!("02:00:5e:10:00".parse::<MacAddr>().is_err());
        assert!("02:00:5e:10:00:0a:01".parse::<MacAddr>().is_err());
        assert!("02:00:5e:10:00:zz".parse::<MacAddr>().is_err());
    }

    #[test]
    fn solicited_node_group_keeps_the_low_24_bits() {
        let addr: Ipv6Addr = "2001:db8::1:2:3456:789a".parse().unwrap();
        assert_eq!(
            solicited_node(addr),
            "ff02::1:ff56:789a".parse::<Ipv6Addr>().unwrap()
        );
        assert_eq!(
            MacAddr::ipv6_multicast(solicited_node(addr)).to_string(),
            "33:33:ff:56:78:9a"
        );
    }

    #[test]
    fn unknown_ethertype_is_rejected_with_its_value() {
        let mut frame = vec![0xffu8; 12];
        frame.extend_from_slice(&[0x81, 0x00, 0, 1]);
        assert_eq!(
            decode_frame(&frame),
            Err(WireError::UnexpectedEtherType(0x8100))
        );
        assert_eq!(
            decode_frame(&frame[..13]),
            Err(WireError::ShortEthernet { len: 13 })
        );
    }
}
