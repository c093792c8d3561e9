//! Specification tests for the session state machine, on a virtual clock: `now` is an
//! `Instant` we move by hand, never the wall clock.

use super::*;

const LOCAL: u32 = 0x0101_0101;
const REMOTE: u32 = 0x0202_0202;

fn peer_ip() -> IpAddr {
    "198.51.100.2".parse().unwrap()
}

fn ms(n: u64) -> Duration {
    Duration::from_millis(n)
}

fn profile(tx: u64, rx: u64, multiplier: u8) -> Profile {
    Profile {
        transmit_interval: ms(tx),
        receive_interval: ms(rx),
        detect_multiplier: multiplier,
        ..Profile::default()
    }
}

/// A packet from the peer in `state`, with its default 300 ms × 3 timers.
fn from_peer(state: State) -> ControlPacket {
    ControlPacket {
        diagnostic: Diagnostic::None,
        state,
        poll: false,
        final_: false,
        control_plane_independent: false,
        demand: false,
        detect_multiplier: 3,
        my_discriminator: REMOTE,
        your_discriminator: if state == State::Down { 0 } else { LOCAL },
        desired_min_tx_us: 300_000,
        required_min_rx_us: 300_000,
        required_min_echo_rx_us: 0,
    }
}

fn sent(out: &[Output]) -> Vec<ControlPacket> {
    out.iter()
        .filter_map(|o| match o {
            Output::Send(p) => Some(*p),
            _ => None,
        })
        .collect()
}

fn changes(out: &[Output]) -> Vec<StateChange> {
    out.iter()
        .filter_map(|o| match o {
            Output::StateChanged(c) => Some(*c),
            _ => None,
        })
        .collect()
}

fn armed(out: &[Output], kind: TimerKind) -> Option<Instant> {
    out.iter().rev().find_map(|o| match o {
        Output::ArmTimer { kind: k, at } if *k == kind => Some(*at),
        _ => None,
    })
}

fn dropped(out: &[Output]) -> Vec<DropReason> {
    out.iter()
        .filter_map(|o| match o {
            Output::Dropped(r) => Some(*r),
            _ => None,
        })
        .collect()
}

/// A session on a virtual clock.
struct Harness {
    session: Session,
    t0: Instant,
    now: Instant,
}

impl Harness {
    fn with_config(config: SessionConfig) -> (Harness, Vec<Output>) {
        let t0 = Instant::now();
        let (session, out) = Session::new(&config, NonZeroU32::new(LOCAL).unwrap(), t0).unwrap();
        (
            Harness {
                session,
                t0,
                now: t0,
            },
            out,
        )
    }

    fn new(profile: Profile) -> Harness {
        let mut config = SessionConfig::new(peer_ip());
        config.profile = profile;
        Harness::with_config(config).0
    }

    fn default() -> Harness {
        Harness::new(Profile::default())
    }

    /// Moves the clock to `t0 + ms`.
    fn at(&mut self, n: u64) -> &mut Self {
        self.now = self.t0 + ms(n);
        assert!(self.now >= self.t0);
        self
    }

    fn elapsed_ms(&self, at: Instant) -> u128 {
        at.duration_since(self.t0).as_millis()
    }

    fn input(&mut self, input: Input) -> Vec<Output> {
        self.session.handle(self.now, input)
    }

    fn recv_with(&mut self, packet: ControlPacket, ttl: Option<u8>) -> Vec<Output> {
        self.input(Input::PacketReceived(ReceivedPacket {
            packet,
            source: peer_ip(),
            ttl,
        }))
    }

    fn recv(&mut self, packet: ControlPacket) -> Vec<Output> {
        self.recv_with(packet, Some(255))
    }

    /// Fires the transmit timer at its deadline (moving the clock there).
    fn fire_transmit(&mut self) -> Vec<Output> {
        let at = self.session.tx_deadline.expect("transmit timer armed");
        self.now = self.now.max(at);
        self.input(Input::TimerExpired(TimerKind::Transmit))
    }

    fn fire_detection(&mut self) -> Vec<Output> {
        let at = self.session.detect_deadline.expect("detection timer armed");
        self.now = at;
        self.input(Input::TimerExpired(TimerKind::Detection))
    }

    fn state(&self) -> State {
        self.session.state()
    }

    /// Peer says Down then Init: our session goes Down → Init → Up.
    fn bring_up(&mut self) {
        self.recv(from_peer(State::Down));
        assert_eq!(self.state(), State::Init);
        let out = self.recv(from_peer(State::Up));
        assert_eq!(self.state(), State::Up, "{out:?}");
        // Our Up packet started a Poll for the faster TX; the peer answers it.
        self.answer_poll();
    }

    /// The peer's Final for our outstanding Poll.
    fn answer_poll(&mut self) -> Vec<Output> {
        let mut f = from_peer(State::Up);
        f.final_ = true;
        f.your_discriminator = LOCAL;
        self.recv(f)
    }

