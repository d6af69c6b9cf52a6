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

use std::fmt;
use std::sync::Arc;

use log::{debug, info, warn};

use crate::backend::jsxc;
use crate::backend::{Backend, Target};
use crate::cache::{CacheCheck, CredentialCache, Lookup, NoCache};
use crate::clock::Clock;
use crate::domains::{self, Domains, GlobalBackend, NoDomains};
use crate::logsafe;
use crate::metrics::{BackendOp, CacheLookup, CallOutcome, Metrics};
use crate::secret::Password;
use crate::throttle::{self, Refusal, Slot, Throttle};
use crate::token::{self, TokenCheck};
use crate::vocab::{
    AuthDecision, AuthReply, Login, LoginRules, NameMatch, RosterReply, Unavailable, UserExists,
    Via, BCRYPT_MAX_PASSWORD,
};

/// Runs after every accepted login (token, cache or backend; not on the
/// unreachable path). The shared-roster sync plugs in here; it must not block
/// the reply for long.
pub trait AfterLogin: Send + Sync + fmt::Debug {
    /// Called with the resolved target, user and XMPP domain.
    fn after_login(&self, engine: &Engine, target: &Target, user: &str, domain: &str);
}

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

/// Where a domain's logins go.
enum Route {
    /// This backend serves the domain.
    Serve(Target),
    /// Nobody here serves the domain: its names are unknown users.
    NotServed,
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
    pub fn stats(&self) -> Option<crate::metrics::Snapshot> {
        let m = self.metrics.as_deref()?;
        Some(m.snapshot(self.clock.instant(), self.backend.open_circuits()))
    }

