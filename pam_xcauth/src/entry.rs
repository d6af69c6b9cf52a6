//! Dispatch: what each `pam_sm_*` entry point does once `ffi` has read libpam's arguments.
//! Options are parsed, the call's logger set up, and the flow run; then the outcome is
//! recorded on the handle (auth), logged once and turned into a PAM code.

use pamsm::{PamError, PamFlags};

use crate::flow::{self, Ctx, Outcome};
use crate::handle::{Handle, Marker};
use crate::logging::{Level, Line, Logger};
use crate::options::{self, Authority, Options};
use crate::oracle::{self, Lookups, Oracle};

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
    lookups: Lookups,
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
    let mut log = Logger::new(
        h,
        &service,
        entry.log_kind(),
        opts.test_hooks.syslog_socket.clone(),
    );
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
    let open = |opts: &Options| open_oracle(opts, lookups);
    let outcome = match entry {
        Entry::Authenticate => {
            let outcome = flow::authenticate(h, flags, &opts, open, &log, &mut ctx);
            remember(h, &outcome, ctx.verified.as_ref(), &log);
            outcome
        }
        _ => flow::account(h, &opts, open, &log, &mut ctx),
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
fn open_oracle(opts: &Options, lookups: Lookups) -> Result<Box<dyn Oracle>, String> {
    match &opts.authority {
        Authority::Socket { path, owner } => {
            let owner = match owner.as_deref() {
                None => 0,
                Some(name) => match name.parse::<u32>() {
                    Ok(uid) => uid,
                    Err(_) => (lookups.user_id)(name)?
                        .ok_or_else(|| format!("socket_owner={name}: no such user"))?,
                },
            };
            Ok(Box::new(oracle::Socket::new(
                path,
                opts.timeout,
                owner,
                lookups,
            )))
        }
        Authority::InProcess { config } => Ok(Box::new(oracle::in_process(config, opts.timeout)?)),
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
    match &o.authority {
        Authority::Socket { path, owner } => parts.push(format!(
            "socket={} timeout={} socket_owner={}",
            path.display(),
            o.timeout.as_secs(),
            owner.as_deref().unwrap_or("root")
        )),
        Authority::InProcess { config } => parts.push(format!(
            "config={} timeout={}",
            config.display(),
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
    let socket = args
        .ok()
        .and_then(|a| options::parse(&a).0.test_hooks.syslog_socket);
    let service = h.service().unwrap_or_default();
    let log = Logger::new(h, &service, entry.log_kind(), socket);
    log.log(
        Level::Crit,
        &Line::new("internal error")
            .kv("detail", "panic caught, returning PAM_SERVICE_ERR")
            .finish(),
    );
}
