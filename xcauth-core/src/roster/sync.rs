//! One sync of a user's shared roster into ejabberd: the response-hash short-cut, full names
//! with `set_vcard`, groups with `srg_create` / `srg_get_members` / `srg_user_add` /
//! `srg_user_del`, and the state in the shared database (docs/xcauth2.md §8).
//!
//! The order of commands is xcauth 2's: a user pass (full names), a group pass (per group:
//! create it when the database has no row for it, then add the members that joined, then
//! remove the ones that left), then the login user's own pass (remove them from groups they
//! left). What differs, and why:
//!
//! - The database records what ejabberd was told successfully, not what was intended: a full
//!   name is stored after its `set_vcard` succeeded, a group's member list after the adds and
//!   removals that succeeded, and the response hash only when every command of the sync
//!   succeeded. So a failed command is retried at the user's next login.
//! - A command that fails is logged with its arguments and exit status, and the sync goes on;
//!   one that timed out or could not be started ends the sync (the next ones would wait or fail
//!   the same way).
//! - Groups ending in U+200B, listed in `roster-exclude-groups` or bigger than
//!   `roster-max-group-size` are left alone; groups that sanitise to the same name are merged.
//! - The login user is recognised by the full JID of a uid (bare uids get the login domain), so
//!   their group list is kept for bare-uid rosters too, and an empty roster removes them from
//!   the groups they left.
//! - A member whose uid names another XMPP domain is left out (one log line), unless
//!   `roster-other-domains` is set: one domain's Nextcloud must not rename or group another
//!   domain's users. A member whose uid cannot be an argument of ejabberdctl (a NUL byte, over
//!   128 KiB, a character XML does not allow such as U+0001) is left out, and a display name
//!   that cannot is not pushed, each with one log line naming the reason; the sync goes on.
//!   Any other command with such an argument is skipped the same way. (ejabberd puts a full
//!   name into the roster of every member of the user's groups without checking it: one
//!   control character would end each of their sessions.)

use std::collections::BTreeSet;
use std::fmt;
use std::time::{Duration, SystemTime};

use log::{debug, info, warn};
use sha2::{Digest, Sha256};

use super::names::{full_jid, jidsplit, opted_out, same_domain, sanitize, unpassable};
use super::state;
use crate::config::RosterOptions;
use crate::db::{Db, DbError};
use crate::logsafe;
use crate::vocab::SharedRoster;

/// Runs ejabberdctl. Implementations must bound every call in time.
pub trait Ctl: Send + Sync + fmt::Debug {
    /// Runs `ejabberdctl ARGS…`; its standard output when it exits with status 0.
    fn run(&self, args: &[&str]) -> Result<String, CtlError>;
}

/// Why an ejabberdctl call did not succeed. No variant holds a secret (the arguments are
/// names and JIDs).
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum CtlError {
    /// It ran and exited unsuccessfully.
    Failed {
        /// `exit status 1`, `signal 9`…
        status: String,
        /// The first line of its error output (or of its output), for the log.
        detail: String,
    },
    /// It did not finish in time and was killed.
    TimedOut(Duration),
    /// It could not be started (missing, not executable); names the path.
    NotStarted(String),
    /// It was not started because the program is exiting (the reason).
    Cancelled(String),
}

impl CtlError {
    /// True when the next commands would wait or fail the same way.
    fn ends_the_sync(&self) -> bool {
        !matches!(self, CtlError::Failed { .. })
    }
}

impl fmt::Display for CtlError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            CtlError::Failed { status, detail } if detail.is_empty() => f.write_str(status),
            CtlError::Failed { status, detail } => write!(f, "{status}: {detail}"),
            CtlError::TimedOut(after) => write!(f, "no answer within {after:?}; killed"),
            CtlError::NotStarted(why) => write!(f, "cannot be started: {why}"),
            CtlError::Cancelled(why) => write!(f, "not started: {why}"),
        }
    }
}

/// What a sync did.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Outcome {
    /// The roster body is the one synced last time: nothing to do.
    Unchanged,
    /// Commands were run (possibly none, when ejabberd already matched).
    Synced {
        /// ejabberdctl calls made.
        commands: usize,
        /// Of which failed (then the sync is repeated at the next login).
        failed: usize,
    },
}

/// sha256 hex of a roster body, as stored in `rosterinfo.responsehash`.
pub fn response_hash(body: &str) -> String {
    Sha256::digest(body.as_bytes())
        .iter()
        .map(|b| format!("{b:02x}"))
        .collect()
}

/// Runs ejabberdctl commands for one sync and counts them.
struct Runner<'a> {
    ctl: &'a dyn Ctl,
    jid: &'a str,
    commands: usize,
    failed: usize,
    stopped: bool,
}

