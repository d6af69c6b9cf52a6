//! Real ejabberd 23.01 with `auth_method: external` spawning `xcauthd -t ejabberd`
//! (the length-prefixed extauth framing on stdin/stdout), driven by a real XMPP
//! client (slixmpp, `tests/scripts/xmpp_login.py`): a login succeeds with the
//! Nextcloud password and with an app password and fails with a wrong one, and
//! each attempt reaches the JSXC backend (the test double) exactly once.
//!
//! See `docs/testing.md` §5.2. ejabberd runs the extauth program as
//! user `ejabberd`, so the binary, its configuration and its log directory live
//! in a 0755 scratch directory under /tmp.
#![allow(clippy::unwrap_used, clippy::expect_used)]

use std::ffi::OsString;
use std::os::unix::fs::PermissionsExt;
use std::os::unix::process::CommandExt;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use xcauth_tests::double::{BackendDouble, User};
use xcauth_tests::machine::{reserve_port, PortLease};
use xcauth_tests::support::{
    bin, require_program, tcp_accepts, wait_for_child, xmpp_login, Scratch, XmppLogin,
};

pub(super) const SECRET: &str = "ejabberd-e2e-secret";

pub(super) fn chown_ejabberd(path: &Path) {
    let st = Command::new("chown")
        .args(["-R", "ejabberd:ejabberd"])
        .arg(path)
        .status()
        .expect("chown");
    assert!(st.success(), "chown -R ejabberd: {}", path.display());
}

pub(super) fn read_or_empty(path: &Path) -> String {
    std::fs::read_to_string(path).unwrap_or_default()
}

fn kill(sig: &str, target: &str) {
    let _ = Command::new("kill")
        .args([&format!("-{sig}"), "--", target])
        .stderr(Stdio::null())
        .status();
}

fn pid_alive(pid: u32) -> bool {
    Path::new(&format!("/proc/{pid}")).exists()
        && !read_or_empty(Path::new(&format!("/proc/{pid}/stat"))).contains(") Z ")
}

/// A running `ejabberdctl … foreground`, stopped with `ejabberdctl … stop` on
/// drop, killed by PID (its own process group, then the Erlang VM from the pid
/// file) as a fallback. Dumps its logs when the test is failing.
pub(super) struct Ejabberd {
    child: Child,
    /// `--config-dir … --node …`, shared by `foreground` and `stop`.
    pub(super) args: Vec<OsString>,
    dir: PathBuf,
    pid_file: PathBuf,
    /// The Erlang VM's PID (beam.smp runs as user ejabberd in its own session).
    beam_pid: Option<u32>,
    /// xcauthd's log directory, dumped too.
    xcauth_log: PathBuf,
    /// The c2s and Erlang distribution ports, ejabberd's while it runs.
    _ports: [PortLease; 2],
}

impl Ejabberd {
    pub(super) fn ctl(&self, action: &str) -> Command {
        let mut cmd = Command::new("timeout");
        cmd.args(["-k", "3", "20", "ejabberdctl"])
            .args(&self.args)
            .arg(action)
            .stdin(Stdio::null());
        cmd
    }

    /// Stops ejabberd the normal way; true when `ejabberdctl foreground` exited.
    pub(super) fn stop(&mut self) -> bool {
        if let Ok(Some(_)) = self.child.try_wait() {
            return true;
        }
        let _ = self
            .ctl("stop")
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .status();
        let end = Instant::now() + Duration::from_secs(10);
        while Instant::now() < end {
            if let Ok(Some(_)) = self.child.try_wait() {
                return true;
            }
            std::thread::sleep(Duration::from_millis(50));
        }
        false
    }

    /// Waits up to `within` until `done()` holds; fails at once when ejabberd has exited.
    pub(super) fn wait_until(&mut self, what: &str, within: Duration, done: impl FnMut() -> bool) {
        let logs = [
            self.dir.join("console.log"),
            self.dir.join("logs/ejabberd.log"),
            self.dir.join("logs/error.log"),
            self.xcauth_log.join("xcauth.log"),
        ];
        let logs: Vec<&Path> = logs.iter().map(PathBuf::as_path).collect();
        wait_for_child(
            &mut self.child,
            "ejabberdctl foreground",
            &logs,
            what,
            within,
            done,
        );
    }

