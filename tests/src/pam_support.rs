//! Helpers for the PAM end-to-end tests (`tests/tests/e2e/pam/`): the built `pam_xcauth.so`, a
//! scratch world with the backend double and an `xcauth.conf`, a syslog receiver for the
//! module's log lines, pamtester runs (under pam_wrapper or with a real `/etc/pam.d` file), an
//! in-test xcauthd stand-in for `socket=` (a `UnixListener` answering with
//! [`xcauth_core::pamsock::serve_pam_connection`]), and the `pam.d-examples/` files turned into test services.
//!
//! Everything that touches the system (`/etc/pam.d/*`, local users) is undone by a drop guard;
//! local users also need the [`crate::machine::MachineLock`].
#![allow(
    clippy::unwrap_used,
    clippy::expect_used,
    clippy::missing_panics_doc,
    clippy::print_stderr
)] // test support

use std::collections::HashSet;
use std::io::{Read, Write};
use std::os::unix::fs::PermissionsExt;
use std::os::unix::net::{UnixDatagram, UnixListener};
use std::path::{Path, PathBuf};
use std::process::{Command, Output, Stdio};
use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};
use std::sync::{Arc, Mutex, OnceLock};
use std::thread::JoinHandle;
use std::time::{Duration, Instant};

use xcauth_core::backend::jsxc::{ClientOptions, JsxcClient};
use xcauth_core::engine::GlobalBackend;
use xcauth_core::vocab::BackendUrl;
use xcauth_core::{Engine, Secret, SystemClock};

use crate::double::{BackendDouble, User};
use crate::support::{require_program, Scratch};

/// The API secret every PAM test world uses. Log lines must never contain it.
pub const SECRET: &str = "pam-test-secret-7f3a9c";
/// alice's Nextcloud password (in the group "Team").
pub const ALICE_PW: &str = "alice-pw-Q8zK2";
/// bob's Nextcloud password (in no group).
pub const BOB_PW: &str = "bob-pw-W4mV7";
/// Where `pam_set_items.so` / `pam_get_items.so` live (Debian libpam-wrapper).
pub const PAM_WRAPPER_MODULES: &str = "/usr/lib/x86_64-linux-gnu/pam_wrapper";

/// Fails unless the tests run as root (they start daemons, write `/etc/pam.d`, add users).
pub fn require_root() {
    // /proc/self belongs to the effective user.
    let euid = std::fs::metadata("/proc/self")
        .map(|m| std::os::unix::fs::MetadataExt::uid(&m))
        .unwrap_or(1);
    assert_eq!(
        euid, 0,
        "the PAM end-to-end tests must run as root (they use /etc/pam.d)"
    );
}

/// Fails with the installer hint when libpam-wrapper is missing.
pub fn require_pam_wrapper() {
    for f in [
        "/usr/lib/x86_64-linux-gnu/libpam_wrapper.so",
        &format!("{PAM_WRAPPER_MODULES}/pam_set_items.so"),
    ] {
        assert!(
            Path::new(f).exists(),
            "{f} is missing: run scripts/install-test-deps.sh (package libpam-wrapper)"
        );
    }
}

/// Runs `cargo build -p pam_xcauth` (with `features`, if any) for the profile of the running
/// test and returns that profile's directory.
fn build_module(features: Option<&str>) -> PathBuf {
    let profile_dir = crate::support::target_dir();
    let target = profile_dir.parent().expect("target dir").to_path_buf();
    let cargo = std::env::var_os("CARGO").unwrap_or_else(|| "cargo".into());
    let manifest = Path::new(env!("CARGO_MANIFEST_DIR")).join("../Cargo.toml");
    let mut cmd = Command::new(cargo);
    cmd.args(["build", "--quiet", "-p", "pam_xcauth", "--manifest-path"])
        .arg(&manifest)
        .arg("--target-dir")
        .arg(&target);
    if let Some(features) = features {
        cmd.args(["--features", features]);
    }
    if profile_dir.file_name().is_some_and(|n| n == "release") {
        cmd.arg("--release");
    }
    let out = cmd.output().expect("run cargo build -p pam_xcauth");
    assert!(
        out.status.success(),
        "cargo build -p pam_xcauth failed:\n{}",
        String::from_utf8_lossy(&out.stderr)
    );
    profile_dir
}

