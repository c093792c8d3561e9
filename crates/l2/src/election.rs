//! Who owns each group: a pure function of the members' liveness, eligibility and claims.
//!
//! Rules (every node evaluates them on the same inputs and reaches the same answer):
//!
//! 1. **Valid claims.** A claim is valid while its owner is alive or joining (beating) and
//!    announces itself eligible for the group. A dead or ineligible owner's claim is void.
//! 2. **Sticky.** A group with a valid claim keeps its owner. Nothing is taken back when a
//!    better-scoring node returns or joins; moves happen only by hand-off (rule 6).
//! 3. **Fencing.** Several valid claims on one group (a healed partition) resolve to a claim
//!    that is not provisional, then the highest epoch, then the highest rendezvous score, then
//!    the highest node id. The losers stop answering as soon as they see it. A claim is
//!    *provisional* when its owner made it while hearing fewer than half of the segment's
//!    members: a node cut off from the rest (a flapping link, the small side of a partition)
//!    still takes over what it believes orphaned, so nothing goes unanswered on its side, but
//!    when the segment heals those claims lose to the majority's, whatever their epochs. Without
//!    this, an isolated node's takeovers would carry higher epochs than the claims it "took
//!    over" and would win them on every heal.
//! 4. **Candidates** for a group nobody validly owns are members that are alive (not joining
//!    after a restart or a death), not draining, and eligible for it. Listening members (just
//!    started) are candidates: they claim when their listening period ends, so nodes that start
//!    together converge on one assignment instead of the first one to finish listening taking
//!    everything.
//! 5. **Bounded-load rendezvous hashing.** Unowned groups are placed in ascending key order,
//!    each on the candidate with the highest score H(group, node) among those with room, in
//!    three tiers: (a) an exact share — load below ⌊V/N⌋, or equal to it while fewer than
//!    V mod N candidates have reached ⌈V/N⌉; (b) load below ⌈V/N⌉; (c) any eligible
//!    candidate (availability comes before balance). V counts the groups that have an owner
//!    or an eligible candidate, N the candidates. The winner claims with the group's highest
//!    known epoch + 1.
//! 6. **Planned hand-off** ([`plan_rebalance`]): the most loaded candidate may hand one group
//!    to a settled candidate with at least two fewer groups; the new owner claims with a
//!    higher epoch and the old one stops when it sees that claim.
//!
//! Guarantees, with every candidate eligible for every group: placing groups from scratch
//! gives every node ⌊V/N⌋ or ⌈V/N⌉ groups; when a node dies only its groups move and no
//! survivor ends above ⌈V/(N−1)⌉ (its load was at most ⌈V/N⌉ before). With partial
//! eligibility: a node holds more than ⌈V/N⌉ groups only through groups whose every other
//! eligible candidate already holds ⌈V/N⌉ or more. Sticky claims from before a node joined can
//! exceed the bound until rebalancing evens them out, one group per interval. Both properties
//! are checked by property tests.
//!
//! This module does not track time, liveness or the network; `membership` and `node` do.

use std::collections::{BTreeMap, BTreeSet, HashMap};
use std::net::IpAddr;
use std::time::Duration;

use sha2::{Digest, Sha256};

use crate::membership::PeerClaim;

/// Prefix of every rendezvous hash; a new version changes every score, so all nodes of a segment
/// must run the same one.
pub const HRW_DOMAIN: &[u8] = b"ferrolb-l2-hrw-1";

/// The rendezvous (highest random weight) score of `node` for `group`: the first 8 octets of
/// SHA-256(domain ‖ family ‖ address ‖ node id).
pub fn hrw_score(group: IpAddr, node: &str) -> u64 {
    let mut h = Sha256::new();
    h.update(HRW_DOMAIN);
    match group {
        IpAddr::V4(a) => {
            h.update([4]);
            h.update(a.octets());
        }
        IpAddr::V6(a) => {
            h.update([6]);
            h.update(a.octets());
        }
    }
    h.update(node.as_bytes());
    let digest = h.finalize();
    let mut first = [0u8; 8];
    first.copy_from_slice(&digest[..8]);
    u64::from_be_bytes(first)
}

