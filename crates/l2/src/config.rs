//! What the caller tells the announcer: its own configuration ([`L2Config`] with timers,
//! announcement schedule and rebalance policy), the facts about each announce interface
//! ([`InterfaceFacts`], from netlink in the caller) and the groups of VIPs this node may own
//! ([`VipGroup`]). This module validates them; it does not act on them.

use std::collections::{BTreeMap, BTreeSet};
use std::net::IpAddr;
use std::time::Duration;

use ipnet::IpNet;

use crate::wire::MacAddr;
use crate::wire::heartbeat::{MAX_NODE_ID_LEN, MAX_SEGMENT_LEN, MIN_KEY_LEN};

/// The unit of ownership: addresses that always move together (a dual-stack Service's IPv4 and
/// IPv6 VIPs, or several Services sharing one IP), answered on one local interface.
#[derive(Clone, Debug, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct VipGroup {
    /// The group's name on the wire and in elections: its lowest address. Every node must form
    /// the same groups, so the caller derives groups from cluster-wide data only.
    pub key: IpAddr,
    pub addresses: BTreeSet<IpAddr>,
    /// The local interface to answer on (names may differ between nodes).
    pub interface: String,
}

impl VipGroup {
    /// A group of `addresses` keyed by the lowest of them; `None` when `addresses` is empty.
    pub fn new(
        addresses: impl IntoIterator<Item = IpAddr>,
        interface: impl Into<String>,
    ) -> Option<VipGroup> {
        let addresses: BTreeSet<IpAddr> = addresses.into_iter().collect();
        let key = *addresses.first()?;
        Some(VipGroup {
            key,
            addresses,
            interface: interface.into(),
        })
    }
}

/// What the caller knows about an announce interface (from rtnetlink).
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct InterfaceFacts {
    pub name: String,
    pub ifindex: u32,
    pub mac: MacAddr,
    /// Operational carrier. Losing it makes this node ineligible for the interface's groups at
    /// once.
    pub carrier_up: bool,
    /// The connected subnets on the interface; a VIP outside all of them draws a warning.
    pub subnets: Vec<IpNet>,
}

/// Heartbeat and ownership timers.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Timers {
    /// How often each node beats.
    pub heartbeat_interval: Duration,
    /// A peer is dead after this many intervals without a beat.
    pub dead_after_misses: u32,
    /// A peer that was dead (or restarted) counts as alive again only after beating without a
    /// gap for this long: one flap moves its VIPs once, not back and forth.
    pub rejoin_hold: Duration,
    /// How long a starting node listens before claiming anything; `None` is twice the dead
    /// interval, enough to hear every live peer's claims.
    pub listen_for: Option<Duration>,
    /// How long an owner waits for the target of a hand-off to claim before it gives up (a
    /// rebalance is cancelled; a drain picks the target again).
    pub handoff_timeout: Duration,
    /// A dead peer is forgotten after this long.
    pub forget_after: Duration,
}

impl Default for Timers {
    fn default() -> Self {
        Timers {
            heartbeat_interval: Duration::from_millis(100),
            dead_after_misses: 3,
            rejoin_hold: Duration::from_secs(2),
            listen_for: None,
            handoff_timeout: Duration::from_secs(1),
            forget_after: Duration::from_secs(600),
        }
    }
}

impl Timers {
    pub fn dead_after(&self) -> Duration {
        self.heartbeat_interval * self.dead_after_misses
    }

    pub fn listen_period(&self) -> Duration {
        self.listen_for.unwrap_or(self.dead_after() * 2)
    }
}

/// When gratuitous ARPs / unsolicited NAs go out after this node takes a group.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct AnnounceConfig {
    /// Offsets from the claim; the first should be zero.
    pub burst: Vec<Duration>,
    /// Re-announce every owned group this often after the burst (for routers and switches
    /// with long caches); `None` disables it.
    pub refresh: Option<Duration>,
}

