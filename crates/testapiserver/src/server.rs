//! The HTTP shell: a hyper server around the [`Cluster`], and the handle tests hold.
//!
//! Owns the listener and connections (plain HTTP/1.1), turning hyper requests into
//! [`ApiRequest`]s and replies into responses, streaming watches (one JSON event per chunk,
//! bookmarks on a timer, `timeoutSeconds`), the request log, fault injection and the
//! [`ServerHandle`] API: URL and kubeconfig, in-process store access ([`StoreAccess`]), and the
//! test hooks (close/pause watches, send bookmarks, compact history). Semantics live in
//! `cluster`; this module only moves bytes and keeps time.

use std::convert::Infallible;
use std::io;
use std::net::SocketAddr;
use std::sync::atomic::{AtomicU64, AtomicUsize, Ordering};
use std::sync::{Arc, Mutex, MutexGuard};

use bytes::Bytes;
use http_body_util::combinators::BoxBody;
use http_body_util::{BodyExt, Full, StreamBody};
use hyper::body::{Frame, Incoming};
use hyper::{Request, Response, StatusCode};
use hyper_util::rt::TokioIo;
use jiff::Timestamp;
use serde::Serialize;
use serde::de::DeserializeOwned;
use serde_json::Value;
use tokio::net::TcpListener;
use tokio::sync::{mpsc, watch};
use tokio::task::JoinSet;
use tracing::{debug, warn};

use crate::cluster::{Cluster, ServerConfig};
use crate::request::{ApiReply, ApiRequest};
use crate::status::ApiError;
use crate::watch::{WatchPlan, WatchStart, WireEvent};

type Body = BoxBody<Bytes, Infallible>;

/// Largest request body accepted, as kube-apiserver's 3 MiB limit.
const MAX_BODY: usize = 3 * 1024 * 1024;

/// One logged request.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct RequestRecord {
    /// Order of arrival, from 1.
    pub seq: u64,
    pub method: String,
    pub path: String,
    /// The raw query string (without `?`).
    pub query: String,
    pub content_type: Option<String>,
    /// The `fieldManager` query parameter.
    pub field_manager: Option<String>,
    pub user_agent: Option<String>,
    /// The request body as text (lossy UTF-8).
    pub body: String,
    /// The HTTP status answered (0 when a fault closed the connection).
    pub status: u16,
}

impl RequestRecord {
    /// POST, PUT, PATCH or DELETE.
    pub fn is_write(&self) -> bool {
        matches!(self.method.as_str(), "POST" | "PUT" | "PATCH" | "DELETE")
    }

    /// A decoded query parameter.
    pub fn param(&self, name: &str) -> Option<String> {
        form_urlencoded::parse(self.query.as_bytes())
            .find(|(k, _)| k == name)
            .map(|(_, v)| v.into_owned())
    }

    pub fn is_watch(&self) -> bool {
        matches!(self.param("watch").as_deref(), Some("true" | "1"))
    }
}

/// What a fault does to a matching request.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum FaultAction {
    /// Answer with this HTTP status and a matching `Status` body; `retry_after` sets
    /// `Retry-After` and `details.retryAfterSeconds`.
    Respond { code: u16, retry_after: Option<u32> },
    /// Drop the connection without answering.
    CloseConnection,
}

/// Makes the next `times` requests matching a method and path prefix fail.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Fault {
    pub method: Option<String>,
    pub path_prefix: String,
    pub times: usize,
    pub action: FaultAction,
}

impl Fault {
    /// A fault on every method for paths starting with `path_prefix`, once, answering 500.
    pub fn on_path(path_prefix: impl Into<String>) -> Fault {
        Fault {
            method: None,
            path_prefix: path_prefix.into(),
            times: 1,
            action: FaultAction::Respond {
                code: 500,
                retry_after: None,
            },
        }
    }

    pub fn method(mut self, method: &str) -> Fault {
        self.method = Some(method.to_ascii_uppercase());
        self
    }

    pub fn times(mut self, n: usize) -> Fault {
        self.times = n;
        self
    }

    pub fn respond(mut self, code: u16) -> Fault {
        self.action = FaultAction::Respond {
            code,
            retry_after: None,
        };
        self
    }

