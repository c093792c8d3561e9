//! The structural view of a resource's schema that merges, apply and pruning need.
//!
//! Owns [`StructuralSchema`]: an OpenAPI v3 style JSON schema document (root plus `$defs`)
//! read lazily through [`SchemaNode`]. For built-in kinds the document is generated from
//! k8s-openapi's `JsonSchema` impls and then annotated with the `x-kubernetes-list-type`,
//! `x-kubernetes-list-map-keys`, `x-kubernetes-map-type`, `x-kubernetes-patch-strategy` and
//! `x-kubernetes-patch-merge-key` markers that kube-apiserver's own OpenAPI carries for the
//! fields this server's kinds have (k8s-openapi does not export them as data). For custom
//! resources the document is the CRD's `openAPIV3Schema` with `metadata` replaced by the real
//! `ObjectMeta` schema, as kube-apiserver does.
//!
//! It does not walk objects for apply (that is `ssa`) and does not validate values beyond the
//! pruning and defaulting of custom resources.

use serde_json::{Map, Value, json};

/// How a list's items are identified, from `x-kubernetes-list-type`.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum ListType {
    /// The list is one value; applying replaces it whole (the default).
    Atomic,
    /// A list of unique scalars, items identified by value.
    Set,
    /// A list of objects identified by the named key fields.
    Map(Vec<String>),
}

/// What a schema node describes, as structured-merge-diff classifies it.
#[derive(Clone, Debug)]
pub enum Shape<'a> {
    /// An object with declared fields.
    Struct { node: SchemaNode<'a>, atomic: bool },
    /// An object with arbitrary keys.
    Map { elem: SchemaNode<'a>, atomic: bool },
    /// A list.
    List {
        elem: SchemaNode<'a>,
        list: ListType,
    },
    /// A string, number, boolean or int-or-string.
    Scalar,
    /// No schema: the value's own JSON type decides (maps granular, lists atomic).
    Untyped,
}

/// A schema document: the root schema and its definitions.
#[derive(Clone, Debug)]
pub struct StructuralSchema {
    root: Value,
    defs: Map<String, Value>,
}

/// A position in a [`StructuralSchema`]; `node == None` means "no schema here".
#[derive(Clone, Copy, Debug)]
pub struct SchemaNode<'a> {
    schema: &'a StructuralSchema,
    node: Option<&'a Value>,
}

const OBJECT_META: &str = "io.k8s.apimachinery.pkg.apis.meta.v1.ObjectMeta";

