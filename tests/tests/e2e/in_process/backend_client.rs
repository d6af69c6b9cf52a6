//! The signed JSXC client and the decision engine against the HTTP test
//! double: request bytes, every row of the result-mapping table
//! (docs/jsxc-api.md §5), every fault, keep-alive and thread hygiene.

#![allow(clippy::unwrap_used, clippy::expect_used)] // tests: a failed unwrap is a failed test

use std::sync::Arc;
use std::time::{Duration, Instant};

use xcauth_core::backend::jsxc::{ClientOptions, JsxcClient};
use xcauth_core::backend::{Backend, BackendKind, Target};
use xcauth_core::engine::GlobalBackend;
use xcauth_core::vocab::{
    AuthDecision, AuthReply, BackendUrl, Malformed, Misconfigured, RosterReply, Unavailable,
    UserExists, Via,
};
use xcauth_core::{Engine, ManualClock, Password, Secret};
use xcauth_tests::double::{BackendDouble, Fault, User};

const SECRET: &str = "testsecret";

fn double() -> BackendDouble {
    let d = BackendDouble::start(SECRET);
    d.add_user(
        User::new("alice", "secret")
            .display_name("Alice Liddell")
            .app_password("alice", "app-pw-1"),
    );
    d.add_user(User::new("bob@example.org", "bobpw"));
    d.add_user(User::new("Carol", "carolpw"));
    d.add_user(User::new("dave", "davepw").disabled());
    d.add_group("team", "The Team", &["alice", "bob@example.org"]);
    d
}

fn opts(read: u64) -> ClientOptions {
    ClientOptions {
        connect_timeout: Duration::from_secs(2),
        read_timeout: Duration::from_secs(read),
        ..ClientOptions::default()
    }
}

fn client() -> JsxcClient {
    JsxcClient::new(&opts(5)).unwrap()
}

fn target(d: &BackendDouble, domain: &str) -> Target {
    Target {
        kind: BackendKind::Jsxc,
        url: BackendUrl::parse(&d.url()).unwrap(),
        secret: Secret::new(SECRET),
        authdomain: domain.into(),
    }
}

fn accepted(uid: &str) -> AuthReply {
    AuthReply::Accepted {
        uid: Some(uid.to_owned()),
    }
}

fn pw(s: &str) -> Password {
    Password::new(s)
}

#[test]
fn auth_request_bytes_and_signature() {
    let d = double();
    let c = client();
    assert_eq!(
        c.auth(
            &target(&d, "example.org"),
            "alice",
            &pw("p4ss w0rd:+&=/~_.-*")
        ),
        AuthReply::Rejected
    );
    let req = d.last_request().unwrap();
    assert_eq!(req.method, "POST");
    assert_eq!(
        req.body_str(),
        "operation=auth&username=alice&domain=example.org&password=p4ss+w0rd%3A%2B%26%3D%2F~_.-%2A"
    );
    let sig = req.header("X-JSXC-SIGNATURE").unwrap();
    assert_eq!(
        sig,
        xcauth_core::backend::jsxc::signature(&Secret::new(SECRET), &req.body)
    );
    assert!(sig.starts_with("sha1=") && sig.len() == 45);
    assert_eq!(
        req.header("content-type"),
        Some("application/x-www-form-urlencoded")
    );
    assert_eq!(req.header("accept"), Some("*/*"));
}

