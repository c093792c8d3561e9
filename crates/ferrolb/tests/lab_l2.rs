//! Layer-2 mode end to end: three `ferrolb speaker` processes on the lab's layer-2 LAN
//! (`lab.sh up --l2`: bridge br1, the nodes' and the client's eth1, no router on it) run
//! examples/l2-homelab with one heartbeat key. The client's ARP requests for the shared VIP get
//! exactly one answer, from the owner's MAC; after the owner is SIGKILLed another node answers
//! within a second, and `ferrolb status l2` names it. Needs root; without namespaces the test
//! fails with the lab's message, it never skips.

#![allow(clippy::unwrap_used, clippy::expect_used)]

use std::collections::BTreeMap;
use std::fs::{self, File};
use std::io::{BufRead, BufReader};
use std::path::PathBuf;
use std::process::{Child, Stdio};
use std::sync::mpsc;
use std::time::{Duration, Instant};

use ferrolb_labtest::{Lab, LabSpec, RouterKind, wait_for};
use nix::sys::signal::{Signal, kill};
use nix::unistd::Pid;
use serde_json::Value;

const BIN: &str = env!("CARGO_BIN_EXE_ferrolb");
/// The address examples/l2-homelab gives both DNS Services.
const VIP: &str = "198.18.0.200";
const NODES: usize = 3;

fn repository() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("../..")
}

/// The lab with a speaker per node; speakers are killed by pid on drop, then the lab goes.
struct Segment {
    speakers: BTreeMap<usize, Child>,
    lab: Lab,
    /// The last arping's output, with milliseconds since it started.
    last_arping: std::sync::Mutex<Vec<String>>,
}

impl Drop for Segment {
    fn drop(&mut self) {
        for child in self.speakers.values_mut() {
            let _ = child.kill();
            let _ = child.wait();
        }
        if std::thread::panicking() {
            for i in 1..=NODES {
                let log = self.lab.logs_dir().join(format!("l2-speaker-n{i}.log"));
                eprintln!(
                    "--- n{i} speaker log ---\n{}",
                    fs::read_to_string(&log).unwrap_or_default()
                );
            }
        }
    }
}

impl Segment {
    fn up() -> Segment {
        Segment::up_with(&[], &[])
    }

    /// With `extra` arguments for every speaker, after running `setup` in every node.
    fn up_with(extra: &[&str], setup: &[&[&str]]) -> Segment {
        let lab = Lab::up(
            LabSpec::new(RouterKind::Frr)
                .with_nodes(NODES)
                .with_l2()
                .with_name_prefix("l2w"),
        )
        .unwrap_or_else(|e| panic!("{e}"));
        let dir = lab.state_dir().join("l2-config");
        fs::create_dir_all(&dir).unwrap();
        for file in ["ferrolb.yaml", "services.yaml"] {
            fs::copy(
                repository().join("examples/l2-homelab").join(file),
                dir.join(file),
            )
            .unwrap();
        }
        let key = lab.state_dir().join("l2.key");
        fs::write(&key, [0x5a; 32]).unwrap();
        fs::create_dir_all(lab.logs_dir()).unwrap();
        let mut speakers = BTreeMap::new();
        for i in 1..=NODES {
            for argv in setup {
                lab.exec_ok(&lab.node_ns(i), argv).unwrap();
            }
            let log = File::create(lab.logs_dir().join(format!("l2-speaker-n{i}.log"))).unwrap();
            let name = format!("n{i}");
            let mut argv = vec![
                BIN,
                "speaker",
                "--config-dir",
                dir.to_str().unwrap(),
                "--node-name",
                &name,
                "--l2-key-file",
                key.to_str().unwrap(),
                "--listen-port",
                "0",
            ];
            argv.extend_from_slice(extra);
            // `ip netns exec` execs the program, so the child's pid is the speaker's.
            let child = lab
                .command(&lab.node_ns(i), &argv)
                .env("NO_COLOR", "1")
                .env("RUST_LOG", "info")
                .stdin(Stdio::null())
                .stdout(log.try_clone().unwrap())
                .stderr(log)
                .spawn()
                .expect("ferrolb speaker starts");
            speakers.insert(i, child);
        }
        Segment {
            speakers,
            lab,
            last_arping: std::sync::Mutex::new(Vec::new()),
        }
    }

