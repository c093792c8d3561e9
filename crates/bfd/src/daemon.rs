//! The [`Bfd`] handle: the public face of the crate.
//!
//! One tokio task owns every [`Session`] and their timers; reader tasks move datagrams from the
//! receive sockets to it. It demultiplexes packets to sessions (by Your Discriminator, or by
//! source address, port, interface and local address while that is zero: RFC 5880 §6.8.6,
//! RFC 5881 §3, RFC 5883 §3), runs the sessions' outputs (send, arm timers), publishes
//! [`BfdStatus`] on a `watch` channel and every state change on a `broadcast` channel, so a BGP
//! speaker can close a session the moment BFD declares its path down.
//!
//! Decisions belong to `session`; sockets to `socket`. Sessions are identified by
//! [`SessionKey`]: [`Bfd::set_sessions`] adds, removes (after announcing AdminDown, RFC 5880
//! §6.8.16) and reconfigures them in place — a profile change goes through a Poll Sequence and
//! never resets the session.

use std::collections::{BTreeMap, BTreeSet, HashMap};
use std::io;
use std::net::SocketAddr;
use std::num::NonZeroU32;
use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::{Duration, Instant, SystemTime};

use tokio::net::UdpSocket;
use tokio::sync::{broadcast, mpsc, oneshot, watch};
use tokio::task::JoinHandle;
use tracing::{debug, info, warn};

use crate::config::{ConfigError, SessionConfig, SessionKey};
use crate::packet::{ControlPacket, DropReason, State};
use crate::session::{
    Input, Output, ReceivedPacket, Session, SessionStatus, StateChange, TimerKind,
};
use crate::socket::{self, Datagram, ReceiverKey, SendSocket};

/// How often counters in [`BfdStatus`] are refreshed (state changes are published at once), and
/// how often a session without a socket retries opening one.
const STATUS_INTERVAL: Duration = Duration::from_secs(1);
/// A removed session keeps announcing AdminDown for the peer's detection time (RFC 5880
/// §6.8.16), but never longer than this.
const MAX_ADMIN_DOWN_LINGER: Duration = Duration::from_secs(2);
/// Datagrams buffered between the readers and the session task.
const DATAGRAM_QUEUE: usize = 4096;
/// State changes buffered for slow subscribers; one that lags sees `RecvError::Lagged` and
/// should resynchronise from [`Bfd::status`].
const EVENT_QUEUE: usize = 1024;

/// Every session's status plus the daemon's counters.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct BfdStatus {
    pub sessions: BTreeMap<SessionKey, SessionStatus>,
    pub counters: DaemonCounters,
}

/// Counters over all sessions, for metrics.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct DaemonCounters {
    /// Datagrams received on the BFD ports.
    pub packets_in: u64,
    /// Control packets handed to the kernel.
    pub packets_out: u64,
    /// Control packets the kernel refused, or that had no socket to go out on.
    pub send_errors: u64,
    pub receive_errors: u64,
    /// Every discarded datagram, by reason (decoding, session selection, TTL, state).
    pub drops: BTreeMap<DropReason, u64>,
    /// State transitions of all sessions.
    pub state_changes: u64,
}

/// A session changed state.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct StateEvent {
    pub key: SessionKey,
    pub change: StateChange,
    pub at: SystemTime,
}

impl StateEvent {
    /// The session was Up and its path is broken: close the BGP session riding on it (see
    /// [`StateChange::is_path_failure`]).
    pub fn is_path_failure(&self) -> bool {
        self.change.is_path_failure()
    }
}

impl std::fmt::Display for StateEvent {
    /// "BFD 198.51.100.1: Up -> Down: control detection time expired".
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "BFD {}: {}", self.key, self.change)
    }
}

