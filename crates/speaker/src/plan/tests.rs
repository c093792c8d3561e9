//! Tests of the planner, common eligibility and BGP expansion alike.

use super::*;
use ferrolb_bgpd::rib_out::RouteAttributes;
use ferrolb_bgpd::wire::{Community, LargeCommunity};
use ferrolb_model::Resources;
use ferrolb_model::config::Config;
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
    assert_eq!(plan.bgp.sessions.keys().collect::<Vec<_>>(), vec!["tor-a"]);
    assert_eq!(plan.bgp.skipped_peers["tor-b"], PeerSkip::NodeNotSelected);
    assert_eq!(
        plan.bgp.skipped_peers["tor-b"].to_string(),
        "nodeSelectors do not select this node"
    );
    let plan = plan_announcements(&with(ALL_POOLS), &node("n2", &[("rack", "b")]), &[]);
    assert_eq!(
        plan.bgp.sessions.keys().collect::<Vec<_>>(),
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
        let routes = &plan.bgp.sessions[peer].routes;
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
    let routes = &plan.bgp.sessions["tor-a"].routes;
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
    let attrs = &plan.bgp.sessions["tor-a"].routes[&net("203.0.113.10/32")];
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
    assert!(on_b.bgp.sessions["tor-a"].routes.is_empty());
    assert_eq!(on_b.bgp.sessions["tor-b"].routes.len(), 1);
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
    assert_eq!(edge.bgp.sessions["tor-a"].routes.len(), 1);
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
        plan.bgp.sessions["tor-a"]
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
        "no BGPAdvertisement or L2Advertisement applies to IPAddressPool/public"
    );
}

#[test]
fn excluded_node_announces_nothing() {
    let plan = plan_announcements(
        &with(ALL_POOLS),
        &node("n1", &[(EXCLUDE_LABEL, "")]),
        &[service("web", &["203.0.113.10"])],
    );
    assert!(plan.bgp.sessions["tor-a"].routes.is_empty());
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
        plan.bgp.sessions["tor-a"]
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

// Layer 2

const L2: &str = r#"
apiVersion: ferrolb.io/v1beta1
kind: L2Advertisement
metadata: {name: lan, namespace: ferrolb}
spec: {ipAddressPools: [public]}
"#;

#[test]
fn services_sharing_an_address_form_one_group_keyed_by_the_lowest_address() {
    let config = with(L2);
    // b shares 203.0.113.5 with a, c shares 2001:db8:ff::9 with b: one group of three.
    let services = [
        service("a", &["203.0.113.5"]),
        service("b", &["203.0.113.5", "2001:db8:ff::9"]),
        service("c", &["2001:db8:ff::9"]),
        service("d", &["203.0.113.7"]),
    ];
    let plan = plan_announcements(&config, &node("n1", &[]), &services);
    let keys: Vec<String> = plan.l2.groups.keys().map(ToString::to_string).collect();
    assert_eq!(keys, ["203.0.113.5", "203.0.113.7"]);
    let shared = &plan.l2.groups[&"203.0.113.5".parse::<IpAddr>().unwrap()];
    assert_eq!(shared.services.len(), 3);
    assert_eq!(shared.addresses.len(), 2);
    assert!(plan.services.values().all(|s| s.l2_group.is_some()));
}

#[test]
fn a_pool_with_only_an_l2_advertisement_is_announced_without_bgp_reasons() {
    let plan = plan_announcements(
        &with(L2),
        &node("n1", &[]),
        &[service("web", &["203.0.113.5"])],
    );
    let web = &plan.services[&ServiceKey::new("shop", "web")];
    assert!(web.is_announced());
    assert!(!web.is_announced_by_bgp());
    assert!(web.reasons.is_empty(), "{:?}", web.reasons);
    assert!(plan.announced_addresses().is_empty(), "BGP addresses only");
    assert_eq!(plan.l2.eligible_addresses().len(), 1);
}

#[test]
fn an_excluded_node_forms_the_group_but_is_not_eligible() {
    let excluded = node("n1", &[(EXCLUDE_LABEL, "")]);
    let plan = plan_announcements(&with(L2), &excluded, &[service("web", &["203.0.113.5"])]);
    assert_eq!(plan.l2.groups.len(), 1);
    assert!(!plan.l2.is_used());
    let web = &plan.services[&ServiceKey::new("shop", "web")];
    assert_eq!(web.reasons, [Reason::NodeExcluded]);
    assert_eq!(web.l2_group, None);
}

fn group(addresses: &[&str], interfaces: L2Interfaces) -> L2GroupPlan {
    L2GroupPlan {
        addresses: addresses.iter().map(|a| a.parse().unwrap()).collect(),
        services: BTreeSet::new(),
        advertisements: BTreeSet::new(),
        eligible: true,
        interfaces,
    }
}

fn local(name: &str, subnets: &[&str]) -> LocalInterface {
    LocalInterface {
        name: name.into(),
        subnets: subnets.iter().map(|s| s.parse().unwrap()).collect(),
    }
}

#[test]
fn any_interface_means_the_one_whose_subnet_holds_the_address() {
    let host = [
        local("eth0", &["192.0.2.0/24"]),
        local("eth1", &["198.18.0.0/24"]),
    ];
    let g = group(&["198.18.0.200"], L2Interfaces::Any);
    assert_eq!(choose_interface(&g, &host), Ok("eth1".to_string()));
    let outside = group(&["203.0.113.5"], L2Interfaces::Any);
    assert_eq!(
        choose_interface(&outside, &host),
        Err(NoInterface::NoSubnet {
            address: "203.0.113.5".parse().unwrap()
        })
    );
}

#[test]
fn listed_interfaces_prefer_the_subnet_then_the_first_existing_one() {
    let host = [
        local("eth0", &["192.0.2.0/24"]),
        local("eth1", &["198.18.0.0/24"]),
    ];
    let listed =
        |names: &[&str]| L2Interfaces::Listed(names.iter().map(|n| n.to_string()).collect());
    let g = group(&["198.18.0.200"], listed(&["eth0", "eth1"]));
    assert_eq!(choose_interface(&g, &host), Ok("eth1".to_string()));
    let g = group(&["203.0.113.5"], listed(&["eth0", "eth9"]));
    assert_eq!(choose_interface(&g, &host), Ok("eth0".to_string()));
    let g = group(&["203.0.113.5"], listed(&["eth9"]));
    assert_eq!(
        choose_interface(&g, &host),
        Err(NoInterface::ListedMissing {
            listed: vec!["eth9".to_string()]
        })
    );
}
