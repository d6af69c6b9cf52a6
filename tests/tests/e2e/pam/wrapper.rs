//! pam_xcauth.so through real libpam under pam_wrapper (no change under /etc): every option,
//! every return code, stacked tokens, log contents. pamtester is the PAM application.
// Helpers outside #[test] fns: a failed set-up step is a test failure.
#![allow(clippy::unwrap_used, clippy::expect_used)]

use std::os::unix::fs::PermissionsExt;
use std::path::Path;
use std::time::{Duration, Instant};

use xcauth_tests::double::Fault;
use xcauth_tests::pam_support::{
    PamSockServer, Pamtester, World, ALICE_PW, BOB_PW, PAM_WRAPPER_MODULES,
};

const AUTH_ACCT: &[&str] = &["authenticate", "acct_mgmt"];

fn outage() -> Fault {
    Fault::Status(503, "<html>maintenance</html>".into())
}

/// `auth` + `account` lines for the module with `args`.
fn service(module: &str, args: &str) -> String {
    format!("auth required {module} {args}\naccount required {module} {args}\n")
}

#[test]
fn in_process_return_codes_and_log_lines() {
    let w = World::new("pamwrap-codes");
    // With `debug`, so that the final no-secrets check also covers every debug line.
    let dir = w.wrapper_service("xcauth-test", &service(&w.module(), "debug"));
    let run = |user: &str, pw: &str| {
        Pamtester::new("xcauth-test", user, AUTH_ACCT)
            .wrapped(&dir)
            .password(pw)
            .run()
    };

    let r = Pamtester::new(
        "xcauth-test",
        "alice@example.org",
        &["authenticate", "acct_mgmt", "setcred"],
    )
    .wrapped(&dir)
    .item("rhost=192.0.2.9")
    .password(ALICE_PW)
    .run();
    assert_eq!(r.code, "SUCCESS", "{}", r.output);
    assert!(
        r.output.contains("successfully authenticated"),
        "{}",
        r.output
    );
    assert!(
        r.output
            .contains("credential info has successfully been set"),
        "{}",
        r.output
    );
    let line = w.log.wait_for("authentication success");
    assert_eq!(
        line,
        "<86>pam_xcauth(xcauth-test:auth): authentication success; user=alice@example.org \
         rhost=192.0.2.9 via=backend"
    );

    let r = run("alice@example.org", "wrong-password-1");
    assert_eq!(r.code, "AUTH_ERR", "{}", r.output);
    w.log.wait_for("user=alice@example.org reason=bad_password");

    let r = run("carol@example.org", "whatever-2");
    assert_eq!(r.code, "USER_UNKNOWN", "{}", r.output);
    w.log.wait_for("user=carol@example.org reason=unknown_user");

    // A JSXC token is checked locally: no backend call.
    let token = w.token("alice");
    let before = w.double.count("auth");
    let r = run("alice@example.org", &token);
    assert_eq!(r.code, "SUCCESS", "{}", r.output);
    assert_eq!(w.double.count("auth"), before);
    w.log.wait_for("via=token");

    let r = run("alice@example.org", "");
    assert_eq!(r.code, "CRED_INSUFFICIENT", "{}", r.output);

    w.double.set_fault(outage());
    let r = run("alice@example.org", ALICE_PW);
    assert_eq!(r.code, "AUTHINFO_UNAVAIL", "{}", r.output);
    let line = w.log.wait_for("backend unavailable");
    assert!(
        line.starts_with(
            "<83>pam_xcauth(xcauth-test:auth): backend unavailable; user=alice@example.org reason="
        ),
        "{line}"
    );
    assert!(line.contains("503"), "{line}");
    w.double.set_fault(Fault::None);

    let lines = w.log.lines();
    assert!(lines.iter().filter(|l| l.contains("debug:")).count() > 20);
    w.log
        .assert_no_secrets(&w.secrets(&[&token, "wrong-password-1", "whatever-2"]), &[]);
}

