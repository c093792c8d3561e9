//! Watch streams, decided purely: which events one watcher sees.
//!
//! Owns [`WatchPlan`] (what a `?watch=true` request asked for: resource, namespace, selectors,
//! where to start, bookmarks, timeout) and [`WatchFilter::translate`], which turns one stored
//! change into what this watcher receives, as kube-apiserver's watch cache does: an update that
//! makes an object start matching the selectors is `ADDED`, one that makes it stop matching is
//! `DELETED` (carrying the previous content at the new resource version), deletions of objects
//! the watcher never matched are not sent. Also the JSON of events, bookmarks and the
//! `initial-events-end` bookmark. The HTTP shell drives the timing.

use std::sync::Arc;
use std::time::Duration;

use serde_json::{Value, json};

use crate::catalog::ResourceType;
use crate::kinds;
use crate::selector::{FieldSelector, LabelSelector};
use crate::status::ApiError;
use crate::store::{Change, ChangeType};

/// Which objects a watcher (or list) sees.
#[derive(Clone, Debug)]
pub struct WatchFilter {
    pub rt: Arc<ResourceType>,
    pub namespace: Option<String>,
    pub labels: LabelSelector,
    pub fields: FieldSelector,
    /// Objects are sent as `PartialObjectMetadata`.
    pub metadata_only: bool,
}

/// Where a watch starts.
#[derive(Clone, Debug)]
pub enum WatchStart {
    /// Events after this revision.
    After(u64),
    /// Synthetic `ADDED` events for these objects (state at `revision`), then events after it;
    /// with `end_bookmark`, a `BOOKMARK` marking the end of the initial events.
    Initial {
        objects: Vec<Arc<Value>>,
        revision: u64,
        end_bookmark: bool,
    },
    /// The stream is one `ERROR` event (410 Expired for a too-old resource version).
    Fail(ApiError),
}

/// A watch request, ready to be streamed.
#[derive(Clone, Debug)]
pub struct WatchPlan {
    pub filter: WatchFilter,
    pub start: WatchStart,
    pub bookmarks: bool,
    pub timeout: Duration,
}

/// An event as sent on the wire.
#[derive(Clone, Debug, PartialEq)]
pub struct WireEvent {
    pub kind: &'static str,
    pub object: Value,
}

impl WireEvent {
    /// One newline-terminated JSON line.
    pub fn to_line(&self) -> Vec<u8> {
        let mut line = serde_json::to_vec(&json!({"type": self.kind, "object": self.object}))
            .unwrap_or_default();
        line.push(b'\n');
        line
    }

    pub fn error(e: &ApiError) -> WireEvent {
        WireEvent {
            kind: "ERROR",
            object: e.to_status(),
        }
    }
}

/// Shapes a stored object as the client asked for it (version, metadata-only, list item).
pub fn present(rt: &ResourceType, obj: &Value, metadata_only: bool, in_list: bool) -> Value {
    if metadata_only {
        return json!({
            "kind": "PartialObjectMetadata",
            "apiVersion": "meta.k8s.io/v1",
            "metadata": obj.get("metadata").cloned().unwrap_or_else(|| json!({})),
        });
    }
    let mut out = obj.clone();
    if let Some(o) = out.as_object_mut() {
        if in_list && rt.builtin.is_some() {
            // Typed lists carry kind/apiVersion on the list only.
            o.remove("apiVersion");
            o.remove("kind");
        } else {
            o.insert("apiVersion".into(), json!(rt.api_version()));
            o.insert("kind".into(), json!(rt.kind));
        }
    }
    out
}

impl WatchFilter {
    /// Whether the filter selects an object.
    pub fn matches(&self, obj: &Value) -> bool {
        if let Some(ns) = &self.namespace
            && obj
                .pointer("/metadata/namespace")
                .and_then(Value::as_str)
                .unwrap_or_default()
                != ns
        {
            return false;
        }
        if !self.labels.matches_object(obj) {
            return false;
        }
        self.fields.is_empty()
            || self
                .fields
                .matches(&|f| kinds::field_label(&self.rt, obj, f).unwrap_or_default())
    }

    fn event(&self, kind: &'static str, obj: &Value) -> WireEvent {
        WireEvent {
            kind,
            object: present(&self.rt, obj, self.metadata_only, false),
        }
    }

    pub fn added(&self, obj: &Value) -> WireEvent {
        self.event("ADDED", obj)
    }

