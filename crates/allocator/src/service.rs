//! The allocator's view of a Service: who it is and what it asks for.
//!
//! Owns: [`ServiceKey`], [`ServiceRequest`] and its parts (family policy, traffic policy,
//! ports), and the structural checks on a request ([`RequestError`]). Does not know pools or
//! how addresses are chosen. The controller builds a [`ServiceRequest`] from a Kubernetes
//! Service (annotations, `spec.loadBalancerIP`, `status.loadBalancer.ingress`) in a few lines.

use std::fmt;
use std::hash::{BuildHasher, Hash, Hasher, RandomState};
use std::net::IpAddr;
use std::sync::{Arc, OnceLock};

use thiserror::Error;

use crate::address::Family;
use crate::selector::Labels;

/// A Service's identity: namespace and name.
///
/// Two words wide and cheap to clone (one reference count), because the allocator stores it
/// once per held address. Cheap to hash: the hash is computed once, with a per-process random
/// key (as std's `HashMap` does, so crafted names cannot degrade lookups), kept inline so that
/// lookups and rehashes never follow the pointer. Ordering and equality are by namespace, then
/// name; the hash never decides an order.
#[derive(Clone)]
pub struct ServiceKey {
    hash: u64,
    parts: Arc<KeyParts>,
}

struct KeyParts {
    namespace: Arc<str>,
    name: Box<str>,
}

/// The per-process hashing key for [`ServiceKey`].
fn hash_key() -> &'static RandomState {
    static KEY: OnceLock<RandomState> = OnceLock::new();
    KEY.get_or_init(RandomState::new)
}

impl ServiceKey {
    /// The Service `namespace/name`. Passing the same `Arc<str>` namespace for many Services
    /// stores it once.
    pub fn new(namespace: impl Into<Arc<str>>, name: impl Into<String>) -> ServiceKey {
        let namespace: Arc<str> = namespace.into();
        let name = name.into().into_boxed_str();
        let hash = hash_key().hash_one((&*namespace, &*name));
        ServiceKey {
            hash,
            parts: Arc::new(KeyParts { namespace, name }),
        }
    }

    /// The namespace.
    pub fn namespace(&self) -> &str {
        &self.parts.namespace
    }

    /// The name.
    pub fn name(&self) -> &str {
        &self.parts.name
    }
}

impl PartialEq for ServiceKey {
    fn eq(&self, other: &Self) -> bool {
        self.hash == other.hash
            && (Arc::ptr_eq(&self.parts, &other.parts)
                || (self.parts.namespace == other.parts.namespace
                    && self.parts.name == other.parts.name))
    }
}

impl Eq for ServiceKey {}

impl PartialOrd for ServiceKey {
    fn partial_cmp(&self, other: &Self) -> Option<std::cmp::Ordering> {
        Some(self.cmp(other))
    }
}

impl Ord for ServiceKey {
    fn cmp(&self, other: &Self) -> std::cmp::Ordering {
        (self.namespace(), self.name()).cmp(&(other.namespace(), other.name()))
    }
}

impl Hash for ServiceKey {
    fn hash<H: Hasher>(&self, state: &mut H) {
        state.write_u64(self.hash);
    }
}

/// Hashes a [`ServiceKey`] by its precomputed hash, for the allocator's maps.
#[derive(Clone, Copy, Debug, Default)]
pub(crate) struct PrecomputedHash;

/// The hasher behind [`PrecomputedHash`]: passes the one `u64` written through.
#[derive(Clone, Copy, Debug, Default)]
pub(crate) struct PassThroughHasher(u64);

impl Hasher for PassThroughHasher {
    fn finish(&self) -> u64 {
        self.0
    }

    fn write(&mut self, bytes: &[u8]) {
        // Only ServiceKey is hashed with this hasher, and it writes one u64; fold anything
        // else in rather than drop it.
        for &byte in bytes {
            self.0 = self.0.rotate_left(8) ^ u64::from(byte);
        }
    }

    fn write_u64(&mut self, value: u64) {
        self.0 ^= value;
    }
}

impl BuildHasher for PrecomputedHash {
    type Hasher = PassThroughHasher;

