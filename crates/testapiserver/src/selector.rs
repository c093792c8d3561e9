//! Label and field selectors, parsed and matched as kube-apiserver does.
//!
//! Owns [`LabelSelector`] (`=`, `==`, `!=`, `in`, `notin`, existence `key`, non-existence
//! `!key`, and the numeric `<`/`>`) and [`FieldSelector`] (`=`, `==`, `!=` on the field labels a
//! resource supports, with `\` escapes). Which field labels a resource supports is decided by the
//! catalog; this module only parses and matches.

use std::collections::BTreeMap;

use serde_json::Value;

#[derive(Clone, Debug, PartialEq, Eq)]
enum LabelOp {
    Equals(String),
    NotEquals(String),
    In(Vec<String>),
    NotIn(Vec<String>),
    Exists,
    DoesNotExist,
    GreaterThan(i64),
    LessThan(i64),
}

/// A parsed `labelSelector`.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct LabelSelector {
    requirements: Vec<(String, LabelOp)>,
}

/// A selector that could not be parsed; the message is kube-apiserver's wording.
#[derive(Clone, Debug, PartialEq, Eq, thiserror::Error)]
#[error("{0}")]
pub struct SelectorError(pub String);

fn valid_label_key(key: &str) -> bool {
    let (prefix, name) = match key.rsplit_once('/') {
        Some((p, n)) => (Some(p), n),
        None => (None, key),
    };
    if let Some(p) = prefix
        && (p.is_empty() || p.len() > 253 || !crate::validation::is_dns1123_subdomain(p))
    {
        return false;
    }
    crate::validation::is_qualified_name_part(name)
}

fn valid_label_value(v: &str) -> bool {
    v.is_empty() || crate::validation::is_qualified_name_part(v)
}

/// Splits on commas that are not inside parentheses.
fn split_requirements(s: &str) -> Vec<&str> {
    let mut out = Vec::new();
    let mut depth = 0i32;
    let mut start = 0;
    for (i, c) in s.char_indices() {
        match c {
            '(' => depth += 1,
            ')' => depth -= 1,
            ',' if depth == 0 => {
                out.push(&s[start..i]);
                start = i + 1;
            }
            _ => {}
        }
    }
    out.push(&s[start..]);
    out
}

fn parse_set(rest: &str, whole: &str) -> Result<Vec<String>, SelectorError> {
    let rest = rest.trim();
    let inner = rest
        .strip_prefix('(')
        .and_then(|r| r.strip_suffix(')'))
        .ok_or_else(|| {
            SelectorError(format!(
                "unable to parse requirement: found '{rest}', expected: '('  in \"{whole}\""
            ))
        })?;
    let values: Vec<String> = inner.split(',').map(|v| v.trim().to_string()).collect();
    for v in &values {
        if !valid_label_value(v) {
            return Err(SelectorError(format!(
                "unable to parse requirement: values[0][{}]: Invalid value: \"{v}\": a valid label must be an empty string or consist of alphanumeric characters, '-', '_' or '.', and must start and end with an alphanumeric character",
                whole
            )));
        }
    }
    Ok(values)
}

