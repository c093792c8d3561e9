//! The `ferrolb` binary run on the examples in `examples/metallb/`: what it prints and its exit
//! status, exactly.

// Test helpers outside `#[test]` functions may fail loudly on fixtures the test itself wrote.
#![allow(clippy::expect_used, clippy::unwrap_used)]

use std::fs;
use std::io::Write;
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};

fn repository() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("../..")
}

fn examples() -> PathBuf {
    repository().join("examples/metallb")
}

struct Run {
    status: i32,
    stdout: String,
    stderr: String,
}

/// Runs the binary in `directory`, so file names in the output are the relative ones given.
fn ferrolb_in(directory: &Path, args: &[&str]) -> Run {
    let output = Command::new(env!("CARGO_BIN_EXE_ferrolb"))
        .args(args)
        .current_dir(directory)
        .output()
        .expect("the ferrolb binary runs");
    Run {
        status: output.status.code().unwrap_or(-1),
        stdout: String::from_utf8_lossy(&output.stdout).into_owned(),
        stderr: String::from_utf8_lossy(&output.stderr).into_owned(),
    }
}

fn ferrolb(args: &[&str]) -> Run {
    ferrolb_in(&examples(), args)
}

#[test]
fn check_accepts_the_metallb_cr_set_and_says_what_it_would_convert() {
    let run = ferrolb(&["check", "cr-set.yaml"]);
    assert_eq!(
        run.stdout,
        "\
cr-set.yaml:4: document 1: note: metallb.io/v1beta1 IPAddressPool/bgp-pool would be converted to ferrolb.io/v1beta1 IPAddressPool/bgp-pool (ferrolb migrate)
cr-set.yaml:13: document 2: note: metallb.io/v1beta2 BGPPeer/sample would be converted to ferrolb.io/v1beta1 BGPPeer/sample (ferrolb migrate)
cr-set.yaml:23: document 3: note: metallb.io/v1beta2 BGPPeer/sample2 would be converted to ferrolb.io/v1beta1 BGPPeer/sample2 (ferrolb migrate)
cr-set.yaml:33: document 4: note: metallb.io/v1beta1 BGPAdvertisement/local would be converted to ferrolb.io/v1beta1 BGPAdvertisement/local (ferrolb migrate)
cr-set.yaml:46: document 5: note: metallb.io/v1beta1 BGPAdvertisement/external would be converted to ferrolb.io/v1beta1 BGPAdvertisement/external (ferrolb migrate)
no errors in 5 documents (1 file)
"
    );
    assert_eq!(run.status, 0);
}

#[test]
fn check_accepts_the_legacy_layer2_config_map() {
    let run = ferrolb(&["check", "legacy-layer2-configmap.yaml"]);
    assert_eq!(
        run.stdout,
        "\
legacy-layer2-configmap.yaml:3: document 1: note: ConfigMap metallb-system/config would be converted to ferrolb.io/v1beta1 IPAddressPool/default, L2Advertisement/default (ferrolb migrate)
no errors in 1 document (1 file)
"
    );
    assert_eq!(run.status, 0);
}

#[test]
fn check_reports_a_range_whose_start_is_after_its_end() {
    let run = ferrolb(&["check", "broken/range-start-after-end.yaml"]);
    assert_eq!(
        run.stdout,
        "\
broken/range-start-after-end.yaml:2: document 1: note: metallb.io/v1beta1 IPAddressPool/prod would be converted to ferrolb.io/v1beta1 IPAddressPool/prod (ferrolb migrate)
broken/range-start-after-end.yaml:2: document 1: error: IPAddressPool/prod spec.addresses[1]: range start 172.16.16.150 is after end 172.16.16.20
1 error in 1 document (1 file)
"
    );
    assert_eq!(run.status, 1);
}

#[test]
fn check_reports_an_unknown_community_alias() {
    let run = ferrolb(&["check", "broken/unknown-community-alias.yaml"]);
    assert_eq!(
        run.stdout
            .lines()
            .filter(|l| l.contains(": error: "))
            .collect::<Vec<_>>(),
        [
            "broken/unknown-community-alias.yaml:21: document 3: error: BGPAdvertisement/premium spec.communities[0]: \"golden\" is neither a community value (A:B, large:A:B:C or a well-known name such as no-export) nor an alias defined by a Community object"
        ]
    );
    assert_eq!(
        run.stdout.lines().last(),
        Some("1 error in 3 documents (1 file)")
    );
    assert_eq!(run.status, 1);
}

