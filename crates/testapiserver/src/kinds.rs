//! Per-kind rules: decoding, defaulting, create/update preparation, allocation, validation.
//!
//! Owns what kube-apiserver's registry strategies do for each kind served here:
//! * decoding a body into the kind's shape — built-in kinds round-trip through k8s-openapi's
//!   typed structs (unknown fields dropped and reported, type errors rejected, times normalised
//!   to `Time`/`MicroTime` precision, empty lists and maps omitted); custom resources are
//!   pruned and defaulted by their structural schema;
//! * decode-time defaults (Service `type`, `sessionAffinity`, port `protocol`/`targetPort`,
//!   traffic policies; Secret `type`, `stringData` folded into `data`; Namespace finalizer);
//! * `PrepareForCreate`/`PrepareForUpdate` (status reset on create, status kept from the old
//!   object on main-resource writes, spec kept on `/status` writes);
//! * Service allocation (cluster IPs per family, node ports, health-check node port);
//! * validation with kube-apiserver's field errors;
//! * which writes bump `metadata.generation`, which field labels a kind supports, and the
//!   fields server-side apply must ignore per endpoint.
//!
//! It does not store, route or watch.

use std::collections::BTreeSet;
use std::net::{IpAddr, Ipv4Addr, Ipv6Addr};

use base64::Engine;
use ipnet::{IpNet, Ipv4Net, Ipv6Net};
use serde::Serialize;
use serde::de::DeserializeOwned;
use serde_json::{Map, Value, json};

use crate::catalog::{Builtin, ResourceType};
use crate::fieldpath::{FieldSet, PathElement};
use crate::schema::{SchemaNode, Shape};
use crate::status::{ApiError, FieldError};
use crate::validation::{self, NameRule};

/// Which endpoint a write came through.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Subresource {
    Main,
    Status,
}

impl Subresource {
    pub fn as_str(self) -> &'static str {
        match self {
            Subresource::Main => "",
            Subresource::Status => "status",
        }
    }
}

/// The cluster-level settings allocation needs.
#[derive(Clone, Debug)]
pub struct ClusterNetwork {
    /// Service CIDRs, primary family first (one or two).
    pub service_cidrs: Vec<IpNet>,
    /// Inclusive node port range.
    pub node_ports: (u16, u16),
}

impl Default for ClusterNetwork {
    /// kubeadm's defaults: 10.96.0.0/16 plus fd00:10:96::/112 (dual-stack), ports 30000-32767.
    fn default() -> Self {
        ClusterNetwork {
            service_cidrs: vec![
                IpNet::V4(Ipv4Net::new_assert(Ipv4Addr::new(10, 96, 0, 0), 16)),
                IpNet::V6(Ipv6Net::new_assert(
                    Ipv6Addr::new(0xfd00, 0x10, 0x96, 0, 0, 0, 0, 0),
                    112,
                )),
            ],
            node_ports: (30000, 32767),
        }
    }
}

/// A decoded body and the unknown fields that were dropped from it.
#[derive(Debug)]
pub struct Decoded {
    pub object: Value,
    pub unknown_fields: Vec<String>,
}

fn roundtrip<T: DeserializeOwned + Serialize>(v: &Value) -> Result<Value, String> {
    let typed: T = serde_json::from_value(v.clone()).map_err(|e| e.to_string())?;
    serde_json::to_value(&typed).map_err(|e| e.to_string())
}

fn roundtrip_builtin(b: Builtin, v: &Value) -> Result<Value, String> {
    use k8s_openapi::api;
    use k8s_openapi::apiextensions_apiserver::pkg::apis::apiextensions::v1 as apiext;
    match b {
        Builtin::Namespace => roundtrip::<api::core::v1::Namespace>(v),
        Builtin::Service => roundtrip::<api::core::v1::Service>(v),
        Builtin::Node => roundtrip::<api::core::v1::Node>(v),
        Builtin::Secret => roundtrip::<api::core::v1::Secret>(v),
        Builtin::Pod => roundtrip::<api::core::v1::Pod>(v),
        Builtin::ConfigMap => roundtrip::<api::core::v1::ConfigMap>(v),
        Builtin::CoreEvent => roundtrip::<api::core::v1::Event>(v),
        Builtin::EndpointSlice => roundtrip::<api::discovery::v1::EndpointSlice>(v),
        Builtin::Lease => roundtrip::<api::coordination::v1::Lease>(v),
        Builtin::Event => roundtrip::<api::events::v1::Event>(v),
        Builtin::CustomResourceDefinition => roundtrip::<apiext::CustomResourceDefinition>(v),
    }
}

/// Paths present (and non-null) in `input` but absent from `output`: the unknown fields.
fn unknown_fields(input: &Value, output: &Value, path: &str, out: &mut Vec<String>) {
    match (input, output) {
        (Value::Object(i), Value::Object(o)) => {
            for (k, iv) in i {
                let p = if path.is_empty() {
                    k.clone()
                } else {
                    format!("{path}.{k}")
                };
                match o.get(k) {
                    None if !iv.is_null() => out.push(p),
                    Some(ov) => unknown_fields(iv, ov, &p, out),
                    None => {}
                }
            }
        }
        (Value::Array(i), Value::Array(o)) if i.len() == o.len() => {
            for (idx, (iv, ov)) in i.iter().zip(o.iter()).enumerate() {
                unknown_fields(iv, ov, &format!("{path}[{idx}]"), out);
            }
        }
        _ => {}
    }
}

/// Drops empty lists and maps from optional fields, as Go's `omitempty` does when
/// kube-apiserver serialises a typed object.
fn drop_empty(node: SchemaNode<'_>, v: &mut Value) {
    match v {
        Value::Object(m) => {
            let required = node.required();
            let keys: Vec<String> = m.keys().cloned().collect();
            for k in keys {
                let child = node.child(&k);
                let remove = match m.get_mut(&k) {
                    Some(cv) => {
                        drop_empty(child, cv);
                        let empty_coll = match cv {
                            Value::Array(a) => a.is_empty(),
                            Value::Object(o) => o.is_empty() && child.is_map(),
                            Value::Null => true,
                            _ => false,
                        };
                        empty_coll && !required.contains(&k.as_str())
                    }
                    None => false,
                };
                if remove {
                    m.remove(&k);
                }
            }
        }
        Value::Array(items) => {
            let elem = node.items();
            for item in items {
                drop_empty(elem, item);
            }
        }
        _ => {}
    }
}

/// Structural pruning and defaulting of a custom resource (the parts of kube-apiserver's
/// structural schema handling this server implements).
fn prune_and_default(node: SchemaNode<'_>, v: &mut Value, path: &str, unknown: &mut Vec<String>) {
    match node.shape() {
        Shape::Struct { .. } => {
            let Value::Object(m) = v else { return };
            let preserve = node.preserves_unknown_fields();
            let keys: Vec<String> = m.keys().cloned().collect();
            for k in keys {
                let p = if path.is_empty() {
                    k.clone()
                } else {
                    format!("{path}.{k}")
                };
                let child = node.child(&k);
                let declared = node.declared_field(&k).is_some() || !child.is_untyped();
                if !declared && !preserve {
                    m.remove(&k);
                    unknown.push(p);
                    continue;
                }
                let null_not_allowed =
                    m.get(&k).is_some_and(Value::is_null) && declared && !child.nullable();
                if null_not_allowed {
                    m.remove(&k);
                    continue;
                }
                if declared && let Some(cv) = m.get_mut(&k) {
                    prune_and_default(child, cv, &p, unknown);
                }
            }
            for (name, prop) in node.properties() {
                if !m.contains_key(name)
                    && let Some(d) = prop.default_value()
                {
                    let mut d = d.clone();
                    let p = if path.is_empty() {
                        name.to_string()
                    } else {
                        format!("{path}.{name}")
                    };
                    prune_and_default(prop, &mut d, &p, unknown);
                    m.insert(name.to_string(), d);
                }
            }
        }
        Shape::Map { elem, .. } => {
            if let Value::Object(m) = v {
                for (k, cv) in m.iter_mut() {
                    prune_and_default(elem, cv, &format!("{path}.{k}"), unknown);
                }
            }
        }
        Shape::List { elem, .. } => {
            if let Value::Array(items) = v {
                for (i, item) in items.iter_mut().enumerate() {
                    prune_and_default(elem, item, &format!("{path}[{i}]"), unknown);
                }
            }
        }
        Shape::Scalar | Shape::Untyped => {}
    }
}

