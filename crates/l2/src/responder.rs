//! What to answer, as pure functions: a received ARP or NDP frame in, reply frames and
//! conflict observations out; and when to announce a newly owned group ([`AnnounceSchedule`]).
//!
//! The answers follow RFC 826 and RFC 4861 closely where the usual announcers cut corners:
//! - ARP requests for an owned VIP are answered when sent to broadcast or to our MAC; RFC 5227
//!   probes (sender 0.0.0.0) are answered too, which is how an address in use is defended.
//!   Gratuitous requests from others are not answered; they are conflicts.
//! - Neighbor Solicitations for an owned VIP, multicast to its solicited-node group or unicast
//!   to the VIP (neighbour unreachability detection, which a kernel socket never sees because
//!   the VIP is not a local address), with or without a source link-layer option, get a
//!   Neighbor Advertisement with S=1 and **O=1** (so a client's cached entry for the previous
//!   owner is overridden, RFC 4861 §7.2.5), a target link-layer option, sourced from the VIP
//!   itself (as a host answers for its own address; ndisc6 ignores advertisements whose source
//!   is not the target) and sent to the solicitation's source. A DAD solicitation (source ::)
//!   gets S=0 to ff02::1 (RFC 4861 §7.2.4).
//! - ARP and NDP traffic that shows another MAC using an owned VIP (replies, gratuitous ARP,
//!   requests sourced from the VIP, advertisements, solicitations sourced from the VIP) is a
//!   conflict.
//!
//! Which VIPs are owned on which interface is the caller's input; nothing here knows about
//! elections or sockets.

use std::collections::{BTreeMap, BTreeSet};
use std::net::{IpAddr, Ipv6Addr};
use std::time::Duration;

use crate::wire::{
    ArpOperation, ArpPacket, EthernetHeader, Frame, MacAddr, NdpMessage, NdpPacket, NeighborAdvert,
    arp_frame, ndp_frame, solicited_node,
};

/// ff02::1, all nodes (RFC 4291 §2.7.1).
pub const ALL_NODES: Ipv6Addr = Ipv6Addr::new(0xff02, 0, 0, 0, 0, 0, 0, 1);

/// What one received frame calls for.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct Response {
    pub replies: Vec<Reply>,
    pub conflicts: Vec<ConflictSeen>,
    /// Set when the frame asked about a VIP we know but do not own here (for metrics).
    pub unowned_request: Option<IpAddr>,
}

/// A frame to send back.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Reply {
    pub vip: IpAddr,
    pub kind: ReplyKind,
    pub frame: Vec<u8>,
}

#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub enum ReplyKind {
    ArpReply,
    NeighborAdvert,
}

/// Another MAC is using a VIP we own.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct ConflictSeen {
    pub vip: IpAddr,
    pub mac: MacAddr,
    pub evidence: ConflictEvidence,
}

#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub enum ConflictEvidence {
    ArpReply,
    GratuitousArp,
    /// An ARP request sourced from the VIP: the sender has it configured.
    ArpRequestFromVip,
    NeighborAdvert,
    /// A solicitation sourced from the VIP.
    NeighborSolicitFromVip,
}

/// Decides the response to one frame received on an interface whose MAC is `mac`, where
/// `owned` are the VIPs this node answers for on that interface and `known` every VIP this
/// node could own (for the unowned-request metric).
pub fn respond(
    frame: &Frame<'_>,
    mac: MacAddr,
    owned: &BTreeSet<IpAddr>,
    known: &BTreeSet<IpAddr>,
) -> Response {
    match frame {
        Frame::Arp(eth, arp) => respond_arp(eth, arp, mac, owned, known),
        Frame::Ndp(eth, ndp) => respond_ndp(eth, ndp, mac, owned, known),
        Frame::Heartbeat(..) => Response::default(),
    }
}