    #[allow(clippy::print_stderr)] // the logs are the failure report
    fn dump_logs(&self) {
        for (what, path) in [
            ("ejabberd console", self.dir.join("console.log")),
            ("ejabberd.log", self.dir.join("logs/ejabberd.log")),
            ("ejabberd error.log", self.dir.join("logs/error.log")),
            ("xcauth.log", self.xcauth_log.join("xcauth.log")),
            ("xcauth.err", self.xcauth_log.join("xcauth.err")),
        ] {
            eprintln!(
                "----- {what} ({}) -----\n{}",
                path.display(),
                read_or_empty(&path)
            );
        }
    }
}

impl Drop for Ejabberd {
    fn drop(&mut self) {
        if std::thread::panicking() {
            self.dump_logs();
        }
        let stopped = self.stop();
        let beam = self
            .beam_pid
            .or_else(|| read_or_empty(&self.pid_file).trim().parse().ok());
        if let Some(pid) = beam.filter(|p| pid_alive(*p)) {
            kill("TERM", &pid.to_string());
            let end = Instant::now() + Duration::from_secs(3);
            while pid_alive(pid) && Instant::now() < end {
                std::thread::sleep(Duration::from_millis(50));
            }
            if pid_alive(pid) {
                kill("KILL", &pid.to_string());
            }
        }
        if !stopped {
            // ejabberdctl and su: the process group we created for them.
            kill("KILL", &format!("-{}", self.child.id()));
        }
        let _ = self.child.wait();
    }
}

/// ejabberd running with xcauthd as its extauth program, and what a test needs of it.
pub(super) struct Started {
    pub(super) server: Ejabberd,
    pub(super) c2s_port: u16,
    pub(super) log_dir: PathBuf,
}

/// Where ejabberd's authentication settings come from.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(super) enum AuthConfig {
    /// The test's own lines: one extauth process (`extauth_pool_size: 1`).
    Inline,
    /// The shipped `integration/ejabberd/ejabberd-xcauth.yml`, included as it is except for
    /// the program's path (`/usr/sbin/xcauthd` becomes a wrapper adding `-c CONF`).
    Shipped,
}

/// The shipped ejabberd snippet.
pub(super) const SHIPPED_YAML: &str = "../integration/ejabberd/ejabberd-xcauth.yml";

/// Starts ejabberd in `w` with xcauthd (configured for `backend` plus `xcauth_extra` lines)
/// as its extauth program and `modules` (YAML flow-map entries) besides mod_disco and mod_ping.
pub(super) fn start_ejabberd(
    w: &Scratch,
    backend: &BackendDouble,
    xcauth_extra: &str,
    modules: &str,
) -> Started {
    start_ejabberd_with(w, backend, xcauth_extra, modules, AuthConfig::Inline)
}

