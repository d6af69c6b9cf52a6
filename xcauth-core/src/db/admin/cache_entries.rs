//! `xcauthd cache show|purge`: one jid's credential-cache entry, never its hash.

use std::fmt;

use rusqlite::OptionalExtension;

use super::{shown, split_jid, AdminError};
use crate::db::sqlite_domains::text_column;
use crate::db::time::parse_micros;
use crate::db::{format_timestamp, from_unix_micros, Db};

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