    /// `ferrolb status l2 -o json` against node `i`'s speaker.
    fn status(&self, i: usize) -> Result<Value, String> {
        let out = self
            .lab
            .exec(&self.lab.node_ns(i), &[BIN, "status", "l2", "-o", "json"])
            .map_err(|e| e.to_string())?;
        if !out.status.success() {
            return Err(String::from_utf8_lossy(&out.stderr).into_owned());
        }
        serde_json::from_slice(&out.stdout).map_err(|e| e.to_string())
    }

    /// The owner of the VIP's group as node `i` sees it.
    fn owner_seen_by(&self, i: usize) -> Result<String, String> {
        let status = self.status(i)?;
        let group = status["groups"]
            .as_array()
            .and_then(|g| g.iter().find(|g| g["key"] == VIP))
            .ok_or_else(|| format!("no group {VIP}: {status}"))?;
        match group["owner"].as_str() {
            Some(owner) if !owner.is_empty() => Ok(owner.to_string()),
            _ => Err(format!("no owner yet: {group}")),
        }
    }

    /// Waits until every node in `nodes` names the same owner; returns it.
    fn agreed_owner(&self, nodes: &[usize]) -> String {
        self.agreed_owner_other_than(nodes, "")
    }

    /// Waits until every node in `nodes` names the same owner, other than `previous`.
    fn agreed_owner_other_than(&self, nodes: &[usize], previous: &str) -> String {
        wait_for(Duration::from_secs(20), Duration::from_millis(100), || {
            let owners: Vec<Result<String, String>> =
                nodes.iter().map(|i| self.owner_seen_by(*i)).collect();
            match owners.first() {
                Some(Ok(first))
                    if first != previous && owners.iter().all(|o| o.as_ref() == Ok(first)) =>
                {
                    Ok(first.clone())
                }
                _ => Err(owners),
            }
        })
        .unwrap_or_else(|e| panic!("the nodes never agreed on an owner: {e}"))
    }

    fn mac(&self, i: usize) -> String {
        let out = self
            .lab
            .exec_ok(
                &self.lab.node_ns(i),
                &["ip", "-j", "link", "show", "dev", "eth1"],
            )
            .unwrap();
        let v: Value = serde_json::from_str(&out).unwrap();
        v[0]["address"].as_str().unwrap().to_lowercase()
    }

    /// ARP requests from the client, `count` of them `interval` apart; the MAC of every reply
    /// with when it arrived. Replies are read as arping prints them.
    fn arping(
        &self,
        count: u32,
        interval: Duration,
        during: impl FnMut(Instant),
    ) -> Vec<(Instant, String)> {
        self.arping_counted(count, interval, during).0
    }

    /// [`Segment::arping`], and arping's own count of requests sent and requests answered
    /// (replies beyond one per request, which arping calls "extra", are not counted).
    fn arping_counted(
        &self,
        count: u32,
        interval: Duration,
        mut during: impl FnMut(Instant),
    ) -> (Vec<(Instant, String)>, (u64, u64)) {
        let interval = format!("{:.3}", interval.as_secs_f64());
        let count = count.to_string();
        let mut child = self
            .lab
            .command(
                &self.lab.client_ns(),
                &[
                    "stdbuf", "-oL", "arping", "-i", "eth1", "-W", &interval, "-c", &count, VIP,
                ],
            )
            .stdin(Stdio::null())
            .stdout(Stdio::piped())
            .stderr(Stdio::null())
            .spawn()
            .expect("arping starts");
        let stdout = child.stdout.take().unwrap();
        let (tx, rx) = mpsc::channel();
        let reader = std::thread::spawn(move || {
            for line in BufReader::new(stdout).lines().map_while(Result::ok) {
                let _ = tx.send((Instant::now(), line));
            }
        });
        let started = Instant::now();
        during(started);
        let _ = child.wait();
        reader.join().unwrap();
        let lines: Vec<(Instant, String)> = rx.try_iter().collect();
        // Kept for the failure message of the caller's assertions.
        *self.last_arping.lock().unwrap() = lines
            .iter()
            .map(|(at, line)| format!("{:>5} ms  {line}", (*at - started).as_millis()))
            .collect();
        // "60 packets transmitted, 61 packets received,   0% unanswered (1 extra)"
        let totals = lines
            .iter()
            .find_map(|(_, line)| {
                let words: Vec<&str> = line.split_whitespace().collect();
                let sent = words.first()?.parse().ok()?;
                let received: u64 = words.get(3)?.parse().ok()?;
                let extra: u64 = words.get(8)?.trim_start_matches('(').parse().ok()?;
                (words.get(1) == Some(&"packets") && words.get(2) == Some(&"transmitted,"))
                    .then_some((sent, received - extra.min(received)))
            })
            .unwrap_or_else(|| panic!("no arping summary: {lines:?}"));
        let replies = lines
            .into_iter()
            .filter_map(|(at, line)| {
                // "60 bytes from 02:..:.. (198.18.0.200): index=3 time=1.2 msec"
                let rest = line.split(" bytes from ").nth(1)?;
                let mac = rest.split_whitespace().next()?;
                line.contains(&format!("({VIP})"))
                    .then(|| (at, mac.to_lowercase()))
            })
            .collect();
        (replies, totals)
    }
}

