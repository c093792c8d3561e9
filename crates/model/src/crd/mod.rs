//! The ferrolb.io/v1beta1 custom resources: `IPAddressPool`, `BGPPeer`, `BGPAdvertisement`,
//! `L2Advertisement`, `Community` and `BFDProfile`, as serde types with schemars schemas and
//! CEL rules (`x-kubernetes-validations`) for what one object can check on its own.
//!
//! These types are the wire shape: every field is as the user wrote it (strings for durations
//! and addresses, options for defaulted fields), so that YAML round-trips unchanged. The typed,
//! validated view with defaults applied is `config::Config`. Generating the CRD manifests from
//! these types is `crate::manifests`.

use std::borrow::Cow;
use std::fmt;

use schemars::{JsonSchema, Schema, SchemaGenerator, json_schema};
use serde::{Deserialize, Deserializer, Serialize, Serializer};

/// CEL fragment: the string expression `$e` is a Kubernetes duration (`90s`, `1m30s`, `0`).
macro_rules! is_duration {
    ($e:literal) => {
        concat!(
            "(",
            $e,
            " == '0' || ",
            $e,
            ".matches('^(([0-9]+([.][0-9]*)?|[.][0-9]+)(ns|us|µs|μs|ms|s|m|h))+$'))"
        )
    };
}

/// CEL fragment: the duration string `$e` is a whole number of seconds.
macro_rules! whole_seconds {
    ($e:literal) => {
        concat!(
            "duration(",
            $e,
            ") == duration(string(duration(",
            $e,
            ").getSeconds()) + 's')"
        )
    };
}

/// CEL list of the well-known community names; a unit test keeps it equal to
/// `community::WELL_KNOWN`.
macro_rules! well_known_community_names {
    () => {
        "['no-export', 'no-advertise', 'no-export-subconfed', 'local-as', 'no-peer', \
         'graceful-shutdown', 'accept-own', 'llgr-stale', 'no-llgr', 'blackhole']"
    };
}

/// CEL fragments shared by the community rules: `large:A:B:C` and `A:B` with range checks.
macro_rules! large_community_literal {
    ($e:literal) => {
        concat!(
            "(",
            $e,
            ".matches('^large:[0-9]{1,10}:[0-9]{1,10}:[0-9]{1,10}$') && ",
            $e,
            ".split(':').all(p, p == 'large' || int(p) <= 4294967295))"
        )
    };
}
macro_rules! standard_community_literal {
    ($e:literal) => {
        concat!(
            "(",
            $e,
            ".matches('^[0-9]{1,5}:[0-9]{1,5}$') && ",
            $e,
            ".split(':').all(p, int(p) <= 65535))"
        )
    };
}

/// CEL fragment: `$e` is a community literal: `large:A:B:C`, `A:B` or a well-known name.
macro_rules! is_community_literal {
    ($e:literal) => {
        concat!(
            "(",
            $e,
            ".startsWith('large:') ? ",
            large_community_literal!($e),
            " : ",
            $e,
            ".contains(':') ? ",
            standard_community_literal!($e),
            " : ",
            well_known_community_names!(),
            ".exists(n, n == ",
            $e,
            "))"
        )
    };
}

/// CEL fragment: `$e` is a community literal or a name that may be a Community alias.
macro_rules! is_community_or_alias {
    ($e:literal) => {
        concat!(
            "(",
            $e,
            ".startsWith('large:') ? ",
            large_community_literal!($e),
            " : ",
            $e,
            ".contains(':') ? ",
            standard_community_literal!($e),
            " : ",
            $e,
            ".matches('^[A-Za-z0-9]([-A-Za-z0-9_.]*[A-Za-z0-9])?$'))"
        )
    };
}

pub mod bfd_profile;
pub mod bgp_advertisement;
pub mod bgp_peer;
pub mod community;
pub mod ip_address_pool;
pub mod l2_advertisement;

pub use bfd_profile::{BFDProfile, BFDProfileSpec};
pub use bgp_advertisement::{BGPAdvertisement, BGPAdvertisementSpec};
pub use bgp_peer::{
    BGPPeer, BGPPeerNodeStatus, BGPPeerSpec, BGPPeerStatus, BgpSessionState, DynamicAsn,
};
pub use community::{Community, CommunityAlias, CommunitySpec};
pub use ip_address_pool::{
    IPAddressPool, IPAddressPoolSpec, IPAddressPoolStatus, ServiceAllocation,
};
pub use l2_advertisement::{L2Advertisement, L2AdvertisementSpec, PreferredNodeSelector};

