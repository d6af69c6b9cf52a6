//! The administrator's operations on the database, as library functions the
//! `xcauthd` CLI calls and prints: per-domain settings (which xcauth 2 left to
//! `sqlite3`), cache entries, and the original's GDPR helpers `xcdeluser`,
//! `xcdelgroup`, `xcdelhost` and `xcrefreshroster` (xcauth-behaviour.md 5.6).
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

use rusqlite::{params, OptionalExtension};

use super::domains::text_column;
use super::time::parse_micros;
use super::{format_timestamp, from_unix_micros, Db, DbError};
use crate::logsafe;
use crate::secret::Secret;

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

/// What happened to a `domains` row.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum DomainAction {
    /// A row was inserted.
    Added,
    /// Fields of a row were updated.
    Changed,
    /// A row was deleted.
    Removed,
}

/// The result of adding, changing or removing a domain.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct DomainReport {
    /// What was done.
    pub action: DomainAction,
    /// The XMPP domain.
    pub xmppdomain: String,
    /// The columns written (`authsecret`, `authurl`, `authdomain`).
    pub fields: Vec<&'static str>,
}

impl fmt::Display for DomainReport {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let d = logsafe::clean(&self.xmppdomain, 256);
        match self.action {
            DomainAction::Added => write!(f, "added domain {d} ({})", self.fields.join(", ")),
            DomainAction::Changed => write!(f, "changed domain {d}: {}", self.fields.join(", ")),
            DomainAction::Removed => write!(f, "removed domain {d}"),
        }
    }
}

/// Adds a `domains` row. `authdomain` `None` stores NULL (the XMPP domain is
/// sent); `Some("")` sends an empty `domain=`. Refuses an existing domain.
pub fn add_domain(
    db: &Db,
    xmppdomain: &str,
    secret: &Secret,
    url: &str,
    authdomain: Option<&str>,
) -> Result<DomainReport, AdminError> {
    check_domain("the XMPP domain", xmppdomain)?;
    check_secret(secret)?;
    check_url(url)?;
    check_authdomain(authdomain)?;
    let inserted = db.transaction(|tx| {
        tx.execute(
            "INSERT OR IGNORE INTO domains (xmppdomain, authsecret, authurl, authdomain) VALUES (?1, ?2, ?3, ?4)",
            params![xmppdomain, secret.expose(), url, authdomain],
        )
    })?;
    if inserted == 0 {
        return Err(AdminError::AlreadyExists(format!(
            "domain {} already exists; use change to modify it",
            logsafe::clean(xmppdomain, 256)
        )));
    }
    Ok(DomainReport {
        action: DomainAction::Added,
        xmppdomain: xmppdomain.to_owned(),
        fields: vec!["authsecret", "authurl", "authdomain"],
    })
}

/// The fields to change; `None` leaves a field as it is.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct DomainChange {
    /// New `authsecret`.
    pub secret: Option<Secret>,
    /// New `authurl`.
    pub url: Option<String>,
    /// New `authdomain`: `Some(None)` sets NULL (send the XMPP domain).
    pub authdomain: Option<Option<String>>,
}