#[test]
fn check_reports_a_peer_with_both_peer_asn_and_dynamic_asn() {
    let run = ferrolb(&["check", "broken/peer-asn-and-dynamic-asn.yaml"]);
    assert_eq!(
        run.stdout,
        "\
broken/peer-asn-and-dynamic-asn.yaml:2: document 1: note: metallb.io/v1beta2 BGPPeer/router would be converted to ferrolb.io/v1beta1 BGPPeer/router (ferrolb migrate)
broken/peer-asn-and-dynamic-asn.yaml:2: document 1: error: BGPPeer/router spec.dynamicASN: peerASN and dynamicASN are both set; set exactly one of them
1 error in 1 document (1 file)
"
    );
    assert_eq!(run.status, 1);
}

#[test]
fn check_reads_directories_recursively_and_reports_every_file() {
    let run = ferrolb(&["check", "broken"]);
    let errors: Vec<&str> = run
        .stdout
        .lines()
        .filter(|l| l.contains(": error: "))
        .map(|l| l.split(": document").next().unwrap_or_default())
        .collect();
    assert_eq!(
        errors,
        [
            "broken/peer-asn-and-dynamic-asn.yaml:2",
            "broken/range-start-after-end.yaml:2",
            "broken/unknown-community-alias.yaml:21",
        ]
    );
    assert_eq!(
        run.stdout.lines().last(),
        Some("3 errors in 5 documents (3 files)")
    );
    assert_eq!(run.status, 1);
}

#[test]
fn check_reads_standard_input() {
    let mut child = Command::new(env!("CARGO_BIN_EXE_ferrolb"))
        .args(["check", "-"])
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .spawn()
        .expect("the ferrolb binary runs");
    child
        .stdin
        .take()
        .expect("stdin is piped")
        .write_all(b"apiVersion: ferrolb.io/v1beta1\nkind: BGPPeer\nmetadata: {name: r}\nspec: {myASN: 0, peerASN: 1, peerAddress: 10.0.0.1}\n")
        .expect("stdin takes the document");
    let output = child
        .wait_with_output()
        .expect("the ferrolb binary finishes");
    assert_eq!(
        String::from_utf8_lossy(&output.stdout),
        "\
<stdin>:1: document 1: error: BGPPeer/r spec.myASN: myASN is required and must be between 1 and 4294967295
1 error in 1 document (1 file)
"
    );
    assert_eq!(output.status.code(), Some(1));
}

#[test]
fn check_reports_a_missing_path() {
    let run = ferrolb(&["check", "no-such-file.yaml"]);
    assert_eq!(
        run.stdout,
        "\
error: no-such-file.yaml: No such file or directory (os error 2)
1 error in 0 documents (0 files)
"
    );
    assert_eq!(run.status, 1);
}

#[test]
fn check_without_a_path_is_a_usage_error() {
    let run = ferrolb(&["check"]);
    assert!(
        run.stderr.contains("required arguments were not provided"),
        "{}",
        run.stderr
    );
    assert_eq!(run.status, 2);
}

#[test]
fn migrate_converts_the_cr_set_into_the_converted_example() {
    let run = ferrolb(&["migrate", "cr-set.yaml"]);
    let expected = fs::read_to_string(examples().join("converted/cr-set.yaml"))
        .expect("the converted example exists");
    assert_eq!(run.stdout, expected);
    assert_eq!(
        run.stderr,
        "\
note: resources from namespace metallb-system are written to namespace ferrolb-system
cr-set.yaml:4: document 1: note: metallb.io/v1beta1 IPAddressPool/bgp-pool converted to ferrolb.io/v1beta1 IPAddressPool/bgp-pool
cr-set.yaml:13: document 2: note: metallb.io/v1beta2 BGPPeer/sample converted to ferrolb.io/v1beta1 BGPPeer/sample
cr-set.yaml:23: document 3: note: metallb.io/v1beta2 BGPPeer/sample2 converted to ferrolb.io/v1beta1 BGPPeer/sample2
cr-set.yaml:33: document 4: note: metallb.io/v1beta1 BGPAdvertisement/local converted to ferrolb.io/v1beta1 BGPAdvertisement/local
cr-set.yaml:46: document 5: note: metallb.io/v1beta1 BGPAdvertisement/external converted to ferrolb.io/v1beta1 BGPAdvertisement/external
5 ferrolb resources written
"
    );
    assert_eq!(run.status, 0);
}

