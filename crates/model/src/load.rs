//! Reading YAML (or JSON) text: splitting a file into documents with their line numbers,
//! parsing each one on its own (a broken document does not hide the others), and decoding a
//! document into a ferrolb resource with the path of any field that does not fit, including
//! fields the resource does not have (which the API server would drop without a word).
//!
//! Owns the text-to-object step. Which documents are ferrolb's, MetalLB's or neither is decided
//! by the callers (`check`, `migrate`, the speaker's config-directory source).

use serde::de::DeserializeOwned;
use serde_json::Value;
use thiserror::Error;

use crate::crd::{
    API_VERSION, BFDProfile, BGPAdvertisement, BGPPeer, Community, ConfigObject, IPAddressPool,
    L2Advertisement, ResourceKind,
};
use crate::manifests::openapi_schema;

/// One YAML document of a file, before parsing.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RawDocument<'a> {
    /// 1-based position among the file's non-empty documents.
    pub index: usize,
    /// 1-based line of the document's first line of content.
    pub line: usize,
    /// The document's text (from just after its `---` line).
    pub text: &'a str,
    /// 1-based line `text` starts at, for translating parser positions.
    first_text_line: usize,
}

/// Why a document could not be read as a resource.
#[derive(Debug, Clone, PartialEq, Eq, Error)]
pub enum DocumentError {
    /// The text is not valid YAML.
    #[error("line {line}: {message}")]
    Yaml {
        /// 1-based line in the file.
        line: usize,
        /// The parser's message.
        message: String,
    },
    /// The document is YAML, but not a mapping with `apiVersion` and `kind`.
    #[error("not a Kubernetes object: {0}")]
    NotAnObject(String),
    /// An `apiVersion` in group ferrolb.io with a kind or version ferrolb does not have.
    #[error(
        "{api_version} {kind} is not a ferrolb resource; the kinds are {kinds} in {API_VERSION}"
    )]
    UnknownFerrolbKind {
        /// As written.
        api_version: String,
        /// As written.
        kind: String,
        /// The kinds there are.
        kinds: String,
    },
    /// The resource's schema could not be generated (a bug in ferrolb, not in the input).
    #[error("internal error: {0}")]
    Schema(String),
    /// A field has the wrong type or value for the resource.
    #[error("{field}: {message}")]
    Field {
        /// Path such as `spec.myASN`.
        field: String,
        /// What is wrong.
        message: String,
    },
}

/// Splits a YAML stream into its non-empty documents. A document starts after a line that is
/// `---` (optionally followed by a space and content) and ends at the next one or at a `...`
/// line; YAML allows those markers only at the start of a line, so this never splits inside a
/// value.
pub fn split_documents(text: &str) -> Vec<RawDocument<'_>> {
    let mut documents = Vec::new();
    let mut start_offset = 0;
    let mut start_line = 1;
    let mut offset = 0;
    for (line_index, line) in text.split_inclusive('\n').enumerate() {
        let line_number = line_index + 1;
        let trimmed = line.trim_end_matches(['\n', '\r']);
        let is_start =
            trimmed == "---" || trimmed.starts_with("--- ") || trimmed.starts_with("---\t");
        let is_end = trimmed == "..." || trimmed.starts_with("... ");
        if is_start || is_end {
            push_document(&mut documents, &text[start_offset..offset], start_line);
            // Content on the `---` line itself ("--- {a: 1}") belongs to the new document.
            start_offset = if is_start {
                offset + 3
            } else {
                offset + line.len()
            };
            start_line = if is_start {
                line_number
            } else {
                line_number + 1
            };
        }
        offset += line.len();
    }
    push_document(&mut documents, &text[start_offset..], start_line);
    documents
}

fn push_document<'a>(documents: &mut Vec<RawDocument<'a>>, body: &'a str, first_line: usize) {
    if let Some(content_line) = first_content_line(body) {
        documents.push(RawDocument {
            index: documents.len() + 1,
            line: first_line + content_line,
            text: body,
            first_text_line: first_line,
        });
    }
}

/// The 0-based line (within `body`) of the first line that is neither blank nor a comment.
fn first_content_line(body: &str) -> Option<usize> {
    body.lines().position(|line| {
        let trimmed = line.trim();
        !trimmed.is_empty() && !trimmed.starts_with('#')
    })
}

