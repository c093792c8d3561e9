//! IPv6 Neighbor Solicitation and Neighbor Advertisement (RFC 4861 §4.3, §4.4), IPv6 header
//! included, as they travel in an Ethernet frame.
//!
//! The decoder applies every receive-side check of RFC 4861 §7.1.1 (NS) and §7.1.2 (NA): hop
//! limit 255 (proof the packet was not forwarded), a valid ICMPv6 checksum (RFC 4443 §2.3),
//! code 0, an ICMP length of at least 24, a target that is not multicast, no option of length
//! 0, no DAD solicitation (source ::) carrying a source link-layer option or sent to anything
//! but a solicited-node group, and no solicited advertisement sent to a multicast group. It also
//! rejects what an Ethernet announcer cannot use: extension headers between IPv6 and ICMPv6,
//! link-layer options whose length is not one 8-octet unit, and a repeated link-layer option.
//! Unknown options are skipped, as §4.3/§4.4 require. Other ICMPv6 types are an error naming
//! the type, so a caller can tell noise from damage.

use std::net::Ipv6Addr;

use super::{MacAddr, solicited_node};

/// IPv6 next-header value of ICMPv6.
pub const NEXT_HEADER_ICMPV6: u8 = 58;
/// ICMPv6 types (RFC 4861 §4.3, §4.4).
pub const ICMPV6_NEIGHBOR_SOLICIT: u8 = 135;
pub const ICMPV6_NEIGHBOR_ADVERT: u8 = 136;
/// NDP option types (RFC 4861 §4.6.1).
pub const OPTION_SOURCE_LLA: u8 = 1;
pub const OPTION_TARGET_LLA: u8 = 2;
/// RFC 4861 §7.1: NDP packets must arrive with the hop limit they were sent with.
pub const NDP_HOP_LIMIT: u8 = 255;

const IPV6_HEADER_LEN: usize = 40;
/// ICMPv6 type, code, checksum, flags/reserved, target address.
const ND_BODY_LEN: usize = 24;

/// A Neighbor Solicitation.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub struct NeighborSolicit {
    pub target: Ipv6Addr,
    /// The Source Link-Layer Address option, if present.
    pub source_lla: Option<MacAddr>,
}

/// A Neighbor Advertisement.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub struct NeighborAdvert {
    /// R: the sender is a router.
    pub router: bool,
    /// S: sent in response to a solicitation.
    pub solicited: bool,
    /// O: the receiver should override a cached link-layer address (RFC 4861 §7.2.5); an
    /// announcer taking over a VIP needs it, or clients keep the old owner's MAC.
    pub override_flag: bool,
    pub target: Ipv6Addr,
    /// The Target Link-Layer Address option, if present.
    pub target_lla: Option<MacAddr>,
}

#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum NdpMessage {
    Solicit(NeighborSolicit),
    Advert(NeighborAdvert),
}

impl NdpMessage {
    pub fn target(&self) -> Ipv6Addr {
        match self {
            NdpMessage::Solicit(ns) => ns.target,
            NdpMessage::Advert(na) => na.target,
        }
    }
}

/// An NS or NA with the IPv6 addresses it travelled between. The hop limit is always 255: the
/// decoder rejects anything else and the encoder writes nothing else.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub struct NdpPacket {
    pub src: Ipv6Addr,
    pub dst: Ipv6Addr,
    pub message: NdpMessage,
}

/// Why an IPv6 packet was not accepted as an NS or NA.
#[derive(Clone, Debug, PartialEq, Eq, thiserror::Error)]
pub enum NdpError {
    #[error("packet of {len} octets is shorter than an IPv6 header (40)")]
    ShortIpv6 { len: usize },
    #[error("IP version {0} is not 6")]
    IpVersion(u8),
    #[error("IPv6 payload length {declared} exceeds the {available} octets present")]
    PayloadLength { declared: usize, available: usize },
    #[error("next header {0} is not ICMPv6 (58); extension headers are not accepted")]
    NextHeader(u8),
    #[error("source address {0} is multicast")]
    MulticastSource(Ipv6Addr),
    #[error("ICMPv6 type {0} is neither Neighbor Solicitation (135) nor Advertisement (136)")]
    NotNeighborDiscovery(u8),
    #[error("hop limit {0}: RFC 4861 §7.1 requires 255")]
    HopLimit(u8),
    #[error("ICMP code {0}: RFC 4861 §7.1 requires 0")]
    Code(u8),
    #[error("ICMP length {len} is shorter than 24 octets (RFC 4861 §7.1)")]
    ShortIcmp { len: usize },
    #[error("ICMPv6 checksum {found:#06x}, expected {expected:#06x}")]
    Checksum { found: u16, expected: u16 },
    #[error("target address {0} is multicast (RFC 4861 §7.1)")]
    MulticastTarget(Ipv6Addr),
    #[error("option at ICMP offset {offset} has length 0 (RFC 4861 §7.1)")]
    ZeroOptionLength { offset: usize },
    #[error("option at ICMP offset {offset} claims {declared} octets but {available} remain")]
    TruncatedOption {
        offset: usize,
        declared: usize,
        available: usize,
    },
    #[error(
        "link-layer address option at ICMP offset {offset} has length {units} (Ethernet needs 1)"
    )]
    LinkLayerOptionLength { offset: usize, units: u8 },
    #[error("link-layer address option type {option} appears twice")]
    DuplicateOption { option: u8 },
    #[error("solicitation from :: carries a source link-layer option (RFC 4861 §7.1.1)")]
    DadWithSourceLla,
    #[error("solicitation from :: is sent to {0}, not a solicited-node group (RFC 4861 §7.1.1)")]
    DadNotToSolicitedNode(Ipv6Addr),
    #[error("solicited advertisement sent to multicast {0} (RFC 4861 §7.1.2)")]
    SolicitedToMulticast(Ipv6Addr),
}

