//! Test harness for the ferrolb network-namespace lab (`lab/netns/lab.sh`).
//!
//! This crate owns bringing a lab up and down from Rust tests, running commands inside its
//! namespaces, and asking the lab's router (FRR, BIRD 2 or GoBGP) for its view through the
//! router's own CLI. It knows nothing about BGP beyond starting those routers and relaying
//! their answers; assertions on routes and sessions belong to the tests that use it.
//!
//! The topology (see `lab/netns/README.md`):
//!
//! ```text
//! NAME-cl  eth0 198.51.100.10/24, 2001:db8:0:2::10/64
//!    |
//! NAME-rtr eth1 198.51.100.1/24, 2001:db8:0:2::1/64     router, AS 64500, id 192.0.2.1
//!          eth0 192.0.2.1/24,    2001:db8:0:1::1/64
//!    |
//! NAME-sw  br0
//!    |
//! NAME-n<i> eth0 192.0.2.(10+i)/24, 2001:db8:0:1::(10+i)/64
//! ```
//!
//! Lab tests need root. When namespaces cannot be created, [`Lab::up`] returns an error that
//! says exactly what is missing; tests must fail with it (never skip).
//!
//! ```no_run
//! use ferrolb_labtest::{Lab, LabSpec, RouterKind};
//! let lab = Lab::up(LabSpec::new(RouterKind::Frr))?;
//! let groups = lab.vtysh_json("show bgp peer-group json")?;
//! assert_eq!(groups["NODES"]["type"], "external");
//! # Ok::<(), ferrolb_labtest::LabError>(())
//! ```

use std::ffi::OsStr;
use std::fmt;
use std::fs::{self, File};
use std::io;
use std::net::{IpAddr, Ipv4Addr, Ipv6Addr};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, ExitStatus, Output, Stdio};
use std::sync::atomic::{AtomicU32, AtomicU64, Ordering};
use std::thread::JoinHandle;
use std::time::{Duration, Instant};

use nix::sched::CloneFlags;

/// The router's AS number in every lab.
pub const ROUTER_ASN: u32 = 64500;
/// The router's BGP identifier in every lab.
pub const ROUTER_ID: Ipv4Addr = Ipv4Addr::new(192, 0, 2, 1);
/// The most nodes a lab can have.
pub const MAX_NODES: usize = 40;
/// Where `lab.sh` keeps each lab's state (`<root>/<name>/`).
pub const STATE_ROOT: &str = "/run/ferrolb-lab";
/// The GoBGP router's gRPC API port, on 127.0.0.1 inside the router namespace.
pub const GOBGP_API_PORT: u16 = 50051;

/// Environment variable that points the harness at another `lab.sh`.
pub const LAB_SH_ENV: &str = "FERROLB_LAB_SH";
/// Environment variable that keeps labs after the test (for debugging): set it to `1`.
pub const KEEP_ENV: &str = "FERROLB_LAB_KEEP";

/// Which router runs in the lab's router namespace.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum RouterKind {
    /// FRR 8.4: zebra + bgpd, asked with `vtysh`.
    Frr,
    /// BIRD 2, asked with `birdc`.
    Bird,
    /// GoBGP, asked with `gobgp -j`.
    Gobgp,
}

impl RouterKind {
    /// The name `lab.sh --router` takes.
    pub fn as_str(self) -> &'static str {
        match self {
            RouterKind::Frr => "frr",
            RouterKind::Bird => "bird",
            RouterKind::Gobgp => "gobgp",
        }
    }
}

impl fmt::Display for RouterKind {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

/// What lab to bring up.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct LabSpec {
    /// The router in `NAME-rtr`.
    pub router: RouterKind,
    /// The router's whole configuration text, replacing the default one (for FRR: the bgpd
    /// configuration). `lab.sh` substitutes `@NAME@`, `@STATE_DIR@`, `@ROUTER_PORT@`,
    /// `@ASN@` and `@ROUTER_ID@` in it.
    pub router_config: Option<String>,
    /// Number of node namespaces (1..=[`MAX_NODES`]).
    pub nodes: usize,
    /// The port the router listens on for BGP (default 179).
    pub router_port: Option<u16>,
}

impl LabSpec {
    /// Three nodes, the router's default configuration, port 179.
    pub fn new(router: RouterKind) -> Self {
        LabSpec {
            router,
            router_config: None,
            nodes: 3,
            router_port: None,
        }
    }

