//! The cache driven through the real [`Engine`]: the spec's 5.5 timeline,
//! eviction, long passwords, and broken databases (one warning, then misses).

use std::collections::VecDeque;
use std::path::Path;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};

use rusqlite::OptionalExtension;

use super::*;
use crate::backend::{Backend, Target};
use crate::cache::{CredentialCache, Lookup};
use crate::clock::ManualClock;
use crate::engine::Engine;
use crate::engine::GlobalBackend;
use crate::secret::{Password, Secret};
use crate::testlog::{all_my_lines, capture, my_warnings};
use crate::vocab::{
    AuthDecision, AuthReply, BackendUrl, ErrorChain, RosterReply, Timeout, Unavailable, UserExists,
    Via,
};

/// A backend that answers `auth` from a script, one reply per call, and
/// panics when called with nothing scripted ("must not be called"). Checks
/// on drop that the script was used up.
#[derive(Debug, Default)]
pub(super) struct ScriptedBackend {
    script: Mutex<VecDeque<AuthReply>>,
    calls: AtomicUsize,
}

impl ScriptedBackend {
    pub(super) fn expect(&self, reply: AuthReply) {
        self.script.lock().unwrap().push_back(reply);
    }

    pub(super) fn calls(&self) -> usize {
        self.calls.load(Ordering::SeqCst)
    }
}

impl Drop for ScriptedBackend {
    fn drop(&mut self) {
        if !std::thread::panicking() {
            let left = self.script.lock().unwrap().len();
            assert_eq!(
                left, 0,
                "{left} scripted backend replies were never requested"
            );
        }
    }
}

impl Backend for ScriptedBackend {
    fn auth(&self, _target: &Target, user: &str, _password: &Password) -> AuthReply {
        self.calls.fetch_add(1, Ordering::SeqCst);
        match self.script.lock().unwrap().pop_front() {
            // As Nextcloud does, an acceptance names the account: here the user asked for.
            Some(AuthReply::Accepted { uid: None }) => AuthReply::Accepted {
                uid: Some(user.to_owned()),
            },
            Some(reply) => reply,
            None => panic!("the backend was called, but this step must be served without it"),
        }
    }

    fn isuser(&self, _target: &Target, _user: &str) -> UserExists {
        panic!("isuser not expected")
    }

    fn sharedroster(&self, _target: &Target, _user: &str) -> RosterReply {
        panic!("sharedroster not expected")
    }
}

fn global() -> GlobalBackend {
    GlobalBackend {
        url: BackendUrl::parse("https://cloud.invalid/").unwrap(),
        secret: Secret::new("01234"),
    }
}

fn engine(cache: Arc<dyn CredentialCache>) -> (Engine, Arc<ScriptedBackend>, Arc<ManualClock>) {
    let backend = Arc::new(ScriptedBackend::default());
    let clock = Arc::new(ManualClock::at(0));
    let engine = Engine::new(global(), backend.clone(), clock.clone()).with_cache(cache);
    (engine, backend, clock)
}

fn timeout() -> AuthReply {
    AuthReply::Unavailable(Unavailable::Timeout(Timeout::Exchange(ErrorChain::new(
        "scripted",
    ))))
}

fn secs(s: i64) -> i64 {
    s * 1_000_000
}

/// A cache row as the timeline checks it; `first` is `None` where the
/// storage does not keep it (memory).
#[derive(Debug, Clone, PartialEq)]
struct Snapshot {
    pwhash: String,
    first: Option<i64>,
    remote: i64,
    any: i64,
}

type Inspect<'a> = &'a dyn Fn() -> Option<Snapshot>;

fn db_snapshot(db: &Db, jid: &str) -> Option<Snapshot> {
    db.run(|c| {
        c.query_row(
            "SELECT pwhash, firstauth, remoteauth, anyauth FROM authcache WHERE jid = ?1",
            [jid],
            |r| {
                let t = |i| {
                    r.get::<_, String>(i)
                        .map(|s| time::parse_micros(&s).unwrap())
                };
                Ok(Snapshot {
                    pwhash: r.get(0)?,
                    first: Some(t(1)?),
                    remote: t(2)?,
                    any: t(3)?,
                })
            },
        )
        .optional()
    })
    .unwrap()
}

