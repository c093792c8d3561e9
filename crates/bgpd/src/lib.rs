//! ferrolb-bgpd: a small, strict BGP speaker for announcing prefixes.
//!
//! It owns the wire codec ([`wire`]), the sans-IO session state machine ([`fsm`]), the per-peer
//! Adj-RIB-Out ([`rib_out`]) and, with the default `runtime` feature, the tokio driver behind a
//! [`Speaker`] handle. It knows nothing of Kubernetes, pools or Services: callers hand it peers
//! and the routes each peer should have.
//!
//! The three cores are pure: they take inputs (bytes, events, time as a value) and return
//! outputs (messages to send, timers to arm), and they are built without tokio, sockets or a
//! clock when the `runtime` feature is off (`cargo build -p ferrolb-bgpd --no-default-features`),
//! so the compiler keeps them that way.
//!
//! ```text
//!  Speaker handle ──commands──► speaker task ──► one PeerTask per peer (session.rs)
//!   (set_peers, set_routes,        │                 ├─ reader: bytes → wire::decode → fsm
//!    drain, status watch)          │                 ├─ writer: control queue first, then
//!                                  │                 │          UPDATEs pulled from rib_out
//!                                  └─ listener ──────┘  (accepted connections, collisions)
//! ```

pub mod fsm;
mod peer;
pub mod rib_out;
pub mod wire;

#[cfg(feature = "runtime")]
mod session;
#[cfg(feature = "runtime")]
mod speaker;
#[cfg(feature = "runtime")]
mod transport;

pub use peer::{
    BGP_PORT, LastError, LastNotification, MessageCounters, PeerConfig, PeerConfigError, PeerStatus,
};
#[cfg(feature = "runtime")]
pub use speaker::{Speaker, SpeakerConfig, SpeakerError, SpeakerStatus};
