//! A virtual L2 segment for driving `L2Node`s: a virtual clock, one interface per node, a
//! broadcast medium with a fixed latency, and links that tests cut and restore. Nodes are
//! stepped exactly when they ask to be (`next_wake`) or when a frame reaches them.

#![allow(dead_code)]
// Also compiled into the heartbeat bench, where the test-only allowances do not apply.
#![allow(clippy::unwrap_used, clippy::expect_used)]

use std::cmp::Reverse;
use std::collections::{BTreeMap, BTreeSet, BinaryHeap};
use std::net::{IpAddr, Ipv4Addr};
use std::time::{Duration, SystemTime};

use ferrolb_l2::config::{InterfaceFacts, L2Config, VipGroup};
use ferrolb_l2::node::{L2Node, Output, SentKind};
use ferrolb_l2::status::L2Status;
use ferrolb_l2::wire::MacAddr;

pub const IFACE: &str = "eth0";
pub const KEY: &[u8] = b"segment key for the simulated lab!";

/// An ownership change seen at a node's output.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Event {
    pub at: Duration,
    pub node: String,
    pub group: IpAddr,
    pub owned: bool,
}

pub struct SimNode {
    pub name: String,
    pub mac: MacAddr,
    pub node: Option<L2Node>,
    pub owned: BTreeSet<IpAddr>,
    pub incarnation: u64,
    pub groups: Vec<VipGroup>,
    pub carrier: bool,
    /// Frames this node put on the wire, by kind.
    pub sent: BTreeMap<&'static str, u64>,
    pub bytes_sent: u64,
}

/// A frame on the wire: arrival time, tie-breaker, destination node, bytes.
type InFlight = (Duration, u64, usize, Vec<u8>);

pub struct Sim {
    pub now: Duration,
    pub nodes: Vec<SimNode>,
    pub latency: Duration,
    /// Pairs (by index, lower first) whose link is cut.
    pub cut: BTreeSet<(usize, usize)>,
    queue: BinaryHeap<Reverse<InFlight>>,
    counter: u64,
    pub events: Vec<Event>,
    pub configure: fn(&mut L2Config),
    pub key: Vec<u8>,
}

pub fn v4_groups(n: usize) -> Vec<VipGroup> {
    (0..n)
        .map(|i| {
            VipGroup::new(
                [IpAddr::V4(Ipv4Addr::new(198, 51, 100, 10 + i as u8))],
                IFACE,
            )
            .unwrap()
        })
        .collect()
}

impl Sim {
    pub fn new() -> Sim {
        Sim {
            now: Duration::ZERO,
            nodes: Vec::new(),
            latency: Duration::from_micros(200),
            cut: BTreeSet::new(),
            queue: BinaryHeap::new(),
            counter: 0,
            events: Vec::new(),
            configure: |_| {},
            key: KEY.to_vec(),
        }
    }

    /// Adds a node (not started).
    pub fn add(&mut self, name: &str, groups: Vec<VipGroup>) -> usize {
        let i = self.nodes.len();
        self.nodes.push(SimNode {
            name: name.to_string(),
            mac: MacAddr([0x02, 0, 0, 0, 0, i as u8 + 1]),
            node: None,
            owned: BTreeSet::new(),
            incarnation: 0,
            groups,
            carrier: true,
            sent: BTreeMap::new(),
            bytes_sent: 0,
        });
        i
    }

    pub fn index(&self, name: &str) -> usize {
        self.nodes
            .iter()
            .position(|n| n.name == name)
            .expect("no such node")
    }

    /// Starts (or restarts, with a higher incarnation) node `i` now.
    pub fn start(&mut self, i: usize) {
        let now = self.now;
        let n = &mut self.nodes[i];
        n.incarnation += 1;
        let mut config = L2Config::new(n.name.clone(), "sim", self.key.clone());
        config.incarnation = n.incarnation;
        (self.configure)(&mut config);
        let mut node = L2Node::new(config, now, SystemTime::UNIX_EPOCH).expect("config");
        let mut out = node
            .set_interfaces(now, vec![facts(n.mac, n.carrier)])
            .expect("interfaces");
        out.extend(node.set_eligible(now, n.groups.clone()).expect("groups"));
        n.node = Some(node);
        n.owned.clear();
        self.handle(i, out);
    }

    /// Stops node `i` without a word (SIGKILL).
    pub fn kill(&mut self, i: usize) {
        let n = &mut self.nodes[i];
        n.node = None;
        for g in std::mem::take(&mut n.owned) {
            self.events.push(Event {
                at: self.now,
                node: n.name.clone(),
                group: g,
                owned: false,
            });
        }
    }

    pub fn set_carrier(&mut self, i: usize, up: bool) {
        let now = self.now;
        let n = &mut self.nodes[i];
        n.carrier = up;
        let mac = n.mac;
        if let Some(node) = n.node.as_mut() {
            let out = node.set_interfaces(now, vec![facts(mac, up)]).unwrap();
            self.handle(i, out);
        }
    }

    pub fn set_link(&mut self, a: usize, b: usize, up: bool) {
        let pair = (a.min(b), a.max(b));
        if up {
            self.cut.remove(&pair);
        } else {
            self.cut.insert(pair);
        }
    }

