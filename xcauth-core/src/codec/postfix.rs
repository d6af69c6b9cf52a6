//! Postfix `tcp_table` framing (docs/protocols.md §6): `get LOCAL@DOMAIN` lines answered
//! `200 OK`, `500 No such user` or `400 Trouble connecting to backend`.
//!
//! Only lower-case `get`, exactly one space, and the exact line `quit` are accepted
//! (`exit` is not). Unlike xcauth 2: the key is %-decoded as `tcp_table(5)` specifies
//! (`%XX`, hex digits of either case; a malformed escape is illegal) and the
//! character rules — no bytes 0x00–0x20, exactly one `@`, non-empty local part and
//! domain, valid UTF-8 — apply to the decoded key. A `%` in the decoded key (sent as
//! `%25`) is allowed. Anything else is answered `500 Illegal request format`, which
//! Postfix reads as "not found".

use super::{take_line, Answer, Decoded, Request, TakenLine, WHY_EOF, WHY_QUIT};
use crate::logsafe;
use crate::vocab::UserExists;

const ILLEGAL: &[u8] = b"500 Illegal request format\n";
const FOUND: &[u8] = b"200 OK\n";
const NOT_FOUND: &[u8] = b"500 No such user\n";
const TROUBLE: &[u8] = b"400 Trouble connecting to backend\n";

pub(super) fn decode(buf: &[u8], max_line: usize, eof: bool) -> Decoded {
    match take_line(buf, max_line, eof) {
        TakenLine::Complete { consumed, line } => match parse(line) {
            Some(Parsed::Quit) => Decoded::Close {
                consumed,
                why: WHY_QUIT,
            },
            Some(Parsed::Get { user, domain }) => Decoded::Request {
                consumed,
                request: Request::IsUser { user, domain },
            },
            None => {
                match std::str::from_utf8(line) {
                    Ok(text) => log::error!(
                        "postfix: illegal request format: {}",
                        logsafe::clean(text, 128)
                    ),
                    Err(_) => log::error!(
                        "postfix: illegal request format ({} bytes, not UTF-8)",
                        line.len()
                    ),
                }
                Decoded::Reply {
                    consumed,
                    reply: ILLEGAL.to_vec(),
                    close: false,
                    why: format!("illegal request format ({} bytes)", line.len()),
                }
            }
        },
        TakenLine::NeedMore => Decoded::NeedMore,
        TakenLine::Eof => Decoded::Close {
            consumed: 0,
            why: WHY_EOF,
        },
        TakenLine::Oversize => {
            log::error!(
                "postfix: request line longer than {max_line} bytes; answering illegal and \
                 closing"
            );
            Decoded::Reply {
                // Deterministic; the connection is closed anyway.
                consumed: max_line,
                reply: ILLEGAL.to_vec(),
                close: true,
                why: format!("request line longer than {max_line} bytes"),
            }
        }
    }
}

#[derive(Debug, PartialEq, Eq)]
enum Parsed {
    Quit,
    Get { user: String, domain: String },
}

/// Parses a line with its terminator stripped; `None` is an illegal request.
fn parse(line: &[u8]) -> Option<Parsed> {
    if line == b"quit" {
        return Some(Parsed::Quit);
    }
    let key = percent_decode(line.strip_prefix(b"get ")?)?;
    let key = String::from_utf8(key).ok()?;
    if key.bytes().any(|b| b <= b' ') {
        return None;
    }
    let (user, domain) = key.split_once('@')?;
    if user.is_empty() || domain.is_empty() || domain.contains('@') {
        return None;
    }
    Some(Parsed::Get {
        user: user.to_owned(),
        domain: domain.to_owned(),
    })
}

/// `tcp_table(5)` decoding: `%XX` (two hex digits, either case) is the byte 0xXX;
/// every other byte stands for itself. A `%` not followed by two hex digits is `None`.
fn percent_decode(raw: &[u8]) -> Option<Vec<u8>> {
    let mut out = Vec::with_capacity(raw.len());
    let mut bytes = raw.iter();
    while let Some(&b) = bytes.next() {
        if b == b'%' {
            let hi = hex(*bytes.next()?)?;
            let lo = hex(*bytes.next()?)?;
            out.push((hi << 4) | lo);
        } else {
            out.push(b);
        }
    }
    Some(out)
}

fn hex(b: u8) -> Option<u8> {
    match b {
        b'0'..=b'9' => Some(b - b'0'),
        b'a'..=b'f' => Some(b - b'a' + 10),
        b'A'..=b'F' => Some(b - b'A' + 10),
        _ => None,
    }
}

/// Only `isuser` exists in this framing. `auth` and `roster` answers cannot arise from
/// its decoder; they are encoded as `500 No such user`.
pub(super) fn encode(answer: &Answer<'_>, out: &mut Vec<u8>) {
    out.extend_from_slice(match answer {
        Answer::IsUser(UserExists::Yes) => FOUND,
        Answer::IsUser(UserExists::No) => NOT_FOUND,
        Answer::IsUser(UserExists::Unknown(_)) => TROUBLE,
        Answer::Auth(_) | Answer::Roster(_) => NOT_FOUND,
    });
}

#[cfg(test)]
mod tests {
    use super::super::testutil::{self, decode_all};
    use super::super::{Decoder, Framing, DEFAULT_MAX_LINE};
    use super::*;
    use crate::vocab::Unavailable;

    fn dec() -> Decoder {
        Decoder::new(Framing::Postfix, DEFAULT_MAX_LINE)
    }

    fn isuser(consumed: usize, user: &str, domain: &str) -> Decoded {
        Decoded::Request {
            consumed,
            request: Request::IsUser {
                user: user.into(),
                domain: domain.into(),
            },
        }
    }

