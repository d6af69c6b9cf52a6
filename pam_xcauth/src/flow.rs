//! The decision flow of `pam_sm_authenticate` and `pam_sm_acct_mgmt`, written against the
//! [`Handle`] and [`Oracle`] seams. Every path ends in an [`Outcome`]; [`pam_code`] is the one
//! place that turns an outcome into a PAM return code, and [`report`] the one place that logs it.

use xcauth_core::deadline;

use pamsm::{PamError, PamFlags};
use xcauth_core::pamsock::{MAX_NAME, MAX_PASSWORD};
use xcauth_core::{Password, Via};

use crate::handle::{Handle, ItemError, Marker};
use crate::logging::{Level, Line, Logger};
use crate::options::Options;
use crate::oracle::{AuthAnswer, ExistsAnswer, Oracle};

/// How a call ended.
#[derive(Debug, Clone, PartialEq)]
pub enum Outcome {
    /// auth: the password (or token) was accepted.
    Accepted(Via),
    /// account: this handle was authenticated by pam_xcauth (and, with `group=`, the user is
    /// in one of its groups).
    AccountAuthenticated,
    /// account: the user exists (and is in a required group).
    AccountExists,
    /// The backend rejected the password and says the user exists.
    BadPassword,
    /// The backend rejected the password and could not say whether the user exists.
    BadPasswordUserUnconfirmed(String),
    /// The backend does not know the user.
    UnknownUser,
    /// The user name has no `@domain` and there is no `domain=` option.
    NoDomain,
    /// The user name's domain is not one of `domain=` (so not a user of this service).
    DomainNotListed,
    /// account: this handle was not authenticated by pam_xcauth and there is no
    /// `account_check`: leave the decision to the other modules (`PAM_IGNORE`).
    NotOurs,
    /// The user or domain is empty or too long to be a Nextcloud account.
    InvalidUser(&'static str),
    /// Authenticated (or existing), but not in any group of `group=`.
    NotInGroup,
    /// The backend (or xcauthd) could not answer.
    Unavailable(String),
    /// No password: `use_first_pass` without a stacked token (libpam's `PAM_AUTH_ERR`), or the
    /// conversation gave nothing.
    NoPassword(PamError),
    /// An empty password.
    EmptyPassword {
        /// The application set `PAM_DISALLOW_NULL_AUTHTOK`.
        disallowed: bool,
    },
    /// The password is not usable (not UTF-8, or longer than the protocol allows).
    UnusablePassword(&'static str),
    /// libpam could not give us the user name.
    UserItem(ItemError),
    /// Bad module arguments or configuration.
    ServiceError(String),
}

/// The PAM return code for an outcome (pam.md §2.2).
pub fn pam_code(outcome: &Outcome) -> PamError {
    match outcome {
        Outcome::Accepted(_) | Outcome::AccountAuthenticated | Outcome::AccountExists => {
            PamError::SUCCESS
        }
        Outcome::BadPassword | Outcome::BadPasswordUserUnconfirmed(_) => PamError::AUTH_ERR,
        Outcome::UnknownUser
        | Outcome::NoDomain
        | Outcome::DomainNotListed
        | Outcome::InvalidUser(_) => PamError::USER_UNKNOWN,
        Outcome::NotOurs => PamError::IGNORE,
        Outcome::NotInGroup => PamError::PERM_DENIED,
        Outcome::Unavailable(_) => PamError::AUTHINFO_UNAVAIL,
        Outcome::NoPassword(PamError::AUTH_ERR) => PamError::AUTH_ERR,
        Outcome::NoPassword(_) => PamError::CRED_INSUFFICIENT,
        Outcome::EmptyPassword { disallowed: true } => PamError::AUTH_ERR,
        Outcome::EmptyPassword { disallowed: false } => PamError::CRED_INSUFFICIENT,
        Outcome::UnusablePassword(_) => PamError::AUTH_ERR,
        Outcome::UserItem(ItemError::Pam(PamError::UNKNOWN_RESULT | PamError::SUCCESS)) => {
            PamError::SYSTEM_ERR
        }
        Outcome::UserItem(ItemError::Pam(e)) => *e,
        Outcome::UserItem(ItemError::Missing | ItemError::NotUtf8) => PamError::USER_UNKNOWN,
        Outcome::ServiceError(_) => PamError::SERVICE_ERR,
    }
}

/// Context for the log line of an outcome.
#[derive(Debug, Default)]
pub struct Ctx {
    /// The user as PAM gave it.
    pub user: Option<String>,
    /// `PAM_RHOST`.
    pub rhost: Option<String>,
    /// The `group=` list, for `not_in_group` lines.
    pub groups: Vec<String>,
    /// auth: set exactly when the outcome is [`Outcome::Accepted`]; what to record on the
    /// handle for `acct_mgmt`.
    pub verified: Option<Marker>,
}

/// Logs the outcome once, pam_unix style. Expected failures respect `quiet`.
pub fn report(log: &Logger<'_>, ctx: &Ctx, outcome: &Outcome, account: bool) {
    let failure = if account {
        "account check failed"
    } else {
        "authentication failure"
    };
    let line = |event: &str| {
        Line::new(event)
            .kv_opt("user", ctx.user.as_deref())
            .kv_opt("rhost", ctx.rhost.as_deref())
    };
    match outcome {
        Outcome::Accepted(via) => log.log(
            Level::Info,
            &line("authentication success")
                .kv("via", via_word(*via))
                .finish(),
        ),
        Outcome::AccountAuthenticated => {
            log.debug(|| {
                line("account ok")
                    .kv("reason", "authenticated_by_xcauth")
                    .finish()
            });
        }
        Outcome::AccountExists => {
            log.debug(|| line("account ok").kv("reason", "user_exists").finish());
        }
        Outcome::NotOurs => {
            log.debug(|| {
                line("account ignored")
                    .kv("reason", "not_authenticated_by_xcauth")
                    .finish()
            });
        }
        Outcome::DomainNotListed => log.expected_failure(
            &line(failure)
                .kv("reason", "domain_not_allowed")
                .kv("detail", "the name's domain is not one of domain=")
                .finish(),
        ),
        Outcome::BadPassword => {
            log.expected_failure(&line(failure).kv("reason", "bad_password").finish());
        }
        Outcome::BadPasswordUserUnconfirmed(why) => log.expected_failure(
            &line(failure)
                .kv("reason", "bad_password")
                .kv("isuser_error", why)
                .finish(),
        ),
        Outcome::UnknownUser => {
            log.expected_failure(&line(failure).kv("reason", "unknown_user").finish());
        }
        Outcome::NoDomain => log.expected_failure(
            &line(failure)
                .kv("reason", "no_domain")
                .kv("detail", "user name without @domain and no domain= option")
                .finish(),
        ),
        Outcome::InvalidUser(why) => log.expected_failure(
            &line(failure)
                .kv("reason", "invalid_user")
                .kv("detail", why)
                .finish(),
        ),
        Outcome::NotInGroup => log.log(
            Level::Notice,
            &line(failure)
                .kv("reason", "not_in_group")
                .kv("required", &ctx.groups.join(","))
                .finish(),
        ),
        Outcome::Unavailable(why) => {
            log.log(
                Level::Err,
                &line("backend unavailable").kv("reason", why).finish(),
            );
        }
        Outcome::NoPassword(e) => log.expected_failure(
            &line(failure)
                .kv("reason", "no_password")
                .kv("pam_error", &format!("{e:?}"))
                .finish(),
        ),
        Outcome::EmptyPassword { .. } => {
            log.expected_failure(&line(failure).kv("reason", "empty_password").finish());
        }
        Outcome::UnusablePassword(why) => log.log(
            Level::Notice,
            &line(failure)
                .kv("reason", "unusable_password")
                .kv("detail", why)
                .finish(),
        ),
        Outcome::UserItem(e) => log.log(
            Level::Err,
            &line("cannot get the user name")
                .kv("error", &format!("{e:?}"))
                .finish(),
        ),
        Outcome::ServiceError(why) => {
            log.log(
                Level::Err,
                &Line::new("configuration error").kv("error", why).finish(),
            );
        }
    }
}

fn via_word(via: Via) -> &'static str {
    match via {
        Via::Token => "token",
        Via::Cache => "cache",
        Via::Backend => "backend",
        Via::UnreachableCache => "cache_backend_unreachable",
    }
}

/// Splits `user@domain` at the last `@`; a bare name takes the first of `domains` (the
/// `domain=` list). With a list, a name in any other domain is refused, and a domain is
/// compared case-insensitively but never with a trailing dot (one more spelling of a domain
/// is one more way around the list).
pub fn split_user<'a>(name: &'a str, domains: &[String]) -> Result<(&'a str, String), Outcome> {
    let (user, domain) = match name.rsplit_once('@') {
        Some((u, d)) => (u, d.to_ascii_lowercase()),
        None => match domains.first() {
            Some(d) => (name, d.clone()),
            None => return Err(Outcome::NoDomain),
        },
    };
    if user.is_empty() {
        return Err(Outcome::InvalidUser("empty user name"));
    }
    if domain.is_empty() {
        return Err(Outcome::InvalidUser("empty domain"));
    }
    if domain.ends_with('.') {
        return Err(Outcome::InvalidUser("domain ends with a dot"));
    }
    if user.len() > MAX_NAME || domain.len() > MAX_NAME {
        return Err(Outcome::InvalidUser("user name or domain too long"));
    }
    if !domains.is_empty() && !domains.contains(&domain) {
        return Err(Outcome::DomainNotListed);
    }
    Ok((user, domain))
}

