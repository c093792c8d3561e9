//! What a peer is: its configuration, which of its fields define the session, and the status a
//! [`crate::Speaker`] reports for it.
//!
//! Validation here is only what the speaker itself needs to be safe (hold time, MD5 key length,
//! unique names and addresses); the user-facing rules live in the model crate.

use std::net::{IpAddr, Ipv4Addr, Ipv6Addr, SocketAddr};
use std::time::{Duration, SystemTime};

use crate::fsm::{Backoff, GracefulRestartConfig, Negotiated, SessionConfig, SessionError, State};
use crate::wire::{Family, MessageType};

/// BGP's well-known port.
pub const BGP_PORT: u16 = 179;

/// TTL for eBGP single-hop sessions: the peer must be directly connected (RFC 4271 §5.1.3).
pub const TTL_SINGLE_HOP: u32 = 1;
/// TTL for iBGP and eBGP multihop sessions.
pub const TTL_MULTIHOP: u32 = 255;

/// One BGP neighbor.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct PeerConfig {
    /// Unique key, e.g. the BGPPeer's name. Routes are set per name.
    pub name: String,
    pub address: IpAddr,
    pub port: u16,
    pub local_as: u32,
    pub peer_as: u32,
    pub router_id: Ipv4Addr,
    pub source_address: Option<IpAddr>,
    /// TCP MD5 signature key (RFC 2385), at most 80 bytes.
    pub password: Option<String>,
    /// Proposed hold time in seconds: 0 or at least 3.
    pub hold_time: u16,
    /// `None`: a third of the negotiated hold time.
    pub keepalive_time: Option<Duration>,
    pub connect_retry: Backoff,
    /// eBGP to a peer that is not directly connected: TTL 255 instead of 1.
    pub ebgp_multihop: bool,
    /// Only accept the peer's connection, never connect.
    pub passive: bool,
    pub graceful_restart: Option<GracefulRestartConfig>,
    /// Families offered in the OPEN.
    pub families: Vec<Family>,
    pub extended_message: bool,
    /// Next hop for IPv4 routes instead of the session's local IPv4 address.
    pub next_hop_v4: Option<Ipv4Addr>,
    /// Next hop for IPv6 routes instead of the session's local IPv6 address.
    pub next_hop_v6: Option<Ipv6Addr>,
}

impl PeerConfig {
    /// A peer with the defaults: port 179, hold time 90 s, IPv4 and IPv6 unicast, active and
    /// passive, no password, no graceful restart.
    pub fn new(
        name: impl Into<String>,
        address: IpAddr,
        local_as: u32,
        peer_as: u32,
        router_id: Ipv4Addr,
    ) -> PeerConfig {
        PeerConfig {
            name: name.into(),
            address,
            port: BGP_PORT,
            local_as,
            peer_as,
            router_id,
            source_address: None,
            password: None,
            hold_time: 90,
            keepalive_time: None,
            connect_retry: Backoff::default(),
            ebgp_multihop: false,
            passive: false,
            graceful_restart: None,
            families: vec![Family::IPV4_UNICAST, Family::IPV6_UNICAST],
            extended_message: true,
            next_hop_v4: None,
            next_hop_v6: None,
        }
    }

    pub fn is_ibgp(&self) -> bool {
        self.local_as == self.peer_as
    }

    pub fn socket_addr(&self) -> SocketAddr {
        SocketAddr::new(self.address, self.port)
    }

    /// IP TTL for the session's packets.
    pub fn ttl(&self) -> u32 {
        if self.is_ibgp() || self.ebgp_multihop {
            TTL_MULTIHOP
        } else {
            TTL_SINGLE_HOP
        }
    }

