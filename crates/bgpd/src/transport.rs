//! TCP for BGP: outbound connections and listeners with the socket options sessions need —
//! TCP MD5 signatures (RFC 2385), the IP TTL (RFC 4271 eBGP single-hop vs multihop), a fixed
//! source address — and the local next-hop addresses a session announces.
//!
//! This module knows sockets and interfaces, not BGP messages.

use std::io;
use std::mem;
use std::net::{IpAddr, Ipv4Addr, Ipv6Addr, SocketAddr};
use std::os::fd::AsRawFd;

use socket2::SockRef;
use tokio::net::{TcpListener, TcpSocket, TcpStream};

/// How to reach one peer.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct ConnectParams {
    pub peer: SocketAddr,
    pub source: Option<IpAddr>,
    pub password: Option<String>,
    pub ttl: u32,
}

/// Opens a TCP connection to the peer with MD5, TTL and source address applied before the SYN.
pub async fn connect(params: &ConnectParams) -> io::Result<TcpStream> {
    let socket = match params.peer {
        SocketAddr::V4(_) => TcpSocket::new_v4()?,
        SocketAddr::V6(_) => TcpSocket::new_v6()?,
    };
    socket.set_nodelay(true)?;
    if let Some(password) = &params.password {
        set_md5_key(&socket, params.peer.ip(), Some(password))?;
    }
    set_ttl(&SockRef::from(&socket), params.peer.ip(), params.ttl)?;
    if let Some(source) = params.source {
        socket.bind(SocketAddr::new(source, 0))?;
    }
    socket.connect(params.peer).await
}

/// Binds a BGP listener on `addr` (one per address family: IPv6 listeners are v6-only, so
/// MD5 keys and peer matching see native addresses, never v4-mapped ones).
pub fn listen(addr: SocketAddr) -> io::Result<TcpListener> {
    let socket = match addr {
        SocketAddr::V4(_) => TcpSocket::new_v4()?,
        SocketAddr::V6(_) => {
            let s = TcpSocket::new_v6()?;
            SockRef::from(&s).set_only_v6(true)?;
            s
        }
    };
    socket.set_reuseaddr(true)?;
    socket.bind(addr)?;
    socket.listen(64)
}

/// Applies per-connection options to an accepted connection.
pub fn prepare_accepted(stream: &TcpStream, ttl: u32) -> io::Result<()> {
    stream.set_nodelay(true)?;
    let peer = stream.peer_addr()?.ip();
    set_ttl(&SockRef::from(stream), peer, ttl)
}

fn set_ttl(socket: &SockRef<'_>, peer: IpAddr, ttl: u32) -> io::Result<()> {
    match peer {
        IpAddr::V4(_) => socket.set_ttl_v4(ttl),
        IpAddr::V6(_) => socket.set_unicast_hops_v6(ttl),
    }
}

/// `struct tcp_md5sig` from linux/tcp.h (libc does not define it).
#[repr(C)]
struct TcpMd5Sig {
    addr: libc::sockaddr_storage,
    flags: u8,
    prefixlen: u8,
    keylen: u16,
    ifindex: libc::c_int,
    key: [u8; libc::TCP_MD5SIG_MAXKEYLEN],
}

/// Errors specific to MD5 keys, before the kernel sees them.
fn invalid(msg: &str) -> io::Error {
    io::Error::new(io::ErrorKind::InvalidInput, msg.to_string())
}

