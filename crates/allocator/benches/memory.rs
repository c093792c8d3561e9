//! Wall-clock, CPU time and memory of large fills, measured with a counting global allocator.
//!
//! `cargo bench -p ferrolb-allocator --bench memory` runs the full sizes (1M assignments into an
//! IPv4 /8 and 1M into an IPv6 /64, then a /12 filled to 90% and churned) and prints the table
//! that `docs/allocator.md` quotes. Run any other way (as `cargo test --all-targets` does), it
//! runs the same scenarios at 1/100 of the size, as a smoke test. For profiling,
//! `FERROLB_BENCH_DIVISOR=n` divides the sizes by `n` and `FERROLB_BENCH_SKIP_FILLS=1` skips the
//! two 1M fills.
//!
//! Criterion's statistics are in `benches/fill.rs`; this binary exists because bytes per
//! assignment need a global allocator of its own, and because thread CPU time, unlike wall
//! time, does not depend on what else runs on a shared machine.

// A counting global allocator is the one place in the workspace outside the socket code that
// needs `unsafe`: it forwards every call to the system allocator unchanged.
#![allow(unsafe_code)]

mod common;

use std::alloc::{GlobalAlloc, Layout, System};
use std::hint::black_box;
use std::sync::Arc;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::time::{Duration, Instant};

use ferrolb_allocator::{Allocator, Family};

use common::{Churn, allocator_with, request};

/// Counts live heap bytes.
struct Counting;

static LIVE: AtomicUsize = AtomicUsize::new(0);

// SAFETY: forwards every call to the system allocator unchanged; only counts sizes.
unsafe impl GlobalAlloc for Counting {
    unsafe fn alloc(&self, layout: Layout) -> *mut u8 {
        LIVE.fetch_add(layout.size(), Ordering::Relaxed);
        // SAFETY: the caller upholds `GlobalAlloc::alloc`'s contract, which is System's.
        unsafe { System.alloc(layout) }
    }

    unsafe fn dealloc(&self, ptr: *mut u8, layout: Layout) {
        LIVE.fetch_sub(layout.size(), Ordering::Relaxed);
        // SAFETY: `ptr` was allocated by `System` through us with this layout.
        unsafe { System.dealloc(ptr, layout) }
    }

    unsafe fn realloc(&self, ptr: *mut u8, layout: Layout, new_size: usize) -> *mut u8 {
        LIVE.fetch_add(new_size, Ordering::Relaxed);
        LIVE.fetch_sub(layout.size(), Ordering::Relaxed);
        // SAFETY: `ptr` was allocated by `System` through us with `layout`.
        unsafe { System.realloc(ptr, layout, new_size) }
    }
}

#[global_allocator]
static GLOBAL: Counting = Counting;

fn live_bytes() -> usize {
    LIVE.load(Ordering::Relaxed)
}

/// CPU time used by this thread: unaffected by other processes competing for the cores.
fn thread_cpu_time() -> Duration {
    let mut now = libc::timespec {
        tv_sec: 0,
        tv_nsec: 0,
    };
    // SAFETY: `now` is a valid, writable timespec; the clock id is a constant Linux supports.
    let status = unsafe { libc::clock_gettime(libc::CLOCK_THREAD_CPUTIME_ID, &mut now) };
    if status != 0 {
        return Duration::ZERO;
    }
    Duration::new(now.tv_sec as u64, now.tv_nsec as u32)
}

/// Wall and CPU time of one timed stretch.
#[derive(Clone, Copy, Default)]
struct Timing {
    wall: Duration,
    cpu: Duration,
}

impl Timing {
    fn measure(work: impl FnOnce()) -> Timing {
        let (wall, cpu) = (Instant::now(), thread_cpu_time());
        work();
        Timing {
            wall: wall.elapsed(),
            cpu: thread_cpu_time() - cpu,
        }
    }

    fn add(self, other: Timing) -> Timing {
        Timing {
            wall: self.wall + other.wall,
            cpu: self.cpu + other.cpu,
        }
    }

    fn per_op_ns(self, operations: u64) -> (f64, f64) {
        let per = |d: Duration| d.as_nanos() as f64 / operations.max(1) as f64;
        (per(self.wall), per(self.cpu))
    }
}

struct Fill {
    total: Timing,
    /// Per tenth of the fill: (wall, CPU) nanoseconds per assignment.
    per_tenth: Vec<(f64, f64)>,
    bytes_per_assignment: f64,
}