/// Decodes a request body into the kind's shape. Errors are kube-apiserver's decode errors
/// (400 `... cannot be handled as a ...`).
pub fn decode(rt: &ResourceType, input: &Value) -> Result<Decoded, ApiError> {
    let cannot = |e: String| {
        ApiError::bad_request(format!(
            "{} in version \"{}\" cannot be handled as a {}: {e}",
            rt.kind, rt.version, rt.kind
        ))
    };
    if !input.is_object() {
        return Err(cannot(
            "json: cannot unmarshal into Go value: object expected".into(),
        ));
    }
    match rt.builtin {
        Some(b) => {
            let mut out = roundtrip_builtin(b, input).map_err(cannot)?;
            let mut unknown = Vec::new();
            unknown_fields(input, &out, "", &mut unknown);
            drop_empty(rt.schema.root(), &mut out);
            Ok(Decoded {
                object: out,
                unknown_fields: unknown,
            })
        }
        None => {
            let mut out = input.clone();
            let mut unknown = Vec::new();
            if let Some(obj) = out.as_object_mut() {
                if let Some(av) = obj.get("apiVersion")
                    && !av.is_string()
                {
                    return Err(cannot("apiVersion must be a string".into()));
                }
                let meta = obj.remove("metadata").unwrap_or_else(|| json!({}));
                let meta_rt =
                    roundtrip::<k8s_openapi::apimachinery::pkg::apis::meta::v1::ObjectMeta>(&meta)
                        .map_err(|e| cannot(format!("metadata: {e}")))?;
                unknown_fields(&meta, &meta_rt, "metadata", &mut unknown);
                prune_and_default(rt.schema.root(), &mut out, "", &mut unknown);
                if let Some(obj) = out.as_object_mut() {
                    obj.insert("metadata".into(), meta_rt);
                }
            }
            let root = rt.schema.root();
            if let Some(meta) = out.get_mut("metadata") {
                drop_empty(root.child("metadata"), meta);
            }
            Ok(Decoded {
                object: out,
                unknown_fields: unknown,
            })
        }
    }
}

/// The object at `key` of `v`, created (and `v` made an object) if needed.
pub fn object_field_mut<'a>(v: &'a mut Value, key: &str) -> &'a mut Map<String, Value> {
    let root = obj_mut_root(v);
    let field = root
        .entry(key.to_string())
        .or_insert_with(|| Value::Object(Map::new()));
    if !field.is_object() {
        *field = Value::Object(Map::new());
    }
    match field {
        Value::Object(m) => m,
        _ => unreachable!("just made an object"),
    }
}

fn obj_mut<'a>(v: &'a mut Value, key: &str) -> &'a mut Map<String, Value> {
    object_field_mut(v, key)
}

fn s<'a>(v: &'a Value, pointer: &str) -> Option<&'a str> {
    v.pointer(pointer).and_then(Value::as_str)
}

fn set_default(m: &mut Map<String, Value>, key: &str, value: Value) {
    if m.get(key)
        .is_none_or(|v| v.is_null() || v.as_str() == Some(""))
    {
        m.insert(key.to_string(), value);
    }
}

/// Decode-time defaults (`SetDefaults_*`), applied to every written object of the kind.
pub fn apply_defaults(rt: &ResourceType, obj: &mut Value) {
    match rt.builtin {
        Some(Builtin::Service) => default_service(obj),
        Some(Builtin::Secret) => {
            let string_data = obj.as_object_mut().and_then(|o| o.remove("stringData"));
            let top = obj_mut_root(obj);
            set_default(top, "type", json!("Opaque"));
            if let Some(Value::Object(sd)) = string_data {
                let data = obj_mut(obj, "data");
                for (k, v) in sd {
                    let raw = v.as_str().unwrap_or_default();
                    data.insert(
                        k,
                        json!(base64::engine::general_purpose::STANDARD.encode(raw)),
                    );
                }
            }
        }
        _ => {}
    }
}

fn obj_mut_root(v: &mut Value) -> &mut Map<String, Value> {
    if !v.is_object() {
        *v = Value::Object(Map::new());
    }
    match v {
        Value::Object(m) => m,
        _ => unreachable!("just made an object"),
    }
}

fn service_type(obj: &Value) -> &str {
    s(obj, "/spec/type").unwrap_or("ClusterIP")
}

fn default_service(obj: &mut Value) {
    let spec = obj_mut(obj, "spec");
    set_default(spec, "type", json!("ClusterIP"));
    set_default(spec, "sessionAffinity", json!("None"));
    let ty = spec
        .get("type")
        .and_then(Value::as_str)
        .unwrap_or("ClusterIP")
        .to_string();
    if spec.get("sessionAffinity").and_then(Value::as_str) == Some("ClientIP")
        && spec
            .get("sessionAffinityConfig")
            .and_then(|c| c.pointer("/clientIP/timeoutSeconds"))
            .is_none()
    {
        spec.insert(
            "sessionAffinityConfig".into(),
            json!({"clientIP": {"timeoutSeconds": 10800}}),
        );
    }
    if let Some(Value::Array(ports)) = spec.get_mut("ports") {
        for p in ports.iter_mut().filter_map(Value::as_object_mut) {
            set_default(p, "protocol", json!("TCP"));
            let missing_target = match p.get("targetPort") {
                None | Some(Value::Null) => true,
                Some(Value::Number(n)) => n.as_i64() == Some(0),
                Some(Value::String(s)) => s.is_empty(),
                _ => false,
            };
            if missing_target && let Some(port) = p.get("port").cloned() {
                p.insert("targetPort".into(), port);
            }
        }
    }
    if ty == "NodePort" || ty == "LoadBalancer" {
        set_default(spec, "externalTrafficPolicy", json!("Cluster"));
    }
    if ty == "LoadBalancer"
        && spec
            .get("allocateLoadBalancerNodePorts")
            .is_none_or(Value::is_null)
    {
        spec.insert("allocateLoadBalancerNodePorts".into(), json!(true));
    }
    if ty != "ExternalName" {
        set_default(spec, "internalTrafficPolicy", json!("Cluster"));
    }
    // LoadBalancerIPMode (GA in 1.32, on by default since 1.30): an ingress IP defaults to VIP.
    if let Some(Value::Array(ingress)) = obj.pointer_mut("/status/loadBalancer/ingress") {
        for ing in ingress.iter_mut().filter_map(Value::as_object_mut) {
            if ing
                .get("ip")
                .and_then(Value::as_str)
                .is_some_and(|ip| !ip.is_empty())
            {
                set_default(ing, "ipMode", json!("VIP"));
            }
        }
    }
}

/// `PrepareForCreate`.
pub fn prepare_create(rt: &ResourceType, obj: &mut Value) {
    let root = obj_mut_root(obj);
    match rt.builtin {
        Some(Builtin::Service) => {
            root.insert("status".into(), json!({"loadBalancer": {}}));
            let spec = obj_mut(obj, "spec");
            if let Some(ip) = spec
                .get("clusterIP")
                .and_then(Value::as_str)
                .filter(|s| !s.is_empty())
                && spec
                    .get("clusterIPs")
                    .and_then(Value::as_array)
                    .is_none_or(Vec::is_empty)
            {
                let ip = ip.to_string();
                spec.insert("clusterIPs".into(), json!([ip]));
            }
        }
        Some(Builtin::Namespace) => {
            root.insert("status".into(), json!({"phase": "Active"}));
            let spec = obj_mut(obj, "spec");
            let fins = spec.entry("finalizers").or_insert_with(|| json!([]));
            if let Value::Array(f) = fins
                && !f.iter().any(|x| x == "kubernetes")
            {
                f.push(json!("kubernetes"));
            }
        }
        Some(Builtin::Pod) => {
            root.insert("status".into(), json!({"phase": "Pending"}));
        }
        Some(Builtin::CustomResourceDefinition) => {
            root.insert(
                "status".into(),
                json!({"acceptedNames": {"kind": "", "plural": ""}, "storedVersions": []}),
            );
        }
        Some(_) => {}
        None => {
            if rt.status_subresource {
                root.remove("status");
            }
        }
    }
}

fn copy_field(new: &mut Value, old: &Value, key: &str) {
    let root = obj_mut_root(new);
    match old.get(key) {
        Some(v) => {
            root.insert(key.to_string(), v.clone());
        }
        None => {
            root.remove(key);
        }
    }
}

