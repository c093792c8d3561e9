//! The agent's metrics against docs/observability.md: a registry fed real agent and speaker
//! status structures that exercise every metric is scraped (rendered in the text format the
//! HTTP endpoint serves); every documented metric must be emitted with its documented type, and
//! nothing undocumented may be emitted. Also: readiness.

#![allow(clippy::unwrap_used, clippy::expect_used)]

use std::collections::{BTreeMap, BTreeSet};
use std::sync::Arc;
use std::time::{Duration, SystemTime};

use ferrolb_allocator::{FamilyStats, PoolStats};
use ferrolb_bgpd::fsm::State;
use ferrolb_bgpd::fsm::{Negotiated, SessionError};
use ferrolb_bgpd::wire::{Family, Notification};
use ferrolb_bgpd::{LastError, LastNotification, MessageCounters};
use ferrolb_bgpd::{PeerStatus, SpeakerStatus};
use ferrolb_model::service::ServiceKey;
use ferrolb_speaker::agent::{AgentStatus, ReadOutcome};
use ferrolb_speaker::l2_shell::L2View;
use ferrolb_speaker::metrics::Metrics;
use ferrolb_speaker::plan::{PeerSkip, ServicePlan};
use tokio::sync::watch;

fn peer(name: &str, state: State, error: Option<SessionError>) -> PeerStatus {
    let counters = MessageCounters {
        open: 1,
        update: 3,
        notification: 1,
        keepalive: 10,
        route_refresh: 0,
    };
    PeerStatus {
        name: name.into(),
        peer: "192.0.2.1:179".parse().unwrap(),
        local_as: 4_200_000_000,
        peer_as: 64500,
        state,
        established_at: (state == State::Established)
            .then(|| SystemTime::now() - Duration::from_secs(60)),
        flaps: 2,
        // As bgpd records them: the last NOTIFICATION of each direction outlives `last_error`.
        last_notification_sent: match &error {
            Some(SessionError::NotificationSent(n)) => Some(LastNotification {
                at: SystemTime::now(),
                notification: n.clone(),
            }),
            _ => None,
        },
        last_notification_received: match &error {
            Some(SessionError::NotificationReceived(n)) => Some(LastNotification {
                at: SystemTime::now(),
                notification: n.clone(),
            }),
            _ => None,
        },
        last_error: error.map(|error| LastError {
            at: SystemTime::now(),
            error,
        }),
        last_connect_error: None,
        messages_sent: counters,
        messages_received: counters,
        prefixes_desired: 2,
        prefixes_advertised_v4: 1,
        prefixes_advertised_v6: 1,
        prefixes_received: 5,
        local_address: Some("192.0.2.11:40000".parse().unwrap()),
        negotiated: (state == State::Established).then(|| Negotiated {
            peer_router_id: "192.0.2.1".parse().unwrap(),
            peer_as: 64500,
            hold_time: 9,
            keepalive: Duration::from_secs(3),
            four_octet_as: true,
            families: vec![Family::IPV4_UNICAST],
            route_refresh: true,
            extended_message: false,
            graceful_restart: false,
            peer_capabilities: Vec::new(),
        }),
        unsendable: Vec::new(),
        initial_sync_done: true,
    }
}

/// Status that makes every metric emit at least one series.
fn rich_status() -> (AgentStatus, SpeakerStatus) {
    let cease = Notification {
        code: 6,
        subcode: 2,
        data: Vec::new(),
    };
    let mut speaker = SpeakerStatus::default();
    speaker
        .peers
        .insert("up".into(), peer("up", State::Established, None));
    speaker.peers.insert(
        "sent".into(),
        peer(
            "sent",
            State::Idle,
            Some(SessionError::NotificationSent(cease.clone())),
        ),
    );
    speaker.peers.insert(
        "received".into(),
        peer(
            "received",
            State::Active,
            Some(SessionError::NotificationReceived(cease)),
        ),
    );
    let mut agent = AgentStatus {
        generation: 3,
        rejected: vec!["bad.yaml: line 1: nope".into()],
        ..AgentStatus::default()
    };
    agent
        .plan
        .bgp
        .skipped_peers
        .insert("far".into(), PeerSkip::NodeNotSelected);
    agent.plan.services.insert(
        ServiceKey::new("demo", "web"),
        ServicePlan {
            addresses: vec!["203.0.113.10".parse().unwrap()],
            pool: Some("lab".into()),
            ..ServicePlan::default()
        },
    );
    agent.pools = vec![PoolStats {
        pool: Arc::from("lab"),
        ipv4: FamilyStats {
            total: 41,
            in_use: 1,
            available: 40,
        },
        ipv6: FamilyStats {
            total: u128::MAX,
            in_use: 1,
            available: u128::MAX - 1,
        },
    }];
    (agent, speaker)
}