/// `target/<profile>/…/libpam_xcauth.so`, built (once per test process) with
/// `cargo build -p pam_xcauth` for the profile of the running test, so it is never stale.
pub fn module_so() -> PathBuf {
    static SO: OnceLock<PathBuf> = OnceLock::new();
    SO.get_or_init(|| {
        // Not while the trigger build is in place (its test copies it before it rebuilds the
        // normal module).
        let _only_us = MODULE_FILE
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner);
        let profile_dir = build_module(None);
        for candidate in [
            profile_dir.join("libpam_xcauth.so"),
            profile_dir.join("deps/libpam_xcauth.so"),
        ] {
            if candidate.exists() {
                return candidate;
            }
        }
        panic!(
            "libpam_xcauth.so not found in {} after building it",
            profile_dir.display()
        );
    })
    .clone()
}

/// A copy of `libpam_xcauth.so` built with the test-only `panic-trigger` feature, at `dest`.
/// The normal module is rebuilt afterwards, so later tests never load the trigger build.
pub fn panic_trigger_so(dest: &Path) {
    let _only_us = MODULE_FILE
        .lock()
        .unwrap_or_else(std::sync::PoisonError::into_inner);
    let profile_dir = build_module(Some("panic-trigger"));
    std::fs::copy(profile_dir.join("libpam_xcauth.so"), dest).unwrap();
    build_module(None);
}

/// Held while the module file in `target/` is built, copied or briefly replaced by the
/// trigger build, so no test of this process copies the wrong one.
static MODULE_FILE: Mutex<()> = Mutex::new(());

/// Copies the normal module to `dest`.
fn copy_module(dest: &Path) {
    let so = module_so();
    let _only_us = MODULE_FILE
        .lock()
        .unwrap_or_else(std::sync::PoisonError::into_inner);
    std::fs::copy(so, dest).unwrap();
}

/// Receives the module's syslog datagrams (option `syslog_socket=PATH`).
#[derive(Debug)]
pub struct LogCapture {
    path: PathBuf,
    /// The lines received and not yet taken.
    lines: Arc<Mutex<Vec<String>>>,
    /// Every line received, taken or not: what [`LogCapture::assert_no_secrets`] scans.
    seen: Arc<Mutex<Vec<String>>>,
    stop: Arc<AtomicBool>,
    thread: Option<JoinHandle<()>>,
}

impl LogCapture {
    /// Binds `path` (mode 0666 so that www-data and saslauthd workers can send).
    pub fn bind(path: &Path) -> LogCapture {
        let sock = UnixDatagram::bind(path).unwrap();
        std::fs::set_permissions(path, std::fs::Permissions::from_mode(0o666)).unwrap();
        sock.set_read_timeout(Some(Duration::from_millis(100)))
            .unwrap();
        let lines = Arc::new(Mutex::new(Vec::new()));
        let seen = Arc::new(Mutex::new(Vec::new()));
        let stop = Arc::new(AtomicBool::new(false));
        let (l, all, s) = (Arc::clone(&lines), Arc::clone(&seen), Arc::clone(&stop));
        let thread = std::thread::spawn(move || {
            let mut buf = vec![0u8; 65536];
            while !s.load(Ordering::SeqCst) {
                if let Ok(n) = sock.recv(&mut buf) {
                    let line = String::from_utf8_lossy(&buf[..n]).into_owned();
                    all.lock().unwrap().push(line.clone());
                    l.lock().unwrap().push(line);
                }
            }
        });
        LogCapture {
            path: path.to_path_buf(),
            lines,
            seen,
            stop,
            thread: Some(thread),
        }
    }

    /// The socket path for `syslog_socket=`.
    pub fn path(&self) -> &Path {
        &self.path
    }

    /// Every line received so far (and not taken).
    pub fn lines(&self) -> Vec<String> {
        self.lines.lock().unwrap().clone()
    }

