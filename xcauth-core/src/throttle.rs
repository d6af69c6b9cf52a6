//! Brute-force throttling: failed logins open a growing back-off, during which no password is
//! checked at all (docs/throttling.md).
//!
//! Two kinds of key count failures:
//! - `user:alice@example.org` (lower-cased): every rejected password for that name;
//! - `remote:192.0.2.7`: every rejected password sent from that address, whatever the name,
//!   when the caller knows it (PAM's `PAM_RHOST`, the pam socket's request).
//!
//! `failures` rejections of one key within `window` lock it for `backoff`. While a key is locked
//! a login that needs a password check is rejected at once (the engine still accepts valid
//! time-limited tokens). Once a lock-out has ended, one more failure within `window` locks the
//! key again for twice as long, up to `max_backoff`. An accepted password clears the user's
//! key (not the remote's: one valid account must not reset an address that guesses others).
//!
//! State lives in a [`ThrottleStore`]: the shared database's `throttle` table when one is open
//! (so every process using it counts together), with a memory copy that every change writes
//! through and that stands in when the database cannot be read or written. Both are bounded to
//! `max_entries` keys; expired keys are dropped first, then those closest to expiring.
//!
//! Each lock-out is logged once, in a fixed format a fail2ban filter matches
//! (`integration/fail2ban/`):
//! `xcauth: lockout user=alice@example.org remote=192.0.2.7 seconds=60 scope=user`.

use std::collections::HashMap;
use std::fmt;
use std::sync::{Arc, Mutex, OnceLock, PoisonError};
use std::time::Duration;

use log::{debug, warn};

use crate::clock::Clock;
use crate::logsafe;

/// The throttling knobs (`throttle-*` in xcauth.conf).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct ThrottleSettings {
    /// Rejections of one user within `window` that lock it; 0 turns throttling off.
    pub failures: u32,
    /// Rejections from one remote address (any user) within `window` that lock the address;
    /// 0 counts no addresses.
    pub remote_failures: u32,
    /// How long failures are remembered, and how long after a lock-out ends one more failure
    /// locks the key again for longer.
    pub window: Duration,
    /// The first lock-out's length; each further one doubles it.
    pub backoff: Duration,
    /// The longest lock-out.
    pub max_backoff: Duration,
    /// Most keys kept (per store).
    pub max_entries: usize,
}

impl Default for ThrottleSettings {
    fn default() -> Self {
        Self {
            failures: 5,
            remote_failures: 20,
            window: Duration::from_secs(15 * 60),
            backoff: Duration::from_secs(60),
            max_backoff: Duration::from_secs(3600),
            max_entries: 10_000,
        }
    }
}

impl ThrottleSettings {
    /// True when nothing is counted.
    pub fn is_off(&self) -> bool {
        self.failures == 0 && self.remote_failures == 0
    }

    /// The length of the `n`th lock-out in a row (1-based), in whole seconds.
    pub fn backoff_secs(&self, n: u32) -> i64 {
        let base = secs(self.backoff).max(1);
        let cap = secs(self.max_backoff).max(base);
        let shift = n.saturating_sub(1).min(40);
        base.saturating_mul(1i64 << shift).min(cap)
    }
}

fn secs(d: Duration) -> i64 {
    i64::try_from(d.as_secs()).unwrap_or(i64::MAX)
}

/// What is remembered about one key (times in Unix seconds).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub struct Entry {
    /// Failures in the current window (reset by a lock-out).
    pub failures: u32,
    /// When the current window started (its first failure).
    pub since: i64,
    /// Locked until then (0: never locked).
    pub locked_until: i64,
    /// Lock-outs in a row (the next one lasts `backoff * 2^lockouts`).
    pub lockouts: u32,
    /// When the entry may be forgotten: the end of its window, or `window` after the end of
    /// its lock-out.
    pub expires: i64,
}