    fn build_hasher(&self) -> PassThroughHasher {
        PassThroughHasher(0)
    }
}

impl fmt::Debug for ServiceKey {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "ServiceKey({self})")
    }
}

impl fmt::Display for ServiceKey {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}/{}", self.namespace(), self.name())
    }
}

/// A transport protocol of a Service port.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub enum Protocol {
    /// TCP.
    Tcp,
    /// UDP.
    Udp,
    /// SCTP.
    Sctp,
}

/// One `(protocol, port)` of `spec.ports`.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct ServicePort {
    /// The protocol.
    pub protocol: Protocol,
    /// The port.
    pub port: u16,
}

impl ServicePort {
    /// A TCP port.
    pub fn tcp(port: u16) -> ServicePort {
        ServicePort {
            protocol: Protocol::Tcp,
            port,
        }
    }

    /// A UDP port.
    pub fn udp(port: u16) -> ServicePort {
        ServicePort {
            protocol: Protocol::Udp,
            port,
        }
    }
}

impl fmt::Display for ServicePort {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let protocol = match self.protocol {
            Protocol::Tcp => "TCP",
            Protocol::Udp => "UDP",
            Protocol::Sctp => "SCTP",
        };
        write!(f, "{protocol}/{}", self.port)
    }
}

/// `spec.externalTrafficPolicy`, with the pod selector that matters for sharing when it is
/// `Local`. It is the sharing rules' "backend key": two Services may share an address only if
/// their traffic policies are equal.
#[derive(Clone, Debug, Default, PartialEq, Eq, Hash)]
pub enum TrafficPolicy {
    /// `Cluster`: any node can forward to any endpoint.
    #[default]
    Cluster,
    /// `Local`: only nodes with a local endpoint serve; `selector` is `spec.selector`.
    Local {
        /// The Service's pod selector.
        selector: Labels,
    },
}

impl fmt::Display for TrafficPolicy {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            TrafficPolicy::Cluster => f.write_str("Cluster"),
            TrafficPolicy::Local { selector } => {
                f.write_str("Local{")?;
                for (i, (key, value)) in selector.iter().enumerate() {
                    if i > 0 {
                        f.write_str(",")?;
                    }
                    write!(f, "{key}={value}")?;
                }
                f.write_str("}")
            }
        }
    }
}

/// Which families a Service wants addresses of (`spec.ipFamilyPolicy` with `spec.ipFamilies`).
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum FamilyPolicy {
    /// One address of this family.
    SingleStack(Family),
    /// One address per family if one pool can give both, else one of `primary`, else one of
    /// the other family.
    PreferDualStack {
        /// `spec.ipFamilies[0]`.
        primary: Family,
    },
    /// One address per family, both from the same pool.
    RequireDualStack {
        /// `spec.ipFamilies[0]`.
        primary: Family,
    },
}

impl FamilyPolicy {
    /// The family listed first in the Service's status.
    pub fn primary(self) -> Family {
        match self {
            FamilyPolicy::SingleStack(family)
            | FamilyPolicy::PreferDualStack { primary: family }
            | FamilyPolicy::RequireDualStack { primary: family } => family,
        }
    }

    /// Whether the Service may hold an address of `family`.
    pub fn serves(self, family: Family) -> bool {
        match self {
            FamilyPolicy::SingleStack(only) => only == family,
            FamilyPolicy::PreferDualStack { .. } | FamilyPolicy::RequireDualStack { .. } => true,
        }
    }

    /// The families in status order: the primary first.
    pub(crate) fn families(self) -> impl Iterator<Item = Family> {
        let primary = self.primary();
        let secondary = match self {
            FamilyPolicy::SingleStack(_) => None,
            _ => Some(primary.other()),
        };
        std::iter::once(primary).chain(secondary)
    }
}

impl fmt::Display for FamilyPolicy {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            FamilyPolicy::SingleStack(family) => write!(f, "SingleStack {family}"),
            FamilyPolicy::PreferDualStack { primary } => {
                write!(f, "PreferDualStack, {primary} first")
            }
            FamilyPolicy::RequireDualStack { primary } => {
                write!(f, "RequireDualStack, {primary} first")
            }
        }
    }
}