/// Remembers scores: an election evaluates every (group, candidate) pair.
#[derive(Clone, Debug, Default)]
pub struct HrwScores {
    cache: HashMap<(IpAddr, String), u64>,
}

impl HrwScores {
    const MAX_ENTRIES: usize = 1 << 20;

    pub fn score(&mut self, group: IpAddr, node: &str) -> u64 {
        if let Some(&s) = self.cache.get(&(group, node.to_string())) {
            return s;
        }
        if self.cache.len() >= Self::MAX_ENTRIES {
            self.cache.clear();
        }
        let s = hrw_score(group, node);
        self.cache.insert((group, node.to_string()), s);
        s
    }
}

/// A member's liveness as far as the election cares.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum MemberState {
    Alive,
    /// Beating again after a death or a restart, inside the rejoin hold-down.
    Joining,
    Dead,
}

/// One member as the election sees it (this node included).
#[derive(Clone, Copy, Debug)]
pub struct MemberView<'a> {
    pub state: MemberState,
    pub listening: bool,
    pub draining: bool,
    pub eligible: &'a BTreeSet<IpAddr>,
    pub claims: &'a BTreeMap<IpAddr, PeerClaim>,
}

/// The winning claim on a group.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Owner {
    pub node: String,
    pub epoch: u64,
    pub handoff_to: Option<String>,
    pub provisional: bool,
}

/// Why a member does not own a group.
#[derive(Clone, Debug, PartialEq, Eq, PartialOrd, Ord)]
pub enum NotOwnerReason {
    /// Another node holds a valid claim; claims are sticky.
    OwnedBy {
        owner: String,
    },
    /// Nobody owns it yet; the election placed it on another node.
    AssignedTo {
        node: String,
    },
    /// This member claimed it too and lost on epoch or score (after a partition healed).
    LostConflict {
        winner: String,
    },
    NotEligible(Ineligible),
    Dead,
    /// Inside the rejoin hold-down after a death or restart.
    Joining,
    Draining,
    /// Just started; listening for existing claims before claiming.
    Listening,
    /// Nobody owns it and no member can take it.
    NoCandidate,
}

/// Why a member is not eligible for a group.
#[derive(Clone, Debug, PartialEq, Eq, PartialOrd, Ord)]
pub enum Ineligible {
    /// The member's beats do not list the group.
    NotListed,
    /// This node's caller did not make it eligible.
    NotConfigured,
    /// The group's interface is not among this node's announce interfaces.
    InterfaceUnknown { interface: String },
    /// The group's interface has no carrier.
    CarrierDown { interface: String },
}

/// The election's verdict on one group.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct GroupOutcome {
    pub owner: Option<Owner>,
    /// Valid claims that lost to `owner` (node, epoch).
    pub superseded: Vec<(String, u64)>,
    /// With no owner: the candidate that should claim now.
    pub assigned: Option<String>,
    /// The highest epoch any member (dead ones included) claims the group with.
    pub max_epoch: u64,
    pub not_owner: BTreeMap<String, NotOwnerReason>,
}

/// The verdict on every group.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct Election {
    pub groups: BTreeMap<IpAddr, GroupOutcome>,
    /// Groups owned or assigned per candidate.
    pub loads: BTreeMap<String, usize>,
    pub candidates: BTreeSet<String>,
    /// Groups that have an owner or an eligible candidate (V).
    pub placeable: usize,
}

impl Election {
    /// ⌈V/N⌉, the balanced share; `None` without candidates.
    pub fn cap(&self) -> Option<usize> {
        let n = self.candidates.len();
        (n > 0).then(|| self.placeable.div_ceil(n))
    }

    /// Where group `group` would go if `exclude` gave it up now (drain), given `loads`
    /// (usually [`Election::loads`] plus hand-offs already planned): the same tiered rule as
    /// placement.
    pub fn successor(
        &self,
        group: IpAddr,
        members: &BTreeMap<String, MemberView<'_>>,
        exclude: &str,
        loads: &BTreeMap<String, usize>,
        scores: &mut HrwScores,
    ) -> Option<String> {
        let eligible: Vec<&str> = self
            .candidates
            .iter()
            .filter(|c| c.as_str() != exclude)
            .filter(|c| {
                members
                    .get(c.as_str())
                    .is_some_and(|m| m.eligible.contains(&group))
            })
            .map(String::as_str)
            .collect();
        let n = self.candidates.len() - usize::from(self.candidates.contains(exclude));
        pick(group, &eligible, loads, self.placeable, n, scores)
    }
}

