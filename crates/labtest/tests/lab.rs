//! Lab tests of the lab itself: every router kind comes up in its namespaces, is reachable
//! over IPv4 and IPv6, accepts an eBGP session from a node with its default configuration,
//! answers its CLI, restarts, and goes away without a trace; labs run side by side.
//!
//! They need root. Without it (or without network namespaces) they FAIL with the message
//! of [`LabError`], they never skip.

use std::io::ErrorKind;
use std::net::{IpAddr, SocketAddr, TcpListener};
use std::path::Path;
use std::process::{Child, Command};
use std::time::{Duration, Instant};

use ferrolb_labtest::{Lab, LabError, LabSpec, RouterKind, spawn_in_netns, wait_for};

const WAIT: Duration = Duration::from_secs(40);
const EVERY: Duration = Duration::from_millis(250);

fn up(spec: LabSpec) -> Lab {
    match Lab::up(spec) {
        Ok(lab) => lab,
        Err(err) => panic!("{err}"),
    }
}

fn ok<T>(what: &str, result: Result<T, LabError>) -> T {
    match result {
        Ok(v) => v,
        Err(err) => panic!("{what}: {err}"),
    }
}

/// No such process, or a zombie its new parent has not reaped yet.
fn process_gone(pid: u32) -> bool {
    match std::fs::read_to_string(format!("/proc/{pid}/status")) {
        Err(_) => true,
        Ok(status) => status
            .lines()
            .any(|l| l.starts_with("State:") && l.contains('Z')),
    }
}

fn ns_exists(ns: &str) -> bool {
    Path::new("/run/netns").join(ns).exists()
}

/// A GoBGP speaker in a node namespace (a stand-in for ferrolb's own speaker), killed on drop.
struct NodeSpeaker(Child);

impl Drop for NodeSpeaker {
    fn drop(&mut self) {
        let _ = self.0.kill();
        let _ = self.0.wait();
    }
}

/// Starts gobgpd in node `i` as AS `asn`, peering with the router over IPv4, and announces
/// `prefix` once the session can take it.
fn node_speaker(lab: &Lab, i: usize, asn: u32, prefix: &str) -> NodeSpeaker {
    let config = format!(
        r#"[global.config]
  as = {asn}
  router-id = "{id}"
  port = -1
[[neighbors]]
  [neighbors.config]
    neighbor-address = "{router}"
    peer-as = 64500
  [neighbors.transport.config]
    remote-port = {port}
  [neighbors.timers.config]
    connect-retry = 1
    hold-time = 9
    keepalive-interval = 3
  [[neighbors.afi-safis]]
    [neighbors.afi-safis.config]
      afi-safi-name = "ipv4-unicast"
"#,
        id = Lab::node_v4(i),
        router = Lab::router_v4(),
        port = lab.router_port(),
    );
    let path = lab.state_dir().join(format!("speaker-n{i}.toml"));
    if let Err(err) = std::fs::write(&path, config) {
        panic!("writing {}: {err}", path.display());
    }
    let path = path.display().to_string();
    let child = ok(
        "starting gobgpd in the node",
        lab.spawn(
            &lab.node_ns(i),
            &[
                "gobgpd",
                "-f",
                &path,
                "-t",
                "toml",
                "-p",
                "--pprof-disable",
                "--api-hosts",
                "127.0.0.1:50051",
            ],
        ),
    );
    let speaker = NodeSpeaker(child);
    let node = lab.node_ns(i);
    let added = wait_for(Duration::from_secs(10), EVERY, || {
        lab.exec_ok(
            &node,
            &["gobgp", "--port", "50051", "global", "rib", "add", prefix],
        )?;
        let rib = lab.exec_ok(&node, &["gobgp", "--port", "50051", "global", "rib"])?;
        Ok::<_, LabError>(rib.contains(prefix).then_some(()))
    })
    .and_then(|found| found.ok_or_else(|| format!("{prefix} not in node {i}'s RIB")));
    if let Err(err) = added {
        panic!("announcing {prefix} from node {i}: {err}");
    }
    speaker
}

