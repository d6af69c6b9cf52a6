//! pam_xcauth.so with real `/etc/pam.d` service files (removed again by drop guards) and
//! pamtester: the basic outcomes, and stacking with pam_unix and a local test user, using the
//! `smtp-stacked` and `smtp-strict` files from `pam.d-examples/`.
// Helpers outside #[test] fns: a failed set-up step is a test failure.
#![allow(clippy::unwrap_used, clippy::expect_used)]

use xcauth_tests::double::{Fault, User};
use xcauth_tests::machine::MachineLock;
use xcauth_tests::pam_support::{
    example, instantiate, EtcPamService, LocalUser, Pamtester, World, ALICE_PW,
};

const AUTH_ACCT: &[&str] = &["authenticate", "acct_mgmt"];

#[test]
fn etc_pam_d_service_good_token_wrong_unknown_down() {
    let w = World::new("etc-basic");
    let m = w.module();
    let svc = EtcPamService::new(
        "basic",
        &format!("auth required {m}\naccount required {m}\n"),
    );
    let run = |user: &str, pw: &str| {
        Pamtester::new(&svc.name, user, AUTH_ACCT)
            .password(pw)
            .run()
    };

    let r = run("alice@example.org", ALICE_PW);
    assert_eq!(r.code, "SUCCESS", "{}", r.output);
    assert!(r.output.contains("account management done"), "{}", r.output);
    let token = w.token("alice");
    assert_eq!(run("alice@example.org", &token).code, "SUCCESS");
    w.log.wait_for("via=token");
    assert_eq!(run("alice@example.org", "wrong-etc-1").code, "AUTH_ERR");
    assert_eq!(run("nobody@example.org", "x").code, "USER_UNKNOWN");
    w.double.set_fault(Fault::Drop);
    assert_eq!(run("alice@example.org", ALICE_PW).code, "AUTHINFO_UNAVAIL");
    w.log.wait_for("backend unavailable");
    w.double.set_fault(Fault::None);
    drop(w.double);
    let r = run("alice@example.org", ALICE_PW);
    assert_eq!(r.code, "AUTHINFO_UNAVAIL", "backend gone: {}", r.output);
    w.log.wait_for("cannot connect");
    let lines = w.log.lines();
    assert!(lines.iter().all(|l| l.starts_with('<')));
    assert!(lines
        .iter()
        .any(|l| l.contains(&format!("pam_xcauth({}:auth)", svc.name))));
    w.log.assert_no_secrets(
        &[
            xcauth_tests::pam_support::SECRET,
            ALICE_PW,
            &token,
            "wrong-etc-1",
        ],
        &[],
    );
}

