//! The entries of `IPAddressPool.spec.addresses`: a CIDR (`192.168.10.0/24`) or an inclusive
//! range (`192.168.10.10-192.168.10.20`), parsed into typed blocks.
//!
//! This module owns the syntax, the per-entry rules and the summarising of ranges into CIDRs.
//! Rules that involve several entries or pools (overlap) live in `config`; picking addresses
//! out of a block is the allocator's job.

use std::fmt;
use std::net::IpAddr;

use ipnet::{IpNet, Ipv4Subnets, Ipv6Subnets};
use thiserror::Error;

/// The address family of an IP address, prefix or pool entry.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub enum IpFamily {
    /// IPv4.
    V4,
    /// IPv6.
    V6,
}

impl IpFamily {
    /// The family of an address.
    pub fn of(address: IpAddr) -> IpFamily {
        match address {
            IpAddr::V4(_) => IpFamily::V4,
            IpAddr::V6(_) => IpFamily::V6,
        }
    }

    /// The host prefix length of the family: 32 or 128.
    pub fn max_prefix_len(self) -> u8 {
        match self {
            IpFamily::V4 => 32,
            IpFamily::V6 => 128,
        }
    }
}

impl fmt::Display for IpFamily {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match self {
            IpFamily::V4 => "IPv4",
            IpFamily::V6 => "IPv6",
        })
    }
}

/// An inclusive range of addresses of one family, `start <= end`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub struct IpRange {
    start: IpAddr,
    end: IpAddr,
}

impl IpRange {
    /// Builds a range; both ends must be of one family and `start <= end`.
    pub fn new(start: IpAddr, end: IpAddr) -> Result<IpRange, AddressError> {
        if IpFamily::of(start) != IpFamily::of(end) {
            return Err(AddressError::MixedFamilies { start, end });
        }
        if start > end {
            return Err(AddressError::StartAfterEnd { start, end });
        }
        Ok(IpRange { start, end })
    }

    /// The first address.
    pub fn start(&self) -> IpAddr {
        self.start
    }

    /// The last address (included).
    pub fn end(&self) -> IpAddr {
        self.end
    }

    /// The smallest list of CIDRs that covers exactly this range, in address order.
    pub fn to_cidrs(&self) -> Vec<IpNet> {
        match (self.start, self.end) {
            (IpAddr::V4(start), IpAddr::V4(end)) => {
                Ipv4Subnets::new(start, end, 0).map(IpNet::V4).collect()
            }
            (IpAddr::V6(start), IpAddr::V6(end)) => {
                Ipv6Subnets::new(start, end, 0).map(IpNet::V6).collect()
            }
            // `new` refuses mixed families, so this arm is never taken.
            _ => Vec::new(),
        }
    }
}

impl fmt::Display for IpRange {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}-{}", self.start, self.end)
    }
}

/// One entry of a pool's `addresses`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum AddressBlock {
    /// A CIDR without host bits, such as `192.168.10.0/24`.
    Cidr(IpNet),
    /// An inclusive range, such as `192.168.10.10-192.168.10.20`.
    Range(IpRange),
}

impl AddressBlock {
    /// The family of the block.
    pub fn family(&self) -> IpFamily {
        IpFamily::of(self.first())
    }

    /// The lowest address of the block.
    pub fn first(&self) -> IpAddr {
        match self {
            AddressBlock::Cidr(net) => net.network(),
            AddressBlock::Range(range) => range.start,
        }
    }

    /// The highest address of the block (included).
    pub fn last(&self) -> IpAddr {
        match self {
            AddressBlock::Cidr(net) => net.broadcast(),
            AddressBlock::Range(range) => range.end,
        }
    }

    /// The block as CIDRs: itself, or the summary of the range.
    pub fn cidrs(&self) -> Vec<IpNet> {
        match self {
            AddressBlock::Cidr(net) => vec![*net],
            AddressBlock::Range(range) => range.to_cidrs(),
        }
    }

    /// Whether the block contains an address.
    pub fn contains(&self, address: IpAddr) -> bool {
        IpFamily::of(address) == self.family() && self.first() <= address && address <= self.last()
    }
}

impl fmt::Display for AddressBlock {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            AddressBlock::Cidr(net) => net.fmt(f),
            AddressBlock::Range(range) => range.fmt(f),
        }
    }
}