fn assert_topology(lab: &Lab) {
    for ns in lab.namespaces() {
        assert!(ns_exists(&ns), "namespace {ns} is missing");
    }
    let client = lab.client_ns();
    for addr in [
        IpAddr::from(Lab::router_client_v4()),
        IpAddr::from(Lab::router_client_v6()),
    ] {
        ok(
            &format!("client pings the router at {addr}"),
            lab.ping(&client, addr),
        );
    }
    for i in 1..=lab.nodes() {
        for addr in [
            IpAddr::from(Lab::router_v4()),
            IpAddr::from(Lab::router_v6()),
        ] {
            ok(
                &format!("node {i} pings the router at {addr}"),
                lab.ping(&lab.node_ns(i), addr),
            );
        }
    }
    // Through the router: it forwards in both families.
    for addr in [IpAddr::from(Lab::node_v4(1)), IpAddr::from(Lab::node_v6(1))] {
        ok(
            &format!("client pings node 1 at {addr} through the router"),
            lab.ping(&client, addr),
        );
    }
}

/// The router's own status command answers, and shows it is AS 64500 / 192.0.2.1.
fn assert_router_answers(lab: &Lab) {
    match lab.router() {
        RouterKind::Frr => {
            let summary = ok(
                "show bgp summary json",
                lab.vtysh_json("show bgp summary json"),
            );
            assert!(summary.is_object(), "not a JSON object: {summary}");
            let groups = ok(
                "show bgp peer-group json",
                lab.vtysh_json("show bgp peer-group json"),
            );
            assert_eq!(groups["NODES"]["type"], "external", "{groups}");
        }
        RouterKind::Bird => {
            let protocols = ok("birdc show protocols", lab.birdc("show protocols"));
            for name in ["device1", "nodes4", "nodes6"] {
                assert!(protocols.contains(name), "no {name} in:\n{protocols}");
            }
            let status = ok("birdc show status", lab.birdc("show status"));
            assert!(status.contains("Router ID is 192.0.2.1"), "{status}");
        }
        RouterKind::Gobgp => {
            let global = ok("gobgp -j global", lab.gobgp_json(&["global"]));
            assert_eq!(global["asn"], 64500, "{global}");
            assert_eq!(global["router_id"], "192.0.2.1", "{global}");
            assert_eq!(global["listen_port"], lab.router_port(), "{global}");
        }
    }
}

/// The router's view of node 1's session: Some(description) once Established with `asn`
/// and holding `prefix`.
fn session_with_prefix(lab: &Lab, asn: u32, prefix: &str) -> Result<String, String> {
    let peer = Lab::node_v4(1).to_string();
    match lab.router() {
        RouterKind::Frr => {
            let summary = lab
                .vtysh_json("show bgp ipv4 unicast summary json")
                .map_err(|e| e.to_string())?;
            let p = &summary["peers"][&peer];
            if p["state"] != "Established" || p["remoteAs"] != asn || p["pfxRcd"] != 1 {
                return Err(format!("peer {peer}: {p}"));
            }
            let route = lab
                .vtysh_json(&format!("show bgp ipv4 unicast {prefix} json"))
                .map_err(|e| e.to_string())?;
            let path = &route["paths"][0];
            (path["aspath"]["string"].as_str() == Some(asn.to_string().as_str()))
                .then(|| format!("{route}"))
                .ok_or_else(|| format!("route: {route}"))
        }
        RouterKind::Bird => {
            let protocols = lab.birdc("show protocols").map_err(|e| e.to_string())?;
            if !protocols
                .lines()
                .any(|l| l.starts_with("n4_") && l.contains("Established"))
            {
                return Err(protocols);
            }
            let route = lab
                .birdc(&format!("show route {prefix} all"))
                .map_err(|e| e.to_string())?;
            route
                .contains(&format!("BGP.as_path: {asn}"))
                .then(|| route.clone())
                .ok_or(route)
        }
        RouterKind::Gobgp => {
            let neighbors = lab.gobgp_json(&["neighbor"]).map_err(|e| e.to_string())?;
            let established = neighbors.as_array().is_some_and(|all| {
                all.iter().any(|n| {
                    n["state"]["neighbor_address"] == peer.as_str()
                        && n["state"]["session_state"] == 6
                        && n["state"]["peer_asn"] == asn
                })
            });
            if !established {
                return Err(format!("neighbors: {neighbors}"));
            }
            let rib = lab
                .gobgp_json(&["global", "rib", prefix])
                .map_err(|e| e.to_string())?;
            rib[prefix][0]["neighbor-ip"]
                .eq(peer.as_str())
                .then(|| format!("{rib}"))
                .ok_or_else(|| format!("rib: {rib}"))
        }
    }
}