#[derive(Debug, thiserror::Error)]
pub enum BfdError {
    #[error("cannot open the BFD socket on {addr}: {source}")]
    Socket {
        addr: SocketAddr,
        #[source]
        source: io::Error,
    },
    #[error("BFD session {key}: {source}")]
    InvalidSession {
        key: SessionKey,
        #[source]
        source: ConfigError,
    },
    #[error("BFD session {0} is configured twice")]
    DuplicateSession(SessionKey),
    #[error("the BFD daemon has stopped")]
    Stopped,
}

enum Command {
    SetSessions(Vec<SessionConfig>, oneshot::Sender<Result<(), BfdError>>),
    Shutdown(oneshot::Sender<()>),
}

/// A running BFD daemon. Methods take `&self`; dropping it without [`Bfd::shutdown`] stops the
/// sessions without telling the peers (they see the detection time pass, as after a crash).
#[derive(Debug)]
pub struct Bfd {
    commands: mpsc::UnboundedSender<Command>,
    status: watch::Receiver<BfdStatus>,
    events: broadcast::Sender<StateEvent>,
    task: JoinHandle<()>,
}

impl Bfd {
    /// Binds the receive sockets (UDP 3784 and 4784 on every IPv4 and IPv6 address; IPv6 is
    /// skipped with a warning where the kernel has none) and starts the daemon on the current
    /// tokio runtime.
    pub async fn start() -> Result<Bfd, BfdError> {
        let (datagrams_tx, datagrams_rx) = mpsc::channel(DATAGRAM_QUEUE);
        let receive_errors = Arc::new(AtomicU64::new(0));
        let mut receivers = BTreeMap::new();
        for ipv6 in [false, true] {
            for multihop in [false, true] {
                let key = ReceiverKey {
                    interface: None,
                    ipv6,
                    multihop,
                };
                match socket::open_receive(&key) {
                    Ok(sock) => {
                        let task = spawn_reader(&key, sock, datagrams_tx.clone(), &receive_errors);
                        receivers.insert(key, Receiver { task, users: 0 });
                    }
                    Err(e) if ipv6 && e.raw_os_error() == Some(libc::EAFNOSUPPORT) => {
                        warn!(addr = %key.address(), "IPv6 is not available: no IPv6 BFD");
                    }
                    Err(source) => {
                        for r in receivers.values() {
                            r.task.abort();
                        }
                        return Err(BfdError::Socket {
                            addr: key.address(),
                            source,
                        });
                    }
                }
            }
        }
        let (commands, commands_rx) = mpsc::unbounded_channel();
        let (status_tx, status) = watch::channel(BfdStatus::default());
        let (events, _) = broadcast::channel(EVENT_QUEUE);
        let engine = Engine {
            sessions: BTreeMap::new(),
            by_key: BTreeMap::new(),
            by_discriminator: HashMap::new(),
            timers: BTreeSet::new(),
            next_id: 0,
            receivers,
            datagrams_tx,
            receive_errors,
            counters: DaemonCounters::default(),
            status: status_tx,
            events: events.clone(),
            status_dirty: true,
        };
        let task = tokio::spawn(engine.run(commands_rx, datagrams_rx));
        Ok(Bfd {
            commands,
            status,
            events,
            task,
        })
    }

    /// Replaces the session list. Sessions are matched by [`SessionKey`]: new keys start,
    /// missing ones announce AdminDown (diagnostic 7) and go, and a changed profile is applied
    /// in place through a Poll Sequence (RFC 5880 §6.8.3) without resetting the session.
    /// Invalid input (see [`SessionConfig::validate`]) changes nothing.
    pub async fn set_sessions(&self, sessions: Vec<SessionConfig>) -> Result<(), BfdError> {
        let (tx, rx) = oneshot::channel();
        self.commands
            .send(Command::SetSessions(sessions, tx))
            .map_err(|_| BfdError::Stopped)?;
        rx.await.map_err(|_| BfdError::Stopped)?
    }

    /// Every session's status; `changed().await` on it to follow. State changes are published
    /// at once, counters every second.
    pub fn status(&self) -> watch::Receiver<BfdStatus> {
        self.status.clone()
    }

