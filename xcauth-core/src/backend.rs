//! The seam between the decision engine and a Nextcloud JSXC endpoint.
//!
//! [`Backend`] is what the engine calls; [`crate::jsxc::JsxcClient`] is the real
//! implementation (signed HTTP). Results are tri-state: the backend accepted,
//! the backend rejected, or the backend could not be asked / gave no usable
//! answer ("unavailable", which is where the cache's unreachable path applies).

use std::fmt;

use crate::secret::{Password, Secret};
use crate::vocab::{AuthReply, RosterReply, UserExists};

/// Where and how to ask about one XMPP domain: resolved from the global
/// `url`/`secret` or from the `domains` table (docs/xcauth2.md §3.4).
#[derive(Clone, PartialEq, Eq)]
pub struct Target {
    /// Endpoint URL, used verbatim.
    pub url: String,
    /// HMAC key for the request signature and for token verification.
    pub secret: Secret,
    /// The `domain=` value sent to the backend (the XMPP domain unless mapped).
    pub authdomain: String,
}

impl fmt::Debug for Target {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Target")
            .field("url", &self.url)
            .field("secret", &self.secret)
            .field("authdomain", &self.authdomain)
            .finish()
    }
}

/// A JSXC external API endpoint. Implementations must be usable from many
/// threads and must time out every call.
pub trait Backend: Send + Sync + fmt::Debug {
    /// `operation=auth`.
    fn auth(&self, target: &Target, user: &str, password: &Password) -> AuthReply;
    /// `operation=isuser`.
    fn isuser(&self, target: &Target, user: &str) -> UserExists;
    /// `operation=sharedroster`.
    fn sharedroster(&self, target: &Target, user: &str) -> RosterReply;
    /// The URLs whose circuit breaker is open now (for the counters); none by default.
    fn open_circuits(&self) -> Vec<String> {
        Vec::new()
    }
}
