//! The decision flow against a scripted PAM handle and oracle.

use std::cell::RefCell;
use std::collections::VecDeque;

use super::*;
use crate::logging::SyslogSink;
use xcauth_core::vocab::ErrorChain;

/// A scripted PAM handle: answers from fixed values, records log lines and the marker.
struct FakeHandle {
    user: Result<String, ItemError>,
    authtok: RefCell<VecDeque<Result<Password, ItemError>>>,
    /// Stored encoded, as libpam keeps it.
    marker: RefCell<Option<Vec<u8>>>,
    lines: RefCell<Vec<(Level, String)>>,
}

impl FakeHandle {
    fn new(user: &str, password: Option<&str>) -> Self {
        Self {
            user: Ok(user.to_owned()),
            authtok: RefCell::new(password.map(|p| Ok(Password::new(p))).into_iter().collect()),
            marker: RefCell::new(None),
            lines: RefCell::new(Vec::new()),
        }
    }
}

impl Drop for FakeHandle {
    fn drop(&mut self) {
        if !std::thread::panicking() {
            assert!(
                self.authtok.borrow().is_empty(),
                "scripted password was not asked for"
            );
        }
    }
}

impl SyslogSink for FakeHandle {
    fn pam_syslog(&self, level: Level, msg: &str) {
        self.lines.borrow_mut().push((level, msg.to_owned()));
    }
}

impl Handle for FakeHandle {
    fn service(&self) -> Option<String> {
        Some("test".into())
    }
    fn rhost(&self) -> Option<String> {
        Some("192.0.2.7".into())
    }
    fn user(&self) -> Result<String, ItemError> {
        self.user.clone()
    }
    fn authtok(&self) -> Result<Password, ItemError> {
        self.authtok
            .borrow_mut()
            .pop_front()
            .expect("unexpected password request")
    }
    fn set_marker(&self, marker: &Marker) -> Result<(), PamError> {
        *self.marker.borrow_mut() = Some(marker.encode());
        Ok(())
    }
    fn marker(&self) -> Option<Marker> {
        Marker::decode(self.marker.borrow().as_deref()?)
    }
}

/// alice@example.org / secret, in "Team"; bob / bob-pw, in no group; domain "down.org" is
/// unreachable.
#[derive(Default)]
struct FakeOracle {
    calls: Vec<String>,
    need_uid: Vec<bool>,
    isuser_fails: bool,
}

impl Oracle for FakeOracle {
    fn describe(&self) -> String {
        "fake".into()
    }
    fn auth(
        &mut self,
        user: &str,
        domain: &str,
        password: &Password,
        need_uid: bool,
        _rhost: Option<&str>,
    ) -> Login {
        self.calls.push(format!("auth {user}@{domain}"));
        self.need_uid.push(need_uid);
        if domain == "down.org" {
            Login {
                decision: AuthDecision::Unavailable(Unavailable::Connect(ErrorChain::new(
                    "refused",
                ))),
                uid: None,
            }
        } else if (user == "alice" && password.expose() == "secret")
            || (user == "bob" && password.expose() == "bob-pw")
        {
            Login {
                decision: AuthDecision::Accepted(Via::Backend),
                uid: Some(user.to_owned()),
            }
        } else {
            Login {
                decision: AuthDecision::Rejected,
                uid: None,
            }
        }
    }
    fn isuser(&mut self, user: &str, domain: &str) -> UserExists {
        self.calls.push(format!("isuser {user}@{domain}"));
        if self.isuser_fails || domain == "down.org" {
            UserExists::Unknown(Unavailable::Status(502))
        } else if user == "alice" || user == "bob" {
            UserExists::Yes
        } else {
            UserExists::No
        }
    }
    fn groups(&mut self, uid: &str, domain: &str) -> Result<Vec<String>, Unavailable> {
        self.calls.push(format!("groups {uid}@{domain}"));
        Ok(if uid == "alice" {
            vec!["Team".into()]
        } else {
            vec![]
        })
    }
}

