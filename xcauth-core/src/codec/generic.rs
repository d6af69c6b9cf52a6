//! generic / prosody framing (docs/protocols.md §3): one `verb:user:domain[:password]`
//! request per line, `1\n` / `0\n` replies.
//!
//! Lines are split at `\n` only, on every transport, and all trailing `\r`/`\n` are
//! stripped (unlike xcauth 2: a lone `\r` never splits a request). Invalid UTF-8 is a
//! failed request (`0\n`), not a crash. A line longer than `max_line` gets `0\n` and
//! the connection is closed.

use super::{take_line, text_request, Answer, Decoded, Framing, TakenLine, WHY_EOF};
use crate::vocab::UserExists;

const TRUE: &[u8] = b"1\n";
const FALSE: &[u8] = b"0\n";

pub(super) fn decode(buf: &[u8], max_line: usize, eof: bool) -> Decoded {
    match take_line(buf, max_line, eof) {
        TakenLine::Complete { consumed, line } => {
            text_request(Framing::Generic, consumed, line, FALSE)
        }
        TakenLine::NeedMore => Decoded::NeedMore,
        TakenLine::Eof => Decoded::Close {
            consumed: 0,
            why: WHY_EOF,
        },
        TakenLine::Oversize => {
            log::warn!(
                "generic: request line longer than {max_line} bytes; answering failure and \
                 closing"
            );
            Decoded::Reply {
                // Deterministic (does not depend on how much more was read); the
                // connection is closed anyway.
                consumed: max_line,
                reply: FALSE.to_vec(),
                close: true,
                why: format!("request line longer than {max_line} bytes"),
            }
        }
    }
}

pub(super) fn encode(answer: &Answer<'_>, out: &mut Vec<u8>) {
    match answer {
        Answer::Auth(true) | Answer::IsUser(UserExists::Yes) => out.extend_from_slice(TRUE),
        Answer::Auth(false) | Answer::IsUser(UserExists::No | UserExists::Unknown(_)) => {
            out.extend_from_slice(FALSE)
        }
        // The raw body, even when it holds newlines (a non-standard extension).
        Answer::Roster(Some(body)) => {
            out.extend_from_slice(body.as_bytes());
            out.push(b'\n');
        }
        Answer::Roster(None) => out.extend_from_slice(b"None\n"),
    }
}

#[cfg(test)]
mod tests {
    use super::super::testutil::{self, decode_all};
    use super::super::{Decoder, Request, DEFAULT_MAX_LINE};
    use super::*;
    use crate::secret::Password;
    use crate::vocab::Unavailable;

    fn dec() -> Decoder {
        Decoder::new(Framing::Generic, DEFAULT_MAX_LINE)
    }

    fn auth(user: &str, domain: &str, password: &str) -> Request {
        Request::Auth {
            user: user.into(),
            domain: domain.into(),
            password: Password::new(password),
        }
    }

    fn isuser(user: &str, domain: &str) -> Request {
        Request::IsUser {
            user: user.into(),
            domain: domain.into(),
        }
    }

    fn req(consumed: usize, request: Request) -> Decoded {
        Decoded::Request { consumed, request }
    }

    fn is_reply(d: &Decoded, consumed_: usize, close_: bool) -> bool {
        matches!(d, Decoded::Reply { consumed, reply, close, .. }
            if *consumed == consumed_ && reply == FALSE && *close == close_)
    }

    #[test]
    fn requests() {
        let mut d = dec();
        assert_eq!(
            d.decode(b"auth:u:d:pass:with:colons\n"),
            req(26, auth("u", "d", "pass:with:colons"))
        );
        assert_eq!(d.decode(b"auth:u:d:pw\r\n"), req(13, auth("u", "d", "pw")));
        assert_eq!(
            d.decode(b"isuser:good:example.org\n"),
            req(24, isuser("good", "example.org"))
        );
        assert_eq!(
            d.decode(b"roster:u:d\n"),
            req(
                11,
                Request::Roster {
                    user: "u".into(),
                    domain: "d".into()
                }
            )
        );
        // Non-ASCII text is fine.
        assert_eq!(
            d.decode("isuser:jörg:bücher.example\n".as_bytes()),
            req(29, isuser("jörg", "bücher.example"))
        );
    }

    #[test]
    fn lone_cr_does_not_split() {
        // One line with 4 fields: verb "isuser" with 4 fields → failure.
        let buf = b"isuser:nobody:e\rauth:good:e:pw\n";
        let mut d = dec();
        assert!(is_reply(&d.decode(buf), buf.len(), false));
    }

    #[test]
    fn failures_and_quit() {
        let mut d = dec();
        for line in [
            &b"isuser:u:d:extra\n"[..],
            b"auth:u:d\n",
            b"\n",
            b"\r\n",
            b"AUTH:u:d:p\n",
            b"setpass:u:d:p\n",
            b"tryregister:u:d:p\n",
            b"garbage\n",
        ] {
            assert!(is_reply(&d.decode(line), line.len(), false), "{line:?}");
        }
        for line in [
            &b"quit\n"[..],
            b"exit\n",
            b"quit:anything\n",
            b"exit:a:b:c\r\n",
        ] {
            assert!(
                matches!(d.decode(line), Decoded::Close { consumed, .. } if consumed == line.len()),
                "{line:?}"
            );
        }
    }

