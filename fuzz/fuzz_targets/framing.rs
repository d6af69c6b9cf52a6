//! Shared by the four framing targets: decodes `data` as one connection's byte stream and
//! checks the promises `Decoder` documents.

use xcauth_core::codec::{Decoded, Decoder, Framing, DEFAULT_MAX_LINE};

/// Runs `data` through a decoder with the default line limit and one with a small limit (so
/// the oversize paths are reached with short inputs).
pub fn run(framing: Framing, data: &[u8]) {
    for max_line in [DEFAULT_MAX_LINE, 40] {
        stream(Decoder::new(framing, max_line), data);
    }
}

fn stream(mut decoder: Decoder, data: &[u8]) {
    let mut rest = data;
    loop {
        let decoded = decoder.decode(rest);
        check(&decoder, rest, &decoded, false);
        let consumed = match decoded {
            Decoded::NeedMore => {
                // At end of input the rest is either a last request or dropped.
                let last = decoder.decode_eof(rest);
                check(&decoder, rest, &last, true);
                return;
            }
            Decoded::Request { consumed, .. } => consumed,
            Decoded::Reply {
                consumed, close, ..
            } => {
                if close {
                    return;
                }
                consumed
            }
            Decoded::Close { .. } => return,
        };
        // A complete request is delimited: its own bytes alone decode the same way.
        let again = decoder.decode(&rest[..consumed]);
        assert_eq!(
            again,
            decoder.decode(rest),
            "a request decodes differently without the bytes after it"
        );
        rest = &rest[consumed..];
    }
}

fn check(decoder: &Decoder, buf: &[u8], decoded: &Decoded, eof: bool) {
    match decoded {
        Decoded::NeedMore => {
            assert!(!eof, "decode_eof returned NeedMore");
            assert!(
                buf.len() < decoder.max_request(),
                "NeedMore on {} bytes, max_request {}",
                buf.len(),
                decoder.max_request()
            );
        }
        Decoded::Request { consumed, .. } => {
            assert!(
                (1..=buf.len()).contains(consumed),
                "consumed {consumed} of {}",
                buf.len()
            );
        }
        Decoded::Reply {
            consumed, reply, ..
        } => {
            assert!(
                (1..=buf.len()).contains(consumed),
                "consumed {consumed} of {}",
                buf.len()
            );
            assert!(!reply.is_empty(), "empty failure reply");
        }
        Decoded::Close { consumed, .. } => {
            assert!(
                *consumed <= buf.len(),
                "consumed {consumed} of {}",
                buf.len()
            );
            assert!(
                *consumed > 0 || (eof && buf.is_empty()),
                "Close consumed nothing of {} bytes",
                buf.len()
            );
        }
    }
}
