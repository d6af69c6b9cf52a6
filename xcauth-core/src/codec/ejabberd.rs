//! ejabberd framing (docs/protocols.md §4): `[u16 BE length N][N bytes of UTF-8 text]`,
//! the text handled by the shared dispatcher; 4-byte replies `00 02 00 0x`.
//!
//! Length 0 is a logical EOF (close, no reply). A partial frame at end of input is
//! dropped without a reply. Unlike xcauth 2 (docs/xcauth2.md §7): invalid UTF-8 in a complete frame is a
//! failed request (`00 02 00 00`), and `roster` answers success only when the
//! sharedroster request succeeded.

use super::{text_request, Answer, Decoded, Framing, WHY_EOF};
use crate::vocab::UserExists;

const TRUE: &[u8] = &[0, 2, 0, 1];
const FALSE: &[u8] = &[0, 2, 0, 0];

pub(super) fn decode(buf: &[u8], eof: bool) -> Decoded {
    let Some((header, rest)) = buf.split_first_chunk::<2>() else {
        return if !eof {
            Decoded::NeedMore
        } else if buf.is_empty() {
            Decoded::Close {
                consumed: 0,
                why: WHY_EOF,
            }
        } else {
            // A single trailing byte: the original stops silently.
            Decoded::Close {
                consumed: buf.len(),
                why: "end of input inside a frame header",
            }
        };
    };
    let len = usize::from(u16::from_be_bytes(*header));
    if len == 0 {
        log::info!("ejabberd: command length 0, treating as logical EOF");
        return Decoded::Close {
            consumed: 2,
            why: "ejabberd command length 0 (logical EOF)",
        };
    }
    let Some(text) = rest.get(..len) else {
        if !eof {
            return Decoded::NeedMore;
        }
        log::warn!(
            "ejabberd: premature EOF while reading a command: got {} of {len} bytes",
            rest.len()
        );
        return Decoded::Close {
            consumed: buf.len(),
            why: "premature end of input inside a frame",
        };
    };
    text_request(Framing::Ejabberd, 2 + len, text, FALSE)
}

pub(super) fn encode(answer: &Answer<'_>, out: &mut Vec<u8>) {
    let ok = match answer {
        Answer::Auth(ok) => *ok,
        Answer::IsUser(exists) => matches!(exists, UserExists::Yes),
        Answer::Roster(body) => body.is_some(),
    };
    out.extend_from_slice(if ok { TRUE } else { FALSE });
}

#[cfg(test)]
mod tests {
    use super::super::testutil::{self, decode_all, Rng};
    use super::super::{Decoder, Request};
    use super::*;
    use crate::secret::Password;
    use crate::vocab::Unavailable;

    fn dec() -> Decoder {
        Decoder::new(Framing::Ejabberd, 16)
    }

    fn frame(text: &[u8]) -> Vec<u8> {
        let mut out = u16::try_from(text.len()).unwrap().to_be_bytes().to_vec();
        out.extend_from_slice(text);
        out
    }

    fn is_false(d: &Decoded, consumed_: usize) -> bool {
        matches!(d, Decoded::Reply { consumed, reply, close: false, .. }
            if *consumed == consumed_ && reply == FALSE)
    }

    #[test]
    fn example_exchange() {
        let mut input = b"\x00\x17isuser:good:example.org".to_vec();
        input.extend_from_slice(b"\x00\x24auth:good:example.org:pw:with:colons");
        input.extend_from_slice(b"\x00\x04quit");
        let mut d = dec();
        let (decoded, rest) = decode_all(&mut d, &input);
        assert_eq!(rest, 0);
        assert_eq!(
            decoded,
            vec![
                Decoded::Request {
                    consumed: 0x19,
                    request: Request::IsUser {
                        user: "good".into(),
                        domain: "example.org".into()
                    }
                },
                Decoded::Request {
                    consumed: 0x26,
                    request: Request::Auth {
                        user: "good".into(),
                        domain: "example.org".into(),
                        password: Password::new("pw:with:colons")
                    }
                },
                Decoded::Close {
                    consumed: 6,
                    why: super::super::WHY_QUIT
                },
            ]
        );
        let mut out = Vec::new();
        super::super::encode(
            Framing::Ejabberd,
            &Answer::IsUser(&UserExists::Yes),
            &mut out,
        );
        super::super::encode(Framing::Ejabberd, &Answer::Auth(true), &mut out);
        assert_eq!(out, b"\x00\x02\x00\x01\x00\x02\x00\x01");
    }