    /// Use this configuration instead of the router's default one.
    pub fn with_router_config(mut self, config: impl Into<String>) -> Self {
        self.router_config = Some(config.into());
        self
    }

    /// Use this many nodes.
    pub fn with_nodes(mut self, nodes: usize) -> Self {
        self.nodes = nodes;
        self
    }

    /// Let the router listen for BGP on this port.
    pub fn with_router_port(mut self, port: u16) -> Self {
        self.router_port = Some(port);
        self
    }
}

/// Everything that can go wrong in the lab, with enough context to act on it.
#[derive(Debug, thiserror::Error)]
pub enum LabError {
    /// Network namespaces need root.
    #[error(
        "lab tests need root to create network namespaces (effective uid is {euid}): \
         run `sudo scripts/test.sh` (CI runs as root)"
    )]
    NotRoot {
        /// The effective uid of the test process.
        euid: u32,
    },
    /// `lab.sh` is not where the harness looks for it.
    #[error("lab script {} not found: run from the ferrolb repository or set {LAB_SH_ENV}", path.display())]
    ScriptMissing {
        /// Where the harness looked.
        path: PathBuf,
    },
    /// The spec asks for something the lab cannot do.
    #[error("invalid lab spec: {0}")]
    InvalidSpec(String),
    /// `lab.sh up` failed; `message` is its own one-line explanation (what is missing, how to
    /// fix it).
    #[error("lab {name} did not come up: {message}")]
    Up {
        /// The lab's name.
        name: String,
        /// What `lab.sh` said.
        message: String,
    },
    /// A command ran and failed.
    #[error("`{command}` failed ({status}): {output}")]
    Command {
        /// The command line.
        command: String,
        /// How it ended (exit code or signal).
        status: String,
        /// Its stderr, or its stdout when stderr was empty.
        output: String,
    },
    /// A command could not be started at all.
    #[error("could not run `{command}`: {source}")]
    Spawn {
        /// The command line.
        command: String,
        /// Why.
        #[source]
        source: io::Error,
    },
    /// A command printed something that is not the JSON it should print.
    #[error("`{command}` did not print JSON ({source}); it printed: {output}")]
    Json {
        /// The command line.
        command: String,
        /// The parse error.
        #[source]
        source: serde_json::Error,
        /// What it printed (truncated).
        output: String,
    },
    /// The calling thread could not join a network namespace.
    #[error("cannot enter network namespace {ns}: {reason}")]
    Netns {
        /// The namespace.
        ns: String,
        /// Why.
        reason: String,
    },
    /// The operation needs another router kind.
    #[error("{operation} needs a {needed} router, but lab {name} runs {actual}")]
    WrongRouter {
        /// What was asked.
        operation: &'static str,
        /// The router it needs.
        needed: RouterKind,
        /// The router the lab runs.
        actual: RouterKind,
        /// The lab's name.
        name: String,
    },
    /// A file-system operation on the lab's state failed.
    #[error("{context}: {source}")]
    Io {
        /// What was being done.
        context: String,
        /// Why it failed.
        #[source]
        source: io::Error,
    },
}

/// A running lab. Dropping it runs `lab.sh down` (stops every process inside its namespaces,
/// deletes them and its state directory).
#[derive(Debug)]
pub struct Lab {
    name: String,
    state_dir: PathBuf,
    router: RouterKind,
    nodes: usize,
    router_port: u16,
    script: PathBuf,
}

static NAME_COUNTER: AtomicU32 = AtomicU32::new(0);
static SPAWN_COUNTER: AtomicU64 = AtomicU64::new(0);

