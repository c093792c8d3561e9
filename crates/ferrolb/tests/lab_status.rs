//! The status API, `ferrolb status` and the metrics of a real `ferrolb speaker` peered with FRR
//! in the network-namespace lab: every status call matches the router's own view, the watch
//! stream reports a session going down within a second of the router's bgpd being killed, and
//! a client built from server reflection alone (Python grpcio, no proto files) lists the
//! services and calls one. Needs root (CI runs as root); without namespaces these tests fail
//! with the lab's message, they never skip.

#![allow(clippy::unwrap_used, clippy::expect_used)]

use std::io::{BufRead, BufReader};
use std::path::PathBuf;
use std::process::{Child, Stdio};
use std::sync::mpsc;
use std::time::{Duration, Instant};

use ferrolb_labtest::{Lab, LabSpec, RouterKind, frr, wait_for};
use serde_json::Value;

const BIN: &str = env!("CARGO_BIN_EXE_ferrolb");
const NODE: &str = "192.0.2.11";

fn repository() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("../..")
}

/// One FRR router and one node running `ferrolb speaker` on examples/lab.
struct Setup {
    lab: Lab,
    speaker: Child,
}

impl Setup {
    fn up() -> Setup {
        let lab =
            Lab::up(LabSpec::new(RouterKind::Frr).with_nodes(1)).unwrap_or_else(|e| panic!("{e}"));
        let dir = lab.state_dir().join("obs-config");
        std::fs::create_dir_all(&dir).unwrap();
        for file in ["ferrolb.yaml", "services.yaml"] {
            std::fs::copy(repository().join("examples/lab").join(file), dir.join(file)).unwrap();
        }
        std::fs::create_dir_all(lab.logs_dir()).unwrap();
        let log = std::fs::File::create(lab.logs_dir().join("obs-speaker-n1.log")).unwrap();
        let dir = dir.display().to_string();
        let speaker = lab
            .command(
                &lab.node_ns(1),
                &[
                    BIN,
                    "speaker",
                    "--config-dir",
                    &dir,
                    "--node-name",
                    "n1",
                    "--drain-time",
                    "0s",
                ],
            )
            .env("NO_COLOR", "1")
            .env("RUST_LOG", "info")
            .stdin(Stdio::null())
            .stdout(log.try_clone().unwrap())
            .stderr(log)
            .spawn()
            .expect("ferrolb speaker starts");
        Setup { lab, speaker }
    }

    /// `ferrolb status WHAT -o json` run on the node, parsed.
    fn status(&self, what: &str) -> Result<Value, String> {
        let out = self
            .lab
            .exec(&self.lab.node_ns(1), &[BIN, "status", what, "-o", "json"])
            .map_err(|e| e.to_string())?;
        if !out.status.success() {
            return Err(String::from_utf8_lossy(&out.stderr).into_owned());
        }
        serde_json::from_slice(&out.stdout).map_err(|e| e.to_string())
    }

    /// Waits until the session is Established and both prefixes are advertised.
    fn wait_synced(&self) -> Value {
        wait_for(Duration::from_secs(30), Duration::from_millis(200), || {
            let s = self.status("sessions")?;
            let session = s["sessions"][0].clone();
            if session["state"] == "Established"
                && session["initial_sync_done"] == true
                && session["prefixes_advertised_v4"] == 1
                && session["prefixes_advertised_v6"] == 1
            {
                Ok(session)
            } else {
                Err(session.to_string())
            }
        })
        .unwrap_or_else(|e| panic!("session not synced: {e}"))
    }
}

impl Drop for Setup {
    fn drop(&mut self) {
        let _ = self.speaker.kill();
        let _ = self.speaker.wait();
    }
}

fn strings(v: &Value) -> Vec<String> {
    v.as_array()
        .map(|a| {
            a.iter()
                .filter_map(|s| s.as_str().map(str::to_string))
                .collect()
        })
        .unwrap_or_default()
}

