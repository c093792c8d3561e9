//! `ferrolb migrate`: turning MetalLB configuration (its custom resources and its legacy
//! ConfigMap) into ferrolb.io YAML, with a report of everything that was changed, dropped or
//! skipped, and of any problem the converted configuration still has.
//!
//! Owns the assembly of the output and the report. What maps to what is `metallb`; the rules
//! the result is checked against are `config`.

use std::collections::BTreeSet;

use crate::check::{
    Classified, Finding, Location, Severity, conversion_targets, drop_repeated_names,
    read_documents,
};
use crate::config::{Config, Resources};
use crate::crd::ConfigObject;
use crate::files::SourceFile;

/// The namespace ferrolb's resources live in unless told otherwise.
pub const DEFAULT_NAMESPACE: &str = "ferrolb-system";

/// The converted YAML and what to tell the user about it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct MigrationReport {
    /// ferrolb.io resources, one YAML document each.
    pub yaml: String,
    /// Notes (conversions, dropped fields, skipped documents) and errors.
    pub findings: Vec<Finding>,
    /// How many resources the YAML holds.
    pub objects: usize,
}

impl MigrationReport {
    /// Whether anything could not be converted, or the result would not pass `ferrolb check`.
    pub fn has_errors(&self) -> bool {
        self.findings.iter().any(|f| f.severity == Severity::Error)
    }
}

/// Converts every MetalLB document in the files; ferrolb.io documents pass through. All
/// resources are put in `namespace`.
pub fn migrate(files: &[SourceFile], namespace: &str) -> MigrationReport {
    let read = read_documents(files);
    let mut findings = read.findings;
    let note = |location: &Location, message: String| Finding {
        severity: Severity::Note,
        location: Some(location.clone()),
        message,
    };

    let mut output: Vec<(Location, ConfigObject)> = Vec::new();
    let mut moved_from: BTreeSet<String> = BTreeSet::new();
    for (location, document) in read.documents {
        let objects = match document {
            Classified::Ferrolb(object) => vec![*object],
            Classified::MetalLb(conversion) => {
                let summary = match conversion_targets(&conversion) {
                    Some(targets) => format!("{} converted to {targets}", conversion.source),
                    None => format!("{} has nothing to convert", conversion.source),
                };
                findings.push(note(&location, summary));
                for migration_note in &conversion.notes {
                    findings.push(note(
                        &location,
                        format!("{} {migration_note}", conversion.source),
                    ));
                }
                conversion.objects
            }
            Classified::Service(service) => {
                let name = service.metadata.name.as_deref().unwrap_or_default();
                findings.push(note(
                    &location,
                    format!(
                        "skipped: Service {name} needs no conversion; ferrolb reads its \
                         metallb.io and metallb.universe.tf annotations as they are"
                    ),
                ));
                Vec::new()
            }
            Classified::Other { api_version, kind } => {
                findings.push(note(
                    &location,
                    format!("skipped: {api_version} {kind} is not MetalLB configuration"),
                ));
                Vec::new()
            }
        };
        for mut object in objects {
            let metadata = object.metadata_mut();
            if let Some(previous) = metadata.namespace.replace(namespace.to_owned())
                && previous != namespace
            {
                moved_from.insert(previous);
            }
            output.push((location.clone(), object));
        }
    }

    let unique = drop_repeated_names(output, &mut findings);
    let resources: Resources = unique.objects.iter().map(|(_, o)| o.clone()).collect();
    let origins = unique.origins;

    if let Err(errors) = Config::build(&resources) {
        for error in errors {
            findings.push(Finding {
                severity: Severity::Error,
                location: origins.get(&error.object).cloned(),
                message: format!("after conversion: {error}"),
            });
        }
    }
    if !moved_from.is_empty() {
        findings.push(Finding {
            severity: Severity::Note,
            location: None,
            message: format!(
                "resources from namespace {} are written to namespace {namespace}",
                moved_from.into_iter().collect::<Vec<_>>().join(", ")
            ),
        });
    }
    findings.sort_by(|a, b| a.location.cmp(&b.location));

    let mut yaml = format!(
        "# Converted by `ferrolb migrate` from: {}\n",
        files
            .iter()
            .map(|f| f.name.as_str())
            .collect::<Vec<_>>()
            .join(", ")
    );
    let mut rendered = Vec::new();
    for (_, object) in &unique.objects {
        match object.to_yaml() {
            Ok(text) => rendered.push(text),
            Err(error) => findings.push(Finding {
                severity: Severity::Error,
                location: None,
                message: format!("{} could not be written: {error}", object.object_ref()),
            }),
        }
    }
    yaml.push_str(&rendered.join("---\n"));
    MigrationReport {
        yaml,
        findings,
        objects: rendered.len(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn metallb_resources_come_out_as_ferrolb_resources_in_ferrolb_namespace() {
        let report = migrate(
            &[SourceFile {
                name: "in.yaml".into(),
                text: "apiVersion: metallb.io/v1beta1
kind: IPAddressPool
metadata: {name: first-pool, namespace: metallb-system}
spec: {addresses: [192.168.32.0/24]}
"
                .into(),
            }],
            DEFAULT_NAMESPACE,
        );
        assert_eq!(
            report.yaml,
            "# Converted by `ferrolb migrate` from: in.yaml
apiVersion: ferrolb.io/v1beta1
kind: IPAddressPool
metadata:
  name: first-pool
  namespace: ferrolb-system
spec:
  addresses:
  - 192.168.32.0/24
"
        );
        let findings: Vec<String> = report.findings.iter().map(ToString::to_string).collect();
        assert_eq!(
            findings,
            [
                "note: resources from namespace metallb-system are written to namespace ferrolb-system",
                "in.yaml:1: document 1: note: metallb.io/v1beta1 IPAddressPool/first-pool \
                 converted to ferrolb.io/v1beta1 IPAddressPool/first-pool",
            ]
        );
        assert!(!report.has_errors());
    }
}
