//! Regression tests for the security review, through real libpam (`/etc/pam.d` service files
//! and pamtester) against the backend double:
//!
//! - `group=` is checked on the Nextcloud account that actually logged in (two accounts `dave`
//!   and `dave@example.org`, only the second in Admins);
//! - `acct_mgmt` does not vouch for users the module did not authenticate;
//! - one Nextcloud account does not log in under many PAM names (case, other domains, a
//!   trailing dot);
//! - bad module arguments and a panic inside the real .so fail closed, and the .so is
//!   NODELETE.
// Helpers outside #[test] fns: a failed set-up step is a test failure.
#![allow(clippy::unwrap_used, clippy::expect_used)]

use std::os::unix::fs::PermissionsExt;
use std::process::Command;

use xcauth_tests::double::User;
use xcauth_tests::machine::MachineLock;
use xcauth_tests::pam_support::{
    example, instantiate, module_so, panic_trigger_so, EtcPamService, LocalUser, PamSockServer,
    Pamtester, World, ALICE_PW,
};

const AUTH_ACCT: &[&str] = &["authenticate", "acct_mgmt"];
const DAVE_PW: &str = "dave-own-pw-7Q";
const DAVE_AT_PW: &str = "dave-at-example-pw-8R";

/// Two Nextcloud accounts behind one PAM name: `dave` (in no group) and `dave@example.org`
/// (in Admins). Nextcloud's `auth` tries `dave@example.org` first, then `dave`.
fn two_daves(w: &World) {
    w.double.add_user(User::new("dave", DAVE_PW));
    w.double.add_user(User::new("dave@example.org", DAVE_AT_PW));
    w.double
        .add_group("admins", "Admins", &["dave@example.org"]);
}

#[test]
fn group_is_checked_on_the_account_that_logged_in() {
    let w = World::new("sec-group");
    two_daves(&w);
    let m = w.module();
    let run = |svc: &EtcPamService, user: &str, pw: &str| {
        Pamtester::new(&svc.name, user, AUTH_ACCT)
            .password(pw)
            .run()
    };

    // group= on the auth line.
    let on_auth = EtcPamService::new(
        "grp-auth",
        &format!("auth required {m} domain=example.org group=Admins\naccount required {m}\n"),
    );
    let r = run(&on_auth, "dave", DAVE_PW);
    assert_eq!(r.code, "PERM_DENIED", "dave's own password: {}", r.output);
    w.log.wait_for("not_in_group");
    let r = run(&on_auth, "dave", DAVE_AT_PW);
    assert_eq!(
        r.code, "SUCCESS",
        "dave@example.org's password: {}",
        r.output
    );
    let r = run(&on_auth, "dave@example.org", DAVE_PW);
    assert_eq!(r.code, "PERM_DENIED", "{}", r.output);

    // group= on the account line only (the auth line has none).
    let on_account = EtcPamService::new(
        "grp-acct",
        &format!(
            "auth required {m} domain=example.org\naccount required {m} domain=example.org group=Admins\n"
        ),
    );
    let r = run(&on_account, "dave", DAVE_PW);
    assert_eq!(r.code, "PERM_DENIED", "account line: {}", r.output);
    let r = run(&on_account, "dave", DAVE_AT_PW);
    assert_eq!(r.code, "SUCCESS", "account line: {}", r.output);

    // The roster was asked for exactly the account, never with the login's domain.
    let last = w.double.last_request().unwrap().body_str();
    assert!(
        last.contains("operation=sharedroster") && last.ends_with("&domain="),
        "{last}"
    );
    w.log
        .assert_no_secrets(&w.secrets(&[DAVE_PW, DAVE_AT_PW]), &[]);
}

/// The same through `socket=` (the pam socket protocol to an xcauthd engine).
#[test]
fn group_over_the_pam_socket_is_checked_on_the_account_that_logged_in() {
    let w = World::new("sec-group-sock");
    two_daves(&w);
    let server = PamSockServer::start(&w.scratch.join("pam.sock"), w.engine());
    let m = format!(
        "{} socket={} syslog_socket={} domain=example.org",
        w.so.display(),
        server.path().display(),
        w.log.path().display()
    );
    let svc = EtcPamService::new(
        "grp-sock",
        &format!("auth required {m} group=Admins\naccount required {m} group=Admins\n"),
    );
    let run = |user: &str, pw: &str| {
        Pamtester::new(&svc.name, user, AUTH_ACCT)
            .password(pw)
            .run()
            .code
    };
    assert_eq!(run("dave", DAVE_PW), "PERM_DENIED");
    assert_eq!(run("dave", DAVE_AT_PW), "SUCCESS");
    assert_eq!(run("DAVE", DAVE_AT_PW), "AUTH_ERR");
    assert_eq!(run("dave@evil.example", DAVE_AT_PW), "USER_UNKNOWN");
}

