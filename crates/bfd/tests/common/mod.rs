//! Lab harness for the BFD tests: network namespaces joined by veth pairs, FRR's bfdd (with
//! zebra) in one of them, our [`Bfd`] daemon in another, and a silent blackhole (nftables drop
//! rules, carrier stays up). Everything a test creates is removed by Drop guards, even when the
//! test fails; only processes started here are stopped, by the PID they wrote.
//!
//! Needs root: without it every lab test fails with a message saying so.

#![allow(dead_code)]
#![allow(clippy::unwrap_used, clippy::expect_used)]

use std::fs::{self, File};
use std::net::IpAddr;
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::sync::Arc;
use std::sync::atomic::{AtomicU32, Ordering};
use std::time::{Duration, Instant};

use ferrolb_bfd::{Bfd, BfdStatus, SessionConfig, SessionKey, SessionStatus, State, StateEvent};
use nix::sched::CloneFlags;
use serde_json::Value;
use tokio::runtime::Runtime;
use tokio::sync::broadcast;

pub const TIMEOUT: Duration = Duration::from_secs(30);
pub const POLL: Duration = Duration::from_millis(50);
const FRR_DIR: &str = "/usr/lib/frr";

static COUNTER: AtomicU32 = AtomicU32::new(0);

/// Fails the test, loudly, when not root.
pub fn require_root() {
    let euid = nix::unistd::geteuid().as_raw();
    assert_eq!(
        euid, 0,
        "BFD lab tests need root to create network namespaces (euid {euid}); run them as root"
    );
}

/// A name unique to this process and call, `bfdt` + pid + counter, at most 15 characters.
pub fn unique_name() -> String {
    let n = COUNTER.fetch_add(1, Ordering::Relaxed);
    format!("bfdt{:x}x{n}", std::process::id() & 0xfffff)
}

pub fn run(argv: &[&str]) -> String {
    let out = Command::new(argv[0])
        .args(&argv[1..])
        .stdin(Stdio::null())
        .output()
        .unwrap_or_else(|e| panic!("cannot run {argv:?}: {e}"));
    assert!(
        out.status.success(),
        "{argv:?} failed: {}{}",
        String::from_utf8_lossy(&out.stderr),
        String::from_utf8_lossy(&out.stdout)
    );
    String::from_utf8_lossy(&out.stdout).into_owned()
}

/// Polls `probe` until it returns `Ok`, or panics after `timeout` with the last observation.
pub fn wait_for<T, E: std::fmt::Debug>(
    what: &str,
    timeout: Duration,
    mut probe: impl FnMut() -> Result<T, E>,
) -> T {
    let start = Instant::now();
    loop {
        match probe() {
            Ok(v) => return v,
            Err(seen) if start.elapsed() >= timeout => {
                panic!(
                    "{what}: gave up after {:?}; last saw {seen:?}",
                    start.elapsed()
                )
            }
            Err(_) => std::thread::sleep(POLL),
        }
    }
}

// ----------------------------------------------------------------------------- namespaces

/// A network namespace, deleted on drop.
pub struct Netns {
    pub name: String,
}

impl Netns {
    pub fn new() -> Netns {
        require_root();
        let name = unique_name();
        run(&["ip", "netns", "add", &name]);
        let ns = Netns { name };
        ns.exec(&["ip", "link", "set", "lo", "up"]);
        ns
    }

    pub fn exec(&self, argv: &[&str]) -> String {
        let mut full = vec!["ip", "netns", "exec", &self.name];
        full.extend_from_slice(argv);
        run(&full)
    }

    /// Drops every packet in and out of `dev` without touching the carrier.
    pub fn blackhole(&self, dev: &str) {
        let script = format!(
            "table inet bfdt {{\n chain in {{ type filter hook input priority 0; policy accept; iifname \"{dev}\" drop; }}\n chain out {{ type filter hook output priority 0; policy accept; oifname \"{dev}\" drop; }}\n}}\n"
        );
        let path = std::env::temp_dir().join(format!("{}.nft", self.name));
        fs::write(&path, script).unwrap();
        self.exec(&["nft", "-f", path.to_str().unwrap()]);
        let _ = fs::remove_file(path);
    }

    pub fn restore(&self) {
        self.exec(&["nft", "delete", "table", "inet", "bfdt"]);
    }
}

impl Drop for Netns {
    fn drop(&mut self) {
        let _ = Command::new("ip")
            .args(["netns", "del", &self.name])
            .stdin(Stdio::null())
            .output();
    }
}

