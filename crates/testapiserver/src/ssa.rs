//! Server-side apply and field ownership, as structured-merge-diff and kube-apiserver's field
//! manager do them.
//!
//! Owns the schema-aware walks over objects (field set of an object, comparison of two objects,
//! merge of an applied configuration into a live object, removal of field sets), the
//! `metadata.managedFields` model ([`ManagedFields`]) and the two operations that change
//! ownership:
//!
//! * [`ManagedFields::apply`] (`PATCH` with `application/apply-patch+yaml`): merge the applied
//!   configuration into the live object, drop the fields this manager applied last time but no
//!   longer applies (unless another manager owns them), and refuse with a conflict when the
//!   configuration changes a value another manager owns, unless forced — then ownership moves.
//! * [`ManagedFields::update`] (create, `PUT`, non-apply `PATCH`): the requesting manager takes
//!   ownership of the fields it changed; others lose them.
//!
//! Both ignore the fields a subresource cannot change (`status` for the main resource, `spec`
//! for `/status`). It does not decide which fields those are, nor persist anything.

use serde_json::{Map, Value, json};

use crate::fieldpath::{FieldSet, Path, PathElement, path_to_string};
use crate::schema::{ListType, SchemaNode, Shape};

/// Added/modified/removed field paths between two versions of an object.
#[derive(Clone, Debug, Default, PartialEq)]
pub struct Comparison {
    pub added: FieldSet,
    pub modified: FieldSet,
    pub removed: FieldSet,
}

impl Comparison {
    fn exclude(&mut self, ignored: &FieldSet) {
        self.added = self.added.recursive_difference(ignored);
        self.modified = self.modified.recursive_difference(ignored);
        self.removed = self.removed.recursive_difference(ignored);
    }

    pub fn is_same(&self) -> bool {
        self.added.is_empty() && self.modified.is_empty() && self.removed.is_empty()
    }
}

/// How a pair of values is walked at one node.
enum Walk<'a> {
    /// Compared and merged as one value.
    Leaf,
    /// An object whose keys are walked one by one.
    Object(SchemaNode<'a>),
    /// A list whose items are walked by identity.
    List(SchemaNode<'a>, ListType),
}

fn is_empty_value(v: Option<&Value>) -> bool {
    match v {
        None | Some(Value::Null) => true,
        Some(Value::Object(m)) => m.is_empty(),
        Some(Value::Array(a)) => a.is_empty(),
        _ => false,
    }
}

fn objectish(v: Option<&Value>) -> bool {
    matches!(v, None | Some(Value::Null) | Some(Value::Object(_)))
}

fn listish(v: Option<&Value>) -> bool {
    matches!(v, None | Some(Value::Null) | Some(Value::Array(_)))
}

/// structured-merge-diff's classification, including "both sides empty: treat as a leaf" when
/// `promote_empty` is set (merge and compare do that to keep `{}` apart from absent).
fn classify<'a>(
    node: SchemaNode<'a>,
    a: Option<&Value>,
    b: Option<&Value>,
    promote_empty: bool,
) -> Walk<'a> {
    let both_empty = promote_empty && is_empty_value(a) && is_empty_value(b);
    match node.shape() {
        Shape::Scalar => Walk::Leaf,
        Shape::Struct { atomic: true, .. } | Shape::Map { atomic: true, .. } => Walk::Leaf,
        Shape::Struct { node, .. } => {
            if objectish(a) && objectish(b) && !both_empty {
                Walk::Object(node)
            } else {
                Walk::Leaf
            }
        }
        Shape::Map { .. } => {
            if objectish(a) && objectish(b) && !both_empty {
                Walk::Object(node)
            } else {
                Walk::Leaf
            }
        }
        Shape::List {
            list: ListType::Atomic,
            ..
        } => Walk::Leaf,
        Shape::List { elem, list } => {
            if listish(a) && listish(b) && !both_empty {
                Walk::List(elem, list)
            } else {
                Walk::Leaf
            }
        }
        Shape::Untyped => {
            let any_object =
                matches!(a, Some(Value::Object(_))) || matches!(b, Some(Value::Object(_)));
            if any_object && objectish(a) && objectish(b) && !both_empty {
                Walk::Object(node)
            } else {
                Walk::Leaf
            }
        }
    }
}

