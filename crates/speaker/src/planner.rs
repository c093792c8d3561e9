//! The planner: which prefixes this node announces to which peer, with which attributes, and
//! why any Service is not announced. A pure function of the validated configuration, this
//! node, and the Services with their assigned addresses; no I/O and no clock, so every node
//! that sees the same inputs plans the same announcements.
//!
//! The rules are MetalLB's BGP advertisement semantics (`shared/reference/metallb.md` §3):
//! - a session runs on this node if the BGPPeer's `nodeSelectors` select it;
//! - a Service is announced through every BGPAdvertisement that applies to its pool (by name or
//!   pool selector; an advertisement naming no pool applies to all), selects this node
//!   (`nodeSelectors`) and the Service (`serviceSelectors`), to every session on this node the
//!   advertisement's `peers` allow (all when empty);
//! - the prefix is the address masked to the advertisement's aggregation length;
//! - the same prefix for the same peer from several Services or advertisements is announced
//!   once: communities and large communities are unioned, the first LOCAL_PREF wins
//!   (advertisements in name order, Services in namespace/name order);
//! - nothing is announced from a node excluded from load balancers, for a Service with no
//!   serving endpoint (externalTrafficPolicy Cluster), or from a node without a local serving
//!   endpoint (externalTrafficPolicy Local).
//!
//! It does not choose addresses (the allocator does) nor talk to routers (bgpd does).

use std::collections::{BTreeMap, BTreeSet};
use std::fmt;
use std::net::IpAddr;

use ferrolb_bgpd::RouteAttributes;
use ferrolb_bgpd::wire::{Community, LargeCommunity};
use ferrolb_model::CommunityValue;
use ferrolb_model::address::IpFamily;
use ferrolb_model::config::{BgpAdvertisement, Config, Peer};
use ipnet::IpNet;

/// The node label that keeps a node out of every announcement (as in Kubernetes and MetalLB).
pub const EXCLUDE_LABEL: &str = "node.kubernetes.io/exclude-from-external-load-balancers";

/// This node, as the planner sees it.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct Node {
    pub name: String,
    pub labels: BTreeMap<String, String>,
}

impl Node {
    pub fn excluded(&self) -> bool {
        self.labels.contains_key(EXCLUDE_LABEL)
    }
}

/// A Service's identity.
#[derive(Clone, Debug, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct ServiceKey {
    pub namespace: String,
    pub name: String,
}

impl ServiceKey {
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

/// Where a Service's backends can serve.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Endpoints {
    /// No endpoint information (a plain host configured from a folder): the Service is taken
    /// to be served on every node.
    Unknown,
    /// From EndpointSlices: the nodes with at least one serving endpoint.
    Known { serving_nodes: BTreeSet<String> },
}

/// A Service with its assigned addresses.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct ServiceInput {
    pub key: ServiceKey,
    pub labels: BTreeMap<String, String>,
    /// The assigned addresses (one per family); empty while the Service waits for one.
    pub addresses: Vec<IpAddr>,
    /// The pool the addresses come from.
    pub pool: Option<String>,
    /// `externalTrafficPolicy: Local`.
    pub local_traffic_policy: bool,
    pub endpoints: Endpoints,
    /// Why the Service has no address, when it has none.
    pub unassigned_reason: Option<String>,
}

/// Why a Service (or one advertisement of it) is not announced from this node.
#[derive(Clone, Debug, PartialEq, Eq, PartialOrd, Ord)]
pub enum Reason {
    NoAddress(String),
    NodeExcluded,
    NoServingEndpoints,
    NoLocalEndpoints,
    AddressInNoPool,
    NoAdvertisementForPool(String),
    AdvertisementSkipsNode(String),
    AdvertisementSkipsService(String),
    /// The advertisement allows none of the sessions that run on this node.
    AdvertisementHasNoSessionHere {
        advertisement: String,
        peers: Vec<String>,
    },
    NoSessionOnNode,
}