fn default_config_accepts_a_node(kind: RouterKind) {
    let lab = up(LabSpec::new(kind).with_nodes(2));
    let asn = 4_200_000_001; // a 4-byte private ASN: any ASN but ours is accepted
    let _speaker = node_speaker(&lab, 1, asn, "203.0.113.7/32");
    let seen = wait_for(WAIT, EVERY, || {
        session_with_prefix(&lab, asn, "203.0.113.7/32")
    });
    if let Err(err) = seen {
        panic!("{kind}: node 1's session and route never showed up: {err}");
    }
    if kind == RouterKind::Frr {
        // FRR installs what it learns: the client reaches the node's address through it.
        ok(
            "adding 203.0.113.7 on node 1",
            lab.exec_ok(
                &lab.node_ns(1),
                &["ip", "addr", "add", "203.0.113.7/32", "dev", "lo"],
            ),
        );
        let reached = wait_for(WAIT, EVERY, || {
            lab.ping(&lab.client_ns(), IpAddr::from([203, 0, 113, 7]))
        });
        assert!(
            reached.is_ok(),
            "client never reached 203.0.113.7: {reached:?}"
        );
    }
}

fn restart_gives_new_pid(kind: RouterKind) {
    let lab = up(LabSpec::new(kind).with_nodes(1));
    let before = lab.router_pid();
    assert!(before.is_some(), "{kind}: no router pid after up");
    ok("router-restart", lab.router_restart());
    let after = lab.router_pid();
    assert!(after.is_some(), "{kind}: no router pid after restart");
    assert_ne!(before, after, "{kind}: restart kept the same pid");
    if let Some(old) = before {
        let gone = wait_for(Duration::from_secs(5), EVERY, || {
            process_gone(old).then_some(())
        });
        assert!(gone.is_ok(), "{kind}: old router {old} still runs");
    }
    assert_router_answers(&lab);

    ok("router-stop", lab.router_stop());
    assert_eq!(
        lab.router_pid(),
        None,
        "{kind}: router still runs after stop"
    );
    ok("router-start", lab.router_start());
    assert!(lab.router_pid().is_some(), "{kind}: no router after start");
    assert_router_answers(&lab);
}

fn drop_removes_everything(kind: RouterKind) {
    let lab = up(LabSpec::new(kind).with_nodes(2));
    let namespaces = lab.namespaces();
    let state = lab.state_dir().to_owned();
    let pid = lab.router_pid();
    assert!(pid.is_some(), "{kind}: no router pid");
    // A process left running in a node is stopped too.
    let sleeper = ok(
        "spawning sleep",
        lab.spawn(&lab.node_ns(1), &["sleep", "600"]),
    );
    let mut sleeper = NodeSpeaker(sleeper);
    drop(lab);
    for ns in &namespaces {
        assert!(!ns_exists(ns), "namespace {ns} is still there");
    }
    assert!(
        !state.exists(),
        "state dir {} is still there",
        state.display()
    );
    if let Some(pid) = pid {
        let gone = wait_for(Duration::from_secs(5), EVERY, || {
            process_gone(pid).then_some(())
        });
        assert!(gone.is_ok(), "{kind}: router {pid} still runs");
    }
    let exited = wait_for(Duration::from_secs(5), EVERY, || {
        sleeper.0.try_wait().ok().flatten()
    });
    assert!(exited.is_ok(), "the node's process survived the teardown");
}