fn run_auth(h: &FakeHandle, opts: &Options, oracle: FakeOracle) -> (Outcome, Vec<String>) {
    let log = Logger::new(h, "test", "auth", None);
    let mut ctx = Ctx::default();
    let mut calls = Vec::new();
    let outcome = authenticate(
        h,
        PamFlags::empty(),
        opts,
        |_| Ok::<_, String>(Recorder(oracle, &mut calls)),
        &log,
        &mut ctx,
    );
    report(&log, &ctx, &outcome, false);
    (outcome, calls)
}

/// Moves the fake's call log out when dropped, so tests can inspect it.
struct Recorder<'a>(FakeOracle, &'a mut Vec<String>);

impl Drop for Recorder<'_> {
    fn drop(&mut self) {
        *self.1 = std::mem::take(&mut self.0.calls);
    }
}

impl Oracle for Recorder<'_> {
    fn describe(&self) -> String {
        self.0.describe()
    }
    fn auth(&mut self, u: &str, d: &str, p: &Password, need_uid: bool, r: Option<&str>) -> Login {
        self.0.auth(u, d, p, need_uid, r)
    }
    fn isuser(&mut self, u: &str, d: &str) -> UserExists {
        self.0.isuser(u, d)
    }
    fn groups(&mut self, u: &str, d: &str) -> Result<Vec<String>, Unavailable> {
        self.0.groups(u, d)
    }
}

#[test]
fn every_auth_outcome_maps_to_its_code() {
    let opts = Options::default();
    let cases = [
        ("alice@example.org", Some("secret"), PamError::SUCCESS),
        ("alice@Example.ORG", Some("secret"), PamError::SUCCESS),
        ("alice@example.org", Some("wrong"), PamError::AUTH_ERR),
        ("carol@example.org", Some("x"), PamError::USER_UNKNOWN),
        ("alice@down.org", Some("secret"), PamError::AUTHINFO_UNAVAIL),
        ("alice", None, PamError::USER_UNKNOWN),
        ("@example.org", None, PamError::USER_UNKNOWN),
        ("alice@", None, PamError::USER_UNKNOWN),
        ("alice@example.org", Some(""), PamError::CRED_INSUFFICIENT),
    ];
    for (user, pw, code) in cases {
        let h = FakeHandle::new(user, pw);
        let (outcome, _) = run_auth(&h, &opts, FakeOracle::default());
        assert_eq!(pam_code(&outcome), code, "{user}: {outcome:?}");
    }
}

#[test]
fn rejection_asks_isuser_and_unknown_existence_is_a_bad_password() {
    let h = FakeHandle::new("alice@example.org", Some("wrong"));
    let (outcome, calls) = run_auth(
        &h,
        &Options::default(),
        FakeOracle {
            isuser_fails: true,
            ..FakeOracle::default()
        },
    );
    assert_eq!(pam_code(&outcome), PamError::AUTH_ERR);
    assert_eq!(
        calls,
        ["auth alice@example.org", "isuser alice@example.org"]
    );
}

