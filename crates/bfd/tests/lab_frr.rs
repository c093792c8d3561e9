//! Interop with FRR 8.4's bfdd in network namespaces: sessions come up at 300 ms × 3 and 50 ms ×
//! 3 over IPv4 and IPv6, a silently blackholed link is detected by both sides (the numbers are
//! printed), timers change by Poll/Final without the session leaving Up, passive mode waits for
//! FRR, multihop uses port 4784, and administrative shutdowns travel both ways.
//!
//! Needs root (CI runs as root); without it every test fails saying so. Each test builds its own
//! namespaces and FRR instance and removes them on drop, also on failure.

#![allow(clippy::unwrap_used, clippy::expect_used)]

mod common;

use std::time::{Duration, Instant};

use common::*;
use ferrolb_bfd::{Diagnostic, DropReason, State};

/// Brings a single-hop session up between FRR in `a` and us in `b`, checks both views, and
/// returns the pieces.
fn up_with_frr(
    v6: bool,
    interval: u64,
    multiplier: u8,
) -> (Link, Frr, Node, ferrolb_bfd::SessionKey) {
    let (frr_addr, our_addr) = if v6 { (A_V6, B_V6) } else { (A_V4, B_V4) };
    let link = Link::new();
    let frr = Frr::start(&link.a, &frr_peer_conf(our_addr, interval, multiplier));
    let node = Node::start(&link.b);
    let config = session(frr_addr, interval, multiplier);
    let key = config.key();
    node.set_sessions(vec![config]);
    let ours = node.wait_state(&key, State::Up);
    let theirs = frr.wait_status(our_addr, "up");

    // Discriminators agree across the two views.
    assert_eq!(
        theirs["id"].as_u64(),
        Some(u64::from(ours.remote_discriminator))
    );
    assert_eq!(
        theirs["remote-id"].as_u64(),
        Some(u64::from(ours.local_discriminator))
    );
    // Both sides settle on the configured timers once the Up Poll Sequences are done.
    let ours = wait_for("our timers negotiated", TIMEOUT, || {
        let s = node.session(&key).unwrap();
        if s.timers.transmit_interval == ms(interval)
            && s.timers.detection_time == Some(ms(interval) * u32::from(multiplier))
            && !s.poll_in_progress
        {
            Ok(s)
        } else {
            Err(s.timers)
        }
    });
    assert_eq!(ours.timers.remote_detect_multiplier, Some(multiplier));
    let theirs = wait_for("FRR sees our timers", TIMEOUT, || {
        let p = frr.peer(our_addr).unwrap();
        if p["remote-receive-interval"] == interval && p["remote-transmit-interval"] == interval {
            Ok(p)
        } else {
            Err(p)
        }
    });
    assert_eq!(theirs["remote-detect-multiplier"], multiplier);
    assert_eq!(ours.counters.drops.values().sum::<u64>(), 0, "{ours:?}");
    (link, frr, node, key)
}

#[test]
fn session_comes_up_with_frr_at_300ms_x3_over_ipv4() {
    up_with_frr(false, 300, 3);
}

#[test]
fn session_comes_up_with_frr_at_50ms_x3_over_ipv4() {
    up_with_frr(false, 50, 3);
}

#[test]
fn session_comes_up_with_frr_at_300ms_x3_over_ipv6() {
    up_with_frr(true, 300, 3);
}

#[test]
fn session_comes_up_with_frr_at_50ms_x3_over_ipv6() {
    up_with_frr(true, 50, 3);
}