/// Changes only the given fields of an existing `domains` row.
pub fn change_domain(
    db: &Db,
    xmppdomain: &str,
    change: &DomainChange,
) -> Result<DomainReport, AdminError> {
    check_domain("the XMPP domain", xmppdomain)?;
    if let Some(s) = &change.secret {
        check_secret(s)?;
    }
    if let Some(u) = &change.url {
        check_url(u)?;
    }
    if let Some(a) = &change.authdomain {
        check_authdomain(a.as_deref())?;
    }
    let mut fields = Vec::new();
    if change.secret.is_some() {
        fields.push("authsecret");
    }
    if change.url.is_some() {
        fields.push("authurl");
    }
    if change.authdomain.is_some() {
        fields.push("authdomain");
    }
    if fields.is_empty() {
        return Err(invalid(
            "nothing to change: give a secret, url or authdomain".to_owned(),
        ));
    }
    let found = db.transaction(|tx| {
        let exists = tx
            .query_row(
                "SELECT 1 FROM domains WHERE xmppdomain = ?1",
                [xmppdomain],
                |_| Ok(()),
            )
            .optional()?
            .is_some();
        if !exists {
            return Ok(false);
        }
        if let Some(s) = &change.secret {
            tx.execute(
                "UPDATE domains SET authsecret = ?2 WHERE xmppdomain = ?1",
                params![xmppdomain, s.expose()],
            )?;
        }
        if let Some(u) = &change.url {
            tx.execute(
                "UPDATE domains SET authurl = ?2 WHERE xmppdomain = ?1",
                params![xmppdomain, u],
            )?;
        }
        if let Some(a) = &change.authdomain {
            tx.execute(
                "UPDATE domains SET authdomain = ?2 WHERE xmppdomain = ?1",
                params![xmppdomain, a],
            )?;
        }
        Ok(true)
    })?;
    if !found {
        return Err(not_found_domain(xmppdomain));
    }
    Ok(DomainReport {
        action: DomainAction::Changed,
        xmppdomain: xmppdomain.to_owned(),
        fields,
    })
}

fn not_found_domain(xmppdomain: &str) -> AdminError {
    AdminError::NotFound(format!(
        "no domain {} in the domains table (names are case-sensitive); use add",
        logsafe::clean(xmppdomain, 256)
    ))
}

/// Removes a `domains` row (exact, case-sensitive name).
pub fn remove_domain(db: &Db, xmppdomain: &str) -> Result<DomainReport, AdminError> {
    check_domain("the XMPP domain", xmppdomain)?;
    let n =
        db.transaction(|tx| tx.execute("DELETE FROM domains WHERE xmppdomain = ?1", [xmppdomain]))?;
    if n == 0 {
        return Err(not_found_domain(xmppdomain));
    }
    Ok(DomainReport {
        action: DomainAction::Removed,
        xmppdomain: xmppdomain.to_owned(),
        fields: Vec::new(),
    })
}

/// Whether a secret is stored; the value itself is never read into a listing.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum SecretState {
    /// A non-empty secret.
    Set,
    /// The empty string.
    Empty,
    /// NULL: the row is misconfigured.
    Null,
}

/// One `domains` row for display, without its secret.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct DomainListing {
    /// `xmppdomain`.
    pub xmppdomain: String,
    /// Whether `authsecret` is set.
    pub secret: SecretState,
    /// `authurl`.
    pub url: Option<String>,
    /// `authdomain`.
    pub authdomain: Option<String>,
}

impl fmt::Display for DomainListing {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let secret = match self.secret {
            SecretState::Set => "<set>",
            SecretState::Empty => "\"\"",
            SecretState::Null => "<NULL>",
        };
        write!(
            f,
            "{}\tauthsecret={secret}\tauthurl={}\tauthdomain={}",
            shown(Some(&self.xmppdomain)),
            shown(self.url.as_deref()),
            shown(self.authdomain.as_deref()),
        )
    }
}

/// Every `domains` row, sorted by name, secrets replaced by their state.
pub fn list_domains(db: &Db) -> Result<Vec<DomainListing>, AdminError> {
    Ok(db.run(|c| {
        let mut stmt = c.prepare(
            "SELECT xmppdomain, CASE WHEN authsecret IS NULL THEN 0 WHEN authsecret = '' THEN 1 ELSE 2 END, \
             authurl, authdomain FROM domains ORDER BY xmppdomain",
        )?;
        let rows = stmt.query_map([], |r| {
            Ok(DomainListing {
                xmppdomain: text_column(r, 0)?.unwrap_or_default(),
                secret: match r.get::<_, i64>(1)? {
                    0 => SecretState::Null,
                    1 => SecretState::Empty,
                    _ => SecretState::Set,
                },
                url: text_column(r, 2)?,
                authdomain: text_column(r, 3)?,
            })
        })?;
        rows.collect()
    })?)
}