    /// Forgets the lines received so far (returns them). [`LogCapture::assert_no_secrets`]
    /// still scans them.
    pub fn take(&self) -> Vec<String> {
        std::mem::take(&mut *self.lines.lock().unwrap())
    }

    /// Waits until every line sent so far (by processes that have finished sending) has been
    /// received: sends a marker of its own behind them and waits for it (the socket's queue
    /// keeps arrival order). The marker is not kept.
    pub fn settle(&self) {
        let marker = format!("xcauth-test-log-marker-{}", crate::support::unique());
        UnixDatagram::unbound()
            .unwrap()
            .send_to(marker.as_bytes(), &self.path)
            .unwrap();
        // The marker is certain to arrive: a deadline only a wedged receiver reaches.
        self.wait_for_within(&marker, Duration::from_secs(60));
        self.lines.lock().unwrap().retain(|l| *l != marker);
        self.seen.lock().unwrap().retain(|l| *l != marker);
    }

    /// The one scan for leaked secrets. First [`LogCapture::settle`]s, so the lines of every
    /// finished login are in; then asserts that no line this capture ever received (also
    /// those since taken), nor any line of `also` (other logs of the same run, such as a
    /// daemon's or a peer's, complete when passed), contains any of `secrets` (passwords,
    /// tokens, the API secret: see [`World::secrets`]). A capture that received nothing
    /// fails too: a scan of nothing proves nothing.
    pub fn assert_no_secrets(&self, secrets: &[&str], also: &[&str]) {
        assert!(
            secrets.iter().all(|s| !s.is_empty()),
            "an empty secret: {secrets:?}"
        );
        self.settle();
        let seen = self.seen.lock().unwrap().clone();
        assert!(!seen.is_empty(), "the module logged nothing to scan");
        let other = also.iter().flat_map(|text| text.lines());
        for line in seen.iter().map(String::as_str).chain(other) {
            for s in secrets {
                assert!(!line.contains(s), "log line leaks {s:?}: {line}");
            }
        }
    }

    /// Waits up to 2 s for a line containing `needle`.
    pub fn wait_for(&self, needle: &str) -> String {
        self.wait_for_within(needle, Duration::from_secs(2))
    }

    /// Waits up to `within` for a line containing `needle`.
    fn wait_for_within(&self, needle: &str, within: Duration) -> String {
        let end = Instant::now() + within;
        loop {
            if let Some(l) = self.lines().into_iter().find(|l| l.contains(needle)) {
                return l;
            }
            assert!(
                Instant::now() < end,
                "no log line with {needle:?}; got:\n{}",
                self.lines().join("\n")
            );
            std::thread::sleep(Duration::from_millis(10));
        }
    }
}

impl Drop for LogCapture {
    fn drop(&mut self) {
        self.stop.store(true, Ordering::SeqCst);
        if let Some(t) = self.thread.take() {
            let _ = t.join();
        }
    }
}

/// A PAM test world: scratch dir (0755), `pam_xcauth.so` copied in (0755), the backend double
/// with alice (group "Team") and bob, an `xcauth.conf` (0644) pointing at it, and a syslog
/// receiver.
#[derive(Debug)]
pub struct World {
    /// The scratch directory.
    pub scratch: Scratch,
    /// The module's absolute path.
    pub so: PathBuf,
    /// The backend double.
    pub double: BackendDouble,
    /// The in-process config file.
    pub conf: PathBuf,
    /// The module's log lines.
    pub log: LogCapture,
}

impl World {
    /// Sets everything up; `tag` names the scratch dir.
    pub fn new(tag: &str) -> World {
        Self::with_conf(tag, "")
    }

    /// Like [`World::new`] with extra `xcauth.conf` lines.
    pub fn with_conf(tag: &str, extra_conf: &str) -> World {
        Self::with_double(Scratch::new(tag), BackendDouble::start(SECRET), extra_conf)
    }