/// `pam_sm_authenticate` after option parsing: user → domain → oracle → password → decision.
pub fn authenticate<H: Handle, O: Oracle>(
    h: &H,
    flags: PamFlags,
    opts: &Options,
    open: impl FnOnce(&Options) -> Result<O, String>,
    log: &Logger<'_>,
    ctx: &mut Ctx,
) -> Outcome {
    let name = match h.user() {
        Ok(n) => n,
        Err(e) => return Outcome::UserItem(e),
    };
    ctx.user = Some(name.clone());
    let (user, domain) = match split_user(&name, &opts.domains) {
        Ok(parts) => parts,
        Err(outcome) => return outcome,
    };
    let mut oracle = match open(opts) {
        Ok(o) => o,
        Err(e) => return Outcome::ServiceError(e),
    };
    log.debug(|| format!("user={user} domain={domain} via {}", oracle.describe()));
    let password = match h.authtok() {
        Ok(p) => p,
        Err(ItemError::Pam(e)) => return Outcome::NoPassword(e),
        Err(ItemError::Missing) => return Outcome::NoPassword(PamError::CRED_INSUFFICIENT),
        Err(ItemError::NotUtf8) => return Outcome::UnusablePassword("not UTF-8"),
    };
    if password.is_empty() {
        return Outcome::EmptyPassword {
            disallowed: flags.contains(PamFlags::DISALLOW_NULL_AUTHTOK),
        };
    }
    if password.len() > MAX_PASSWORD {
        return Outcome::UnusablePassword("longer than 4096 bytes");
    }
    // The call's time budget runs from here: however long the user took to type, the
    // backend gets the whole budget.
    oracle.start_budget();
    match decide(&mut oracle, user, &domain, &password, opts, log) {
        Decision::Accepted { via, uid, groups } => {
            let user = user.to_owned();
            ctx.verified = Some(Marker {
                name,
                user,
                domain,
                uid: uid.unwrap_or_default(),
                groups,
            });
            Outcome::Accepted(via)
        }
        Decision::Other(outcome) => outcome,
    }
}

