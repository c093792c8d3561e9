//! Who is alive on the segment, from authenticated heartbeats: a pure state machine with time
//! as an input.
//!
//! [`HeartbeatTracker`] owns each peer's liveness ([`Liveness`]), replay protection
//! (incarnation, then sequence number, then part index must move forward), reassembly of beats
//! split into parts, loss counting from sequence gaps, and round-trip times from echoes. It does
//! not verify MACs (the codec does, before anything reaches here) and does not decide
//! ownership (that is `election`).
//!
//! Liveness rules, with `dead_after` = interval × misses:
//! - a peer heard for the first time is [`Liveness::Alive`] at once, so nodes that start
//!   together see each other as candidates and converge on one deterministic assignment;
//! - a peer silent for longer than `dead_after` is [`Liveness::Dead`];
//! - a dead peer that beats again, or a peer that restarted (higher incarnation), is
//!   [`Liveness::Joining`] until it has beaten without a gap for `rejoin_hold`: hysteresis, so
//!   a flapping link moves its VIPs once and not at every flap;
//! - a peer dead for `forget_after` is forgotten.

use std::collections::{BTreeMap, BTreeSet, VecDeque};
use std::net::IpAddr;
use std::time::Duration;

use crate::config::Timers;
use crate::wire::{Beat, HeartbeatPart, MacAddr};

/// A peer's liveness as this node sees it.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Liveness {
    Alive,
    /// Beating again after being dead or restarting; alive once `until` passes without a gap.
    Joining {
        until: Duration,
    },
    Dead {
        since: Duration,
    },
}

/// A claim as a peer last announced it.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct PeerClaim {
    pub epoch: u64,
    pub handoff_to: Option<String>,
    pub provisional: bool,
}

/// One peer's state.
#[derive(Clone, Debug)]
pub struct Peer {
    pub node_id: String,
    pub incarnation: u64,
    pub liveness: Liveness,
    /// When the peer last became alive (the base of the rebalance settle time).
    pub alive_since: Option<Duration>,
    pub last_heard: Duration,
    /// The source MAC of its last beat.
    pub mac: MacAddr,
    pub interface: String,
    pub listening: bool,
    pub draining: bool,
    pub eligible: BTreeSet<IpAddr>,
    pub claims: BTreeMap<IpAddr, PeerClaim>,
    pub beats_received: u64,
    /// Beats never heard, from gaps in the sequence numbers.
    pub beats_lost: u64,
    /// Times this peer went from alive (or joining) to dead.
    pub deaths: u64,
    pub rtt: Option<Duration>,
    last_seq: u64,
    /// Parts of the beat `last_seq` received so far, and what they carried.
    assembly: Option<Assembly>,
}

#[derive(Clone, Debug)]
struct Assembly {
    count: u8,
    received: BTreeSet<u8>,
    eligible: Vec<IpAddr>,
    claims: Vec<crate::wire::BeatClaim>,
}

/// Why an authenticated part was still not accepted.
#[derive(Clone, Copy, Debug, PartialEq, Eq, thiserror::Error)]
pub enum Rejected {
    #[error("incarnation {got} is older than the current {current}")]
    OldIncarnation { got: u64, current: u64 },
    #[error("sequence {got} is not after {last}")]
    OldSequence { got: u64, last: u64 },
    #[error("part {index} of beat {seq} was already received")]
    DuplicatePart { seq: u64, index: u8 },
    #[error("part count {got} differs from {expected} for the same beat")]
    PartCount { got: u8, expected: u8 },
}

/// What an accepted part changed.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct Accepted {
    /// A whole beat is now known: eligibility, claims or flags may have changed.
    pub beat_complete: bool,
    /// The completed beat differs from the peer's previous one.
    pub changed: bool,
    /// Liveness changed (a new peer, a return from the dead, a restart).
    pub liveness_changed: bool,
    /// An RTT sample was taken.
    pub rtt: Option<Duration>,
}

/// Liveness and beat state of every peer.
#[derive(Clone, Debug)]
pub struct HeartbeatTracker {
    timers: Timers,
    peers: BTreeMap<String, Peer>,
    /// Our own recent beats: (seq, sent at), for RTT.
    sent: VecDeque<(u64, Duration)>,
    echo_cursor: usize,
}

const SENT_LOG: usize = 256;

impl HeartbeatTracker {
    pub fn new(timers: Timers) -> HeartbeatTracker {
        HeartbeatTracker {
            timers,
            peers: BTreeMap::new(),
            sent: VecDeque::new(),
            echo_cursor: 0,
        }
    }

