//! The client and the server over real sockets.
// These tests measure how long real socket timeouts take.
#![allow(clippy::disallowed_methods)]

use std::io::{self, Read, Write};
use std::os::unix::net::UnixStream;
use std::path::Path;
use std::sync::Arc;
use std::time::{Duration, Instant};

use socket2::{Domain, SockAddr, Socket, Type};

use super::io::read_frame;
use super::*;
use crate::backend::{Backend, Target};
use crate::clock::ManualClock;
use crate::deadline::{self, ConnectionTimeouts};
use crate::engine::Engine;
use crate::engine::GlobalBackend;
use crate::secret::{Password, Secret};
use crate::vocab::{
    AuthReply, BackendUrl, ErrorChain, RosterEntry, RosterReply, SharedRoster, UserExists, Via,
};

fn auth(user: &str, pw: &str) -> PamRequest {
    PamRequest::Auth {
        user: user.into(),
        domain: "example.org".into(),
        password: Password::new(pw),
        need_uid: false,
        rhost: String::new(),
    }
}

/// One question over a fresh connection; errors as their log text.
fn query(path: &Path, req: &PamRequest, timeout: Duration) -> Result<PamReply, String> {
    Connection::open(path, timeout)
        .and_then(|mut conn| conn.ask(req))
        .map_err(|e| e.to_string())
}

/// One question on `conn`; errors as their log text.
fn ask(conn: &mut Connection, req: &PamRequest) -> Result<PamReply, String> {
    conn.ask(req).map_err(|e| e.to_string())
}

/// alice/secret exists and is in "Team"; bob exists; the backend is down for domain "down".
#[derive(Debug)]
struct Fake;

impl Backend for Fake {
    fn auth(&self, target: &Target, user: &str, password: &Password) -> AuthReply {
        if target.authdomain == "down" {
            return AuthReply::Unavailable(crate::vocab::Unavailable::Connect(ErrorChain::new(
                "no",
            )));
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
            return UserExists::Unknown(crate::vocab::Unavailable::Status(502));
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
            url: BackendUrl::parse("http://fake/").unwrap(),
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
        serve_pam_connection(
            &engine(),
            server,
            ConnectionTimeouts {
                idle: Duration::from_secs(5),
                request: Duration::from_secs(5),
            },
        )
    });
    let mut conn = Connection::over(client, Duration::from_secs(5));
    assert_eq!(
        ask(&mut conn, &auth("alice", "secret")),
        Ok(PamReply::Accepted {
            via: Via::Backend,
            uid: Some("alice".into())
        })
    );
    assert_eq!(
        ask(&mut conn, &auth("alice", "wrong")),
        Ok(PamReply::Rejected)
    );
    let isuser = |u: &str, d: &str| PamRequest::IsUser {
        user: u.into(),
        domain: d.into(),
    };
    assert_eq!(
        ask(&mut conn, &isuser("bob", "example.org")),
        Ok(PamReply::Exists)
    );
    assert_eq!(
        ask(&mut conn, &isuser("carol", "example.org")),
        Ok(PamReply::NoSuchUser)
    );
    assert!(matches!(
        ask(&mut conn, &isuser("bob", "down")),
        Ok(PamReply::Unavailable(_))
    ));
    let groups = PamRequest::Groups {
        uid: "alice".into(),
        domain: "example.org".into(),
    };
    assert_eq!(
        ask(&mut conn, &groups),
        Ok(PamReply::Groups(vec!["Team".into()]))
    );
    drop(conn);
    t.join().unwrap();
}

#[test]
fn serve_rejects_garbage_and_closes() {
    let (mut client, server) = UnixStream::pair().unwrap();
    let t = std::thread::spawn(move || {
        serve_pam_connection(
            &engine(),
            server,
            ConnectionTimeouts {
                idle: Duration::from_secs(5),
                request: Duration::from_secs(5),
            },
        )
    });
    client.write_all(&[0, 0, 0, 2, 9, 9]).unwrap();
    let payload = read_frame(&mut client, deadline::now() + Duration::from_secs(5)).unwrap();
    assert!(matches!(decode_reply(&payload), Ok(PamReply::Error(_))));
    t.join().unwrap();
    // Oversized header: an error reply, then the server is gone.
    let (mut client, server) = UnixStream::pair().unwrap();
    let t = std::thread::spawn(move || {
        serve_pam_connection(
            &engine(),
            server,
            ConnectionTimeouts {
                idle: Duration::from_secs(5),
                request: Duration::from_secs(5),
            },
        )
    });
    client.write_all(&[0x7f, 0, 0, 0]).unwrap();
    let payload = read_frame(&mut client, deadline::now() + Duration::from_secs(5)).unwrap();
    assert!(matches!(decode_reply(&payload), Ok(PamReply::Error(_))));
    t.join().unwrap();
}

/// How long a test waits for something that must end on its own: far beyond every timeout
/// under test (at most a second), so a busy machine never reaches it, and only a deadline
/// that is not kept does.
const LONG: Duration = Duration::from_secs(60);