/// The path element identifying `item` in a list of the given type.
pub fn list_item_element(
    list: &ListType,
    elem: SchemaNode<'_>,
    item: &Value,
    index: usize,
) -> Result<PathElement, String> {
    match list {
        ListType::Map(keys) => {
            let mut out = Vec::with_capacity(keys.len());
            for key in keys {
                let value = match item.get(key) {
                    Some(v) if !v.is_null() => v.clone(),
                    _ => match elem.child(key).default_value() {
                        Some(d) => d.clone(),
                        None => {
                            return Err(format!(
                                "element {index}: associative list with keys has an element that omits key field \"{key}\" (and doesn't have default value)"
                            ));
                        }
                    },
                };
                out.push((key.clone(), value));
            }
            out.sort_by(|a, b| a.0.cmp(&b.0));
            Ok(PathElement::Key(out))
        }
        ListType::Set => match item {
            Value::Object(_) | Value::Array(_) => Err(format!(
                "element {index}: associative list without keys has an element that's a map type"
            )),
            scalar => Ok(PathElement::Value(scalar.clone())),
        },
        ListType::Atomic => Ok(PathElement::Index(index)),
    }
}

/// Items of a list with their path elements; duplicates are an error when `strict`.
fn index_items<'v>(
    list: &ListType,
    elem: SchemaNode<'_>,
    items: &'v [Value],
    strict: bool,
) -> Result<Vec<(PathElement, &'v Value)>, String> {
    let mut out: Vec<(PathElement, &Value)> = Vec::with_capacity(items.len());
    for (i, item) in items.iter().enumerate() {
        let pe = list_item_element(list, elem, item, i)?;
        if out.iter().any(|(p, _)| *p == pe) {
            if strict {
                return Err(format!("duplicate entries for key {pe}"));
            }
            continue;
        }
        out.push((pe, item));
    }
    Ok(out)
}

fn as_items(v: Option<&Value>) -> &[Value] {
    match v {
        Some(Value::Array(a)) => a,
        _ => &[],
    }
}

fn as_map(v: Option<&Value>) -> Option<&Map<String, Value>> {
    match v {
        Some(Value::Object(m)) => Some(m),
        _ => None,
    }
}

/// The set of fields an object (or an applied configuration) sets: every scalar, every atomic
/// list or map, every list item of a granular list, every map key, and struct fields that are
/// null or empty objects.
pub fn field_set(root: SchemaNode<'_>, value: &Value) -> Result<FieldSet, String> {
    let mut set = FieldSet::new();
    let mut path = Vec::new();
    walk_field_set(root, value, &mut path, &mut set)?;
    Ok(set)
}

fn walk_field_set(
    node: SchemaNode<'_>,
    value: &Value,
    path: &mut Path,
    set: &mut FieldSet,
) -> Result<(), String> {
    match classify(node, Some(value), None, false) {
        Walk::Leaf => set.insert(path),
        Walk::Object(obj_node) => {
            if let Value::Object(m) = value {
                for (k, child) in m {
                    let pe = PathElement::Field(k.clone());
                    path.push(pe);
                    walk_field_set(obj_node.child(k), child, path, set)?;
                    let empty_obj = matches!(child, Value::Object(o) if o.is_empty());
                    if child.is_null() || empty_obj || obj_node.declared_field(k).is_none() {
                        set.insert(path);
                    }
                    path.pop();
                }
            }
        }
        Walk::List(elem, list) => {
            if let Value::Array(items) = value {
                for (pe, item) in index_items(&list, elem, items, true)
                    .map_err(|e| format!("{}: {e}", path_to_string(path)))?
                {
                    path.push(pe);
                    walk_field_set(elem, item, path, set)?;
                    set.insert(path);
                    path.pop();
                }
            }
        }
    }
    Ok(())
}

/// Compares two versions of an object field by field.
pub fn compare(root: SchemaNode<'_>, old: &Value, new: &Value) -> Comparison {
    let mut c = Comparison::default();
    let mut path = Vec::new();
    walk_compare(root, Some(old), Some(new), &mut path, &mut c);
    c
}

fn walk_compare(
    node: SchemaNode<'_>,
    l: Option<&Value>,
    r: Option<&Value>,
    path: &mut Path,
    c: &mut Comparison,
) {
    match classify(node, l, r, true) {
        Walk::Leaf => {
            match (l, r) {
                (None, Some(_)) => c.added.insert(path),
                (Some(_), None) => c.removed.insert(path),
                (Some(a), Some(b)) if a != b => c.modified.insert(path),
                _ => {}
            }
            return;
        }
        Walk::Object(obj_node) => {
            let lm = as_map(l);
            let rm = as_map(r);
            let mut keys: Vec<&String> = lm.map(|m| m.keys().collect()).unwrap_or_default();
            if let Some(rm) = rm {
                for k in rm.keys() {
                    if !lm.is_some_and(|m| m.contains_key(k)) {
                        keys.push(k);
                    }
                }
            }
            for k in keys {
                path.push(PathElement::Field(k.clone()));
                walk_compare(
                    obj_node.child(k),
                    lm.and_then(|m| m.get(k)),
                    rm.and_then(|m| m.get(k)),
                    path,
                    c,
                );
                path.pop();
            }
        }
        Walk::List(elem, list) => {
            let li = index_items(&list, elem, as_items(l), false).unwrap_or_default();
            let ri = index_items(&list, elem, as_items(r), false).unwrap_or_default();
            for (pe, lv) in &li {
                let rv = ri.iter().find(|(p, _)| p == pe).map(|(_, v)| *v);
                path.push(pe.clone());
                walk_compare(elem, Some(lv), rv, path, c);
                path.pop();
            }
            for (pe, rv) in &ri {
                if li.iter().any(|(p, _)| p == pe) {
                    continue;
                }
                path.push(pe.clone());
                walk_compare(elem, None, Some(rv), path, c);
                path.pop();
            }
        }
    }
    // A container that appeared or disappeared is itself added or removed.
    if !path.is_empty() {
        match (l, r) {
            (None, Some(_)) => c.added.insert(path),
            (Some(_), None) => c.removed.insert(path),
            _ => {}
        }
    }
}

