//! The `jsxc-double` program.

use std::io::{BufRead, BufReader};
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

use xcauth_tests::double::client::Client;
use xcauth_tests::double::API_PATH;

use super::{assert_json, IS_USER, SECRET};

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