    /// 429 Too Many Requests with `Retry-After`.
    pub fn too_many_requests(mut self, retry_after_seconds: u32) -> Fault {
        self.action = FaultAction::Respond {
            code: 429,
            retry_after: Some(retry_after_seconds),
        };
        self
    }

    pub fn close_connection(mut self) -> Fault {
        self.action = FaultAction::CloseConnection;
        self
    }

    fn matches(&self, method: &str, path: &str) -> bool {
        self.times > 0
            && self.method.as_deref().is_none_or(|m| m == method)
            && path.starts_with(&self.path_prefix)
    }
}

/// Commands to open watch streams.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
struct WatchControl {
    /// Bumped to end every open watch.
    close_generation: u64,
    /// While set, watches deliver nothing (events wait).
    paused: bool,
    /// Bumped to make every watch that asked for bookmarks send one now.
    bookmark_generation: u64,
}

struct Shared {
    cluster: Mutex<Cluster>,
    revision: watch::Sender<u64>,
    control: watch::Sender<WatchControl>,
    faults: Mutex<Vec<Fault>>,
    log: Mutex<Vec<RequestRecord>>,
    seq: AtomicU64,
    open_watches: AtomicUsize,
    config: ServerConfig,
}

fn lock<T>(m: &Mutex<T>) -> MutexGuard<'_, T> {
    // A panic while holding a lock leaves data that is still consistent for a test server.
    m.lock().unwrap_or_else(|e| e.into_inner())
}

impl Shared {
    fn with_cluster<R>(&self, f: impl FnOnce(&mut Cluster) -> R) -> R {
        let (out, rev) = {
            let mut c = lock(&self.cluster);
            let out = f(&mut c);
            (out, c.revision())
        };
        self.revision.send_if_modified(|r| {
            let changed = *r != rev;
            *r = rev;
            changed
        });
        out
    }
}

/// Constructor of test API servers.
pub struct TestApiServer;

impl TestApiServer {
    /// Starts a server with the default configuration on `addr` (port 0 picks a free port).
    pub async fn start(addr: SocketAddr) -> io::Result<ServerHandle> {
        Self::start_with(addr, ServerConfig::default()).await
    }

    /// Starts a server with the given configuration.
    pub async fn start_with(addr: SocketAddr, config: ServerConfig) -> io::Result<ServerHandle> {
        let listener = TcpListener::bind(addr).await?;
        let local = listener.local_addr()?;
        let mut cluster = Cluster::new(config.clone(), Timestamp::now());
        cluster.set_server_address(local.to_string());
        let rev = cluster.revision();
        let shared = Arc::new(Shared {
            cluster: Mutex::new(cluster),
            revision: watch::Sender::new(rev),
            control: watch::Sender::new(WatchControl::default()),
            faults: Mutex::new(Vec::new()),
            log: Mutex::new(Vec::new()),
            seq: AtomicU64::new(0),
            open_watches: AtomicUsize::new(0),
            config,
        });
        let (stop_tx, stop_rx) = watch::channel(false);
        let accept = tokio::spawn(accept_loop(listener, shared.clone(), stop_rx));
        Ok(ServerHandle {
            shared,
            addr: local,
            stop: stop_tx,
            accept: Arc::new(Mutex::new(Some(accept))),
        })
    }
}

async fn accept_loop(listener: TcpListener, shared: Arc<Shared>, mut stop: watch::Receiver<bool>) {
    let mut connections = JoinSet::new();
    loop {
        tokio::select! {
            accepted = listener.accept() => match accepted {
                Ok((stream, peer)) => {
                    let shared = shared.clone();
                    let _ = stream.set_nodelay(true);
                    connections.spawn(async move {
                        let service = hyper::service::service_fn(move |req| serve(shared.clone(), req));
                        if let Err(e) = hyper::server::conn::http1::Builder::new()
                            .keep_alive(true)
                            .serve_connection(TokioIo::new(stream), service)
                            .await
                        {
                            debug!(peer = %peer, error = %e, "connection ended");
                        }
                    });
                }
                Err(e) => warn!(error = %e, "accept failed"),
            },
            Some(_) = connections.join_next(), if !connections.is_empty() => {}
            _ = stop.changed() => break,
        }
    }
    connections.shutdown().await;
}

