//! The BGP session state machine (RFC 4271 §8), sans-IO.
//!
//! [`Fsm`] owns everything about one peer's session that is a decision: which connection to
//! open or keep (collision detection, RFC 4271 §6.8), OPEN negotiation (hold time, capabilities,
//! RFC 5492), timers and their durations (hold, keepalive, connect retry with exponential backoff
//! and jitter), and which NOTIFICATION to send when. It does no I/O and never reads a clock:
//! the driver feeds it [`Input`]s (a TCP connection came up, a message arrived, a timer fired) and
//! carries out the [`Output`]s (connect, send, close, arm a timer). Routes are not its business;
//! see `rib_out`.
//!
//! A peer may have two connections at once for a short while: the one we initiated
//! ([`Direction::Outbound`]) and one the peer initiated ([`Direction::Inbound`]). Each has its
//! own hold and keepalive timers; at most one survives the OPEN exchange.

use std::net::Ipv4Addr;
use std::time::Duration;

use crate::wire::{
    Capability, CodecContext, DecodeError, Family, GracefulRestart, GracefulRestartFamily,
    MAX_EXTENDED_MESSAGE_LEN, MAX_MESSAGE_LEN, Message, Notification, Open, Update, cease_subcode,
    error_code, fsm_subcode, open_subcode,
};

/// RFC 4271 §10 suggests 4 minutes for the hold timer while waiting for the peer's OPEN.
pub const OPEN_HOLD_TIME: Duration = Duration::from_secs(240);

/// Who opened a TCP connection.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub enum Direction {
    /// We connected to the peer.
    Outbound,
    /// The peer connected to our listener.
    Inbound,
}

impl Direction {
    fn index(self) -> usize {
        match self {
            Direction::Outbound => 0,
            Direction::Inbound => 1,
        }
    }

    fn other(self) -> Direction {
        match self {
            Direction::Outbound => Direction::Inbound,
            Direction::Inbound => Direction::Outbound,
        }
    }
}

/// The RFC 4271 §8.2.2 states, as reported for the peer as a whole.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub enum State {
    Idle,
    Connect,
    Active,
    OpenSent,
    OpenConfirm,
    Established,
}

impl std::fmt::Display for State {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(match self {
            State::Idle => "Idle",
            State::Connect => "Connect",
            State::Active => "Active",
            State::OpenSent => "OpenSent",
            State::OpenConfirm => "OpenConfirm",
            State::Established => "Established",
        })
    }
}

/// Timers the FSM asks the driver to run.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub enum Timer {
    ConnectRetry,
    Hold(Direction),
    Keepalive(Direction),
}

/// Exponential backoff for outbound connection attempts.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Backoff {
    pub initial: Duration,
    pub max: Duration,
}

impl Default for Backoff {
    /// Retry fast (the point is to converge quickly after a router restart) but back off to a
    /// polite ceiling for a peer that stays away.
    fn default() -> Self {
        Backoff {
            initial: Duration::from_secs(1),
            max: Duration::from_secs(60),
        }
    }
}

/// Graceful restart as the restarting speaker (RFC 4724).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct GracefulRestartConfig {
    /// How long the peer should keep our routes after the session drops, in seconds (≤ 4095).
    pub restart_time: u16,
}

/// What the FSM needs to know about the session it runs.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct SessionConfig {
    pub local_as: u32,
    pub peer_as: u32,
    pub router_id: Ipv4Addr,
    /// Proposed hold time in seconds: 0 (no keepalives) or at least 3.
    pub hold_time: u16,
    /// Keepalive interval; `None` is a third of the negotiated hold time.
    pub keepalive_time: Option<Duration>,
    /// Families we offer (MP-BGP capabilities).
    pub families: Vec<Family>,
    pub graceful_restart: Option<GracefulRestartConfig>,
    /// Never connect; only accept the peer's connection.
    pub passive: bool,
    pub connect_retry: Backoff,
    /// Offer RFC 8654 extended messages.
    pub extended_message: bool,
    /// Seed for backoff jitter, so a test (or a replay) sees the same delays.
    pub jitter_seed: u64,
}

