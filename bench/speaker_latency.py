#!/usr/bin/env python3
"""bench/speaker_latency.py: time from a Service file change to the BGP UPDATE at the router.

    sudo python3 bench/speaker_latency.py [--changes 1000] [--keep-lab] [--json OUT]

Needs root (network namespaces), the lab's packages (scripts/install-deps.sh: frr, tcpdump) and
cargo. Python 3 standard library only. bench/speaker_latency.md explains the method and shows
results.

What it does:
  1. builds `cargo build --release -p ferrolb` (honours CARGO_TARGET_DIR; under sudo, cargo runs
     as the invoking user), brings up the netns lab `lat` (FRR, one node), and writes a config
     folder into a temp dir: a copy of examples/lab/*.yaml plus `bench-latency.yaml`, a Service
     asking for 203.0.113.20 (annotation ferrolb.io/loadBalancerIPs);
  2. runs `ferrolb speaker --config-dir DIR --node-name n1 --watch-debounce 20ms --drain-time 1s`
     in lat-n1 (RUST_LOG=info,ferrolb_speaker=debug, log in the temp dir) and waits until the
     router has the session and 203.0.113.20/32 from it;
  3. captures the router's eth0 (tcpdump --immediate-mode -U, ns timestamps, port 179) into a pcap
     that it parses while it grows: TCP from the node is reassembled and BGP UPDATEs (type 2)
     are decoded down to their IPv4 withdrawn routes and NLRI;
  4. makes --warmup changes (not counted), then --changes changes: the Service file is replaced
     atomically (written in a sibling folder, then rename(2) into the config folder) so that its
     address alternates 203.0.113.20 <-> .21 (one withdraw + one announce). T0 = time.time()
     just before the rename (CLOCK_REALTIME, the clock of tcpdump's timestamps). It waits until
     the router's interface has seen both the withdraw of the old /32 and the announce of the
     new one (or --timeout), pauses --pause ms (plus up to 20 ms of jitter) and goes on;
  5. latency = t(first UPDATE of the change at the router's eth0) - T0 - debounce (20 ms);
     prints count, min, p50, p90, p99, max, timeouts, the same for the last UPDATE of the change,
     and a breakdown from the agent's own "configuration applied took=..." debug lines;
  6. stops what it started (by pid), tears the lab down (unless --keep-lab) and exits 1 if
     anything failed (including any change that timed out); with --check, exits 3 if the p99
     misses the target (10 ms).
"""

from __future__ import annotations

import argparse
import ipaddress
import json
import os
import platform
import pwd
import random
import re
import shutil
import signal
import socket
import statistics
import struct
import subprocess
import sys
import tempfile
import threading
import time
from dataclasses import dataclass, field
from datetime import datetime, timezone
from pathlib import Path

REPO = Path(__file__).resolve().parent.parent
LAB_SH = REPO / "lab" / "netns" / "lab.sh"
EXAMPLES = REPO / "examples" / "lab"
STATE_ROOT = Path("/run/ferrolb-lab")

NODE_IP = "192.0.2.11"  # lab node 1 (lab/netns/README.md)
ROUTER_IP = "192.0.2.1"
ADDRESSES = ("203.0.113.20", "203.0.113.21")  # both in examples/lab's pool "lab"
SERVICE_FILE = "bench-latency.yaml"
DEBOUNCE_MS = 20
TARGET_P99_MS = 10.0

SERVICE_TEMPLATE = """\
# Written by bench/speaker_latency.py; rewritten (write + rename) for every change.
apiVersion: v1
kind: Service
metadata:
  name: latency
  namespace: bench
  annotations:
    ferrolb.io/loadBalancerIPs: {address}
spec:
  type: LoadBalancer
  selector: {{app: latency}}
  ports:
    - {{name: http, protocol: TCP, port: 80}}
"""

INCLUDED = ("inotify wake-up (notify's thread, channel to the debounce task, tokio timer rounding "
            "of the 20 ms quiet period), reading and parsing every file of the folder, validation, "
            "allocation, planning, the hand-off to bgpd, bgpd's diff and UPDATE packing, and the "
            "TCP send over the lab's veth/bridge to the router's eth0")


class Failure(Exception):
    """A reason to stop with exit status 1."""


def log(msg: str) -> None:
    print(f"speaker_latency: {msg}", flush=True)


# ----------------------------------------------------------------------------- pcap and BGP

BGP_MARKER = b"\xff" * 16


@dataclass
class Update:
    ts: float  # pcap timestamp of the packet that completed the message
    withdrawn: list[str]
    announced: list[str]


