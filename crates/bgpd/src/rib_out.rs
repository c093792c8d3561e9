//! Per-peer Adj-RIB-Out: the routes a peer should have, what it has been sent, and the UPDATEs
//! that close the gap.
//!
//! [`AdjRibOut`] is pure. The caller sets the desired routes (all at once, or one prefix at a
//! time); the RIB remembers which prefixes differ from what the peer was last sent and, when
//! asked, packs them into as few UPDATEs as the negotiated message size allows: withdrawals
//! first, then announcements grouped by identical attributes. On a new session (or a
//! ROUTE-REFRESH) it walks the whole table in prefix order instead of queueing every prefix, so
//! memory stays proportional to the table, not to the table times the number of resyncs.
//!
//! It owns neither the session (see `fsm`) nor the socket: [`AdjRibOut::next_update`] returns
//! one [`Update`] at a time, so the driver can stop pulling when the socket is full.

use std::collections::{BTreeMap, BTreeSet, HashSet};
use std::net::{Ipv4Addr, Ipv6Addr};
use std::ops::Bound;
use std::sync::Arc;

use ipnet::{IpNet, Ipv4Net};

use crate::wire::{
    AsPath, AsSegment, CodecContext, Community, Family, HEADER_LEN, LargeCommunity, MpReach,
    MpUnreach, NextHop, Origin, PathAttribute, Update, prefix_wire_len,
};

/// The attributes a route carries besides those the session decides (ORIGIN, AS_PATH, next hop).
#[derive(Clone, Debug, Default, PartialEq, Eq, Hash)]
pub struct RouteAttributes {
    /// Sent to iBGP peers only (RFC 4271 §5.1.5).
    pub local_pref: Option<u32>,
    pub med: Option<u32>,
    /// Sorted and deduplicated by [`RouteAttributes::new`].
    pub communities: Vec<Community>,
    pub large_communities: Vec<LargeCommunity>,
}

impl RouteAttributes {
    /// Normalises the community lists so that equal sets compare equal.
    pub fn new(
        local_pref: Option<u32>,
        med: Option<u32>,
        communities: impl IntoIterator<Item = Community>,
        large_communities: impl IntoIterator<Item = LargeCommunity>,
    ) -> RouteAttributes {
        let communities: BTreeSet<_> = communities.into_iter().collect();
        let large_communities: BTreeSet<_> = large_communities.into_iter().collect();
        RouteAttributes {
            local_pref,
            med,
            communities: communities.into_iter().collect(),
            large_communities: large_communities.into_iter().collect(),
        }
    }
}

impl RouteAttributes {
    /// The attributes of a path being drained (RFC 8326 §4): the GRACEFUL_SHUTDOWN community
    /// added and, towards iBGP peers, LOCAL_PREF 0 as well, so that even a router without a
    /// policy for the community prefers other paths before this one is withdrawn.
    pub fn graceful_shutdown(&self, ibgp: bool) -> RouteAttributes {
        RouteAttributes::new(
            if ibgp { Some(0) } else { self.local_pref },
            self.med,
            self.communities
                .iter()
                .copied()
                .chain([Community::GRACEFUL_SHUTDOWN]),
            self.large_communities.iter().copied(),
        )
    }
}

/// What the session contributes to every UPDATE.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct SessionParams {
    pub local_as: u32,
    pub ibgp: bool,
    pub codec: CodecContext,
    /// Families both sides negotiated; routes of other families wait.
    pub families: Vec<Family>,
    /// NEXT_HOP for IPv4 routes; without one, IPv4 routes are not sent.
    pub next_hop_v4: Option<Ipv4Addr>,
    /// MP_REACH next hop for IPv6 routes (global, optional link-local); without one, IPv6
    /// routes are not sent.
    pub next_hop_v6: Option<(Ipv6Addr, Option<Ipv6Addr>)>,
}

impl SessionParams {
    /// Whether routes of `family` can be sent on this session, and if not, why.
    pub fn can_send(&self, family: Family) -> Result<(), &'static str> {
        if !self.families.contains(&family) {
            return Err("address family not negotiated with the peer");
        }
        match family {
            Family::IPV4_UNICAST if self.next_hop_v4.is_none() => {
                Err("no IPv4 next hop: the session has no local IPv4 address")
            }
            Family::IPV6_UNICAST if self.next_hop_v6.is_none() => {
                Err("no IPv6 next hop: the session has no local IPv6 address")
            }
            _ => Ok(()),
        }
    }
}

#[derive(Clone, Debug, Default)]
struct Entry {
    desired: Option<Arc<RouteAttributes>>,
    advertised: Option<Arc<RouteAttributes>>,
}

impl Entry {
    fn in_sync(&self) -> bool {
        match (&self.desired, &self.advertised) {
            (None, None) => true,
            (Some(a), Some(b)) => Arc::ptr_eq(a, b) || a == b,
            _ => false,
        }
    }
}