/// The API group of every ferrolb resource.
pub const GROUP: &str = "ferrolb.io";
/// The served and stored version.
pub const VERSION: &str = "v1beta1";
/// `apiVersion` of every ferrolb resource.
pub const API_VERSION: &str = "ferrolb.io/v1beta1";
/// The `kubectl get ferrolb` category every resource belongs to.
pub const CATEGORY: &str = "ferrolb";

/// The kinds of ferrolb resources.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub enum ResourceKind {
    /// `IPAddressPool`.
    IPAddressPool,
    /// `Community`.
    Community,
    /// `BFDProfile`.
    BFDProfile,
    /// `BGPPeer`.
    BGPPeer,
    /// `BGPAdvertisement`.
    BGPAdvertisement,
    /// `L2Advertisement`.
    L2Advertisement,
}

impl ResourceKind {
    /// Every kind, in the order `Config::build` validates them (referenced kinds first).
    pub const ALL: [ResourceKind; 6] = [
        ResourceKind::IPAddressPool,
        ResourceKind::Community,
        ResourceKind::BFDProfile,
        ResourceKind::BGPPeer,
        ResourceKind::BGPAdvertisement,
        ResourceKind::L2Advertisement,
    ];

    /// The `kind` as written in YAML.
    pub fn as_str(self) -> &'static str {
        match self {
            ResourceKind::IPAddressPool => "IPAddressPool",
            ResourceKind::Community => "Community",
            ResourceKind::BFDProfile => "BFDProfile",
            ResourceKind::BGPPeer => "BGPPeer",
            ResourceKind::BGPAdvertisement => "BGPAdvertisement",
            ResourceKind::L2Advertisement => "L2Advertisement",
        }
    }

    /// The kind for a YAML `kind`, if it is one of ferrolb's.
    pub fn from_kind(kind: &str) -> Option<ResourceKind> {
        ResourceKind::ALL.into_iter().find(|k| k.as_str() == kind)
    }
}

impl fmt::Display for ResourceKind {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

/// A kind and a name: how errors and notes point at an object.
#[derive(Debug, Clone, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct ObjectRef {
    /// The kind.
    pub kind: ResourceKind,
    /// `metadata.name`.
    pub name: String,
}

impl ObjectRef {
    /// Builds a reference.
    pub fn new(kind: ResourceKind, name: impl Into<String>) -> ObjectRef {
        ObjectRef {
            kind,
            name: name.into(),
        }
    }
}

impl fmt::Display for ObjectRef {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}/{}", self.kind, self.name)
    }
}

/// Any one ferrolb resource.
#[derive(Debug, Clone, PartialEq)]
pub enum ConfigObject {
    /// An `IPAddressPool`.
    IPAddressPool(IPAddressPool),
    /// A `BGPPeer`.
    BGPPeer(BGPPeer),
    /// A `BGPAdvertisement`.
    BGPAdvertisement(BGPAdvertisement),
    /// An `L2Advertisement`.
    L2Advertisement(L2Advertisement),
    /// A `Community`.
    Community(Community),
    /// A `BFDProfile`.
    BFDProfile(BFDProfile),
}

impl ConfigObject {
    /// The kind of the object.
    pub fn kind(&self) -> ResourceKind {
        match self {
            ConfigObject::IPAddressPool(_) => ResourceKind::IPAddressPool,
            ConfigObject::BGPPeer(_) => ResourceKind::BGPPeer,
            ConfigObject::BGPAdvertisement(_) => ResourceKind::BGPAdvertisement,
            ConfigObject::L2Advertisement(_) => ResourceKind::L2Advertisement,
            ConfigObject::Community(_) => ResourceKind::Community,
            ConfigObject::BFDProfile(_) => ResourceKind::BFDProfile,
        }
    }

    /// The object's metadata.
    pub fn metadata(&self) -> &k8s_openapi::apimachinery::pkg::apis::meta::v1::ObjectMeta {
        match self {
            ConfigObject::IPAddressPool(o) => &o.metadata,
            ConfigObject::BGPPeer(o) => &o.metadata,
            ConfigObject::BGPAdvertisement(o) => &o.metadata,
            ConfigObject::L2Advertisement(o) => &o.metadata,
            ConfigObject::Community(o) => &o.metadata,
            ConfigObject::BFDProfile(o) => &o.metadata,
        }
    }