/// With the credential cache on, `group=` still checks the account that logged in: a cached
/// password does not stand in for it.
#[test]
fn group_with_the_credential_cache_asks_the_backend_for_the_account() {
    let w = World::with_conf(
        "sec-group-cache",
        "cache-storage=db\ncache-bcrypt-rounds=4\ndb=DB\n",
    );
    let db = w.scratch.join("cache.sqlite3");
    let conf = std::fs::read_to_string(&w.conf)
        .unwrap()
        .replace("db=DB", &format!("db={}", db.display()));
    std::fs::write(&w.conf, conf).unwrap();
    two_daves(&w);
    let m = w.module();
    let plain = EtcPamService::new(
        "grp-cache-plain",
        &format!("auth required {m} domain=example.org\naccount required {m}\n"),
    );
    let grouped = EtcPamService::new(
        "grp-cache-group",
        &format!("auth required {m} domain=example.org group=Admins\naccount required {m}\n"),
    );
    // dave's own password is now in the cache under dave@example.org.
    let r = Pamtester::new(&plain.name, "dave", AUTH_ACCT)
        .password(DAVE_PW)
        .run();
    assert_eq!(r.code, "SUCCESS", "{}", r.output);
    let r = Pamtester::new(&plain.name, "dave", AUTH_ACCT)
        .password(DAVE_PW)
        .run();
    assert_eq!(r.code, "SUCCESS", "{}", r.output);
    w.log.wait_for("via=cache");
    let r = Pamtester::new(&grouped.name, "dave", AUTH_ACCT)
        .password(DAVE_PW)
        .run();
    assert_eq!(r.code, "PERM_DENIED", "{}", r.output);
}

/// `account sufficient pam_xcauth` before pam_unix must not skip pam_unix's checks for a
/// local user that the module never authenticated (here: an expired local account whose name
/// Nextcloud also knows).
#[test]
fn acct_mgmt_ignores_users_it_did_not_authenticate() {
    // A local user: useradd/userdel, one such test at a time on this machine.
    let _machine =
        MachineLock::take("pam::security::acct_mgmt_ignores_users_it_did_not_authenticate");
    let w = World::new("sec-acct");
    let expired = LocalUser::new("xsexp", "local-exp-pw-X1");
    expired.expire();
    w.double
        .add_user(User::new(&expired.name, "nextcloud-exp-pw-X2"));
    let m = w.module();
    let svc = EtcPamService::new(
        "acct-ignore",
        &format!(
            "auth required pam_unix.so nodelay\n\
             account sufficient {m} domain=example.org\n\
             account required pam_unix.so\n"
        ),
    );
    let before = w.double.total();
    let r = Pamtester::new(&svc.name, &expired.name, AUTH_ACCT)
        .password("local-exp-pw-X1")
        .run();
    assert_eq!(r.code, "ACCT_EXPIRED", "{}", r.output);
    assert_eq!(w.double.total(), before, "acct_mgmt made a backend call");

    // Only account (mod_authnz_pam's `Require pam-account`), with and without account_check.
    let acct_only = EtcPamService::new(
        "acct-only",
        &format!("account required {m} domain=example.org\n"),
    );
    let r = Pamtester::new(&acct_only.name, "alice", &["acct_mgmt"]).run();
    assert_eq!(r.code, "PERM_DENIED", "IGNORE alone: {}", r.output);
    assert_eq!(w.double.total(), before);
    let checked = EtcPamService::new(
        "acct-check",
        &format!("account required {m} domain=example.org account_check\n"),
    );
    let r = Pamtester::new(&checked.name, "alice", &["acct_mgmt"]).run();
    assert_eq!(r.code, "SUCCESS", "{}", r.output);
    let r = Pamtester::new(&checked.name, "nobody", &["acct_mgmt"]).run();
    assert_eq!(r.code, "USER_UNKNOWN", "{}", r.output);

    // The shipped stacked example still admits a Nextcloud-only user end to end.
    let stacked = EtcPamService::new(
        "acct-stacked",
        &instantiate(&example("smtp-stacked"), &m, None)
            .replace("pam_unix.so", "pam_unix.so nodelay"),
    );
    let r = Pamtester::new(&stacked.name, "alice", AUTH_ACCT)
        .password(ALICE_PW)
        .run();
    assert_eq!(r.code, "SUCCESS", "{}", r.output);
    let r = Pamtester::new(&stacked.name, &expired.name, AUTH_ACCT)
        .password("local-exp-pw-X1")
        .run();
    assert_eq!(r.code, "ACCT_EXPIRED", "{}", r.output);
}

