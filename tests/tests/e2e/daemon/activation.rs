//! The socket-activation environment (`LISTEN_PID`, `LISTEN_FDS`, `LISTEN_FDNAMES`, the
//! descriptors from 3 on) when it is wrong: the built `xcauthd` started by a small launcher
//! (`/usr/bin/python3`) that puts what a case needs on fd 3 (a listening Unix socket, a
//! datagram socket, a regular file, or nothing) and sets the variables, then execs xcauthd in
//! its own process, so `LISTEN_PID` can name it exactly, or not.
//!
//! Following the `sd_listen_fds` protocol, an environment meant for another process (another
//! PID), or one without a usable count, is not socket activation at all: xcauthd then serves
//! what its command line says (here stdin, with `-t generic`) and leaves fd 3 alone. A count
//! naming more descriptors than are open takes those that are; a missing or unknown name
//! serves the `-t` protocol with a warning; an inherited descriptor that is not a listening
//! stream socket is refused by name, and with nothing usable left xcauthd stops with status 1.

#![allow(clippy::unwrap_used, clippy::expect_used)] // tests

use std::io::{Read, Write};
use std::os::unix::net::UnixStream;
use std::path::Path;
use std::process::{Command, Output, Stdio};
use std::time::Duration;

use xcauth_tests::double::{BackendDouble, User};
use xcauth_tests::pam_support::wait_output;
use xcauth_tests::support::{self, Proc, Scratch};

const SECRET: &str = "e2e-activation-secret";

/// Puts `argv[2]` on fd 3 (`listener`: a listening Unix stream socket bound at `argv[1]`;
/// `datagram`: a Unix datagram socket bound there; `file`: `/etc/hostname`; `none`: nothing),
/// sets `LISTEN_PID`, `LISTEN_FDS` and `LISTEN_FDNAMES` from `argv[3..6]` (`-`: unset; `self`
/// in `LISTEN_PID`: the PID xcauthd will have), then execs `argv[6..]`.
const LAUNCHER: &str = r#"
import os, socket, sys
path, what, pid, fds, names = sys.argv[1:6]
prog = sys.argv[6:]

def at_fd3(fd):
    if fd == 3:
        os.set_inheritable(3, True)
    else:
        os.dup2(fd, 3)
        os.close(fd)

if what in ("listener", "datagram"):
    kind = socket.SOCK_STREAM if what == "listener" else socket.SOCK_DGRAM
    s = socket.socket(socket.AF_UNIX, kind)
    s.bind(path)
    if what == "listener":
        s.listen(8)
    at_fd3(s.detach())
elif what == "file":
    at_fd3(os.open("/etc/hostname", os.O_RDONLY))
env = dict(os.environ)
for key, value in (("LISTEN_PID", pid), ("LISTEN_FDS", fds), ("LISTEN_FDNAMES", names)):
    env.pop(key, None)
    if value != "-":
        env[key] = value.replace("self", str(os.getpid()))
os.execve(prog[0], prog, env)
"#;

/// What one case puts on fd 3 and in the environment.
struct Env<'a> {
    fd3: &'a str,
    pid: &'a str,
    fds: &'a str,
    names: &'a str,
}

struct World {
    scratch: Scratch,
    conf: std::path::PathBuf,
    _double: BackendDouble,
}

fn world(tag: &str) -> World {
    let double = BackendDouble::start(SECRET);
    double.add_user(User::new("alice", "secret"));
    let scratch = Scratch::new(tag);
    let conf = scratch.write(
        "xcauth.conf",
        &support::xcauth_conf(&double.url(), SECRET, ""),
    );
    World {
        scratch,
        conf,
        _double: double,
    }
}

impl World {
    fn sock(&self) -> std::path::PathBuf {
        self.scratch.join("activated.sock")
    }