#[test]
fn every_status_call_answers_and_matches_the_routers_own_view() {
    let s = Setup::up();
    let session = s.wait_synced();
    let frr = frr::neighbor(&s.lab, NODE);

    // Sessions: both ends agree on state, ASes, hold time, router ids and message counts.
    assert_eq!(frr["bgpState"], "Established", "{frr}");
    assert_eq!(session["peer_address"], "192.0.2.1");
    assert_eq!(session["peer_as"], frr["localAs"], "{frr}");
    assert_eq!(session["local_as"], frr["remoteAs"], "{frr}");
    let negotiated = &session["negotiated"];
    assert_eq!(
        negotiated["hold_time_seconds"].as_u64().unwrap() * 1000,
        frr["bgpTimerHoldTimeMsecs"].as_u64().unwrap(),
        "{frr}"
    );
    assert_eq!(negotiated["peer_router_id"], "192.0.2.1");
    assert_eq!(frr["remoteRouterId"], NODE, "{frr}");
    assert_eq!(
        strings(&negotiated["families"]),
        ["ipv4-unicast", "ipv6-unicast"]
    );
    assert!(session["uptime_seconds"].as_u64().is_some());
    // UPDATEs are settled once synced (keepalives keep moving): what we sent is what FRR got.
    let session = s.status("sessions").unwrap()["sessions"][0].clone();
    let frr = frr::neighbor(&s.lab, NODE);
    assert_eq!(
        session["messages_sent"]["update"], frr["messageStats"]["updatesRecv"],
        "{frr}"
    );
    assert_eq!(
        session["messages_received"]["update"], frr["messageStats"]["updatesSent"],
        "{frr}"
    );
    assert_eq!(
        session["messages_sent"]["open"], frr["messageStats"]["opensRecv"],
        "{frr}"
    );
    for (family, ours) in [
        ("ipv4Unicast", "prefixes_advertised_v4"),
        ("ipv6Unicast", "prefixes_advertised_v6"),
    ] {
        assert_eq!(
            session[ours], frr["addressFamilyInfo"][family]["acceptedPrefixCounter"],
            "{family}: {frr}"
        );
    }

    // Routes: each planned route is at the router with the attributes the API shows.
    let routes = s.status("routes").unwrap();
    let peer = &routes["peers"][0];
    assert_eq!(peer["peer"], "rtr");
    assert_eq!(peer["state"], "Established");
    let planned = peer["routes"].as_array().unwrap();
    assert_eq!(planned.len(), 2, "{routes}");
    for route in planned {
        let prefix = route["prefix"].as_str().unwrap();
        let path = frr::wait_best_path(&s.lab, prefix, |_| true);
        assert_eq!(
            strings(&route["communities"]),
            path["community"]["string"]
                .as_str()
                .unwrap()
                .split(' ')
                .map(str::to_string)
                .collect::<Vec<_>>(),
            "{prefix}: {path}"
        );
        assert_eq!(
            strings(&route["large_communities"]).join(" "),
            path["largeCommunity"]["string"].as_str().unwrap(),
            "{prefix}: {path}"
        );
        assert_eq!(strings(&route["services"]), ["demo/web"]);
        assert_eq!(strings(&route["advertisements"]), ["lab"]);
        assert_eq!(path["aspath"]["string"], "4200000000", "{path}");
    }

    // Services: announced to rtr, with the addresses the router has.
    let services = s.status("services").unwrap();
    let web = &services["services"][0];
    assert_eq!(
        (web["namespace"].as_str(), web["name"].as_str()),
        (Some("demo"), Some("web"))
    );
    assert_eq!(web["announced"], true);
    assert_eq!(web["pool"], "lab");
    let announced: Vec<String> = web["announcements"]
        .as_array()
        .unwrap()
        .iter()
        .map(|a| {
            format!(
                "{} {}",
                a["peer"].as_str().unwrap(),
                a["prefix"].as_str().unwrap()
            )
        })
        .collect();
    assert_eq!(
        announced,
        ["rtr 203.0.113.10/32", "rtr 2001:db8:ff::10/128"],
        "{services}"
    );

    // Pools: examples/lab's ranges 203.0.113.10-50 and 2001:db8:ff::10-50, one address each used.
    let pools = s.status("pools").unwrap();
    let lab_pool = &pools["pools"][0];
    assert_eq!(lab_pool["name"], "lab");
    assert_eq!(lab_pool["ipv4"]["total"], "41");
    assert_eq!(lab_pool["ipv4"]["in_use"], "1");
    assert_eq!(lab_pool["ipv4"]["available"], "40");
    assert_eq!(lab_pool["ipv6"]["total"], "65");
    assert_eq!(lab_pool["ipv6"]["in_use"], "1");

    // Config: applied, not stale.
    let config = s.status("config").unwrap();
    assert!(config["generation"].as_u64().unwrap() >= 1, "{config}");
    assert_eq!(config["stale"], false);
    assert_eq!(config["router_id"], NODE);

    // The table form answers too, and the metrics agree with the API.
    let table = s
        .lab
        .exec_ok(&s.lab.node_ns(1), &[BIN, "status", "sessions"])
        .unwrap();
    assert!(table.starts_with("PEER "), "{table}");
    assert!(
        table.contains("rtr") && table.contains("Established"),
        "{table}"
    );
    let metrics = s
        .lab
        .exec_ok(
            &s.lab.node_ns(1),
            &[
                "curl",
                "-sS",
                "--max-time",
                "2",
                "http://127.0.0.1:9120/metrics",
            ],
        )
        .unwrap();
    for line in [
        "ferrolb_bgp_session_up{peer=\"rtr\",peer_address=\"192.0.2.1\"} 1",
        "ferrolb_bgp_session_state{peer=\"rtr\"} 6",
        "ferrolb_bgp_prefixes_announced{family=\"ipv4\",peer=\"rtr\"} 1",
        "ferrolb_pool_in_use_addresses{family=\"ipv4\",pool=\"lab\"} 1",
        "ferrolb_config_stale 0",
    ] {
        assert!(
            metrics.lines().any(|l| l == line),
            "{line} missing:\n{metrics}"
        );
    }
}

