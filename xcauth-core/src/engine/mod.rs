//! The decision engine: the one place where xcauth decides a login.
//!
//! `auth` tries, in order (docs/xcauth2.md §4.1, with the divergences of §7):
//! 1. the time-limited token (local, no backend call);
//! 2. the credential cache under its normal TTLs;
//! 3. the backend: accepted → cache the password; rejected → evict a cached
//!    entry that this (now wrong) password still matches; unavailable →
//! 4. the cache under the unreachable TTL, else "unavailable".
//!
//! With a [`Throttle`] (docs/throttling.md), a user or remote address that is locked
//! out after too many rejected passwords is rejected before step 2: no password is
//! checked at all (not the cache, not the backend), while valid tokens still pass.
//!
//! Every decision is logged once at INFO with user, domain, result and how it
//! was reached. Passwords never reach a log line.
//!
//! # Layout
//!
//! - this file: the [`Engine`], how it is built, and the metering of backend calls;
//! - `route`: which [`crate::backend::Target`] (kind, URL, secret, authdomain) serves a
//!   domain, from the global settings or a `domains` row ([`GlobalBackend`], [`resolve`]);
//! - `flow`: the decision above ([`Engine::auth`], [`Engine::login`]);
//! - `names`: whether the account an acceptance names is the one the typed name spells;
//! - `throttling`: the glue to the [`Throttle`];
//! - `hooks`: [`AfterLogin`], run after every accepted login;
//! - `queries`: the other questions ([`Engine::isuser`], [`Engine::roster`],
//!   [`Engine::groups_of_account`]).

use std::sync::Arc;

use crate::backend::Backend;
use crate::cache::{CredentialCache, NoCache};
use crate::clock::Clock;
use crate::domains::{Domains, NoDomains};
use crate::metrics::{BackendOp, CacheLookup, CallOutcome, Metrics, Snapshot};
use crate::pamsock::Decider;
use crate::secret::Password;
use crate::throttle::Throttle;
use crate::vocab::{Login, LoginRules, Unavailable, UserExists};

mod flow;
mod hooks;
mod names;
mod queries;
mod route;
#[cfg(test)]
mod tests;
mod throttling;

pub use self::hooks::AfterLogin;
pub use self::route::{resolve, resolve_row, GlobalBackend};

/// The decision engine. Cheap to share: wrap it in an `Arc` and call it from
/// any number of threads.
#[derive(Debug)]
pub struct Engine {
    global: GlobalBackend,
    backend: Arc<dyn Backend>,
    cache: Arc<dyn CredentialCache>,
    domains: Arc<dyn Domains>,
    clock: Arc<dyn Clock>,
    after_login: Option<Arc<dyn AfterLogin>>,
    served: Option<Vec<String>>,
    allow_insecure_http: bool,
    throttle: Option<Arc<Throttle>>,
    metrics: Option<Arc<Metrics>>,
}

impl Engine {
    /// An engine with no cache and no per-domain table.
    pub fn new(global: GlobalBackend, backend: Arc<dyn Backend>, clock: Arc<dyn Clock>) -> Self {
        Self {
            global,
            backend,
            cache: Arc::new(NoCache),
            domains: Arc::new(NoDomains),
            clock,
            after_login: None,
            served: None,
            allow_insecure_http: false,
            throttle: None,
            metrics: None,
        }
    }

    /// Counts backend calls, cache lookups, throttling and accepted logins in `metrics`
    /// (none by default: the PAM module counts nothing).
    #[must_use]
    pub fn with_metrics(mut self, metrics: Arc<Metrics>) -> Self {
        self.metrics = Some(metrics);
        self
    }

    /// The counters, if this engine keeps any (the framings and the pam socket server count
    /// their requests here; the roster worker its syncs).
    pub fn metrics(&self) -> Option<&Metrics> {
        self.metrics.as_deref()
    }

