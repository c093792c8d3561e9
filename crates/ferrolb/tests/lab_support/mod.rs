//! Shared pieces of the `ferrolb speaker` lab tests: a lab whose nodes each run the real
//! `ferrolb speaker` binary and a tiny HTTP server, a configuration folder the test edits, a
//! client request loop. FRR's own view (BGP table, zebra, neighbors, log) is read with
//! `ferrolb_labtest::frr`, re-exported here.
//!
//! Every process here is started by the test and stopped by its pid (SIGTERM/SIGKILL); the
//! lab's Drop then removes the namespaces. Speaker and server output goes to the lab's logs
//! directory, which the lab prints when a test panics.

#![allow(dead_code)]
// Test support: a failed lab step should fail the test loudly, right where it happened.
#![allow(clippy::unwrap_used, clippy::expect_used)]

use std::collections::{BTreeMap, BTreeSet};
use std::fs::{self, File};
use std::path::PathBuf;
use std::process::{Child, ExitStatus, Stdio};

use ferrolb_labtest::{Lab, LabSpec, RouterKind, wait_for};
use nix::sys::signal::{Signal, kill};
use nix::unistd::Pid;
use serde_json::Value;

pub use ferrolb_labtest::frr::*;
pub use ferrolb_labtest::{POLL, TIMEOUT};

/// The addresses `examples/lab` gives the `demo/web` Service on every node.
pub const VIP4: &str = "203.0.113.10";
pub const VIP6: &str = "2001:db8:ff::10";
pub const PREFIX4: &str = "203.0.113.10/32";
pub const PREFIX6: &str = "2001:db8:ff::10/128";
/// The port of the nodes' HTTP servers.
pub const HTTP_PORT: u16 = 8080;
/// What the speaker logs each time it refuses a change of the folder.
pub const REFUSED: &str = "configuration refused";

fn repository() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("../..")
}

/// The lab's default bgpd configuration (`lab/netns/routers/frr.conf.tmpl`).
pub fn default_frr_config() -> String {
    let path = repository().join("lab/netns/routers/frr.conf.tmpl");
    fs::read_to_string(&path).unwrap_or_else(|e| panic!("{}: {e}", path.display()))
}

/// The lab's default FRR configuration with two changes that keep the router's view free of
/// noise the tests did not cause:
/// - `bgp route-map delay-timer 0`: FRR otherwise applies the route-maps it loaded at start
///   5 s later by asking every established peer for a ROUTE-REFRESH, and the speakers' answer
///   (their whole table again) would look like a change in bgpd's update log;
/// - the given nodes' IPv4 addresses as configured (passive) members of peer group `NODES`:
///   FRR deletes a dynamic neighbor (from `bgp listen range`) when its session goes down, and
///   a re-created one starts its counters at zero; a configured neighbor keeps them, so
///   `connectionsEstablished` and the last NOTIFICATION received stay readable.
pub fn frr_config(configured_nodes: &[usize]) -> String {
    let template = default_frr_config();
    let global = "frr defaults traditional\n";
    let anchor = " neighbor NODES remote-as external\n";
    for line in [global, anchor] {
        assert!(
            template.contains(line),
            "the lab's FRR template no longer has {line:?}: update this test support"
        );
    }
    let mut lines = String::from(" bgp log-neighbor-changes\n");
    for i in configured_nodes {
        let addr = Lab::node_v4(*i);
        lines.push_str(&format!(
            " neighbor {addr} peer-group NODES\n neighbor {addr} passive\n"
        ));
    }
    template
        .replacen(global, &format!("{global}bgp route-map delay-timer 0\n"), 1)
        .replacen(anchor, &format!("{anchor}{lines}"), 1)
}

/// Node `i`'s addresses as FRR prints them.
pub fn node4(i: usize) -> String {
    Lab::node_v4(i).to_string()
}

pub fn node6(i: usize) -> String {
    Lab::node_v6(i).to_string()
}

