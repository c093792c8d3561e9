//! UDP for BFD: the receive sockets (one per port and address family, plus one per interface
//! or VRF device that a session names), which report each datagram's TTL / hop limit and
//! destination address, and the per-session send sockets (TTL 255, a source port in
//! 49152–65535).
//!
//! This module knows sockets and control messages, not BFD: it hands datagrams up and sends the
//! bytes it is given.

use std::io;
use std::net::{IpAddr, Ipv4Addr, Ipv6Addr, SocketAddr, SocketAddrV6};
use std::os::fd::AsRawFd;
use std::sync::Arc;

use nix::sys::socket::{
    ControlMessageOwned, MsgFlags, SockaddrStorage, recvmsg, setsockopt, sockopt,
};
use socket2::{Domain, Protocol, Socket, Type};
use tokio::io::Interest;
use tokio::net::UdpSocket;

use crate::config::SessionKey;

/// RFC 5881 §4: single-hop Control packets go to UDP port 3784.
pub const SINGLE_HOP_PORT: u16 = 3784;
/// RFC 5883 §2: multihop Control packets go to UDP port 4784.
pub const MULTIHOP_PORT: u16 = 4784;
/// RFC 5881 §4: the source port of Control packets.
const SOURCE_PORTS: std::ops::RangeInclusive<u16> = 49152..=65535;
/// How many random source ports to try before giving up.
const SOURCE_PORT_ATTEMPTS: usize = 64;
/// RFC 5881 §5: the TTL / hop limit every packet is sent with.
const SEND_TTL: u32 = 255;
/// DSCP CS6 (network control, RFC 4594), as routers send their BFD: it survives congestion.
const NETWORK_CONTROL_TOS: u32 = 0xc0;
/// Larger than any Control packet we accept (Length is one octet).
pub const RECEIVE_BUFFER: usize = 512;

/// One received datagram and what the kernel told us about it.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Datagram {
    pub payload: Vec<u8>,
    pub source: IpAddr,
    /// The destination address of the IP header.
    pub destination: Option<IpAddr>,
    pub ttl: Option<u8>,
    /// Arrived on the multihop port.
    pub multihop: bool,
    /// The device the receiving socket is bound to (`None`: the wildcard socket).
    pub interface: Option<Arc<str>>,
}

/// Which receive socket: port kind, family and optional device.
#[derive(Clone, Debug, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct ReceiverKey {
    pub interface: Option<String>,
    pub ipv6: bool,
    pub multihop: bool,
}

impl ReceiverKey {
    pub fn address(&self) -> SocketAddr {
        let port = if self.multihop {
            MULTIHOP_PORT
        } else {
            SINGLE_HOP_PORT
        };
        let ip = if self.ipv6 {
            IpAddr::V6(Ipv6Addr::UNSPECIFIED)
        } else {
            IpAddr::V4(Ipv4Addr::UNSPECIFIED)
        };
        SocketAddr::new(ip, port)
    }
}

/// Opens a receive socket bound to the wildcard address on the BFD port, asking the kernel for
/// the TTL / hop limit and destination of every datagram. Must run inside a tokio runtime.
pub fn open_receive(key: &ReceiverKey) -> io::Result<UdpSocket> {
    let domain = if key.ipv6 { Domain::IPV6 } else { Domain::IPV4 };
    let socket = Socket::new(domain, Type::DGRAM, Some(Protocol::UDP))?;
    if key.ipv6 {
        socket.set_only_v6(true)?;
        setsockopt(&socket, sockopt::Ipv6RecvHopLimit, &true).map_err(io::Error::from)?;
        setsockopt(&socket, sockopt::Ipv6RecvPacketInfo, &true).map_err(io::Error::from)?;
    } else {
        setsockopt(&socket, sockopt::Ipv4RecvTtl, &true).map_err(io::Error::from)?;
        setsockopt(&socket, sockopt::Ipv4PacketInfo, &true).map_err(io::Error::from)?;
    }
    // A device-bound socket and the wildcard one share the port; the kernel hands each datagram
    // to the most specific.
    socket.set_reuse_address(true)?;
    if let Some(interface) = &key.interface {
        socket.bind_device(Some(interface.as_bytes()))?;
    }
    socket.set_nonblocking(true)?;
    socket.bind(&key.address().into())?;
    UdpSocket::from_std(socket.into())
}

/// Receives one datagram with its control messages.
pub async fn receive(socket: &UdpSocket, buf: &mut [u8], cmsg: &mut [u8]) -> io::Result<Datagram> {
    loop {
        socket.readable().await?;
        match socket.try_io(Interest::READABLE, || receive_now(socket, buf, cmsg)) {
            Err(e) if e.kind() == io::ErrorKind::WouldBlock => continue,
            other => return other,
        }
    }
}

/// A control-message buffer large enough for what [`open_receive`] asks for.
pub fn control_buffer() -> Vec<u8> {
    nix::cmsg_space!(
        libc::in6_pktinfo,
        libc::in_pktinfo,
        libc::c_int,
        libc::c_int
    )
}

