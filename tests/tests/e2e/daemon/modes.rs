//! xcauthd as a process: every framing on stdin/stdout, TCP and Unix
//! listeners, systemd socket activation (real `systemd-socket-activate`),
//! inetd mode, one-shots, signals, limits, and the bad-input suite.

#![allow(clippy::unwrap_used, clippy::expect_used)] // tests: a failed unwrap is a failed test

use std::io::{Read, Write};
use std::net::{SocketAddr, TcpStream};
use std::os::unix::net::UnixStream;
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

use xcauth_tests::double::{BackendDouble, Fault, User};
use xcauth_tests::machine::{reserve_port, PortLease};
use xcauth_tests::support::{self, Listeners, Proc, Scratch};

const SECRET: &str = "e2e-secret";

fn double() -> BackendDouble {
    let d = BackendDouble::start(SECRET);
    d.add_user(User::new("alice", "secret").app_password("alice", "app-pw"));
    d.add_group("team", "The Team", &["alice"]);
    d
}

fn conf(s: &Scratch, d: &BackendDouble, extra: &str) -> PathBuf {
    s.write(
        "xcauth.conf",
        &support::xcauth_conf(&d.url(), SECRET, extra),
    )
}

/// Runs `xcauthd -t TYPE` with `input` on stdin; returns (stdout, stderr, exit code).
fn stdin_run(conf: &Path, ty: &str, input: &[u8]) -> (Vec<u8>, String, Option<i32>) {
    let mut child = support::xcauthd(conf)
        .args(["-t", ty, "-i", "-d"])
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    let mut stdin = child.stdin.take().unwrap();
    let input = input.to_vec();
    let writer = std::thread::spawn(move || {
        let _ = stdin.write_all(&input);
    });
    let out = child.wait_with_output().unwrap();
    writer.join().unwrap();
    (
        out.stdout,
        String::from_utf8_lossy(&out.stderr).into_owned(),
        out.status.code(),
    )
}

fn frame(text: &[u8]) -> Vec<u8> {
    let mut v = u16::try_from(text.len()).unwrap().to_be_bytes().to_vec();
    v.extend_from_slice(text);
    v
}

fn sasl(fields: [&[u8]; 4]) -> Vec<u8> {
    fields.iter().flat_map(|f| frame(f)).collect()
}

const SASL_OK: &[u8] = b"\x00\x0aOK success";
const SASL_NO: &[u8] = b"\x00\x20NO xcauth authentication failure";

#[test]
fn stdin_generic_answers_each_line_and_survives_bad_ones() {
    let d = double();
    let s = Scratch::new("stdin-generic");
    let c = conf(&s, &d, "");
    let input = b"auth:alice:example.org:secret\r\n\
auth:alice:example.org:wrong\n\
isuser:alice:example.org\n\
isuser:nobody:example.org\n\
auth:alice:example.org:app-pw\n\
\xff\xfe:bad:utf8\n\
\n\
setpass:alice:example.org:x\n\
AUTH:alice:example.org:secret\n\
isuser:alice:example.org:extra\n\
roster:nobody:example.org\n\
auth:alice:example.org:secret\n\
quit\n\
auth:alice:example.org:secret\n";
    let (out, err, code) = stdin_run(&c, "generic", input);
    assert_eq!(
        String::from_utf8_lossy(&out),
        "1\n0\n1\n0\n1\n0\n0\n0\n0\n0\nNone\n1\n",
        "{err}"
    );
    assert_eq!(code, Some(0));
    assert!(
        !err.contains("secret\n") && !err.contains("app-pw"),
        "{err}"
    );
}

#[test]
fn stdin_ejabberd_frames() {
    let d = double();
    let s = Scratch::new("stdin-ej");
    let c = conf(&s, &d, "");
    let mut input = Vec::new();
    for text in [
        &b"isuser:alice:example.org"[..],
        b"auth:alice:example.org:secret",
        b"auth:alice:example.org:wrong",
        b"auth:alice:example.org:\xff\xfe",
        b"roster:alice:example.org",
        b"roster:nobody:example.org",
        b"bogus",
    ] {
        input.extend(frame(text));
    }
    input.extend(frame(b"quit"));
    input.extend(frame(b"auth:alice:example.org:secret"));
    let (out, err, code) = stdin_run(&c, "ejabberd", &input);
    let replies: Vec<&[u8]> = out.chunks(4).collect();
    assert_eq!(
        replies,
        vec![
            &[0, 2, 0, 1][..],
            &[0, 2, 0, 1],
            &[0, 2, 0, 0],
            &[0, 2, 0, 0],
            &[0, 2, 0, 1],
            &[0, 2, 0, 0],
            &[0, 2, 0, 0]
        ],
        "{err}"
    );
    assert_eq!(code, Some(0));
}

