//! Multi-process safety of the shared database: 8 processes × 500 mixed
//! logins (cache stores, hits, misses, revocations) on one file, each with
//! its own `Db` handle, as saslauthd workers, Apache threads and xcauthd do.
//! No error may surface (no "database is locked", no cache warning), no
//! store may be lost, and every row must be consistent afterwards.
//!
//! The children are this test binary itself, re-executed with
//! `--exact stress_worker` and the database path in an environment variable.
#![allow(clippy::unwrap_used, clippy::expect_used)] // tests: a failed unwrap is a failed test

use std::collections::HashMap;
use std::process::{Command, Stdio};
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{Arc, Mutex, OnceLock};
use std::time::{Duration, Instant, SystemTime};

use xcauth_core::backend::{AuthReply, Backend, RosterReply, Target, Unavailable, UserExists};
use xcauth_core::cache::{CredentialCache, Lookup};
use xcauth_core::db::{parse_timestamp, CacheSettings, Db, DbCache, DbOptions};
use xcauth_core::domains::GlobalBackend;
use xcauth_core::{AuthDecision, Engine, Password, Secret, SystemClock};

const DB_ENV: &str = "XCAUTH_DB_STRESS_DB";
const WORKER_ENV: &str = "XCAUTH_DB_STRESS_WORKER";
const PROCESSES: usize = 8;
const AUTHS: usize = 500;
const USERS: usize = 12;
/// Every this many logins a worker also stores an entry only it writes.
const OWN_EVERY: usize = 50;
const DOMAIN: &str = "stress.example";

fn good(user: usize) -> String {
    format!("good-{user}")
}

/// Short TTLs so that re-verification and the unreachable path happen
/// during the run; cost 4 for speed.
fn settings() -> CacheSettings {
    CacheSettings {
        query_ttl: Duration::from_secs(2),
        verification_ttl: Duration::from_secs(4),
        unreachable_ttl: Duration::from_secs(120),
        bcrypt_cost: 4,
    }
}

/// Accepts `good-N` for user `uN`, rejects anything else, and is
/// "unavailable" for every 7th call.
#[derive(Debug, Default)]
struct FakeCloud {
    calls: AtomicUsize,
}

impl Backend for FakeCloud {
    fn auth(&self, _target: &Target, user: &str, password: &Password) -> AuthReply {
        let n = self.calls.fetch_add(1, Ordering::SeqCst);
        if n % 7 == 6 {
            return AuthReply::Unavailable(Unavailable::Timeout("fake".into()));
        }
        let idx: usize = user.trim_start_matches('u').parse().unwrap();
        if password.expose() == good(idx) {
            AuthReply::Accepted {
                uid: Some(user.to_owned()),
            }
        } else {
            AuthReply::Rejected
        }
    }

    fn isuser(&self, _: &Target, _: &str) -> UserExists {
        unreachable!()
    }

    fn sharedroster(&self, _: &Target, _: &str) -> RosterReply {
        unreachable!()
    }
}

/// Counts warnings and errors logged by the database code, and any log line
/// mentioning a locked database.
#[derive(Default)]
struct Problems {
    lines: Mutex<Vec<String>>,
    busy_retries: AtomicUsize,
}

impl log::Log for Problems {
    fn enabled(&self, _: &log::Metadata<'_>) -> bool {
        true
    }

    fn log(&self, r: &log::Record<'_>) {
        let text = r.args().to_string();
        let from_db = r.target().starts_with("xcauth_core::db");
        if from_db && r.level() > log::Level::Warn && text.contains("busy") {
            // A handled retry ("busy (database is locked), retry n/8"): counted,
            // not a problem. Only a failure that gets past the retries is.
            self.busy_retries.fetch_add(1, Ordering::Relaxed);
            return;
        }
        if (from_db && r.level() <= log::Level::Warn) || text.contains("locked") {
            self.lines
                .lock()
                .unwrap()
                .push(format!("{} {}: {text}", r.level(), r.target()));
        }
    }

    fn flush(&self) {}
}

