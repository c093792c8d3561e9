//! Real packets between network namespaces: an announcer answers `arping` and `ndisc6` from a
//! client, answers a unicast (NUD) solicitation, and two announcers on a bridge fail over.
//!
//! Needs root (namespaces, AF_PACKET). Namespaces are named `l2t-<pid>-<n><role>` and removed
//! by a guard even when a test fails.

#![allow(clippy::unwrap_used, clippy::expect_used)]

use std::net::{IpAddr, Ipv6Addr};
use std::process::Command;
use std::sync::atomic::{AtomicU32, Ordering};
use std::sync::mpsc as std_mpsc;
use std::thread::JoinHandle;
use std::time::{Duration, Instant};

use ferrolb_l2::socket::PacketSocket;
use ferrolb_l2::wire::{
    Frame, MacAddr, NdpMessage, NdpPacket, NeighborSolicit, decode_frame, ndp_frame, solicited_node,
};
use ferrolb_l2::{DrainReport, InterfaceFacts, L2Announcer, L2Config, L2Status, VipGroup};
use tokio::sync::{oneshot, watch};

const KEY: &[u8] = b"lab heartbeat key, thirty-two b!";
static COUNTER: AtomicU32 = AtomicU32::new(0);

fn require_root() {
    let euid = nix::unistd::geteuid().as_raw();
    assert_eq!(
        euid, 0,
        "these tests create network namespaces and AF_PACKET sockets: run them as root"
    );
}

