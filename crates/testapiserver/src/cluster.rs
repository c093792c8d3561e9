//! The emulated cluster: every API verb over the store, with kube-apiserver's semantics.
//!
//! Owns [`Cluster`]: routing of API paths, discovery, get/list (with `limit`/`continue`
//! pagination at a consistent revision), watch planning, create, update, the four patch
//! formats, delete (finalizers, `deletionTimestamp`, propagation policies, preconditions) and
//! deletecollection, server-side apply ownership, and the built-in controllers a real control
//! plane runs right after a write: CRD establishment and cleanup, namespace termination and
//! garbage collection of dependents. Every operation is synchronous and takes the current
//! time as an input; the HTTP shell (`server`) owns sockets, streaming and clocks.

use std::collections::{BTreeMap, BTreeSet};
use std::sync::Arc;
use std::time::Duration;

use base64::Engine;
use jiff::Timestamp;
use serde_json::{Map, Value, json};

use crate::catalog::{Builtin, Catalog, ResourceType, StorageKey, types_from_crd};
use crate::kinds::{self, ClusterNetwork, Subresource};
use crate::patch::{self, PatchError};
use crate::request::{
    ApiReply, ApiRequest, FieldValidation, Propagation, QueryOptions, Representation, negotiate,
    parse_propagation,
};
use crate::ssa::{ManagedFields, ManagerId, Operation, OwnershipError};
use crate::status::ApiError;
use crate::store::{Change, Store};
use crate::watch::{WatchFilter, WatchPlan, WatchStart, present};

/// The Kubernetes version the server reports at `/version`.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct KubeVersion {
    pub major: u32,
    pub minor: u32,
    pub patch: u32,
}

impl Default for KubeVersion {
    fn default() -> Self {
        KubeVersion {
            major: 1,
            minor: 31,
            patch: 0,
        }
    }
}

/// Settings of one server.
#[derive(Clone, Debug)]
pub struct ServerConfig {
    /// Reported at `/version`.
    pub version: KubeVersion,
    /// How many changes the history keeps; older resource versions answer 410 Expired.
    pub history_limit: usize,
    /// Service CIDRs and node port range used to allocate Service addresses.
    pub network: ClusterNetwork,
    /// How often a watch that asked for bookmarks gets one.
    pub bookmark_interval: Duration,
    /// Lifetime of a watch that gave no `timeoutSeconds`.
    pub default_watch_timeout: Duration,
    /// Start with the namespaces `default`, `kube-system`, `kube-public`, `kube-node-lease`
    /// and the `default/kubernetes` Service, as a fresh cluster has.
    pub seed_default_objects: bool,
    /// Seed of the generator for UIDs and `generateName` suffixes (deterministic runs).
    pub random_seed: u64,
}

impl Default for ServerConfig {
    fn default() -> Self {
        ServerConfig {
            version: KubeVersion::default(),
            history_limit: 1000,
            network: ClusterNetwork::default(),
            bookmark_interval: Duration::from_secs(60),
            default_watch_timeout: Duration::from_secs(1800),
            seed_default_objects: true,
            random_seed: 0x5eed_fe77_0b1b,
        }
    }
}

/// Time as `metav1.Time` serialises it.
pub fn format_time(ts: Timestamp) -> String {
    ts.strftime("%Y-%m-%dT%H:%M:%SZ").to_string()
}

const CRD_CLEANUP_FINALIZER: &str = "customresourcecleanup.apiextensions.k8s.io";
const ORPHAN_FINALIZER: &str = "orphan";
const FOREGROUND_FINALIZER: &str = "foregroundDeletion";
const NAME_SUFFIX_ALPHABET: &[u8] = b"bcdfghjklmnpqrstvwxz2456789";

/// `(namespace, name)`, the order objects are listed in.
type ObjectKey = (String, String);

/// Objects of a list, in key order.
type Listing = Vec<(ObjectKey, Arc<Value>)>;

/// A resolved API path.
#[derive(Clone, Debug)]
struct Target {
    rt: Arc<ResourceType>,
    namespace: Option<String>,
    name: Option<String>,
    sub: Subresource,
}

/// How a write attributes field ownership.
enum Ownership {
    /// A non-apply write by this manager.
    Update(String),
    /// Server-side apply already computed the entries.
    Applied(ManagedFields),
}

/// The result of a delete.
enum Deletion {
    /// The object is gone; this is its last state.
    Removed(Value),
    /// The object waits for finalizers; this is its current state.
    Pending(Value),
}

/// The emulated cluster state.
#[derive(Debug)]
pub struct Cluster {
    config: ServerConfig,
    catalog: Catalog,
    store: Store,
    rng: u64,
    gc_pending: bool,
    /// CRD name → resource version its served types were built from.
    crd_types_built_from: BTreeMap<String, String>,
    server_address: String,
}

fn meta_str<'a>(obj: &'a Value, field: &str) -> Option<&'a str> {
    obj.get("metadata")?.get(field)?.as_str()
}

fn meta_mut(obj: &mut Value) -> &mut Map<String, Value> {
    kinds::object_field_mut(obj, "metadata")
}

fn finalizers(obj: &Value) -> Vec<String> {
    obj.pointer("/metadata/finalizers")
        .and_then(Value::as_array)
        .map(|a| {
            a.iter()
                .filter_map(Value::as_str)
                .map(String::from)
                .collect()
        })
        .unwrap_or_default()
}

fn set_finalizers(obj: &mut Value, fins: &[String]) {
    let meta = meta_mut(obj);
    if fins.is_empty() {
        meta.remove("finalizers");
    } else {
        meta.insert("finalizers".into(), json!(fins));
    }
}

fn is_deleting(obj: &Value) -> bool {
    obj.pointer("/metadata/deletionTimestamp")
        .is_some_and(|v| !v.is_null())
}

fn strip_managed_fields(obj: &Value) -> Value {
    let mut o = obj.clone();
    meta_mut(&mut o).remove("managedFields");
    o
}

fn without_resource_version(obj: &Value) -> Value {
    let mut o = obj.clone();
    meta_mut(&mut o).remove("resourceVersion");
    o
}

fn not_found_page() -> ApiReply {
    ApiReply::Text {
        code: 404,
        body: "404 page not found\n".into(),
    }
}

fn method_not_allowed() -> ApiError {
    ApiError::method_not_allowed("the server does not allow this method on the requested resource")
}

fn parse_body(req: &ApiRequest) -> Result<Value, ApiError> {
    let media = req.media_type().unwrap_or_default();
    let value: Value = match media.as_str() {
        "application/json" => serde_json::from_slice(&req.body).map_err(|e| {
            ApiError::bad_request(format!("couldn't get version/kind; json parse error: {e}"))
        })?,
        "application/yaml" => {
            let text = std::str::from_utf8(&req.body)
                .map_err(|e| ApiError::bad_request(format!("yaml: invalid UTF-8: {e}")))?;
            serde_saphyr::from_str(text)
                .map_err(|e| ApiError::bad_request(format!("error converting YAML to JSON: {e}")))?
        }
        _ => {
            return Err(ApiError::unsupported_media_type(format!(
                "the body of the request was in an unknown format - accepted media types include: application/json, application/yaml (content type {media:?} is not served by this test server)"
            )));
        }
    };
    if !value.is_object() {
        return Err(ApiError::bad_request(format!(
            "Object 'Kind' is missing in '{value}'"
        )));
    }
    Ok(value)
}

/// Checks `apiVersion`/`kind` in a body against the endpoint's type.
fn check_type_meta(rt: &ResourceType, body: &Value, required: bool) -> Result<(), ApiError> {
    let av = body
        .get("apiVersion")
        .and_then(Value::as_str)
        .unwrap_or_default();
    let kind = body.get("kind").and_then(Value::as_str).unwrap_or_default();
    if required && kind.is_empty() {
        return Err(ApiError::bad_request(format!(
            "Object 'Kind' is missing in '{body}'"
        )));
    }
    if !av.is_empty() && av != rt.api_version() {
        return Err(ApiError::bad_request(format!(
            "the API version in the data ({av}) does not match the expected API version ({})",
            rt.api_version()
        )));
    }
    if !kind.is_empty() && kind != rt.kind {
        return Err(ApiError::bad_request(format!(
            "the kind in the data ({kind}) does not match the expected kind ({})",
            rt.kind
        )));
    }
    Ok(())
}

/// The continue token of a paginated list, encoded as kube-apiserver does (base64 URL of
/// `{"v":"meta.k8s.io/v1","rv":…,"start":…}`).
fn encode_continue(rv: u64, ns: &str, name: &str) -> String {
    let start = if ns.is_empty() {
        format!("{name}\u{0}")
    } else {
        format!("{ns}/{name}\u{0}")
    };
    let json = json!({"v": "meta.k8s.io/v1", "rv": rv, "start": start}).to_string();
    base64::engine::general_purpose::URL_SAFE_NO_PAD.encode(json)
}

fn decode_continue(token: &str) -> Result<(u64, String, String), ApiError> {
    let invalid = |why: &str| ApiError::bad_request(format!("continue key is not valid: {why}"));
    let raw = base64::engine::general_purpose::URL_SAFE_NO_PAD
        .decode(token.trim_end_matches('='))
        .map_err(|e| invalid(&e.to_string()))?;
    let v: Value = serde_json::from_slice(&raw).map_err(|e| invalid(&e.to_string()))?;
    if v.get("v").and_then(Value::as_str) != Some("meta.k8s.io/v1") {
        return Err(invalid(
            "incorrect encoded start resourceVersion (version meta.k8s.io/v1)",
        ));
    }
    let rv = v
        .get("rv")
        .and_then(Value::as_u64)
        .ok_or_else(|| invalid("incorrect encoded start resourceVersion"))?;
    let start = v
        .get("start")
        .and_then(Value::as_str)
        .ok_or_else(|| invalid("missing start"))?;
    let start = start.trim_end_matches('\u{0}');
    let (ns, name) = match start.split_once('/') {
        Some((ns, name)) => (ns.to_string(), name.to_string()),
        None => (String::new(), start.to_string()),
    };
    Ok((rv, ns, name))
}

fn parse_rv(s: &str) -> Result<u64, ApiError> {
    s.parse::<u64>().map_err(|_| {
        ApiError::bad_request(format!(
            "resourceVersion: Invalid value: {s:?}: must be a non-negative integer"
        ))
    })
}

fn manager_name(q: &QueryOptions, req: &ApiRequest) -> String {
    match &q.field_manager {
        Some(m) => m.clone(),
        None => req
            .user_agent
            .as_deref()
            .unwrap_or_default()
            .split('/')
            .next()
            .unwrap_or_default()
            .chars()
            .filter(|c| !c.is_control())
            .take(128)
            .collect(),
    }
}

fn validate_field_manager(q: &QueryOptions, apply: bool) -> Result<(), ApiError> {
    let mut errs = Vec::new();
    match q.field_manager.as_deref() {
        None | Some("") if apply => {
            errs.push("fieldManager: Required value: is required for apply patch".to_string())
        }
        Some(m) if m.chars().count() > 128 => {
            errs.push("fieldManager: Too long: may not be more than 128 bytes".to_string())
        }
        Some(m) if m.chars().any(char::is_control) => errs.push(format!(
            "fieldManager: Invalid value: {m:?}: must only contain printable characters"
        )),
        _ => {}
    }
    if q.force.is_some() && !apply {
        errs.push("force: Forbidden: may not be specified for non-apply patch".to_string());
    }
    if errs.is_empty() {
        return Ok(());
    }
    let rendered = if errs.len() == 1 {
        errs[0].clone()
    } else {
        format!("[{}]", errs.join(", "))
    };
    Err(ApiError::unprocessable(format!(
        "PatchOptions.meta.k8s.io \"\" is invalid: {rendered}"
    )))
}