/// A cache entry without its hash.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct CacheEntryInfo {
    /// The jid.
    pub jid: String,
    /// Whether a password hash is stored.
    pub has_hash: bool,
    /// `firstauth` (UTC, normalised; unparseable text is shown as stored).
    pub firstauth: Option<String>,
    /// `remoteauth`.
    pub remoteauth: Option<String>,
    /// `anyauth`.
    pub anyauth: Option<String>,
}

impl fmt::Display for CacheEntryInfo {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(
            f,
            "{}\tpwhash={}\tfirstauth={}\tremoteauth={}\tanyauth={}",
            shown(Some(&self.jid)),
            if self.has_hash { "<set>" } else { "<NULL>" },
            shown(self.firstauth.as_deref()),
            shown(self.remoteauth.as_deref()),
            shown(self.anyauth.as_deref()),
        )
    }
}

fn normalised_time(row: &rusqlite::Row<'_>, idx: usize) -> rusqlite::Result<Option<String>> {
    Ok(text_column(row, idx)?.map(|t| match parse_micros(&t) {
        Some(us) => format_timestamp(from_unix_micros(us)),
        None => t,
    }))
}

/// The `authcache` entry of `jid` (times in UTC), or `None`.
pub fn show_cache(db: &Db, jid: &str) -> Result<Option<CacheEntryInfo>, AdminError> {
    split_jid("the jid", jid)?;
    Ok(db.run(|c| {
        c.query_row(
            "SELECT pwhash IS NOT NULL, firstauth, remoteauth, anyauth FROM authcache WHERE jid = ?1",
            [jid],
            |r| {
                Ok(CacheEntryInfo {
                    jid: jid.to_owned(),
                    has_hash: r.get(0)?,
                    firstauth: normalised_time(r, 1)?,
                    remoteauth: normalised_time(r, 2)?,
                    anyauth: normalised_time(r, 3)?,
                })
            },
        )
        .optional()
    })?)
}

/// The result of [`purge_cache`].
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct CachePurge {
    /// The jid.
    pub jid: String,
    /// `authcache` rows deleted (0 or 1).
    pub authcache: usize,
}

impl fmt::Display for CachePurge {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let jid = shown(Some(&self.jid));
        if self.authcache == 0 {
            write!(f, "no cache entry for {jid}; nothing deleted")
        } else {
            write!(f, "deleted the cache entry for {jid}")
        }
    }
}

/// Deletes the `authcache` entry of `jid`: the next login goes to the backend.
/// (A `cache-storage=memory` cache lives in the daemon's memory and is not touched.)
pub fn purge_cache(db: &Db, jid: &str) -> Result<CachePurge, AdminError> {
    split_jid("the jid", jid)?;
    let n = db.transaction(|tx| tx.execute("DELETE FROM authcache WHERE jid = ?1", [jid]))?;
    Ok(CachePurge {
        jid: jid.to_owned(),
        authcache: n,
    })
}

fn rows(n: usize, table: &str) -> String {
    format!("{n} {table} row{}", if n == 1 { "" } else { "s" })
}

/// The result of [`delete_user`] (`xcdeluser`).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct UserDeletion {
    /// The jid.
    pub jid: String,
    /// `rosterinfo` rows deleted.
    pub rosterinfo: usize,
    /// `authcache` rows deleted.
    pub authcache: usize,
}

impl fmt::Display for UserDeletion {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(
            f,
            "deleted user {}: {}, {} (group memberships are updated at the next login of a member)",
            shown(Some(&self.jid)),
            rows(self.rosterinfo, "rosterinfo"),
            rows(self.authcache, "authcache"),
        )
    }
}

/// `xcdeluser JID`: deletes the `rosterinfo` and `authcache` rows of `jid`.
pub fn delete_user(db: &Db, jid: &str) -> Result<UserDeletion, AdminError> {
    split_jid("the jid", jid)?;
    let (rosterinfo, authcache) = db.transaction(|tx| {
        let r = tx.execute("DELETE FROM rosterinfo WHERE jid = ?1", [jid])?;
        let a = tx.execute("DELETE FROM authcache WHERE jid = ?1", [jid])?;
        Ok((r, a))
    })?;
    Ok(UserDeletion {
        jid: jid.to_owned(),
        rosterinfo,
        authcache,
    })
}

