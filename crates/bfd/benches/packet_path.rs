//! The per-packet cost of BFD: decoding a received Control packet and running it through an Up
//! session, and building and encoding a periodic packet. Together they are what one session
//! costs per interval, apart from the system calls.

#![allow(clippy::unwrap_used, clippy::expect_used)]

use std::hint::black_box;
use std::net::IpAddr;
use std::num::NonZeroU32;
use std::time::{Duration, Instant};

use criterion::{Criterion, criterion_group, criterion_main};
use ferrolb_bfd::session::{Input, Output, ReceivedPacket, Session, TimerKind};
use ferrolb_bfd::{ControlPacket, Diagnostic, SessionConfig, State};

const LOCAL: u32 = 7;
const REMOTE: u32 = 9;

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
        desired_min_tx_us: 50_000,
        required_min_rx_us: 50_000,
        required_min_echo_rx_us: 0,
    }
}

fn up_session(peer: IpAddr, now: Instant) -> Session {
    let mut config = SessionConfig::new(peer);
    config.profile.transmit_interval = Duration::from_millis(50);
    config.profile.receive_interval = Duration::from_millis(50);
    let (mut s, _) = Session::new(&config, NonZeroU32::new(LOCAL).unwrap(), now).unwrap();
    for state in [State::Down, State::Up] {
        s.handle(
            now,
            Input::PacketReceived(ReceivedPacket {
                packet: from_peer(state),
                source: peer,
                ttl: Some(255),
            }),
        );
    }
    assert_eq!(s.state(), State::Up);
    s
}

fn bench(c: &mut Criterion) {
    let peer: IpAddr = "198.51.100.2".parse().unwrap();
    let t0 = Instant::now();
    let wire = from_peer(State::Up).encode();

    c.bench_function("receive: decode + session", |b| {
        let mut s = up_session(peer, t0);
        let mut now = t0;
        b.iter(|| {
            now += Duration::from_millis(1);
            let packet = ControlPacket::decode(black_box(&wire)).unwrap();
            let out = s.handle(
                now,
                Input::PacketReceived(ReceivedPacket {
                    packet,
                    source: peer,
                    ttl: Some(255),
                }),
            );
            black_box(out);
        })
    });

    c.bench_function("transmit: session + encode", |b| {
        let mut s = up_session(peer, t0);
        let mut now = t0;
        b.iter(|| {
            now += Duration::from_millis(50);
            let out = s.handle(now, Input::TimerExpired(TimerKind::Transmit));
            for o in &out {
                if let Output::Send(p) = o {
                    black_box(p.encode());
                }
            }
            // Keep the peer alive so the session stays Up.
            s.handle(
                now,
                Input::PacketReceived(ReceivedPacket {
                    packet: from_peer(State::Up),
                    source: peer,
                    ttl: Some(255),
                }),
            );
        })
    });
}

criterion_group!(benches, bench);
criterion_main!(benches);
