//! How a login was decided, and what a caller asks of a login.

use std::fmt;

use super::Unavailable;

/// How an accepted login was vouched for.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Via {
    /// A valid time-limited token.
    Token,
    /// The cache, within its normal TTLs (no backend call).
    Cache,
    /// The backend said `success`.
    Backend,
    /// The backend was unavailable and the cache vouched under the unreachable TTL.
    UnreachableCache,
}

impl Via {
    /// The one word every log line uses for it (`via=…` in the PAM module, `accepted via …` in
    /// the engine's and the daemon's lines): no spaces.
    pub fn as_str(self) -> &'static str {
        match self {
            Via::Token => "token",
            Via::Cache => "cache",
            Via::Backend => "backend",
            Via::UnreachableCache => "cache_backend_unreachable",
        }
    }
}

/// The outcome of `auth`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum AuthDecision {
    /// Log in.
    Accepted(Via),
    /// Wrong password or unknown user, as the backend said (or an empty
    /// user/password, which the backend would reject anyway).
    Rejected,
    /// The backend could not answer and the cache did not vouch.
    Unavailable(Unavailable),
}

impl AuthDecision {
    /// True only for [`AuthDecision::Accepted`].
    pub fn is_accepted(&self) -> bool {
        matches!(self, AuthDecision::Accepted(_))
    }
}

impl fmt::Display for AuthDecision {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            AuthDecision::Accepted(via) => write!(f, "accepted via {}", via.as_str()),
            AuthDecision::Rejected => f.write_str("rejected (wrong password or unknown user)"),
            AuthDecision::Unavailable(why) => write!(f, "unavailable ({why})"),
        }
    }
}

/// How the name a client typed must relate to the Nextcloud account that
/// logged in. Nextcloud looks accounts up case-insensitively and tries
/// `user@domain` before `user`, so without a rule one account answers to many
/// names (`ALICE`, `alice@other.example`…).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum NameMatch {
    /// The user part must be the account's uid exactly, or `user@domain` must
    /// be (domains compare case-insensitively). For mail and PAM, where the
    /// login name is used verbatim afterwards (Postfix sender maps, local
    /// account names).
    #[default]
    Exact,
    /// As `Exact`, but ignoring case: for XMPP, where the server has already
    /// case-folded the name (nodeprep) and JIDs are case-insensitive.
    IgnoreCase,
}

impl NameMatch {
    /// Does the login name `user@domain` name the account `uid`?
    pub fn matches(self, user: &str, domain: &str, uid: &str) -> bool {
        let same = |a: &str, b: &str| match self {
            NameMatch::Exact => a == b,
            NameMatch::IgnoreCase => a.to_lowercase() == b.to_lowercase(),
        };
        if same(user, uid) {
            return true;
        }
        match uid.rsplit_once('@') {
            Some((u, d)) => same(user, u) && d.eq_ignore_ascii_case(domain),
            None => false,
        }
    }
}

/// What a caller asks of a login (the engine's `login`).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub struct LoginRules<'a> {
    /// How the typed name must match the account that logged in.
    pub names: NameMatch,
    /// The caller needs to know which Nextcloud account logged in (for
    /// `group=`): skip the credential cache, which does not record it.
    pub need_uid: bool,
    /// Where the login comes from, when the caller knows (PAM's `PAM_RHOST`, the
    /// pam socket's request): the throttle also counts failures per address.
    pub remote: Option<&'a str>,
}

/// The outcome of a login (the engine's `login`): the decision and, when known, the
/// Nextcloud account that logged in.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Login {
    /// The decision.
    pub decision: AuthDecision,
    /// The uid of the account that logged in: the backend's `data.uid`, or the
    /// user of a valid token (tokens are minted for the account's own JID).
    /// `None` after a cache hit or when the backend did not name the account.
    pub uid: Option<String>,
}
