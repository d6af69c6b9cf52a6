//! `GET /ocs/v2.php/cloud/user` with Basic auth: who a login name and password (or app
//! password) log in as, and every way Nextcloud refuses.

use xcauth_tests::nextcloud::{
    Account, Nextcloud, Request, ACCOUNTS, ALICE, BOB, CAROL, DAVE, ERIN, JOERG, SERVICE,
};

use super::{assert_is, assert_refused};

#[test]
fn a_right_password_answers_the_account_with_its_group_ids() {
    let nc = Nextcloud::start("login-right");
    for account in [ALICE, BOB, JOERG, CAROL, SERVICE] {
        let reply = nc.cloud_user(account.id, account.password);
        assert_is(&reply, &account);
        assert_eq!(reply.ocs_data()["backend"], "Database");
        // The logged-in user is also named in a header.
        assert_eq!(reply.header("X-User-Id"), Some(account.id));
    }
}

#[test]
fn the_login_name_is_case_insensitive_and_the_id_comes_back_as_stored() {
    let nc = Nextcloud::start("login-case");
    for login in ["ALICE", "Alice", "aLiCe"] {
        assert_is(&nc.cloud_user(login, ALICE.password), &ALICE);
    }
    // The password is not.
    assert_refused(&nc.cloud_user("alice", &ALICE.password.to_uppercase()));
}

#[test]
fn wrong_passwords_unknown_and_disabled_users_all_get_the_same_401() {
    let nc = Nextcloud::start("login-refused");
    let wrong = nc.cloud_user(ALICE.id, "not-her-password");
    assert_refused(&wrong);
    assert_eq!(wrong.ocs_message(), "Unauthorised");
    let unknown = nc.cloud_user("nobody-here", "whatever");
    assert_refused(&unknown);
    assert_eq!(unknown.ocs_message(), "Unauthorised");
    let disabled = nc.cloud_user(DAVE.id, DAVE.password);
    assert_refused(&disabled);
    assert_eq!(disabled.ocs_message(), "Unauthorised");
    // A disabled account's app password is refused too.
    nc.occ(&["user:enable", DAVE.id]);
    let dave_app = nc.add_app_password(&DAVE);
    assert_is(&nc.cloud_user(DAVE.id, &dave_app.secret), &DAVE);
    nc.occ(&["user:disable", DAVE.id]);
    assert_refused(&nc.cloud_user(DAVE.id, &dave_app.secret));
    // No credentials at all: 401 with another message.
    let anonymous = nc.send(&Request::ocs("cloud/user"));
    assert_refused(&anonymous);
    assert_eq!(anonymous.ocs_message(), "Current user is not logged in");
    // Every account of the template but dave logs in; so the refusals above are the
    // server's, not the set-up's.
    for account in ACCOUNTS
        .iter()
        .filter(|a| a.id != DAVE.id && a.id != ERIN.id)
    {
        assert_eq!(
            nc.cloud_user(account.id, account.password).status,
            200,
            "{account:?}"
        );
    }
}

#[test]
fn without_the_ocs_header_a_right_password_gets_412_and_a_wrong_one_401() {
    let nc = Nextcloud::start("login-csrf");
    let right = nc.send(
        &Request::ocs("cloud/user")
            .without_header("OCS-APIRequest")
            .basic(ALICE.id, ALICE.password),
    );
    assert_eq!(right.status, 412, "{right:?}");
    assert_eq!(right.json()["message"], "CSRF check failed");
    // The password is checked first: a wrong one is refused as usual, and counted.
    let wrong = nc.send(
        &Request::ocs("cloud/user")
            .without_header("OCS-APIRequest")
            .basic(ALICE.id, "wrong"),
    );
    assert_refused(&wrong);
    assert_eq!(nc.bruteforce_attempts("127.0.0.1"), 1);
}

#[test]
fn a_two_factor_user_logs_in_with_an_app_password_only() {
    let nc = Nextcloud::start("login-2fa");
    let password = nc.cloud_user(ERIN.id, ERIN.password);
    assert_refused(&password);
    let app = nc.cloud_user(ERIN.id, &nc.app_passwords().erin.secret);
    assert_is(&app, &ERIN);
}

#[test]
fn app_passwords_are_bound_to_their_login_name_and_can_be_revoked() {
    let nc = Nextcloud::start("login-app");
    let apps = nc.app_passwords();
    assert_is(&nc.cloud_user(ALICE.id, &apps.alice.secret), &ALICE);
    // The login name's case does not matter…
    assert_is(&nc.cloud_user("ALICE", &apps.alice.secret), &ALICE);
    // …but another account's name, or an unknown one, is refused.
    assert_refused(&nc.cloud_user(BOB.id, &apps.alice.secret));
    assert_refused(&nc.cloud_user("nobody-here", &apps.alice.secret));
    assert_is(&nc.cloud_user(ALICE.id, ALICE.password), &ALICE);

    nc.revoke_app_password(&apps.alice);
    assert_refused(&nc.cloud_user(ALICE.id, &apps.alice.secret));
    assert_is(&nc.cloud_user(ALICE.id, &apps.alice_second.secret), &ALICE);
    assert_is(&nc.cloud_user(ALICE.id, ALICE.password), &ALICE);
}

