//! The sans-I/O codec of the PAM socket protocol: frames, requests and replies (the wire
//! format is described in [`super`]). Needs nothing but [`Via`] and [`Password`].

use std::fmt;

use zeroize::Zeroizing;

use crate::secret::Password;
use crate::vocab::Via;

/// Protocol version carried in the first payload byte. Version 2 added the uid of the account
/// that logged in, version 3 the remote host of an auth request (for the throttle), version 4
/// the stats request (`xcauthd stats`); module and daemon are shipped together.
pub const PROTOCOL_VERSION: u8 = 4;
/// Largest payload accepted or produced, in bytes. Big enough for a user in a few thousand
/// groups; requests are far smaller because of the field limits below.
pub const MAX_FRAME: usize = 64 * 1024;
/// Largest user name or domain, in bytes (UTF-8).
pub const MAX_NAME: usize = 1024;
/// Largest password, in bytes (UTF-8). Longer ones are refused by the module before sending.
pub const MAX_PASSWORD: usize = 4096;
/// Largest key of a stats reply, in bytes.
pub const MAX_STATS_KEY: usize = 1024;

const OP_AUTH: u8 = b'a';
const OP_ISUSER: u8 = b'u';
const OP_GROUPS: u8 = b'g';
const OP_STATS: u8 = b's';
const R_ACCEPTED: u8 = b'A';
const R_REJECTED: u8 = b'R';
const R_EXISTS: u8 = b'Y';
const R_NO_USER: u8 = b'N';
const R_GROUPS: u8 = b'G';
const R_STATS: u8 = b'S';
const R_UNAVAILABLE: u8 = b'U';
const R_ERROR: u8 = b'E';

/// A question from the PAM module.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum PamRequest {
    /// Check `password` (or a token) for `user@domain`.
    Auth {
        /// Local part.
        user: String,
        /// XMPP domain.
        domain: String,
        /// The password; its `Debug` is redacted.
        password: Password,
        /// The module needs the uid of the account that logged in.
        need_uid: bool,
        /// Where the login comes from (`PAM_RHOST`); empty when the host did not say.
        rhost: String,
    },
    /// Does `user@domain` exist?
    IsUser {
        /// Local part.
        user: String,
        /// XMPP domain.
        domain: String,
    },
    /// Which Nextcloud groups is the account `uid` in (on the backend serving `domain`)?
    Groups {
        /// The Nextcloud uid an `Accepted` reply named.
        uid: String,
        /// XMPP domain.
        domain: String,
    },
    /// The daemon's counters (`xcauthd stats`); not counted itself.
    Stats,
}

impl PamRequest {
    /// The operation's name for logs (`auth`, `isuser`, `groups`).
    pub fn op(&self) -> &'static str {
        match self {
            PamRequest::Auth { .. } => "auth",
            PamRequest::IsUser { .. } => "isuser",
            PamRequest::Groups { .. } => "groups",
            PamRequest::Stats => "stats",
        }
    }
}

/// The daemon's answer.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum PamReply {
    /// `auth`: log in.
    Accepted {
        /// How the login was vouched for.
        via: Via,
        /// The Nextcloud account that logged in, when known.
        uid: Option<String>,
    },
    /// `auth`: wrong password or unknown user.
    Rejected,
    /// `isuser`: the user exists.
    Exists,
    /// `isuser`: no such user.
    NoSuchUser,
    /// `groups`: the group display names (possibly none).
    Groups(Vec<String>),
    /// `stats`: every counter as `key value`, in the daemon's order.
    Stats(Vec<(String, u64)>),
    /// Any operation: the backend could not answer, with a log-safe reason.
    Unavailable(String),
    /// The request was not understood; the server closes the connection.
    Error(String),
}