/// `(definition, property, markers)`: the list/map markers of kube-apiserver's OpenAPI for the
/// fields of the built-in kinds served here. An empty property names the definition itself.
const BUILTIN_MARKERS: &[(&str, &str, &str)] = &[
    (
        OBJECT_META,
        "finalizers",
        r#"{"x-kubernetes-list-type":"set","x-kubernetes-patch-strategy":"merge"}"#,
    ),
    (
        OBJECT_META,
        "ownerReferences",
        r#"{"x-kubernetes-list-type":"map","x-kubernetes-list-map-keys":["uid"],"x-kubernetes-patch-strategy":"merge","x-kubernetes-patch-merge-key":"uid"}"#,
    ),
    (
        "io.k8s.apimachinery.pkg.apis.meta.v1.OwnerReference",
        "",
        r#"{"x-kubernetes-map-type":"atomic"}"#,
    ),
    (
        "io.k8s.apimachinery.pkg.apis.meta.v1.LabelSelector",
        "",
        r#"{"x-kubernetes-map-type":"atomic"}"#,
    ),
    (
        "io.k8s.api.core.v1.ObjectReference",
        "",
        r#"{"x-kubernetes-map-type":"atomic"}"#,
    ),
    (
        "io.k8s.api.core.v1.LocalObjectReference",
        "",
        r#"{"x-kubernetes-map-type":"atomic"}"#,
    ),
    (
        "io.k8s.api.core.v1.ServiceSpec",
        "ports",
        r#"{"x-kubernetes-list-type":"map","x-kubernetes-list-map-keys":["port","protocol"],"x-kubernetes-patch-strategy":"merge","x-kubernetes-patch-merge-key":"port"}"#,
    ),
    (
        "io.k8s.api.core.v1.ServiceSpec",
        "selector",
        r#"{"x-kubernetes-map-type":"atomic"}"#,
    ),
    (
        "io.k8s.api.core.v1.ServiceSpec",
        "clusterIPs",
        r#"{"x-kubernetes-list-type":"atomic"}"#,
    ),
    (
        "io.k8s.api.core.v1.ServiceSpec",
        "externalIPs",
        r#"{"x-kubernetes-list-type":"atomic"}"#,
    ),
    (
        "io.k8s.api.core.v1.ServiceSpec",
        "loadBalancerSourceRanges",
        r#"{"x-kubernetes-list-type":"atomic"}"#,
    ),
    (
        "io.k8s.api.core.v1.ServiceSpec",
        "ipFamilies",
        r#"{"x-kubernetes-list-type":"atomic"}"#,
    ),
    (
        "io.k8s.api.core.v1.ServicePort",
        "protocol",
        r#"{"default":"TCP"}"#,
    ),
    (
        "io.k8s.api.core.v1.ServiceStatus",
        "conditions",
        r#"{"x-kubernetes-list-type":"map","x-kubernetes-list-map-keys":["type"],"x-kubernetes-patch-strategy":"merge","x-kubernetes-patch-merge-key":"type"}"#,
    ),
    (
        "io.k8s.api.core.v1.LoadBalancerStatus",
        "ingress",
        r#"{"x-kubernetes-list-type":"atomic"}"#,
    ),
    (
        "io.k8s.api.core.v1.LoadBalancerIngress",
        "ports",
        r#"{"x-kubernetes-list-type":"atomic"}"#,
    ),
    (
        "io.k8s.api.core.v1.NodeSpec",
        "podCIDRs",
        r#"{"x-kubernetes-list-type":"set","x-kubernetes-patch-strategy":"merge"}"#,
    ),
    (
        "io.k8s.api.core.v1.NodeSpec",
        "taints",
        r#"{"x-kubernetes-list-type":"atomic"}"#,
    ),
    (
        "io.k8s.api.core.v1.NodeStatus",
        "conditions",
        r#"{"x-kubernetes-list-type":"map","x-kubernetes-list-map-keys":["type"],"x-kubernetes-patch-strategy":"merge","x-kubernetes-patch-merge-key":"type"}"#,
    ),
    (
        "io.k8s.api.core.v1.NodeStatus",
        "addresses",
        r#"{"x-kubernetes-list-type":"map","x-kubernetes-list-map-keys":["type"],"x-kubernetes-patch-strategy":"merge","x-kubernetes-patch-merge-key":"type"}"#,
    ),
    (
        "io.k8s.api.core.v1.NamespaceSpec",
        "finalizers",
        r#"{"x-kubernetes-list-type":"atomic"}"#,
    ),
    (
        "io.k8s.api.core.v1.NamespaceStatus",
        "conditions",
        r#"{"x-kubernetes-list-type":"map","x-kubernetes-list-map-keys":["type"],"x-kubernetes-patch-strategy":"merge","x-kubernetes-patch-merge-key":"type"}"#,
    ),
    (
        "io.k8s.api.core.v1.PodSpec",
        "containers",
        r#"{"x-kubernetes-list-type":"map","x-kubernetes-list-map-keys":["name"],"x-kubernetes-patch-strategy":"merge","x-kubernetes-patch-merge-key":"name"}"#,
    ),
    (
        "io.k8s.api.core.v1.PodSpec",
        "initContainers",
        r#"{"x-kubernetes-list-type":"map","x-kubernetes-list-map-keys":["name"],"x-kubernetes-patch-strategy":"merge","x-kubernetes-patch-merge-key":"name"}"#,
    ),
    (
        "io.k8s.api.core.v1.PodSpec",
        "volumes",
        r#"{"x-kubernetes-list-type":"map","x-kubernetes-list-map-keys":["name"],"x-kubernetes-patch-strategy":"merge,retainKeys","x-kubernetes-patch-merge-key":"name"}"#,
    ),
    (
        "io.k8s.api.core.v1.PodStatus",
        "conditions",
        r#"{"x-kubernetes-list-type":"map","x-kubernetes-list-map-keys":["type"],"x-kubernetes-patch-strategy":"merge","x-kubernetes-patch-merge-key":"type"}"#,
    ),
    (
        "io.k8s.api.core.v1.Container",
        "ports",
        r#"{"x-kubernetes-list-type":"map","x-kubernetes-list-map-keys":["containerPort","protocol"],"x-kubernetes-patch-strategy":"merge","x-kubernetes-patch-merge-key":"containerPort"}"#,
    ),
    (
        "io.k8s.api.core.v1.Container",
        "env",
        r#"{"x-kubernetes-list-type":"map","x-kubernetes-list-map-keys":["name"],"x-kubernetes-patch-strategy":"merge","x-kubernetes-patch-merge-key":"name"}"#,
    ),
    (
        "io.k8s.api.core.v1.ContainerPort",
        "protocol",
        r#"{"default":"TCP"}"#,
    ),
    (
        "io.k8s.api.discovery.v1.EndpointSlice",
        "endpoints",
        r#"{"x-kubernetes-list-type":"atomic"}"#,
    ),
    (
        "io.k8s.api.discovery.v1.EndpointSlice",
        "ports",
        r#"{"x-kubernetes-list-type":"atomic"}"#,
    ),
    (
        "io.k8s.api.discovery.v1.Endpoint",
        "addresses",
        r#"{"x-kubernetes-list-type":"set"}"#,
    ),
    (
        "io.k8s.apiextensions-apiserver.pkg.apis.apiextensions.v1.CustomResourceDefinitionStatus",
        "conditions",
        r#"{"x-kubernetes-list-type":"map","x-kubernetes-list-map-keys":["type"]}"#,
    ),
];