#[test]
fn auth_outcomes_from_the_real_api_shapes() {
    let d = double();
    let c = client();
    let t = target(&d, "example.org");
    assert_eq!(c.auth(&t, "alice", &pw("secret")), accepted("alice"));
    assert_eq!(c.auth(&t, "alice", &pw("wrong")), AuthReply::Rejected);
    assert_eq!(c.auth(&t, "nobody", &pw("secret")), AuthReply::Rejected);
    // user@domain first: the Nextcloud account "bob@example.org".
    assert_eq!(c.auth(&t, "bob", &pw("bobpw")), accepted("bob@example.org"));
    // case-insensitive UID lookup; the reply names the stored spelling.
    assert_eq!(c.auth(&t, "carol", &pw("carolpw")), accepted("Carol"));
    // app password bound to login name "alice".
    assert_eq!(c.auth(&t, "alice", &pw("app-pw-1")), accepted("alice"));
    // PHP empty(): the password "0" is no password.
    assert_eq!(c.auth(&t, "alice", &pw("0")), AuthReply::Rejected);
    // disabled account with the right password: Nextcloud's 401 is a refusal
    // (xcauth 2 took it as "unreachable" and let the cache vouch for a week).
    assert_eq!(c.auth(&t, "dave", &pw("davepw")), AuthReply::Rejected);
    assert_eq!(c.auth(&t, "dave", &pw("nope")), AuthReply::Rejected);
    assert_eq!(d.count("auth"), 9);
}

