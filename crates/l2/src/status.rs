//! The announcer's status and metrics data: per group who owns it, since when, why, and why
//! every other node does not; per member liveness, RTT and losses; counters; duration
//! histograms; conflicting responders; preflight warnings.
//!
//! Plain data for the caller to show or turn into Prometheus series; nothing here is computed
//! from the network.

use std::collections::{BTreeMap, BTreeSet, VecDeque};
use std::net::IpAddr;
use std::time::{Duration, SystemTime};

use crate::election::NotOwnerReason;
use crate::preflight::PreflightWarning;
use crate::responder::ConflictEvidence;
use crate::wire::MacAddr;

/// Why the current owner of a group got it (as observed by this node).
#[derive(Clone, Debug, PartialEq, Eq, PartialOrd, Ord)]
pub enum OwnerReason {
    /// Placed by the election with no previous owner (cold start, new group).
    Elected,
    /// Already owned when this node first saw the group; kept because claims are sticky.
    Sticky,
    TookOverFromDead {
        previous: String,
    },
    /// The previous owner restarted (its claims died with the old run).
    TookOverFromRestarted {
        previous: String,
    },
    /// The previous owner lost eligibility (carrier down, no longer configured).
    TookOverFromIneligible {
        previous: String,
    },
    /// Planned rebalance.
    HandOff {
        from: String,
    },
    /// The previous owner drained.
    Drained {
        from: String,
    },
    /// Several owners after a partition; this one had the higher epoch or score.
    ConflictResolved {
        loser: String,
    },
}

impl OwnerReason {
    /// A label without the node name, for metrics.
    pub fn kind(&self) -> &'static str {
        match self {
            OwnerReason::Elected => "elected",
            OwnerReason::Sticky => "sticky",
            OwnerReason::TookOverFromDead { .. } => "took_over_from_dead",
            OwnerReason::TookOverFromRestarted { .. } => "took_over_from_restarted",
            OwnerReason::TookOverFromIneligible { .. } => "took_over_from_ineligible",
            OwnerReason::HandOff { .. } => "hand_off",
            OwnerReason::Drained { .. } => "drained",
            OwnerReason::ConflictResolved { .. } => "conflict_resolved",
        }
    }
}

/// Where the node is in its life.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum NodePhase {
    /// Just started: learning claims before making any.
    Listening {
        until: SystemTime,
    },
    Active,
    /// Handing everything off.
    Draining {
        deadline: SystemTime,
    },
}

/// One group, as this node sees it.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct GroupStatus {
    /// The group's addresses, when this node has the group configured.
    pub addresses: BTreeSet<IpAddr>,
    /// The local interface it is answered on here, when configured.
    pub interface: Option<String>,
    pub owner: Option<String>,
    pub owned_here: bool,
    /// The epoch of the winning claim (0 when unowned).
    pub epoch: u64,
    /// The winning claim was made without a majority of the segment (see `election`).
    pub provisional: bool,
    /// When the current owner took it, as observed here.
    pub since: Option<SystemTime>,
    pub reason: Option<OwnerReason>,
    /// A planned hand-off or drain under way, to this node.
    pub handoff_to: Option<String>,
    /// For every member other than the owner (this node included), why it is not the owner.
    pub not_owner: BTreeMap<String, NotOwnerReason>,
}

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum MemberLiveness {
    /// This node.
    Local,
    Alive,
    Joining,
    Dead,
}

/// One member of the segment.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct MemberStatus {
    pub liveness: MemberLiveness,
    pub incarnation: u64,
    pub mac: Option<MacAddr>,
    /// The local interface its beats arrive on.
    pub interface: Option<String>,
    pub alive_since: Option<SystemTime>,
    pub last_heard: Option<SystemTime>,
    pub rtt: Option<Duration>,
    pub beats_received: u64,
    pub beats_lost: u64,
    /// Times it was declared dead.
    pub deaths: u64,
    pub listening: bool,
    pub draining: bool,
    pub eligible_groups: usize,
    pub owned_groups: usize,
}

/// An announce interface.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct InterfaceStatus {
    pub ifindex: u32,
    pub mac: MacAddr,
    pub carrier_up: bool,
    /// Why the socket is not open, when it is not.
    pub socket_error: Option<String>,
}