impl LabelSelector {
    pub fn parse(s: &str) -> Result<LabelSelector, SelectorError> {
        let mut requirements = Vec::new();
        if s.trim().is_empty() {
            return Ok(LabelSelector { requirements });
        }
        for raw in split_requirements(s) {
            let r = raw.trim();
            if r.is_empty() {
                return Err(SelectorError(format!(
                    "found '', expected: identifier in \"{s}\""
                )));
            }
            let (key, op) = if let Some(key) = r.strip_prefix('!') {
                (key.trim().to_string(), LabelOp::DoesNotExist)
            } else if let Some((k, v)) = r.split_once("!=") {
                (
                    k.trim().to_string(),
                    LabelOp::NotEquals(v.trim().to_string()),
                )
            } else if let Some((k, v)) = r.split_once("==") {
                (k.trim().to_string(), LabelOp::Equals(v.trim().to_string()))
            } else if let Some((k, v)) = r.split_once('=') {
                (k.trim().to_string(), LabelOp::Equals(v.trim().to_string()))
            } else if let Some((k, v)) = r.split_once('>') {
                let n = v.trim().parse().map_err(|_| {
                    SelectorError(format!("unable to parse requirement: for 'Gt', 'Lt' operators, the value must be an integer: {r}"))
                })?;
                (k.trim().to_string(), LabelOp::GreaterThan(n))
            } else if let Some((k, v)) = r.split_once('<') {
                let n = v.trim().parse().map_err(|_| {
                    SelectorError(format!("unable to parse requirement: for 'Gt', 'Lt' operators, the value must be an integer: {r}"))
                })?;
                (k.trim().to_string(), LabelOp::LessThan(n))
            } else {
                let mut parts = r.splitn(2, char::is_whitespace);
                let key = parts.next().unwrap_or_default().trim().to_string();
                let rest = parts.next().unwrap_or_default().trim();
                if rest.is_empty() {
                    (key, LabelOp::Exists)
                } else if let Some(set) = rest.strip_prefix("notin") {
                    (key, LabelOp::NotIn(parse_set(set, r)?))
                } else if let Some(set) = rest.strip_prefix("in") {
                    (key, LabelOp::In(parse_set(set, r)?))
                } else {
                    return Err(SelectorError(format!(
                        "unable to parse requirement: found '{rest}', expected: in, notin, =, ==, !=, gt, lt"
                    )));
                }
            };
            if !valid_label_key(&key) {
                return Err(SelectorError(format!(
                    "unable to parse requirement: key: Invalid value: \"{key}\": name part must consist of alphanumeric characters, '-', '_' or '.', and must start and end with an alphanumeric character"
                )));
            }
            if let LabelOp::Equals(v) | LabelOp::NotEquals(v) = &op
                && !valid_label_value(v)
            {
                return Err(SelectorError(format!(
                    "unable to parse requirement: values[0][{key}]: Invalid value: \"{v}\": a valid label must be an empty string or consist of alphanumeric characters, '-', '_' or '.', and must start and end with an alphanumeric character"
                )));
            }
            requirements.push((key, op));
        }
        Ok(LabelSelector { requirements })
    }

    pub fn is_empty(&self) -> bool {
        self.requirements.is_empty()
    }

    pub fn matches(&self, labels: &BTreeMap<String, String>) -> bool {
        self.requirements.iter().all(|(key, op)| {
            let v = labels.get(key);
            match op {
                LabelOp::Equals(x) => v == Some(x),
                LabelOp::NotEquals(x) => v != Some(x),
                LabelOp::In(xs) => v.is_some_and(|v| xs.contains(v)),
                LabelOp::NotIn(xs) => !v.is_some_and(|v| xs.contains(v)),
                LabelOp::Exists => v.is_some(),
                LabelOp::DoesNotExist => v.is_none(),
                LabelOp::GreaterThan(n) => v
                    .and_then(|v| v.parse::<i64>().ok())
                    .is_some_and(|v| v > *n),
                LabelOp::LessThan(n) => v
                    .and_then(|v| v.parse::<i64>().ok())
                    .is_some_and(|v| v < *n),
            }
        })
    }

    /// Matches an object's `metadata.labels`.
    pub fn matches_object(&self, obj: &Value) -> bool {
        if self.is_empty() {
            return true;
        }
        let labels: BTreeMap<String, String> = obj
            .pointer("/metadata/labels")
            .and_then(Value::as_object)
            .map(|m| {
                m.iter()
                    .filter_map(|(k, v)| v.as_str().map(|s| (k.clone(), s.to_string())))
                    .collect()
            })
            .unwrap_or_default();
        self.matches(&labels)
    }
}

/// A parsed `fieldSelector`: `(field label, must equal?, value)` requirements.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct FieldSelector {
    requirements: Vec<(String, bool, String)>,
}

/// Splits on an unescaped separator.
fn split_unescaped(s: &str, sep: char) -> Vec<String> {
    let mut out = Vec::new();
    let mut cur = String::new();
    let mut escaped = false;
    for c in s.chars() {
        if escaped {
            cur.push('\\');
            cur.push(c);
            escaped = false;
        } else if c == '\\' {
            escaped = true;
        } else if c == sep {
            out.push(std::mem::take(&mut cur));
        } else {
            cur.push(c);
        }
    }
    if escaped {
        cur.push('\\');
    }
    out.push(cur);
    out
}