#[test]
fn account_management_without_authentication_asks_isuser() {
    let w = World::new("pamwrap-acct");
    // Without account_check: PAM_IGNORE and no backend call (libpam then says PERM_DENIED,
    // as nothing in this one-line stack vouched).
    let plain = w.wrapper_service("xcauth-plain", &service(&w.module(), ""));
    let r = Pamtester::new("xcauth-plain", "bob@example.org", &["acct_mgmt"])
        .wrapped(&plain)
        .run();
    assert_eq!(r.code, "PERM_DENIED", "{}", r.output);
    assert_eq!(w.double.total(), 0);
    let dir = w.wrapper_service("xcauth-test", &service(&w.module(), "account_check"));
    let acct = |user: &str| {
        Pamtester::new("xcauth-test", user, &["acct_mgmt"])
            .wrapped(&dir)
            .run()
    };

    assert_eq!(acct("bob@example.org").code, "SUCCESS");
    assert_eq!(w.double.count("isuser"), 1);
    let r = acct("carol@example.org");
    assert_eq!(r.code, "USER_UNKNOWN", "{}", r.output);
    w.log
        .wait_for("account check failed; user=carol@example.org reason=unknown_user");
    let r = acct("bob");
    assert_eq!(r.code, "USER_UNKNOWN", "no domain: {}", r.output);
    w.double.set_fault(outage());
    let r = acct("bob@example.org");
    assert_eq!(r.code, "AUTHINFO_UNAVAIL", "{}", r.output);
    w.double.set_fault(Fault::None);

    // After our own successful authenticate, account needs no backend call (the marker).
    let isuser_before = w.double.count("isuser");
    let r = Pamtester::new("xcauth-test", "alice@example.org", AUTH_ACCT)
        .wrapped(&dir)
        .password(ALICE_PW)
        .run();
    assert_eq!(r.code, "SUCCESS", "{}", r.output);
    assert_eq!(w.double.count("isuser"), isuser_before);
}

#[test]
fn session_and_chauthtok_are_ignored_and_setcred_succeeds() {
    let w = World::new("pamwrap-ignore");
    let m = w.module();
    // `[ignore=ignore default=bad]`: PAM_IGNORE is skipped (pam_permit decides), any other
    // result, SUCCESS included, would fail the stack.
    let text = format!(
        "auth required {m}\n\
         session [ignore=ignore default=bad] {m}\nsession required pam_permit.so\n\
         password [ignore=ignore default=bad] {m}\npassword required pam_permit.so\n"
    );
    let dir = w.wrapper_service("xcauth-test", &text);
    let r = Pamtester::new(
        "xcauth-test",
        "alice@example.org",
        &[
            "authenticate",
            "setcred",
            "open_session",
            "close_session",
            "chauthtok",
        ],
    )
    .wrapped(&dir)
    .password(ALICE_PW)
    .run();
    assert_eq!(r.code, "SUCCESS", "{}", r.output);
    assert!(
        r.output.contains("successfully opened a session"),
        "{}",
        r.output
    );
    assert!(
        r.output
            .contains("authentication token altered successfully"),
        "{}",
        r.output
    );
}

#[test]
fn domain_and_group_options() {
    let w = World::new("pamwrap-options");
    let m = w.module();
    let dir = w.wrapper_service("with-domain", &service(&m, "domain=Example.org"));
    w.wrapper_service("no-domain", &service(&m, ""));
    w.wrapper_service("team", &service(&m, "group=Team"));
    w.wrapper_service("admins", &service(&m, "group=Admins,Other"));
    let run = |svc: &str, user: &str, pw: &str| {
        Pamtester::new(svc, user, AUTH_ACCT)
            .wrapped(&dir)
            .password(pw)
            .run()
    };

    assert_eq!(run("with-domain", "alice", ALICE_PW).code, "SUCCESS");
    w.log
        .wait_for("authentication success; user=alice via=backend");
    let last = w.double.last_request().unwrap().body_str();
    assert!(last.contains("username=alice&domain=example.org"), "{last}");
    // An explicit domain wins over domain=.
    assert_eq!(
        run("with-domain", "alice@example.org", ALICE_PW).code,
        "SUCCESS"
    );

    let r = run("no-domain", "alice", ALICE_PW);
    assert_eq!(r.code, "USER_UNKNOWN", "{}", r.output);
    assert!(
        !r.prompted(),
        "no password prompt for a name we cannot serve: {}",
        r.output
    );
    w.log
        .wait_for("authentication failure; user=alice reason=no_domain");

    assert_eq!(run("team", "alice@example.org", ALICE_PW).code, "SUCCESS");
    let r = run("team", "bob@example.org", BOB_PW);
    assert_eq!(r.code, "PERM_DENIED", "{}", r.output);
    w.log
        .wait_for("user=bob@example.org reason=not_in_group required=Team");
    assert_eq!(
        run("admins", "alice@example.org", ALICE_PW).code,
        "PERM_DENIED"
    );
    // A wrong password is a wrong password, whatever the groups.
    assert_eq!(run("team", "bob@example.org", "nope").code, "AUTH_ERR");
    // account honours group= too.
    let r = Pamtester::new("team", "bob@example.org", &["acct_mgmt"])
        .wrapped(&dir)
        .run();
    assert_eq!(r.code, "PERM_DENIED", "{}", r.output);
    w.log.assert_no_secrets(&w.secrets(&[]), &[]);
}