impl Cluster {
    /// A cluster; `now` stamps the seeded namespaces and `kubernetes` Service.
    pub fn new(config: ServerConfig, now: Timestamp) -> Cluster {
        let mut c = Cluster {
            store: Store::new(config.history_limit),
            rng: config.random_seed | 1,
            catalog: Catalog::new(),
            gc_pending: false,
            crd_types_built_from: BTreeMap::new(),
            server_address: String::new(),
            config,
        };
        if c.config.seed_default_objects {
            c.seed(now);
        }
        c
    }

    fn seed(&mut self, now: Timestamp) {
        let ns_rt = self.catalog.builtin(Builtin::Namespace);
        for ns in ["default", "kube-system", "kube-public", "kube-node-lease"] {
            let obj = json!({"apiVersion": "v1", "kind": "Namespace", "metadata": {"name": ns, "labels": {"kubernetes.io/metadata.name": ns}}});
            let _ = self.write_create(
                &ns_rt,
                None,
                obj,
                Ownership::Update("kube-apiserver".into()),
                false,
                now,
            );
        }
        let svc_rt = self.catalog.builtin(Builtin::Service);
        let first_ip = self
            .config
            .network
            .service_cidrs
            .first()
            .and_then(|c| c.hosts().next())
            .map(|h| h.to_string())
            .unwrap_or_default();
        let kubernetes = json!({
            "apiVersion": "v1", "kind": "Service",
            "metadata": {"name": "kubernetes", "namespace": "default", "labels": {"component": "apiserver", "provider": "kubernetes"}},
            "spec": {"clusterIP": first_ip, "ports": [{"name": "https", "port": 443, "protocol": "TCP", "targetPort": 6443}]}
        });
        let _ = self.write_create(
            &svc_rt,
            Some("default"),
            kubernetes,
            Ownership::Update("kube-apiserver".into()),
            false,
            now,
        );
    }

    pub fn config(&self) -> &ServerConfig {
        &self.config
    }

    pub fn set_server_address(&mut self, addr: String) {
        self.server_address = addr;
    }

    pub fn revision(&self) -> u64 {
        self.store.revision()
    }

    pub fn catalog(&self) -> &Catalog {
        &self.catalog
    }

    pub fn store(&self) -> &Store {
        &self.store
    }

    /// Whether a type is still served (a CRD deletion ends its watches).
    pub fn serves(&self, rt: &ResourceType) -> bool {
        self.catalog
            .find(&rt.group, &rt.version, &rt.plural)
            .is_some()
    }

    pub fn compact_history(&mut self) {
        self.store.compact();
    }

    pub fn set_history_limit(&mut self, limit: usize) {
        self.store.set_history_limit(limit);
    }

    pub fn advance_resource_version(&mut self, by: u64) {
        self.store.advance(by);
    }

    fn next_random(&mut self) -> u64 {
        // xorshift64*: deterministic from the configured seed.
        let mut x = self.rng;
        x ^= x >> 12;
        x ^= x << 25;
        x ^= x >> 27;
        self.rng = x;
        x.wrapping_mul(0x2545_f491_4f6c_dd1d)
    }

    fn new_uid(&mut self) -> String {
        let a = self.next_random();
        let b = self.next_random();
        let hex = format!("{a:016x}{b:016x}");
        format!(
            "{}-{}-4{}-{}{}-{}",
            &hex[0..8],
            &hex[8..12],
            &hex[13..16],
            ["8", "9", "a", "b"][usize::try_from(b % 4).unwrap_or(0)],
            &hex[17..20],
            &hex[20..32]
        )
    }

    fn name_suffix(&mut self) -> String {
        (0..5)
            .map(|_| {
                let i = usize::try_from(self.next_random() % NAME_SUFFIX_ALPHABET.len() as u64)
                    .unwrap_or(0);
                char::from(NAME_SUFFIX_ALPHABET[i])
            })
            .collect()
    }

    fn type_for_key(&self, key: &StorageKey) -> Option<Arc<ResourceType>> {
        self.catalog
            .all()
            .find(|t| t.storage_key() == *key)
            .cloned()
    }

    /// Serves one request.
    pub fn handle(&mut self, req: &ApiRequest, now: Timestamp) -> ApiReply {
        match self.dispatch(req, now) {
            Ok(r) => r,
            Err(e) => ApiReply::Error(e),
        }
    }

    fn dispatch(&mut self, req: &ApiRequest, now: Timestamp) -> Result<ApiReply, ApiError> {
        let segments: Vec<&str> = req.path.split('/').filter(|s| !s.is_empty()).collect();
        let get_only = |r: Result<ApiReply, ApiError>| -> Result<ApiReply, ApiError> {
            if req.method == "GET" {
                r
            } else {
                Err(method_not_allowed())
            }
        };
        match segments.as_slice() {
            ["version"] => get_only(Ok(ApiReply::json(200, self.version_json()))),
            ["healthz" | "livez" | "readyz"] => get_only(Ok(ApiReply::Text {
                code: 200,
                body: "ok".into(),
            })),
            ["api"] => get_only(self.discovery_root(req, true)),
            ["apis"] => get_only(self.discovery_root(req, false)),
            ["api", "v1"] => get_only(self.resource_list("", "v1")),
            ["apis", group] => get_only(match self.catalog.api_group(group) {
                Some(g) => Ok(ApiReply::json(200, g)),
                None => Ok(not_found_page()),
            }),
            ["apis", group, version] => get_only(self.resource_list(group, version)),
            ["api", "v1", rest @ ..] => self.resource_request("", "v1", rest, req, now),
            ["apis", group, version, rest @ ..] => {
                let (g, v) = (group.to_string(), version.to_string());
                self.resource_request(&g, &v, rest, req, now)
            }
            _ => Ok(not_found_page()),
        }
    }

    fn version_json(&self) -> Value {
        let v = &self.config.version;
        json!({
            "major": v.major.to_string(),
            "minor": v.minor.to_string(),
            "gitVersion": format!("v{}.{}.{}", v.major, v.minor, v.patch),
            "gitCommit": "0000000000000000000000000000000000000000",
            "gitTreeState": "clean",
            "buildDate": "2024-01-01T00:00:00Z",
            "goVersion": "go1.22.0",
            "compiler": "gc",
            "platform": "linux/amd64"
        })
    }

    fn discovery_root(&self, req: &ApiRequest, core: bool) -> Result<ApiReply, ApiError> {
        match negotiate(req.accept.as_deref(), true)? {
            Representation::AggregatedDiscovery => Ok(ApiReply::Json {
                code: 200,
                body: self.catalog.aggregated(core),
                content_type: "application/json;g=apidiscovery.k8s.io;v=v2;as=APIGroupDiscoveryList",
                warnings: Vec::new(),
            }),
            _ if core => Ok(ApiReply::json(
                200,
                self.catalog.api_versions(&self.server_address),
            )),
            _ => Ok(ApiReply::json(200, self.catalog.api_group_list())),
        }
    }

    fn resource_list(&self, group: &str, version: &str) -> Result<ApiReply, ApiError> {
        Ok(match self.catalog.api_resource_list(group, version) {
            Some(l) => ApiReply::json(200, l),
            None => not_found_page(),
        })
    }

    fn route(&self, group: &str, version: &str, rest: &[&str]) -> Option<Target> {
        if rest.is_empty() || !self.catalog.has_group_version(group, version) {
            return None;
        }
        let (rt, namespace, tail) = match rest {
            ["namespaces", ns, plural, tail @ ..] => {
                match self.catalog.find(group, version, plural) {
                    Some(rt) if rt.namespaced => (rt, Some(ns.to_string()), tail),
                    _ => (
                        self.catalog.find(group, version, rest[0])?,
                        None,
                        &rest[1..],
                    ),
                }
            }
            [plural, tail @ ..] => (self.catalog.find(group, version, plural)?, None, tail),
            [] => return None,
        };
        let (name, sub) = match tail {
            [] => (None, Subresource::Main),
            [name] => (Some(name.to_string()), Subresource::Main),
            [name, "status"] if rt.status_subresource => {
                (Some(name.to_string()), Subresource::Status)
            }
            _ => return None,
        };
        // A named namespaced object needs its namespace in the path.
        if rt.namespaced && namespace.is_none() && name.is_some() {
            return None;
        }
        Some(Target {
            rt,
            namespace,
            name,
            sub,
        })
    }

    fn resource_request(
        &mut self,
        group: &str,
        version: &str,
        rest: &[&str],
        req: &ApiRequest,
        now: Timestamp,
    ) -> Result<ApiReply, ApiError> {
        let Some(t) = self.route(group, version, rest) else {
            return Ok(not_found_page());
        };
        let q = QueryOptions::parse(req)?;
        let repr = negotiate(req.accept.as_deref(), false)?;
        let verb_ok = |verb: &str| -> Result<(), ApiError> {
            if t.rt.allows(verb) {
                Ok(())
            } else {
                Err(method_not_allowed())
            }
        };
        let reply = match (&t.name, req.method.as_str()) {
            (None, "GET") if q.watch => {
                verb_ok("watch")?;
                self.watch(&t, &q, repr)
            }
            (None, "GET") => {
                verb_ok("list")?;
                self.list(&t, &q, repr)
            }
            (None, "POST") => {
                verb_ok("create")?;
                if t.rt.namespaced && t.namespace.is_none() {
                    return Err(method_not_allowed());
                }
                self.create(&t, req, &q, repr, now)
            }
            (None, "DELETE") => {
                verb_ok("deletecollection")?;
                self.delete_collection(&t, req, &q, now)
            }
            (Some(name), "GET") => {
                verb_ok("get")?;
                let obj = self.get_existing(&t, name)?;
                Ok(ApiReply::json(
                    200,
                    present(&t.rt, &obj, repr == Representation::Metadata, false),
                ))
            }
            (Some(name), "PUT") => {
                verb_ok("update")?;
                self.update(&t, name, req, &q, repr, now)
            }
            (Some(name), "PATCH") => {
                verb_ok("patch")?;
                self.patch(&t, name, req, &q, repr, now)
            }
            (Some(name), "DELETE") if t.sub == Subresource::Main => {
                verb_ok("delete")?;
                self.delete(&t, name, req, &q, repr, now)
            }
            _ => Err(method_not_allowed()),
        }?;
        Ok(reply)
    }

    fn get_existing(&self, t: &Target, name: &str) -> Result<Arc<Value>, ApiError> {
        self.store
            .get(
                &t.rt.storage_key(),
                t.namespace.as_deref().unwrap_or_default(),
                name,
            )
            .ok_or_else(|| ApiError::not_found(&t.rt.subject(), name))
    }

    fn check_field_labels(&self, rt: &ResourceType, q: &QueryOptions) -> Result<(), ApiError> {
        for f in q.fields.fields() {
            kinds::field_label(rt, &json!({}), f).map_err(ApiError::bad_request)?;
        }
        Ok(())
    }

