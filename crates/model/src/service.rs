//! The typed reading of a Kubernetes `Service` that the allocator and the planner work from:
//! type, class, requested pool and addresses, sharing key, ports, traffic policy, IP families
//! and current ingress addresses.
//!
//! Owns the annotations (`ferrolb.io/*`, and MetalLB's `metallb.io/*` and deprecated
//! `metallb.universe.tf/*` so Services move over unchanged) and their conflicts. Does not decide
//! anything about allocation: whether a requested address is in a pool, free or shareable is the
//! allocator's business.

use std::collections::BTreeMap;
use std::fmt;
use std::net::IpAddr;

use k8s_openapi::api::core::v1::Service;
use thiserror::Error;

use crate::address::IpFamily;

/// The annotation prefixes ferrolb reads, strongest first.
pub const ANNOTATION_PREFIXES: [&str; 3] = ["ferrolb.io/", "metallb.io/", "metallb.universe.tf/"];

/// Ask for addresses from this pool only.
pub const ADDRESS_POOL: &str = "ferrolb.io/address-pool";
/// Ask for these addresses (comma-separated, at most one per family).
pub const LOAD_BALANCER_IPS: &str = "ferrolb.io/loadBalancerIPs";
/// Services with the same value may share an address.
pub const ALLOW_SHARED_IP: &str = "ferrolb.io/allow-shared-ip";
/// Written by the controller: the pool the addresses came from. Never read back.
pub const IP_ALLOCATED_FROM_POOL: &str = "ferrolb.io/ip-allocated-from-pool";

/// `spec.type`.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub enum ServiceType {
    /// `ClusterIP` (the default).
    ClusterIp,
    /// `NodePort`.
    NodePort,
    /// `LoadBalancer`: the only type ferrolb gives addresses to.
    LoadBalancer,
    /// `ExternalName`.
    ExternalName,
    /// Anything else, as written.
    Other(String),
}

/// `spec.externalTrafficPolicy`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum ExternalTrafficPolicy {
    /// Any node may forward to any endpoint (the default).
    Cluster,
    /// Only nodes with a local endpoint serve the traffic.
    Local,
}

/// `spec.ipFamilyPolicy`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum IpFamilyPolicy {
    /// One address, of the primary family (the default).
    SingleStack,
    /// Both families if possible, otherwise one.
    PreferDualStack,
    /// Both families, or nothing.
    RequireDualStack,
}

/// `spec.ports[].protocol`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub enum Protocol {
    /// TCP (the default).
    Tcp,
    /// UDP.
    Udp,
    /// SCTP.
    Sctp,
}

/// One port the Service exposes; two Services sharing an address must not both use one.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct PortKey {
    /// The protocol.
    pub protocol: Protocol,
    /// The port number.
    pub port: u16,
}

/// A Service's identity: namespace and name.
#[derive(Clone, Debug, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct ServiceKey {
    /// `metadata.namespace`.
    pub namespace: String,
    /// `metadata.name`.
    pub name: String,
}

impl ServiceKey {
    /// The key of `namespace/name`.
    pub fn new(namespace: impl Into<String>, name: impl Into<String>) -> ServiceKey {
        ServiceKey {
            namespace: namespace.into(),
            name: name.into(),
        }
    }
}

impl fmt::Display for ServiceKey {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}/{}", self.namespace, self.name)
    }
}

/// Which Services an installation handles, by `spec.loadBalancerClass`; the controller and every
/// speaker use the same flags, so they agree on it. Without a class only Services without one are
/// handled; with a class, Services of that class too, and only those when it is required
/// (`--require-load-balancer-class`, for a cluster where another implementation is the default).
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct ClassFilter {
    /// `--load-balancer-class`.
    pub class: Option<String>,
    /// `--require-load-balancer-class`: Services without a class are left to another
    /// implementation.
    pub require_class: bool,
}

impl ClassFilter {
    /// Services of `class` only.
    pub fn required(class: impl Into<String>) -> ClassFilter {
        ClassFilter {
            class: Some(class.into()),
            require_class: true,
        }
    }

