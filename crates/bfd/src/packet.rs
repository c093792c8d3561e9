//! BFD Control packets (RFC 5880 §4.1): the typed packet, its encoding, and a strict, total
//! decoder.
//!
//! This module owns bytes ↔ [`ControlPacket`] and the context-free reception checks of
//! RFC 5880 §6.8.6 (version, lengths, detect multiplier, multipoint bit, discriminators,
//! authentication). It knows nothing of sessions, timers or sockets: which session a packet
//! belongs to, and whether its TTL is acceptable, is decided by `session` and `daemon`.
//!
//! Decoding is total: any byte string yields either a packet or a [`DecodeError`] saying which
//! check failed, and every error maps to a [`DropReason`] for the counters.
//!
//! Authentication (RFC 5880 §4.2–§4.4, §6.7) is not supported: a packet with the A bit set is
//! rejected with [`DecodeError::AuthenticationNotSupported`] (RFC 5880 §6.8.6: "If the A bit is
//! set and no authentication is in use ... the packet MUST be discarded"). Our packets never set
//! A, D (demand) or M (multipoint).

use std::fmt;
use std::time::Duration;

/// RFC 5880 §4.1: the protocol version this crate speaks.
pub const VERSION: u8 = 1;
/// RFC 5880 §4.1: the mandatory section, which is all we ever send.
pub const PACKET_LEN: usize = 24;
/// RFC 5880 §6.8.6: the smallest Length with the A bit set (mandatory section plus the Auth
/// Type and Auth Len octets).
pub const MIN_LEN_WITH_AUTH: usize = 26;

/// Session states as carried in the State (Sta) field (RFC 5880 §4.1, §6.2).
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub enum State {
    AdminDown,
    Down,
    Init,
    Up,
}

impl State {
    /// The two-bit wire value.
    pub fn code(self) -> u8 {
        match self {
            State::AdminDown => 0,
            State::Down => 1,
            State::Init => 2,
            State::Up => 3,
        }
    }

    /// Every two-bit value is a state, so this cannot fail.
    pub fn from_code(code: u8) -> State {
        match code & 0b11 {
            0 => State::AdminDown,
            1 => State::Down,
            2 => State::Init,
            _ => State::Up,
        }
    }

    /// Lower-case name, as used in metrics labels and logs.
    pub fn as_str(self) -> &'static str {
        match self {
            State::AdminDown => "admin_down",
            State::Down => "down",
            State::Init => "init",
            State::Up => "up",
        }
    }
}

impl fmt::Display for State {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match self {
            State::AdminDown => "AdminDown",
            State::Down => "Down",
            State::Init => "Init",
            State::Up => "Up",
        })
    }
}

/// The Diagnostic (Diag) field: why the sender's session last changed state (RFC 5880 §4.1).
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub enum Diagnostic {
    None,
    ControlDetectionTimeExpired,
    EchoFunctionFailed,
    NeighborSignaledSessionDown,
    ForwardingPlaneReset,
    PathDown,
    ConcatenatedPathDown,
    AdministrativelyDown,
    ReverseConcatenatedPathDown,
    /// Codes 9–31 are reserved; a peer that sends one is reported, not rejected.
    Reserved(u8),
}

impl Diagnostic {
    /// The five-bit wire value.
    pub fn code(self) -> u8 {
        match self {
            Diagnostic::None => 0,
            Diagnostic::ControlDetectionTimeExpired => 1,
            Diagnostic::EchoFunctionFailed => 2,
            Diagnostic::NeighborSignaledSessionDown => 3,
            Diagnostic::ForwardingPlaneReset => 4,
            Diagnostic::PathDown => 5,
            Diagnostic::ConcatenatedPathDown => 6,
            Diagnostic::AdministrativelyDown => 7,
            Diagnostic::ReverseConcatenatedPathDown => 8,
            Diagnostic::Reserved(code) => code & 0x1f,
        }
    }

    /// Every five-bit value is a diagnostic (known or reserved), so this cannot fail.
    pub fn from_code(code: u8) -> Diagnostic {
        match code & 0x1f {
            0 => Diagnostic::None,
            1 => Diagnostic::ControlDetectionTimeExpired,
            2 => Diagnostic::EchoFunctionFailed,
            3 => Diagnostic::NeighborSignaledSessionDown,
            4 => Diagnostic::ForwardingPlaneReset,
            5 => Diagnostic::PathDown,
            6 => Diagnostic::ConcatenatedPathDown,
            7 => Diagnostic::AdministrativelyDown,
            8 => Diagnostic::ReverseConcatenatedPathDown,
            other => Diagnostic::Reserved(other),
        }
    }
}

