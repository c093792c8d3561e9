//! Field paths and field sets, the vocabulary of server-side apply.
//!
//! Owns [`PathElement`] (a struct field or map key, a list item identified by its key fields,
//! a set item identified by its value, or a list index), [`FieldSet`] (a trie of paths, the
//! shape of structured-merge-diff's `fieldpath.Set`), the `FieldsV1` JSON encoding stored in
//! `metadata.managedFields` (`f:name`, `k:{"port":80,"protocol":"TCP"}`, `v:"value"`, `i:0`,
//! `.`), and the `.spec.ports[port=80,protocol="TCP"]` rendering used in conflict messages.
//! It knows nothing about schemas or objects; `ssa` walks objects to build these sets.

use std::cmp::Ordering;
use std::collections::{BTreeMap, BTreeSet};
use std::fmt;

use serde_json::{Map, Value};

/// One step of a path into an object.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum PathElement {
    /// A struct field or a map key.
    Field(String),
    /// An item of an associative list, by its key fields (sorted by field name).
    Key(Vec<(String, Value)>),
    /// An item of a set (a list of scalars), by its value.
    Value(Value),
    /// An item of a list by position (lists without identity).
    Index(usize),
}

fn rank(pe: &PathElement) -> u8 {
    match pe {
        PathElement::Field(_) => 0,
        PathElement::Key(_) => 1,
        PathElement::Value(_) => 2,
        PathElement::Index(_) => 3,
    }
}

/// A total order on JSON values (type first, then value) so path elements can live in sorted
/// sets, as structured-merge-diff orders them.
pub fn compare_values(a: &Value, b: &Value) -> Ordering {
    fn type_rank(v: &Value) -> u8 {
        match v {
            Value::Null => 0,
            Value::Bool(_) => 1,
            Value::Number(_) => 2,
            Value::String(_) => 3,
            Value::Array(_) => 4,
            Value::Object(_) => 5,
        }
    }
    match (a, b) {
        (Value::Bool(x), Value::Bool(y)) => x.cmp(y),
        (Value::Number(x), Value::Number(y)) => {
            let fx = x.as_f64().unwrap_or(0.0);
            let fy = y.as_f64().unwrap_or(0.0);
            fx.partial_cmp(&fy).unwrap_or(Ordering::Equal)
        }
        (Value::String(x), Value::String(y)) => x.cmp(y),
        (Value::Array(x), Value::Array(y)) => {
            for (i, j) in x.iter().zip(y.iter()) {
                let o = compare_values(i, j);
                if o != Ordering::Equal {
                    return o;
                }
            }
            x.len().cmp(&y.len())
        }
        (Value::Object(x), Value::Object(y)) => {
            for ((ki, vi), (kj, vj)) in x.iter().zip(y.iter()) {
                let o = ki.cmp(kj).then_with(|| compare_values(vi, vj));
                if o != Ordering::Equal {
                    return o;
                }
            }
            x.len().cmp(&y.len())
        }
        _ => type_rank(a).cmp(&type_rank(b)),
    }
}

impl Ord for PathElement {
    fn cmp(&self, other: &Self) -> Ordering {
        match (self, other) {
            (PathElement::Field(a), PathElement::Field(b)) => a.cmp(b),
            (PathElement::Key(a), PathElement::Key(b)) => {
                for ((ka, va), (kb, vb)) in a.iter().zip(b.iter()) {
                    let o = ka.cmp(kb).then_with(|| compare_values(va, vb));
                    if o != Ordering::Equal {
                        return o;
                    }
                }
                a.len().cmp(&b.len())
            }
            (PathElement::Value(a), PathElement::Value(b)) => compare_values(a, b),
            (PathElement::Index(a), PathElement::Index(b)) => a.cmp(b),
            _ => rank(self).cmp(&rank(other)),
        }
    }
}

impl PartialOrd for PathElement {
    fn partial_cmp(&self, other: &Self) -> Option<Ordering> {
        Some(self.cmp(other))
    }
}

impl PathElement {
    /// The `FieldsV1` key for this element.
    pub fn to_fields_v1_key(&self) -> String {
        match self {
            PathElement::Field(name) => format!("f:{name}"),
            PathElement::Key(keys) => {
                let obj: Map<String, Value> = keys.iter().cloned().collect();
                format!("k:{}", Value::Object(obj))
            }
            PathElement::Value(v) => format!("v:{v}"),
            PathElement::Index(i) => format!("i:{i}"),
        }
    }

    /// Parses a `FieldsV1` key.
    pub fn from_fields_v1_key(key: &str) -> Result<Self, String> {
        let (prefix, rest) = key
            .split_once(':')
            .ok_or_else(|| format!("invalid FieldsV1 key {key:?}"))?;
        match prefix {
            "f" => Ok(PathElement::Field(rest.to_string())),
            "k" => {
                let obj: Map<String, Value> = serde_json::from_str(rest)
                    .map_err(|e| format!("invalid FieldsV1 key {key:?}: {e}"))?;
                let mut keys: Vec<(String, Value)> = obj.into_iter().collect();
                keys.sort_by(|a, b| a.0.cmp(&b.0));
                Ok(PathElement::Key(keys))
            }
            "v" => serde_json::from_str(rest)
                .map(PathElement::Value)
                .map_err(|e| format!("invalid FieldsV1 key {key:?}: {e}")),
            "i" => rest
                .parse::<usize>()
                .map(PathElement::Index)
                .map_err(|e| format!("invalid FieldsV1 key {key:?}: {e}")),
            _ => Err(format!("invalid FieldsV1 key {key:?}: unknown prefix")),
        }
    }
}

