//! The heartbeat frame the announcers of one segment exchange: who is alive, what each may
//! own (its eligible groups), what each owns (its claims, fenced by epochs) and round-trip
//! echoes, authenticated with HMAC-SHA256 (RFC 2104, FIPS 180-4) under a key shared by the
//! segment.
//!
//! This module owns the octets and the MAC; it does not decide what a beat means (liveness is
//! `membership`, ownership is `election`). A frame whose MAC does not verify is rejected before
//! any of its fields are believed. Replay protection needs state (the last sequence number of
//! each peer) and lives in `membership`.
//!
//! Layout of the payload after the Ethernet header (EtherType 0x88B5, big-endian integers):
//!
//! ```text
//! magic "FLL2" (4) | version 1 (1) | part index (1) | part count (1) | flags (1)
//! segment id: len (1, ≤ 63) + UTF-8 | node id: len (1, 1..=63) + UTF-8
//! incarnation (8) | seq (8)
//! eligible count (2) | group key × count
//! claim count (2)    | claim × count
//! echo count (1, ≤ 16) | echo × count
//! HMAC-SHA256 over every octet above (32)
//!
//! flags:     bit 0 listening (just started, not claiming yet), bit 1 draining
//! group key: family (1: 4 or 6) + address (4 or 16)
//! claim:     group key | epoch (8) | flags (1: bit 0 hand-off, bit 1 provisional)
//!            | [hand-off target node id: len + UTF-8, when bit 0 is set]
//! echo:      node id (len + UTF-8) | last seq heard from it (8) | µs since heard it (4)
//! ```
//!
//! A beat too large for one frame is split into parts of at most [`MAX_PAYLOAD`] octets; each
//! part repeats the header, carries a slice of the eligible and claim lists, and is
//! authenticated on its own. Echoes ride in part 0 only.

use std::net::{IpAddr, Ipv4Addr, Ipv6Addr};

use hmac::{Hmac, KeyInit, Mac};
use sha2::Sha256;

use super::{ETHERNET_HEADER_LEN, ETHERTYPE_HEARTBEAT, EthernetHeader, MacAddr};

/// Protocol magic, "ferrolb L2".
pub const MAGIC: [u8; 4] = *b"FLL2";
pub const VERSION: u8 = 1;
/// The longest payload a part may have, MAC included; leaves room under a 1500-octet MTU.
pub const MAX_PAYLOAD: usize = 1400;
pub const MAX_NODE_ID_LEN: usize = 63;
pub const MAX_SEGMENT_LEN: usize = 63;
/// The most echoes one beat carries; a large segment rotates through its peers.
pub const MAX_ECHOES: usize = 16;
/// The most parts one beat may be split into.
pub const MAX_PARTS: usize = 64;
/// The shortest key accepted: HMAC keys shorter than the hash output weaken it (RFC 2104 §3).
pub const MIN_KEY_LEN: usize = 16;
const MAC_LEN: usize = 32;
const FLAG_LISTENING: u8 = 0x01;
const FLAG_DRAINING: u8 = 0x02;
const CLAIM_FLAG_HANDOFF: u8 = 0x01;
const CLAIM_FLAG_PROVISIONAL: u8 = 0x02;

/// One node's claim on a group, as carried in its beats.
#[derive(Clone, Debug, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct BeatClaim {
    pub group: IpAddr,
    pub epoch: u64,
    /// The owner is handing the group to this node (planned hand-off or drain): the named
    /// node should claim it with a higher epoch; the owner answers until it sees that claim.
    pub handoff_to: Option<String>,
    /// Made while the owner heard fewer than half of the segment's members: it loses to any
    /// claim that is not provisional, whatever the epochs (see `election`).
    pub provisional: bool,
}

/// "I last heard your beat `seq`, `held_us` microseconds before sending this one": lets the
/// named node measure the round trip without synchronised clocks.
#[derive(Clone, Debug, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct BeatEcho {
    pub node_id: String,
    pub seq: u64,
    pub held_us: u32,
}

/// Everything one heartbeat says (a whole beat, or the slice one part carries).
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct Beat {
    pub segment: String,
    pub node_id: String,
    /// Distinguishes this run of the node from earlier ones (its start time, say); a restarted
    /// node's beats start over at sequence 1 under a higher incarnation.
    pub incarnation: u64,
    pub seq: u64,
    pub listening: bool,
    pub draining: bool,
    pub eligible: Vec<IpAddr>,
    pub claims: Vec<BeatClaim>,
    pub echoes: Vec<BeatEcho>,
}