/// How far past the first prefix of a group the packer looks for more prefixes with the same
/// attributes, in multiples of what one UPDATE can hold. Bounds the work per UPDATE when
/// attribute sets are interleaved or all different.
const LOOKAHEAD_FACTOR: usize = 4;

/// A peer's Adj-RIB-Out.
#[derive(Debug, Default)]
pub struct AdjRibOut {
    entries: BTreeMap<IpNet, Entry>,
    /// Prefixes whose desired state differs from what was sent, outside a full walk.
    dirty_withdraw: BTreeSet<IpNet>,
    dirty_announce: BTreeSet<IpNet>,
    /// A full-table walk in progress (new session or route refresh): the next prefix to look at.
    walk: Option<IpNet>,
    /// Families whose End-of-RIB is due once the initial walk has finished (RFC 4724 §2).
    eor_due: Vec<Family>,
    session_up: bool,
    /// Interned attribute sets, so equal sets share one allocation and compare by pointer.
    interned: HashSet<Arc<RouteAttributes>>,
    /// Counts per family (IPv4, IPv6), kept as entries change: status reads them often.
    advertised: [usize; 2],
    desired: [usize; 2],
}

impl AdjRibOut {
    pub fn new() -> AdjRibOut {
        AdjRibOut::default()
    }

    /// Replaces the desired route set. Only prefixes whose attributes changed become pending.
    pub fn set_desired(&mut self, routes: impl IntoIterator<Item = (IpNet, RouteAttributes)>) {
        // A sorted list rather than a map: half the memory while a large table is loaded.
        let mut new: Vec<(IpNet, Arc<RouteAttributes>)> = routes
            .into_iter()
            .map(|(prefix, attrs)| (prefix.trunc(), self.intern(attrs)))
            .collect();
        // Stable sort, then keep the last of duplicates, as a map insert would.
        new.sort_by_key(|r| r.0);
        new.reverse();
        new.dedup_by(|a, b| a.0 == b.0);
        new.reverse();
        if self.entries.is_empty() && !self.session_up {
            // Nothing to diff against: build the table in one pass.
            self.desired = [0, 0];
            for (prefix, _) in &new {
                self.desired[family_index(Family::of(prefix))] += 1;
            }
            self.entries = new
                .into_iter()
                .map(|(prefix, attrs)| {
                    (
                        prefix,
                        Entry {
                            desired: Some(attrs),
                            advertised: None,
                        },
                    )
                })
                .collect();
            self.gc_interned();
            return;
        }
        let gone: Vec<IpNet> = self
            .entries
            .iter()
            .filter(|(p, e)| {
                e.desired.is_some() && new.binary_search_by(|(q, _)| q.cmp(p)).is_err()
            })
            .map(|(p, _)| *p)
            .collect();
        for prefix in gone {
            self.set_one(prefix, None);
        }
        for (prefix, attrs) in new {
            self.set_one(prefix, Some(attrs));
        }
        self.gc_interned();
    }

    /// Sets one prefix's desired attributes (`None` withdraws it).
    pub fn set_route(&mut self, prefix: IpNet, attrs: Option<RouteAttributes>) {
        let attrs = attrs.map(|a| self.intern(a));
        self.set_one(prefix.trunc(), attrs);
    }

    /// The desired routes, in prefix order.
    pub fn desired(&self) -> impl Iterator<Item = (&IpNet, &RouteAttributes)> {
        self.entries
            .iter()
            .filter_map(|(p, e)| e.desired.as_deref().map(|a| (p, a)))
    }

    /// The routes the peer has been sent and not withdrawn, in prefix order.
    pub fn advertised(&self) -> impl Iterator<Item = (&IpNet, &RouteAttributes)> {
        self.entries
            .iter()
            .filter_map(|(p, e)| e.advertised.as_deref().map(|a| (p, a)))
    }

    /// How many prefixes of a family the peer currently has from us.
    pub fn advertised_count(&self, family: Family) -> usize {
        match family {
            Family::IPV4_UNICAST => self.advertised[0],
            Family::IPV6_UNICAST => self.advertised[1],
            _ => 0,
        }
    }

    /// Families that have at least one desired route.
    pub fn desired_families(&self) -> Vec<Family> {
        [Family::IPV4_UNICAST, Family::IPV6_UNICAST]
            .into_iter()
            .filter(|f| self.desired[family_index(*f)] > 0)
            .collect()
    }

    /// Whether the table walk of the current session and its End-of-RIB markers are done.
    pub fn initial_sync_done(&self) -> bool {
        self.session_up && self.walk.is_none() && self.eor_due.is_empty()
    }

    pub fn desired_count(&self) -> usize {
        self.desired[0] + self.desired[1]
    }

    /// Whether anything is waiting to be sent.
    pub fn has_pending(&self) -> bool {
        self.session_up
            && (self.walk.is_some()
                || !self.eor_due.is_empty()
                || !self.dirty_withdraw.is_empty()
                || !self.dirty_announce.is_empty())
    }

