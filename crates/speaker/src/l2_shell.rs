//! The agent's layer-2 shell: runs a `ferrolb_l2::L2Announcer` when the plan has VIP groups
//! this node may own, feeds it the host's interfaces from rtnetlink events, and drains it on
//! shutdown.
//!
//! It owns one task, so the agent only hands it plans ([`L2Shell::set_plan`]) and asks it to
//! drain ([`L2Shell::drain`]). Interfaces come from a netlink socket subscribed to
//! RTMGRP_LINK, RTMGRP_IPV4_IFADDR and RTMGRP_IPV6_IFADDR: every event re-reads the links and
//! addresses and passes them on at once, so a carrier loss makes this node ineligible for the
//! interface's groups without polling. Which interface a group is answered on is the pure
//! [`choose_interface`]. It does not decide which groups exist or who owns them (the planner
//! and the announcer's election do).

use std::collections::{BTreeMap, BTreeSet};
use std::net::IpAddr;
use std::time::Duration;

use ferrolb_l2::preflight::{ALL_INTERFACES, read_arp_sysctls};
use ferrolb_l2::{DrainReport, InterfaceFacts, L2Announcer, L2Config, L2Status, MacAddr, VipGroup};
use futures_util::{StreamExt, TryStreamExt};
use ipnet::IpNet;
use netlink_packet_route::address::AddressAttribute;
use netlink_packet_route::link::{LinkAttribute, LinkFlags};
use rtnetlink::MulticastGroup;
use tokio::sync::{mpsc, oneshot, watch};
use tokio::task::JoinHandle;
use tracing::{debug, error, info, warn};

use crate::plan::{L2Plan, LocalInterface, NoInterface, choose_interface};

/// The segment name used when none is given: nodes of one cluster must use the same.
pub const DEFAULT_SEGMENT: &str = "ferrolb";

/// How the layer-2 shell runs.
#[derive(Clone, Default)]
pub struct L2ShellOptions {
    /// This node's id on the segment (the node name).
    pub node_id: String,
    /// The segment (cluster) name, the same on every node.
    pub segment: String,
    /// The heartbeat key (`--l2-key-file`); layer 2 cannot run without it.
    pub key: Option<Vec<u8>>,
}

impl std::fmt::Debug for L2ShellOptions {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("L2ShellOptions")
            .field("node_id", &self.node_id)
            .field("segment", &self.segment)
            .field("key", &self.key.as_ref().map(|_| "<redacted>"))
            .finish()
    }
}

/// What the layer-2 shell is doing, for the status API and metrics.
#[derive(Clone, Debug, Default, PartialEq)]
pub struct L2View {
    /// Why layer 2 does not run although the plan needs it (no key, netlink failed, ...).
    pub problem: Option<String>,
    /// For every group this node may own: the interface it is answered on, or why none.
    pub interfaces: BTreeMap<IpAddr, Result<String, NoInterface>>,
    /// The announcer's status, once it runs.
    pub announcer: Option<L2Status>,
}

type DrainRequest = (Duration, oneshot::Sender<Option<DrainReport>>);

/// A handle to the layer-2 task.
pub struct L2Shell {
    plans: watch::Sender<L2Plan>,
    view: watch::Receiver<L2View>,
    drains: mpsc::Sender<DrainRequest>,
    task: JoinHandle<()>,
}

impl L2Shell {
    /// Starts the task (idle until a plan has groups this node may own). Must run inside a
    /// tokio runtime.
    pub fn start(options: L2ShellOptions) -> L2Shell {
        let (plans, plans_rx) = watch::channel(L2Plan::default());
        let (view_tx, view) = watch::channel(L2View::default());
        let (drains, drains_rx) = mpsc::channel(1);
        let task = tokio::spawn(
            L2Task {
                options,
                plan: L2Plan::default(),
                announcer: None,
                status: None,
                links: None,
                netlink: None,
                host: Vec::new(),
                view: view_tx,
            }
            .run(plans_rx, drains_rx),
        );
        L2Shell {
            plans,
            view,
            drains,
            task,
        }
    }

    /// Hands the task the latest layer-2 plan (applied asynchronously, latest wins).
    pub fn set_plan(&self, plan: &L2Plan) {
        self.plans.send_if_modified(|current| {
            let changed = current != plan;
            if changed {
                *current = plan.clone();
            }
            changed
        });
    }

