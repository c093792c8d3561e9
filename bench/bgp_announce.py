#!/usr/bin/env python3
"""bench/bgp_announce.py: how fast ferrolb's BGP speaker, gobgpd and BIRD load N IPv4 /32s into
an FRR router, and how much memory each announcer needs for it.

    sudo python3 bench/bgp_announce.py [--sizes 10000,100000,1000000] [--keep-lab] [--json OUT]

Needs root (network namespaces) and the lab's packages (scripts/install-deps.sh: frr, bird2,
gobgpd), plus cargo to build `ferrolb-bgpd`'s `announce` example. Python 3 standard library only.

What it does (docs/benchmarks.md explains the method and shows results):
  1. builds `cargo build --release -p ferrolb-bgpd --example announce` (honours CARGO_TARGET_DIR);
  2. brings up the netns lab `bench` with FRR as the router and bench/frr-bgpd.conf as its bgpd
     configuration (static passive neighbors for the three announcers, `bgp no-rib`);
  3. for each N and each announcer in turn (ferrolb in NAME-n1, gobgpd in NAME-n2, BIRD in
     NAME-n3): on a freshly restarted router, loads the N routes into the announcer, enables the
     session, and measures from the router's own view (bgpd's vty socket, polled) the time from
     Established to pfxRcd == N; then reads the announcer's peak RSS (VmHWM), stops it and waits
     until the router has dropped its routes;
  4. prints the table and the ratios, writes JSON if asked, tears the lab down (unless
     --keep-lab; also on Ctrl-C and errors). Exit status 1 if any announcer did not converge.
"""

from __future__ import annotations

import argparse
import ipaddress
import json
import os
import platform
import pwd
import re
import shutil
import signal
import socket
import struct
import subprocess
import sys
import tempfile
import threading
import time
from dataclasses import asdict, dataclass, field
from datetime import datetime
from pathlib import Path

REPO = Path(__file__).resolve().parent.parent
LAB_SH = REPO / "lab" / "netns" / "lab.sh"
FRR_CONF = REPO / "bench" / "frr-bgpd.conf"
STATE_ROOT = Path("/run/ferrolb-lab")

ROUTER_AS = 64500
ROUTER_IP = "192.0.2.1"
ANNOUNCERS = {
    # name: (node index, address, AS)
    "ferrolb": (1, "192.0.2.11", 4200000001),
    "gobgpd": (2, "192.0.2.12", 4200000002),
    "bird": (3, "192.0.2.13", 4200000003),
}
LABELS = {"ferrolb": "ferrolb", "gobgpd": "gobgpd", "bird": "BIRD"}

# RFC 2544 benchmarking range: 198.18.0.0/15 holds 131072 /32s; beyond that RFC 6598 shared
# address space 100.64.0.0/10 (4194304 /32s). These prefixes only live in BGP tables inside the
# lab namespaces: the router runs `bgp no-rib`, BIRD's routes are blackholes in its own table,
# gobgpd has no FIB, and nothing ever sends traffic to them.
RANGES = [
    (ipaddress.IPv4Network("198.18.0.0/15"), "RFC 2544 benchmarking range"),
    (ipaddress.IPv4Network("100.64.0.0/10"), "RFC 6598 shared address space"),
]

CLK_TCK = os.sysconf("SC_CLK_TCK")


class BenchError(Exception):
    """A failure that ends the whole run (setup, lab, build)."""


class AnnouncerFailed(Exception):
    """One measurement failed; the run goes on with the next one."""


def log(msg: str) -> None:
    print(f"bgp_announce: {msg}", flush=True)


def die(msg: str) -> None:
    raise BenchError(msg)


# --------------------------------------------------------------------------- process helpers


def run(cmd: list[str], *, check: bool = True, timeout: float | None = 120, **kw) -> subprocess.CompletedProcess:
    try:
        proc = subprocess.run(cmd, capture_output=True, text=True, timeout=timeout, **kw)
    except subprocess.TimeoutExpired as e:
        raise BenchError(f"`{' '.join(cmd)}` did not finish within {timeout}s") from e
    if check and proc.returncode != 0:
        out = (proc.stderr.strip() or proc.stdout.strip()).splitlines()[-15:]
        raise BenchError(f"`{' '.join(cmd)}` failed (exit {proc.returncode}):\n  " + "\n  ".join(out))
    return proc


def proc_status(pid: int) -> dict[str, int]:
    """VmHWM, VmRSS, ... of a process in kB (KiB)."""
    out = {}
    try:
        for line in Path(f"/proc/{pid}/status").read_text().splitlines():
            key, _, value = line.partition(":")
            if key.startswith("Vm"):
                out[key] = int(value.split()[0])
    except (OSError, ValueError, IndexError):
        pass
    return out


def proc_cpu(pid: int) -> float | None:
    """User + system CPU seconds of a process (all its threads)."""
    try:
        stat = Path(f"/proc/{pid}/stat").read_text()
        fields = stat[stat.rindex(")") + 2 :].split()
        return (int(fields[11]) + int(fields[12])) / CLK_TCK
    except (OSError, ValueError, IndexError):
        return None


def read_pidfile(path: Path) -> int | None:
    try:
        return int(path.read_text().strip())
    except (OSError, ValueError):
        return None


class Child:
    """A process we started (inside a namespace: `ip netns exec` execs, so the pid is the
    program itself). Its stdout lines are collected with the monotonic time they arrived."""

    def __init__(self, name: str, cmd: list[str], logfile: Path):
        self.name = name
        self.logfile = logfile
        self.lines: list[tuple[float, str]] = []
        self._log = open(logfile, "w")
        self.popen = subprocess.Popen(
            cmd, stdin=subprocess.DEVNULL, stdout=subprocess.PIPE, stderr=self._log, text=True,
            start_new_session=True,
        )
        self.pid = self.popen.pid
        self._reader = threading.Thread(target=self._read, daemon=True)
        self._reader.start()

    def _read(self) -> None:
        assert self.popen.stdout is not None
        for line in self.popen.stdout:
            self.lines.append((time.monotonic(), line.rstrip("\n")))

    def alive(self) -> bool:
        return self.popen.poll() is None

    def find_line(self, pattern: str) -> tuple[float, re.Match] | None:
        rx = re.compile(pattern)
        for t, line in list(self.lines):
            m = rx.search(line)
            if m:
                return t, m
        return None

    def tail(self, n: int = 12) -> str:
        out = [line for _, line in self.lines[-n:]]
        try:
            err = self.logfile.read_text().splitlines()[-n:]
        except OSError:
            err = []
        text = "\n    ".join(out + err)
        return f"last output of {self.name}:\n    {text}" if text else f"{self.name} printed nothing"

    def stop(self, timeout: float = 15.0) -> None:
        """SIGTERM, wait, SIGKILL: only this pid."""
        if self.alive():
            try:
                os.kill(self.pid, signal.SIGTERM)
            except ProcessLookupError:
                pass
            try:
                self.popen.wait(timeout)
            except subprocess.TimeoutExpired:
                log(f"{self.name} (pid {self.pid}) ignored SIGTERM for {timeout:.0f}s: SIGKILL")
                try:
                    os.kill(self.pid, signal.SIGKILL)
                except ProcessLookupError:
                    pass
                self.popen.wait(10)
        self._reader.join(2)
        self._log.close()


