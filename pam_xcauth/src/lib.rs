//! `pam_xcauth.so`: a PAM module that checks passwords (and JSXC time-limited tokens) against
//! Nextcloud's JSXC external API, through `xcauth-core`.
//!
//! The crate is a thin shell around the core:
//!
//! - `ffi`: the six `pam_sm_*` entry points and the system calls behind them, the only
//!   `unsafe` code. Each entry point runs inside a panic guard (a panic becomes
//!   `PAM_SERVICE_ERR` and a log line); nothing is ever written to the host's stdout or stderr.
//! - `entry`: what each entry point does with the arguments `ffi` read: parse the options, set
//!   up the call's logger, run the flow, record, log and return the outcome.
//! - [`options`]: the module arguments, parsed into a typed struct (who answers is one
//!   [`options::Authority`]).
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
//!
//! One more argument exists for the test suite only, parsed apart from the ones above
//! ([`options::TestHooks`]): `syslog_socket=PATH` sends the log lines as syslog datagrams to
//! that Unix socket instead of `pam_syslog` (pam_wrapper and test hosts have no syslog daemon
//! to read back).
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

mod entry;
mod ffi;
pub mod flow;
pub mod handle;
pub mod logging;
pub mod manpage;
pub mod options;
pub mod oracle;

pub use entry::Entry;
#[cfg(feature = "panic-trigger")]
pub use entry::PANIC_TRIGGER_USER;
pub use ffi::{
    pam_sm_acct_mgmt, pam_sm_authenticate, pam_sm_chauthtok, pam_sm_close_session,
    pam_sm_open_session, pam_sm_setcred,
};