/// Everything the allocator needs to know about one `LoadBalancer` Service.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct ServiceRequest {
    /// Namespace and name.
    pub service: ServiceKey,
    /// The Service's labels (for `serviceSelectors`).
    pub labels: Labels,
    /// Which families it wants.
    pub family_policy: FamilyPolicy,
    /// The `address-pool` annotation.
    pub requested_pool: Option<String>,
    /// The `loadBalancerIPs` annotation or `spec.loadBalancerIP`: at most one per family.
    pub requested_addresses: Vec<IpAddr>,
    /// The `allow-shared-ip` annotation. An empty string means no key, as in MetalLB.
    pub sharing_key: Option<String>,
    /// `spec.externalTrafficPolicy` and, for `Local`, `spec.selector`.
    pub traffic_policy: TrafficPolicy,
    /// `spec.ports` as `(protocol, port)`.
    pub ports: Vec<ServicePort>,
    /// `status.loadBalancer.ingress` as last written. Read only when the allocator does not
    /// know the Service yet (after a restart): these addresses are claimed before anything
    /// else and never moved.
    pub current_addresses: Vec<IpAddr>,
}

impl ServiceRequest {
    /// A request with nothing but a family policy: no pool, no address, no sharing,
    /// `Cluster` traffic, no ports, no current status.
    pub fn new(service: ServiceKey, family_policy: FamilyPolicy) -> ServiceRequest {
        ServiceRequest {
            service,
            labels: Labels::new(),
            family_policy,
            requested_pool: None,
            requested_addresses: Vec::new(),
            sharing_key: None,
            traffic_policy: TrafficPolicy::Cluster,
            ports: Vec::new(),
            current_addresses: Vec::new(),
        }
    }

    /// The sharing key, with the empty string meaning none.
    pub(crate) fn effective_sharing_key(&self) -> Option<&str> {
        self.sharing_key.as_deref().filter(|key| !key.is_empty())
    }

    /// The pool annotation, with the empty string meaning none.
    pub(crate) fn effective_requested_pool(&self) -> Option<&str> {
        self.requested_pool
            .as_deref()
            .filter(|pool| !pool.is_empty())
    }

    /// The requested address of each family, `[v4, v6]`. Only meaningful after
    /// [`ServiceRequest::validate`].
    pub(crate) fn requested_by_family(&self) -> [Option<IpAddr>; 2] {
        let mut by_family = [None, None];
        for &address in &self.requested_addresses {
            by_family[Family::of(address).slot()] = Some(address);
        }
        by_family
    }

    /// The structural checks MetalLB makes on the annotations before looking at pools.
    pub fn validate(&self) -> Result<(), RequestError> {
        let count = self.requested_addresses.len();
        if count > 2 {
            return Err(RequestError::TooManyRequestedAddresses { count });
        }
        if let [first, second] = self.requested_addresses[..]
            && Family::of(first) == Family::of(second)
        {
            return Err(RequestError::RequestedFamilyTwice {
                family: Family::of(first),
            });
        }
        for &address in &self.requested_addresses {
            if !self.family_policy.serves(Family::of(address)) {
                return Err(RequestError::RequestedFamilyNotServed {
                    address,
                    policy: self.family_policy,
                });
            }
        }
        Ok(())
    }
}

/// A request that is wrong in itself, whatever the pools.
#[derive(Clone, Debug, PartialEq, Eq, Error)]
pub enum RequestError {
    /// More than two requested addresses.
    #[error("at most two addresses may be requested (one per family), got {count}")]
    TooManyRequestedAddresses {
        /// How many were requested.
        count: usize,
    },
    /// Two requested addresses of the same family.
    #[error("the two requested addresses are both {family}")]
    RequestedFamilyTwice {
        /// The family given twice.
        family: Family,
    },
    /// A requested address of a family the Service does not use.
    #[error("requested address {address} is of a family that {policy} does not serve")]
    RequestedFamilyNotServed {
        /// The address.
        address: IpAddr,
        /// The Service's family policy.
        policy: FamilyPolicy,
    },
}