/// Two namespaces joined by a veth pair `bfd0`:
/// `a` has 198.51.100.1/24 and 2001:db8:bfd::1/64, `b` has .2 and ::2.
pub struct Link {
    pub a: Netns,
    pub b: Netns,
}

pub const DEV: &str = "bfd0";
pub const A_V4: &str = "198.51.100.1";
pub const B_V4: &str = "198.51.100.2";
pub const A_V6: &str = "2001:db8:bfd::1";
pub const B_V6: &str = "2001:db8:bfd::2";

impl Link {
    pub fn new() -> Link {
        let a = Netns::new();
        let b = Netns::new();
        run(&[
            "ip", "link", "add", DEV, "netns", &a.name, "type", "veth", "peer", "name", DEV,
            "netns", &b.name,
        ]);
        for (ns, v4, v6) in [(&a, A_V4, A_V6), (&b, B_V4, B_V6)] {
            ns.exec(&["ip", "addr", "add", &format!("{v4}/24"), "dev", DEV]);
            ns.exec(&[
                "ip",
                "addr",
                "add",
                &format!("{v6}/64"),
                "dev",
                DEV,
                "nodad",
            ]);
            ns.exec(&["ip", "link", "set", DEV, "up"]);
        }
        Link { a, b }
    }

    /// Adds `addr/24` (or /64) to `b`'s end of the link.
    pub fn add_b_address(&self, addr: &str) {
        let prefix = if addr.contains(':') { "64" } else { "24" };
        let cidr = format!("{addr}/{prefix}");
        if addr.contains(':') {
            self.b
                .exec(&["ip", "addr", "add", &cidr, "dev", DEV, "nodad"]);
        } else {
            self.b.exec(&["ip", "addr", "add", &cidr, "dev", DEV]);
        }
    }
}

// ----------------------------------------------------------------------------- FRR

/// zebra and bfdd running in a namespace from a private directory; stopped by PID on drop.
pub struct Frr {
    pub dir: PathBuf,
    ns: String,
    pub bfdd_pid: Option<i32>,
    zebra_pid: Option<i32>,
}

impl Frr {
    /// Starts zebra and bfdd in `ns` with `bfdd_conf` (the text after `bfd` in bfdd.conf).
    pub fn start(ns: &Netns, bfdd_conf: &str) -> Frr {
        let dir = PathBuf::from(format!("/run/{}-frr", ns.name));
        let _ = fs::remove_dir_all(&dir);
        fs::create_dir_all(&dir).unwrap();
        fs::write(dir.join("zebra.conf"), "hostname rtr\n").unwrap();
        fs::write(dir.join("bfdd.conf"), bfdd_conf).unwrap();
        // FRR drops privileges to user frr: give it the directory.
        run(&["chown", "-R", "frr:frr", dir.to_str().unwrap()]);
        let mut frr = Frr {
            dir,
            ns: ns.name.clone(),
            bfdd_pid: None,
            zebra_pid: None,
        };
        frr.zebra_pid = Some(frr.daemon(ns, "zebra"));
        frr.bfdd_pid = Some(frr.daemon(ns, "bfdd"));
        frr
    }

    fn daemon(&self, ns: &Netns, name: &str) -> i32 {
        let d = self.dir.to_str().unwrap();
        let conf = format!("{d}/{name}.conf");
        let pid_file = format!("{d}/{name}.pid");
        let log = format!("file:{d}/{name}.log");
        let zsock = format!("{d}/zserv.api");
        ns.exec(&[
            &format!("{FRR_DIR}/{name}"),
            "-d",
            "-f",
            &conf,
            "-i",
            &pid_file,
            "-z",
            &zsock,
            "--vty_socket",
            d,
            "-P",
            "0",
            "--log",
            &log,
        ]);
        let vty = self.dir.join(format!("{name}.vty"));
        wait_for(&format!("FRR {name} vty socket"), TIMEOUT, || {
            if vty.exists() { Ok(()) } else { Err("missing") }
        });
        wait_for(&format!("FRR {name} pid file"), TIMEOUT, || {
            fs::read_to_string(&pid_file)
                .ok()
                .and_then(|s| s.trim().parse::<i32>().ok())
                .ok_or("no pid")
        })
    }

    pub fn vtysh(&self, commands: &[&str]) -> String {
        let mut argv = vec!["vtysh", "--vty_socket", self.dir.to_str().unwrap()];
        for c in commands {
            argv.push("-c");
            argv.push(c);
        }
        run(&argv)
    }

    pub fn json(&self, command: &str) -> Value {
        let text = self.vtysh(&[command]);
        serde_json::from_str(&text).unwrap_or_else(|e| panic!("{command}: {e}: {text}"))
    }

