//! What the allocator answers: assignments, conflicts, changes, and typed failures.
//!
//! Owns the public result types of [`crate::Allocator`]'s operations. Every type here is plain
//! data that the controller turns into `Service.status`, Events and metrics; none of them is
//! computed here.

use std::net::IpAddr;

use thiserror::Error;

use crate::address::Family;
use crate::pool::{PoolName, PoolRefusal};
use crate::service::{RequestError, ServiceKey};
use crate::sharing::SharingRefusal;

/// The addresses one Service holds.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Assignment {
    /// The Service.
    pub service: ServiceKey,
    /// The pool of its first address, or `None` if that address is in no pool any more.
    pub pool: Option<PoolName>,
    /// One address per family, the Service's primary family first (the order for
    /// `status.loadBalancer.ingress`).
    pub addresses: Vec<IpAddr>,
    /// Addresses kept although the current configuration would not hand them out, and why.
    /// Empty when everything is in order.
    pub conflicts: Vec<Conflict>,
}

/// An address a Service keeps although the current configuration does not allow it.
/// ferrolb never moves such an address on its own: it reports it.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Conflict {
    /// The address.
    pub address: IpAddr,
    /// Why it would not be handed out today.
    pub reason: ConflictReason,
}

/// Why a held address conflicts with the configuration.
#[derive(Clone, Debug, PartialEq, Eq, Error)]
pub enum ConflictReason {
    /// No pool contains the address (the pool was deleted or shrunk).
    #[error("the address is in no pool")]
    NotInAnyPool,
    /// The pool contains the address but avoids `.0`/`.255`.
    #[error("pool {pool} avoids .0 and .255 addresses (avoidBuggyIPs)")]
    AvoidedBuggyAddress {
        /// The pool.
        pool: PoolName,
    },
    /// The pool's serviceAllocation no longer serves the Service.
    #[error("pool {pool} does not serve this Service: {refusal}")]
    PoolRefuses {
        /// The pool.
        pool: PoolName,
        /// Why.
        refusal: PoolRefusal,
    },
    /// The Service asks for a pool by annotation, and the address is in another one (the
    /// address moved to another pool by a configuration change).
    #[error("the Service asks for pool {requested}, the address is in pool {actual}")]
    NotInRequestedPool {
        /// The pool asked for.
        requested: PoolName,
        /// The pool holding the address.
        actual: PoolName,
    },
    /// The Service's two addresses are in different pools.
    #[error("the Service's other address {other} is in another pool")]
    SplitAcrossPools {
        /// The Service's other address.
        other: IpAddr,
    },
    /// Another holder of the address may not share it with this Service.
    #[error("{0}")]
    Sharing(SharingRefusal),
}

/// How one Service's assignment changed.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct AssignmentChange {
    /// The Service.
    pub service: ServiceKey,
    /// Before; `None` if it held nothing.
    pub before: Option<Assignment>,
    /// After; `None` if it holds nothing now.
    pub after: Option<Assignment>,
}

/// A successful [`crate::Allocator::assign`].
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Assigned {
    /// The Service's assignment.
    pub assignment: Assignment,
    /// Other Services whose assignment changed as a consequence (waiting Services served by
    /// addresses this one gave up, conflicts appearing or clearing on shared addresses).
    pub knock_on: Vec<AssignmentChange>,
}

/// A failed [`crate::Allocator::assign`].
#[derive(Clone, Debug, PartialEq, Eq, Error)]
#[error("cannot allocate for {service}: {failure}")]
pub struct AllocationError {
    /// The Service.
    pub service: ServiceKey,
    /// Why.
    pub failure: AllocationFailure,
    /// What the Service still holds: a Service whose changed request cannot be met keeps its
    /// addresses (MetalLB clears them first).
    pub kept: Option<Assignment>,
    /// Other Services whose assignment changed as a consequence.
    pub knock_on: Vec<AssignmentChange>,
}