/// `group=` on the account line is honoured even when our own auth line (without `group=`,
/// or with other groups) authenticated the user on this handle — not just for account-only
/// calls. Without that, `auth … pam_xcauth.so` + `account required pam_xcauth.so group=staff`
/// admitted every Nextcloud user.
#[test]
fn account_group_applies_after_our_own_authentication() {
    let w = World::new("pamwrap-acct-group");
    let m = w.module();
    let dir = w.wrapper_service(
        "auth-nogroup",
        &format!("auth required {m}\naccount required {m} group=Team\n"),
    );
    w.wrapper_service(
        "both-team",
        &format!("auth required {m} group=Team\naccount required {m} group=Admins,Team\n"),
    );
    w.wrapper_service(
        "team-then-admins",
        &format!("auth required {m} group=Team\naccount required {m} group=Admins\n"),
    );
    let run = |svc: &str, user: &str, pw: &str| {
        Pamtester::new(svc, user, AUTH_ACCT)
            .wrapped(&dir)
            .password(pw)
            .run()
    };

    // bob (in no group) authenticates, and the account line turns him away.
    let r = run("auth-nogroup", "bob@example.org", BOB_PW);
    assert!(
        r.output.contains("successfully authenticated"),
        "{}",
        r.output
    );
    assert_eq!(r.code, "PERM_DENIED", "{}", r.output);
    w.log.wait_for(
        "pam_xcauth(auth-nogroup:account): account check failed; user=bob@example.org \
         reason=not_in_group required=Team",
    );
    // alice (in Team) passes; the account line asked for her groups itself.
    let rosters = w.double.count("sharedroster");
    let r = run("auth-nogroup", "alice@example.org", ALICE_PW);
    assert_eq!(r.code, "SUCCESS", "{}", r.output);
    assert!(w.double.count("sharedroster") > rosters);
    // With a token (checked locally at auth) the group check still happens at account.
    let token = w.token("bob");
    let r = run("auth-nogroup", "bob@example.org", &token);
    assert_eq!(r.code, "PERM_DENIED", "{}", r.output);

    // The auth line verified Team, which the account line accepts: no second group lookup.
    let before = w.double.count("sharedroster");
    let r = Pamtester::new("both-team", "alice@example.org", &["authenticate"])
        .wrapped(&dir)
        .password(ALICE_PW)
        .run();
    assert_eq!(r.code, "SUCCESS", "{}", r.output);
    let per_auth = w.double.count("sharedroster") - before;
    assert!(per_auth > 0);
    let before = w.double.count("sharedroster");
    let r = run("both-team", "alice@example.org", ALICE_PW);
    assert_eq!(r.code, "SUCCESS", "{}", r.output);
    assert_eq!(
        w.double.count("sharedroster") - before,
        per_auth,
        "account repeated the group lookup"
    );

    // The auth line verified Team, but the account line wants Admins.
    let r = run("team-then-admins", "alice@example.org", ALICE_PW);
    assert!(
        r.output.contains("successfully authenticated"),
        "{}",
        r.output
    );
    assert_eq!(r.code, "PERM_DENIED", "{}", r.output);
    w.log.assert_no_secrets(&w.secrets(&[&token]), &[]);
}