#[test]
fn the_last_at_splits_and_domain_option_completes_bare_names() {
    assert_eq!(
        split_user("a@b@c.org", &[]),
        Ok(("a@b", "c.org".to_owned()))
    );
    assert_eq!(
        split_user("alice", &["example.org".to_owned()]),
        Ok(("alice", "example.org".into()))
    );
    assert_eq!(
        split_user("alice@x.org", &[]),
        Ok(("alice", "x.org".into()))
    );
    let listed = ["example.org".to_owned(), "example.com".to_owned()];
    assert_eq!(
        split_user("alice@EXAMPLE.com", &listed),
        Ok(("alice", "example.com".into()))
    );
    for other in [
        "alice@x.org",
        "alice@example.org.",
        "alice@example.org.x.org",
    ] {
        assert!(split_user(other, &listed).is_err(), "{other}");
        assert_eq!(
            pam_code(&split_user(other, &listed).unwrap_err()),
            PamError::USER_UNKNOWN
        );
    }
    assert_eq!(
        split_user("alice@example.org.", &[]),
        Err(Outcome::InvalidUser("domain ends with a dot"))
    );
    assert_eq!(split_user("alice", &[]), Err(Outcome::NoDomain));
    let opts = Options {
        domains: vec!["example.org".into()],
        ..Options::default()
    };
    let h = FakeHandle::new("alice", Some("secret"));
    let (outcome, calls) = run_auth(&h, &opts, FakeOracle::default());
    assert_eq!(outcome, Outcome::Accepted(Via::Backend));
    assert_eq!(calls, ["auth alice@example.org"]);
}

#[test]
fn groups_restrict_and_are_only_asked_after_success() {
    let opts = Options {
        groups: vec!["Admins".into(), "Team".into()],
        ..Options::default()
    };
    let h = FakeHandle::new("alice@example.org", Some("secret"));
    let (outcome, calls) = run_auth(&h, &opts, FakeOracle::default());
    assert_eq!(outcome, Outcome::Accepted(Via::Backend));
    assert_eq!(
        calls,
        ["auth alice@example.org", "groups alice@example.org"]
    );

    let opts = Options {
        groups: vec!["Admins".into()],
        ..Options::default()
    };
    let h = FakeHandle::new("alice@example.org", Some("secret"));
    let (outcome, _) = run_auth(&h, &opts, FakeOracle::default());
    assert_eq!(pam_code(&outcome), PamError::PERM_DENIED);

    let h = FakeHandle::new("alice@example.org", Some("wrong"));
    let (_, calls) = run_auth(&h, &opts, FakeOracle::default());
    assert!(!calls.iter().any(|c| c.starts_with("groups")));
}

#[test]
fn no_user_no_password_and_config_errors() {
    let mut h = FakeHandle::new("x", None);
    h.user = Err(ItemError::Pam(PamError::CONV_ERR));
    let (outcome, _) = run_auth(&h, &Options::default(), FakeOracle::default());
    assert_eq!(pam_code(&outcome), PamError::CONV_ERR);

    let h = FakeHandle::new("alice@example.org", None);
    h.authtok
        .borrow_mut()
        .push_back(Err(ItemError::Pam(PamError::AUTH_ERR)));
    let (outcome, calls) = run_auth(&h, &Options::default(), FakeOracle::default());
    assert_eq!(pam_code(&outcome), PamError::AUTH_ERR);
    assert!(calls.is_empty());

    let h = FakeHandle::new("alice@example.org", None);
    h.authtok
        .borrow_mut()
        .push_back(Err(ItemError::Pam(PamError::AUTHTOK_ERR)));
    let (outcome, _) = run_auth(&h, &Options::default(), FakeOracle::default());
    assert_eq!(pam_code(&outcome), PamError::CRED_INSUFFICIENT);

    let h = FakeHandle::new("alice@example.org", None);
    let log = Logger::new(&h, "test", "auth", None);
    let outcome = authenticate(
        &h,
        PamFlags::empty(),
        &Options::default(),
        |_| Err::<FakeOracle, _>("cannot open config file /x: not found".to_owned()),
        &log,
        &mut Ctx::default(),
    );
    assert_eq!(pam_code(&outcome), PamError::SERVICE_ERR);

    let h = FakeHandle::new("alice@example.org", Some(""));
    let log = Logger::new(&h, "test", "auth", None);
    let outcome = authenticate(
        &h,
        PamFlags::DISALLOW_NULL_AUTHTOK,
        &Options::default(),
        |_| Ok(FakeOracle::default()),
        &log,
        &mut Ctx::default(),
    );
    assert_eq!(pam_code(&outcome), PamError::AUTH_ERR);
}

