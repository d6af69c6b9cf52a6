//! Real Prosody 0.12 (Lua 5.4) with the shipped auth provider
//! `integration/prosody/mod_auth_xcauth.lua`, which talks to `xcauthd --daemon`
//! over the generic (line) framing on TCP, driven by a real XMPP client
//! (slixmpp, `tests/scripts/xmpp_login.py`): a login succeeds with the
//! Nextcloud password and with an app password, fails with a wrong one, and
//! fails (without hanging Prosody) when xcauthd is down.
//!
//! See `docs/testing.md` §5.3.
#![allow(clippy::unwrap_used, clippy::expect_used)]

use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

/// The provider's `xcauth_timeout` in seconds: long enough for three XMPP clients started at
/// once to reach the backend together on a busy machine (step 4).
const XCAUTH_TIMEOUT: u64 = 4;

use xcauth_tests::double::{BackendDouble, User};
use xcauth_tests::machine::reserve_port;
use xcauth_tests::support::{
    require_program, start_daemon, xcauth_conf, xmpp_login, Listeners, Proc, Scratch, XmppLogin,
};

const SECRET: &str = "prosody-e2e-secret";

/// Prints the logs of a failing run (the peer programs' own words).
struct DumpOnPanic(Vec<(&'static str, PathBuf)>);

impl Drop for DumpOnPanic {
    #[allow(clippy::print_stderr)] // the logs are the failure report
    fn drop(&mut self) {
        if std::thread::panicking() {
            for (what, path) in &self.0 {
                let text = std::fs::read_to_string(path).unwrap_or_default();
                eprintln!("----- {what} ({}) -----\n{text}", path.display());
            }
        }
    }
}

/// The length of a log file now (0 when missing).
fn log_len(path: &Path) -> usize {
    std::fs::read(path).map_or(0, |b| b.len())
}

/// What was written to a log file after it was `from` bytes long.
fn log_since(path: &Path, from: usize) -> String {
    let bytes = std::fs::read(path).unwrap_or_default();
    String::from_utf8_lossy(bytes.get(from..).unwrap_or_default()).into_owned()
}

#[test]
fn prosody_logins_through_shipped_lua_module() {
    require_program("prosody");
    require_program("timeout");
    assert!(
        Path::new("/usr/bin/python3").exists(),
        "/usr/bin/python3 missing: run scripts/install-test-deps.sh"
    );

    let backend = BackendDouble::start(SECRET);
    backend.add_user(User::new("alice", "secret").app_password("alice", "app-pw-1"));

    let w = Scratch::new("prosody");
    // xcauthd's port stays this test's after xcauthd is stopped (step 6): nothing else may
    // answer there then.
    let xc_lease = reserve_port();
    let xc_port = xc_lease.port();
    let mut listeners = Listeners::new();
    listeners.tcp_at("generic", xc_lease.addr());
    let conf = w.write(
        "xcauth.conf",
        &xcauth_conf(
            &backend.url(),
            SECRET,
            // xcauthd waits longer for the backend than the provider waits for xcauthd.
            "timeout=2,15",
        ),
    );
    let xc_log = w.join("xcauthd.log");

    let p = w.join("prosody");
    std::fs::create_dir_all(p.join("data")).unwrap();
    std::fs::create_dir_all(p.join("modules")).unwrap();
    std::fs::copy(
        Path::new(env!("CARGO_MANIFEST_DIR")).join("../integration/prosody/mod_auth_xcauth.lua"),
        p.join("modules/mod_auth_xcauth.lua"),
    )
    .expect("copy the shipped mod_auth_xcauth.lua");
    // Prosody binds its c2s port itself.
    let c2s_lease = reserve_port();
    let c2s_port = c2s_lease.port();
    let cfg = w.write(
        "prosody/test.cfg.lua",
        &format!(
            r#"run_as_root = true; daemonize = false
pidfile = "{dir}/test.pid"
data_path = "{dir}/data"
plugin_paths = {{ "{dir}/modules" }}
interfaces = {{ "127.0.0.1" }}; local_interfaces = {{ "127.0.0.1" }}; c2s_ports = {{ {c2s_port} }}
s2s_ports = {{ }}; c2s_direct_tls_ports = {{ }}; http_ports = {{ }}; https_ports = {{ }}; component_ports = {{ }}
modules_enabled = {{ "saslauth", "disco", "ping" }}; modules_disabled = {{ "s2s" }}
c2s_require_encryption = false; allow_unencrypted_plain_auth = true
authentication = "xcauth"
xcauth_host = "127.0.0.1"
xcauth_port = {xc_port}
xcauth_timeout = {XCAUTH_TIMEOUT}
log = {{ debug = "{dir}/test.log"; info = "*console" }}
VirtualHost "example.org"
"#,
            dir = p.display()
        ),
    );
    let _dump = DumpOnPanic(vec![
        ("prosody console", p.join("console.log")),
        ("prosody debug log", p.join("test.log")),
        ("xcauthd", xc_log.clone()),
    ]);

    let mut daemon = start_daemon(&conf, &xc_log, listeners);
    let console = std::fs::File::create(p.join("console.log")).unwrap();
    let mut prosody = Proc::spawn(
        "prosody",
        Command::new("prosody")
            .arg("--config")
            .arg(&cfg)
            .arg("-F")
            .stdin(Stdio::null())
            .stdout(console.try_clone().unwrap())
            .stderr(console),
    )
    .with_log(&p.join("console.log"));
    prosody.wait_for_tcp(c2s_lease.addr(), Duration::from_secs(30));

    // The provider was loaded for the host (not silently replaced by another one).
    let debug_log = std::fs::read_to_string(p.join("test.log")).unwrap_or_default();
    assert!(
        debug_log.contains("use user provider 'xcauth'"),
        "Prosody did not select the xcauth provider:\n{debug_log}"
    );

    // 1. The Nextcloud login password.
    let (rc, out) = xmpp_login("alice@example.org", "secret", c2s_port);
    assert_eq!(rc, XmppLogin::LoggedIn, "good password must log in:\n{out}");
    assert_eq!(backend.count("auth"), 1, "one backend auth per login");
    assert_eq!(
        backend.last_request().unwrap().body_str(),
        "operation=auth&username=alice&domain=example.org&password=secret"
    );

    // 2. An app password (device token).
    let (rc, out) = xmpp_login("alice@example.org", "app-pw-1", c2s_port);
    assert_eq!(rc, XmppLogin::LoggedIn, "app password must log in:\n{out}");
    assert_eq!(backend.count("auth"), 2);

    // 3. A wrong password, and a password holding ':' (the generic framing keeps it whole).
    let (rc, out) = xmpp_login("alice@example.org", "Wrong-PW-77", c2s_port);
    assert_eq!(
        rc,
        XmppLogin::Refused,
        "wrong password must be refused:\n{out}"
    );
    assert_eq!(backend.count("auth"), 3);
    assert_eq!(
        (backend.verified("auth"), backend.bad_signatures()),
        (3, 0),
        "the refusal came from the backend (noauth), not from its signature check"
    );
    let (rc, out) = xmpp_login("alice@example.org", "se:cr:et", c2s_port);
    assert_eq!(
        rc,
        XmppLogin::Refused,
        "wrong password with colons must be refused:\n{out}"
    );
    assert_eq!(backend.count("auth"), 4);
    assert!(
        backend
            .last_request()
            .unwrap()
            .body_str()
            .ends_with("&password=se%3Acr%3Aet"),
        "{:?}",
        backend.last_request()
    );

    // 4. A slow backend delays only the client that is logging in: three logins at
    //    once overlap (the provider must not block Prosody's event loop). The backend holds
    //    the requests until all three wait there at once: were they served one after the
    //    other, the first would time out waiting for the other two, and its login would fail.
    backend.hold_until(3);
    let logins: Vec<_> = (0..3)
        .map(|_| std::thread::spawn(move || xmpp_login("alice@example.org", "secret", c2s_port)))
        .collect();
    for login in logins {
        let (rc, out) = login.join().unwrap();
        assert_eq!(
            rc,
            XmppLogin::LoggedIn,
            "login with a slow backend (the three logins were not in flight together, so \
             Prosody was blocked while waiting for xcauthd):\n{out}"
        );
    }
    assert_eq!(backend.count("auth"), 7);

    // 5. xcauthd slower than xcauth_timeout: the provider gives up and refuses, while the
    //    backend still holds the request.
    backend.hold_until(usize::MAX);
    let log_before = log_len(&p.join("test.log"));
    let started = Instant::now();
    let (rc, out) = xmpp_login("alice@example.org", "secret", c2s_port);
    let elapsed = started.elapsed();
    assert_eq!(
        rc,
        XmppLogin::Refused,
        "login must fail after xcauth_timeout:\n{out}"
    );
    assert_eq!(
        backend.held(),
        1,
        "the provider gave up before the backend answered"
    );
    assert!(
        elapsed >= Duration::from_secs(XCAUTH_TIMEOUT) && elapsed < Duration::from_secs(20),
        "took {elapsed:?}"
    );
    backend.release();
    let debug_log = log_since(&p.join("test.log"), log_before);
    assert!(
        debug_log.contains(&format!("timed out after {XCAUTH_TIMEOUT} s")),
        "the provider logs its timeout:\n{debug_log}"
    );
    assert_eq!(backend.count("auth"), 8);

    // 6. xcauthd down: the provider reports failure promptly, Prosody stays up.
    daemon.signal("TERM");
    assert!(
        daemon.wait_exit(Duration::from_secs(10)).is_some(),
        "xcauthd ignored SIGTERM"
    );
    let log_before = log_len(&p.join("test.log"));
    let started = Instant::now();
    let (rc, out) = xmpp_login("alice@example.org", "secret", c2s_port);
    assert_eq!(
        rc,
        XmppLogin::Refused,
        "login must fail while xcauthd is down:\n{out}"
    );
    assert!(
        started.elapsed() < Duration::from_secs(8),
        "took {:?}",
        started.elapsed()
    );
    assert_eq!(backend.count("auth"), 8, "nothing reached the backend");
    assert!(prosody.alive(), "Prosody died when xcauthd was unreachable");
    // Only what this step logged (step 5 logged "cannot reach xcauthd" too).
    let step_log = log_since(&p.join("test.log"), log_before);
    assert!(
        step_log.contains("cannot reach xcauthd"),
        "the provider logs why it failed:\n{step_log}"
    );

    let debug_log = std::fs::read_to_string(p.join("test.log")).unwrap_or_default();
    assert!(
        !debug_log.contains("Traceback"),
        "a Lua error in Prosody:\n{debug_log}"
    );

    prosody.signal("TERM");
    assert!(
        prosody.wait_exit(Duration::from_secs(10)).is_some(),
        "Prosody did not stop on SIGTERM"
    );
}
