//! Address arithmetic: IP families, configured ranges, and the dense numbering the allocator
//! searches in.
//!
//! Owns: [`Family`], [`AddressRange`] (a CIDR or a `first-last` span, parsed from MetalLB's
//! syntax), conversion between addresses and `u128` values, and [`Numbering`], which maps the
//! usable addresses of a pool to consecutive indexes so that `.0`/`.255` are skipped by
//! arithmetic instead of by scanning. Does not own pools, occupancy or Services.

use std::fmt;
use std::net::{IpAddr, Ipv4Addr, Ipv6Addr};
use std::str::FromStr;

use ipnet::IpNet;
use thiserror::Error;

/// An IP address family.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub enum Family {
    /// IPv4.
    V4,
    /// IPv6.
    V6,
}

impl Family {
    /// Both families, IPv4 first.
    pub const ALL: [Family; 2] = [Family::V4, Family::V6];

    /// The family of an address.
    pub fn of(address: IpAddr) -> Family {
        match address {
            IpAddr::V4(_) => Family::V4,
            IpAddr::V6(_) => Family::V6,
        }
    }

    /// The other family.
    pub fn other(self) -> Family {
        match self {
            Family::V4 => Family::V6,
            Family::V6 => Family::V4,
        }
    }

    /// Position in per-family arrays (`[v4, v6]`).
    pub(crate) fn slot(self) -> usize {
        match self {
            Family::V4 => 0,
            Family::V6 => 1,
        }
    }
}

impl fmt::Display for Family {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match self {
            Family::V4 => "IPv4",
            Family::V6 => "IPv6",
        })
    }
}

/// The numeric value of an address inside its family (an IPv4 address fits in the low 32 bits).
pub(crate) fn value_of(address: IpAddr) -> u128 {
    match address {
        IpAddr::V4(v4) => u128::from(u32::from(v4)),
        IpAddr::V6(v6) => u128::from(v6),
    }
}

/// The address with a given value. IPv4 values above `u32::MAX` never reach here: every value
/// comes from [`Numbering::value_at`] on an index that was derived from a real IPv4 address.
pub(crate) fn address_at(family: Family, value: u128) -> IpAddr {
    match family {
        Family::V4 => IpAddr::V4(Ipv4Addr::from(u32::try_from(value).unwrap_or(u32::MAX))),
        Family::V6 => IpAddr::V6(Ipv6Addr::from(value)),
    }
}

/// One entry of a pool's `addresses`: a CIDR or an inclusive `first-last` span.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub enum AddressRange {
    /// A CIDR. Host bits are ignored, as `net.ParseCIDR` does for MetalLB.
    Cidr(IpNet),
    /// Every address from `first` to `last`, both included.
    Span {
        /// The first address.
        first: IpAddr,
        /// The last address.
        last: IpAddr,
    },
}

impl AddressRange {
    /// The first and last address, both included.
    pub fn bounds(&self) -> (IpAddr, IpAddr) {
        match *self {
            AddressRange::Cidr(net) => (net.network(), net.broadcast()),
            AddressRange::Span { first, last } => (first, last),
        }
    }
}

impl fmt::Display for AddressRange {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            AddressRange::Cidr(net) => write!(f, "{}", net.trunc()),
            AddressRange::Span { first, last } => write!(f, "{first}-{last}"),
        }
    }
}

/// Why an `addresses` entry could not be parsed.
#[derive(Clone, Debug, PartialEq, Eq, Error)]
#[error("{text:?} is neither a CIDR nor a first-last address range")]
pub struct AddressRangeParseError {
    /// The text that was given.
    pub text: String,
}

impl FromStr for AddressRange {
    type Err = AddressRangeParseError;

    /// Parses MetalLB's syntax: `10.0.0.0/24`, `10.0.0.10-10.0.0.20`, `2001:db8::1 - 2001:db8::9`.
    fn from_str(text: &str) -> Result<Self, Self::Err> {
        let error = || AddressRangeParseError {
            text: text.to_owned(),
        };
        let trimmed = text.trim();
        if let Some((first, last)) = trimmed.split_once('-') {
            let first = first.trim().parse().map_err(|_| error())?;
            let last = last.trim().parse().map_err(|_| error())?;
            return Ok(AddressRange::Span { first, last });
        }
        trimmed.parse().map(AddressRange::Cidr).map_err(|_| error())
    }
}

/// How the usable addresses of one pool family map to dense indexes `0, 1, 2, …`.
///
/// The allocator keeps occupancy in index space, so that a run of taken addresses that crosses
/// a skipped `.255`/`.0` pair is still one run and "lowest free address" stays one tree lookup.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) enum Numbering {
    /// Every address is usable: the index is the address value.
    Every,
    /// IPv4 with avoidBuggyIPs: addresses ending in `.0` or `.255` do not exist. Each /24 block
    /// contributes 254 indexes (`.1` to `.254`).
    SkipBuggy,
}

