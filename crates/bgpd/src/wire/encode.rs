//! Encoding: typed messages → bytes.
//!
//! This module owns the byte layout ferrolb sends and the length arithmetic the UPDATE packer
//! relies on ([`prefix_wire_len`], [`Update::encoded_len`], [`PathAttribute::encoded_len`]). It
//! does not decide what goes into a message or how prefixes are grouped (that is `rib_out`).
//!
//! Every encoder first computes the exact length, refuses (with [`EncodeError`], nothing
//! appended) anything over the limit, reserves once, then writes: no per-prefix allocation and
//! no length field that could wrap.

use ipnet::{IpNet, Ipv4Net, Ipv6Net};

use super::{
    Aggregator, AsPath, AsSegment, Capability, CodecContext, EncodeError, GracefulRestart,
    HEADER_LEN, MARKER, MAX_EXTENDED_MESSAGE_LEN, MAX_MESSAGE_LEN, Message, MessageType, MpReach,
    MpUnreach, NextHop, Notification, Open, PathAttribute, RouteRefresh, Update,
};

/// Attribute flag bits (RFC 4271 §4.3).
pub(super) mod flag {
    pub const OPTIONAL: u8 = 0x80;
    pub const TRANSITIVE: u8 = 0x40;
    pub const PARTIAL: u8 = 0x20;
    pub const EXTENDED_LENGTH: u8 = 0x10;
    /// Well-known (mandatory or discretionary): transitive, never optional.
    pub const WELL_KNOWN: u8 = TRANSITIVE;
    pub const OPTIONAL_NON_TRANSITIVE: u8 = OPTIONAL;
    pub const OPTIONAL_TRANSITIVE: u8 = OPTIONAL | TRANSITIVE;
}

/// RFC 4271 §4.3: the largest AS_PATH segment holds 255 ASNs (the count is one octet).
const MAX_SEGMENT_ASNS: usize = 255;

/// Octets a prefix takes in NLRI or withdrawn routes: a length octet and ceil(len/8) address
/// octets (RFC 4271 §4.3).
pub fn prefix_wire_len(prefix: &IpNet) -> usize {
    1 + usize::from(prefix.prefix_len()).div_ceil(8)
}

fn v4_wire_len(prefix: &Ipv4Net) -> usize {
    1 + usize::from(prefix.prefix_len()).div_ceil(8)
}

impl Message {
    /// The type octet this message is sent with.
    pub fn message_type(&self) -> MessageType {
        match self {
            Message::Open(_) => MessageType::Open,
            Message::Update(_) => MessageType::Update,
            Message::Notification(_) => MessageType::Notification,
            Message::Keepalive => MessageType::Keepalive,
            Message::RouteRefresh(_) => MessageType::RouteRefresh,
        }
    }

    /// The whole message, header included.
    pub fn encode(&self, ctx: &CodecContext) -> Result<Vec<u8>, EncodeError> {
        let mut out = Vec::new();
        self.encode_into(ctx, &mut out)?;
        Ok(out)
    }

    /// Appends the whole message, header included, to `out`. On error `out` is left as it was.
    pub fn encode_into(&self, ctx: &CodecContext, out: &mut Vec<u8>) -> Result<(), EncodeError> {
        let start = out.len();
        let result = self.write(ctx, out);
        if result.is_err() {
            out.truncate(start);
        }
        result
    }

    fn write(&self, ctx: &CodecContext, out: &mut Vec<u8>) -> Result<(), EncodeError> {
        // RFC 8654 §4: OPEN and KEEPALIVE stay within 4096 even with extended messages; the
        // 2-octet length field caps everything else at 65535 whatever the context says.
        let max = match self {
            Message::Open(_) | Message::Keepalive => MAX_MESSAGE_LEN,
            _ => ctx.max_message_len.min(MAX_EXTENDED_MESSAGE_LEN),
        };
        let length = match self {
            Message::Open(open) => HEADER_LEN + open_body_len(open)?,
            Message::Update(update) => update.encoded_len(ctx),
            Message::Notification(n) => HEADER_LEN + 2 + n.data.len(),
            Message::Keepalive => HEADER_LEN,
            Message::RouteRefresh(_) => HEADER_LEN + 4,
        };
        if length > max {
            return Err(EncodeError::TooLong { length, max });
        }
        out.reserve(length);
        out.extend_from_slice(&MARKER);
        put_u16(out, length);
        out.push(self.message_type() as u8);
        match self {
            Message::Open(open) => write_open(open, out)?,
            Message::Update(update) => write_update(update, ctx, out)?,
            Message::Notification(n) => write_notification(n, out),
            Message::Keepalive => {}
            Message::RouteRefresh(rr) => write_route_refresh(rr, out),
        }
        Ok(())
    }
}

