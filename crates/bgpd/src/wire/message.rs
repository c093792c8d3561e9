//! Constructors and accessors on the message types: what a caller asks of a message without
//! touching bytes (End-of-RIB, the peer's ASN and families, RFC 9003 shutdown text, the
//! human-readable form of a NOTIFICATION).
//!
//! Encoding and decoding live in `encode` and `decode`; this module never sees the wire.

use std::net::Ipv4Addr;

use super::{
    AS_TRANS, Capability, ErrorAction, Family, GracefulRestart, MpUnreach, Notification, Open,
    PathAttribute, Update, cease_subcode, error_code,
};

impl PathAttribute {
    /// The attribute type code (IANA "BGP Path Attributes").
    pub fn type_code(&self) -> u8 {
        match self {
            PathAttribute::Origin(_) => 1,
            PathAttribute::AsPath(_) => 2,
            PathAttribute::NextHop(_) => 3,
            PathAttribute::MultiExitDisc(_) => 4,
            PathAttribute::LocalPref(_) => 5,
            PathAttribute::AtomicAggregate => 6,
            PathAttribute::Aggregator(_) => 7,
            PathAttribute::Communities(_) => 8,
            PathAttribute::OriginatorId(_) => 9,
            PathAttribute::ClusterList(_) => 10,
            PathAttribute::MpReach(_) => 14,
            PathAttribute::MpUnreach(_) => 15,
            PathAttribute::ExtendedCommunities(_) => 16,
            PathAttribute::As4Path(_) => 17,
            PathAttribute::As4Aggregator(_) => 18,
            PathAttribute::LargeCommunities(_) => 32,
            PathAttribute::Unknown(raw) => raw.type_code,
        }
    }
}

impl Update {
    /// The End-of-RIB marker for `family` (RFC 4724 §2): for IPv4 unicast an UPDATE with
    /// nothing in it; for any other family an UPDATE whose only attribute is an MP_UNREACH_NLRI
    /// with no withdrawn routes.
    pub fn end_of_rib(family: Family) -> Update {
        if family == Family::IPV4_UNICAST {
            return Update::default();
        }
        Update {
            attributes: vec![PathAttribute::MpUnreach(MpUnreach {
                family,
                withdrawn: Vec::new(),
            })],
            ..Update::default()
        }
    }

    /// The family this UPDATE marks End-of-RIB for (RFC 4724 §2), if it is such a marker.
    /// MP_UNREACH_NLRI of families we do not interpret (kept raw) count too.
    pub fn end_of_rib_family(&self) -> Option<Family> {
        if !self.withdrawn.is_empty() || !self.nlri.is_empty() {
            return None;
        }
        match self.attributes.as_slice() {
            [] => Some(Family::IPV4_UNICAST),
            [PathAttribute::MpUnreach(mp)] if mp.withdrawn.is_empty() => Some(mp.family),
            [PathAttribute::Unknown(raw)] if raw.type_code == 15 => match raw.value.as_slice() {
                // AFI (2), SAFI (1), and no withdrawn routes.
                [a, b, safi] => Some(Family {
                    afi: super::Afi(u16::from_be_bytes([*a, *b])),
                    safi: super::Safi(*safi),
                }),
                _ => None,
            },
            _ => None,
        }
    }

    /// True when the decoder recovered from an error by treat-as-withdraw (RFC 7606 §2): every
    /// route in this UPDATE is to be taken as withdrawn.
    pub fn treat_as_withdraw(&self) -> bool {
        self.recovered_errors
            .iter()
            .any(|e| e.action == ErrorAction::TreatAsWithdraw)
    }
}

impl Open {
    /// A BGP-4 OPEN. An `asn` above 65535 goes in "My AS" as [`AS_TRANS`] (RFC 6793 §4.1); the
    /// caller includes [`Capability::FourOctetAs`] in `capabilities`.
    pub fn new(
        asn: u32,
        hold_time: u16,
        router_id: Ipv4Addr,
        capabilities: Vec<Capability>,
    ) -> Open {
        let my_as = u16::try_from(asn).unwrap_or(AS_TRANS);
        Open {
            version: 4,
            my_as,
            hold_time,
            router_id,
            capabilities,
        }
    }

