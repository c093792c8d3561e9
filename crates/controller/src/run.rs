//! The controller's shell: reads the cluster through `ferrolb-cluster`, holds the leader Lease,
//! runs [`Reconciler`] passes while it leads and sends their writes.
//!
//! Owns: the Lease (a `coordination.k8s.io/v1` Lease through kube-lease-manager; a fresh
//! reconciler, which restores before it assigns, on every gain; no write once leadership is
//! lost: the flag is checked before every single write), the server version warning, the
//! writes themselves (server-side apply of status with field manager `ferrolb-controller`,
//! forced; Events through kube-runtime's recorder; pool finalizers as merge patches
//! conditional on the resource version), retries after failed writes, and the status channel
//! the subcommand reads for `/readyz`. Does not own any decision (see `reconcile`).

use std::collections::BTreeMap;
use std::future::Future;
use std::time::Duration;

use ferrolb_cluster::watch::api_resource;
use ferrolb_cluster::{ClusterView, ClusterWatch, ConfigKeeper, ConfigVerdict, WatchOptions};
use ferrolb_model::ResourceKind;
use k8s_openapi::api::core::v1::Service;
use kube::api::{Api, DynamicObject, Patch, PatchParams};
use kube::runtime::events::{Event, EventType, Recorder, Reporter};
use kube::{Client, Resource};
use kube_lease_manager::LeaseManagerBuilder;
use serde_json::{Value, json};
use thiserror::Error;
use tokio::sync::watch;
use tracing::{debug, error, info, warn};

use crate::metrics::ControllerMetrics;
use crate::reconcile::{Action, ClassFilter, PassInput, PoolObject, Reconciler};
use crate::version::version_warning;

/// The field manager of every write the controller makes.
pub const FIELD_MANAGER: &str = "ferrolb-controller";
/// The reporting controller of its Events.
pub const REPORTING_CONTROLLER: &str = "ferrolb.io/controller";

/// How the controller runs.
#[derive(Clone, Debug)]
pub struct ControllerOptions {
    /// Which Services are ours.
    pub filter: ClassFilter,
    /// Read ferrolb.io objects from this namespace only (`None`: every namespace).
    pub config_namespace: Option<String>,
    /// Namespace of the leader Lease.
    pub lease_namespace: String,
    /// Name of the leader Lease.
    pub lease_name: String,
    /// This instance's identity in the Lease and in its Events (the pod name).
    pub identity: String,
    /// How long a Lease lasts without renewal, in seconds.
    pub lease_duration_secs: u64,
    /// How long before expiry the holder renews, in seconds.
    pub lease_grace_secs: u64,
    /// A pass runs at least this often even without changes (a safety net for missed events).
    pub resync: Duration,
}

impl Default for ControllerOptions {
    fn default() -> ControllerOptions {
        ControllerOptions {
            filter: ClassFilter::default(),
            config_namespace: None,
            lease_namespace: "ferrolb-system".into(),
            lease_name: "ferrolb-controller".into(),
            identity: "ferrolb-controller".into(),
            lease_duration_secs: 15,
            lease_grace_secs: 5,
            resync: Duration::from_secs(300),
        }
    }
}

/// What the controller is doing, for `/readyz` and tests.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct ControllerStatus {
    /// Every initial list completed.
    pub synced: bool,
    /// This instance holds the Lease.
    pub leader: bool,
    /// Passes run since the start.
    pub passes: u64,
    /// Why the ferrolb.io objects are refused (empty when they are valid).
    pub config_problems: Vec<String>,
}

/// Why the controller stopped.
#[derive(Debug, Error)]
pub enum ControllerError {
    /// The leader election could not start or its task ended.
    #[error("leader election: {0}")]
    Lease(String),
    /// The cluster watch stopped.
    #[error("{0}")]
    Watch(#[from] ferrolb_cluster::WatchError),
}

/// The controller, ready to run.
pub struct Controller {
    client: Client,
    options: ControllerOptions,
    metrics: ControllerMetrics,
    status: watch::Sender<ControllerStatus>,
}

impl Controller {
    /// A controller using `client`.
    pub fn new(
        client: Client,
        options: ControllerOptions,
        metrics: ControllerMetrics,
    ) -> Controller {
        Controller {
            client,
            options,
            metrics,
            status: watch::channel(ControllerStatus::default()).0,
        }
    }

    /// Follows the controller's status.
    pub fn status(&self) -> watch::Receiver<ControllerStatus> {
        self.status.subscribe()
    }

