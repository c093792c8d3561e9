//! The resource types this server serves, and the discovery documents that describe them.
//!
//! Owns [`ResourceType`] (group, version, plural, kind, scope, verbs, short names, categories,
//! status subresource, schema), the built-in types, the translation of a
//! `CustomResourceDefinition` into the types it serves, and the discovery JSON: `/api`,
//! `/apis`, `/apis/{group}`, `/api/v1`, `/apis/{group}/{version}` (legacy discovery) and the
//! aggregated `apidiscovery.k8s.io/v2` documents. It does not store objects or apply
//! per-kind rules (that is `kinds`).

use std::collections::BTreeMap;
use std::sync::{Arc, OnceLock};

use serde_json::{Value, json};

use crate::schema::StructuralSchema;
use crate::status::Subject;

/// The built-in kinds, each with its own rules in `kinds`.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum Builtin {
    Namespace,
    Service,
    Node,
    Secret,
    Pod,
    ConfigMap,
    CoreEvent,
    EndpointSlice,
    Lease,
    Event,
    CustomResourceDefinition,
}

/// One served `group/version/resource`.
#[derive(Clone, Debug)]
pub struct ResourceType {
    pub group: String,
    pub version: String,
    pub plural: String,
    pub singular: String,
    pub kind: String,
    pub list_kind: String,
    pub namespaced: bool,
    pub verbs: Vec<&'static str>,
    pub short_names: Vec<String>,
    pub categories: Vec<String>,
    pub status_subresource: bool,
    /// `None` for custom resources.
    pub builtin: Option<Builtin>,
    pub schema: Arc<StructuralSchema>,
    /// Custom resources: extra field selector labels (`spec.color`) and JSON pointers.
    pub selectable_fields: Vec<(String, String)>,
    /// Custom resources: the name of the defining CRD.
    pub crd_name: Option<String>,
}

impl ResourceType {
    pub fn api_version(&self) -> String {
        if self.group.is_empty() {
            self.version.clone()
        } else {
            format!("{}/{}", self.group, self.version)
        }
    }

    pub fn subject(&self) -> Subject {
        Subject {
            group: self.group.clone(),
            resource: self.plural.clone(),
            kind: self.kind.clone(),
        }
    }

    /// Objects are stored per group and resource, shared by all versions.
    pub fn storage_key(&self) -> StorageKey {
        StorageKey {
            group: self.group.clone(),
            plural: self.plural.clone(),
        }
    }

    pub fn allows(&self, verb: &str) -> bool {
        self.verbs.contains(&verb)
    }

    /// `Group/Version, Kind=Kind` as Go prints a GroupVersionKind.
    pub fn gvk_string(&self) -> String {
        format!("{}/{}, Kind={}", self.group, self.version, self.kind)
    }
}

/// Where a resource's objects live.
#[derive(Clone, Debug, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct StorageKey {
    pub group: String,
    pub plural: String,
}

const ALL_VERBS: &[&str] = &[
    "create",
    "delete",
    "deletecollection",
    "get",
    "list",
    "patch",
    "update",
    "watch",
];
const NAMESPACE_VERBS: &[&str] = &[
    "create", "delete", "get", "list", "patch", "update", "watch",
];
const CR_VERBS: &[&str] = &[
    "delete",
    "deletecollection",
    "get",
    "list",
    "patch",
    "create",
    "update",
    "watch",
];
/// Verbs of every `/status` subresource.
pub const STATUS_VERBS: &[&str] = &["get", "patch", "update"];

struct BuiltinSpec {
    builtin: Builtin,
    group: &'static str,
    version: &'static str,
    plural: &'static str,
    singular: &'static str,
    kind: &'static str,
    namespaced: bool,
    verbs: &'static [&'static str],
    short_names: &'static [&'static str],
    categories: &'static [&'static str],
    status: bool,
    schema: fn() -> StructuralSchema,
}