    /// FRR's view of its session with `peer` (`show bfd peers json`).
    pub fn peer(&self, peer: &str) -> Option<Value> {
        self.json("show bfd peers json")
            .as_array()?
            .iter()
            .find(|p| p["peer"] == peer)
            .cloned()
    }

    pub fn counters(&self, peer: &str) -> Option<Value> {
        self.json("show bfd peers counters json")
            .as_array()?
            .iter()
            .find(|p| p["peer"] == peer)
            .cloned()
    }

    pub fn status(&self, peer: &str) -> String {
        self.peer(peer)
            .and_then(|p| p["status"].as_str().map(str::to_owned))
            .unwrap_or_default()
    }

    pub fn wait_status(&self, peer: &str, status: &str) -> Value {
        wait_for(
            &format!("FRR sees {peer} {status}"),
            TIMEOUT,
            || match self.peer(peer) {
                Some(p) if p["status"] == status => Ok(p),
                other => Err(other),
            },
        )
    }

    /// Runs configuration lines under `bfd` / `peer <peer_line>`.
    pub fn configure_peer(&self, peer_line: &str, lines: &[&str]) {
        let peer = format!("peer {peer_line}");
        let mut cmds = vec!["configure terminal", "bfd", peer.as_str()];
        cmds.extend_from_slice(lines);
        self.vtysh(&cmds);
    }

    /// CPU time (user + system) bfdd has used.
    pub fn bfdd_cpu(&self) -> Duration {
        process_cpu(self.bfdd_pid.expect("bfdd running"))
    }

    pub fn stop(&mut self) {
        for pid in [self.bfdd_pid.take(), self.zebra_pid.take()]
            .into_iter()
            .flatten()
        {
            stop_process(pid, &self.dir);
        }
    }

    pub fn dump_logs(&self) {
        for name in ["bfdd.log", "zebra.log"] {
            if let Ok(text) = fs::read_to_string(self.dir.join(name)) {
                let lines: Vec<&str> = text.lines().collect();
                eprintln!("---- {} {name} (last lines) ----", self.ns);
                for l in &lines[lines.len().saturating_sub(30)..] {
                    eprintln!("{l}");
                }
            }
        }
    }
}

impl Drop for Frr {
    fn drop(&mut self) {
        if std::thread::panicking() {
            self.dump_logs();
        }
        self.stop();
        let _ = fs::remove_dir_all(&self.dir);
    }
}

/// SIGTERM, then SIGKILL after 3 s, for a process we started: its command line must name our
/// private directory, so a reused PID is never touched.
fn stop_process(pid: i32, dir: &Path) {
    let ours = fs::read(format!("/proc/{pid}/cmdline"))
        .map(|c| String::from_utf8_lossy(&c).contains(dir.to_str().unwrap_or("?")))
        .unwrap_or(false);
    if !ours {
        return;
    }
    let pid = nix::unistd::Pid::from_raw(pid);
    let _ = nix::sys::signal::kill(pid, nix::sys::signal::Signal::SIGTERM);
    let start = Instant::now();
    while start.elapsed() < Duration::from_secs(3) {
        if nix::sys::signal::kill(pid, None).is_err() {
            return;
        }
        std::thread::sleep(Duration::from_millis(20));
    }
    let _ = nix::sys::signal::kill(pid, nix::sys::signal::Signal::SIGKILL);
}

/// utime + stime of a process, from /proc/PID/stat.
pub fn process_cpu(pid: i32) -> Duration {
    let stat = fs::read_to_string(format!("/proc/{pid}/stat")).unwrap();
    // The command name may contain spaces: fields start after the closing parenthesis.
    let rest = &stat[stat.rfind(')').unwrap() + 2..];
    let fields: Vec<&str> = rest.split_whitespace().collect();
    // utime and stime are fields 14 and 15 of the whole line, 12 and 13 after the name.
    let ticks: u64 = fields[11].parse::<u64>().unwrap() + fields[12].parse::<u64>().unwrap();
    let hz = nix::unistd::sysconf(nix::unistd::SysconfVar::CLK_TCK)
        .ok()
        .flatten()
        .unwrap_or(100) as u64;
    Duration::from_micros(ticks * 1_000_000 / hz)
}

// ----------------------------------------------------------------------------- our daemon

/// Our daemon, on a tokio runtime whose one worker thread lives in a namespace.
pub struct Node {
    rt: Option<Runtime>,
    bfd: Option<Arc<Bfd>>,
}

