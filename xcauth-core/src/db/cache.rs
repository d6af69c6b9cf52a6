//! The credential caches (xcauth-behaviour.md 5.1–5.5, with its fixes).
//!
//! Both caches keep one entry per jid: a bcrypt hash (`$2b$NN$…`) and the
//! times of the first and last backend success and of the last use. The
//! lookup rule, with strict comparisons:
//!
//! - normal: `anyauth + query_ttl > now` and `remoteauth + verification_ttl > now`;
//! - unreachable: the normal rule, or `remoteauth + unreachable_ttl > now`;
//!
//! and the password must verify against the hash. A hit sets `anyauth = now`;
//! a miss writes nothing. A rejected password that matches the hash evicts the
//! entry. Passwords over 72 bytes are never cached (bcrypt ignores the rest).
//!
//! bcrypt runs outside any lock and without holding a database connection,
//! so concurrent logins only serialise on the short reads and writes. A
//! storage error makes the cache a miss: the first one is logged once as a
//! warning, later ones at debug level, and authentication goes on to the
//! backend.

use std::collections::HashMap;
use std::fmt;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant, SystemTime};

use bcrypt::Version;
use log::{debug, info, warn};
use rusqlite::{params, OptionalExtension};

use super::time::{duration_micros, parse_micros, unix_micros};
use super::{lock, Db, DbError, DbOptions};
use crate::cache::{CacheCheck, CredentialCache, Lookup};
use crate::deadline;
use crate::engine::BCRYPT_MAX_PASSWORD;
use crate::logsafe;
use crate::secret::Password;

/// TTLs and bcrypt cost of a cache (xcauth-behaviour.md 5.4; the lead maps
/// `cache-*-ttl` and `cache-bcrypt-rounds` to it).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct CacheSettings {
    /// Longest gap between uses of the cached password (`cache-query-ttl`).
    pub query_ttl: Duration,
    /// Longest age of the last backend success on the normal path
    /// (`cache-verification-ttl`).
    pub verification_ttl: Duration,
    /// Longest age of the last backend success while the backend is
    /// unavailable (`cache-unreachable-ttl`).
    pub unreachable_ttl: Duration,
    /// bcrypt cost (4–31) for new hashes: the first `cache-bcrypt-rounds`
    /// value for the database, the second for memory.
    pub bcrypt_cost: u32,
}

impl Default for CacheSettings {
    /// xcauth's defaults: 1 h, 1 d, 1 w, cost 12.
    fn default() -> Self {
        Self {
            query_ttl: Duration::from_secs(3600),
            verification_ttl: Duration::from_secs(86_400),
            unreachable_ttl: Duration::from_secs(604_800),
            bcrypt_cost: 12,
        }
    }
}

impl CacheSettings {
    /// Whether an entry with these times vouches at `now` under `lookup`.
    /// A missing (NULL or unreadable) time never satisfies a condition.
    fn allows(&self, lookup: Lookup, now: i64, remote: Option<i64>, any: Option<i64>) -> bool {
        // A time in the future (clock stepped back, hand-edited row) would
        // keep an entry valid for that much longer: beyond a little skew
        // between hosts sharing the file, it vouches for nothing.
        let latest = now.saturating_add(duration_micros(MAX_CLOCK_SKEW));
        let younger = |t: Option<i64>, ttl: Duration| {
            t.is_some_and(|t| t <= latest && t.saturating_add(duration_micros(ttl)) > now)
        };
        let normal = younger(any, self.query_ttl) && younger(remote, self.verification_ttl);
        match lookup {
            Lookup::Normal => normal,
            Lookup::Unreachable => normal || younger(remote, self.unreachable_ttl),
        }
    }
}

/// One cache entry as read from storage. Times are Unix microseconds.
#[derive(Clone)]
struct Entry {
    pwhash: Option<String>,
    remote: Option<i64>,
    any: Option<i64>,
}

/// Where entries live. Writes are conditional on the hash that was verified,
/// so a concurrent change between read and write is never overwritten.
trait Storage: Send + Sync {
    fn get(&self, jid: &str) -> Result<Option<Entry>, DbError>;
    fn upsert(&self, jid: &str, pwhash: &str, now: i64) -> Result<(), DbError>;
    /// Sets `anyauth = now` if the entry still has `pwhash`; false if not.
    fn touch(&self, jid: &str, pwhash: &str, now: i64) -> Result<bool, DbError>;
    /// Deletes the entry if it still has `pwhash`; false if not.
    fn delete(&self, jid: &str, pwhash: &str) -> Result<bool, DbError>;
    fn describe(&self) -> String;
}

/// How far in the future a stored time may lie and still count.
const MAX_CLOCK_SKEW: Duration = Duration::from_secs(300);