impl SessionConfig {
    pub fn is_ibgp(&self) -> bool {
        self.local_as == self.peer_as
    }
}

/// Something happened that the FSM must react to.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Input {
    /// Administrative start (RFC 4271 ManualStart, with automatic restarts afterwards).
    Start,
    /// Administrative stop: a Cease NOTIFICATION with `subcode` (and RFC 9003 text) on every
    /// connection, then Idle until the next `Start`.
    Stop {
        subcode: u8,
        text: Option<String>,
    },
    /// A TCP connection is up. For `Inbound`, ask [`Fsm::inbound_decision`] first.
    Connected(Direction),
    /// The outbound connection attempt failed.
    ConnectFailed,
    /// The connection was closed by the peer or failed.
    Closed(Direction),
    Received(Direction, Message),
    /// The peer sent bytes that do not decode.
    Malformed(Direction, DecodeError),
    TimerExpired(Timer),
}

/// What the driver must do, in order.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Output {
    /// Start an outbound TCP connection attempt.
    Connect,
    Send(Direction, Message),
    /// Close the connection once what was queued before this output has been written.
    Close(Direction),
    StartTimer(Timer, Duration),
    StopTimer(Timer),
    /// The session reached Established on this connection.
    Established(Direction, Box<Negotiated>),
    /// The session left Established.
    Down,
    /// Something went wrong; recorded as the peer's last error.
    Error(SessionError),
    /// An UPDATE arrived in Established.
    UpdateReceived(Update),
    /// The peer asked us to re-send our routes for a family (RFC 2918).
    RouteRefreshRequested(Family),
}

/// Why a session (or an attempt at one) ended.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum SessionError {
    NotificationSent(Notification),
    NotificationReceived(Notification),
    /// The peer closed the connection without a NOTIFICATION.
    ConnectionClosed,
}

impl std::fmt::Display for SessionError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            SessionError::NotificationSent(n) => write!(f, "sent NOTIFICATION {n}"),
            SessionError::NotificationReceived(n) => write!(f, "received NOTIFICATION {n}"),
            SessionError::ConnectionClosed => f.write_str("connection closed by peer"),
        }
    }
}

/// What the two OPENs agreed on.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Negotiated {
    pub peer_router_id: Ipv4Addr,
    pub peer_as: u32,
    /// Seconds; 0 means no hold timer and no keepalives.
    pub hold_time: u16,
    pub keepalive: Duration,
    pub four_octet_as: bool,
    /// Families both sides enabled, in our order.
    pub families: Vec<Family>,
    pub route_refresh: bool,
    pub extended_message: bool,
    /// Both sides advertised graceful restart.
    pub graceful_restart: bool,
    /// The peer's capabilities as received, for status.
    pub peer_capabilities: Vec<Capability>,
}

impl Negotiated {
    /// The codec parameters of this session, given our side of it (`local`, which decided what
    /// our OPEN offered and whether the peer is internal).
    pub fn codec(&self, local: &SessionConfig) -> CodecContext {
        let limit = |extended: bool| {
            if extended {
                MAX_EXTENDED_MESSAGE_LEN
            } else {
                MAX_MESSAGE_LEN
            }
        };
        CodecContext {
            four_octet_as: self.four_octet_as,
            // RFC 8654 §4: we send extended messages only to a peer that advertised them (and
            // only if we did), but having advertised them we must receive them from any peer.
            max_message_len: limit(self.extended_message),
            max_received_len: limit(local.extended_message),
            ibgp: local.is_ibgp(),
        }
    }
}

