//! BGP-4 wire format: the messages ferrolb speaks, their framing, encoding and strict decoding.
//!
//! This module owns bytes ↔ typed messages and nothing else: it has no notion of sessions, timers
//! or which routes to send (see `fsm` and `rib_out`). It is ours rather than a crate's for the
//! reasons in `docs/bgp-wire.md` ("Why our own codec"): correct AS_SEQUENCE encoding,
//! message-size control, and a decoder that turns every malformed input into a precise error
//! instead of a panic or hang.
//!
//! Decoding is strict and total: any byte string yields either a message or a [`DecodeError`]
//! whose [`DecodeError::notification`] is the NOTIFICATION RFC 4271 §6 asks for. UPDATE attribute
//! errors that RFC 7606 lets a speaker survive (treat-as-withdraw, attribute discard) are recorded
//! in [`Update::recovered_errors`] instead of failing the message.

mod decode;
mod encode;
mod error;
mod message;

use std::net::{Ipv4Addr, Ipv6Addr};

use ipnet::{IpNet, Ipv4Net};

pub use decode::frame_len;
pub use encode::prefix_wire_len;
pub use error::{DecodeError, EncodeError, OpenError, UpdateError};

/// Every BGP message starts with 16 bytes of ones (RFC 4271 §4.1).
pub const MARKER: [u8; 16] = [0xff; 16];
/// Marker, length and type.
pub const HEADER_LEN: usize = 19;
/// RFC 4271 §4.1: the largest message without the extended message capability.
pub const MAX_MESSAGE_LEN: usize = 4096;
/// RFC 8654: the largest message once both sides advertised capability 6.
pub const MAX_EXTENDED_MESSAGE_LEN: usize = 65535;
/// RFC 6793 §9: the 2-octet stand-in for an ASN above 65535.
pub const AS_TRANS: u16 = 23456;

/// Address Family Identifier (IANA).
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct Afi(pub u16);

impl Afi {
    pub const IPV4: Afi = Afi(1);
    pub const IPV6: Afi = Afi(2);
}

/// Subsequent Address Family Identifier (IANA).
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct Safi(pub u8);

impl Safi {
    pub const UNICAST: Safi = Safi(1);
}

/// An AFI/SAFI pair, as carried by MP-BGP capabilities and attributes (RFC 4760).
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct Family {
    pub afi: Afi,
    pub safi: Safi,
}

impl Family {
    pub const IPV4_UNICAST: Family = Family {
        afi: Afi::IPV4,
        safi: Safi::UNICAST,
    };
    pub const IPV6_UNICAST: Family = Family {
        afi: Afi::IPV6,
        safi: Safi::UNICAST,
    };

    /// The unicast family a prefix belongs to.
    pub fn of(prefix: &IpNet) -> Family {
        match prefix {
            IpNet::V4(_) => Family::IPV4_UNICAST,
            IpNet::V6(_) => Family::IPV6_UNICAST,
        }
    }
}

impl std::fmt::Display for Family {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match *self {
            Family::IPV4_UNICAST => f.write_str("ipv4-unicast"),
            Family::IPV6_UNICAST => f.write_str("ipv6-unicast"),
            Family { afi, safi } => write!(f, "afi{}/safi{}", afi.0, safi.0),
        }
    }
}

/// Session parameters that change how messages are encoded and decoded.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct CodecContext {
    /// Both OPENs carried capability 65 (RFC 6793): AS numbers in AS_PATH/AGGREGATOR are 4 octets.
    pub four_octet_as: bool,
    /// The largest message we send: [`MAX_MESSAGE_LEN`], or [`MAX_EXTENDED_MESSAGE_LEN`] when
    /// both sides sent capability 6 (RFC 8654 §4: only to a peer that advertised it).
    pub max_message_len: usize,
    /// The largest message we accept: [`MAX_EXTENDED_MESSAGE_LEN`] once *we* advertised
    /// capability 6, whether or not the peer did (RFC 8654 §4: the advertiser MUST be able to
    /// receive it), else [`MAX_MESSAGE_LEN`]. The decoder never accepts less than
    /// `max_message_len` (see [`CodecContext::receive_limit`]).
    pub max_received_len: usize,
    /// The peer is internal (same AS). RFC 7606 §7.5, §7.9, §7.10: LOCAL_PREF, ORIGINATOR_ID
    /// and CLUSTER_LIST errors from an external peer are attribute discard, from an internal
    /// one treat-as-withdraw.
    pub ibgp: bool,
}

