//! ferrolb-testapiserver: an in-memory Kubernetes API server for ferrolb's tests.
//!
//! No kube-apiserver, kind, k3s or Docker can run where ferrolb is tested, so this crate
//! provides an API server that speaks kube-apiserver's wire protocol — the same paths, verbs,
//! query parameters, bodies, status codes and `Status` errors — for the subset of the API
//! ferrolb uses. The controller and speakers are pointed at it with an ordinary kubeconfig and
//! run unchanged. Where it simplifies, it is stricter than the real server, never more lenient;
//! every simplification is listed below.
//!
//! # Use
//!
//! ```no_run
//! # async fn demo() -> Result<(), Box<dyn std::error::Error>> {
//! use ferrolb_testapiserver::{Fault, TestApiServer};
//! let server = TestApiServer::start("127.0.0.1:0".parse()?).await?;
//! let kubeconfig = kube::config::Kubeconfig::from_yaml(&server.kubeconfig_yaml())?;
//! let config = kube::Config::from_custom_kubeconfig(kubeconfig, &Default::default()).await?;
//! let client = kube::Client::try_from(config)?;
//! // ... run the code under test with `client` ...
//! let services = server.store().list("v1", "Service", Some("default"));
//! assert!(server.writes().iter().all(|w| w.field_manager.is_some()));
//! server.inject_fault(Fault::on_path("/api/v1/namespaces/default/services").method("PATCH").respond(500));
//! server.shutdown().await;
//! # Ok(()) }
//! ```
//! The binary `ferrolb-test-apiserver --listen ADDR:PORT [--kubeconfig-out FILE] [--crds DIR]`
//! serves the same over plain HTTP for processes in other network namespaces.
//!
//! # What is served
//!
//! * **Discovery**: `/version` (configurable, default 1.31.0), `/api`, `/apis`, `/apis/{group}`,
//!   `/api/v1`, `/apis/{group}/{version}` (APIResourceList with singular names, scope, kind,
//!   verbs, short names, categories and `x/status` entries) and aggregated discovery
//!   (`apidiscovery.k8s.io/v2`) when the `Accept` header asks for it (406 for Accept lists
//!   with nothing servable). `/healthz`, `/livez`, `/readyz`. Unknown paths answer
//!   `404 page not found` in plain text, as kube-apiserver's mux does.
//! * **Kinds**: core/v1 `namespaces`, `services` (+status), `nodes` (+status), `secrets`,
//!   `pods` (+status), `configmaps`, `events`; `discovery.k8s.io/v1 endpointslices`;
//!   `coordination.k8s.io/v1 leases`; `events.k8s.io/v1 events`;
//!   `apiextensions.k8s.io/v1 customresourcedefinitions` (+status), and every served version
//!   of every established CRD (scope, status subresource, short names, categories,
//!   `selectableFields`). A fresh server has the namespaces `default`, `kube-system`,
//!   `kube-public`, `kube-node-lease` and the `default/kubernetes` Service.
//! * **Verbs**: get, list, watch, create (with `generateName`), update (PUT), patch, delete,
//!   deletecollection, on the main resource and `/status`; `dryRun=All`; `fieldValidation`
//!   (`Strict` → 400 `strict decoding error`, `Warn` → `Warning` headers, `Ignore`).
//! * **Metadata**: uid, creationTimestamp, resourceVersion (one global counter, like etcd's
//!   revision), generation (Services and CRDs: spec changes; EndpointSlices: any non-metadata
//!   change; custom resources: changes outside metadata and status, or outside metadata when
//!   there is no status subresource; +1 when deletion starts), managedFields.
//! * **Concurrency**: a stale `metadata.resourceVersion` on update/patch → 409 `Conflict`;
//!   custom resources need a resourceVersion on PUT (422), built-ins allow unconditional PUT;
//!   Services and Events may be created by PUT. No-op writes write nothing (same
//!   resourceVersion, no watch event).
//! * **Status subresource**: main-resource writes keep the old status; `/status` writes keep
//!   the old spec. For built-in kinds metadata changes through `/status` are kept (kube-apiserver
//!   resets only `spec` there); for custom resources only `status` changes.
//! * **Patches**: JSON merge patch (RFC 7386); JSON Patch (RFC 6902, with the evanphx/json-patch
//!   behaviour kube-apiserver has: a `test` of a missing member against `null` passes, failures
//!   are 422 `testing value /path failed: test failed`); strategic merge patch for built-ins
//!   (merge keys and strategies from kube-apiserver's OpenAPI markers for the fields of the
//!   served kinds; `$patch`, `$deleteFromPrimitiveList`, `$setElementOrder`, `$retainKeys`),
//!   415 for custom resources; server-side apply (below). Other media types → 415.
//! * **Server-side apply** (`application/apply-patch+yaml`, `fieldManager` required (422),
//!   `force`): structured-merge-diff's algorithms on the kind's schema — the applied
//!   configuration is merged into the live object (atomic lists and maps replaced, granular
//!   ones merged per key/value, list order as structured-merge-diff orders it), fields the
//!   manager applied before and no longer applies are removed unless another manager owns
//!   them, a changed value owned by another manager is a 409 with `FieldManagerConflict`
//!   causes and kube-apiserver's message unless `force=true` (ownership then moves). Non-apply
//!   writes record an `Update` manager (the `fieldManager` parameter, else the User-Agent
//!   prefix) owning exactly the fields it changed, taken from their previous owners.
//!   `managedFields` use the real `FieldsV1` notation (`f:`, `k:`, `v:`, `i:`, `.`), `time`,
//!   `subresource: status`, kube-apiserver's ordering. List types: built-ins carry
//!   kube-apiserver's markers (`status.loadBalancer.ingress` atomic, `status.conditions`
//!   map-list keyed by `type`, `spec.ports` keyed by `port`+`protocol`, `metadata.finalizers`
//!   a set, labels/annotations granular maps, `spec.selector` atomic, …); custom resources
//!   use `x-kubernetes-list-type`/`-list-map-keys`/`-map-type` from their schema, lists
//!   atomic by default. Apply creates missing objects (201); apply to `/status` of a missing
//!   object is 404.
//! * **Services** are defaulted and allocated as kube-apiserver does: `type: ClusterIP`,
//!   `sessionAffinity: None`, port `protocol: TCP` and `targetPort = port`,
//!   `internalTrafficPolicy: Cluster`, `externalTrafficPolicy: Cluster` and
//!   `allocateLoadBalancerNodePorts: true` where they apply, `ipFamilies`/`ipFamilyPolicy`
//!   (SingleStack; PreferDualStack/RequireDualStack give both families), cluster IPs from the
//!   service CIDRs (default 10.96.0.0/16 and fd00:10:96::/112), node ports and health-check
//!   node ports from 30000–32767, `status: {loadBalancer: {}}`, ingress `ipMode: VIP` when an
//!   IP is set; allocated values survive a PUT that omits them and are released when the type
//!   stops needing them; validation of ports, types, policies, immutability of cluster IPs and
//!   `loadBalancerClass`, and of status (ingress IPs, `ipMode`, conditions).
//! * **Watch** (`watch=true|1`): from `resourceVersion` N (events after N), or from unset/`0`
//!   (synthetic `ADDED` for the current state first); `sendInitialEvents=true` (requires
//!   `resourceVersionMatch=NotOlderThan` and bookmarks, as kube-apiserver validates) ends the
//!   initial events with a bookmark annotated `k8s.io/initial-events-end`;
//!   `allowWatchBookmarks` (periodic bookmarks with only kind, apiVersion and resourceVersion);
//!   `timeoutSeconds`; label and field selectors applied to events (an object that starts
//!   matching is `ADDED`, one that stops matching is `DELETED` with its previous content);
//!   metadata-only watches (`as=PartialObjectMetadata`). Events are newline-delimited JSON,
//!   one chunk each. A resourceVersion older than the bounded change history (default 1000
//!   changes) gets an `ERROR` event `410 Expired "too old resource version: X (Y)"`; a newer
//!   one than the server has is 504.
//! * **List**: `resourceVersion` in list metadata, `limit`/`continue` pagination over a
//!   consistent snapshot (kube-apiserver's token format; an expired token is 410 Expired),
//!   `remainingItemCount`, `resourceVersionMatch=Exact`, label selectors (`=`, `==`, `!=`,
//!   `in`, `notin`, exists, `!`exists, `<`, `>`) and field selectors (`metadata.name`,
//!   `metadata.namespace`, plus per kind: Secret `type`, Namespace `status.phase`, Node
//!   `spec.unschedulable`, the Pod and Event labels kube-apiserver supports, CRD
//!   `selectableFields`; others are 400 `field label not supported: X`).
//! * **Deletion**: finalizers hold objects with `deletionTimestamp` and
//!   `deletionGracePeriodSeconds: 0` until the last one is removed (then `DELETED`); adding a
//!   finalizer to a terminating object is 422; preconditions (uid, resourceVersion) are
//!   checked; `propagationPolicy` Orphan/Background/Foreground with a synchronous garbage
//!   collector (dependents of a gone owner are deleted; `orphan` and `foregroundDeletion`
//!   finalizers are honoured); namespaces terminate by deleting their content; a deleted CRD
//!   deletes its instances, then stops being served. Services, Pods, Namespaces and custom
//!   resources answer a delete with the object, other kinds with a `Success` Status.
//! * **Errors** are `Status` objects with kube-apiserver's reasons and messages
//!   (`services "web" not found`, `Operation cannot be fulfilled on …`, `Service "web" is
//!   invalid: spec.ports: Required value`, `Apply failed with 1 conflict: …`).
//! * **Test hooks**: in-process store access ([`StoreAccess`]), a request log
//!   ([`RequestRecord`]: method, path, query, content type, fieldManager, user agent, body,
//!   answered status), fault injection ([`Fault`]: the next N matching requests answer a given
//!   status, 429 with Retry-After, or a dropped connection), closing and pausing watches,
//!   sending bookmarks on demand, compacting or bounding the history, advancing the resource
//!   version.
//!
//! # Simplifications (all deliberate)
//!
//! * No authentication, authorization, admission webhooks, API priority and fairness or audit:
//!   every request is allowed. Plain HTTP/1.1 only (no TLS). JSON only on the way out
//!   (no protobuf, CBOR or Table); request bodies may be JSON or YAML. No OpenAPI documents
//!   (`/openapi/v2`, `/openapi/v3` are 404; kubectl needs `--validate=false`).
//! * Custom resources: structural pruning, `default` and `nullable` are applied; types,
//!   formats, enums, `required` and CEL rules (`x-kubernetes-validations`) are **not**
//!   validated (ferrolb tests its CEL rules separately); conversion between versions only
//!   rewrites `apiVersion`; no scale subresource, no printer columns.
//! * Built-in validation covers object metadata, Services (spec and status), conditions,
//!   Leases, events.k8s.io Events, Secret keys and `basic-auth`, EndpointSlice `addressType`
//!   and CRD basics; other fields only need to decode into k8s-openapi's types. A body missing
//!   a field k8s-openapi requires (a condition's `lastTransitionTime`, say) is a 400 decode
//!   error here where kube-apiserver answers 422 at validation.
//! * Pods are stored without defaulting or scheduling and deleted at once (as an unscheduled
//!   pod is). Nodes get no status skeleton. There is no Endpoints/EndpointSlice controller.
//! * Allocation is lowest-free (kube-apiserver picks at random).
//! * core/v1 and events.k8s.io/v1 Events are stored separately (kube-apiserver serves one
//!   storage through both APIs).
//! * Controllers (CRD establishment, namespace termination, garbage collection) run
//!   synchronously after each write instead of a moment later.
//! * Server-side apply: no cap on Update managers (`ancient-changes`), no migration from the
//!   client-side-apply annotation, no unions, managed fields are not converted between CRD
//!   versions. Unknown fields in an applied configuration are a 400 for built-ins (pruned for
//!   custom resources).
//! * One change history for all resources; a watch from a too-new resourceVersion fails at
//!   once (kube-apiserver waits up to 3 s first). Bookmarks come every `bookmark_interval`
//!   (default 60 s) and on demand; watches without `timeoutSeconds` last 30 minutes.
//!
//! # Modules
//! `server` is the tokio/hyper shell; `cluster` serves each request synchronously with the
//! current time as an input (it is tested without sockets); `kinds` holds per-kind rules,
//! `ssa`/`fieldpath`/`schema` server-side apply, `patch` the other patch formats, `store` the
//! objects and history, `watch` what each watcher sees, `catalog` the served types and
//! discovery, `selector`, `validation`, `request` and `status` the rest.

pub mod catalog;
pub mod cluster;
pub mod fieldpath;
pub mod kinds;
pub mod patch;
pub mod request;
pub mod schema;
pub mod selector;
pub mod server;
pub mod ssa;
pub mod status;
pub mod store;
pub mod validation;
pub mod watch;

pub use cluster::{Cluster, KubeVersion, ServerConfig};
pub use kinds::ClusterNetwork;
pub use request::{ApiReply, ApiRequest};
pub use server::{
    Fault, FaultAction, RequestRecord, ServerHandle, StoreAccess, TestApiServer, kubeconfig_for,
};
pub use status::{ApiError, FieldError};