#[test]
fn account_without_our_marker_is_ignored_without_a_backend_call() {
    for name in ["alice@example.org", "localuser", "carol@example.org"] {
        let h = FakeHandle::new(name, None);
        let log = Logger::new(&h, "test", "account", None);
        let mut calls = Vec::new();
        let outcome = account(
            &h,
            &groups(&["Team"]),
            |_| Ok::<_, String>(Recorder(FakeOracle::default(), &mut calls)),
            &log,
            &mut Ctx::default(),
        );
        assert_eq!(outcome, Outcome::NotOurs, "{name}");
        assert_eq!(pam_code(&outcome), PamError::IGNORE);
        assert!(calls.is_empty(), "{name}: {calls:?}");
    }
}

#[test]
fn account_uses_the_marker_then_isuser_with_account_check() {
    let opts = Options {
        account_check: true,
        ..Options::default()
    };
    let run = |h: &FakeHandle, oracle: FakeOracle| {
        let log = Logger::new(h, "test", "account", None);
        account(
            h,
            &opts,
            |_| Ok::<_, String>(oracle),
            &log,
            &mut Ctx::default(),
        )
    };
    let h = FakeHandle::new("alice@example.org", None);
    h.set_marker(&marker("alice@example.org", &[])).unwrap();
    assert_eq!(
        run(&h, FakeOracle::default()),
        Outcome::AccountAuthenticated
    );
    // A marker for someone else does not count, nor does a cleared one.
    h.set_marker(&marker("bob@example.org", &[])).unwrap();
    assert_eq!(run(&h, FakeOracle::default()), Outcome::AccountExists);
    h.set_marker(&Marker::default()).unwrap();
    assert_eq!(run(&h, FakeOracle::default()), Outcome::AccountExists);
    let h = FakeHandle::new("carol@example.org", None);
    assert_eq!(
        pam_code(&run(&h, FakeOracle::default())),
        PamError::USER_UNKNOWN
    );
    let h = FakeHandle::new("alice@down.org", None);
    assert_eq!(
        pam_code(&run(&h, FakeOracle::default())),
        PamError::AUTHINFO_UNAVAIL
    );
    let h = FakeHandle::new("localuser", None);
    assert_eq!(
        pam_code(&run(&h, FakeOracle::default())),
        PamError::USER_UNKNOWN
    );
}

fn marker(name: &str, groups: &[&str]) -> Marker {
    let (user, domain) = split_user(name, &["example.org".to_owned()]).unwrap();
    Marker {
        name: name.to_owned(),
        user: user.to_owned(),
        domain,
        uid: user.to_owned(),
        groups: groups.iter().map(|g| (*g).to_owned()).collect(),
    }
}

fn groups(names: &[&str]) -> Options {
    Options {
        groups: names.iter().map(|g| (*g).to_owned()).collect(),
        ..Options::default()
    }
}

/// authenticate with `auth_opts` (recording the marker as `dispatch` does), then account
/// with `acct_opts`: the account outcome and the oracle calls account made.
fn auth_then_account(
    name: &str,
    password: &str,
    auth_opts: &Options,
    acct_opts: &Options,
) -> (Outcome, Vec<String>) {
    let h = FakeHandle::new(name, Some(password));
    let log = Logger::new(&h, "test", "auth", None);
    let mut ctx = Ctx::default();
    let outcome = authenticate(
        &h,
        PamFlags::empty(),
        auth_opts,
        |_| Ok::<_, String>(FakeOracle::default()),
        &log,
        &mut ctx,
    );
    assert_eq!(outcome, Outcome::Accepted(Via::Backend), "{name}");
    h.set_marker(ctx.verified.as_ref().unwrap()).unwrap();
    let log = Logger::new(&h, "test", "account", None);
    let mut calls = Vec::new();
    let outcome = account(
        &h,
        acct_opts,
        |_| Ok::<_, String>(Recorder(FakeOracle::default(), &mut calls)),
        &log,
        &mut Ctx::default(),
    );
    (outcome, calls)
}

