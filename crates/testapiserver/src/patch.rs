//! The three non-apply PATCH formats kube-apiserver accepts.
//!
//! Owns:
//! * JSON merge patch (`application/merge-patch+json`, RFC 7386).
//! * JSON Patch (`application/json-patch+json`, RFC 6902) with the behaviour of the Go library
//!   kube-apiserver uses (evanphx/json-patch): a `test` of a missing member against `null`
//!   succeeds (kube-runtime's finalizer helper relies on this), negative array indices count from
//!   the end, and failures carry that library's messages.
//! * Strategic merge patch (`application/strategic-merge-patch+json`) for built-in kinds, driven
//!   by the `x-kubernetes-patch-strategy`/`x-kubernetes-patch-merge-key` markers of the schema:
//!   lists of objects merged by their merge key, primitive lists with the `merge` strategy merged
//!   as sets, and the `$patch` (`replace`, `delete`, `merge`), `$deleteFromPrimitiveList/<field>`,
//!   `$setElementOrder/<field>` and `$retainKeys` directives.
//!
//! Each function is pure: document and patch in, patched document (or a [`PatchError`]) out.

use serde_json::{Map, Value};

use crate::schema::SchemaNode;

/// Why a patch could not be applied, split by the HTTP status kube-apiserver answers with.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum PatchError {
    /// The patch document itself is malformed (400).
    #[error("{0}")]
    BadRequest(String),
    /// The patch is well formed but does not apply to this object (422).
    #[error("{0}")]
    Unprocessable(String),
}

/// RFC 7386: objects merge recursively, `null` deletes, anything else replaces.
pub fn merge_patch(doc: &Value, patch: &Value) -> Value {
    match patch {
        Value::Object(p) => {
            let mut out = match doc {
                Value::Object(d) => d.clone(),
                _ => Map::new(),
            };
            for (k, pv) in p {
                if pv.is_null() {
                    out.remove(k);
                } else {
                    let merged = merge_patch(out.get(k).unwrap_or(&Value::Null), pv);
                    out.insert(k.clone(), merged);
                }
            }
            Value::Object(out)
        }
        other => other.clone(),
    }
}

/// One RFC 6902 operation.
#[derive(Debug)]
enum JsonPatchOp {
    Add { path: String, value: Value },
    Remove { path: String },
    Replace { path: String, value: Value },
    Move { from: String, path: String },
    Copy { from: String, path: String },
    Test { path: String, value: Value },
}

fn parse_ops(patch: &Value) -> Result<Vec<JsonPatchOp>, PatchError> {
    let ops = patch.as_array().ok_or_else(|| {
        PatchError::BadRequest(
            "json: cannot unmarshal object into Go value of type jsonpatch.Patch".into(),
        )
    })?;
    let mut out = Vec::with_capacity(ops.len());
    for op in ops {
        let kind = op.get("op").and_then(Value::as_str).unwrap_or("unknown");
        let path = || -> Result<String, PatchError> {
            op.get("path")
                .and_then(Value::as_str)
                .map(String::from)
                .ok_or_else(|| PatchError::Unprocessable(format!("{kind} operation missing path")))
        };
        let from = || -> Result<String, PatchError> {
            op.get("from")
                .and_then(Value::as_str)
                .map(String::from)
                .ok_or_else(|| PatchError::Unprocessable(format!("{kind} operation missing from")))
        };
        let value = || -> Result<Value, PatchError> {
            op.get("value")
                .cloned()
                .ok_or_else(|| PatchError::Unprocessable(format!("{kind} operation missing value")))
        };
        out.push(match kind {
            "add" => JsonPatchOp::Add {
                path: path()?,
                value: value()?,
            },
            "remove" => JsonPatchOp::Remove { path: path()? },
            "replace" => JsonPatchOp::Replace {
                path: path()?,
                value: value()?,
            },
            "move" => JsonPatchOp::Move {
                from: from()?,
                path: path()?,
            },
            "copy" => JsonPatchOp::Copy {
                from: from()?,
                path: path()?,
            },
            // evanphx/json-patch treats an absent value in `test` as null.
            "test" => JsonPatchOp::Test {
                path: path()?,
                value: op.get("value").cloned().unwrap_or(Value::Null),
            },
            other => {
                return Err(PatchError::Unprocessable(format!(
                    "Unexpected kind: {other}"
                )));
            }
        });
    }
    Ok(out)
}