impl Lab {
    /// Brings up a new lab with a name no other lab on this machine uses (`t` + 5 characters
    /// derived from the process id and a counter), so tests can run labs in parallel.
    pub fn up(spec: LabSpec) -> Result<Lab, LabError> {
        let euid = effective_uid();
        if euid != 0 {
            return Err(LabError::NotRoot { euid });
        }
        if spec.nodes == 0 || spec.nodes > MAX_NODES {
            return Err(LabError::InvalidSpec(format!(
                "nodes must be 1..={MAX_NODES}, got {}",
                spec.nodes
            )));
        }
        if spec.router_port == Some(0) {
            return Err(LabError::InvalidSpec("router_port must not be 0".into()));
        }
        let script = lab_script()?;
        let (name, state_dir) = reserve_name()?;
        let lab = Lab {
            name,
            state_dir,
            router: spec.router,
            nodes: spec.nodes,
            router_port: spec.router_port.unwrap_or(179),
            script,
        };
        // From here on, dropping `lab` tears down whatever was created.
        let mut args = vec![
            "up".to_owned(),
            "--name".to_owned(),
            lab.name.clone(),
            "--router".to_owned(),
            spec.router.as_str().to_owned(),
            "--nodes".to_owned(),
            spec.nodes.to_string(),
            "--router-port".to_owned(),
            lab.router_port.to_string(),
        ];
        if let Some(config) = &spec.router_config {
            let path = lab.state_dir.join("router-config.in");
            fs::write(&path, config).map_err(|source| LabError::Io {
                context: format!("writing the router config to {}", path.display()),
                source,
            })?;
            args.push("--router-config".to_owned());
            args.push(path.display().to_string());
        }
        let output = run(Command::new(&lab.script).args(&args).stdin(Stdio::null()))?;
        if !output.status.success() {
            return Err(LabError::Up {
                name: lab.name.clone(),
                message: script_message(&output),
            });
        }
        Ok(lab)
    }

    /// The lab's name (the prefix of its namespaces).
    pub fn name(&self) -> &str {
        &self.name
    }

    /// The lab's state directory (`/run/ferrolb-lab/NAME`): router configs, pid files,
    /// sockets and logs.
    pub fn state_dir(&self) -> &Path {
        &self.state_dir
    }

    /// Where [`Lab::spawn`] writes the output of the processes it starts.
    pub fn logs_dir(&self) -> PathBuf {
        self.state_dir.join("logs")
    }

    /// The router kind.
    pub fn router(&self) -> RouterKind {
        self.router
    }

    /// The number of nodes.
    pub fn nodes(&self) -> usize {
        self.nodes
    }

    /// The port the router listens on for BGP.
    pub fn router_port(&self) -> u16 {
        self.router_port
    }

    /// The bridge namespace.
    pub fn switch_ns(&self) -> String {
        format!("{}-sw", self.name)
    }

    /// The router namespace.
    pub fn router_ns(&self) -> String {
        format!("{}-rtr", self.name)
    }

    /// The namespace of node `i` (1-based).
    pub fn node_ns(&self, i: usize) -> String {
        format!("{}-n{i}", self.name)
    }

    /// The client namespace.
    pub fn client_ns(&self) -> String {
        format!("{}-cl", self.name)
    }

    /// Every namespace of the lab: switch, router, client, nodes.
    pub fn namespaces(&self) -> Vec<String> {
        let mut all = vec![self.switch_ns(), self.router_ns(), self.client_ns()];
        all.extend((1..=self.nodes).map(|i| self.node_ns(i)));
        all
    }

    /// The router's fabric address (nodes peer with it): 192.0.2.1.
    pub fn router_v4() -> Ipv4Addr {
        ROUTER_ID
    }

    /// The router's fabric address: 2001:db8:0:1::1.
    pub fn router_v6() -> Ipv6Addr {
        Ipv6Addr::new(0x2001, 0xdb8, 0, 1, 0, 0, 0, 1)
    }

    /// The router's address on the client link: 198.51.100.1.
    pub fn router_client_v4() -> Ipv4Addr {
        Ipv4Addr::new(198, 51, 100, 1)
    }

    /// The router's address on the client link: 2001:db8:0:2::1.
    pub fn router_client_v6() -> Ipv6Addr {
        Ipv6Addr::new(0x2001, 0xdb8, 0, 2, 0, 0, 0, 1)
    }

    /// Node `i`'s address (1-based): 192.0.2.(10+i).
    ///
    /// # Panics
    /// If `i` is 0 or above [`MAX_NODES`] (a bug in the test).
    pub fn node_v4(i: usize) -> Ipv4Addr {
        Ipv4Addr::new(192, 0, 2, 10 + node_index(i))
    }

    /// Node `i`'s address (1-based): 2001:db8:0:1::(10+i), the last group in hex as written
    /// in decimal, e.g. node 1 is `2001:db8:0:1::11`.
    ///
    /// # Panics
    /// If `i` is 0 or above [`MAX_NODES`] (a bug in the test).
    pub fn node_v6(i: usize) -> Ipv6Addr {
        Ipv6Addr::new(
            0x2001,
            0xdb8,
            0,
            1,
            0,
            0,
            0,
            decimal_as_hex(10 + node_index(i)),
        )
    }

    /// The client's address: 198.51.100.10.
    pub fn client_v4() -> Ipv4Addr {
        Ipv4Addr::new(198, 51, 100, 10)
    }

