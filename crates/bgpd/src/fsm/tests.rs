//! Tests of [`super`]: the session state machine, driven by inputs with time as a value.

use super::*;
use crate::wire::{RouteRefresh, Update};

const LOCAL_ID: Ipv4Addr = Ipv4Addr::new(192, 0, 2, 11);
const PEER_ID: Ipv4Addr = Ipv4Addr::new(192, 0, 2, 1);

fn config() -> SessionConfig {
    SessionConfig {
        local_as: 4_200_000_000,
        peer_as: 64512,
        router_id: LOCAL_ID,
        hold_time: 9,
        keepalive_time: None,
        families: vec![Family::IPV4_UNICAST, Family::IPV6_UNICAST],
        graceful_restart: None,
        passive: false,
        connect_retry: Backoff {
            initial: Duration::from_secs(1),
            max: Duration::from_secs(8),
        },
        extended_message: true,
        jitter_seed: 42,
    }
}

fn peer_open(asn: u32, hold: u16, id: Ipv4Addr) -> Message {
    Message::Open(Open::new(
        asn,
        hold,
        id,
        vec![
            Capability::Multiprotocol(Family::IPV4_UNICAST),
            Capability::RouteRefresh,
            Capability::FourOctetAs(asn),
        ],
    ))
}

fn sent(out: &[Output]) -> Vec<(Direction, Message)> {
    out.iter()
        .filter_map(|o| match o {
            Output::Send(d, m) => Some((*d, m.clone())),
            _ => None,
        })
        .collect()
}

fn notification_sent(out: &[Output]) -> Option<(u8, u8)> {
    sent(out).into_iter().find_map(|(_, m)| match m {
        Message::Notification(n) => Some((n.code, n.subcode)),
        _ => None,
    })
}

fn timer(out: &[Output], t: Timer) -> Option<Duration> {
    out.iter().find_map(|o| match o {
        Output::StartTimer(x, d) if *x == t => Some(*d),
        _ => None,
    })
}

/// A fresh FSM, started, with its outbound connection up and our OPEN sent.
fn open_sent(config: SessionConfig) -> Fsm {
    let mut fsm = Fsm::new(config);
    fsm.handle(Input::Start);
    fsm.handle(Input::Connected(Direction::Outbound));
    fsm
}

/// Drives a fresh FSM to Established over an outbound connection.
fn established() -> Fsm {
    let mut fsm = open_sent(config());
    fsm.handle(Input::Received(
        Direction::Outbound,
        peer_open(64512, 90, PEER_ID),
    ));
    let out = fsm.handle(Input::Received(Direction::Outbound, Message::Keepalive));
    assert!(
        out.iter()
            .any(|o| matches!(o, Output::Established(Direction::Outbound, _)))
    );
    fsm
}

#[test]
fn start_connects_and_reports_connect_state() {
    let mut fsm = Fsm::new(config());
    assert_eq!(fsm.state(), State::Idle);
    let out = fsm.handle(Input::Start);
    assert_eq!(out, vec![Output::Connect]);
    assert_eq!(fsm.state(), State::Connect);
}

#[test]
fn passive_peer_waits_in_active_without_connecting() {
    let mut fsm = Fsm::new(SessionConfig {
        passive: true,
        ..config()
    });
    let out = fsm.handle(Input::Start);
    assert!(out.is_empty());
    assert_eq!(fsm.state(), State::Active);
}