/// [`start_ejabberd`] with the authentication settings of `auth`.
pub(super) fn start_ejabberd_with(
    w: &Scratch,
    backend: &BackendDouble,
    xcauth_extra: &str,
    modules: &str,
    auth: AuthConfig,
) -> Started {
    require_program("ejabberdctl");
    require_program("timeout");
    assert!(
        Path::new("/usr/bin/python3").exists(),
        "/usr/bin/python3 missing: run scripts/install-test-deps.sh"
    );
    // xcauthd runs as user ejabberd: everything it touches lives in the 0755 scratch dir.
    let xcauthd = w.join("xcauthd");
    std::fs::copy(bin("xcauthd"), &xcauthd).unwrap();
    std::fs::set_permissions(&xcauthd, std::fs::Permissions::from_mode(0o755)).unwrap();
    let log_dir = w.join("xcauth-log");
    std::fs::create_dir(&log_dir).unwrap();
    chown_ejabberd(&log_dir);
    let conf = w.write(
        "xcauth.conf",
        &format!(
            "url={}\nsecret={SECRET}\ntimeout=2,3\nlog={}\ndebug\n{xcauth_extra}\n",
            backend.url(),
            log_dir.display()
        ),
    );
    let wrapper = w.write(
        "extauth-program",
        &format!(
            "#!/bin/sh\nXCAUTH_SYSTEM_CONFIG=/nonexistent/xcauth.conf exec {} -c {} -t ejabberd\n",
            xcauthd.display(),
            conf.display()
        ),
    );
    std::fs::set_permissions(&wrapper, std::fs::Permissions::from_mode(0o755)).unwrap();
    let auth_yaml = match auth {
        AuthConfig::Inline => format!(
            "auth_method: [external]\n\
             extauth_program: \"{}\"\n\
             extauth_pool_size: 1\n\
             auth_use_cache: false\n",
            wrapper.display()
        ),
        AuthConfig::Shipped => {
            // The shipped program line with the test's xcauthd and configuration: the
            // arguments after the path (`-t ejabberd`) are the shipped ones.
            let program = w.write(
                "shipped-extauth-program",
                &format!(
                    "#!/bin/sh\nXCAUTH_SYSTEM_CONFIG=/nonexistent/xcauth.conf exec {} -c {} \"$@\"\n",
                    xcauthd.display(),
                    conf.display()
                ),
            );
            std::fs::set_permissions(&program, std::fs::Permissions::from_mode(0o755)).unwrap();
            let shipped =
                std::fs::read_to_string(Path::new(env!("CARGO_MANIFEST_DIR")).join(SHIPPED_YAML))
                    .unwrap();
            assert_eq!(
                shipped.matches("\"/usr/sbin/xcauthd ").count(),
                1,
                "the shipped extauth_program:\n{shipped}"
            );
            let yaml =
                shipped.replace("\"/usr/sbin/xcauthd ", &format!("\"{} ", program.display()));
            let included = w.write("ejabberd/xcauth.yml", &yaml);
            format!("include_config_file: \"{}\"\n", included.display())
        }
    };

    // ejabberd binds both itself (the distribution port without epmd).
    let ports = [reserve_port(), reserve_port()];
    let (c2s_port, dist_port) = (ports[0].port(), ports[1].port());
    let ej = w.join("ejabberd");
    std::fs::create_dir_all(ej.join("spool")).unwrap();
    std::fs::create_dir_all(ej.join("logs")).unwrap();
    let pid_file = ej.join("ejabberd.pid");
    w.write(
        "ejabberd/ejabberdctl.cfg",
        &format!(
            "ERL_OPTIONS=\"-env ERL_CRASH_DUMP_BYTES 0\"\n\
             INET_DIST_INTERFACE=127.0.0.1\n\
             ERL_DIST_PORT={dist_port}\n\
             EJABBERD_PID_PATH={}\n",
            pid_file.display()
        ),
    );
    w.write(
        "ejabberd/ejabberd.yml",
        &format!(
            "hosts: [example.org]\n\
             loglevel: info\n\
             acme: {{auto: false}}\n\
             certfiles: []\n\
             listen:\n  - {{port: {c2s_port}, ip: \"127.0.0.1\", module: ejabberd_c2s, starttls: false}}\n\
             {auth_yaml}\
             modules: {{mod_disco: {{}}, mod_ping: {{}}{modules}}}\n"
        ),
    );
    if Path::new("/etc/ejabberd/inetrc").exists() {
        std::fs::copy("/etc/ejabberd/inetrc", ej.join("inetrc")).unwrap();
    }
    chown_ejabberd(&ej);

    let node = format!("xcauthtest{}x{c2s_port}@localhost", std::process::id());
    let args: Vec<OsString> = vec![
        "--config-dir".into(),
        ej.clone().into(),
        "--ctl-config".into(),
        ej.join("ejabberdctl.cfg").into(),
        "--config".into(),
        ej.join("ejabberd.yml").into(),
        "--spool".into(),
        ej.join("spool").into(),
        "--logs".into(),
        ej.join("logs").into(),
        "--node".into(),
        node.into(),
    ];
    let console = std::fs::File::create(ej.join("console.log")).unwrap();
    let child = Command::new("ejabberdctl")
        .args(&args)
        .arg("foreground")
        .stdin(Stdio::null())
        .stdout(console.try_clone().unwrap())
        .stderr(console)
        .process_group(0)
        .spawn()
        .expect("start ejabberdctl foreground");
    let mut server = Ejabberd {
        child,
        args,
        dir: ej.clone(),
        pid_file: pid_file.clone(),
        beam_pid: None,
        xcauth_log: log_dir.clone(),
        _ports: ports,
    };
    let c2s = format!("127.0.0.1:{c2s_port}").parse().unwrap();
    server.wait_until(
        &format!("listening on {c2s}"),
        Duration::from_secs(30),
        || tcp_accepts(c2s),
    );
    server.beam_pid = read_or_empty(&pid_file).trim().parse().ok();
    Started {
        server,
        c2s_port,
        log_dir,
    }
}

