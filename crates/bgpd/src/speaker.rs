//! The [`Speaker`] handle: the public face of the crate.
//!
//! A speaker owns the BGP listeners and one task per peer. Callers set the whole peer list
//! (peers are added, removed, reconfigured in place, or reset only when a session-defining field
//! changed — see [`PeerConfig::needs_reset`]), set each peer's desired routes, and watch
//! [`SpeakerStatus`]. Shutting down sends every peer a Cease NOTIFICATION (RFC 4486, with RFC 9003
//! text); dropping the handle without shutting down leaves like a crash, which a peer that
//! negotiated graceful restart answers by keeping our routes.

use std::collections::BTreeMap;
use std::io;
use std::net::{IpAddr, Ipv4Addr, Ipv6Addr, SocketAddr};
use std::time::Duration;

use ipnet::IpNet;
use tokio::net::{TcpListener, TcpStream};
use tokio::sync::{mpsc, oneshot, watch};
use tokio::task::JoinHandle;
use tracing::{debug, info, warn};

use crate::peer::{BGP_PORT, PeerConfig, PeerConfigError, PeerStatus};
use crate::rib_out::{AdjRibOut, RouteAttributes};
use crate::session::{PeerCommand, PeerTask};
use crate::transport;
use crate::wire::cease_subcode;

/// How the speaker listens for peers' connections.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct SpeakerConfig {
    /// Addresses to accept BGP connections on; empty means active-only (no listener).
    pub listen: Vec<SocketAddr>,
}

impl Default for SpeakerConfig {
    /// Listen on port 179 on every IPv4 and IPv6 address.
    fn default() -> Self {
        SpeakerConfig {
            listen: vec![
                SocketAddr::new(IpAddr::V4(Ipv4Addr::UNSPECIFIED), BGP_PORT),
                SocketAddr::new(IpAddr::V6(Ipv6Addr::UNSPECIFIED), BGP_PORT),
            ],
        }
    }
}

/// Every peer's status, keyed by peer name.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct SpeakerStatus {
    pub peers: BTreeMap<String, PeerStatus>,
}

#[derive(Debug, thiserror::Error)]
pub enum SpeakerError {
    #[error("cannot listen on {addr}: {source}")]
    Listen { addr: SocketAddr, source: io::Error },
    #[error(transparent)]
    InvalidPeer(#[from] PeerConfigError),
    #[error("peers {first} and {second} both use address {address}")]
    DuplicateAddress {
        address: IpAddr,
        first: String,
        second: String,
    },
    #[error("two peers are named {0}")]
    DuplicateName(String),
    #[error("no peer is named {0}")]
    UnknownPeer(String),
    #[error("the speaker has stopped")]
    Stopped,
}

enum SpeakerCommand {
    SetPeers(Vec<PeerConfig>, oneshot::Sender<Result<(), SpeakerError>>),
    SetRoutes(
        String,
        Vec<(IpNet, RouteAttributes)>,
        oneshot::Sender<Result<(), SpeakerError>>,
    ),
    GracefulShutdown(oneshot::Sender<()>),
    WithdrawAll(oneshot::Sender<()>),
    Shutdown(Option<String>, oneshot::Sender<()>),
}

/// A running BGP speaker. Cheap to share: methods take `&self`.
#[derive(Debug)]
pub struct Speaker {
    commands: mpsc::UnboundedSender<SpeakerCommand>,
    status: watch::Receiver<SpeakerStatus>,
    task: JoinHandle<()>,
}

impl Speaker {
    /// Binds the listeners and starts the speaker on the current tokio runtime.
    pub async fn start(config: SpeakerConfig) -> Result<Speaker, SpeakerError> {
        let mut listeners = Vec::new();
        for addr in &config.listen {
            let listener = transport::listen(*addr).map_err(|source| SpeakerError::Listen {
                addr: *addr,
                source,
            })?;
            listeners.push(listener);
        }
        let (commands, commands_rx) = mpsc::unbounded_channel();
        let (status_tx, status) = watch::channel(SpeakerStatus::default());
        let (accepted_tx, accepted_rx) = mpsc::channel(16);
        let listeners: Vec<(SocketAddr, std::sync::Arc<TcpListener>)> = listeners
            .into_iter()
            .zip(config.listen.iter().copied())
            .map(|(l, a)| (a, std::sync::Arc::new(l)))
            .collect();
        let accept_tasks = listeners
            .iter()
            .map(|(addr, l)| tokio::spawn(accept_loop(*addr, l.clone(), accepted_tx.clone())))
            .collect();
        let task = SpeakerTask {
            peers: BTreeMap::new(),
            unclaimed_routes: BTreeMap::new(),
            listeners,
            accept_tasks,
            md5_keys: BTreeMap::new(),
            draining: false,
            status: status_tx,
        };
        let task = tokio::spawn(task.run(commands_rx, accepted_rx));
        Ok(Speaker {
            commands,
            status,
            task,
        })
    }