    fn filter(&self, t: &Target, q: &QueryOptions, repr: Representation) -> WatchFilter {
        WatchFilter {
            rt: t.rt.clone(),
            namespace: t.namespace.clone(),
            labels: q.labels.clone(),
            fields: q.fields.clone(),
            metadata_only: repr == Representation::Metadata,
        }
    }

    fn list(
        &self,
        t: &Target,
        q: &QueryOptions,
        repr: Representation,
    ) -> Result<ApiReply, ApiError> {
        self.check_field_labels(&t.rt, q)?;
        let filter = self.filter(t, q, repr);
        let key = t.rt.storage_key();
        let (rv, after, objects): (u64, Option<ObjectKey>, Listing) = match &q.continue_token {
            Some(token) => {
                let (rv, ns, name) = decode_continue(token)?;
                let objs = self.store.list_at(&key, rv).map_err(|_| {
                    ApiError::expired("The provided continue parameter is too old to display a consistent list result. You can start a new list without the continue parameter, or use the continue value from the response to get a consistent list result.")
                })?;
                (rv, Some((ns, name)), objs.into_iter().collect())
            }
            None => {
                let current = self.store.revision();
                match (
                    q.resource_version.as_deref(),
                    q.resource_version_match.as_deref(),
                ) {
                    (Some(rv), Some("Exact")) => {
                        let rv = parse_rv(rv)?;
                        if rv > current {
                            return Err(ApiError::too_large_resource_version(rv, current));
                        }
                        let objs = self.store.list_at(&key, rv).map_err(|c| {
                            ApiError::expired(format!(
                                "too old resource version: {rv} ({})",
                                c.oldest
                            ))
                        })?;
                        (rv, None, objs.into_iter().collect())
                    }
                    (None, Some(m)) => {
                        return Err(ApiError::unprocessable(format!(
                            "ListOptions.meta.k8s.io \"\" is invalid: resourceVersionMatch: Forbidden: resourceVersionMatch ({m}) is forbidden unless resourceVersion is provided"
                        )));
                    }
                    (rv, _) => {
                        if let Some(rv) = rv.filter(|r| *r != "0") {
                            let rv = parse_rv(rv)?;
                            if rv > current {
                                return Err(ApiError::too_large_resource_version(rv, current));
                            }
                        }
                        let objs = self.store.list(&key, t.namespace.as_deref());
                        let keyed = objs
                            .into_iter()
                            .map(|o| {
                                (
                                    (
                                        meta_str(&o, "namespace").unwrap_or_default().to_string(),
                                        meta_str(&o, "name").unwrap_or_default().to_string(),
                                    ),
                                    o,
                                )
                            })
                            .collect();
                        (current, None, keyed)
                    }
                }
            }
        };
        let mut matching = objects
            .into_iter()
            .filter(|(k, _)| after.as_ref().is_none_or(|a| k > a))
            .filter(|(_, o)| filter.matches(o));
        let mut items = Vec::new();
        let mut last_key = None;
        let limit = q.limit.unwrap_or(usize::MAX);
        for (k, o) in matching.by_ref() {
            if items.len() == limit {
                // One more exists: this page is not the last.
                let remaining = 1 + matching.count();
                let (ns, name): &(String, String) = last_key.as_ref().unwrap_or(&k);
                let mut meta = json!({"resourceVersion": rv.to_string(), "continue": encode_continue(rv, ns, name)});
                if q.labels.is_empty() && q.fields.is_empty() {
                    meta["remainingItemCount"] = json!(remaining);
                }
                return Ok(ApiReply::json(
                    200,
                    self.list_json(&t.rt, meta, items, repr),
                ));
            }
            items.push(present(&t.rt, &o, repr == Representation::Metadata, true));
            last_key = Some(k);
        }
        Ok(ApiReply::json(
            200,
            self.list_json(
                &t.rt,
                json!({"resourceVersion": rv.to_string()}),
                items,
                repr,
            ),
        ))
    }

    fn list_json(
        &self,
        rt: &ResourceType,
        meta: Value,
        items: Vec<Value>,
        repr: Representation,
    ) -> Value {
        if repr == Representation::Metadata {
            json!({"kind": "PartialObjectMetadataList", "apiVersion": "meta.k8s.io/v1", "metadata": meta, "items": items})
        } else {
            json!({"kind": rt.list_kind, "apiVersion": rt.api_version(), "metadata": meta, "items": items})
        }
    }

    fn watch(
        &self,
        t: &Target,
        q: &QueryOptions,
        repr: Representation,
    ) -> Result<ApiReply, ApiError> {
        self.check_field_labels(&t.rt, q)?;
        if q.send_initial_events {
            let mut errs = Vec::new();
            if q.resource_version_match.as_deref() != Some("NotOlderThan") {
                errs.push("resourceVersionMatch: Forbidden: sendInitialEvents requires setting resourceVersionMatch to NotOlderThan");
            }
            if !q.allow_bookmarks {
                errs.push("allowWatchBookmarks: Required value: sendInitialEvents requires setting allowWatchBookmarks to true");
            }
            if !errs.is_empty() {
                let rendered = if errs.len() == 1 {
                    errs[0].to_string()
                } else {
                    format!("[{}]", errs.join(", "))
                };
                return Err(ApiError::unprocessable(format!(
                    "ListOptions.meta.k8s.io \"\" is invalid: {rendered}"
                )));
            }
        } else if let Some(m) = &q.resource_version_match {
            return Err(ApiError::unprocessable(format!(
                "ListOptions.meta.k8s.io \"\" is invalid: resourceVersionMatch: Forbidden: resourceVersionMatch ({m}) is forbidden for watch"
            )));
        }
        let filter = self.filter(t, q, repr);
        let current = self.store.revision();
        let initial = |this: &Self, end_bookmark: bool| WatchStart::Initial {
            objects: this
                .store
                .list(&t.rt.storage_key(), t.namespace.as_deref())
                .into_iter()
                .filter(|o| filter.matches(o))
                .collect(),
            revision: current,
            end_bookmark,
        };
        let start = match q.resource_version.as_deref() {
            _ if q.send_initial_events => initial(self, true),
            None | Some("0") => initial(self, false),
            Some(rv) => {
                let rv = parse_rv(rv)?;
                if rv > current {
                    return Err(ApiError::too_large_resource_version(rv, current));
                }
                match self.store.changes_since(rv) {
                    Ok(_) => WatchStart::After(rv),
                    Err(c) => WatchStart::Fail(ApiError::expired(format!(
                        "too old resource version: {rv} ({})",
                        c.oldest
                    ))),
                }
            }
        };
        Ok(ApiReply::Watch(Box::new(WatchPlan {
            filter,
            start,
            bookmarks: q.allow_bookmarks,
            timeout: q.timeout.unwrap_or(self.config.default_watch_timeout),
        })))
    }

    /// Decodes a body for a write and applies `fieldValidation` to its unknown fields.
    fn decode_body(
        &self,
        rt: &ResourceType,
        body: &Value,
        q: &QueryOptions,
    ) -> Result<(Value, Vec<String>), ApiError> {
        let decoded = kinds::decode(rt, body)?;
        let unknown: Vec<String> = decoded
            .unknown_fields
            .iter()
            .map(|f| format!("unknown field \"{f}\""))
            .collect();
        match q.field_validation {
            FieldValidation::Strict if !unknown.is_empty() => Err(ApiError::bad_request(format!(
                "strict decoding error: {}",
                unknown.join(", ")
            ))),
            FieldValidation::Warn => Ok((decoded.object, unknown)),
            _ => Ok((decoded.object, Vec::new())),
        }
    }

    fn reply_object(
        rt: &ResourceType,
        code: u16,
        obj: &Value,
        repr: Representation,
        warnings: Vec<String>,
    ) -> ApiReply {
        ApiReply::Json {
            code,
            body: present(rt, obj, repr == Representation::Metadata, false),
            content_type: "application/json",
            warnings,
        }
    }

    fn create(
        &mut self,
        t: &Target,
        req: &ApiRequest,
        q: &QueryOptions,
        repr: Representation,
        now: Timestamp,
    ) -> Result<ApiReply, ApiError> {
        validate_field_manager(q, false)?;
        let body = parse_body(req)?;
        check_type_meta(&t.rt, &body, false)?;
        if let Some(ns) = meta_str(&body, "namespace").filter(|n| !n.is_empty())
            && t.rt.namespaced
            && Some(ns) != t.namespace.as_deref()
        {
            return Err(ApiError::bad_request(
                "the namespace of the provided object does not match the namespace sent on the request",
            ));
        }
        if meta_str(&body, "resourceVersion").is_some_and(|r| !r.is_empty()) {
            return Err(ApiError::bad_request(
                "resourceVersion should not be set on objects to be created",
            ));
        }
        let (obj, warnings) = self.decode_body(&t.rt, &body, q)?;
        let manager = manager_name(q, req);
        let created = self.write_create(
            &t.rt,
            t.namespace.as_deref(),
            obj,
            Ownership::Update(manager),
            q.dry_run,
            now,
        )?;
        self.run_controllers(now);
        Ok(Self::reply_object(&t.rt, 201, &created, repr, warnings))
    }

