//! Brute-force throttling: failed logins open a growing back-off, during which no password is
//! checked at all (docs/throttling.md).
//!
//! Three kinds of key count failures:
//! - `user:alice@example.org` (lower-cased): every rejected password for that name;
//! - `local:alice`: the same across every domain, with twice the allowance (the backend also
//!   tries the bare user name, so rotating domains must not give fresh guesses);
//! - `remote:192.0.2.7`: every rejected password sent from that address, whatever the name,
//!   when the caller knows it (PAM's `PAM_RHOST`, the pam socket's request). IPv4-mapped
//!   addresses count as IPv4, IPv6 addresses by their /64.
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
//! `xcauth: lockout remote=192.0.2.7 user=alice@example.org seconds=60 scope=user` (address
//! first, every field free of spaces; see [`Throttle::failed`]).

use std::collections::HashMap;
use std::collections::HashSet;
use std::fmt;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Condvar, Mutex, OnceLock, PoisonError};
use std::time::Duration;

use log::{debug, warn};

use crate::clock::Clock;

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
    /// Keys whose last change could not be written to the shared store.
    unsynced: Mutex<HashSet<String>>,
}

impl MemoryStore {
    /// An empty store of at most `max_entries` keys.
    pub fn new(max_entries: usize) -> Self {
        Self {
            max_entries: max_entries.max(1),
            map: Mutex::new(HashMap::new()),
            unsynced: Mutex::new(HashSet::new()),
        }
    }

    fn is_unsynced(&self, key: &str) -> bool {
        self.unsynced
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
            .contains(key)
    }

    fn set_unsynced(&self, key: &str, unsynced: bool) {
        let mut set = self.unsynced.lock().unwrap_or_else(PoisonError::into_inner);
        if unsynced {
            if set.len() < self.max_entries {
                set.insert(key.to_owned());
            }
        } else if !set.is_empty() {
            set.remove(key);
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
                        // Entries with lock-outs behind them (on probation) go last: a flood
                        // of new names must not reset a guesser's growing back-off.
                        let oldest = map
                            .iter()
                            .min_by_key(|(_, e)| (e.lockouts > 0, e.expires))
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
    /// The user part across every domain (the backend also tries the bare user name, so
    /// `alice@a.example` and `alice@b.example` may guess at one account).
    Local,
}

impl Scope {
    /// The word in the log line.
    pub fn as_str(self) -> &'static str {
        match self {
            Scope::User => "user",
            Scope::Remote => "remote",
            Scope::Local => "local",
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
    /// A write to `shared` failed once (logged once).
    write_failed: AtomicBool,
    /// Password checks of each user key running now in this process.
    inflight: Mutex<HashMap<String, u32>>,
    /// Signalled when a check ends.
    released: Condvar,
}

/// How long one wait for a running check lasts, and how many waits a check makes before it
/// gives up (3 s in all: well inside every host's timeout).
const BUSY_WAIT_SLICE: Duration = Duration::from_millis(50);
const BUSY_WAIT_SLICES: u32 = 60;

/// Why [`Throttle::begin`] refused a password check.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Refusal {
    /// The user or the address is locked out.
    Locked(Locked),
    /// As many checks of this user ran, for the whole wait, as failures are still allowed.
    Busy,
}

/// A password check in flight (see [`Throttle::begin`]); dropping it ends the check.
#[derive(Debug)]
pub struct Slot<'a> {
    held: Option<(&'a Throttle, String)>,
}

impl Slot<'_> {
    /// A slot that holds nothing (no throttle).
    pub fn none() -> Self {
        Slot { held: None }
    }
}

impl Drop for Slot<'_> {
    fn drop(&mut self) {
        if let Some((throttle, user)) = self.held.take() {
            throttle.release(&user);
        }
    }
}

/// Of two views of one key, the one that restricts more: the later lock-out, else more
/// lock-outs, else more failures.
fn stronger(a: Option<Entry>, b: Option<Entry>) -> Option<Entry> {
    match (a, b) {
        (Some(a), Some(b)) => {
            let rank = |e: &Entry| (e.locked_until, e.lockouts, e.failures);
            Some(if rank(&b) > rank(&a) { b } else { a })
        }
        (a, b) => a.or(b),
    }
}