/// Why a pool entry is not a usable block of addresses.
#[derive(Debug, Clone, PartialEq, Eq, Error)]
pub enum AddressError {
    /// The range's first address is higher than its last.
    #[error("range start {start} is after end {end}")]
    StartAfterEnd {
        /// The first address as written.
        start: IpAddr,
        /// The last address as written.
        end: IpAddr,
    },
    /// One end is IPv4, the other IPv6.
    #[error("range {start}-{end} mixes IPv4 and IPv6; use one range per family")]
    MixedFamilies {
        /// The first address as written.
        start: IpAddr,
        /// The last address as written.
        end: IpAddr,
    },
    /// One end of a range is not an IP address.
    #[error("{text:?} in range {entry:?} is not an IP address")]
    RangeEndNotAnAddress {
        /// The whole entry.
        entry: String,
        /// The end that failed to parse.
        text: String,
    },
    /// A CIDR whose address has bits set beyond the prefix: almost always a typo for the
    /// network, and MetalLB's silent rounding hid it.
    #[error(
        "{entry} has host bits set: write the network {network}, or {host}/{host_len} for the \
         single address"
    )]
    HostBitsSet {
        /// The entry as written.
        entry: String,
        /// The network the prefix length implies.
        network: IpNet,
        /// The address as written.
        host: IpAddr,
        /// 32 or 128.
        host_len: u8,
    },
    /// A single address without a prefix length.
    #[error("{entry} is a single address; write {entry}/{host_len} to use it as a pool entry")]
    BareAddress {
        /// The entry as written.
        entry: String,
        /// 32 or 128.
        host_len: u8,
    },
    /// Neither a CIDR nor a range.
    #[error(
        "{entry:?} is neither a CIDR (192.168.10.0/24) nor a range (192.168.10.10-192.168.10.20)"
    )]
    Unparseable {
        /// The entry as written.
        entry: String,
    },
}

/// Parses one `addresses` entry. Spaces around a range's `-` are allowed, as in MetalLB.
pub fn parse_address_block(entry: &str) -> Result<AddressBlock, AddressError> {
    if let Some((start_text, end_text)) = entry.split_once('-') {
        let (start, end) = (start_text.trim(), end_text.trim());
        if start.parse::<IpAddr>().is_err() && end.parse::<IpAddr>().is_err() {
            return Err(AddressError::Unparseable {
                entry: entry.to_owned(),
            });
        }
        let parse_end = |text: &str| {
            text.trim()
                .parse::<IpAddr>()
                .map_err(|_| AddressError::RangeEndNotAnAddress {
                    entry: entry.to_owned(),
                    text: text.trim().to_owned(),
                })
        };
        let range = IpRange::new(parse_end(start_text)?, parse_end(end_text)?)?;
        return Ok(AddressBlock::Range(range));
    }
    if let Ok(net) = entry.parse::<IpNet>() {
        if net.trunc() != net {
            return Err(AddressError::HostBitsSet {
                entry: entry.to_owned(),
                network: net.trunc(),
                host: net.addr(),
                host_len: IpFamily::of(net.addr()).max_prefix_len(),
            });
        }
        return Ok(AddressBlock::Cidr(net));
    }
    if let Ok(address) = entry.parse::<IpAddr>() {
        return Err(AddressError::BareAddress {
            entry: entry.to_owned(),
            host_len: IpFamily::of(address).max_prefix_len(),
        });
    }
    Err(AddressError::Unparseable {
        entry: entry.to_owned(),
    })
}

