//! xcauthd's admin commands on a real database file, and per-domain settings
//! and the db cache used by the daemon's one-shots.

#![allow(clippy::unwrap_used, clippy::expect_used)] // tests: a failed unwrap is a failed test

use std::io::Write;
use std::path::Path;
use std::process::{Command, Stdio};

use xcauth_tests::double::{BackendDouble, Fault, User};
use xcauth_tests::support::{self, Scratch};

fn run(conf: &Path, args: &[&str], stdin: &str) -> (String, String, Option<i32>) {
    let mut child = support::xcauthd(conf)
        .args(args)
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    child
        .stdin
        .take()
        .unwrap()
        .write_all(stdin.as_bytes())
        .unwrap();
    let out = child.wait_with_output().unwrap();
    (
        String::from_utf8_lossy(&out.stdout).into_owned(),
        String::from_utf8_lossy(&out.stderr).into_owned(),
        out.status.code(),
    )
}

#[test]
fn domains_route_logins_and_admin_commands_never_print_secrets() {
    let global = BackendDouble::start("global-secret");
    global.add_user(User::new("alice", "pw-global"));
    let other = BackendDouble::start("Other-SECRET-123");
    other.add_user(User::new("bob@tenant.example", "pw-other"));
    let s = Scratch::new("admin");
    let db = s.join("xcauth.sqlite3");
    let conf = s.write(
        "xcauth.conf",
        &format!(
            "url={}\nsecret=global-secret\ndb={}\ncache-storage=db\ncache-bcrypt-rounds=4\ntimeout=2\n",
            global.url(),
            db.display()
        ),
    );

    let (out, err, code) = run(
        &conf,
        &[
            "domain",
            "add",
            "xmpp.example",
            &other.url(),
            "--authdomain",
            "tenant.example",
        ],
        "Other-SECRET-123\n",
    );
    assert_eq!(code, Some(0), "{err}");
    assert!(out.contains("xmpp.example"), "{out}");
    let mode =
        std::os::unix::fs::PermissionsExt::mode(&std::fs::metadata(&db).unwrap().permissions());
    assert_eq!(mode & 0o777, 0o600, "database created 0600");

    let (out, _, code) = run(&conf, &["domain", "list"], "");
    assert_eq!(code, Some(0));
    assert!(
        out.contains("xmpp.example") && out.contains("tenant.example"),
        "{out}"
    );
    assert!(
        !out.contains("Other-SECRET-123"),
        "list never shows secrets: {out}"
    );

    // bob logs in on xmpp.example: routed to the other backend with authdomain.
    let (out, err, code) = run(&conf, &["-A", "bob", "xmpp.example", "pw-other"], "");
    assert_eq!((out.trim(), code), ("True", Some(0)), "{err}");
    assert_eq!(other.count("auth"), 1);
    assert_eq!(global.count("auth"), 0);
    assert!(other
        .last_request()
        .unwrap()
        .body_str()
        .contains("domain=tenant.example"));
    // alice on another domain uses the global pair.
    let (out, _, _) = run(&conf, &["-A", "alice", "example.org", "pw-global"], "");
    assert_eq!(out.trim(), "True");

    // The db cache now vouches for alice even with the backend down.
    global.set_fault(Fault::Drop);
    let (out, _, code) = run(&conf, &["-A", "alice", "example.org", "pw-global"], "");
    assert_eq!(
        (out.trim(), code),
        ("True", Some(0)),
        "served from the db cache"
    );
    let (out, _, code) = run(&conf, &["cache", "show", "alice@example.org"], "");
    assert_eq!(code, Some(0));
    assert!(
        out.contains("alice@example.org") && !out.contains("$2b$"),
        "{out}"
    );
    let (out, _, code) = run(&conf, &["cache", "purge", "alice@example.org"], "");
    assert_eq!(code, Some(0), "{out}");
    let (out, _, code) = run(&conf, &["-A", "alice", "example.org", "pw-global"], "");
    assert_eq!(
        (out.trim(), code),
        ("False", Some(3)),
        "purged: the backend is down again"
    );
    let (_, _, code) = run(&conf, &["cache", "show", "alice@example.org"], "");
    assert_eq!(code, Some(1));

    // Change the domain's URL to the global backend: bob is now unknown there.
    global.set_fault(Fault::None);
    let (out, err, code) = run(
        &conf,
        &[
            "domain",
            "change",
            "xmpp.example",
            "--url",
            &global.url(),
            "--secret-stdin",
        ],
        "global-secret\n",
    );
    assert_eq!(code, Some(0), "{out}{err}");
    let (out, _, code) = run(&conf, &["-I", "bob", "xmpp.example"], "");
    assert_eq!(
        (out.trim(), code),
        ("False", Some(1)),
        "now asked at the global backend"
    );
    assert_eq!(
        global.last_request().unwrap().body_str(),
        "operation=isuser&username=bob&domain=tenant.example"
    );

    // Ambiguous or malformed input is refused with exit 2 and a reason.
    for args in [
        &["cache", "purge", "no-at-sign"][..],
        &["delete-user", "a@b@c"],
        &["delete-host", "ex%ample.org"],
        &["delete-group", "nogroup"],
        &["domain", "change", "xmpp.example"],
    ] {
        let (_, err, code) = run(&conf, args, "");
        assert_eq!(code, Some(2), "{args:?}: {err}");
        assert!(!err.is_empty());
    }
    let (_, err, code) = run(&conf, &["domain", "add", "new.example", "https://x/"], "");
    assert_eq!(code, Some(2), "no secret on stdin: {err}");

    // GDPR helpers print what they did.
    let (out, _, code) = run(&conf, &["delete-user", "bob@xmpp.example"], "");
    assert_eq!(code, Some(0), "{out}");
    let (out, _, code) = run(&conf, &["delete-host", "xmpp.example"], "");
    assert_eq!(code, Some(0));
    assert!(out.contains("xmpp.example"), "{out}");
    let (out, _, _) = run(&conf, &["domain", "list"], "");
    assert!(
        !out.contains("xmpp.example"),
        "host deleted with its settings: {out}"
    );
    let (out, _, code) = run(&conf, &["refresh-roster"], "");
    assert_eq!(code, Some(0), "{out}");
}