fn builtin_specs() -> Vec<BuiltinSpec> {
    use k8s_openapi::api;
    use k8s_openapi::apiextensions_apiserver::pkg::apis::apiextensions::v1 as apiext;
    vec![
        BuiltinSpec {
            builtin: Builtin::Namespace,
            group: "",
            version: "v1",
            plural: "namespaces",
            singular: "namespace",
            kind: "Namespace",
            namespaced: false,
            verbs: NAMESPACE_VERBS,
            short_names: &["ns"],
            categories: &[],
            status: true,
            schema: StructuralSchema::for_builtin::<api::core::v1::Namespace>,
        },
        BuiltinSpec {
            builtin: Builtin::Service,
            group: "",
            version: "v1",
            plural: "services",
            singular: "service",
            kind: "Service",
            namespaced: true,
            verbs: ALL_VERBS,
            short_names: &["svc"],
            categories: &["all"],
            status: true,
            schema: StructuralSchema::for_builtin::<api::core::v1::Service>,
        },
        BuiltinSpec {
            builtin: Builtin::Node,
            group: "",
            version: "v1",
            plural: "nodes",
            singular: "node",
            kind: "Node",
            namespaced: false,
            verbs: ALL_VERBS,
            short_names: &["no"],
            categories: &[],
            status: true,
            schema: StructuralSchema::for_builtin::<api::core::v1::Node>,
        },
        BuiltinSpec {
            builtin: Builtin::Secret,
            group: "",
            version: "v1",
            plural: "secrets",
            singular: "secret",
            kind: "Secret",
            namespaced: true,
            verbs: ALL_VERBS,
            short_names: &[],
            categories: &[],
            status: false,
            schema: StructuralSchema::for_builtin::<api::core::v1::Secret>,
        },
        BuiltinSpec {
            builtin: Builtin::Pod,
            group: "",
            version: "v1",
            plural: "pods",
            singular: "pod",
            kind: "Pod",
            namespaced: true,
            verbs: ALL_VERBS,
            short_names: &["po"],
            categories: &["all"],
            status: true,
            schema: StructuralSchema::for_builtin::<api::core::v1::Pod>,
        },
        BuiltinSpec {
            builtin: Builtin::ConfigMap,
            group: "",
            version: "v1",
            plural: "configmaps",
            singular: "configmap",
            kind: "ConfigMap",
            namespaced: true,
            verbs: ALL_VERBS,
            short_names: &["cm"],
            categories: &[],
            status: false,
            schema: StructuralSchema::for_builtin::<api::core::v1::ConfigMap>,
        },
        BuiltinSpec {
            builtin: Builtin::CoreEvent,
            group: "",
            version: "v1",
            plural: "events",
            singular: "event",
            kind: "Event",
            namespaced: true,
            verbs: ALL_VERBS,
            short_names: &["ev"],
            categories: &[],
            status: false,
            schema: StructuralSchema::for_builtin::<api::core::v1::Event>,
        },
        BuiltinSpec {
            builtin: Builtin::EndpointSlice,
            group: "discovery.k8s.io",
            version: "v1",
            plural: "endpointslices",
            singular: "endpointslice",
            kind: "EndpointSlice",
            namespaced: true,
            verbs: ALL_VERBS,
            short_names: &[],
            categories: &[],
            status: false,
            schema: StructuralSchema::for_builtin::<api::discovery::v1::EndpointSlice>,
        },
        BuiltinSpec {
            builtin: Builtin::Lease,
            group: "coordination.k8s.io",
            version: "v1",
            plural: "leases",
            singular: "lease",
            kind: "Lease",
            namespaced: true,
            verbs: ALL_VERBS,
            short_names: &[],
            categories: &[],
            status: false,
            schema: StructuralSchema::for_builtin::<api::coordination::v1::Lease>,
        },
        BuiltinSpec {
            builtin: Builtin::Event,
            group: "events.k8s.io",
            version: "v1",
            plural: "events",
            singular: "event",
            kind: "Event",
            namespaced: true,
            verbs: ALL_VERBS,
            short_names: &["ev"],
            categories: &[],
            status: false,
            schema: StructuralSchema::for_builtin::<api::events::v1::Event>,
        },
        BuiltinSpec {
            builtin: Builtin::CustomResourceDefinition,
            group: "apiextensions.k8s.io",
            version: "v1",
            plural: "customresourcedefinitions",
            singular: "customresourcedefinition",
            kind: "CustomResourceDefinition",
            namespaced: false,
            verbs: ALL_VERBS,
            short_names: &["crd", "crds"],
            categories: &["api-extensions"],
            status: true,
            schema: StructuralSchema::for_builtin::<apiext::CustomResourceDefinition>,
        },
    ]
}