    /// The counters now, with the URLs whose circuit breaker is open; `None` without a
    /// registry.
    pub fn stats(&self) -> Option<Snapshot> {
        let m = self.metrics.as_deref()?;
        Some(m.snapshot(self.clock.instant(), self.backend.open_circuits()))
    }

    /// Runs one backend call, timed and counted.
    pub(super) fn timed<T>(
        &self,
        op: BackendOp,
        call: impl FnOnce() -> T,
        why: impl Fn(&T) -> Option<&Unavailable>,
    ) -> T {
        let Some(m) = self.metrics.as_deref() else {
            return call();
        };
        let started = self.clock.instant();
        let reply = call();
        let took = self.clock.instant().saturating_duration_since(started);
        let outcome = match why(&reply) {
            None => CallOutcome::Answered,
            Some(Unavailable::CircuitOpen) => CallOutcome::Skipped,
            Some(_) => CallOutcome::Unavailable,
        };
        m.backend_call(op, outcome, took);
        reply
    }

    pub(super) fn count_cache(&self, lookup: CacheLookup, hit: bool) {
        if let Some(m) = &self.metrics {
            m.cache_lookup(lookup, hit);
        }
    }

    /// Throttles password guessing with `throttle` (none by default).
    #[must_use]
    pub fn with_throttle(mut self, throttle: Arc<Throttle>) -> Self {
        self.throttle = Some(throttle);
        self
    }

    /// The throttle, if any.
    pub fn throttle(&self) -> Option<&Throttle> {
        self.throttle.as_deref()
    }

    /// Accepts plain-http backend URLs on hosts other than loopback
    /// (`allow-insecure-http`); off by default.
    #[must_use]
    pub fn with_insecure_http(mut self, allow: bool) -> Self {
        self.allow_insecure_http = allow;
        self
    }

    /// Uses `cache` for the cache steps.
    #[must_use]
    pub fn with_cache(mut self, cache: Arc<dyn CredentialCache>) -> Self {
        self.cache = cache;
        self
    }

    /// Serves only these domains (lower-case) with the global backend; a
    /// domain with a `domains` row is served by that row either way. `None`
    /// (the default) serves any domain.
    #[must_use]
    pub fn with_served_domains(mut self, served: Option<Vec<String>>) -> Self {
        self.served = served;
        self
    }

    /// Uses `domains` for per-domain settings.
    #[must_use]
    pub fn with_domains(mut self, domains: Arc<dyn Domains>) -> Self {
        self.domains = domains;
        self
    }

    /// Runs `hook` after each accepted login.
    #[must_use]
    pub fn with_after_login(mut self, hook: Arc<dyn AfterLogin>) -> Self {
        self.after_login = Some(hook);
        self
    }

    /// The clock this engine reads.
    pub fn clock(&self) -> &dyn Clock {
        self.clock.as_ref()
    }

    /// The backend this engine asks.
    pub fn backend(&self) -> &dyn Backend {
        self.backend.as_ref()
    }

    /// The backend this engine asks, to be kept by a worker that outlives a borrow (the roster
    /// sync asks it off the reply path, through the same client and circuit breaker).
    pub fn shared_backend(&self) -> Arc<dyn Backend> {
        Arc::clone(&self.backend)
    }
}

/// The pam socket's server asks the engine through its own seam, so the protocol's code needs
/// nothing of the engine.
impl Decider for Engine {
    fn login(&self, u: &str, d: &str, p: &Password, rules: LoginRules<'_>) -> Login {
        Engine::login(self, u, d, p, rules)
    }
    fn isuser(&self, user: &str, domain: &str) -> UserExists {
        Engine::isuser(self, user, domain)
    }
    fn groups_of_account(&self, uid: &str, domain: &str) -> Result<Vec<String>, Unavailable> {
        Engine::groups_of_account(self, uid, domain)
    }
    fn metrics(&self) -> Option<&Metrics> {
        Engine::metrics(self)
    }
    fn stats(&self) -> Option<Snapshot> {
        Engine::stats(self)
    }
}
