//! Log lines: LOG_AUTHPRIV, `pam_xcauth(SERVICE:TYPE): message`, pam_unix's `key=value` style.
//!
//! Per call, a [`Logger`] sends the module's own lines through `pam_syslog` (which adds the
//! prefix and uses the host's ident without calling `openlog`), or — with the test option
//! `syslog_socket=PATH` — as syslog datagrams with the same prefix to that Unix socket (sent
//! non-blocking: a line the receiver has no room for is dropped, never waited for).
//!
//! The core library logs through the `log` facade. [`CoreLog`] is a stateless logger, installed
//! once per process, that forwards the core's warnings and errors to syslog (LOG_AUTHPRIV) as
//! `pam_xcauth(core): …`. Its level is fixed at WARN: the core's INFO lines repeat what the
//! module logs itself (and would defeat `quiet`), and per-call levels would need global mutable
//! state. The module's own `debug` lines carry the decision detail instead.
//!
//! Nothing here ever sees a password: callers pass user names, reasons and paths only.

use std::fmt::Write as _;
use std::os::unix::net::UnixDatagram;
use std::path::PathBuf;

use xcauth_core::logsafe;

/// Syslog severities used by the module.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord)]
pub enum Level {
    /// LOG_CRIT: a caught panic.
    Crit,
    /// LOG_ERR: configuration problems, backend unavailable.
    Err,
    /// LOG_WARNING.
    Warning,
    /// LOG_NOTICE: authentication failures (as pam_unix).
    Notice,
    /// LOG_INFO: successes.
    Info,
    /// LOG_DEBUG: decision detail with `debug`.
    Debug,
}

impl Level {
    /// The syslog severity number.
    pub fn severity(self) -> i32 {
        match self {
            Level::Crit => 2,
            Level::Err => 3,
            Level::Warning => 4,
            Level::Notice => 5,
            Level::Info => 6,
            Level::Debug => 7,
        }
    }
}

/// LOG_AUTHPRIV (10 << 3).
pub const LOG_AUTHPRIV: i32 = 10 << 3;

/// Where a [`Logger`] writes.
pub trait SyslogSink {
    /// Logs `msg` through `pam_syslog` at `level`.
    fn pam_syslog(&self, level: Level, msg: &str);
}

/// The logger of one PAM call.
pub struct Logger<'a> {
    sink: &'a dyn SyslogSink,
    socket: Option<PathBuf>,
    service: String,
    kind: &'static str,
    debug: bool,
    quiet: bool,
}

impl std::fmt::Debug for Logger<'_> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Logger")
            .field("socket", &self.socket)
            .field("service", &self.service)
            .field("kind", &self.kind)
            .field("debug", &self.debug)
            .field("quiet", &self.quiet)
            .finish_non_exhaustive()
    }
}

impl<'a> Logger<'a> {
    /// A logger for a call of type `kind` (`auth`, `account`, …) in `service`.
    pub fn new(
        sink: &'a dyn SyslogSink,
        service: &str,
        kind: &'static str,
        socket: Option<PathBuf>,
    ) -> Self {
        Self {
            sink,
            socket,
            service: logsafe::clean(service, 64).into_owned(),
            kind,
            debug: false,
            quiet: false,
        }
    }

    /// Applies `debug` and `quiet`.
    pub fn set_verbosity(&mut self, debug: bool, quiet: bool) {
        self.debug = debug;
        self.quiet = quiet;
    }

    /// Whether `debug` lines are written.
    pub fn debug_enabled(&self) -> bool {
        self.debug
    }

    /// Writes one line.
    pub fn log(&self, level: Level, msg: &str) {
        let msg = logsafe::clean(msg, 2048);
        match &self.socket {
            None => self.sink.pam_syslog(level, &msg),
            Some(path) => {
                let line = format!(
                    "<{}>pam_xcauth({}:{}): {msg}",
                    LOG_AUTHPRIV | level.severity(),
                    self.service,
                    self.kind
                );
                send_datagram(path, line.as_bytes());
            }
        }
    }

    /// A LOG_DEBUG line, only with `debug`. Built lazily so that nothing is formatted otherwise.
    pub fn debug(&self, msg: impl FnOnce() -> String) {
        if self.debug {
            self.log(Level::Debug, &format!("debug: {}", msg()));
        }
    }

    /// An expected failure (wrong password, unknown user): LOG_NOTICE unless `quiet`.
    pub fn expected_failure(&self, msg: &str) {
        if !self.quiet {
            self.log(Level::Notice, msg);
        }
    }
}

/// Sends one datagram to `path` without ever waiting: logging must neither fail nor stall the
/// login. A blocking send would wait for good while the receiver's queue is full (a receiver
/// that stopped reading), so the socket is non-blocking and a line that does not fit, or has
/// no receiver, is dropped.
fn send_datagram(path: &std::path::Path, bytes: &[u8]) {
    let Ok(sock) = UnixDatagram::unbound() else {
        return;
    };
    if sock.set_nonblocking(true).is_ok() {
        let _ = sock.send_to(bytes, path);
    }
}

/// Builds `event; key=value key=value` lines. Values are cleaned of control characters and
/// quoted when they contain spaces or quotes.
#[derive(Debug)]
pub struct Line(String);

