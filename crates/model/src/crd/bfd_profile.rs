//! `BFDProfile`: Bidirectional Forwarding Detection settings a BGPPeer can refer to. Same fields,
//! names, defaults and ranges as MetalLB's `metallb.io/v1beta1` BFDProfile.

use kube::CustomResource;
use kube::KubeSchema;
use serde::{Deserialize, Serialize};

/// BFD timers and modes for the sessions that name this profile.
// Each `printcolumn(...)` repeats `type_ = ...`, which clippy takes for a duplicated attribute.
#[allow(clippy::duplicated_attributes)]
#[derive(CustomResource, KubeSchema, Serialize, Deserialize, Clone, Debug, PartialEq, Default)]
#[kube(
    group = "ferrolb.io",
    version = "v1beta1",
    kind = "BFDProfile",
    namespaced,
    shortname = "flbfd",
    category = "ferrolb",
    derive = "PartialEq",
    derive = "Default",
    doc = "BFDProfile holds BFD settings that BGPPeers refer to by name.",
    printcolumn(name = "Passive", type_ = "boolean", json_path = ".spec.passiveMode"),
    printcolumn(
        name = "Transmit",
        type_ = "integer",
        json_path = ".spec.transmitInterval"
    ),
    printcolumn(
        name = "Receive",
        type_ = "integer",
        json_path = ".spec.receiveInterval"
    ),
    printcolumn(
        name = "Multiplier",
        type_ = "integer",
        json_path = ".spec.detectMultiplier"
    ),
    printcolumn(
        name = "Age",
        type_ = "date",
        json_path = ".metadata.creationTimestamp"
    )
)]
#[serde(rename_all = "camelCase")]
pub struct BFDProfileSpec {
    /// The minimum interval, in milliseconds, at which this system can receive control packets.
    /// 10-60000, default 300.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[schemars(range(min = 10, max = 60000), extend("default" = 300))]
    pub receive_interval: Option<u32>,

    /// The minimum interval, in milliseconds, at which this system sends control packets.
    /// 10-60000, default 300.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[schemars(range(min = 10, max = 60000), extend("default" = 300))]
    pub transmit_interval: Option<u32>,

    /// How many missed packets declare the session down. 2-255, default 3.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[schemars(range(min = 2, max = 255), extend("default" = 3))]
    pub detect_multiplier: Option<u32>,

    /// The minimum interval, in milliseconds, between echo packets. 10-60000, default 50.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[schemars(range(min = 10, max = 60000), extend("default" = 50))]
    pub echo_interval: Option<u32>,

    /// Send echo packets (the router loops them back). Default false.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[schemars(extend("default" = false))]
    pub echo_mode: Option<bool>,

    /// Wait for the router to start BFD instead of starting it. Default false.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[schemars(extend("default" = false))]
    pub passive_mode: Option<bool>,

    /// For multi-hop sessions, the minimum TTL accepted on incoming packets. 1-254, default 254.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[schemars(range(min = 1, max = 254), extend("default" = 254))]
    pub minimum_ttl: Option<u32>,
}
