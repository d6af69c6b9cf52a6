//! xcauthd benchmarks (issue targets in BENCHMARKS.md). Run:
//!
//! ```sh
//! cargo build --release --workspace --bins && cargo bench -p xcauth-tests --bench daemon
//! ```
//!
//! Uses the release `xcauthd` and the in-process backend double on loopback.
#![allow(
    clippy::unwrap_used,
    clippy::expect_used,
    clippy::print_stdout,
    clippy::cast_precision_loss
)]

use std::io::{BufRead, BufReader, Read, Write};
use std::net::TcpStream;
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

use xcauth_tests::double::{BackendDouble, User};
use xcauth_tests::support::{self, Listeners, Scratch};

const SECRET: &str = "bench-secret";

fn release_xcauthd() -> PathBuf {
    let p = support::target_dir().join("xcauthd");
    assert!(
        p.exists(),
        "build first: cargo build --release --workspace --bins"
    );
    p
}

fn token() -> String {
    xcauth_core::token::generate(
        "alice",
        "example.org",
        &xcauth_core::Secret::new(SECRET),
        u32::MAX,
    )
}

fn max_child_rss_kib() -> i64 {
    // SAFETY-free: getrusage only writes the struct we pass.
    let mut ru: libc::rusage = unsafe_zeroed();
    #[allow(unsafe_code)]
    // SAFETY: `ru` is a valid, writable rusage struct.
    unsafe {
        libc::getrusage(libc::RUSAGE_CHILDREN, &mut ru);
    }
    ru.ru_maxrss
}

fn unsafe_zeroed() -> libc::rusage {
    #[allow(unsafe_code)]
    // SAFETY: rusage is plain old data; all-zero is a valid value.
    unsafe {
        std::mem::zeroed()
    }
}

fn percentile(sorted: &[Duration], p: f64) -> Duration {
    sorted[((sorted.len() - 1) as f64 * p).round() as usize]
}

fn conf(s: &Scratch, d: &BackendDouble, extra: &str) -> PathBuf {
    s.write(
        "xcauth.conf",
        &format!(
            "{}log={}\n",
            support::xcauth_conf(&d.url(), SECRET, extra),
            s.path().display()
        ),
    )
}

fn xcauthd(exe: &Path, conf: &Path) -> Command {
    let mut c = Command::new(exe);
    c.arg("-c")
        .arg(conf)
        .env("XCAUTH_SYSTEM_CONFIG", "/nonexistent");
    c
}

fn oneshot(exe: &Path, conf: &Path) {
    let tok = token();
    let runs = 300;
    let mut times = Vec::with_capacity(runs);
    for _ in 0..runs {
        let t = Instant::now();
        let out = xcauthd(exe, conf)
            .args(["-A", "alice", "example.org", &tok])
            .output()
            .unwrap();
        times.push(t.elapsed());
        assert_eq!(out.stdout, b"True\n");
    }
    times.sort();
    let mean = times.iter().sum::<Duration>() / u32::try_from(runs).unwrap();
    println!(
        "oneshot -A with a token, whole process ({runs} runs): mean {:.2} ms, p50 {:.2} ms, p95 {:.2} ms, max RSS {:.1} MB",
        mean.as_secs_f64() * 1e3,
        percentile(&times, 0.5).as_secs_f64() * 1e3,
        percentile(&times, 0.95).as_secs_f64() * 1e3,
        max_child_rss_kib() as f64 / 1024.0
    );
}

fn stream_tokens(exe: &Path, conf: &Path) {
    let n = 100_000;
    let line = format!("auth:alice:example.org:{}\n", token());
    let input = line.repeat(n).into_bytes();
    let mut best = Duration::MAX;
    for _ in 0..3 {
        let t = Instant::now();
        let mut child = xcauthd(exe, conf)
            .args(["-t", "generic"])
            .stdin(Stdio::piped())
            .stdout(Stdio::piped())
            .stderr(Stdio::null())
            .spawn()
            .unwrap();
        let mut stdin = child.stdin.take().unwrap();
        let data = input.clone();
        let w = std::thread::spawn(move || stdin.write_all(&data).unwrap());
        let mut out = Vec::new();
        child.stdout.take().unwrap().read_to_end(&mut out).unwrap();
        w.join().unwrap();
        assert!(child.wait().unwrap().success());
        best = best.min(t.elapsed());
        assert_eq!(out.len(), 2 * n);
        assert!(out.chunks(2).all(|c| c == b"1\n"));
    }
    println!(
        "{n} token auths streamed on stdin (generic, INFO log to file), whole process: best of 3 {:.3} s ({:.2} µs/auth)",
        best.as_secs_f64(),
        best.as_secs_f64() * 1e6 / n as f64
    );
}