/// Far beyond the short timeouts under test and well under [`LONG`]: taking this long means
/// the short timeout did not end it.
const BOUND: Duration = Duration::from_secs(30);

/// Runs `f` in a thread and returns what it returned and how long it took; fails if it is
/// still running after [`LONG`].
fn timed<T: Send + 'static>(f: impl FnOnce() -> T + Send + 'static) -> (T, Duration) {
    let (tx, rx) = std::sync::mpsc::channel();
    let start = Instant::now();
    std::thread::spawn(move || {
        let value = f();
        let _ = tx.send((value, start.elapsed()));
    });
    rx.recv_timeout(LONG)
        .unwrap_or_else(|_| panic!("still running after {LONG:?}"))
}

#[test]
fn serve_closes_idle_and_slow_connections() {
    // Silence: closed after the idle timeout (not the request timeout).
    let (mut client, server) = UnixStream::pair().unwrap();
    let ((), took) = timed(move || {
        serve_pam_connection(
            &engine(),
            server,
            ConnectionTimeouts {
                idle: Duration::from_millis(200),
                request: LONG,
            },
        );
    });
    assert!(
        took >= Duration::from_millis(190) && took < BOUND,
        "{took:?}"
    );
    let mut rest = Vec::new();
    client.read_to_end(&mut rest).unwrap();
    assert!(rest.is_empty());

    // Half a header, then silence: the request deadline covers the whole frame.
    let (mut client, server) = UnixStream::pair().unwrap();
    client.write_all(&[0, 0]).unwrap();
    let ((), took) = timed(move || {
        serve_pam_connection(
            &engine(),
            server,
            ConnectionTimeouts {
                idle: LONG,
                request: Duration::from_millis(200),
            },
        );
    });
    assert!(
        took >= Duration::from_millis(190) && took < BOUND,
        "{took:?}"
    );
    drop(client);
}

/// A client that keeps sending one byte every 40 ms never lets a read time out; it is cut
/// off at the request timeout all the same, long before its frame would be complete.
#[test]
fn serve_cuts_off_a_trickling_client_at_the_request_timeout() {
    let (mut client, server) = UnixStream::pair().unwrap();
    let (done, served) = std::sync::mpsc::channel();
    let start = Instant::now();
    std::thread::spawn(move || {
        serve_pam_connection(
            &engine(),
            server,
            ConnectionTimeouts {
                idle: LONG,
                request: Duration::from_millis(300),
            },
        );
        let _ = done.send(start.elapsed());
    });
    // A 64 KiB frame announced, then trickled until the server hangs up (or for LONG, which
    // would take a server that never cuts it off).
    let mut sent = 0;
    for byte in [0u8, 1, 0, 0].into_iter().chain(std::iter::repeat(b'x')) {
        if client.write_all(&[byte]).is_err() || start.elapsed() > LONG {
            break;
        }
        sent += 1;
        std::thread::sleep(Duration::from_millis(40));
    }
    drop(client);
    let served_for = served
        .recv_timeout(LONG)
        .expect("the server still serves a client that hung up");
    assert!(
        served_for >= Duration::from_millis(290) && served_for < BOUND,
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
    let (result, took) = timed(move || query(&path, &auth("a", "b"), Duration::from_millis(200)));
    let err = result.unwrap_err();
    assert!(err.contains("in time"), "{err}");
    assert!(
        took >= Duration::from_millis(190) && took < BOUND,
        "{took:?}"
    );
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

    let p = path.clone();
    let (result, elapsed) = timed(move || query(&p, &auth("a", "b"), Duration::from_millis(300)));
    let err = result.unwrap_err();
    assert!(
        err.contains("cannot connect") && err.contains("backlog"),
        "{err}"
    );
    assert!(
        elapsed >= Duration::from_millis(250) && elapsed < BOUND,
        "waited {elapsed:?} for a 300 ms budget"
    );

    // The daemon accepts one connection after 200 ms (meanwhile the client finds the backlog
    // full): the waiting client gets in, within its budget.
    let acceptor = std::thread::spawn(move || {
        std::thread::sleep(Duration::from_millis(200));
        let (first, _) = listener.accept().unwrap();
        (listener, first)
    });
    let (conn, took) = timed(move || Connection::open(&path, LONG).map(drop));
    assert!(conn.is_ok(), "{conn:?}");
    assert!(took < BOUND, "{took:?}");
    drop(acceptor.join().unwrap());
    drop(queued);
}

#[test]
fn client_refuses_a_reply_that_does_not_fit() {
    let (client, mut server) = UnixStream::pair().unwrap();
    let t = std::thread::spawn(move || {
        let _ = read_frame(&mut server, deadline::now() + Duration::from_secs(5)).unwrap();
        server
            .write_all(&encode_reply(&PamReply::Exists).unwrap())
            .unwrap();
    });
    let mut conn = Connection::over(client, Duration::from_secs(5));
    let err = ask(&mut conn, &auth("a", "b")).unwrap_err();
    assert!(err.contains("does not fit"), "{err}");
    t.join().unwrap();
}