    /// The shell's view; `changed().await` to follow it.
    pub fn view(&self) -> watch::Receiver<L2View> {
        self.view.clone()
    }

    /// Hands every owned group to the next owner (within `timeout`), then stops. `None` when
    /// the announcer was not running.
    pub async fn drain(self, timeout: Duration) -> Option<DrainReport> {
        let (tx, rx) = oneshot::channel();
        let report = if self.drains.send((timeout, tx)).await.is_ok() {
            rx.await.ok().flatten()
        } else {
            None
        };
        let _ = self.task.await;
        report
    }
}

/// One interface of the host, as netlink reports it.
#[derive(Clone, Debug, PartialEq, Eq)]
struct HostInterface {
    name: String,
    index: u32,
    mac: Option<MacAddr>,
    carrier_up: bool,
    subnets: Vec<IpNet>,
    addresses: BTreeSet<IpAddr>,
}

/// Link and address events; what changed is re-read, so the messages themselves are dropped.
type NetlinkEvents = std::pin::Pin<Box<dyn futures_util::Stream<Item = ()> + Send>>;

struct L2Task {
    options: L2ShellOptions,
    plan: L2Plan,
    announcer: Option<L2Announcer>,
    status: Option<watch::Receiver<L2Status>>,
    links: Option<NetlinkEvents>,
    netlink: Option<(rtnetlink::Handle, JoinHandle<()>)>,
    host: Vec<HostInterface>,
    view: watch::Sender<L2View>,
}

impl L2Task {
    async fn run(
        mut self,
        mut plans: watch::Receiver<L2Plan>,
        mut drains: mpsc::Receiver<DrainRequest>,
    ) {
        loop {
            tokio::select! {
                changed = plans.changed() => {
                    if changed.is_err() {
                        break;
                    }
                    self.plan = plans.borrow_and_update().clone();
                    self.sync().await;
                }
                event = next_event(&mut self.links) => {
                    if event {
                        self.refresh_host().await;
                        self.sync().await;
                    } else {
                        error!("the netlink event stream ended: interface changes are no longer seen");
                        self.links = None;
                    }
                }
                () = status_changed(&mut self.status) => {
                    let status = self.status.as_ref().map(|s| s.borrow().clone());
                    self.view.send_modify(|v| v.announcer = status);
                }
                request = drains.recv() => {
                    let report = self.stop(request.as_ref().map(|(t, _)| *t)).await;
                    if let Some((_, reply)) = request {
                        let _ = reply.send(report);
                    }
                    return;
                }
            }
        }
        self.stop(None).await;
    }

    async fn stop(&mut self, drain: Option<Duration>) -> Option<DrainReport> {
        let announcer = self.announcer.take()?;
        let report = match drain {
            Some(timeout) => match announcer.drain(timeout).await {
                Ok(report) => {
                    info!(
                        owned = report.owned_at_start,
                        handed_over = report.handed_over,
                        released = report.released,
                        took = ?report.elapsed,
                        "layer 2 drained"
                    );
                    Some(report)
                }
                Err(e) => {
                    error!(error = %e, "layer 2 drain failed");
                    None
                }
            },
            None => None,
        };
        announcer.shutdown().await;
        if let Some((_, connection)) = self.netlink.take() {
            connection.abort();
        }
        report
    }