    /// The client's address: 2001:db8:0:2::10.
    pub fn client_v6() -> Ipv6Addr {
        Ipv6Addr::new(0x2001, 0xdb8, 0, 2, 0, 0, 0, 0x10)
    }

    /// A command that runs `argv` inside namespace `ns` (`ip netns exec`), for callers that
    /// want their own stdio or environment.
    pub fn command(&self, ns: &str, argv: &[&str]) -> Command {
        let mut cmd = Command::new("ip");
        cmd.args(["netns", "exec", ns]).args(argv);
        cmd
    }

    /// Runs `argv` inside namespace `ns` and returns its output whatever its exit status
    /// (so tests can assert on failures too). Errors only when it cannot be run.
    pub fn exec(&self, ns: &str, argv: &[&str]) -> Result<Output, LabError> {
        run(self.command(ns, argv).stdin(Stdio::null()))
    }

    /// Runs `argv` inside namespace `ns`; its stdout when it exits 0, else
    /// [`LabError::Command`].
    pub fn exec_ok(&self, ns: &str, argv: &[&str]) -> Result<String, LabError> {
        run_ok(self.command(ns, argv).stdin(Stdio::null()))
    }

    /// Starts `argv` inside namespace `ns`, stdin from /dev/null, stdout and stderr appended
    /// to a file in [`Lab::logs_dir`] (shown when a test fails with the lab still up).
    /// The caller owns the child; processes still running in the lab's namespaces are
    /// stopped when the lab is dropped.
    pub fn spawn(&self, ns: &str, argv: &[&str]) -> Result<Child, LabError> {
        let dir = self.logs_dir();
        fs::create_dir_all(&dir).map_err(|source| LabError::Io {
            context: format!("creating {}", dir.display()),
            source,
        })?;
        let program = argv
            .first()
            .map(|p| Path::new(p).file_name().unwrap_or(OsStr::new(p)))
            .map(|p| p.to_string_lossy().into_owned())
            .unwrap_or_default();
        let n = SPAWN_COUNTER.fetch_add(1, Ordering::Relaxed);
        let path = dir.join(format!("{ns}-{n}-{program}.log"));
        let log = File::create(&path).map_err(|source| LabError::Io {
            context: format!("creating {}", path.display()),
            source,
        })?;
        let log_err = log.try_clone().map_err(|source| LabError::Io {
            context: format!("duplicating {}", path.display()),
            source,
        })?;
        let mut cmd = self.command(ns, argv);
        cmd.stdin(Stdio::null()).stdout(log).stderr(log_err);
        cmd.spawn().map_err(|source| LabError::Spawn {
            command: render_command(&cmd),
            source,
        })
    }

    /// Pings `addr` once from namespace `ns` (2 s timeout); Ok when a reply came back.
    pub fn ping(&self, ns: &str, addr: IpAddr) -> Result<(), LabError> {
        let addr = addr.to_string();
        self.exec_ok(ns, &["ping", "-n", "-c", "1", "-W", "2", &addr])
            .map(drop)
    }

    /// Runs FRR's `vtysh` against this lab's daemons. Each line of `cmd` becomes one `-c`, so
    /// `"configure terminal\nrouter bgp 64500\nneighbor 192.0.2.11 shutdown"` works.
    /// Returns stdout; a non-zero exit (e.g. `% Unknown command`) is an error.
    pub fn vtysh(&self, cmd: &str) -> Result<String, LabError> {
        self.require(RouterKind::Frr, "vtysh")?;
        let mut command = Command::new("vtysh");
        command.arg("--vty_socket").arg(self.state_dir.join("frr"));
        for line in cmd.lines().map(str::trim).filter(|l| !l.is_empty()) {
            command.arg("-c").arg(line);
        }
        run_ok(command.stdin(Stdio::null()))
    }

    /// [`Lab::vtysh`] and parse its output as JSON (use a `... json` show command).
    pub fn vtysh_json(&self, cmd: &str) -> Result<serde_json::Value, LabError> {
        let out = self.vtysh(cmd)?;
        parse_json(&format!("vtysh -c '{cmd}'"), &out)
    }

    /// Runs `birdc` against this lab's BIRD; returns its output without the
    /// `BIRD x.y.z ready.` banner.
    pub fn birdc(&self, cmd: &str) -> Result<String, LabError> {
        self.require(RouterKind::Bird, "birdc")?;
        let mut command = Command::new("birdc");
        command
            .arg("-s")
            .arg(self.state_dir.join("bird").join("bird.ctl"))
            .arg(cmd);
        let out = run_ok(command.stdin(Stdio::null()))?;
        Ok(out
            .lines()
            .filter(|l| !(l.starts_with("BIRD ") && l.ends_with(" ready.")))
            .map(|l| format!("{l}\n"))
            .collect())
    }