    /// Every state change of every session, as it happens.
    pub fn subscribe(&self) -> broadcast::Receiver<StateEvent> {
        self.events.subscribe()
    }

    /// Takes every session administratively down (RFC 5880 §6.8.16, diagnostic 7), keeps
    /// sending AdminDown for the peers' detection time (at most 2 s), then stops.
    pub async fn shutdown(self) {
        let (tx, rx) = oneshot::channel();
        if self.commands.send(Command::Shutdown(tx)).is_ok() {
            let _ = rx.await;
        }
        let _ = self.task.await;
    }
}

struct Receiver {
    task: JoinHandle<()>,
    /// Sessions that need this socket (the wildcard ones are kept regardless).
    users: usize,
}

struct Entry {
    config: SessionConfig,
    session: Session,
    transport: Option<SendSocket>,
    send_error: Option<String>,
    /// Holds a reference on the receive socket of its interface (sessions with one only).
    receiver_held: bool,
    receive_error: Option<String>,
    /// The deadline armed for each timer, to find it in the timer set.
    deadlines: [Option<Instant>; 2],
    /// Removed from the configuration: announcing AdminDown until then.
    removal: Option<Instant>,
}

struct Engine {
    sessions: BTreeMap<u64, Entry>,
    by_key: BTreeMap<SessionKey, u64>,
    by_discriminator: HashMap<u32, u64>,
    timers: BTreeSet<(Instant, u64, TimerKind)>,
    next_id: u64,
    receivers: BTreeMap<ReceiverKey, Receiver>,
    datagrams_tx: mpsc::Sender<Datagram>,
    receive_errors: Arc<AtomicU64>,
    counters: DaemonCounters,
    status: watch::Sender<BfdStatus>,
    events: broadcast::Sender<StateEvent>,
    status_dirty: bool,
}

fn timer_index(kind: TimerKind) -> usize {
    match kind {
        TimerKind::Transmit => 0,
        TimerKind::Detection => 1,
    }
}

impl Engine {
    async fn run(
        mut self,
        mut commands: mpsc::UnboundedReceiver<Command>,
        mut datagrams: mpsc::Receiver<Datagram>,
    ) {
        let mut tick = tokio::time::interval(STATUS_INTERVAL);
        tick.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
        // Set once shutting down: when the last AdminDown has been sent, and who to tell.
        let mut stopping: Option<(Instant, oneshot::Sender<()>)> = None;
        loop {
            let next_timer = self.timers.first().map(|(at, _, _)| *at);
            let deadline = match (&stopping, next_timer) {
                (Some((stop, _)), Some(t)) => Some(t.min(*stop)),
                (Some((stop, _)), None) => Some(*stop),
                (None, t) => t,
            };
            tokio::select! {
                biased;
                cmd = commands.recv(), if stopping.is_none() => match cmd {
                    Some(Command::SetSessions(list, reply)) => {
                        let _ = reply.send(self.set_sessions(list));
                    }
                    Some(Command::Shutdown(done)) => {
                        let until = self.begin_shutdown();
                        stopping = Some((until, done));
                    }
                    None => {
                        // Dropped without shutdown: leave like a crash would.
                        self.stop_readers();
                        return;
                    }
                },
                // Timers before packets: a flood on the BFD ports must not delay our own
                // transmissions or detection.
                _ = sleep_until(deadline) => self.fire_timers(),
                Some(d) = datagrams.recv() => {
                    self.datagram(d);
                    // Take what else is queued, but look at the timers at least every 64.
                    for _ in 0..64 {
                        let Ok(d) = datagrams.try_recv() else { break };
                        self.datagram(d);
                    }
                }
                _ = tick.tick() => {
                    self.retry_transports();
                    self.reap_removed();
                    self.status_dirty = true;
                }
            }
            if let Some((stop, _)) = &stopping
                && Instant::now() >= *stop
            {
                self.stop_readers();
                self.sessions.clear();
                self.by_key.clear();
                self.status_dirty = true;
                self.publish();
                if let Some((_, done)) = stopping.take() {
                    let _ = done.send(());
                }
                return;
            }
            if self.status_dirty {
                self.publish();
            }
        }
    }