/// A layer-2 view with an owned group, a peer, a conflict and a sample in every histogram.
fn rich_l2() -> L2View {
    use ferrolb_l2::node::L2Node;
    use ferrolb_l2::responder::ConflictEvidence;
    use ferrolb_l2::{ConflictRecord, GroupStatus, L2Config, MemberLiveness, MemberStatus};
    let vip: std::net::IpAddr = "198.18.0.200".parse().unwrap();
    let node = L2Node::new(
        L2Config::new("n1", "lab", vec![7; 32]),
        Duration::ZERO,
        SystemTime::now(),
    )
    .unwrap();
    let mut status = node.status(Duration::ZERO);
    status.groups.insert(
        vip,
        GroupStatus {
            addresses: BTreeSet::from([vip]),
            interface: Some("eth1".into()),
            owner: Some("n1".into()),
            owned_here: true,
            epoch: 2,
            provisional: false,
            since: Some(SystemTime::now()),
            reason: None,
            handoff_to: None,
            not_owner: BTreeMap::new(),
        },
    );
    status.members.insert(
        "n2".into(),
        MemberStatus {
            liveness: MemberLiveness::Alive,
            incarnation: 1,
            mac: Some("02:00:00:00:00:02".parse().unwrap()),
            interface: Some("eth1".into()),
            alive_since: Some(SystemTime::now()),
            last_heard: Some(SystemTime::now()),
            rtt: Some(Duration::from_micros(150)),
            beats_received: 100,
            beats_lost: 1,
            deaths: 0,
            listening: false,
            draining: false,
            eligible_groups: 1,
            owned_groups: 0,
        },
    );
    status.owner_changes.insert("took_over_from_dead", 1);
    status.detection_to_claim.record(Duration::from_millis(1));
    status
        .claim_to_first_announce
        .record(Duration::from_micros(80));
    status.last_beat_to_claim.record(Duration::from_millis(301));
    status.requests_answered.insert(vip, 5);
    status.conflicts.push(ConflictRecord {
        vip,
        mac: "02:00:00:00:00:99".parse().unwrap(),
        interface: "eth1".into(),
        count: 2,
        first_seen: SystemTime::now(),
        last_seen: SystemTime::now(),
        last_evidence: ConflictEvidence::ArpReply,
        peer: None,
    });
    L2View {
        problem: None,
        interfaces: BTreeMap::from([(vip, Ok("eth1".to_string()))]),
        announcer: Some(status),
    }
}

fn start(
    agent: AgentStatus,
    speaker: SpeakerStatus,
) -> (
    Metrics,
    watch::Sender<AgentStatus>,
    watch::Sender<SpeakerStatus>,
) {
    let (agent_tx, agent_rx) = watch::channel(agent);
    let (speaker_tx, speaker_rx) = watch::channel(speaker);
    let metrics = Metrics::new(agent_rx, speaker_rx).unwrap();
    let (l2_tx, l2_rx) = watch::channel(rich_l2());
    metrics.with_l2(l2_rx).unwrap();
    // The view's sender may go: the collector keeps the last value.
    drop(l2_tx);
    (metrics, agent_tx, speaker_tx)
}

/// `name -> type` from the metrics table of docs/observability.md.
fn documented() -> BTreeMap<String, String> {
    let docs = include_str!("../../../docs/observability.md");
    let section = docs
        .split("\n## Metrics\n")
        .nth(1)
        .expect("docs/observability.md has a ## Metrics section");
    let section = section.split("\n## ").next().unwrap_or(section);
    section
        .lines()
        .filter_map(|line| {
            let cells: Vec<&str> = line.split('|').map(str::trim).collect();
            let name = cells.get(1)?.strip_prefix('`')?.strip_suffix('`')?;
            name.starts_with("ferrolb_")
                .then(|| (name.to_string(), cells.get(2).unwrap_or(&"").to_string()))
        })
        .collect()
}

/// `name -> type` from the `# TYPE` lines of a scrape.
fn emitted(body: &str) -> BTreeMap<String, String> {
    body.lines()
        .filter_map(|l| l.strip_prefix("# TYPE "))
        .filter_map(|l| {
            let (name, kind) = l.split_once(' ')?;
            Some((name.to_string(), kind.to_string()))
        })
        .collect()
}