    #[test]
    fn invalid_utf8_is_failure_and_continues() {
        let buf = b"auth:u:d:\xff\xfe\nisuser:u:d\n";
        let mut d = dec();
        let first = d.decode(buf);
        assert!(is_reply(&first, 12, false), "{first:?}");
        assert_eq!(d.decode(&buf[12..]), req(11, isuser("u", "d")));
    }

    #[test]
    fn pipelining() {
        let buf = b"isuser:a:d\nauth:b:d:p:q\r\nbogus\nroster:c:d\nquit\nisuser:z:z\n";
        let mut d = dec();
        let (decoded, rest) = decode_all(&mut d, buf);
        assert_eq!(rest, 0);
        assert_eq!(decoded.len(), 6);
        assert_eq!(decoded[0], req(11, isuser("a", "d")));
        assert_eq!(decoded[1], req(14, auth("b", "d", "p:q")));
        assert!(is_reply(&decoded[2], 6, false));
        assert!(matches!(decoded[3], Decoded::Request { consumed: 11, .. }));
        assert!(matches!(decoded[4], Decoded::Close { consumed: 5, .. }));
        assert_eq!(decoded[5], req(11, isuser("z", "z")));
    }

    #[test]
    fn partial_then_complete() {
        let full = b"auth:u:d:pw\n";
        let mut d = dec();
        for n in 0..full.len() {
            assert_eq!(d.decode(&full[..n]), Decoded::NeedMore, "{n}");
        }
        assert_eq!(d.decode(full), req(12, auth("u", "d", "pw")));
    }

    #[test]
    fn eof() {
        let mut d = dec();
        assert_eq!(d.decode_eof(b"isuser:u:d"), req(10, isuser("u", "d")));
        assert_eq!(d.decode_eof(b"isuser:u:d\r"), req(11, isuser("u", "d")));
        assert!(matches!(
            d.decode_eof(b""),
            Decoded::Close { consumed: 0, .. }
        ));
        assert!(is_reply(&d.decode_eof(b"nonsense"), 8, false));
        assert!(matches!(
            d.decode_eof(b"quit"),
            Decoded::Close { consumed: 4, .. }
        ));
        // A complete line at EOF behaves as without EOF.
        assert_eq!(d.decode_eof(b"isuser:u:d\nxx"), req(11, isuser("u", "d")));
    }

    #[test]
    fn oversize() {
        let max = 16;
        let mut d = Decoder::new(Framing::Generic, max);
        // Exactly max bytes including '\n' is accepted.
        let mut line = b"isuser:u:".to_vec();
        line.resize(max - 1, b'x');
        line.push(b'\n');
        assert_eq!(line.len(), max);
        assert_eq!(d.decode(&line), req(max, isuser("u", "xxxxxx")));
        // max + 1 bytes including '\n': rejected and closed, whether or not the '\n' is here.
        let mut long = b"isuser:u:".to_vec();
        long.resize(max, b'x');
        assert!(is_reply(&d.decode(&long), max, true));
        long.push(b'\n');
        assert!(is_reply(&d.decode(&long), max, true));
        assert!(is_reply(&d.decode_eof(&long), max, true));
        // max - 1 bytes without '\n': still waiting; at EOF a request.
        assert_eq!(d.decode(&long[..max - 1]), Decoded::NeedMore);
        assert_eq!(
            d.decode_eof(&long[..max - 1]),
            req(max - 1, isuser("u", "xxxxxx"))
        );
    }

    #[test]
    fn replies() {
        let unknown = UserExists::Unknown(Unavailable::NotJson);
        let cases: [(Answer<'_>, &[u8]); 7] = [
            (Answer::Auth(true), b"1\n"),
            (Answer::Auth(false), b"0\n"),
            (Answer::IsUser(&UserExists::Yes), b"1\n"),
            (Answer::IsUser(&UserExists::No), b"0\n"),
            (Answer::IsUser(&unknown), b"0\n"),
            (Answer::Roster(Some("{\"a\":\n1}")), b"{\"a\":\n1}\n"),
            (Answer::Roster(None), b"None\n"),
        ];
        for (answer, bytes) in cases {
            let mut out = Vec::new();
            super::super::encode(Framing::Generic, &answer, &mut out);
            assert_eq!(out, bytes, "{answer:?}");
        }
    }

    #[test]
    fn random_input_never_panics() {
        let tokens: &[&[u8]] = &[
            b"auth:",
            b"isuser:",
            b"roster:",
            b"quit",
            b"exit",
            b":",
            b"\n",
            b"\r",
            b"\r\n",
            b"\xff",
            b"\xc3\xa4",
            b"\xc3",
            b"u",
            b"d",
        ];
        let templates = [
            "auth:{}:{}:{}",
            "auth:{}:{}",
            "isuser:{}:{}",
            "isuser:{}:{}:{}",
            "roster:{}:{}",
            "quit",
            "exit:{}",
            "{}",
        ];
        let requests = testutil::line_robustness(
            Framing::Generic,
            0x9e37_79b9_7f4a_7c15,
            [1, 2, 17, 64, DEFAULT_MAX_LINE],
            &templates,
            tokens,
        );
        assert!(requests > 2000, "only {requests} requests");
    }
}