    /// Like [`World::with_conf`] in `scratch`, with this (fresh) double, e.g. one serving
    /// HTTPS.
    pub fn with_double(scratch: Scratch, double: BackendDouble, extra_conf: &str) -> World {
        require_root();
        let so = scratch.join("pam_xcauth.so");
        copy_module(&so);
        std::fs::set_permissions(&so, std::fs::Permissions::from_mode(0o755)).unwrap();
        double.add_user(User::new("alice", ALICE_PW));
        double.add_user(User::new("bob", BOB_PW));
        double.add_group("team", "Team", &["alice"]);
        let conf = scratch.write(
            "xcauth.conf",
            // No database unless a test names one (its `db=` comes later and wins): the
            // system's default path is not the test's (the packaging test installs it, and a
            // non-root host such as Apache must not depend on it).
            &crate::support::xcauth_conf(
                &double.url(),
                SECRET,
                &format!("db=/nonexistent/xcauth-test/xcauth.sqlite3\n{extra_conf}"),
            ),
        );
        // As an admin must: the module refuses a world-readable file that
        // holds the secret. Group www-data so Apache's workers can read it.
        secure_conf(&conf);
        let log = LogCapture::bind(&scratch.join("syslog.sock"));
        World {
            scratch,
            so,
            double,
            conf,
            log,
        }
    }

    /// `PATH config=CONF syslog_socket=LOG`: the module with its test plumbing, ready for
    /// more arguments.
    pub fn module(&self) -> String {
        format!(
            "{} config={} syslog_socket={}",
            self.so.display(),
            self.conf.display(),
            self.log.path().display()
        )
    }

    /// Writes a pam_wrapper service file `name` (in `<scratch>/pamwrap`) and returns the dir.
    pub fn wrapper_service(&self, name: &str, contents: &str) -> PathBuf {
        self.scratch.write(&format!("pamwrap/{name}"), contents);
        self.scratch.join("pamwrap")
    }

    /// A token for `user@example.org` valid for an hour.
    pub fn token(&self, user: &str) -> String {
        let expiry =
            u32::try_from(xcauth_core::clock::unix_seconds(std::time::SystemTime::now()) + 3600)
                .unwrap();
        xcauth_core::token::generate(user, "example.org", &Secret::new(SECRET), expiry)
    }

    /// Every secret of this world (for [`LogCapture::assert_no_secrets`]), plus `extra`.
    pub fn secrets<'a>(&self, extra: &[&'a str]) -> Vec<&'a str> {
        let mut v = vec![SECRET, ALICE_PW, BOB_PW];
        v.extend_from_slice(extra);
        v
    }

    /// A real engine against the double (what xcauthd would run).
    pub fn engine(&self) -> Engine {
        engine_for(&self.double.url())
    }
}

/// A real [`Engine`] with the JSXC client for `url` and [`SECRET`].
pub fn engine_for(url: &str) -> Engine {
    let client = JsxcClient::new(&ClientOptions {
        connect_timeout: Duration::from_secs(2),
        read_timeout: Duration::from_secs(3),
        ..ClientOptions::default()
    })
    .unwrap();
    Engine::new(
        GlobalBackend {
            url: BackendUrl::parse(url).unwrap(),
            secret: Secret::new(SECRET),
        },
        Arc::new(client),
        Arc::new(SystemClock),
    )
}

/// What pamtester reported.
#[derive(Debug)]
pub struct PamRun {
    /// Exit status 0.
    pub ok: bool,
    /// The PAM result: `SUCCESS`, or the `PAM_*` name recovered from pamtester's message.
    pub code: &'static str,
    /// stdout + stderr, for failure messages and prompt checks.
    pub output: String,
}

impl PamRun {
    /// True when pamtester showed a password prompt.
    pub fn prompted(&self) -> bool {
        self.output.contains("Password:")
    }
}