    // --------------------------------------------------------------------- configuration

    fn set_sessions(&mut self, list: Vec<SessionConfig>) -> Result<(), BfdError> {
        let mut wanted: BTreeMap<SessionKey, SessionConfig> = BTreeMap::new();
        for config in list {
            let key = config.key();
            config
                .validate()
                .map_err(|source| BfdError::InvalidSession {
                    key: key.clone(),
                    source,
                })?;
            if wanted.insert(key.clone(), config).is_some() {
                return Err(BfdError::DuplicateSession(key));
            }
        }
        let now = Instant::now();
        let removed: Vec<u64> = self
            .by_key
            .iter()
            .filter(|(key, _)| !wanted.contains_key(*key))
            .map(|(_, id)| *id)
            .collect();
        for id in removed {
            self.begin_removal(id, now);
        }
        for (key, config) in wanted {
            match self.by_key.get(&key).copied() {
                Some(id) => self.reconfigure(id, config, now),
                None => self.add(config, now)?,
            }
        }
        self.status_dirty = true;
        Ok(())
    }

    fn add(&mut self, config: SessionConfig, now: Instant) -> Result<(), BfdError> {
        let key = config.key();
        let discriminator = self.allocate_discriminator();
        let (session, outputs) = Session::new(&config, discriminator, now).map_err(|source| {
            BfdError::InvalidSession {
                key: key.clone(),
                source,
            }
        })?;
        info!(session = %key, discriminator = discriminator.get(), "BFD session added");
        let id = self.next_id;
        self.next_id += 1;
        let mut entry = Entry {
            config,
            session,
            transport: None,
            send_error: None,
            receiver_held: false,
            receive_error: None,
            deadlines: [None, None],
            removal: None,
        };
        open_transport(&key, &mut entry);
        self.sessions.insert(id, entry);
        self.by_key.insert(key.clone(), id);
        self.by_discriminator.insert(discriminator.get(), id);
        self.use_receiver(id);
        self.apply(id, outputs, now);
        Ok(())
    }

    fn reconfigure(&mut self, id: u64, config: SessionConfig, now: Instant) {
        let Some(entry) = self.sessions.get_mut(&id) else {
            return;
        };
        let mut outputs = Vec::new();
        if entry.removal.take().is_some() {
            info!(session = %config.key(), "BFD session configured again while leaving");
            outputs.extend(entry.session.handle(now, Input::AdminUp));
        }
        if entry.config.profile != config.profile {
            debug!(session = %config.key(), "BFD profile changed: renegotiating in place");
            outputs.extend(
                entry
                    .session
                    .handle(now, Input::ProfileChanged(config.profile.clone())),
            );
        }
        entry.config = config;
        self.apply(id, outputs, now);
    }

    fn begin_removal(&mut self, id: u64, now: Instant) {
        let Some(entry) = self.sessions.get_mut(&id) else {
            return;
        };
        if entry.removal.is_some() {
            return;
        }
        let was_live = matches!(entry.session.state(), State::Up | State::Init);
        let outputs = entry.session.handle(now, Input::AdminDown);
        let linger = if was_live {
            entry
                .session
                .remote_detection_time()
                .min(MAX_ADMIN_DOWN_LINGER)
        } else {
            Duration::ZERO
        };
        entry.removal = Some(now + linger);
        info!(session = %entry.session.key(), ?linger, "BFD session removed: announcing AdminDown");
        self.apply(id, outputs, now);
    }

    /// Starts removing every session; returns when the last AdminDown announcement is done.
    fn begin_shutdown(&mut self) -> Instant {
        let now = Instant::now();
        let ids: Vec<u64> = self.sessions.keys().copied().collect();
        for id in ids {
            self.begin_removal(id, now);
        }
        self.sessions
            .values()
            .filter_map(|e| e.removal)
            .max()
            .unwrap_or(now)
    }

