//! The configuration folder as a source: every YAML file in it, read as one snapshot.
//!
//! A folder holds ferrolb.io resources, `v1` Services and (optionally) `discovery.k8s.io/v1`
//! EndpointSlices, in any mix of files and multi-document files. A snapshot is all or nothing:
//! one bad document and the whole read fails with every problem found, each with its file,
//! document and field, so the agent keeps running on the last good snapshot. Other kinds of
//! objects are ignored (and named in [`Snapshot::ignored`]); MetalLB resources are refused with
//! a pointer to `ferrolb migrate`.
//!
//! [`watch`] turns changes below the folder into a debounced stream of "read again" signals;
//! [`FolderSource`] puts the two together into the agent's stream of snapshots.

use std::collections::{BTreeMap, BTreeSet};
use std::path::{Path, PathBuf};
use std::time::{Duration, Instant};

use ferrolb_model::endpoints::serving_nodes;
use ferrolb_model::files::read_paths;
use ferrolb_model::load::{decode_object, split_documents, type_meta};
use ferrolb_model::service::{ServiceKey, ServiceView};
use ferrolb_model::{Config, Resources};
use k8s_openapi::api::core::v1::Service;
use k8s_openapi::api::discovery::v1::EndpointSlice;
use tokio::sync::mpsc;
use tokio_stream::wrappers::ReceiverStream;
use tracing::debug;

use super::{Snapshot, SourceProblem, SourceUpdate};

/// A configuration folder, watched.
pub struct FolderSource {
    dir: PathBuf,
    debounce: Duration,
}

impl FolderSource {
    /// The folder `dir`; after a change, it is read again once quiet for `debounce`.
    pub fn new(dir: impl Into<PathBuf>, debounce: Duration) -> FolderSource {
        FolderSource {
            dir: dir.into(),
            debounce,
        }
    }

    /// Starts watching: the stream yields one read at once, then one per change. It ends if
    /// the watch stops; the returned [`FolderWatch`] must be kept alive as long as the stream.
    pub fn updates(&self) -> Result<(FolderWatch, ReceiverStream<SourceUpdate>), notify::Error> {
        let (folder_watch, mut changes) = watch(&self.dir, self.debounce)?;
        let (tx, rx) = mpsc::channel(1);
        let dir = self.dir.clone();
        tokio::spawn(async move {
            loop {
                let started = Instant::now();
                let result = read_config_dir(&dir);
                debug!(dir = %dir.display(), ok = result.is_ok(), "configuration folder read");
                if tx.send(SourceUpdate { started, result }).await.is_err() {
                    return;
                }
                if changes.recv().await.is_none() {
                    return;
                }
            }
        });
        Ok((folder_watch, ReceiverStream::new(rx)))
    }
}

/// Reads the folder into a snapshot, or returns every problem.
pub fn read_config_dir(dir: &Path) -> Result<Snapshot, Vec<SourceProblem>> {
    if !dir.is_dir() {
        return Err(vec![SourceProblem {
            location: dir.display().to_string(),
            message: "not a directory".into(),
        }]);
    }
    let (files, read_errors) = read_paths(&[dir.to_path_buf()]);
    let mut problems: Vec<SourceProblem> = read_errors
        .into_iter()
        .map(|e| SourceProblem {
            location: e.path,
            message: e.message,
        })
        .collect();
    let mut resources = Resources::default();
    let mut services = Vec::new();
    let mut endpoints: BTreeMap<ServiceKey, BTreeSet<String>> = BTreeMap::new();
    let mut ignored = Vec::new();

    for file in &files {
        for doc in split_documents(&file.text) {
            let location = format!("{} (document {})", file.name, doc.index);
            let problem = |message: String| SourceProblem {
                location: location.clone(),
                message,
            };
            let value = match doc.parse() {
                Ok(v) => v,
                Err(e) => {
                    problems.push(problem(e.to_string()));
                    continue;
                }
            };
            let (api_version, kind) = match type_meta(&value) {
                Ok(meta) => meta,
                Err(e) => {
                    problems.push(problem(e.to_string()));
                    continue;
                }
            };
            match (api_version, kind) {
                (v, _) if v.starts_with("ferrolb.io/") => match decode_object(&value) {
                    Ok(object) => resources.add(object),
                    Err(errors) => {
                        problems.extend(errors.into_iter().map(|e| problem(e.to_string())))
                    }
                },
                (v, _) if v.starts_with("metallb.io/") => problems.push(problem(format!(
                    "{v} {kind} is a MetalLB resource: convert it with `ferrolb migrate {}`",
                    file.name
                ))),
                ("v1", "Service") => match serde_json::from_value::<Service>(value) {
                    Ok(service) => match ServiceView::from_service(&service) {
                        Ok(view) => services.push(view),
                        Err(errors) => {
                            problems.extend(errors.into_iter().map(|e| problem(e.to_string())))
                        }
                    },
                    Err(e) => problems.push(problem(format!("Service: {e}"))),
                },
                ("discovery.k8s.io/v1", "EndpointSlice") => {
                    match serde_json::from_value::<EndpointSlice>(value) {
                        Ok(slice) => match serving_nodes(&slice) {
                            Ok((key, nodes)) => endpoints.entry(key).or_default().extend(nodes),
                            Err(e) => problems.push(problem(e.to_string())),
                        },
                        Err(e) => problems.push(problem(format!("EndpointSlice: {e}"))),
                    }
                }
                _ => ignored.push(format!("{location}: {api_version}/{kind}")),
            }
        }
    }

    let config = Config::build(&resources);
    match config {
        Ok(config) if problems.is_empty() => Ok(Snapshot {
            config,
            services,
            endpoints,
            ignored,
            ..Snapshot::default()
        }),
        Ok(_) => Err(problems),
        Err(errors) => {
            problems.extend(errors.into_iter().map(|e| SourceProblem {
                location: e.object.to_string(),
                message: format!("{}: {}", e.field, e.message),
            }));
            Err(problems)
        }
    }
}

