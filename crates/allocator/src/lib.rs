//! ferrolb's IP address management: pure, deterministic, O(log n).
//!
//! This crate decides which `LoadBalancer` Service gets which address. It owns pools (CIDRs and
//! ranges, IPv4 and IPv6, any size), the order in which pools are tried, MetalLB's sharing
//! rules (see [`sharing`]), dual-stack, restoring state from Services' status after a restart,
//! the Services waiting for addresses, and per-pool statistics. It does no I/O, knows nothing
//! of Kubernetes or BGP, and has no clock: the controller converts its watched objects into
//! [`PoolSpec`]s and [`ServiceRequest`]s and writes the answers back as status, Events and
//! metrics; with the `model` feature, `PoolSpec::from_model` and `ServiceRequest::from_view`
//! do that conversion in one place.
//!
//! ```
//! use ferrolb_allocator::{Allocator, Family, FamilyPolicy, PoolSpec, ServiceKey, ServiceRequest};
//!
//! let mut allocator = Allocator::new();
//! allocator
//!     .set_pools(vec![PoolSpec::new("public", vec!["192.0.2.0/24".parse().unwrap()])])
//!     .unwrap();
//! let request = ServiceRequest::new(
//!     ServiceKey::new("shop", "web"),
//!     FamilyPolicy::SingleStack(Family::V4),
//! );
//! let assigned = allocator.assign(&request).unwrap();
//! assert_eq!(assigned.assignment.addresses, vec!["192.0.2.0".parse::<std::net::IpAddr>().unwrap()]);
//! ```
//!
//! The rules, the deliberate differences from MetalLB and the measured costs are in
//! `docs/allocator.md`.

mod address;
mod allocator;
#[cfg(feature = "model")]
mod from_model;
mod holders;
mod occupancy;
mod outcome;
mod pool;
mod selector;
mod service;
pub mod sharing;

pub use address::{AddressRange, AddressRangeParseError, Family};
pub use allocator::Allocator;
pub use outcome::{
    AllocationError, AllocationFailure, Assigned, Assignment, AssignmentChange, Conflict,
    ConflictReason, PendingService, ReleaseError, Released, RestoreReport,
};
pub use pool::{
    FamilyStats, PoolConfigError, PoolName, PoolRefusal, PoolSpec, PoolStats, ServiceAllocation,
};
pub use selector::{LabelExpression, LabelOperator, LabelSelector, Labels};
pub use service::{
    FamilyPolicy, Protocol, RequestError, ServiceKey, ServicePort, ServiceRequest, TrafficPolicy,
};
pub use sharing::{SharingGroup, SharingMember, SharingRefusal, SharingTerms};
