//! Golden plan tests: a folder of YAML in, this node's plan out, compared with a committed file.
//!
//! Each case is a folder `tests/plans/<case>/` holding `config/` (the YAML a configuration
//! folder would hold: ferrolb.io resources, Services, EndpointSlices), `node.yaml` (this node:
//! `name`, `labels`, and optionally `routerID`) and `expected.json`: what `ferrolb status
//! services`, `routes`, `config` and `l2` (its plan part: groups, Services, eligibility) would
//! show for that node (`-o json`), with the BGP sessions it would run. The plan goes through
//! the same code as the running agent (the folder reader, then the pure step `desired`), with
//! no sockets and no root.
//!
//! After an intended change of behaviour, rewrite the expected files with
//! `FERROLB_UPDATE_GOLDEN=1 cargo test -p ferrolb-speaker --test plans` and review the diff.

use std::collections::BTreeMap;
use std::fs;
use std::net::Ipv4Addr;
use std::path::{Path, PathBuf};

use ferrolb_bgpd::SpeakerStatus;
use ferrolb_model::node::Node;
use ferrolb_speaker::addressing::{Addressing, Allocations, ClassFilter};
use ferrolb_speaker::agent::AgentStatus;
use ferrolb_speaker::desired::desired;
use ferrolb_speaker::l2_shell::L2View;
use ferrolb_speaker::source::read_config_dir;
use ferrolb_speaker::status_api;
use serde::Deserialize;
use serde_json::{Value, json};

/// `node.yaml`.
#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct NodeFile {
    name: String,
    #[serde(default)]
    labels: BTreeMap<String, String>,
    #[serde(rename = "routerID")]
    router_id: Option<Ipv4Addr>,
}

fn cases() -> Vec<PathBuf> {
    let root = Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/plans");
    let mut cases: Vec<PathBuf> = fs::read_dir(&root)
        .unwrap_or_else(|e| panic!("{}: {e}", root.display()))
        .map(|entry| {
            entry
                .unwrap_or_else(|e| panic!("{}: {e}", root.display()))
                .path()
        })
        .filter(|p| p.is_dir())
        .collect();
    cases.sort();
    cases
}

/// What the node would show for the case.
fn plan_of(case: &Path) -> Value {
    let node_text = fs::read_to_string(case.join("node.yaml"))
        .unwrap_or_else(|e| panic!("{}/node.yaml: {e}", case.display()));
    let node_file: NodeFile = serde_saphyr::from_str(&node_text)
        .unwrap_or_else(|e| panic!("{}/node.yaml: {e}", case.display()));
    let snapshot = read_config_dir(&case.join("config")).unwrap_or_else(|problems| {
        panic!(
            "{}/config refused: {}",
            case.display(),
            problems
                .iter()
                .map(ToString::to_string)
                .collect::<Vec<_>>()
                .join("; ")
        )
    });
    let node = Node {
        name: node_file.name,
        labels: node_file.labels,
    };
    let mut addressing = Addressing::Folder(Allocations::new());
    let d = desired(
        &snapshot,
        &node,
        node_file.router_id,
        &ClassFilter::default(),
        &mut addressing,
    );
    let sessions: Vec<Value> = d
        .peers
        .iter()
        .map(|p| {
            json!({
                "name": p.name,
                "address": p.socket_addr().to_string(),
                "local_as": p.local_as,
                "peer_as": p.peer_as,
                "router_id": p.router_id.to_string(),
                "hold_time": p.hold_time,
                "ebgp_multihop": p.ebgp_multihop,
                "md5": p.password.is_some(),
                "graceful_restart": p.graceful_restart.is_some(),
            })
        })
        .collect();
    let agent = AgentStatus {
        generation: 1,
        router_id: node_file.router_id,
        plan: d.plan,
        peer_errors: d.peer_problems,
        peer_warnings: d.peer_warnings,
        pools: d.pools,
        ..AgentStatus::default()
    };
    let config = status_api::config(&agent);
    json!({
        "sessions": sessions,
        "peers_without_session": status_api::sessions(&agent, &SpeakerStatus::default(), std::time::UNIX_EPOCH).peers_without_session,
        "peer_warnings": config.peer_warnings,
        "services": status_api::services(&agent).services,
        "routes": status_api::routes(&agent, &SpeakerStatus::default()).peers,
        "pools": agent.pools.iter().map(status_api::pool).collect::<Vec<_>>(),
        "l2": status_api::l2(&agent, &L2View::default()),
    })
}

#[test]
fn every_case_plans_what_its_expected_file_says() {
    let update = std::env::var_os("FERROLB_UPDATE_GOLDEN").is_some();
    let cases = cases();
    assert!(cases.len() >= 8, "golden cases missing: {cases:?}");
    let mut failures = Vec::new();
    for case in &cases {
        let actual = serde_json::to_string_pretty(&plan_of(case)).unwrap() + "\n";
        let path = case.join("expected.json");
        if update {
            fs::write(&path, &actual).unwrap();
            continue;
        }
        let expected = fs::read_to_string(&path).unwrap_or_default();
        if expected != actual {
            failures.push(format!(
                "{}: the plan differs from expected.json (FERROLB_UPDATE_GOLDEN=1 rewrites it):\n{}",
                case.display(),
                line_diff(&expected, &actual)
            ));
        }
    }
    assert!(failures.is_empty(), "{}", failures.join("\n\n"));
}

/// The lines that differ, `-` expected and `+` actual, with their line numbers.
fn line_diff(expected: &str, actual: &str) -> String {
    let (e, a): (Vec<&str>, Vec<&str>) = (expected.lines().collect(), actual.lines().collect());
    let mut out = Vec::new();
    for i in 0..e.len().max(a.len()) {
        let (x, y) = (e.get(i), a.get(i));
        if x != y {
            if let Some(x) = x {
                out.push(format!("{:>4} - {x}", i + 1));
            }
            if let Some(y) = y {
                out.push(format!("{:>4} + {y}", i + 1));
            }
        }
        if out.len() > 40 {
            out.push("...".into());
            break;
        }
    }
    out.join("\n")
}

/// Layer-2 groups are formed from cluster-wide facts only: two nodes with different labels
/// reading the same folder form the same groups (keys, addresses, Services); only their
/// eligibility differs.
#[test]
fn every_node_forms_the_same_l2_groups() {
    let root = Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/plans");
    let groups = |case: &str| -> Vec<Value> {
        let plan = plan_of(&root.join(case));
        plan["l2"]["groups"]
            .as_array()
            .unwrap()
            .iter()
            .map(|g| json!([g["key"], g["addresses"], g["services"]]))
            .collect()
    };
    let eligible = |case: &str| -> Vec<bool> {
        plan_of(&root.join(case))["l2"]["groups"]
            .as_array()
            .unwrap()
            .iter()
            .map(|g| g["eligible"].as_bool().unwrap())
            .collect()
    };
    let here = groups("l2-selectors");
    assert_eq!(here.len(), 4, "{here:?}");
    assert_eq!(here, groups("l2-selectors-other-node"));
    assert_ne!(
        eligible("l2-selectors"),
        eligible("l2-selectors-other-node")
    );
}