    /// Runs `gobgp` (inside the router namespace, against its API on 127.0.0.1) and returns
    /// stdout; `gobgp` exits 0 on some errors, so anything starting with `Error:` on stderr
    /// is an error too.
    pub fn gobgp(&self, args: &[&str]) -> Result<String, LabError> {
        self.require(RouterKind::Gobgp, "gobgp")?;
        let port = GOBGP_API_PORT.to_string();
        let mut argv = vec!["gobgp", "--host", "127.0.0.1", "--port", &port];
        argv.extend_from_slice(args);
        let mut command = self.command(&self.router_ns(), &argv);
        let output = run(command.stdin(Stdio::null()))?;
        let stderr = String::from_utf8_lossy(&output.stderr);
        if !output.status.success() || stderr.lines().any(|l| l.starts_with("Error:")) {
            return Err(command_error(&command, &output));
        }
        Ok(String::from_utf8_lossy(&output.stdout).into_owned())
    }

    /// `gobgp -j ARGS...`, parsed. Output made of several JSON documents (one per line) comes
    /// back as an array of them; empty output as `null`.
    pub fn gobgp_json(&self, args: &[&str]) -> Result<serde_json::Value, LabError> {
        let mut with_json = vec!["-j"];
        with_json.extend_from_slice(args);
        let out = self.gobgp(&with_json)?;
        let what = format!("gobgp -j {}", args.join(" "));
        if out.trim().is_empty() {
            return Ok(serde_json::Value::Null);
        }
        match serde_json::from_str(out.trim()) {
            Ok(value) => Ok(value),
            Err(_) => serde_json::Deserializer::from_str(&out)
                .into_iter::<serde_json::Value>()
                .collect::<Result<Vec<_>, _>>()
                .map(serde_json::Value::Array)
                .map_err(|source| LabError::Json {
                    command: what,
                    source,
                    output: truncate(&out),
                }),
        }
    }

    /// Stops the router daemons (by their pid files); the namespaces stay.
    pub fn router_stop(&self) -> Result<(), LabError> {
        self.script_cmd("router-stop")
    }

    /// Starts the router daemons again with the same configuration and waits until the
    /// router answers its CLI.
    pub fn router_start(&self) -> Result<(), LabError> {
        self.script_cmd("router-start")
    }

    /// [`Lab::router_stop`] then [`Lab::router_start`].
    pub fn router_restart(&self) -> Result<(), LabError> {
        self.script_cmd("router-restart")
    }

    /// The pid of the router's BGP daemon (bgpd, bird or gobgpd) when it is running.
    pub fn router_pid(&self) -> Option<u32> {
        let file = match self.router {
            RouterKind::Frr => self.state_dir.join("frr").join("bgpd.pid"),
            RouterKind::Bird => self.state_dir.join("bird").join("bird.pid"),
            RouterKind::Gobgp => self.state_dir.join("gobgp").join("gobgpd.pid"),
        };
        let pid: u32 = fs::read_to_string(file).ok()?.trim().parse().ok()?;
        let status = fs::read_to_string(format!("/proc/{pid}/status")).ok()?;
        let zombie = status
            .lines()
            .any(|l| l.starts_with("State:") && l.contains('Z'));
        (!zombie).then_some(pid)
    }

    /// The router's log file (bgpd.log, bird.log or gobgpd.log).
    pub fn router_log(&self) -> PathBuf {
        match self.router {
            RouterKind::Frr => self.state_dir.join("frr").join("bgpd.log"),
            RouterKind::Bird => self.state_dir.join("bird").join("bird.log"),
            RouterKind::Gobgp => self.state_dir.join("gobgp").join("gobgpd.log"),
        }
    }

    fn require(&self, needed: RouterKind, operation: &'static str) -> Result<(), LabError> {
        if self.router == needed {
            Ok(())
        } else {
            Err(LabError::WrongRouter {
                operation,
                needed,
                actual: self.router,
                name: self.name.clone(),
            })
        }
    }

    fn script_cmd(&self, sub: &str) -> Result<(), LabError> {
        run_ok(
            Command::new(&self.script)
                .args([sub, "--name", &self.name])
                .stdin(Stdio::null()),
        )
        .map(drop)
    }