    fn up() -> Harness {
        let mut h = Harness::default();
        h.bring_up();
        h
    }

    fn init() -> Harness {
        let mut h = Harness::default();
        h.recv(from_peer(State::Down));
        assert_eq!(h.state(), State::Init);
        h
    }

    fn admin_down() -> Harness {
        let mut h = Harness::up();
        h.input(Input::AdminDown);
        assert_eq!(h.state(), State::AdminDown);
        h
    }
}

// ----------------------------------------------------------------------------- §6.8.6 states

#[test]
fn new_session_starts_down_and_sends_at_once() {
    let (h, out) = Harness::with_config(SessionConfig::new(peer_ip()));
    assert_eq!(h.state(), State::Down);
    assert_eq!(armed(&out, TimerKind::Transmit), Some(h.t0));
    assert_eq!(armed(&out, TimerKind::Detection), None);
}

#[test]
fn first_packet_is_down_with_zero_your_discriminator() {
    let mut h = Harness::default();
    let out = h.fire_transmit();
    let [p] = sent(&out)[..] else {
        panic!("{out:?}")
    };
    assert_eq!(p.state, State::Down);
    assert_eq!(p.my_discriminator, LOCAL);
    assert_eq!(p.your_discriminator, 0);
    assert_eq!(p.detect_multiplier, 3);
}

#[test]
fn admin_down_session_discards_received_admin_down() {
    let mut h = Harness::admin_down();
    let out = h.recv(from_peer(State::AdminDown));
    assert_eq!(h.state(), State::AdminDown);
    assert_eq!(dropped(&out), vec![DropReason::SessionAdminDown]);
}

#[test]
fn admin_down_session_discards_received_down() {
    let mut h = Harness::admin_down();
    let out = h.recv(from_peer(State::Down));
    assert_eq!(h.state(), State::AdminDown);
    assert_eq!(dropped(&out), vec![DropReason::SessionAdminDown]);
    assert!(changes(&out).is_empty());
}

#[test]
fn admin_down_session_discards_received_init() {
    let mut h = Harness::admin_down();
    let out = h.recv(from_peer(State::Init));
    assert_eq!(h.state(), State::AdminDown);
    assert_eq!(dropped(&out), vec![DropReason::SessionAdminDown]);
}

#[test]
fn admin_down_session_discards_received_up() {
    let mut h = Harness::admin_down();
    let out = h.recv(from_peer(State::Up));
    assert_eq!(h.state(), State::AdminDown);
    assert_eq!(dropped(&out), vec![DropReason::SessionAdminDown]);
    assert_eq!(h.session.counters().drops[&DropReason::SessionAdminDown], 1);
}

#[test]
fn down_session_stays_down_when_peer_says_admin_down() {
    let mut h = Harness::default();
    let out = h.recv(from_peer(State::AdminDown));
    assert_eq!(h.state(), State::Down);
    assert!(changes(&out).is_empty());
    assert_eq!(h.session.local_diagnostic, Diagnostic::None);
}

#[test]
fn down_session_goes_init_when_peer_says_down() {
    let mut h = Harness::default();
    let out = h.recv(from_peer(State::Down));
    assert_eq!(h.state(), State::Init);
    let [c] = changes(&out)[..] else {
        panic!("{out:?}")
    };
    assert_eq!((c.from, c.to), (State::Down, State::Init));
    // The change is announced at once, naming the peer.
    let [p] = sent(&out)[..] else {
        panic!("{out:?}")
    };
    assert_eq!((p.state, p.your_discriminator), (State::Init, REMOTE));
}

#[test]
fn down_session_goes_up_when_peer_says_init() {
    let mut h = Harness::default();
    let out = h.recv(from_peer(State::Init));
    assert_eq!(h.state(), State::Up);
    assert_eq!(changes(&out)[0].to, State::Up);
    assert_eq!(sent(&out)[0].state, State::Up);
}

#[test]
fn down_session_stays_down_when_peer_says_up() {
    let mut h = Harness::default();
    let out = h.recv(from_peer(State::Up));
    assert_eq!(h.state(), State::Down);
    assert!(changes(&out).is_empty());
}

#[test]
fn init_session_goes_down_with_diag_3_when_peer_says_admin_down() {
    let mut h = Harness::init();
    let out = h.recv(from_peer(State::AdminDown));
    assert_eq!(h.state(), State::Down);
    let [c] = changes(&out)[..] else {
        panic!("{out:?}")
    };
    assert_eq!(c.diagnostic, Diagnostic::NeighborSignaledSessionDown);
    assert_eq!(
        sent(&out)[0].diagnostic,
        Diagnostic::NeighborSignaledSessionDown
    );
}

#[test]
fn init_session_stays_init_when_peer_says_down() {
    let mut h = Harness::init();
    let out = h.recv(from_peer(State::Down));
    assert_eq!(h.state(), State::Init);
    assert!(changes(&out).is_empty());
}