impl NdpPacket {
    /// Decodes the IPv6 packet at the start of `bytes` (an Ethernet payload; octets after the
    /// IPv6 payload length are link padding and ignored).
    pub fn decode(bytes: &[u8]) -> Result<NdpPacket, NdpError> {
        let Some(ip) = bytes.first_chunk::<IPV6_HEADER_LEN>() else {
            return Err(NdpError::ShortIpv6 { len: bytes.len() });
        };
        let version = ip[0] >> 4;
        if version != 6 {
            return Err(NdpError::IpVersion(version));
        }
        let declared = usize::from(u16::from_be_bytes([ip[4], ip[5]]));
        let available = bytes.len() - IPV6_HEADER_LEN;
        if declared > available {
            return Err(NdpError::PayloadLength {
                declared,
                available,
            });
        }
        if ip[6] != NEXT_HEADER_ICMPV6 {
            return Err(NdpError::NextHeader(ip[6]));
        }
        let hop_limit = ip[7];
        let src = ipv6_at(ip, 8);
        let dst = ipv6_at(ip, 24);
        if src.is_multicast() {
            return Err(NdpError::MulticastSource(src));
        }
        let icmp = &bytes[IPV6_HEADER_LEN..IPV6_HEADER_LEN + declared];
        let Some(&icmp_type) = icmp.first() else {
            return Err(NdpError::ShortIcmp { len: 0 });
        };
        if icmp_type != ICMPV6_NEIGHBOR_SOLICIT && icmp_type != ICMPV6_NEIGHBOR_ADVERT {
            return Err(NdpError::NotNeighborDiscovery(icmp_type));
        }
        // RFC 4861 §7.1.1 / §7.1.2, in the order the RFC lists them.
        if hop_limit != NDP_HOP_LIMIT {
            return Err(NdpError::HopLimit(hop_limit));
        }
        let Some(body) = icmp.first_chunk::<ND_BODY_LEN>() else {
            return Err(NdpError::ShortIcmp { len: icmp.len() });
        };
        let found = u16::from_be_bytes([body[2], body[3]]);
        let expected = icmpv6_checksum(src, dst, icmp, true);
        if found != expected {
            return Err(NdpError::Checksum { found, expected });
        }
        if body[1] != 0 {
            return Err(NdpError::Code(body[1]));
        }
        let target = ipv6_at(body, 8);
        if target.is_multicast() {
            return Err(NdpError::MulticastTarget(target));
        }
        let options = parse_lla_options(&icmp[ND_BODY_LEN..])?;
        let message = if icmp_type == ICMPV6_NEIGHBOR_SOLICIT {
            if src.is_unspecified() {
                if options.source.is_some() {
                    return Err(NdpError::DadWithSourceLla);
                }
                if dst != solicited_node(target) {
                    return Err(NdpError::DadNotToSolicitedNode(dst));
                }
            }
            NdpMessage::Solicit(NeighborSolicit {
                target,
                source_lla: options.source,
            })
        } else {
            let flags = body[4];
            let solicited = flags & 0x40 != 0;
            if solicited && dst.is_multicast() {
                return Err(NdpError::SolicitedToMulticast(dst));
            }
            NdpMessage::Advert(NeighborAdvert {
                router: flags & 0x80 != 0,
                solicited,
                override_flag: flags & 0x20 != 0,
                target,
                target_lla: options.target,
            })
        };
        Ok(NdpPacket { src, dst, message })
    }

