//! The agent's side of the gRPC status API: [`AgentStatusSource`] answers
//! `ferrolb_api_grpc::StatusSource` from the agent's [`AgentStatus`] and the BGP speaker's
//! [`SpeakerStatus`] watch channels, converting them into `ferrolb.v1` messages. The
//! conversions are public so that tests and other front ends see exactly what the API sends.

use std::collections::BTreeMap;
use std::time::{SystemTime, UNIX_EPOCH};

use ferrolb_allocator::{FamilyStats, PoolStats};
use ferrolb_api_grpc::StatusSource;
use ferrolb_api_grpc::pb;
use ferrolb_bgpd::fsm::SessionError;
use ferrolb_bgpd::fsm::State;
use ferrolb_bgpd::rib_out::RouteAttributes;
use ferrolb_bgpd::wire::Capability;
use ferrolb_bgpd::{LastError, MessageCounters};
use ferrolb_bgpd::{PeerStatus, SpeakerStatus};
use tokio::sync::watch;

use crate::agent::AgentStatus;
use crate::l2_shell::L2View;

/// A [`StatusSource`] over the agent's and the speaker's status channels.
pub struct AgentStatusSource {
    agent: watch::Receiver<AgentStatus>,
    speaker: watch::Receiver<SpeakerStatus>,
    l2: Option<watch::Receiver<L2View>>,
    changes: watch::Receiver<()>,
}

impl AgentStatusSource {
    /// Must run inside a Tokio runtime: it spawns the task that merges both channels into one
    /// change signal (it ends when both channels close).
    pub fn new(
        agent: watch::Receiver<AgentStatus>,
        speaker: watch::Receiver<SpeakerStatus>,
    ) -> AgentStatusSource {
        let (tx, changes) = watch::channel(());
        let mut a = agent.clone();
        let mut s = speaker.clone();
        tokio::spawn(async move {
            let (mut a_open, mut s_open) = (true, true);
            while a_open || s_open {
                tokio::select! {
                    r = a.changed(), if a_open => a_open = r.is_ok(),
                    r = s.changed(), if s_open => s_open = r.is_ok(),
                }
                tx.send_replace(());
            }
        });
        AgentStatusSource {
            agent,
            speaker,
            l2: None,
            changes,
        }
    }

    /// Answers `ListL2` from the layer-2 shell's view too (without it, only the plan's
    /// groups are shown).
    pub fn with_l2(mut self, view: watch::Receiver<L2View>) -> AgentStatusSource {
        self.l2 = Some(view);
        self
    }
}

impl StatusSource for AgentStatusSource {
    fn sessions(&self) -> pb::ListSessionsResponse {
        let agent = self.agent.borrow().clone();
        sessions(&agent, &self.speaker.borrow(), SystemTime::now())
    }

    fn routes(&self) -> pb::ListRoutesResponse {
        let agent = self.agent.borrow().clone();
        routes(&agent, &self.speaker.borrow())
    }

    fn services(&self) -> pb::ListServicesResponse {
        services(&self.agent.borrow())
    }

    fn pools(&self) -> pb::ListPoolsResponse {
        pb::ListPoolsResponse {
            pools: self.agent.borrow().pools.iter().map(pool).collect(),
        }
    }

    fn config(&self) -> pb::ConfigState {
        config(&self.agent.borrow())
    }

    fn l2(&self) -> pb::ListL2Response {
        let agent = self.agent.borrow().clone();
        let view = self
            .l2
            .as_ref()
            .map(|v| v.borrow().clone())
            .unwrap_or_default();
        l2(&agent, &view)
    }

    fn changes(&self) -> watch::Receiver<()> {
        self.changes.clone()
    }
}