    fn reap_removed(&mut self) {
        let now = Instant::now();
        let gone: Vec<u64> = self
            .sessions
            .iter()
            .filter(|(_, e)| e.removal.is_some_and(|at| at <= now))
            .map(|(id, _)| *id)
            .collect();
        for id in gone {
            let Some(entry) = self.sessions.remove(&id) else {
                continue;
            };
            for kind in [TimerKind::Transmit, TimerKind::Detection] {
                if let Some(at) = entry.deadlines[timer_index(kind)] {
                    self.timers.remove(&(at, id, kind));
                }
            }
            let key = entry.session.key().clone();
            self.by_key.remove(&key);
            self.by_discriminator
                .remove(&entry.session.local_discriminator());
            if entry.receiver_held {
                self.release_receiver(&key);
            }
            debug!(session = %key, "BFD session gone");
            self.status_dirty = true;
        }
    }

    fn allocate_discriminator(&self) -> NonZeroU32 {
        loop {
            // RFC 5880 §6.8.1: unique, and random so it is hard to guess.
            if let Some(d) = NonZeroU32::new(rand::random())
                && !self.by_discriminator.contains_key(&d.get())
            {
                return d;
            }
        }
    }

    // --------------------------------------------------------------------- sockets

    fn receiver_key(key: &SessionKey) -> Option<ReceiverKey> {
        key.interface.as_ref().map(|interface| ReceiverKey {
            interface: Some(interface.clone()),
            ipv6: key.peer.is_ipv6(),
            multihop: key.multihop,
        })
    }

    /// Makes sure a session bound to an interface holds a receive socket on it.
    fn use_receiver(&mut self, id: u64) {
        let Some(entry) = self.sessions.get(&id) else {
            return;
        };
        if entry.receiver_held {
            return;
        }
        let key = entry.session.key().clone();
        let Some(rkey) = Engine::receiver_key(&key) else {
            return;
        };
        let result = match self.receivers.get_mut(&rkey) {
            Some(r) => {
                r.users += 1;
                Ok(())
            }
            None => socket::open_receive(&rkey).map(|sock| {
                let task =
                    spawn_reader(&rkey, sock, self.datagrams_tx.clone(), &self.receive_errors);
                self.receivers
                    .insert(rkey.clone(), Receiver { task, users: 1 });
            }),
        };
        let Some(entry) = self.sessions.get_mut(&id) else {
            return;
        };
        match result {
            Ok(()) => {
                entry.receiver_held = true;
                entry.receive_error = None;
            }
            Err(e) => {
                warn!(session = %key, error = %e, "cannot open the BFD receive socket; retrying");
                entry.receive_error = Some(format!(
                    "receive socket on {}: {e}",
                    rkey.interface.as_deref().unwrap_or("*")
                ));
            }
        }
    }

    fn release_receiver(&mut self, key: &SessionKey) {
        let Some(rkey) = Engine::receiver_key(key) else {
            return;
        };
        if let Some(r) = self.receivers.get_mut(&rkey) {
            r.users = r.users.saturating_sub(1);
            if r.users == 0 {
                r.task.abort();
                self.receivers.remove(&rkey);
            }
        }
    }

    fn retry_transports(&mut self) {
        let ids: Vec<u64> = self.sessions.keys().copied().collect();
        for id in ids {
            if let Some(entry) = self.sessions.get_mut(&id)
                && entry.transport.is_none()
            {
                let key = entry.session.key().clone();
                open_transport(&key, entry);
            }
            self.use_receiver(id);
        }
    }

    fn stop_readers(&mut self) {
        for r in self.receivers.values() {
            r.task.abort();
        }
        self.receivers.clear();
    }

    // --------------------------------------------------------------------- packets and timers

    fn count_drop(&mut self, reason: DropReason) {
        *self.counters.drops.entry(reason).or_default() += 1;
    }

