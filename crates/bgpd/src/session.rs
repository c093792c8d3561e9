//! The tokio task that runs one peer: it moves bytes between sockets and the [`Fsm`], runs the
//! timers the FSM asks for, pulls UPDATEs out of the peer's [`AdjRibOut`] while the socket has
//! room, and publishes the peer's status.
//!
//! Decisions live in `fsm` and `rib_out`; this module only does I/O. Each connection has a
//! reader task (framing only) and a writer task with two queues: control messages (OPEN,
//! KEEPALIVE, NOTIFICATION) that always get through, and a bounded UPDATE queue whose capacity
//! is the backpressure that keeps a 1M-route table from being encoded faster than TCP drains it.

use std::collections::{BTreeMap, HashSet};
use std::io;
use std::net::SocketAddr;
use std::pin::Pin;
use std::sync::Arc;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::time::{Duration, SystemTime};

use bytes::BytesMut;
use ipnet::IpNet;
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::TcpStream;
use tokio::net::tcp::{OwnedReadHalf, OwnedWriteHalf};
use tokio::sync::{mpsc, oneshot, watch};
use tokio::task::JoinHandle;
use tokio::time::Instant;
use tracing::{debug, info, warn};

use crate::fsm::{Direction, Fsm, InboundDecision, Input, Output, SessionError, State, Timer};
use crate::peer::{LastError, LastNotification, PeerConfig, PeerStatus};
use crate::rib_out::{AdjRibOut, RouteAttributes, SessionParams};
use crate::speaker::SpeakerStatus;
use crate::transport::{self, ConnectParams};
use crate::wire::{
    AsSegment, CodecContext, DecodeError, Family, MAX_EXTENDED_MESSAGE_LEN, MAX_MESSAGE_LEN,
    Message, PathAttribute, frame_len,
};

/// UPDATEs queued per connection beyond what the kernel's socket buffer holds.
const UPDATE_QUEUE: usize = 32;
/// Frames buffered between a reader and the peer task.
const EVENT_QUEUE: usize = 64;
/// How long a connection attempt may take before it counts as failed.
const CONNECT_TIMEOUT: Duration = Duration::from_secs(10);
/// How long a closing connection may take to flush its last messages (a NOTIFICATION).
const CLOSE_FLUSH_TIMEOUT: Duration = Duration::from_secs(2);

pub(crate) enum PeerCommand {
    SetRoutes(Vec<(IpNet, RouteAttributes)>),
    /// A change that does not need a new session (see [`PeerConfig::needs_reset`]).
    Reconfigure(PeerConfig),
    Inbound(TcpStream),
    /// Re-advertise every route, now and from now on, as being drained (RFC 8326).
    GracefulShutdown,
    /// Cease on every connection, flush, and hand the routes back.
    Stop {
        subcode: u8,
        text: Option<String>,
        done: oneshot::Sender<AdjRibOut>,
    },
}

enum ConnEvent {
    Frame(BytesMut),
    Malformed(DecodeError),
    Closed(String),
}

enum WriterCommand {
    Write(Vec<u8>),
    Close,
}

struct Connection {
    id: u64,
    control: mpsc::UnboundedSender<WriterCommand>,
    updates: mpsc::Sender<Vec<u8>>,
    writer: JoinHandle<()>,
    reader: JoinHandle<()>,
    max_len: Arc<AtomicUsize>,
    local: SocketAddr,
}

type ConnectFuture = Pin<Box<dyn Future<Output = io::Result<TcpStream>> + Send>>;

pub(crate) struct PeerTask {
    config: PeerConfig,
    fsm: Fsm,
    rib: AdjRibOut,
    connections: [Option<Connection>; 2],
    closing: Vec<JoinHandle<()>>,
    next_conn_id: u64,
    events_tx: mpsc::Sender<(Direction, u64, ConnEvent)>,
    events_rx: mpsc::Receiver<(Direction, u64, ConnEvent)>,
    commands: mpsc::UnboundedReceiver<PeerCommand>,
    timers: BTreeMap<Timer, Instant>,
    connect: Option<ConnectFuture>,
    codec: CodecContext,
    session: Option<SessionParams>,
    /// Whether the RIB may have something to send (cleared when it returns nothing).
    rib_work: bool,
    /// Routes go out with GRACEFUL_SHUTDOWN (RFC 8326): the node is being drained.
    draining: bool,
    received: HashSet<IpNet>,
    status: watch::Sender<SpeakerStatus>,
    peer_status: PeerStatus,
}