impl fmt::Display for Reason {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Reason::NoAddress(why) => write!(f, "no address assigned: {why}"),
            Reason::NodeExcluded => write!(f, "this node is excluded by the label {EXCLUDE_LABEL}"),
            Reason::NoServingEndpoints => f.write_str("the Service has no serving endpoint"),
            Reason::NoLocalEndpoints => {
                f.write_str("externalTrafficPolicy is Local and this node has no serving endpoint")
            }
            Reason::AddressInNoPool => f.write_str("the address is in no IPAddressPool"),
            Reason::NoAdvertisementForPool(pool) => {
                write!(f, "no BGPAdvertisement applies to IPAddressPool/{pool}")
            }
            Reason::AdvertisementSkipsNode(adv) => {
                write!(
                    f,
                    "BGPAdvertisement/{adv}: nodeSelectors do not select this node"
                )
            }
            Reason::AdvertisementSkipsService(adv) => {
                write!(
                    f,
                    "BGPAdvertisement/{adv}: serviceSelectors do not select the Service"
                )
            }
            Reason::AdvertisementHasNoSessionHere {
                advertisement,
                peers,
            } => write!(
                f,
                "BGPAdvertisement/{advertisement}: its peers ({}) have no session on this node",
                peers.join(", ")
            ),
            Reason::NoSessionOnNode => f.write_str("no BGPPeer has a session on this node"),
        }
    }
}

/// One route of one Service to one peer.
#[derive(Clone, Debug, PartialEq, Eq, PartialOrd, Ord)]
pub struct Announcement {
    pub peer: String,
    pub prefix: IpNet,
    pub advertisement: String,
}

/// What happens to one Service on this node.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct ServicePlan {
    pub addresses: Vec<IpAddr>,
    pub pool: Option<String>,
    pub announcements: Vec<Announcement>,
    /// Why it is not announced at all, or why some advertisements of it do not apply here.
    pub reasons: Vec<Reason>,
}

impl ServicePlan {
    pub fn is_announced(&self) -> bool {
        !self.announcements.is_empty()
    }
}

/// A session this node runs, with the routes it should carry.
#[derive(Clone, Debug, PartialEq)]
pub struct SessionPlan {
    pub peer: Peer,
    pub routes: BTreeMap<IpNet, RouteAttributes>,
}

/// Everything this node should announce.
#[derive(Clone, Debug, Default, PartialEq)]
pub struct Plan {
    /// Sessions on this node, by BGPPeer name.
    pub sessions: BTreeMap<String, SessionPlan>,
    /// BGPPeers with no session on this node, and why.
    pub skipped_peers: BTreeMap<String, String>,
    pub services: BTreeMap<ServiceKey, ServicePlan>,
}

impl Plan {
    /// The addresses announced to at least one peer: what `--bind-vips` puts on the host.
    pub fn announced_addresses(&self) -> BTreeSet<IpAddr> {
        self.services
            .values()
            .filter(|s| s.is_announced())
            .flat_map(|s| s.addresses.iter().copied())
            .collect()
    }
}

/// Plans this node's announcements.
pub fn plan_announcements(config: &Config, node: &Node, services: &[ServiceInput]) -> Plan {
    let mut plan = Plan::default();
    for peer in &config.peers {
        if peer.node_selectors.matches(&node.labels) {
            plan.sessions.insert(
                peer.name.clone(),
                SessionPlan {
                    peer: peer.clone(),
                    routes: BTreeMap::new(),
                },
            );
        } else {
            plan.skipped_peers.insert(
                peer.name.clone(),
                "nodeSelectors do not select this node".to_string(),
            );
        }
    }

    let mut ordered: Vec<&ServiceInput> = services.iter().collect();
    ordered.sort_by(|a, b| a.key.cmp(&b.key));
    let mut advertisements: Vec<&BgpAdvertisement> = config.bgp_advertisements.iter().collect();
    advertisements.sort_by(|a, b| a.name.cmp(&b.name));

    for service in ordered {
        let service_plan = plan_service(&advertisements, node, service, &mut plan.sessions);
        plan.services.insert(service.key.clone(), service_plan);
    }
    plan
}

