//! Whole segments of `L2Node`s on a virtual clock: starts, deaths, restarts, flapping links,
//! partitions, hand-offs, drains, wrong keys and replays.

#![allow(clippy::unwrap_used, clippy::expect_used)]

mod common;

use std::collections::BTreeMap;
use std::net::IpAddr;
use std::time::Duration;

use common::sim::{Sim, ms, secs, v4_groups};
use ferrolb_l2::status::{NodePhase, OwnerReason};

/// Every group has exactly one owner, and every running node's status names that owner.
fn assert_single_owners(sim: &Sim, groups: usize) {
    for g in v4_groups(groups) {
        let owners = sim.owners(g.key);
        assert_eq!(
            owners.len(),
            1,
            "group {} owners {owners:?} at {:?}",
            g.key,
            sim.now
        );
        for (i, n) in sim.nodes.iter().enumerate() {
            // A node without carrier hears nobody; its view is stale by design.
            if n.node.is_some() && n.carrier {
                let status = sim.status(i);
                assert_eq!(
                    status.groups[&g.key].owner.as_deref(),
                    Some(owners[0].as_str()),
                    "{}'s view of {}",
                    n.name,
                    g.key
                );
            }
        }
    }
}

fn three_nodes(groups: usize) -> Sim {
    let mut sim = Sim::new();
    for name in ["node-a", "node-b", "node-c"] {
        sim.add(name, v4_groups(groups));
    }
    sim
}

fn owner_of(sim: &Sim, group: IpAddr) -> usize {
    let owners = sim.owners(group);
    assert_eq!(owners.len(), 1, "{group}: {owners:?}");
    sim.index(&owners[0])
}

#[test]
fn simultaneous_starts_spread_twelve_groups_four_four_four() {
    let mut sim = three_nodes(12);
    sim.start(0);
    sim.run_for(ms(3));
    sim.start(1);
    sim.run_for(ms(4));
    sim.start(2);
    sim.run_for(secs(2));
    assert_single_owners(&sim, 12);
    let loads: Vec<usize> = sim.loads().values().copied().collect();
    assert_eq!(loads, vec![4, 4, 4]);
    // Nobody claimed while listening and nobody took anything back.
    let claims = sim.events.iter().filter(|e| e.owned).count();
    assert_eq!(
        claims, 12,
        "each group claimed exactly once: {:?}",
        sim.events
    );
    for e in &sim.events {
        assert!(e.at >= ms(600), "claimed while listening: {e:?}");
    }
    let status = sim.status(0);
    assert_eq!(status.owner_changes.get("elected"), Some(&12));
}

#[test]
fn a_lone_node_claims_everything_after_listening() {
    let mut sim = Sim::new();
    sim.add("solo", v4_groups(5));
    sim.start(0);
    sim.run_for(ms(599));
    assert!(sim.nodes[0].owned.is_empty());
    assert!(matches!(sim.status(0).phase, NodePhase::Listening { .. }));
    sim.run_for(ms(2));
    assert_eq!(sim.nodes[0].owned.len(), 5);
}

#[test]
fn a_silent_owner_is_replaced_after_three_missed_intervals() {
    let mut sim = three_nodes(12);
    for i in 0..3 {
        sim.start(i);
    }
    sim.run_for(secs(2));
    let group = v4_groups(12)[0].key;
    let victim = owner_of(&sim, group);
    let killed_at = sim.now;
    sim.kill(victim);
    sim.run_for(secs(1));
    let gains = sim.gains_since(group, killed_at);
    assert_eq!(gains.len(), 1, "{gains:?}");
    let gap = gains[0].at - killed_at;
    // Dead after 3 × 100 ms without a beat; the last beat left up to one interval before the
    // kill.
    assert!(gap > ms(200) && gap <= ms(302), "takeover after {gap:?}");
    assert_single_owners(&sim, 12);
    let survivor = sim.index(&gains[0].node);
    let status = sim.status(survivor);
    assert_eq!(
        status.groups[&group].reason,
        Some(OwnerReason::TookOverFromDead {
            previous: sim.nodes[victim].name.clone()
        })
    );
    assert!(status.groups[&group].epoch >= 2);
    let taken = sim
        .events
        .iter()
        .filter(|e| e.owned && e.at >= killed_at && e.node == gains[0].node)
        .count() as u64;
    assert_eq!(status.last_beat_to_claim.count, taken);
    for gap in &status.last_beat_to_claim.recent {
        assert!(*gap > ms(300) && *gap <= ms(301), "{gap:?}");
    }
}