/// Nextcloud users pass via pam_xcauth, local users via pam_unix (with the password
/// pam_xcauth prompted for), and the strict variant stops a Nextcloud user's wrong password
/// from reaching a same-named local account. At account, local users always get pam_unix's
/// checks: an expired local account is refused even when Nextcloud knows the name and
/// pam_xcauth authenticated it.
#[test]
fn stacking_with_pam_unix_and_the_strict_variant() {
    // Local users: useradd/userdel, one such test at a time on this machine.
    let _machine = MachineLock::take("pam::etc::stacking_with_pam_unix_and_the_strict_variant");
    let w = World::new("etc-stack");
    let local = LocalUser::new("loc", "local-pw-L1");
    let dup = LocalUser::new("dup", "dup-local-pw-D1");
    w.double
        .add_user(User::new(&dup.name, "dup-nextcloud-pw-D2"));
    let expired = LocalUser::new("exp", "exp-local-pw-E1");
    expired.expire();
    w.double
        .add_user(User::new(&expired.name, "exp-nextcloud-pw-E2"));
    let m = w.module();
    // The example files as shipped, plus pam_unix's `nodelay` (its 2 s failure delay would
    // only slow the test down).
    let file = |name: &str| {
        instantiate(&example(name), &m, None).replace("pam_unix.so", "pam_unix.so nodelay")
    };
    let stacked = EtcPamService::new("stacked", &file("smtp-stacked"));
    let strict = EtcPamService::new("strict", &file("smtp-strict"));
    let run = |svc: &EtcPamService, user: &str, pw: &str| {
        Pamtester::new(&svc.name, user, AUTH_ACCT)
            .password(pw)
            .run()
    };
    let account_only =
        |svc: &EtcPamService, user: &str| Pamtester::new(&svc.name, user, &["acct_mgmt"]).run();

    for (svc, strict_variant) in [(&stacked, false), (&strict, true)] {
        let ctx = &svc.name;
        // Nextcloud users, with and without the domain.
        let r = run(svc, "alice@example.org", ALICE_PW);
        assert_eq!(r.code, "SUCCESS", "{ctx}: {}", r.output);
        assert_eq!(run(svc, "alice", ALICE_PW).code, "SUCCESS", "{ctx}");
        let token = w.token("alice");
        assert_eq!(
            run(svc, "alice@example.org", &token).code,
            "SUCCESS",
            "{ctx}"
        );
        // A local user: pam_xcauth says "unknown", pam_unix takes the same password
        // (try_first_pass): one prompt only.
        let r = run(svc, &local.name, "local-pw-L1");
        assert_eq!(r.code, "SUCCESS", "{ctx}: {}", r.output);
        assert_eq!(
            r.output.matches("Password:").count(),
            1,
            "{ctx}: {}",
            r.output
        );
        // Its wrong password: pam_unix's refusal.
        assert_eq!(
            run(svc, &local.name, "wrong-local").code,
            "AUTH_ERR",
            "{ctx}"
        );
        // The same-named user with the Nextcloud password passes via pam_xcauth.
        assert_eq!(
            run(svc, &dup.name, "dup-nextcloud-pw-D2").code,
            "SUCCESS",
            "{ctx}"
        );

        // account, (a): a Nextcloud-only user is unknown to pam_unix (USER_UNKNOWN, ignored);
        // pam_xcauth vouches only for a user it authenticated on this handle (the auth+account
        // runs above), and without one answers PAM_IGNORE: nobody vouched, so libpam refuses.
        let r = account_only(svc, "alice@example.org");
        assert_eq!(r.code, "PERM_DENIED", "{ctx}: {}", r.output);
        let r = account_only(svc, "nobody@example.org");
        assert_eq!(r.code, "PERM_DENIED", "{ctx}: {}", r.output);
        // (b): a local user passes via pam_unix's account check (pam_xcauth, which does not
        // know the name, would have said USER_UNKNOWN).
        let r = account_only(svc, &local.name);
        assert_eq!(r.code, "SUCCESS", "{ctx}: {}", r.output);
        // (c): an expired local account is refused at account, even though Nextcloud knows
        // the name and pam_xcauth accepted its Nextcloud password.
        let r = run(svc, &expired.name, "exp-nextcloud-pw-E2");
        assert!(
            r.output.contains("successfully authenticated"),
            "{ctx}: {}",
            r.output
        );
        assert_eq!(r.code, "ACCT_EXPIRED", "{ctx}: {}", r.output);
        let r = account_only(svc, &expired.name);
        assert_eq!(r.code, "ACCT_EXPIRED", "{ctx}: {}", r.output);
        // Its local password: the plain variant lets pam_unix authenticate it, and account
        // refuses the expired account; the strict one stops at pam_xcauth, which knows the
        // name and refuses the password.
        let expected = if strict_variant {
            "AUTH_ERR"
        } else {
            "ACCT_EXPIRED"
        };
        let r = run(svc, &expired.name, "exp-local-pw-E1");
        assert_eq!(r.code, expected, "{ctx}: {}", r.output);
        // A Nextcloud user's wrong password: the plain variant falls through to pam_unix,
        // which does not know alice@example.org; the strict one stops at pam_xcauth.
        let expected = if strict_variant {
            "AUTH_ERR"
        } else {
            "USER_UNKNOWN"
        };
        let r = run(svc, "alice@example.org", "wrong-stack");
        assert_eq!(r.code, expected, "{ctx}: {}", r.output);
    }

    // The difference: the local password of a user Nextcloud knows.
    let r = run(&stacked, &dup.name, "dup-local-pw-D1");
    assert_eq!(
        r.code, "SUCCESS",
        "plain sufficient falls through to pam_unix: {}",
        r.output
    );
    let r = run(&strict, &dup.name, "dup-local-pw-D1");
    assert_eq!(
        r.code, "AUTH_ERR",
        "strict stops the fall-through: {}",
        r.output
    );

    // Nextcloud down: strict lets local users in (authinfo_unavail=ignore) …
    w.double.set_fault(Fault::Status(502, "bad gateway".into()));
    let r = run(&strict, &local.name, "local-pw-L1");
    assert_eq!(r.code, "SUCCESS", "{}", r.output);
    // … and quiet still logs the outage, but not the expected failures.
    w.log.wait_for("backend unavailable");
    w.double.set_fault(Fault::None);
    let lines = w.log.lines();
    assert!(
        !lines.iter().any(|l| l.contains("authentication failure")),
        "{lines:#?}"
    );
    w.log.assert_no_secrets(
        &w.secrets(&[
            "local-pw-L1",
            "dup-local-pw-D1",
            "dup-nextcloud-pw-D2",
            "exp-local-pw-E1",
            "exp-nextcloud-pw-E2",
            "wrong-stack",
        ]),
        &[],
    );
}