#[test]
fn connection_sends_open_with_our_capabilities_and_arms_the_long_hold_timer() {
    let mut fsm = Fsm::new(SessionConfig {
        graceful_restart: Some(GracefulRestartConfig { restart_time: 120 }),
        ..config()
    });
    fsm.handle(Input::Start);
    let out = fsm.handle(Input::Connected(Direction::Outbound));
    let [(Direction::Outbound, Message::Open(open))] = &sent(&out)[..] else {
        panic!("expected one OPEN, got {out:?}");
    };
    assert_eq!(open.my_as, crate::wire::AS_TRANS);
    assert_eq!(open.asn(), 4_200_000_000);
    assert_eq!(open.hold_time, 9);
    assert_eq!(open.router_id, LOCAL_ID);
    assert_eq!(
        open.families(),
        vec![Family::IPV4_UNICAST, Family::IPV6_UNICAST]
    );
    assert!(open.has_capability(2) && open.has_capability(6) && open.has_capability(65));
    let gr = open.graceful_restart().expect("GR capability");
    assert!(gr.restart_state, "first OPEN after start sets the R bit");
    assert_eq!(gr.restart_time, 120);
    assert!(gr.families.iter().all(|f| f.forwarding_preserved));
    assert_eq!(
        timer(&out, Timer::Hold(Direction::Outbound)),
        Some(OPEN_HOLD_TIME)
    );
    assert_eq!(fsm.state(), State::OpenSent);
}

#[test]
fn open_negotiates_the_smaller_hold_time_and_keepalive_is_a_third() {
    let mut fsm = open_sent(SessionConfig {
        hold_time: 90,
        ..config()
    });
    let out = fsm.handle(Input::Received(
        Direction::Outbound,
        peer_open(64512, 30, PEER_ID),
    ));
    assert_eq!(sent(&out), vec![(Direction::Outbound, Message::Keepalive)]);
    assert_eq!(
        timer(&out, Timer::Hold(Direction::Outbound)),
        Some(Duration::from_secs(30))
    );
    assert_eq!(
        timer(&out, Timer::Keepalive(Direction::Outbound)),
        Some(Duration::from_secs(10))
    );
    assert_eq!(fsm.state(), State::OpenConfirm);
}

#[test]
fn zero_hold_time_disables_hold_and_keepalive_timers() {
    let mut fsm = open_sent(config());
    let out = fsm.handle(Input::Received(
        Direction::Outbound,
        peer_open(64512, 0, PEER_ID),
    ));
    assert!(out.contains(&Output::StopTimer(Timer::Hold(Direction::Outbound))));
    assert_eq!(timer(&out, Timer::Keepalive(Direction::Outbound)), None);
    let out = fsm.handle(Input::Received(Direction::Outbound, Message::Keepalive));
    let Some(Output::Established(_, n)) = out.iter().find(|o| matches!(o, Output::Established(..)))
    else {
        panic!("not established: {out:?}");
    };
    assert_eq!(n.hold_time, 0);
    assert_eq!(timer(&out, Timer::Hold(Direction::Outbound)), None);
}

#[test]
fn keepalive_in_open_confirm_establishes_with_negotiated_capabilities() {
    let fsm = established();
    assert_eq!(fsm.state(), State::Established);
    let (_, n) = fsm.established().expect("established");
    assert_eq!(n.peer_as, 64512);
    assert_eq!(n.peer_router_id, PEER_ID);
    assert!(n.four_octet_as && n.route_refresh);
    assert!(!n.extended_message, "peer did not offer capability 6");
    assert_eq!(
        n.families,
        vec![Family::IPV4_UNICAST],
        "peer offered IPv4 only"
    );
    assert_eq!(
        n.codec(&config()).max_message_len,
        crate::wire::MAX_MESSAGE_LEN
    );
}

#[test]
fn peer_without_mp_capability_gets_ipv4_unicast_only() {
    let mut fsm = open_sent(config());
    let open = Message::Open(Open::new(64512, 90, PEER_ID, vec![]));
    fsm.handle(Input::Received(Direction::Outbound, open));
    fsm.handle(Input::Received(Direction::Outbound, Message::Keepalive));
    let (_, n) = fsm.established().expect("established");
    assert_eq!(n.families, vec![Family::IPV4_UNICAST]);
    assert!(!n.four_octet_as);
}

