//! Decoding: bytes from a peer → typed messages or the precise error RFC 4271 §6 / RFC 7606 ask
//! for.
//!
//! This module owns framing ([`frame_len`]) and the strict, total decoder. It does not act on
//! errors (the session does) and does not check what needs more session knowledge than the
//! [`CodecContext`] carries (ASN width, the receive limit, internal or external peer): the
//! peer's expected ASN, AS_CONFED segments from an eBGP peer.
//!
//! Every read is a bounds-checked slice operation: any byte string yields a message or an error,
//! without panic, recursion, or an allocation sized by a length field rather than by the input.

use std::net::{Ipv4Addr, Ipv6Addr};

use ipnet::{IpNet, Ipv4Net, Ipv6Net};

use super::encode::flag;
use super::{
    Afi, Aggregator, AsPath, AsSegment, Capability, CodecContext, DecodeError, ErrorAction, Family,
    GracefulRestart, GracefulRestartFamily, HEADER_LEN, LargeCommunity, MAX_MESSAGE_LEN, Message,
    MessageType, MpReach, MpUnreach, NextHop, Notification, Open, OpenError, Origin, PathAttribute,
    RawAttribute, RecoveredError, RouteRefresh, Safi, Update, UpdateError,
};

/// RFC 4271 §4.2: the fixed part of an OPEN (header + 10 octets).
const MIN_OPEN_LEN: usize = 29;
/// RFC 4271 §4.3: header + the two 2-octet lengths.
const MIN_UPDATE_LEN: usize = 23;
/// RFC 4271 §4.5: header + code + subcode.
const MIN_NOTIFICATION_LEN: usize = 21;
/// RFC 2918 §3: header + AFI, reserved/subtype, SAFI.
const ROUTE_REFRESH_LEN: usize = 23;

/// A small cursor over untrusted bytes: every read either returns the bytes or `None`.
struct Reader<'a> {
    rest: &'a [u8],
}

impl<'a> Reader<'a> {
    fn new(bytes: &'a [u8]) -> Self {
        Reader { rest: bytes }
    }

    fn take(&mut self, n: usize) -> Option<&'a [u8]> {
        if n > self.rest.len() {
            return None;
        }
        let (head, tail) = self.rest.split_at(n);
        self.rest = tail;
        Some(head)
    }

    fn u8(&mut self) -> Option<u8> {
        let (&b, tail) = self.rest.split_first()?;
        self.rest = tail;
        Some(b)
    }

    fn u16(&mut self) -> Option<u16> {
        let b = self.take(2)?;
        Some(u16::from_be_bytes([*b.first()?, *b.get(1)?]))
    }

    fn u32(&mut self) -> Option<u32> {
        let b = self.take(4)?;
        Some(u32::from_be_bytes(b.try_into().ok()?))
    }

    fn ipv4(&mut self) -> Option<Ipv4Addr> {
        self.u32().map(Ipv4Addr::from)
    }

    fn ipv6(&mut self) -> Option<Ipv6Addr> {
        let b: [u8; 16] = self.take(16)?.try_into().ok()?;
        Some(Ipv6Addr::from(b))
    }

    fn is_empty(&self) -> bool {
        self.rest.is_empty()
    }

    fn remaining(&self) -> usize {
        self.rest.len()
    }
}

// ---------------------------------------------------------------------------------------------
// Framing (RFC 4271 §4.1, §6.1; RFC 8654 §4)

/// The validated 19-octet header.
struct Header {
    length: usize,
    message_type: MessageType,
}

/// Checks whatever part of the header `buf` already holds. `Ok(None)`: fewer than 19 octets
/// and nothing wrong so far.
fn check_header(buf: &[u8], ctx: &CodecContext) -> Result<Option<Header>, DecodeError> {
    // RFC 4271 §6.1: a bad marker is detectable before the rest of the header arrives.
    let marker = buf.get(..buf.len().min(16)).unwrap_or_default();
    if marker.iter().any(|&b| b != 0xff) {
        return Err(DecodeError::ConnectionNotSynchronized);
    }
    let Some(&[.., hi, lo, type_octet]) = buf.get(..HEADER_LEN) else {
        return Ok(None);
    };
    let length16 = u16::from_be_bytes([hi, lo]);
    let length = usize::from(length16);
    let bad_length = || {
        if type_octet == MessageType::Notification as u8 {
            // RFC 4271 §6.4: a broken NOTIFICATION is never answered with one.
            DecodeError::NotificationLength { length: length16 }
        } else {
            DecodeError::BadMessageLength {
                length: length16,
                message_type: type_octet,
            }
        }
    };
    // RFC 8654 §4: what we accept follows what we advertised, not what the peer did.
    if length < HEADER_LEN || length > ctx.receive_limit() {
        return Err(bad_length());
    }
    let (message_type, in_bounds) = match type_octet {
        // RFC 8654 §4: an OPEN is never longer than 4096, extended messages or not.
        1 => (
            MessageType::Open,
            (MIN_OPEN_LEN..=MAX_MESSAGE_LEN).contains(&length),
        ),
        2 => (MessageType::Update, length >= MIN_UPDATE_LEN),
        3 => (MessageType::Notification, length >= MIN_NOTIFICATION_LEN),
        4 => (MessageType::Keepalive, length == HEADER_LEN),
        5 => (MessageType::RouteRefresh, length == ROUTE_REFRESH_LEN),
        other => {
            return Err(DecodeError::BadMessageType {
                message_type: other,
            });
        }
    };
    if !in_bounds {
        return Err(bad_length());
    }
    Ok(Some(Header {
        length,
        message_type,
    }))
}