impl fmt::Display for PathElement {
    /// structured-merge-diff's `PathElement.String()`: `.name`, `[k=v,…]`, `[=v]`, `[i]`.
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            PathElement::Field(name) => write!(f, ".{name}"),
            PathElement::Key(keys) => {
                let parts: Vec<String> = keys.iter().map(|(k, v)| format!("{k}={v}")).collect();
                write!(f, "[{}]", parts.join(","))
            }
            PathElement::Value(v) => write!(f, "[={v}]"),
            PathElement::Index(i) => write!(f, "[{i}]"),
        }
    }
}

/// A path from the object root.
pub type Path = Vec<PathElement>;

/// Renders a path as conflict messages show it: `.spec.ports[port=80,protocol="TCP"].nodePort`.
pub fn path_to_string(path: &[PathElement]) -> String {
    path.iter().map(|pe| pe.to_string()).collect()
}

/// A set of paths stored as a trie: `members` are the paths that end at this level,
/// `children` the subtrees below each element. A path can be both a member and have children
/// (`.` in `FieldsV1`).
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct FieldSet {
    members: BTreeSet<PathElement>,
    children: BTreeMap<PathElement, FieldSet>,
}

impl FieldSet {
    pub fn new() -> Self {
        FieldSet::default()
    }

    pub fn is_empty(&self) -> bool {
        self.members.is_empty() && self.children.values().all(FieldSet::is_empty)
    }

    /// Adds a path; the empty path (the root) is never a member.
    pub fn insert(&mut self, path: &[PathElement]) {
        match path {
            [] => {}
            [last] => {
                self.members.insert(last.clone());
            }
            [first, rest @ ..] => self.children.entry(first.clone()).or_default().insert(rest),
        }
    }

    pub fn has(&self, path: &[PathElement]) -> bool {
        match path {
            [] => false,
            [last] => self.members.contains(last),
            [first, rest @ ..] => self.children.get(first).is_some_and(|c| c.has(rest)),
        }
    }

    /// The subtree of paths that start with `pe` (without the `pe` itself).
    pub fn with_prefix(&self, pe: &PathElement) -> Option<&FieldSet> {
        self.children.get(pe)
    }

    pub fn union(&self, other: &FieldSet) -> FieldSet {
        let mut out = self.clone();
        out.members.extend(other.members.iter().cloned());
        for (pe, child) in &other.children {
            let merged = match out.children.get(pe) {
                Some(existing) => existing.union(child),
                None => child.clone(),
            };
            out.children.insert(pe.clone(), merged);
        }
        out.prune_empty();
        out
    }

    pub fn intersection(&self, other: &FieldSet) -> FieldSet {
        let mut out = FieldSet::new();
        out.members = self.members.intersection(&other.members).cloned().collect();
        for (pe, child) in &self.children {
            if let Some(oc) = other.children.get(pe) {
                let i = child.intersection(oc);
                if !i.is_empty() {
                    out.children.insert(pe.clone(), i);
                }
            }
        }
        out
    }

    /// Paths in `self` that are not in `other` (children of a removed member stay).
    pub fn difference(&self, other: &FieldSet) -> FieldSet {
        let mut out = FieldSet::new();
        out.members = self.members.difference(&other.members).cloned().collect();
        for (pe, child) in &self.children {
            let d = match other.children.get(pe) {
                Some(oc) => child.difference(oc),
                None => child.clone(),
            };
            if !d.is_empty() {
                out.children.insert(pe.clone(), d);
            }
        }
        out
    }

    /// Like [`difference`](Self::difference), but a member of `other` also removes every path
    /// below it (structured-merge-diff's `RecursiveDifference`).
    pub fn recursive_difference(&self, other: &FieldSet) -> FieldSet {
        let mut out = FieldSet::new();
        out.members = self.members.difference(&other.members).cloned().collect();
        for (pe, child) in &self.children {
            if other.members.contains(pe) {
                continue;
            }
            let d = match other.children.get(pe) {
                Some(oc) => child.recursive_difference(oc),
                None => child.clone(),
            };
            if !d.is_empty() {
                out.children.insert(pe.clone(), d);
            }
        }
        out
    }

    fn prune_empty(&mut self) {
        self.children.retain(|_, c| !c.is_empty());
    }

    /// Every member path, depth first in sorted order.
    pub fn paths(&self) -> Vec<Path> {
        let mut out = Vec::new();
        self.collect_paths(&mut Vec::new(), &mut out);
        out
    }