impl PeerTask {
    pub(crate) fn new(
        config: PeerConfig,
        rib: AdjRibOut,
        commands: mpsc::UnboundedReceiver<PeerCommand>,
        status: watch::Sender<SpeakerStatus>,
        previous: Option<PeerStatus>,
    ) -> PeerTask {
        let (events_tx, events_rx) = mpsc::channel(EVENT_QUEUE);
        let mut peer_status = PeerStatus::new(&config);
        if let Some(previous) = previous {
            peer_status.flaps = previous.flaps;
            peer_status.last_error = previous.last_error;
            peer_status.last_notification_sent = previous.last_notification_sent;
            peer_status.last_notification_received = previous.last_notification_received;
            peer_status.messages_sent = previous.messages_sent;
            peer_status.messages_received = previous.messages_received;
        }
        peer_status.prefixes_desired = rib.desired_count();
        PeerTask {
            fsm: Fsm::new(config.session_config()),
            config,
            rib,
            connections: [None, None],
            closing: Vec::new(),
            next_conn_id: 0,
            events_tx,
            events_rx,
            commands,
            timers: BTreeMap::new(),
            connect: None,
            codec: CodecContext::default(),
            session: None,
            rib_work: false,
            draining: false,
            received: HashSet::new(),
            status,
            peer_status,
        }
    }

    pub(crate) async fn run(mut self) {
        info!(peer = %self.config.socket_addr(), name = %self.config.name, "peer started");
        let outputs = self.fsm.handle(Input::Start);
        self.apply(outputs);
        self.publish();
        loop {
            let deadline = self.timers.values().min().copied();
            let update_queue = self.sendable_queue();
            tokio::select! {
                biased;
                cmd = self.commands.recv() => match cmd {
                    Some(PeerCommand::Stop { subcode, text, done }) => {
                        self.stop(subcode, text).await;
                        let _ = done.send(std::mem::take(&mut self.rib));
                        return;
                    }
                    Some(cmd) => self.command(cmd),
                    None => {
                        // The speaker is gone without a shutdown: leave like a crash would, so
                        // a graceful-restart peer keeps our routes.
                        self.abort_all();
                        return;
                    }
                },
                Some((dir, id, event)) = self.events_rx.recv() => self.connection_event(dir, id, event),
                result = poll_connect(&mut self.connect) => {
                    self.connect = None;
                    self.connect_result(result);
                }
                _ = sleep_until(deadline) => self.fire_timers(),
                permit = reserve(update_queue) => {
                    if let Some(permit) = permit {
                        self.send_next_update(permit);
                        // Let the writer (and the reader, for the peer's KEEPALIVE) run between
                        // UPDATEs: on a single-threaded runtime a table walk would otherwise
                        // fill the queue before our KEEPALIVE leaves.
                        tokio::task::yield_now().await;
                    }
                }
            }
            self.publish();
        }
    }

    fn command(&mut self, cmd: PeerCommand) {
        match cmd {
            PeerCommand::SetRoutes(routes) => {
                if self.draining {
                    let ibgp = self.config.is_ibgp();
                    self.rib.set_desired(
                        routes
                            .into_iter()
                            .map(|(p, a)| (p, a.graceful_shutdown(ibgp))),
                    );
                } else {
                    self.rib.set_desired(routes);
                }
                self.rib_work = true;
            }
            PeerCommand::GracefulShutdown => {
                if !self.draining {
                    self.draining = true;
                    let ibgp = self.config.is_ibgp();
                    let drained: Vec<_> = self
                        .rib
                        .desired()
                        .map(|(p, a)| (*p, a.graceful_shutdown(ibgp)))
                        .collect();
                    self.rib.set_desired(drained);
                    self.rib_work = true;
                }
            }
            PeerCommand::Reconfigure(config) => self.reconfigure(config),
            PeerCommand::Inbound(stream) => self.inbound(stream),
            PeerCommand::Stop { .. } => {}
        }
    }