/// A running folder watch; dropping it stops the watch.
pub struct FolderWatch {
    _watcher: notify::RecommendedWatcher,
}

/// Watches `dir` recursively. After a change, waits until the folder has been quiet for
/// `debounce` (editors and `kubectl cp` write in several steps) and sends one signal.
pub fn watch(
    dir: &Path,
    debounce: Duration,
) -> Result<(FolderWatch, mpsc::Receiver<()>), notify::Error> {
    use notify::Watcher;
    let (raw_tx, mut raw_rx) = mpsc::unbounded_channel::<()>();
    let mut watcher = notify::recommended_watcher(move |event: notify::Result<notify::Event>| {
        if let Ok(event) = event
            && !matches!(event.kind, notify::EventKind::Access(_))
        {
            let _ = raw_tx.send(());
        }
    })?;
    watcher.watch(dir, notify::RecursiveMode::Recursive)?;
    let (tx, rx) = mpsc::channel(1);
    tokio::spawn(async move {
        while raw_rx.recv().await.is_some() {
            // Quiet period: every new event restarts it.
            loop {
                match tokio::time::timeout(debounce, raw_rx.recv()).await {
                    Ok(Some(())) => continue,
                    Ok(None) => return,
                    Err(_) => break,
                }
            }
            // A full channel already holds a pending signal: that read will see this change.
            let _ = tx.try_send(());
        }
    });
    Ok((FolderWatch { _watcher: watcher }, rx))
}

#[cfg(test)]
mod tests {
    use super::*;

    /// A fresh folder under the system temp dir, removed when dropped.
    struct Folder(std::path::PathBuf);

    impl Folder {
        fn new(name: &str) -> Folder {
            let dir =
                std::env::temp_dir().join(format!("ferrolb-source-{}-{name}", std::process::id()));
            let _ = std::fs::remove_dir_all(&dir);
            std::fs::create_dir_all(&dir).unwrap();
            Folder(dir)
        }

        fn write(&self, file: &str, text: &str) -> &Folder {
            std::fs::write(self.0.join(file), text).unwrap();
            self
        }
    }

    impl Drop for Folder {
        fn drop(&mut self) {
            let _ = std::fs::remove_dir_all(&self.0);
        }
    }

    const POOL: &str = "apiVersion: ferrolb.io/v1beta1\nkind: IPAddressPool\nmetadata: {name: lab, namespace: ferrolb}\nspec: {addresses: [203.0.113.10-203.0.113.20]}\n";
    const SERVICE: &str = "apiVersion: v1\nkind: Service\nmetadata: {name: web, namespace: demo}\nspec: {type: LoadBalancer, ports: [{port: 80}]}\n";

