//! The counters of the built xcauthd (docs/metrics.md): a scripted run through real sockets
//! (generic framing over TCP and the pam socket, with the backend double failing on purpose),
//! then `xcauthd stats`, the SIGUSR1 log line and `curl http://…/metrics` must all report
//! exactly the counts of that run.

#![allow(clippy::unwrap_used, clippy::expect_used)] // tests: a failed unwrap is a failed test
#![allow(clippy::disallowed_methods)] // tests measure real time

use std::collections::HashMap;
use std::io::{Read, Write};
use std::net::{SocketAddr, TcpStream};
use std::path::Path;
use std::process::Command;
use std::time::Duration;

use xcauth_core::pamsock::{self, PamReply, PamRequest};
use xcauth_tests::double::{BackendDouble, Fault, User};
use xcauth_tests::machine::reserve_port;
use xcauth_tests::support::{self, Listeners, Scratch};

const SECRET: &str = "e2e-stats-secret";

fn auth(user: &str, password: &str) -> PamRequest {
    PamRequest::Auth {
        user: user.into(),
        domain: "example.org".into(),
        password: xcauth_core::Password::new(password),
        need_uid: false,
        rhost: String::new(),
    }
}

/// One count the scripted run below must have made: its key in `xcauthd stats` and the
/// SIGUSR1 line, its Prometheus series (spelled out here, as docs/metrics.md names them, not
/// derived), and the value.
struct Expected {
    key: String,
    series: String,
    value: u64,
}