fn unescape(s: &str) -> Result<String, SelectorError> {
    let mut out = String::new();
    let mut chars = s.chars();
    while let Some(c) = chars.next() {
        if c == '\\' {
            match chars.next() {
                Some(e @ ('\\' | ',' | '=' | '!')) => out.push(e),
                Some(other) => {
                    return Err(SelectorError(format!(
                        "invalid field selector: invalid escape sequence: \\{other}"
                    )));
                }
                None => {
                    return Err(SelectorError(
                        "invalid field selector: unterminated escape".into(),
                    ));
                }
            }
        } else {
            out.push(c);
        }
    }
    Ok(out)
}

impl FieldSelector {
    pub fn parse(s: &str) -> Result<FieldSelector, SelectorError> {
        let mut requirements = Vec::new();
        if s.trim().is_empty() {
            return Ok(FieldSelector { requirements });
        }
        for part in split_unescaped(s, ',') {
            let (field, equal, value) = if let Some((f, v)) = part.split_once("!=") {
                (f, false, v)
            } else if let Some((f, v)) = part.split_once("==") {
                (f, true, v)
            } else if let Some((f, v)) = part.split_once('=') {
                (f, true, v)
            } else {
                return Err(SelectorError(format!(
                    "invalid selector: '{s}'; can't understand '{part}'"
                )));
            };
            requirements.push((field.trim().to_string(), equal, unescape(value)?));
        }
        Ok(FieldSelector { requirements })
    }

    pub fn is_empty(&self) -> bool {
        self.requirements.is_empty()
    }

    /// Field labels the selector uses.
    pub fn fields(&self) -> impl Iterator<Item = &str> {
        self.requirements.iter().map(|(f, _, _)| f.as_str())
    }

    /// Matches with `field_value` answering the value of a field label for the object.
    pub fn matches(&self, field_value: &dyn Fn(&str) -> String) -> bool {
        self.requirements
            .iter()
            .all(|(f, eq, v)| (field_value(f) == *v) == *eq)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn labels(pairs: &[(&str, &str)]) -> BTreeMap<String, String> {
        pairs
            .iter()
            .map(|(k, v)| (k.to_string(), v.to_string()))
            .collect()
    }

    #[test]
    fn label_selector_operators_match_like_kube() {
        let l = labels(&[("app", "web"), ("tier", "front"), ("rank", "5")]);
        let ok = |s: &str| LabelSelector::parse(s).unwrap().matches(&l);
        assert!(ok("app=web"));
        assert!(ok("app==web,tier!=back"));
        assert!(ok("tier in (front, back)"));
        assert!(!ok("tier notin (front)"));
        assert!(ok("app"));
        assert!(ok("!missing"));
        assert!(!ok("!app"));
        assert!(ok("rank>4,rank<6"));
        assert!(ok("example.com/x notin (a)"));
        assert!(!ok("missing in (a)"));
    }

    #[test]
    fn malformed_label_selectors_are_rejected() {
        assert!(LabelSelector::parse("app in front").is_err());
        assert!(LabelSelector::parse("a b c").is_err());
        assert!(LabelSelector::parse("app=we b").is_err());
        assert!(LabelSelector::parse("-bad=x").is_err());
    }

    #[test]
    fn field_selector_handles_escapes_and_inequality() {
        let f =
            FieldSelector::parse(r"metadata.name=a\,b,metadata.namespace!=kube-system").unwrap();
        let value = |field: &str| match field {
            "metadata.name" => "a,b".to_string(),
            "metadata.namespace" => "default".to_string(),
            _ => String::new(),
        };
        assert!(f.matches(&value));
        assert_eq!(
            f.fields().collect::<Vec<_>>(),
            vec!["metadata.name", "metadata.namespace"]
        );
        assert!(FieldSelector::parse("metadata.name").is_err());
    }
}
