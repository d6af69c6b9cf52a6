//! Benchmark (ignored by default): `pam_authenticate` latency through real libpam, for the
//! token path and the backend path, in-process and over `socket=`.
//!
//! ```text
//! cargo test --release -p xcauth-tests --test e2e pam::bench -- --ignored --nocapture
//! ```
//!
//! `saslauthd_token_vs_backend` times whole `testsaslauthd` processes against
//! `saslauthd -a pam` (pre-forked, pam_xcauth.so in-process), token and backend passwords
//! alternating, and prints the medians and their difference.
//!
//! One `/usr/bin/python3` process (Debian's python3-pam, under pam_wrapper) runs
//! `pam_start` → `pam_authenticate` → `pam_end` N times and times `pam_authenticate` alone, so
//! process start-up is not measured; libpam still loads the module at every `pam_start`
//! (a reference count after the first load, thanks to `-z nodelete`). The backend is the
//! in-test JSXC double on loopback, so "backend" measures the module's own cost (config read,
//! HTTP client set-up, one HTTP round trip), not Nextcloud's.
// Helpers outside #[test] fns: a failed set-up step is a test failure.
#![allow(clippy::unwrap_used, clippy::expect_used)]

use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

use xcauth_tests::pam_support::{
    example, instantiate, wait_output, PamSockServer, World, ALICE_PW,
};
use xcauth_tests::support::require_program;

use super::saslauthd::saslauthd;

const SCRIPT: &str = r#"
import PAM, sys, time
service, user, password, n = sys.argv[1], sys.argv[2], sys.argv[3], int(sys.argv[4])
def conv(auth, queries, data):
    return [(password, 0) for q in queries]
def once():
    p = PAM.pam()
    p.start(service)
    p.set_item(PAM.PAM_USER, user)
    p.set_item(PAM.PAM_CONV, conv)
    t = time.perf_counter()
    p.authenticate()
    return time.perf_counter() - t
for _ in range(5):
    once()
times = sorted(once() for _ in range(n))
ms = lambda s: s * 1000
print("n=%d mean=%.3f p50=%.3f p90=%.3f p99=%.3f max=%.3f" % (
    n, ms(sum(times) / n), ms(times[n // 2]), ms(times[n * 9 // 10]),
    ms(times[min(n - 1, n * 99 // 100)]), ms(times[-1])))
"#;

fn bench(w: &World, service: &str, password: &str, n: usize) -> String {
    let script = w.scratch.write("bench.py", SCRIPT);
    let child = Command::new("/usr/bin/python3")
        .arg(&script)
        .args([service, "alice@example.org", password, &n.to_string()])
        .env("LD_PRELOAD", "libpam_wrapper.so")
        .env("PAM_WRAPPER", "1")
        .env("PAM_WRAPPER_SERVICE_DIR", w.scratch.join("pamwrap"))
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap_or_else(|e| {
            panic!(
                "/usr/bin/python3 (python3-pam) is needed: run scripts/install-test-deps.sh: {e}"
            )
        });
    let out = wait_output(child, Duration::from_secs(600));
    assert!(
        out.status.success(),
        "benchmark failed: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    String::from_utf8_lossy(&out.stdout).trim().to_owned()
}

#[test]
#[ignore = "benchmark: run with --ignored --nocapture (see the file's doc comment)"]
fn pam_authenticate_latency() {
    let w = World::new("bench");
    let server = PamSockServer::start(&w.scratch.join("pam.sock"), w.engine());
    let so = w.so.display().to_string();
    w.wrapper_service(
        "inproc",
        &format!("auth required {so} config={}\n", w.conf.display()),
    );
    w.wrapper_service(
        "socket",
        &format!("auth required {so} socket={}\n", server.path().display()),
    );
    let token = w.token("alice");
    let profile = if cfg!(debug_assertions) {
        "debug"
    } else {
        "release"
    };
    println!("pam_authenticate latency ({profile} build, ms per call)");
    for (name, service, password, n) in [
        ("in-process, token  ", "inproc", token.as_str(), 1000),
        ("in-process, backend", "inproc", ALICE_PW, 300),
        ("socket=,    token  ", "socket", token.as_str(), 1000),
        ("socket=,    backend", "socket", ALICE_PW, 500),
    ] {
        println!("{name}: {}", bench(&w, service, password, n));
    }
}

/// Wall-clock of one whole `testsaslauthd` process; it must answer OK.
fn testsaslauthd_once(mux: &std::path::Path, password: &str) -> Duration {
    let started = Instant::now();
    let out = Command::new(require_program("testsaslauthd"))
        .args(["-u", "alice", "-p", password, "-s", "smtp", "-f"])
        .arg(mux)
        .output()
        .unwrap();
    let took = started.elapsed();
    let text = String::from_utf8_lossy(&out.stdout);
    assert!(text.contains("OK \"Success.\""), "{text}");
    took
}

#[test]
#[ignore = "benchmark: run with --ignored --nocapture (see the file's doc comment)"]
fn saslauthd_token_vs_backend() {
    const N: usize = 300;
    let w = World::new("bench-sasl");
    let smtp = instantiate(&example("smtp"), &w.module(), None);
    let services = w.wrapper_service("smtp", &smtp);
    let token = w.token("alice");
    let (_sasl, mux) = saslauthd(&w, &services, "bench", false);
    // Warm-up: every pre-forked worker loads the module (and, on its first backend call, the
    // trust store).
    for _ in 0..20 {
        testsaslauthd_once(&mux, &token);
        testsaslauthd_once(&mux, ALICE_PW);
    }
    // XCAUTH_BENCH_HOLD_SECS=N: print the two commands and keep saslauthd up N seconds, for
    // timing them with an outside tool.
    if let Some(secs) = std::env::var("XCAUTH_BENCH_HOLD_SECS")
        .ok()
        .and_then(|s| s.parse().ok())
    {
        let cmd = |pw: &str| {
            format!(
                "testsaslauthd -u alice -p {pw} -s smtp -f {}",
                mux.display()
            )
        };
        println!("token:   {}\nbackend: {}", cmd(&token), cmd(ALICE_PW));
        std::thread::sleep(Duration::from_secs(secs));
    }
    let (mut by_token, mut by_backend) = (Vec::with_capacity(N), Vec::with_capacity(N));
    for _ in 0..N {
        by_token.push(testsaslauthd_once(&mux, &token));
        by_backend.push(testsaslauthd_once(&mux, ALICE_PW));
    }
    by_token.sort();
    by_backend.sort();
    let ms = |d: Duration| d.as_secs_f64() * 1000.0;
    let row = |v: &[Duration]| {
        format!(
            "p10={:.3} p50={:.3} p90={:.3} ms",
            ms(v[N / 10]),
            ms(v[N / 2]),
            ms(v[N * 9 / 10])
        )
    };
    println!("saslauthd -a pam, whole testsaslauthd processes, n={N} each, alternating");
    println!("token:   {}", row(&by_token));
    println!("backend: {}", row(&by_backend));
    println!(
        "backend - token, medians: {:.3} ms",
        ms(by_backend[N / 2]) - ms(by_token[N / 2])
    );
}