    pub fn peers(&self) -> &BTreeMap<String, Peer> {
        &self.peers
    }

    pub fn peer(&self, node_id: &str) -> Option<&Peer> {
        self.peers.get(node_id)
    }

    /// Whether any peer has ever been heard (and not yet forgotten).
    pub fn heard_anyone(&self) -> bool {
        !self.peers.is_empty()
    }

    /// Takes one authenticated part of a peer's beat, received at `now` on `interface` from
    /// `mac`.
    pub fn receive(
        &mut self,
        now: Duration,
        interface: &str,
        mac: MacAddr,
        part: HeartbeatPart,
        own_id: &str,
    ) -> Result<Accepted, Rejected> {
        let HeartbeatPart { index, count, beat } = part;
        if beat.seq == 0 {
            // Sequence numbers start at 1; 0 would let a beat repeat forever.
            return Err(Rejected::OldSequence { got: 0, last: 0 });
        }
        let rejoin_hold = self.timers.rejoin_hold;
        let mut accepted = Accepted::default();
        let peer = match self.peers.get_mut(&beat.node_id) {
            None => {
                accepted.liveness_changed = true;
                self.peers
                    .entry(beat.node_id.clone())
                    .or_insert_with(|| Peer {
                        node_id: beat.node_id.clone(),
                        incarnation: beat.incarnation,
                        liveness: Liveness::Alive,
                        alive_since: Some(now),
                        last_heard: now,
                        mac,
                        interface: interface.to_string(),
                        listening: beat.listening,
                        draining: beat.draining,
                        eligible: BTreeSet::new(),
                        claims: BTreeMap::new(),
                        beats_received: 0,
                        beats_lost: 0,
                        deaths: 0,
                        rtt: None,
                        last_seq: 0,
                        assembly: None,
                    })
            }
            Some(peer) => {
                if beat.incarnation < peer.incarnation {
                    return Err(Rejected::OldIncarnation {
                        got: beat.incarnation,
                        current: peer.incarnation,
                    });
                }
                if beat.incarnation > peer.incarnation {
                    // A restart: whatever the old run claimed, it no longer answers for.
                    peer.incarnation = beat.incarnation;
                    peer.last_seq = 0;
                    peer.assembly = None;
                    peer.claims.clear();
                    peer.eligible.clear();
                    peer.liveness = Liveness::Joining {
                        until: now + rejoin_hold,
                    };
                    peer.alive_since = None;
                    accepted.liveness_changed = true;
                } else if beat.seq < peer.last_seq {
                    return Err(Rejected::OldSequence {
                        got: beat.seq,
                        last: peer.last_seq,
                    });
                }
                peer
            }
        };

        if beat.seq == peer.last_seq && peer.assembly.is_some() {
            let assembly = peer.assembly.as_mut().ok_or(Rejected::DuplicatePart {
                seq: beat.seq,
                index,
            })?;
            if assembly.count != count {
                return Err(Rejected::PartCount {
                    got: count,
                    expected: assembly.count,
                });
            }
            if !assembly.received.insert(index) {
                return Err(Rejected::DuplicatePart {
                    seq: beat.seq,
                    index,
                });
            }
        } else if beat.seq == peer.last_seq && beat.seq != 0 {
            // The beat was complete already: this part is a copy.
            return Err(Rejected::DuplicatePart {
                seq: beat.seq,
                index,
            });
        } else {
            if peer.last_seq != 0 && beat.seq > peer.last_seq + 1 {
                peer.beats_lost += beat.seq - peer.last_seq - 1;
            }
            peer.last_seq = beat.seq;
            peer.beats_received += 1;
            peer.assembly = Some(Assembly {
                count,
                received: BTreeSet::from([index]),
                eligible: Vec::new(),
                claims: Vec::new(),
            });
        }

        peer.last_heard = now;
        peer.mac = mac;
        peer.interface = interface.to_string();
        if let Liveness::Dead { .. } = peer.liveness {
            peer.liveness = Liveness::Joining {
                until: now + rejoin_hold,
            };
            accepted.liveness_changed = true;
        }
        if index == 0 {
            accepted.rtt = rtt_from_echoes(&beat, own_id, &self.sent, now);
            if let Some(rtt) = accepted.rtt {
                peer.rtt = Some(rtt);
            }
        }

        let Beat {
            listening,
            draining,
            eligible,
            claims,
            ..
        } = beat;
        let complete = match peer.assembly.as_mut() {
            Some(assembly) => {
                assembly.eligible.extend(eligible);
                assembly.claims.extend(claims);
                usize::from(assembly.count) == assembly.received.len()
            }
            None => false,
        };
        if complete && let Some(assembly) = peer.assembly.take() {
            let eligible: BTreeSet<IpAddr> = assembly.eligible.into_iter().collect();
            let claims: BTreeMap<IpAddr, PeerClaim> = assembly
                .claims
                .into_iter()
                .map(|c| {
                    (
                        c.group,
                        PeerClaim {
                            epoch: c.epoch,
                            handoff_to: c.handoff_to,
                            provisional: c.provisional,
                        },
                    )
                })
                .collect();
            accepted.beat_complete = true;
            accepted.changed = peer.listening != listening
                || peer.draining != draining
                || peer.eligible != eligible
                || peer.claims != claims;
            peer.listening = listening;
            peer.draining = draining;
            peer.eligible = eligible;
            peer.claims = claims;
        }
        Ok(accepted)
    }

