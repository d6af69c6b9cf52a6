//! The seam between the decision engine and Nextcloud.
//!
//! [`Backend`] is the engine's only view of Nextcloud: three questions (`auth`, `isuser`,
//! `sharedroster`) about one [`Target`], each answered in the tri-state of [`crate::vocab`]:
//! accepted, rejected, or unavailable (the backend could not be asked or gave no usable answer,
//! which is where the cache's unreachable path applies).
//!
//! One folder per kind of backend, each a client implementing [`Backend`]:
//!
//! - [`jsxc`]: the signed HTTP client for the JSXC app's external API ([`BackendKind::Jsxc`]).
//!
//! A [`Target`] names its [`BackendKind`]. With a second kind (a native client of Nextcloud's
//! own API in `nextcloud/`), the engine keeps asking one [`Backend`]: a small router holding
//! one client per kind, dispatching on `target.kind`, so one engine serves domains whose
//! settings point at different kinds.
//!
//! [`CallBudget`] is the time budget of one PAM call, which every backend request of that
//! call shares.

use std::fmt;

use crate::secret::{Password, Secret};
use crate::vocab::{AuthReply, BackendUrl, RosterReply, UserExists};

mod budget;
pub mod jsxc;

pub use self::budget::CallBudget;

/// Which API a [`Target`] is asked through.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum BackendKind {
    /// The JSXC app's external API: signed form POSTs ([`jsxc::JsxcClient`]).
    Jsxc,
}

/// Where and how to ask about one XMPP domain: resolved from the global
/// `url`/`secret` or from the `domains` table (docs/xcauth2.md §3.4).
#[derive(Clone, PartialEq, Eq)]
pub struct Target {
    /// The API this target is asked through.
    pub kind: BackendKind,
    /// The endpoint, parsed once (from the configuration or when the `domains` row was read).
    pub url: BackendUrl,
    /// HMAC key for the request signature and for token verification.
    pub secret: Secret,
    /// The `domain=` value sent to the backend (the XMPP domain unless mapped).
    pub authdomain: String,
}

impl fmt::Debug for Target {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Target")
            .field("kind", &self.kind)
            .field("url", &self.url)
            .field("secret", &self.secret)
            .field("authdomain", &self.authdomain)
            .finish()
    }
}

/// A way to ask Nextcloud about the accounts of a [`Target`]. Implementations must be usable
/// from many threads and must time out every call.
pub trait Backend: Send + Sync + fmt::Debug {
    /// Does `password` log in `user` (in `target.authdomain`)? An acceptance names the account
    /// that logged in when the backend says so.
    fn auth(&self, target: &Target, user: &str, password: &Password) -> AuthReply;
    /// Does `user` exist?
    fn isuser(&self, target: &Target, user: &str) -> UserExists;
    /// The shared roster of `user`: the accounts in `user`'s groups, with their display names
    /// and groups.
    fn sharedroster(&self, target: &Target, user: &str) -> RosterReply;
    /// The URLs whose circuit breaker is open now (for the counters); none by default.
    fn open_circuits(&self) -> Vec<String> {
        Vec::new()
    }
}
