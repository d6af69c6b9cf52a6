//! Helpers shared by the end-to-end tests: locating the workspace's binaries,
//! scratch directories that other users (ejabberd, www-data) can traverse,
//! xcauthd started on sockets the test bound ([`start_daemon`]) and waited for until it is
//! ready, child processes killed on drop whose waits fail at once (with their log) when they
//! exit, and tests that must run alone in their own process (or as `nobody`). Ports for
//! programs that bind their own and the machine-wide lock are in [`crate::machine`].
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::missing_panics_doc)] // test support

use std::net::{SocketAddr, TcpStream};
use std::os::unix::fs::PermissionsExt;
use std::os::unix::net::UnixDatagram;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

pub use crate::activation::Listeners;

/// `target/<profile>` of the running test binary.
pub fn target_dir() -> PathBuf {
    let exe = std::env::current_exe().expect("current_exe");
    // target/<profile>/deps/<test-binary>
    exe.parent()
        .and_then(Path::parent)
        .expect("target dir")
        .to_path_buf()
}

/// A binary of this workspace (`xcauthd`, `jsxc-double`). `scripts/test.sh`
/// builds them before the tests run; a missing one is a clear failure.
pub fn bin(name: &str) -> PathBuf {
    let path = target_dir().join(name);
    assert!(
        path.exists(),
        "{} not built: run `cargo build --workspace --bins` (scripts/test.sh does)",
        path.display()
    );
    path
}

/// Fails with a clear message when a peer program is missing.
pub fn require_program(name: &str) -> PathBuf {
    for dir in ["/usr/sbin", "/usr/bin", "/sbin", "/bin"] {
        let p = Path::new(dir).join(name);
        if p.exists() {
            return p;
        }
    }
    panic!("{name} is not installed: run scripts/install-test-deps.sh (as root)");
}

/// A scratch directory, mode 0755 all the way so service users can reach it.
#[derive(Debug)]
pub struct Scratch {
    dir: tempfile::TempDir,
}

impl Scratch {
    /// Creates `/tmp/xcauth-e2e-XXXX` (not under a private $TMPDIR).
    pub fn new(tag: &str) -> Scratch {
        let dir = tempfile::Builder::new()
            .prefix(&format!("xcauth-e2e-{tag}-"))
            .tempdir_in("/tmp")
            .expect("scratch dir");
        std::fs::set_permissions(dir.path(), std::fs::Permissions::from_mode(0o755)).unwrap();
        Scratch { dir }
    }

    /// The directory.
    pub fn path(&self) -> &Path {
        self.dir.path()
    }

    /// A path inside it.
    pub fn join(&self, name: &str) -> PathBuf {
        self.dir.path().join(name)
    }

    /// Writes a file (mode 0644) and returns its path.
    pub fn write(&self, name: &str, contents: &str) -> PathBuf {
        let p = self.join(name);
        if let Some(parent) = p.parent() {
            std::fs::create_dir_all(parent).unwrap();
        }
        std::fs::write(&p, contents).unwrap();
        std::fs::set_permissions(&p, std::fs::Permissions::from_mode(0o644)).unwrap();
        p
    }
}

/// The environment variable that tells a re-run test binary which test runs alone in it.
const ALONE_ENV: &str = "XCAUTH_E2E_ALONE";

/// For a test that needs its process to itself (it counts the process's threads, or installs
/// the global logger). `path` is `concat!(module_path!(), "::", TEST_FN_NAME)`. In the test
/// harness's process this re-runs the test binary with exactly this test, asserts that the
/// run passed that one test, and returns false: the caller returns. In that child it returns
/// true: the caller runs the test's body.
pub fn in_own_process(path: &str) -> bool {
    // module_path!() starts with the crate's name, which libtest's test names do not.
    let name = path.split_once("::").map_or(path, |(_, rest)| rest);
    if std::env::var(ALONE_ENV).is_ok_and(|v| v == name) {
        return true;
    }
    let out = Command::new(std::env::current_exe().unwrap())
        .args(["--exact", name, "--nocapture", "--test-threads=1"])
        .env(ALONE_ENV, name)
        .stdin(Stdio::null())
        .output()
        .unwrap();
    let stdout = String::from_utf8_lossy(&out.stdout);
    assert!(
        out.status.success(),
        "{name} alone in a child process failed:\n{stdout}\n{}",
        String::from_utf8_lossy(&out.stderr)
    );
    assert!(
        stdout.contains("test result: ok. 1 passed"),
        "the child process did not run {name}:\n{stdout}"
    );
    false
}

