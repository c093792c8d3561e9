//! Heartbeat cost: criterion timings of sealing and opening one beat (HMAC-SHA256 included)
//! for a small and a large segment, and a simulated segment of 3 and of 50 nodes printing
//! frames/s, bytes/s and CPU per node (the whole receive path: verify, liveness, election).
//!
//! Run with `cargo bench -p ferrolb-l2 --bench heartbeat`.

#![allow(clippy::unwrap_used)]

#[path = "../tests/common/sim.rs"]
mod sim;

use std::hint::black_box;
use std::net::{IpAddr, Ipv4Addr};
use std::time::{Duration, Instant};

use criterion::{Criterion, criterion_group};
use ferrolb_l2::wire::{Beat, BeatClaim, BeatEcho, HeartbeatKey};

fn beat(groups: usize, claims: usize, peers: usize) -> Beat {
    Beat {
        segment: "cluster-1".into(),
        node_id: "worker-node-17".into(),
        incarnation: 1_764_000_000_000_000_000,
        seq: 12345,
        listening: false,
        draining: false,
        eligible: (0..groups)
            .map(|i| IpAddr::V4(Ipv4Addr::from(0xc612_0000 + i as u32)))
            .collect(),
        claims: (0..claims)
            .map(|i| BeatClaim {
                group: IpAddr::V4(Ipv4Addr::from(0xc612_0000 + i as u32)),
                epoch: 3,
                handoff_to: None,
                provisional: false,
            })
            .collect(),
        echoes: (0..peers.min(16))
            .map(|i| BeatEcho {
                node_id: format!("worker-node-{i}"),
                seq: 12000,
                held_us: 40_000,
            })
            .collect(),
    }
}

fn codec(c: &mut Criterion) {
    let key = HeartbeatKey::new(&[7u8; 32]).unwrap();
    for (name, b) in [
        ("3 nodes, 12 groups", beat(12, 4, 2)),
        ("50 nodes, 100 groups", beat(100, 2, 49)),
    ] {
        let sealed = key.seal(&b).unwrap();
        c.bench_function(
            &format!("seal beat ({name}, {} B)", sealed[0].len()),
            |bench| bench.iter(|| key.seal(black_box(&b)).unwrap()),
        );
        c.bench_function(&format!("open beat ({name})"), |bench| {
            bench.iter(|| key.open(black_box(&sealed[0])).unwrap())
        });
    }
}

criterion_group!(benches, codec);

/// Runs `nodes` announcers sharing `groups` groups for 10 virtual seconds after convergence
/// and prints what one node sends, receives and spends.
fn segment_load(nodes: usize, groups: usize) {
    let mut s = sim::Sim::new();
    for i in 0..nodes {
        s.add(&format!("worker-node-{i}"), sim::v4_groups(groups));
    }
    for i in 0..nodes {
        s.start(i);
    }
    s.run_for(Duration::from_secs(3));
    let before: Vec<(u64, u64)> = s
        .nodes
        .iter()
        .map(|n| (n.sent.get("heartbeat").copied().unwrap_or(0), n.bytes_sent))
        .collect();
    let virtual_secs = 10;
    let wall = Instant::now();
    s.run_for(Duration::from_secs(virtual_secs));
    let cpu = wall.elapsed();
    let frames: u64 = s
        .nodes
        .iter()
        .zip(&before)
        .map(|(n, b)| n.sent.get("heartbeat").copied().unwrap_or(0) - b.0)
        .sum();
    let bytes: u64 = s
        .nodes
        .iter()
        .zip(&before)
        .map(|(n, b)| n.bytes_sent - b.1)
        .sum();
    let per_node_frames = frames as f64 / nodes as f64 / virtual_secs as f64;
    let per_node_bytes = bytes as f64 / nodes as f64 / virtual_secs as f64;
    let received_frames = per_node_frames * (nodes - 1) as f64;
    let received_bytes = per_node_bytes * (nodes - 1) as f64;
    let cpu_per_node = cpu.as_secs_f64() / nodes as f64 / virtual_secs as f64;
    println!(
        "segment of {nodes} nodes, {groups} groups: per node sends {per_node_frames:.1} frames/s \
         ({per_node_bytes:.0} B/s, {:.0} B/frame), receives {received_frames:.0} frames/s \
         ({:.1} kB/s); CPU {:.2} ms per node per second ({:.2}% of a core)",
        per_node_bytes / per_node_frames,
        received_bytes / 1000.0,
        cpu_per_node * 1000.0,
        cpu_per_node * 100.0,
    );
}

fn main() {
    segment_load(3, 12);
    segment_load(50, 100);
    benches();
    Criterion::default().configure_from_args().final_summary();
}