/// `PrepareForUpdate` of the main resource or of `/status`.
pub fn prepare_update(rt: &ResourceType, new: &mut Value, old: &Value, sub: Subresource) {
    match sub {
        Subresource::Main => {
            if rt.status_subresource {
                copy_field(new, old, "status");
            }
            if rt.builtin == Some(Builtin::Service) {
                patch_allocated_values(new, old);
            }
        }
        Subresource::Status => match rt.builtin {
            Some(b) => {
                copy_field(new, old, "spec");
                if b == Builtin::Pod
                    && let Some(meta) = new.get_mut("metadata").and_then(Value::as_object_mut)
                {
                    match old.pointer("/metadata/ownerReferences") {
                        Some(r) => meta.insert("ownerReferences".into(), r.clone()),
                        None => meta.remove("ownerReferences"),
                    };
                }
            }
            None => {
                let status = new.get("status").cloned();
                let managed = new.pointer("/metadata/managedFields").cloned();
                *new = old.clone();
                let root = obj_mut_root(new);
                match status {
                    Some(s) => root.insert("status".into(), s),
                    None => root.remove("status"),
                };
                if let Some(meta) = root.get_mut("metadata").and_then(Value::as_object_mut) {
                    match managed {
                        Some(m) => meta.insert("managedFields".into(), m),
                        None => meta.remove("managedFields"),
                    };
                }
            }
        },
    }
}

fn needs_cluster_ip(svc: &Value) -> bool {
    service_type(svc) != "ExternalName"
}

fn needs_node_ports(svc: &Value) -> bool {
    match service_type(svc) {
        "NodePort" => true,
        "LoadBalancer" => {
            svc.pointer("/spec/allocateLoadBalancerNodePorts")
                .and_then(Value::as_bool)
                != Some(false)
        }
        _ => false,
    }
}

fn needs_health_check_port(svc: &Value) -> bool {
    service_type(svc) == "LoadBalancer" && s(svc, "/spec/externalTrafficPolicy") == Some("Local")
}

/// kube-apiserver's `patchAllocatedValues` and `dropTypeDependentFields`: keep what was
/// allocated when the client did not resend it, release what the new type does not use.
fn patch_allocated_values(new: &mut Value, old: &Value) {
    if needs_cluster_ip(old) && needs_cluster_ip(new) {
        let spec = obj_mut(new, "spec");
        for (k, empty) in [("clusterIP", json!("")), ("clusterIPs", json!([]))] {
            let missing = spec.get(k).is_none_or(|v| v.is_null() || *v == empty);
            if missing && let Some(v) = old.pointer(&format!("/spec/{k}")) {
                spec.insert(k.into(), v.clone());
            }
        }
        for k in ["ipFamilies", "ipFamilyPolicy"] {
            if spec.get(k).is_none_or(Value::is_null)
                && let Some(v) = old.pointer(&format!("/spec/{k}"))
            {
                spec.insert(k.into(), v.clone());
            }
        }
    }
    if needs_node_ports(old) && needs_node_ports(new) {
        let old_ports: Vec<(String, Value)> = old
            .pointer("/spec/ports")
            .and_then(Value::as_array)
            .map(|ps| {
                ps.iter()
                    .map(|p| {
                        (
                            p.get("name")
                                .and_then(Value::as_str)
                                .unwrap_or_default()
                                .to_string(),
                            p.get("nodePort").cloned().unwrap_or(Value::Null),
                        )
                    })
                    .collect()
            })
            .unwrap_or_default();
        if let Some(Value::Array(ports)) = new.pointer_mut("/spec/ports") {
            for p in ports.iter_mut().filter_map(Value::as_object_mut) {
                if p.get("nodePort").and_then(Value::as_i64).unwrap_or(0) == 0 {
                    let name = p
                        .get("name")
                        .and_then(Value::as_str)
                        .unwrap_or_default()
                        .to_string();
                    if let Some((_, np)) = old_ports.iter().find(|(n, _)| *n == name)
                        && !np.is_null()
                    {
                        p.insert("nodePort".into(), np.clone());
                    }
                }
            }
        }
    }
    if needs_health_check_port(old) && needs_health_check_port(new) {
        let spec = obj_mut(new, "spec");
        if spec
            .get("healthCheckNodePort")
            .and_then(Value::as_i64)
            .unwrap_or(0)
            == 0
            && let Some(v) = old.pointer("/spec/healthCheckNodePort")
        {
            spec.insert("healthCheckNodePort".into(), v.clone());
        }
    }
    // Types that no longer use an allocated value lose it (when the client left it unchanged).
    if needs_cluster_ip(old) && !needs_cluster_ip(new) {
        let spec = obj_mut(new, "spec");
        if spec.get("clusterIP") == old.pointer("/spec/clusterIP") {
            spec.remove("clusterIP");
            spec.remove("clusterIPs");
        }
        if spec.get("ipFamilies") == old.pointer("/spec/ipFamilies") {
            spec.remove("ipFamilies");
        }
        if spec.get("ipFamilyPolicy") == old.pointer("/spec/ipFamilyPolicy") {
            spec.remove("ipFamilyPolicy");
        }
    }
    if needs_node_ports(old) && !needs_node_ports(new) {
        let same = old.pointer("/spec/ports").map(node_ports_of)
            == new.pointer("/spec/ports").map(node_ports_of);
        if same && let Some(Value::Array(ports)) = new.pointer_mut("/spec/ports") {
            for p in ports.iter_mut().filter_map(Value::as_object_mut) {
                p.remove("nodePort");
            }
        }
    }
    if needs_health_check_port(old) && !needs_health_check_port(new) {
        let spec = obj_mut(new, "spec");
        if spec.get("healthCheckNodePort") == old.pointer("/spec/healthCheckNodePort") {
            spec.remove("healthCheckNodePort");
        }
    }
    let ty = service_type(new).to_string();
    let spec = obj_mut(new, "spec");
    if ty != "LoadBalancer"
        && old.pointer("/spec/type").and_then(Value::as_str) == Some("LoadBalancer")
    {
        if spec.get("allocateLoadBalancerNodePorts")
            == old.pointer("/spec/allocateLoadBalancerNodePorts")
        {
            spec.remove("allocateLoadBalancerNodePorts");
        }
        if spec.get("loadBalancerClass") == old.pointer("/spec/loadBalancerClass") {
            spec.remove("loadBalancerClass");
        }
    }
    if ty != "NodePort"
        && ty != "LoadBalancer"
        && spec.get("externalTrafficPolicy") == old.pointer("/spec/externalTrafficPolicy")
    {
        spec.remove("externalTrafficPolicy");
    }
}

fn node_ports_of(ports: &Value) -> Vec<i64> {
    ports
        .as_array()
        .map(|ps| {
            ps.iter()
                .map(|p| p.get("nodePort").and_then(Value::as_i64).unwrap_or(0))
                .collect()
        })
        .unwrap_or_default()
}

fn family_of(ip: &IpAddr) -> &'static str {
    if ip.is_ipv4() { "IPv4" } else { "IPv6" }
}

fn cidr_family(c: &IpNet) -> &'static str {
    match c {
        IpNet::V4(_) => "IPv4",
        IpNet::V6(_) => "IPv6",
    }
}

/// Allocates what a Service needs from the cluster (`others` are the other Services).
pub fn allocate_service(
    net: &ClusterNetwork,
    svc: &mut Value,
    old: Option<&Value>,
    others: &[&Value],
) -> Result<(), Vec<FieldError>> {
    let mut errs = Vec::new();
    if needs_cluster_ip(svc) {
        allocate_cluster_ips(net, svc, old, others, &mut errs);
    }
    if needs_node_ports(svc) || needs_health_check_port(svc) {
        let mut used: BTreeSet<i64> = BTreeSet::new();
        for o in others {
            used.extend(
                node_ports_of(o.pointer("/spec/ports").unwrap_or(&Value::Null))
                    .into_iter()
                    .filter(|p| *p != 0),
            );
            if let Some(h) = o
                .pointer("/spec/healthCheckNodePort")
                .and_then(Value::as_i64)
            {
                used.insert(h);
            }
        }
        let (lo, hi) = (i64::from(net.node_ports.0), i64::from(net.node_ports.1));
        let old_ports: BTreeSet<i64> = old
            .map(|o| {
                node_ports_of(o.pointer("/spec/ports").unwrap_or(&Value::Null))
                    .into_iter()
                    .collect()
            })
            .unwrap_or_default();
        let wants_node_ports = needs_node_ports(svc);
        if let Some(Value::Array(ports)) = svc.pointer_mut("/spec/ports") {
            // Ports this Service already holds, in request order.
            let mut mine: BTreeSet<i64> = BTreeSet::new();
            for (i, p) in ports.iter_mut().enumerate() {
                let Some(p) = p.as_object_mut() else { continue };
                let requested = p.get("nodePort").and_then(Value::as_i64).unwrap_or(0);
                if requested != 0 {
                    if !old_ports.contains(&requested) && (requested < lo || requested > hi) {
                        errs.push(FieldError::invalid(
                            format!("spec.ports[{i}].nodePort"),
                            json!(requested),
                            format!("provided port is not in the valid range. The range of valid ports is {lo}-{hi}"),
                        ));
                    } else if used.contains(&requested) {
                        errs.push(FieldError::invalid(
                            format!("spec.ports[{i}].nodePort"),
                            json!(requested),
                            "provided port is already allocated",
                        ));
                    }
                    mine.insert(requested);
                } else if wants_node_ports {
                    let proto_port_reuse = None::<i64>;
                    let chosen = proto_port_reuse
                        .or_else(|| (lo..=hi).find(|c| !used.contains(c) && !mine.contains(c)));
                    match chosen {
                        Some(c) => {
                            p.insert("nodePort".into(), json!(c));
                            mine.insert(c);
                        }
                        None => errs.push(FieldError::invalid(
                            format!("spec.ports[{i}].nodePort"),
                            json!(0),
                            "range is full",
                        )),
                    }
                }
            }
            used.extend(mine);
        }
        if needs_health_check_port(svc) {
            let spec = obj_mut(svc, "spec");
            let hc = spec
                .get("healthCheckNodePort")
                .and_then(Value::as_i64)
                .unwrap_or(0);
            if hc == 0 {
                match (lo..=hi).find(|c| !used.contains(c)) {
                    Some(c) => {
                        spec.insert("healthCheckNodePort".into(), json!(c));
                    }
                    None => errs.push(FieldError::invalid(
                        "spec.healthCheckNodePort",
                        json!(0),
                        "range is full",
                    )),
                }
            }
        }
    }
    if errs.is_empty() { Ok(()) } else { Err(errs) }
}