fn ref_target(v: &Value) -> Option<&str> {
    v.get("$ref")
        .and_then(Value::as_str)
        .and_then(|r| r.strip_prefix("#/$defs/"))
}

impl StructuralSchema {
    /// The schema of a k8s-openapi type, with kube-apiserver's list/map markers.
    pub fn for_builtin<T: schemars::JsonSchema>() -> StructuralSchema {
        let generated = schemars::generate::SchemaSettings::draft2020_12()
            .into_generator()
            .into_root_schema_for::<T>();
        let mut root = generated.to_value();
        let defs = match root.as_object_mut().and_then(|o| o.remove("$defs")) {
            Some(Value::Object(defs)) => defs,
            _ => Map::new(),
        };
        let mut schema = StructuralSchema { root, defs };
        schema.apply_builtin_markers();
        schema
    }

    /// The schema of a custom resource version: the CRD's `openAPIV3Schema`, with
    /// `apiVersion`/`kind` as strings and `metadata` as the real ObjectMeta.
    pub fn for_custom_resource(open_api_v3_schema: Option<&Value>) -> StructuralSchema {
        let meta = StructuralSchema::for_builtin::<
            k8s_openapi::apimachinery::pkg::apis::meta::v1::ObjectMeta,
        >();
        let mut root = open_api_v3_schema.cloned().unwrap_or_else(
            || json!({"type": "object", "x-kubernetes-preserve-unknown-fields": true}),
        );
        if let Some(obj) = root.as_object_mut() {
            obj.insert("type".into(), json!("object"));
            let props = obj
                .entry("properties")
                .or_insert_with(|| Value::Object(Map::new()));
            if let Some(props) = props.as_object_mut() {
                props.insert("apiVersion".into(), json!({"type": "string"}));
                props.insert("kind".into(), json!({"type": "string"}));
                props.insert(
                    "metadata".into(),
                    json!({"$ref": format!("#/$defs/{OBJECT_META}")}),
                );
            }
        }
        let mut defs = meta.defs.clone();
        defs.insert(OBJECT_META.into(), meta.root.clone());
        StructuralSchema { root, defs }
    }

    fn apply_builtin_markers(&mut self) {
        for (def, prop, markers) in BUILTIN_MARKERS {
            let Ok(Value::Object(markers)) = serde_json::from_str::<Value>(markers) else {
                continue;
            };
            let target = if self.root.get("title").and_then(Value::as_str) == Some(def) {
                Some(&mut self.root)
            } else {
                self.defs.get_mut(*def)
            };
            let Some(target) = target else { continue };
            let node = if prop.is_empty() {
                Some(target)
            } else {
                target.get_mut("properties").and_then(|p| p.get_mut(*prop))
            };
            if let Some(Value::Object(node)) = node {
                for (k, v) in &markers {
                    node.insert(k.clone(), v.clone());
                }
            }
        }
    }