/// Assigns `count` new Services, timing each tenth.
fn fill(allocator: &mut Allocator, count: u64, family: Family) -> Fill {
    let namespace: Arc<str> = Arc::from("bench");
    let before = live_bytes();
    let tenth = (count / 10).max(1);
    let mut per_tenth = Vec::new();
    let mut total = Timing::default();
    let mut start = 0;
    while start < count {
        let end = (start + tenth).min(count);
        let timing = Timing::measure(|| {
            for index in start..end {
                black_box(
                    allocator
                        .assign(&request(&namespace, index, family))
                        .is_ok(),
                );
            }
        });
        per_tenth.push(timing.per_op_ns(end - start));
        total = total.add(timing);
        start = end;
    }
    Fill {
        total,
        per_tenth,
        bytes_per_assignment: (live_bytes() - before) as f64 / count as f64,
    }
}

fn tenths(fill: &Fill, pick: impl Fn(&(f64, f64)) -> f64) -> String {
    let values: Vec<String> = fill
        .per_tenth
        .iter()
        .map(|t| format!("{:.0}", pick(t)))
        .collect();
    values.join(" ")
}

fn main() {
    let full = std::env::args().any(|arg| arg == "--bench");
    let divisor: u64 = match std::env::var("FERROLB_BENCH_DIVISOR")
        .ok()
        .and_then(|d| d.parse().ok())
    {
        Some(divisor) => divisor,
        None if full => 1,
        None => 100,
    };
    let count = 1_000_000 / divisor;
    println!("ferrolb-allocator fills (sizes divided by {divisor})");
    println!();
    println!(
        "| scenario | assignments | wall | CPU | ns/assign, CPU, per tenth of the fill | bytes/assignment |"
    );
    println!("|---|---|---|---|---|---|");
    // The machine is shared: each fill runs `ROUNDS` times and the fastest round is reported
    // (the usual way to measure the code rather than the neighbours).
    const ROUNDS: usize = 3;
    let mut both = Timing::default();
    // FERROLB_BENCH_SKIP_FILLS skips the two 1M fills (to profile the churn alone).
    let fills: &[(&str, &str, Family)] = if std::env::var_os("FERROLB_BENCH_SKIP_FILLS").is_some() {
        &[]
    } else {
        &[
            ("IPv4 /8", "10.0.0.0/8", Family::V4),
            ("IPv6 /64", "2001:db8::/64", Family::V6),
        ]
    };
    for &(name, range, family) in fills {
        let mut best: Option<Fill> = None;
        for _ in 0..ROUNDS {
            let mut allocator = allocator_with(range);
            let result = fill(&mut allocator, count, family);
            drop(allocator);
            if best
                .as_ref()
                .is_none_or(|b| result.total.wall < b.total.wall)
            {
                best = Some(result);
            }
        }
        let Some(result) = best else { continue };
        both = both.add(result.total);
        println!(
            "| {name} | {count} | {:.3} s | {:.3} s | {} | {:.0} |",
            result.total.wall.as_secs_f64(),
            result.total.cpu.as_secs_f64(),
            tenths(&result, |t| t.1),
            result.bytes_per_assignment
        );
    }
    println!(
        "| both | {} | {:.3} s | {:.3} s | | |",
        2 * count,
        both.wall.as_secs_f64(),
        both.cpu.as_secs_f64()
    );
    println!();

    // Flatness: a /12 (1,048,576 addresses) filled to 90%, then churned at that level.
    let capacity: u64 = (1 << 20) / divisor;
    let target = capacity * 9 / 10;
    let first = std::net::Ipv4Addr::new(10, 0, 0, 0);
    let last = std::net::Ipv4Addr::from(u32::from(first) + capacity as u32 - 1);
    let mut allocator = allocator_with(&format!("{first}-{last}"));
    let filling = fill(&mut allocator, target, Family::V4);
    println!(
        "/12 filled 0 → 90% ({target} assignments), ns/assign per tenth: wall {} | CPU {}",
        tenths(&filling, |t| t.0),
        tenths(&filling, |t| t.1)
    );
    let namespace: Arc<str> = Arc::from("bench");
    // Re-create the churn driver over the Services `fill` created (svc-0 .. svc-{target-1}).
    let mut churn = Churn {
        namespace,
        live: (0..target).collect(),
        next: target,
        sequence: common::Sequence(0x9e37_79b9_7f4a_7c15),
    };
    let pairs = 100_000 / divisor;
    let timing = Timing::measure(|| {
        for _ in 0..pairs {
            churn.step(&mut allocator);
        }
    });
    let (wall, cpu) = timing.per_op_ns(pairs);
    println!("churn at 90% full: {wall:.0} ns wall, {cpu:.0} ns CPU per release+assign pair");
    let stats = allocator.pool_stats("bench").map(|s| s.ipv4);
    println!("pool after churn: {stats:?}");
    println!(
        "live heap: {:.1} MiB",
        live_bytes() as f64 / (1024.0 * 1024.0)
    );
}