#[test]
fn configuration_errors_are_service_errors() {
    let w = World::new("pamwrap-config");
    let log = w.log.path().display().to_string();
    let so = w.so.display().to_string();
    let no_secret = w
        .scratch
        .write("nosecret.conf", &format!("url={}\n", w.double.url()));
    xcauth_tests::pam_support::secure_conf(&no_secret);
    let readable = w
        .scratch
        .write("readable.conf", &std::fs::read_to_string(&w.conf).unwrap());
    // A symbolic link at the configured path, even to a good file.
    let link = w.scratch.join("link.conf");
    std::os::unix::fs::symlink(&w.conf, &link).unwrap();
    // A good file in a directory anyone may write to (they could swap it).
    let open_dir = w.scratch.join("open");
    std::fs::create_dir(&open_dir).unwrap();
    let in_open_dir = open_dir.join("xcauth.conf");
    std::fs::copy(&w.conf, &in_open_dir).unwrap();
    xcauth_tests::pam_support::secure_conf(&in_open_dir);
    std::fs::set_permissions(&open_dir, std::fs::Permissions::from_mode(0o777)).unwrap();
    // The secret pasted on a line of its own: the error must not quote it.
    let stray = w.scratch.write(
        "stray.conf",
        &format!(
            "{}Stray2Secret9Line\n",
            std::fs::read_to_string(&w.conf).unwrap()
        ),
    );
    xcauth_tests::pam_support::secure_conf(&stray);
    // The stray line is the last one: the error names its number.
    let stray_line = std::fs::read_to_string(&stray).unwrap().lines().count();
    let stray_expect = format!("stray.conf:{stray_line}: unrecognised line");
    let cases: Vec<(&str, String, &str)> = vec![
        (
            "symlinked",
            format!("config={} syslog_socket={log}", link.display()),
            "link.conf is a symbolic link: refused",
        ),
        (
            "open-dir",
            format!("config={} syslog_socket={log}", in_open_dir.display()),
            "/open is writable by group or others (mode 0777)",
        ),
        (
            "stray-secret",
            format!("config={} syslog_socket={log}", stray.display()),
            stray_expect.as_str(),
        ),
        (
            "missing-config",
            format!("config=/nonexistent/xcauth.conf syslog_socket={log}"),
            "/nonexistent/xcauth.conf",
        ),
        (
            "no-secret",
            format!("config={} syslog_socket={log}", no_secret.display()),
            "secret is required",
        ),
        (
            "world-readable",
            format!("config={} syslog_socket={log}", readable.display()),
            "readable by everyone",
        ),
        (
            "unknown-option",
            format!("{} secret=hunter2-in-argv", w.module().replace(&so, "")),
            "unknown option 'secret'",
        ),
        (
            "bad-value",
            format!("{} socket_timeout=0", w.module().replace(&so, "")),
            "socket_timeout",
        ),
        (
            "relative",
            format!("{} config=xcauth.conf", w.module().replace(&so, "")),
            "absolute path",
        ),
    ];
    for (name, args, expect) in &cases {
        // Account without our authentication reads the configuration only with
        // account_check (otherwise it answers PAM_IGNORE without looking at anything).
        let acct_name = format!("{name}-acct");
        let dir = w.wrapper_service(name, &service(&so, args));
        w.wrapper_service(&acct_name, &service(&so, &format!("{args} account_check")));
        for (svc, ops) in [
            (name.to_string(), &["authenticate"][..]),
            (acct_name, &["acct_mgmt"][..]),
        ] {
            let r = Pamtester::new(&svc, "alice@example.org", ops)
                .wrapped(&dir)
                .password(ALICE_PW)
                .run();
            assert_eq!(r.code, "SERVICE_ERR", "{name} {ops:?}: {}", r.output);
            assert!(
                !r.prompted(),
                "{name}: no prompt before the configuration is usable"
            );
        }
        let line = w.log.wait_for(expect);
        assert!(
            line.starts_with("<83>"),
            "configuration errors are LOG_ERR: {line}"
        );
    }
    w.log
        .assert_no_secrets(&w.secrets(&["hunter2-in-argv", "Stray2Secret9Line"]), &[]);
}