    /// The create pipeline shared by POST, PUT-creates and apply-creates.
    fn write_create(
        &mut self,
        rt: &Arc<ResourceType>,
        namespace: Option<&str>,
        mut obj: Value,
        ownership: Ownership,
        dry_run: bool,
        now: Timestamp,
    ) -> Result<Value, ApiError> {
        let subject = rt.subject();
        if let Some(o) = obj.as_object_mut() {
            o.insert("apiVersion".into(), json!(rt.api_version()));
            o.insert("kind".into(), json!(rt.kind));
        }
        {
            let meta = meta_mut(&mut obj);
            if rt.namespaced {
                meta.insert("namespace".into(), json!(namespace.unwrap_or_default()));
            } else {
                meta.remove("namespace");
            }
        }
        let generate = meta_str(&obj, "generateName")
            .filter(|g| !g.is_empty())
            .map(String::from);
        if meta_str(&obj, "name").is_none_or(str::is_empty)
            && let Some(prefix) = generate
        {
            let mut prefix = prefix;
            prefix.truncate(63 - 5);
            let name = format!("{prefix}{}", self.name_suffix());
            meta_mut(&mut obj).insert("name".into(), json!(name));
        }
        let name = meta_str(&obj, "name").unwrap_or_default().to_string();
        if rt.namespaced {
            let ns = namespace.unwrap_or_default();
            let ns_key = self.catalog.builtin(Builtin::Namespace).storage_key();
            match self.store.get(&ns_key, "", ns) {
                None => {
                    let ns_subject = self.catalog.builtin(Builtin::Namespace).subject();
                    return Err(ApiError::not_found(&ns_subject, ns));
                }
                Some(n) if is_deleting(&n) => {
                    let mut e = ApiError::forbidden(format!(
                        "{} \"{name}\" is forbidden: unable to create new content in namespace {ns} because it is being terminated",
                        subject.qualified_resource()
                    ));
                    e.details.insert("name".into(), json!(name));
                    e.details.insert("kind".into(), json!(rt.plural));
                    e.details.insert("causes".into(), json!([{"reason": "NamespaceTerminating", "message": format!("namespace {ns} is being terminated"), "field": "metadata.namespace"}]));
                    return Err(e);
                }
                Some(_) => {}
            }
        }
        if let Some(crd) = &rt.crd_name {
            let crd_key = self
                .catalog
                .builtin(Builtin::CustomResourceDefinition)
                .storage_key();
            if self
                .store
                .get(&crd_key, "", crd)
                .is_some_and(|c| is_deleting(&c))
            {
                return Err(ApiError::method_not_allowed(
                    "create not allowed while custom resource definition is terminating",
                ));
            }
        }
        kinds::apply_defaults(rt, &mut obj);
        kinds::prepare_create(rt, &mut obj);
        let uid = self.new_uid();
        {
            let meta = meta_mut(&mut obj);
            meta.insert("uid".into(), json!(uid));
            meta.insert("creationTimestamp".into(), json!(format_time(now)));
            meta.remove("deletionTimestamp");
            meta.remove("deletionGracePeriodSeconds");
            meta.remove("resourceVersion");
            meta.remove("selfLink");
            if kinds::uses_generation(rt) {
                meta.insert("generation".into(), json!(1));
            } else {
                meta.remove("generation");
            }
        }
        let mf = match ownership {
            Ownership::Applied(mf) => mf,
            Ownership::Update(manager) => {
                let mut mf = ManagedFields::decode(&obj).unwrap_or_default();
                let id = ManagerId {
                    manager,
                    operation: Operation::Update,
                    api_version: rt.api_version(),
                    subresource: String::new(),
                };
                let ignored = kinds::ignored_fields(rt, Subresource::Main, &[]);
                mf.update(
                    rt.schema.root(),
                    &kinds::skeleton(rt),
                    &strip_managed_fields(&obj),
                    &id,
                    &ignored,
                    &format_time(now),
                );
                mf
            }
        };
        if rt.builtin == Some(Builtin::Service) {
            let key = rt.storage_key();
            let all = self.store.list(&key, None);
            let others: Vec<&Value> = all
                .iter()
                .map(|v| v.as_ref())
                .filter(|o| {
                    !(meta_str(o, "namespace") == namespace
                        && meta_str(o, "name") == Some(name.as_str()))
                })
                .collect();
            kinds::allocate_service(&self.config.network, &mut obj, None, &others)
                .map_err(|errs| ApiError::invalid(&subject, &name, &errs))?;
        }
        let errs = kinds::validate_create(rt, &obj);
        if !errs.is_empty() {
            return Err(ApiError::invalid(&subject, &name, &errs));
        }
        self.set_managed_fields(&mut obj, &mf);
        let ns = if rt.namespaced {
            namespace.unwrap_or_default()
        } else {
            ""
        };
        if self.store.get(&rt.storage_key(), ns, &name).is_some() {
            return Err(ApiError::already_exists(&subject, &name));
        }
        if dry_run {
            return Ok(obj);
        }
        if obj.pointer("/metadata/ownerReferences").is_some() {
            self.gc_pending = true;
        }
        let change = self.store.put(&rt.storage_key(), ns, &name, obj);
        Ok((*change.object).clone())
    }

    fn set_managed_fields(&self, obj: &mut Value, mf: &ManagedFields) {
        let encoded = mf.encode();
        let meta = meta_mut(obj);
        if encoded.as_array().is_some_and(|a| !a.is_empty()) {
            meta.insert("managedFields".into(), encoded);
        } else {
            meta.remove("managedFields");
        }
    }

    fn update(
        &mut self,
        t: &Target,
        name: &str,
        req: &ApiRequest,
        q: &QueryOptions,
        repr: Representation,
        now: Timestamp,
    ) -> Result<ApiReply, ApiError> {
        validate_field_manager(q, false)?;
        let body = parse_body(req)?;
        check_type_meta(&t.rt, &body, false)?;
        self.check_name_and_namespace(t, name, &body)?;
        let (obj, warnings) = self.decode_body(&t.rt, &body, q)?;
        let manager = manager_name(q, req);
        let key = t.rt.storage_key();
        let ns = t.namespace.clone().unwrap_or_default();
        let Some(old) = self.store.get(&key, &ns, name) else {
            if t.sub == Subresource::Main && kinds::allow_create_on_update(&t.rt) {
                if meta_str(&obj, "resourceVersion").is_some_and(|r| !r.is_empty()) {
                    return Err(ApiError::not_found(&t.rt.subject(), name));
                }
                let created = self.write_create(
                    &t.rt,
                    t.namespace.as_deref(),
                    obj,
                    Ownership::Update(manager),
                    q.dry_run,
                    now,
                )?;
                self.run_controllers(now);
                return Ok(Self::reply_object(&t.rt, 201, &created, repr, warnings));
            }
            return Err(ApiError::not_found(&t.rt.subject(), name));
        };
        match meta_str(&obj, "resourceVersion").filter(|r| !r.is_empty()) {
            None if !kinds::allow_unconditional_update(&t.rt) => {
                return Err(ApiError::invalid(
                    &t.rt.subject(),
                    name,
                    &[crate::status::FieldError::invalid(
                        "metadata.resourceVersion",
                        json!("0x0"),
                        "must be specified for an update",
                    )],
                ));
            }
            Some(rv) if Some(rv) != meta_str(&old, "resourceVersion") => {
                return Err(ApiError::conflict_modified(&t.rt.subject(), name));
            }
            _ => {}
        }
        let updated = self.write_update(
            &t.rt,
            &old,
            obj,
            t.sub,
            Ownership::Update(manager),
            q.dry_run,
            now,
        )?;
        self.run_controllers(now);
        Ok(Self::reply_object(&t.rt, 200, &updated, repr, warnings))
    }

    fn check_name_and_namespace(
        &self,
        t: &Target,
        name: &str,
        body: &Value,
    ) -> Result<(), ApiError> {
        let body_name = meta_str(body, "name").unwrap_or_default();
        if body_name != name {
            return Err(ApiError::bad_request(format!(
                "the name of the object ({body_name}) does not match the name on the URL ({name})"
            )));
        }
        if let Some(ns) = meta_str(body, "namespace").filter(|n| !n.is_empty())
            && t.rt.namespaced
            && Some(ns) != t.namespace.as_deref()
        {
            return Err(ApiError::bad_request(
                "the namespace of the provided object does not match the namespace sent on the request",
            ));
        }
        Ok(())
    }

    /// The update pipeline shared by PUT, patches and apply. `new` is decoded.
    #[allow(clippy::too_many_arguments)]
    fn write_update(
        &mut self,
        rt: &Arc<ResourceType>,
        old: &Arc<Value>,
        mut new: Value,
        sub: Subresource,
        ownership: Ownership,
        dry_run: bool,
        now: Timestamp,
    ) -> Result<Value, ApiError> {
        let subject = rt.subject();
        let name = meta_str(old, "name").unwrap_or_default().to_string();
        let ns = meta_str(old, "namespace").unwrap_or_default().to_string();
        if let Some(o) = new.as_object_mut() {
            o.insert("apiVersion".into(), json!(rt.api_version()));
            o.insert("kind".into(), json!(rt.kind));
        }
        kinds::apply_defaults(rt, &mut new);
        {
            let meta = meta_mut(&mut new);
            meta.insert("name".into(), json!(name));
            if rt.namespaced {
                meta.insert("namespace".into(), json!(ns));
            } else {
                meta.remove("namespace");
            }
            if meta
                .get("uid")
                .and_then(Value::as_str)
                .is_none_or(str::is_empty)
                && let Some(uid) = old.pointer("/metadata/uid")
            {
                meta.insert("uid".into(), uid.clone());
            }
            for f in ["creationTimestamp", "generation", "resourceVersion"] {
                match old.pointer(&format!("/metadata/{f}")) {
                    Some(v) => meta.insert(f.into(), v.clone()),
                    None => meta.remove(f),
                };
            }
            if let Some(dt) = old.pointer("/metadata/deletionTimestamp") {
                meta.insert("deletionTimestamp".into(), dt.clone());
                if let Some(g) = old.pointer("/metadata/deletionGracePeriodSeconds") {
                    meta.insert("deletionGracePeriodSeconds".into(), g.clone());
                }
            } else {
                // Setting a deletion timestamp through an update is rejected by validation.
                if meta.get("deletionTimestamp").is_some_and(|v| !v.is_null()) {
                    return Err(ApiError::invalid(
                        &subject,
                        &name,
                        &[crate::status::FieldError::invalid(
                            "metadata.deletionTimestamp",
                            meta["deletionTimestamp"].clone(),
                            "field is immutable",
                        )],
                    ));
                }
                meta.remove("deletionGracePeriodSeconds");
            }
        }
        kinds::prepare_update(rt, &mut new, old, sub);
        let old_plain = strip_managed_fields(old);
        let mf = match ownership {
            Ownership::Applied(mf) => mf,
            Ownership::Update(manager) => {
                let provided = if sub == Subresource::Main {
                    ManagedFields::decode(&new)
                        .ok()
                        .filter(|m| !m.entries.is_empty())
                } else {
                    None
                };
                let mut mf =
                    provided.unwrap_or_else(|| ManagedFields::decode(old).unwrap_or_default());
                let id = ManagerId {
                    manager,
                    operation: Operation::Update,
                    api_version: rt.api_version(),
                    subresource: sub.as_str().to_string(),
                };
                let ignored = kinds::ignored_fields(rt, sub, &[old.as_ref(), &new]);
                mf.update(
                    rt.schema.root(),
                    &old_plain,
                    &strip_managed_fields(&new),
                    &id,
                    &ignored,
                    &format_time(now),
                );
                mf
            }
        };
        if rt.builtin == Some(Builtin::Service) && sub == Subresource::Main {
            let all = self.store.list(&rt.storage_key(), None);
            let others: Vec<&Value> = all
                .iter()
                .map(|v| v.as_ref())
                .filter(|o| {
                    !(meta_str(o, "namespace") == Some(ns.as_str())
                        && meta_str(o, "name") == Some(name.as_str()))
                })
                .collect();
            kinds::allocate_service(&self.config.network, &mut new, Some(old), &others)
                .map_err(|errs| ApiError::invalid(&subject, &name, &errs))?;
        }
        if kinds::uses_generation(rt)
            && kinds::generation_changed(rt, &old_plain, &strip_managed_fields(&new))
        {
            let g = old
                .pointer("/metadata/generation")
                .and_then(Value::as_i64)
                .unwrap_or(0)
                + 1;
            meta_mut(&mut new).insert("generation".into(), json!(g));
        }
        let errs = kinds::validate_update(rt, &new, old, sub);
        if !errs.is_empty() {
            return Err(ApiError::invalid(&subject, &name, &errs));
        }
        self.set_managed_fields(&mut new, &mf);
        if without_resource_version(&new) == without_resource_version(old) {
            return Ok((**old).clone());
        }
        if dry_run {
            return Ok(new);
        }
        if is_deleting(&new) && finalizers(&new).is_empty() {
            self.gc_pending = true;
            let removed = self.store.remove(&rt.storage_key(), &ns, &name);
            return Ok(removed.map(|c| (*c.object).clone()).unwrap_or(new));
        }
        if new.pointer("/metadata/ownerReferences").is_some() {
            self.gc_pending = true;
        }
        let change = self.store.put(&rt.storage_key(), &ns, &name, new);
        Ok((*change.object).clone())
    }