/// The examples the lab demo applies (`examples/lab/*.yaml`), by file name.
pub fn example_files() -> Vec<(String, String)> {
    let dir = repository().join("examples/lab");
    let mut files: Vec<(String, String)> = fs::read_dir(&dir)
        .unwrap_or_else(|e| panic!("{}: {e}", dir.display()))
        .map(|entry| entry.unwrap().path())
        .filter(|p| p.extension().is_some_and(|e| e == "yaml"))
        .map(|p| {
            let name = p.file_name().unwrap().to_string_lossy().into_owned();
            (name, fs::read_to_string(&p).unwrap())
        })
        .collect();
    files.sort();
    assert!(!files.is_empty(), "no YAML in {}", dir.display());
    files
}

// ------------------------------------------------------------------------- the cluster

/// A lab whose nodes run `ferrolb speaker` from one configuration folder and an HTTP server
/// that answers `hello from nI`.
pub struct Cluster {
    /// The configuration folder every speaker reads.
    pub dir: PathBuf,
    speakers: BTreeMap<usize, SpeakerProcess>,
    servers: Vec<Child>,
    /// Last, so it is dropped (namespaces removed) after our processes are stopped.
    pub lab: Lab,
}

/// One `ferrolb speaker` process.
pub struct SpeakerProcess {
    child: Child,
    pub log: PathBuf,
}

impl Cluster {
    /// A lab with `nodes` nodes and the default FRR configuration.
    pub fn up(nodes: usize) -> Cluster {
        Cluster::with_spec(LabSpec::new(RouterKind::Frr).with_nodes(nodes))
    }

    /// A lab with `nodes` nodes and this bgpd configuration.
    pub fn with_router_config(nodes: usize, config: String) -> Cluster {
        Cluster::with_spec(
            LabSpec::new(RouterKind::Frr)
                .with_nodes(nodes)
                .with_router_config(config),
        )
    }

    fn with_spec(spec: LabSpec) -> Cluster {
        let lab = Lab::up(spec).unwrap_or_else(|e| panic!("{e}"));
        let dir = lab.state_dir().join("config");
        fs::create_dir_all(&dir).unwrap();
        fs::create_dir_all(lab.logs_dir()).unwrap();
        let mut cluster = Cluster {
            dir,
            speakers: BTreeMap::new(),
            servers: Vec::new(),
            lab,
        };
        for i in 1..=cluster.lab.nodes() {
            cluster.start_http_server(i);
        }
        for i in 1..=cluster.lab.nodes() {
            let ns = cluster.lab.node_ns(i);
            wait_for(TIMEOUT, POLL, || {
                let out = cluster
                    .lab
                    .exec(
                        &ns,
                        &["curl", "-sS", "--max-time", "1", "http://[::1]:8080/"],
                    )
                    .unwrap();
                if out.status.success() {
                    Ok(())
                } else {
                    Err(String::from_utf8_lossy(&out.stderr).into_owned())
                }
            })
            .unwrap_or_else(|e| panic!("HTTP server on n{i} never answered: {e}"));
        }
        cluster
    }

    fn log_file(&self, name: &str) -> (PathBuf, File) {
        let path = self.lab.logs_dir().join(name);
        let file = File::create(&path).unwrap_or_else(|e| panic!("{}: {e}", path.display()));
        (path, file)
    }

    fn start_http_server(&mut self, i: usize) {
        const SERVER: &str = r#"
import http.server, socket, sys
class Answer(http.server.BaseHTTPRequestHandler):
    def do_GET(self):
        body = ("hello from " + sys.argv[1] + "\n").encode()
        self.send_response(200)
        self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        self.wfile.write(body)
    def log_message(self, *args): pass
class V6(http.server.ThreadingHTTPServer):
    address_family = socket.AF_INET6
V6(("::", int(sys.argv[2])), Answer).serve_forever()
"#;
        let (_, log) = self.log_file(&format!("http-n{i}.log"));
        let port = HTTP_PORT.to_string();
        let name = format!("n{i}");
        let child = self
            .lab
            .command(
                &self.lab.node_ns(i),
                &["python3", "-c", SERVER, &name, &port],
            )
            .stdin(Stdio::null())
            .stdout(log.try_clone().unwrap())
            .stderr(log)
            .spawn()
            .expect("python3 starts");
        self.servers.push(child);
    }

