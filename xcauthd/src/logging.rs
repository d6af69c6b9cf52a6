//! The daemon's logger: stderr (interactive and one-shot modes), files in the
//! log directory (`xcauth.log`, as xcauth 2), or syslog.
//!
//! Records come from the `log` facade; nothing in the workspace logs a
//! password, token, secret or request body. SIGHUP reopens the log file so
//! logrotate can move it.
//!
//! File output is buffered: a connection flushes the log whenever it has
//! answered everything it received (before it waits for more input), and the
//! accept loop flushes on every tick, so lines appear promptly without one
//! write system call per line under load. WARN and ERROR lines are written
//! through at once.

use std::fs::{File, OpenOptions};
use std::io::{BufWriter, Write};
use std::path::PathBuf;
use std::sync::atomic::Ordering;
use std::sync::Mutex;

use log::{Level, LevelFilter, Log, Metadata, Record};
use xcauth_core::clock::{Civil, Clock, SystemClock};

/// Where log records go.
#[derive(Debug, Clone)]
pub enum Sink {
    /// Standard error.
    Stderr,
    /// `DIR/xcauth.log`, reopened on SIGHUP.
    Dir(PathBuf),
    /// The local syslog daemon (facility daemon).
    Syslog,
}

enum Out {
    /// Nowhere safe to write (inetd with no log file and no syslog).
    Discard,
    Stderr,
    File {
        path: PathBuf,
        file: BufWriter<File>,
    },
    Syslog(syslog::Logger<syslog::LoggerBackend, syslog::Formatter3164>),
}

struct DaemonLogger {
    level: LevelFilter,
    out: Mutex<Out>,
}

static LOGGER: std::sync::OnceLock<DaemonLogger> = std::sync::OnceLock::new();

/// Installs the logger. Failing to open the file or syslog falls back to
/// stderr with a warning, as xcauth 2 did — except when fd 2 is a socket
/// (inetd passes the connection as fds 0, 1 and 2): log lines there would
/// land in the protocol stream, so stderr is never used then.
pub fn init(sink: &Sink, debug: bool) {
    let level = if debug {
        LevelFilter::Debug
    } else {
        LevelFilter::Info
    };
    let stderr_ok = !crate::sys::stderr_is_socket();
    let sink = match sink {
        Sink::Stderr if !stderr_ok => &Sink::Syslog,
        other => other,
    };
    let mut warning = None;
    let out = match sink {
        Sink::Stderr => Out::Stderr,
        Sink::Dir(dir) => {
            let path = dir.join("xcauth.log");
            match open_append(&path) {
                Ok(file) => Out::File {
                    path,
                    file: BufWriter::new(file),
                },
                Err(e) => {
                    warning = Some(format!(
                        "cannot log to {}: {e}; logging to stderr",
                        path.display()
                    ));
                    Out::Stderr
                }
            }
        }
        Sink::Syslog => {
            let formatter = syslog::Formatter3164 {
                facility: syslog::Facility::LOG_DAEMON,
                hostname: None,
                process: "xcauthd".into(),
                pid: std::process::id(),
            };
            match syslog::unix(formatter) {
                Ok(logger) => Out::Syslog(logger),
                Err(e) if stderr_ok => {
                    warning = Some(format!("cannot connect to syslog: {e}; logging to stderr"));
                    Out::Stderr
                }
                Err(_) => Out::Discard,
            }
        }
    };
    let logger = LOGGER.get_or_init(|| DaemonLogger {
        level,
        out: Mutex::new(out),
    });
    if log::set_logger(logger).is_ok() {
        log::set_max_level(level);
    }
    if let Some(w) = warning {
        log::warn!("{w}");
    }
}

fn open_append(path: &std::path::Path) -> std::io::Result<File> {
    use std::os::unix::fs::OpenOptionsExt;
    OpenOptions::new()
        .create(true)
        .append(true)
        .mode(0o640)
        .open(path)
}

/// Reopens the log file if SIGHUP arrived since the last call.
pub fn reopen_if_requested() {
    if !crate::sys::REOPEN_LOGS.swap(false, Ordering::SeqCst) {
        return;
    }
    let Some(logger) = LOGGER.get() else { return };
    let mut out = logger
        .out
        .lock()
        .unwrap_or_else(std::sync::PoisonError::into_inner);
    if let Out::File { path, file } = &mut *out {
        let _ = file.flush();
        match open_append(path) {
            Ok(new) => *file = BufWriter::new(new),
            Err(e) => {
                let msg = format!("cannot reopen {}: {e}\n", path.display());
                let _ = file.write_all(msg.as_bytes());
            }
        }
    }
    drop(out);
    log::info!("log file reopened (SIGHUP)");
}

impl Log for DaemonLogger {
    fn enabled(&self, metadata: &Metadata<'_>) -> bool {
        metadata.level() <= self.level
    }

    fn log(&self, record: &Record<'_>) {
        if !self.enabled(record.metadata()) {
            return;
        }
        let mut out = self
            .out
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner);
        match &mut *out {
            Out::Discard => {}
            Out::Syslog(logger) => {
                let msg = record.args().to_string();
                let _ = match record.level() {
                    Level::Error => logger.err(msg),
                    Level::Warn => logger.warning(msg),
                    Level::Info => logger.info(msg),
                    Level::Debug | Level::Trace => logger.debug(msg),
                };
            }
            Out::Stderr => {
                let _ = write_line(&mut std::io::stderr().lock(), record);
            }
            Out::File { file, .. } => {
                let _ = write_line(file, record);
                if record.level() <= Level::Warn {
                    let _ = file.flush();
                }
            }
        }
    }

    fn flush(&self) {
        let mut out = self
            .out
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner);
        if let Out::File { file, .. } = &mut *out {
            let _ = file.flush();
        }
    }
}

fn write_line(out: &mut impl Write, record: &Record<'_>) -> std::io::Result<()> {
    let now = SystemClock.now();
    let millis = now
        .duration_since(std::time::UNIX_EPOCH)
        .map_or(0, |d| d.subsec_millis());
    STAMP.with(|stamp| {
        let mut stamp = stamp.borrow_mut();
        let second = xcauth_core::clock::unix_seconds(now);
        if stamp.0 != second {
            // The date part changes once a second: format it once a second.
            stamp.1 = Civil::from_unix(second).to_string();
            stamp.0 = second;
        }
        writeln!(
            out,
            "{},{millis:03}Z {}: {}",
            stamp.1,
            record.level(),
            record.args()
        )
    })
}

thread_local! {
    /// The last formatted second, per thread.
    static STAMP: std::cell::RefCell<(i64, String)> = const {
        std::cell::RefCell::new((i64::MIN, String::new()))
    };
}