fn mem_snapshot(cache: &MemoryCache, jid: &str) -> Option<Snapshot> {
    cache.entry(jid).map(|(pwhash, remote, any)| Snapshot {
        pwhash,
        first: None,
        remote: remote.unwrap(),
        any: any.unwrap(),
    })
}

/// Asserts one timeline step: decision, backend calls so far, row after.
fn step(
    n: &str,
    engine: &Engine,
    backend: &ScriptedBackend,
    password: &str,
    expect: &AuthDecision,
    calls: usize,
) {
    let got = engine.auth("user3", "domain3", &Password::new(password));
    assert_eq!(&got, expect, "step {n}: decision");
    assert_eq!(backend.calls(), calls, "step {n}: backend calls so far");
}

fn assert_row(n: &str, inspect: Inspect<'_>, first: i64, remote: i64, any: i64) -> Snapshot {
    let row = inspect().unwrap_or_else(|| panic!("step {n}: no row"));
    if let Some(f) = row.first {
        assert_eq!(f, secs(first), "step {n}: firstauth");
    }
    assert_eq!(
        (row.remote, row.any),
        (secs(remote), secs(any)),
        "step {n}: remoteauth, anyauth"
    );
    row
}

/// docs/xcauth2.md §4.6, all twelve steps.
fn timeline(cache: Arc<dyn CredentialCache>, inspect: Inspect<'_>, cost_prefix: &str) {
    let (engine, backend, clock) = engine(cache);
    let unavailable = |r: AuthReply| match r {
        AuthReply::Unavailable(u) => AuthDecision::Unavailable(u),
        other => unreachable!("{other:?}"),
    };

    // 1: no row, the backend times out → unavailable.
    clock.set(1);
    backend.expect(timeout());
    step("1", &engine, &backend, "pass3", &unavailable(timeout()), 1);
    assert_eq!(inspect(), None, "step 1: no row");

    // 2: success → one row, first = remote = any = 1.
    backend.expect(AuthReply::Accepted { uid: None });
    step(
        "2",
        &engine,
        &backend,
        "pass3",
        &AuthDecision::Accepted(Via::Backend),
        2,
    );
    let row2 = assert_row("2", inspect, 1, 1, 1);
    assert!(
        row2.pwhash.starts_with(cost_prefix),
        "step 2: {}",
        row2.pwhash
    );
    assert_eq!(row2.pwhash.len(), 60);

    // 3: served from the cache without the backend; any = 100.
    clock.set(100);
    step(
        "3",
        &engine,
        &backend,
        "pass3",
        &AuthDecision::Accepted(Via::Cache),
        2,
    );
    assert_eq!(assert_row("3", inspect, 1, 1, 100).pwhash, row2.pwhash);

    // 4: HTTP 400 {"result":"error"} with a wrong password: the unreachable
    // path does not vouch (bcrypt mismatch); the row is unchanged.
    clock.set(200);
    let http400 = AuthReply::Unavailable(Unavailable::Status(400));
    backend.expect(http400.clone());
    step("4", &engine, &backend, "badpass", &unavailable(http400), 3);
    assert_eq!(assert_row("4", inspect, 1, 1, 100).pwhash, row2.pwhash);

    // 5: a new password accepted by the backend replaces the hash.
    clock.set(300);
    backend.expect(AuthReply::Accepted { uid: None });
    step(
        "5",
        &engine,
        &backend,
        "newpass",
        &AuthDecision::Accepted(Via::Backend),
        4,
    );
    let row5 = assert_row("5", inspect, 1, 300, 300);
    assert_ne!(row5.pwhash, row2.pwhash);

    // 6: token vector 2 (user3@domain3, secret 01234, expiry 3601).
    step(
        "6",
        &engine,
        &backend,
        "ABbL+6M8K7HGF/vnfaZZi5XFZQAADhE",
        &AuthDecision::Accepted(Via::Token),
        4,
    );
    assert_eq!(inspect(), Some(row5.clone()), "step 6: unchanged");

    // 7: any + 3600 = 3900 < 4000: the backend is asked again.
    clock.set(4000);
    backend.expect(AuthReply::Accepted { uid: None });
    step(
        "7",
        &engine,
        &backend,
        "newpass",
        &AuthDecision::Accepted(Via::Backend),
        5,
    );
    let row7 = assert_row("7", inspect, 1, 4000, 4000);
    assert_ne!(
        row7.pwhash, row5.pwhash,
        "step 7: re-hashed with a new salt"
    );

    // 8: timeout; the unreachable path vouches (4000 + 604800 > 8000).
    clock.set(8000);
    backend.expect(timeout());
    step(
        "8",
        &engine,
        &backend,
        "newpass",
        &AuthDecision::Accepted(Via::UnreachableCache),
        6,
    );
    assert_row("8", inspect, 1, 4000, 8000);

    // 9: a normal cache hit.
    clock.set(8100);
    step(
        "9",
        &engine,
        &backend,
        "newpass",
        &AuthDecision::Accepted(Via::Cache),
        6,
    );
    assert_row("9", inspect, 1, 4000, 8100);

    // 10: every 1800 s up to 89100: 45 cache hits.
    let mut hits = 0;
    for now in (9900..=89_100).step_by(1800) {
        clock.set(now);
        step(
            &format!("10 at {now}"),
            &engine,
            &backend,
            "newpass",
            &AuthDecision::Accepted(Via::Cache),
            6,
        );
        assert_row("10", inspect, 1, 4000, now);
        hits += 1;
    }
    assert_eq!(hits, 45);

    // 11: remote + 86400 = 90400 < 90900: asked, times out, unreachable path vouches.
    clock.set(90_900);
    backend.expect(timeout());
    step(
        "11",
        &engine,
        &backend,
        "newpass",
        &AuthDecision::Accepted(Via::UnreachableCache),
        7,
    );
    assert_row("11", inspect, 1, 4000, 90_900);

    // 12: six days later, 609300 > 608800: nothing vouches any more.
    clock.set(90_900 + 6 * 86_400);
    backend.expect(timeout());
    step(
        "12",
        &engine,
        &backend,
        "newpass",
        &unavailable(timeout()),
        8,
    );
    assert_row("12", inspect, 1, 4000, 90_900);
}

