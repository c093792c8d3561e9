//! Golden bytes: Control packets laid out by hand from the RFC 5880 §4.1 diagram (and one as
//! FRR 8.4's bfdd sends it), decoded to the expected fields and encoded back to the same bytes.

#![allow(clippy::unwrap_used, clippy::expect_used)]

use ferrolb_bfd::{ControlPacket, Diagnostic, State};

fn hex(s: &str) -> Vec<u8> {
    let s: String = s.chars().filter(|c| !c.is_whitespace()).collect();
    (0..s.len())
        .step_by(2)
        .map(|i| u8::from_str_radix(&s[i..i + 2], 16).unwrap())
        .collect()
}

fn packet(state: State) -> ControlPacket {
    ControlPacket {
        diagnostic: Diagnostic::None,
        state,
        poll: false,
        final_: false,
        control_plane_independent: false,
        demand: false,
        detect_multiplier: 3,
        my_discriminator: 1,
        your_discriminator: 2,
        desired_min_tx_us: 300_000,
        required_min_rx_us: 300_000,
        required_min_echo_rx_us: 0,
    }
}

fn check(bytes: &str, expected: ControlPacket) {
    let bytes = hex(bytes);
    assert_eq!(ControlPacket::decode(&bytes), Ok(expected));
    assert_eq!(expected.encode().to_vec(), bytes);
}

#[test]
fn down_packet_as_frr_bfdd_sends_it_before_hearing_the_peer() {
    // Vers 1 Diag 0 | Sta Down, no flags | Mult 3 | Len 24 | My 0x5ec1d1fd | Your 0 |
    // Desired TX 1 s | Required RX 1 s | Required echo RX 50 ms.
    check(
        "20 40 03 18  5ec1d1fd  00000000  000f4240  000f4240  0000c350",
        ControlPacket {
            state: State::Down,
            my_discriminator: 0x5ec1_d1fd,
            your_discriminator: 0,
            desired_min_tx_us: 1_000_000,
            required_min_rx_us: 1_000_000,
            required_min_echo_rx_us: 50_000,
            ..packet(State::Down)
        },
    );
}

#[test]
fn up_packet_with_poll() {
    // Sta Up (3 << 6) | P (0x20) = 0xe0; intervals 300 000 µs = 0x000493e0.
    check(
        "20 e0 03 18  00000001  00000002  000493e0  000493e0  00000000",
        ControlPacket {
            poll: true,
            ..packet(State::Up)
        },
    );
}

#[test]
fn down_packet_with_final_and_diagnostic_1() {
    // Diag 1 in the low five bits of octet 0; Sta Down (1 << 6) | F (0x10) = 0x50.
    check(
        "21 50 03 18  00000001  00000002  000493e0  000493e0  00000000",
        ControlPacket {
            diagnostic: Diagnostic::ControlDetectionTimeExpired,
            final_: true,
            ..packet(State::Down)
        },
    );
}

#[test]
fn admin_down_packet_with_diagnostic_7() {
    check(
        "27 00 05 18  00000001  00000000  000f4240  0000c350  00000000",
        ControlPacket {
            diagnostic: Diagnostic::AdministrativelyDown,
            detect_multiplier: 5,
            your_discriminator: 0,
            desired_min_tx_us: 1_000_000,
            required_min_rx_us: 50_000,
            ..packet(State::AdminDown)
        },
    );
}

#[test]
fn init_packet_with_control_plane_independent_and_demand_bits() {
    // Sta Init (2 << 6) | C (0x08) | D (0x02) = 0x8a; Mult 255; discriminators at their maximum.
    check(
        "20 8a ff 18  ffffffff  fffffffe  00002710  ffffffff  000186a0",
        ControlPacket {
            control_plane_independent: true,
            demand: true,
            detect_multiplier: 255,
            my_discriminator: u32::MAX,
            your_discriminator: u32::MAX - 1,
            desired_min_tx_us: 10_000,
            required_min_rx_us: u32::MAX,
            required_min_echo_rx_us: 100_000,
            ..packet(State::Init)
        },
    );
}

#[test]
fn reserved_diagnostic_is_kept_not_rejected() {
    check(
        "3f c0 03 18  00000001  00000002  000493e0  000493e0  00000000",
        ControlPacket {
            diagnostic: Diagnostic::Reserved(31),
            ..packet(State::Up)
        },
    );
}
