//! ferrolb-l2 (being assembled).
pub mod config;
pub mod election;
pub mod membership;
pub mod node;
pub mod preflight;
pub mod responder;
pub mod status;
pub mod wire;
