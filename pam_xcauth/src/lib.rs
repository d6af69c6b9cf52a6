//! `pam_xcauth.so`: a PAM module that checks passwords (and JSXC time-limited tokens) against
//! Nextcloud's JSXC external API, through `xcauth-core`.
//!
//! The crate is a thin shell around the core:
//!
//! - [`ffi`]: the six `pam_sm_*` entry points, the only `unsafe` code. Each runs inside a panic
//!   guard (a panic becomes `PAM_SERVICE_ERR` and a log line); nothing is ever written to the
//!   host's stdout or stderr.
//! - [`options`]: the module arguments, parsed into a typed struct.
//! - [`handle`]: the PAM handle seam (user, password via `pam_get_authtok`, data marker, syslog).
//! - [`oracle`]: who answers — the core engine built for this one call, or xcauthd over
//!   `socket=PATH`.
//! - [`flow`]: the decision flow, [`flow::pam_code`] (the one mapping to PAM codes) and
//!   [`flow::report`] (the one log line per decision).
//! - [`logging`]: `pam_syslog` lines in pam_unix's `key=value` style.
//!
//! | entry point | result |
//! |---|---|
//! | `pam_sm_authenticate` | see [`flow::pam_code`] |
//! | `pam_sm_acct_mgmt` | SUCCESS if this handle was authenticated by us (with `group=`: and the account that logged in is in one of its groups, checked here unless the auth line already verified one of them); otherwise IGNORE with no network call, or with `account_check` an isuser check (plus `group=`) |
//! | `pam_sm_setcred` | SUCCESS |
//! | `pam_sm_open_session`, `pam_sm_close_session`, `pam_sm_chauthtok` | IGNORE |
//!
//! # Module arguments
//!
//! | argument | meaning |
//! |---|---|
//! | `try_first_pass` | use a password stacked by an earlier module, else prompt (the default anyway) |
//! | `use_first_pass` | only a stacked password; never prompt (`PAM_AUTH_ERR` without one) |
//! | `quiet` | no log line for expected failures (wrong password, unknown user, no domain) |
//! | `debug` | decision detail at LOG_DEBUG (never a password, token or secret) |
//! | `config=PATH` | settings file (default `/etc/xcauth.conf`; in-process mode only) |
//! | `domain=A[,B…]` | the domains this service serves: the first is appended to user names without `@`; a name in another domain is `PAM_USER_UNKNOWN` |
//! | `account_check` | `acct_mgmt` for a user we did not authenticate asks whether the user exists (default: `PAM_IGNORE`) |
//! | `group=A[,B…]` | only members of one of these Nextcloud groups (display names) pass; checked on the account that logged in (the backend's uid), so the credential cache is skipped |
//! | `socket=PATH` | ask xcauthd over this Unix socket instead of Nextcloud (no secret needed) |
//! | `timeout=SECONDS` | budget of the whole call: backend, database, socket (default 15, 1–300; `socket_timeout=` is an alias) |
//! | `socket_owner=USER` | the `socket=` file must be owned by root or this user (name or uid), else no password is sent (`PAM_AUTHINFO_UNAVAIL`); default: root only |
//! | `syslog_socket=PATH` | **for tests**: send the log lines as syslog datagrams to this Unix socket instead of `pam_syslog` (pam_wrapper and test hosts have no syslog daemon to read back) |
//!
//! An unknown argument or a bad value is logged at LOG_ERR and makes every auth/account call
//! return `PAM_SERVICE_ERR` (fail closed: a misspelt `group=` must not admit everybody). Only
//! the *name* of an unknown argument is logged, in case its value is a credential.
//!
//! Safe in pre-forked (saslauthd) and multi-threaded (Apache) hosts: no global mutable state
//! except the once-installed core logger and panic hook (both stateless), no client or thread
//! kept across calls or forks, and the library is linked with `-z nodelete` (see `build.rs`).
#![deny(unsafe_code)]
#![deny(
    clippy::unwrap_used,
    clippy::expect_used,
    clippy::panic,
    clippy::todo,
    clippy::unimplemented,
    clippy::print_stdout,
    clippy::print_stderr
)]

mod ffi;
pub mod flow;
pub mod handle;
pub mod logging;
pub mod options;
pub mod oracle;

use std::sync::Once;

use pamsm::{PamError, PamFlags};

use crate::flow::{Ctx, Outcome};
use crate::handle::{Handle, Marker};
use crate::logging::{Level, Line, Logger};
use crate::options::Options;
use crate::oracle::Oracle;