#[test]
fn wrong_peer_as_is_refused_with_bad_peer_as() {
    let mut fsm = open_sent(config());
    let out = fsm.handle(Input::Received(
        Direction::Outbound,
        peer_open(64999, 90, PEER_ID),
    ));
    assert_eq!(
        notification_sent(&out),
        Some((error_code::OPEN_MESSAGE, open_subcode::BAD_PEER_AS))
    );
    assert!(out.contains(&Output::Close(Direction::Outbound)));
    assert_eq!(
        timer(&out, Timer::ConnectRetry).map(|d| d <= Duration::from_secs(1)),
        Some(true)
    );
    assert_eq!(fsm.state(), State::Active);
}

#[test]
fn ibgp_peer_with_our_router_id_is_refused_with_bad_bgp_identifier() {
    let mut fsm = open_sent(SessionConfig {
        peer_as: 4_200_000_000,
        ..config()
    });
    let out = fsm.handle(Input::Received(
        Direction::Outbound,
        peer_open(4_200_000_000, 90, LOCAL_ID),
    ));
    assert_eq!(
        notification_sent(&out),
        Some((error_code::OPEN_MESSAGE, open_subcode::BAD_BGP_IDENTIFIER))
    );
}

#[test]
fn update_before_established_is_an_fsm_error() {
    let mut fsm = open_sent(config());
    let out = fsm.handle(Input::Received(Direction::Outbound, Message::Keepalive));
    assert_eq!(
        notification_sent(&out),
        Some((error_code::FSM, fsm_subcode::UNEXPECTED_IN_OPEN_SENT))
    );
    let mut fsm = open_sent(config());
    fsm.handle(Input::Received(
        Direction::Outbound,
        peer_open(64512, 90, PEER_ID),
    ));
    let out = fsm.handle(Input::Received(
        Direction::Outbound,
        Message::Update(Update::default()),
    ));
    assert_eq!(
        notification_sent(&out),
        Some((error_code::FSM, fsm_subcode::UNEXPECTED_IN_OPEN_CONFIRM))
    );
}

#[test]
fn open_in_established_is_an_fsm_error_and_takes_the_session_down() {
    let mut fsm = established();
    let out = fsm.handle(Input::Received(
        Direction::Outbound,
        peer_open(64512, 90, PEER_ID),
    ));
    assert_eq!(
        notification_sent(&out),
        Some((error_code::FSM, fsm_subcode::UNEXPECTED_IN_ESTABLISHED))
    );
    assert!(out.contains(&Output::Down));
}

/// The FSM-error NOTIFICATION sent, as (subcode, data).
fn fsm_error_sent(out: &[Output]) -> Option<(u8, Vec<u8>)> {
    sent(out).into_iter().find_map(|(_, m)| match m {
        Message::Notification(n) if n.code == error_code::FSM => Some((n.subcode, n.data)),
        _ => None,
    })
}

// RFC 6608 §4: "If a BGP speaker receives an unexpected message (e.g., KEEPALIVE/UPDATE/
// ROUTE-REFRESH message) on a session in OpenSent state, it MUST send to the neighbor a
// NOTIFICATION message with the Error Code Finite State Machine Error and the Error Subcode
// "Receive Unexpected Message in OpenSent State". The Data field is a 1-octet, unsigned integer
// that indicates the type of the unexpected message." §4 says the same for OpenConfirm and
// Established; §3 assigns the subcodes 1, 2 and 3.
#[test]
fn unexpected_message_in_open_sent_is_fsm_error_1_with_its_type_as_data() {
    let cases = [
        (Message::Keepalive, 4),
        (Message::Update(Update::default()), 2),
        (
            Message::RouteRefresh(RouteRefresh {
                family: Family::IPV4_UNICAST,
                subtype: 0,
            }),
            5,
        ),
    ];
    for (msg, message_type) in cases {
        let mut fsm = open_sent(config());
        let out = fsm.handle(Input::Received(Direction::Outbound, msg));
        assert_eq!(
            fsm_error_sent(&out),
            Some((fsm_subcode::UNEXPECTED_IN_OPEN_SENT, vec![message_type]))
        );
    }
}

