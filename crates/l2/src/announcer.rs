//! [`L2Announcer`]: the tokio handle, the public face of the crate.
//!
//! It runs one [`L2Node`] in a task: frames from the interfaces' AF_PACKET sockets and the
//! caller's commands go in, the node's outputs go out (frames to the sockets, solicited-node
//! group joins and leaves), timers fire when the node asks, and [`L2Status`] is published on a
//! watch channel. Decisions all live in `node`; this module only moves bytes and time.
//!
//! Dropping the handle without [`L2Announcer::shutdown`] or [`L2Announcer::drain`] stops the
//! task like a crash: no hand-off, the peers take over after the dead interval.

use std::collections::{BTreeMap, BTreeSet};
use std::net::IpAddr;
use std::sync::Arc;
use std::time::{Duration, SystemTime};

use tokio::sync::{mpsc, oneshot, watch};
use tokio::task::JoinHandle;
use tokio::time::Instant;
use tracing::{debug, info, warn};

use crate::config::{ConfigError, GroupError, InterfaceFacts, L2Config, VipGroup};
use crate::node::{L2Node, Output, SentKind};
use crate::preflight::{self, KernelView};
use crate::socket::{MulticastMemberships, PacketSocket};
use crate::status::L2Status;
use crate::wire::solicited_node;

/// How often the preflight checks re-read /proc/sys on their own.
const PREFLIGHT_INTERVAL: Duration = Duration::from_secs(30);
/// The status is republished at least this often while frames keep arriving.
const STATUS_INTERVAL: Duration = Duration::from_millis(100);
/// Frames buffered between the socket readers and the announcer task.
const FRAME_QUEUE: usize = 4096;

#[derive(Debug, thiserror::Error)]
pub enum L2Error {
    #[error(transparent)]
    Config(#[from] ConfigError),
    #[error(transparent)]
    Invalid(#[from] GroupError),
    #[error("the announcer has stopped")]
    Stopped,
}

/// How a drain ended.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct DrainReport {
    /// Groups owned when the drain began.
    pub owned_at_start: usize,
    /// Groups another node claimed before this one let go.
    pub handed_over: usize,
    /// Groups let go without a successor (none eligible, or the timeout passed).
    pub released: usize,
    pub elapsed: Duration,
}

enum Command {
    SetInterfaces(Vec<InterfaceFacts>, oneshot::Sender<Result<(), L2Error>>),
    SetEligible(Vec<VipGroup>, oneshot::Sender<Result<(), L2Error>>),
    SetLocalAddresses(BTreeMap<String, BTreeSet<IpAddr>>, oneshot::Sender<()>),
    Drain(Duration, oneshot::Sender<DrainReport>),
    Shutdown(oneshot::Sender<()>),
}

/// A running layer-2 announcer. Methods take `&self`.
#[derive(Debug)]
pub struct L2Announcer {
    commands: mpsc::UnboundedSender<Command>,
    status: watch::Receiver<L2Status>,
    task: JoinHandle<()>,
}

impl L2Announcer {
    /// Validates `config` and starts the announcer on the current tokio runtime. It listens
    /// (claims nothing) for the configured listening period; give it interfaces and groups
    /// with [`L2Announcer::set_interfaces`] and [`L2Announcer::set_eligible`].
    pub async fn start(config: L2Config) -> Result<L2Announcer, L2Error> {
        let origin = Instant::now();
        let node = L2Node::new(config, Duration::ZERO, SystemTime::now())?;
        let (commands, commands_rx) = mpsc::unbounded_channel();
        let (status_tx, status) = watch::channel(node.status(Duration::ZERO));
        let (frames_tx, frames_rx) = mpsc::channel(FRAME_QUEUE);
        let task = AnnouncerTask {
            node,
            origin,
            sockets: BTreeMap::new(),
            readers: BTreeMap::new(),
            frames_tx,
            memberships: MulticastMemberships::default(),
            local_addresses: BTreeMap::new(),
            status: status_tx,
            last_status: origin,
            drain: None,
        };
        let task = tokio::spawn(task.run(commands_rx, frames_rx));
        Ok(L2Announcer {
            commands,
            status,
            task,
        })
    }

