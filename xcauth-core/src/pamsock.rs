//! The Unix-socket protocol between `pam_xcauth.so` (`socket=PATH`) and `xcauthd`.
//!
//! The PAM module runs inside hosts such as Apache (as `www-data`) that must not be able to read
//! the API secret. With `socket=` it asks a running `xcauthd` instead: one short blocking
//! request/reply exchange per question, and the daemon keeps the secret, the HTTP client, the
//! circuit breaker and the cache.
//!
//! # Wire format (version 2)
//!
//! Every message is a frame: a 4-byte big-endian payload length, then the payload. A payload is
//! never empty and never longer than [`MAX_FRAME`]; a receiver rejects anything else before
//! reading the payload. Strings are a 2-byte big-endian length followed by UTF-8 bytes. A
//! payload must be consumed exactly: trailing bytes are an error.
//!
//! | request payload | meaning |
//! |---|---|
//! | `02 'a'` flags:u8 user domain password | check a password (or token); flag bit 0: the
//! |  | module needs the account's uid (`group=`), so the daemon skips its credential cache |
//! | `02 'u'` user domain | does the user exist? |
//! | `02 'g'` uid domain | the Nextcloud groups of exactly the account `uid` (from an `A` reply) |
//!
//! | reply payload | meaning |
//! |---|---|
//! | `02 'A'` via uid | accepted; via = 0 token, 1 cache, 2 backend, 3 cache while unreachable; uid = the Nextcloud account that logged in, empty when unknown |
//! | `02 'R'` | rejected (wrong password, unknown user, or a name that does not spell the account) |
//! | `02 'Y'` / `02 'N'` | the user exists / does not exist |
//! | `02 'G'` count:u16 string… | group display names |
//! | `02 'U'` reason | the backend could not answer (any operation) |
//! | `02 'E'` message | the request was malformed; the server closes the connection |
//!
//! The daemon matches names exactly ([`NameMatch::Exact`]): a PAM login name must spell the
//! Nextcloud account the password belongs to.
//!
//! A connection may carry several requests in turn (the module sends `isuser` after a
//! rejection on the same connection). The server closes it after [`serve`]'s idle timeout.
//!
//! The codec is sans-I/O ([`encode_request`], [`decode_request`], [`encode_reply`],
//! [`decode_reply`], [`frame_len`]); [`query`] (client) and [`serve`] (server) add blocking
//! socket I/O with deadlines. Buffers that hold a password are wiped on drop, and
//! [`PamRequest`]'s `Debug` shows `Password(<redacted>)`.

use std::fmt;
use std::io::{self, Read, Write};
use std::net::TcpStream;
use std::os::unix::net::UnixStream;
use std::path::Path;
use std::time::{Duration, Instant};

use log::{debug, warn};
use socket2::{Domain, SockAddr, Socket, Type};
use zeroize::Zeroizing;

use crate::backend::UserExists;
use crate::engine::{AuthDecision, Engine, LoginRules, NameMatch, Via};
use crate::secret::Password;

/// Protocol version carried in the first payload byte. Version 2 added the uid of the account
/// that logged in; module and daemon are shipped together.
pub const VERSION: u8 = 2;
/// Largest payload accepted or produced, in bytes. Big enough for a user in a few thousand
/// groups; requests are far smaller because of the field limits below.
pub const MAX_FRAME: usize = 64 * 1024;
/// Largest user name or domain, in bytes (UTF-8).
pub const MAX_NAME: usize = 1024;
/// Largest password, in bytes (UTF-8). Longer ones are refused by the module before sending.
pub const MAX_PASSWORD: usize = 4096;

const OP_AUTH: u8 = b'a';
const OP_ISUSER: u8 = b'u';
const OP_GROUPS: u8 = b'g';
const R_ACCEPTED: u8 = b'A';
const R_REJECTED: u8 = b'R';
const R_EXISTS: u8 = b'Y';
const R_NO_USER: u8 = b'N';
const R_GROUPS: u8 = b'G';
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
}

