//! One connection (or stdin/stdout): read bytes, decode requests with the
//! framing's sans-I/O decoder, ask the engine, write replies.
//!
//! Requests on one connection are handled strictly in sequence. Replies are
//! flushed before the next blocking read, so pipelined requests are answered
//! in one write and an interactive client sees each reply at once.

use std::io::{self, ErrorKind, Write};
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::Duration;

use log::{debug, info, warn};
use xcauth_core::codec::{encode, Answer, Decoded, Decoder, Framing, Request};
use xcauth_core::deadline::{self, Activity, ConnectionTimeouts, DeadlineStream};
use xcauth_core::metrics::{Channel, Op, Outcome};
use xcauth_core::vocab::{AuthDecision, LoginRules, NameMatch, RosterReply, UserExists};
use xcauth_core::Engine;
use zeroize::Zeroizing;

/// Everything [`serve_stream`] needs besides the stream.
#[derive(Debug)]
pub struct StreamCtx<'a> {
    /// The decision engine.
    pub engine: &'a Engine,
    /// Bound on generic/postfix lines.
    pub max_line: usize,
    /// Set when the daemon is shutting down: finish the current request, then close.
    pub shutdown: &'a AtomicBool,
    /// The connection's request cycle, for the accept loop that may close it to free its slot
    /// (`None` on stdin).
    pub activity: Option<&'a Activity>,
}

/// Replies collected before they are written even though more buffered
/// requests are waiting.
const MAX_PENDING_OUTPUT: usize = 64 * 1024;

/// How often a waiting reader wakes to check the shutdown flag and deadlines.
const TICK: Duration = Duration::from_millis(250);

