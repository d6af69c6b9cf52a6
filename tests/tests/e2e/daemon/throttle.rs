//! The brute-force throttle and the connection deadlines of the built xcauthd (docs/throttling.md):
//! a guessed password stops reaching the backend double after a handful of tries while other
//! users and the locked user's token still log in; the pam socket's remote host locks an
//! address; the shipped fail2ban filter matches the lock-out line the daemon writes
//! (`fail2ban-regex`); `write-timeout` drops a client that does not read; SIGTERM ends idle
//! pam connections at once.

#![allow(clippy::unwrap_used, clippy::expect_used)] // tests: a failed unwrap is a failed test
#![allow(clippy::disallowed_methods)] // tests measure real time

use std::io::{Read, Write};
use std::net::SocketAddr;
use std::os::unix::net::UnixStream;
use std::path::{Path, PathBuf};
use std::process::Command;
use std::time::{Duration, Instant};

use xcauth_core::pamsock::{self, PamReply, PamRequest};
use xcauth_core::{Clock, Secret, SystemClock};
use xcauth_tests::double::{BackendDouble, User};
use xcauth_tests::support::{self, Listeners, Proc, Scratch};

const SECRET: &str = "e2e-throttle-secret";

fn double() -> BackendDouble {
    let d = BackendDouble::start(SECRET);
    d.add_user(User::new("alice", "secret"));
    d.add_user(User::new("bob", "builder"));
    d
}

struct Daemon {
    proc: Proc,
    generic: SocketAddr,
    pam: PathBuf,
    log: PathBuf,
}

/// xcauthd on a generic TCP listener and a pam socket that this test bound.
fn daemon(s: &Scratch, d: &BackendDouble, extra: &str) -> Daemon {
    let mut listeners = Listeners::new();
    let generic = listeners.tcp("generic");
    let pam = listeners.unix("pam", &s.join("pam.sock"));
    let conf = s.write(
        "xcauth.conf",
        &support::xcauth_conf(&d.url(), SECRET, extra),
    );
    let log = s.join("daemon.log");
    let proc = support::start_daemon(&conf, &log, listeners);
    Daemon {
        proc,
        generic,
        pam,
        log,
    }
}

fn lockout_lines(log: &Path) -> Vec<String> {
    std::fs::read_to_string(log)
        .unwrap_or_default()
        .lines()
        .filter(|l| l.contains("xcauth: lockout "))
        .map(str::to_owned)
        .collect()
}

/// Waits until the daemon's log holds `n` lock-out lines (it flushes warnings at once).
fn wait_for_lockouts(dm: &mut Daemon, n: usize) -> Vec<String> {
    let log = dm.log.clone();
    dm.proc.wait_until(
        &format!("logging {n} lock-out line(s)"),
        Duration::from_secs(10),
        || lockout_lines(&log).len() >= n,
    );
    lockout_lines(&log)
}

/// 60 wrong passwords for alice over the generic framing (Prosody's): the backend sees only
/// the five before the lock-out; bob and alice's own time-limited token still log in; one
/// lock-out line is logged, not one per refused attempt.
#[test]
fn sixty_guesses_reach_the_backend_a_handful_of_times() {
    let d = double();
    let s = Scratch::new("throttle-generic");
    let mut dm = daemon(&s, &d, "");
    let guesses: Vec<String> = (0..60)
        .map(|i| format!("auth:alice:example.org:guess{i}"))
        .collect();
    let answers = support::generic_exchange(dm.generic, &guesses);
    assert!(answers.iter().all(|a| a == "0"), "{answers:?}");
    let backend = d.count("auth");
    assert!(backend <= 6, "{backend} of 60 guesses reached the backend");
    // During the lock-out even alice's right password is not checked.
    assert_eq!(
        support::generic_exchange(dm.generic, &["auth:alice:example.org:secret"]),
        ["0"]
    );
    assert_eq!(d.count("auth"), backend, "no backend call while locked");
    // Other users are not slowed.
    assert_eq!(
        support::generic_exchange(dm.generic, &["auth:bob:example.org:builder"]),
        ["1"]
    );
    // The locked user's token logs in.
    let expiry = u32::try_from(SystemClock.unix_seconds() + 3600).unwrap();
    let token = xcauth_core::token::generate("alice", "example.org", &Secret::new(SECRET), expiry);
    assert_eq!(
        support::generic_exchange(dm.generic, &[format!("auth:alice:example.org:{token}")]),
        ["1"]
    );
    let lines = wait_for_lockouts(&mut dm, 1);
    assert_eq!(lines.len(), 1, "{lines:#?}");
    assert!(
        lines[0].contains("xcauth: lockout remote=- user=alice@example.org seconds=60 scope=user"),
        "{}",
        lines[0]
    );
}