#[test]
fn timeline_memory_cache_with_six_rounds_as_in_the_spec() {
    let cache = Arc::new(MemoryCache::new(CacheSettings {
        bcrypt_cost: 6,
        ..CacheSettings::default()
    }));
    let inspect = || mem_snapshot(&cache, "user3@domain3");
    timeline(cache.clone(), &inspect, "$2b$06$");
}

#[test]
fn timeline_db_cache_in_a_file() {
    let dir = tempfile::tempdir().unwrap();
    let db = Arc::new(Db::open(&dir.path().join("x.sqlite3"), &DbOptions::default()).unwrap());
    let cache = Arc::new(DbCache::new(
        db.clone(),
        CacheSettings {
            bcrypt_cost: 4,
            ..CacheSettings::default()
        },
    ));
    let inspect = || db_snapshot(&db, "user3@domain3");
    timeline(cache, &inspect, "$2b$04$");
}

#[test]
fn timeline_db_cache_in_memory_db() {
    let db = Arc::new(Db::open_memory().unwrap());
    let cache = Arc::new(DbCache::new(
        db.clone(),
        CacheSettings {
            bcrypt_cost: 4,
            ..CacheSettings::default()
        },
    ));
    let inspect = || db_snapshot(&db, "user3@domain3");
    timeline(cache, &inspect, "$2b$04$");
}

fn cost4() -> CacheSettings {
    CacheSettings {
        bcrypt_cost: 4,
        ..CacheSettings::default()
    }
}

#[test]
fn noauth_with_the_cached_password_evicts_the_entry() {
    let db = Arc::new(Db::open_memory().unwrap());
    let (engine, backend, clock) = engine(Arc::new(DbCache::new(db.clone(), cost4())));
    clock.set(1000);
    backend.expect(AuthReply::Accepted { uid: None });
    assert!(engine.auth("u", "d", &Password::new("old")).is_accepted());
    // Past the query TTL the backend is asked; it now rejects "old".
    clock.set(1000 + 3601);
    backend.expect(AuthReply::Rejected);
    assert_eq!(
        engine.auth("u", "d", &Password::new("old")),
        AuthDecision::Rejected
    );
    assert_eq!(db_snapshot(&db, "u@d"), None, "entry evicted");
    assert!(all_my_lines()
        .iter()
        .any(|l| l.contains("removed") && l.contains("u@d")));
    // While the backend is down the revoked password no longer works.
    backend.expect(timeout());
    assert!(matches!(
        engine.auth("u", "d", &Password::new("old")),
        AuthDecision::Unavailable(_)
    ));
}

