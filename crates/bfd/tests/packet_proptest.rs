//! Property tests of the codec: every packet we can build survives encode → decode, and any
//! byte string either fails to decode or decodes to a packet whose encoding is those bytes.

#![allow(clippy::unwrap_used, clippy::expect_used)]

use ferrolb_bfd::{ControlPacket, Diagnostic, State};
use proptest::prelude::*;

fn state() -> impl Strategy<Value = State> {
    (0u8..4).prop_map(State::from_code)
}

prop_compose! {
    fn packet()(
        state in state(),
        diag in 0u8..32,
        poll in any::<bool>(),
        final_ in any::<bool>(),
        cpi in any::<bool>(),
        demand in any::<bool>(),
        mult in 1u8..=255,
        my in 1u32..,
        your in any::<u32>(),
        tx in any::<u32>(),
        rx in any::<u32>(),
        echo in any::<u32>(),
    ) -> ControlPacket {
        // Your Discriminator may only be zero in Down and AdminDown.
        let your = if your == 0 && matches!(state, State::Init | State::Up) { 1 } else { your };
        ControlPacket {
            diagnostic: Diagnostic::from_code(diag),
            state,
            poll,
            final_,
            control_plane_independent: cpi,
            demand,
            detect_multiplier: mult,
            my_discriminator: my,
            your_discriminator: your,
            desired_min_tx_us: tx,
            required_min_rx_us: rx,
            required_min_echo_rx_us: echo,
        }
    }
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(4096))]

    #[test]
    fn encode_then_decode_is_identity(p in packet()) {
        prop_assert_eq!(ControlPacket::decode(&p.encode()), Ok(p));
    }

    #[test]
    fn whatever_decodes_encodes_back_to_its_first_24_octets(bytes in proptest::collection::vec(any::<u8>(), 0..64)) {
        if let Ok(p) = ControlPacket::decode(&bytes) {
            let mut expected = bytes[..24].to_vec();
            // We always send Length 24; octets past it were ignored.
            expected[3] = 24;
            prop_assert_eq!(p.encode().to_vec(), expected);
        }
    }

    #[test]
    fn valid_header_with_random_body_never_panics(
        body in proptest::collection::vec(any::<u8>(), 0..40),
        flags in any::<u8>(),
        len in any::<u8>(),
    ) {
        let mut bytes = vec![0x20, flags, 3, len];
        bytes.extend(body);
        let _ = ControlPacket::decode(&bytes);
    }
}
