//! The daemon's side: answers one accepted connection from whoever decides (a [`Decider`]: the
//! engine). The only part of the PAM socket protocol that asks for decisions.

use std::io::Write;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;
use std::time::Duration;

use log::{debug, warn};

use super::codec::{decode_request, encode_reply, PamReply, PamRequest};
use super::io::{read_request_frame, write_all_before, ReadFrame};
use crate::deadline::{self, Activity, ConnectionTimeouts, DeadlineStream};
use crate::metrics::{Channel, Metrics, Op, Outcome, Snapshot};
use crate::secret::Password;
use crate::vocab::{AuthDecision, Login, LoginRules, NameMatch, Unavailable, UserExists};

/// What the server asks of whoever decides: the engine ([`crate::Engine`]) in xcauthd.
pub trait Decider {
    /// Decides a login of `user@domain` with `password` under `rules`.
    fn login(&self, user: &str, domain: &str, password: &Password, rules: LoginRules<'_>) -> Login;
    /// Does `user@domain` exist?
    fn isuser(&self, user: &str, domain: &str) -> UserExists;
    /// The Nextcloud groups of exactly the account `uid` on the backend serving `domain`.
    fn groups_of_account(&self, uid: &str, domain: &str) -> Result<Vec<String>, Unavailable>;
    /// The counters the requests are counted in, if any.
    fn metrics(&self) -> Option<&Metrics>;
    /// The counters now (`xcauthd stats`), if any are kept.
    fn stats(&self) -> Option<Snapshot>;
}

/// A shared decider decides as itself (xcauthd hands its connections an `Arc`).
impl<D: Decider + ?Sized> Decider for Arc<D> {
    fn login(&self, u: &str, d: &str, p: &Password, rules: LoginRules<'_>) -> Login {
        (**self).login(u, d, p, rules)
    }
    fn isuser(&self, user: &str, domain: &str) -> UserExists {
        (**self).isuser(user, domain)
    }
    fn groups_of_account(&self, uid: &str, domain: &str) -> Result<Vec<String>, Unavailable> {
        (**self).groups_of_account(uid, domain)
    }
    fn metrics(&self) -> Option<&Metrics> {
        (**self).metrics()
    }
    fn stats(&self) -> Option<Snapshot> {
        (**self).stats()
    }
}

/// Answers requests on one accepted connection until the peer closes it, sends something
/// malformed, sends nothing for `timeouts.idle`, or takes longer than `timeouts.request` from
/// a request's first byte to its last (however slowly it trickles in: every read is bounded
/// by the time left). `timeouts.request` also bounds writing a reply. Decisions come from
/// `engine`; nothing is returned, problems are logged.
pub fn serve_pam_connection<D: Decider + ?Sized, S: DeadlineStream + Write>(
    engine: &D,
    stream: S,
    timeouts: ConnectionTimeouts,
) {
    let never = AtomicBool::new(false);
    let activity = Activity::new(deadline::now());
    serve_pam_connection_until(
        engine,
        stream,
        timeouts,
        timeouts.request,
        &never,
        &activity,
    );
}

/// As [`serve_pam_connection`], with writing a reply bounded by `write_timeout`, and ending
/// between requests (within a quarter second) once `shutdown` is set: a daemon told to stop
/// does not wait for idle clients. `activity` follows the request cycle, for a daemon that may
/// close the connection early (a request that arrives whole after that is not answered).
pub fn serve_pam_connection_until<D: Decider + ?Sized, S: DeadlineStream + Write>(
    engine: &D,
    mut stream: S,
    timeouts: ConnectionTimeouts,
    write_timeout: Duration,
    shutdown: &AtomicBool,
    activity: &Activity,
) {
    let request_timeout = write_timeout;
    let stop = || shutdown.load(Ordering::Relaxed);
    loop {
        let payload = match read_request_frame(&mut stream, timeouts, &stop) {
            Ok(p) => p,
            Err(ReadFrame::Closed) => return,
            Err(ReadFrame::TimedOut) => {
                debug!("pam socket: no complete request in time, closing");
                return;
            }
            Err(ReadFrame::Bad(e)) => {
                count_invalid(engine);
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
                count_invalid(engine);
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
        if !activity.answering() {
            debug!("pam socket: connection closed to free its slot; request not answered");
            return;
        }
        let reply = answer_pam_request(engine, &request);
        drop(request);
        if !send(&mut stream, &reply, request_timeout) {
            return;
        }
        activity.waiting(deadline::now());
    }
}

fn count_invalid<D: Decider + ?Sized>(engine: &D) {
    if let Some(m) = engine.metrics() {
        m.invalid_request(Channel::Pam);
    }
}

/// The engine's answer to one request, counted in the engine's metrics (except `stats`).
pub fn answer_pam_request<D: Decider + ?Sized>(engine: &D, request: &PamRequest) -> PamReply {
    let reply = decide(engine, request);
    if let Some(m) = engine.metrics() {
        let op = match request {
            PamRequest::Auth { .. } => Some(Op::Auth),
            PamRequest::IsUser { .. } => Some(Op::IsUser),
            PamRequest::Groups { .. } => Some(Op::Groups),
            PamRequest::Stats => None,
        };
        let outcome = match &reply {
            PamReply::Accepted { .. } | PamReply::Exists | PamReply::Groups(_) => Outcome::Accepted,
            PamReply::Rejected | PamReply::NoSuchUser => Outcome::Rejected,
            PamReply::Unavailable(_) => Outcome::Unavailable,
            PamReply::Error(_) | PamReply::Stats(_) => Outcome::Error,
        };
        if let Some(op) = op {
            m.request(Channel::Pam, op, outcome);
        }
    }
    reply
}

fn decide<D: Decider + ?Sized>(engine: &D, request: &PamRequest) -> PamReply {
    match request {
        PamRequest::Auth {
            user,
            domain,
            password,
            need_uid,
            rhost,
        } => {
            let rules = LoginRules {
                names: NameMatch::Exact,
                need_uid: *need_uid,
                remote: Some(rhost.as_str()).filter(|r| !r.is_empty()),
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
        PamRequest::Stats => match engine.stats() {
            Some(snapshot) => PamReply::Stats(snapshot.pairs()),
            None => PamReply::Error("this xcauthd keeps no counters".into()),
        },
    }
}

/// Writes `reply`; false when the connection is unusable afterwards.
fn send<S: DeadlineStream + Write>(stream: &mut S, reply: &PamReply, timeout: Duration) -> bool {
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
    match write_all_before(stream, &frame, deadline::now() + timeout) {
        Ok(()) => true,
        Err(e) => {
            debug!("pam socket: write failed: {e}");
            false
        }
    }
}