impl RawDocument<'_> {
    /// Parses the document as YAML into a JSON value.
    pub fn parse(&self) -> Result<Value, DocumentError> {
        let options = serde_saphyr::options! { with_snippet: false };
        serde_saphyr::from_str_with_options::<Value>(self.text, options).map_err(|error| {
            let error = error.without_snippet();
            let line = error
                .location()
                .map_or(self.line, |l| self.first_text_line + l.line() as usize - 1);
            DocumentError::Yaml {
                line,
                message: yaml_message(&error.to_string()),
            }
        })
    }
}

/// The parser's message without its own "line X column Y" prefix (we print the file's line).
fn yaml_message(rendered: &str) -> String {
    let message = rendered.strip_prefix("error: ").unwrap_or(rendered);
    match message.split_once(": ") {
        Some((position, rest)) if position.starts_with("line ") => rest.to_owned(),
        _ => message.to_owned(),
    }
}

/// `apiVersion` and `kind` of a parsed document.
pub fn type_meta(document: &Value) -> Result<(&str, &str), DocumentError> {
    let Value::Object(map) = document else {
        return Err(DocumentError::NotAnObject(
            "expected a mapping with apiVersion and kind".to_owned(),
        ));
    };
    let field = |name: &str| map.get(name).and_then(Value::as_str);
    match (field("apiVersion"), field("kind")) {
        (Some(api_version), Some(kind)) => Ok((api_version, kind)),
        (None, _) => Err(DocumentError::NotAnObject(
            "apiVersion is missing".to_owned(),
        )),
        (_, None) => Err(DocumentError::NotAnObject("kind is missing".to_owned())),
    }
}

/// Whether a document claims to be a ferrolb resource (group ferrolb.io).
pub fn is_ferrolb(document: &Value) -> bool {
    type_meta(document).is_ok_and(|(api_version, _)| api_version.starts_with("ferrolb.io/"))
}

/// Decodes a ferrolb.io document into its resource. Fields that do not exist in the resource are
/// errors, as with `kubectl apply` (strict field validation), with a suggestion when the name is
/// close to a real one.
pub fn decode_object(document: &Value) -> Result<ConfigObject, Vec<DocumentError>> {
    let (api_version, kind_text) = type_meta(document).map_err(|e| vec![e])?;
    let kind = ResourceKind::from_kind(kind_text)
        .filter(|_| api_version == API_VERSION)
        .ok_or_else(|| {
            vec![DocumentError::UnknownFerrolbKind {
                api_version: api_version.to_owned(),
                kind: kind_text.to_owned(),
                kinds: ResourceKind::ALL.map(ResourceKind::as_str).join(", "),
            }]
        })?;
    let schema =
        openapi_schema(kind).map_err(|error| vec![DocumentError::Schema(error.to_string())])?;
    let defaulted = with_root_defaults(schema, document);
    let document = &defaulted;
    let mut errors: Vec<DocumentError> = unknown_root_fields(schema, document)
        .into_iter()
        .map(|(field, message)| DocumentError::Field { field, message })
        .collect();
    let decoded = match kind {
        ResourceKind::IPAddressPool => {
            typed::<IPAddressPool>(document).map(ConfigObject::IPAddressPool)
        }
        ResourceKind::BGPPeer => typed::<BGPPeer>(document).map(ConfigObject::BGPPeer),
        ResourceKind::BGPAdvertisement => {
            typed::<BGPAdvertisement>(document).map(ConfigObject::BGPAdvertisement)
        }
        ResourceKind::L2Advertisement => {
            typed::<L2Advertisement>(document).map(ConfigObject::L2Advertisement)
        }
        ResourceKind::Community => typed::<Community>(document).map(ConfigObject::Community),
        ResourceKind::BFDProfile => typed::<BFDProfile>(document).map(ConfigObject::BFDProfile),
    };
    match decoded {
        Ok(object) if errors.is_empty() => Ok(object),
        Ok(_) => Err(errors),
        Err(error) => {
            errors.push(error);
            Err(errors)
        }
    }
}

/// Fills top-level fields the schema defaults (an omitted `spec` where `{}` is valid), as the
/// API server does before storing an object.
fn with_root_defaults(schema: &Value, document: &Value) -> Value {
    let mut document = document.clone();
    if let (Some(properties), Value::Object(map)) = (
        schema.get("properties").and_then(Value::as_object),
        &mut document,
    ) {
        for (name, property) in properties {
            if let Some(default) = property.get("default")
                && !map.contains_key(name)
            {
                map.insert(name.clone(), default.clone());
            }
        }
    }
    document
}