#[test]
fn when_one_of_three_dies_twelve_groups_become_six_six() {
    let mut sim = three_nodes(12);
    for i in 0..3 {
        sim.start(i);
    }
    sim.run_for(secs(2));
    let before: BTreeMap<IpAddr, String> = v4_groups(12)
        .iter()
        .map(|g| (g.key, sim.owners(g.key)[0].clone()))
        .collect();
    sim.kill(1);
    sim.run_for(secs(2));
    assert_single_owners(&sim, 12);
    assert_eq!(
        sim.loads().values().copied().collect::<Vec<_>>(),
        vec![6, 6]
    );
    // Only the dead node's groups moved.
    for (group, owner) in before {
        if owner != "node-b" {
            assert_eq!(sim.owners(group), vec![owner]);
        }
    }
}

#[test]
fn a_killed_node_that_restarts_takes_nothing_back() {
    let mut sim = three_nodes(12);
    for i in 0..3 {
        sim.start(i);
    }
    sim.run_for(secs(2));
    sim.kill(0);
    sim.run_for(secs(1));
    let after_takeover = sim.now;
    sim.start(0);
    sim.run_for(secs(20));
    assert_single_owners(&sim, 12);
    let moves: Vec<_> = sim
        .events
        .iter()
        .filter(|e| e.at > after_takeover)
        .collect();
    assert!(moves.is_empty(), "moves after the restart: {moves:?}");
    assert!(sim.nodes[0].owned.is_empty());
    let status = sim.status(0);
    let group = v4_groups(12)[0].key;
    assert!(matches!(
        status.groups[&group].not_owner["node-a"],
        ferrolb_l2::election::NotOwnerReason::OwnedBy { .. }
    ));
}

#[test]
fn a_node_restarting_within_the_dead_interval_loses_its_groups_once() {
    let mut sim = three_nodes(12);
    for i in 0..3 {
        sim.start(i);
    }
    sim.run_for(secs(2));
    let mine: Vec<IpAddr> = sim.nodes[0].owned.iter().copied().collect();
    sim.kill(0);
    sim.run_for(ms(50));
    sim.start(0);
    let restarted = sim.now;
    sim.run_for(secs(10));
    assert_single_owners(&sim, 12);
    for g in mine {
        let gains = sim.gains_since(g, restarted);
        assert_eq!(gains.len(), 1, "{g}: {gains:?}");
        assert_ne!(gains[0].node, "node-a");
        assert!(gains[0].at - restarted < ms(100), "{gains:?}");
    }
}

#[test]
fn a_flapping_link_moves_the_flapping_nodes_groups_once_and_nothing_else() {
    let mut sim = three_nodes(12);
    for i in 0..3 {
        sim.start(i);
    }
    sim.run_for(secs(2));
    let start = sim.now;
    let a_groups: Vec<IpAddr> = sim.nodes[0].owned.iter().copied().collect();
    let others: Vec<(IpAddr, String)> = v4_groups(12)
        .iter()
        .filter(|g| !a_groups.contains(&g.key))
        .map(|g| (g.key, sim.owners(g.key)[0].clone()))
        .collect();
    for _ in 0..10 {
        sim.isolate(0, true);
        sim.run_for(ms(500));
        sim.isolate(0, false);
        sim.run_for(ms(500));
    }
    sim.run_for(secs(3));
    assert_single_owners(&sim, 12);
    for g in &a_groups {
        let gains: Vec<_> = sim
            .gains_since(*g, start)
            .into_iter()
            .filter(|e| e.node != "node-a")
            .collect();
        assert_eq!(gains.len(), 1, "{g} moved {gains:?}");
    }
    for (g, owner) in &others {
        assert_eq!(&sim.owners(*g), &vec![owner.clone()], "{g} must stay");
        let to_others: Vec<_> = sim
            .gains_since(*g, start)
            .into_iter()
            .filter(|e| e.node != "node-a")
            .collect();
        assert!(to_others.is_empty(), "{g}: {to_others:?}");
    }
    assert!(sim.nodes[0].owned.is_empty());
}

