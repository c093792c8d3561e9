//! The BFD session state machine (RFC 5880 §6), sans-IO.
//!
//! [`Session`] owns every decision about one session in asynchronous mode: the state machine
//! (§6.2, §6.8.6), the negotiated transmit interval and detection time (§6.8.2, §6.8.4), the
//! Poll/Final sequence that changes timers without resetting the session (§6.5, §6.8.3), passive
//! mode (§6.1), which packets to send and when (§6.8.7), and the per-packet checks that need the
//! session (source address, RFC 5881 §5 TTL 255, RFC 5883 minimum TTL). It does no I/O and never
//! reads a clock: the caller passes `now` with every [`Input`] and carries out the [`Output`]s
//! (send this packet, arm that timer). Which session a packet belongs to is the caller's
//! business (see `daemon`); so are sockets.
//!
//! Not supported, by design: the echo function (refused at configuration, see
//! [`crate::ConfigError::EchoNotSupported`]), Demand mode (we never set D; a peer that sets D is
//! obeyed as RFC 5880 §6.8.7 requires: while both sides are Up we stop periodic packets and
//! answer its Polls), and authentication (packets with A set are dropped by the decoder).

use std::collections::BTreeMap;
use std::net::IpAddr;
use std::num::NonZeroU32;
use std::time::{Duration, Instant, SystemTime};

use crate::config::{ConfigError, Profile, SessionConfig, SessionKey};
use crate::packet::{ControlPacket, Diagnostic, DropReason, State};

/// RFC 5880 §6.8.3: while a session is not Up, bfd.DesiredMinTxInterval is at least one second.
pub const SLOW_TX: Duration = Duration::from_secs(1);
/// RFC 5880 §6.8.1: bfd.RemoteMinRxInterval starts at one microsecond.
const INITIAL_REMOTE_MIN_RX: Duration = Duration::from_micros(1);
/// RFC 5881 §5: single-hop packets are sent, and must arrive, with the maximum TTL.
pub const SINGLE_HOP_TTL: u8 = 255;

/// The timers a session asks its driver to run.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub enum TimerKind {
    /// The next periodic Control packet is due.
    Transmit,
    /// The detection time has passed without a packet from the peer (RFC 5880 §6.8.4).
    Detection,
}

/// A decoded packet with what the socket knew about it.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct ReceivedPacket {
    pub packet: ControlPacket,
    pub source: IpAddr,
    /// The IPv4 TTL or IPv6 hop limit it arrived with; `None` if the kernel did not say.
    pub ttl: Option<u8>,
}

/// Something happened that the session must react to.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Input {
    PacketReceived(ReceivedPacket),
    TimerExpired(TimerKind),
    /// RFC 5880 §6.8.16: take the session administratively down (diagnostic 7).
    AdminDown,
    /// RFC 5880 §6.8.16: enable the session again (to Down).
    AdminUp,
    /// New timers or options. Never resets the session: interval changes go through a Poll
    /// Sequence (RFC 5880 §6.8.3).
    ProfileChanged(Profile),
}

/// A state transition, as reported to the session's users (BGP, status).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct StateChange {
    pub from: State,
    pub to: State,
    /// Our diagnostic after the change (why we went down).
    pub diagnostic: Diagnostic,
    /// The peer's state in its last packet: `AdminDown` means the peer stopped the session on
    /// purpose, which RFC 5882 §3.2 says is not a path failure.
    pub remote_state: State,
}

impl StateChange {
    /// The session was Up and the path to the peer is now known to be broken: the detection
    /// time passed, or the peer itself reported Down. A peer taking its side administratively
    /// down (RFC 5882 §3.2) and our own AdminDown are not path failures.
    pub fn is_path_failure(&self) -> bool {
        self.from == State::Up
            && self.to == State::Down
            && !(self.diagnostic == Diagnostic::NeighborSignaledSessionDown
                && self.remote_state == State::AdminDown)
    }
}

