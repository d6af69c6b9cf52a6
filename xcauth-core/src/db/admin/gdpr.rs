//! The original's GDPR helpers: `xcdeluser`, `xcdelgroup`, `xcdelhost` and
//! `xcrefreshroster`.

use std::fmt;

use super::{at_domain_pattern, check_domain, invalid, shown, split_jid, AdminError};
use crate::db::Db;
use crate::logsafe;

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