/// What to do with a connection the peer opened to our listener.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum InboundDecision {
    /// Feed `Input::Connected(Inbound)`.
    Accept,
    /// Feed `Input::Closed(Inbound)` for the current inbound connection, then `Connected(Inbound)`.
    ReplaceExisting,
    /// Send the returned NOTIFICATION on the new connection and drop it; the FSM is not told.
    Reject(Notification),
}

#[derive(Clone, Debug, PartialEq, Eq)]
enum Stage {
    OpenSent,
    OpenConfirm(Box<Negotiated>),
    Established(Box<Negotiated>),
}

#[derive(Clone, Debug, PartialEq, Eq)]
struct Connection {
    stage: Stage,
}

/// One peer's session state machine.
#[derive(Debug)]
pub struct Fsm {
    config: SessionConfig,
    admin_up: bool,
    /// An outbound connection attempt is in flight (the Connect state).
    connecting: bool,
    connections: [Option<Connection>; 2],
    /// Consecutive connection failures, for the backoff exponent.
    failures: u32,
    ever_established: bool,
    rng: u64,
}

impl Fsm {
    pub fn new(config: SessionConfig) -> Fsm {
        // xorshift64 must not start at zero.
        let rng = config.jitter_seed | 1;
        Fsm {
            config,
            admin_up: false,
            connecting: false,
            connections: [None, None],
            failures: 0,
            ever_established: false,
            rng,
        }
    }

    pub fn config(&self) -> &SessionConfig {
        &self.config
    }

    /// Takes a new configuration without touching the session. Only fields that do not define
    /// the session (keepalive interval, connect backoff) may differ; they apply from the next
    /// negotiation or retry on.
    pub fn reconfigure(&mut self, config: SessionConfig) {
        self.config = config;
    }

    /// The state of the peer as a whole: the most advanced connection wins.
    pub fn state(&self) -> State {
        let best = self
            .connections
            .iter()
            .flatten()
            .map(|c| match c.stage {
                Stage::OpenSent => State::OpenSent,
                Stage::OpenConfirm(_) => State::OpenConfirm,
                Stage::Established(_) => State::Established,
            })
            .max();
        match best {
            Some(state) => state,
            None if self.connecting => State::Connect,
            None if self.admin_up => State::Active,
            None => State::Idle,
        }
    }

    /// The established session's negotiated parameters, if there is one.
    pub fn established(&self) -> Option<(Direction, &Negotiated)> {
        [Direction::Outbound, Direction::Inbound]
            .into_iter()
            .find_map(|dir| match &self.connections[dir.index()] {
                Some(Connection {
                    stage: Stage::Established(n),
                }) => Some((dir, &**n)),
                _ => None,
            })
    }

    /// Whether a connection exists in this direction (the driver holds a socket for it).
    pub fn has_connection(&self, direction: Direction) -> bool {
        self.connections[direction.index()].is_some()
    }

    /// RFC 4271 §8.2.1.5 and §6.8 for a connection arriving at our listener.
    pub fn inbound_decision(&self) -> InboundDecision {
        if !self.admin_up {
            return InboundDecision::Reject(Notification::cease(
                cease_subcode::CONNECTION_REJECTED,
                None,
            ));
        }
        match self.established() {
            // RFC 4724 §4.2: a peer that negotiated graceful restart and reconnects has
            // restarted; the old connection is dead even if TCP has not noticed yet.
            Some((Direction::Inbound, n)) if n.graceful_restart => InboundDecision::ReplaceExisting,
            Some(_) => InboundDecision::Reject(Notification::cease(
                cease_subcode::CONNECTION_COLLISION_RESOLUTION,
                None,
            )),
            None if self.has_connection(Direction::Inbound) => InboundDecision::ReplaceExisting,
            None => InboundDecision::Accept,
        }
    }