    /// What this watcher sees of one change (nothing if it concerns another resource or does
    /// not match before or after).
    pub fn translate(&self, change: &Change) -> Option<WireEvent> {
        if change.key != self.rt.storage_key() {
            return None;
        }
        match change.kind {
            ChangeType::Added => self
                .matches(&change.object)
                .then(|| self.event("ADDED", &change.object)),
            ChangeType::Deleted => self
                .matches(&change.object)
                .then(|| self.event("DELETED", &change.object)),
            ChangeType::Modified => {
                let now = self.matches(&change.object);
                let before = change.previous.as_deref().is_some_and(|p| self.matches(p));
                match (before, now) {
                    (true, true) => Some(self.event("MODIFIED", &change.object)),
                    (false, true) => Some(self.event("ADDED", &change.object)),
                    (true, false) => {
                        let mut prev = change.previous.as_deref().cloned().unwrap_or(Value::Null);
                        if let Some(meta) = prev.get_mut("metadata").and_then(Value::as_object_mut)
                        {
                            meta.insert("resourceVersion".into(), json!(change.rv.to_string()));
                        }
                        Some(self.event("DELETED", &prev))
                    }
                    (false, false) => None,
                }
            }
        }
    }

    /// A `BOOKMARK` at `revision`: an empty object of the kind with only its resource version.
    pub fn bookmark(&self, revision: u64, initial_events_end: bool) -> WireEvent {
        let mut meta = json!({"resourceVersion": revision.to_string()});
        if initial_events_end && let Some(m) = meta.as_object_mut() {
            m.insert(
                "annotations".into(),
                json!({"k8s.io/initial-events-end": "true"}),
            );
        }
        let object = if self.metadata_only {
            json!({"kind": "PartialObjectMetadata", "apiVersion": "meta.k8s.io/v1", "metadata": meta})
        } else {
            json!({"kind": self.rt.kind, "apiVersion": self.rt.api_version(), "metadata": meta})
        };
        WireEvent {
            kind: "BOOKMARK",
            object,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::catalog::{Builtin, Catalog};

    fn filter(labels: &str) -> WatchFilter {
        WatchFilter {
            rt: Catalog::new().builtin(Builtin::Service),
            namespace: Some("default".into()),
            labels: LabelSelector::parse(labels).unwrap(),
            fields: FieldSelector::default(),
            metadata_only: false,
        }
    }

    fn svc(labels: Value, rv: u64) -> Arc<Value> {
        Arc::new(
            json!({"metadata": {"name": "web", "namespace": "default", "labels": labels, "resourceVersion": rv.to_string()}}),
        )
    }

    fn modified(prev: Arc<Value>, now: Arc<Value>, rv: u64) -> Change {
        Change {
            rv,
            key: Catalog::new().builtin(Builtin::Service).storage_key(),
            namespace: "default".into(),
            name: "web".into(),
            kind: ChangeType::Modified,
            object: now,
            previous: Some(prev),
        }
    }

    #[test]
    fn object_leaving_the_selector_is_deleted_for_the_watcher() {
        let f = filter("app=web");
        let e = f
            .translate(&modified(
                svc(json!({"app": "web"}), 5),
                svc(json!({"app": "db"}), 6),
                6,
            ))
            .unwrap();
        assert_eq!(e.kind, "DELETED");
        assert_eq!(
            e.object["metadata"]["labels"]["app"], "web",
            "previous content"
        );
        assert_eq!(
            e.object["metadata"]["resourceVersion"], "6",
            "at the new revision"
        );
        assert_eq!(e.object["kind"], "Service");
    }

    #[test]
    fn object_entering_the_selector_is_added_and_unrelated_changes_are_silent() {
        let f = filter("app=web");
        let e = f
            .translate(&modified(
                svc(json!({"app": "db"}), 5),
                svc(json!({"app": "web"}), 6),
                6,
            ))
            .unwrap();
        assert_eq!(e.kind, "ADDED");
        assert!(
            f.translate(&modified(
                svc(json!({"app": "db"}), 6),
                svc(json!({"app": "x"}), 7),
                7
            ))
            .is_none()
        );
    }

    #[test]
    fn bookmarks_carry_only_kind_api_version_and_resource_version() {
        let b = filter("").bookmark(42, true);
        assert_eq!(
            b.object,
            json!({"kind": "Service", "apiVersion": "v1", "metadata": {"resourceVersion": "42", "annotations": {"k8s.io/initial-events-end": "true"}}})
        );
        assert_eq!(b.to_line().last(), Some(&b'\n'));
    }
}
