//! What both benchmarks build: the benchmark pool and the request every Service makes.

// Each benchmark binary uses a different part of this module.
#![allow(dead_code)]

use std::sync::Arc;

use ferrolb_allocator::{
    Allocator, Family, FamilyPolicy, PoolSpec, ServiceKey, ServicePort, ServiceRequest,
};

/// A realistic plain request: one TCP port, no sharing, no annotation.
pub fn request(namespace: &Arc<str>, index: u64, family: Family) -> ServiceRequest {
    let mut request = ServiceRequest::new(
        ServiceKey::new(namespace.clone(), format!("svc-{index}")),
        FamilyPolicy::SingleStack(family),
    );
    request.ports.push(ServicePort::tcp(80));
    request
}

pub fn service(namespace: &Arc<str>, index: u64) -> ServiceKey {
    ServiceKey::new(namespace.clone(), format!("svc-{index}"))
}

/// An allocator with one pool named "bench".
pub fn allocator_with(range: &str) -> Allocator {
    let mut allocator = Allocator::new();
    let range = range
        .parse()
        .unwrap_or_else(|error| panic!("bench range {range}: {error}"));
    allocator
        .set_pools(vec![PoolSpec::new("bench", vec![range])])
        .unwrap_or_else(|error| panic!("bench pool: {error}"));
    allocator
}

/// A small deterministic generator (xorshift64*), so that runs are comparable.
pub struct Sequence(pub u64);

impl Sequence {
    pub fn next_below(&mut self, bound: u64) -> u64 {
        self.0 ^= self.0 >> 12;
        self.0 ^= self.0 << 25;
        self.0 ^= self.0 >> 27;
        self.0.wrapping_mul(0x2545_f491_4f6c_dd1d) % bound
    }
}

/// Services held at a steady fill: release a random one, assign a new one.
pub struct Churn {
    pub namespace: Arc<str>,
    pub live: Vec<u64>,
    pub next: u64,
    pub sequence: Sequence,
}

impl Churn {
    /// Fills `allocator` with `count` IPv4 Services.
    pub fn fill(allocator: &mut Allocator, count: u64) -> Churn {
        let namespace: Arc<str> = Arc::from("bench");
        for index in 0..count {
            if let Err(error) = allocator.assign(&request(&namespace, index, Family::V4)) {
                panic!("fill: {error}");
            }
        }
        Churn {
            namespace,
            live: (0..count).collect(),
            next: count,
            sequence: Sequence(0x9e37_79b9_7f4a_7c15),
        }
    }

    /// One release and one assignment; the fill level stays the same.
    pub fn step(&mut self, allocator: &mut Allocator) {
        if self.live.is_empty() {
            let assigned = allocator.assign(&request(&self.namespace, self.next, Family::V4));
            std::hint::black_box(assigned.is_ok());
            allocator.release(&service(&self.namespace, self.next)).ok();
            self.next += 1;
            return;
        }
        let slot = self.sequence.next_below(self.live.len() as u64) as usize;
        let released = allocator.release(&service(&self.namespace, self.live[slot]));
        std::hint::black_box(released.is_ok());
        let assigned = allocator.assign(&request(&self.namespace, self.next, Family::V4));
        std::hint::black_box(assigned.is_ok());
        self.live[slot] = self.next;
        self.next += 1;
    }
}