/// The API's view of layer 2: the plan's groups, with the announcer's verdicts when it runs.
pub fn l2(agent: &AgentStatus, view: &L2View) -> pb::ListL2Response {
    use ferrolb_l2::{MemberLiveness, NodePhase};
    let announcer = view.announcer.as_ref();
    let mut groups = Vec::new();
    let mut keys: std::collections::BTreeSet<std::net::IpAddr> =
        agent.plan.l2.groups.keys().copied().collect();
    if let Some(status) = announcer {
        keys.extend(status.groups.keys().copied());
    }
    for key in keys {
        let planned = agent.plan.l2.groups.get(&key);
        let live = announcer.and_then(|a| a.groups.get(&key));
        let mut addresses: Vec<String> = match (planned, live) {
            (Some(p), _) => p.addresses.iter().map(ToString::to_string).collect(),
            (None, Some(l)) => l.addresses.iter().map(ToString::to_string).collect(),
            (None, None) => Vec::new(),
        };
        if addresses.is_empty() {
            addresses.push(key.to_string());
        }
        let (interface, interface_problem) = match view.interfaces.get(&key) {
            Some(Ok(i)) => (i.clone(), String::new()),
            Some(Err(e)) => (String::new(), e.to_string()),
            None => (
                live.and_then(|l| l.interface.clone()).unwrap_or_default(),
                String::new(),
            ),
        };
        let answered: u64 = announcer.map_or(0, |a| {
            planned
                .map(|p| p.addresses.iter().copied().collect::<Vec<_>>())
                .unwrap_or_else(|| vec![key])
                .iter()
                .filter_map(|addr| a.requests_answered.get(addr))
                .sum()
        });
        groups.push(pb::L2Group {
            key: key.to_string(),
            addresses,
            services: planned
                .map(|p| p.services.iter().map(ToString::to_string).collect())
                .unwrap_or_default(),
            eligible: planned.is_some_and(|p| p.eligible),
            interface,
            interface_problem,
            owner: live.and_then(|l| l.owner.clone()).unwrap_or_default(),
            owned_here: live.is_some_and(|l| l.owned_here),
            epoch: live.map_or(0, |l| l.epoch),
            provisional: live.is_some_and(|l| l.provisional),
            since_unix_ms: live.and_then(|l| l.since).map_or(0, unix_ms),
            reason: live
                .and_then(|l| l.reason.as_ref())
                .map(owner_reason)
                .unwrap_or_default(),
            handoff_to: live.and_then(|l| l.handoff_to.clone()).unwrap_or_default(),
            not_owner: live
                .map(|l| {
                    l.not_owner
                        .iter()
                        .map(|(node, why)| pb::L2NotOwner {
                            node: node.clone(),
                            reason: not_owner_reason(why),
                        })
                        .collect()
                })
                .unwrap_or_default(),
            requests_answered: answered,
        });
    }
    let members = announcer
        .map(|a| {
            a.members
                .iter()
                .map(|(node, m)| pb::L2Member {
                    node: node.clone(),
                    liveness: match m.liveness {
                        MemberLiveness::Local => "local",
                        MemberLiveness::Alive => "alive",
                        MemberLiveness::Joining => "joining",
                        MemberLiveness::Dead => "dead",
                    }
                    .to_string(),
                    mac: m.mac.map(|m| m.to_string()).unwrap_or_default(),
                    interface: m.interface.clone().unwrap_or_default(),
                    incarnation: m.incarnation,
                    last_heard_unix_ms: m.last_heard.map_or(0, unix_ms),
                    rtt_micros: m
                        .rtt
                        .map_or(0, |d| u64::try_from(d.as_micros()).unwrap_or(u64::MAX)),
                    beats_received: m.beats_received,
                    beats_lost: m.beats_lost,
                    deaths: m.deaths,
                    listening: m.listening,
                    draining: m.draining,
                    eligible_groups: m.eligible_groups as u64,
                    owned_groups: m.owned_groups as u64,
                })
                .collect()
        })
        .unwrap_or_default();
    let mut warnings = agent.plan.l2.warnings.clone();
    if let Some(a) = announcer {
        warnings.extend(a.warnings.iter().map(ToString::to_string));
    }
    pb::ListL2Response {
        running: announcer.is_some(),
        node: announcer.map(|a| a.node_id.clone()).unwrap_or_default(),
        phase: announcer
            .map(|a| match a.phase {
                NodePhase::Listening { .. } => "listening",
                NodePhase::Active => "active",
                NodePhase::Draining { .. } => "draining",
            })
            .unwrap_or_default()
            .to_string(),
        problem: view.problem.clone().unwrap_or_default(),
        groups,
        members,
        warnings,
        conflicts: announcer
            .map(|a| {
                a.conflicts
                    .iter()
                    .map(|c| pb::L2Conflict {
                        vip: c.vip.to_string(),
                        mac: c.mac.to_string(),
                        interface: c.interface.clone(),
                        count: c.count,
                        last_seen_unix_ms: unix_ms(c.last_seen),
                        peer: c.peer.clone().unwrap_or_default(),
                    })
                    .collect()
            })
            .unwrap_or_default(),
        bind_refused: agent.l2_bind_refused.clone().unwrap_or_default(),
    }
}