impl Runner<'_> {
    /// The command's output, or `None` when it failed, could not be passed to ejabberdctl or
    /// the sync has stopped.
    fn exec(&mut self, args: &[&str]) -> Option<String> {
        if self.stopped {
            return None;
        }
        let shown = logsafe::clean(&args.join(" "), 512).into_owned();
        if let Some((n, why)) = args
            .iter()
            .enumerate()
            .find_map(|(n, a)| unpassable(a).map(|why| (n + 1, why)))
        {
            // Not a failure: it would fail the same way at every login.
            warn!(
                "roster sync {}: ejabberdctl {shown}: not run, argument {n} {why}",
                self.jid
            );
            return None;
        }
        self.commands += 1;
        debug!("roster sync {}: ejabberdctl {shown}", self.jid);
        match self.ctl.run(args) {
            Ok(out) => Some(out),
            Err(e) => {
                self.failed += 1;
                if let CtlError::NotStarted(_) = e {
                    log::error!("roster sync {}: ejabberdctl {shown}: {e}", self.jid);
                } else {
                    warn!("roster sync {}: ejabberdctl {shown} failed: {e}", self.jid);
                }
                if e.ends_the_sync() {
                    self.stopped = true;
                    warn!(
                        "roster sync {}: the remaining commands are skipped; the sync is \
                         repeated at the next login",
                        self.jid
                    );
                }
                None
            }
        }
    }
}

/// A group to sync: its ejabberd name and its members' full JIDs (roster order, no repeats).
struct Group {
    name: String,
    members: Vec<String>,
}

/// A roster entry that may be synced.
struct Member<'a> {
    uid: &'a str,
    /// The full name to push, when there is one that can be passed to ejabberdctl.
    name: Option<&'a str>,
    groups: &'a [String],
}

/// The roster's entries that may be synced into `domain`: each one left out, and each display
/// name that cannot be pushed, is logged once, with the reason.
fn members<'a>(
    roster: &'a SharedRoster,
    domain: &str,
    rules: &RosterOptions,
    jid: &str,
) -> Vec<Member<'a>> {
    let mut out = Vec::with_capacity(roster.entries.len());
    for entry in &roster.entries {
        let shown = logsafe::clean(&entry.uid, 128);
        if let Some(why) = unpassable(&entry.uid) {
            warn!("roster sync {jid}: member {shown} left out: the uid {why}");
            continue;
        }
        let (_, host) = jidsplit(&entry.uid, domain);
        if !rules.other_domains && !same_domain(host, domain) {
            info!(
                "roster sync {jid}: member {shown} left out: not in {} (roster-other-domains \
                 is off)",
                logsafe::clean(domain, 128)
            );
            continue;
        }
        let name = match entry.name.as_deref().map(|n| (n, unpassable(n))) {
            Some((n, None)) => Some(n),
            Some((_, Some(why))) => {
                warn!("roster sync {jid}: full name of {shown} not set: it {why}");
                None
            }
            None => None,
        };
        out.push(Member {
            uid: &entry.uid,
            name,
            groups: &entry.groups,
        });
    }
    out
}