impl std::fmt::Display for StateChange {
    /// "Up -> Down: control detection time expired", suitable for a BGP Cease message's text
    /// (RFC 9003).
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "{} -> {}", self.from, self.to)?;
        if self.diagnostic != Diagnostic::None {
            write!(f, ": {}", self.diagnostic)?;
        }
        if self.to == State::Down && self.remote_state == State::AdminDown {
            f.write_str(" (peer is administratively down)")?;
        }
        Ok(())
    }
}

/// What the driver must do, in order.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Output {
    /// Send this Control packet to the peer now.
    Send(ControlPacket),
    /// Fire [`Input::TimerExpired`] for `kind` at `at`, replacing any earlier deadline for it.
    ArmTimer {
        kind: TimerKind,
        at: Instant,
    },
    CancelTimer(TimerKind),
    StateChanged(StateChange),
    /// A received packet was discarded, for the driver's counters (the session counts it too).
    Dropped(DropReason),
    /// [`Input::ProfileChanged`] carried an invalid profile; the session kept its old one.
    ProfileRefused(ConfigError),
}

/// The two intervals we advertise and that the Poll Sequence negotiates.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
struct Intervals {
    desired_min_tx: Duration,
    required_min_rx: Duration,
}

/// Where we are in a Poll Sequence of our own (RFC 5880 §6.5, §6.8.3).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum PollState {
    Idle,
    /// Our packets carry P; the peer's Final ends the sequence.
    AwaitFinal,
    /// A sequence just ended and another change is queued. RFC 5880 §6.8.3 (choice 3): wait
    /// for a packet with F clear before polling again, so the next Final is unambiguous.
    AwaitNonFinal,
}

/// Negotiated and advertised timers, for status.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct NegotiatedTimers {
    /// The Desired Min TX Interval we advertise (at least 1 s while not Up).
    pub desired_min_tx: Duration,
    /// The Required Min RX Interval we advertise.
    pub required_min_rx: Duration,
    /// The interval our periodic packets use before jitter (RFC 5880 §6.8.2, §6.8.7).
    pub transmit_interval: Duration,
    /// How long we wait for the peer before declaring the session down (RFC 5880 §6.8.4);
    /// `None` until the peer has sent something.
    pub detection_time: Option<Duration>,
    /// The peer's Required Min RX Interval (bfd.RemoteMinRxInterval).
    pub remote_min_rx: Duration,
    pub remote_desired_min_tx: Option<Duration>,
    pub remote_detect_multiplier: Option<u8>,
}

/// Per-session counters.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct SessionCounters {
    /// Packets accepted by this session.
    pub packets_in: u64,
    pub packets_out: u64,
    /// Packets this session discarded, by reason.
    pub drops: BTreeMap<DropReason, u64>,
    pub state_changes: u64,
    /// Times the session left Up.
    pub flaps: u64,
    /// Poll Sequences of ours that the peer answered.
    pub polls_completed: u64,
}

/// Everything there is to know about a session, for status and metrics.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct SessionStatus {
    pub key: SessionKey,
    pub profile: Profile,
    pub state: State,
    pub remote_state: State,
    pub local_discriminator: u32,
    /// Zero until the peer has been heard from, and again after a detection time of silence.
    pub remote_discriminator: u32,
    pub local_diagnostic: Diagnostic,
    pub remote_diagnostic: Diagnostic,
    /// Why the session last went Down or AdminDown.
    pub last_down_diagnostic: Option<Diagnostic>,
    pub timers: NegotiatedTimers,
    pub poll_in_progress: bool,
    /// The peer asked for Demand mode (D bit).
    pub remote_demand: bool,
    pub last_state_change: Option<SystemTime>,
    pub counters: SessionCounters,
    /// Filled in by the daemon: the UDP source port of our packets.
    pub source_port: Option<u16>,
    /// Filled in by the daemon: why the session has no socket, if it has none.
    pub transport_error: Option<String>,
}

