//! [`L2Node`]: one announcer's whole decision-making, sans-IO. It ties the heartbeat tracker,
//! the election and the responder together: frames and caller facts go in with the current
//! time, frames to send and ownership changes come out, and [`L2Node::next_wake`] says when
//! to call [`L2Node::tick`] next. It never reads a clock and never touches a socket, so tests
//! run whole segments of nodes on a virtual clock.
//!
//! Life of a node: it starts **listening** (for `listen_for`, default twice the dead interval)
//! so it learns the segment's claims before making any; then it is **active**: after every
//! change it re-runs the election and claims, keeps or drops groups accordingly, announces what
//! it takes, answers for what it owns, and beats every interval (and at once when its claims
//! change). A **drain** hands every owned group to its successor and ends when all are taken
//! or at the deadline. Planned rebalancing runs while active.

use std::collections::{BTreeMap, BTreeSet};
use std::net::IpAddr;
use std::time::{Duration, SystemTime};

use tracing::{debug, info, warn};

use crate::config::{
    ConfigError, GroupError, InterfaceFacts, L2Config, VipGroup, index_groups, index_interfaces,
};
use crate::election::{
    Election, HrwScores, Ineligible, MemberState, MemberView, NotOwnerReason, elect, plan_rebalance,
};
use crate::membership::{HeartbeatTracker, Liveness, PeerClaim};
use crate::preflight::PreflightWarning;
use crate::responder::{AnnounceSchedule, ReplyKind, announcement_frames, respond};
use crate::status::{
    ConflictRecord, Counters, DurationHistogram, GroupStatus, InterfaceStatus, L2Status,
    MemberLiveness, MemberStatus, NodePhase, OwnerReason,
};
use crate::wire::heartbeat::{MAX_ECHOES, heartbeat_frame};
use crate::wire::{Beat, BeatClaim, Frame, HeartbeatError, HeartbeatKey, MacAddr, decode_frame};

/// What the driver must do.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Output {
    /// Send `frame` (a complete Ethernet frame) on `interface`.
    Send {
        interface: String,
        frame: Vec<u8>,
        kind: SentKind,
    },
    /// This node now answers for `group` (join its IPv6 solicited-node groups).
    Owned(VipGroup),
    /// This node no longer answers for `group` (leave the groups).
    Released(VipGroup),
}

/// Why a frame is sent (for counters, and to time the first announcement).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum SentKind {
    Heartbeat,
    Reply,
    /// A gratuitous ARP or unsolicited NA for `group`; `first` marks the first frame after
    /// the group was taken: report its departure with [`L2Node::announce_sent`].
    Announce {
        group: IpAddr,
        first: bool,
    },
}

#[derive(Clone, Debug)]
struct MyClaim {
    group: VipGroup,
    epoch: u64,
    claimed_at: Duration,
    reason: OwnerReason,
    handoff: Option<Handoff>,
    first_announced: bool,
    /// Made without hearing a majority of the segment (see `election`).
    provisional: bool,
    /// A conflict was won and re-announced; cleared when the loser gives up.
    conflict_reannounced: bool,
}

#[derive(Clone, Debug)]
struct Handoff {
    to: String,
    started: Duration,
}

#[derive(Clone, Copy, Debug)]
struct Drain {
    deadline: Duration,
}

/// Why a group lost its owner, kept until the next owner appears.
#[derive(Clone, Debug)]
enum LossCause {
    Dead {
        node: String,
        last_heard: Option<Duration>,
    },
    Restarted(String),
    Ineligible(String),
    Released,
}

#[derive(Clone, Debug)]
struct GroupHistory {
    owner: Option<String>,
    epoch: u64,
    since: Duration,
    reason: Option<OwnerReason>,
    cause: Option<LossCause>,
    /// When this node first saw that it should take the group (for detection→claim).
    needed_since: Option<Duration>,
    /// Where this node handed the group when it dropped its claim.
    handed_to: Option<String>,
}

/// The sans-IO announcer.
#[derive(Debug)]
pub struct L2Node {
    config: L2Config,
    key: HeartbeatKey,
    wall_origin: SystemTime,
    listening_until: Duration,
    was_listening: bool,
    interfaces: BTreeMap<String, InterfaceFacts>,
    socket_errors: BTreeMap<String, String>,
    configured: BTreeMap<IpAddr, VipGroup>,
    tracker: HeartbeatTracker,
    claims: BTreeMap<IpAddr, MyClaim>,
    epochs_seen: BTreeMap<IpAddr, u64>,
    seq: u64,
    next_beat: Duration,
    beat_now: bool,
    drain: Option<Drain>,
    election: Election,
    scores: HrwScores,
    dirty: bool,
    history: BTreeMap<IpAddr, GroupHistory>,
    announce: AnnounceSchedule,
    last_rebalance: Option<Duration>,
    /// Since when this node has continuously heard a majority of the segment.
    majority_since: Option<Duration>,
    /// During a drain: groups another node took over, and groups let go unclaimed.
    drain_taken_over: usize,
    drain_released: usize,
    counters: Counters,
    owner_changes: BTreeMap<&'static str, u64>,
    detection_to_claim: DurationHistogram,
    claim_to_first_announce: DurationHistogram,
    last_beat_to_claim: DurationHistogram,
    requests_answered: BTreeMap<IpAddr, u64>,
    conflicts: BTreeMap<(IpAddr, MacAddr), ConflictRecord>,
    warnings: Vec<PreflightWarning>,
}

