//! No password, token or API secret reaches a log line or a `Debug` string of
//! the core, on any decision path, at any level (including DEBUG). The test installs the
//! global logger, so it runs alone in a child process.

#![allow(clippy::unwrap_used, clippy::expect_used)] // tests: a failed unwrap is a failed test

use std::path::Path;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use xcauth_core::backend::jsxc::{ClientOptions, JsxcClient};
use xcauth_core::config::{Config, Origin, RawConfig, RawValue};
use xcauth_core::engine::GlobalBackend;
use xcauth_core::vocab::BackendUrl;
use xcauth_core::{Engine, ManualClock, Password, Secret};
use xcauth_tests::double::{BackendDouble, Fault, User};

const SECRET: &str = "Api-Secret-MARKER-7f3a";
const PASSWORD: &str = "Pass-MARKER-91bc:with:colons";

struct Capture(Mutex<Vec<String>>);

impl log::Log for Capture {
    fn enabled(&self, _: &log::Metadata<'_>) -> bool {
        true
    }
    fn log(&self, record: &log::Record<'_>) {
        self.0
            .lock()
            .unwrap()
            .push(format!("{} {}", record.level(), record.args()));
    }
    fn flush(&self) {}
}

static CAPTURE: Capture = Capture(Mutex::new(Vec::new()));

fn assert_clean(what: &str, text: &str, token: &str) {
    for needle in [SECRET, "MARKER", token] {
        assert!(!text.contains(needle), "{what} leaks {needle:?}: {text}");
    }
}

#[test]
fn no_secret_in_logs_or_debug_on_any_path() {
    // The logger is the process's: alone in a child process, the lines are all this test's.
    if !xcauth_tests::support::in_own_process(concat!(
        module_path!(),
        "::no_secret_in_logs_or_debug_on_any_path"
    )) {
        return;
    }
    log::set_logger(&CAPTURE).unwrap();
    log::set_max_level(log::LevelFilter::Trace);

    let d = BackendDouble::start(SECRET);
    d.add_user(User::new("alice", PASSWORD));
    let client = JsxcClient::new(&ClientOptions {
        read_timeout: Duration::from_secs(1),
        breaker_failures: 2,
        ..ClientOptions::default()
    })
    .unwrap();
    let clock = Arc::new(ManualClock::at(1_000));
    let e = Engine::new(
        GlobalBackend {
            url: BackendUrl::parse(&d.url()).unwrap(),
            secret: Secret::new(SECRET),
        },
        Arc::new(client),
        clock.clone(),
    );
    let token = xcauth_core::token::generate("alice", "example.org", &Secret::new(SECRET), 2_000);
    let wrong_token =
        xcauth_core::token::generate("mallory", "example.org", &Secret::new(SECRET), 2_000);

    let mut debug = Vec::new();
    for pw in [
        PASSWORD,
        "wrong-MARKER",
        token.as_str(),
        wrong_token.as_str(),
    ] {
        debug.push(format!(
            "{:?}",
            e.auth("alice", "example.org", &Password::new(pw))
        ));
    }
    clock.set(3_000); // expired token
    debug.push(format!(
        "{:?}",
        e.auth("alice", "example.org", &Password::new(&token))
    ));
    for fault in [
        Fault::Garbage,
        Fault::Drop,
        Fault::Status(500, "x".into()),
        Fault::WrongSignature,
    ] {
        d.set_fault(fault);
        debug.push(format!(
            "{:?}",
            e.auth("alice", "example.org", &Password::new(PASSWORD))
        ));
        debug.push(format!("{:?}", e.isuser("alice", "example.org")));
    }
    debug.push(format!("{e:?}"));
    debug.push(format!("{:?}", e.target("example.org")));

    // Configuration in both layers.
    let raw = RawConfig::parse_str(
        &format!("url=http://127.0.0.1:1/x\nsecret={SECRET}\n"),
        Path::new("/etc/xcauth.conf"),
    )
    .unwrap();
    let mut cli = RawConfig::new();
    cli.set(
        "auth-test",
        RawValue::Many(vec!["alice".into(), "example.org".into(), PASSWORD.into()]),
        Origin::CommandLine,
    );
    let config = Config::resolve(&[RawConfig::defaults(), raw.clone(), cli.clone()]).unwrap();
    debug.push(format!("{raw:?} {cli:?} {config:?} {config:#?}"));

    for (i, text) in debug.iter().enumerate() {
        assert_clean(&format!("debug #{i}"), text, &token);
    }
    let lines = CAPTURE.0.lock().unwrap().clone();
    assert!(lines.len() >= 10, "the paths above do log: {lines:?}");
    assert!(
        lines.iter().any(|l| l.contains("invalid signature")),
        "{lines:?}"
    );
    assert!(lines
        .iter()
        .any(|l| l.contains("auth alice@example.org: accepted via token")));
    for line in &lines {
        assert_clean("log line", line, &token);
    }
}