#[test]
fn init_session_goes_up_when_peer_says_init() {
    let mut h = Harness::init();
    h.recv(from_peer(State::Init));
    assert_eq!(h.state(), State::Up);
}

#[test]
fn init_session_goes_up_when_peer_says_up() {
    let mut h = Harness::init();
    h.recv(from_peer(State::Up));
    assert_eq!(h.state(), State::Up);
}

#[test]
fn up_session_goes_down_with_diag_3_when_peer_says_admin_down() {
    let mut h = Harness::up();
    let out = h.recv(from_peer(State::AdminDown));
    assert_eq!(h.state(), State::Down);
    let [c] = changes(&out)[..] else {
        panic!("{out:?}")
    };
    assert_eq!(c.diagnostic, Diagnostic::NeighborSignaledSessionDown);
    assert_eq!(c.remote_state, State::AdminDown);
    // RFC 5882 §3.2: the peer switching BFD off is not a broken path.
    assert!(!c.is_path_failure());
}

#[test]
fn state_change_text_names_the_diagnostic_for_a_cease_message() {
    let mut h = Harness::up();
    let out = h.fire_detection();
    assert_eq!(
        changes(&out)[0].to_string(),
        "Up -> Down: control detection time expired"
    );
    let mut h = Harness::up();
    let out = h.recv(from_peer(State::AdminDown));
    assert_eq!(
        changes(&out)[0].to_string(),
        "Up -> Down: neighbor signaled session down (peer is administratively down)"
    );
}

#[test]
fn up_session_goes_down_with_diag_3_when_peer_says_down() {
    let mut h = Harness::up();
    let out = h.recv(from_peer(State::Down));
    assert_eq!(h.state(), State::Down);
    let [c] = changes(&out)[..] else {
        panic!("{out:?}")
    };
    assert_eq!(c.diagnostic, Diagnostic::NeighborSignaledSessionDown);
    assert!(c.is_path_failure());
}

#[test]
fn up_session_stays_up_when_peer_says_init() {
    let mut h = Harness::up();
    let out = h.recv(from_peer(State::Init));
    assert_eq!(h.state(), State::Up);
    assert!(changes(&out).is_empty());
}

#[test]
fn up_session_stays_up_when_peer_says_up() {
    let mut h = Harness::up();
    let out = h.recv(from_peer(State::Up));
    assert_eq!(h.state(), State::Up);
    assert!(changes(&out).is_empty());
    assert!(sent(&out).is_empty(), "no reply to a plain periodic packet");
}

#[test]
fn transition_table_matches_rfc_5880_section_6_8_6() {
    use Diagnostic::NeighborSignaledSessionDown as D3;
    use State::*;
    let expected = [
        (Down, AdminDown, None),
        (Down, Down, Some((Init, None))),
        (Down, Init, Some((Up, None))),
        (Down, Up, None),
        (Init, AdminDown, Some((Down, Some(D3)))),
        (Init, Down, None),
        (Init, Init, Some((Up, None))),
        (Init, Up, Some((Up, None))),
        (Up, AdminDown, Some((Down, Some(D3)))),
        (Up, Down, Some((Down, Some(D3)))),
        (Up, Init, None),
        (Up, Up, None),
    ];
    for (local, received, next) in expected {
        assert_eq!(transition(local, received), next, "{local} + {received}");
    }
    for received in [AdminDown, Down, Init, Up] {
        assert_eq!(transition(AdminDown, received), None);
    }
}

// ----------------------------------------------------------------------------- §6.8.4 detection

#[test]
fn up_session_goes_down_with_diag_1_when_detection_time_passes() {
    let mut h = Harness::up();
    let last_rx = h.now;
    let deadline = h.session.detect_deadline.unwrap();
    assert_eq!(deadline - last_rx, ms(900), "3 × max(300, 300)");
    let out = h.fire_detection();
    assert_eq!(h.state(), State::Down);
    let [c] = changes(&out)[..] else {
        panic!("{out:?}")
    };
    assert_eq!(c.diagnostic, Diagnostic::ControlDetectionTimeExpired);
    assert!(c.is_path_failure());
    // The peer hears about it at once, and we no longer name it.
    let [p] = sent(&out)[..] else {
        panic!("{out:?}")
    };
    assert_eq!(p.state, State::Down);
    assert_eq!(p.diagnostic, Diagnostic::ControlDetectionTimeExpired);
    assert_eq!(p.your_discriminator, 0);
}

#[test]
fn init_session_goes_down_with_diag_1_when_detection_time_passes() {
    let mut h = Harness::init();
    let out = h.fire_detection();
    assert_eq!(h.state(), State::Down);
    assert_eq!(
        changes(&out)[0].diagnostic,
        Diagnostic::ControlDetectionTimeExpired
    );
}