#[test]
fn use_first_pass_and_try_first_pass_with_a_stacked_token() {
    let w = World::new("pamwrap-firstpass");
    let m = w.module();
    let set = format!("{PAM_WRAPPER_MODULES}/pam_set_items.so");
    let dir = w.wrapper_service(
        "use",
        &format!("auth required {set}\nauth required {m} use_first_pass\n"),
    );
    w.wrapper_service(
        "try",
        &format!("auth required {set}\nauth required {m} try_first_pass\n"),
    );
    w.wrapper_service(
        "plain",
        &format!("auth required {set}\nauth required {m}\n"),
    );
    // The second instance only sees the password if the first stored what it prompted for.
    w.wrapper_service(
        "chain",
        &format!("auth required {m}\nauth required {m} use_first_pass debug\n"),
    );
    let run = |svc: &str, stacked: Option<&str>, typed: &str| {
        let mut p = Pamtester::new(svc, "alice@example.org", &["authenticate"])
            .wrapped(&dir)
            .password(typed);
        if let Some(tok) = stacked {
            p = p.env("PAM_AUTHTOK", tok);
        }
        p.run()
    };

    let r = run("use", Some(ALICE_PW), "");
    assert_eq!((r.code, r.prompted()), ("SUCCESS", false), "{}", r.output);
    let before = w.double.count("auth");
    let r = run("use", None, ALICE_PW);
    assert_eq!(
        (r.code, r.prompted()),
        ("AUTH_ERR", false),
        "use_first_pass never prompts: {}",
        r.output
    );
    assert_eq!(
        w.double.count("auth"),
        before,
        "no backend call without a password"
    );
    let r = run("use", Some("wrong-stacked"), "");
    assert_eq!(r.code, "AUTH_ERR", "{}", r.output);

    let r = run("try", Some(ALICE_PW), "");
    assert_eq!((r.code, r.prompted()), ("SUCCESS", false), "{}", r.output);
    let r = run("try", None, ALICE_PW);
    assert_eq!(
        (r.code, r.prompted()),
        ("SUCCESS", true),
        "try_first_pass prompts: {}",
        r.output
    );
    let token = w.token("alice");
    let r = run("try", Some(&token), "");
    assert_eq!(r.code, "SUCCESS", "{}", r.output);
    w.log.wait_for("via=token");

    // Without either option a stacked token is used as well (pam_get_authtok semantics).
    let r = run("plain", Some(ALICE_PW), "");
    assert_eq!((r.code, r.prompted()), ("SUCCESS", false), "{}", r.output);

    let before = w.double.count("auth");
    let r = run("chain", None, ALICE_PW);
    assert_eq!(r.code, "SUCCESS", "{}", r.output);
    assert_eq!(r.output.matches("Password:").count(), 1, "{}", r.output);
    assert_eq!(w.double.count("auth"), before + 2);
    w.log
        .assert_no_secrets(&w.secrets(&[&token, "wrong-stacked"]), &[]);
}

#[test]
fn quiet_drops_expected_failures_and_debug_adds_detail() {
    let w = World::new("pamwrap-quiet");
    let m = w.module();
    let dir = w.wrapper_service("quiet", &service(&m, "quiet"));
    w.wrapper_service("debug", &service(&m, "debug"));
    let run = |svc: &str, user: &str, pw: &str| {
        Pamtester::new(svc, user, &["authenticate"])
            .wrapped(&dir)
            .password(pw)
            .run()
    };

    assert_eq!(run("quiet", "alice@example.org", "wrong").code, "AUTH_ERR");
    assert_eq!(run("quiet", "carol@example.org", "x").code, "USER_UNKNOWN");
    assert_eq!(run("quiet", "alice", "x").code, "USER_UNKNOWN");
    assert_eq!(run("quiet", "alice@example.org", ALICE_PW).code, "SUCCESS");
    w.log.wait_for("authentication success");
    w.double.set_fault(outage());
    assert_eq!(
        run("quiet", "alice@example.org", ALICE_PW).code,
        "AUTHINFO_UNAVAIL"
    );
    w.log.wait_for("backend unavailable");
    w.double.set_fault(Fault::None);
    // Every line of the runs above is in before the checks of what is missing.
    w.log.settle();
    let lines = w.log.take();
    assert!(
        !lines.iter().any(|l| l.contains("authentication failure")),
        "{lines:#?}"
    );
    assert!(!lines.iter().any(|l| l.contains("debug:")), "{lines:#?}");

    assert_eq!(
        run("debug", "alice@example.org", "wrong-pw-3").code,
        "AUTH_ERR"
    );
    w.log.wait_for("debug: returning AUTH_ERR");
    let lines = w.log.take();
    for needle in [
        "<87>pam_xcauth(debug:auth): debug: auth flags=",
        "options: debug config=",
        "debug: user=alice domain=example.org via in-process",
        "url_host=127.0.0.1",
        "debug: auth result=rejected elapsed_ms=",
        "<85>pam_xcauth(debug:auth): authentication failure; user=alice@example.org reason=bad_password",
    ] {
        assert!(lines.iter().any(|l| l.contains(needle)), "no {needle:?} in {lines:#?}");
    }
    w.log.assert_no_secrets(&w.secrets(&["wrong-pw-3"]), &[]);
}