fn allocate_cluster_ips(
    net: &ClusterNetwork,
    svc: &mut Value,
    old: Option<&Value>,
    others: &[&Value],
    errs: &mut Vec<FieldError>,
) {
    let primary = net.service_cidrs.first().map(cidr_family).unwrap_or("IPv4");
    let dual = net.service_cidrs.len() > 1;
    let spec = obj_mut(svc, "spec");
    let requested: Vec<String> = spec
        .get("clusterIPs")
        .and_then(Value::as_array)
        .map(|a| {
            a.iter()
                .filter_map(Value::as_str)
                .map(String::from)
                .collect()
        })
        .unwrap_or_default();
    let headless = requested.first().map(String::as_str) == Some("None")
        || spec.get("clusterIP").and_then(Value::as_str) == Some("None");
    let has_selector = spec
        .get("selector")
        .and_then(Value::as_object)
        .is_some_and(|m| !m.is_empty());
    let policy_given = spec
        .get("ipFamilyPolicy")
        .and_then(Value::as_str)
        .map(String::from);
    let mut families: Vec<String> = spec
        .get("ipFamilies")
        .and_then(Value::as_array)
        .map(|a| {
            a.iter()
                .filter_map(Value::as_str)
                .map(String::from)
                .collect()
        })
        .unwrap_or_default();
    if families.is_empty() {
        for ip in &requested {
            if let Ok(addr) = ip.parse::<IpAddr>() {
                families.push(family_of(&addr).to_string());
            }
        }
    }
    if policy_given.is_none() && families.len() > 1 {
        errs.push(FieldError::invalid(
            "spec.ipFamilyPolicy",
            json!(null),
            "must be RequireDualStack or PreferDualStack when multiple 'ipFamilies' are specified",
        ));
        return;
    }
    // Headless Services without a selector default to both families, as in kube-apiserver.
    let policy = policy_given.clone().unwrap_or_else(|| {
        if headless && !has_selector && families.is_empty() {
            "RequireDualStack".into()
        } else {
            "SingleStack".into()
        }
    });
    for (i, f) in families.iter().enumerate() {
        if !net.service_cidrs.iter().any(|c| cidr_family(c) == f) && !headless {
            errs.push(FieldError::invalid(
                format!("spec.ipFamilies[{i}]"),
                json!(f),
                "not configured on this cluster",
            ));
        }
    }
    if families.is_empty() {
        families.push(primary.to_string());
    }
    let other_family = |f: &str| if f == "IPv4" { "IPv6" } else { "IPv4" };
    match policy.as_str() {
        "RequireDualStack" if !dual && !headless => errs.push(FieldError::invalid(
            "spec.ipFamilyPolicy",
            json!(policy),
            "this cluster is not configured for dual-stack services",
        )),
        "RequireDualStack" | "PreferDualStack" if (dual || headless) && families.len() == 1 => {
            let f = other_family(&families[0]).to_string();
            families.push(f);
        }
        "SingleStack" if families.len() > 1 => errs.push(FieldError::invalid(
            "spec.ipFamilies",
            json!(families),
            "when spec.ipFamilyPolicy is SingleStack, only one family may be specified",
        )),
        _ => {}
    }
    if !errs.is_empty() {
        return;
    }
    spec.insert("ipFamilyPolicy".into(), json!(policy));
    spec.insert("ipFamilies".into(), json!(families));
    if headless {
        spec.insert("clusterIP".into(), json!("None"));
        spec.insert("clusterIPs".into(), json!(["None"]));
        return;
    }
    let mut used: BTreeSet<IpAddr> = BTreeSet::new();
    for o in others {
        for ip in o
            .pointer("/spec/clusterIPs")
            .and_then(Value::as_array)
            .into_iter()
            .flatten()
        {
            if let Some(addr) = ip.as_str().and_then(|s| s.parse().ok()) {
                used.insert(addr);
            }
        }
    }
    let old_ips: Vec<String> = old
        .and_then(|o| o.pointer("/spec/clusterIPs"))
        .and_then(Value::as_array)
        .map(|a| {
            a.iter()
                .filter_map(Value::as_str)
                .map(String::from)
                .collect()
        })
        .unwrap_or_default();
    let mut out = Vec::new();
    for (i, fam) in families.iter().enumerate() {
        let Some(cidr) = net.service_cidrs.iter().find(|c| cidr_family(c) == fam) else {
            continue;
        };
        match requested.get(i).filter(|r| !r.is_empty()) {
            Some(r) => {
                let Ok(addr) = r.parse::<IpAddr>() else {
                    errs.push(FieldError::invalid(
                        format!("spec.clusterIPs[{i}]"),
                        json!(r),
                        "must be a valid IP address, (e.g. 10.9.8.7 or 2001:db8::ffff)",
                    ));
                    continue;
                };
                if family_of(&addr) != fam {
                    errs.push(FieldError::invalid(
                        format!("spec.clusterIPs[{i}]"),
                        json!(r),
                        format!("expected an {fam} value as indicated by `ipFamilies[{i}]`"),
                    ));
                } else if !old_ips.contains(r) {
                    if !cidr.contains(&addr) || addr == cidr.network() || addr == cidr.broadcast() {
                        errs.push(FieldError::invalid(
                            "spec.clusterIPs",
                            json!(requested),
                            format!("failed to allocate IP {r}: the provided IP ({r}) is not in the valid range. The range of valid IPs is {cidr}"),
                        ));
                    } else if used.contains(&addr) {
                        errs.push(FieldError::invalid(
                            "spec.clusterIPs",
                            json!(requested),
                            format!("failed to allocate IP {r}: provided IP is already allocated"),
                        ));
                    }
                }
                out.push(r.clone());
            }
            None => match cidr
                .hosts()
                .find(|h| !used.contains(h) && *h != cidr.network())
            {
                Some(h) => {
                    used.insert(h);
                    out.push(h.to_string());
                }
                None => errs.push(FieldError::invalid(
                    "spec.clusterIPs",
                    json!([]),
                    format!("failed to allocate a serviceIP: range is full ({cidr})"),
                )),
            },
        }
    }
    if let Some(first) = out.first() {
        let first = first.clone();
        spec.insert("clusterIP".into(), json!(first));
    }
    spec.insert("clusterIPs".into(), json!(out));
}

fn name_rule(rt: &ResourceType) -> NameRule {
    match rt.builtin {
        Some(Builtin::Service) => NameRule::Dns1035Label,
        Some(Builtin::Namespace) => NameRule::Dns1123Label,
        _ => NameRule::Dns1123Subdomain,
    }
}

fn valid_ip(s: &str) -> bool {
    s.parse::<IpAddr>().is_ok()
}

