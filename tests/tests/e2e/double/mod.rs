//! Tests of the JSXC backend double over real TCP (`docs/jsxc-api.md`), one module per
//! part of it; the helpers shared by them are here.

// Test code: the helpers outside `#[test]` functions panic on failure on purpose.
#![allow(clippy::unwrap_used, clippy::expect_used)]

mod binary;
mod connections;
mod decoding;
mod faults;
mod lookups;
mod responses;
mod routing;
mod signatures;

use xcauth_tests::double::client::{form_encode, post_once, Client, HttpResponse};
use xcauth_tests::double::{BackendDouble, User, API_PATH};

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
