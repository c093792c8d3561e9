//! ferrolb-speaker: the node agent. It reads the configuration (a folder of YAML, or the
//! cluster), decides what this node announces to which peer, and drives the BGP speaker and
//! the local address bindings. Wire formats are not its business (see `ferrolb-bgpd`).

pub mod agent;
pub mod allocation;
pub mod metrics;
pub mod peers;
pub mod planner;
pub mod source;
pub mod status_api;
pub mod vip_binding;
