//! The credential cache seam (docs/xcauth2.md §4).
//!
//! The engine asks the cache twice per backend miss at most: once on the
//! normal path before calling the backend, and once on the unreachable path
//! when the backend gives no usable answer. Implementations own their TTLs and
//! storage; a broken cache must behave as a miss (authentication never fails
//! because the cache failed).

use std::fmt;
use std::time::SystemTime;

use crate::secret::Password;

/// Which TTL rule a lookup applies (docs/xcauth2.md §4.4).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Lookup {
    /// `anyauth + query_ttl > now` and `remoteauth + verification_ttl > now`.
    Normal,
    /// The normal rule, or `remoteauth + unreachable_ttl > now`.
    Unreachable,
}

/// The result of a cache lookup.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum CacheCheck {
    /// The cache vouches for this password.
    Hit,
    /// No usable entry (none, too old, storage failure, not cacheable).
    Miss,
    /// An entry was checked and this password does not match its hash. A
    /// later `forget_if_matches` for the same password would do nothing, so
    /// the engine skips that second bcrypt run.
    Mismatch,
}

impl CacheCheck {
    /// True for [`CacheCheck::Hit`].
    pub fn is_hit(self) -> bool {
        self == CacheCheck::Hit
    }
}

/// Stores bcrypt hashes of passwords the backend accepted.
pub trait CredentialCache: Send + Sync + fmt::Debug {
    /// Whether `password` matches the cached hash for `jid` under the TTL
    /// rule `lookup`. A hit records `now` as the last use (`anyauth`).
    fn check(&self, jid: &str, password: &Password, now: SystemTime, lookup: Lookup) -> CacheCheck;

    /// Records a backend success for `jid` with this password at `now`.
    fn store(&self, jid: &str, password: &Password, now: SystemTime);

    /// The backend rejected `password` for `jid`: if it matches the cached
    /// hash, the password was changed or revoked, so the entry is removed.
    /// A non-matching wrong password leaves the entry alone.
    fn forget_if_matches(&self, jid: &str, password: &Password);

    /// A short name for logs (`none`, `memory`, `db`).
    fn kind(&self) -> &'static str;
}

/// `cache-storage=none`: nothing is cached, every password goes to the
/// backend, and a backend outage fails every login that is not a token.
/// This is xcauth's default and a real, documented mode.
#[derive(Debug, Clone, Copy, Default)]
pub struct NoCache;

impl CredentialCache for NoCache {
    fn check(
        &self,
        _jid: &str,
        _password: &Password,
        _now: SystemTime,
        _lookup: Lookup,
    ) -> CacheCheck {
        CacheCheck::Miss
    }

    fn store(&self, _jid: &str, _password: &Password, _now: SystemTime) {}

    fn forget_if_matches(&self, _jid: &str, _password: &Password) {}

    fn kind(&self) -> &'static str {
        "none"
    }
}