/// RFC 6901 pointer → unescaped tokens.
fn pointer_tokens(path: &str) -> Result<Vec<String>, PatchError> {
    if path.is_empty() {
        return Ok(Vec::new());
    }
    let rest = path.strip_prefix('/').ok_or_else(|| {
        PatchError::Unprocessable(format!(
            "JSON pointer must be empty or start with a \"/\": {path}"
        ))
    })?;
    Ok(rest
        .split('/')
        .map(|t| t.replace("~1", "/").replace("~0", "~"))
        .collect())
}

/// The container holding the last token of `path` (evanphx's `findObject`).
fn parent_mut<'a>(doc: &'a mut Value, tokens: &[String]) -> Option<&'a mut Value> {
    let mut cur = doc;
    for t in &tokens[..tokens.len().saturating_sub(1)] {
        cur = match cur {
            Value::Object(m) => m.get_mut(t)?,
            Value::Array(a) => {
                let i: usize = t.parse().ok()?;
                a.get_mut(i)?
            }
            _ => return None,
        };
    }
    Some(cur)
}

fn get<'a>(doc: &'a Value, tokens: &[String]) -> Option<&'a Value> {
    let mut cur = doc;
    for t in tokens {
        cur = match cur {
            Value::Object(m) => m.get(t)?,
            Value::Array(a) => a.get(t.parse::<usize>().ok()?)?,
            _ => return None,
        };
    }
    Some(cur)
}

fn array_index(key: &str, len: usize, allow_end: bool) -> Result<usize, PatchError> {
    let invalid = || {
        PatchError::Unprocessable(format!(
            "Unable to access invalid index: {key}: invalid index referenced"
        ))
    };
    let idx: i64 = key.parse().map_err(|_| invalid())?;
    let len_i = i64::try_from(len).map_err(|_| invalid())?;
    let limit = if allow_end { len_i } else { len_i - 1 };
    let resolved = if idx < 0 {
        if idx < -len_i {
            return Err(invalid());
        }
        idx + len_i
    } else {
        idx
    };
    if resolved > limit {
        return Err(invalid());
    }
    usize::try_from(resolved).map_err(|_| invalid())
}

fn op_add(doc: &mut Value, path: &str, value: Value) -> Result<(), PatchError> {
    let tokens = pointer_tokens(path)?;
    let Some(last) = tokens.last() else {
        *doc = value;
        return Ok(());
    };
    let missing = || {
        PatchError::Unprocessable(format!(
            "add operation does not apply: doc is missing path: \"{path}\": missing value"
        ))
    };
    match parent_mut(doc, &tokens).ok_or_else(missing)? {
        Value::Object(m) => {
            m.insert(last.clone(), value);
            Ok(())
        }
        Value::Array(a) => {
            if last == "-" {
                a.push(value);
            } else {
                let i = array_index(last, a.len(), true)?;
                a.insert(i, value);
            }
            Ok(())
        }
        _ => Err(missing()),
    }
}

fn op_remove(doc: &mut Value, path: &str) -> Result<Value, PatchError> {
    let tokens = pointer_tokens(path)?;
    let missing = || {
        PatchError::Unprocessable(format!(
            "remove operation does not apply: doc is missing path: \"{path}\": missing value"
        ))
    };
    let last = tokens.last().ok_or_else(missing)?;
    match parent_mut(doc, &tokens).ok_or_else(missing)? {
        Value::Object(m) => m.remove(last).ok_or_else(|| {
            PatchError::Unprocessable(format!(
                "error in remove for path: '{path}': Unable to remove nonexistent key: {last}: missing value"
            ))
        }),
        Value::Array(a) => {
            let i = array_index(last, a.len(), false)?;
            Ok(a.remove(i))
        }
        _ => Err(missing()),
    }
}