fn validate_service_spec(svc: &Value) -> Vec<FieldError> {
    let mut errs = Vec::new();
    let ty = service_type(svc);
    if !["ClusterIP", "NodePort", "LoadBalancer", "ExternalName"].contains(&ty) {
        errs.push(FieldError::not_supported(
            "spec.type",
            json!(ty),
            &["ClusterIP", "ExternalName", "LoadBalancer", "NodePort"],
        ));
    }
    let headless = s(svc, "/spec/clusterIP") == Some("None");
    let ports = svc
        .pointer("/spec/ports")
        .and_then(Value::as_array)
        .cloned()
        .unwrap_or_default();
    if ty != "ExternalName" && !headless && ports.is_empty() {
        errs.push(FieldError::required("spec.ports", ""));
    }
    let mut names: Vec<&str> = Vec::new();
    let mut keys: Vec<(i64, &str)> = Vec::new();
    for (i, p) in ports.iter().enumerate() {
        let at = |f: &str| format!("spec.ports[{i}].{f}");
        let name = p.get("name").and_then(Value::as_str).unwrap_or_default();
        if ports.len() > 1 && name.is_empty() {
            errs.push(FieldError::required(at("name"), ""));
        } else if !name.is_empty() {
            if !validation::is_dns1123_label(name) {
                errs.push(FieldError::invalid(at("name"), json!(name), "a lowercase RFC 1123 label must consist of lower case alphanumeric characters or '-', and must start and end with an alphanumeric character"));
            }
            if names.contains(&name) {
                errs.push(FieldError::duplicate(at("name"), json!(name)));
            }
            names.push(name);
        }
        let port = p.get("port").and_then(Value::as_i64).unwrap_or(0);
        if !(1..=65535).contains(&port) {
            errs.push(FieldError::invalid(
                at("port"),
                json!(port),
                "must be between 1 and 65535, inclusive",
            ));
        }
        let proto = p.get("protocol").and_then(Value::as_str).unwrap_or("TCP");
        if !["TCP", "UDP", "SCTP"].contains(&proto) {
            errs.push(FieldError::not_supported(
                at("protocol"),
                json!(proto),
                &["SCTP", "TCP", "UDP"],
            ));
        }
        if keys.contains(&(port, proto)) {
            errs.push(FieldError::duplicate(
                format!("spec.ports[{i}]"),
                json!({"port": port, "protocol": proto}),
            ));
        }
        keys.push((port, proto));
        if let Some(np) = p.get("nodePort").and_then(Value::as_i64)
            && np != 0
            && (ty == "ClusterIP" || ty == "ExternalName")
        {
            errs.push(FieldError::forbidden(
                at("nodePort"),
                format!("may not be used when `type` is '{ty}'"),
            ));
        }
    }
    if let Some(sa) = s(svc, "/spec/sessionAffinity")
        && !["None", "ClientIP"].contains(&sa)
    {
        errs.push(FieldError::not_supported(
            "spec.sessionAffinity",
            json!(sa),
            &["ClientIP", "None"],
        ));
    }
    if let Some(etp) = s(svc, "/spec/externalTrafficPolicy") {
        if ty != "NodePort" && ty != "LoadBalancer" {
            errs.push(FieldError::invalid(
                "spec.externalTrafficPolicy",
                json!(etp),
                "may only be set when `type` is 'NodePort' or 'LoadBalancer'",
            ));
        } else if !["Cluster", "Local"].contains(&etp) {
            errs.push(FieldError::not_supported(
                "spec.externalTrafficPolicy",
                json!(etp),
                &["Cluster", "Local"],
            ));
        }
    }
    if let Some(itp) = s(svc, "/spec/internalTrafficPolicy")
        && !["Cluster", "Local"].contains(&itp)
    {
        errs.push(FieldError::not_supported(
            "spec.internalTrafficPolicy",
            json!(itp),
            &["Cluster", "Local"],
        ));
    }
    if let Some(p) = s(svc, "/spec/ipFamilyPolicy")
        && !["SingleStack", "PreferDualStack", "RequireDualStack"].contains(&p)
    {
        errs.push(FieldError::not_supported(
            "spec.ipFamilyPolicy",
            json!(p),
            &["PreferDualStack", "RequireDualStack", "SingleStack"],
        ));
    }
    for (i, f) in svc
        .pointer("/spec/ipFamilies")
        .and_then(Value::as_array)
        .into_iter()
        .flatten()
        .enumerate()
    {
        if !["IPv4", "IPv6"].contains(&f.as_str().unwrap_or_default()) {
            errs.push(FieldError::not_supported(
                format!("spec.ipFamilies[{i}]"),
                f.clone(),
                &["IPv4", "IPv6"],
            ));
        }
    }
    if let Some(class) = s(svc, "/spec/loadBalancerClass") {
        if ty != "LoadBalancer" {
            errs.push(FieldError::forbidden(
                "spec.loadBalancerClass",
                "may only be used when `type` is 'LoadBalancer'",
            ));
        } else {
            errs.extend(validation::validate_qualified_name(
                class,
                "spec.loadBalancerClass",
            ));
        }
    }
    if svc
        .pointer("/spec/allocateLoadBalancerNodePorts")
        .is_some_and(|v| !v.is_null())
        && ty != "LoadBalancer"
    {
        errs.push(FieldError::forbidden(
            "spec.allocateLoadBalancerNodePorts",
            "may only be used when `type` is 'LoadBalancer'",
        ));
    }
    if let Some(ip) = s(svc, "/spec/loadBalancerIP")
        && !ip.is_empty()
        && !valid_ip(ip)
    {
        errs.push(FieldError::invalid(
            "spec.loadBalancerIP",
            json!(ip),
            "must be a valid IP address, (e.g. 10.9.8.7 or 2001:db8::ffff)",
        ));
    }
    let ranges = svc
        .pointer("/spec/loadBalancerSourceRanges")
        .and_then(Value::as_array)
        .cloned()
        .unwrap_or_default();
    if !ranges.is_empty() && ty != "LoadBalancer" {
        errs.push(FieldError::forbidden(
            "spec.loadBalancerSourceRanges",
            "may only be used when `type` is 'LoadBalancer'",
        ));
    }
    for (i, r) in ranges.iter().enumerate() {
        if r.as_str()
            .and_then(|r| r.trim().parse::<IpNet>().ok())
            .is_none()
        {
            errs.push(FieldError::invalid(
                format!("spec.loadBalancerSourceRanges[{i}]"),
                r.clone(),
                "must be a list of IP ranges. For example, 10.240.0.0/24,10.250.0.0/24 ",
            ));
        }
    }
    if let Some(ip) = s(svc, "/spec/clusterIP")
        && !ip.is_empty()
        && ip != "None"
        && !valid_ip(ip)
    {
        errs.push(FieldError::invalid(
            "spec.clusterIPs[0]",
            json!(ip),
            "must be a valid IP address, (e.g. 10.9.8.7 or 2001:db8::ffff)",
        ));
    }
    if ty == "ExternalName" {
        match s(svc, "/spec/externalName") {
            None | Some("") => errs.push(FieldError::required("spec.externalName", "")),
            Some(n) if !validation::is_dns1123_subdomain(n.trim_end_matches('.')) => {
                errs.push(FieldError::invalid("spec.externalName", json!(n), "a lowercase RFC 1123 subdomain must consist of lower case alphanumeric characters, '-' or '.', and must start and end with an alphanumeric character"));
            }
            _ => {}
        }
    }
    errs
}

fn validate_service_status(svc: &Value) -> Vec<FieldError> {
    let mut errs =
        validation::validate_conditions(svc.pointer("/status/conditions"), "status.conditions");
    for (i, ing) in svc
        .pointer("/status/loadBalancer/ingress")
        .and_then(Value::as_array)
        .into_iter()
        .flatten()
        .enumerate()
    {
        let at = |f: &str| format!("status.loadBalancer.ingress[{i}].{f}");
        let ip = ing.get("ip").and_then(Value::as_str).unwrap_or_default();
        if !ip.is_empty() && !valid_ip(ip) {
            errs.push(FieldError::invalid(
                at("ip"),
                json!(ip),
                "must be a valid IP address",
            ));
        }
        match ing.get("ipMode").and_then(Value::as_str) {
            Some(_) if ip.is_empty() => errs.push(FieldError::forbidden(
                at("ipMode"),
                "may not be specified when `ip` is not set",
            )),
            Some(m) if !["VIP", "Proxy"].contains(&m) => errs.push(FieldError::not_supported(
                at("ipMode"),
                json!(m),
                &["Proxy", "VIP"],
            )),
            None if !ip.is_empty() => errs.push(FieldError::required(
                at("ipMode"),
                "must be specified when `ip` is set",
            )),
            _ => {}
        }
        if let Some(h) = ing
            .get("hostname")
            .and_then(Value::as_str)
            .filter(|h| !h.is_empty())
        {
            if !validation::is_dns1123_subdomain(h) {
                errs.push(FieldError::invalid(at("hostname"), json!(h), "a lowercase RFC 1123 subdomain must consist of lower case alphanumeric characters, '-' or '.', and must start and end with an alphanumeric character"));
            }
            if valid_ip(h) {
                errs.push(FieldError::invalid(
                    at("hostname"),
                    json!(h),
                    "must be a DNS name, not an IP address",
                ));
            }
        }
        for (j, p) in ing
            .get("ports")
            .and_then(Value::as_array)
            .into_iter()
            .flatten()
            .enumerate()
        {
            let pat = |f: &str| format!("status.loadBalancer.ingress[{i}].ports[{j}].{f}");
            let port = p.get("port").and_then(Value::as_i64).unwrap_or(0);
            if !(1..=65535).contains(&port) {
                errs.push(FieldError::invalid(
                    pat("port"),
                    json!(port),
                    "must be between 1 and 65535, inclusive",
                ));
            }
            match p.get("protocol").and_then(Value::as_str) {
                Some("TCP" | "UDP" | "SCTP") => {}
                None => errs.push(FieldError::required(pat("protocol"), "")),
                Some(other) => errs.push(FieldError::not_supported(
                    pat("protocol"),
                    json!(other),
                    &["SCTP", "TCP", "UDP"],
                )),
            }
        }
    }
    errs
}