/// Framing for a stream reader: `Ok(None)` = need more bytes; `Ok(Some(n))` = the first `n`
/// bytes are one whole message.
///
/// The marker, length and type are validated as soon as the 19-octet header is there (the
/// marker even earlier), before the body arrives: a length below 19, above
/// [`CodecContext::receive_limit`], or outside the type's bounds (OPEN 29..=4096, UPDATE >= 23,
/// NOTIFICATION >= 21, KEEPALIVE == 19, ROUTE-REFRESH == 23) is Bad Message Length; an unknown
/// type is Bad Message Type; a marker that is not all ones is Connection Not Synchronized.
pub fn frame_len(buf: &[u8], ctx: &CodecContext) -> Result<Option<usize>, DecodeError> {
    Ok(check_header(buf, ctx)?
        .map(|h| h.length)
        .filter(|&n| n <= buf.len()))
}

impl Message {
    /// Decodes one whole message; `frame` must be exactly the octets [`frame_len`] delimited.
    pub fn decode(frame: &[u8], ctx: &CodecContext) -> Result<Message, DecodeError> {
        let header = check_header(frame, ctx)?.ok_or(DecodeError::FrameLength {
            declared: None,
            actual: frame.len(),
        })?;
        if header.length != frame.len() {
            return Err(DecodeError::FrameLength {
                declared: u16::try_from(header.length).ok(),
                actual: frame.len(),
            });
        }
        let body = frame.get(HEADER_LEN..).unwrap_or_default();
        Ok(match header.message_type {
            MessageType::Open => Message::Open(decode_open(body)?),
            MessageType::Update => Message::Update(decode_update(body, ctx)?),
            MessageType::Notification => Message::Notification(decode_notification(body)),
            MessageType::Keepalive => Message::Keepalive,
            MessageType::RouteRefresh => Message::RouteRefresh(decode_route_refresh(body)),
        })
    }
}

// ---------------------------------------------------------------------------------------------
// NOTIFICATION (RFC 4271 §4.5) and ROUTE-REFRESH (RFC 2918 §3, RFC 7313 §3)

/// The header check guarantees code and subcode; the data is kept whole (RFC 9003 text, or the
/// offending bytes of the peer's complaint).
fn decode_notification(body: &[u8]) -> Notification {
    match body {
        [code, subcode, data @ ..] => Notification::new(*code, *subcode, data.to_vec()),
        // Unreachable after the header check; an empty NOTIFICATION is still not a panic.
        _ => Notification::new(0, 0, body.to_vec()),
    }
}

fn decode_route_refresh(body: &[u8]) -> RouteRefresh {
    let (afi, subtype, safi) = match body {
        [a, b, subtype, safi] => (u16::from_be_bytes([*a, *b]), *subtype, *safi),
        _ => (0, 0, 0),
    };
    RouteRefresh {
        family: Family {
            afi: Afi(afi),
            safi: Safi(safi),
        },
        subtype,
    }
}

// ---------------------------------------------------------------------------------------------
// OPEN (RFC 4271 §4.2, §6.2; RFC 5492; RFC 9072)

