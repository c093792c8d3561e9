//! Conversion of MetalLB configuration into ferrolb resources: the `metallb.io/v1beta1` and
//! `v1beta2` custom resources (same shapes as ferrolb's), MetalLB's older `AddressPool` resource,
//! and the legacy ConfigMap (`address-pools` with `protocol: layer2|bgp`, `peers`,
//! `bgp-communities`, `bfd-profiles`) that MetalLB read before 0.13.
//!
//! Owns: what maps to what, and a note for everything that does not carry over (nothing is
//! dropped silently). Does not validate the result; `check` and `migrate` run `Config::build`
//! on it.

use std::collections::BTreeMap;
use std::fmt;

use k8s_openapi::apimachinery::pkg::apis::meta::v1::{
    LabelSelector, LabelSelectorRequirement, ObjectMeta,
};
use schemars::JsonSchema;
use serde::Deserialize;
use serde_json::{Map, Value};
use thiserror::Error;

use crate::community::CommunityValue;
use crate::crd::{
    API_VERSION, BFDProfile, BFDProfileSpec, BGPAdvertisement, BGPAdvertisementSpec, BGPPeer,
    BGPPeerSpec, Community, CommunityAlias, CommunitySpec, ConfigObject, IPAddressPool,
    IPAddressPoolSpec, L2Advertisement, L2AdvertisementSpec, ResourceKind,
};
use crate::load::{DocumentError, decode_object, type_meta, typed};

/// Something a conversion changed, dropped or could not carry over.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct MigrationNote {
    /// The field in the MetalLB input (`spec.disableMP`), or empty for the whole object.
    pub field: String,
    /// What happened, in a sentence.
    pub message: String,
}

impl fmt::Display for MigrationNote {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        if self.field.is_empty() {
            f.write_str(&self.message)
        } else {
            write!(f, "{}: {}", self.field, self.message)
        }
    }
}

/// The ferrolb resources one MetalLB document becomes.
#[derive(Debug, Clone, PartialEq)]
pub struct Conversion {
    /// What the input was: `metallb.io/v1beta2 BGPPeer/router` or `ConfigMap metallb-system/config`.
    pub source: String,
    /// The resources, in a stable order.
    pub objects: Vec<ConfigObject>,
    /// Everything not carried over as is.
    pub notes: Vec<MigrationNote>,
}

/// Why a MetalLB document could not be converted at all.
#[derive(Debug, Clone, PartialEq, Eq, Error)]
pub enum ConversionError {
    /// A metallb.io kind or version ferrolb does not know.
    #[error("{api_version} {kind} is not a MetalLB configuration resource ferrolb can convert")]
    UnknownKind {
        /// As written.
        api_version: String,
        /// As written.
        kind: String,
    },
    /// A field has the wrong type, or the legacy ConfigMap's YAML is broken.
    #[error("{0}")]
    Field(DocumentError),
}

/// The API group of MetalLB's resources.
pub const METALLB_GROUP: &str = "metallb.io";

/// Kinds that MetalLB writes as status and that hold no configuration.
const STATUS_ONLY_KINDS: [&str; 3] = ["ServiceL2Status", "ServiceBGPStatus", "ConfigurationState"];

/// Whether a document is MetalLB configuration: a metallb.io resource or the legacy ConfigMap.
pub fn is_metallb(document: &Value) -> bool {
    match type_meta(document) {
        Ok(("v1", "ConfigMap")) => legacy_config_text(document).is_some(),
        Ok((api_version, _)) => api_version.starts_with("metallb.io/"),
        Err(_) => false,
    }
}

/// Converts one MetalLB document.
pub fn convert(document: &Value) -> Result<Conversion, ConversionError> {
    let mut conversion = convert_document(document)?;
    for object in &mut conversion.objects {
        if let ConfigObject::Community(community) = object {
            drop_well_known_aliases(community, &mut conversion.notes);
        }
    }
    Ok(conversion)
}

/// MetalLB accepts an alias named like a well-known community (`no-advertise: 65535:65282` is
/// common in its examples); ferrolb refuses those names because an alias must never change what a
/// well-known name means. When the alias means exactly the well-known value, it is dropped: every
/// reference to the name resolves to the same value without it. A different value stays, and
/// validation reports it.
fn drop_well_known_aliases(community: &mut Community, notes: &mut Vec<MigrationNote>) {
    let mut index = 0;
    community.spec.communities.retain(|alias| {
        let field = format!("spec.communities[{index}]");
        index += 1;
        let Some(known) = crate::community::well_known(&alias.name) else {
            return true;
        };
        let same = matches!(
            crate::community::parse_literal(&alias.value),
            Ok(Some(CommunityValue::Standard(value))) if value == known
        );
        if same {
            notes.push(MigrationNote {
                field,
                message: format!(
                    "alias {:?} dropped: it is ferrolb's well-known name for the same value {}, so \
                     references to it keep their meaning",
                    alias.name, alias.value
                ),
            });
        }
        !same
    });
}

