//! `xcauthd throttle list|clear`: the brute-force throttle's keys in the `throttle` table.

use std::fmt;

use rusqlite::{params, OptionalExtension};

use super::{shown, AdminError};
use crate::db::throttle_table::no_table;
use crate::db::{format_timestamp, Db};
use crate::throttle::{remote_key, Entry};

/// One live key of the throttle.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ThrottleRow {
    /// `user:alice@example.org` or `remote:192.0.2.7`.
    pub key: String,
    /// Its state.
    pub entry: Entry,
    /// The time the listing was made (Unix seconds), for "locked for N s".
    pub now: i64,
}

fn utc(secs: i64) -> String {
    let t = crate::db::from_unix_micros(secs.saturating_mul(1_000_000));
    format_timestamp(t)
}

impl fmt::Display for ThrottleRow {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let e = &self.entry;
        let state = match e.locked_for(self.now) {
            0 => "not locked".to_owned(),
            s => format!("locked for {s}s more (until {} UTC)", utc(e.locked_until)),
        };
        write!(
            f,
            "{}\t{state}\tfailures={}\tlockouts={}\tforgotten={} UTC",
            shown(Some(&self.key)),
            e.failures,
            e.lockouts,
            utc(e.expires)
        )
    }
}

/// What `clear` deleted.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ThrottleClear {
    /// The key cleared, or `None` for all.
    pub key: Option<String>,
    /// Rows deleted.
    pub deleted: usize,
}

impl fmt::Display for ThrottleClear {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match &self.key {
            Some(k) => write!(f, "{}: {} entry deleted", shown(Some(k)), self.deleted),
            None => write!(f, "all throttle entries deleted ({})", self.deleted),
        }
    }
}

/// The live keys at `now` (Unix seconds), locked ones first.
pub fn list_lockouts(db: &Db, now: i64) -> Result<Vec<ThrottleRow>, AdminError> {
    Ok(db.run(|c| {
        let mut stmt = match c.prepare(
            "SELECT key, failures, since, locked_until, lockouts, expires FROM throttle \
             WHERE expires > ?1 ORDER BY locked_until DESC, key",
        ) {
            Err(e) if no_table(&e) => return Ok(Vec::new()),
            other => other?,
        };
        let rows = stmt.query_map([now], |r| {
            Ok(ThrottleRow {
                key: r.get(0)?,
                entry: Entry {
                    failures: r.get(1)?,
                    since: r.get(2)?,
                    locked_until: r.get(3)?,
                    lockouts: r.get(4)?,
                    expires: r.get(5)?,
                },
                now,
            })
        })?;
        rows.collect()
    })?)
}

/// The key a name given on the command line means: `user@domain` → the user's key (lower-case,
/// as the throttle keeps it), anything else → a remote address. A full key is taken as is.
pub fn throttle_key(what: &str) -> Result<String, AdminError> {
    let what = what.trim();
    if what.is_empty() || what.chars().any(char::is_control) {
        return Err(AdminError::Invalid(
            "give user@domain, a remote address, or --all".into(),
        ));
    }
    if what.starts_with("user:") || what.starts_with("remote:") || what.starts_with("local:") {
        return Ok(what.to_owned());
    }
    Ok(match what.rsplit_once('@') {
        Some((user, domain)) => crate::throttle::user_key(user, domain),
        None => remote_key(what),
    })
}

/// Deletes the key `what` names (see [`throttle_key`]), or every key with `None`.
pub fn clear_lockouts(db: &Db, what: Option<&str>) -> Result<ThrottleClear, AdminError> {
    let key = what.map(throttle_key).transpose()?;
    // A user's key goes with the key of its user part across domains.
    let local = key
        .as_deref()
        .and_then(crate::throttle::local_key)
        .unwrap_or_default();
    let deleted = db.run(|c| {
        let existed: Option<i64> = match &key {
            Some(k) => match c
                .query_row(
                    "SELECT 1 FROM throttle WHERE key = ?1 OR key = ?2",
                    params![k, local],
                    |r| r.get(0),
                )
                .optional()
            {
                Err(e) if no_table(&e) => return Ok(0),
                other => other?,
            },
            None => Some(1),
        };
        if existed.is_none() {
            return Ok(0);
        }
        let n = match &key {
            Some(k) => c.execute(
                "DELETE FROM throttle WHERE key = ?1 OR key = ?2",
                params![k, local],
            ),
            None => c.execute("DELETE FROM throttle", []),
        };
        match n {
            Err(e) if no_table(&e) => Ok(0),
            other => other,
        }
    })?;
    if deleted == 0 {
        if let Some(k) = key {
            return Err(AdminError::NotFound(format!(
                "no throttle entry {}",
                shown(Some(&k))
            )));
        }
    }
    Ok(ThrottleClear { key, deleted })
}