    #[test]
    fn folder_with_resources_and_services_reads_into_one_snapshot() {
        let f = Folder::new("good");
        f.write("a.yaml", POOL)
            .write("b.yml", SERVICE)
            .write("notes.txt", "not yaml at all: [");
        let snap = read_config_dir(&f.0).unwrap();
        assert_eq!(snap.config.pools.len(), 1);
        assert_eq!(snap.services.len(), 1);
        assert_eq!(snap.services[0].name, "web");
        assert!(snap.endpoints.is_empty());
    }

    #[test]
    fn bad_yaml_is_reported_with_file_and_document() {
        let f = Folder::new("badyaml");
        f.write("a.yaml", &format!("{POOL}---\nkind: [unclosed\n"));
        let problems = read_config_dir(&f.0).unwrap_err();
        assert_eq!(problems.len(), 1);
        assert!(
            problems[0].location.ends_with("a.yaml (document 2)"),
            "{}",
            problems[0]
        );
    }

    #[test]
    fn invalid_resource_is_reported_with_object_and_field() {
        let f = Folder::new("badpool");
        f.write(
            "a.yaml",
            "apiVersion: ferrolb.io/v1beta1\nkind: IPAddressPool\nmetadata: {name: prod, namespace: ferrolb}\nspec: {addresses: [203.0.113.150-203.0.113.20]}\n",
        );
        let problems = read_config_dir(&f.0).unwrap_err();
        assert_eq!(
            problems.iter().map(ToString::to_string).collect::<Vec<_>>(),
            vec![
                "IPAddressPool/prod: spec.addresses[0]: range start 203.0.113.150 is after end 203.0.113.20"
                    .to_string()
            ]
        );
    }

    #[test]
    fn metallb_resources_are_refused_with_a_pointer_to_migrate() {
        let f = Folder::new("metallb");
        f.write(
            "old.yaml",
            "apiVersion: metallb.io/v1beta1\nkind: IPAddressPool\nmetadata: {name: p, namespace: metallb-system}\nspec: {addresses: [192.0.2.0/28]}\n",
        );
        let problems = read_config_dir(&f.0).unwrap_err();
        assert!(
            problems[0]
                .message
                .contains("is a MetalLB resource: convert it with `ferrolb migrate"),
            "{}",
            problems[0]
        );
    }

    #[test]
    fn other_kinds_are_ignored_and_named() {
        let f = Folder::new("other");
        f.write("a.yaml", POOL).write(
            "cm.yaml",
            "apiVersion: v1\nkind: ConfigMap\nmetadata: {name: x}\ndata: {}\n",
        );
        let snap = read_config_dir(&f.0).unwrap();
        assert_eq!(snap.ignored.len(), 1);
        assert!(
            snap.ignored[0].ends_with("cm.yaml (document 1): v1/ConfigMap"),
            "{:?}",
            snap.ignored
        );
    }

    #[test]
    fn endpoint_slices_give_the_nodes_with_serving_endpoints() {
        let f = Folder::new("eps");
        f.write("a.yaml", POOL).write(
            "eps.yaml",
            "apiVersion: discovery.k8s.io/v1\nkind: EndpointSlice\nmetadata: {name: web-1, namespace: demo, labels: {kubernetes.io/service-name: web}}\naddressType: IPv4\nendpoints:\n- {addresses: [10.0.0.1], nodeName: n1}\n- {addresses: [10.0.0.2], nodeName: n2, conditions: {ready: false, serving: false}}\n- {addresses: [10.0.0.3], nodeName: n3, conditions: {ready: false, serving: true}}\n",
        );
        let snap = read_config_dir(&f.0).unwrap();
        let nodes = &snap.endpoints[&ServiceKey::new("demo", "web")];
        assert_eq!(
            nodes.iter().map(String::as_str).collect::<Vec<_>>(),
            vec!["n1", "n3"]
        );
    }

    #[test]
    fn endpoint_slice_without_its_service_label_is_an_error() {
        let f = Folder::new("epsbad");
        f.write(
            "eps.yaml",
            "apiVersion: discovery.k8s.io/v1\nkind: EndpointSlice\nmetadata: {name: web-1, namespace: demo}\naddressType: IPv4\nendpoints: []\n",
        );
        let problems = read_config_dir(&f.0).unwrap_err();
        assert!(
            problems[0].message.contains("kubernetes.io/service-name"),
            "{}",
            problems[0]
        );
    }

    #[test]
    fn a_missing_folder_is_an_error() {
        let problems = read_config_dir(Path::new("/nonexistent/ferrolb")).unwrap_err();
        assert_eq!(problems[0].message, "not a directory");
    }
}
