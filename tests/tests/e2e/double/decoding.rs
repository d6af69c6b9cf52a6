//! Request decoding: query string and body, JSON, chunked bodies, `Expect`, bad requests.

use std::io::{BufRead, BufReader, Read, Write};
use std::net::TcpStream;
use std::time::Duration;

use xcauth_tests::double::client::Client;
use xcauth_tests::double::{sign, User, API_PATH, API_PATH_PRETTY};

use super::{assert_json, backend, error_body, IS_USER, NOAUTH, NO_USER, SECRET};

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
