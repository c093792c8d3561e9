//! Errors of the wire codec, and the NOTIFICATION each decode error calls for.
//!
//! This module owns the error types and their mapping to NOTIFICATION code/subcode/data
//! (RFC 4271 §6, RFC 7606, RFC 4760 §7). It does not decide what a session does with an error:
//! a [`DecodeError`] means "reset the session with this NOTIFICATION"; errors the session survives
//! are carried as [`super::RecoveredError`] inside the decoded UPDATE instead.

use std::net::Ipv4Addr;

use super::{
    HEADER_LEN, MAX_MESSAGE_LEN, Notification, error_code, header_subcode, open_subcode,
    update_subcode,
};

/// RFC 8654 §5: "if a NOTIFICATION is to be sent to a BGP speaker that has not advertised the
/// BGP Extended Message Capability, the size of the message MUST NOT exceed 4,096 octets." We
/// accept extended messages from a peer that did not advertise them (RFC 8654 §4), so an
/// erroneous attribute can be larger than the NOTIFICATION that quotes it may be: the data is
/// cut to what fits 4096 octets. Its first octets (flags, type, length) identify the attribute.
const MAX_NOTIFICATION_DATA: usize = MAX_MESSAGE_LEN - HEADER_LEN - 2;

/// A message that cannot be accepted: the session must be reset with
/// [`DecodeError::notification`] (RFC 4271 §6).
#[derive(Clone, Debug, PartialEq, Eq, thiserror::Error)]
pub enum DecodeError {
    /// RFC 4271 §6.1: the 16-octet marker is not all ones.
    #[error("connection not synchronized: the header marker is not all ones")]
    ConnectionNotSynchronized,
    /// RFC 4271 §6.1: the header length is out of bounds for the message type (or for the
    /// negotiated maximum). Also used for a ROUTE-REFRESH whose length is not 23.
    #[error("bad message length {length} for message type {message_type}")]
    BadMessageLength { length: u16, message_type: u8 },
    /// RFC 4271 §6.1: the type octet is not one we know.
    #[error("bad message type {message_type}")]
    BadMessageType { message_type: u8 },
    /// A NOTIFICATION whose length is out of bounds (shorter than 21 octets or longer than the
    /// maximum). RFC 4271 §6.4: it is never answered with a NOTIFICATION.
    #[error("NOTIFICATION with bad message length {length}")]
    NotificationLength { length: u16 },
    /// The caller passed [`super::Message::decode`] a buffer that is not exactly one message:
    /// shorter than a header (`declared` is `None`), or not as long as the header says.
    #[error("frame of {actual} octets does not match the header length {declared:?}")]
    FrameLength {
        declared: Option<u16>,
        actual: usize,
    },
    #[error("OPEN message error: {0}")]
    Open(#[from] OpenError),
    #[error("UPDATE message error: {0}")]
    Update(#[from] UpdateError),
}

impl DecodeError {
    /// The NOTIFICATION to send back (RFC 4271 §6, RFC 7606), with the RFC's data field; `None`
    /// when the malformed message was itself a NOTIFICATION (RFC 4271 §6.4: never answer a
    /// NOTIFICATION with one).
    pub fn notification(&self) -> Option<Notification> {
        let n = match self {
            DecodeError::ConnectionNotSynchronized => Notification::new(
                error_code::MESSAGE_HEADER,
                header_subcode::CONNECTION_NOT_SYNCHRONIZED,
                Vec::new(),
            ),
            // RFC 4271 §6.1: the data field is the erroneous Length field.
            DecodeError::BadMessageLength { length, .. } => Notification::new(
                error_code::MESSAGE_HEADER,
                header_subcode::BAD_MESSAGE_LENGTH,
                length.to_be_bytes().to_vec(),
            ),
            DecodeError::FrameLength { declared, .. } => Notification::new(
                error_code::MESSAGE_HEADER,
                header_subcode::BAD_MESSAGE_LENGTH,
                declared
                    .map(|l| l.to_be_bytes().to_vec())
                    .unwrap_or_default(),
            ),
            // RFC 4271 §6.1: the data field is the erroneous Type field.
            DecodeError::BadMessageType { message_type } => Notification::new(
                error_code::MESSAGE_HEADER,
                header_subcode::BAD_MESSAGE_TYPE,
                vec![*message_type],
            ),
            DecodeError::NotificationLength { .. } => return None,
            DecodeError::Open(e) => e.notification(),
            DecodeError::Update(e) => e.notification(),
        };
        Some(n)
    }
}

/// Why an OPEN was rejected (RFC 4271 §6.2, RFC 5492, RFC 7607, RFC 9072).
#[derive(Clone, Debug, PartialEq, Eq, thiserror::Error)]
pub enum OpenError {
    /// Only BGP-4 is spoken.
    #[error("unsupported BGP version {version}")]
    UnsupportedVersion { version: u8 },
    /// RFC 7607: AS 0 in "My AS" or in the 4-octet AS capability.
    #[error("bad peer AS {asn}")]
    BadPeerAs { asn: u32 },
    /// RFC 4271 §6.2 (and RFC 6286): the BGP identifier must be non-zero.
    #[error("bad BGP identifier {router_id}")]
    BadBgpIdentifier { router_id: Ipv4Addr },
    /// An optional parameter other than Capabilities (type 2); type 1 (authentication) is
    /// deprecated by RFC 5492.
    #[error("unsupported optional parameter type {param_type}")]
    UnsupportedOptionalParameter { param_type: u8 },
    /// RFC 4271 §4.2: the hold time must be 0 or at least 3 seconds.
    #[error("unacceptable hold time {hold_time}")]
    UnacceptableHoldTime { hold_time: u16 },
    /// The optional parameter framing is broken (lengths disagree with the message).
    #[error("malformed optional parameters: {reason}")]
    MalformedOptionalParameters { reason: &'static str },
    /// A capability we interpret has a value that does not parse.
    #[error("malformed capability {code} (length {length}): {reason}")]
    MalformedCapability {
        code: u8,
        length: usize,
        reason: &'static str,
    },
}

impl OpenError {
    /// The NOTIFICATION this error calls for (RFC 4271 §6.2).
    pub fn notification(&self) -> Notification {
        let (subcode, data) = match self {
            // RFC 4271 §6.2: the data is the largest locally supported version, 2 octets.
            OpenError::UnsupportedVersion { .. } => (open_subcode::UNSUPPORTED_VERSION, vec![0, 4]),
            OpenError::BadPeerAs { .. } => (open_subcode::BAD_PEER_AS, Vec::new()),
            OpenError::BadBgpIdentifier { .. } => (open_subcode::BAD_BGP_IDENTIFIER, Vec::new()),
            OpenError::UnsupportedOptionalParameter { .. } => {
                (open_subcode::UNSUPPORTED_OPTIONAL_PARAMETER, Vec::new())
            }
            OpenError::UnacceptableHoldTime { .. } => {
                (open_subcode::UNACCEPTABLE_HOLD_TIME, Vec::new())
            }
            // RFC 4271 §6.2: a recognized but malformed optional parameter gets subcode 0
            // (Unspecific).
            OpenError::MalformedOptionalParameters { .. }
            | OpenError::MalformedCapability { .. } => (0, Vec::new()),
        };
        Notification::new(error_code::OPEN_MESSAGE, subcode, data)
    }
}

/// A malformed UPDATE, each RFC 4271 §6.3 / RFC 7606 case. Whether it resets the session or is
/// recovered from (treat-as-withdraw, attribute discard) is decided by the decoder: as a
/// [`DecodeError::Update`] it resets, inside [`super::RecoveredError`] it was survived.
///
/// `attribute` fields hold the whole erroneous attribute (flags, type, length and value), which
/// RFC 4271 §6.3 puts in the NOTIFICATION data.
#[derive(Clone, Debug, PartialEq, Eq, thiserror::Error)]
pub enum UpdateError {
    /// RFC 4271 §6.3, RFC 7606 §4: the withdrawn-routes / attribute lengths or an attribute
    /// header do not fit the message. For the last attribute of the list (not MP_REACH_NLRI /
    /// MP_UNREACH_NLRI) RFC 7606 §4 makes this treat-as-withdraw.
    #[error("malformed attribute list: {reason}")]
    MalformedAttributeList { reason: &'static str },
    /// RFC 7606 §3 (g): an attribute appears more than once. For MP_REACH_NLRI/MP_UNREACH_NLRI
    /// this resets the session; for others the repeats are discarded.
    #[error("attribute type {type_code} appears more than once")]
    DuplicateAttribute { type_code: u8 },
    /// RFC 4271 §6.3, RFC 7606 §3 (c): the Optional/Transitive bits conflict with the type.
    #[error("attribute type {type_code}: flags {flags:#04x} conflict with its definition")]
    AttributeFlags {
        type_code: u8,
        flags: u8,
        attribute: Vec<u8>,
    },
    /// RFC 4271 §6.3: the length conflicts with what the type allows.
    #[error("attribute type {type_code}: length {length} is invalid, {expected}")]
    AttributeLength {
        type_code: u8,
        length: usize,
        expected: &'static str,
        attribute: Vec<u8>,
    },
    /// RFC 4271 §5, §6.3: an attribute of a type we do not recognise arrived with the Optional
    /// bit clear, i.e. claiming to be well-known. Every well-known attribute must be recognised
    /// by every speaker, so this resets the session.
    #[error("unrecognized well-known attribute type {type_code}")]
    UnrecognizedWellKnownAttribute { type_code: u8, attribute: Vec<u8> },
    /// RFC 4271 §6.3, RFC 7606 §3 (d): ORIGIN, AS_PATH or NEXT_HOP is absent although the
    /// UPDATE carries reachable NLRI.
    #[error("missing well-known attribute type {type_code}")]
    MissingWellKnownAttribute { type_code: u8 },
    /// RFC 4271 §6.3: ORIGIN is not 0, 1 or 2.
    #[error("invalid ORIGIN value {value}")]
    InvalidOrigin { value: u8, attribute: Vec<u8> },
    /// RFC 4271 §6.3: the NEXT_HOP is not a usable unicast host address.
    #[error("invalid NEXT_HOP {next_hop}")]
    InvalidNextHop {
        next_hop: Ipv4Addr,
        attribute: Vec<u8>,
    },
    /// RFC 4271 §6.3, RFC 7606 §7.2: an AS_PATH segment does not parse (type 2) or an AS4_PATH
    /// does not (type 17, RFC 6793 §6).
    #[error("malformed AS path (attribute type {type_code}): {reason}")]
    MalformedAsPath { type_code: u8, reason: &'static str },
    /// RFC 4760 §7: a malformed MP_REACH_NLRI / MP_UNREACH_NLRI.
    #[error("optional attribute type {type_code}: {reason}")]
    OptionalAttribute {
        type_code: u8,
        reason: &'static str,
        attribute: Vec<u8>,
    },
    /// RFC 4271 §6.3: a prefix in the withdrawn routes, NLRI, or an MP attribute does not parse.
    #[error("invalid network field in {field}: {reason}")]
    InvalidNetworkField {
        field: &'static str,
        reason: &'static str,
    },
}

impl UpdateError {
    /// The UPDATE Message Error subcode (RFC 4271 §6.3).
    pub fn subcode(&self) -> u8 {
        match self {
            UpdateError::MalformedAttributeList { .. } | UpdateError::DuplicateAttribute { .. } => {
                update_subcode::MALFORMED_ATTRIBUTE_LIST
            }
            UpdateError::UnrecognizedWellKnownAttribute { .. } => {
                update_subcode::UNRECOGNIZED_WELL_KNOWN_ATTRIBUTE
            }
            UpdateError::AttributeFlags { .. } => update_subcode::ATTRIBUTE_FLAGS_ERROR,
            UpdateError::AttributeLength { .. } => update_subcode::ATTRIBUTE_LENGTH_ERROR,
            UpdateError::MissingWellKnownAttribute { .. } => {
                update_subcode::MISSING_WELL_KNOWN_ATTRIBUTE
            }
            UpdateError::InvalidOrigin { .. } => update_subcode::INVALID_ORIGIN_ATTRIBUTE,
            UpdateError::InvalidNextHop { .. } => update_subcode::INVALID_NEXT_HOP_ATTRIBUTE,
            UpdateError::MalformedAsPath { .. } => update_subcode::MALFORMED_AS_PATH,
            UpdateError::OptionalAttribute { .. } => update_subcode::OPTIONAL_ATTRIBUTE_ERROR,
            UpdateError::InvalidNetworkField { .. } => update_subcode::INVALID_NETWORK_FIELD,
        }
    }

    /// The attribute type code the error is about, if it is about one.
    pub fn type_code(&self) -> Option<u8> {
        match self {
            UpdateError::MalformedAttributeList { .. }
            | UpdateError::InvalidNetworkField { .. } => None,
            UpdateError::DuplicateAttribute { type_code }
            | UpdateError::UnrecognizedWellKnownAttribute { type_code, .. }
            | UpdateError::AttributeFlags { type_code, .. }
            | UpdateError::AttributeLength { type_code, .. }
            | UpdateError::MissingWellKnownAttribute { type_code }
            | UpdateError::MalformedAsPath { type_code, .. }
            | UpdateError::OptionalAttribute { type_code, .. } => Some(*type_code),
            UpdateError::InvalidOrigin { .. } => Some(1),
            UpdateError::InvalidNextHop { .. } => Some(3),
        }
    }

    /// The NOTIFICATION this error calls for when it resets the session (RFC 4271 §6.3), its
    /// data cut so the whole message fits 4096 octets (RFC 8654 §5).
    pub fn notification(&self) -> Notification {
        let mut data = match self {
            // RFC 4271 §6.3: for Unrecognized Well-known Attribute, as for the others here, the
            // data is the attribute (type, length and value).
            UpdateError::UnrecognizedWellKnownAttribute { attribute, .. }
            | UpdateError::AttributeFlags { attribute, .. }
            | UpdateError::AttributeLength { attribute, .. }
            | UpdateError::InvalidOrigin { attribute, .. }
            | UpdateError::InvalidNextHop { attribute, .. }
            | UpdateError::OptionalAttribute { attribute, .. } => attribute.clone(),
            // RFC 4271 §6.3: the data is the type code of the missing attribute.
            UpdateError::MissingWellKnownAttribute { type_code } => vec![*type_code],
            UpdateError::MalformedAttributeList { .. }
            | UpdateError::DuplicateAttribute { .. }
            | UpdateError::MalformedAsPath { .. }
            | UpdateError::InvalidNetworkField { .. } => Vec::new(),
        };
        data.truncate(MAX_NOTIFICATION_DATA);
        Notification::new(error_code::UPDATE_MESSAGE, self.subcode(), data)
    }
}

/// A message that cannot be put on the wire as it is. Nothing is appended to the output
/// buffer when encoding fails.
#[derive(Clone, Debug, PartialEq, Eq, thiserror::Error)]
pub enum EncodeError {
    /// The message would exceed the negotiated maximum (4096 for OPEN and KEEPALIVE always,
    /// RFC 8654 §4). The caller must split it.
    #[error("message of {length} octets exceeds the maximum of {max}")]
    TooLong { length: usize, max: usize },
    /// A path attribute value does not fit the 2-octet extended length.
    #[error("attribute type {type_code} value of {length} octets exceeds 65535")]
    AttributeTooLong { type_code: u8, length: usize },
    /// A capability value does not fit its 1-octet length (RFC 5492).
    #[error("capability {code} value of {length} octets exceeds 255")]
    CapabilityTooLong { code: u8, length: usize },
    /// RFC 4724 §3: the restart time is 12 bits.
    #[error("graceful restart time {restart_time} exceeds 4095 seconds")]
    RestartTimeTooLarge { restart_time: u16 },
    /// A prefix inside an MP attribute is not of the attribute's address family.
    #[error("prefix {prefix} does not belong to the attribute's family {family}")]
    PrefixFamilyMismatch {
        prefix: ipnet::IpNet,
        family: super::Family,
    },
}