#[test]
fn watch_reports_the_session_down_within_a_second_of_the_routers_bgpd_dying() {
    let s = Setup::up();
    s.wait_synced();
    let mut watcher = s
        .lab
        .command(
            &s.lab.node_ns(1),
            &[BIN, "status", "sessions", "--watch", "-o", "json"],
        )
        .stdin(Stdio::null())
        .stdout(Stdio::piped())
        .stderr(Stdio::null())
        .spawn()
        .unwrap();
    let stdout = watcher.stdout.take().unwrap();
    let (tx, rx) = mpsc::channel::<(Instant, String)>();
    std::thread::spawn(move || {
        for line in BufReader::new(stdout).lines() {
            let Ok(line) = line else { break };
            if tx.send((Instant::now(), line)).is_err() {
                break;
            }
        }
    });
    // The table (pretty JSON) comes first; the watch stream is one JSON object per line.
    // Wait until the stream is open: the first line of the pretty JSON has arrived, then a
    // moment for the Watch call to be in place.
    rx.recv_timeout(Duration::from_secs(5)).unwrap();
    std::thread::sleep(Duration::from_millis(500));
    while rx.try_recv().is_ok() {}

    let pid = s.lab.router_pid().expect("FRR's bgpd runs");
    let killed = Instant::now();
    nix::sys::signal::kill(
        nix::unistd::Pid::from_raw(i32::try_from(pid).unwrap()),
        nix::sys::signal::Signal::SIGKILL,
    )
    .unwrap();

    let deadline = killed + Duration::from_secs(5);
    let (at, event) = loop {
        let left = deadline.saturating_duration_since(Instant::now());
        let (at, line) = rx
            .recv_timeout(left)
            .unwrap_or_else(|_| panic!("no session-down event within 5 s"));
        if !line.starts_with("{\"at_unix_ms\"") {
            continue;
        }
        let event: Value = serde_json::from_str(&line).unwrap();
        let session = &event["event"]["session"];
        if session["name"] == "rtr" && session["state"] != "Established" {
            break (at, event);
        }
    };
    let _ = watcher.kill();
    let _ = watcher.wait();
    let took = at.duration_since(killed);
    eprintln!("session-down reported {took:?} after SIGKILL");
    assert!(
        took < Duration::from_secs(1),
        "session-down reported {took:?} after SIGKILL: {event}"
    );
    assert_eq!(event["initial"], false);
    let error = &event["event"]["session"]["last_error"];
    assert_eq!(error["kind"], "CONNECTION_CLOSED", "{event}");
}

#[test]
fn a_client_built_from_reflection_alone_lists_the_services_and_calls_one() {
    let s = Setup::up();
    s.wait_synced();
    let script = PathBuf::from(env!("CARGO_MANIFEST_DIR"))
        .join("tests/reflection_client.py")
        .display()
        .to_string();
    let out = s
        .lab
        .exec_ok(
            &s.lab.node_ns(1),
            &["/usr/bin/python3", &script, "127.0.0.1:50061"],
        )
        .unwrap_or_else(|e| panic!("{e}"));
    let reply: Value = serde_json::from_str(&out).unwrap();
    assert_eq!(
        strings(&reply["services"]),
        [
            "ferrolb.v1.Status",
            "grpc.health.v1.Health",
            "grpc.reflection.v1.ServerReflection"
        ],
        "{reply}"
    );
    assert_eq!(reply["method"], "ferrolb.v1.Status/ListSessions");
    let session = &reply["reply"]["sessions"][0];
    assert_eq!(session["name"], "rtr", "{reply}");
    assert_eq!(session["state"], "Established", "{reply}");
    assert_eq!(session["peer_as"], 64500, "{reply}");
}