#[test]
fn unexpected_message_in_open_confirm_is_fsm_error_2_with_its_type_as_data() {
    let mut fsm = open_sent(config());
    fsm.handle(Input::Received(
        Direction::Outbound,
        peer_open(64512, 90, PEER_ID),
    ));
    let out = fsm.handle(Input::Received(
        Direction::Outbound,
        Message::Update(Update::default()),
    ));
    assert_eq!(
        fsm_error_sent(&out),
        Some((fsm_subcode::UNEXPECTED_IN_OPEN_CONFIRM, vec![2]))
    );
}

#[test]
fn unexpected_open_in_established_is_fsm_error_3_with_type_1_as_data() {
    let mut fsm = established();
    let out = fsm.handle(Input::Received(
        Direction::Outbound,
        peer_open(64512, 90, PEER_ID),
    ));
    assert_eq!(
        fsm_error_sent(&out),
        Some((fsm_subcode::UNEXPECTED_IN_ESTABLISHED, vec![1]))
    );
}

// RFC 8654 §4: "A BGP speaker MAY send BGP Extended Messages to a peer only if the BGP Extended
// Message Capability was received from that peer. An implementation that advertises the BGP
// Extended Message Capability MUST be capable of receiving a message with a length up to and
// including 65,535 octets."
#[test]
fn codec_receives_extended_messages_once_we_advertised_them_but_sends_them_only_to_a_peer_that_did()
{
    use crate::wire::{MAX_EXTENDED_MESSAGE_LEN, MAX_MESSAGE_LEN};
    // The peer's OPEN in `established()` has no capability 6; ours does.
    let fsm = established();
    let (_, n) = fsm.established().expect("established");
    let codec = n.codec(fsm.config());
    assert_eq!(codec.max_message_len, MAX_MESSAGE_LEN);
    assert_eq!(codec.max_received_len, MAX_EXTENDED_MESSAGE_LEN);
    assert_eq!(codec.receive_limit(), MAX_EXTENDED_MESSAGE_LEN);
    // Without our capability 6, nothing over 4096 either way.
    let ours_off = SessionConfig {
        extended_message: false,
        ..config()
    };
    let codec = n.codec(&ours_off);
    assert_eq!(
        (codec.max_message_len, codec.receive_limit()),
        (MAX_MESSAGE_LEN, MAX_MESSAGE_LEN)
    );
    // Both sides: 65535 both ways.
    let mut fsm = open_sent(config());
    let Message::Open(mut open) = peer_open(64512, 90, PEER_ID) else {
        unreachable!()
    };
    open.capabilities.push(Capability::ExtendedMessage);
    fsm.handle(Input::Received(Direction::Outbound, Message::Open(open)));
    fsm.handle(Input::Received(Direction::Outbound, Message::Keepalive));
    let (_, n) = fsm.established().expect("established");
    let codec = n.codec(fsm.config());
    assert_eq!(
        (codec.max_message_len, codec.receive_limit()),
        (MAX_EXTENDED_MESSAGE_LEN, MAX_EXTENDED_MESSAGE_LEN)
    );
}

// RFC 7606 §7.5, §7.9, §7.10 handle an error differently for an internal and an external
// peer, so the decoder must know which one it is reading.
#[test]
fn codec_knows_whether_the_peer_is_internal() {
    let fsm = established();
    let (_, n) = fsm.established().expect("established");
    assert!(!n.codec(fsm.config()).ibgp, "AS 4200000000 to AS 64512");
    let ibgp = SessionConfig {
        peer_as: 4_200_000_000,
        ..config()
    };
    assert!(n.codec(&ibgp).ibgp);
}

#[test]
fn hold_timer_expiry_sends_hold_timer_expired_and_schedules_a_retry() {
    let mut fsm = established();
    let out = fsm.handle(Input::TimerExpired(Timer::Hold(Direction::Outbound)));
    assert_eq!(
        notification_sent(&out),
        Some((error_code::HOLD_TIMER_EXPIRED, 0))
    );
    assert!(out.contains(&Output::Down));
    assert!(out.contains(&Output::Close(Direction::Outbound)));
    assert!(timer(&out, Timer::ConnectRetry).is_some());
    assert_eq!(fsm.state(), State::Active);
}