/// One BFD session in asynchronous mode.
#[derive(Debug)]
pub struct Session {
    key: SessionKey,
    profile: Profile,
    state: State,
    remote_state: State,
    local_discriminator: u32,
    remote_discriminator: u32,
    local_diagnostic: Diagnostic,
    remote_diagnostic: Diagnostic,
    last_down_diagnostic: Option<Diagnostic>,
    remote_demand: bool,
    /// bfd.RemoteMinRxInterval.
    remote_min_rx: Duration,
    remote_desired_min_tx: Option<Duration>,
    remote_detect_multiplier: Option<u8>,
    /// What our packets carry (bfd.DesiredMinTxInterval, bfd.RequiredMinRxInterval).
    advertised: Intervals,
    /// The desired TX our transmit interval is computed from: lags `advertised` while an
    /// increase waits for the peer's Final (RFC 5880 §6.8.3).
    tx_basis: Duration,
    /// The required RX our detection time is computed from: lags `advertised` while a
    /// decrease waits for the peer's Final (RFC 5880 §6.8.3).
    rx_basis: Duration,
    poll: PollState,
    /// A change that arrived during a Poll Sequence, to be polled for next.
    queued: Option<Intervals>,
    last_tx: Option<Instant>,
    tx_deadline: Option<Instant>,
    /// The transmit interval `tx_deadline` was computed with.
    scheduled_interval: Option<Duration>,
    /// The last accepted packet; `None` once a detection time has passed without one.
    last_rx: Option<Instant>,
    detect_deadline: Option<Instant>,
    last_state_change: Option<Instant>,
    counters: SessionCounters,
    rng: u64,
}

impl Session {
    /// Creates a session in Down state (RFC 5880 §6.8.1). The outputs arm the first
    /// transmission at `now`, unless the session is passive.
    ///
    /// The jitter of its transmissions is a deterministic function of `local_discriminator`,
    /// so a test (or a replay) sees the same schedule every time.
    pub fn new(
        config: &SessionConfig,
        local_discriminator: NonZeroU32,
        now: Instant,
    ) -> Result<(Session, Vec<Output>), ConfigError> {
        config.validate()?;
        let profile = config.profile.clone();
        let advertised = Intervals {
            desired_min_tx: profile.transmit_interval.max(SLOW_TX),
            required_min_rx: profile.receive_interval,
        };
        let mut session = Session {
            key: config.key(),
            profile,
            state: State::Down,
            remote_state: State::Down,
            local_discriminator: local_discriminator.get(),
            remote_discriminator: 0,
            local_diagnostic: Diagnostic::None,
            remote_diagnostic: Diagnostic::None,
            last_down_diagnostic: None,
            remote_demand: false,
            remote_min_rx: INITIAL_REMOTE_MIN_RX,
            remote_desired_min_tx: None,
            remote_detect_multiplier: None,
            advertised,
            tx_basis: advertised.desired_min_tx,
            rx_basis: advertised.required_min_rx,
            poll: PollState::Idle,
            queued: None,
            last_tx: None,
            tx_deadline: None,
            scheduled_interval: None,
            last_rx: None,
            detect_deadline: None,
            last_state_change: None,
            counters: SessionCounters::default(),
            rng: seed(local_discriminator.get()),
        };
        let mut out = Vec::new();
        session.reconcile_timers(now, &mut out);
        Ok((session, out))
    }

    pub fn key(&self) -> &SessionKey {
        &self.key
    }

    pub fn profile(&self) -> &Profile {
        &self.profile
    }

    pub fn state(&self) -> State {
        self.state
    }

    pub fn local_discriminator(&self) -> u32 {
        self.local_discriminator
    }

    pub fn counters(&self) -> &SessionCounters {
        &self.counters
    }

    /// The interval our periodic packets use before jitter: the greater of our desired TX and
    /// the peer's required RX (RFC 5880 §6.8.2, §6.8.7).
    pub fn transmit_interval(&self) -> Duration {
        self.tx_basis.max(self.remote_min_rx)
    }

    /// RFC 5880 §6.8.4: the peer's Detect Mult times the greater of our required RX and the
    /// peer's desired TX; `None` before the peer has sent anything.
    pub fn detection_time(&self) -> Option<Duration> {
        let multiplier = self.remote_detect_multiplier?;
        let remote_tx = self.remote_desired_min_tx?;
        Some(self.rx_basis.max(remote_tx) * u32::from(multiplier))
    }