/// The cache flow shared by both storages.
struct Core<S> {
    storage: S,
    settings: CacheSettings,
    kind: &'static str,
    warned: AtomicBool,
    /// Until when the storage is left alone after it stayed locked by another
    /// process for a whole busy timeout: one login pays that wait, the next
    /// ones go straight to the backend.
    paused_until: Mutex<Option<Instant>>,
}

/// How long the cache is skipped after the database stayed locked (real time, like
/// SQLite's busy timeout it follows).
const BUSY_PAUSE: Duration = Duration::from_secs(10);

impl<S: Storage> Core<S> {
    fn new(storage: S, settings: CacheSettings, kind: &'static str) -> Self {
        Self {
            storage,
            settings,
            kind,
            warned: AtomicBool::new(false),
            paused_until: Mutex::new(None),
        }
    }

    /// True while the storage is skipped after a lock that outlasted the busy timeout.
    fn paused(&self) -> bool {
        let mut until = lock(&self.paused_until);
        match *until {
            Some(t) if deadline::now() < t => true,
            Some(_) => {
                *until = None;
                false
            }
            None => false,
        }
    }

    /// Logs a storage failure (a warning the first time, debug afterwards); a
    /// lock that outlasted the busy timeout pauses the storage for a while.
    fn failed(&self, what: &str, err: &DbError) {
        if err.is_busy() {
            *lock(&self.paused_until) = Some(deadline::now() + BUSY_PAUSE);
            self.degraded(
                what,
                &format_args!(
                    "{err} (still locked by another process after the busy timeout; \
                     the cache is skipped for {}s)",
                    BUSY_PAUSE.as_secs()
                ),
            );
        } else {
            self.degraded(what, err);
        }
    }

    /// Logs a storage failure: a warning the first time, debug afterwards.
    fn degraded(&self, what: &str, err: &dyn fmt::Display) {
        if self.warned.swap(true, Ordering::Relaxed) {
            debug!("credential cache ({}): cannot {what}: {err}", self.kind);
        } else {
            warn!(
                "credential cache ({}, {}) is not working, logins go to the backend without it: cannot {what}: {err} (further cache errors are logged at debug level)",
                self.kind,
                self.storage.describe()
            );
        }
    }

    fn check(&self, jid: &str, password: &Password, now: SystemTime, lookup: Lookup) -> CacheCheck {
        if password.len() > BCRYPT_MAX_PASSWORD {
            return CacheCheck::Miss;
        }
        if self.paused() {
            return CacheCheck::Miss;
        }
        let now = unix_micros(now);
        let entry = match self.storage.get(jid) {
            Ok(Some(entry)) => entry,
            Ok(None) => return CacheCheck::Miss,
            Err(e) => {
                self.failed("look up an entry", &e);
                return CacheCheck::Miss;
            }
        };
        let log_jid = logsafe::clean(jid, 256);
        if !self.settings.allows(lookup, now, entry.remote, entry.any) {
            debug!("cache entry for {log_jid} too old for a {lookup:?} lookup");
            return CacheCheck::Miss;
        }
        let Some(pwhash) = entry.pwhash else {
            return CacheCheck::Miss;
        };
        if !verify(password, &pwhash) {
            debug!("cache entry for {log_jid} does not match this password");
            return CacheCheck::Mismatch;
        }
        match self.storage.touch(jid, &pwhash, now) {
            Ok(true) => CacheCheck::Hit,
            Ok(false) => CacheCheck::Miss,
            Err(e) => {
                // The entry vouched at read time; failing to record the use
                // only shortens its life.
                self.failed("record a cache hit", &e);
                CacheCheck::Hit
            }
        }
    }

    fn store(&self, jid: &str, password: &Password, now: SystemTime) {
        if password.len() > BCRYPT_MAX_PASSWORD {
            debug!(
                "password for {} longer than {BCRYPT_MAX_PASSWORD} bytes, not cached",
                logsafe::clean(jid, 256)
            );
            return;
        }
        if self.paused() {
            return;
        }
        let pwhash = match bcrypt::hash_with_result(password.expose(), self.settings.bcrypt_cost) {
            Ok(parts) => parts.format_for_version(Version::TwoB),
            Err(e) => {
                self.degraded("hash a password", &e);
                return;
            }
        };
        if let Err(e) = self.storage.upsert(jid, &pwhash, unix_micros(now)) {
            self.failed("store an entry", &e);
        }
    }

    fn forget_if_matches(&self, jid: &str, password: &Password) {
        if password.len() > BCRYPT_MAX_PASSWORD || self.paused() {
            return;
        }
        let pwhash = match self.storage.get(jid) {
            Ok(Some(Entry {
                pwhash: Some(h), ..
            })) => h,
            Ok(_) => return,
            Err(e) => {
                self.failed("look up an entry", &e);
                return;
            }
        };
        if !verify(password, &pwhash) {
            return;
        }
        match self.storage.delete(jid, &pwhash) {
            Ok(true) => info!(
                "cache entry for {} removed: the backend rejected its password",
                logsafe::clean(jid, 256)
            ),
            Ok(false) => {}
            Err(e) => self.failed("remove a revoked entry", &e),
        }
    }
}