fn decode_open(body: &[u8]) -> Result<Open, OpenError> {
    let malformed = |reason| OpenError::MalformedOptionalParameters { reason };
    let mut r = Reader::new(body);
    let too_short = malformed("OPEN shorter than its fixed fields");
    let version = r.u8().ok_or(too_short.clone())?;
    if version != 4 {
        return Err(OpenError::UnsupportedVersion { version });
    }
    let my_as = r.u16().ok_or(too_short.clone())?;
    // RFC 7607 §3: AS 0 is never a valid peer AS.
    if my_as == 0 {
        return Err(OpenError::BadPeerAs { asn: 0 });
    }
    let hold_time = r.u16().ok_or(too_short.clone())?;
    // RFC 4271 §4.2: zero (no keepalives) or at least three seconds.
    if hold_time == 1 || hold_time == 2 {
        return Err(OpenError::UnacceptableHoldTime { hold_time });
    }
    let router_id = r.ipv4().ok_or(too_short.clone())?;
    if router_id.is_unspecified() {
        return Err(OpenError::BadBgpIdentifier { router_id });
    }
    let opt_len = r.u8().ok_or(too_short)?;
    // RFC 9072 §2: Non-Ext OP Len 255 followed by Non-Ext OP Type 255 announces the extended
    // form, with a 2-octet total and 2-octet parameter lengths.
    let extended = opt_len == 255 && r.rest.first() == Some(&255);
    let params = if extended {
        r.u8();
        let len = r
            .u16()
            .ok_or(malformed("truncated extended optional parameters length"))?;
        r.take(usize::from(len))
    } else {
        r.take(usize::from(opt_len))
    }
    .ok_or(malformed("optional parameters length exceeds the message"))?;
    if !r.is_empty() {
        return Err(malformed("octets after the optional parameters"));
    }

    let mut capabilities = Vec::new();
    let mut p = Reader::new(params);
    while !p.is_empty() {
        let param_type = p
            .u8()
            .ok_or(malformed("truncated optional parameter header"))?;
        let len = if extended {
            p.u16()
        } else {
            p.u8().map(u16::from)
        }
        .ok_or(malformed("truncated optional parameter header"))?;
        let value = p
            .take(usize::from(len))
            .ok_or(malformed("optional parameter overruns the parameters"))?;
        // RFC 5492 §4: type 2 is Capabilities; the deprecated type 1 (authentication) and any
        // other type are unsupported.
        if param_type != 2 {
            return Err(OpenError::UnsupportedOptionalParameter { param_type });
        }
        decode_capabilities(value, &mut capabilities)?;
    }
    Ok(Open {
        version,
        my_as,
        hold_time,
        router_id,
        capabilities,
    })
}

/// One Capabilities parameter, which may hold several capabilities (RFC 5492 §4).
fn decode_capabilities(value: &[u8], out: &mut Vec<Capability>) -> Result<(), OpenError> {
    let mut r = Reader::new(value);
    while !r.is_empty() {
        let (Some(code), Some(len)) = (r.u8(), r.u8()) else {
            return Err(OpenError::MalformedOptionalParameters {
                reason: "truncated capability header",
            });
        };
        let length = usize::from(len);
        let value = r.take(length).ok_or(OpenError::MalformedCapability {
            code,
            length,
            reason: "value overruns its parameter",
        })?;
        let bad = |reason| OpenError::MalformedCapability {
            code,
            length,
            reason,
        };
        let cap = match code {
            // RFC 4760 §8: AFI (2), reserved (1), SAFI (1).
            1 => match value {
                [a, b, _, safi] => Capability::Multiprotocol(Family {
                    afi: Afi(u16::from_be_bytes([*a, *b])),
                    safi: Safi(*safi),
                }),
                _ => return Err(bad("length is not 4")),
            },
            // RFC 2918 §2, RFC 8654 §3: no value.
            2 if value.is_empty() => Capability::RouteRefresh,
            2 => return Err(bad("length is not 0")),
            6 if value.is_empty() => Capability::ExtendedMessage,
            6 => return Err(bad("length is not 0")),
            64 => Capability::GracefulRestart(
                decode_graceful_restart(value)
                    .ok_or(bad("length is not 2 plus a multiple of 4"))?,
            ),
            // RFC 6793 §3.
            65 => match value {
                [a, b, c, d] => {
                    let asn = u32::from_be_bytes([*a, *b, *c, *d]);
                    // RFC 7607 §3.
                    if asn == 0 {
                        return Err(OpenError::BadPeerAs { asn });
                    }
                    Capability::FourOctetAs(asn)
                }
                _ => return Err(bad("length is not 4")),
            },
            // Everything else, FQDN (73) included, is kept as received and never rejected.
            _ => Capability::Unknown {
                code,
                value: value.to_vec(),
            },
        };
        out.push(cap);
    }
    Ok(())
}

/// RFC 4724 §3: restart flags (4 bits: R, N per RFC 8538), restart time (12 bits), then
/// AFI (2), SAFI (1), flags (1, F = 0x80) per family.
fn decode_graceful_restart(value: &[u8]) -> Option<GracefulRestart> {
    let mut r = Reader::new(value);
    let head = r.u16()?;
    if !r.remaining().is_multiple_of(4) {
        return None;
    }
    let mut families = Vec::new();
    while let (Some(afi), Some(safi), Some(flags)) = (r.u16(), r.u8(), r.u8()) {
        families.push(GracefulRestartFamily {
            family: Family {
                afi: Afi(afi),
                safi: Safi(safi),
            },
            forwarding_preserved: flags & 0x80 != 0,
        });
    }
    Some(GracefulRestart {
        restart_state: head & 0x8000 != 0,
        notification: head & 0x4000 != 0,
        restart_time: head & 0x0fff,
        families,
    })
}

// ---------------------------------------------------------------------------------------------
// UPDATE (RFC 4271 §4.3, §6.3; RFC 7606; RFC 4760)

/// What became of one attribute.
enum Outcome {
    Keep(PathAttribute),
    /// RFC 7606 §2: survived by treat-as-withdraw or attribute discard.
    Recover(ErrorAction, UpdateError),
    /// RFC 7606 §2: session reset.
    Reset(UpdateError),
}