/// The built-in types, built once per process (schema generation is the expensive part).
fn builtin_types() -> &'static [Arc<ResourceType>] {
    static TYPES: OnceLock<Vec<Arc<ResourceType>>> = OnceLock::new();
    TYPES.get_or_init(|| {
        builtin_specs()
            .into_iter()
            .map(|s| {
                Arc::new(ResourceType {
                    group: s.group.into(),
                    version: s.version.into(),
                    plural: s.plural.into(),
                    singular: s.singular.into(),
                    kind: s.kind.into(),
                    list_kind: format!("{}List", s.kind),
                    namespaced: s.namespaced,
                    verbs: s.verbs.to_vec(),
                    short_names: s.short_names.iter().map(|n| n.to_string()).collect(),
                    categories: s.categories.iter().map(|n| n.to_string()).collect(),
                    status_subresource: s.status,
                    builtin: Some(s.builtin),
                    schema: Arc::new((s.schema)()),
                    selectable_fields: Vec::new(),
                    crd_name: None,
                })
            })
            .collect()
    })
}

/// kube's version priority: GA before beta before alpha, higher numbers first, others last.
pub fn version_priority(v: &str) -> (u8, i64, i64, String) {
    let parse = |rest: &str| -> Option<(u8, i64, i64)> {
        let (major, tail) = rest.split_at(
            rest.find(|c: char| !c.is_ascii_digit())
                .unwrap_or(rest.len()),
        );
        let major: i64 = major.parse().ok()?;
        if tail.is_empty() {
            return Some((0, -major, 0));
        }
        for (tag, rank) in [("beta", 1u8), ("alpha", 2u8)] {
            if let Some(n) = tail.strip_prefix(tag) {
                let minor: i64 = n.parse().ok()?;
                return Some((rank, -major, -minor));
            }
        }
        None
    };
    match v.strip_prefix('v').and_then(parse) {
        Some((rank, major, minor)) => (rank, major, minor, String::new()),
        None => (3, 0, 0, v.to_string()),
    }
}

