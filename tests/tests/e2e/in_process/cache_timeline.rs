//! The credential cache timeline of docs/xcauth2.md §4.6, step by step,
//! through the real engine, the real signed JSXC client and the HTTP backend
//! double, with an injected clock: served from the cache without a backend
//! call, re-verified after the TTLs, the unreachable fallback inside and
//! outside its TTL, and eviction when the password was changed.
#![allow(clippy::unwrap_used, clippy::expect_used)] // tests: a failed unwrap is a failed test

use std::path::Path;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;
use std::time::Duration;

use xcauth_core::backend::jsxc::{ClientOptions, JsxcClient};
use xcauth_core::backend::{Backend, Target};
use xcauth_core::cache::CredentialCache;
use xcauth_core::db::{CacheSettings, Db, DbCache, DbOptions, MemoryCache};
use xcauth_core::engine::GlobalBackend;
use xcauth_core::vocab::{
    AuthDecision, AuthReply, BackendUrl, RosterReply, Unavailable, UserExists, Via,
};
use xcauth_core::{Engine, ManualClock, Password, Secret};
use xcauth_tests::double::{BackendDouble, Fault, User};

const SECRET: &str = "01234";
/// Token vector 2: user3@domain3, secret 01234, expiry 3601.
const TOKEN: &str = "ABbL+6M8K7HGF/vnfaZZi5XFZQAADhE";

/// The real client, twice: requests go to `patient` (a read timeout no busy machine reaches),
/// except the one after [`Setup::time_out_next`], which goes to `hasty` (200 ms) while the
/// double sits on it for 30 s. So that request times out for certain, soon, and no other does.
#[derive(Debug)]
struct Clients {
    patient: JsxcClient,
    hasty: JsxcClient,
    hasty_next: AtomicBool,
}

impl Clients {
    fn pick(&self) -> &JsxcClient {
        if self.hasty_next.swap(false, Ordering::SeqCst) {
            &self.hasty
        } else {
            &self.patient
        }
    }
}

impl Backend for Clients {
    fn auth(&self, target: &Target, user: &str, password: &Password) -> AuthReply {
        self.pick().auth(target, user, password)
    }

    fn isuser(&self, target: &Target, user: &str) -> UserExists {
        self.pick().isuser(target, user)
    }

    fn sharedroster(&self, target: &Target, user: &str) -> RosterReply {
        self.pick().sharedroster(target, user)
    }
}

struct Setup {
    double: BackendDouble,
    engine: Engine,
    clients: Arc<Clients>,
    clock: Arc<ManualClock>,
}

fn setup(cache: Arc<dyn CredentialCache>) -> Setup {
    let double = BackendDouble::start(SECRET);
    double.add_user(User::new("user3", "pass3"));
    let client = |read_timeout| {
        JsxcClient::new(&ClientOptions {
            connect_timeout: Duration::from_secs(2),
            read_timeout,
            ..ClientOptions::default()
        })
        .unwrap()
    };
    let clients = Arc::new(Clients {
        patient: client(Duration::from_secs(10)),
        hasty: client(Duration::from_millis(200)),
        hasty_next: AtomicBool::new(false),
    });
    let clock = Arc::new(ManualClock::at(0));
    let global = GlobalBackend {
        url: BackendUrl::parse(&double.url()).unwrap(),
        secret: Secret::new(SECRET),
    };
    let engine = Engine::new(global, clients.clone(), clock.clone()).with_cache(cache);
    Setup {
        double,
        engine,
        clients,
        clock,
    }
}

impl Setup {
    fn auth(&self, password: &str) -> AuthDecision {
        self.engine
            .auth("user3", "domain3", &Password::new(password))
    }

    /// The next request times out: the double sits on it far longer than the client waits.
    fn time_out_next(&self) {
        self.double
            .set_fault_times(Fault::Delay(Duration::from_secs(30)), 1);
        self.clients.hasty_next.store(true, Ordering::SeqCst);
    }
}

fn is_timeout(d: &AuthDecision) -> bool {
    matches!(d, AuthDecision::Unavailable(Unavailable::Timeout(_)))
}

