//! Fuzz target for the heartbeat decoder. Half the inputs (low bit of the first octet) are
//! sealed with the test key first, so the fuzzer gets past the MAC and exercises the body
//! parser; the others must be rejected (a forged MAC is not found by chance). Must never panic
//! or over-allocate; whatever opens must seal again to a payload that opens to the same part.

#![no_main]

use ferrolb_l2::wire::heartbeat::{HeartbeatKey, MAGIC, MAX_PAYLOAD, VERSION};
use hmac::{Hmac, KeyInit, Mac};
use libfuzzer_sys::fuzz_target;
use sha2::Sha256;

const KEY: &[u8] = b"fuzzing key, 16+ octets";

fuzz_target!(|data: &[u8]| {
    let Some((&mode, rest)) = data.split_first() else {
        return;
    };
    let key = HeartbeatKey::new(KEY).unwrap();
    let payload = if mode & 1 == 1 {
        let mut body = Vec::with_capacity(5 + rest.len() + 32);
        body.extend_from_slice(&MAGIC);
        body.push(VERSION);
        body.extend_from_slice(rest);
        let mut mac = Hmac::<Sha256>::new_from_slice(KEY).unwrap();
        mac.update(&body);
        body.extend_from_slice(&mac.finalize().into_bytes());
        body
    } else {
        rest.to_vec()
    };
    let Ok(part) = key.open(&payload) else { return };
    assert_eq!(mode & 1, 1, "an unsealed input opened");
    // Re-sealing packs into parts of at most MAX_PAYLOAD, so only a part that fits one can
    // come back whole.
    if part.count == 1 && payload.len() <= MAX_PAYLOAD {
        let sealed = key.seal(&part.beat).expect("what decodes re-encodes");
        assert_eq!(sealed.len(), 1);
        let again = key.open(&sealed[0]).unwrap();
        assert_eq!(again.beat, part.beat);
    }
});