impl L2Node {
    /// A node that starts listening at `now`; `wall_origin` is the wall-clock time of `now ==
    /// 0` (status timestamps are `wall_origin + now`).
    pub fn new(
        config: L2Config,
        now: Duration,
        wall_origin: SystemTime,
    ) -> Result<L2Node, ConfigError> {
        config.validate()?;
        let key = HeartbeatKey::new(&config.key).map_err(|_| ConfigError::KeyTooShort {
            len: config.key.len(),
        })?;
        let timers = config.timers;
        let announce =
            AnnounceSchedule::new(config.announce.burst.clone(), config.announce.refresh);
        Ok(L2Node {
            key,
            wall_origin,
            listening_until: now + timers.listen_period(),
            was_listening: true,
            interfaces: BTreeMap::new(),
            socket_errors: BTreeMap::new(),
            configured: BTreeMap::new(),
            tracker: HeartbeatTracker::new(timers),
            claims: BTreeMap::new(),
            epochs_seen: BTreeMap::new(),
            seq: 0,
            next_beat: now,
            beat_now: true,
            drain: None,
            election: Election::default(),
            scores: HrwScores::default(),
            dirty: true,
            history: BTreeMap::new(),
            announce,
            last_rebalance: None,
            majority_since: None,
            drain_taken_over: 0,
            drain_released: 0,
            counters: Counters::default(),
            owner_changes: BTreeMap::new(),
            detection_to_claim: DurationHistogram::new(),
            claim_to_first_announce: DurationHistogram::new(),
            last_beat_to_claim: DurationHistogram::new(),
            requests_answered: BTreeMap::new(),
            conflicts: BTreeMap::new(),
            warnings: Vec::new(),
            config,
        })
    }

    pub fn node_id(&self) -> &str {
        &self.config.node_id
    }

    /// Replaces the announce interfaces. Invalid input changes nothing.
    pub fn set_interfaces(
        &mut self,
        now: Duration,
        interfaces: Vec<InterfaceFacts>,
    ) -> Result<Vec<Output>, GroupError> {
        let interfaces = index_interfaces(interfaces)?;
        for (name, facts) in &interfaces {
            match self.interfaces.get(name) {
                Some(old) if old.carrier_up && !facts.carrier_up => {
                    info!(interface = %name, "carrier lost: its groups are no longer eligible")
                }
                Some(old) if !old.carrier_up && facts.carrier_up => {
                    info!(interface = %name, "carrier back")
                }
                _ => {}
            }
        }
        self.socket_errors.retain(|n, _| interfaces.contains_key(n));
        self.interfaces = interfaces;
        self.dirty = true;
        self.beat_now = true;
        let mut out = Vec::new();
        self.step(now, &mut out);
        Ok(out)
    }

    /// Replaces the groups this node may own. Invalid input changes nothing.
    pub fn set_eligible(
        &mut self,
        now: Duration,
        groups: Vec<VipGroup>,
    ) -> Result<Vec<Output>, GroupError> {
        let configured = index_groups(groups)?;
        let mut out = Vec::new();
        // A group we own whose addresses or interface changed: re-announce it as it is now.
        for (key, claim) in self.claims.iter_mut() {
            if let Some(new) = configured.get(key)
                && *new != claim.group
            {
                out.push(Output::Released(claim.group.clone()));
                claim.group = new.clone();
                out.push(Output::Owned(new.clone()));
                self.announce.start(*key, now);
            }
        }
        self.configured = configured;
        self.dirty = true;
        self.beat_now = true;
        self.step(now, &mut out);
        Ok(out)
    }

    /// Records that the driver could not open (or lost) the socket of `interface`.
    pub fn set_socket_error(&mut self, interface: &str, error: Option<String>) {
        match error {
            Some(e) => {
                self.socket_errors.insert(interface.to_string(), e);
            }
            None => {
                self.socket_errors.remove(interface);
            }
        }
    }

    pub fn set_warnings(&mut self, warnings: Vec<PreflightWarning>) {
        self.warnings = warnings;
    }

    /// The groups and interfaces the preflight checks need.
    pub fn configured(
        &self,
    ) -> (
        &BTreeMap<IpAddr, VipGroup>,
        &BTreeMap<String, InterfaceFacts>,
    ) {
        (&self.configured, &self.interfaces)
    }

    /// Timers are due (or anything else happened that needs no input).
    pub fn tick(&mut self, now: Duration) -> Vec<Output> {
        let mut out = Vec::new();
        self.step(now, &mut out);
        out
    }