/// Deserializes with the path of the failing field.
pub(crate) fn typed<T: DeserializeOwned>(document: &Value) -> Result<T, DocumentError> {
    serde_path_to_error::deserialize::<_, T>(document).map_err(|error| {
        let field = error.path().to_string();
        let inner = error.into_inner().to_string();
        // serde reports a missing field at its parent ("spec: missing field `myASN`").
        let (field, message) = match inner.strip_prefix("missing field `") {
            Some(rest) => {
                let name = rest.trim_end_matches('`');
                let parent = if field == "." {
                    String::new()
                } else {
                    format!("{field}.")
                };
                (
                    format!("{parent}{name}"),
                    "required field is missing".to_owned(),
                )
            }
            None => (field, inner),
        };
        DocumentError::Field { field, message }
    })
}

/// Paths (with a message) of the fields of `document` that `kind`'s schema does not have.
pub fn unknown_fields(kind: ResourceKind, document: &Value) -> Vec<(String, String)> {
    match openapi_schema(kind) {
        Ok(schema) => unknown_root_fields(schema, document),
        Err(_) => Vec::new(),
    }
}

fn unknown_root_fields(schema: &Value, document: &Value) -> Vec<(String, String)> {
    let mut found = Vec::new();
    if let Value::Object(map) = document {
        for (key, value) in map {
            // Kubernetes accepts these on every object without listing them in the schema.
            if matches!(key.as_str(), "apiVersion" | "kind" | "metadata") {
                continue;
            }
            walk_unknown(schema, key, value, key.clone(), &mut found);
        }
    }
    found
}

/// Paths (with a message) of the fields of `value` that `schema` (an OpenAPI schema with
/// inlined subschemas) does not have.
pub fn unknown_fields_against(schema: &Value, value: &Value) -> Vec<(String, String)> {
    let mut found = Vec::new();
    if let Value::Object(map) = value {
        for (key, child) in map {
            walk_unknown(schema, key, child, key.clone(), &mut found);
        }
    }
    found
}

fn walk_unknown(
    parent_schema: &Value,
    key: &str,
    value: &Value,
    path: String,
    found: &mut Vec<(String, String)>,
) {
    let properties = parent_schema.get("properties").and_then(Value::as_object);
    let schema = match properties.and_then(|p| p.get(key)) {
        Some(schema) => schema,
        None => match parent_schema.get("additionalProperties") {
            Some(schema) if schema.is_object() => schema,
            _ => {
                let known: Vec<&str> = properties
                    .map(|p| p.keys().map(String::as_str).collect())
                    .unwrap_or_default();
                let message = match closest(key, &known) {
                    Some(suggestion) => format!("unknown field (did you mean {suggestion}?)"),
                    None => "unknown field".to_owned(),
                };
                found.push((path, message));
                return;
            }
        },
    };
    descend(schema, value, path, found);
}

fn descend(schema: &Value, value: &Value, path: String, found: &mut Vec<(String, String)>) {
    if schema.get("x-kubernetes-preserve-unknown-fields") == Some(&Value::Bool(true)) {
        return;
    }
    match value {
        Value::Object(map) => {
            let open =
                schema.get("properties").is_none() && schema.get("additionalProperties").is_none();
            if open {
                return;
            }
            for (key, child) in map {
                walk_unknown(schema, key, child, format!("{path}.{key}"), found);
            }
        }
        Value::Array(items) => {
            if let Some(item_schema) = schema.get("items") {
                for (index, item) in items.iter().enumerate() {
                    descend(item_schema, item, format!("{path}[{index}]"), found);
                }
            }
        }
        _ => {}
    }
}

/// The known name closest to a misspelt one, when it is close enough to be a likely typo.
fn closest<'a>(unknown: &str, known: &[&'a str]) -> Option<&'a str> {
    let unknown_lower = unknown.to_ascii_lowercase();
    known
        .iter()
        .map(|k| (edit_distance(&unknown_lower, &k.to_ascii_lowercase()), *k))
        .filter(|(distance, k)| *distance <= 2.max(k.len() / 4))
        .min()
        .map(|(_, k)| k)
}