    /// A session came up: the peer has nothing from us (or only stale routes it will flush at
    /// our End-of-RIB), so everything desired is sent again, followed by End-of-RIB per family.
    pub fn session_up(&mut self, families: &[Family]) {
        self.forget_advertised();
        self.session_up = true;
        self.walk = self.entries.keys().next().copied();
        self.eor_due = families.to_vec();
    }

    /// The session went down: nothing is advertised any more.
    pub fn session_down(&mut self) {
        self.forget_advertised();
        self.session_up = false;
        self.walk = None;
        self.eor_due.clear();
    }

    /// RFC 2918: re-send every route of `family`. Pending withdrawals stay pending.
    pub fn route_refresh(&mut self, family: Family) {
        if !self.session_up {
            return;
        }
        for (prefix, entry) in self.entries.iter_mut() {
            if Family::of(prefix) == family && entry.desired.is_some() && entry.advertised.is_some()
            {
                entry.advertised = None;
                self.advertised[family_index(family)] -= 1;
            }
        }
        self.walk = self.entries.keys().next().copied();
    }

    /// The next UPDATE to send, or `None` when the peer is in sync. Routes of a family that
    /// cannot be sent on this session (see [`SessionParams::can_send`]) are left pending.
    pub fn next_update(&mut self, params: &SessionParams) -> Option<Update> {
        if !self.session_up {
            return None;
        }
        if let Some(update) = self.next_withdrawal(params) {
            return Some(update);
        }
        if let Some(update) = self.next_announcement(params) {
            return Some(update);
        }
        if self.walk.is_none()
            && let Some(family) = self.eor_due.first().copied()
        {
            self.eor_due.remove(0);
            return Some(Update::end_of_rib(family));
        }
        None
    }

    fn intern(&mut self, attrs: RouteAttributes) -> Arc<RouteAttributes> {
        if let Some(existing) = self.interned.get(&attrs) {
            return existing.clone();
        }
        let attrs = Arc::new(attrs);
        self.interned.insert(attrs.clone());
        attrs
    }

    /// Drops interned sets nobody refers to any more (only the table itself holds them).
    fn gc_interned(&mut self) {
        self.interned.retain(|a| Arc::strong_count(a) > 1);
    }

    fn set_one(&mut self, prefix: IpNet, attrs: Option<Arc<RouteAttributes>>) {
        let entry = self.entries.entry(prefix).or_default();
        let counter = &mut self.desired[family_index(Family::of(&prefix))];
        match (entry.desired.is_some(), attrs.is_some()) {
            (false, true) => *counter += 1,
            (true, false) => *counter -= 1,
            _ => {}
        }
        entry.desired = attrs;
        if entry.in_sync() {
            self.dirty_withdraw.remove(&prefix);
            self.dirty_announce.remove(&prefix);
            if entry.desired.is_none() {
                self.entries.remove(&prefix);
            }
            return;
        }
        if !self.session_up {
            // The next session sends the whole table anyway (see `session_up`).
            return;
        }
        if entry.desired.is_some() {
            self.dirty_withdraw.remove(&prefix);
            self.dirty_announce.insert(prefix);
        } else {
            self.dirty_announce.remove(&prefix);
            self.dirty_withdraw.insert(prefix);
        }
    }

    fn forget_advertised(&mut self) {
        self.entries.retain(|_, e| {
            e.advertised = None;
            e.desired.is_some()
        });
        self.advertised = [0, 0];
        self.dirty_withdraw.clear();
        self.dirty_announce.clear();
    }

    fn next_withdrawal(&mut self, params: &SessionParams) -> Option<Update> {
        let family = [Family::IPV4_UNICAST, Family::IPV6_UNICAST]
            .into_iter()
            .find(|f| {
                params.can_send(*f).is_ok()
                    && self.dirty_withdraw.iter().any(|p| Family::of(p) == *f)
            })?;
        let max = params.codec.max_message_len;
        // Withdrawn Routes Length + Total Path Attribute Length; for IPv6 the MP_UNREACH
        // header with a 2-octet length, AFI and SAFI.
        let mut size = HEADER_LEN
            + 4
            + if family == Family::IPV6_UNICAST {
                4 + 3
            } else {
                0
            };
        let mut batch = Vec::new();
        for prefix in self
            .dirty_withdraw
            .iter()
            .filter(|p| Family::of(p) == family)
        {
            let len = prefix_wire_len(prefix);
            if size + len > max {
                break;
            }
            size += len;
            batch.push(*prefix);
        }
        for prefix in &batch {
            self.dirty_withdraw.remove(prefix);
            if let Some(entry) = self.entries.get_mut(prefix) {
                if entry.advertised.take().is_some() {
                    self.advertised[family_index(family)] -= 1;
                }
                if entry.desired.is_none() {
                    self.entries.remove(prefix);
                }
            }
        }
        Some(if family == Family::IPV4_UNICAST {
            Update {
                withdrawn: batch.iter().filter_map(as_v4).collect(),
                ..Update::default()
            }
        } else {
            Update {
                attributes: vec![PathAttribute::MpUnreach(MpUnreach {
                    family,
                    withdrawn: batch,
                })],
                ..Update::default()
            }
        })
    }