    fn patch(
        &mut self,
        t: &Target,
        name: &str,
        req: &ApiRequest,
        q: &QueryOptions,
        repr: Representation,
        now: Timestamp,
    ) -> Result<ApiReply, ApiError> {
        let media = req.media_type().unwrap_or_default();
        if media == "application/apply-patch+yaml" {
            return self.apply(t, name, req, q, repr, now);
        }
        validate_field_manager(q, false)?;
        let accepted = if t.rt.builtin.is_some() {
            "application/json-patch+json, application/merge-patch+json, application/apply-patch+yaml, application/strategic-merge-patch+json"
        } else {
            "application/json-patch+json, application/merge-patch+json, application/apply-patch+yaml"
        };
        let unsupported = || {
            ApiError::unsupported_media_type(format!(
                "the body of the request was in an unknown format - accepted media types include: {accepted}"
            ))
        };
        let patch_doc: Value = serde_json::from_slice(&req.body)
            .map_err(|e| ApiError::bad_request(format!("error decoding patch: {e}")))?;
        let old = self.get_existing(t, name)?;
        let current = present(&t.rt, &old, false, false);
        let patched = match media.as_str() {
            "application/json-patch+json" => patch::json_patch(&current, &patch_doc),
            "application/merge-patch+json" => {
                if !patch_doc.is_object() {
                    return Err(ApiError::bad_request(
                        "error decoding patch: merge patch must be a JSON object",
                    ));
                }
                Ok(patch::merge_patch(&current, &patch_doc))
            }
            "application/strategic-merge-patch+json" if t.rt.builtin.is_some() => {
                patch::strategic_merge_patch(&current, &patch_doc, t.rt.schema.root())
            }
            _ => return Err(unsupported()),
        }
        .map_err(|e| match e {
            PatchError::BadRequest(m) => ApiError::bad_request(m),
            PatchError::Unprocessable(m) => ApiError::unprocessable(m),
        })?;
        if !patched.is_object() {
            return Err(ApiError::bad_request(format!(
                "Object 'Kind' is missing in '{patched}'"
            )));
        }
        check_type_meta(&t.rt, &patched, false)?;
        self.check_name_and_namespace(t, name, &patched)?;
        match meta_str(&patched, "resourceVersion").filter(|r| !r.is_empty()) {
            Some(rv) if Some(rv) != meta_str(&old, "resourceVersion") => {
                return Err(ApiError::conflict_modified(&t.rt.subject(), name));
            }
            _ => {}
        }
        let (obj, warnings) = self.decode_body(&t.rt, &patched, q)?;
        let manager = manager_name(q, req);
        let updated = self.write_update(
            &t.rt,
            &old,
            obj,
            t.sub,
            Ownership::Update(manager),
            q.dry_run,
            now,
        )?;
        self.run_controllers(now);
        Ok(Self::reply_object(&t.rt, 200, &updated, repr, warnings))
    }

    fn apply(
        &mut self,
        t: &Target,
        name: &str,
        req: &ApiRequest,
        q: &QueryOptions,
        repr: Representation,
        now: Timestamp,
    ) -> Result<ApiReply, ApiError> {
        validate_field_manager(q, true)?;
        let text = std::str::from_utf8(&req.body)
            .map_err(|e| ApiError::bad_request(format!("error decoding YAML: {e}")))?;
        let config: Value = serde_saphyr::from_str(text)
            .map_err(|e| ApiError::bad_request(format!("error decoding YAML: {e}")))?;
        if !config.is_object() {
            return Err(ApiError::bad_request(format!(
                "Object 'Kind' is missing in '{config}'"
            )));
        }
        if config
            .get("kind")
            .and_then(Value::as_str)
            .is_none_or(str::is_empty)
        {
            return Err(ApiError::bad_request(format!(
                "Object 'Kind' is missing in '{config}'"
            )));
        }
        let patch_version = config
            .get("apiVersion")
            .and_then(Value::as_str)
            .unwrap_or_default();
        if patch_version != t.rt.api_version() {
            return Err(ApiError::bad_request(format!(
                "Incorrect version specified in apply patch. Specified patch version: {patch_version}, expected: {}",
                t.rt.api_version()
            )));
        }
        check_type_meta(&t.rt, &config, true)?;
        // The name may be left out (the URL names the object); a different one is an error.
        let mut config = config;
        if meta_str(&config, "name").is_none_or(str::is_empty) {
            meta_mut(&mut config).insert("name".into(), json!(name));
        }
        self.check_name_and_namespace(t, name, &config)?;
        if config
            .pointer("/metadata/managedFields")
            .is_some_and(|m| !m.is_null())
        {
            return Err(ApiError::bad_request("metadata.managedFields must be nil"));
        }
        // Unknown fields: built-ins reject them (the typed converter cannot place them),
        // custom resources are pruned.
        let mut warnings = Vec::new();
        let config = if t.rt.builtin.is_some() {
            let mut unknown = Vec::new();
            undeclared_fields(t.rt.schema.root(), &config, "", &mut unknown);
            if let Some(first) = unknown.first() {
                return Err(ApiError::bad_request(format!(
                    "failed to create typed patch object ({}; {}): {first}: field not declared in schema",
                    self.object_ref(t, name),
                    t.rt.gvk_string()
                )));
            }
            // Normalise times and quantities as the typed conversion does, when the partial
            // object decodes on its own.
            match kinds::decode(&t.rt, &config) {
                Ok(d) => keep_keys_of(&config, d.object),
                Err(_) => config,
            }
        } else {
            let d = kinds::decode(&t.rt, &config)?;
            if q.field_validation == FieldValidation::Strict && !d.unknown_fields.is_empty() {
                return Err(ApiError::bad_request(format!(
                    "strict decoding error: {}",
                    d.unknown_fields
                        .iter()
                        .map(|f| format!("unknown field \"{f}\""))
                        .collect::<Vec<_>>()
                        .join(", ")
                )));
            }
            if q.field_validation == FieldValidation::Warn {
                warnings = d
                    .unknown_fields
                    .iter()
                    .map(|f| format!("unknown field \"{f}\""))
                    .collect();
            }
            keep_keys_of(&config, d.object)
        };
        let applier = ManagerId {
            manager: q.field_manager.clone().unwrap_or_default(),
            operation: Operation::Apply,
            api_version: t.rt.api_version(),
            subresource: t.sub.as_str().to_string(),
        };
        let force = q.force.unwrap_or(false);
        let ns = t.namespace.clone().unwrap_or_default();
        let old = self.store.get(&t.rt.storage_key(), &ns, name);
        let typed_error = |this: &Self, e: OwnershipError| match e {
            OwnershipError::Conflicts(c) => {
                let (message, causes) = c.message_and_causes();
                ApiError::apply_conflict(message, causes)
            }
            OwnershipError::InvalidConfig(m) => ApiError::bad_request(format!(
                "failed to create typed patch object ({}; {}): {m}",
                this.object_ref(t, name),
                t.rt.gvk_string()
            )),
        };
        match old {
            None => {
                if t.sub == Subresource::Status {
                    return Err(ApiError::not_found(&t.rt.subject(), name));
                }
                let mut live = kinds::skeleton(&t.rt);
                meta_mut(&mut live).insert("name".into(), json!(name));
                let mut mf = ManagedFields::default();
                let ignored = kinds::ignored_fields(&t.rt, Subresource::Main, &[]);
                let merged = mf
                    .apply(
                        t.rt.schema.root(),
                        &live,
                        &config,
                        &applier,
                        force,
                        &ignored,
                        &format_time(now),
                    )
                    .map_err(|e| typed_error(self, e))?;
                let decoded = kinds::decode(&t.rt, &merged)?.object;
                let created = self.write_create(
                    &t.rt,
                    t.namespace.as_deref(),
                    decoded,
                    Ownership::Applied(mf),
                    q.dry_run,
                    now,
                )?;
                self.run_controllers(now);
                Ok(Self::reply_object(&t.rt, 201, &created, repr, warnings))
            }
            Some(old) => {
                if let Some(rv) = meta_str(&config, "resourceVersion").filter(|r| !r.is_empty())
                    && Some(rv) != meta_str(&old, "resourceVersion")
                {
                    return Err(ApiError::conflict_modified(&t.rt.subject(), name));
                }
                let mut mf = ManagedFields::decode(&old).unwrap_or_default();
                let live = present(&t.rt, &strip_managed_fields(&old), false, false);
                let ignored = kinds::ignored_fields(&t.rt, t.sub, &[&live, &config]);
                let merged = mf
                    .apply(
                        t.rt.schema.root(),
                        &live,
                        &config,
                        &applier,
                        force,
                        &ignored,
                        &format_time(now),
                    )
                    .map_err(|e| typed_error(self, e))?;
                let decoded = kinds::decode(&t.rt, &merged)?.object;
                let updated = self.write_update(
                    &t.rt,
                    &old,
                    decoded,
                    t.sub,
                    Ownership::Applied(mf),
                    q.dry_run,
                    now,
                )?;
                self.run_controllers(now);
                Ok(Self::reply_object(&t.rt, 200, &updated, repr, warnings))
            }
        }
    }

    fn object_ref(&self, t: &Target, name: &str) -> String {
        match &t.namespace {
            Some(ns) => format!("{ns}/{name}"),
            None => name.to_string(),
        }
    }

    fn delete_options(
        req: &ApiRequest,
        q: &QueryOptions,
    ) -> Result<(Option<Propagation>, Value, bool), ApiError> {
        let mut propagation = q.propagation;
        let mut preconditions = Value::Null;
        let mut dry_run = q.dry_run;
        if !req.body.is_empty() {
            let opts: Value = serde_json::from_slice(&req.body)
                .map_err(|e| ApiError::bad_request(format!("error decoding DeleteOptions: {e}")))?;
            if let Some(p) = opts.get("propagationPolicy").and_then(Value::as_str) {
                propagation = Some(parse_propagation(p)?);
            } else if let Some(orphan) = opts.get("orphanDependents").and_then(Value::as_bool) {
                propagation = Some(if orphan {
                    Propagation::Orphan
                } else {
                    Propagation::Background
                });
            }
            preconditions = opts.get("preconditions").cloned().unwrap_or(Value::Null);
            if opts
                .get("dryRun")
                .and_then(Value::as_array)
                .is_some_and(|d| d.iter().any(|x| x == "All"))
            {
                dry_run = true;
            }
        }
        Ok((propagation, preconditions, dry_run))
    }

    fn delete(
        &mut self,
        t: &Target,
        name: &str,
        req: &ApiRequest,
        q: &QueryOptions,
        repr: Representation,
        now: Timestamp,
    ) -> Result<ApiReply, ApiError> {
        let (propagation, preconditions, dry_run) = Self::delete_options(req, q)?;
        let old = self.get_existing(t, name)?;
        if let Some(uid) = preconditions.get("uid").and_then(Value::as_str)
            && Some(uid) != meta_str(&old, "uid")
        {
            return Err(ApiError::conflict(
                &t.rt.subject(),
                name,
                &format!(
                    "Precondition failed: UID in precondition: {uid}, UID in object meta: {}",
                    meta_str(&old, "uid").unwrap_or_default()
                ),
            ));
        }
        if let Some(rv) = preconditions.get("resourceVersion").and_then(Value::as_str)
            && Some(rv) != meta_str(&old, "resourceVersion")
        {
            return Err(ApiError::conflict(
                &t.rt.subject(),
                name,
                &format!(
                    "Precondition failed: ResourceVersion in precondition: {rv}, ResourceVersion in object meta: {}",
                    meta_str(&old, "resourceVersion").unwrap_or_default()
                ),
            ));
        }
        if dry_run {
            return Ok(Self::reply_object(&t.rt, 200, &old, repr, Vec::new()));
        }
        let outcome = self.delete_object_inner(&t.rt, &old, propagation, now);
        self.run_controllers(now);
        match outcome {
            Deletion::Pending(obj) => Ok(Self::reply_object(&t.rt, 200, &obj, repr, Vec::new())),
            Deletion::Removed(obj) if kinds::returns_deleted_object(&t.rt) => {
                Ok(Self::reply_object(&t.rt, 200, &obj, repr, Vec::new()))
            }
            Deletion::Removed(obj) => {
                let mut details = json!({"name": name, "kind": t.rt.plural, "uid": meta_str(&obj, "uid").unwrap_or_default()});
                if !t.rt.group.is_empty() {
                    details["group"] = json!(t.rt.group);
                }
                Ok(ApiReply::json(
                    200,
                    json!({"kind": "Status", "apiVersion": "v1", "metadata": {}, "status": "Success", "details": details}),
                ))
            }
        }
    }