    /// The object's metadata, for changing it (the migration sets names and namespaces).
    pub fn metadata_mut(
        &mut self,
    ) -> &mut k8s_openapi::apimachinery::pkg::apis::meta::v1::ObjectMeta {
        match self {
            ConfigObject::IPAddressPool(o) => &mut o.metadata,
            ConfigObject::BGPPeer(o) => &mut o.metadata,
            ConfigObject::BGPAdvertisement(o) => &mut o.metadata,
            ConfigObject::L2Advertisement(o) => &mut o.metadata,
            ConfigObject::Community(o) => &mut o.metadata,
            ConfigObject::BFDProfile(o) => &mut o.metadata,
        }
    }

    /// `Kind/name` of the object (an empty name stays empty; validation reports it).
    pub fn object_ref(&self) -> ObjectRef {
        ObjectRef::new(
            self.kind(),
            self.metadata().name.clone().unwrap_or_default(),
        )
    }

    /// The object as a YAML document, fields in the order the types declare them.
    pub fn to_yaml(&self) -> Result<String, serde_saphyr::SerializeError> {
        match self {
            ConfigObject::IPAddressPool(o) => serde_saphyr::to_string(o),
            ConfigObject::BGPPeer(o) => serde_saphyr::to_string(o),
            ConfigObject::BGPAdvertisement(o) => serde_saphyr::to_string(o),
            ConfigObject::L2Advertisement(o) => serde_saphyr::to_string(o),
            ConfigObject::Community(o) => serde_saphyr::to_string(o),
            ConfigObject::BFDProfile(o) => serde_saphyr::to_string(o),
        }
    }

    /// The object as JSON, with `apiVersion` and `kind`.
    pub fn to_json(&self) -> Result<serde_json::Value, serde_json::Error> {
        match self {
            ConfigObject::IPAddressPool(o) => serde_json::to_value(o),
            ConfigObject::BGPPeer(o) => serde_json::to_value(o),
            ConfigObject::BGPAdvertisement(o) => serde_json::to_value(o),
            ConfigObject::L2Advertisement(o) => serde_json::to_value(o),
            ConfigObject::Community(o) => serde_json::to_value(o),
            ConfigObject::BFDProfile(o) => serde_json::to_value(o),
        }
    }
}

/// A count of addresses, exact for any pool (an IPv6 /64 holds 2^64 addresses, more than the
/// int64 a Kubernetes integer can carry), written as a decimal string.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash, Default)]
pub struct AddressCount(pub u128);

impl Serialize for AddressCount {
    fn serialize<S: Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
        serializer.serialize_str(&self.0.to_string())
    }
}

impl<'de> Deserialize<'de> for AddressCount {
    fn deserialize<D: Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        struct CountVisitor;
        impl serde::de::Visitor<'_> for CountVisitor {
            type Value = AddressCount;
            fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
                f.write_str("a non-negative whole number, as a decimal string")
            }
            fn visit_str<E: serde::de::Error>(self, text: &str) -> Result<AddressCount, E> {
                if !text.is_empty() && text.bytes().all(|b| b.is_ascii_digit()) {
                    text.parse().map(AddressCount).map_err(E::custom)
                } else {
                    Err(E::invalid_value(serde::de::Unexpected::Str(text), &self))
                }
            }
            fn visit_u64<E: serde::de::Error>(self, value: u64) -> Result<AddressCount, E> {
                Ok(AddressCount(u128::from(value)))
            }
        }
        deserializer.deserialize_any(CountVisitor)
    }
}

impl JsonSchema for AddressCount {
    fn schema_name() -> Cow<'static, str> {
        "AddressCount".into()
    }

    fn inline_schema() -> bool {
        true
    }

    fn json_schema(_: &mut SchemaGenerator) -> Schema {
        json_schema!({
            "type": "string",
            "pattern": "^[0-9]+$"
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn cel_list_of_well_known_names_matches_the_rust_table() {
        let names: Vec<String> = crate::community::WELL_KNOWN
            .iter()
            .map(|(name, _)| format!("'{name}'"))
            .collect();
        let cel_list = well_known_community_names!().replace(['[', ']'], "");
        let cel_names: Vec<&str> = cel_list.split(", ").collect();
        assert_eq!(cel_names, names);
    }

    #[test]
    fn address_counts_beyond_int64_are_exact_strings() {
        let count = AddressCount(1 << 64);
        let json = serde_json::to_value(count).unwrap();
        assert_eq!(json, serde_json::json!("18446744073709551616"));
        assert_eq!(serde_json::from_value::<AddressCount>(json).unwrap(), count);
        assert!(serde_json::from_value::<AddressCount>(serde_json::json!("-1")).is_err());
    }
}