    /// How long the peer waits for us: our Detect Mult times our transmit interval. After
    /// going AdminDown, packets should keep coming this long (RFC 5880 §6.8.16).
    pub fn remote_detection_time(&self) -> Duration {
        self.transmit_interval() * u32::from(self.profile.detect_multiplier)
    }

    pub fn handle(&mut self, now: Instant, input: Input) -> Vec<Output> {
        let mut out = Vec::new();
        match input {
            Input::PacketReceived(received) => self.receive(now, received, &mut out),
            Input::TimerExpired(TimerKind::Transmit) => {
                // A stale expiry (the deadline moved later since) is ignored: the driver has
                // the newer deadline armed.
                if self.tx_deadline.is_some_and(|d| now >= d) {
                    self.tx_deadline = None;
                    self.transmit(now, Transmission::Periodic, &mut out);
                }
            }
            Input::TimerExpired(TimerKind::Detection) => {
                if self.detect_deadline.is_some_and(|d| now >= d) {
                    self.detection_expired(now, &mut out);
                }
            }
            Input::AdminDown => {
                if self.state != State::AdminDown {
                    self.local_diagnostic = Diagnostic::AdministrativelyDown;
                    self.set_state(now, State::AdminDown, &mut out);
                    self.transmit(now, Transmission::StateChange, &mut out);
                }
            }
            Input::AdminUp => {
                if self.state == State::AdminDown {
                    self.set_state(now, State::Down, &mut out);
                    self.transmit(now, Transmission::StateChange, &mut out);
                }
            }
            Input::ProfileChanged(profile) => match profile.validate() {
                Ok(()) => {
                    self.profile = profile;
                    self.sync_intervals();
                }
                Err(e) => out.push(Output::ProfileRefused(e)),
            },
        }
        self.reconcile_timers(now, &mut out);
        out
    }

    /// Status, with instants turned into wall-clock times through the pair (`now`, `wall_now`).
    pub fn status(&self, now: Instant, wall_now: SystemTime) -> SessionStatus {
        let to_wall = |at: Instant| wall_now.checked_sub(now.saturating_duration_since(at));
        SessionStatus {
            key: self.key.clone(),
            profile: self.profile.clone(),
            state: self.state,
            remote_state: self.remote_state,
            local_discriminator: self.local_discriminator,
            remote_discriminator: self.remote_discriminator,
            local_diagnostic: self.local_diagnostic,
            remote_diagnostic: self.remote_diagnostic,
            last_down_diagnostic: self.last_down_diagnostic,
            timers: NegotiatedTimers {
                desired_min_tx: self.advertised.desired_min_tx,
                required_min_rx: self.advertised.required_min_rx,
                transmit_interval: self.transmit_interval(),
                detection_time: self.detection_time(),
                remote_min_rx: self.remote_min_rx,
                remote_desired_min_tx: self.remote_desired_min_tx,
                remote_detect_multiplier: self.remote_detect_multiplier,
            },
            poll_in_progress: self.poll == PollState::AwaitFinal,
            remote_demand: self.remote_demand,
            last_state_change: self.last_state_change.and_then(to_wall),
            counters: self.counters.clone(),
            source_port: None,
            transport_error: None,
        }
    }

    // ------------------------------------------------------------------------- reception

    fn drop_packet(&mut self, reason: DropReason, out: &mut Vec<Output>) {
        *self.counters.drops.entry(reason).or_default() += 1;
        out.push(Output::Dropped(reason));
    }