    /// Whether a Service with this `spec.loadBalancerClass` is handled.
    pub fn handles(&self, service_class: Option<&str>) -> bool {
        match service_class {
            None => !self.require_class,
            Some(class) => self.class.as_deref() == Some(class),
        }
    }
}

/// A Service as ferrolb needs it.
#[derive(Debug, Clone, PartialEq)]
pub struct ServiceView {
    /// `metadata.namespace`.
    pub namespace: String,
    /// `metadata.name`.
    pub name: String,
    /// `metadata.labels`, matched by serviceSelectors.
    pub labels: BTreeMap<String, String>,
    /// `spec.type`.
    pub service_type: ServiceType,
    /// `spec.loadBalancerClass`.
    pub load_balancer_class: Option<String>,
    /// The pool asked for by annotation.
    pub requested_pool: Option<String>,
    /// Addresses asked for, by annotation or `spec.loadBalancerIP`; at most one per family.
    pub requested_ips: Vec<IpAddr>,
    /// The sharing key (`allow-shared-ip`); `None` when absent or empty.
    pub sharing_key: Option<String>,
    /// `spec.ports`, sorted.
    pub ports: Vec<PortKey>,
    /// `spec.externalTrafficPolicy`.
    pub external_traffic_policy: ExternalTrafficPolicy,
    /// `spec.selector`.
    pub selector: BTreeMap<String, String>,
    /// `spec.ipFamilyPolicy`.
    pub ip_family_policy: IpFamilyPolicy,
    /// `spec.ipFamilies`, primary first.
    pub ip_families: Vec<IpFamily>,
    /// `spec.clusterIPs` (empty for headless Services).
    pub cluster_ips: Vec<IpAddr>,
    /// `status.loadBalancer.ingress[].ip`: the addresses the Service currently has.
    pub ingress_ips: Vec<IpAddr>,
    /// Deprecated `metallb.universe.tf/*` annotations in use, for a warning Event.
    pub deprecated_annotations: Vec<String>,
}

/// A problem with a Service's ferrolb-relevant settings.
#[derive(Debug, Clone, PartialEq, Eq, Error)]
#[error("Service {service} {field}: {message}")]
pub struct ServiceError {
    /// `namespace/name`.
    pub service: String,
    /// `metadata.annotations[ferrolb.io/loadBalancerIPs]`, `spec.loadBalancerIP`, ...
    pub field: String,
    /// What is wrong.
    pub message: String,
}