/// Merges an applied configuration into a live object: the configuration's values win,
/// granular maps and lists are merged item by item, atomic ones replaced.
pub fn merge(root: SchemaNode<'_>, live: &Value, config: &Value) -> Result<Value, String> {
    let mut path = Vec::new();
    Ok(walk_merge(root, Some(live), Some(config), &mut path)?.unwrap_or(Value::Object(Map::new())))
}

fn walk_merge(
    node: SchemaNode<'_>,
    l: Option<&Value>,
    r: Option<&Value>,
    path: &mut Path,
) -> Result<Option<Value>, String> {
    match classify(node, l, r, true) {
        Walk::Leaf => Ok(r.or(l).cloned()),
        Walk::Object(obj_node) => {
            let lm = as_map(l);
            let rm = as_map(r);
            let mut out = Map::new();
            if let Some(lm) = lm {
                for (k, lv) in lm {
                    path.push(PathElement::Field(k.clone()));
                    let merged =
                        walk_merge(obj_node.child(k), Some(lv), rm.and_then(|m| m.get(k)), path)?;
                    path.pop();
                    if let Some(v) = merged {
                        out.insert(k.clone(), v);
                    }
                }
            }
            if let Some(rm) = rm {
                for (k, rv) in rm {
                    if lm.is_some_and(|m| m.contains_key(k)) {
                        continue;
                    }
                    path.push(PathElement::Field(k.clone()));
                    let merged = walk_merge(obj_node.child(k), None, Some(rv), path)?;
                    path.pop();
                    if let Some(v) = merged {
                        out.insert(k.clone(), v);
                    }
                }
            }
            Ok(if out.is_empty() {
                None
            } else {
                Some(Value::Object(out))
            })
        }
        Walk::List(elem, list) => {
            let li = index_items(&list, elem, as_items(l), false)
                .map_err(|e| format!("{}: {e}", path_to_string(path)))?;
            let ri = index_items(&list, elem, as_items(r), true)
                .map_err(|e| format!("{}: {e}", path_to_string(path)))?;
            let out = merge_list_items(elem, &li, &ri, path)?;
            Ok(if out.is_empty() {
                None
            } else {
                Some(Value::Array(out))
            })
        }
    }
}

/// structured-merge-diff's list merge order: items shared by both sides follow the applied
/// order, live-only items keep their place relative to them, applied-only items are inserted
/// where the applied list has them.
fn merge_list_items(
    elem: SchemaNode<'_>,
    lhs: &[(PathElement, &Value)],
    rhs: &[(PathElement, &Value)],
    path: &mut Path,
) -> Result<Vec<Value>, String> {
    let in_lhs = |pe: &PathElement| lhs.iter().find(|(p, _)| p == pe).map(|(_, v)| *v);
    let in_rhs = |pe: &PathElement| rhs.iter().find(|(p, _)| p == pe).map(|(_, v)| *v);
    let mut shared: std::collections::VecDeque<&PathElement> = rhs
        .iter()
        .filter(|(p, _)| in_lhs(p).is_some())
        .map(|(p, _)| p)
        .collect();
    let mut next_shared = shared.pop_front();
    let mut out = Vec::new();
    let mut merge_one = |pe: &PathElement,
                         l: Option<&Value>,
                         r: Option<&Value>,
                         out: &mut Vec<Value>|
     -> Result<(), String> {
        path.push(pe.clone());
        let merged = walk_merge(elem, l, r, path)?;
        path.pop();
        if let Some(v) = merged {
            out.push(v);
        }
        Ok(())
    };
    let (mut li, mut ri) = (0usize, 0usize);
    while li < lhs.len() || ri < rhs.len() {
        if li < lhs.len() && ri < rhs.len() {
            let pe = &lhs[li].0;
            if *pe == rhs[ri].0 {
                merge_one(pe, Some(lhs[li].1), Some(rhs[ri].1), &mut out)?;
                li += 1;
                ri += 1;
                next_shared = shared.pop_front();
                continue;
            }
            if in_rhs(pe).is_some() && next_shared.is_some_and(|n| n != pe) {
                li += 1;
                continue;
            }
        }
        if li < lhs.len() {
            let pe = &lhs[li].0;
            if in_rhs(pe).is_none() {
                merge_one(pe, Some(lhs[li].1), None, &mut out)?;
                li += 1;
                continue;
            }
        }
        if ri < rhs.len() {
            let pe = &rhs[ri].0;
            merge_one(pe, in_lhs(pe), Some(rhs[ri].1), &mut out)?;
            ri += 1;
            if next_shared.is_some_and(|n| n == pe) {
                next_shared = shared.pop_front();
            }
        }
    }
    Ok(out)
}