    /// A frame arrived on `interface`.
    pub fn receive(&mut self, now: Duration, interface: &str, bytes: &[u8]) -> Vec<Output> {
        let mut out = Vec::new();
        let Some(facts) = self.interfaces.get(interface) else {
            return out;
        };
        let mac = facts.mac;
        match decode_frame(bytes) {
            Err(e) => {
                self.counters.frames_malformed += 1;
                debug!(%interface, error = %e, "malformed frame");
            }
            Ok(Frame::Heartbeat(eth, payload)) => {
                if eth.src != mac {
                    self.receive_heartbeat(now, interface, eth.src, payload);
                }
            }
            Ok(frame) => {
                match &frame {
                    Frame::Arp(..) => self.counters.arp_frames_received += 1,
                    Frame::Ndp(..) => self.counters.ndp_frames_received += 1,
                    Frame::Heartbeat(..) => {}
                }
                let owned: BTreeSet<IpAddr> = self
                    .claims
                    .values()
                    .filter(|c| c.group.interface == interface)
                    .flat_map(|c| c.group.addresses.iter().copied())
                    .collect();
                let known: BTreeSet<IpAddr> = self
                    .configured
                    .values()
                    .flat_map(|g| g.addresses.iter().copied())
                    .collect();
                let response = respond(&frame, mac, &owned, &known);
                for reply in response.replies {
                    *self.requests_answered.entry(reply.vip).or_insert(0) += 1;
                    match reply.kind {
                        ReplyKind::ArpReply => self.counters.arp_replies_sent += 1,
                        ReplyKind::NeighborAdvert => self.counters.neighbor_adverts_sent += 1,
                    }
                    out.push(Output::Send {
                        interface: interface.to_string(),
                        frame: reply.frame,
                        kind: SentKind::Reply,
                    });
                }
                if response.unowned_request.is_some() {
                    self.counters.requests_not_owned += 1;
                }
                for seen in response.conflicts {
                    let peer = self
                        .tracker
                        .peers()
                        .values()
                        .find(|p| p.mac == seen.mac)
                        .map(|p| p.node_id.clone());
                    let at = self.wall(now);
                    let record = self
                        .conflicts
                        .entry((seen.vip, seen.mac))
                        .or_insert_with(|| {
                            warn!(vip = %seen.vip, mac = %seen.mac, %interface, evidence = ?seen.evidence,
                                "another MAC answers for a VIP this node owns");
                            ConflictRecord {
                                vip: seen.vip,
                                mac: seen.mac,
                                interface: interface.to_string(),
                                count: 0,
                                first_seen: at,
                                last_seen: at,
                                last_evidence: seen.evidence,
                                peer: None,
                            }
                        });
                    record.count += 1;
                    record.last_seen = at;
                    record.last_evidence = seen.evidence;
                    record.peer = peer;
                }
            }
        }
        self.step(now, &mut out);
        out
    }

    fn receive_heartbeat(&mut self, now: Duration, interface: &str, src: MacAddr, payload: &[u8]) {
        self.counters.heartbeat_frames_received += 1;
        self.counters.heartbeat_bytes_received += payload.len() as u64 + 14;
        let part = match self.key.open(payload) {
            Ok(part) => part,
            Err(HeartbeatError::BadMac) => {
                self.counters.heartbeats_bad_mac += 1;
                debug!(%interface, %src, "heartbeat with a bad MAC ignored");
                return;
            }
            Err(e) => {
                self.counters.heartbeats_malformed += 1;
                debug!(%interface, %src, error = %e, "malformed heartbeat ignored");
                return;
            }
        };
        if part.beat.segment != self.config.segment {
            self.counters.heartbeats_other_segment += 1;
            return;
        }
        if part.beat.node_id == self.config.node_id {
            if part.beat.incarnation != self.config.incarnation {
                self.counters.heartbeats_duplicate_node_id += 1;
                warn!(%interface, %src, "another node beats with this node's id");
            }
            return;
        }
        let node = part.beat.node_id.clone();
        match self
            .tracker
            .receive(now, interface, src, part, &self.config.node_id)
        {
            Ok(accepted) => {
                if accepted.changed || accepted.liveness_changed {
                    self.dirty = true;
                }
            }
            Err(e) => {
                self.counters.heartbeats_replayed += 1;
                debug!(peer = %node, error = %e, "heartbeat rejected");
            }
        }
    }

    /// Starts handing every owned group to its successor; the drain is over when
    /// [`L2Node::is_drained`] (every group taken, or `timeout` passed).
    pub fn begin_drain(&mut self, now: Duration, timeout: Duration) -> Vec<Output> {
        let mut out = Vec::new();
        if self.drain.is_none() {
            info!(groups = self.claims.len(), ?timeout, "draining");
            self.drain = Some(Drain {
                deadline: now + timeout,
            });
            self.dirty = true;
            self.beat_now = true;
            self.run_elections(now, &mut out);
            let groups: Vec<IpAddr> = self.claims.keys().copied().collect();
            for group in groups {
                self.plan_drain_handoff(now, group, &mut out);
            }
        }
        self.step(now, &mut out);
        out
    }

    /// During a drain: (groups taken over by their successors, groups let go without one).
    pub fn drain_progress(&self) -> (usize, usize) {
        (self.drain_taken_over, self.drain_released)
    }

    /// A drain was started and this node owns nothing any more.
    pub fn is_drained(&self) -> bool {
        self.drain.is_some() && self.claims.is_empty()
    }

    /// The first announcement of `group` since it was taken left the socket at `now`.
    pub fn announce_sent(&mut self, group: IpAddr, now: Duration) {
        if let Some(claim) = self.claims.get_mut(&group)
            && !claim.first_announced
        {
            claim.first_announced = true;
            self.claim_to_first_announce
                .record(now.saturating_sub(claim.claimed_at));
        }
    }

    /// When [`L2Node::tick`] must be called next.
    pub fn next_wake(&self) -> Duration {
        let mut wake = self.next_beat;
        let mut consider = |d: Option<Duration>| {
            if let Some(d) = d {
                wake = wake.min(d);
            }
        };
        consider(self.tracker.next_deadline());
        consider(self.announce.next_deadline());
        if self.was_listening {
            consider(Some(self.listening_until));
        }
        consider(self.drain.map(|d| d.deadline));
        for claim in self.claims.values() {
            consider(
                claim
                    .handoff
                    .as_ref()
                    .map(|h| h.started + self.config.timers.handoff_timeout),
            );
        }
        wake
    }