    /// Starts or completes the deletion of an object, as the registry's `Delete` does.
    fn delete_object_inner(
        &mut self,
        rt: &Arc<ResourceType>,
        old: &Arc<Value>,
        propagation: Option<Propagation>,
        now: Timestamp,
    ) -> Deletion {
        let key = rt.storage_key();
        let ns = meta_str(old, "namespace").unwrap_or_default().to_string();
        let name = meta_str(old, "name").unwrap_or_default().to_string();
        let mut obj = (**old).clone();
        let mut fins = finalizers(&obj);
        let gc_finalizer = match propagation {
            Some(Propagation::Orphan) => Some(ORPHAN_FINALIZER),
            Some(Propagation::Foreground) => Some(FOREGROUND_FINALIZER),
            _ => None,
        };
        if let Some(f) = gc_finalizer
            && !fins.iter().any(|x| x == f)
        {
            fins.push(f.to_string());
            self.gc_pending = true;
        }
        if rt.builtin == Some(Builtin::CustomResourceDefinition)
            && !fins.iter().any(|x| x == CRD_CLEANUP_FINALIZER)
        {
            fins.push(CRD_CLEANUP_FINALIZER.to_string());
        }
        if rt.builtin == Some(Builtin::Namespace) {
            // The namespace controller empties it, then it goes away.
            if !is_deleting(&obj) {
                let meta = meta_mut(&mut obj);
                meta.insert("deletionTimestamp".into(), json!(format_time(now)));
                meta.insert("deletionGracePeriodSeconds".into(), json!(0));
                if let Some(st) = obj.get_mut("status").and_then(Value::as_object_mut) {
                    st.insert("phase".into(), json!("Terminating"));
                }
                set_finalizers(&mut obj, &fins);
                let change = self.store.put(&key, &ns, &name, obj);
                return Deletion::Pending((*change.object).clone());
            }
            return Deletion::Pending(obj);
        }
        if fins.is_empty() {
            self.gc_pending = true;
            return match self.store.remove(&key, &ns, &name) {
                Some(c) => Deletion::Removed((*c.object).clone()),
                None => Deletion::Removed(obj),
            };
        }
        if is_deleting(&obj) && fins == finalizers(old) {
            return Deletion::Pending(obj);
        }
        if !is_deleting(&obj) {
            let generation = obj
                .pointer("/metadata/generation")
                .and_then(Value::as_i64)
                .unwrap_or(0);
            let meta = meta_mut(&mut obj);
            meta.insert("deletionTimestamp".into(), json!(format_time(now)));
            meta.insert("deletionGracePeriodSeconds".into(), json!(0));
            if generation > 0 {
                meta.insert("generation".into(), json!(generation + 1));
            }
        }
        set_finalizers(&mut obj, &fins);
        let change = self.store.put(&key, &ns, &name, obj);
        Deletion::Pending((*change.object).clone())
    }

    fn delete_collection(
        &mut self,
        t: &Target,
        req: &ApiRequest,
        q: &QueryOptions,
        now: Timestamp,
    ) -> Result<ApiReply, ApiError> {
        self.check_field_labels(&t.rt, q)?;
        let (propagation, _, dry_run) = Self::delete_options(req, q)?;
        let filter = self.filter(t, q, Representation::Full);
        let victims: Vec<Arc<Value>> = self
            .store
            .list(&t.rt.storage_key(), t.namespace.as_deref())
            .into_iter()
            .filter(|o| filter.matches(o))
            .collect();
        let mut items = Vec::new();
        for v in victims {
            if dry_run {
                items.push(present(&t.rt, &v, false, true));
                continue;
            }
            match self.delete_object_inner(&t.rt, &v, propagation, now) {
                Deletion::Removed(o) | Deletion::Pending(o) => {
                    items.push(present(&t.rt, &o, false, true))
                }
            }
        }
        self.run_controllers(now);
        Ok(ApiReply::json(
            200,
            self.list_json(
                &t.rt,
                json!({"resourceVersion": self.store.revision().to_string()}),
                items,
                Representation::Full,
            ),
        ))
    }

    /// Writes an object's finalizers (a controller's update).
    fn write_finalizers(&mut self, key: &StorageKey, obj: &Value, fins: &[String]) {
        let ns = meta_str(obj, "namespace").unwrap_or_default().to_string();
        let name = meta_str(obj, "name").unwrap_or_default().to_string();
        let mut new = obj.clone();
        set_finalizers(&mut new, fins);
        if is_deleting(&new) && fins.is_empty() {
            self.gc_pending = true;
            self.store.remove(key, &ns, &name);
        } else {
            self.store.put(key, &ns, &name, new);
        }
    }

    /// The control-plane loops this server runs synchronously after each write.
    fn run_controllers(&mut self, now: Timestamp) {
        for _ in 0..64 {
            let mut progressed = self.crd_controller(now);
            progressed |= self.namespace_controller(now);
            progressed |= self.garbage_collector(now);
            if !progressed {
                break;
            }
        }
    }

    /// Serves established CRDs, reports them established, and cleans up deleted ones.
    fn crd_controller(&mut self, now: Timestamp) -> bool {
        let crd_rt = self.catalog.builtin(Builtin::CustomResourceDefinition);
        let crd_key = crd_rt.storage_key();
        let crds = self.store.list(&crd_key, None);
        let mut progressed = false;
        let live: BTreeSet<String> = crds
            .iter()
            .filter_map(|c| meta_str(c, "name").map(String::from))
            .collect();
        let stale: Vec<String> = self
            .crd_types_built_from
            .keys()
            .filter(|n| !live.contains(*n))
            .cloned()
            .collect();
        for n in stale {
            self.catalog.set_crd(&n, Vec::new());
            self.crd_types_built_from.remove(&n);
            progressed = true;
        }
        for crd in crds {
            let name = meta_str(&crd, "name").unwrap_or_default().to_string();
            if is_deleting(&crd) {
                let Some(rt) = self
                    .catalog
                    .all()
                    .find(|t| t.crd_name.as_deref() == Some(name.as_str()))
                    .cloned()
                else {
                    if finalizers(&crd).iter().any(|f| f == CRD_CLEANUP_FINALIZER) {
                        let fins: Vec<String> = finalizers(&crd)
                            .into_iter()
                            .filter(|f| f != CRD_CLEANUP_FINALIZER)
                            .collect();
                        self.write_finalizers(&crd_key, &crd, &fins);
                        progressed = true;
                    }
                    continue;
                };
                let instances = self.store.list(&rt.storage_key(), None);
                for inst in &instances {
                    if !is_deleting(inst) {
                        self.delete_object_inner(&rt, inst, None, now);
                        progressed = true;
                    }
                }
                if self.store.list(&rt.storage_key(), None).is_empty()
                    && finalizers(&crd).iter().any(|f| f == CRD_CLEANUP_FINALIZER)
                {
                    let fins: Vec<String> = finalizers(&crd)
                        .into_iter()
                        .filter(|f| f != CRD_CLEANUP_FINALIZER)
                        .collect();
                    self.write_finalizers(&crd_key, &crd, &fins);
                    progressed = true;
                }
                continue;
            }
            let rv = meta_str(&crd, "resourceVersion")
                .unwrap_or_default()
                .to_string();
            if self.crd_types_built_from.get(&name) == Some(&rv) {
                continue;
            }
            let group = crd
                .pointer("/spec/group")
                .and_then(Value::as_str)
                .unwrap_or_default()
                .to_string();
            let plural = crd
                .pointer("/spec/names/plural")
                .and_then(Value::as_str)
                .unwrap_or_default()
                .to_string();
            let conflict = self.catalog.conflicts_with(&name, &group, &plural);
            let types = if conflict {
                Vec::new()
            } else {
                types_from_crd(&crd).unwrap_or_default()
            };
            self.catalog.set_crd(&name, types);
            let status = crd_status(&crd, conflict, now);
            if crd.get("status") != Some(&status) {
                let mut new = (*crd).clone();
                if let Some(o) = new.as_object_mut() {
                    o.insert("status".into(), status);
                }
                let change = self.store.put(&crd_key, "", &name, new);
                self.crd_types_built_from
                    .insert(name, change.rv.to_string());
            } else {
                self.crd_types_built_from.insert(name, rv);
            }
            progressed = true;
        }
        progressed
    }

    /// Empties terminating namespaces, then removes them.
    fn namespace_controller(&mut self, now: Timestamp) -> bool {
        let ns_key = self.catalog.builtin(Builtin::Namespace).storage_key();
        let terminating: Vec<Arc<Value>> = self
            .store
            .list(&ns_key, None)
            .into_iter()
            .filter(|n| is_deleting(n))
            .collect();
        let mut progressed = false;
        for ns in terminating {
            let ns_name = meta_str(&ns, "name").unwrap_or_default().to_string();
            for key in self.store.keys() {
                let Some(rt) = self.type_for_key(&key) else {
                    continue;
                };
                if !rt.namespaced {
                    continue;
                }
                for obj in self.store.list(&key, Some(&ns_name)) {
                    if !is_deleting(&obj) {
                        self.delete_object_inner(&rt, &obj, None, now);
                        progressed = true;
                    }
                }
            }
            let left: usize = self
                .store
                .keys()
                .iter()
                .filter(|k| self.type_for_key(k).is_some_and(|t| t.namespaced))
                .map(|k| self.store.list(k, Some(&ns_name)).len())
                .sum();
            if left == 0 && finalizers(&ns).is_empty() {
                self.store.remove(&ns_key, "", &ns_name);
                self.gc_pending = true;
                progressed = true;
            }
        }
        progressed
    }