    #[test]
    fn failures_quit_and_logical_eof() {
        let mut d = dec();
        for text in [
            &b"isuser:u:d:extra"[..],
            b"setpass:u:d:p",
            b"AUTH:u:d:p",
            b"auth:u:d",
        ] {
            let f = frame(text);
            assert!(is_false(&d.decode(&f), f.len()), "{text:?}");
        }
        // No line-terminator stripping in this framing: the text is taken as is.
        assert_eq!(
            d.decode(&frame(b"isuser:u:d\n")),
            Decoded::Request {
                consumed: 13,
                request: Request::IsUser {
                    user: "u".into(),
                    domain: "d\n".into()
                }
            }
        );
        // Invalid UTF-8: failure, then the next frame is read.
        let mut f = frame(b"auth:u:d:\xff");
        let n = f.len();
        f.extend_from_slice(&frame(b"roster:u:d"));
        assert!(is_false(&d.decode(&f), n));
        assert!(matches!(
            d.decode(&f[n..]),
            Decoded::Request {
                request: Request::Roster { .. },
                ..
            }
        ));
        for text in [&b"quit"[..], b"exit", b"quit:x"] {
            let f = frame(text);
            assert!(matches!(d.decode(&f), Decoded::Close { consumed, .. } if consumed == f.len()));
        }
        assert!(matches!(
            d.decode(b"\x00\x00\x00\x04quit"),
            Decoded::Close { consumed: 2, .. }
        ));
    }

    #[test]
    fn partial_frames() {
        let f = frame(b"auth:u:d:pw");
        let mut d = dec();
        for n in 0..f.len() {
            assert_eq!(d.decode(&f[..n]), Decoded::NeedMore, "{n}");
        }
        assert!(matches!(
            d.decode(&f),
            Decoded::Request { consumed: 13, .. }
        ));
        // The largest frame needs all 65537 bytes.
        let mut big = vec![0xff, 0xff];
        big.resize(65536, b'a');
        assert_eq!(d.decode(&big), Decoded::NeedMore);
        big.push(b'a');
        assert!(is_false(&d.decode(&big), 65537));
    }

    #[test]
    fn eof() {
        let mut d = dec();
        assert!(matches!(
            d.decode_eof(b""),
            Decoded::Close { consumed: 0, .. }
        ));
        assert!(matches!(
            d.decode_eof(b"\x00"),
            Decoded::Close { consumed: 1, .. }
        ));
        assert!(matches!(
            d.decode_eof(b"\x00\x0bauth:u:d:p"),
            Decoded::Close { consumed: 12, .. }
        ));
        assert!(matches!(
            d.decode_eof(b"\x00\x0aauth:u:d:p"),
            Decoded::Request { consumed: 12, .. }
        ));
    }

    #[test]
    fn replies() {
        let unknown = UserExists::Unknown(Unavailable::CircuitOpen);
        let cases: [(Answer<'_>, &[u8]); 7] = [
            (Answer::Auth(true), TRUE),
            (Answer::Auth(false), FALSE),
            (Answer::IsUser(&UserExists::Yes), TRUE),
            (Answer::IsUser(&UserExists::No), FALSE),
            (Answer::IsUser(&unknown), FALSE),
            (Answer::Roster(Some("{}")), TRUE),
            (Answer::Roster(None), FALSE),
        ];
        for (answer, bytes) in cases {
            let mut out = Vec::new();
            super::super::encode(Framing::Ejabberd, &answer, &mut out);
            assert_eq!(out, bytes, "{answer:?}");
        }
    }

    /// A few frames of templated text (usually with the right length), then maybe
    /// truncated or with one byte changed.
    fn frames(rng: &mut Rng, templates: &[&str]) -> Vec<u8> {
        let mut out = Vec::new();
        for _ in 0..rng.below(4) {
            let t = templates[rng.below(templates.len())];
            let text = t.replace("{}", &rng.word());
            let len = if rng.below(10) == 0 {
                rng.below(40)
            } else {
                text.len()
            };
            out.extend_from_slice(&(len as u16).to_be_bytes());
            out.extend_from_slice(text.as_bytes());
        }
        rng.damage(&mut out);
        out
    }

    #[test]
    fn random_input_never_panics() {
        let tokens: &[&[u8]] = &[
            b"auth:", b"isuser:", b"roster:", b"quit", b"exit", b":", b"\xff", b"u", b"\x00",
        ];
        let templates = [
            "auth:{}:{}:{}",
            "isuser:{}:{}",
            "isuser:{}:{}:{}",
            "roster:{}:{}",
            "quit",
            "{}",
        ];
        let mut rng = Rng::new(0x0123_4567_89ab_cdef);
        let (_, requests) = testutil::robustness(
            Framing::Ejabberd,
            16,
            20_000,
            |rng: &mut Rng| {
                if rng.below(2000) == 0 {
                    // Near and above the bound.
                    let mut big = vec![0xff, 0xff];
                    let len = 65530 + rng.below(12);
                    big.resize(len, b'q');
                    big
                } else if rng.below(3) == 0 {
                    rng.tokens(tokens, 96)
                } else {
                    frames(rng, &templates)
                }
            },
            &mut rng,
        );
        assert!(requests > 2000, "only {requests} requests");
    }
}
