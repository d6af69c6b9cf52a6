//! The decision flow of `pam_sm_authenticate` and `pam_sm_acct_mgmt`, written against the
//! [`Handle`] and [`Oracle`] seams. Every path ends in an [`Outcome`]; [`pam_code`] is the one
//! place that turns an outcome into a PAM return code, and [`report`] the one place that logs it.

use xcauth_core::deadline;

use pamsm::{PamError, PamFlags};
use xcauth_core::pamsock::{MAX_NAME, MAX_PASSWORD};
use xcauth_core::vocab::{AuthDecision, Login, Unavailable, UserExists, Via};
use xcauth_core::Password;

use crate::handle::{Handle, ItemError, Marker};
use crate::logging::{Level, Line, Logger};
use crate::options::Options;
use crate::oracle::Oracle;

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

/// The PAM return code for an outcome (docs/pam.md §2.2).
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
                .kv("via", via.as_str())
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

/// How both entry points begin: the user as PAM gives it, recorded for the log line. libpam's
/// failure to give one ends the call.
fn pam_user<H: Handle>(h: &H, ctx: &mut Ctx) -> Result<String, Outcome> {
    let name = h.user().map_err(Outcome::UserItem)?;
    ctx.user = Some(name.clone());
    Ok(name)
}

/// The oracle for this call; a configuration problem ends it (`PAM_SERVICE_ERR`).
fn open_oracle<O: Oracle>(
    open: impl FnOnce(&Options) -> Result<O, String>,
    opts: &Options,
) -> Result<O, Outcome> {
    open(opts).map_err(Outcome::ServiceError)
}

/// Either way a call ends in an outcome; `Err` is one that ends it early.
fn settle(steps: impl FnOnce() -> Result<Outcome, Outcome>) -> Outcome {
    steps().unwrap_or_else(|early| early)
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
    settle(move || {
        let name = pam_user(h, ctx)?;
        let (user, domain) = split_user(&name, &opts.domains)?;
        let mut oracle = open_oracle(open, opts)?;
        log.debug(|| format!("user={user} domain={domain} via {}", oracle.describe()));
        let password = password(h, flags)?;
        // The call's time budget runs from here: however long the user took to type, the
        // backend gets the whole budget.
        oracle.start_budget();
        let rhost = h.rhost();
        let (via, uid, groups) = decide(
            &mut oracle,
            (user, &domain, rhost.as_deref()),
            &password,
            opts,
            log,
        )?;
        ctx.verified = Some(Marker {
            user: user.to_owned(),
            name,
            domain,
            uid: uid.unwrap_or_default(),
            groups,
        });
        Ok(Outcome::Accepted(via))
    })
}

/// The password (or token) to check, or why there is none worth sending.
fn password<H: Handle>(h: &H, flags: PamFlags) -> Result<Password, Outcome> {
    let password = match h.authtok() {
        Ok(p) => p,
        Err(ItemError::Pam(e)) => return Err(Outcome::NoPassword(e)),
        Err(ItemError::Missing) => return Err(Outcome::NoPassword(PamError::CRED_INSUFFICIENT)),
        Err(ItemError::NotUtf8) => return Err(Outcome::UnusablePassword("not UTF-8")),
    };
    if password.is_empty() {
        return Err(Outcome::EmptyPassword {
            disallowed: flags.contains(PamFlags::DISALLOW_NULL_AUTHTOK),
        });
    }
    if password.len() > MAX_PASSWORD {
        return Err(Outcome::UnusablePassword("longer than 4096 bytes"));
    }
    Ok(password)
}

/// An acceptance: how, the account that logged in when known, and the `group=` groups it was
/// found in. `Err` is any other outcome.
fn decide<O: Oracle>(
    oracle: &mut O,
    (user, domain, rhost): (&str, &str, Option<&str>),
    password: &Password,
    opts: &Options,
    log: &Logger<'_>,
) -> Result<(Via, Option<String>, Vec<String>), Outcome> {
    let started = deadline::now();
    // group= must be checked on the account that actually logged in, which only the backend
    // (or a token) names: the cache does not record it.
    let need_uid = !opts.groups.is_empty();
    let Login { decision, uid } = oracle.auth(user, domain, password, need_uid, rhost);
    log.debug(|| {
        let result = match &decision {
            AuthDecision::Accepted(via) => format!(
                "accepted via={} account={}",
                via.as_str(),
                uid.as_deref().unwrap_or("-")
            ),
            AuthDecision::Rejected => "rejected".to_owned(),
            AuthDecision::Unavailable(_) => "unavailable".to_owned(),
        };
        format!(
            "auth result={result} elapsed_ms={}",
            deadline::now()
                .saturating_duration_since(started)
                .as_millis()
        )
    });
    match decision {
        AuthDecision::Accepted(via) => {
            let groups = check_groups(oracle, uid.as_deref(), domain, opts, log)?;
            Ok((via, uid, groups))
        }
        AuthDecision::Rejected => Err(match oracle.isuser(user, domain) {
            UserExists::Yes => Outcome::BadPassword,
            UserExists::No => Outcome::UnknownUser,
            UserExists::Unknown(why) => Outcome::BadPasswordUserUnconfirmed(reason(why)),
        }),
        AuthDecision::Unavailable(why) => Err(Outcome::Unavailable(reason(why))),
    }
}

/// The log text of why nobody could answer.
fn reason(why: Unavailable) -> String {
    why.to_string()
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
        Err(why) => Err(Outcome::Unavailable(format!(
            "cannot read groups: {}",
            reason(why)
        ))),
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
    settle(move || {
        let name = pam_user(h, ctx)?;
        let marker = h.marker().filter(|m| m.name == name);
        let (user, domain, uid) = match &marker {
            Some(m) => {
                if let Some(g) = m.groups.iter().find(|g| opts.groups.contains(g)) {
                    log.debug(|| format!("account: group {g} was verified at authentication"));
                    return Ok(Outcome::AccountAuthenticated);
                }
                if opts.groups.is_empty() {
                    return Ok(Outcome::AccountAuthenticated);
                }
                let uid = (!m.uid.is_empty()).then(|| m.uid.clone());
                (m.user.clone(), m.domain.clone(), uid)
            }
            None if !opts.account_check => return Ok(Outcome::NotOurs),
            None => {
                // Without a password nothing says which account the name means; the one spelled
                // exactly like the user part is the only one that cannot be a different person.
                let (user, domain) = split_user(&name, &opts.domains)?;
                (user.to_owned(), domain, Some(user.to_owned()))
            }
        };
        let mut oracle = open_oracle(open, opts)?;
        log.debug(|| {
            format!(
                "account user={user} domain={domain} authenticated_by_xcauth={} via {}",
                marker.is_some(),
                oracle.describe()
            )
        });
        if marker.is_some() {
            // We authenticated this account on this handle: it exists; only group= is left.
            check_groups(&mut oracle, uid.as_deref(), &domain, opts, log)?;
            return Ok(Outcome::AccountAuthenticated);
        }
        match oracle.isuser(&user, &domain) {
            UserExists::Yes => {
                check_groups(&mut oracle, uid.as_deref(), &domain, opts, log)?;
                Ok(Outcome::AccountExists)
            }
            UserExists::No => Ok(Outcome::UnknownUser),
            UserExists::Unknown(why) => Ok(Outcome::Unavailable(reason(why))),
        }
    })
}

#[cfg(test)]
mod tests;