    /// Replaces the peer list. Invalid input changes nothing.
    pub async fn set_peers(&self, peers: Vec<PeerConfig>) -> Result<(), SpeakerError> {
        let (tx, rx) = oneshot::channel();
        self.commands
            .send(SpeakerCommand::SetPeers(peers, tx))
            .map_err(|_| SpeakerError::Stopped)?;
        rx.await.map_err(|_| SpeakerError::Stopped)?
    }

    /// Replaces the routes a peer should have. Routes for a name that is not (yet) a peer are
    /// kept until a peer of that name is added.
    pub async fn set_routes(
        &self,
        peer: &str,
        routes: Vec<(IpNet, RouteAttributes)>,
    ) -> Result<(), SpeakerError> {
        let (tx, rx) = oneshot::channel();
        self.commands
            .send(SpeakerCommand::SetRoutes(peer.to_string(), routes, tx))
            .map_err(|_| SpeakerError::Stopped)?;
        rx.await.map_err(|_| SpeakerError::Stopped)?
    }

    /// The status of every peer; `changed().await` on it to follow changes.
    pub fn status(&self) -> watch::Receiver<SpeakerStatus> {
        self.status.clone()
    }

    /// Drains the speaker before it stops, so that routers move traffic away before our routes
    /// disappear (RFC 8326): every route is re-advertised with the GRACEFUL_SHUTDOWN community
    /// (and LOCAL_PREF 0 towards iBGP peers), then after `hold` every route is withdrawn, and
    /// once the withdrawals are out (or after `hold` again) every peer gets a Cease with `text`.
    /// Routes set while draining are drained too.
    pub async fn drain(self, hold: Duration, text: Option<String>) {
        let (tx, rx) = oneshot::channel();
        if self
            .commands
            .send(SpeakerCommand::GracefulShutdown(tx))
            .is_ok()
        {
            let _ = rx.await;
        }
        info!(hold = ?hold, "draining: routes re-advertised with GRACEFUL_SHUTDOWN");
        tokio::time::sleep(hold).await;
        let (tx, rx) = oneshot::channel();
        if self.commands.send(SpeakerCommand::WithdrawAll(tx)).is_ok() {
            let _ = rx.await;
        }
        let mut status = self.status();
        let withdrawn = |s: &SpeakerStatus| {
            s.peers.values().all(|p| {
                p.state != crate::fsm::State::Established
                    || (p.prefixes_advertised_v4 == 0 && p.prefixes_advertised_v6 == 0)
            })
        };
        let _ = tokio::time::timeout(hold.max(Duration::from_secs(1)), async {
            while !withdrawn(&status.borrow_and_update()) {
                if status.changed().await.is_err() {
                    return;
                }
            }
        })
        .await;
        info!("draining: routes withdrawn");
        self.shutdown(text).await;
    }