    pub fn handle(&mut self, input: Input) -> Vec<Output> {
        let mut out = Vec::new();
        match input {
            Input::Start => self.start(&mut out),
            Input::Stop { subcode, text } => self.stop(subcode, text.as_deref(), &mut out),
            Input::Connected(dir) => self.connected(dir, &mut out),
            Input::ConnectFailed => {
                if self.connecting {
                    self.connecting = false;
                    self.connection_failed(&mut out);
                }
            }
            Input::Closed(dir) => {
                if self.connections[dir.index()].is_some() {
                    if self.loss_matters(dir) {
                        out.push(Output::Error(SessionError::ConnectionClosed));
                    }
                    self.drop_connection(dir, &mut out);
                    self.connection_failed(&mut out);
                }
            }
            Input::Received(dir, msg) => self.received(dir, msg, &mut out),
            Input::Malformed(dir, err) => {
                if self.connections[dir.index()].is_some() {
                    match err.notification() {
                        Some(n) => self.fail_connection(dir, n, &mut out),
                        // A malformed NOTIFICATION is not answered (RFC 4271 §6.4).
                        None => {
                            out.push(Output::Error(SessionError::ConnectionClosed));
                            self.close(dir, &mut out);
                            self.connection_failed(&mut out);
                        }
                    }
                }
            }
            Input::TimerExpired(timer) => self.timer_expired(timer, &mut out),
        }
        out
    }

    fn start(&mut self, out: &mut Vec<Output>) {
        if self.admin_up {
            return;
        }
        self.admin_up = true;
        self.failures = 0;
        self.try_connect(out);
    }

    fn stop(&mut self, subcode: u8, text: Option<&str>, out: &mut Vec<Output>) {
        if !self.admin_up {
            return;
        }
        self.admin_up = false;
        self.connecting = false;
        out.push(Output::StopTimer(Timer::ConnectRetry));
        for dir in [Direction::Outbound, Direction::Inbound] {
            if self.connections[dir.index()].is_some() {
                let n = Notification::cease(subcode, text);
                out.push(Output::Send(dir, Message::Notification(n.clone())));
                out.push(Output::Error(SessionError::NotificationSent(n)));
                self.close(dir, out);
            }
        }
    }

    fn try_connect(&mut self, out: &mut Vec<Output>) {
        if self.config.passive
            || !self.admin_up
            || self.connecting
            || self.connections.iter().any(Option::is_some)
        {
            return;
        }
        self.connecting = true;
        out.push(Output::Connect);
    }

    fn connected(&mut self, dir: Direction, out: &mut Vec<Output>) {
        if dir == Direction::Outbound {
            if !self.connecting {
                // A late connect we no longer want (stopped, or the peer's connection won).
                out.push(Output::Close(dir));
                return;
            }
            self.connecting = false;
            if !self.admin_up || self.established().is_some() {
                out.push(Output::Close(dir));
                return;
            }
        } else if !self.admin_up {
            out.push(Output::Close(dir));
            return;
        }
        if self.connections[dir.index()].is_some() {
            // ReplaceExisting without the Closed first: treat the old one as gone.
            self.drop_connection(dir, out);
        }
        out.push(Output::StopTimer(Timer::ConnectRetry));
        out.push(Output::Send(dir, Message::Open(self.build_open())));
        out.push(Output::StartTimer(Timer::Hold(dir), OPEN_HOLD_TIME));
        self.connections[dir.index()] = Some(Connection {
            stage: Stage::OpenSent,
        });
    }

    fn build_open(&self) -> Open {
        let mut caps: Vec<Capability> = self
            .config
            .families
            .iter()
            .map(|f| Capability::Multiprotocol(*f))
            .collect();
        caps.push(Capability::RouteRefresh);
        if self.config.extended_message {
            caps.push(Capability::ExtendedMessage);
        }
        if let Some(gr) = self.config.graceful_restart {
            caps.push(Capability::GracefulRestart(GracefulRestart {
                // RFC 4724 §3: set on the first session after we (re)started, so the peer
                // sends its routes at once instead of waiting for our End-of-RIB.
                restart_state: !self.ever_established,
                notification: false,
                restart_time: gr.restart_time.min(0x0fff),
                families: self
                    .config
                    .families
                    .iter()
                    .map(|f| GracefulRestartFamily {
                        family: *f,
                        forwarding_preserved: true,
                    })
                    .collect(),
            }));
        }
        caps.push(Capability::FourOctetAs(self.config.local_as));
        Open::new(
            self.config.local_as,
            self.config.hold_time,
            self.config.router_id,
            caps,
        )
    }