#[test]
fn socket_mode_asks_xcauthd_and_needs_no_secret() {
    let w = World::new("pamwrap-socket");
    let server = PamSockServer::start(&w.scratch.join("pam.sock"), w.engine());
    let log = w.log.path().display().to_string();
    let so = w.so.display().to_string();
    // config= points nowhere: the module must not read it in socket mode.
    let args = format!(
        "socket={} config=/nonexistent syslog_socket={log} debug",
        server.path().display()
    );
    let dir = w.wrapper_service("sock", &service(&so, &args));
    w.wrapper_service("sock-team", &service(&so, &format!("{args} group=Team")));
    w.wrapper_service(
        "sock-check",
        &service(&so, &format!("{args} account_check")),
    );
    w.wrapper_service(
        "sock-missing",
        &service(
            &so,
            &format!(
                "socket={} syslog_socket={log}",
                w.scratch.join("nothing.sock").display()
            ),
        ),
    );
    let run = |svc: &str, user: &str, pw: &str| {
        Pamtester::new(svc, user, AUTH_ACCT)
            .wrapped(&dir)
            .password(pw)
            .run()
    };

    assert_eq!(run("sock", "alice@example.org", ALICE_PW).code, "SUCCESS");
    w.log.wait_for("via socket=");
    assert_eq!(run("sock", "alice@example.org", "wrong-4").code, "AUTH_ERR");
    assert_eq!(run("sock", "carol@example.org", "x").code, "USER_UNKNOWN");
    let token = w.token("alice");
    assert_eq!(run("sock", "alice@example.org", &token).code, "SUCCESS");
    assert_eq!(
        run("sock-team", "alice@example.org", ALICE_PW).code,
        "SUCCESS"
    );
    assert_eq!(
        run("sock-team", "bob@example.org", BOB_PW).code,
        "PERM_DENIED"
    );
    let acct = Pamtester::new("sock", "bob@example.org", &["acct_mgmt"])
        .wrapped(&dir)
        .run();
    assert_eq!(acct.code, "PERM_DENIED", "not ours: {}", acct.output);
    let acct = Pamtester::new("sock-check", "bob@example.org", &["acct_mgmt"])
        .wrapped(&dir)
        .run();
    assert_eq!(acct.code, "SUCCESS", "{}", acct.output);
    assert!(server.connections() >= 7);

    w.double.set_fault(outage());
    let r = run("sock", "alice@example.org", ALICE_PW);
    assert_eq!(r.code, "AUTHINFO_UNAVAIL", "{}", r.output);
    w.log.wait_for("reason=\"xcauthd: HTTP status 503\"");
    w.double.set_fault(Fault::None);

    let r = run("sock-missing", "alice@example.org", ALICE_PW);
    assert_eq!(r.code, "AUTHINFO_UNAVAIL", "{}", r.output);
    w.log.wait_for("cannot connect to");
    w.log
        .assert_no_secrets(&w.secrets(&[&token, "wrong-4"]), &[]);
}

/// A password goes only to a socket owned by root or by `socket_owner=`: a socket that some
/// other user owns (here: chowned to nobody) is refused before anything is sent.
#[test]
fn socket_mode_refuses_a_socket_owned_by_another_user() {
    let w = World::new("pamwrap-sockowner");
    let server = PamSockServer::start(&w.scratch.join("pam.sock"), w.engine());
    let log = w.log.path().display().to_string();
    let so = w.so.display().to_string();
    let base = format!("socket={} syslog_socket={log}", server.path().display());
    let dir = w.wrapper_service("owner-default", &service(&so, &base));
    w.wrapper_service(
        "owner-nobody",
        &service(&so, &format!("{base} socket_owner=nobody")),
    );
    w.wrapper_service(
        "owner-uid",
        &service(&so, &format!("{base} socket_owner=65534")),
    );
    w.wrapper_service(
        "owner-unknown",
        &service(&so, &format!("{base} socket_owner=no-such-user-xc")),
    );
    let run = |svc: &str| {
        Pamtester::new(svc, "alice@example.org", &["authenticate"])
            .wrapped(&dir)
            .password(ALICE_PW)
            .run()
    };
    // Root-owned (made by this test, as systemd makes xcpam.socket): fine by default.
    assert_eq!(run("owner-default").code, "SUCCESS");
    let before = server.connections();

    std::os::unix::fs::chown(server.path(), Some(65534), None).unwrap();
    let r = run("owner-default");
    assert_eq!(r.code, "AUTHINFO_UNAVAIL", "{}", r.output);
    w.log
        .wait_for("owned by uid 65534, not by root or socket_owner (uid 0)");
    assert_eq!(
        server.connections(),
        before,
        "nothing was sent to the socket"
    );

    assert_eq!(run("owner-nobody").code, "SUCCESS");
    assert_eq!(run("owner-uid").code, "SUCCESS");
    let r = run("owner-unknown");
    assert_eq!(r.code, "SERVICE_ERR", "{}", r.output);
    w.log.wait_for("socket_owner=no-such-user-xc: no such user");

    // Owned by root again, but socket_owner=nobody still accepts root.
    std::os::unix::fs::chown(server.path(), Some(0), None).unwrap();
    assert_eq!(run("owner-nobody").code, "SUCCESS");
    w.log.assert_no_secrets(&w.secrets(&[]), &[]);
}