    /// Replaces the announce interfaces (from rtnetlink: index, MAC, carrier, connected
    /// subnets). Call it on every link or address event: losing carrier makes this node
    /// ineligible for the interface's groups at once. Invalid input changes nothing.
    pub async fn set_interfaces(&self, interfaces: Vec<InterfaceFacts>) -> Result<(), L2Error> {
        let (tx, rx) = oneshot::channel();
        self.send(Command::SetInterfaces(interfaces, tx))?;
        rx.await.map_err(|_| L2Error::Stopped)?
    }

    /// Replaces the groups this node may own. Invalid input changes nothing.
    pub async fn set_eligible(&self, groups: Vec<VipGroup>) -> Result<(), L2Error> {
        let (tx, rx) = oneshot::channel();
        self.send(Command::SetEligible(groups, tx))?;
        rx.await.map_err(|_| L2Error::Stopped)?
    }

    /// Every local address on the host, by interface (all interfaces, e.g. `kube-ipvs0`
    /// too), for the preflight checks.
    pub async fn set_local_addresses(
        &self,
        addresses: BTreeMap<String, BTreeSet<IpAddr>>,
    ) -> Result<(), L2Error> {
        let (tx, rx) = oneshot::channel();
        self.send(Command::SetLocalAddresses(addresses, tx))?;
        rx.await.map_err(|_| L2Error::Stopped)
    }

    /// The status; `changed().await` on it to follow changes.
    pub fn status(&self) -> watch::Receiver<L2Status> {
        self.status.clone()
    }

    /// Hands every owned group to its successor and returns once all are taken (the old
    /// owner answers until it sees the new owner's claim) or `timeout` has passed. The node
    /// stays in the segment, owning nothing, until [`L2Announcer::shutdown`].
    pub async fn drain(&self, timeout: Duration) -> Result<DrainReport, L2Error> {
        let (tx, rx) = oneshot::channel();
        self.send(Command::Drain(timeout, tx))?;
        rx.await.map_err(|_| L2Error::Stopped)
    }

    /// Stops the task and closes the sockets. Without a drain first, peers take over after
    /// the dead interval.
    pub async fn shutdown(self) {
        let (tx, rx) = oneshot::channel();
        if self.commands.send(Command::Shutdown(tx)).is_ok() {
            let _ = rx.await;
        }
        let _ = self.task.await;
    }

    fn send(&self, command: Command) -> Result<(), L2Error> {
        self.commands.send(command).map_err(|_| L2Error::Stopped)
    }
}

struct PendingDrain {
    started: Instant,
    owned_at_start: usize,
    reply: oneshot::Sender<DrainReport>,
}

struct AnnouncerTask {
    node: L2Node,
    origin: Instant,
    sockets: BTreeMap<String, Arc<PacketSocket>>,
    readers: BTreeMap<String, JoinHandle<()>>,
    frames_tx: mpsc::Sender<(String, Vec<u8>)>,
    memberships: MulticastMemberships,
    local_addresses: BTreeMap<String, BTreeSet<IpAddr>>,
    status: watch::Sender<L2Status>,
    last_status: Instant,
    drain: Option<PendingDrain>,
}

impl AnnouncerTask {
    fn now(&self) -> Duration {
        self.origin.elapsed()
    }