#[test]
fn noauth_with_another_password_leaves_the_entry() {
    let db = Arc::new(Db::open_memory().unwrap());
    let (engine, backend, clock) = engine(Arc::new(DbCache::new(db.clone(), cost4())));
    clock.set(1000);
    backend.expect(AuthReply::Accepted { uid: None });
    assert!(engine.auth("u", "d", &Password::new("good")).is_accepted());
    let before = db_snapshot(&db, "u@d").unwrap();
    backend.expect(AuthReply::Rejected);
    assert_eq!(
        engine.auth("u", "d", &Password::new("guess")),
        AuthDecision::Rejected
    );
    assert_eq!(
        db_snapshot(&db, "u@d"),
        Some(before),
        "a wrong guess cannot evict"
    );
    // The right password is still served from the cache.
    assert_eq!(
        engine.auth("u", "d", &Password::new("good")),
        AuthDecision::Accepted(Via::Cache)
    );
}

#[test]
fn memory_cache_evicts_too() {
    let cache = Arc::new(MemoryCache::new(cost4()));
    let (engine, backend, clock) = engine(cache.clone());
    clock.set(10);
    backend.expect(AuthReply::Accepted { uid: None });
    assert!(engine.auth("u", "d", &Password::new("pw")).is_accepted());
    backend.expect(AuthReply::Rejected);
    assert_eq!(
        engine.auth("u", "d", &Password::new("nope")),
        AuthDecision::Rejected
    );
    assert_eq!(cache.len(), 1);
    clock.set(10 + 3600);
    backend.expect(AuthReply::Rejected);
    assert_eq!(
        engine.auth("u", "d", &Password::new("pw")),
        AuthDecision::Rejected
    );
    assert!(cache.is_empty());
}

#[test]
fn passwords_over_72_bytes_are_not_cached() {
    let db = Arc::new(Db::open_memory().unwrap());
    let cache = Arc::new(DbCache::new(db.clone(), cost4()));
    let (engine, backend, clock) = engine(cache.clone());
    clock.set(5);
    let long = Password::new("é".repeat(37)); // 74 bytes, 37 characters
    backend.expect(AuthReply::Accepted { uid: None });
    assert!(engine.auth("u", "d", &long).is_accepted());
    assert_eq!(db_snapshot(&db, "u@d"), None);
    // Defensive even when called directly, bypassing the engine's check.
    cache.store("u@d", &long, std::time::UNIX_EPOCH);
    assert_eq!(db_snapshot(&db, "u@d"), None);
    assert!(!cache
        .check("u@d", &long, std::time::UNIX_EPOCH, Lookup::Unreachable)
        .is_hit());
    // Every login goes to the backend.
    backend.expect(AuthReply::Accepted { uid: None });
    assert_eq!(
        engine.auth("u", "d", &long),
        AuthDecision::Accepted(Via::Backend)
    );
    backend.expect(timeout());
    assert!(matches!(
        engine.auth("u", "d", &long),
        AuthDecision::Unavailable(_)
    ));
}

/// Three logins answered by the backend; the broken cache costs exactly one warning.
fn logins_survive_with_one_warning(make: impl FnOnce() -> Arc<dyn CredentialCache>) {
    capture();
    let before = my_warnings().len();
    let (engine, backend, clock) = engine(make());
    for i in 0..3 {
        clock.set(100 + i);
        backend.expect(AuthReply::Accepted { uid: None });
        assert_eq!(
            engine.auth("u", "d", &Password::new("pw")),
            AuthDecision::Accepted(Via::Backend)
        );
    }
    backend.expect(timeout());
    assert!(matches!(
        engine.auth("u", "d", &Password::new("pw")),
        AuthDecision::Unavailable(_)
    ));
    let warnings: Vec<String> = my_warnings().split_off(before);
    // The engine itself warns about the backend timeout; the cache exactly once.
    let cache_warnings: Vec<&String> = warnings
        .iter()
        .filter(|w| w.contains("credential cache"))
        .collect();
    assert_eq!(cache_warnings.len(), 1, "{warnings:#?}");
    assert_eq!(warnings.len(), 2, "{warnings:#?}");
}

