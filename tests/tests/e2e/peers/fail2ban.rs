//! The shipped fail2ban jail and filter (`integration/fail2ban/`), run by Debian's fail2ban
//! against the log of the built xcauthd.
//!
//! The configuration directory is a copy of the system's `/etc/fail2ban` without its jails
//! and local overrides, plus the shipped `filter.d/xcauth.conf` and `jail.d/xcauth.conf` as
//! they are. Only what an admin adapts anyway is set beside them, in `.local` files: the
//! server's socket, pid file, database (`:memory:`) and log in the scratch directory, and for
//! the jail the log path (xcauthd's log there) and the `dummy` action (it writes `+ADDRESS` to
//! a file instead of touching the firewall). `fail2ban-client -t` checks the configuration;
//! `fail2ban-server` then loads the jail for real (it compiles the filter), and an address
//! xcauthd locks out is banned, another one is not.

#![allow(clippy::unwrap_used, clippy::expect_used)] // tests

use std::path::{Path, PathBuf};
use std::process::{Command, Output, Stdio};
use std::time::{Duration, Instant};

use xcauth_core::pamsock::{self, PamReply, PamRequest};
use xcauth_tests::double::{BackendDouble, User};
use xcauth_tests::support::{self, require_program, Listeners, Proc, Scratch};

const SECRET: &str = "e2e-fail2ban-secret";

/// How long fail2ban may take to start a jail or to act on a line: far beyond what it needs
/// (about a second), so only a jail that never works reaches it.
const PATIENCE: Duration = Duration::from_secs(60);

fn shipped(name: &str) -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("../integration/fail2ban")
        .join(name)
}

fn text(out: &Output) -> String {
    format!(
        "{}{}",
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    )
}

/// A fail2ban configuration directory in `s` with the shipped jail and filter; the jail reads
/// `logpath` and bans into `banned`.
fn fail2ban_conf(s: &Scratch, logpath: &Path, banned: &Path) -> PathBuf {
    let dir = s.join("fail2ban");
    let st = Command::new("cp")
        .args(["-a", "/etc/fail2ban"])
        .arg(&dir)
        .status()
        .unwrap();
    assert!(st.success(), "cp -a /etc/fail2ban");
    // Only the shipped jail, and none of this host's local settings.
    for sub in ["jail.d", "fail2ban.d", "filter.d", "action.d"] {
        for entry in std::fs::read_dir(dir.join(sub)).unwrap() {
            let path = entry.unwrap().path();
            if sub == "jail.d"
                || sub == "fail2ban.d"
                || path.extension().is_some_and(|e| e == "local")
            {
                std::fs::remove_file(path).unwrap();
            }
        }
    }
    for local in ["jail.local", "fail2ban.local", "paths-overrides.local"] {
        let _ = std::fs::remove_file(dir.join(local));
    }
    for file in ["filter.d/xcauth.conf", "jail.d/xcauth.conf"] {
        std::fs::copy(shipped(file), dir.join(file)).unwrap();
    }
    let d = dir.display();
    std::fs::write(
        dir.join("fail2ban.local"),
        format!(
            "[Definition]\nsocket = {d}/server.sock\npidfile = {d}/server.pid\n\
             dbfile = :memory:\nlogtarget = {d}/server.log\n"
        ),
    )
    .unwrap();
    std::fs::write(
        dir.join("jail.d/xcauth.local"),
        format!(
            "[xcauth]\nlogpath = {}\naction = dummy[target=\"{}\"]\n",
            logpath.display(),
            banned.display()
        ),
    )
    .unwrap();
    dir
}

fn client(conf: &Path, args: &[&str]) -> Output {
    Command::new("timeout")
        .args(["-k", "5", "60"])
        .arg(require_program("fail2ban-client"))
        .arg("-c")
        .arg(conf)
        .args(args)
        .stdin(Stdio::null())
        .output()
        .unwrap()
}

/// `fail2ban-server` in the foreground; `fail2ban-client stop` on drop, killed as a fallback.
struct Server {
    proc: Proc,
    conf: PathBuf,
}

impl Drop for Server {
    fn drop(&mut self) {
        let _ = client(&self.conf, &["stop"]);
        let _ = self.proc.wait_exit(Duration::from_secs(10));
    }
}

