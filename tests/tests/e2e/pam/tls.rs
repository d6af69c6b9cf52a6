//! pam_xcauth.so (in-process, under pam_wrapper) reaching the backend over HTTPS: a login
//! succeeds with `ca-file=` naming the private CA of the test PKI, and each refused
//! certificate is AUTHINFO_UNAVAIL with a log line naming the cause.

#![allow(clippy::unwrap_used, clippy::expect_used)] // tests: a failed unwrap is a failed test

use xcauth_tests::double::User;
use xcauth_tests::pam_support::{Pamtester, World, ALICE_PW, SECRET as PAM_SECRET};
use xcauth_tests::support::Scratch;
use xcauth_tests::tls::TestPki;

#[test]
fn pam_module_over_https() {
    let s = Scratch::new("tls-pam");
    let pki = TestPki::new(s.path());
    let d = pki.https_double(PAM_SECRET);
    d.add_user(User::new("alice", ALICE_PW));
    let ca = pki.ca.cert.display().to_string();
    let w = World::with_double(s, d, &format!("ca-file={ca}"));
    let dir = w.wrapper_service(
        "xcauth-tls",
        &format!(
            "auth required {}\naccount required {}\n",
            w.module(),
            w.module()
        ),
    );
    let run = || {
        Pamtester::new("xcauth-tls", "alice@example.org", &["authenticate"])
            .wrapped(&dir)
            .password(ALICE_PW)
            .run()
    };
    let r = run();
    assert_eq!(r.code, "SUCCESS", "{}", r.output);
    w.log.wait_for("authentication success");
    for (what, cert, cause) in pki.refused() {
        w.double.set_tls_identity(cert).unwrap();
        w.log.take();
        let r = run();
        assert_eq!(r.code, "AUTHINFO_UNAVAIL", "{what}: {}", r.output);
        let line = w.log.wait_for("backend unavailable");
        assert!(
            line.contains("reason=\"TLS failure: ") && line.contains(cause),
            "{what}: {line}"
        );
    }
    assert_eq!(w.double.count("auth"), 1);
    w.log.assert_no_secrets(&w.secrets(&[]), &[]);
}