fn decode_update(body: &[u8], ctx: &CodecContext) -> Result<Update, DecodeError> {
    let list_error = |reason| UpdateError::MalformedAttributeList { reason };
    let mut r = Reader::new(body);
    // RFC 4271 §6.3, RFC 7606 §4: lengths that overrun the message reset the session.
    let withdrawn_len = r
        .u16()
        .ok_or(list_error("truncated withdrawn routes length"))?;
    let withdrawn_bytes = r
        .take(usize::from(withdrawn_len))
        .ok_or(list_error("withdrawn routes length exceeds the message"))?;
    let attr_len = r
        .u16()
        .ok_or(list_error("withdrawn routes length exceeds the message"))?;
    let attr_bytes = r.take(usize::from(attr_len)).ok_or(list_error(
        "total path attribute length exceeds the message",
    ))?;
    let nlri_bytes = r.rest;

    let withdrawn = parse_v4_prefixes(withdrawn_bytes, "withdrawn routes")?;
    let mut update = Update {
        withdrawn,
        ..Update::default()
    };

    // Which type codes have been seen, for RFC 7606 §3 (g) duplicates and §3 (d) missing
    // mandatory attributes.
    let mut seen = [false; 256];
    let mut a = Reader::new(attr_bytes);
    while !a.is_empty() {
        let all = a.rest;
        let (flags, type_code, len) = match attribute_header(&mut a) {
            Ok(header) => header,
            Err(cut) => {
                // RFC 7606 §4: the last attribute overruns the Total Attribute Length, or fewer
                // octets remain than an attribute header needs. Treat-as-withdraw, with the NLRI
                // located by the Total Attribute Length (as `nlri_bytes` already is), unless the
                // cut attribute is an MP one: its routes could not be known, so neither
                // withdrawn (RFC 7606 §7.11).
                if matches!(cut.type_code, Some(14 | 15)) {
                    return Err(list_error(cut.reason).into());
                }
                update.recovered_errors.push(RecoveredError {
                    action: ErrorAction::TreatAsWithdraw,
                    error: list_error(cut.reason),
                });
                break;
            }
        };
        let Some(value) = a.take(usize::from(len)) else {
            // Unreachable: `attribute_header` checked that the value is there.
            return Err(list_error("attribute length exceeds the attribute list").into());
        };
        let raw = all
            .get(..all.len().saturating_sub(a.remaining()))
            .unwrap_or_default();

        let seen_before = seen
            .get(usize::from(type_code))
            .copied()
            .unwrap_or_default();
        if seen_before {
            let error = UpdateError::DuplicateAttribute { type_code };
            // RFC 7606 §3 (g): a repeated MP attribute resets; other repeats are discarded.
            if matches!(type_code, 14 | 15) {
                return Err(error.into());
            }
            update.recovered_errors.push(RecoveredError {
                action: ErrorAction::AttributeDiscard,
                error,
            });
            continue;
        }
        if let Some(s) = seen.get_mut(usize::from(type_code)) {
            *s = true;
        }

        match decode_attribute(flags, type_code, value, raw, ctx) {
            Outcome::Keep(attr) => update.attributes.push(attr),
            Outcome::Recover(action, error) => {
                update
                    .recovered_errors
                    .push(RecoveredError { action, error });
            }
            Outcome::Reset(error) => return Err(error.into()),
        }
        // RFC 7606 §3 (c): an MP attribute with bad flags is still parsed (its routes must be
        // known to withdraw them) and kept; the flag error makes the UPDATE treat-as-withdraw.
        if matches!(type_code, 14 | 15) && flags & 0xc0 != flag::OPTIONAL_NON_TRANSITIVE {
            update.recovered_errors.push(RecoveredError {
                action: ErrorAction::TreatAsWithdraw,
                error: UpdateError::AttributeFlags {
                    type_code,
                    flags,
                    attribute: raw.to_vec(),
                },
            });
        }
    }

    update.nlri = parse_v4_prefixes(nlri_bytes, "NLRI")?;

    // RFC 7606 §5.2: with path attributes but no NLRI, MP_REACH_NLRI or MP_UNREACH_NLRI there
    // are no routes to treat as withdrawn, so "if any encountered error specifies an
    // error-handling approach other than "attribute discard", then the "session reset"
    // approach MUST be used".
    let seen_type = |t: u8| seen.get(usize::from(t)).copied().unwrap_or_default();
    if !attr_bytes.is_empty()
        && update.nlri.is_empty()
        && !seen_type(14)
        && !seen_type(15)
        && let Some(first) = update
            .recovered_errors
            .iter()
            .find(|e| e.action == ErrorAction::TreatAsWithdraw)
    {
        return Err(first.error.clone().into());
    }

    // RFC 4271 §6.3, RFC 4760 §3, RFC 7606 §3 (d): reachable routes need ORIGIN and AS_PATH,
    // and NEXT_HOP when they are in the NLRI field.
    let mp_reach = update.attributes.iter().any(|a| match a {
        PathAttribute::MpReach(mp) => !mp.nlri.is_empty(),
        PathAttribute::Unknown(raw) => raw.type_code == 14,
        _ => false,
    });
    let mut required: &[u8] = &[];
    if !update.nlri.is_empty() {
        required = &[1, 2, 3];
    } else if mp_reach {
        required = &[1, 2];
    }
    for &type_code in required {
        if !seen
            .get(usize::from(type_code))
            .copied()
            .unwrap_or_default()
        {
            update.recovered_errors.push(RecoveredError {
                action: ErrorAction::TreatAsWithdraw,
                error: UpdateError::MissingWellKnownAttribute { type_code },
            });
        }
    }
    Ok(update)
}

