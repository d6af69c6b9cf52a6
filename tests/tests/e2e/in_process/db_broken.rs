//! A broken database never breaks authentication: with a corrupt file, a
//! read-only database, a missing directory or a path under a regular file,
//! logins are still answered by the backend (the real client and the HTTP
//! double), and the cache's trouble is logged exactly once.
#![allow(clippy::unwrap_used, clippy::expect_used)] // tests: a failed unwrap is a failed test

use std::os::unix::fs::{MetadataExt, PermissionsExt};
use std::path::Path;
use std::sync::{Arc, Mutex, OnceLock};
use std::thread::ThreadId;
use std::time::Duration;

use xcauth_core::backend::jsxc::{ClientOptions, JsxcClient};
use xcauth_core::db::{CacheSettings, Db, DbCache, DbError, DbOptions};
use xcauth_core::engine::GlobalBackend;
use xcauth_core::vocab::{AuthDecision, BackendUrl};
use xcauth_core::{Engine, ManualClock, Password, Secret};
use xcauth_tests::double::{BackendDouble, User};

const SECRET: &str = "s3cret";

/// Warnings from xcauth's own code, per thread (tests run in parallel).
struct Capture {
    lines: Mutex<Vec<(ThreadId, String)>>,
}

impl log::Log for Capture {
    fn enabled(&self, m: &log::Metadata<'_>) -> bool {
        m.level() <= log::Level::Warn && m.target().starts_with("xcauth")
    }

    fn log(&self, r: &log::Record<'_>) {
        if self.enabled(r.metadata()) {
            let line = format!("{}: {}", r.target(), r.args());
            self.lines
                .lock()
                .unwrap()
                .push((std::thread::current().id(), line));
        }
    }

    fn flush(&self) {}
}

fn warnings() -> Vec<String> {
    static CAPTURE: OnceLock<&'static Capture> = OnceLock::new();
    let capture = CAPTURE.get_or_init(|| {
        let c: &'static Capture = Box::leak(Box::new(Capture {
            lines: Mutex::new(Vec::new()),
        }));
        log::set_logger(c).unwrap();
        log::set_max_level(log::LevelFilter::Warn);
        c
    });
    let me = std::thread::current().id();
    capture
        .lines
        .lock()
        .unwrap()
        .iter()
        .filter(|(t, _)| *t == me)
        .map(|(_, l)| l.clone())
        .collect()
}

fn settings() -> CacheSettings {
    CacheSettings {
        bcrypt_cost: 4,
        ..CacheSettings::default()
    }
}

/// Builds the cache with `make` and logs in five times (the third with a
/// wrong password); returns the warnings logged meanwhile and how many
/// logins the backend answered.
fn five_logins(make: impl FnOnce() -> DbCache) -> (Vec<String>, usize) {
    let before = warnings().len();
    let double = BackendDouble::start(SECRET);
    double.add_user(User::new("alice", "pw"));
    let client = JsxcClient::new(&ClientOptions {
        connect_timeout: Duration::from_secs(2),
        read_timeout: Duration::from_secs(5),
        ..ClientOptions::default()
    })
    .unwrap();
    let global = GlobalBackend {
        url: BackendUrl::parse(&double.url()).unwrap(),
        secret: Secret::new(SECRET),
    };
    let clock = Arc::new(ManualClock::at(1_000));
    let engine = Engine::new(global, Arc::new(client), clock.clone()).with_cache(Arc::new(make()));
    for i in 0..5 {
        clock.advance(10);
        let pw = if i == 2 { "wrong" } else { "pw" };
        let d = engine.auth("alice", "example.org", &Password::new(pw));
        if i == 2 {
            assert_eq!(d, AuthDecision::Rejected, "login {i}");
        } else {
            assert!(d.is_accepted(), "login {i}: {d:?}");
        }
    }
    (warnings().split_off(before), double.count("auth"))
}

/// The cache is out of the picture: all five logins went to the backend.
fn broken(make: impl FnOnce() -> DbCache) -> Vec<String> {
    let (w, calls) = five_logins(make);
    assert_eq!(calls, 5, "every login went to the backend");
    w
}