#[test]
fn stdin_saslauthd_and_postfix() {
    let d = double();
    let s = Scratch::new("stdin-sp");
    let c = conf(&s, &d, "");
    let mut input = sasl([b"alice", b"secret", b"smtp", b"example.org"]);
    input.extend(sasl([b"alice", b"Wr0ngPw-LEAK", b"smtp", b"example.org"]));
    input.extend(sasl([b"alice", b"\xff", b"smtp", b"example.org"]));
    input.extend(sasl([b"", b"", b"", b""]));
    let (out, err, _) = stdin_run(&c, "saslauthd", &input);
    assert_eq!(out, [SASL_OK, SASL_NO, SASL_NO, SASL_NO].concat(), "{err}");
    assert!(
        !err.contains("Wr0ngPw-LEAK"),
        "saslauthd passwords never logged: {err}"
    );
    assert!(err.contains("saslauthd: request login=alice"), "{err}");

    let (out, err, code) = stdin_run(
        &c,
        "postfix",
        b"get alice@example.org\nget nobody@example.org\nget al%69ce@example.org\nget a@b@c\nGET alice@example.org\nget we%20ird@example.org\nquit\n",
    );
    assert_eq!(
        String::from_utf8_lossy(&out),
        "200 OK\n500 No such user\n200 OK\n500 Illegal request format\n500 Illegal request format\n500 Illegal request format\n",
        "{err}"
    );
    assert_eq!(code, Some(0));
    d.set_fault(Fault::Drop);
    let (out, _, _) = stdin_run(&c, "postfix", b"get alice@example.org\n");
    assert_eq!(
        String::from_utf8_lossy(&out),
        "400 Trouble connecting to backend\n"
    );
}

