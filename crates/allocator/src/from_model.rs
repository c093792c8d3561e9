//! The one translation from ferrolb's model (validated `Config` pools, the typed reading of a
//! Service) into the allocator's inputs, behind the `model` feature.
//!
//! The allocator keeps its own vocabulary (its `ServiceKey` packs the namespace in an `Arc`, its
//! selectors are plain data) so that its default build stays free of Kubernetes types and fast
//! to build for benchmarks and property tests. Everything that needs both worlds (the node
//! agent's folder mode, the cluster controller) converts here and nowhere else.

use std::collections::BTreeMap;
use std::net::IpAddr;

use ferrolb_model::address::{AddressBlock, IpFamily};
use ferrolb_model::config::Pool;
use ferrolb_model::selector::{Requirement, Selector, SelectorList};
use ferrolb_model::service::{
    ExternalTrafficPolicy, IpFamilyPolicy, Protocol as ServiceProtocol, ServiceKey as ModelKey,
    ServiceView,
};

use crate::{
    AddressRange, Family, FamilyPolicy, LabelExpression, LabelOperator, LabelSelector, PoolSpec,
    Protocol, ServiceAllocation, ServiceKey, ServicePort, ServiceRequest, TrafficPolicy,
};

impl From<IpFamily> for Family {
    fn from(f: IpFamily) -> Family {
        match f {
            IpFamily::V4 => Family::V4,
            IpFamily::V6 => Family::V6,
        }
    }
}

impl From<&ModelKey> for ServiceKey {
    fn from(key: &ModelKey) -> ServiceKey {
        ServiceKey::new(key.namespace.as_str(), key.name.clone())
    }
}

impl From<&ServiceKey> for ModelKey {
    fn from(key: &ServiceKey) -> ModelKey {
        ModelKey::new(key.namespace(), key.name())
    }
}

impl From<&Selector> for LabelSelector {
    fn from(selector: &Selector) -> LabelSelector {
        LabelSelector {
            match_labels: BTreeMap::new(),
            match_expressions: selector
                .requirements()
                .iter()
                .map(|r| match r {
                    Requirement::In(key, values) => LabelExpression {
                        key: key.clone(),
                        operator: LabelOperator::In(values.clone()),
                    },
                    Requirement::NotIn(key, values) => LabelExpression {
                        key: key.clone(),
                        operator: LabelOperator::NotIn(values.clone()),
                    },
                    Requirement::Exists(key) => LabelExpression {
                        key: key.clone(),
                        operator: LabelOperator::Exists,
                    },
                    Requirement::DoesNotExist(key) => LabelExpression {
                        key: key.clone(),
                        operator: LabelOperator::DoesNotExist,
                    },
                })
                .collect(),
        }
    }
}

fn selectors(list: &SelectorList) -> Vec<LabelSelector> {
    list.0.iter().map(LabelSelector::from).collect()
}

impl PoolSpec {
    /// The allocator's view of a validated pool.
    pub fn from_model(pool: &Pool) -> PoolSpec {
        let addresses = pool
            .blocks
            .iter()
            .map(|block| match block {
                AddressBlock::Cidr(net) => AddressRange::Cidr(*net),
                AddressBlock::Range(range) => AddressRange::Span {
                    first: range.start(),
                    last: range.end(),
                },
            })
            .collect();
        let allocation = &pool.allocation;
        let service_allocation = (allocation.priority.is_some() || allocation.is_restricted())
            .then(|| ServiceAllocation {
                priority: allocation.priority,
                namespaces: allocation.namespaces.iter().cloned().collect(),
                namespace_selectors: selectors(&allocation.namespace_selectors),
                service_selectors: selectors(&allocation.service_selectors),
            });
        PoolSpec {
            name: pool.name.clone(),
            addresses,
            auto_assign: pool.auto_assign,
            avoid_buggy_ips: pool.avoid_buggy_ips,
            service_allocation,
        }
    }
}

