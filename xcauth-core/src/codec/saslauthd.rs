//! saslauthd "mux" framing (docs/protocols.md §5): four counted strings
//! `[u16 BE length][bytes]` — login, password, service, realm — per `auth` request;
//! replies `[u16 BE length]OK success` / `NO xcauth authentication failure`.
//!
//! Zero-length fields are allowed (no EOF meaning here); the service is ignored; an
//! empty realm is an empty domain. A partial group at end of input gets no reply.
//! Unlike xcauth 2: a field with invalid UTF-8 is answered `NO` without a back-end
//! call, and logs name only the field and its length. The password is never logged.

use super::{Answer, Decoded, Request, WHY_EOF};
use crate::logsafe;
use crate::secret::Password;

const OK: &[u8] = b"\x00\x0aOK success";
const NO: &[u8] = b"\x00\x20NO xcauth authentication failure";

const FIELDS: [&str; 4] = ["login", "password", "service", "realm"];

/// Reads one counted string at the front of `buf`: its content and the rest.
fn counted(buf: &[u8]) -> Option<(&[u8], &[u8])> {
    let (header, rest) = buf.split_first_chunk::<2>()?;
    let len = usize::from(u16::from_be_bytes(*header));
    if rest.len() < len {
        return None;
    }
    Some(rest.split_at(len))
}

pub(super) fn decode(buf: &[u8], eof: bool) -> Decoded {
    let mut fields: [&[u8]; 4] = [&[]; 4];
    let mut rest = buf;
    for field in &mut fields {
        let Some((value, tail)) = counted(rest) else {
            return incomplete(buf, eof);
        };
        *field = value;
        rest = tail;
    }
    let consumed = buf.len() - rest.len();

    let mut text: [&str; 4] = [""; 4];
    for ((slot, raw), name) in text.iter_mut().zip(fields).zip(FIELDS) {
        match std::str::from_utf8(raw) {
            Ok(s) => *slot = s,
            Err(_) => {
                log::warn!(
                    "saslauthd: {name} field of {} bytes is not valid UTF-8; answering failure",
                    raw.len()
                );
                return Decoded::Reply {
                    consumed,
                    reply: NO.to_vec(),
                    close: false,
                    why: format!("invalid UTF-8 in the {name} field ({} bytes)", raw.len()),
                };
            }
        }
    }
    let [login, password, service, realm] = text;
    log::debug!(
        "saslauthd: request login={} service={} realm={}",
        logsafe::clean(login, 128),
        logsafe::clean(service, 128),
        logsafe::clean(realm, 128)
    );
    Decoded::Request {
        consumed,
        request: Request::Auth {
            user: login.to_owned(),
            domain: realm.to_owned(),
            password: Password::new(password),
        },
    }
}

/// An incomplete group: wait for more, or drop it at end of input.
fn incomplete(buf: &[u8], eof: bool) -> Decoded {
    if !eof {
        Decoded::NeedMore
    } else if buf.is_empty() {
        Decoded::Close {
            consumed: 0,
            why: WHY_EOF,
        }
    } else {
        log::warn!(
            "saslauthd: premature EOF inside a request ({} bytes); no reply",
            buf.len()
        );
        Decoded::Close {
            consumed: buf.len(),
            why: "premature end of input inside a saslauthd request",
        }
    }
}

/// Only `auth` exists in this framing; any other answer is the failure reply.
pub(super) fn encode(answer: &Answer<'_>, out: &mut Vec<u8>) {
    out.extend_from_slice(match answer {
        Answer::Auth(true) => OK,
        _ => NO,
    });
}

#[cfg(test)]
mod tests {
    use super::super::testutil::{self, decode_all, Rng};
    use super::super::{Decoder, Framing};
    use super::*;
    use crate::vocab::UserExists;

    fn group(fields: [&[u8]; 4]) -> Vec<u8> {
        let mut out = Vec::new();
        for f in fields {
            out.extend_from_slice(&u16::try_from(f.len()).unwrap().to_be_bytes());
            out.extend_from_slice(f);
        }
        out
    }

    fn auth(consumed: usize, user: &str, domain: &str, password: &str) -> Decoded {
        Decoded::Request {
            consumed,
            request: Request::Auth {
                user: user.into(),
                domain: domain.into(),
                password: Password::new(password),
            },
        }
    }

    fn dec() -> Decoder {
        Decoder::new(Framing::Saslauthd, 16)
    }