/// `Elected`, `TookOverFromDead(n1)`, ...: the reason with the node it names.
pub fn owner_reason(reason: &ferrolb_l2::OwnerReason) -> String {
    use ferrolb_l2::OwnerReason as R;
    match reason {
        R::Elected => "Elected".into(),
        R::Sticky => "Sticky".into(),
        R::TookOverFromDead { previous } => format!("TookOverFromDead({previous})"),
        R::TookOverFromRestarted { previous } => format!("TookOverFromRestarted({previous})"),
        R::TookOverFromIneligible { previous } => format!("TookOverFromIneligible({previous})"),
        R::HandOff { from } => format!("HandOff({from})"),
        R::Drained { from } => format!("Drained({from})"),
        R::ConflictResolved { loser } => format!("ConflictResolved({loser})"),
    }
}

/// `OwnedBy(n2)`, `NotEligible(CarrierDown(eth0))`, `Dead`, ...
pub fn not_owner_reason(reason: &ferrolb_l2::NotOwnerReason) -> String {
    use ferrolb_l2::{Ineligible, NotOwnerReason as R};
    match reason {
        R::OwnedBy { owner } => format!("OwnedBy({owner})"),
        R::AssignedTo { node } => format!("AssignedTo({node})"),
        R::LostConflict { winner } => format!("LostConflict({winner})"),
        R::NotEligible(why) => format!(
            "NotEligible({})",
            match why {
                Ineligible::NotListed => "NotListed".to_string(),
                Ineligible::NotConfigured => "NotConfigured".to_string(),
                Ineligible::InterfaceUnknown { interface } =>
                    format!("InterfaceUnknown({interface})"),
                Ineligible::CarrierDown { interface } => format!("CarrierDown({interface})"),
            }
        ),
        R::Dead => "Dead".into(),
        R::Joining => "Joining".into(),
        R::Draining => "Draining".into(),
        R::Listening => "Listening".into(),
        R::NoCandidate => "NoCandidate".into(),
    }
}

/// Unix milliseconds, 0 for times before 1970.
pub fn unix_ms(t: SystemTime) -> i64 {
    t.duration_since(UNIX_EPOCH)
        .map(|d| i64::try_from(d.as_millis()).unwrap_or(i64::MAX))
        .unwrap_or(0)
}

fn counters(c: &MessageCounters) -> pb::MessageCounters {
    pb::MessageCounters {
        open: c.open,
        update: c.update,
        notification: c.notification,
        keepalive: c.keepalive,
        route_refresh: c.route_refresh,
        total: c.total(),
    }
}

/// The API's view of a session's last error.
pub fn session_error(e: &LastError) -> pb::SessionError {
    use pb::session_error::Kind;
    let (kind, notification) = match &e.error {
        SessionError::NotificationSent(n) => (Kind::NotificationSent, Some(n)),
        SessionError::NotificationReceived(n) => (Kind::NotificationReceived, Some(n)),
        SessionError::ConnectionClosed => (Kind::ConnectionClosed, None),
    };
    pb::SessionError {
        kind: kind.into(),
        notification: notification.map(|n| pb::Notification {
            code: n.code.into(),
            subcode: n.subcode.into(),
            text: n.to_string(),
            data: n.data.clone(),
        }),
        at_unix_ms: unix_ms(e.at),
        text: e.error.to_string(),
    }
}