    /// Runs until `shutdown` completes, then releases the Lease.
    pub async fn run(self, shutdown: impl Future<Output = ()>) -> Result<(), ControllerError> {
        let client = &self.client;
        match client.apiserver_version().await {
            Ok(info) => match version_warning(&info.major, &info.minor) {
                Some(warning) => warn!(version = %info.git_version, "{warning}"),
                None => info!(version = %info.git_version, "Kubernetes API server"),
            },
            Err(e) => warn!(error = %e, "cannot read the API server version"),
        }
        let watch = ClusterWatch::start(
            client,
            &WatchOptions {
                config_namespace: self.options.config_namespace.clone(),
                endpoints_and_nodes: false,
            },
        );
        let lease = LeaseManagerBuilder::new(client.clone(), &self.options.lease_name)
            .with_namespace(&self.options.lease_namespace)
            .with_identity(&self.options.identity)
            .with_duration(self.options.lease_duration_secs)
            .with_grace(self.options.lease_grace_secs)
            .build()
            .await
            .map_err(|e| ControllerError::Lease(e.to_string()))?;
        let (mut leading, lease_task) = lease.watch().await;
        let recorder = Recorder::new(
            client.clone(),
            Reporter {
                controller: REPORTING_CONTROLLER.into(),
                instance: Some(self.options.identity.clone()),
            },
        );
        let mut shutdown = std::pin::pin!(shutdown);
        let mut changes = watch.changes();
        let mut keeper = ConfigKeeper::new();
        let mut reconciler: Option<Reconciler> = None;
        let mut passes = 0u64;
        let mut result = Ok(());
        tokio::select! {
            ready = watch.ready() => ready?,
            () = &mut shutdown => {
                return finish(leading, lease_task).await;
            }
        }
        info!("initial lists complete");
        loop {
            let leader = *leading.borrow_and_update();
            self.metrics.leader.set(i64::from(leader));
            let mut wait = self.options.resync;
            if !leader {
                if reconciler.take().is_some() {
                    warn!(identity = %self.options.identity, "lost the Lease; no more writes");
                }
            } else {
                let reconciler = reconciler.get_or_insert_with(|| {
                    info!(identity = %self.options.identity, "leading: restoring addresses from Service status before assigning");
                    Reconciler::new(self.options.filter.clone())
                });
                if let Some(view) = watch.view() {
                    changes.borrow_and_update();
                    passes += 1;
                    let failed = self
                        .pass(reconciler, &mut keeper, &view, &recorder, &leading)
                        .await;
                    if failed {
                        wait = Duration::from_secs(1);
                    }
                }
            }
            self.status.send_replace(ControllerStatus {
                synced: true,
                leader,
                passes,
                config_problems: keeper.refused().iter().map(ToString::to_string).collect(),
            });
            tokio::select! {
                () = &mut shutdown => break,
                changed = leading.changed() => {
                    if changed.is_err() {
                        self.metrics.leader.set(0);
                        result = Err(ControllerError::Lease("the lease task stopped".into()));
                        break;
                    }
                }
                _ = changes.changed() => {
                    // Let a burst of events land before the pass.
                    tokio::time::sleep(Duration::from_millis(20)).await;
                }
                () = tokio::time::sleep(wait) => {}
            }
        }
        self.metrics.leader.set(0);
        self.status.send_modify(|s| s.leader = false);
        finish(leading, lease_task).await?;
        result
    }

    /// One pass and its writes; true when a write failed (the caller retries soon).
    async fn pass(
        &self,
        reconciler: &mut Reconciler,
        keeper: &mut ConfigKeeper,
        view: &ClusterView,
        recorder: &Recorder,
        leading: &watch::Receiver<bool>,
    ) -> bool {
        let before = keeper.refused().to_vec();
        match keeper.offer(&view.config_objects) {
            ConfigVerdict::Accepted { changed } => {
                self.metrics.config_valid.set(1);
                if changed {
                    info!("configuration accepted");
                }
            }
            ConfigVerdict::Refused {
                problems,
                keeping_last_good,
            } => {
                self.metrics.config_valid.set(0);
                if problems != before {
                    for problem in &problems {
                        error!(problem = %problem, keeping_last_good, "configuration refused");
                    }
                }
            }
        }
        let pools = pool_objects(view);
        let namespaces = view.namespace_labels();
        let input = PassInput {
            config: keeper.current(),
            services: &view.services,
            namespaces: &namespaces,
            pools: &pools,
            now: jiff::Timestamp::now(),
        };
        let actions = reconciler.pass(&input);
        self.metrics.observe(reconciler.allocator());
        let services: BTreeMap<(String, String), &Service> = view
            .services
            .iter()
            .map(|s| {
                (
                    (
                        s.metadata.namespace.clone().unwrap_or_default(),
                        s.metadata.name.clone().unwrap_or_default(),
                    ),
                    s.as_ref(),
                )
            })
            .collect();
        let mut failed = false;
        for action in actions {
            // Stop at once when the Lease is lost: another instance may be writing already.
            if !*leading.borrow() {
                warn!("lost the Lease during a pass; remaining writes dropped");
                return false;
            }
            let (kind, outcome) = self.send(&action, &services, recorder).await;
            match outcome {
                Ok(()) => self.metrics.writes.with_label_values(&[kind, "ok"]).inc(),
                Err(error) => {
                    self.metrics
                        .writes
                        .with_label_values(&[kind, "error"])
                        .inc();
                    warn!(kind, error = %error, action = ?action, "write failed; retrying soon");
                    reconciler.forget_write(&action);
                    failed = true;
                }
            }
        }
        failed
    }

