//! Properties of the pure election over random segments: every placeable group gets one
//! owner; loads respect ⌈V/N⌉ (exactly balanced with uniform eligibility); a death moves only
//! the dead node's groups and keeps survivors within ⌈V/(N−1)⌉; with partial eligibility a node
//! exceeds ⌈V/N⌉ only with groups nobody else had room for; conflicts resolve by provisional
//! flag, epoch, then score.

#![allow(clippy::unwrap_used, clippy::expect_used)]

use std::collections::{BTreeMap, BTreeSet};
use std::net::{IpAddr, Ipv4Addr};

use ferrolb_l2::election::{
    Election, HrwScores, MemberState, MemberView, elect, hrw_score, plan_rebalance,
};
use ferrolb_l2::membership::PeerClaim;
use proptest::prelude::*;

fn group(i: usize) -> IpAddr {
    IpAddr::V4(Ipv4Addr::from(0xc633_6400 + i as u32))
}

struct Segment {
    state: BTreeMap<String, MemberState>,
    eligible: BTreeMap<String, BTreeSet<IpAddr>>,
    claims: BTreeMap<String, BTreeMap<IpAddr, PeerClaim>>,
}

impl Segment {
    fn new(nodes: usize, groups: usize, eligible: impl Fn(usize, usize) -> bool) -> Segment {
        let names: Vec<String> = (0..nodes).map(|n| format!("node-{n}")).collect();
        Segment {
            state: names
                .iter()
                .map(|n| (n.clone(), MemberState::Alive))
                .collect(),
            eligible: names
                .iter()
                .enumerate()
                .map(|(n, name)| {
                    (
                        name.clone(),
                        (0..groups).filter(|g| eligible(n, *g)).map(group).collect(),
                    )
                })
                .collect(),
            claims: names.iter().map(|n| (n.clone(), BTreeMap::new())).collect(),
        }
    }

    fn elect(&self) -> Election {
        let members: BTreeMap<String, MemberView<'_>> = self
            .state
            .iter()
            .map(|(n, s)| {
                (
                    n.clone(),
                    MemberView {
                        state: *s,
                        listening: false,
                        draining: false,
                        eligible: &self.eligible[n],
                        claims: &self.claims[n],
                    },
                )
            })
            .collect();
        elect(&members, &mut HrwScores::default())
    }

    /// Every assigned node claims (as the nodes would within a beat), until stable.
    fn converge(&mut self) -> Election {
        loop {
            let e = self.elect();
            let mut changed = false;
            for (g, outcome) in &e.groups {
                if let Some(node) = &outcome.assigned {
                    let epoch = outcome.max_epoch + 1;
                    self.claims.get_mut(node).unwrap().insert(
                        *g,
                        PeerClaim {
                            epoch,
                            handoff_to: None,
                            provisional: false,
                        },
                    );
                    changed = true;
                }
            }
            if !changed {
                return e;
            }
        }
    }

    fn loads(&self, e: &Election) -> BTreeMap<String, usize> {
        let mut loads: BTreeMap<String, usize> = self
            .state
            .iter()
            .filter(|(_, s)| **s == MemberState::Alive)
            .map(|(n, _)| (n.clone(), 0))
            .collect();
        for o in e.groups.values() {
            if let Some(owner) = &o.owner {
                *loads.entry(owner.node.clone()).or_insert(0) += 1;
            }
        }
        loads
    }
}

