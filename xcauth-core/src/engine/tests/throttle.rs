//! The throttle's glue: locked-out users and addresses reach neither cache nor backend.

use std::sync::Arc;

use super::script::Script;
use super::{engine_at, pw, throttle, token};
use crate::cache::CacheCheck;
use crate::clock::ManualClock;
use crate::engine::Engine;
use crate::vocab::{AuthDecision, AuthReply, LoginRules, Unavailable, Via};

/// A throttled engine asking `script`, without a cache.
fn throttled(script: Script, clock: &Arc<ManualClock>) -> Engine {
    let (e, _) = engine_at(script, CacheCheck::Miss, CacheCheck::Miss, clock);
    e.with_throttle(throttle(clock))
}

fn clock() -> Arc<ManualClock> {
    Arc::new(ManualClock::at(1_700_000_000))
}

#[test]
fn an_outage_gives_no_free_guesses_against_the_cached_hash() {
    let clock = clock();
    let down = || AuthReply::Unavailable(Unavailable::Status(503));
    let mut script = Script::default();
    for _ in 0..5 {
        script = script.auth("u", "guess", down());
    }
    let (e, c) = engine_at(script, CacheCheck::Miss, CacheCheck::Mismatch, &clock);
    let e = e.with_throttle(throttle(&clock));
    for _ in 0..5 {
        assert!(matches!(
            e.auth("u", "d", &pw("guess")),
            AuthDecision::Unavailable(_)
        ));
    }
    // Five wrong guesses against the cached hash lock the user: no sixth check at all.
    let checks = c.checks();
    assert_eq!(e.auth("u", "d", &pw("guess")), AuthDecision::Rejected);
    assert_eq!(c.checks(), checks);
}

#[test]
fn rotating_domains_meets_the_user_part_limit() {
    let clock = clock();
    // Twice the user's allowance across all domains, then nothing.
    let mut script = Script::default();
    for _ in 0..10 {
        script = script.reject("alice", "guess");
    }
    // Another user part is not affected.
    let e = throttled(script.accept("bob", "right"), &clock);
    for i in 0..40 {
        let domain = format!("r{i}.invalid");
        assert_eq!(
            e.auth("alice", &domain, &pw("guess")),
            AuthDecision::Rejected
        );
    }
    assert!(e.auth("bob", "d", &pw("right")).is_accepted());
}

#[test]
fn a_locked_out_user_is_rejected_without_a_backend_call_but_tokens_pass() {
    let clock = clock();
    let mut script = Script::default();
    // Only the failures before the lock-out reach the backend.
    for _ in 0..5 {
        script = script.reject("alice", "guess");
    }
    script = script.accept("bob", "right").accept("alice", "right");
    for _ in 0..4 {
        script = script.reject("alice", "guess");
    }
    let e = throttled(script.accept("alice", "right"), &clock);
    for _ in 0..60 {
        assert_eq!(e.auth("alice", "d", &pw("guess")), AuthDecision::Rejected);
    }
    // Even the right password is not checked during the lock-out.
    assert_eq!(e.auth("alice", "d", &pw("right")), AuthDecision::Rejected);
    // Other users are not slowed, and the same name in another case is the same key.
    assert_eq!(
        e.auth("bob", "d", &pw("right")),
        AuthDecision::Accepted(Via::Backend)
    );
    assert_eq!(e.auth("ALICE", "d", &pw("guess")), AuthDecision::Rejected);
    // A valid token still logs in.
    assert_eq!(
        e.auth("alice", "d", &token("alice", "d")),
        AuthDecision::Accepted(Via::Token)
    );
    // After the back-off the right password works and resets the count.
    clock.advance(60);
    assert_eq!(
        e.auth("alice", "d", &pw("right")),
        AuthDecision::Accepted(Via::Backend)
    );
    for _ in 0..4 {
        assert_eq!(e.auth("alice", "d", &pw("guess")), AuthDecision::Rejected);
    }
    assert_eq!(
        e.auth("alice", "d", &pw("right")),
        AuthDecision::Accepted(Via::Backend),
        "four mistakes after a success do not lock"
    );
}

#[test]
fn a_locked_remote_address_is_rejected_for_every_user_from_it_only() {
    let clock = clock();
    let mut script = Script::default();
    // Twenty failures from one address, then it is locked.
    for i in 0..20 {
        script = script.reject(&format!("u{}", i % 10), "guess");
    }
    let e = throttled(script.accept("bob", "right"), &clock);
    let from = |remote| LoginRules {
        remote: Some(remote),
        ..LoginRules::default()
    };
    for i in 0..30 {
        let user = format!("u{}", i % 10);
        let d = e.login(&user, "d", &pw("guess"), from("192.0.2.7"));
        assert_eq!(d.decision, AuthDecision::Rejected);
    }
    let d = e.login("bob", "d", &pw("right"), from("192.0.2.7"));
    assert_eq!(d.decision, AuthDecision::Rejected);
    let d = e.login("bob", "d", &pw("right"), from("198.51.100.1"));
    assert_eq!(d.decision, AuthDecision::Accepted(Via::Backend));
}
