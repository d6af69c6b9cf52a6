//! The roster state in the shared database, read and written exactly as xcauth 2 does, so either
//! program can take over from the other (docs/xcauth2.md §3.1, §8):
//!
//! - `rosterinfo(jid)`: `fullname` (the last name pushed with `set_vcard`), `grouplist` (the
//!   login user's ejabberd groups, sorted, tab-separated), `responsehash` (sha256 hex of the
//!   last roster body that was synced completely) and `last_update`;
//! - `rostergroups(groupname = GROUP@DOMAIN)`: `userlist`, the group's members as full JIDs,
//!   sorted, tab-separated.
//!
//! Rows are created with `INSERT OR IGNORE` and then updated column by column, as xcauth 2 does,
//! so columns this program does not write keep their values.

use std::time::SystemTime;

use rusqlite::OptionalExtension;

use crate::db::{format_timestamp, rusqlite, Db, DbError};

/// A tab-separated list as stored; empty items (from `''` or stray tabs) are dropped.
fn split_list(text: Option<String>) -> Vec<String> {
    text.unwrap_or_default()
        .split('\t')
        .filter(|s| !s.is_empty())
        .map(str::to_owned)
        .collect()
}

/// Sorted (by code point, as Python's `sorted`) and tab-joined.
pub(crate) fn join_sorted<'a>(items: impl IntoIterator<Item = &'a String>) -> String {
    let mut items: Vec<&String> = items.into_iter().collect();
    items.sort();
    items.dedup();
    items
        .into_iter()
        .map(String::as_str)
        .collect::<Vec<_>>()
        .join("\t")
}

fn rosterinfo_column(db: &Db, jid: &str, column: &str) -> Result<Option<String>, DbError> {
    let sql = format!("SELECT {column} FROM rosterinfo WHERE jid = ?1");
    db.run(|c| {
        c.query_row(&sql, [jid], |r| r.get::<_, Option<String>>(0))
            .optional()
            .map(Option::flatten)
    })
}

/// `rosterinfo.responsehash` of `jid`.
pub fn response_hash(db: &Db, jid: &str) -> Result<Option<String>, DbError> {
    rosterinfo_column(db, jid, "responsehash")
}

/// `rosterinfo.fullname` of `jid`.
pub fn fullname(db: &Db, jid: &str) -> Result<Option<String>, DbError> {
    rosterinfo_column(db, jid, "fullname")
}

/// `rosterinfo.grouplist` of `jid`, split.
pub fn grouplist(db: &Db, jid: &str) -> Result<Vec<String>, DbError> {
    rosterinfo_column(db, jid, "grouplist").map(split_list)
}

/// The raw `rosterinfo.grouplist` of `jid` (to write it only when it changes).
pub(crate) fn grouplist_text(db: &Db, jid: &str) -> Result<Option<String>, DbError> {
    rosterinfo_column(db, jid, "grouplist")
}

fn set_rosterinfo(db: &Db, jid: &str, set: &str, values: &[&str]) -> Result<(), DbError> {
    let sql = format!("UPDATE rosterinfo SET {set} WHERE jid = ?1");
    db.transaction(|tx| {
        tx.execute("INSERT OR IGNORE INTO rosterinfo (jid) VALUES (?1)", [jid])?;
        let mut params: Vec<&dyn rusqlite::ToSql> = vec![&jid];
        params.extend(values.iter().map(|v| v as &dyn rusqlite::ToSql));
        tx.execute(&sql, params.as_slice())?;
        Ok(())
    })
}

/// Stores the full name pushed for `jid`.
pub fn set_fullname(db: &Db, jid: &str, name: &str) -> Result<(), DbError> {
    set_rosterinfo(db, jid, "fullname = ?2", &[name])
}

/// Stores the login user's group list (already joined).
pub fn set_grouplist(db: &Db, jid: &str, joined: &str) -> Result<(), DbError> {
    set_rosterinfo(db, jid, "grouplist = ?2", &[joined])
}

/// Stores the hash of the roster body that was synced completely, and when.
pub fn set_response_hash(db: &Db, jid: &str, hash: &str, now: SystemTime) -> Result<(), DbError> {
    let when = format_timestamp(now);
    set_rosterinfo(
        db,
        jid,
        "responsehash = ?2, last_update = ?3",
        &[hash, when.as_str()],
    )
}

/// `rostergroups.userlist` of `key` (`GROUP@DOMAIN`), split; `None` when there is no row.
pub fn group_members(db: &Db, key: &str) -> Result<Option<Vec<String>>, DbError> {
    db.run(|c| {
        c.query_row(
            "SELECT userlist FROM rostergroups WHERE groupname = ?1",
            [key],
            |r| r.get::<_, Option<String>>(0),
        )
        .optional()
    })
    .map(|row| row.map(split_list))
}

/// Stores a group's members (already joined).
pub fn set_group_members(db: &Db, key: &str, joined: &str) -> Result<(), DbError> {
    db.transaction(|tx| {
        tx.execute(
            "INSERT OR IGNORE INTO rostergroups (groupname) VALUES (?1)",
            [key],
        )?;
        tx.execute(
            "UPDATE rostergroups SET userlist = ?2 WHERE groupname = ?1",
            [key, joined],
        )?;
        Ok(())
    })
}