#[test]
fn keepalive_and_update_restart_the_hold_timer() {
    let mut fsm = established();
    for msg in [Message::Keepalive, Message::Update(Update::default())] {
        let out = fsm.handle(Input::Received(Direction::Outbound, msg));
        assert_eq!(
            timer(&out, Timer::Hold(Direction::Outbound)),
            Some(Duration::from_secs(9))
        );
    }
}

#[test]
fn keepalive_timer_sends_a_keepalive_and_rearms() {
    let mut fsm = established();
    let out = fsm.handle(Input::TimerExpired(Timer::Keepalive(Direction::Outbound)));
    assert_eq!(sent(&out), vec![(Direction::Outbound, Message::Keepalive)]);
    assert_eq!(
        timer(&out, Timer::Keepalive(Direction::Outbound)),
        Some(Duration::from_secs(3))
    );
}

#[test]
fn update_in_established_is_passed_on() {
    let mut fsm = established();
    let update = Update {
        nlri: vec!["198.51.100.0/24".parse().unwrap()],
        ..Update::default()
    };
    let out = fsm.handle(Input::Received(
        Direction::Outbound,
        Message::Update(update.clone()),
    ));
    assert!(out.contains(&Output::UpdateReceived(update)));
}

#[test]
fn route_refresh_for_a_negotiated_family_is_passed_on_and_others_ignored() {
    let mut fsm = established();
    let rr = |family| Message::RouteRefresh(RouteRefresh { family, subtype: 0 });
    let out = fsm.handle(Input::Received(
        Direction::Outbound,
        rr(Family::IPV4_UNICAST),
    ));
    assert_eq!(
        out,
        vec![Output::RouteRefreshRequested(Family::IPV4_UNICAST)]
    );
    let out = fsm.handle(Input::Received(
        Direction::Outbound,
        rr(Family::IPV6_UNICAST),
    ));
    assert!(out.is_empty());
}

#[test]
fn notification_from_peer_is_recorded_and_session_goes_down() {
    let mut fsm = established();
    let n = Notification::cease(cease_subcode::ADMINISTRATIVE_SHUTDOWN, Some("bye"));
    let out = fsm.handle(Input::Received(
        Direction::Outbound,
        Message::Notification(n.clone()),
    ));
    assert!(out.contains(&Output::Error(SessionError::NotificationReceived(n))));
    assert!(out.contains(&Output::Down));
    assert!(sent(&out).is_empty(), "a NOTIFICATION is never answered");
}

#[test]
fn peer_closing_the_connection_takes_the_session_down_and_retries() {
    let mut fsm = established();
    let out = fsm.handle(Input::Closed(Direction::Outbound));
    assert!(out.contains(&Output::Error(SessionError::ConnectionClosed)));
    assert!(out.contains(&Output::Down));
    assert!(timer(&out, Timer::ConnectRetry).is_some());
    let out = fsm.handle(Input::TimerExpired(Timer::ConnectRetry));
    assert_eq!(out, vec![Output::Connect]);
}

#[test]
fn stop_sends_cease_with_shutdown_text_and_stays_idle() {
    let mut fsm = established();
    let out = fsm.handle(Input::Stop {
        subcode: cease_subcode::ADMINISTRATIVE_SHUTDOWN,
        text: Some("node drained".into()),
    });
    let sent = sent(&out);
    let [(Direction::Outbound, Message::Notification(n))] = &sent[..] else {
        panic!("expected a Cease, got {out:?}");
    };
    assert_eq!(
        (n.code, n.subcode),
        (error_code::CEASE, cease_subcode::ADMINISTRATIVE_SHUTDOWN)
    );
    assert_eq!(n.shutdown_text().as_deref(), Some("node drained"));
    assert!(out.contains(&Output::Down));
    assert_eq!(timer(&out, Timer::ConnectRetry), None);
    assert_eq!(fsm.state(), State::Idle);
    assert!(
        fsm.handle(Input::TimerExpired(Timer::ConnectRetry))
            .is_empty()
    );
}

