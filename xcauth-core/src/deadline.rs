//! Streams whose reads run against a deadline: the one abstraction under both servers
//! (xcauthd's framings and the PAM socket) and the PAM socket's client.
//!
//! A connection may wait [`ConnectionTimeouts::idle`] for a request to start and
//! [`ConnectionTimeouts::request`] for the rest of it, however slowly it trickles in: every
//! read is bounded by the time left, set on the socket before the read. Socket timeouts run
//! in real time, so these deadlines read [`SystemClock`]'s monotonic time.

use std::io::{self, Read};
use std::os::unix::net::UnixStream;
use std::time::{Duration, Instant};

use crate::clock::{Clock, SystemClock};

/// How long a served connection may wait for input.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct ConnectionTimeouts {
    /// Longest silence between two requests.
    pub idle: Duration,
    /// Longest time to receive the rest of a request once it has started (and to write its
    /// reply).
    pub request: Duration,
}

/// A byte stream whose reads (and writes) can be bounded in time: sockets. Streams that
/// cannot time out (stdin, a byte slice) say so, and their reads block.
pub trait DeadlineStream: Read {
    /// Bounds each following read by `timeout` (at least 1 ms: zero would mean "forever").
    /// `Ok(false)`: this stream cannot time out.
    fn set_read_timeout_in(&mut self, timeout: Duration) -> io::Result<bool>;

    /// Bounds each following write by `timeout`, like [`Self::set_read_timeout_in`].
    fn set_write_timeout_in(&mut self, _timeout: Duration) -> io::Result<bool> {
        Ok(false)
    }
}

/// The monotonic now that socket deadlines are measured against.
pub fn now() -> Instant {
    SystemClock.instant()
}

/// The time left until `deadline` (zero once it has passed).
pub fn left(deadline: Instant) -> Duration {
    deadline.saturating_duration_since(now())
}

fn at_least_1ms(timeout: Duration) -> Option<Duration> {
    Some(timeout.max(Duration::from_millis(1)))
}

impl DeadlineStream for UnixStream {
    fn set_read_timeout_in(&mut self, timeout: Duration) -> io::Result<bool> {
        self.set_read_timeout(at_least_1ms(timeout))?;
        Ok(true)
    }
    fn set_write_timeout_in(&mut self, timeout: Duration) -> io::Result<bool> {
        self.set_write_timeout(at_least_1ms(timeout))?;
        Ok(true)
    }
}

impl DeadlineStream for std::net::TcpStream {
    fn set_read_timeout_in(&mut self, timeout: Duration) -> io::Result<bool> {
        self.set_read_timeout(at_least_1ms(timeout))?;
        Ok(true)
    }
    fn set_write_timeout_in(&mut self, timeout: Duration) -> io::Result<bool> {
        self.set_write_timeout(at_least_1ms(timeout))?;
        Ok(true)
    }
}

impl DeadlineStream for io::StdinLock<'_> {
    fn set_read_timeout_in(&mut self, _timeout: Duration) -> io::Result<bool> {
        Ok(false)
    }
}

impl DeadlineStream for &[u8] {
    fn set_read_timeout_in(&mut self, _timeout: Duration) -> io::Result<bool> {
        Ok(false)
    }
}