/// An attribute header that does not fit what is left of the attribute list.
struct CutAttribute {
    /// Known when at least the flags and type octets are there.
    type_code: Option<u8>,
    reason: &'static str,
}

/// Reads flags, type and length (RFC 4271 §4.3) and checks that the value fits the list.
fn attribute_header(a: &mut Reader<'_>) -> Result<(u8, u8, u16), CutAttribute> {
    let truncated = |type_code| CutAttribute {
        type_code,
        reason: "truncated attribute header",
    };
    let (Some(flags), Some(type_code)) = (a.u8(), a.u8()) else {
        return Err(truncated(None));
    };
    let len = if flags & flag::EXTENDED_LENGTH != 0 {
        a.u16()
    } else {
        a.u8().map(u16::from)
    }
    .ok_or(truncated(Some(type_code)))?;
    if usize::from(len) > a.remaining() {
        return Err(CutAttribute {
            type_code: Some(type_code),
            reason: "attribute length exceeds the attribute list",
        });
    }
    Ok((flags, type_code, len))
}

/// The Optional and Transitive bits each attribute we interpret must carry (RFC 4271 §5,
/// RFC 4456, RFC 4760, RFC 6793, RFC 8092); `None` for types we keep raw.
fn expected_flags(type_code: u8) -> Option<u8> {
    Some(match type_code {
        1 | 2 | 3 | 5 | 6 => flag::WELL_KNOWN,
        4 | 9 | 10 | 14 | 15 => flag::OPTIONAL_NON_TRANSITIVE,
        7 | 8 | 16 | 17 | 18 | 32 => flag::OPTIONAL_TRANSITIVE,
        _ => return None,
    })
}

fn decode_attribute(
    flags: u8,
    type_code: u8,
    value: &[u8],
    raw: &[u8],
    ctx: &CodecContext,
) -> Outcome {
    let outcome = interpret_attribute(flags, type_code, value, raw, ctx);
    // RFC 7606 §7.5, §7.9, §7.10: from an external peer these attributes "SHALL be discarded
    // using the approach of "attribute discard"", so an error in one (length or flags) costs
    // only the attribute. Well-formed ones are kept for the caller, which ignores them
    // (RFC 4271 §5.1.5).
    match outcome {
        Outcome::Recover(_, error) if !ctx.ibgp && matches!(type_code, 5 | 9 | 10) => {
            Outcome::Recover(ErrorAction::AttributeDiscard, error)
        }
        other => other,
    }
}