/// bcrypt verification accepting the `$2a$`, `$2b$` and `$2y$` prefixes
/// (all the same algorithm for valid UTF-8 input). Anything else, including
/// the buggy `$2x$` variant or a malformed hash, never matches.
fn verify(password: &Password, pwhash: &str) -> bool {
    let known = ["$2a$", "$2b$", "$2y$"]
        .iter()
        .any(|p| pwhash.starts_with(p));
    known && bcrypt::verify(password.expose(), pwhash).unwrap_or(false)
}

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
    use rusqlite::types::ValueRef;
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

/// `cache-storage=memory`: a per-process map, lost on exit, with the memory
/// bcrypt cost. Bounded by pruning: whenever the map has doubled since the
/// last sweep, entries that can no longer vouch under either rule are dropped.
pub struct MemoryCache {
    core: Core<MemStorage>,
}

impl fmt::Debug for MemoryCache {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("MemoryCache")
            .field("settings", &self.core.settings)
            .finish()
    }
}

impl MemoryCache {
    /// An empty cache.
    pub fn new(settings: CacheSettings) -> Self {
        let storage = MemStorage {
            settings,
            map: Mutex::new(MemMap::default()),
        };
        Self {
            core: Core::new(storage, settings, "memory"),
        }
    }

    /// Entries currently held (for tests and status output).
    pub fn len(&self) -> usize {
        lock(&self.core.storage.map).entries.len()
    }

    /// True when nothing is cached.
    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }
}

impl CredentialCache for MemoryCache {
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

#[cfg(test)]
impl MemoryCache {
    /// `(pwhash, remoteauth, anyauth)` of `jid`, for tests.
    pub(super) fn core_entry(&self, jid: &str) -> Option<(String, Option<i64>, Option<i64>)> {
        let map = lock(&self.core.storage.map);
        map.entries
            .get(jid)
            .map(|e| (e.pwhash.clone().unwrap_or_default(), e.remote, e.any))
    }
}

/// Smallest map size at which pruning starts.
const PRUNE_FLOOR: usize = 1024;

#[derive(Default)]
struct MemMap {
    entries: HashMap<String, Entry>,
    /// Prune when `entries` reaches this size.
    prune_at: usize,
}

struct MemStorage {
    settings: CacheSettings,
    map: Mutex<MemMap>,
}

impl Storage for MemStorage {
    fn get(&self, jid: &str) -> Result<Option<Entry>, DbError> {
        Ok(lock(&self.map).entries.get(jid).cloned())
    }

    fn upsert(&self, jid: &str, pwhash: &str, now: i64) -> Result<(), DbError> {
        let mut map = lock(&self.map);
        let entry = Entry {
            pwhash: Some(pwhash.to_owned()),
            remote: Some(now),
            any: Some(now),
        };
        map.entries.insert(jid.to_owned(), entry);
        if map.entries.len() >= map.prune_at.max(PRUNE_FLOOR) {
            let settings = self.settings;
            map.entries
                .retain(|_, e| settings.allows(Lookup::Unreachable, now, e.remote, e.any));
            map.prune_at = map.entries.len().saturating_mul(2);
        }
        Ok(())
    }

    fn touch(&self, jid: &str, pwhash: &str, now: i64) -> Result<bool, DbError> {
        let mut map = lock(&self.map);
        match map.entries.get_mut(jid) {
            Some(e) if e.pwhash.as_deref() == Some(pwhash) => {
                e.any = Some(now);
                Ok(true)
            }
            _ => Ok(false),
        }
    }

    fn delete(&self, jid: &str, pwhash: &str) -> Result<bool, DbError> {
        let mut map = lock(&self.map);
        if map
            .entries
            .get(jid)
            .is_some_and(|e| e.pwhash.as_deref() == Some(pwhash))
        {
            map.entries.remove(jid);
            return Ok(true);
        }
        Ok(false)
    }