/// Resource types derived from one CRD, or why the CRD cannot be served.
pub fn types_from_crd(crd: &Value) -> Result<Vec<Arc<ResourceType>>, String> {
    let name = crd
        .pointer("/metadata/name")
        .and_then(Value::as_str)
        .unwrap_or_default();
    let spec = crd.get("spec").ok_or("spec is required")?;
    let group = spec
        .get("group")
        .and_then(Value::as_str)
        .ok_or("spec.group is required")?;
    let names = spec.get("names").ok_or("spec.names is required")?;
    let plural = names
        .get("plural")
        .and_then(Value::as_str)
        .ok_or("spec.names.plural is required")?;
    let kind = names
        .get("kind")
        .and_then(Value::as_str)
        .ok_or("spec.names.kind is required")?;
    let singular = names
        .get("singular")
        .and_then(Value::as_str)
        .map(String::from)
        .unwrap_or_else(|| kind.to_lowercase());
    let list_kind = names
        .get("listKind")
        .and_then(Value::as_str)
        .map(String::from)
        .unwrap_or_else(|| format!("{kind}List"));
    let strings = |v: Option<&Value>| -> Vec<String> {
        v.and_then(Value::as_array)
            .map(|a| {
                a.iter()
                    .filter_map(Value::as_str)
                    .map(String::from)
                    .collect()
            })
            .unwrap_or_default()
    };
    let namespaced = spec.get("scope").and_then(Value::as_str) == Some("Namespaced");
    let mut out = Vec::new();
    for v in spec
        .get("versions")
        .and_then(Value::as_array)
        .into_iter()
        .flatten()
    {
        if v.get("served").and_then(Value::as_bool) != Some(true) {
            continue;
        }
        let version = v.get("name").and_then(Value::as_str).unwrap_or_default();
        let schema = v.pointer("/schema/openAPIV3Schema");
        let selectable_fields = v
            .get("selectableFields")
            .and_then(Value::as_array)
            .map(|a| {
                a.iter()
                    .filter_map(|f| f.get("jsonPath").and_then(Value::as_str))
                    .map(|p| {
                        let label = p.trim_start_matches('.').to_string();
                        let pointer = format!("/{}", label.replace('.', "/"));
                        (label, pointer)
                    })
                    .collect()
            })
            .unwrap_or_default();
        out.push(Arc::new(ResourceType {
            group: group.into(),
            version: version.into(),
            plural: plural.into(),
            singular: singular.clone(),
            kind: kind.into(),
            list_kind: list_kind.clone(),
            namespaced,
            verbs: CR_VERBS.to_vec(),
            short_names: strings(names.get("shortNames")),
            categories: strings(names.get("categories")),
            status_subresource: v.pointer("/subresources/status").is_some(),
            builtin: None,
            schema: Arc::new(StructuralSchema::for_custom_resource(schema)),
            selectable_fields,
            crd_name: Some(name.to_string()),
        }));
    }
    Ok(out)
}

/// Every served type: the built-ins plus those of established CRDs.
#[derive(Clone, Debug, Default)]
pub struct Catalog {
    custom: BTreeMap<String, Vec<Arc<ResourceType>>>,
}

impl Catalog {
    pub fn new() -> Self {
        Catalog::default()
    }

    pub fn all(&self) -> impl Iterator<Item = &Arc<ResourceType>> {
        builtin_types().iter().chain(self.custom.values().flatten())
    }

    pub fn find(&self, group: &str, version: &str, plural: &str) -> Option<Arc<ResourceType>> {
        self.all()
            .find(|t| t.group == group && t.version == version && t.plural == plural)
            .cloned()
    }

    pub fn find_kind(&self, api_version: &str, kind: &str) -> Option<Arc<ResourceType>> {
        self.all()
            .find(|t| t.api_version() == api_version && t.kind == kind)
            .cloned()
    }

    /// The type of a built-in kind.
    pub fn builtin(&self, b: Builtin) -> Arc<ResourceType> {
        builtin_types()
            .iter()
            .find(|t| t.builtin == Some(b))
            .cloned()
            .unwrap_or_else(|| unreachable_builtin(b))
    }

    /// Replaces the types served for a CRD (empty removes them).
    pub fn set_crd(&mut self, crd_name: &str, types: Vec<Arc<ResourceType>>) {
        if types.is_empty() {
            self.custom.remove(crd_name);
        } else {
            self.custom.insert(crd_name.to_string(), types);
        }
    }

    /// A `group/plural` already served by a CRD other than `crd_name`, or by a built-in.
    pub fn conflicts_with(&self, crd_name: &str, group: &str, plural: &str) -> bool {
        builtin_types()
            .iter()
            .any(|t| t.group == group && t.plural == plural)
            || self.custom.iter().any(|(n, ts)| {
                n != crd_name && ts.iter().any(|t| t.group == group && t.plural == plural)
            })
    }