    /// Writes `name` in the folder atomically (a hidden temporary file, then a rename), so a
    /// speaker never reads half a file.
    pub fn write(&self, name: &str, text: &str) {
        let tmp = self.dir.join(format!(".{name}.tmp"));
        fs::write(&tmp, text).unwrap();
        fs::rename(&tmp, self.dir.join(name)).unwrap();
    }

    pub fn read(&self, name: &str) -> String {
        fs::read_to_string(self.dir.join(name)).unwrap()
    }

    /// Replaces `from` by `to` in file `name` (which must contain it).
    pub fn edit(&self, name: &str, from: &str, to: &str) {
        let text = self.read(name);
        assert!(text.contains(from), "{name} has no {from:?}:\n{text}");
        self.write(name, &text.replacen(from, to, 1));
    }

    pub fn remove(&self, name: &str) {
        fs::remove_file(self.dir.join(name)).unwrap();
    }

    /// Puts `examples/lab/*.yaml` in the folder.
    pub fn write_examples(&self) {
        for (name, text) in example_files() {
            self.write(&name, &text);
        }
    }

    /// Starts `ferrolb speaker` on node `i` with VIPs bound on lo, a 2 s drain and `labels`
    /// (`k=v,...`, may be empty).
    pub fn start_speaker(&mut self, i: usize, labels: &str) {
        assert!(
            !self.speakers.contains_key(&i),
            "n{i} already runs a speaker"
        );
        let (log, file) = self.log_file(&format!("speaker-n{i}.log"));
        let dir = self.dir.display().to_string();
        let name = format!("n{i}");
        let mut argv = vec![
            env!("CARGO_BIN_EXE_ferrolb"),
            "speaker",
            "--config-dir",
            &dir,
            "--node-name",
            &name,
            "--bind-vips",
            "lo",
            "--drain-time",
            "2s",
        ];
        if !labels.is_empty() {
            argv.extend(["--node-labels", labels]);
        }
        // `ip netns exec` execs the program, so the child's pid is the speaker's.
        let child = self
            .lab
            .command(&self.lab.node_ns(i), &argv)
            .env("NO_COLOR", "1")
            .env("RUST_LOG", "info")
            .stdin(Stdio::null())
            .stdout(file.try_clone().unwrap())
            .stderr(file)
            .spawn()
            .expect("ferrolb speaker starts");
        self.speakers.insert(i, SpeakerProcess { child, log });
    }

    /// Starts a speaker without labels on every node.
    pub fn start_speakers(&mut self) {
        for i in 1..=self.lab.nodes() {
            self.start_speaker(i, "");
        }
    }

    pub fn speaker(&self, i: usize) -> &SpeakerProcess {
        self.speakers
            .get(&i)
            .unwrap_or_else(|| panic!("no speaker on n{i}"))
    }

    /// Sends `signal` to node `i`'s speaker (by its pid).
    pub fn signal(&self, i: usize, signal: Signal) {
        let pid = i32::try_from(self.speaker(i).child.id()).unwrap();
        kill(Pid::from_raw(pid), signal).unwrap();
    }

    /// Waits for node `i`'s speaker to exit and returns its status.
    pub fn wait_exit(&mut self, i: usize) -> ExitStatus {
        let speaker = self.speakers.get_mut(&i).expect("speaker");
        let status = wait_for(TIMEOUT, POLL, || speaker.child.try_wait().unwrap())
            .unwrap_or_else(|e| panic!("speaker on n{i} did not exit: {e}"));
        self.speakers.remove(&i);
        status
    }

    /// Node `i`'s speaker log so far.
    pub fn speaker_log(&self, i: usize) -> String {
        strip_ansi(&fs::read_to_string(&self.speaker(i).log).unwrap_or_default())
    }

    /// Waits until every running speaker has logged `text` at least `times` times.
    pub fn wait_speakers_logged(&self, text: &str, times: usize) {
        for i in self.speakers.keys() {
            wait_for(TIMEOUT, POLL, || {
                let n = self.speaker_log(*i).matches(text).count();
                if n >= times { Ok(()) } else { Err(n) }
            })
            .unwrap_or_else(|e| panic!("n{i} never logged {text:?} {times} times: {e}"));
        }
    }

