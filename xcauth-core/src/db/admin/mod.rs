//! The administrator's operations on the database, as library functions the
//! `xcauthd` CLI calls and prints: per-domain settings (which xcauth 2 left to
//! `sqlite3`), cache entries, and the original's GDPR helpers `xcdeluser`,
//! `xcdelgroup`, `xcdelhost` and `xcrefreshroster` (docs/xcauth2.md §3.5).
//!
//! Each operation validates its input first and refuses anything ambiguous
//! (a jid without exactly one `@`, a domain with `@` or `%`, control
//! characters or surrounding whitespace) with a message saying what was
//! wrong; runs in one transaction; and returns a report whose `Display` is
//! what the CLI prints, with counts of what it changed. Nothing here ever
//! shows a secret or a password hash.
//!
//! `xcdelhost` matches jids with `LIKE '%@DOMAIN'` like the original (so
//! ASCII case-insensitively), but with `%`, `_` and `\` in the domain escaped:
//! `a_b.example` never matches `axb.example`.

use std::fmt;

use super::DbError;
use crate::logsafe;
use crate::secret::Secret;

mod cache_entries;
mod domain_settings;
mod gdpr;
mod lockouts;
#[cfg(test)]
mod tests;

pub use self::cache_entries::{purge_cache, show_cache, CacheEntryInfo, CachePurge};
pub use self::domain_settings::{
    add_domain, change_domain, list_domains, remove_domain, DomainAction, DomainChange,
    DomainListing, DomainReport, SecretState,
};
pub use self::gdpr::{
    delete_group, delete_host, delete_user, refresh_roster, GroupDeletion, HostDeletion,
    RosterRefresh, UserDeletion,
};
pub use self::lockouts::{clear_lockouts, list_lockouts, throttle_key, ThrottleClear, ThrottleRow};

/// Why an admin operation did nothing.
#[derive(Debug)]
#[non_exhaustive]
pub enum AdminError {
    /// The input is malformed or ambiguous; the message says how.
    Invalid(String),
    /// The domain, jid or group to change or remove does not exist.
    NotFound(String),
    /// The domain to add already exists.
    AlreadyExists(String),
    /// The database failed.
    Db(DbError),
}

impl fmt::Display for AdminError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            AdminError::Invalid(m) | AdminError::NotFound(m) | AdminError::AlreadyExists(m) => {
                f.write_str(m)
            }
            AdminError::Db(e) => e.fmt(f),
        }
    }
}

impl std::error::Error for AdminError {
    fn source(&self) -> Option<&(dyn std::error::Error + 'static)> {
        match self {
            AdminError::Db(e) => Some(e),
            _ => None,
        }
    }
}

impl From<DbError> for AdminError {
    fn from(e: DbError) -> Self {
        AdminError::Db(e)
    }
}

/// Shows a value for the terminal: `<NULL>`, `""` for empty, else the text
/// with control characters replaced.
fn shown(value: Option<&str>) -> String {
    match value {
        None => "<NULL>".to_owned(),
        Some("") => "\"\"".to_owned(),
        Some(v) => logsafe::clean(v, 1024).into_owned(),
    }
}

fn invalid(msg: String) -> AdminError {
    AdminError::Invalid(msg)
}

/// A domain name: non-empty, no `@`, `%`, whitespace or control characters.
fn check_domain(what: &str, domain: &str) -> Result<(), AdminError> {
    let show = logsafe::clean(domain, 256);
    if domain.is_empty() {
        return Err(invalid(format!("{what} is empty")));
    }
    if domain.contains('@') {
        return Err(invalid(format!(
            "{what} {show:?} contains '@': give a domain, not a jid"
        )));
    }
    if domain.contains('%') {
        return Err(invalid(format!(
            "{what} {show:?} contains '%', which no domain contains"
        )));
    }
    if domain.chars().any(|c| c.is_whitespace() || c.is_control()) {
        return Err(invalid(format!(
            "{what} {show:?} contains whitespace or control characters"
        )));
    }
    Ok(())
}

/// `local@domain` with exactly one `@` and both parts non-empty; returns the parts.
fn split_jid<'a>(what: &str, jid: &'a str) -> Result<(&'a str, &'a str), AdminError> {
    let show = logsafe::clean(jid, 256);
    let mut parts = jid.split('@');
    let (Some(local), Some(domain), None) = (parts.next(), parts.next(), parts.next()) else {
        return Err(invalid(format!(
            "{what} {show:?} must contain exactly one '@' (as in user@example.org)"
        )));
    };
    if local.is_empty() {
        return Err(invalid(format!(
            "{what} {show:?} has nothing before the '@'"
        )));
    }
    if local.chars().any(char::is_control) || local.trim() != local {
        return Err(invalid(format!(
            "{what} {show:?} has control characters or surrounding whitespace"
        )));
    }
    check_domain(&format!("the domain of {what} {show:?}"), domain)?;
    Ok((local, domain))
}

fn check_url(url: &str) -> Result<(), AdminError> {
    let lower = url.to_ascii_lowercase();
    if !(lower.starts_with("https://") || lower.starts_with("http://")) {
        return Err(invalid(format!(
            "authurl {:?} must start with https:// (or http://)",
            logsafe::clean(url, 256)
        )));
    }
    if url.chars().any(|c| c.is_whitespace() || c.is_control()) {
        return Err(invalid(
            "authurl contains whitespace or control characters".to_owned(),
        ));
    }
    Ok(())
}

fn check_secret(secret: &Secret) -> Result<(), AdminError> {
    if secret.is_empty() {
        return Err(invalid("authsecret is empty".to_owned()));
    }
    if secret.expose().chars().any(char::is_control) {
        return Err(invalid("authsecret contains control characters".to_owned()));
    }
    Ok(())
}

fn check_authdomain(authdomain: Option<&str>) -> Result<(), AdminError> {
    // `""` is allowed: the backend then receives `domain=` (empty), as in xcauth 2.
    match authdomain {
        Some(d) if d.contains('@') || d.chars().any(|c| c.is_whitespace() || c.is_control()) => {
            Err(invalid(format!(
                "authdomain {:?} contains '@', whitespace or control characters",
                logsafe::clean(d, 256)
            )))
        }
        _ => Ok(()),
    }
}

/// `LIKE` pattern for "ends in `@domain`", escaping `\`, `%` and `_` (use with `ESCAPE '\'`).
fn at_domain_pattern(domain: &str) -> String {
    let mut p = String::with_capacity(domain.len() + 4);
    p.push_str("%@");
    for c in domain.chars() {
        if matches!(c, '\\' | '%' | '_') {
            p.push('\\');
        }
        p.push(c);
    }
    p
}