# --------------------------------------------------------------------------- the router's view


class Vty:
    """bgpd's (or zebra's) vty socket, spoken to directly: a command is sent NUL-terminated and
    the answer ends with three NULs and a status byte. Much cheaper than starting vtysh per poll
    (~0.1 ms per query instead of ~20 ms), so the router is polled without disturbing it."""

    def __init__(self, path: Path):
        self.path = path
        self.sock: socket.socket | None = None

    def close(self) -> None:
        if self.sock is not None:
            self.sock.close()
            self.sock = None

    def cmd(self, command: str, timeout: float = 60.0) -> str:
        if self.sock is None:
            s = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
            s.settimeout(timeout)
            s.connect(str(self.path))
            self.sock = s
        self.sock.settimeout(timeout)
        try:
            self.sock.sendall(command.encode() + b"\0")
            buf = bytearray()
            while not (len(buf) >= 4 and buf[-4:-1] == b"\0\0\0"):
                chunk = self.sock.recv(1 << 16)
                if not chunk:
                    raise ConnectionError(f"{self.path}: closed by the daemon")
                buf += chunk
        except (OSError, ConnectionError):
            self.close()
            raise
        status = buf[-1]
        text = bytes(buf[:-4]).decode(errors="replace")
        if status != 0:
            raise BenchError(f"{self.path.name}: `{command}` failed (status {status}): {text.strip()}")
        return text

    def json(self, command: str, timeout: float = 60.0) -> dict:
        return json.loads(self.cmd(command, timeout) or "{}")


class Router:
    def __init__(self, lab: str):
        self.dir = STATE_ROOT / lab / "frr"
        self.bgpd = Vty(self.dir / "bgpd.vty")
        self.zebra = Vty(self.dir / "zebra.vty")

    def reconnect(self) -> None:
        self.bgpd.close()
        self.zebra.close()

    def pid(self, daemon: str = "bgpd") -> int | None:
        return read_pidfile(self.dir / f"{daemon}.pid")

    def summary(self) -> dict:
        return self.bgpd.json("show bgp ipv4 unicast summary json")

    def peer(self, summary: dict, addr: str) -> dict:
        return summary.get("peers", {}).get(addr, {})

    @property
    def log_path(self) -> Path:
        return self.dir / "bench.log"

    def log_offset(self) -> int:
        try:
            return self.log_path.stat().st_size
        except OSError:
            return 0

    def log_events(self, offset: int, addr: str) -> dict[str, float]:
        """Monotonic times of `Up` and `End-of-RIB` for neighbor `addr` logged after `offset`.
        bgpd logs wall-clock time (local time, microseconds); it is mapped onto our monotonic
        clock with the current offset between the two."""
        try:
            with open(self.log_path, "rb") as f:
                f.seek(offset)
                text = f.read().decode(errors="replace")
        except OSError:
            return {}
        wall_minus_mono = time.time() - time.monotonic()
        events: dict[str, float] = {}
        a = re.escape(addr)
        patterns = {
            # `debug bgp neighbor-events`: the router got the OPEN and sent its KEEPALIVE; the
            # last one before Established counts (a collision can open two connections).
            "oc": re.compile(rf"\b{a} \[FSM\] Receive_OPEN_message \(OpenSent->OpenConfirm\)"),
            "up": re.compile(rf"%ADJCHANGE: neighbor {a}\b.* Up$"),
            "eor": re.compile(rf"rcvd End-of-RIB for IPv4 Unicast from {a}\b"),
        }
        for line in text.splitlines():
            m = re.match(r"(\d{4}/\d\d/\d\d \d\d:\d\d:\d\d\.\d{6}) ", line)
            if not m:
                continue
            for key, rx in patterns.items():
                if (key not in events or (key == "oc" and "up" not in events)) and rx.search(line):
                    wall = datetime.strptime(m.group(1), "%Y/%m/%d %H:%M:%S.%f").timestamp()
                    events[key] = wall - wall_minus_mono
        return events

    def zebra_routes(self) -> int | None:
        try:
            j = self.zebra.json("show ip route summary json")
            return int(j.get("routesTotal", 0))
        except (OSError, ConnectionError, BenchError, ValueError):
            return None


# --------------------------------------------------------------------------- route sets


def start_address(n: int) -> tuple[ipaddress.IPv4Address, str]:
    for net, what in RANGES:
        if n <= net.num_addresses:
            return net.network_address, f"{net} ({what})"
    die(f"N={n} does not fit in 100.64.0.0/10 (at most {RANGES[-1][0].num_addresses} /32s)")
    raise AssertionError


def write_mrt(path: Path, start: ipaddress.IPv4Address, n: int, next_hop: str, padding: int) -> None:
    """An MRT TABLE_DUMP_V2 file (RFC 6396) with one RIB_IPV4_UNICAST record per /32: ORIGIN
    IGP, empty AS_PATH, NEXT_HOP `next_hop`, from peer index 0 (a zeroed peer with AS 0, so
    gobgpd treats the paths as locally originated, like `gobgp global rib add`).

    `padding` records at the end repeat the first prefixes with identical attributes (a no-op
    for gobgpd's RIB): Debian's gobgp 3.10 client drops the last in-flight part of its gRPC
    stream when it exits (seen here: 476 of 1000, 98938 of 100000 routes arrived), so the tail
    it loses is padding. The caller still checks that gobgpd holds exactly N routes."""
    ts = int(time.time())
    peer_index = struct.pack("!4sHH", bytes(4), 0, 1) + struct.pack("!B4s4sI", 2, bytes(4), bytes(4), 0)
    attrs = bytes([0x40, 1, 1, 0]) + bytes([0x40, 2, 0]) + bytes([0x40, 3, 4]) + ipaddress.IPv4Address(next_hop).packed
    entry = struct.pack("!HIH", 0, ts, len(attrs)) + attrs
    header = struct.pack("!IHH", ts, 13, 2)  # TABLE_DUMP_V2 / RIB_IPV4_UNICAST
    body_len = 4 + 1 + 4 + 2 + len(entry)
    base = int(start)
    with open(path, "wb") as f:
        f.write(struct.pack("!IHHI", ts, 13, 1, len(peer_index)) + peer_index)
        total = n + padding
        for lo in range(0, total, 65536):
            f.write(b"".join(
                header + struct.pack("!IIBIH", body_len, seq, 32, base + (seq % n), 1) + entry
                for seq in range(lo, min(lo + 65536, total))
            ))


