//! Prometheus metrics of the node agent (the `ferrolb` binary serves them over HTTP with
//! `/healthz` and `/readyz`). Session, pool, Service and config gauges and counters are computed at scrape
//! time from the agent's and the speaker's status channels, so they can never disagree with
//! the gRPC status API; the event-to-UPDATE latency histogram and the read counters are fed
//! losslessly by [`Metrics::read_observer`]. Every metric is listed in docs/observability.md,
//! and `tests/metrics_docs.rs` fails if the two drift apart.

use std::sync::{Mutex, PoisonError};
use std::time::{SystemTime, UNIX_EPOCH};

use ferrolb_bgpd::SpeakerStatus;
use ferrolb_bgpd::fsm::State;
use prometheus::core::{Collector, Desc};
use prometheus::proto::MetricFamily;
use prometheus::{
    Encoder, GaugeVec, Histogram, HistogramOpts, IntCounterVec, IntGaugeVec, Opts, Registry,
    TextEncoder,
};
use tokio::sync::watch;

use crate::agent::{AgentStatus, ReadObserver, ReadOutcome};
use crate::l2_shell::L2View;

/// The metrics could not be registered.
#[derive(Debug, thiserror::Error)]
pub enum MetricsError {
    /// Refused by the registry (a duplicate or malformed metric: a bug).
    #[error("metrics registry: {0}")]
    Prometheus(#[from] prometheus::Error),
}

/// The RFC 4273 `bgpPeerState` number of a state (Idle 1 .. Established 6).
pub fn state_number(state: State) -> i64 {
    match state {
        State::Idle => 1,
        State::Connect => 2,
        State::Active => 3,
        State::OpenSent => 4,
        State::OpenConfirm => 5,
        State::Established => 6,
    }
}

/// Metrics computed at scrape time from the status channels.
struct StatusCollector {
    agent: watch::Receiver<AgentStatus>,
    speaker: watch::Receiver<SpeakerStatus>,
    /// One scrape at a time: the vectors below are reset and refilled by each.
    scrape: Mutex<()>,
    session_up: IntGaugeVec,
    session_state: IntGaugeVec,
    session_flaps: IntCounterVec,
    session_uptime: IntGaugeVec,
    messages_sent: IntCounterVec,
    messages_received: IntCounterVec,
    prefixes_announced: IntGaugeVec,
    prefixes_desired: IntGaugeVec,
    prefixes_received: IntGaugeVec,
    notification_sent: GaugeVec,
    notification_received: GaugeVec,
    peer_without_session: IntGaugeVec,
    pool_capacity: GaugeVec,
    pool_in_use: GaugeVec,
    pool_available: GaugeVec,
    services: IntGaugeVec,
    config_loaded: IntGaugeVec,
    config_generation: IntGaugeVec,
    config_stale: IntGaugeVec,
    config_problems: IntGaugeVec,
}

fn gauge(name: &str, help: &str, labels: &[&str]) -> Result<IntGaugeVec, prometheus::Error> {
    IntGaugeVec::new(Opts::new(name, help), labels)
}

fn fgauge(name: &str, help: &str, labels: &[&str]) -> Result<GaugeVec, prometheus::Error> {
    GaugeVec::new(Opts::new(name, help), labels)
}

fn counter(name: &str, help: &str, labels: &[&str]) -> Result<IntCounterVec, prometheus::Error> {
    IntCounterVec::new(Opts::new(name, help), labels)
}

impl StatusCollector {
    fn new(
        agent: watch::Receiver<AgentStatus>,
        speaker: watch::Receiver<SpeakerStatus>,
    ) -> Result<StatusCollector, prometheus::Error> {
        Ok(StatusCollector {
            agent,
            speaker,
            scrape: Mutex::new(()),
            session_up: gauge(
                "ferrolb_bgp_session_up",
                "1 if the BGP session is Established, else 0.",
                &["peer", "peer_address"],
            )?,
            session_state: gauge(
                "ferrolb_bgp_session_state",
                "BGP FSM state as RFC 4273 bgpPeerState: 1 Idle, 2 Connect, 3 Active, 4 OpenSent, 5 OpenConfirm, 6 Established.",
                &["peer"],
            )?,
            session_flaps: counter(
                "ferrolb_bgp_session_flaps_total",
                "Times the session left Established.",
                &["peer"],
            )?,
            session_uptime: gauge(
                "ferrolb_bgp_session_uptime_seconds",
                "Seconds since the session reached Established; 0 when not Established.",
                &["peer"],
            )?,
            messages_sent: counter(
                "ferrolb_bgp_messages_sent_total",
                "BGP messages sent to the peer, by type.",
                &["peer", "type"],
            )?,
            messages_received: counter(
                "ferrolb_bgp_messages_received_total",
                "BGP messages received from the peer, by type.",
                &["peer", "type"],
            )?,
            prefixes_announced: gauge(
                "ferrolb_bgp_prefixes_announced",
                "Prefixes currently advertised to the peer, by family.",
                &["peer", "family"],
            )?,
            prefixes_desired: gauge(
                "ferrolb_bgp_prefixes_desired",
                "Prefixes the agent wants advertised to the peer.",
                &["peer"],
            )?,
            prefixes_received: gauge(
                "ferrolb_bgp_prefixes_received",
                "Prefixes the peer announces to us (counted, never installed).",
                &["peer"],
            )?,
            notification_sent: fgauge(
                "ferrolb_bgp_last_notification_sent_timestamp_seconds",
                "Unix time of the last NOTIFICATION sent to the peer; code and subcode as labels.",
                &["peer", "code", "subcode"],
            )?,
            notification_received: fgauge(
                "ferrolb_bgp_last_notification_received_timestamp_seconds",
                "Unix time of the last NOTIFICATION received from the peer; code and subcode as labels.",
                &["peer", "code", "subcode"],
            )?,
            peer_without_session: gauge(
                "ferrolb_bgp_peer_without_session",
                "1 for each BGPPeer selected for this node that has no session (see ferrolb status sessions for why).",
                &["peer"],
            )?,
            pool_capacity: fgauge(
                "ferrolb_pool_capacity_addresses",
                "Usable addresses in the pool, by family.",
                &["pool", "family"],
            )?,
            pool_in_use: fgauge(
                "ferrolb_pool_in_use_addresses",
                "Addresses of the pool held by at least one Service, by family.",
                &["pool", "family"],
            )?,
            pool_available: fgauge(
                "ferrolb_pool_available_addresses",
                "Addresses of the pool still free, by family.",
                &["pool", "family"],
            )?,
            services: gauge(
                "ferrolb_services",
                "Services handled by this node, by whether this node announces them.",
                &["announced"],
            )?,
            config_loaded: gauge(
                "ferrolb_config_loaded",
                "1 once a good configuration has been applied.",
                &[],
            )?,
            config_generation: gauge(
                "ferrolb_config_generation",
                "Good configuration snapshots applied since start.",
                &[],
            )?,
            config_stale: gauge(
                "ferrolb_config_stale",
                "1 if the latest read of the configuration was refused (an older one stays applied).",
                &[],
            )?,
            config_problems: gauge(
                "ferrolb_config_problems",
                "Problems found in the latest read of the configuration if it was refused.",
                &[],
            )?,
        })
    }