/// alice's password works for `alice` and `alice@example.org` only: not for other
/// spellings of the name, other domains or a trailing dot.
#[test]
fn one_account_does_not_log_in_under_many_names() {
    let w = World::new("sec-names");
    w.double.add_user(User::new("Carol", "carol-pw-C3"));
    let m = w.module();
    let svc = EtcPamService::new(
        "names",
        &format!("auth required {m} domain=example.org,example.com\naccount required {m}\n"),
    );
    let run = |user: &str, pw: &str| {
        Pamtester::new(&svc.name, user, AUTH_ACCT)
            .password(pw)
            .run()
            .code
    };
    assert_eq!(run("alice", ALICE_PW), "SUCCESS");
    assert_eq!(run("alice@example.org", ALICE_PW), "SUCCESS");
    assert_eq!(
        run("alice@EXAMPLE.org", ALICE_PW),
        "SUCCESS",
        "domains ignore case"
    );
    assert_eq!(
        run("alice@example.com", ALICE_PW),
        "SUCCESS",
        "second listed domain"
    );
    for other in [
        "alice@evil.example",
        "Alice@anything.invalid",
        "alice@example.org.",
        "alice@example.org.evil.example",
    ] {
        assert_eq!(run(other, ALICE_PW), "USER_UNKNOWN", "{other}");
    }
    // Nextcloud matches uids case-insensitively; the module does not.
    let before = w.double.count("auth");
    assert_eq!(run("ALICE", ALICE_PW), "AUTH_ERR");
    assert_eq!(run("Alice@example.org", ALICE_PW), "AUTH_ERR");
    assert!(w.double.count("auth") > before);
    // The stored spelling is the name.
    assert_eq!(run("Carol", "carol-pw-C3"), "SUCCESS");
    assert_eq!(run("carol", "carol-pw-C3"), "AUTH_ERR");

    // Without domain=, the config's served-domains decides.
    std::fs::write(
        &w.conf,
        format!(
            "{}served-domains=example.org\n",
            std::fs::read_to_string(&w.conf).unwrap()
        ),
    )
    .unwrap();
    let open = EtcPamService::new(
        "names-served",
        &format!("auth required {m}\naccount required {m}\n"),
    );
    let run = |user: &str| {
        Pamtester::new(&open.name, user, AUTH_ACCT)
            .password(ALICE_PW)
            .run()
            .code
    };
    assert_eq!(run("alice@example.org"), "SUCCESS");
    assert_eq!(run("alice@evil.example"), "USER_UNKNOWN");
    assert_eq!(run("alice@example.org."), "USER_UNKNOWN");
}

/// The shipped `smtp` example (domain=example.org) refuses other domains and case variants.
#[test]
fn shipped_smtp_example_refuses_name_variants() {
    let w = World::new("sec-names-example");
    let m = w.module();
    let svc = EtcPamService::new("names-ex", &instantiate(&example("smtp"), &m, None));
    let run = |user: &str| {
        Pamtester::new(&svc.name, user, AUTH_ACCT)
            .password(ALICE_PW)
            .run()
            .code
    };
    assert_eq!(run("alice"), "SUCCESS");
    assert_eq!(run("alice@evil.example"), "USER_UNKNOWN");
    assert_eq!(run("alice@example.org."), "USER_UNKNOWN");
    assert_eq!(run("ALICE"), "AUTH_ERR");
}

