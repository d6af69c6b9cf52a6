//! The brute-force throttle in-process (docs/throttling.md): 30 separate pamtester processes,
//! each one PAM call of pam_xcauth.so under pam_wrapper, share one root-owned (trusted)
//! database, so their failures count together: after a handful of guesses no password reaches
//! the backend double, while bob and alice's token still log in. `xcauthd throttle list` shows
//! the lock-out and `xcauthd throttle clear` lifts it.
#![allow(clippy::unwrap_used, clippy::expect_used)]

use xcauth_tests::pam_support::{Pamtester, World, ALICE_PW, BOB_PW};
use xcauth_tests::support;

const AUTH: &[&str] = &["authenticate"];

#[test]
fn thirty_pamtester_processes_with_wrong_passwords_count_together() {
    let w = World::with_conf(
        "pam-throttle",
        "cache-storage=db\ncache-bcrypt-rounds=4\ndb=DBPATH",
    );
    let db = w.scratch.join("xcauth.sqlite3");
    let conf = std::fs::read_to_string(&w.conf)
        .unwrap()
        .replace("DBPATH", &db.display().to_string());
    std::fs::write(&w.conf, conf).unwrap();
    let dir = w.wrapper_service("throttle", &format!("auth required {}\n", w.module()));
    let run = |user: &str, pw: &str, rhost: &str| {
        Pamtester::new("throttle", user, AUTH)
            .wrapped(&dir)
            .item(&format!("rhost={rhost}"))
            .password(pw)
            .run()
    };
    for i in 0..30 {
        let r = run("alice@example.org", &format!("guess-{i}"), "192.0.2.50");
        assert_eq!(r.code, "AUTH_ERR", "attempt {i}: {}", r.output);
    }
    let backend = w.double.count("auth");
    assert!(backend <= 6, "{backend} of 30 guesses reached the backend");
    // Even the right password is not checked during the lock-out…
    assert_eq!(
        run("alice@example.org", ALICE_PW, "192.0.2.51").code,
        "AUTH_ERR"
    );
    assert_eq!(w.double.count("auth"), backend);
    // …but another user is not slowed, and alice's token logs in.
    assert_eq!(run("bob@example.org", BOB_PW, "192.0.2.52").code, "SUCCESS");
    let token = w.token("alice");
    assert_eq!(
        run("alice@example.org", &token, "192.0.2.51").code,
        "SUCCESS"
    );

    // The administrator sees the lock-out in the shared table and lifts it.
    let admin = |args: &[&str]| {
        let out = support::xcauthd(&w.conf).args(args).output().unwrap();
        let text = String::from_utf8_lossy(&out.stdout).into_owned();
        assert!(
            out.status.success(),
            "{args:?}: {text}{}",
            String::from_utf8_lossy(&out.stderr)
        );
        text
    };
    let listing = admin(&["throttle", "list"]);
    assert!(
        listing
            .lines()
            .next()
            .is_some_and(|l| l.starts_with("user:alice@example.org\tlocked for ")),
        "{listing}"
    );
    assert!(listing.contains("remote:192.0.2.50"), "{listing}");
    admin(&["throttle", "clear", "alice@example.org"]);
    assert_eq!(
        run("alice@example.org", ALICE_PW, "192.0.2.51").code,
        "SUCCESS"
    );
}