impl Entry {
    /// Seconds of lock-out left at `now` (0: not locked).
    pub fn locked_for(&self, now: i64) -> i64 {
        (self.locked_until - now).max(0)
    }

    /// The entry after one more failure at `now` for a key that locks at `threshold`, and the
    /// new lock-out's length when this failure opened one. `self` is `None` for an unknown
    /// (or expired) key.
    pub fn after_failure(
        old: Option<Entry>,
        now: i64,
        threshold: u32,
        settings: &ThrottleSettings,
    ) -> (Entry, Option<i64>) {
        let window = secs(settings.window).max(1);
        let mut e = old.filter(|e| e.expires > now).unwrap_or(Entry {
            since: now,
            ..Entry::default()
        });
        if e.locked_until > now {
            // Locked meanwhile by another process: this password was checked before the
            // lock-out began; it does not lengthen it.
            return (e, None);
        }
        let lockout = if e.lockouts > 0 {
            // Still on probation after a lock-out: one failure locks again, for longer.
            Some(e.lockouts + 1)
        } else {
            if now - e.since >= window {
                e.failures = 0;
                e.since = now;
            }
            e.failures += 1;
            (e.failures >= threshold).then_some(1)
        };
        if let Some(n) = lockout {
            let seconds = settings.backoff_secs(n);
            e.lockouts = n;
            e.failures = 0;
            e.locked_until = now.saturating_add(seconds);
            e.since = now;
        }
        e.expires = (e.since.saturating_add(window)).max(e.locked_until.saturating_add(window));
        (e, lockout.map(|_| e.locked_until - now))
    }
}

/// Where entries are kept. Every method is one atomic step; errors are log-safe text.
pub trait ThrottleStore: Send + Sync + fmt::Debug {
    /// The live (not expired at `now`) entry of `key`.
    fn get(&self, key: &str, now: i64) -> Result<Option<Entry>, String>;
    /// Replaces the entry of `key` by `f(old)` in one step (`None` deletes it) and returns
    /// what `f` returned alongside. Expired entries reach `f` as `None`.
    fn update(
        &self,
        key: &str,
        now: i64,
        f: &mut dyn FnMut(Option<Entry>) -> Option<Entry>,
    ) -> Result<Option<Entry>, String>;
    /// Keeps `entry` for `key` as it is (the memory copy of a database row).
    fn put(&self, key: &str, entry: Option<Entry>, now: i64);
}

/// The memory store: a bounded map behind a mutex (held for map operations only).
#[derive(Debug)]
pub struct MemoryStore {
    max_entries: usize,
    map: Mutex<HashMap<String, Entry>>,
}

impl MemoryStore {
    /// An empty store of at most `max_entries` keys.
    pub fn new(max_entries: usize) -> Self {
        Self {
            max_entries: max_entries.max(1),
            map: Mutex::new(HashMap::new()),
        }
    }

    /// How many keys it holds (expired ones included until the next insertion prunes them).
    pub fn len(&self) -> usize {
        self.lock().len()
    }

    /// True when it holds no key.
    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }

    fn lock(&self) -> std::sync::MutexGuard<'_, HashMap<String, Entry>> {
        self.map.lock().unwrap_or_else(PoisonError::into_inner)
    }

    fn store(&self, map: &mut HashMap<String, Entry>, key: &str, entry: Option<Entry>, now: i64) {
        match entry {
            None => {
                map.remove(key);
            }
            Some(e) => {
                if !map.contains_key(key) && map.len() >= self.max_entries {
                    map.retain(|_, e| e.expires > now);
                    while map.len() >= self.max_entries {
                        let oldest = map
                            .iter()
                            .min_by_key(|(_, e)| e.expires)
                            .map(|(k, _)| k.clone());
                        match oldest {
                            Some(k) => map.remove(&k),
                            None => break,
                        };
                    }
                }
                map.insert(key.to_owned(), e);
            }
        }
    }
}