    /// Applies the passage of time; returns whether any peer's liveness changed.
    pub fn expire(&mut self, now: Duration) -> bool {
        let dead_after = self.timers.dead_after();
        let forget_after = self.timers.forget_after;
        let mut changed = false;
        self.peers.retain(|_, peer| match peer.liveness {
            Liveness::Dead { since } => now.saturating_sub(since) < forget_after,
            _ => true,
        });
        for peer in self.peers.values_mut() {
            match peer.liveness {
                Liveness::Alive | Liveness::Joining { .. }
                    if now.saturating_sub(peer.last_heard) > dead_after =>
                {
                    peer.liveness = Liveness::Dead { since: now };
                    peer.alive_since = None;
                    peer.deaths += 1;
                    peer.assembly = None;
                    changed = true;
                }
                Liveness::Joining { until } if now >= until => {
                    peer.liveness = Liveness::Alive;
                    peer.alive_since = Some(now);
                    changed = true;
                }
                _ => {}
            }
        }
        changed
    }

    /// The next time [`HeartbeatTracker::expire`] could change something.
    pub fn next_deadline(&self) -> Option<Duration> {
        let dead_after = self.timers.dead_after();
        self.peers
            .values()
            .map(|peer| match peer.liveness {
                // Strictly after the dead interval, so one tick past it.
                Liveness::Alive => peer.last_heard + dead_after + Duration::from_micros(1),
                Liveness::Joining { until } => {
                    until.min(peer.last_heard + dead_after + Duration::from_micros(1))
                }
                Liveness::Dead { since } => since + self.timers.forget_after,
            })
            .min()
    }

    /// Records that we sent beat `seq` at `now`.
    pub fn sent(&mut self, seq: u64, now: Duration) {
        self.sent.push_back((seq, now));
        while self.sent.len() > SENT_LOG {
            self.sent.pop_front();
        }
    }

    /// Echoes for our next beat: up to `max` live peers, rotating through them so that each
    /// gets an RTT sample every few beats on a large segment.
    pub fn echoes(&mut self, now: Duration, max: usize) -> Vec<crate::wire::BeatEcho> {
        let live: Vec<&Peer> = self
            .peers
            .values()
            .filter(|p| !matches!(p.liveness, Liveness::Dead { .. }) && p.last_seq != 0)
            .collect();
        if live.is_empty() {
            return Vec::new();
        }
        let take = live.len().min(max);
        let start = self.echo_cursor % live.len();
        let echoes = (0..take)
            .map(|i| {
                let p = live[(start + i) % live.len()];
                let held = now.saturating_sub(p.last_heard);
                crate::wire::BeatEcho {
                    node_id: p.node_id.clone(),
                    seq: p.last_seq,
                    held_us: u32::try_from(held.as_micros()).unwrap_or(u32::MAX),
                }
            })
            .collect();
        self.echo_cursor = (start + take) % live.len().max(1);
        echoes
    }
}

fn rtt_from_echoes(
    beat: &Beat,
    own_id: &str,
    sent: &VecDeque<(u64, Duration)>,
    now: Duration,
) -> Option<Duration> {
    let echo = beat.echoes.iter().find(|e| e.node_id == own_id)?;
    let &(_, sent_at) = sent.iter().find(|(seq, _)| *seq == echo.seq)?;
    let held = Duration::from_micros(u64::from(echo.held_us));
    Some(now.saturating_sub(sent_at).saturating_sub(held))
}
