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

/// Where a served connection is in its request cycle, shared between the thread that serves it
/// and whoever may have to close it early: a daemon whose listener has no free slot left
/// closes a connection that has made no progress for a while (see [`Activity::stale_since`]).
///
/// The server reports [`Activity::answering`] once a request is whole and valid (and answers it
/// only if that says so), and [`Activity::waiting`] once the reply is written. A connection
/// being answered is never taken: its reply is on its way.
#[derive(Debug)]
pub struct Activity {
    state: std::sync::Mutex<ActivityState>,
}

#[derive(Debug, Clone, Copy)]
struct ActivityState {
    phase: Phase,
    /// Taken for closing ([`Activity::take`]): no further request is answered.
    taken: bool,
}

#[derive(Debug, Clone, Copy)]
enum Phase {
    /// Not answering, since the last reply (or the connection's start).
    Waiting(Instant),
    /// A whole request is being answered.
    Answering,
}

impl Activity {
    /// A connection that starts waiting for its first request at `now`.
    pub fn new(now: Instant) -> Self {
        Self {
            state: std::sync::Mutex::new(ActivityState {
                phase: Phase::Waiting(now),
                taken: false,
            }),
        }
    }

    fn lock(&self) -> std::sync::MutexGuard<'_, ActivityState> {
        self.state
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner)
    }

    /// A valid request is whole: true when it may be answered, false when the connection was
    /// taken for closing meanwhile (the request is then dropped unanswered).
    pub fn answering(&self) -> bool {
        let mut s = self.lock();
        if s.taken {
            return false;
        }
        s.phase = Phase::Answering;
        true
    }

    /// The reply is written at `now`; the next request may come.
    pub fn waiting(&self, now: Instant) {
        self.lock().phase = Phase::Waiting(now);
    }

    /// Since when the connection has made no progress: its last reply to a valid request (or
    /// its start). Bytes are not progress, so neither a request trickling in nor a malformed
    /// one answered with an error moves this. `None` while a request is being answered or once
    /// the connection was taken.
    pub fn stale_since(&self) -> Option<Instant> {
        let s = self.lock();
        match (s.taken, s.phase) {
            (true, _) | (_, Phase::Answering) => None,
            (false, Phase::Waiting(t)) => Some(t),
        }
    }

    /// Takes the connection for closing unless a request is being answered: true when taken
    /// (the caller then shuts the socket down; the server answers nothing more).
    pub fn take(&self) -> bool {
        let mut s = self.lock();
        if s.taken || matches!(s.phase, Phase::Answering) {
            return false;
        }
        s.taken = true;
        true
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn an_activity_is_stale_since_its_last_reply() {
        let t0 = now();
        let at = |s: u64| t0 + Duration::from_secs(s);
        let a = Activity::new(at(0));
        assert_eq!(a.stale_since(), Some(at(0)));
        assert!(a.answering());
        assert_eq!(a.stale_since(), None, "being answered");
        assert!(!a.take(), "never taken while answering");
        a.waiting(at(6));
        assert_eq!(a.stale_since(), Some(at(6)));
        assert!(a.take());
        assert!(!a.take(), "taken once");
        assert_eq!(a.stale_since(), None);
        assert!(!a.answering(), "a taken connection answers nothing more");
    }
}
