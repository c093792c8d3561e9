//! Malformed Control packets and the exact reason each is dropped (RFC 5880 §6.8.6), in the
//! order the RFC lists the checks: the first failing check names the drop.

#![allow(clippy::unwrap_used, clippy::expect_used)]

use ferrolb_bfd::{ControlPacket, DecodeError, DropReason, State};

fn hex(s: &str) -> Vec<u8> {
    let s: String = s.chars().filter(|c| !c.is_whitespace()).collect();
    (0..s.len())
        .step_by(2)
        .map(|i| u8::from_str_radix(&s[i..i + 2], 16).unwrap())
        .collect()
}

/// A valid Up packet: My 1, Your 2, 300 ms.
const UP: &str = "20 c0 03 18 00000001 00000002 000493e0 000493e0 00000000";

#[test]
fn malformed_packets_are_dropped_with_their_reason() {
    let table: Vec<(&str, Vec<u8>, DecodeError, DropReason)> = vec![
        (
            "empty datagram",
            vec![],
            DecodeError::Truncated { payload: 0 },
            DropReason::Truncated,
        ),
        (
            "three octets",
            hex("20 c0 03"),
            DecodeError::Truncated { payload: 3 },
            DropReason::Truncated,
        ),
        (
            "version 0",
            hex("00 c0 03 18 00000001 00000002 000493e0 000493e0 00000000"),
            DecodeError::BadVersion { version: 0 },
            DropReason::BadVersion,
        ),
        (
            "version 2 (checked before the length)",
            hex("40 c0 03 02"),
            DecodeError::BadVersion { version: 2 },
            DropReason::BadVersion,
        ),
        (
            "Length 23",
            hex("20 c0 03 17 00000001 00000002 000493e0 000493e0 00000000"),
            DecodeError::LengthTooSmall {
                length: 23,
                authenticated: false,
            },
            DropReason::LengthTooSmall,
        ),
        (
            "A bit with Length 24",
            hex("20 c4 03 18 00000001 00000002 000493e0 000493e0 00000000"),
            DecodeError::LengthTooSmall {
                length: 24,
                authenticated: true,
            },
            DropReason::LengthTooSmall,
        ),
        (
            "Length 24 in a 23-octet datagram",
            hex("20 c0 03 18 00000001 00000002 000493e0 000493e0 000000"),
            DecodeError::LengthExceedsPayload {
                length: 24,
                payload: 23,
            },
            DropReason::LengthExceedsPayload,
        ),
        (
            "Length 255 in a 24-octet datagram",
            hex("20 c0 03 ff 00000001 00000002 000493e0 000493e0 00000000"),
            DecodeError::LengthExceedsPayload {
                length: 255,
                payload: 24,
            },
            DropReason::LengthExceedsPayload,
        ),
        (
            "Detect Mult 0",
            hex("20 c0 00 18 00000001 00000002 000493e0 000493e0 00000000"),
            DecodeError::ZeroDetectMultiplier,
            DropReason::ZeroDetectMultiplier,
        ),
        (
            "Multipoint bit",
            hex("20 c1 03 18 00000001 00000002 000493e0 000493e0 00000000"),
            DecodeError::MultipointSet,
            DropReason::MultipointSet,
        ),
        (
            "My Discriminator 0",
            hex("20 c0 03 18 00000000 00000002 000493e0 000493e0 00000000"),
            DecodeError::ZeroMyDiscriminator,
            DropReason::ZeroMyDiscriminator,
        ),
        (
            "Your Discriminator 0 in Up",
            hex("20 c0 03 18 00000001 00000000 000493e0 000493e0 00000000"),
            DecodeError::ZeroYourDiscriminator { state: State::Up },
            DropReason::ZeroYourDiscriminator,
        ),
        (
            "Your Discriminator 0 in Init",
            hex("20 80 03 18 00000001 00000000 000493e0 000493e0 00000000"),
            DecodeError::ZeroYourDiscriminator { state: State::Init },
            DropReason::ZeroYourDiscriminator,
        ),
        (
            "keyed SHA1 authentication section (type 4)",
            hex("20 c4 03 34 00000001 00000002 000493e0 000493e0 00000000 \
                 04 1c 01 00 00000001 0000000000000000000000000000000000000000"),
            DecodeError::AuthenticationNotSupported { auth_type: 4 },
            DropReason::AuthenticationNotSupported,
        ),
        (
            "simple password (type 1) in a Down packet",
            hex("20 44 03 1b 00000001 00000000 000f4240 000f4240 00000000 01 03 01"),
            DecodeError::AuthenticationNotSupported { auth_type: 1 },
            DropReason::AuthenticationNotSupported,
        ),
    ];
    for (what, bytes, error, reason) in table {
        let got = ControlPacket::decode(&bytes);
        assert_eq!(got, Err(error), "{what}");
        assert_eq!(error.drop_reason(), reason, "{what}");
    }
}

#[test]
fn zero_your_discriminator_is_accepted_in_down_and_admin_down() {
    for state_octet in ["40", "00"] {
        let bytes = hex(&format!(
            "20 {state_octet} 03 18 00000001 00000000 000f4240 000f4240 00000000"
        ));
        let p = ControlPacket::decode(&bytes).unwrap();
        assert_eq!(p.your_discriminator, 0);
    }
}

#[test]
fn the_valid_reference_packet_decodes() {
    let p = ControlPacket::decode(&hex(UP)).unwrap();
    assert_eq!(p.state, State::Up);
}
