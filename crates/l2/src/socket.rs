//! The only code that touches the kernel: one AF_PACKET socket per announce interface, with a
//! classic BPF filter so the kernel hands us only what the announcer reads, and the IPv6
//! solicited-node multicast memberships of owned VIPs.
//!
//! The filter accepts, for frames not sent by this host: every ARP frame (requests to answer,
//! replies and gratuitous ARPs to detect conflicts), IPv6 packets whose next header is ICMPv6
//! with type 135 or 136 (NS to answer, NA to detect conflicts), and heartbeat frames
//! (EtherType 0x88B5). It is the output of
//! `tcpdump -dd 'inbound and (arp or (ip6 and ip6[6] = 58 and (ip6[40] = 135 or ip6[40] = 136)) or ether proto 0x88b5)'`
//! and a unit test compares the two when tcpdump is installed.
//!
//! An AF_PACKET socket sees NS sent by unicast to the VIP (neighbour unreachability
//! detection), which the kernel's own NDP and any ICMPv6 socket drop because the VIP is not a
//! local address. Joining ff02::1:ffXX:XXXX with IPV6_JOIN_GROUP makes the NIC accept the
//! multicast MAC 33:33:ffXX:XXXX and sends MLD reports so snooping switches forward the
//! group to us.

use std::collections::BTreeMap;
use std::io::{self, Read};
use std::net::Ipv6Addr;

use socket2::{Domain, Protocol, SockAddr, SockAddrStorage, SockFilter, Socket, Type};
use tokio::io::unix::AsyncFd;

/// `tcpdump -dd` of the filter above: (code, jt, jf, k).
pub const FILTER: [(u16, u8, u8, u32); 13] = [
    (0x28, 0, 0, 0xfffff004),  // ldh [pkttype] (SKF_AD_OFF + SKF_AD_PKTTYPE)
    (0x15, 10, 0, 0x00000004), // jeq PACKET_OUTGOING → drop
    (0x28, 0, 0, 0x0000000c),  // ldh [12] EtherType
    (0x15, 7, 0, 0x00000806),  // ARP → accept
    (0x15, 0, 5, 0x000086dd),  // IPv6?
    (0x30, 0, 0, 0x00000014),  // ldb [20] next header
    (0x15, 0, 5, 0x0000003a),  // ICMPv6?
    (0x30, 0, 0, 0x00000036),  // ldb [54] ICMPv6 type
    (0x15, 2, 0, 0x00000087),  // 135 NS → accept
    (0x15, 1, 2, 0x00000088),  // 136 NA → accept
    (0x15, 0, 1, 0x000088b5),  // heartbeat → accept
    (0x06, 0, 0, 0x00040000),  // accept (snap 256 KiB)
    (0x06, 0, 0, 0x00000000),  // drop
];

const ETH_P_ALL: u16 = 0x0003;

/// A non-blocking AF_PACKET socket bound to one interface, filtered as above.
#[derive(Debug)]
pub struct PacketSocket {
    fd: AsyncFd<Socket>,
    ifindex: u32,
}

impl PacketSocket {
    /// Opens the socket on interface `ifindex`. Needs CAP_NET_RAW.
    pub fn open(ifindex: u32) -> io::Result<PacketSocket> {
        // Protocol 0: the socket receives nothing until it is bound, so no unfiltered frame
        // can slip in between creating it and attaching the filter.
        let socket = Socket::new(Domain::PACKET, Type::RAW, Some(Protocol::from(0)))?;
        let program: Vec<SockFilter> = FILTER
            .iter()
            .map(|&(code, jt, jf, k)| SockFilter::new(code, jt, jf, k))
            .collect();
        socket.attach_filter(&program)?;
        socket.set_nonblocking(true)?;
        socket.set_recv_buffer_size(1 << 20)?;
        socket.bind(&packet_address(ifindex)?)?;
        // SAFETY: `socket2::Socket` owns its descriptor, which stays open and the same until
        // the socket is dropped, and the `AsyncFd` owns the socket for its whole life.
        #[allow(unsafe_code)]
        let fd = unsafe { AsyncFd::register(socket) }.map_err(io::Error::from)?;
        Ok(PacketSocket { fd, ifindex })
    }