/// Appends a 2-octet big-endian value. Callers have checked that `v` fits; saturating instead of
/// truncating keeps a logic error from silently wrapping a length.
fn put_u16(out: &mut Vec<u8>, v: usize) {
    let v = u16::try_from(v).unwrap_or(u16::MAX);
    out.extend_from_slice(&v.to_be_bytes());
}

/// Appends one octet; as [`put_u16`].
fn put_u8(out: &mut Vec<u8>, v: usize) {
    out.push(u8::try_from(v).unwrap_or(u8::MAX));
}

// ---------------------------------------------------------------------------------------------
// OPEN (RFC 4271 §4.2, RFC 5492, RFC 9072)

fn capability_value_len(cap: &Capability) -> usize {
    match cap {
        Capability::Multiprotocol(_) | Capability::FourOctetAs(_) => 4,
        Capability::RouteRefresh | Capability::ExtendedMessage => 0,
        Capability::GracefulRestart(gr) => 2 + 4 * gr.families.len(),
        Capability::Unknown { value, .. } => value.len(),
    }
}

/// The optional parameters as we send them: one Capabilities parameter (type 2) per capability,
/// like FRR and BIRD. Returns (total length, extended form?).
fn optional_params_len(open: &Open) -> Result<(usize, bool), EncodeError> {
    let mut caps = 0;
    let mut any_param_too_long = false;
    for cap in &open.capabilities {
        let len = capability_value_len(cap);
        if len > usize::from(u8::MAX) {
            return Err(EncodeError::CapabilityTooLong {
                code: cap.code(),
                length: len,
            });
        }
        // A capability of more than 253 octets does not fit a plain parameter's length octet.
        any_param_too_long |= 2 + len > usize::from(u8::MAX);
        caps += 2 + len;
    }
    let n = open.capabilities.len();
    let plain = caps + 2 * n;
    // RFC 9072 §2: the extended form only when the plain one cannot express the parameters.
    if plain > usize::from(u8::MAX) || any_param_too_long {
        Ok((caps + 3 * n, true))
    } else {
        Ok((plain, false))
    }
}

fn open_body_len(open: &Open) -> Result<usize, EncodeError> {
    let (params, extended) = optional_params_len(open)?;
    // Version, My AS, Hold Time, BGP Identifier, Opt Parm Len; RFC 9072 adds the 0xff type and
    // the 2-octet extended length.
    Ok(10 + if extended { 3 } else { 0 } + params)
}

fn write_open(open: &Open, out: &mut Vec<u8>) -> Result<(), EncodeError> {
    out.push(open.version);
    out.extend_from_slice(&open.my_as.to_be_bytes());
    out.extend_from_slice(&open.hold_time.to_be_bytes());
    out.extend_from_slice(&open.router_id.octets());
    let (params, extended) = optional_params_len(open)?;
    if extended {
        // RFC 9072 §2: Non-Ext OP Len 255, Non-Ext OP Type 255, Extended Opt. Parm. Length.
        out.extend_from_slice(&[0xff, 0xff]);
        put_u16(out, params);
    } else {
        put_u8(out, params);
    }
    for cap in &open.capabilities {
        let len = capability_value_len(cap);
        out.push(2);
        if extended {
            put_u16(out, 2 + len);
        } else {
            put_u8(out, 2 + len);
        }
        out.push(cap.code());
        put_u8(out, len);
        write_capability_value(cap, out)?;
    }
    Ok(())
}

fn write_capability_value(cap: &Capability, out: &mut Vec<u8>) -> Result<(), EncodeError> {
    match cap {
        // RFC 4760 §8: AFI, reserved, SAFI.
        Capability::Multiprotocol(family) => {
            out.extend_from_slice(&family.afi.0.to_be_bytes());
            out.push(0);
            out.push(family.safi.0);
        }
        Capability::RouteRefresh | Capability::ExtendedMessage => {}
        Capability::GracefulRestart(gr) => write_graceful_restart(gr, out)?,
        Capability::FourOctetAs(asn) => out.extend_from_slice(&asn.to_be_bytes()),
        Capability::Unknown { value, .. } => out.extend_from_slice(value),
    }
    Ok(())
}