fn plan_service(
    advertisements: &[&BgpAdvertisement],
    node: &Node,
    service: &ServiceInput,
    sessions: &mut BTreeMap<String, SessionPlan>,
) -> ServicePlan {
    let mut out = ServicePlan {
        addresses: service.addresses.clone(),
        pool: service.pool.clone(),
        ..ServicePlan::default()
    };
    if service.addresses.is_empty() {
        let why = service
            .unassigned_reason
            .clone()
            .unwrap_or_else(|| "pending".to_string());
        out.reasons.push(Reason::NoAddress(why));
        return out;
    }
    if node.excluded() {
        out.reasons.push(Reason::NodeExcluded);
        return out;
    }
    if let Endpoints::Known { serving_nodes } = &service.endpoints {
        if serving_nodes.is_empty() {
            out.reasons.push(Reason::NoServingEndpoints);
            return out;
        }
        if service.local_traffic_policy && !serving_nodes.contains(&node.name) {
            out.reasons.push(Reason::NoLocalEndpoints);
            return out;
        }
    }
    let Some(pool) = &service.pool else {
        out.reasons.push(Reason::AddressInNoPool);
        return out;
    };
    let applicable: Vec<&&BgpAdvertisement> = advertisements
        .iter()
        .filter(|a| a.applies_to_pool(pool))
        .collect();
    if applicable.is_empty() {
        out.reasons
            .push(Reason::NoAdvertisementForPool(pool.clone()));
        return out;
    }
    if sessions.is_empty() {
        out.reasons.push(Reason::NoSessionOnNode);
        return out;
    }
    for adv in applicable {
        if !adv.node_selectors.matches(&node.labels) {
            out.reasons
                .push(Reason::AdvertisementSkipsNode(adv.name.clone()));
            continue;
        }
        if !adv.service_selectors.matches(&service.labels) {
            out.reasons
                .push(Reason::AdvertisementSkipsService(adv.name.clone()));
            continue;
        }
        let targets: Vec<String> = sessions
            .keys()
            .filter(|peer| adv.applies_to_peer(peer))
            .cloned()
            .collect();
        if targets.is_empty() {
            out.reasons.push(Reason::AdvertisementHasNoSessionHere {
                advertisement: adv.name.clone(),
                peers: adv.peers.clone(),
            });
            continue;
        }
        let attrs = route_attributes(adv);
        for address in &service.addresses {
            let prefix = aggregate(*address, adv);
            for peer in &targets {
                if let Some(session) = sessions.get_mut(peer) {
                    merge(&mut session.routes, prefix, &attrs);
                }
                out.announcements.push(Announcement {
                    peer: peer.clone(),
                    prefix,
                    advertisement: adv.name.clone(),
                });
            }
        }
    }
    out.announcements.sort();
    out.announcements.dedup();
    out
}

/// The address masked to the advertisement's aggregation length for its family.
fn aggregate(address: IpAddr, adv: &BgpAdvertisement) -> IpNet {
    let (family, max) = match address {
        IpAddr::V4(_) => (IpFamily::V4, 32),
        IpAddr::V6(_) => (IpFamily::V6, 128),
    };
    let len = adv.aggregation_length(family).min(max);
    // `len` is at most the family's width, so this cannot fail; fall back to the host route.
    IpNet::new(address, len)
        .map(|n| n.trunc())
        .unwrap_or_else(|_| IpNet::from(address))
}

fn route_attributes(adv: &BgpAdvertisement) -> RouteAttributes {
    let communities = adv.communities.iter().filter_map(|c| match c {
        CommunityValue::Standard(s) => Some(Community(s.0)),
        CommunityValue::Large(_) => None,
    });
    let large = adv.communities.iter().filter_map(|c| match c {
        CommunityValue::Large(l) => Some(LargeCommunity {
            global_admin: l.global,
            local_data1: l.local1,
            local_data2: l.local2,
        }),
        CommunityValue::Standard(_) => None,
    });
    RouteAttributes::new(adv.local_pref, None, communities, large)
}

