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