#[test]
fn one_node_answers_and_a_survivor_takes_over_within_a_second_of_a_sigkill() {
    let mut segment = Segment::up();
    let owner = segment.agreed_owner(&[1, 2, 3]);
    let owner_index: usize = owner.trim_start_matches('n').parse().unwrap();
    let owner_mac = segment.mac(owner_index);

    // Exactly one answer per request, all from the owner.
    let replies = segment.arping(5, Duration::from_millis(100), |_| {});
    let macs: Vec<&str> = replies.iter().map(|(_, m)| m.as_str()).collect();
    assert_eq!(macs, vec![owner_mac.as_str(); 5], "owner {owner}");

    // Requests every 20 ms; the owner is SIGKILLed (no drain) 0.5 s in.
    let mut killed_at = None;
    let speakers = &segment.speakers;
    let owner_pid = i32::try_from(speakers[&owner_index].id()).unwrap();
    let replies = segment.arping(150, Duration::from_millis(20), |started| {
        std::thread::sleep(Duration::from_millis(500).saturating_sub(started.elapsed()));
        kill(Pid::from_raw(owner_pid), Signal::SIGKILL).unwrap();
        killed_at = Some(Instant::now());
    });
    let killed_at = killed_at.unwrap();
    let first_new = replies
        .iter()
        .find(|(at, mac)| *at > killed_at && *mac != owner_mac)
        .unwrap_or_else(|| panic!("nobody took over: {replies:?}"));
    let last_old = replies
        .iter()
        .filter(|(_, mac)| *mac == owner_mac)
        .map(|(at, _)| *at)
        .max()
        .unwrap();
    let after_kill = first_new.0 - killed_at;
    let gap = first_new.0.saturating_duration_since(last_old);
    eprintln!(
        "failover: first reply from the new owner {} ms after the SIGKILL; the client's longest \
         gap {} ms",
        after_kill.as_millis(),
        gap.as_millis()
    );
    assert!(
        after_kill < Duration::from_secs(1),
        "the client's requests went unanswered for {after_kill:?} after the kill"
    );
    // Every reply after the takeover comes from one MAC: the new owner's.
    let after: Vec<&String> = replies
        .iter()
        .filter(|(at, _)| *at >= first_new.0)
        .map(|(_, m)| m)
        .collect();
    assert!(after.iter().all(|m| **m == first_new.1), "{after:?}");

    let mut survivors: Vec<usize> = (1..=NODES).filter(|i| *i != owner_index).collect();
    let _ = segment.speakers.remove(&owner_index).map(|mut c| c.wait());
    let new_owner = segment.agreed_owner(&survivors);
    assert_ne!(new_owner, owner);
    let new_index: usize = new_owner.trim_start_matches('n').parse().unwrap();
    assert_eq!(segment.mac(new_index), first_new.1);
    let status = segment.status(new_index).unwrap();
    let group = status["groups"]
        .as_array()
        .unwrap()
        .iter()
        .find(|g| g["key"] == VIP)
        .unwrap();
    assert_eq!(group["owned_here"], true);
    assert_eq!(group["reason"], format!("TookOverFromDead({owner})"));
    assert_eq!(
        group["services"],
        serde_json::json!(["home/dns-tcp", "home/dns-udp"])
    );
    // The table names the owner too.
    survivors.retain(|i| *i == new_index);
    let table = segment
        .lab
        .exec_ok(&segment.lab.node_ns(survivors[0]), &[BIN, "status", "l2"])
        .unwrap();
    assert!(
        table.contains(&format!("{VIP}  {new_owner} (here)")),
        "{table}"
    );
}