/// Runs the election over `members` (which must include this node).
pub fn elect(members: &BTreeMap<String, MemberView<'_>>, scores: &mut HrwScores) -> Election {
    let candidates: BTreeSet<String> = members
        .iter()
        .filter(|(_, m)| m.state == MemberState::Alive && !m.draining)
        .map(|(n, _)| n.clone())
        .collect();

    let mut universe: BTreeSet<IpAddr> = BTreeSet::new();
    let mut max_epoch: BTreeMap<IpAddr, u64> = BTreeMap::new();
    let mut valid: BTreeMap<IpAddr, Vec<(&str, &PeerClaim)>> = BTreeMap::new();
    for (node, m) in members {
        if m.state != MemberState::Dead {
            universe.extend(m.eligible.iter().copied());
        }
        for (&group, claim) in m.claims {
            let e = max_epoch.entry(group).or_insert(0);
            *e = (*e).max(claim.epoch);
            if m.state != MemberState::Dead && m.eligible.contains(&group) {
                valid.entry(group).or_default().push((node.as_str(), claim));
                universe.insert(group);
            }
        }
    }

    let mut loads: BTreeMap<String, usize> = candidates.iter().map(|c| (c.clone(), 0)).collect();
    let mut groups: BTreeMap<IpAddr, GroupOutcome> = BTreeMap::new();
    for &group in &universe {
        let mut claims = valid.remove(&group).unwrap_or_default();
        claims.sort_by_key(|(node, claim)| {
            std::cmp::Reverse((
                !claim.provisional,
                claim.epoch,
                scores.score(group, node),
                node.to_string(),
            ))
        });
        let mut claims = claims.into_iter();
        let owner = claims.next().map(|(node, claim)| Owner {
            node: node.to_string(),
            epoch: claim.epoch,
            handoff_to: claim.handoff_to.clone(),
            provisional: claim.provisional,
        });
        if let Some(owner) = &owner
            && let Some(load) = loads.get_mut(&owner.node)
        {
            *load += 1;
        }
        groups.insert(
            group,
            GroupOutcome {
                owner,
                superseded: claims.map(|(n, c)| (n.to_string(), c.epoch)).collect(),
                assigned: None,
                max_epoch: max_epoch.get(&group).copied().unwrap_or(0),
                not_owner: BTreeMap::new(),
            },
        );
    }

    let eligible_candidates = |group: &IpAddr| -> Vec<&str> {
        candidates
            .iter()
            .filter(|c| {
                members
                    .get(c.as_str())
                    .is_some_and(|m| m.eligible.contains(group))
            })
            .map(String::as_str)
            .collect()
    };
    let placeable = groups
        .iter()
        .filter(|(g, o)| o.owner.is_some() || !eligible_candidates(g).is_empty())
        .count();

    for (&group, outcome) in groups.iter_mut() {
        if outcome.owner.is_some() {
            continue;
        }
        let eligible = eligible_candidates(&group);
        if let Some(node) = pick(
            group,
            &eligible,
            &loads,
            placeable,
            candidates.len(),
            scores,
        ) {
            if let Some(load) = loads.get_mut(&node) {
                *load += 1;
            }
            outcome.assigned = Some(node);
        }
    }

    for (&group, outcome) in groups.iter_mut() {
        for (node, m) in members {
            if outcome.owner.as_ref().is_some_and(|o| &o.node == node) {
                continue;
            }
            let reason = if m.state == MemberState::Dead {
                NotOwnerReason::Dead
            } else if m.state == MemberState::Joining {
                NotOwnerReason::Joining
            } else if !m.eligible.contains(&group) {
                NotOwnerReason::NotEligible(Ineligible::NotListed)
            } else if m.draining {
                NotOwnerReason::Draining
            } else if let (Some(owner), true) = (
                &outcome.owner,
                outcome.superseded.iter().any(|(n, _)| n == node),
            ) {
                NotOwnerReason::LostConflict {
                    winner: owner.node.clone(),
                }
            } else if let Some(owner) = &outcome.owner {
                NotOwnerReason::OwnedBy {
                    owner: owner.node.clone(),
                }
            } else if let Some(assigned) = &outcome.assigned {
                if assigned == node {
                    continue;
                }
                NotOwnerReason::AssignedTo {
                    node: assigned.clone(),
                }
            } else {
                NotOwnerReason::NoCandidate
            };
            outcome.not_owner.insert(node.clone(), reason);
        }
    }

    Election {
        groups,
        loads,
        candidates,
        placeable,
    }
}