    /// RFC 5880 §6.8.6 from "select the session" on; the decoder made the packet checks.
    fn receive(&mut self, now: Instant, received: ReceivedPacket, out: &mut Vec<Output>) {
        let p = received.packet;
        if received.source != self.key.peer {
            return self.drop_packet(DropReason::WrongSource, out);
        }
        match received.ttl {
            None => return self.drop_packet(DropReason::TtlUnknown, out),
            // RFC 5881 §5 (GTSM): only a directly connected peer can reach us with 255.
            Some(ttl) if !self.key.multihop && ttl != SINGLE_HOP_TTL => {
                return self.drop_packet(DropReason::TtlNot255, out);
            }
            // RFC 5883 §2 leaves the check to configuration: the profile's minimum TTL.
            Some(ttl) if self.key.multihop && ttl < self.profile.minimum_ttl => {
                return self.drop_packet(DropReason::TtlBelowMinimum, out);
            }
            Some(_) => {}
        }
        if p.your_discriminator != 0 && p.your_discriminator != self.local_discriminator {
            return self.drop_packet(DropReason::UnknownDiscriminator, out);
        }

        self.remote_discriminator = p.my_discriminator;
        self.remote_state = p.state;
        self.remote_demand = p.demand;
        self.remote_diagnostic = p.diagnostic;
        self.remote_min_rx = p.required_min_rx();
        self.remote_desired_min_tx = Some(p.desired_min_tx());
        self.remote_detect_multiplier = Some(p.detect_multiplier);
        // A zero Required Min Echo RX asks us to stop echo packets; we never send any.

        if p.final_ {
            if self.poll == PollState::AwaitFinal {
                self.poll_terminated();
            }
        } else if self.poll == PollState::AwaitNonFinal {
            self.poll = PollState::Idle;
            if let Some(next) = self.queued.take()
                && next != self.advertised
            {
                self.start_poll(next);
            }
        }

        if self.state == State::AdminDown {
            return self.drop_packet(DropReason::SessionAdminDown, out);
        }
        self.counters.packets_in += 1;

        let before = self.state;
        if let Some((next, diagnostic)) = transition(self.state, p.state) {
            if let Some(diagnostic) = diagnostic {
                self.local_diagnostic = diagnostic;
            }
            self.set_state(now, next, out);
        }

        // The packet counts as received for the detection time (RFC 5880 §6.8.4).
        self.last_rx = Some(now);

        if p.poll {
            // RFC 5880 §6.8.7: answer at once, whatever the timers; it carries any new state.
            self.transmit(now, Transmission::Final, out);
        } else if self.state != before {
            self.transmit(now, Transmission::StateChange, out);
        }
    }

    fn detection_expired(&mut self, now: Instant, out: &mut Vec<Output>) {
        self.detect_deadline = None;
        self.last_rx = None;
        let was_live = matches!(self.state, State::Init | State::Up);
        if was_live {
            self.local_diagnostic = Diagnostic::ControlDetectionTimeExpired;
            self.set_state(now, State::Down, out);
        }
        // RFC 5880 §6.8.1: forget the peer's discriminator; §6.8.18: and its rate limit.
        self.remote_discriminator = 0;
        self.remote_min_rx = INITIAL_REMOTE_MIN_RX;
        self.remote_state = State::Down;
        self.remote_demand = false;
        if was_live {
            // The path may have failed in one direction only: tell the peer at once.
            self.transmit(now, Transmission::StateChange, out);
        }
    }

    fn set_state(&mut self, now: Instant, to: State, out: &mut Vec<Output>) {
        let from = self.state;
        if from == to {
            return;
        }
        self.state = to;
        self.last_state_change = Some(now);
        self.counters.state_changes += 1;
        if from == State::Up {
            self.counters.flaps += 1;
        }
        match to {
            // The most recent change has no failure to explain.
            State::Up => self.local_diagnostic = Diagnostic::None,
            State::Down | State::AdminDown => {
                self.last_down_diagnostic = Some(self.local_diagnostic);
            }
            State::Init => {}
        }
        if from == State::Up || to == State::AdminDown {
            // The held-back timer rules of RFC 5880 §6.8.3 apply only while Up: whatever a
            // pending Poll was carrying applies now, and the sequence starts over.
            self.poll = PollState::Idle;
            self.queued = None;
            self.tx_basis = self.advertised.desired_min_tx;
            self.rx_basis = self.advertised.required_min_rx;
        }
        if to == State::AdminDown {
            self.last_rx = None;
        }
        out.push(Output::StateChanged(StateChange {
            from,
            to,
            diagnostic: self.local_diagnostic,
            remote_state: self.remote_state,
        }));
        // Up lifts the one-second floor, leaving Up restores it.
        self.sync_intervals();
    }

    // ------------------------------------------------------------------------- timers