    /// Deletes dependents whose owners are gone, and runs `orphan`/`foregroundDeletion`.
    fn garbage_collector(&mut self, now: Timestamp) -> bool {
        if !self.gc_pending {
            return false;
        }
        self.gc_pending = false;
        let mut uids: BTreeMap<String, (StorageKey, Arc<Value>)> = BTreeMap::new();
        let mut dependents: Vec<(StorageKey, Arc<Value>)> = Vec::new();
        for key in self.store.keys() {
            for obj in self.store.list(&key, None) {
                if let Some(uid) = meta_str(&obj, "uid") {
                    uids.insert(uid.to_string(), (key.clone(), obj.clone()));
                }
                if obj
                    .pointer("/metadata/ownerReferences")
                    .and_then(Value::as_array)
                    .is_some_and(|r| !r.is_empty())
                {
                    dependents.push((key.clone(), obj.clone()));
                }
            }
        }
        let owner_uids = |obj: &Value| -> Vec<String> {
            obj.pointer("/metadata/ownerReferences")
                .and_then(Value::as_array)
                .map(|a| {
                    a.iter()
                        .filter_map(|r| r.get("uid").and_then(Value::as_str))
                        .map(String::from)
                        .collect()
                })
                .unwrap_or_default()
        };
        let mut progressed = false;
        // Orphaning and foreground deletion of owners.
        for (uid, (key, owner)) in &uids {
            if !is_deleting(owner) {
                continue;
            }
            let fins = finalizers(owner);
            let deps: Vec<&(StorageKey, Arc<Value>)> = dependents
                .iter()
                .filter(|(_, d)| owner_uids(d).contains(uid))
                .collect();
            if fins.iter().any(|f| f == ORPHAN_FINALIZER) {
                for (dkey, dep) in &deps {
                    let mut d = (**dep).clone();
                    if let Some(Value::Array(refs)) = d.pointer_mut("/metadata/ownerReferences") {
                        refs.retain(|r| r.get("uid").and_then(Value::as_str) != Some(uid.as_str()));
                    }
                    let ns = meta_str(&d, "namespace").unwrap_or_default().to_string();
                    let name = meta_str(&d, "name").unwrap_or_default().to_string();
                    self.store.put(dkey, &ns, &name, d);
                }
                let rest: Vec<String> = fins
                    .iter()
                    .filter(|f| *f != ORPHAN_FINALIZER)
                    .cloned()
                    .collect();
                self.write_finalizers(key, owner, &rest);
                return true;
            }
            if fins.iter().any(|f| f == FOREGROUND_FINALIZER) {
                for (dkey, dep) in &deps {
                    if !is_deleting(dep)
                        && let Some(rt) = self.type_for_key(dkey)
                    {
                        self.delete_object_inner(&rt, dep, Some(Propagation::Foreground), now);
                        progressed = true;
                    }
                }
                let blocking = deps.iter().any(|(dkey, d)| {
                    self.store
                        .get(
                            dkey,
                            meta_str(d, "namespace").unwrap_or_default(),
                            meta_str(d, "name").unwrap_or_default(),
                        )
                        .is_some()
                        && d.pointer("/metadata/ownerReferences")
                            .and_then(Value::as_array)
                            .is_some_and(|refs| {
                                refs.iter().any(|r| {
                                    r.get("uid").and_then(Value::as_str) == Some(uid.as_str())
                                        && r.get("blockOwnerDeletion").and_then(Value::as_bool)
                                            == Some(true)
                                })
                            })
                });
                if !blocking {
                    let rest: Vec<String> = fins
                        .iter()
                        .filter(|f| *f != FOREGROUND_FINALIZER)
                        .cloned()
                        .collect();
                    self.write_finalizers(key, owner, &rest);
                    return true;
                }
                self.gc_pending = true;
            }
        }
        // Dependents whose owners no longer exist.
        for (key, dep) in &dependents {
            if is_deleting(dep) {
                continue;
            }
            let refs = owner_uids(dep);
            let alive: Vec<&String> = refs.iter().filter(|u| uids.contains_key(*u)).collect();
            if alive.is_empty() {
                if let Some(rt) = self.type_for_key(key) {
                    self.delete_object_inner(&rt, dep, None, now);
                    progressed = true;
                }
            } else if alive.len() < refs.len() {
                let mut d = (**dep).clone();
                if let Some(Value::Array(r)) = d.pointer_mut("/metadata/ownerReferences") {
                    r.retain(|x| {
                        x.get("uid")
                            .and_then(Value::as_str)
                            .is_some_and(|u| uids.contains_key(u))
                    });
                }
                let ns = meta_str(&d, "namespace").unwrap_or_default().to_string();
                let name = meta_str(&d, "name").unwrap_or_default().to_string();
                self.store.put(key, &ns, &name, d);
                progressed = true;
            }
        }
        progressed
    }

    /// Changes after `rv` (for watch streaming).
    pub fn changes_since(&self, rv: u64) -> Result<Vec<Arc<Change>>, crate::store::Compacted> {
        self.store.changes_since(rv)
    }

    // ---- in-process helpers used by the test handle ------------------------------------------

    fn type_of(&self, obj: &Value) -> Result<Arc<ResourceType>, ApiError> {
        let av = obj
            .get("apiVersion")
            .and_then(Value::as_str)
            .unwrap_or_default();
        let kind = obj.get("kind").and_then(Value::as_str).unwrap_or_default();
        self.catalog.find_kind(av, kind).ok_or_else(|| {
            ApiError::not_found(
                &crate::status::Subject {
                    group: String::new(),
                    resource: kind.to_string(),
                    kind: kind.to_string(),
                },
                av,
            )
        })
    }

    /// Finds a served type by `apiVersion` and `kind`.
    pub fn find_type(&self, api_version: &str, kind: &str) -> Option<Arc<ResourceType>> {
        self.catalog.find_kind(api_version, kind)
    }

    pub fn get_object(&self, rt: &ResourceType, namespace: &str, name: &str) -> Option<Value> {
        self.store
            .get(&rt.storage_key(), namespace, name)
            .map(|o| present(rt, &o, false, false))
    }

    pub fn list_objects(&self, rt: &ResourceType, namespace: Option<&str>) -> Vec<Value> {
        self.store
            .list(&rt.storage_key(), namespace)
            .iter()
            .map(|o| present(rt, o, false, false))
            .collect()
    }

    /// Creates an object through the full create path (defaults, validation, allocation).
    pub fn create_object(
        &mut self,
        obj: Value,
        manager: &str,
        now: Timestamp,
    ) -> Result<Value, ApiError> {
        let rt = self.type_of(&obj)?;
        let ns = if rt.namespaced {
            Some(meta_str(&obj, "namespace").unwrap_or("default").to_string())
        } else {
            None
        };
        let (decoded, _) =
            self.decode_body(&rt, &obj, &QueryOptions::parse(&ApiRequest::default())?)?;
        let created = self.write_create(
            &rt,
            ns.as_deref(),
            decoded,
            Ownership::Update(manager.to_string()),
            false,
            now,
        )?;
        self.run_controllers(now);
        Ok(present(&rt, &created, false, false))
    }

    /// Stores an object exactly as given (plus uid, creationTimestamp and a new
    /// resourceVersion), bypassing defaults, validation and status rules: for fixtures.
    pub fn upsert_object(&mut self, mut obj: Value, now: Timestamp) -> Result<Value, ApiError> {
        let rt = self.type_of(&obj)?;
        let name = meta_str(&obj, "name")
            .filter(|n| !n.is_empty())
            .map(String::from)
            .ok_or_else(|| ApiError::bad_request("metadata.name is required"))?;
        let ns = if rt.namespaced {
            meta_str(&obj, "namespace").unwrap_or("default").to_string()
        } else {
            String::new()
        };
        let existing = self.store.get(&rt.storage_key(), &ns, &name);
        let uid = self.new_uid();
        {
            let meta = meta_mut(&mut obj);
            if rt.namespaced {
                meta.insert("namespace".into(), json!(ns));
            }
            if meta.get("uid").is_none() {
                let uid = existing
                    .as_ref()
                    .and_then(|e| meta_str(e, "uid").map(String::from))
                    .unwrap_or(uid);
                meta.insert("uid".into(), json!(uid));
            }
            if meta.get("creationTimestamp").is_none() {
                let ts = existing
                    .as_ref()
                    .and_then(|e| meta_str(e, "creationTimestamp").map(String::from))
                    .unwrap_or_else(|| format_time(now));
                meta.insert("creationTimestamp".into(), json!(ts));
            }
            if kinds::uses_generation(&rt) && meta.get("generation").is_none() {
                meta.insert("generation".into(), json!(1));
            }
        }
        if let Some(o) = obj.as_object_mut() {
            o.insert("apiVersion".into(), json!(rt.api_version()));
        }
        self.gc_pending = true;
        let change = self.store.put(&rt.storage_key(), &ns, &name, obj);
        self.run_controllers(now);
        Ok(present(&rt, &change.object, false, false))
    }

    /// Deletes through the API's delete path (finalizers honoured).
    pub fn delete_object(
        &mut self,
        rt: &Arc<ResourceType>,
        namespace: &str,
        name: &str,
        now: Timestamp,
    ) -> Result<Option<Value>, ApiError> {
        let old = self
            .store
            .get(&rt.storage_key(), namespace, name)
            .ok_or_else(|| ApiError::not_found(&rt.subject(), name))?;
        let outcome = self.delete_object_inner(rt, &old, None, now);
        self.run_controllers(now);
        Ok(match outcome {
            Deletion::Removed(_) => None,
            Deletion::Pending(o) => Some(present(rt, &o, false, false)),
        })
    }

    /// Removes an object at once, ignoring finalizers.
    pub fn remove_object(
        &mut self,
        rt: &Arc<ResourceType>,
        namespace: &str,
        name: &str,
        now: Timestamp,
    ) -> bool {
        let removed = self
            .store
            .remove(&rt.storage_key(), namespace, name)
            .is_some();
        self.gc_pending = true;
        self.run_controllers(now);
        removed
    }
}

/// Keeps only the keys of `original` (recursively for objects) from a decoded version of it,
/// so that normalising a partial apply configuration adds nothing to it.
fn keep_keys_of(original: &Value, decoded: Value) -> Value {
    match (original, decoded) {
        (Value::Object(o), Value::Object(mut d)) => {
            let mut out = Map::new();
            for (k, ov) in o {
                match d.remove(k) {
                    Some(dv) => {
                        out.insert(k.clone(), keep_keys_of(ov, dv));
                    }
                    None if ov.is_null() => {}
                    None => {}
                }
            }
            Value::Object(out)
        }
        (_, d) => d,
    }
}

/// Fields of `v` that the schema does not declare, as `.spec.foo` paths.
fn undeclared_fields(
    node: crate::schema::SchemaNode<'_>,
    v: &Value,
    path: &str,
    out: &mut Vec<String>,
) {
    use crate::schema::Shape;
    match (node.shape(), v) {
        (Shape::Struct { .. }, Value::Object(m)) => {
            for (k, cv) in m {
                let p = format!("{path}.{k}");
                if node.declared_field(k).is_none()
                    && node.child(k).is_untyped()
                    && !node.preserves_unknown_fields()
                {
                    out.push(p);
                } else {
                    undeclared_fields(node.child(k), cv, &p, out);
                }
            }
        }
        (Shape::Map { elem, .. }, Value::Object(m)) => {
            for (k, cv) in m {
                undeclared_fields(elem, cv, &format!("{path}.{k}"), out);
            }
        }
        (Shape::List { elem, .. }, Value::Array(items)) => {
            for (i, item) in items.iter().enumerate() {
                undeclared_fields(elem, item, &format!("{path}[{i}]"), out);
            }
        }
        _ => {}
    }
}