fn validate_events_v1(ev: &Value) -> Vec<FieldError> {
    let mut errs = Vec::new();
    if ev.get("eventTime").is_none_or(Value::is_null) {
        errs.push(FieldError::required("eventTime", ""));
    }
    match s(ev, "/type") {
        Some("Normal" | "Warning") => {}
        other => errs.push(FieldError::not_supported(
            "type",
            json!(other.unwrap_or_default()),
            &["Normal", "Warning"],
        )),
    }
    for f in [
        "deprecatedFirstTimestamp",
        "deprecatedLastTimestamp",
        "deprecatedSource",
    ] {
        if ev.get(f).is_some_and(|v| !v.is_null() && *v != json!({})) {
            errs.push(FieldError::invalid(f, json!(""), "needs to be unset"));
        }
    }
    if ev
        .get("deprecatedCount")
        .and_then(Value::as_i64)
        .unwrap_or(0)
        != 0
    {
        errs.push(FieldError::invalid(
            "deprecatedCount",
            json!(""),
            "needs to be unset",
        ));
    }
    match s(ev, "/reportingController") {
        None | Some("") => errs.push(FieldError::required("reportingController", "")),
        Some(c) => errs.extend(validation::validate_qualified_name(
            c,
            "reportingController",
        )),
    }
    for (f, max) in [("reportingInstance", 128), ("action", 128), ("reason", 128)] {
        match s(ev, &format!("/{f}")) {
            None | Some("") => errs.push(FieldError::required(f, "")),
            Some(v) if v.len() > max => errs.push(FieldError::too_long(f, max)),
            _ => {}
        }
    }
    if s(ev, "/note").is_some_and(|n| n.len() > 1024) {
        errs.push(FieldError::too_long("note", 1024));
    }
    if let Some(series) = ev.get("series").filter(|s| !s.is_null()) {
        if series.get("count").and_then(Value::as_i64).unwrap_or(0) < 2 {
            errs.push(FieldError::invalid(
                "series.count",
                series.get("count").cloned().unwrap_or(json!(0)),
                "should be at least 2",
            ));
        }
        if series.get("lastObservedTime").is_none_or(Value::is_null) {
            errs.push(FieldError::required("series.lastObservedTime", ""));
        }
    }
    let ns = s(ev, "/metadata/namespace").unwrap_or_default();
    if let Some(rns) = s(ev, "/regarding/namespace")
        && !rns.is_empty()
        && rns != ns
    {
        errs.push(FieldError::invalid(
            "regarding.namespace",
            json!(rns),
            "does not match event.namespace",
        ));
    }
    errs
}

fn validate_crd(crd: &Value) -> Vec<FieldError> {
    let mut errs = Vec::new();
    let group = s(crd, "/spec/group").unwrap_or_default();
    let plural = s(crd, "/spec/names/plural").unwrap_or_default();
    let kind = s(crd, "/spec/names/kind").unwrap_or_default();
    let name = s(crd, "/metadata/name").unwrap_or_default();
    if group.is_empty() {
        errs.push(FieldError::required("spec.group", ""));
    } else if !group.contains('.') {
        errs.push(FieldError::invalid(
            "spec.group",
            json!(group),
            "should be a domain with at least one dot",
        ));
    }
    if plural.is_empty() {
        errs.push(FieldError::required("spec.names.plural", ""));
    } else if !validation::is_dns1123_label(plural) {
        errs.push(FieldError::invalid(
            "spec.names.plural",
            json!(plural),
            "a lowercase RFC 1123 label must consist of lower case alphanumeric characters or '-'",
        ));
    }
    if kind.is_empty() {
        errs.push(FieldError::required("spec.names.kind", ""));
    }
    if !group.is_empty() && !plural.is_empty() && name != format!("{plural}.{group}") {
        errs.push(FieldError::invalid(
            "metadata.name",
            json!(name),
            "must be spec.names.plural+\".\"+spec.group",
        ));
    }
    match s(crd, "/spec/scope") {
        Some("Namespaced" | "Cluster") => {}
        other => errs.push(FieldError::not_supported(
            "spec.scope",
            json!(other.unwrap_or_default()),
            &["Cluster", "Namespaced"],
        )),
    }
    let versions = crd
        .pointer("/spec/versions")
        .and_then(Value::as_array)
        .cloned()
        .unwrap_or_default();
    if versions.is_empty() {
        errs.push(FieldError::invalid(
            "spec.versions",
            json!([]),
            "must have exactly one version marked as storage version",
        ));
    }
    let storage = versions
        .iter()
        .filter(|v| v.get("storage").and_then(Value::as_bool) == Some(true))
        .count();
    if !versions.is_empty() && storage != 1 {
        errs.push(FieldError::invalid(
            "spec.versions",
            Value::Array(versions.clone()),
            "must have exactly one version marked as storage version",
        ));
    }
    let mut seen = Vec::new();
    for (i, v) in versions.iter().enumerate() {
        let vn = v.get("name").and_then(Value::as_str).unwrap_or_default();
        if !validation::is_dns1035_label(vn) {
            errs.push(FieldError::invalid(
                format!("spec.versions[{i}].name"),
                json!(vn),
                "a DNS-1035 label must consist of lower case alphanumeric characters or '-'",
            ));
        }
        if seen.contains(&vn) {
            errs.push(FieldError::duplicate(
                format!("spec.versions[{i}].name"),
                json!(vn),
            ));
        }
        seen.push(vn);
        if v.pointer("/schema/openAPIV3Schema").is_none() {
            errs.push(FieldError::required(
                format!("spec.versions[{i}].schema.openAPIV3Schema"),
                "schemas are required",
            ));
        }
    }
    errs
}

fn immutable(new: &Value, old: &Value, pointer: &str, field: &str, errs: &mut Vec<FieldError>) {
    let n = new.pointer(pointer).cloned().unwrap_or(Value::Null);
    let o = old.pointer(pointer).cloned().unwrap_or(Value::Null);
    if n != o {
        errs.push(FieldError::invalid(field, n, "field is immutable"));
    }
}

/// Validation of a new object (`Validate` of the strategy plus `ValidateObjectMeta`).
pub fn validate_create(rt: &ResourceType, obj: &Value) -> Vec<FieldError> {
    let mut errs = validation::validate_object_meta(obj, name_rule(rt));
    errs.extend(validate_kind(rt, obj));
    errs
}

fn validate_kind(rt: &ResourceType, obj: &Value) -> Vec<FieldError> {
    let mut errs = Vec::new();
    match rt.builtin {
        Some(Builtin::Service) => {
            errs.extend(validate_service_spec(obj));
            errs.extend(validate_service_status(obj));
        }
        Some(Builtin::Lease) => {
            if let Some(d) = obj
                .pointer("/spec/leaseDurationSeconds")
                .and_then(Value::as_i64)
                && d <= 0
            {
                errs.push(FieldError::invalid(
                    "spec.leaseDurationSeconds",
                    json!(d),
                    "must be greater than 0",
                ));
            }
            if let Some(t) = obj
                .pointer("/spec/leaseTransitions")
                .and_then(Value::as_i64)
                && t < 0
            {
                errs.push(FieldError::invalid(
                    "spec.leaseTransitions",
                    json!(t),
                    "must be greater than or equal to 0",
                ));
            }
        }
        Some(Builtin::Event) => errs.extend(validate_events_v1(obj)),
        Some(Builtin::Secret) => {
            for k in obj
                .get("data")
                .and_then(Value::as_object)
                .into_iter()
                .flatten()
                .map(|(k, _)| k)
            {
                if k.is_empty()
                    || !k
                        .chars()
                        .all(|c| c.is_ascii_alphanumeric() || matches!(c, '-' | '_' | '.'))
                {
                    errs.push(FieldError::invalid(format!("data[{k}]"), json!(k), "a valid config key must consist of alphanumeric characters, '-', '_' or '.'"));
                }
            }
            if s(obj, "/type") == Some("kubernetes.io/basic-auth") {
                let has = |k: &str| obj.pointer(&format!("/data/{k}")).is_some();
                if !has("username") && !has("password") {
                    errs.push(FieldError::required("data[username]", ""));
                    errs.push(FieldError::required("data[password]", ""));
                }
            }
        }
        Some(Builtin::EndpointSlice) => match s(obj, "/addressType") {
            Some("IPv4" | "IPv6" | "FQDN") => {}
            None | Some("") => errs.push(FieldError::required("addressType", "")),
            Some(other) => errs.push(FieldError::not_supported(
                "addressType",
                json!(other),
                &["FQDN", "IPv4", "IPv6"],
            )),
        },
        Some(Builtin::CustomResourceDefinition) => errs.extend(validate_crd(obj)),
        Some(Builtin::CoreEvent) => {
            let ns = s(obj, "/metadata/namespace").unwrap_or_default();
            if let Some(ins) = s(obj, "/involvedObject/namespace")
                && !ins.is_empty()
                && ins != ns
            {
                errs.push(FieldError::invalid(
                    "involvedObject.namespace",
                    json!(ins),
                    "does not match event.namespace",
                ));
            }
        }
        _ => {}
    }
    errs
}