fn convert_document(document: &Value) -> Result<Conversion, ConversionError> {
    let (api_version, kind) = type_meta(document).map_err(ConversionError::Field)?;
    if kind == "ConfigMap" {
        return convert_legacy_config_map(document);
    }
    let source = format!("{api_version} {kind}/{}", object_name(document));
    let mut notes = Vec::new();
    let version = api_version.strip_prefix("metallb.io/").unwrap_or_default();
    let unknown = || ConversionError::UnknownKind {
        api_version: api_version.to_owned(),
        kind: kind.to_owned(),
    };
    if STATUS_ONLY_KINDS.contains(&kind) {
        notes.push(MigrationNote {
            field: String::new(),
            message: "not converted: MetalLB writes this status itself and it holds no \
                      configuration (ferrolb reports the same on its own resources and Services)"
                .to_owned(),
        });
        return Ok(Conversion {
            source,
            objects: Vec::new(),
            notes,
        });
    }
    if kind == "AddressPool" && version == "v1beta1" {
        let objects = convert_address_pool_resource(document, &mut notes)?;
        return Ok(Conversion {
            source,
            objects,
            notes,
        });
    }
    let target = ResourceKind::from_kind(kind).ok_or_else(unknown)?;
    let supported = match target {
        ResourceKind::BGPPeer => matches!(version, "v1beta1" | "v1beta2"),
        _ => version == "v1beta1",
    };
    if !supported {
        return Err(unknown());
    }

    let mut converted = document.clone();
    clean_metadata(&mut converted, &mut notes);
    if let Value::Object(map) = &mut converted {
        map.insert("apiVersion".to_owned(), Value::from(API_VERSION));
        if map
            .remove("status")
            .is_some_and(|status| !is_empty_value(&status))
        {
            notes.push(MigrationNote {
                field: "status".to_owned(),
                message: "not carried over: ferrolb computes its own status".to_owned(),
            });
        }
        if let Some(Value::Object(spec)) = map.get_mut("spec") {
            adapt_spec(target, spec, &mut notes);
        }
    }
    for (field, message) in crate::load::unknown_fields(target, &converted) {
        notes.push(MigrationNote {
            field,
            message: format!("not carried over: ferrolb has no such field ({message})"),
        });
    }
    let object = decode_ignoring_unknown_fields(&converted)?;
    Ok(Conversion {
        source,
        objects: vec![object],
        notes,
    })
}

/// Decodes a converted document whose unknown fields were already reported as notes.
fn decode_ignoring_unknown_fields(document: &Value) -> Result<ConfigObject, ConversionError> {
    match decode_object(document) {
        Ok(object) => Ok(object),
        Err(errors) => {
            let type_error = errors.into_iter().find(|error| match error {
                DocumentError::Field { message, .. } => !message.starts_with("unknown field"),
                _ => true,
            });
            match type_error {
                Some(error) => Err(ConversionError::Field(error)),
                // Only unknown fields: serde skips them, so decode the typed value directly.
                None => typed_object(document).map_err(ConversionError::Field),
            }
        }
    }
}

fn typed_object(document: &Value) -> Result<ConfigObject, DocumentError> {
    let (_, kind) = type_meta(document)?;
    match ResourceKind::from_kind(kind) {
        Some(ResourceKind::IPAddressPool) => typed(document).map(ConfigObject::IPAddressPool),
        Some(ResourceKind::BGPPeer) => typed(document).map(ConfigObject::BGPPeer),
        Some(ResourceKind::BGPAdvertisement) => typed(document).map(ConfigObject::BGPAdvertisement),
        Some(ResourceKind::L2Advertisement) => typed(document).map(ConfigObject::L2Advertisement),
        Some(ResourceKind::Community) => typed(document).map(ConfigObject::Community),
        Some(ResourceKind::BFDProfile) => typed(document).map(ConfigObject::BFDProfile),
        None => Err(DocumentError::NotAnObject(format!(
            "{kind} is not a ferrolb kind"
        ))),
    }
}