#[tokio::test]
async fn every_documented_metric_is_emitted_and_every_emitted_metric_is_documented() {
    let (agent, speaker) = rich_status();
    let (metrics, _a, _s) = start(agent, speaker);
    let observe = metrics.read_observer();
    observe(ReadOutcome::Applied {
        took: Duration::from_millis(12),
    });
    observe(ReadOutcome::Refused { problems: 1 });

    let body = metrics.render();
    let emitted = emitted(&body);
    let documented = documented();
    assert!(
        documented.len() >= 20,
        "the docs table was not parsed: {documented:?}"
    );
    let undocumented: BTreeSet<_> = emitted
        .keys()
        .filter(|k| !documented.contains_key(*k))
        .collect();
    let missing: BTreeSet<_> = documented
        .keys()
        .filter(|k| !emitted.contains_key(*k))
        .collect();
    assert!(
        undocumented.is_empty(),
        "emitted but not in docs/observability.md: {undocumented:?}"
    );
    assert!(
        missing.is_empty(),
        "documented but not emitted: {missing:?}"
    );
    for (name, kind) in &emitted {
        assert_eq!(&documented[name], kind, "type of {name}");
    }
}

#[tokio::test]
async fn metric_values_follow_the_status() {
    let (agent, speaker) = rich_status();
    let (metrics, _a, _s) = start(agent, speaker);
    let body = metrics.render();
    for line in [
        "ferrolb_bgp_session_up{peer=\"up\",peer_address=\"192.0.2.1\"} 1",
        "ferrolb_bgp_session_up{peer=\"sent\",peer_address=\"192.0.2.1\"} 0",
        "ferrolb_bgp_session_state{peer=\"received\"} 3",
        "ferrolb_bgp_session_flaps_total{peer=\"up\"} 2",
        "ferrolb_bgp_messages_sent_total{peer=\"up\",type=\"keepalive\"} 10",
        "ferrolb_bgp_prefixes_announced{family=\"ipv6\",peer=\"up\"} 1",
        "ferrolb_bgp_prefixes_received{peer=\"up\"} 5",
        "ferrolb_bgp_peer_without_session{peer=\"far\"} 1",
        "ferrolb_pool_in_use_addresses{family=\"ipv4\",pool=\"lab\"} 1",
        "ferrolb_pool_capacity_addresses{family=\"ipv4\",pool=\"lab\"} 41",
        "ferrolb_services{announced=\"false\"} 1",
        "ferrolb_config_generation 3",
        "ferrolb_config_stale 1",
        "ferrolb_config_problems 1",
    ] {
        assert!(
            body.lines().any(|l| l == line),
            "missing {line:?} in\n{body}"
        );
    }
    assert!(
        body.lines().any(|l| l
            .starts_with("ferrolb_bgp_last_notification_sent_timestamp_seconds{code=\"6\",peer=\"sent\",subcode=\"2\"} ")),
        "{body}"
    );
    assert!(
        body.lines().any(|l| l
            .starts_with("ferrolb_bgp_last_notification_received_timestamp_seconds{code=\"6\",peer=\"received\",subcode=\"2\"} ")),
        "{body}"
    );
}

#[tokio::test]
async fn a_notification_is_remembered_after_the_session_recovers() {
    let (agent, speaker) = rich_status();
    let (metrics, _a, speaker_tx) = start(agent, speaker);
    // Seen once...
    let body = metrics.render();
    assert!(
        body.contains(
            "ferrolb_bgp_last_notification_sent_timestamp_seconds{code=\"6\",peer=\"sent\""
        )
    );
    // ...then the session comes back and a later error replaces bgpd's last error.
    speaker_tx.send_modify(|s| {
        if let Some(p) = s.peers.get_mut("sent") {
            p.last_error = None;
            p.state = State::Established;
        }
    });
    let body = metrics.render();
    assert!(
        body.contains(
            "ferrolb_bgp_last_notification_sent_timestamp_seconds{code=\"6\",peer=\"sent\""
        ),
        "{body}"
    );
}

#[tokio::test]
async fn readiness_waits_for_a_good_configuration() {
    let (metrics, agent_tx, _s) = start(AgentStatus::default(), SpeakerStatus::default());
    assert_eq!(
        metrics.ready(),
        Err("no configuration applied yet".to_string())
    );
    agent_tx.send_modify(|a| a.generation = 1);
    assert_eq!(metrics.ready(), Ok(()));
}