impl fmt::Display for Diagnostic {
    /// The RFC 5880 §4.1 wording, suitable for a BGP Cease message's text.
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Diagnostic::None => f.write_str("no diagnostic"),
            Diagnostic::ControlDetectionTimeExpired => {
                f.write_str("control detection time expired")
            }
            Diagnostic::EchoFunctionFailed => f.write_str("echo function failed"),
            Diagnostic::NeighborSignaledSessionDown => {
                f.write_str("neighbor signaled session down")
            }
            Diagnostic::ForwardingPlaneReset => f.write_str("forwarding plane reset"),
            Diagnostic::PathDown => f.write_str("path down"),
            Diagnostic::ConcatenatedPathDown => f.write_str("concatenated path down"),
            Diagnostic::AdministrativelyDown => f.write_str("administratively down"),
            Diagnostic::ReverseConcatenatedPathDown => {
                f.write_str("reverse concatenated path down")
            }
            Diagnostic::Reserved(code) => write!(f, "reserved diagnostic {code}"),
        }
    }
}

/// One BFD Control packet without an authentication section (RFC 5880 §4.1).
///
/// Intervals are kept in microseconds, as on the wire, so that decoding and encoding are exact
/// inverses; [`ControlPacket::desired_min_tx`] and friends give them as [`Duration`]s.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub struct ControlPacket {
    pub diagnostic: Diagnostic,
    pub state: State,
    /// P: the sender asks for a Final (RFC 5880 §6.5).
    pub poll: bool,
    /// F: the sender answers a Poll. Never set together with `poll`.
    pub final_: bool,
    /// C: the sender's BFD does not share fate with its control plane.
    pub control_plane_independent: bool,
    /// D: the sender wants to run Demand mode (RFC 5880 §6.6).
    pub demand: bool,
    /// Nonzero.
    pub detect_multiplier: u8,
    /// Nonzero.
    pub my_discriminator: u32,
    /// Zero only while the sender's state is Down or AdminDown.
    pub your_discriminator: u32,
    pub desired_min_tx_us: u32,
    pub required_min_rx_us: u32,
    pub required_min_echo_rx_us: u32,
}

impl ControlPacket {
    pub fn desired_min_tx(&self) -> Duration {
        Duration::from_micros(self.desired_min_tx_us.into())
    }

    pub fn required_min_rx(&self) -> Duration {
        Duration::from_micros(self.required_min_rx_us.into())
    }

    pub fn required_min_echo_rx(&self) -> Duration {
        Duration::from_micros(self.required_min_echo_rx_us.into())
    }

    /// The 24-octet wire form. A, M are always clear: we neither authenticate nor speak
    /// multipoint BFD.
    pub fn encode(&self) -> [u8; PACKET_LEN] {
        let mut out = [0u8; PACKET_LEN];
        out[0] = (VERSION << 5) | self.diagnostic.code();
        out[1] = (self.state.code() << 6)
            | (u8::from(self.poll) << 5)
            | (u8::from(self.final_) << 4)
            | (u8::from(self.control_plane_independent) << 3)
            | (u8::from(self.demand) << 1);
        out[2] = self.detect_multiplier;
        out[3] = PACKET_LEN as u8;
        out[4..8].copy_from_slice(&self.my_discriminator.to_be_bytes());
        out[8..12].copy_from_slice(&self.your_discriminator.to_be_bytes());
        out[12..16].copy_from_slice(&self.desired_min_tx_us.to_be_bytes());
        out[16..20].copy_from_slice(&self.required_min_rx_us.to_be_bytes());
        out[20..24].copy_from_slice(&self.required_min_echo_rx_us.to_be_bytes());
        out
    }

