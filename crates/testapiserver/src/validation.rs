//! Validation shared by every kind: names, object metadata, labels, finalizers, conditions,
//! with apimachinery's messages.
//!
//! Owns the syntax checks (`is_dns1123_subdomain`, `is_dns1123_label`, `is_dns1035_label`,
//! qualified names) and [`validate_object_meta`] / [`validate_object_meta_update`] /
//! [`validate_conditions`], which return [`FieldError`]s. Kind-specific rules live in `kinds`.

use serde_json::{Value, json};

use crate::status::FieldError;

const DNS1123_SUBDOMAIN_MSG: &str = "a lowercase RFC 1123 subdomain must consist of lower case alphanumeric characters, '-' or '.', and must start and end with an alphanumeric character (e.g. 'example.com', regex used for validation is '[a-z0-9]([-a-z0-9]*[a-z0-9])?(\\.[a-z0-9]([-a-z0-9]*[a-z0-9])?)*')";
const DNS1123_LABEL_MSG: &str = "a lowercase RFC 1123 label must consist of lower case alphanumeric characters or '-', and must start and end with an alphanumeric character (e.g. 'my-name',  or '123-abc', regex used for validation is '[a-z0-9]([-a-z0-9]*[a-z0-9])?')";
const DNS1035_LABEL_MSG: &str = "a DNS-1035 label must consist of lower case alphanumeric characters or '-', start with an alphabetic character, and end with an alphanumeric character (e.g. 'my-name',  or 'abc-123', regex used for validation is '[a-z]([-a-z0-9]*[a-z0-9])?')";
const QUALIFIED_NAME_MSG: &str = "name part must consist of alphanumeric characters, '-', '_' or '.', and must start and end with an alphanumeric character (e.g. 'MyName',  or 'my.name',  or '123-abc', regex used for validation is '([A-Za-z0-9][-A-Za-z0-9_.]*)?[A-Za-z0-9]')";
const LABEL_VALUE_MSG: &str = "a valid label must be an empty string or consist of alphanumeric characters, '-', '_' or '.', and must start and end with an alphanumeric character (e.g. 'MyValue',  or 'my_value',  or '12345', regex used for validation is '(([A-Za-z0-9][-A-Za-z0-9_.]*)?[A-Za-z0-9])?')";

fn is_lower_alnum(c: char) -> bool {
    c.is_ascii_lowercase() || c.is_ascii_digit()
}

pub fn is_dns1123_label(s: &str) -> bool {
    !s.is_empty()
        && s.len() <= 63
        && s.chars().all(|c| is_lower_alnum(c) || c == '-')
        && s.starts_with(is_lower_alnum)
        && s.ends_with(is_lower_alnum)
}

pub fn is_dns1123_subdomain(s: &str) -> bool {
    !s.is_empty() && s.len() <= 253 && s.split('.').all(is_dns1123_label)
}

pub fn is_dns1035_label(s: &str) -> bool {
    is_dns1123_label(s) && s.starts_with(|c: char| c.is_ascii_lowercase())
}

/// The name part of a qualified name (label key name, label value when non-empty).
pub fn is_qualified_name_part(s: &str) -> bool {
    let ok = |c: char| c.is_ascii_alphanumeric();
    !s.is_empty()
        && s.len() <= 63
        && s.chars().all(|c| ok(c) || c == '-' || c == '_' || c == '.')
        && s.starts_with(ok)
        && s.ends_with(ok)
}

/// Validates a qualified name (`prefix/name` or `name`).
pub fn validate_qualified_name(value: &str, field: &str) -> Vec<FieldError> {
    let (prefix, name) = match value.split_once('/') {
        Some((p, n)) => (Some(p), n),
        None => (None, value),
    };
    let mut errs = Vec::new();
    if let Some(p) = prefix {
        if p.is_empty() {
            errs.push(FieldError::invalid(
                field,
                json!(value),
                "prefix part must be non-empty",
            ));
        } else if !is_dns1123_subdomain(p) {
            errs.push(FieldError::invalid(
                field,
                json!(value),
                format!("prefix part {DNS1123_SUBDOMAIN_MSG}"),
            ));
        }
    }
    if name.is_empty() {
        errs.push(FieldError::invalid(
            field,
            json!(value),
            "name part must be non-empty",
        ));
    } else if name.len() > 63 {
        errs.push(FieldError::invalid(
            field,
            json!(value),
            "name part must be no more than 63 characters",
        ));
    } else if !is_qualified_name_part(name) {
        errs.push(FieldError::invalid(field, json!(value), QUALIFIED_NAME_MSG));
    }
    errs
}

/// How an object's `metadata.name` must look.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum NameRule {
    Dns1123Subdomain,
    Dns1123Label,
    Dns1035Label,
}

