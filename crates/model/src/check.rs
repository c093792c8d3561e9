//! `ferrolb check`: validating YAML files offline, the way the cluster and the speaker would,
//! and reporting every problem with its file, line, document, object and field path.
//!
//! Owns: reading documents of any mix of kinds, sorting them into ferrolb resources, MetalLB
//! configuration (converted, with a note saying into what), Services (their annotations are
//! checked too) and everything else (skipped, with a note); then `Config::build` over all of
//! them. Printing and the exit status are the binary's.

use std::collections::BTreeMap;
use std::fmt;

use k8s_openapi::api::core::v1::Service;
use serde_json::Value;

use crate::config::{Config, Resources};
use crate::crd::{API_VERSION, ConfigObject, ObjectRef};
use crate::files::SourceFile;
use crate::load::{DocumentError, decode_object, is_ferrolb, split_documents, type_meta, typed};
use crate::metallb::{self, Conversion};
use crate::service::ServiceView;

/// Where a finding points: a file, the 1-based line the document starts at, and the document's
/// 1-based position in the file.
#[derive(Debug, Clone, PartialEq, Eq, PartialOrd, Ord)]
pub struct Location {
    /// Position of the file in the input (for sorting).
    file_index: usize,
    /// The file name, as given.
    pub file: String,
    /// 1-based document number.
    pub document: usize,
    /// 1-based line.
    pub line: usize,
}

impl fmt::Display for Location {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}:{}: document {}", self.file, self.line, self.document)
    }
}

/// How serious a finding is.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Severity {
    /// The configuration would be rejected.
    Error,
    /// Information: a conversion, a skipped document, something not carried over.
    Note,
}

/// One line of a report.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Finding {
    /// Error or note.
    pub severity: Severity,
    /// Where; `None` for problems with a whole path (unreadable file).
    pub location: Option<Location>,
    /// What, starting with the object (`IPAddressPool/prod spec.addresses[1]: ...`).
    pub message: String,
}

impl fmt::Display for Finding {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let label = match self.severity {
            Severity::Error => "error",
            Severity::Note => "note",
        };
        match &self.location {
            Some(location) => write!(f, "{location}: {label}: {}", self.message),
            None => write!(f, "{label}: {}", self.message),
        }
    }
}

/// The result of checking a set of files.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct CheckReport {
    /// Every error and note, by file and document.
    pub findings: Vec<Finding>,
    /// How many files were read.
    pub files: usize,
    /// How many documents they held.
    pub documents: usize,
}

impl CheckReport {
    /// How many findings are errors.
    pub fn error_count(&self) -> usize {
        self.findings
            .iter()
            .filter(|f| f.severity == Severity::Error)
            .count()
    }

    /// Whether any finding is an error.
    pub fn has_errors(&self) -> bool {
        self.error_count() > 0
    }

    /// The closing line: `2 errors in 5 documents (3 files)`.
    pub fn summary(&self) -> String {
        let errors = self.error_count();
        let plural = |n: usize, word: &str| {
            if n == 1 {
                format!("{n} {word}")
            } else {
                format!("{n} {word}s")
            }
        };
        let scope = format!(
            "{} ({})",
            plural(self.documents, "document"),
            plural(self.files, "file")
        );
        if errors == 0 {
            format!("no errors in {scope}")
        } else {
            format!("{} in {scope}", plural(errors, "error"))
        }
    }
}

impl fmt::Display for CheckReport {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        for finding in &self.findings {
            writeln!(f, "{finding}")?;
        }
        writeln!(f, "{}", self.summary())
    }
}

/// A document sorted by what it is.
pub(crate) enum Classified {
    Ferrolb(Box<ConfigObject>),
    MetalLb(Conversion),
    Service(Box<Service>),
    Other { api_version: String, kind: String },
}

/// Everything read from the files.
pub(crate) struct ReadDocuments {
    pub documents: Vec<(Location, Classified)>,
    pub findings: Vec<Finding>,
    pub count: usize,
}