    /// Decodes the UDP payload `payload` with the checks of RFC 5880 §6.8.6 that need no
    /// session: version 1, Length ≥ 24 (26 with A), Length ≤ the payload, Detect Mult ≠ 0, M
    /// clear, My Discriminator ≠ 0, Your Discriminator ≠ 0 unless the state is Down or
    /// AdminDown, and A clear (we run no authentication). Octets after Length are ignored.
    pub fn decode(payload: &[u8]) -> Result<ControlPacket, DecodeError> {
        let Some(&first) = payload.first() else {
            return Err(DecodeError::Truncated { payload: 0 });
        };
        let version = first >> 5;
        if version != VERSION {
            return Err(DecodeError::BadVersion { version });
        }
        if payload.len() < 4 {
            return Err(DecodeError::Truncated {
                payload: payload.len(),
            });
        }
        let flags = payload[1];
        let authenticated = flags & 0b0000_0100 != 0;
        let length = payload[3];
        let minimum = if authenticated {
            MIN_LEN_WITH_AUTH
        } else {
            PACKET_LEN
        };
        if usize::from(length) < minimum {
            return Err(DecodeError::LengthTooSmall {
                length,
                authenticated,
            });
        }
        if usize::from(length) > payload.len() {
            return Err(DecodeError::LengthExceedsPayload {
                length,
                payload: payload.len(),
            });
        }
        let detect_multiplier = payload[2];
        if detect_multiplier == 0 {
            return Err(DecodeError::ZeroDetectMultiplier);
        }
        if flags & 0b0000_0001 != 0 {
            return Err(DecodeError::MultipointSet);
        }
        let word = |at: usize| {
            u32::from_be_bytes([
                payload[at],
                payload[at + 1],
                payload[at + 2],
                payload[at + 3],
            ])
        };
        let my_discriminator = word(4);
        if my_discriminator == 0 {
            return Err(DecodeError::ZeroMyDiscriminator);
        }
        let state = State::from_code(flags >> 6);
        let your_discriminator = word(8);
        if your_discriminator == 0 && !matches!(state, State::Down | State::AdminDown) {
            return Err(DecodeError::ZeroYourDiscriminator { state });
        }
        if authenticated {
            // Length ≥ 26 was checked, so the Auth Type octet is there.
            return Err(DecodeError::AuthenticationNotSupported {
                auth_type: payload[24],
            });
        }
        let poll = flags & 0b0010_0000 != 0;
        let final_ = flags & 0b0001_0000 != 0;
        Ok(ControlPacket {
            diagnostic: Diagnostic::from_code(first),
            state,
            poll,
            final_,
            control_plane_independent: flags & 0b0000_1000 != 0,
            demand: flags & 0b0000_0010 != 0,
            detect_multiplier,
            my_discriminator,
            your_discriminator,
            desired_min_tx_us: word(12),
            required_min_rx_us: word(16),
            required_min_echo_rx_us: word(20),
        })
    }
}

/// Why a received datagram is not a BFD Control packet we accept (RFC 5880 §6.8.6).
#[derive(Clone, Copy, Debug, PartialEq, Eq, thiserror::Error)]
pub enum DecodeError {
    /// Too short to hold the version and Length octets.
    #[error("payload of {payload} octets is too short for a BFD Control packet")]
    Truncated { payload: usize },
    #[error("unsupported BFD version {version}")]
    BadVersion { version: u8 },
    #[error("Length {length} is below the minimum (A bit {authenticated})")]
    LengthTooSmall { length: u8, authenticated: bool },
    #[error("Length {length} exceeds the {payload}-octet UDP payload")]
    LengthExceedsPayload { length: u8, payload: usize },
    #[error("Detect Mult is zero")]
    ZeroDetectMultiplier,
    #[error("the Multipoint bit is set")]
    MultipointSet,
    #[error("My Discriminator is zero")]
    ZeroMyDiscriminator,
    #[error("Your Discriminator is zero in state {state}")]
    ZeroYourDiscriminator { state: State },
    /// The A bit is set: ferrolb runs no BFD authentication, so RFC 5880 §6.8.6 says discard.
    #[error("authenticated packet (auth type {auth_type}); BFD authentication is not supported")]
    AuthenticationNotSupported { auth_type: u8 },
}

impl DecodeError {
    pub fn drop_reason(&self) -> DropReason {
        match self {
            DecodeError::Truncated { .. } => DropReason::Truncated,
            DecodeError::BadVersion { .. } => DropReason::BadVersion,
            DecodeError::LengthTooSmall { .. } => DropReason::LengthTooSmall,
            DecodeError::LengthExceedsPayload { .. } => DropReason::LengthExceedsPayload,
            DecodeError::ZeroDetectMultiplier => DropReason::ZeroDetectMultiplier,
            DecodeError::MultipointSet => DropReason::MultipointSet,
            DecodeError::ZeroMyDiscriminator => DropReason::ZeroMyDiscriminator,
            DecodeError::ZeroYourDiscriminator { .. } => DropReason::ZeroYourDiscriminator,
            DecodeError::AuthenticationNotSupported { .. } => {
                DropReason::AuthenticationNotSupported
            }
        }
    }
}