    /// Addresses on node `i`'s lo, as `ip -j addr` lists them.
    pub fn lo_addresses(&self, i: usize) -> BTreeSet<String> {
        let out = self
            .lab
            .exec_ok(
                &self.lab.node_ns(i),
                &["ip", "-j", "addr", "show", "dev", "lo"],
            )
            .unwrap();
        let v: Value = serde_json::from_str(&out).unwrap();
        v[0]["addr_info"]
            .as_array()
            .into_iter()
            .flatten()
            .filter_map(|a| a["local"].as_str().map(str::to_string))
            .collect()
    }

    /// `n` requests from the client to `url`, one after the other: each answer's node name, or
    /// `FAILED ...`.
    pub fn requests(&self, url: &str, n: usize) -> Vec<String> {
        let script = format!(
            "for i in $(seq 1 {n}); do \
               if out=$(curl -sS --max-time 2 '{url}' 2>&1); then echo \"ok $out\"; \
               else echo \"FAILED $out\"; fi; done"
        );
        let out = self
            .lab
            .exec_ok(&self.lab.client_ns(), &["bash", "-c", &script])
            .unwrap();
        out.lines().map(answer).collect()
    }

    /// Starts a client loop of requests to `vip` (IPv4) that runs until stopped (at most 4000
    /// requests or 30 s), and a watch on the router's kernel route for it.
    pub fn client_loop(&self, vip: &str) -> ClientLoop {
        // The router's kernel route changes, timed by `ip -ts` (UTC, microseconds).
        let changes = self.lab.logs_dir().join("router-route-changes.log");
        let monitor = self
            .lab
            .command(&self.lab.router_ns(), &["ip", "-ts", "monitor", "route"])
            .env("TZ", "UTC")
            .stdin(Stdio::null())
            .stdout(File::create(&changes).unwrap())
            .stderr(Stdio::null())
            .spawn()
            .expect("ip monitor starts");
        let out = self.lab.logs_dir().join("client-loop.out");
        let stop = self.lab.state_dir().join("client-loop.stop");
        // Each line: `ok|FAILED START END ANSWER`, times from bash's $EPOCHREALTIME.
        let script = "stop=\"$1\"; url=\"$2\"; i=0; \
            while [ ! -e \"$stop\" ] && [ \"$i\" -lt 4000 ] && [ \"$SECONDS\" -lt 30 ]; do \
              i=$((i+1)); t0=$EPOCHREALTIME; \
              if out=$(curl -sS --max-time 2 \"$url\" 2>&1); then r=ok; else r=FAILED; fi; \
              echo \"$r $t0 $EPOCHREALTIME $out\"; \
              sleep 0.01; \
            done";
        let stop_arg = stop.display().to_string();
        let url = url4(vip);
        let child = self
            .lab
            .command(
                &self.lab.client_ns(),
                &["bash", "-c", script, "loop", &stop_arg, &url],
            )
            .stdin(Stdio::null())
            .stdout(File::create(&out).unwrap())
            .stderr(Stdio::null())
            .spawn()
            .expect("client loop starts");
        ClientLoop {
            child,
            monitor,
            vip: vip.to_string(),
            out,
            changes,
            stop,
        }
    }
}

impl Drop for Cluster {
    fn drop(&mut self) {
        for speaker in self.speakers.values_mut() {
            let _ = speaker.child.kill();
            let _ = speaker.child.wait();
        }
        for server in &mut self.servers {
            let _ = server.kill();
            let _ = server.wait();
        }
    }
}

/// `ok hello from n2` → `n2`; failures stay as they are.
fn answer(line: &str) -> String {
    match line.strip_prefix("ok hello from ") {
        Some(node) => node.trim().to_string(),
        None => line.to_string(),
    }
}