/// Installs (or with `None`, removes) the RFC 2385 key for `peer` on a socket. On a listener,
/// accepted connections from that peer inherit it.
// The one place in ferrolb-bgpd that needs `unsafe`: the kernel's `tcp_md5sig` has no safe
// wrapper in libc, nix or socket2.
#[allow(unsafe_code)]
pub fn set_md5_key(socket: &impl AsRawFd, peer: IpAddr, password: Option<&str>) -> io::Result<()> {
    let key = password.unwrap_or("").as_bytes();
    if key.len() > libc::TCP_MD5SIG_MAXKEYLEN {
        return Err(invalid("TCP MD5 password is longer than 80 bytes"));
    }
    // SAFETY: all-zero bytes are a valid value for these plain C structs.
    let mut sig: TcpMd5Sig = unsafe { mem::zeroed() };
    match peer {
        IpAddr::V4(v4) => {
            // SAFETY: sockaddr_storage is large and aligned enough for sockaddr_in.
            let sin = unsafe { &mut *(&mut sig.addr as *mut _ as *mut libc::sockaddr_in) };
            sin.sin_family = libc::AF_INET as libc::sa_family_t;
            sin.sin_addr.s_addr = u32::from(v4).to_be();
        }
        IpAddr::V6(v6) => {
            // SAFETY: sockaddr_storage is large and aligned enough for sockaddr_in6.
            let sin6 = unsafe { &mut *(&mut sig.addr as *mut _ as *mut libc::sockaddr_in6) };
            sin6.sin6_family = libc::AF_INET6 as libc::sa_family_t;
            sin6.sin6_addr.s6_addr = v6.octets();
        }
    }
    sig.keylen = key.len() as u16;
    sig.key[..key.len()].copy_from_slice(key);
    // SAFETY: the fd is a valid socket for the duration of the call and `sig` is a correctly
    // laid out tcp_md5sig of the size passed.
    let rc = unsafe {
        libc::setsockopt(
            socket.as_raw_fd(),
            libc::IPPROTO_TCP,
            libc::TCP_MD5SIG,
            &sig as *const TcpMd5Sig as *const libc::c_void,
            mem::size_of::<TcpMd5Sig>() as libc::socklen_t,
        )
    };
    if rc == 0 {
        Ok(())
    } else {
        Err(io::Error::last_os_error())
    }
}

/// The addresses this host can give as next hop on the link a session runs over: the session's
/// own local address for its family, and the first address of the other family on the same
/// interface (global scope for IPv6), so IPv4 routes can ride an IPv6 session and the reverse.
pub fn local_next_hops(local: IpAddr) -> (Option<Ipv4Addr>, Option<Ipv6Addr>) {
    let mut v4 = match local {
        IpAddr::V4(a) => Some(a),
        IpAddr::V6(a) => a.to_ipv4_mapped(),
    };
    let mut v6 = match local {
        IpAddr::V6(a) if a.to_ipv4_mapped().is_none() => Some(a),
        _ => None,
    };
    if v4.is_some() && v6.is_some() {
        return (v4, v6);
    }
    let Ok(addrs) = nix::ifaddrs::getifaddrs() else {
        return (v4, v6);
    };
    let addrs: Vec<_> = addrs.collect();
    let ip_of = |ifa: &nix::ifaddrs::InterfaceAddress| -> Option<IpAddr> {
        let addr = ifa.address.as_ref()?;
        if let Some(sin) = addr.as_sockaddr_in() {
            return Some(IpAddr::V4(sin.ip()));
        }
        addr.as_sockaddr_in6().map(|sin6| IpAddr::V6(sin6.ip()))
    };
    let local_v4 = v4.map(IpAddr::V4);
    let local = local_v4.unwrap_or(local);
    let Some(interface) = addrs
        .iter()
        .find(|ifa| ip_of(ifa) == Some(local))
        .map(|ifa| ifa.interface_name.clone())
    else {
        return (v4, v6);
    };
    for ip in addrs
        .iter()
        .filter(|ifa| ifa.interface_name == interface)
        .filter_map(ip_of)
    {
        match ip {
            IpAddr::V4(a) if v4.is_none() => v4 = Some(a),
            IpAddr::V6(a) if v6.is_none() && !is_link_local(a) => v6 = Some(a),
            _ => {}
        }
    }
    (v4, v6)
}

fn is_link_local(a: Ipv6Addr) -> bool {
    (a.segments()[0] & 0xffc0) == 0xfe80
}

/// Maps a v4-mapped IPv6 address back to IPv4, so a peer is recognised whichever socket
/// family its connection arrived on.
pub fn canonical_ip(ip: IpAddr) -> IpAddr {
    match ip {
        IpAddr::V6(v6) => v6.to_ipv4_mapped().map_or(ip, IpAddr::V4),
        v4 => v4,
    }
}