def write_bird_conf(path: Path, start: ipaddress.IPv4Address, n: int, logfile: Path, addr: str, asn: int) -> None:
    base = int(start)
    with open(path, "w") as f:
        f.write(f'# generated by bench/bgp_announce.py: {n} static /32s from {start}\n'
                f'router id {addr};\nlog "{logfile}" all;\n'
                'protocol device { scan time 60; }\n'
                'protocol static bench_routes {\n  ipv4;\n')
        for lo in range(0, n, 65536):
            f.write("".join(f"  route {ipaddress.IPv4Address(base + i)}/32 blackhole;\n"
                            for i in range(lo, min(lo + 65536, n))))
        f.write('}\n'
                'protocol bgp frr {\n'
                '  disabled;                # enabled by the benchmark once the routes are loaded\n'
                f'  local {addr} as {asn};\n'
                f'  neighbor {ROUTER_IP} as {ROUTER_AS};\n'
                '  connect delay time 1;   # default 5 s; before Established, so not measured\n'
                '  ipv4 { import none; export all; };\n'
                '}\n')


# --------------------------------------------------------------------------- results


@dataclass
class Result:
    n: int
    announcer: str
    run: int = 1
    ok: bool = False
    error: str | None = None
    # The measurement: Established -> pfxRcd == N, both as the router sees them. Established is
    # taken from bgpd's log (microseconds) when it is there, else from the polls (the earliest
    # it can have been). pfxRcd == N lies between the send time of the last poll that did not
    # see it and the receive time of the first poll that did: converge_s uses the receive time
    # (an upper bound) and resolution_s is the bracket's width (the true time is at most that
    # much shorter).
    converge_s: float | None = None
    resolution_s: float | None = None
    established_from: str | None = None  # "log" or "poll"
    eor_s: float | None = None  # Established -> End-of-RIB processed, from bgpd's log
    # OpenConfirm -> Established at the router: from the router's KEEPALIVE (sent when it got
    # the announcer's OPEN) to the announcer's KEEPALIVE arriving. Work an announcer does before
    # it sends that KEEPALIVE is not in converge_s; converge_s + keepalive_wait_s includes it.
    keepalive_wait_s: float | None = None
    p99_s: float | None = None  # Established -> pfxRcd >= 99% of N (upper end, like converge_s)
    established_after_enable_s: float | None = None
    peak_rss_kb: int | None = None
    rss_kb: int | None = None
    loaded_rss_kb: int | None = None
    load_s: float | None = None
    announcer_cpu_s: float | None = None
    bgpd_cpu_s: float | None = None
    zebra_cpu_s: float | None = None
    zebra_routes: int | None = None
    updates_received: int | None = None
    extended_message: str | None = None
    announcer_reported_s: float | None = None
    polls: int = 0
    drop_s: float | None = None
    # Raw monotonic times of the polls (seconds, this run's clock), for the record.
    t_enable: float | None = None
    est_bracket: tuple[float, float] | None = None
    conv_at: float | None = None
    conv_bracket_s: float | None = None
    p99_at: float | None = None
    notes: list[str] = field(default_factory=list)


# --------------------------------------------------------------------------- the benchmark