/// For a test whose subject behaves differently for root (file modes): run as root, it re-runs
/// itself (`path` as for [`in_own_process`]) in a child process as user `nobody` (through
/// `setpriv`, with `TMPDIR=/tmp`) and asserts that the child passed exactly that test. The
/// test tells the two runs apart by its effective uid ([`euid`]).
pub fn rerun_as_nobody(path: &str) {
    let name = path.split_once("::").map_or(path, |(_, rest)| rest);
    assert_eq!(euid(), 0, "only root can run a test as nobody");
    let out = Command::new(require_program("setpriv"))
        .args(["--reuid=nobody", "--regid=nogroup", "--clear-groups"])
        .arg(std::env::current_exe().unwrap())
        .args(["--exact", name, "--nocapture", "--test-threads=1"])
        .env("TMPDIR", "/tmp")
        .stdin(Stdio::null())
        .output()
        .unwrap();
    let stdout = String::from_utf8_lossy(&out.stdout);
    assert!(
        out.status.success(),
        "{name} as nobody failed:\n{stdout}\n{}",
        String::from_utf8_lossy(&out.stderr)
    );
    assert!(
        stdout.contains("test result: ok. 1 passed"),
        "the child process did not run {name}:\n{stdout}"
    );
}

/// The effective uid of this process (the owner of `/proc/self`).
pub fn euid() -> u32 {
    std::os::unix::fs::MetadataExt::uid(&std::fs::metadata("/proc/self").unwrap())
}

/// A number unique in this process, for names that tests running side by side must not share.
pub fn unique() -> usize {
    static NEXT: std::sync::atomic::AtomicUsize = std::sync::atomic::AtomicUsize::new(0);
    NEXT.fetch_add(1, std::sync::atomic::Ordering::SeqCst)
}

/// True once something accepts TCP connections on `addr`.
pub fn tcp_accepts(addr: SocketAddr) -> bool {
    TcpStream::connect_timeout(&addr, Duration::from_millis(200)).is_ok()
}

/// True once a Unix socket file exists at `path` and accepts connections.
pub fn unix_accepts(path: &Path) -> bool {
    std::os::unix::net::UnixStream::connect(path).is_ok()
}

/// Waits up to `within` until `done()` holds, while `child` (called `name`, writing `logs`)
/// runs. Fails at once when the child exits first, and after `within` otherwise; either
/// message carries the child's logs, which say why.
pub fn wait_for_child(
    child: &mut Child,
    name: &str,
    logs: &[&Path],
    what: &str,
    within: Duration,
    mut done: impl FnMut() -> bool,
) {
    let end = Instant::now() + within;
    loop {
        if done() {
            return;
        }
        if let Ok(Some(status)) = child.try_wait() {
            // It may have done it just before it exited.
            if done() {
                return;
            }
            panic!("{name} exited ({status}) before {what}{}", log_report(logs));
        }
        assert!(
            Instant::now() < end,
            "{name} not {what} after {within:?}{}",
            log_report(logs)
        );
        std::thread::sleep(Duration::from_millis(20));
    }
}

/// The logs' contents, for a failure message.
fn log_report(logs: &[&Path]) -> String {
    logs.iter()
        .map(|p| {
            format!(
                "\n----- {} -----\n{}",
                p.display(),
                std::fs::read_to_string(p).unwrap_or_else(|e| format!("({e})"))
            )
        })
        .collect()
}

/// A child process that is killed (and reaped) on drop.
#[derive(Debug)]
pub struct Proc {
    /// The child.
    pub child: Child,
    /// What it is, for messages.
    pub name: String,
    /// The file it logs to, shown when a wait on it fails.
    log: Option<PathBuf>,
}

impl Proc {
    /// Spawns `cmd` (stdin null unless set by the caller).
    pub fn spawn(name: &str, cmd: &mut Command) -> Proc {
        let child = cmd
            .spawn()
            .unwrap_or_else(|e| panic!("cannot start {name}: {e}"));
        Proc {
            child,
            name: name.to_owned(),
            log: None,
        }
    }

