//! The daemon's logger: stderr (interactive and one-shot modes), files in the
//! log directory (`xcauth.log`, as xcauth 2), or syslog.
//!
//! Records come from the `log` facade; nothing in the workspace logs a
//! password, token, secret or request body. SIGHUP reopens the log file so
//! logrotate can move it.

use std::fs::{File, OpenOptions};
use std::io::Write;
use std::path::PathBuf;
use std::sync::atomic::Ordering;
use std::sync::Mutex;
use std::time::SystemTime;

use log::{Level, LevelFilter, Log, Metadata, Record};
use xcauth_core::clock::Civil;

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
    Stderr,
    File { path: PathBuf, file: File },
    Syslog(syslog::Logger<syslog::LoggerBackend, syslog::Formatter3164>),
}

struct DaemonLogger {
    level: LevelFilter,
    out: Mutex<Out>,
}

static LOGGER: std::sync::OnceLock<DaemonLogger> = std::sync::OnceLock::new();

/// Installs the logger. Failing to open the file or syslog falls back to
/// stderr with a warning, as xcauth 2 did.
pub fn init(sink: &Sink, debug: bool) {
    let level = if debug { LevelFilter::Debug } else { LevelFilter::Info };
    let mut warning = None;
    let out = match sink {
        Sink::Stderr => Out::Stderr,
        Sink::Dir(dir) => {
            let path = dir.join("xcauth.log");
            match open_append(&path) {
                Ok(file) => Out::File { path, file },
                Err(e) => {
                    warning = Some(format!("cannot log to {}: {e}; logging to stderr", path.display()));
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
                Err(e) => {
                    warning = Some(format!("cannot connect to syslog: {e}; logging to stderr"));
                    Out::Stderr
                }
            }
        }
    };
    let logger = LOGGER.get_or_init(|| DaemonLogger { level, out: Mutex::new(out) });
    if log::set_logger(logger).is_ok() {
        log::set_max_level(level);
    }
    if let Some(w) = warning {
        log::warn!("{w}");
    }
}

fn open_append(path: &std::path::Path) -> std::io::Result<File> {
    use std::os::unix::fs::OpenOptionsExt;
    OpenOptions::new().create(true).append(true).mode(0o640).open(path)
}

/// Reopens the log file if SIGHUP arrived since the last call.
pub fn reopen_if_requested() {
    if !crate::sys::REOPEN_LOGS.swap(false, Ordering::SeqCst) {
        return;
    }
    let Some(logger) = LOGGER.get() else { return };
    let mut out = logger.out.lock().unwrap_or_else(std::sync::PoisonError::into_inner);
    if let Out::File { path, file } = &mut *out {
        match open_append(path) {
            Ok(new) => *file = new,
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
        let mut out = self.out.lock().unwrap_or_else(std::sync::PoisonError::into_inner);
        match &mut *out {
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
                let line = format_line(record);
                let _ = std::io::stderr().lock().write_all(line.as_bytes());
            }
            Out::File { file, .. } => {
                let line = format_line(record);
                let _ = file.write_all(line.as_bytes());
            }
        }
    }

    fn flush(&self) {}
}

fn format_line(record: &Record<'_>) -> String {
    let c = Civil::from_system_time(SystemTime::now());
    format!(
        "{:04}-{:02}-{:02} {:02}:{:02}:{:02},{:03}Z {}: {}\n",
        c.year,
        c.month,
        c.day,
        c.hour,
        c.minute,
        c.second,
        c.micros / 1000,
        record.level(),
        record.args()
    )
}