    pub fn root(&self) -> SchemaNode<'_> {
        SchemaNode {
            schema: self,
            node: Some(&self.root),
        }
    }
}

impl<'a> SchemaNode<'a> {
    /// A node without schema.
    pub fn untyped(schema: &'a StructuralSchema) -> Self {
        SchemaNode { schema, node: None }
    }

    fn with(&self, node: Option<&'a Value>) -> Self {
        SchemaNode {
            schema: self.schema,
            node,
        }
    }

    /// The node after following `$ref`s.
    fn target(&self) -> Option<&'a Value> {
        let mut cur = self.node?;
        for _ in 0..32 {
            match ref_target(cur) {
                Some(name) => cur = self.schema.defs.get(name)?,
                None => return Some(cur),
            }
        }
        None
    }

    /// An annotation, looked up on the referring node first, then along the `$ref` chain.
    pub fn attr(&self, name: &str) -> Option<&'a Value> {
        let mut cur = self.node?;
        for _ in 0..32 {
            if let Some(v) = cur.get(name) {
                return Some(v);
            }
            match ref_target(cur) {
                Some(def) => cur = self.schema.defs.get(def)?,
                None => return None,
            }
        }
        None
    }

    fn is_true(&self, name: &str) -> bool {
        self.attr(name).and_then(Value::as_bool) == Some(true)
    }

    pub fn is_untyped(&self) -> bool {
        self.node.is_none()
    }

    pub fn preserves_unknown_fields(&self) -> bool {
        self.is_true("x-kubernetes-preserve-unknown-fields")
    }

    pub fn nullable(&self) -> bool {
        self.is_true("nullable")
    }

    pub fn default_value(&self) -> Option<&'a Value> {
        self.attr("default")
    }

    /// The schema's classification of this node.
    pub fn shape(&self) -> Shape<'a> {
        let Some(t) = self.target() else {
            return Shape::Untyped;
        };
        if self.is_true("x-kubernetes-int-or-string") {
            return Shape::Scalar;
        }
        let atomic_map =
            self.attr("x-kubernetes-map-type").and_then(Value::as_str) == Some("atomic");
        let ty = t.get("type").and_then(Value::as_str);
        match ty {
            Some("string" | "integer" | "number" | "boolean") => Shape::Scalar,
            Some("array") => Shape::List {
                elem: self.with(t.get("items")),
                list: self.list_type(),
            },
            _ if t.get("items").is_some() => Shape::List {
                elem: self.with(t.get("items")),
                list: self.list_type(),
            },
            _ if t.get("properties").is_some() => Shape::Struct {
                node: *self,
                atomic: atomic_map,
            },
            _ => match t.get("additionalProperties") {
                Some(ap @ Value::Object(_)) => Shape::Map {
                    elem: self.with(Some(ap)),
                    atomic: atomic_map,
                },
                Some(Value::Bool(true)) => Shape::Map {
                    elem: self.with(None),
                    atomic: atomic_map,
                },
                _ if ty == Some("object") && !self.preserves_unknown_fields() => Shape::Map {
                    elem: self.with(None),
                    atomic: atomic_map,
                },
                _ => Shape::Untyped,
            },
        }
    }

    /// The list type of a list node (`Atomic` unless the schema says otherwise).
    pub fn list_type(&self) -> ListType {
        match self.attr("x-kubernetes-list-type").and_then(Value::as_str) {
            Some("set") => ListType::Set,
            Some("map") => ListType::Map(
                self.attr("x-kubernetes-list-map-keys")
                    .and_then(Value::as_array)
                    .map(|keys| {
                        keys.iter()
                            .filter_map(|k| k.as_str().map(String::from))
                            .collect()
                    })
                    .unwrap_or_default(),
            ),
            _ => ListType::Atomic,
        }
    }

    /// Strategic-merge-patch strategy (`merge`, `retainKeys`, `merge,retainKeys`) and merge key.
    pub fn patch_strategy(&self) -> (Option<&'a str>, Option<&'a str>) {
        (
            self.attr("x-kubernetes-patch-strategy")
                .and_then(Value::as_str),
            self.attr("x-kubernetes-patch-merge-key")
                .and_then(Value::as_str),
        )
    }

    /// The declared property `name` of a struct node, if declared.
    pub fn declared_field(&self, name: &str) -> Option<SchemaNode<'a>> {
        let t = self.target()?;
        t.get("properties")
            .and_then(|p| p.get(name))
            .map(|n| self.with(Some(n)))
    }

    /// Whether the node is an object with arbitrary keys (`additionalProperties`), i.e. a Go map.
    pub fn is_map(&self) -> bool {
        self.target()
            .and_then(|t| t.get("additionalProperties"))
            .is_some_and(|ap| ap.is_object() || ap.as_bool() == Some(true))
    }

    /// Names of `required` properties.
    pub fn required(&self) -> Vec<&'a str> {
        self.target()
            .and_then(|t| t.get("required"))
            .and_then(Value::as_array)
            .map(|r| r.iter().filter_map(Value::as_str).collect())
            .unwrap_or_default()
    }

    /// Declared properties of a struct node.
    pub fn properties(&self) -> Vec<(&'a str, SchemaNode<'a>)> {
        self.target()
            .and_then(|t| t.get("properties"))
            .and_then(Value::as_object)
            .map(|p| {
                p.iter()
                    .map(|(k, v)| (k.as_str(), self.with(Some(v))))
                    .collect()
            })
            .unwrap_or_default()
    }

    /// The schema of key `name` in an object node: the declared property, else the
    /// `additionalProperties` schema, else none.
    pub fn child(&self, name: &str) -> SchemaNode<'a> {
        if let Some(f) = self.declared_field(name) {
            return f;
        }
        match self.target().and_then(|t| t.get("additionalProperties")) {
            Some(ap @ Value::Object(_)) => self.with(Some(ap)),
            _ => self.with(None),
        }
    }

    /// The schema of a list node's items.
    pub fn items(&self) -> SchemaNode<'a> {
        self.with(self.target().and_then(|t| t.get("items")))
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use k8s_openapi::api::core::v1::Service;

    #[test]
    fn service_schema_carries_kube_apiserver_list_markers() {
        let s = StructuralSchema::for_builtin::<Service>();
        let root = s.root();
        let spec = root.child("spec");
        assert_eq!(
            spec.child("ports").list_type(),
            ListType::Map(vec!["port".into(), "protocol".into()])
        );
        let status = root.child("status");
        assert_eq!(
            status.child("conditions").list_type(),
            ListType::Map(vec!["type".into()])
        );
        assert_eq!(
            status.child("loadBalancer").child("ingress").list_type(),
            ListType::Atomic
        );
        assert_eq!(
            root.child("metadata").child("finalizers").list_type(),
            ListType::Set
        );
        assert!(matches!(
            spec.child("selector").shape(),
            Shape::Map { atomic: true, .. }
        ));
        assert!(matches!(
            root.child("metadata").child("labels").shape(),
            Shape::Map { atomic: false, .. }
        ));
        assert!(matches!(spec.shape(), Shape::Struct { atomic: false, .. }));
        assert!(matches!(
            spec.child("ports").items().child("targetPort").shape(),
            Shape::Scalar
        ));
        assert_eq!(
            spec.child("ports")
                .items()
                .child("protocol")
                .default_value(),
            Some(&json!("TCP"))
        );
    }

    #[test]
    fn custom_resource_schema_uses_object_meta_and_crd_markers() {
        let crd = json!({
            "type": "object",
            "properties": {
                "spec": {"type": "object", "properties": {
                    "peers": {"type": "array", "x-kubernetes-list-type": "map",
                              "x-kubernetes-list-map-keys": ["name"],
                              "items": {"type": "object", "properties": {"name": {"type": "string"}}}},
                    "addresses": {"type": "array", "items": {"type": "string"}}
                }}
            }
        });
        let s = StructuralSchema::for_custom_resource(Some(&crd));
        let root = s.root();
        assert_eq!(
            root.child("metadata").child("finalizers").list_type(),
            ListType::Set
        );
        assert_eq!(
            root.child("spec").child("peers").list_type(),
            ListType::Map(vec!["name".into()])
        );
        assert_eq!(
            root.child("spec").child("addresses").list_type(),
            ListType::Atomic
        );
    }
}