fn op_replace(doc: &mut Value, path: &str, value: Value) -> Result<(), PatchError> {
    let tokens = pointer_tokens(path)?;
    let Some(last) = tokens.last() else {
        *doc = value;
        return Ok(());
    };
    let missing = || {
        PatchError::Unprocessable(format!(
            "replace operation does not apply: doc is missing key: {path}: missing value"
        ))
    };
    match parent_mut(doc, &tokens).ok_or_else(missing)? {
        Value::Object(m) => match m.get_mut(last) {
            Some(slot) => {
                *slot = value;
                Ok(())
            }
            None => Err(missing()),
        },
        Value::Array(a) => {
            let i = array_index(last, a.len(), false)?;
            a[i] = value;
            Ok(())
        }
        _ => Err(missing()),
    }
}

/// RFC 6902 applied as evanphx/json-patch (v4) does.
pub fn json_patch(doc: &Value, patch: &Value) -> Result<Value, PatchError> {
    let ops = parse_ops(patch)?;
    if ops.len() > 10_000 {
        return Err(PatchError::BadRequest(format!(
            "The allowed maximum operations in a JSON patch is 10000, got {}",
            ops.len()
        )));
    }
    let mut out = doc.clone();
    for op in ops {
        match op {
            JsonPatchOp::Add { path, value } => op_add(&mut out, &path, value)?,
            JsonPatchOp::Remove { path } => {
                op_remove(&mut out, &path)?;
            }
            JsonPatchOp::Replace { path, value } => op_replace(&mut out, &path, value)?,
            JsonPatchOp::Move { from, path } => {
                let v = op_remove(&mut out, &from).map_err(|_| {
                    PatchError::Unprocessable(format!("move operation does not apply: doc is missing from path: {from}: missing value"))
                })?;
                op_add(&mut out, &path, v)?;
            }
            JsonPatchOp::Copy { from, path } => {
                let tokens = pointer_tokens(&from)?;
                let v = get(&out, &tokens).cloned().ok_or_else(|| {
                    PatchError::Unprocessable(format!("copy operation does not apply: doc is missing from path: {from}: missing value"))
                })?;
                op_add(&mut out, &path, v)?;
            }
            JsonPatchOp::Test { path, value } => {
                let tokens = pointer_tokens(&path)?;
                let parent_exists = tokens.is_empty()
                    || get(&out, &tokens[..tokens.len() - 1])
                        .is_some_and(|p| p.is_object() || p.is_array());
                if !parent_exists {
                    return Err(PatchError::Unprocessable(format!(
                        "test operation does not apply: is missing path: {path}: missing value"
                    )));
                }
                let ok = match get(&out, &tokens) {
                    None | Some(Value::Null) => value.is_null(),
                    Some(actual) => *actual == value,
                };
                if !ok {
                    return Err(PatchError::Unprocessable(format!(
                        "testing value {path} failed: test failed"
                    )));
                }
            }
        }
    }
    Ok(out)
}

const DIRECTIVE: &str = "$patch";
const RETAIN_KEYS: &str = "$retainKeys";
const DELETE_FROM_PRIMITIVE: &str = "$deleteFromPrimitiveList/";
const SET_ELEMENT_ORDER: &str = "$setElementOrder/";

fn strip_directives(v: &Value) -> Value {
    match v {
        Value::Object(m) => Value::Object(
            m.iter()
                .filter(|(k, _)| !k.starts_with('$'))
                .map(|(k, v)| (k.clone(), strip_directives(v)))
                .collect(),
        ),
        Value::Array(a) => Value::Array(
            a.iter()
                .filter(|i| {
                    !(i.is_object()
                        && i.get(DIRECTIVE).is_some()
                        && i.as_object().is_some_and(|o| o.len() == 1))
                })
                .map(strip_directives)
                .collect(),
        ),
        other => other.clone(),
    }
}