/// Why a request could not be met. Until it can, the Service waits; see
/// [`crate::Allocator::pending`].
#[derive(Clone, Debug, PartialEq, Eq, Error)]
pub enum AllocationFailure {
    /// The request is wrong in itself.
    #[error("{0}")]
    Request(RequestError),
    /// The requested pool does not exist.
    #[error("pool {pool} does not exist")]
    UnknownPool {
        /// The name asked for.
        pool: String,
    },
    /// The requested pool (or the pool of a requested address) does not serve the Service.
    #[error("pool {pool} does not serve this Service: {refusal}")]
    PoolRefuses {
        /// The pool.
        pool: PoolName,
        /// Why.
        refusal: PoolRefusal,
    },
    /// No pool with autoAssign serves the Service.
    #[error("no pool with autoAssign serves this Service")]
    NoEligiblePool,
    /// The pools that serve the Service have no addresses of the families it needs.
    #[error("none of the pools [{}] has {} addresses", list(.pools), list(.families))]
    NoPoolHasFamily {
        /// The families needed.
        families: Vec<Family>,
        /// The pools tried.
        pools: Vec<PoolName>,
    },
    /// Every pool that serves the Service is full for the families it needs.
    #[error("no available {} address in pools [{}]", list(.families), list(.pools))]
    Exhausted {
        /// The families needed.
        families: Vec<Family>,
        /// The pools tried, in the order they were tried.
        pools: Vec<PoolName>,
    },
    /// A requested address is in no pool.
    #[error("requested address {address} is in no pool")]
    RequestedAddressNotInPool {
        /// The address.
        address: IpAddr,
    },
    /// A requested address is an `.0`/`.255` its pool avoids.
    #[error("requested address {address} is avoided by pool {pool} (avoidBuggyIPs)")]
    RequestedAddressAvoided {
        /// The address.
        address: IpAddr,
        /// The pool.
        pool: PoolName,
    },
    /// The two requested addresses are in different pools.
    #[error(
        "requested addresses {first} (pool {first_pool}) and {second} (pool {second_pool}) are in different pools"
    )]
    RequestedAddressesInDifferentPools {
        /// The first address.
        first: IpAddr,
        /// Its pool.
        first_pool: PoolName,
        /// The second address.
        second: IpAddr,
        /// Its pool.
        second_pool: PoolName,
    },
    /// A requested address is not in the requested pool.
    #[error(
        "requested address {address} is in pool {actual}, not in the requested pool {requested}"
    )]
    RequestedAddressOutsideRequestedPool {
        /// The address.
        address: IpAddr,
        /// The pool asked for.
        requested: String,
        /// The address's pool.
        actual: PoolName,
    },
    /// A requested address is held by a Service it may not be shared with.
    #[error("requested address {address} cannot be shared: {refusal}")]
    Sharing {
        /// The address.
        address: IpAddr,
        /// The rule that failed, and against whom.
        refusal: SharingRefusal,
    },
}

/// `a, b, c` for error messages.
fn list<T: std::fmt::Display>(items: &[T]) -> String {
    items
        .iter()
        .map(ToString::to_string)
        .collect::<Vec<_>>()
        .join(", ")
}

/// A successful [`crate::Allocator::release`].
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Released {
    /// The Service.
    pub service: ServiceKey,
    /// The addresses it held.
    pub addresses: Vec<IpAddr>,
    /// Other Services whose assignment changed as a consequence: waiting Services that got the
    /// freed addresses, conflicts cleared on shared addresses.
    pub knock_on: Vec<AssignmentChange>,
}

/// A failed [`crate::Allocator::release`].
#[derive(Clone, Debug, PartialEq, Eq, Error)]
pub enum ReleaseError {
    /// The allocator neither assigned nor is waiting for this Service.
    #[error("{service} holds no address and is not waiting for one")]
    UnknownService {
        /// The Service.
        service: ServiceKey,
    },
}

/// The result of [`crate::Allocator::restore`].
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct RestoreReport {
    /// Services that hold addresses, by key.
    pub assigned: Vec<Assignment>,
    /// Services whose request could not be met, by key (with what they kept).
    pub failed: Vec<AllocationError>,
    /// Services given more than once; only their first request was used.
    pub duplicates: Vec<ServiceKey>,
    /// Services outside the batch whose assignment changed.
    pub knock_on: Vec<AssignmentChange>,
}

/// A Service waiting for a request that cannot be met yet.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct PendingService {
    /// The Service.
    pub service: ServiceKey,
    /// Why it waits.
    pub failure: AllocationFailure,
}