    /// Runs one backend call, timed and counted.
    fn timed<T>(
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

    fn count_cache(&self, lookup: CacheLookup, hit: bool) {
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

    /// Before a password is checked: `None` (with a DEBUG line) while the user or the address
    /// is locked out, or while as many checks of this user run as failures are still allowed;
    /// otherwise the slot of this check (ended when dropped).
    fn begin_check(&self, key: &str, remote: Option<&str>, jid: &str) -> Option<Slot<'_>> {
        let Some(throttle) = &self.throttle else {
            return Some(Slot::none());
        };
        match throttle.begin(key, remote) {
            Ok(slot) => Some(slot),
            Err(Refusal::Locked(locked)) => {
                debug!(
                    "auth {jid}: {} locked out for {}s more: rejected without checking the \
                     password",
                    locked.scope.as_str(),
                    locked.seconds
                );
                if let Some(m) = &self.metrics {
                    m.throttle_refused();
                }
                None
            }
            Err(Refusal::Busy) => {
                debug!(
                    "auth {jid}: as many checks of this user run already as failures are \
                     allowed: rejected without checking the password"
                );
                if let Some(m) = &self.metrics {
                    m.throttle_refused();
                }
                None
            }
        }
    }

    fn count_failure(&self, key: &str, jid: &str, remote: Option<&str>) {
        if let Some(t) = &self.throttle {
            for scope in t.failed(key, jid, remote) {
                if let Some(m) = &self.metrics {
                    m.lockout(scope);
                }
            }
        }
    }

    fn count_success(&self, key: &str) {
        if let Some(t) = &self.throttle {
            t.succeeded(key);
        }
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

    /// The URL, secret and authdomain serving `domain`. A domain that is not
    /// served is reported as misconfigured.
    pub fn target(&self, domain: &str) -> Result<Target, Unavailable> {
        match self.route(domain)? {
            Route::Serve(target) => Ok(target),
            Route::NotServed => Err(Unavailable::Misconfigured(format!(
                "domain {} is not served here",
                logsafe::clean(domain, 128)
            ))),
        }
    }

    fn route(&self, domain: &str) -> Result<Route, Unavailable> {
        // Fail closed: without the per-domain table we cannot know whether
        // this domain belongs to another Nextcloud, so asking the global one
        // could let its users in under a foreign domain.
        let row = match self.domains.lookup(domain) {
            Ok(row) => row,
            Err(e) => {
                let why = format!(
                    "cannot read the per-domain settings for {}: {e}",
                    logsafe::clean(domain, 128)
                );
                log::error!("{why}");
                return Err(Unavailable::Misconfigured(why));
            }
        };
        if row.is_none() && !self.serves_globally(domain) {
            return Ok(Route::NotServed);
        }
        // The global URL was checked with the configuration; a row's URL is
        // checked here, where it is first used.
        let from_row = row.is_some();
        let target = domains::resolve(&self.global, row, domain).and_then(|t| {
            let insecure = reqwest::Url::parse(&t.url).is_ok_and(|u| jsxc::is_insecure_url(&u));
            if from_row && insecure && !self.allow_insecure_http {
                return Err(Unavailable::Misconfigured(format!(
                    "backend url {} for {} is plain http to a host other than loopback; \
                     refused (use https, or set allow-insecure-http)",
                    t.url,
                    logsafe::clean(domain, 128)
                )));
            }
            Ok(t)
        });
        match target {
            Ok(target) => Ok(Route::Serve(target)),
            Err(e) => {
                log::error!("{e}");
                Err(e)
            }
        }
    }

    fn serves_globally(&self, domain: &str) -> bool {
        match &self.served {
            None => true,
            Some(list) => list.iter().any(|d| d.eq_ignore_ascii_case(domain)),
        }
    }

    /// Decides a login of `user@domain` with `password`, under the default
    /// [`LoginRules`] (exact names, cache allowed).
    pub fn auth(&self, user: &str, domain: &str, password: &Password) -> AuthDecision {
        self.login(user, domain, password, LoginRules::default())
            .decision
    }

    /// Decides a login of `user@domain` with `password` under `rules`.
    pub fn login(
        &self,
        user: &str,
        domain: &str,
        password: &Password,
        rules: LoginRules<'_>,
    ) -> Login {
        let jid = logsafe::jid(user, domain);
        let login = self.decide(user, domain, password, &jid, rules);
        if let (Some(m), AuthDecision::Accepted(via)) = (&self.metrics, &login.decision) {
            m.login(via.as_str());
        }
        match &login.uid {
            Some(uid) if login.decision.is_accepted() => info!(
                "auth {jid}: {} (account {})",
                login.decision,
                logsafe::clean(uid, 128)
            ),
            _ => info!("auth {jid}: {}", login.decision),
        }
        login
    }

    fn decide(
        &self,
        user: &str,
        domain: &str,
        password: &Password,
        jid: &str,
        rules: LoginRules<'_>,
    ) -> Login {
        let answer = |decision| Login {
            decision,
            uid: None,
        };
        if user.is_empty() || password.is_empty() {
            debug!("auth {jid}: empty user or password");
            return answer(AuthDecision::Rejected);
        }
        if domain.contains('@') || domain.ends_with('.') {
            // `user@domain` must be unambiguous: it keys the cache and the token
            // MAC. A trailing dot would be one more spelling of a domain. (An
            // empty domain is saslauthd without a realm: the bare user name.)
            debug!("auth {jid}: not a usable domain");
            return answer(AuthDecision::Rejected);
        }
        let cacheable = password.len() <= BCRYPT_MAX_PASSWORD;
        let cache_key = format!("{user}@{domain}");
        let throttle_key = throttle::user_key(user, domain);
        let target = match self.route(domain) {
            Ok(Route::Serve(t)) => t,
            Ok(Route::NotServed) => {
                info!("auth {jid}: domain not served here");
                return answer(AuthDecision::Rejected);
            }
            Err(why) => {
                let Some(_slot) = self.begin_check(&throttle_key, rules.remote, jid) else {
                    return answer(AuthDecision::Rejected);
                };
                let decision = self.unreachable_path(&cache_key, password, cacheable, why);
                self.settle_unreachable(&throttle_key, jid, rules.remote, &decision);
                return answer(decision.0);
            }
        };

        match token::verify(
            password,
            user,
            domain,
            &target.secret,
            self.clock.unix_seconds(),
        ) {
            TokenCheck::Valid => {
                self.run_after_login(&target, user, domain);
                return Login {
                    decision: AuthDecision::Accepted(Via::Token),
                    uid: Some(user.to_owned()),
                };
            }
            TokenCheck::BadSignature => {
                warn!("token for {jid} has an invalid signature (possible attack attempt)");
            }
            other => debug!("auth {jid}: {}", other.describe()),
        }

        // A token could not be guessed; a password could: during a lock-out none is checked.
        let Some(_slot) = self.begin_check(&throttle_key, rules.remote, jid) else {
            return answer(AuthDecision::Rejected);
        };

        if !cacheable {
            debug!("auth {jid}: password longer than {BCRYPT_MAX_PASSWORD} bytes, cache bypassed");
        }

        let cached = if cacheable && !rules.need_uid {
            let cached = self
                .cache
                .check(&cache_key, password, self.clock.now(), Lookup::Normal);
            self.count_cache(CacheLookup::Normal, cached.is_hit());
            cached
        } else {
            CacheCheck::Miss
        };
        if cached.is_hit() {
            self.count_success(&throttle_key);
            self.run_after_login(&target, user, domain);
            return answer(AuthDecision::Accepted(Via::Cache));
        }

        let reply = self.timed(
            BackendOp::Auth,
            || self.backend.auth(&target, user, password),
            |r| match r {
                AuthReply::Unavailable(why) => Some(why),
                _ => None,
            },
        );
        match reply {
            AuthReply::Accepted { uid } => {
                // Only a name that spells the account exactly is remembered:
                // the cache cannot re-check the name, so a case-folded match
                // must not teach it a second spelling.
                // The backend was asked for `user@authdomain` (a `domains` row
                // may map the XMPP domain to another one), then `user`.
                let spells = |rule: NameMatch, uid: &str| {
                    rule.matches(user, domain, uid) || rule.matches(user, &target.authdomain, uid)
                };
                let exact = match &uid {
                    Some(uid) if !spells(rules.names, uid) => {
                        warn!(
                            "auth {jid}: the password belongs to the Nextcloud account {}, \
                             which this name does not spell; refused",
                            logsafe::clean(uid, 128)
                        );
                        self.count_failure(&throttle_key, jid, rules.remote);
                        return answer(AuthDecision::Rejected);
                    }
                    Some(uid) => spells(NameMatch::Exact, uid),
                    None if rules.names == NameMatch::Exact => {
                        // Without the uid the name cannot be checked, and one account
                        // would answer to every spelling: refuse (fail closed).
                        warn!(
                            "auth {jid}: the backend accepted the password but did not say \
                             which Nextcloud account logged in (data.uid); refused: update \
                             the JSXC app"
                        );
                        return answer(AuthDecision::Rejected);
                    }
                    None => {
                        debug!("auth {jid}: the backend did not say which account logged in");
                        false
                    }
                };
                if cacheable && exact {
                    self.cache.store(&cache_key, password, self.clock.now());
                }
                self.count_success(&throttle_key);
                self.run_after_login(&target, user, domain);
                Login {
                    decision: AuthDecision::Accepted(Via::Backend),
                    uid,
                }
            }
            AuthReply::Rejected => {
                // A password that just failed to match the entry cannot
                // evict it; skip the second bcrypt run.
                if cacheable && cached != CacheCheck::Mismatch {
                    self.cache.forget_if_matches(&cache_key, password);
                }
                self.count_failure(&throttle_key, jid, rules.remote);
                answer(AuthDecision::Rejected)
            }
            AuthReply::Unavailable(why @ Unavailable::BudgetUsedUp) => {
                // Our own caller ran out of time: nothing is known about the backend, so the
                // cache's unreachable path (meant for outages) must not vouch.
                warn!("auth {jid}: {why}");
                answer(AuthDecision::Unavailable(why))
            }
            AuthReply::Unavailable(why) => {
                warn!("backend unavailable for {jid} at {}: {why}", target.url);
                let decision = self.unreachable_path(&cache_key, password, cacheable, why);
                self.settle_unreachable(&throttle_key, jid, rules.remote, &decision);
                answer(decision.0)
            }
        }
    }

    /// The cache under the unreachable TTL: the decision, and what the cache said (a
    /// mismatch is a wrong guess and stays counted by the throttle).
    fn unreachable_path(
        &self,
        cache_key: &str,
        password: &Password,
        cacheable: bool,
        why: Unavailable,
    ) -> (AuthDecision, CacheCheck) {
        let check = if cacheable {
            let check =
                self.cache
                    .check(cache_key, password, self.clock.now(), Lookup::Unreachable);
            self.count_cache(CacheLookup::Unreachable, check.is_hit());
            check
        } else {
            CacheCheck::Miss
        };
        if check.is_hit() {
            (AuthDecision::Accepted(Via::UnreachableCache), check)
        } else {
            (AuthDecision::Unavailable(why), check)
        }
    }

    /// The throttle after the unreachable path: a hit is a success, a mismatch a wrong
    /// guess (an outage must not give unlimited guesses against the cached hash).
    fn settle_unreachable(
        &self,
        throttle_key: &str,
        jid: &str,
        remote: Option<&str>,
        decision: &(AuthDecision, CacheCheck),
    ) {
        match decision.1 {
            CacheCheck::Hit => self.count_success(throttle_key),
            CacheCheck::Mismatch => self.count_failure(throttle_key, jid, remote),
            CacheCheck::Miss => {}
        }
    }

    fn run_after_login(&self, target: &Target, user: &str, domain: &str) {
        if let Some(hook) = &self.after_login {
            hook.after_login(self, target, user, domain);
        }
    }

    /// Asks the backend whether `user@domain` exists. No cache, no token.
    /// A name in a domain that is not served does not exist.
    pub fn isuser(&self, user: &str, domain: &str) -> UserExists {
        let jid = logsafe::jid(user, domain);
        let answer = if domain.contains('@') || domain.ends_with('.') {
            UserExists::No
        } else {
            match self.route(domain) {
                Ok(Route::Serve(target)) => self.timed(
                    BackendOp::IsUser,
                    || self.backend.isuser(&target, user),
                    |r| match r {
                        UserExists::Unknown(why) => Some(why),
                        _ => None,
                    },
                ),
                Ok(Route::NotServed) => {
                    debug!("isuser {jid}: domain not served here");
                    UserExists::No
                }
                Err(why) => UserExists::Unknown(why),
            }
        };
        match &answer {
            UserExists::Yes => info!("isuser {jid}: exists"),
            UserExists::No => info!("isuser {jid}: does not exist"),
            UserExists::Unknown(why) => info!("isuser {jid}: unknown ({why})"),
        }
        answer
    }

    fn timed_roster(&self, target: &Target, user: &str) -> RosterReply {
        self.timed(
            BackendOp::Roster,
            || self.backend.sharedroster(target, user),
            |r| match r {
                RosterReply::Unavailable(why) => Some(why),
                RosterReply::Roster(_) => None,
            },
        )
    }

    /// Fetches the shared roster of `user@domain`.
    pub fn roster(&self, user: &str, domain: &str) -> RosterReply {
        match self.target(domain) {
            Ok(target) => self.timed_roster(&target, user),
            Err(why) => RosterReply::Unavailable(why),
        }
    }

    /// The Nextcloud groups of exactly the account `uid` (as [`Login::uid`]
    /// names it) on the backend serving `domain`.
    ///
    /// The roster is asked for `uid` with an empty domain, so Nextcloud looks
    /// up that account and no other (with a domain it would try `uid@domain`
    /// first), and only the entry spelled exactly `uid` counts: an account
    /// `dave` is never credited with the groups of `dave@example.org`.
    pub fn groups_of_account(&self, uid: &str, domain: &str) -> Result<Vec<String>, Unavailable> {
        let mut target = self.target(domain)?;
        target.authdomain = String::new();
        let roster = match self.timed_roster(&target, uid) {
            RosterReply::Roster(r) => r,
            RosterReply::Unavailable(why) => return Err(why),
        };
        Ok(roster
            .entries
            .iter()
            .find(|e| e.uid == uid)
            .map(|e| e.groups.clone())
            .unwrap_or_default())
    }
}

#[cfg(test)]
mod tests {
    use std::sync::atomic::{AtomicUsize, Ordering};
    use std::sync::Mutex;
    use std::time::SystemTime;

    use super::*;
    use crate::clock::ManualClock;
    use crate::secret::Secret;

    #[derive(Debug)]
    struct Scripted(Mutex<Vec<AuthReply>>);

    impl Backend for Scripted {
        fn auth(&self, _: &Target, user: &str, _: &Password) -> AuthReply {
            match self.0.lock().unwrap().remove(0) {
                AuthReply::Accepted { uid: None } if user != "no-uid" => AuthReply::Accepted {
                    uid: Some(user.to_owned()),
                },
                reply => reply,
            }
        }
        fn isuser(&self, _: &Target, _: &str) -> UserExists {
            UserExists::Yes
        }
        fn sharedroster(&self, _: &Target, _: &str) -> RosterReply {
            RosterReply::Unavailable(Unavailable::Status(500))
        }
    }

    #[derive(Debug)]
    struct FakeCache {
        normal: CacheCheck,
        unreachable: CacheCheck,
        forgets: AtomicUsize,
        stores: AtomicUsize,
    }

    impl CredentialCache for FakeCache {
        fn check(&self, _: &str, _: &Password, _: SystemTime, lookup: Lookup) -> CacheCheck {
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

    fn engine(
        replies: Vec<AuthReply>,
        normal: CacheCheck,
        unreachable: CacheCheck,
    ) -> (Engine, Arc<FakeCache>) {
        let cache = Arc::new(FakeCache {
            normal,
            unreachable,
            forgets: AtomicUsize::new(0),
            stores: AtomicUsize::new(0),
        });
        let e = Engine::new(
            GlobalBackend {
                url: "http://x/".into(),
                secret: Secret::new("s"),
            },
            Arc::new(Scripted(Mutex::new(replies))),
            Arc::new(ManualClock::at(0)),
        )
        .with_cache(cache.clone());
        (e, cache)
    }

    #[test]
    fn rejected_password_that_mismatched_the_entry_skips_the_eviction_check() {
        let (e, c) = engine(
            vec![AuthReply::Rejected],
            CacheCheck::Mismatch,
            CacheCheck::Miss,
        );
        assert_eq!(
            e.auth("u", "d", &Password::new("pw")),
            AuthDecision::Rejected
        );
        assert_eq!(c.forgets.load(Ordering::SeqCst), 0);
        let (e, c) = engine(
            vec![AuthReply::Rejected],
            CacheCheck::Miss,
            CacheCheck::Miss,
        );
        assert_eq!(
            e.auth("u", "d", &Password::new("pw")),
            AuthDecision::Rejected
        );
        assert_eq!(
            c.forgets.load(Ordering::SeqCst),
            1,
            "an expired entry may still match"
        );
    }

    #[derive(Debug)]
    struct UnreadableDomains;

    impl Domains for UnreadableDomains {
        fn lookup(&self, _: &str) -> Result<Option<crate::domains::DomainRow>, String> {
            Err("database disk image is malformed".into())
        }
    }

    #[test]
    fn unreadable_domain_table_fails_closed() {
        // The backend script is empty: a call would panic.
        let (e, _) = engine(vec![], CacheCheck::Miss, CacheCheck::Miss);
        let e = e.with_domains(Arc::new(UnreadableDomains));
        let token = crate::token::generate("u", "d", &Secret::new("s"), u32::MAX);
        assert!(matches!(
            e.auth("u", "d", &Password::new(&token)),
            AuthDecision::Unavailable(Unavailable::Misconfigured(_))
        ));
        assert!(matches!(e.isuser("u", "d"), UserExists::Unknown(_)));
    }

    #[test]
    fn an_acceptance_without_a_uid_is_refused_for_exact_names_and_never_cached() {
        let (e, c) = engine(
            vec![AuthReply::Accepted { uid: None }],
            CacheCheck::Miss,
            CacheCheck::Miss,
        );
        assert_eq!(
            e.auth("no-uid", "d", &Password::new("pw")),
            AuthDecision::Rejected
        );
        assert_eq!(c.stores.load(Ordering::SeqCst), 0);
        let (e, c) = engine(
            vec![AuthReply::Accepted { uid: None }],
            CacheCheck::Miss,
            CacheCheck::Miss,
        );
        let rules = LoginRules {
            names: NameMatch::IgnoreCase,
            need_uid: false,
            remote: None,
        };
        let login = e.login("no-uid", "d", &Password::new("pw"), rules);
        assert_eq!(login.decision, AuthDecision::Accepted(Via::Backend));
        assert_eq!(login.uid, None);
        assert_eq!(c.stores.load(Ordering::SeqCst), 0, "not cached");
    }

    #[test]
    fn budget_used_up_never_takes_the_unreachable_path() {
        let (e, _) = engine(
            vec![AuthReply::Unavailable(Unavailable::BudgetUsedUp)],
            CacheCheck::Miss,
            CacheCheck::Hit,
        );
        assert_eq!(
            e.auth("u", "d", &Password::new("pw")),
            AuthDecision::Unavailable(Unavailable::BudgetUsedUp)
        );
    }

    #[test]
    fn an_at_sign_in_the_domain_is_refused() {
        let (e, _) = engine(vec![], CacheCheck::Hit, CacheCheck::Hit);
        assert_eq!(
            e.auth("a", "b@c", &Password::new("pw")),
            AuthDecision::Rejected
        );
    }

    #[test]
    fn decision_order() {
        let (e, c) = engine(vec![], CacheCheck::Hit, CacheCheck::Miss);
        assert_eq!(
            e.auth("u", "d", &Password::new("pw")),
            AuthDecision::Accepted(Via::Cache)
        );
        let (e, c2) = engine(
            vec![AuthReply::Accepted { uid: None }],
            CacheCheck::Miss,
            CacheCheck::Miss,
        );
        assert_eq!(
            e.auth("u", "d", &Password::new("pw")),
            AuthDecision::Accepted(Via::Backend)
        );
        assert_eq!(c2.stores.load(Ordering::SeqCst), 1);
        let down = || AuthReply::Unavailable(Unavailable::Status(503));
        let (e, _) = engine(vec![down()], CacheCheck::Miss, CacheCheck::Hit);
        assert_eq!(
            e.auth("u", "d", &Password::new("pw")),
            AuthDecision::Accepted(Via::UnreachableCache)
        );
        let (e, _) = engine(vec![down()], CacheCheck::Miss, CacheCheck::Miss);
        assert_eq!(
            e.auth("u", "d", &Password::new("pw")),
            AuthDecision::Unavailable(Unavailable::Status(503))
        );
        // Over 72 bytes: the cache is never consulted or filled.
        let long = "x".repeat(73);
        let (e, c3) = engine(
            vec![AuthReply::Accepted { uid: None }],
            CacheCheck::Hit,
            CacheCheck::Hit,
        );
        assert_eq!(
            e.auth("u", "d", &Password::new(long)),
            AuthDecision::Accepted(Via::Backend)
        );
        assert_eq!(c3.stores.load(Ordering::SeqCst), 0);
        // Empty user or password: rejected without a backend call.
        let (e, _) = engine(vec![], CacheCheck::Miss, CacheCheck::Miss);
        assert_eq!(
            e.auth("", "d", &Password::new("pw")),
            AuthDecision::Rejected
        );
        assert_eq!(e.auth("u", "d", &Password::new("")), AuthDecision::Rejected);
        assert_eq!(c.forgets.load(Ordering::SeqCst), 0);
    }

    /// Counts backend calls; alice's password is "right", everything else is wrong.
    #[derive(Debug, Default)]
    struct Counting(AtomicUsize);

    impl Backend for Counting {
        fn auth(&self, _: &Target, user: &str, password: &Password) -> AuthReply {
            self.0.fetch_add(1, Ordering::SeqCst);
            if password.expose() == "right" {
                AuthReply::Accepted {
                    uid: Some(user.to_owned()),
                }
            } else {
                AuthReply::Rejected
            }
        }
        fn isuser(&self, _: &Target, _: &str) -> UserExists {
            UserExists::Yes
        }
        fn sharedroster(&self, _: &Target, _: &str) -> RosterReply {
            RosterReply::Unavailable(Unavailable::Status(500))
        }
    }

    fn throttled(clock: &Arc<ManualClock>) -> (Engine, Arc<Counting>) {
        let backend = Arc::new(Counting::default());
        let throttle = Throttle::new(
            crate::throttle::ThrottleSettings::default(),
            clock.clone(),
            Arc::new(crate::throttle::MemoryStore::new(100)),
            None,
        );
        let e = Engine::new(
            GlobalBackend {
                url: "http://x/".into(),
                secret: Secret::new("s"),
            },
            backend.clone(),
            clock.clone(),
        )
        .with_throttle(Arc::new(throttle));
        (e, backend)
    }

    #[test]
    fn an_outage_gives_no_free_guesses_against_the_cached_hash() {
        let clock = Arc::new(ManualClock::at(1_700_000_000));
        let down = || AuthReply::Unavailable(Unavailable::Status(503));
        let (e, _) = engine(
            (0..10).map(|_| down()).collect(),
            CacheCheck::Miss,
            CacheCheck::Mismatch,
        );
        let e = e.with_throttle(Arc::new(Throttle::new(
            crate::throttle::ThrottleSettings::default(),
            clock.clone(),
            Arc::new(crate::throttle::MemoryStore::new(100)),
            None,
        )));
        for _ in 0..5 {
            assert!(matches!(
                e.auth("u", "d", &Password::new("guess")),
                AuthDecision::Unavailable(_)
            ));
        }
        // Five wrong guesses against the cached hash lock the user: no sixth check at all
        // (the scripted backend still holds replies, so a call would not fail the test by
        // itself; the answer does).
        assert_eq!(
            e.auth("u", "d", &Password::new("guess")),
            AuthDecision::Rejected
        );
    }

    #[test]
    fn rotating_domains_meets_the_user_part_limit() {
        let clock = Arc::new(ManualClock::at(1_700_000_000));
        let (e, backend) = throttled(&clock);
        for i in 0..40 {
            let domain = format!("r{i}.invalid");
            e.auth("alice", &domain, &Password::new("guess"));
        }
        assert_eq!(
            backend.0.load(Ordering::SeqCst),
            10,
            "twice the user's allowance across all domains, then nothing"
        );
        // Another user part is not affected.
        assert!(e.auth("bob", "d", &Password::new("right")).is_accepted());
    }

    #[test]
    fn a_locked_out_user_is_rejected_without_a_backend_call_but_tokens_pass() {
        let clock = Arc::new(ManualClock::at(1_700_000_000));
        let (e, backend) = throttled(&clock);
        let calls = || backend.0.load(Ordering::SeqCst);
        for _ in 0..60 {
            assert_eq!(
                e.auth("alice", "d", &Password::new("guess")),
                AuthDecision::Rejected
            );
        }
        assert_eq!(
            calls(),
            5,
            "only the failures before the lock-out reach the backend"
        );
        // Even the right password is not checked during the lock-out.
        assert_eq!(
            e.auth("alice", "d", &Password::new("right")),
            AuthDecision::Rejected
        );
        assert_eq!(calls(), 5);
        // Other users are not slowed, and the same name in another case is the same key.
        assert_eq!(
            e.auth("bob", "d", &Password::new("right")),
            AuthDecision::Accepted(Via::Backend)
        );
        assert_eq!(
            e.auth("ALICE", "d", &Password::new("guess")),
            AuthDecision::Rejected
        );
        assert_eq!(calls(), 6);
        // A valid token still logs in.
        let token = crate::token::generate("alice", "d", &Secret::new("s"), u32::MAX);
        assert_eq!(
            e.auth("alice", "d", &Password::new(&token)),
            AuthDecision::Accepted(Via::Token)
        );
        // After the back-off the right password works and resets the count.
        clock.advance(60);
        assert_eq!(
            e.auth("alice", "d", &Password::new("right")),
            AuthDecision::Accepted(Via::Backend)
        );
        for _ in 0..4 {
            e.auth("alice", "d", &Password::new("guess"));
        }
        assert_eq!(
            e.auth("alice", "d", &Password::new("right")),
            AuthDecision::Accepted(Via::Backend),
            "four mistakes after a success do not lock"
        );
    }

    #[test]
    fn a_locked_remote_address_is_rejected_for_every_user_from_it_only() {
        let clock = Arc::new(ManualClock::at(1_700_000_000));
        let (e, backend) = throttled(&clock);
        let from = |remote| LoginRules {
            remote: Some(remote),
            ..LoginRules::default()
        };
        for i in 0..30 {
            let user = format!("u{}", i % 10);
            e.login(&user, "d", &Password::new("guess"), from("192.0.2.7"));
        }
        assert_eq!(backend.0.load(Ordering::SeqCst), 20);
        let d = e.login("bob", "d", &Password::new("right"), from("192.0.2.7"));
        assert_eq!(d.decision, AuthDecision::Rejected);
        let d = e.login("bob", "d", &Password::new("right"), from("198.51.100.1"));
        assert_eq!(d.decision, AuthDecision::Accepted(Via::Backend));
    }
}