    fn parts(&self) -> Vec<&dyn Collector> {
        vec![
            &self.session_up,
            &self.session_state,
            &self.session_flaps,
            &self.session_uptime,
            &self.messages_sent,
            &self.messages_received,
            &self.prefixes_announced,
            &self.prefixes_desired,
            &self.prefixes_received,
            &self.notification_sent,
            &self.notification_received,
            &self.peer_without_session,
            &self.pool_capacity,
            &self.pool_in_use,
            &self.pool_available,
            &self.services,
            &self.config_loaded,
            &self.config_generation,
            &self.config_stale,
            &self.config_problems,
        ]
    }

    fn fill(&self) {
        let speaker = self.speaker.borrow().clone();
        let agent = self.agent.borrow().clone();
        let now = SystemTime::now();
        for part in [
            &self.session_up,
            &self.session_state,
            &self.session_uptime,
            &self.prefixes_announced,
            &self.prefixes_desired,
            &self.prefixes_received,
            &self.peer_without_session,
            &self.services,
        ] {
            part.reset();
        }
        for part in [
            &self.session_flaps,
            &self.messages_sent,
            &self.messages_received,
        ] {
            part.reset();
        }
        for part in [
            &self.notification_sent,
            &self.notification_received,
            &self.pool_capacity,
            &self.pool_in_use,
            &self.pool_available,
        ] {
            part.reset();
        }
        for (name, p) in &speaker.peers {
            let n = name.as_str();
            let up = i64::from(p.state == State::Established);
            let address = p.peer.ip().to_string();
            self.session_up.with_label_values(&[n, &address]).set(up);
            self.session_state
                .with_label_values(&[n])
                .set(state_number(p.state));
            self.session_flaps.with_label_values(&[n]).inc_by(p.flaps);
            let uptime = p.uptime(now).map(|d| d.as_secs()).unwrap_or(0);
            self.session_uptime
                .with_label_values(&[n])
                .set(i64::try_from(uptime).unwrap_or(i64::MAX));
            for (counter, c) in [
                (&self.messages_sent, &p.messages_sent),
                (&self.messages_received, &p.messages_received),
            ] {
                for (t, v) in [
                    ("open", c.open),
                    ("update", c.update),
                    ("notification", c.notification),
                    ("keepalive", c.keepalive),
                    ("route_refresh", c.route_refresh),
                ] {
                    counter.with_label_values(&[n, t]).inc_by(v);
                }
            }
            let count = |v: usize| i64::try_from(v).unwrap_or(i64::MAX);
            self.prefixes_announced
                .with_label_values(&[n, "ipv4"])
                .set(count(p.prefixes_advertised_v4));
            self.prefixes_announced
                .with_label_values(&[n, "ipv6"])
                .set(count(p.prefixes_advertised_v6));
            self.prefixes_desired
                .with_label_values(&[n])
                .set(count(p.prefixes_desired));
            self.prefixes_received
                .with_label_values(&[n])
                .set(count(p.prefixes_received));
        }
        for (name, p) in &speaker.peers {
            for (gauge, last) in [
                (&self.notification_sent, &p.last_notification_sent),
                (&self.notification_received, &p.last_notification_received),
            ] {
                if let Some(last) = last {
                    let at = last
                        .at
                        .duration_since(UNIX_EPOCH)
                        .map_or(0.0, |d| d.as_secs_f64());
                    let n = &last.notification;
                    gauge
                        .with_label_values(&[
                            name.as_str(),
                            &n.code.to_string(),
                            &n.subcode.to_string(),
                        ])
                        .set(at);
                }
            }
        }
        for peer in agent
            .plan
            .bgp
            .skipped_peers
            .keys()
            .chain(agent.peer_errors.keys())
        {
            self.peer_without_session.with_label_values(&[peer]).set(1);
        }
        for pool in &agent.pools {
            let name = pool.pool.to_string();
            for (family, stats) in [("ipv4", &pool.ipv4), ("ipv6", &pool.ipv6)] {
                let labels = [name.as_str(), family];
                self.pool_capacity
                    .with_label_values(&labels)
                    .set(stats.total as f64);
                self.pool_in_use
                    .with_label_values(&labels)
                    .set(stats.in_use as f64);
                self.pool_available
                    .with_label_values(&labels)
                    .set(stats.available as f64);
            }
        }
        let announced = agent
            .plan
            .services
            .values()
            .filter(|s| s.is_announced())
            .count();
        let not_announced = agent.plan.services.len() - announced;
        let count = |v: usize| i64::try_from(v).unwrap_or(i64::MAX);
        self.services
            .with_label_values(&["true"])
            .set(count(announced));
        self.services
            .with_label_values(&["false"])
            .set(count(not_announced));
        let generation = i64::try_from(agent.generation).unwrap_or(i64::MAX);
        self.config_loaded
            .with_label_values(&[] as &[&str])
            .set(i64::from(agent.generation > 0));
        self.config_generation
            .with_label_values(&[] as &[&str])
            .set(generation);
        self.config_stale
            .with_label_values(&[] as &[&str])
            .set(i64::from(!agent.rejected.is_empty()));
        self.config_problems
            .with_label_values(&[] as &[&str])
            .set(count(agent.rejected.len()));
    }
}

impl Collector for StatusCollector {
    fn desc(&self) -> Vec<&Desc> {
        self.parts().into_iter().flat_map(|c| c.desc()).collect()
    }

