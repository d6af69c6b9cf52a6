//! Tests of the JSXC backend double over real TCP (`shared/spec/jsxc-api.md`).

// Test code: the helpers outside `#[test]` functions panic on failure on purpose.
#![allow(clippy::unwrap_used, clippy::expect_used)]

use std::io::{BufRead, BufReader, ErrorKind, Read, Write};
use std::net::TcpStream;
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

use xcauth_tests::double::client::{form_encode, post_once, quote_plus, Client, HttpResponse};
use xcauth_tests::double::sig::hmac_hex;
use xcauth_tests::double::{
    sign, sign_with, BackendDouble, Fault, PhpVersion, User, API_PATH, API_PATH_PRETTY,
};

const SECRET: &str = "testsecret";
const JSON: &str = "application/json; charset=utf-8";

fn backend() -> BackendDouble {
    let b = BackendDouble::start(SECRET);
    b.add_user(User::new("good", "pw"));
    b
}

fn post(b: &BackendDouble, pairs: &[(&str, &str)]) -> HttpResponse {
    post_once(b.addr(), SECRET, &form_encode(pairs)).unwrap()
}

/// POST with an explicit signature header value (None = no header).
fn post_sig(b: &BackendDouble, sig: Option<&str>, body: &str) -> HttpResponse {
    let mut headers = vec![("Content-Type", "application/x-www-form-urlencoded")];
    if let Some(sig) = sig {
        headers.push(("X-JSXC-SIGNATURE", sig));
    }
    Client::connect(b.addr())
        .unwrap()
        .request("POST", API_PATH, &headers, body.as_bytes())
        .unwrap()
}

fn assert_json(resp: &HttpResponse, status: u16, body: &str) {
    assert_eq!(resp.text(), body);
    assert_eq!(resp.status, status);
    assert_eq!(resp.header("content-type"), Some(JSON));
}