def _v4_prefixes(data: bytes) -> list[str]:
    out, i = [], 0
    while i < len(data):
        plen = data[i]
        n = (plen + 7) // 8
        raw = data[i + 1:i + 1 + n] + b"\x00" * (4 - n)
        out.append(f"{ipaddress.IPv4Address(raw[:4])}/{plen}")
        i += 1 + n
    return out


def decode_update(body: bytes) -> tuple[list[str], list[str]]:
    """IPv4 withdrawn routes and NLRI of an UPDATE body (after the 19-byte header)."""
    try:
        wlen = struct.unpack_from("!H", body, 0)[0]
        withdrawn = _v4_prefixes(body[2:2 + wlen])
        alen = struct.unpack_from("!H", body, 2 + wlen)[0]
        announced = _v4_prefixes(body[4 + wlen + alen:])
        return withdrawn, announced
    except (struct.error, IndexError, ValueError):
        return [], []


class PcapFollower(threading.Thread):
    """Parses a pcap file while tcpdump writes it and collects the node's BGP UPDATEs."""

    def __init__(self, path: Path, node_ip: str):
        super().__init__(daemon=True, name="pcap")
        self.path = path
        self.node = socket.inet_aton(node_ip)
        self.cond = threading.Condition()
        self.updates: list[Update] = []
        self.other_messages = 0
        self.resyncs = 0
        self.packets = 0
        self.stop = threading.Event()
        self.error: str | None = None
        self.flows: dict[tuple, dict] = {}

    def run(self) -> None:
        try:
            self._follow()
        except Exception as e:  # noqa: BLE001 - reported to the main thread
            self.error = f"pcap reader: {e!r}"
            with self.cond:
                self.cond.notify_all()

    def _follow(self) -> None:
        while not self.path.exists() or self.path.stat().st_size < 24:
            if self.stop.wait(0.005):
                return
        with open(self.path, "rb") as f:
            header = f.read(24)
            magic = header[:4]
            formats = {b"\xd4\xc3\xb2\xa1": ("<", 1e-6), b"\xa1\xb2\xc3\xd4": (">", 1e-6),
                       b"\x4d\x3c\xb2\xa1": ("<", 1e-9), b"\xa1\xb2\x3c\x4d": (">", 1e-9)}
            if magic not in formats:
                raise ValueError(f"not a pcap file (magic {magic.hex()})")
            endian, scale = formats[magic]
            linktype = struct.unpack(endian + "I", header[20:24])[0] & 0x0FFFFFFF
            buf = b""
            while True:
                chunk = f.read(1 << 16)
                if chunk:
                    buf += chunk
                    at = 0
                    while len(buf) - at >= 16:
                        sec, frac, incl, _orig = struct.unpack_from(endian + "IIII", buf, at)
                        if len(buf) - at < 16 + incl:
                            break
                        self._packet(sec + frac * scale, linktype, buf[at + 16:at + 16 + incl])
                        at += 16 + incl
                    buf = buf[at:]
                elif self.stop.wait(0.001):
                    return

    def _packet(self, ts: float, linktype: int, pkt: bytes) -> None:
        self.packets += 1
        if linktype == 1:  # Ethernet
            off, etype = 14, struct.unpack_from("!H", pkt, 12)[0]
            while etype in (0x8100, 0x88A8):
                etype = struct.unpack_from("!H", pkt, off + 2)[0]
                off += 4
        elif linktype == 113:  # Linux cooked v1
            off, etype = 16, struct.unpack_from("!H", pkt, 14)[0]
        elif linktype == 276:  # Linux cooked v2
            off, etype = 20, struct.unpack_from("!H", pkt, 0)[0]
        else:
            raise ValueError(f"unsupported pcap link type {linktype}")
        if etype != 0x0800 or len(pkt) < off + 20:
            return  # the session is over IPv4 (NODE_IP); nothing else matters here
        ip = pkt[off:]
        ihl = (ip[0] & 0x0F) * 4
        if ip[9] != 6 or ip[12:16] != self.node:
            return
        total = struct.unpack_from("!H", ip, 2)[0]
        tcp = ip[ihl:total]
        sport, dport, seq = struct.unpack_from("!HHI", tcp, 0)
        if 179 not in (sport, dport):
            return
        flags = tcp[13]
        payload = tcp[(tcp[12] >> 4) * 4:]
        key = (ip[12:16], sport, ip[16:20], dport)
        flow = self.flows.get(key)
        if flags & 0x02 or flow is None:  # SYN, or first segment seen: (re)start the stream
            flow = {"next": (seq + 1) & 0xFFFFFFFF if flags & 0x02 else seq, "buf": b""}
            self.flows[key] = flow
        if not payload:
            return
        delta = (seq - flow["next"]) & 0xFFFFFFFF
        if delta >= 0x80000000:  # seq before next: retransmission or overlap
            overlap = (flow["next"] - seq) & 0xFFFFFFFF
            if overlap >= len(payload):
                return
            payload, seq = payload[overlap:], flow["next"]
        elif delta:  # a gap (the capture missed something): resynchronise on the marker
            flow["buf"] = b""
            self.resyncs += 1
        flow["next"] = (seq + len(payload)) & 0xFFFFFFFF
        flow["buf"] += payload
        self._messages(ts, flow)

    def _messages(self, ts: float, flow: dict) -> None:
        buf = flow["buf"]
        found: list[Update] = []
        while len(buf) >= 19:
            if buf[:16] != BGP_MARKER:
                i = buf.find(BGP_MARKER, 1)
                self.resyncs += 1
                buf = buf[i:] if i >= 0 else b""
                continue
            length, mtype = struct.unpack_from("!HB", buf, 16)
            if length < 19:
                buf = buf[1:]
                continue
            if len(buf) < length:
                break
            if mtype == 2:
                withdrawn, announced = decode_update(buf[19:length])
                found.append(Update(ts, withdrawn, announced))
            else:
                self.other_messages += 1
            buf = buf[length:]
        flow["buf"] = buf
        if found:
            with self.cond:
                self.updates.extend(found)
                self.cond.notify_all()