fn respond_arp(
    eth: &EthernetHeader,
    arp: &ArpPacket,
    mac: MacAddr,
    owned: &BTreeSet<IpAddr>,
    known: &BTreeSet<IpAddr>,
) -> Response {
    let mut response = Response::default();
    if eth.src == mac || arp.sender_mac == mac {
        return response;
    }
    let sender = IpAddr::V4(arp.sender_ip);
    if !arp.sender_ip.is_unspecified() && owned.contains(&sender) {
        let evidence = match (arp.operation, arp.is_gratuitous()) {
            (ArpOperation::Reply, false) => ConflictEvidence::ArpReply,
            (_, true) => ConflictEvidence::GratuitousArp,
            (ArpOperation::Request, false) => ConflictEvidence::ArpRequestFromVip,
        };
        response.conflicts.push(ConflictSeen {
            vip: sender,
            mac: arp.sender_mac,
            evidence,
        });
    }
    let target = IpAddr::V4(arp.target_ip);
    let asks = arp.operation == ArpOperation::Request && !arp.is_gratuitous();
    if !asks {
        return response;
    }
    if !owned.contains(&target) {
        if known.contains(&target) {
            response.unowned_request = Some(target);
        }
        return response;
    }
    if !(eth.dst.is_broadcast() || eth.dst == mac) || !arp.sender_mac.is_unicast() {
        return response;
    }
    // RFC 826: swap sender and target, fill in our hardware address, send to the asker.
    let reply = ArpPacket {
        operation: ArpOperation::Reply,
        sender_mac: mac,
        sender_ip: arp.target_ip,
        target_mac: arp.sender_mac,
        target_ip: arp.sender_ip,
    };
    response.replies.push(Reply {
        vip: target,
        kind: ReplyKind::ArpReply,
        frame: arp_frame(arp.sender_mac, mac, &reply),
    });
    response
}

fn respond_ndp(
    eth: &EthernetHeader,
    ndp: &NdpPacket,
    mac: MacAddr,
    owned: &BTreeSet<IpAddr>,
    known: &BTreeSet<IpAddr>,
) -> Response {
    let mut response = Response::default();
    if eth.src == mac {
        return response;
    }
    let target = ndp.message.target();
    match ndp.message {
        NdpMessage::Advert(na) => {
            if owned.contains(&IpAddr::V6(target)) {
                let other = na.target_lla.unwrap_or(eth.src);
                if other != mac {
                    response.conflicts.push(ConflictSeen {
                        vip: IpAddr::V6(target),
                        mac: other,
                        evidence: ConflictEvidence::NeighborAdvert,
                    });
                }
            }
        }
        NdpMessage::Solicit(ns) => {
            let source = IpAddr::V6(ndp.src);
            if owned.contains(&source) {
                response.conflicts.push(ConflictSeen {
                    vip: source,
                    mac: ns.source_lla.unwrap_or(eth.src),
                    evidence: ConflictEvidence::NeighborSolicitFromVip,
                });
            }
            if !owned.contains(&IpAddr::V6(target)) {
                if known.contains(&IpAddr::V6(target)) {
                    response.unowned_request = Some(IpAddr::V6(target));
                }
                return response;
            }
            let to_group = ndp.dst == solicited_node(target)
                && (eth.dst == MacAddr::ipv6_multicast(ndp.dst) || eth.dst == mac);
            let to_us = ndp.dst == target && eth.dst == mac;
            if !(to_group || to_us) {
                return response;
            }
            let dad = ndp.src.is_unspecified();
            let (dst, eth_dst) = if dad {
                (ALL_NODES, MacAddr::ipv6_multicast(ALL_NODES))
            } else {
                (ndp.src, ns.source_lla.unwrap_or(eth.src))
            };
            if !eth_dst.is_multicast() && !eth_dst.is_unicast() {
                return response;
            }
            let advert = NdpPacket {
                src: target,
                dst,
                message: NdpMessage::Advert(NeighborAdvert {
                    router: false,
                    solicited: !dad,
                    override_flag: true,
                    target,
                    target_lla: Some(mac),
                }),
            };
            response.replies.push(Reply {
                vip: IpAddr::V6(target),
                kind: ReplyKind::NeighborAdvert,
                frame: ndp_frame(eth_dst, mac, &advert),
            });
        }
    }
    response
}