/// Maps libpam's `pam_strerror` texts (Linux-PAM 1.5) back to names.
fn code_from(output: &str, ok: bool) -> &'static str {
    if ok {
        return "SUCCESS";
    }
    const TABLE: &[(&str, &str)] = &[
        (
            "Authentication service cannot retrieve authentication info",
            "AUTHINFO_UNAVAIL",
        ),
        (
            "User not known to the underlying authentication module",
            "USER_UNKNOWN",
        ),
        (
            "Insufficient credentials to access authentication data",
            "CRED_INSUFFICIENT",
        ),
        ("Authentication failure", "AUTH_ERR"),
        ("Error in service module", "SERVICE_ERR"),
        ("Permission denied", "PERM_DENIED"),
        ("System error", "SYSTEM_ERR"),
        ("Conversation error", "CONV_ERR"),
        ("Authentication token manipulation error", "AUTHTOK_ERR"),
        ("Critical error - immediate abort", "ABORT"),
        ("User account has expired", "ACCT_EXPIRED"),
        (
            "Authentication token is no longer valid; new one required",
            "NEW_AUTHTOK_REQD",
        ),
        ("Authentication token expired", "AUTHTOK_EXPIRED"),
    ];
    TABLE
        .iter()
        .find(|(text, _)| output.contains(&format!("pamtester: {text}")))
        .map_or("UNRECOGNISED", |(_, name)| name)
}

/// A pamtester invocation.
#[derive(Debug)]
pub struct Pamtester {
    cmd: Command,
    stdin: String,
}

impl Pamtester {
    /// `pamtester -v SERVICE USER OPS…`, stdin empty.
    pub fn new(service: &str, user: &str, ops: &[&str]) -> Pamtester {
        let mut cmd = Command::new(require_program("pamtester"));
        cmd.arg("-v").arg(service).arg(user).args(ops);
        cmd.env_remove("PAM_AUTHTOK");
        Pamtester {
            cmd,
            stdin: String::new(),
        }
    }

    /// Runs under pam_wrapper with service files from `dir` (nothing under /etc).
    #[must_use]
    pub fn wrapped(mut self, dir: &Path) -> Pamtester {
        require_pam_wrapper();
        self.cmd
            .env("LD_PRELOAD", "libpam_wrapper.so")
            .env("PAM_WRAPPER", "1")
            .env("PAM_WRAPPER_SERVICE_DIR", dir);
        self
    }

    /// The password typed at the prompt (one line per prompt).
    #[must_use]
    pub fn password(mut self, pw: &str) -> Pamtester {
        self.stdin = format!("{pw}\n");
        self
    }

    /// Sets an environment variable of pamtester (e.g. `PAM_AUTHTOK` for pam_set_items).
    #[must_use]
    pub fn env(mut self, key: &str, value: &str) -> Pamtester {
        self.cmd.env(key, value);
        self
    }

    /// Sets a PAM item with pamtester's `-I item=value` (e.g. `rhost=192.0.2.1`).
    #[must_use]
    pub fn item(mut self, item: &str) -> Pamtester {
        // -I must come before the service name.
        let args: Vec<_> = self.cmd.get_args().map(ToOwned::to_owned).collect();
        let mut cmd = Command::new(self.cmd.get_program());
        for (k, v) in self.cmd.get_envs() {
            match v {
                Some(v) => cmd.env(k, v),
                None => cmd.env_remove(k),
            };
        }
        cmd.arg(format!("-I{item}")).args(args);
        self.cmd = cmd;
        self
    }

    /// Runs it (10 s limit).
    pub fn run(self) -> PamRun {
        self.run_within(Duration::from_secs(10))
    }

    /// Runs it; fails when it takes longer than `limit`.
    pub fn run_within(mut self, limit: Duration) -> PamRun {
        let mut child = self
            .cmd
            .stdin(Stdio::piped())
            .stdout(Stdio::piped())
            .stderr(Stdio::piped())
            .spawn()
            .expect("start pamtester");
        let mut stdin = child.stdin.take().unwrap();
        let _ = stdin.write_all(self.stdin.as_bytes());
        drop(stdin);
        let out = wait_output(child, limit);
        let ok = out.status.success();
        let output = format!(
            "{}{}",
            String::from_utf8_lossy(&out.stdout),
            String::from_utf8_lossy(&out.stderr)
        );
        PamRun {
            ok,
            code: code_from(&output, ok),
            output,
        }
    }
}

