//! ferrolb-speaker: the node agent. It reads the configuration (a folder of YAML, or the
//! cluster), decides what this node announces to which peer, and drives the BGP speaker and
//! the local address bindings. Wire formats are not its business (see `ferrolb-bgpd`).
//!
//! The agent is split the way data flows:
//! - [`source`] yields consistent snapshots of the inputs (configuration, Services, endpoints);
//! - [`desired`] is the pure step from a snapshot to what this node should do: addresses
//!   ([`addressing`]), the plan ([`plan`]), the BGP sessions ([`peers`]);
//! - [`agent`] is the shell that applies it: the BGP speaker, the VIP bindings, the status.

pub mod addressing;
pub mod agent;
pub mod desired;
pub mod l2_shell;
pub mod metrics;
pub mod peers;
pub mod plan;
pub mod source;
pub mod status_api;
pub mod vip_binding;
