//! `announce`: ferrolb's BGP speaker on its own, as a command.
//!
//! Peers with one router and announces a fixed set of prefixes until stopped; SIGTERM or Ctrl-C
//! sends a Cease/Administrative Shutdown NOTIFICATION first. The benchmark runs
//! it; it is also a quick way to announce a service address from any Linux host.
//!
//! ```text
//! announce --local-as 4200000001 --peer 192.0.2.1 --peer-as 64500 \
//!          --prefix 203.0.113.10/32 --community 64500:100
//! ```

use std::net::{IpAddr, Ipv4Addr, SocketAddr};
use std::time::{Duration, Instant};

use anyhow::{Context, Result, bail};
use clap::Parser;
use ferrolb_bgpd::fsm::{GracefulRestartConfig, State};
use ferrolb_bgpd::rib_out::RouteAttributes;
use ferrolb_bgpd::wire::{Community, LargeCommunity};
use ferrolb_bgpd::{PeerConfig, Speaker, SpeakerConfig};
use ipnet::IpNet;

#[derive(Parser, Debug)]
#[command(about = "Announce prefixes to one BGP peer with ferrolb's speaker")]
struct Args {
    /// Our AS number.
    #[arg(long)]
    local_as: u32,
    /// The router's address.
    #[arg(long)]
    peer: IpAddr,
    /// The router's AS number (equal to --local-as for iBGP).
    #[arg(long)]
    peer_as: u32,
    /// The router's BGP port.
    #[arg(long, default_value_t = 179)]
    port: u16,
    /// Router id; default: the first IPv4 of --source, or of the host route to the peer.
    #[arg(long)]
    router_id: Option<Ipv4Addr>,
    /// Source address of the session.
    #[arg(long)]
    source: Option<IpAddr>,
    /// TCP MD5 password.
    #[arg(long)]
    password: Option<String>,
    /// Proposed hold time in seconds (0, or 3 and more).
    #[arg(long, default_value_t = 90)]
    hold_time: u16,
    /// eBGP peer that is not directly connected (TTL 255).
    #[arg(long)]
    multihop: bool,
    /// Offer graceful restart with this restart time in seconds.
    #[arg(long)]
    graceful_restart: Option<u16>,
    /// Port to accept the router's connections on; 0 disables the listener.
    #[arg(long, default_value_t = 179)]
    listen_port: u16,
    /// A prefix to announce (repeatable).
    #[arg(long = "prefix")]
    prefixes: Vec<IpNet>,
    /// Also announce this many consecutive IPv4 /32s, starting at --generate-from.
    #[arg(long, default_value_t = 0)]
    generate: u32,
    #[arg(long, default_value = "198.18.0.0")]
    generate_from: Ipv4Addr,
    /// Community ASN:VALUE on every prefix (repeatable).
    #[arg(long = "community", value_parser = parse_community)]
    communities: Vec<Community>,
    /// Large community GLOBAL:LOCAL1:LOCAL2 on every prefix (repeatable).
    #[arg(long = "large-community", value_parser = parse_large_community)]
    large_communities: Vec<LargeCommunity>,
    /// LOCAL_PREF (sent to iBGP peers only).
    #[arg(long)]
    local_pref: Option<u32>,
    /// Shutdown text sent in the Cease NOTIFICATION (RFC 9003).
    #[arg(long, default_value = "ferrolb announce stopped")]
    shutdown_text: String,
}

fn parse_community(s: &str) -> Result<Community, String> {
    let (a, b) = s
        .split_once(':')
        .ok_or_else(|| format!("{s:?}: expected ASN:VALUE"))?;
    let a: u16 = a
        .parse()
        .map_err(|_| format!("{s:?}: {a:?} is not a 16-bit number"))?;
    let b: u16 = b
        .parse()
        .map_err(|_| format!("{s:?}: {b:?} is not a 16-bit number"))?;
    Ok(Community::new(a, b))
}

fn parse_large_community(s: &str) -> Result<LargeCommunity, String> {
    let parts: Vec<&str> = s.split(':').collect();
    let [g, l1, l2] = parts[..] else {
        return Err(format!("{s:?}: expected GLOBAL:LOCAL1:LOCAL2"));
    };
    let num = |x: &str| {
        x.parse::<u32>()
            .map_err(|_| format!("{s:?}: {x:?} is not a 32-bit number"))
    };
    Ok(LargeCommunity {
        global_admin: num(g)?,
        local_data1: num(l1)?,
        local_data2: num(l2)?,
    })
}