#[test]
fn down_session_forgets_the_peer_when_detection_time_passes() {
    let mut h = Harness::default();
    h.recv(from_peer(State::AdminDown));
    assert_eq!(h.session.remote_discriminator, REMOTE);
    let out = h.fire_detection();
    assert_eq!(h.state(), State::Down);
    assert!(changes(&out).is_empty());
    assert_eq!(h.session.remote_discriminator, 0);
    // RFC 5880 §6.8.18: the peer's rate limit is forgotten too.
    assert_eq!(h.session.remote_min_rx, INITIAL_REMOTE_MIN_RX);
}

#[test]
fn detection_time_is_remote_multiplier_times_the_slower_of_our_rx_and_its_tx() {
    // Our RX 300 ms, its TX 500 ms × 5: 2.5 s.
    let mut h = Harness::default();
    let mut p = from_peer(State::Down);
    p.detect_multiplier = 5;
    p.desired_min_tx_us = 500_000;
    h.recv(p);
    assert_eq!(h.session.detection_time(), Some(ms(2500)));
    assert_eq!(h.session.detect_deadline, Some(h.now + ms(2500)));

    // Our RX 800 ms, its TX 100 ms × 2: 1.6 s.
    let mut h = Harness::new(profile(300, 800, 3));
    let mut p = from_peer(State::Down);
    p.detect_multiplier = 2;
    p.desired_min_tx_us = 100_000;
    h.recv(p);
    assert_eq!(h.session.detection_time(), Some(ms(1600)));
}

#[test]
fn each_packet_restarts_the_detection_timer() {
    let mut h = Harness::up();
    let first = h.session.detect_deadline.unwrap();
    h.now += ms(800);
    let out = h.recv(from_peer(State::Up));
    let second = armed(&out, TimerKind::Detection).unwrap();
    assert_eq!(second, h.now + ms(900));
    // The old deadline passing is now a stale expiry: nothing happens.
    h.now = first;
    let out = h.input(Input::TimerExpired(TimerKind::Detection));
    assert!(changes(&out).is_empty());
    assert_eq!(h.state(), State::Up);
}

#[test]
fn transmit_expiry_before_its_deadline_is_ignored() {
    let mut h = Harness::up();
    let deadline = h.session.tx_deadline.unwrap();
    h.now = deadline - ms(1);
    let out = h.input(Input::TimerExpired(TimerKind::Transmit));
    assert!(sent(&out).is_empty());
    assert_eq!(h.session.tx_deadline, Some(deadline));
}

// ----------------------------------------------------------------------------- §6.8.2, §6.8.7

#[test]
fn transmit_interval_is_the_greater_of_our_desired_tx_and_the_peer_required_rx() {
    let mut h = Harness::new(profile(100, 100, 3));
    h.bring_up();
    assert_eq!(h.session.transmit_interval(), ms(300), "peer requires 300");
    let mut p = from_peer(State::Up);
    p.required_min_rx_us = 50_000;
    h.recv(p);
    assert_eq!(
        h.session.transmit_interval(),
        ms(100),
        "ours is slower than 50"
    );
}

#[test]
fn desired_tx_is_at_least_one_second_while_not_up() {
    let mut h = Harness::new(profile(50, 50, 3));
    let out = h.fire_transmit();
    assert_eq!(sent(&out)[0].desired_min_tx_us, 1_000_000);
    assert_eq!(sent(&out)[0].required_min_rx_us, 50_000);
    let next = armed(&out, TimerKind::Transmit).unwrap();
    let gap = next - h.now;
    assert!(gap >= ms(750) && gap <= ms(1000), "{gap:?}");
    h.recv(from_peer(State::Down));
    assert_eq!(h.state(), State::Init);
    assert_eq!(h.session.advertised.desired_min_tx, SLOW_TX);
}

#[test]
fn going_up_advertises_the_configured_tx_in_a_poll() {
    let mut h = Harness::new(profile(50, 50, 3));
    h.recv(from_peer(State::Down));
    let out = h.recv(from_peer(State::Up));
    let [p] = sent(&out)[..] else {
        panic!("{out:?}")
    };
    assert_eq!(p.state, State::Up);
    assert!(p.poll);
    assert_eq!(p.desired_min_tx_us, 50_000);
    // A faster TX applies at once (only slower ones wait, RFC 5880 §6.8.3); the peer
    // still requires 300 ms.
    assert_eq!(h.session.transmit_interval(), ms(300));
}

#[test]
fn leaving_up_restores_the_one_second_floor() {
    let mut h = Harness::new(profile(50, 50, 3));
    h.bring_up();
    let out = h.recv(from_peer(State::Down));
    assert_eq!(h.state(), State::Down);
    assert_eq!(sent(&out)[0].desired_min_tx_us, 1_000_000);
}