impl NameRule {
    pub fn check(self, name: &str) -> Option<&'static str> {
        match self {
            NameRule::Dns1123Subdomain if !is_dns1123_subdomain(name) => {
                Some(DNS1123_SUBDOMAIN_MSG)
            }
            NameRule::Dns1123Label if !is_dns1123_label(name) => Some(DNS1123_LABEL_MSG),
            NameRule::Dns1035Label if !is_dns1035_label(name) => Some(DNS1035_LABEL_MSG),
            _ => None,
        }
    }
}

fn str_at<'a>(v: &'a Value, pointer: &str) -> Option<&'a str> {
    v.pointer(pointer).and_then(Value::as_str)
}

/// `ValidateObjectMeta`: name, labels, annotations, finalizers, owner references.
pub fn validate_object_meta(obj: &Value, names: NameRule) -> Vec<FieldError> {
    let mut errs = Vec::new();
    match str_at(obj, "/metadata/name") {
        None | Some("") => errs.push(FieldError::required(
            "metadata.name",
            "name or generateName is required",
        )),
        Some(name) => {
            if let Some(msg) = names.check(name) {
                errs.push(FieldError::invalid("metadata.name", json!(name), msg));
            }
        }
    }
    if let Some(labels) = obj.pointer("/metadata/labels").and_then(Value::as_object) {
        for (k, v) in labels {
            errs.extend(validate_qualified_name(k, "metadata.labels"));
            let v = v.as_str().unwrap_or_default();
            if !(v.is_empty() || is_qualified_name_part(v)) {
                let msg = if v.len() > 63 {
                    "must be no more than 63 characters".to_string()
                } else {
                    LABEL_VALUE_MSG.to_string()
                };
                errs.push(FieldError::invalid("metadata.labels", json!(v), msg));
            }
        }
    }
    if let Some(ann) = obj
        .pointer("/metadata/annotations")
        .and_then(Value::as_object)
    {
        let mut total = 0usize;
        for (k, v) in ann {
            errs.extend(validate_qualified_name(
                &k.to_lowercase(),
                "metadata.annotations",
            ));
            total += k.len() + v.as_str().map(str::len).unwrap_or_default();
        }
        if total > 256 * 1024 {
            errs.push(FieldError::too_long("metadata.annotations", 256 * 1024));
        }
    }
    if let Some(fins) = obj
        .pointer("/metadata/finalizers")
        .and_then(Value::as_array)
    {
        for (i, f) in fins.iter().enumerate() {
            let f = f.as_str().unwrap_or_default();
            errs.extend(validate_qualified_name(
                f,
                &format!("metadata.finalizers[{i}]"),
            ));
        }
    }
    if let Some(refs) = obj
        .pointer("/metadata/ownerReferences")
        .and_then(Value::as_array)
    {
        let mut controllers = 0;
        for (i, r) in refs.iter().enumerate() {
            for field in ["apiVersion", "kind", "name", "uid"] {
                if r.get(field)
                    .and_then(Value::as_str)
                    .is_none_or(str::is_empty)
                {
                    errs.push(FieldError::invalid(
                        format!("metadata.ownerReferences[{i}].{field}"),
                        json!(""),
                        format!("{field} must not be empty"),
                    ));
                }
            }
            if r.get("controller").and_then(Value::as_bool) == Some(true) {
                controllers += 1;
            }
        }
        if controllers > 1 {
            errs.push(FieldError::invalid(
                "metadata.ownerReferences",
                Value::Array(refs.clone()),
                "Only one reference can have Controller set to true",
            ));
        }
    }
    errs
}

/// `ValidateObjectMetaUpdate`: identity fields immutable, no new finalizers while deleting.
pub fn validate_object_meta_update(new: &Value, old: &Value) -> Vec<FieldError> {
    let mut errs = Vec::new();
    for (field, pointer) in [
        ("metadata.uid", "/metadata/uid"),
        ("metadata.namespace", "/metadata/namespace"),
    ] {
        let n = new.pointer(pointer).cloned().unwrap_or(Value::Null);
        let o = old.pointer(pointer).cloned().unwrap_or(Value::Null);
        if n != o {
            errs.push(FieldError::invalid(field, n, "field is immutable"));
        }
    }
    if old
        .pointer("/metadata/deletionTimestamp")
        .is_some_and(|v| !v.is_null())
    {
        let olds: Vec<&str> = old
            .pointer("/metadata/finalizers")
            .and_then(Value::as_array)
            .map(|a| a.iter().filter_map(Value::as_str).collect())
            .unwrap_or_default();
        let mut extra: Vec<&str> = new
            .pointer("/metadata/finalizers")
            .and_then(Value::as_array)
            .map(|a| {
                a.iter()
                    .filter_map(Value::as_str)
                    .filter(|f| !olds.contains(f))
                    .collect()
            })
            .unwrap_or_default();
        extra.sort_unstable();
        extra.dedup();
        if !extra.is_empty() {
            errs.push(FieldError::forbidden(
                "metadata.finalizers",
                format!(
                    "no new finalizers can be added if the object is being deleted, found new finalizers []string{{{}}}",
                    extra.iter().map(|f| format!("{f:?}")).collect::<Vec<_>>().join(", ")
                ),
            ));
        }
    }
    errs
}

