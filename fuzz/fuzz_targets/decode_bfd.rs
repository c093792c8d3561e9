//! Fuzz target for the BFD Control packet decoder and the session that consumes it.
//!
//! Whatever the bytes, `ControlPacket::decode` must not panic; whatever decodes must encode back
//! to the same first 24 octets (Length normalised to 24) and decode to the same packet; and a
//! session in each state must take the packet without panicking and without breaking its own
//! rules (never P and F together, never D, always a nonzero My Discriminator).

#![no_main]

use std::net::IpAddr;
use std::num::NonZeroU32;
use std::time::{Duration, Instant};

use ferrolb_bfd::session::{Input, Output, ReceivedPacket, Session};
use ferrolb_bfd::{ControlPacket, SessionConfig};
use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    let Ok(packet) = ControlPacket::decode(data) else {
        return;
    };
    let again = packet.encode();
    let mut expected = data[..24].to_vec();
    expected[3] = 24;
    assert_eq!(again.to_vec(), expected, "encoding differs from the input");
    assert_eq!(
        ControlPacket::decode(&again),
        Ok(packet),
        "re-decode differs"
    );

    let peer = IpAddr::from([198, 51, 100, 2]);
    let Some(discriminator) = NonZeroU32::new(packet.your_discriminator.max(1)) else {
        return;
    };
    let t0 = Instant::now();
    for multihop in [false, true] {
        let mut config = SessionConfig::new(peer);
        config.multihop = multihop;
        config.profile.transmit_interval = Duration::from_millis(10);
        config.profile.receive_interval = Duration::from_millis(10);
        let Ok((mut session, _)) = Session::new(&config, discriminator, t0) else {
            return;
        };
        // Feed it twice, a little apart, so it sees the packet from several states.
        for (step, ttl) in [
            (1u64, Some(255u8)),
            (2, Some(254)),
            (3, None),
            (4, Some(255)),
        ] {
            let out = session.handle(
                t0 + Duration::from_millis(step),
                Input::PacketReceived(ReceivedPacket {
                    packet,
                    source: peer,
                    ttl,
                }),
            );
            for o in out {
                if let Output::Send(p) = o {
                    assert!(!(p.poll && p.final_), "P and F together");
                    assert!(!p.demand, "we never ask for Demand mode");
                    assert_ne!(p.my_discriminator, 0);
                    assert_eq!(ControlPacket::decode(&p.encode()), Ok(p));
                }
            }
        }
    }
});