#[test]
fn a_changed_password_takes_effect_at_once_and_app_passwords_survive_it() {
    let nc = Nextcloud::start("login-setpw");
    nc.set_password(ALICE.id, "alice-New-Pass-2026");
    assert_refused(&nc.cloud_user(ALICE.id, ALICE.password));
    assert_is(&nc.cloud_user(ALICE.id, "alice-New-Pass-2026"), &ALICE);
    assert_is(
        &nc.cloud_user(ALICE.id, &nc.app_passwords().alice.secret),
        &ALICE,
    );
}

#[test]
fn with_token_auth_enforced_only_app_passwords_log_in() {
    let nc = Nextcloud::start("login-tokens");
    nc.occ(&[
        "config:system:set",
        "token_auth_enforced",
        "--value=true",
        "--type=boolean",
    ]);
    assert_refused(&nc.cloud_user(ALICE.id, ALICE.password));
    assert_is(
        &nc.cloud_user(ALICE.id, &nc.app_passwords().alice.secret),
        &ALICE,
    );
}

#[test]
fn basic_auth_replies_set_session_cookies_that_log_in_nobody_alone() {
    let nc = Nextcloud::start("login-cookies");
    let reply = nc.cloud_user(ALICE.id, ALICE.password);
    assert_is(&reply, &ALICE);
    let cookies: Vec<String> = reply
        .all("Set-Cookie")
        .iter()
        .map(|c| c.split(';').next().unwrap().to_owned())
        .collect();
    assert!(
        cookies
            .iter()
            .any(|c| c.starts_with("oc_sessionPassphrase=")),
        "{cookies:?}"
    );
    // Sent back without credentials, they log in nobody.
    let replayed = nc.send(&Request::ocs("cloud/user").header("Cookie", &cookies.join("; ")));
    assert_refused(&replayed);
    // Sent back with another user's credentials, the credentials win.
    let other = nc.send(
        &Request::ocs("cloud/user")
            .header("Cookie", &cookies.join("; "))
            .basic(BOB.id, BOB.password),
    );
    assert_is(&other, &BOB);
}

/// A measurement, not a check (run it with `--ignored --nocapture`): how long `cloud/user`
/// takes with a login password hashed at Nextcloud's stock cost, and with an app password.
#[test]
#[ignore = "a measurement: run with --ignored --nocapture"]
fn latency_of_a_login_password_and_an_app_password() {
    let nc = Nextcloud::start("login-latency");
    nc.stock_hashing();
    nc.set_password(BOB.id, "bob-Stock-Pass-2026");
    let app = nc.add_app_password(&Account {
        password: "bob-Stock-Pass-2026",
        ..BOB
    });
    // The first requests of a server compile its scripts: not counted.
    nc.cloud_user(BOB.id, &app.secret);
    let mut password = Vec::new();
    let mut token = Vec::new();
    for _ in 0..5 {
        let reply = nc.cloud_user(BOB.id, "bob-Stock-Pass-2026");
        assert_eq!(reply.status, 200, "{reply:?}");
        password.push(reply.elapsed);
        let reply = nc.cloud_user(BOB.id, &app.secret);
        assert_eq!(reply.status, 200, "{reply:?}");
        token.push(reply.elapsed);
    }
    password.sort_unstable();
    token.sort_unstable();
    eprintln!(
        "nextcloud: cloud/user, median of 5: login password {:?}, app password {:?}",
        password[2], token[2]
    );
}

#[test]
fn an_email_address_logs_in_as_its_account_but_not_with_an_app_password() {
    let nc = Nextcloud::start("login-email");
    let mail = ALICE.email.unwrap();
    assert_is(&nc.cloud_user(mail, ALICE.password), &ALICE);
    assert_is(&nc.cloud_user(&mail.to_uppercase(), ALICE.password), &ALICE);
    // An app password made under the login name "alice" is not taken under her address.
    assert_refused(&nc.cloud_user(mail, &nc.app_passwords().alice.secret));
    // An address two accounts share logs in only the one the database lists first (alice,
    // the older): bob's password under it is refused.
    nc.occ(&["user:setting", BOB.id, "settings", "email", mail]);
    assert_is(&nc.cloud_user(mail, ALICE.password), &ALICE);
    assert_refused(&nc.cloud_user(mail, BOB.password));
    assert_is(
        &nc.cloud_user(BOB.id, BOB.password),
        &Account {
            email: Some(mail),
            ..BOB
        },
    );
}