    fn next_announcement(&mut self, params: &SessionParams) -> Option<Update> {
        // The first prefix that needs sending decides the attribute set of this UPDATE.
        let (family, attrs) = self.first_pending_announcement(params)?;
        let template = announcement(params, family, &attrs, Vec::new(), Vec::new());
        let max = params.codec.max_message_len;
        // One spare octet: MP_REACH may switch to the extended length form as it grows.
        let mut size = template.encoded_len(&params.codec) + 1;
        let lookahead = (max / 5).max(1) * LOOKAHEAD_FACTOR;
        let same_group = |prefix: &IpNet, entry: &Entry| {
            Family::of(prefix) == family
                && entry
                    .desired
                    .as_ref()
                    .is_some_and(|d| Arc::ptr_eq(d, &attrs))
        };
        let mut batch: Vec<IpNet> = Vec::new();
        let mut full = false;

        // Incremental changes first.
        for prefix in self.dirty_announce.iter().take(lookahead) {
            let Some(entry) = self.entries.get(prefix) else {
                continue;
            };
            if !same_group(prefix, entry) {
                continue;
            }
            let len = prefix_wire_len(prefix);
            if size + len > max {
                full = true;
                break;
            }
            size += len;
            batch.push(*prefix);
        }
        let from_dirty = batch.len();
        // Mark them sent now, so the walk below sees them in sync.
        self.mark_advertised(&batch, family, &attrs);

        // Then the full-table walk, if one is running.
        if let (Some(start), false) = (self.walk, full) {
            let mut first_unsent = None;
            let mut skipped = 0;
            for (prefix, entry) in self
                .entries
                .range((Bound::Included(start), Bound::Unbounded))
            {
                if entry.in_sync()
                    || entry.desired.is_none()
                    || params.can_send(Family::of(prefix)).is_err()
                {
                    // In sync, a withdrawal (the dirty set has it), or not for this session.
                    continue;
                }
                if same_group(prefix, entry) {
                    let len = prefix_wire_len(prefix);
                    if size + len <= max {
                        size += len;
                        batch.push(*prefix);
                        continue;
                    }
                    first_unsent.get_or_insert(*prefix);
                    break;
                }
                first_unsent.get_or_insert(*prefix);
                skipped += 1;
                if skipped >= lookahead {
                    break;
                }
            }
            // Everything before `first_unsent` is now sent, in sync, or in the dirty sets.
            self.walk = first_unsent;
            let walked = batch.split_off(from_dirty);
            self.mark_advertised(&walked, family, &attrs);
            batch.extend(walked);
        }

        if batch.is_empty() {
            return None;
        }
        let (v4, v6): (Vec<IpNet>, Vec<IpNet>) =
            batch.into_iter().partition(|p| matches!(p, IpNet::V4(_)));
        Some(announcement(params, family, &attrs, v4, v6))
    }

    fn mark_advertised(
        &mut self,
        prefixes: &[IpNet],
        family: Family,
        attrs: &Arc<RouteAttributes>,
    ) {
        for prefix in prefixes {
            if let Some(entry) = self.entries.get_mut(prefix) {
                if entry.advertised.is_none() {
                    self.advertised[family_index(family)] += 1;
                }
                entry.advertised = Some(attrs.clone());
            }
            self.dirty_announce.remove(prefix);
        }
    }

    fn first_pending_announcement(
        &mut self,
        params: &SessionParams,
    ) -> Option<(Family, Arc<RouteAttributes>)> {
        let sendable = |p: &IpNet| params.can_send(Family::of(p)).is_ok();
        for prefix in self.dirty_announce.iter().filter(|p| sendable(p)) {
            if let Some(attrs) = self.entries.get(prefix).and_then(|e| e.desired.clone()) {
                return Some((Family::of(prefix), attrs));
            }
        }
        let start = self.walk?;
        let found = self
            .entries
            .range((Bound::Included(start), Bound::Unbounded))
            .find(|(p, e)| e.desired.is_some() && !e.in_sync() && sendable(p));
        match found {
            Some((prefix, entry)) => {
                let prefix = *prefix;
                self.walk = Some(prefix);
                entry.desired.clone().map(|a| (Family::of(&prefix), a))
            }
            None => {
                self.walk = None;
                None
            }
        }
    }
}

fn family_index(family: Family) -> usize {
    if family == Family::IPV6_UNICAST { 1 } else { 0 }
}

fn as_v4(prefix: &IpNet) -> Option<Ipv4Net> {
    match prefix {
        IpNet::V4(p) => Some(*p),
        IpNet::V6(_) => None,
    }
}