#[test]
fn socket_timeout_bounds_a_silent_daemon() {
    let w = World::new("pamwrap-sockslow");
    let path = w.scratch.join("silent.sock");
    // Accepts connections (the kernel does, via the backlog) but never answers.
    let _listener = std::os::unix::net::UnixListener::bind(&path).unwrap();
    let args = format!(
        "socket={} socket_timeout=1 syslog_socket={}",
        path.display(),
        w.log.path().display()
    );
    let dir = w.wrapper_service("slow", &service(&w.so.display().to_string(), &args));
    let start = Instant::now();
    let r = Pamtester::new("slow", "alice@example.org", &["authenticate"])
        .wrapped(&dir)
        .password(ALICE_PW)
        .run();
    assert_eq!(r.code, "AUTHINFO_UNAVAIL", "{}", r.output);
    let took = start.elapsed();
    assert!(
        took >= Duration::from_millis(900) && took < Duration::from_secs(5),
        "{took:?}"
    );
    w.log.wait_for("in time");
}

#[test]
fn the_cache_vouches_while_the_backend_is_down() {
    let w = World::with_conf(
        "pamwrap-cache",
        "cache-storage=db\ncache-query-ttl=1s\ncache-bcrypt-rounds=4\ndb=DBPATH",
    );
    let db = w.scratch.join("cache.sqlite3");
    let conf = std::fs::read_to_string(&w.conf)
        .unwrap()
        .replace("DBPATH", &db.display().to_string());
    std::fs::write(&w.conf, conf).unwrap();
    let dir = w.wrapper_service("cache", &service(&w.module(), ""));
    let run = |pw: &str| {
        Pamtester::new("cache", "alice@example.org", AUTH_ACCT)
            .wrapped(&dir)
            .password(pw)
            .run()
    };

    assert_eq!(run(ALICE_PW).code, "SUCCESS");
    w.log.wait_for("via=backend");
    assert!(Path::new(&db).exists());
    std::thread::sleep(Duration::from_millis(1100)); // past cache-query-ttl: normal hits end
    w.double.set_fault(outage());
    let r = run(ALICE_PW);
    assert_eq!(r.code, "SUCCESS", "{}", r.output);
    w.log.wait_for("via=cache_backend_unreachable");
    let r = run("wrong-5");
    assert_eq!(r.code, "AUTHINFO_UNAVAIL", "{}", r.output);
    w.log.assert_no_secrets(&w.secrets(&["wrong-5"]), &[]);
}

#[test]
fn a_held_database_lock_does_not_stall_logins() {
    let w = World::with_conf(
        "pamwrap-dblock",
        "cache-storage=db\ncache-bcrypt-rounds=4\ndb=DBPATH",
    );
    let db = w.scratch.join("cache.sqlite3");
    let conf = std::fs::read_to_string(&w.conf)
        .unwrap()
        .replace("DBPATH", &db.display().to_string());
    std::fs::write(&w.conf, conf).unwrap();
    let dir = w.wrapper_service("dblock", &service(&w.module(), ""));
    let run = |user: &str, pw: &str| {
        Pamtester::new("dblock", user, AUTH_ACCT)
            .wrapped(&dir)
            .password(pw)
            .run()
    };
    assert_eq!(run("alice@example.org", ALICE_PW).code, "SUCCESS");
    w.log.wait_for("via=backend");

    // Another process's writer that never lets go.
    let holder = xcauth_core::db::rusqlite::Connection::open(&db).unwrap();
    holder.execute_batch("BEGIN EXCLUSIVE").unwrap();
    for (user, pw, via) in [
        ("bob@example.org", BOB_PW, "via=backend"),
        ("alice@example.org", ALICE_PW, "via=cache"),
    ] {
        w.log.take();
        let started = Instant::now();
        let r = run(user, pw);
        let took = started.elapsed();
        assert_eq!(r.code, "SUCCESS", "{user}: {}", r.output);
        w.log.wait_for(via);
        assert!(
            took < Duration::from_secs(10),
            "{user}: a login waited {took:?} on the database lock"
        );
    }
    holder.execute_batch("COMMIT").unwrap();
    w.log.assert_no_secrets(&w.secrets(&[]), &[]);
}