#[test]
fn a_sigterm_hands_the_vip_to_another_node_without_losing_a_request() {
    let mut segment = Segment::up();
    let owner = segment.agreed_owner(&[1, 2, 3]);
    let owner_index: usize = owner.trim_start_matches('n').parse().unwrap();
    let owner_mac = segment.mac(owner_index);
    let owner_pid = i32::try_from(segment.speakers[&owner_index].id()).unwrap();
    let mut term_at = None;
    let (replies, (sent, answered)) =
        segment.arping_counted(60, Duration::from_millis(20), |started| {
            std::thread::sleep(Duration::from_millis(400).saturating_sub(started.elapsed()));
            kill(Pid::from_raw(owner_pid), Signal::SIGTERM).unwrap();
            term_at = Some(started.elapsed().as_millis());
        });
    assert_eq!(sent, 60);
    // No request goes unanswered. (One may be answered twice: the old owner answers until it
    // sees its successor's claim, and a request that crosses that frame gets both answers.)
    assert_eq!(
        answered,
        60,
        "requests went unanswered during the drain (SIGTERM at {} ms):\n{}",
        term_at.unwrap_or_default(),
        segment.last_arping.lock().unwrap().join("\n")
    );
    let macs: Vec<&String> = replies.iter().map(|(_, m)| m).collect();
    let first_other = macs
        .iter()
        .position(|m| **m != owner_mac)
        .unwrap_or_else(|| panic!("the VIP never moved: {macs:?}"));
    assert!(first_other > 0, "the owner answered first");
    assert!(
        macs[first_other..].iter().all(|m| *m == macs[first_other]),
        "one new owner, never back: {macs:?}"
    );
    let mut old = segment.speakers.remove(&owner_index).unwrap();
    let exit = wait_for(Duration::from_secs(20), Duration::from_millis(50), || {
        old.try_wait().unwrap()
    })
    .unwrap_or_else(|e| panic!("the drained speaker did not exit: {e}"));
    assert!(exit.success(), "{exit:?}");
    let survivors: Vec<usize> = (1..=NODES).filter(|i| *i != owner_index).collect();
    let new_owner = segment.agreed_owner(&survivors);
    let new_index: usize = new_owner.trim_start_matches('n').parse().unwrap();
    assert_eq!(&segment.mac(new_index), macs[first_other]);
    let status = segment.status(new_index).unwrap();
    let group = status["groups"]
        .as_array()
        .unwrap()
        .iter()
        .find(|g| g["key"] == VIP)
        .unwrap();
    assert_eq!(group["reason"], format!("Drained({owner})"));
}

/// A carrier loss (the switch port goes down, the node's eth1 stays administratively up)
/// reaches the owner's announcer through a netlink link event: it reports itself ineligible
/// for the group on that interface, and another node answers the client.
#[test]
fn a_carrier_loss_makes_the_owner_ineligible_and_another_node_answers() {
    let segment = Segment::up();
    let owner = segment.agreed_owner(&[1, 2, 3]);
    let owner_index: usize = owner.trim_start_matches('n').parse().unwrap();
    let owner_mac = segment.mac(owner_index);
    segment
        .lab
        .exec_ok(
            &segment.lab.switch_ns(),
            &[
                "ip",
                "link",
                "set",
                "dev",
                &format!("l2n{owner_index}"),
                "down",
            ],
        )
        .unwrap();
    let why = wait_for(Duration::from_secs(10), Duration::from_millis(50), || {
        let status = segment.status(owner_index)?;
        let group = status["groups"]
            .as_array()
            .and_then(|g| g.iter().find(|g| g["key"] == VIP))
            .cloned()
            .ok_or_else(|| format!("no group: {status}"))?;
        let mine = group["not_owner"]
            .as_array()
            .and_then(|n| n.iter().find(|n| n["node"] == owner.as_str()))
            .map(|n| n["reason"].as_str().unwrap_or_default().to_string());
        match mine {
            Some(reason) if reason.starts_with("NotEligible") => Ok(reason),
            _ => Err(format!("{group}")),
        }
    })
    .unwrap_or_else(|e| panic!("the old owner never said it is ineligible: {e}"));
    assert_eq!(why, "NotEligible(CarrierDown(eth1))");
    let survivors: Vec<usize> = (1..=NODES).filter(|i| *i != owner_index).collect();
    let new_owner = segment.agreed_owner_other_than(&survivors, &owner);
    let new_index: usize = new_owner.trim_start_matches('n').parse().unwrap();
    let replies = segment.arping(3, Duration::from_millis(100), |_| {});
    let macs: Vec<&str> = replies.iter().map(|(_, m)| m.as_str()).collect();
    let new_mac = segment.mac(new_index);
    assert_eq!(macs, vec![new_mac.as_str(); 3]);
    assert_ne!(new_mac, owner_mac);
}