    fn groups(&self) -> BTreeMap<String, Vec<String>> {
        let mut groups: BTreeMap<String, Vec<String>> = BTreeMap::new();
        for t in self.all() {
            let vs = groups.entry(t.group.clone()).or_default();
            if !vs.contains(&t.version) {
                vs.push(t.version.clone());
            }
        }
        for vs in groups.values_mut() {
            vs.sort_by_key(|v| version_priority(v));
        }
        groups
    }

    pub fn has_group_version(&self, group: &str, version: &str) -> bool {
        self.all().any(|t| t.group == group && t.version == version)
    }

    /// `/api`.
    pub fn api_versions(&self, server_address: &str) -> Value {
        json!({
            "kind": "APIVersions",
            "versions": ["v1"],
            "serverAddressByClientCIDRs": [{"clientCIDR": "0.0.0.0/0", "serverAddress": server_address}]
        })
    }

    fn group_json(group: &str, versions: &[String]) -> Value {
        let vs: Vec<Value> = versions
            .iter()
            .map(|v| json!({"groupVersion": format!("{group}/{v}"), "version": v}))
            .collect();
        json!({
            "name": group,
            "versions": vs,
            "preferredVersion": vs.first().cloned().unwrap_or(Value::Null),
        })
    }

    /// `/apis`.
    pub fn api_group_list(&self) -> Value {
        let groups: Vec<Value> = self
            .groups()
            .iter()
            .filter(|(g, _)| !g.is_empty())
            .map(|(g, vs)| Self::group_json(g, vs))
            .collect();
        json!({"kind": "APIGroupList", "apiVersion": "v1", "groups": groups})
    }

    /// `/apis/{group}`.
    pub fn api_group(&self, group: &str) -> Option<Value> {
        let groups = self.groups();
        let vs = groups.get(group).filter(|_| !group.is_empty())?;
        let mut g = Self::group_json(group, vs);
        if let Some(o) = g.as_object_mut() {
            o.insert("kind".into(), json!("APIGroup"));
            o.insert("apiVersion".into(), json!("v1"));
        }
        Some(g)
    }

    /// `/api/v1` or `/apis/{group}/{version}`.
    pub fn api_resource_list(&self, group: &str, version: &str) -> Option<Value> {
        if !self.has_group_version(group, version) {
            return None;
        }
        let mut resources = Vec::new();
        let mut types: Vec<&Arc<ResourceType>> = self
            .all()
            .filter(|t| t.group == group && t.version == version)
            .collect();
        types.sort_by(|a, b| a.plural.cmp(&b.plural));
        for t in types {
            let mut r = json!({
                "name": t.plural,
                "singularName": t.singular,
                "namespaced": t.namespaced,
                "kind": t.kind,
                "verbs": t.verbs,
            });
            if let Some(o) = r.as_object_mut() {
                if !t.short_names.is_empty() {
                    o.insert("shortNames".into(), json!(t.short_names));
                }
                if !t.categories.is_empty() {
                    o.insert("categories".into(), json!(t.categories));
                }
            }
            resources.push(r);
            if t.status_subresource {
                resources.push(json!({
                    "name": format!("{}/status", t.plural),
                    "singularName": "",
                    "namespaced": t.namespaced,
                    "kind": t.kind,
                    "verbs": STATUS_VERBS,
                }));
            }
        }
        let group_version = if group.is_empty() {
            version.to_string()
        } else {
            format!("{group}/{version}")
        };
        Some(json!({
            "kind": "APIResourceList",
            "apiVersion": "v1",
            "groupVersion": group_version,
            "resources": resources,
        }))
    }