#[test]
fn ejabberd_extauth_logins_through_xcauthd() {
    let backend = BackendDouble::start(SECRET);
    backend.add_user(User::new("alice", "secret").app_password("alice", "app-pw-1"));

    let w = Scratch::new("ejabberd");
    let Started {
        mut server,
        c2s_port,
        log_dir,
    } = start_ejabberd(&w, &backend, "", "");

    // 1. The Nextcloud login password.
    let (rc, out) = xmpp_login("alice@example.org", "secret", c2s_port);
    assert_eq!(rc, XmppLogin::LoggedIn, "good password must log in:\n{out}");
    assert_eq!(backend.count("auth"), 1, "one backend auth per login");
    let body = backend.last_request().unwrap().body_str();
    assert_eq!(
        body, "operation=auth&username=alice&domain=example.org&password=secret",
        "what xcauthd sent for ejabberd's auth:alice:example.org:secret"
    );

    // 2. An app password (device token) of the same account.
    let (rc, out) = xmpp_login("alice@example.org", "app-pw-1", c2s_port);
    assert_eq!(rc, XmppLogin::LoggedIn, "app password must log in:\n{out}");
    assert_eq!(backend.count("auth"), 2);

    // 3. A wrong password is refused (by xcauthd's 00 02 00 00 reply).
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
    let body = backend.last_request().unwrap().body_str();
    assert!(body.ends_with("&password=Wrong-PW-77"), "{body}");

    // The extauth program was xcauthd running as user ejabberd: it could write its
    // log in the ejabberd-owned directory, and the log names the user but no secret.
    let xclog = read_or_empty(&log_dir.join("xcauth.log"));
    assert!(
        xclog.contains("alice@example.org"),
        "xcauthd's log:\n{xclog}"
    );
    for leak in ["app-pw-1", "Wrong-PW-77", SECRET] {
        assert!(
            !xclog.contains(leak),
            "xcauthd's log shows {leak:?}:\n{xclog}"
        );
    }

    // A clean stop through ejabberdctl, within the bound.
    assert!(
        server.stop(),
        "ejabberdctl stop did not end ejabberd within 10 s"
    );
}

/// The `xcauthd` processes running from `xcauthd` (ejabberd's pool of extauth programs).
fn extauth_processes(xcauthd: &Path) -> usize {
    let want = format!("{}\0", xcauthd.display());
    std::fs::read_dir("/proc")
        .unwrap()
        .filter_map(Result::ok)
        .filter(|e| {
            e.file_name()
                .to_string_lossy()
                .bytes()
                .all(|b| b.is_ascii_digit())
        })
        .filter_map(|e| std::fs::read(e.path().join("cmdline")).ok())
        .map(|c| String::from_utf8_lossy(&c).into_owned())
        .filter(|c| c.starts_with(&want) && c.contains("\0-t\0ejabberd\0"))
        .count()
}

/// The shipped `integration/ejabberd/ejabberd-xcauth.yml`, included into a real ejabberd as an
/// admin would merge it (only the program's path differs): ejabberd accepts every option,
/// logins go through xcauthd with the shipped arguments (`-t ejabberd`), the shipped pool
/// size runs three of them, and with ejabberd's own cache off every login reaches xcauthd.
#[test]
fn the_shipped_ejabberd_snippet_logs_in_through_xcauthd() {
    let backend = BackendDouble::start(SECRET);
    backend.add_user(User::new("alice", "secret"));
    let w = Scratch::new("ejabberd-shipped");
    let Started {
        server, c2s_port, ..
    } = start_ejabberd_with(&w, &backend, "", "", AuthConfig::Shipped);

    let (rc, out) = xmpp_login("alice@example.org", "secret", c2s_port);
    assert_eq!(rc, XmppLogin::LoggedIn, "good password must log in:\n{out}");
    let (rc, out) = xmpp_login("alice@example.org", "Wrong-PW-78", c2s_port);
    assert_eq!(
        rc,
        XmppLogin::Refused,
        "wrong password must be refused:\n{out}"
    );
    // auth_use_cache: false: the same good login again is asked again.
    let (rc, out) = xmpp_login("alice@example.org", "secret", c2s_port);
    assert_eq!(rc, XmppLogin::LoggedIn, "good password must log in:\n{out}");
    assert_eq!(backend.count("auth"), 3, "every login reached the backend");

    // extauth_pool_size: 3, each started with the shipped `-t ejabberd`.
    let xcauthd = w.join("xcauthd");
    let end = Instant::now() + Duration::from_secs(30);
    while extauth_processes(&xcauthd) < 3 && Instant::now() < end {
        std::thread::sleep(Duration::from_millis(50));
    }
    assert_eq!(extauth_processes(&xcauthd), 3, "the shipped pool size");
    drop(server);
}