/// One prefix, several sources: communities are unioned, the first LOCAL_PREF stays.
fn merge(routes: &mut BTreeMap<IpNet, RouteAttributes>, prefix: IpNet, attrs: &RouteAttributes) {
    match routes.get_mut(&prefix) {
        None => {
            routes.insert(prefix, attrs.clone());
        }
        Some(existing) => {
            *existing = RouteAttributes::new(
                existing.local_pref.or(attrs.local_pref),
                existing.med.or(attrs.med),
                existing
                    .communities
                    .iter()
                    .chain(&attrs.communities)
                    .copied(),
                existing
                    .large_communities
                    .iter()
                    .chain(&attrs.large_communities)
                    .copied(),
            );
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use ferrolb_model::Resources;
    use ferrolb_model::load::{decode_object, split_documents};

    /// Builds a Config from YAML the way the config folder is read.
    fn config(yaml: &str) -> Config {
        let mut resources = Resources::default();
        for doc in split_documents(yaml) {
            let value = doc.parse().expect("yaml");
            resources.add(decode_object(&value).expect("resource"));
        }
        Config::build(&resources).unwrap_or_else(|e| panic!("{e:?}"))
    }

    const BASE: &str = r#"
apiVersion: ferrolb.io/v1beta1
kind: IPAddressPool
metadata: {name: public, namespace: ferrolb}
spec: {addresses: [203.0.113.0/24, "2001:db8:ff::/64"]}
---
apiVersion: ferrolb.io/v1beta1
kind: BGPPeer
metadata: {name: tor-a, namespace: ferrolb}
spec: {myASN: 4200000000, peerASN: 64500, peerAddress: 192.0.2.1}
---
apiVersion: ferrolb.io/v1beta1
kind: BGPPeer
metadata: {name: tor-b, namespace: ferrolb}
spec:
  myASN: 4200000000
  peerASN: 64501
  peerAddress: 192.0.2.2
  nodeSelectors: [{matchLabels: {rack: b}}]
"#;

    fn with(extra: &str) -> Config {
        config(&format!("{BASE}---\n{extra}"))
    }

    fn node(name: &str, labels: &[(&str, &str)]) -> Node {
        Node {
            name: name.into(),
            labels: labels
                .iter()
                .map(|(k, v)| (k.to_string(), v.to_string()))
                .collect(),
        }
    }

    fn service(name: &str, addresses: &[&str]) -> ServiceInput {
        ServiceInput {
            key: ServiceKey::new("shop", name),
            labels: BTreeMap::from([("app".to_string(), name.to_string())]),
            addresses: addresses.iter().map(|a| a.parse().unwrap()).collect(),
            pool: Some("public".into()),
            local_traffic_policy: false,
            endpoints: Endpoints::Unknown,
            unassigned_reason: None,
        }
    }

    fn net(s: &str) -> IpNet {
        s.parse().unwrap()
    }

    const ALL_POOLS: &str = "apiVersion: ferrolb.io/v1beta1\nkind: BGPAdvertisement\nmetadata: {name: all, namespace: ferrolb}\nspec: {communities: [\"64500:100\"]}\n";

    #[test]
    fn peer_runs_only_on_nodes_its_selectors_select() {
        let plan = plan_announcements(&with(ALL_POOLS), &node("n1", &[]), &[]);
        assert_eq!(plan.sessions.keys().collect::<Vec<_>>(), vec!["tor-a"]);
        assert_eq!(
            plan.skipped_peers["tor-b"],
            "nodeSelectors do not select this node"
        );
        let plan = plan_announcements(&with(ALL_POOLS), &node("n2", &[("rack", "b")]), &[]);
        assert_eq!(
            plan.sessions.keys().collect::<Vec<_>>(),
            vec!["tor-a", "tor-b"]
        );
    }

    #[test]
    fn advertisement_without_pools_announces_host_routes_of_both_families_to_every_session() {
        let plan = plan_announcements(
            &with(ALL_POOLS),
            &node("n2", &[("rack", "b")]),
            &[service("web", &["203.0.113.10", "2001:db8:ff::10"])],
        );
        for peer in ["tor-a", "tor-b"] {
            let routes = &plan.sessions[peer].routes;
            assert_eq!(
                routes.keys().copied().collect::<Vec<_>>(),
                vec![net("203.0.113.10/32"), net("2001:db8:ff::10/128")]
            );
            assert_eq!(
                routes[&net("203.0.113.10/32")].communities,
                vec![Community(64500 << 16 | 100)]
            );
        }
        let web = &plan.services[&ServiceKey::new("shop", "web")];
        assert!(web.is_announced());
        assert_eq!(web.announcements.len(), 4);
        assert!(web.reasons.is_empty());
        assert_eq!(plan.announced_addresses().len(), 2);
    }

    #[test]
    fn aggregation_length_announces_the_covering_prefix_once_for_many_services() {
        let cfg = with(
            "apiVersion: ferrolb.io/v1beta1\nkind: BGPAdvertisement\nmetadata: {name: host, namespace: ferrolb}\nspec: {localPref: 100, communities: [\"65535:65282\"]}\n---\napiVersion: ferrolb.io/v1beta1\nkind: BGPAdvertisement\nmetadata: {name: summary, namespace: ferrolb}\nspec: {aggregationLength: 24, aggregationLengthV6: 64}\n",
        );
        let plan = plan_announcements(
            &cfg,
            &node("n1", &[]),
            &[
                service("a", &["203.0.113.10"]),
                service("b", &["203.0.113.11"]),
            ],
        );
        let routes = &plan.sessions["tor-a"].routes;
        assert_eq!(
            routes.keys().copied().collect::<Vec<_>>(),
            vec![
                net("203.0.113.0/24"),
                net("203.0.113.10/32"),
                net("203.0.113.11/32")
            ]
        );
        assert_eq!(routes[&net("203.0.113.10/32")].local_pref, Some(100));
        assert_eq!(
            routes[&net("203.0.113.10/32")].communities,
            vec![Community::NO_ADVERTISE]
        );
        assert_eq!(routes[&net("203.0.113.0/24")], RouteAttributes::default());
    }

    #[test]
    fn same_prefix_from_two_advertisements_unions_communities_and_keeps_the_first_local_pref() {
        let cfg = with(
            "apiVersion: ferrolb.io/v1beta1\nkind: BGPAdvertisement\nmetadata: {name: a-first, namespace: ferrolb}\nspec: {localPref: 200, communities: [\"64500:1\", \"large:4200000000:1:1\"]}\n---\napiVersion: ferrolb.io/v1beta1\nkind: BGPAdvertisement\nmetadata: {name: b-second, namespace: ferrolb}\nspec: {communities: [\"64500:2\"], peers: [tor-a]}\n",
        );
        let plan = plan_announcements(&cfg, &node("n1", &[]), &[service("web", &["203.0.113.10"])]);
        let attrs = &plan.sessions["tor-a"].routes[&net("203.0.113.10/32")];
        assert_eq!(attrs.local_pref, Some(200));
        assert_eq!(
            attrs.communities,
            vec![Community(64500 << 16 | 1), Community(64500 << 16 | 2)]
        );
        assert_eq!(
            attrs.large_communities,
            vec![LargeCommunity {
                global_admin: 4_200_000_000,
                local_data1: 1,
                local_data2: 1
            }]
        );
    }

    #[test]
    fn peers_restriction_limits_which_sessions_get_the_route() {
        let cfg = with(
            "apiVersion: ferrolb.io/v1beta1\nkind: BGPAdvertisement\nmetadata: {name: only-b, namespace: ferrolb}\nspec: {peers: [tor-b]}\n",
        );
        let on_b = plan_announcements(
            &cfg,
            &node("n2", &[("rack", "b")]),
            &[service("web", &["203.0.113.10"])],
        );
        assert!(on_b.sessions["tor-a"].routes.is_empty());
        assert_eq!(on_b.sessions["tor-b"].routes.len(), 1);
        let elsewhere =
            plan_announcements(&cfg, &node("n1", &[]), &[service("web", &["203.0.113.10"])]);
        let web = &elsewhere.services[&ServiceKey::new("shop", "web")];
        assert!(!web.is_announced());
        assert_eq!(
            web.reasons,
            vec![Reason::AdvertisementHasNoSessionHere {
                advertisement: "only-b".into(),
                peers: vec!["tor-b".into()]
            }]
        );
        assert_eq!(
            web.reasons[0].to_string(),
            "BGPAdvertisement/only-b: its peers (tor-b) have no session on this node"
        );
    }

    #[test]
    fn advertisement_node_selectors_decide_which_nodes_announce() {
        let cfg = with(
            "apiVersion: ferrolb.io/v1beta1\nkind: BGPAdvertisement\nmetadata: {name: edge, namespace: ferrolb}\nspec: {nodeSelectors: [{matchLabels: {role: edge}}]}\n",
        );
        let svc = [service("web", &["203.0.113.10"])];
        let edge = plan_announcements(&cfg, &node("n1", &[("role", "edge")]), &svc);
        assert_eq!(edge.sessions["tor-a"].routes.len(), 1);
        let other = plan_announcements(&cfg, &node("n3", &[]), &svc);
        assert_eq!(
            other.services[&ServiceKey::new("shop", "web")].reasons,
            vec![Reason::AdvertisementSkipsNode("edge".into())]
        );
        assert_eq!(
            Reason::AdvertisementSkipsNode("edge".into()).to_string(),
            "BGPAdvertisement/edge: nodeSelectors do not select this node"
        );
    }

    #[test]
    fn service_selectors_decide_which_services_an_advertisement_carries() {
        let cfg = with(
            "apiVersion: ferrolb.io/v1beta1\nkind: BGPAdvertisement\nmetadata: {name: web-only, namespace: ferrolb}\nspec: {serviceSelectors: [{matchLabels: {app: web}}]}\n",
        );
        let plan = plan_announcements(
            &cfg,
            &node("n1", &[]),
            &[
                service("web", &["203.0.113.10"]),
                service("db", &["203.0.113.11"]),
            ],
        );
        assert_eq!(
            plan.sessions["tor-a"]
                .routes
                .keys()
                .copied()
                .collect::<Vec<_>>(),
            vec![net("203.0.113.10/32")]
        );
        assert_eq!(
            plan.services[&ServiceKey::new("shop", "db")].reasons,
            vec![Reason::AdvertisementSkipsService("web-only".into())]
        );
    }

    #[test]
    fn advertisement_for_another_pool_does_not_announce_and_says_so() {
        let cfg = config(&format!(
            "{BASE}---\napiVersion: ferrolb.io/v1beta1\nkind: IPAddressPool\nmetadata: {{name: private, namespace: ferrolb}}\nspec: {{addresses: [198.51.100.0/24]}}\n---\napiVersion: ferrolb.io/v1beta1\nkind: BGPAdvertisement\nmetadata: {{name: private-only, namespace: ferrolb}}\nspec: {{ipAddressPools: [private]}}\n"
        ));
        let plan = plan_announcements(&cfg, &node("n1", &[]), &[service("web", &["203.0.113.10"])]);
        let web = &plan.services[&ServiceKey::new("shop", "web")];
        assert_eq!(
            web.reasons,
            vec![Reason::NoAdvertisementForPool("public".into())]
        );
        assert_eq!(
            web.reasons[0].to_string(),
            "no BGPAdvertisement applies to IPAddressPool/public"
        );
    }

    #[test]
    fn excluded_node_announces_nothing() {
        let plan = plan_announcements(
            &with(ALL_POOLS),
            &node("n1", &[(EXCLUDE_LABEL, "")]),
            &[service("web", &["203.0.113.10"])],
        );
        assert!(plan.sessions["tor-a"].routes.is_empty());
        assert_eq!(
            plan.services[&ServiceKey::new("shop", "web")].reasons,
            vec![Reason::NodeExcluded]
        );
    }

    #[test]
    fn service_without_an_address_reports_the_allocators_reason() {
        let mut svc = service("web", &[]);
        svc.unassigned_reason = Some("IPAddressPool/public is full".into());
        let plan = plan_announcements(&with(ALL_POOLS), &node("n1", &[]), &[svc]);
        let reasons = &plan.services[&ServiceKey::new("shop", "web")].reasons;
        assert_eq!(
            reasons[0].to_string(),
            "no address assigned: IPAddressPool/public is full"
        );
    }

    #[test]
    fn cluster_policy_needs_a_serving_endpoint_somewhere_and_local_policy_one_on_this_node() {
        let mut cluster = service("a", &["203.0.113.10"]);
        cluster.endpoints = Endpoints::Known {
            serving_nodes: BTreeSet::new(),
        };
        let mut local_elsewhere = service("b", &["203.0.113.11"]);
        local_elsewhere.local_traffic_policy = true;
        local_elsewhere.endpoints = Endpoints::Known {
            serving_nodes: BTreeSet::from(["n2".to_string()]),
        };
        let mut local_here = service("c", &["203.0.113.12"]);
        local_here.local_traffic_policy = true;
        local_here.endpoints = Endpoints::Known {
            serving_nodes: BTreeSet::from(["n1".to_string()]),
        };
        let mut cluster_elsewhere = service("d", &["203.0.113.13"]);
        cluster_elsewhere.endpoints = Endpoints::Known {
            serving_nodes: BTreeSet::from(["n2".to_string()]),
        };
        let plan = plan_announcements(
            &with(ALL_POOLS),
            &node("n1", &[]),
            &[cluster, local_elsewhere, local_here, cluster_elsewhere],
        );
        let reasons = |n: &str| plan.services[&ServiceKey::new("shop", n)].reasons.clone();
        assert_eq!(reasons("a"), vec![Reason::NoServingEndpoints]);
        assert_eq!(reasons("b"), vec![Reason::NoLocalEndpoints]);
        assert!(reasons("c").is_empty());
        assert!(
            reasons("d").is_empty(),
            "Cluster policy: any serving node will do"
        );
        assert_eq!(
            plan.sessions["tor-a"]
                .routes
                .keys()
                .copied()
                .collect::<Vec<_>>(),
            vec![net("203.0.113.12/32"), net("203.0.113.13/32")]
        );
    }

    #[test]
    fn no_session_on_this_node_is_a_reason() {
        let cfg = config(
            "apiVersion: ferrolb.io/v1beta1\nkind: IPAddressPool\nmetadata: {name: public, namespace: ferrolb}\nspec: {addresses: [203.0.113.0/24]}\n---\napiVersion: ferrolb.io/v1beta1\nkind: BGPAdvertisement\nmetadata: {name: all, namespace: ferrolb}\n",
        );
        let plan = plan_announcements(&cfg, &node("n1", &[]), &[service("web", &["203.0.113.10"])]);
        assert_eq!(
            plan.services[&ServiceKey::new("shop", "web")].reasons,
            vec![Reason::NoSessionOnNode]
        );
    }

    #[test]
    fn plan_does_not_depend_on_the_order_of_services() {
        let cfg = with(
            "apiVersion: ferrolb.io/v1beta1\nkind: BGPAdvertisement\nmetadata: {name: a, namespace: ferrolb}\nspec: {aggregationLength: 24, localPref: 10}\n---\napiVersion: ferrolb.io/v1beta1\nkind: BGPAdvertisement\nmetadata: {name: b, namespace: ferrolb}\nspec: {aggregationLength: 24, communities: [\"64500:2\"]}\n",
        );
        let svcs = vec![
            service("x", &["203.0.113.1"]),
            service("y", &["203.0.113.2"]),
        ];
        let mut reversed = svcs.clone();
        reversed.reverse();
        let n = node("n1", &[]);
        assert_eq!(
            plan_announcements(&cfg, &n, &svcs),
            plan_announcements(&cfg, &n, &reversed)
        );
    }
}