/// RFC 4724 §3 (N bit: RFC 8538 §2).
fn write_graceful_restart(gr: &GracefulRestart, out: &mut Vec<u8>) -> Result<(), EncodeError> {
    if gr.restart_time > 0x0fff {
        return Err(EncodeError::RestartTimeTooLarge {
            restart_time: gr.restart_time,
        });
    }
    let mut head = gr.restart_time;
    if gr.restart_state {
        head |= 0x8000;
    }
    if gr.notification {
        head |= 0x4000;
    }
    out.extend_from_slice(&head.to_be_bytes());
    for f in &gr.families {
        out.extend_from_slice(&f.family.afi.0.to_be_bytes());
        out.push(f.family.safi.0);
        out.push(if f.forwarding_preserved { 0x80 } else { 0 });
    }
    Ok(())
}

// ---------------------------------------------------------------------------------------------
// NOTIFICATION (RFC 4271 §4.5), ROUTE-REFRESH (RFC 2918 §3, RFC 7313 §3)

fn write_notification(n: &Notification, out: &mut Vec<u8>) {
    out.push(n.code);
    out.push(n.subcode);
    out.extend_from_slice(&n.data);
}

fn write_route_refresh(rr: &RouteRefresh, out: &mut Vec<u8>) {
    out.extend_from_slice(&rr.family.afi.0.to_be_bytes());
    out.push(rr.subtype);
    out.push(rr.family.safi.0);
}

// ---------------------------------------------------------------------------------------------
// UPDATE (RFC 4271 §4.3)

impl Update {
    /// The whole message's length in octets, header included. The encoder refuses the message
    /// when this exceeds the context's maximum.
    pub fn encoded_len(&self, ctx: &CodecContext) -> usize {
        let withdrawn: usize = self.withdrawn.iter().map(v4_wire_len).sum();
        let attributes: usize = self.attributes.iter().map(|a| a.encoded_len(ctx)).sum();
        let nlri: usize = self.nlri.iter().map(v4_wire_len).sum();
        HEADER_LEN + 2 + withdrawn + 2 + attributes + nlri
    }
}

fn write_update(update: &Update, ctx: &CodecContext, out: &mut Vec<u8>) -> Result<(), EncodeError> {
    // The whole message fits 65535 octets (checked by the caller), so both lengths fit 2 octets.
    put_u16(out, update.withdrawn.iter().map(v4_wire_len).sum());
    for p in &update.withdrawn {
        put_v4_prefix(out, p);
    }
    put_u16(
        out,
        update.attributes.iter().map(|a| a.encoded_len(ctx)).sum(),
    );
    for attr in &update.attributes {
        write_attribute(attr, ctx, out)?;
    }
    for p in &update.nlri {
        put_v4_prefix(out, p);
    }
    Ok(())
}

/// The flags we send for an attribute (RFC 4271 §5, RFC 4456, RFC 4760, RFC 6793, RFC 8092),
/// without the extended-length bit. We never set Partial on what we originate.
fn base_flags(attr: &PathAttribute) -> u8 {
    match attr {
        PathAttribute::Origin(_)
        | PathAttribute::AsPath(_)
        | PathAttribute::NextHop(_)
        | PathAttribute::LocalPref(_)
        | PathAttribute::AtomicAggregate => flag::WELL_KNOWN,
        PathAttribute::MultiExitDisc(_)
        | PathAttribute::OriginatorId(_)
        | PathAttribute::ClusterList(_)
        | PathAttribute::MpReach(_)
        | PathAttribute::MpUnreach(_) => flag::OPTIONAL_NON_TRANSITIVE,
        PathAttribute::Aggregator(_)
        | PathAttribute::Communities(_)
        | PathAttribute::ExtendedCommunities(_)
        | PathAttribute::As4Path(_)
        | PathAttribute::As4Aggregator(_)
        | PathAttribute::LargeCommunities(_) => flag::OPTIONAL_TRANSITIVE,
        // RFC 4271 §4.3: the low four bits are unused and sent as zero; extended length is ours
        // to decide.
        PathAttribute::Unknown(raw) => {
            raw.flags & (flag::OPTIONAL | flag::TRANSITIVE | flag::PARTIAL)
        }
    }
}

fn as_path_value_len(path: &AsPath, asn_width: usize) -> usize {
    path.segments
        .iter()
        .map(|seg| {
            let n = segment_asns(seg).1.len();
            // Segments of more than 255 ASNs are split; each piece has a 2-octet header.
            n.div_ceil(MAX_SEGMENT_ASNS) * 2 + n * asn_width
        })
        .sum()
}