    /// Cuts (or restores) every link of node `i`.
    pub fn isolate(&mut self, i: usize, isolated: bool) {
        for j in 0..self.nodes.len() {
            if j != i {
                self.set_link(i, j, !isolated);
            }
        }
    }

    fn connected(&self, a: usize, b: usize) -> bool {
        !self.cut.contains(&(a.min(b), a.max(b)))
    }

    /// Hands a frame to node `i` as if it arrived on its interface now (a client's request).
    pub fn inject(&mut self, i: usize, frame: &[u8]) -> Vec<Output> {
        let now = self.now;
        let Some(node) = self.nodes[i].node.as_mut() else {
            return Vec::new();
        };
        let out = node.receive(now, IFACE, frame);
        self.handle(i, out.clone());
        out
    }

    pub fn feed(&mut self, i: usize, outputs: Vec<Output>) {
        self.handle(i, outputs);
    }

    fn handle(&mut self, i: usize, outputs: Vec<Output>) {
        for output in outputs {
            match output {
                Output::Send { frame, kind, .. } => {
                    let label = match kind {
                        SentKind::Heartbeat => "heartbeat",
                        SentKind::Reply => "reply",
                        SentKind::Announce { group, first } => {
                            if first && let Some(node) = self.nodes[i].node.as_mut() {
                                node.announce_sent(group, self.now);
                            }
                            "announce"
                        }
                    };
                    let n = &mut self.nodes[i];
                    *n.sent.entry(label).or_insert(0) += 1;
                    n.bytes_sent += frame.len() as u64;
                    if !n.carrier {
                        continue;
                    }
                    for j in 0..self.nodes.len() {
                        if j != i && self.connected(i, j) && self.nodes[j].carrier {
                            self.counter += 1;
                            self.queue.push(Reverse((
                                self.now + self.latency,
                                self.counter,
                                j,
                                frame.clone(),
                            )));
                        }
                    }
                }
                Output::Owned(group) => {
                    let n = &mut self.nodes[i];
                    assert!(
                        n.owned.insert(group.key),
                        "{} owned {} twice",
                        n.name,
                        group.key
                    );
                    self.events.push(Event {
                        at: self.now,
                        node: n.name.clone(),
                        group: group.key,
                        owned: true,
                    });
                }
                Output::Released(group) => {
                    let n = &mut self.nodes[i];
                    assert!(
                        n.owned.remove(&group.key),
                        "{} released {} it did not own",
                        n.name,
                        group.key
                    );
                    self.events.push(Event {
                        at: self.now,
                        node: n.name.clone(),
                        group: group.key,
                        owned: false,
                    });
                }
            }
        }
    }

    /// Runs the segment until `until`.
    pub fn run_until(&mut self, until: Duration) {
        loop {
            let next_frame = self.queue.peek().map(|Reverse((t, ..))| *t);
            let next_wake = self
                .nodes
                .iter()
                .enumerate()
                .filter_map(|(i, n)| n.node.as_ref().map(|node| (node.next_wake(), i)))
                .min();
            let next = match (next_frame, next_wake) {
                (Some(f), Some((w, _))) => f.min(w),
                (Some(f), None) => f,
                (None, Some((w, _))) => w,
                (None, None) => break,
            };
            if next > until {
                break;
            }
            self.now = self.now.max(next);
            if next_frame == Some(next) {
                let Some(Reverse((_, _, j, frame))) = self.queue.pop() else {
                    unreachable!()
                };
                let now = self.now;
                if let Some(node) = self.nodes[j].node.as_mut() {
                    let out = node.receive(now, IFACE, &frame);
                    self.handle(j, out);
                }
            } else if let Some((_, i)) = next_wake {
                let now = self.now;
                if let Some(node) = self.nodes[i].node.as_mut() {
                    let out = node.tick(now);
                    self.handle(i, out);
                }
            }
        }
        self.now = until;
    }

    pub fn run_for(&mut self, d: Duration) {
        let until = self.now + d;
        self.run_until(until);
    }

    /// Nodes that announce they own `group` right now.
    pub fn owners(&self, group: IpAddr) -> Vec<String> {
        self.nodes
            .iter()
            .filter(|n| n.owned.contains(&group))
            .map(|n| n.name.clone())
            .collect()
    }

    pub fn loads(&self) -> BTreeMap<String, usize> {
        self.nodes
            .iter()
            .filter(|n| n.node.is_some())
            .map(|n| (n.name.clone(), n.owned.len()))
            .collect()
    }

    pub fn status(&self, i: usize) -> L2Status {
        self.nodes[i]
            .node
            .as_ref()
            .expect("running")
            .status(self.now)
    }

    /// Ownership gains of `group` after `from`.
    pub fn gains_since(&self, group: IpAddr, from: Duration) -> Vec<&Event> {
        self.events
            .iter()
            .filter(|e| e.group == group && e.owned && e.at >= from)
            .collect()
    }
}

pub fn facts(mac: MacAddr, carrier_up: bool) -> InterfaceFacts {
    InterfaceFacts {
        name: IFACE.to_string(),
        ifindex: 2,
        mac,
        carrier_up,
        subnets: vec![
            "198.51.100.0/24".parse().unwrap(),
            "2001:db8::/64".parse().unwrap(),
        ],
    }
}

pub fn ms(n: u64) -> Duration {
    Duration::from_millis(n)
}

pub fn secs(n: u64) -> Duration {
    Duration::from_secs(n)
}