    /// Aggregated discovery (`apidiscovery.k8s.io/v2`) for the core group (`core == true`,
    /// served at `/api`) or every other group (`/apis`).
    pub fn aggregated(&self, core: bool) -> Value {
        let items: Vec<Value> = self
            .groups()
            .iter()
            .filter(|(g, _)| g.is_empty() == core)
            .map(|(g, vs)| {
                let versions: Vec<Value> = vs
                    .iter()
                    .map(|v| {
                        let mut types: Vec<&Arc<ResourceType>> =
                            self.all().filter(|t| t.group == *g && t.version == *v).collect();
                        types.sort_by(|a, b| a.plural.cmp(&b.plural));
                        let resources: Vec<Value> = types
                            .iter()
                            .map(|t| {
                                let kind = json!({"group": t.group, "version": t.version, "kind": t.kind});
                                let mut r = json!({
                                    "resource": t.plural,
                                    "responseKind": kind,
                                    "scope": if t.namespaced { "Namespaced" } else { "Cluster" },
                                    "singularResource": t.singular,
                                    "verbs": t.verbs,
                                });
                                if let Some(o) = r.as_object_mut() {
                                    if !t.short_names.is_empty() {
                                        o.insert("shortNames".into(), json!(t.short_names));
                                    }
                                    if !t.categories.is_empty() {
                                        o.insert("categories".into(), json!(t.categories));
                                    }
                                    if t.status_subresource {
                                        o.insert(
                                            "subresources".into(),
                                            json!([{"subresource": "status", "responseKind": kind, "verbs": STATUS_VERBS}]),
                                        );
                                    }
                                }
                                r
                            })
                            .collect();
                        json!({"version": v, "resources": resources, "freshness": "Current"})
                    })
                    .collect();
                json!({"metadata": {"name": g, "creationTimestamp": null}, "versions": versions})
            })
            .collect();
        json!({
            "kind": "APIGroupDiscoveryList",
            "apiVersion": "apidiscovery.k8s.io/v2",
            "metadata": {},
            "items": items,
        })
    }
}

#[cold]
fn unreachable_builtin(b: Builtin) -> Arc<ResourceType> {
    // Every `Builtin` variant is listed in `builtin_specs`; reaching this is a bug in this crate.
    panic!("built-in kind {b:?} missing from the built-in type table")
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn versions_sort_by_kube_priority() {
        let mut v = vec!["v1alpha1", "v2beta1", "v1", "foo", "v1beta2", "v2"];
        v.sort_by_key(|x| version_priority(x));
        assert_eq!(v, vec!["v2", "v1", "v2beta1", "v1beta2", "v1alpha1", "foo"]);
    }

    #[test]
    fn crd_versions_become_served_types() {
        let crd = json!({
            "metadata": {"name": "ipaddresspools.ferrolb.io"},
            "spec": {
                "group": "ferrolb.io",
                "scope": "Namespaced",
                "names": {"plural": "ipaddresspools", "kind": "IPAddressPool", "shortNames": ["ipp"], "categories": ["ferrolb"]},
                "versions": [
                    {"name": "v1", "served": true, "storage": true, "subresources": {"status": {}},
                     "schema": {"openAPIV3Schema": {"type": "object"}}},
                    {"name": "v1alpha1", "served": false, "storage": false}
                ]
            }
        });
        let types = types_from_crd(&crd).unwrap();
        assert_eq!(types.len(), 1);
        let t = &types[0];
        assert_eq!(
            (t.singular.as_str(), t.list_kind.as_str()),
            ("ipaddresspool", "IPAddressPoolList")
        );
        assert!(t.namespaced && t.status_subresource);
        let mut catalog = Catalog::new();
        catalog.set_crd("ipaddresspools.ferrolb.io", types);
        let list = catalog.api_resource_list("ferrolb.io", "v1").unwrap();
        assert_eq!(list["resources"][1]["name"], "ipaddresspools/status");
        assert!(
            catalog.api_group_list()["groups"]
                .as_array()
                .unwrap()
                .iter()
                .any(|g| g["name"] == "ferrolb.io")
        );
    }
}
