//! Real Dovecot (dovecot-core from Debian) with `passdb { driver = pam }` and the shipped
//! `pam.d-examples/dovecot` as a real `/etc/pam.d` service around the built `pam_xcauth.so`:
//! `doveadm auth test` accepts alice's Nextcloud password and a token, refuses a wrong
//! password, and a backend outage reaches Dovecot as `PAM_AUTHINFO_UNAVAIL` (its log line
//! names it). Dovecot runs on a configuration of its own (base_dir, state and log in the
//! scratch directory, no listener besides its auth sockets, no auth cache), never the
//! system's. `max_requests=2` makes Dovecot replace its PAM auth worker every two requests:
//! the answers stay the same across workers (the module keeps nothing between calls).
//!
//! See the README ("Dovecot") for the passdb block and the cache interplay.
#![allow(clippy::unwrap_used, clippy::expect_used)]

use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::time::Duration;

use xcauth_tests::double::Fault;
use xcauth_tests::pam_support::{
    distinct, example, instantiate, wait_output, EtcPamService, World, ALICE_PW,
};
use xcauth_tests::support::{require_program, Proc};

/// A Dovecot master process on its own configuration, stopped with SIGTERM on drop (the
/// master takes its auth and worker children down with it).
struct Dovecot {
    proc: Proc,
    conf: PathBuf,
    log: PathBuf,
}

impl Dovecot {
    fn start(dir: &Path, pam_service: &str) -> Dovecot {
        let dovecot = require_program("dovecot");
        require_program("doveadm");
        let conf = dir.join("dovecot.conf");
        let log = dir.join("dovecot.log");
        let home = dir.join("home");
        std::fs::create_dir_all(&home).unwrap();
        std::fs::write(
            &conf,
            format!(
                "base_dir = {d}/run\n\
                 state_dir = {d}/state\n\
                 log_path = {log}\n\
                 protocols =\n\
                 listen = 127.0.0.1\n\
                 ssl = no\n\
                 disable_plaintext_auth = no\n\
                 auth_mechanisms = plain\n\
                 # Every request reaches PAM: no Dovecot cache in front of the module.\n\
                 auth_cache_size = 0\n\
                 auth_verbose = yes\n\
                 auth_failure_delay = 0\n\
                 passdb {{\n  driver = pam\n  args = max_requests=2 {pam_service}\n}}\n\
                 userdb {{\n  driver = static\n  args = uid=nobody gid=nogroup home={home}\n}}\n",
                d = dir.display(),
                log = log.display(),
                home = home.display(),
            ),
        )
        .unwrap();
        let mut cmd = Command::new(dovecot);
        cmd.arg("-c")
            .arg(&conf)
            .arg("-F")
            .stdin(Stdio::null())
            .stdout(Stdio::null())
            .stderr(Stdio::null());
        let mut proc = Proc::spawn("dovecot", &mut cmd).with_log(&log);
        proc.wait_for_unix(&dir.join("run/auth-client"), Duration::from_secs(10));
        Dovecot { proc, conf, log }
    }

    /// `doveadm auth test USER PASSWORD`: true when Dovecot accepted the login. `no-penalty`:
    /// Dovecot's auth penalty would otherwise hold every request after a failure from the
    /// same (here: no) address for 2, 4, 8 … seconds before it reaches PAM.
    fn auth_test(&self, user: &str, password: &str) -> bool {
        let child = Command::new(require_program("doveadm"))
            .arg("-c")
            .arg(&self.conf)
            .args(["auth", "test", "-x", "no-penalty", user, password])
            .stdin(Stdio::null())
            .stdout(Stdio::piped())
            .stderr(Stdio::piped())
            .spawn()
            .unwrap();
        let out = wait_output(child, Duration::from_secs(20));
        let text = String::from_utf8_lossy(&out.stdout);
        let ok = text.contains(&format!("passdb: {user} auth succeeded"));
        assert_eq!(
            ok,
            out.status.success(),
            "doveadm's text and exit status disagree: {text}{}",
            String::from_utf8_lossy(&out.stderr)
        );
        ok
    }

    fn log(&self) -> String {
        std::fs::read_to_string(&self.log).unwrap_or_default()
    }

    /// Waits for a line of Dovecot's log containing `needle` (failing at once, with the log,
    /// should Dovecot exit).
    fn wait_for_log(&mut self, needle: &str) -> String {
        self.proc.wait_for_log(needle, Duration::from_secs(30))
    }
}

impl Drop for Dovecot {
    fn drop(&mut self) {
        self.proc.signal("TERM");
        let _ = self.proc.wait_exit(Duration::from_secs(10));
    }
}

#[test]
fn doveadm_auth_test_password_token_wrong_and_outage() {
    let w = World::new("dovecot");
    let svc = EtcPamService::new(
        "dovecot",
        &instantiate(&example("dovecot"), &w.module(), None),
    );
    let mut dv = Dovecot::start(w.scratch.path(), &svc.name);

    // The Nextcloud password, with and without the domain (the example's domain=).
    assert!(dv.auth_test("alice@example.org", ALICE_PW), "{}", dv.log());
    assert!(dv.auth_test("alice", ALICE_PW), "{}", dv.log());
    let token = w.token("alice");
    assert!(dv.auth_test("alice@example.org", &token), "{}", dv.log());
    w.log.wait_for("via=token");

    // A wrong password: a mismatch in Dovecot's words.
    assert!(!dv.auth_test("alice@example.org", "wrong-dovecot-1"));
    dv.wait_for_log("pam_authenticate() failed: Authentication failure");

    // Nextcloud down: the same good password now fails, and Dovecot's log names
    // PAM_AUTHINFO_UNAVAIL (not a mismatch). That the backend was asked again also shows
    // that no Dovecot cache answered.
    let before = w.double.count("auth");
    w.double.set_fault(Fault::Drop);
    assert!(!dv.auth_test("alice@example.org", ALICE_PW));
    let line = dv.wait_for_log("Authentication service cannot retrieve authentication info");
    assert!(line.contains("pam(alice@example.org"), "{line}");
    assert!(w.double.count("auth") > before, "the backend was not asked");
    w.log.wait_for("backend unavailable");
    // Back up: the next login passes again.
    w.double.set_fault(Fault::None);
    assert!(dv.auth_test("alice@example.org", ALICE_PW), "{}", dv.log());

    // max_requests=2: the failures above were answered by more than one auth worker
    // process, and the answers did not change across them.
    let log = dv.log();
    let workers = distinct(
        log.lines()
            .filter(|l| l.contains("pam_authenticate() failed"))
            .filter_map(|l| l.split("auth-worker(").nth(1))
            .filter_map(|l| l.split(')').next().map(str::to_owned)),
    );
    assert!(workers >= 2, "one auth worker served everything:\n{log}");

    w.log
        .assert_no_secrets(&w.secrets(&[&token, "wrong-dovecot-1"]), &[&log]);
}