#[test]
fn unopenable_path_is_a_permanent_miss_with_one_warning() {
    let dir = tempfile::tempdir().unwrap();
    let file = dir.path().join("plain-file");
    std::fs::write(&file, b"x").unwrap();
    let path = file.join("xcauth.sqlite3"); // parent is a regular file
    assert!(matches!(
        Db::open(&path, &DbOptions::default()),
        Err(DbError::Create { .. })
    ));
    logins_survive_with_one_warning(|| {
        Arc::new(DbCache::open_or_miss(&path, &DbOptions::default(), cost4()))
    });
}

#[test]
fn missing_directory_is_a_permanent_miss_with_one_warning() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("no-such-dir").join("xcauth.sqlite3");
    let err = Db::open(&path, &DbOptions::default()).unwrap_err();
    assert!(err.to_string().contains("no-such-dir"), "{err}");
    logins_survive_with_one_warning(|| {
        Arc::new(DbCache::open_or_miss(&path, &DbOptions::default(), cost4()))
    });
    assert!(!path.exists());
}

#[test]
fn corrupt_file_is_an_open_error_and_a_miss() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("corrupt.sqlite3");
    std::fs::write(&path, vec![0x5a; 8192]).unwrap();
    let err = Db::open(&path, &DbOptions::default()).unwrap_err();
    assert!(matches!(err, DbError::Open { .. }), "{err}");
    logins_survive_with_one_warning(|| {
        Arc::new(DbCache::open_or_miss(&path, &DbOptions::default(), cost4()))
    });
    // Nothing was written over the damaged file.
    assert_eq!(std::fs::read(&path).unwrap(), vec![0x5a; 8192]);
}

#[test]
fn database_that_breaks_after_opening_is_a_miss_with_one_warning() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("x.sqlite3");
    let db = Arc::new(Db::open(&path, &DbOptions::default()).unwrap());
    rusqlite::Connection::open(&path)
        .unwrap()
        .execute_batch("DROP TABLE authcache")
        .unwrap();
    logins_survive_with_one_warning(|| Arc::new(DbCache::new(db, cost4())));
}

#[test]
fn read_only_database_serves_existing_entries_and_warns_once() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("ro.sqlite3");
    {
        let db = Arc::new(Db::open(&path, &DbOptions::default()).unwrap());
        DbCache::new(db, cost4()).store(
            "u@d",
            &Password::new("pw"),
            std::time::UNIX_EPOCH + std::time::Duration::from_secs(50),
        );
    }
    let ro = DbOptions {
        read_only: true,
        ..DbOptions::default()
    };
    let db = Arc::new(Db::open(&path, &ro).unwrap());
    capture();
    let before = my_warnings().len();
    let (engine, backend, clock) = engine(Arc::new(DbCache::new(db.clone(), cost4())));
    clock.set(60);
    // A hit: the use cannot be recorded (one warning), the login still succeeds.
    assert_eq!(
        engine.auth("u", "d", &Password::new("pw")),
        AuthDecision::Accepted(Via::Cache)
    );
    assert_eq!(db_snapshot(&db, "u@d").unwrap().any, secs(50));
    // Backend successes for another user cannot be stored: no more warnings.
    for _ in 0..3 {
        backend.expect(AuthReply::Accepted { uid: None });
        assert_eq!(
            engine.auth("v", "d", &Password::new("pw")),
            AuthDecision::Accepted(Via::Backend)
        );
    }
    let warnings = my_warnings().split_off(before);
    assert_eq!(warnings.len(), 1, "{warnings:#?}");
    assert!(warnings[0].contains("credential cache"), "{warnings:#?}");
    // The read-only open never created anything.
    assert!(Db::open(&dir.path().join("absent.sqlite3"), &ro).is_err());
    assert!(!dir.path().join("absent.sqlite3").exists());
}