/// What [`decide`] found: an acceptance (with the account that logged in, when known, and the
/// `group=` groups it was found in), or any other outcome.
enum Decision {
    Accepted {
        via: Via,
        uid: Option<String>,
        groups: Vec<String>,
    },
    Other(Outcome),
}

fn decide<O: Oracle>(
    oracle: &mut O,
    user: &str,
    domain: &str,
    password: &Password,
    opts: &Options,
    log: &Logger<'_>,
) -> Decision {
    let started = deadline::now();
    // group= must be checked on the account that actually logged in, which only the backend
    // (or a token) names: the cache does not record it.
    let need_uid = !opts.groups.is_empty();
    let answer = oracle.auth(user, domain, password, need_uid);
    log.debug(|| {
        let result = match &answer {
            AuthAnswer::Accepted { via, uid } => format!(
                "accepted via={} account={}",
                via_word(*via),
                uid.as_deref().unwrap_or("-")
            ),
            AuthAnswer::Rejected => "rejected".to_owned(),
            AuthAnswer::Unavailable(_) => "unavailable".to_owned(),
        };
        format!(
            "auth result={result} elapsed_ms={}",
            deadline::now()
                .saturating_duration_since(started)
                .as_millis()
        )
    });
    Decision::Other(match answer {
        AuthAnswer::Accepted { via, uid } => {
            match check_groups(oracle, uid.as_deref(), domain, opts, log) {
                Ok(groups) => return Decision::Accepted { via, uid, groups },
                Err(denied) => denied,
            }
        }
        AuthAnswer::Rejected => match oracle.isuser(user, domain) {
            ExistsAnswer::Yes => Outcome::BadPassword,
            ExistsAnswer::No => Outcome::UnknownUser,
            ExistsAnswer::Unknown(why) => Outcome::BadPasswordUserUnconfirmed(why),
        },
        AuthAnswer::Unavailable(why) => Outcome::Unavailable(why),
    })
}