    /// Starts what the plan needs and hands the announcer the groups and interfaces.
    async fn sync(&mut self) {
        if !self.plan.is_used() && self.announcer.is_none() {
            self.view.send_modify(|v| {
                v.problem = None;
                v.interfaces.clear();
            });
            return;
        }
        if self.announcer.is_none()
            && let Err(problem) = self.start().await
        {
            error!("layer 2 cannot run: {problem}");
            self.view.send_modify(|v| v.problem = Some(problem));
            return;
        }
        let Some(announcer) = &self.announcer else {
            return;
        };
        let local: Vec<LocalInterface> = self
            .host
            .iter()
            .filter(|i| i.mac.is_some())
            .map(|i| LocalInterface {
                name: i.name.clone(),
                subnets: i.subnets.clone(),
            })
            .collect();
        let mut chosen = BTreeMap::new();
        let mut groups = Vec::new();
        for (key, group) in self.plan.eligible() {
            let choice = choose_interface(group, &local);
            match &choice {
                Ok(interface) => {
                    if let Some(g) = VipGroup::new(group.addresses.iter().copied(), interface) {
                        groups.push(g);
                    }
                }
                Err(why) => warn!(group = %key, "layer 2: {why}"),
            }
            chosen.insert(*key, choice);
        }
        let used: BTreeSet<&str> = groups.iter().map(|g| g.interface.as_str()).collect();
        let facts: Vec<InterfaceFacts> = self
            .host
            .iter()
            .filter(|i| used.contains(i.name.as_str()))
            .filter_map(|i| {
                Some(InterfaceFacts {
                    name: i.name.clone(),
                    ifindex: i.index,
                    mac: i.mac?,
                    carrier_up: i.carrier_up,
                    subnets: i.subnets.clone(),
                })
            })
            .collect();
        let local_addresses: BTreeMap<String, BTreeSet<IpAddr>> = self
            .host
            .iter()
            .map(|i| (i.name.clone(), i.addresses.clone()))
            .collect();
        if let Err(e) = announcer.set_interfaces(facts).await {
            error!(error = %e, "layer 2: interfaces refused");
        }
        if let Err(e) = announcer.set_eligible(groups).await {
            error!(error = %e, "layer 2: groups refused");
        }
        if let Err(e) = announcer.set_local_addresses(local_addresses).await {
            error!(error = %e, "layer 2: local addresses refused");
        }
        self.view.send_modify(|v| {
            v.problem = None;
            v.interfaces = chosen;
        });
    }

    async fn start(&mut self) -> Result<(), String> {
        let Some(key) = self.options.key.clone() else {
            return Err(
                "L2Advertisements select this node but no heartbeat key was given: \
                 start the speaker with --l2-key-file PATH (the same file on every node)"
                    .to_string(),
            );
        };
        let (connection, handle, events) = rtnetlink::new_multicast_connection(&[
            MulticastGroup::Link,
            MulticastGroup::Ipv4Ifaddr,
            MulticastGroup::Ipv6Ifaddr,
        ])
        .map_err(|e| format!("cannot subscribe to netlink link and address events: {e}"))?;
        let connection = tokio::spawn(connection);
        self.netlink = Some((handle, connection));
        self.links = Some(Box::pin(events.map(|_| ())));
        self.refresh_host().await;
        let config = L2Config::new(
            self.options.node_id.clone(),
            self.options.segment.clone(),
            key,
        );
        let announcer = L2Announcer::start(config)
            .await
            .map_err(|e| format!("cannot start the layer-2 announcer: {e}"))?;
        info!(node = %self.options.node_id, segment = %self.options.segment, "layer 2 announcer started");
        self.status = Some(announcer.status());
        self.announcer = Some(announcer);
        Ok(())
    }

    /// Re-reads every link and address.
    async fn refresh_host(&mut self) {
        let Some((handle, _)) = &self.netlink else {
            return;
        };
        match read_host(handle).await {
            Ok(host) => {
                if host != self.host {
                    debug!(interfaces = host.len(), "interfaces changed");
                }
                self.host = host;
            }
            Err(e) => error!(error = %e, "cannot read interfaces"),
        }
    }
}

/// Waits for the next netlink event; false when the stream ended. Pending without a stream.
async fn next_event(events: &mut Option<NetlinkEvents>) -> bool {
    match events {
        Some(events) => events.next().await.is_some(),
        None => std::future::pending().await,
    }
}

/// Waits for the announcer's status to change. Pending without an announcer.
async fn status_changed(status: &mut Option<watch::Receiver<L2Status>>) {
    match status {
        Some(rx) => {
            if rx.changed().await.is_err() {
                std::future::pending::<()>().await;
            }
        }
        None => std::future::pending().await,
    }
}