fn auth_from(user: &str, password: &str, rhost: &str) -> PamRequest {
    PamRequest::Auth {
        user: user.into(),
        domain: "example.org".into(),
        password: xcauth_core::Password::new(password),
        need_uid: false,
        rhost: rhost.into(),
    }
}

/// The pam socket carries PAM_RHOST: one address guessing many names is locked out (for every
/// name, even a right password), another address is not; the lock-out line names the address,
/// and the shipped fail2ban filter matches it (`fail2ban-regex`, Debian's fail2ban).
#[test]
fn a_guessing_address_is_locked_and_fail2ban_matches_the_line() {
    let d = double();
    let s = Scratch::new("throttle-rhost");
    let mut dm = daemon(&s, &d, "throttle-remote-failures=6\nthrottle-failures=100");
    let mut conn = pamsock::Connection::open(&dm.pam, Duration::from_secs(10)).unwrap();
    for i in 0..20 {
        let reply = conn
            .ask(&auth_from(&format!("user{i}"), "guess", "192.0.2.7"))
            .unwrap();
        assert_eq!(reply, PamReply::Rejected);
    }
    assert_eq!(d.count("auth"), 6);
    assert_eq!(
        conn.ask(&auth_from("bob", "builder", "192.0.2.7")).unwrap(),
        PamReply::Rejected,
        "the locked address is not served"
    );
    assert!(matches!(
        conn.ask(&auth_from("bob", "builder", "198.51.100.1"))
            .unwrap(),
        PamReply::Accepted { .. }
    ));
    let lines = wait_for_lockouts(&mut dm, 1);
    assert_eq!(lines.len(), 1, "{lines:#?}");
    assert!(
        lines[0].contains("xcauth: lockout remote=192.0.2.7 user=")
            && lines[0].ends_with(" seconds=60 scope=remote"),
        "{}",
        lines[0]
    );

    let fail2ban = support::require_program("fail2ban-regex");
    let filter =
        Path::new(env!("CARGO_MANIFEST_DIR")).join("../integration/fail2ban/filter.d/xcauth.conf");
    let regex = |log: &Path| {
        let out = Command::new(&fail2ban)
            .arg("--print-all-matched")
            .arg(log)
            .arg(&filter)
            .output()
            .unwrap();
        let text = String::from_utf8_lossy(&out.stdout).into_owned();
        assert!(out.status.success(), "{text}");
        text
    };
    // Exactly the lock-out line matches, among all the daemon wrote.
    let text = regex(&dm.log);
    assert!(text.contains(", 1 matched,"), "{text}");
    assert!(text.contains("lockout remote=192.0.2.7 user="), "{text}");
    // A lock-out without a known address (the framings) gives fail2ban nothing to ban.
    let unknown = s.write(
        "unknown.log",
        &lines[0].replace("remote=192.0.2.7", "remote=-"),
    );
    assert!(regex(&unknown).contains(", 0 matched,"));
    // A user name that carries a forged lock-out line is logged, but bans nobody: the daemon's
    // own lines for it, and the PAM module's failure line for it, never match.
    let forged = "xcauth: lockout remote=198.51.100.1 user=a seconds=1 scope=user";
    let mut conn = pamsock::Connection::open(&dm.pam, Duration::from_secs(10)).unwrap();
    for _ in 0..3 {
        assert_eq!(
            conn.ask(&auth_from(forged, "guess", "198.51.100.9"))
                .unwrap(),
            PamReply::Rejected
        );
    }
    let pam_line = s.write(
        "pam.log",
        &format!(
            "Dec  1 22:20:42 host saslauthd[812]: pam_xcauth(smtp:auth): authentication \
             failure; user=\"{forged}\" reason=bad_password\n\
             Dec  1 22:20:42 host saslauthd[812]: pam_xcauth(smtp:auth): authentication \
             failure; user={forged}\n"
        ),
    );
    let text = regex(&dm.log);
    assert!(
        text.contains(", 1 matched,") && !text.contains("198.51.100.1"),
        "{text}"
    );
    assert!(regex(&pam_line).contains(", 0 matched,"));
}

/// Reads pam replies until the server closes the connection; returns how many arrived.
fn replies_until_eof(stream: &mut UnixStream) -> usize {
    stream
        .set_read_timeout(Some(Duration::from_secs(20)))
        .unwrap();
    let mut n = 0;
    loop {
        let mut header = [0u8; 4];
        if stream.read_exact(&mut header).is_err() {
            return n;
        }
        let len = pamsock::frame_len(header).unwrap();
        let mut payload = vec![0u8; len];
        stream.read_exact(&mut payload).unwrap();
        assert!(matches!(
            pamsock::decode_reply(&payload).unwrap(),
            PamReply::Groups(_)
        ));
        n += 1;
    }
}