/// A panic inside `pam_sm_authenticate` of the real .so (test-only feature) becomes
/// PAM_SERVICE_ERR with a log line; pamtester survives to report it. The normal .so carries
/// the NODELETE flag, so libpam's dlclose cannot unmap code that a thread or TLS destructor
/// might still run.
#[test]
fn panic_guard_holds_in_the_real_module_and_the_module_is_nodelete() {
    let w = World::new("sec-panic");
    let trigger = w.scratch.join("pam_xcauth_panic.so");
    panic_trigger_so(&trigger);
    let m = w
        .module()
        .replace(&w.so.display().to_string(), &trigger.display().to_string());
    let svc = EtcPamService::new(
        "panic",
        &format!("auth required {m}\naccount required {m}\n"),
    );
    let r = Pamtester::new(&svc.name, "xcauth-panic-trigger", AUTH_ACCT)
        .password("whatever")
        .run();
    assert_eq!(r.code, "SERVICE_ERR", "{}", r.output);
    assert!(
        r.output.contains("xcauth-panic-trigger"),
        "pamtester reported: {}",
        r.output
    );
    w.log.wait_for("panic caught");
    // The same build works for everyone else.
    let r = Pamtester::new(&svc.name, "alice@example.org", AUTH_ACCT)
        .password(ALICE_PW)
        .run();
    assert_eq!(r.code, "SUCCESS", "{}", r.output);

    for so in [module_so(), trigger] {
        let out = Command::new("readelf").arg("-d").arg(&so).output().unwrap();
        let text = String::from_utf8_lossy(&out.stdout);
        let flags = text
            .lines()
            .find(|l| l.contains("FLAGS_1"))
            .unwrap_or_else(|| panic!("no FLAGS_1 in {}:\n{text}", so.display()));
        assert!(flags.contains("NODELETE"), "{}: {flags}", so.display());
    }
    // Release builds never have the trigger: the normal module has no such string.
    let bytes = std::fs::read(module_so()).unwrap();
    assert!(!bytes
        .windows(b"xcauth-panic-trigger".len())
        .any(|w| w == b"xcauth-panic-trigger"));
}

/// The shipped `smtp` stack with the credential cache: a cache row planted in a database that
/// another user owns does not log anyone in; the same file owned by root is used.
#[test]
fn shipped_smtp_example_ignores_a_database_someone_else_owns() {
    use xcauth_core::cache::CredentialCache;
    use xcauth_core::db::{CacheSettings, Db, DbCache, DbOptions};

    const PLANTED: &str = "planted-pw-smtp-4K";
    let w = World::with_conf(
        "sec-db-example",
        "cache-storage=db\ncache-bcrypt-rounds=4\ndb=DBPATH",
    );
    let state = w.scratch.join("state");
    std::fs::create_dir(&state).unwrap();
    std::fs::set_permissions(&state, std::fs::Permissions::from_mode(0o755)).unwrap();
    let db_path = state.join("xcauth.sqlite3");
    let conf = std::fs::read_to_string(&w.conf)
        .unwrap()
        .replace("DBPATH", &db_path.display().to_string());
    std::fs::write(&w.conf, conf).unwrap();
    {
        let db = std::sync::Arc::new(Db::open(&db_path, &DbOptions::default()).unwrap());
        let settings = CacheSettings {
            bcrypt_cost: 4,
            ..CacheSettings::default()
        };
        DbCache::new(db, settings).store(
            "alice@example.org",
            &xcauth_core::Password::new(PLANTED),
            std::time::SystemTime::now(),
        );
    }
    let svc = EtcPamService::new(
        "db-example",
        &instantiate(&example("smtp"), &w.module(), None),
    );
    let run = || {
        Pamtester::new(&svc.name, "alice", AUTH_ACCT)
            .password(PLANTED)
            .run()
            .code
    };
    let chown = |owner: &str| {
        for suffix in ["", "-wal", "-shm"] {
            let file = std::path::PathBuf::from(format!("{}{suffix}", db_path.display()));
            if file.exists() {
                let st = Command::new("chown")
                    .arg(owner)
                    .arg(&file)
                    .status()
                    .unwrap();
                assert!(st.success());
                std::fs::set_permissions(&file, std::fs::Permissions::from_mode(0o600)).unwrap();
            }
        }
    };
    chown("nobody");
    assert_eq!(run(), "AUTH_ERR", "a planted row in nobody's database");
    chown("root");
    assert_eq!(run(), "SUCCESS", "the same row in root's own database");
}