/// The review finding: `auth … pam_xcauth.so` without group= and `account required
/// pam_xcauth.so group=…` must not let every authenticated user in.
#[test]
fn account_group_is_checked_even_after_our_authentication() {
    let none = Options::default();
    let team = groups(&["Team"]);
    // bob is in no group: authenticated, but refused by the account line.
    let (outcome, calls) = auth_then_account("bob@example.org", "bob-pw", &none, &team);
    assert_eq!(outcome, Outcome::NotInGroup);
    assert_eq!(pam_code(&outcome), PamError::PERM_DENIED);
    assert_eq!(calls, ["groups bob@example.org"], "no isuser needed");
    // alice is in Team.
    let (outcome, calls) = auth_then_account("alice@example.org", "secret", &none, &team);
    assert_eq!(outcome, Outcome::AccountAuthenticated);
    assert_eq!(calls, ["groups alice@example.org"]);
    // The auth line verified Team; an account line for Admins must still check.
    let (outcome, calls) =
        auth_then_account("alice@example.org", "secret", &team, &groups(&["Admins"]));
    assert_eq!(outcome, Outcome::NotInGroup);
    assert_eq!(calls, ["groups alice@example.org"]);
    // The auth line verified Team and the account line accepts Team (among others): no
    // second backend call.
    let (outcome, calls) = auth_then_account(
        "alice@example.org",
        "secret",
        &team,
        &groups(&["Admins", "Team"]),
    );
    assert_eq!(outcome, Outcome::AccountAuthenticated);
    assert!(calls.is_empty(), "{calls:?}");
    // Without group= on the account line the marker alone suffices.
    let (outcome, calls) = auth_then_account("bob@example.org", "bob-pw", &none, &none);
    assert_eq!(outcome, Outcome::AccountAuthenticated);
    assert!(calls.is_empty(), "{calls:?}");
    // The groups are those of the account that was authenticated (auth line domain=),
    // even when the account line has no (or another) domain=.
    let with_domain = Options {
        domains: vec!["example.org".into()],
        ..Options::default()
    };
    let (outcome, calls) = auth_then_account("alice", "secret", &with_domain, &team);
    assert_eq!(outcome, Outcome::AccountAuthenticated);
    assert_eq!(calls, ["groups alice@example.org"]);
}

/// With `account_check` and without our authentication, account with group= checks
/// existence and then the groups of the account spelled like the name.
#[test]
fn account_check_without_our_authentication_checks_existence_and_groups() {
    let team = Options {
        account_check: true,
        ..groups(&["Team"])
    };
    for (name, expected, expected_calls) in [
        (
            "alice@example.org",
            Outcome::AccountExists,
            &["isuser alice@example.org", "groups alice@example.org"][..],
        ),
        (
            "bob@example.org",
            Outcome::NotInGroup,
            &["isuser bob@example.org", "groups bob@example.org"][..],
        ),
        (
            "carol@example.org",
            Outcome::UnknownUser,
            &["isuser carol@example.org"][..],
        ),
    ] {
        let h = FakeHandle::new(name, None);
        let log = Logger::new(&h, "test", "account", None);
        let mut calls = Vec::new();
        let outcome = account(
            &h,
            &team,
            |_| Ok::<_, String>(Recorder(FakeOracle::default(), &mut calls)),
            &log,
            &mut Ctx::default(),
        );
        assert_eq!(outcome, expected, "{name}");
        assert_eq!(calls, expected_calls, "{name}");
    }
}