/// `(pwhash, firstauth, remoteauth, anyauth)` as stored, the times as the database writes
/// them; `None`: no row. The memory cache keeps no `firstauth`.
type Row = Option<(String, Option<String>, Option<String>, Option<String>)>;

/// Runs the twelve steps, and checks the stored row after each (`firstauth` only where the
/// cache keeps it).
fn run_timeline(s: &Setup, row: &dyn Fn() -> Row, keeps_first: bool, hash_prefix: &str) {
    let ts = |secs: i64| {
        xcauth_core::db::format_timestamp(
            std::time::UNIX_EPOCH + Duration::from_secs(u64::try_from(secs).unwrap()),
        )
    };
    let check = |step: &str, first: i64, remote: i64, any: i64| {
        let (hash, f, r, a) = row().unwrap_or_else(|| panic!("step {step}: no row"));
        assert_eq!(f, keeps_first.then(|| ts(first)), "step {step}: firstauth");
        assert_eq!(
            (r, a),
            (Some(ts(remote)), Some(ts(any))),
            "step {step}: remoteauth, anyauth"
        );
        assert!(
            hash.starts_with(hash_prefix) && hash.len() == 60,
            "step {step}: {hash}"
        );
        hash
    };
    let calls =
        |step: &str, n: usize| assert_eq!(s.double.count("auth"), n, "step {step}: backend calls");

    // 1
    s.clock.set(1);
    s.time_out_next();
    let d = s.auth("pass3");
    assert!(is_timeout(&d), "step 1: {d:?}");
    calls("1", 1);
    assert_eq!(row(), None, "step 1");

    // 2
    assert_eq!(
        s.auth("pass3"),
        AuthDecision::Accepted(Via::Backend),
        "step 2"
    );
    calls("2", 2);
    let h2 = check("2", 1, 1, 1);

    // 3
    s.clock.set(100);
    assert_eq!(
        s.auth("pass3"),
        AuthDecision::Accepted(Via::Cache),
        "step 3"
    );
    calls("3", 2);
    assert_eq!(check("3", 1, 1, 100), h2);

    // 4: HTTP 400 {"result":"error"}, wrong password.
    s.clock.set(200);
    s.double
        .set_fault_times(Fault::Status(400, r#"{"result":"error"}"#.into()), 1);
    assert_eq!(
        s.auth("badpass"),
        AuthDecision::Unavailable(Unavailable::Status(400)),
        "step 4"
    );
    calls("4", 3);
    assert_eq!(check("4", 1, 1, 100), h2);

    // 5: the password was changed in Nextcloud.
    s.clock.set(300);
    assert!(s.double.set_password("user3", "newpass"));
    assert_eq!(
        s.auth("newpass"),
        AuthDecision::Accepted(Via::Backend),
        "step 5"
    );
    calls("5", 4);
    let h5 = check("5", 1, 300, 300);
    assert_ne!(h5, h2, "step 5: new hash");

    // 6: a token, no backend call.
    assert_eq!(s.auth(TOKEN), AuthDecision::Accepted(Via::Token), "step 6");
    calls("6", 4);
    assert_eq!(check("6", 1, 300, 300), h5);

    // 7: any + 3600 = 3900 < 4000, the backend is asked.
    s.clock.set(4000);
    assert_eq!(
        s.auth("newpass"),
        AuthDecision::Accepted(Via::Backend),
        "step 7"
    );
    calls("7", 5);
    check("7", 1, 4000, 4000);

    // 8: timeout, the unreachable path vouches.
    s.clock.set(8000);
    s.time_out_next();
    assert_eq!(
        s.auth("newpass"),
        AuthDecision::Accepted(Via::UnreachableCache),
        "step 8"
    );
    calls("8", 6);
    check("8", 1, 4000, 8000);

    // 9
    s.clock.set(8100);
    assert_eq!(
        s.auth("newpass"),
        AuthDecision::Accepted(Via::Cache),
        "step 9"
    );
    calls("9", 6);
    check("9", 1, 4000, 8100);

    // 10: 45 cache hits, every 1800 s up to 89100.
    for now in (9900..=89_100).step_by(1800) {
        s.clock.set(now);
        assert_eq!(
            s.auth("newpass"),
            AuthDecision::Accepted(Via::Cache),
            "step 10 at {now}"
        );
        check("10", 1, 4000, now);
    }
    calls("10", 6);

    // 11: past the verification TTL; timeout; inside the unreachable TTL.
    s.clock.set(90_900);
    s.time_out_next();
    assert_eq!(
        s.auth("newpass"),
        AuthDecision::Accepted(Via::UnreachableCache),
        "step 11"
    );
    calls("11", 7);
    check("11", 1, 4000, 90_900);

    // 12: past the unreachable TTL too.
    s.clock.set(90_900 + 6 * 86_400);
    s.time_out_next();
    let d = s.auth("newpass");
    assert!(is_timeout(&d), "step 12: {d:?}");
    calls("12", 8);
    check("12", 1, 4000, 90_900);
}

fn db_row(db: &Db) -> Row {
    db.run(|c| {
        let mut stmt = c.prepare(
            "SELECT pwhash, firstauth, remoteauth, anyauth FROM authcache WHERE jid = 'user3@domain3'",
        )?;
        let mut rows = stmt.query([])?;
        match rows.next()? {
            Some(r) => Ok(Some((r.get(0)?, r.get(1)?, r.get(2)?, r.get(3)?))),
            None => Ok(None),
        }
    })
    .unwrap()
}

fn file_db(dir: &Path) -> Arc<Db> {
    Arc::new(Db::open(&dir.join("xcauth.sqlite3"), &DbOptions::default()).unwrap())
}

#[test]
fn timeline_with_the_db_cache() {
    let dir = tempfile::tempdir().unwrap();
    let db = file_db(dir.path());
    let settings = CacheSettings {
        bcrypt_cost: 4,
        ..CacheSettings::default()
    };
    let s = setup(Arc::new(DbCache::new(db.clone(), settings)));
    run_timeline(&s, &|| db_row(&db), true, "$2b$04$");
}

#[test]
fn timeline_with_the_memory_cache_and_six_rounds() {
    // As in the spec: memory storage, 6 rounds. Its entries are read through the cache,
    // their times (Unix microseconds) written as the database would.
    let settings = CacheSettings {
        bcrypt_cost: 6,
        ..CacheSettings::default()
    };
    let cache = Arc::new(MemoryCache::new(settings));
    let s = setup(cache.clone());
    let micros = |t: Option<i64>| {
        t.map(|t| {
            xcauth_core::db::format_timestamp(
                std::time::UNIX_EPOCH + Duration::from_micros(u64::try_from(t).unwrap()),
            )
        })
    };
    let row = || {
        cache
            .entry("user3@domain3")
            .map(|(hash, remote, any)| (hash, None, micros(remote), micros(any)))
    };
    run_timeline(&s, &row, false, "$2b$06$");
    assert_eq!(cache.len(), 1);
}

#[test]
fn no_row_unless_the_backend_says_success() {
    let dir = tempfile::tempdir().unwrap();
    let db = file_db(dir.path());
    let settings = CacheSettings {
        bcrypt_cost: 4,
        ..CacheSettings::default()
    };
    let s = setup(Arc::new(DbCache::new(db.clone(), settings)));
    s.clock.set(1);
    s.time_out_next();
    let d = s.auth("pass3");
    assert!(is_timeout(&d), "{d:?}");
    assert_eq!(db_row(&db), None, "timeout");
    let faults = [
        Fault::Status(404, "Not Found".into()),
        Fault::Status(500, r#"{"result":"failure"}"#.into()),
        Fault::Json200(r#"{"foo":"bar"}"#.into()),
        Fault::Json200(r#"{"result":"bar"}"#.into()),
        Fault::Status(400, r#"{"result":"error"}"#.into()),
    ];
    for fault in faults {
        s.double.set_fault_times(fault.clone(), 1);
        let d = s.auth("pass3");
        assert!(!d.is_accepted(), "{fault:?}: {d:?}");
        assert_eq!(db_row(&db), None, "{fault:?}");
    }
    assert_eq!(s.auth("pass3"), AuthDecision::Accepted(Via::Backend));
    let n: i64 = db
        .run(|c| c.query_row("SELECT count(*) FROM authcache", [], |r| r.get(0)))
        .unwrap();
    assert_eq!(n, 1);
}

#[test]
fn a_changed_password_evicts_the_entry() {
    let dir = tempfile::tempdir().unwrap();
    let db = file_db(dir.path());
    let settings = CacheSettings {
        bcrypt_cost: 4,
        ..CacheSettings::default()
    };
    let s = setup(Arc::new(DbCache::new(db.clone(), settings)));
    s.clock.set(1000);
    assert_eq!(s.auth("pass3"), AuthDecision::Accepted(Via::Backend));
    // A wrong guess is rejected by the backend but cannot evict the entry.
    s.clock.set(1000 + 3601);
    assert_eq!(s.auth("guess"), AuthDecision::Rejected);
    assert!(db_row(&db).is_some());
    // The password is changed in Nextcloud: the old one is rejected and evicted.
    assert!(s.double.set_password("user3", "changed"));
    assert_eq!(s.auth("pass3"), AuthDecision::Rejected);
    assert_eq!(db_row(&db), None);
    // xcauth 2 would now accept the old password while the backend is down;
    // here the backend is asked and nothing vouches.
    s.double.set_fault(Fault::Drop);
    assert!(matches!(s.auth("pass3"), AuthDecision::Unavailable(_)));
    s.double.set_fault(Fault::None);
    // Four logins reached the backend; the last one twice, because a reused keep-alive
    // connection that closes without an answer is retried once on a new connection.
    assert_eq!(s.double.count("auth"), 5);
}

/// Timing for BENCHMARKS.md: a cache miss answered by the backend over HTTP
/// (local double, keep-alive) and stored at cost 12, against a cache hit.
/// `cargo test --release -p xcauth-tests --test e2e cache_timeline::bench -- --ignored --nocapture`
#[test]
#[ignore = "benchmark"]
fn bench_miss_with_http_backend_vs_hit() {
    let dir = tempfile::tempdir().unwrap();
    let db = file_db(dir.path());
    let s = setup(Arc::new(DbCache::new(db, CacheSettings::default())));
    for i in 0..40 {
        s.double.add_user(User::new(&format!("u{i}"), "pw"));
    }
    s.clock.set(1_000);
    let time = |user: &str| {
        let t = std::time::Instant::now();
        let d = s.engine.auth(user, "example.org", &Password::new("pw"));
        (t.elapsed(), d)
    };
    let (mut miss, mut hit) = (Vec::new(), Vec::new());
    for i in 0..40 {
        let (t, d) = time(&format!("u{i}"));
        assert_eq!(d, AuthDecision::Accepted(Via::Backend));
        miss.push(t);
        let (t, d) = time(&format!("u{i}"));
        assert_eq!(d, AuthDecision::Accepted(Via::Cache));
        hit.push(t);
    }
    // HTTP alone: an uncached user with a wrong password (no bcrypt at all).
    let mut http = Vec::new();
    for i in 0..40 {
        let t = std::time::Instant::now();
        let d = s
            .engine
            .auth(&format!("v{i}"), "example.org", &Password::new("wrong"));
        http.push(t.elapsed());
        assert_eq!(d, AuthDecision::Rejected);
    }
    // A wrong password for a cached user: check (verify) + noauth + forget (verify).
    let mut wrong = Vec::new();
    for i in 0..10 {
        let t = std::time::Instant::now();
        let d = s
            .engine
            .auth(&format!("u{i}"), "example.org", &Password::new("wrong"));
        wrong.push(t.elapsed());
        assert_eq!(d, AuthDecision::Rejected);
    }
    let median = |mut v: Vec<Duration>| {
        v.sort();
        v[v.len() / 2]
    };
    println!(
        "cache miss + HTTP backend + bcrypt-12 store: {:?}",
        median(miss)
    );
    println!(
        "cache hit (bcrypt-12 verify):                {:?}",
        median(hit)
    );
    println!(
        "uncached miss, HTTP noauth (no bcrypt):      {:?}",
        median(http)
    );
    println!(
        "wrong password for a cached user:            {:?}",
        median(wrong)
    );
}