    /// Names the file the process logs to: failed waits show it.
    #[must_use]
    pub fn with_log(mut self, log: &Path) -> Proc {
        self.log = Some(log.to_path_buf());
        self
    }

    /// The log named by [`Proc::with_log`] as it is now (empty when there is none).
    pub fn log_text(&self) -> String {
        self.log
            .as_ref()
            .map(|p| std::fs::read_to_string(p).unwrap_or_default())
            .unwrap_or_default()
    }

    /// Waits up to `within` until `done()` holds; fails at once, with the log, when the
    /// process exits first (see [`wait_for_child`]).
    pub fn wait_until(&mut self, what: &str, within: Duration, done: impl FnMut() -> bool) {
        let log = self.log.clone();
        let logs: Vec<&Path> = log.iter().map(PathBuf::as_path).collect();
        wait_for_child(&mut self.child, &self.name, &logs, what, within, done);
    }

    /// Waits until something accepts TCP connections on `addr` (the process's own listener).
    pub fn wait_for_tcp(&mut self, addr: SocketAddr, within: Duration) {
        self.wait_until(&format!("listening on {addr}"), within, || {
            tcp_accepts(addr)
        });
    }

    /// Waits until the Unix socket `path` accepts connections.
    pub fn wait_for_unix(&mut self, path: &Path, within: Duration) {
        self.wait_until(&format!("listening on {}", path.display()), within, || {
            unix_accepts(path)
        });
    }

    /// Waits until the log holds a line containing `needle`; returns the first such line.
    pub fn wait_for_log(&mut self, needle: &str, within: Duration) -> String {
        let log = self
            .log
            .clone()
            .expect("wait_for_log needs a log: Proc::with_log");
        let mut found = String::new();
        self.wait_until(&format!("logging {needle:?}"), within, || {
            let text = std::fs::read_to_string(&log).unwrap_or_default();
            match text.lines().find(|l| l.contains(needle)) {
                Some(line) => {
                    line.clone_into(&mut found);
                    true
                }
                None => false,
            }
        });
        found
    }

    /// Sends a signal (by PID, never by name).
    pub fn signal(&self, sig: &str) {
        let _ = Command::new("kill")
            .args([&format!("-{sig}"), &self.child.id().to_string()])
            .status();
    }

    /// True while the process runs.
    pub fn alive(&mut self) -> bool {
        matches!(self.child.try_wait(), Ok(None))
    }

    /// Waits up to `within` for exit; returns the exit code (None: killed by signal).
    pub fn wait_exit(&mut self, within: Duration) -> Option<Option<i32>> {
        let end = Instant::now() + within;
        while Instant::now() < end {
            if let Ok(Some(st)) = self.child.try_wait() {
                return Some(st.code());
            }
            std::thread::sleep(Duration::from_millis(20));
        }
        None
    }
}

impl Drop for Proc {
    fn drop(&mut self) {
        if matches!(self.child.try_wait(), Ok(None)) {
            let _ = self.child.kill();
        }
        let _ = self.child.wait();
    }
}

/// An xcauth.conf for `url`/`secret` plus extra lines.
pub fn xcauth_conf(url: &str, secret: &str, extra: &str) -> String {
    format!("url={url}\nsecret={secret}\ntimeout=2,3\n{extra}\n")
}

/// Starts `xcauthd -c CONF -i` on sockets the test bound ([`Listeners`], xcauthd's
/// socket-activation path), logging to `log`, and returns once it is ready (see
/// [`start_daemon_with`]).
pub fn start_daemon(conf: &Path, log: &Path, listeners: Listeners) -> Proc {
    let mut cmd = listeners.into_command(&bin("xcauthd"));
    cmd.arg("-c").arg(conf).arg("-i");
    start_daemon_with(cmd, log)
}

/// Starts `xcauthd -c CONF --daemon -i`, which binds the `listen=` addresses of its
/// configuration itself, and returns once it is ready. Only for tests of that binding: a Unix
/// path in the scratch directory, or a TCP port from [`crate::machine::reserve_port`].
pub fn start_daemon_listening(conf: &Path, log: &Path) -> Proc {
    let mut cmd = Command::new(bin("xcauthd"));
    cmd.arg("-c").arg(conf).args(["--daemon", "-i"]);
    start_daemon_with(cmd, log)
}