/// The groups of `group=` the account `uid` is in (empty when there is no `group=`), or the
/// outcome that refuses the user: not in any of them, or the groups could not be read, or it
/// is not known which account logged in (then nobody's groups may stand in for it).
fn check_groups<O: Oracle>(
    oracle: &mut O,
    uid: Option<&str>,
    domain: &str,
    opts: &Options,
    log: &Logger<'_>,
) -> Result<Vec<String>, Outcome> {
    if opts.groups.is_empty() {
        return Ok(Vec::new());
    }
    let Some(uid) = uid else {
        return Err(Outcome::Unavailable(
            "group= needs to know which Nextcloud account logged in, and this login did not \
             say (a credential-cache login, or a backend reply without data.uid); put the \
             same group= on the auth line"
                .into(),
        ));
    };
    match oracle.groups(uid, domain) {
        Ok(member_of) => {
            log.debug(|| format!("groups of account {uid}: [{}]", member_of.join(", ")));
            let matched: Vec<String> = opts
                .groups
                .iter()
                .filter(|g| member_of.contains(g))
                .cloned()
                .collect();
            if matched.is_empty() {
                Err(Outcome::NotInGroup)
            } else {
                Ok(matched)
            }
        }
        Err(why) => Err(Outcome::Unavailable(format!("cannot read groups: {why}"))),
    }
}

