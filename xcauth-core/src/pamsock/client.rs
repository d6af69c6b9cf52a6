//! The PAM module's side: one blocking connection to `xcauthd`, every exchange inside the
//! budget given when it was opened.

use std::fmt;
use std::io;
use std::os::unix::net::UnixStream;
use std::path::Path;
use std::time::{Duration, Instant};

use socket2::{Domain, SockAddr, Socket, Type};

use super::codec::{decode_reply, encode_request, CodecError, PamReply, PamRequest};
use super::io::{read_frame, write_all_before, ReadFrame};
use crate::deadline;

/// Why a question to `xcauthd` got no usable answer. Log-safe: names the socket, never the
/// request. `path` is the socket as shown in logs.
#[derive(Debug)]
pub enum ClientError {
    /// The socket could not be connected within the budget.
    Connect {
        /// The socket.
        path: String,
        /// Why.
        source: io::Error,
    },
    /// The request could not be encoded (a field too long).
    Encode(CodecError),
    /// Writing the request failed or timed out.
    Send {
        /// The socket.
        path: String,
        /// Why.
        source: io::Error,
    },
    /// The daemon closed the connection before replying.
    Closed {
        /// The socket.
        path: String,
    },
    /// No reply before the deadline.
    TimedOut {
        /// The socket.
        path: String,
    },
    /// The reply could not be decoded.
    BadReply {
        /// The socket.
        path: String,
        /// Why.
        source: CodecError,
    },
    /// Reading the reply failed.
    Read {
        /// The socket.
        path: String,
        /// Why.
        source: io::Error,
    },
    /// The daemon answered [`PamReply::Error`]: it did not understand the request.
    Refused {
        /// The socket.
        path: String,
        /// The daemon's message.
        message: String,
    },
    /// The reply answers another kind of question.
    Mismatch {
        /// The socket.
        path: String,
        /// The request's operation ([`PamRequest::op`]).
        op: &'static str,
    },
}

impl fmt::Display for ClientError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            ClientError::Connect { path, source } => {
                write!(f, "cannot connect to {path}: {source}")
            }
            ClientError::Encode(e) => write!(f, "cannot encode the request: {e}"),
            ClientError::Send { path, source } => write!(f, "cannot send to {path}: {source}"),
            ClientError::Closed { path } => {
                write!(f, "{path} closed the connection without a reply")
            }
            ClientError::TimedOut { path } => write!(f, "no reply from {path} in time"),
            ClientError::BadReply { path, source } => write!(f, "bad reply from {path}: {source}"),
            ClientError::Read { path, source } => write!(f, "cannot read from {path}: {source}"),
            ClientError::Refused { path, message } => {
                write!(f, "{path} refused the request: {message}")
            }
            ClientError::Mismatch { path, op } => {
                write!(f, "{path} sent a reply that does not fit a {op} request")
            }
        }
    }
}

impl std::error::Error for ClientError {
    fn source(&self) -> Option<&(dyn std::error::Error + 'static)> {
        match self {
            ClientError::Connect { source, .. }
            | ClientError::Send { source, .. }
            | ClientError::Read { source, .. } => Some(source),
            ClientError::Encode(source) | ClientError::BadReply { source, .. } => Some(source),
            _ => None,
        }
    }
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
    pub fn open(path: &Path, timeout: Duration) -> Result<Self, ClientError> {
        let deadline = deadline::now() + timeout;
        let shown = path.display().to_string();
        match connect_before(path, deadline) {
            Ok(stream) => Ok(Self {
                stream,
                deadline,
                path: shown,
            }),
            Err(source) => Err(ClientError::Connect {
                path: shown,
                source,
            }),
        }
    }

    /// A connection over an already connected stream (tests: one end of a socket pair).
    #[cfg(test)]
    pub(super) fn over(stream: UnixStream, timeout: Duration) -> Self {
        Self {
            stream,
            deadline: deadline::now() + timeout,
            path: "pair".into(),
        }
    }

    /// The connected socket, for checks such as the peer's credentials.
    pub fn socket(&self) -> std::os::fd::BorrowedFd<'_> {
        use std::os::fd::AsFd;
        self.stream.as_fd()
    }

    /// Sends `req` and waits for the reply. A reply that does not fit the request, an
    /// [`PamReply::Error`], a timeout or a broken connection are errors.
    pub fn ask(&mut self, req: &PamRequest) -> Result<PamReply, ClientError> {
        let path = || self.path.clone();
        let frame = encode_request(req).map_err(ClientError::Encode)?;
        write_all_before(&mut self.stream, &frame, self.deadline).map_err(|source| {
            ClientError::Send {
                path: path(),
                source,
            }
        })?;
        drop(frame);
        let payload = read_frame(&mut self.stream, self.deadline).map_err(|e| match e {
            ReadFrame::Closed => ClientError::Closed { path: path() },
            ReadFrame::TimedOut => ClientError::TimedOut { path: path() },
            ReadFrame::Bad(source) => ClientError::BadReply {
                path: path(),
                source,
            },
            ReadFrame::Io(source) => ClientError::Read {
                path: path(),
                source,
            },
        })?;
        let reply = decode_reply(&payload).map_err(|source| ClientError::BadReply {
            path: path(),
            source,
        })?;
        let fits = match (req, &reply) {
            (_, PamReply::Unavailable(_)) => true,
            (PamRequest::Auth { .. }, PamReply::Accepted { .. } | PamReply::Rejected) => true,
            (PamRequest::IsUser { .. }, PamReply::Exists | PamReply::NoSuchUser) => true,
            (PamRequest::Groups { .. }, PamReply::Groups(_)) => true,
            (PamRequest::Stats, PamReply::Stats(_)) => true,
            (_, PamReply::Error(message)) => {
                return Err(ClientError::Refused {
                    path: path(),
                    message: message.clone(),
                })
            }
            _ => false,
        };
        if fits {
            Ok(reply)
        } else {
            Err(ClientError::Mismatch {
                path: path(),
                op: req.op(),
            })
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
        let left = deadline::left(deadline);
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
                let left = deadline::left(deadline);
                std::thread::sleep(left.min(Duration::from_millis(10)));
            }
            Err(e) => return Err(e),
        }
    }
}