macro_rules! router_tests {
    ($module:ident, $kind:expr) => {
        mod $module {
            use super::*;

            #[test]
            fn lab_connects_client_and_nodes_to_the_router_over_v4_and_v6() {
                let lab = up(LabSpec::new($kind));
                assert_topology(&lab);
            }

            #[test]
            fn router_answers_its_status_command() {
                let lab = up(LabSpec::new($kind).with_nodes(1));
                assert_router_answers(&lab);
            }

            #[test]
            fn default_router_config_accepts_an_ebgp_session_and_routes_from_a_node() {
                default_config_accepts_a_node($kind);
            }

            #[test]
            fn router_restart_gives_a_new_pid_and_stop_start_work() {
                restart_gives_new_pid($kind);
            }

            #[test]
            fn dropping_the_lab_removes_namespaces_processes_and_state() {
                drop_removes_everything($kind);
            }

            #[test]
            fn router_port_option_moves_the_bgp_listener() {
                let lab = up(LabSpec::new($kind).with_nodes(1).with_router_port(1790));
                let listening = ok(
                    "ss -ltn",
                    lab.exec_ok(&lab.router_ns(), &["ss", "-H", "-l", "-t", "-n"]),
                );
                assert!(
                    listening.contains(":1790 "),
                    "no listener on 1790:\n{listening}"
                );
                assert!(
                    !listening.contains(":179 "),
                    "still listening on 179:\n{listening}"
                );
                let _speaker = node_speaker(&lab, 1, 64512, "203.0.113.9/32");
                let seen = wait_for(WAIT, EVERY, || {
                    session_with_prefix(&lab, 64512, "203.0.113.9/32")
                });
                assert!(seen.is_ok(), "no session on port 1790: {seen:?}");
            }
        }
    };
}

router_tests!(frr, RouterKind::Frr);
router_tests!(bird, RouterKind::Bird);
router_tests!(gobgp, RouterKind::Gobgp);

#[test]
fn two_labs_run_at_once_without_interfering() {
    let a = up(LabSpec::new(RouterKind::Frr).with_nodes(1));
    let b = up(LabSpec::new(RouterKind::Frr).with_nodes(1));
    assert_ne!(a.name(), b.name());
    let (pa, pb) = (a.router_pid(), b.router_pid());
    assert!(pa.is_some() && pb.is_some() && pa != pb, "{pa:?} {pb:?}");
    assert_topology(&a);
    assert_topology(&b);

    // Same addresses, separate worlds: a node of A peers only with A's router.
    let _speaker = node_speaker(&a, 1, 64512, "203.0.113.21/32");
    let seen = wait_for(WAIT, EVERY, || {
        session_with_prefix(&a, 64512, "203.0.113.21/32")
    });
    assert!(seen.is_ok(), "lab A: {seen:?}");
    let b_summary = ok("lab B summary", b.vtysh_json("show bgp summary json"));
    assert!(
        b_summary["ipv4Unicast"]["peers"]
            .as_object()
            .is_none_or(|p| p.is_empty()),
        "lab B sees lab A's node: {b_summary}"
    );

    // Stopping A's router leaves B's alone; tearing A down leaves B up.
    ok("lab A router-stop", a.router_stop());
    assert_eq!(b.router_pid(), pb, "lab B's router changed");
    let b_namespaces = b.namespaces();
    drop(a);
    for ns in &b_namespaces {
        assert!(ns_exists(ns), "lab B lost {ns}");
    }
    assert_topology(&b);
    assert_router_answers(&b);
}

#[test]
fn lab_up_again_with_the_same_name_changes_nothing() {
    let lab = up(LabSpec::new(RouterKind::Bird).with_nodes(2));
    let pid = lab.router_pid();
    let script = Path::new(env!("CARGO_MANIFEST_DIR")).join("../../lab/netns/lab.sh");
    let out = Command::new(&script)
        .args([
            "up",
            "--name",
            lab.name(),
            "--router",
            "bird",
            "--nodes",
            "2",
        ])
        .output();
    let out = match out {
        Ok(out) => out,
        Err(err) => panic!("running {}: {err}", script.display()),
    };
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    assert_eq!(lab.router_pid(), pid, "a second `up` restarted the router");
    assert_topology(&lab);
}