    /// The sender's ASN: from the 4-octet AS capability if present (RFC 6793 §4.1), else
    /// "My AS".
    pub fn asn(&self) -> u32 {
        self.capabilities
            .iter()
            .find_map(|c| match c {
                Capability::FourOctetAs(asn) => Some(*asn),
                _ => None,
            })
            .unwrap_or(u32::from(self.my_as))
    }

    /// The families of the Multiprotocol capabilities, in the order sent (RFC 4760 §8).
    pub fn families(&self) -> Vec<Family> {
        self.capabilities
            .iter()
            .filter_map(|c| match c {
                Capability::Multiprotocol(f) => Some(*f),
                _ => None,
            })
            .collect()
    }

    /// Whether a capability with this code was advertised (raw ones included).
    pub fn has_capability(&self, code: u8) -> bool {
        self.capabilities.iter().any(|c| c.code() == code)
    }

    /// The graceful restart capability (RFC 4724), if advertised.
    pub fn graceful_restart(&self) -> Option<&GracefulRestart> {
        self.capabilities.iter().find_map(|c| match c {
            Capability::GracefulRestart(gr) => Some(gr),
            _ => None,
        })
    }
}

impl Capability {
    /// The capability code (IANA "Capability Codes").
    pub fn code(&self) -> u8 {
        match self {
            Capability::Multiprotocol(_) => 1,
            Capability::RouteRefresh => 2,
            Capability::ExtendedMessage => 6,
            Capability::GracefulRestart(_) => 64,
            Capability::FourOctetAs(_) => 65,
            Capability::Unknown { code, .. } => *code,
        }
    }
}

/// RFC 9003 §2: the shutdown communication is at most 255 octets (its length is one octet).
const MAX_SHUTDOWN_TEXT: usize = 255;

impl Notification {
    pub fn new(code: u8, subcode: u8, data: Vec<u8>) -> Notification {
        Notification {
            code,
            subcode,
            data,
        }
    }

    /// A Cease NOTIFICATION (RFC 4486). For Administrative Shutdown (2) and Administrative
    /// Reset (4) the data is the RFC 9003 shutdown communication: a length octet and UTF-8 text,
    /// truncated to 255 octets on a character boundary. Other subcodes carry no text.
    pub fn cease(subcode: u8, shutdown_text: Option<&str>) -> Notification {
        let mut data = Vec::new();
        if let (true, Some(text)) = (
            carries_shutdown_text(error_code::CEASE, subcode),
            shutdown_text,
        ) {
            let mut end = text.len().min(MAX_SHUTDOWN_TEXT);
            while !text.is_char_boundary(end) {
                end -= 1;
            }
            let text = text.get(..end).unwrap_or_default();
            data.reserve(1 + text.len());
            // `end` <= 255, so the length fits its octet.
            data.push(u8::try_from(text.len()).unwrap_or(u8::MAX));
            data.extend_from_slice(text.as_bytes());
        }
        Notification::new(error_code::CEASE, subcode, data)
    }

    /// The RFC 9003 shutdown communication of a Cease/Administrative Shutdown or Reset; `None`
    /// when absent or empty, when the length octet overruns the data, or when the text is not
    /// UTF-8 (RFC 9003 §2 asks only that such messages be logged).
    pub fn shutdown_text(&self) -> Option<String> {
        if !carries_shutdown_text(self.code, self.subcode) {
            return None;
        }
        let (&len, rest) = self.data.split_first()?;
        let text = rest.get(..usize::from(len))?;
        if text.is_empty() {
            return None;
        }
        std::str::from_utf8(text).ok().map(str::to_owned)
    }
}