/// The result of [`delete_group`] (`xcdelgroup`). The caller runs
/// `ejabberdctl srg_delete GROUP DOMAIN` with [`Self::group`] and [`Self::domain`].
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct GroupDeletion {
    /// The group name (before the `@`).
    pub group: String,
    /// The group's host (after the `@`).
    pub domain: String,
    /// `rostergroups` rows deleted.
    pub rostergroups: usize,
}

impl fmt::Display for GroupDeletion {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(
            f,
            "deleted group {}@{}: {}",
            shown(Some(&self.group)),
            shown(Some(&self.domain)),
            rows(self.rostergroups, "rostergroups"),
        )
    }
}

/// `xcdelgroup GROUP@DOMAIN`: deletes the `rostergroups` row. Group names
/// as stored never contain `@` (the roster sync removes it), so exactly one
/// `@` is required; the group part may contain spaces.
pub fn delete_group(db: &Db, group_at_domain: &str) -> Result<GroupDeletion, AdminError> {
    let show = logsafe::clean(group_at_domain, 256);
    let Some((group, domain)) = group_at_domain.split_once('@') else {
        return Err(invalid(format!("group {show:?} must be GROUP@DOMAIN")));
    };
    if domain.contains('@') {
        return Err(invalid(format!(
            "group {show:?} must contain exactly one '@' (GROUP@DOMAIN)"
        )));
    }
    if group.is_empty() || group.chars().any(char::is_control) {
        return Err(invalid(format!(
            "group {show:?} has an empty name or control characters"
        )));
    }
    check_domain(&format!("the domain of group {show:?}"), domain)?;
    let n = db.transaction(|tx| {
        tx.execute(
            "DELETE FROM rostergroups WHERE groupname = ?1",
            [group_at_domain],
        )
    })?;
    Ok(GroupDeletion {
        group: group.to_owned(),
        domain: domain.to_owned(),
        rostergroups: n,
    })
}

/// The result of [`delete_host`] (`xcdelhost`).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct HostDeletion {
    /// The domain.
    pub domain: String,
    /// `rostergroups` rows deleted.
    pub rostergroups: usize,
    /// `rosterinfo` rows deleted.
    pub rosterinfo: usize,
    /// `authcache` rows deleted.
    pub authcache: usize,
    /// `domains` rows deleted (0 or 1).
    pub domains: usize,
}

impl fmt::Display for HostDeletion {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(
            f,
            "deleted host {}: {}, {}, {}, {}",
            shown(Some(&self.domain)),
            rows(self.rostergroups, "rostergroups"),
            rows(self.rosterinfo, "rosterinfo"),
            rows(self.authcache, "authcache"),
            rows(self.domains, "domains"),
        )
    }
}

/// `xcdelhost DOMAIN`: deletes every group, roster entry and cache entry
/// ending in `@DOMAIN` (ASCII case-insensitive, like the original's `LIKE`;
/// wildcards in `DOMAIN` are escaped), and the `domains` row (exact name).
pub fn delete_host(db: &Db, domain: &str) -> Result<HostDeletion, AdminError> {
    check_domain("the domain", domain)?;
    let pattern = at_domain_pattern(domain);
    let (rostergroups, rosterinfo, authcache, domains) = db.transaction(|tx| {
        let g = tx.execute(
            "DELETE FROM rostergroups WHERE groupname LIKE ?1 ESCAPE '\\'",
            [&pattern],
        )?;
        let r = tx.execute(
            "DELETE FROM rosterinfo WHERE jid LIKE ?1 ESCAPE '\\'",
            [&pattern],
        )?;
        let a = tx.execute(
            "DELETE FROM authcache WHERE jid LIKE ?1 ESCAPE '\\'",
            [&pattern],
        )?;
        let d = tx.execute("DELETE FROM domains WHERE xmppdomain = ?1", [domain])?;
        Ok((g, r, a, d))
    })?;
    Ok(HostDeletion {
        domain: domain.to_owned(),
        rostergroups,
        rosterinfo,
        authcache,
        domains,
    })
}

