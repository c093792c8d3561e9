//! Fuzz target for the BGP message decoder: `frame_len` and `Message::decode` under 2-octet and
//! 4-octet, 4096 and 65535, internal and external peer contexts must never panic, hang or over-allocate, must agree with each
//! other, and whatever decodes must encode again and (unless the decoder recovered from an
//! error) decode to the same message.
//!
//! Input layout: if the first octet has its top bit set, the rest is taken as raw stream bytes
//! (marker and header included). Otherwise its low three bits are the message type and the rest
//! is the body; the harness adds a valid marker and length so the body decoders get exercised.

#![no_main]

use ferrolb_bgpd::wire::{
    CodecContext, DecodeError, EncodeError, MARKER, MAX_EXTENDED_MESSAGE_LEN, MAX_MESSAGE_LEN,
    Message, frame_len,
};
use libfuzzer_sys::fuzz_target;

/// Sending and receiving limits are equal so whatever decodes may be re-encoded; both peer kinds
/// are covered (RFC 7606 §7.5, §7.9, §7.10 depend on it).
const CONTEXTS: [CodecContext; 4] = [
    CodecContext {
        four_octet_as: false,
        max_message_len: MAX_MESSAGE_LEN,
        max_received_len: MAX_MESSAGE_LEN,
        ibgp: false,
    },
    CodecContext {
        four_octet_as: true,
        max_message_len: MAX_MESSAGE_LEN,
        max_received_len: MAX_MESSAGE_LEN,
        ibgp: true,
    },
    CodecContext {
        four_octet_as: false,
        max_message_len: MAX_EXTENDED_MESSAGE_LEN,
        max_received_len: MAX_EXTENDED_MESSAGE_LEN,
        ibgp: true,
    },
    CodecContext {
        four_octet_as: true,
        max_message_len: MAX_EXTENDED_MESSAGE_LEN,
        max_received_len: MAX_EXTENDED_MESSAGE_LEN,
        ibgp: false,
    },
];

fuzz_target!(|data: &[u8]| {
    let Some((&mode, rest)) = data.split_first() else {
        return;
    };
    let bytes = if mode & 0x80 != 0 {
        rest.to_vec()
    } else {
        let mut b = Vec::with_capacity(19 + rest.len());
        b.extend_from_slice(&MARKER);
        let len = u16::try_from(19 + rest.len()).unwrap_or(u16::MAX);
        b.extend_from_slice(&len.to_be_bytes());
        b.push(mode & 0x07);
        b.extend_from_slice(rest);
        b
    };
    for ctx in &CONTEXTS {
        check(&bytes, ctx);
    }
});

fn check(bytes: &[u8], ctx: &CodecContext) {
    let framed = frame_len(bytes, ctx);
    let decoded = Message::decode(bytes, ctx);
    match &framed {
        Err(e) => assert_eq!(decoded, Err(e.clone()), "frame_len and decode disagree"),
        Ok(None) => assert!(
            matches!(decoded, Err(DecodeError::FrameLength { .. })),
            "frame_len wants more bytes, decode said {decoded:?}"
        ),
        Ok(Some(n)) => {
            assert!(*n <= bytes.len());
            if *n < bytes.len() {
                let whole = Message::decode(&bytes[..*n], ctx);
                assert!(
                    !matches!(whole, Err(DecodeError::FrameLength { .. })),
                    "{whole:?}"
                );
                if let Ok(m) = whole {
                    reencode(m, ctx);
                }
            }
        }
    }
    if let Ok(m) = decoded {
        reencode(m, ctx);
    }
}

fn reencode(m: Message, ctx: &CodecContext) {
    match m.encode(ctx) {
        Ok(again) => {
            let recovered = matches!(&m, Message::Update(u) if !u.recovered_errors.is_empty());
            if !recovered {
                assert_eq!(Message::decode(&again, ctx), Ok(m), "re-decode differs");
            }
        }
        // We send one capability per optional parameter; a peer's packed OPEN can be smaller.
        Err(EncodeError::TooLong { .. }) if matches!(m, Message::Open(_)) => {}
        Err(e) => panic!("decoded {m:?} but cannot encode it: {e}"),
    }
}
