//! Why a backend (or xcauthd, for the PAM module) gave no usable answer, as typed causes.
//! Every type here is log-safe: none holds a password, a secret or a request or response
//! body, and each shows in the words the log has always used.

use std::fmt;

use super::{BackendUrl, UrlError};
use crate::logsafe;

/// Why the backend gave no usable answer.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Unavailable {
    /// Could not connect (refused, DNS, unreachable).
    Connect(ErrorChain),
    /// The connect, the request or the response body took too long.
    Timeout(Timeout),
    /// TLS handshake or certificate verification failed, or TLS could not be set up.
    Tls(TlsFailure),
    /// Any other transport error (connection reset, closed without answer…).
    Transport(Transport),
    /// A status other than 200 (redirects are not followed and land here).
    Status(u16),
    /// 200 with a body that is not JSON.
    NotJson,
    /// 200 JSON whose shape the operation cannot use (no `result`, `error`, non-object…).
    Malformed(Malformed),
    /// The settings for the domain are unusable (NULL secret or URL, a domain not served…).
    Misconfigured(Misconfigured),
    /// The backend's circuit breaker is open: the call was skipped.
    CircuitOpen,
    /// The caller's own time budget (`timeout=` of a PAM call) was used up before the
    /// request could start. Says nothing about the backend, so the cache's unreachable path
    /// does not apply.
    BudgetUsedUp,
    /// The PAM module's `socket=` mode: xcauthd could not be asked, or it could not answer
    /// (its own reason is inside).
    Daemon(DaemonCause),
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
            Unavailable::Daemon(why) => write!(f, "{why}"),
        }
    }
}

/// What the HTTP library reported about a failed exchange: its error and the chain of its
/// causes, as text. It names the URL and the cause, never a request or response body.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ErrorChain(String);

impl ErrorChain {
    /// The library's words, as they are to be logged.
    pub fn new(text: impl Into<String>) -> Self {
        Self(text.into())
    }
}

impl fmt::Display for ErrorChain {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.0)
    }
}

/// What took too long.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Timeout {
    /// The connect or the request timed out (the HTTP library's words).
    Exchange(ErrorChain),
    /// The response body trickled in past the request's deadline.
    SlowBody,
}

impl fmt::Display for Timeout {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Timeout::Exchange(e) => write!(f, "{e}"),
            Timeout::SlowBody => f.write_str("response body too slow"),
        }
    }
}

/// Why TLS failed.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum TlsFailure {
    /// The handshake with the backend failed: the cause in plain words, then the library's.
    Handshake {
        /// What went wrong.
        cause: TlsCause,
        /// The HTTP library's words.
        chain: ErrorChain,
    },
    /// The HTTP client (its TLS configuration) could not be set up.
    Setup(String),
}

impl fmt::Display for TlsFailure {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            TlsFailure::Handshake { cause, chain } => write!(f, "{cause}; {chain}"),
            TlsFailure::Setup(e) => write!(f, "cannot set up the HTTP client: {e}"),
        }
    }
}

/// What was wrong in a TLS handshake, for the administrator reading the log.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum TlsCause {
    /// The certificate has expired.
    Expired,
    /// The certificate is not valid yet.
    NotValidYet,
    /// The certificate is not valid for the URL's host name.
    WrongName,
    /// The certificate is not signed by a trusted CA.
    UnknownIssuer,
    /// The certificate is revoked.
    Revoked,
    /// The certificate's signature is bad.
    BadSignature,
    /// The certificate was refused for another reason.
    CertificateRefused,
    /// The other side does not speak TLS on this port.
    NotTls,
    /// The backend aborted the handshake.
    Aborted,
    /// Any other handshake failure.
    Failed,
}

impl fmt::Display for TlsCause {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match self {
            TlsCause::Expired => "the backend's certificate has expired",
            TlsCause::NotValidYet => {
                "the backend's certificate is not valid yet (check the clocks)"
            }
            TlsCause::WrongName => {
                "the backend's certificate is not valid for the host name in the url"
            }
            TlsCause::UnknownIssuer => {
                "the backend's certificate is not signed by a trusted CA (self-signed, or a \
                 private CA that is not in ca-file=)"
            }
            TlsCause::Revoked => "the backend's certificate is revoked",
            TlsCause::BadSignature => "the backend's certificate has a bad signature",
            TlsCause::CertificateRefused => "the backend's certificate was refused",
            TlsCause::NotTls => "the backend does not speak TLS on this port (plain http?)",
            TlsCause::Aborted => "the backend aborted the TLS handshake",
            TlsCause::Failed => "the TLS handshake failed",
        })
    }
}

/// A transport failure other than connect, timeout and TLS.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Transport {
    /// The exchange failed (connection reset, closed without an answer…).
    Exchange(ErrorChain),
    /// Reading the response body failed.
    ReadingBody(ErrorChain),
}

impl fmt::Display for Transport {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Transport::Exchange(e) => write!(f, "{e}"),
            Transport::ReadingBody(e) => write!(f, "reading the response: {e}"),
        }
    }
}

/// What is wrong with a `200` answer's shape.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Malformed {
    /// The JSON is not an object.
    NotObject,
    /// No `result`.
    NoResult,
    /// An empty (falsy) `result`.
    EmptyResult,
    /// `result` is `error`.
    ReportedError,
    /// `result` is not `success` where only that answers the question.
    NotSuccess,
    /// `data` is missing or not an object.
    NoData,
    /// `data.isUser` is missing.
    NoIsUser,
    /// `data.isUser` holds a value that is neither yes nor no.
    IsUserValue,
    /// No `data.sharedRoster`.
    NoSharedRoster,
    /// The body is larger than the client reads; it was not parsed.
    TooLarge {
        /// The limit, in MiB.
        limit_mib: u64,
    },
}

