//! The `throttle` table: [`crate::throttle`]'s state shared by every process that uses the
//! database. Each change is one `BEGIN IMMEDIATE` read-modify-write, so processes counting the
//! same key at once never lose a failure. The table is created by its first write.

use std::sync::Arc;

use rusqlite::{params, Connection, OptionalExtension};

use super::{schema, Db};
use crate::throttle::{Entry, ThrottleStore};

/// The shared throttle state in `db`, bounded to `max_entries` rows.
#[derive(Debug)]
pub struct DbThrottle {
    db: Arc<Db>,
    max_entries: usize,
}

impl DbThrottle {
    /// The store in `db`.
    pub fn new(db: Arc<Db>, max_entries: usize) -> Self {
        Self {
            db,
            max_entries: max_entries.max(1),
        }
    }
}

pub(crate) fn no_table(e: &rusqlite::Error) -> bool {
    e.to_string().contains("no such table")
}

fn read(conn: &Connection, key: &str, now: i64) -> rusqlite::Result<Option<Entry>> {
    let entry = conn
        .query_row(
            "SELECT failures, since, locked_until, lockouts, expires FROM throttle \
             WHERE key = ?1 AND expires > ?2",
            params![key, now],
            |r| {
                Ok(Entry {
                    failures: r.get(0)?,
                    since: r.get(1)?,
                    locked_until: r.get(2)?,
                    lockouts: r.get(3)?,
                    expires: r.get(4)?,
                })
            },
        )
        .optional();
    match entry {
        Err(e) if no_table(&e) => Ok(None),
        other => other,
    }
}

impl ThrottleStore for DbThrottle {
    fn get(&self, key: &str, now: i64) -> Result<Option<Entry>, String> {
        self.db
            .run(|c| read(c, key, now))
            .map_err(|e| e.to_string())
    }

    fn update(
        &self,
        key: &str,
        now: i64,
        f: &mut dyn FnMut(Option<Entry>) -> Option<Entry>,
    ) -> Result<Option<Entry>, String> {
        let max = i64::try_from(self.max_entries).unwrap_or(i64::MAX);
        self.db
            .transaction(|tx| {
                let old = read(tx, key, now)?;
                let new = f(old);
                match new {
                    None if old.is_none() => {}
                    None => {
                        tx.execute("DELETE FROM throttle WHERE key = ?1", [key])?;
                    }
                    Some(e) => {
                        schema::create_throttle(tx)?;
                        if old.is_none() {
                            // A new key: make room, expired rows first, then the rows that
                            // expire soonest.
                            tx.execute("DELETE FROM throttle WHERE expires <= ?1", [now])?;
                            let rows: i64 =
                                tx.query_row("SELECT count(*) FROM throttle", [], |r| r.get(0))?;
                            if rows >= max {
                                tx.execute(
                                    "DELETE FROM throttle WHERE key IN (SELECT key FROM \
                                     throttle WHERE key <> ?1 ORDER BY expires LIMIT ?2)",
                                    params![key, rows - max + 1],
                                )?;
                            }
                        }
                        tx.execute(
                            "INSERT OR REPLACE INTO throttle \
                             (key, failures, since, locked_until, lockouts, expires) \
                             VALUES (?1, ?2, ?3, ?4, ?5, ?6)",
                            params![
                                key,
                                e.failures,
                                e.since,
                                e.locked_until,
                                e.lockouts,
                                e.expires
                            ],
                        )?;
                    }
                }
                Ok(new)
            })
            .map_err(|e| e.to_string())
    }

    fn put(&self, _key: &str, _entry: Option<Entry>, _now: i64) {
        // The database is written by `update` only; `put` is for memory copies.
    }
}

#[cfg(test)]
mod tests {
    use std::sync::Arc;

    use super::*;
    use crate::clock::{Clock, ManualClock};
    use crate::db::admin;
    use crate::db::DbOptions;
    use crate::throttle::{MemoryStore, Throttle, ThrottleSettings};

    fn throttle(db: &Arc<Db>, clock: &Arc<ManualClock>, max: usize) -> Throttle {
        let settings = ThrottleSettings {
            max_entries: max,
            ..ThrottleSettings::default()
        };
        Throttle::new(
            settings,
            clock.clone(),
            Arc::new(MemoryStore::new(max)),
            Some(Arc::new(DbThrottle::new(db.clone(), max))),
        )
    }

    const ALICE: &str = "user:alice@example.org";

