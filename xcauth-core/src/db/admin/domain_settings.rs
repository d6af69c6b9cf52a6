//! `xcauthd domains add|change|remove|list`: the `domains` table, which xcauth 2 left to
//! `sqlite3`.

use std::fmt;

use rusqlite::{params, OptionalExtension};

use super::{check_authdomain, check_domain, check_secret, check_url, invalid, shown, AdminError};
use crate::db::sqlite_domains::text_column;
use crate::db::Db;
use crate::logsafe;
use crate::secret::Secret;

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
