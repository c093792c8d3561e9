//! In-process address allocation for the node agent: the model's pools and Services turned into
//! the allocator's inputs, and its answers turned into the planner's.
//!
//! Several nodes read the same folder and nothing else is shared, so the addresses must be a
//! function of the folder alone, never of what one node happened to see before: every snapshot
//! is allocated from scratch. Addresses recorded in a Service (`status.loadBalancer.ingress`)
//! are claimed first; then Services get addresses in the order they appear in the folder (files
//! by name, documents in order). So a Service added after the others (at the end of a file, or
//! in a file that sorts last) never moves an existing address; one inserted before others can,
//! and so can a pool edit that takes an unpinned address away or frees one that sorts lower —
//! on every node alike. [`Allocations::update`] reports each such move so the agent can say how
//! to pin the address.

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

/// A Service whose address changed between two snapshots.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct AddressMove {
    pub service: ServiceKey,
    pub before: Vec<IpAddr>,
    pub after: Vec<IpAddr>,
}

/// The addresses of the last snapshot, to report moves, and the pools' use.
#[derive(Default)]
pub struct Allocations {
    previous: BTreeMap<ServiceKey, Vec<IpAddr>>,
    stats: Vec<alloc::PoolStats>,
}

impl Allocations {
    pub fn new() -> Allocations {
        Allocations::default()
    }

