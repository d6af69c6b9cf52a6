//! Why a backend (or xcauthd, for the PAM module) gave no usable answer.

use std::fmt;

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
