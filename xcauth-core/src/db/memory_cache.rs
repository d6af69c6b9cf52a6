//! `cache-storage=memory`: the credential cache in a per-process map. Not SQLite, but the
//! same flow ([`super::cache_flow`]) as the database's cache.

use std::collections::HashMap;
use std::fmt;
use std::sync::Mutex;
use std::time::SystemTime;

use super::cache_flow::{CacheSettings, Core, Entry, Storage};
use super::{lock, DbError};
use crate::cache::{CacheCheck, CredentialCache, Lookup};
use crate::secret::Password;

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

    /// What is stored for `jid` (for tests and status output; reading changes nothing): the
    /// bcrypt hash and the Unix microseconds of the last backend success (`remoteauth`) and
    /// of the last use (`anyauth`). `None` when nothing is cached for `jid`.
    pub fn entry(&self, jid: &str) -> Option<(String, Option<i64>, Option<i64>)> {
        let map = lock(&self.core.storage.map);
        map.entries
            .get(jid)
            .map(|e| (e.pwhash.clone().unwrap_or_default(), e.remote, e.any))
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
    use std::time::{Duration, UNIX_EPOCH};

    use super::*;

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
}