/// A capability as operators know it: `graceful-restart(120s, R, N, 0 families)`, `fqdn`.
pub fn capability(c: &Capability) -> String {
    match c {
        Capability::Multiprotocol(f) => format!("multiprotocol({f})"),
        Capability::RouteRefresh => "route-refresh".into(),
        Capability::ExtendedMessage => "extended-message".into(),
        Capability::GracefulRestart(gr) => {
            let mut parts = vec![format!("{}s", gr.restart_time)];
            if gr.restart_state {
                parts.push("R".into());
            }
            if gr.notification {
                parts.push("N".into());
            }
            parts.push(format!("{} families", gr.families.len()));
            format!("graceful-restart({})", parts.join(", "))
        }
        Capability::FourOctetAs(asn) => format!("4-octet-as({asn})"),
        Capability::Unknown { code, .. } => {
            let name = match code {
                5 => "extended-nexthop",
                9 => "bgp-role",
                69 => "add-path",
                70 => "enhanced-route-refresh",
                71 => "long-lived-graceful-restart",
                73 => "fqdn",
                74 => "bfd",
                75 => "software-version",
                128 => "route-refresh-old",
                _ => "",
            };
            if name.is_empty() {
                format!("code-{code}")
            } else {
                format!("{name}({code})")
            }
        }
    }
}

/// The API's view of one session.
pub fn session(p: &PeerStatus, now: SystemTime) -> pb::Session {
    let established = p.state == State::Established;
    pb::Session {
        name: p.name.clone(),
        peer_address: p.peer.ip().to_string(),
        peer_port: p.peer.port().into(),
        local_address: p.local_address.map(|a| a.to_string()).unwrap_or_default(),
        local_as: p.local_as,
        peer_as: p.peer_as,
        state: p.state.to_string(),
        established,
        uptime_seconds: p.uptime(now).map(|d| d.as_secs()).unwrap_or(0),
        established_at_unix_ms: p.established_at.map(unix_ms).unwrap_or(0),
        flaps: p.flaps,
        last_error: p.last_error.as_ref().map(session_error),
        last_connect_error: p.last_connect_error.clone().unwrap_or_default(),
        messages_sent: Some(counters(&p.messages_sent)),
        messages_received: Some(counters(&p.messages_received)),
        prefixes_desired: p.prefixes_desired as u64,
        prefixes_advertised_v4: p.prefixes_advertised_v4 as u64,
        prefixes_advertised_v6: p.prefixes_advertised_v6 as u64,
        prefixes_received: p.prefixes_received as u64,
        negotiated: p.negotiated.as_ref().map(|n| pb::Negotiated {
            peer_router_id: n.peer_router_id.to_string(),
            peer_as: n.peer_as,
            hold_time_seconds: n.hold_time.into(),
            keepalive_seconds: u32::try_from(n.keepalive.as_secs()).unwrap_or(u32::MAX),
            four_octet_as: n.four_octet_as,
            families: n.families.iter().map(ToString::to_string).collect(),
            route_refresh: n.route_refresh,
            extended_message: n.extended_message,
            graceful_restart: n.graceful_restart,
            peer_capabilities: n.peer_capabilities.iter().map(capability).collect(),
        }),
        unsendable: p
            .unsendable
            .iter()
            .map(|(f, why)| format!("{f}: {why}"))
            .collect(),
        initial_sync_done: p.initial_sync_done,
    }
}

