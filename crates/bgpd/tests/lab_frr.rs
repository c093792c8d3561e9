//! Interop with FRR 8.4 in the network-namespace lab: sessions of every kind the issue lists,
//! asserted from FRR's own JSON. Needs root (CI runs as root); without namespaces these tests
//! fail with the lab's message, they never skip.

#![allow(clippy::unwrap_used, clippy::expect_used)]

mod common;

use std::time::Duration;

use common::*;
use ferrolb_bgpd::fsm::{GracefulRestartConfig, State};
use ferrolb_labtest::{Lab, LabSpec, POLL, RouterKind, TIMEOUT, frr, wait_for};
use serde_json::json;

const SPEAKER_AS: u32 = 4_200_000_000;
const ROUTER_AS: u32 = 64512;

fn listen_any() -> Vec<std::net::SocketAddr> {
    vec!["0.0.0.0:179".parse().unwrap(), "[::]:179".parse().unwrap()]
}

fn frr_lab(config: String) -> Lab {
    Lab::up(
        LabSpec::new(RouterKind::Frr)
            .with_router_config(config)
            .with_nodes(2),
    )
    .unwrap_or_else(|e| panic!("{e}"))
}

/// eBGP with FRR: the speaker in AS 4200000000 (4-octet, private) on node 1.
fn ebgp_lab(extra: &str) -> Lab {
    frr_lab(frr::config(
        ROUTER_AS,
        // Global options first: FRR refuses graceful-restart lines after neighbors exist.
        &format!(
            "{extra}\n neighbor 192.0.2.11 remote-as {SPEAKER_AS}\n neighbor 192.0.2.11 timers connect 1"
        ),
        "  neighbor 192.0.2.11 activate",
        "  neighbor 192.0.2.11 activate",
    ))
}

fn ebgp_speaker(lab: &Lab) -> (NodeSpeaker, ferrolb_bgpd::PeerConfig) {
    let speaker = NodeSpeaker::start(lab, 1, listen_any());
    let p = peer("rtr", ip("192.0.2.1"), SPEAKER_AS, ROUTER_AS, 1);
    (speaker, p)
}

#[test]
fn ebgp_four_octet_session_delivers_routes_with_exact_attributes() {
    let lab = ebgp_lab("");
    let (speaker, p) = ebgp_speaker(&lab);
    let a = attrs(
        &["64512:100", "65535:65281"],
        &[(SPEAKER_AS, 7, 8)],
        Some(300),
    );
    speaker.set_routes(
        "rtr",
        vec![
            (net("203.0.113.10/32"), a.clone()),
            (net("2001:db8:ff::10/128"), a),
        ],
    );
    speaker.set_peers(vec![p]);
    let status = speaker.wait_synced("rtr");
    let negotiated = status.negotiated.expect("negotiated");
    assert!(negotiated.four_octet_as);
    assert_eq!(negotiated.peer_as, ROUTER_AS);
    assert_eq!(
        (status.prefixes_advertised_v4, status.prefixes_advertised_v6),
        (1, 1)
    );

    let v4 = frr::wait_best_path(&lab, "203.0.113.10/32", |_| true);
    assert_eq!(v4["aspath"]["string"], "4200000000");
    assert_eq!(
        v4["aspath"]["segments"],
        json!([{"type": "as-sequence", "list": [4200000000u64]}])
    );
    assert_eq!(v4["origin"], "IGP");
    assert_eq!(v4["nexthops"][0]["ip"], "192.0.2.11");
    assert_eq!(v4["community"]["string"], "64512:100 no-export");
    assert_eq!(v4["largeCommunity"]["string"], "4200000000:7:8");
    assert!(
        v4.get("locPrf").is_none(),
        "LOCAL_PREF must not go to an eBGP peer: {v4}"
    );

    let v6 = frr::wait_best_path(&lab, "2001:db8:ff::10/128", |_| true);
    assert_eq!(v6["aspath"]["string"], "4200000000");
    assert_eq!(v6["nexthops"][0]["ip"], "2001:db8:0:1::11");
    assert_eq!(v6["community"]["string"], "64512:100 no-export");
    assert_eq!(v6["largeCommunity"]["string"], "4200000000:7:8");
}

