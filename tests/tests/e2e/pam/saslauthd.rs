//! `saslauthd -a pam` (pre-forked, `-n 3`, with and without `-r`) running pam_xcauth.so from
//! the `pam.d-examples/smtp` file as service `smtp` (under pam_wrapper), queried with
//! testsaslauthd like Postfix would.
// Helpers outside #[test] fns: a failed set-up step is a test failure.
#![allow(clippy::unwrap_used, clippy::expect_used)]

use std::path::Path;
use std::process::{Command, Stdio};
use std::time::Duration;

use xcauth_tests::pam_support::{distinct, example, instantiate, wait_output, World, ALICE_PW};
use xcauth_tests::support::{require_program, Proc};

/// A running saslauthd. Stopped with SIGTERM, on which `saslauthd -d` kills its whole process
/// group — its own session (setsid), so the pre-forked workers go too and the test survives.
pub(super) struct Saslauthd(Proc);

impl Drop for Saslauthd {
    fn drop(&mut self) {
        self.0.signal("TERM");
        let _ = self.0.wait_exit(Duration::from_secs(5));
    }
}

/// saslauthd with `-n 3` (master + 2 pre-forked workers).
pub(super) fn saslauthd(
    w: &World,
    service_dir: &Path,
    tag: &str,
    realm_join: bool,
) -> (Saslauthd, std::path::PathBuf) {
    let dir = w.scratch.join(tag);
    std::fs::create_dir_all(&dir).unwrap();
    let out_path = w.scratch.join(&format!("{tag}.out"));
    let out = std::fs::File::create(&out_path).unwrap();
    let mut cmd = Command::new(require_program("setsid"));
    cmd.arg(require_program("saslauthd"))
        .args(["-a", "pam", "-d", "-n", "3", "-m"])
        .arg(&dir)
        .env("LD_PRELOAD", "libpam_wrapper.so")
        .env("PAM_WRAPPER", "1")
        .env("PAM_WRAPPER_SERVICE_DIR", service_dir)
        .stdin(Stdio::null())
        .stdout(out.try_clone().unwrap())
        .stderr(out);
    if realm_join {
        cmd.arg("-r");
    }
    let mut p = Saslauthd(Proc::spawn("saslauthd", &mut cmd).with_log(&out_path));
    let mux = dir.join("mux");
    p.0.wait_for_unix(&mux, Duration::from_secs(10));
    (p, mux)
}

/// `testsaslauthd -s smtp`: true for `OK "Success."`.
fn testsaslauthd(mux: &Path, user: &str, realm: Option<&str>, password: &str) -> bool {
    let mut cmd = Command::new(require_program("testsaslauthd"));
    cmd.args(["-u", user, "-p", password, "-s", "smtp", "-f"])
        .arg(mux);
    if let Some(r) = realm {
        cmd.args(["-r", r]);
    }
    let child = cmd
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    let out = wait_output(child, Duration::from_secs(20));
    let text = String::from_utf8_lossy(&out.stdout).into_owned();
    let ok = text.contains("OK \"Success.\"");
    assert_eq!(ok, out.status.success(), "{text}");
    assert!(
        ok || text.contains("NO \"authentication failed\""),
        "unexpected answer: {text}"
    );
    ok
}

#[test]
fn saslauthd_prefork_without_and_with_realm_join() {
    let w = World::new("sasl");
    let smtp = instantiate(&example("smtp"), &w.module(), None);
    let services = w.wrapper_service("smtp", &smtp);
    let token = w.token("alice");

    // Without -r, PAM sees only the local part; domain=example.org completes it.
    {
        let (_sasl, mux) = saslauthd(&w, &services, "plain", false);
        assert!(testsaslauthd(&mux, "alice", None, ALICE_PW));
        assert!(testsaslauthd(&mux, "alice", Some("example.org"), ALICE_PW));
        w.log
            .wait_for("authentication success; user=alice via=backend");
        assert!(testsaslauthd(&mux, "alice", None, &token));
        assert!(!testsaslauthd(&mux, "alice", None, "wrong-sasl-1"));
        assert!(!testsaslauthd(&mux, "carol", None, "wrong-sasl-2"));

        // Concurrent requests are spread over the pre-forked workers; every answer is right.
        let answers: Vec<(bool, bool)> = std::thread::scope(|s| {
            let handles: Vec<_> = (0..18)
                .map(|i| {
                    let mux = &mux;
                    s.spawn(move || {
                        let good = i % 3 != 0;
                        let pw = if good { ALICE_PW } else { "wrong-sasl-3" };
                        (good, testsaslauthd(mux, "alice", None, pw))
                    })
                })
                .collect();
            handles.into_iter().map(|h| h.join().unwrap()).collect()
        });
        for (expected, got) in answers {
            assert_eq!(expected, got);
        }
        let out = std::fs::read_to_string(w.scratch.join("plain.out")).unwrap();
        let workers = distinct(
            out.lines()
                .filter(|l| l.contains(":auth success"))
                .filter_map(|l| l.split(']').next().map(str::to_owned)),
        );
        assert!(
            workers >= 2,
            "requests should reach several pre-forked workers:\n{out}"
        );
    }

    // With -r, user and realm arrive joined as alice@example.org.
    {
        let (_sasl, mux) = saslauthd(&w, &services, "realm", true);
        w.log.take();
        assert!(testsaslauthd(&mux, "alice", Some("example.org"), ALICE_PW));
        w.log
            .wait_for("authentication success; user=alice@example.org via=backend");
        let body = w.double.last_request().unwrap().body_str();
        assert!(body.contains("username=alice&domain=example.org"), "{body}");
        assert!(!testsaslauthd(
            &mux,
            "alice",
            Some("example.org"),
            "wrong-sasl-4"
        ));
        assert!(testsaslauthd(&mux, "alice", Some("example.org"), &token));
    }
    w.log.assert_no_secrets(
        &w.secrets(&[
            &token,
            "wrong-sasl-1",
            "wrong-sasl-2",
            "wrong-sasl-3",
            "wrong-sasl-4",
        ]),
        &[],
    );
}
