//! docs/crd-reference.md documents every field the CRDs have, in the section of its kind.

// Test helpers outside `#[test]` functions may fail loudly on fixtures the test itself wrote.
#![allow(clippy::expect_used, clippy::unwrap_used)]

use std::fs;
use std::path::PathBuf;

use ferrolb_model::crd::ResourceKind;
use ferrolb_model::manifests::openapi_schema;
use serde_json::Value;

/// Field paths below `value`'s properties, not descending into Kubernetes' own types (label
/// selectors, Secret references, conditions), whose fields Kubernetes documents.
fn field_paths(schema: &Value, prefix: &str, out: &mut Vec<String>) {
    let Some(properties) = schema.get("properties").and_then(Value::as_object) else {
        return;
    };
    if properties.contains_key("matchLabels")
        || properties.contains_key("lastTransitionTime") && prefix.ends_with("conditions[]")
    {
        return;
    }
    for (name, property) in properties {
        let path = if prefix.is_empty() {
            name.clone()
        } else {
            format!("{prefix}.{name}")
        };
        out.push(path.clone());
        if name == "passwordSecret" || name == "conditions" || name == "preference" {
            continue;
        }
        field_paths(property, &path, out);
        if let Some(items) = property.get("items") {
            field_paths(items, &format!("{path}[]"), out);
        }
    }
}

#[test]
fn crd_reference_documents_every_field() {
    let reference = fs::read_to_string(
        PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("../../docs/crd-reference.md"),
    )
    .expect("docs/crd-reference.md exists");
    let mut missing = Vec::new();
    let mut checked = 0;
    for kind in ResourceKind::ALL {
        let start = reference
            .find(&format!("\n## {}\n", kind.as_str()))
            .unwrap_or_else(|| panic!("docs/crd-reference.md has no section for {kind}"));
        let rest = &reference[start + 1..];
        let section = &rest[..rest[3..].find("\n## ").map_or(rest.len(), |end| end + 3)];
        let schema = openapi_schema(kind).expect("schema generates");
        let mut paths = Vec::new();
        for part in ["spec", "status"] {
            field_paths(&schema["properties"][part], "", &mut paths);
        }
        checked += paths.len();
        for path in paths {
            let leaf = path.rsplit(['.', ']']).next().unwrap_or(&path);
            if !section.contains(&format!("`{path}`")) && !section.contains(&format!("`{leaf}`")) {
                missing.push(format!("{kind}: {path}"));
            }
        }
    }
    // Every kind's fields, so a broken walk cannot pass by checking nothing.
    assert_eq!(checked, 66);
    assert!(
        missing.is_empty(),
        "undocumented fields in docs/crd-reference.md: {missing:#?}"
    );
}