    fn received(&mut self, dir: Direction, msg: Message, out: &mut Vec<Output>) {
        let Some(conn) = &self.connections[dir.index()] else {
            return;
        };
        let message_type = msg.message_type() as u8;
        match (&conn.stage, msg) {
            (_, Message::Notification(n)) => {
                // The peer resolving a connection collision in favour of our other connection
                // is routine, not an error worth showing.
                let collision = n.code == error_code::CEASE
                    && n.subcode == cease_subcode::CONNECTION_COLLISION_RESOLUTION;
                if !collision || self.loss_matters(dir) {
                    out.push(Output::Error(SessionError::NotificationReceived(n)));
                }
                self.close(dir, out);
                self.connection_failed(out);
            }
            (Stage::OpenSent, Message::Open(open)) => self.open_received(dir, open, out),
            (Stage::OpenSent, _) => {
                self.fsm_error(dir, fsm_subcode::UNEXPECTED_IN_OPEN_SENT, message_type, out)
            }
            (Stage::OpenConfirm(_), Message::Keepalive) => self.establish(dir, out),
            (Stage::OpenConfirm(_), _) => self.fsm_error(
                dir,
                fsm_subcode::UNEXPECTED_IN_OPEN_CONFIRM,
                message_type,
                out,
            ),
            (Stage::Established(n), Message::Keepalive) => {
                let hold = n.hold_time;
                restart_hold_timer(dir, hold, out);
            }
            (Stage::Established(n), Message::Update(update)) => {
                let hold = n.hold_time;
                restart_hold_timer(dir, hold, out);
                out.push(Output::UpdateReceived(update));
            }
            (Stage::Established(n), Message::RouteRefresh(rr)) => {
                // RFC 2918 §4: a request for a family that was not negotiated is ignored.
                if n.families.contains(&rr.family) && rr.subtype == 0 {
                    out.push(Output::RouteRefreshRequested(rr.family));
                }
            }
            (Stage::Established(_), Message::Open(_)) => self.fsm_error(
                dir,
                fsm_subcode::UNEXPECTED_IN_ESTABLISHED,
                message_type,
                out,
            ),
        }
    }