#[test]
fn a_failed_authentication_records_nothing() {
    let h = FakeHandle::new("alice@example.org", Some("wrong"));
    let log = Logger::new(&h, "test", "auth", None);
    let mut ctx = Ctx::default();
    let _ = authenticate(
        &h,
        PamFlags::empty(),
        &Options::default(),
        |_| Ok::<_, String>(FakeOracle::default()),
        &log,
        &mut ctx,
    );
    assert_eq!(ctx.verified, None);
    // Authenticated but not in the auth line's group: nothing recorded either.
    let h = FakeHandle::new("bob@example.org", Some("bob-pw"));
    let mut ctx = Ctx::default();
    let outcome = authenticate(
        &h,
        PamFlags::empty(),
        &groups(&["Team"]),
        |_| Ok::<_, String>(FakeOracle::default()),
        &log,
        &mut ctx,
    );
    assert_eq!(outcome, Outcome::NotInGroup);
    assert_eq!(ctx.verified, None);
}

#[test]
fn log_lines_never_contain_the_password_and_quiet_drops_expected_failures() {
    let mut opts = Options {
        debug: true,
        ..Options::default()
    };
    for (user, pw) in [
        ("alice@example.org", "secret"),
        ("alice@example.org", "wrong-pw-123"),
        ("carol@example.org", "carols-pw-456"),
        ("alice@down.org", "secret"),
    ] {
        let h = FakeHandle::new(user, Some(pw));
        let mut log = Logger::new(&h, "test", "auth", None);
        log.set_verbosity(opts.debug, opts.quiet);
        let mut ctx = Ctx::default();
        let outcome = authenticate(
            &h,
            PamFlags::empty(),
            &opts,
            |_| Ok(FakeOracle::default()),
            &log,
            &mut ctx,
        );
        report(&log, &ctx, &outcome, false);
        let lines = h.lines.borrow();
        assert!(lines.iter().any(|(l, _)| *l == Level::Debug));
        for (_, line) in lines.iter() {
            assert!(!line.contains(pw), "{line}");
        }
    }
    opts.debug = false;
    opts.quiet = true;
    let h = FakeHandle::new("alice@example.org", Some("wrong"));
    let mut log = Logger::new(&h, "test", "auth", None);
    log.set_verbosity(false, true);
    let mut ctx = Ctx::default();
    let outcome = authenticate(
        &h,
        PamFlags::empty(),
        &opts,
        |_| Ok(FakeOracle::default()),
        &log,
        &mut ctx,
    );
    report(&log, &ctx, &outcome, false);
    assert!(h.lines.borrow().is_empty(), "{:?}", h.lines.borrow());
}

/// The oracle is told where the login comes from (`PAM_RHOST`), for the throttle.
#[test]
fn the_remote_host_reaches_the_oracle() {
    struct Remote<'a>(&'a std::cell::RefCell<Vec<Option<String>>>);
    impl Oracle for Remote<'_> {
        fn describe(&self) -> String {
            "remote".into()
        }
        fn auth(&mut self, _: &str, _: &str, _: &Password, _: bool, r: Option<&str>) -> Login {
            self.0.borrow_mut().push(r.map(str::to_owned));
            Login {
                decision: AuthDecision::Accepted(Via::Token),
                uid: None,
            }
        }
        fn isuser(&mut self, _: &str, _: &str) -> UserExists {
            UserExists::Yes
        }
        fn groups(&mut self, _: &str, _: &str) -> Result<Vec<String>, Unavailable> {
            Ok(vec![])
        }
    }
    let seen = std::cell::RefCell::new(Vec::new());
    let h = FakeHandle::new("alice@example.org", Some("pw"));
    let log = Logger::new(&h, "test", "auth", None);
    let outcome = authenticate(
        &h,
        PamFlags::empty(),
        &Options::default(),
        |_| Ok::<_, String>(Remote(&seen)),
        &log,
        &mut Ctx::default(),
    );
    assert_eq!(outcome, Outcome::Accepted(Via::Token));
    assert_eq!(seen.into_inner(), [Some("192.0.2.7".to_owned())]);
}