/// The tiered bounded-load rendezvous pick (rule 5).
fn pick(
    group: IpAddr,
    eligible: &[&str],
    loads: &BTreeMap<String, usize>,
    placeable: usize,
    candidates: usize,
    scores: &mut HrwScores,
) -> Option<String> {
    if eligible.is_empty() || candidates == 0 {
        return None;
    }
    let floor = placeable / candidates;
    let rem = placeable % candidates;
    let ceil = placeable.div_ceil(candidates);
    let load = |n: &str| loads.get(n).copied().unwrap_or(0);
    let at_ceil = loads.values().filter(|&&l| l >= ceil).count();
    let exact = |n: &str| load(n) < floor || (rem > 0 && load(n) == floor && at_ceil < rem);
    let below_cap = |n: &str| load(n) < ceil;
    let any = |_: &str| true;
    let tiers: [&dyn Fn(&str) -> bool; 3] = [&exact, &below_cap, &any];
    for room in tiers {
        let best = eligible
            .iter()
            .filter(|n| room(n))
            .max_by_key(|n| (scores.score(group, n), n.to_string()));
        if let Some(best) = best {
            return Some(best.to_string());
        }
    }
    None
}

/// A planned move of one group to even out loads (rule 6), or `None` when loads are even
/// enough, a hand-off is already under way, placement has not converged, or `self_id` is not
/// the node that should act. `alive_for` says how long a member has been alive (settle time).
pub fn plan_rebalance(
    election: &Election,
    members: &BTreeMap<String, MemberView<'_>>,
    self_id: &str,
    settle: Duration,
    alive_for: impl Fn(&str) -> Option<Duration>,
    scores: &mut HrwScores,
) -> Option<(IpAddr, String)> {
    if !election.candidates.contains(self_id) {
        return None;
    }
    let busy = election
        .groups
        .values()
        .any(|o| o.assigned.is_some() || o.owner.as_ref().is_some_and(|w| w.handoff_to.is_some()));
    if busy {
        return None;
    }
    let max = election.loads.values().copied().max()?;
    // The most loaded candidate with the lowest id acts; the others wait for it.
    let actor = election
        .loads
        .iter()
        .find(|(_, l)| **l == max)
        .map(|(n, _)| n.as_str())?;
    if actor != self_id {
        return None;
    }
    let mine: Vec<IpAddr> = election
        .groups
        .iter()
        .filter(|(_, o)| o.owner.as_ref().is_some_and(|w| w.node == self_id))
        .map(|(&g, _)| g)
        .collect();
    let target = election
        .loads
        .iter()
        .filter(|(n, l)| n.as_str() != self_id && **l + 2 <= max)
        .filter(|(n, _)| alive_for(n).is_some_and(|d| d >= settle))
        .filter(|(n, _)| {
            members
                .get(n.as_str())
                .is_some_and(|m| !m.listening && mine.iter().any(|g| m.eligible.contains(g)))
        })
        .min_by_key(|(n, l)| (**l, n.to_string()))
        .map(|(n, _)| n.clone())?;
    let target_view = members.get(target.as_str())?;
    let group = mine
        .into_iter()
        .filter(|g| target_view.eligible.contains(g))
        .max_by_key(|g| (scores.score(*g, &target), *g))?;
    Some((group, target))
}
