//! The worker of the multi-process database test (`db-stress-worker`, started 8 times at once
//! by the end-to-end test `in_process::db_stress`): mixed logins (cache stores, hits, misses,
//! revocations) on one shared database file with its own `Db` handle, as saslauthd workers,
//! Apache threads and xcauthd do. It reports what happened on one `STRESS-RESULT` line and
//! fails when a login was decided wrongly or the database code logged a problem.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::missing_panics_doc)] // test support

use std::collections::HashMap;
use std::path::Path;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{Arc, Mutex, OnceLock};
use std::time::{Duration, SystemTime};

use xcauth_core::backend::{Backend, Target};
use xcauth_core::cache::{CredentialCache, Lookup};
use xcauth_core::db::{CacheSettings, Db, DbCache, DbOptions};
use xcauth_core::engine::GlobalBackend;
use xcauth_core::vocab::{
    AuthDecision, AuthReply, BackendUrl, ErrorChain, RosterReply, Timeout, Unavailable, UserExists,
};
use xcauth_core::{Engine, Password, Secret, SystemClock};

/// Logins per worker.
pub const AUTHS: usize = 500;
/// Users `u0` … `u11` in [`DOMAIN`].
pub const USERS: usize = 12;
/// Every this many logins a worker also stores an entry only it writes (`wWnI@own.example`,
/// password `own`).
pub const OWN_EVERY: usize = 50;
/// The users' domain.
pub const DOMAIN: &str = "stress.example";

/// The one password the fake backend accepts for user `uN`.
pub fn good(user: usize) -> String {
    format!("good-{user}")
}

/// Short TTLs so that re-verification and the unreachable path happen during the run; cost 4
/// for speed.
pub fn settings() -> CacheSettings {
    CacheSettings {
        query_ttl: Duration::from_secs(2),
        verification_ttl: Duration::from_secs(4),
        unreachable_ttl: Duration::from_secs(120),
        bcrypt_cost: 4,
    }
}

/// Accepts `good-N` for user `uN`, rejects anything else, and is "unavailable" for every 7th
/// call.
#[derive(Debug, Default)]
struct FakeCloud {
    calls: AtomicUsize,
}

impl Backend for FakeCloud {
    fn auth(&self, _target: &Target, user: &str, password: &Password) -> AuthReply {
        let n = self.calls.fetch_add(1, Ordering::SeqCst);
        if n % 7 == 6 {
            return AuthReply::Unavailable(Unavailable::Timeout(Timeout::Exchange(
                ErrorChain::new("fake"),
            )));
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

/// Counts warnings and errors logged by the database code, and any log line mentioning a
/// locked database.
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
            // A handled retry ("busy (database is locked), retry n/8"): counted, not a
            // problem. Only a failure that gets past the retries is.
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

/// What one worker did.
#[derive(Debug)]
pub struct Outcome {
    /// `STRESS-RESULT worker=… errors=… busy_retries=… [tally]`.
    pub line: String,
    /// Wrong decisions and logged problems (the run failed unless both are empty).
    pub wrong: Vec<String>,
}

/// Runs worker number `worker` on the database at `path` (installs this process's logger).
pub fn run_worker(path: &Path, worker: usize) -> Outcome {
    let problems = problems();
    let db = Arc::new(Db::open(path, &DbOptions::default()).expect("open the shared database"));
    let cache = Arc::new(DbCache::new(db, settings()));
    let global = GlobalBackend {
        url: BackendUrl::parse("https://fake.invalid/").unwrap(),
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
                    wrong.push(format!("auth {i}: bad password accepted via {via:?}"));
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
    wrong.extend(problems.lines.lock().unwrap().iter().cloned());
    let mut tally: Vec<_> = tally.into_iter().collect();
    tally.sort_unstable();
    let retries = problems.busy_retries.load(Ordering::Relaxed);
    Outcome {
        line: format!(
            "STRESS-RESULT worker={worker} auths={AUTHS} errors={} busy_retries={retries} {tally:?}",
            wrong.len()
        ),
        wrong,
    }
}
