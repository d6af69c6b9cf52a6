//! Facts about a real Nextcloud 32 (`xcauth_tests::nextcloud`): raw HTTP requests against the
//! shipped server showing each behaviour a Nextcloud backend relies on, so that a Nextcloud
//! release that changes one fails here first. `docs/nextcloud.md` ("What the server answers")
//! sums them up. Run them alone with `cargo test -p xcauth-tests -- --test-threads=2
//! nextcloud::` after `cargo build --workspace --bins`.
//!
//! Every test has its own copy of the installed server (its own database, so its own
//! brute-force counters too).

// Test code: the helpers outside `#[test]` functions panic on failure on purpose.
#![allow(clippy::unwrap_used, clippy::expect_used)]

mod ldap;
mod login;
mod provisioning;
mod server;
mod throttle;

use std::net::Ipv4Addr;

use xcauth_tests::nextcloud::{Account, Reply};

/// The OCS status code of a refused login (`ocs.meta.statuscode`).
const OCS_UNAUTHORISED: i64 = 997;

/// Asserts a 200 OCS reply for `account`: id, display name, e-mail address and group ids.
fn assert_is(reply: &Reply, account: &Account) {
    assert_eq!(reply.status, 200, "{account:?}: {reply:?}");
    assert_eq!(reply.ocs_statuscode(), 200);
    let data = reply.ocs_data();
    assert_eq!(data["id"], account.id, "{data}");
    assert_eq!(data["displayname"], account.shown_name(), "{data}");
    match account.email {
        Some(mail) => assert_eq!(data["email"], mail, "{data}"),
        None => assert!(data["email"].is_null(), "{data}"),
    }
    assert_eq!(data["groups"], serde_json::json!(account.groups), "{data}");
    assert_eq!(data["enabled"], true, "{data}");
}

/// Asserts a refused login: 401 with OCS status 997.
fn assert_refused(reply: &Reply) {
    assert_eq!(reply.status, 401, "{reply:?}");
    assert_eq!(reply.ocs_statuscode(), OCS_UNAUTHORISED, "{}", reply.text());
    assert_eq!(reply.ocs_data(), serde_json::json!([]));
}

/// Asserts 404 with OCS status 404: the user does not exist.
fn assert_no_such_user(reply: &Reply) {
    assert_eq!(reply.status, 404, "{reply:?}");
    assert_eq!(reply.ocs_statuscode(), 404, "{}", reply.text());
    assert_eq!(reply.ocs_message(), "User does not exist");
}

/// A loopback source address other than 127.0.0.1 (Nextcloud counts failed logins per address).
fn source(last: u8) -> Ipv4Addr {
    Ipv4Addr::new(127, 0, 0, last)
}