# ----------------------------------------------------------------------------- agent log

ANSI = re.compile(r"\x1b\[[0-9;]*m")
APPLIED = re.compile(r"^(\S+Z)\s+DEBUG\s+ferrolb_speaker::agent: configuration applied took=(\S+)")
UNITS = {"ns": 1e-9, "µs": 1e-6, "μs": 1e-6, "us": 1e-6, "ms": 1e-3, "s": 1.0}


def parse_rust_duration(text: str) -> float | None:
    m = re.fullmatch(r"([0-9.]+)(ns|µs|μs|us|ms|s)", text)
    return float(m.group(1)) * UNITS[m.group(2)] if m else None


def parse_rfc3339(text: str) -> float:
    """2026-11-21T12:51:39.577490Z (any number of fraction digits) -> epoch seconds."""
    base, _, frac = text.rstrip("Z").partition(".")
    whole = datetime.strptime(base, "%Y-%m-%dT%H:%M:%S").replace(tzinfo=timezone.utc).timestamp()
    return whole + (float("0." + frac) if frac else 0.0)


def applied_lines(path: Path) -> list[tuple[float, float]]:
    """(end time, took) of every "configuration applied" line of the agent's log."""
    out = []
    try:
        text = path.read_text(errors="replace")
    except OSError:
        return out
    for line in text.splitlines():
        m = APPLIED.match(ANSI.sub("", line))
        if m:
            took = parse_rust_duration(m.group(2))
            if took is not None:
                out.append((parse_rfc3339(m.group(1)), took))
    return out


# ----------------------------------------------------------------------------- statistics