    /// Appends the IPv6 header and the ICMPv6 message (checksum filled in).
    pub fn encode_into(&self, out: &mut Vec<u8>) {
        let mut icmp = Vec::with_capacity(ND_BODY_LEN + 8);
        let (icmp_type, flags, target, option) = match self.message {
            NdpMessage::Solicit(ns) => (
                ICMPV6_NEIGHBOR_SOLICIT,
                0u8,
                ns.target,
                ns.source_lla.map(|m| (OPTION_SOURCE_LLA, m)),
            ),
            NdpMessage::Advert(na) => (
                ICMPV6_NEIGHBOR_ADVERT,
                (u8::from(na.router) << 7)
                    | (u8::from(na.solicited) << 6)
                    | (u8::from(na.override_flag) << 5),
                na.target,
                na.target_lla.map(|m| (OPTION_TARGET_LLA, m)),
            ),
        };
        icmp.extend_from_slice(&[icmp_type, 0, 0, 0, flags, 0, 0, 0]);
        icmp.extend_from_slice(&target.octets());
        if let Some((kind, mac)) = option {
            icmp.extend_from_slice(&[kind, 1]);
            icmp.extend_from_slice(&mac.0);
        }
        let checksum = icmpv6_checksum(self.src, self.dst, &icmp, false);
        icmp[2..4].copy_from_slice(&checksum.to_be_bytes());

        // Traffic class 0, flow label 0.
        out.extend_from_slice(&[0x60, 0, 0, 0]);
        let len = u16::try_from(icmp.len()).unwrap_or(u16::MAX);
        out.extend_from_slice(&len.to_be_bytes());
        out.push(NEXT_HEADER_ICMPV6);
        out.push(NDP_HOP_LIMIT);
        out.extend_from_slice(&self.src.octets());
        out.extend_from_slice(&self.dst.octets());
        out.extend_from_slice(&icmp);
    }

    pub fn encode(&self) -> Vec<u8> {
        let mut out = Vec::with_capacity(IPV6_HEADER_LEN + ND_BODY_LEN + 8);
        self.encode_into(&mut out);
        out
    }
}

fn ipv6_at(bytes: &[u8], at: usize) -> Ipv6Addr {
    let mut o = [0u8; 16];
    o.copy_from_slice(&bytes[at..at + 16]);
    Ipv6Addr::from(o)
}

#[derive(Default)]
struct LlaOptions {
    source: Option<MacAddr>,
    target: Option<MacAddr>,
}

/// Walks the options (RFC 4861 §4.6): type, length in 8-octet units, value.
fn parse_lla_options(options: &[u8]) -> Result<LlaOptions, NdpError> {
    let mut found = LlaOptions::default();
    let mut at = 0;
    while at < options.len() {
        let offset = ND_BODY_LEN + at;
        let rest = &options[at..];
        let Some(&[kind, units]) = rest.first_chunk::<2>() else {
            return Err(NdpError::TruncatedOption {
                offset,
                declared: 2,
                available: rest.len(),
            });
        };
        if units == 0 {
            return Err(NdpError::ZeroOptionLength { offset });
        }
        let declared = usize::from(units) * 8;
        if declared > rest.len() {
            return Err(NdpError::TruncatedOption {
                offset,
                declared,
                available: rest.len(),
            });
        }
        if kind == OPTION_SOURCE_LLA || kind == OPTION_TARGET_LLA {
            if units != 1 {
                return Err(NdpError::LinkLayerOptionLength { offset, units });
            }
            let mut mac = [0u8; 6];
            mac.copy_from_slice(&rest[2..8]);
            let slot = if kind == OPTION_SOURCE_LLA {
                &mut found.source
            } else {
                &mut found.target
            };
            if slot.replace(MacAddr(mac)).is_some() {
                return Err(NdpError::DuplicateOption { option: kind });
            }
        }
        at += declared;
    }
    Ok(found)
}

/// The ICMPv6 checksum over the RFC 8200 §8.1 pseudo-header and `icmp`. With `skip_field`,
/// the checksum field (octets 2–3) counts as zero, so the result is the value it should hold.
pub fn icmpv6_checksum(src: Ipv6Addr, dst: Ipv6Addr, icmp: &[u8], skip_field: bool) -> u16 {
    let mut sum: u64 = 0;
    let mut add = |bytes: &[u8]| {
        let mut chunks = bytes.chunks_exact(2);
        for c in &mut chunks {
            sum += u64::from(u16::from_be_bytes([c[0], c[1]]));
        }
        if let [last] = chunks.remainder() {
            sum += u64::from(*last) << 8;
        }
    };
    add(&src.octets());
    add(&dst.octets());
    let len = u32::try_from(icmp.len()).unwrap_or(u32::MAX);
    add(&len.to_be_bytes());
    add(&[0, 0, 0, NEXT_HEADER_ICMPV6]);
    if skip_field && icmp.len() >= 4 {
        add(&icmp[..2]);
        add(&icmp[4..]);
    } else {
        add(icmp);
    }
    while sum > 0xffff {
        sum = (sum & 0xffff) + (sum >> 16);
    }
    // The fold leaves at most 0xffff, so the cast is exact.
    !(sum as u16)
}
