//! `BGPAdvertisement`: how the addresses of some pools are announced over BGP (prefix length,
//! attributes, which peers, from which nodes, for which Services). Same fields, names and
//! defaults as MetalLB's `metallb.io/v1beta1` BGPAdvertisement.

use k8s_openapi::apimachinery::pkg::apis::meta::v1::LabelSelector;
use kube::CustomResource;
use kube::KubeSchema;
use serde::{Deserialize, Serialize};

/// CEL: every entry is `A:B`, `large:A:B:C` or a name (well-known or a Community alias).
pub const COMMUNITIES_RULE: &str = concat!("self.all(c, ", is_community_or_alias!("c"), ")");

/// CEL: serviceSelectors would make the announced prefix depend on which Services exist, which
/// only works when each Service has its own prefix, i.e. without aggregation.
pub const SERVICE_SELECTORS_NEED_HOST_ROUTES_RULE: &str = "!has(self.serviceSelectors) || \
     size(self.serviceSelectors) == 0 || \
     ((!has(self.aggregationLength) || self.aggregationLength == 32) && \
     (!has(self.aggregationLengthV6) || self.aggregationLengthV6 == 128))";

/// Announces the addresses of some pools over BGP.
// Each `printcolumn(...)` repeats `type_ = ...`, which clippy takes for a duplicated attribute.
#[allow(clippy::duplicated_attributes)]
#[derive(CustomResource, KubeSchema, Serialize, Deserialize, Clone, Debug, PartialEq, Default)]
#[kube(
    group = "ferrolb.io",
    version = "v1beta1",
    kind = "BGPAdvertisement",
    namespaced,
    shortname = "flbgpadv",
    category = "ferrolb",
    derive = "PartialEq",
    derive = "Default",
    doc = "BGPAdvertisement says how the addresses of some pools are announced over BGP.",
    printcolumn(name = "Pools", type_ = "string", json_path = ".spec.ipAddressPools"),
    printcolumn(name = "Peers", type_ = "string", json_path = ".spec.peers"),
    printcolumn(
        name = "Age",
        type_ = "date",
        json_path = ".metadata.creationTimestamp"
    )
)]
#[x_kube(validation = Rule::new(SERVICE_SELECTORS_NEED_HOST_ROUTES_RULE)
    .message("serviceSelectors can only be used with aggregationLength 32 and aggregationLengthV6 128")
    .field_path(".serviceSelectors"))]
#[serde(rename_all = "camelCase")]
pub struct BGPAdvertisementSpec {
    /// The prefix length announced for an IPv4 Service address: 32 announces the address alone,
    /// shorter lengths announce the covering prefix (one route for many Services). 1-32,
    /// default 32. Must not be shorter than any CIDR of the pools it applies to.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[schemars(range(min = 1, max = 32), extend("default" = 32))]
    pub aggregation_length: Option<i32>,

    /// The same for IPv6 Service addresses. 1-128, default 128.
    #[serde(
        rename = "aggregationLengthV6",
        default,
        skip_serializing_if = "Option::is_none"
    )]
    #[schemars(range(min = 1, max = 128), extend("default" = 128))]
    pub aggregation_length_v6: Option<i32>,

    /// The LOCAL_PREF attribute of the announced routes (sent to iBGP peers only, as RFC 4271
    /// requires). Unset: no LOCAL_PREF is set by this advertisement.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub local_pref: Option<u32>,

    /// Communities attached to the routes: `A:B`, `large:A:B:C`, a well-known name
    /// (`no-export`, `no-advertise`, `graceful-shutdown`, ...) or an alias from a Community
    /// object.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    #[schemars(length(max = 64), inner(length(max = 64)))]
    #[schemars(extend("x-kubernetes-list-type" = "set"))]
    #[x_kube(validation = Rule::new(COMMUNITIES_RULE).message(
        "each community must be A:B (16-bit numbers), large:A:B:C (32-bit numbers), a well-known name or a Community alias"
    ))]
    pub communities: Vec<String>,

    /// Names of the pools this advertisement applies to. With ipAddressPoolSelectors also
    /// empty: every pool.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    #[schemars(extend("x-kubernetes-list-type" = "set"))]
    pub ip_address_pools: Vec<String>,

    /// Pools, by label, this advertisement applies to (in addition to ipAddressPools).
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub ip_address_pool_selectors: Vec<LabelSelector>,

    /// Nodes that announce (and so receive the traffic). Empty: every node with a session.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub node_selectors: Vec<LabelSelector>,

    /// Names of the BGPPeers to announce to. Empty: every peer.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    #[schemars(extend("x-kubernetes-list-type" = "set"))]
    pub peers: Vec<String>,

    /// Services, by label, this advertisement applies to. Empty: every Service. Only with
    /// aggregationLength 32 and aggregationLengthV6 128.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub service_selectors: Vec<LabelSelector>,
}