#[test]
fn ibgp_session_carries_local_pref_and_an_empty_as_path() {
    let lab = frr_lab(frr::config(
        SPEAKER_AS,
        " neighbor 192.0.2.11 remote-as internal\n neighbor 192.0.2.11 timers connect 1",
        "  neighbor 192.0.2.11 activate",
        "",
    ));
    let speaker = NodeSpeaker::start(&lab, 1, listen_any());
    speaker.set_routes(
        "rtr",
        vec![(net("203.0.113.20/32"), attrs(&["64512:20"], &[], Some(250)))],
    );
    speaker.set_peers(vec![peer(
        "rtr",
        ip("192.0.2.1"),
        SPEAKER_AS,
        SPEAKER_AS,
        1,
    )]);
    speaker.wait_synced("rtr");
    let path = frr::wait_best_path(&lab, "203.0.113.20/32", |_| true);
    assert_eq!(path["locPrf"], 250);
    assert_eq!(path["aspath"]["length"], 0);
    assert_eq!(path["peer"]["type"], "internal");
    assert_eq!(path["nexthops"][0]["ip"], "192.0.2.11");
    assert_eq!(path["community"]["string"], "64512:20");
}

#[test]
fn md5_session_comes_up_with_the_right_password_and_not_with_a_wrong_one() {
    let lab = frr_lab(frr::config(
        ROUTER_AS,
        &format!(
            " neighbor 192.0.2.11 remote-as {SPEAKER_AS}\n neighbor 192.0.2.11 password s3cret-key\n \
             neighbor 192.0.2.12 remote-as 64513\n neighbor 192.0.2.12 password s3cret-key"
        ),
        "  neighbor 192.0.2.11 activate\n  neighbor 192.0.2.12 activate",
        "",
    ));
    let (good, mut p) = ebgp_speaker(&lab);
    p.password = Some("s3cret-key".into());
    good.set_routes("rtr", vec![(net("203.0.113.30/32"), attrs(&[], &[], None))]);
    good.set_peers(vec![p]);
    good.wait_synced("rtr");
    frr::wait_best_path(&lab, "203.0.113.30/32", |p| {
        p["nexthops"][0]["ip"] == "192.0.2.11"
    });

    let bad = NodeSpeaker::start(&lab, 2, listen_any());
    let mut p = peer("rtr", ip("192.0.2.1"), 64513, ROUTER_AS, 2);
    p.password = Some("wrong".into());
    bad.set_peers(vec![p]);
    std::thread::sleep(Duration::from_secs(4));
    assert_ne!(bad.status("rtr").map(|s| s.state), Some(State::Established));
    assert_ne!(frr::neighbor(&lab, "192.0.2.12")["bgpState"], "Established");
}

#[test]
fn session_on_a_non_standard_port() {
    let config = frr::config(
        ROUTER_AS,
        &format!(" neighbor 192.0.2.11 remote-as {SPEAKER_AS}\n neighbor 192.0.2.11 port 1179"),
        "  neighbor 192.0.2.11 activate",
        "",
    );
    let lab = Lab::up(
        LabSpec::new(RouterKind::Frr)
            .with_router_config(config)
            .with_nodes(1)
            .with_router_port(1179),
    )
    .unwrap_or_else(|e| panic!("{e}"));
    let speaker = NodeSpeaker::start(&lab, 1, vec!["0.0.0.0:1179".parse().unwrap()]);
    let mut p = peer("rtr", ip("192.0.2.1"), SPEAKER_AS, ROUTER_AS, 1);
    p.port = 1179;
    speaker.set_routes("rtr", vec![(net("203.0.113.40/32"), attrs(&[], &[], None))]);
    speaker.set_peers(vec![p]);
    let status = speaker.wait_synced("rtr");
    assert_eq!(status.peer.port(), 1179);
    frr::wait_best_path(&lab, "203.0.113.40/32", |_| true);
    assert_eq!(frr::neighbor(&lab, "192.0.2.11")["portLocal"], 1179);
}