/// Waits for a child with a deadline (killing it when it hangs), collecting its output. The
/// pipes are drained while waiting, so a chatty child cannot block on a full pipe.
pub fn wait_output(mut child: std::process::Child, limit: Duration) -> Output {
    fn drain(pipe: Option<impl Read + Send + 'static>) -> JoinHandle<Vec<u8>> {
        std::thread::spawn(move || {
            let mut buf = Vec::new();
            if let Some(mut p) = pipe {
                let _ = p.read_to_end(&mut buf);
            }
            buf
        })
    }
    let out = drain(child.stdout.take());
    let err = drain(child.stderr.take());
    let end = Instant::now() + limit;
    let status = loop {
        if let Some(st) = child.try_wait().unwrap() {
            break st;
        }
        if Instant::now() > end {
            let _ = child.kill();
            let _ = child.wait();
            panic!(
                "process hung for {limit:?}: {}{}",
                String::from_utf8_lossy(&out.join().unwrap()),
                String::from_utf8_lossy(&err.join().unwrap())
            );
        }
        std::thread::sleep(Duration::from_millis(5));
    };
    Output {
        status,
        stdout: out.join().unwrap(),
        stderr: err.join().unwrap(),
    }
}

/// A real `/etc/pam.d/NAME` file, removed on drop.
#[derive(Debug)]
pub struct EtcPamService {
    /// The service name.
    pub name: String,
    path: PathBuf,
}

impl EtcPamService {
    /// Writes `/etc/pam.d/xcauth-test-<tag>-<pid>-<n>` with `contents` (a name no other test
    /// of this or another test process uses).
    pub fn new(tag: &str, contents: &str) -> EtcPamService {
        require_root();
        let name = format!(
            "xcauth-test-{tag}-{}-{}",
            std::process::id(),
            crate::support::unique()
        );
        let path = Path::new("/etc/pam.d").join(&name);
        std::fs::write(&path, contents).unwrap();
        std::fs::set_permissions(&path, std::fs::Permissions::from_mode(0o644)).unwrap();
        EtcPamService { name, path }
    }
}

impl Drop for EtcPamService {
    fn drop(&mut self) {
        let _ = std::fs::remove_file(&self.path);
    }
}

/// A local Unix user with a password (for pam_unix), removed on drop.
#[derive(Debug)]
pub struct LocalUser {
    /// The login name.
    pub name: String,
}

impl LocalUser {
    /// `useradd` + `chpasswd`. The name is unique among the tests of this process (and short:
    /// `xc` + tag + five digits of the PID + a counter). The test must hold the
    /// [`MachineLock`](crate::machine::MachineLock): `useradd` and `userdel` of another run
    /// would otherwise fight over `/etc/passwd`'s lock.
    pub fn new(tag: &str, password: &str) -> LocalUser {
        require_root();
        crate::machine::MachineLock::assert_held("LocalUser::new");
        let name = format!(
            "xc{tag}{}n{}",
            std::process::id() % 100_000,
            crate::support::unique()
        );
        let useradd = require_program("useradd");
        let _ = Command::new(require_program("userdel")).arg(&name).output();
        let st = Command::new(useradd)
            .args(["-M", "-s", "/usr/sbin/nologin"])
            .arg(&name)
            .status()
            .unwrap();
        assert!(st.success(), "useradd {name} failed");
        let user = LocalUser { name };
        let mut child = Command::new(require_program("chpasswd"))
            .stdin(Stdio::piped())
            .spawn()
            .unwrap();
        child
            .stdin
            .take()
            .unwrap()
            .write_all(format!("{}:{password}\n", user.name).as_bytes())
            .unwrap();
        assert!(child.wait().unwrap().success(), "chpasswd failed");
        user
    }

    /// Lets the account expire (`chage -E 1`: expired since 1970-01-02); pam_unix's account
    /// check then returns `PAM_ACCT_EXPIRED`. The password still works for pam_unix's auth.
    pub fn expire(&self) {
        let st = Command::new(require_program("chage"))
            .args(["-E", "1"])
            .arg(&self.name)
            .status()
            .unwrap();
        assert!(st.success(), "chage -E 1 {} failed", self.name);
    }
}

impl Drop for LocalUser {
    fn drop(&mut self) {
        if let Ok(userdel) = std::panic::catch_unwind(|| require_program("userdel")) {
            let _ = Command::new(userdel).arg(&self.name).output();
        }
    }
}

