//! Two ferrolb speakers peering with each other over loopback: the `Speaker` handle, the tokio
//! driver and the FSM together, without root or routers. Both sides connect and listen, so
//! every session start is a real connection collision (RFC 4271 §6.8).

#![allow(clippy::unwrap_used, clippy::expect_used)]

use std::net::{IpAddr, Ipv4Addr, SocketAddr};
use std::sync::atomic::{AtomicU16, Ordering};
use std::time::Duration;

use ferrolb_bgpd::fsm::State;
use ferrolb_bgpd::rib_out::RouteAttributes;
use ferrolb_bgpd::wire::Community;
use ferrolb_bgpd::{PeerConfig, PeerStatus, Speaker, SpeakerConfig, SpeakerError};
use ipnet::IpNet;

const A: IpAddr = IpAddr::V4(Ipv4Addr::new(127, 0, 0, 1));
const B: IpAddr = IpAddr::V4(Ipv4Addr::new(127, 0, 0, 2));

/// Each test gets its own pair of ports, so tests run in parallel.
fn ports() -> (u16, u16) {
    static NEXT: AtomicU16 = AtomicU16::new(0);
    let n = NEXT.fetch_add(2, Ordering::Relaxed);
    let base = 20_000 + (std::process::id() % 2000) as u16 * 10 + n;
    (base, base + 1)
}

fn peer(
    name: &str,
    addr: IpAddr,
    port: u16,
    local_as: u32,
    peer_as: u32,
    source: IpAddr,
) -> PeerConfig {
    let id = match source {
        IpAddr::V4(v4) => v4,
        IpAddr::V6(_) => unreachable!(),
    };
    let mut p = PeerConfig::new(name, addr, local_as, peer_as, id);
    p.port = port;
    p.source_address = Some(source);
    p.hold_time = 3;
    // Loopback is not a shared link: no TTL 1 here.
    p.ebgp_multihop = true;
    p.connect_retry.initial = Duration::from_millis(100);
    p.connect_retry.max = Duration::from_millis(400);
    p
}

async fn pair() -> (Speaker, Speaker, PeerConfig, PeerConfig) {
    let (pa, pb) = ports();
    let a = Speaker::start(SpeakerConfig {
        listen: vec![SocketAddr::new(A, pa)],
    })
    .await
    .unwrap();
    let b = Speaker::start(SpeakerConfig {
        listen: vec![SocketAddr::new(B, pb)],
    })
    .await
    .unwrap();
    let a_to_b = peer("b", B, pb, 65001, 65002, A);
    let b_to_a = peer("a", A, pa, 65002, 65001, B);
    a.set_peers(vec![a_to_b.clone()]).await.unwrap();
    b.set_peers(vec![b_to_a.clone()]).await.unwrap();
    (a, b, a_to_b, b_to_a)
}

async fn wait(
    speaker: &Speaker,
    peer: &str,
    what: &str,
    f: impl Fn(&PeerStatus) -> bool,
) -> PeerStatus {
    let mut rx = speaker.status();
    let deadline = tokio::time::Instant::now() + Duration::from_secs(15);
    loop {
        if let Some(s) = rx.borrow_and_update().peers.get(peer)
            && f(s)
        {
            return s.clone();
        }
        if tokio::time::timeout_at(deadline, rx.changed())
            .await
            .is_err()
        {
            panic!(
                "{peer}: never {what}; last: {:?}",
                rx.borrow().peers.get(peer)
            );
        }
    }
}

fn routes(n: u32, community: u16) -> Vec<(IpNet, RouteAttributes)> {
    let attrs = RouteAttributes::new(None, None, [Community::new(65001, community)], []);
    (0..n)
        .map(|i| {
            let addr = Ipv4Addr::from(u32::from(Ipv4Addr::new(198, 18, 0, 0)) + i);
            (
                IpNet::V4(ipnet::Ipv4Net::new(addr, 32).unwrap()),
                attrs.clone(),
            )
        })
        .collect()
}