#[test]
fn db_cache_reads_rows_in_both_timestamp_forms() {
    let db = Arc::new(Db::open_memory().unwrap());
    let hash = bcrypt::hash_with_result("pw", 4)
        .unwrap()
        .format_for_version(bcrypt::Version::TwoB);
    db.run(|c| {
        c.execute(
            "INSERT INTO authcache (jid, pwhash, firstauth, remoteauth, anyauth) VALUES
               ('a@d', ?1, '1970-01-01 00:00:01', '1970-01-01 00:00:01', '1970-01-01 00:00:01.500000'),
               ('b@d', ?1, '1970-01-01 00:00:01', '1970-01-01 00:00:01.25', '1970-01-01 00:00:01')",
            [&hash],
        )
    })
    .unwrap();
    let cache = DbCache::new(db.clone(), cost4());
    let t = |us: u64| std::time::UNIX_EPOCH + std::time::Duration::from_micros(us);
    // any = 1.5 s: any + 3600 s > now up to 3601.499999 s.
    assert!(cache
        .check(
            "a@d",
            &Password::new("pw"),
            t(3_601_499_999),
            Lookup::Normal
        )
        .is_hit());
    let any: String = db
        .run(|c| {
            c.query_row("SELECT anyauth FROM authcache WHERE jid='a@d'", [], |r| {
                r.get(0)
            })
        })
        .unwrap();
    assert_eq!(any, "1970-01-01 01:00:01.499999");
    // remote = 1.25 s: remote + 1 w > now up to 604801.249999 s.
    assert!(cache
        .check(
            "b@d",
            &Password::new("pw"),
            t(604_801_249_999),
            Lookup::Unreachable
        )
        .is_hit());
    assert!(!cache
        .check(
            "b@d",
            &Password::new("pw"),
            t(604_801_250_000),
            Lookup::Unreachable
        )
        .is_hit());
}

#[test]
fn db_file_is_created_with_the_requested_mode() {
    use std::os::unix::fs::PermissionsExt;
    let dir = tempfile::tempdir().unwrap();
    let mode_of = |p: &Path| std::fs::metadata(p).unwrap().permissions().mode() & 0o777;
    let path = dir.path().join("default.sqlite3");
    let db = Db::open(&path, &DbOptions::default()).unwrap();
    DbCache::new(Arc::new(db), cost4()).store("u@d", &Password::new("p"), std::time::UNIX_EPOCH);
    assert_eq!(mode_of(&path), 0o600);
    for side in ["default.sqlite3-wal", "default.sqlite3-shm"] {
        let side = dir.path().join(side);
        if side.exists() {
            assert_eq!(mode_of(&side), 0o600, "{}", side.display());
        }
    }
    let path = dir.path().join("group.sqlite3");
    Db::open(
        &path,
        &DbOptions {
            mode: 0o640,
            ..DbOptions::default()
        },
    )
    .unwrap();
    assert_eq!(mode_of(&path), 0o640, "exact mode despite the umask");
    // An existing file keeps its mode.
    std::fs::set_permissions(&path, std::fs::Permissions::from_mode(0o644)).unwrap();
    Db::open(&path, &DbOptions::default()).unwrap();
    assert_eq!(mode_of(&path), 0o644);
}

#[test]
fn memory_path_opens_a_memory_database() {
    let db = Db::open(Path::new(MEMORY_PATH), &DbOptions::default()).unwrap();
    assert_eq!(db.path(), None);
    assert_eq!(db.label(), ":memory:");
    assert!(!Path::new(MEMORY_PATH).exists());
}

#[test]
fn many_threads_share_one_db_without_errors() {
    let dir = tempfile::tempdir().unwrap();
    let db = Arc::new(Db::open(&dir.path().join("t.sqlite3"), &DbOptions::default()).unwrap());
    let cache = Arc::new(DbCache::new(db.clone(), cost4()));
    capture();
    let handles: Vec<_> = (0..8)
        .map(|t| {
            let cache = cache.clone();
            std::thread::spawn(move || {
                let now = std::time::UNIX_EPOCH + std::time::Duration::from_secs(100);
                for i in 0..40 {
                    let jid = format!("u{}@d", (i + t) % 5);
                    let pw = Password::new(format!("pw{}", (i + t) % 5));
                    cache.store(&jid, &pw, now);
                    // May miss when another thread re-stored the entry in between.
                    cache.check(&jid, &pw, now, Lookup::Normal);
                    if i % 10 == 9 {
                        cache.forget_if_matches(&jid, &pw);
                    }
                }
                my_warnings()
            })
        })
        .collect();
    for h in handles {
        assert_eq!(h.join().unwrap(), Vec::<String>::new());
    }
    let n: i64 = db
        .run(|c| c.query_row("SELECT count(*) FROM authcache", [], |r| r.get(0)))
        .unwrap();
    assert!(n <= 5, "{n}");
}