impl Node {
    pub fn start(ns: &Netns) -> Node {
        let name = ns.name.clone();
        let rt = std::thread::spawn(move || {
            let file = File::open(Path::new("/run/netns").join(&name)).unwrap();
            nix::sched::setns(&file, CloneFlags::CLONE_NEWNET).unwrap();
            // Worker threads are spawned from here, so they inherit the namespace.
            tokio::runtime::Builder::new_multi_thread()
                .worker_threads(1)
                .enable_all()
                .build()
                .unwrap()
        })
        .join()
        .unwrap();
        let bfd = rt
            .block_on(rt.spawn(async { Bfd::start().await }))
            .unwrap()
            .expect("daemon starts");
        Node {
            rt: Some(rt),
            bfd: Some(Arc::new(bfd)),
        }
    }

    fn rt(&self) -> &Runtime {
        self.rt.as_ref().unwrap()
    }

    fn bfd(&self) -> Arc<Bfd> {
        self.bfd.clone().unwrap()
    }

    pub fn try_set_sessions(
        &self,
        sessions: Vec<SessionConfig>,
    ) -> Result<(), ferrolb_bfd::BfdError> {
        let bfd = self.bfd();
        self.rt()
            .block_on(
                self.rt()
                    .spawn(async move { bfd.set_sessions(sessions).await }),
            )
            .unwrap()
    }

    pub fn set_sessions(&self, sessions: Vec<SessionConfig>) {
        self.try_set_sessions(sessions).expect("set_sessions");
    }

    pub fn status(&self) -> BfdStatus {
        self.bfd().status().borrow().clone()
    }

    pub fn session(&self, key: &SessionKey) -> Option<SessionStatus> {
        self.status().sessions.get(key).cloned()
    }

    pub fn subscribe(&self) -> broadcast::Receiver<StateEvent> {
        self.bfd().subscribe()
    }

    pub fn wait_state(&self, key: &SessionKey, state: State) -> SessionStatus {
        wait_for(
            &format!("our session {key} {state}"),
            TIMEOUT,
            || match self.session(key) {
                Some(s) if s.state == state => Ok(s),
                other => Err(other.map(|s| (s.state, s.local_diagnostic, s.transport_error))),
            },
        )
    }

    /// CPU time of the runtime's worker thread, which runs the whole daemon.
    pub fn worker_cpu(&self) -> Duration {
        self.rt()
            .block_on(self.rt().spawn(async { thread_cpu() }))
            .unwrap()
    }

    pub fn shutdown(mut self) {
        let bfd = Arc::try_unwrap(self.bfd.take().unwrap()).expect("no other handle");
        self.rt()
            .block_on(self.rt().spawn(async move { bfd.shutdown().await }))
            .unwrap();
    }
}

impl Drop for Node {
    fn drop(&mut self) {
        self.bfd = None;
        if let Some(rt) = self.rt.take() {
            rt.shutdown_background();
        }
    }
}

fn thread_cpu() -> Duration {
    use nix::sys::resource::{UsageWho, getrusage};
    use nix::sys::time::TimeValLike;
    let usage = getrusage(UsageWho::RUSAGE_THREAD).expect("getrusage(RUSAGE_THREAD)");
    let micros = usage.user_time().num_microseconds() + usage.system_time().num_microseconds();
    Duration::from_micros(micros.max(0) as u64)
}

pub fn ip(s: &str) -> IpAddr {
    s.parse().unwrap()
}

pub fn ms(n: u64) -> Duration {
    Duration::from_millis(n)
}

/// A session to `peer` at `interval` × `multiplier`.
pub fn session(peer: &str, interval: u64, multiplier: u8) -> SessionConfig {
    let mut c = SessionConfig::new(ip(peer));
    c.profile.transmit_interval = ms(interval);
    c.profile.receive_interval = ms(interval);
    c.profile.detect_multiplier = multiplier;
    c
}

/// bfdd.conf with one single-hop peer.
pub fn frr_peer_conf(peer: &str, interval: u64, multiplier: u8) -> String {
    format!(
        "bfd\n peer {peer}\n  receive-interval {interval}\n  transmit-interval {interval}\n  detect-multiplier {multiplier}\n !\n!\n"
    )
}

/// p50, p95 and max of a sample, in milliseconds.
pub fn percentiles(samples: &[Duration]) -> (f64, f64, f64) {
    let mut v: Vec<f64> = samples.iter().map(|d| d.as_secs_f64() * 1000.0).collect();
    v.sort_by(|a, b| a.partial_cmp(b).unwrap());
    let at = |q: f64| v[((v.len() as f64 - 1.0) * q).round() as usize];
    (at(0.50), at(0.95), v[v.len() - 1])
}
