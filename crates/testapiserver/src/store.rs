//! The in-memory object store: objects, the global resource version, and the change history.
//!
//! Owns what etcd owns for kube-apiserver: every object keyed by resource and
//! `namespace/name` (listed in that order, as etcd lists keys), one increasing revision counter
//! shared by all resources (an object's `metadata.resourceVersion` is the revision of its last
//! write), and a bounded history of changes. The history serves watches that start from an
//! older resource version and lists at an older resource version (pagination tokens), by
//! rolling changes back; once a revision has been compacted away both answer 410 Expired, as
//! kube-apiserver does. It knows nothing about kinds, validation or HTTP.

use std::collections::{BTreeMap, VecDeque};
use std::sync::Arc;

use serde_json::{Value, json};

use crate::catalog::StorageKey;

/// What a change did to an object.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum ChangeType {
    Added,
    Modified,
    Deleted,
}

/// One committed write.
#[derive(Clone, Debug)]
pub struct Change {
    pub rv: u64,
    pub key: StorageKey,
    pub namespace: String,
    pub name: String,
    pub kind: ChangeType,
    /// The object after the change; for deletions, its last state stamped with the deletion
    /// revision (what kube-apiserver sends in `DELETED` events).
    pub object: Arc<Value>,
    /// The object before the change, if it existed.
    pub previous: Option<Arc<Value>>,
}

/// The requested revision is no longer in the history.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Compacted {
    /// The oldest revision that can still be served.
    pub oldest: u64,
}

type Objects = BTreeMap<(String, String), Arc<Value>>;

/// The store.
#[derive(Debug)]
pub struct Store {
    revision: u64,
    objects: BTreeMap<StorageKey, Objects>,
    history: VecDeque<Arc<Change>>,
    history_limit: usize,
    /// Every revision up to this one has been dropped from the history.
    compacted_through: u64,
}

fn set_resource_version(obj: &mut Value, rv: u64) {
    if let Some(meta) = obj.get_mut("metadata").and_then(Value::as_object_mut) {
        meta.insert("resourceVersion".into(), json!(rv.to_string()));
    }
}

impl Store {
    pub fn new(history_limit: usize) -> Self {
        Store {
            revision: 1,
            objects: BTreeMap::new(),
            history: VecDeque::new(),
            history_limit: history_limit.max(1),
            compacted_through: 1,
        }
    }

    /// The current revision (the `resourceVersion` of a list served now).
    pub fn revision(&self) -> u64 {
        self.revision
    }

    pub fn get(&self, key: &StorageKey, namespace: &str, name: &str) -> Option<Arc<Value>> {
        self.objects
            .get(key)?
            .get(&(namespace.to_string(), name.to_string()))
            .cloned()
    }

    /// All objects of a resource, in key order, optionally in one namespace.
    pub fn list(&self, key: &StorageKey, namespace: Option<&str>) -> Vec<Arc<Value>> {
        let Some(objs) = self.objects.get(key) else {
            return Vec::new();
        };
        objs.iter()
            .filter(|((ns, _), _)| namespace.is_none_or(|n| n == ns))
            .map(|(_, v)| v.clone())
            .collect()
    }

    /// The objects of a resource as they were at revision `rv`.
    pub fn list_at(&self, key: &StorageKey, rv: u64) -> Result<Objects, Compacted> {
        if rv < self.compacted_through {
            return Err(Compacted {
                oldest: self.compacted_through,
            });
        }
        let mut objs = self.objects.get(key).cloned().unwrap_or_default();
        for change in self.history.iter().rev() {
            if change.rv <= rv {
                break;
            }
            if change.key != *key {
                continue;
            }
            let k = (change.namespace.clone(), change.name.clone());
            match &change.previous {
                Some(prev) => {
                    objs.insert(k, prev.clone());
                }
                None => {
                    objs.remove(&k);
                }
            }
        }
        Ok(objs)
    }

    /// Changes after revision `rv`, or `Compacted` if some of them are gone.
    pub fn changes_since(&self, rv: u64) -> Result<Vec<Arc<Change>>, Compacted> {
        if rv < self.compacted_through {
            return Err(Compacted {
                oldest: self.compacted_through,
            });
        }
        let start = self.history.partition_point(|c| c.rv <= rv);
        Ok(self.history.iter().skip(start).cloned().collect())
    }

    fn record(&mut self, change: Change) -> Arc<Change> {
        let change = Arc::new(change);
        self.history.push_back(change.clone());
        while self.history.len() > self.history_limit {
            if let Some(dropped) = self.history.pop_front() {
                self.compacted_through = dropped.rv;
            }
        }
        change
    }

