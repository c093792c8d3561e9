//! ferrolb-bgpd: a small, strict BGP speaker for announcing prefixes.
//!
//! It owns the wire codec ([`wire`]), the sans-IO session state machine, the per-peer
//! Adj-RIB-Out and the tokio driver behind a [`Speaker`] handle. It knows nothing of Kubernetes,
//! pools or Services: callers hand it peers and the routes each peer should have.

pub mod fsm;
pub mod peer;
pub mod rib_out;
mod session;
pub mod speaker;
pub mod transport;
pub mod wire;

pub use fsm::{Backoff, GracefulRestartConfig, State};
pub use peer::{PeerConfig, PeerStatus};
pub use rib_out::RouteAttributes;
pub use speaker::{Speaker, SpeakerConfig, SpeakerError, SpeakerStatus};