    fn reconfigure(&mut self, config: PeerConfig) {
        let next_hops_changed = config.next_hop_v4 != self.config.next_hop_v4
            || config.next_hop_v6 != self.config.next_hop_v6;
        self.config = config;
        self.fsm.reconfigure(self.config.session_config());
        if next_hops_changed && let Some((dir, _)) = self.fsm.established() {
            self.session = self.session_params(dir);
            // Every route carries the next hop: send them all again.
            for family in [Family::IPV4_UNICAST, Family::IPV6_UNICAST] {
                self.rib.route_refresh(family);
            }
            self.rib_work = true;
        }
    }

    fn inbound(&mut self, stream: TcpStream) {
        match self.fsm.inbound_decision() {
            InboundDecision::Reject(notification) => {
                debug!(peer = %self.config.address, "rejecting inbound connection: {notification}");
                let bytes = Message::Notification(notification).encode(&self.codec);
                tokio::spawn(async move {
                    let mut stream = stream;
                    if let Ok(bytes) = bytes {
                        let _ = tokio::time::timeout(CLOSE_FLUSH_TIMEOUT, stream.write_all(&bytes))
                            .await;
                    }
                    let _ = stream.shutdown().await;
                });
            }
            InboundDecision::ReplaceExisting => {
                self.close_connection(Direction::Inbound);
                let outputs = self.fsm.handle(Input::Closed(Direction::Inbound));
                self.apply(outputs);
                self.attach(Direction::Inbound, stream);
            }
            InboundDecision::Accept => self.attach(Direction::Inbound, stream),
        }
    }

    /// Wires a TCP connection to the FSM.
    fn attach(&mut self, dir: Direction, stream: TcpStream) {
        let local = match stream.local_addr() {
            Ok(a) => a,
            Err(e) => {
                warn!(peer = %self.config.address, error = %e, "connection lost before use");
                return;
            }
        };
        let (read, write) = stream.into_split();
        self.next_conn_id += 1;
        let id = self.next_conn_id;
        let max_len = Arc::new(AtomicUsize::new(MAX_MESSAGE_LEN));
        let (control, control_rx) = mpsc::unbounded_channel();
        let (updates, updates_rx) = mpsc::channel(UPDATE_QUEUE);
        let writer = tokio::spawn(write_loop(write, control_rx, updates_rx));
        let reader = tokio::spawn(read_loop(
            read,
            dir,
            id,
            max_len.clone(),
            self.events_tx.clone(),
        ));
        self.connections[dir_index(dir)] = Some(Connection {
            id,
            control,
            updates,
            writer,
            reader,
            max_len,
            local,
        });
        self.peer_status.last_connect_error = None;
        let outputs = self.fsm.handle(Input::Connected(dir));
        self.apply(outputs);
    }

    fn connect_result(&mut self, result: io::Result<TcpStream>) {
        match result {
            Ok(stream) => {
                debug!(peer = %self.config.socket_addr(), "connected");
                self.attach(Direction::Outbound, stream);
            }
            Err(e) => {
                debug!(peer = %self.config.socket_addr(), error = %e, "connect failed");
                self.peer_status.last_connect_error = Some(e.to_string());
                let outputs = self.fsm.handle(Input::ConnectFailed);
                self.apply(outputs);
            }
        }
    }

    fn connection_event(&mut self, dir: Direction, id: u64, event: ConnEvent) {
        // Events from a connection we already replaced or closed are stale.
        if self.connections[dir_index(dir)].as_ref().map(|c| c.id) != Some(id) {
            return;
        }
        let input = match event {
            ConnEvent::Frame(frame) => match Message::decode(&frame, &self.codec) {
                Ok(msg) => {
                    self.peer_status.messages_received.count(msg.message_type());
                    if matches!(msg, Message::Open(_)) {
                        // Set the frame limit before our KEEPALIVE lets the peer send UPDATEs.
                        // RFC 8654 §4: having advertised extended messages we receive them,
                        // whether or not the peer advertised them too.
                        let extended = self.config.extended_message;
                        if let Some(conn) = &self.connections[dir_index(dir)] {
                            conn.max_len.store(
                                if extended {
                                    MAX_EXTENDED_MESSAGE_LEN
                                } else {
                                    MAX_MESSAGE_LEN
                                },
                                Ordering::Relaxed,
                            );
                        }
                    }
                    Input::Received(dir, msg)
                }
                Err(e) => {
                    warn!(peer = %self.config.address, error = %e, "malformed message");
                    Input::Malformed(dir, e)
                }
            },
            ConnEvent::Malformed(e) => {
                warn!(peer = %self.config.address, error = %e, "malformed message header");
                Input::Malformed(dir, e)
            }
            ConnEvent::Closed(reason) => {
                debug!(peer = %self.config.address, %reason, "connection closed");
                self.close_connection(dir);
                Input::Closed(dir)
            }
        };
        let outputs = self.fsm.handle(input);
        self.apply(outputs);
    }