/// Usable addresses in one IPv4 /24 block under [`Numbering::SkipBuggy`].
const USABLE_PER_BLOCK: u128 = 254;
const LAST_IPV4: u128 = u32::MAX as u128;

impl Numbering {
    pub(crate) fn for_pool(family: Family, avoid_buggy_ips: bool) -> Numbering {
        // avoidBuggyIPs has no effect on IPv6, as in MetalLB.
        if avoid_buggy_ips && family == Family::V4 {
            Numbering::SkipBuggy
        } else {
            Numbering::Every
        }
    }

    /// The index of an address value, or `None` if the address is skipped.
    pub(crate) fn index_of(self, value: u128) -> Option<u128> {
        match self {
            Numbering::Every => Some(value),
            Numbering::SkipBuggy => {
                let low = value & 0xff;
                if low == 0 || low == 0xff {
                    None
                } else {
                    Some((value >> 8) * USABLE_PER_BLOCK + low - 1)
                }
            }
        }
    }

    /// The address value of an index (the inverse of [`Numbering::index_of`]).
    pub(crate) fn value_at(self, index: u128) -> u128 {
        match self {
            Numbering::Every => index,
            Numbering::SkipBuggy => {
                ((index / USABLE_PER_BLOCK) << 8) | (index % USABLE_PER_BLOCK + 1)
            }
        }
    }

    /// The indexes covered by the inclusive value range `first..=last`, or `None` if every
    /// address in it is skipped.
    pub(crate) fn index_span(self, first: u128, last: u128) -> Option<(u128, u128)> {
        let (first, last) = match self {
            Numbering::Every => (first, last),
            Numbering::SkipBuggy => {
                let first = match first & 0xff {
                    0 => first + 1,
                    0xff => first + 2,
                    _ => first,
                };
                let last = match last & 0xff {
                    0xff => last - 1,
                    0 if last >= 2 => last - 2,
                    0 => return None,
                    _ => last,
                };
                if first > LAST_IPV4 {
                    return None;
                }
                (first, last)
            }
        };
        if first > last {
            return None;
        }
        Some((self.index_of(first)?, self.index_of(last)?))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn v4(text: &str) -> u128 {
        value_of(text.parse().unwrap())
    }

    #[test]
    fn skip_buggy_numbering_is_dense_and_invertible_across_blocks() {
        let n = Numbering::SkipBuggy;
        assert_eq!(n.index_of(v4("10.0.0.0")), None);
        assert_eq!(n.index_of(v4("10.0.0.255")), None);
        let a = n.index_of(v4("10.0.0.254")).unwrap();
        let b = n.index_of(v4("10.0.1.1")).unwrap();
        assert_eq!(b, a + 1, ".254 and the next block's .1 are neighbours");
        for text in ["0.0.0.1", "10.0.0.1", "10.0.0.254", "255.255.255.254"] {
            let value = v4(text);
            assert_eq!(n.value_at(n.index_of(value).unwrap()), value);
        }
    }

    #[test]
    fn skip_buggy_span_trims_network_and_broadcast_ends() {
        let n = Numbering::SkipBuggy;
        let (first, last) = n.index_span(v4("10.0.0.0"), v4("10.0.1.255")).unwrap();
        assert_eq!(last - first + 1, 2 * 254);
        assert_eq!(n.value_at(first), v4("10.0.0.1"));
        assert_eq!(n.value_at(last), v4("10.0.1.254"));
        assert_eq!(n.index_span(v4("10.0.0.255"), v4("10.0.1.0")), None);
        assert_eq!(n.index_span(v4("0.0.0.0"), v4("0.0.0.0")), None);
        assert_eq!(
            n.index_span(v4("255.255.255.255"), v4("255.255.255.255")),
            None
        );
    }

    #[test]
    fn ranges_parse_in_metallb_syntax() {
        assert_eq!(
            "10.0.0.1 - 10.0.0.9".parse::<AddressRange>().unwrap(),
            AddressRange::Span {
                first: "10.0.0.1".parse().unwrap(),
                last: "10.0.0.9".parse().unwrap()
            }
        );
        assert!(matches!(
            "2001:db8::/64".parse::<AddressRange>().unwrap(),
            AddressRange::Cidr(_)
        ));
        assert!("10.0.0.1-".parse::<AddressRange>().is_err());
        assert!("pool".parse::<AddressRange>().is_err());
    }
}