    #[test]
    fn requests() {
        let mut d = dec();
        let g = group([b"alice", b"pw:with:colons", b"imap", b"example.org"]);
        assert_eq!(g.len(), 8 + 5 + 14 + 4 + 11);
        assert_eq!(
            d.decode(&g),
            auth(g.len(), "alice", "example.org", "pw:with:colons")
        );
        // Zero-length fields are not EOF; an empty realm is an empty domain.
        let g = group([b"bob", b"", b"", b""]);
        assert_eq!(g, b"\x00\x03bob\x00\x00\x00\x00\x00\x00");
        assert_eq!(d.decode(&g), auth(11, "bob", "", ""));
        let g = group([b"", b"", b"", b""]);
        assert_eq!(d.decode(&g), auth(8, "", "", ""));
    }

    #[test]
    fn pipelining_and_partial() {
        let mut buf = group([b"a", b"p1", b"s", b"r"]);
        let first = buf.len();
        buf.extend_from_slice(&group([b"b", b"p2", b"", b"r2"]));
        let mut d = dec();
        let (decoded, rest) = decode_all(&mut d, &buf);
        assert_eq!(rest, 0);
        assert_eq!(
            decoded,
            vec![
                auth(first, "a", "r", "p1"),
                auth(buf.len() - first, "b", "r2", "p2")
            ]
        );
        for n in 0..first {
            assert_eq!(d.decode(&buf[..n]), Decoded::NeedMore, "{n}");
            if n > 0 {
                assert!(matches!(
                    d.decode_eof(&buf[..n]),
                    Decoded::Close { consumed, .. } if consumed == n
                ));
            }
        }
        assert!(matches!(
            d.decode_eof(b""),
            Decoded::Close { consumed: 0, .. }
        ));
    }

    #[test]
    fn invalid_utf8_in_any_field() {
        let mut d = dec();
        for i in 0..4 {
            let mut fields: [&[u8]; 4] = [b"u", b"p", b"s", b"r"];
            fields[i] = b"\xc3(";
            let g = group(fields);
            match d.decode(&g) {
                Decoded::Reply {
                    consumed,
                    reply,
                    close: false,
                    why,
                } => {
                    assert_eq!(consumed, g.len());
                    assert_eq!(reply, NO);
                    assert!(why.contains(FIELDS[i]), "{why}");
                }
                other => panic!("{other:?}"),
            }
        }
    }

    #[test]
    fn bound() {
        let mut d = dec();
        let max = vec![0x61; 65535];
        let g = group([&max, &max, &max, &max]);
        assert_eq!(g.len(), d.max_request());
        assert_eq!(d.decode(&g[..g.len() - 1]), Decoded::NeedMore);
        assert!(matches!(d.decode(&g), Decoded::Request { consumed, .. } if consumed == g.len()));
    }

    #[test]
    fn replies() {
        let cases: [(Answer<'_>, &[u8]); 4] = [
            (Answer::Auth(true), b"\x00\x0aOK success"),
            (
                Answer::Auth(false),
                b"\x00\x20NO xcauth authentication failure",
            ),
            (Answer::IsUser(&UserExists::Yes), NO),
            (Answer::Roster(Some("{}")), NO),
        ];
        for (answer, bytes) in cases {
            let mut out = Vec::new();
            super::super::encode(Framing::Saslauthd, &answer, &mut out);
            assert_eq!(out, bytes, "{answer:?}");
        }
        assert_eq!(OK.len(), 2 + 10);
        assert_eq!(NO.len(), 2 + 32);
    }

    /// A few well-formed groups of short fields, then maybe truncated or with one
    /// byte changed.
    fn groups(rng: &mut Rng) -> Vec<u8> {
        let mut out = Vec::new();
        for _ in 0..rng.below(4) {
            for _ in 0..4 {
                let len = rng.below(6);
                out.extend_from_slice(&(len as u16).to_be_bytes());
                for _ in 0..len {
                    let b = if rng.below(20) == 0 { rng.byte() } else { b'a' };
                    out.push(b);
                }
            }
        }
        rng.damage(&mut out);
        out
    }

    #[test]
    fn random_input_never_panics() {
        let tokens: &[&[u8]] = &[
            b"\x00\x00",
            b"\x00\x01",
            b"u",
            b"\xff",
            b"\xc3\xa4",
            b"\x00",
        ];
        let mut rng = Rng::new(0xdead_beef_cafe_f00d);
        let (_, requests) = testutil::robustness(
            Framing::Saslauthd,
            16,
            20_000,
            |rng: &mut Rng| {
                if rng.below(4000) == 0 {
                    // Near and above the bound: four maximal fields, give or take.
                    let mut big = Vec::new();
                    for _ in 0..4 {
                        big.extend_from_slice(&[0xff, 0xff]);
                        big.resize(big.len() + 65535, b'x');
                    }
                    let len = big.len() - 6 + rng.below(12);
                    big.resize(len, b'x');
                    big
                } else if rng.below(2) == 0 {
                    rng.tokens(tokens, 64)
                } else {
                    groups(rng)
                }
            },
            &mut rng,
        );
        assert!(requests > 2000, "only {requests} requests");
    }
}