fn interpret_attribute(
    flags: u8,
    type_code: u8,
    value: &[u8],
    raw: &[u8],
    ctx: &CodecContext,
) -> Outcome {
    use ErrorAction::{AttributeDiscard, TreatAsWithdraw};
    let Some(expected) = expected_flags(type_code) else {
        // RFC 4271 §5: "Well-known attributes must be recognized by all BGP
        // implementations", so an unrecognized one claiming to be well-known is an error
        // (§6.3: Unrecognized Well-known Attribute, the attribute as data). RFC 7606 does not
        // relax this.
        if flags & flag::OPTIONAL == 0 {
            return Outcome::Reset(UpdateError::UnrecognizedWellKnownAttribute {
                type_code,
                attribute: raw.to_vec(),
            });
        }
        // Unknown optional types are kept as received (RFC 4271 §5 lets us drop unknown
        // non-transitive ones; keeping them lets the caller see what the peer sent).
        return Outcome::Keep(raw_attribute(flags, type_code, value));
    };
    // RFC 7606 §3 (c). MP attributes are handled by the caller, after parsing.
    if flags & (flag::OPTIONAL | flag::TRANSITIVE) != expected && !matches!(type_code, 14 | 15) {
        return Outcome::Recover(
            TreatAsWithdraw,
            UpdateError::AttributeFlags {
                type_code,
                flags,
                attribute: raw.to_vec(),
            },
        );
    }
    let length_error = |action, expected| {
        Outcome::Recover(
            action,
            UpdateError::AttributeLength {
                type_code,
                length: value.len(),
                expected,
                attribute: raw.to_vec(),
            },
        )
    };
    let four = |v: &[u8]| -> Option<[u8; 4]> { v.try_into().ok() };
    let asn_width = if ctx.four_octet_as { 4 } else { 2 };
    match type_code {
        // RFC 7606 §7.1.
        1 => match value {
            [0] => Outcome::Keep(PathAttribute::Origin(Origin::Igp)),
            [1] => Outcome::Keep(PathAttribute::Origin(Origin::Egp)),
            [2] => Outcome::Keep(PathAttribute::Origin(Origin::Incomplete)),
            [v] => Outcome::Recover(
                TreatAsWithdraw,
                UpdateError::InvalidOrigin {
                    value: *v,
                    attribute: raw.to_vec(),
                },
            ),
            _ => length_error(TreatAsWithdraw, "expected 1"),
        },
        // RFC 7606 §7.2.
        2 => match parse_as_path(value, asn_width) {
            Ok(path) => Outcome::Keep(PathAttribute::AsPath(path)),
            Err(reason) => Outcome::Recover(
                TreatAsWithdraw,
                UpdateError::MalformedAsPath { type_code, reason },
            ),
        },
        // RFC 7606 §7.3; RFC 4271 §6.3: a next hop that is no host address is ignored.
        3 => match four(value).map(Ipv4Addr::from) {
            Some(nh) if nh.is_unspecified() || nh.is_multicast() || nh.is_broadcast() => {
                Outcome::Recover(
                    TreatAsWithdraw,
                    UpdateError::InvalidNextHop {
                        next_hop: nh,
                        attribute: raw.to_vec(),
                    },
                )
            }
            Some(nh) => Outcome::Keep(PathAttribute::NextHop(nh)),
            None => length_error(TreatAsWithdraw, "expected 4"),
        },
        // RFC 7606 §7.4, §7.5.
        4 | 5 => match four(value).map(u32::from_be_bytes) {
            Some(v) if type_code == 4 => Outcome::Keep(PathAttribute::MultiExitDisc(v)),
            Some(v) => Outcome::Keep(PathAttribute::LocalPref(v)),
            None => length_error(TreatAsWithdraw, "expected 4"),
        },
        // RFC 7606 §7.6.
        6 if value.is_empty() => Outcome::Keep(PathAttribute::AtomicAggregate),
        6 => length_error(AttributeDiscard, "expected 0"),
        // RFC 7606 §7.7: 6 octets, or 8 once 4-octet ASNs are negotiated.
        7 => match parse_aggregator(value, asn_width) {
            Some(agg) => Outcome::Keep(PathAttribute::Aggregator(agg)),
            None if ctx.four_octet_as => length_error(AttributeDiscard, "expected 8"),
            None => length_error(AttributeDiscard, "expected 6"),
        },
        // RFC 7606 §7.8: a non-zero multiple of 4.
        8 => match fixed_items::<4>(value) {
            Some(items) => Outcome::Keep(PathAttribute::Communities(
                items
                    .map(|b| super::Community(u32::from_be_bytes(b)))
                    .collect(),
            )),
            None => length_error(TreatAsWithdraw, "expected a non-zero multiple of 4"),
        },
        // RFC 7606 §7.9.
        9 => match four(value) {
            Some(b) => Outcome::Keep(PathAttribute::OriginatorId(Ipv4Addr::from(b))),
            None => length_error(TreatAsWithdraw, "expected 4"),
        },
        // RFC 7606 §7.10: a non-zero multiple of 4.
        10 => match fixed_items::<4>(value) {
            Some(items) => Outcome::Keep(PathAttribute::ClusterList(
                items.map(Ipv4Addr::from).collect(),
            )),
            None => length_error(TreatAsWithdraw, "expected a non-zero multiple of 4"),
        },
        14 => decode_mp_reach(flags, value, raw),
        15 => decode_mp_unreach(flags, value, raw),
        // RFC 7606 §7.14: a non-zero multiple of 8.
        16 => match fixed_items::<8>(value) {
            Some(items) => Outcome::Keep(PathAttribute::ExtendedCommunities(items.collect())),
            None => length_error(TreatAsWithdraw, "expected a non-zero multiple of 8"),
        },
        // RFC 6793 §6: a malformed AS4_PATH is discarded.
        17 => match parse_as_path(value, 4) {
            Ok(path) => Outcome::Keep(PathAttribute::As4Path(path)),
            Err(reason) => Outcome::Recover(
                AttributeDiscard,
                UpdateError::MalformedAsPath { type_code, reason },
            ),
        },
        // RFC 6793 §6: a malformed AS4_AGGREGATOR is discarded.
        18 => match parse_aggregator(value, 4) {
            Some(agg) => Outcome::Keep(PathAttribute::As4Aggregator(agg)),
            None => length_error(AttributeDiscard, "expected 8"),
        },
        // RFC 8092 §6: a non-zero multiple of 12, else treat-as-withdraw.
        32 => match fixed_items::<12>(value) {
            Some(items) => Outcome::Keep(PathAttribute::LargeCommunities(
                items
                    .map(|b| {
                        let [a0, a1, a2, a3, b0, b1, b2, b3, c0, c1, c2, c3] = b;
                        LargeCommunity {
                            global_admin: u32::from_be_bytes([a0, a1, a2, a3]),
                            local_data1: u32::from_be_bytes([b0, b1, b2, b3]),
                            local_data2: u32::from_be_bytes([c0, c1, c2, c3]),
                        }
                    })
                    .collect(),
            )),
            None => length_error(TreatAsWithdraw, "expected a non-zero multiple of 12"),
        },
        _ => Outcome::Keep(raw_attribute(flags, type_code, value)),
    }
}