#[test]
fn ipv6_session_carries_ipv4_and_ipv6_prefixes_with_next_hops_of_their_family() {
    let lab = frr_lab(frr::config(
        ROUTER_AS,
        &format!(
            " neighbor 2001:db8:0:1::11 remote-as {SPEAKER_AS}\n neighbor 2001:db8:0:1::11 timers connect 1"
        ),
        "  neighbor 2001:db8:0:1::11 activate",
        "  neighbor 2001:db8:0:1::11 activate",
    ));
    let speaker = NodeSpeaker::start(&lab, 1, listen_any());
    let a = attrs(&["64512:6"], &[], None);
    speaker.set_routes(
        "rtr",
        vec![
            (net("203.0.113.60/32"), a.clone()),
            (net("2001:db8:ff::60/128"), a),
        ],
    );
    speaker.set_peers(vec![peer(
        "rtr",
        ip("2001:db8:0:1::1"),
        SPEAKER_AS,
        ROUTER_AS,
        1,
    )]);
    let status = speaker.wait_synced("rtr");
    assert!(status.local_address.expect("local").is_ipv6());
    let v4 = frr::wait_best_path(&lab, "203.0.113.60/32", |_| true);
    assert_eq!(v4["nexthops"][0]["ip"], "192.0.2.11");
    assert_eq!(v4["peer"]["peerId"], "2001:db8:0:1::11");
    let v6 = frr::wait_best_path(&lab, "2001:db8:ff::60/128", |_| true);
    assert_eq!(v6["nexthops"][0]["ip"], "2001:db8:0:1::11");
    // Both routes are usable: the router forwards to them.
    assert_eq!(v4["nexthops"][0]["accessible"], true);
    assert_eq!(v6["nexthops"][0]["accessible"], true);
}

#[test]
fn withdrawal_reaches_the_router_and_leaves_other_routes_alone() {
    let lab = ebgp_lab("");
    let (speaker, p) = ebgp_speaker(&lab);
    let a = attrs(&[], &[], None);
    speaker.set_routes(
        "rtr",
        vec![
            (net("203.0.113.70/32"), a.clone()),
            (net("203.0.113.71/32"), a.clone()),
        ],
    );
    speaker.set_peers(vec![p]);
    speaker.wait_synced("rtr");
    frr::wait_best_path(&lab, "203.0.113.71/32", |_| true);
    speaker.set_routes("rtr", vec![(net("203.0.113.70/32"), a)]);
    frr::wait_gone(&lab, "203.0.113.71/32");
    assert!(frr::best_path(&lab, "203.0.113.70/32").is_some());
    assert_eq!(
        frr::neighbor(&lab, "192.0.2.11")["connectionsEstablished"],
        1
    );
}

#[test]
fn session_comes_back_by_itself_after_the_router_restarts() {
    let lab = ebgp_lab("");
    let (speaker, p) = ebgp_speaker(&lab);
    speaker.set_routes("rtr", vec![(net("203.0.113.80/32"), attrs(&[], &[], None))]);
    speaker.set_peers(vec![p]);
    speaker.wait_synced("rtr");
    frr::wait_best_path(&lab, "203.0.113.80/32", |_| true);
    lab.router_restart().expect("router restart");
    wait_for(TIMEOUT, POLL, || match speaker.status("rtr") {
        Some(s) if s.flaps >= 1 && s.state == State::Established && s.initial_sync_done => Ok(()),
        other => Err(other.map(|s| (s.state, s.flaps))),
    })
    .expect("session re-established");
    frr::wait_best_path(&lab, "203.0.113.80/32", |_| true);
}