/// The differences between MetalLB's specs and ferrolb's.
fn adapt_spec(kind: ResourceKind, spec: &mut Map<String, Value>, notes: &mut Vec<MigrationNote>) {
    if kind != ResourceKind::BGPPeer {
        return;
    }
    if let Some(value) = spec.remove("disableMP") {
        notes.push(MigrationNote {
            field: "spec.disableMP".to_owned(),
            message: format!(
                "dropped ({value}): a deprecated no-op in MetalLB; ferrolb carries each address \
                 family as the session negotiates it (see dualStackAddressFamily)"
            ),
        });
    }
    // MetalLB v1beta1 allowed peerPort 0, meaning "the default".
    if spec.get("peerPort") == Some(&Value::from(0)) {
        spec.remove("peerPort");
        notes.push(MigrationNote {
            field: "spec.peerPort".to_owned(),
            message: "0 means the default in MetalLB; left unset (179)".to_owned(),
        });
    }
}

/// Keeps name, labels and annotations; drops what the API server wrote and the namespace (the
/// caller puts the objects in ferrolb's namespace).
fn clean_metadata(document: &mut Value, notes: &mut Vec<MigrationNote>) {
    let Some(Value::Object(metadata)) = document.get_mut("metadata") else {
        return;
    };
    let server_written = [
        "uid",
        "resourceVersion",
        "generation",
        "creationTimestamp",
        "managedFields",
        "selfLink",
        "deletionTimestamp",
        "deletionGracePeriodSeconds",
    ];
    let mut dropped: Vec<&str> = server_written
        .into_iter()
        .filter(|field| metadata.remove(*field).is_some())
        .collect();
    for owned_by_metallb in ["ownerReferences", "finalizers"] {
        if metadata.remove(owned_by_metallb).is_some() {
            dropped.push(owned_by_metallb);
        }
    }
    if let Some(Value::Object(annotations)) = metadata.get_mut("annotations") {
        if annotations
            .remove("kubectl.kubernetes.io/last-applied-configuration")
            .is_some()
        {
            dropped.push("the kubectl last-applied-configuration annotation");
        }
        if annotations.is_empty() {
            metadata.remove("annotations");
        }
    }
    if !dropped.is_empty() {
        notes.push(MigrationNote {
            field: "metadata".to_owned(),
            message: format!(
                "dropped what the API server or MetalLB wrote: {}",
                dropped.join(", ")
            ),
        });
    }
}

fn object_name(document: &Value) -> &str {
    document
        .pointer("/metadata/name")
        .and_then(Value::as_str)
        .unwrap_or("<unnamed>")
}

fn is_empty_value(value: &Value) -> bool {
    match value {
        Value::Null => true,
        Value::Object(map) => map.is_empty(),
        Value::Array(items) => items.is_empty(),
        _ => false,
    }
}

// ---------------------------------------------------------------------------------------------
// Pools with a protocol: the legacy ConfigMap's `address-pools` and the AddressPool resource.

/// The AddressPool resource of MetalLB 0.12-0.13 (`metallb.io/v1beta1`).
#[derive(Debug, Deserialize, JsonSchema)]
#[serde(rename_all = "camelCase")]
struct AddressPoolResourceSpec {
    protocol: String,
    #[serde(default)]
    addresses: Vec<String>,
    auto_assign: Option<bool>,
    #[serde(rename = "avoidBuggyIPs")]
    avoid_buggy_ips: Option<bool>,
    #[serde(default)]
    bgp_advertisements: Vec<AddressPoolResourceAdvertisement>,
}

#[derive(Debug, Deserialize, JsonSchema)]
#[serde(rename_all = "camelCase")]
struct AddressPoolResourceAdvertisement {
    aggregation_length: Option<i32>,
    #[serde(rename = "aggregationLengthV6")]
    aggregation_length_v6: Option<i32>,
    local_pref: Option<u32>,
    #[serde(default)]
    communities: Vec<String>,
}

/// A pool with a protocol, whichever format it came from.
struct ProtocolPool {
    name: String,
    protocol: String,
    addresses: Vec<String>,
    auto_assign: Option<bool>,
    avoid_buggy_ips: Option<bool>,
    advertisements: Vec<BGPAdvertisementSpec>,
    /// Where the pool was written, for notes (`spec` or `address-pools[2]`).
    field: String,
}