fn carries_shutdown_text(code: u8, subcode: u8) -> bool {
    code == error_code::CEASE
        && (subcode == cease_subcode::ADMINISTRATIVE_SHUTDOWN
            || subcode == cease_subcode::ADMINISTRATIVE_RESET)
}

/// Error code names (IANA "BGP Error (Notification) Codes").
fn code_name(code: u8) -> Option<&'static str> {
    Some(match code {
        1 => "Message Header Error",
        2 => "OPEN Message Error",
        3 => "UPDATE Message Error",
        4 => "Hold Timer Expired",
        5 => "Finite State Machine Error",
        6 => "Cease",
        7 => "ROUTE-REFRESH Message Error",
        _ => return None,
    })
}

/// Subcode names (IANA "BGP Error Subcodes" registries).
fn subcode_name(code: u8, subcode: u8) -> Option<&'static str> {
    Some(match (code, subcode) {
        (1, 1) => "Connection Not Synchronized",
        (1, 2) => "Bad Message Length",
        (1, 3) => "Bad Message Type",
        (2, 0) => "Unspecific",
        (2, 1) => "Unsupported Version Number",
        (2, 2) => "Bad Peer AS",
        (2, 3) => "Bad BGP Identifier",
        (2, 4) => "Unsupported Optional Parameter",
        (2, 6) => "Unacceptable Hold Time",
        (2, 7) => "Unsupported Capability",
        (2, 11) => "Role Mismatch",
        (3, 1) => "Malformed Attribute List",
        (3, 2) => "Unrecognized Well-known Attribute",
        (3, 3) => "Missing Well-known Attribute",
        (3, 4) => "Attribute Flags Error",
        (3, 5) => "Attribute Length Error",
        (3, 6) => "Invalid ORIGIN Attribute",
        (3, 8) => "Invalid NEXT_HOP Attribute",
        (3, 9) => "Optional Attribute Error",
        (3, 10) => "Invalid Network Field",
        (3, 11) => "Malformed AS_PATH",
        (5, 0) => "Unspecified Error",
        (5, 1) => "Receive Unexpected Message in OpenSent State",
        (5, 2) => "Receive Unexpected Message in OpenConfirm State",
        (5, 3) => "Receive Unexpected Message in Established State",
        (6, 1) => "Maximum Number of Prefixes Reached",
        (6, 2) => "Administrative Shutdown",
        (6, 3) => "Peer De-configured",
        (6, 4) => "Administrative Reset",
        (6, 5) => "Connection Rejected",
        (6, 6) => "Other Configuration Change",
        (6, 7) => "Connection Collision Resolution",
        (6, 8) => "Out of Resources",
        (6, 9) => "Hard Reset",
        (6, 10) => "BFD Down",
        (7, 1) => "Invalid Message Length",
        _ => return None,
    })
}

impl std::fmt::Display for Notification {
    /// `Cease/Administrative Shutdown (6/2): "maintenance"`,
    /// `UPDATE Message Error/Malformed AS_PATH (3/11)`; unknown codes are shown by number, other
    /// data as hex.
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match (code_name(self.code), subcode_name(self.code, self.subcode)) {
            (Some(c), Some(s)) => write!(f, "{c}/{s}")?,
            // Codes without subcodes (Hold Timer Expired) send 0.
            (Some(c), None) if self.subcode == 0 => f.write_str(c)?,
            (Some(c), None) => write!(f, "{c}/subcode {}", self.subcode)?,
            (None, _) => write!(f, "error code {}/subcode {}", self.code, self.subcode)?,
        }
        write!(f, " ({}/{})", self.code, self.subcode)?;
        if let Some(text) = self.shutdown_text() {
            write!(f, ": {text:?}")?;
        } else if !self.data.is_empty() {
            f.write_str(", data ")?;
            for b in &self.data {
                write!(f, "{b:02x}")?;
            }
        }
        Ok(())
    }
}
