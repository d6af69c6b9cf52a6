//! Real Cyrus `testsaslauthd` (sasl2-bin) against `xcauthd --daemon` serving
//! the saslauthd "mux" framing on a Unix socket (`listen=saslauthd@unix:…`):
//! `OK` for the password and an app password, `NO` for a wrong password, an
//! unknown user and a backend that is down; the realm (`-r`) becomes the domain.
//!
//! See `docs/testing.md` §5.1 and `docs/protocols.md` §5.
#![allow(clippy::unwrap_used, clippy::expect_used)]

use std::path::PathBuf;
use std::process::{Command, Output, Stdio};

use xcauth_tests::double::{BackendDouble, Fault, User};
use xcauth_tests::support::{require_program, start_daemon, xcauth_conf, Listeners, Proc, Scratch};

const SECRET: &str = "saslauthd-e2e-secret";
/// What this version of testsaslauthd (sasl2-bin 2.1.28) prints.
const OK_LINE: &str = "0: OK \"Success.\"\n";
const NO_LINE: &str = "0: NO \"authentication failed\"\n";

struct Setup {
    backend: BackendDouble,
    daemon: Proc,
    mux: PathBuf,
    log: PathBuf,
    _w: Scratch,
}

impl Setup {
    fn new() -> Setup {
        require_program("testsaslauthd");
        require_program("timeout");
        let backend = BackendDouble::start(SECRET);
        backend.add_user(User::new("alice", "secret").app_password("alice", "app-pw-1"));
        let w = Scratch::new("saslauthd");
        let mut listeners = Listeners::new();
        let mux = listeners.unix("saslauthd", &w.join("mux"));
        let conf = w.write("xcauth.conf", &xcauth_conf(&backend.url(), SECRET, ""));
        let log = w.join("xcauthd.log");
        let daemon = start_daemon(&conf, &log, listeners);
        Setup {
            backend,
            daemon,
            mux,
            log,
            _w: w,
        }
    }

    /// `testsaslauthd -u USER -p PASSWORD -f MUX [extra…]`, bounded.
    fn testsaslauthd(&self, user: &str, password: &str, extra: &[&str]) -> Output {
        let out = Command::new("timeout")
            .args([
                "-k",
                "2",
                "20",
                "testsaslauthd",
                "-u",
                user,
                "-p",
                password,
                "-f",
            ])
            .arg(&self.mux)
            .args(extra)
            .stdin(Stdio::null())
            .output()
            .expect("run testsaslauthd");
        assert_ne!(out.status.code(), Some(124), "testsaslauthd timed out");
        out
    }

    fn explain(&self, out: &Output) -> String {
        format!(
            "rc {:?}\nstdout {:?}\nstderr {:?}\nxcauthd log:\n{}",
            out.status.code(),
            String::from_utf8_lossy(&out.stdout),
            String::from_utf8_lossy(&out.stderr),
            std::fs::read_to_string(&self.log).unwrap_or_default()
        )
    }

    fn last_body(&self) -> String {
        self.backend.last_request().unwrap().body_str()
    }

    fn assert_ok(&self, out: &Output) {
        assert_eq!(out.status.code(), Some(0), "{}", self.explain(out));
        assert_eq!(
            String::from_utf8_lossy(&out.stdout),
            OK_LINE,
            "{}",
            self.explain(out)
        );
    }

    fn assert_no(&self, out: &Output) {
        assert_eq!(out.status.code(), Some(255), "{}", self.explain(out));
        assert_eq!(
            String::from_utf8_lossy(&out.stdout),
            NO_LINE,
            "{}",
            self.explain(out)
        );
    }
}

#[test]
fn testsaslauthd_ok_and_no() {
    let s = Setup::new();

    // Without a realm: the domain is empty.
    let out = s.testsaslauthd("alice", "secret", &[]);
    s.assert_ok(&out);
    assert_eq!(
        s.last_body(),
        "operation=auth&username=alice&domain=&password=secret"
    );

    // With a realm and a service (the service is ignored).
    let out = s.testsaslauthd("alice", "secret", &["-r", "example.org", "-s", "xmpp"]);
    s.assert_ok(&out);
    assert_eq!(
        s.last_body(),
        "operation=auth&username=alice&domain=example.org&password=secret"
    );

    // An app password; a password with ':' and a space stays whole.
    let out = s.testsaslauthd("alice", "app-pw-1", &["-r", "example.org"]);
    s.assert_ok(&out);
    let out = s.testsaslauthd("alice", "wr:ong pw", &["-r", "example.org"]);
    s.assert_no(&out);
    assert_eq!(
        s.last_body(),
        "operation=auth&username=alice&domain=example.org&password=wr%3Aong+pw"
    );

    // Wrong password, unknown user.
    let out = s.testsaslauthd("alice", "wrong", &["-r", "example.org"]);
    s.assert_no(&out);
    let out = s.testsaslauthd("mallory", "secret", &["-r", "example.org"]);
    s.assert_no(&out);
    assert_eq!(
        s.backend.count("auth"),
        6,
        "one backend request per testsaslauthd run"
    );
}

#[test]
fn testsaslauthd_backend_down_is_no() {
    let mut s = Setup::new();
    s.backend.set_fault(Fault::Drop);
    let out = s.testsaslauthd("alice", "secret", &["-r", "example.org"]);
    s.assert_no(&out);
    assert!(s.backend.count("auth") >= 1);

    s.backend.set_fault(Fault::None);
    let out = s.testsaslauthd("alice", "secret", &["-r", "example.org"]);
    s.assert_ok(&out);
    assert!(s.daemon.alive(), "xcauthd is still serving");
}
