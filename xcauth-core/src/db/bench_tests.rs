//! Timings for BENCHMARKS.md. Run in release mode:
//! `cargo test --release -p xcauth-core db::bench -- --ignored --nocapture`.
// Benchmarks measure real time.
#![allow(clippy::disallowed_methods)]

use std::sync::Arc;
use std::time::{Duration, Instant};

use super::tests::ScriptedBackend;
use super::*;
use crate::cache::CredentialCache;
use crate::clock::ManualClock;
use crate::engine::Engine;
use crate::engine::GlobalBackend;
use crate::secret::{Password, Secret};
use crate::vocab::{AuthDecision, AuthReply, BackendUrl, Via};

const COST: u32 = 12;

fn median(mut v: Vec<Duration>) -> Duration {
    v.sort();
    v[v.len() / 2]
}

fn time<T>(runs: usize, mut f: impl FnMut() -> T) -> Duration {
    std::hint::black_box(f()); // warm-up
    median(
        (0..runs)
            .map(|_| {
                let t = Instant::now();
                std::hint::black_box(f());
                t.elapsed()
            })
            .collect(),
    )
}

fn once<T>(f: impl FnOnce() -> T) -> Duration {
    let t = Instant::now();
    std::hint::black_box(f());
    t.elapsed()
}

fn engine_with(cache: Arc<dyn CredentialCache>) -> (Engine, Arc<ScriptedBackend>) {
    let backend = Arc::new(ScriptedBackend::default());
    let clock = Arc::new(ManualClock::at(1_700_000_000));
    let global = GlobalBackend {
        url: BackendUrl::parse("https://cloud.invalid/").unwrap(),
        secret: Secret::new("s"),
    };
    (
        Engine::new(global, backend.clone(), clock).with_cache(cache),
        backend,
    )
}

#[test]
#[ignore = "benchmark: run with --release -- --ignored --nocapture"]
fn cached_auth_vs_bcrypt_verify() {
    let runs = 31;
    let settings = CacheSettings {
        bcrypt_cost: COST,
        ..CacheSettings::default()
    };
    let pw = Password::new("correct horse battery staple");
    let hash = bcrypt::hash_with_result(pw.expose(), COST)
        .unwrap()
        .format_for_version(bcrypt::Version::TwoB);

    let dir = tempfile::tempdir().unwrap();
    let db = Arc::new(Db::open(&dir.path().join("bench.sqlite3"), &DbOptions::default()).unwrap());
    let (engine, backend) = engine_with(Arc::new(DbCache::new(db.clone(), settings)));
    backend.expect(AuthReply::Accepted { uid: None });
    assert!(engine.auth("u", "d", &pw).is_accepted());

    let mem = Arc::new(MemoryCache::new(settings));
    let (mem_engine, mem_backend) = engine_with(mem);
    mem_backend.expect(AuthReply::Accepted { uid: None });
    assert!(mem_engine.auth("u", "d", &pw).is_accepted());

    // Interleaved, so that load from other processes hits all three alike.
    let (mut verify, mut db_hit, mut mem_hit) = (Vec::new(), Vec::new(), Vec::new());
    for _ in 0..runs {
        verify.push(once(|| bcrypt::verify(pw.expose(), &hash).unwrap()));
        db_hit.push(once(|| {
            assert_eq!(
                engine.auth("u", "d", &pw),
                AuthDecision::Accepted(Via::Cache)
            );
        }));
        mem_hit.push(once(|| mem_engine.auth("u", "d", &pw)));
    }
    let (verify, db_hit, mem_hit) = (median(verify), median(db_hit), median(mem_hit));

    // A miss: the (instant, scripted) backend accepts, the password is hashed and stored.
    let mut i = 0;
    let miss = time(runs, || {
        i += 1;
        backend.expect(AuthReply::Accepted { uid: None });
        engine.auth(&format!("new{i}"), "d", &pw)
    });

    // The database part alone: row read + anyauth update, and a connection open.
    let now = std::time::UNIX_EPOCH + Duration::from_secs(1_700_000_000);
    let sql_hit = time(201, || {
        db.run(|c| {
            c.prepare_cached("SELECT pwhash, remoteauth, anyauth FROM authcache WHERE jid = ?1")?
                .query_row(["u@d"], |r| r.get::<_, String>(0))
        })
        .unwrap();
        db.run(|c| {
            c.prepare_cached("UPDATE authcache SET anyauth = ?2 WHERE jid = ?1")?
                .execute(rusqlite::params!["u@d", format_timestamp(now)])
        })
        .unwrap()
    });
    let path = dir.path().join("bench.sqlite3");
    let open = time(201, || {
        let c = rusqlite::Connection::open(&path).unwrap();
        c.busy_timeout(Duration::from_secs(5)).unwrap();
        c.query_row("SELECT count(*) FROM authcache", [], |r| r.get::<_, i64>(0))
            .unwrap()
    });

    let pct = |d: Duration| (d.as_secs_f64() / verify.as_secs_f64() - 1.0) * 100.0;
    println!("bcrypt verify, cost {COST}:              {verify:>12.3?}");
    println!(
        "cached auth via engine, db cache:      {db_hit:>12.3?}  ({:+.2}% vs verify)",
        pct(db_hit)
    );
    println!(
        "cached auth via engine, memory cache:  {mem_hit:>12.3?}  ({:+.2}% vs verify)",
        pct(mem_hit)
    );
    println!("miss + instant backend + hash + store: {miss:>12.3?}");
    println!("sqlite read + anyauth update (pooled): {sql_hit:>12.3?}");
    println!("opening a new connection + 1 query:    {open:>12.3?}");
}