impl Default for AnnounceConfig {
    /// 0, 50 and 250 ms catch a lost first frame quickly; 1, 2 and 4 s cover a client that was
    /// busy or a switch port that was still learning.
    fn default() -> Self {
        AnnounceConfig {
            burst: [0, 50, 250, 1000, 2000, 4000]
                .into_iter()
                .map(Duration::from_millis)
                .collect(),
            refresh: None,
        }
    }
}

/// Planned, rate-limited moves that even out ownership after nodes join.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct RebalanceConfig {
    pub enabled: bool,
    /// A node must have been alive this long before it is given groups by a rebalance.
    pub settle: Duration,
    /// At most one group moves per interval.
    pub interval: Duration,
}

impl Default for RebalanceConfig {
    fn default() -> Self {
        RebalanceConfig {
            enabled: true,
            settle: Duration::from_secs(60),
            interval: Duration::from_secs(10),
        }
    }
}

/// Everything an announcer needs to start.
#[derive(Clone, PartialEq, Eq)]
pub struct L2Config {
    /// This node's name on the segment (1–63 octets of UTF-8, unique on the segment).
    pub node_id: String,
    /// The segment (cluster) name: beats of another segment are ignored, so two clusters can
    /// share a link without electing across each other.
    pub segment: String,
    /// The segment's heartbeat key (at least 16 octets; 32 random octets recommended).
    pub key: Vec<u8>,
    /// This run's incarnation; must grow across restarts (the start time in ns is fine).
    pub incarnation: u64,
    pub timers: Timers,
    pub announce: AnnounceConfig,
    pub rebalance: RebalanceConfig,
}

impl std::fmt::Debug for L2Config {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("L2Config")
            .field("node_id", &self.node_id)
            .field("segment", &self.segment)
            .field("key", &"<redacted>")
            .field("incarnation", &self.incarnation)
            .field("timers", &self.timers)
            .field("announce", &self.announce)
            .field("rebalance", &self.rebalance)
            .finish()
    }
}

impl L2Config {
    /// A configuration with default timers; the incarnation is the current wall-clock time.
    pub fn new(node_id: impl Into<String>, segment: impl Into<String>, key: Vec<u8>) -> L2Config {
        let incarnation = std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .map_or(1, |d| u64::try_from(d.as_nanos()).unwrap_or(u64::MAX));
        L2Config {
            node_id: node_id.into(),
            segment: segment.into(),
            key,
            incarnation,
            timers: Timers::default(),
            announce: AnnounceConfig::default(),
            rebalance: RebalanceConfig::default(),
        }
    }

    pub fn validate(&self) -> Result<(), ConfigError> {
        if self.node_id.is_empty() || self.node_id.len() > MAX_NODE_ID_LEN {
            return Err(ConfigError::NodeId(self.node_id.clone()));
        }
        if self.segment.len() > MAX_SEGMENT_LEN {
            return Err(ConfigError::Segment(self.segment.clone()));
        }
        if self.key.len() < MIN_KEY_LEN {
            return Err(ConfigError::KeyTooShort {
                len: self.key.len(),
            });
        }
        let t = &self.timers;
        if t.heartbeat_interval < Duration::from_millis(10)
            || t.heartbeat_interval > Duration::from_secs(10)
        {
            return Err(ConfigError::Timer {
                name: "heartbeat_interval",
                why: "must be between 10 ms and 10 s",
            });
        }
        if t.dead_after_misses < 2 {
            return Err(ConfigError::Timer {
                name: "dead_after_misses",
                why: "must be at least 2 (one lost beat must not kill a peer)",
            });
        }
        if t.handoff_timeout < t.heartbeat_interval * 2 {
            return Err(ConfigError::Timer {
                name: "handoff_timeout",
                why: "must be at least two heartbeat intervals",
            });
        }
        if self.rebalance.enabled && self.rebalance.interval.is_zero() {
            return Err(ConfigError::Timer {
                name: "rebalance.interval",
                why: "must be positive",
            });
        }
        if self
            .announce
            .refresh
            .is_some_and(|r| r < Duration::from_millis(100))
        {
            return Err(ConfigError::Timer {
                name: "announce.refresh",
                why: "must be at least 100 ms",
            });
        }
        Ok(())
    }
}