/// Removes every field, map key and list item named in `set` (with everything below it).
pub fn remove_items(root: SchemaNode<'_>, value: &Value, set: &FieldSet) -> Value {
    walk_remove(root, value, set).unwrap_or(Value::Object(Map::new()))
}

fn walk_remove(node: SchemaNode<'_>, value: &Value, set: &FieldSet) -> Option<Value> {
    match classify(node, Some(value), None, false) {
        Walk::Leaf => Some(value.clone()),
        Walk::Object(obj_node) => {
            let Value::Object(m) = value else {
                return Some(value.clone());
            };
            let mut out = Map::new();
            for (k, child) in m {
                let pe = PathElement::Field(k.clone());
                if set.has(std::slice::from_ref(&pe)) {
                    continue;
                }
                match set.with_prefix(&pe) {
                    Some(sub) if !sub.is_empty() => {
                        if let Some(v) = walk_remove(obj_node.child(k), child, sub) {
                            out.insert(k.clone(), v);
                        }
                    }
                    _ => {
                        out.insert(k.clone(), child.clone());
                    }
                }
            }
            if out.is_empty() && !m.is_empty() {
                None
            } else {
                Some(Value::Object(out))
            }
        }
        Walk::List(elem, list) => {
            let Value::Array(items) = value else {
                return Some(value.clone());
            };
            let mut out = Vec::new();
            for (i, item) in items.iter().enumerate() {
                let Ok(pe) = list_item_element(&list, elem, item, i) else {
                    out.push(item.clone());
                    continue;
                };
                if set.has(std::slice::from_ref(&pe)) {
                    continue;
                }
                match set.with_prefix(&pe) {
                    Some(sub) if !sub.is_empty() => {
                        if let Some(v) = walk_remove(elem, item, sub) {
                            out.push(v);
                        }
                    }
                    _ => out.push(item.clone()),
                }
            }
            if out.is_empty() && !items.is_empty() {
                None
            } else {
                Some(Value::Array(out))
            }
        }
    }
}

/// Whether the last element of `path` is a declared field of a struct.
pub fn is_declared_field(root: SchemaNode<'_>, path: &[PathElement]) -> bool {
    let mut node = root;
    for (i, pe) in path.iter().enumerate() {
        match pe {
            PathElement::Field(name) => {
                let declared = node.declared_field(name);
                if i + 1 == path.len() {
                    return declared.is_some();
                }
                node = declared.unwrap_or_else(|| node.child(name));
            }
            _ => node = node.items(),
        }
    }
    false
}

/// `Apply` or `Update`, the two `managedFields` operations.
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord)]
pub enum Operation {
    Apply,
    Update,
}

impl Operation {
    fn as_str(self) -> &'static str {
        match self {
            Operation::Apply => "Apply",
            Operation::Update => "Update",
        }
    }
}

/// Who made a change: the identity of one `managedFields` entry.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct ManagerId {
    pub manager: String,
    pub operation: Operation,
    /// Recorded for the entry; part of the identity for `Update` only, as in kube-apiserver.
    pub api_version: String,
    /// `""` or `"status"`.
    pub subresource: String,
}

impl ManagerId {
    fn same_identity(&self, other: &ManagerId) -> bool {
        self.manager == other.manager
            && self.operation == other.operation
            && self.subresource == other.subresource
            && (self.operation == Operation::Apply || self.api_version == other.api_version)
    }

    /// kube-apiserver's `printManager`: `"mgr"`, `"mgr" with subresource "status"`,
    /// `"mgr" using v1`.
    fn describe(&self) -> String {
        let mut s = format!("{:?}", self.manager);
        if !self.subresource.is_empty() {
            s.push_str(&format!(" with subresource {:?}", self.subresource));
        }
        if self.operation == Operation::Update {
            s.push_str(&format!(" using {}", self.api_version));
        }
        s
    }
}

/// One `metadata.managedFields` entry.
#[derive(Clone, Debug, PartialEq)]
pub struct ManagerEntry {
    pub id: ManagerId,
    pub time: Option<String>,
    pub fields: FieldSet,
}