fn run(args: &[&str]) -> String {
    let out = Command::new(args[0])
        .args(&args[1..])
        .output()
        .unwrap_or_else(|e| panic!("{args:?}: {e}"));
    assert!(
        out.status.success(),
        "{args:?} failed: {}{}",
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
    String::from_utf8_lossy(&out.stdout).into_owned()
}

fn in_ns(ns: &str, args: &[&str]) -> String {
    let mut all = vec!["ip", "netns", "exec", ns];
    all.extend_from_slice(args);
    run(&all)
}

/// Namespaces removed on drop.
struct Lab {
    prefix: String,
    namespaces: Vec<String>,
}

impl Lab {
    fn new() -> Lab {
        require_root();
        let n = COUNTER.fetch_add(1, Ordering::Relaxed);
        Lab {
            prefix: format!("l2t-{}-{n}", std::process::id() % 100_000),
            namespaces: Vec::new(),
        }
    }

    fn ns(&mut self, role: &str) -> String {
        let name = format!("{}{role}", self.prefix);
        assert!(name.len() <= 15, "{name}");
        run(&["ip", "netns", "add", &name]);
        self.namespaces.push(name.clone());
        in_ns(&name, &["ip", "link", "set", "lo", "up"]);
        name
    }
}

impl Drop for Lab {
    fn drop(&mut self) {
        for ns in &self.namespaces {
            let _ = Command::new("ip").args(["netns", "del", ns]).status();
        }
    }
}

fn facts(ns: &str, name: &str, subnets: &[&str]) -> InterfaceFacts {
    let ifindex = in_ns(ns, &["cat", &format!("/sys/class/net/{name}/ifindex")]);
    let mac = in_ns(ns, &["cat", &format!("/sys/class/net/{name}/address")]);
    InterfaceFacts {
        name: name.to_string(),
        ifindex: ifindex.trim().parse().unwrap(),
        mac: mac.trim().parse().unwrap(),
        carrier_up: true,
        subnets: subnets.iter().map(|s| s.parse().unwrap()).collect(),
    }
}

/// An announcer running on its own thread inside a namespace; dropping `stop` ends it like a
/// crash (no drain).
struct Running {
    status: watch::Receiver<L2Status>,
    drain: tokio::sync::mpsc::UnboundedSender<(Duration, std_mpsc::Sender<DrainReport>)>,
    stop: Option<oneshot::Sender<()>>,
    thread: Option<JoinHandle<Result<(), ferrolb_labtest::LabError>>>,
}

impl Running {
    fn start(ns: &str, node_id: &str, interface: InterfaceFacts, groups: Vec<VipGroup>) -> Running {
        let (status_tx, status_rx) = std_mpsc::channel();
        let (stop, mut stopped) = oneshot::channel::<()>();
        let (drain, mut drains) =
            tokio::sync::mpsc::unbounded_channel::<(Duration, std_mpsc::Sender<DrainReport>)>();
        let node_id = node_id.to_string();
        let thread = ferrolb_labtest::spawn_in_netns(ns, move || {
            let rt = tokio::runtime::Builder::new_current_thread()
                .enable_all()
                .build()
                .unwrap();
            rt.block_on(async move {
                let announcer = L2Announcer::start(L2Config::new(node_id, "lab", KEY.to_vec()))
                    .await
                    .unwrap();
                announcer.set_interfaces(vec![interface]).await.unwrap();
                announcer.set_eligible(groups).await.unwrap();
                status_tx.send(announcer.status()).unwrap();
                loop {
                    tokio::select! {
                        _ = &mut stopped => break,
                        Some((timeout, reply)) = drains.recv() => {
                            let _ = reply.send(announcer.drain(timeout).await.unwrap());
                        }
                    }
                }
                // Dropped, not shut down: the task dies with the runtime, like SIGKILL.
                drop(announcer);
            });
        });
        let status = status_rx
            .recv_timeout(Duration::from_secs(10))
            .expect("announcer started");
        Running {
            status,
            drain,
            stop: Some(stop),
            thread: Some(thread),
        }
    }

    fn wait_for(&self, what: &str, timeout: Duration, f: impl Fn(&L2Status) -> bool) {
        let start = Instant::now();
        while start.elapsed() < timeout {
            if f(&self.status.borrow()) {
                return;
            }
            std::thread::sleep(Duration::from_millis(5));
        }
        panic!(
            "{what}: not within {timeout:?}: {:#?}",
            *self.status.borrow()
        );
    }

    fn kill(&mut self) {
        if let Some(stop) = self.stop.take() {
            let _ = stop.send(());
        }
        if let Some(thread) = self.thread.take() {
            thread.join().unwrap().unwrap();
        }
    }
}

impl Drop for Running {
    fn drop(&mut self) {
        self.kill();
    }
}

fn veth(a_ns: &str, a: &str, b_ns: &str, b: &str) {
    run(&[
        "ip", "link", "add", a, "netns", a_ns, "type", "veth", "peer", "name", b, "netns", b_ns,
    ]);
    in_ns(a_ns, &["ip", "link", "set", a, "up"]);
    in_ns(b_ns, &["ip", "link", "set", b, "up"]);
}

fn addr(ns: &str, dev: &str, cidr: &str) {
    if cidr.contains(':') {
        in_ns(ns, &["ip", "addr", "add", cidr, "dev", dev, "nodad"]);
    } else {
        in_ns(ns, &["ip", "addr", "add", cidr, "dev", dev]);
    }
}

/// Sends a unicast NS from inside `ns` and returns the NAs received within a second.
fn unicast_solicit(
    ns: &str,
    interface: InterfaceFacts,
    owner: MacAddr,
    src: Ipv6Addr,
    target: Ipv6Addr,
    with_slla: bool,
) -> Vec<(MacAddr, NdpPacket)> {
    let handle = ferrolb_labtest::spawn_in_netns(ns, move || {
        let rt = tokio::runtime::Builder::new_current_thread()
            .enable_all()
            .build()
            .unwrap();
        rt.block_on(async move {
            let socket = PacketSocket::open(interface.ifindex).unwrap();
            let ns = NdpPacket {
                src,
                dst: target,
                message: NdpMessage::Solicit(NeighborSolicit {
                    target,
                    source_lla: with_slla.then_some(interface.mac),
                }),
            };
            socket
                .try_send(&ndp_frame(owner, interface.mac, &ns))
                .unwrap();
            let mut adverts = Vec::new();
            let deadline = tokio::time::Instant::now() + Duration::from_secs(1);
            let mut buf = vec![0u8; 2048];
            while let Ok(Ok(len)) = tokio::time::timeout_at(deadline, socket.recv(&mut buf)).await {
                if let Ok(Frame::Ndp(eth, packet)) = decode_frame(&buf[..len])
                    && matches!(packet.message, NdpMessage::Advert(_))
                {
                    adverts.push((eth.src, packet));
                }
            }
            adverts
        })
    });
    handle.join().unwrap().unwrap()
}

#[test]
fn a_client_gets_exactly_one_answer_from_the_owner_for_arp_ndp_and_unicast_ns() {
    let mut lab = Lab::new();
    let node = lab.ns("a");
    let client = lab.ns("c");
    veth(&node, "eth0", &client, "eth0");
    addr(&node, "eth0", "198.51.100.2/24");
    addr(&node, "eth0", "2001:db8::2/64");
    addr(&client, "eth0", "198.51.100.3/24");
    addr(&client, "eth0", "2001:db8::3/64");
    let subnets = ["198.51.100.0/24", "2001:db8::/64"];
    let node_if = facts(&node, "eth0", &subnets);
    let client_if = facts(&client, "eth0", &subnets);
    let v4: IpAddr = "198.51.100.10".parse().unwrap();
    let v6: Ipv6Addr = "2001:db8::10".parse().unwrap();
    let group = VipGroup::new([v4, IpAddr::V6(v6)], "eth0").unwrap();
    let key = group.key;
    let running = Running::start(&node, "node-a", node_if.clone(), vec![group]);
    running.wait_for("owning the group", Duration::from_secs(5), |s| {
        s.owned().contains(&key)
    });
    let mac = node_if.mac;
    // Let the announcement burst (0 ms … 4 s) finish, so that every frame the client sees
    // from now on is an answer to its own question.
    running.wait_for("burst over", Duration::from_secs(8), |s| {
        s.counters.unsolicited_adverts_sent == 6
    });

    let arping = in_ns(
        &client,
        &["arping", "-c", "3", "-i", "eth0", "198.51.100.10"],
    );
    let replies: Vec<&str> = arping
        .lines()
        .filter(|l| l.contains("bytes from"))
        .collect();
    assert_eq!(replies.len(), 3, "{arping}");
    for line in &replies {
        assert!(
            line.contains(&format!("from {mac} (198.51.100.10)")),
            "{line}"
        );
    }

    let ndisc = in_ns(
        &client,
        &["ndisc6", "-m", "-n", "-w", "1000", "2001:db8::10", "eth0"],
    );
    let answers: Vec<&str> = ndisc
        .lines()
        .filter(|l| l.contains("Target link-layer address"))
        .collect();
    assert_eq!(answers.len(), 1, "{ndisc}");
    assert!(
        answers[0].to_lowercase().contains(&mac.to_string()),
        "{ndisc}"
    );

    for with_slla in [true, false] {
        let adverts = unicast_solicit(
            &client,
            client_if.clone(),
            mac,
            "2001:db8::3".parse().unwrap(),
            v6,
            with_slla,
        );
        assert_eq!(adverts.len(), 1, "with SLLA {with_slla}: {adverts:?}");
        let (src_mac, packet) = &adverts[0];
        assert_eq!(*src_mac, mac);
        assert_eq!(packet.src, v6, "sourced from the VIP");
        assert_eq!(packet.dst, "2001:db8::3".parse::<Ipv6Addr>().unwrap());
        let NdpMessage::Advert(na) = packet.message else {
            unreachable!()
        };
        assert!(na.solicited && na.override_flag && !na.router, "{na:?}");
        assert_eq!(na.target_lla, Some(mac));
    }

    let status = running.status.borrow().clone();
    assert!(status.requests_answered[&v4] >= 3, "{status:#?}");
    assert!(
        status.requests_answered[&IpAddr::V6(v6)] >= 3,
        "{status:#?}"
    );
    assert!(status.counters.gratuitous_arps_sent >= 2);
    assert_eq!(status.claim_to_first_announce.count, 1);
    assert!(status.conflicts.is_empty(), "{:?}", status.conflicts);
    // The solicited-node group was joined: the kernel lists it.
    let maddr = in_ns(&node, &["ip", "-6", "maddr", "show", "dev", "eth0"]);
    assert!(maddr.contains(&solicited_node(v6).to_string()), "{maddr}");
}

#[test]
fn a_foreign_responder_is_reported_as_a_conflict() {
    let mut lab = Lab::new();
    let node = lab.ns("a");
    let client = lab.ns("c");
    veth(&node, "eth0", &client, "eth0");
    addr(&node, "eth0", "198.51.100.2/24");
    let node_if = facts(&node, "eth0", &["198.51.100.0/24"]);
    let client_if = facts(&client, "eth0", &["198.51.100.0/24"]);
    let group = VipGroup::new(["198.51.100.20".parse().unwrap()], "eth0").unwrap();
    let key = group.key;
    let running = Running::start(&node, "node-a", node_if, vec![group]);
    running.wait_for("owning", Duration::from_secs(5), |s| {
        s.owned().contains(&key)
    });
    // The client configures the VIP itself and announces it (as a misconfigured host would).
    addr(&client, "eth0", "198.51.100.20/24");
    // Unanswered by design (arping then exits 1), so only the frames matter.
    let _ = Command::new("ip")
        .args([
            "netns", "exec", &client, "arping", "-U", "-c", "2", "-i", "eth0",
        ])
        .args(["-S", "198.51.100.20", "198.51.100.20"])
        .output();
    running.wait_for("conflict seen", Duration::from_secs(3), |s| {
        s.conflicts
            .iter()
            .any(|c| c.vip == key && c.mac == client_if.mac && c.count >= 1)
    });
}

#[test]
fn two_announcers_on_a_bridge_fail_over_when_the_owner_dies() {
    let mut lab = Lab::new();
    let n1 = lab.ns("n1");
    let n2 = lab.ns("n2");
    let client = lab.ns("c");
    in_ns(&client, &["ip", "link", "add", "br0", "type", "bridge"]);
    in_ns(&client, &["ip", "link", "set", "br0", "up"]);
    for (ns, port, ip, ip6) in [
        (&n1, "p1", "198.51.100.11/24", "2001:db8::11/64"),
        (&n2, "p2", "198.51.100.12/24", "2001:db8::12/64"),
    ] {
        veth(ns, "eth0", &client, port);
        in_ns(&client, &["ip", "link", "set", port, "master", "br0"]);
        addr(ns, "eth0", ip);
        addr(ns, "eth0", ip6);
    }
    addr(&client, "br0", "198.51.100.3/24");
    addr(&client, "br0", "2001:db8::3/64");
    let subnets = ["198.51.100.0/24", "2001:db8::/64"];
    let groups: Vec<VipGroup> = (0..4)
        .map(|i| {
            VipGroup::new(
                [
                    format!("198.51.100.{}", 20 + i).parse().unwrap(),
                    format!("2001:db8::{:x}", 0x20 + i).parse().unwrap(),
                ],
                "eth0",
            )
            .unwrap()
        })
        .collect();
    let f1 = facts(&n1, "eth0", &subnets);
    let f2 = facts(&n2, "eth0", &subnets);
    let mut a1 = Running::start(&n1, "node-1", f1.clone(), groups.clone());
    let a2 = Running::start(&n2, "node-2", f2.clone(), groups.clone());
    let all = |s: &L2Status| {
        groups
            .iter()
            .all(|g| s.groups.get(&g.key).is_some_and(|st| st.owner.is_some()))
    };
    a1.wait_for("all owned", Duration::from_secs(5), all);
    a2.wait_for("all owned", Duration::from_secs(5), all);
    let owned_by_1 = a1.status.borrow().owned();
    let owned_by_2 = a2.status.borrow().owned();
    assert!(owned_by_1.is_disjoint(&owned_by_2));
    assert_eq!(owned_by_1.len() + owned_by_2.len(), 4);
    assert_eq!(owned_by_1.len(), 2, "balanced 2/2");

    // The client learns node-1's MAC for one of its VIPs (both families).
    let victim = *owned_by_1.first().unwrap();
    let group = groups.iter().find(|g| g.key == victim).unwrap();
    let v4 = group
        .addresses
        .iter()
        .find(|a| a.is_ipv4())
        .unwrap()
        .to_string();
    let v6 = group
        .addresses
        .iter()
        .find(|a| a.is_ipv6())
        .unwrap()
        .to_string();
    let _ = Command::new("ip")
        .args(["netns", "exec", &client, "ping", "-c", "1", "-W", "1", &v4])
        .output();
    let _ = Command::new("ip")
        .args([
            "netns", "exec", &client, "ping", "-6", "-c", "1", "-W", "1", &v6,
        ])
        .output();
    let neigh = in_ns(&client, &["ip", "neigh", "show", &v4]);
    assert!(neigh.contains(&f1.mac.to_string()), "{neigh}");

    let killed = Instant::now();
    a1.kill();
    a2.wait_for("taken over", Duration::from_secs(3), |s| {
        s.owned().contains(&victim)
    });
    let gap = killed.elapsed();
    let status = a2.status.borrow().clone();
    println!(
        "failover: owner killed → survivor owns {victim} after {gap:?} (last beat → claim samples {:?})",
        status.last_beat_to_claim.recent
    );
    assert_eq!(status.owned().len(), 4);

    // The client's caches move to the survivor through the gratuitous ARP / unsolicited NA.
    let start = Instant::now();
    loop {
        let n4 = in_ns(&client, &["ip", "neigh", "show", &v4]);
        let n6 = in_ns(&client, &["ip", "-6", "neigh", "show", &v6]);
        if n4.contains(&f2.mac.to_string()) && n6.contains(&f2.mac.to_string()) {
            println!(
                "client caches updated {:?} after the kill",
                killed.elapsed()
            );
            break;
        }
        assert!(
            start.elapsed() < Duration::from_secs(3),
            "client caches not updated: {n4} / {n6}"
        );
        std::thread::sleep(Duration::from_millis(10));
    }
    let arping = in_ns(&client, &["arping", "-c", "1", "-i", "br0", &v4]);
    assert!(arping.contains(&f2.mac.to_string()), "{arping}");
}

#[test]
fn draining_the_owner_loses_no_arp_request() {
    let mut lab = Lab::new();
    let n1 = lab.ns("n1");
    let n2 = lab.ns("n2");
    let client = lab.ns("c");
    in_ns(&client, &["ip", "link", "add", "br0", "type", "bridge"]);
    in_ns(&client, &["ip", "link", "set", "br0", "up"]);
    for (ns, port, ip) in [
        (&n1, "p1", "198.51.100.11/24"),
        (&n2, "p2", "198.51.100.12/24"),
    ] {
        veth(ns, "eth0", &client, port);
        in_ns(&client, &["ip", "link", "set", port, "master", "br0"]);
        addr(ns, "eth0", ip);
    }
    addr(&client, "br0", "198.51.100.3/24");
    let subnets = ["198.51.100.0/24"];
    let groups: Vec<VipGroup> = (0..4)
        .map(|i| {
            VipGroup::new([format!("198.51.100.{}", 20 + i).parse().unwrap()], "eth0").unwrap()
        })
        .collect();
    let f1 = facts(&n1, "eth0", &subnets);
    let f2 = facts(&n2, "eth0", &subnets);
    let a1 = Running::start(&n1, "node-1", f1.clone(), groups.clone());
    let a2 = Running::start(&n2, "node-2", f2.clone(), groups.clone());
    let all = |s: &L2Status| {
        groups
            .iter()
            .all(|g| s.groups.get(&g.key).is_some_and(|st| st.owner.is_some()))
    };
    a1.wait_for("all owned", Duration::from_secs(5), all);
    a2.wait_for("all owned", Duration::from_secs(5), all);
    let victim = *a1.status.borrow().owned().first().unwrap();
    // 40 requests, 50 ms apart, while node-1 drains in the middle.
    let pinger = {
        let client = client.clone();
        let vip = victim.to_string();
        std::thread::spawn(move || {
            Command::new("ip")
                .args([
                    "netns", "exec", &client, "arping", "-c", "40", "-W", "0.05", "-i", "br0", &vip,
                ])
                .output()
                .unwrap()
        })
    };
    std::thread::sleep(Duration::from_millis(800));
    let (tx, rx) = std_mpsc::channel();
    a1.drain.send((Duration::from_secs(3), tx)).unwrap();
    let report = rx.recv_timeout(Duration::from_secs(5)).unwrap();
    println!("drain: {report:?}");
    assert_eq!(report.handed_over, report.owned_at_start);
    assert_eq!(report.released, 0);
    let out = pinger.join().unwrap();
    let text = String::from_utf8_lossy(&out.stdout);
    let from1 = text
        .lines()
        .filter(|l| l.contains(&format!("from {}", f1.mac)))
        .count();
    let from2 = text
        .lines()
        .filter(|l| l.contains(&format!("from {}", f2.mac)))
        .count();
    println!("arping during drain: {from1} answers from node-1, {from2} from node-2");
    assert_eq!(from1 + from2, 40, "{text}");
    assert!(
        from1 > 0 && from2 > 0,
        "the drain happened during the pings: {text}"
    );
    assert!(a2.status.borrow().owned().contains(&victim));
}