    /// Prints the tail of the router's log and of every spawned process's log to stderr.
    fn dump_logs(&self) {
        let mut files = vec![self.router_log()];
        if let Ok(entries) = fs::read_dir(self.logs_dir()) {
            let mut logs: Vec<PathBuf> = entries.filter_map(|e| e.ok().map(|e| e.path())).collect();
            logs.sort();
            files.extend(logs);
        }
        for file in files {
            if let Ok(text) = fs::read_to_string(&file) {
                let lines: Vec<&str> = text.lines().collect();
                let tail = &lines[lines.len().saturating_sub(40)..];
                eprintln!(
                    "---- lab {}: last lines of {} ----",
                    self.name,
                    file.display()
                );
                for line in tail {
                    eprintln!("{line}");
                }
            }
        }
    }
}

impl Drop for Lab {
    fn drop(&mut self) {
        if std::thread::panicking() {
            self.dump_logs();
        }
        if std::env::var(KEEP_ENV).is_ok_and(|v| v == "1") {
            eprintln!(
                "lab {} kept ({KEEP_ENV}=1); remove it with: {} down --name {}",
                self.name,
                self.script.display(),
                self.name
            );
            return;
        }
        let result = run(Command::new(&self.script)
            .args(["down", "--name", &self.name])
            .stdin(Stdio::null()));
        match result {
            Ok(output) if output.status.success() => {}
            Ok(output) => eprintln!(
                "lab {}: `lab.sh down` failed: {}",
                self.name,
                script_message(&output)
            ),
            Err(err) => eprintln!("lab {}: {err}", self.name),
        }
    }
}

/// Runs `f` on a new OS thread that first joins network namespace `ns` (`setns(2)` with
/// `CLONE_NEWNET` on that thread only; the rest of the process stays where it is). Sockets
/// the closure opens live in `ns`: use it to run a tokio current-thread runtime with a BGP
/// speaker inside a node namespace. The result is `Err` when the namespace cannot be joined.
pub fn spawn_in_netns<T: Send + 'static>(
    ns: &str,
    f: impl FnOnce() -> T + Send + 'static,
) -> JoinHandle<Result<T, LabError>> {
    let ns = ns.to_owned();
    std::thread::spawn(move || {
        enter_netns(&ns)?;
        Ok(f())
    })
}

fn enter_netns(ns: &str) -> Result<(), LabError> {
    let path = Path::new("/run/netns").join(ns);
    let file = File::open(&path).map_err(|e| LabError::Netns {
        ns: ns.to_owned(),
        reason: format!("opening {}: {e}", path.display()),
    })?;
    nix::sched::setns(&file, CloneFlags::CLONE_NEWNET).map_err(|e| LabError::Netns {
        ns: ns.to_owned(),
        reason: format!("setns: {e}"),
    })
}

/// What a [`wait_for`] probe saw: `Some`/`Ok` ends the wait, `None`/`Err` is recorded as the
/// last observation (`Err` values are shown with `Debug`, so return `Err(what_you_saw)` for a
/// useful failure message).
pub trait Observation {
    /// What the wait returns.
    type Value;
    /// `Ok` when the wait is over, else a description of what was seen.
    fn into_outcome(self) -> Result<Self::Value, String>;
}

impl<T> Observation for Option<T> {
    type Value = T;
    fn into_outcome(self) -> Result<T, String> {
        self.ok_or_else(|| "None".to_owned())
    }
}

impl<T, E: fmt::Debug> Observation for Result<T, E> {
    type Value = T;
    fn into_outcome(self) -> Result<T, String> {
        self.map_err(|e| format!("{e:?}"))
    }
}

/// Polls `probe` every `every` until it returns `Some`/`Ok` or `timeout` passes (the probe
/// always runs at least once, and once more at the deadline). `Err` says how long it waited
/// and carries the last observation.
pub fn wait_for<O: Observation>(
    timeout: Duration,
    every: Duration,
    mut probe: impl FnMut() -> O,
) -> Result<O::Value, String> {
    let start = Instant::now();
    let mut attempts = 0u32;
    loop {
        attempts += 1;
        let last = match probe().into_outcome() {
            Ok(value) => return Ok(value),
            Err(seen) => seen,
        };
        let elapsed = start.elapsed();
        if elapsed >= timeout {
            return Err(format!(
                "gave up after {elapsed:.1?} ({attempts} probes); last observation: {last}"
            ));
        }
        std::thread::sleep(every.min(timeout - elapsed));
    }
}