/// Blackholes the link `runs` times and measures how long each side takes to declare the
/// session down. Asserts that both do within 3× the detection time, and prints the spread.
fn blackhole_runs(v6: bool, interval: u64, runs: usize) {
    let multiplier = 3u8;
    let (link, frr, node, key) = up_with_frr(v6, interval, multiplier);
    let our_addr = if v6 { B_V6 } else { B_V4 };
    let detection = ms(interval) * u32::from(multiplier);
    let bound = detection * 3;
    let mut events = node.subscribe();
    let mut ours = Vec::new();
    let mut theirs = Vec::new();
    for run in 0..runs {
        node.wait_state(&key, State::Up);
        frr.wait_status(our_addr, "up");
        // Let the Up Poll Sequences finish so both sides run at the configured rate.
        wait_for("settled", TIMEOUT, || {
            let s = node.session(&key).unwrap();
            if s.timers.transmit_interval == ms(interval) && !s.poll_in_progress {
                Ok(())
            } else {
                Err(s.timers)
            }
        });
        while events.try_recv().is_ok() {}

        let start = Instant::now();
        let start_wall = std::time::SystemTime::now();
        link.b.blackhole(DEV);
        // FRR's side: poll its status back to back, as fast as vtysh answers; the time
        // measured is when the answer says down, so it includes up to one vtysh round trip.
        let frr_down = loop {
            if frr.status(our_addr) == "down" {
                break start.elapsed();
            }
            assert!(
                start.elapsed() < TIMEOUT,
                "FRR never declared the session down"
            );
        };
        let event = wait_for("our Down event", TIMEOUT, || {
            loop {
                match events.try_recv() {
                    Ok(e) if e.key == key && e.change.to == State::Down => return Ok(e),
                    Ok(_) => continue,
                    Err(e) => return Err(format!("{e:?}")),
                }
            }
        });
        let our_down = event.at.duration_since(start_wall).unwrap_or_default();
        assert_eq!(
            event.change.diagnostic,
            Diagnostic::ControlDetectionTimeExpired
        );
        assert!(event.is_path_failure());
        assert!(
            event
                .to_string()
                .ends_with("Up -> Down: control detection time expired")
        );
        assert!(
            our_down <= bound,
            "run {run}: we took {our_down:?} (bound {bound:?})"
        );
        assert!(
            frr_down <= bound,
            "run {run}: FRR took {frr_down:?} (bound {bound:?})"
        );
        ours.push(our_down);
        theirs.push(frr_down);
        link.b.restore();
    }
    let (p50, p95, max) = percentiles(&ours);
    let (f50, f95, fmax) = percentiles(&theirs);
    println!(
        "blackhole {} {interval}ms x{multiplier} (detection {detection:?}), {runs} runs: \
         ferrolb down after p50 {p50:.0} ms, p95 {p95:.0} ms, max {max:.0} ms; \
         FRR down after p50 {f50:.0} ms, p95 {f95:.0} ms, max {fmax:.0} ms (FRR polled via vtysh)",
        if v6 { "IPv6" } else { "IPv4" }
    );
}

#[test]
fn blackholed_link_is_detected_by_both_sides_at_300ms_x3() {
    blackhole_runs(false, 300, 10);
}

#[test]
fn blackholed_link_is_detected_by_both_sides_at_50ms_x3() {
    blackhole_runs(false, 50, 10);
}

#[test]
fn blackholed_ipv6_link_is_detected_by_both_sides_at_50ms_x3() {
    blackhole_runs(true, 50, 5);
}

