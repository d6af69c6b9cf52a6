//! Sans-I/O decoders and encoders for the four wire framings (docs/protocols.md).
//!
//! The caller owns the connection and its buffer. It appends what it reads and
//! calls [`Decoder::decode`] on the unconsumed bytes; the decoder looks at the
//! front of the buffer and takes at most one request, saying how many bytes it
//! used. At end of input the caller switches to [`Decoder::decode_eof`], which
//! never asks for more. Answers are turned into bytes by [`encode`].
//!
//! Bounds (docs/protocols.md §7): every decoder decides within a fixed
//! number of bytes, so the caller never has to buffer more than
//! [`Decoder::max_request`] bytes:
//!
//! | framing | bound |
//! |---|---|
//! | generic / prosody, postfix | `max_line` bytes including the `\n` (configurable) |
//! | ejabberd | 2 + 65535 bytes (the u16 length) |
//! | saslauthd | 4 × (2 + 65535) bytes (four counted strings) |
//!
//! [`Decoded::NeedMore`] is only ever returned for a buffer shorter than that
//! bound. Every decode is linear in the buffer, allocates at most the size of
//! the request it returns, and never panics (the per-framing tests feed
//! 20 000 random buffers through each decoder).
//!
//! Logging: warnings name the framing, field names and byte lengths, never the
//! request content; passwords are never logged (docs/xcauth2.md §6.4). Postfix lines,
//! which hold no secrets, are logged cleaned and truncated.

use std::fmt;

use crate::protocol::Protocol;
use crate::secret::Password;
use crate::vocab::UserExists;

mod ejabberd;
mod generic;
mod postfix;
mod saslauthd;
#[cfg(test)]
mod testutil;

/// The wire framing of one connection (option `-t`). `prosody` is [`Framing::Generic`].
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Framing {
    /// Line based `verb:user:domain[:password]` (`-t generic` / `-t prosody`), docs/protocols.md §3.
    Generic,
    /// u16 big-endian length + text, docs/protocols.md §4.
    Ejabberd,
    /// Cyrus saslauthd "mux" counted strings, docs/protocols.md §5.
    Saslauthd,
    /// Postfix `tcp_table` existence checks, docs/protocols.md §6.
    Postfix,
}

impl Framing {
    /// The framing a protocol speaks: `prosody` is [`Framing::Generic`]; `pam` is none of
    /// the four.
    pub fn of(protocol: Protocol) -> Option<Self> {
        match protocol {
            Protocol::Generic | Protocol::Prosody => Some(Framing::Generic),
            Protocol::Ejabberd => Some(Framing::Ejabberd),
            Protocol::Saslauthd => Some(Framing::Saslauthd),
            Protocol::Postfix => Some(Framing::Postfix),
            Protocol::Pam => None,
        }
    }

    /// The protocol whose name this framing goes by.
    pub fn protocol(self) -> Protocol {
        match self {
            Framing::Generic => Protocol::Generic,
            Framing::Ejabberd => Protocol::Ejabberd,
            Framing::Saslauthd => Protocol::Saslauthd,
            Framing::Postfix => Protocol::Postfix,
        }
    }

    /// The canonical name, as used by `-t` and in log lines.
    pub fn name(self) -> &'static str {
        self.protocol().as_str()
    }

    /// Parses a `-t` value; `prosody` is an alias of `generic`. Exact and lower-case.
    pub fn from_name(name: &str) -> Option<Self> {
        name.parse().ok().and_then(Self::of)
    }
}

impl fmt::Display for Framing {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.name())
    }
}

/// Default bound for generic/prosody and postfix lines, in bytes including the `\n`.
pub const DEFAULT_MAX_LINE: usize = 8192;

/// Largest ejabberd frame: the u16 header plus 65535 bytes of text.
const EJABBERD_MAX: usize = 2 + u16::MAX as usize;
/// Largest saslauthd request: four counted strings of at most 65535 bytes.
const SASLAUTHD_MAX: usize = 4 * (2 + u16::MAX as usize);

/// A request taken off the wire, before any back-end work.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Request {
    /// `auth:USER:DOMAIN:PASSWORD`, or a saslauthd group (login, password, -, realm).
    Auth {
        /// The user part as sent (no case folding).
        user: String,
        /// The domain (may be empty for saslauthd's empty realm).
        domain: String,
        /// The password; its `Debug` redacts.
        password: Password,
    },
    /// `isuser:USER:DOMAIN`, or postfix `get USER@DOMAIN`.
    IsUser {
        /// The user part as sent.
        user: String,
        /// The domain as sent.
        domain: String,
    },
    /// `roster:USER:DOMAIN` (generic and ejabberd only).
    Roster {
        /// The user part as sent.
        user: String,
        /// The domain as sent.
        domain: String,
    },
}