#[test]
fn a_two_node_partition_heals_to_one_owner_per_group_and_originals_win() {
    let mut sim = Sim::new();
    sim.add("node-a", v4_groups(4));
    sim.add("node-b", v4_groups(4));
    sim.start(0);
    sim.start(1);
    sim.run_for(secs(2));
    let before: BTreeMap<IpAddr, String> = v4_groups(4)
        .iter()
        .map(|g| (g.key, sim.owners(g.key)[0].clone()))
        .collect();
    sim.set_link(0, 1, false);
    sim.run_for(secs(3));
    // Both halves answer everything: each takes over what it believes orphaned, provisionally.
    for g in v4_groups(4) {
        assert_eq!(sim.owners(g.key).len(), 2);
    }
    let healed = sim.now;
    sim.set_link(0, 1, true);
    sim.run_for(ms(300));
    assert_single_owners(&sim, 4);
    for (group, owner) in before {
        assert_eq!(sim.owners(group), vec![owner.clone()]);
        let status = sim.status(sim.index(&owner));
        assert!(!status.groups[&group].provisional);
    }
    // Losers stopped within a beat or two of hearing the winner.
    let last_release = sim
        .events
        .iter()
        .filter(|e| !e.owned && e.at >= healed)
        .map(|e| e.at)
        .max()
        .unwrap();
    assert!(
        last_release - healed < ms(250),
        "{:?}",
        last_release - healed
    );
}

#[test]
fn after_a_partition_the_majority_side_keeps_the_minority_nodes_groups() {
    let mut sim = three_nodes(12);
    for i in 0..3 {
        sim.start(i);
    }
    sim.run_for(secs(2));
    let c_groups: Vec<IpAddr> = sim.nodes[2].owned.iter().copied().collect();
    sim.isolate(2, true);
    sim.run_for(secs(5));
    // The minority node keeps answering what it had and provisionally takes the rest.
    assert_eq!(sim.nodes[2].owned.len(), 12);
    let provisional = sim
        .status(2)
        .groups
        .values()
        .filter(|g| g.provisional)
        .count();
    assert_eq!(provisional, 12 - c_groups.len());
    sim.isolate(2, false);
    sim.run_for(secs(1));
    assert_single_owners(&sim, 12);
    // The majority took node-c's groups with a higher epoch; node-c lost everything.
    assert!(sim.nodes[2].owned.is_empty());
    for g in c_groups {
        let status = sim.status(0);
        assert!(status.groups[&g].epoch >= 2);
        assert_ne!(status.groups[&g].owner.as_deref(), Some("node-c"));
    }
}

#[test]
fn carrier_loss_releases_at_once_and_the_others_take_over() {
    let mut sim = three_nodes(6);
    for i in 0..3 {
        sim.start(i);
    }
    sim.run_for(secs(2));
    let mine: Vec<IpAddr> = sim.nodes[1].owned.iter().copied().collect();
    assert!(!mine.is_empty());
    let at = sim.now;
    sim.set_carrier(1, false);
    // Released in the same instant.
    assert!(sim.nodes[1].owned.is_empty());
    for g in &mine {
        let status = sim.status(1);
        assert!(matches!(
            status.groups[g].not_owner["node-b"],
            ferrolb_l2::election::NotOwnerReason::NotEligible(
                ferrolb_l2::election::Ineligible::CarrierDown { .. }
            )
        ));
    }
    sim.run_for(secs(1));
    assert_single_owners(&sim, 6);
    for g in mine {
        assert!(sim.gains_since(g, at)[0].at - at <= ms(310));
    }
}