fn convert_address_pool_resource(
    document: &Value,
    notes: &mut Vec<MigrationNote>,
) -> Result<Vec<ConfigObject>, ConversionError> {
    let spec_value = document
        .get("spec")
        .cloned()
        .unwrap_or(Value::Object(Map::new()));
    report_unknown_fields::<AddressPoolResourceSpec>(&spec_value, "spec", notes);
    let spec: AddressPoolResourceSpec = typed_under(&spec_value, "spec")?;
    let mut cleaned = document.clone();
    clean_metadata(&mut cleaned, notes);
    let metadata: ObjectMeta = match cleaned.get("metadata") {
        Some(metadata) => typed_under(metadata, "metadata")?,
        None => ObjectMeta::default(),
    };
    let pool = ProtocolPool {
        name: object_name(document).to_owned(),
        protocol: spec.protocol,
        addresses: spec.addresses,
        auto_assign: spec.auto_assign,
        avoid_buggy_ips: spec.avoid_buggy_ips,
        advertisements: spec
            .bgp_advertisements
            .into_iter()
            .map(|a| BGPAdvertisementSpec {
                aggregation_length: a.aggregation_length,
                aggregation_length_v6: a.aggregation_length_v6,
                local_pref: a.local_pref,
                communities: a.communities,
                ..BGPAdvertisementSpec::default()
            })
            .collect(),
        field: "spec".to_owned(),
    };
    Ok(convert_protocol_pool(pool, &metadata, notes))
}

fn convert_protocol_pool(
    pool: ProtocolPool,
    metadata: &ObjectMeta,
    notes: &mut Vec<MigrationNote>,
) -> Vec<ConfigObject> {
    let named = |name: String| ObjectMeta {
        name: Some(name),
        labels: metadata.labels.clone(),
        annotations: metadata.annotations.clone(),
        ..ObjectMeta::default()
    };
    let mut objects = vec![ConfigObject::IPAddressPool(IPAddressPool {
        metadata: named(pool.name.clone()),
        spec: IPAddressPoolSpec {
            addresses: pool.addresses,
            auto_assign: pool.auto_assign,
            avoid_buggy_ips: pool.avoid_buggy_ips,
            service_allocation: None,
        },
        ..IPAddressPool::default()
    })];
    match pool.protocol.as_str() {
        "layer2" => {
            if !pool.advertisements.is_empty() {
                notes.push(MigrationNote {
                    field: format!("{}.bgp-advertisements", pool.field),
                    message: "not carried over: the pool's protocol is layer2, so MetalLB \
                              ignored its BGP advertisements too"
                        .to_owned(),
                });
            }
            objects.push(ConfigObject::L2Advertisement(L2Advertisement {
                metadata: named(pool.name.clone()),
                spec: L2AdvertisementSpec {
                    ip_address_pools: vec![pool.name.clone()],
                    ..L2AdvertisementSpec::default()
                },
            }));
        }
        "bgp" => {
            let advertisements = if pool.advertisements.is_empty() {
                // MetalLB announced a BGP pool without advertisements with the defaults.
                vec![BGPAdvertisementSpec::default()]
            } else {
                pool.advertisements
            };
            let several = advertisements.len() > 1;
            for (index, advertisement) in advertisements.into_iter().enumerate() {
                let name = if several {
                    format!("{}-{}", pool.name, index + 1)
                } else {
                    pool.name.clone()
                };
                objects.push(ConfigObject::BGPAdvertisement(BGPAdvertisement {
                    metadata: named(name),
                    spec: BGPAdvertisementSpec {
                        ip_address_pools: vec![pool.name.clone()],
                        ..advertisement
                    },
                }));
            }
        }
        other => notes.push(MigrationNote {
            field: format!("{}.protocol", pool.field),
            message: format!(
                "{other:?} is not layer2 or bgp; the pool is converted without an advertisement, \
                 so its addresses are assigned but not announced"
            ),
        }),
    }
    objects
}

// ---------------------------------------------------------------------------------------------
// The legacy ConfigMap.

#[derive(Debug, Default, Deserialize, JsonSchema)]
#[serde(rename_all = "kebab-case")]
struct LegacyConfig {
    #[serde(default)]
    peers: Vec<LegacyPeer>,
    #[serde(default)]
    bgp_communities: BTreeMap<String, String>,
    #[serde(default)]
    address_pools: Vec<LegacyPool>,
    #[serde(default)]
    bfd_profiles: Vec<LegacyBfdProfile>,
}

#[derive(Debug, Deserialize, JsonSchema)]
#[serde(rename_all = "kebab-case")]
struct LegacyPeer {
    my_asn: u32,
    peer_asn: u32,
    peer_address: String,
    source_address: Option<String>,
    peer_port: Option<u16>,
    hold_time: Option<String>,
    keepalive_time: Option<String>,
    router_id: Option<String>,
    #[serde(default)]
    node_selectors: Vec<LegacyNodeSelector>,
    password: Option<String>,
    bfd_profile: Option<String>,
    ebgp_multihop: Option<bool>,
}