#[test]
fn isuser_and_roster() {
    let d = double();
    let c = client();
    let t = target(&d, "example.org");
    assert_eq!(c.isuser(&t, "alice"), UserExists::Yes);
    assert_eq!(c.isuser(&t, "bob"), UserExists::Yes);
    assert_eq!(
        c.isuser(&t, "dave"),
        UserExists::Yes,
        "disabled users still exist"
    );
    assert_eq!(c.isuser(&t, "nobody"), UserExists::No);
    assert_eq!(
        d.last_request().unwrap().body_str(),
        "operation=isuser&username=nobody&domain=example.org"
    );
    let RosterReply::Roster(r) = c.sharedroster(&t, "alice") else {
        panic!("roster expected")
    };
    assert_eq!(r.entries.len(), 2);
    let alice = r.entries.iter().find(|e| e.uid == "alice").unwrap();
    assert_eq!(alice.name.as_deref(), Some("Alice Liddell"));
    assert_eq!(alice.groups, vec!["The Team".to_owned()]);
    assert!(
        r.body
            .starts_with(r#"{"result":"success","data":{"sharedRoster":{"#),
        "{}",
        r.body
    );
    // A user in no group: PHP's empty array.
    let RosterReply::Roster(r) = c.sharedroster(&t, "carol") else {
        panic!("roster expected")
    };
    assert!(r.entries.is_empty());
    assert_eq!(r.body, r#"{"result":"success","data":{"sharedRoster":[]}}"#);
    // Unknown user: 500 "Can't find user".
    assert_eq!(
        c.sharedroster(&t, "nobody"),
        RosterReply::Unavailable(Unavailable::Status(500))
    );
}

/// Every row of the auth mapping table, served byte for byte by the double.
#[test]
fn auth_mapping_table_rows() {
    let d = double();
    let c = client();
    let t = target(&d, "example.org");
    let rows: &[(&str, bool, Option<bool>)] = &[
        // (200 body, unavailable?, accepted?)
        (
            r#"{"result":"success","data":{"uid":"alice"}}"#,
            false,
            Some(true),
        ),
        (r#"{"result":"noauth"}"#, false, Some(false)),
        (r#"{"result":"bar"}"#, false, Some(false)),
        (r#"{"result":"error"}"#, true, None),
        (r#"{"result":""}"#, true, None),
        (r#"{"result":null}"#, true, None),
        (r#"{"result":false}"#, true, None),
        ("{}", true, None),
        ("[]", true, None),
        ("null", true, None),
        ("0", true, None),
        (r#"{"foo":"bar"}"#, true, None),
        (r#"["result"]"#, true, None),
        (r#""result""#, true, None),
    ];
    for (body, unavailable, accepted) in rows {
        d.set_fault(Fault::Json200((*body).to_owned()));
        let got = c.auth(&t, "alice", &pw("secret"));
        match (unavailable, accepted) {
            (true, _) => assert!(matches!(got, AuthReply::Unavailable(_)), "{body}: {got:?}"),
            (false, Some(true)) => {
                assert!(matches!(got, AuthReply::Accepted { .. }), "{body}: {got:?}")
            }
            (false, _) => assert_eq!(got, AuthReply::Rejected, "{body}"),
        }
    }
    d.set_fault(Fault::Garbage);
    assert_eq!(
        c.auth(&t, "alice", &pw("secret")),
        AuthReply::Unavailable(Unavailable::NotJson)
    );
    for status in [400u16, 404, 500, 503] {
        d.set_fault(Fault::Status(status, "<html>nope</html>".into()));
        assert_eq!(
            c.auth(&t, "alice", &pw("secret")),
            AuthReply::Unavailable(Unavailable::Status(status))
        );
    }
    d.set_fault(Fault::WrongSignature);
    assert_eq!(
        c.auth(&t, "alice", &pw("secret")),
        AuthReply::Unavailable(Unavailable::Status(500))
    );
}

#[test]
fn isuser_mapping_rows() {
    let d = double();
    let c = client();
    let t = target(&d, "example.org");
    for (value, want) in [
        ("true", Some(true)),
        ("1", Some(true)),
        (r#""1""#, Some(true)),
        ("false", Some(false)),
        ("0", Some(false)),
        (r#""0""#, Some(false)),
        (r#""""#, Some(false)),
        ("null", Some(false)),
        (r#""yes""#, None),
        ("[]", None),
    ] {
        d.set_fault(Fault::Json200(format!(
            r#"{{"result":"success","data":{{"isUser":{value}}}}}"#
        )));
        let got = c.isuser(&t, "alice");
        match want {
            Some(true) => assert_eq!(got, UserExists::Yes, "{value}"),
            Some(false) => assert_eq!(got, UserExists::No, "{value}"),
            None => assert!(matches!(got, UserExists::Unknown(_)), "{value}: {got:?}"),
        }
    }
    for body in [
        r#"{"result":"success"}"#,
        r#"{"result":"success","data":[]}"#,
        r#"{"result":"error"}"#,
        "[]",
    ] {
        d.set_fault(Fault::Json200(body.to_owned()));
        assert!(
            matches!(c.isuser(&t, "alice"), UserExists::Unknown(_)),
            "{body}"
        );
    }
}

#[test]
fn timeout_is_bounded_by_the_configured_read_timeout() {
    let d = double();
    // Far longer than the timeout: a client that waited for the answer would take 10 s.
    d.set_fault(Fault::Delay(Duration::from_secs(10)));
    let c = JsxcClient::new(&opts(1)).unwrap();
    let start = Instant::now();
    let got = c.auth(&target(&d, "example.org"), "alice", &pw("secret"));
    let took = start.elapsed();
    assert!(
        matches!(got, AuthReply::Unavailable(Unavailable::Timeout(_))),
        "{got:?}"
    );
    assert!(
        took < Duration::from_secs(5),
        "took {took:?} with a 1 s timeout"
    );
    assert!(took >= Duration::from_millis(900), "took {took:?}");
}

#[test]
fn dropped_connection_and_truncated_body_are_unavailable() {
    let d = double();
    let c = client();
    let t = target(&d, "example.org");
    d.set_fault(Fault::Drop);
    assert!(matches!(
        c.auth(&t, "alice", &pw("secret")),
        AuthReply::Unavailable(Unavailable::Transport(_))
    ));
    d.set_fault(Fault::CloseAfterHeaders);
    assert!(matches!(
        c.auth(&t, "alice", &pw("secret")),
        AuthReply::Unavailable(_)
    ));
    d.set_fault(Fault::None);
    assert_eq!(
        c.auth(&t, "alice", &pw("secret")),
        accepted("alice"),
        "recovers"
    );
}

#[test]
fn redirects_are_not_followed() {
    let d = double();
    let c = client();
    d.set_fault(Fault::Redirect(d.url()));
    d.reset_counters();
    let got = c.auth(&target(&d, "example.org"), "alice", &pw("secret"));
    assert_eq!(got, AuthReply::Unavailable(Unavailable::Status(302)));
    assert_eq!(d.total(), 1, "the Location was not requested");
}

#[test]
fn connection_refused_and_tls_failure_are_unavailable() {
    // A port reserved for this test and bound by nobody: refused, whatever else runs.
    let lease = xcauth_tests::machine::reserve_port();
    let port = lease.port();
    let c = client();
    let t = Target {
        kind: BackendKind::Jsxc,
        url: BackendUrl::parse(&format!("http://127.0.0.1:{port}/x")).unwrap(),
        secret: Secret::new(SECRET),
        authdomain: "e".into(),
    };
    assert!(matches!(
        c.auth(&t, "a", &pw("b")),
        AuthReply::Unavailable(Unavailable::Connect(_))
    ));
    // https:// against a server that answers the ClientHello in plain text
    // (a plain-HTTP port): the TLS handshake fails.
    let plain = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    let addr = plain.local_addr().unwrap();
    std::thread::spawn(move || {
        use std::io::{Read, Write};
        if let Ok((mut s, _)) = plain.accept() {
            let mut buf = [0u8; 512];
            let _ = s.read(&mut buf);
            let _ = s.write_all(b"HTTP/1.1 400 Bad Request\r\nContent-Length: 0\r\n\r\n");
        }
    });
    let t = Target {
        kind: BackendKind::Jsxc,
        url: BackendUrl::parse(&format!("https://{addr}/x")).unwrap(),
        secret: Secret::new(SECRET),
        authdomain: "e".into(),
    };
    let got = c.auth(&t, "alice", &pw("secret"));
    assert!(
        matches!(got, AuthReply::Unavailable(Unavailable::Tls(_))),
        "{got:?}"
    );
}

#[test]
fn a_long_lived_client_reuses_its_connection() {
    let d = double();
    let c = client();
    let t = target(&d, "example.org");
    for _ in 0..5 {
        assert_eq!(c.auth(&t, "alice", &pw("secret")), accepted("alice"));
    }
    assert_eq!(d.connections(), 1, "keep-alive");
}

fn thread_count() -> usize {
    std::fs::read_dir("/proc/self/task").unwrap().count()
}

#[test]
fn no_thread_survives_a_dropped_client() {
    // Other tests run concurrently in this process: measure in a child process.
    if !xcauth_tests::support::in_own_process(concat!(
        module_path!(),
        "::no_thread_survives_a_dropped_client"
    )) {
        return;
    }
    let d = double();
    let before = thread_count();
    {
        let c = client();
        assert_eq!(
            c.auth(&target(&d, "example.org"), "alice", &pw("secret")),
            accepted("alice")
        );
        assert!(
            thread_count() > before,
            "reqwest's runtime thread runs while the client lives"
        );
    }
    let deadline = Instant::now() + Duration::from_secs(2);
    while thread_count() > before && Instant::now() < deadline {
        std::thread::sleep(Duration::from_millis(10));
    }
    assert_eq!(
        thread_count(),
        before,
        "no thread left after the client is dropped"
    );
}

#[test]
fn circuit_breaker_skips_calls_then_probes() {
    let d = double();
    d.set_fault(Fault::Drop);
    // The cool-down runs on the client's clock, moved by hand: no real time passes, so a busy
    // machine cannot end it early or late.
    let clock = Arc::new(ManualClock::at(1_700_000_000));
    let cooldown = Duration::from_secs(30);
    let c = JsxcClient::new(&ClientOptions {
        breaker_failures: 2,
        breaker_cooldown: cooldown,
        clock: clock.clone(),
        ..opts(2)
    })
    .unwrap();
    let t = target(&d, "example.org");
    for _ in 0..2 {
        assert!(matches!(
            c.auth(&t, "alice", &pw("secret")),
            AuthReply::Unavailable(Unavailable::Transport(_))
        ));
    }
    let calls = d.total();
    assert_eq!(
        c.auth(&t, "alice", &pw("secret")),
        AuthReply::Unavailable(Unavailable::CircuitOpen)
    );
    assert_eq!(d.total(), calls, "no request while open");
    d.set_fault(Fault::None);
    // Still open a moment before the cool-down ends, even with the backend back.
    clock.advance_by(cooldown - Duration::from_millis(1));
    assert_eq!(
        c.auth(&t, "alice", &pw("secret")),
        AuthReply::Unavailable(Unavailable::CircuitOpen)
    );
    assert_eq!(d.total(), calls, "no request while open");
    // Once it has ended, one probe goes through, and the closed breaker lets the next pass.
    clock.advance_by(Duration::from_millis(1));
    assert_eq!(
        c.auth(&t, "alice", &pw("secret")),
        accepted("alice"),
        "probe after cool-down"
    );
    assert_eq!(d.total(), calls + 1, "one probe");
    assert_eq!(c.auth(&t, "alice", &pw("secret")), accepted("alice"));
    assert_eq!(d.total(), calls + 2);
}

fn engine(d: &BackendDouble, clock: Arc<ManualClock>) -> Engine {
    Engine::new(
        GlobalBackend {
            url: BackendUrl::parse(&d.url()).unwrap(),
            secret: Secret::new(SECRET),
        },
        Arc::new(client()),
        clock,
    )
}

#[test]
fn engine_without_cache_token_then_backend() {
    let d = double();
    let clock = Arc::new(ManualClock::at(1_000_000));
    let e = engine(&d, clock.clone());
    let token =
        xcauth_core::token::generate("alice", "example.org", &Secret::new(SECRET), 1_000_060);
    assert_eq!(
        e.auth("alice", "example.org", &pw(&token)),
        AuthDecision::Accepted(Via::Token)
    );
    assert_eq!(d.count("auth"), 0, "a token never reaches the backend");
    clock.set(1_000_061);
    // Expired: falls through to the backend, which rejects it as a password.
    assert_eq!(
        e.auth("alice", "example.org", &pw(&token)),
        AuthDecision::Rejected
    );
    assert_eq!(d.count("auth"), 1);
    assert_eq!(
        e.auth("alice", "example.org", &pw("secret")),
        AuthDecision::Accepted(Via::Backend)
    );
    d.set_fault(Fault::Drop);
    assert!(matches!(
        e.auth("alice", "example.org", &pw("secret")),
        AuthDecision::Unavailable(_)
    ));
    assert!(matches!(
        e.isuser("alice", "example.org"),
        UserExists::Unknown(_)
    ));
    d.set_fault(Fault::None);
    assert_eq!(e.isuser("alice", "example.org"), UserExists::Yes);
    assert_eq!(
        e.groups_of_account("alice", "example.org").unwrap(),
        vec!["The Team".to_owned()]
    );
    assert_eq!(
        e.groups_of_account("bob@example.org", "example.org")
            .unwrap(),
        vec!["The Team".to_owned()]
    );
    assert_eq!(
        e.groups_of_account("Carol", "example.org").unwrap(),
        Vec::<String>::new()
    );
    // Only the exact account counts: "bob" is not the account "bob@example.org".
    assert!(e.groups_of_account("bob", "example.org").is_err());
}

/// The login name must spell the account the password belongs to: exactly for mail and PAM,
/// ignoring case for XMPP (where the server has case-folded the name already).
#[test]
fn engine_refuses_a_name_that_does_not_spell_the_account() {
    use xcauth_core::vocab::{LoginRules, NameMatch};
    let d = double();
    let e = engine(&d, Arc::new(ManualClock::at(1_000_000)));
    let exact = LoginRules::default();
    let fold = LoginRules {
        names: NameMatch::IgnoreCase,
        need_uid: false,
        remote: None,
    };
    let login = |u: &str, p: &str, r| e.login(u, "example.org", &pw(p), r);
    assert_eq!(
        login("carol", "carolpw", exact).decision,
        AuthDecision::Rejected
    );
    let l = login("Carol", "carolpw", exact);
    assert_eq!(l.decision, AuthDecision::Accepted(Via::Backend));
    assert_eq!(l.uid.as_deref(), Some("Carol"));
    let l = login("carol", "carolpw", fold);
    assert_eq!(l.decision, AuthDecision::Accepted(Via::Backend));
    assert_eq!(l.uid.as_deref(), Some("Carol"));
    assert_eq!(
        login("ALICE", "secret", exact).decision,
        AuthDecision::Rejected
    );
    // "bob" in example.org logs in as the account bob@example.org: the same name.
    let l = login("bob", "bobpw", exact);
    assert_eq!(l.uid.as_deref(), Some("bob@example.org"));
    assert!(l.decision.is_accepted());
    // Other domains are served unless served-domains says otherwise.
    assert!(e
        .login("alice", "other.example", &pw("secret"), exact)
        .decision
        .is_accepted());
    let e = engine(&d, Arc::new(ManualClock::at(1_000_000)))
        .with_served_domains(Some(vec!["example.org".into()]));
    let calls = d.count("auth");
    assert_eq!(
        e.auth("alice", "other.example", &pw("secret")),
        AuthDecision::Rejected
    );
    assert_eq!(
        e.auth("alice", "example.org.", &pw("secret")),
        AuthDecision::Rejected
    );
    assert_eq!(e.isuser("alice", "other.example"), UserExists::No);
    assert_eq!(d.count("auth"), calls, "a domain not served is never asked");
    assert!(e.auth("alice", "EXAMPLE.ORG", &pw("secret")).is_accepted());
}

/// A body over the 16 MiB limit whose prefix is `{"result":"success"}` + spaces (valid JSON
/// when cut) must never be parsed: unavailable, with or without `Content-Length`.
#[test]
fn oversize_body_is_unavailable_not_parsed() {
    let d = double();
    let c = client();
    let t = target(&d, "example.org");
    let limit = 16 * 1024 * 1024;
    for with_length in [true, false] {
        d.set_fault(Fault::HugeBody {
            len: limit + 1024,
            with_length,
        });
        let got = c.auth(&t, "alice", &pw("wrong"));
        assert_eq!(
            got,
            AuthReply::Unavailable(Unavailable::Malformed(Malformed::TooLarge {
                limit_mib: 16
            })),
            "with_length={with_length}"
        );
    }
    // Exactly at the limit is still read and parsed.
    d.set_fault(Fault::HugeBody {
        len: limit,
        with_length: false,
    });
    assert_eq!(
        c.auth(&t, "alice", &pw("wrong")),
        AuthReply::Accepted { uid: None }
    );
}

/// Apache closes idle keep-alive connections (KeepAliveTimeout); the next login must not
/// fail because of it.
#[test]
fn idle_keepalive_close_does_not_fail_the_next_login() {
    let d = double();
    d.set_keepalive_timeout(Some(Duration::from_millis(200)));
    let c = client();
    let t = target(&d, "example.org");
    assert_eq!(c.auth(&t, "alice", &pw("secret")), accepted("alice"));
    // Wait until the double has closed the idle connection (not for a fixed time).
    let deadline = Instant::now() + Duration::from_secs(10);
    while d.open_connections() > 0 {
        assert!(Instant::now() < deadline, "the idle connection stayed open");
        std::thread::sleep(Duration::from_millis(20));
    }
    assert_eq!(c.auth(&t, "alice", &pw("secret")), accepted("alice"));
    assert_eq!(d.count("auth"), 2);
    assert_eq!(d.connections(), 2, "the idle connection was closed");
}

/// The race: the server closes a reused connection as the next request arrives, reading it
/// or not. Exactly one retry, on a new connection, and the login succeeds.
#[test]
fn close_on_reuse_race_is_retried_exactly_once() {
    for fault in [Fault::DropIfReused, Fault::ResetIfReused] {
        let d = double();
        let c = client();
        let t = target(&d, "example.org");
        // Set before the first login: it spares the first request of a new connection.
        d.set_fault(fault.clone());
        assert_eq!(c.auth(&t, "alice", &pw("secret")), accepted("alice"));
        assert_eq!(
            c.auth(&t, "alice", &pw("secret")),
            accepted("alice"),
            "{fault:?}"
        );
        let answered_on_retry = d.last_request().unwrap();
        match fault {
            // The dropped request was read: 1 + dropped + retry.
            Fault::DropIfReused => assert_eq!(d.count("auth"), 3, "{fault:?}"),
            // The dropped request was not read: 1 + retry.
            _ => {
                assert_eq!(d.reuse_drops(), 1);
                assert_eq!(d.count("auth"), 2, "{fault:?}");
            }
        }
        assert_eq!(
            d.connections(),
            2,
            "{fault:?}: one new connection for the retry"
        );
        assert_eq!(answered_on_retry.connection, 2);
    }
}

/// No retry when the connection was new, after a response started, or on a timeout.
#[test]
fn no_retry_outside_the_reused_connection_race() {
    // A new connection closed without an answer: one request only.
    let d = double();
    d.set_fault(Fault::Drop);
    let c = client();
    let t = target(&d, "example.org");
    assert!(matches!(
        c.auth(&t, "alice", &pw("secret")),
        AuthReply::Unavailable(Unavailable::Transport(_))
    ));
    assert_eq!(d.count("auth"), 1, "no retry on a new connection");

    // A reused connection that breaks after the response head: no retry.
    let d = double();
    let c = client();
    let t = target(&d, "example.org");
    assert_eq!(c.auth(&t, "alice", &pw("secret")), accepted("alice"));
    d.set_fault(Fault::CloseAfterHeaders);
    assert!(matches!(
        c.auth(&t, "alice", &pw("secret")),
        AuthReply::Unavailable(_)
    ));
    assert_eq!(d.count("auth"), 2, "no retry after a response started");

    // A timeout on a reused connection: no retry.
    let d = double();
    let c = JsxcClient::new(&opts(1)).unwrap();
    let t = target(&d, "example.org");
    assert_eq!(c.auth(&t, "alice", &pw("secret")), accepted("alice"));
    d.set_fault(Fault::Delay(Duration::from_secs(3)));
    assert!(matches!(
        c.auth(&t, "alice", &pw("secret")),
        AuthReply::Unavailable(Unavailable::Timeout(_))
    ));
    assert_eq!(d.count("auth"), 2, "a timeout is never retried");
}

/// A plain-http per-domain URL to a non-loopback host is refused at lookup unless
/// allow-insecure-http; the engine never sends the password there.
#[test]
fn per_domain_plain_http_to_a_remote_host_is_misconfigured() {
    use xcauth_core::domains::{DomainRow, Domains};
    #[derive(Debug)]
    struct Row(String);
    impl Domains for Row {
        fn lookup(&self, _d: &str) -> Result<Option<DomainRow>, String> {
            Ok(Some(DomainRow {
                secret: Some(Secret::new(SECRET)),
                url: Some(BackendUrl::parse(&self.0)),
                authdomain: None,
            }))
        }
    }
    let d = double();
    let clock = Arc::new(ManualClock::at(1_000_000));
    // 192.0.2.1 (TEST-NET-1) would never answer; the refusal comes before any connect.
    let e = engine(&d, clock.clone()).with_domains(Arc::new(Row("http://192.0.2.1/x".into())));
    assert!(matches!(
        e.target("example.org"),
        Err(Unavailable::Misconfigured(
            Misconfigured::InsecureUrl { .. }
        ))
    ));
    let e = engine(&d, clock.clone()).with_domains(Arc::new(Row(d.url())));
    assert_eq!(
        e.auth("alice", "example.org", &pw("secret")),
        AuthDecision::Accepted(Via::Backend),
        "loopback http stays allowed"
    );
    let e = engine(&d, clock)
        .with_domains(Arc::new(Row("http://192.0.2.1/x".into())))
        .with_insecure_http(true);
    assert!(e.target("example.org").is_ok());
}
