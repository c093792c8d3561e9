//! `L2Advertisement`: which pools are answered for with ARP/NDP (layer 2), from which nodes and
//! interfaces, for which Services. Same fields, names and defaults as MetalLB's
//! `metallb.io/v1beta1` L2Advertisement.

use k8s_openapi::apimachinery::pkg::apis::meta::v1::LabelSelector;
use kube::CustomResource;
use kube::KubeSchema;
use serde::{Deserialize, Serialize};

/// Announces the addresses of some pools on the local network with ARP (IPv4) and NDP (IPv6).
// Each `printcolumn(...)` repeats `type_ = ...`, which clippy takes for a duplicated attribute.
#[allow(clippy::duplicated_attributes)]
#[derive(CustomResource, KubeSchema, Serialize, Deserialize, Clone, Debug, PartialEq, Default)]
#[kube(
    group = "ferrolb.io",
    version = "v1beta1",
    kind = "L2Advertisement",
    namespaced,
    shortname = "fll2adv",
    category = "ferrolb",
    derive = "PartialEq",
    derive = "Default",
    doc = "L2Advertisement says which pools are announced with ARP/NDP, and from where.",
    printcolumn(name = "Pools", type_ = "string", json_path = ".spec.ipAddressPools"),
    printcolumn(name = "Interfaces", type_ = "string", json_path = ".spec.interfaces"),
    printcolumn(
        name = "Age",
        type_ = "date",
        json_path = ".metadata.creationTimestamp"
    )
)]
#[serde(rename_all = "camelCase")]
pub struct L2AdvertisementSpec {
    /// Names of the pools this advertisement applies to. With ipAddressPoolSelectors also
    /// empty: every pool.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    #[schemars(extend("x-kubernetes-list-type" = "set"))]
    pub ip_address_pools: Vec<String>,

    /// Pools, by label, this advertisement applies to (in addition to ipAddressPools).
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub ip_address_pool_selectors: Vec<LabelSelector>,

    /// Nodes that may answer for the addresses. Empty: every node.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub node_selectors: Vec<LabelSelector>,

    /// Interfaces to answer and announce on. Empty: every eligible interface.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    #[schemars(inner(length(min = 1, max = 15)))]
    #[schemars(extend("x-kubernetes-list-type" = "set"))]
    pub interfaces: Vec<String>,

    /// Services, by label, this advertisement applies to. Empty: every Service.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub service_selectors: Vec<LabelSelector>,

    /// Soft preferences among the eligible nodes when electing the node that answers. Weights
    /// of matching selectors add up; the highest total wins.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub preferred_node_selectors: Vec<PreferredNodeSelector>,
}

/// A weighted node preference.
#[derive(KubeSchema, Serialize, Deserialize, Clone, Debug, PartialEq, Default)]
#[serde(rename_all = "camelCase")]
pub struct PreferredNodeSelector {
    /// 1-100.
    #[schemars(range(min = 1, max = 100))]
    pub weight: i32,
    /// The nodes that get the weight.
    pub preference: LabelSelector,
}