impl ThrottleStore for MemoryStore {
    fn get(&self, key: &str, now: i64) -> Result<Option<Entry>, String> {
        Ok(self.lock().get(key).filter(|e| e.expires > now).copied())
    }

    fn update(
        &self,
        key: &str,
        now: i64,
        f: &mut dyn FnMut(Option<Entry>) -> Option<Entry>,
    ) -> Result<Option<Entry>, String> {
        let mut map = self.lock();
        let old = map.get(key).filter(|e| e.expires > now).copied();
        let new = f(old);
        self.store(&mut map, key, new, now);
        Ok(new)
    }

    fn put(&self, key: &str, entry: Option<Entry>, now: i64) {
        let mut map = self.lock();
        self.store(&mut map, key, entry, now);
    }
}

/// The memory store of this process for callers that build an engine per call (the PAM module
/// in-process): plain data behind a mutex that is only held for a map operation, so it
/// survives between calls of one process (a pre-forked saslauthd child) and is safe across
/// `fork()` in a single-threaded host.
pub fn process_memory(max_entries: usize) -> Arc<MemoryStore> {
    static STORE: OnceLock<Arc<MemoryStore>> = OnceLock::new();
    Arc::clone(STORE.get_or_init(|| Arc::new(MemoryStore::new(max_entries))))
}

/// Which key a lock-out is on.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Scope {
    /// The user name.
    User,
    /// The remote address.
    Remote,
}

impl Scope {
    /// The word in the log line.
    pub fn as_str(self) -> &'static str {
        match self {
            Scope::User => "user",
            Scope::Remote => "remote",
        }
    }
}

/// A key that is locked now.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Locked {
    /// Which key.
    pub scope: Scope,
    /// Seconds left.
    pub seconds: i64,
}

/// The throttle of one engine: settings, clock, the memory copy and the shared store.
#[derive(Debug)]
pub struct Throttle {
    settings: ThrottleSettings,
    clock: Arc<dyn Clock>,
    memory: Arc<MemoryStore>,
    shared: Option<Arc<dyn ThrottleStore>>,
}

/// The key of a user name (`user@domain`, lower-cased).
pub fn user_key(user: &str, domain: &str) -> String {
    format!("user:{}@{}", user.to_lowercase(), domain.to_lowercase())
}

/// The key of a remote address (trimmed, lower-cased).
pub fn remote_key(remote: &str) -> String {
    format!("remote:{}", remote.trim().to_lowercase())
}

impl Throttle {
    /// A throttle keeping its state in `memory` and, when given, in `shared` (written through).
    pub fn new(
        settings: ThrottleSettings,
        clock: Arc<dyn Clock>,
        memory: Arc<MemoryStore>,
        shared: Option<Arc<dyn ThrottleStore>>,
    ) -> Self {
        Self {
            settings,
            clock,
            memory,
            shared,
        }
    }

    /// The settings.
    pub fn settings(&self) -> &ThrottleSettings {
        &self.settings
    }