    /// The intervals we want to advertise now (RFC 5880 §6.8.3: at least 1 s TX while not Up).
    fn wanted(&self) -> Intervals {
        let desired_min_tx = if self.state == State::Up {
            self.profile.transmit_interval
        } else {
            self.profile.transmit_interval.max(SLOW_TX)
        };
        Intervals {
            desired_min_tx,
            required_min_rx: self.profile.receive_interval,
        }
    }

    /// Brings the advertised intervals toward [`Session::wanted`], through a Poll Sequence
    /// (RFC 5880 §6.8.3: any change of either interval starts one).
    fn sync_intervals(&mut self) {
        let want = self.wanted();
        if self.state == State::AdminDown {
            // Nobody is listening for a Final; just advertise the new values.
            self.advertised = want;
            self.tx_basis = want.desired_min_tx;
            self.rx_basis = want.required_min_rx;
            return;
        }
        match self.poll {
            PollState::Idle => {
                if want != self.advertised {
                    self.start_poll(want);
                }
            }
            // RFC 5880 §6.8.3: several changes must not share one Poll Sequence ambiguously;
            // the latest wish waits for the current sequence to end.
            PollState::AwaitFinal | PollState::AwaitNonFinal => {
                self.queued = (want != self.advertised).then_some(want);
            }
        }
    }

    fn start_poll(&mut self, want: Intervals) {
        let up = self.state == State::Up;
        // RFC 5880 §6.8.3: while Up, a slower TX waits for the Final (the peer must lengthen its
        // detection time first), and so does a faster RX (the peer must speed up first).
        if !(up && want.desired_min_tx > self.advertised.desired_min_tx) {
            self.tx_basis = want.desired_min_tx;
        }
        if !(up && want.required_min_rx < self.advertised.required_min_rx) {
            self.rx_basis = want.required_min_rx;
        }
        self.advertised = want;
        self.poll = PollState::AwaitFinal;
    }

    fn poll_terminated(&mut self) {
        self.tx_basis = self.advertised.desired_min_tx;
        self.rx_basis = self.advertised.required_min_rx;
        self.counters.polls_completed += 1;
        self.poll = if self.queued.is_some() {
            PollState::AwaitNonFinal
        } else {
            PollState::Idle
        };
    }

    /// Makes the armed timers match the session's state: called at the end of every input.
    fn reconcile_timers(&mut self, now: Instant, out: &mut Vec<Output>) {
        // Transmission.
        if !self.periodic_allowed() {
            self.scheduled_interval = None;
            if self.tx_deadline.take().is_some() {
                out.push(Output::CancelTimer(TimerKind::Transmit));
            }
        } else {
            let interval = self.transmit_interval();
            if self.tx_deadline.is_none() || self.scheduled_interval != Some(interval) {
                // RFC 5880 §6.8.3: a shorter interval is honoured at once, measured from the
                // last packet; a packet already overdue goes now.
                let at = match self.last_tx {
                    Some(last) => (last + self.jittered(interval)).max(now),
                    None => now,
                };
                self.arm_transmit(at, interval, out);
            }
        }
        // Detection.
        let deadline = match (self.state, self.last_rx, self.detection_time()) {
            (State::AdminDown, _, _) => None,
            (_, Some(last), Some(detection)) => Some(last + detection),
            _ => None,
        };
        if deadline != self.detect_deadline {
            self.detect_deadline = deadline;
            out.push(match deadline {
                Some(at) => Output::ArmTimer {
                    kind: TimerKind::Detection,
                    at,
                },
                None => Output::CancelTimer(TimerKind::Detection),
            });
        }
    }

    fn arm_transmit(&mut self, at: Instant, interval: Duration, out: &mut Vec<Output>) {
        self.tx_deadline = Some(at);
        self.scheduled_interval = Some(interval);
        out.push(Output::ArmTimer {
            kind: TimerKind::Transmit,
            at,
        });
    }

    /// RFC 5880 §6.8.7: when periodic packets may be sent at all.
    fn periodic_allowed(&self) -> bool {
        if !self.may_transmit() || self.remote_min_rx.is_zero() {
            return false;
        }
        let remote_demand_active =
            self.remote_demand && self.state == State::Up && self.remote_state == State::Up;
        !remote_demand_active || self.poll == PollState::AwaitFinal
    }

