//! Shared test harness.

#![allow(dead_code)]

pub mod sim;

/// Feeds outputs a test obtained by calling a node directly into the simulated segment.
pub fn sim_feed(sim: &mut sim::Sim, node: usize, outputs: Vec<ferrolb_l2::node::Output>) {
    sim.feed(node, outputs);
}