/// The status the apiextensions controllers give a CRD.
fn crd_status(crd: &Value, conflict: bool, now: Timestamp) -> Value {
    let names = crd
        .pointer("/spec/names")
        .cloned()
        .unwrap_or_else(|| json!({}));
    let mut accepted = names.clone();
    if let Some(a) = accepted.as_object_mut() {
        if !a.contains_key("singular")
            && let Some(k) = names.get("kind").and_then(Value::as_str)
        {
            a.insert("singular".into(), json!(k.to_lowercase()));
        }
        if !a.contains_key("listKind")
            && let Some(k) = names.get("kind").and_then(Value::as_str)
        {
            a.insert("listKind".into(), json!(format!("{k}List")));
        }
    }
    let mut stored: Vec<Value> = crd
        .pointer("/status/storedVersions")
        .and_then(Value::as_array)
        .cloned()
        .unwrap_or_default();
    for v in crd
        .pointer("/spec/versions")
        .and_then(Value::as_array)
        .into_iter()
        .flatten()
    {
        if v.get("storage").and_then(Value::as_bool) == Some(true)
            && let Some(n) = v.get("name")
            && !stored.contains(n)
        {
            stored.push(n.clone());
        }
    }
    let previous = |ty: &str| -> Option<Value> {
        crd.pointer("/status/conditions")
            .and_then(Value::as_array)
            .and_then(|cs| {
                cs.iter()
                    .find(|c| c.get("type").and_then(Value::as_str) == Some(ty))
                    .cloned()
            })
    };
    let condition = |ty: &str, status: &str, reason: &str, message: &str| -> Value {
        match previous(ty) {
            Some(p)
                if p.get("status").and_then(Value::as_str) == Some(status)
                    && p.get("reason").and_then(Value::as_str) == Some(reason) =>
            {
                p
            }
            _ => {
                json!({"type": ty, "status": status, "reason": reason, "message": message, "lastTransitionTime": format_time(now)})
            }
        }
    };
    let conditions = if conflict {
        vec![
            condition(
                "NamesAccepted",
                "False",
                "AlreadyInUse",
                "the resource name is already in use",
            ),
            condition(
                "Established",
                "False",
                "NotAccepted",
                "not all names are accepted",
            ),
        ]
    } else {
        vec![
            condition("NamesAccepted", "True", "NoConflicts", "no conflicts found"),
            condition(
                "Established",
                "True",
                "InitialNamesAccepted",
                "the initial names have been accepted",
            ),
        ]
    };
    json!({
        "acceptedNames": if conflict { json!({"kind": "", "plural": ""}) } else { accepted },
        "conditions": conditions,
        "storedVersions": stored,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    fn t0() -> Timestamp {
        "2024-05-01T12:00:00Z".parse().unwrap()
    }

    fn cluster() -> Cluster {
        Cluster::new(ServerConfig::default(), t0())
    }

    fn send(
        c: &mut Cluster,
        method: &str,
        path: &str,
        query: &str,
        ct: &str,
        body: Value,
    ) -> ApiReply {
        let req = ApiRequest::new(method, path)
            .with_query_string(query)
            .with_body(ct, serde_json::to_vec(&body).unwrap());
        c.handle(&req, t0())
    }

    fn body(r: ApiReply) -> Value {
        match r {
            ApiReply::Json { body, .. } => body,
            other => panic!("expected a JSON reply, got {other:?}"),
        }
    }

    fn error(r: ApiReply) -> ApiError {
        match r {
            ApiReply::Error(e) => e,
            other => panic!("expected an error, got {other:?}"),
        }
    }

    #[test]
    fn time_is_an_input_for_server_set_timestamps() {
        let mut c = cluster();
        let r = send(
            &mut c,
            "PATCH",
            "/api/v1/namespaces/default/configmaps/c",
            "fieldManager=m",
            "application/apply-patch+yaml",
            json!({"apiVersion": "v1", "kind": "ConfigMap", "data": {"a": "1"}}),
        );
        assert_eq!(r.code(), 201);
        let obj = body(r);
        assert_eq!(obj["metadata"]["creationTimestamp"], "2024-05-01T12:00:00Z");
        assert_eq!(
            obj["metadata"]["managedFields"][0]["time"],
            "2024-05-01T12:00:00Z"
        );
        assert_eq!(obj["metadata"]["name"], "c", "the name comes from the URL");
    }

    #[test]
    fn watch_from_a_compacted_revision_fails_with_expired() {
        let mut c = cluster();
        let old = c.revision();
        send(
            &mut c,
            "POST",
            "/api/v1/namespaces/default/configmaps",
            "",
            "application/json",
            json!({"metadata": {"name": "a"}}),
        );
        c.compact_history();
        let r = c.handle(
            &ApiRequest::new("GET", "/api/v1/configmaps")
                .with_query_string(&format!("watch=true&resourceVersion={old}")),
            t0(),
        );
        let ApiReply::Watch(plan) = r else {
            panic!("expected a watch")
        };
        let WatchStart::Fail(e) = plan.start else {
            panic!("expected a failing start")
        };
        assert_eq!((e.code, e.reason), (410, "Expired"));
        assert_eq!(
            e.message,
            format!("too old resource version: {old} ({})", c.revision())
        );
    }

    #[test]
    fn terminating_namespace_waits_for_finalized_content() {
        let mut c = cluster();
        send(
            &mut c,
            "POST",
            "/api/v1/namespaces",
            "",
            "application/json",
            json!({"metadata": {"name": "x"}}),
        );
        send(
            &mut c,
            "POST",
            "/api/v1/namespaces/x/configmaps",
            "",
            "application/json",
            json!({"metadata": {"name": "held", "finalizers": ["example.com/f"]}}),
        );
        let r = send(
            &mut c,
            "DELETE",
            "/api/v1/namespaces/x",
            "",
            "application/json",
            json!({}),
        );
        assert_eq!(body(r)["status"]["phase"], "Terminating");
        let e = error(send(
            &mut c,
            "POST",
            "/api/v1/namespaces/x/configmaps",
            "",
            "application/json",
            json!({"metadata": {"name": "new"}}),
        ));
        assert_eq!(e.code, 403);
        assert!(
            e.message.ends_with(
                "unable to create new content in namespace x because it is being terminated"
            ),
            "{}",
            e.message
        );
        let held = body(c.handle(
            &ApiRequest::new("GET", "/api/v1/namespaces/x/configmaps/held"),
            t0(),
        ));
        assert!(held["metadata"]["deletionTimestamp"].is_string());
        send(
            &mut c,
            "PATCH",
            "/api/v1/namespaces/x/configmaps/held",
            "",
            "application/merge-patch+json",
            json!({"metadata": {"finalizers": null}}),
        );
        let gone = c.handle(&ApiRequest::new("GET", "/api/v1/namespaces/x"), t0());
        assert_eq!(error(gone).code, 404);
    }

    #[test]
    fn foreground_deletion_keeps_the_owner_until_blocking_dependents_are_gone() {
        let mut c = cluster();
        let owner = body(send(
            &mut c,
            "POST",
            "/api/v1/namespaces/default/configmaps",
            "",
            "application/json",
            json!({"metadata": {"name": "owner"}}),
        ));
        let uid = owner["metadata"]["uid"].as_str().unwrap().to_string();
        send(
            &mut c,
            "POST",
            "/api/v1/namespaces/default/configmaps",
            "",
            "application/json",
            json!({"metadata": {"name": "dep", "finalizers": ["example.com/f"],
            "ownerReferences": [{"apiVersion": "v1", "kind": "ConfigMap", "name": "owner", "uid": uid, "blockOwnerDeletion": true}]}}),
        );
        let r = send(
            &mut c,
            "DELETE",
            "/api/v1/namespaces/default/configmaps/owner",
            "",
            "application/json",
            json!({"propagationPolicy": "Foreground"}),
        );
        let pending = body(r);
        assert_eq!(
            pending["metadata"]["finalizers"],
            json!(["foregroundDeletion"])
        );
        let dep = body(c.handle(
            &ApiRequest::new("GET", "/api/v1/namespaces/default/configmaps/dep"),
            t0(),
        ));
        assert!(
            dep["metadata"]["deletionTimestamp"].is_string(),
            "dependent deletion started"
        );
        assert_eq!(
            c.handle(
                &ApiRequest::new("GET", "/api/v1/namespaces/default/configmaps/owner"),
                t0()
            )
            .code(),
            200
        );
        send(
            &mut c,
            "PATCH",
            "/api/v1/namespaces/default/configmaps/dep",
            "",
            "application/merge-patch+json",
            json!({"metadata": {"finalizers": null}}),
        );
        assert_eq!(
            c.handle(
                &ApiRequest::new("GET", "/api/v1/namespaces/default/configmaps/owner"),
                t0()
            )
            .code(),
            404
        );
    }

    #[test]
    fn crd_clashing_with_a_builtin_is_not_established() {
        let mut c = cluster();
        let crd = json!({"metadata": {"name": "services.example.com"}, "spec": {"group": "example.com", "scope": "Namespaced",
            "names": {"plural": "services", "kind": "Svc"},
            "versions": [{"name": "v1", "served": true, "storage": true, "schema": {"openAPIV3Schema": {"type": "object"}}}]}});
        send(
            &mut c,
            "POST",
            "/apis/apiextensions.k8s.io/v1/customresourcedefinitions",
            "",
            "application/json",
            crd,
        );
        assert!(
            c.find_type("example.com/v1", "Svc").is_some(),
            "a different group does not clash"
        );
        let crd = body(c.handle(
            &ApiRequest::new(
                "GET",
                "/apis/apiextensions.k8s.io/v1/customresourcedefinitions/services.example.com",
            ),
            t0(),
        ));
        assert_eq!(crd["status"]["conditions"][1]["type"], "Established");
        assert_eq!(crd["status"]["conditions"][1]["status"], "True");
    }

    #[test]
    fn unknown_paths_get_kube_apiserver_plain_404() {
        let mut c = cluster();
        let r = c.handle(
            &ApiRequest::new("GET", "/apis/nothing.example.com/v1/things"),
            t0(),
        );
        assert!(
            matches!(r, ApiReply::Text { code: 404, ref body } if body == "404 page not found\n")
        );
        let r = c.handle(
            &ApiRequest::new(
                "GET",
                "/api/v1/namespaces/default/services/kubernetes/proxy",
            ),
            t0(),
        );
        assert_eq!(r.code(), 404);
    }

    #[test]
    fn strict_field_validation_rejects_unknown_fields_and_warn_reports_them() {
        let mut c = cluster();
        let e = error(send(
            &mut c,
            "POST",
            "/api/v1/namespaces/default/configmaps",
            "fieldValidation=Strict",
            "application/json",
            json!({"metadata": {"name": "a"}, "dta": {}}),
        ));
        assert_eq!(
            (e.code, e.message.as_str()),
            (400, "strict decoding error: unknown field \"dta\"")
        );
        let r = send(
            &mut c,
            "POST",
            "/api/v1/namespaces/default/configmaps",
            "",
            "application/json",
            json!({"metadata": {"name": "a"}, "dta": {"x": "y"}}),
        );
        let ApiReply::Json { warnings, .. } = r else {
            panic!("expected JSON")
        };
        assert_eq!(warnings, vec!["unknown field \"dta\""]);
    }

    #[test]
    fn dry_run_changes_nothing() {
        let mut c = cluster();
        let before = c.revision();
        let r = send(
            &mut c,
            "POST",
            "/api/v1/namespaces/default/configmaps",
            "dryRun=All",
            "application/json",
            json!({"metadata": {"name": "a"}}),
        );
        assert_eq!(r.code(), 201);
        assert_eq!(c.revision(), before);
        assert_eq!(
            c.handle(
                &ApiRequest::new("GET", "/api/v1/namespaces/default/configmaps/a"),
                t0()
            )
            .code(),
            404
        );
    }
}
