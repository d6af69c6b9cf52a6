//! The switchable faults.

use std::io::ErrorKind;
use std::time::{Duration, Instant};

use xcauth_tests::double::client::{form_encode, post_once, Client};
use xcauth_tests::double::Fault;

use super::{assert_json, backend, error_body, post, post_sig, IS_USER, SECRET};

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
