//! `manifests/crds/` holds exactly what the types generate: one file per CRD, byte for byte.

// Test helpers outside `#[test]` functions may fail loudly on fixtures the test itself wrote.
#![allow(clippy::expect_used, clippy::unwrap_used)]

use std::collections::BTreeSet;
use std::fs;
use std::path::PathBuf;

use ferrolb_model::crd::ResourceKind;
use ferrolb_model::manifests::{manifest_file_name, manifest_yaml};

const REGENERATE: &str = "regenerate with `cargo run -p ferrolb -- crds --out manifests/crds`";

fn manifests_dir() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("../../manifests/crds")
}

#[test]
fn crd_manifests_match_the_types() {
    for kind in ResourceKind::ALL {
        let path = manifests_dir().join(manifest_file_name(kind));
        let on_disk = fs::read_to_string(&path).unwrap_or_else(|error| {
            panic!("{} is unreadable ({error}); {REGENERATE}", path.display())
        });
        let generated = manifest_yaml(kind).expect("the CRD renders");
        assert!(
            on_disk == generated,
            "{} differs from the CRD the types generate; {REGENERATE}",
            path.display()
        );
    }
}

#[test]
fn no_stale_crd_manifests_are_left_behind() {
    let expected: BTreeSet<String> = ResourceKind::ALL
        .map(manifest_file_name)
        .into_iter()
        .collect();
    let present: BTreeSet<String> = fs::read_dir(manifests_dir())
        .expect("manifests/crds exists")
        .filter_map(Result::ok)
        .map(|entry| entry.file_name().to_string_lossy().into_owned())
        .collect();
    assert_eq!(
        present, expected,
        "manifests/crds should hold exactly one file per CRD; {REGENERATE}"
    );
}

#[test]
fn crd_manifests_parse_back_as_custom_resource_definitions() {
    for kind in ResourceKind::ALL {
        let text = manifest_yaml(kind).expect("the CRD renders");
        let crd: k8s_openapi::apiextensions_apiserver::pkg::apis::apiextensions::v1::CustomResourceDefinition =
            serde_saphyr::from_str(&text).expect("the manifest is a CRD");
        assert_eq!(crd.spec.names.kind, kind.as_str());
    }
}