#[test]
fn migrate_converts_the_legacy_layer2_config_map() {
    let run = ferrolb(&["migrate", "legacy-layer2-configmap.yaml"]);
    let expected = fs::read_to_string(examples().join("converted/legacy-layer2-configmap.yaml"))
        .expect("the converted example exists");
    assert_eq!(run.stdout, expected);
    assert_eq!(
        run.stdout,
        "\
# Converted by `ferrolb migrate` from: legacy-layer2-configmap.yaml
apiVersion: ferrolb.io/v1beta1
kind: IPAddressPool
metadata:
  name: default
  namespace: ferrolb-system
spec:
  addresses:
  - 192.168.1.240-192.168.1.250
---
apiVersion: ferrolb.io/v1beta1
kind: L2Advertisement
metadata:
  name: default
  namespace: ferrolb-system
spec:
  ipAddressPools:
  - default
"
    );
    assert_eq!(run.status, 0);
}

#[test]
fn converted_examples_pass_check_as_ferrolb_resources() {
    let run = ferrolb(&["check", "converted"]);
    assert_eq!(run.stdout, "no errors in 7 documents (2 files)\n");
    assert_eq!(run.status, 0);
}

#[test]
fn migrate_reports_what_the_converted_configuration_still_gets_wrong() {
    let run = ferrolb(&[
        "migrate",
        "--namespace",
        "lb",
        "broken/peer-asn-and-dynamic-asn.yaml",
    ]);
    assert!(run.stdout.contains("  namespace: lb\n"), "{}", run.stdout);
    assert_eq!(
        run.stderr
            .lines()
            .filter(|l| l.contains(": error: "))
            .collect::<Vec<_>>(),
        [
            "broken/peer-asn-and-dynamic-asn.yaml:2: document 1: error: after conversion: BGPPeer/router spec.dynamicASN: peerASN and dynamicASN are both set; set exactly one of them"
        ]
    );
    assert_eq!(
        run.stderr.lines().last(),
        Some("1 ferrolb resource written; fix the errors above before applying them")
    );
    assert_eq!(run.status, 1);
}

#[test]
fn crds_out_writes_the_committed_manifests() {
    let directory = std::env::temp_dir().join(format!("ferrolb-crds-{}", std::process::id()));
    let run = ferrolb_in(
        &repository(),
        &["crds", "--out", &directory.to_string_lossy()],
    );
    assert_eq!(run.status, 0, "{}", run.stderr);
    let committed = repository().join("manifests/crds");
    let mut written: Vec<String> = fs::read_dir(&directory)
        .expect("the directory was created")
        .filter_map(Result::ok)
        .map(|e| e.file_name().to_string_lossy().into_owned())
        .collect();
    written.sort();
    assert_eq!(written.len(), 6);
    for name in &written {
        let fresh = fs::read_to_string(directory.join(name)).expect("written file reads");
        let kept = fs::read_to_string(committed.join(name)).expect("committed file reads");
        assert!(
            fresh == kept,
            "manifests/crds/{name} is out of date; run `ferrolb crds --out manifests/crds`"
        );
    }
    fs::remove_dir_all(&directory).expect("the temporary directory is removed");
}

#[test]
fn crds_prints_all_six_definitions() {
    let run = ferrolb(&["crds"]);
    assert_eq!(run.status, 0);
    let kinds: Vec<&str> = run
        .stdout
        .lines()
        .filter_map(|l| l.strip_prefix("    kind: "))
        .collect();
    assert_eq!(
        kinds,
        [
            "IPAddressPool",
            "Community",
            "BFDProfile",
            "BGPPeer",
            "BGPAdvertisement",
            "L2Advertisement"
        ]
    );
}

#[test]
fn speaker_refuses_a_layer_2_key_shorter_than_16_octets_before_starting() {
    let dir = std::env::temp_dir().join(format!("l2w-cli-{}", std::process::id()));
    std::fs::create_dir_all(&dir).unwrap();
    let key = dir.join("short.key");
    std::fs::write(&key, b"too short").unwrap();
    let run = ferrolb_in(
        &repository(),
        &[
            "speaker",
            "--config-dir",
            "examples/l2-homelab",
            "--node-name",
            "n1",
            "--l2-key-file",
            key.to_str().unwrap(),
        ],
    );
    let _ = std::fs::remove_dir_all(&dir);
    assert_eq!(run.status, 1);
    assert!(
        run.stderr
            .contains("9 octets; the heartbeat key needs at least 16"),
        "{}",
        run.stderr
    );
}

#[test]
fn the_l2_homelab_example_passes_check() {
    let run = ferrolb_in(&repository(), &["check", "examples/l2-homelab"]);
    assert_eq!(run.status, 0, "{}{}", run.stdout, run.stderr);
}
