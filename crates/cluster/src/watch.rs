//! The cluster watch: one kube-runtime reflector per watched kind, all feeding one change
//! signal, and a [`ClusterView`] that is only handed out once every reflector has completed its
//! initial list (before that, a missing object cannot be told from one not read yet, and the
//! controller would release addresses of Services it simply has not seen).
//!
//! Owns the watchers, their stores and their restarts (kube-runtime's default backoff; a `410
//! Expired` relists). Does not own what the objects mean: see `config` and the callers.
//!
//! The ferrolb.io kinds are watched as untyped objects and decoded later, one by one: a typed
//! watcher fails its whole list on one object that does not decode, while decoding each object
//! on its own reports that object with its field path and leaves the rest alone.

use std::collections::{BTreeMap, BTreeSet};
use std::fmt::Debug;
use std::hash::Hash;
use std::sync::Arc;
use std::sync::atomic::{AtomicUsize, Ordering};

use ferrolb_model::ResourceKind;
use ferrolb_model::crd::{
    BFDProfile, BGPAdvertisement, BGPPeer, Community, IPAddressPool, L2Advertisement,
};
use ferrolb_model::endpoints::serving_nodes;
use ferrolb_model::service::ServiceKey;
use futures_util::{Stream, StreamExt};
use k8s_openapi::api::core::v1::{Namespace, Node, Service};
use k8s_openapi::api::discovery::v1::EndpointSlice;
use kube::api::{Api, ApiResource, DynamicObject};
use kube::runtime::reflector::Store;
use kube::runtime::watcher;
use kube::runtime::{WatchStreamExt, reflector::store::Writer};
use kube::{Client, Resource};
use serde_json::Value;
use thiserror::Error;
use tokio::sync::watch as signal;
use tokio::task::JoinHandle;
use tracing::{debug, warn};

/// What to watch.
#[derive(Clone, Debug, Default)]
pub struct WatchOptions {
    /// Read ferrolb.io resources from this namespace only (the namespace ferrolb runs in, as
    /// MetalLB does); `None` reads every namespace.
    pub config_namespace: Option<String>,
    /// Also watch EndpointSlices and Nodes (the speaker needs them; the controller does not).
    pub endpoints_and_nodes: bool,
}

/// Why the watch could not start or stopped.
#[derive(Debug, Error)]
pub enum WatchError {
    /// A reflector task ended before its initial list completed (its runtime is shutting down).
    #[error("the {kind} watch stopped before its first list completed")]
    Stopped {
        /// The kind.
        kind: &'static str,
    },
}

/// The reflector stores of every watched kind, and the tasks feeding them.
pub struct ClusterWatch {
    services: Store<Service>,
    namespaces: Store<Namespace>,
    endpoint_slices: Option<Store<EndpointSlice>>,
    nodes: Option<Store<Node>>,
    config: Vec<(ResourceKind, Store<DynamicObject>)>,
    changes: signal::Receiver<u64>,
    /// How many reflectors have completed their first list.
    listed: Arc<AtomicUsize>,
    tasks: Vec<JoinHandle<()>>,
}

/// Everything the watch holds, read at one moment after every initial list.
#[derive(Clone, Debug, Default)]
pub struct ClusterView {
    /// Every Service.
    pub services: Vec<Arc<Service>>,
    /// Every Namespace (for pools' namespaceSelectors).
    pub namespaces: Vec<Arc<Namespace>>,
    /// Every EndpointSlice (empty unless `endpoints_and_nodes`).
    pub endpoint_slices: Vec<Arc<EndpointSlice>>,
    /// Every Node (empty unless `endpoints_and_nodes`).
    pub nodes: Vec<Arc<Node>>,
    /// The ferrolb.io objects, undecoded, with their kind.
    pub config_objects: Vec<(ResourceKind, Arc<DynamicObject>)>,
}

