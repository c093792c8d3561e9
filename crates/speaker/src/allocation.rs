//! In-process address allocation for the node agent: the model's pools and Services turned into
//! the allocator's inputs, and its answers turned into the planner's.
//!
//! The allocator is deterministic, so every node given the same folder computes the same
//! addresses when it starts. A running agent keeps its allocator across configuration changes,
//! so an address once given is never moved by an edit: new Services get free addresses,
//! removed ones release theirs. Services are always submitted in namespace/name order.

use std::collections::{BTreeMap, BTreeSet};
use std::net::IpAddr;

use ferrolb_allocator as alloc;
use ferrolb_model::address::{AddressBlock, IpFamily};
use ferrolb_model::config::{Config, Pool};
use ferrolb_model::selector::{Requirement, SelectorList};
use ferrolb_model::service::{
    ExternalTrafficPolicy, IpFamilyPolicy, Protocol, ServiceType, ServiceView,
};
use tracing::warn;

use crate::planner::{Endpoints, ServiceInput, ServiceKey};

/// The agent's allocator and what it was last asked.
#[derive(Default)]
pub struct Allocations {
    allocator: alloc::Allocator,
}

impl Allocations {
    pub fn new() -> Allocations {
        Allocations::default()
    }

    /// Brings the allocator in line with `config` and `services` and returns the planner's view
    /// of every LoadBalancer Service (with addresses, or the reason it has none).
    pub fn update(
        &mut self,
        config: &Config,
        services: &[ServiceView],
        endpoints: &BTreeMap<ServiceKey, BTreeSet<String>>,
        load_balancer_class: Option<&str>,
    ) -> Vec<ServiceInput> {
        if let Err(e) = self
            .allocator
            .set_pools(config.pools.iter().map(pool_spec).collect())
        {
            // Config::build already validated the pools; the allocator disagreeing is a bug.
            warn!(error = %e, "allocator refused the validated pools; keeping the previous ones");
        }
        let mut wanted: Vec<&ServiceView> = services
            .iter()
            .filter(|s| {
                s.service_type == ServiceType::LoadBalancer
                    && s.has_load_balancer_class(load_balancer_class)
            })
            .collect();
        wanted.sort_by(|a, b| (&a.namespace, &a.name).cmp(&(&b.namespace, &b.name)));
        let keys: BTreeSet<alloc::ServiceKey> = wanted
            .iter()
            .map(|s| alloc::ServiceKey::new(s.namespace.as_str(), s.name.clone()))
            .collect();
        for assignment in self.allocator.assignments() {
            if !keys.contains(&assignment.service) {
                let _ = self.allocator.release(&assignment.service);
            }
        }
        for pending in self.allocator.pending() {
            if !keys.contains(&pending.service) {
                let _ = self.allocator.release(&pending.service);
            }
        }

        let mut failures: BTreeMap<alloc::ServiceKey, String> = BTreeMap::new();
        for view in &wanted {
            let request = service_request(view);
            if let Err(e) = self.allocator.assign(&request) {
                failures.insert(request.service.clone(), e.failure.to_string());
            }
        }

        wanted
            .iter()
            .map(|view| {
                let key = alloc::ServiceKey::new(view.namespace.as_str(), view.name.clone());
                let assignment = self.allocator.assignment(&key);
                let planner_key = ServiceKey::new(view.namespace.clone(), view.name.clone());
                ServiceInput {
                    labels: view.labels.clone(),
                    addresses: assignment
                        .as_ref()
                        .map(|a| a.addresses.clone())
                        .unwrap_or_default(),
                    pool: assignment
                        .as_ref()
                        .and_then(|a| a.pool.as_ref().map(|p| p.to_string())),
                    local_traffic_policy: view.external_traffic_policy
                        == ExternalTrafficPolicy::Local,
                    endpoints: match endpoints.get(&planner_key) {
                        Some(nodes) => Endpoints::Known {
                            serving_nodes: nodes.clone(),
                        },
                        None => Endpoints::Unknown,
                    },
                    unassigned_reason: failures.get(&key).cloned(),
                    key: planner_key,
                }
            })
            .collect()
    }

    /// Per-pool capacity and use, for status.
    pub fn stats(&self) -> Vec<alloc::PoolStats> {
        self.allocator.stats()
    }
}

fn pool_spec(pool: &Pool) -> alloc::PoolSpec {
    let addresses = pool
        .blocks
        .iter()
        .map(|block| match block {
            AddressBlock::Cidr(net) => alloc::AddressRange::Cidr(*net),
            AddressBlock::Range(range) => alloc::AddressRange::Span {
                first: range.start(),
                last: range.end(),
            },
        })
        .collect();
    let allocation = &pool.allocation;
    let service_allocation =
        (allocation.priority.is_some() || allocation.is_restricted()).then(|| {
            alloc::ServiceAllocation {
                priority: allocation.priority,
                namespaces: allocation.namespaces.iter().cloned().collect(),
                namespace_selectors: selectors(&allocation.namespace_selectors),
                service_selectors: selectors(&allocation.service_selectors),
            }
        });
    alloc::PoolSpec {
        name: pool.name.clone(),
        addresses,
        auto_assign: pool.auto_assign,
        avoid_buggy_ips: pool.avoid_buggy_ips,
        service_allocation,
    }
}