    fn fire_timers(&mut self) {
        let now = Instant::now();
        let due: Vec<Timer> = self
            .timers
            .iter()
            .filter(|(_, at)| **at <= now)
            .map(|(t, _)| *t)
            .collect();
        for timer in due {
            self.timers.remove(&timer);
            let outputs = self.fsm.handle(Input::TimerExpired(timer));
            self.apply(outputs);
        }
    }

    fn apply(&mut self, outputs: Vec<Output>) {
        for output in outputs {
            match output {
                Output::Connect => {
                    let params = ConnectParams {
                        peer: self.config.socket_addr(),
                        source: self.config.source_address,
                        password: self.config.password.clone(),
                        ttl: self.config.ttl(),
                    };
                    self.connect = Some(Box::pin(async move {
                        match tokio::time::timeout(CONNECT_TIMEOUT, transport::connect(&params))
                            .await
                        {
                            Ok(result) => result,
                            Err(_) => {
                                Err(io::Error::new(io::ErrorKind::TimedOut, "connect timed out"))
                            }
                        }
                    }));
                }
                Output::Send(dir, msg) => self.send_control(dir, msg),
                Output::Close(dir) => self.close_connection(dir),
                Output::StartTimer(timer, after) => {
                    self.timers.insert(timer, Instant::now() + after);
                }
                Output::StopTimer(timer) => {
                    self.timers.remove(&timer);
                }
                Output::Established(dir, negotiated) => {
                    self.codec = negotiated.codec(self.fsm.config());
                    self.session = self.session_params(dir);
                    self.rib.session_up(&negotiated.families);
                    self.rib_work = true;
                    self.peer_status.established_at = Some(SystemTime::now());
                    self.peer_status.local_address =
                        self.connections[dir_index(dir)].as_ref().map(|c| c.local);
                    info!(
                        peer = %self.config.socket_addr(), name = %self.config.name,
                        hold_time = negotiated.hold_time, families = ?negotiated.families,
                        "session established"
                    );
                    self.peer_status.negotiated = Some(*negotiated);
                }
                Output::Down => {
                    info!(peer = %self.config.socket_addr(), name = %self.config.name, "session down");
                    self.rib.session_down();
                    self.session = None;
                    self.codec = CodecContext::default();
                    self.received.clear();
                    self.peer_status.flaps += 1;
                    self.peer_status.established_at = None;
                    self.peer_status.negotiated = None;
                    self.peer_status.local_address = None;
                }
                Output::Error(error) => {
                    match &error {
                        SessionError::ConnectionClosed => {
                            debug!(peer = %self.config.address, "{error}")
                        }
                        _ => warn!(peer = %self.config.address, "{error}"),
                    }
                    let at = SystemTime::now();
                    match &error {
                        SessionError::NotificationSent(n) => {
                            self.peer_status.last_notification_sent = Some(LastNotification {
                                at,
                                notification: n.clone(),
                            });
                        }
                        SessionError::NotificationReceived(n) => {
                            self.peer_status.last_notification_received = Some(LastNotification {
                                at,
                                notification: n.clone(),
                            });
                        }
                        SessionError::ConnectionClosed => {}
                    }
                    self.peer_status.last_error = Some(LastError { at, error });
                }
                Output::UpdateReceived(update) => self.count_received(update),
                Output::RouteRefreshRequested(family) => {
                    debug!(peer = %self.config.address, %family, "route refresh requested");
                    self.rib.route_refresh(family);
                    self.rib_work = true;
                }
            }
        }
    }

    fn session_params(&self, dir: Direction) -> Option<SessionParams> {
        let (_, negotiated) = self.fsm.established()?;
        let local = self.connections[dir_index(dir)].as_ref()?.local;
        let (v4, v6) = transport::local_next_hops(transport::canonical_ip(local.ip()));
        Some(SessionParams {
            local_as: self.config.local_as,
            ibgp: self.config.is_ibgp(),
            codec: negotiated.codec(self.fsm.config()),
            families: negotiated.families.clone(),
            next_hop_v4: self.config.next_hop_v4.or(v4),
            next_hop_v6: self.config.next_hop_v6.or(v6).map(|g| (g, None)),
        })
    }