#[derive(Debug, Deserialize, JsonSchema)]
#[serde(rename_all = "kebab-case")]
struct LegacyNodeSelector {
    #[serde(default)]
    match_labels: BTreeMap<String, String>,
    #[serde(default)]
    match_expressions: Vec<LegacyRequirement>,
}

#[derive(Debug, Deserialize, JsonSchema)]
struct LegacyRequirement {
    key: String,
    operator: String,
    #[serde(default)]
    values: Vec<String>,
}

#[derive(Debug, Deserialize, JsonSchema)]
#[serde(rename_all = "kebab-case")]
struct LegacyPool {
    name: String,
    protocol: String,
    #[serde(default)]
    addresses: Vec<String>,
    auto_assign: Option<bool>,
    avoid_buggy_ips: Option<bool>,
    #[serde(default)]
    bgp_advertisements: Vec<LegacyBgpAdvertisement>,
}

#[derive(Debug, Deserialize, JsonSchema)]
#[serde(rename_all = "kebab-case")]
struct LegacyBgpAdvertisement {
    aggregation_length: Option<i32>,
    aggregation_length_v6: Option<i32>,
    localpref: Option<u32>,
    #[serde(default)]
    communities: Vec<String>,
}

#[derive(Debug, Deserialize, JsonSchema)]
#[serde(rename_all = "kebab-case")]
struct LegacyBfdProfile {
    name: String,
    receive_interval: Option<u32>,
    transmit_interval: Option<u32>,
    detect_multiplier: Option<u32>,
    echo_interval: Option<u32>,
    echo_mode: Option<bool>,
    passive_mode: Option<bool>,
    minimum_ttl: Option<u32>,
}

/// The name of the Community object that carries the legacy `bgp-communities`.
pub const LEGACY_COMMUNITIES_NAME: &str = "bgp-communities";

fn legacy_config_text(document: &Value) -> Option<&str> {
    let text = document.pointer("/data/config")?.as_str()?;
    // Only a ConfigMap whose `config` has MetalLB's top-level keys is MetalLB's.
    let looks_like_metallb = [
        "peers:",
        "address-pools:",
        "bgp-communities:",
        "bfd-profiles:",
    ]
    .iter()
    .any(|key| text.lines().any(|line| line.starts_with(key)));
    looks_like_metallb.then_some(text)
}

