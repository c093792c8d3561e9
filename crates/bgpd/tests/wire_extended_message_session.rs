//! The RFC 8654 receive limit end to end: a ferrolb `Speaker` against a scripted peer over
//! loopback (no root), which sends an UPDATE over 4096 octets without ever advertising the
//! extended message capability itself. What the speaker accepts is decided twice, by the
//! session's framing and by the decoder, and both must follow what *we* advertised.

#![allow(clippy::unwrap_used, clippy::expect_used)]

use std::net::{IpAddr, Ipv4Addr, SocketAddr};
use std::time::Duration;

use ferrolb_bgpd::fsm::State;
use ferrolb_bgpd::wire::{
    AsPath, AsSegment, Capability, CodecContext, Family, MAX_EXTENDED_MESSAGE_LEN, Message, Open,
    Origin, PathAttribute, Update, frame_len,
};
use ferrolb_bgpd::{PeerConfig, PeerStatus, Speaker, SpeakerConfig};
use ipnet::Ipv4Net;
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::{TcpListener, TcpStream};

const SPEAKER: Ipv4Addr = Ipv4Addr::new(127, 0, 0, 1);
const PROBE: Ipv4Addr = Ipv4Addr::new(127, 0, 0, 2);
const PROBE_AS: u32 = 65002;
/// Bounds every wait; the exchange itself takes milliseconds.
const PATIENCE: Duration = Duration::from_secs(15);

/// The scripted peer's side of one connection.
struct Probe {
    stream: TcpStream,
    buf: Vec<u8>,
}

impl Probe {
    async fn read(&mut self) -> Message {
        let ctx = CodecContext {
            four_octet_as: true,
            ..CodecContext::default()
        };
        loop {
            if let Some(n) = frame_len(&self.buf, &ctx).expect("speaker frames are valid") {
                let frame: Vec<u8> = self.buf.drain(..n).collect();
                return Message::decode(&frame, &ctx).expect("speaker messages decode");
            }
            let mut chunk = [0u8; 4096];
            let n = tokio::time::timeout(PATIENCE, self.stream.read(&mut chunk))
                .await
                .expect("the speaker answers")
                .expect("read");
            assert!(n > 0, "the speaker closed the connection");
            self.buf.extend_from_slice(&chunk[..n]);
        }
    }

    async fn send(&mut self, msg: Message) {
        let bytes = msg
            .encode(&CodecContext {
                four_octet_as: true,
                max_message_len: MAX_EXTENDED_MESSAGE_LEN,
                ..CodecContext::default()
            })
            .unwrap();
        self.stream.write_all(&bytes).await.unwrap();
    }
}

/// A speaker with one peer, the probe, whose connection the probe accepts and brings to
/// Established with an OPEN that does not carry capability 6.
async fn established(extended_message: bool) -> (Speaker, Probe) {
    let listener = TcpListener::bind(SocketAddr::new(IpAddr::V4(PROBE), 0))
        .await
        .unwrap();
    let speaker = Speaker::start(SpeakerConfig {
        listen: vec![SocketAddr::new(IpAddr::V4(SPEAKER), 0)],
    })
    .await
    .unwrap();
    let mut peer = PeerConfig::new("probe", IpAddr::V4(PROBE), 65001, PROBE_AS, SPEAKER);
    peer.port = listener.local_addr().unwrap().port();
    peer.source_address = Some(IpAddr::V4(SPEAKER));
    peer.ebgp_multihop = true;
    peer.extended_message = extended_message;
    speaker.set_peers(vec![peer]).await.unwrap();

    let (stream, _) = tokio::time::timeout(PATIENCE, listener.accept())
        .await
        .expect("the speaker connects")
        .unwrap();
    let mut probe = Probe {
        stream,
        buf: Vec::new(),
    };
    let Message::Open(theirs) = probe.read().await else {
        panic!("expected the speaker's OPEN");
    };
    assert_eq!(theirs.has_capability(6), extended_message);
    probe
        .send(Message::Open(Open::new(
            PROBE_AS,
            90,
            PROBE,
            vec![
                Capability::Multiprotocol(Family::IPV4_UNICAST),
                Capability::FourOctetAs(PROBE_AS),
            ],
        )))
        .await;
    probe.send(Message::Keepalive).await;
    while probe.read().await != Message::Keepalive {}
    wait(&speaker, "established", |s| s.state == State::Established).await;
    (speaker, probe)
}

async fn wait(speaker: &Speaker, what: &str, f: impl Fn(&PeerStatus) -> bool) -> PeerStatus {
    let mut rx = speaker.status();
    let deadline = tokio::time::Instant::now() + PATIENCE;
    loop {
        if let Some(s) = rx.borrow_and_update().peers.get("probe")
            && f(s)
        {
            return s.clone();
        }
        if tokio::time::timeout_at(deadline, rx.changed())
            .await
            .is_err()
        {
            panic!("never {what}; last: {:?}", rx.borrow().peers.get("probe"));
        }
    }
}

/// 900 /32s with ORIGIN, AS_PATH and NEXT_HOP: 4574 octets.
fn big_update() -> (Message, usize) {
    let nlri = (0..900u32)
        .map(|i| Ipv4Net::new(Ipv4Addr::from(0xc612_0000 + i), 32).unwrap())
        .collect();
    let msg = Message::Update(Update {
        attributes: vec![
            PathAttribute::Origin(Origin::Igp),
            PathAttribute::AsPath(AsPath {
                segments: vec![AsSegment::Sequence(vec![PROBE_AS])],
            }),
            PathAttribute::NextHop(PROBE),
        ],
        nlri,
        ..Update::default()
    });
    let len = msg
        .encode(&CodecContext {
            four_octet_as: true,
            max_message_len: MAX_EXTENDED_MESSAGE_LEN,
            ..CodecContext::default()
        })
        .unwrap()
        .len();
    assert!(len > 4096, "{len}");
    (msg, len)
}

// RFC 8654 §4: "An implementation that advertises the BGP Extended Message Capability MUST be
// capable of receiving a message with a length up to and including 65,535 octets."
#[tokio::test]
async fn update_over_4096_from_a_peer_without_capability_6_is_received_once_we_advertised_it() {
    let (speaker, mut probe) = established(true).await;
    let (update, _) = big_update();
    probe.send(update).await;
    let s = wait(&speaker, "received 900 prefixes", |s| {
        s.prefixes_received == 900
    })
    .await;
    assert_eq!(s.state, State::Established);
    assert_eq!(s.flaps, 0);
    assert!(s.last_notification_sent.is_none(), "{s:?}");
    speaker.shutdown(None).await;
}

// RFC 8654 §4: "If a BGP message with a length greater than 4,096 octets is received by a BGP
// listener who has not advertised the BGP Extended Message Capability, the listener will
// generate a NOTIFICATION with the Error Subcode set to Bad Message Length".
#[tokio::test]
async fn update_over_4096_is_bad_message_length_when_we_did_not_advertise_capability_6() {
    let (speaker, mut probe) = established(false).await;
    let (update, len) = big_update();
    probe.send(update).await;
    let notification = loop {
        match probe.read().await {
            Message::Notification(n) => break n,
            // Keepalives and our End-of-RIB may come first.
            Message::Keepalive | Message::Update(_) => continue,
            other => panic!("unexpected {other:?}"),
        }
    };
    assert_eq!(
        (notification.code, notification.subcode),
        (1, 2),
        "{notification}"
    );
    assert_eq!(
        notification.data,
        u16::try_from(len).unwrap().to_be_bytes().to_vec()
    );
    speaker.shutdown(None).await;
}