impl ServiceView {
    /// Reads a Service, reporting every problem with its annotations and addresses.
    pub fn from_service(service: &Service) -> Result<ServiceView, Vec<ServiceError>> {
        let metadata = &service.metadata;
        let namespace = metadata
            .namespace
            .clone()
            .unwrap_or_else(|| "default".to_owned());
        let name = metadata.name.clone().unwrap_or_default();
        let mut reader = Reader {
            service: format!("{namespace}/{name}"),
            annotations: metadata.annotations.clone().unwrap_or_default(),
            errors: Vec::new(),
            deprecated: Vec::new(),
        };
        let spec = service.spec.clone().unwrap_or_default();

        let service_type = match spec.type_.as_deref() {
            None | Some("ClusterIP") => ServiceType::ClusterIp,
            Some("NodePort") => ServiceType::NodePort,
            Some("LoadBalancer") => ServiceType::LoadBalancer,
            Some("ExternalName") => ServiceType::ExternalName,
            Some(other) => ServiceType::Other(other.to_owned()),
        };

        let requested_pool = reader.annotation("address-pool").and_then(|(key, value)| {
            if value.trim().is_empty() {
                reader.error(annotation_field(&key), "the pool name is empty");
                None
            } else {
                Some(value)
            }
        });
        let sharing_key = reader
            .annotation("allow-shared-ip")
            .map(|(_, value)| value)
            .filter(|value| !value.is_empty());

        let cluster_ips: Vec<IpAddr> = spec
            .cluster_ips
            .iter()
            .flatten()
            .chain(spec.cluster_ip.iter())
            .filter_map(|text| text.parse().ok())
            .fold(Vec::new(), |mut unique, address| {
                if !unique.contains(&address) {
                    unique.push(address);
                }
                unique
            });
        let ip_families: Vec<IpFamily> = match &spec.ip_families {
            Some(families) => families
                .iter()
                .filter_map(|family| match family.as_str() {
                    "IPv4" => Some(IpFamily::V4),
                    "IPv6" => Some(IpFamily::V6),
                    _ => None,
                })
                .collect(),
            None => cluster_ips.iter().map(|ip| IpFamily::of(*ip)).collect(),
        };

        let requested_ips = reader.requested_ips(spec.load_balancer_ip.as_deref(), &ip_families);

        let mut ports: Vec<PortKey> = spec
            .ports
            .iter()
            .flatten()
            .enumerate()
            .filter_map(|(index, port)| {
                let protocol = match port.protocol.as_deref() {
                    None | Some("TCP") => Protocol::Tcp,
                    Some("UDP") => Protocol::Udp,
                    Some("SCTP") => Protocol::Sctp,
                    Some(other) => {
                        reader.error(
                            format!("spec.ports[{index}].protocol"),
                            format!("{other:?} is not a protocol; use TCP, UDP or SCTP"),
                        );
                        return None;
                    }
                };
                match u16::try_from(port.port) {
                    Ok(number) if number > 0 => Some(PortKey {
                        protocol,
                        port: number,
                    }),
                    _ => {
                        reader.error(
                            format!("spec.ports[{index}].port"),
                            format!("{} is not a port number (1-65535)", port.port),
                        );
                        None
                    }
                }
            })
            .collect();
        ports.sort();

        let external_traffic_policy = match spec.external_traffic_policy.as_deref() {
            Some("Local") => ExternalTrafficPolicy::Local,
            _ => ExternalTrafficPolicy::Cluster,
        };
        let ip_family_policy = match spec.ip_family_policy.as_deref() {
            Some("PreferDualStack") => IpFamilyPolicy::PreferDualStack,
            Some("RequireDualStack") => IpFamilyPolicy::RequireDualStack,
            _ => IpFamilyPolicy::SingleStack,
        };
        let ingress_ips = service
            .status
            .as_ref()
            .and_then(|status| status.load_balancer.as_ref())
            .and_then(|lb| lb.ingress.as_ref())
            .into_iter()
            .flatten()
            .filter_map(|ingress| ingress.ip.as_deref())
            .filter_map(|text| text.parse().ok())
            .collect();

        if !reader.errors.is_empty() {
            return Err(reader.errors);
        }
        Ok(ServiceView {
            namespace,
            name,
            labels: metadata.labels.clone().unwrap_or_default(),
            service_type,
            load_balancer_class: spec.load_balancer_class.clone(),
            requested_pool,
            requested_ips,
            sharing_key,
            ports,
            external_traffic_policy,
            selector: spec.selector.clone().unwrap_or_default(),
            ip_family_policy,
            ip_families,
            cluster_ips,
            ingress_ips,
            deprecated_annotations: reader.deprecated,
        })
    }

    /// The Service's identity.
    pub fn key(&self) -> ServiceKey {
        ServiceKey::new(self.namespace.clone(), self.name.clone())
    }

    /// Whether the Service is of type LoadBalancer.
    pub fn is_load_balancer(&self) -> bool {
        self.service_type == ServiceType::LoadBalancer
    }

    /// Whether the controller and speakers configured with `filter` handle this Service.
    pub fn is_handled_by(&self, filter: &ClassFilter) -> bool {
        filter.handles(self.load_balancer_class.as_deref())
    }