    /// `xcauthd -c CONF -i ARGS` under the launcher with `env` (which execs it: xcauthd keeps
    /// the launcher's PID, and the test's handle on the process is xcauthd's).
    fn command(&self, env: &Env<'_>, args: &[&str]) -> Command {
        let mut cmd = Command::new("/usr/bin/python3");
        cmd.args(["-c", LAUNCHER])
            .arg(self.sock())
            .args([env.fd3, env.pid, env.fds, env.names])
            .arg(support::bin("xcauthd"))
            .arg("-c")
            .arg(&self.conf)
            // Log to stderr (not to /var/log/xcauth, which the packaging test may create).
            .arg("-i")
            .args(args)
            .env("XCAUTH_SYSTEM_CONFIG", "/nonexistent/xcauth.conf");
        cmd
    }

    /// Runs to the end with `input` on stdin (a minute at most).
    fn run(&self, env: &Env<'_>, args: &[&str], input: &str) -> Output {
        let mut child = self
            .command(env, args)
            .stdin(Stdio::piped())
            .stdout(Stdio::piped())
            .stderr(Stdio::piped())
            .spawn()
            .unwrap();
        child
            .stdin
            .take()
            .unwrap()
            .write_all(input.as_bytes())
            .unwrap();
        wait_output(child, Duration::from_secs(60))
    }

    /// Starts it as a daemon (stderr to `daemon.log`), waits until it is ready (its
    /// `READY=1`), and asks `isuser:alice` on the inherited socket.
    fn serve(&self, env: &Env<'_>, args: &[&str]) -> (Proc, String) {
        let p =
            support::start_daemon_with(self.command(env, args), &self.scratch.join("daemon.log"));
        let mut s = UnixStream::connect(self.sock()).unwrap();
        s.set_read_timeout(Some(Duration::from_secs(20))).unwrap();
        s.write_all(b"isuser:alice:example.org\n").unwrap();
        let mut answer = [0u8; 2];
        s.read_exact(&mut answer).unwrap();
        (p, String::from_utf8_lossy(&answer).into_owned())
    }

    fn log(&self) -> String {
        std::fs::read_to_string(self.scratch.join("daemon.log")).unwrap_or_default()
    }
}

fn stderr(out: &Output) -> String {
    String::from_utf8_lossy(&out.stderr).into_owned()
}

/// The launcher itself, with a correct environment: the inherited socket is served.
#[test]
fn a_correct_environment_serves_the_inherited_socket() {
    let w = world("activation-ok");
    let env = Env {
        fd3: "listener",
        pid: "self",
        fds: "1",
        names: "generic",
    };
    let (_p, answer) = w.serve(&env, &["-t", "postfix"]);
    assert_eq!(answer, "1\n", "{}", w.log());
}

/// `LISTEN_PID` names another process, or is not a number; `LISTEN_FDS` is not a count, or
/// zero, or negative; or is missing: not socket activation. xcauthd serves stdin (`-t`) and
/// never touches the socket on fd 3.
#[test]
fn an_environment_for_someone_else_is_not_activation() {
    let w = world("activation-other");
    let cases = [
        ("LISTEN_PID of another process", "1", "1"),
        ("LISTEN_PID not a number", "abc", "1"),
        ("LISTEN_PID empty", "", "1"),
        ("LISTEN_PID missing", "-", "1"),
        ("LISTEN_FDS not a count", "self", "one"),
        ("LISTEN_FDS with junk", "self", "1x"),
        ("LISTEN_FDS zero", "self", "0"),
        ("LISTEN_FDS negative", "self", "-1"),
        ("LISTEN_FDS missing", "self", "-"),
    ];
    for (what, pid, fds) in cases {
        let _ = std::fs::remove_file(w.sock());
        let env = Env {
            fd3: "listener",
            pid,
            fds,
            names: "generic",
        };
        let out = w.run(&env, &["-t", "generic"], "isuser:alice:example.org\n");
        let err = stderr(&out);
        assert_eq!(out.status.code(), Some(0), "{what}: {err}");
        assert_eq!(out.stdout, b"1\n", "{what}: {err}");
        assert!(err.contains("stdin session ended"), "{what}: {err}");
        assert!(!err.contains("systemd:"), "{what}: {err}");
        // Without a mode on the command line that is xcauth 2's "no mode": help, status 1.
        let _ = std::fs::remove_file(w.sock());
        let out = w.run(&env, &[], "");
        assert_eq!(out.status.code(), Some(1), "{what}: {}", stderr(&out));
        assert!(stderr(&out).contains("Usage:"), "{what}: {}", stderr(&out));
    }
}