// ------------------------------------------------------------------------- helpers

fn effective_uid() -> u32 {
    // SAFETY: geteuid has no preconditions and cannot fail.
    unsafe { libc::geteuid() }
}

fn lab_script() -> Result<PathBuf, LabError> {
    let path = match std::env::var_os(LAB_SH_ENV) {
        Some(p) => PathBuf::from(p),
        None => Path::new(env!("CARGO_MANIFEST_DIR")).join("../../lab/netns/lab.sh"),
    };
    if path.is_file() {
        Ok(path.canonicalize().unwrap_or(path))
    } else {
        Err(LabError::ScriptMissing { path })
    }
}

/// Picks a free name and reserves it by creating its state directory (atomic).
fn reserve_name() -> Result<(String, PathBuf), LabError> {
    const SPACE: u64 = 36u64.pow(5);
    let root = Path::new(STATE_ROOT);
    fs::create_dir_all(root).map_err(|source| LabError::Io {
        context: format!("creating {}", root.display()),
        source,
    })?;
    let pid = u64::from(std::process::id());
    let mut last_err = None;
    for _ in 0..1000 {
        let n = u64::from(NAME_COUNTER.fetch_add(1, Ordering::Relaxed));
        let name = format!("t{}", base36((pid * 1009 + n) % SPACE, 5));
        if Path::new("/run/netns").join(format!("{name}-sw")).exists() {
            continue;
        }
        let dir = root.join(&name);
        match fs::create_dir(&dir) {
            Ok(()) => return Ok((name, dir)),
            Err(e) if e.kind() == io::ErrorKind::AlreadyExists => continue,
            Err(e) => last_err = Some(e),
        }
    }
    Err(LabError::Io {
        context: format!("reserving a lab name under {}", root.display()),
        source: last_err.unwrap_or_else(|| io::Error::other("every candidate name is taken")),
    })
}

fn base36(mut v: u64, width: usize) -> String {
    const DIGITS: &[u8; 36] = b"0123456789abcdefghijklmnopqrstuvwxyz";
    let mut out = vec![b'0'; width];
    for slot in out.iter_mut().rev() {
        *slot = DIGITS[(v % 36) as usize];
        v /= 36;
    }
    String::from_utf8_lossy(&out).into_owned()
}

fn node_index(i: usize) -> u8 {
    match u8::try_from(i) {
        Ok(n) if (1..=MAX_NODES).contains(&i) => n,
        _ => panic!("node index must be 1..={MAX_NODES}, got {i}"),
    }
}

/// 11 -> 0x11: node addresses read the same in both families (2001:db8:0:1::11).
fn decimal_as_hex(n: u8) -> u16 {
    u16::from(n / 100) * 0x100 + u16::from(n / 10 % 10) * 0x10 + u16::from(n % 10)
}

fn render_command(cmd: &Command) -> String {
    std::iter::once(cmd.get_program())
        .chain(cmd.get_args())
        .map(|a| {
            let a = a.to_string_lossy();
            if a.is_empty() || a.contains(char::is_whitespace) {
                format!("'{a}'")
            } else {
                a.into_owned()
            }
        })
        .collect::<Vec<_>>()
        .join(" ")
}

fn run(cmd: &mut Command) -> Result<Output, LabError> {
    cmd.output().map_err(|source| LabError::Spawn {
        command: render_command(cmd),
        source,
    })
}

fn run_ok(cmd: &mut Command) -> Result<String, LabError> {
    let output = run(cmd)?;
    if output.status.success() {
        Ok(String::from_utf8_lossy(&output.stdout).into_owned())
    } else {
        Err(command_error(cmd, &output))
    }
}

fn command_error(cmd: &Command, output: &Output) -> LabError {
    let stderr = String::from_utf8_lossy(&output.stderr);
    let text = if stderr.trim().is_empty() {
        String::from_utf8_lossy(&output.stdout).into_owned()
    } else {
        stderr.into_owned()
    };
    LabError::Command {
        command: render_command(cmd),
        status: describe_status(output.status),
        output: truncate(text.trim()),
    }
}

fn describe_status(status: ExitStatus) -> String {
    use std::os::unix::process::ExitStatusExt;
    match (status.code(), status.signal()) {
        (Some(code), _) => format!("exit code {code}"),
        (None, Some(signal)) => format!("killed by signal {signal}"),
        (None, None) => status.to_string(),
    }
}