#[tokio::test]
async fn two_speakers_that_both_connect_end_with_one_session_each() {
    let (a, b, _, _) = pair().await;
    let sa = wait(&a, "b", "established", |s| s.state == State::Established).await;
    let sb = wait(&b, "a", "established", |s| s.state == State::Established).await;
    let na = sa.negotiated.unwrap();
    assert_eq!(na.peer_as, 65002);
    assert_eq!(na.hold_time, 3);
    assert!(na.four_octet_as && na.route_refresh && na.extended_message);
    assert_eq!(
        sb.negotiated.unwrap().peer_router_id,
        Ipv4Addr::new(127, 0, 0, 1)
    );
    // Still one session each a moment later: the collision was resolved, not repeated.
    tokio::time::sleep(Duration::from_secs(1)).await;
    let sa = a.status().borrow().peers["b"].clone();
    assert_eq!((sa.state, sa.flaps), (State::Established, 0));
    a.shutdown(None).await;
    b.shutdown(None).await;
}

#[tokio::test]
async fn routes_are_counted_by_the_peer_and_withdrawals_too() {
    let (a, b, _, _) = pair().await;
    a.set_routes("b", routes(5000, 1)).await.unwrap();
    let sa = wait(&a, "b", "synced", |s| s.initial_sync_done).await;
    assert_eq!(sa.prefixes_advertised_v4, 5000);
    assert_eq!(sa.prefixes_desired, 5000);
    wait(&b, "a", "received 5000", |s| s.prefixes_received == 5000).await;
    a.set_routes("b", routes(1000, 1)).await.unwrap();
    wait(&b, "a", "received 1000", |s| s.prefixes_received == 1000).await;
    let sa = wait(&a, "b", "advertising 1000", |s| {
        s.prefixes_advertised_v4 == 1000
    })
    .await;
    assert_eq!(sa.flaps, 0);
    a.shutdown(None).await;
    b.shutdown(None).await;
}

#[tokio::test]
async fn routes_set_before_the_peer_exists_are_sent_when_it_is_added() {
    let (pa, pb) = ports();
    let a = Speaker::start(SpeakerConfig {
        listen: vec![SocketAddr::new(A, pa)],
    })
    .await
    .unwrap();
    let b = Speaker::start(SpeakerConfig {
        listen: vec![SocketAddr::new(B, pb)],
    })
    .await
    .unwrap();
    a.set_routes("b", routes(10, 1)).await.unwrap();
    b.set_peers(vec![peer("a", A, pa, 65002, 65001, B)])
        .await
        .unwrap();
    a.set_peers(vec![peer("b", B, pb, 65001, 65002, A)])
        .await
        .unwrap();
    wait(&b, "a", "received 10", |s| s.prefixes_received == 10).await;
    a.shutdown(None).await;
    b.shutdown(None).await;
}

#[tokio::test]
async fn shutdown_tells_the_peer_why() {
    let (a, b, _, _) = pair().await;
    wait(&b, "a", "established", |s| s.state == State::Established).await;
    a.shutdown(Some("rolling upgrade".into())).await;
    let sb = wait(&b, "a", "down", |s| s.state != State::Established).await;
    let Some(ferrolb_bgpd::fsm::SessionError::NotificationReceived(n)) =
        sb.last_error.map(|e| e.error)
    else {
        panic!("no NOTIFICATION received");
    };
    assert_eq!((n.code, n.subcode), (6, 2));
    assert_eq!(n.shutdown_text().as_deref(), Some("rolling upgrade"));
    b.shutdown(None).await;
}

#[tokio::test]
async fn removing_a_peer_sends_peer_deconfigured_and_drops_its_status() {
    let (a, b, _, _) = pair().await;
    wait(&b, "a", "established", |s| s.state == State::Established).await;
    a.set_peers(vec![]).await.unwrap();
    assert!(!a.status().borrow().peers.contains_key("b"));
    let sb = wait(&b, "a", "down", |s| s.state != State::Established).await;
    let Some(ferrolb_bgpd::fsm::SessionError::NotificationReceived(n)) =
        sb.last_error.map(|e| e.error)
    else {
        panic!("no NOTIFICATION received");
    };
    assert_eq!((n.code, n.subcode), (6, 3), "Cease/Peer De-configured");
    a.shutdown(None).await;
    b.shutdown(None).await;
}