/// Polls `fail2ban-client status xcauth` until `done` holds for its output.
fn wait_for_status(conf: &Path, what: &str, done: impl Fn(&str) -> bool) -> String {
    let end = Instant::now() + PATIENCE;
    loop {
        let out = client(conf, &["status", "xcauth"]);
        let status = text(&out);
        if out.status.success() && done(&status) {
            return status;
        }
        let log = std::fs::read_to_string(conf.join("server.log")).unwrap_or_default();
        assert!(
            Instant::now() < end,
            "{what}: {status}\nfail2ban's log:\n{log}"
        );
        std::thread::sleep(Duration::from_millis(200));
    }
}

fn auth_from(user: &str, rhost: &str) -> PamRequest {
    PamRequest::Auth {
        user: user.into(),
        domain: "example.org".into(),
        password: xcauth_core::Password::new("guess"),
        need_uid: false,
        rhost: rhost.into(),
    }
}

#[test]
fn the_shipped_jail_bans_an_address_xcauthd_locked_out() {
    require_program("fail2ban-server");
    let d = BackendDouble::start(SECRET);
    d.add_user(User::new("alice", "secret"));
    let s = Scratch::new("fail2ban");

    // xcauthd with its own log file (no -i), as the jail's logpath expects, on a pam socket
    // this test bound.
    let log_dir = s.join("xcauth-log");
    std::fs::create_dir(&log_dir).unwrap();
    let xclog = log_dir.join("xcauth.log");
    let conf = s.write(
        "xcauth.conf",
        &support::xcauth_conf(
            &d.url(),
            SECRET,
            &format!(
                "log={}\nthrottle-remote-failures=3\nthrottle-failures=100",
                log_dir.display()
            ),
        ),
    );
    let mut listeners = Listeners::new();
    let pam = listeners.unix("pam", &s.join("pam.sock"));
    let mut cmd = listeners.into_command(&support::bin("xcauthd"));
    cmd.arg("-c").arg(&conf);
    let _daemon = support::start_daemon_with(cmd, &s.join("xcauthd-stderr.log"));

    let banned = s.join("banned");
    let f2b = fail2ban_conf(&s, &xclog, &banned);
    let out = client(&f2b, &["-t"]);
    assert!(out.status.success(), "{}", text(&out));
    assert!(
        text(&out).contains("OK: configuration test is successful"),
        "{}",
        text(&out)
    );

    let mut cmd = Command::new(require_program("fail2ban-server"));
    cmd.arg("-c")
        .arg(&f2b)
        .args(["-f", "-x"])
        .stdin(Stdio::null())
        .stdout(Stdio::null())
        .stderr(Stdio::null());
    let _server = Server {
        proc: Proc::spawn("fail2ban-server", &mut cmd),
        conf: f2b.clone(),
    };
    let status = wait_for_status(&f2b, "the jail never ran", |st| {
        st.contains(&format!("File list:\t{}", xclog.display()))
    });
    assert!(status.contains("Currently banned:\t0"), "{status}");

    // One address guesses three names (locked out), another guesses two (not).
    let mut conn = pamsock::Connection::open(&pam, Duration::from_secs(20)).unwrap();
    for (user, rhost) in [
        ("user1", "192.0.2.7"),
        ("user2", "192.0.2.7"),
        ("user3", "198.51.100.4"),
        ("user4", "192.0.2.7"),
        ("user5", "198.51.100.4"),
    ] {
        assert_eq!(
            conn.ask(&auth_from(user, rhost)).unwrap(),
            PamReply::Rejected
        );
    }
    let status = wait_for_status(&f2b, "no ban", |st| {
        st.contains("Banned IP list:\t192.0.2.7")
    });
    assert!(status.contains("Total banned:\t1"), "{status}");
    assert!(!status.contains("198.51.100.4"), "{status}");
    // The action ran for that address alone.
    let actions = std::fs::read_to_string(&banned).unwrap();
    let bans: Vec<&str> = actions.lines().filter(|l| l.starts_with('+')).collect();
    assert_eq!(bans, ["+192.0.2.7"], "{actions}");

    // The filter, through fail2ban-regex, on the whole log xcauthd wrote: its one lock-out.
    let log = std::fs::read_to_string(&xclog).unwrap();
    assert_eq!(log.matches("xcauth: lockout ").count(), 1, "{log}");
    let out = Command::new(require_program("fail2ban-regex"))
        .arg(&xclog)
        .arg(f2b.join("filter.d/xcauth.conf"))
        .output()
        .unwrap();
    assert!(out.status.success(), "{}", text(&out));
    assert!(text(&out).contains(", 1 matched,"), "{}", text(&out));
}