#[test]
fn malformed_message_gets_its_notification() {
    let mut fsm = established();
    let err = DecodeError::BadMessageType { message_type: 9 };
    let expected = err.notification().map(|n| (n.code, n.subcode));
    let out = fsm.handle(Input::Malformed(Direction::Outbound, err));
    assert_eq!(notification_sent(&out), expected);
    assert!(out.contains(&Output::Down));
}

#[test]
fn connect_failures_back_off_exponentially_with_jitter_up_to_the_ceiling() {
    let mut fsm = Fsm::new(config());
    fsm.handle(Input::Start);
    let mut delays = Vec::new();
    for _ in 0..8 {
        let out = fsm.handle(Input::ConnectFailed);
        let d = timer(&out, Timer::ConnectRetry).expect("retry armed");
        delays.push(d);
        assert_eq!(
            fsm.handle(Input::TimerExpired(Timer::ConnectRetry)),
            vec![Output::Connect]
        );
    }
    for (i, d) in delays.iter().enumerate() {
        let base = Duration::from_secs(1 << i.min(3));
        assert!(
            *d >= base.mul_f64(0.75) && *d <= base,
            "attempt {i}: {d:?} not in 75-100% of {base:?}"
        );
    }
}

#[test]
fn backoff_is_reset_by_an_established_session() {
    let mut fsm = Fsm::new(config());
    fsm.handle(Input::Start);
    for _ in 0..5 {
        fsm.handle(Input::ConnectFailed);
        fsm.handle(Input::TimerExpired(Timer::ConnectRetry));
    }
    fsm.handle(Input::Connected(Direction::Outbound));
    fsm.handle(Input::Received(
        Direction::Outbound,
        peer_open(64512, 90, PEER_ID),
    ));
    fsm.handle(Input::Received(Direction::Outbound, Message::Keepalive));
    let out = fsm.handle(Input::Closed(Direction::Outbound));
    assert!(timer(&out, Timer::ConnectRetry).is_some_and(|d| d <= Duration::from_secs(1)));
}

#[test]
fn second_session_after_restart_clears_the_restart_state_bit() {
    let mut fsm = open_sent(SessionConfig {
        graceful_restart: Some(GracefulRestartConfig { restart_time: 120 }),
        ..config()
    });
    fsm.handle(Input::Received(
        Direction::Outbound,
        peer_open(64512, 90, PEER_ID),
    ));
    fsm.handle(Input::Received(Direction::Outbound, Message::Keepalive));
    fsm.handle(Input::Closed(Direction::Outbound));
    fsm.handle(Input::TimerExpired(Timer::ConnectRetry));
    let out = fsm.handle(Input::Connected(Direction::Outbound));
    let Some((_, Message::Open(open))) = sent(&out).into_iter().next() else {
        panic!()
    };
    assert!(!open.graceful_restart().expect("GR").restart_state);
}

// RFC 4271 §6.8
#[test]
fn collision_keeps_the_connection_initiated_by_the_higher_router_id() {
    // Our id 192.0.2.11 is higher than the peer's 192.0.2.1: our outbound connection wins.
    let mut fsm = open_sent(config());
    assert_eq!(fsm.inbound_decision(), InboundDecision::Accept);
    fsm.handle(Input::Connected(Direction::Inbound));
    // The first OPEN names the peer's identifier: that settles it.
    let out = fsm.handle(Input::Received(
        Direction::Outbound,
        peer_open(64512, 90, PEER_ID),
    ));
    assert_eq!(
        notification_sent(&out),
        Some((
            error_code::CEASE,
            cease_subcode::CONNECTION_COLLISION_RESOLUTION
        ))
    );
    assert!(out.contains(&Output::Close(Direction::Inbound)));
    assert!(fsm.has_connection(Direction::Outbound) && !fsm.has_connection(Direction::Inbound));
}

