//! Real Postfix `postmap -q KEY tcp:127.0.0.1:PORT` (the `tcp_table(5)` client)
//! against `xcauthd --daemon` with a `listen=postfix@tcp:…` listener: an
//! existing user, a missing user, keys that postmap %-encodes, several keys
//! over one connection (`-q -`), and the backend down (`400` → "query error").
//!
//! See `docs/testing.md` §5.4 and `docs/protocols.md` §6.
#![allow(clippy::unwrap_used, clippy::expect_used)]

use std::io::Write;
use std::path::PathBuf;
use std::process::{Command, Output, Stdio};
use std::time::{Duration, SystemTime};

use xcauth_tests::double::{BackendDouble, Fault, User};
use xcauth_tests::support::{require_program, start_daemon, xcauth_conf, Listeners, Proc, Scratch};

const SECRET: &str = "postfix-e2e-secret";

/// A backend double, an xcauthd postfix listener and a private Postfix config dir.
struct Setup {
    backend: BackendDouble,
    daemon: Proc,
    port: u16,
    postfix_dir: PathBuf,
    log: PathBuf,
    // Last: removed after the daemon is gone.
    _w: Scratch,
}

impl Setup {
    fn new(tag: &str) -> Setup {
        require_program("postmap");
        require_program("timeout");
        let backend = BackendDouble::start(SECRET);
        backend.add_user(User::new("alice", "secret"));
        backend.add_user(User::new("jörg", "pw"));
        let w = Scratch::new(tag);
        let mut listeners = Listeners::new();
        let port = listeners.tcp("postfix").port();
        // `debug` logs one line per accepted connection.
        let conf = w.write("xcauth.conf", &xcauth_conf(&backend.url(), SECRET, "debug"));
        // postmap needs a main.cf; Debian's "No configuration" install has none.
        let postfix_dir = w.join("postfix");
        let main_cf = w.write("postfix/main.cf", "compatibility_level = 3.6\n");
        // Postfix re-reads a config file whose mtime is not yet in the past (it may still
        // be being written), sleeping 300 ms per round: ~2 s per postmap for a fresh file.
        std::fs::File::options()
            .write(true)
            .open(&main_cf)
            .unwrap()
            .set_modified(SystemTime::now() - Duration::from_secs(3600))
            .unwrap();
        let log = w.join("xcauthd.log");
        let daemon = start_daemon(&conf, &log, listeners);
        Setup {
            backend,
            daemon,
            port,
            postfix_dir,
            log,
            _w: w,
        }
    }

    /// `postmap -c DIR -q KEY tcp:127.0.0.1:PORT` (KEY `-` reads keys from `stdin`), bounded.
    fn postmap(&self, key: &str, stdin: &str) -> Output {
        let mut child = Command::new("timeout")
            .args(["-k", "2", "30", "postmap", "-c"])
            .arg(&self.postfix_dir)
            .args(["-q", key, &format!("tcp:127.0.0.1:{}", self.port)])
            .stdin(Stdio::piped())
            .stdout(Stdio::piped())
            .stderr(Stdio::piped())
            .spawn()
            .expect("run postmap");
        child
            .stdin
            .take()
            .unwrap()
            .write_all(stdin.as_bytes())
            .unwrap();
        let out = child.wait_with_output().unwrap();
        assert_ne!(
            out.status.code(),
            Some(124),
            "postmap timed out: {}",
            self.explain(&out)
        );
        out
    }

    fn log_text(&self) -> String {
        std::fs::read_to_string(&self.log).unwrap_or_default()
    }

    fn explain(&self, out: &Output) -> String {
        format!(
            "rc {:?}\nstdout {:?}\nstderr {:?}\nxcauthd log:\n{}",
            out.status.code(),
            String::from_utf8_lossy(&out.stdout),
            String::from_utf8_lossy(&out.stderr),
            self.log_text()
        )
    }

    /// The `isuser` bodies the backend received, oldest first.
    fn isuser_bodies(&self) -> Vec<String> {
        self.backend
            .requests()
            .iter()
            .map(xcauth_tests::double::RecordedRequest::body_str)
            .filter(|b| b.starts_with("operation=isuser&"))
            .collect()
    }
}

fn stdout(out: &Output) -> String {
    String::from_utf8_lossy(&out.stdout).into_owned()
}

fn stderr(out: &Output) -> String {
    String::from_utf8_lossy(&out.stderr).into_owned()
}

#[test]
fn postmap_existing_and_missing_user() {
    let s = Setup::new("postfix-basic");

    let out = s.postmap("alice@example.org", "");
    assert_eq!(
        out.status.code(),
        Some(0),
        "existing user: {}",
        s.explain(&out)
    );
    assert_eq!(stdout(&out), "OK\n", "{}", s.explain(&out));
    assert!(!stderr(&out).contains("query error"), "{}", s.explain(&out));
    assert_eq!(
        s.isuser_bodies(),
        ["operation=isuser&username=alice&domain=example.org"]
    );

    let out = s.postmap("bob@example.org", "");
    assert_eq!(
        out.status.code(),
        Some(1),
        "missing user: {}",
        s.explain(&out)
    );
    assert_eq!(stdout(&out), "", "{}", s.explain(&out));
    assert!(
        !stderr(&out).contains("query error"),
        "500, not 400: {}",
        s.explain(&out)
    );
    assert_eq!(
        s.backend.count("isuser"),
        2,
        "the backend was asked about bob"
    );
}