#[test]
fn periodic_packets_are_jittered_between_75_and_100_percent() {
    let mut h = Harness::up();
    let mut fractions = Vec::new();
    for _ in 0..500 {
        let out = h.fire_transmit();
        assert_eq!(sent(&out).len(), 1);
        let next = armed(&out, TimerKind::Transmit).unwrap();
        fractions.push((next - h.now).as_secs_f64() / 0.300);
        // Keep the session alive.
        h.recv(from_peer(State::Up));
    }
    let min = fractions.iter().copied().fold(f64::MAX, f64::min);
    let max = fractions.iter().copied().fold(f64::MIN, f64::max);
    assert!(min >= 0.75 && max <= 1.0, "{min}..{max}");
    assert!(
        min < 0.78 && max > 0.97,
        "spread over the window: {min}..{max}"
    );
}

#[test]
fn jitter_is_75_to_90_percent_when_detect_multiplier_is_1() {
    let mut h = Harness::new(profile(300, 300, 1));
    h.bring_up();
    let mut fractions = Vec::new();
    for _ in 0..500 {
        let out = h.fire_transmit();
        let next = armed(&out, TimerKind::Transmit).unwrap();
        fractions.push((next - h.now).as_secs_f64() / 0.300);
        h.recv(from_peer(State::Up));
    }
    let min = fractions.iter().copied().fold(f64::MAX, f64::min);
    let max = fractions.iter().copied().fold(f64::MIN, f64::max);
    assert!(min >= 0.75 && max <= 0.90, "{min}..{max}");
    assert!(max > 0.88, "{max}");
}

#[test]
fn jitter_is_deterministic_for_a_given_discriminator() {
    let schedule = || {
        let mut h = Harness::up();
        (0..20)
            .map(|_| {
                let out = h.fire_transmit();
                h.recv(from_peer(State::Up));
                h.elapsed_ms(armed(&out, TimerKind::Transmit).unwrap())
            })
            .collect::<Vec<_>>()
    };
    assert_eq!(schedule(), schedule());
}

#[test]
fn peer_lowering_its_required_rx_is_honoured_at_once() {
    let mut h = Harness::new(profile(50, 50, 3));
    h.bring_up();
    h.fire_transmit();
    let sent_at = h.now;
    let before = h.session.tx_deadline.unwrap();
    assert!(before - sent_at >= ms(225), "300 ms interval");
    let mut p = from_peer(State::Up);
    p.required_min_rx_us = 50_000;
    h.now = sent_at + ms(10);
    let out = h.recv(p);
    let after = armed(&out, TimerKind::Transmit).expect("re-armed");
    assert!(after < before);
    let gap = after - sent_at;
    assert!(gap >= ms(37) && gap <= ms(50), "{gap:?}");
}

#[test]
fn overdue_packet_goes_out_at_once_when_the_interval_shrinks() {
    let mut h = Harness::new(profile(50, 50, 3));
    h.bring_up();
    h.fire_transmit();
    let sent_at = h.now;
    let mut p = from_peer(State::Up);
    p.required_min_rx_us = 50_000;
    h.now = sent_at + ms(200);
    let out = h.recv(p);
    assert_eq!(armed(&out, TimerKind::Transmit), Some(h.now));
}

#[test]
fn nothing_is_sent_periodically_while_the_peer_requires_zero_rx() {
    let mut h = Harness::up();
    let mut p = from_peer(State::Up);
    p.required_min_rx_us = 0;
    let out = h.recv(p);
    assert!(out.contains(&Output::CancelTimer(TimerKind::Transmit)));
    assert_eq!(h.session.tx_deadline, None);
    // A Poll is still answered.
    let mut p = from_peer(State::Up);
    p.required_min_rx_us = 0;
    p.poll = true;
    let out = h.recv(p);
    assert!(sent(&out)[0].final_);
}

#[test]
fn peer_in_demand_mode_stops_our_periodic_packets_while_both_are_up() {
    let mut h = Harness::up();
    let mut p = from_peer(State::Up);
    p.demand = true;
    let out = h.recv(p);
    assert!(out.contains(&Output::CancelTimer(TimerKind::Transmit)));
    // Its Polls are answered.
    p.poll = true;
    let out = h.recv(p);
    assert!(sent(&out)[0].final_);
    // Our own Poll Sequence is sent periodically until it ends (RFC 5880 §6.8.7).
    h.input(Input::ProfileChanged(profile(200, 200, 3)));
    let out = h.fire_transmit();
    assert!(sent(&out)[0].poll);
    let mut f = from_peer(State::Up);
    f.demand = true;
    f.final_ = true;
    let out = h.recv(f);
    assert!(out.contains(&Output::CancelTimer(TimerKind::Transmit)));
    // Demand off again: periodic packets resume.
    let out = h.recv(from_peer(State::Up));
    assert!(armed(&out, TimerKind::Transmit).is_some());
}