#[test]
fn a_node_that_joins_later_gets_groups_by_rate_limited_hand_offs() {
    let mut sim = three_nodes(12);
    sim.configure = |c| {
        c.rebalance.settle = Duration::from_secs(5);
        c.rebalance.interval = Duration::from_secs(2);
    };
    sim.start(0);
    sim.start(1);
    sim.run_for(secs(2));
    assert_eq!(
        sim.loads().values().copied().collect::<Vec<_>>(),
        vec![6, 6]
    );
    sim.start(2);
    let joined = sim.now;
    sim.run_for(secs(4));
    // Sticky: nothing moves before the newcomer has settled.
    assert!(sim.nodes[2].owned.is_empty());
    sim.run_for(secs(30));
    assert_single_owners(&sim, 12);
    assert_eq!(
        sim.loads().values().copied().collect::<Vec<_>>(),
        vec![4, 4, 4]
    );
    let moves: Vec<_> = sim
        .events
        .iter()
        .filter(|e| e.owned && e.at > joined)
        .collect();
    assert_eq!(moves.len(), 4, "{moves:?}");
    for pair in moves.windows(2) {
        assert!(pair[1].at - pair[0].at >= secs(2) - ms(150), "{pair:?}");
    }
    for m in &moves {
        // The new owner claims before the old owner stops: never zero owners.
        let release = sim
            .events
            .iter()
            .find(|e| !e.owned && e.group == m.group && e.at >= m.at)
            .expect("old owner released");
        assert!(release.at >= m.at);
        assert!(release.at - m.at < ms(50));
        assert_eq!(
            sim.status(2).groups[&m.group].reason,
            Some(OwnerReason::HandOff {
                from: release.node.clone()
            })
        );
    }
}

#[test]
fn rebalancing_can_be_switched_off() {
    let mut sim = three_nodes(12);
    sim.configure = |c| {
        c.rebalance.enabled = false;
        c.rebalance.settle = Duration::from_secs(1);
    };
    sim.start(0);
    sim.start(1);
    sim.run_for(secs(2));
    sim.start(2);
    sim.run_for(secs(30));
    assert!(sim.nodes[2].owned.is_empty());
}

#[test]
fn drain_hands_every_group_over_before_letting_go() {
    let mut sim = three_nodes(12);
    for i in 0..3 {
        sim.start(i);
    }
    sim.run_for(secs(2));
    let mine: Vec<IpAddr> = sim.nodes[0].owned.iter().copied().collect();
    let at = sim.now;
    let out = sim.nodes[0].node.as_mut().unwrap().begin_drain(at, secs(2));
    // Drive the outputs through the simulated wire.
    common::sim_feed(&mut sim, 0, out);
    sim.run_for(ms(100));
    assert!(sim.nodes[0].node.as_ref().unwrap().is_drained());
    assert!(sim.nodes[0].owned.is_empty());
    for g in &mine {
        let gain = sim
            .events
            .iter()
            .find(|e| e.owned && e.group == *g && e.at >= at)
            .expect("taken over");
        let release = sim
            .events
            .iter()
            .find(|e| !e.owned && e.group == *g && e.at >= at)
            .expect("released");
        assert!(gain.at <= release.at, "{gain:?} {release:?}");
        assert_eq!(
            sim.status(sim.index(&gain.node)).groups[g].reason,
            Some(OwnerReason::Drained {
                from: "node-a".into()
            })
        );
    }
    assert_single_owners(&sim, 12);
    let loads = sim.loads();
    assert_eq!(loads["node-b"] + loads["node-c"], 12);
    assert!(loads["node-b"].abs_diff(loads["node-c"]) <= 1, "{loads:?}");
}