/// How many answers each node gave, and the failures.
pub fn tally(answers: &[String]) -> (BTreeMap<String, usize>, Vec<String>) {
    let mut by_node = BTreeMap::new();
    let mut failed = Vec::new();
    for a in answers {
        if a.starts_with('n') && !a.contains(' ') {
            *by_node.entry(a.clone()).or_insert(0) += 1;
        } else {
            failed.push(a.clone());
        }
    }
    (by_node, failed)
}

fn strip_ansi(text: &str) -> String {
    let mut out = String::with_capacity(text.len());
    let mut chars = text.chars();
    while let Some(c) = chars.next() {
        if c == '\u{1b}' {
            for c in chars.by_ref() {
                if c.is_ascii_alphabetic() {
                    break;
                }
            }
        } else {
            out.push(c);
        }
    }
    out
}

pub fn url4(addr: &str) -> String {
    format!("http://{addr}:{HTTP_PORT}/")
}

pub fn url6(addr: &str) -> String {
    format!("http://[{addr}]:{HTTP_PORT}/")
}

/// Requests from the client, one after the other, in the background.
pub struct ClientLoop {
    child: Child,
    monitor: Child,
    vip: String,
    out: PathBuf,
    changes: PathBuf,
    stop: PathBuf,
}

/// One request of a [`ClientLoop`].
#[derive(Clone, Debug)]
pub struct Request {
    pub ok: bool,
    /// When it started and ended (seconds since the epoch).
    pub start: f64,
    pub end: f64,
    /// The node that answered, or curl's error.
    pub answer: String,
}

impl ClientLoop {
    /// The requests completed so far.
    pub fn requests(&self) -> Vec<Request> {
        fs::read_to_string(&self.out)
            .unwrap_or_default()
            .lines()
            .filter_map(|line| {
                let mut parts = line.splitn(4, ' ');
                let (status, start, end) = (parts.next()?, parts.next()?, parts.next()?);
                let out = parts.next().unwrap_or("");
                Some(Request {
                    ok: status == "ok",
                    start: start.parse().ok()?,
                    end: end.parse().ok()?,
                    answer: out
                        .strip_prefix("hello from ")
                        .map(|n| n.trim().to_string())
                        .unwrap_or_else(|| out.to_string()),
                })
            })
            .collect()
    }

    /// The answers so far (node names, or curl's errors).
    pub fn answers(&self) -> Vec<String> {
        self.requests().into_iter().map(|r| r.answer).collect()
    }

    /// Waits until `node` has answered at least once.
    pub fn wait_answer_from(&self, node: &str) {
        wait_for(TIMEOUT, POLL, || {
            let answers = self.answers();
            if answers.iter().any(|a| a == node) {
                Ok(())
            } else {
                Err(answers.len())
            }
        })
        .unwrap_or_else(|e| panic!("{node} never answered the client loop: {e}"));
    }

    /// Waits until `n` more requests have completed.
    pub fn wait_more(&self, n: usize) {
        let start = self.answers().len();
        wait_for(TIMEOUT, POLL, || {
            let now = self.answers().len();
            if now >= start + n { Ok(()) } else { Err(now) }
        })
        .unwrap_or_else(|e| panic!("the client loop stalled: {e}"));
    }

    /// When the router's kernel route for the VIP changed (seconds since the epoch).
    fn route_changes(&self) -> Vec<f64> {
        let text = fs::read_to_string(&self.changes).unwrap_or_default();
        let vip = format!(" {} ", self.vip);
        text.lines()
            .filter(|l| l.starts_with('[') && l.contains(&vip))
            .filter_map(|l| parse_ip_timestamp(&l[1..l.find(']')?]))
            .collect()
    }

    /// Stops the loop (after the request in flight) and the route watch.
    pub fn finish(mut self) -> LoopReport {
        File::create(&self.stop).unwrap();
        wait_for(TIMEOUT, POLL, || self.child.try_wait().unwrap())
            .unwrap_or_else(|e| panic!("the client loop did not stop: {e}"));
        let _ = self.monitor.kill();
        let _ = self.monitor.wait();
        LoopReport {
            requests: self.requests(),
            route_changes: self.route_changes(),
        }
    }
}