/// Which PAM function is running.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Entry {
    /// `pam_sm_authenticate`.
    Authenticate,
    /// `pam_sm_setcred`.
    SetCred,
    /// `pam_sm_acct_mgmt`.
    AcctMgmt,
    /// `pam_sm_open_session`.
    OpenSession,
    /// `pam_sm_close_session`.
    CloseSession,
    /// `pam_sm_chauthtok`.
    ChAuthTok,
}

impl Entry {
    /// The type in the log prefix, as libpam's `pam_syslog` names it.
    pub fn log_kind(self) -> &'static str {
        match self {
            Entry::Authenticate => "auth",
            Entry::SetCred => "setcred",
            Entry::AcctMgmt => "account",
            Entry::OpenSession | Entry::CloseSession => "session",
            Entry::ChAuthTok => "chauthtok",
        }
    }
}

/// Why libpam's module arguments could not be read.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum BadArgs {
    /// `argc` is negative.
    NegativeCount(i32),
    /// `argv` is NULL but `argc` is positive.
    NullVector(usize),
    /// Argument `i` is a NULL pointer.
    NullEntry(usize),
    /// Argument `i` is not UTF-8.
    NotUtf8(usize),
}

impl std::fmt::Display for BadArgs {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            BadArgs::NegativeCount(n) => write!(f, "libpam passed a negative argument count {n}"),
            BadArgs::NullVector(n) => {
                write!(
                    f,
                    "libpam passed {n} module arguments but no argument vector"
                )
            }
            BadArgs::NullEntry(i) => write!(f, "module argument {i} is a NULL pointer"),
            BadArgs::NotUtf8(i) => write!(f, "module argument {i} is not UTF-8"),
        }
    }
}

/// Runs one entry point. `args` is an error when libpam's arguments could not be read: every
/// auth and account call then fails closed with `PAM_SERVICE_ERR`.
pub(crate) fn dispatch<H: Handle>(
    entry: Entry,
    h: &H,
    flags: PamFlags,
    args: Result<Vec<String>, BadArgs>,
) -> PamError {
    match entry {
        // pam_setcred replays the frozen auth chain: after `auth sufficient pam_xcauth.so`
        // our setcred result becomes the application's result, so it must be SUCCESS.
        Entry::SetCred => return PamError::SUCCESS,
        // Sessions and password changes belong to others (Nextcloud changes passwords);
        // IGNORE keeps a stray `session optional pam_xcauth.so` line harmless.
        Entry::OpenSession | Entry::CloseSession | Entry::ChAuthTok => return PamError::IGNORE,
        Entry::Authenticate | Entry::AcctMgmt => {}
    }
    let (opts, errors, bad_arg) = match &args {
        Ok(list) => {
            let (o, e) = options::parse(list);
            (o, e, None)
        }
        Err(bad) => (Options::default(), Vec::new(), Some(*bad)),
    };
    let service = h.service().unwrap_or_default();
    let mut log = Logger::new(h, &service, entry.log_kind(), opts.syslog_socket.clone());
    log.set_verbosity(opts.debug, opts.quiet);
    if let Some(bad) = bad_arg {
        let line = Line::new("configuration error")
            .kv("error", &bad.to_string())
            .finish();
        log.log(Level::Err, &line);
        return PamError::SERVICE_ERR;
    }
    if !errors.is_empty() {
        for e in &errors {
            log.log(
                Level::Err,
                &Line::new("configuration error")
                    .kv("error", &e.to_string())
                    .finish(),
            );
        }
        return PamError::SERVICE_ERR;
    }
    let mut ctx = Ctx {
        rhost: h.rhost(),
        groups: opts.groups.clone(),
        ..Ctx::default()
    };
    log.debug(|| {
        format!(
            "{} flags=0x{:x} options: {}",
            entry.log_kind(),
            flags.bits(),
            describe_options(&opts)
        )
    });
    #[cfg(feature = "panic-trigger")]
    panic_trigger(h);
    let outcome = match entry {
        Entry::Authenticate => {
            let outcome = flow::authenticate(h, flags, &opts, open_oracle, &log, &mut ctx);
            remember(h, &outcome, ctx.verified.as_ref(), &log);
            outcome
        }
        _ => flow::account(h, &opts, open_oracle, &log, &mut ctx),
    };
    flow::report(&log, &ctx, &outcome, entry == Entry::AcctMgmt);
    let code = flow::pam_code(&outcome);
    log.debug(|| format!("returning {code:?}"));
    code
}

/// Test builds only (feature `panic-trigger`): panics for the user [`PANIC_TRIGGER_USER`].
#[cfg(feature = "panic-trigger")]
#[allow(clippy::panic)]
fn panic_trigger<H: Handle>(h: &H) {
    if h.user().is_ok_and(|u| u == PANIC_TRIGGER_USER) {
        panic!("deliberate panic (panic-trigger test build)");
    }
}

