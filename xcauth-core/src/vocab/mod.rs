//! The words every layer shares: how a login was decided ([`Via`], [`AuthDecision`],
//! [`Login`]), what a caller asks ([`LoginRules`], [`NameMatch`]), a backend's tri-state
//! answers ([`AuthReply`], [`UserExists`], [`RosterReply`]), why there was none
//! ([`Unavailable`]), and a backend's URL, parsed once ([`BackendUrl`]).
//!
//! Nothing here does I/O or decides anything: the codecs, the database and the pam socket
//! speak these words without knowing the engine or a backend client, and the engine and the
//! backends meet on them.

mod decision;
mod reply;
mod unavailable;
mod url;

pub use self::decision::{AuthDecision, Login, LoginRules, NameMatch, Via};
pub use self::reply::{AuthReply, RosterEntry, RosterReply, SharedRoster, UserExists};
pub use self::unavailable::{
    DaemonCause, ErrorChain, Malformed, Misconfigured, Timeout, TlsCause, TlsFailure, Transport,
    Unavailable,
};
pub use self::url::{BackendUrl, UrlError};

/// bcrypt only looks at the first 72 bytes of a password: a longer one bypasses the
/// credential cache (it is neither checked against nor stored in it).
pub const BCRYPT_MAX_PASSWORD: usize = 72;