/// Fields a manager may not own: identity and server-set metadata (kube-apiserver's
/// `stripMeta` field manager layer).
fn stripped_fields() -> FieldSet {
    let mut s = FieldSet::new();
    let f = |n: &str| PathElement::Field(n.into());
    s.insert(&[f("apiVersion")]);
    s.insert(&[f("kind")]);
    s.insert(&[f("metadata")]);
    for m in [
        "name",
        "namespace",
        "creationTimestamp",
        "selfLink",
        "uid",
        "clusterName",
        "generation",
        "managedFields",
        "resourceVersion",
    ] {
        s.insert(&[f("metadata"), f(m)]);
    }
    s
}

/// A set of contested fields, reported as a 409 Conflict.
#[derive(Clone, Debug, PartialEq)]
pub struct Conflicts(pub Vec<(ManagerId, Path)>);

impl Conflicts {
    /// kube-apiserver's conflict message and `details.causes`.
    pub fn message_and_causes(&self) -> (String, Vec<Value>) {
        let causes = self
            .0
            .iter()
            .map(|(m, p)| {
                json!({
                    "reason": "FieldManagerConflict",
                    "message": format!("conflict with {}", m.describe()),
                    "field": path_to_string(p),
                })
            })
            .collect();
        let message = if self.0.len() == 1 {
            let (m, p) = &self.0[0];
            format!(
                "Apply failed with 1 conflict: conflict with {}: {}",
                m.describe(),
                path_to_string(p)
            )
        } else {
            let mut managers: Vec<String> = self.0.iter().map(|(m, _)| m.describe()).collect();
            managers.sort();
            managers.dedup();
            let mut lines = Vec::new();
            for m in &managers {
                lines.push(format!("conflicts with {m}:"));
                for (id, p) in &self.0 {
                    if id.describe() == *m {
                        lines.push(format!("- {}", path_to_string(p)));
                    }
                }
            }
            format!(
                "Apply failed with {} conflicts: {}",
                self.0.len(),
                lines.join("\n")
            )
        };
        (message, causes)
    }
}

/// What went wrong while computing ownership.
#[derive(Debug, PartialEq)]
pub enum OwnershipError {
    Conflicts(Conflicts),
    /// The applied configuration does not fit the schema (duplicate keys, missing key fields).
    InvalidConfig(String),
}

/// The decoded `metadata.managedFields` of one object.
#[derive(Clone, Debug, Default, PartialEq)]
pub struct ManagedFields {
    pub entries: Vec<ManagerEntry>,
}

impl ManagedFields {
    /// Decodes `metadata.managedFields`; entries that do not decode make the whole list invalid,
    /// as in kube-apiserver (which then falls back to the live object's list).
    pub fn decode(object: &Value) -> Result<ManagedFields, String> {
        let Some(list) = object.pointer("/metadata/managedFields") else {
            return Ok(ManagedFields::default());
        };
        let list = match list {
            Value::Null => return Ok(ManagedFields::default()),
            Value::Array(l) => l,
            _ => return Err("metadata.managedFields must be a list".into()),
        };
        let mut entries = Vec::with_capacity(list.len());
        for e in list {
            let manager = e.get("manager").and_then(Value::as_str).unwrap_or_default();
            let operation = match e.get("operation").and_then(Value::as_str) {
                Some("Apply") => Operation::Apply,
                Some("Update") => Operation::Update,
                other => return Err(format!("invalid managedFields operation {other:?}")),
            };
            if let Some(ft) = e.get("fieldsType").and_then(Value::as_str)
                && ft != "FieldsV1"
            {
                return Err(format!("invalid fieldsType {ft:?}"));
            }
            let fields = match e.get("fieldsV1") {
                Some(v) => FieldSet::from_fields_v1(v)?,
                None => FieldSet::new(),
            };
            entries.push(ManagerEntry {
                id: ManagerId {
                    manager: manager.to_string(),
                    operation,
                    api_version: e
                        .get("apiVersion")
                        .and_then(Value::as_str)
                        .unwrap_or_default()
                        .to_string(),
                    subresource: e
                        .get("subresource")
                        .and_then(Value::as_str)
                        .unwrap_or_default()
                        .to_string(),
                },
                time: e.get("time").and_then(Value::as_str).map(String::from),
                fields,
            });
        }
        Ok(ManagedFields { entries })
    }

