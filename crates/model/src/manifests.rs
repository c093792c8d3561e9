//! The CustomResourceDefinitions of the ferrolb resources, as applied to a cluster and as kept in
//! `manifests/crds/` (a test fails when those files differ from what this module generates).
//!
//! Owns: generating each CRD from its type, the small rewrites that make kube's schemas fit
//! Kubernetes (formats, nullable), and rendering them as YAML. The resource types themselves
//! are in `crd`.

use std::collections::BTreeMap;
use std::sync::{Mutex, OnceLock, PoisonError};

use k8s_openapi::apiextensions_apiserver::pkg::apis::apiextensions::v1::CustomResourceDefinition;
use kube::CustomResourceExt;
use serde_json::{Map, Value};
use thiserror::Error;

use crate::crd::{
    BFDProfile, BGPAdvertisement, BGPPeer, Community, IPAddressPool, L2Advertisement, ResourceKind,
};

/// The first line of every generated manifest.
pub const GENERATED_HEADER: &str =
    "# Generated from crates/model by `ferrolb crds --out manifests/crds`. Do not edit.\n";

/// Why a CRD could not be turned into YAML (only possible through a bug in a schema).
#[derive(Debug, Error)]
pub enum ManifestError {
    /// The CRD did not convert to or from JSON.
    #[error("the CRD for {kind} does not serialize: {source}")]
    Json {
        /// Which CRD.
        kind: String,
        /// The serde error.
        source: serde_json::Error,
    },
    /// The YAML writer refused the value.
    #[error("the CRD for {kind} does not render as YAML: {message}")]
    Yaml {
        /// Which CRD.
        kind: String,
        /// The writer's message.
        message: String,
    },
}

/// The CRD of one kind, as kube derives it.
fn derived_crd(kind: ResourceKind) -> CustomResourceDefinition {
    match kind {
        ResourceKind::IPAddressPool => IPAddressPool::crd(),
        ResourceKind::BGPPeer => BGPPeer::crd(),
        ResourceKind::BGPAdvertisement => BGPAdvertisement::crd(),
        ResourceKind::L2Advertisement => L2Advertisement::crd(),
        ResourceKind::Community => Community::crd(),
        ResourceKind::BFDProfile => BFDProfile::crd(),
    }
}

/// The CRD of one kind as JSON, in its final form: integer formats Kubernetes knows, no
/// `nullable` (so that an explicit `null` is pruned like an absent field, instead of reaching
/// the CEL rules as a null), integral numbers written as integers, and keys in a stable order.
pub fn crd_json(kind: ResourceKind) -> Result<Value, ManifestError> {
    let mut json =
        serde_json::to_value(derived_crd(kind)).map_err(|source| ManifestError::Json {
            kind: kind.to_string(),
            source,
        })?;
    rewrite_schema_for_kubernetes(&mut json);
    if let Some(root) = json.pointer_mut("/spec/versions/0/schema/openAPIV3Schema") {
        make_spec_optional_when_empty_is_valid(root);
    }
    Ok(canonical(json))
}

/// The CRD of one kind, in its final form (see [`crd_json`]).
pub fn custom_resource_definition(
    kind: ResourceKind,
) -> Result<CustomResourceDefinition, ManifestError> {
    serde_json::from_value(crd_json(kind)?).map_err(|source| ManifestError::Json {
        kind: kind.to_string(),
        source,
    })
}

/// The `openAPIV3Schema` of one kind, as the API server sees it.
pub fn openapi_schema(kind: ResourceKind) -> Result<&'static Value, ManifestError> {
    // Built once per kind and process: every document read (the speaker re-reads its whole
    // folder on each change) is decoded against it, and generating it dominated that read.
    static CACHE: OnceLock<Mutex<BTreeMap<ResourceKind, &'static Value>>> = OnceLock::new();
    let cache = CACHE.get_or_init(Default::default);
    if let Some(schema) = cache
        .lock()
        .unwrap_or_else(PoisonError::into_inner)
        .get(&kind)
    {
        return Ok(schema);
    }
    let crd = crd_json(kind)?;
    let schema = crd
        .pointer("/spec/versions/0/schema/openAPIV3Schema")
        .cloned()
        .unwrap_or(Value::Null);
    let mut cache = cache.lock().unwrap_or_else(PoisonError::into_inner);
    // Six kinds, each leaked at most once: a fixed cost for the life of the process.
    Ok(*cache
        .entry(kind)
        .or_insert_with(|| Box::leak(Box::new(schema))))
}