/// The user name that makes a `panic-trigger` build panic.
#[cfg(feature = "panic-trigger")]
pub const PANIC_TRIGGER_USER: &str = "xcauth-panic-trigger";

/// Builds the oracle for this call (the engine, or the xcauthd socket client).
fn open_oracle(opts: &Options) -> Result<Box<dyn Oracle>, String> {
    match &opts.socket {
        Some(path) => {
            let owner = match opts.socket_owner.as_deref() {
                None => 0,
                Some(name) => match name.parse::<u32>() {
                    Ok(uid) => uid,
                    Err(_) => ffi::user_id(name)?
                        .ok_or_else(|| format!("socket_owner={name}: no such user"))?,
                },
            };
            Ok(Box::new(oracle::Socket::new(path, opts.timeout, owner)))
        }
        None => Ok(Box::new(oracle::in_process(&opts.config, opts.timeout)?)),
    }
}

/// Records on the handle whether we authenticated its user (and in which `group=` groups),
/// for `acct_mgmt`. A failed attempt clears an earlier success on the same handle.
fn remember<H: Handle>(h: &H, outcome: &Outcome, verified: Option<&Marker>, log: &Logger<'_>) {
    let cleared = Marker::default();
    let value = match (outcome, verified) {
        (Outcome::Accepted(_), Some(m)) => m,
        _ if h.marker().is_none() => return,
        _ => &cleared,
    };
    if let Err(e) = h.set_marker(value) {
        log.log(
            Level::Warning,
            &Line::new("cannot store the auth marker")
                .kv("error", &format!("{e:?}"))
                .finish(),
        );
    }
}

fn describe_options(o: &Options) -> String {
    let mut parts = Vec::new();
    for (set, name) in [
        (o.use_first_pass, "use_first_pass"),
        (o.try_first_pass, "try_first_pass"),
        (o.quiet, "quiet"),
        (o.debug, "debug"),
    ] {
        if set {
            parts.push(name.to_owned());
        }
    }
    match &o.socket {
        Some(s) => parts.push(format!(
            "socket={} timeout={} socket_owner={}",
            s.display(),
            o.timeout.as_secs(),
            o.socket_owner.as_deref().unwrap_or("root")
        )),
        None => parts.push(format!(
            "config={} timeout={}",
            o.config.display(),
            o.timeout.as_secs()
        )),
    }
    if !o.domains.is_empty() {
        parts.push(format!("domain={}", o.domains.join(",")));
    }
    if o.account_check {
        parts.push("account_check".to_owned());
    }
    if !o.groups.is_empty() {
        parts.push(format!("group={}", o.groups.join(",")));
    }
    parts.join(" ")
}

/// After a caught panic: one log line with what we know. Runs inside its own guard.
pub(crate) fn report_panic<H: Handle>(entry: Entry, h: &H, args: Result<Vec<String>, BadArgs>) {
    let socket = args.ok().and_then(|a| options::parse(&a).0.syslog_socket);
    let service = h.service().unwrap_or_default();
    let log = Logger::new(h, &service, entry.log_kind(), socket);
    log.log(
        Level::Crit,
        &Line::new("internal error")
            .kv("detail", "panic caught, returning PAM_SERVICE_ERR")
            .finish(),
    );
}

static PROCESS_HOOKS: Once = Once::new();

/// Installs, once per process, the stateless core logger and a panic hook that writes to
/// syslog instead of stderr. Both live in this library's own copy of `std`/`log` (statically
/// linked), so the host's hooks are untouched; `-z nodelete` keeps them mapped.
pub(crate) fn install_process_hooks() {
    PROCESS_HOOKS.call_once(|| {
        if log::set_logger(&logging::CORE_LOG).is_ok() {
            log::set_max_level(log::LevelFilter::Warn);
        }
        std::panic::set_hook(Box::new(|info| {
            let location = info
                .location()
                .map(|l| format!("{}:{}", l.file(), l.line()))
                .unwrap_or_default();
            ffi::raw_syslog(Level::Crit, &format!("pam_xcauth: panic at {location}"));
        }));
    });
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn guard_turns_a_panic_into_service_err() {
        let mut reported = false;
        #[allow(clippy::panic)]
        let code = ffi::guarded(|| -> PamError { panic!("boom") }, || reported = true);
        assert_eq!(code, PamError::SERVICE_ERR);
        assert!(reported);
        // A panic while reporting is swallowed too.
        #[allow(clippy::panic)]
        let code = ffi::guarded(|| -> PamError { panic!("boom") }, || panic!("again"));
        assert_eq!(code, PamError::SERVICE_ERR);
        assert_eq!(
            ffi::guarded(|| PamError::AUTH_ERR, || ()),
            PamError::AUTH_ERR
        );
    }
}