#[tokio::test]
async fn in_place_change_keeps_the_session_and_a_session_change_resets_it_once() {
    let (a, b, a_to_b, _) = pair().await;
    a.set_routes("b", routes(3, 1)).await.unwrap();
    wait(&b, "a", "received 3", |s| s.prefixes_received == 3).await;

    let mut in_place = a_to_b.clone();
    in_place.keepalive_time = Some(Duration::from_millis(500));
    a.set_peers(vec![in_place.clone()]).await.unwrap();
    a.set_routes("b", routes(3, 2)).await.unwrap();
    tokio::time::sleep(Duration::from_millis(500)).await;
    assert_eq!(b.status().borrow().peers["a"].flaps, 0);

    let mut reset = in_place;
    reset.hold_time = 6;
    a.set_peers(vec![reset]).await.unwrap();
    let sa = wait(&a, "b", "re-established", |s| {
        s.state == State::Established && s.flaps == 1
    })
    .await;
    assert_eq!(sa.prefixes_desired, 3, "routes survive the reset");
    wait(&b, "a", "received 3 again", |s| {
        s.flaps == 1 && s.prefixes_received == 3
    })
    .await;
    a.shutdown(None).await;
    b.shutdown(None).await;
}

#[tokio::test]
async fn invalid_peer_lists_are_refused_and_change_nothing() {
    let (a, b, a_to_b, _) = pair().await;
    wait(&a, "b", "established", |s| s.state == State::Established).await;

    let mut twin = a_to_b.clone();
    twin.name = "b2".into();
    let err = a.set_peers(vec![a_to_b.clone(), twin]).await.unwrap_err();
    assert!(
        matches!(err, SpeakerError::DuplicateAddress { .. }),
        "{err}"
    );
    assert_eq!(err.to_string(), "peers b and b2 both use address 127.0.0.2");

    let mut bad_hold = a_to_b.clone();
    bad_hold.hold_time = 2;
    let err = a.set_peers(vec![bad_hold]).await.unwrap_err();
    assert_eq!(
        err.to_string(),
        "peer b: hold time 2s: must be 0 or at least 3 seconds (RFC 4271 §4.2)"
    );

    let err = a
        .set_peers(vec![a_to_b.clone(), a_to_b.clone()])
        .await
        .unwrap_err();
    assert_eq!(err.to_string(), "two peers are named b");

    tokio::time::sleep(Duration::from_millis(300)).await;
    let sa = a.status().borrow().peers["b"].clone();
    assert_eq!((sa.state, sa.flaps), (State::Established, 0));
    a.shutdown(None).await;
    b.shutdown(None).await;
}

#[tokio::test]
async fn listener_on_a_busy_port_is_a_clear_error() {
    let (pa, _) = ports();
    let addr = SocketAddr::new(A, pa);
    let _a = Speaker::start(SpeakerConfig { listen: vec![addr] })
        .await
        .unwrap();
    let err = Speaker::start(SpeakerConfig { listen: vec![addr] })
        .await
        .unwrap_err();
    assert!(
        err.to_string()
            .starts_with(&format!("cannot listen on {addr}: ")),
        "{err}"
    );
}

#[tokio::test]
async fn connection_from_an_unknown_address_is_closed() {
    let (pa, _) = ports();
    let a = Speaker::start(SpeakerConfig {
        listen: vec![SocketAddr::new(A, pa)],
    })
    .await
    .unwrap();
    let mut stream = tokio::net::TcpStream::connect(SocketAddr::new(A, pa))
        .await
        .unwrap();
    let mut buf = [0u8; 16];
    let n = tokio::time::timeout(
        Duration::from_secs(5),
        tokio::io::AsyncReadExt::read(&mut stream, &mut buf),
    )
    .await
    .expect("closed promptly")
    .unwrap_or(0);
    assert_eq!(n, 0, "nothing is said to a stranger");
    a.shutdown(None).await;
}