proptest! {
    #[test]
    fn uniform_eligibility_gives_every_node_floor_or_ceil_of_v_over_n(nodes in 1usize..12, groups in 0usize..80) {
        let mut seg = Segment::new(nodes, groups, |_, _| true);
        let e = seg.converge();
        prop_assert_eq!(e.groups.len(), groups);
        prop_assert!(e.groups.values().all(|o| o.owner.is_some() && o.superseded.is_empty()));
        let loads = seg.loads(&e);
        let (floor, ceil) = (groups / nodes, groups.div_ceil(nodes));
        for (n, l) in &loads {
            prop_assert!(*l == floor || *l == ceil, "{} has {} (V={}, N={})", n, l, groups, nodes);
        }
    }

    #[test]
    fn a_death_moves_only_the_dead_nodes_groups_and_keeps_the_bound(nodes in 2usize..10, groups in 1usize..60, victim in any::<prop::sample::Index>()) {
        let mut seg = Segment::new(nodes, groups, |_, _| true);
        let before = seg.converge();
        let victim = format!("node-{}", victim.index(nodes));
        seg.state.insert(victim.clone(), MemberState::Dead);
        let after = seg.converge();
        for (g, o) in &before.groups {
            let old = &o.owner.as_ref().unwrap().node;
            let new = &after.groups[g].owner.as_ref().unwrap().node;
            if *old != victim {
                prop_assert_eq!(old, new, "{} moved without cause", g);
            } else {
                prop_assert_ne!(new, &victim);
                prop_assert!(after.groups[g].owner.as_ref().unwrap().epoch > o.owner.as_ref().unwrap().epoch);
            }
        }
        let cap = groups.div_ceil(nodes - 1);
        for (n, l) in seg.loads(&after) {
            prop_assert!(l <= cap, "{} has {} > ⌈{}/{}⌉", n, l, groups, nodes - 1);
        }
    }

    /// Partial eligibility: a node above ⌈V/N⌉ holds at most ⌈V/N⌉ groups that some other
    /// eligible node with room below ⌈V/N⌉ could have taken.
    #[test]
    fn overload_only_comes_from_groups_nobody_else_had_room_for(
        nodes in 1usize..8, groups in 1usize..50,
        matrix in proptest::collection::vec(any::<bool>(), 8 * 50),
    ) {
        let mut seg = Segment::new(nodes, groups, |n, g| matrix[n * 50 + g]);
        let e = seg.converge();
        let loads = seg.loads(&e);
        for (g, o) in &e.groups {
            let eligible: Vec<&String> = seg.eligible.iter().filter(|(_, s)| s.contains(g)).map(|(n, _)| n).collect();
            prop_assert_eq!(o.owner.is_some(), !eligible.is_empty());
            if let Some(owner) = &o.owner {
                prop_assert!(seg.eligible[&owner.node].contains(g));
            }
        }
        let cap = e.cap().unwrap_or(0);
        for (n, l) in &loads {
            if *l > cap {
                let avoidable = e.groups.iter()
                    .filter(|(_, o)| o.owner.as_ref().is_some_and(|w| &w.node == n))
                    .filter(|(g, _)| seg.eligible.iter().any(|(m, s)| m != n && s.contains(*g) && loads[m] < cap))
                    .count();
                prop_assert!(avoidable <= cap, "{} has {} (cap {}), {} avoidable", n, l, cap, avoidable);
            }
        }
    }

    #[test]
    fn conflicting_claims_resolve_to_one_owner_by_flag_epoch_then_score(
        e1 in 1u64..5, e2 in 1u64..5, p1 in any::<bool>(), p2 in any::<bool>(),
    ) {
        let mut seg = Segment::new(2, 1, |_, _| true);
        let g = group(0);
        seg.claims.get_mut("node-0").unwrap().insert(g, PeerClaim { epoch: e1, handoff_to: None, provisional: p1 });
        seg.claims.get_mut("node-1").unwrap().insert(g, PeerClaim { epoch: e2, handoff_to: None, provisional: p2 });
        let e = seg.elect();
        let o = &e.groups[&g];
        let winner = &o.owner.as_ref().unwrap().node;
        let key = |n: &str, e: u64, p: bool| (!p, e, hrw_score(g, n));
        let expected = if key("node-0", e1, p1) > key("node-1", e2, p2) { "node-0" } else { "node-1" };
        prop_assert_eq!(winner.as_str(), expected);
        prop_assert_eq!(o.superseded.len(), 1);
        let loser = if expected == "node-0" { "node-1" } else { "node-0" };
        prop_assert_eq!(&o.not_owner[loser], &ferrolb_l2::NotOwnerReason::LostConflict { winner: expected.into() });
    }
}

#[test]
fn twelve_groups_on_three_nodes_are_four_four_four_then_six_six() {
    let mut seg = Segment::new(3, 12, |_, _| true);
    let e = seg.converge();
    assert_eq!(
        seg.loads(&e).values().copied().collect::<Vec<_>>(),
        [4, 4, 4]
    );
    seg.state.insert("node-2".into(), MemberState::Dead);
    let e = seg.converge();
    assert_eq!(seg.loads(&e).values().copied().collect::<Vec<_>>(), [6, 6]);
}

#[test]
fn a_joining_node_is_not_a_candidate_but_its_claims_stay_valid() {
    let mut seg = Segment::new(2, 2, |_, _| true);
    seg.converge();
    seg.state.insert("node-0".into(), MemberState::Joining);
    let e = seg.elect();
    assert!(e.groups.values().all(|o| o.owner.is_some()));
    assert!(!e.candidates.contains("node-0"));
}

#[test]
fn rebalance_is_planned_by_the_most_loaded_node_towards_a_settled_light_one() {
    let mut seg = Segment::new(2, 8, |_, _| true);
    seg.state.insert("node-1".into(), MemberState::Dead);
    seg.converge();
    seg.state.insert("node-1".into(), MemberState::Alive);
    let e = seg.elect();
    assert_eq!(seg.loads(&e)["node-0"], 8);
    let members: BTreeMap<String, MemberView<'_>> = seg
        .state
        .iter()
        .map(|(n, s)| {
            (
                n.clone(),
                MemberView {
                    state: *s,
                    listening: false,
                    draining: false,
                    eligible: &seg.eligible[n],
                    claims: &seg.claims[n],
                },
            )
        })
        .collect();
    let settle = std::time::Duration::from_secs(60);
    let young = |_: &str| Some(std::time::Duration::from_secs(5));
    let old = |_: &str| Some(std::time::Duration::from_secs(100));
    let mut scores = HrwScores::default();
    assert_eq!(
        plan_rebalance(&e, &members, "node-0", settle, young, &mut scores),
        None
    );
    assert_eq!(
        plan_rebalance(&e, &members, "node-1", settle, old, &mut scores),
        None
    );
    let (g, to) = plan_rebalance(&e, &members, "node-0", settle, old, &mut scores).unwrap();
    assert_eq!(to, "node-1");
    assert!(seg.claims["node-0"].contains_key(&g));
}