    async fn run(
        mut self,
        mut commands: mpsc::UnboundedReceiver<Command>,
        mut frames: mpsc::Receiver<(String, Vec<u8>)>,
    ) {
        let mut preflight = tokio::time::interval(PREFLIGHT_INTERVAL);
        loop {
            let wake = self.origin + self.node.next_wake();
            let mut ownership_changed = false;
            tokio::select! {
                command = commands.recv() => match command {
                    Some(Command::Shutdown(done)) => {
                        self.stop();
                        let _ = done.send(());
                        return;
                    }
                    Some(command) => ownership_changed = self.command(command),
                    None => {
                        debug!("announcer handle dropped: stopping");
                        self.stop();
                        return;
                    }
                },
                Some((interface, frame)) = frames.recv() => {
                    let now = self.now();
                    let out = self.node.receive(now, &interface, &frame);
                    ownership_changed = self.execute(out);
                }
                _ = tokio::time::sleep_until(wake) => {
                    let now = self.now();
                    let out = self.node.tick(now);
                    ownership_changed = self.execute(out);
                }
                _ = preflight.tick() => self.run_preflight(),
            }
            self.finish_drain();
            if ownership_changed || self.last_status.elapsed() >= STATUS_INTERVAL {
                self.publish();
            }
        }
    }

    /// Returns whether ownership changed.
    fn command(&mut self, command: Command) -> bool {
        let now = self.now();
        match command {
            Command::SetInterfaces(interfaces, reply) => {
                self.sync_sockets(&interfaces);
                let result = self.node.set_interfaces(now, interfaces);
                let changed = match result {
                    Ok(out) => {
                        let _ = reply.send(Ok(()));
                        self.execute(out)
                    }
                    Err(e) => {
                        let _ = reply.send(Err(e.into()));
                        false
                    }
                };
                self.run_preflight();
                changed
            }
            Command::SetEligible(groups, reply) => {
                let changed = match self.node.set_eligible(now, groups) {
                    Ok(out) => {
                        let _ = reply.send(Ok(()));
                        self.execute(out)
                    }
                    Err(e) => {
                        let _ = reply.send(Err(e.into()));
                        false
                    }
                };
                self.run_preflight();
                changed
            }
            Command::SetLocalAddresses(addresses, reply) => {
                self.local_addresses = addresses;
                self.run_preflight();
                let _ = reply.send(());
                false
            }
            Command::Drain(timeout, reply) => {
                let owned_at_start = self.node.owned().count();
                let out = self.node.begin_drain(now, timeout);
                self.drain = Some(PendingDrain {
                    started: Instant::now(),
                    owned_at_start,
                    reply,
                });
                self.execute(out)
            }
            Command::Shutdown(_) => false,
        }
    }

    /// Opens sockets for new interfaces (or a changed index) and closes removed ones. A
    /// failure is recorded in the interface's status; the interface stays configured.
    fn sync_sockets(&mut self, interfaces: &[InterfaceFacts]) {
        let wanted: BTreeMap<&str, u32> = interfaces
            .iter()
            .map(|f| (f.name.as_str(), f.ifindex))
            .collect();
        let stale: Vec<String> = self
            .sockets
            .iter()
            .filter(|(name, s)| wanted.get(name.as_str()) != Some(&s.ifindex()))
            .map(|(name, _)| name.clone())
            .collect();
        for name in stale {
            self.sockets.remove(&name);
            if let Some(reader) = self.readers.remove(&name) {
                reader.abort();
            }
        }
        for (name, ifindex) in wanted {
            if self.sockets.contains_key(name) {
                continue;
            }
            match PacketSocket::open(ifindex) {
                Ok(socket) => {
                    info!(interface = %name, ifindex, "listening");
                    let socket = Arc::new(socket);
                    let reader = tokio::spawn(read_frames(
                        name.to_string(),
                        socket.clone(),
                        self.frames_tx.clone(),
                    ));
                    self.sockets.insert(name.to_string(), socket);
                    self.readers.insert(name.to_string(), reader);
                    self.node.set_socket_error(name, None);
                }
                Err(e) => {
                    warn!(interface = %name, ifindex, error = %e, "cannot open AF_PACKET socket");
                    self.node.set_socket_error(name, Some(e.to_string()));
                }
            }
        }
    }