/// A running server. Clones share it; [`shutdown`](Self::shutdown) stops it.
#[derive(Clone)]
pub struct ServerHandle {
    shared: Arc<Shared>,
    addr: SocketAddr,
    stop: watch::Sender<bool>,
    accept: Arc<Mutex<Option<tokio::task::JoinHandle<()>>>>,
}

impl std::fmt::Debug for ServerHandle {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("ServerHandle")
            .field("addr", &self.addr)
            .finish()
    }
}

/// A kubeconfig for a plain-HTTP server URL.
pub fn kubeconfig_for(server_url: &str) -> String {
    format!(
        "apiVersion: v1\nkind: Config\nclusters:\n- name: ferrolb-test\n  cluster:\n    server: {server_url}\ncontexts:\n- name: ferrolb-test\n  context:\n    cluster: ferrolb-test\n    user: ferrolb-test\n    namespace: default\ncurrent-context: ferrolb-test\nusers:\n- name: ferrolb-test\n  user: {{}}\npreferences: {{}}\n"
    )
}

impl ServerHandle {
    pub fn addr(&self) -> SocketAddr {
        self.addr
    }

    /// `http://ADDR:PORT`.
    pub fn url(&self) -> String {
        format!("http://{}", self.addr)
    }

    /// A kubeconfig (one cluster, context and user, namespace `default`) pointing here.
    pub fn kubeconfig_yaml(&self) -> String {
        kubeconfig_for(&self.url())
    }

    /// Direct access to the objects, without HTTP.
    pub fn store(&self) -> StoreAccess {
        StoreAccess {
            shared: self.shared.clone(),
        }
    }

    /// Every request received so far, in order.
    pub fn requests(&self) -> Vec<RequestRecord> {
        lock(&self.shared.log).clone()
    }

    /// Only the writes (POST, PUT, PATCH, DELETE).
    pub fn writes(&self) -> Vec<RequestRecord> {
        self.requests()
            .into_iter()
            .filter(RequestRecord::is_write)
            .collect()
    }

    pub fn clear_requests(&self) {
        lock(&self.shared.log).clear();
    }

    /// Adds a fault; faults are consumed in the order they were added.
    pub fn inject_fault(&self, fault: Fault) {
        lock(&self.shared.faults).push(fault);
    }

    pub fn clear_faults(&self) {
        lock(&self.shared.faults).clear();
    }

    /// Ends every open watch stream (clients see the stream end and re-watch).
    pub fn close_watches(&self) {
        self.shared.control.send_modify(|c| c.close_generation += 1);
    }

    /// Holds back events on every watch until [`resume_watches`](Self::resume_watches).
    pub fn pause_watches(&self) {
        self.shared.control.send_modify(|c| c.paused = true);
    }

    pub fn resume_watches(&self) {
        self.shared.control.send_modify(|c| c.paused = false);
    }

    /// Makes every watch that asked for bookmarks send one now.
    pub fn send_bookmarks(&self) {
        self.shared
            .control
            .send_modify(|c| c.bookmark_generation += 1);
    }

    /// Number of watch streams currently open.
    pub fn open_watches(&self) -> usize {
        self.shared.open_watches.load(Ordering::SeqCst)
    }

    /// Drops the change history: watches and continue tokens from before now get 410 Expired.
    pub fn compact_history(&self) {
        self.shared.with_cluster(|c| c.compact_history());
    }

    /// Keeps only the last `limit` changes from now on.
    pub fn set_history_limit(&self, limit: usize) {
        self.shared.with_cluster(|c| c.set_history_limit(limit));
    }

    /// Moves the global resource version forward by `by` without changing any object.
    pub fn advance_resource_version(&self, by: u64) {
        self.shared.with_cluster(|c| c.advance_resource_version(by));
    }

    /// Serves one request in process, as if it came over HTTP (watches are not supported here).
    pub fn request(&self, req: &ApiRequest) -> ApiReply {
        self.shared
            .with_cluster(|c| c.handle(req, Timestamp::now()))
    }

    /// Stops accepting connections and closes the open ones.
    pub async fn shutdown(&self) {
        self.close_watches();
        let _ = self.stop.send(true);
        let task = lock(&self.accept).take();
        if let Some(task) = task {
            let _ = task.await;
        }
    }
}

