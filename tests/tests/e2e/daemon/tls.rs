//! HTTPS to the backend, as every real Nextcloud is reached: the double serves TLS with a
//! PKI made at test time (`xcauth_tests::tls`). A login succeeds when `ca-file=` names the
//! private CA; a self-signed certificate, one from an untrusted CA, one for another host
//! name and an expired one are each "unavailable" with a log line naming the cause, through
//! the client and through `xcauthd -A` (through the PAM module: `pam::tls`).

#![allow(clippy::unwrap_used, clippy::expect_used)] // tests: a failed unwrap is a failed test

use std::time::Duration;

use xcauth_core::backend::jsxc::{ClientOptions, JsxcClient};
use xcauth_core::backend::{Backend, BackendKind, Target};
use xcauth_core::vocab::{AuthReply, BackendUrl, TlsCause, TlsFailure, Unavailable};
use xcauth_core::{Password, Secret};
use xcauth_tests::double::User;
use xcauth_tests::support::{self, Scratch};
use xcauth_tests::tls::TestPki;

const SECRET: &str = "tls-test-secret";

#[test]
fn client_https_login_and_each_refused_certificate() {
    let s = Scratch::new("tls-client");
    let pki = TestPki::new(s.path());
    let d = pki.https_double(SECRET);
    d.add_user(User::new("alice", "secret"));
    let target = Target {
        kind: BackendKind::Jsxc,
        url: BackendUrl::parse(&d.url()).unwrap(),
        secret: Secret::new(SECRET),
        authdomain: "example.org".into(),
    };
    let client = |ca_file: bool| {
        JsxcClient::new(&ClientOptions {
            connect_timeout: Duration::from_secs(2),
            read_timeout: Duration::from_secs(3),
            ca_file: ca_file.then(|| pki.ca.cert.clone()),
            ..ClientOptions::default()
        })
        .unwrap()
    };
    let pw = Password::new("secret");
    assert_eq!(
        client(true).auth(&target, "alice", &pw),
        AuthReply::Accepted {
            uid: Some("alice".into())
        }
    );
    // The private CA is not in the system store: without ca-file= it is refused.
    let got = client(false).auth(&target, "alice", &pw);
    assert!(
        matches!(
            &got,
            AuthReply::Unavailable(Unavailable::Tls(TlsFailure::Handshake {
                cause: TlsCause::UnknownIssuer,
                ..
            }))
        ),
        "{got:?}"
    );
    for (what, cert, cause) in pki.refused() {
        d.set_tls_identity(cert).unwrap();
        let before = d.total();
        let got = client(true).auth(&target, "alice", &pw);
        let AuthReply::Unavailable(why @ Unavailable::Tls(_)) = &got else {
            panic!("{what}: {got:?}")
        };
        let line = why.to_string();
        assert!(line.starts_with("TLS failure: "), "{what}: {line}");
        assert!(line.contains(cause), "{what}: {line}");
        assert_eq!(d.total(), before, "{what}: no request got through");
    }
}

#[test]
fn xcauthd_one_shot_over_https() {
    let s = Scratch::new("tls-xcauthd");
    let pki = TestPki::new(s.path());
    let d = pki.https_double(SECRET);
    d.add_user(User::new("alice", "secret"));
    let conf = s.write(
        "xcauth.conf",
        &support::xcauth_conf(
            &d.url(),
            SECRET,
            &format!("ca-file={}", pki.ca.cert.display()),
        ),
    );
    let run = || {
        let out = support::xcauthd(&conf)
            .args(["-i", "-A", "alice", "example.org", "secret"])
            .output()
            .unwrap();
        (
            String::from_utf8_lossy(&out.stdout).trim().to_owned(),
            out.status.code(),
            String::from_utf8_lossy(&out.stderr).into_owned(),
        )
    };
    let (said, code, log) = run();
    assert_eq!((said.as_str(), code), ("True", Some(0)), "{log}");
    assert_eq!(d.count("auth"), 1);
    for (what, cert, cause) in pki.refused() {
        d.set_tls_identity(cert).unwrap();
        let (said, code, log) = run();
        assert_eq!((said.as_str(), code), ("False", Some(3)), "{what}: {log}");
        let line = log
            .lines()
            .find(|l| l.contains("TLS failure"))
            .unwrap_or_else(|| panic!("{what}: no TLS failure line in\n{log}"));
        assert!(line.contains(cause), "{what}: {line}");
        assert!(!log.contains("secret\n") && !log.contains(SECRET), "{log}");
    }
    assert_eq!(d.count("auth"), 1, "no refused handshake carried a request");
}

/// `url=http://` to a host other than loopback stops xcauthd with exit status 2 and a
/// message naming the file, line and key, unless `allow-insecure-http` is set.
#[test]
fn xcauthd_refuses_plain_http_to_a_remote_host() {
    let s = Scratch::new("tls-plainhttp");
    // 192.0.2.1 (TEST-NET-1) never answers: with the flag the check is "unavailable".
    let conf = s.write(
        "plain.conf",
        "secret=s\nurl=http://192.0.2.1/index.php/apps/ojsxc/ajax/externalApi.php\ntimeout=1,1\n",
    );
    let out = support::xcauthd(&conf)
        .args(["-A", "alice", "example.org", "pw"])
        .output()
        .unwrap();
    assert_eq!(out.status.code(), Some(2));
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(
        err.contains("plain.conf:2") && err.contains("'url'") && err.contains("plain http"),
        "{err}"
    );
    let allowed = s.write(
        "allowed.conf",
        "secret=s\nurl=http://192.0.2.1/index.php/apps/ojsxc/ajax/externalApi.php\ntimeout=1,1\n\
         allow-insecure-http\n",
    );
    let out = support::xcauthd(&allowed)
        .args(["-A", "alice", "example.org", "pw"])
        .output()
        .unwrap();
    assert_eq!(
        out.status.code(),
        Some(3),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
}