#[test]
fn our_packets_never_ask_for_demand_and_carry_no_echo_interval() {
    let mut h = Harness::up();
    for _ in 0..10 {
        let out = h.fire_transmit();
        for p in sent(&out) {
            assert!(!p.demand);
            assert!(!p.control_plane_independent);
            assert_eq!(p.required_min_echo_rx_us, 0);
            // The wire form has A and M clear as well.
            let bytes = p.encode();
            assert_eq!(bytes[1] & 0b0000_0111, 0);
        }
        h.recv(from_peer(State::Up));
    }
}

// ----------------------------------------------------------------------------- §6.5, §6.8.3

#[test]
fn profile_change_polls_on_the_next_periodic_packet_without_extra_packets() {
    let mut h = Harness::up();
    let out = h.input(Input::ProfileChanged(profile(200, 200, 3)));
    assert!(sent(&out).is_empty(), "no packet outside the schedule");
    let out = h.fire_transmit();
    let [p] = sent(&out)[..] else {
        panic!("{out:?}")
    };
    assert!(p.poll && !p.final_);
    assert_eq!(p.desired_min_tx_us, 200_000);
    assert_eq!(p.required_min_rx_us, 200_000);
    // Until the Final, every periodic packet polls.
    h.recv(from_peer(State::Up));
    let out = h.fire_transmit();
    assert!(sent(&out)[0].poll);
}

#[test]
fn poll_sequence_ends_when_the_peer_answers_final() {
    let mut h = Harness::up();
    let polls = h.session.counters().polls_completed;
    h.input(Input::ProfileChanged(profile(200, 200, 3)));
    h.fire_transmit();
    h.answer_poll();
    assert_eq!(h.session.counters().polls_completed, polls + 1);
    let out = h.fire_transmit();
    assert!(!sent(&out)[0].poll);
    assert!(!h.session.status(h.now, SystemTime::now()).poll_in_progress);
}

#[test]
fn slower_desired_tx_applies_only_after_the_final() {
    let mut h = Harness::up();
    h.input(Input::ProfileChanged(profile(600, 300, 3)));
    assert_eq!(
        h.session.transmit_interval(),
        ms(300),
        "held until the Final"
    );
    let out = h.fire_transmit();
    assert_eq!(sent(&out)[0].desired_min_tx_us, 600_000);
    let gap = armed(&out, TimerKind::Transmit).unwrap() - h.now;
    assert!(gap <= ms(300), "{gap:?}");
    h.answer_poll();
    assert_eq!(h.session.transmit_interval(), ms(600));
}

#[test]
fn faster_desired_tx_applies_at_once() {
    let mut h = Harness::new(profile(600, 300, 3));
    h.bring_up();
    assert_eq!(h.session.transmit_interval(), ms(600));
    h.input(Input::ProfileChanged(profile(300, 300, 3)));
    assert_eq!(h.session.transmit_interval(), ms(300));
}

#[test]
fn faster_required_rx_shortens_detection_time_only_after_the_final() {
    let mut h = Harness::new(profile(300, 600, 3));
    h.bring_up();
    assert_eq!(h.session.detection_time(), Some(ms(1800)));
    h.input(Input::ProfileChanged(profile(300, 300, 3)));
    assert_eq!(
        h.session.detection_time(),
        Some(ms(1800)),
        "held until the Final"
    );
    h.fire_transmit();
    let out = h.answer_poll();
    assert_eq!(h.session.detection_time(), Some(ms(900)));
    assert_eq!(armed(&out, TimerKind::Detection), Some(h.now + ms(900)));
}

#[test]
fn slower_required_rx_lengthens_detection_time_at_once() {
    let mut h = Harness::up();
    let last_rx = h.now;
    let out = h.input(Input::ProfileChanged(profile(300, 600, 3)));
    assert_eq!(h.session.detection_time(), Some(ms(1800)));
    assert_eq!(
        armed(&out, TimerKind::Detection),
        Some(last_rx + ms(1800)),
        "the running detection timer is extended"
    );
}

#[test]
fn change_during_a_poll_waits_for_the_final_and_a_non_final_packet() {
    let mut h = Harness::up();
    h.input(Input::ProfileChanged(profile(200, 200, 3)));
    h.input(Input::ProfileChanged(profile(100, 100, 3)));
    let out = h.fire_transmit();
    assert_eq!(sent(&out)[0].desired_min_tx_us, 200_000, "the first change");
    h.answer_poll();
    let out = h.fire_transmit();
    let p = sent(&out)[0];
    assert!(!p.poll, "no new Poll before a packet without F");
    assert_eq!(p.desired_min_tx_us, 200_000);
    h.recv(from_peer(State::Up));
    let out = h.fire_transmit();
    let p = sent(&out)[0];
    assert!(p.poll);
    assert_eq!(p.desired_min_tx_us, 100_000);
    h.answer_poll();
    assert_eq!(h.session.counters().polls_completed, 3, "Up, 200, 100");
}