/// Why a payload could not be encoded or decoded.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum CodecError {
    /// A frame header announced an empty payload.
    Empty,
    /// A payload is longer than [`MAX_FRAME`].
    TooLong(usize),
    /// The first byte is not [`PROTOCOL_VERSION`].
    Version(u8),
    /// An unknown operation or reply code.
    UnknownCode(u8),
    /// The payload ended in the middle of a field.
    Truncated,
    /// Bytes left after the last field.
    Trailing(usize),
    /// A string field is not UTF-8.
    NotUtf8,
    /// A field exceeds its limit ([`MAX_NAME`], [`MAX_PASSWORD`], 65535).
    FieldTooLong(&'static str),
}

impl fmt::Display for CodecError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            CodecError::Empty => f.write_str("empty frame"),
            CodecError::TooLong(n) => write!(f, "frame of {n} bytes exceeds {MAX_FRAME}"),
            CodecError::Version(v) => write!(f, "unsupported protocol version {v}"),
            CodecError::UnknownCode(c) => write!(f, "unknown message code 0x{c:02x}"),
            CodecError::Truncated => f.write_str("truncated message"),
            CodecError::Trailing(n) => write!(f, "{n} unexpected bytes after the message"),
            CodecError::NotUtf8 => f.write_str("a text field is not UTF-8"),
            CodecError::FieldTooLong(what) => write!(f, "{what} too long"),
        }
    }
}

impl std::error::Error for CodecError {}

/// The payload length announced by a frame header, validated against [`MAX_FRAME`].
pub fn frame_len(header: [u8; 4]) -> Result<usize, CodecError> {
    let len = usize::try_from(u32::from_be_bytes(header)).unwrap_or(usize::MAX);
    match len {
        0 => Err(CodecError::Empty),
        n if n > MAX_FRAME => Err(CodecError::TooLong(n)),
        n => Ok(n),
    }
}

/// A whole frame (header + payload) for `req`. The buffer holds the password and is wiped
/// when dropped.
pub fn encode_request(req: &PamRequest) -> Result<Zeroizing<Vec<u8>>, CodecError> {
    let mut out = Zeroizing::new(vec![0, 0, 0, 0, PROTOCOL_VERSION]);
    match req {
        PamRequest::Auth {
            user,
            domain,
            password,
            need_uid,
            rhost,
        } => {
            out.push(OP_AUTH);
            out.push(u8::from(*need_uid));
            put_str(&mut out, user, MAX_NAME, "user name")?;
            put_str(&mut out, domain, MAX_NAME, "domain")?;
            put_str(&mut out, password.expose(), MAX_PASSWORD, "password")?;
            put_str(&mut out, rhost, MAX_NAME, "remote host")?;
        }
        PamRequest::IsUser { user, domain } => {
            out.push(OP_ISUSER);
            put_str(&mut out, user, MAX_NAME, "user name")?;
            put_str(&mut out, domain, MAX_NAME, "domain")?;
        }
        PamRequest::Groups { uid, domain } => {
            out.push(OP_GROUPS);
            put_str(&mut out, uid, MAX_NAME, "uid")?;
            put_str(&mut out, domain, MAX_NAME, "domain")?;
        }
        PamRequest::Stats => out.push(OP_STATS),
    }
    finish_frame(&mut out)?;
    Ok(out)
}

/// Decodes a request payload (without the 4-byte header).
pub fn decode_request(payload: &[u8]) -> Result<PamRequest, CodecError> {
    let mut r = Reader::new(payload)?;
    let req = match r.byte()? {
        OP_AUTH => {
            let need_uid = match r.byte()? {
                0 => false,
                1 => true,
                other => return Err(CodecError::UnknownCode(other)),
            };
            let user = r.string(MAX_NAME, "user name")?;
            let domain = r.string(MAX_NAME, "domain")?;
            let password = Password::new(r.string(MAX_PASSWORD, "password")?);
            let rhost = r.string(MAX_NAME, "remote host")?;
            PamRequest::Auth {
                user,
                domain,
                password,
                need_uid,
                rhost,
            }
        }
        OP_ISUSER => {
            let user = r.string(MAX_NAME, "user name")?;
            let domain = r.string(MAX_NAME, "domain")?;
            PamRequest::IsUser { user, domain }
        }
        OP_GROUPS => {
            let uid = r.string(MAX_NAME, "uid")?;
            let domain = r.string(MAX_NAME, "domain")?;
            PamRequest::Groups { uid, domain }
        }
        OP_STATS => PamRequest::Stats,
        other => return Err(CodecError::UnknownCode(other)),
    };
    r.finish()?;
    Ok(req)
}