    fn collect(&self) -> Vec<MetricFamily> {
        let _one_at_a_time = self.scrape.lock().unwrap_or_else(PoisonError::into_inner);
        self.fill();
        self.parts().into_iter().flat_map(|c| c.collect()).collect()
    }
}

/// The agent's metrics registry.
pub struct Metrics {
    registry: Registry,
    apply_seconds: Histogram,
    reads: IntCounterVec,
    agent: watch::Receiver<AgentStatus>,
}

/// Buckets of the event-to-UPDATE histogram, in seconds: 1 ms to 10 s.
pub const APPLY_BUCKETS: &[f64] = &[
    0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0,
];

impl Metrics {
    /// A registry whose status metrics are read from the channels at each scrape.
    pub fn new(
        agent: watch::Receiver<AgentStatus>,
        speaker: watch::Receiver<SpeakerStatus>,
    ) -> Result<Metrics, MetricsError> {
        let registry = Registry::new();
        registry.register(Box::new(StatusCollector::new(agent.clone(), speaker)?))?;
        let apply_seconds = Histogram::with_opts(
            HistogramOpts::new(
                "ferrolb_config_apply_seconds",
                "From reading a changed configuration folder to the BGP speaker having the new routes (the UPDATEs leave within a fraction of a millisecond); the file-watch debounce is not included.",
            )
            .buckets(APPLY_BUCKETS.to_vec()),
        )?;
        registry.register(Box::new(apply_seconds.clone()))?;
        let reads = counter(
            "ferrolb_config_reads_total",
            "Reads of the configuration folder, by result: applied or refused.",
            &["result"],
        )?;
        for result in ["applied", "refused"] {
            reads.with_label_values(&[result]);
        }
        registry.register(Box::new(reads.clone()))?;
        Ok(Metrics {
            registry,
            apply_seconds,
            reads,
            agent,
        })
    }