/// One authenticated frame's worth of a beat.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct HeartbeatPart {
    pub index: u8,
    pub count: u8,
    pub beat: Beat,
}

/// Why a heartbeat was not sent or not accepted.
#[derive(Clone, Debug, PartialEq, Eq, thiserror::Error)]
pub enum HeartbeatError {
    #[error("heartbeat key of {len} octets is shorter than {MIN_KEY_LEN}")]
    KeyTooShort { len: usize },
    #[error("payload of {len} octets is too short for a heartbeat")]
    Short { len: usize },
    #[error("magic {0:02x?} is not a ferrolb heartbeat")]
    Magic([u8; 4]),
    #[error("heartbeat version {0} is not supported (only {VERSION})")]
    Version(u8),
    #[error("HMAC does not verify: wrong key or altered frame")]
    BadMac,
    #[error("part {index} of {count} is out of range")]
    Part { index: u8, count: u8 },
    #[error("{field} length {len} is out of range")]
    FieldLength { field: &'static str, len: usize },
    #[error("{field} is not UTF-8")]
    Utf8 { field: &'static str },
    #[error("truncated in {field}")]
    Truncated { field: &'static str },
    #[error("address family {0} is neither 4 nor 6")]
    AddressFamily(u8),
    #[error("unknown flag bits {flags:#04x} in {field}")]
    UnknownFlags { field: &'static str, flags: u8 },
    #[error("{len} octets after the last echo")]
    Trailing { len: usize },
    #[error("beat needs {parts} parts, more than {MAX_PARTS}")]
    TooLarge { parts: usize },
}

/// The segment's shared key, ready to seal and open heartbeats.
#[derive(Clone)]
pub struct HeartbeatKey {
    mac: Hmac<Sha256>,
}

impl std::fmt::Debug for HeartbeatKey {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("HeartbeatKey(..)")
    }
}

impl HeartbeatKey {
    pub fn new(key: &[u8]) -> Result<HeartbeatKey, HeartbeatError> {
        if key.len() < MIN_KEY_LEN {
            return Err(HeartbeatError::KeyTooShort { len: key.len() });
        }
        let mac = Hmac::<Sha256>::new_from_slice(key)
            .map_err(|_| HeartbeatError::KeyTooShort { len: key.len() })?;
        Ok(HeartbeatKey { mac })
    }

    /// Encodes `beat` into one or more authenticated payloads of at most [`MAX_PAYLOAD`] octets.
    pub fn seal(&self, beat: &Beat) -> Result<Vec<Vec<u8>>, HeartbeatError> {
        check_id("segment id", &beat.segment, 0)?;
        check_id("node id", &beat.node_id, 1)?;
        for claim in &beat.claims {
            if let Some(target) = &claim.handoff_to {
                check_id("hand-off target", target, 1)?;
            }
        }
        let echoes: Vec<&BeatEcho> = beat.echoes.iter().take(MAX_ECHOES).collect();
        for echo in &echoes {
            check_id("echo node id", &echo.node_id, 1)?;
        }

        let header_len = 4 + 4 + 1 + beat.segment.len() + 1 + beat.node_id.len() + 16;
        let echo_len: usize = echoes.iter().map(|e| 1 + e.node_id.len() + 12).sum();
        let budget = MAX_PAYLOAD - MAC_LEN - header_len - 2 - 2 - 1;

        // Plan the parts: (eligible range, claim range) each, filled greedily in order.
        let mut parts: Vec<(std::ops::Range<usize>, std::ops::Range<usize>)> = Vec::new();
        let mut used = echo_len;
        let (mut e_start, mut c_start) = (0, 0);
        let mut e = 0;
        while e < beat.eligible.len() {
            let len = key_len(&beat.eligible[e]);
            if used + len > budget {
                parts.push((e_start..e, 0..0));
                e_start = e;
                used = 0;
            }
            used += len;
            e += 1;
        }
        let mut c = 0;
        while c < beat.claims.len() {
            let len = claim_len(&beat.claims[c]);
            if used + len > budget {
                parts.push((e_start..beat.eligible.len(), c_start..c));
                e_start = beat.eligible.len();
                c_start = c;
                used = 0;
            }
            used += len;
            c += 1;
        }
        parts.push((e_start..beat.eligible.len(), c_start..beat.claims.len()));
        if parts.len() > MAX_PARTS {
            return Err(HeartbeatError::TooLarge { parts: parts.len() });
        }
        let count = parts.len() as u8;

        let mut out = Vec::with_capacity(parts.len());
        for (index, (eligible, claims)) in parts.into_iter().enumerate() {
            let mut b = Vec::with_capacity(MAX_PAYLOAD);
            b.extend_from_slice(&MAGIC);
            b.push(VERSION);
            b.push(index as u8);
            b.push(count);
            let flags = if beat.listening { FLAG_LISTENING } else { 0 }
                | if beat.draining { FLAG_DRAINING } else { 0 };
            b.push(flags);
            put_str(&mut b, &beat.segment);
            put_str(&mut b, &beat.node_id);
            b.extend_from_slice(&beat.incarnation.to_be_bytes());
            b.extend_from_slice(&beat.seq.to_be_bytes());
            b.extend_from_slice(&(eligible.len() as u16).to_be_bytes());
            for key in &beat.eligible[eligible] {
                put_key(&mut b, key);
            }
            b.extend_from_slice(&(claims.len() as u16).to_be_bytes());
            for claim in &beat.claims[claims] {
                put_key(&mut b, &claim.group);
                b.extend_from_slice(&claim.epoch.to_be_bytes());
                let provisional = if claim.provisional {
                    CLAIM_FLAG_PROVISIONAL
                } else {
                    0
                };
                match &claim.handoff_to {
                    Some(target) => {
                        b.push(CLAIM_FLAG_HANDOFF | provisional);
                        put_str(&mut b, target);
                    }
                    None => b.push(provisional),
                }
            }
            if index == 0 {
                b.push(echoes.len() as u8);
                for echo in &echoes {
                    put_str(&mut b, &echo.node_id);
                    b.extend_from_slice(&echo.seq.to_be_bytes());
                    b.extend_from_slice(&echo.held_us.to_be_bytes());
                }
            } else {
                b.push(0);
            }
            let mut mac = self.mac.clone();
            mac.update(&b);
            b.extend_from_slice(&mac.finalize().into_bytes());
            out.push(b);
        }
        Ok(out)
    }

    /// Authenticates and decodes one heartbeat payload.
    pub fn open(&self, payload: &[u8]) -> Result<HeartbeatPart, HeartbeatError> {
        const MIN: usize = 4 + 4 + 1 + 2 + 16 + 2 + 2 + 1 + MAC_LEN;
        if payload.len() < MIN {
            return Err(HeartbeatError::Short { len: payload.len() });
        }
        let mut magic = [0u8; 4];
        magic.copy_from_slice(&payload[..4]);
        if magic != MAGIC {
            return Err(HeartbeatError::Magic(magic));
        }
        if payload[4] != VERSION {
            return Err(HeartbeatError::Version(payload[4]));
        }
        let (body, tag) = payload.split_at(payload.len() - MAC_LEN);
        let mut mac = self.mac.clone();
        mac.update(body);
        mac.verify_slice(tag).map_err(|_| HeartbeatError::BadMac)?;
        decode_body(body)
    }
}

fn decode_body(body: &[u8]) -> Result<HeartbeatPart, HeartbeatError> {
    let mut r = Reader { bytes: body, at: 5 };
    let index = r.u8("part index")?;
    let count = r.u8("part count")?;
    if count == 0 || usize::from(count) > MAX_PARTS || index >= count {
        return Err(HeartbeatError::Part { index, count });
    }
    let flags = r.u8("flags")?;
    if flags & !(FLAG_LISTENING | FLAG_DRAINING) != 0 {
        return Err(HeartbeatError::UnknownFlags {
            field: "beat flags",
            flags,
        });
    }
    let segment = r.string("segment id", 0)?;
    let node_id = r.string("node id", 1)?;
    let incarnation = r.u64("incarnation")?;
    let seq = r.u64("seq")?;
    let eligible_count = r.u16("eligible count")?;
    // Each entry takes at least 5 octets, so a count larger than what is left cannot be honest;
    // capping the allocation by it keeps a forged count from reserving memory.
    let mut eligible = Vec::with_capacity(usize::from(eligible_count).min(r.remaining() / 5));
    for _ in 0..eligible_count {
        eligible.push(r.key()?);
    }
    let claim_count = r.u16("claim count")?;
    let mut claims = Vec::with_capacity(usize::from(claim_count).min(r.remaining() / 14));
    for _ in 0..claim_count {
        let group = r.key()?;
        let epoch = r.u64("claim epoch")?;
        let claim_flags = r.u8("claim flags")?;
        if claim_flags & !(CLAIM_FLAG_HANDOFF | CLAIM_FLAG_PROVISIONAL) != 0 {
            return Err(HeartbeatError::UnknownFlags {
                field: "claim flags",
                flags: claim_flags,
            });
        }
        let handoff_to = if claim_flags & CLAIM_FLAG_HANDOFF != 0 {
            Some(r.string("hand-off target", 1)?)
        } else {
            None
        };
        claims.push(BeatClaim {
            group,
            epoch,
            handoff_to,
            provisional: claim_flags & CLAIM_FLAG_PROVISIONAL != 0,
        });
    }
    let echo_count = usize::from(r.u8("echo count")?);
    if echo_count > MAX_ECHOES || (index != 0 && echo_count != 0) {
        return Err(HeartbeatError::FieldLength {
            field: "echo count",
            len: echo_count,
        });
    }
    let mut echoes = Vec::with_capacity(echo_count);
    for _ in 0..echo_count {
        let node_id = r.string("echo node id", 1)?;
        let seq = r.u64("echo seq")?;
        let held_us = r.u32("echo delay")?;
        echoes.push(BeatEcho {
            node_id,
            seq,
            held_us,
        });
    }
    if r.remaining() != 0 {
        return Err(HeartbeatError::Trailing { len: r.remaining() });
    }
    Ok(HeartbeatPart {
        index,
        count,
        beat: Beat {
            segment,
            node_id,
            incarnation,
            seq,
            listening: flags & FLAG_LISTENING != 0,
            draining: flags & FLAG_DRAINING != 0,
            eligible,
            claims,
            echoes,
        },
    })
}

/// A complete Ethernet frame carrying one heartbeat payload to the broadcast address.
pub fn heartbeat_frame(src: MacAddr, payload: &[u8]) -> Vec<u8> {
    let mut out = Vec::with_capacity(ETHERNET_HEADER_LEN + payload.len());
    EthernetHeader {
        dst: MacAddr::BROADCAST,
        src,
        ethertype: ETHERTYPE_HEARTBEAT,
    }
    .encode_into(&mut out);
    out.extend_from_slice(payload);
    out
}

fn check_id(field: &'static str, id: &str, min: usize) -> Result<(), HeartbeatError> {
    if id.len() < min || id.len() > MAX_NODE_ID_LEN {
        return Err(HeartbeatError::FieldLength {
            field,
            len: id.len(),
        });
    }
    Ok(())
}

fn key_len(key: &IpAddr) -> usize {
    match key {
        IpAddr::V4(_) => 5,
        IpAddr::V6(_) => 17,
    }
}

fn claim_len(claim: &BeatClaim) -> usize {
    key_len(&claim.group) + 9 + claim.handoff_to.as_ref().map_or(0, |t| 1 + t.len())
}

fn put_str(b: &mut Vec<u8>, s: &str) {
    // Callers checked the length against the 63-octet limit.
    b.push(s.len() as u8);
    b.extend_from_slice(s.as_bytes());
}

fn put_key(b: &mut Vec<u8>, key: &IpAddr) {
    match key {
        IpAddr::V4(a) => {
            b.push(4);
            b.extend_from_slice(&a.octets());
        }
        IpAddr::V6(a) => {
            b.push(6);
            b.extend_from_slice(&a.octets());
        }
    }
}

struct Reader<'a> {
    bytes: &'a [u8],
    at: usize,
}

impl<'a> Reader<'a> {
    fn remaining(&self) -> usize {
        self.bytes.len() - self.at
    }

    fn take(&mut self, n: usize, field: &'static str) -> Result<&'a [u8], HeartbeatError> {
        if self.remaining() < n {
            return Err(HeartbeatError::Truncated { field });
        }
        let out = &self.bytes[self.at..self.at + n];
        self.at += n;
        Ok(out)
    }

    fn u8(&mut self, field: &'static str) -> Result<u8, HeartbeatError> {
        Ok(self.take(1, field)?[0])
    }

    fn u16(&mut self, field: &'static str) -> Result<u16, HeartbeatError> {
        let b = self.take(2, field)?;
        Ok(u16::from_be_bytes([b[0], b[1]]))
    }

    fn u32(&mut self, field: &'static str) -> Result<u32, HeartbeatError> {
        let b = self.take(4, field)?;
        Ok(u32::from_be_bytes([b[0], b[1], b[2], b[3]]))
    }

    fn u64(&mut self, field: &'static str) -> Result<u64, HeartbeatError> {
        let mut o = [0u8; 8];
        o.copy_from_slice(self.take(8, field)?);
        Ok(u64::from_be_bytes(o))
    }

    fn string(&mut self, field: &'static str, min: usize) -> Result<String, HeartbeatError> {
        let len = usize::from(self.u8(field)?);
        if len < min || len > MAX_NODE_ID_LEN {
            return Err(HeartbeatError::FieldLength { field, len });
        }
        let bytes = self.take(len, field)?;
        std::str::from_utf8(bytes)
            .map(str::to_string)
            .map_err(|_| HeartbeatError::Utf8 { field })
    }

    fn key(&mut self) -> Result<IpAddr, HeartbeatError> {
        match self.u8("group key")? {
            4 => {
                let b = self.take(4, "group key")?;
                Ok(IpAddr::V4(Ipv4Addr::new(b[0], b[1], b[2], b[3])))
            }
            6 => {
                let mut o = [0u8; 16];
                o.copy_from_slice(self.take(16, "group key")?);
                Ok(IpAddr::V6(Ipv6Addr::from(o)))
            }
            other => Err(HeartbeatError::AddressFamily(other)),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn key() -> HeartbeatKey {
        HeartbeatKey::new(b"0123456789abcdef0123456789abcdef").unwrap()
    }

    fn beat() -> Beat {
        Beat {
            segment: "lab".into(),
            node_id: "node-a".into(),
            incarnation: 7,
            seq: 42,
            listening: false,
            draining: true,
            eligible: vec![
                "192.0.2.10".parse().unwrap(),
                "2001:db8::10".parse().unwrap(),
            ],
            claims: vec![
                BeatClaim {
                    group: "192.0.2.10".parse().unwrap(),
                    epoch: 3,
                    handoff_to: Some("node-b".into()),
                    provisional: false,
                },
                BeatClaim {
                    group: "2001:db8::10".parse().unwrap(),
                    epoch: 1,
                    handoff_to: None,
                    provisional: true,
                },
            ],
            echoes: vec![BeatEcho {
                node_id: "node-b".into(),
                seq: 41,
                held_us: 1234,
            }],
        }
    }

    #[test]
    fn a_small_beat_fits_one_part_and_opens_to_itself() {
        let parts = key().seal(&beat()).unwrap();
        assert_eq!(parts.len(), 1);
        let part = key().open(&parts[0]).unwrap();
        assert_eq!((part.index, part.count), (0, 1));
        assert_eq!(part.beat, beat());
    }

    #[test]
    fn a_wrong_key_is_rejected_as_bad_mac() {
        let parts = key().seal(&beat()).unwrap();
        let other = HeartbeatKey::new(b"another key, 16+ bytes long").unwrap();
        assert_eq!(other.open(&parts[0]), Err(HeartbeatError::BadMac));
    }

    #[test]
    fn any_flipped_bit_after_the_version_is_rejected_as_bad_mac() {
        let parts = key().seal(&beat()).unwrap();
        for i in 5..parts[0].len() {
            let mut p = parts[0].clone();
            p[i] ^= 0x01;
            assert_eq!(key().open(&p), Err(HeartbeatError::BadMac), "octet {i}");
        }
    }

    #[test]
    fn short_keys_are_refused() {
        assert_eq!(
            HeartbeatKey::new(b"short").unwrap_err(),
            HeartbeatError::KeyTooShort { len: 5 }
        );
    }

    #[test]
    fn a_large_beat_is_split_into_parts_that_each_fit_and_reassemble() {
        let mut b = beat();
        b.eligible = (0..600u32)
            .map(|i| IpAddr::V4(Ipv4Addr::from(0xc612_0000 + i)))
            .collect();
        b.claims = (0..300u32)
            .map(|i| BeatClaim {
                group: IpAddr::V4(Ipv4Addr::from(0xc612_0000 + i)),
                epoch: u64::from(i),
                handoff_to: None,
                provisional: i % 2 == 0,
            })
            .collect();
        let parts = key().seal(&b).unwrap();
        assert!(parts.len() > 1);
        let mut eligible = Vec::new();
        let mut claims = Vec::new();
        for (i, p) in parts.iter().enumerate() {
            assert!(p.len() <= MAX_PAYLOAD, "part {i} is {} octets", p.len());
            let part = key().open(p).unwrap();
            assert_eq!(usize::from(part.index), i);
            assert_eq!(usize::from(part.count), parts.len());
            assert_eq!(part.beat.echoes.is_empty(), i != 0);
            eligible.extend(part.beat.eligible);
            claims.extend(part.beat.claims);
        }
        assert_eq!(eligible, b.eligible);
        assert_eq!(claims, b.claims);
    }

    #[test]
    fn node_ids_longer_than_63_octets_are_refused_when_sealing() {
        let mut b = beat();
        b.node_id = "n".repeat(64);
        assert_eq!(
            key().seal(&b),
            Err(HeartbeatError::FieldLength {
                field: "node id",
                len: 64
            })
        );
    }
}
