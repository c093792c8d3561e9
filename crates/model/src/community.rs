//! BGP community values as users write them in ferrolb's resources: `A:B` standard communities
//! (RFC 1997), `large:A:B:C` large communities (RFC 8092) and the well-known names.
//!
//! This module owns the syntax and the typed values. It does not resolve aliases defined by
//! `Community` objects (that needs every object, so `config` does it) and it knows nothing about
//! the wire encoding (`ferrolb-bgpd` has its own types; the speaker converts).

use std::fmt;

use thiserror::Error;

/// A standard (RFC 1997) community: two 16-bit halves, written `A:B`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct Community(pub u32);

impl Community {
    /// `65535:65281` (RFC 1997): do not advertise outside the AS / confederation.
    pub const NO_EXPORT: Community = Community(0xFFFF_FF01);
    /// `65535:65282` (RFC 1997): do not advertise to any peer.
    pub const NO_ADVERTISE: Community = Community(0xFFFF_FF02);
    /// `65535:65283` (RFC 1997): do not advertise to external peers, even within a confederation.
    pub const NO_EXPORT_SUBCONFED: Community = Community(0xFFFF_FF03);
    /// `65535:65284` (RFC 3765): do not advertise to bilateral peers.
    pub const NO_PEER: Community = Community(0xFFFF_FF04);
    /// `65535:0` (RFC 8326): lower the preference of this route before a planned shutdown.
    pub const GRACEFUL_SHUTDOWN: Community = Community(0xFFFF_0000);
    /// `65535:1` (RFC 7611): accept a route that carries the receiver's own originator id.
    pub const ACCEPT_OWN: Community = Community(0xFFFF_0001);
    /// `65535:6` (RFC 9494): the route is stale under long-lived graceful restart.
    pub const LLGR_STALE: Community = Community(0xFFFF_0006);
    /// `65535:7` (RFC 9494): do not keep this route under long-lived graceful restart.
    pub const NO_LLGR: Community = Community(0xFFFF_0007);
    /// `65535:666` (RFC 7999): drop traffic to this prefix (remote-triggered blackholing).
    pub const BLACKHOLE: Community = Community(0xFFFF_029A);

    /// Builds `high:low`.
    pub const fn from_parts(high: u16, low: u16) -> Self {
        Community(((high as u32) << 16) | low as u32)
    }

    /// The first half, conventionally the AS number of the party that defines the value.
    pub const fn high(self) -> u16 {
        (self.0 >> 16) as u16
    }

    /// The second half, the value itself.
    pub const fn low(self) -> u16 {
        (self.0 & 0xFFFF) as u16
    }

    /// The well-known name of this value, if it has one (`no-export`, `blackhole`, ...).
    pub fn well_known_name(self) -> Option<&'static str> {
        WELL_KNOWN
            .iter()
            .find(|(_, value)| *value == self)
            .map(|(name, _)| *name)
    }
}

impl fmt::Display for Community {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}:{}", self.high(), self.low())
    }
}

/// A large (RFC 8092) community: three 32-bit numbers, written `large:A:B:C`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct LargeCommunity {
    /// The global administrator, conventionally a (4-byte) AS number.
    pub global: u32,
    /// First local data part.
    pub local1: u32,
    /// Second local data part.
    pub local2: u32,
}

impl fmt::Display for LargeCommunity {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "large:{}:{}:{}", self.global, self.local1, self.local2)
    }
}

/// Either kind of community, as attached to an advertisement.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub enum CommunityValue {
    /// `A:B` or a well-known name.
    Standard(Community),
    /// `large:A:B:C`.
    Large(LargeCommunity),
}

impl fmt::Display for CommunityValue {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            CommunityValue::Standard(community) => community.fmt(f),
            CommunityValue::Large(community) => community.fmt(f),
        }
    }
}

/// The names ferrolb accepts in place of a standard community value. The spellings follow
/// FRR's, so configurations read the same on the router and in ferrolb.
pub const WELL_KNOWN: &[(&str, Community)] = &[
    ("no-export", Community::NO_EXPORT),
    ("no-advertise", Community::NO_ADVERTISE),
    ("no-export-subconfed", Community::NO_EXPORT_SUBCONFED),
    ("local-as", Community::NO_EXPORT_SUBCONFED),
    ("no-peer", Community::NO_PEER),
    ("graceful-shutdown", Community::GRACEFUL_SHUTDOWN),
    ("accept-own", Community::ACCEPT_OWN),
    ("llgr-stale", Community::LLGR_STALE),
    ("no-llgr", Community::NO_LLGR),
    ("blackhole", Community::BLACKHOLE),
];

