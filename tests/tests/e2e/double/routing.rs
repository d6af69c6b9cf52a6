//! Routing: POST only, unknown paths, no control endpoint unless enabled.

use xcauth_tests::double::client::Client;
use xcauth_tests::double::{Fault, API_PATH};

use super::backend;

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