    pub fn ifindex(&self) -> u32 {
        self.ifindex
    }

    /// Waits for the next frame and copies it into `buf`; returns its length.
    pub async fn recv(&self, buf: &mut [u8]) -> io::Result<usize> {
        loop {
            let mut guard = self.fd.readable().await?;
            match guard.try_io(|inner| inner.get_ref().read(buf)) {
                Ok(result) => return result,
                Err(_would_block) => continue,
            }
        }
    }

    /// Sends one complete Ethernet frame now, or fails with `WouldBlock` when the socket's
    /// buffer is full (the caller counts it; a reply that late is useless anyway).
    pub fn try_send(&self, frame: &[u8]) -> io::Result<()> {
        let sent = self.fd.get_ref().send(frame)?;
        if sent != frame.len() {
            return Err(io::Error::other(format!(
                "short send: {sent} of {} octets",
                frame.len()
            )));
        }
        Ok(())
    }
}

/// A `sockaddr_ll` for binding to `ifindex` with every protocol.
fn packet_address(ifindex: u32) -> io::Result<SockAddr> {
    let index = i32::try_from(ifindex)
        .map_err(|_| io::Error::new(io::ErrorKind::InvalidInput, "interface index too large"))?;
    let mut storage = SockAddrStorage::zeroed();
    // SAFETY: `SockAddrStorage` is a `sockaddr_storage`, which is large enough and suitably
    // aligned for any socket address, `sockaddr_ll` included; the view is written before the
    // storage is used and the length passed to `SockAddr::new` is that of `sockaddr_ll`.
    #[allow(unsafe_code)]
    let address = unsafe {
        let ll = storage.view_as::<libc::sockaddr_ll>();
        ll.sll_family = libc::AF_PACKET as libc::sa_family_t;
        ll.sll_protocol = ETH_P_ALL.to_be();
        ll.sll_ifindex = index;
        SockAddr::new(
            storage,
            std::mem::size_of::<libc::sockaddr_ll>() as libc::socklen_t,
        )
    };
    Ok(address)
}

/// IPv6 multicast memberships, counted, on one UDP socket: several VIPs can share a
/// solicited-node group, and the group is left only when the last of them is released.
#[derive(Debug, Default)]
pub struct MulticastMemberships {
    socket: Option<Socket>,
    joined: BTreeMap<(Ipv6Addr, u32), usize>,
}

impl MulticastMemberships {
    pub fn join(&mut self, group: Ipv6Addr, ifindex: u32) -> io::Result<()> {
        if let Some(count) = self.joined.get_mut(&(group, ifindex)) {
            *count += 1;
            return Ok(());
        }
        let socket = match &self.socket {
            Some(s) => s,
            None => {
                self.socket
                    .insert(Socket::new(Domain::IPV6, Type::DGRAM, Some(Protocol::UDP))?)
            }
        };
        socket.join_multicast_v6(&group, ifindex)?;
        self.joined.insert((group, ifindex), 1);
        Ok(())
    }

    pub fn leave(&mut self, group: Ipv6Addr, ifindex: u32) -> io::Result<()> {
        let Some(count) = self.joined.get_mut(&(group, ifindex)) else {
            return Ok(());
        };
        *count -= 1;
        if *count > 0 {
            return Ok(());
        }
        self.joined.remove(&(group, ifindex));
        match &self.socket {
            Some(socket) => socket.leave_multicast_v6(&group, ifindex),
            None => Ok(()),
        }
    }

