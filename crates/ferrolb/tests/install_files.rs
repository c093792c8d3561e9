//! The install files against each other and against the binary: the Helm chart carries the same
//! CRDs and alert rules as `manifests/`, the kustomization installs every CRD, and every flag the
//! Deployment and the chart pass to `ferrolb` is one the binary accepts. Rendering and linting
//! with the real `helm` and `kubectl` happens in scripts/test.sh.

#![allow(clippy::unwrap_used, clippy::expect_used)]

use std::collections::BTreeSet;
use std::fs;
use std::path::{Path, PathBuf};
use std::process::Command;

fn repository() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("../..")
}

fn read(relative: &str) -> String {
    let path = repository().join(relative);
    fs::read_to_string(&path).unwrap_or_else(|e| panic!("{}: {e}", path.display()))
}

fn yaml_files(relative: &str) -> BTreeSet<String> {
    fs::read_dir(repository().join(relative))
        .unwrap()
        .map(|entry| entry.unwrap().file_name().to_string_lossy().into_owned())
        .filter(|name| name.ends_with(".yaml"))
        .collect()
}

/// `--flag` names in the `args:` of a container, from the YAML text (templated or not).
fn flags_in(text: &str) -> BTreeSet<String> {
    text.lines()
        .filter_map(|line| line.trim().strip_prefix("- --"))
        .map(|flag| flag.split('=').next().unwrap().to_string())
        .collect()
}

fn accepted_flags(subcommand: &str) -> BTreeSet<String> {
    let output = Command::new(env!("CARGO_BIN_EXE_ferrolb"))
        .args([subcommand, "--help"])
        .output()
        .unwrap();
    assert!(
        output.status.success(),
        "ferrolb {subcommand} --help: {}",
        String::from_utf8_lossy(&output.stderr)
    );
    String::from_utf8(output.stdout)
        .unwrap()
        .split_whitespace()
        .filter_map(|word| word.strip_prefix("--"))
        .map(|flag| {
            flag.trim_end_matches(|c: char| !(c.is_ascii_alphanumeric() || c == '-'))
                .to_string()
        })
        .collect()
}

#[test]
fn the_chart_carries_exactly_the_generated_crds() {
    let manifests = yaml_files("manifests/crds");
    assert_eq!(manifests, yaml_files("charts/ferrolb/crds"));
    for name in &manifests {
        assert_eq!(
            read(&format!("manifests/crds/{name}")),
            read(&format!("charts/ferrolb/crds/{name}")),
            "charts/ferrolb/crds/{name} differs from manifests/crds/{name}: copy it again"
        );
    }
}

#[test]
fn the_kustomization_installs_every_crd_and_the_controller() {
    let kustomization = read("manifests/kustomization.yaml");
    for name in yaml_files("manifests/crds") {
        assert!(
            kustomization.contains(&format!("- crds/{name}")),
            "manifests/kustomization.yaml does not list crds/{name}"
        );
    }
    for file in [
        "namespace.yaml",
        "controller/rbac.yaml",
        "controller/deployment.yaml",
        "speaker/rbac.yaml",
        "speaker/daemonset.yaml",
    ] {
        assert!(
            kustomization.contains(&format!("- {file}")),
            "{file} missing"
        );
    }
}

#[test]
fn the_chart_alerts_are_the_monitoring_alerts() {
    let rule: serde_json::Value =
        serde_saphyr::from_str(&read("manifests/monitoring/prometheusrule.yaml")).unwrap();
    let groups: serde_json::Value =
        serde_saphyr::from_str(&read("charts/ferrolb/files/alert-groups.yaml")).unwrap();
    assert_eq!(
        rule["spec"], groups,
        "charts/ferrolb/files/alert-groups.yaml must be the spec of manifests/monitoring/prometheusrule.yaml"
    );
}

#[test]
fn every_controller_flag_in_the_install_files_exists() {
    let accepted = accepted_flags("controller");
    for file in [
        "manifests/controller/deployment.yaml",
        "charts/ferrolb/templates/controller-deployment.yaml",
    ] {
        let used = flags_in(&read(file));
        assert!(!used.is_empty(), "{file}: no flags found");
        let unknown: Vec<_> = used.difference(&accepted).collect();
        assert!(
            unknown.is_empty(),
            "{file}: ferrolb controller has no {unknown:?}"
        );
    }
}

#[test]
fn every_speaker_flag_in_the_install_files_exists() {
    let accepted = accepted_flags("speaker");
    for file in [
        "manifests/speaker/daemonset.yaml",
        "charts/ferrolb/templates/speaker-daemonset.yaml",
    ] {
        let used = flags_in(&read(file));
        assert!(
            used.contains("kubernetes"),
            "{file}: the speaker must run --kubernetes"
        );
        let unknown: Vec<_> = used.difference(&accepted).collect();
        assert!(
            unknown.is_empty(),
            "{file}: ferrolb speaker has no {unknown:?}"
        );
    }
}