#[test]
fn custom_frr_config_replaces_the_default() {
    let config = "\
frr defaults traditional
hostname @NAME@-custom
router bgp @ASN@
 bgp router-id @ROUTER_ID@
 no bgp ebgp-requires-policy
 neighbor 192.0.2.11 remote-as 4200000000
 neighbor 192.0.2.11 description from-a-test
exit
";
    let lab = up(LabSpec::new(RouterKind::Frr)
        .with_router_config(config)
        .with_nodes(1));
    let neighbors = ok(
        "show bgp neighbors json",
        lab.vtysh_json("show bgp neighbors json"),
    );
    let n = &neighbors["192.0.2.11"];
    assert_eq!(n["remoteAs"], 4_200_000_000u32, "{neighbors}");
    assert_eq!(n["nbrDesc"], "from-a-test", "{neighbors}");
    let groups = ok(
        "show bgp peer-group json",
        lab.vtysh_json("show bgp peer-group json"),
    );
    assert!(
        groups.get("NODES").is_none(),
        "the default config is still there: {groups}"
    );
    // Config commands in several lines go through one vtysh call.
    ok(
        "configure through vtysh",
        lab.vtysh("configure terminal\nrouter bgp 64500\nneighbor 192.0.2.11 shutdown"),
    );
    let neighbors = ok(
        "show bgp neighbors json",
        lab.vtysh_json("show bgp neighbors json"),
    );
    assert_eq!(
        neighbors["192.0.2.11"]["adminShutDown"], true,
        "{neighbors}"
    );
}

#[test]
fn a_bad_router_config_fails_up_with_the_routers_complaint() {
    let err = match Lab::up(
        LabSpec::new(RouterKind::Bird).with_router_config("protocol bgp { this is not bird }\n"),
    ) {
        Ok(lab) => panic!("lab {} came up with a broken config", lab.name()),
        Err(err) => err.to_string(),
    };
    assert!(err.contains("BIRD rejects"), "{err}");
}

#[test]
fn router_cli_helpers_refuse_the_wrong_router() {
    let lab = up(LabSpec::new(RouterKind::Gobgp).with_nodes(1));
    match lab.vtysh("show version") {
        Err(LabError::WrongRouter {
            needed: RouterKind::Frr,
            ..
        }) => {}
        other => panic!("expected WrongRouter, got {other:?}"),
    }
    match lab.gobgp_json(&["no-such-command"]) {
        Err(LabError::Command { output, .. }) => {
            assert!(output.contains("unknown command"), "{output}")
        }
        other => panic!("expected a Command error, got {other:?}"),
    }
}

#[test]
fn spawn_in_netns_runs_the_closure_inside_the_node_namespace() {
    let lab = up(LabSpec::new(RouterKind::Frr).with_nodes(1));
    let node_addr = SocketAddr::from((Lab::node_v4(1), 0));
    // The test process itself stays in its own namespace, where 192.0.2.11 is not local.
    match TcpListener::bind(node_addr) {
        Err(err) => assert_eq!(err.kind(), ErrorKind::AddrNotAvailable, "{err}"),
        Ok(_) => panic!("192.0.2.11 is local outside the lab: is the root namespace polluted?"),
    }
    let (tx, rx) = std::sync::mpsc::channel();
    let handle = spawn_in_netns(&lab.node_ns(1), move || -> std::io::Result<SocketAddr> {
        let listener = TcpListener::bind(node_addr)?;
        let _ = tx.send(listener.local_addr()?.port());
        listener.set_nonblocking(true)?;
        let deadline = Instant::now() + Duration::from_secs(20);
        loop {
            match listener.accept() {
                Ok((_, peer)) => return Ok(peer),
                Err(e) if e.kind() == ErrorKind::WouldBlock && Instant::now() < deadline => {
                    std::thread::sleep(Duration::from_millis(20));
                }
                Err(e) => return Err(e),
            }
        }
    });
    let port = match rx.recv_timeout(Duration::from_secs(10)) {
        Ok(port) => port,
        Err(_) => panic!("the thread never listened: {:?}", handle.join()),
    };
    // The client connects through the router to the listener inside node 1.
    let connect = format!("exec 3<>/dev/tcp/{}/{port}", Lab::node_v4(1));
    ok(
        "client connects",
        lab.exec_ok(&lab.client_ns(), &["bash", "-c", &connect]),
    );
    let peer = match handle.join() {
        Ok(Ok(Ok(peer))) => peer,
        other => panic!("the namespace thread failed: {other:?}"),
    };
    assert_eq!(peer.ip(), IpAddr::from(Lab::client_v4()));
}