/// `LISTEN_FDS` names descriptors that are not open: none at all is no activation; more than
/// are open takes the ones that are.
#[test]
fn a_count_beyond_the_open_descriptors() {
    let w = world("activation-count");
    let nothing = Env {
        fd3: "none",
        pid: "self",
        fds: "1",
        names: "generic",
    };
    let out = w.run(&nothing, &["-t", "generic"], "isuser:alice:example.org\n");
    assert_eq!(out.status.code(), Some(0), "{}", stderr(&out));
    assert_eq!(out.stdout, b"1\n", "{}", stderr(&out));
    let out = w.run(&nothing, &[], "");
    assert_eq!(out.status.code(), Some(1), "{}", stderr(&out));

    let more = Env {
        fd3: "listener",
        pid: "self",
        fds: "3",
        names: "generic:postfix:prosody",
    };
    let (_p, answer) = w.serve(&more, &["-t", "postfix"]);
    assert_eq!(answer, "1\n", "{}", w.log());
}

/// A missing, empty or unknown `FileDescriptorName` serves the `-t` protocol and says so;
/// names beyond the descriptors are ignored.
#[test]
fn names_that_do_not_match_the_descriptors() {
    let w = world("activation-names");
    for (names, shown) in [
        ("-", "\"unknown\""),
        ("", "\"unknown\""),
        ("smtp", "\"smtp\""),
        (":generic", "\"unknown\""),
    ] {
        let _ = std::fs::remove_file(w.sock());
        let env = Env {
            fd3: "listener",
            pid: "self",
            fds: "1",
            names,
        };
        let (p, answer) = w.serve(&env, &["-t", "generic"]);
        assert_eq!(answer, "1\n", "{names}: {}", w.log());
        drop(p);
        let log = w.log();
        assert!(
            log.contains(&format!(
                "socket {shown} has no known FileDescriptorName; serving generic"
            )),
            "{names}: {log}"
        );
    }
    let _ = std::fs::remove_file(w.sock());
    let env = Env {
        fd3: "listener",
        pid: "self",
        fds: "1",
        names: "generic:postfix",
    };
    let (_p, answer) = w.serve(&env, &["-t", "postfix"]);
    assert_eq!(answer, "1\n", "{}", w.log());
    assert!(!w.log().contains("FileDescriptorName"), "{}", w.log());
}

/// An inherited descriptor that is not a listening stream socket is refused by name; with
/// nothing usable left, xcauthd stops with status 1 and says why.
#[test]
fn an_inherited_descriptor_that_cannot_listen_stops_the_start() {
    let w = world("activation-bad-fd");
    for fd3 in ["file", "datagram"] {
        let _ = std::fs::remove_file(w.sock());
        let env = Env {
            fd3,
            pid: "self",
            fds: "1",
            names: "generic",
        };
        let out = w.run(&env, &["-t", "generic"], "isuser:alice:example.org\n");
        let err = stderr(&out);
        assert_eq!(out.status.code(), Some(1), "{fd3}: {err}");
        assert!(out.stdout.is_empty(), "{fd3}: stdin was served");
        assert!(
            err.contains(
                "systemd:generic: inherited descriptor is not a listening stream socket; ignored"
            ),
            "{fd3}: {err}"
        );
        assert!(
            err.contains("socket activation passed no usable listening socket"),
            "{fd3}: {err}"
        );
    }
    assert!(Path::new("/etc/hostname").exists());
}