/// In-process access to the store, for arranging fixtures and asserting state.
#[derive(Clone)]
pub struct StoreAccess {
    shared: Arc<Shared>,
}

impl StoreAccess {
    /// The current (global) resource version.
    pub fn resource_version(&self) -> u64 {
        lock(&self.shared.cluster).revision()
    }

    pub fn get(&self, api_version: &str, kind: &str, namespace: &str, name: &str) -> Option<Value> {
        let c = lock(&self.shared.cluster);
        let rt = c.find_type(api_version, kind)?;
        c.get_object(&rt, if rt.namespaced { namespace } else { "" }, name)
    }

    /// A typed get of a built-in kind.
    pub fn get_as<K: k8s_openapi::Resource + DeserializeOwned>(
        &self,
        namespace: &str,
        name: &str,
    ) -> Option<K> {
        self.get(K::API_VERSION, K::KIND, namespace, name)
            .and_then(|v| serde_json::from_value(v).ok())
    }

    /// Objects of a kind, in `namespace/name` order (`None`: all namespaces).
    pub fn list(&self, api_version: &str, kind: &str, namespace: Option<&str>) -> Vec<Value> {
        let c = lock(&self.shared.cluster);
        match c.find_type(api_version, kind) {
            Some(rt) => c.list_objects(&rt, namespace),
            None => Vec::new(),
        }
    }

    pub fn list_as<K: k8s_openapi::Resource + DeserializeOwned>(
        &self,
        namespace: Option<&str>,
    ) -> Vec<K> {
        self.list(K::API_VERSION, K::KIND, namespace)
            .into_iter()
            .filter_map(|v| serde_json::from_value(v).ok())
            .collect()
    }

    fn to_value(obj: impl Serialize) -> Result<Value, ApiError> {
        serde_json::to_value(obj).map_err(|e| ApiError::bad_request(e.to_string()))
    }

    /// Creates through the API's create path (defaults, allocation, validation), recorded as
    /// field manager `manager`. The object needs `apiVersion` and `kind`.
    pub fn create(&self, obj: impl Serialize, manager: &str) -> Result<Value, ApiError> {
        let v = Self::to_value(obj)?;
        self.shared
            .with_cluster(|c| c.create_object(v, manager, Timestamp::now()))
    }

    /// Stores an object as given (status included), bypassing defaults and validation; adds
    /// uid/creationTimestamp if missing and a new resourceVersion. Watchers see the change.
    pub fn upsert(&self, obj: impl Serialize) -> Result<Value, ApiError> {
        let v = Self::to_value(obj)?;
        self.shared
            .with_cluster(|c| c.upsert_object(v, Timestamp::now()))
    }

    /// Deletes as the API does (finalizers honoured); `Some` if the object now waits for
    /// finalizers.
    pub fn delete(
        &self,
        api_version: &str,
        kind: &str,
        namespace: &str,
        name: &str,
    ) -> Result<Option<Value>, ApiError> {
        self.shared.with_cluster(|c| {
            let rt = c
                .find_type(api_version, kind)
                .ok_or_else(|| ApiError::bad_request(format!("no kind {kind} in {api_version}")))?;
            let ns = if rt.namespaced { namespace } else { "" };
            c.delete_object(&rt, ns, name, Timestamp::now())
        })
    }

    /// Removes an object at once, ignoring finalizers; `false` if it did not exist.
    pub fn remove(&self, api_version: &str, kind: &str, namespace: &str, name: &str) -> bool {
        self.shared
            .with_cluster(|c| match c.find_type(api_version, kind) {
                Some(rt) => {
                    let ns = if rt.namespaced { namespace } else { "" };
                    c.remove_object(&rt, ns, name, Timestamp::now())
                }
                None => false,
            })
    }
}

fn full(code: u16, content_type: &str, body: impl Into<Bytes>) -> Response<Body> {
    let mut resp = Response::new(Full::new(body.into()).boxed());
    *resp.status_mut() = StatusCode::from_u16(code).unwrap_or(StatusCode::INTERNAL_SERVER_ERROR);
    if let Ok(v) = content_type.parse() {
        resp.headers_mut().insert(hyper::header::CONTENT_TYPE, v);
    }
    resp.headers_mut().insert(
        hyper::header::CACHE_CONTROL,
        hyper::header::HeaderValue::from_static("no-cache, private"),
    );
    resp
}

