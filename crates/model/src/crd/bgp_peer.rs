//! `BGPPeer`: one BGP session to a router, opened by the speakers on the selected nodes. Every
//! field of MetalLB's `metallb.io/v1beta2` BGPPeer, with the same names and defaults, minus the
//! deprecated no-op `disableMP`; the status reports the session state per node.

use k8s_openapi::api::core::v1::SecretReference;
use k8s_openapi::apimachinery::pkg::apis::meta::v1::{LabelSelector, Time};
use kube::CustomResource;
use kube::KubeSchema;
use schemars::JsonSchema;
use serde::{Deserialize, Serialize};

/// CEL: the value is a Go/Kubernetes duration (`90s`, `1m30s`).
pub const DURATION_SYNTAX_RULE: &str = is_duration!("self");

/// CEL for `holdTime`: whole seconds, 0 (no keepalives) or 3..65535 (RFC 4271; the OPEN message
/// carries 16 bits). Each duration rule starts by skipping malformed values, so that they get
/// the syntax message once instead of an evaluation error from `duration()`.
pub const HOLD_TIME_RULE: &str = concat!(
    "!",
    is_duration!("self"),
    " || (",
    whole_seconds!("self"),
    " && (duration(self) == duration('0s') || ",
    "(duration(self) >= duration('3s') && duration(self) <= duration('65535s'))))"
);

/// CEL for `keepaliveTime`: whole seconds, at most 65535.
pub const KEEPALIVE_TIME_RULE: &str = concat!(
    "!",
    is_duration!("self"),
    " || (",
    whole_seconds!("self"),
    " && duration(self) <= duration('65535s'))"
);

/// CEL for `connectTime`: whole seconds from 1 to 65535.
pub const CONNECT_TIME_RULE: &str = concat!(
    "!",
    is_duration!("self"),
    " || (",
    whole_seconds!("self"),
    " && duration(self) >= duration('1s') && duration(self) <= duration('65535s'))"
);

/// CEL: keepalive not longer than hold, when both are set and well-formed.
pub const KEEPALIVE_NOT_ABOVE_HOLD_RULE: &str = concat!(
    "!has(self.keepaliveTime) || !has(self.holdTime) || !",
    is_duration!("self.keepaliveTime"),
    " || !",
    is_duration!("self.holdTime"),
    " || duration(self.keepaliveTime) <= duration(self.holdTime)"
);

/// CEL: `ebgpMultiHop` only on eBGP sessions. The session's own AS is localASN when set.
pub const MULTIHOP_NEEDS_EBGP_RULE: &str = "!has(self.ebgpMultiHop) || !self.ebgpMultiHop || \
     (has(self.peerASN) ? self.peerASN != (has(self.localASN) ? self.localASN : self.myASN) : \
     (has(self.dynamicASN) && self.dynamicASN != 'internal'))";

/// CEL: `sourceAddress` and `peerAddress` are of one family.
pub const SOURCE_FAMILY_RULE: &str = "!has(self.sourceAddress) || !has(self.peerAddress) || \
     !isIP(self.sourceAddress) || !isIP(self.peerAddress) || \
     ip(self.sourceAddress).family() == ip(self.peerAddress).family()";

/// A BGP session to a router.
// Each `printcolumn(...)` repeats `type_ = ...`, which clippy takes for a duplicated attribute.
#[allow(clippy::duplicated_attributes)]
#[derive(CustomResource, KubeSchema, Serialize, Deserialize, Clone, Debug, PartialEq, Default)]
#[kube(
    group = "ferrolb.io",
    version = "v1beta1",
    kind = "BGPPeer",
    namespaced,
    status = "BGPPeerStatus",
    shortname = "flpeer",
    category = "ferrolb",
    derive = "PartialEq",
    derive = "Default",
    doc = "BGPPeer is a BGP session that ferrolb's speakers open to a router.",
    printcolumn(name = "Address", type_ = "string", json_path = ".spec.peerAddress"),
    printcolumn(name = "Interface", type_ = "string", json_path = ".spec.interface"),
    printcolumn(name = "ASN", type_ = "integer", json_path = ".spec.peerASN"),
    printcolumn(name = "My ASN", type_ = "integer", json_path = ".spec.myASN"),
    printcolumn(
        name = "Age",
        type_ = "date",
        json_path = ".metadata.creationTimestamp"
    )
)]
#[x_kube(validation = Rule::new("has(self.peerASN) != has(self.dynamicASN)")
    .message("exactly one of peerASN or dynamicASN must be set"))]