/// The model's and the allocator's selectors say the same thing; the allocator keeps its own
/// type so that it does not depend on the model.
fn selectors(list: &SelectorList) -> Vec<alloc::LabelSelector> {
    list.0
        .iter()
        .map(|selector| alloc::LabelSelector {
            match_labels: BTreeMap::new(),
            match_expressions: selector
                .requirements()
                .iter()
                .map(|r| match r {
                    Requirement::In(key, values) => alloc::LabelExpression {
                        key: key.clone(),
                        operator: alloc::LabelOperator::In(values.clone()),
                    },
                    Requirement::NotIn(key, values) => alloc::LabelExpression {
                        key: key.clone(),
                        operator: alloc::LabelOperator::NotIn(values.clone()),
                    },
                    Requirement::Exists(key) => alloc::LabelExpression {
                        key: key.clone(),
                        operator: alloc::LabelOperator::Exists,
                    },
                    Requirement::DoesNotExist(key) => alloc::LabelExpression {
                        key: key.clone(),
                        operator: alloc::LabelOperator::DoesNotExist,
                    },
                })
                .collect(),
        })
        .collect()
}

fn family(f: IpFamily) -> alloc::Family {
    match f {
        IpFamily::V4 => alloc::Family::V4,
        IpFamily::V6 => alloc::Family::V6,
    }
}

fn service_request(view: &ServiceView) -> alloc::ServiceRequest {
    // Without an API server nobody fills in spec.ipFamilies: take the family of a requested
    // address, else IPv4.
    let primary = view
        .ip_families
        .first()
        .copied()
        .map(family)
        .unwrap_or_else(|| match view.requested_ips.first() {
            Some(IpAddr::V6(_)) => alloc::Family::V6,
            _ => alloc::Family::V4,
        });
    let family_policy = match view.ip_family_policy {
        IpFamilyPolicy::SingleStack => alloc::FamilyPolicy::SingleStack(primary),
        IpFamilyPolicy::PreferDualStack => alloc::FamilyPolicy::PreferDualStack { primary },
        IpFamilyPolicy::RequireDualStack => alloc::FamilyPolicy::RequireDualStack { primary },
    };
    let key = alloc::ServiceKey::new(view.namespace.as_str(), view.name.clone());
    let mut request = alloc::ServiceRequest::new(key, family_policy);
    request.labels = view.labels.clone();
    request.requested_pool = view.requested_pool.clone();
    request.requested_addresses = view.requested_ips.clone();
    request.sharing_key = view.sharing_key.clone();
    request.traffic_policy = match view.external_traffic_policy {
        ExternalTrafficPolicy::Cluster => alloc::TrafficPolicy::Cluster,
        ExternalTrafficPolicy::Local => alloc::TrafficPolicy::Local {
            selector: view.selector.clone(),
        },
    };
    request.ports = view
        .ports
        .iter()
        .map(|p| alloc::ServicePort {
            protocol: match p.protocol {
                Protocol::Tcp => alloc::Protocol::Tcp,
                Protocol::Udp => alloc::Protocol::Udp,
                Protocol::Sctp => alloc::Protocol::Sctp,
            },
            port: p.port,
        })
        .collect();
    request.current_addresses = view.ingress_ips.clone();
    request
}

#[cfg(test)]
mod tests {
    use super::*;
    use ferrolb_model::Resources;
    use ferrolb_model::load::{decode_object, split_documents};

    fn config(pool_addresses: &str) -> Config {
        let yaml = format!(
            "apiVersion: ferrolb.io/v1beta1\nkind: IPAddressPool\nmetadata: {{name: lab, namespace: ferrolb}}\nspec: {{addresses: [{pool_addresses}]}}\n"
        );
        let mut resources = Resources::default();
        for doc in split_documents(&yaml) {
            resources.add(decode_object(&doc.parse().unwrap()).unwrap());
        }
        Config::build(&resources).unwrap()
    }

    fn service(name: &str, extra_spec: &str) -> ServiceView {
        let yaml = format!(
            "{{\"metadata\": {{\"name\": \"{name}\", \"namespace\": \"demo\"}}, \"spec\": {{\"type\": \"LoadBalancer\"{extra_spec}}}}}"
        );
        let svc: k8s_openapi::api::core::v1::Service = serde_json::from_str(&yaml).unwrap();
        ServiceView::from_service(&svc).unwrap()
    }

    fn addresses(inputs: &[ServiceInput]) -> Vec<(String, Vec<IpAddr>)> {
        inputs
            .iter()
            .map(|s| (s.key.name.clone(), s.addresses.clone()))
            .collect()
    }