#[test]
fn timer_change_renegotiates_with_frr_by_poll_and_final_without_leaving_up() {
    let (_link, frr, node, key) = up_with_frr(false, 300, 3);
    let before_frr = frr.counters(B_V4).unwrap();
    let before_ours = node.session(&key).unwrap();
    assert_eq!(before_frr["session-up"], 1);
    assert_eq!(before_frr["session-down"], 0);
    let frr_id_before = frr.peer(B_V4).unwrap()["id"].clone();

    // Our side: 300 → 100 ms. FRR answers our Poll and adopts our values.
    node.set_sessions(vec![session(A_V4, 100, 3)]);
    wait_for("FRR sees 100 ms from us", TIMEOUT, || {
        let p = frr.peer(B_V4).unwrap();
        if p["remote-receive-interval"] == 100 && p["remote-transmit-interval"] == 100 {
            Ok(())
        } else {
            Err(p)
        }
    });
    let ours = wait_for("our Poll answered", TIMEOUT, || {
        let s = node.session(&key).unwrap();
        if s.counters.polls_completed > before_ours.counters.polls_completed && !s.poll_in_progress
        {
            Ok(s)
        } else {
            Err((s.counters.polls_completed, s.poll_in_progress))
        }
    });
    // FRR still asks for 300 ms, so we keep sending at 300; we now require 100 from it.
    assert_eq!(ours.timers.required_min_rx, ms(100));
    assert_eq!(ours.timers.transmit_interval, ms(300));

    // FRR's side: 300 → 100 ms. It polls us, we answer, and both run at 100 ms.
    frr.configure_peer(B_V4, &["receive-interval 100", "transmit-interval 100"]);
    let ours = wait_for("we run at 100 ms", TIMEOUT, || {
        let s = node.session(&key).unwrap();
        if s.timers.transmit_interval == ms(100) && s.timers.detection_time == Some(ms(300)) {
            Ok(s)
        } else {
            Err(s.timers)
        }
    });

    // Never left Up on either side: compare counters, not clocks.
    let after_frr = frr.counters(B_V4).unwrap();
    assert_eq!(after_frr["session-up"], before_frr["session-up"]);
    assert_eq!(after_frr["session-down"], 0);
    assert_eq!(frr.peer(B_V4).unwrap()["id"], frr_id_before);
    assert_eq!(ours.state, State::Up);
    assert_eq!(ours.counters.flaps, 0);
    assert_eq!(
        ours.counters.state_changes,
        before_ours.counters.state_changes
    );
    assert_eq!(ours.local_discriminator, before_ours.local_discriminator);
    assert!(
        after_frr["control-packet-input"].as_u64() > before_frr["control-packet-input"].as_u64(),
        "FRR kept counting our packets on the same session"
    );
}

#[test]
fn passive_session_waits_for_frr_to_start() {
    let link = Link::new();
    let node = Node::start(&link.b);
    let mut config = session(A_V4, 300, 3);
    config.profile.passive = true;
    let key = config.key();
    node.set_sessions(vec![config]);
    // Long enough for several of the one-second packets an active session would send.
    std::thread::sleep(Duration::from_secs(3));
    let s = node.session(&key).unwrap();
    assert_eq!(s.state, State::Down);
    assert_eq!(
        s.counters.packets_out, 0,
        "a passive session must not speak first"
    );
    assert_eq!(node.status().counters.packets_out, 0);

    let frr = Frr::start(&link.a, &frr_peer_conf(B_V4, 300, 3));
    let s = node.wait_state(&key, State::Up);
    assert!(s.counters.packets_out > 0);
    frr.wait_status(B_V4, "up");
}

#[test]
fn ipv6_link_local_session_bound_to_its_interface_comes_up() {
    let link = Link::new();
    link.a
        .exec(&["ip", "addr", "add", "fe80::a/64", "dev", DEV, "nodad"]);
    link.b
        .exec(&["ip", "addr", "add", "fe80::b/64", "dev", DEV, "nodad"]);
    let frr = Frr::start(
        &link.a,
        &format!(
            "bfd\n peer fe80::b interface {DEV}\n  receive-interval 300\n  transmit-interval 300\n !\n!\n"
        ),
    );
    let node = Node::start(&link.b);
    let mut config = session("fe80::a", 300, 3);
    config.interface = Some(DEV.to_string());
    config.local = Some(ip("fe80::b"));
    let key = config.key();
    node.set_sessions(vec![config]);
    let s = node.wait_state(&key, State::Up);
    assert_eq!(s.transport_error, None);
    let p = frr.wait_status("fe80::b", "up");
    assert_eq!(p["interface"], DEV, "{p}");
    assert_eq!(node.status().counters.drops.values().sum::<u64>(), 0);
}