#[test]
fn collision_with_a_higher_peer_id_keeps_the_peers_connection() {
    let mut fsm = open_sent(config());
    let higher = Ipv4Addr::new(203, 0, 113, 1);
    fsm.handle(Input::Connected(Direction::Inbound));
    let out = fsm.handle(Input::Received(
        Direction::Outbound,
        peer_open(64512, 90, higher),
    ));
    assert_eq!(
        sent(&out),
        vec![(
            Direction::Outbound,
            Message::Notification(Notification::cease(
                cease_subcode::CONNECTION_COLLISION_RESOLUTION,
                None
            ))
        )],
        "the Cease goes on our own connection"
    );
    assert!(out.contains(&Output::Close(Direction::Outbound)));
    assert!(fsm.has_connection(Direction::Inbound) && !fsm.has_connection(Direction::Outbound));
    fsm.handle(Input::Received(
        Direction::Inbound,
        peer_open(64512, 90, higher),
    ));
    let out = fsm.handle(Input::Received(Direction::Inbound, Message::Keepalive));
    assert!(
        out.iter()
            .any(|o| matches!(o, Output::Established(Direction::Inbound, _)))
    );
}

#[test]
fn losing_the_spare_connection_of_a_collision_is_not_recorded_as_an_error() {
    let mut fsm = open_sent(config());
    fsm.handle(Input::Connected(Direction::Inbound));
    let cease = Notification::cease(cease_subcode::CONNECTION_COLLISION_RESOLUTION, None);
    let out = fsm.handle(Input::Received(
        Direction::Inbound,
        Message::Notification(cease),
    ));
    assert!(
        !out.iter().any(|o| matches!(o, Output::Error(_))),
        "{out:?}"
    );
    assert!(fsm.has_connection(Direction::Outbound));
    fsm.handle(Input::Connected(Direction::Inbound));
    let out = fsm.handle(Input::Closed(Direction::Inbound));
    assert!(
        !out.iter().any(|o| matches!(o, Output::Error(_))),
        "{out:?}"
    );
}

#[test]
fn losing_the_only_connection_is_recorded_as_an_error() {
    let mut fsm = open_sent(config());
    let out = fsm.handle(Input::Closed(Direction::Outbound));
    assert!(out.contains(&Output::Error(SessionError::ConnectionClosed)));
}

#[test]
fn inbound_connection_while_established_is_rejected_with_collision_cease() {
    let fsm = established();
    assert_eq!(
        fsm.inbound_decision(),
        InboundDecision::Reject(Notification::cease(
            cease_subcode::CONNECTION_COLLISION_RESOLUTION,
            None
        ))
    );
}

#[test]
fn inbound_connection_while_stopped_is_rejected() {
    let fsm = Fsm::new(config());
    assert!(
        matches!(fsm.inbound_decision(), InboundDecision::Reject(n) if n.subcode == cease_subcode::CONNECTION_REJECTED)
    );
}

#[test]
fn late_outbound_connect_after_inbound_session_is_closed() {
    let mut fsm = Fsm::new(config());
    fsm.handle(Input::Start);
    fsm.handle(Input::Connected(Direction::Inbound));
    fsm.handle(Input::Received(
        Direction::Inbound,
        peer_open(64512, 90, PEER_ID),
    ));
    fsm.handle(Input::Received(Direction::Inbound, Message::Keepalive));
    let out = fsm.handle(Input::Connected(Direction::Outbound));
    assert_eq!(out, vec![Output::Close(Direction::Outbound)]);
    assert_eq!(fsm.state(), State::Established);
}

#[test]
fn session_config_reports_ibgp_when_asns_match() {
    assert!(
        SessionConfig {
            peer_as: 4_200_000_000,
            ..config()
        }
        .is_ibgp()
    );
    assert!(!config().is_ibgp());
}