fn assert_one_cache_warning(w: &[String], mentions: &str) {
    assert_eq!(w.len(), 1, "{w:#?}");
    assert!(
        w[0].contains("credential cache") && w[0].contains(mentions),
        "{w:#?}"
    );
}

#[test]
fn corrupt_file() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("xcauth.sqlite3");
    std::fs::write(
        &path,
        b"this is not an SQLite database, just text that is long enough to matter. ".repeat(100),
    )
    .unwrap();
    let err = Db::open(&path, &DbOptions::default()).unwrap_err();
    assert!(matches!(err, DbError::Open { .. }), "{err}");
    assert!(err.to_string().contains("xcauth.sqlite3"), "{err}");
    let w = broken(|| DbCache::open_or_miss(&path, &DbOptions::default(), settings()));
    assert_one_cache_warning(&w, "xcauth.sqlite3");
}

#[test]
fn missing_directory() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("missing").join("xcauth.sqlite3");
    let w = broken(|| DbCache::open_or_miss(&path, &DbOptions::default(), settings()));
    assert_one_cache_warning(&w, "missing");
    assert!(!path.parent().unwrap().exists());
}

#[test]
fn parent_is_a_regular_file() {
    let dir = tempfile::tempdir().unwrap();
    let file = dir.path().join("file");
    std::fs::write(&file, b"").unwrap();
    let path = file.join("xcauth.sqlite3");
    let w = broken(|| DbCache::open_or_miss(&path, &DbOptions::default(), settings()));
    assert_one_cache_warning(&w, "xcauth.sqlite3");
}

#[test]
fn read_only_database() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("xcauth.sqlite3");
    Db::open(&path, &DbOptions::default()).unwrap();
    let ro = DbOptions {
        read_only: true,
        ..DbOptions::default()
    };
    // Opening works (lookups could still be served); storing fails, once loudly.
    let w = broken(|| DbCache::new(Arc::new(Db::open(&path, &ro).unwrap()), settings()));
    assert_one_cache_warning(&w, "store");
}

/// A database file the daemon's user may only read (mode 0400). For root the mode means
/// nothing (a working cache, no warning); for anyone else the cache can look up but not store,
/// so every login goes to the backend, with one warning. The suite runs as root, so that
/// subject runs in a child process as `nobody`, on a file `nobody` owns.
#[test]
fn file_mode_0400() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("xcauth.sqlite3");
    Db::open(&path, &DbOptions::default()).unwrap();
    std::fs::set_permissions(&path, std::fs::Permissions::from_mode(0o400)).unwrap();
    assert_eq!(
        std::fs::metadata(&path).unwrap().uid(),
        xcauth_tests::support::euid(),
        "the file is the test's own"
    );
    if xcauth_tests::support::euid() == 0 {
        let (w, calls) =
            five_logins(|| DbCache::open_or_miss(&path, &DbOptions::default(), settings()));
        assert!(w.is_empty(), "{w:#?}");
        assert_eq!(calls, 2, "the first login and the wrong password");
        xcauth_tests::support::rerun_as_nobody(concat!(module_path!(), "::file_mode_0400"));
    } else {
        let w = broken(|| DbCache::open_or_miss(&path, &DbOptions::default(), settings()));
        assert_one_cache_warning(&w, "xcauth.sqlite3");
    }
}

#[test]
fn file_removed_while_running() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("xcauth.sqlite3");
    let (w, _) = five_logins(|| {
        let cache = DbCache::open_or_miss(&path, &DbOptions::default(), settings());
        remove_all(dir.path());
        cache
    });
    // The pooled connection still has the (unlinked) file open; at most one warning.
    assert!(w.len() <= 1, "{w:#?}");
}

fn remove_all(dir: &Path) {
    for entry in std::fs::read_dir(dir).unwrap() {
        std::fs::remove_file(entry.unwrap().path()).unwrap();
    }
}