    /// Encodes the entries in kube-apiserver's order (operation, time, manager, apiVersion,
    /// subresource).
    pub fn encode(&self) -> Value {
        let mut entries = self.entries.clone();
        entries.retain(|e| !e.fields.is_empty());
        entries.sort_by(|a, b| {
            a.id.operation
                .cmp(&b.id.operation)
                .then_with(|| a.time.cmp(&b.time))
                .then_with(|| a.id.manager.cmp(&b.id.manager))
                .then_with(|| a.id.api_version.cmp(&b.id.api_version))
                .then_with(|| a.id.subresource.cmp(&b.id.subresource))
        });
        Value::Array(
            entries
                .iter()
                .map(|e| {
                    let mut m = Map::new();
                    m.insert("manager".into(), json!(e.id.manager));
                    m.insert("operation".into(), json!(e.id.operation.as_str()));
                    m.insert("apiVersion".into(), json!(e.id.api_version));
                    if let Some(t) = &e.time {
                        m.insert("time".into(), json!(t));
                    }
                    m.insert("fieldsType".into(), json!("FieldsV1"));
                    m.insert("fieldsV1".into(), e.fields.to_fields_v1());
                    if !e.id.subresource.is_empty() {
                        m.insert("subresource".into(), json!(e.id.subresource));
                    }
                    Value::Object(m)
                })
                .collect(),
        )
    }

    fn position(&self, id: &ManagerId) -> Option<usize> {
        self.entries.iter().position(|e| e.id.same_identity(id))
    }

    fn named_closure(root: SchemaNode<'_>, set: &FieldSet) -> FieldSet {
        set.with_named_field_ancestors(&|p| is_declared_field(root, p))
    }

    /// The conflict check and ownership transfer shared by apply and update: every other
    /// manager that owns a field the change modifies or adds conflicts (unless forced, when it
    /// loses the field); every manager loses the fields the change removes.
    fn transfer(
        &mut self,
        root: SchemaNode<'_>,
        live: &Value,
        new: &Value,
        requester: Option<&ManagerId>,
        force: bool,
        ignored: &FieldSet,
    ) -> Result<Comparison, Conflicts> {
        let mut cmp = compare(root, live, new);
        cmp.exclude(ignored);
        let changed = cmp.modified.union(&cmp.added);
        let mut conflicts = Vec::new();
        for e in &self.entries {
            if requester.is_some_and(|r| e.id.same_identity(r)) {
                continue;
            }
            for p in e.fields.intersection(&changed).paths() {
                conflicts.push((e.id.clone(), p));
            }
        }
        if !force && !conflicts.is_empty() {
            conflicts.sort_by(|a, b| {
                a.0.describe()
                    .cmp(&b.0.describe())
                    .then_with(|| path_to_string(&a.1).cmp(&path_to_string(&b.1)))
            });
            return Err(Conflicts(conflicts));
        }
        for e in &mut self.entries {
            if requester.is_some_and(|r| e.id.same_identity(r)) {
                continue;
            }
            e.fields = e.fields.difference(&changed).difference(&cmp.removed);
        }
        self.entries.retain(|e| !e.fields.is_empty());
        Ok(cmp)
    }

    /// Server-side apply of `config` onto `live` (both without `managedFields`). Returns the new
    /// object; ownership is updated in place. `ignored` are the fields this endpoint cannot
    /// change.
    #[allow(clippy::too_many_arguments)]
    pub fn apply(
        &mut self,
        root: SchemaNode<'_>,
        live: &Value,
        config: &Value,
        applier: &ManagerId,
        force: bool,
        ignored: &FieldSet,
        now: &str,
    ) -> Result<Value, OwnershipError> {
        let merged = merge(root, live, config).map_err(OwnershipError::InvalidConfig)?;
        let applied_set = field_set(root, config)
            .map_err(OwnershipError::InvalidConfig)?
            .recursive_difference(ignored);
        let last = self
            .position(applier)
            .map(|i| self.entries[i].fields.clone())
            .unwrap_or_default();

        // Prune what this manager applied before and nobody (including its new configuration)
        // owns now.
        let mut owned_now = Self::named_closure(root, &applied_set);
        for e in &self.entries {
            if !e.id.same_identity(applier) {
                owned_now = owned_now.union(&Self::named_closure(root, &e.fields));
            }
        }
        let removable = Self::named_closure(root, &last).difference(&owned_now);
        let new = if removable.is_empty() {
            merged
        } else {
            remove_items(root, &merged, &removable)
        };

        let mut trial = self.clone();
        trial
            .transfer(root, live, &new, Some(applier), force, ignored)
            .map_err(OwnershipError::Conflicts)?;
        let own = applied_set.difference(&stripped_fields());
        let changed = new != *live;
        match trial.position(applier) {
            Some(i) => {
                trial.entries[i].fields = own;
                trial.entries[i].id.api_version = applier.api_version.clone();
                if changed {
                    trial.entries[i].time = Some(now.to_string());
                }
            }
            None => trial.entries.push(ManagerEntry {
                id: applier.clone(),
                time: Some(now.to_string()),
                fields: own,
            }),
        }
        trial.entries.retain(|e| !e.fields.is_empty());
        *self = trial;
        Ok(new)
    }