/// The key of a user name (`user@domain`, lower-cased).
pub fn user_key(user: &str, domain: &str) -> String {
    format!("user:{}@{}", user.to_lowercase(), domain.to_lowercase())
}

/// The key of a remote address: an IPv4 address (also when written IPv4-mapped), an IPv6
/// address's /64 (one subscriber's usual allocation: rotating inside it changes nothing), or
/// any other text trimmed and lower-cased.
pub fn remote_key(remote: &str) -> String {
    format!("remote:{}", remote_id(remote))
}

fn remote_id(remote: &str) -> String {
    use std::net::IpAddr;
    let text = remote.trim().trim_start_matches('[').trim_end_matches(']');
    match text.parse::<IpAddr>().map(|ip| ip.to_canonical()) {
        Ok(IpAddr::V4(v4)) => v4.to_string(),
        Ok(IpAddr::V6(v6)) => {
            let s = v6.segments();
            format!("{:x}:{:x}:{:x}:{:x}::/64", s[0], s[1], s[2], s[3])
        }
        Err(_) => text.to_lowercase(),
    }
}

/// The address for the lock-out line: an IP address as such (IPv4-mapped written as IPv4),
/// anything else (a host name) encoded so it cannot be taken for an address or a field.
fn remote_for_log(remote: Option<&str>) -> String {
    use std::net::IpAddr;
    let Some(text) = remote.map(str::trim).filter(|r| !r.is_empty()) else {
        return "-".to_owned();
    };
    let bare = text.trim_start_matches('[').trim_end_matches(']');
    match bare.parse::<IpAddr>() {
        Ok(ip) => ip.to_canonical().to_string(),
        Err(_) => format!("host:{}", field(bare, 128)),
    }
}

/// `text` as one log field: at most `max` characters, and every character outside
/// `A-Z a-z 0-9 . _ @ + -` percent-encoded (no spaces, `=` or quotes: nothing a log reader
/// could take for another field).
fn field(text: &str, max: usize) -> String {
    let mut out = String::new();
    for c in text.chars().take(max) {
        if c.is_ascii_alphanumeric() || matches!(c, '.' | '_' | '@' | '+' | '-') {
            out.push(c);
        } else {
            let mut buf = [0u8; 4];
            for b in c.encode_utf8(&mut buf).bytes() {
                out.push_str(&format!("%{b:02X}"));
            }
        }
    }
    out
}