/// The frames that announce `vip` at `mac`: for IPv4 a gratuitous ARP request (an RFC 5227
/// announcement) and a gratuitous reply, both to broadcast, since some hosts only update on
/// one of the two; for IPv6 an unsolicited NA (S=0, O=1) to ff02::1 (RFC 4861 §7.2.6).
pub fn announcement_frames(mac: MacAddr, vip: IpAddr) -> Vec<Vec<u8>> {
    match vip {
        IpAddr::V4(ip) => {
            let request = ArpPacket {
                operation: ArpOperation::Request,
                sender_mac: mac,
                sender_ip: ip,
                target_mac: MacAddr::ZERO,
                target_ip: ip,
            };
            let reply = ArpPacket {
                operation: ArpOperation::Reply,
                sender_mac: mac,
                sender_ip: ip,
                target_mac: MacAddr::BROADCAST,
                target_ip: ip,
            };
            vec![
                arp_frame(MacAddr::BROADCAST, mac, &request),
                arp_frame(MacAddr::BROADCAST, mac, &reply),
            ]
        }
        IpAddr::V6(ip) => {
            let advert = NdpPacket {
                src: ip,
                dst: ALL_NODES,
                message: NdpMessage::Advert(NeighborAdvert {
                    router: false,
                    solicited: false,
                    override_flag: true,
                    target: ip,
                    target_lla: Some(mac),
                }),
            };
            vec![ndp_frame(MacAddr::ipv6_multicast(ALL_NODES), mac, &advert)]
        }
    }
}

/// When each owned group is (re-)announced: a burst at fixed offsets from the claim, then an
/// optional periodic refresh.
#[derive(Clone, Debug)]
pub struct AnnounceSchedule {
    offsets: Vec<Duration>,
    refresh: Option<Duration>,
    groups: BTreeMap<IpAddr, Burst>,
}

#[derive(Clone, Copy, Debug)]
struct Burst {
    started: Duration,
    /// Index into the offsets of the next step; past the end, refreshing.
    step: usize,
    next_at: Option<Duration>,
}

/// One group to announce now.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct AnnounceDue {
    pub group: IpAddr,
    /// The first announcement since the group was (re-)taken.
    pub first: bool,
}

impl AnnounceSchedule {
    pub fn new(offsets: Vec<Duration>, refresh: Option<Duration>) -> AnnounceSchedule {
        let mut offsets = offsets;
        offsets.sort();
        offsets.dedup();
        if offsets.is_empty() {
            offsets.push(Duration::ZERO);
        }
        AnnounceSchedule {
            offsets,
            refresh,
            groups: BTreeMap::new(),
        }
    }

    /// (Re)starts the burst for `group` at `now`.
    pub fn start(&mut self, group: IpAddr, now: Duration) {
        let first = self.offsets.first().copied().unwrap_or(Duration::ZERO);
        self.groups.insert(
            group,
            Burst {
                started: now,
                step: 0,
                next_at: Some(now + first),
            },
        );
    }

    pub fn stop(&mut self, group: IpAddr) {
        self.groups.remove(&group);
    }

    /// Groups due at `now`; each step is sent once even if several offsets have passed.
    pub fn due(&mut self, now: Duration) -> Vec<AnnounceDue> {
        let mut due = Vec::new();
        for (&group, burst) in self.groups.iter_mut() {
            let Some(at) = burst.next_at else { continue };
            if at > now {
                continue;
            }
            due.push(AnnounceDue {
                group,
                first: burst.step == 0,
            });
            let mut step = burst.step + 1;
            while step < self.offsets.len() && burst.started + self.offsets[step] <= now {
                step += 1;
            }
            burst.step = step;
            burst.next_at = match self.offsets.get(step) {
                Some(offset) => Some(burst.started + *offset),
                None => self.refresh.map(|r| now + r),
            };
        }
        due
    }

    pub fn next_deadline(&self) -> Option<Duration> {
        self.groups.values().filter_map(|b| b.next_at).min()
    }
}