    /// The fields whose change from `self` to `new` needs a new session: everything that goes
    /// into the OPEN or the TCP connection. Keepalive interval, connect backoff and next hops
    /// are applied to the live session. Empty means no reset.
    pub fn session_changes(&self, new: &PeerConfig) -> Vec<&'static str> {
        let mut changed = Vec::new();
        let mut check = |differs: bool, field: &'static str| {
            if differs {
                changed.push(field);
            }
        };
        check(self.address != new.address, "address");
        check(self.port != new.port, "port");
        check(self.local_as != new.local_as, "local AS");
        check(self.peer_as != new.peer_as, "peer AS");
        check(self.router_id != new.router_id, "router id");
        check(self.source_address != new.source_address, "source address");
        check(self.password != new.password, "password");
        check(self.hold_time != new.hold_time, "hold time");
        check(self.ebgp_multihop != new.ebgp_multihop, "eBGP multihop");
        check(self.passive != new.passive, "passive mode");
        check(
            self.graceful_restart != new.graceful_restart,
            "graceful restart",
        );
        check(self.families != new.families, "address families");
        check(
            self.extended_message != new.extended_message,
            "extended messages",
        );
        changed
    }

    /// Whether changing from `self` to `new` needs a new session.
    pub fn needs_reset(&self, new: &PeerConfig) -> bool {
        !self.session_changes(new).is_empty()
    }

    /// Checks what would make the session impossible to run.
    pub fn validate(&self) -> Result<(), PeerConfigError> {
        let err = |reason: String| PeerConfigError {
            peer: self.name.clone(),
            reason,
        };
        if self.name.is_empty() {
            return Err(err("peer name is empty".into()));
        }
        if self.hold_time == 1 || self.hold_time == 2 {
            return Err(err(format!(
                "hold time {}s: must be 0 or at least 3 seconds (RFC 4271 §4.2)",
                self.hold_time
            )));
        }
        if self.local_as == 0 || self.peer_as == 0 {
            return Err(err("AS number 0 is reserved (RFC 7607)".into()));
        }
        if self.router_id.is_unspecified() {
            return Err(err("router id 0.0.0.0 is not allowed (RFC 6286)".into()));
        }
        if self.password.as_ref().is_some_and(|p| p.len() > 80) {
            return Err(err("TCP MD5 password is longer than 80 bytes".into()));
        }
        if self.port == 0 {
            return Err(err("peer port 0".into()));
        }
        if self.families.is_empty() {
            return Err(err("no address family enabled".into()));
        }
        if let Some(gr) = &self.graceful_restart
            && gr.restart_time > 4095
        {
            return Err(err(format!(
                "graceful restart time {}s exceeds 4095 (RFC 4724 §3)",
                gr.restart_time
            )));
        }
        Ok(())
    }

    /// The state machine's view of this peer (for driving [`crate::fsm::Fsm`] directly).
    pub fn session_config(&self) -> SessionConfig {
        SessionConfig {
            local_as: self.local_as,
            peer_as: self.peer_as,
            router_id: self.router_id,
            hold_time: self.hold_time,
            keepalive_time: self.keepalive_time,
            families: self.families.clone(),
            graceful_restart: self.graceful_restart,
            passive: self.passive,
            connect_retry: self.connect_retry,
            extended_message: self.extended_message,
            jitter_seed: jitter_seed(&self.name, self.address),
        }
    }
}

fn jitter_seed(name: &str, address: IpAddr) -> u64 {
    // FNV-1a: stable across runs and platforms, unlike std's RandomState.
    let mut h: u64 = 0xcbf2_9ce4_8422_2325;
    let addr = address.to_string();
    for b in name.bytes().chain(addr.bytes()) {
        h ^= u64::from(b);
        h = h.wrapping_mul(0x0000_0100_0000_01b3);
    }
    h
}

#[derive(Clone, Debug, PartialEq, Eq, thiserror::Error)]
#[error("peer {peer}: {reason}")]
pub struct PeerConfigError {
    pub peer: String,
    pub reason: String,
}

/// Messages counted by type.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct MessageCounters {
    pub open: u64,
    pub update: u64,
    pub notification: u64,
    pub keepalive: u64,
    pub route_refresh: u64,
}

impl MessageCounters {
    pub fn count(&mut self, t: MessageType) {
        let c = match t {
            MessageType::Open => &mut self.open,
            MessageType::Update => &mut self.update,
            MessageType::Notification => &mut self.notification,
            MessageType::Keepalive => &mut self.keepalive,
            MessageType::RouteRefresh => &mut self.route_refresh,
        };
        *c += 1;
    }

    pub fn total(&self) -> u64 {
        self.open + self.update + self.notification + self.keepalive + self.route_refresh
    }
}

/// The last thing that went wrong with a session.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct LastError {
    pub at: SystemTime,
    pub error: SessionError,
}

/// A NOTIFICATION and when it went or came.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct LastNotification {
    pub at: SystemTime,
    pub notification: crate::wire::Notification,
}

/// Everything the speaker knows about one peer, for status APIs and tests.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct PeerStatus {
    pub name: String,
    pub peer: SocketAddr,
    pub local_as: u32,
    pub peer_as: u32,
    pub state: State,
    /// When the session last reached Established (None unless Established now).
    pub established_at: Option<SystemTime>,
    /// How many times the session left Established.
    pub flaps: u64,
    pub last_error: Option<LastError>,
    /// The last NOTIFICATION we sent, kept even after a later error replaces `last_error`.
    pub last_notification_sent: Option<LastNotification>,
    /// The last NOTIFICATION the peer sent us, kept likewise.
    pub last_notification_received: Option<LastNotification>,
    /// The last connection attempt's failure (refused, unreachable, ...), cleared on success.
    pub last_connect_error: Option<String>,
    pub messages_sent: MessageCounters,
    pub messages_received: MessageCounters,
    pub prefixes_desired: usize,
    pub prefixes_advertised_v4: usize,
    pub prefixes_advertised_v6: usize,
    /// Prefixes the peer currently announces to us (counted, never installed).
    pub prefixes_received: usize,
    pub local_address: Option<SocketAddr>,
    pub negotiated: Option<Negotiated>,
    /// Families with desired routes that this session cannot carry, and why.
    pub unsendable: Vec<(Family, String)>,
    /// Whether the initial table (up to End-of-RIB) has been sent on this session.
    pub initial_sync_done: bool,
}

