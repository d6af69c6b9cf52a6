//! The pam socket protocol, module → daemon: `decode_request` on an arbitrary payload (what
//! xcauthd reads from a connecting PAM module), `frame_len` on its first four bytes, and for
//! every payload that decodes, `encode_request` gives it back: the same bytes, and a frame
//! that decodes to the same request.
#![no_main]

use libfuzzer_sys::fuzz_target;
use xcauth_core::pamsock::{decode_request, encode_request, frame_len, MAX_FRAME};

fuzz_target!(|data: &[u8]| {
    if let Some(header) = data.get(..4) {
        let header: [u8; 4] = header.try_into().unwrap_or_default();
        if let Ok(n) = frame_len(header) {
            assert!((1..=MAX_FRAME).contains(&n));
        }
    }
    let Ok(request) = decode_request(data) else {
        return;
    };
    let frame = encode_request(&request).expect("a decoded request re-encodes");
    let header: [u8; 4] = frame[..4].try_into().expect("a frame has a header");
    assert_eq!(frame_len(header), Ok(frame.len() - 4), "header length");
    assert_eq!(decode_request(&frame[4..]), Ok(request), "round trip");
    assert_eq!(&frame[4..], data, "the encoding is canonical");
});
