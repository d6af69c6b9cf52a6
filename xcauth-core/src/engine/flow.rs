//! The decision of one login: token, cache, backend, the cache while the backend is
//! unreachable (the order is described in [`super`]).

use log::{debug, info, warn};

use super::names::{spelling, Spelling};
use super::route::Route;
use super::Engine;
use crate::cache::{CacheCheck, Lookup};
use crate::logsafe;
use crate::metrics::{BackendOp, CacheLookup};
use crate::secret::Password;
use crate::throttle;
use crate::token::{self, TokenCheck};
use crate::vocab::{
    AuthDecision, AuthReply, Login, LoginRules, Unavailable, Via, BCRYPT_MAX_PASSWORD,
};

impl Engine {
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
                let named = uid.as_deref();
                let exact = match spelling(rules.names, user, domain, &target.authdomain, named) {
                    Spelling::Exact => true,
                    Spelling::Matches => false,
                    Spelling::Foreign => {
                        warn!(
                            "auth {jid}: the password belongs to the Nextcloud account {}, \
                             which this name does not spell; refused",
                            logsafe::clean(named.unwrap_or_default(), 128)
                        );
                        self.count_failure(&throttle_key, jid, rules.remote);
                        return answer(AuthDecision::Rejected);
                    }
                    Spelling::Unknown => {
                        warn!(
                            "auth {jid}: the backend accepted the password but did not say \
                             which Nextcloud account logged in (data.uid); refused: update \
                             the JSXC app"
                        );
                        return answer(AuthDecision::Rejected);
                    }
                    Spelling::Unnamed => {
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
}