    /// The groups this node owns now.
    pub fn owned(&self) -> impl Iterator<Item = &VipGroup> {
        self.claims.values().map(|c| &c.group)
    }

    fn listening(&self, now: Duration) -> bool {
        now < self.listening_until
    }

    fn wall(&self, at: Duration) -> SystemTime {
        self.wall_origin + at
    }

    fn locally_eligible(&self, group: IpAddr) -> Result<(), Ineligible> {
        let configured = self
            .configured
            .get(&group)
            .ok_or(Ineligible::NotConfigured)?;
        let interface = &configured.interface;
        let facts = self
            .interfaces
            .get(interface)
            .ok_or_else(|| Ineligible::InterfaceUnknown {
                interface: interface.clone(),
            })?;
        if !facts.carrier_up {
            return Err(Ineligible::CarrierDown {
                interface: interface.clone(),
            });
        }
        Ok(())
    }

    fn eligible_keys(&self) -> BTreeSet<IpAddr> {
        self.configured
            .keys()
            .copied()
            .filter(|k| self.locally_eligible(*k).is_ok())
            .collect()
    }

    fn step(&mut self, now: Duration, out: &mut Vec<Output>) {
        if self.tracker.expire(now) {
            self.dirty = true;
        }
        if self.was_listening && !self.listening(now) {
            self.was_listening = false;
            self.dirty = true;
            self.beat_now = true;
            info!(
                peers = self.tracker.peers().len(),
                "listening over: claiming from now on"
            );
        }
        self.track_majority(now);
        self.run_elections(now, out);
        self.tend_handoffs(now, out);
        self.run_elections(now, out);
        for due in self.announce.due(now) {
            self.send_announcement(due.group, due.first, out);
        }
        if self.beat_now || now >= self.next_beat {
            self.send_beat(now, out);
        }
    }

    /// Whether this node hears more than half of the segment: itself plus peers heard within
    /// `dead_after − interval`, against itself plus every peer not forgotten (peers that left
    /// by draining do not count). The freshness window is shorter than the dead interval so
    /// that when a node's own link fails, the first peer it declares dead finds the others
    /// already stale: an isolated node never believes it holds a majority.
    fn hears_majority(&self, now: Duration) -> bool {
        let timers = &self.config.timers;
        let fresh = timers
            .dead_after()
            .saturating_sub(timers.heartbeat_interval);
        let peers = self.tracker.peers().values();
        let members = 1 + peers
            .clone()
            .filter(|p| !(p.draining && matches!(p.liveness, Liveness::Dead { .. })))
            .count();
        let heard = 1 + peers
            .filter(|p| !matches!(p.liveness, Liveness::Dead { .. }))
            .filter(|p| now.saturating_sub(p.last_heard) < fresh)
            .count();
        heard * 2 > members
    }

    /// Promotes provisional claims once a majority has been heard for a whole listening
    /// period (long enough to have heard every live peer's claims) and nobody contests them.
    fn track_majority(&mut self, now: Duration) {
        if !self.hears_majority(now) {
            self.majority_since = None;
            return;
        }
        let since = *self.majority_since.get_or_insert(now);
        if now.saturating_sub(since) < self.config.timers.listen_period() {
            return;
        }
        for (group, claim) in self.claims.iter_mut() {
            let uncontested = self
                .election
                .groups
                .get(group)
                .is_some_and(|o| o.superseded.is_empty());
            if claim.provisional && uncontested {
                debug!(%group, "provisional claim confirmed by a majority");
                claim.provisional = false;
                self.dirty = true;
                self.beat_now = true;
            }
        }
    }