impl CodecContext {
    /// The longest message the decoder accepts: the larger of the two limits, since a side
    /// that may send extended messages has advertised them and so receives them too.
    pub fn receive_limit(&self) -> usize {
        self.max_received_len
            .max(self.max_message_len)
            .min(MAX_EXTENDED_MESSAGE_LEN)
    }
}

impl Default for CodecContext {
    /// What holds before the OPEN exchange: 2-octet ASNs and 4096-byte messages, and an
    /// external peer (ferrolb's usual one; the session sets `ibgp` from its configuration).
    fn default() -> Self {
        CodecContext {
            four_octet_as: false,
            max_message_len: MAX_MESSAGE_LEN,
            max_received_len: MAX_MESSAGE_LEN,
            ibgp: false,
        }
    }
}

/// The message type octet (RFC 4271 §4.1, RFC 2918).
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, PartialOrd, Ord)]
#[repr(u8)]
pub enum MessageType {
    Open = 1,
    Update = 2,
    Notification = 3,
    Keepalive = 4,
    RouteRefresh = 5,
}

/// One BGP message.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Message {
    Open(Open),
    Update(Update),
    Notification(Notification),
    Keepalive,
    RouteRefresh(RouteRefresh),
}

/// OPEN (RFC 4271 §4.2) with capabilities (RFC 5492).
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Open {
    /// Always 4; the decoder rejects anything else.
    pub version: u8,
    /// The 2-octet "My Autonomous System" field: the ASN, or [`AS_TRANS`] when it does not fit.
    pub my_as: u16,
    pub hold_time: u16,
    pub router_id: Ipv4Addr,
    pub capabilities: Vec<Capability>,
}

/// A capability advertised in an OPEN (RFC 5492). Unknown ones are kept raw.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Capability {
    /// Code 1, RFC 4760.
    Multiprotocol(Family),
    /// Code 2, RFC 2918.
    RouteRefresh,
    /// Code 6, RFC 8654.
    ExtendedMessage,
    /// Code 64, RFC 4724.
    GracefulRestart(GracefulRestart),
    /// Code 65, RFC 6793.
    FourOctetAs(u32),
    /// Any other code, value as received.
    Unknown { code: u8, value: Vec<u8> },
}

/// The graceful restart capability (RFC 4724 §3, RFC 8538 N bit).
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct GracefulRestart {
    /// R bit: the sender has restarted, do not wait for its End-of-RIB before sending.
    pub restart_state: bool,
    /// N bit (RFC 8538): the sender supports graceful restart for NOTIFICATION messages.
    pub notification: bool,
    /// Seconds, 12 bits.
    pub restart_time: u16,
    pub families: Vec<GracefulRestartFamily>,
}

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct GracefulRestartFamily {
    pub family: Family,
    /// F bit: forwarding state was preserved across the restart.
    pub forwarding_preserved: bool,
}

/// UPDATE (RFC 4271 §4.3). IPv6 (and IPv4 over MP-BGP) routes travel in
/// [`PathAttribute::MpReach`] / [`PathAttribute::MpUnreach`].
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct Update {
    pub withdrawn: Vec<Ipv4Net>,
    pub attributes: Vec<PathAttribute>,
    pub nlri: Vec<Ipv4Net>,
    /// Attribute errors the decoder recovered from (RFC 7606). Always empty for messages we
    /// build; ignored by the encoder.
    pub recovered_errors: Vec<RecoveredError>,
}

/// An attribute error that RFC 7606 lets the session survive.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct RecoveredError {
    pub action: ErrorAction,
    pub error: UpdateError,
}

/// RFC 7606 §2 error-handling approaches short of a session reset.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum ErrorAction {
    /// Every route in the UPDATE is to be taken as withdrawn.
    TreatAsWithdraw,
    /// The attribute is dropped, the routes stand.
    AttributeDiscard,
}