/// The file a kind's CRD is kept in: `<plural>.ferrolb.io.yaml`.
pub fn manifest_file_name(kind: ResourceKind) -> String {
    let crd = derived_crd(kind);
    format!("{}.yaml", crd.metadata.name.unwrap_or_default())
}

/// One kind's CRD as a YAML document, with the generated-file header.
pub fn manifest_yaml(kind: ResourceKind) -> Result<String, ManifestError> {
    let json = crd_json(kind)?;
    let body = serde_saphyr::to_string(&json).map_err(|error| ManifestError::Yaml {
        kind: kind.to_string(),
        message: error.to_string(),
    })?;
    Ok(format!("{GENERATED_HEADER}{body}"))
}

/// Every CRD as one multi-document YAML stream (what `ferrolb crds` prints).
pub fn all_manifests_yaml() -> Result<String, ManifestError> {
    let documents = ResourceKind::ALL
        .into_iter()
        .map(|kind| {
            let json = crd_json(kind)?;
            serde_saphyr::to_string(&json).map_err(|error| ManifestError::Yaml {
                kind: kind.to_string(),
                message: error.to_string(),
            })
        })
        .collect::<Result<Vec<String>, ManifestError>>()?;
    Ok(format!(
        "{GENERATED_HEADER}---\n{}",
        documents.join("---\n")
    ))
}

fn rewrite_schema_for_kubernetes(value: &mut Value) {
    match value {
        Value::Object(map) => {
            // schemars names Rust's unsigned types; Kubernetes knows int32 and int64, and the
            // minimum/maximum already carry the range.
            if let Some(Value::String(format)) = map.get_mut("format") {
                let replacement = match format.as_str() {
                    "uint8" | "uint16" | "int8" | "int16" => Some("int32"),
                    "uint32" | "uint64" | "uint" => Some("int64"),
                    _ => None,
                };
                if let Some(replacement) = replacement {
                    *format = replacement.to_owned();
                }
            }
            map.remove("nullable");
            for entry in map.values_mut() {
                rewrite_schema_for_kubernetes(entry);
            }
        }
        Value::Array(items) => items.iter_mut().for_each(rewrite_schema_for_kubernetes),
        Value::Number(number) => {
            if let Some(float) = number.as_f64()
                && number.is_f64()
                && float.fract() == 0.0
                && float.abs() < 9.0e15
            {
                // Integral and below 2^53, so the conversion is exact.
                *value = Value::from(float as i64);
            }
        }
        Value::Null | Value::Bool(_) | Value::String(_) => {}
    }
}

/// MetalLB's documentation writes `L2Advertisement` (and others whose spec fields are all
/// optional) without a `spec` at all. kube marks `spec` required; for those kinds it is instead
/// defaulted to `{}`, by the API server and by `load::decode_object` alike.
fn make_spec_optional_when_empty_is_valid(root: &mut Value) {
    let spec_has_required_fields = root
        .pointer("/properties/spec/required")
        .and_then(Value::as_array)
        .is_some_and(|required| !required.is_empty());
    if spec_has_required_fields {
        return;
    }
    if let Some(Value::Array(required)) = root.get_mut("required") {
        required.retain(|field| field != "spec");
        if required.is_empty() {
            root.as_object_mut().map(|map| map.remove("required"));
        }
    }
    if let Some(Value::Object(spec)) = root.pointer_mut("/properties/spec") {
        spec.insert("default".to_owned(), Value::Object(Map::new()));
    }
}