impl PamRequest {
    /// The operation's name for logs (`auth`, `isuser`, `groups`).
    pub fn op(&self) -> &'static str {
        match self {
            PamRequest::Auth { .. } => "auth",
            PamRequest::IsUser { .. } => "isuser",
            PamRequest::Groups { .. } => "groups",
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
    /// The first byte is not [`VERSION`].
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

// ---------------------------------------------------------------------------------------------
// Sans-I/O codec

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
    let mut out = Zeroizing::new(vec![0, 0, 0, 0, VERSION]);
    match req {
        PamRequest::Auth {
            user,
            domain,
            password,
            need_uid,
        } => {
            out.push(OP_AUTH);
            out.push(u8::from(*need_uid));
            put_str(&mut out, user, MAX_NAME, "user name")?;
            put_str(&mut out, domain, MAX_NAME, "domain")?;
            put_str(&mut out, password.expose(), MAX_PASSWORD, "password")?;
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
            PamRequest::Auth {
                user,
                domain,
                password,
                need_uid,
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
        other => return Err(CodecError::UnknownCode(other)),
    };
    r.finish()?;
    Ok(req)
}

/// A whole frame (header + payload) for `reply`.
pub fn encode_reply(reply: &PamReply) -> Result<Vec<u8>, CodecError> {
    let mut out = vec![0, 0, 0, 0, VERSION];
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
            VERSION => Ok(r),
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

// ---------------------------------------------------------------------------------------------
// Blocking I/O

/// A socket whose reads and writes can time out: what [`serve`] needs to enforce its idle
/// timeout on a stream it does not own the type of.
pub trait TimeoutStream: Read + Write {
    /// `set_read_timeout` of the socket.
    fn set_read_deadline_in(&self, timeout: Duration) -> io::Result<()>;
    /// `set_write_timeout` of the socket.
    fn set_write_deadline_in(&self, timeout: Duration) -> io::Result<()>;
}

impl TimeoutStream for UnixStream {
    fn set_read_deadline_in(&self, timeout: Duration) -> io::Result<()> {
        self.set_read_timeout(Some(timeout.max(Duration::from_millis(1))))
    }
    fn set_write_deadline_in(&self, timeout: Duration) -> io::Result<()> {
        self.set_write_timeout(Some(timeout.max(Duration::from_millis(1))))
    }
}

impl TimeoutStream for TcpStream {
    fn set_read_deadline_in(&self, timeout: Duration) -> io::Result<()> {
        self.set_read_timeout(Some(timeout.max(Duration::from_millis(1))))
    }
    fn set_write_deadline_in(&self, timeout: Duration) -> io::Result<()> {
        self.set_write_timeout(Some(timeout.max(Duration::from_millis(1))))
    }
}

/// What reading a frame ran into.
#[derive(Debug)]
enum ReadFrame {
    /// The peer closed the connection cleanly between frames.
    Closed,
    /// The deadline passed.
    TimedOut,
    /// The frame header was invalid (the stream cannot be resynchronised).
    Bad(CodecError),
    /// Any other I/O error.
    Io(io::Error),
}

/// Reads one frame's payload, finishing before `deadline`. The buffer is wiped on drop
/// (request payloads carry passwords).
fn read_frame<S: TimeoutStream>(
    stream: &mut S,
    deadline: Instant,
) -> Result<Zeroizing<Vec<u8>>, ReadFrame> {
    let mut header = [0u8; 4];
    read_full(stream, &mut header, deadline, true)?;
    let len = frame_len(header).map_err(ReadFrame::Bad)?;
    let mut payload = Zeroizing::new(vec![0u8; len]);
    read_full(stream, &mut payload, deadline, false)?;
    Ok(payload)
}

/// The server's read of one request: its first byte may take up to `idle` to arrive, the rest
/// of the frame must follow within `request` of that first byte.
fn read_request_frame<S: TimeoutStream>(
    stream: &mut S,
    idle: Duration,
    request: Duration,
) -> Result<Zeroizing<Vec<u8>>, ReadFrame> {
    let mut header = [0u8; 4];
    read_full(stream, &mut header[..1], Instant::now() + idle, true)?;
    let deadline = Instant::now() + request;
    read_full(stream, &mut header[1..], deadline, false)?;
    let len = frame_len(header).map_err(ReadFrame::Bad)?;
    let mut payload = Zeroizing::new(vec![0u8; len]);
    read_full(stream, &mut payload, deadline, false)?;
    Ok(payload)
}

fn read_full<S: TimeoutStream>(
    stream: &mut S,
    buf: &mut [u8],
    deadline: Instant,
    at_boundary: bool,
) -> Result<(), ReadFrame> {
    let mut filled = 0;
    while filled < buf.len() {
        let left = deadline.saturating_duration_since(Instant::now());
        if left.is_zero() {
            return Err(ReadFrame::TimedOut);
        }
        stream.set_read_deadline_in(left).map_err(ReadFrame::Io)?;
        match stream.read(&mut buf[filled..]) {
            Ok(0) if at_boundary && filled == 0 => return Err(ReadFrame::Closed),
            Ok(0) => {
                return Err(ReadFrame::Io(io::Error::new(
                    io::ErrorKind::UnexpectedEof,
                    "connection closed in the middle of a message",
                )))
            }
            Ok(n) => filled += n,
            Err(e) if e.kind() == io::ErrorKind::Interrupted => {}
            Err(e)
                if matches!(
                    e.kind(),
                    io::ErrorKind::WouldBlock | io::ErrorKind::TimedOut
                ) =>
            {
                return Err(ReadFrame::TimedOut)
            }
            Err(e) => return Err(ReadFrame::Io(e)),
        }
    }
    Ok(())
}

fn write_all_before<S: TimeoutStream>(
    stream: &mut S,
    bytes: &[u8],
    deadline: Instant,
) -> io::Result<()> {
    let left = deadline.saturating_duration_since(Instant::now());
    if left.is_zero() {
        return Err(io::Error::new(io::ErrorKind::TimedOut, "timed out"));
    }
    stream.set_write_deadline_in(left)?;
    stream.write_all(bytes)?;
    stream.flush()
}

/// A blocking connection from the PAM module to `xcauthd`. Every exchange must finish before
/// the deadline given to [`Connection::open`].
#[derive(Debug)]
pub struct Connection {
    stream: UnixStream,
    deadline: Instant,
    path: String,
}

impl Connection {
    /// Connects to the socket at `path`; the connect and all later exchanges share the
    /// `timeout` budget.
    pub fn open(path: &Path, timeout: Duration) -> Result<Self, String> {
        let deadline = Instant::now() + timeout;
        let shown = path.display().to_string();
        let stream = connect_before(path, deadline)
            .map_err(|e| format!("cannot connect to {shown}: {e}"))?;
        Ok(Self {
            stream,
            deadline,
            path: shown,
        })
    }

    /// The connected socket, for checks such as the peer's credentials.
    pub fn socket(&self) -> std::os::fd::BorrowedFd<'_> {
        use std::os::fd::AsFd;
        self.stream.as_fd()
    }

    /// Sends `req` and waits for the reply. A reply that does not fit the request, an
    /// [`PamReply::Error`], a timeout or a broken connection are errors (log-safe text).
    pub fn ask(&mut self, req: &PamRequest) -> Result<PamReply, String> {
        let frame = encode_request(req).map_err(|e| format!("cannot encode the request: {e}"))?;
        write_all_before(&mut self.stream, &frame, self.deadline)
            .map_err(|e| format!("cannot send to {}: {e}", self.path))?;
        drop(frame);
        let payload = read_frame(&mut self.stream, self.deadline).map_err(|e| match e {
            ReadFrame::Closed => format!("{} closed the connection without a reply", self.path),
            ReadFrame::TimedOut => format!("no reply from {} in time", self.path),
            ReadFrame::Bad(e) => format!("bad reply from {}: {e}", self.path),
            ReadFrame::Io(e) => format!("cannot read from {}: {e}", self.path),
        })?;
        let reply =
            decode_reply(&payload).map_err(|e| format!("bad reply from {}: {e}", self.path))?;
        let fits = match (req, &reply) {
            (_, PamReply::Unavailable(_)) => true,
            (PamRequest::Auth { .. }, PamReply::Accepted { .. } | PamReply::Rejected) => true,
            (PamRequest::IsUser { .. }, PamReply::Exists | PamReply::NoSuchUser) => true,
            (PamRequest::Groups { .. }, PamReply::Groups(_)) => true,
            (_, PamReply::Error(msg)) => {
                return Err(format!("{} refused the request: {msg}", self.path))
            }
            _ => false,
        };
        if fits {
            Ok(reply)
        } else {
            Err(format!(
                "{} sent a reply that does not fit a {} request",
                self.path,
                req.op()
            ))
        }
    }
}

/// Connects a Unix stream socket to `path`, giving up at `deadline`.
///
/// `UnixStream::connect` has no timeout: while the listener's backlog is full (xcauthd busy
/// or stuck) it blocks for good, and with it a saslauthd worker or an Apache thread. Linux
/// bounds a blocking `connect` on a Unix socket by the socket's send timeout (`SO_SNDTIMEO`;
/// `unix_stream_connect` waits at most `sock_sndtimeo` for a free slot), so the socket is made
/// with socket2, given the remaining time as its send timeout, connected, and converted into a
/// std `UnixStream`: the call waits for a free slot until the deadline, then fails.
///
/// socket2's `connect_timeout` is not used: its non-blocking connect to a full Unix backlog
/// fails at once with EAGAIN, and its poll then reports "no error set after POLLHUP", so a
/// momentary burst would fail logins that a short wait would have served. A kernel that
/// answers EAGAIN early anyway (not Linux) gets retried every 10 ms until the deadline.
fn connect_before(path: &Path, deadline: Instant) -> io::Result<UnixStream> {
    let addr = SockAddr::unix(path)?;
    loop {
        let left = deadline.saturating_duration_since(Instant::now());
        if left.is_zero() {
            return Err(io::Error::new(
                io::ErrorKind::TimedOut,
                "timed out waiting for a free connection slot (listen backlog full)",
            ));
        }
        // CLOEXEC is set by socket2, as by std.
        let socket = Socket::new(Domain::UNIX, Type::STREAM, None)?;
        socket.set_write_timeout(Some(left.max(Duration::from_millis(1))))?;
        match socket.connect(&addr) {
            Ok(()) => return Ok(socket.into()),
            Err(e) if e.kind() == io::ErrorKind::Interrupted => {}
            Err(e) if e.kind() == io::ErrorKind::WouldBlock => {
                let left = deadline.saturating_duration_since(Instant::now());
                std::thread::sleep(left.min(Duration::from_millis(10)));
            }
            Err(e) => return Err(e),
        }
    }
}

/// One question to `xcauthd` over a fresh connection to `path`, answered within `timeout`.
pub fn query(path: &Path, req: &PamRequest, timeout: Duration) -> Result<PamReply, String> {
    Connection::open(path, timeout)?.ask(req)
}

/// Answers requests on one accepted connection until the peer closes it, sends something
/// malformed, sends nothing for `idle_timeout`, or takes longer than `request_timeout` from a
/// request's first byte to its last (however slowly it trickles in: every read is bounded by
/// the time left). `request_timeout` also bounds writing a reply. Decisions come from
/// `engine`; nothing is returned, problems are logged.
pub fn serve<S: TimeoutStream>(
    engine: &Engine,
    mut stream: S,
    idle_timeout: Duration,
    request_timeout: Duration,
) {
    loop {
        let payload = match read_request_frame(&mut stream, idle_timeout, request_timeout) {
            Ok(p) => p,
            Err(ReadFrame::Closed) => return,
            Err(ReadFrame::TimedOut) => {
                debug!("pam socket: no complete request in time, closing");
                return;
            }
            Err(ReadFrame::Bad(e)) => {
                warn!("pam socket: bad frame: {e}; closing the connection");
                send(
                    &mut stream,
                    &PamReply::Error(e.to_string()),
                    request_timeout,
                );
                return;
            }
            Err(ReadFrame::Io(e)) => {
                debug!("pam socket: read failed: {e}");
                return;
            }
        };
        let request = match decode_request(&payload) {
            Ok(r) => r,
            Err(e) => {
                warn!("pam socket: malformed request: {e}; closing the connection");
                send(
                    &mut stream,
                    &PamReply::Error(e.to_string()),
                    request_timeout,
                );
                return;
            }
        };
        drop(payload);
        let reply = answer(engine, &request);
        drop(request);
        if !send(&mut stream, &reply, request_timeout) {
            return;
        }
    }
}

/// The engine's answer to one request.
pub fn answer(engine: &Engine, request: &PamRequest) -> PamReply {
    match request {
        PamRequest::Auth {
            user,
            domain,
            password,
            need_uid,
        } => {
            let rules = LoginRules {
                names: NameMatch::Exact,
                need_uid: *need_uid,
            };
            let login = engine.login(user, domain, password, rules);
            match login.decision {
                AuthDecision::Accepted(via) => PamReply::Accepted {
                    via,
                    uid: login.uid,
                },
                AuthDecision::Rejected => PamReply::Rejected,
                AuthDecision::Unavailable(why) => PamReply::Unavailable(why.to_string()),
            }
        }
        PamRequest::IsUser { user, domain } => match engine.isuser(user, domain) {
            UserExists::Yes => PamReply::Exists,
            UserExists::No => PamReply::NoSuchUser,
            UserExists::Unknown(why) => PamReply::Unavailable(why.to_string()),
        },
        PamRequest::Groups { uid, domain } => match engine.groups_of_account(uid, domain) {
            Ok(groups) => PamReply::Groups(groups),
            Err(why) => PamReply::Unavailable(why.to_string()),
        },
    }
}

/// Writes `reply`; false when the connection is unusable afterwards.
fn send<S: TimeoutStream>(stream: &mut S, reply: &PamReply, timeout: Duration) -> bool {
    let frame = match encode_reply(reply) {
        Ok(f) => f,
        Err(e) => {
            warn!("pam socket: cannot encode the reply: {e}");
            match encode_reply(&PamReply::Unavailable(format!("reply not encodable: {e}"))) {
                Ok(f) => f,
                Err(_) => return false,
            }
        }
    };
    match write_all_before(stream, &frame, Instant::now() + timeout) {
        Ok(()) => true,
        Err(e) => {
            debug!("pam socket: write failed: {e}");
            false
        }
    }
}

#[cfg(test)]
mod tests {
    use std::sync::Arc;

    use super::*;
    use crate::backend::{AuthReply, Backend, RosterEntry, RosterReply, SharedRoster, Target};
    use crate::clock::ManualClock;
    use crate::domains::GlobalBackend;
    use crate::secret::Secret;

    fn auth(user: &str, pw: &str) -> PamRequest {
        PamRequest::Auth {
            user: user.into(),
            domain: "example.org".into(),
            password: Password::new(pw),
            need_uid: false,
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
            },
            PamRequest::IsUser {
                user: "bob".into(),
                domain: "x.org".into(),
            },
            PamRequest::Groups {
                uid: "c@d".into(),
                domain: "".into(),
            },
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
            b"\0\0\0\x18\x02a\0\0\x02al\0\x0bexample.org\0\x02pw".as_slice()
        );
        assert_eq!(
            &encode_reply(&PamReply::Rejected).unwrap()[..],
            b"\0\0\0\x02\x02R"
        );
        assert_eq!(
            &encode_reply(&PamReply::Accepted {
                via: Via::Backend,
                uid: Some("al".into())
            })
            .unwrap()[..],
            b"\0\0\0\x07\x02A\x02\0\x02al"
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
        let mut p = vec![VERSION, OP_ISUSER];
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
            decode_request(&[2, b'z']),
            Err(CodecError::UnknownCode(b'z'))
        );
        assert_eq!(
            decode_request(&[2, b'a', 2, 0, 0, 0, 0, 0, 0]),
            Err(CodecError::UnknownCode(2)),
            "need_uid is 0 or 1"
        );
        assert_eq!(
            decode_request(&[2, b'u', 0, 5, b'a']),
            Err(CodecError::Truncated)
        );
        assert_eq!(
            decode_request(&[2, b'u', 0, 0, 0, 0, 9]),
            Err(CodecError::Trailing(1))
        );
        assert_eq!(
            decode_request(&[2, b'u', 0, 1, 0xff, 0, 0]),
            Err(CodecError::NotUtf8)
        );
        assert_eq!(decode_reply(&[2, b'A', 9]), Err(CodecError::UnknownCode(9)));
        assert_eq!(decode_reply(&[2, b'A', 2]), Err(CodecError::Truncated));
        assert_eq!(
            decode_reply(&[2, b'G', 0, 2, 0, 0]),
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
        ];
        for i in 0..20_000 {
            let mut bytes = seeds[i % 2].clone();
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

    /// alice/secret exists and is in "Team"; bob exists; the backend is down for domain "down".
    #[derive(Debug)]
    struct Fake;

    impl Backend for Fake {
        fn auth(&self, target: &Target, user: &str, password: &Password) -> AuthReply {
            if target.authdomain == "down" {
                return AuthReply::Unavailable(crate::backend::Unavailable::Connect("no".into()));
            }
            if user == "alice" && password.expose() == "secret" {
                AuthReply::Accepted {
                    uid: Some("alice".into()),
                }
            } else {
                AuthReply::Rejected
            }
        }
        fn isuser(&self, target: &Target, user: &str) -> UserExists {
            if target.authdomain == "down" {
                return UserExists::Unknown(crate::backend::Unavailable::Status(502));
            }
            if user == "alice" || user == "bob" {
                UserExists::Yes
            } else {
                UserExists::No
            }
        }
        fn sharedroster(&self, _target: &Target, user: &str) -> RosterReply {
            RosterReply::Roster(SharedRoster {
                entries: vec![RosterEntry {
                    uid: user.into(),
                    name: None,
                    groups: vec!["Team".into()],
                }],
                body: String::new(),
            })
        }
    }

    fn engine() -> Engine {
        Engine::new(
            GlobalBackend {
                url: "http://fake/".into(),
                secret: Secret::new("s"),
            },
            Arc::new(Fake),
            Arc::new(ManualClock::at(1_700_000_000)),
        )
    }

    #[test]
    fn serve_answers_several_requests_on_one_connection() {
        let (client, server) = UnixStream::pair().unwrap();
        let t = std::thread::spawn(move || {
            serve(
                &engine(),
                server,
                Duration::from_secs(5),
                Duration::from_secs(5),
            )
        });
        let mut conn = Connection {
            stream: client,
            deadline: Instant::now() + Duration::from_secs(5),
            path: "pair".into(),
        };
        assert_eq!(
            conn.ask(&auth("alice", "secret")),
            Ok(PamReply::Accepted {
                via: Via::Backend,
                uid: Some("alice".into())
            })
        );
        assert_eq!(conn.ask(&auth("alice", "wrong")), Ok(PamReply::Rejected));
        let isuser = |u: &str, d: &str| PamRequest::IsUser {
            user: u.into(),
            domain: d.into(),
        };
        assert_eq!(
            conn.ask(&isuser("bob", "example.org")),
            Ok(PamReply::Exists)
        );
        assert_eq!(
            conn.ask(&isuser("carol", "example.org")),
            Ok(PamReply::NoSuchUser)
        );
        assert!(matches!(
            conn.ask(&isuser("bob", "down")),
            Ok(PamReply::Unavailable(_))
        ));
        let groups = PamRequest::Groups {
            uid: "alice".into(),
            domain: "example.org".into(),
        };
        assert_eq!(conn.ask(&groups), Ok(PamReply::Groups(vec!["Team".into()])));
        drop(conn);
        t.join().unwrap();
    }

    #[test]
    fn serve_rejects_garbage_and_closes() {
        let (mut client, server) = UnixStream::pair().unwrap();
        let t = std::thread::spawn(move || {
            serve(
                &engine(),
                server,
                Duration::from_secs(5),
                Duration::from_secs(5),
            )
        });
        client.write_all(&[0, 0, 0, 2, 9, 9]).unwrap();
        let payload = read_frame(&mut client, Instant::now() + Duration::from_secs(5)).unwrap();
        assert!(matches!(decode_reply(&payload), Ok(PamReply::Error(_))));
        t.join().unwrap();
        // Oversized header: an error reply, then the server is gone.
        let (mut client, server) = UnixStream::pair().unwrap();
        let t = std::thread::spawn(move || {
            serve(
                &engine(),
                server,
                Duration::from_secs(5),
                Duration::from_secs(5),
            )
        });
        client.write_all(&[0x7f, 0, 0, 0]).unwrap();
        let payload = read_frame(&mut client, Instant::now() + Duration::from_secs(5)).unwrap();
        assert!(matches!(decode_reply(&payload), Ok(PamReply::Error(_))));
        t.join().unwrap();
    }

    #[test]
    fn serve_closes_idle_and_slow_connections() {
        // Silence: closed after the idle timeout.
        let (mut client, server) = UnixStream::pair().unwrap();
        let start = Instant::now();
        let t = std::thread::spawn(move || {
            serve(
                &engine(),
                server,
                Duration::from_millis(200),
                Duration::from_secs(30),
            )
        });
        t.join().unwrap();
        assert!(start.elapsed() < Duration::from_secs(2));
        let mut rest = Vec::new();
        client.read_to_end(&mut rest).unwrap();
        assert!(rest.is_empty());

        // Half a header, then silence: the request deadline covers the whole frame.
        let (mut client, server) = UnixStream::pair().unwrap();
        let start = Instant::now();
        let t = std::thread::spawn(move || {
            serve(
                &engine(),
                server,
                Duration::from_secs(30),
                Duration::from_millis(200),
            )
        });
        client.write_all(&[0, 0]).unwrap();
        t.join().unwrap();
        assert!(start.elapsed() < Duration::from_secs(2));
    }

    /// A client that keeps sending one byte every 40 ms never lets a read time out; it is cut
    /// off at the request timeout all the same, long before its frame would be complete.
    #[test]
    fn serve_cuts_off_a_trickling_client_at_the_request_timeout() {
        let (mut client, server) = UnixStream::pair().unwrap();
        let start = Instant::now();
        let t = std::thread::spawn(move || {
            serve(
                &engine(),
                server,
                Duration::from_secs(30),
                Duration::from_millis(300),
            );
            start.elapsed()
        });
        // A 64 KiB frame announced, then trickled.
        let mut sent = 0;
        for byte in [0u8, 1, 0, 0].into_iter().chain(std::iter::repeat(b'x')) {
            if client.write_all(&[byte]).is_err() || start.elapsed() > Duration::from_secs(10) {
                break;
            }
            sent += 1;
            std::thread::sleep(Duration::from_millis(40));
        }
        let served_for = t.join().unwrap();
        assert!(
            served_for >= Duration::from_millis(250) && served_for < Duration::from_secs(2),
            "a trickling client was served for {served_for:?} ({sent} bytes)"
        );
    }

    #[test]
    fn client_reports_missing_socket_and_silent_server() {
        let dir = tempfile::tempdir().unwrap();
        let missing = dir.path().join("nope.sock");
        let err = query(&missing, &auth("a", "b"), Duration::from_secs(1)).unwrap_err();
        assert!(err.contains("cannot connect"), "{err}");
        let path = dir.path().join("silent.sock");
        let listener = std::os::unix::net::UnixListener::bind(&path).unwrap();
        let start = Instant::now();
        let err = query(&path, &auth("a", "b"), Duration::from_millis(200)).unwrap_err();
        assert!(err.contains("in time"), "{err}");
        assert!(start.elapsed() < Duration::from_secs(2));
        drop(listener);
    }

    /// A daemon whose listen backlog is full (busy, or stuck and never accepting): the client
    /// gives up when its budget is spent instead of blocking in `connect` for good, and gets
    /// through when a slot frees up within the budget.
    #[test]
    fn client_gives_up_on_a_full_backlog_and_waits_for_a_free_slot() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("busy.sock");
        let addr = SockAddr::unix(&path).unwrap();
        let listener = Socket::new(Domain::UNIX, Type::STREAM, None).unwrap();
        listener.bind(&addr).unwrap();
        listener.listen(0).unwrap();
        // Fill the backlog with connections nobody accepts.
        let mut queued = Vec::new();
        loop {
            let s = Socket::new(Domain::UNIX, Type::STREAM, None).unwrap();
            s.set_nonblocking(true).unwrap();
            match s.connect(&addr) {
                Ok(()) => queued.push(s),
                Err(e) if e.kind() == io::ErrorKind::WouldBlock => break,
                Err(e) => panic!("filling the backlog: {e}"),
            }
            assert!(queued.len() < 1000, "the backlog never filled");
        }

        let (tx, rx) = std::sync::mpsc::channel();
        let p = path.clone();
        let start = Instant::now();
        std::thread::spawn(move || {
            let _ = tx.send(query(&p, &auth("a", "b"), Duration::from_millis(300)));
        });
        let result = rx
            .recv_timeout(Duration::from_secs(5))
            .expect("query blocked on a full listen backlog");
        let elapsed = start.elapsed();
        let err = result.unwrap_err();
        assert!(
            err.contains("cannot connect") && err.contains("backlog"),
            "{err}"
        );
        assert!(
            elapsed >= Duration::from_millis(250) && elapsed < Duration::from_secs(3),
            "waited {elapsed:?} for a 300 ms budget"
        );

        // The daemon accepts one connection after 200 ms: the waiting client gets in.
        let acceptor = std::thread::spawn(move || {
            std::thread::sleep(Duration::from_millis(200));
            let (first, _) = listener.accept().unwrap();
            (listener, first)
        });
        let start = Instant::now();
        let conn = Connection::open(&path, Duration::from_secs(5));
        assert!(conn.is_ok(), "{conn:?}");
        assert!(start.elapsed() < Duration::from_secs(3));
        drop(acceptor.join().unwrap());
        drop(queued);
    }

    #[test]
    fn client_refuses_a_reply_that_does_not_fit() {
        let (client, mut server) = UnixStream::pair().unwrap();
        let t = std::thread::spawn(move || {
            let _ = read_frame(&mut server, Instant::now() + Duration::from_secs(5)).unwrap();
            server
                .write_all(&encode_reply(&PamReply::Exists).unwrap())
                .unwrap();
        });
        let mut conn = Connection {
            stream: client,
            deadline: Instant::now() + Duration::from_secs(5),
            path: "pair".into(),
        };
        let err = conn.ask(&auth("a", "b")).unwrap_err();
        assert!(err.contains("does not fit"), "{err}");
        t.join().unwrap();
    }
}