/// What the scripted run below must have counted.
fn expected(url: &str) -> Vec<Expected> {
    let mut e: Vec<Expected> = [
        (
            "requests.generic.auth.accepted",
            r#"xcauth_requests_total{framing="generic",op="auth",result="accepted"}"#,
            4,
        ),
        (
            "requests.generic.auth.rejected",
            r#"xcauth_requests_total{framing="generic",op="auth",result="rejected"}"#,
            3,
        ),
        (
            "requests.generic.auth.unavailable",
            r#"xcauth_requests_total{framing="generic",op="auth",result="unavailable"}"#,
            3,
        ),
        (
            "requests.generic.isuser.accepted",
            r#"xcauth_requests_total{framing="generic",op="isuser",result="accepted"}"#,
            1,
        ),
        (
            "requests.generic.isuser.rejected",
            r#"xcauth_requests_total{framing="generic",op="isuser",result="rejected"}"#,
            0,
        ),
        (
            "requests.generic.invalid.error",
            r#"xcauth_requests_total{framing="generic",op="invalid",result="error"}"#,
            1,
        ),
        (
            "requests.pam.auth.accepted",
            r#"xcauth_requests_total{framing="pam",op="auth",result="accepted"}"#,
            1,
        ),
        (
            "requests.pam.auth.rejected",
            r#"xcauth_requests_total{framing="pam",op="auth",result="rejected"}"#,
            1,
        ),
        (
            "requests.pam.auth.unavailable",
            r#"xcauth_requests_total{framing="pam",op="auth",result="unavailable"}"#,
            2,
        ),
        (
            "requests.pam.isuser.accepted",
            r#"xcauth_requests_total{framing="pam",op="isuser",result="accepted"}"#,
            1,
        ),
        (
            "requests.pam.invalid.error",
            r#"xcauth_requests_total{framing="pam",op="invalid",result="error"}"#,
            0,
        ),
        (
            "requests.ejabberd.auth.accepted",
            r#"xcauth_requests_total{framing="ejabberd",op="auth",result="accepted"}"#,
            0,
        ),
        (
            "backend_calls.auth.answered",
            r#"xcauth_backend_calls_total{op="auth",outcome="answered"}"#,
            5,
        ),
        (
            "backend_calls.auth.unavailable",
            r#"xcauth_backend_calls_total{op="auth",outcome="unavailable"}"#,
            4,
        ),
        (
            "backend_calls.auth.skipped",
            r#"xcauth_backend_calls_total{op="auth",outcome="skipped"}"#,
            1,
        ),
        (
            "backend_calls.isuser.answered",
            r#"xcauth_backend_calls_total{op="isuser",outcome="answered"}"#,
            2,
        ),
        ("logins.backend", r#"xcauth_logins_total{via="backend"}"#, 2),
        ("logins.cache", r#"xcauth_logins_total{via="cache"}"#, 3),
        (
            "cache_hits.normal",
            r#"xcauth_cache_hits_total{lookup="normal"}"#,
            3,
        ),
        (
            "cache_misses.normal",
            r#"xcauth_cache_misses_total{lookup="normal"}"#,
            10,
        ),
        (
            "cache_hits.unreachable",
            r#"xcauth_cache_hits_total{lookup="unreachable"}"#,
            0,
        ),
        (
            "cache_misses.unreachable",
            r#"xcauth_cache_misses_total{lookup="unreachable"}"#,
            5,
        ),
        (
            "throttle_lockouts.user",
            r#"xcauth_throttle_lockouts_total{scope="user"}"#,
            1,
        ),
        ("throttle_refused", "xcauth_throttle_refused_total", 1),
        (
            "roster_syncs.ok",
            r#"xcauth_roster_syncs_total{result="ok"}"#,
            0,
        ),
        ("breakers_open", "xcauth_breakers_open", 1),
    ]
    .into_iter()
    .map(|(key, series, value)| Expected {
        key: key.to_owned(),
        series: series.to_owned(),
        value,
    })
    .collect();
    e.push(Expected {
        key: format!("breaker_open.{url}"),
        series: format!(r#"xcauth_breaker_open{{url="{url}"}}"#),
        value: 1,
    });
    e
}

/// The run: over the generic framing alice logs in (backend) and twice more (cache); bob
/// guesses three times (two rejected by the backend open a lock-out with throttle-failures=2,
/// the third is refused unchecked); one isuser; one malformed line. Over the pam socket carol
/// logs in, dave is rejected, carol exists, and two logins meet a backend answering HTTP 500.
/// Then the backend drops connections: two generic logins are unavailable (transport
/// failures, which open the breaker with breaker-failures=2), a third is skipped by the open
/// breaker, and alice still logs in from the cache.
fn scripted_run(d: &BackendDouble, generic_addr: SocketAddr, pam: &Path) {
    let answers = support::generic_exchange(
        generic_addr,
        &[
            "auth:alice:example.org:secret",
            "auth:alice:example.org:secret",
            "auth:alice:example.org:secret",
            "auth:bob:example.org:wrong1",
            "auth:bob:example.org:wrong2",
            "auth:bob:example.org:wrong3",
            "isuser:alice:example.org",
            "hello",
        ],
    );
    assert_eq!(answers, ["1", "1", "1", "0", "0", "0", "1", "0"]);
    let mut conn = pamsock::Connection::open(pam, Duration::from_secs(10)).unwrap();
    assert!(matches!(
        conn.ask(&auth("carol", "pass")).unwrap(),
        PamReply::Accepted { .. }
    ));
    assert_eq!(conn.ask(&auth("dave", "x")).unwrap(), PamReply::Rejected);
    let isuser = PamRequest::IsUser {
        user: "carol".into(),
        domain: "example.org".into(),
    };
    assert_eq!(conn.ask(&isuser).unwrap(), PamReply::Exists);
    d.set_fault(Fault::Status(500, "<html>oops</html>".into()));
    for user in ["erin", "frank"] {
        assert!(matches!(
            conn.ask(&auth(user, "x")).unwrap(),
            PamReply::Unavailable(_)
        ));
    }
    d.set_fault(Fault::Drop);
    let answers = support::generic_exchange(
        generic_addr,
        &[
            "auth:zed:example.org:x",
            "auth:zed:example.org:x",
            "auth:zed:example.org:x",
            "auth:alice:example.org:secret",
        ],
    );
    assert_eq!(answers, ["0", "0", "0", "1"]);
    d.set_fault(Fault::None);
}

fn parse_stats(out: &str) -> HashMap<String, u64> {
    out.lines()
        .map(|l| {
            let mut parts = l.split_whitespace();
            let key = parts.next().unwrap().to_owned();
            let value = parts.next().unwrap().parse().unwrap();
            assert!(parts.next().is_none(), "{l}");
            (key, value)
        })
        .collect()
}

fn curl(url: &str) -> (String, String) {
    let out = Command::new(support::require_program("curl"))
        .args(["-sS", "--max-time", "30", "-w", "\n%{http_code}", url])
        .output()
        .unwrap();
    assert!(out.status.success(), "{out:?}");
    let text = String::from_utf8(out.stdout).unwrap();
    let (body, code) = text.rsplit_once('\n').unwrap();
    (body.to_owned(), code.to_owned())
}

#[test]
fn stats_sigusr1_and_metrics_report_the_scripted_run() {
    let d = BackendDouble::start(SECRET);
    for (u, p) in [("alice", "secret"), ("bob", "builder"), ("carol", "pass")] {
        d.add_user(User::new(u, p));
    }
    let s = Scratch::new("stats");
    // xcauthd binds its listen= addresses itself (`xcauthd stats` finds the pam socket in
    // them) and the metrics port: ports reserved for this test.
    let leases = [reserve_port(), reserve_port()];
    let (generic_addr, metrics) = (leases[0].addr(), leases[1].addr());
    let pam = s.join("pam.sock");
    let conf = s.write(
        "xcauth.conf",
        &support::xcauth_conf(
            &d.url(),
            SECRET,
            &format!(
                "listen=[generic@tcp:{generic_addr}, pam@unix:{}]\ncache-storage=memory\n\
                 breaker-failures=2\nthrottle-failures=2\nmetrics-listen={metrics}",
                pam.display()
            ),
        ),
    );
    let log = s.join("daemon.log");
    let mut daemon = support::start_daemon_listening(&conf, &log);

    scripted_run(&d, generic_addr, &pam);
    let want = expected(&d.url());

    // xcauthd stats, finding the socket in the config's listen=.
    let out = support::xcauthd(&conf).arg("stats").output().unwrap();
    assert!(out.status.success(), "{out:?}");
    let stats = parse_stats(&String::from_utf8(out.stdout).unwrap());
    for Expected { key, value, .. } in &want {
        assert_eq!(stats.get(key), Some(value), "xcauthd stats: {key}");
    }
    // The latency percentiles come from the 11 timed calls: ordered and non-zero.
    let p = |q: &str| stats[&format!("backend_latency_ms.{q}")];
    assert!(p("p50") >= 1 && p("p50") <= p("p90") && p("p90") <= p("p99"));
    assert!(p("p99") <= p("max").max(1), "{stats:?}");
    // --socket names it explicitly, without the configuration.
    let out = Command::new(support::bin("xcauthd"))
        .args(["stats", "--socket"])
        .arg(&pam)
        .env("XCAUTH_SYSTEM_CONFIG", "/nonexistent/xcauth.conf")
        .output()
        .unwrap();
    assert!(out.status.success(), "{out:?}");
    let without_uptime = |mut m: HashMap<String, u64>| {
        m.remove("uptime_seconds");
        m
    };
    assert_eq!(
        without_uptime(parse_stats(&String::from_utf8(out.stdout).unwrap())),
        without_uptime(stats.clone())
    );

    // SIGUSR1: one line with every non-zero counter.
    daemon.signal("USR1");
    let line = daemon.wait_for_log("stats: uptime_seconds=", Duration::from_secs(10));
    for Expected { key, value, .. } in &want {
        let item = format!(" {key}={value}");
        if *value == 0 {
            assert!(!line.contains(&format!(" {key}=")), "{key} in {line}");
        } else {
            assert!(
                line.contains(&format!("{item} ")) || line.ends_with(&item),
                "{item} not in {line}"
            );
        }
    }

    // GET /metrics with curl.
    let (body, code) = curl(&format!("http://{metrics}/metrics"));
    assert_eq!(code, "200");
    for Expected { series, value, .. } in &want {
        let line = format!("{series} {value}");
        assert!(body.lines().any(|l| l == line), "{line} not in:\n{body}");
    }
    assert!(body
        .lines()
        .any(|l| l == "xcauth_backend_latency_seconds_count 11"));
    let (_, code) = curl(&format!("http://{metrics}/other"));
    assert_eq!(code, "404");
    // An endless request head is cut off at the size bound.
    let mut stream = TcpStream::connect(metrics).unwrap();
    stream
        .set_read_timeout(Some(Duration::from_secs(10)))
        .unwrap();
    let mut head = b"GET /metrics HTTP/1.1\r\n".to_vec();
    head.extend(std::iter::repeat_n(b'x', 20_000));
    let _ = stream.write_all(&head);
    let mut reply = String::new();
    let _ = stream.read_to_string(&mut reply);
    assert!(reply.starts_with("HTTP/1.1 431 "), "{reply}");

    // Asking for stats counted nothing.
    let out = support::xcauthd(&conf).arg("stats").output().unwrap();
    let again = parse_stats(&String::from_utf8(out.stdout).unwrap());
    assert_eq!(again["requests.pam.auth.accepted"], 1);
    assert_eq!(again["requests.pam.invalid.error"], 0);
}

/// A metrics address that is not loopback is a configuration error unless allowed.
#[test]
fn a_remote_metrics_address_is_refused() {
    let s = Scratch::new("stats-remote");
    let conf = s.write(
        "xcauth.conf",
        &support::xcauth_conf(
            "https://cloud.example.org/x",
            SECRET,
            "metrics-listen=0.0.0.0:9101\nlisten=generic@tcp:127.0.0.1:1",
        ),
    );
    let out = support::xcauthd(&conf).arg("--daemon").output().unwrap();
    assert_eq!(out.status.code(), Some(2), "{out:?}");
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(
        err.contains("metrics-listen") && err.contains("loopback"),
        "{err}"
    );
}

/// Idle connections do not starve a scrape: with 16 silent connections open, and then 100 (more
/// than the endpoint keeps), a scrape is answered at once; a silent connection is closed by the
/// endpoint after its short deadline. (Served one at a time, with 5 s each, the first scrape
/// waited 80 s.)
#[test]
fn idle_connections_do_not_starve_a_scrape() {
    let d = BackendDouble::start(SECRET);
    let s = Scratch::new("stats-idle");
    // xcauthd binds the metrics address itself: a port reserved for this test.
    let lease = reserve_port();
    let metrics = lease.addr();
    let conf = s.write(
        "xcauth.conf",
        &support::xcauth_conf(&d.url(), SECRET, &format!("metrics-listen={metrics}")),
    );
    let mut listeners = Listeners::new();
    listeners.tcp("generic");
    let _daemon = support::start_daemon(&conf, &s.join("daemon.log"), listeners);
    let url = format!("http://{metrics}/metrics");
    let (_, code) = curl(&url);
    assert_eq!(code, "200");

    let mut held = Vec::new();
    for count in [16, 100] {
        while held.len() < count {
            let mut c = TcpStream::connect(metrics).unwrap();
            // Half of them start a request and stop.
            if held.len() % 2 == 1 {
                c.write_all(b"GET /metr").unwrap();
            }
            held.push(c);
        }
        // curl gives up after 30 s: far more than a scrape takes on a busy machine, far less
        // than the 80 s a serial endpoint spent on 16 idle connections (5 s each).
        let (body, code) = curl(&url);
        assert_eq!(code, "200", "with {count} idle connections open");
        assert!(body.contains("xcauth_uptime_seconds"), "{body}");
    }
    // The endpoint closes a silent connection on its own (it may have closed the first ones
    // already to make room).
    let last = held.last_mut().unwrap();
    last.set_read_timeout(Some(Duration::from_secs(30)))
        .unwrap();
    let mut buf = [0u8; 64];
    match last.read(&mut buf) {
        Ok(0) => {}
        Err(e) if e.kind() == std::io::ErrorKind::ConnectionReset => {}
        other => panic!("a silent connection is still open after 30 s: {other:?}"),
    }
}

/// A connection flood does not make scrapes fail: two threads connect to the endpoint as fast
/// as they can without sending anything (each keeps its last 200 connections open and closes
/// older ones), and every one of eight scrapes made meanwhile is answered. Before, the
/// endpoint accepted every pending connection in one burst and made room by closing the
/// oldest not yet read, so a scrape accepted early in a burst was closed before its request
/// was read, and a full listen queue (128) dropped the scrapes' SYNs: most scrapes failed.
#[test]
fn a_connection_flood_does_not_fail_scrapes() {
    let d = BackendDouble::start(SECRET);
    let s = Scratch::new("stats-flood");
    let lease = reserve_port();
    let metrics = lease.addr();
    let conf = s.write(
        "xcauth.conf",
        &support::xcauth_conf(&d.url(), SECRET, &format!("metrics-listen={metrics}")),
    );
    let log = s.join("daemon.log");
    let mut listeners = Listeners::new();
    listeners.tcp("generic");
    let _daemon = support::start_daemon(&conf, &log, listeners);
    let url = format!("http://{metrics}/metrics");
    let curl = support::require_program("curl");
    let scrape = || {
        let out = Command::new(&curl)
            .args([
                "-sS",
                "-o",
                "/dev/null",
                "--max-time",
                "10",
                "-w",
                "%{http_code}",
            ])
            .arg(&url)
            .output()
            .unwrap();
        format!(
            "{}{}",
            String::from_utf8_lossy(&out.stdout),
            String::from_utf8_lossy(&out.stderr).trim()
        )
    };
    assert_eq!(scrape(), "200");

    let stop = std::sync::Arc::new(std::sync::atomic::AtomicBool::new(false));
    let flooders: Vec<_> = (0..2)
        .map(|_| {
            let stop = std::sync::Arc::clone(&stop);
            std::thread::spawn(move || {
                let target = socket2::SockAddr::from(metrics);
                let mut held = std::collections::VecDeque::new();
                let mut made = 0usize;
                while !stop.load(std::sync::atomic::Ordering::SeqCst) {
                    let Ok(sock) =
                        socket2::Socket::new(socket2::Domain::IPV4, socket2::Type::STREAM, None)
                    else {
                        std::thread::sleep(Duration::from_millis(1));
                        continue;
                    };
                    let _ = sock.set_nonblocking(true);
                    // In progress or refused: a flood does not look.
                    let _ = sock.connect(&target);
                    made += 1;
                    held.push_back(sock);
                    if held.len() > 200 {
                        held.pop_front();
                    }
                }
                made
            })
        })
        .collect();
    let codes: Vec<String> = (0..8).map(|_| scrape()).collect();
    stop.store(true, std::sync::atomic::Ordering::SeqCst);
    let made: usize = flooders.into_iter().map(|f| f.join().unwrap()).sum();
    assert!(made > 1000, "the flood made only {made} connections");
    assert!(
        codes.iter().all(|c| c == "200"),
        "scrapes during a flood of {made} connections: {codes:?}"
    );
}