/// Strategic merge patch of a built-in object.
pub fn strategic_merge_patch(
    doc: &Value,
    patch: &Value,
    schema: SchemaNode<'_>,
) -> Result<Value, PatchError> {
    let (Value::Object(d), Value::Object(p)) = (doc, patch) else {
        return Err(PatchError::BadRequest("invalid JSON document".into()));
    };
    match smp_map(d, p, schema)? {
        Some(m) => Ok(Value::Object(m)),
        None => Err(PatchError::BadRequest(
            "Unable to find api field in struct for the $patch: delete directive at the top level"
                .into(),
        )),
    }
}

/// Merges `patch` into `original`; `None` means "delete this map".
fn smp_map(
    original: &Map<String, Value>,
    patch: &Map<String, Value>,
    schema: SchemaNode<'_>,
) -> Result<Option<Map<String, Value>>, PatchError> {
    match patch.get(DIRECTIVE).and_then(Value::as_str) {
        Some("replace") => {
            let mut m = patch.clone();
            m.remove(DIRECTIVE);
            return Ok(Some(match strip_directives(&Value::Object(m)) {
                Value::Object(m) => m,
                _ => Map::new(),
            }));
        }
        Some("delete") => return Ok(None),
        Some("merge") | None => {}
        Some(other) => {
            return Err(PatchError::BadRequest(format!(
                "Unknown patch type: {other} in map: {}",
                Value::Object(patch.clone())
            )));
        }
    }
    let mut out = original.clone();
    if let Some(retain) = patch.get(RETAIN_KEYS) {
        let keys = retain.as_array().ok_or_else(|| {
            PatchError::BadRequest(
                "invalid patch: doesn't support retainKeys with a non-list value".into(),
            )
        })?;
        let keep: Vec<&str> = keys.iter().filter_map(Value::as_str).collect();
        for k in patch.keys() {
            if !k.starts_with('$') && !keep.contains(&k.as_str()) {
                return Err(PatchError::Unprocessable(
                    "The patch content doesn't match retainKeys list".into(),
                ));
            }
        }
        out.retain(|k, _| keep.contains(&k.as_str()));
    }
    let mut orders: Vec<(&str, &Vec<Value>)> = Vec::new();
    for (k, pv) in patch {
        if let Some(field) = k.strip_prefix(DELETE_FROM_PRIMITIVE) {
            let remove = pv.as_array().ok_or_else(|| {
                PatchError::BadRequest(
                    "invalid patch: $deleteFromPrimitiveList must be a list".into(),
                )
            })?;
            if let Some(Value::Array(items)) = out.get_mut(field) {
                items.retain(|i| !remove.contains(i));
            }
        } else if let Some(field) = k.strip_prefix(SET_ELEMENT_ORDER) {
            let order = pv.as_array().ok_or_else(|| {
                PatchError::BadRequest("invalid patch: $setElementOrder must be a list".into())
            })?;
            orders.push((field, order));
        }
    }
    for (k, pv) in patch {
        if k.starts_with('$') {
            continue;
        }
        let child = schema.child(k);
        if pv.is_null() {
            out.remove(k);
            continue;
        }
        let merged = match (out.get(k), pv) {
            (Some(Value::Object(o)), Value::Object(p)) => smp_map(o, p, child)?.map(Value::Object),
            (Some(Value::Array(o)), Value::Array(p)) => Some(smp_list(o, p, child)?),
            (None, Value::Object(p)) => smp_map(&Map::new(), p, child)?.map(Value::Object),
            (None, Value::Array(p)) => Some(smp_list(&[], p, child)?),
            (_, other) => Some(strip_directives(other)),
        };
        match merged {
            Some(v) => {
                out.insert(k.clone(), v);
            }
            None => {
                out.remove(k);
            }
        }
    }
    for (field, order) in orders {
        let merge_key = schema.child(field).patch_strategy().1;
        if let Some(Value::Array(items)) = out.get_mut(field) {
            reorder(items, order, merge_key);
        }
    }
    Ok(Some(out))
}