    /// Carries out the node's outputs; returns whether ownership changed.
    fn execute(&mut self, outputs: Vec<Output>) -> bool {
        let mut changed = false;
        for output in outputs {
            match output {
                Output::Send {
                    interface,
                    frame,
                    kind,
                } => {
                    let Some(socket) = self.sockets.get(&interface) else {
                        continue;
                    };
                    match socket.try_send(&frame) {
                        Ok(()) => {
                            if let SentKind::Announce { group, first: true } = kind {
                                let now = self.now();
                                self.node.announce_sent(group, now);
                            }
                        }
                        Err(e) => {
                            self.node.send_failed();
                            debug!(%interface, error = %e, ?kind, "send failed");
                        }
                    }
                }
                Output::Owned(group) => {
                    changed = true;
                    self.memberships_for(&group, true);
                }
                Output::Released(group) => {
                    changed = true;
                    self.memberships_for(&group, false);
                }
            }
        }
        changed
    }

    fn memberships_for(&mut self, group: &VipGroup, join: bool) {
        let Some(ifindex) = self.sockets.get(&group.interface).map(|s| s.ifindex()) else {
            return;
        };
        for address in &group.addresses {
            let IpAddr::V6(v6) = address else { continue };
            let solicited = solicited_node(*v6);
            let result = if join {
                self.memberships.join(solicited, ifindex)
            } else {
                self.memberships.leave(solicited, ifindex)
            };
            if let Err(e) = result {
                warn!(group = %solicited, interface = %group.interface, join, error = %e,
                    "cannot change solicited-node membership");
            }
        }
    }

    fn run_preflight(&mut self) {
        let (groups, interfaces) = self.node.configured();
        let names: BTreeSet<&str> = groups.values().map(|g| g.interface.as_str()).collect();
        let kernel = KernelView {
            local_addresses: self.local_addresses.clone(),
            sysctls: preflight::read_arp_sysctls(names),
        };
        let warnings = preflight::check(groups, interfaces, &kernel);
        for w in &warnings {
            debug!(warning = %w, "preflight");
        }
        self.node.set_warnings(warnings);
    }

    fn finish_drain(&mut self) {
        if self.drain.is_none() || !self.node.is_drained() {
            return;
        }
        if let Some(drain) = self.drain.take() {
            let (handed_over, released) = self.node.drain_progress();
            let report = DrainReport {
                owned_at_start: drain.owned_at_start,
                handed_over,
                released,
                elapsed: drain.started.elapsed(),
            };
            info!(?report, "drained");
            let _ = drain.reply.send(report);
        }
    }

    fn publish(&mut self) {
        let status = self.node.status(self.now());
        self.status.send_if_modified(|current| {
            if *current == status {
                false
            } else {
                *current = status;
                true
            }
        });
        self.last_status = Instant::now();
    }

    fn stop(&mut self) {
        for (_, reader) in std::mem::take(&mut self.readers) {
            reader.abort();
        }
        self.sockets.clear();
    }
}

async fn read_frames(
    interface: String,
    socket: Arc<PacketSocket>,
    frames: mpsc::Sender<(String, Vec<u8>)>,
) {
    let mut buf = vec![0u8; 2048];
    loop {
        match socket.recv(&mut buf).await {
            Ok(len) => {
                let frame = buf[..len].to_vec();
                match frames.try_send((interface.clone(), frame)) {
                    Ok(()) => {}
                    Err(mpsc::error::TrySendError::Full(_)) => {
                        debug!(%interface, "frame queue full: frame dropped");
                    }
                    Err(mpsc::error::TrySendError::Closed(_)) => return,
                }
            }
            Err(e) => {
                warn!(%interface, error = %e, "receive failed");
                tokio::time::sleep(Duration::from_millis(100)).await;
            }
        }
    }
}
