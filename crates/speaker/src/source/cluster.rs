//! The cluster as a source: the same [`Snapshot`] the folder source produces, built from the
//! objects a `ferrolb-cluster` watch holds (ferrolb.io resources, Services, EndpointSlices and
//! Nodes), once every initial list has completed and again after every change.
//!
//! The ferrolb.io objects are all or nothing, as in a folder: one refused object and the update
//! is refused with every problem (object and field), so the agent keeps the last good
//! configuration. A Service whose annotations cannot be read is different: Services belong to
//! many teams, so it is left out and named in [`Snapshot::ignored`] (the controller reports it
//! on the Service itself), and the others are announced. Services are sorted by key; their
//! addresses come from `status.loadBalancer.ingress`, written by the controller.
//!
//! Owns the view-to-snapshot step ([`snapshot_from_view`]) and the update stream. Does not own
//! the watch (`ferrolb-cluster`).

use std::time::{Duration, Instant};

use ferrolb_cluster::{ClusterView, ClusterWatch, WatchOptions, decode_config_objects};
use ferrolb_model::Config;
use ferrolb_model::service::ServiceView;
use tokio::sync::mpsc;
use tokio_stream::wrappers::ReceiverStream;
use tracing::{debug, warn};

use super::{Snapshot, SourceProblem, SourceUpdate};

/// Builds a snapshot from a cluster view, or returns every problem with the ferrolb.io objects.
pub fn snapshot_from_view(view: &ClusterView) -> Result<Snapshot, Vec<SourceProblem>> {
    let (resources, problems) = decode_config_objects(&view.config_objects);
    let mut problems: Vec<SourceProblem> = problems
        .into_iter()
        .map(|p| SourceProblem {
            location: p.object.clone(),
            message: if p.field.is_empty() {
                p.message
            } else {
                format!("{}: {}", p.field, p.message)
            },
        })
        .collect();
    let config = match Config::build(&resources) {
        Ok(config) => Some(config),
        Err(errors) => {
            problems.extend(errors.into_iter().map(|e| SourceProblem {
                location: e.object.to_string(),
                message: format!("{}: {}", e.field, e.message),
            }));
            None
        }
    };
    let Some(config) = config.filter(|_| problems.is_empty()) else {
        return Err(problems);
    };
    let mut services = Vec::new();
    let mut ignored = Vec::new();
    for service in &view.services {
        match ServiceView::from_service(service) {
            Ok(view) => services.push(view),
            Err(errors) => ignored.extend(errors.into_iter().map(|e| format!("{e} (v1/Service)"))),
        }
    }
    services.sort_by_key(ServiceView::key);
    Ok(Snapshot {
        config,
        services,
        endpoints: view.serving_nodes(),
        nodes: view.model_nodes(),
        ignored,
    })
}

/// The cluster, watched.
pub struct ClusterSource {
    client: kube::Client,
    options: WatchOptions,
    debounce: Duration,
}

impl ClusterSource {
    /// A source reading ferrolb.io objects from `config_namespace` (every namespace when
    /// `None`); after a change it reads again once quiet for `debounce`.
    pub fn new(
        client: kube::Client,
        config_namespace: Option<String>,
        debounce: Duration,
    ) -> ClusterSource {
        ClusterSource {
            client,
            options: WatchOptions {
                config_namespace,
                endpoints_and_nodes: true,
            },
            debounce,
        }
    }

    /// Starts the watch: the stream yields a first snapshot once every initial list has
    /// completed, then one per burst of changes. It ends if the watch stops.
    pub fn updates(&self) -> ReceiverStream<SourceUpdate> {
        let watch = ClusterWatch::start(&self.client, &self.options);
        let (tx, rx) = mpsc::channel(1);
        let debounce = self.debounce;
        tokio::spawn(async move {
            if let Err(e) = watch.ready().await {
                warn!(error = %e, "the cluster watch stopped");
                return;
            }
            let mut changes = watch.changes();
            loop {
                changes.borrow_and_update();
                let started = Instant::now();
                let Some(view) = watch.view() else {
                    return;
                };
                let result = snapshot_from_view(&view);
                debug!(ok = result.is_ok(), "cluster read");
                if tx.send(SourceUpdate { started, result }).await.is_err() {
                    return;
                }
                if changes.changed().await.is_err() {
                    return;
                }
                tokio::time::sleep(debounce).await;
            }
        });
        ReceiverStream::new(rx)
    }
}