/// Counters since start.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct Counters {
    pub heartbeats_sent: u64,
    pub heartbeat_frames_sent: u64,
    pub heartbeat_bytes_sent: u64,
    pub heartbeat_frames_received: u64,
    pub heartbeat_bytes_received: u64,
    /// Wrong key or altered frame.
    pub heartbeats_bad_mac: u64,
    /// Old incarnation, old sequence or duplicate part.
    pub heartbeats_replayed: u64,
    /// Not decodable (after a good MAC: a bug or a version skew).
    pub heartbeats_malformed: u64,
    pub heartbeats_other_segment: u64,
    /// Beats with our node id but another incarnation: two nodes share a name.
    pub heartbeats_duplicate_node_id: u64,
    /// ARP frames that passed the filter (requests, replies, gratuitous).
    pub arp_frames_received: u64,
    pub arp_replies_sent: u64,
    /// Neighbor Solicitations and Advertisements that passed the filter.
    pub ndp_frames_received: u64,
    pub neighbor_adverts_sent: u64,
    pub gratuitous_arps_sent: u64,
    pub unsolicited_adverts_sent: u64,
    /// Requests for a VIP this node knows but does not own (the owner answers).
    pub requests_not_owned: u64,
    /// ARP/NDP frames that failed to decode.
    pub frames_malformed: u64,
    pub send_errors: u64,
}

/// Recent samples and Prometheus-style buckets of a duration.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct DurationHistogram {
    /// Upper bounds of the buckets (the last bucket is +Inf).
    pub bounds: Vec<Duration>,
    /// Non-cumulative count per bucket; one more than `bounds`.
    pub counts: Vec<u64>,
    pub sum: Duration,
    pub count: u64,
    /// The most recent samples, oldest first.
    pub recent: VecDeque<Duration>,
}

impl DurationHistogram {
    pub const RECENT: usize = 32;

    pub fn new() -> DurationHistogram {
        let bounds: Vec<Duration> = [1, 5, 10, 25, 50, 100, 250, 500, 1000, 2500, 5000, 10000]
            .into_iter()
            .map(Duration::from_millis)
            .collect();
        let counts = vec![0; bounds.len() + 1];
        DurationHistogram {
            bounds,
            counts,
            sum: Duration::ZERO,
            count: 0,
            recent: VecDeque::new(),
        }
    }

    pub fn record(&mut self, sample: Duration) {
        let bucket = self
            .bounds
            .iter()
            .position(|b| sample <= *b)
            .unwrap_or(self.bounds.len());
        self.counts[bucket] += 1;
        self.sum += sample;
        self.count += 1;
        self.recent.push_back(sample);
        while self.recent.len() > Self::RECENT {
            self.recent.pop_front();
        }
    }
}

impl Default for DurationHistogram {
    fn default() -> Self {
        DurationHistogram::new()
    }
}

/// Another MAC answering for a VIP this node owns.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct ConflictRecord {
    pub vip: IpAddr,
    pub mac: MacAddr,
    pub interface: String,
    pub count: u64,
    pub first_seen: SystemTime,
    pub last_seen: SystemTime,
    pub last_evidence: ConflictEvidence,
    /// The segment member that uses this MAC, if it is one.
    pub peer: Option<String>,
}

/// Everything the announcer reports.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct L2Status {
    pub node_id: String,
    pub incarnation: u64,
    pub phase: NodePhase,
    pub groups: BTreeMap<IpAddr, GroupStatus>,
    pub members: BTreeMap<String, MemberStatus>,
    pub interfaces: BTreeMap<String, InterfaceStatus>,
    pub counters: Counters,
    /// Owner changes observed, by [`OwnerReason::kind`].
    pub owner_changes: BTreeMap<&'static str, u64>,
    /// From noticing that a group needs this node (owner gone, hand-off offered) to claiming.
    pub detection_to_claim: DurationHistogram,
    /// From claiming to the first announcement leaving the socket.
    pub claim_to_first_announce: DurationHistogram,
    /// From the previous (dead) owner's last beat heard here to this node's claim: the
    /// takeover gap as this node can measure it.
    pub last_beat_to_claim: DurationHistogram,
    /// ARP replies and NAs sent, per VIP.
    pub requests_answered: BTreeMap<IpAddr, u64>,
    pub conflicts: Vec<ConflictRecord>,
    pub warnings: Vec<PreflightWarning>,
}

impl L2Status {
    /// The groups this node owns.
    pub fn owned(&self) -> BTreeSet<IpAddr> {
        self.groups
            .iter()
            .filter(|(_, g)| g.owned_here)
            .map(|(k, _)| *k)
            .collect()
    }
}