/// The result of [`refresh_roster`] (`xcrefreshroster`).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RosterRefresh {
    /// `rosterinfo` rows reset.
    pub rosterinfo: usize,
}

impl fmt::Display for RosterRefresh {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(
            f,
            "reset {}: the shared roster is re-synchronised at each user's next login",
            rows(self.rosterinfo, "rosterinfo")
        )
    }
}

/// `xcrefreshroster`: sets `fullname`, `grouplist` and `responsehash` to
/// NULL for every user.
pub fn refresh_roster(db: &Db) -> Result<RosterRefresh, AdminError> {
    let n = db.transaction(|tx| {
        tx.execute(
            "UPDATE rosterinfo SET fullname = NULL, grouplist = NULL, responsehash = NULL",
            [],
        )
    })?;
    Ok(RosterRefresh { rosterinfo: n })
}

#[cfg(test)]
mod tests {
    use super::*;

    fn db() -> Db {
        let db = Db::open_memory().unwrap();
        db.run(|c| {
            c.execute_batch(
                "INSERT INTO authcache (jid, pwhash, firstauth, remoteauth, anyauth) VALUES
                   ('alice@a.example', '$2b$04$abcdefghijklmnopqrstuuABCDEFGHIJKLMNOPQRSTUVWXYZ01234', '2020-01-01 10:00:00', '2020-01-02 11:00:00.250000', '2020-01-03 12:00:00'),
                   ('bob@A.EXAMPLE', 'h', NULL, NULL, NULL),
                   ('carol@a_b.example', 'h', NULL, NULL, NULL),
                   ('dave@axb.example', 'h', NULL, NULL, NULL),
                   ('eve@sub.a.example', 'h', NULL, NULL, NULL);
                 INSERT INTO rosterinfo (jid, fullname, grouplist, responsehash) VALUES
                   ('alice@a.example', 'Alice', 'g1', 'abc'),
                   ('dave@axb.example', 'Dave', 'g2', 'def');
                 INSERT INTO rostergroups (groupname, userlist) VALUES
                   ('g1@a.example', 'alice@a.example'),
                   ('Team X@a.example', 'alice@a.example'),
                   ('g2@axb.example', 'dave@axb.example');
                 INSERT INTO domains (xmppdomain, authsecret, authurl, authdomain) VALUES
                   ('a.example', 'topsecret', 'https://cloud.a/', NULL),
                   ('axb.example', '', 'https://cloud.x/', '');",
            )
        })
        .unwrap();
        db
    }

    fn count(db: &Db, sql: &str) -> i64 {
        db.run(|c| c.query_row(sql, [], |r| r.get(0))).unwrap()
    }

    #[test]
    fn domains_add_change_remove_list() {
        let db = db();
        let r = add_domain(
            &db,
            "new.example",
            &Secret::new("s3cr3t"),
            "https://n/",
            None,
        )
        .unwrap();
        assert_eq!(
            r.to_string(),
            "added domain new.example (authsecret, authurl, authdomain)"
        );
        assert!(matches!(
            add_domain(&db, "new.example", &Secret::new("x"), "https://n/", None),
            Err(AdminError::AlreadyExists(_))
        ));
        let change = DomainChange {
            url: Some("https://m/".into()),
            ..DomainChange::default()
        };
        let r = change_domain(&db, "new.example", &change).unwrap();
        assert_eq!(r.to_string(), "changed domain new.example: authurl");
        // Only the given field changed.
        let (s, u, a): (String, String, Option<String>) = db
            .run(|c| {
                c.query_row(
                    "SELECT authsecret, authurl, authdomain FROM domains WHERE xmppdomain = 'new.example'",
                    [],
                    |r| Ok((r.get(0)?, r.get(1)?, r.get(2)?)),
                )
            })
            .unwrap();
        assert_eq!((s.as_str(), u.as_str(), a), ("s3cr3t", "https://m/", None));
        let change = DomainChange {
            authdomain: Some(Some("cloud".into())),
            ..DomainChange::default()
        };
        change_domain(&db, "new.example", &change).unwrap();
        let change = DomainChange {
            authdomain: Some(None),
            ..DomainChange::default()
        };
        change_domain(&db, "new.example", &change).unwrap();

        let list: Vec<String> = list_domains(&db)
            .unwrap()
            .iter()
            .map(ToString::to_string)
            .collect();
        assert_eq!(
            list,
            [
                "a.example\tauthsecret=<set>\tauthurl=https://cloud.a/\tauthdomain=<NULL>",
                "axb.example\tauthsecret=\"\"\tauthurl=https://cloud.x/\tauthdomain=\"\"",
                "new.example\tauthsecret=<set>\tauthurl=https://m/\tauthdomain=<NULL>",
            ]
        );
        assert!(!list.concat().contains("s3cr3t") && !list.concat().contains("topsecret"));

        assert_eq!(
            remove_domain(&db, "new.example").unwrap().to_string(),
            "removed domain new.example"
        );
        assert!(matches!(
            remove_domain(&db, "new.example"),
            Err(AdminError::NotFound(_))
        ));
        assert!(matches!(
            change_domain(
                &db,
                "New.example",
                &DomainChange {
                    url: Some("https://x/".into()),
                    ..DomainChange::default()
                }
            ),
            Err(AdminError::NotFound(_))
        ));
    }