/// `chown OWNER PATH` with the system's chown.
fn chown(owner: &str, path: &Path) {
    let st = std::process::Command::new("chown")
        .arg(owner)
        .arg(path)
        .status()
        .unwrap();
    assert!(st.success(), "chown {owner} {}", path.display());
}

#[test]
fn only_a_database_nobody_else_can_write_is_trusted() {
    use xcauth_core::cache::CredentialCache;
    use xcauth_core::db::{CacheSettings, Db, DbCache, DbOptions};

    const PLANTED: &str = "planted-pw-Z9q";
    let w = World::with_conf(
        "pamwrap-dbtrust",
        "cache-storage=db\ncache-bcrypt-rounds=4\ndb=DBPATH",
    );
    let db_dir = w.scratch.join("state");
    std::fs::create_dir(&db_dir).unwrap();
    std::fs::set_permissions(&db_dir, std::fs::Permissions::from_mode(0o755)).unwrap();
    let db_path = db_dir.join("xcauth.sqlite3");
    let conf = std::fs::read_to_string(&w.conf)
        .unwrap()
        .replace("DBPATH", &db_path.display().to_string());
    std::fs::write(&w.conf, conf).unwrap();

    // Whoever can write the file plants a cache row for alice with a password
    // of their choosing, and a domain row sending foreign.example elsewhere.
    {
        let db = std::sync::Arc::new(Db::open(&db_path, &DbOptions::default()).unwrap());
        let cache = DbCache::new(
            db.clone(),
            CacheSettings {
                bcrypt_cost: 4,
                ..CacheSettings::default()
            },
        );
        cache.store(
            "alice@example.org",
            &xcauth_core::Password::new(PLANTED),
            std::time::SystemTime::now(),
        );
        let url = w.double.url();
        db.run(|c| {
            c.execute(
                "INSERT INTO domains (xmppdomain, authsecret, authurl) VALUES ('foreign.example', ?1, ?2)",
                [xcauth_tests::pam_support::SECRET, url.as_str()],
            )
        })
        .unwrap();
    }
    let dir = w.wrapper_service("dbtrust", &service(&w.module(), "debug"));
    let run = |user: &str, pw: &str| {
        Pamtester::new("dbtrust", user, AUTH_ACCT)
            .wrapped(&dir)
            .password(pw)
            .run()
    };

    // Owned by another user: the planted row is not used, the backend says no.
    chown("nobody", &db_path);
    let r = run("alice@example.org", PLANTED);
    assert_eq!(r.code, "AUTH_ERR", "{}", r.output);
    let line = w.log.wait_for("cache=none (database not trusted:");
    assert!(line.contains("owned by root or uid 0"), "{line}");
    w.log.wait_for("user=alice@example.org reason=bad_password");
    // The file is not even opened: its domain rows are not used, so a domain it lists is
    // served by the global backend like any other (served-domains would limit that).
    let asked = w.double.count("auth");
    let r = run("alice@foreign.example", ALICE_PW);
    assert_eq!(r.code, "SUCCESS", "{}", r.output);
    assert_eq!(w.double.count("auth"), asked + 1);
    let body = w.double.last_request().unwrap().body_str();
    assert!(body.contains("domain=foreign.example"), "{body}");
    // Other domains go on with the global backend.
    let r = run("alice@example.org", ALICE_PW);
    assert_eq!(r.code, "SUCCESS", "{}", r.output);
    w.log.wait_for("via=backend");

    // The same file owned by root, mode 0600: the cache vouches (the row was good).
    for suffix in ["", "-wal", "-shm"] {
        let file = std::path::PathBuf::from(format!("{}{suffix}", db_path.display()));
        if file.exists() {
            chown("root", &file);
            std::fs::set_permissions(&file, std::fs::Permissions::from_mode(0o600)).unwrap();
        }
    }
    w.log.take();
    let r = run("alice@example.org", PLANTED);
    assert_eq!(r.code, "SUCCESS", "{}", r.output);
    w.log.wait_for("via=cache");

    // A group-writable directory: refused again.
    std::fs::set_permissions(&db_dir, std::fs::Permissions::from_mode(0o775)).unwrap();
    w.log.take();
    let r = run("alice@example.org", PLANTED);
    assert_eq!(r.code, "AUTH_ERR", "{}", r.output);
    let line = w.log.wait_for("cache=none (database not trusted:");
    assert!(
        line.contains("/state is writable by group or others"),
        "{line}"
    );
    w.log.assert_no_secrets(&w.secrets(&[PLANTED]), &[]);
}