#[test]
fn stopping_the_speaker_sends_cease_with_the_shutdown_text() {
    let lab = ebgp_lab("");
    let (speaker, p) = ebgp_speaker(&lab);
    speaker.set_routes("rtr", vec![(net("203.0.113.90/32"), attrs(&[], &[], None))]);
    speaker.set_peers(vec![p]);
    speaker.wait_synced("rtr");
    frr::wait_best_path(&lab, "203.0.113.90/32", |_| true);
    speaker.shutdown("maintenance window 42");
    let n = frr::wait_neighbor(&lab, "192.0.2.11", |n| n["bgpState"] != "Established");
    assert_eq!(n["lastErrorCodeSubcode"], "0602");
    assert_eq!(n["lastNotificationReason"], "Cease/Administrative Shutdown");
    assert_eq!(n["lastShutdownDescription"], "maintenance window 42");
    assert_eq!(n["lastResetDueTo"], "BGP Notification received");
    frr::wait_gone(&lab, "203.0.113.90/32");
}

#[test]
fn attribute_change_reaches_the_router_without_resetting_the_session() {
    let lab = ebgp_lab("");
    let (speaker, p) = ebgp_speaker(&lab);
    speaker.set_routes(
        "rtr",
        vec![(net("203.0.113.100/32"), attrs(&["64512:1"], &[], None))],
    );
    speaker.set_peers(vec![p]);
    speaker.wait_synced("rtr");
    frr::wait_best_path(&lab, "203.0.113.100/32", |p| {
        p["community"]["string"] == "64512:1"
    });
    let before = frr::session_life(&lab, "192.0.2.11");

    speaker.set_routes(
        "rtr",
        vec![(
            net("203.0.113.100/32"),
            attrs(&["64512:2"], &[(SPEAKER_AS, 1, 1)], None),
        )],
    );
    let path = frr::wait_best_path(&lab, "203.0.113.100/32", |p| {
        p["community"]["string"] == "64512:2"
    });
    assert_eq!(path["largeCommunity"]["string"], "4200000000:1:1");
    // Counters, not FRR's uptime epoch: FRR recomputes that from the clock in whole seconds
    // on every call, so it can differ by one for the very same session.
    assert_eq!(before.established, 1);
    frr::assert_same_session(&lab, "192.0.2.11", &before);
    assert_eq!(speaker.status("rtr").expect("status").flaps, 0);
}

#[test]
fn only_session_defining_peer_changes_reset_the_session() {
    let lab = ebgp_lab("");
    let (speaker, p) = ebgp_speaker(&lab);
    speaker.set_routes(
        "rtr",
        vec![(net("203.0.113.110/32"), attrs(&[], &[], None))],
    );
    speaker.set_peers(vec![p.clone()]);
    speaker.wait_synced("rtr");
    frr::wait_best_path(&lab, "203.0.113.110/32", |_| true);

    // Keepalive interval and retry backoff are local: applied in place.
    let mut gentle = p.clone();
    gentle.keepalive_time = Some(Duration::from_secs(2));
    gentle.connect_retry.max = Duration::from_secs(5);
    speaker.set_peers(vec![gentle.clone()]);
    std::thread::sleep(Duration::from_secs(2));
    assert_eq!(
        frr::neighbor(&lab, "192.0.2.11")["connectionsEstablished"],
        1
    );

    // The hold time goes into the OPEN: a new session, with a Cease saying why. FRR shows the
    // Cease while it waits before taking the new connection.
    let mut slower = gentle;
    slower.hold_time = 30;
    speaker.set_peers(vec![slower]);
    let reset = frr::wait_neighbor(&lab, "192.0.2.11", |n| {
        n["lastNotificationReason"] == "Cease/Administrative Reset"
    });
    assert_eq!(
        reset["lastShutdownDescription"],
        "ferrolb: hold time changed"
    );
    let n = frr::wait_neighbor(&lab, "192.0.2.11", |n| {
        n["connectionsEstablished"] == 2 && n["bgpState"] == "Established"
    });
    assert_eq!(
        n["bgpTimerHoldTimeMsecs"], 9000,
        "router keeps its smaller hold time"
    );
    frr::wait_best_path(&lab, "203.0.113.110/32", |_| true);
    let status = speaker.wait_synced("rtr");
    assert_eq!(status.negotiated.map(|n| n.hold_time), Some(9));
    assert_eq!(
        status.flaps, 1,
        "the reset is counted across the new session"
    );
}