/// Collects the members' groups (display name → uids), leaving out the ones the rules exclude.
fn wanted_groups(
    members: &[Member<'_>],
    domain: &str,
    rules: &RosterOptions,
    jid: &str,
) -> Vec<Group> {
    let mut raw: Vec<(&str, Vec<&str>)> = Vec::new();
    for entry in members {
        for g in entry.groups {
            match raw.iter_mut().find(|(name, _)| name == g) {
                Some((_, uids)) => {
                    if !uids.contains(&entry.uid) {
                        uids.push(entry.uid);
                    }
                }
                None => raw.push((g, vec![entry.uid])),
            }
        }
    }
    let mut groups: Vec<Group> = Vec::new();
    for (display, uids) in raw {
        let shown = logsafe::clean(display, 128);
        if opted_out(display) {
            info!("roster sync {jid}: group {shown} ends in U+200B: not synced");
            continue;
        }
        let name = sanitize(display);
        if rules
            .exclude_groups
            .iter()
            .any(|x| x == display || *x == name)
        {
            info!("roster sync {jid}: group {shown} is in roster-exclude-groups: not synced");
            continue;
        }
        if rules.max_group_size > 0 && uids.len() > rules.max_group_size {
            info!(
                "roster sync {jid}: group {shown} has {} members, more than \
                 roster-max-group-size={}: not synced",
                uids.len(),
                rules.max_group_size
            );
            continue;
        }
        if name.is_empty() {
            warn!("roster sync {jid}: group {shown} has no usable characters: not synced");
            continue;
        }
        let members = uids.iter().map(|u| full_jid(u, domain));
        match groups.iter_mut().find(|g| g.name == name) {
            Some(group) => {
                for m in members {
                    if !group.members.contains(&m) {
                        group.members.push(m);
                    }
                }
            }
            None => groups.push(Group {
                name,
                members: {
                    let mut v: Vec<String> = Vec::new();
                    for m in members {
                        if !v.contains(&m) {
                            v.push(m);
                        }
                    }
                    v
                },
            }),
        }
    }
    groups
}

/// Syncs `roster` (the shared roster of the login `user@domain`) into ejabberd through `ctl`,
/// keeping the state in `db`. Commands that fail are logged and counted, never returned as
/// errors; an error is a database failure (the sync stops there and is repeated at the next
/// login, as the response hash was not stored).
pub fn sync_roster(
    db: &Db,
    ctl: &dyn Ctl,
    rules: &RosterOptions,
    user: &str,
    domain: &str,
    roster: &SharedRoster,
    now: SystemTime,
) -> Result<Outcome, DbError> {
    let login_jid = format!("{user}@{domain}");
    let jid = logsafe::jid(user, domain);
    let hash = response_hash(&roster.body);
    if state::response_hash(db, &login_jid)?.as_deref() == Some(hash.as_str()) {
        debug!("roster sync {jid}: roster unchanged");
        return Ok(Outcome::Unchanged);
    }
    let mut run = Runner {
        ctl,
        jid: &jid,
        commands: 0,
        failed: 0,
        stopped: false,
    };

    let members = members(roster, domain, rules, &jid);

    // Full names.
    for entry in &members {
        let Some(name) = entry.name else { continue };
        let (lhs, rhs) = jidsplit(entry.uid, domain);
        let member = format!("{lhs}@{rhs}");
        if state::fullname(db, &member)?.as_deref() != Some(name)
            && run.exec(&["set_vcard", lhs, rhs, "FN", name]).is_some()
        {
            state::set_fullname(db, &member, name)?;
        }
    }

    // Groups.
    let login_lower = login_jid.to_lowercase();
    let mut login_groups: BTreeSet<String> = BTreeSet::new();
    for group in wanted_groups(&members, domain, rules, &jid) {
        let name = group.name.as_str();
        let key = format!("{name}@{domain}");
        let (previous, known) = match state::group_members(db, &key)? {
            Some(previous) => (previous, true),
            None => {
                let created = run
                    .exec(&["srg_create", name, domain, name, name, name])
                    .is_some();
                match run.exec(&["srg_get_members", name, domain]) {
                    Some(out) => (
                        out.lines()
                            .map(str::trim)
                            .filter(|l| !l.is_empty())
                            .map(str::to_owned)
                            .collect(),
                        created,
                    ),
                    None => (Vec::new(), false),
                }
            }
        };
        if group
            .members
            .iter()
            .any(|m| m.to_lowercase() == login_lower)
        {
            login_groups.insert(group.name.clone());
        }
        let mut present: BTreeSet<String> = previous.iter().cloned().collect();
        for member in &group.members {
            if present.contains(member) {
                continue;
            }
            let (lhs, rhs) = jidsplit(member, domain);
            if run
                .exec(&["srg_user_add", lhs, rhs, name, domain])
                .is_some()
            {
                present.insert(member.clone());
            }
        }
        for old in &previous {
            if group.members.contains(old) {
                continue;
            }
            let (lhs, rhs) = jidsplit(old, domain);
            if run
                .exec(&["srg_user_del", lhs, rhs, name, domain])
                .is_some()
            {
                present.remove(old);
            }
        }
        // A group whose creation failed gets no row, so the next sync creates it again.
        if known {
            state::set_group_members(db, &key, &state::join_sorted(&present))?;
        }
    }

    // The login user leaves the groups they are no longer in.
    let mut kept = login_groups;
    for old in state::grouplist(db, &login_jid)? {
        if kept.contains(&old) {
            continue;
        }
        if run
            .exec(&["srg_user_del", user, domain, &old, domain])
            .is_none()
        {
            kept.insert(old);
        }
    }
    let joined = state::join_sorted(&kept);
    if state::grouplist_text(db, &login_jid)?.as_deref() != Some(joined.as_str()) {
        state::set_grouplist(db, &login_jid, &joined)?;
    }

    if run.failed == 0 {
        state::set_response_hash(db, &login_jid, &hash, now)?;
        info!(
            "roster sync {jid}: {} ejabberdctl command(s), all succeeded",
            run.commands
        );
    } else {
        warn!(
            "roster sync {jid}: {} of {} ejabberdctl command(s) failed; the sync is repeated \
             at the next login",
            run.failed, run.commands
        );
    }
    Ok(Outcome::Synced {
        commands: run.commands,
        failed: run.failed,
    })
}
