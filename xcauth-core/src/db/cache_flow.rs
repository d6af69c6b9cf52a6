//! The credential caches (docs/xcauth2.md §4.2–4.6, with the divergences of §7).
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

use std::fmt;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Mutex;
use std::time::{Duration, Instant, SystemTime};

use bcrypt::Version;
use log::{debug, info, warn};

use super::time::{duration_micros, unix_micros};
use super::{lock, DbError};
use crate::cache::{CacheCheck, Lookup};
use crate::deadline;
use crate::logsafe;
use crate::secret::Password;
use crate::vocab::BCRYPT_MAX_PASSWORD;

/// TTLs and bcrypt cost of a cache (docs/xcauth2.md §4.5; `assemble` maps
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
    pub(super) fn allows(
        &self,
        lookup: Lookup,
        now: i64,
        remote: Option<i64>,
        any: Option<i64>,
    ) -> bool {
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
pub(super) struct Entry {
    pub(super) pwhash: Option<String>,
    pub(super) remote: Option<i64>,
    pub(super) any: Option<i64>,
}

/// Where entries live. Writes are conditional on the hash that was verified,
/// so a concurrent change between read and write is never overwritten.
pub(super) trait Storage: Send + Sync {
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
pub(super) struct Core<S> {
    pub(super) storage: S,
    pub(super) settings: CacheSettings,
    pub(super) kind: &'static str,
    pub(super) warned: AtomicBool,
    /// Until when the storage is left alone after it stayed locked by another
    /// process for a whole busy timeout: one login pays that wait, the next
    /// ones go straight to the backend.
    paused_until: Mutex<Option<Instant>>,
}

/// How long the cache is skipped after the database stayed locked (real time, like
/// SQLite's busy timeout it follows).
const BUSY_PAUSE: Duration = Duration::from_secs(10);

impl<S: Storage> Core<S> {
    pub(super) fn new(storage: S, settings: CacheSettings, kind: &'static str) -> Self {
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

    pub(super) fn check(
        &self,
        jid: &str,
        password: &Password,
        now: SystemTime,
        lookup: Lookup,
    ) -> CacheCheck {
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

    pub(super) fn store(&self, jid: &str, password: &Password, now: SystemTime) {
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

    pub(super) fn forget_if_matches(&self, jid: &str, password: &Password) {
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

#[cfg(test)]
mod tests {
    use std::time::UNIX_EPOCH;

    use super::*;
    use crate::cache::CredentialCache;
    use std::sync::Arc;

    use crate::db::{Db, DbCache, MemoryCache};

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
