//! Account lookups: `user@domain` first, case, app passwords, changes at run time.

use xcauth_tests::double::User;

use super::{assert_json, backend, post, IS_USER, NOAUTH, NO_USER};

#[test]
fn user_at_domain_first_then_user() {
    let b = backend();
    b.add_user(User::new("bob@example.org", "pw1"));
    b.add_user(User::new("bob", "pw2"));
    let auth = |d: &str, p: &str| {
        post(
            &b,
            &[
                ("operation", "auth"),
                ("username", "bob"),
                ("domain", d),
                ("password", p),
            ],
        )
    };
    assert_json(
        &auth("example.org", "pw1"),
        200,
        r#"{"result":"success","data":{"uid":"bob@example.org"}}"#,
    );
    // u@d exists but the password is bob's: both tried in one request.
    assert_json(
        &auth("example.org", "pw2"),
        200,
        r#"{"result":"success","data":{"uid":"bob"}}"#,
    );
    assert_json(&auth("other.org", "pw1"), 200, NOAUTH);
    assert_json(
        &auth("other.org", "pw2"),
        200,
        r#"{"result":"success","data":{"uid":"bob"}}"#,
    );
    b.add_user(User::new("carl@example.org", "pw"));
    let isuser = |u: &str, d: &str| {
        post(
            &b,
            &[("operation", "isuser"), ("username", u), ("domain", d)],
        )
    };
    assert_json(&isuser("carl", "example.org"), 200, IS_USER);
    assert_json(&isuser("carl", "other.org"), 200, NO_USER);
    assert_json(&isuser("carl@example.org", ""), 200, IS_USER);
}

#[test]
fn case_insensitive_uid_returns_stored_spelling() {
    let b = backend();
    b.add_user(User::new("Alice", "pw"));
    let resp = post(
        &b,
        &[
            ("operation", "auth"),
            ("username", "aLiCe"),
            ("domain", "x.org"),
            ("password", "pw"),
        ],
    );
    assert_json(&resp, 200, r#"{"result":"success","data":{"uid":"Alice"}}"#);
    b.add_user(User::new("Jörg@Exämple.de", "pw"));
    let resp = post(
        &b,
        &[
            ("operation", "auth"),
            ("username", "jörg"),
            ("domain", "exämple.de"),
            ("password", "pw"),
        ],
    );
    assert_json(
        &resp,
        200,
        r#"{"result":"success","data":{"uid":"J\u00f6rg@Ex\u00e4mple.de"}}"#,
    );
    // Passwords stay case-sensitive.
    let resp = post(
        &b,
        &[
            ("operation", "auth"),
            ("username", "alice"),
            ("password", "PW"),
        ],
    );
    assert_json(&resp, 200, NOAUTH);
}

#[test]
fn app_password_bound_to_login_name() {
    let b = backend();
    b.add_user(User::new("carol", "pw").app_password("carol", "app-1"));
    b.add_user(User::new("dave", "pw").app_password("dave@example.org", "app-2"));
    b.add_user(User::new("dave@example.org", "other"));
    let auth = |u: &str, d: &str, p: &str| {
        post(
            &b,
            &[
                ("operation", "auth"),
                ("username", u),
                ("domain", d),
                ("password", p),
            ],
        )
    };
    let ok = |uid: &str| format!(r#"{{"result":"success","data":{{"uid":"{uid}"}}}}"#);
    assert_json(&auth("carol", "", "app-1"), 200, &ok("carol"));
    // carol@example.org does not exist: falls back to "carol", whose login name matches.
    assert_json(&auth("carol", "example.org", "app-1"), 200, &ok("carol"));
    // Case-sensitive login name for tokens; the ordinary password still works.
    assert_json(&auth("Carol", "", "app-1"), 200, NOAUTH);
    assert_json(&auth("Carol", "", "pw"), 200, &ok("carol"));
    // dave's token was created as dave@example.org: works only when that login name is tried
    // (the account dave@example.org exists), and logs in as dave.
    assert_json(&auth("dave", "example.org", "app-2"), 200, &ok("dave"));
    assert_json(&auth("dave", "", "app-2"), 200, NOAUTH);
    assert_json(&auth("dave", "other.org", "app-2"), 200, NOAUTH);
    // Another user's token is useless.
    assert_json(&auth("good", "", "app-1"), 200, NOAUTH);
}

#[test]
fn user_management_at_run_time() {
    let b = backend();
    assert!(b.set_password("good", "new"));
    assert!(!b.set_password("ghost", "x"));
    let auth = |p: &str| {
        post(
            &b,
            &[("operation", "auth"), ("username", "good"), ("password", p)],
        )
    };
    assert_json(&auth("pw"), 200, NOAUTH);
    assert_json(
        &auth("new"),
        200,
        r#"{"result":"success","data":{"uid":"good"}}"#,
    );
    assert!(b.remove_user("GOOD"));
    assert_json(&auth("new"), 200, NOAUTH);
}