/// Splits, parses and classifies every document; problems become error findings.
pub(crate) fn read_documents(files: &[SourceFile]) -> ReadDocuments {
    let mut read = ReadDocuments {
        documents: Vec::new(),
        findings: Vec::new(),
        count: 0,
    };
    for (file_index, file) in files.iter().enumerate() {
        for raw in split_documents(&file.text) {
            read.count += 1;
            let location = Location {
                file_index,
                file: file.name.clone(),
                document: raw.index,
                line: raw.line,
            };
            let error = |message: String| Finding {
                severity: Severity::Error,
                location: Some(location.clone()),
                message,
            };
            let value = match raw.parse() {
                Ok(value) => value,
                Err(DocumentError::Yaml { line, message }) => {
                    let mut at = location.clone();
                    at.line = line;
                    read.findings.push(Finding {
                        severity: Severity::Error,
                        location: Some(at),
                        message: format!("invalid YAML: {message}"),
                    });
                    continue;
                }
                Err(other) => {
                    read.findings.push(error(other.to_string()));
                    continue;
                }
            };
            // `kubectl get ... -o yaml` wraps several objects in a `v1 List`.
            let objects = match (type_meta(&value), value.get("items")) {
                (Ok(("v1", "List")), Some(Value::Array(items))) => items.clone(),
                _ => vec![value],
            };
            for object in &objects {
                match classify(object) {
                    Ok(classified) => read.documents.push((location.clone(), classified)),
                    Err(messages) => read.findings.extend(messages.into_iter().map(error)),
                }
            }
        }
    }
    read
}

fn classify(value: &Value) -> Result<Classified, Vec<String>> {
    let (api_version, kind) = type_meta(value).map_err(|e| vec![e.to_string()])?;
    let subject = match value.pointer("/metadata/name").and_then(Value::as_str) {
        Some(name) => format!("{kind}/{name}"),
        None => kind.to_owned(),
    };
    if is_ferrolb(value) {
        return decode_object(value)
            .map(|object| Classified::Ferrolb(Box::new(object)))
            .map_err(|errors| errors.iter().map(|e| format!("{subject} {e}")).collect());
    }
    if metallb::is_metallb(value) {
        return metallb::convert(value)
            .map(Classified::MetalLb)
            .map_err(|error| vec![format!("{api_version} {subject} {error}")]);
    }
    if api_version == "v1" && kind == "Service" {
        return typed::<Service>(value)
            .map(|service| Classified::Service(Box::new(service)))
            .map_err(|error| vec![format!("Service {error}")]);
    }
    Ok(Classified::Other {
        api_version: api_version.to_owned(),
        kind: kind.to_owned(),
    })
}

/// Checks a set of files: every document on its own, then all resources together.
pub fn check(files: &[SourceFile]) -> CheckReport {
    let read = read_documents(files);
    let mut findings = read.findings;
    let note = |location: &Location, message: String| Finding {
        severity: Severity::Note,
        location: Some(location.clone()),
        message,
    };

    let mut objects = Vec::new();
    let mut services = Vec::new();
    for (location, document) in read.documents {
        match document {
            Classified::Ferrolb(object) => objects.push((location, *object)),
            Classified::MetalLb(conversion) => {
                let summary = match conversion_targets(&conversion) {
                    Some(targets) => format!(
                        "{} would be converted to {targets} (ferrolb migrate)",
                        conversion.source
                    ),
                    None => format!("{} has nothing to convert", conversion.source),
                };
                findings.push(note(&location, summary));
                for migration_note in &conversion.notes {
                    findings.push(note(
                        &location,
                        format!("{} {migration_note}", conversion.source),
                    ));
                }
                objects.extend(
                    conversion
                        .objects
                        .into_iter()
                        .map(|o| (location.clone(), o)),
                );
            }
            Classified::Service(service) => services.push((location, service)),
            Classified::Other { api_version, kind } => findings.push(note(
                &location,
                format!(
                    "skipped: {api_version} {kind} is neither a ferrolb nor a MetalLB resource"
                ),
            )),
        }
    }
    let unique = drop_repeated_names(objects, &mut findings);
    let resources: Resources = unique.objects.iter().map(|(_, o)| o.clone()).collect();
    let origins = unique.origins;

    let config = match Config::build(&resources) {
        Ok(config) => Some(config),
        Err(errors) => {
            for error in errors {
                let location = origins.get(&error.object).cloned();
                findings.push(Finding {
                    severity: Severity::Error,
                    location,
                    message: error.to_string(),
                });
            }
            None
        }
    };

    for (location, service) in services {
        findings.extend(
            check_service(&service, config.as_ref())
                .into_iter()
                .map(|message| Finding {
                    severity: Severity::Error,
                    location: Some(location.clone()),
                    message,
                }),
        );
    }

    // Stable: within a document, findings keep the order they were found in.
    findings.sort_by(|a, b| a.location.cmp(&b.location));
    CheckReport {
        findings,
        files: files.len(),
        documents: read.count,
    }
}