/// An xcauthd stand-in for `socket=`: a `UnixListener` whose connections are answered by
/// [`xcauth_core::pamsock::serve_pam_connection`] with a real engine, one thread per connection.
#[derive(Debug)]
pub struct PamSockServer {
    path: PathBuf,
    stop: Arc<AtomicBool>,
    served: Arc<AtomicUsize>,
    thread: Option<JoinHandle<()>>,
}

impl PamSockServer {
    /// Listens on `path` (mode 0666, so www-data can connect).
    pub fn start(path: &Path, engine: Engine) -> PamSockServer {
        let listener = UnixListener::bind(path).unwrap();
        std::fs::set_permissions(path, std::fs::Permissions::from_mode(0o666)).unwrap();
        let engine = Arc::new(engine);
        let stop = Arc::new(AtomicBool::new(false));
        let served = Arc::new(AtomicUsize::new(0));
        let (s, n) = (Arc::clone(&stop), Arc::clone(&served));
        let thread = std::thread::spawn(move || {
            let mut workers = Vec::new();
            // Blocking accept; Drop wakes it with one last connection after setting `stop`.
            for stream in listener.incoming() {
                if s.load(Ordering::SeqCst) {
                    break;
                }
                let Ok(stream) = stream else { continue };
                n.fetch_add(1, Ordering::SeqCst);
                let engine = Arc::clone(&engine);
                workers.push(std::thread::spawn(move || {
                    xcauth_core::pamsock::serve_pam_connection(
                        &engine,
                        stream,
                        xcauth_core::deadline::ConnectionTimeouts {
                            idle: Duration::from_secs(5),
                            request: Duration::from_secs(5),
                        },
                    );
                }));
            }
            for w in workers {
                let _ = w.join();
            }
        });
        PamSockServer {
            path: path.to_path_buf(),
            stop,
            served,
            thread: Some(thread),
        }
    }

    /// The socket path.
    pub fn path(&self) -> &Path {
        &self.path
    }

    /// Connections accepted so far.
    pub fn connections(&self) -> usize {
        self.served.load(Ordering::SeqCst)
    }
}

impl Drop for PamSockServer {
    fn drop(&mut self) {
        self.stop.store(true, Ordering::SeqCst);
        let _ = std::os::unix::net::UnixStream::connect(&self.path);
        if let Some(t) = self.thread.take() {
            let _ = t.join();
        }
        let _ = std::fs::remove_file(&self.path);
    }
}

/// The text of `pam.d-examples/NAME`.
pub fn example(name: &str) -> String {
    let path = Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("../pam.d-examples")
        .join(name);
    std::fs::read_to_string(&path).unwrap_or_else(|e| panic!("{}: {e}", path.display()))
}

/// The rule lines of an example with `pam_xcauth.so` replaced by `module` (absolute path plus
/// test arguments) and the example socket path by `socket`. Comments and blank lines go.
pub fn instantiate(example_text: &str, module: &str, socket: Option<&Path>) -> String {
    let mut out = String::new();
    for line in example_text.lines() {
        let trimmed = line.trim();
        if trimmed.is_empty() || trimmed.starts_with('#') {
            continue;
        }
        let mut l = line.replace("pam_xcauth.so", module);
        if let Some(sock) = socket {
            l = l.replace("/run/xcauth/pam.sock", &sock.display().to_string());
        }
        out.push_str(&l);
        out.push('\n');
    }
    assert!(
        out.contains(module),
        "example has no pam_xcauth.so line:\n{example_text}"
    );
    out
}

/// Distinct values, for checking that several worker processes served requests.
pub fn distinct<T: std::hash::Hash + Eq>(items: impl IntoIterator<Item = T>) -> usize {
    items.into_iter().collect::<HashSet<_>>().len()
}

/// Makes a settings file holding the secret acceptable to the module:
/// root:www-data, mode 0640.
pub fn secure_conf(path: &Path) {
    let st = Command::new("chgrp")
        .arg("www-data")
        .arg(path)
        .status()
        .unwrap();
    assert!(st.success(), "chgrp www-data {}", path.display());
    std::fs::set_permissions(path, std::fs::Permissions::from_mode(0o640)).unwrap();
}