/// The API resource (group, version, plural) of a ferrolb.io kind.
pub fn api_resource(kind: ResourceKind) -> ApiResource {
    match kind {
        ResourceKind::IPAddressPool => ApiResource::erase::<IPAddressPool>(&()),
        ResourceKind::BGPPeer => ApiResource::erase::<BGPPeer>(&()),
        ResourceKind::BGPAdvertisement => ApiResource::erase::<BGPAdvertisement>(&()),
        ResourceKind::L2Advertisement => ApiResource::erase::<L2Advertisement>(&()),
        ResourceKind::Community => ApiResource::erase::<Community>(&()),
        ResourceKind::BFDProfile => ApiResource::erase::<BFDProfile>(&()),
    }
}

impl ClusterWatch {
    /// Starts one reflector per watched kind on the current tokio runtime. Returns at once;
    /// [`ClusterWatch::ready`] waits for the initial lists.
    pub fn start(client: &Client, options: &WatchOptions) -> ClusterWatch {
        let (changes_tx, changes) = signal::channel(0u64);
        let listed = Arc::new(AtomicUsize::new(0));
        let notify = Notify {
            changes: changes_tx,
            listed: listed.clone(),
        };
        let mut tasks = Vec::new();
        let services = reflect(
            Api::<Service>::all(client.clone()),
            Writer::default(),
            "Service",
            &notify,
            &mut tasks,
        );
        let namespaces = reflect(
            Api::<Namespace>::all(client.clone()),
            Writer::default(),
            "Namespace",
            &notify,
            &mut tasks,
        );
        let (endpoint_slices, nodes) = if options.endpoints_and_nodes {
            (
                Some(reflect(
                    Api::<EndpointSlice>::all(client.clone()),
                    Writer::default(),
                    "EndpointSlice",
                    &notify,
                    &mut tasks,
                )),
                Some(reflect(
                    Api::<Node>::all(client.clone()),
                    Writer::default(),
                    "Node",
                    &notify,
                    &mut tasks,
                )),
            )
        } else {
            (None, None)
        };
        let config = ResourceKind::ALL
            .into_iter()
            .map(|kind| {
                let resource = api_resource(kind);
                let api = match &options.config_namespace {
                    Some(ns) => {
                        Api::<DynamicObject>::namespaced_with(client.clone(), ns, &resource)
                    }
                    None => Api::<DynamicObject>::all_with(client.clone(), &resource),
                };
                let store = reflect(
                    api,
                    Writer::new(resource),
                    kind.as_str(),
                    &notify,
                    &mut tasks,
                );
                (kind, store)
            })
            .collect();
        ClusterWatch {
            services,
            namespaces,
            endpoint_slices,
            nodes,
            config,
            changes,
            listed,
            tasks,
        }
    }

    /// Waits until every reflector has completed its initial list.
    pub async fn ready(&self) -> Result<(), WatchError> {
        ready(&self.services, "Service").await?;
        ready(&self.namespaces, "Namespace").await?;
        if let Some(store) = &self.endpoint_slices {
            ready(store, "EndpointSlice").await?;
        }
        if let Some(store) = &self.nodes {
            ready(store, "Node").await?;
        }
        for (kind, store) in &self.config {
            ready(store, kind.as_str()).await?;
        }
        Ok(())
    }

    /// Whether every initial list has completed.
    pub fn is_ready(&self) -> bool {
        self.listed.load(Ordering::Acquire) >= self.tasks.len()
    }

    /// A counter that moves on every event any reflector applied; `changed()` on it wakes the
    /// caller after a change.
    pub fn changes(&self) -> signal::Receiver<u64> {
        self.changes.clone()
    }

    /// The view, or `None` while an initial list is still running.
    pub fn view(&self) -> Option<ClusterView> {
        if !self.is_ready() {
            return None;
        }
        Some(ClusterView {
            services: self.services.state(),
            namespaces: self.namespaces.state(),
            endpoint_slices: self
                .endpoint_slices
                .as_ref()
                .map(Store::state)
                .unwrap_or_default(),
            nodes: self.nodes.as_ref().map(Store::state).unwrap_or_default(),
            config_objects: self
                .config
                .iter()
                .flat_map(|(kind, store)| store.state().into_iter().map(|o| (*kind, o)))
                .collect(),
        })
    }
}