/// Builds the UPDATE announcing `v4` (classic NLRI) or `v6` (MP_REACH) with `attrs`.
/// Attributes are in type-code order, as RFC 4271 §5 recommends.
fn announcement(
    params: &SessionParams,
    family: Family,
    attrs: &RouteAttributes,
    v4: Vec<IpNet>,
    v6: Vec<IpNet>,
) -> Update {
    let mut attributes = Vec::with_capacity(8);
    attributes.push(PathAttribute::Origin(Origin::Igp));
    // RFC 4271 §5.1.2: an iBGP speaker sends an empty AS_PATH for its own routes; towards
    // eBGP it prepends its AS as an AS_SEQUENCE.
    let as_path = if params.ibgp {
        AsPath::default()
    } else {
        AsPath {
            segments: vec![AsSegment::Sequence(vec![params.local_as])],
        }
    };
    let needs_as4_path = !params.codec.four_octet_as && params.local_as > u32::from(u16::MAX);
    attributes.push(PathAttribute::AsPath(as_path.clone()));
    if family == Family::IPV4_UNICAST
        && let Some(nh) = params.next_hop_v4
    {
        attributes.push(PathAttribute::NextHop(nh));
    }
    if let Some(med) = attrs.med {
        attributes.push(PathAttribute::MultiExitDisc(med));
    }
    if params.ibgp
        && let Some(lp) = attrs.local_pref
    {
        attributes.push(PathAttribute::LocalPref(lp));
    }
    if !attrs.communities.is_empty() {
        attributes.push(PathAttribute::Communities(attrs.communities.clone()));
    }
    if family == Family::IPV6_UNICAST
        && let Some((global, link_local)) = params.next_hop_v6
    {
        attributes.push(PathAttribute::MpReach(MpReach {
            family,
            next_hop: NextHop::V6 { global, link_local },
            nlri: v6,
        }));
    }
    // RFC 6793 §4.2.2: towards a 2-octet-only peer our real ASN travels in AS4_PATH.
    if needs_as4_path && !params.ibgp {
        attributes.push(PathAttribute::As4Path(as_path));
    }
    if !attrs.large_communities.is_empty() {
        attributes.push(PathAttribute::LargeCommunities(
            attrs.large_communities.clone(),
        ));
    }
    Update {
        withdrawn: Vec::new(),
        attributes,
        nlri: v4.iter().filter_map(as_v4).collect(),
        recovered_errors: Vec::new(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::wire::{MAX_EXTENDED_MESSAGE_LEN, MAX_MESSAGE_LEN, Message};

    fn params() -> SessionParams {
        SessionParams {
            local_as: 4_200_000_000,
            ibgp: false,
            codec: CodecContext {
                four_octet_as: true,
                max_message_len: MAX_MESSAGE_LEN,
            },
            families: vec![Family::IPV4_UNICAST, Family::IPV6_UNICAST],
            next_hop_v4: Some(Ipv4Addr::new(192, 0, 2, 11)),
            next_hop_v6: Some(("2001:db8:0:1::11".parse().unwrap(), None)),
        }
    }

    fn net(s: &str) -> IpNet {
        s.parse().unwrap()
    }

    fn attrs(community: u16) -> RouteAttributes {
        RouteAttributes::new(Some(200), None, [Community::new(64512, community)], [])
    }

    fn drain(rib: &mut AdjRibOut, params: &SessionParams) -> Vec<Update> {
        let mut out = Vec::new();
        while let Some(u) = rib.next_update(params) {
            let bytes = Message::Update(u.clone())
                .encode(&params.codec)
                .expect("encodes");
            assert!(
                bytes.len() <= params.codec.max_message_len,
                "{} bytes",
                bytes.len()
            );
            out.push(u);
            assert!(out.len() < 100_000, "runaway packer");
        }
        out
    }

    fn announced(u: &Update) -> Vec<IpNet> {
        let mut v: Vec<IpNet> = u.nlri.iter().map(|p| IpNet::V4(*p)).collect();
        for a in &u.attributes {
            if let PathAttribute::MpReach(r) = a {
                v.extend(r.nlri.iter().copied());
            }
        }
        v
    }

    fn withdrawn(u: &Update) -> Vec<IpNet> {
        let mut v: Vec<IpNet> = u.withdrawn.iter().map(|p| IpNet::V4(*p)).collect();
        for a in &u.attributes {
            if let PathAttribute::MpUnreach(r) = a {
                v.extend(r.withdrawn.iter().copied());
            }
        }
        v
    }

    fn v4_hosts(n: u32) -> Vec<(IpNet, RouteAttributes)> {
        let base = u32::from(Ipv4Addr::new(198, 18, 0, 0));
        (0..n)
            .map(|i| {
                (
                    IpNet::V4(Ipv4Net::new(Ipv4Addr::from(base + i), 32).unwrap()),
                    attrs(1),
                )
            })
            .collect()
    }

    #[test]
    fn nothing_is_sent_before_the_session_is_up() {
        let mut rib = AdjRibOut::new();
        rib.set_desired(v4_hosts(3));
        assert!(!rib.has_pending());
        assert_eq!(rib.next_update(&params()), None);
    }

    #[test]
    fn session_up_sends_everything_then_end_of_rib_per_family() {
        let mut rib = AdjRibOut::new();
        rib.set_desired([
            (net("203.0.113.10/32"), attrs(1)),
            (net("2001:db8:ff::10/128"), attrs(1)),
        ]);
        rib.session_up(&[Family::IPV4_UNICAST, Family::IPV6_UNICAST]);
        let updates = drain(&mut rib, &params());
        assert_eq!(updates.len(), 4);
        assert_eq!(announced(&updates[0]), vec![net("203.0.113.10/32")]);
        assert_eq!(announced(&updates[1]), vec![net("2001:db8:ff::10/128")]);
        assert_eq!(updates[2].end_of_rib_family(), Some(Family::IPV4_UNICAST));
        assert_eq!(updates[3].end_of_rib_family(), Some(Family::IPV6_UNICAST));
        assert!(rib.initial_sync_done());
        assert_eq!(rib.advertised_count(Family::IPV4_UNICAST), 1);
        assert_eq!(rib.advertised_count(Family::IPV6_UNICAST), 1);
    }

    #[test]
    fn ebgp_announcement_carries_origin_as_sequence_next_hop_and_communities_but_no_local_pref() {
        let mut rib = AdjRibOut::new();
        let a = RouteAttributes::new(
            Some(300),
            None,
            [Community::new(64512, 7)],
            [LargeCommunity {
                global_admin: 4_200_000_000,
                local_data1: 1,
                local_data2: 2,
            }],
        );
        rib.set_desired([(net("203.0.113.10/32"), a)]);
        rib.session_up(&[Family::IPV4_UNICAST]);
        let u = rib.next_update(&params()).expect("an update");
        assert_eq!(
            u.attributes,
            vec![
                PathAttribute::Origin(Origin::Igp),
                PathAttribute::AsPath(AsPath {
                    segments: vec![AsSegment::Sequence(vec![4_200_000_000])]
                }),
                PathAttribute::NextHop(Ipv4Addr::new(192, 0, 2, 11)),
                PathAttribute::Communities(vec![Community::new(64512, 7)]),
                PathAttribute::LargeCommunities(vec![LargeCommunity {
                    global_admin: 4_200_000_000,
                    local_data1: 1,
                    local_data2: 2
                }]),
            ]
        );
    }

    #[test]
    fn ibgp_announcement_has_empty_as_path_and_local_pref() {
        let mut rib = AdjRibOut::new();
        rib.set_desired([(net("203.0.113.10/32"), attrs(1))]);
        rib.session_up(&[Family::IPV4_UNICAST]);
        let p = SessionParams {
            ibgp: true,
            ..params()
        };
        let u = rib.next_update(&p).expect("an update");
        assert!(
            u.attributes
                .contains(&PathAttribute::AsPath(AsPath::default()))
        );
        assert!(u.attributes.contains(&PathAttribute::LocalPref(200)));
    }

    #[test]
    fn two_octet_peer_gets_as4_path_for_a_four_octet_asn() {
        let mut rib = AdjRibOut::new();
        rib.set_desired([(net("203.0.113.10/32"), attrs(1))]);
        rib.session_up(&[Family::IPV4_UNICAST]);
        let mut p = params();
        p.codec.four_octet_as = false;
        let u = rib.next_update(&p).expect("an update");
        assert!(u.attributes.contains(&PathAttribute::As4Path(AsPath {
            segments: vec![AsSegment::Sequence(vec![4_200_000_000])]
        })));
    }

    #[test]
    fn ipv6_routes_travel_in_mp_reach_with_the_ipv6_next_hop() {
        let mut rib = AdjRibOut::new();
        rib.set_desired([(net("2001:db8:ff::10/128"), attrs(1))]);
        rib.session_up(&[Family::IPV6_UNICAST]);
        let u = rib.next_update(&params()).expect("an update");
        assert!(u.nlri.is_empty());
        assert!(
            !u.attributes
                .iter()
                .any(|a| matches!(a, PathAttribute::NextHop(_)))
        );
        assert!(u.attributes.contains(&PathAttribute::MpReach(MpReach {
            family: Family::IPV6_UNICAST,
            next_hop: NextHop::V6 {
                global: "2001:db8:0:1::11".parse().unwrap(),
                link_local: None
            },
            nlri: vec![net("2001:db8:ff::10/128")],
        })));
    }

    #[test]
    fn a_family_the_peer_did_not_negotiate_is_held_back_with_a_reason() {
        let mut rib = AdjRibOut::new();
        rib.set_desired([
            (net("203.0.113.10/32"), attrs(1)),
            (net("2001:db8:ff::10/128"), attrs(1)),
        ]);
        rib.session_up(&[Family::IPV4_UNICAST]);
        let p = SessionParams {
            families: vec![Family::IPV4_UNICAST],
            ..params()
        };
        let updates = drain(&mut rib, &p);
        assert_eq!(
            updates.len(),
            2,
            "one announcement and the IPv4 End-of-RIB: {updates:?}"
        );
        assert_eq!(
            p.can_send(Family::IPV6_UNICAST),
            Err("address family not negotiated with the peer")
        );
        assert_eq!(rib.advertised_count(Family::IPV6_UNICAST), 0);
    }

    #[test]
    fn only_the_changed_prefixes_are_sent_after_the_initial_sync() {
        let mut rib = AdjRibOut::new();
        rib.set_desired(v4_hosts(100));
        rib.session_up(&[Family::IPV4_UNICAST]);
        drain(&mut rib, &params());
        let mut routes = v4_hosts(100);
        routes.remove(0); // withdraw 198.18.0.0
        routes[0].1 = attrs(2); // re-announce 198.18.0.1 with a new community
        routes.push((net("203.0.113.10/32"), attrs(1))); // announce a new one
        rib.set_desired(routes);
        let updates = drain(&mut rib, &params());
        assert_eq!(updates.len(), 3, "{updates:?}");
        assert_eq!(withdrawn(&updates[0]), vec![net("198.18.0.0/32")]);
        let mut sent: Vec<Vec<IpNet>> = updates[1..].iter().map(announced).collect();
        sent.sort();
        assert_eq!(
            sent,
            vec![vec![net("198.18.0.1/32")], vec![net("203.0.113.10/32")]]
        );
        assert_eq!(rib.advertised_count(Family::IPV4_UNICAST), 100);
    }

    #[test]
    fn setting_the_same_routes_again_sends_nothing() {
        let mut rib = AdjRibOut::new();
        rib.set_desired(v4_hosts(10));
        rib.session_up(&[Family::IPV4_UNICAST]);
        drain(&mut rib, &params());
        rib.set_desired(v4_hosts(10));
        assert_eq!(drain(&mut rib, &params()), vec![]);
    }

    #[test]
    fn withdrawing_a_route_never_sent_sends_nothing() {
        let mut rib = AdjRibOut::new();
        rib.session_up(&[Family::IPV4_UNICAST]);
        drain(&mut rib, &params());
        rib.set_route(net("203.0.113.10/32"), Some(attrs(1)));
        rib.set_route(net("203.0.113.10/32"), None);
        assert_eq!(drain(&mut rib, &params()), vec![]);
    }

    #[test]
    fn packer_fills_4096_byte_updates_with_about_800_host_routes() {
        let mut rib = AdjRibOut::new();
        rib.set_desired(v4_hosts(10_000));
        rib.session_up(&[Family::IPV4_UNICAST]);
        let updates = drain(&mut rib, &params());
        let sizes: Vec<usize> = updates.iter().map(|u| u.nlri.len()).collect();
        assert!(sizes[0] >= 800, "first UPDATE holds {} prefixes", sizes[0]);
        assert_eq!(sizes.iter().sum::<usize>(), 10_000);
        assert_eq!(
            updates.len(),
            10_000usize.div_ceil(sizes[0]) + 1,
            "packed tight, plus End-of-RIB"
        );
        for u in &updates[..updates.len() - 1] {
            let len = Message::Update(u.clone())
                .encode(&params().codec)
                .unwrap()
                .len();
            assert!(
                len > MAX_MESSAGE_LEN - 5 || u.nlri.len() < sizes[0],
                "underfilled: {len}"
            );
        }
    }

    #[test]
    fn extended_messages_carry_sixteen_times_more_prefixes() {
        let mut rib = AdjRibOut::new();
        rib.set_desired(v4_hosts(20_000));
        rib.session_up(&[Family::IPV4_UNICAST]);
        let mut p = params();
        p.codec.max_message_len = MAX_EXTENDED_MESSAGE_LEN;
        let updates = drain(&mut rib, &p);
        assert!(updates[0].nlri.len() > 13_000, "{}", updates[0].nlri.len());
    }

    #[test]
    fn ipv6_withdrawals_are_packed_into_mp_unreach() {
        let mut rib = AdjRibOut::new();
        let v6: Vec<_> = (0..1000u32)
            .map(|i| {
                (
                    IpNet::V6(format!("2001:db8:ff::{i:x}/128").parse().unwrap()),
                    attrs(1),
                )
            })
            .collect();
        rib.set_desired(v6);
        rib.session_up(&[Family::IPV6_UNICAST]);
        let ann = drain(&mut rib, &params());
        assert!(
            ann.len() >= 5,
            "1000 /128s need several 4096-byte UPDATEs, got {}",
            ann.len()
        );
        rib.set_desired(Vec::new());
        let wd = drain(&mut rib, &params());
        assert_eq!(wd.iter().map(|u| withdrawn(u).len()).sum::<usize>(), 1000);
        assert!(wd.len() <= 5);
        assert_eq!(rib.advertised_count(Family::IPV6_UNICAST), 0);
        assert_eq!(rib.desired_count(), 0);
    }

    #[test]
    fn interleaved_attribute_sets_are_grouped_into_separate_updates() {
        let mut rib = AdjRibOut::new();
        let routes: Vec<_> = v4_hosts(1000)
            .into_iter()
            .enumerate()
            .map(|(i, (p, _))| (p, attrs((i % 2) as u16)))
            .collect();
        rib.set_desired(routes);
        rib.session_up(&[Family::IPV4_UNICAST]);
        let updates = drain(&mut rib, &params());
        assert_eq!(
            updates.len(),
            3,
            "two attribute groups of 500 and End-of-RIB"
        );
        assert_eq!(updates.iter().map(|u| u.nlri.len()).sum::<usize>(), 1000);
    }

    #[test]
    fn every_prefix_with_unique_attributes_still_gets_sent_exactly_once() {
        let mut rib = AdjRibOut::new();
        let routes: Vec<_> = v4_hosts(3000)
            .into_iter()
            .enumerate()
            .map(|(i, (p, _))| (p, RouteAttributes::new(None, Some(i as u32), [], [])))
            .collect();
        rib.set_desired(routes);
        rib.session_up(&[Family::IPV4_UNICAST]);
        let updates = drain(&mut rib, &params());
        let mut all: Vec<IpNet> = updates.iter().flat_map(announced).collect();
        all.sort();
        all.dedup();
        assert_eq!(all.len(), 3000);
        assert_eq!(updates.len(), 3001);
    }

    #[test]
    fn route_refresh_resends_the_whole_family_but_keeps_pending_withdrawals() {
        let mut rib = AdjRibOut::new();
        rib.set_desired(v4_hosts(10));
        rib.session_up(&[Family::IPV4_UNICAST]);
        drain(&mut rib, &params());
        rib.set_route(net("198.18.0.0/32"), None);
        rib.route_refresh(Family::IPV4_UNICAST);
        let updates = drain(&mut rib, &params());
        assert_eq!(withdrawn(&updates[0]), vec![net("198.18.0.0/32")]);
        assert_eq!(
            updates[1..]
                .iter()
                .map(|u| announced(u).len())
                .sum::<usize>(),
            9
        );
        assert!(
            updates.iter().all(|u| u.end_of_rib_family().is_none()),
            "no End-of-RIB on refresh"
        );
    }

    #[test]
    fn session_down_forgets_what_was_advertised_and_the_next_session_resends() {
        let mut rib = AdjRibOut::new();
        rib.set_desired(v4_hosts(10));
        rib.session_up(&[Family::IPV4_UNICAST]);
        drain(&mut rib, &params());
        rib.session_down();
        assert_eq!(rib.advertised_count(Family::IPV4_UNICAST), 0);
        rib.set_route(net("198.18.0.9/32"), None);
        rib.session_up(&[Family::IPV4_UNICAST]);
        let updates = drain(&mut rib, &params());
        assert_eq!(announced(&updates[0]).len(), 9);
        assert_eq!(updates.len(), 2);
    }

    #[test]
    fn changes_during_the_initial_walk_are_not_lost() {
        let mut rib = AdjRibOut::new();
        rib.set_desired(v4_hosts(5000));
        rib.session_up(&[Family::IPV4_UNICAST]);
        let first = rib.next_update(&params()).expect("first");
        let sent_first = announced(&first);
        // Withdraw one already sent and one not yet sent; add one at the very start.
        rib.set_route(sent_first[0], None);
        rib.set_route(net("198.18.19.0/32"), None);
        rib.set_route(net("10.0.0.0/32"), Some(attrs(1)));
        let rest = drain(&mut rib, &params());
        let mut sent: BTreeSet<IpNet> = sent_first.into_iter().collect();
        for u in &rest {
            for p in withdrawn(u) {
                assert!(sent.remove(&p), "withdrew {p} that was never sent");
            }
            sent.extend(announced(u));
        }
        let desired: BTreeSet<IpNet> = rib.desired().map(|(p, _)| *p).collect();
        assert_eq!(sent, desired);
        assert_eq!(rib.advertised_count(Family::IPV4_UNICAST), 4999);
    }

    #[test]
    fn graceful_shutdown_adds_the_community_and_zeroes_local_pref_for_ibgp_only() {
        let a = RouteAttributes::new(Some(200), None, [Community::new(64512, 1)], []);
        let e = a.graceful_shutdown(false);
        assert_eq!(
            e.communities,
            vec![Community::new(64512, 1), Community::GRACEFUL_SHUTDOWN]
        );
        assert_eq!(e.local_pref, Some(200));
        assert_eq!(a.graceful_shutdown(true).local_pref, Some(0));
        assert_eq!(
            e.graceful_shutdown(false),
            e,
            "draining twice changes nothing"
        );
    }

    #[test]
    fn equal_community_sets_in_any_order_are_the_same_attributes() {
        let a = RouteAttributes::new(None, None, [Community(2), Community(1), Community(2)], []);
        let b = RouteAttributes::new(None, None, [Community(1), Community(2)], []);
        assert_eq!(a, b);
    }
}