/// Every reason a received datagram is discarded, as a closed set suitable for a metrics label.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub enum DropReason {
    // Packet checks (RFC 5880 §6.8.6), from the decoder.
    Truncated,
    BadVersion,
    LengthTooSmall,
    LengthExceedsPayload,
    ZeroDetectMultiplier,
    MultipointSet,
    ZeroMyDiscriminator,
    ZeroYourDiscriminator,
    AuthenticationNotSupported,
    // Session selection (RFC 5880 §6.8.6, RFC 5881 §3, RFC 5883 §3).
    /// Your Discriminator names no session of ours.
    UnknownDiscriminator,
    /// Your Discriminator is zero and no session matches the source address, interface and
    /// (if configured) local address.
    NoMatchingSession,
    /// The packet came from an address other than the session's peer, or on the other port
    /// (single hop vs multihop) than the session uses.
    WrongSource,
    // Transport checks.
    /// RFC 5881 §5: single-hop packets must arrive with TTL / hop limit 255.
    TtlNot255,
    /// RFC 5883 §2: a multihop packet below the session's configured minimum TTL.
    TtlBelowMinimum,
    /// The kernel did not report the TTL, so the checks above cannot be made.
    TtlUnknown,
    // Session state.
    /// RFC 5880 §6.8.6: our session is AdminDown.
    SessionAdminDown,
}

impl DropReason {
    pub const ALL: [DropReason; 16] = [
        DropReason::Truncated,
        DropReason::BadVersion,
        DropReason::LengthTooSmall,
        DropReason::LengthExceedsPayload,
        DropReason::ZeroDetectMultiplier,
        DropReason::MultipointSet,
        DropReason::ZeroMyDiscriminator,
        DropReason::ZeroYourDiscriminator,
        DropReason::AuthenticationNotSupported,
        DropReason::UnknownDiscriminator,
        DropReason::NoMatchingSession,
        DropReason::WrongSource,
        DropReason::TtlNot255,
        DropReason::TtlBelowMinimum,
        DropReason::TtlUnknown,
        DropReason::SessionAdminDown,
    ];

    /// A stable snake_case name for metrics labels.
    pub fn as_str(self) -> &'static str {
        match self {
            DropReason::Truncated => "truncated",
            DropReason::BadVersion => "bad_version",
            DropReason::LengthTooSmall => "length_too_small",
            DropReason::LengthExceedsPayload => "length_exceeds_payload",
            DropReason::ZeroDetectMultiplier => "zero_detect_multiplier",
            DropReason::MultipointSet => "multipoint_set",
            DropReason::ZeroMyDiscriminator => "zero_my_discriminator",
            DropReason::ZeroYourDiscriminator => "zero_your_discriminator",
            DropReason::AuthenticationNotSupported => "authentication_not_supported",
            DropReason::UnknownDiscriminator => "unknown_discriminator",
            DropReason::NoMatchingSession => "no_matching_session",
            DropReason::WrongSource => "wrong_source",
            DropReason::TtlNot255 => "ttl_not_255",
            DropReason::TtlBelowMinimum => "ttl_below_minimum",
            DropReason::TtlUnknown => "ttl_unknown",
            DropReason::SessionAdminDown => "session_admin_down",
        }
    }
}

impl fmt::Display for DropReason {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn up_packet() -> ControlPacket {
        ControlPacket {
            diagnostic: Diagnostic::None,
            state: State::Up,
            poll: false,
            final_: false,
            control_plane_independent: false,
            demand: false,
            detect_multiplier: 3,
            my_discriminator: 1,
            your_discriminator: 2,
            desired_min_tx_us: 300_000,
            required_min_rx_us: 300_000,
            required_min_echo_rx_us: 0,
        }
    }

    #[test]
    fn state_and_diagnostic_codes_round_trip() {
        for code in 0..4 {
            assert_eq!(State::from_code(code).code(), code);
        }
        for code in 0..32 {
            assert_eq!(Diagnostic::from_code(code).code(), code);
        }
        assert_eq!(Diagnostic::from_code(9), Diagnostic::Reserved(9));
    }

    #[test]
    fn every_drop_reason_has_a_distinct_label() {
        let labels: std::collections::BTreeSet<&str> =
            DropReason::ALL.iter().map(|r| r.as_str()).collect();
        assert_eq!(labels.len(), DropReason::ALL.len());
    }

    #[test]
    fn encoded_packet_never_sets_authentication_or_multipoint() {
        let bytes = up_packet().encode();
        assert_eq!(bytes[1] & 0b0000_0101, 0);
        assert_eq!(usize::from(bytes[3]), PACKET_LEN);
    }

    #[test]
    fn trailing_octets_after_length_are_ignored() {
        let mut bytes = up_packet().encode().to_vec();
        bytes.extend_from_slice(&[0xde, 0xad]);
        assert_eq!(ControlPacket::decode(&bytes), Ok(up_packet()));
    }
}
