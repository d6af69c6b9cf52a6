//! Multi-process safety of the shared database: 8 processes × 500 mixed
//! logins (cache stores, hits, misses, revocations) on one file, each with
//! its own `Db` handle, as saslauthd workers, Apache threads and xcauthd do.
//! No error may surface (no "database is locked", no cache warning), no
//! store may be lost, and every row must be consistent afterwards.
//!
//! The children are the `db-stress-worker` program of this crate
//! (`xcauth_tests::db_stress`), given the database path and their number.
#![allow(clippy::unwrap_used, clippy::expect_used)] // tests: a failed unwrap is a failed test

use std::process::{Command, Stdio};
use std::sync::Arc;
use std::time::{Duration, Instant, SystemTime};

use xcauth_core::cache::{CredentialCache, Lookup};
use xcauth_core::db::{parse_timestamp, CacheSettings, Db, DbCache, DbOptions};
use xcauth_core::Password;
use xcauth_tests::db_stress::{good, AUTHS, DOMAIN, OWN_EVERY};

const PROCESSES: usize = 8;

#[test]
fn eight_processes_share_one_database() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("xcauth.sqlite3");
    let started = Instant::now();
    let wall_start = SystemTime::now() - Duration::from_secs(1);
    // Nobody creates the file first: the children race to create it too.
    let children: Vec<_> = (0..PROCESSES)
        .map(|w| {
            Command::new(env!("CARGO_BIN_EXE_db-stress-worker"))
                .arg(&path)
                .arg(w.to_string())
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
        "\"cache_backend_unreachable\"",
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
    // Only a gross slow-down is caught here (the correctness checks above are the test's
    // subject): the run takes about 17 s alone on the reference machine and went past 60 s at
    // a load of 12 on its two cores, where its processes get a sixth of a core each. Five
    // minutes leaves room for a machine even busier than that, and still fails a run more
    // than an order of magnitude slower than it is alone.
    assert!(elapsed < Duration::from_secs(300), "took {elapsed:?}");
}