async fn read_host(handle: &rtnetlink::Handle) -> Result<Vec<HostInterface>, rtnetlink::Error> {
    let mut by_index: BTreeMap<u32, HostInterface> = BTreeMap::new();
    let mut links = handle.link().get().execute();
    while let Some(link) = links.try_next().await? {
        let mut name = None;
        let mut mac = None;
        for attribute in &link.attributes {
            match attribute {
                LinkAttribute::IfName(n) => name = Some(n.clone()),
                LinkAttribute::Address(bytes) => {
                    mac = <[u8; 6]>::try_from(bytes.as_slice())
                        .ok()
                        .map(MacAddr)
                        .filter(|m| m.0 != [0; 6]);
                }
                _ => {}
            }
        }
        let Some(name) = name else { continue };
        let flags = link.header.flags;
        by_index.insert(
            link.header.index,
            HostInterface {
                name,
                index: link.header.index,
                mac,
                carrier_up: flags.contains(LinkFlags::Up) && flags.contains(LinkFlags::LowerUp),
                subnets: Vec::new(),
                addresses: BTreeSet::new(),
            },
        );
    }
    let mut addresses = handle.address().get().execute();
    while let Some(message) = addresses.try_next().await? {
        let Some(interface) = by_index.get_mut(&message.header.index) else {
            continue;
        };
        let address = message.attributes.iter().find_map(|a| match a {
            AddressAttribute::Local(ip) => Some(*ip),
            _ => None,
        });
        let address = address.or_else(|| {
            message.attributes.iter().find_map(|a| match a {
                AddressAttribute::Address(ip) => Some(*ip),
                _ => None,
            })
        });
        let Some(address) = address else { continue };
        interface.addresses.insert(address);
        if let Ok(net) = IpNet::new(address, message.header.prefix_len) {
            let net = net.trunc();
            if !interface.subnets.contains(&net) {
                interface.subnets.push(net);
            }
        }
    }
    Ok(by_index.into_values().collect())
}

/// Whether putting the layer-2 VIPs on `bind_interface` (`--bind-vips`) would make the kernel
/// answer ARP or NDP for them, which must not happen: the announcer's owner must be the only
/// responder. IPv4 VIPs need `net.ipv4.conf.all.arp_ignore` of 1 or more (the kernel then
/// answers only for addresses on the receiving interface, and a VIP on `lo` is on none);
/// every VIP needs the bind interface to be an interface other than the ones answered on.
pub fn bind_refusal(
    bind_interface: &str,
    addresses: &BTreeSet<IpAddr>,
    answered_on: &BTreeSet<String>,
) -> Option<String> {
    if addresses.is_empty() {
        return None;
    }
    if answered_on.contains(bind_interface) {
        return Some(format!(
            "--bind-vips {bind_interface} is also where layer-2 VIPs are answered: the kernel \
             would answer ARP/NDP for them on every node; bind them to lo instead"
        ));
    }
    if addresses.iter().any(IpAddr::is_ipv4) {
        let sysctls = read_arp_sysctls([ALL_INTERFACES]);
        let arp_ignore = sysctls
            .get(ALL_INTERFACES)
            .and_then(|s| s.arp_ignore)
            .unwrap_or(0);
        if arp_ignore == 0 {
            return Some(
                "net.ipv4.conf.all.arp_ignore is 0: with layer-2 VIPs bound, every node's \
                 kernel would answer ARP for them; set it to 1 (sysctl -w \
                 net.ipv4.conf.all.arp_ignore=1) to bind them"
                    .to_string(),
            );
        }
    }
    None
}

#[cfg(test)]
mod tests {
    use super::*;

    fn set<T: Ord + Clone>(items: &[T]) -> BTreeSet<T> {
        items.iter().cloned().collect()
    }

    #[test]
    fn nothing_to_bind_is_never_refused() {
        assert_eq!(
            bind_refusal("eth1", &BTreeSet::new(), &set(&["eth1".into()])),
            None
        );
    }

    #[test]
    fn binding_on_an_answered_interface_is_refused_for_either_family() {
        for vip in ["198.18.0.200", "fd00:18::200"] {
            let why = bind_refusal(
                "eth1",
                &set(&[vip.parse().unwrap()]),
                &set(&["eth1".into()]),
            )
            .unwrap_or_else(|| panic!("{vip}: binding on eth1 was allowed"));
            assert!(why.contains("bind them to lo"), "{why}");
        }
    }

    #[test]
    fn ipv6_vips_on_another_interface_are_bound() {
        // The kernel answers solicitations only for addresses on the receiving interface.
        assert_eq!(
            bind_refusal(
                "lo",
                &set(&["fd00:18::200".parse().unwrap()]),
                &set(&["eth1".into()])
            ),
            None
        );
    }
}