    /// Records a non-apply write (create, update, patch) of `new` over `live` by `updater`.
    pub fn update(
        &mut self,
        root: SchemaNode<'_>,
        live: &Value,
        new: &Value,
        updater: &ManagerId,
        ignored: &FieldSet,
        now: &str,
    ) {
        // The change is first attributed to an anonymous "current operation" so that the
        // updater's own earlier entry loses the fields it no longer has, then merged into it.
        let Ok(cmp) = self.transfer(root, live, new, None, true, ignored) else {
            return;
        };
        let taken = cmp
            .modified
            .union(&cmp.added)
            .difference(&cmp.removed)
            .recursive_difference(ignored)
            .difference(&stripped_fields());
        if taken.is_empty() {
            return;
        }
        match self.position(updater) {
            Some(i) => {
                self.entries[i].fields = self.entries[i].fields.union(&taken);
                self.entries[i].time = Some(now.to_string());
            }
            None => self.entries.push(ManagerEntry {
                id: updater.clone(),
                time: Some(now.to_string()),
                fields: taken,
            }),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::schema::StructuralSchema;
    use k8s_openapi::api::core::v1::Service;

    fn svc_schema() -> StructuralSchema {
        StructuralSchema::for_builtin::<Service>()
    }

    fn apply_id(m: &str) -> ManagerId {
        ManagerId {
            manager: m.into(),
            operation: Operation::Apply,
            api_version: "v1".into(),
            subresource: String::new(),
        }
    }

    fn status_ignored() -> FieldSet {
        let mut s = FieldSet::new();
        s.insert(&[PathElement::Field("status".into())]);
        s
    }

    #[test]
    fn field_set_follows_structured_merge_diff_membership_rules() {
        let s = svc_schema();
        let obj = json!({
            "metadata": {"name": "web", "labels": {"app": "web"}, "finalizers": ["a/b"]},
            "spec": {"ports": [{"port": 80}], "selector": {"app": "web"}, "sessionAffinityConfig": {}}
        });
        let set = field_set(s.root(), &obj).unwrap();
        let fv1 = set.to_fields_v1();
        assert_eq!(
            fv1,
            json!({
                "f:metadata": {
                    "f:finalizers": {"v:\"a/b\"": {}},
                    "f:labels": {"f:app": {}},
                    "f:name": {}
                },
                "f:spec": {
                    "f:ports": {"k:{\"port\":80,\"protocol\":\"TCP\"}": {".": {}, "f:port": {}}},
                    "f:selector": {},
                    "f:sessionAffinityConfig": {}
                }
            })
        );
    }

    #[test]
    fn second_applier_with_different_value_conflicts_and_force_takes_ownership() {
        let s = svc_schema();
        let mut mf = ManagedFields::default();
        let live = json!({"metadata": {"name": "web"}});
        let a = json!({"metadata": {"name": "web", "labels": {"team": "a"}}});
        let obj = mf
            .apply(
                s.root(),
                &live,
                &a,
                &apply_id("alpha"),
                false,
                &status_ignored(),
                "t1",
            )
            .unwrap();
        let b = json!({"metadata": {"name": "web", "labels": {"team": "b"}}});
        let err = mf
            .clone()
            .apply(
                s.root(),
                &obj,
                &b,
                &apply_id("beta"),
                false,
                &status_ignored(),
                "t2",
            )
            .unwrap_err();
        let OwnershipError::Conflicts(c) = err else {
            panic!("expected conflicts")
        };
        let (message, causes) = c.message_and_causes();
        assert_eq!(
            message,
            "Apply failed with 1 conflict: conflict with \"alpha\": .metadata.labels.team"
        );
        assert_eq!(causes[0]["field"], ".metadata.labels.team");
        let obj = mf
            .apply(
                s.root(),
                &obj,
                &b,
                &apply_id("beta"),
                true,
                &status_ignored(),
                "t2",
            )
            .unwrap();
        assert_eq!(obj["metadata"]["labels"]["team"], "b");
        assert_eq!(mf.entries.len(), 1, "alpha lost its only field");
        assert_eq!(mf.entries[0].id.manager, "beta");
    }

    #[test]
    fn same_value_is_shared_and_survives_one_manager_dropping_it() {
        let s = svc_schema();
        let mut mf = ManagedFields::default();
        let live = json!({"metadata": {"name": "web"}});
        let cfg = json!({"metadata": {"name": "web", "labels": {"team": "a"}}});
        let o = mf
            .apply(
                s.root(),
                &live,
                &cfg,
                &apply_id("alpha"),
                false,
                &status_ignored(),
                "t",
            )
            .unwrap();
        let o = mf
            .apply(
                s.root(),
                &o,
                &cfg,
                &apply_id("beta"),
                false,
                &status_ignored(),
                "t",
            )
            .unwrap();
        let empty = json!({"metadata": {"name": "web"}});
        let o = mf
            .apply(
                s.root(),
                &o,
                &empty,
                &apply_id("alpha"),
                false,
                &status_ignored(),
                "t",
            )
            .unwrap();
        assert_eq!(o["metadata"]["labels"]["team"], "a", "beta still owns it");
        let o = mf
            .apply(
                s.root(),
                &o,
                &empty,
                &apply_id("beta"),
                false,
                &status_ignored(),
                "t",
            )
            .unwrap();
        assert!(
            o["metadata"].get("labels").is_none(),
            "nobody owns it any more: {o}"
        );
    }

    #[test]
    fn atomic_ingress_is_replaced_while_conditions_merge_by_type() {
        let s = svc_schema();
        let mut mf = ManagedFields::default();
        let ignored = {
            let mut f = FieldSet::new();
            f.insert(&[PathElement::Field("spec".into())]);
            f
        };
        let live = json!({"metadata": {"name": "web"}, "status": {"loadBalancer": {"ingress": [{"ip": "192.0.2.1"}, {"ip": "192.0.2.2"}]},
            "conditions": [{"type": "Other", "status": "True", "reason": "X", "message": "", "lastTransitionTime": "2024-01-01T00:00:00Z"}]}});
        let cfg = json!({"metadata": {"name": "web"}, "status": {"loadBalancer": {"ingress": [{"ip": "192.0.2.9"}]},
            "conditions": [{"type": "Mine", "status": "True", "reason": "Y", "message": "", "lastTransitionTime": "2024-01-01T00:00:00Z"}]}});
        let mut id = apply_id("ctl");
        id.subresource = "status".into();
        let o = mf
            .apply(s.root(), &live, &cfg, &id, false, &ignored, "t")
            .unwrap();
        assert_eq!(
            o["status"]["loadBalancer"]["ingress"],
            json!([{"ip": "192.0.2.9"}])
        );
        let types: Vec<&str> = o["status"]["conditions"]
            .as_array()
            .unwrap()
            .iter()
            .map(|c| c["type"].as_str().unwrap())
            .collect();
        assert_eq!(types, vec!["Other", "Mine"]);
    }

    #[test]
    fn update_takes_only_changed_fields_from_previous_owners() {
        let s = svc_schema();
        let mut mf = ManagedFields::default();
        let live = json!({"metadata": {"name": "web"}});
        let cfg = json!({"metadata": {"name": "web", "labels": {"a": "1", "b": "2"}}});
        let o = mf
            .apply(
                s.root(),
                &live,
                &cfg,
                &apply_id("alpha"),
                false,
                &status_ignored(),
                "t",
            )
            .unwrap();
        let mut changed = o.clone();
        changed["metadata"]["labels"]["a"] = json!("9");
        let upd = ManagerId {
            manager: "kubectl".into(),
            operation: Operation::Update,
            api_version: "v1".into(),
            subresource: String::new(),
        };
        mf.update(s.root(), &o, &changed, &upd, &status_ignored(), "t2");
        let alpha = mf.entries.iter().find(|e| e.id.manager == "alpha").unwrap();
        assert!(!alpha.fields.has(&[
            PathElement::Field("metadata".into()),
            PathElement::Field("labels".into()),
            PathElement::Field("a".into())
        ]));
        assert!(alpha.fields.has(&[
            PathElement::Field("metadata".into()),
            PathElement::Field("labels".into()),
            PathElement::Field("b".into())
        ]));
        let kubectl = mf
            .entries
            .iter()
            .find(|e| e.id.manager == "kubectl")
            .unwrap();
        assert_eq!(
            kubectl.fields.to_fields_v1(),
            json!({"f:metadata": {"f:labels": {"f:a": {}}}})
        );
    }

    #[test]
    fn merge_keeps_live_only_list_items_in_place() {
        let s = svc_schema();
        let live = json!({"metadata": {"finalizers": ["a", "b", "c"]}});
        let cfg = json!({"metadata": {"finalizers": ["c", "d"]}});
        let m = merge(s.root(), &live, &cfg).unwrap();
        assert_eq!(m["metadata"]["finalizers"], json!(["a", "b", "c", "d"]));
    }

    #[test]
    fn duplicate_keys_in_applied_config_are_rejected() {
        let s = svc_schema();
        let cfg = json!({"spec": {"ports": [{"port": 80}, {"port": 80, "protocol": "TCP"}]}});
        let e = field_set(s.root(), &cfg).unwrap_err();
        assert!(
            e.contains("duplicate entries for key [port=80,protocol=\"TCP\"]"),
            "{e}"
        );
    }
}