fn convert_legacy_config_map(document: &Value) -> Result<Conversion, ConversionError> {
    let namespace = document
        .pointer("/metadata/namespace")
        .and_then(Value::as_str)
        .map(|ns| format!("{ns}/"))
        .unwrap_or_default();
    let source = format!("ConfigMap {namespace}{}", object_name(document));
    let Some(text) = legacy_config_text(document) else {
        return Err(ConversionError::Field(DocumentError::Field {
            field: "data.config".to_owned(),
            message: "no MetalLB configuration (peers, address-pools, bgp-communities or \
                      bfd-profiles) in this ConfigMap"
                .to_owned(),
        }));
    };
    let config_value: Value = {
        let documents = crate::load::split_documents(text);
        match documents.first() {
            Some(first) => first.parse().map_err(|error| {
                ConversionError::Field(DocumentError::Field {
                    field: "data.config".to_owned(),
                    message: format!("the embedded YAML is invalid: {error}"),
                })
            })?,
            None => Value::Object(Map::new()),
        }
    };
    let mut notes = Vec::new();
    report_unknown_fields::<LegacyConfig>(&config_value, "data.config", &mut notes);
    let legacy: LegacyConfig = typed_under(&config_value, "data.config")?;

    let mut objects = Vec::new();
    for (index, pool) in legacy.address_pools.into_iter().enumerate() {
        let pool = ProtocolPool {
            name: pool.name,
            protocol: pool.protocol,
            addresses: pool.addresses,
            auto_assign: pool.auto_assign,
            avoid_buggy_ips: pool.avoid_buggy_ips,
            advertisements: pool
                .bgp_advertisements
                .into_iter()
                .map(|a| BGPAdvertisementSpec {
                    aggregation_length: a.aggregation_length,
                    aggregation_length_v6: a.aggregation_length_v6,
                    local_pref: a.localpref,
                    communities: a.communities,
                    ..BGPAdvertisementSpec::default()
                })
                .collect(),
            field: format!("data.config.address-pools[{index}]"),
        };
        objects.extend(convert_protocol_pool(
            pool,
            &ObjectMeta::default(),
            &mut notes,
        ));
    }

    let mut peer_names: Vec<String> = Vec::new();
    for peer in legacy.peers {
        let base = format!("peer-{}", peer.peer_address.replace(['.', ':'], "-"));
        let mut name = base.clone();
        let mut suffix = 2;
        while peer_names.contains(&name) {
            name = format!("{base}-{suffix}");
            suffix += 1;
        }
        peer_names.push(name.clone());
        objects.push(ConfigObject::BGPPeer(BGPPeer {
            metadata: ObjectMeta {
                name: Some(name),
                ..ObjectMeta::default()
            },
            spec: BGPPeerSpec {
                my_asn: peer.my_asn,
                peer_asn: Some(peer.peer_asn),
                peer_address: Some(peer.peer_address),
                source_address: peer.source_address,
                peer_port: peer.peer_port.filter(|port| *port != 0),
                hold_time: peer.hold_time,
                keepalive_time: peer.keepalive_time,
                router_id: peer.router_id,
                node_selectors: peer
                    .node_selectors
                    .into_iter()
                    .map(|selector| LabelSelector {
                        match_labels: (!selector.match_labels.is_empty())
                            .then_some(selector.match_labels),
                        match_expressions: (!selector.match_expressions.is_empty()).then(|| {
                            selector
                                .match_expressions
                                .into_iter()
                                .map(|r| LabelSelectorRequirement {
                                    key: r.key,
                                    operator: r.operator,
                                    values: (!r.values.is_empty()).then_some(r.values),
                                })
                                .collect()
                        }),
                    })
                    .collect(),
                password: peer.password.filter(|p| !p.is_empty()),
                bfd_profile: peer.bfd_profile.filter(|p| !p.is_empty()),
                ebgp_multi_hop: peer.ebgp_multihop,
                ..BGPPeerSpec::default()
            },
            status: None,
        }));
    }

    if !legacy.bgp_communities.is_empty() {
        objects.push(ConfigObject::Community(Community {
            metadata: ObjectMeta {
                name: Some(LEGACY_COMMUNITIES_NAME.to_owned()),
                ..ObjectMeta::default()
            },
            spec: CommunitySpec {
                communities: legacy
                    .bgp_communities
                    .into_iter()
                    .map(|(name, value)| CommunityAlias { name, value })
                    .collect(),
            },
        }));
    }

    for profile in legacy.bfd_profiles {
        objects.push(ConfigObject::BFDProfile(BFDProfile {
            metadata: ObjectMeta {
                name: Some(profile.name),
                ..ObjectMeta::default()
            },
            spec: BFDProfileSpec {
                receive_interval: profile.receive_interval,
                transmit_interval: profile.transmit_interval,
                detect_multiplier: profile.detect_multiplier,
                echo_interval: profile.echo_interval,
                echo_mode: profile.echo_mode,
                passive_mode: profile.passive_mode,
                minimum_ttl: profile.minimum_ttl,
            },
        }));
    }

    Ok(Conversion {
        source,
        objects,
        notes,
    })
}

/// Deserializes a part of a document found at `at`, with error paths from the document's root.
fn typed_under<T: serde::de::DeserializeOwned>(
    value: &Value,
    at: &str,
) -> Result<T, ConversionError> {
    typed(value).map_err(|error| match error {
        DocumentError::Field { field, message } => ConversionError::Field(DocumentError::Field {
            field: format!("{at}.{field}"),
            message,
        }),
        other => ConversionError::Field(other),
    })
}

