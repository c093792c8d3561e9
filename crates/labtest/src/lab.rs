//! A running lab: bringing it up and down through `lab/netns/lab.sh`, its namespaces and
//! addresses, commands inside it, and the router's own CLI (`vtysh`, `birdc`, `gobgp`).

use std::ffi::OsStr;
use std::fs::{self, File};
use std::io;
use std::net::{IpAddr, Ipv4Addr, Ipv6Addr};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Output, Stdio};
use std::sync::atomic::{AtomicU32, AtomicU64, Ordering};

use crate::error::LabError;
use crate::exec::{
    command_error, parse_json, render_command, run, run_ok, script_message, truncate,
};
use crate::spec::{
    GOBGP_API_PORT, KEEP_ENV, LAB_SH_ENV, LabSpec, MAX_NODES, ROUTER_ID, RouterKind, STATE_ROOT,
};

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
        let (name, state_dir) = reserve_name(spec.name_prefix.as_deref().unwrap_or("t"))?;
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
        if spec.l2 {
            args.push("--l2".to_owned());
        }
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

    /// Node `i`'s address on the layer-2 LAN (`LabSpec::with_l2`, eth1): 198.18.0.(10+i).
    ///
    /// # Panics
    /// If `i` is 0 or above [`MAX_NODES`] (a bug in the test).
    pub fn l2_node_v4(i: usize) -> Ipv4Addr {
        Ipv4Addr::new(198, 18, 0, 10 + node_index(i))
    }

    /// Node `i`'s IPv6 address on the layer-2 LAN: fd00:18::(10+i), written in decimal.
    ///
    /// # Panics
    /// If `i` is 0 or above [`MAX_NODES`] (a bug in the test).
    pub fn l2_node_v6(i: usize) -> Ipv6Addr {
        Ipv6Addr::new(
            0xfd00,
            0x18,
            0,
            0,
            0,
            0,
            0,
            decimal_as_hex(10 + node_index(i)),
        )
    }

    /// The client's address on the layer-2 LAN (eth1): 198.18.0.100.
    pub fn l2_client_v4() -> Ipv4Addr {
        Ipv4Addr::new(198, 18, 0, 100)
    }

    /// The client's IPv6 address on the layer-2 LAN: fd00:18::100.
    pub fn l2_client_v6() -> Ipv6Addr {
        Ipv6Addr::new(0xfd00, 0x18, 0, 0, 0, 0, 0, 0x100)
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

fn effective_uid() -> u32 {
    nix::unistd::geteuid().as_raw()
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
fn reserve_name(prefix: &str) -> Result<(String, PathBuf), LabError> {
    // lab.sh names have at most 6 characters.
    let width = 6usize.saturating_sub(prefix.len()).max(1);
    let space: u64 = 36u64.pow(u32::try_from(width).unwrap_or(1));
    let root = Path::new(STATE_ROOT);
    fs::create_dir_all(root).map_err(|source| LabError::Io {
        context: format!("creating {}", root.display()),
        source,
    })?;
    let pid = u64::from(std::process::id());
    let mut last_err = None;
    for _ in 0..1000 {
        let n = u64::from(NAME_COUNTER.fetch_add(1, Ordering::Relaxed));
        let name = format!("{prefix}{}", base36((pid * 1009 + n) % space, width));
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

pub(crate) fn base36(mut v: u64, width: usize) -> String {
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
