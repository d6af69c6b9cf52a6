//! Every answer of the API, row by row.

use xcauth_tests::double::client::{form_encode, Client};
use xcauth_tests::double::{sign, User, API_PATH};

use super::{assert_json, backend, error_body, post, IS_USER, NOAUTH, NO_USER, SECRET};

#[test]
fn auth_rows() {
    let b = backend();
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
    assert_json(
        &auth("good", "example.org", "pw"),
        200,
        r#"{"result":"success","data":{"uid":"good"}}"#,
    );
    assert_json(
        &auth("good", "", "pw"),
        200,
        r#"{"result":"success","data":{"uid":"good"}}"#,
    );
    assert_json(&auth("good", "example.org", "wrong"), 200, NOAUTH);
    assert_json(&auth("nobody", "example.org", "pw"), 200, NOAUTH);
    assert_json(&auth("", "example.org", "pw"), 200, NOAUTH);
    assert_json(&auth("good", "example.org", ""), 200, NOAUTH);
    // PHP empty(): "0" is empty, even when it is the real password or user name.
    b.add_user(User::new("zero", "0"));
    b.add_user(User::new("0", "pw"));
    assert_json(&auth("zero", "", "0"), 200, NOAUTH);
    assert_json(&auth("0", "", "pw"), 200, NOAUTH);
    // "0" as domain is ignored: plain user name tried.
    assert_json(
        &auth("good", "0", "pw"),
        200,
        r#"{"result":"success","data":{"uid":"good"}}"#,
    );
    // Missing password field.
    assert_json(
        &post(&b, &[("operation", "auth"), ("username", "good")]),
        200,
        NOAUTH,
    );
}