/// A whole frame (header + payload) for `reply`.
pub fn encode_reply(reply: &PamReply) -> Result<Vec<u8>, CodecError> {
    let mut out = vec![0, 0, 0, 0, PROTOCOL_VERSION];
    match reply {
        PamReply::Accepted { via, uid } => {
            out.push(R_ACCEPTED);
            out.push(via_code(*via));
            put_str(&mut out, uid.as_deref().unwrap_or(""), MAX_NAME, "uid")?;
        }
        PamReply::Rejected => out.push(R_REJECTED),
        PamReply::Exists => out.push(R_EXISTS),
        PamReply::NoSuchUser => out.push(R_NO_USER),
        PamReply::Groups(groups) => {
            out.push(R_GROUPS);
            let count =
                u16::try_from(groups.len()).map_err(|_| CodecError::FieldTooLong("group list"))?;
            out.extend_from_slice(&count.to_be_bytes());
            for g in groups {
                put_str(&mut out, g, usize::from(u16::MAX), "group name")?;
            }
        }
        PamReply::Stats(pairs) => {
            out.push(R_STATS);
            let count =
                u16::try_from(pairs.len()).map_err(|_| CodecError::FieldTooLong("stats list"))?;
            out.extend_from_slice(&count.to_be_bytes());
            for (key, value) in pairs {
                put_str(&mut out, key, MAX_STATS_KEY, "stats key")?;
                out.extend_from_slice(&value.to_be_bytes());
            }
        }
        PamReply::Unavailable(reason) => {
            out.push(R_UNAVAILABLE);
            put_str(
                &mut out,
                truncate(reason, 1024),
                usize::from(u16::MAX),
                "reason",
            )?;
        }
        PamReply::Error(msg) => {
            out.push(R_ERROR);
            put_str(
                &mut out,
                truncate(msg, 1024),
                usize::from(u16::MAX),
                "message",
            )?;
        }
    }
    finish_frame(&mut out)?;
    Ok(out)
}

/// Decodes a reply payload (without the 4-byte header).
pub fn decode_reply(payload: &[u8]) -> Result<PamReply, CodecError> {
    let mut r = Reader::new(payload)?;
    let reply = match r.byte()? {
        R_ACCEPTED => {
            let code = r.byte()?;
            let via = via_from_code(code).ok_or(CodecError::UnknownCode(code))?;
            let uid = r.string(MAX_NAME, "uid")?;
            PamReply::Accepted {
                via,
                uid: (!uid.is_empty()).then_some(uid),
            }
        }
        R_REJECTED => PamReply::Rejected,
        R_EXISTS => PamReply::Exists,
        R_NO_USER => PamReply::NoSuchUser,
        R_GROUPS => {
            let count = r.u16()?;
            let mut groups = Vec::with_capacity(usize::from(count).min(1024));
            for _ in 0..count {
                groups.push(r.string(usize::from(u16::MAX), "group name")?);
            }
            PamReply::Groups(groups)
        }
        R_STATS => {
            let count = r.u16()?;
            let mut pairs = Vec::with_capacity(usize::from(count).min(1024));
            for _ in 0..count {
                let key = r.string(MAX_STATS_KEY, "stats key")?;
                let b = r.take(8)?;
                let mut value = [0u8; 8];
                value.copy_from_slice(b);
                pairs.push((key, u64::from_be_bytes(value)));
            }
            PamReply::Stats(pairs)
        }
        R_UNAVAILABLE => PamReply::Unavailable(r.string(usize::from(u16::MAX), "reason")?),
        R_ERROR => PamReply::Error(r.string(usize::from(u16::MAX), "message")?),
        other => return Err(CodecError::UnknownCode(other)),
    };
    r.finish()?;
    Ok(reply)
}