fn problems() -> &'static Problems {
    static P: OnceLock<&'static Problems> = OnceLock::new();
    P.get_or_init(|| {
        let p: &'static Problems = Box::leak(Box::default());
        log::set_logger(p).unwrap();
        log::set_max_level(log::LevelFilter::Debug);
        p
    })
}

/// A tiny deterministic generator (64-bit LCG), seeded per worker.
struct Lcg(u64);

impl Lcg {
    fn below(&mut self, n: u64) -> u64 {
        self.0 = self
            .0
            .wrapping_mul(6_364_136_223_846_793_005)
            .wrapping_add(1_442_695_040_888_963_407);
        (self.0 >> 33) % n
    }
}

/// The child's body; a no-op in the parent process.
#[test]
fn stress_worker() {
    let (Ok(path), Ok(worker)) = (std::env::var(DB_ENV), std::env::var(WORKER_ENV)) else {
        return;
    };
    let worker: usize = worker.parse().unwrap();
    let problems = problems();
    let db =
        Arc::new(Db::open(path.as_ref(), &DbOptions::default()).expect("open the shared database"));
    let cache = Arc::new(DbCache::new(db, settings()));
    let global = GlobalBackend {
        url: "https://fake.invalid/".into(),
        secret: Secret::new("s"),
    };
    let engine = Engine::new(
        global,
        Arc::new(FakeCloud::default()),
        Arc::new(SystemClock),
    )
    .with_cache(cache.clone());

    let mut rng = Lcg(0x9e37_79b9_7f4a_7c15 ^ (worker as u64 + 1));
    let mut tally: HashMap<&'static str, usize> = HashMap::new();
    let mut wrong = Vec::new();
    for i in 0..AUTHS {
        let user = usize::try_from(rng.below(USERS as u64)).unwrap();
        let name = format!("u{user}");
        let jid = format!("{name}@{DOMAIN}");
        let roll = rng.below(100);
        if roll < 55 {
            match engine.auth(&name, DOMAIN, &Password::new(good(user))) {
                AuthDecision::Accepted(via) => *tally.entry(via.as_str()).or_default() += 1,
                AuthDecision::Unavailable(_) => *tally.entry("good: unavailable").or_default() += 1,
                AuthDecision::Rejected => wrong.push(format!("auth {i}: good password rejected")),
            }
        } else if roll < 80 {
            match engine.auth(&name, DOMAIN, &Password::new(format!("bad-{user}-{i}"))) {
                AuthDecision::Accepted(via) => {
                    wrong.push(format!("auth {i}: bad password accepted via {via:?}"))
                }
                _ => *tally.entry("bad: refused").or_default() += 1,
            }
        } else if roll < 90 {
            // The password was revoked: the backend's noauth evicts the entry.
            cache.forget_if_matches(&jid, &Password::new(good(user)));
            *tally.entry("revoked").or_default() += 1;
        } else {
            let hit = cache
                .check(
                    &jid,
                    &Password::new(good(user)),
                    SystemTime::now(),
                    Lookup::Unreachable,
                )
                .is_hit();
            *tally
                .entry(if hit { "probe: hit" } else { "probe: miss" })
                .or_default() += 1;
        }
        if i % OWN_EVERY == 0 {
            cache.store(
                &format!("w{worker}n{i}@own.example"),
                &Password::new("own"),
                SystemTime::now(),
            );
        }
    }
    let logged = problems.lines.lock().unwrap().clone();
    let errors = wrong.len() + logged.len();
    let mut tally: Vec<_> = tally.into_iter().collect();
    tally.sort_unstable();
    let retries = problems.busy_retries.load(Ordering::Relaxed);
    println!("STRESS-RESULT worker={worker} auths={AUTHS} errors={errors} busy_retries={retries} {tally:?}");
    assert!(wrong.is_empty(), "{wrong:#?}");
    assert!(logged.is_empty(), "{logged:#?}");
}