/// The local address the kernel would use to reach `peer`.
fn route_source(peer: IpAddr) -> Result<IpAddr> {
    let bind: SocketAddr = if peer.is_ipv4() {
        "0.0.0.0:0"
    } else {
        "[::]:0"
    }
    .parse()?;
    let probe = std::net::UdpSocket::bind(bind)?;
    probe
        .connect(SocketAddr::new(peer, 179))
        .with_context(|| format!("no route to {peer}"))?;
    Ok(probe.local_addr()?.ip())
}

#[tokio::main(flavor = "current_thread")]
async fn main() -> Result<()> {
    tracing_subscriber::fmt()
        .with_env_filter(
            tracing_subscriber::EnvFilter::try_from_default_env().unwrap_or_else(|_| "info".into()),
        )
        .init();
    let args = Args::parse();

    let router_id = match args.router_id {
        Some(id) => id,
        None => match args.source.map_or_else(|| route_source(args.peer), Ok)? {
            IpAddr::V4(v4) => v4,
            IpAddr::V6(_) => {
                bail!("cannot derive a router id from an IPv6 source: pass --router-id")
            }
        },
    };
    let mut peer = PeerConfig::new("peer", args.peer, args.local_as, args.peer_as, router_id);
    peer.port = args.port;
    peer.source_address = args.source;
    peer.password = args.password.clone();
    peer.hold_time = args.hold_time;
    peer.ebgp_multihop = args.multihop;
    peer.graceful_restart = args
        .graceful_restart
        .map(|t| GracefulRestartConfig { restart_time: t });

    let attrs = RouteAttributes::new(
        args.local_pref,
        None,
        args.communities.iter().copied(),
        args.large_communities.iter().copied(),
    );
    let mut routes: Vec<(IpNet, RouteAttributes)> =
        args.prefixes.iter().map(|p| (*p, attrs.clone())).collect();
    let base = u32::from(args.generate_from);
    for i in 0..args.generate {
        let addr = Ipv4Addr::from(
            base.checked_add(i)
                .context("--generate runs past 255.255.255.255")?,
        );
        routes.push((IpNet::V4(ipnet::Ipv4Net::new(addr, 32)?), attrs.clone()));
    }
    if routes.is_empty() {
        bail!("nothing to announce: give --prefix or --generate");
    }

    let listen = if args.listen_port == 0 {
        Vec::new()
    } else {
        vec![SocketAddr::new(
            if args.peer.is_ipv4() { "0.0.0.0" } else { "::" }.parse()?,
            args.listen_port,
        )]
    };
    let speaker = Speaker::start(SpeakerConfig { listen }).await?;
    let count = routes.len();
    speaker.set_routes("peer", routes).await?;
    speaker.set_peers(vec![peer]).await?;
    println!(
        "announcing {count} prefixes to {} as AS{} (router id {router_id})",
        args.peer, args.local_as
    );

    let mut status = speaker.status();
    let mut last_state = State::Idle;
    let mut established_at = None;
    let mut synced = false;
    let mut sigterm = tokio::signal::unix::signal(tokio::signal::unix::SignalKind::terminate())?;
    loop {
        tokio::select! {
            _ = tokio::signal::ctrl_c() => break,
            _ = sigterm.recv() => break,
            changed = status.changed() => {
                if changed.is_err() { bail!("speaker stopped unexpectedly"); }
                let snapshot = status.borrow_and_update().clone();
                let Some(p) = snapshot.peers.get("peer") else { continue };
                if p.state != last_state {
                    println!("session {} -> {}{}", last_state, p.state,
                        p.last_error.as_ref().map(|e| format!(" ({})", e.error)).unwrap_or_default());
                    last_state = p.state;
                    if p.state == State::Established {
                        established_at = Some(Instant::now());
                        synced = false;
                    }
                }
                if p.initial_sync_done && !synced {
                    synced = true;
                    let took = established_at.map(|t| t.elapsed()).unwrap_or(Duration::ZERO);
                    // Packed and handed to the connection; the router may still be reading them.
                    println!("queued {} prefixes and End-of-RIB for the router {:.3}s after Established",
                        p.prefixes_advertised_v4 + p.prefixes_advertised_v6, took.as_secs_f64());
                }
            }
        }
    }
    println!("stopping: sending Cease to {}", args.peer);
    speaker.shutdown(Some(args.shutdown_text)).await;
    Ok(())
}