/// `--bind-vips lo` with `arp_ignore=1`: every node puts the VIP on lo (so the owner accepts
/// the traffic), the kernel answers no ARP for it (the client still hears exactly one MAC, the
/// owner's), and the client's pings to the VIP are answered.
#[test]
fn bound_vips_are_served_by_the_owner_and_never_answered_by_the_kernel() {
    let segment = Segment::up_with(
        &["--bind-vips", "lo"],
        &[&["sysctl", "-q", "-w", "net.ipv4.conf.all.arp_ignore=1"]],
    );
    let owner = segment.agreed_owner(&[1, 2, 3]);
    let owner_index: usize = owner.trim_start_matches('n').parse().unwrap();
    for i in 1..=NODES {
        wait_for(Duration::from_secs(10), Duration::from_millis(50), || {
            let out = segment
                .lab
                .exec_ok(
                    &segment.lab.node_ns(i),
                    &["ip", "-4", "addr", "show", "dev", "lo"],
                )
                .unwrap();
            if out.contains(&format!("{VIP}/32")) {
                Ok(())
            } else {
                Err(out)
            }
        })
        .unwrap_or_else(|e| panic!("n{i} never bound {VIP} on lo: {e}"));
    }
    let replies = segment.arping(5, Duration::from_millis(100), |_| {});
    let macs: Vec<&str> = replies.iter().map(|(_, m)| m.as_str()).collect();
    let owner_mac = segment.mac(owner_index);
    assert_eq!(macs, vec![owner_mac.as_str(); 5], "owner {owner}");
    let ping = segment
        .lab
        .exec(
            &segment.lab.client_ns(),
            &["ping", "-c", "3", "-i", "0.2", "-W", "2", VIP],
        )
        .unwrap();
    assert!(
        ping.status.success(),
        "{}",
        String::from_utf8_lossy(&ping.stdout)
    );
    let status = segment.status(owner_index).unwrap();
    assert_eq!(status["bind_refused"], "", "{status}");
}

/// `--bind-vips lo` with the kernel default `arp_ignore=0`: binding the VIP would make every
/// node's kernel answer ARP for it, so it is not bound and the status says why; the client
/// still hears only the owner.
#[test]
fn vips_are_not_bound_where_the_kernel_would_answer_arp_and_the_status_says_why() {
    let segment = Segment::up_with(
        &["--bind-vips", "lo"],
        &[&["sysctl", "-q", "-w", "net.ipv4.conf.all.arp_ignore=0"]],
    );
    let owner = segment.agreed_owner(&[1, 2, 3]);
    let owner_index: usize = owner.trim_start_matches('n').parse().unwrap();
    let status = segment.status(owner_index).unwrap();
    let why = status["bind_refused"].as_str().unwrap().to_string();
    assert!(why.contains("arp_ignore is 0"), "{status}");
    for i in 1..=NODES {
        let out = segment
            .lab
            .exec_ok(
                &segment.lab.node_ns(i),
                &["ip", "-4", "addr", "show", "dev", "lo"],
            )
            .unwrap();
        assert!(!out.contains(VIP), "n{i} bound {VIP}: {out}");
    }
    let replies = segment.arping(5, Duration::from_millis(100), |_| {});
    let macs: Vec<&str> = replies.iter().map(|(_, m)| m.as_str()).collect();
    let owner_mac = segment.mac(owner_index);
    assert_eq!(macs, vec![owner_mac.as_str(); 5], "owner {owner}");
}