/// The key of the user part of a user key (`user:alice@example.org` → `local:alice`).
pub fn local_key(user_key: &str) -> Option<String> {
    let name = user_key.strip_prefix("user:")?;
    let (local, _) = name.rsplit_once('@')?;
    Some(format!("local:{local}"))
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
            write_failed: AtomicBool::new(false),
            inflight: Mutex::new(HashMap::new()),
            released: Condvar::new(),
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
        let mut keys = Vec::with_capacity(3);
        if self.settings.failures > 0 {
            keys.push((Scope::User, user.to_owned(), self.settings.failures));
            if let Some(local) = local_key(user) {
                // Twice the user's allowance: other domains' accounts with the same user part
                // share it, and a guesser rotating domains still meets a limit.
                keys.push((
                    Scope::Local,
                    local,
                    self.settings.failures.saturating_mul(2),
                ));
            }
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
                Ok(entry) if !self.memory.is_unsynced(key) => {
                    // The database is the truth (an administrator may have cleared the key).
                    self.memory.put(key, entry, now);
                    return entry;
                }
                Ok(entry) => {
                    // A write of ours did not reach the database: keep whichever knows more,
                    // so a read-only or busy database cannot wipe our count.
                    let mine = self.memory.get(key, now).ok().flatten();
                    return stronger(entry, mine);
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
                    self.memory.set_unsynced(key, false);
                    return entry;
                }
                Err(e) => {
                    if !self.write_failed.swap(true, Ordering::Relaxed) {
                        warn!(
                            "throttle: cannot write the shared state ({e}); counting in this \
                             process's memory where it cannot"
                        );
                    }
                    let mut merged = |old: Option<Entry>| {
                        let base = stronger(old, shared.get(key, now).ok().flatten());
                        f(base)
                    };
                    let entry = self.memory.update(key, now, &mut merged).ok().flatten();
                    self.memory.set_unsynced(key, true);
                    return entry;
                }
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
                self.log_lockout(scope, jid, remote, seconds);
            }
        }
        opened_scopes
    }

    /// Before a password is checked: the lock while the user or the address is locked out;
    /// otherwise a slot for the check, held until it is dropped. Once a user has failures on
    /// record, at most as many of its checks run at once in this process as failures are
    /// still allowed before a lock-out (one while on probation), so a guesser's concurrent
    /// attempts cannot all pass the lock check before the first of them is counted. A check
    /// beyond that waits for a running one to end (a browser's parallel Basic-auth requests
    /// after one typo), up to 3 s, then is refused.
    pub fn begin(&self, user: &str, remote: Option<&str>) -> Result<Slot<'_>, Refusal> {
        if self.settings.is_off() {
            return Ok(Slot { held: None });
        }
        let mut slices = 0;
        loop {
            if let Some(locked) = self.locked(user, remote) {
                return Err(Refusal::Locked(locked));
            }
            let Some(allowed) = self.allowance(user) else {
                return Ok(Slot { held: None });
            };
            let mut inflight = self.inflight.lock().unwrap_or_else(PoisonError::into_inner);
            let n = inflight.entry(user.to_owned()).or_insert(0);
            if *n < allowed {
                *n += 1;
                return Ok(Slot {
                    held: Some((self, user.to_owned())),
                });
            }
            if slices >= BUSY_WAIT_SLICES {
                return Err(Refusal::Busy);
            }
            slices += 1;
            drop(
                self.released
                    .wait_timeout(inflight, BUSY_WAIT_SLICE)
                    .unwrap_or_else(PoisonError::into_inner),
            );
        }
    }

    /// How many checks of `user` may run at once, or `None` for no limit.
    fn allowance(&self, user: &str) -> Option<u32> {
        if self.settings.failures == 0 {
            return None;
        }
        let now = self.clock.unix_seconds();
        match self.read(user, now) {
            // No failure on record: no limit, so a client's parallel logins (a browser sending
            // Basic auth with every request, a mail client's connections) all go through.
            None => None,
            Some(e) if e.failures == 0 && e.lockouts == 0 => None,
            // On probation after a lock-out, one failure locks again: one check at a time.
            Some(e) if e.lockouts > 0 => Some(1),
            Some(e) => Some(self.settings.failures.saturating_sub(e.failures).max(1)),
        }
    }

    fn release(&self, user: &str) {
        let mut inflight = self.inflight.lock().unwrap_or_else(PoisonError::into_inner);
        if let Some(n) = inflight.get_mut(user) {
            *n = n.saturating_sub(1);
            if *n == 0 {
                inflight.remove(user);
            }
        }
        drop(inflight);
        self.released.notify_all();
    }

    fn log_lockout(&self, scope: Scope, jid: &str, remote: Option<&str>, seconds: i64) {
        // Fixed order, address first, every field free of spaces: the fail2ban filter
        // anchors on it, and no user name can smuggle an address into it.
        warn!(
            "xcauth: lockout remote={} user={} seconds={seconds} scope={}",
            remote_for_log(remote),
            field(jid, 256),
            scope.as_str()
        );
    }

    /// An accepted password: forgets the user's failures and lock-outs (and those of its user
    /// part across domains). Nothing is written when there is nothing to forget.
    pub fn succeeded(&self, user: &str) {
        if self.settings.failures == 0 {
            return;
        }
        let now = self.clock.unix_seconds();
        let mut keys = vec![user.to_owned()];
        keys.extend(local_key(user));
        for key in keys {
            if self.read(&key, now).is_some() {
                self.update(&key, now, &mut |_| None);
            }
        }
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
        assert_eq!(memory.len(), 2, "user:new and local:new");
    }

    #[test]
    fn remote_keys_fold_mapped_v4_and_ipv6_by_64() {
        assert_eq!(remote_key("::ffff:192.0.2.7"), remote_key("192.0.2.7"));
        assert_eq!(remote_key(" 192.0.2.7 "), "remote:192.0.2.7");
        assert_eq!(
            remote_key("2001:db8:1:2:aaaa::1"),
            remote_key("[2001:db8:1:2:ffff::9]")
        );
        assert_ne!(remote_key("2001:db8:1:2::1"), remote_key("2001:db8:1:3::1"));
        assert_eq!(remote_key("Host.Example"), "remote:host.example");
    }

    #[test]
    fn log_fields_cannot_hold_spaces_equals_or_quotes() {
        assert_eq!(field("alice@example.org", 64), "alice@example.org");
        assert_eq!(
            field("x remote=1.2.3.4 \"y\"", 64),
            "x%20remote%3D1.2.3.4%20%22y%22"
        );
        assert_eq!(field("ä", 64), "%C3%A4");
        assert_eq!(remote_for_log(Some("::ffff:192.0.2.7")), "192.0.2.7");
        assert_eq!(remote_for_log(Some("evil 1.2.3.4")), "host:evil%201.2.3.4");
        assert_eq!(remote_for_log(Some(" ")), "-");
        assert_eq!(remote_for_log(None), "-");
    }

    #[test]
    fn concurrent_checks_of_one_user_are_bounded_by_the_failures_left() {
        let clock = Arc::new(ManualClock::at(0));
        let t = throttle(&clock);
        // No failure on record: parallel logins are not limited.
        let slots: Vec<_> = (0..20).map(|_| t.begin(ALICE, None).unwrap()).collect();
        drop(slots);
        // Two failures leave three checks at a time.
        t.failed(ALICE, "a", None);
        t.failed(ALICE, "a", None);
        let slots: Vec<_> = (0..3).map(|_| t.begin(ALICE, None).unwrap()).collect();
        assert_eq!(
            t.begin(ALICE, None).unwrap_err(),
            Refusal::Busy,
            "after the wait"
        );
        assert!(
            t.begin("user:bob@example.org", None).is_ok(),
            "others unaffected"
        );
        // A waiting check goes on as soon as a running one ends.
        std::thread::scope(|s| {
            let waiter = s.spawn(|| t.begin(ALICE, None).map(drop));
            drop(slots);
            assert_eq!(waiter.join().unwrap(), Ok(()));
        });
        // On probation after a lock-out: one at a time.
        for _ in 0..3 {
            t.failed(ALICE, "a", None);
        }
        clock.advance(60);
        let first = t.begin(ALICE, None).unwrap();
        assert_eq!(t.begin(ALICE, None).unwrap_err(), Refusal::Busy);
        drop(first);
    }

    /// A shared store that can be read but never written (a read-only or full database).
    #[derive(Debug)]
    struct ReadOnly;

    impl ThrottleStore for ReadOnly {
        fn get(&self, _: &str, _: i64) -> Result<Option<Entry>, String> {
            Ok(None)
        }
        fn update(
            &self,
            _: &str,
            _: i64,
            _: &mut dyn FnMut(Option<Entry>) -> Option<Entry>,
        ) -> Result<Option<Entry>, String> {
            Err("attempt to write a readonly database".into())
        }
        fn put(&self, _: &str, _: Option<Entry>, _: i64) {}
    }

    #[test]
    fn a_store_that_cannot_be_written_does_not_wipe_the_count() {
        let clock = Arc::new(ManualClock::at(0));
        let t = Throttle::new(
            ThrottleSettings::default(),
            clock.clone(),
            Arc::new(MemoryStore::new(100)),
            Some(Arc::new(ReadOnly)),
        );
        for _ in 0..5 {
            assert_eq!(t.locked(ALICE, None), None);
            t.failed(ALICE, "a", None);
        }
        assert!(t.locked(ALICE, None).is_some());
    }

    #[test]
    fn a_flood_of_new_keys_does_not_evict_a_guesser_on_probation() {
        let clock = Arc::new(ManualClock::at(0));
        let memory = Arc::new(MemoryStore::new(3));
        let t = Throttle::new(ThrottleSettings::default(), clock.clone(), memory, None);
        for _ in 0..5 {
            t.failed(ALICE, "a", None);
        }
        clock.advance(61);
        // Probation: alice's entry expires soonest of all, but has a lock-out behind it.
        for i in 0..10 {
            t.failed(&format!("user:u{i}@example.org"), "u", None);
        }
        t.failed(ALICE, "a", None);
        assert_eq!(t.locked(ALICE, None).map(|l| l.seconds), Some(120));
    }
}