#[test]
fn admin_commands_need_an_existing_database() {
    let s = Scratch::new("admin-nodb");
    let conf = s.write(
        "xcauth.conf",
        &format!("db={}\n", s.join("missing.sqlite3").display()),
    );
    let out = Command::new(support::bin("xcauthd"))
        .args(["-c", conf.to_str().unwrap(), "domain", "list"])
        .env("XCAUTH_SYSTEM_CONFIG", "/nonexistent")
        .output()
        .unwrap();
    assert_eq!(out.status.code(), Some(1));
    assert!(String::from_utf8_lossy(&out.stderr).contains("does not exist"));
    assert!(
        !s.join("missing.sqlite3").exists(),
        "not created by a read command"
    );
}

#[test]
fn an_unreadable_domains_table_fails_closed_a_missing_one_does_not() {
    let d = BackendDouble::start("s3");
    d.add_user(User::new("alice", "pw"));
    let s = Scratch::new("db-failclosed");
    // A database path that exists but is not a database (a directory).
    let not_a_db = s.join("db-is-a-dir");
    std::fs::create_dir(&not_a_db).unwrap();
    let broken = s.write(
        "broken.conf",
        &format!(
            "url={}\nsecret=s3\ndb={}\ntimeout=2\n",
            d.url(),
            not_a_db.display()
        ),
    );
    let (out, err, code) = run(&broken, &["-A", "alice", "example.org", "pw"], "");
    assert_eq!((out.trim(), code), ("False", Some(3)), "{err}");
    assert_eq!(d.count("auth"), 0, "never asks the global backend blindly");
    assert!(err.contains("per-domain settings"), "{err}");
    // No database at all (missing directory): no per-domain table, global backend.
    let missing = s.write(
        "missing.conf",
        &format!(
            "url={}\nsecret=s3\ndb={}\ntimeout=2\n",
            d.url(),
            s.join("nodir/x.sqlite3").display()
        ),
    );
    let (out, err, code) = run(&missing, &["-A", "alice", "example.org", "pw"], "");
    assert_eq!((out.trim(), code), ("True", Some(0)), "{err}");
}

#[test]
fn a_disabled_account_is_refused_and_its_cache_entry_dropped() {
    let d = BackendDouble::start("s4");
    d.add_user(User::new("dave", "davepw"));
    let s = Scratch::new("disabled");
    // cache-query-ttl=0: every login asks the backend, the entry only serves
    // the unreachable path — where xcauth 2 let a disabled user in for a week.
    let conf = s.write(
        "xcauth.conf",
        &format!(
            "url={}\nsecret=s4\ndb={}\ncache-storage=db\ncache-bcrypt-rounds=4\ncache-query-ttl=0\ntimeout=2\n",
            d.url(),
            s.join("x.sqlite3").display()
        ),
    );
    assert_eq!(
        run(&conf, &["-A", "dave", "example.org", "davepw"], "")
            .0
            .trim(),
        "True"
    );
    assert_eq!(
        run(&conf, &["cache", "show", "dave@example.org"], "").2,
        Some(0)
    );
    d.set_disabled("dave", true);
    let (out, _, code) = run(&conf, &["-A", "dave", "example.org", "davepw"], "");
    assert_eq!(
        (out.trim(), code),
        ("False", Some(1)),
        "HTTP 401 is a refusal"
    );
    assert_eq!(d.count("auth"), 2);
    assert_eq!(
        run(&conf, &["cache", "show", "dave@example.org"], "").2,
        Some(1),
        "the entry for the disabled account is gone"
    );
}