/// Looks up a well-known community name (`no-export`, ...).
pub fn well_known(name: &str) -> Option<Community> {
    WELL_KNOWN
        .iter()
        .find(|(known, _)| *known == name)
        .map(|(_, value)| *value)
}

/// Why a string that looks like a community value is not one.
#[derive(Debug, Clone, PartialEq, Eq, Error)]
pub enum CommunityError {
    /// `A:B` with a half that is not a number from 0 to 65535.
    #[error(
        "{input:?} is not a valid community: {part:?} is not a number from 0 to 65535 \
         (a standard community is A:B with two 16-bit numbers)"
    )]
    StandardPartOutOfRange {
        /// The whole value as written.
        input: String,
        /// The offending half.
        part: String,
    },
    /// `large:A:B:C` with a part that is not a number from 0 to 4294967295.
    #[error(
        "{input:?} is not a valid large community: {part:?} is not a number from 0 to 4294967295"
    )]
    LargePartOutOfRange {
        /// The whole value as written.
        input: String,
        /// The offending part.
        part: String,
    },
    /// `large:` followed by something other than three numbers.
    #[error("{input:?} is not a valid large community: expected large:A:B:C with three numbers")]
    LargeShape {
        /// The whole value as written.
        input: String,
    },
    /// Contains `:` but is neither `A:B` nor `large:A:B:C`.
    #[error(
        "{input:?} is not a valid community: expected A:B (two 16-bit numbers) \
         or large:A:B:C (three 32-bit numbers)"
    )]
    Shape {
        /// The whole value as written.
        input: String,
    },
}

/// Parses a literal community: `A:B`, `large:A:B:C` or a well-known name.
///
/// Returns `Ok(None)` for anything else without a `:` in it: such a string can only be an alias
/// name defined by a `Community` object, which the caller resolves.
pub fn parse_literal(input: &str) -> Result<Option<CommunityValue>, CommunityError> {
    if let Some(rest) = input.strip_prefix("large:") {
        let parts: Vec<&str> = rest.split(':').collect();
        let [global, local1, local2] = parts.as_slice() else {
            return Err(CommunityError::LargeShape {
                input: input.to_owned(),
            });
        };
        let number = |part: &str| {
            parse_decimal::<u32>(part).ok_or_else(|| CommunityError::LargePartOutOfRange {
                input: input.to_owned(),
                part: part.to_owned(),
            })
        };
        return Ok(Some(CommunityValue::Large(LargeCommunity {
            global: number(global)?,
            local1: number(local1)?,
            local2: number(local2)?,
        })));
    }
    if input.contains(':') {
        let parts: Vec<&str> = input.split(':').collect();
        let [high, low] = parts.as_slice() else {
            return Err(CommunityError::Shape {
                input: input.to_owned(),
            });
        };
        let number = |part: &str| {
            parse_decimal::<u16>(part).ok_or_else(|| CommunityError::StandardPartOutOfRange {
                input: input.to_owned(),
                part: part.to_owned(),
            })
        };
        return Ok(Some(CommunityValue::Standard(Community::from_parts(
            number(high)?,
            number(low)?,
        ))));
    }
    Ok(well_known(input).map(CommunityValue::Standard))
}

/// Checks a Community alias name: letters, digits, `-`, `_` and `.`, at most 63, starting and
/// ending with a letter or digit, and not a well-known name (which would be ambiguous).
pub fn check_alias_name(name: &str) -> Result<(), String> {
    let bytes = name.as_bytes();
    let well_formed = !bytes.is_empty()
        && bytes.len() <= 63
        && bytes
            .iter()
            .all(|b| b.is_ascii_alphanumeric() || matches!(b, b'-' | b'_' | b'.'))
        && bytes.first().is_some_and(u8::is_ascii_alphanumeric)
        && bytes.last().is_some_and(u8::is_ascii_alphanumeric);
    if !well_formed {
        return Err(format!(
            "{name:?} is not a valid alias name: use 1-63 letters, digits, '-', '_' and '.', \
             starting and ending with a letter or digit"
        ));
    }
    if well_known(name).is_some() {
        return Err(format!(
            "{name:?} is a well-known community name and cannot be redefined as an alias"
        ));
    }
    Ok(())
}