#[test]
fn one_shots_print_and_exit_meaningfully() {
    let d = double();
    let s = Scratch::new("oneshot");
    let c = conf(&s, &d, "");
    let run = |args: &[&str]| {
        let out = support::xcauthd(&c).args(args).output().unwrap();
        (
            String::from_utf8_lossy(&out.stdout).trim().to_owned(),
            out.status.code(),
        )
    };
    assert_eq!(
        run(&["-A", "alice", "example.org", "secret"]),
        ("True".into(), Some(0))
    );
    assert_eq!(
        run(&["-A", "alice", "example.org", "nope"]),
        ("False".into(), Some(1))
    );
    assert_eq!(
        run(&["-I", "alice", "example.org"]),
        ("True".into(), Some(0))
    );
    assert_eq!(
        run(&["-I", "zed", "example.org"]),
        ("False".into(), Some(1))
    );
    let (roster, code) = run(&["-R", "alice", "example.org"]);
    assert_eq!(code, Some(0));
    assert!(roster.contains(r#""sharedRoster":{"alice""#), "{roster}");
    let token = xcauth_core::token::generate(
        "alice",
        "example.org",
        &xcauth_core::Secret::new(SECRET),
        u32::MAX,
    );
    let before = d.count("auth");
    assert_eq!(
        run(&["-A", "alice", "example.org", &token]),
        ("True".into(), Some(0))
    );
    assert_eq!(d.count("auth"), before, "token checked locally");
    d.set_fault(Fault::Drop);
    assert_eq!(
        run(&["-A", "alice", "example.org", "secret"]),
        ("False".into(), Some(3))
    );
    assert_eq!(
        run(&["-I", "alice", "example.org"]),
        ("None".into(), Some(3))
    );
    // No mode: help on stderr, exit 1. Bad option value: exit 2 naming the key.
    let out = support::xcauthd(&c).output().unwrap();
    assert_eq!(out.status.code(), Some(1));
    assert!(String::from_utf8_lossy(&out.stderr).contains("Usage"));
    let bad = s.write("bad.conf", "url=http://x/\nsecret=s\ncache-query-ttl=2x\n");
    let out = support::xcauthd(&bad)
        .args(["-t", "generic"])
        .output()
        .unwrap();
    assert_eq!(out.status.code(), Some(2));
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(
        err.contains("bad.conf:3") && err.contains("cache-query-ttl"),
        "{err}"
    );
}

fn tcp(addr: SocketAddr) -> TcpStream {
    let s = TcpStream::connect(addr).unwrap();
    s.set_read_timeout(Some(Duration::from_secs(10))).unwrap();
    s
}

fn exchange(stream: &mut (impl Read + Write), request: &[u8], reply_len: usize) -> Vec<u8> {
    stream.write_all(request).unwrap();
    let mut buf = vec![0u8; reply_len];
    stream.read_exact(&mut buf).unwrap();
    buf
}

fn read_line(stream: &mut impl Read) -> String {
    let mut out = Vec::new();
    let mut b = [0u8; 1];
    while stream.read(&mut b).unwrap() == 1 {
        out.push(b[0]);
        if b[0] == b'\n' {
            break;
        }
    }
    String::from_utf8_lossy(&out).into_owned()
}

fn closed(stream: &mut impl Read) -> bool {
    let mut b = [0u8; 64];
    matches!(stream.read(&mut b), Ok(0) | Err(_))
}

struct Daemon {
    proc: Proc,
    generic: SocketAddr,
    ejabberd: SocketAddr,
    postfix: SocketAddr,
    saslauthd: SocketAddr,
    mux: PathBuf,
    /// The TCP ports, this test's until it ends (a test checks that nothing listens there
    /// once xcauthd is gone).
    _ports: Vec<PortLease>,
}

/// xcauthd on sockets this test bound (socket activation): TCP for every framing and a
/// saslauthd Unix socket.
fn daemon(s: &Scratch, d: &BackendDouble, extra: &str) -> Daemon {
    let ports: Vec<PortLease> = (0..4).map(|_| reserve_port()).collect();
    let mut listeners = Listeners::new();
    let generic = listeners.tcp_at("generic", ports[0].addr());
    let ejabberd = listeners.tcp_at("ejabberd", ports[1].addr());
    let postfix = listeners.tcp_at("postfix", ports[2].addr());
    let saslauthd = listeners.tcp_at("saslauthd", ports[3].addr());
    let mux = listeners.unix("saslauthd", &s.join("mux"));
    let c = conf(s, d, &format!("debug\n{extra}"));
    let proc = support::start_daemon(&c, &s.join("daemon.log"), listeners);
    Daemon {
        proc,
        generic,
        ejabberd,
        postfix,
        saslauthd,
        mux,
        _ports: ports,
    }
}

/// xcauthd binding the `listen=` addresses of its configuration itself (`--daemon`): TCP
/// ports reserved for this test and a saslauthd Unix socket in the scratch directory.
fn listening_daemon(s: &Scratch, d: &BackendDouble) -> Daemon {
    let ports: Vec<PortLease> = (0..4).map(|_| reserve_port()).collect();
    let [generic, ejabberd, postfix, saslauthd] = [0, 1, 2, 3].map(|i| ports[i].addr());
    let mux = s.join("mux");
    let c = conf(
        s,
        d,
        &format!(
            "debug\nlisten=[generic@tcp:{generic}, ejabberd@tcp:{ejabberd}, postfix@tcp:{postfix}, saslauthd@tcp:{saslauthd}]\nlisten=saslauthd@unix:{}",
            mux.display()
        ),
    );
    let proc = support::start_daemon_listening(&c, &s.join("daemon.log"));
    Daemon {
        proc,
        generic,
        ejabberd,
        postfix,
        saslauthd,
        mux,
        _ports: ports,
    }
}

#[test]
fn daemon_serves_every_framing_on_tcp_and_unix() {
    let d = double();
    let s = Scratch::new("daemon");
    let mut dm = listening_daemon(&s, &d);
    let mut g = tcp(dm.generic);
    g.write_all(b"auth:alice:example.org:secret\nisuser:x:example.org\r\n")
        .unwrap();
    assert_eq!(read_line(&mut g), "1\n");
    assert_eq!(read_line(&mut g), "0\n");
    let mut e = tcp(dm.ejabberd);
    assert_eq!(
        exchange(&mut e, &frame(b"auth:alice:example.org:secret"), 4),
        [0, 2, 0, 1]
    );
    let mut p = tcp(dm.postfix);
    p.write_all(b"get alice@example.org\n").unwrap();
    assert_eq!(read_line(&mut p), "200 OK\n");
    let mut sa = tcp(dm.saslauthd);
    assert_eq!(
        exchange(
            &mut sa,
            &sasl([b"alice", b"secret", b"imap", b"example.org"]),
            12
        ),
        SASL_OK
    );
    let mut u = UnixStream::connect(&dm.mux).unwrap();
    assert_eq!(
        exchange(&mut u, &sasl([b"alice", b"bad", b"imap", b""]), 34),
        SASL_NO
    );
    // The daemon log has one INFO decision line per auth, and no password.
    let log = dm.proc.log_text();
    assert!(
        log.contains("auth alice@example.org: accepted via backend"),
        "{log}"
    );
    assert!(
        !log.contains(":secret") && !log.contains("\"secret\""),
        "{log}"
    );
    // SIGTERM: a clean exit that removes the Unix socket file it created.
    dm.proc.signal("TERM");
    assert_eq!(dm.proc.wait_exit(Duration::from_secs(10)), Some(Some(0)));
    assert!(!dm.mux.exists(), "unix socket removed");
    assert!(
        TcpStream::connect(dm.generic).is_err(),
        "no longer accepting"
    );
}

#[test]
fn bad_input_suite_keeps_the_daemon_serving() {
    let d = double();
    let s = Scratch::new("badinput");
    let dm = daemon(&s, &d, "max-line=4096\nidle-timeout=2s");
    // A silent client holds a connection; everyone else is still served.
    let mut silent = tcp(dm.generic);

    // generic: NUL bytes, non-UTF-8, empty fields, then a 10 MB line (closed with 0).
    let mut g = tcp(dm.generic);
    g.write_all(b"auth:al\0ice:example.org:secret\nauth:\xc3\x28:example.org:x\nauth:::\n")
        .unwrap();
    assert_eq!(read_line(&mut g), "0\n");
    assert_eq!(read_line(&mut g), "0\n");
    assert_eq!(read_line(&mut g), "0\n");
    let big = vec![b'a'; 10 * 1024 * 1024];
    let mut g2 = tcp(dm.generic);
    let writer = std::thread::spawn(move || {
        let _ = g2.write_all(&big);
        g2
    });
    let mut g2r = writer.join().unwrap();
    assert_eq!(
        read_line(&mut g2r),
        "0\n",
        "oversize line gets the failure reply"
    );
    assert!(closed(&mut g2r), "then the connection closes");

    // 1000 pipelined requests on one connection, answered in order.
    let mut pipe = tcp(dm.generic);
    let mut req = Vec::new();
    for i in 0..1000 {
        if i % 2 == 0 {
            req.extend_from_slice(b"isuser:alice:example.org\n");
        } else {
            req.extend_from_slice(b"bogus\n");
        }
    }
    pipe.write_all(&req).unwrap();
    let mut got = vec![0u8; 2000];
    pipe.read_exact(&mut got).unwrap();
    assert_eq!(got, b"1\n0\n".repeat(500));

    // ejabberd: non-UTF-8 frame answered, truncated frame (length larger than data) then EOF.
    let mut e = tcp(dm.ejabberd);
    assert_eq!(exchange(&mut e, &frame(b"auth:\xff:x:y"), 4), [0, 2, 0, 0]);
    assert_eq!(exchange(&mut e, &frame(b""), 0), Vec::<u8>::new());
    assert!(closed(&mut e), "length 0 is a logical EOF");
    let mut e2 = tcp(dm.ejabberd);
    e2.write_all(&[0xff, 0xff, b'a', b'b']).unwrap();
    e2.shutdown(std::net::Shutdown::Write).unwrap();
    assert!(closed(&mut e2), "a truncated frame gets no reply");

    // saslauthd: empty fields → NO; oversize declared length with short data → closed.
    let mut sa = tcp(dm.saslauthd);
    assert_eq!(exchange(&mut sa, &sasl([b"", b"", b"", b""]), 34), SASL_NO);
    assert_eq!(
        exchange(&mut sa, &sasl([b"alice", b"\xff\xfe", b"smtp", b"x"]), 34),
        SASL_NO
    );
    sa.write_all(&[0xff, 0xff, b'x']).unwrap();
    sa.shutdown(std::net::Shutdown::Write).unwrap();
    assert!(closed(&mut sa));

    // postfix: garbage lines get 500 and the connection goes on.
    let mut p = tcp(dm.postfix);
    p.write_all(b"get \xff@x\nget %zz@x\nput a@b\nget alice@example.org\n")
        .unwrap();
    for _ in 0..3 {
        assert_eq!(read_line(&mut p), "500 Illegal request format\n");
    }
    assert_eq!(read_line(&mut p), "200 OK\n");

    // The silent client is closed by the idle timeout; the daemon still answers.
    let t = Instant::now();
    assert!(closed(&mut silent), "idle client closed");
    assert!(t.elapsed() < Duration::from_secs(5));
    let mut g3 = tcp(dm.generic);
    g3.write_all(b"auth:alice:example.org:secret\n").unwrap();
    assert_eq!(read_line(&mut g3), "1\n");
    let mut proc = dm.proc;
    assert!(proc.alive());
}

/// While every slot of a listener is being answered (the backend holds both requests), a
/// further client waits in the backlog: a connection being answered is never closed for it.
/// It is served once the answers are out.
#[test]
fn max_connections_queues_excess_clients_visibly() {
    let d = double();
    let s = Scratch::new("maxconn");
    let mut dm = daemon(&s, &d, "max-connections=2\nidle-timeout=30s");
    d.hold_until(usize::MAX);
    let mut a = tcp(dm.generic);
    let mut b = tcp(dm.generic);
    a.write_all(b"isuser:alice:example.org\n").unwrap();
    b.write_all(b"isuser:alice:example.org\n").unwrap();
    assert!(
        d.wait_held(2, Duration::from_secs(10)),
        "the requests did not reach the backend"
    );
    // Both taken: the daemon says so once it has accepted them.
    dm.proc
        .wait_for_log("max-connections (2) reached", Duration::from_secs(10));
    let mut c = tcp(dm.generic); // waits in the backlog
    c.write_all(b"isuser:alice:example.org\n").unwrap();
    c.set_read_timeout(Some(Duration::from_millis(700)))
        .unwrap();
    let mut buf = [0u8; 2];
    assert!(
        c.read(&mut buf).is_err(),
        "not served while both slots are being answered"
    );
    assert_eq!(
        d.count("isuser"),
        2,
        "c's request did not reach the backend"
    );
    d.release();
    assert_eq!(read_line(&mut a), "1\n", "a's answer is not cut");
    assert_eq!(read_line(&mut b), "1\n", "b's answer is not cut");
    c.set_read_timeout(Some(Duration::from_secs(5))).unwrap();
    assert_eq!(read_line(&mut c), "1\n", "served once a slot frees");
    let log = dm.proc.log_text();
    assert!(log.contains("max-connections (2) reached"), "{log}");
}

#[test]
fn sigterm_finishes_in_flight_requests_then_exits() {
    let d = double();
    let s = Scratch::new("sigterm");
    // xcauthd waits for the backend as long as this test may hold the request.
    let mut dm = daemon(&s, &d, "timeout=2,30");
    // The request is in flight once the backend holds it; SIGTERM comes only then, and the
    // backend answers only after xcauthd has begun to shut down (it says so).
    d.hold_until(usize::MAX);
    let mut g = tcp(dm.generic);
    g.write_all(b"auth:alice:example.org:secret\n").unwrap();
    assert!(
        d.wait_held(1, Duration::from_secs(10)),
        "the request did not reach the backend"
    );
    dm.proc.signal("TERM");
    dm.proc.wait_for_log(
        "shutting down: no new connections, finishing in-flight requests",
        Duration::from_secs(10),
    );
    d.release();
    assert_eq!(
        read_line(&mut g),
        "1\n",
        "the in-flight request is answered"
    );
    assert_eq!(dm.proc.wait_exit(Duration::from_secs(10)), Some(Some(0)));
    // This test gave its copies of the sockets away: with xcauthd gone, nothing listens.
    assert!(
        TcpStream::connect(dm.generic).is_err(),
        "no longer accepting"
    );
    assert!(UnixStream::connect(&dm.mux).is_err(), "no longer accepting");
}

/// A `listen=` or `metrics-listen=` address something else holds stops the start at once,
/// naming the address: the test holds a leased port itself, so the conflict is certain.
#[test]
fn a_busy_address_stops_the_start() {
    let d = double();
    let s = Scratch::new("busy");
    let lease = reserve_port();
    let _holder = std::net::TcpListener::bind(lease.addr()).unwrap();
    let free = reserve_port();
    for (name, extra, expected) in [
        (
            "listen.conf",
            format!("listen=generic@tcp:{}", lease.addr()),
            format!("cannot listen on generic@tcp:{}", lease.addr()),
        ),
        (
            "metrics.conf",
            format!(
                "listen=generic@tcp:{}\nmetrics-listen={}",
                free.addr(),
                lease.addr()
            ),
            format!("cannot serve metrics-listen={}", lease.addr()),
        ),
    ] {
        let c = s.write(name, &support::xcauth_conf(&d.url(), SECRET, &extra));
        let mut cmd = support::xcauthd(&c);
        cmd.args(["--daemon", "-i"])
            .stdin(Stdio::null())
            .stdout(Stdio::null())
            .stderr(Stdio::piped());
        let child = cmd.spawn().unwrap();
        let out = xcauth_tests::pam_support::wait_output(child, Duration::from_secs(30));
        let err = String::from_utf8_lossy(&out.stderr);
        assert_eq!(out.status.code(), Some(1), "{err}");
        assert!(
            err.contains(&expected) && err.contains("in use"),
            "{expected:?} in:\n{err}"
        );
    }
}

#[test]
fn sighup_reopens_the_log_file() {
    let d = double();
    let s = Scratch::new("sighup");
    let logdir = s.join("log");
    std::fs::create_dir_all(&logdir).unwrap();
    let c = conf(&s, &d, &format!("log={}", logdir.display()));
    let mut listeners = Listeners::new();
    let addr = listeners.tcp("generic");
    let mut cmd = listeners.into_command(&support::bin("xcauthd"));
    cmd.arg("-c").arg(&c);
    // Without -i it logs to log=; stderr stays empty.
    let mut p = support::start_daemon_with(cmd, &s.join("stderr.log"));
    let live = logdir.join("xcauth.log");
    let rotated = logdir.join("xcauth.log.1");
    std::fs::rename(&live, &rotated).unwrap();
    p.signal("HUP");
    // The reopen happens on the accept loop's next tick: wait for the new file.
    p.wait_until("reopening its log", Duration::from_secs(10), || {
        live.exists()
    });
    let mut g = tcp(addr);
    g.write_all(b"isuser:alice:example.org\n").unwrap();
    assert_eq!(read_line(&mut g), "1\n");
    let new = std::fs::read_to_string(&live).expect("reopened after SIGHUP");
    assert!(new.contains("isuser alice@example.org: exists"), "{new}");
    assert!(std::fs::read_to_string(&rotated)
        .unwrap()
        .contains("listening on"));
    assert!(p.alive());
}

#[test]
fn socket_activation_by_fd_name_single_and_multi() {
    let d = double();
    let s = Scratch::new("sockact");
    let c = conf(&s, &d, "");
    // systemd-socket-activate binds these itself.
    let ports = [reserve_port(), reserve_port(), reserve_port()];
    let [pg, pp, pe] = [0, 1, 2].map(|i| ports[i].port());
    let sock = s.join("sasl.sock");
    let log_path = s.join("act.log");
    let log = std::fs::File::create(&log_path).unwrap();
    let mut cmd = Command::new(support::require_program("systemd-socket-activate"));
    cmd.args(["-l", &format!("127.0.0.1:{pg}"), "--fdname=prosody"])
        .args(["-l", &format!("127.0.0.1:{pp}"), "--fdname=postfix"])
        .args(["-l", &format!("127.0.0.1:{pe}"), "--fdname=ejabberd"])
        .args(["-l", sock.to_str().unwrap(), "--fdname=saslauthd"])
        .arg(support::bin("xcauthd"))
        .args(["-c", c.to_str().unwrap(), "-i", "-t", "generic"])
        .env("XCAUTH_SYSTEM_CONFIG", "/nonexistent")
        .stdin(Stdio::null())
        .stdout(Stdio::null())
        .stderr(log);
    let mut p = Proc::spawn("systemd-socket-activate", &mut cmd).with_log(&log_path);
    let addr = |p| SocketAddr::from(([127, 0, 0, 1], p));
    // It binds all four, then execs xcauthd.
    p.wait_for_unix(&sock, Duration::from_secs(10));
    let mut g = tcp(addr(pg));
    g.write_all(b"auth:alice:example.org:secret\n").unwrap();
    assert_eq!(read_line(&mut g), "1\n");
    let mut p = tcp(addr(pp));
    p.write_all(b"get nobody@example.org\n").unwrap();
    assert_eq!(read_line(&mut p), "500 No such user\n");
    let mut e = tcp(addr(pe));
    assert_eq!(
        exchange(&mut e, &frame(b"isuser:alice:example.org"), 4),
        [0, 2, 0, 1]
    );
    let mut u = UnixStream::connect(&sock).unwrap();
    assert_eq!(
        exchange(
            &mut u,
            &sasl([b"alice", b"secret", b"smtp", b"example.org"]),
            12
        ),
        SASL_OK
    );

    // A single unnamed socket takes the protocol from -t.
    let lease = reserve_port();
    let p1 = lease.port();
    let mut cmd = Command::new(support::require_program("systemd-socket-activate"));
    cmd.args(["-l", &format!("127.0.0.1:{p1}")])
        .arg(support::bin("xcauthd"))
        .args(["-c", c.to_str().unwrap(), "-i", "-t", "postfix"])
        .env("XCAUTH_SYSTEM_CONFIG", "/nonexistent")
        .stdin(Stdio::null())
        .stdout(Stdio::null())
        .stderr(Stdio::null());
    let mut p1_proc = Proc::spawn("systemd-socket-activate", &mut cmd);
    p1_proc.wait_for_tcp(addr(p1), Duration::from_secs(10));
    let mut q = tcp(addr(p1));
    q.write_all(b"get alice@example.org\n").unwrap();
    assert_eq!(read_line(&mut q), "200 OK\n");
}

#[test]
fn inetd_connected_and_listening_socket_on_fd0() {
    let d = double();
    let s = Scratch::new("inetd");
    let c = conf(&s, &d, "");
    // Connected socket on fd 0 ("nowait"): serve it, then exit.
    let (mut ours, theirs) = UnixStream::pair().unwrap();
    let mut cmd = support::xcauthd(&c);
    cmd.args(["-t", "ejabberd", "-i"])
        .stdin(Stdio::from(std::os::fd::OwnedFd::from(theirs)))
        .stdout(Stdio::null())
        .stderr(Stdio::null());
    let mut p = Proc::spawn("xcauthd", &mut cmd);
    ours.set_read_timeout(Some(Duration::from_secs(10)))
        .unwrap();
    assert_eq!(
        exchange(&mut ours, &frame(b"auth:alice:example.org:secret"), 4),
        [0, 2, 0, 1]
    );
    ours.write_all(&frame(b"quit")).unwrap();
    assert_eq!(p.wait_exit(Duration::from_secs(5)), Some(Some(0)));

    // inetd proper: the connection is fds 0, 1 and 2; with -i -d (stderr
    // logging at DEBUG) no log line may reach the client.
    let (mut ours, theirs) = UnixStream::pair().unwrap();
    let fd = std::os::fd::OwnedFd::from(theirs);
    let mut p = {
        // The Command holds its copies of the socket until dropped.
        let mut cmd = support::xcauthd(&c);
        cmd.args(["-t", "generic", "-i", "-d"])
            .stdin(Stdio::from(fd.try_clone().unwrap()))
            .stdout(Stdio::from(fd.try_clone().unwrap()))
            .stderr(Stdio::from(fd));
        Proc::spawn("xcauthd", &mut cmd)
    };
    ours.set_read_timeout(Some(Duration::from_secs(10)))
        .unwrap();
    ours.write_all(b"auth:alice:example.org:secret\nisuser:nobody:example.org\nquit\n")
        .unwrap();
    let mut all = Vec::new();
    ours.read_to_end(&mut all).unwrap();
    assert_eq!(
        String::from_utf8_lossy(&all),
        "1\n0\n",
        "replies only, no log lines"
    );
    assert_eq!(p.wait_exit(Duration::from_secs(5)), Some(Some(0)));

    // Listening socket on fd 0 ("wait"): accept clients on it.
    let l = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    let addr = l.local_addr().unwrap();
    let mut cmd = support::xcauthd(&c);
    cmd.args(["-t", "generic", "-i"])
        .stdin(Stdio::from(std::os::fd::OwnedFd::from(l)))
        .stdout(Stdio::null())
        .stderr(Stdio::null());
    let _p = Proc::spawn("xcauthd", &mut cmd);
    for _ in 0..2 {
        let mut g = tcp(addr);
        g.write_all(b"isuser:alice:example.org\n").unwrap();
        assert_eq!(read_line(&mut g), "1\n");
    }
}

#[test]
fn demo_mode_serves_every_framing_on_loopback() {
    // Free ports (`--demo-port-base 0`), read back from the banner: the test never touches
    // the production ports 23662-23666, so two suites (or a running xcauthd) do not collide.
    let mut cmd = std::process::Command::new(support::bin("xcauthd"));
    cmd.args(["--demo", "--demo-port-base", "0"])
        .env("XCAUTH_SYSTEM_CONFIG", "/nonexistent")
        .stdin(Stdio::null())
        .stdout(Stdio::piped())
        .stderr(Stdio::null());
    let mut p = Proc::spawn("xcauthd --demo", &mut cmd);
    let addr = |port| SocketAddr::from(([127, 0, 0, 1], port));
    let mut banner = String::new();
    let mut out = std::io::BufReader::new(p.child.stdout.take().unwrap());
    while !banner.contains("For the real thing") {
        let mut line = String::new();
        assert!(
            std::io::BufRead::read_line(&mut out, &mut line).unwrap() > 0,
            "{banner}"
        );
        banner.push_str(&line);
    }
    assert!(
        banner.contains("DEMO") && banner.contains("NOT Nextcloud"),
        "{banner}"
    );
    let token = banner
        .lines()
        .find_map(|l| l.strip_prefix("Token for alice@example.org (valid 1 h): "))
        .unwrap()
        .to_owned();
    // "Ports on 127.0.0.1: ejabberd N, generic N, postfix N, saslauthd N"
    let ports: Vec<u16> = banner
        .lines()
        .find_map(|l| l.strip_prefix("Ports on 127.0.0.1: "))
        .unwrap()
        .split(", ")
        .map(|item| item.rsplit_once(' ').unwrap().1.parse().unwrap())
        .collect();
    let [ejabberd, generic, postfix, _saslauthd] = ports[..] else {
        panic!("{banner}")
    };
    assert!(
        !ports.iter().any(|p| (23662..=23666).contains(p)),
        "free ports, not the production ones: {ports:?}"
    );
    let mut g = tcp(addr(generic));
    g.write_all(format!("auth:alice:example.org:secret\nauth:alice:example.org:{token}\nauth:alice:example.org:nope\n").as_bytes())
        .unwrap();
    assert_eq!(read_line(&mut g), "1\n");
    assert_eq!(read_line(&mut g), "1\n");
    assert_eq!(read_line(&mut g), "0\n");
    let mut e = tcp(addr(ejabberd));
    assert_eq!(
        exchange(&mut e, &frame(b"isuser:bob:example.org"), 4),
        [0, 2, 0, 1]
    );
    let mut pf = tcp(addr(postfix));
    pf.write_all(b"get carol@example.org\n").unwrap();
    assert_eq!(read_line(&mut pf), "500 No such user\n");
    let mux = banner
        .lines()
        .find_map(|l| {
            l.trim()
                .strip_prefix("saslauthd:          testsaslauthd -u alice -p secret -f ")
        })
        .unwrap();
    let mut u = UnixStream::connect(mux.trim()).unwrap();
    assert_eq!(
        exchange(&mut u, &sasl([b"bob", b"builder", b"smtp", b""]), 12),
        SASL_OK
    );
    p.signal("INT");
    assert_eq!(p.wait_exit(Duration::from_secs(5)), Some(Some(0)));
}

#[test]
fn version_and_help() {
    let out = Command::new(support::bin("xcauthd"))
        .arg("--version")
        .output()
        .unwrap();
    assert!(out.status.success());
    assert!(String::from_utf8_lossy(&out.stdout).starts_with("xcauthd "));
    let out = Command::new(support::bin("xcauthd"))
        .arg("--help")
        .output()
        .unwrap();
    let help = String::from_utf8_lossy(&out.stdout);
    for needle in [
        "--demo",
        "--daemon",
        "-A, --auth-test",
        "--cache-storage",
        "listen",
        "Modes:",
    ] {
        assert!(help.contains(needle), "help lacks {needle}");
    }
}

#[test]
fn tells_systemd_when_ready() {
    let d = double();
    let s = Scratch::new("notify");
    let notify = s.join("notify.sock");
    let sock = std::os::unix::net::UnixDatagram::bind(&notify).unwrap();
    sock.set_read_timeout(Some(Duration::from_secs(10)))
        .unwrap();
    // Its subject is the listen= binding: xcauthd binds a port reserved for this test.
    let lease = reserve_port();
    let port = lease.port();
    let c = conf(&s, &d, &format!("listen=generic@tcp:127.0.0.1:{port}"));
    let mut cmd = support::xcauthd(&c);
    cmd.args(["--daemon", "-i"])
        .env("NOTIFY_SOCKET", &notify)
        .stdin(Stdio::null())
        .stderr(Stdio::null());
    let _p = Proc::spawn("xcauthd", &mut cmd);
    let mut buf = [0u8; 64];
    let n = sock.recv(&mut buf).expect("READY=1 datagram");
    assert_eq!(&buf[..n], b"READY=1");
    let mut g = tcp(SocketAddr::from(([127, 0, 0, 1], port)));
    g.write_all(b"isuser:alice:example.org\n").unwrap();
    assert_eq!(
        read_line(&mut g),
        "1\n",
        "listening by the time READY is sent"
    );
}

#[test]
fn a_database_another_user_owns_is_not_trusted_at_start() {
    use xcauth_core::cache::CredentialCache;
    use xcauth_core::db::{CacheSettings, Db, DbCache, DbOptions};
    let d = double();
    let s = Scratch::new("dbtrust");
    let db_path = s.join("xcauth.sqlite3");
    let c = conf(
        &s,
        &d,
        &format!(
            "cache-storage=db\ncache-bcrypt-rounds=4\ndb={}",
            db_path.display()
        ),
    );
    // A cache row whose password the backend would refuse.
    DbCache::new(
        std::sync::Arc::new(Db::open(&db_path, &DbOptions::default()).unwrap()),
        CacheSettings {
            bcrypt_cost: 4,
            ..CacheSettings::default()
        },
    )
    .store(
        "alice@example.org",
        &xcauth_core::Password::new("planted"),
        std::time::SystemTime::now(),
    );
    let run = || {
        let out = support::xcauthd(&c)
            .args(["-A", "alice", "example.org", "planted"])
            .output()
            .unwrap();
        (
            String::from_utf8_lossy(&out.stdout).trim().to_owned(),
            String::from_utf8_lossy(&out.stderr).into_owned(),
        )
    };
    // As root, the file is trusted: the row vouches.
    assert_eq!(run().0, "True");
    let st = Command::new("chown")
        .arg("nobody")
        .arg(&db_path)
        .status()
        .unwrap();
    assert!(st.success());
    let (answer, stderr) = run();
    assert_eq!(answer, "False", "{stderr}");
    assert!(
        stderr.contains(&format!("database {} is not trusted", db_path.display())),
        "{stderr}"
    );
}