fn concurrent_tcp(exe: &Path, s: &Scratch, d: &BackendDouble) {
    let c = s.write(
        "tcp.conf",
        &format!(
            "{}log={}\nmax-connections=256\n",
            support::xcauth_conf(&d.url(), SECRET, ""),
            s.path().display()
        ),
    );
    // The listener is bound here and inherited (socket activation), as in the e2e tests.
    let mut listeners = Listeners::new();
    let addr = listeners.tcp("generic");
    let mut cmd = listeners.into_command(exe);
    cmd.arg("-c").arg(&c);
    let _p = support::start_daemon_with(cmd, &s.join("tcp-stderr.log"));
    let (clients, per) = (200, 1000);
    let line = format!("auth:alice:example.org:{}\n", token());
    let barrier = std::sync::Arc::new(std::sync::Barrier::new(clients + 1));
    let handles: Vec<_> = (0..clients)
        .map(|_| {
            let line = line.clone();
            let barrier = barrier.clone();
            std::thread::spawn(move || {
                let stream = TcpStream::connect(addr).unwrap();
                stream
                    .set_read_timeout(Some(Duration::from_secs(30)))
                    .unwrap();
                let mut w = stream.try_clone().unwrap();
                let mut r = BufReader::new(stream);
                barrier.wait();
                let mut errors = 0;
                let mut reply = String::new();
                for _ in 0..per {
                    if w.write_all(line.as_bytes()).is_err() {
                        errors += 1;
                        continue;
                    }
                    reply.clear();
                    if r.read_line(&mut reply).is_err() || reply != "1\n" {
                        errors += 1;
                    }
                }
                errors
            })
        })
        .collect();
    barrier.wait();
    let t = Instant::now();
    let errors: usize = handles.into_iter().map(|h| h.join().unwrap()).sum();
    let took = t.elapsed();
    let total = clients * per;
    println!(
        "{clients} concurrent TCP clients x {per} token requests (lock-step): {errors} errors, {:.2} s, {:.0} requests/s",
        took.as_secs_f64(),
        total as f64 / took.as_secs_f64()
    );
}

fn backend_overhead(exe: &Path, conf: &Path, d: &BackendDouble) {
    let n = 2000;
    // The double's own floor: signed POSTs on one keep-alive connection.
    let body = "operation=auth&username=alice&domain=example.org&password=secret";
    let mut client = xcauth_tests::double::client::Client::connect(d.addr()).unwrap();
    let t = Instant::now();
    for _ in 0..n {
        let r = client.post_signed(SECRET, body).unwrap();
        assert_eq!(r.status, 200);
    }
    let floor = t.elapsed();
    // xcauthd: the same auths through the generic framing (no cache).
    let input = "auth:alice:example.org:secret\n".repeat(n);
    let before = d.count("auth");
    let t = Instant::now();
    let out = {
        let mut child = xcauthd(exe, conf)
            .args(["-t", "generic"])
            .stdin(Stdio::piped())
            .stdout(Stdio::piped())
            .stderr(Stdio::null())
            .spawn()
            .unwrap();
        child
            .stdin
            .take()
            .unwrap()
            .write_all(input.as_bytes())
            .unwrap();
        child.wait_with_output().unwrap()
    };
    let took = t.elapsed();
    assert_eq!(out.stdout, b"1\n".repeat(n));
    assert_eq!(d.count("auth") - before, n);
    println!(
        "{n} backend auths via xcauthd (keep-alive) vs the double's floor: {:.1} µs/auth vs {:.1} µs/request, overhead {:.1} µs/auth",
        took.as_secs_f64() * 1e6 / n as f64,
        floor.as_secs_f64() * 1e6 / n as f64,
        (took.as_secs_f64() - floor.as_secs_f64()) * 1e6 / n as f64
    );
    println!(
        "  backend connections opened by xcauthd: {}",
        d.connections() - 1
    );
}

fn main() {
    if std::env::args().any(|a| a == "--list") {
        return;
    }
    let exe = release_xcauthd();
    let d = BackendDouble::start(SECRET);
    d.add_user(User::new("alice", "secret"));
    let s = Scratch::new("bench");
    let c = conf(&s, &d, "");
    oneshot(&exe, &c);
    stream_tokens(&exe, &c);
    concurrent_tcp(&exe, &s, &d);
    backend_overhead(&exe, &c, &d);
}