/// Every session, and the selected BGPPeers without one (planner skips and setup errors).
pub fn sessions(
    agent: &AgentStatus,
    speaker: &SpeakerStatus,
    now: SystemTime,
) -> pb::ListSessionsResponse {
    let mut without: BTreeMap<&String, String> = agent
        .plan
        .bgp
        .skipped_peers
        .iter()
        .map(|(peer, skip)| (peer, skip.to_string()))
        .collect();
    without.extend(
        agent
            .peer_errors
            .iter()
            .map(|(peer, p)| (peer, p.to_string())),
    );
    pb::ListSessionsResponse {
        sessions: speaker.peers.values().map(|p| session(p, now)).collect(),
        peers_without_session: without
            .into_iter()
            .map(|(peer, reason)| pb::PeerProblem {
                peer: peer.clone(),
                reason,
            })
            .collect(),
    }
}

fn route(prefix: String, a: &RouteAttributes) -> pb::Route {
    pb::Route {
        prefix,
        local_pref: a.local_pref,
        med: a.med,
        communities: a.communities.iter().map(ToString::to_string).collect(),
        large_communities: a
            .large_communities
            .iter()
            .map(ToString::to_string)
            .collect(),
        services: Vec::new(),
        advertisements: Vec::new(),
    }
}

/// The routes planned per session, with the Services and advertisements behind each, and the
/// speaker's counts of what is on the wire.
pub fn routes(agent: &AgentStatus, speaker: &SpeakerStatus) -> pb::ListRoutesResponse {
    // (peer, prefix) -> (services, advertisements)
    let mut behind: BTreeMap<(String, String), (Vec<String>, Vec<String>)> = BTreeMap::new();
    for (key, service) in &agent.plan.services {
        for a in &service.announcements {
            let entry = behind
                .entry((a.peer.clone(), a.prefix.to_string()))
                .or_default();
            let key = key.to_string();
            if !entry.0.contains(&key) {
                entry.0.push(key);
            }
            if !entry.1.contains(&a.advertisement) {
                entry.1.push(a.advertisement.clone());
            }
        }
    }
    let mut names: Vec<&String> = agent.plan.bgp.sessions.keys().collect();
    names.extend(
        speaker
            .peers
            .keys()
            .filter(|n| !agent.plan.bgp.sessions.contains_key(*n)),
    );
    names.sort();
    let peers = names
        .into_iter()
        .map(|name| {
            let status = speaker.peers.get(name);
            let routes = agent
                .plan
                .bgp
                .sessions
                .get(name)
                .map(|s| {
                    s.routes
                        .iter()
                        .map(|(prefix, attrs)| {
                            let prefix = prefix.to_string();
                            let mut r = route(prefix.clone(), attrs);
                            if let Some((services, advs)) = behind.get(&(name.clone(), prefix)) {
                                r.services = services.clone();
                                r.advertisements = advs.clone();
                            }
                            r
                        })
                        .collect()
                })
                .unwrap_or_default();
            pb::PeerRoutes {
                peer: name.clone(),
                state: status.map(|p| p.state.to_string()).unwrap_or_default(),
                prefixes_advertised_v4: status.map_or(0, |p| p.prefixes_advertised_v4 as u64),
                prefixes_advertised_v6: status.map_or(0, |p| p.prefixes_advertised_v6 as u64),
                routes,
            }
        })
        .collect();
    pb::ListRoutesResponse { peers }
}

/// Every Service the agent handles.
pub fn services(agent: &AgentStatus) -> pb::ListServicesResponse {
    pb::ListServicesResponse {
        services: agent
            .plan
            .services
            .iter()
            .map(|(key, s)| pb::Service {
                namespace: key.namespace.clone(),
                name: key.name.clone(),
                addresses: s.addresses.iter().map(ToString::to_string).collect(),
                pool: s.pool.clone().unwrap_or_default(),
                announced: s.is_announced(),
                announcements: s
                    .announcements
                    .iter()
                    .map(|a| pb::Announcement {
                        peer: a.peer.clone(),
                        prefix: a.prefix.to_string(),
                        advertisement: a.advertisement.clone(),
                    })
                    .collect(),
                reasons: s.reasons.iter().map(ToString::to_string).collect(),
                l2_advertisements: s.l2_advertisements.clone(),
                l2_group: s.l2_group.map(|g| g.to_string()).unwrap_or_default(),
            })
            .collect(),
    }
}