    // RFC 4271 §6.2 and §8.2.2 (OpenSent, BGPOpen received).
    fn open_received(&mut self, dir: Direction, open: Open, out: &mut Vec<Output>) {
        let peer_as = open.asn();
        if peer_as != self.config.peer_as {
            let n = Notification::new(
                error_code::OPEN_MESSAGE,
                open_subcode::BAD_PEER_AS,
                open.my_as.to_be_bytes().to_vec(),
            );
            return self.fail_connection(dir, n, out);
        }
        // RFC 6286 §2.2: within an AS the identifiers must differ.
        if self.config.is_ibgp() && open.router_id == self.config.router_id {
            let n = Notification::new(
                error_code::OPEN_MESSAGE,
                open_subcode::BAD_BGP_IDENTIFIER,
                open.router_id.octets().to_vec(),
            );
            return self.fail_connection(dir, n, out);
        }

        let negotiated = self.negotiate(&open);

        // RFC 4271 §6.8: connection collision. The identifier of the peer is the same on both
        // connections, so this OPEN tells us which one to keep.
        let other = dir.other();
        if let Some(other_conn) = &self.connections[other.index()] {
            let keep_other = match other_conn.stage {
                Stage::Established(_) => true,
                Stage::OpenSent | Stage::OpenConfirm(_) => {
                    let local = u32::from(self.config.router_id);
                    let remote = u32::from(open.router_id);
                    // The side with the higher identifier keeps the connection it initiated.
                    let keep = if local < remote {
                        Direction::Inbound
                    } else {
                        Direction::Outbound
                    };
                    keep == other
                }
            };
            let loser = if keep_other { dir } else { other };
            let n = Notification::cease(cease_subcode::CONNECTION_COLLISION_RESOLUTION, None);
            out.push(Output::Send(loser, Message::Notification(n)));
            self.close(loser, out);
            if loser == dir {
                return;
            }
        }

        out.push(Output::Send(dir, Message::Keepalive));
        if negotiated.hold_time == 0 {
            out.push(Output::StopTimer(Timer::Hold(dir)));
        } else {
            out.push(Output::StartTimer(
                Timer::Hold(dir),
                Duration::from_secs(negotiated.hold_time.into()),
            ));
            out.push(Output::StartTimer(
                Timer::Keepalive(dir),
                negotiated.keepalive,
            ));
        }
        if let Some(conn) = &mut self.connections[dir.index()] {
            conn.stage = Stage::OpenConfirm(Box::new(negotiated));
        }
    }

    fn negotiate(&self, open: &Open) -> Negotiated {
        let hold_time = self.config.hold_time.min(open.hold_time);
        let keepalive = if hold_time == 0 {
            Duration::ZERO
        } else {
            let third = Duration::from_secs(u64::from(hold_time / 3).max(1));
            self.config
                .keepalive_time
                .map_or(third, |k| k.clamp(Duration::from_secs(1), third))
        };
        let peer_families = open.families();
        // RFC 4760 §8: a peer that sends no MP capability speaks IPv4 unicast only.
        let families = self
            .config
            .families
            .iter()
            .copied()
            .filter(|f| {
                if peer_families.is_empty() {
                    *f == Family::IPV4_UNICAST
                } else {
                    peer_families.contains(f)
                }
            })
            .collect();
        let has = |code: u8| open.has_capability(code);
        Negotiated {
            peer_router_id: open.router_id,
            peer_as: open.asn(),
            hold_time,
            keepalive,
            four_octet_as: has(65),
            families,
            route_refresh: has(2),
            extended_message: self.config.extended_message && has(6),
            graceful_restart: self.config.graceful_restart.is_some() && has(64),
            peer_capabilities: open.capabilities.clone(),
        }
    }

    fn establish(&mut self, dir: Direction, out: &mut Vec<Output>) {
        let Some(conn) = &mut self.connections[dir.index()] else {
            return;
        };
        let Stage::OpenConfirm(negotiated) = &conn.stage else {
            return;
        };
        let negotiated = negotiated.clone();
        restart_hold_timer(dir, negotiated.hold_time, out);
        conn.stage = Stage::Established(negotiated.clone());
        self.ever_established = true;
        self.failures = 0;
        out.push(Output::StopTimer(Timer::ConnectRetry));
        // Any other connection still negotiating has lost (RFC 4271 §6.8).
        let other = dir.other();
        if self.connections[other.index()].is_some() {
            let n = Notification::cease(cease_subcode::CONNECTION_COLLISION_RESOLUTION, None);
            out.push(Output::Send(other, Message::Notification(n)));
            self.close(other, out);
        }
        out.push(Output::Established(dir, negotiated));
    }