/// `metav1validation.ValidateConditions` for `[]metav1.Condition` lists.
pub fn validate_conditions(conditions: Option<&Value>, field: &str) -> Vec<FieldError> {
    let mut errs = Vec::new();
    let Some(list) = conditions.and_then(Value::as_array) else {
        return errs;
    };
    let mut seen: Vec<&str> = Vec::new();
    for (i, c) in list.iter().enumerate() {
        let at = |f: &str| format!("{field}[{i}].{f}");
        let ty = c.get("type").and_then(Value::as_str).unwrap_or_default();
        if ty.is_empty() {
            errs.push(FieldError::required(at("type"), "must be set"));
        } else {
            errs.extend(validate_qualified_name(ty, &at("type")));
            if seen.contains(&ty) {
                errs.push(FieldError::duplicate(at("type"), json!(ty)));
            }
            seen.push(ty);
        }
        match c.get("status").and_then(Value::as_str) {
            Some("True" | "False" | "Unknown") => {}
            other => errs.push(FieldError::not_supported(
                at("status"),
                json!(other.unwrap_or_default()),
                &["False", "True", "Unknown"],
            )),
        }
        if c.get("lastTransitionTime").is_none_or(Value::is_null) {
            errs.push(FieldError::required(
                at("lastTransitionTime"),
                "must be set",
            ));
        }
        match c.get("reason").and_then(Value::as_str) {
            None | Some("") => errs.push(FieldError::required(at("reason"), "must be set")),
            Some(reason) => {
                let ok_start = reason.starts_with(|c: char| c.is_ascii_alphabetic());
                let ok_end = reason.ends_with(|c: char| c.is_ascii_alphanumeric() || c == '_');
                let ok_chars = reason
                    .chars()
                    .all(|c| c.is_ascii_alphanumeric() || matches!(c, '_' | ',' | ':'));
                if !(ok_start && ok_end && ok_chars) {
                    errs.push(FieldError::invalid(
                        at("reason"),
                        json!(reason),
                        "a condition reason must start with alphabetic character, optionally followed by a string of alphanumeric characters or '_,:', and must end with an alphanumeric character or '_' (e.g. 'my_name',  or 'MY_NAME',  or 'MyName', regex used for validation is '[A-Za-z]([A-Za-z0-9_,:]*[A-Za-z0-9_])?')",
                    ));
                }
                if reason.len() > 1024 {
                    errs.push(FieldError::too_long(at("reason"), 1024));
                }
            }
        }
        if c.get("message")
            .and_then(Value::as_str)
            .is_some_and(|m| m.len() > 32768)
        {
            errs.push(FieldError::too_long(at("message"), 32768));
        }
        if c.get("observedGeneration")
            .and_then(Value::as_i64)
            .is_some_and(|g| g < 0)
        {
            errs.push(FieldError::invalid(
                at("observedGeneration"),
                c["observedGeneration"].clone(),
                "must be greater than or equal to zero",
            ));
        }
    }
    errs
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn dns_names_follow_rfc_1123_and_1035() {
        assert!(is_dns1123_subdomain("web.example.com"));
        assert!(!is_dns1123_subdomain("Web"));
        assert!(is_dns1123_label("1abc"));
        assert!(!is_dns1035_label("1abc"));
        assert!(is_dns1035_label("abc-1"));
        assert!(!is_dns1123_label("a.b"));
    }

    #[test]
    fn new_finalizer_on_deleting_object_is_forbidden() {
        let old = json!({"metadata": {"deletionTimestamp": "2024-01-01T00:00:00Z", "finalizers": ["a/x"]}});
        let new = json!({"metadata": {"deletionTimestamp": "2024-01-01T00:00:00Z", "finalizers": ["a/x", "b/y"]}});
        let errs = validate_object_meta_update(&new, &old);
        assert_eq!(
            errs[0].to_string(),
            "metadata.finalizers: Forbidden: no new finalizers can be added if the object is being deleted, found new finalizers []string{\"b/y\"}"
        );
    }

    #[test]
    fn conditions_need_reason_status_and_time() {
        let c =
            json!([{"type": "ferrolb.io/IPAllocated", "status": "Yes", "reason": "bad reason"}]);
        let errs: Vec<String> = validate_conditions(Some(&c), "status.conditions")
            .iter()
            .map(|e| e.to_string())
            .collect();
        assert!(
            errs.iter()
                .any(|e| e.starts_with("status.conditions[0].status: Unsupported value: \"Yes\"")),
            "{errs:?}"
        );
        assert!(
            errs.iter().any(
                |e| e == "status.conditions[0].lastTransitionTime: Required value: must be set"
            ),
            "{errs:?}"
        );
        assert!(
            errs.iter().any(
                |e| e.starts_with("status.conditions[0].reason: Invalid value: \"bad reason\"")
            ),
            "{errs:?}"
        );
    }
}