/// Validation of an update (`ValidateUpdate` plus `ValidateObjectMetaUpdate`).
pub fn validate_update(
    rt: &ResourceType,
    new: &Value,
    old: &Value,
    sub: Subresource,
) -> Vec<FieldError> {
    let mut errs = validation::validate_object_meta(new, name_rule(rt));
    errs.extend(validation::validate_object_meta_update(new, old));
    if sub == Subresource::Status {
        if rt.builtin == Some(Builtin::Service) {
            errs.extend(validate_service_status(new));
        }
        return errs;
    }
    errs.extend(validate_kind(rt, new));
    match rt.builtin {
        Some(Builtin::Service) => {
            if needs_cluster_ip(old) && needs_cluster_ip(new) {
                let oips = old
                    .pointer("/spec/clusterIPs")
                    .cloned()
                    .unwrap_or(Value::Null);
                let nips = new
                    .pointer("/spec/clusterIPs")
                    .cloned()
                    .unwrap_or(Value::Null);
                if oips.get(0) != nips.get(0) {
                    errs.push(FieldError::invalid(
                        "spec.clusterIPs[0]",
                        nips.clone(),
                        "may not change once set",
                    ));
                }
                let ofam = old.pointer("/spec/ipFamilies/0");
                let nfam = new.pointer("/spec/ipFamilies/0");
                if ofam.is_some() && ofam != nfam {
                    errs.push(FieldError::invalid(
                        "spec.ipFamilies[0]",
                        nfam.cloned().unwrap_or(Value::Null),
                        "may not change once set",
                    ));
                }
            }
            if service_type(old) == "LoadBalancer" && service_type(new) == "LoadBalancer" {
                immutable(
                    new,
                    old,
                    "/spec/loadBalancerClass",
                    "spec.loadBalancerClass",
                    &mut errs,
                );
            }
        }
        Some(Builtin::Secret) | Some(Builtin::ConfigMap) => {
            if rt.builtin == Some(Builtin::Secret) {
                immutable(new, old, "/type", "type", &mut errs);
            }
            if old.get("immutable").and_then(Value::as_bool) == Some(true) {
                for f in ["data", "binaryData"] {
                    if new.get(f) != old.get(f) {
                        errs.push(FieldError::forbidden(
                            f,
                            "field is immutable when `immutable` is set",
                        ));
                    }
                }
                immutable(new, old, "/immutable", "immutable", &mut errs);
            }
        }
        Some(Builtin::Event) => {
            for (p, f) in [
                ("/regarding", "regarding"),
                ("/reason", "reason"),
                ("/note", "note"),
                ("/type", "type"),
                ("/eventTime", "eventTime"),
                ("/action", "action"),
                ("/related", "related"),
                ("/reportingController", "reportingController"),
                ("/reportingInstance", "reportingInstance"),
            ] {
                immutable(new, old, p, f, &mut errs);
            }
        }
        Some(Builtin::CustomResourceDefinition) => {
            immutable(new, old, "/spec/group", "spec.group", &mut errs);
            immutable(
                new,
                old,
                "/spec/names/plural",
                "spec.names.plural",
                &mut errs,
            );
            immutable(new, old, "/spec/scope", "spec.scope", &mut errs);
        }
        _ => {}
    }
    errs
}

/// Whether the kind maintains `metadata.generation`.
pub fn uses_generation(rt: &ResourceType) -> bool {
    matches!(
        rt.builtin,
        None | Some(Builtin::Service)
            | Some(Builtin::CustomResourceDefinition)
            | Some(Builtin::EndpointSlice)
    )
}

fn without(v: &Value, keys: &[&str]) -> Value {
    match v {
        Value::Object(m) => Value::Object(
            m.iter()
                .filter(|(k, _)| !keys.contains(&k.as_str()))
                .map(|(k, v)| (k.clone(), v.clone()))
                .collect(),
        ),
        other => other.clone(),
    }
}

/// Whether an update changes what `metadata.generation` tracks.
pub fn generation_changed(rt: &ResourceType, old: &Value, new: &Value) -> bool {
    match rt.builtin {
        Some(Builtin::Service) | Some(Builtin::CustomResourceDefinition) => {
            old.get("spec") != new.get("spec")
        }
        Some(Builtin::EndpointSlice) => without(old, &["metadata"]) != without(new, &["metadata"]),
        Some(_) => false,
        None if rt.status_subresource => {
            without(old, &["metadata", "status"]) != without(new, &["metadata", "status"])
        }
        None => without(old, &["metadata"]) != without(new, &["metadata"]),
    }
}

/// Fields server-side apply and update ownership ignore at this endpoint (the strategy's
/// reset fields).
pub fn ignored_fields(rt: &ResourceType, sub: Subresource, objects: &[&Value]) -> FieldSet {
    let mut set = FieldSet::new();
    let f = |n: &str| PathElement::Field(n.to_string());
    match (sub, rt.builtin) {
        (Subresource::Main, _) if rt.status_subresource => set.insert(&[f("status")]),
        (Subresource::Main, _) => {}
        (Subresource::Status, Some(_)) => set.insert(&[f("spec")]),
        (Subresource::Status, None) => {
            for o in objects {
                for k in o.as_object().into_iter().flat_map(|m| m.keys()) {
                    if !["status", "apiVersion", "kind"].contains(&k.as_str()) {
                        set.insert(&[f(k)]);
                    }
                }
            }
            set.insert(&[f("metadata")]);
            set.insert(&[f("spec")]);
        }
    }
    set
}

/// The empty typed object a create is compared against for field ownership (Go's zero value
/// of the kind, which already has its non-pointer structs).
pub fn skeleton(rt: &ResourceType) -> Value {
    let mut v = json!({"apiVersion": rt.api_version(), "kind": rt.kind});
    let root = obj_mut_root(&mut v);
    if rt.builtin.is_some() {
        root.insert("metadata".into(), json!({}));
    }
    match rt.builtin {
        Some(Builtin::Service) => {
            root.insert("spec".into(), json!({}));
            root.insert("status".into(), json!({"loadBalancer": {}}));
        }
        Some(
            Builtin::Namespace | Builtin::Node | Builtin::Pod | Builtin::CustomResourceDefinition,
        ) => {
            root.insert("spec".into(), json!({}));
            root.insert("status".into(), json!({}));
        }
        Some(Builtin::Lease) => {
            root.insert("spec".into(), json!({}));
        }
        _ => {}
    }
    v
}

pub fn allow_create_on_update(rt: &ResourceType) -> bool {
    matches!(
        rt.builtin,
        Some(Builtin::Service | Builtin::CoreEvent | Builtin::Event)
    )
}

pub fn allow_unconditional_update(rt: &ResourceType) -> bool {
    rt.builtin.is_some()
}

/// Whether a completed delete answers with the object (else a `Status`).
pub fn returns_deleted_object(rt: &ResourceType) -> bool {
    matches!(
        rt.builtin,
        None | Some(Builtin::Service | Builtin::Pod | Builtin::Namespace)
    )
}

