//! ARP for IPv4 over Ethernet (RFC 826), the only combination an announcer speaks.
//!
//! The decoder checks the fixed header fields (hardware type 1, protocol 0x0800, lengths 6 and
//! 4, operation request or reply) and accepts trailing octets, because Ethernet pads a 28-octet
//! ARP packet to the 46-octet minimum payload. It does not judge the addresses: whether a
//! request deserves an answer, or a reply reveals a conflict, is the responder's business.

use std::net::Ipv4Addr;

use super::MacAddr;

/// Octets in an ARP packet for IPv4 over Ethernet.
pub const ARP_LEN: usize = 28;
const HTYPE_ETHERNET: u16 = 1;
const PTYPE_IPV4: u16 = 0x0800;

/// ARP operation codes (RFC 826; RFC 5227 reuses them for probes and announcements).
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum ArpOperation {
    Request,
    Reply,
}

impl ArpOperation {
    pub fn code(self) -> u16 {
        match self {
            ArpOperation::Request => 1,
            ArpOperation::Reply => 2,
        }
    }
}

/// An ARP packet for IPv4 over Ethernet.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub struct ArpPacket {
    pub operation: ArpOperation,
    pub sender_mac: MacAddr,
    pub sender_ip: Ipv4Addr,
    pub target_mac: MacAddr,
    pub target_ip: Ipv4Addr,
}

/// Why an ARP packet was not accepted.
#[derive(Clone, Debug, PartialEq, Eq, thiserror::Error)]
pub enum ArpError {
    #[error("packet of {len} octets is shorter than ARP for IPv4 over Ethernet (28)")]
    Short { len: usize },
    #[error("hardware type {0} is not Ethernet (1)")]
    HardwareType(u16),
    #[error("protocol type {0:#06x} is not IPv4 (0x0800)")]
    ProtocolType(u16),
    #[error("hardware address length {0} is not 6")]
    HardwareLength(u8),
    #[error("protocol address length {0} is not 4")]
    ProtocolLength(u8),
    #[error("operation {0} is neither request (1) nor reply (2)")]
    Operation(u16),
}

impl ArpPacket {
    /// Decodes the ARP packet at the start of `bytes` (an Ethernet payload).
    pub fn decode(bytes: &[u8]) -> Result<ArpPacket, ArpError> {
        let Some(b) = bytes.first_chunk::<ARP_LEN>() else {
            return Err(ArpError::Short { len: bytes.len() });
        };
        let htype = u16::from_be_bytes([b[0], b[1]]);
        if htype != HTYPE_ETHERNET {
            return Err(ArpError::HardwareType(htype));
        }
        let ptype = u16::from_be_bytes([b[2], b[3]]);
        if ptype != PTYPE_IPV4 {
            return Err(ArpError::ProtocolType(ptype));
        }
        if b[4] != 6 {
            return Err(ArpError::HardwareLength(b[4]));
        }
        if b[5] != 4 {
            return Err(ArpError::ProtocolLength(b[5]));
        }
        let operation = match u16::from_be_bytes([b[6], b[7]]) {
            1 => ArpOperation::Request,
            2 => ArpOperation::Reply,
            other => return Err(ArpError::Operation(other)),
        };
        let mac = |at: usize| {
            let mut m = [0u8; 6];
            m.copy_from_slice(&b[at..at + 6]);
            MacAddr(m)
        };
        let ip = |at: usize| Ipv4Addr::new(b[at], b[at + 1], b[at + 2], b[at + 3]);
        Ok(ArpPacket {
            operation,
            sender_mac: mac(8),
            sender_ip: ip(14),
            target_mac: mac(18),
            target_ip: ip(24),
        })
    }

    pub fn encode(&self) -> [u8; ARP_LEN] {
        let mut b = [0u8; ARP_LEN];
        b[0..2].copy_from_slice(&HTYPE_ETHERNET.to_be_bytes());
        b[2..4].copy_from_slice(&PTYPE_IPV4.to_be_bytes());
        b[4] = 6;
        b[5] = 4;
        b[6..8].copy_from_slice(&self.operation.code().to_be_bytes());
        b[8..14].copy_from_slice(&self.sender_mac.0);
        b[14..18].copy_from_slice(&self.sender_ip.octets());
        b[18..24].copy_from_slice(&self.target_mac.0);
        b[24..28].copy_from_slice(&self.target_ip.octets());
        b
    }

    /// Sender and target protocol addresses are equal: a gratuitous ARP (RFC 5227 §3 calls
    /// the request form an ARP Announcement).
    pub fn is_gratuitous(&self) -> bool {
        self.sender_ip == self.target_ip
    }

    /// An RFC 5227 §2.1.1 probe: a request with an all-zero sender protocol address.
    pub fn is_probe(&self) -> bool {
        self.operation == ArpOperation::Request && self.sender_ip.is_unspecified()
    }
}