/// An attribute we keep uninterpreted. Only the Optional, Transitive and Partial bits are kept:
/// the extended-length bit is an encoding choice (the encoder makes its own) and the low four
/// bits are unused (RFC 4271 §4.3), so equal attributes compare equal however they were framed.
fn raw_attribute(flags: u8, type_code: u8, value: &[u8]) -> PathAttribute {
    PathAttribute::Unknown(RawAttribute {
        flags: flags & (flag::OPTIONAL | flag::TRANSITIVE | flag::PARTIAL),
        type_code,
        value: value.to_vec(),
    })
}

/// Splits `value` into N-octet items; `None` unless its length is a non-zero multiple of N.
fn fixed_items<const N: usize>(value: &[u8]) -> Option<impl Iterator<Item = [u8; N]> + '_> {
    if value.is_empty() || !value.len().is_multiple_of(N) {
        return None;
    }
    Some(
        value
            .chunks_exact(N)
            .filter_map(|c| <[u8; N]>::try_from(c).ok()),
    )
}

fn parse_asn(bytes: &[u8]) -> Option<u32> {
    match *bytes {
        [a, b] => Some(u32::from(u16::from_be_bytes([a, b]))),
        [a, b, c, d] => Some(u32::from_be_bytes([a, b, c, d])),
        _ => None,
    }
}

fn parse_aggregator(value: &[u8], asn_width: usize) -> Option<Aggregator> {
    if value.len() != asn_width + 4 {
        return None;
    }
    let (asn, address) = value.split_at(asn_width);
    Some(Aggregator {
        asn: parse_asn(asn)?,
        address: Ipv4Addr::from(<[u8; 4]>::try_from(address).ok()?),
    })
}

/// RFC 4271 §4.3, RFC 7606 §7.2: a sequence of (type 1..=4, count >= 1, count ASNs) segments
/// filling the attribute exactly.
fn parse_as_path(value: &[u8], asn_width: usize) -> Result<AsPath, &'static str> {
    let mut r = Reader::new(value);
    let mut segments = Vec::new();
    while !r.is_empty() {
        let (Some(seg_type), Some(count)) = (r.u8(), r.u8()) else {
            return Err("truncated segment header");
        };
        if count == 0 {
            return Err("segment with no ASNs");
        }
        let bytes = r
            .take(usize::from(count) * asn_width)
            .ok_or("segment has fewer ASNs than its count")?;
        let asns: Vec<u32> = bytes
            .chunks_exact(asn_width)
            .filter_map(parse_asn)
            .collect();
        segments.push(match seg_type {
            1 => AsSegment::Set(asns),
            2 => AsSegment::Sequence(asns),
            3 => AsSegment::ConfedSequence(asns),
            4 => AsSegment::ConfedSet(asns),
            _ => return Err("unknown segment type"),
        });
    }
    Ok(AsPath { segments })
}