#[x_kube(validation = Rule::new("has(self.peerAddress) != has(self.interface)")
    .message("exactly one of peerAddress or interface must be set"))]
#[x_kube(validation = Rule::new("!(has(self.password) && has(self.passwordSecret))")
    .message("password and passwordSecret are mutually exclusive; set at most one"))]
#[x_kube(validation = Rule::new(KEEPALIVE_NOT_ABOVE_HOLD_RULE)
    .message("keepaliveTime must not be longer than holdTime")
    .field_path(".keepaliveTime"))]
#[x_kube(validation = Rule::new(MULTIHOP_NEEDS_EBGP_RULE)
    .message("ebgpMultiHop applies to eBGP sessions only (peerASN different from myASN or localASN)")
    .field_path(".ebgpMultiHop"))]
#[x_kube(validation = Rule::new(SOURCE_FAMILY_RULE)
    .message("sourceAddress and peerAddress must be of the same address family")
    .field_path(".sourceAddress"))]
#[serde(rename_all = "camelCase")]
pub struct BGPPeerSpec {
    /// The AS number ferrolb uses on this session (1-4294967295). Required.
    #[serde(rename = "myASN")]
    #[schemars(range(min = 1, max = 4_294_967_295_u32))]
    pub my_asn: u32,

    /// The AS number the router must present (1-4294967295). Exactly one of peerASN and
    /// dynamicASN.
    #[serde(rename = "peerASN", default, skip_serializing_if = "Option::is_none")]
    #[schemars(range(min = 1, max = 4_294_967_295_u32))]
    pub peer_asn: Option<u32>,

    /// Accept whatever AS number the router presents, as long as it is the same as myASN
    /// (`internal`) or different from it (`external`). Exactly one of peerASN and dynamicASN.
    #[serde(
        rename = "dynamicASN",
        default,
        skip_serializing_if = "Option::is_none"
    )]
    pub dynamic_asn: Option<DynamicAsn>,

    /// The AS number presented to the router instead of myASN (`local-as`), 1-4294967295.
    #[serde(rename = "localASN", default, skip_serializing_if = "Option::is_none")]
    #[schemars(range(min = 1, max = 4_294_967_295_u32))]
    pub local_asn: Option<u32>,

    /// The router's IP address. Exactly one of peerAddress and interface.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[schemars(length(max = 64))]
    #[x_kube(validation = Rule::new("isIP(self)").message("peerAddress must be an IP address"))]
    pub peer_address: Option<String>,

    /// Peer over this host interface (BGP unnumbered) instead of an address. Exactly one of
    /// peerAddress and interface.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[schemars(length(min = 1, max = 15))]
    pub interface: Option<String>,

    /// The local address the session is opened from. Must be of the same family as peerAddress.
    /// Unset: the kernel picks it.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[schemars(length(max = 64))]
    #[x_kube(validation = Rule::new("isIP(self)").message("sourceAddress must be an IP address"))]
    pub source_address: Option<String>,

    /// The router's TCP port. Default 179.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[schemars(range(min = 1), extend("default" = 179))]
    pub peer_port: Option<u16>,

    /// The BGP hold time proposed in OPEN: whole seconds, 0 (no keepalives) or 3s-65535s.
    /// Default 90s, or 3 x keepaliveTime when only that is set.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[schemars(length(max = 32))]
    #[x_kube(validation = Rule::new(DURATION_SYNTAX_RULE).message("holdTime must be a duration such as 90s or 1m30s"))]
    #[x_kube(validation = Rule::new(HOLD_TIME_RULE).message("holdTime must be whole seconds, 0 or between 3s and 65535s"))]
    pub hold_time: Option<String>,

    /// The interval between KEEPALIVE messages: whole seconds, not longer than holdTime.
    /// Default holdTime / 3.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[schemars(length(max = 32))]
    #[x_kube(validation = Rule::new(DURATION_SYNTAX_RULE).message("keepaliveTime must be a duration such as 30s"))]
    #[x_kube(validation = Rule::new(KEEPALIVE_TIME_RULE).message("keepaliveTime must be whole seconds, at most 65535s"))]
    pub keepalive_time: Option<String>,

    /// How long to wait between connection attempts: whole seconds from 1s to 65535s.
    /// Unset: ferrolb's backoff.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[schemars(length(max = 32))]
    #[x_kube(validation = Rule::new(DURATION_SYNTAX_RULE).message("connectTime must be a duration such as 10s"))]
    #[x_kube(validation = Rule::new(CONNECT_TIME_RULE).message("connectTime must be whole seconds between 1s and 65535s"))]
    pub connect_time: Option<String>,

    /// The BGP identifier to use, an IPv4 address. Unset: chosen by the speaker.
    #[serde(rename = "routerID", default, skip_serializing_if = "Option::is_none")]
    #[schemars(length(max = 64))]
    #[x_kube(validation = Rule::new("isIP(self) && ip(self).family() == 4")
        .message("routerID must be an IPv4 address (the BGP identifier is 32 bits)"))]
    pub router_id: Option<String>,

    /// Nodes whose speaker opens this session. Any selector may match; empty means every node.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub node_selectors: Vec<LabelSelector>,

    /// TCP MD5 signature password (RFC 2385), at most 80 bytes. Mutually exclusive with
    /// passwordSecret.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[schemars(length(max = 80))]
    pub password: Option<String>,

    /// A Secret of type `kubernetes.io/basic-auth` whose `password` key holds the TCP MD5
    /// password. Mutually exclusive with password.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub password_secret: Option<SecretReference>,

    /// The name of a BFDProfile for fast failure detection on this session.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub bfd_profile: Option<String>,

    /// Announce the graceful-restart capability (RFC 4724), so the router keeps the routes while
    /// a speaker restarts. Default false.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[schemars(extend("default" = false))]
    pub enable_graceful_restart: Option<bool>,

    /// Allow the eBGP router to be more than one hop away. Default false. eBGP only.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[schemars(extend("default" = false))]
    pub ebgp_multi_hop: Option<bool>,

    /// The Linux VRF the session runs in. Unset: the default VRF.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[schemars(length(min = 1, max = 15))]
    pub vrf: Option<String>,

    /// Carry IPv4 and IPv6 routes on this one session (multiprotocol BGP). Default false: the
    /// session carries the family of peerAddress.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[schemars(extend("default" = false))]
    pub dual_stack_address_family: Option<bool>,
}