    /// Which backends the Service's traffic reaches. Two Services may share an address only with
    /// equal keys: with `externalTrafficPolicy: Cluster` every node forwards anywhere (key `""`);
    /// with `Local`, the node that attracts the traffic must serve both, so their selectors must
    /// be equal (key `k1=v1,k2=v2`).
    pub fn backend_key(&self) -> String {
        match self.external_traffic_policy {
            ExternalTrafficPolicy::Cluster => String::new(),
            ExternalTrafficPolicy::Local => self
                .selector
                .iter()
                .map(|(key, value)| format!("{key}={value}"))
                .collect::<Vec<_>>()
                .join(","),
        }
    }
}

impl fmt::Display for ServiceView {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}/{}", self.namespace, self.name)
    }
}

fn annotation_field(key: &str) -> String {
    format!("metadata.annotations[{key}]")
}

struct Reader {
    service: String,
    annotations: BTreeMap<String, String>,
    errors: Vec<ServiceError>,
    deprecated: Vec<String>,
}

impl Reader {
    fn error(&mut self, field: impl Into<String>, message: impl Into<String>) {
        self.errors.push(ServiceError {
            service: self.service.clone(),
            field: field.into(),
            message: message.into(),
        });
    }

    /// The value of annotation `<prefix>/<name>` with its key. ferrolb's own prefix wins over
    /// MetalLB's, so a Service can carry both while moving between the two. Between MetalLB's
    /// two prefixes there is no such intent, so different values are an error.
    fn annotation(&mut self, name: &str) -> Option<(String, String)> {
        let [ours, metallb, legacy] = ANNOTATION_PREFIXES.map(|prefix| {
            let key = format!("{prefix}{name}");
            let value = self.annotations.get(&key).cloned();
            value.map(|value| (key, value))
        });
        if let Some((key, _)) = &legacy {
            self.deprecated.push(key.clone());
        }
        if ours.is_some() {
            return ours;
        }
        match (metallb, legacy) {
            (Some((key, value)), Some((legacy_key, legacy_value))) if value != legacy_value => {
                self.error(
                    annotation_field(&key),
                    format!(
                        "{key} is {value:?} but {legacy_key} is {legacy_value:?}; remove one of \
                         them, or set ferrolb.io/{name}, which takes precedence"
                    ),
                );
                None
            }
            (Some(found), _) | (None, Some(found)) => Some(found),
            (None, None) => None,
        }
    }