class Bench:
    def __init__(self, args: argparse.Namespace):
        self.args = args
        self.lab = args.lab_name
        self.router = Router(self.lab)
        self.tmp = Path(tempfile.mkdtemp(prefix="ferrolb-bench-"))
        os.chmod(self.tmp, 0o755)
        self.children: list[Child] = []
        self.lab_created = False
        self.announce_bin: Path | None = None
        self.results: list[Result] = []
        self.poll = args.poll_ms / 1000.0
        self.current_pid: int | None = None
        self.log_mark = 0

    # ---- setup and teardown

    def preflight(self) -> None:
        if os.geteuid() != 0:
            die("needs root (network namespaces): run `sudo python3 bench/bgp_announce.py`")
        for tool, pkg in [("ip", "iproute2"), ("vtysh", "frr"), ("gobgpd", "gobgpd"), ("gobgp", "gobgpd"),
                          ("bird", "bird2"), ("birdc", "bird2")]:
            if shutil.which(tool) is None:
                die(f"'{tool}' not found (Debian package {pkg}); run scripts/install-deps.sh as root")
        if not LAB_SH.is_file():
            die(f"{LAB_SH} is missing: run from a ferrolb checkout")
        if (STATE_ROOT / self.lab).exists():
            die(f"a lab named '{self.lab}' already exists (left by --keep-lab or a killed run); "
                f"remove it with: sudo {LAB_SH.relative_to(REPO)} down --name {self.lab} (or pass --lab-name)")

    def find_cargo(self) -> tuple[list[str], dict[str, str]]:
        """cargo, run as the invoking user under sudo so that target/ stays theirs."""
        env = dict(os.environ)
        user = os.environ.get("SUDO_USER")
        if user and user != "root":
            pw = pwd.getpwnam(user)
            cargo = shutil.which("cargo", path=f"{pw.pw_dir}/.cargo/bin:{env.get('PATH', '')}")
            if cargo is None:
                die(f"cargo not found for user {user} (~/.cargo/bin or PATH); install Rust (rustup)")
            keep = {k: v for k, v in env.items() if k.startswith(("CARGO", "RUSTUP", "RUST"))}
            keep.update(HOME=pw.pw_dir, USER=user, PATH=f"{pw.pw_dir}/.cargo/bin:{env.get('PATH', '')}")
            prefix = ["runuser", "-u", user, "--", "env"] + [f"{k}={v}" for k, v in keep.items()]
            return prefix + [cargo], env
        cargo = shutil.which("cargo") or (str(Path.home() / ".cargo/bin/cargo") if (Path.home() / ".cargo/bin/cargo").exists() else None)
        if cargo is None:
            die("cargo not found on PATH; install Rust (rustup) or run with sudo from a user that has it")
        return [cargo], env

    def build(self) -> None:
        cargo, env = self.find_cargo()
        log("building: cargo build --release -p ferrolb-bgpd --example announce"
            + (f" (CARGO_TARGET_DIR={os.environ['CARGO_TARGET_DIR']})" if os.environ.get("CARGO_TARGET_DIR") else ""))
        proc = subprocess.run(cargo + ["build", "--release", "-p", "ferrolb-bgpd", "--example", "announce"],
                              cwd=REPO, env=env, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True)
        if proc.returncode != 0:
            die("cargo build failed:\n  " + "\n  ".join(proc.stdout.strip().splitlines()[-25:]))
        meta = subprocess.run(cargo + ["metadata", "--format-version", "1", "--no-deps"], cwd=REPO, env=env,
                              capture_output=True, text=True)
        if meta.returncode != 0:
            die("cargo metadata failed: " + meta.stderr.strip()[-500:])
        target = Path(json.loads(meta.stdout)["target_directory"])
        self.announce_bin = target / "release" / "examples" / "announce"
        if not os.access(self.announce_bin, os.X_OK):
            die(f"the build did not produce {self.announce_bin}")
        log(f"announcer binary: {self.announce_bin}")

    def lab_up(self) -> None:
        conf = FRR_CONF
        if self.args.router_echo:
            conf = self.tmp / "frr-bgpd-echo.conf"
            conf.write_text("".join(line for line in FRR_CONF.read_text().splitlines(keepends=True)
                                    if not re.search(r"route-map BENCH-NOTHING-OUT out", line) or line.lstrip().startswith("!")))
        log(f"lab up: {LAB_SH.relative_to(REPO)} up --name {self.lab} --router frr --nodes 3 --router-config {conf}")
        self.lab_created = True
        run([str(LAB_SH), "up", "--name", self.lab, "--router", "frr", "--nodes", "3", "--router-config", str(conf)],
            timeout=120)
        self.router.reconnect()

    def restart_router(self) -> None:
        run([str(LAB_SH), "router-restart", "--name", self.lab], timeout=120)
        self.router.reconnect()
        # A log with microsecond timestamps (see bench/frr-bgpd.conf).
        run(["vtysh", "--vty_socket", str(self.router.dir), "-d", "bgpd", "-c", "configure terminal",
             "-c", "log timestamp precision 6", "-c", f"log file {self.router.log_path} debugging", "-c", "end",
             "-c", "debug bgp neighbor-events"], timeout=30)
        deadline = time.monotonic() + 30
        while True:
            try:
                s = self.router.summary()
                if s.get("ribCount", 0) == 0 and len(s.get("peers", {})) == 3:
                    return
            except (OSError, ConnectionError, ValueError):
                self.router.reconnect()
            if time.monotonic() > deadline:
                die("the router did not come back within 30 s after router-restart")
            time.sleep(0.1)

    def teardown(self) -> None:
        for child in reversed(self.children):
            try:
                child.stop(timeout=10)
            except Exception as e:  # noqa: BLE001 - teardown goes on
                log(f"stopping {child.name} (pid {child.pid}): {e}")
        self.children.clear()
        self.router.reconnect()
        if self.lab_created:
            if self.args.keep_lab:
                log(f"keeping lab '{self.lab}' (remove it with: sudo {LAB_SH.relative_to(REPO)} down --name {self.lab})")
            else:
                proc = run([str(LAB_SH), "down", "--name", self.lab], check=False, timeout=120)
                log(proc.stdout.strip().removeprefix("lab.sh: ") or f"lab {self.lab} down")
        shutil.rmtree(self.tmp, ignore_errors=True)

    def ns(self, announcer: str) -> str:
        return f"{self.lab}-n{ANNOUNCERS[announcer][0]}"

    def spawn(self, name: str, cmd: list[str]) -> Child:
        child = Child(name, cmd, self.tmp / f"{name}.log")
        self.children.append(child)
        return child

    def reap(self, child: Child, timeout: float = 15.0) -> None:
        child.stop(timeout)
        if child in self.children:
            self.children.remove(child)

    # ---- polling

    def wait_for(self, what: str, timeout: float, probe, interval: float = 0.1):
        deadline = time.monotonic() + timeout
        last = None
        while True:
            try:
                value = probe()
                if value is not None and value is not False:
                    return value
            except (OSError, ConnectionError, ValueError, subprocess.SubprocessError) as e:
                last = str(e)
                value = None
            if time.monotonic() > deadline:
                raise AnnouncerFailed(f"{what}: gave up after {timeout:.0f}s" + (f" ({last})" if last else ""))
            time.sleep(interval)

    def measure(self, res: Result, addr: str, child_alive, timeout: float) -> None:
        """Polls the router from (just before) the session is enabled until it holds all N
        routes from `addr`. Fills the timing and CPU fields of `res`.

        A poll that sees an event proves it happened before that poll's answer arrived; the
        previous poll, which did not see it, proves it happened after that poll was sent. While
        bgpd is busy loading routes it answers late, so the bracket can be wide; the reported
        time is its upper end (never an underestimate) and its width is the resolution."""
        r = self.router
        n = res.n
        bgpd_pid, zebra_pid = r.pid("bgpd"), r.pid("zebra")

        def cpu() -> tuple:
            return (self.announcer_cpu(), proc_cpu(bgpd_pid) if bgpd_pid else None,
                    proc_cpu(zebra_pid) if zebra_pid else None)

        t_enable = time.monotonic()
        est = p99 = conv = None  # (lo, hi) brackets
        prev_send, prev_cpu = t_enable, cpu()
        cpu0 = None
        next_poll = t_enable
        polls = 0
        last_seen = "no answer yet"
        while conv is None:
            now = time.monotonic()
            if now - t_enable > timeout:
                raise AnnouncerFailed(f"router did not hold all {n} routes within {timeout:g}s of enabling the "
                                      f"session (last seen: {last_seen})")
            if next_poll > now:
                time.sleep(next_poll - now)
            next_poll = max(next_poll + self.poll, time.monotonic())
            t_send, send_cpu = time.monotonic(), (cpu() if est is None else None)
            try:
                peer = r.peer(r.summary(), addr)
            except (OSError, ConnectionError, ValueError) as e:
                raise AnnouncerFailed(f"router's vty stopped answering: {e}") from e
            t_recv = time.monotonic()
            polls += 1
            state = peer.get("state", "?")
            pfx = int(peer.get("pfxRcd", 0) or 0)
            last_seen = f"state {state}, pfxRcd {pfx}"
            if est is None:
                if state == "Established":
                    est = (prev_send, t_recv)
                    cpu0 = prev_cpu  # sampled before Established
                elif not child_alive():
                    raise AnnouncerFailed(f"{res.announcer} exited before the session came up")
            elif state != "Established":
                raise AnnouncerFailed(f"session left Established after {t_recv - est[1]:.3f}s ({last_seen})")
            if est is not None and p99 is None and pfx * 100 >= n * 99:
                p99 = (prev_send, t_recv)
            if est is not None and pfx >= n:
                conv = (prev_send, t_recv)
                if pfx > n:
                    res.notes.append(f"router holds {pfx} prefixes, expected {n}")
            prev_send, prev_cpu = t_send, send_cpu
        cpu1 = cpu()
        assert est is not None and p99 is not None and cpu0 is not None
        res.polls = polls
        res.conv_at = conv[1]
        res.conv_bracket_s = conv[1] - conv[0]
        res.est_bracket = est
        res.p99_at = p99[1]
        res.announcer_cpu_s, res.bgpd_cpu_s, res.zebra_cpu_s = [
            None if x is None or y is None else round(y - x, 3) for x, y in zip(cpu0, cpu1)]
        res.t_enable = t_enable

    def timing_from_log(self, res: Result, addr: str, wait_eor: float) -> None:
        """Established (and End-of-RIB) from bgpd's microsecond log; the polls' bracket when the
        log does not have it."""
        est_lo, est_hi = res.est_bracket
        deadline = time.monotonic() + wait_eor
        while True:
            events = self.router.log_events(self.log_mark, addr)
            if "eor" in events or time.monotonic() >= deadline:
                break
            time.sleep(0.05)
        up = events.get("up")
        # Trust the log's time only when it agrees with the polls (clock steps, a stale line).
        if up is not None and est_lo - 0.05 <= up <= est_hi + 0.05:
            est, est_width = up, 0.0
            res.established_from = "log"
        else:
            est, est_width = est_lo, est_hi - est_lo  # the earliest it can have been
            res.established_from = "poll"
            res.notes.append("Established taken from the polls: " + (
                f"bgpd's log time is off their bracket by {up - est_hi:+.3f}s" if up is not None
                else "not found in bgpd's log"))
        res.converge_s = res.conv_at - est
        res.resolution_s = min(res.conv_bracket_s + est_width, res.converge_s)
        res.p99_s = res.p99_at - est
        if "eor" in events and res.established_from == "log":
            res.eor_s = events["eor"] - est
        if "oc" in events and res.established_from == "log" and events["oc"] <= est:
            res.keepalive_wait_s = est - events["oc"]
        res.established_after_enable_s = est - res.t_enable

    def announcer_cpu(self) -> float | None:
        return proc_cpu(self.current_pid) if self.current_pid else None

    def after_convergence(self, res: Result, addr: str, pid: int, wait_eor: float = 3.0) -> None:
        st = proc_status(pid)
        res.peak_rss_kb = st.get("VmHWM")
        res.rss_kb = st.get("VmRSS")
        try:
            nb = self.router.bgpd.json(f"show bgp neighbors {addr} json").get(addr, {})
            res.updates_received = nb.get("messageStats", {}).get("updatesRecv")
            res.extended_message = nb.get("neighborCapabilities", {}).get("extendedMessage")
        except (OSError, ConnectionError, ValueError, BenchError) as e:
            res.notes.append(f"neighbor details unavailable: {e}")
        res.zebra_routes = self.router.zebra_routes()
        self.timing_from_log(res, addr, wait_eor)

    def wait_dropped(self, res: Result, addr: str) -> None:
        t0 = time.monotonic()

        def dropped():
            s = self.router.summary()
            p = self.router.peer(s, addr)
            return s.get("ribCount", 0) == 0 and p.get("state") != "Established"

        self.wait_for(f"router dropping the {res.n} routes of {LABELS[res.announcer]}", 120 + res.n / 5000, dropped)
        res.drop_s = round(time.monotonic() - t0, 3)

    # ---- the three announcers

    def run_ferrolb(self, res: Result, start: ipaddress.IPv4Address, timeout: float) -> None:
        _, addr, asn = ANNOUNCERS["ferrolb"]
        assert self.announce_bin is not None
        cmd = ["ip", "netns", "exec", self.ns("ferrolb"), str(self.announce_bin),
               "--local-as", str(asn), "--peer", ROUTER_IP, "--peer-as", str(ROUTER_AS),
               "--generate", str(res.n), "--generate-from", str(start), "--listen-port", "0"]
        # The routes are generated and handed to the speaker (set_routes) before the peer is
        # configured (set_peers), so they are loaded before the session exists; the session
        # then comes up on its own: "enabling" is starting the process.
        child = self.spawn("ferrolb", cmd)
        self.current_pid = child.pid
        try:
            self.measure(res, addr, child.alive, timeout)
            self.after_convergence(res, addr, child.pid)
            # The announcer's own view: "queued N prefixes and End-of-RIB for the router X.XXXs after Established".
            deadline = time.monotonic() + 10
            while time.monotonic() < deadline:
                m = child.find_line(r"queued (\d+) prefixes and End-of-RIB for the router ([0-9.]+)s after")
                if m:
                    res.announcer_reported_s = float(m[1].group(2))
                    break
                time.sleep(0.05)
            else:
                res.notes.append("ferrolb did not print its 'sent ... End-of-RIB' line")
        except AnnouncerFailed as e:
            raise AnnouncerFailed(f"{e}\n  {child.tail()}") from None
        finally:
            self.current_pid = None
            self.reap(child)  # SIGTERM: ferrolb sends a Cease and exits

    def gobgp(self, *args: str, timeout: float = 60) -> subprocess.CompletedProcess:
        # gobgp exits 0 on some errors: callers check stderr/stdout.
        try:
            return run(["ip", "netns", "exec", self.ns("gobgpd"), "gobgp", "--host", "127.0.0.1", "--port", "50051",
                        *args], check=False, timeout=timeout)
        except BenchError as e:  # a timeout: this measurement fails, the run goes on
            raise AnnouncerFailed(str(e)) from None

    def gobgp_count(self) -> int:
        p = self.gobgp("-j", "global", "rib", "summary", "-a", "ipv4")
        if p.returncode != 0 or p.stderr.strip():
            raise OSError(p.stderr.strip() or f"exit {p.returncode}")
        return int(json.loads(p.stdout or "{}").get("num_destination", 0))

    def run_gobgpd(self, res: Result, start: ipaddress.IPv4Address, timeout: float) -> None:
        _, addr, asn = ANNOUNCERS["gobgpd"]
        d = self.tmp / "gobgpd"
        d.mkdir(exist_ok=True)
        conf = d / "gobgpd.toml"
        # No listener (port -1): the router is passive, gobgpd opens the session once the
        # neighbor is added. The API listens on 127.0.0.1 inside the node's namespace only.
        conf.write_text(f'[global.config]\n  as = {asn}\n  router-id = "{addr}"\n  port = -1\n')
        mrt = d / "routes.mrt"
        padding = min(res.n, max(5000, res.n // 5))
        write_mrt(mrt, start, res.n, addr, padding)
        child = self.spawn("gobgpd", ["ip", "netns", "exec", self.ns("gobgpd"), "gobgpd", "-f", str(conf), "-t", "toml",
                                      "-p", "--pprof-disable", "--api-hosts", "127.0.0.1:50051"])
        self.current_pid = child.pid
        try:
            self.wait_for("gobgpd API", 30, lambda: child.alive() and '"asn"' in self.gobgp("-j", "global").stdout)
            t0 = time.monotonic()
            for attempt in range(3):
                p = self.gobgp("mrt", "inject", "global", str(mrt), timeout=max(120, res.n / 2000))
                if p.returncode != 0 or "error" in p.stderr.lower():
                    raise AnnouncerFailed(f"gobgp mrt inject failed: {p.stderr.strip() or p.stdout.strip()}")
                # Wait until the count is stable at N (the server may still be adding).
                count, stable_since = -1, time.monotonic()
                while time.monotonic() - stable_since < 1.0:
                    c = self.gobgp_count()
                    if c != count:
                        count, stable_since = c, time.monotonic()
                    if count == res.n:
                        break
                    time.sleep(0.2)
                if count == res.n:
                    break
                res.notes.append(f"gobgp mrt inject attempt {attempt + 1}: gobgpd holds {count} of {res.n}; injecting again")
            else:
                raise AnnouncerFailed(f"gobgpd holds {count} of {res.n} routes after 3 MRT injections")
            res.load_s = round(time.monotonic() - t0, 3)
            res.loaded_rss_kb = proc_status(child.pid).get("VmRSS")
            p = self.gobgp("neighbor", "add", ROUTER_IP, "as", str(ROUTER_AS))
            if p.returncode != 0 or p.stderr.strip():
                raise AnnouncerFailed(f"gobgp neighbor add failed: {p.stderr.strip() or p.stdout.strip()}")
            self.measure(res, addr, child.alive, timeout)
            self.after_convergence(res, addr, child.pid, wait_eor=0.5)  # gobgpd sends no End-of-RIB here (no GR)
        except AnnouncerFailed as e:
            raise AnnouncerFailed(f"{e}\n  {child.tail()}") from None
        finally:
            self.current_pid = None
            if child.alive():
                try:
                    self.gobgp("neighbor", "del", ROUTER_IP, timeout=30)  # Cease to the router
                except AnnouncerFailed as e:
                    res.notes.append(f"gobgp neighbor del: {e}; stopping gobgpd with SIGTERM")
            self.reap(child)

    def birdc(self, ctl: Path, *args: str, timeout: float = 60) -> subprocess.CompletedProcess:
        try:
            return run(["birdc", "-s", str(ctl), *args], check=False, timeout=timeout)
        except BenchError as e:  # a timeout: this measurement fails, the run goes on
            raise AnnouncerFailed(str(e)) from None

    def run_bird(self, res: Result, start: ipaddress.IPv4Address, timeout: float) -> None:
        _, addr, asn = ANNOUNCERS["bird"]
        d = self.tmp / "bird"
        d.mkdir(exist_ok=True)
        conf, ctl = d / "bird.conf", d / "bird.ctl"
        write_bird_conf(conf, start, res.n, d / "bird.log", addr, asn)
        t0 = time.monotonic()
        # -f: foreground, so the pid we hold is BIRD itself.
        child = self.spawn("bird", ["ip", "netns", "exec", self.ns("bird"), "bird", "-f", "-c", str(conf), "-s", str(ctl)])
        self.current_pid = child.pid
        rx = re.compile(r"(\d+) of (\d+) routes for (\d+) networks in table master4")
        try:
            def loaded():
                if not child.alive():
                    raise AnnouncerFailed("BIRD exited while loading its configuration")
                if not ctl.exists():
                    return False
                m = rx.search(self.birdc(ctl, "show", "route", "count").stdout)
                return m is not None and int(m.group(1)) == res.n

            self.wait_for(f"BIRD loading {res.n} static routes", max(60, res.n / 2000), loaded, 0.2)
            res.load_s = round(time.monotonic() - t0, 3)
            res.loaded_rss_kb = proc_status(child.pid).get("VmRSS")
            p = self.birdc(ctl, "enable", "frr")
            if "enabled" not in p.stdout:
                raise AnnouncerFailed(f"birdc enable frr: {p.stdout.strip()} {p.stderr.strip()}")
            self.measure(res, addr, child.alive, timeout)
            self.after_convergence(res, addr, child.pid)
        except AnnouncerFailed as e:
            raise AnnouncerFailed(f"{e}\n  {child.tail()}") from None
        finally:
            self.current_pid = None
            if child.alive() and ctl.exists():
                try:
                    self.birdc(ctl, "down", timeout=30)  # graceful: Cease to the router, then exit
                    child.popen.wait(15)
                except (AnnouncerFailed, subprocess.TimeoutExpired) as e:
                    res.notes.append(f"birdc down: {e}; stopping BIRD with SIGTERM")
            self.reap(child)

    # ---- driver

    def one(self, n: int, announcer: str) -> Result:
        res = Result(n=n, announcer=announcer)
        start, _ = start_address(n)
        addr = ANNOUNCERS[announcer][1]
        timeout = self.args.timeout or max(120.0, n * 600 / 1_000_000)
        self.current_pid = None
        log(f"N={n} {LABELS[announcer]}: fresh router, {n} /32s from {start}, enabling the session in {self.ns(announcer)}")
        self.restart_router()
        self.log_mark = self.router.log_offset()  # before the announcer exists
        try:
            {"ferrolb": self.run_ferrolb, "gobgpd": self.run_gobgpd, "bird": self.run_bird}[announcer](res, start, timeout)
            res.ok = True
        except AnnouncerFailed as e:
            res.error = str(e)
            log(f"N={n} {LABELS[announcer]}: FAILED: {e}")
        try:
            self.wait_dropped(res, addr)
        except AnnouncerFailed as e:
            # The next measurement restarts the router anyway; say it, do not fail the run.
            res.notes.append(str(e))
        if res.ok:
            log(f"N={n} {LABELS[announcer]}: {res.converge_s:.3f}s (poll bracket {res.resolution_s:.3f}s) from Established to "
                f"{n} routes at the router; peak RSS {mb(res.peak_rss_kb)} MB"
                + (f"; ferrolb reports 'queued ... {res.announcer_reported_s:.3f}s after Established'" if res.announcer_reported_s is not None else ""))
        return res

    def main(self) -> int:
        self.preflight()
        self.build()
        self.lab_up()
        for n in self.args.sizes:
            for rep in range(self.args.repeat):
                for announcer in self.args.announcers:
                    res = self.one(n, announcer)
                    res.run = rep + 1
                    self.results.append(res)
        rows = summarize(self.results)
        report = render(rows, self.args)
        print()
        print(report)
        if self.args.json:
            doc = {
                "command": " ".join([Path(sys.argv[0]).name] + sys.argv[1:]),
                "environment": environment(self.announce_bin),
                "poll_interval_ms": self.args.poll_ms,
                "router_echo": self.args.router_echo,
                "repeat": self.args.repeat,
                "summary": rows,
                "ratios": ratios(rows),
                "runs": [asdict(r) for r in self.results],
            }
            Path(self.args.json).write_text(json.dumps(doc, indent=2) + "\n")
            log(f"wrote {self.args.json}")
        failed = [r for r in self.results if not r.ok]
        if failed:
            for r in failed:
                print(f"FAILED: N={r.n} {LABELS[r.announcer]}: {r.error}", file=sys.stderr)
            return 1
        return 0


# --------------------------------------------------------------------------- report


def mb(kb: int | None) -> str:
    return "-" if kb is None else f"{kb * 1024 / 1e6:.1f}"


def ratio(a: float | None, b: float | None) -> float | None:
    if a is None or b is None or b <= 0:
        return None
    return a / b


SUMMARY_FIELDS = ["converge_s", "resolution_s", "p99_s", "eor_s", "keepalive_wait_s", "peak_rss_kb", "updates_received",
                  "announcer_cpu_s", "bgpd_cpu_s", "announcer_reported_s", "load_s", "loaded_rss_kb", "rss_kb"]


def median(xs: list) -> float | None:
    xs = sorted(x for x in xs if x is not None)
    if not xs:
        return None
    mid = len(xs) // 2
    return xs[mid] if len(xs) % 2 else (xs[mid - 1] + xs[mid]) / 2


def summarize(results: list[Result]) -> list[dict]:
    """One row per (N, announcer): the median of each field over the repetitions, and the
    range of the convergence time. A row with any failed run is failed."""
    rows = []
    keys = sorted({(r.n, r.announcer) for r in results}, key=lambda k: (k[0], list(ANNOUNCERS).index(k[1])))
    for n, announcer in keys:
        runs = [r for r in results if (r.n, r.announcer) == (n, announcer)]
        ok = [r for r in runs if r.ok]
        row: dict = {"n": n, "announcer": announcer, "runs": len(runs), "ok": len(ok) == len(runs),
                     "errors": [r.error for r in runs if not r.ok]}
        for f in SUMMARY_FIELDS:
            row[f] = median([getattr(r, f) for r in ok])
        times = [r.converge_s for r in ok if r.converge_s is not None]
        row["converge_min_s"] = min(times) if times else None
        row["converge_max_s"] = max(times) if times else None
        rows.append(row)
    return rows


def ratios(rows: list[dict]) -> list[dict]:
    out = []
    by = {(r["n"], r["announcer"]): r for r in rows if r["ok"]}
    for n in sorted({r["n"] for r in rows}):
        f = by.get((n, "ferrolb"))
        if f is None:
            continue
        row: dict = {"n": n}
        for other in ("gobgpd", "bird"):
            o = by.get((n, other))
            row[f"time_vs_{other}"] = ratio(f["converge_s"], o["converge_s"]) if o else None
            row[f"rss_vs_{other}"] = ratio(f["peak_rss_kb"], o["peak_rss_kb"]) if o else None
        out.append(row)
    return out


def fmt(x: float | None, spec: str = ".2f", suffix: str = "") -> str:
    return "-" if x is None else f"{x:{spec}}{suffix}"


def render(rows: list[dict], args: argparse.Namespace) -> str:
    rep = args.repeat
    lines = [
        f"converge: Established (bgpd's log) -> first poll showing pfxRcd == N (polled every {args.poll_ms:g} ms over "
        "bgpd's vty socket); bracket: how much earlier it may have been",
        "peak RSS: VmHWM of the announcer after convergence, MB = 10^6 bytes"
        + (f"; every value is the median of {rep} runs, range: min-max of converge" if rep > 1 else ""),
        "",
        f"{'N':>9}  {'announcer':<9}  {'converge (s)':>12}  " + (f"{'range (s)':>13}  " if rep > 1 else "")
        + f"{'bracket':>7}  {'99% (s)':>7}  {'EoR (s)':>7}  {'KA wait':>7}  "
        f"{'peak RSS (MB)':>13}  {'UPDATEs':>7}  {'ann. CPU':>8}  {'bgpd CPU':>8}  {'ann. own':>8}",
    ]
    for r in rows:
        label = LABELS[r["announcer"]]
        if not r["ok"]:
            first = (r["errors"][0] or "").splitlines()[0] if r["errors"] else "?"
            lines.append(f"{r['n']:>9}  {label:<9}  FAILED ({len(r['errors'])} of {r['runs']}): {first}")
            continue
        rng = f"{r['converge_min_s']:.3f}-{r['converge_max_s']:.3f}" if rep > 1 else ""
        lines.append(
            f"{r['n']:>9}  {label:<9}  {r['converge_s']:>12.3f}  " + (f"{rng:>13}  " if rep > 1 else "")
            + f"{r['resolution_s']:>7.3f}  {fmt(r['p99_s'], '.3f'):>7}  {fmt(r['eor_s'], '.3f'):>7}  "
            f"{fmt(r['keepalive_wait_s'], '.3f'):>7}  {mb(r['peak_rss_kb']):>13}  {fmt(r['updates_received'], '.0f'):>7}  "
            f"{fmt(r['announcer_cpu_s']):>8}  {fmt(r['bgpd_cpu_s']):>8}  {fmt(r['announcer_reported_s'], '.3f'):>8}")
    lines += ["", f"{'N':>9}  {'time ferrolb/gobgpd':>19}  {'time ferrolb/BIRD':>17}  {'RSS ferrolb/gobgpd':>18}  "
                  f"{'RSS ferrolb/BIRD':>16}"]
    for row in ratios(rows):
        lines.append(f"{row['n']:>9}  {fmt(row['time_vs_gobgpd'], '.2f', 'x'):>19}  {fmt(row['time_vs_bird'], '.2f', 'x'):>17}  "
                     f"{fmt(row['rss_vs_gobgpd'], '.3f', 'x'):>18}  {fmt(row['rss_vs_bird'], '.2f', 'x'):>16}")
    # The issue's targets, at N = 100000.
    by = {(r["n"], r["announcer"]): r for r in rows if r["ok"]}
    f, g = by.get((100000, "ferrolb")), by.get((100000, "gobgpd"))
    if f is not None:
        lines.append("")
        if g is not None:
            t = ratio(f["converge_s"], g["converge_s"])
            verdict = "met" if t is not None and t <= 0.5 else "MISSED"
            lines.append(f"target: 100k in <= 0.5x gobgpd's time: {verdict} ({fmt(t, '.2f', 'x')})")
        rss = f["peak_rss_kb"] * 1024 / 1e6 if f["peak_rss_kb"] else None
        verdict = "met" if rss is not None and rss <= 25 else "MISSED"
        lines.append(f"target: ferrolb peak RSS at 100k <= 25 MB: {verdict} ({fmt(rss, '.1f', ' MB')})")
    lines += [
        "",
        "99%: Established -> pfxRcd >= 0.99 N; EoR: Established -> End-of-RIB processed (bgpd's log); KA wait: the "
        "router's OpenConfirm -> Established,",
        "  i.e. how long the announcer took to answer the router's OPEN+KEEPALIVE with its KEEPALIVE (not in converge);",
        "UPDATEs: received by the router, incl. End-of-RIB; CPU: user+system seconds of the announcer / of bgpd from "
        "Established to convergence;",
        "ann. own: ferrolb's own 'queued N prefixes and End-of-RIB ... Xs after Established' line",
    ]
    return "\n".join(lines)


def environment(announce_bin: Path | None) -> dict:
    def out(cmd: list[str]) -> str:
        try:
            p = subprocess.run(cmd, capture_output=True, text=True, timeout=30)
            return (p.stdout + p.stderr).strip()
        except (OSError, subprocess.SubprocessError):
            return "?"

    cpu = "?"
    try:
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                cpu = line.split(":", 1)[1].strip()
                break
    except OSError:
        pass
    mem_kb = proc_meminfo_total()
    return {
        "kernel": platform.release(),
        "cpus": os.cpu_count(),
        "cpu_model": cpu,
        "memory_mb": round(mem_kb * 1024 / 1e6) if mem_kb else None,
        "frr": out(["dpkg-query", "-W", "-f=${Version}", "frr"]),
        "gobgpd": out(["gobgpd", "--version"]),
        "bird": out(["bird", "--version"]),
        "announce": str(announce_bin),
        "git": out(["git", "-C", str(REPO), "describe", "--always", "--dirty"]),
    }


def proc_meminfo_total() -> int | None:
    try:
        for line in Path("/proc/meminfo").read_text().splitlines():
            if line.startswith("MemTotal:"):
                return int(line.split()[1])
    except (OSError, ValueError):
        pass
    return None


# --------------------------------------------------------------------------- main


def parse_args(argv: list[str]) -> argparse.Namespace:
    p = argparse.ArgumentParser(
        prog="bench/bgp_announce.py",
        description="Announce N IPv4 /32s to the lab's FRR router from ferrolb, gobgpd and BIRD in turn; "
                    "measure Established -> all N at the router, and each announcer's peak RSS.",
    )
    p.add_argument("--sizes", default="10000,100000,1000000", help="comma-separated N (default: %(default)s)")
    p.add_argument("--keep-lab", action="store_true", help="leave the lab up at the end")
    p.add_argument("--json", metavar="OUT", help="also write the results as JSON to OUT")
    p.add_argument("--announcers", default="ferrolb,gobgpd,bird", help="subset and order (default: %(default)s)")
    p.add_argument("--repeat", type=int, default=3,
                   help="measure every (N, announcer) this many times and report medians (default: %(default)s)")
    p.add_argument("--poll-ms", type=float, default=10.0, help="router polling interval in ms (default: %(default)s)")
    p.add_argument("--timeout", type=float, default=0,
                   help="seconds allowed from enabling a session to convergence (default: max(120, 600 per 1M))")
    p.add_argument("--router-echo", action="store_true",
                   help="keep FRR's default of advertising routes back to the neighbor they came from")
    p.add_argument("--lab-name", default="bench", help="lab name (default: %(default)s)")
    args = p.parse_args(argv)
    try:
        args.sizes = [int(x.replace("_", "")) for x in args.sizes.split(",") if x.strip()]
    except ValueError:
        p.error(f"--sizes: expected comma-separated integers, got {args.sizes!r}")
    if not args.sizes or any(n <= 0 for n in args.sizes):
        p.error("--sizes: every N must be positive")
    args.announcers = [a.strip().lower() for a in args.announcers.split(",") if a.strip()]
    for a in args.announcers:
        if a not in ANNOUNCERS:
            p.error(f"--announcers: unknown {a!r} (ferrolb, gobgpd, bird)")
    if not re.fullmatch(r"[A-Za-z0-9]{1,6}", args.lab_name):
        p.error("--lab-name: 1-6 letters or digits")
    if args.repeat < 1:
        p.error("--repeat must be at least 1")
    if args.poll_ms <= 0:
        p.error("--poll-ms must be positive")
    for n in args.sizes:
        try:
            start_address(n)
        except BenchError as e:
            p.error(str(e))
    return args


def main(argv: list[str]) -> int:
    args = parse_args(argv)
    bench = Bench(args)

    def on_signal(signum, _frame):
        raise KeyboardInterrupt(signal.Signals(signum).name)

    # Also SIGINT: a shell starts background jobs with SIGINT ignored, and Python keeps that.
    for sig in (signal.SIGINT, signal.SIGTERM, signal.SIGHUP):
        signal.signal(sig, on_signal)
    try:
        return bench.main()
    except BenchError as e:
        print(f"bgp_announce: error: {e}", file=sys.stderr)
        return 2
    except KeyboardInterrupt as e:
        print(f"bgp_announce: interrupted{f' ({e})' if str(e) else ''}; cleaning up", file=sys.stderr)
        return 130
    finally:
        # Ctrl-C during teardown should not leave the lab half-removed.
        signal.signal(signal.SIGINT, signal.SIG_IGN)
        signal.signal(signal.SIGTERM, signal.SIG_IGN)
        bench.teardown()


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