/// Which AS numbers a peer with `dynamicASN` may present.
#[derive(Serialize, Deserialize, Clone, Copy, Debug, PartialEq, Eq, Hash, JsonSchema)]
#[serde(rename_all = "lowercase")]
pub enum DynamicAsn {
    /// The same AS as myASN (iBGP).
    Internal,
    /// Any AS but myASN (eBGP).
    External,
}

/// What the speakers report about the session.
#[derive(Serialize, Deserialize, Clone, Debug, PartialEq, Default, JsonSchema)]
#[serde(rename_all = "camelCase")]
pub struct BGPPeerStatus {
    /// One entry per node whose speaker runs this session. Each speaker writes its own entry.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    #[schemars(extend("x-kubernetes-list-type" = "map", "x-kubernetes-list-map-keys" = ["node"]))]
    pub nodes: Vec<BGPPeerNodeStatus>,
}

/// The session as seen from one node.
#[derive(Serialize, Deserialize, Clone, Debug, PartialEq, JsonSchema)]
#[serde(rename_all = "camelCase")]
pub struct BGPPeerNodeStatus {
    /// The node name.
    pub node: String,
    /// The BGP finite-state-machine state (RFC 4271 section 8).
    pub state: BgpSessionState,
    /// When the state last changed.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub last_transition_time: Option<Time>,
    /// Why the session is not established (the last NOTIFICATION or connection error).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub message: Option<String>,
    /// How many prefixes this node currently advertises on the session.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub advertised_prefixes: Option<u32>,
}

/// The RFC 4271 session states.
#[derive(Serialize, Deserialize, Clone, Copy, Debug, PartialEq, Eq, Hash, JsonSchema)]
pub enum BgpSessionState {
    /// Not trying to connect (disabled, or waiting before a retry).
    Idle,
    /// Waiting for the TCP connection to complete.
    Connect,
    /// Listening for the router to connect after a failed attempt.
    Active,
    /// OPEN sent, waiting for the router's OPEN.
    OpenSent,
    /// OPENs exchanged, waiting for a KEEPALIVE.
    OpenConfirm,
    /// The session is up and carries routes.
    Established,
}