#[test]
fn session_on_a_missing_interface_reports_it_and_recovers_when_it_appears() {
    let link = Link::new();
    let frr = Frr::start(&link.a, &frr_peer_conf(B_V4, 300, 3));
    let node = Node::start(&link.b);
    // The session names an interface that does not exist yet.
    link.b.exec(&["ip", "link", "set", DEV, "down"]);
    link.b.exec(&["ip", "link", "set", DEV, "name", "bfdlater"]);
    let mut config = session(A_V4, 300, 3);
    config.interface = Some(DEV.to_string());
    let key = config.key();
    node.set_sessions(vec![config]);
    let s = wait_for("transport error reported", TIMEOUT, || {
        let s = node.session(&key).unwrap();
        if s.transport_error.is_some() {
            Ok(s)
        } else {
            Err(s.transport_error)
        }
    });
    assert!(s.transport_error.as_deref().unwrap().contains(DEV), "{s:?}");
    link.b.exec(&["ip", "link", "set", "bfdlater", "name", DEV]);
    link.b.exec(&["ip", "link", "set", DEV, "up"]);
    let s = node.wait_state(&key, State::Up);
    assert_eq!(s.transport_error, None);
    frr.wait_status(B_V4, "up");
}

#[test]
fn multihop_session_comes_up_with_frr_on_port_4784() {
    let link = Link::new();
    let frr = Frr::start(
        &link.a,
        &format!(
            "bfd\n peer {B_V4} multihop local-address {A_V4}\n  receive-interval 300\n  transmit-interval 300\n !\n!\n"
        ),
    );
    let node = Node::start(&link.b);
    let mut config = session(A_V4, 300, 3);
    config.multihop = true;
    config.local = Some(ip(B_V4));
    let key = config.key();
    node.set_sessions(vec![config]);
    node.wait_state(&key, State::Up);
    let p = frr.wait_status(B_V4, "up");
    assert_eq!(p["multihop"], true);
}

#[test]
fn frr_shutting_its_side_down_is_not_a_path_failure() {
    let (_link, frr, node, key) = up_with_frr(false, 300, 3);
    let mut events = node.subscribe();
    frr.configure_peer(B_V4, &["shutdown"]);
    let event = wait_for("our Down event", TIMEOUT, || match events.try_recv() {
        Ok(e) if e.change.to == State::Down => Ok(e),
        other => Err(format!("{other:?}")),
    });
    assert_eq!(event.key, key);
    assert_eq!(
        event.change.diagnostic,
        Diagnostic::NeighborSignaledSessionDown
    );
    assert_eq!(event.change.remote_state, State::AdminDown);
    assert!(!event.is_path_failure(), "RFC 5882 §3.2");
    frr.configure_peer(B_V4, &["no shutdown"]);
    node.wait_state(&key, State::Up);
}

#[test]
fn our_shutdown_tells_frr_administratively_down() {
    let (_link, frr, node, _key) = up_with_frr(false, 300, 3);
    node.shutdown();
    let p = frr.wait_status(B_V4, "down");
    assert_eq!(p["remote-diagnostic"], "administratively down", "{p}");
}

#[test]
fn removed_session_tells_frr_administratively_down_and_goes() {
    let (_link, frr, node, key) = up_with_frr(false, 300, 3);
    node.set_sessions(vec![]);
    let p = frr.wait_status(B_V4, "down");
    assert_eq!(p["remote-diagnostic"], "administratively down", "{p}");
    wait_for("session gone from our status", TIMEOUT, || {
        if node.session(&key).is_none() {
            Ok(())
        } else {
            Err(node.session(&key).map(|s| s.state))
        }
    });
}