#[test]
fn received_poll_is_answered_at_once_with_final_and_without_poll() {
    let mut h = Harness::up();
    // Even while our own Poll Sequence runs.
    h.input(Input::ProfileChanged(profile(200, 200, 3)));
    let mut p = from_peer(State::Up);
    p.poll = true;
    let out = h.recv(p);
    let [f] = sent(&out)[..] else {
        panic!("{out:?}")
    };
    assert!(f.final_ && !f.poll);
    assert_eq!(f.state, State::Up);
    // It carries the new values already (RFC 5880 §6.8.3 allows it).
    assert_eq!(f.desired_min_tx_us, 200_000);
}

#[test]
fn profile_change_never_resets_the_session() {
    let mut h = Harness::up();
    let mut all = Vec::new();
    all.extend(h.input(Input::ProfileChanged(profile(100, 100, 5))));
    all.extend(h.fire_transmit());
    all.extend(h.answer_poll());
    all.extend(h.fire_transmit());
    assert!(changes(&all).is_empty());
    assert_eq!(h.state(), State::Up);
    assert_eq!(h.session.counters().flaps, 0);
}

#[test]
fn detect_multiplier_change_is_sent_without_a_poll() {
    let mut h = Harness::up();
    h.input(Input::ProfileChanged(profile(300, 300, 7)));
    let out = h.fire_transmit();
    let p = sent(&out)[0];
    assert_eq!(p.detect_multiplier, 7);
    assert!(!p.poll);
}

#[test]
fn poll_sequence_is_abandoned_when_the_session_goes_down() {
    let mut h = Harness::up();
    h.input(Input::ProfileChanged(profile(600, 300, 3)));
    assert_eq!(h.session.transmit_interval(), ms(300));
    h.recv(from_peer(State::Down));
    assert_eq!(h.state(), State::Down);
    // Whatever was held applies, and the one-second floor is polled for afresh.
    assert_eq!(h.session.transmit_interval(), SLOW_TX);
    assert_eq!(h.session.queued, None);
}

#[test]
fn invalid_profile_change_is_refused_and_changes_nothing() {
    let mut h = Harness::up();
    let bad = Profile {
        echo_interval: Some(ms(50)),
        ..Profile::default()
    };
    let out = h.input(Input::ProfileChanged(bad));
    assert_eq!(
        out,
        vec![Output::ProfileRefused(ConfigError::EchoNotSupported)]
    );
    assert_eq!(h.session.profile(), &Profile::default());
}

// ----------------------------------------------------------------------------- §6.1 passive

fn passive() -> Harness {
    let mut config = SessionConfig::new(peer_ip());
    config.profile.passive = true;
    let (h, out) = Harness::with_config(config);
    assert!(out.is_empty(), "{out:?}");
    h
}

#[test]
fn passive_session_sends_nothing_until_the_peer_sends() {
    let mut h = passive();
    assert_eq!(h.session.tx_deadline, None);
    h.at(10_000);
    let out = h.input(Input::TimerExpired(TimerKind::Transmit));
    assert!(sent(&out).is_empty());
    assert_eq!(h.session.counters().packets_out, 0);
}

#[test]
fn passive_session_speaks_once_it_has_heard_the_peer() {
    let mut h = passive();
    h.at(5000);
    let out = h.recv(from_peer(State::Down));
    assert_eq!(h.state(), State::Init);
    assert_eq!(sent(&out)[0].state, State::Init);
    assert!(armed(&out, TimerKind::Transmit).is_some());
    let out = h.recv(from_peer(State::Up));
    assert_eq!(h.state(), State::Up);
    assert_eq!(sent(&out)[0].state, State::Up);
}

#[test]
fn passive_session_falls_silent_again_after_the_detection_time() {
    let mut h = passive();
    h.recv(from_peer(State::Down));
    h.recv(from_peer(State::Up));
    let out = h.fire_detection();
    assert_eq!(h.state(), State::Down);
    assert!(sent(&out).is_empty(), "passive and the peer is forgotten");
    assert!(out.contains(&Output::CancelTimer(TimerKind::Transmit)));
}

// ----------------------------------------------------------------------------- transport checks

#[test]
fn single_hop_packet_with_ttl_below_255_is_dropped() {
    let mut h = Harness::default();
    let out = h.recv_with(from_peer(State::Down), Some(254));
    assert_eq!(dropped(&out), vec![DropReason::TtlNot255]);
    assert_eq!(h.state(), State::Down);
    assert_eq!(h.session.remote_discriminator, 0, "nothing learned from it");
}

#[test]
fn packet_without_a_ttl_is_dropped() {
    let mut h = Harness::default();
    let out = h.recv_with(from_peer(State::Down), None);
    assert_eq!(dropped(&out), vec![DropReason::TtlUnknown]);
}

