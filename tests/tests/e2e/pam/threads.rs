//! Threads of an in-process PAM call, seen from the host: no thread outlives
//! `pam_authenticate`, and the token and credential-cache paths create none at all.
//!
//! The host is one `/usr/bin/python3` (Debian's python3-pam under pam_wrapper) run under
//! `strace -f`. Around each `pam_authenticate` the script touches a marker path
//! (`access("/xcauth-mark/begin/N")`, `…/end/N`), so the trace shows every `clone`, `clone3`,
//! `fork` and `vfork` made inside that one call; right after the call returns (no waiting) the
//! script counts its own threads in `/proc/self/task`. The backend path must show reqwest's
//! runtime thread being created: that proves the trace sees threads at all.
// Helpers outside #[test] fns: a failed set-up step is a test failure.
#![allow(clippy::unwrap_used, clippy::expect_used)]

use std::process::{Command, Stdio};
use std::time::Duration;

use xcauth_tests::double::Fault;
use xcauth_tests::pam_support::{wait_output, World, ALICE_PW, BOB_PW};
use xcauth_tests::support::require_program;

const SCRIPT: &str = r#"
import PAM, os, sys
service, user = sys.argv[1], sys.argv[2]
passwords = sys.argv[3:]
def tasks():
    return len(os.listdir('/proc/self/task'))
for i, password in enumerate(passwords):
    def conv(auth, queries, data, password=password):
        return [(password, 0) for q in queries]
    p = PAM.pam()
    p.start(service)
    p.set_item(PAM.PAM_USER, user)
    p.set_item(PAM.PAM_CONV, conv)
    before = tasks()
    os.access('/xcauth-mark/begin/%d' % i, os.F_OK)
    try:
        p.authenticate()
        result = 'ok'
    except PAM.error as e:
        result = 'refused:%s' % e.args[1]
    os.access('/xcauth-mark/end/%d' % i, os.F_OK)
    after = tasks()
    del p  # pam_end
    print('call %d %s threads %d %d' % (i, result, before, after), flush=True)
"#;

/// One call's outcome: PAM's answer, the host's threads before and right after, and the
/// process-creating system calls the trace saw during the call.
#[derive(Debug)]
struct Call {
    result: String,
    before: usize,
    after: usize,
    clones: Vec<String>,
}

/// Runs one host process that authenticates `user` once per password, in order.
fn host(w: &World, service: &str, user: &str, passwords: &[&str]) -> Vec<Call> {
    let script = w.scratch.write("threads.py", SCRIPT);
    let trace = w.scratch.join(&format!("strace-{service}.txt"));
    let child = Command::new(require_program("strace"))
        .args(["-f", "-qq", "-e", "signal=none", "-o"])
        .arg(&trace)
        .args([
            "-e",
            "trace=clone,clone3,fork,vfork,access,faccessat,faccessat2",
            "/usr/bin/python3",
        ])
        .arg(&script)
        .args([service, user])
        .args(passwords)
        .env("LD_PRELOAD", "libpam_wrapper.so")
        .env("PAM_WRAPPER", "1")
        .env("PAM_WRAPPER_SERVICE_DIR", w.scratch.join("pamwrap"))
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .expect("strace and /usr/bin/python3 (python3-pam): run scripts/install-test-deps.sh");
    let out = wait_output(child, Duration::from_secs(120));
    let stdout = String::from_utf8_lossy(&out.stdout);
    assert!(
        out.status.success(),
        "host failed: {stdout}{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let trace = std::fs::read_to_string(&trace).unwrap();
    let calls: Vec<Call> = stdout
        .lines()
        .enumerate()
        .map(|(i, line)| {
            let f: Vec<&str> = line.split_whitespace().collect();
            assert_eq!(
                (f.len(), f[0], f[1], f[3]),
                (6, "call", i.to_string().as_str(), "threads"),
                "{line}"
            );
            Call {
                result: f[2].to_owned(),
                before: f[4].parse().unwrap(),
                after: f[5].parse().unwrap(),
                clones: clones_between(
                    &trace,
                    &format!("\"/xcauth-mark/begin/{i}\""),
                    &format!("\"/xcauth-mark/end/{i}\""),
                ),
            }
        })
        .collect();
    assert_eq!(calls.len(), passwords.len(), "{stdout}");
    calls
}

/// The trace lines between the two markers that create a thread or a process.
fn clones_between(trace: &str, begin: &str, end: &str) -> Vec<String> {
    let lines: Vec<&str> = trace.lines().collect();
    let start = lines
        .iter()
        .position(|l| l.contains(begin))
        .unwrap_or_else(|| panic!("marker {begin} not in the trace"));
    let stop = start
        + lines[start..]
            .iter()
            .position(|l| l.contains(end))
            .unwrap_or_else(|| panic!("marker {end} not in the trace"));
    lines[start..stop]
        .iter()
        .filter(|l| {
            ["clone(", "clone3(", "fork(", "vfork("]
                .iter()
                .any(|call| l.contains(call))
        })
        .map(|l| (*l).to_owned())
        .collect()
}

#[test]
fn token_and_cache_paths_create_no_thread_and_none_outlives_a_call() {
    let w = World::with_conf(
        "pam-threads",
        "cache-storage=db\ncache-bcrypt-rounds=4\ndb=DBPATH",
    );
    let db = w.scratch.join("cache.sqlite3");
    let conf = std::fs::read_to_string(&w.conf)
        .unwrap()
        .replace("DBPATH", &db.display().to_string());
    std::fs::write(&w.conf, conf).unwrap();
    w.wrapper_service("threads", &format!("auth required {}\n", w.module()));
    let token = w.token("alice");

    let calls = host(
        &w,
        "threads",
        "alice@example.org",
        &[&token, ALICE_PW, ALICE_PW, "wrong-pw-T4"],
    );
    let [by_token, by_backend, by_cache, wrong] = &calls[..] else {
        unreachable!()
    };
    for (what, call) in [("token", by_token), ("cache", by_cache)] {
        assert_eq!(call.result, "ok", "{what}: {call:?}");
        assert!(
            call.clones.is_empty(),
            "the {what} path created a thread or process: {call:?}"
        );
    }
    assert_eq!(by_backend.result, "ok", "{by_backend:?}");
    assert!(
        by_backend.clones.iter().any(|l| l.contains("CLONE_THREAD")),
        "the trace does not show reqwest's thread on the backend path: {by_backend:?}"
    );
    assert!(wrong.result.starts_with("refused"), "{wrong:?}");
    for call in &calls {
        assert_eq!(
            call.after, call.before,
            "a thread outlived the call: {call:?}"
        );
    }
    // The third call was answered by the cache, not by the backend.
    w.log.wait_for("via=token");
    w.log.wait_for("via=cache");
    assert_eq!(
        w.double.count("auth"),
        2,
        "backend asked for the cached login"
    );
}

#[test]
fn no_thread_outlives_a_failed_backend_call() {
    let w = World::new("pam-threads-down");
    w.wrapper_service("down", &format!("auth required {}\n", w.module()));
    for fault in [
        Fault::Drop,
        Fault::Status(503, "<html>maintenance</html>".into()),
    ] {
        w.double.set_fault(fault);
        let calls = host(&w, "down", "bob@example.org", &[BOB_PW, BOB_PW]);
        for call in &calls {
            assert!(call.result.starts_with("refused"), "{call:?}");
            assert!(
                call.clones.iter().any(|l| l.contains("CLONE_THREAD")),
                "{call:?}"
            );
            assert_eq!(
                call.after, call.before,
                "a thread outlived the call: {call:?}"
            );
        }
    }
}