fn edit_distance(a: &str, b: &str) -> usize {
    let b: Vec<char> = b.chars().collect();
    let mut previous: Vec<usize> = (0..=b.len()).collect();
    for (i, ca) in a.chars().enumerate() {
        let mut current = vec![i + 1];
        for (j, cb) in b.iter().enumerate() {
            let substitution = previous[j] + usize::from(ca != *cb);
            current.push(substitution.min(previous[j + 1] + 1).min(current[j] + 1));
        }
        previous = current;
    }
    previous[b.len()]
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn documents_are_numbered_and_located_skipping_empty_ones() {
        let text =
            "---\n# only a comment\n---\napiVersion: v1\nkind: A\n---\n\n  \n---\nkind: B\n...\n";
        let documents = split_documents(text);
        let summary: Vec<(usize, usize, &str)> = documents
            .iter()
            .map(|d| (d.index, d.line, d.text.trim()))
            .collect();
        assert_eq!(
            summary,
            vec![(1, 4, "apiVersion: v1\nkind: A"), (2, 10, "kind: B")]
        );
    }

    #[test]
    fn a_file_without_separators_is_one_document() {
        let documents = split_documents("# header\napiVersion: v1\nkind: A\n");
        assert_eq!(documents.len(), 1);
        assert_eq!(documents[0].line, 2);
    }

    #[test]
    fn dashes_inside_a_block_scalar_do_not_split() {
        let text = "data:\n  config: |\n    ---\n    a: 1\n";
        let documents = split_documents(text);
        assert_eq!(documents.len(), 1);
        assert_eq!(
            documents[0].parse().unwrap(),
            serde_json::json!({"data": {"config": "---\na: 1\n"}})
        );
    }

    #[test]
    fn yaml_errors_carry_the_line_in_the_file() {
        let text = "apiVersion: v1\nkind: A\n---\napiVersion: v1\nspec: [\n";
        let documents = split_documents(text);
        let error = documents[1].parse().unwrap_err();
        let DocumentError::Yaml { line, .. } = error else {
            panic!("expected a YAML error, got {error:?}");
        };
        assert_eq!(line, 5);
    }

    #[test]
    fn community_values_stay_strings() {
        // YAML 1.1 would read 65535:65282 as a base-60 number; Kubernetes tooling does not.
        let document = &split_documents("communities: [65535:65282]\n")[0];
        assert_eq!(
            document.parse().unwrap(),
            serde_json::json!({"communities": ["65535:65282"]})
        );
    }

    #[test]
    fn wrong_types_are_reported_with_their_path() {
        let document = serde_json::json!({
            "apiVersion": "ferrolb.io/v1beta1",
            "kind": "BGPPeer",
            "metadata": {"name": "a"},
            "spec": {"myASN": "sixty-four", "peerASN": 1, "peerAddress": "10.0.0.1"}
        });
        assert_eq!(
            decode_object(&document).unwrap_err(),
            vec![DocumentError::Field {
                field: "spec.myASN".into(),
                message: "invalid type: string \"sixty-four\", expected u32".into()
            }]
        );
    }

    #[test]
    fn missing_required_fields_are_reported_at_their_own_path() {
        let document = serde_json::json!({
            "apiVersion": "ferrolb.io/v1beta1",
            "kind": "BGPPeer",
            "metadata": {"name": "a"},
            "spec": {"peerASN": 1, "peerAddress": "10.0.0.1"}
        });
        assert_eq!(
            decode_object(&document).unwrap_err()[0].to_string(),
            "spec.myASN: required field is missing"
        );
    }

    #[test]
    fn unknown_fields_are_errors_with_a_suggestion() {
        let document = serde_json::json!({
            "apiVersion": "ferrolb.io/v1beta1",
            "kind": "BGPPeer",
            "metadata": {"name": "a", "labels": {"anything": "goes"}},
            "spec": {"myASN": 1, "peerASN": 2, "peerAdress": "10.0.0.1",
                     "nodeSelectors": [{"matchLabel": {"a": "b"}}], "frobnicate": true}
        });
        let errors: Vec<String> = decode_object(&document)
            .unwrap_err()
            .iter()
            .map(ToString::to_string)
            .collect();
        assert_eq!(
            errors,
            [
                "spec.frobnicate: unknown field",
                "spec.nodeSelectors[0].matchLabel: unknown field (did you mean matchLabels?)",
                "spec.peerAdress: unknown field (did you mean peerAddress?)",
            ]
        );
    }

    #[test]
    fn unknown_ferrolb_kinds_list_the_real_ones() {
        let document =
            serde_json::json!({"apiVersion": "ferrolb.io/v1beta1", "kind": "AddressPool"});
        assert_eq!(
            decode_object(&document).unwrap_err()[0].to_string(),
            "ferrolb.io/v1beta1 AddressPool is not a ferrolb resource; the kinds are \
             IPAddressPool, Community, BFDProfile, BGPPeer, BGPAdvertisement, L2Advertisement \
             in ferrolb.io/v1beta1"
        );
    }
}
