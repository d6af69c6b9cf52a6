//! Connections and counters.

use std::net::TcpStream;
use std::time::{Duration, Instant};

use xcauth_tests::double::client::{post_once, Client};
use xcauth_tests::double::{sign, Fault, API_PATH};

use super::{assert_json, backend, post, post_sig, IS_USER, SECRET};

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
    // The slow request is in flight once the double has it (it records a request before it
    // delays the answer): only then does the drop below have one to cut short.
    let end = Instant::now() + Duration::from_secs(10);
    while b.count("isuser") < 2 {
        assert!(
            Instant::now() < end,
            "the slow request never reached the double"
        );
        std::thread::sleep(Duration::from_millis(10));
    }
    let start = Instant::now();
    drop(b);
    // Waiting for the delayed request would take its 30 s.
    let took = start.elapsed();
    assert!(took < Duration::from_secs(15), "drop took {took:?}");
    assert!(slow.join().unwrap().is_err());
    assert!(c.is_closed(Duration::from_secs(10)));
    assert!(TcpStream::connect(addr).is_err());
}

#[test]
fn verified_requests_are_counted_apart_from_refused_signatures() {
    let b = backend();
    // A wrong password: the API itself says noauth.
    post(
        &b,
        &[
            ("operation", "auth"),
            ("username", "good"),
            ("password", "wrong"),
        ],
    );
    // A wrong signature, no signature, and a server with another secret: the middleware.
    post_sig(
        &b,
        Some(&sign("other", b"operation=auth&username=good")),
        "operation=auth&username=good",
    );
    post_sig(&b, None, "operation=auth&username=good");
    b.set_fault(Fault::WrongSignature);
    post(&b, &[("operation", "auth"), ("username", "good")]);
    b.set_fault(Fault::None);
    // A fault answered before the signature check is neither.
    b.set_fault_times(Fault::Status(503, "down".into()), 1);
    post(&b, &[("operation", "auth"), ("username", "good")]);
    post(&b, &[("operation", "isuser"), ("username", "good")]);
    assert_eq!(b.count("auth"), 5);
    assert_eq!(b.verified("auth"), 1);
    assert_eq!(b.verified("isuser"), 1);
    assert_eq!(b.bad_signatures(), 3);
    b.reset_counters();
    assert_eq!((b.verified("auth"), b.bad_signatures()), (0, 0));
}

#[test]
fn held_requests_go_on_together() {
    let b = backend();
    b.hold_until(2);
    let addr = b.addr();
    let first =
        std::thread::spawn(move || post_once(addr, SECRET, "operation=isuser&username=good"));
    assert!(
        b.wait_held(1, Duration::from_secs(10)),
        "the first request is held"
    );
    assert!(!first.is_finished(), "answered while held");
    // The second one opens the gate for both.
    assert_json(
        &post(&b, &[("operation", "isuser"), ("username", "good")]),
        200,
        IS_USER,
    );
    assert_json(&first.join().unwrap().unwrap(), 200, IS_USER);
    assert_eq!(b.held(), 0);
    // Then nothing is held; hold_until(usize::MAX) holds until release().
    assert_json(
        &post(&b, &[("operation", "isuser"), ("username", "good")]),
        200,
        IS_USER,
    );
    b.hold_until(usize::MAX);
    let held =
        std::thread::spawn(move || post_once(addr, SECRET, "operation=isuser&username=good"));
    assert!(b.wait_held(1, Duration::from_secs(10)));
    b.release();
    assert_json(&held.join().unwrap().unwrap(), 200, IS_USER);
    assert_eq!((b.held(), b.count("isuser")), (0, 4));
}