    /// Writes an object (create or update), stamping a new resource version.
    pub fn put(
        &mut self,
        key: &StorageKey,
        namespace: &str,
        name: &str,
        mut object: Value,
    ) -> Arc<Change> {
        self.revision += 1;
        let rv = self.revision;
        set_resource_version(&mut object, rv);
        let object = Arc::new(object);
        let objs = self.objects.entry(key.clone()).or_default();
        let previous = objs.insert((namespace.to_string(), name.to_string()), object.clone());
        self.record(Change {
            rv,
            key: key.clone(),
            namespace: namespace.to_string(),
            name: name.to_string(),
            kind: if previous.is_some() {
                ChangeType::Modified
            } else {
                ChangeType::Added
            },
            object,
            previous,
        })
    }

    /// Removes an object; `None` if it did not exist.
    pub fn remove(&mut self, key: &StorageKey, namespace: &str, name: &str) -> Option<Arc<Change>> {
        let previous = self
            .objects
            .get_mut(key)?
            .remove(&(namespace.to_string(), name.to_string()))?;
        self.revision += 1;
        let rv = self.revision;
        let mut last = (*previous).clone();
        set_resource_version(&mut last, rv);
        Some(self.record(Change {
            rv,
            key: key.clone(),
            namespace: namespace.to_string(),
            name: name.to_string(),
            kind: ChangeType::Deleted,
            object: Arc::new(last),
            previous: Some(previous),
        }))
    }

    /// Moves the revision forward without changing any object, as writes to resources nobody
    /// watches do on a real cluster.
    pub fn advance(&mut self, by: u64) {
        self.revision += by;
    }

    /// Drops the whole history: every older resource version becomes too old.
    pub fn compact(&mut self) {
        self.history.clear();
        self.compacted_through = self.revision;
    }

    pub fn set_history_limit(&mut self, limit: usize) {
        self.history_limit = limit.max(1);
        while self.history.len() > self.history_limit {
            if let Some(dropped) = self.history.pop_front() {
                self.compacted_through = dropped.rv;
            }
        }
    }

    /// The oldest revision a watch or list can start from.
    pub fn oldest_revision(&self) -> u64 {
        self.compacted_through
    }

    /// Every resource with at least one object.
    pub fn keys(&self) -> Vec<StorageKey> {
        self.objects
            .iter()
            .filter(|(_, o)| !o.is_empty())
            .map(|(k, _)| k.clone())
            .collect()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn key() -> StorageKey {
        StorageKey {
            group: String::new(),
            plural: "services".into(),
        }
    }

    fn obj(name: &str, v: u32) -> Value {
        json!({"metadata": {"name": name, "namespace": "default"}, "v": v})
    }

    #[test]
    fn revisions_are_global_and_increasing() {
        let mut s = Store::new(100);
        let a = s.put(&key(), "default", "a", obj("a", 1));
        let other = StorageKey {
            group: "coordination.k8s.io".into(),
            plural: "leases".into(),
        };
        let b = s.put(&other, "default", "l", obj("l", 1));
        assert!(b.rv > a.rv);
        assert_eq!(
            s.get(&key(), "default", "a").unwrap()["metadata"]["resourceVersion"],
            a.rv.to_string()
        );
    }

    #[test]
    fn list_at_an_older_revision_rolls_changes_back() {
        let mut s = Store::new(100);
        s.put(&key(), "default", "a", obj("a", 1));
        let at = s.revision();
        s.put(&key(), "default", "a", obj("a", 2));
        s.put(&key(), "default", "b", obj("b", 1));
        s.remove(&key(), "default", "a");
        let then = s.list_at(&key(), at).unwrap();
        assert_eq!(then.len(), 1);
        assert_eq!(then[&("default".to_string(), "a".to_string())]["v"], 1);
    }

    #[test]
    fn compaction_makes_older_revisions_expire() {
        let mut s = Store::new(2);
        let first = s.put(&key(), "default", "a", obj("a", 1)).rv;
        s.put(&key(), "default", "a", obj("a", 2));
        s.put(&key(), "default", "a", obj("a", 3));
        assert!(s.changes_since(first - 1).is_err());
        assert_eq!(s.changes_since(first).unwrap().len(), 2);
        s.compact();
        assert!(s.changes_since(first).is_err());
        assert!(s.changes_since(s.revision()).unwrap().is_empty());
    }

    #[test]
    fn deleted_object_carries_the_deletion_revision() {
        let mut s = Store::new(10);
        s.put(&key(), "default", "a", obj("a", 1));
        let del = s.remove(&key(), "default", "a").unwrap();
        assert_eq!(
            del.object["metadata"]["resourceVersion"],
            del.rv.to_string()
        );
        assert!(s.remove(&key(), "default", "a").is_none());
    }
}