impl fmt::Display for Malformed {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Malformed::NotObject => f.write_str("response is not a JSON object"),
            Malformed::NoResult => f.write_str("no result in response"),
            Malformed::EmptyResult => f.write_str("empty result in response"),
            Malformed::ReportedError => f.write_str("backend reported an error"),
            Malformed::NotSuccess => f.write_str("result is not success"),
            Malformed::NoData => f.write_str("data missing or not an object"),
            Malformed::NoIsUser => f.write_str("isUser missing"),
            Malformed::IsUserValue => f.write_str("isUser has an unexpected value"),
            Malformed::NoSharedRoster => f.write_str("no data.sharedRoster in response"),
            Malformed::TooLarge { limit_mib } => {
                write!(
                    f,
                    "response body larger than the {limit_mib} MiB limit; not parsed"
                )
            }
        }
    }
}

/// What is wrong with the settings that should serve a domain. The domain is kept as it was
/// asked for and shown log-safe.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Misconfigured {
    /// Neither a `domains` row nor the global settings (`served-domains`) serve it.
    NotServed {
        /// The domain.
        domain: String,
    },
    /// The `domains` table could not be read (so whether a row exists is unknown).
    DomainsUnreadable {
        /// The domain.
        domain: String,
        /// The database's reason.
        error: String,
    },
    /// The domain's row has a NULL or empty `authsecret`.
    NoSecret {
        /// The domain.
        domain: String,
    },
    /// The domain's row has a NULL or blank `authurl`.
    NoUrl {
        /// The domain.
        domain: String,
    },
    /// The domain's row has an `authurl` that is no usable backend URL.
    BadUrl {
        /// The domain.
        domain: String,
        /// Why.
        error: UrlError,
    },
    /// The domain's row points at plain http to a host other than loopback, and
    /// `allow-insecure-http` is not set.
    InsecureUrl {
        /// The domain.
        domain: String,
        /// The row's URL.
        url: BackendUrl,
    },
}

impl fmt::Display for Misconfigured {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Misconfigured::NotServed { domain } => {
                write!(
                    f,
                    "domain {} is not served here",
                    logsafe::clean(domain, 128)
                )
            }
            Misconfigured::DomainsUnreadable { domain, error } => write!(
                f,
                "cannot read the per-domain settings for {}: {error}",
                logsafe::clean(domain, 128)
            ),
            Misconfigured::NoSecret { domain } => {
                write!(
                    f,
                    "domains row for {domain:?} has no (or an empty) authsecret"
                )
            }
            Misconfigured::NoUrl { domain } => {
                write!(f, "domains row for {domain:?} has no authurl")
            }
            Misconfigured::BadUrl { domain, error } => {
                write!(
                    f,
                    "domains row for {domain:?} has an unusable authurl: {error}"
                )
            }
            Misconfigured::InsecureUrl { domain, url } => write!(
                f,
                "backend url {url} for {} is plain http to a host other than loopback; \
                 refused (use https, or set allow-insecure-http)",
                logsafe::clean(domain, 128)
            ),
        }
    }
}

/// Why xcauthd gave the PAM module (`socket=`) no answer.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum DaemonCause {
    /// xcauthd could not be asked, or the exchange broke off (the socket's checks, connect,
    /// send, read): the module's own log-safe reason.
    NotAsked(String),
    /// xcauthd answered "unavailable" with its own log-safe reason, as the pam socket
    /// carries it.
    Said(String),
    /// xcauthd sent a reply that belongs to another question (the reply, shown log-safe).
    UnexpectedReply(String),
}

impl fmt::Display for DaemonCause {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            DaemonCause::NotAsked(why) => f.write_str(why),
            DaemonCause::Said(why) => write!(f, "xcauthd: {why}"),
            DaemonCause::UnexpectedReply(reply) => write!(f, "unexpected reply {reply}"),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_log_keeps_its_words() {
        let chain = || ErrorChain::new("error sending request");
        let cases = [
            (
                Unavailable::Connect(chain()),
                "cannot connect: error sending request",
            ),
            (
                Unavailable::Timeout(Timeout::SlowBody),
                "timeout: response body too slow",
            ),
            (
                Unavailable::Tls(TlsFailure::Handshake {
                    cause: TlsCause::Expired,
                    chain: chain(),
                }),
                "TLS failure: the backend's certificate has expired; error sending request",
            ),
            (
                Unavailable::Transport(Transport::ReadingBody(ErrorChain::new("reset"))),
                "transport error: reading the response: reset",
            ),
            (
                Unavailable::Malformed(Malformed::TooLarge { limit_mib: 16 }),
                "malformed response: response body larger than the 16 MiB limit; not parsed",
            ),
            (
                Unavailable::Misconfigured(Misconfigured::NotServed {
                    domain: "a\nb.org".into(),
                }),
                "domain misconfigured: domain a?b.org is not served here",
            ),
            (
                Unavailable::Daemon(DaemonCause::Said("HTTP status 503".into())),
                "xcauthd: HTTP status 503",
            ),
        ];
        for (why, line) in cases {
            assert_eq!(why.to_string(), line);
        }
    }
}