    fn datagram(&mut self, d: Datagram) {
        self.counters.packets_in += 1;
        let packet = match ControlPacket::decode(&d.payload) {
            Ok(p) => p,
            Err(e) => {
                debug!(source = %d.source, error = %e, "BFD packet dropped");
                return self.count_drop(e.drop_reason());
            }
        };
        let id = match self.select_session(&d, &packet) {
            Ok(id) => id,
            Err(reason) => {
                debug!(source = %d.source, %reason, "BFD packet matches no session");
                return self.count_drop(reason);
            }
        };
        let now = Instant::now();
        let Some(entry) = self.sessions.get_mut(&id) else {
            return;
        };
        let outputs = entry.session.handle(
            now,
            Input::PacketReceived(ReceivedPacket {
                packet,
                source: d.source,
                ttl: d.ttl,
            }),
        );
        self.apply(id, outputs, now);
    }

    /// RFC 5880 §6.8.6: by Your Discriminator when it is set; otherwise (RFC 5881 §3, RFC 5883
    /// §3) by source address, port, interface and, for sessions with a local address, the
    /// destination address, preferring the most specific session.
    fn select_session(&self, d: &Datagram, p: &ControlPacket) -> Result<u64, DropReason> {
        let interface_ok = |key: &SessionKey| match &key.interface {
            None => true,
            Some(name) => d.interface.as_deref() == Some(name.as_str()),
        };
        if p.your_discriminator != 0 {
            let id = *self
                .by_discriminator
                .get(&p.your_discriminator)
                .ok_or(DropReason::UnknownDiscriminator)?;
            let key = self
                .sessions
                .get(&id)
                .map(|e| e.session.key())
                .ok_or(DropReason::UnknownDiscriminator)?;
            if key.multihop != d.multihop || !interface_ok(key) {
                return Err(DropReason::WrongSource);
            }
            return Ok(id);
        }
        let first = SessionKey {
            peer: d.source,
            local: None,
            interface: None,
            multihop: false,
        };
        self.by_key
            .range(first..)
            .take_while(|(key, _)| key.peer == d.source)
            .filter(|(key, _)| {
                key.multihop == d.multihop
                    && interface_ok(key)
                    && key.local.is_none_or(|local| d.destination == Some(local))
            })
            .max_by_key(|(key, _)| {
                usize::from(key.interface.is_some()) + usize::from(key.local.is_some())
            })
            .map(|(_, id)| *id)
            .ok_or(DropReason::NoMatchingSession)
    }

    fn fire_timers(&mut self) {
        let now = Instant::now();
        while let Some(&(at, id, kind)) = self.timers.first() {
            if at > now {
                break;
            }
            self.timers.pop_first();
            let Some(entry) = self.sessions.get_mut(&id) else {
                continue;
            };
            entry.deadlines[timer_index(kind)] = None;
            let outputs = entry.session.handle(now, Input::TimerExpired(kind));
            self.apply(id, outputs, now);
        }
    }

    fn apply(&mut self, id: u64, outputs: Vec<Output>, now: Instant) {
        for output in outputs {
            match output {
                Output::Send(packet) => self.send(id, &packet),
                Output::ArmTimer { kind, at } => {
                    let Some(entry) = self.sessions.get_mut(&id) else {
                        continue;
                    };
                    if let Some(old) = entry.deadlines[timer_index(kind)].replace(at) {
                        self.timers.remove(&(old, id, kind));
                    }
                    self.timers.insert((at, id, kind));
                }
                Output::CancelTimer(kind) => {
                    let Some(entry) = self.sessions.get_mut(&id) else {
                        continue;
                    };
                    if let Some(old) = entry.deadlines[timer_index(kind)].take() {
                        self.timers.remove(&(old, id, kind));
                    }
                }
                Output::StateChanged(change) => {
                    let Some(entry) = self.sessions.get(&id) else {
                        continue;
                    };
                    let key = entry.session.key().clone();
                    info!(
                        session = %key,
                        from = %change.from,
                        to = %change.to,
                        diagnostic = %change.diagnostic,
                        remote_state = %change.remote_state,
                        "BFD session state changed"
                    );
                    self.counters.state_changes += 1;
                    let at = SystemTime::now()
                        .checked_sub(Instant::now().saturating_duration_since(now))
                        .unwrap_or_else(SystemTime::now);
                    // Nobody listening is fine.
                    let _ = self.events.send(StateEvent { key, change, at });
                    self.status_dirty = true;
                }
                Output::Dropped(reason) => self.count_drop(reason),
                Output::ProfileRefused(e) => {
                    // Profiles are validated before they reach a session.
                    warn!(error = %e, "BFD profile refused");
                }
            }
        }
    }