fn receive_now(socket: &UdpSocket, buf: &mut [u8], cmsg: &mut [u8]) -> io::Result<Datagram> {
    let mut iov = [io::IoSliceMut::new(buf)];
    let msg = recvmsg::<SockaddrStorage>(
        socket.as_raw_fd(),
        &mut iov,
        Some(cmsg),
        MsgFlags::MSG_DONTWAIT,
    )
    .map_err(io::Error::from)?;
    let len = msg.bytes;
    let source = msg
        .address
        .as_ref()
        .and_then(|a| {
            a.as_sockaddr_in()
                .map(|v4| IpAddr::V4(v4.ip()))
                .or_else(|| a.as_sockaddr_in6().map(|v6| IpAddr::V6(v6.ip())))
        })
        .ok_or_else(|| io::Error::other("datagram without a source address"))?;
    let mut ttl = None;
    let mut destination = None;
    // A truncated control buffer means no TTL: the session drops the packet (TtlUnknown).
    if let Ok(cmsgs) = msg.cmsgs() {
        for c in cmsgs {
            match c {
                ControlMessageOwned::Ipv4Ttl(t) | ControlMessageOwned::Ipv6HopLimit(t) => {
                    ttl = u8::try_from(t).ok();
                }
                ControlMessageOwned::Ipv4PacketInfo(info) => {
                    destination = Some(IpAddr::V4(Ipv4Addr::from(u32::from_be(
                        info.ipi_addr.s_addr,
                    ))));
                }
                ControlMessageOwned::Ipv6PacketInfo(info) => {
                    destination = Some(IpAddr::V6(Ipv6Addr::from(info.ipi6_addr.s6_addr)));
                }
                _ => {}
            }
        }
    }
    Ok(Datagram {
        payload: buf[..len.min(buf.len())].to_vec(),
        source,
        destination,
        ttl,
        multihop: false,
        interface: None,
    })
}

/// A session's sending socket.
#[derive(Debug)]
pub struct SendSocket {
    pub socket: UdpSocket,
    pub source_port: u16,
    pub destination: SocketAddr,
}

/// Opens the socket a session sends from: TTL / hop limit 255, DSCP CS6, bound to the session's
/// local address (if any) and to a random free source port in 49152–65535 (RFC 5881 §4: one
/// port per session, kept for its lifetime), and to its interface with `SO_BINDTODEVICE`.
/// Must run inside a tokio runtime.
pub fn open_send(key: &SessionKey) -> io::Result<SendSocket> {
    let scope = match &key.interface {
        Some(name) => Some(interface_index(name)?),
        None => None,
    };
    let port = if key.multihop {
        MULTIHOP_PORT
    } else {
        SINGLE_HOP_PORT
    };
    let destination = socket_address(key.peer, port, scope);
    let mut last_error = None;
    for _ in 0..SOURCE_PORT_ATTEMPTS {
        let socket = match key.peer {
            IpAddr::V4(_) => {
                let s = Socket::new(Domain::IPV4, Type::DGRAM, Some(Protocol::UDP))?;
                s.set_ttl_v4(SEND_TTL)?;
                s.set_tos_v4(NETWORK_CONTROL_TOS)?;
                s
            }
            IpAddr::V6(_) => {
                let s = Socket::new(Domain::IPV6, Type::DGRAM, Some(Protocol::UDP))?;
                s.set_only_v6(true)?;
                s.set_unicast_hops_v6(SEND_TTL)?;
                s.set_tclass_v6(NETWORK_CONTROL_TOS)?;
                s
            }
        };
        if let Some(interface) = &key.interface {
            socket.bind_device(Some(interface.as_bytes()))?;
        }
        socket.set_nonblocking(true)?;
        let source_port = rand::random_range(SOURCE_PORTS);
        let local = key.local.unwrap_or(match key.peer {
            IpAddr::V4(_) => IpAddr::V4(Ipv4Addr::UNSPECIFIED),
            IpAddr::V6(_) => IpAddr::V6(Ipv6Addr::UNSPECIFIED),
        });
        match socket.bind(&socket_address(local, source_port, scope).into()) {
            Ok(()) => {
                return Ok(SendSocket {
                    socket: UdpSocket::from_std(socket.into())?,
                    source_port,
                    destination,
                });
            }
            Err(e) if e.kind() == io::ErrorKind::AddrInUse => last_error = Some(e),
            Err(e) => return Err(e),
        }
    }
    Err(last_error.unwrap_or_else(|| io::Error::from(io::ErrorKind::AddrInUse)))
}

/// An address with the interface as scope for IPv6 link-local addresses.
fn socket_address(ip: IpAddr, port: u16, scope: Option<u32>) -> SocketAddr {
    match ip {
        IpAddr::V6(v6) if v6.is_unicast_link_local() => {
            SocketAddr::V6(SocketAddrV6::new(v6, port, 0, scope.unwrap_or(0)))
        }
        _ => SocketAddr::new(ip, port),
    }
}

pub fn interface_index(name: &str) -> io::Result<u32> {
    nix::net::if_::if_nametoindex(name).map_err(|e| {
        io::Error::new(
            io::Error::from(e).kind(),
            format!("interface {name}: {}", io::Error::from(e)),
        )
    })
}