/// Objects with names unique per kind, and where each was defined.
pub(crate) struct UniqueObjects {
    pub objects: Vec<(Location, ConfigObject)>,
    pub origins: BTreeMap<ObjectRef, Location>,
}

/// Keeps the first object of each kind and name; every repeat is an error pointing at the first
/// (reported here, where the files are known, rather than by `Config::build`).
pub(crate) fn drop_repeated_names(
    objects: Vec<(Location, ConfigObject)>,
    findings: &mut Vec<Finding>,
) -> UniqueObjects {
    let mut unique = UniqueObjects {
        objects: Vec::new(),
        origins: BTreeMap::new(),
    };
    for (location, object) in objects {
        let object_ref = object.object_ref();
        if let Some(first) = unique.origins.get(&object_ref) {
            findings.push(Finding {
                severity: Severity::Error,
                location: Some(location),
                message: format!(
                    "{object_ref} metadata.name: {object_ref} is also defined at {first}; names \
                     must be unique per kind"
                ),
            });
            continue;
        }
        unique.origins.insert(object_ref, location.clone());
        unique.objects.push((location, object));
    }
    unique
}

/// What a conversion produced, `ferrolb.io/v1beta1 IPAddressPool/a, L2Advertisement/a`, or
/// `None` when it produced nothing.
pub(crate) fn conversion_targets(conversion: &Conversion) -> Option<String> {
    if conversion.objects.is_empty() {
        return None;
    }
    let targets: Vec<String> = conversion
        .objects
        .iter()
        .map(|o| o.object_ref().to_string())
        .collect();
    Some(format!("{API_VERSION} {}", targets.join(", ")))
}

/// The Service's own rules, and, when the configuration is valid, whether what it asks for
/// exists.
fn check_service(service: &Service, config: Option<&Config>) -> Vec<String> {
    let view = match ServiceView::from_service(service) {
        Ok(view) => view,
        Err(errors) => return errors.iter().map(ToString::to_string).collect(),
    };
    let mut messages = Vec::new();
    let Some(config) = config else {
        return messages;
    };
    if let Some(pool) = &view.requested_pool
        && config.pool(pool).is_none()
    {
        messages.push(format!(
            "Service {view}: asks for IPAddressPool/{pool}, which does not exist"
        ));
    }
    for address in &view.requested_ips {
        match config.pool_containing(*address) {
            None => messages.push(format!(
                "Service {view}: asks for {address}, which is in no IPAddressPool"
            )),
            Some(pool) => {
                if let Some(requested) = &view.requested_pool
                    && requested != &pool.name
                {
                    messages.push(format!(
                        "Service {view}: asks for {address}, which is in IPAddressPool/{}, not \
                         in the requested IPAddressPool/{requested}",
                        pool.name
                    ));
                }
            }
        }
    }
    messages
}

#[cfg(test)]
mod tests {
    use super::*;

    fn file(name: &str, text: &str) -> SourceFile {
        SourceFile {
            name: name.to_owned(),
            text: text.to_owned(),
        }
    }

    fn lines(report: &CheckReport) -> Vec<String> {
        report.to_string().lines().map(str::to_owned).collect()
    }