fn via_code(via: Via) -> u8 {
    match via {
        Via::Token => 0,
        Via::Cache => 1,
        Via::Backend => 2,
        Via::UnreachableCache => 3,
    }
}

fn via_from_code(code: u8) -> Option<Via> {
    match code {
        0 => Some(Via::Token),
        1 => Some(Via::Cache),
        2 => Some(Via::Backend),
        3 => Some(Via::UnreachableCache),
        _ => None,
    }
}

fn put_str(out: &mut Vec<u8>, s: &str, max: usize, what: &'static str) -> Result<(), CodecError> {
    if s.len() > max {
        return Err(CodecError::FieldTooLong(what));
    }
    let len = u16::try_from(s.len()).map_err(|_| CodecError::FieldTooLong(what))?;
    out.extend_from_slice(&len.to_be_bytes());
    out.extend_from_slice(s.as_bytes());
    Ok(())
}

/// Writes the payload length into the 4-byte header of `frame`.
fn finish_frame(frame: &mut [u8]) -> Result<(), CodecError> {
    let payload = frame.len() - 4;
    if payload > MAX_FRAME {
        return Err(CodecError::TooLong(payload));
    }
    let len = u32::try_from(payload).map_err(|_| CodecError::TooLong(payload))?;
    frame[..4].copy_from_slice(&len.to_be_bytes());
    Ok(())
}

/// At most `max` bytes of `s`, cut at a character boundary.
fn truncate(s: &str, max: usize) -> &str {
    if s.len() <= max {
        return s;
    }
    let mut end = max;
    while !s.is_char_boundary(end) {
        end -= 1;
    }
    &s[..end]
}

/// A cursor over one payload.
struct Reader<'a> {
    rest: &'a [u8],
}

impl<'a> Reader<'a> {
    /// Checks length and version.
    fn new(payload: &'a [u8]) -> Result<Self, CodecError> {
        if payload.is_empty() {
            return Err(CodecError::Empty);
        }
        if payload.len() > MAX_FRAME {
            return Err(CodecError::TooLong(payload.len()));
        }
        let mut r = Self { rest: payload };
        match r.byte()? {
            PROTOCOL_VERSION => Ok(r),
            v => Err(CodecError::Version(v)),
        }
    }