impl ServiceRequest {
    /// The allocator's request for a Service, with the addresses its status records as the
    /// current ones (restored, never moved).
    pub fn from_view(view: &ServiceView) -> ServiceRequest {
        // A Service that never went through an API server has no spec.ipFamilies: take the
        // family of a requested address, else IPv4, as the API server's defaulting would.
        let primary = view
            .ip_families
            .first()
            .copied()
            .map(Family::from)
            .unwrap_or_else(|| match view.requested_ips.first() {
                Some(IpAddr::V6(_)) => Family::V6,
                _ => Family::V4,
            });
        let family_policy = match view.ip_family_policy {
            IpFamilyPolicy::SingleStack => FamilyPolicy::SingleStack(primary),
            IpFamilyPolicy::PreferDualStack => FamilyPolicy::PreferDualStack { primary },
            IpFamilyPolicy::RequireDualStack => FamilyPolicy::RequireDualStack { primary },
        };
        let mut request = ServiceRequest::new(ServiceKey::from(&view.key()), family_policy);
        request.labels = view.labels.clone();
        request.requested_pool = view.requested_pool.clone();
        request.requested_addresses = view.requested_ips.clone();
        request.sharing_key = view.sharing_key.clone();
        request.traffic_policy = match view.external_traffic_policy {
            ExternalTrafficPolicy::Cluster => TrafficPolicy::Cluster,
            ExternalTrafficPolicy::Local => TrafficPolicy::Local {
                selector: view.selector.clone(),
            },
        };
        request.ports = view
            .ports
            .iter()
            .map(|p| ServicePort {
                protocol: match p.protocol {
                    ServiceProtocol::Tcp => Protocol::Tcp,
                    ServiceProtocol::Udp => Protocol::Udp,
                    ServiceProtocol::Sctp => Protocol::Sctp,
                },
                port: p.port,
            })
            .collect();
        request.current_addresses = view.ingress_ips.clone();
        request
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use ferrolb_model::load::{decode_object, split_documents};
    use ferrolb_model::{Config, Resources};

    fn config(yaml: &str) -> Config {
        let mut resources = Resources::default();
        for doc in split_documents(yaml) {
            resources.add(decode_object(&doc.parse().unwrap()).unwrap());
        }
        Config::build(&resources).unwrap()
    }

    fn view(json: &str) -> ServiceView {
        let svc: k8s_openapi::api::core::v1::Service = serde_json::from_str(json).unwrap();
        ServiceView::from_service(&svc).unwrap()
    }

    #[test]
    fn a_pool_keeps_its_ranges_flags_and_service_allocation() {
        let cfg = config(
            "apiVersion: ferrolb.io/v1beta1\nkind: IPAddressPool\nmetadata: {name: gold, namespace: ferrolb}\nspec:\n  addresses: [203.0.113.0/28, 198.51.100.10-198.51.100.20]\n  autoAssign: false\n  avoidBuggyIPs: true\n  serviceAllocation: {priority: 5, namespaces: [shop], serviceSelectors: [{matchLabels: {tier: gold}}]}\n",
        );
        let spec = PoolSpec::from_model(&cfg.pools[0]);
        assert_eq!(spec.name, "gold");
        assert_eq!(
            spec.addresses,
            vec![
                AddressRange::Cidr("203.0.113.0/28".parse().unwrap()),
                AddressRange::Span {
                    first: "198.51.100.10".parse().unwrap(),
                    last: "198.51.100.20".parse().unwrap()
                }
            ]
        );
        assert!(!spec.auto_assign && spec.avoid_buggy_ips);
        let allocation = spec.service_allocation.unwrap();
        assert_eq!(allocation.priority, Some(5));
        assert_eq!(allocation.namespaces, vec!["shop".to_string()]);
        assert_eq!(
            allocation.service_selectors[0].match_expressions,
            vec![LabelExpression {
                key: "tier".into(),
                operator: LabelOperator::In(["gold".to_string()].into())
            }]
        );
    }

    #[test]
    fn a_pool_without_restrictions_has_no_service_allocation() {
        let cfg = config(
            "apiVersion: ferrolb.io/v1beta1\nkind: IPAddressPool\nmetadata: {name: p, namespace: ferrolb}\nspec: {addresses: [203.0.113.0/28]}\n",
        );
        assert_eq!(PoolSpec::from_model(&cfg.pools[0]).service_allocation, None);
    }

    #[test]
    fn a_service_request_carries_every_field_the_rules_read() {
        let v = view(
            r#"{"metadata": {"name": "web", "namespace": "shop", "labels": {"app": "web"},
                 "annotations": {"ferrolb.io/address-pool": "gold", "ferrolb.io/allow-shared-ip": "k"}},
                "spec": {"type": "LoadBalancer", "externalTrafficPolicy": "Local", "selector": {"app": "web"},
                 "ipFamilyPolicy": "PreferDualStack", "ipFamilies": ["IPv6", "IPv4"],
                 "ports": [{"port": 53, "protocol": "UDP"}], "loadBalancerIP": "2001:db8::5"},
                "status": {"loadBalancer": {"ingress": [{"ip": "2001:db8::5"}]}}}"#,
        );
        let r = ServiceRequest::from_view(&v);
        assert_eq!(r.service, ServiceKey::new("shop", "web"));
        assert_eq!(
            r.family_policy,
            FamilyPolicy::PreferDualStack {
                primary: Family::V6
            }
        );
        assert_eq!(r.requested_pool.as_deref(), Some("gold"));
        assert_eq!(r.sharing_key.as_deref(), Some("k"));
        assert_eq!(
            r.ports,
            vec![ServicePort {
                protocol: Protocol::Udp,
                port: 53
            }]
        );
        assert_eq!(
            r.traffic_policy,
            TrafficPolicy::Local {
                selector: BTreeMap::from([("app".to_string(), "web".to_string())])
            }
        );
        let ip: IpAddr = "2001:db8::5".parse().unwrap();
        assert_eq!(r.requested_addresses, vec![ip]);
        assert_eq!(r.current_addresses, vec![ip]);
    }

    #[test]
    fn without_ip_families_the_family_of_the_requested_address_is_primary() {
        let v = view(
            r#"{"metadata": {"name": "web", "namespace": "shop"}, "spec": {"type": "LoadBalancer", "loadBalancerIP": "2001:db8::5"}}"#,
        );
        assert_eq!(
            ServiceRequest::from_view(&v).family_policy,
            FamilyPolicy::SingleStack(Family::V6)
        );
    }

    #[test]
    fn keys_convert_both_ways() {
        let model = ModelKey::new("shop", "web");
        let key = ServiceKey::from(&model);
        assert_eq!(ModelKey::from(&key), model);
    }
}