    #[test]
    fn domain_input_is_validated() {
        let db = db();
        let s = Secret::new("s");
        for bad in ["", "u@new.example", "%", "a b", "a.example\n", " a.example"] {
            assert!(
                matches!(
                    add_domain(&db, bad, &s, "https://x/", None),
                    Err(AdminError::Invalid(_))
                ),
                "{bad:?}"
            );
            assert!(
                matches!(remove_domain(&db, bad), Err(AdminError::Invalid(_))),
                "{bad:?}"
            );
            assert!(
                matches!(delete_host(&db, bad), Err(AdminError::Invalid(_))),
                "{bad:?}"
            );
        }
        assert!(matches!(
            add_domain(&db, "n.example", &Secret::new(""), "https://x/", None),
            Err(AdminError::Invalid(_))
        ));
        assert!(matches!(
            add_domain(&db, "n.example", &s, "ftp://x/", None),
            Err(AdminError::Invalid(_))
        ));
        assert!(matches!(
            add_domain(&db, "n.example", &s, "https://x/", Some("a@b")),
            Err(AdminError::Invalid(_))
        ));
        assert!(matches!(
            change_domain(&db, "a.example", &DomainChange::default()),
            Err(AdminError::Invalid(_))
        ));
        // A rejected change leaves the table as it was.
        assert_eq!(count(&db, "SELECT count(*) FROM domains"), 2);
        // An empty authdomain is legal (sends `domain=`).
        add_domain(&db, "n.example", &s, "https://x/", Some("")).unwrap();
    }

    #[test]
    fn errors_never_echo_the_secret() {
        let db = db();
        let e = add_domain(
            &db,
            "a.example",
            &Secret::new("hunter2"),
            "https://x/",
            None,
        )
        .unwrap_err();
        assert!(!e.to_string().contains("hunter2"), "{e}");
        let e = add_domain(
            &db,
            "z.example",
            &Secret::new("hunter2\n"),
            "https://x/",
            None,
        )
        .unwrap_err();
        assert!(!e.to_string().contains("hunter2"), "{e}");
    }

    #[test]
    fn cache_show_and_purge() {
        let db = db();
        let info = show_cache(&db, "alice@a.example").unwrap().unwrap();
        let text = info.to_string();
        assert_eq!(
            text,
            "alice@a.example\tpwhash=<set>\tfirstauth=2020-01-01 10:00:00\tremoteauth=2020-01-02 11:00:00.250000\tanyauth=2020-01-03 12:00:00"
        );
        assert!(!text.contains("$2b$"));
        assert_eq!(show_cache(&db, "nobody@a.example").unwrap(), None);
        assert_eq!(purge_cache(&db, "alice@a.example").unwrap().authcache, 1);
        let again = purge_cache(&db, "alice@a.example").unwrap();
        assert_eq!(
            again.to_string(),
            "no cache entry for alice@a.example; nothing deleted"
        );
        for bad in [
            "alice",
            "a@b@c",
            "@a.example",
            "alice@",
            "alice@a%",
            "al ice@a.example\n",
        ] {
            assert!(
                matches!(show_cache(&db, bad), Err(AdminError::Invalid(_))),
                "{bad:?}"
            );
            assert!(
                matches!(purge_cache(&db, bad), Err(AdminError::Invalid(_))),
                "{bad:?}"
            );
            assert!(
                matches!(delete_user(&db, bad), Err(AdminError::Invalid(_))),
                "{bad:?}"
            );
        }
    }

