//! ferrolb-bfd: Bidirectional Forwarding Detection for ferrolb's BGP sessions.
//!
//! It owns the BFD Control packet codec ([`packet`], RFC 5880 §4), the sans-IO session state
//! machine ([`session`], RFC 5880 §6: asynchronous mode, Poll/Final timer changes, passive
//! mode), the UDP transport (RFC 5881 single hop on port 3784, RFC 5883 multihop on port
//! 4784, IPv4 and IPv6) and the tokio [`Bfd`] handle that runs many sessions and reports their
//! state. It knows nothing of BGP or Kubernetes: callers hand it [`SessionConfig`]s and react
//! to [`StateEvent`]s.
//!
//! Not supported: the echo function (a configuration asking for it is refused), Demand mode
//! (never requested; a peer's request is obeyed as RFC 5880 requires) and authentication
//! (authenticated packets are dropped and counted). `docs/bfd.md` explains why.

pub mod config;
pub mod daemon;
pub mod packet;
pub mod session;
mod socket;

pub use config::{ConfigError, Profile, SessionConfig, SessionKey};
pub use daemon::{Bfd, BfdError, BfdStatus, DaemonCounters, StateEvent};
pub use packet::{ControlPacket, DecodeError, Diagnostic, DropReason, State};
pub use session::{NegotiatedTimers, SessionCounters, SessionStatus, StateChange};