    fn is_illegal(d: &Decoded, consumed_: usize, close_: bool) -> bool {
        matches!(d, Decoded::Reply { consumed, reply, close, .. }
            if *consumed == consumed_ && reply == ILLEGAL && *close == close_)
    }

    #[test]
    fn legal_requests() {
        let mut d = dec();
        let cases: &[(&[u8], &str, &str)] = &[
            (b"get alice@example.org\n", "alice", "example.org"),
            (b"get alice@example.org\r\n", "alice", "example.org"),
            (b"get al%69ce@example.org\n", "alice", "example.org"),
            (b"get al%6Ace@ex%2Eorg\n", "aljce", "ex.org"),
            (b"get 100%25@example.org\n", "100%", "example.org"),
            (
                "get jörg@bücher.example\n".as_bytes(),
                "jörg",
                "bücher.example",
            ),
            (b"get j%C3%B6rg@d\n", "jörg", "d"),
            (b"get a\x7f@b\n", "a\x7f", "b"),
            (b"get a@b\r\r\n", "a", "b"),
        ];
        for &(line, user, domain) in cases {
            assert_eq!(d.decode(line), isuser(line.len(), user, domain), "{line:?}");
        }
        assert!(matches!(
            d.decode(b"quit\n"),
            Decoded::Close { consumed: 5, .. }
        ));
    }

    #[test]
    fn illegal_requests() {
        let mut d = dec();
        for line in [
            &b"get we%20ird%25@example.org\n"[..],
            b"get a@b@c\n",
            b"get a%40b@c\n",
            b"GET a@b\n",
            b"get  a@b\n",
            b"get a@b \n",
            b"get a@b\tc\n",
            b"get a@b%09\n",
            b"get a@b%00\n",
            b"put a@b\n",
            b"get @b\n",
            b"get a@\n",
            b"get ab\n",
            b"get \n",
            b"get\n",
            b"exit\n",
            b"quit:x\n",
            b"QUIT\n",
            b"quit \n",
            b"get a%zz@b\n",
            b"get a%4@b\n",
            b"get a@b%\n",
            b"get a@b%4\n",
            b"get a%ff@b\n",
            b"get a%C3@b\n",
            b"get a\xff@b\n",
            b"\n",
            b"get a@b\rx\n",
        ] {
            assert!(is_illegal(&d.decode(line), line.len(), false), "{line:?}");
        }
    }

    #[test]
    fn pipelining_partial_and_eof() {
        let buf = b"get a@b\nbad\nget c@d\r\nquit\nget e@f";
        let mut d = dec();
        let (decoded, rest) = decode_all(&mut d, buf);
        assert_eq!(rest, 7);
        assert_eq!(decoded.len(), 4);
        assert_eq!(decoded[0], isuser(8, "a", "b"));
        assert!(is_illegal(&decoded[1], 4, false));
        assert_eq!(decoded[2], isuser(9, "c", "d"));
        assert!(matches!(decoded[3], Decoded::Close { consumed: 5, .. }));
        assert_eq!(d.decode_eof(&buf[buf.len() - 7..]), isuser(7, "e", "f"));
        assert!(matches!(
            d.decode_eof(b""),
            Decoded::Close { consumed: 0, .. }
        ));
        let line = b"get alice@example.org\n";
        for n in 0..line.len() {
            assert_eq!(d.decode(&line[..n]), Decoded::NeedMore);
        }
    }

    #[test]
    fn oversize() {
        let max = 12;
        let mut d = Decoder::new(Framing::Postfix, max);
        let exact = b"get abc@def\n";
        assert_eq!(exact.len(), max);
        assert_eq!(d.decode(exact), isuser(max, "abc", "def"));
        let long = b"get abcd@def\n";
        assert_eq!(long.len(), max + 1);
        assert!(is_illegal(&d.decode(long), max, true));
        assert!(is_illegal(&d.decode(&long[..max]), max, true));
        assert_eq!(d.decode(&long[..max - 1]), Decoded::NeedMore);
        assert!(is_illegal(&d.decode_eof(long), max, true));
    }

    #[test]
    fn replies() {
        let unknown = UserExists::Unknown(Unavailable::Status(503));
        let cases: [(Answer<'_>, &[u8]); 6] = [
            (Answer::IsUser(&UserExists::Yes), b"200 OK\n"),
            (Answer::IsUser(&UserExists::No), b"500 No such user\n"),
            (
                Answer::IsUser(&unknown),
                b"400 Trouble connecting to backend\n",
            ),
            (Answer::Auth(true), b"500 No such user\n"),
            (Answer::Auth(false), b"500 No such user\n"),
            (Answer::Roster(Some("{}")), b"500 No such user\n"),
        ];
        for (answer, bytes) in cases {
            let mut out = Vec::new();
            super::super::encode(Framing::Postfix, &answer, &mut out);
            assert_eq!(out, bytes, "{answer:?}");
        }
    }

    #[test]
    fn random_input_never_panics() {
        let tokens: &[&[u8]] = &[
            b"get ",
            b"quit",
            b"@",
            b"%",
            b"%2",
            b"%25",
            b"%C3%A4",
            b"%zz",
            b" ",
            b"\n",
            b"\r",
            b"a",
            b"\xff",
            b"\xc3\xa4",
        ];
        let templates = [
            "get {}@{}",
            "get {}",
            "get {}@{}@{}",
            "GET {}@{}",
            "get {}%{}@x",
            "get x%2{}@{}",
            "quit",
            "exit",
        ];
        let requests = testutil::line_robustness(
            Framing::Postfix,
            0x5151_7e57_0000_0001,
            [1, 2, 13, 64, DEFAULT_MAX_LINE],
            &templates,
            tokens,
        );
        assert!(requests > 1000, "only {requests} requests");
    }
}