/// What [`Decoder::decode`] found at the front of the buffer.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Decoded {
    /// The request is incomplete. Guaranteed: the buffer is shorter than
    /// [`Decoder::max_request`] (otherwise a `Reply` with `close: true` is
    /// returned), so the caller can keep reading. Never returned by
    /// [`Decoder::decode_eof`].
    NeedMore,
    /// One complete request, taken from the first `consumed` bytes.
    Request {
        /// Bytes used, `1..=buf.len()`.
        consumed: usize,
        /// The request.
        request: Request,
    },
    /// Malformed input: send `reply` (the framing's failure reply), then close the
    /// connection if `close`, otherwise continue after `consumed` bytes.
    Reply {
        /// Bytes used, `1..=buf.len()`.
        consumed: usize,
        /// The framing's failure reply (never empty for the four framings here).
        reply: Vec<u8>,
        /// True after an oversize line: the rest of the stream cannot be resynchronised.
        close: bool,
        /// Log-safe description (lengths and field names, no content).
        why: String,
    },
    /// Stop without replying and close: `quit`/`exit`, ejabberd length 0 (logical EOF),
    /// a partial frame at end of input, or end of input itself.
    Close {
        /// Bytes used: `1..=buf.len()`, or 0 only from [`Decoder::decode_eof`] on an
        /// empty buffer (plain end of input).
        consumed: usize,
        /// Log-safe reason.
        why: &'static str,
    },
}

/// The result of handling a request, to be encoded in the connection's framing.
#[derive(Debug, Clone, Copy)]
pub enum Answer<'a> {
    /// Result of `auth` (also used for a malformed request: `Auth(false)`).
    Auth(bool),
    /// Result of `isuser`.
    IsUser(&'a UserExists),
    /// Result of `roster`: the raw HTTP body, or `None` when the request failed.
    Roster(Option<&'a str>),
}

/// Appends the reply for `answer` in `framing` to `out`.
///
/// | framing | true / success | false / failure |
/// |---|---|---|
/// | generic | `1\n` (roster: body + `\n`) | `0\n` (roster: `None\n`) |
/// | ejabberd | `00 02 00 01` | `00 02 00 00` |
/// | saslauthd | `00 0A OK success` | `00 20 NO xcauth authentication failure` |
/// | postfix | `200 OK\n` | `500 No such user\n` (`400 …` when unknown) |
///
/// `isuser` with an unknown outcome is a failure everywhere except postfix,
/// which has its own `400` reply. saslauthd has only `auth`; `isuser` and
/// `roster` answers encode as its failure reply. Postfix has only `isuser`;
/// `auth` and `roster` answers (which its decoder never produces) encode as
/// `500 No such user\n`.
pub fn encode(framing: Framing, answer: &Answer<'_>, out: &mut Vec<u8>) {
    match framing {
        Framing::Generic => generic::encode(answer, out),
        Framing::Ejabberd => ejabberd::encode(answer, out),
        Framing::Saslauthd => saslauthd::encode(answer, out),
        Framing::Postfix => postfix::encode(answer, out),
    }
}

/// The decoder of one connection. It holds no buffered data; the caller does.
#[derive(Debug, Clone)]
pub struct Decoder {
    framing: Framing,
    max_line: usize,
}

impl Decoder {
    /// A decoder for `framing`. `max_line` bounds generic/postfix lines (bytes including
    /// the `\n`; values below 1 are treated as 1); ejabberd is bounded by its u16 length
    /// (65535) and saslauthd by its four u16 field lengths (4 × 65535 + 8 in total).
    pub fn new(framing: Framing, max_line: usize) -> Self {
        Self {
            framing,
            max_line: max_line.max(1),
        }
    }

    /// The framing this decoder reads.
    pub fn framing(&self) -> Framing {
        self.framing
    }

    /// The most bytes one request can occupy: a buffer of this many bytes always
    /// decodes to something other than [`Decoded::NeedMore`].
    pub fn max_request(&self) -> usize {
        match self.framing {
            Framing::Generic | Framing::Postfix => self.max_line,
            Framing::Ejabberd => EJABBERD_MAX,
            Framing::Saslauthd => SASLAUTHD_MAX,
        }
    }

    /// Looks at the unconsumed bytes at the front of `buf` and takes at most one request.
    pub fn decode(&mut self, buf: &[u8]) -> Decoded {
        self.decode_inner(buf, false)
    }

    /// Same, at end of input: a final generic/postfix line without `\n` is still a
    /// request; a partial ejabberd/saslauthd frame is dropped (`Close`, no reply). On an
    /// empty buffer returns `Close { consumed: 0, .. }`. Never returns `NeedMore`.
    pub fn decode_eof(&mut self, buf: &[u8]) -> Decoded {
        self.decode_inner(buf, true)
    }

    fn decode_inner(&self, buf: &[u8], eof: bool) -> Decoded {
        match self.framing {
            Framing::Generic => generic::decode(buf, self.max_line, eof),
            Framing::Ejabberd => ejabberd::decode(buf, eof),
            Framing::Saslauthd => saslauthd::decode(buf, eof),
            Framing::Postfix => postfix::decode(buf, self.max_line, eof),
        }
    }
}

/// Reason for `Close` at end of input with nothing buffered.
const WHY_EOF: &str = "end of input";
/// Reason for `Close` on `quit`/`exit`.
const WHY_QUIT: &str = "quit requested";

/// One line cut from the front of a buffer (generic and postfix framings).
#[derive(Debug)]
enum TakenLine<'a> {
    /// A line, with trailing `\r`/`\n` already stripped.
    Complete { consumed: usize, line: &'a [u8] },
    /// No `\n` yet, and fewer than `max_line` bytes buffered.
    NeedMore,
    /// `max_line` bytes without a `\n`.
    Oversize,
    /// End of input with nothing buffered.
    Eof,
}

/// Cuts one line at the first `\n` (only `\n` splits; a lone `\r` stays inside).
/// A line may be at most `max_line` bytes including its `\n`. At end of input a final
/// unterminated line of fewer than `max_line` bytes counts as a line.
fn take_line(buf: &[u8], max_line: usize, eof: bool) -> TakenLine<'_> {
    let (window, _) = buf.split_at(buf.len().min(max_line));
    if let Some(at) = window.iter().position(|&b| b == b'\n') {
        let (line, _) = window.split_at(at);
        return TakenLine::Complete {
            consumed: at + 1,
            line: strip_eol(line),
        };
    }
    if buf.len() >= max_line {
        TakenLine::Oversize
    } else if !eof {
        TakenLine::NeedMore
    } else if buf.is_empty() {
        TakenLine::Eof
    } else {
        TakenLine::Complete {
            consumed: buf.len(),
            line: strip_eol(buf),
        }
    }
}