def percentile(sorted_values: list[float], p: float) -> float:
    """Nearest-rank percentile (p in 0..100) of an ascending list."""
    if not sorted_values:
        return float("nan")
    rank = max(1, -(-len(sorted_values) * p // 100))  # ceil(n * p / 100)
    return sorted_values[int(rank) - 1]


def summary(values_ms: list[float]) -> dict:
    v = sorted(values_ms)
    if not v:
        return {"count": 0}
    return {"count": len(v), "min": v[0], "p50": percentile(v, 50), "p90": percentile(v, 90),
            "p99": percentile(v, 99), "max": v[-1], "mean": statistics.fmean(v)}


def fmt_row(name: str, s: dict) -> str:
    if not s.get("count"):
        return f"  {name:<56} (no samples)"
    return (f"  {name:<56} {s['count']:>5} {s['min']:>8.2f} {s['p50']:>8.2f} {s['p90']:>8.2f} "
            f"{s['p99']:>8.2f} {s['max']:>8.2f}")


# ----------------------------------------------------------------------------- the benchmark

@dataclass
class Change:
    index: int
    old: str
    new: str
    t0: float
    first: float | None = None  # first UPDATE of this change at the router's eth0
    last: float | None = None  # when both the withdraw and the announce had been seen
    applied_end: float | None = None
    applied_took: float | None = None


@dataclass
class Bench:
    args: argparse.Namespace
    lab: str
    lab_up: bool = False
    work: Path | None = None
    speaker: subprocess.Popen | None = None
    tcpdump: subprocess.Popen | None = None
    follower: PcapFollower | None = None
    ferrolb_bin: Path | None = None
    failed: bool = False
    changes: list[Change] = field(default_factory=list)

    # --- setup -----------------------------------------------------------------------------

    def preflight(self) -> None:
        if os.geteuid() != 0:
            raise Failure("needs root (network namespaces, tcpdump); run: sudo python3 bench/speaker_latency.py")
        for tool, pkg in (("tcpdump", "tcpdump"), ("vtysh", "frr"), ("ip", "iproute2")):
            if shutil.which(tool) is None:
                raise Failure(f"'{tool}' not found (Debian package {pkg}); run scripts/install-deps.sh as root")
        if not re.fullmatch(r"[A-Za-z0-9]{1,6}", self.lab):
            raise Failure(f"--lab-name {self.lab!r}: 1-6 letters or digits")
        if (STATE_ROOT / self.lab).exists():
            raise Failure(f"a lab named '{self.lab}' already exists (left by --keep-lab or a killed run, or "
                          f"someone else's); remove it with: sudo {LAB_SH.relative_to(REPO)} down --name "
                          f"{self.lab} (or pass --lab-name)")

    def find_cargo(self) -> tuple[list[str], dict[str, str]]:
        """cargo, run as the invoking user under sudo so that the target dir stays theirs."""
        env = dict(os.environ)
        user = os.environ.get("SUDO_USER")
        if user and user != "root":
            pw = pwd.getpwnam(user)
            path = f"{pw.pw_dir}/.cargo/bin:{env.get('PATH', '')}"
            cargo = shutil.which("cargo", path=path)
            if cargo is None:
                raise Failure(f"cargo not found for user {user} (~/.cargo/bin or PATH); install Rust (rustup)")
            keep = {k: v for k, v in env.items() if k.startswith(("CARGO", "RUSTUP", "RUST"))}
            keep.update(HOME=pw.pw_dir, USER=user, PATH=path)
            return ["runuser", "-u", user, "--", "env"] + [f"{k}={v}" for k, v in keep.items()] + [cargo], env
        home_cargo = Path.home() / ".cargo" / "bin" / "cargo"
        cargo = shutil.which("cargo") or (str(home_cargo) if home_cargo.exists() else None)
        if cargo is None:
            raise Failure("cargo not found on PATH; install Rust (rustup) or run with sudo from a user that has it")
        return [cargo], env

    def build(self) -> None:
        cargo, env = self.find_cargo()
        target_note = f" (CARGO_TARGET_DIR={os.environ['CARGO_TARGET_DIR']})" if os.environ.get("CARGO_TARGET_DIR") else ""
        log(f"building: cargo build --release -p ferrolb{target_note}")
        proc = subprocess.run(cargo + ["build", "--release", "-p", "ferrolb"], cwd=REPO, env=env,
                              stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True)
        if proc.returncode != 0:
            raise Failure("cargo build failed:\n  " + "\n  ".join(proc.stdout.strip().splitlines()[-25:]))
        meta = subprocess.run(cargo + ["metadata", "--format-version", "1", "--no-deps"], cwd=REPO, env=env,
                              capture_output=True, text=True)
        if meta.returncode != 0:
            raise Failure("cargo metadata failed: " + meta.stderr.strip()[-500:])
        self.ferrolb_bin = Path(json.loads(meta.stdout)["target_directory"]) / "release" / "ferrolb"
        if not os.access(self.ferrolb_bin, os.X_OK):
            raise Failure(f"the build did not produce {self.ferrolb_bin}")
        log(f"binary: {self.ferrolb_bin}")

    def lab_cmd(self, *args: str, check: bool = True) -> subprocess.CompletedProcess:
        proc = subprocess.run([str(LAB_SH), *args], capture_output=True, text=True)
        if check and proc.returncode != 0:
            raise Failure(f"lab.sh {' '.join(args)} failed: {(proc.stderr or proc.stdout).strip()[-800:]}")
        return proc

    def bring_up_lab(self) -> None:
        log(f"lab: {LAB_SH.relative_to(REPO)} up --name {self.lab} --router frr --nodes 1")
        self.lab_up = True  # even a half-made lab is torn down
        self.lab_cmd("up", "--name", self.lab, "--router", "frr", "--nodes", "1")

    def vtysh_json(self, command: str) -> dict:
        proc = subprocess.run(["vtysh", "--vty_socket", str(STATE_ROOT / self.lab / "frr"), "-c", command],
                              capture_output=True, text=True, timeout=10)
        if proc.returncode != 0:
            raise RuntimeError((proc.stderr or proc.stdout).strip())
        return json.loads(proc.stdout or "{}")

    def write_config(self) -> None:
        self.work = Path(tempfile.mkdtemp(prefix="ferrolb-latency-"))
        config, stage = self.work / "config", self.work / "stage"
        config.mkdir()
        stage.mkdir()  # same file system as config/, so rename(2) is atomic
        for f in sorted(EXAMPLES.glob("*.yaml")):
            shutil.copy(f, config / f.name)
        (config / SERVICE_FILE).write_text(SERVICE_TEMPLATE.format(address=ADDRESSES[0]))
        log(f"config folder: {config} ({', '.join(sorted(p.name for p in config.iterdir()))})")

    def start_speaker(self) -> None:
        assert self.work and self.ferrolb_bin
        cmd = ["ip", "netns", "exec", f"{self.lab}-n1", str(self.ferrolb_bin), "speaker",
               "--config-dir", str(self.work / "config"), "--node-name", "n1",
               "--watch-debounce", f"{DEBOUNCE_MS}ms", "--drain-time", "1s"]
        env = dict(os.environ, RUST_LOG=self.args.agent_log)
        log(f"speaker: RUST_LOG={self.args.agent_log} {' '.join(cmd)}")
        with open(self.work / "agent.log", "wb") as out:
            # `ip netns exec` execs the command: this pid is the speaker's.
            self.speaker = subprocess.Popen(cmd, stdout=out, stderr=subprocess.STDOUT, env=env,
                                            stdin=subprocess.DEVNULL)

    def wait_for_route(self, timeout: float = 30.0) -> None:
        deadline, last = time.monotonic() + timeout, "nothing yet"
        while time.monotonic() < deadline:
            self.check_alive()
            try:
                table = self.vtysh_json("show bgp ipv4 unicast json")
                paths = table.get("routes", {}).get(f"{ADDRESSES[0]}/32", [])
                if any(p.get("peerId") == NODE_IP for p in paths):
                    log(f"router has {ADDRESSES[0]}/32 from {NODE_IP}")
                    return
                summ = self.vtysh_json("show bgp ipv4 unicast summary json")
                last = f"session {summ.get('peers', {}).get(NODE_IP, {}).get('state', 'absent')}, no route yet"
            except (RuntimeError, ValueError, subprocess.TimeoutExpired) as e:
                last = f"vtysh: {e}"
            time.sleep(0.2)
        raise Failure(f"the router did not get {ADDRESSES[0]}/32 from the speaker within {timeout:.0f}s "
                      f"({last}); agent log: {self.work / 'agent.log'}")

    def start_capture(self) -> None:
        assert self.work
        pcap = self.work / "router-eth0.pcap"
        cmd = ["ip", "netns", "exec", f"{self.lab}-rtr", "tcpdump", "-Z", "root", "-i", "eth0", "--immediate-mode", "-U", "-n", "-s", "0",
               "--time-stamp-precision=nano", "-w", str(pcap), "tcp port 179"]
        # -Z root: Debian's tcpdump otherwise drops to user tcpdump before it opens the file, and
        # the temp dir is root's (0700). --immediate-mode: without it libpcap (TPACKET_V3) hands
        # packets over in blocks up to 1 s late; the timestamps would still be right, but every
        # change would wait ~1 s for its UPDATE to be read. -U: each packet is flushed to the file.
        log(f"capture: {' '.join(cmd)}")
        self.tcpdump = subprocess.Popen(cmd, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE,
                                        stdin=subprocess.DEVNULL, text=True)
        line = self.tcpdump.stderr.readline()  # "tcpdump: listening on eth0, ..." once capturing
        if "listening on" not in line:
            self.tcpdump.wait(timeout=5)
            raise Failure(f"tcpdump did not start: {line.strip()} {self.tcpdump.stderr.read().strip()}")
        threading.Thread(target=self.tcpdump.stderr.read, daemon=True).start()  # drain
        self.follower = PcapFollower(pcap, NODE_IP)
        self.follower.start()

    def check_alive(self) -> None:
        if self.speaker and self.speaker.poll() is not None:
            raise Failure(f"the speaker exited with status {self.speaker.returncode}; "
                          f"agent log: {self.work / 'agent.log' if self.work else '?'}")
        if self.tcpdump and self.tcpdump.poll() is not None:
            raise Failure(f"tcpdump exited with status {self.tcpdump.returncode}")
        if self.follower and self.follower.error:
            raise Failure(self.follower.error)

    # --- the measurement ---------------------------------------------------------------------

    def one_change(self, index: int, current: str) -> Change:
        assert self.work and self.follower
        new = ADDRESSES[1] if current == ADDRESSES[0] else ADDRESSES[0]
        staged = self.work / "stage" / SERVICE_FILE
        staged.write_text(SERVICE_TEMPLATE.format(address=new))
        with self.follower.cond:
            seen = len(self.follower.updates)
        t0 = time.time()
        os.rename(staged, self.work / "config" / SERVICE_FILE)
        change = Change(index, current, new, t0)
        want_w, want_a = f"{current}/32", f"{new}/32"
        got_w = got_a = False
        deadline = time.monotonic() + self.args.timeout
        while True:
            with self.follower.cond:
                fresh = self.follower.updates[seen:]
                seen = len(self.follower.updates)
                if not fresh and not self.follower.error:
                    self.follower.cond.wait(timeout=max(0.0, min(0.1, deadline - time.monotonic())))
                    fresh = self.follower.updates[seen:]
                    seen = len(self.follower.updates)
            for u in fresh:
                if u.ts < t0:
                    continue
                mine = want_w in u.withdrawn or want_a in u.announced
                if mine and change.first is None:
                    change.first = u.ts
                got_w |= want_w in u.withdrawn
                got_a |= want_a in u.announced
                if got_w and got_a and change.last is None:
                    change.last = u.ts
            if change.last is not None:
                return change
            self.check_alive()
            if time.monotonic() >= deadline:
                return change

    def measure(self) -> None:
        current = ADDRESSES[0]
        total = self.args.warmup + self.args.changes
        rng = random.Random(self.args.seed)
        log(f"{self.args.warmup} warm-up changes, then {self.args.changes} measured; pause "
            f"{self.args.pause:g}-{self.args.pause + 20:g} ms between changes, timeout {self.args.timeout:g}s each")
        started = time.monotonic()
        for i in range(total):
            change = self.one_change(i, current)
            if change.last is None:
                log(f"change {i} ({change.old} -> {change.new}) timed out after {self.args.timeout:g}s "
                    f"(first UPDATE {'seen' if change.first else 'not seen'})")
                self.resync(change.new)
            current = change.new
            if i >= self.args.warmup:
                self.changes.append(change)
            done = i + 1 - self.args.warmup
            if done > 0 and done % 100 == 0:
                log(f"  {done}/{self.args.changes} changes ({time.monotonic() - started:.0f}s)")
            time.sleep((self.args.pause + rng.uniform(0, 20)) / 1000)
        time.sleep(0.2)  # let the last log lines reach the file

    def resync(self, address: str) -> None:
        """After a timeout: wait (up to 10 s) until the router has exactly `address` from us."""
        deadline = time.monotonic() + 10
        while time.monotonic() < deadline:
            self.check_alive()
            try:
                routes = self.vtysh_json("show bgp ipv4 unicast json").get("routes", {})
                if f"{address}/32" in routes and not any(f"{a}/32" in routes for a in ADDRESSES if a != address):
                    return
            except (RuntimeError, ValueError, subprocess.TimeoutExpired):
                pass
            time.sleep(0.2)
        raise Failure(f"after a timed-out change the router never converged to {address}/32 alone")

    def attach_agent_log(self) -> None:
        """Matches each change with the agent's own "configuration applied" line."""
        assert self.work
        lines = applied_lines(self.work / "agent.log")
        j = 0
        for n, c in enumerate(self.changes):
            limit = self.changes[n + 1].t0 if n + 1 < len(self.changes) else float("inf")
            while j < len(lines) and lines[j][0] < c.t0:
                j += 1
            if j < len(lines) and lines[j][0] < limit:
                c.applied_end, c.applied_took = lines[j]
                j += 1

    # --- report ------------------------------------------------------------------------------

    def report(self) -> dict:
        d = DEBOUNCE_MS / 1000
        ok = [c for c in self.changes if c.first is not None and c.last is not None]
        timeouts = len(self.changes) - len(ok)
        first = [(c.first - c.t0 - d) * 1000 for c in ok]
        last = [(c.last - c.t0 - d) * 1000 for c in ok]
        with_log = [c for c in ok if c.applied_end is not None]
        wake = [((c.applied_end - c.applied_took) - c.t0 - d) * 1000 for c in with_log]
        took = [c.applied_took * 1000 for c in with_log]
        to_wire = [(c.first - (c.applied_end - c.applied_took)) * 1000 for c in with_log]
        after_apply = [(c.first - c.applied_end) * 1000 for c in with_log]
        s_first, s_last = summary(first), summary(last)

        print()
        print("=" * 100)
        print(f"Service file change -> BGP UPDATE at the router (ferrolb speaker, {len(self.changes)} changes)")
        print(f"  latency = t(UPDATE at the router's eth0, tcpdump) - T0 (just before rename(2) of the file) "
              f"- {DEBOUNCE_MS} ms")
        print(f"  EXCLUDED: the file-watch debounce (--watch-debounce {DEBOUNCE_MS}ms), subtracted as a constant.")
        print(f"  INCLUDED: {INCLUDED}.")
        print(f"  machine: {platform.node()}, {os.cpu_count()} CPUs, load average "
              f"{' '.join(f'{x:.2f}' for x in os.getloadavg())}, Linux {platform.release()}")
        print()
        print(f"  {'ms':<56} {'count':>5} {'min':>8} {'p50':>8} {'p90':>8} {'p99':>8} {'max':>8}")
        print(fmt_row("first UPDATE of the change (the metric)", s_first))
        print(fmt_row("change complete (withdraw and announce seen)", s_last))
        print(f"  timed out (> {self.args.timeout:g}s): {timeouts}")
        negative = sum(1 for x in first if x < 0)
        if negative:
            print(f"  NOTE: {negative} changes reached the router less than {DEBOUNCE_MS} ms after T0 "
                  f"(the debounce was not honoured)")
        if with_log:
            print()
            print(f"  where the time goes, from the agent's 'configuration applied took=...' debug line "
                  f"({len(with_log)} changes matched):")
            print(fmt_row(f"T0 -> reload starts, minus {DEBOUNCE_MS} ms", summary(wake)))
            print(fmt_row("reload (took): read, parse, validate, alloc, plan, bgpd", summary(took)))
            print(fmt_row("reload starts -> first UPDATE at the router", summary(to_wire)))
            print(fmt_row("'applied' logged -> first UPDATE (<0: before)", summary(after_apply)))
        elif self.args.agent_log:
            print("  (no 'configuration applied' lines matched: RUST_LOG must enable ferrolb_speaker=debug)")
        print()
        verdict = "MET" if s_first.get("count") and s_first["p99"] < TARGET_P99_MS else "MISSED"
        print(f"  target p99 < {TARGET_P99_MS:g} ms (debounce excluded): {verdict}"
              + (f" (p99 {s_first['p99']:.2f} ms)" if s_first.get("count") else ""))
        if self.follower:
            print(f"  capture: {self.follower.packets} packets, {self.follower.resyncs} stream resyncs")
        print("=" * 100)

        return {
            "benchmark": "speaker_latency",
            "when": datetime.now(timezone.utc).isoformat(timespec="seconds"),
            "git": git_describe(),
            "machine": {"host": platform.node(), "cpus": os.cpu_count(), "kernel": platform.release(),
                        "loadavg_end": os.getloadavg()},
            "params": {"changes": len(self.changes), "warmup": self.args.warmup,
                       "debounce_ms": DEBOUNCE_MS, "pause_ms": self.args.pause, "timeout_s": self.args.timeout,
                       "agent_log": self.args.agent_log, "addresses": ADDRESSES},
            "excluded": f"file-watch debounce ({DEBOUNCE_MS} ms)",
            "included": INCLUDED,
            "timeouts": timeouts,
            "first_update_ms": s_first,
            "change_complete_ms": s_last,
            "breakdown_ms": {"wake_minus_debounce": summary(wake), "reload_took": summary(took),
                             "reload_start_to_first_update": summary(to_wire),
                             "applied_log_to_first_update": summary(after_apply)},
            "target_p99_ms": TARGET_P99_MS,
            "target_met": verdict == "MET",
            "samples_ms": [{"first": None if c.first is None else round((c.first - c.t0 - d) * 1000, 4),
                            "complete": None if c.last is None else round((c.last - c.t0 - d) * 1000, 4),
                            "took": None if c.applied_took is None else round(c.applied_took * 1000, 4)}
                           for c in self.changes],
        }

    # --- teardown ----------------------------------------------------------------------------

    def stop_process(self, proc: subprocess.Popen | None, name: str, sig: int, wait: float) -> None:
        if proc is None or proc.poll() is not None:
            return
        try:
            os.kill(proc.pid, sig)
            proc.wait(timeout=wait)
        except subprocess.TimeoutExpired:
            log(f"{name} (pid {proc.pid}) did not stop within {wait:g}s: SIGKILL")
            os.kill(proc.pid, signal.SIGKILL)
            proc.wait(timeout=5)
        except ProcessLookupError:
            pass

    def teardown(self) -> None:
        self.stop_process(self.speaker, "speaker", signal.SIGTERM, 10)  # drains for 1 s
        self.stop_process(self.tcpdump, "tcpdump", signal.SIGTERM, 5)
        if self.follower:
            self.follower.stop.set()
            self.follower.join(timeout=5)
        keep = self.args.keep_lab or self.failed
        if self.lab_up and not self.args.keep_lab:
            proc = self.lab_cmd("down", "--name", self.lab, check=False)
            if proc.returncode != 0:
                log(f"lab down failed: {(proc.stderr or proc.stdout).strip()}")
        elif self.lab_up:
            log(f"lab kept: sudo {LAB_SH.relative_to(REPO)} down --name {self.lab}")
        if self.work:
            if keep:
                log(f"kept the config folder, agent log and pcap in {self.work}")
            else:
                shutil.rmtree(self.work, ignore_errors=True)


def git_describe() -> dict:
    def run(*a: str) -> str:
        p = subprocess.run(["git", "-C", str(REPO), *a], capture_output=True, text=True)
        return p.stdout.strip() if p.returncode == 0 else ""
    return {"commit": run("rev-parse", "HEAD"), "dirty": bool(run("status", "--porcelain", "--untracked-files=no"))}


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0],
                                 formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--changes", type=int, default=1000, help="measured changes (default 1000)")
    ap.add_argument("--warmup", type=int, default=10, help="changes made first and not counted (default 10)")
    ap.add_argument("--pause", type=float, default=50.0,
                    help="ms to wait after a change has reached the router, plus 0-20 ms jitter (default 50)")
    ap.add_argument("--timeout", type=float, default=2.0, help="seconds to wait for a change's UPDATEs (default 2)")
    ap.add_argument("--lab-name", default="lat", help="name of the netns lab (default lat)")
    ap.add_argument("--agent-log", default="info,ferrolb_speaker=debug",
                    help="RUST_LOG for the speaker (default info,ferrolb_speaker=debug; the breakdown needs "
                         "ferrolb_speaker=debug)")
    ap.add_argument("--seed", type=int, default=1, help="seed of the pause jitter")
    ap.add_argument("--keep-lab", action="store_true", help="leave the lab up and keep the temp dir")
    ap.add_argument("--json", type=Path, metavar="OUT", help="write the results (with every sample) as JSON")
    ap.add_argument("--check", action="store_true", help=f"exit 3 if p99 >= {TARGET_P99_MS:g} ms")
    args = ap.parse_args()
    if args.changes < 1 or args.warmup < 0 or args.pause < 0 or args.timeout <= 0:
        ap.error("--changes must be >= 1, --warmup and --pause >= 0, --timeout > 0")

    bench = Bench(args, args.lab_name)

    def on_term(signum, _frame):
        raise KeyboardInterrupt(f"signal {signum}")
    for sig in (signal.SIGINT, signal.SIGTERM, signal.SIGHUP):
        signal.signal(sig, on_term)  # also SIGINT: a background job inherits it ignored

    status = 0
    try:
        bench.preflight()
        bench.build()
        bench.bring_up_lab()
        bench.write_config()
        bench.start_speaker()
        bench.wait_for_route()
        bench.start_capture()
        bench.measure()
        bench.attach_agent_log()
        result = bench.report()
        if args.json:
            args.json.write_text(json.dumps(result, indent=1) + "\n")
            log(f"results written to {args.json}")
        if result["timeouts"]:
            raise Failure(f"{result['timeouts']} of {len(bench.changes)} changes did not reach the router "
                          f"within {args.timeout:g}s")
        if args.check and not result["target_met"]:
            status = 3
    except Failure as e:
        bench.failed = True
        print(f"speaker_latency: error: {e}", file=sys.stderr, flush=True)
        status = 1
    except KeyboardInterrupt:
        bench.failed = True
        print("speaker_latency: interrupted", file=sys.stderr, flush=True)
        status = 1
    finally:
        signal.signal(signal.SIGTERM, signal.SIG_IGN)
        signal.signal(signal.SIGINT, signal.SIG_IGN)
        bench.teardown()
    return status


if __name__ == "__main__":
    sys.exit(main())
