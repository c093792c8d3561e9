//! The allocator's behaviour, as specs. One binary for all of them keeps the test build fast.

// Helpers outside #[test] functions panic on purpose: a panic is a failed spec.
#![allow(clippy::unwrap_used, clippy::expect_used)]

mod differences;
mod metallb_rules;
mod pending;
mod pool_changes;
mod restore;
mod support;
