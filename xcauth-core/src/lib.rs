//! xcauth-core: everything xcauth decides, with no I/O policy of its own.
//!
//! From the ground up (a module imports only modules above it in this list):
//!
//! - [`clock`]: the [`Clock`] every "now" comes from, and the one civil-date formatter.
//! - [`secret`], [`logsafe`], [`trust`]: secrets that never print, log-safe text, and whether
//!   a file may be trusted.
//! - [`protocol`]: the one table of protocol names (`-t`, `listen=`, systemd socket names).
//! - [`vocab`]: the words every layer shares: how a login was decided ([`Via`],
//!   [`AuthDecision`]), a backend's tri-state answers and why there was none
//!   ([`Unavailable`], typed causes), name-match rules, a backend URL parsed once.
//! - [`deadline`]: streams whose reads and writes run against a deadline.
//! - [`token`]: JSXC time-limited tokens.
//! - [`cache`], [`domains`]: the seams for the credential cache and per-domain settings.
//! - [`throttle`]: brute-force throttling (failures open a growing back-off) and the seam to
//!   its shared state.
//! - [`codec`]: sans-I/O decoders/encoders for the four wire framings.
//! - [`backend`]: the seam to Nextcloud ([`Backend`], [`Target`] with its
//!   [`backend::BackendKind`]) and one folder per kind of client: `jsxc/`, the signed HTTP
//!   client for the JSXC external API (with its circuit breaker); a PAM call's time budget.
//! - [`config`]: `xcauth.conf` + command line → one validated [`config::Config`].
//! - [`metrics`]: the daemon's counters (lock-free atomics) and their output formats.
//! - [`db`]: the shared SQLite database: the credential caches, the `domains` table, the
//!   administrator's operations.
//! - [`roster`]: the shared-roster sync into ejabberd (planning, commands, database state).
//! - [`pamsock`]: the protocol between `pam_xcauth.so socket=` and xcauthd (codec, client,
//!   server); the server asks a [`pamsock::Decider`] for decisions.
//! - [`engine`]: the decision (token → cache → backend → cache when unreachable): routing a
//!   domain to its target, name rules, throttle glue, after-login hooks; it is the
//!   [`pamsock::Decider`].
//! - [`assemble`]: builds the [`Engine`] a configuration describes.
//!
//! The codecs, the database and the pam socket speak [`vocab`] only: none of them imports the
//! engine or a backend client.
#![forbid(unsafe_code)]

pub mod assemble;
pub mod backend;
pub mod cache;
pub mod clock;
pub mod codec;
pub mod config;
pub mod db;
pub mod deadline;
pub mod domains;
pub mod engine;
pub mod logsafe;
pub mod metrics;
pub mod pamsock;
pub mod protocol;
pub mod roster;
pub mod secret;
pub mod throttle;
pub mod token;
pub mod trust;
pub mod vocab;

#[cfg(test)]
mod testlog;

pub use backend::{Backend, Target};
pub use clock::{Clock, ManualClock, SystemClock};
pub use engine::Engine;
pub use secret::{Password, Secret};
pub use vocab::{AuthDecision, AuthReply, RosterReply, Unavailable, UserExists, Via};

/// The crate's version, printed by `--version` and sent in the User-Agent (not the PAM
/// socket's wire version, [`pamsock::PROTOCOL_VERSION`]).
pub const VERSION: &str = env!("CARGO_PKG_VERSION");