    /// What the agent calls after each read (see `Agent::on_read`).
    pub fn read_observer(&self) -> ReadObserver {
        let apply_seconds = self.apply_seconds.clone();
        let reads = self.reads.clone();
        Box::new(move |outcome| match outcome {
            ReadOutcome::Applied { took } => {
                apply_seconds.observe(took.as_secs_f64());
                reads.with_label_values(&["applied"]).inc();
            }
            ReadOutcome::Refused { .. } => reads.with_label_values(&["refused"]).inc(),
        })
    }

    /// Adds the layer-2 metrics, read from the layer-2 shell's view at each scrape.
    pub fn with_l2(&self, view: watch::Receiver<L2View>) -> Result<(), MetricsError> {
        self.registry.register(Box::new(L2Collector::new(view)?))?;
        Ok(())
    }

    /// Every metric family now.
    pub fn gather(&self) -> Vec<MetricFamily> {
        self.registry.gather()
    }

    /// The Prometheus text exposition format of [`Metrics::gather`].
    pub fn render(&self) -> String {
        let mut buf = Vec::new();
        if let Err(e) = TextEncoder::new().encode(&self.gather(), &mut buf) {
            return format!("# encoding failed: {e}\n");
        }
        String::from_utf8_lossy(&buf).into_owned()
    }

    /// The registry, for the HTTP endpoint.
    pub fn registry(&self) -> Registry {
        self.registry.clone()
    }