    /// Where the state lives, for a start-up line.
    pub fn describe(&self) -> &'static str {
        match (&self.shared, self.settings.is_off()) {
            (_, true) => "off",
            (Some(_), false) => "database (shared) with a memory copy",
            (None, false) => "memory of this process only",
        }
    }

    fn keys<'a>(&self, user: &'a str, remote: Option<&'a str>) -> Vec<(Scope, String, u32)> {
        let mut keys = Vec::with_capacity(2);
        if self.settings.failures > 0 {
            keys.push((Scope::User, user.to_owned(), self.settings.failures));
        }
        if let Some(r) = remote.filter(|r| !r.trim().is_empty()) {
            if self.settings.remote_failures > 0 {
                keys.push((Scope::Remote, remote_key(r), self.settings.remote_failures));
            }
        }
        keys
    }

    fn read(&self, key: &str, now: i64) -> Option<Entry> {
        if let Some(shared) = &self.shared {
            match shared.get(key, now) {
                Ok(entry) => {
                    // The database is the truth (an administrator may have cleared the key).
                    self.memory.put(key, entry, now);
                    return entry;
                }
                Err(e) => debug!("throttle: cannot read the shared state ({e}); using memory"),
            }
        }
        self.memory.get(key, now).ok().flatten()
    }

    fn update(
        &self,
        key: &str,
        now: i64,
        f: &mut dyn FnMut(Option<Entry>) -> Option<Entry>,
    ) -> Option<Entry> {
        if let Some(shared) = &self.shared {
            match shared.update(key, now, f) {
                Ok(entry) => {
                    self.memory.put(key, entry, now);
                    return entry;
                }
                Err(e) => warn!("throttle: cannot write the shared state ({e}); using memory"),
            }
        }
        self.memory.update(key, now, f).ok().flatten()
    }

    /// Is the user (key from [`user_key`]) or the remote address locked now?
    pub fn locked(&self, user: &str, remote: Option<&str>) -> Option<Locked> {
        if self.settings.is_off() {
            return None;
        }
        let now = self.clock.unix_seconds();
        self.keys(user, remote)
            .into_iter()
            .filter_map(|(scope, key, _)| {
                let seconds = self.read(&key, now)?.locked_for(now);
                (seconds > 0).then_some(Locked { scope, seconds })
            })
            .max_by_key(|l| l.seconds)
    }

    /// Counts a rejected password for the user (`jid` is the log-safe name) from `remote`, and
    /// logs each lock-out this opens. Returns the scopes of the lock-outs it opened (for the
    /// counters).
    pub fn failed(&self, user: &str, jid: &str, remote: Option<&str>) -> Vec<Scope> {
        let now = self.clock.unix_seconds();
        let mut opened_scopes = Vec::new();
        for (scope, key, threshold) in self.keys(user, remote) {
            let mut opened = None;
            self.update(&key, now, &mut |old| {
                let (entry, lockout) = Entry::after_failure(old, now, threshold, &self.settings);
                opened = lockout;
                Some(entry)
            });
            if let Some(seconds) = opened {
                opened_scopes.push(scope);
                warn!(
                    "xcauth: lockout user={jid} remote={} seconds={seconds} scope={}",
                    remote.map_or_else(|| "-".into(), |r| logsafe::clean(r.trim(), 128)),
                    scope.as_str()
                );
            }
        }
        opened_scopes
    }

    /// An accepted password: forgets the user's failures and lock-outs.
    pub fn succeeded(&self, user: &str) {
        if self.settings.failures == 0 {
            return;
        }
        let now = self.clock.unix_seconds();
        self.update(user, now, &mut |_| None);
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::clock::ManualClock;

    fn throttle(clock: &Arc<ManualClock>) -> Throttle {
        Throttle::new(
            ThrottleSettings::default(),
            clock.clone(),
            Arc::new(MemoryStore::new(100)),
            None,
        )
    }

    const ALICE: &str = "user:alice@example.org";

    #[test]
    fn three_mistakes_go_unnoticed_five_lock_for_a_minute() {
        let clock = Arc::new(ManualClock::at(1_000_000));
        let t = throttle(&clock);
        for _ in 0..4 {
            t.failed(ALICE, "alice@example.org", None);
            assert_eq!(t.locked(ALICE, None), None);
        }
        t.failed(ALICE, "alice@example.org", None);
        let l = t.locked(ALICE, None).unwrap();
        assert_eq!((l.scope, l.seconds), (Scope::User, 60));
        clock.advance(59);
        assert!(t.locked(ALICE, None).is_some());
        clock.advance(1);
        assert_eq!(t.locked(ALICE, None), None);
    }

    #[test]
    fn failures_spread_over_more_than_the_window_never_lock() {
        let clock = Arc::new(ManualClock::at(0));
        let t = throttle(&clock);
        for _ in 0..20 {
            t.failed(ALICE, "a", None);
            t.failed(ALICE, "a", None);
            clock.advance(15 * 60);
        }
        assert_eq!(t.locked(ALICE, None), None);
    }

    #[test]
    fn lockouts_grow_doubling_up_to_the_cap_and_success_resets() {
        let clock = Arc::new(ManualClock::at(0));
        let t = throttle(&clock);
        for _ in 0..5 {
            t.failed(ALICE, "a", None);
        }
        let mut seen = vec![t.locked(ALICE, None).unwrap().seconds];
        for _ in 0..8 {
            clock.advance(seen[seen.len() - 1]);
            assert_eq!(t.locked(ALICE, None), None);
            t.failed(ALICE, "a", None);
            seen.push(t.locked(ALICE, None).unwrap().seconds);
        }
        assert_eq!(seen, [60, 120, 240, 480, 960, 1920, 3600, 3600, 3600]);
        clock.advance(3600);
        t.succeeded(ALICE);
        for _ in 0..4 {
            t.failed(ALICE, "a", None);
        }
        assert_eq!(t.locked(ALICE, None), None, "success started over");
    }

    #[test]
    fn a_quiet_window_after_a_lockout_forgets_it() {
        let clock = Arc::new(ManualClock::at(0));
        let t = throttle(&clock);
        for _ in 0..5 {
            t.failed(ALICE, "a", None);
        }
        clock.advance(60 + 15 * 60);
        t.failed(ALICE, "a", None);
        assert_eq!(t.locked(ALICE, None), None);
    }

    #[test]
    fn other_users_are_not_affected_and_remotes_count_across_users() {
        let clock = Arc::new(ManualClock::at(0));
        let t = throttle(&clock);
        for _ in 0..10 {
            t.failed(ALICE, "a", Some("192.0.2.7"));
        }
        assert!(t.locked(ALICE, None).is_some());
        assert_eq!(t.locked("user:bob@example.org", None), None);
        assert_eq!(t.locked("user:bob@example.org", Some("192.0.2.8")), None);
        // 20 failures from one address, spread over many names, lock the address.
        for i in 0..10 {
            t.failed(&format!("user:u{i}@example.org"), "u", Some("192.0.2.7"));
        }
        let l = t.locked("user:bob@example.org", Some("192.0.2.7")).unwrap();
        assert_eq!(l.scope, Scope::Remote);
        assert_eq!(t.locked("user:bob@example.org", Some("192.0.2.8")), None);
    }

    #[test]
    fn zero_failures_turns_it_off() {
        let clock = Arc::new(ManualClock::at(0));
        let settings = ThrottleSettings {
            failures: 0,
            remote_failures: 0,
            ..ThrottleSettings::default()
        };
        let t = Throttle::new(settings, clock, Arc::new(MemoryStore::new(10)), None);
        for _ in 0..100 {
            t.failed(ALICE, "a", Some("192.0.2.7"));
        }
        assert_eq!(t.locked(ALICE, Some("192.0.2.7")), None);
        assert_eq!(t.describe(), "off");
    }

    #[test]
    fn memory_is_bounded_and_keeps_the_latest_expiries() {
        let clock = Arc::new(ManualClock::at(0));
        let memory = Arc::new(MemoryStore::new(3));
        let t = Throttle::new(
            ThrottleSettings::default(),
            clock.clone(),
            memory.clone(),
            None,
        );
        for _ in 0..5 {
            t.failed(ALICE, "a", None);
        }
        for i in 0..10 {
            clock.advance(1);
            t.failed(&format!("user:u{i}@example.org"), "u", None);
            assert!(memory.len() <= 3);
        }
        // Alice's lock-out expires last (61 s + window), so it was kept.
        assert!(t.locked(ALICE, None).is_some());
        // Expired keys are pruned when a new one arrives.
        clock.advance(3 * 3600);
        t.failed("user:new@example.org", "n", None);
        assert_eq!(memory.len(), 1);
    }
}