/// Notes every key of `value` that `T` does not read, so nothing disappears unmentioned.
fn report_unknown_fields<T: JsonSchema>(value: &Value, at: &str, notes: &mut Vec<MigrationNote>) {
    let generator = schemars::generate::SchemaSettings::openapi3()
        .with(|settings| settings.inline_subschemas = true)
        .into_generator();
    let schema = serde_json::to_value(generator.into_root_schema_for::<T>()).unwrap_or_default();
    for (field, message) in crate::load::unknown_fields_against(&schema, value) {
        notes.push(MigrationNote {
            field: format!("{at}.{field}"),
            message: format!("not carried over: MetalLB's format has no such field ({message})"),
        });
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn yaml(text: &str) -> Value {
        serde_saphyr::from_str(text).unwrap()
    }

    fn names(conversion: &Conversion) -> Vec<String> {
        conversion
            .objects
            .iter()
            .map(|o| o.object_ref().to_string())
            .collect()
    }

    fn notes(conversion: &Conversion) -> Vec<String> {
        conversion.notes.iter().map(ToString::to_string).collect()
    }

    #[test]
    fn an_alias_that_repeats_a_well_known_community_is_dropped_with_a_note() {
        let conversion = convert(&yaml(
            "
apiVersion: metallb.io/v1beta1
kind: Community
metadata: {name: communities, namespace: metallb-system}
spec:
  communities:
    - {name: no-advertise, value: '65535:65282'}
    - {name: vpn-only, value: '64500:1234'}
",
        ))
        .unwrap();
        let [ConfigObject::Community(community)] = conversion.objects.as_slice() else {
            panic!("expected one Community, got {:?}", conversion.objects);
        };
        let kept: Vec<_> = community
            .spec
            .communities
            .iter()
            .map(|a| a.name.as_str())
            .collect();
        assert_eq!(kept, ["vpn-only"]);
        let notes = notes(&conversion);
        assert!(
            notes.iter().any(
                |n| n.contains("spec.communities[0]") && n.contains("\"no-advertise\" dropped")
            ),
            "{notes:?}"
        );
    }

    #[test]
    fn an_alias_that_redefines_a_well_known_community_is_kept_for_validation_to_refuse() {
        let conversion = convert(&yaml(
            "
apiVersion: metallb.io/v1beta1
kind: Community
metadata: {name: communities, namespace: metallb-system}
spec:
  communities:
    - {name: no-export, value: '64500:1'}
",
        ))
        .unwrap();
        let [ConfigObject::Community(community)] = conversion.objects.as_slice() else {
            panic!("expected one Community, got {:?}", conversion.objects);
        };
        assert_eq!(community.spec.communities.len(), 1);
        assert!(conversion.notes.is_empty(), "{:?}", conversion.notes);
    }

    #[test]
    fn metallb_pool_becomes_the_same_ferrolb_pool() {
        let conversion = convert(&yaml(
            "
apiVersion: metallb.io/v1beta1
kind: IPAddressPool
metadata: {name: first-pool, namespace: metallb-system}
spec:
  addresses: [192.168.32.0/24]
  autoAssign: false
",
        ))
        .unwrap();
        assert_eq!(
            conversion.source,
            "metallb.io/v1beta1 IPAddressPool/first-pool"
        );
        let [ConfigObject::IPAddressPool(pool)] = conversion.objects.as_slice() else {
            panic!("expected one pool, got {:?}", conversion.objects);
        };
        assert_eq!(pool.spec.addresses, ["192.168.32.0/24"]);
        assert_eq!(pool.spec.auto_assign, Some(false));
        assert!(conversion.notes.is_empty());
    }

    #[test]
    fn bgp_peer_v1beta2_drops_disable_mp_with_a_note() {
        let conversion = convert(&yaml(
            "
apiVersion: metallb.io/v1beta2
kind: BGPPeer
metadata: {name: router, resourceVersion: '42', uid: abc}
spec: {myASN: 64500, peerASN: 64501, peerAddress: 10.0.0.1, disableMP: false}
status: {}
",
        ))
        .unwrap();
        assert_eq!(names(&conversion), ["BGPPeer/router"]);
        assert_eq!(
            notes(&conversion),
            [
                "metadata: dropped what the API server or MetalLB wrote: uid, resourceVersion",
                "spec.disableMP: dropped (false): a deprecated no-op in MetalLB; ferrolb carries \
                 each address family as the session negotiates it (see dualStackAddressFamily)",
            ]
        );
    }

    #[test]
    fn fields_ferrolb_does_not_have_are_reported_not_dropped_silently() {
        let conversion = convert(&yaml(
            "
apiVersion: metallb.io/v1beta1
kind: L2Advertisement
metadata: {name: l2}
spec: {ipAddressPools: [a], futureField: 1}
",
        ))
        .unwrap();
        assert_eq!(
            notes(&conversion),
            ["spec.futureField: not carried over: ferrolb has no such field (unknown field)"]
        );
        assert_eq!(names(&conversion), ["L2Advertisement/l2"]);
    }

    #[test]
    fn status_only_kinds_convert_to_nothing_with_a_note() {
        let conversion = convert(&yaml(
            "apiVersion: metallb.io/v1beta1\nkind: ServiceL2Status\nmetadata: {name: l2-x}\n",
        ))
        .unwrap();
        assert!(conversion.objects.is_empty());
        assert_eq!(conversion.notes.len(), 1);
    }

    #[test]
    fn unknown_metallb_kinds_are_errors() {
        assert_eq!(
            convert(&yaml(
                "apiVersion: metallb.io/v1beta3\nkind: BGPPeer\nmetadata: {name: x}\n"
            ))
            .unwrap_err()
            .to_string(),
            "metallb.io/v1beta3 BGPPeer is not a MetalLB configuration resource ferrolb can convert"
        );
    }

    const LEGACY: &str = r#"
apiVersion: v1
kind: ConfigMap
metadata: {namespace: metallb-system, name: config}
data:
  config: |
    peers:
    - peer-address: 10.0.0.1
      peer-asn: 64501
      my-asn: 64500
      node-selectors:
      - match-labels: {rack: frontend}
        match-expressions:
        - {key: kubernetes.io/arch, operator: In, values: [amd64]}
      peer-autodiscovery: true
    bgp-communities:
      no-adv: 65535:65282
    address-pools:
    - name: default
      protocol: layer2
      addresses: [192.168.1.240-192.168.1.250]
    - name: bgp-pool
      protocol: bgp
      avoid-buggy-ips: true
      addresses: [198.51.100.0/24]
      bgp-advertisements:
      - aggregation-length: 32
        localpref: 100
        communities: [no-adv]
      - aggregation-length: 24
"#;

    #[test]
    fn legacy_config_map_becomes_pools_advertisements_peers_and_communities() {
        let conversion = convert(&yaml(LEGACY)).unwrap();
        assert_eq!(conversion.source, "ConfigMap metallb-system/config");
        assert_eq!(
            names(&conversion),
            [
                "IPAddressPool/default",
                "L2Advertisement/default",
                "IPAddressPool/bgp-pool",
                "BGPAdvertisement/bgp-pool-1",
                "BGPAdvertisement/bgp-pool-2",
                "BGPPeer/peer-10-0-0-1",
                "Community/bgp-communities",
            ]
        );
        assert_eq!(
            notes(&conversion),
            [
                "data.config.peers[0].peer-autodiscovery: not carried over: MetalLB's format has no \
              such field (unknown field)"
            ]
        );
        let ConfigObject::BGPAdvertisement(first) = &conversion.objects[3] else {
            panic!("expected an advertisement");
        };
        assert_eq!(first.spec.local_pref, Some(100));
        assert_eq!(first.spec.communities, ["no-adv"]);
        assert_eq!(first.spec.ip_address_pools, ["bgp-pool"]);
        let ConfigObject::BGPPeer(peer) = &conversion.objects[5] else {
            panic!("expected a peer");
        };
        assert_eq!(
            peer.spec.node_selectors[0].match_labels.as_ref().unwrap()["rack"],
            "frontend"
        );
    }

    #[test]
    fn legacy_type_errors_carry_the_path_inside_the_config_map() {
        let error = convert(&yaml(
            "
apiVersion: v1
kind: ConfigMap
metadata: {name: config}
data:
  config: |
    peers:
    - {peer-address: 10.0.0.1, peer-asn: 64501, my-asn: sixty-four}
",
        ))
        .unwrap_err();
        assert_eq!(
            error.to_string(),
            "data.config.peers[0].my-asn: invalid type: string \"sixty-four\", expected u32"
        );
    }

    #[test]
    fn unrelated_config_maps_are_not_metallb() {
        assert!(!is_metallb(&yaml(
            "apiVersion: v1\nkind: ConfigMap\nmetadata: {name: x}\ndata: {config: 'a: 1'}\n"
        )));
        assert!(is_metallb(&yaml(LEGACY)));
    }

    #[test]
    fn legacy_pool_with_unknown_protocol_is_reported() {
        let conversion = convert(&yaml(
            "
apiVersion: v1
kind: ConfigMap
metadata: {name: config}
data:
  config: |
    address-pools:
    - {name: old, protocol: arp, addresses: [10.0.0.0/24]}
",
        ))
        .unwrap();
        assert_eq!(names(&conversion), ["IPAddressPool/old"]);
        assert_eq!(
            notes(&conversion),
            [
                "data.config.address-pools[0].protocol: \"arp\" is not layer2 or bgp; the pool is \
              converted without an advertisement, so its addresses are assigned but not announced"
            ]
        );
    }

    #[test]
    fn address_pool_resource_converts_like_a_legacy_pool() {
        let conversion = convert(&yaml(
            "
apiVersion: metallb.io/v1beta1
kind: AddressPool
metadata: {name: legacy}
spec:
  protocol: bgp
  addresses: [10.0.0.0/24]
  bgpAdvertisements: [{localPref: 50}]
",
        ))
        .unwrap();
        assert_eq!(
            names(&conversion),
            ["IPAddressPool/legacy", "BGPAdvertisement/legacy"]
        );
    }
}