#[test]
fn spawn_in_netns_reports_a_missing_namespace() {
    let handle = spawn_in_netns("no-such-ns-ferrolb", || ());
    match handle.join() {
        Ok(Err(LabError::Netns { ns, .. })) => assert_eq!(ns, "no-such-ns-ferrolb"),
        other => panic!("expected a Netns error, got {other:?}"),
    }
}

#[test]
fn spawned_processes_log_to_the_labs_logs_dir() {
    let lab = up(LabSpec::new(RouterKind::Frr).with_nodes(1));
    let child = ok(
        "spawn",
        lab.spawn(
            &lab.node_ns(1),
            &[
                "sh",
                "-c",
                "echo hello from the node; ip -br addr show dev eth0",
            ],
        ),
    );
    let mut child = NodeSpeaker(child);
    let done = wait_for(Duration::from_secs(10), EVERY, || {
        child.0.try_wait().ok().flatten()
    });
    assert!(done.as_ref().is_ok_and(|s| s.success()), "{done:?}");
    let logs: Vec<String> = match std::fs::read_dir(lab.logs_dir()) {
        Ok(entries) => entries
            .filter_map(|e| e.ok())
            .filter_map(|e| std::fs::read_to_string(e.path()).ok())
            .collect(),
        Err(err) => panic!("reading {}: {err}", lab.logs_dir().display()),
    };
    assert!(
        logs.iter()
            .any(|l| l.contains("hello from the node") && l.contains("192.0.2.11/24")),
        "{logs:?}"
    );
}

#[test]
fn lab_script_names_the_missing_router_binary() {
    let script = Path::new(env!("CARGO_MANIFEST_DIR")).join("../../lab/netns/lab.sh");
    let out = Command::new(&script)
        .args(["up", "--name", "tmiss", "--router", "bird"])
        .env("FERROLB_LAB_BIRD", "/nonexistent/bird")
        .output();
    let out = match out {
        Ok(out) => out,
        Err(err) => panic!("running {}: {err}", script.display()),
    };
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(!out.status.success(), "lab.sh up succeeded without bird");
    assert!(stderr.contains("/nonexistent/bird"), "{stderr}");
    assert!(stderr.contains("scripts/install-deps.sh"), "{stderr}");
    assert!(
        !ns_exists("tmiss-sw"),
        "lab.sh created namespaces before failing"
    );
}

#[test]
fn lab_script_refuses_to_run_without_root() {
    // A copy in a directory anyone can read, run as nobody.
    let dir = std::env::temp_dir().join(format!("ferrolb-labtest-{}", std::process::id()));
    let copy = dir.join("lab.sh");
    let script = Path::new(env!("CARGO_MANIFEST_DIR")).join("../../lab/netns/lab.sh");
    let prepared = std::fs::create_dir_all(&dir)
        .and_then(|()| std::fs::copy(&script, &copy).map(drop))
        .and_then(|()| {
            use std::os::unix::fs::PermissionsExt;
            std::fs::set_permissions(&dir, std::fs::Permissions::from_mode(0o755))?;
            std::fs::set_permissions(&copy, std::fs::Permissions::from_mode(0o755))
        });
    if let Err(err) = prepared {
        panic!("copying lab.sh to {}: {err}", dir.display());
    }
    let out = Command::new("setpriv")
        .args(["--reuid=65534", "--regid=65534", "--clear-groups", "bash"])
        .arg(&copy)
        .args(["up", "--name", "tnroot"])
        .output();
    let _ = std::fs::remove_dir_all(&dir);
    let out = match out {
        Ok(out) => out,
        Err(err) => panic!("running setpriv (util-linux): {err}"),
    };
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(!out.status.success(), "lab.sh up succeeded as nobody");
    assert!(stderr.contains("needs root"), "{stderr}");
}