impl Drop for ClusterWatch {
    fn drop(&mut self) {
        for task in &self.tasks {
            task.abort();
        }
    }
}

/// What a reflector task reports through.
#[derive(Clone)]
struct Notify {
    changes: signal::Sender<u64>,
    listed: Arc<AtomicUsize>,
}

async fn ready<K>(store: &Store<K>, kind: &'static str) -> Result<(), WatchError>
where
    K: Resource + Clone + 'static,
    K::DynamicType: Eq + Hash + Clone,
{
    store
        .wait_until_ready()
        .await
        .map_err(|_| WatchError::Stopped { kind })
}

fn reflect<K>(
    api: Api<K>,
    writer: Writer<K>,
    kind: &'static str,
    notify: &Notify,
    tasks: &mut Vec<JoinHandle<()>>,
) -> Store<K>
where
    K: Resource + Clone + Debug + Send + Sync + serde::de::DeserializeOwned + 'static,
    K::DynamicType: Eq + Hash + Clone + Send + Sync,
{
    let store = writer.as_reader();
    let stream = watcher(api, watcher::Config::default())
        .default_backoff()
        .reflect(writer);
    let notify = notify.clone();
    tasks.push(tokio::spawn(drive(stream, kind, notify)));
    store
}

async fn drive<K>(
    stream: impl Stream<Item = Result<watcher::Event<K>, watcher::Error>>,
    kind: &'static str,
    notify: Notify,
) {
    let mut stream = std::pin::pin!(stream);
    let mut listed = false;
    while let Some(event) = stream.next().await {
        match event {
            Ok(watcher::Event::Init | watcher::Event::InitApply(_)) => {}
            Ok(watcher::Event::InitDone) => {
                // The reflector applied the list before yielding this: the store is ready.
                if !listed {
                    listed = true;
                    notify.listed.fetch_add(1, Ordering::AcqRel);
                }
                debug!(kind, "listed");
                notify.changes.send_modify(|generation| *generation += 1);
            }
            Ok(_) => {
                debug!(kind, "watch event");
                notify.changes.send_modify(|generation| *generation += 1);
            }
            Err(error) => warn!(kind, error = %error, "watch failed; retrying"),
        }
    }
}

impl ClusterView {
    /// Nodes with a serving endpoint, per Service that has EndpointSlices. Slices without
    /// their Service label are skipped (they belong to no Service).
    pub fn serving_nodes(&self) -> BTreeMap<ServiceKey, BTreeSet<String>> {
        let mut endpoints: BTreeMap<ServiceKey, BTreeSet<String>> = BTreeMap::new();
        for slice in &self.endpoint_slices {
            if let Ok((key, nodes)) = serving_nodes(slice) {
                endpoints.entry(key).or_default().extend(nodes);
            }
        }
        endpoints
    }

    /// The Nodes as the model sees them, by name.
    pub fn model_nodes(&self) -> BTreeMap<String, ferrolb_model::Node> {
        self.nodes
            .iter()
            .filter_map(|node| {
                let name = node.metadata.name.clone()?;
                let labels = node.metadata.labels.clone().unwrap_or_default();
                Some((name.clone(), ferrolb_model::Node { name, labels }))
            })
            .collect()
    }

    /// Every Namespace's labels, by name.
    pub fn namespace_labels(&self) -> BTreeMap<String, BTreeMap<String, String>> {
        self.namespaces
            .iter()
            .filter_map(|ns| {
                Some((
                    ns.metadata.name.clone()?,
                    ns.metadata.labels.clone().unwrap_or_default(),
                ))
            })
            .collect()
    }

    /// The ferrolb.io objects of one kind, as JSON.
    pub fn config_json(&self, kind: ResourceKind) -> Vec<Value> {
        self.config_objects
            .iter()
            .filter(|(k, _)| *k == kind)
            .filter_map(|(_, o)| serde_json::to_value(o.as_ref()).ok())
            .collect()
    }
}