#[test]
fn disabled_user() {
    let b = backend();
    b.add_user(User::new("dis", "pw").disabled().app_password("dis", "app"));
    let body = form_encode(&[
        ("operation", "auth"),
        ("username", "dis"),
        ("domain", "x"),
        ("password", "pw"),
    ]);
    let sig = sign(SECRET, body.as_bytes());
    let with_accept = |accept: Option<&str>| {
        let mut headers = vec![
            ("Content-Type", "application/x-www-form-urlencoded"),
            ("X-JSXC-SIGNATURE", sig.as_str()),
        ];
        if let Some(a) = accept {
            headers.push(("Accept", a));
        }
        Client::connect(b.addr())
            .unwrap()
            .request("POST", API_PATH, &headers, body.as_bytes())
            .unwrap()
    };
    let disabled = r#"{"message":"User disabled"}"#;
    assert_json(&with_accept(Some("*/*")), 401, disabled);
    assert_json(&with_accept(None), 401, disabled);
    assert_json(&with_accept(Some("application/json")), 401, disabled);
    for accept in ["text/html", "text/HTML,application/xhtml+xml;q=0.9"] {
        let resp = with_accept(Some(accept));
        assert_eq!(resp.status, 401);
        assert_eq!(
            resp.header("content-type"),
            Some("text/html; charset=utf-8")
        );
        assert!(resp.text().contains("User disabled"));
    }
    // App password of a disabled account: 401 too.
    let resp = post(
        &b,
        &[
            ("operation", "auth"),
            ("username", "dis"),
            ("password", "app"),
        ],
    );
    assert_json(&resp, 401, disabled);
    // Wrong password: plain noauth. isuser: still exists.
    let resp = post(
        &b,
        &[
            ("operation", "auth"),
            ("username", "dis"),
            ("password", "no"),
        ],
    );
    assert_json(&resp, 200, NOAUTH);
    assert_json(
        &post(&b, &[("operation", "isuser"), ("username", "dis")]),
        200,
        IS_USER,
    );
    // Re-enabled at run time.
    assert!(b.set_disabled("dis", false));
    let resp = post(
        &b,
        &[
            ("operation", "auth"),
            ("username", "dis"),
            ("password", "pw"),
        ],
    );
    assert_json(&resp, 200, r#"{"result":"success","data":{"uid":"dis"}}"#);
}

#[test]
fn isuser_rows() {
    let b = backend();
    let isuser = |u: &str, d: &str| {
        post(
            &b,
            &[("operation", "isuser"), ("username", u), ("domain", d)],
        )
    };
    assert_json(&isuser("good", "example.org"), 200, IS_USER);
    assert_json(&isuser("GOOD", ""), 200, IS_USER);
    assert_json(&isuser("bad", "example.org"), 200, NO_USER);
    assert_json(&isuser("", "example.org"), 200, NO_USER);
    assert_json(&isuser("0", ""), 200, NO_USER);
    assert_json(&post(&b, &[("operation", "isuser")]), 200, NO_USER);
}

#[test]
fn sharedroster_rows_and_spec_example() {
    let b = backend();
    b.add_user(User::new("alice", "pw").display_name("Alice Liddell"));
    b.add_user(User::new("bob@example.org", "pw"));
    b.add_group("team", "The Team", &["bob@example.org", "alice"]);
    let roster = |u: &str, d: &str| {
        post(
            &b,
            &[
                ("operation", "sharedroster"),
                ("username", u),
                ("domain", d),
            ],
        )
    };
    let example = r#"{"result":"success","data":{"sharedRoster":{"alice":{"name":"Alice Liddell","groups":["The Team"]},"bob@example.org":{"name":"bob@example.org","groups":["The Team"]}}}}"#;
    assert_json(&roster("alice", "example.org"), 200, example);
    assert_json(&roster("bob", "example.org"), 200, example);
    assert_json(&roster("ALICE", ""), 200, example);
    // Empty roster is [].
    assert_json(
        &roster("good", "example.org"),
        200,
        r#"{"result":"success","data":{"sharedRoster":[]}}"#,
    );
    let cant = error_body("Can't find user");
    assert_json(&roster("nobody", "example.org"), 500, &cant);
    assert_json(&roster("", "example.org"), 500, &cant);
    assert_json(&roster("0", ""), 500, &cant);
    // Removing the group empties the roster again.
    assert!(b.remove_group("team"));
    assert_json(
        &roster("alice", ""),
        200,
        r#"{"result":"success","data":{"sharedRoster":[]}}"#,
    );
}

#[test]
fn roster_group_and_member_order() {
    let b = backend();
    for uid in ["zed", "amy", "Mia", "bob"] {
        b.add_user(User::new(uid, "pw"));
    }
    b.add_group("g2", "Second", &["zed", "amy"]);
    b.add_group("g1", "First", &["bob", "zed", "Mia", "ghost"]);
    let resp = post(&b, &[("operation", "sharedroster"), ("username", "zed")]);
    // Groups in the order added; members in UID order; non-existent members skipped.
    assert_json(
        &resp,
        200,
        r#"{"result":"success","data":{"sharedRoster":{"amy":{"name":"amy","groups":["Second"]},"zed":{"name":"zed","groups":["Second","First"]},"Mia":{"name":"Mia","groups":["First"]},"bob":{"name":"bob","groups":["First"]}}}}"#,
    );
}

#[test]
fn roster_integer_uids_become_a_list() {
    let b = backend();
    b.add_user(User::new("0", "pw"));
    b.add_user(User::new("1", "pw"));
    b.add_group("n", "Numbers", &["1", "0"]);
    let resp = post(&b, &[("operation", "sharedroster"), ("username", "1")]);
    assert_json(
        &resp,
        200,
        r#"{"result":"success","data":{"sharedRoster":[{"name":"0","groups":["Numbers"]},{"name":"1","groups":["Numbers"]}]}}"#,
    );
}

#[test]
fn php_escaping_of_display_names() {
    let b = backend();
    b.add_user(User::new("esc", "pw").display_name("A/B <x> ä 😀 \"q\""));
    b.add_group("g", "G/<1>", &["esc"]);
    let resp = post(&b, &[("operation", "sharedroster"), ("username", "esc")]);
    assert_json(
        &resp,
        200,
        r#"{"result":"success","data":{"sharedRoster":{"esc":{"name":"A\/B \u003Cx\u003E \u00e4 \ud83d\ude00 \"q\"","groups":["G\/\u003C1\u003E"]}}}}"#,
    );
}

#[test]
fn unsupported_operation() {
    let b = backend();
    let msg = error_body("Unsupported operation.");
    assert_json(
        &post(&b, &[("operation", "AUTH"), ("username", "good")]),
        500,
        &msg,
    );
    assert_json(&post(&b, &[("operation", "checkPassword")]), 500, &msg);
    assert_json(&post(&b, &[("username", "good")]), 500, &msg);
    assert_json(&post(&b, &[]), 500, &msg);
}