/// A path attribute. Types we do not interpret are kept raw in [`PathAttribute::Unknown`].
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum PathAttribute {
    /// Type 1.
    Origin(Origin),
    /// Type 2.
    AsPath(AsPath),
    /// Type 3.
    NextHop(Ipv4Addr),
    /// Type 4.
    MultiExitDisc(u32),
    /// Type 5.
    LocalPref(u32),
    /// Type 6.
    AtomicAggregate,
    /// Type 7.
    Aggregator(Aggregator),
    /// Type 8, RFC 1997.
    Communities(Vec<Community>),
    /// Type 9, RFC 4456.
    OriginatorId(Ipv4Addr),
    /// Type 10, RFC 4456.
    ClusterList(Vec<Ipv4Addr>),
    /// Type 14, RFC 4760, for IPv4/IPv6 unicast; other families are kept as `Unknown`.
    MpReach(MpReach),
    /// Type 15, RFC 4760, for IPv4/IPv6 unicast; other families are kept as `Unknown`.
    MpUnreach(MpUnreach),
    /// Type 16, RFC 4360, each value as its 8 raw octets.
    ExtendedCommunities(Vec<[u8; 8]>),
    /// Type 17, RFC 6793.
    As4Path(AsPath),
    /// Type 18, RFC 6793.
    As4Aggregator(Aggregator),
    /// Type 32, RFC 8092.
    LargeCommunities(Vec<LargeCommunity>),
    Unknown(RawAttribute),
}

/// An attribute kept as received.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct RawAttribute {
    /// The Optional, Transitive and Partial bits as received. The decoder drops the
    /// extended-length bit (0x10) and the unused low bits; the encoder recomputes the former.
    pub flags: u8,
    pub type_code: u8,
    pub value: Vec<u8>,
}

#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub enum Origin {
    Igp = 0,
    Egp = 1,
    Incomplete = 2,
}

/// AS_PATH / AS4_PATH. ASNs are held as u32 whatever the wire width.
#[derive(Clone, Debug, Default, PartialEq, Eq, Hash)]
pub struct AsPath {
    pub segments: Vec<AsSegment>,
}

#[derive(Clone, Debug, PartialEq, Eq, Hash)]
pub enum AsSegment {
    /// Type 1.
    Set(Vec<u32>),
    /// Type 2.
    Sequence(Vec<u32>),
    /// Type 3, RFC 5065.
    ConfedSequence(Vec<u32>),
    /// Type 4, RFC 5065.
    ConfedSet(Vec<u32>),
}

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Aggregator {
    pub asn: u32,
    pub address: Ipv4Addr,
}

/// A standard community (RFC 1997): 16-bit ASN, 16-bit value.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct Community(pub u32);

impl Community {
    /// RFC 8326: ask the receiver to lower the route's preference before we withdraw it.
    pub const GRACEFUL_SHUTDOWN: Community = Community(0xFFFF_0000);
    /// RFC 7999.
    pub const BLACKHOLE: Community = Community(0xFFFF_029A);
    /// RFC 1997.
    pub const NO_EXPORT: Community = Community(0xFFFF_FF01);
    pub const NO_ADVERTISE: Community = Community(0xFFFF_FF02);
    pub const NO_EXPORT_SUBCONFED: Community = Community(0xFFFF_FF03);

    pub const fn new(asn: u16, value: u16) -> Community {
        Community(((asn as u32) << 16) | value as u32)
    }
}

impl std::fmt::Display for Community {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "{}:{}", self.0 >> 16, self.0 & 0xffff)
    }
}

/// A large community (RFC 8092).
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct LargeCommunity {
    pub global_admin: u32,
    pub local_data1: u32,
    pub local_data2: u32,
}

impl std::fmt::Display for LargeCommunity {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(
            f,
            "{}:{}:{}",
            self.global_admin, self.local_data1, self.local_data2
        )
    }
}

/// MP_REACH_NLRI for IPv4 or IPv6 unicast.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct MpReach {
    pub family: Family,
    pub next_hop: NextHop,
    pub nlri: Vec<IpNet>,
}

/// MP_UNREACH_NLRI for IPv4 or IPv6 unicast. Empty `withdrawn` is End-of-RIB (RFC 4724 §2).
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct MpUnreach {
    pub family: Family,
    pub withdrawn: Vec<IpNet>,
}

