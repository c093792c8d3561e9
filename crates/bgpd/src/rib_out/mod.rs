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
mod tests;