/// `pam_sm_acct_mgmt` after option parsing.
///
/// A user this handle's `pam_sm_authenticate` accepted passes without a backend call — unless
/// this line has `group=` and none of its groups was verified at auth time (the auth line had
/// no or other `group=`): then the groups of the account that was authenticated are checked
/// here. Any other user is not ours to vouch for: `PAM_IGNORE` with no network call, so
/// pam_unix and friends decide (expiry, locks) — unless the line has `account_check`, which
/// asks Nextcloud whether the user exists (for hosts that run account without auth, such as
/// mod_authnz_pam's `Require pam-account`).
pub fn account<H: Handle, O: Oracle>(
    h: &H,
    opts: &Options,
    open: impl FnOnce(&Options) -> Result<O, String>,
    log: &Logger<'_>,
    ctx: &mut Ctx,
) -> Outcome {
    let name = match h.user() {
        Ok(n) => n,
        Err(e) => return Outcome::UserItem(e),
    };
    ctx.user = Some(name.clone());
    let marker = h.marker().filter(|m| m.name == name);
    let (user, domain, uid) = match &marker {
        Some(m) => {
            if let Some(g) = m.groups.iter().find(|g| opts.groups.contains(g)) {
                log.debug(|| format!("account: group {g} was verified at authentication"));
                return Outcome::AccountAuthenticated;
            }
            if opts.groups.is_empty() {
                return Outcome::AccountAuthenticated;
            }
            let uid = (!m.uid.is_empty()).then(|| m.uid.clone());
            (m.user.clone(), m.domain.clone(), uid)
        }
        None if !opts.account_check => return Outcome::NotOurs,
        None => match split_user(&name, &opts.domains) {
            // Without a password nothing says which account the name means; the one spelled
            // exactly like the user part is the only one that cannot be a different person.
            Ok((user, domain)) => (user.to_owned(), domain, Some(user.to_owned())),
            Err(outcome) => return outcome,
        },
    };
    let mut oracle = match open(opts) {
        Ok(o) => o,
        Err(e) => return Outcome::ServiceError(e),
    };
    log.debug(|| {
        format!(
            "account user={user} domain={domain} authenticated_by_xcauth={} via {}",
            marker.is_some(),
            oracle.describe()
        )
    });
    if marker.is_some() {
        // We authenticated this account on this handle: it exists; only group= is left.
        return match check_groups(&mut oracle, uid.as_deref(), &domain, opts, log) {
            Ok(_) => Outcome::AccountAuthenticated,
            Err(denied) => denied,
        };
    }
    match oracle.isuser(&user, &domain) {
        ExistsAnswer::Yes => match check_groups(&mut oracle, uid.as_deref(), &domain, opts, log) {
            Ok(_) => Outcome::AccountExists,
            Err(denied) => denied,
        },
        ExistsAnswer::No => Outcome::UnknownUser,
        ExistsAnswer::Unknown(why) => Outcome::Unavailable(why),
    }
}

#[cfg(test)]
mod tests {
    use std::cell::RefCell;
    use std::collections::VecDeque;

    use super::*;
    use crate::logging::SyslogSink;

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
        ) -> AuthAnswer {
            self.calls.push(format!("auth {user}@{domain}"));
            self.need_uid.push(need_uid);
            if domain == "down.org" {
                AuthAnswer::Unavailable("cannot connect: refused".into())
            } else if (user == "alice" && password.expose() == "secret")
                || (user == "bob" && password.expose() == "bob-pw")
            {
                AuthAnswer::Accepted {
                    via: Via::Backend,
                    uid: Some(user.to_owned()),
                }
            } else {
                AuthAnswer::Rejected
            }
        }
        fn isuser(&mut self, user: &str, domain: &str) -> ExistsAnswer {
            self.calls.push(format!("isuser {user}@{domain}"));
            if self.isuser_fails || domain == "down.org" {
                ExistsAnswer::Unknown("HTTP status 502".into())
            } else if user == "alice" || user == "bob" {
                ExistsAnswer::Yes
            } else {
                ExistsAnswer::No
            }
        }
        fn groups(&mut self, uid: &str, domain: &str) -> Result<Vec<String>, String> {
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
        fn auth(&mut self, u: &str, d: &str, p: &Password, need_uid: bool) -> AuthAnswer {
            self.0.auth(u, d, p, need_uid)
        }
        fn isuser(&mut self, u: &str, d: &str) -> ExistsAnswer {
            self.0.isuser(u, d)
        }
        fn groups(&mut self, u: &str, d: &str) -> Result<Vec<String>, String> {
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
}