fn segment_asns(seg: &AsSegment) -> (u8, &[u32]) {
    match seg {
        AsSegment::Set(v) => (1, v),
        AsSegment::Sequence(v) => (2, v),
        AsSegment::ConfedSequence(v) => (3, v),
        AsSegment::ConfedSet(v) => (4, v),
    }
}

fn next_hop_len(nh: &NextHop) -> usize {
    match nh {
        NextHop::V4(_) => 4,
        NextHop::V6 {
            link_local: None, ..
        } => 16,
        NextHop::V6 {
            link_local: Some(_),
            ..
        } => 32,
    }
}

fn asn_width(ctx: &CodecContext) -> usize {
    if ctx.four_octet_as { 4 } else { 2 }
}

fn value_len(attr: &PathAttribute, ctx: &CodecContext) -> usize {
    match attr {
        PathAttribute::Origin(_) => 1,
        PathAttribute::AsPath(path) => as_path_value_len(path, asn_width(ctx)),
        PathAttribute::As4Path(path) => as_path_value_len(path, 4),
        PathAttribute::NextHop(_)
        | PathAttribute::MultiExitDisc(_)
        | PathAttribute::LocalPref(_)
        | PathAttribute::OriginatorId(_) => 4,
        PathAttribute::AtomicAggregate => 0,
        PathAttribute::Aggregator(_) => asn_width(ctx) + 4,
        PathAttribute::As4Aggregator(_) => 8,
        PathAttribute::Communities(c) => 4 * c.len(),
        PathAttribute::ClusterList(c) => 4 * c.len(),
        PathAttribute::ExtendedCommunities(c) => 8 * c.len(),
        PathAttribute::LargeCommunities(c) => 12 * c.len(),
        // RFC 4760 §3: AFI, SAFI, next-hop length, next hop, reserved, NLRI.
        PathAttribute::MpReach(mp) => {
            5 + next_hop_len(&mp.next_hop) + mp.nlri.iter().map(prefix_wire_len).sum::<usize>()
        }
        // RFC 4760 §4: AFI, SAFI, withdrawn routes.
        PathAttribute::MpUnreach(mp) => 3 + mp.withdrawn.iter().map(prefix_wire_len).sum::<usize>(),
        PathAttribute::Unknown(raw) => raw.value.len(),
    }
}

impl PathAttribute {
    /// Octets this attribute takes in an UPDATE: flags, type, length (2 octets when the value
    /// exceeds 255, RFC 4271 §4.3) and value.
    pub fn encoded_len(&self, ctx: &CodecContext) -> usize {
        let len = value_len(self, ctx);
        if len > usize::from(u8::MAX) {
            4 + len
        } else {
            3 + len
        }
    }
}

fn write_attribute(
    attr: &PathAttribute,
    ctx: &CodecContext,
    out: &mut Vec<u8>,
) -> Result<(), EncodeError> {
    let len = value_len(attr, ctx);
    let type_code = attr.type_code();
    if len > usize::from(u16::MAX) {
        return Err(EncodeError::AttributeTooLong {
            type_code,
            length: len,
        });
    }
    let flags = base_flags(attr);
    if len > usize::from(u8::MAX) {
        out.extend_from_slice(&[flags | flag::EXTENDED_LENGTH, type_code]);
        put_u16(out, len);
    } else {
        out.extend_from_slice(&[flags, type_code]);
        put_u8(out, len);
    }
    match attr {
        PathAttribute::Origin(origin) => out.push(*origin as u8),
        PathAttribute::AsPath(path) => write_as_path(path, ctx.four_octet_as, out),
        PathAttribute::As4Path(path) => write_as_path(path, true, out),
        PathAttribute::NextHop(addr) | PathAttribute::OriginatorId(addr) => {
            out.extend_from_slice(&addr.octets());
        }
        PathAttribute::MultiExitDisc(v) | PathAttribute::LocalPref(v) => {
            out.extend_from_slice(&v.to_be_bytes());
        }
        PathAttribute::AtomicAggregate => {}
        PathAttribute::Aggregator(agg) => write_aggregator(agg, ctx.four_octet_as, out),
        PathAttribute::As4Aggregator(agg) => write_aggregator(agg, true, out),
        PathAttribute::Communities(cs) => {
            for c in cs {
                out.extend_from_slice(&c.0.to_be_bytes());
            }
        }
        PathAttribute::ClusterList(ids) => {
            for id in ids {
                out.extend_from_slice(&id.octets());
            }
        }
        PathAttribute::ExtendedCommunities(cs) => {
            for c in cs {
                out.extend_from_slice(c);
            }
        }
        PathAttribute::LargeCommunities(cs) => {
            for c in cs {
                out.extend_from_slice(&c.global_admin.to_be_bytes());
                out.extend_from_slice(&c.local_data1.to_be_bytes());
                out.extend_from_slice(&c.local_data2.to_be_bytes());
            }
        }
        PathAttribute::MpReach(mp) => write_mp_reach(mp, out)?,
        PathAttribute::MpUnreach(mp) => write_mp_unreach(mp, out)?,
        PathAttribute::Unknown(raw) => out.extend_from_slice(&raw.value),
    }
    Ok(())
}