impl Line {
    /// Starts a line with its event text (`authentication failure`).
    pub fn new(event: &str) -> Self {
        Self(format!("{event};"))
    }

    /// Appends `key=value`.
    #[must_use]
    pub fn kv(mut self, key: &str, value: &str) -> Self {
        let value = logsafe::clean(value, 256);
        if value.is_empty() || value.contains([' ', '"', '=', ';']) {
            let escaped = value.replace('\\', "\\\\").replace('"', "\\\"");
            let _ = write!(self.0, " {key}=\"{escaped}\"");
        } else {
            let _ = write!(self.0, " {key}={value}");
        }
        self
    }

    /// Appends `key=value` when there is a value.
    #[must_use]
    pub fn kv_opt(self, key: &str, value: Option<&str>) -> Self {
        match value {
            Some(v) => self.kv(key, v),
            None => self,
        }
    }

    /// The finished line.
    pub fn finish(self) -> String {
        self.0
    }
}

/// The process-wide logger for the core library's `log` records (WARN and above). It holds
/// only the function that writes a line to syslog (given by `ffi`, which owns the `unsafe`
/// call).
#[derive(Debug)]
pub struct CoreLog {
    send: fn(Level, &str),
}

impl CoreLog {
    /// A logger that writes through `send`.
    pub const fn new(send: fn(Level, &str)) -> Self {
        Self { send }
    }
}

impl log::Log for CoreLog {
    fn enabled(&self, metadata: &log::Metadata<'_>) -> bool {
        metadata.level() <= log::Level::Warn
    }

    fn log(&self, record: &log::Record<'_>) {
        if !self.enabled(record.metadata()) {
            return;
        }
        let level = match record.level() {
            log::Level::Error => Level::Err,
            _ => Level::Warning,
        };
        let text = format!("pam_xcauth(core): {}", record.args());
        (self.send)(level, &logsafe::clean(&text, 2048));
    }

    fn flush(&self) {}
}

#[cfg(test)]
mod tests {
    use std::cell::RefCell;
    use std::time::Duration;

    use super::*;

    #[derive(Default)]
    struct Capture(RefCell<Vec<(Level, String)>>);

    impl SyslogSink for Capture {
        fn pam_syslog(&self, level: Level, msg: &str) {
            self.0.borrow_mut().push((level, msg.to_owned()));
        }
    }

    #[test]
    fn lines_are_key_value_and_cleaned() {
        let line = Line::new("authentication failure")
            .kv("user", "al\nice@example.org")
            .kv("reason", "cannot connect: refused")
            .kv_opt("rhost", None)
            .kv("x", "")
            .finish();
        assert_eq!(
            line,
            "authentication failure; user=al?ice@example.org reason=\"cannot connect: refused\" \
             x=\"\""
        );
    }

    #[test]
    fn quiet_and_debug() {
        let cap = Capture::default();
        let mut log = Logger::new(&cap, "smtp", "auth", None);
        log.expected_failure("a");
        log.debug(|| "b".into());
        log.set_verbosity(true, true);
        log.expected_failure("c");
        log.debug(|| "d".into());
        log.log(Level::Err, "e");
        let got = cap.0.borrow().clone();
        assert_eq!(
            got,
            vec![
                (Level::Notice, "a".to_owned()),
                (Level::Debug, "debug: d".to_owned()),
                (Level::Err, "e".to_owned()),
            ]
        );
    }

    #[test]
    fn datagrams_carry_priority_and_prefix() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("log.sock");
        let rx = UnixDatagram::bind(&path).unwrap();
        rx.set_read_timeout(Some(Duration::from_secs(2))).unwrap();
        let cap = Capture::default();
        let log = Logger::new(&cap, "xcauth-test", "account", Some(path));
        log.log(Level::Notice, "authentication failure; user=bob");
        let mut buf = [0u8; 512];
        let n = rx.recv(&mut buf).unwrap();
        assert_eq!(
            std::str::from_utf8(&buf[..n]).unwrap(),
            "<85>pam_xcauth(xcauth-test:account): authentication failure; user=bob"
        );
        assert!(cap.0.borrow().is_empty());
    }

    /// A receiver that never reads: once its queue is full, lines are dropped instead of
    /// blocking the PAM call (and the host's worker) for good.
    #[test]
    fn a_full_receiver_queue_drops_lines_instead_of_blocking() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("log.sock");
        let rx = UnixDatagram::bind(&path).unwrap();
        let (done_tx, done_rx) = std::sync::mpsc::channel();
        let p = path.clone();
        std::thread::spawn(move || {
            let cap = Capture::default();
            let log = Logger::new(&cap, "xcauth-test", "auth", Some(p));
            // Far more than net.unix.max_dgram_qlen (10 by default, 512 on many systems).
            for i in 0..2000 {
                log.log(Level::Notice, &format!("line {i}"));
            }
            let _ = done_tx.send(());
        });
        done_rx
            .recv_timeout(Duration::from_secs(10))
            .expect("logging blocked on a full receiver queue");
        // The first lines did arrive.
        rx.set_read_timeout(Some(Duration::from_secs(2))).unwrap();
        let mut buf = [0u8; 512];
        let n = rx.recv(&mut buf).unwrap();
        assert!(std::str::from_utf8(&buf[..n]).unwrap().ends_with("line 0"));
    }
}