/// Parses plain decimal digits only: Rust's integer parsing would also take `+5`, which is not a
/// community anyone writes on a router.
fn parse_decimal<T: std::str::FromStr>(text: &str) -> Option<T> {
    if text.is_empty() || !text.bytes().all(|byte| byte.is_ascii_digit()) {
        return None;
    }
    text.parse().ok()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn standard_community_is_two_sixteen_bit_halves() {
        let parsed = parse_literal("64500:100").unwrap();
        assert_eq!(
            parsed,
            Some(CommunityValue::Standard(Community::from_parts(64500, 100)))
        );
        assert_eq!(parsed.unwrap().to_string(), "64500:100");
    }

    #[test]
    fn metallb_docs_value_is_no_advertise() {
        let parsed = parse_literal("65535:65282").unwrap();
        assert_eq!(
            parsed,
            Some(CommunityValue::Standard(Community::NO_ADVERTISE))
        );
        assert_eq!(
            Community::NO_ADVERTISE.well_known_name(),
            Some("no-advertise")
        );
    }

    #[test]
    fn large_community_is_three_thirty_two_bit_numbers() {
        let parsed = parse_literal("large:4200000000:1:2").unwrap();
        assert_eq!(
            parsed,
            Some(CommunityValue::Large(LargeCommunity {
                global: 4_200_000_000,
                local1: 1,
                local2: 2
            }))
        );
        assert_eq!(parsed.unwrap().to_string(), "large:4200000000:1:2");
    }

    #[test]
    fn well_known_names_parse_to_their_values() {
        assert_eq!(
            parse_literal("no-export").unwrap(),
            Some(CommunityValue::Standard(Community(0xFFFF_FF01)))
        );
        assert_eq!(
            parse_literal("graceful-shutdown").unwrap(),
            Some(CommunityValue::Standard(Community::from_parts(65535, 0)))
        );
        assert_eq!(
            parse_literal("blackhole").unwrap(),
            Some(CommunityValue::Standard(Community::from_parts(65535, 666)))
        );
    }

    #[test]
    fn alias_names_cannot_shadow_well_known_names_or_look_like_values() {
        assert_eq!(check_alias_name("gold-customers"), Ok(()));
        assert_eq!(
            check_alias_name("no-export"),
            Err(
                "\"no-export\" is a well-known community name and cannot be redefined as an alias"
                    .to_owned()
            )
        );
        assert!(check_alias_name("64500:1").is_err());
        assert!(check_alias_name("").is_err());
    }

    #[test]
    fn names_that_are_not_well_known_are_left_for_alias_resolution() {
        assert_eq!(parse_literal("gold").unwrap(), None);
    }

    #[test]
    fn standard_half_above_65535_is_rejected_with_the_offending_part() {
        assert_eq!(
            parse_literal("65536:1").unwrap_err().to_string(),
            "\"65536:1\" is not a valid community: \"65536\" is not a number from 0 to 65535 \
             (a standard community is A:B with two 16-bit numbers)"
        );
    }

    #[test]
    fn signs_and_spaces_are_not_numbers() {
        assert_eq!(
            parse_literal("+1:2").unwrap_err(),
            CommunityError::StandardPartOutOfRange {
                input: "+1:2".into(),
                part: "+1".into()
            }
        );
        assert!(parse_literal("1: 2").is_err());
    }

    #[test]
    fn three_part_value_without_large_prefix_is_rejected() {
        assert_eq!(
            parse_literal("1:2:3").unwrap_err().to_string(),
            "\"1:2:3\" is not a valid community: expected A:B (two 16-bit numbers) \
             or large:A:B:C (three 32-bit numbers)"
        );
    }

    #[test]
    fn large_community_needs_three_parts() {
        assert_eq!(
            parse_literal("large:1:2").unwrap_err().to_string(),
            "\"large:1:2\" is not a valid large community: expected large:A:B:C with three numbers"
        );
        assert_eq!(
            parse_literal("large:1:2:4294967296")
                .unwrap_err()
                .to_string(),
            "\"large:1:2:4294967296\" is not a valid large community: \"4294967296\" is not a \
             number from 0 to 4294967295"
        );
    }

    proptest::proptest! {
        #[test]
        fn every_standard_value_round_trips_through_text(raw in proptest::num::u32::ANY) {
            let value = CommunityValue::Standard(Community(raw));
            proptest::prop_assert_eq!(parse_literal(&value.to_string()).unwrap(), Some(value));
        }

        #[test]
        fn every_large_value_round_trips_through_text(
            global in proptest::num::u32::ANY,
            local1 in proptest::num::u32::ANY,
            local2 in proptest::num::u32::ANY,
        ) {
            let value = CommunityValue::Large(LargeCommunity { global, local1, local2 });
            proptest::prop_assert_eq!(parse_literal(&value.to_string()).unwrap(), Some(value));
        }
    }
}