    /// Ready once a good configuration has been applied; otherwise why not.
    pub fn ready(&self) -> Result<(), String> {
        if self.agent.borrow().generation > 0 {
            Ok(())
        } else {
            Err("no configuration applied yet".into())
        }
    }
}

/// Layer-2 metrics, computed at scrape time from the announcer's status (the durations are
/// the announcer's own histograms, exposed as Prometheus histograms).
struct L2Collector {
    view: watch::Receiver<L2View>,
    scrape: Mutex<()>,
    running: IntGaugeVec,
    group_owned: IntGaugeVec,
    owner_changes: IntCounterVec,
    member_alive: IntGaugeVec,
    member_rtt: GaugeVec,
    beats_received: IntCounterVec,
    beats_lost: IntCounterVec,
    heartbeats_rejected: IntCounterVec,
    frames_sent: IntCounterVec,
    requests_answered: IntCounterVec,
    requests_not_owned: IntCounterVec,
    conflicts: IntCounterVec,
    warnings: IntGaugeVec,
    histogram_descs: Vec<Desc>,
}

/// The announcer's duration histograms: name, help.
const L2_HISTOGRAMS: [(&str, &str); 3] = [
    (
        "ferrolb_l2_detection_to_claim_seconds",
        "From noticing that a group needs this node (owner dead, hand-off offered) to claiming it.",
    ),
    (
        "ferrolb_l2_claim_to_first_announce_seconds",
        "From claiming a group to its first gratuitous ARP / unsolicited NA leaving the socket.",
    ),
    (
        "ferrolb_l2_last_beat_to_claim_seconds",
        "From the previous (dead) owner's last heartbeat heard here to this node's claim.",
    ),
];

impl L2Collector {
    fn new(view: watch::Receiver<L2View>) -> Result<L2Collector, prometheus::Error> {
        let histogram_descs = L2_HISTOGRAMS
            .iter()
            .map(|(name, help)| {
                Desc::new(
                    (*name).to_string(),
                    (*help).to_string(),
                    Vec::new(),
                    std::collections::HashMap::new(),
                )
            })
            .collect::<Result<Vec<Desc>, prometheus::Error>>()?;
        Ok(L2Collector {
            view,
            scrape: Mutex::new(()),
            running: gauge(
                "ferrolb_l2_running",
                "1 if the layer-2 announcer runs on this node.",
                &[],
            )?,
            group_owned: gauge(
                "ferrolb_l2_group_owned",
                "Per VIP group (its lowest address): 1 if this node owns it, else 0.",
                &["vip"],
            )?,
            owner_changes: counter(
                "ferrolb_l2_owner_changes_total",
                "Owner changes observed, by reason.",
                &["reason"],
            )?,
            member_alive: gauge(
                "ferrolb_l2_member_alive",
                "Per segment member: 1 if alive (or this node), else 0.",
                &["member"],
            )?,
            member_rtt: fgauge(
                "ferrolb_l2_member_rtt_seconds",
                "Heartbeat round-trip time to the member.",
                &["member"],
            )?,
            beats_received: counter(
                "ferrolb_l2_heartbeats_received_total",
                "Heartbeats received from the member.",
                &["member"],
            )?,
            beats_lost: counter(
                "ferrolb_l2_heartbeats_lost_total",
                "Heartbeats of the member that never arrived (sequence gaps).",
                &["member"],
            )?,
            heartbeats_rejected: counter(
                "ferrolb_l2_heartbeats_rejected_total",
                "Heartbeat frames refused, by why: bad_mac, replayed, malformed, other_segment, duplicate_node_id.",
                &["why"],
            )?,
            frames_sent: counter(
                "ferrolb_l2_frames_sent_total",
                "Frames sent, by type: heartbeat, arp_reply, neighbor_advert, gratuitous_arp, unsolicited_advert.",
                &["type"],
            )?,
            requests_answered: counter(
                "ferrolb_l2_requests_answered_total",
                "ARP requests and neighbor solicitations answered, per VIP.",
                &["vip"],
            )?,
            requests_not_owned: counter(
                "ferrolb_l2_requests_not_owned_total",
                "Requests for a VIP this node knows but does not own (its owner answers).",
                &[],
            )?,
            conflicts: counter(
                "ferrolb_l2_conflicting_responses_total",
                "Frames from another MAC claiming a VIP this node owns, per VIP and MAC.",
                &["vip", "mac"],
            )?,
            warnings: gauge(
                "ferrolb_l2_preflight_warnings",
                "Preflight warnings now (the kernel would answer too, a VIP outside every subnet of its interface, ...).",
                &[],
            )?,
            histogram_descs,
        })
    }

    fn parts(&self) -> Vec<&dyn Collector> {
        vec![
            &self.running,
            &self.group_owned,
            &self.owner_changes,
            &self.member_alive,
            &self.member_rtt,
            &self.beats_received,
            &self.beats_lost,
            &self.heartbeats_rejected,
            &self.frames_sent,
            &self.requests_answered,
            &self.requests_not_owned,
            &self.conflicts,
            &self.warnings,
        ]
    }