/// The next prefix of an NLRI-encoded list (RFC 4271 §4.3): (length in bits, address octets).
fn next_prefix<'a>(r: &mut Reader<'a>, max_bits: u8) -> Result<(u8, &'a [u8]), &'static str> {
    let bits = r.u8().ok_or("truncated prefix")?;
    if bits > max_bits {
        return Err("prefix length exceeds the address length");
    }
    let octets = r
        .take(usize::from(bits).div_ceil(8))
        .ok_or("prefix overruns the field")?;
    Ok((bits, octets))
}

/// Copies `src` into the start of a zeroed array (`src` is never longer: callers checked the
/// prefix length).
fn padded<const N: usize>(src: &[u8]) -> [u8; N] {
    let mut out = [0u8; N];
    for (o, s) in out.iter_mut().zip(src) {
        *o = *s;
    }
    out
}

fn v4_prefix(bits: u8, octets: &[u8]) -> Option<Ipv4Net> {
    // Host bits past the length are cleared, so equal prefixes compare equal.
    Ipv4Net::new(Ipv4Addr::from(padded::<4>(octets)), bits)
        .ok()
        .map(|n| n.trunc())
}

fn v6_prefix(bits: u8, octets: &[u8]) -> Option<Ipv6Net> {
    Ipv6Net::new(Ipv6Addr::from(padded::<16>(octets)), bits)
        .ok()
        .map(|n| n.trunc())
}

/// RFC 4271 §6.3: a prefix that does not parse is an Invalid Network Field.
fn parse_v4_prefixes(bytes: &[u8], field: &'static str) -> Result<Vec<Ipv4Net>, UpdateError> {
    let mut r = Reader::new(bytes);
    let mut out = Vec::new();
    while !r.is_empty() {
        let (bits, octets) = next_prefix(&mut r, 32)
            .map_err(|reason| UpdateError::InvalidNetworkField { field, reason })?;
        out.push(
            v4_prefix(bits, octets).ok_or(UpdateError::InvalidNetworkField {
                field,
                reason: "prefix length exceeds the address length",
            })?,
        );
    }
    Ok(out)
}

fn parse_mp_prefixes(
    bytes: &[u8],
    afi: Afi,
    field: &'static str,
) -> Result<Vec<IpNet>, UpdateError> {
    let max_bits = if afi == Afi::IPV4 { 32 } else { 128 };
    let mut r = Reader::new(bytes);
    let mut out = Vec::new();
    while !r.is_empty() {
        let (bits, octets) = next_prefix(&mut r, max_bits)
            .map_err(|reason| UpdateError::InvalidNetworkField { field, reason })?;
        let prefix = if afi == Afi::IPV4 {
            v4_prefix(bits, octets).map(IpNet::V4)
        } else {
            v6_prefix(bits, octets).map(IpNet::V6)
        };
        out.push(prefix.ok_or(UpdateError::InvalidNetworkField {
            field,
            reason: "prefix length exceeds the address length",
        })?);
    }
    Ok(out)
}

fn is_unicast_family(family: Family) -> bool {
    family == Family::IPV4_UNICAST || family == Family::IPV6_UNICAST
}

/// RFC 4760 §3, §7; RFC 7606 §7.11: a malformed MP_REACH_NLRI resets the session (we have no
/// AFI/SAFI-disable), with Optional Attribute Error and the attribute as data.
fn decode_mp_reach(flags: u8, value: &[u8], raw: &[u8]) -> Outcome {
    let bad = |reason| {
        Outcome::Reset(UpdateError::OptionalAttribute {
            type_code: 14,
            reason,
            attribute: raw.to_vec(),
        })
    };
    let mut r = Reader::new(value);
    let (Some(afi), Some(safi)) = (r.u16(), r.u8()) else {
        return bad("too short for AFI and SAFI");
    };
    let Some(nh_len) = r.u8() else {
        return bad("no next-hop length");
    };
    let Some(nh) = r.take(usize::from(nh_len)) else {
        return bad("next hop overruns the attribute");
    };
    // The reserved octet (RFC 4760 §3) is ignored on receipt but must be there.
    if r.u8().is_none() {
        return bad("no reserved octet");
    }
    let family = Family {
        afi: Afi(afi),
        safi: Safi(safi),
    };
    if !is_unicast_family(family) {
        return Outcome::Keep(raw_attribute(flags, 14, value));
    }
    let mut n = Reader::new(nh);
    // RFC 2545 §3 (16 or 32 for IPv6); RFC 8950 §3 lets IPv4 NLRI carry an IPv6 next hop.
    let next_hop = match (nh.len(), family.afi) {
        (4, Afi::IPV4) => n.ipv4().map(NextHop::V4),
        (16, _) => n.ipv6().map(|global| NextHop::V6 {
            global,
            link_local: None,
        }),
        (32, _) => match (n.ipv6(), n.ipv6()) {
            (Some(global), Some(ll)) => Some(NextHop::V6 {
                global,
                link_local: Some(ll),
            }),
            _ => None,
        },
        _ => None,
    };
    let Some(next_hop) = next_hop else {
        return bad("next-hop length is not valid for the address family");
    };
    match parse_mp_prefixes(r.rest, family.afi, "MP_REACH_NLRI") {
        Ok(nlri) => Outcome::Keep(PathAttribute::MpReach(MpReach {
            family,
            next_hop,
            nlri,
        })),
        Err(e) => Outcome::Reset(e),
    }
}

/// RFC 4760 §4, §7; RFC 7606 §7.11.
fn decode_mp_unreach(flags: u8, value: &[u8], raw: &[u8]) -> Outcome {
    let mut r = Reader::new(value);
    let (Some(afi), Some(safi)) = (r.u16(), r.u8()) else {
        return Outcome::Reset(UpdateError::OptionalAttribute {
            type_code: 15,
            reason: "too short for AFI and SAFI",
            attribute: raw.to_vec(),
        });
    };
    let family = Family {
        afi: Afi(afi),
        safi: Safi(safi),
    };
    if !is_unicast_family(family) {
        return Outcome::Keep(raw_attribute(flags, 15, value));
    }
    match parse_mp_prefixes(r.rest, family.afi, "MP_UNREACH_NLRI") {
        Ok(withdrawn) => Outcome::Keep(PathAttribute::MpUnreach(MpUnreach { family, withdrawn })),
        Err(e) => Outcome::Reset(e),
    }
}