    /// Sends every peer a Cease/Administrative Shutdown with `text` (RFC 9003) and waits until
    /// the NOTIFICATIONs are written.
    pub async fn shutdown(self, text: Option<String>) {
        let (tx, rx) = oneshot::channel();
        if self
            .commands
            .send(SpeakerCommand::Shutdown(text, tx))
            .is_ok()
        {
            let _ = rx.await;
        }
        let _ = self.task.await;
    }
}

struct PeerHandle {
    config: PeerConfig,
    commands: mpsc::UnboundedSender<PeerCommand>,
}

struct SpeakerTask {
    peers: BTreeMap<String, PeerHandle>,
    /// Routes set for names that are not peers yet.
    unclaimed_routes: BTreeMap<String, Vec<(IpNet, RouteAttributes)>>,
    listeners: Vec<(SocketAddr, std::sync::Arc<TcpListener>)>,
    accept_tasks: Vec<JoinHandle<()>>,
    /// MD5 keys installed on the listeners, by peer address.
    md5_keys: BTreeMap<IpAddr, String>,
    /// Draining: peers added from now on start draining too.
    draining: bool,
    status: watch::Sender<SpeakerStatus>,
}

impl SpeakerTask {
    async fn run(
        mut self,
        mut commands: mpsc::UnboundedReceiver<SpeakerCommand>,
        mut accepted: mpsc::Receiver<(TcpStream, SocketAddr)>,
    ) {
        loop {
            tokio::select! {
                cmd = commands.recv() => match cmd {
                    Some(SpeakerCommand::SetPeers(peers, reply)) => {
                        let _ = reply.send(self.set_peers(peers).await);
                    }
                    Some(SpeakerCommand::SetRoutes(name, routes, reply)) => {
                        let _ = reply.send(self.set_routes(name, routes));
                    }
                    Some(SpeakerCommand::GracefulShutdown(done)) => {
                        self.draining = true;
                        for handle in self.peers.values() {
                            let _ = handle.commands.send(PeerCommand::GracefulShutdown);
                        }
                        let _ = done.send(());
                    }
                    Some(SpeakerCommand::WithdrawAll(done)) => {
                        self.unclaimed_routes.clear();
                        for handle in self.peers.values() {
                            let _ = handle.commands.send(PeerCommand::SetRoutes(Vec::new()));
                        }
                        let _ = done.send(());
                    }
                    Some(SpeakerCommand::Shutdown(text, done)) => {
                        self.shutdown(text).await;
                        let _ = done.send(());
                        return;
                    }
                    None => {
                        // Dropped without shutdown: peer tasks see their channels close and
                        // leave without a NOTIFICATION.
                        self.stop_listening();
                        return;
                    }
                },
                Some((stream, remote)) = accepted.recv() => self.inbound(stream, remote),
            }
        }
    }

    async fn set_peers(&mut self, peers: Vec<PeerConfig>) -> Result<(), SpeakerError> {
        let mut by_address: BTreeMap<IpAddr, &str> = BTreeMap::new();
        let mut names = std::collections::BTreeSet::new();
        for peer in &peers {
            peer.validate()?;
            if !names.insert(peer.name.as_str()) {
                return Err(SpeakerError::DuplicateName(peer.name.clone()));
            }
            if let Some(first) = by_address.insert(peer.address, &peer.name) {
                return Err(SpeakerError::DuplicateAddress {
                    address: peer.address,
                    first: first.to_string(),
                    second: peer.name.clone(),
                });
            }
        }
        let mut wanted: BTreeMap<String, PeerConfig> =
            peers.into_iter().map(|p| (p.name.clone(), p)).collect();

        let removed: Vec<String> = self
            .peers
            .keys()
            .filter(|n| !wanted.contains_key(*n))
            .cloned()
            .collect();
        for name in removed {
            info!(peer = %name, "peer removed");
            if let Some(handle) = self.peers.remove(&name) {
                stop_peer(&handle, cease_subcode::PEER_DECONFIGURED, None).await;
            }
            self.status.send_modify(|s| {
                s.peers.remove(&name);
            });
        }

        for (name, config) in std::mem::take(&mut wanted) {
            match self.peers.get_mut(&name) {
                Some(handle) if handle.config == config => {}
                Some(handle) if !handle.config.needs_reset(&config) => {
                    debug!(peer = %name, "peer reconfigured in place");
                    handle.config = config.clone();
                    let _ = handle.commands.send(PeerCommand::Reconfigure(config));
                }
                Some(handle) => {
                    let changes = handle.config.session_changes(&config).join(", ");
                    info!(peer = %name, %changes, "session-defining change: resetting session");
                    // RFC 9003: tell the router's operator why, in the NOTIFICATION itself.
                    let text = format!("ferrolb: {changes} changed");
                    let rib = match self.peers.remove(&name) {
                        Some(old) => {
                            stop_peer(&old, cease_subcode::ADMINISTRATIVE_RESET, Some(&text))
                                .await
                                .unwrap_or_default()
                        }
                        None => AdjRibOut::new(),
                    };
                    // Read after the stop, so the reset itself is in the history.
                    let previous = self.status.borrow().peers.get(&name).cloned();
                    self.spawn_peer(config, rib, previous);
                }
                None => {
                    info!(peer = %name, address = %config.address, "peer added");
                    let mut rib = AdjRibOut::new();
                    if let Some(routes) = self.unclaimed_routes.remove(&name) {
                        rib.set_desired(routes);
                    }
                    self.spawn_peer(config, rib, None);
                }
            }
        }
        self.sync_md5_keys();
        Ok(())
    }

