//! Blocking frame I/O with deadlines, over any [`DeadlineStream`].

use std::io::{self, Write};
use std::time::{Duration, Instant};

use zeroize::Zeroizing;

use super::codec::{frame_len, CodecError};
use crate::deadline::{self, ConnectionTimeouts, DeadlineStream};

/// What reading a frame ran into.
#[derive(Debug)]
pub(super) enum ReadFrame {
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
pub(super) fn read_frame<S: DeadlineStream>(
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

/// How often a server waiting for a request's first byte checks whether it should stop.
const TICK: Duration = Duration::from_millis(250);

/// The server's read of one request: its first byte may take up to `timeouts.idle` to
/// arrive, the rest of the frame must follow within `timeouts.request` of that first byte.
/// While waiting for the first byte, `stop` is asked every [`TICK`]; when it says so the
/// wait ends as [`ReadFrame::Closed`] (a request that has started is always read to its end).
pub(super) fn read_request_frame<S: DeadlineStream>(
    stream: &mut S,
    timeouts: ConnectionTimeouts,
    stop: &dyn Fn() -> bool,
) -> Result<Zeroizing<Vec<u8>>, ReadFrame> {
    let mut header = [0u8; 4];
    let idle_until = deadline::now() + timeouts.idle;
    loop {
        if stop() {
            return Err(ReadFrame::Closed);
        }
        let slice = (deadline::now() + TICK).min(idle_until);
        match read_full(stream, &mut header[..1], slice, true) {
            Err(ReadFrame::TimedOut) if deadline::left(idle_until) > Duration::ZERO => {}
            other => break other?,
        }
    }
    let deadline = deadline::now() + timeouts.request;
    read_full(stream, &mut header[1..], deadline, false)?;
    let len = frame_len(header).map_err(ReadFrame::Bad)?;
    let mut payload = Zeroizing::new(vec![0u8; len]);
    read_full(stream, &mut payload, deadline, false)?;
    Ok(payload)
}

/// Fills `buf`, every read bounded by the time left until `deadline`. `at_boundary`: an
/// end of stream before the first byte is a clean close.
fn read_full<S: DeadlineStream>(
    stream: &mut S,
    buf: &mut [u8],
    deadline: Instant,
    at_boundary: bool,
) -> Result<(), ReadFrame> {
    let mut filled = 0;
    while filled < buf.len() {
        let left = deadline::left(deadline);
        if left.is_zero() {
            return Err(ReadFrame::TimedOut);
        }
        stream.set_read_timeout_in(left).map_err(ReadFrame::Io)?;
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

/// Writes all of `bytes` and flushes, giving up at `deadline`.
pub(super) fn write_all_before<S: DeadlineStream + Write>(
    stream: &mut S,
    bytes: &[u8],
    deadline: Instant,
) -> io::Result<()> {
    let left = deadline::left(deadline);
    if left.is_zero() {
        return Err(io::Error::new(io::ErrorKind::TimedOut, "timed out"));
    }
    stream.set_write_timeout_in(left)?;
    stream.write_all(bytes)?;
    stream.flush()
}