    fn requested_ips(&mut self, spec_ip: Option<&str>, families: &[IpFamily]) -> Vec<IpAddr> {
        let mut requested = Vec::new();
        if let Some((key, value)) = self.annotation("loadBalancerIPs") {
            let field = annotation_field(&key);
            for text in value.split(',').map(str::trim).filter(|t| !t.is_empty()) {
                match text.parse::<IpAddr>() {
                    Ok(address) => {
                        if requested
                            .iter()
                            .any(|r: &IpAddr| IpFamily::of(*r) == IpFamily::of(address))
                        {
                            self.error(
                                field.clone(),
                                format!(
                                    "more than one {} address requested; give at most one per family",
                                    IpFamily::of(address)
                                ),
                            );
                        } else {
                            requested.push(address);
                        }
                    }
                    Err(_) => self.error(field.clone(), format!("{text:?} is not an IP address")),
                }
            }
            if let Some(spec_ip) = spec_ip.filter(|s| !s.is_empty()) {
                let agrees = spec_ip
                    .parse::<IpAddr>()
                    .is_ok_and(|address| requested == [address]);
                if !agrees {
                    self.error(
                        "spec.loadBalancerIP",
                        format!(
                            "spec.loadBalancerIP {spec_ip} and {key} {value:?} disagree; set only one"
                        ),
                    );
                }
            }
        } else if let Some(spec_ip) = spec_ip.filter(|s| !s.is_empty()) {
            match spec_ip.parse::<IpAddr>() {
                Ok(address) => requested.push(address),
                Err(_) => self.error(
                    "spec.loadBalancerIP",
                    format!("{spec_ip:?} is not an IP address"),
                ),
            }
        }
        if !families.is_empty() {
            for address in &requested {
                if !families.contains(&IpFamily::of(*address)) {
                    self.error(
                        "spec.ipFamilies",
                        format!(
                            "the requested address {address} is {}, which is not among the \
                             Service's ipFamilies",
                            IpFamily::of(*address)
                        ),
                    );
                }
            }
        }
        requested
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn service(yaml: &str) -> Service {
        serde_saphyr::from_str(yaml).unwrap()
    }

    fn view(yaml: &str) -> ServiceView {
        ServiceView::from_service(&service(yaml)).unwrap()
    }

    fn errors(yaml: &str) -> Vec<String> {
        ServiceView::from_service(&service(yaml))
            .unwrap_err()
            .iter()
            .map(ToString::to_string)
            .collect()
    }

    const WEB: &str = "
metadata:
  name: web
  namespace: shop
  labels: {tier: gold}
  annotations:
    metallb.universe.tf/address-pool: prod
    metallb.io/allow-shared-ip: web-key
spec:
  type: LoadBalancer
  externalTrafficPolicy: Local
  selector: {app: web, role: front}
  ipFamilyPolicy: PreferDualStack
  ipFamilies: [IPv6, IPv4]
  clusterIPs: ['fd00::10', 10.96.0.10]
  ports:
  - {port: 443, protocol: TCP}
  - {port: 53, protocol: UDP}
  - {port: 80}
status:
  loadBalancer:
    ingress: [{ip: 192.168.32.7}, {hostname: lb.example.com}]
";

    #[test]
    fn service_is_read_with_metallb_annotations() {
        let view = view(WEB);
        assert_eq!(view.to_string(), "shop/web");
        assert!(view.is_load_balancer());
        assert_eq!(view.requested_pool.as_deref(), Some("prod"));
        assert_eq!(view.sharing_key.as_deref(), Some("web-key"));
        assert_eq!(
            view.ports,
            [
                PortKey {
                    protocol: Protocol::Tcp,
                    port: 80
                },
                PortKey {
                    protocol: Protocol::Tcp,
                    port: 443
                },
                PortKey {
                    protocol: Protocol::Udp,
                    port: 53
                },
            ]
        );
        assert_eq!(view.external_traffic_policy, ExternalTrafficPolicy::Local);
        assert_eq!(view.backend_key(), "app=web,role=front");
        assert_eq!(view.ip_family_policy, IpFamilyPolicy::PreferDualStack);
        assert_eq!(view.ip_families, [IpFamily::V6, IpFamily::V4]);
        assert_eq!(
            view.ingress_ips,
            ["192.168.32.7".parse::<IpAddr>().unwrap()]
        );
        assert_eq!(
            view.deprecated_annotations,
            ["metallb.universe.tf/address-pool"]
        );
        assert!(view.is_handled_by(&ClassFilter::default()));
        assert!(!view.is_handled_by(&ClassFilter::required("ferrolb.io/lb")));
    }

    #[test]
    fn defaults_are_cluster_ip_cluster_policy_single_stack() {
        let view = view("metadata: {name: plain}\nspec: {clusterIP: 10.96.0.1}\n");
        assert_eq!(view.namespace, "default");
        assert_eq!(view.service_type, ServiceType::ClusterIp);
        assert_eq!(view.external_traffic_policy, ExternalTrafficPolicy::Cluster);
        assert_eq!(view.backend_key(), "");
        assert_eq!(view.ip_family_policy, IpFamilyPolicy::SingleStack);
        assert_eq!(view.ip_families, [IpFamily::V4]);
    }

    #[test]
    fn ferrolb_annotations_win_over_metallb_ones() {
        let view = view(
            "
metadata:
  name: web
  annotations:
    ferrolb.io/address-pool: new-pool
    metallb.io/address-pool: old-pool
    metallb.universe.tf/address-pool: older-pool
    ferrolb.io/loadBalancerIPs: 10.0.0.1
    metallb.io/loadBalancerIPs: 10.0.0.2
spec: {type: LoadBalancer}
",
        );
        assert_eq!(view.requested_pool.as_deref(), Some("new-pool"));
        assert_eq!(view.requested_ips, ["10.0.0.1".parse::<IpAddr>().unwrap()]);
    }

    #[test]
    fn conflicting_metallb_annotations_are_an_error() {
        assert_eq!(
            errors(
                "
metadata:
  name: web
  namespace: shop
  annotations:
    metallb.io/allow-shared-ip: a
    metallb.universe.tf/allow-shared-ip: b
spec: {type: LoadBalancer}
"
            ),
            [
                "Service shop/web metadata.annotations[metallb.io/allow-shared-ip]: \
              metallb.io/allow-shared-ip is \"a\" but metallb.universe.tf/allow-shared-ip is \"b\"; \
              remove one of them, or set ferrolb.io/allow-shared-ip, which takes precedence"
            ]
        );
    }

    #[test]
    fn requested_ips_are_one_per_family() {
        let view = view(
            "
metadata:
  name: web
  annotations: {ferrolb.io/loadBalancerIPs: '192.168.32.7, fc00::7'}
spec: {type: LoadBalancer, ipFamilies: [IPv4, IPv6]}
",
        );
        assert_eq!(
            view.requested_ips,
            [
                "192.168.32.7".parse::<IpAddr>().unwrap(),
                "fc00::7".parse().unwrap()
            ]
        );
        assert_eq!(
            errors(
                "
metadata:
  name: web
  annotations: {ferrolb.io/loadBalancerIPs: '10.0.0.1,10.0.0.2,nope'}
spec: {type: LoadBalancer}
"
            ),
            [
                "Service default/web metadata.annotations[ferrolb.io/loadBalancerIPs]: more than \
                 one IPv4 address requested; give at most one per family",
                "Service default/web metadata.annotations[ferrolb.io/loadBalancerIPs]: \"nope\" is \
                 not an IP address",
            ]
        );
    }

    #[test]
    fn annotation_and_spec_load_balancer_ip_must_agree() {
        assert_eq!(
            errors(
                "
metadata:
  name: web
  annotations: {metallb.io/loadBalancerIPs: 10.0.0.1}
spec: {type: LoadBalancer, loadBalancerIP: 10.0.0.2}
"
            ),
            [
                "Service default/web spec.loadBalancerIP: spec.loadBalancerIP 10.0.0.2 and \
              metallb.io/loadBalancerIPs \"10.0.0.1\" disagree; set only one"
            ]
        );
        let agreeing = view(
            "
metadata:
  name: web
  annotations: {metallb.io/loadBalancerIPs: 10.0.0.1}
spec: {type: LoadBalancer, loadBalancerIP: 10.0.0.1}
",
        );
        assert_eq!(
            agreeing.requested_ips,
            ["10.0.0.1".parse::<IpAddr>().unwrap()]
        );
    }

    #[test]
    fn spec_load_balancer_ip_alone_is_honoured() {
        let view =
            view("metadata: {name: web}\nspec: {type: LoadBalancer, loadBalancerIP: 10.0.0.9}\n");
        assert_eq!(view.requested_ips, ["10.0.0.9".parse::<IpAddr>().unwrap()]);
    }

    #[test]
    fn requested_address_must_match_the_service_families() {
        assert_eq!(
            errors(
                "
metadata: {name: web}
spec: {type: LoadBalancer, loadBalancerIP: 'fc00::1', ipFamilies: [IPv4]}
"
            ),
            [
                "Service default/web spec.ipFamilies: the requested address fc00::1 is IPv6, which is \
              not among the Service's ipFamilies"
            ]
        );
    }

    #[test]
    fn empty_pool_annotation_is_an_error_and_empty_sharing_key_means_none() {
        assert_eq!(
            errors(
                "
metadata:
  name: web
  annotations: {ferrolb.io/address-pool: ''}
spec: {type: LoadBalancer}
"
            ),
            [
                "Service default/web metadata.annotations[ferrolb.io/address-pool]: the pool name is empty"
            ]
        );
        let view = view(
            "metadata: {name: web, annotations: {ferrolb.io/allow-shared-ip: ''}}\nspec: {type: LoadBalancer}\n",
        );
        assert_eq!(view.sharing_key, None);
    }
}