fn error_response(e: &ApiError) -> Response<Body> {
    let mut resp = full(
        e.code,
        "application/json",
        serde_json::to_vec(&e.to_status()).unwrap_or_default(),
    );
    if let Some(s) = e.retry_after_seconds
        && let Ok(v) = s.to_string().parse()
    {
        resp.headers_mut().insert(hyper::header::RETRY_AFTER, v);
    }
    resp
}

async fn serve(shared: Arc<Shared>, req: Request<Incoming>) -> Result<Response<Body>, io::Error> {
    let seq = shared.seq.fetch_add(1, Ordering::SeqCst) + 1;
    let (parts, body) = req.into_parts();
    let header = |name: hyper::header::HeaderName| {
        parts
            .headers
            .get(name)
            .and_then(|v| v.to_str().ok())
            .map(String::from)
    };
    let body = match body.collect().await {
        Ok(b) => b.to_bytes(),
        Err(e) => return Err(io::Error::other(e)),
    };
    let query = parts.uri.query().unwrap_or_default().to_string();
    let api_req = ApiRequest {
        method: parts.method.as_str().to_string(),
        path: parts.uri.path().to_string(),
        query: Vec::new(),
        content_type: header(hyper::header::CONTENT_TYPE),
        accept: header(hyper::header::ACCEPT),
        user_agent: header(hyper::header::USER_AGENT),
        body: body.to_vec(),
    }
    .with_query_string(&query);
    let record = RequestRecord {
        seq,
        method: api_req.method.clone(),
        path: api_req.path.clone(),
        query,
        content_type: api_req.content_type.clone(),
        field_manager: api_req.param("fieldManager").map(String::from),
        user_agent: api_req.user_agent.clone(),
        body: String::from_utf8_lossy(&body).into_owned(),
        status: 0,
    };
    let index = {
        let mut log = lock(&shared.log);
        log.push(record);
        log.len() - 1
    };
    let set_status = |code: u16| {
        let mut log = lock(&shared.log);
        if let Some(r) = log.get_mut(index).filter(|r| r.seq == seq) {
            r.status = code;
        }
    };
    let fault = {
        let mut faults = lock(&shared.faults);
        faults
            .iter_mut()
            .find(|f| f.matches(&api_req.method, &api_req.path))
            .map(|f| {
                f.times -= 1;
                f.action.clone()
            })
    };
    if let Some(action) = fault {
        lock(&shared.faults).retain(|f| f.times > 0);
        return match action {
            FaultAction::CloseConnection => Err(io::Error::new(
                io::ErrorKind::ConnectionAborted,
                "injected fault: connection closed",
            )),
            FaultAction::Respond { code, retry_after } => {
                set_status(code);
                let mut e = ApiError::with_code(code, format!("injected fault: {code}"));
                if let Some(s) = retry_after {
                    e = e.retry_after(s);
                }
                Ok(error_response(&e))
            }
        };
    }
    if body.len() > MAX_BODY {
        set_status(413);
        return Ok(error_response(&ApiError::with_code(
            413,
            "Request entity too large: limit is 3145728",
        )));
    }
    let reply = shared.with_cluster(|c| c.handle(&api_req, Timestamp::now()));
    set_status(reply.code());
    Ok(match reply {
        ApiReply::Json {
            code,
            body,
            content_type,
            warnings,
        } => {
            let mut resp = full(
                code,
                content_type,
                serde_json::to_vec(&body).unwrap_or_default(),
            );
            for w in warnings {
                let escaped = w.replace('\\', "\\\\").replace('"', "\\\"");
                if let Ok(v) = format!("299 - \"{escaped}\"").parse() {
                    resp.headers_mut().append(hyper::header::WARNING, v);
                }
            }
            resp
        }
        ApiReply::Text { code, body } => full(code, "text/plain; charset=utf-8", body),
        ApiReply::Error(e) => error_response(&e),
        ApiReply::Watch(plan) => watch_response(shared.clone(), *plan),
    })
}