    fn collect_paths(&self, prefix: &mut Path, out: &mut Vec<Path>) {
        let mut elements: BTreeSet<&PathElement> = self.members.iter().collect();
        elements.extend(self.children.keys());
        for pe in elements {
            prefix.push(pe.clone());
            if self.members.contains(pe) {
                out.push(prefix.clone());
            }
            if let Some(child) = self.children.get(pe) {
                child.collect_paths(prefix, out);
            }
            prefix.pop();
        }
    }

    /// Adds, for every path, each of its ancestors that is a named struct field, as
    /// structured-merge-diff's `EnsureNamedFieldsAreMembers` does before pruning. `is_struct_field`
    /// answers for a path whether its last element is a declared field of a struct.
    pub fn with_named_field_ancestors(
        &self,
        is_struct_field: &dyn Fn(&[PathElement]) -> bool,
    ) -> FieldSet {
        let mut out = self.clone();
        for path in self.paths() {
            for len in 1..path.len() {
                let ancestor = &path[..len];
                if matches!(ancestor[len - 1], PathElement::Field(_)) && is_struct_field(ancestor) {
                    out.insert(ancestor);
                }
            }
        }
        out
    }

    /// The `FieldsV1` JSON form.
    pub fn to_fields_v1(&self) -> Value {
        let mut obj = Map::new();
        let mut elements: BTreeSet<&PathElement> = self.members.iter().collect();
        elements.extend(
            self.children
                .keys()
                .filter(|pe| self.children.get(*pe).is_some_and(|c| !c.is_empty())),
        );
        for pe in elements {
            let mut inner = match self.children.get(pe) {
                Some(child) if !child.is_empty() => match child.to_fields_v1() {
                    Value::Object(m) => m,
                    _ => Map::new(),
                },
                _ => Map::new(),
            };
            if self.members.contains(pe) && !inner.is_empty() {
                inner.insert(".".into(), Value::Object(Map::new()));
            }
            obj.insert(pe.to_fields_v1_key(), Value::Object(inner));
        }
        Value::Object(obj)
    }

    /// Parses the `FieldsV1` JSON form.
    pub fn from_fields_v1(v: &Value) -> Result<FieldSet, String> {
        let obj = v
            .as_object()
            .ok_or_else(|| "FieldsV1 must be a JSON object".to_string())?;
        let mut set = FieldSet::new();
        for (key, child) in obj {
            if key == "." {
                continue;
            }
            let pe = PathElement::from_fields_v1_key(key)?;
            let child_obj = child
                .as_object()
                .ok_or_else(|| format!("FieldsV1 entry {key:?} must be a JSON object"))?;
            let is_member = child_obj.is_empty() || child_obj.contains_key(".");
            if is_member {
                set.members.insert(pe.clone());
            }
            let sub = FieldSet::from_fields_v1(child)?;
            if !sub.is_empty() {
                set.children.insert(pe, sub);
            }
        }
        Ok(set)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    fn f(s: &str) -> PathElement {
        PathElement::Field(s.into())
    }

    #[test]
    fn fields_v1_round_trips_real_service_ownership() {
        let real = json!({
            "f:metadata": {"f:labels": {".": {}, "f:app": {}}},
            "f:spec": {
                "f:ports": {
                    ".": {},
                    "k:{\"port\":80,\"protocol\":\"TCP\"}": {".": {}, "f:port": {}, "f:protocol": {}}
                },
                "f:selector": {}
            }
        });
        let set = FieldSet::from_fields_v1(&real).unwrap();
        assert!(set.has(&[f("metadata"), f("labels")]));
        assert!(set.has(&[f("metadata"), f("labels"), f("app")]));
        assert!(!set.has(&[f("metadata")]));
        let key = PathElement::Key(vec![
            ("port".into(), json!(80)),
            ("protocol".into(), json!("TCP")),
        ]);
        assert!(set.has(&[f("spec"), f("ports"), key.clone(), f("protocol")]));
        assert!(set.has(&[f("spec"), f("ports"), key]));
        assert_eq!(set.to_fields_v1(), real);
    }

    #[test]
    fn conflict_paths_render_like_structured_merge_diff() {
        let key = PathElement::Key(vec![
            ("port".into(), json!(80)),
            ("protocol".into(), json!("TCP")),
        ]);
        assert_eq!(
            path_to_string(&[f("spec"), f("ports"), key, f("nodePort")]),
            ".spec.ports[port=80,protocol=\"TCP\"].nodePort"
        );
        assert_eq!(
            path_to_string(&[
                f("metadata"),
                f("finalizers"),
                PathElement::Value(json!("a/b"))
            ]),
            ".metadata.finalizers[=\"a/b\"]"
        );
    }

    #[test]
    fn recursive_difference_drops_children_of_removed_members() {
        let mut a = FieldSet::new();
        a.insert(&[f("a"), f("b"), f("c")]);
        a.insert(&[f("x")]);
        let mut b = FieldSet::new();
        b.insert(&[f("a"), f("b")]);
        let d = a.recursive_difference(&b);
        assert_eq!(d.paths(), vec![vec![f("x")]]);
        assert_eq!(a.difference(&b), a);
    }
}