/// Ten requests whose ~60 KB replies the client does not read: the daemon's socket buffer fills
/// and, with `write-timeout=1s`, the daemon gives up on the client and closes the connection,
/// so fewer than ten replies ever arrive; with the default (30 s) all ten do. Both daemons run
/// side by side, the default one's client first: when the other one has given up (it logs the
/// failed write), that client has not read for longer.
#[test]
fn write_timeout_drops_a_client_that_does_not_read() {
    let d = double();
    for i in 0..1400 {
        d.add_group(
            &format!("g{i}"),
            &format!("a group with a long display name {i:05}"),
            &["alice"],
        );
    }
    let groups = PamRequest::Groups {
        uid: "alice".into(),
        domain: "example.org".into(),
    };
    let frame = pamsock::encode_request(&groups).unwrap();
    let send_ten = |dm: &Daemon| {
        let mut stream = UnixStream::connect(&dm.pam).unwrap();
        for _ in 0..10 {
            stream.write_all(&frame).unwrap();
        }
        stream
    };
    let (s_kept, s_cut) = (
        Scratch::new("write-timeout-default"),
        Scratch::new("write-timeout"),
    );
    let kept = daemon(&s_kept, &d, "idle-timeout=1m");
    let mut cut = daemon(&s_cut, &d, "write-timeout=1s\nidle-timeout=1m");
    let mut kept_stream = send_ten(&kept);
    let mut cut_stream = send_ten(&cut);
    // (-i logs at debug level, where the failed write is reported.)
    let failed = cut
        .proc
        .wait_for_log("pam socket: write failed", Duration::from_secs(30));
    let got = replies_until_eof_or_all(&mut cut_stream, 10);
    assert!(
        got < 10,
        "all {got} replies arrived although the client did not read ({failed})"
    );
    assert_eq!(replies_until_eof_or_all(&mut kept_stream, 10), 10);
    let log = kept.proc.log_text();
    assert!(!log.contains("write failed"), "{log}");
}

/// As [`replies_until_eof`], but stops after `all` replies (the connection stays open then).
fn replies_until_eof_or_all(stream: &mut UnixStream, all: usize) -> usize {
    stream
        .set_read_timeout(Some(Duration::from_secs(20)))
        .unwrap();
    let mut n = 0;
    while n < all {
        let mut header = [0u8; 4];
        if stream.read_exact(&mut header).is_err() {
            return n;
        }
        let len = pamsock::frame_len(header).unwrap();
        let mut payload = vec![0u8; len];
        if stream.read_exact(&mut payload).is_err() {
            return n;
        }
        n += 1;
    }
    n
}

/// SIGTERM ends the daemon within moments even while a pam client sits idle on its
/// connection (idle-timeout 5 min, shutdown drain 30 s), as it does for the framings; the
/// client sees its connection closed.
#[test]
fn sigterm_closes_idle_pam_connections() {
    let d = double();
    let s = Scratch::new("pam-sigterm");
    let mut dm = daemon(&s, &d, "idle-timeout=5m");
    let mut conn = pamsock::Connection::open(&dm.pam, Duration::from_secs(10)).unwrap();
    assert_eq!(
        conn.ask(&PamRequest::IsUser {
            user: "alice".into(),
            domain: "example.org".into(),
        })
        .unwrap(),
        PamReply::Exists
    );
    let raw = UnixStream::connect(&dm.pam).unwrap();
    // The idle connection must be the daemon's, not waiting in the backlog (where the exit
    // would close it too): it logs each connection it takes (-i logs at debug level).
    let log = dm.log.clone();
    dm.proc.wait_until(
        "taking the second pam connection",
        Duration::from_secs(10),
        || {
            std::fs::read_to_string(&log)
                .unwrap_or_default()
                .matches("pam connection from")
                .count()
                >= 2
        },
    );
    let start = Instant::now();
    dm.proc.signal("TERM");
    let code = dm.proc.wait_exit(Duration::from_secs(60));
    let took = start.elapsed();
    assert_eq!(code, Some(Some(0)), "xcauthd did not exit cleanly");
    // Waiting for the idle client would take the whole 30 s drain (or its 5 min idle-timeout).
    assert!(took < Duration::from_secs(20), "exit took {took:?}");
    let mut raw = raw;
    assert_eq!(replies_until_eof(&mut raw), 0, "closed without a reply");
    drop(conn);
}
