//! Accounts from OpenLDAP (`user_ldap`): the login name differs from the account id, which is
//! the entry's UUID unless the expert username attribute is set; and what Nextcloud answers
//! while the directory is down.

use xcauth_tests::ldap::{self, AccountIds, Slapd, ASMITH, JDOE};
use xcauth_tests::nextcloud::{Nextcloud, Reply, ALICE};

use super::{assert_is, assert_no_such_user, assert_refused};

/// A server whose `user_ldap` points at a fresh directory.
fn with_ldap(tag: &str, ids: AccountIds) -> (Nextcloud, Slapd) {
    let nc = Nextcloud::start(tag);
    let slapd = Slapd::start(&nc.dir().join("ldap"));
    ldap::connect_nextcloud(&nc, &slapd, ids);
    (nc, slapd)
}

/// 200 for an LDAP account: its id, `cn` as display name, `mail`, backend `LDAP`, no groups.
fn assert_ldap_account(reply: &Reply, id: &str, person: &ldap::Person) {
    assert_eq!(reply.status, 200, "{reply:?}");
    let data = reply.ocs_data();
    assert_eq!(data["id"], id, "{data}");
    assert_eq!(data["displayname"], person.cn, "{data}");
    assert_eq!(data["email"], person.mail, "{data}");
    assert_eq!(data["backend"], "LDAP", "{data}");
    assert_eq!(data["groups"], serde_json::json!([]), "{data}");
}

/// 500 with OCS status 996: the server failed.
fn assert_server_error(reply: &Reply) {
    assert_eq!(reply.status, 500, "{reply:?}");
    assert_eq!(reply.ocs_statuscode(), 996, "{}", reply.text());
}

#[test]
fn ldap_people_log_in_by_uid_mail_or_any_case_as_their_entry_uuid() {
    let (nc, slapd) = with_ldap("ldap-uuid", AccountIds::Uuid);
    let uuid = slapd.entry_uuid(JDOE.uid);
    for login in [JDOE.uid, JDOE.mail, "JDOE", "Jane@Example.ORG"] {
        assert_ldap_account(&nc.cloud_user(login, JDOE.password), &uuid, &JDOE);
    }
    assert_refused(&nc.cloud_user(JDOE.uid, "wrong"));
    // A password and a display name that are not ASCII pass through unchanged.
    let anna = slapd.entry_uuid(ASMITH.uid);
    assert_ldap_account(&nc.cloud_user(ASMITH.uid, ASMITH.password), &anna, &ASMITH);
    // The account is found by its id, not by the name it logs in with.
    let by_id = nc.as_service(&format!("cloud/users/{uuid}"));
    assert_ldap_account(&by_id, &uuid, &JDOE);
    assert_no_such_user(&nc.as_service(&format!("cloud/users/{}", JDOE.uid)));
    // Local accounts still log in.
    assert_is(&nc.cloud_user(ALICE.id, ALICE.password), &ALICE);
}

#[test]
fn with_the_uid_attribute_ldap_people_are_named_by_uid_once_nextcloud_has_seen_them() {
    let (nc, _slapd) = with_ldap("ldap-uid", AccountIds::Uid);
    // People Nextcloud has not seen yet are unknown to the API by id…
    assert_no_such_user(&nc.as_service(&format!("cloud/users/{}", ASMITH.uid)));
    assert_no_such_user(&nc.as_service(&format!("cloud/users/{}", JDOE.uid)));
    // …until a search finds them (it matches the display name, not the uid)…
    let by_uid = nc.as_service(&format!("cloud/users?search={}", JDOE.uid));
    assert_eq!(
        by_uid.ocs_data(),
        serde_json::json!({"users": []}),
        "{by_uid:?}"
    );
    let by_name = nc.as_service("cloud/users?search=Jane");
    assert_eq!(
        by_name.ocs_data(),
        serde_json::json!({"users": [JDOE.uid]}),
        "{by_name:?}"
    );
    assert_ldap_account(
        &nc.as_service(&format!("cloud/users/{}", JDOE.uid)),
        JDOE.uid,
        &JDOE,
    );
    // …or they log in.
    for login in [ASMITH.uid, "ASMITH", ASMITH.mail] {
        assert_ldap_account(&nc.cloud_user(login, ASMITH.password), ASMITH.uid, &ASMITH);
    }
    assert_ldap_account(
        &nc.as_service(&format!("cloud/users/{}", ASMITH.uid)),
        ASMITH.uid,
        &ASMITH,
    );
}

#[test]
fn during_an_ldap_outage_every_password_login_fails_with_500_and_app_passwords_work() {
    let (nc, mut slapd) = with_ldap("ldap-outage", AccountIds::Uuid);
    let uuid = slapd.entry_uuid(JDOE.uid);
    assert_ldap_account(&nc.cloud_user(JDOE.uid, JDOE.password), &uuid, &JDOE);
    let attempts = nc.bruteforce_attempts("127.0.0.1");

    slapd.stop();
    // Right or wrong, LDAP account or local one or nobody: the same 500.
    for (login, password) in [
        (JDOE.uid, JDOE.password),
        (JDOE.uid, "wrong"),
        (ALICE.id, ALICE.password),
        (ALICE.id, "wrong"),
        ("nobody-here", "guess"),
    ] {
        assert_server_error(&nc.cloud_user(login, password));
    }
    // Nor are they counted as failed logins.
    assert_eq!(nc.bruteforce_attempts("127.0.0.1"), attempts);
    // App passwords of local accounts do not touch the directory.
    assert_is(
        &nc.cloud_user(ALICE.id, &nc.app_passwords().alice.secret),
        &ALICE,
    );
    // The service account: local users are found, an LDAP account fails with 500, and a
    // name that is nobody's is still "User does not exist".
    assert_eq!(nc.as_service("cloud/users/alice").status, 200);
    assert_server_error(&nc.as_service(&format!("cloud/users/{uuid}")));
    assert_no_such_user(&nc.as_service("cloud/users/nobody-here"));

    slapd.restart();
    assert_ldap_account(&nc.cloud_user(JDOE.uid, JDOE.password), &uuid, &JDOE);
    assert_is(&nc.cloud_user(ALICE.id, ALICE.password), &ALICE);
}