/// A configuration the announcer cannot run with.
#[derive(Clone, Debug, PartialEq, Eq, thiserror::Error)]
pub enum ConfigError {
    #[error("node id {0:?} must be 1 to 63 octets")]
    NodeId(String),
    #[error("segment id {0:?} must be at most 63 octets")]
    Segment(String),
    #[error("heartbeat key of {len} octets is shorter than 16")]
    KeyTooShort { len: usize },
    #[error("timer {name} {why}")]
    Timer {
        name: &'static str,
        why: &'static str,
    },
}

/// A group list or interface list the announcer refuses (nothing changes when it does).
#[derive(Clone, Debug, PartialEq, Eq, thiserror::Error)]
pub enum GroupError {
    #[error("group {key} has no addresses")]
    Empty { key: IpAddr },
    #[error("group key {key} is not its lowest address {lowest}")]
    KeyNotLowest { key: IpAddr, lowest: IpAddr },
    #[error(
        "group {key}: {address} cannot be a VIP (unspecified, multicast, broadcast or loopback)"
    )]
    NotUnicast { key: IpAddr, address: IpAddr },
    #[error("group {key} has no interface")]
    NoInterface { key: IpAddr },
    #[error("two groups have key {0}")]
    DuplicateKey(IpAddr),
    #[error("{address} is in groups {first} and {second}")]
    SharedAddress {
        address: IpAddr,
        first: IpAddr,
        second: IpAddr,
    },
    #[error("two interfaces are named {0}")]
    DuplicateInterface(String),
    #[error("interface {name} has MAC {mac}, which is not a unicast address")]
    InterfaceMac { name: String, mac: MacAddr },
}

/// Checks a group list and indexes it by key.
pub fn index_groups(groups: Vec<VipGroup>) -> Result<BTreeMap<IpAddr, VipGroup>, GroupError> {
    let mut by_key = BTreeMap::new();
    let mut owner_of: BTreeMap<IpAddr, IpAddr> = BTreeMap::new();
    for group in groups {
        let key = group.key;
        let Some(&lowest) = group.addresses.first() else {
            return Err(GroupError::Empty { key });
        };
        if lowest != key {
            return Err(GroupError::KeyNotLowest { key, lowest });
        }
        if group.interface.is_empty() {
            return Err(GroupError::NoInterface { key });
        }
        for &address in &group.addresses {
            if !is_vip_capable(address) {
                return Err(GroupError::NotUnicast { key, address });
            }
            if let Some(first) = owner_of.insert(address, key) {
                return Err(GroupError::SharedAddress {
                    address,
                    first,
                    second: key,
                });
            }
        }
        if by_key.insert(key, group).is_some() {
            return Err(GroupError::DuplicateKey(key));
        }
    }
    Ok(by_key)
}

/// Checks an interface list and indexes it by name.
pub fn index_interfaces(
    interfaces: Vec<InterfaceFacts>,
) -> Result<BTreeMap<String, InterfaceFacts>, GroupError> {
    let mut by_name = BTreeMap::new();
    for facts in interfaces {
        if !facts.mac.is_unicast() {
            return Err(GroupError::InterfaceMac {
                name: facts.name,
                mac: facts.mac,
            });
        }
        let name = facts.name.clone();
        if by_name.insert(name.clone(), facts).is_some() {
            return Err(GroupError::DuplicateInterface(name));
        }
    }
    Ok(by_name)
}

fn is_vip_capable(address: IpAddr) -> bool {
    match address {
        IpAddr::V4(a) => {
            !(a.is_unspecified() || a.is_multicast() || a.is_broadcast() || a.is_loopback())
        }
        IpAddr::V6(a) => !(a.is_unspecified() || a.is_multicast() || a.is_loopback()),
    }
}