impl Drop for ClientLoop {
    fn drop(&mut self) {
        for child in [&mut self.child, &mut self.monitor] {
            if child.try_wait().ok().flatten().is_none() {
                let _ = child.kill();
                let _ = child.wait();
            }
        }
    }
}

/// What a client loop saw.
#[derive(Debug)]
pub struct LoopReport {
    pub requests: Vec<Request>,
    /// When the router's kernel route for the VIP changed.
    pub route_changes: Vec<f64>,
}

/// How late `ip monitor` may stamp a route change it has received (it reads the netlink
/// message, then takes the time).
const STAMP_LAG: f64 = 0.05;

impl LoopReport {
    /// How many requests each node answered.
    pub fn by_node(&self) -> BTreeMap<String, usize> {
        let mut by_node = BTreeMap::new();
        for r in self.requests.iter().filter(|r| r.ok) {
            *by_node.entry(r.answer.clone()).or_insert(0) += 1;
        }
        by_node
    }

    /// Failed requests whose connection was reset while the router changed its ECMP route:
    /// the kernel's hash-threshold multipath maps flows afresh whenever the set of next hops
    /// changes, so a connection in flight at that instant can land on another node, which
    /// answers with a RST. That is the router's stateless ECMP, not a lost route; at most one
    /// request per change can be in flight (the loop is sequential).
    pub fn rehashed(&self) -> Vec<&Request> {
        self.requests
            .iter()
            .filter(|r| !r.ok && self.is_rehash(r))
            .collect()
    }

    /// Every other failed request.
    pub fn lost(&self) -> Vec<&Request> {
        self.requests
            .iter()
            .filter(|r| !r.ok && !self.is_rehash(r))
            .collect()
    }

    fn is_rehash(&self, r: &Request) -> bool {
        let reset =
            r.answer.contains("Connection reset by peer") || r.answer.contains("Broken pipe");
        reset
            && self
                .route_changes
                .iter()
                .any(|t| r.start <= *t && *t <= r.end + STAMP_LAG)
    }

    /// Asserts no request was lost, and at most one per route change was cut by a re-hash.
    pub fn assert_nothing_lost(&self, during: &str) {
        let lost = self.lost();
        let rehashed = self.rehashed();
        eprintln!(
            "client loop {during}: {} requests, answers per node {:?}, {} route changes, {} \
             connections reset by the router's ECMP re-hash",
            self.requests.len(),
            self.by_node(),
            self.route_changes.len(),
            rehashed.len()
        );
        assert!(
            lost.is_empty(),
            "requests failed {during}: {lost:?}\n(route changes at {:?})",
            self.route_changes
        );
        assert!(
            rehashed.len() <= self.route_changes.len(),
            "more resets than route changes {during}: {rehashed:?} ({:?})",
            self.route_changes
        );
    }
}

/// `2026-11-21T12:59:01.506073` (UTC) → seconds since the epoch.
fn parse_ip_timestamp(ts: &str) -> Option<f64> {
    let (date, time) = ts.split_once('T')?;
    let mut d = date.split('-').map(|p| p.parse::<i64>());
    let (y, m, day) = (d.next()?.ok()?, d.next()?.ok()?, d.next()?.ok()?);
    let mut t = time.split(':');
    let (h, min) = (
        t.next()?.parse::<i64>().ok()?,
        t.next()?.parse::<i64>().ok()?,
    );
    let sec: f64 = t.next()?.parse().ok()?;
    // Days from 1970-01-01 to y-m-d in the proleptic Gregorian calendar (H. Hinnant).
    let y = if m <= 2 { y - 1 } else { y };
    let era = y.div_euclid(400);
    let yoe = y - era * 400;
    let mp = (m + 9) % 12;
    let doy = (153 * mp + 2) / 5 + day - 1;
    let doe = yoe * 365 + yoe / 4 - yoe / 100 + doy;
    let days = era * 146_097 + doe - 719_468;
    Some(((days * 24 + h) * 60 + min) as f64 * 60.0 + sec)
}

/// A set of strings, for comparing next hops.
pub fn set(items: &[&str]) -> BTreeSet<String> {
    items.iter().map(|s| s.to_string()).collect()
}
