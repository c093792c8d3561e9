//! Criterion benchmarks of the allocator's hot paths.
//!
//! * `fill_1m/ipv4_slash8`, `fill_1m/ipv6_slash64`: one sample is one million `assign` calls
//!   into a fresh pool (time per sample = time for 1M). The requests are built before the clock
//!   starts; `benches/memory.rs` times the same fills with request building included;
//! * `release_and_assign/{1,50,90}pct`: one iteration is one release of a random Service plus
//!   one new assignment, with 2^19 Services held in a pool sized so that it is 1%, 50% or 90%
//!   full. The number of Services is the same in the three cases, so the comparison isolates
//!   how full the pool is (what makes MetalLB's linear scan slow) from how many Services there
//!   are (which costs O(log n) and cache misses in any structure).
//!
//! `cargo bench -p ferrolb-allocator --bench fill`. Memory per assignment is measured by
//! `benches/memory.rs`.

mod common;

use std::hint::black_box;
use std::net::Ipv4Addr;
use std::sync::Arc;
use std::time::{Duration, Instant};

use criterion::{BenchmarkId, Criterion, criterion_group, criterion_main};
use ferrolb_allocator::Family;

use common::{Churn, allocator_with, request};

/// Full sizes under `cargo bench`; a thousandth under `cargo test --benches`, where criterion
/// runs each benchmark once as a smoke test (in a debug build).
fn scaled(count: u64) -> u64 {
    if std::env::args().any(|arg| arg == "--bench") {
        count
    } else {
        (count / 1000).max(1)
    }
}

fn fill_one_million(c: &mut Criterion) {
    let mut group = c.benchmark_group("fill_1m");
    group.sample_size(10);
    group.warm_up_time(Duration::from_millis(500));
    group.measurement_time(Duration::from_secs(20));
    for (name, range, family) in [
        ("ipv4_slash8", "10.0.0.0/8", Family::V4),
        ("ipv6_slash64", "2001:db8::/64", Family::V6),
    ] {
        group.bench_function(name, |b| {
            b.iter_custom(|iterations| {
                let namespace: Arc<str> = Arc::from("bench");
                let mut total = Duration::ZERO;
                for _ in 0..iterations {
                    let requests: Vec<_> = (0..scaled(1_000_000))
                        .map(|index| request(&namespace, index, family))
                        .collect();
                    let mut allocator = allocator_with(range);
                    let start = Instant::now();
                    for request in &requests {
                        black_box(allocator.assign(request).is_ok());
                    }
                    total += start.elapsed();
                    // Dropping a million records is not part of the measurement.
                    drop(allocator);
                }
                total
            });
        });
    }
    group.finish();
}

fn release_and_assign_at_fill_level(c: &mut Criterion) {
    let services: u64 = scaled(1 << 19);
    let mut group = c.benchmark_group("release_and_assign");
    for percent in [1u64, 50, 90] {
        let size = services * 100 / percent;
        let first = Ipv4Addr::new(10, 0, 0, 0);
        let last = Ipv4Addr::from(u32::from(first) + (size - 1) as u32);
        let mut allocator = allocator_with(&format!("{first}-{last}"));
        let mut churn = Churn::fill(&mut allocator, services);
        group.bench_function(BenchmarkId::from_parameter(format!("{percent}pct")), |b| {
            b.iter(|| churn.step(&mut allocator));
        });
    }
    group.finish();
}

criterion_group!(benches, fill_one_million, release_and_assign_at_fill_level);
criterion_main!(benches);