    fn send(&mut self, id: u64, packet: &ControlPacket) {
        let Some(entry) = self.sessions.get(&id) else {
            return;
        };
        let Some(transport) = &entry.transport else {
            self.counters.send_errors += 1;
            return;
        };
        match transport
            .socket
            .try_send_to(&packet.encode(), transport.destination)
        {
            Ok(_) => self.counters.packets_out += 1,
            Err(e) => {
                debug!(session = %entry.session.key(), error = %e, "BFD send failed");
                self.counters.send_errors += 1;
            }
        }
    }

    fn publish(&mut self) {
        self.status_dirty = false;
        let now = Instant::now();
        let wall = SystemTime::now();
        let sessions = self
            .sessions
            .values()
            .map(|e| {
                let mut status = e.session.status(now, wall);
                status.source_port = e.transport.as_ref().map(|t| t.source_port);
                status.transport_error = match (&e.send_error, &e.receive_error) {
                    (None, None) => None,
                    (Some(a), None) | (None, Some(a)) => Some(a.clone()),
                    (Some(a), Some(b)) => Some(format!("{a}; {b}")),
                };
                (status.key.clone(), status)
            })
            .collect();
        self.counters.receive_errors = self.receive_errors.load(Ordering::Relaxed);
        self.status.send_replace(BfdStatus {
            sessions,
            counters: self.counters.clone(),
        });
    }
}

fn open_transport(key: &SessionKey, entry: &mut Entry) {
    match socket::open_send(key) {
        Ok(t) => {
            debug!(session = %key, source_port = t.source_port, "BFD send socket open");
            entry.transport = Some(t);
            entry.send_error = None;
        }
        Err(e) => {
            warn!(session = %key, error = %e, "cannot open the BFD send socket; retrying");
            entry.send_error = Some(format!("send socket: {e}"));
        }
    }
}

fn spawn_reader(
    key: &ReceiverKey,
    socket: UdpSocket,
    datagrams: mpsc::Sender<Datagram>,
    errors: &Arc<AtomicU64>,
) -> JoinHandle<()> {
    let multihop = key.multihop;
    let interface: Option<Arc<str>> = key.interface.as_deref().map(Arc::from);
    let addr = key.address();
    let errors = errors.clone();
    tokio::spawn(async move {
        let mut buf = [0u8; socket::RECEIVE_BUFFER];
        let mut cmsg = socket::control_buffer();
        loop {
            match socket::receive(&socket, &mut buf, &mut cmsg).await {
                Ok(mut d) => {
                    d.multihop = multihop;
                    d.interface = interface.clone();
                    if datagrams.send(d).await.is_err() {
                        return;
                    }
                }
                Err(e) => {
                    errors.fetch_add(1, Ordering::Relaxed);
                    debug!(%addr, error = %e, "BFD receive failed");
                    // ICMP errors and the like: do not spin.
                    tokio::time::sleep(Duration::from_millis(10)).await;
                }
            }
        }
    })
}

async fn sleep_until(at: Option<Instant>) {
    match at {
        Some(at) => tokio::time::sleep_until(tokio::time::Instant::from_std(at)).await,
        None => std::future::pending().await,
    }
}