    async fn send(
        &self,
        action: &Action,
        services: &BTreeMap<(String, String), &Service>,
        recorder: &Recorder,
    ) -> (&'static str, Result<(), kube::Error>) {
        let apply = PatchParams::apply(FIELD_MANAGER).force();
        match action {
            Action::ServiceStatus { service, status } => {
                let api = Api::<Service>::namespaced(self.client.clone(), &service.namespace);
                let body = json!({
                    "apiVersion": "v1", "kind": "Service",
                    "metadata": {"name": service.name, "namespace": service.namespace},
                    "status": status,
                });
                debug!(service = %service, status = %status, "applying status");
                let result = api
                    .patch_status(&service.name, &apply, &Patch::Apply(body))
                    .await
                    .map(drop);
                if result.is_ok() {
                    info!(service = %service, status = %status, "status written");
                }
                ("service_status", result)
            }
            Action::ServiceEvent { service, event } => {
                let Some(object) = services.get(&(service.namespace.clone(), service.name.clone()))
                else {
                    return ("event", Ok(()));
                };
                let event = Event {
                    type_: if event.warning {
                        EventType::Warning
                    } else {
                        EventType::Normal
                    },
                    reason: event.reason.into(),
                    note: Some(event.note.clone()),
                    action: event.action.into(),
                    secondary: None,
                };
                (
                    "event",
                    recorder.publish(&event, &object.object_ref(&())).await,
                )
            }
            Action::PoolFinalizers {
                namespace,
                name,
                resource_version,
                finalizers,
            } => {
                let api = Api::<DynamicObject>::namespaced_with(
                    self.client.clone(),
                    namespace,
                    &api_resource(ResourceKind::IPAddressPool),
                );
                // The resource version makes this a compare-and-swap: a list changed by
                // someone else meanwhile is a 409, and the next pass recomputes it.
                let body = json!({"metadata": {"resourceVersion": resource_version, "finalizers": finalizers}});
                let params = PatchParams {
                    field_manager: Some(FIELD_MANAGER.into()),
                    ..PatchParams::default()
                };
                info!(pool = %name, finalizers = ?finalizers, "updating pool finalizers");
                (
                    "pool_finalizers",
                    api.patch(name, &params, &Patch::Merge(body))
                        .await
                        .map(drop),
                )
            }
            Action::PoolStatus {
                namespace,
                name,
                status,
            } => {
                let api = Api::<DynamicObject>::namespaced_with(
                    self.client.clone(),
                    namespace,
                    &api_resource(ResourceKind::IPAddressPool),
                );
                let body = json!({
                    "apiVersion": ferrolb_model::crd::API_VERSION, "kind": "IPAddressPool",
                    "metadata": {"name": name, "namespace": namespace},
                    "status": status,
                });
                (
                    "pool_status",
                    api.patch_status(name, &apply, &Patch::Apply(body))
                        .await
                        .map(drop),
                )
            }
        }
    }
}

/// Releases the Lease (dropping the receiver makes kube-lease-manager release it) and waits
/// for that, bounded.
async fn finish(
    leading: watch::Receiver<bool>,
    lease_task: tokio::task::JoinHandle<
        kube_lease_manager::Result<kube_lease_manager::LeaseManager>,
    >,
) -> Result<(), ControllerError> {
    drop(leading);
    match tokio::time::timeout(Duration::from_secs(5), lease_task).await {
        Ok(Ok(Ok(_))) => {
            info!("Lease released");
            Ok(())
        }
        Ok(Ok(Err(e))) => Err(ControllerError::Lease(e.to_string())),
        Ok(Err(e)) => Err(ControllerError::Lease(e.to_string())),
        Err(_) => {
            warn!("the Lease was not released in time; it expires on its own");
            Ok(())
        }
    }
}

/// The pools as the reconciler needs them.
fn pool_objects(view: &ClusterView) -> Vec<PoolObject> {
    view.config_objects
        .iter()
        .filter(|(kind, _)| *kind == ResourceKind::IPAddressPool)
        .map(|(_, object)| PoolObject {
            namespace: object.metadata.namespace.clone().unwrap_or_default(),
            name: object.metadata.name.clone().unwrap_or_default(),
            resource_version: object.metadata.resource_version.clone(),
            finalizers: object.metadata.finalizers.clone().unwrap_or_default(),
            terminating: object.metadata.deletion_timestamp.is_some(),
            status: object.data.get("status").cloned().unwrap_or(Value::Null),
        })
        .collect()
}