fn watch_response(shared: Arc<Shared>, plan: WatchPlan) -> Response<Body> {
    let (tx, rx) = mpsc::channel::<Bytes>(256);
    tokio::spawn(run_watch(shared, plan, tx));
    let stream = futures_util::stream::unfold(rx, |mut rx| async move {
        rx.recv()
            .await
            .map(|b| (Ok::<_, Infallible>(Frame::data(b)), rx))
    });
    let mut resp = Response::new(StreamBody::new(stream).boxed());
    resp.headers_mut().insert(
        hyper::header::CONTENT_TYPE,
        hyper::header::HeaderValue::from_static("application/json"),
    );
    resp.headers_mut().insert(
        hyper::header::CACHE_CONTROL,
        hyper::header::HeaderValue::from_static("no-cache, private"),
    );
    resp
}

struct OpenWatch<'a>(&'a AtomicUsize);

impl Drop for OpenWatch<'_> {
    fn drop(&mut self) {
        self.0.fetch_sub(1, Ordering::SeqCst);
    }
}

/// Streams one watch until its timeout, a close, an expired cursor or the client leaving.
async fn run_watch(shared: Arc<Shared>, plan: WatchPlan, tx: mpsc::Sender<Bytes>) {
    shared.open_watches.fetch_add(1, Ordering::SeqCst);
    let _open = OpenWatch(&shared.open_watches);
    let send = |e: WireEvent| {
        let tx = tx.clone();
        async move { tx.send(Bytes::from(e.to_line())).await.is_ok() }
    };
    let filter = plan.filter;
    let mut revision_rx = shared.revision.subscribe();
    let mut control_rx = shared.control.subscribe();
    let start_control = *control_rx.borrow_and_update();
    let deadline = tokio::time::Instant::now() + plan.timeout;
    let interval = shared
        .config
        .bookmark_interval
        .max(std::time::Duration::from_millis(10));
    let mut bookmark_timer =
        tokio::time::interval_at(tokio::time::Instant::now() + interval, interval);
    let mut cursor = match plan.start {
        WatchStart::Fail(e) => {
            send(WireEvent::error(&e)).await;
            return;
        }
        WatchStart::After(rv) => rv,
        WatchStart::Initial {
            objects,
            revision,
            end_bookmark,
        } => {
            for o in &objects {
                if !send(filter.added(o)).await {
                    return;
                }
            }
            if end_bookmark && !send(filter.bookmark(revision, true)).await {
                return;
            }
            revision
        }
    };
    let mut paused = start_control.paused;
    let mut bookmark_generation = start_control.bookmark_generation;
    let mut bookmark_due = false;
    loop {
        if !paused {
            let (batch, revision) = {
                let c = lock(&shared.cluster);
                if !c.serves(&filter.rt) {
                    return;
                }
                (c.changes_since(cursor), c.revision())
            };
            match batch {
                Err(compacted) => {
                    let e = ApiError::expired(format!(
                        "too old resource version: {cursor} ({})",
                        compacted.oldest
                    ));
                    send(WireEvent::error(&e)).await;
                    return;
                }
                Ok(changes) => {
                    for ch in changes {
                        if let Some(ev) = filter.translate(&ch)
                            && !send(ev).await
                        {
                            return;
                        }
                        cursor = ch.rv;
                    }
                    // Every change up to `revision` has been seen: bookmarks may say so.
                    cursor = cursor.max(revision);
                }
            }
            // Bookmarks go out after pending changes, so they never claim an unsent change.
            if bookmark_due && plan.bookmarks {
                if !send(filter.bookmark(cursor, false)).await {
                    return;
                }
                bookmark_due = false;
            }
        }
        tokio::select! {
            r = revision_rx.changed() => if r.is_err() { return },
            r = control_rx.changed() => {
                if r.is_err() {
                    return;
                }
                let c = *control_rx.borrow_and_update();
                if c.close_generation != start_control.close_generation {
                    return;
                }
                paused = c.paused;
                if c.bookmark_generation != bookmark_generation {
                    bookmark_generation = c.bookmark_generation;
                    bookmark_due = true;
                }
            }
            _ = bookmark_timer.tick(), if plan.bookmarks && !paused => bookmark_due = true,
            _ = tokio::time::sleep_until(deadline) => return,
            _ = tx.closed() => return,
        }
    }
}