    fn timer_expired(&mut self, timer: Timer, out: &mut Vec<Output>) {
        match timer {
            Timer::ConnectRetry => self.try_connect(out),
            Timer::Hold(dir) => {
                if self.connections[dir.index()].is_some() {
                    let n = Notification::new(error_code::HOLD_TIMER_EXPIRED, 0, Vec::new());
                    self.fail_connection(dir, n, out);
                }
            }
            Timer::Keepalive(dir) => {
                let Some(conn) = &self.connections[dir.index()] else {
                    return;
                };
                let keepalive = match &conn.stage {
                    Stage::OpenConfirm(n) | Stage::Established(n) => n.keepalive,
                    Stage::OpenSent => return,
                };
                if !keepalive.is_zero() {
                    out.push(Output::Send(dir, Message::Keepalive));
                    out.push(Output::StartTimer(Timer::Keepalive(dir), keepalive));
                }
            }
        }
    }

    /// RFC 6608 §3, §4: the subcode names the state the message arrived in, and the data field
    /// is the 1-octet type of the unexpected message.
    fn fsm_error(&mut self, dir: Direction, subcode: u8, message_type: u8, out: &mut Vec<Output>) {
        let n = Notification::new(error_code::FSM, subcode, vec![message_type]);
        self.fail_connection(dir, n, out);
    }

    /// Whether losing this connection loses something: it carried the session, or it was the
    /// only attempt. Losing one side of a collision while the other goes on is routine.
    fn loss_matters(&self, dir: Direction) -> bool {
        let established = matches!(
            &self.connections[dir.index()],
            Some(Connection {
                stage: Stage::Established(_)
            })
        );
        established || self.connections[dir.other().index()].is_none()
    }

    /// Send `n`, close the connection and schedule the next attempt.
    fn fail_connection(&mut self, dir: Direction, n: Notification, out: &mut Vec<Output>) {
        out.push(Output::Send(dir, Message::Notification(n.clone())));
        out.push(Output::Error(SessionError::NotificationSent(n)));
        self.close(dir, out);
        self.connection_failed(out);
    }

    /// Close the connection after what was queued for it is written.
    fn close(&mut self, dir: Direction, out: &mut Vec<Output>) {
        if self.connections[dir.index()].is_some() {
            out.push(Output::Close(dir));
            self.drop_connection(dir, out);
        }
    }

    /// Forget a connection: its timers stop and, if it carried the session, the session is down.
    fn drop_connection(&mut self, dir: Direction, out: &mut Vec<Output>) {
        if let Some(conn) = self.connections[dir.index()].take() {
            out.push(Output::StopTimer(Timer::Hold(dir)));
            out.push(Output::StopTimer(Timer::Keepalive(dir)));
            if matches!(conn.stage, Stage::Established(_)) {
                out.push(Output::Down);
            }
        }
    }

    /// After a failure with no connection left, wait (with backoff) before connecting again.
    fn connection_failed(&mut self, out: &mut Vec<Output>) {
        if !self.admin_up
            || self.config.passive
            || self.connecting
            || self.connections.iter().any(Option::is_some)
        {
            return;
        }
        let delay = self.next_backoff();
        self.failures = self.failures.saturating_add(1);
        out.push(Output::StartTimer(Timer::ConnectRetry, delay));
    }

    /// RFC 4271 §10: timers are jittered to 75–100% of their value so peers do not synchronise.
    fn next_backoff(&mut self) -> Duration {
        let Backoff { initial, max } = self.config.connect_retry;
        let exp = self.failures.min(16);
        let base = initial.saturating_mul(1u32 << exp).min(max).max(initial);
        // xorshift64: good enough for jitter, and deterministic from the seed.
        self.rng ^= self.rng << 13;
        self.rng ^= self.rng >> 7;
        self.rng ^= self.rng << 17;
        let fraction = 0.75 + 0.25 * ((self.rng >> 11) as f64 / (1u64 << 53) as f64);
        base.mul_f64(fraction)
    }
}

fn restart_hold_timer(dir: Direction, hold_time: u16, out: &mut Vec<Output>) {
    if hold_time > 0 {
        out.push(Output::StartTimer(
            Timer::Hold(dir),
            Duration::from_secs(hold_time.into()),
        ));
    }
}

#[cfg(test)]
mod tests;
