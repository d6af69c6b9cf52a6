//! `cache-storage=db`: the credential cache in the shared database's `authcache` table.

use std::fmt;
use std::sync::atomic::Ordering;
use std::sync::Arc;
use std::time::SystemTime;

use log::warn;
use rusqlite::types::ValueRef;
use rusqlite::{params, OptionalExtension};

use super::cache_flow::{CacheSettings, Core, Entry, Storage};
use super::time::parse_micros;
use super::{Db, DbError, DbOptions};
use crate::cache::{CacheCheck, CredentialCache, Lookup};
use crate::secret::Password;

/// `cache-storage=db`: the `authcache` table of the shared database, with the
/// persistent bcrypt cost. Entries are shared with every process using the
/// file (including xcauth 2 itself).
pub struct DbCache {
    core: Core<DbStorage>,
}

impl fmt::Debug for DbCache {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("DbCache")
            .field("db", &self.core.storage.describe())
            .field("settings", &self.core.settings)
            .finish()
    }
}

impl DbCache {
    /// A cache on `db`'s `authcache` table.
    pub fn new(db: Arc<Db>, settings: CacheSettings) -> Self {
        Self {
            core: Core::new(DbStorage(Some(db)), settings, "db"),
        }
    }

    /// Opens `path` for the cache. If it cannot be opened (missing directory,
    /// not a database…), logs one warning and returns a cache that always
    /// misses, so logins go on to the backend.
    pub fn open_or_miss(path: &std::path::Path, opts: &DbOptions, settings: CacheSettings) -> Self {
        match Db::open(path, opts) {
            Ok(db) => Self::new(Arc::new(db), settings),
            Err(e) => {
                warn!("credential cache disabled, logins go to the backend without it: {e}");
                let core = Core::new(DbStorage(None), settings, "db");
                core.warned.store(true, Ordering::Relaxed);
                Self { core }
            }
        }
    }
}

impl CredentialCache for DbCache {
    fn check(&self, jid: &str, password: &Password, now: SystemTime, lookup: Lookup) -> CacheCheck {
        self.core.check(jid, password, now, lookup)
    }

    fn store(&self, jid: &str, password: &Password, now: SystemTime) {
        self.core.store(jid, password, now);
    }

    fn forget_if_matches(&self, jid: &str, password: &Password) {
        self.core.forget_if_matches(jid, password);
    }

    fn kind(&self) -> &'static str {
        self.core.kind
    }
}

/// `None`: the database could not be opened; every operation is a miss
/// (reported once, when opening failed).
struct DbStorage(Option<Arc<Db>>);

/// An error standing for "no database" that is never shown (the open error was).
fn no_db() -> DbError {
    DbError::Query {
        db: "(not open)".to_owned(),
        source: rusqlite::Error::InvalidQuery,
    }
}

/// Reads a TIMESTAMP column leniently: text in either stored form, or a
/// number of Unix seconds (a hand-edited row); anything else is "unknown".
fn timestamp_column(row: &rusqlite::Row<'_>, idx: usize) -> rusqlite::Result<Option<i64>> {
    Ok(match row.get_ref(idx)? {
        ValueRef::Text(t) => std::str::from_utf8(t).ok().and_then(parse_micros),
        ValueRef::Integer(secs) => secs.checked_mul(1_000_000),
        // `as` saturates; sub-microsecond precision is meaningless here.
        ValueRef::Real(secs) if secs.is_finite() => Some((secs * 1e6) as i64),
        _ => None,
    })
}

impl Storage for DbStorage {
    fn get(&self, jid: &str) -> Result<Option<Entry>, DbError> {
        let Some(db) = &self.0 else { return Ok(None) };
        db.run(|c| {
            c.prepare_cached("SELECT pwhash, remoteauth, anyauth FROM authcache WHERE jid = ?1")?
                .query_row([jid], |r| {
                    Ok(Entry {
                        pwhash: r.get::<_, Option<String>>(0).unwrap_or(None),
                        remote: timestamp_column(r, 1)?,
                        any: timestamp_column(r, 2)?,
                    })
                })
                .optional()
        })
    }

    fn upsert(&self, jid: &str, pwhash: &str, now: i64) -> Result<(), DbError> {
        let Some(db) = &self.0 else {
            return Err(no_db());
        };
        let now = super::time::format_micros(now);
        db.transaction(|tx| {
            tx.prepare_cached(
                "INSERT INTO authcache (jid, pwhash, firstauth, remoteauth, anyauth) \
                 VALUES (?1, ?2, ?3, ?3, ?3) \
                 ON CONFLICT(jid) DO UPDATE SET \
                 pwhash = excluded.pwhash, remoteauth = excluded.remoteauth, anyauth = excluded.anyauth",
            )?
            .execute(params![jid, pwhash, now])
            .map(drop)
        })
    }

    fn touch(&self, jid: &str, pwhash: &str, now: i64) -> Result<bool, DbError> {
        let Some(db) = &self.0 else {
            return Err(no_db());
        };
        let now = super::time::format_micros(now);
        db.run(|c| {
            c.prepare_cached("UPDATE authcache SET anyauth = ?3 WHERE jid = ?1 AND pwhash = ?2")?
                .execute(params![jid, pwhash, now])
                .map(|n| n > 0)
        })
    }

    fn delete(&self, jid: &str, pwhash: &str) -> Result<bool, DbError> {
        let Some(db) = &self.0 else {
            return Err(no_db());
        };
        db.run(|c| {
            c.prepare_cached("DELETE FROM authcache WHERE jid = ?1 AND pwhash = ?2")?
                .execute(params![jid, pwhash])
                .map(|n| n > 0)
        })
    }

    fn describe(&self) -> String {
        match &self.0 {
            Some(db) => db.label().to_owned(),
            None => "not open".to_owned(),
        }
    }
}