    /// Starts a peer's task; `previous` carries a reset peer's history (flaps, last error,
    /// counters) into the new session's status.
    fn spawn_peer(&mut self, config: PeerConfig, rib: AdjRibOut, previous: Option<PeerStatus>) {
        let (tx, rx) = mpsc::unbounded_channel();
        let task = PeerTask::new(config.clone(), rib, rx, self.status.clone(), previous);
        if self.draining {
            let _ = tx.send(PeerCommand::GracefulShutdown);
        }
        tokio::spawn(task.run());
        self.peers.insert(
            config.name.clone(),
            PeerHandle {
                config,
                commands: tx,
            },
        );
    }

    fn set_routes(
        &mut self,
        name: String,
        routes: Vec<(IpNet, RouteAttributes)>,
    ) -> Result<(), SpeakerError> {
        match self.peers.get(&name) {
            Some(handle) => handle
                .commands
                .send(PeerCommand::SetRoutes(routes))
                .map_err(|_| SpeakerError::Stopped),
            None => {
                self.unclaimed_routes.insert(name, routes);
                Ok(())
            }
        }
    }

    fn inbound(&mut self, stream: TcpStream, remote: SocketAddr) {
        let ip = transport::canonical_ip(remote.ip());
        let Some(handle) = self.peers.values().find(|h| h.config.address == ip) else {
            debug!(%remote, "connection from an address that is not a peer: closed");
            return;
        };
        if let Err(e) = transport::prepare_accepted(&stream, handle.config.ttl()) {
            warn!(%remote, error = %e, "cannot prepare accepted connection");
            return;
        }
        let _ = handle.commands.send(PeerCommand::Inbound(stream));
    }

    /// Keeps each listener's MD5 keys equal to the peers' passwords (RFC 2385: without the key
    /// on the listener, the peer's signed SYNs are dropped).
    fn sync_md5_keys(&mut self) {
        let wanted: BTreeMap<IpAddr, String> = self
            .peers
            .values()
            .filter_map(|h| h.config.password.clone().map(|p| (h.config.address, p)))
            .collect();
        for (addr, _) in self
            .md5_keys
            .iter()
            .filter(|(a, _)| !wanted.contains_key(a))
        {
            self.apply_md5(*addr, None);
        }
        for (addr, password) in &wanted {
            if self.md5_keys.get(addr) != Some(password) {
                self.apply_md5(*addr, Some(password));
            }
        }
        self.md5_keys = wanted;
    }

    fn apply_md5(&self, peer: IpAddr, password: Option<&str>) {
        for (addr, listener) in &self.listeners {
            if addr.is_ipv4() == peer.is_ipv4()
                && let Err(e) = transport::set_md5_key(listener.as_ref(), peer, password)
            {
                warn!(%peer, listener = %addr, error = %e, "cannot set TCP MD5 key");
            }
        }
    }

    async fn shutdown(&mut self, text: Option<String>) {
        self.stop_listening();
        // Tell every peer first, then wait: the peers stop concurrently.
        let mut waits = Vec::new();
        for handle in self.peers.values() {
            let (done, rx) = oneshot::channel();
            let stop = PeerCommand::Stop {
                subcode: cease_subcode::ADMINISTRATIVE_SHUTDOWN,
                text: text.clone(),
                done,
            };
            if handle.commands.send(stop).is_ok() {
                waits.push(rx);
            }
        }
        for rx in waits {
            let _ = rx.await;
        }
        self.peers.clear();
    }

    fn stop_listening(&mut self) {
        for task in self.accept_tasks.drain(..) {
            task.abort();
        }
        self.listeners.clear();
    }
}

async fn stop_peer(handle: &PeerHandle, subcode: u8, text: Option<&str>) -> Option<AdjRibOut> {
    let (done, rx) = oneshot::channel();
    let stop = PeerCommand::Stop {
        subcode,
        text: text.map(str::to_string),
        done,
    };
    handle.commands.send(stop).ok()?;
    rx.await.ok()
}

async fn accept_loop(
    addr: SocketAddr,
    listener: std::sync::Arc<TcpListener>,
    accepted: mpsc::Sender<(TcpStream, SocketAddr)>,
) {
    loop {
        match listener.accept().await {
            Ok((stream, remote)) => {
                if accepted.send((stream, remote)).await.is_err() {
                    return;
                }
            }
            Err(e) => {
                // EMFILE and friends: back off instead of spinning.
                warn!(listener = %addr, error = %e, "accept failed");
                tokio::time::sleep(std::time::Duration::from_millis(100)).await;
            }
        }
    }
}