/// The value of a field label for field selectors, or an error naming the unsupported label
/// in kube-apiserver's words.
pub fn field_label(rt: &ResourceType, obj: &Value, label: &str) -> Result<String, String> {
    let text = |p: &str| -> String {
        match obj.pointer(p) {
            Some(Value::String(s)) => s.clone(),
            Some(Value::Bool(b)) => b.to_string(),
            Some(Value::Number(n)) => n.to_string(),
            _ => String::new(),
        }
    };
    match label {
        "metadata.name" => return Ok(text("/metadata/name")),
        "metadata.namespace" => return Ok(text("/metadata/namespace")),
        _ => {}
    }
    let pointer: Option<String> = match rt.builtin {
        Some(Builtin::Secret) if label == "type" => Some("/type".into()),
        Some(Builtin::Namespace) if label == "status.phase" => Some("/status/phase".into()),
        Some(Builtin::Node) if label == "spec.unschedulable" => {
            return Ok(obj
                .pointer("/spec/unschedulable")
                .and_then(Value::as_bool)
                .unwrap_or(false)
                .to_string());
        }
        Some(Builtin::Pod) => match label {
            "spec.nodeName"
            | "spec.restartPolicy"
            | "spec.schedulerName"
            | "spec.serviceAccountName"
            | "status.phase"
            | "status.podIP"
            | "status.nominatedNodeName" => Some(format!("/{}", label.replace('.', "/"))),
            "spec.hostNetwork" => {
                return Ok(obj
                    .pointer("/spec/hostNetwork")
                    .and_then(Value::as_bool)
                    .unwrap_or(false)
                    .to_string());
            }
            _ => None,
        },
        Some(Builtin::CoreEvent) => match label {
            "involvedObject.kind"
            | "involvedObject.namespace"
            | "involvedObject.name"
            | "involvedObject.uid"
            | "involvedObject.apiVersion"
            | "involvedObject.resourceVersion"
            | "involvedObject.fieldPath"
            | "reason"
            | "reportingComponent"
            | "type" => Some(format!("/{}", label.replace('.', "/"))),
            "source" => Some("/source/component".into()),
            _ => None,
        },
        Some(Builtin::Event) => match label {
            l if l.starts_with("involvedObject.") => {
                Some(format!("/regarding/{}", &l["involvedObject.".len()..]))
            }
            "reason" | "type" => Some(format!("/{label}")),
            "reportingComponent" => Some("/reportingController".into()),
            "source" => Some("/deprecatedSource/component".into()),
            _ => None,
        },
        None => rt
            .selectable_fields
            .iter()
            .find(|(l, _)| l == label)
            .map(|(_, p)| p.clone()),
        _ => None,
    };
    match pointer {
        Some(p) => Ok(text(&p)),
        None if rt.builtin.is_some() => Err(format!("field label not supported: {label}")),
        None => {
            let mut known = vec![
                "\"metadata.name\"".to_string(),
                "\"metadata.namespace\"".to_string(),
            ];
            known.extend(rt.selectable_fields.iter().map(|(l, _)| format!("{l:?}")));
            Err(format!(
                "{label:?} is not a known field selector: only {}",
                known.join(", ")
            ))
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::catalog::Catalog;

    fn service_type_rt() -> std::sync::Arc<ResourceType> {
        Catalog::new().builtin(Builtin::Service)
    }

    #[test]
    fn decode_drops_unknown_fields_and_normalises_micro_time() {
        let rt = Catalog::new().builtin(Builtin::Lease);
        let d = decode(&rt, &json!({"metadata": {"name": "l", "finalizers": []}, "spec": {"renewTime": "2024-01-01T00:00:00Z", "bogus": 1}})).unwrap();
        assert_eq!(d.unknown_fields, vec!["spec.bogus"]);
        assert_eq!(d.object["spec"]["renewTime"], "2024-01-01T00:00:00.000000Z");
        assert!(
            d.object["metadata"].get("finalizers").is_none(),
            "empty lists are omitted"
        );
        let err = decode(&rt, &json!({"metadata": {"name": 5}})).unwrap_err();
        assert_eq!(err.code, 400);
        assert!(
            err.message
                .starts_with("Lease in version \"v1\" cannot be handled as a Lease"),
            "{}",
            err.message
        );
    }

    #[test]
    fn service_defaults_match_kube_apiserver() {
        let rt = service_type_rt();
        let mut svc = json!({"metadata": {"name": "web", "namespace": "default"}, "spec": {"type": "LoadBalancer", "ports": [{"port": 80}]}});
        apply_defaults(&rt, &mut svc);
        prepare_create(&rt, &mut svc);
        allocate_service(&ClusterNetwork::default(), &mut svc, None, &[]).unwrap();
        let spec = &svc["spec"];
        assert_eq!(spec["sessionAffinity"], "None");
        assert_eq!(spec["externalTrafficPolicy"], "Cluster");
        assert_eq!(spec["internalTrafficPolicy"], "Cluster");
        assert_eq!(spec["allocateLoadBalancerNodePorts"], true);
        assert_eq!(spec["ports"][0]["protocol"], "TCP");
        assert_eq!(spec["ports"][0]["targetPort"], 80);
        assert_eq!(spec["ports"][0]["nodePort"], 30000);
        assert_eq!(spec["clusterIP"], "10.96.0.1");
        assert_eq!(spec["ipFamilies"], json!(["IPv4"]));
        assert_eq!(spec["ipFamilyPolicy"], "SingleStack");
        assert_eq!(svc["status"], json!({"loadBalancer": {}}));
        assert!(validate_create(&rt, &svc).is_empty());
    }

    #[test]
    fn dual_stack_policy_allocates_both_families_and_skips_used_addresses() {
        let rt = service_type_rt();
        let taken = json!({"spec": {"clusterIPs": ["10.96.0.1"], "ports": [{"port": 1, "nodePort": 30000}]}});
        let mut svc = json!({"metadata": {"name": "web"}, "spec": {"ipFamilyPolicy": "PreferDualStack", "ports": [{"port": 80}]}});
        apply_defaults(&rt, &mut svc);
        allocate_service(&ClusterNetwork::default(), &mut svc, None, &[&taken]).unwrap();
        assert_eq!(
            svc["spec"]["clusterIPs"],
            json!(["10.96.0.2", "fd00:10:96::1"])
        );
        assert_eq!(svc["spec"]["ipFamilies"], json!(["IPv4", "IPv6"]));
    }

    #[test]
    fn requested_node_port_in_use_is_invalid() {
        let rt = service_type_rt();
        let taken = json!({"spec": {"ports": [{"port": 1, "nodePort": 30080}]}});
        let mut svc = json!({"metadata": {"name": "web"}, "spec": {"type": "NodePort", "ports": [{"port": 80, "nodePort": 30080}]}});
        apply_defaults(&rt, &mut svc);
        let errs =
            allocate_service(&ClusterNetwork::default(), &mut svc, None, &[&taken]).unwrap_err();
        assert_eq!(
            errs[0].to_string(),
            "spec.ports[0].nodePort: Invalid value: 30080: provided port is already allocated"
        );
    }

    #[test]
    fn ports_are_required_and_named_when_several() {
        let rt = service_type_rt();
        let svc = json!({"metadata": {"name": "web"}, "spec": {"type": "ClusterIP"}});
        assert_eq!(
            validate_create(&rt, &svc)[0].to_string(),
            "spec.ports: Required value"
        );
        let svc =
            json!({"metadata": {"name": "web"}, "spec": {"ports": [{"port": 80}, {"port": 81}]}});
        assert!(
            validate_create(&rt, &svc)
                .iter()
                .any(|e| e.to_string() == "spec.ports[0].name: Required value")
        );
    }

    #[test]
    fn unsupported_field_labels_are_named_like_kube_apiserver() {
        let rt = service_type_rt();
        assert_eq!(
            field_label(&rt, &json!({}), "spec.foo").unwrap_err(),
            "field label not supported: spec.foo"
        );
    }

    #[test]
    fn custom_resources_are_pruned_and_defaulted_by_schema() {
        let crd = json!({
            "metadata": {"name": "pools.ferrolb.io"},
            "spec": {"group": "ferrolb.io", "scope": "Namespaced", "names": {"plural": "pools", "kind": "Pool"},
                "versions": [{"name": "v1", "served": true, "storage": true, "schema": {"openAPIV3Schema": {
                    "type": "object",
                    "properties": {"spec": {"type": "object", "properties": {
                        "autoAssign": {"type": "boolean", "default": true},
                        "addresses": {"type": "array", "items": {"type": "string"}},
                        "extra": {"type": "object", "x-kubernetes-preserve-unknown-fields": true}
                    }}}
                }}}]}
        });
        let rt = crate::catalog::types_from_crd(&crd).unwrap().remove(0);
        let d = decode(&rt, &json!({"apiVersion": "ferrolb.io/v1", "kind": "Pool", "metadata": {"name": "p"},
            "spec": {"addresses": ["192.0.2.0/24"], "typo": 1, "extra": {"anything": [1]}}, "junk": true})).unwrap();
        assert_eq!(d.object["spec"]["autoAssign"], true);
        assert_eq!(d.object["spec"]["extra"]["anything"], json!([1]));
        assert!(d.object["spec"].get("typo").is_none());
        assert!(d.object.get("junk").is_none());
        let mut unknown = d.unknown_fields.clone();
        unknown.sort();
        assert_eq!(unknown, vec!["junk", "spec.typo"]);
    }
}