    /// RFC 5880 §6.1, §6.8.7: a passive session says nothing until it has heard the peer.
    fn may_transmit(&self) -> bool {
        !(self.profile.passive && self.remote_discriminator == 0)
    }

    /// RFC 5880 §6.8.7: periodic packets are sent at 75–100% of the interval (75–90% when
    /// Detect Mult is 1, so one late packet cannot expire the peer's timer).
    fn jittered(&mut self, interval: Duration) -> Duration {
        // xorshift64: cheap, and deterministic from the seed.
        self.rng ^= self.rng << 13;
        self.rng ^= self.rng >> 7;
        self.rng ^= self.rng << 17;
        let unit = (self.rng >> 11) as f64 / (1u64 << 53) as f64;
        let top = if self.profile.detect_multiplier == 1 {
            0.90
        } else {
            1.0
        };
        interval.mul_f64(0.75 + (top - 0.75) * unit)
    }

    // ------------------------------------------------------------------------- transmission

    fn transmit(&mut self, now: Instant, kind: Transmission, out: &mut Vec<Output>) {
        let allowed = match kind {
            Transmission::Periodic => self.periodic_allowed(),
            Transmission::StateChange | Transmission::Final => self.may_transmit(),
        };
        if !allowed {
            return;
        }
        let final_ = kind == Transmission::Final;
        out.push(Output::Send(ControlPacket {
            diagnostic: self.local_diagnostic,
            state: self.state,
            // RFC 5880 §6.5: never P and F together.
            poll: !final_ && self.poll == PollState::AwaitFinal,
            final_,
            control_plane_independent: false,
            demand: false,
            detect_multiplier: self.profile.detect_multiplier,
            my_discriminator: self.local_discriminator,
            your_discriminator: self.remote_discriminator,
            desired_min_tx_us: micros(self.advertised.desired_min_tx),
            required_min_rx_us: micros(self.advertised.required_min_rx),
            required_min_echo_rx_us: 0,
        }));
        self.counters.packets_out += 1;
        if !final_ {
            // The next periodic packet is spaced from this one, so the peer never sees two
            // packets closer than it allowed. A Final is outside the periodic schedule.
            self.last_tx = Some(now);
            if self.periodic_allowed() {
                let interval = self.transmit_interval();
                let at = now + self.jittered(interval);
                self.arm_transmit(at, interval, out);
            }
        }
    }
}

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum Transmission {
    Periodic,
    /// Sent at once when our state changes, so the three-way handshake does not wait.
    StateChange,
    /// The answer to a Poll (RFC 5880 §6.8.7).
    Final,
}

/// RFC 5880 §6.8.6 (and the §6.2 diagram): the next state and diagnostic when a packet in
/// state `received` arrives in state `local`; `None` when nothing changes. AdminDown is handled
/// before (the packet is discarded).
pub fn transition(local: State, received: State) -> Option<(State, Option<Diagnostic>)> {
    use State::*;
    match (local, received) {
        (AdminDown, _) | (Down, AdminDown) | (Down, Up) | (Init, Down) | (Up, Init | Up) => None,
        (_, AdminDown) | (Up, Down) => Some((Down, Some(Diagnostic::NeighborSignaledSessionDown))),
        (Down, Down) => Some((Init, None)),
        (Down, Init) | (Init, Init | Up) => Some((Up, None)),
    }
}

fn micros(d: Duration) -> u32 {
    u32::try_from(d.as_micros()).unwrap_or(u32::MAX)
}

/// splitmix64 of the discriminator: distinct sessions get unrelated jitter sequences.
fn seed(discriminator: u32) -> u64 {
    let mut z = u64::from(discriminator).wrapping_add(0x9e37_79b9_7f4a_7c15);
    z = (z ^ (z >> 30)).wrapping_mul(0xbf58_476d_1ce4_e5b9);
    z = (z ^ (z >> 27)).wrapping_mul(0x94d0_49bb_1331_11eb);
    (z ^ (z >> 31)) | 1
}

#[cfg(test)]
mod tests;