    /// Allocates addresses for every LoadBalancer Service of `services` (in folder order) and
    /// returns the planner's view of each, with the Services whose address moved since the
    /// previous snapshot.
    pub fn update(
        &mut self,
        config: &Config,
        services: &[ServiceView],
        endpoints: &BTreeMap<ServiceKey, BTreeSet<String>>,
        load_balancer_class: Option<&str>,
    ) -> (Vec<ServiceInput>, Vec<AddressMove>) {
        let mut allocator = alloc::Allocator::new();
        if let Err(e) = allocator.set_pools(config.pools.iter().map(pool_spec).collect()) {
            // Config::build already validated the pools; the allocator disagreeing is a bug.
            warn!(error = %e, "allocator refused the validated pools");
        }
        let mut seen = BTreeSet::new();
        let wanted: Vec<&ServiceView> = services
            .iter()
            .filter(|s| {
                s.service_type == ServiceType::LoadBalancer
                    && s.has_load_balancer_class(load_balancer_class)
                    && seen.insert((s.namespace.clone(), s.name.clone()))
            })
            .collect();
        let requests: Vec<alloc::ServiceRequest> =
            wanted.iter().map(|v| service_request(v)).collect();

        let mut failures: BTreeMap<alloc::ServiceKey, String> = BTreeMap::new();
        let (recorded, fresh): (Vec<_>, Vec<_>) = requests
            .into_iter()
            .partition(|r| !r.current_addresses.is_empty());
        for failed in allocator.restore(recorded).failed {
            failures.insert(failed.service.clone(), failed.failure.to_string());
        }
        for request in &fresh {
            if let Err(e) = allocator.assign(request) {
                failures.insert(request.service.clone(), e.failure.to_string());
            }
        }

        let inputs: Vec<ServiceInput> = wanted
            .iter()
            .map(|view| {
                let key = alloc::ServiceKey::new(view.namespace.as_str(), view.name.clone());
                let assignment = allocator.assignment(&key);
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
            .collect();

        let current: BTreeMap<ServiceKey, Vec<IpAddr>> = inputs
            .iter()
            .filter(|s| !s.addresses.is_empty())
            .map(|s| (s.key.clone(), s.addresses.clone()))
            .collect();
        let moves: Vec<AddressMove> = current
            .iter()
            .filter_map(|(key, after)| match self.previous.get(key) {
                Some(before) if before != after => Some(AddressMove {
                    service: key.clone(),
                    before: before.clone(),
                    after: after.clone(),
                }),
                _ => None,
            })
            .collect();
        self.previous = current;
        self.stats = allocator.stats();
        (inputs, moves)
    }

    /// Per-pool capacity and use, for status.
    pub fn stats(&self) -> Vec<alloc::PoolStats> {
        self.stats.clone()
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

    fn run(
        agent: &mut Allocations,
        cfg: &Config,
        svcs: &[ServiceView],
    ) -> Vec<(String, Vec<IpAddr>)> {
        addresses(&agent.update(cfg, svcs, &BTreeMap::new(), None).0)
    }

    #[test]
    fn addresses_follow_the_order_services_appear_in_the_folder() {
        let cfg = config("203.0.113.10-203.0.113.20");
        let out = run(
            &mut Allocations::new(),
            &cfg,
            &[service("b", ""), service("a", "")],
        );
        assert_eq!(
            out,
            vec![
                ("b".into(), vec![ip("203.0.113.10")]),
                ("a".into(), vec![ip("203.0.113.11")])
            ]
        );
    }

    #[test]
    fn a_restarted_agent_agrees_with_a_running_one() {
        let cfg = config("203.0.113.10-203.0.113.20");
        let mut running = Allocations::new();
        run(&mut running, &cfg, &[service("web", "")]);
        let folder = [service("api", ""), service("web", "")];
        let after_change = run(&mut running, &cfg, &folder);
        let fresh = run(&mut Allocations::new(), &cfg, &folder);
        assert_eq!(after_change, fresh);
    }

    #[test]
    fn appending_a_service_never_moves_an_existing_address() {
        let cfg = config("203.0.113.10-203.0.113.20");
        let mut agent = Allocations::new();
        run(&mut agent, &cfg, &[service("web", "")]);
        let (out, moves) = agent.update(
            &cfg,
            &[service("web", ""), service("api", "")],
            &BTreeMap::new(),
            None,
        );
        assert_eq!(
            addresses(&out),
            vec![
                ("web".into(), vec![ip("203.0.113.10")]),
                ("api".into(), vec![ip("203.0.113.11")])
            ]
        );
        assert!(moves.is_empty());
    }

    #[test]
    fn inserting_a_service_before_others_moves_them_and_reports_it() {
        let cfg = config("203.0.113.10-203.0.113.20");
        let mut agent = Allocations::new();
        run(&mut agent, &cfg, &[service("web", "")]);
        let (_, moves) = agent.update(
            &cfg,
            &[service("api", ""), service("web", "")],
            &BTreeMap::new(),
            None,
        );
        assert_eq!(
            moves,
            vec![AddressMove {
                service: ServiceKey::new("demo", "web"),
                before: vec![ip("203.0.113.10")],
                after: vec![ip("203.0.113.11")],
            }]
        );
    }

    #[test]
    fn a_pool_edit_that_adds_lower_addresses_moves_unpinned_services_and_reports_it() {
        let mut agent = Allocations::new();
        run(
            &mut agent,
            &config("203.0.113.10-203.0.113.20"),
            &[service("web", "")],
        );
        let (_, moves) = agent.update(
            &config("203.0.113.5-203.0.113.20"),
            &[service("web", "")],
            &BTreeMap::new(),
            None,
        );
        assert_eq!(
            moves,
            vec![AddressMove {
                service: ServiceKey::new("demo", "web"),
                before: vec![ip("203.0.113.10")],
                after: vec![ip("203.0.113.5")],
            }]
        );
    }

    #[test]
    fn an_address_recorded_in_the_service_is_kept_wherever_the_service_stands() {
        let cfg = config("203.0.113.10-203.0.113.20");
        let web = service(
            "web",
            "}, \"status\": {\"loadBalancer\": {\"ingress\": [{\"ip\": \"203.0.113.10\"}]}",
        );
        let out = run(&mut Allocations::new(), &cfg, &[service("api", ""), web]);
        assert_eq!(
            out,
            vec![
                ("api".into(), vec![ip("203.0.113.11")]),
                ("web".into(), vec![ip("203.0.113.10")])
            ]
        );
    }

    #[test]
    fn a_removed_service_releases_its_address() {
        let cfg = config("203.0.113.10-203.0.113.10");
        let mut agent = Allocations::new();
        run(&mut agent, &cfg, &[service("a", "")]);
        let after = run(&mut agent, &cfg, &[service("b", "")]);
        assert_eq!(after, vec![("b".into(), vec![ip("203.0.113.10")])]);
    }

    #[test]
    fn an_exhausted_pool_leaves_the_service_waiting_with_a_reason() {
        let cfg = config("203.0.113.10-203.0.113.10");
        let mut agent = Allocations::new();
        let (out, _) = agent.update(
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
        let (out, _) = agent.update(
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
                ("pinned".into(), vec![ip("203.0.113.15")]),
                (
                    "dual".into(),
                    vec![ip("203.0.113.10"), ip("2001:db8:ff::10")]
                ),
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
        let (out, _) = agent.update(&cfg, &svcs, &BTreeMap::new(), None);
        assert_eq!(
            out.iter().map(|s| s.key.name.as_str()).collect::<Vec<_>>(),
            vec!["mine"]
        );
        let (out, _) = agent.update(&cfg, &svcs, &BTreeMap::new(), Some("example.com/other"));
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
        let (out, _) = agent.update(&cfg, &[service("a", ""), service("b", "")], &eps, None);
        assert_eq!(
            out[0].endpoints,
            Endpoints::Known {
                serving_nodes: BTreeSet::from(["n1".to_string()])
            }
        );
        assert_eq!(out[1].endpoints, Endpoints::Unknown);
    }
}