    /// Groups joined, with how many VIPs need each.
    pub fn joined(&self) -> &BTreeMap<(Ipv6Addr, u32), usize> {
        &self.joined
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const EXPRESSION: &str = "inbound and (arp or (ip6 and ip6[6] = 58 and (ip6[40] = 135 or ip6[40] = 136)) or ether proto 0x88b5)";

    /// Runs the filter as the kernel would (only the instructions it uses) on `frame` with
    /// packet type `pkttype`; returns the accepted length.
    fn run(frame: &[u8], pkttype: u32) -> u32 {
        let (mut a, mut pc) = (0u32, 0usize);
        loop {
            let (code, jt, jf, k) = FILTER[pc];
            pc += 1;
            match code {
                0x28 if k == 0xfffff004 => a = pkttype,
                0x28 => {
                    let k = k as usize;
                    a = frame
                        .get(k..k + 2)
                        .map_or(0, |b| u32::from(u16::from_be_bytes([b[0], b[1]])));
                    if frame.len() < k + 2 {
                        return 0;
                    }
                }
                0x30 => match frame.get(k as usize) {
                    Some(b) => a = u32::from(*b),
                    None => return 0,
                },
                0x15 => pc += usize::from(if a == k { jt } else { jf }),
                0x06 => return k,
                other => panic!("unexpected opcode {other:#x}"),
            }
        }
    }

    #[test]
    fn filter_matches_tcpdump_output_or_the_hand_derived_program() {
        let output = std::process::Command::new("tcpdump")
            .args(["-i", "lo", "-dd", EXPRESSION])
            .output();
        let Some(output) = output.ok().filter(|o| o.status.success()) else {
            // Without tcpdump the constants are checked by behaviour below.
            eprintln!("tcpdump not available: filter checked by behaviour only");
            return;
        };
        let text = String::from_utf8_lossy(&output.stdout);
        let parsed: Vec<(u16, u8, u8, u32)> = text
            .lines()
            .filter(|l| l.starts_with('{'))
            .map(|l| {
                let f: Vec<&str> = l
                    .trim_matches(|c| c == '{' || c == '}' || c == ',' || c == ' ')
                    .split(',')
                    .map(str::trim)
                    .collect();
                let hex = |s: &str| u64::from_str_radix(s.trim_start_matches("0x"), 16).unwrap();
                (
                    hex(f[0]) as u16,
                    f[1].parse().unwrap(),
                    f[2].parse().unwrap(),
                    hex(f[3]) as u32,
                )
            })
            .collect();
        assert_eq!(parsed, FILTER.to_vec());
    }

    #[test]
    fn filter_accepts_arp_ndp_and_heartbeats_and_drops_the_rest() {
        use crate::wire::*;
        let mac = MacAddr([2, 0, 0, 0, 0, 1]);
        let arp = arp_frame(
            MacAddr::BROADCAST,
            mac,
            &ArpPacket {
                operation: ArpOperation::Request,
                sender_mac: mac,
                sender_ip: "198.51.100.1".parse().unwrap(),
                target_mac: MacAddr::ZERO,
                target_ip: "198.51.100.10".parse().unwrap(),
            },
        );
        let ns = ndp_frame(
            MacAddr([0x33, 0x33, 0xff, 0, 0, 0x10]),
            mac,
            &NdpPacket {
                src: "2001:db8::1".parse().unwrap(),
                dst: "ff02::1:ff00:10".parse().unwrap(),
                message: NdpMessage::Solicit(NeighborSolicit {
                    target: "2001:db8::10".parse().unwrap(),
                    source_lla: Some(mac),
                }),
            },
        );
        let mut echo = ns.clone();
        echo[54] = 128; // ICMPv6 echo request
        let beat = heartbeat::heartbeat_frame(mac, b"anything");
        let mut ipv4 = arp.clone();
        ipv4[12..14].copy_from_slice(&[0x08, 0x00]);
        const HOST: u32 = 0;
        const OUTGOING: u32 = 4;
        assert_eq!(run(&arp, HOST), 0x40000);
        assert_eq!(run(&ns, HOST), 0x40000);
        assert_eq!(run(&beat, HOST), 0x40000);
        assert_eq!(run(&echo, HOST), 0);
        assert_eq!(run(&ipv4, HOST), 0);
        assert_eq!(run(&arp, OUTGOING), 0);
        assert_eq!(run(&beat, OUTGOING), 0);
    }
}
