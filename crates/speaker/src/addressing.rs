//! Where the addresses of the Services come from, and the planner's view of each Service.
//!
//! Two policies, one per source:
//! - [`Allocations`] (a configuration folder): the node allocates in-process. Several nodes read
//!   the same folder and nothing else is shared, so the addresses must be a function of the
//!   folder alone, never of what one node happened to see before: every snapshot is allocated
//!   from scratch. Addresses recorded in a Service (`status.loadBalancer.ingress`) are claimed
//!   first; then Services get addresses in the order they appear in the folder (files by name,
//!   documents in order). So a Service added after the others (at the end of a file, or in a
//!   file that sorts last) never moves an existing address; one inserted before others can, and
//!   so can a pool edit that takes an unpinned address away or frees one that sorts lower — on
//!   every node alike. [`Allocations::update`] reports each such move so the agent can say how
//!   to pin the address.
//! - [`Addressing::FromServiceStatus`] (a cluster): the controller allocates and writes
//!   `status.loadBalancer.ingress`; the node only reads it and finds each address's pool.
//!
//! The translation from the model into the allocator's types is the allocator's own
//! (`ferrolb_allocator::{PoolSpec::from_model, ServiceRequest::from_view}`).

use std::collections::{BTreeMap, BTreeSet};
use std::net::IpAddr;

use ferrolb_allocator as alloc;
use ferrolb_model::config::Config;
use ferrolb_model::endpoints::Endpoints;
use ferrolb_model::service::{ExternalTrafficPolicy, ServiceKey, ServiceView};
use tracing::warn;

use crate::plan::ServiceInput;

pub use ferrolb_model::service::ClassFilter;

/// Where addresses come from.
pub enum Addressing {
    /// Allocated on this node from the folder's pools (folder mode).
    Folder(Allocations),
    /// Read from the Services' status, written by the controller (cluster mode).
    FromServiceStatus,
}

/// The Services this node plans for, with their addresses, and what changed.
#[derive(Clone, Debug, Default, PartialEq)]
pub struct Addressed {
    /// The planner's view of each LoadBalancer Service of our class, in source order.
    pub services: Vec<ServiceInput>,
    /// Services whose address changed since the previous snapshot (folder mode only).
    pub moves: Vec<AddressMove>,
    /// Per-pool capacity and use (folder mode only: in a cluster the controller counts).
    pub pools: Vec<alloc::PoolStats>,
}

impl Addressing {
    /// Addresses for every LoadBalancer Service of our class.
    pub fn address(
        &mut self,
        config: &Config,
        services: &[ServiceView],
        endpoints: &BTreeMap<ServiceKey, BTreeSet<String>>,
        class: &ClassFilter,
    ) -> Addressed {
        match self {
            Addressing::Folder(allocations) => {
                let (services, moves) = allocations.update(config, services, endpoints, class);
                Addressed {
                    services,
                    moves,
                    pools: allocations.stats(),
                }
            }
            Addressing::FromServiceStatus => Addressed {
                services: ours(services, class)
                    .into_iter()
                    .map(|view| {
                        let pool = view.ingress_ips.first().and_then(|ip| pool_of(config, *ip));
                        let unassigned = view
                            .ingress_ips
                            .is_empty()
                            .then(|| "the controller has not assigned one yet".to_string());
                        input(view, view.ingress_ips.clone(), pool, endpoints, unassigned)
                    })
                    .collect(),
                ..Addressed::default()
            },
        }
    }
}

/// The pool that contains `ip`, if any.
fn pool_of(config: &Config, ip: IpAddr) -> Option<String> {
    config
        .pools
        .iter()
        .find(|p| p.blocks.iter().any(|b| b.contains(ip)))
        .map(|p| p.name.clone())
}

/// The LoadBalancer Services of our class, first of each name only.
fn ours<'s>(services: &'s [ServiceView], class: &ClassFilter) -> Vec<&'s ServiceView> {
    let mut seen = BTreeSet::new();
    services
        .iter()
        .filter(|s| s.is_load_balancer() && s.is_handled_by(class) && seen.insert(s.key()))
        .collect()
}

fn input(
    view: &ServiceView,
    addresses: Vec<IpAddr>,
    pool: Option<String>,
    endpoints: &BTreeMap<ServiceKey, BTreeSet<String>>,
    unassigned_reason: Option<String>,
) -> ServiceInput {
    let key = view.key();
    ServiceInput {
        labels: view.labels.clone(),
        addresses,
        pool,
        local_traffic_policy: view.external_traffic_policy == ExternalTrafficPolicy::Local,
        endpoints: match endpoints.get(&key) {
            Some(nodes) => Endpoints::Known {
                serving_nodes: nodes.clone(),
            },
            None => Endpoints::Unknown,
        },
        unassigned_reason,
        key,
    }
}

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
        class: &ClassFilter,
    ) -> (Vec<ServiceInput>, Vec<AddressMove>) {
        let mut allocator = alloc::Allocator::new();
        if let Err(e) = allocator.set_pools(
            config
                .pools
                .iter()
                .map(alloc::PoolSpec::from_model)
                .collect(),
        ) {
            // Config::build already validated the pools; the allocator disagreeing is a bug.
            warn!(error = %e, "allocator refused the validated pools");
        }
        let wanted = ours(services, class);
        let requests: Vec<alloc::ServiceRequest> = wanted
            .iter()
            .map(|v| alloc::ServiceRequest::from_view(v))
            .collect();

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
                let key = alloc::ServiceKey::from(&view.key());
                let assignment = allocator.assignment(&key);
                input(
                    view,
                    assignment
                        .as_ref()
                        .map(|a| a.addresses.clone())
                        .unwrap_or_default(),
                    assignment
                        .as_ref()
                        .and_then(|a| a.pool.as_ref().map(|p| p.to_string())),
                    endpoints,
                    failures.get(&key).cloned(),
                )
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
        addresses(
            &agent
                .update(cfg, svcs, &BTreeMap::new(), &ClassFilter::default())
                .0,
        )
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
            &ClassFilter::default(),
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
            &ClassFilter::default(),
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
            &ClassFilter::default(),
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
            &ClassFilter::default(),
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
            &ClassFilter::default(),
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
        let (out, _) = agent.update(&cfg, &svcs, &BTreeMap::new(), &ClassFilter::default());
        assert_eq!(
            out.iter().map(|s| s.key.name.as_str()).collect::<Vec<_>>(),
            vec!["mine"]
        );
        let (out, _) = agent.update(
            &cfg,
            &svcs,
            &BTreeMap::new(),
            &ClassFilter::required("example.com/other"),
        );
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
        let (out, _) = agent.update(
            &cfg,
            &[service("a", ""), service("b", "")],
            &eps,
            &ClassFilter::default(),
        );
        assert_eq!(
            out[0].endpoints,
            Endpoints::Known {
                serving_nodes: BTreeSet::from(["n1".to_string()])
            }
        );
        assert_eq!(out[1].endpoints, Endpoints::Unknown);
    }
}
