//! IP sharing: when two Services may hold the same address. This is the one place the rules live.
//!
//! A **sharing group** is the set of Services holding one address. A Service may join a group
//! only if, for every member (MetalLB's `checkSharing`, `sharingOK` and `BackendKey`, exactly):
//!
//! 1. both carry the same non-empty `allow-shared-ip` key;
//! 2. both have the same backend: both `externalTrafficPolicy: Cluster`, or both `Local` with
//!    identical pod selectors;
//! 3. their `(protocol, port)` sets do not overlap (TCP/53 and UDP/53 may share);
//! 4. the address's pool allows the joining Service (checked with the ordinary pool rules, as
//!    for any address: the members passed the same check when they joined).
//!
//! MetalLB's fifth rule (no L2Advertisement with serviceSelectors) is about announcing, and is
//! checked by the speaker's planner, not here.
//!
//! Owns: [`SharingTerms`], [`SharingRefusal`] (which rule failed, and against whom) and the
//! read-only [`SharingGroup`] view. Does not own who holds which address (the allocator does).

use std::collections::BTreeSet;
use std::net::IpAddr;

use thiserror::Error;

use crate::pool::PoolName;
use crate::service::{ServiceKey, ServicePort, ServiceRequest, TrafficPolicy};

/// What a Service that allows sharing brings to a shared address. A Service without a
/// sharing key has no terms: it never shares.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct SharingTerms {
    /// The non-empty `allow-shared-ip` key.
    pub key: String,
    /// The backend: the traffic policy and, for `Local`, the pod selector.
    pub traffic_policy: TrafficPolicy,
    /// The Service's ports, sorted, without duplicates.
    pub ports: Vec<ServicePort>,
}

impl SharingTerms {
    /// The terms of a request, or `None` if it has no sharing key.
    pub fn of(request: &ServiceRequest) -> Option<SharingTerms> {
        let key = request.effective_sharing_key()?;
        let ports: BTreeSet<ServicePort> = request.ports.iter().copied().collect();
        Some(SharingTerms {
            key: key.to_owned(),
            traffic_policy: request.traffic_policy.clone(),
            ports: ports.into_iter().collect(),
        })
    }

    /// The first port both use, if any. Both port lists are sorted.
    fn first_common_port(&self, other: &SharingTerms) -> Option<ServicePort> {
        let (mut mine, mut theirs) = (self.ports.iter().peekable(), other.ports.iter().peekable());
        while let (Some(&&a), Some(&&b)) = (mine.peek(), theirs.peek()) {
            match a.cmp(&b) {
                std::cmp::Ordering::Less => {
                    mine.next();
                }
                std::cmp::Ordering::Greater => {
                    theirs.next();
                }
                std::cmp::Ordering::Equal => return Some(a),
            }
        }
        None
    }
}

/// Why a Service may not share an address with a member of its sharing group. Each variant is
/// one rule of the module documentation, and names the member it failed against.
#[derive(Clone, Debug, PartialEq, Eq, Error)]
pub enum SharingRefusal {
    /// Rule 1: the member has no sharing key.
    #[error("rule 1 (same sharing key): {holder} holds the address and does not allow sharing")]
    HolderDoesNotShare {
        /// The member.
        holder: ServiceKey,
    },
    /// Rule 1: this Service has no sharing key.
    #[error(
        "rule 1 (same sharing key): {holder} holds the address and this Service does not allow sharing"
    )]
    RequesterDoesNotShare {
        /// The member.
        holder: ServiceKey,
    },
    /// Rule 1: the keys differ.
    #[error("rule 1 (same sharing key): key {requested:?} differs from key {held:?} of {holder}")]
    DifferentKey {
        /// The member.
        holder: ServiceKey,
        /// The member's key.
        held: String,
        /// This Service's key.
        requested: String,
    },
    /// Rule 2: the backends differ.
    #[error(
        "rule 2 (same backend): traffic policy {requested} differs from {held} of {holder} \
         (Local Services need identical selectors; Cluster and Local never share)"
    )]
    DifferentBackend {
        /// The member.
        holder: ServiceKey,
        /// The member's traffic policy.
        held: TrafficPolicy,
        /// This Service's traffic policy.
        requested: TrafficPolicy,
    },
    /// Rule 3: a port is used by both.
    #[error("rule 3 (no common port): {port} is already used by {holder}")]
    PortInUse {
        /// The member.
        holder: ServiceKey,
        /// The first common port.
        port: ServicePort,
    },
}

impl SharingRefusal {
    /// The member the rule failed against.
    pub fn holder(&self) -> &ServiceKey {
        match self {
            SharingRefusal::HolderDoesNotShare { holder }
            | SharingRefusal::RequesterDoesNotShare { holder }
            | SharingRefusal::DifferentKey { holder, .. }
            | SharingRefusal::DifferentBackend { holder, .. }
            | SharingRefusal::PortInUse { holder, .. } => holder,
        }
    }
}

/// Whether a Service with `requester` terms may hold an address together with `holder`.
/// Symmetric in outcome: if A may not join B, B may not join A.
pub(crate) fn check(
    requester: Option<&SharingTerms>,
    holder: &ServiceKey,
    holder_terms: Option<&SharingTerms>,
) -> Result<(), SharingRefusal> {
    let holder = || holder.clone();
    let Some(held) = holder_terms else {
        return Err(SharingRefusal::HolderDoesNotShare { holder: holder() });
    };
    let Some(requested) = requester else {
        return Err(SharingRefusal::RequesterDoesNotShare { holder: holder() });
    };
    if held.key != requested.key {
        return Err(SharingRefusal::DifferentKey {
            holder: holder(),
            held: held.key.clone(),
            requested: requested.key.clone(),
        });
    }
    if held.traffic_policy != requested.traffic_policy {
        return Err(SharingRefusal::DifferentBackend {
            holder: holder(),
            held: held.traffic_policy.clone(),
            requested: requested.traffic_policy.clone(),
        });
    }
    if let Some(port) = requested.first_common_port(held) {
        return Err(SharingRefusal::PortInUse {
            holder: holder(),
            port,
        });
    }
    Ok(())
}

/// Read-only view of the Services holding one address.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct SharingGroup {
    /// The shared address.
    pub address: IpAddr,
    /// The pool it belongs to, if any.
    pub pool: Option<PoolName>,
    /// The members, by Service key.
    pub members: Vec<SharingMember>,
}

/// One member of a [`SharingGroup`].
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct SharingMember {
    /// The Service.
    pub service: ServiceKey,
    /// Its terms, or `None` if it holds the address exclusively.
    pub terms: Option<SharingTerms>,
}