#[test]
fn graceful_restart_keeps_routes_at_the_router_while_the_speaker_restarts() {
    let lab = ebgp_lab(" bgp graceful-restart\n bgp graceful-restart restart-time 120");
    let (speaker, mut p) = ebgp_speaker(&lab);
    p.graceful_restart = Some(GracefulRestartConfig { restart_time: 60 });
    let a = attrs(&[], &[], None);
    speaker.set_routes(
        "rtr",
        vec![
            (net("203.0.113.120/32"), a.clone()),
            (net("203.0.113.121/32"), a.clone()),
        ],
    );
    speaker.set_peers(vec![p.clone()]);
    let status = speaker.wait_synced("rtr");
    assert!(status.negotiated.expect("negotiated").graceful_restart);
    frr::wait_best_path(&lab, "203.0.113.121/32", |_| true);

    // The process dies: no NOTIFICATION, so the router keeps our routes as stale.
    speaker.crash();
    let stale = frr::wait_best_path(&lab, "203.0.113.120/32", |p| p["stale"] == true);
    assert_eq!(stale["nexthops"][0]["ip"], "192.0.2.11");

    // The restarted speaker wants only .120: after its End-of-RIB the router drops .121.
    let speaker = NodeSpeaker::start(&lab, 1, listen_any());
    speaker.set_routes("rtr", vec![(net("203.0.113.120/32"), a)]);
    speaker.set_peers(vec![p]);
    speaker.wait_synced("rtr");
    frr::wait_best_path(&lab, "203.0.113.120/32", |p| p.get("stale").is_none());
    frr::wait_gone(&lab, "203.0.113.121/32");
}

#[test]
fn route_refresh_from_the_router_is_answered_without_a_reset() {
    let lab = ebgp_lab("");
    let (speaker, p) = ebgp_speaker(&lab);
    speaker.set_routes(
        "rtr",
        vec![(net("203.0.113.130/32"), attrs(&[], &[], None))],
    );
    speaker.set_peers(vec![p]);
    let before = speaker.wait_synced("rtr");
    lab.vtysh("clear bgp ipv4 unicast 192.0.2.11 soft in")
        .expect("soft in");
    let after = wait_for(TIMEOUT, POLL, || match speaker.status("rtr") {
        Some(s) if s.messages_received.route_refresh >= 1 => Ok(s),
        other => Err(other.map(|s| s.messages_received)),
    })
    .expect("route refresh received");
    wait_for(TIMEOUT, POLL, || {
        let s = speaker.status("rtr").expect("status");
        if s.messages_sent.update > before.messages_sent.update {
            Ok(())
        } else {
            Err(s.messages_sent)
        }
    })
    .expect("routes re-sent");
    assert_eq!(after.flaps, 0);
    frr::wait_best_path(&lab, "203.0.113.130/32", |_| true);
    assert_eq!(
        frr::neighbor(&lab, "192.0.2.11")["connectionsEstablished"],
        1
    );
}