/// The position of an address on one line per family, for interval arithmetic (overlaps).
pub(crate) fn address_ordinal(address: IpAddr) -> u128 {
    match address {
        IpAddr::V4(v4) => u128::from(u32::from(v4)),
        IpAddr::V6(v6) => u128::from(v6),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn net(text: &str) -> IpNet {
        text.parse().unwrap()
    }

    #[test]
    fn cidr_entry_parses_to_a_cidr_block() {
        assert_eq!(
            parse_address_block("192.168.32.0/24"),
            Ok(AddressBlock::Cidr(net("192.168.32.0/24")))
        );
        assert_eq!(
            parse_address_block("fc00:f853:ccd:e799::/124"),
            Ok(AddressBlock::Cidr(net("fc00:f853:ccd:e799::/124")))
        );
    }

    #[test]
    fn range_entry_parses_with_or_without_spaces() {
        let block = parse_address_block("172.16.16.10 - 172.16.16.20").unwrap();
        assert_eq!(block.to_string(), "172.16.16.10-172.16.16.20");
        assert_eq!(
            block,
            parse_address_block("172.16.16.10-172.16.16.20").unwrap()
        );
    }

    #[test]
    fn range_start_after_end_is_rejected() {
        assert_eq!(
            parse_address_block("172.16.16.150-172.16.16.20")
                .unwrap_err()
                .to_string(),
            "range start 172.16.16.150 is after end 172.16.16.20"
        );
    }

    #[test]
    fn range_of_two_families_is_rejected() {
        assert_eq!(
            parse_address_block("10.0.0.1-fc00::1")
                .unwrap_err()
                .to_string(),
            "range 10.0.0.1-fc00::1 mixes IPv4 and IPv6; use one range per family"
        );
    }

    #[test]
    fn range_end_that_is_not_an_address_is_named() {
        assert_eq!(
            parse_address_block("10.0.0.1-10.0.0.300")
                .unwrap_err()
                .to_string(),
            "\"10.0.0.300\" in range \"10.0.0.1-10.0.0.300\" is not an IP address"
        );
    }

    #[test]
    fn cidr_with_host_bits_is_rejected_with_both_readings() {
        assert_eq!(
            parse_address_block("192.168.1.5/24")
                .unwrap_err()
                .to_string(),
            "192.168.1.5/24 has host bits set: write the network 192.168.1.0/24, or \
             192.168.1.5/32 for the single address"
        );
    }

    #[test]
    fn bare_address_suggests_a_host_prefix() {
        assert_eq!(
            parse_address_block("10.0.0.7").unwrap_err().to_string(),
            "10.0.0.7 is a single address; write 10.0.0.7/32 to use it as a pool entry"
        );
        assert_eq!(
            parse_address_block("fc00::7").unwrap_err().to_string(),
            "fc00::7 is a single address; write fc00::7/128 to use it as a pool entry"
        );
    }

    #[test]
    fn garbage_is_rejected_with_examples() {
        assert_eq!(
            parse_address_block("pool").unwrap_err().to_string(),
            "\"pool\" is neither a CIDR (192.168.10.0/24) nor a range (192.168.10.10-192.168.10.20)"
        );
    }

    #[test]
    fn range_summarises_into_the_fewest_cidrs() {
        let block = parse_address_block("192.168.10.10-192.168.10.20").unwrap();
        let cidrs: Vec<String> = block.cidrs().iter().map(ToString::to_string).collect();
        assert_eq!(
            cidrs,
            [
                "192.168.10.10/31",
                "192.168.10.12/30",
                "192.168.10.16/30",
                "192.168.10.20/32"
            ]
        );
    }

    #[test]
    fn aligned_range_summarises_into_one_cidr() {
        let block = parse_address_block("10.0.0.0-10.0.0.255").unwrap();
        assert_eq!(block.cidrs(), vec![net("10.0.0.0/24")]);
    }

    #[test]
    fn blocks_know_their_bounds() {
        let block = parse_address_block("192.168.32.0/24").unwrap();
        assert_eq!(block.first().to_string(), "192.168.32.0");
        assert_eq!(block.last().to_string(), "192.168.32.255");
        assert!(block.contains("192.168.32.77".parse().unwrap()));
        assert!(!block.contains("192.168.33.1".parse().unwrap()));
        assert!(!block.contains("::1".parse().unwrap()));
    }

    proptest::proptest! {
        #[test]
        fn summarised_range_covers_exactly_the_range(a in proptest::num::u32::ANY, b in proptest::num::u32::ANY) {
            let (low, high) = (a.min(b), a.max(b));
            let range = IpRange::new(
                IpAddr::V4(low.into()),
                IpAddr::V4(high.into()),
            ).unwrap();
            let cidrs = range.to_cidrs();
            let mut next = u64::from(low);
            for cidr in &cidrs {
                proptest::prop_assert_eq!(address_ordinal(cidr.network()) as u64, next);
                next = address_ordinal(cidr.broadcast()) as u64 + 1;
            }
            proptest::prop_assert_eq!(next, u64::from(high) + 1);
        }

        #[test]
        fn any_entry_is_an_answer_not_a_panic(text in "\\PC{0,40}") {
            let _ = parse_address_block(&text);
        }
    }
}