    /// Two processes (two handles on one file, each with its own memory copy) count together,
    /// see each other's lock-outs, and an administrator's clear lifts it for both.
    #[test]
    fn two_handles_on_one_file_count_together() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("x.sqlite3");
        let a = Arc::new(Db::open(&path, &DbOptions::default()).unwrap());
        let b = Arc::new(Db::open(&path, &DbOptions::default()).unwrap());
        let clock = Arc::new(ManualClock::at(1_000));
        let (ta, tb) = (throttle(&a, &clock, 100), throttle(&b, &clock, 100));
        for i in 0..5 {
            let t = if i % 2 == 0 { &ta } else { &tb };
            assert_eq!(t.locked(ALICE, None), None, "after {i} failures");
            t.failed(ALICE, "alice@example.org", Some("192.0.2.7"));
        }
        assert_eq!(ta.locked(ALICE, None).map(|l| l.seconds), Some(60));
        assert_eq!(tb.locked(ALICE, None).map(|l| l.seconds), Some(60));
        let rows = admin::list_lockouts(&a, clock.unix_seconds()).unwrap();
        assert_eq!(rows[0].key, ALICE);
        assert!(
            rows[0].to_string().contains("locked for 60s more"),
            "{}",
            rows[0]
        );
        assert!(rows.iter().any(|r| r.key == "remote:192.0.2.7"));
        let cleared = admin::clear_lockouts(&b, Some("Alice@Example.org")).unwrap();
        assert_eq!(cleared.deleted, 2, "the user's key and its user part's key");
        assert_eq!(
            ta.locked(ALICE, None),
            None,
            "the memory copy follows the database"
        );
        assert!(matches!(
            admin::clear_lockouts(&b, Some("alice@example.org")),
            Err(admin::AdminError::NotFound(_))
        ));
        assert_eq!(admin::clear_lockouts(&b, None).unwrap().deleted, 1);
    }

    #[test]
    fn a_success_in_one_process_resets_the_other() {
        let db = Arc::new(Db::open_memory().unwrap());
        let clock = Arc::new(ManualClock::at(0));
        let (ta, tb) = (throttle(&db, &clock, 100), throttle(&db, &clock, 100));
        for _ in 0..4 {
            ta.failed(ALICE, "a", None);
        }
        tb.succeeded(ALICE);
        ta.failed(ALICE, "a", None);
        assert_eq!(ta.locked(ALICE, None), None);
    }

    #[test]
    fn expired_rows_are_pruned_and_the_table_is_bounded() {
        let db = Arc::new(Db::open_memory().unwrap());
        let clock = Arc::new(ManualClock::at(0));
        let t = throttle(&db, &clock, 5);
        let count = || -> i64 {
            db.run(|c| c.query_row("SELECT count(*) FROM throttle", [], |r| r.get(0)))
                .unwrap()
        };
        for _ in 0..5 {
            t.failed(ALICE, "a", None);
        }
        for i in 0..20 {
            clock.advance(1);
            t.failed(&format!("user:u{i}@example.org"), "u", None);
            assert!(count() <= 5, "{}", count());
        }
        assert!(
            t.locked(ALICE, None).is_some(),
            "the lock-out outlives one-off failures"
        );
        clock.advance(2 * 3600);
        t.failed("user:late@example.org", "l", None);
        assert_eq!(
            count(),
            2,
            "expired rows are gone (user:late and local:late stay)"
        );
    }

    #[test]
    fn a_file_without_the_table_reads_as_empty_and_gets_it_on_first_failure() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("x.sqlite3");
        let db = Arc::new(Db::open(&path, &DbOptions::default()).unwrap());
        let store = DbThrottle::new(db.clone(), 10);
        assert_eq!(store.get(ALICE, 0), Ok(None));
        assert!(admin::list_lockouts(&db, 0).unwrap().is_empty());
        assert_eq!(store.update(ALICE, 0, &mut |_| None), Ok(None));
        let exists = |db: &Db| -> bool {
            db.run(|c| {
                c.query_row(
                    "SELECT count(*) FROM sqlite_master WHERE name = 'throttle'",
                    [],
                    |r| r.get::<_, i64>(0),
                )
            })
            .unwrap()
                == 1
        };
        assert!(!exists(&db), "a success creates nothing");
        let clock = Arc::new(ManualClock::at(0));
        throttle(&db, &clock, 10).failed(ALICE, "a", None);
        assert!(exists(&db));
    }
}