/// Rebuilds objects with sorted keys, so the output does not depend on whether some crate in the
/// build enabled serde_json's `preserve_order`.
fn canonical(value: Value) -> Value {
    match value {
        Value::Object(map) => {
            let mut entries: Vec<(String, Value)> = map.into_iter().collect();
            entries.sort_by(|(a, _), (b, _)| a.cmp(b));
            Value::Object(
                entries
                    .into_iter()
                    .map(|(key, value)| (key, canonical(value)))
                    .collect::<Map<String, Value>>(),
            )
        }
        Value::Array(items) => Value::Array(items.into_iter().map(canonical).collect()),
        other => other,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn crd(kind: ResourceKind) -> CustomResourceDefinition {
        custom_resource_definition(kind).unwrap()
    }

    #[test]
    fn every_resource_is_namespaced_in_group_ferrolb_io_version_v1beta1() {
        for kind in ResourceKind::ALL {
            let crd = crd(kind);
            assert_eq!(crd.spec.group, "ferrolb.io");
            assert_eq!(crd.spec.scope, "Namespaced");
            assert_eq!(crd.spec.names.kind, kind.as_str());
            let versions: Vec<&str> = crd.spec.versions.iter().map(|v| v.name.as_str()).collect();
            assert_eq!(versions, ["v1beta1"]);
        }
    }

    #[test]
    fn every_resource_is_in_the_ferrolb_category_with_a_distinct_short_name() {
        let mut short_names = Vec::new();
        for kind in ResourceKind::ALL {
            let names = crd(kind).spec.names;
            assert_eq!(names.categories, Some(vec!["ferrolb".to_owned()]));
            short_names.extend(names.short_names.unwrap_or_default());
        }
        assert_eq!(
            short_names,
            ["flpool", "flcomm", "flbfd", "flpeer", "flbgpadv", "fll2adv"]
        );
    }

    #[test]
    fn pools_and_peers_have_a_status_subresource() {
        for kind in ResourceKind::ALL {
            let has_status = crd(kind).spec.versions[0]
                .subresources
                .as_ref()
                .is_some_and(|s| s.status.is_some());
            let expected = matches!(kind, ResourceKind::IPAddressPool | ResourceKind::BGPPeer);
            assert_eq!(has_status, expected, "{kind}");
        }
    }

    #[test]
    fn unsigned_formats_are_rewritten_and_nullable_is_dropped() {
        for kind in ResourceKind::ALL {
            let text = serde_json::to_string(&crd_json(kind).unwrap()).unwrap();
            assert!(!text.contains("uint"), "{kind}");
            assert!(!text.contains("nullable"), "{kind}");
        }
        let schema = openapi_schema(ResourceKind::BGPPeer).unwrap();
        let my_asn = &schema["properties"]["spec"]["properties"]["myASN"];
        assert_eq!(my_asn["format"], "int64");
        assert_eq!(my_asn["minimum"], 1);
        assert_eq!(my_asn["maximum"], 4_294_967_295_u64);
    }

    #[test]
    fn defaults_are_in_the_schema() {
        let peer = openapi_schema(ResourceKind::BGPPeer).unwrap();
        assert_eq!(
            peer["properties"]["spec"]["properties"]["peerPort"]["default"],
            179
        );
        let pool = openapi_schema(ResourceKind::IPAddressPool).unwrap();
        assert_eq!(
            pool["properties"]["spec"]["properties"]["autoAssign"]["default"],
            true
        );
        let adv = openapi_schema(ResourceKind::BGPAdvertisement).unwrap();
        assert_eq!(
            adv["properties"]["spec"]["properties"]["aggregationLength"]["default"],
            32
        );
    }

    #[test]
    fn spec_may_be_omitted_only_where_an_empty_spec_is_valid() {
        for kind in ResourceKind::ALL {
            let schema = openapi_schema(kind).unwrap();
            let spec_required = schema["required"]
                .as_array()
                .is_some_and(|r| r.contains(&Value::from("spec")));
            let expected = matches!(kind, ResourceKind::IPAddressPool | ResourceKind::BGPPeer);
            assert_eq!(spec_required, expected, "{kind}");
            assert_eq!(
                schema["properties"]["spec"].get("default").is_some(),
                !expected,
                "{kind}"
            );
        }
    }

    #[test]
    fn manifest_files_are_named_after_the_crd() {
        assert_eq!(
            manifest_file_name(ResourceKind::IPAddressPool),
            "ipaddresspools.ferrolb.io.yaml"
        );
        assert_eq!(
            manifest_file_name(ResourceKind::Community),
            "communities.ferrolb.io.yaml"
        );
    }
}