fn reorder(items: &mut Vec<Value>, order: &[Value], merge_key: Option<&str>) {
    let id = |v: &Value| -> Value {
        match merge_key {
            Some(k) => v.get(k).cloned().unwrap_or(Value::Null),
            None => v.clone(),
        }
    };
    let mut ordered = Vec::with_capacity(items.len());
    for o in order {
        let wanted = match merge_key {
            Some(k) => o.get(k).cloned().unwrap_or(Value::Null),
            None => o.clone(),
        };
        if let Some(pos) = items.iter().position(|i| id(i) == wanted) {
            ordered.push(items.remove(pos));
        }
    }
    ordered.append(items);
    *items = ordered;
}

fn smp_list(
    original: &[Value],
    patch: &[Value],
    schema: SchemaNode<'_>,
) -> Result<Value, PatchError> {
    let (strategy, merge_key) = schema.patch_strategy();
    let merge = strategy.is_some_and(|s| s.split(',').any(|p| p == "merge"));
    // `[{"$patch": "replace"}, …]` replaces the list with the remaining items.
    let replace = patch
        .iter()
        .any(|i| i.get(DIRECTIVE).and_then(Value::as_str) == Some("replace"));
    if !merge || replace {
        return Ok(strip_directives(&Value::Array(patch.to_vec())));
    }
    let elem = schema.items();
    match merge_key {
        None => {
            if patch.iter().any(|i| i.is_object() || i.is_array()) {
                return Err(PatchError::BadRequest(
                    "Invalid patch: a list with merge strategy and no merge key must hold scalars"
                        .into(),
                ));
            }
            let mut out: Vec<Value> = Vec::with_capacity(original.len() + patch.len());
            for v in original.iter().chain(patch.iter()) {
                if !out.contains(v) {
                    out.push(v.clone());
                }
            }
            Ok(Value::Array(out))
        }
        Some(key) => {
            let mut out: Vec<Value> = original.to_vec();
            for item in patch {
                let Value::Object(pm) = item else {
                    return Err(PatchError::BadRequest(format!(
                        "Invalid patch: list item {item} is not a map but the list merges by key {key}"
                    )));
                };
                let Some(kv) = pm.get(key) else {
                    return Err(PatchError::Unprocessable(format!(
                        "map: {item} does not contain declared merge key: {key}"
                    )));
                };
                let pos = out.iter().position(|o| o.get(key) == Some(kv));
                match pm.get(DIRECTIVE).and_then(Value::as_str) {
                    Some("delete") => {
                        if let Some(p) = pos {
                            out.remove(p);
                        }
                        continue;
                    }
                    Some("replace") => {
                        let mut m = pm.clone();
                        m.remove(DIRECTIVE);
                        let v = strip_directives(&Value::Object(m));
                        match pos {
                            Some(p) => out[p] = v,
                            None => out.push(v),
                        }
                        continue;
                    }
                    _ => {}
                }
                match pos {
                    Some(p) => {
                        let base = out[p].as_object().cloned().unwrap_or_default();
                        match smp_map(&base, pm, elem)? {
                            Some(m) => out[p] = Value::Object(m),
                            None => {
                                out.remove(p);
                            }
                        }
                    }
                    None => out.push(strip_directives(item)),
                }
            }
            Ok(Value::Array(out))
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::schema::StructuralSchema;
    use k8s_openapi::api::core::v1::Service;
    use serde_json::json;

    #[test]
    fn merge_patch_follows_rfc_7386_example() {
        // RFC 7386 §3 example.
        let target = json!({"a": "b", "c": {"d": "e", "f": "g"}});
        let patch = json!({"a": "z", "c": {"f": null}});
        assert_eq!(
            merge_patch(&target, &patch),
            json!({"a": "z", "c": {"d": "e"}})
        );
    }

    #[test]
    fn finalizer_helper_patches_apply_like_kube_apiserver() {
        // kube-runtime's finalizer(): test that finalizers are absent (null), then add the list.
        let obj = json!({"metadata": {"name": "x"}});
        let add = json!([
            {"op": "test", "path": "/metadata/finalizers", "value": null},
            {"op": "add", "path": "/metadata/finalizers", "value": ["ferrolb.io/f"]}
        ]);
        let obj = json_patch(&obj, &add).unwrap();
        assert_eq!(obj["metadata"]["finalizers"], json!(["ferrolb.io/f"]));
        // Removal by index guarded by a test of the value at that index.
        let remove = json!([
            {"op": "test", "path": "/metadata/finalizers/0", "value": "ferrolb.io/f"},
            {"op": "remove", "path": "/metadata/finalizers/0"}
        ]);
        let obj = json_patch(&obj, &remove).unwrap();
        assert_eq!(obj["metadata"]["finalizers"], json!([]));
        let err = json_patch(&obj, &add).unwrap_err();
        assert_eq!(
            err,
            PatchError::Unprocessable(
                "testing value /metadata/finalizers failed: test failed".into()
            )
        );
    }

    #[test]
    fn json_patch_appends_with_dash_and_rejects_out_of_range_index() {
        let obj = json!({"l": [1, 2]});
        let out = json_patch(&obj, &json!([{"op": "add", "path": "/l/-", "value": 3}])).unwrap();
        assert_eq!(out["l"], json!([1, 2, 3]));
        let out = json_patch(&obj, &json!([{"op": "remove", "path": "/l/-1"}])).unwrap();
        assert_eq!(out["l"], json!([1]));
        assert!(json_patch(&obj, &json!([{"op": "remove", "path": "/l/5"}])).is_err());
        assert!(matches!(
            json_patch(&obj, &json!([{"op": "frobnicate", "path": "/l"}])),
            Err(PatchError::Unprocessable(_))
        ));
    }

    #[test]
    fn strategic_patch_merges_conditions_by_type_and_finalizers_as_a_set() {
        let s = StructuralSchema::for_builtin::<Service>();
        let doc = json!({
            "metadata": {"finalizers": ["a"]},
            "status": {"conditions": [{"type": "A", "status": "True"}, {"type": "B", "status": "False"}],
                       "loadBalancer": {"ingress": [{"ip": "192.0.2.1"}]}}
        });
        let patch = json!({
            "metadata": {"finalizers": ["b", "a"], "$deleteFromPrimitiveList/finalizers": ["a"]},
            "status": {"conditions": [{"type": "B", "status": "True"}, {"type": "C", "status": "True"}],
                       "loadBalancer": {"ingress": [{"ip": "192.0.2.2"}]}}
        });
        let out = strategic_merge_patch(&doc, &patch, s.root()).unwrap();
        assert_eq!(out["metadata"]["finalizers"], json!(["b", "a"]));
        assert_eq!(
            out["status"]["conditions"],
            json!([{"type": "A", "status": "True"}, {"type": "B", "status": "True"}, {"type": "C", "status": "True"}])
        );
        assert_eq!(
            out["status"]["loadBalancer"]["ingress"],
            json!([{"ip": "192.0.2.2"}])
        );
        let del = json!({"status": {"conditions": [{"type": "A", "$patch": "delete"}]}});
        let out = strategic_merge_patch(&out, &del, s.root()).unwrap();
        assert_eq!(out["status"]["conditions"].as_array().unwrap().len(), 2);
    }

    #[test]
    fn strategic_patch_item_without_merge_key_is_unprocessable() {
        let s = StructuralSchema::for_builtin::<Service>();
        let doc = json!({"spec": {"ports": [{"port": 80}]}});
        let patch = json!({"spec": {"ports": [{"name": "x"}]}});
        assert!(matches!(
            strategic_merge_patch(&doc, &patch, s.root()),
            Err(PatchError::Unprocessable(_))
        ));
    }
}