#[test]
fn multihop_packet_below_the_minimum_ttl_is_dropped_and_one_at_it_accepted() {
    let mut config = SessionConfig::new(peer_ip());
    config.multihop = true;
    config.profile.minimum_ttl = 250;
    let (mut h, _) = Harness::with_config(config);
    let out = h.recv_with(from_peer(State::Down), Some(249));
    assert_eq!(dropped(&out), vec![DropReason::TtlBelowMinimum]);
    assert_eq!(h.state(), State::Down);
    let out = h.recv_with(from_peer(State::Down), Some(250));
    assert!(dropped(&out).is_empty());
    assert_eq!(h.state(), State::Init);
}

#[test]
fn packet_from_another_address_is_dropped() {
    let mut h = Harness::default();
    let out = h.input(Input::PacketReceived(ReceivedPacket {
        packet: from_peer(State::Down),
        source: "198.51.100.3".parse().unwrap(),
        ttl: Some(255),
    }));
    assert_eq!(dropped(&out), vec![DropReason::WrongSource]);
    assert_eq!(h.state(), State::Down);
}

#[test]
fn packet_naming_another_discriminator_is_dropped() {
    let mut h = Harness::init();
    let mut p = from_peer(State::Up);
    p.your_discriminator = LOCAL + 1;
    let out = h.recv(p);
    assert_eq!(dropped(&out), vec![DropReason::UnknownDiscriminator]);
    assert_eq!(h.state(), State::Init);
}

// ----------------------------------------------------------------------------- §6.8.16 admin

#[test]
fn admin_down_announces_diag_7_and_stops_detection() {
    let mut h = Harness::up();
    let out = h.input(Input::AdminDown);
    let [c] = changes(&out)[..] else {
        panic!("{out:?}")
    };
    assert_eq!((c.from, c.to), (State::Up, State::AdminDown));
    assert_eq!(c.diagnostic, Diagnostic::AdministrativelyDown);
    assert!(!c.is_path_failure());
    let [p] = sent(&out)[..] else {
        panic!("{out:?}")
    };
    assert_eq!(p.state, State::AdminDown);
    assert_eq!(p.diagnostic, Diagnostic::AdministrativelyDown);
    assert!(out.contains(&Output::CancelTimer(TimerKind::Detection)));
    // RFC 5880 §6.8.16: AdminDown keeps being sent so the peer learns it.
    let out = h.fire_transmit();
    assert_eq!(sent(&out)[0].state, State::AdminDown);
}

#[test]
fn admin_up_returns_to_down_and_the_session_comes_up_again() {
    let mut h = Harness::admin_down();
    let out = h.input(Input::AdminUp);
    assert_eq!(h.state(), State::Down);
    assert_eq!(changes(&out)[0].to, State::Down);
    h.bring_up();
    assert_eq!(h.state(), State::Up);
}

// ----------------------------------------------------------------------------- status

#[test]
fn status_reports_negotiated_timers_discriminators_and_counters() {
    let mut h = Harness::new(profile(100, 200, 4));
    h.recv(from_peer(State::Down));
    let mut p = from_peer(State::Up);
    p.desired_min_tx_us = 250_000;
    p.required_min_rx_us = 150_000;
    p.detect_multiplier = 5;
    h.recv(p);
    h.answer_poll();
    let wall = SystemTime::now();
    let s = h.session.status(h.now, wall);
    assert_eq!(s.state, State::Up);
    assert_eq!(s.remote_state, State::Up);
    assert_eq!(s.local_discriminator, LOCAL);
    assert_eq!(s.remote_discriminator, REMOTE);
    assert_eq!(s.timers.desired_min_tx, ms(100));
    assert_eq!(s.timers.required_min_rx, ms(200));
    // Answering the Final moved the peer's values back to the 300 ms defaults.
    assert_eq!(s.timers.transmit_interval, ms(300));
    assert_eq!(s.timers.remote_min_rx, ms(300));
    assert_eq!(s.timers.remote_detect_multiplier, Some(3));
    assert_eq!(s.timers.detection_time, Some(ms(900)));
    assert_eq!(s.counters.packets_in, 3);
    assert_eq!(s.counters.packets_out, 2, "Init and Up");
    assert_eq!(s.last_state_change, Some(wall));
}

#[test]
fn flap_count_counts_each_departure_from_up() {
    let mut h = Harness::up();
    for _ in 0..3 {
        h.fire_detection();
        assert_eq!(h.state(), State::Down);
        h.bring_up();
    }
    let s = h.session.status(h.now, SystemTime::now());
    assert_eq!(s.counters.flaps, 3);
    assert_eq!(
        s.last_down_diagnostic,
        Some(Diagnostic::ControlDetectionTimeExpired)
    );
    assert_eq!(s.local_diagnostic, Diagnostic::None, "cleared by Up");
    assert_eq!(s.counters.state_changes, 2 + 3 * 3);
}