    fn describe(&self) -> String {
        "process memory".to_owned()
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::time::UNIX_EPOCH;

    fn at(secs: u64) -> SystemTime {
        UNIX_EPOCH + Duration::from_secs(secs)
    }

    fn settings() -> CacheSettings {
        CacheSettings {
            bcrypt_cost: 4,
            ..CacheSettings::default()
        }
    }

    #[test]
    fn rule_is_strict() {
        let s = CacheSettings {
            query_ttl: Duration::from_secs(10),
            verification_ttl: Duration::from_secs(100),
            unreachable_ttl: Duration::from_secs(1000),
            bcrypt_cost: 4,
        };
        let us = |s: i64| s * 1_000_000;
        let n =
            |now, remote, any| s.allows(Lookup::Normal, us(now), Some(us(remote)), Some(us(any)));
        let u = |now, remote, any| {
            s.allows(
                Lookup::Unreachable,
                us(now),
                Some(us(remote)),
                Some(us(any)),
            )
        };
        assert!(n(9, 0, 0));
        assert!(!n(10, 0, 0), "any + query_ttl == now is expired");
        assert!(n(99, 0, 95));
        assert!(
            !n(100, 0, 95),
            "remote + verification_ttl == now is expired"
        );
        assert!(u(999, 0, 0));
        assert!(!u(1000, 0, 0));
        assert!(!s.allows(Lookup::Unreachable, 0, None, Some(0)));
        assert!(!s.allows(Lookup::Normal, 0, Some(0), None));
        // Times from the future vouch for nothing beyond a little skew.
        assert!(n(1000, 1200, 1200), "within the allowed skew");
        assert!(!n(1000, 1000 + 301, 1000), "remoteauth 301 s ahead");
        assert!(!u(1000, 1_000_000, 1000), "a far-future remoteauth");
    }

    #[test]
    fn memory_store_check_forget() {
        let c = MemoryCache::new(settings());
        let pw = Password::new("secret");
        assert!(!c.check("u@d", &pw, at(1), Lookup::Normal).is_hit());
        c.store("u@d", &pw, at(1));
        assert!(c.check("u@d", &pw, at(2), Lookup::Normal).is_hit());
        assert!(!c
            .check("u@d", &Password::new("other"), at(2), Lookup::Normal)
            .is_hit());
        c.forget_if_matches("u@d", &Password::new("other"));
        assert!(c.check("u@d", &pw, at(3), Lookup::Normal).is_hit());
        c.forget_if_matches("u@d", &pw);
        assert!(c.is_empty());
    }

    #[test]
    fn memory_cache_prunes_dead_entries() {
        let c = MemoryCache::new(settings());
        let pw = Password::new("p");
        // Store directly (bcrypt-free) to make 2000 entries cheap.
        for i in 0..PRUNE_FLOOR - 1 {
            c.core
                .storage
                .upsert(&format!("old{i}@d"), "$2b$04$x", 0)
                .unwrap();
        }
        assert_eq!(c.len(), PRUNE_FLOOR - 1);
        // A week and a day later every old entry is dead under both rules.
        c.store("new@d", &pw, at(8 * 86_400));
        assert_eq!(c.len(), 1);
        assert!(c
            .check("new@d", &pw, at(8 * 86_400 + 1), Lookup::Normal)
            .is_hit());
    }

    #[test]
    fn long_passwords_are_never_cached() {
        let c = MemoryCache::new(settings());
        let long = Password::new("x".repeat(73));
        c.store("u@d", &long, at(1));
        assert!(c.is_empty());
        assert!(!c.check("u@d", &long, at(2), Lookup::Unreachable).is_hit());
        let max = Password::new("y".repeat(72));
        c.store("u@d", &max, at(1));
        assert!(c.check("u@d", &max, at(2), Lookup::Normal).is_hit());
        // 72 bytes plus anything must not ride on the truncated hash.
        let longer = Password::new(format!("{}z", "y".repeat(72)));
        assert!(!c.check("u@d", &longer, at(2), Lookup::Normal).is_hit());
        c.forget_if_matches("u@d", &longer);
        assert_eq!(c.len(), 1);
    }

    #[test]
    fn hash_prefix_is_2b_with_the_configured_cost() {
        let db = Arc::new(Db::open_memory().unwrap());
        let c = DbCache::new(
            db.clone(),
            CacheSettings {
                bcrypt_cost: 6,
                ..settings()
            },
        );
        c.store("u@d", &Password::new("pw"), at(1));
        let hash: String = db
            .run(|c| c.query_row("SELECT pwhash FROM authcache", [], |r| r.get(0)))
            .unwrap();
        assert!(hash.starts_with("$2b$06$"), "{hash}");
        assert_eq!(hash.len(), 60);
    }

    #[test]
    fn verify_accepts_2a_2b_2y_only() {
        let pw = Password::new("pw");
        let b = bcrypt::hash_with_result("pw", 4).unwrap();
        for (v, ok) in [
            (Version::TwoA, true),
            (Version::TwoB, true),
            (Version::TwoY, true),
            (Version::TwoX, false),
        ] {
            let name = v.to_string();
            assert_eq!(verify(&pw, &b.format_for_version(v)), ok, "{name}");
        }
        assert!(!verify(&pw, "not a hash"));
        assert!(!verify(&pw, ""));
    }
}
