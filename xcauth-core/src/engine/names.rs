//! Whether the account a backend's acceptance names is the one the typed name spells.
//! Nextcloud looks accounts up case-insensitively and tries `user@domain` before `user`, so
//! without this check one account would answer to many names.

use crate::vocab::NameMatch;

/// What the account that logged in says about the typed name.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(super) enum Spelling {
    /// The name spells the account exactly: the cache may remember the password.
    Exact,
    /// The name matches the account under the caller's rule, but not exactly (another case):
    /// accepted, never cached. The cache cannot re-check the name, so a case-folded match
    /// must not teach it a second spelling.
    Matches,
    /// The password belongs to an account the name does not spell: refused.
    Foreign,
    /// The backend did not say which account logged in and the caller's rule needs to know
    /// (exact names): refused, since one account would answer to every spelling.
    Unknown,
    /// The backend did not say which account logged in and the caller's rule lets that pass:
    /// accepted, never cached.
    Unnamed,
}

/// How the account `uid` (when the backend named it) relates to the name `user` typed in
/// `domain`. The backend was asked for `user@authdomain` (a `domains` row may map the XMPP
/// domain to another one), then `user`: the name may spell the account in either domain.
pub(super) fn spelling(
    rule: NameMatch,
    user: &str,
    domain: &str,
    authdomain: &str,
    uid: Option<&str>,
) -> Spelling {
    let spells = |rule: NameMatch, uid: &str| {
        rule.matches(user, domain, uid) || rule.matches(user, authdomain, uid)
    };
    match uid {
        Some(uid) if spells(NameMatch::Exact, uid) => Spelling::Exact,
        Some(uid) if spells(rule, uid) => Spelling::Matches,
        Some(_) => Spelling::Foreign,
        None if rule == NameMatch::Exact => Spelling::Unknown,
        None => Spelling::Unnamed,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_account_is_spelled_in_the_xmpp_domain_or_the_authdomain() {
        let exact = |uid| spelling(NameMatch::Exact, "alice", "x.org", "cloud.org", Some(uid));
        assert_eq!(exact("alice"), Spelling::Exact);
        assert_eq!(exact("alice@X.org"), Spelling::Exact);
        assert_eq!(exact("alice@cloud.org"), Spelling::Exact);
        assert_eq!(exact("alice@other.org"), Spelling::Foreign);
        assert_eq!(exact("Alice"), Spelling::Foreign);
        let folded = |uid| spelling(NameMatch::IgnoreCase, "alice", "x.org", "x.org", Some(uid));
        assert_eq!(folded("alice"), Spelling::Exact);
        assert_eq!(folded("Alice"), Spelling::Matches);
        assert_eq!(folded("bob"), Spelling::Foreign);
    }

    #[test]
    fn an_unnamed_account_passes_only_where_case_is_ignored() {
        assert_eq!(
            spelling(NameMatch::Exact, "a", "d", "d", None),
            Spelling::Unknown
        );
        assert_eq!(
            spelling(NameMatch::IgnoreCase, "a", "d", "d", None),
            Spelling::Unnamed
        );
    }
}
