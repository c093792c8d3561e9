//! manifests/monitoring against docs/observability.md: the dashboard is valid JSON, the
//! PodMonitor and PrometheusRule are valid YAML of the right kinds, every alert the docs name
//! exists, and every `ferrolb_` metric they query is a documented one.

#![allow(clippy::unwrap_used, clippy::expect_used)]

use std::collections::BTreeSet;

const DOCS: &str = include_str!("../../../docs/observability.md");
const DASHBOARD: &str = include_str!("../../../manifests/monitoring/grafana-dashboard.json");
const RULES: &str = include_str!("../../../manifests/monitoring/prometheusrule.yaml");
const POD_MONITOR: &str = include_str!("../../../manifests/monitoring/podmonitor.yaml");

fn documented_metrics() -> BTreeSet<String> {
    let section = DOCS.split("\n## Metrics\n").nth(1).unwrap();
    let section = section.split("\n## ").next().unwrap();
    section
        .lines()
        .filter_map(|line| {
            let name = line.split('|').nth(1)?.trim();
            let name = name.strip_prefix('`')?.strip_suffix('`')?;
            name.starts_with("ferrolb_").then(|| name.to_string())
        })
        .collect()
}

fn referenced_metrics(text: &str) -> BTreeSet<String> {
    let mut out = BTreeSet::new();
    let bytes = text.as_bytes();
    let mut i = 0;
    while let Some(pos) = text[i..].find("ferrolb_") {
        let start = i + pos;
        let mut end = start;
        while end < bytes.len() && (bytes[end].is_ascii_alphanumeric() || bytes[end] == b'_') {
            end += 1;
        }
        let boundary =
            start == 0 || !(bytes[start - 1].is_ascii_alphanumeric() || bytes[start - 1] == b'_');
        if boundary {
            out.insert(text[start..end].to_string());
        }
        i = end;
    }
    out
}

fn undocumented(text: &str) -> Vec<String> {
    let documented = documented_metrics();
    referenced_metrics(text)
        .into_iter()
        .filter(|m| {
            let base = ["_bucket", "_sum", "_count"]
                .iter()
                .find_map(|s| m.strip_suffix(s))
                .unwrap_or(m);
            !documented.contains(m) && !documented.contains(base)
        })
        .collect()
}

#[test]
fn the_dashboard_is_json_and_queries_only_documented_metrics() {
    let dashboard: serde_json::Value = serde_json::from_str(DASHBOARD).unwrap();
    let panels = dashboard["panels"].as_array().unwrap();
    let titles: Vec<&str> = panels.iter().filter_map(|p| p["title"].as_str()).collect();
    for wanted in [
        "Sessions up",
        "Prefixes announced",
        "Pool use",
        "Event-to-UPDATE latency",
    ] {
        assert!(
            titles.contains(&wanted),
            "{wanted} panel missing: {titles:?}"
        );
    }
    assert_eq!(undocumented(DASHBOARD), Vec::<String>::new());
}

#[test]
fn the_rules_are_a_prometheus_rule_with_every_documented_alert_on_documented_metrics() {
    let rules: serde_json::Value = serde_saphyr::from_str(RULES).unwrap();
    assert_eq!(rules["kind"], "PrometheusRule");
    let alerts: BTreeSet<String> = rules["spec"]["groups"]
        .as_array()
        .unwrap()
        .iter()
        .flat_map(|g| g["rules"].as_array().unwrap().iter())
        .map(|r| r["alert"].as_str().unwrap().to_string())
        .collect();
    let documented: BTreeSet<String> = DOCS
        .lines()
        .filter_map(|l| l.strip_prefix("| `Ferrolb"))
        .filter_map(|l| l.split('`').next())
        .map(|name| format!("Ferrolb{name}"))
        .collect();
    assert!(documented.len() >= 7, "{documented:?}");
    assert_eq!(alerts, documented);
    assert_eq!(undocumented(RULES), Vec::<String>::new());
    for needle in [
        "> 0.85",
        "> 0.95",
        "ferrolb_config_stale",
        "ferrolb_bgp_session_up == 0",
    ] {
        assert!(RULES.contains(needle), "{needle}");
    }
}

#[test]
fn the_pod_monitor_scrapes_the_metrics_port() {
    let monitor: serde_json::Value = serde_saphyr::from_str(POD_MONITOR).unwrap();
    assert_eq!(monitor["kind"], "PodMonitor");
    assert_eq!(monitor["spec"]["podMetricsEndpoints"][0]["port"], "metrics");
    assert_eq!(
        monitor["spec"]["podMetricsEndpoints"][0]["path"],
        "/metrics"
    );
}