/// Strips all trailing `\r` and `\n` bytes.
fn strip_eol(mut line: &[u8]) -> &[u8] {
    while let [rest @ .., b'\r' | b'\n'] = line {
        line = rest;
    }
    line
}

/// What the shared dispatcher (docs/protocols.md §2) makes of a decoded text.
#[derive(Debug)]
enum Dispatched {
    Request(Request),
    /// First field `quit` or `exit`: stop, no reply.
    Quit,
    /// Anything else: answered `false`.
    Unsupported {
        fields: usize,
        verb_len: usize,
    },
}

/// The dispatcher of docs/protocols.md §2: split on `:` at most 3 times, exact case-sensitive
/// verbs, exact field counts; `quit`/`exit` as the first field quits whatever follows.
fn dispatch(text: &str) -> Dispatched {
    let mut f = [""; 4];
    let mut n = 0usize;
    for (slot, part) in f.iter_mut().zip(text.splitn(4, ':')) {
        *slot = part;
        n += 1;
    }
    match (n, f) {
        (_, ["quit" | "exit", ..]) => Dispatched::Quit,
        (4, ["auth", user, domain, password]) => Dispatched::Request(Request::Auth {
            user: user.to_owned(),
            domain: domain.to_owned(),
            password: Password::new(password),
        }),
        (3, ["isuser", user, domain, _]) => Dispatched::Request(Request::IsUser {
            user: user.to_owned(),
            domain: domain.to_owned(),
        }),
        (3, ["roster", user, domain, _]) => Dispatched::Request(Request::Roster {
            user: user.to_owned(),
            domain: domain.to_owned(),
        }),
        (fields, [verb, ..]) => Dispatched::Unsupported {
            fields,
            verb_len: verb.len(),
        },
    }
}