/// Why a connection ended.
#[derive(Debug, PartialEq, Eq)]
pub enum End {
    /// End of input.
    Eof,
    /// `quit`, `exit`, a logical EOF, or a malformed request that cannot be resynchronised.
    Closed(&'static str),
    /// No complete request arrived in time.
    Timeout,
    /// The daemon is shutting down.
    Shutdown,
}

/// Serves one stream in one of the four framings until EOF, quit, timeout, shutdown or an
/// I/O error. `timeouts` apply when `input` can time out (sockets, not stdin).
pub fn serve_stream<I: DeadlineStream, W: Write>(
    ctx: &StreamCtx<'_>,
    framing: Framing,
    mut input: I,
    mut output: W,
    timeouts: Option<ConnectionTimeouts>,
) -> io::Result<End> {
    let mut decoder = Decoder::new(framing, ctx.max_line);
    // Requests carry passwords: the buffers are wiped when the connection ends.
    let mut buf = Zeroizing::new(Vec::<u8>::with_capacity(4096));
    let mut out: Vec<u8> = Vec::with_capacity(256);
    let mut chunk = Zeroizing::new([0u8; 8192]);
    let timed = match timeouts {
        Some(_) => input.set_read_timeout_in(TICK)?,
        None => false,
    };
    // The idle clock runs from the last reply (or the connection's start); the request clock
    // from the first byte of a request that is not complete yet.
    let mut waiting_since = deadline::now();
    let mut request_since = waiting_since;
    let mut eof = false;
    // A request was answered since the activity was last told.
    let mut answered = false;
    // Bytes before `start` are consumed; compacting once per read (not once per
    // request) keeps pipelined input linear.
    let mut start = 0usize;
    loop {
        // Take every complete request already buffered.
        loop {
            let pending = &buf[start..];
            let decoded = if eof {
                decoder.decode_eof(pending)
            } else {
                decoder.decode(pending)
            };
            match decoded {
                Decoded::NeedMore => break,
                Decoded::Request { consumed, request } => {
                    start += consumed;
                    if ctx.activity.is_some_and(|a| !a.answering()) {
                        debug!(
                            "{} framing: connection closed to free its slot; request not \
                             answered",
                            framing.name()
                        );
                        // Replies already made (to malformed requests) go out if they can.
                        let _ = output.write_all(&out).and_then(|()| output.flush());
                        return Ok(End::Closed("closed to free its slot"));
                    }
                    answer(ctx, framing, request, &mut out);
                    answered = true;
                    waiting_since = deadline::now();
                    // The rest of the buffer (if any) starts the next request now.
                    request_since = waiting_since;
                    if out.len() >= MAX_PENDING_OUTPUT {
                        // Pipelined rosters can be large: don't hold them all.
                        output.write_all(&out)?;
                        out.clear();
                    }
                    if ctx.shutdown.load(Ordering::Relaxed) {
                        output.write_all(&out)?;
                        output.flush()?;
                        return Ok(End::Shutdown);
                    }
                }
                Decoded::Reply {
                    consumed,
                    reply,
                    close,
                    why,
                } => {
                    start += consumed;
                    if let Some(m) = ctx.engine.metrics() {
                        m.invalid_request(Channel::of(framing));
                    }
                    warn!("{} framing: bad request: {why}", framing.name());
                    out.extend_from_slice(&reply);
                    if close {
                        output.write_all(&out)?;
                        output.flush()?;
                        return Ok(End::Closed("malformed request"));
                    }
                }
                Decoded::Close { consumed: _, why } => {
                    debug!("{} framing: closing: {why}", framing.name());
                    log::logger().flush();
                    output.write_all(&out)?;
                    output.flush()?;
                    return Ok(End::Closed(why));
                }
            }
        }
        // About to wait for input: make this batch's log lines visible, before
        // the replies, so a client that reacts to a reply finds them logged.
        log::logger().flush();
        if !out.is_empty() {
            output.write_all(&out)?;
            output.flush()?;
            out.clear();
        }
        // Requests were answered in this pass: the connection made progress, at its last
        // reply. (Malformed requests answered with an error are not progress: a client could
        // otherwise keep its slot with garbage that costs it nothing.)
        if let (Some(a), true) = (ctx.activity, answered) {
            a.waiting(waiting_since);
            answered = false;
        }
        if eof {
            return Ok(End::Eof);
        }
        buf.drain(..start);
        start = 0;
        // Every read is bounded by the deadline that applies now, so a client that trickles
        // one byte at a time cannot stretch a request past the request timeout.
        if let (Some(t), true) = (timeouts, timed) {
            let (since, limit) = if buf.is_empty() {
                (waiting_since, t.idle)
            } else {
                (request_since, t.request)
            };
            let left = deadline::left(since + limit);
            if left.is_zero() {
                info!(
                    "{} framing: closing connection after {:?} without a complete request",
                    framing.name(),
                    limit
                );
                return Ok(End::Timeout);
            }
            input.set_read_timeout_in(left.min(TICK))?;
        }
        match input.read(&mut chunk[..]) {
            Ok(0) => eof = true,
            Ok(n) => {
                if buf.is_empty() {
                    request_since = deadline::now();
                }
                buf.extend_from_slice(&chunk[..n]);
            }
            Err(e) if matches!(e.kind(), ErrorKind::WouldBlock | ErrorKind::TimedOut) && timed => {
                if ctx.shutdown.load(Ordering::Relaxed) && buf.is_empty() {
                    return Ok(End::Shutdown);
                }
            }
            // SIGUSR1 interrupts a blocking read on stdin (no accept loop there).
            Err(e) if e.kind() == ErrorKind::Interrupted => {
                crate::stats::log_if_requested(ctx.engine);
            }
            Err(e) => return Err(e),
        }
    }
}

/// How a login name must spell the Nextcloud account. XMPP servers (ejabberd, Prosody via the
/// generic framing) have case-folded the name already and treat JIDs case-insensitively;
/// saslauthd's clients (Postfix, Cyrus) use the name verbatim afterwards, so it must be exact.
fn name_rule(framing: Framing) -> NameMatch {
    match framing {
        Framing::Ejabberd | Framing::Generic => NameMatch::IgnoreCase,
        Framing::Saslauthd | Framing::Postfix => NameMatch::Exact,
    }
}

/// Runs one request through the engine, encodes the reply and counts it.
fn answer(ctx: &StreamCtx<'_>, framing: Framing, request: Request, out: &mut Vec<u8>) {
    let (op, outcome) = decide(ctx, framing, request, out);
    if let Some(m) = ctx.engine.metrics() {
        m.request(Channel::of(framing), op, outcome);
    }
}

fn decide(
    ctx: &StreamCtx<'_>,
    framing: Framing,
    request: Request,
    out: &mut Vec<u8>,
) -> (Op, Outcome) {
    match request {
        Request::Auth {
            user,
            domain,
            password,
        } => {
            debug!("{} framing: receive operation auth", framing.name());
            let rules = LoginRules {
                names: name_rule(framing),
                need_uid: false,
                // The framings' clients are the XMPP and mail servers, not the users: no
                // remote address to count by.
                remote: None,
            };
            let decision = ctx.engine.login(&user, &domain, &password, rules).decision;
            encode(framing, &Answer::Auth(decision.is_accepted()), out);
            let outcome = match decision {
                AuthDecision::Accepted(_) => Outcome::Accepted,
                AuthDecision::Rejected => Outcome::Rejected,
                AuthDecision::Unavailable(_) => Outcome::Unavailable,
            };
            (Op::Auth, outcome)
        }
        Request::IsUser { user, domain } => {
            debug!("{} framing: receive operation isuser", framing.name());
            let exists = ctx.engine.isuser(&user, &domain);
            encode(framing, &Answer::IsUser(&exists), out);
            let outcome = match exists {
                UserExists::Yes => Outcome::Accepted,
                UserExists::No => Outcome::Rejected,
                UserExists::Unknown(_) => Outcome::Unavailable,
            };
            (Op::IsUser, outcome)
        }
        Request::Roster { user, domain } => {
            debug!("{} framing: receive operation roster", framing.name());
            match ctx.engine.roster(&user, &domain) {
                RosterReply::Roster(r) => {
                    encode(framing, &Answer::Roster(Some(&r.body)), out);
                    // With ejabberdctl= set: synced in the background, after this reply.
                    crate::roster_worker::schedule_fetched(&user, &domain, &r);
                    (Op::Roster, Outcome::Accepted)
                }
                RosterReply::Unavailable(why) => {
                    info!(
                        "roster {}: unavailable ({why})",
                        xcauth_core::logsafe::jid(&user, &domain)
                    );
                    encode(framing, &Answer::Roster(None), out);
                    (Op::Roster, Outcome::Unavailable)
                }
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::sync::Arc;
    use xcauth_core::engine::GlobalBackend;
    use xcauth_core::vocab::BackendUrl;
    use xcauth_core::{Secret, SystemClock};

    fn engine() -> Engine {
        Engine::new(
            GlobalBackend {
                url: BackendUrl::parse("https://demo.invalid/").unwrap(),
                secret: Secret::new(crate::demo::DEMO_SECRET),
            },
            Arc::new(crate::demo::DemoBackend),
            Arc::new(SystemClock),
        )
    }

    /// Serves `input` to its end on one connection whose request cycle is `activity`; the
    /// replies.
    fn serve(engine: &Engine, activity: &Activity, input: &[u8]) -> String {
        let shutdown = AtomicBool::new(false);
        let ctx = StreamCtx {
            engine,
            max_line: 8192,
            shutdown: &shutdown,
            activity: Some(activity),
        };
        let mut out = Vec::new();
        serve_stream(&ctx, Framing::Generic, input, &mut out, None).unwrap();
        String::from_utf8(out).unwrap()
    }

    /// Only a reply to a valid request is progress for the accept loop: a client that sends
    /// malformed lines (answered with an error at no backend cost) or bytes of a request stays
    /// as stale as it was, and loses its slot to a waiting client like an idle one.
    #[test]
    fn malformed_requests_and_bytes_are_not_progress() {
        let engine = engine();
        let t0 = deadline::now();
        let activity = Activity::new(t0);
        let replies = serve(&engine, &activity, b"garbage\nauth:x\nisuser:alice\n\nisus");
        assert_eq!(replies, "0\n".repeat(5), "each malformed line was answered");
        assert_eq!(activity.stale_since(), Some(t0));

        let (user, _, _) = crate::demo::ACCOUNTS[0];
        let replies = serve(
            &engine,
            &activity,
            format!("garbage\nisuser:{user}:example.org\n").as_bytes(),
        );
        assert_eq!(replies, "0\n1\n");
        let since = activity.stale_since().unwrap();
        assert!(since > t0, "a reply to a valid request is progress");
        serve(&engine, &activity, b"garbage\n");
        assert_eq!(activity.stale_since(), Some(since));
    }
}