    #[test]
    fn errors_carry_file_line_document_object_and_field() {
        let report = check(&[file(
            "pools.yaml",
            "apiVersion: ferrolb.io/v1beta1
kind: IPAddressPool
metadata: {name: ok}
spec: {addresses: [10.0.0.0/24]}
---
apiVersion: ferrolb.io/v1beta1
kind: IPAddressPool
metadata: {name: prod}
spec:
  addresses: [172.16.16.0/28, 172.16.16.150-172.16.16.20]
",
        )]);
        assert_eq!(
            lines(&report),
            [
                "pools.yaml:6: document 2: error: IPAddressPool/prod spec.addresses[1]: range \
                 start 172.16.16.150 is after end 172.16.16.20",
                "1 error in 2 documents (1 file)",
            ]
        );
    }

    #[test]
    fn duplicate_objects_across_files_point_at_the_first_definition() {
        let pool = "apiVersion: ferrolb.io/v1beta1\nkind: IPAddressPool\nmetadata: {name: a}\nspec: {addresses: [10.0.0.0/24]}\n";
        let report = check(&[file("one.yaml", pool), file("two.yaml", pool)]);
        assert_eq!(
            lines(&report),
            [
                "two.yaml:1: document 1: error: IPAddressPool/a metadata.name: IPAddressPool/a is \
                 also defined at one.yaml:1: document 1; names must be unique per kind",
                "1 error in 2 documents (2 files)",
            ]
        );
    }

    #[test]
    fn other_kinds_are_skipped_with_a_note_and_services_are_checked() {
        let report = check(&[file(
            "app.yaml",
            "apiVersion: apps/v1
kind: Deployment
metadata: {name: web}
---
apiVersion: v1
kind: Service
metadata:
  name: web
  annotations: {ferrolb.io/address-pool: missing}
spec: {type: LoadBalancer}
",
        )]);
        assert_eq!(
            lines(&report),
            [
                "app.yaml:1: document 1: note: skipped: apps/v1 Deployment is neither a ferrolb \
                 nor a MetalLB resource",
                "app.yaml:5: document 2: error: Service default/web: asks for \
                 IPAddressPool/missing, which does not exist",
                "1 error in 2 documents (1 file)",
            ]
        );
    }

    #[test]
    fn kubectl_lists_are_read_item_by_item() {
        let report = check(&[file(
            "export.yaml",
            "apiVersion: v1
kind: List
items:
- apiVersion: metallb.io/v1beta1
  kind: IPAddressPool
  metadata: {name: a, namespace: metallb-system, uid: x, resourceVersion: '1'}
  spec: {addresses: [10.0.0.0/24]}
- apiVersion: metallb.io/v1beta1
  kind: IPAddressPool
  metadata: {name: b, namespace: metallb-system}
  spec: {addresses: [10.0.0.128/25]}
",
        )]);
        assert_eq!(
            lines(&report),
            [
                "export.yaml:1: document 1: note: metallb.io/v1beta1 IPAddressPool/a would be \
                 converted to ferrolb.io/v1beta1 IPAddressPool/a (ferrolb migrate)",
                "export.yaml:1: document 1: note: metallb.io/v1beta1 IPAddressPool/a metadata: \
                 dropped what the API server or MetalLB wrote: uid, resourceVersion",
                "export.yaml:1: document 1: note: metallb.io/v1beta1 IPAddressPool/b would be \
                 converted to ferrolb.io/v1beta1 IPAddressPool/b (ferrolb migrate)",
                "export.yaml:1: document 1: error: IPAddressPool/b spec.addresses[0]: \
                 10.0.0.128/25 overlaps 10.0.0.0/24 (IPAddressPool/a spec.addresses[0]); a pool \
                 address must belong to exactly one entry",
                "1 error in 1 document (1 file)",
            ]
        );
    }

    #[test]
    fn broken_yaml_does_not_hide_other_documents() {
        let report = check(&[file(
            "mixed.yaml",
            "a: [\n---\napiVersion: ferrolb.io/v1beta1\nkind: BGPPeer\nmetadata: {name: x}\nspec: {myASN: 1, peerAddress: 10.0.0.1}\n",
        )]);
        let text = lines(&report);
        assert_eq!(text.len(), 3, "{text:#?}");
        assert!(text[0].starts_with("mixed.yaml:1: document 1: error: invalid YAML: "));
        assert_eq!(
            text[1],
            "mixed.yaml:3: document 2: error: BGPPeer/x spec.peerASN: exactly one of peerASN or \
             dynamicASN must be set"
        );
    }
}