/// Runs an xcauthd command with stderr to `log`, `XCAUTH_SYSTEM_CONFIG` pointing nowhere (the
/// host's `/etc/xcauth.conf` is never read) and `NOTIFY_SOCKET` naming a datagram socket next
/// to the log, and waits for the `READY=1` it sends once it listens (as it tells systemd).
/// Fails at once, with the log, if xcauthd exits first.
pub fn start_daemon_with(mut cmd: Command, log: &Path) -> Proc {
    let notify_path = log.with_extension("notify");
    let _ = std::fs::remove_file(&notify_path);
    let notify = UnixDatagram::bind(&notify_path)
        .unwrap_or_else(|e| panic!("bind {}: {e}", notify_path.display()));
    notify
        .set_read_timeout(Some(Duration::from_millis(50)))
        .unwrap();
    cmd.env("XCAUTH_SYSTEM_CONFIG", "/nonexistent/xcauth.conf")
        .env("NOTIFY_SOCKET", &notify_path)
        .stdin(Stdio::null())
        .stdout(Stdio::null())
        .stderr(std::fs::File::create(log).unwrap());
    let mut p = Proc::spawn("xcauthd", &mut cmd).with_log(log);
    drop(cmd); // our copies of inherited sockets
    p.wait_until("ready (READY=1)", Duration::from_secs(30), || {
        let mut buf = [0u8; 64];
        matches!(notify.recv(&mut buf), Ok(n) if buf[..n] == *b"READY=1")
    });
    p
}

/// An `xcauthd` command for a config file that never reads /etc/xcauth.conf.
pub fn xcauthd(conf: &Path) -> Command {
    let mut cmd = Command::new(bin("xcauthd"));
    cmd.arg("-c")
        .arg(conf)
        .env("XCAUTH_SYSTEM_CONFIG", "/nonexistent/xcauth.conf");
    cmd
}

/// How an XMPP login through `tests/scripts/xmpp_login.py` ended.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum XmppLogin {
    /// The session started (exit status 0).
    LoggedIn,
    /// The server's authentication refused the login: a SASL failure (status 1).
    Refused,
    /// Anything else: no verdict from the server (2), the client crashed (3), `timeout`
    /// stopped it (124, 137), or a signal (`None`). Never what a test expects.
    Failed(Option<i32>),
}

/// One XMPP login through `tests/scripts/xmpp_login.py` (slixmpp, PLAIN over
/// plaintext): how it ended, and the client's output.
pub fn xmpp_login(jid: &str, password: &str, port: u16) -> (XmppLogin, String) {
    let script = Path::new(env!("CARGO_MANIFEST_DIR")).join("scripts/xmpp_login.py");
    // `timeout` bounds the client even if it ignores its own deadline.
    let out = Command::new("timeout")
        .args(["-k", "2", "25", "/usr/bin/python3"])
        .arg(&script)
        .args([jid, password, &port.to_string(), "15"])
        .stdin(Stdio::null())
        .output()
        .expect("run xmpp_login.py");
    let text = format!(
        "{}{}",
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
    let outcome = match out.status.code() {
        Some(0) => XmppLogin::LoggedIn,
        Some(1) => XmppLogin::Refused,
        other => XmppLogin::Failed(other),
    };
    (outcome, text)
}

/// Sends generic-framing lines (`auth:user:domain:password`, …) on one TCP connection, one at
/// a time, and returns each answer line without its newline.
pub fn generic_exchange<S: AsRef<str>>(addr: SocketAddr, lines: &[S]) -> Vec<String> {
    use std::io::{BufRead, BufReader, Write};
    let mut stream = TcpStream::connect(addr).unwrap();
    stream
        .set_read_timeout(Some(Duration::from_secs(20)))
        .unwrap();
    let mut reader = BufReader::new(stream.try_clone().unwrap());
    let mut out = Vec::new();
    for line in lines {
        stream
            .write_all(format!("{}\n", line.as_ref()).as_bytes())
            .unwrap();
        let mut answer = String::new();
        reader.read_line(&mut answer).unwrap();
        out.push(answer.trim_end().to_owned());
    }
    out
}
