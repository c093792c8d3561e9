//! # ferrolb-l2: a layer-2 (ARP/NDP) VIP announcer
//!
//! Where no router speaks BGP, a LoadBalancer VIP is reachable only if one node on the link
//! answers ARP (IPv4) and Neighbor Discovery (IPv6) for it. This crate makes the nodes of one
//! L2 segment agree, within a few hundred milliseconds of a failure, on exactly one owner per
//! VIP group, and makes that owner answer correctly. It stands alone: no Kubernetes, no BGP,
//! no netlink. The caller (ferrolb's node agent, or any program) says which VIP groups this
//! node may own and what its interfaces look like; the crate does the rest.
//!
//! ```text
//!  caller ──set_interfaces / set_eligible / drain──► L2Announcer (announcer: tokio shell)
//!                                                        │
//!            AF_PACKET + cBPF (socket) ◄── frames ──► L2Node (node: sans-IO core)
//!                                                        ├─ membership: heartbeat liveness
//!                                                        ├─ election: sticky bounded-load HRW
//!                                                        └─ responder: ARP/NDP answers, GARP bursts
//!  caller ◄──────────── watch<L2Status> (owners, reasons, metrics, conflicts, preflight)
//! ```
//!
//! - [`wire`]: strict ARP, NS/NA and heartbeat codec (HMAC-SHA256 authenticated).
//! - [`membership`]: who is alive, from heartbeats every 100 ms (dead after 3 misses; a
//!   returning node is held for 2 s before it counts again).
//! - [`election`]: which node owns each group: sticky claims fenced by epochs, bounded-load
//!   rendezvous hashing for orphans, planned and rate-limited hand-offs.
//! - [`responder`]: what to answer (NA with S=1 and O=1, sourced from the VIP; unicast NS;
//!   DAD) and when to announce (a burst at 0, 50, 250 ms, 1, 2, 4 s).
//! - [`node`]: the state machine tying these together, driven with the current time.
//! - [`preflight`]: warnings when the kernel would answer too, or no client would ask.
//! - [`socket`] and [`announcer`]: the only I/O.
//!
//! The protocol, its timers and guarantees are described in `docs/l2.md` of the repository.
//!
//! ```no_run
//! use ferrolb_l2::{InterfaceFacts, L2Announcer, L2Config, VipGroup};
//! # async fn run() -> Result<(), ferrolb_l2::L2Error> {
//! let announcer = L2Announcer::start(L2Config::new("node-1", "lab", vec![7; 32])).await?;
//! announcer
//!     .set_interfaces(vec![InterfaceFacts {
//!         name: "eth0".into(),
//!         ifindex: 2,
//!         mac: "02:00:00:00:00:01".parse().unwrap(),
//!         carrier_up: true,
//!         subnets: vec!["192.0.2.0/24".parse().unwrap()],
//!     }])
//!     .await?;
//! let group = VipGroup::new(["192.0.2.10".parse().unwrap()], "eth0").unwrap();
//! announcer.set_eligible(vec![group]).await?;
//! let owners = announcer.status().borrow().owned();
//! # let _ = owners; Ok(()) }
//! ```

#![deny(unsafe_code)]

pub mod announcer;
pub mod config;
pub mod election;
pub mod membership;
pub mod node;
pub mod preflight;
pub mod responder;
pub mod socket;
pub mod status;
pub mod wire;

pub use announcer::{DrainReport, L2Announcer, L2Error};
pub use config::{
    AnnounceConfig, ConfigError, GroupError, InterfaceFacts, L2Config, RebalanceConfig, Timers,
    VipGroup,
};
pub use election::{Ineligible, NotOwnerReason};
pub use preflight::PreflightWarning;
pub use status::{
    ConflictRecord, Counters, DurationHistogram, GroupStatus, InterfaceStatus, L2Status,
    MemberLiveness, MemberStatus, NodePhase, OwnerReason,
};
pub use wire::MacAddr;