fn family(f: &FamilyStats) -> pb::FamilyUsage {
    pb::FamilyUsage {
        total: f.total.to_string(),
        in_use: f.in_use.to_string(),
        available: f.available.to_string(),
        used_ratio: if f.total == 0 {
            0.0
        } else {
            f.in_use as f64 / f.total as f64
        },
    }
}

/// One pool's exact counts.
pub fn pool(p: &PoolStats) -> pb::Pool {
    pb::Pool {
        name: p.pool.to_string(),
        ipv4: Some(family(&p.ipv4)),
        ipv6: Some(family(&p.ipv6)),
    }
}

/// The configuration folder's state.
pub fn config(agent: &AgentStatus) -> pb::ConfigState {
    pb::ConfigState {
        generation: agent.generation,
        stale: !agent.rejected.is_empty(),
        rejected: agent.rejected.clone(),
        router_id: agent.router_id.map(|r| r.to_string()).unwrap_or_default(),
        last_apply_micros: agent
            .last_apply
            .map(|d| u64::try_from(d.as_micros()).unwrap_or(u64::MAX))
            .unwrap_or(0),
        peer_errors: agent
            .peer_errors
            .iter()
            .map(|(peer, problem)| pb::PeerProblem {
                peer: peer.clone(),
                reason: problem.to_string(),
            })
            .collect(),
        peer_warnings: agent
            .peer_warnings
            .iter()
            .flat_map(|(peer, ws)| {
                ws.iter().map(|w| pb::PeerProblem {
                    peer: peer.clone(),
                    reason: w.to_string(),
                })
            })
            .collect(),
        bound_addresses: agent.bound.iter().map(ToString::to_string).collect(),
    }
}

#[cfg(test)]
mod tests {
    use std::time::Duration;

    use ferrolb_bgpd::wire::Notification;

    use super::*;

    #[test]
    fn a_received_notification_keeps_its_code_subcode_and_text() {
        let at = UNIX_EPOCH + Duration::from_millis(1_700_000_000_123);
        let e = session_error(&LastError {
            at,
            error: SessionError::NotificationReceived(Notification {
                code: 6,
                subcode: 2,
                data: Vec::new(),
            }),
        });
        assert_eq!(
            e.kind,
            i32::from(pb::session_error::Kind::NotificationReceived)
        );
        let n = e.notification.unwrap();
        assert_eq!((n.code, n.subcode), (6, 2));
        assert_eq!(n.text, "Cease/Administrative Shutdown (6/2)");
        assert_eq!(e.at_unix_ms, 1_700_000_000_123);
        assert_eq!(
            e.text,
            "received NOTIFICATION Cease/Administrative Shutdown (6/2)"
        );
    }

    #[test]
    fn pool_counts_beyond_64_bits_stay_exact() {
        let p = pool(&PoolStats {
            pool: "v6".into(),
            ipv4: FamilyStats {
                total: 0,
                in_use: 0,
                available: 0,
            },
            ipv6: FamilyStats {
                total: u128::MAX,
                in_use: 1 << 70,
                available: u128::MAX - (1 << 70),
            },
        });
        let v6 = p.ipv6.unwrap();
        assert_eq!(v6.total, u128::MAX.to_string());
        assert_eq!(v6.in_use, "1180591620717411303424");
        assert_eq!(p.ipv4.unwrap().used_ratio, 0.0);
    }

    #[test]
    fn a_refused_read_makes_the_config_stale_and_lists_its_problems() {
        let agent = AgentStatus {
            generation: 4,
            rejected: vec!["a.yaml: bad".into()],
            last_apply: Some(Duration::from_micros(1500)),
            ..AgentStatus::default()
        };
        let c = config(&agent);
        assert_eq!((c.generation, c.stale), (4, true));
        assert_eq!(c.rejected, ["a.yaml: bad"]);
        assert_eq!(c.last_apply_micros, 1500);
    }
}