/// RFC 4271 §4.3 / RFC 6793 §4: segments keep their type; a 2-octet path carries AS_TRANS for
/// ASNs that do not fit (the caller adds AS4_PATH). Empty segments are malformed (RFC 7606 §7.2)
/// and are not sent.
fn write_as_path(path: &AsPath, four_octet: bool, out: &mut Vec<u8>) {
    for seg in &path.segments {
        let (seg_type, asns) = segment_asns(seg);
        for chunk in asns.chunks(MAX_SEGMENT_ASNS) {
            out.push(seg_type);
            put_u8(out, chunk.len());
            for &asn in chunk {
                write_asn(asn, four_octet, out);
            }
        }
    }
}

fn write_asn(asn: u32, four_octet: bool, out: &mut Vec<u8>) {
    if four_octet {
        out.extend_from_slice(&asn.to_be_bytes());
    } else {
        let two = u16::try_from(asn).unwrap_or(super::AS_TRANS);
        out.extend_from_slice(&two.to_be_bytes());
    }
}

fn write_aggregator(agg: &Aggregator, four_octet: bool, out: &mut Vec<u8>) {
    write_asn(agg.asn, four_octet, out);
    out.extend_from_slice(&agg.address.octets());
}

fn write_mp_reach(mp: &MpReach, out: &mut Vec<u8>) -> Result<(), EncodeError> {
    out.extend_from_slice(&mp.family.afi.0.to_be_bytes());
    out.push(mp.family.safi.0);
    put_u8(out, next_hop_len(&mp.next_hop));
    match mp.next_hop {
        NextHop::V4(addr) => out.extend_from_slice(&addr.octets()),
        // RFC 2545 §3: global, then link-local when there is one.
        NextHop::V6 { global, link_local } => {
            out.extend_from_slice(&global.octets());
            if let Some(ll) = link_local {
                out.extend_from_slice(&ll.octets());
            }
        }
    }
    // RFC 4760 §3: the reserved octet (formerly the SNPA count) is zero.
    out.push(0);
    write_mp_prefixes(&mp.nlri, mp.family, out)
}

fn write_mp_unreach(mp: &MpUnreach, out: &mut Vec<u8>) -> Result<(), EncodeError> {
    out.extend_from_slice(&mp.family.afi.0.to_be_bytes());
    out.push(mp.family.safi.0);
    write_mp_prefixes(&mp.withdrawn, mp.family, out)
}

fn write_mp_prefixes(
    prefixes: &[IpNet],
    family: super::Family,
    out: &mut Vec<u8>,
) -> Result<(), EncodeError> {
    for p in prefixes {
        match (p, family.afi) {
            (IpNet::V4(p), super::Afi::IPV4) => put_v4_prefix(out, p),
            (IpNet::V6(p), super::Afi::IPV6) => put_v6_prefix(out, p),
            _ => return Err(EncodeError::PrefixFamilyMismatch { prefix: *p, family }),
        }
    }
    Ok(())
}

/// RFC 4271 §4.3: length in bits, then the fewest octets that hold it. Bits past the length
/// are sent as zero.
fn put_prefix_bytes(out: &mut Vec<u8>, len: u8, octets: &[u8]) {
    out.push(len);
    let n = usize::from(len).div_ceil(8);
    let bytes = octets.get(..n).unwrap_or(octets);
    if let Some((last, head)) = bytes.split_last() {
        out.extend_from_slice(head);
        let keep = len % 8;
        out.push(if keep == 0 {
            *last
        } else {
            *last & (0xff << (8 - keep))
        });
    }
}

fn put_v4_prefix(out: &mut Vec<u8>, p: &Ipv4Net) {
    put_prefix_bytes(out, p.prefix_len(), &p.addr().octets());
}

fn put_v6_prefix(out: &mut Vec<u8>, p: &Ipv6Net) {
    put_prefix_bytes(out, p.prefix_len(), &p.addr().octets());
}