    #[test]
    fn delete_user_removes_roster_and_cache_rows() {
        let db = db();
        let r = delete_user(&db, "alice@a.example").unwrap();
        assert_eq!((r.rosterinfo, r.authcache), (1, 1));
        assert_eq!(
            r.to_string(),
            "deleted user alice@a.example: 1 rosterinfo row, 1 authcache row (group memberships are updated at the next login of a member)"
        );
        let r = delete_user(&db, "alice@a.example").unwrap();
        assert_eq!((r.rosterinfo, r.authcache), (0, 0));
        assert_eq!(count(&db, "SELECT count(*) FROM rosterinfo"), 1);
    }

    #[test]
    fn delete_group_returns_its_parts() {
        let db = db();
        let r = delete_group(&db, "Team X@a.example").unwrap();
        assert_eq!(
            (r.group.as_str(), r.domain.as_str(), r.rostergroups),
            ("Team X", "a.example", 1)
        );
        assert_eq!(
            r.to_string(),
            "deleted group Team X@a.example: 1 rostergroups row"
        );
        assert_eq!(delete_group(&db, "nope@a.example").unwrap().rostergroups, 0);
        for bad in [
            "g1",
            "g1@a@b",
            "@a.example",
            "g1@",
            "g\n@a.example",
            "g1@a%b",
        ] {
            assert!(
                matches!(delete_group(&db, bad), Err(AdminError::Invalid(_))),
                "{bad:?}"
            );
        }
        assert_eq!(count(&db, "SELECT count(*) FROM rostergroups"), 2);
    }

    #[test]
    fn delete_host_matches_the_domain_suffix_only() {
        let db = db();
        // `_` must not act as a wildcard: axb.example survives.
        let r = delete_host(&db, "a_b.example").unwrap();
        assert_eq!(
            (r.rostergroups, r.rosterinfo, r.authcache, r.domains),
            (0, 0, 1, 0)
        );
        assert_eq!(
            count(
                &db,
                "SELECT count(*) FROM authcache WHERE jid = 'dave@axb.example'"
            ),
            1
        );

        let r = delete_host(&db, "a.example").unwrap();
        // bob@A.EXAMPLE goes too (LIKE is case-insensitive, as in the original);
        // eve@sub.a.example does not (the match is on "@a.example").
        assert_eq!(
            (r.rostergroups, r.rosterinfo, r.authcache, r.domains),
            (2, 1, 2, 1)
        );
        assert_eq!(
            r.to_string(),
            "deleted host a.example: 2 rostergroups rows, 1 rosterinfo row, 2 authcache rows, 1 domains row"
        );
        assert_eq!(
            count(
                &db,
                "SELECT count(*) FROM authcache WHERE jid = 'eve@sub.a.example'"
            ),
            1
        );
        assert_eq!(count(&db, "SELECT count(*) FROM rostergroups"), 1);
        assert_eq!(count(&db, "SELECT count(*) FROM domains"), 1);
    }

    #[test]
    fn like_pattern_escapes_wildcards() {
        assert_eq!(at_domain_pattern("a_b%c\\d"), "%@a\\_b\\%c\\\\d");
    }

    #[test]
    fn refresh_roster_clears_three_columns() {
        let db = db();
        let r = refresh_roster(&db).unwrap();
        assert_eq!(r.rosterinfo, 2);
        assert_eq!(
            count(&db, "SELECT count(*) FROM rosterinfo WHERE fullname IS NULL AND grouplist IS NULL AND responsehash IS NULL"),
            2
        );
    }
}