#[test]
fn postmap_percent_encoded_keys_are_decoded() {
    let s = Setup::new("postfix-encoded");

    // postmap sends non-ASCII bytes %XX-encoded: `get j%C3%B6rg@example.org`.
    let out = s.postmap("jörg@example.org", "");
    assert_eq!(
        out.status.code(),
        Some(0),
        "jörg exists: {}",
        s.explain(&out)
    );
    assert_eq!(stdout(&out), "OK\n", "{}", s.explain(&out));
    // xcauthd asked the backend about the decoded name (form-encoded again as UTF-8).
    assert_eq!(
        s.isuser_bodies(),
        ["operation=isuser&username=j%C3%B6rg&domain=example.org"]
    );

    // A space and a '%' arrive as `get we%20ird%25@example.org`; decoded, the key breaks
    // the address rules (no space, no '%'): an illegal request, i.e. "not found", with
    // no backend call and no temporary error.
    let out = s.postmap("we ird%@example.org", "");
    assert_eq!(out.status.code(), Some(1), "{}", s.explain(&out));
    assert_eq!(stdout(&out), "", "{}", s.explain(&out));
    assert!(
        !stderr(&out).contains("query error"),
        "500, not 400: {}",
        s.explain(&out)
    );
    assert_eq!(
        s.backend.count("isuser"),
        1,
        "an illegal key never reaches the backend"
    );
}

#[test]
fn postmap_several_keys_over_one_connection() {
    let s = Setup::new("postfix-multi");
    // start_daemon waits for xcauthd's READY=1, not for a probe connection: postmap's is the
    // first.
    let connections = |s: &Setup| s.log_text().matches("postfix connection from").count();
    let before = connections(&s);
    assert_eq!(
        before,
        0,
        "no connection before postmap's:\n{}",
        s.log_text()
    );
    let out = s.postmap(
        "-",
        "alice@example.org\nbob@example.org\njörg@example.org\nalice@example.org\n",
    );
    assert_eq!(out.status.code(), Some(0), "{}", s.explain(&out));
    assert_eq!(
        stdout(&out),
        "alice@example.org\tOK\njörg@example.org\tOK\nalice@example.org\tOK\n",
        "{}",
        s.explain(&out)
    );
    assert_eq!(
        s.isuser_bodies(),
        [
            "operation=isuser&username=alice&domain=example.org",
            "operation=isuser&username=bob&domain=example.org",
            "operation=isuser&username=j%C3%B6rg&domain=example.org",
            "operation=isuser&username=alice&domain=example.org",
        ]
    );
    let log = s.log_text();
    assert_eq!(
        connections(&s) - before,
        1,
        "postmap -q - uses one connection; xcauthd served all keys on it:\n{log}"
    );
}

fn assert_query_error(s: &Setup, out: &Output) {
    assert_eq!(
        out.status.code(),
        Some(1),
        "backend down: {}",
        s.explain(out)
    );
    assert_eq!(stdout(out), "", "{}", s.explain(out));
    assert!(
        stderr(out).contains("query error"),
        "a temporary error (400), not \"not found\": {}",
        s.explain(out)
    );
}

#[test]
fn postmap_backend_down_is_a_temporary_error() {
    let mut s = Setup::new("postfix-down");

    // The backend closes every connection without answering.
    s.backend.set_fault(Fault::Drop);
    let out = s.postmap("alice@example.org", "");
    assert_query_error(&s, &out);
    assert!(
        s.backend.count("isuser") >= 1,
        "xcauthd did ask the backend"
    );

    // Back to normal: the next query is answered again.
    s.backend.set_fault(Fault::None);
    let out = s.postmap("alice@example.org", "");
    assert_eq!(
        out.status.code(),
        Some(0),
        "backend up again: {}",
        s.explain(&out)
    );
    assert_eq!(stdout(&out), "OK\n");

    // The backend is gone altogether (connection refused): stop it, keeping an
    // unrelated double in its place so that `Setup` stays whole.
    let url_port = s.backend.port();
    drop(std::mem::replace(
        &mut s.backend,
        BackendDouble::start(SECRET),
    ));
    assert!(
        std::net::TcpStream::connect(("127.0.0.1", url_port)).is_err(),
        "the old backend port still accepts"
    );
    let out = s.postmap("alice@example.org", "");
    assert_query_error(&s, &out);
    // Also for a user that would not exist: never "not found" while the backend is down.
    let out = s.postmap("bob@example.org", "");
    assert_query_error(&s, &out);

    assert!(s.daemon.alive(), "xcauthd survived the backend outage");
}