    /// Refills every vector from the view; returns the histograms to emit.
    fn fill(&self) -> Vec<MetricFamily> {
        let view = self.view.borrow().clone();
        for part in [
            &self.running,
            &self.group_owned,
            &self.member_alive,
            &self.warnings,
        ] {
            part.reset();
        }
        self.member_rtt.reset();
        for part in [
            &self.owner_changes,
            &self.beats_received,
            &self.beats_lost,
            &self.heartbeats_rejected,
            &self.frames_sent,
            &self.requests_answered,
            &self.requests_not_owned,
            &self.conflicts,
        ] {
            part.reset();
        }
        let Some(status) = view.announcer else {
            self.running.with_label_values(&[] as &[&str]).set(0);
            return Vec::new();
        };
        self.running.with_label_values(&[] as &[&str]).set(1);
        for (key, group) in &status.groups {
            if group.addresses.is_empty() {
                continue;
            }
            self.group_owned
                .with_label_values(&[key.to_string()])
                .set(i64::from(group.owned_here));
        }
        for (reason, n) in &status.owner_changes {
            self.owner_changes.with_label_values(&[*reason]).inc_by(*n);
        }
        for (member, m) in &status.members {
            use ferrolb_l2::MemberLiveness;
            let alive = matches!(m.liveness, MemberLiveness::Local | MemberLiveness::Alive);
            self.member_alive
                .with_label_values(&[member])
                .set(i64::from(alive));
            if let Some(rtt) = m.rtt {
                self.member_rtt
                    .with_label_values(&[member])
                    .set(rtt.as_secs_f64());
            }
            if !matches!(m.liveness, MemberLiveness::Local) {
                self.beats_received
                    .with_label_values(&[member])
                    .inc_by(m.beats_received);
                self.beats_lost
                    .with_label_values(&[member])
                    .inc_by(m.beats_lost);
            }
        }
        let c = &status.counters;
        for (why, n) in [
            ("bad_mac", c.heartbeats_bad_mac),
            ("replayed", c.heartbeats_replayed),
            ("malformed", c.heartbeats_malformed),
            ("other_segment", c.heartbeats_other_segment),
            ("duplicate_node_id", c.heartbeats_duplicate_node_id),
        ] {
            self.heartbeats_rejected.with_label_values(&[why]).inc_by(n);
        }
        for (kind, n) in [
            ("heartbeat", c.heartbeat_frames_sent),
            ("arp_reply", c.arp_replies_sent),
            ("neighbor_advert", c.neighbor_adverts_sent),
            ("gratuitous_arp", c.gratuitous_arps_sent),
            ("unsolicited_advert", c.unsolicited_adverts_sent),
        ] {
            self.frames_sent.with_label_values(&[kind]).inc_by(n);
        }
        for (vip, n) in &status.requests_answered {
            self.requests_answered
                .with_label_values(&[vip.to_string()])
                .inc_by(*n);
        }
        self.requests_not_owned
            .with_label_values(&[] as &[&str])
            .inc_by(c.requests_not_owned);
        for conflict in &status.conflicts {
            self.conflicts
                .with_label_values(&[conflict.vip.to_string(), conflict.mac.to_string()])
                .inc_by(conflict.count);
        }
        self.warnings
            .with_label_values(&[] as &[&str])
            .set(i64::try_from(status.warnings.len()).unwrap_or(i64::MAX));
        L2_HISTOGRAMS
            .iter()
            .zip([
                &status.detection_to_claim,
                &status.claim_to_first_announce,
                &status.last_beat_to_claim,
            ])
            .map(|((name, help), h)| histogram_family(name, help, h))
            .collect()
    }
}

/// A Prometheus histogram family from one of the announcer's histograms (its counts are per
/// bucket; Prometheus wants them cumulative).
fn histogram_family(name: &str, help: &str, h: &ferrolb_l2::DurationHistogram) -> MetricFamily {
    use prometheus::proto::{Bucket, Histogram as HistogramProto, Metric, MetricType};
    let mut cumulative = 0;
    let buckets: Vec<Bucket> = h
        .bounds
        .iter()
        .zip(&h.counts)
        .map(|(bound, n)| {
            cumulative += n;
            let mut b = Bucket::default();
            b.set_upper_bound(bound.as_secs_f64());
            b.set_cumulative_count(cumulative);
            b
        })
        .collect();
    let mut histogram = HistogramProto::default();
    histogram.set_sample_count(h.count);
    histogram.set_sample_sum(h.sum.as_secs_f64());
    histogram.set_bucket(buckets);
    let mut metric = Metric::default();
    metric.set_histogram(histogram);
    let mut family = MetricFamily::default();
    family.set_name(name.to_string());
    family.set_help(help.to_string());
    family.set_field_type(MetricType::HISTOGRAM);
    family.set_metric(vec![metric]);
    family
}

impl Collector for L2Collector {
    fn desc(&self) -> Vec<&Desc> {
        self.parts()
            .into_iter()
            .flat_map(|c| c.desc())
            .chain(self.histogram_descs.iter())
            .collect()
    }

    fn collect(&self) -> Vec<MetricFamily> {
        let _one_at_a_time = self.scrape.lock().unwrap_or_else(PoisonError::into_inner);
        let histograms = self.fill();
        self.parts()
            .into_iter()
            .flat_map(|c| c.collect())
            .chain(histograms)
            .collect()
    }
}