/// Decodes one text request (generic line or ejabberd frame body) with the shared
/// dispatcher; `failure` is the framing's `false` reply.
fn text_request(framing: Framing, consumed: usize, raw: &[u8], failure: &[u8]) -> Decoded {
    let Ok(text) = std::str::from_utf8(raw) else {
        log::warn!(
            "{}: request of {} bytes is not valid UTF-8; answering failure",
            framing.name(),
            raw.len()
        );
        return Decoded::Reply {
            consumed,
            reply: failure.to_vec(),
            close: false,
            why: format!("invalid UTF-8 in a request of {} bytes", raw.len()),
        };
    };
    match dispatch(text) {
        Dispatched::Request(request) => Decoded::Request { consumed, request },
        Dispatched::Quit => Decoded::Close {
            consumed,
            why: WHY_QUIT,
        },
        Dispatched::Unsupported { fields, verb_len } => {
            log::debug!(
                "{}: unsupported request ({fields} field(s), verb of {verb_len} bytes); \
                 answering failure",
                framing.name()
            );
            Decoded::Reply {
                consumed,
                reply: failure.to_vec(),
                close: false,
                why: format!("unsupported request ({fields} field(s), verb of {verb_len} bytes)"),
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn framing_names_round_trip() {
        for f in [
            Framing::Generic,
            Framing::Ejabberd,
            Framing::Saslauthd,
            Framing::Postfix,
        ] {
            assert_eq!(Framing::from_name(f.name()), Some(f));
            assert_eq!(f.to_string(), f.name());
        }
        assert_eq!(Framing::from_name("prosody"), Some(Framing::Generic));
        assert_eq!(Framing::from_name("Generic"), None);
    }

    #[test]
    fn dispatcher_rules() {
        let auth = |t: &str| match dispatch(t) {
            Dispatched::Request(Request::Auth {
                user,
                domain,
                password,
            }) => Some((user, domain, password.expose().to_owned())),
            _ => None,
        };
        assert_eq!(
            auth("auth:u:d:pass:with:colons"),
            Some(("u".into(), "d".into(), "pass:with:colons".into()))
        );
        assert_eq!(auth("auth:u:d:"), Some(("u".into(), "d".into(), "".into())));
        assert!(auth("auth:u:d").is_none());
        assert!(matches!(dispatch("quit"), Dispatched::Quit));
        assert!(matches!(dispatch("exit"), Dispatched::Quit));
        assert!(matches!(dispatch("quit:anything:at:all"), Dispatched::Quit));
        for t in [
            "",
            "AUTH:u:d:p",
            "setpass:u:d:p",
            "isuser:u:d:extra",
            "isuser:u",
            "roster:u:d:x",
            "Quit",
            " quit",
        ] {
            assert!(
                matches!(dispatch(t), Dispatched::Unsupported { .. }),
                "{t:?}"
            );
        }
        assert!(matches!(
            dispatch("isuser:u:"),
            Dispatched::Request(Request::IsUser { .. })
        ));
        assert!(matches!(
            dispatch("roster:u:d"),
            Dispatched::Request(Request::Roster { .. })
        ));
    }

    #[test]
    fn take_line_bounds() {
        // Exactly max_line bytes including the '\n' is accepted.
        assert!(matches!(
            take_line(b"abc\n", 4, false),
            TakenLine::Complete {
                consumed: 4,
                line: b"abc"
            }
        ));
        // max_line bytes without '\n' is oversize, one less is NeedMore.
        assert!(matches!(take_line(b"abcd", 4, false), TakenLine::Oversize));
        assert!(matches!(
            take_line(b"abcd\n", 4, false),
            TakenLine::Oversize
        ));
        assert!(matches!(take_line(b"abc", 4, false), TakenLine::NeedMore));
        assert!(matches!(
            take_line(b"abc", 4, true),
            TakenLine::Complete {
                consumed: 3,
                line: b"abc"
            }
        ));
        assert!(matches!(take_line(b"", 4, true), TakenLine::Eof));
        assert!(matches!(take_line(b"", 4, false), TakenLine::NeedMore));
        assert_eq!(strip_eol(b"a\r\n\r\r\n"), b"a");
        assert_eq!(strip_eol(b"\r\n"), b"");
        assert_eq!(strip_eol(b"a\rb"), b"a\rb");
    }

    #[test]
    fn request_debug_redacts_password() {
        let r = Request::Auth {
            user: "u".into(),
            domain: "d".into(),
            password: Password::new("hunter2"),
        };
        let out = format!("{r:?}");
        assert!(!out.contains("hunter2"), "{out}");
    }

    #[test]
    fn max_request_per_framing() {
        assert_eq!(Decoder::new(Framing::Generic, 100).max_request(), 100);
        assert_eq!(Decoder::new(Framing::Postfix, 0).max_request(), 1);
        assert_eq!(Decoder::new(Framing::Ejabberd, 1).max_request(), 65537);
        assert_eq!(
            Decoder::new(Framing::Saslauthd, 1).max_request(),
            4 * 65535 + 8
        );
    }
}