impl PeerStatus {
    /// The status of a peer that has not connected yet.
    pub fn new(config: &PeerConfig) -> PeerStatus {
        PeerStatus {
            name: config.name.clone(),
            peer: config.socket_addr(),
            local_as: config.local_as,
            peer_as: config.peer_as,
            state: State::Idle,
            established_at: None,
            flaps: 0,
            last_error: None,
            last_notification_sent: None,
            last_notification_received: None,
            last_connect_error: None,
            messages_sent: MessageCounters::default(),
            messages_received: MessageCounters::default(),
            prefixes_desired: 0,
            prefixes_advertised_v4: 0,
            prefixes_advertised_v6: 0,
            prefixes_received: 0,
            local_address: None,
            negotiated: None,
            unsendable: Vec::new(),
            initial_sync_done: false,
        }
    }

    /// Time since the session reached Established, if it is Established.
    pub fn uptime(&self, now: SystemTime) -> Option<Duration> {
        self.established_at.and_then(|t| now.duration_since(t).ok())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn base() -> PeerConfig {
        PeerConfig::new(
            "rtr",
            "192.0.2.1".parse().unwrap(),
            4_200_000_000,
            64512,
            Ipv4Addr::new(192, 0, 2, 11),
        )
    }

    #[test]
    fn defaults_match_what_routers_expect() {
        let p = base();
        assert_eq!(p.port, 179);
        assert_eq!(p.hold_time, 90);
        assert_eq!(p.families, vec![Family::IPV4_UNICAST, Family::IPV6_UNICAST]);
        assert!(p.validate().is_ok());
        assert!(!p.is_ibgp());
    }

    #[test]
    fn single_hop_ebgp_uses_ttl_one_and_multihop_or_ibgp_ttl_255() {
        let mut p = base();
        assert_eq!(p.ttl(), 1);
        p.ebgp_multihop = true;
        assert_eq!(p.ttl(), 255);
        let mut i = base();
        i.peer_as = i.local_as;
        assert_eq!(i.ttl(), 255);
    }

    #[test]
    fn hold_time_of_one_or_two_seconds_is_rejected() {
        for hold in [1, 2] {
            let p = PeerConfig {
                hold_time: hold,
                ..base()
            };
            assert_eq!(
                p.validate().unwrap_err().to_string(),
                format!(
                    "peer rtr: hold time {hold}s: must be 0 or at least 3 seconds (RFC 4271 §4.2)"
                )
            );
        }
        assert!(
            PeerConfig {
                hold_time: 0,
                ..base()
            }
            .validate()
            .is_ok()
        );
        assert!(
            PeerConfig {
                hold_time: 3,
                ..base()
            }
            .validate()
            .is_ok()
        );
    }

    #[test]
    fn impossible_sessions_are_rejected_with_the_reason() {
        let cases = [
            (
                PeerConfig {
                    local_as: 0,
                    ..base()
                },
                "AS number 0 is reserved (RFC 7607)",
            ),
            (
                PeerConfig {
                    router_id: Ipv4Addr::UNSPECIFIED,
                    ..base()
                },
                "router id 0.0.0.0 is not allowed (RFC 6286)",
            ),
            (
                PeerConfig {
                    password: Some("x".repeat(81)),
                    ..base()
                },
                "TCP MD5 password is longer than 80 bytes",
            ),
            (PeerConfig { port: 0, ..base() }, "peer port 0"),
            (
                PeerConfig {
                    families: vec![],
                    ..base()
                },
                "no address family enabled",
            ),
            (
                PeerConfig {
                    graceful_restart: Some(GracefulRestartConfig { restart_time: 5000 }),
                    ..base()
                },
                "graceful restart time 5000s exceeds 4095 (RFC 4724 §3)",
            ),
        ];
        for (p, reason) in cases {
            assert_eq!(p.validate().unwrap_err().reason, reason);
        }
    }

    #[test]
    fn local_only_fields_do_not_reset_the_session() {
        let old = base();
        let mut new = base();
        new.keepalive_time = Some(Duration::from_secs(5));
        new.connect_retry.max = Duration::from_secs(5);
        new.next_hop_v4 = Some(Ipv4Addr::new(192, 0, 2, 99));
        assert!(!old.needs_reset(&new));
    }

    #[test]
    fn every_session_defining_field_is_named_when_it_changes() {
        let old = base();
        let mut new = base();
        new.hold_time = 30;
        new.password = Some("s".into());
        new.peer_as = 64513;
        assert_eq!(
            old.session_changes(&new),
            vec!["peer AS", "password", "hold time"]
        );
        assert!(old.needs_reset(&new));
    }

    #[test]
    fn message_counters_count_by_type() {
        let mut c = MessageCounters::default();
        c.count(MessageType::Update);
        c.count(MessageType::Update);
        c.count(MessageType::Keepalive);
        assert_eq!((c.update, c.keepalive, c.total()), (2, 1, 3));
    }
}
