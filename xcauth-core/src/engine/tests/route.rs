//! Which target serves a domain; a domain nobody serves, or whose settings are unusable,
//! never reaches the backend (not even with a valid token).

use std::sync::Arc;

use super::script::Script;
use super::{engine, pw, token};
use crate::cache::CacheCheck;
use crate::domains::{DomainRow, Domains};
use crate::secret::Secret;
use crate::vocab::{AuthDecision, BackendUrl, Misconfigured, Unavailable, UserExists, Via};

/// One `domains` row, for every domain.
#[derive(Debug)]
struct Row(DomainRow);

impl Domains for Row {
    fn lookup(&self, _: &str) -> Result<Option<DomainRow>, String> {
        Ok(Some(self.0.clone()))
    }
}

fn row(url: &str) -> Arc<Row> {
    Arc::new(Row(DomainRow {
        secret: Some(Secret::new(super::SECRET)),
        url: Some(BackendUrl::parse(url)),
        authdomain: None,
    }))
}

#[derive(Debug)]
struct UnreadableDomains;

impl Domains for UnreadableDomains {
    fn lookup(&self, _: &str) -> Result<Option<DomainRow>, String> {
        Err("database disk image is malformed".into())
    }
}

#[test]
fn unreadable_domain_table_fails_closed() {
    let (e, _) = engine(Script::default(), CacheCheck::Miss, CacheCheck::Miss);
    let e = e.with_domains(Arc::new(UnreadableDomains));
    assert!(matches!(
        e.auth("u", "d", &token("u", "d")),
        AuthDecision::Unavailable(Unavailable::Misconfigured(
            Misconfigured::DomainsUnreadable { .. }
        ))
    ));
    assert!(matches!(
        e.isuser("u", "d"),
        UserExists::Unknown(Unavailable::Misconfigured(
            Misconfigured::DomainsUnreadable { .. }
        ))
    ));
}

#[test]
fn a_row_with_an_unusable_url_makes_its_domain_unavailable_even_for_tokens() {
    let (e, _) = engine(Script::default(), CacheCheck::Miss, CacheCheck::Miss);
    let e = e.with_domains(row("ftp://cloud.example.org/"));
    assert!(matches!(
        e.auth("u", "d", &token("u", "d")),
        AuthDecision::Unavailable(Unavailable::Misconfigured(Misconfigured::BadUrl { .. }))
    ));
}

#[test]
fn a_row_with_plain_http_to_a_remote_host_is_refused_unless_allowed() {
    let (e, _) = engine(Script::default(), CacheCheck::Miss, CacheCheck::Miss);
    let e = e.with_domains(row("http://192.0.2.1/x"));
    assert!(matches!(
        e.auth("u", "d", &token("u", "d")),
        AuthDecision::Unavailable(Unavailable::Misconfigured(
            Misconfigured::InsecureUrl { .. }
        ))
    ));
    let (e, _) = engine(Script::default(), CacheCheck::Miss, CacheCheck::Miss);
    let e = e
        .with_domains(row("http://192.0.2.1/x"))
        .with_insecure_http(true);
    assert_eq!(
        e.auth("u", "d", &token("u", "d")),
        AuthDecision::Accepted(Via::Token)
    );
    assert_eq!(
        e.target("d").map(|t| t.url.as_str().to_owned()),
        Ok("http://192.0.2.1/x".to_owned())
    );
}

#[test]
fn a_domain_that_is_not_served_has_no_users() {
    let (e, c) = engine(Script::default(), CacheCheck::Hit, CacheCheck::Hit);
    let e = e.with_served_domains(Some(vec!["served.example".into()]));
    assert_eq!(
        e.auth("u", "other.example", &pw("pw")),
        AuthDecision::Rejected
    );
    assert_eq!(e.isuser("u", "other.example"), UserExists::No);
    assert!(matches!(
        e.target("other.example"),
        Err(Unavailable::Misconfigured(Misconfigured::NotServed { .. }))
    ));
    assert_eq!(c.checks(), 0);
    // Served domains match without regard to ASCII case.
    assert_eq!(
        e.auth("u", "Served.Example", &pw("pw")),
        AuthDecision::Accepted(Via::Cache)
    );
}