    fn views<'a>(
        &'a self,
        my_eligible: &'a BTreeSet<IpAddr>,
        my_claims: &'a BTreeMap<IpAddr, PeerClaim>,
        now: Duration,
    ) -> BTreeMap<String, MemberView<'a>> {
        let mut members: BTreeMap<String, MemberView<'a>> = self
            .tracker
            .peers()
            .values()
            .map(|p| {
                let state = match p.liveness {
                    Liveness::Alive => MemberState::Alive,
                    Liveness::Joining { .. } => MemberState::Joining,
                    Liveness::Dead { .. } => MemberState::Dead,
                };
                (
                    p.node_id.clone(),
                    MemberView {
                        state,
                        listening: p.listening,
                        draining: p.draining,
                        eligible: &p.eligible,
                        claims: &p.claims,
                    },
                )
            })
            .collect();
        members.insert(
            self.config.node_id.clone(),
            MemberView {
                state: MemberState::Alive,
                listening: self.listening(now),
                draining: self.drain.is_some(),
                eligible: my_eligible,
                claims: my_claims,
            },
        );
        members
    }

    fn my_claim_views(&self) -> BTreeMap<IpAddr, PeerClaim> {
        self.claims
            .iter()
            .map(|(k, c)| {
                (
                    *k,
                    PeerClaim {
                        epoch: c.epoch,
                        handoff_to: c.handoff.as_ref().map(|h| h.to.clone()),
                        provisional: c.provisional,
                    },
                )
            })
            .collect()
    }

    /// Re-runs the election until this node's own claims stop changing.
    fn run_elections(&mut self, now: Duration, out: &mut Vec<Output>) {
        for _ in 0..4 {
            if !self.dirty {
                return;
            }
            self.dirty = false;
            let my_eligible = self.eligible_keys();
            let my_claims = self.my_claim_views();
            let mut scores = std::mem::take(&mut self.scores);
            let election = {
                let members = self.views(&my_eligible, &my_claims, now);
                elect(&members, &mut scores)
            };
            self.scores = scores;
            for (group, outcome) in &election.groups {
                let seen = self.epochs_seen.entry(*group).or_insert(0);
                *seen = (*seen).max(outcome.max_epoch);
            }
            self.election = election;
            let changed = self.apply_election(now, &my_eligible, out);
            self.observe(now);
            if changed {
                self.dirty = true;
                self.beat_now = true;
            }
        }
    }

    /// Claims and drops what the election says; returns whether anything changed.
    fn apply_election(
        &mut self,
        now: Duration,
        my_eligible: &BTreeSet<IpAddr>,
        out: &mut Vec<Output>,
    ) -> bool {
        let me = self.config.node_id.clone();
        let mut changed = false;

        let mine: Vec<IpAddr> = self.claims.keys().copied().collect();
        for group in mine {
            let outcome = self.election.groups.get(&group);
            let winner = outcome
                .and_then(|o| o.owner.as_ref())
                .map(|o| o.node.as_str());
            if winner == Some(me.as_str()) && my_eligible.contains(&group) {
                let superseded = outcome.is_some_and(|o| !o.superseded.is_empty());
                if let Some(claim) = self.claims.get_mut(&group) {
                    if superseded && !claim.conflict_reannounced {
                        // Our claim won a conflict: the loser's announcements may have moved
                        // clients, so announce again.
                        claim.conflict_reannounced = true;
                        self.announce.start(group, now);
                    } else if !superseded {
                        claim.conflict_reannounced = false;
                    }
                }
                continue;
            }
            let why = match winner {
                _ if !my_eligible.contains(&group) => "no longer eligible",
                Some(_) => TAKEN_OVER,
                None => "claim not valid",
            };
            self.drop_claim(now, group, why, out);
            changed = true;
        }

        if self.listening(now) || self.drain.is_some() {
            return changed;
        }
        let groups: Vec<IpAddr> = self.election.groups.keys().copied().collect();
        for group in groups {
            if self.claims.contains_key(&group) || !my_eligible.contains(&group) {
                continue;
            }
            let Some(outcome) = self.election.groups.get(&group) else {
                continue;
            };
            let reason = match &outcome.owner {
                Some(owner) if owner.node != me && owner.handoff_to.as_deref() == Some(&me) => {
                    let draining = self.tracker.peer(&owner.node).is_some_and(|p| p.draining);
                    Some(if draining {
                        OwnerReason::Drained {
                            from: owner.node.clone(),
                        }
                    } else {
                        OwnerReason::HandOff {
                            from: owner.node.clone(),
                        }
                    })
                }
                None if outcome.assigned.as_deref() == Some(&me) => {
                    // The previous owner may have been lost in this very step, before
                    // `observe` recorded why.
                    let cause = self.history.get(&group).and_then(|h| {
                        h.cause.clone().or_else(|| {
                            h.owner
                                .as_ref()
                                .filter(|p| **p != me)
                                .map(|p| self.loss_cause(p, group))
                        })
                    });
                    Some(cause.as_ref().map_or(OwnerReason::Elected, reason_after))
                }
                _ => None,
            };
            if let Some(reason) = reason {
                let epoch = self.epochs_seen.get(&group).copied().unwrap_or(0) + 1;
                self.take_claim(now, group, epoch, reason, out);
                changed = true;
            }
        }
        changed
    }

    fn take_claim(
        &mut self,
        now: Duration,
        group: IpAddr,
        epoch: u64,
        reason: OwnerReason,
        out: &mut Vec<Output>,
    ) {
        let Some(vip_group) = self.configured.get(&group).cloned() else {
            return;
        };
        info!(%group, epoch, reason = reason.kind(), "claiming");
        let history = self.history.get(&group);
        let needed = history.and_then(|h| h.needed_since).unwrap_or(now);
        self.detection_to_claim.record(now.saturating_sub(needed));
        let cause = history.and_then(|h| {
            h.cause.clone().or_else(|| {
                h.owner
                    .as_ref()
                    .filter(|p| **p != self.config.node_id)
                    .map(|p| self.loss_cause(p, group))
            })
        });
        if let Some(LossCause::Dead {
            last_heard: Some(last),
            ..
        }) = &cause
        {
            self.last_beat_to_claim.record(now.saturating_sub(*last));
        }
        self.epochs_seen.insert(group, epoch);
        let provisional = !self.hears_majority(now);
        if provisional {
            info!(%group, "claim is provisional: fewer than half of the segment is heard");
        }
        self.claims.insert(
            group,
            MyClaim {
                group: vip_group.clone(),
                epoch,
                claimed_at: now,
                reason,
                handoff: None,
                first_announced: false,
                provisional,
                conflict_reannounced: false,
            },
        );
        self.announce.start(group, now);
        out.push(Output::Owned(vip_group));
    }

    fn drop_claim(&mut self, now: Duration, group: IpAddr, why: &str, out: &mut Vec<Output>) {
        if let Some(claim) = self.claims.remove(&group) {
            info!(%group, epoch = claim.epoch, why, "releasing");
            if self.drain.is_some() {
                if why == TAKEN_OVER {
                    self.drain_taken_over += 1;
                } else {
                    self.drain_released += 1;
                }
            }
            self.announce.stop(group);
            let history = self.history.entry(group).or_insert_with(|| GroupHistory {
                owner: None,
                epoch: 0,
                since: now,
                reason: None,
                cause: None,
                needed_since: None,
                handed_to: None,
            });
            if history.cause.is_none() {
                history.cause = Some(LossCause::Released);
            }
            history.handed_to = claim.handoff.map(|h| h.to);
            out.push(Output::Released(claim.group));
        }
    }

    /// Updates each group's owner history from the current election.
    fn observe(&mut self, now: Duration) {
        let me = self.config.node_id.clone();
        let groups: Vec<(IpAddr, Option<OwnerEpoch>, bool)> = self
            .election
            .groups
            .iter()
            .map(|(g, o)| {
                (
                    *g,
                    o.owner.as_ref().map(|w| (w.node.clone(), w.epoch)),
                    o.assigned.as_deref() == Some(me.as_str())
                        || o.owner
                            .as_ref()
                            .is_some_and(|w| w.handoff_to.as_deref() == Some(me.as_str())),
                )
            })
            .collect();
        for (group, owner, needs_me) in groups {
            let cause_now = {
                let h = self.history.get(&group);
                match (h.and_then(|h| h.owner.clone()), &owner) {
                    (Some(prev), None) => Some(self.loss_cause(&prev, group)),
                    _ => None,
                }
            };
            let first_sight = !self.history.contains_key(&group);
            let history = self.history.entry(group).or_insert_with(|| GroupHistory {
                owner: None,
                epoch: 0,
                since: now,
                reason: None,
                cause: None,
                needed_since: None,
                handed_to: None,
            });
            if needs_me {
                history.needed_since.get_or_insert(now);
            } else {
                history.needed_since = None;
            }
            match owner {
                None => {
                    if history.owner.is_some() {
                        history.owner = None;
                        history.since = now;
                        history.reason = None;
                        if history.cause.is_none() {
                            history.cause = cause_now;
                        }
                    }
                }
                Some((node, epoch)) => {
                    if history.owner.as_deref() == Some(node.as_str()) {
                        history.epoch = epoch;
                        continue;
                    }
                    let previous = history.owner.take();
                    let reason = if node == me {
                        self.claims
                            .get(&group)
                            .map_or(OwnerReason::Elected, |c| c.reason.clone())
                    } else if first_sight {
                        OwnerReason::Sticky
                    } else if let Some(prev) = previous {
                        // A direct change of owner: a hand-off, or a conflict resolved.
                        let handed = if prev == me {
                            history.handed_to.clone()
                        } else {
                            self.tracker
                                .peer(&prev)
                                .and_then(|p| p.claims.get(&group))
                                .and_then(|c| c.handoff_to.clone())
                        };
                        let prev_draining = if prev == me {
                            self.drain.is_some()
                        } else {
                            self.tracker.peer(&prev).is_some_and(|p| p.draining)
                        };
                        match handed {
                            Some(to) if to == node && prev_draining => {
                                OwnerReason::Drained { from: prev }
                            }
                            Some(to) if to == node => OwnerReason::HandOff { from: prev },
                            _ => OwnerReason::ConflictResolved { loser: prev },
                        }
                    } else {
                        history
                            .cause
                            .as_ref()
                            .map_or(OwnerReason::Elected, reason_after)
                    };
                    if reason != OwnerReason::Sticky {
                        *self.owner_changes.entry(reason.kind()).or_insert(0) += 1;
                    }
                    if matches!(reason, OwnerReason::HandOff { .. }) {
                        // Rebalancing is rate-limited for the whole segment: every node
                        // waits a full interval after any hand-off it sees.
                        self.last_rebalance = Some(now);
                    }
                    history.owner = Some(node);
                    history.epoch = epoch;
                    history.since = now;
                    history.reason = Some(reason);
                    history.cause = None;
                }
            }
        }
    }

    fn loss_cause(&self, previous: &str, group: IpAddr) -> LossCause {
        if previous == self.config.node_id {
            return LossCause::Released;
        }
        match self.tracker.peer(previous) {
            None => LossCause::Dead {
                node: previous.to_string(),
                last_heard: None,
            },
            Some(peer) => match peer.liveness {
                Liveness::Dead { .. } => LossCause::Dead {
                    node: previous.to_string(),
                    last_heard: Some(peer.last_heard),
                },
                Liveness::Joining { .. } if !peer.claims.contains_key(&group) => {
                    LossCause::Restarted(previous.to_string())
                }
                _ if !peer.eligible.contains(&group) => LossCause::Ineligible(previous.to_string()),
                _ => LossCause::Released,
            },
        }
    }

    /// Hand-off timeouts, the drain deadline, and planned rebalancing.
    fn tend_handoffs(&mut self, now: Duration, out: &mut Vec<Output>) {
        let timeout = self.config.timers.handoff_timeout;
        let expired: Vec<IpAddr> = self
            .claims
            .iter()
            .filter(|(_, c)| {
                c.handoff
                    .as_ref()
                    .is_some_and(|h| now >= h.started + timeout)
            })
            .map(|(g, _)| *g)
            .collect();
        for group in expired {
            if self.drain.is_some() {
                self.plan_drain_handoff(now, group, out);
            } else if let Some(claim) = self.claims.get_mut(&group) {
                warn!(%group, to = ?claim.handoff.as_ref().map(|h| &h.to), "hand-off not taken in time: cancelled");
                claim.handoff = None;
                self.dirty = true;
                self.beat_now = true;
            }
        }
        if let Some(drain) = self.drain
            && now >= drain.deadline
            && !self.claims.is_empty()
        {
            warn!(
                groups = self.claims.len(),
                "drain deadline: releasing what was not taken"
            );
            let groups: Vec<IpAddr> = self.claims.keys().copied().collect();
            for group in groups {
                self.drop_claim(now, group, "drain deadline", out);
            }
            self.dirty = true;
            self.beat_now = true;
        }
        let rebalance = self.config.rebalance;
        let allowed = rebalance.enabled
            && self.drain.is_none()
            && !self.listening(now)
            && self
                .last_rebalance
                .is_none_or(|last| now >= last + rebalance.interval);
        if allowed {
            let my_eligible = self.eligible_keys();
            let my_claims = self.my_claim_views();
            let me = self.config.node_id.clone();
            let mut scores = std::mem::take(&mut self.scores);
            let plan = {
                let members = self.views(&my_eligible, &my_claims, now);
                let alive_for = |node: &str| -> Option<Duration> {
                    if node == me {
                        return Some(now.saturating_sub(self.listening_until));
                    }
                    let peer = self.tracker.peer(node)?;
                    Some(now.saturating_sub(peer.alive_since?))
                };
                plan_rebalance(
                    &self.election,
                    &members,
                    &me,
                    rebalance.settle,
                    alive_for,
                    &mut scores,
                )
            };
            self.scores = scores;
            if let Some((group, target)) = plan
                && let Some(claim) = self.claims.get_mut(&group)
                && claim.handoff.is_none()
            {
                info!(%group, to = %target, "rebalancing: handing off");
                claim.handoff = Some(Handoff {
                    to: target,
                    started: now,
                });
                self.last_rebalance = Some(now);
                self.dirty = true;
                self.beat_now = true;
            }
        }
    }

    fn plan_drain_handoff(&mut self, now: Duration, group: IpAddr, out: &mut Vec<Output>) {
        let my_eligible = self.eligible_keys();
        let my_claims = self.my_claim_views();
        let me = self.config.node_id.clone();
        // Loads as the election left them, plus the hand-offs already planned, so one drain
        // spreads its groups instead of sending them all to the same best-scoring node.
        let mut loads = self.election.loads.clone();
        for (other, claim) in &self.claims {
            if *other != group
                && let Some(h) = &claim.handoff
            {
                *loads.entry(h.to.clone()).or_insert(0) += 1;
            }
        }
        let mut scores = std::mem::take(&mut self.scores);
        let successor = {
            let members = self.views(&my_eligible, &my_claims, now);
            self.election
                .successor(group, &members, &me, &loads, &mut scores)
        };
        self.scores = scores;
        match successor {
            Some(to) => {
                if let Some(claim) = self.claims.get_mut(&group) {
                    debug!(%group, %to, "drain: handing off");
                    claim.handoff = Some(Handoff { to, started: now });
                }
            }
            None => self.drop_claim(now, group, "drain: no other node can take it", out),
        }
        self.dirty = true;
        self.beat_now = true;
    }

    fn send_announcement(&mut self, group: IpAddr, first: bool, out: &mut Vec<Output>) {
        let Some(claim) = self.claims.get(&group) else {
            return;
        };
        let Some(facts) = self.interfaces.get(&claim.group.interface) else {
            return;
        };
        if !facts.carrier_up {
            return;
        }
        let mut first = first;
        for &vip in &claim.group.addresses {
            for frame in announcement_frames(facts.mac, vip) {
                match vip {
                    IpAddr::V4(_) => self.counters.gratuitous_arps_sent += 1,
                    IpAddr::V6(_) => self.counters.unsolicited_adverts_sent += 1,
                }
                out.push(Output::Send {
                    interface: facts.name.clone(),
                    frame,
                    kind: SentKind::Announce { group, first },
                });
                first = false;
            }
        }
    }

    fn send_beat(&mut self, now: Duration, out: &mut Vec<Output>) {
        self.beat_now = false;
        self.next_beat = now + self.config.timers.heartbeat_interval;
        self.seq += 1;
        let beat = Beat {
            segment: self.config.segment.clone(),
            node_id: self.config.node_id.clone(),
            incarnation: self.config.incarnation,
            seq: self.seq,
            listening: self.listening(now),
            draining: self.drain.is_some(),
            eligible: self.eligible_keys().into_iter().collect(),
            claims: self
                .claims
                .iter()
                .map(|(g, c)| BeatClaim {
                    group: *g,
                    epoch: c.epoch,
                    handoff_to: c.handoff.as_ref().map(|h| h.to.clone()),
                    provisional: c.provisional,
                })
                .collect(),
            echoes: self.tracker.echoes(now, MAX_ECHOES),
        };
        let payloads = match self.key.seal(&beat) {
            Ok(p) => p,
            Err(e) => {
                warn!(error = %e, "cannot build heartbeat");
                return;
            }
        };
        self.tracker.sent(self.seq, now);
        self.counters.heartbeats_sent += 1;
        for facts in self.interfaces.values() {
            if !facts.carrier_up || self.socket_errors.contains_key(&facts.name) {
                continue;
            }
            for payload in &payloads {
                let frame = heartbeat_frame(facts.mac, payload);
                self.counters.heartbeat_frames_sent += 1;
                self.counters.heartbeat_bytes_sent += frame.len() as u64;
                out.push(Output::Send {
                    interface: facts.name.clone(),
                    frame,
                    kind: SentKind::Heartbeat,
                });
            }
        }
    }

    /// Counts a failed send (the driver reports it).
    pub fn send_failed(&mut self) {
        self.counters.send_errors += 1;
    }

    /// The full status at `now`.
    pub fn status(&self, now: Duration) -> L2Status {
        let me = &self.config.node_id;
        let mut groups = BTreeMap::new();
        let keys: BTreeSet<IpAddr> = self
            .election
            .groups
            .keys()
            .chain(self.configured.keys())
            .copied()
            .collect();
        for key in keys {
            let outcome = self.election.groups.get(&key);
            let configured = self.configured.get(&key);
            let owner = outcome.and_then(|o| o.owner.as_ref());
            let history = self.history.get(&key);
            let mut not_owner = outcome.map(|o| o.not_owner.clone()).unwrap_or_default();
            if owner.is_none_or(|o| &o.node != me) {
                let mine = if let Err(why) = self.locally_eligible(key) {
                    NotOwnerReason::NotEligible(why)
                } else if self.listening(now) {
                    NotOwnerReason::Listening
                } else {
                    not_owner
                        .get(me)
                        .cloned()
                        .unwrap_or(NotOwnerReason::NoCandidate)
                };
                not_owner.insert(me.clone(), mine);
            }
            groups.insert(
                key,
                GroupStatus {
                    addresses: configured.map(|g| g.addresses.clone()).unwrap_or_default(),
                    interface: configured.map(|g| g.interface.clone()),
                    owner: owner.map(|o| o.node.clone()),
                    owned_here: self.claims.contains_key(&key),
                    epoch: owner.map_or(0, |o| o.epoch),
                    provisional: owner.is_some_and(|o| o.provisional),
                    since: owner
                        .and(history)
                        .filter(|h| h.owner.is_some())
                        .map(|h| self.wall(h.since)),
                    reason: owner.and(history).and_then(|h| h.reason.clone()),
                    handoff_to: owner.and_then(|o| o.handoff_to.clone()),
                    not_owner,
                },
            );
        }

        let owned_by = |node: &str| {
            self.election
                .groups
                .values()
                .filter(|o| o.owner.as_ref().is_some_and(|w| w.node == node))
                .count()
        };
        let mut members = BTreeMap::new();
        members.insert(
            me.clone(),
            MemberStatus {
                liveness: MemberLiveness::Local,
                incarnation: self.config.incarnation,
                mac: None,
                interface: None,
                alive_since: (!self.listening(now)).then(|| self.wall(self.listening_until)),
                last_heard: None,
                rtt: None,
                beats_received: 0,
                beats_lost: 0,
                deaths: 0,
                listening: self.listening(now),
                draining: self.drain.is_some(),
                eligible_groups: self.eligible_keys().len(),
                owned_groups: self.claims.len(),
            },
        );
        for peer in self.tracker.peers().values() {
            members.insert(
                peer.node_id.clone(),
                MemberStatus {
                    liveness: match peer.liveness {
                        Liveness::Alive => MemberLiveness::Alive,
                        Liveness::Joining { .. } => MemberLiveness::Joining,
                        Liveness::Dead { .. } => MemberLiveness::Dead,
                    },
                    incarnation: peer.incarnation,
                    mac: Some(peer.mac),
                    interface: Some(peer.interface.clone()),
                    alive_since: peer.alive_since.map(|t| self.wall(t)),
                    last_heard: Some(self.wall(peer.last_heard)),
                    rtt: peer.rtt,
                    beats_received: peer.beats_received,
                    beats_lost: peer.beats_lost,
                    deaths: peer.deaths,
                    listening: peer.listening,
                    draining: peer.draining,
                    eligible_groups: peer.eligible.len(),
                    owned_groups: owned_by(&peer.node_id),
                },
            );
        }

        let interfaces = self
            .interfaces
            .iter()
            .map(|(name, f)| {
                (
                    name.clone(),
                    InterfaceStatus {
                        ifindex: f.ifindex,
                        mac: f.mac,
                        carrier_up: f.carrier_up,
                        socket_error: self.socket_errors.get(name).cloned(),
                    },
                )
            })
            .collect();

        L2Status {
            node_id: me.clone(),
            incarnation: self.config.incarnation,
            phase: if let Some(drain) = self.drain {
                NodePhase::Draining {
                    deadline: self.wall(drain.deadline),
                }
            } else if self.listening(now) {
                NodePhase::Listening {
                    until: self.wall(self.listening_until),
                }
            } else {
                NodePhase::Active
            },
            groups,
            members,
            interfaces,
            counters: self.counters,
            owner_changes: self.owner_changes.clone(),
            detection_to_claim: self.detection_to_claim.clone(),
            claim_to_first_announce: self.claim_to_first_announce.clone(),
            last_beat_to_claim: self.last_beat_to_claim.clone(),
            requests_answered: self.requests_answered.clone(),
            conflicts: self.conflicts.values().cloned().collect(),
            warnings: self.warnings.clone(),
        }
    }
}

/// A group's winning claim, reduced to what history needs.
type OwnerEpoch = (String, u64);

/// Why a claim is dropped when another node's claim wins.
const TAKEN_OVER: &str = "another claim wins";

fn reason_after(cause: &LossCause) -> OwnerReason {
    match cause {
        LossCause::Dead { node, .. } => OwnerReason::TookOverFromDead {
            previous: node.clone(),
        },
        LossCause::Restarted(node) => OwnerReason::TookOverFromRestarted {
            previous: node.clone(),
        },
        LossCause::Ineligible(node) => OwnerReason::TookOverFromIneligible {
            previous: node.clone(),
        },
        LossCause::Released => OwnerReason::Elected,
    }
}