/// FRR in `a`, a router namespace in between, us in `b`: packets cross one routing hop and
/// arrive with TTL 254.
struct Routed {
    a: Netns,
    r: Netns,
    b: Netns,
}

const ROUTED_A: &str = "198.51.100.1";
const ROUTED_B: &str = "203.0.113.2";

fn routed() -> Routed {
    let a = Netns::new();
    let r = Netns::new();
    let b = Netns::new();
    run(&[
        "ip", "link", "add", "left", "netns", &a.name, "type", "veth", "peer", "name", "left",
        "netns", &r.name,
    ]);
    run(&[
        "ip", "link", "add", "right", "netns", &b.name, "type", "veth", "peer", "name", "right",
        "netns", &r.name,
    ]);
    a.exec(&["ip", "addr", "add", "198.51.100.1/24", "dev", "left"]);
    r.exec(&["ip", "addr", "add", "198.51.100.254/24", "dev", "left"]);
    r.exec(&["ip", "addr", "add", "203.0.113.254/24", "dev", "right"]);
    b.exec(&["ip", "addr", "add", "203.0.113.2/24", "dev", "right"]);
    for (ns, dev) in [(&a, "left"), (&r, "left"), (&r, "right"), (&b, "right")] {
        ns.exec(&["ip", "link", "set", dev, "up"]);
    }
    r.exec(&["sysctl", "-qw", "net.ipv4.ip_forward=1"]);
    a.exec(&[
        "ip",
        "route",
        "add",
        "203.0.113.0/24",
        "via",
        "198.51.100.254",
    ]);
    b.exec(&[
        "ip",
        "route",
        "add",
        "198.51.100.0/24",
        "via",
        "203.0.113.254",
    ]);
    Routed { a, r, b }
}

#[test]
fn multihop_minimum_ttl_drops_packets_that_crossed_a_router() {
    let lab = routed();
    let _keep_router = &lab.r;
    let frr = Frr::start(
        &lab.a,
        &format!(
            "bfd\n peer {ROUTED_B} multihop local-address {ROUTED_A}\n  receive-interval 300\n  transmit-interval 300\n !\n!\n"
        ),
    );
    let node = Node::start(&lab.b);
    let mut config = session(ROUTED_A, 300, 3);
    config.multihop = true;
    config.local = Some(ip(ROUTED_B));
    config.profile.minimum_ttl = 255;
    let key = config.key();
    node.set_sessions(vec![config.clone()]);
    // FRR's packets arrive with TTL 254: below our minimum, every one is dropped.
    let s = wait_for("FRR's packets dropped for TTL", TIMEOUT, || {
        let s = node.session(&key).unwrap();
        match s.counters.drops.get(&DropReason::TtlBelowMinimum) {
            Some(n) if *n >= 2 => Ok(s),
            _ => Err(s.counters.clone()),
        }
    });
    assert_ne!(s.state, State::Up);
    assert_eq!(s.counters.packets_in, 0);

    // Allow one hop: the session comes up.
    config.profile.minimum_ttl = 254;
    node.set_sessions(vec![config]);
    node.wait_state(&key, State::Up);
    frr.wait_status(ROUTED_B, "up");
}

#[test]
fn single_hop_session_refuses_packets_that_crossed_a_router() {
    let lab = routed();
    let _keep_router = &lab.r;
    // FRR sends single-hop packets to a peer behind the router; they arrive with TTL 254.
    let _frr = Frr::start(&lab.a, &frr_peer_conf(ROUTED_B, 300, 3));
    let node = Node::start(&lab.b);
    let config = session(ROUTED_A, 300, 3);
    let key = config.key();
    node.set_sessions(vec![config]);
    let s = wait_for("FRR's packets dropped for TTL", TIMEOUT, || {
        let s = node.session(&key).unwrap();
        match s.counters.drops.get(&DropReason::TtlNot255) {
            Some(n) if *n >= 2 => Ok(s),
            _ => Err(s.counters.clone()),
        }
    });
    assert_eq!(s.state, State::Down);
    assert_eq!(
        s.remote_discriminator, 0,
        "nothing learned from a dropped packet"
    );
    assert_eq!(
        node.status()
            .counters
            .drops
            .get(&DropReason::TtlNot255)
            .copied()
            .unwrap_or(0),
        s.counters.drops[&DropReason::TtlNot255]
    );
}

