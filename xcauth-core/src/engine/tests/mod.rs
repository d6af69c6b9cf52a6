//! The engine with the scripted backend ([`script::Script`]) and a fake cache.

use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::Arc;
use std::time::SystemTime;

use self::script::Script;
use super::{Engine, GlobalBackend};
use crate::cache::{CacheCheck, CredentialCache, Lookup};
use crate::clock::ManualClock;
use crate::secret::{Password, Secret};
use crate::throttle::{MemoryStore, Throttle, ThrottleSettings};
use crate::vocab::BackendUrl;

mod flow;
mod queries;
mod route;
mod script;
mod throttle;

/// The global secret of [`engine`]'s engines (tokens are signed with it).
const SECRET: &str = "s";

/// A cache that answers every lookup as it was told and counts what it is asked.
#[derive(Debug)]
struct FakeCache {
    normal: CacheCheck,
    unreachable: CacheCheck,
    checks: AtomicUsize,
    stores: AtomicUsize,
    forgets: AtomicUsize,
}

impl FakeCache {
    fn checks(&self) -> usize {
        self.checks.load(Ordering::SeqCst)
    }
    fn stores(&self) -> usize {
        self.stores.load(Ordering::SeqCst)
    }
    fn forgets(&self) -> usize {
        self.forgets.load(Ordering::SeqCst)
    }
}

impl CredentialCache for FakeCache {
    fn check(&self, _: &str, _: &Password, _: SystemTime, lookup: Lookup) -> CacheCheck {
        self.checks.fetch_add(1, Ordering::SeqCst);
        match lookup {
            Lookup::Normal => self.normal,
            Lookup::Unreachable => self.unreachable,
        }
    }
    fn store(&self, _: &str, _: &Password, _: SystemTime) {
        self.stores.fetch_add(1, Ordering::SeqCst);
    }
    fn forget_if_matches(&self, _: &str, _: &Password) {
        self.forgets.fetch_add(1, Ordering::SeqCst);
    }
    fn kind(&self) -> &'static str {
        "fake"
    }
}

/// An engine asking `script`, with a cache that answers `normal` and `unreachable`, at the
/// Unix time `clock` shows.
fn engine_at(
    script: Script,
    normal: CacheCheck,
    unreachable: CacheCheck,
    clock: &Arc<ManualClock>,
) -> (Engine, Arc<FakeCache>) {
    let cache = Arc::new(FakeCache {
        normal,
        unreachable,
        checks: AtomicUsize::new(0),
        stores: AtomicUsize::new(0),
        forgets: AtomicUsize::new(0),
    });
    let global = GlobalBackend {
        url: BackendUrl::parse("https://cloud.example.org/").unwrap(),
        secret: Secret::new(SECRET),
    };
    let e = Engine::new(global, Arc::new(script), clock.clone()).with_cache(cache.clone());
    (e, cache)
}

/// [`engine_at`] at the Unix epoch.
fn engine(script: Script, normal: CacheCheck, unreachable: CacheCheck) -> (Engine, Arc<FakeCache>) {
    engine_at(script, normal, unreachable, &Arc::new(ManualClock::at(0)))
}

/// The throttle with its default settings, in memory, timed by `clock`.
fn throttle(clock: &Arc<ManualClock>) -> Arc<Throttle> {
    Arc::new(Throttle::new(
        ThrottleSettings::default(),
        clock.clone(),
        Arc::new(MemoryStore::new(100)),
        None,
    ))
}

/// A never-expiring token for `user@domain` under [`SECRET`].
fn token(user: &str, domain: &str) -> Password {
    Password::new(crate::token::generate(
        user,
        domain,
        &Secret::new(SECRET),
        u32::MAX,
    ))
}

fn pw(text: &str) -> Password {
    Password::new(text)
}