/// The next hop of an MP_REACH_NLRI: 4 octets, or 16/32 octets (RFC 2545; RFC 8950 for IPv4
/// NLRI with an IPv6 next hop).
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum NextHop {
    V4(Ipv4Addr),
    V6 {
        global: Ipv6Addr,
        link_local: Option<Ipv6Addr>,
    },
}

/// NOTIFICATION (RFC 4271 §4.5). See [`Notification::cease`] for RFC 9003 shutdown text.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Notification {
    pub code: u8,
    pub subcode: u8,
    pub data: Vec<u8>,
}

/// ROUTE-REFRESH (RFC 2918; `subtype` from RFC 7313, 0 for a plain request).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct RouteRefresh {
    pub family: Family,
    pub subtype: u8,
}

/// NOTIFICATION error codes (RFC 4271 §4.5, RFC 7313).
pub mod error_code {
    pub const MESSAGE_HEADER: u8 = 1;
    pub const OPEN_MESSAGE: u8 = 2;
    pub const UPDATE_MESSAGE: u8 = 3;
    pub const HOLD_TIMER_EXPIRED: u8 = 4;
    pub const FSM: u8 = 5;
    pub const CEASE: u8 = 6;
    pub const ROUTE_REFRESH: u8 = 7;
}

/// Message Header Error subcodes (RFC 4271 §6.1).
pub mod header_subcode {
    pub const CONNECTION_NOT_SYNCHRONIZED: u8 = 1;
    pub const BAD_MESSAGE_LENGTH: u8 = 2;
    pub const BAD_MESSAGE_TYPE: u8 = 3;
}

/// OPEN Message Error subcodes (RFC 4271 §6.2, RFC 5492).
pub mod open_subcode {
    pub const UNSUPPORTED_VERSION: u8 = 1;
    pub const BAD_PEER_AS: u8 = 2;
    pub const BAD_BGP_IDENTIFIER: u8 = 3;
    pub const UNSUPPORTED_OPTIONAL_PARAMETER: u8 = 4;
    pub const UNACCEPTABLE_HOLD_TIME: u8 = 6;
    pub const UNSUPPORTED_CAPABILITY: u8 = 7;
}

/// UPDATE Message Error subcodes (RFC 4271 §6.3).
pub mod update_subcode {
    pub const MALFORMED_ATTRIBUTE_LIST: u8 = 1;
    pub const UNRECOGNIZED_WELL_KNOWN_ATTRIBUTE: u8 = 2;
    pub const MISSING_WELL_KNOWN_ATTRIBUTE: u8 = 3;
    pub const ATTRIBUTE_FLAGS_ERROR: u8 = 4;
    pub const ATTRIBUTE_LENGTH_ERROR: u8 = 5;
    pub const INVALID_ORIGIN_ATTRIBUTE: u8 = 6;
    pub const INVALID_NEXT_HOP_ATTRIBUTE: u8 = 8;
    pub const OPTIONAL_ATTRIBUTE_ERROR: u8 = 9;
    pub const INVALID_NETWORK_FIELD: u8 = 10;
    pub const MALFORMED_AS_PATH: u8 = 11;
}

/// Finite State Machine Error subcodes (RFC 6608).
pub mod fsm_subcode {
    pub const UNSPECIFIED: u8 = 0;
    pub const UNEXPECTED_IN_OPEN_SENT: u8 = 1;
    pub const UNEXPECTED_IN_OPEN_CONFIRM: u8 = 2;
    pub const UNEXPECTED_IN_ESTABLISHED: u8 = 3;
}

/// Cease subcodes (RFC 4486, RFC 8538).
pub mod cease_subcode {
    pub const MAX_PREFIXES_REACHED: u8 = 1;
    pub const ADMINISTRATIVE_SHUTDOWN: u8 = 2;
    pub const PEER_DECONFIGURED: u8 = 3;
    pub const ADMINISTRATIVE_RESET: u8 = 4;
    pub const CONNECTION_REJECTED: u8 = 5;
    pub const OTHER_CONFIGURATION_CHANGE: u8 = 6;
    pub const CONNECTION_COLLISION_RESOLUTION: u8 = 7;
    pub const OUT_OF_RESOURCES: u8 = 8;
    pub const HARD_RESET: u8 = 9;
}
