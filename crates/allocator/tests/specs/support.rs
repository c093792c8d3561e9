//! Short constructors so that each spec reads as the rule it checks.

use std::net::IpAddr;

use ferrolb_allocator::{
    AllocationError, AllocationFailure, Allocator, Assignment, Family, FamilyPolicy, PoolSpec,
    ServiceAllocation, ServiceKey, ServicePort, ServiceRequest,
};

pub fn ip(text: &str) -> IpAddr {
    text.parse().unwrap()
}

pub fn ips(texts: &[&str]) -> Vec<IpAddr> {
    texts.iter().map(|text| ip(text)).collect()
}

pub fn key(name: &str) -> ServiceKey {
    ServiceKey::new("default", name)
}

/// A pool with MetalLB's defaults.
pub fn pool(name: &str, ranges: &[&str]) -> PoolSpec {
    PoolSpec::new(name, ranges.iter().map(|r| r.parse().unwrap()).collect())
}

pub fn with_priority(mut spec: PoolSpec, priority: i32) -> PoolSpec {
    spec.service_allocation
        .get_or_insert_with(ServiceAllocation::default)
        .priority = Some(priority);
    spec
}

pub fn allocator(pools: Vec<PoolSpec>) -> Allocator {
    let mut allocator = Allocator::new();
    allocator.set_pools(pools).unwrap();
    allocator
}

/// An IPv4 single-stack Service in namespace `default`.
pub fn v4(name: &str) -> ServiceRequest {
    ServiceRequest::new(key(name), FamilyPolicy::SingleStack(Family::V4))
}

pub fn v6(name: &str) -> ServiceRequest {
    ServiceRequest::new(key(name), FamilyPolicy::SingleStack(Family::V6))
}

pub fn dual(name: &str, policy: FamilyPolicy) -> ServiceRequest {
    ServiceRequest::new(key(name), policy)
}

/// A Service sharing with `sharing_key` on TCP `ports`.
pub fn sharing(mut request: ServiceRequest, sharing_key: &str, ports: &[u16]) -> ServiceRequest {
    request.sharing_key = Some(sharing_key.to_owned());
    request.ports = ports.iter().map(|&p| ServicePort::tcp(p)).collect();
    request
}

pub fn assign(allocator: &mut Allocator, request: &ServiceRequest) -> Assignment {
    match allocator.assign(request) {
        Ok(assigned) => assigned.assignment,
        Err(error) => panic!("{} should be assigned: {error}", request.service),
    }
}

pub fn refuse(allocator: &mut Allocator, request: &ServiceRequest) -> AllocationError {
    match allocator.assign(request) {
        Ok(assigned) => panic!(
            "{} should be refused, got {:?}",
            request.service, assigned.assignment.addresses
        ),
        Err(error) => *error,
    }
}

pub fn failure(allocator: &mut Allocator, request: &ServiceRequest) -> AllocationFailure {
    refuse(allocator, request).failure
}

pub fn addresses_of(allocator: &Allocator, name: &str) -> Vec<IpAddr> {
    allocator
        .assignment(&key(name))
        .map(|assignment| assignment.addresses)
        .unwrap_or_default()
}