#[test]
fn many_sessions_at_50ms_stay_up_and_their_cpu_cost_is_measured() {
    const SESSIONS: usize = 50;
    const SECONDS: u64 = 30;
    let link = Link::new();
    // FRR at 198.51.100.1 has one peer per local address of ours: 198.51.100.10 and up.
    let mut conf = String::from("bfd\n");
    let mut ours = Vec::new();
    for i in 0..SESSIONS {
        let addr = format!("198.51.100.{}", 10 + i);
        link.add_b_address(&addr);
        conf.push_str(&format!(
            " peer {addr} local-address {A_V4}\n  receive-interval 50\n  transmit-interval 50\n !\n"
        ));
        let mut c = session(A_V4, 50, 3);
        c.local = Some(ip(&addr));
        ours.push(c);
    }
    conf.push_str("!\n");
    let frr = Frr::start(&link.a, &conf);
    let node = Node::start(&link.b);
    let keys: Vec<_> = ours.iter().map(|c| c.key()).collect();
    node.set_sessions(ours);
    for key in &keys {
        node.wait_state(key, State::Up);
    }
    wait_for("all settled at 50 ms", TIMEOUT, || {
        let st = node.status();
        let settled = st
            .sessions
            .values()
            .filter(|s| s.timers.transmit_interval == ms(50) && !s.poll_in_progress)
            .count();
        if settled == SESSIONS {
            Ok(())
        } else {
            Err(settled)
        }
    });

    let before = node.status();
    let cpu0 = node.worker_cpu();
    let frr_cpu0 = frr.bfdd_cpu();
    let t0 = Instant::now();
    std::thread::sleep(Duration::from_secs(SECONDS));
    let cpu = node.worker_cpu() - cpu0;
    let frr_cpu = frr.bfdd_cpu() - frr_cpu0;
    let elapsed = t0.elapsed();
    let after = node.status();

    let flaps: u64 = after.sessions.values().map(|s| s.counters.flaps).sum();
    let up = after
        .sessions
        .values()
        .filter(|s| s.state == State::Up)
        .count();
    let packets_in = after.counters.packets_in - before.counters.packets_in;
    let packets_out = after.counters.packets_out - before.counters.packets_out;
    let per_session = cpu.as_secs_f64() / elapsed.as_secs_f64() / SESSIONS as f64 * 100.0;
    println!(
        "{SESSIONS} sessions at 50 ms x3 for {elapsed:.1?}: ferrolb worker thread {cpu:?} CPU \
         ({:.2}% of a core, {per_session:.4}% per session, {:.1} µs per packet in+out); \
         FRR bfdd {frr_cpu:?} ({:.2}% of a core); packets in {packets_in}, out {packets_out}; \
         flaps {flaps}",
        cpu.as_secs_f64() / elapsed.as_secs_f64() * 100.0,
        cpu.as_secs_f64() * 1e6 / (packets_in + packets_out) as f64,
        frr_cpu.as_secs_f64() / elapsed.as_secs_f64() * 100.0,
    );
    assert_eq!(up, SESSIONS);
    assert_eq!(flaps, 0, "a session flapped under steady load");
    // Each session sends at 37.5–50 ms: at least 20 packets a second each way, minus slack.
    let floor = (SESSIONS as u64) * SECONDS * 18;
    assert!(
        packets_out >= floor && packets_in >= floor,
        "in {packets_in} out {packets_out}"
    );
    assert_eq!(after.counters.send_errors, 0);
}