#[test]
fn eight_processes_share_one_database() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("xcauth.sqlite3");
    let exe = std::env::current_exe().unwrap();
    let started = Instant::now();
    let wall_start = SystemTime::now() - Duration::from_secs(1);
    // Nobody creates the file first: the children race to create it too.
    let children: Vec<_> = (0..PROCESSES)
        .map(|w| {
            Command::new(&exe)
                .args([
                    "--exact",
                    "stress_worker",
                    "--nocapture",
                    "--test-threads=1",
                ])
                .env(DB_ENV, &path)
                .env(WORKER_ENV, w.to_string())
                .stdout(Stdio::piped())
                .stderr(Stdio::piped())
                .spawn()
                .unwrap()
        })
        .collect();
    let mut results = Vec::new();
    for child in children {
        let out = child.wait_with_output().unwrap();
        let stdout = String::from_utf8_lossy(&out.stdout).into_owned();
        assert!(
            out.status.success(),
            "worker failed: {}\n{stdout}\n{}",
            out.status,
            String::from_utf8_lossy(&out.stderr)
        );
        let line = stdout
            .lines()
            .find_map(|l| l.find("STRESS-RESULT").map(|at| &l[at..]))
            .unwrap_or_else(|| panic!("no result line: {stdout}"));
        results.push(line.to_owned());
    }
    let elapsed = started.elapsed();
    for line in &results {
        println!("{line}");
        assert!(line.contains("errors=0 "), "{line}");
    }
    println!("{PROCESSES} processes x {AUTHS} auths in {elapsed:?}");
    let all = results.concat();
    for kind in [
        "\"cache\"",
        "\"backend\"",
        "\"cache (backend unreachable)\"",
        "\"revoked\"",
    ] {
        assert!(all.contains(kind), "the mix never produced {kind}: {all}");
    }

    let db = Db::open(&path, &DbOptions::default()).unwrap();
    let integrity: String = db
        .run(|c| c.query_row("PRAGMA integrity_check", [], |r| r.get(0)))
        .unwrap();
    assert_eq!(integrity, "ok");
    let rows: Vec<(String, Option<String>, String, String, String)> = db
        .run(|c| {
            let mut stmt =
                c.prepare("SELECT jid, pwhash, firstauth, remoteauth, anyauth FROM authcache")?;
            let rows = stmt.query_map([], |r| {
                Ok((r.get(0)?, r.get(1)?, r.get(2)?, r.get(3)?, r.get(4)?))
            })?;
            rows.collect()
        })
        .unwrap();

    // No lost update: every entry a worker wrote only for itself is there.
    let own = rows
        .iter()
        .filter(|r| r.0.ends_with("@own.example"))
        .count();
    assert_eq!(own, PROCESSES * AUTHS.div_ceil(OWN_EVERY));

    // Every row is consistent: a known jid, a cost-4 `$2b$` hash of that
    // user's password (the only one ever accepted), times that parse and lie
    // within the run. (firstauth <= remoteauth is not an invariant across
    // processes: each takes "now" before waiting for the write lock.)
    let wall_end = SystemTime::now() + Duration::from_secs(1);
    let cache = DbCache::new(
        Arc::new(db),
        CacheSettings {
            bcrypt_cost: 4,
            ..CacheSettings::default()
        },
    );
    let now = SystemTime::now();
    for (jid, hash, first, remote, any) in &rows {
        let hash = hash
            .as_deref()
            .unwrap_or_else(|| panic!("{jid}: NULL pwhash"));
        assert!(
            hash.starts_with("$2b$04$") && hash.len() == 60,
            "{jid}: {hash}"
        );
        for t in [first, remote, any] {
            let parsed =
                parse_timestamp(t).unwrap_or_else(|| panic!("{jid}: unreadable time {t:?}"));
            assert!(
                parsed >= wall_start && parsed <= wall_end,
                "{jid}: {t} outside the run"
            );
        }
        let password = match jid.strip_suffix(&format!("@{DOMAIN}")) {
            Some(user) => good(user.trim_start_matches('u').parse().unwrap()),
            None => "own".to_owned(),
        };
        assert!(
            cache
                .check(jid, &Password::new(password), now, Lookup::Unreachable)
                .is_hit(),
            "{jid}: hash does not match"
        );
        assert!(
            !cache
                .check(jid, &Password::new("bad"), now, Lookup::Unreachable)
                .is_hit(),
            "{jid}"
        );
    }
    assert!(elapsed < Duration::from_secs(60), "took {elapsed:?}");
}