#[test]
fn hold_timer_detects_a_router_that_stopped_answering() {
    let lab = ebgp_lab("");
    let (speaker, mut p) = ebgp_speaker(&lab);
    p.hold_time = 3;
    speaker.set_routes(
        "rtr",
        vec![(net("203.0.113.140/32"), attrs(&[], &[], None))],
    );
    speaker.set_peers(vec![p]);
    speaker.wait_synced("rtr");
    let pid = lab.router_pid().expect("bgpd pid");
    // Freeze bgpd: TCP stays open, keepalives stop. Only a receive hold timer notices.
    let stop = std::process::Command::new("kill")
        .args(["-STOP", &pid.to_string()])
        .status();
    assert!(stop.expect("kill").success());
    let down = wait_for(Duration::from_secs(10), POLL, || {
        match speaker.status("rtr") {
            Some(s) if s.state != State::Established => Ok(s),
            other => Err(other.map(|s| s.state)),
        }
    });
    let _ = std::process::Command::new("kill")
        .args(["-CONT", &pid.to_string()])
        .status();
    let down = down.expect("hold timer expired");
    let err = down.last_error.expect("last error").error;
    assert_eq!(
        err,
        ferrolb_bgpd::fsm::SessionError::NotificationSent(ferrolb_bgpd::wire::Notification::new(
            4,
            0,
            vec![]
        ))
    );
    speaker.wait_synced("rtr");
}

#[test]
fn ttl_is_one_for_single_hop_ebgp_and_255_with_multihop() {
    // GTSM at the router (RFC 5082): it only accepts packets that arrive with TTL >= 254.
    let lab = frr_lab(frr::config(
        ROUTER_AS,
        &format!(
            " neighbor 192.0.2.11 remote-as {SPEAKER_AS}\n neighbor 192.0.2.11 timers connect 1\n \
             neighbor 192.0.2.11 ttl-security hops 1"
        ),
        "  neighbor 192.0.2.11 activate",
        "",
    ));
    let (speaker, p) = ebgp_speaker(&lab);
    speaker.set_routes(
        "rtr",
        vec![(net("203.0.113.150/32"), attrs(&[], &[], None))],
    );
    speaker.set_peers(vec![p.clone()]);
    // FRR checks the TTL on the accepted socket just after the handshake, so our first packets
    // may get through; the router itself must never reach Established nor take the route.
    for _ in 0..20 {
        std::thread::sleep(Duration::from_millis(200));
        assert_ne!(
            frr::neighbor(&lab, "192.0.2.11")["bgpState"],
            "Established",
            "single-hop eBGP must send TTL 1, which GTSM drops"
        );
    }
    assert!(frr::best_path(&lab, "203.0.113.150/32").is_none());
    let mut multihop = p;
    multihop.ebgp_multihop = true;
    speaker.set_peers(vec![multihop]);
    speaker.wait_synced("rtr");
    frr::wait_best_path(&lab, "203.0.113.150/32", |_| true);
}

#[test]
fn drain_readvertises_with_graceful_shutdown_then_withdraws_then_ceases() {
    let lab = ebgp_lab("");
    let (speaker, p) = ebgp_speaker(&lab);
    speaker.set_routes(
        "rtr",
        vec![(net("203.0.113.160/32"), attrs(&["64512:1"], &[], None))],
    );
    speaker.set_peers(vec![p]);
    speaker.wait_synced("rtr");
    frr::wait_best_path(&lab, "203.0.113.160/32", |p| {
        p["community"]["string"] == "64512:1"
    });

    let draining = speaker.start_drain(Duration::from_secs(3), "node drained");
    let path = frr::wait_best_path(&lab, "203.0.113.160/32", |p| {
        p["community"]["string"] == "64512:1 graceful-shutdown"
    });
    assert_eq!(
        path["nexthops"][0]["ip"], "192.0.2.11",
        "still announced while draining"
    );
    frr::wait_gone(&lab, "203.0.113.160/32");
    draining.join().expect("drain finished");
    let n = frr::wait_neighbor(&lab, "192.0.2.11", |n| n["bgpState"] != "Established");
    assert_eq!(n["lastNotificationReason"], "Cease/Administrative Shutdown");
    assert_eq!(n["lastShutdownDescription"], "node drained");
}
