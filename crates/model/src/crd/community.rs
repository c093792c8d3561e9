//! `Community`: named aliases for BGP community values, usable in BGPAdvertisement
//! `communities`. Same shape as MetalLB's `metallb.io/v1beta1` Community.

use kube::CustomResource;
use kube::KubeSchema;
use serde::{Deserialize, Serialize};

/// CEL: an alias value is `A:B`, `large:A:B:C` or a well-known name (not another alias).
pub const ALIAS_VALUE_RULE: &str = is_community_literal!("self");

/// CEL: an alias name cannot contain `:` (it would read as a value) nor be a well-known name.
pub const ALIAS_NAME_RULE: &str = concat!(
    "self.matches('^[A-Za-z0-9]([-A-Za-z0-9_.]*[A-Za-z0-9])?$') && !(",
    well_known_community_names!(),
    ".exists(n, n == self))"
);

/// A set of community aliases.
#[derive(CustomResource, KubeSchema, Serialize, Deserialize, Clone, Debug, PartialEq, Default)]
#[kube(
    group = "ferrolb.io",
    version = "v1beta1",
    kind = "Community",
    plural = "communities",
    namespaced,
    shortname = "flcomm",
    category = "ferrolb",
    derive = "PartialEq",
    derive = "Default",
    doc = "Community defines names for BGP community values.",
    printcolumn(
        name = "Age",
        type_ = "date",
        json_path = ".metadata.creationTimestamp"
    )
)]
#[serde(rename_all = "camelCase")]
pub struct CommunitySpec {
    /// The aliases. Names are unique across all Community objects.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    #[schemars(length(max = 1000))]
    #[schemars(extend("x-kubernetes-list-type" = "map", "x-kubernetes-list-map-keys" = ["name"]))]
    pub communities: Vec<CommunityAlias>,
}

/// One alias.
#[derive(KubeSchema, Serialize, Deserialize, Clone, Debug, PartialEq, Default)]
#[serde(rename_all = "camelCase")]
pub struct CommunityAlias {
    /// The alias, used in place of the value in BGPAdvertisement `communities`. Letters,
    /// digits, `-`, `_` and `.`; not a well-known name such as `no-export`.
    #[schemars(length(min = 1, max = 63))]
    #[x_kube(validation = Rule::new(ALIAS_NAME_RULE).message(
        "name must be letters, digits, '-', '_' and '.', and not a well-known community name"
    ))]
    pub name: String,
    /// The value: `A:B` (16-bit numbers), `large:A:B:C` (32-bit numbers) or a well-known name.
    #[schemars(length(max = 64))]
    #[x_kube(validation = Rule::new(ALIAS_VALUE_RULE).message(
        "value must be A:B (16-bit numbers), large:A:B:C (32-bit numbers) or a well-known name"
    ))]
    pub value: String,
}