/// One PAM call never outlasts `timeout=`, however slow the backend and however long
/// xcauth.conf's own timeouts: here the backend never answers while the call runs, and
/// xcauth.conf would wait a minute for it.
#[test]
fn one_pam_call_stays_within_its_budget() {
    let w = World::with_conf("sec-budget", "timeout=60,60");
    // World's config sets timeout=2,3 first; the later line wins.
    w.double.hold_until(usize::MAX);
    let m = w.module();
    let svc = EtcPamService::new(
        "budget",
        &format!("auth required {m} timeout=3 group=Team\naccount required {m}\n"),
    );
    let started = std::time::Instant::now();
    let r = Pamtester::new(&svc.name, "alice@example.org", AUTH_ACCT)
        .password(ALICE_PW)
        .run_within(std::time::Duration::from_secs(60));
    let took = started.elapsed();
    assert_eq!(r.code, "AUTHINFO_UNAVAIL", "{}", r.output);
    // Only the 3 s budget ends the call: any timeout of xcauth.conf would take a minute.
    assert!(
        took < std::time::Duration::from_secs(30),
        "took {took:?} with timeout=3"
    );
    assert_eq!(w.double.count("auth"), 1, "one try, within the budget");
    w.double.release();
    let r = Pamtester::new(&svc.name, "alice@example.org", AUTH_ACCT)
        .password(ALICE_PW)
        .run();
    assert_eq!(r.code, "SUCCESS", "{}", r.output);
}

/// `socket_owner=` holds for the socket actually connected, not only for the file at the
/// path: a socket served by another user is refused even when its file belongs to root (as
/// after a swap between the file check and the connect), and no password is sent.
#[test]
fn socket_mode_checks_who_serves_the_connected_socket() {
    xcauth_tests::support::require_program("setpriv");
    let w = World::new("sec-sock-peer");
    let dir = w.scratch.join("impostor");
    std::fs::create_dir(&dir).unwrap();
    std::fs::set_permissions(&dir, std::fs::Permissions::from_mode(0o777)).unwrap();
    let sock = dir.join("pam.sock");
    let got = dir.join("received");
    // A server running as nobody that records whatever it is sent.
    let script = format!(
        "import socket,sys\n\
         s=socket.socket(socket.AF_UNIX)\n\
         s.bind({sock:?})\n\
         s.listen(4)\n\
         print('ready', flush=True)\n\
         s.settimeout(20)\n\
         try:\n\
         \x20   c,_=s.accept()\n\
         \x20   c.settimeout(5)\n\
         \x20   data=c.recv(65536)\n\
         \x20   open({got:?},'wb').write(data)\n\
         except Exception:\n\
         \x20   pass\n",
        sock = sock.display().to_string(),
        got = got.display().to_string()
    );
    let mut child = Command::new("setpriv")
        .args([
            "--reuid=nobody",
            "--regid=nogroup",
            "--clear-groups",
            "/usr/bin/python3",
            "-c",
            &script,
        ])
        .stdout(std::process::Stdio::piped())
        .spawn()
        .unwrap();
    let mut line = String::new();
    std::io::BufRead::read_line(
        &mut std::io::BufReader::new(child.stdout.take().unwrap()),
        &mut line,
    )
    .unwrap();
    assert_eq!(line.trim(), "ready");
    // The file now looks right: root's.
    std::os::unix::fs::chown(&sock, Some(0), Some(0)).unwrap();
    let m = format!(
        "{} socket={} syslog_socket={}",
        w.so.display(),
        sock.display(),
        w.log.path().display()
    );
    let svc = EtcPamService::new("sock-peer", &format!("auth required {m}\n"));
    let r = Pamtester::new(&svc.name, "alice@example.org", &["authenticate"])
        .password(ALICE_PW)
        .run();
    assert_eq!(r.code, "AUTHINFO_UNAVAIL", "{}", r.output);
    w.log.wait_for("is served by uid 65534");
    let _ = child.kill();
    let _ = child.wait();
    let received = std::fs::read(&got).unwrap_or_default();
    assert!(
        !received
            .windows(ALICE_PW.len())
            .any(|w| w == ALICE_PW.as_bytes()),
        "the password reached the impostor"
    );
    assert!(received.is_empty(), "nothing is sent: {received:?}");
}
