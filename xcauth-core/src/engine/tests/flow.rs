//! The decision: token, cache, backend, the cache while the backend is unreachable.

use super::script::Script;
use super::{engine, pw, token};
use crate::cache::CacheCheck;
use crate::vocab::{AuthDecision, AuthReply, LoginRules, NameMatch, Unavailable, Via};

fn down() -> AuthReply {
    AuthReply::Unavailable(Unavailable::Status(503))
}

#[test]
fn decision_order() {
    use CacheCheck::{Hit, Miss};
    // The cache vouches: no backend call.
    let (e, c) = engine(Script::default(), Hit, Miss);
    assert_eq!(
        e.auth("u", "d", &pw("pw")),
        AuthDecision::Accepted(Via::Cache)
    );
    assert_eq!((c.checks(), c.stores()), (1, 0));
    // A miss asks the backend; its acceptance is cached.
    let (e, c) = engine(Script::default().accept("u", "pw"), Miss, Miss);
    assert_eq!(
        e.auth("u", "d", &pw("pw")),
        AuthDecision::Accepted(Via::Backend)
    );
    assert_eq!(c.stores(), 1);
    // The backend is down: the cache under the unreachable TTL decides.
    let (e, _) = engine(Script::default().auth("u", "pw", down()), Miss, Hit);
    assert_eq!(
        e.auth("u", "d", &pw("pw")),
        AuthDecision::Accepted(Via::UnreachableCache)
    );
    let (e, _) = engine(Script::default().auth("u", "pw", down()), Miss, Miss);
    assert_eq!(
        e.auth("u", "d", &pw("pw")),
        AuthDecision::Unavailable(Unavailable::Status(503))
    );
    // Over 72 bytes: the cache is never consulted or filled.
    let long = "x".repeat(73);
    let (e, c) = engine(Script::default().accept("u", &long), Hit, Hit);
    assert_eq!(
        e.auth("u", "d", &pw(&long)),
        AuthDecision::Accepted(Via::Backend)
    );
    assert_eq!((c.checks(), c.stores()), (0, 0));
    // Empty user or password: rejected without a backend call, the cache left alone.
    let (e, c) = engine(Script::default(), Hit, Hit);
    assert_eq!(e.auth("", "d", &pw("pw")), AuthDecision::Rejected);
    assert_eq!(e.auth("u", "d", &pw("")), AuthDecision::Rejected);
    assert_eq!((c.checks(), c.stores(), c.forgets()), (0, 0, 0));
}

#[test]
fn a_valid_token_is_accepted_without_cache_or_backend() {
    let (e, c) = engine(Script::default(), CacheCheck::Miss, CacheCheck::Miss);
    let login = e.login("u", "d", &token("u", "d"), LoginRules::default());
    assert_eq!(login.decision, AuthDecision::Accepted(Via::Token));
    assert_eq!(login.uid.as_deref(), Some("u"));
    assert_eq!(c.checks(), 0);
    // A token for another user is a password like any other.
    let (e, _) = engine(
        Script::default().reject("u", token("v", "d").expose()),
        CacheCheck::Miss,
        CacheCheck::Miss,
    );
    assert_eq!(e.auth("u", "d", &token("v", "d")), AuthDecision::Rejected);
}

#[test]
fn rejected_password_that_mismatched_the_entry_skips_the_eviction_check() {
    let (e, c) = engine(
        Script::default().reject("u", "pw"),
        CacheCheck::Mismatch,
        CacheCheck::Miss,
    );
    assert_eq!(e.auth("u", "d", &pw("pw")), AuthDecision::Rejected);
    assert_eq!(c.forgets(), 0);
    let (e, c) = engine(
        Script::default().reject("u", "pw"),
        CacheCheck::Miss,
        CacheCheck::Miss,
    );
    assert_eq!(e.auth("u", "d", &pw("pw")), AuthDecision::Rejected);
    assert_eq!(c.forgets(), 1, "an expired entry may still match");
}

#[test]
fn an_acceptance_without_a_uid_is_refused_for_exact_names_and_never_cached() {
    let unnamed = || AuthReply::Accepted { uid: None };
    let (e, c) = engine(
        Script::default().auth("u", "pw", unnamed()),
        CacheCheck::Miss,
        CacheCheck::Miss,
    );
    assert_eq!(e.auth("u", "d", &pw("pw")), AuthDecision::Rejected);
    assert_eq!(c.stores(), 0);
    let (e, c) = engine(
        Script::default().auth("u", "pw", unnamed()),
        CacheCheck::Miss,
        CacheCheck::Miss,
    );
    let rules = LoginRules {
        names: NameMatch::IgnoreCase,
        need_uid: false,
        remote: None,
    };
    let login = e.login("u", "d", &pw("pw"), rules);
    assert_eq!(login.decision, AuthDecision::Accepted(Via::Backend));
    assert_eq!(login.uid, None);
    assert_eq!(c.stores(), 0, "not cached");
}

#[test]
fn an_acceptance_for_another_account_is_refused_and_a_folded_one_never_cached() {
    let other = |uid: &str| AuthReply::Accepted {
        uid: Some(uid.to_owned()),
    };
    let (e, c) = engine(
        Script::default().auth("alice", "pw", other("mallory")),
        CacheCheck::Miss,
        CacheCheck::Miss,
    );
    assert_eq!(e.auth("alice", "d", &pw("pw")), AuthDecision::Rejected);
    assert_eq!(c.stores(), 0);
    let (e, c) = engine(
        Script::default().auth("alice", "pw", other("Alice")),
        CacheCheck::Miss,
        CacheCheck::Miss,
    );
    let folded = LoginRules {
        names: NameMatch::IgnoreCase,
        ..LoginRules::default()
    };
    let login = e.login("alice", "d", &pw("pw"), folded);
    assert_eq!(login.decision, AuthDecision::Accepted(Via::Backend));
    assert_eq!(login.uid.as_deref(), Some("Alice"));
    assert_eq!(c.stores(), 0, "a folded spelling is never cached");
}

#[test]
fn need_uid_skips_the_cache() {
    let (e, c) = engine(
        Script::default().accept("u", "pw"),
        CacheCheck::Hit,
        CacheCheck::Hit,
    );
    let rules = LoginRules {
        need_uid: true,
        ..LoginRules::default()
    };
    let login = e.login("u", "d", &pw("pw"), rules);
    assert_eq!(login.decision, AuthDecision::Accepted(Via::Backend));
    assert_eq!(login.uid.as_deref(), Some("u"));
    assert_eq!(c.checks(), 0);
}

#[test]
fn budget_used_up_never_takes_the_unreachable_path() {
    let (e, c) = engine(
        Script::default().auth("u", "pw", AuthReply::Unavailable(Unavailable::BudgetUsedUp)),
        CacheCheck::Miss,
        CacheCheck::Hit,
    );
    assert_eq!(
        e.auth("u", "d", &pw("pw")),
        AuthDecision::Unavailable(Unavailable::BudgetUsedUp)
    );
    assert_eq!(c.checks(), 1, "only the normal lookup");
}

#[test]
fn an_at_sign_or_a_trailing_dot_in_the_domain_is_refused() {
    let (e, c) = engine(Script::default(), CacheCheck::Hit, CacheCheck::Hit);
    assert_eq!(e.auth("a", "b@c", &pw("pw")), AuthDecision::Rejected);
    assert_eq!(e.auth("a", "c.", &pw("pw")), AuthDecision::Rejected);
    assert_eq!(c.checks(), 0);
}