    /// The UPDATE queue of the established connection, when the RIB may have work for it.
    fn sendable_queue(&self) -> Option<mpsc::Sender<Vec<u8>>> {
        if !self.rib_work || self.session.is_none() {
            return None;
        }
        let (dir, _) = self.fsm.established()?;
        self.connections[dir_index(dir)]
            .as_ref()
            .map(|c| c.updates.clone())
    }

    fn send_next_update(&mut self, permit: mpsc::OwnedPermit<Vec<u8>>) {
        let Some(params) = &self.session else { return };
        let Some(update) = self.rib.next_update(params) else {
            self.rib_work = false;
            return;
        };
        match Message::Update(update).encode(&self.codec) {
            Ok(bytes) => {
                permit.send(bytes);
                self.peer_status.messages_sent.update += 1;
            }
            Err(e) => {
                // The packer sizes UPDATEs to the limit, so this is a bug, not peer input:
                // say so loudly and drop the message rather than the session.
                warn!(peer = %self.config.address, error = %e, "could not encode UPDATE");
            }
        }
    }

    fn send_control(&mut self, dir: Direction, msg: Message) {
        let Some(conn) = &self.connections[dir_index(dir)] else {
            return;
        };
        match msg.encode(&self.codec) {
            Ok(bytes) => {
                self.peer_status.messages_sent.count(msg.message_type());
                let _ = conn.control.send(WriterCommand::Write(bytes));
            }
            Err(e) => warn!(peer = %self.config.address, error = %e, "could not encode message"),
        }
    }

    fn close_connection(&mut self, dir: Direction) {
        if let Some(conn) = self.connections[dir_index(dir)].take() {
            let _ = conn.control.send(WriterCommand::Close);
            conn.reader.abort();
            self.closing.push(conn.writer);
        }
        self.closing.retain(|w| !w.is_finished());
    }

    fn count_received(&mut self, update: crate::wire::Update) {
        // RFC 4271 §9.1.2: a route whose AS_PATH already holds our AS is a loop; it does not
        // count as received (routers commonly echo our own routes back).
        let looped = update.attributes.iter().any(|a| match a {
            PathAttribute::AsPath(path) | PathAttribute::As4Path(path) => {
                path.segments.iter().any(|seg| match seg {
                    AsSegment::Sequence(asns)
                    | AsSegment::Set(asns)
                    | AsSegment::ConfedSequence(asns)
                    | AsSegment::ConfedSet(asns) => asns.contains(&self.config.local_as),
                })
            }
            _ => false,
        });
        let withdraw_all = update.treat_as_withdraw() || looped;
        if update.treat_as_withdraw() {
            warn!(peer = %self.config.address, errors = ?update.recovered_errors,
                "malformed attributes: routes in this UPDATE treated as withdrawn (RFC 7606)");
        }
        for p in &update.withdrawn {
            self.received.remove(&IpNet::V4(*p));
        }
        for p in &update.nlri {
            if withdraw_all {
                self.received.remove(&IpNet::V4(*p));
            } else {
                self.received.insert(IpNet::V4(*p));
            }
        }
        for attr in &update.attributes {
            match attr {
                PathAttribute::MpReach(reach) => {
                    for p in &reach.nlri {
                        if withdraw_all {
                            self.received.remove(p);
                        } else {
                            self.received.insert(*p);
                        }
                    }
                }
                PathAttribute::MpUnreach(unreach) => {
                    for p in &unreach.withdrawn {
                        self.received.remove(p);
                    }
                }
                _ => {}
            }
        }
    }

    async fn stop(&mut self, subcode: u8, text: Option<String>) {
        let outputs = self.fsm.handle(Input::Stop { subcode, text });
        self.apply(outputs);
        self.connect = None;
        for dir in [Direction::Outbound, Direction::Inbound] {
            self.close_connection(dir);
        }
        for writer in std::mem::take(&mut self.closing) {
            let _ = tokio::time::timeout(CLOSE_FLUSH_TIMEOUT, writer).await;
        }
        self.rib.session_down();
        self.peer_status.state = State::Idle;
        self.publish();
    }