#[test]
fn a_held_write_lock_is_waited_for() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("busy.sqlite3");
    // A busy timeout far beyond the 300 ms the lock is held: the write only waits as long as
    // the lock is held, and a busy machine cannot make it give up.
    let opts = DbOptions {
        busy_timeout: std::time::Duration::from_secs(60),
        ..DbOptions::default()
    };
    let db = Db::open(&path, &opts).unwrap();
    // Another "process" holds the write lock for 300 ms: the write waits and succeeds.
    let (locked, is_locked) = std::sync::mpsc::channel();
    let holder = std::thread::spawn(move || {
        let mut c = rusqlite::Connection::open(&path).unwrap();
        let tx = c
            .transaction_with_behavior(rusqlite::TransactionBehavior::Immediate)
            .unwrap();
        tx.execute("INSERT INTO domains (xmppdomain) VALUES ('held')", [])
            .unwrap();
        locked.send(()).unwrap();
        std::thread::sleep(std::time::Duration::from_millis(300));
        tx.commit().unwrap();
    });
    // Only once the lock is really held.
    is_locked.recv().unwrap();
    let n = db
        .transaction(|tx| tx.execute("INSERT INTO domains (xmppdomain) VALUES ('mine')", []))
        .unwrap();
    assert_eq!(n, 1);
    // Our write could only happen after the holder committed: it waited.
    let held: i64 = db
        .run(|c| {
            c.query_row(
                "SELECT count(*) FROM domains WHERE xmppdomain = 'held'",
                [],
                |r| r.get(0),
            )
        })
        .unwrap();
    assert_eq!(held, 1);
    holder.join().unwrap();
}

#[test]
#[allow(clippy::disallowed_methods)] // measures SQLite's real-time busy timeout
fn a_lock_held_for_longer_than_the_busy_timeout_is_given_up_on_in_time() {
    use std::time::{Duration, Instant};
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("stuck.sqlite3");
    // The bounds below are wide for a busy machine and still far from what a wrong
    // implementation would take: opening waits for nothing (not for a 60 s busy timeout),
    // and a write gives up after its 2 s budget (not after a budget per retry: 9 x 2 s).
    let patient = DbOptions {
        busy_timeout: Duration::from_secs(60),
        ..DbOptions::default()
    };
    let budget = Duration::from_secs(2);
    let opts = DbOptions {
        busy_timeout: budget,
        ..DbOptions::default()
    };
    Db::open(&path, &opts).unwrap();
    let holder = rusqlite::Connection::open(&path).unwrap();
    holder.execute_batch("BEGIN EXCLUSIVE").unwrap();
    // Opening a complete WAL file only reads: no wait at all.
    let started = Instant::now();
    Db::open(&path, &patient).unwrap();
    assert!(
        started.elapsed() < Duration::from_secs(30),
        "{:?}",
        started.elapsed()
    );
    let db = Db::open(&path, &opts).unwrap();
    // Reads go on beside the writer.
    let n: i64 = db
        .run(|c| c.query_row("SELECT count(*) FROM authcache", [], |r| r.get(0)))
        .unwrap();
    assert_eq!(n, 0);
    // A write gives up after the busy timeout, retries included.
    let started = Instant::now();
    let e = db
        .transaction(|tx| tx.execute("INSERT INTO domains (xmppdomain) VALUES ('x')", []))
        .unwrap_err();
    let took = started.elapsed();
    assert!(e.is_busy(), "{e}");
    assert!(took >= budget - Duration::from_millis(100), "{took:?}");
    assert!(took < 4 * budget, "{took:?}");
    holder.execute_batch("COMMIT").unwrap();
}