    fn ip(s: &str) -> IpAddr {
        s.parse().unwrap()
    }

    #[test]
    fn every_node_gives_the_same_addresses_in_name_order() {
        let cfg = config("203.0.113.10-203.0.113.20");
        let svcs = vec![service("b", ""), service("a", "")];
        let mut node1 = Allocations::new();
        let mut node2 = Allocations::new();
        let one = node1.update(&cfg, &svcs, &BTreeMap::new(), None);
        let mut reversed = svcs.clone();
        reversed.reverse();
        let two = node2.update(&cfg, &reversed, &BTreeMap::new(), None);
        assert_eq!(addresses(&one), addresses(&two));
        assert_eq!(
            addresses(&one),
            vec![
                ("a".into(), vec![ip("203.0.113.10")]),
                ("b".into(), vec![ip("203.0.113.11")])
            ]
        );
        assert!(one.iter().all(|s| s.pool.as_deref() == Some("lab")));
    }

    #[test]
    fn a_running_agent_never_moves_an_address_when_a_service_is_added() {
        let cfg = config("203.0.113.10-203.0.113.20");
        let mut agent = Allocations::new();
        agent.update(&cfg, &[service("b", "")], &BTreeMap::new(), None);
        let after = agent.update(
            &cfg,
            &[service("a", ""), service("b", "")],
            &BTreeMap::new(),
            None,
        );
        assert_eq!(
            addresses(&after),
            vec![
                ("a".into(), vec![ip("203.0.113.11")]),
                ("b".into(), vec![ip("203.0.113.10")])
            ]
        );
    }

    #[test]
    fn a_removed_service_releases_its_address() {
        let cfg = config("203.0.113.10-203.0.113.10");
        let mut agent = Allocations::new();
        agent.update(&cfg, &[service("a", "")], &BTreeMap::new(), None);
        let after = agent.update(&cfg, &[service("b", "")], &BTreeMap::new(), None);
        assert_eq!(
            addresses(&after),
            vec![("b".into(), vec![ip("203.0.113.10")])]
        );
    }

    #[test]
    fn an_exhausted_pool_leaves_the_service_waiting_with_a_reason() {
        let cfg = config("203.0.113.10-203.0.113.10");
        let mut agent = Allocations::new();
        let out = agent.update(
            &cfg,
            &[service("a", ""), service("b", "")],
            &BTreeMap::new(),
            None,
        );
        assert!(out[1].addresses.is_empty());
        let reason = out[1].unassigned_reason.clone().expect("a reason");
        assert!(!reason.is_empty());
    }

    #[test]
    fn requested_address_and_dual_stack_are_honoured() {
        let cfg = config("203.0.113.10-203.0.113.20, \"2001:db8:ff::10-2001:db8:ff::20\"");
        let mut agent = Allocations::new();
        let out = agent.update(
            &cfg,
            &[
                service("pinned", ", \"loadBalancerIP\": \"203.0.113.15\""),
                service(
                    "dual",
                    ", \"ipFamilyPolicy\": \"RequireDualStack\", \"ipFamilies\": [\"IPv4\", \"IPv6\"]",
                ),
            ],
            &BTreeMap::new(),
            None,
        );
        assert_eq!(
            addresses(&out),
            vec![
                (
                    "dual".into(),
                    vec![ip("203.0.113.10"), ip("2001:db8:ff::10")]
                ),
                ("pinned".into(), vec![ip("203.0.113.15")]),
            ]
        );
    }

    #[test]
    fn only_load_balancer_services_of_our_class_are_handled() {
        let cfg = config("203.0.113.10-203.0.113.20");
        let mut agent = Allocations::new();
        let svcs = [
            service("mine", ""),
            service("other", ", \"loadBalancerClass\": \"example.com/other\""),
        ];
        let out = agent.update(&cfg, &svcs, &BTreeMap::new(), None);
        assert_eq!(
            out.iter().map(|s| s.key.name.as_str()).collect::<Vec<_>>(),
            vec!["mine"]
        );
        let out = agent.update(&cfg, &svcs, &BTreeMap::new(), Some("example.com/other"));
        assert_eq!(
            out.iter().map(|s| s.key.name.as_str()).collect::<Vec<_>>(),
            vec!["other"]
        );
    }

    #[test]
    fn endpoints_from_slices_reach_the_planner() {
        let cfg = config("203.0.113.10-203.0.113.20");
        let mut agent = Allocations::new();
        let eps = BTreeMap::from([(
            ServiceKey::new("demo", "a"),
            BTreeSet::from(["n1".to_string()]),
        )]);
        let out = agent.update(&cfg, &[service("a", ""), service("b", "")], &eps, None);
        assert_eq!(
            out[0].endpoints,
            Endpoints::Known {
                serving_nodes: BTreeSet::from(["n1".to_string()])
            }
        );
        assert_eq!(out[1].endpoints, Endpoints::Unknown);
    }
}