    fn abort_all(&mut self) {
        for conn in self.connections.iter_mut().filter_map(Option::take) {
            conn.reader.abort();
            conn.writer.abort();
        }
        for writer in self.closing.drain(..) {
            writer.abort();
        }
    }

    fn publish(&mut self) {
        let s = &mut self.peer_status;
        s.state = self.fsm.state();
        s.prefixes_desired = self.rib.desired_count();
        s.prefixes_advertised_v4 = self.rib.advertised_count(Family::IPV4_UNICAST);
        s.prefixes_advertised_v6 = self.rib.advertised_count(Family::IPV6_UNICAST);
        s.prefixes_received = self.received.len();
        s.initial_sync_done = self.session.is_some() && self.rib.initial_sync_done();
        s.unsendable = match &self.session {
            Some(params) => self
                .rib
                .desired_families()
                .into_iter()
                .filter_map(|f| params.can_send(f).err().map(|why| (f, why.to_string())))
                .collect(),
            None => Vec::new(),
        };
        let snapshot = s.clone();
        self.status
            .send_if_modified(|all| match all.peers.get_mut(&snapshot.name) {
                Some(existing) if *existing == snapshot => false,
                Some(existing) => {
                    *existing = snapshot;
                    true
                }
                None => {
                    all.peers.insert(snapshot.name.clone(), snapshot);
                    true
                }
            });
    }
}

fn dir_index(dir: Direction) -> usize {
    match dir {
        Direction::Outbound => 0,
        Direction::Inbound => 1,
    }
}

async fn poll_connect(connect: &mut Option<ConnectFuture>) -> io::Result<TcpStream> {
    match connect {
        Some(fut) => fut.await,
        None => std::future::pending().await,
    }
}

async fn sleep_until(deadline: Option<Instant>) {
    match deadline {
        Some(at) => tokio::time::sleep_until(at).await,
        None => std::future::pending().await,
    }
}

async fn reserve(queue: Option<mpsc::Sender<Vec<u8>>>) -> Option<mpsc::OwnedPermit<Vec<u8>>> {
    match queue {
        Some(q) => q.reserve_owned().await.ok(),
        None => std::future::pending().await,
    }
}

/// Frames messages off the socket; decoding happens in the peer task, which knows the
/// negotiated codec parameters.
async fn read_loop(
    mut read: OwnedReadHalf,
    dir: Direction,
    id: u64,
    max_len: Arc<AtomicUsize>,
    events: mpsc::Sender<(Direction, u64, ConnEvent)>,
) {
    let mut buf = BytesMut::with_capacity(2 * MAX_MESSAGE_LEN);
    loop {
        loop {
            let ctx = CodecContext {
                max_received_len: max_len.load(Ordering::Relaxed),
                ..CodecContext::default()
            };
            match frame_len(&buf, &ctx) {
                Ok(Some(n)) => {
                    let frame = buf.split_to(n);
                    if events
                        .send((dir, id, ConnEvent::Frame(frame)))
                        .await
                        .is_err()
                    {
                        return;
                    }
                }
                Ok(None) => break,
                Err(e) => {
                    let _ = events.send((dir, id, ConnEvent::Malformed(e))).await;
                    return;
                }
            }
        }
        let event = match read.read_buf(&mut buf).await {
            Ok(0) => ConnEvent::Closed("end of stream".into()),
            Ok(_) => continue,
            Err(e) => ConnEvent::Closed(e.to_string()),
        };
        let _ = events.send((dir, id, event)).await;
        return;
    }
}

/// Writes control messages before queued UPDATEs; `Close` ends the connection right after the
/// control messages queued before it (a NOTIFICATION must be the last thing sent).
async fn write_loop(
    mut write: OwnedWriteHalf,
    mut control: mpsc::UnboundedReceiver<WriterCommand>,
    mut updates: mpsc::Receiver<Vec<u8>>,
) {
    loop {
        let bytes = tokio::select! {
            biased;
            cmd = control.recv() => match cmd {
                Some(WriterCommand::Write(bytes)) => bytes,
                Some(WriterCommand::Close) | None => break,
            },
            Some(bytes) = updates.recv() => bytes,
        };
        if write.write_all(&bytes).await.is_err() {
            return;
        }
    }
    let _ = tokio::time::timeout(CLOSE_FLUSH_TIMEOUT, write.shutdown()).await;
}
