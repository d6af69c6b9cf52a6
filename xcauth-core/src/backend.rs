//! The seam between the decision engine and a Nextcloud JSXC endpoint.
//!
//! [`Backend`] is what the engine calls; [`crate::jsxc::JsxcClient`] is the real
//! implementation (signed HTTP). Results are tri-state: the backend accepted,
//! the backend rejected, or the backend could not be asked / gave no usable
//! answer ("unavailable", which is where the cache's unreachable path applies).

use std::fmt;

use crate::secret::{Password, Secret};

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

/// Why the backend gave no usable answer. Log-safe: never holds a password,
/// secret or request body.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Unavailable {
    /// Could not connect (refused, DNS, unreachable).
    Connect(String),
    /// Connect or read timeout.
    Timeout(String),
    /// TLS handshake or certificate verification failed.
    Tls(String),
    /// Any other transport error (connection reset, closed without answer…).
    Transport(String),
    /// A status other than 200 (redirects are not followed and land here).
    Status(u16),
    /// 200 with a body that is not JSON.
    NotJson,
    /// 200 JSON whose shape the operation cannot use (no `result`, `error`, non-object…).
    Malformed(String),
    /// The per-domain configuration is unusable (NULL secret or URL).
    Misconfigured(String),
    /// The backend's circuit breaker is open: the call was skipped.
    CircuitOpen,
    /// The caller's own time budget (`timeout=` of a PAM call) was used up before the
    /// request could start. Says nothing about the backend, so the cache's unreachable path
    /// does not apply.
    BudgetUsedUp,
    /// The PAM module's `socket=` mode: xcauthd could not be asked, or it could not answer
    /// (its own reason is inside). The log-safe reason is shown as is.
    Daemon(String),
}

impl fmt::Display for Unavailable {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Unavailable::Connect(e) => write!(f, "cannot connect: {e}"),
            Unavailable::Timeout(e) => write!(f, "timeout: {e}"),
            Unavailable::Tls(e) => write!(f, "TLS failure: {e}"),
            Unavailable::Transport(e) => write!(f, "transport error: {e}"),
            Unavailable::Status(s) => write!(f, "HTTP status {s}"),
            Unavailable::NotJson => f.write_str("response is not JSON"),
            Unavailable::Malformed(e) => write!(f, "malformed response: {e}"),
            Unavailable::Misconfigured(e) => write!(f, "domain misconfigured: {e}"),
            Unavailable::CircuitOpen => f.write_str("backend circuit breaker open"),
            Unavailable::BudgetUsedUp => {
                f.write_str("the call's time budget (timeout=) is used up")
            }
            Unavailable::Daemon(why) => f.write_str(why),
        }
    }
}

/// The backend's answer to `auth`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum AuthReply {
    /// `{"result":"success","data":{"uid":…}}`: `uid` is the Nextcloud account
    /// that actually logged in (Nextcloud tries `user@domain`, then `user`), or
    /// `None` when the reply did not name it.
    Accepted {
        /// The account that logged in, as the backend spells it.
        uid: Option<String>,
    },
    /// `{"result":"noauth"}` or any other truthy, non-`error` result.
    Rejected,
    /// Everything else (docs/jsxc-api.md §5.2): take the cache's unreachable path.
    Unavailable(Unavailable),
}

/// The backend's answer to `isuser`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum UserExists {
    /// `isUser` is `true`, `1` or `"1"`.
    Yes,
    /// `isUser` is `false`, `0`, `"0"`, `""` or `null`.
    No,
    /// No usable answer.
    Unknown(Unavailable),
}

/// One entry of a shared roster: a Nextcloud UID with display name and groups.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RosterEntry {
    /// The Nextcloud UID (may contain `@`).
    pub uid: String,
    /// Display name, if the backend sent one.
    pub name: Option<String>,
    /// Group display names, in backend order.
    pub groups: Vec<String>,
}

/// A successful `sharedroster` answer.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SharedRoster {
    /// Entries in the order the backend sent them. Empty for `[]` and `{}`.
    pub entries: Vec<RosterEntry>,
    /// The raw response body (what `-R` and `roster:` print; hashed for the sync).
    pub body: String,
}

/// The backend's answer to `sharedroster`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum RosterReply {
    /// A usable roster.
    Roster(SharedRoster),
    /// No usable answer (includes the 500 "Can't find user").
    Unavailable(Unavailable),
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
