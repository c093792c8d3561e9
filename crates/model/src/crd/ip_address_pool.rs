//! `IPAddressPool`: the addresses ferrolb may hand out to `LoadBalancer` Services, and which
//! Services may get them. Same fields, names and defaults as MetalLB's `metallb.io/v1beta1`
//! IPAddressPool; the status reports exact counts.

use k8s_openapi::apimachinery::pkg::apis::meta::v1::{Condition, LabelSelector};
use kube::CustomResource;
use kube::KubeSchema;
use schemars::JsonSchema;
use serde::{Deserialize, Serialize};

use super::AddressCount;

/// CEL: every entry is a CIDR without host bits or a range whose two ends are addresses of one
/// family. That the start is not after the end needs address ordering, which Kubernetes CEL
/// lacks; `Config::build` checks it (and everything else here) again.
pub const ADDRESSES_RULE: &str = "self.all(a, isCIDR(a) ? cidr(a) == cidr(a).masked() : \
     (a.split('-').size() == 2 && isIP(a.split('-')[0].trim()) && isIP(a.split('-')[1].trim()) \
     && ip(a.split('-')[0].trim()).family() == ip(a.split('-')[1].trim()).family()))";

/// A pool of addresses for `LoadBalancer` Services.
// Each `printcolumn(...)` repeats `type_ = ...`, which clippy takes for a duplicated attribute.
#[allow(clippy::duplicated_attributes)]
#[derive(CustomResource, KubeSchema, Serialize, Deserialize, Clone, Debug, PartialEq, Default)]
#[kube(
    group = "ferrolb.io",
    version = "v1beta1",
    kind = "IPAddressPool",
    namespaced,
    status = "IPAddressPoolStatus",
    shortname = "flpool",
    category = "ferrolb",
    derive = "PartialEq",
    derive = "Default",
    doc = "IPAddressPool is a set of addresses ferrolb assigns to LoadBalancer Services.",
    printcolumn(
        name = "Auto Assign",
        type_ = "boolean",
        json_path = ".spec.autoAssign"
    ),
    printcolumn(
        name = "Avoid Buggy IPs",
        type_ = "boolean",
        json_path = ".spec.avoidBuggyIPs"
    ),
    printcolumn(name = "Addresses", type_ = "string", json_path = ".spec.addresses"),
    printcolumn(
        name = "Assigned IPv4",
        type_ = "string",
        json_path = ".status.assignedIPv4"
    ),
    printcolumn(
        name = "Available IPv4",
        type_ = "string",
        json_path = ".status.availableIPv4"
    ),
    printcolumn(
        name = "Assigned IPv6",
        type_ = "string",
        json_path = ".status.assignedIPv6",
        priority = "1"
    ),
    printcolumn(
        name = "Available IPv6",
        type_ = "string",
        json_path = ".status.availableIPv6",
        priority = "1"
    ),
    printcolumn(
        name = "Age",
        type_ = "date",
        json_path = ".metadata.creationTimestamp"
    )
)]
#[serde(rename_all = "camelCase")]
pub struct IPAddressPoolSpec {
    /// The addresses of the pool. Each entry is a CIDR (`192.168.10.0/24`, `fc00::/120`) or an
    /// inclusive range of one family (`192.168.10.10-192.168.10.20`). A CIDR must not have host
    /// bits set. No address may appear in two entries or two pools. At least one entry.
    #[schemars(length(min = 1, max = 1000), inner(length(max = 100)))]
    #[schemars(extend("x-kubernetes-list-type" = "set"))]
    #[x_kube(validation = Rule::new(ADDRESSES_RULE).message(
        "each address must be a CIDR without host bits (192.168.10.0/24) or a range of one family (192.168.10.10-192.168.10.20)"
    ))]
    pub addresses: Vec<String>,

    /// Whether Services that do not ask for this pool may get addresses from it. Default true.
    /// With false, only Services that name the pool (annotation `ferrolb.io/address-pool`) or ask
    /// for one of its addresses get them.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[schemars(extend("default" = true))]
    pub auto_assign: Option<bool>,

    /// Skip IPv4 addresses ending in `.0` and `.255`, which some client devices mistake for
    /// network or broadcast addresses. Default false. No effect on IPv6.
    #[serde(
        rename = "avoidBuggyIPs",
        default,
        skip_serializing_if = "Option::is_none"
    )]
    #[schemars(extend("default" = false))]
    pub avoid_buggy_ips: Option<bool>,

    /// Which Services may get addresses from this pool, and in which order pools are tried.
    /// Unset: every Service, with the lowest precedence.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub service_allocation: Option<ServiceAllocation>,
}

/// Restricts a pool to some Services and orders pools.
#[derive(KubeSchema, Serialize, Deserialize, Clone, Debug, PartialEq, Default)]
#[serde(rename_all = "camelCase")]
pub struct ServiceAllocation {
    /// Pools with a lower number are tried first. 0 or unset means "after every pool with a
    /// priority"; pools of equal priority are tried in name order.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub priority: Option<i32>,

    /// Namespaces (exact names) whose Services may use the pool.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    #[schemars(extend("x-kubernetes-list-type" = "set"))]
    pub namespaces: Vec<String>,

    /// Namespaces, by label, whose Services may use the pool. Any selector may match.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub namespace_selectors: Vec<LabelSelector>,

    /// Services, by label, that may use the pool. Any selector may match.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub service_selectors: Vec<LabelSelector>,
}

/// What the controller reports about a pool.
#[derive(Serialize, Deserialize, Clone, Debug, PartialEq, Default, JsonSchema)]
#[serde(rename_all = "camelCase")]
pub struct IPAddressPoolStatus {
    /// IPv4 addresses currently assigned to Services.
    #[serde(
        rename = "assignedIPv4",
        default,
        skip_serializing_if = "Option::is_none"
    )]
    pub assigned_ipv4: Option<AddressCount>,
    /// IPv6 addresses currently assigned to Services.
    #[serde(
        rename = "assignedIPv6",
        default,
        skip_serializing_if = "Option::is_none"
    )]
    pub assigned_ipv6: Option<AddressCount>,
    /// IPv4 addresses still free.
    #[serde(
        rename = "availableIPv4",
        default,
        skip_serializing_if = "Option::is_none"
    )]
    pub available_ipv4: Option<AddressCount>,
    /// IPv6 addresses still free.
    #[serde(
        rename = "availableIPv6",
        default,
        skip_serializing_if = "Option::is_none"
    )]
    pub available_ipv6: Option<AddressCount>,
    /// Conditions such as `Valid` (false, with the reason, when the pool is rejected).
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    #[schemars(extend("x-kubernetes-list-type" = "map", "x-kubernetes-list-map-keys" = ["type"]))]
    pub conditions: Vec<Condition>,
}