#[test]
fn drain_without_anyone_to_take_over_releases_at_once() {
    let mut sim = Sim::new();
    sim.add("solo", v4_groups(3));
    sim.start(0);
    sim.run_for(secs(1));
    let now = sim.now;
    let node = sim.nodes[0].node.as_mut().unwrap();
    let out = node.begin_drain(now, secs(5));
    assert!(node.is_drained());
    common::sim_feed(&mut sim, 0, out);
    assert!(sim.nodes[0].owned.is_empty());
}

#[test]
fn heartbeats_under_a_wrong_key_are_ignored() {
    let mut sim = three_nodes(6);
    sim.start(0);
    sim.start(1);
    sim.key = b"some other key of sufficient size".to_vec();
    sim.start(2);
    sim.run_for(secs(3));
    let a = sim.status(0);
    assert!(!a.members.contains_key("node-c"));
    assert!(a.counters.heartbeats_bad_mac > 20);
    // node-c hears nobody and answers everything itself; a and b split the groups.
    assert_eq!(sim.nodes[2].owned.len(), 6);
    assert_eq!(sim.nodes[0].owned.len() + sim.nodes[1].owned.len(), 6);
}

#[test]
fn replayed_heartbeats_neither_count_nor_keep_a_dead_node_alive() {
    let mut sim = Sim::new();
    sim.add("node-a", v4_groups(2));
    let b = sim.add("node-b", v4_groups(2));
    sim.start(0);
    sim.start(b);
    sim.run_for(secs(2));
    // Capture node-b's next beat by running node-b alone for one tick.
    let now = sim.now + ms(100);
    let out = sim.nodes[b].node.as_mut().unwrap().tick(now);
    let beat = out
        .iter()
        .find_map(|o| match o {
            ferrolb_l2::node::Output::Send {
                frame,
                kind: ferrolb_l2::node::SentKind::Heartbeat,
                ..
            } => Some(frame.clone()),
            _ => None,
        })
        .expect("a beat");
    sim.run_until(now);
    sim.inject(0, &beat);
    let first = sim.status(0).counters.heartbeats_replayed;
    sim.inject(0, &beat);
    assert_eq!(sim.status(0).counters.heartbeats_replayed, first + 1);
    sim.kill(b);
    let killed = sim.now;
    for _ in 0..10 {
        sim.run_for(ms(100));
        sim.inject(0, &beat);
    }
    let status = sim.status(0);
    assert_eq!(
        status.members["node-b"].liveness,
        ferrolb_l2::status::MemberLiveness::Dead
    );
    assert_eq!(sim.nodes[0].owned.len(), 2);
    assert!(
        sim.events
            .iter()
            .any(|e| e.owned && e.node == "node-a" && e.at > killed)
    );
}

#[test]
fn heartbeat_rtt_is_measured_per_peer() {
    let mut sim = three_nodes(3);
    sim.latency = ms(2);
    for i in 0..3 {
        sim.start(i);
    }
    sim.run_for(secs(2));
    let status = sim.status(0);
    for peer in ["node-b", "node-c"] {
        let rtt = status.members[peer].rtt.expect("rtt");
        // Two hops of 2 ms; echoes carry the holding time in whole microseconds.
        assert!(
            rtt >= ms(4) - Duration::from_micros(2) && rtt <= ms(4),
            "{rtt:?}"
        );
        assert_eq!(status.members[peer].beats_lost, 0);
    }
}

#[test]
fn lost_beats_are_counted_from_sequence_gaps() {
    let mut sim = Sim::new();
    sim.add("node-a", v4_groups(1));
    sim.add("node-b", v4_groups(1));
    sim.start(0);
    sim.start(1);
    sim.run_for(secs(1));
    sim.set_link(0, 1, false);
    sim.run_for(ms(150));
    sim.set_link(0, 1, true);
    sim.run_for(secs(1));
    let lost = sim.status(0).members["node-b"].beats_lost;
    assert!((1..=2).contains(&lost), "{lost}");
}