/// `lab.sh`'s own explanation: its `error:` lines, else the end of its stderr.
fn script_message(output: &Output) -> String {
    let stderr = String::from_utf8_lossy(&output.stderr);
    let errors: Vec<&str> = stderr
        .lines()
        .filter(|l| l.starts_with("lab.sh: error:"))
        .collect();
    let text = if errors.is_empty() {
        let lines: Vec<&str> = stderr.lines().collect();
        lines[lines.len().saturating_sub(15)..].join("\n")
    } else {
        // The error line, followed by any log lines lab.sh printed after it.
        let first = stderr.find("lab.sh: error:").unwrap_or(0);
        stderr[first..].trim().to_owned()
    };
    if text.trim().is_empty() {
        format!("lab.sh exited with {}", describe_status(output.status))
    } else {
        text
    }
}

fn parse_json(what: &str, text: &str) -> Result<serde_json::Value, LabError> {
    serde_json::from_str(text).map_err(|source| LabError::Json {
        command: what.to_owned(),
        source,
        output: truncate(text),
    })
}

fn truncate(text: &str) -> String {
    const MAX: usize = 4000;
    if text.len() <= MAX {
        return text.to_owned();
    }
    let mut end = MAX;
    while !text.is_char_boundary(end) {
        end -= 1;
    }
    format!("{}... ({} bytes in all)", &text[..end], text.len())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn node_addresses_read_the_same_in_both_families() {
        assert_eq!(Lab::node_v4(1), Ipv4Addr::new(192, 0, 2, 11));
        assert_eq!(Lab::node_v6(1).to_string(), "2001:db8:0:1::11");
        assert_eq!(Lab::node_v4(3).to_string(), "192.0.2.13");
        assert_eq!(Lab::node_v6(3).to_string(), "2001:db8:0:1::13");
        assert_eq!(Lab::node_v6(40).to_string(), "2001:db8:0:1::50");
        assert_eq!(Lab::router_v6().to_string(), "2001:db8:0:1::1");
        assert_eq!(Lab::client_v6().to_string(), "2001:db8:0:2::10");
        assert_eq!(Lab::router_client_v6().to_string(), "2001:db8:0:2::1");
    }

    #[test]
    #[should_panic(expected = "node index must be 1..=40")]
    fn node_zero_is_a_bug_in_the_test() {
        let _ = Lab::node_v4(0);
    }

    #[test]
    fn lab_names_fit_six_characters() {
        assert_eq!(base36(0, 5), "00000");
        assert_eq!(base36(36u64.pow(5) - 1, 5), "zzzzz");
        assert_eq!(format!("t{}", base36(12345, 5)).len(), 6);
    }

    #[test]
    fn wait_for_returns_the_first_success() {
        let mut n = 0;
        let got = wait_for(Duration::from_secs(5), Duration::from_millis(1), || {
            n += 1;
            (n == 3).then_some(n)
        });
        assert_eq!(got, Ok(3));
    }

    #[test]
    fn wait_for_reports_the_last_observation_on_timeout() {
        let mut n = 0;
        let err = wait_for(Duration::from_millis(30), Duration::from_millis(5), || {
            n += 1;
            Err::<(), _>(format!("state Active after {n} tries"))
        })
        .unwrap_err();
        assert!(err.contains("last observation"), "{err}");
        assert!(
            err.contains(&format!("state Active after {n} tries")),
            "{err}"
        );
    }

    #[test]
    fn wait_for_probes_at_least_once_with_a_zero_timeout() {
        assert_eq!(wait_for(Duration::ZERO, Duration::ZERO, || Some(7)), Ok(7));
    }

    #[test]
    fn command_errors_carry_command_exit_code_and_stderr() {
        let mut cmd = Command::new("sh");
        cmd.args(["-c", "echo boom >&2; exit 3"]);
        let err = run_ok(&mut cmd).unwrap_err().to_string();
        assert!(err.contains("sh -c"), "{err}");
        assert!(err.contains("exit code 3"), "{err}");
        assert!(err.contains("boom"), "{err}");
    }

    #[test]
    fn script_message_keeps_the_error_line() {
        let output = Command::new("sh")
            .args([
                "-c",
                "echo 'lab.sh: ok' >&2; echo 'lab.sh: error: bird not found; run scripts/install-deps.sh as root' >&2; exit 1",
            ])
            .output()
            .unwrap();
        assert_eq!(
            script_message(&output),
            "lab.sh: error: bird not found; run scripts/install-deps.sh as root"
        );
    }
}
