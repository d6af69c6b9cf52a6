//! The pam socket protocol, daemon → module: `decode_reply` on an arbitrary payload (what the
//! PAM module reads from a socket), and for every payload that decodes, `encode_reply` gives
//! a frame that decodes to the same reply, byte for byte the same unless a free-text reason was
//! cut to its 1024-byte limit.
#![no_main]

use libfuzzer_sys::fuzz_target;
use xcauth_core::pamsock::{decode_reply, encode_reply, frame_len, PamReply};

fuzz_target!(|data: &[u8]| {
    let Ok(reply) = decode_reply(data) else {
        return;
    };
    let frame = encode_reply(&reply).expect("a decoded reply re-encodes");
    let header: [u8; 4] = frame[..4].try_into().expect("a frame has a header");
    assert_eq!(frame_len(header), Ok(frame.len() - 4), "header length");
    let again = decode_reply(&frame[4..]).expect("a re-encoded reply decodes");
    match (&reply, &again) {
        (PamReply::Unavailable(long), PamReply::Unavailable(cut))
        | (PamReply::Error(long), PamReply::Error(cut))
            if long.len() > 1024 =>
        {
            assert!(
                cut.len() <= 1024 && long.starts_with(cut.as_str()),
                "cut reason"
            );
        }
        _ => {
            assert_eq!(again, reply, "round trip");
            assert_eq!(&frame[4..], data, "the encoding is canonical");
        }
    }
});