    fn take(&mut self, n: usize) -> Result<&'a [u8], CodecError> {
        if self.rest.len() < n {
            return Err(CodecError::Truncated);
        }
        let (head, tail) = self.rest.split_at(n);
        self.rest = tail;
        Ok(head)
    }

    fn byte(&mut self) -> Result<u8, CodecError> {
        Ok(self.take(1)?[0])
    }

    fn u16(&mut self) -> Result<u16, CodecError> {
        let b = self.take(2)?;
        Ok(u16::from_be_bytes([b[0], b[1]]))
    }

    fn string(&mut self, max: usize, what: &'static str) -> Result<String, CodecError> {
        let len = usize::from(self.u16()?);
        if len > max {
            return Err(CodecError::FieldTooLong(what));
        }
        let bytes = self.take(len)?;
        std::str::from_utf8(bytes)
            .map(str::to_owned)
            .map_err(|_| CodecError::NotUtf8)
    }

    fn finish(&self) -> Result<(), CodecError> {
        match self.rest.len() {
            0 => Ok(()),
            n => Err(CodecError::Trailing(n)),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn auth(user: &str, pw: &str) -> PamRequest {
        PamRequest::Auth {
            user: user.into(),
            domain: "example.org".into(),
            password: Password::new(pw),
            need_uid: false,
            rhost: String::new(),
        }
    }

    fn payload(frame: &[u8]) -> &[u8] {
        let len = frame_len([frame[0], frame[1], frame[2], frame[3]]).unwrap();
        assert_eq!(len, frame.len() - 4);
        &frame[4..]
    }

    #[test]
    fn requests_round_trip() {
        for req in [
            auth("alice", "pä ss:word\n"),
            auth("", ""),
            PamRequest::Auth {
                user: "dave".into(),
                domain: "example.org".into(),
                password: Password::new("pw"),
                need_uid: true,
                rhost: "192.0.2.7".into(),
            },
            PamRequest::IsUser {
                user: "bob".into(),
                domain: "x.org".into(),
            },
            PamRequest::Groups {
                uid: "c@d".into(),
                domain: "".into(),
            },
            PamRequest::Stats,
        ] {
            let frame = encode_request(&req).unwrap();
            assert_eq!(decode_request(payload(&frame)).unwrap(), req);
        }
    }

    #[test]
    fn replies_round_trip() {
        for reply in [
            PamReply::Accepted {
                via: Via::Token,
                uid: Some("alice".into()),
            },
            PamReply::Accepted {
                via: Via::Cache,
                uid: None,
            },
            PamReply::Accepted {
                via: Via::Backend,
                uid: Some("dave@example.org".into()),
            },
            PamReply::Accepted {
                via: Via::UnreachableCache,
                uid: None,
            },
            PamReply::Rejected,
            PamReply::Exists,
            PamReply::NoSuchUser,
            PamReply::Groups(vec![]),
            PamReply::Groups(vec!["Team A".into(), "ü".into()]),
            PamReply::Stats(vec![]),
            PamReply::Stats(vec![
                ("requests.pam.auth.accepted".into(), 3),
                ("x".into(), u64::MAX),
            ]),
            PamReply::Unavailable("timeout: x".into()),
            PamReply::Error("bad".into()),
        ] {
            let frame = encode_reply(&reply).unwrap();
            assert_eq!(decode_reply(payload(&frame)).unwrap(), reply);
        }
    }

    #[test]
    fn exact_bytes_of_an_auth_request() {
        let frame = encode_request(&auth("al", "pw")).unwrap();
        assert_eq!(
            &frame[..],
            b"\0\0\0\x1a\x04a\0\0\x02al\0\x0bexample.org\0\x02pw\0\0".as_slice()
        );
        assert_eq!(
            &encode_reply(&PamReply::Rejected).unwrap()[..],
            b"\0\0\0\x02\x04R"
        );
        assert_eq!(
            &encode_reply(&PamReply::Accepted {
                via: Via::Backend,
                uid: Some("al".into())
            })
            .unwrap()[..],
            b"\0\0\0\x07\x04A\x02\0\x02al"
        );
        assert_eq!(
            &encode_request(&PamRequest::Stats).unwrap()[..],
            b"\0\0\0\x02\x04s"
        );
        assert_eq!(
            &encode_reply(&PamReply::Stats(vec![("uptime_seconds".into(), 7)])).unwrap()[..],
            b"\0\0\0\x1c\x04S\0\x01\0\x0euptime_seconds\0\0\0\0\0\0\0\x07"
        );
    }

    #[test]
    fn limits_are_enforced() {
        assert_eq!(frame_len([0, 0, 0, 0]), Err(CodecError::Empty));
        assert_eq!(frame_len([0, 1, 0, 1]), Err(CodecError::TooLong(65537)));
        assert_eq!(
            frame_len([0xff; 4]),
            Err(CodecError::TooLong(u32::MAX as usize))
        );
        assert_eq!(frame_len([0, 1, 0, 0]), Ok(MAX_FRAME));
        let long = "x".repeat(MAX_NAME + 1);
        assert_eq!(
            encode_request(&auth(&long, "p")).unwrap_err(),
            CodecError::FieldTooLong("user name")
        );
        let long_pw = "p".repeat(MAX_PASSWORD + 1);
        assert_eq!(
            encode_request(&auth("a", &long_pw)).unwrap_err(),
            CodecError::FieldTooLong("password")
        );
        assert!(encode_request(&auth("a", &"p".repeat(MAX_PASSWORD))).is_ok());
        // A decoder refuses an oversized field even if the frame would fit.
        let mut p = vec![PROTOCOL_VERSION, OP_ISUSER];
        p.extend_from_slice(&((MAX_NAME + 1) as u16).to_be_bytes());
        p.extend(std::iter::repeat_n(b'x', MAX_NAME + 1));
        p.extend_from_slice(&[0, 0]);
        assert_eq!(
            decode_request(&p),
            Err(CodecError::FieldTooLong("user name"))
        );
    }

    #[test]
    fn malformed_payloads_are_rejected() {
        assert_eq!(decode_request(&[]), Err(CodecError::Empty));
        assert_eq!(decode_request(&[1, b'a']), Err(CodecError::Version(1)));
        assert_eq!(
            decode_request(&[2, b'a']),
            Err(CodecError::Version(2)),
            "version 2 had no remote host"
        );
        assert_eq!(
            decode_request(&[3, b'u', 0, 0, 0, 0]),
            Err(CodecError::Version(3)),
            "version 3 had no stats request"
        );
        assert_eq!(
            decode_request(&[4, b'z']),
            Err(CodecError::UnknownCode(b'z'))
        );
        assert_eq!(
            decode_request(&[4, b'a', 2, 0, 0, 0, 0, 0, 0, 0, 0]),
            Err(CodecError::UnknownCode(2)),
            "need_uid is 0 or 1"
        );
        assert_eq!(
            decode_request(&[4, b'u', 0, 5, b'a']),
            Err(CodecError::Truncated)
        );
        assert_eq!(
            decode_request(&[4, b'u', 0, 0, 0, 0, 9]),
            Err(CodecError::Trailing(1))
        );
        assert_eq!(
            decode_request(&[4, b'u', 0, 1, 0xff, 0, 0]),
            Err(CodecError::NotUtf8)
        );
        assert_eq!(decode_reply(&[4, b'A', 9]), Err(CodecError::UnknownCode(9)));
        assert_eq!(decode_reply(&[4, b'A', 2]), Err(CodecError::Truncated));
        assert_eq!(
            decode_reply(&[4, b'G', 0, 2, 0, 0]),
            Err(CodecError::Truncated)
        );
    }

    /// A cheap deterministic fuzz: no input makes the decoders panic, and whatever decodes
    /// re-encodes to the same payload.
    #[test]
    fn decoders_survive_arbitrary_bytes() {
        let mut x: u64 = 0x9e37_79b9_7f4a_7c15;
        let mut next = || {
            x ^= x << 13;
            x ^= x >> 7;
            x ^= x << 17;
            x
        };
        let seeds: Vec<Vec<u8>> = vec![
            encode_request(&auth("alice", "pw")).unwrap()[4..].to_vec(),
            encode_reply(&PamReply::Groups(vec!["a".into(), "b".into()])).unwrap()[4..].to_vec(),
            encode_reply(&PamReply::Stats(vec![("a.b".into(), 7)])).unwrap()[4..].to_vec(),
        ];
        for i in 0..30_000 {
            let mut bytes = seeds[i % 3].clone();
            for _ in 0..(next() % 4) {
                let pos = (next() as usize) % bytes.len();
                bytes[pos] = next() as u8;
            }
            if next() % 3 == 0 {
                bytes.truncate((next() as usize) % (bytes.len() + 1));
            }
            if let Ok(req) = decode_request(&bytes) {
                assert_eq!(&encode_request(&req).unwrap()[4..], &bytes[..]);
            }
            if let Ok(reply) = decode_reply(&bytes) {
                assert_eq!(&encode_reply(&reply).unwrap()[4..], &bytes[..]);
            }
        }
    }

    #[test]
    fn debug_of_a_request_hides_the_password() {
        let text = format!("{:?}", auth("alice", "hunter2-secret"));
        assert!(!text.contains("hunter2"), "{text}");
        assert!(text.contains("alice"));
    }
}
