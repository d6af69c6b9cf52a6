//! A process-wide logger for the crate's unit tests (one logger per test process): it keeps
//! every record with the thread that logged it, so tests running in parallel each read only
//! their own lines.

use std::sync::{Mutex, OnceLock};
use std::thread::ThreadId;

/// Captures log records per thread, so parallel tests see only their own.
pub(crate) struct CaptureLog {
    records: Mutex<Vec<(ThreadId, log::Level, String)>>,
}

impl log::Log for CaptureLog {
    fn enabled(&self, _: &log::Metadata<'_>) -> bool {
        true
    }

    fn log(&self, record: &log::Record<'_>) {
        let line = record.args().to_string();
        self.records
            .lock()
            .unwrap()
            .push((std::thread::current().id(), record.level(), line));
    }

    fn flush(&self) {}
}

/// The logger, installed on first use.
pub(crate) fn capture() -> &'static CaptureLog {
    static LOGGER: OnceLock<&'static CaptureLog> = OnceLock::new();
    LOGGER.get_or_init(|| {
        let logger: &'static CaptureLog = Box::leak(Box::new(CaptureLog {
            records: Mutex::new(Vec::new()),
        }));
        log::set_logger(logger).expect("no other logger in xcauth-core's tests");
        log::set_max_level(log::LevelFilter::Trace);
        logger
    })
}

/// Warnings (and worse) logged on this thread so far.
pub(crate) fn my_warnings() -> Vec<String> {
    let me = std::thread::current().id();
    capture()
        .records
        .lock()
        .unwrap()
        .iter()
        .filter(|(t, level, _)| *t == me && *level <= log::Level::Warn)
        .map(|(_, _, line)| line.clone())
        .collect()
}

/// Everything logged on this thread so far.
pub(crate) fn all_my_lines() -> Vec<String> {
    let me = std::thread::current().id();
    capture()
        .records
        .lock()
        .unwrap()
        .iter()
        .filter(|(t, ..)| *t == me)
        .map(|r| r.2.clone())
        .collect()
}

/// Lines logged on this thread so far at `level` or more severe (so without DEBUG for `Info`).
pub(crate) fn my_lines_at(level: log::Level) -> Vec<String> {
    let me = std::thread::current().id();
    capture()
        .records
        .lock()
        .unwrap()
        .iter()
        .filter(|(t, l, _)| *t == me && *l <= level)
        .map(|r| r.2.clone())
        .collect()
}