fn error_body(msg: &str) -> String {
    format!(r#"{{"result":"error","data":{{"msg":"{msg}"}}}}"#)
}

const NOAUTH: &str = r#"{"result":"noauth"}"#;
const IS_USER: &str = r#"{"result":"success","data":{"isUser":true}}"#;
const NO_USER: &str = r#"{"result":"success","data":{"isUser":false}}"#;

// ---------------------------------------------------------------------------------------------
// Signatures

#[test]
fn signature_test_vectors() {
    let vectors = [
        (
            "testsecret",
            "operation=isuser&username=good&domain=example.org",
            "sha1=0154f7921267dab6283ffb5a700544e6a8537e55",
        ),
        (
            "0123456789ABCDEF",
            "operation=isuser&username=good&domain=example.org",
            "sha1=e93630b20b500c826dc41326edecc2cb3d6d2f52",
        ),
        (
            "testsecret",
            "operation=auth&username=jane.doe&domain=example.com&password=p4ss+w0rd%3A%2B%26%3D%2F~_.-%2A",
            "sha1=f00feaaf791326f413d4ded2496149a01ad43ddf",
        ),
        (
            "0123456789ABCDEF",
            "operation=auth&username=jane.doe&domain=example.com&password=p4ss+w0rd%3A%2B%26%3D%2F~_.-%2A",
            "sha1=1dfa099535d287082934b34239bca8a3e9d827b8",
        ),
        (
            "testsecret",
            "operation=sharedroster&username=j%C3%B6rg&domain=ex%C3%A4mple.de",
            "sha1=7363ea003f7cefdeff8c73d81189cb255fafedc3",
        ),
        (
            "testsecret",
            "operation=auth&username=good&domain=e&password=p%C3%A4ssw%C3%B6rd",
            "sha1=b4d95863898965f314bfc85692332bc8340154c3",
        ),
        (
            "testsecret",
            "operation=auth&username=good&domain=example.org&password=pw",
            "sha1=80a4ff986d4e07fca3d3f6b91305c197553f7628",
        ),
    ];
    // The form encoding reproduces the bodies too.
    assert_eq!(
        form_encode(&[
            ("operation", "auth"),
            ("username", "jane.doe"),
            ("domain", "example.com"),
            ("password", "p4ss w0rd:+&=/~_.-*"),
        ]),
        vectors[2].1
    );
    assert_eq!(
        form_encode(&[
            ("operation", "sharedroster"),
            ("username", "jörg"),
            ("domain", "exämple.de"),
        ]),
        vectors[4].1
    );
    assert_eq!(quote_plus("a@b"), "a%40b");
    for (secret, body, header) in vectors {
        assert_eq!(sign(secret, body.as_bytes()), header, "{secret} {body}");
        // The server accepts exactly these headers.
        let b = BackendDouble::start(secret);
        b.add_user(User::new("good", "pw"));
        b.add_user(User::new("jörg", "pw"));
        let resp = post_sig(&b, Some(header), body);
        assert_eq!(resp.status, 200, "{body}: {}", resp.text());
        assert!(resp.text().starts_with(r#"{"result":"#));
    }
    let b = backend();
    let body = "operation=auth&username=good&domain=example.org&password=pw";
    assert_json(
        &post_sig(
            &b,
            Some("sha1=80a4ff986d4e07fca3d3f6b91305c197553f7628"),
            body,
        ),
        200,
        r#"{"result":"success","data":{"uid":"good"}}"#,
    );
}

#[test]
fn signature_check_order_and_messages() {
    let b = backend();
    let body = "operation=isuser&username=good";
    let missing = error_body(r#"HTTP header \"X-JSXC-Signature\" is missing."#);
    assert_json(&post_sig(&b, None, body), 500, &missing);
    assert_json(&post_sig(&b, Some(""), body), 500, &missing);
    assert_json(&post_sig(&b, Some("0"), body), 500, &missing);
    // Header name is case-insensitive.
    let resp = Client::connect(b.addr())
        .unwrap()
        .request(
            "POST",
            API_PATH,
            &[
                ("content-type", "application/x-www-form-urlencoded"),
                ("x-jsxc-signature", &sign(SECRET, body.as_bytes())),
            ],
            body.as_bytes(),
        )
        .unwrap();
    assert_json(&resp, 200, IS_USER);

    let unsupported = |a: &str| error_body(&format!("Hash algorithm '{a}' is not supported."));
    assert_json(&post_sig(&b, Some("foo"), body), 500, &unsupported("foo"));
    assert_json(
        &post_sig(&b, Some("foo=abc=def"), body),
        500,
        &unsupported("foo"),
    );
    assert_json(
        &post_sig(&b, Some("SHA1=abc"), body),
        500,
        &unsupported("SHA1"),
    );
    let nomatch = error_body("Signature does not match.");
    assert_json(&post_sig(&b, Some("sha1="), body), 500, &nomatch);
    assert_json(&post_sig(&b, Some("sha1"), body), 500, &nomatch);

    // Other algorithms PHP knows are accepted, lower-case hex only.
    for algo in [
        "sha256",
        "md5",
        "sha512",
        "sha3-256",
        "ripemd160",
        "whirlpool",
        "sha512/256",
    ] {
        let sig = sign_with(algo, SECRET, body.as_bytes()).unwrap();
        assert_json(&post_sig(&b, Some(&sig), body), 200, IS_USER);
    }
    let upper = format!(
        "sha1={}",
        hmac_hex("sha1", SECRET.as_bytes(), body.as_bytes()).unwrap()
    )
    .to_uppercase()
    .replacen("SHA1", "sha1", 1);
    assert_json(&post_sig(&b, Some(&upper), body), 500, &nomatch);
    // Wrong secret, altered body.
    let wrong = sign("other", body.as_bytes());
    assert_json(&post_sig(&b, Some(&wrong), body), 500, &nomatch);
    let sig = sign(SECRET, body.as_bytes());
    assert_json(
        &post_sig(&b, Some(&sig), "operation=isuser&username=goo"),
        500,
        &nomatch,
    );
    // Known but unimplemented crypto algorithm: no match.
    assert_json(&post_sig(&b, Some("md4=00"), body), 500, &nomatch);

    // Checksums: PHP 8 throws (generic HTML 500), PHP 7 says "does not match".
    let resp = post_sig(&b, Some("crc32=00000000"), body);
    assert_eq!(resp.status, 500);
    assert!(resp
        .header("content-type")
        .unwrap()
        .starts_with("text/html"));
    b.set_php_version(PhpVersion::Php7);
    assert_json(&post_sig(&b, Some("crc32=00000000"), body), 500, &nomatch);
    assert_json(
        &post_sig(&b, Some("xxh3=00"), body),
        500,
        &unsupported("xxh3"),
    );
    b.set_php_version(PhpVersion::Php8);

    // Missing secret comes after the header check and before the algorithm check.
    let no_secret = error_body("Missing secret.");
    b.set_secret("");
    assert_json(&post_sig(&b, None, body), 500, &missing);
    assert_json(&post_sig(&b, Some("foo"), body), 500, &no_secret);
    assert_json(&post_sig(&b, Some(&sig), body), 500, &no_secret);
    b.set_secret("0");
    assert_json(&post_sig(&b, Some(&sig), body), 500, &no_secret);
    b.set_secret("new secret");
    assert_json(&post_sig(&b, Some(&sig), body), 500, &nomatch);
    let sig = sign("new secret", body.as_bytes());
    assert_json(&post_sig(&b, Some(&sig), body), 200, IS_USER);
}

// ---------------------------------------------------------------------------------------------
// Responses: complete list

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

// ---------------------------------------------------------------------------------------------
// Lookups

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

// ---------------------------------------------------------------------------------------------
// Request decoding

#[test]
fn query_string_merged_body_wins() {
    let b = backend();
    let body = "operation=isuser";
    let sig = sign(SECRET, body.as_bytes());
    let send = |target: &str, body: &str| {
        Client::connect(b.addr())
            .unwrap()
            .request(
                "POST",
                target,
                &[
                    ("Content-Type", "application/x-www-form-urlencoded"),
                    ("X-JSXC-SIGNATURE", &sign(SECRET, body.as_bytes())),
                ],
                body.as_bytes(),
            )
            .unwrap()
    };
    let _ = sig;
    assert_json(
        &send(&format!("{API_PATH}?username=good"), body),
        200,
        IS_USER,
    );
    assert_json(
        &send(
            &format!("{API_PATH}?username=good"),
            "operation=isuser&username=nobody",
        ),
        200,
        NO_USER,
    );
    assert_json(
        &send(
            &format!("{API_PATH}?username=nobody"),
            "operation=isuser&username=good",
        ),
        200,
        IS_USER,
    );
    // Query-only operation: not signed, still used.
    assert_json(
        &send(&format!("{API_PATH}?operation=isuser&username=good"), ""),
        200,
        IS_USER,
    );
    // `+` is a space, %XX decoded.
    b.add_user(User::new("a b+c", "pw"));
    assert_json(
        &send(API_PATH, "operation=isuser&username=a+b%2bc"),
        200,
        IS_USER,
    );
    // Pretty URL works too.
    assert_json(
        &send(API_PATH_PRETTY, "operation=isuser&username=good"),
        200,
        IS_USER,
    );
}

#[test]
fn json_body_and_other_content_types() {
    let b = backend();
    let send = |ct: &str, body: &str| {
        Client::connect(b.addr())
            .unwrap()
            .request(
                "POST",
                API_PATH,
                &[
                    ("Content-Type", ct),
                    ("X-JSXC-SIGNATURE", &sign(SECRET, body.as_bytes())),
                ],
                body.as_bytes(),
            )
            .unwrap()
    };
    assert_json(
        &send(
            "application/json",
            r#"{"operation":"isuser","username":"good"}"#,
        ),
        200,
        IS_USER,
    );
    assert_json(
        &send(
            "application/json; charset=utf-8",
            r#"{"operation":"auth","username":"good","password":"pw"}"#,
        ),
        200,
        r#"{"result":"success","data":{"uid":"good"}}"#,
    );
    assert_json(
        &send(
            "application/json",
            r#"{"operation":"auth","username":"good","password":0}"#,
        ),
        200,
        NOAUTH,
    );
    assert_json(
        &send(
            "application/x-www-form-urlencoded; charset=UTF-8",
            "operation=isuser&username=good",
        ),
        200,
        IS_USER,
    );
    // No form content type: no body parameters.
    assert_json(
        &send("text/plain", "operation=isuser&username=good"),
        500,
        &error_body("Unsupported operation."),
    );
}

#[test]
fn chunked_body() {
    let b = backend();
    let body = "operation=isuser&username=good";
    let sig = sign(SECRET, body.as_bytes());
    let (first, rest) = body.split_at(4);
    let raw = format!(
        "POST {API_PATH} HTTP/1.1\r\nHost: x\r\nContent-Type: application/x-www-form-urlencoded\r\n\
         X-JSXC-SIGNATURE: {sig}\r\nTransfer-Encoding: chunked\r\n\r\n\
         {:x}\r\n{first}\r\n{:x};ext=1\r\n{rest}\r\n0\r\n\r\n",
        first.len(),
        rest.len()
    );
    let mut c = Client::connect(b.addr()).unwrap();
    c.send_raw(raw.as_bytes()).unwrap();
    assert_json(&c.read_response(false).unwrap(), 200, IS_USER);
    assert_eq!(b.last_request().unwrap().body, body.as_bytes());
    // The connection stays usable.
    assert_json(&c.post_signed(SECRET, body).unwrap(), 200, IS_USER);
    assert_eq!(b.connections(), 1);
}

#[test]
fn expect_continue_interim_response() {
    let b = backend();
    let body = "operation=isuser&username=good";
    let mut s = TcpStream::connect(b.addr()).unwrap();
    s.set_read_timeout(Some(Duration::from_secs(5))).unwrap();
    let head = format!(
        "POST {API_PATH} HTTP/1.1\r\nHost: x\r\nContent-Type: application/x-www-form-urlencoded\r\n\
         X-JSXC-SIGNATURE: {}\r\nExpect: 100-continue\r\nContent-Length: {}\r\n\r\n",
        sign(SECRET, body.as_bytes()),
        body.len()
    );
    s.write_all(head.as_bytes()).unwrap();
    let mut interim = [0u8; 25];
    s.read_exact(&mut interim).unwrap();
    assert_eq!(&interim, b"HTTP/1.1 100 Continue\r\n\r\n");
    s.write_all(body.as_bytes()).unwrap();
    let mut reader = BufReader::new(s);
    let mut status = String::new();
    reader.read_line(&mut status).unwrap();
    assert_eq!(status, "HTTP/1.1 200 OK\r\n");
}

#[test]
fn malformed_and_oversized_requests() {
    let b = backend();
    let mut c = Client::connect(b.addr()).unwrap();
    c.send_raw(b"NONSENSE\r\n\r\n").unwrap();
    assert_eq!(c.read_response(false).unwrap().status, 400);
    assert!(c.is_closed(Duration::from_secs(2)));

    let mut c = Client::connect(b.addr()).unwrap();
    let big = "x".repeat(20_000);
    let resp = c
        .request("POST", API_PATH, &[("X-Big", &big)], b"")
        .unwrap();
    assert_eq!(resp.status, 431);

    let mut c = Client::connect(b.addr()).unwrap();
    c.send_raw(format!("POST {API_PATH} HTTP/1.1\r\nContent-Length: 99999999\r\n\r\n").as_bytes())
        .unwrap();
    assert_eq!(c.read_response(false).unwrap().status, 413);
}

// ---------------------------------------------------------------------------------------------
// Routing

#[test]
fn post_only_and_unknown_paths() {
    let b = backend();
    let mut c = Client::connect(b.addr()).unwrap();
    for method in ["GET", "PUT", "DELETE", "OPTIONS"] {
        let resp = c.request(method, API_PATH, &[], b"").unwrap();
        assert_eq!(resp.status, 405, "{method}");
        assert_eq!(resp.header("allow"), Some("POST"));
        assert!(resp
            .header("content-type")
            .unwrap()
            .starts_with("text/html"));
    }
    let resp = c.request("HEAD", API_PATH, &[], b"").unwrap();
    assert_eq!(resp.status, 405);
    let resp = c
        .request("POST", "/index.php/apps/ojsxc/ajax/other.php", &[], b"")
        .unwrap();
    assert_eq!(resp.status, 404);
    assert!(resp
        .header("content-type")
        .unwrap()
        .starts_with("text/html"));
    // No control endpoint unless enabled.
    assert_eq!(
        c.request("POST", "/__control", &[], b"fault=drop")
            .unwrap()
            .status,
        404
    );
    assert_eq!(b.fault(), Fault::None);
    assert_eq!(b.connections(), 1);
    assert_eq!(
        b.count("auth") + b.count("isuser") + b.count("sharedroster"),
        0
    );
    assert_eq!(b.url(), format!("http://127.0.0.1:{}{API_PATH}", b.port()));
}

// ---------------------------------------------------------------------------------------------
// Faults

#[test]
fn fault_delay() {
    let b = backend();
    b.set_fault(Fault::Delay(Duration::from_millis(300)));
    let start = Instant::now();
    let resp = post(&b, &[("operation", "isuser"), ("username", "good")]);
    assert!(start.elapsed() >= Duration::from_millis(300));
    assert_json(&resp, 200, IS_USER);
}

#[test]
fn fault_status_garbage_json_redirect() {
    let b = backend();
    let req = [("operation", "isuser"), ("username", "good")];
    b.set_fault(Fault::Status(503, "<html>maintenance</html>".into()));
    let resp = post(&b, &req);
    assert_eq!(
        (resp.status, resp.text().as_str()),
        (503, "<html>maintenance</html>")
    );
    assert!(resp
        .header("content-type")
        .unwrap()
        .starts_with("text/html"));

    b.set_fault(Fault::Garbage);
    let resp = post(&b, &req);
    assert_eq!(resp.status, 200);
    assert!(serde_json::from_slice::<serde_json::Value>(&resp.body).is_err());

    for body in [r#"{"result":"error"}"#, "[]", r#"{"result":"bar"}"#, "null"] {
        b.set_fault(Fault::Json200(body.into()));
        assert_json(&post(&b, &req), 200, body);
    }

    b.set_fault(Fault::Redirect("https://cloud.example.org/login".into()));
    let resp = post(&b, &req);
    assert_eq!(resp.status, 302);
    assert_eq!(
        resp.header("location"),
        Some("https://cloud.example.org/login")
    );

    b.set_fault(Fault::WrongSignature);
    assert_json(
        &post(&b, &req),
        500,
        &error_body("Signature does not match."),
    );
    assert_json(
        &post_sig(&b, None, "operation=isuser"),
        500,
        &error_body(r#"HTTP header \"X-JSXC-Signature\" is missing."#),
    );

    b.set_fault(Fault::None);
    assert_json(&post(&b, &req), 200, IS_USER);
    assert_eq!(b.count("isuser"), 10);
}

#[test]
fn fault_drop_and_close_after_headers() {
    let b = backend();
    let body = form_encode(&[("operation", "isuser"), ("username", "good")]);
    b.set_fault(Fault::Drop);
    let err = post_once(b.addr(), SECRET, &body).unwrap_err();
    assert!(
        matches!(
            err.kind(),
            ErrorKind::UnexpectedEof | ErrorKind::ConnectionReset
        ),
        "{err}"
    );
    assert_eq!(b.count("isuser"), 1, "the request was read");

    b.set_fault(Fault::CloseAfterHeaders);
    let mut c = Client::connect(b.addr()).unwrap();
    let err = c.post_signed(SECRET, &body).unwrap_err();
    assert_eq!(err.kind(), ErrorKind::UnexpectedEof);

    // One-shot fault: the first request on a kept-alive connection... the retry succeeds.
    b.set_fault(Fault::None);
    let mut c = Client::connect(b.addr()).unwrap();
    assert_json(&c.post_signed(SECRET, &body).unwrap(), 200, IS_USER);
    b.set_fault_times(Fault::Drop, 1);
    assert!(c.post_signed(SECRET, &body).is_err());
    let mut c = Client::connect(b.addr()).unwrap();
    assert_json(&c.post_signed(SECRET, &body).unwrap(), 200, IS_USER);
    assert_eq!(b.fault(), Fault::None);
}

// ---------------------------------------------------------------------------------------------
// Connections and counters

#[test]
fn keep_alive_and_connection_close() {
    let b = backend();
    let mut c = Client::connect(b.addr()).unwrap();
    let r1 = c
        .post_signed(SECRET, "operation=isuser&username=good")
        .unwrap();
    let r2 = c
        .post_signed(
            SECRET,
            "operation=auth&username=good&domain=example.org&password=pw",
        )
        .unwrap();
    assert_json(&r1, 200, IS_USER);
    assert_eq!(r1.header("connection"), Some("keep-alive"));
    assert_json(&r2, 200, r#"{"result":"success","data":{"uid":"good"}}"#);
    assert_eq!(b.connections(), 1);
    assert_eq!(b.total(), 2);
    let reqs = b.requests();
    assert_eq!(reqs.len(), 2);
    assert_eq!(reqs[0].connection, reqs[1].connection);

    // Connection: close is honoured.
    let body = "operation=isuser&username=good";
    let resp = c
        .request(
            "POST",
            API_PATH,
            &[
                ("Content-Type", "application/x-www-form-urlencoded"),
                ("X-JSXC-SIGNATURE", &sign(SECRET, body.as_bytes())),
                ("Connection", "close"),
            ],
            body.as_bytes(),
        )
        .unwrap();
    assert_eq!(resp.header("connection"), Some("close"));
    assert!(c.is_closed(Duration::from_secs(2)));

    // HTTP/1.0 without keep-alive closes; pipelined requests are answered in order.
    let mut c = Client::connect(b.addr()).unwrap();
    let sig = sign(SECRET, body.as_bytes());
    let one = format!(
        "POST {API_PATH} HTTP/1.1\r\nContent-Type: application/x-www-form-urlencoded\r\n\
         X-JSXC-SIGNATURE: {sig}\r\nContent-Length: {}\r\n\r\n{body}",
        body.len()
    );
    c.send_raw(format!("{one}{one}").as_bytes()).unwrap();
    assert_json(&c.read_response(false).unwrap(), 200, IS_USER);
    assert_json(&c.read_response(false).unwrap(), 200, IS_USER);
    let mut c = Client::connect(b.addr()).unwrap();
    c.send_raw(one.replace("HTTP/1.1", "HTTP/1.0").as_bytes())
        .unwrap();
    assert_json(&c.read_response(false).unwrap(), 200, IS_USER);
    assert!(c.is_closed(Duration::from_secs(2)));
    assert_eq!(b.connections(), 3);
}

#[test]
fn counters_and_last_request() {
    let b = backend();
    assert!(b.last_request().is_none());
    post(
        &b,
        &[
            ("operation", "auth"),
            ("username", "good"),
            ("domain", "example.org"),
            ("password", "pw"),
        ],
    );
    post(
        &b,
        &[
            ("operation", "isuser"),
            ("username", "good"),
            ("domain", "example.org"),
        ],
    );
    post(&b, &[("operation", "isuser"), ("username", "x")]);
    post(
        &b,
        &[
            ("operation", "sharedroster"),
            ("username", "good"),
            ("domain", "example.org"),
        ],
    );
    post(&b, &[("operation", "nope")]);
    assert_eq!(b.count("auth"), 1);
    assert_eq!(b.count("isuser"), 2);
    assert_eq!(b.count("sharedroster"), 1);
    assert_eq!(b.count("nope"), 1);
    assert_eq!(b.total(), 5);
    assert_eq!(b.connections(), 5);
    let last = b.requests()[0].clone();
    assert_eq!(last.method, "POST");
    assert_eq!(last.path, API_PATH);
    assert_eq!(
        last.body_str(),
        "operation=auth&username=good&domain=example.org&password=pw"
    );
    assert_eq!(
        last.header("x-jsxc-signature"),
        Some("sha1=80a4ff986d4e07fca3d3f6b91305c197553f7628")
    );
    assert!(last.headers.iter().any(|(n, _)| n == "X-JSXC-SIGNATURE"));
    assert_eq!(b.last_request().unwrap().body, b"operation=nope");
    b.reset_counters();
    assert_eq!((b.count("auth"), b.total(), b.connections()), (0, 0, 0));
    assert!(b.last_request().is_none());
}

#[test]
fn drop_stops_with_idle_connections() {
    let b = backend();
    let mut c = Client::connect(b.addr()).unwrap();
    c.post_signed(SECRET, "operation=isuser&username=good")
        .unwrap();
    let _idle = TcpStream::connect(b.addr()).unwrap();
    b.set_fault(Fault::Delay(Duration::from_secs(30)));
    let addr = b.addr();
    let slow = std::thread::spawn(move || post_once(addr, SECRET, "operation=isuser"));
    std::thread::sleep(Duration::from_millis(100));
    let start = Instant::now();
    drop(b);
    assert!(start.elapsed() < Duration::from_secs(3));
    assert!(slow.join().unwrap().is_err());
    assert!(c.is_closed(Duration::from_secs(2)));
    assert!(TcpStream::connect(addr).is_err());
}

// ---------------------------------------------------------------------------------------------
// The binary

#[test]
fn binary_ready_line_users_and_control() {
    let dir = tempfile::tempdir().unwrap();
    let port_file = dir.path().join("port");
    let mut child = Command::new(env!("CARGO_BIN_EXE_jsxc-double"))
        .args([
            "--secret",
            SECRET,
            "--port-file",
            port_file.to_str().unwrap(),
            "--exit-on-stdin-eof",
            "--user",
            "alice:pw:Alice Liddell",
            "--user",
            "bob@example.org:pw2",
            "--user",
            "dis:pw",
            "--app-password",
            "alice:alice:app:with:colons",
            "--group",
            "team:The Team:alice,bob@example.org",
            "--disabled",
            "dis",
        ])
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .spawn()
        .unwrap();
    let mut line = String::new();
    BufReader::new(child.stdout.take().unwrap())
        .read_line(&mut line)
        .unwrap();
    let url = line.trim().strip_prefix("READY ").unwrap().to_owned();
    let port: u16 = std::fs::read_to_string(&port_file)
        .unwrap()
        .trim()
        .parse()
        .unwrap();
    assert_eq!(url, format!("http://127.0.0.1:{port}{API_PATH}"));
    let addr = format!("127.0.0.1:{port}").parse().unwrap();

    let mut c = Client::connect(addr).unwrap();
    let roster = c
        .post_signed(
            SECRET,
            "operation=sharedroster&username=alice&domain=example.org",
        )
        .unwrap();
    assert_json(
        &roster,
        200,
        r#"{"result":"success","data":{"sharedRoster":{"alice":{"name":"Alice Liddell","groups":["The Team"]},"bob@example.org":{"name":"bob@example.org","groups":["The Team"]}}}}"#,
    );
    let auth = c
        .post_signed(
            SECRET,
            "operation=auth&username=alice&password=app%3Awith%3Acolons",
        )
        .unwrap();
    assert_json(&auth, 200, r#"{"result":"success","data":{"uid":"alice"}}"#);
    let auth = c
        .post_signed(SECRET, "operation=auth&username=dis&password=pw")
        .unwrap();
    assert_json(&auth, 401, r#"{"message":"User disabled"}"#);

    let control = |c: &mut Client, body: &str| {
        c.request(
            "POST",
            "/__control",
            &[("Content-Type", "application/x-www-form-urlencoded")],
            body.as_bytes(),
        )
        .unwrap()
    };
    let r = control(&mut c, "fault=status:503");
    assert_eq!((r.status, r.text().as_str()), (200, "ok"));
    assert_eq!(
        c.post_signed(SECRET, "operation=isuser&username=alice")
            .unwrap()
            .status,
        503
    );
    control(&mut c, "fault=json:%7B%22result%22%3A%22error%22%7D");
    assert_eq!(
        c.post_signed(SECRET, "operation=isuser").unwrap().text(),
        r#"{"result":"error"}"#
    );
    control(&mut c, "fault=wrongsig");
    assert_eq!(
        c.post_signed(SECRET, "operation=isuser").unwrap().status,
        500
    );
    control(&mut c, "fault=redirect");
    assert_eq!(
        c.post_signed(SECRET, "operation=isuser").unwrap().status,
        302
    );
    control(&mut c, "fault=garbage");
    assert!(c
        .post_signed(SECRET, "operation=isuser")
        .unwrap()
        .text()
        .contains("not JSON"));
    control(&mut c, "fault=delay:200");
    let start = Instant::now();
    assert_eq!(
        c.post_signed(SECRET, "operation=isuser").unwrap().status,
        200
    );
    assert!(start.elapsed() >= Duration::from_millis(200));
    assert_eq!(control(&mut c, "fault=bogus").status, 400);
    control(&mut c, "fault=drop");
    assert!(c.post_signed(SECRET, "operation=isuser").is_err());
    let mut c = Client::connect(addr).unwrap();
    control(&mut c, "fault=none&secret=changed");
    assert_json(
        &c.post_signed("changed", "operation=isuser&username=alice")
            .unwrap(),
        200,
        IS_USER,
    );
    let stats = control(&mut c, "stats=1");
    assert_eq!(
        stats.text(),
        // The second connection started with a control request: not counted.
        r#"{"auth":2,"isuser":8,"sharedroster":1,"total":11,"connections":1}"#
    );
    control(&mut c, "reset=1");
    assert_eq!(
        control(&mut c, "stats=1").text(),
        r#"{"auth":0,"isuser":0,"sharedroster":0,"total":0,"connections":0}"#
    );

    // Closing stdin stops it.
    drop(child.stdin.take());
    let start = Instant::now();
    loop {
        if let Some(status) = child.try_wait().unwrap() {
            assert!(status.success());
            break;
        }
        assert!(start.elapsed() < Duration::from_secs(5), "did not exit");
        std::thread::sleep(Duration::from_millis(20));
    }
}

#[test]
fn binary_rejects_bad_arguments() {
    let out = Command::new(env!("CARGO_BIN_EXE_jsxc-double"))
        .args(["--user", "nopassword"])
        .output()
        .unwrap();
    assert_eq!(out.status.code(), Some(2));
    assert!(String::from_utf8_lossy(&out.stderr).contains("usage"));
}
