//! The exact ejabberdctl command sequences of the roster sync, against a recording stand-in of
//! ejabberdctl that keeps the groups it was told about, and the database rows it leaves.

use std::collections::{BTreeMap, BTreeSet};
use std::sync::Mutex;
use std::time::{Duration, SystemTime};

use super::*;
use crate::config::RosterOptions;
use crate::db::Db;
use crate::vocab::{RosterEntry, SharedRoster};

/// Records every call; answers `srg_get_members` from the groups it was told to fill; fails or
/// "hangs" (times out) the commands whose argv starts with a configured prefix.
#[derive(Debug, Default)]
struct Recorder {
    calls: Mutex<Vec<Vec<String>>>,
    groups: Mutex<BTreeMap<String, BTreeSet<String>>>,
    fail: Mutex<Vec<(Vec<String>, CtlError)>>,
}

impl Recorder {
    fn take(&self) -> Vec<Vec<String>> {
        std::mem::take(&mut *self.calls.lock().unwrap())
    }
    fn fail_on(&self, prefix: &[&str], error: CtlError) {
        let prefix = prefix.iter().map(|s| s.to_string()).collect();
        self.fail.lock().unwrap().push((prefix, error));
    }
    fn heal(&self) {
        self.fail.lock().unwrap().clear();
    }
    fn members(&self, group: &str) -> BTreeSet<String> {
        self.groups
            .lock()
            .unwrap()
            .get(group)
            .cloned()
            .unwrap_or_default()
    }
}

impl Ctl for Recorder {
    fn run(&self, args: &[&str]) -> Result<String, CtlError> {
        let argv: Vec<String> = args.iter().map(|s| s.to_string()).collect();
        self.calls.lock().unwrap().push(argv.clone());
        for (prefix, error) in self.fail.lock().unwrap().iter() {
            if argv.starts_with(prefix) {
                return Err(error.clone());
            }
        }
        let mut groups = self.groups.lock().unwrap();
        match args {
            ["srg_create", g, h, ..] => {
                groups.entry(format!("{g}@{h}")).or_default();
            }
            ["srg_get_members", g, h] => {
                let m = groups.get(&format!("{g}@{h}")).cloned().unwrap_or_default();
                return Ok(m.into_iter().map(|j| j + "\n").collect());
            }
            ["srg_user_add", u, uh, g, h] => {
                groups
                    .entry(format!("{g}@{h}"))
                    .or_default()
                    .insert(format!("{u}@{uh}"));
            }
            ["srg_user_del", u, uh, g, h] => {
                groups
                    .entry(format!("{g}@{h}"))
                    .or_default()
                    .remove(&format!("{u}@{uh}"));
            }
            _ => {}
        }
        Ok(String::new())
    }
}

fn entry(uid: &str, name: Option<&str>, groups: &[&str]) -> RosterEntry {
    RosterEntry {
        uid: uid.into(),
        name: name.map(Into::into),
        groups: groups.iter().map(|g| g.to_string()).collect(),
    }
}

/// A roster whose body (what is hashed) is derived from its entries plus `extra`.
fn roster(entries: Vec<RosterEntry>, extra: &str) -> SharedRoster {
    let body = format!("{entries:?}{extra}");
    SharedRoster { entries, body }
}

fn argv(items: &[&str]) -> Vec<String> {
    items.iter().map(|s| s.to_string()).collect()
}

fn cmds(list: &[&[&str]]) -> Vec<Vec<String>> {
    list.iter().map(|c| argv(c)).collect()
}

struct Fixture {
    db: Db,
    ctl: Recorder,
    rules: RosterOptions,
}

impl Fixture {
    fn new() -> Self {
        Self {
            db: Db::open_memory().unwrap(),
            ctl: Recorder::default(),
            rules: RosterOptions::default(),
        }
    }
    fn login(&self, user: &str, r: &SharedRoster) -> (Outcome, Vec<Vec<String>>) {
        let outcome = sync_roster(
            &self.db,
            &self.ctl,
            &self.rules,
            user,
            "example.org",
            r,
            SystemTime::UNIX_EPOCH + Duration::from_secs(1_700_000_000),
        )
        .unwrap();
        (outcome, self.ctl.take())
    }
    fn row(&self, sql: &str, key: &str) -> Option<Option<String>> {
        use crate::db::rusqlite::OptionalExtension;
        self.db
            .run(|c| c.query_row(sql, [key], |r| r.get(0)).optional())
            .unwrap()
    }
    fn rosterinfo(&self, jid: &str, column: &str) -> Option<String> {
        self.row(
            &format!("SELECT {column} FROM rosterinfo WHERE jid = ?1"),
            jid,
        )
        .flatten()
    }
    fn userlist(&self, key: &str) -> Option<String> {
        self.row(
            "SELECT userlist FROM rostergroups WHERE groupname = ?1",
            key,
        )
        .flatten()
    }
}

fn team(extra: &str) -> SharedRoster {
    roster(
        vec![
            entry("alice", Some("Alice Liddell"), &["The Team"]),
            entry("bob@example.org", Some("Bob"), &["The Team"]),
        ],
        extra,
    )
}

#[test]
fn first_login_creates_the_group_and_stores_xcauth2_state() {
    let f = Fixture::new();
    let r = team("");
    let (outcome, calls) = f.login("alice", &r);
    assert_eq!(
        calls,
        cmds(&[
            &["set_vcard", "alice", "example.org", "FN", "Alice Liddell"],
            &["set_vcard", "bob", "example.org", "FN", "Bob"],
            &[
                "srg_create",
                "The Team",
                "example.org",
                "The Team",
                "The Team",
                "The Team"
            ],
            &["srg_get_members", "The Team", "example.org"],
            &[
                "srg_user_add",
                "alice",
                "example.org",
                "The Team",
                "example.org"
            ],
            &[
                "srg_user_add",
                "bob",
                "example.org",
                "The Team",
                "example.org"
            ],
        ])
    );
    assert_eq!(
        outcome,
        Outcome::Synced {
            commands: 6,
            failed: 0
        }
    );
    assert_eq!(
        f.rosterinfo("alice@example.org", "responsehash"),
        Some(response_hash(&r.body))
    );
    assert_eq!(
        f.rosterinfo("alice@example.org", "last_update").as_deref(),
        Some("2023-11-14 22:13:20")
    );
    assert_eq!(
        f.rosterinfo("alice@example.org", "fullname").as_deref(),
        Some("Alice Liddell")
    );
    assert_eq!(
        f.rosterinfo("alice@example.org", "grouplist").as_deref(),
        Some("The Team")
    );
    assert_eq!(
        f.rosterinfo("bob@example.org", "fullname").as_deref(),
        Some("Bob")
    );
    assert_eq!(
        f.rosterinfo("bob@example.org", "grouplist"),
        None,
        "only the login user's group list is written"
    );
    assert_eq!(
        f.userlist("The Team@example.org").as_deref(),
        Some("alice@example.org\tbob@example.org")
    );
}

#[test]
fn an_unchanged_roster_runs_no_command() {
    let f = Fixture::new();
    f.login("alice", &team(""));
    let (outcome, calls) = f.login("alice", &team(""));
    assert_eq!(outcome, Outcome::Unchanged);
    assert!(calls.is_empty(), "{calls:?}");
    // Another body with the same content (xcauth 2's "dummy" field): compared, nothing to do.
    let (outcome, calls) = f.login("alice", &team(" "));
    assert_eq!(
        outcome,
        Outcome::Synced {
            commands: 0,
            failed: 0
        }
    );
    assert!(calls.is_empty(), "{calls:?}");
}

#[test]
fn members_joining_and_leaving_a_group() {
    let f = Fixture::new();
    f.login("alice", &team(""));
    let joined = roster(
        vec![
            entry("alice", Some("Alice Liddell"), &["The Team"]),
            entry("bob@example.org", Some("Bob"), &["The Team"]),
            entry("carol", Some("Carol"), &["The Team"]),
        ],
        "",
    );
    let (_, calls) = f.login("alice", &joined);
    assert_eq!(
        calls,
        cmds(&[
            &["set_vcard", "carol", "example.org", "FN", "Carol"],
            &[
                "srg_user_add",
                "carol",
                "example.org",
                "The Team",
                "example.org"
            ],
        ])
    );
    let left = roster(
        vec![
            entry("alice", Some("Alice Liddell"), &["The Team"]),
            entry("carol", Some("Carol"), &["The Team"]),
        ],
        "",
    );
    let (_, calls) = f.login("alice", &left);
    assert_eq!(
        calls,
        cmds(&[&[
            "srg_user_del",
            "bob",
            "example.org",
            "The Team",
            "example.org"
        ]])
    );
    assert_eq!(
        f.userlist("The Team@example.org").as_deref(),
        Some("alice@example.org\tcarol@example.org")
    );
    assert_eq!(
        f.ctl.members("The Team@example.org"),
        ["alice@example.org", "carol@example.org"]
            .map(String::from)
            .into()
    );
    // Alice herself leaves her last group: the roster is Nextcloud's empty `[]`.
    let (_, calls) = f.login("alice", &roster(vec![], ""));
    assert_eq!(
        calls,
        cmds(&[&[
            "srg_user_del",
            "alice",
            "example.org",
            "The Team",
            "example.org"
        ]])
    );
    assert_eq!(
        f.rosterinfo("alice@example.org", "grouplist").as_deref(),
        Some("")
    );
}

#[test]
fn a_renamed_user_gets_one_set_vcard() {
    let f = Fixture::new();
    f.login("alice", &team(""));
    let renamed = roster(
        vec![
            entry("alice", Some("Alice Liddell"), &["The Team"]),
            entry("bob@example.org", Some("Robert"), &["The Team"]),
        ],
        "",
    );
    let (_, calls) = f.login("alice", &renamed);
    assert_eq!(
        calls,
        cmds(&[&["set_vcard", "bob", "example.org", "FN", "Robert"]])
    );
    assert_eq!(
        f.rosterinfo("bob@example.org", "fullname").as_deref(),
        Some("Robert")
    );
}

#[test]
fn ignored_excluded_and_oversized_groups_are_left_alone() {
    let mut f = Fixture::new();
    f.rules.exclude_groups = vec!["Everyone".into()];
    f.rules.max_group_size = 2;
    let r = roster(
        vec![
            entry(
                "alice",
                None,
                &["Hidden\u{200b}", "Everyone", "Big", "Small"],
            ),
            entry("bob", None, &["Hidden\u{200b}", "Everyone", "Big"]),
            entry("carol", None, &["Everyone", "Big"]),
        ],
        "",
    );
    let (_, calls) = f.login("alice", &r);
    assert_eq!(
        calls,
        cmds(&[
            &[
                "srg_create",
                "Small",
                "example.org",
                "Small",
                "Small",
                "Small"
            ],
            &["srg_get_members", "Small", "example.org"],
            &[
                "srg_user_add",
                "alice",
                "example.org",
                "Small",
                "example.org"
            ],
        ])
    );
    assert_eq!(
        f.rosterinfo("alice@example.org", "grouplist").as_deref(),
        Some("Small")
    );
    for key in [
        "Hidden@example.org",
        "Everyone@example.org",
        "Big@example.org",
    ] {
        assert_eq!(f.userlist(key), None, "{key}");
    }
    // A group synced before and now ignored: its members leave it as they log in.
    f.db.run(|c| {
        c.execute(
            "UPDATE rosterinfo SET grouplist = 'Big\tSmall', responsehash = NULL",
            [],
        )
    })
    .unwrap();
    let (_, calls) = f.login("alice", &r);
    assert_eq!(
        calls,
        cmds(&[&["srg_user_del", "alice", "example.org", "Big", "example.org"]])
    );
}

#[test]
fn a_failing_ejabberdctl_is_retried_at_the_next_login() {
    let f = Fixture::new();
    f.ctl.fail_on(
        &["srg_user_add", "bob"],
        CtlError::Failed {
            status: "exit status 1".into(),
            detail: "Error: not_found".into(),
        },
    );
    let r = team("");
    let (outcome, calls) = f.login("alice", &r);
    assert_eq!(
        calls.len(),
        6,
        "the sync went on after the failure: {calls:?}"
    );
    assert_eq!(
        outcome,
        Outcome::Synced {
            commands: 6,
            failed: 1
        }
    );
    assert_eq!(
        f.rosterinfo("alice@example.org", "responsehash"),
        None,
        "not marked as synced"
    );
    assert_eq!(
        f.userlist("The Team@example.org").as_deref(),
        Some("alice@example.org"),
        "what ejabberd really has"
    );
    f.ctl.heal();
    let (outcome, calls) = f.login("alice", &r);
    assert_eq!(
        calls,
        cmds(&[&[
            "srg_user_add",
            "bob",
            "example.org",
            "The Team",
            "example.org"
        ]])
    );
    assert_eq!(
        outcome,
        Outcome::Synced {
            commands: 1,
            failed: 0
        }
    );
    assert_eq!(f.login("alice", &r).0, Outcome::Unchanged);
}

#[test]
fn a_hanging_ejabberdctl_ends_the_sync_and_it_is_redone() {
    let f = Fixture::new();
    f.ctl
        .fail_on(&["srg_create"], CtlError::TimedOut(Duration::from_secs(10)));
    let r = team("");
    let (outcome, calls) = f.login("alice", &r);
    assert_eq!(
        calls,
        cmds(&[
            &["set_vcard", "alice", "example.org", "FN", "Alice Liddell"],
            &["set_vcard", "bob", "example.org", "FN", "Bob"],
            &[
                "srg_create",
                "The Team",
                "example.org",
                "The Team",
                "The Team",
                "The Team"
            ],
        ]),
        "nothing runs after a call that timed out"
    );
    assert_eq!(
        outcome,
        Outcome::Synced {
            commands: 3,
            failed: 1
        }
    );
    assert_eq!(
        f.userlist("The Team@example.org"),
        None,
        "group not recorded"
    );
    f.ctl.heal();
    let (_, calls) = f.login("alice", &r);
    assert_eq!(
        calls,
        cmds(&[
            &[
                "srg_create",
                "The Team",
                "example.org",
                "The Team",
                "The Team",
                "The Team"
            ],
            &["srg_get_members", "The Team", "example.org"],
            &[
                "srg_user_add",
                "alice",
                "example.org",
                "The Team",
                "example.org"
            ],
            &[
                "srg_user_add",
                "bob",
                "example.org",
                "The Team",
                "example.org"
            ],
        ])
    );
}

#[test]
fn a_missing_ejabberdctl_ends_the_sync() {
    let f = Fixture::new();
    f.ctl.fail_on(
        &[],
        CtlError::NotStarted("/no/ejabberdctl: not found".into()),
    );
    let (outcome, calls) = f.login("alice", &team(""));
    assert_eq!(calls.len(), 1);
    assert_eq!(
        outcome,
        Outcome::Synced {
            commands: 1,
            failed: 1
        }
    );
}

#[test]
fn a_new_group_starts_from_the_members_ejabberd_already_has() {
    // Another process (or xcauth 2) created the group, but this database has no row.
    let f = Fixture::new();
    f.ctl.groups.lock().unwrap().insert(
        "The Team@example.org".into(),
        ["zed@example.org".to_string(), "bob@example.org".into()].into(),
    );
    let r = roster(
        vec![
            entry("alice", None, &["The Team"]),
            entry("bob", None, &["The Team"]),
        ],
        "",
    );
    let (_, calls) = f.login("alice", &r);
    assert_eq!(
        calls,
        cmds(&[
            &[
                "srg_create",
                "The Team",
                "example.org",
                "The Team",
                "The Team",
                "The Team"
            ],
            &["srg_get_members", "The Team", "example.org"],
            &[
                "srg_user_add",
                "alice",
                "example.org",
                "The Team",
                "example.org"
            ],
            &[
                "srg_user_del",
                "zed",
                "example.org",
                "The Team",
                "example.org"
            ],
        ])
    );
}

/// The rosters and logins of xcauth 2's own roster test suite (`xclib/tests/41_roster_try_test.py`)
/// and the commands it expects there, compared as sets per login.
#[test]
fn commands_match_what_xcauth2_issues_for_the_same_rosters() {
    let f = Fixture::new();
    let d = "domain1";
    let run = |user: &str, entries: Vec<RosterEntry>, extra: &str| {
        let r = roster(entries, extra);
        let outcome =
            sync_roster(&f.db, &f.ctl, &f.rules, user, d, &r, SystemTime::UNIX_EPOCH).unwrap();
        assert!(!matches!(outcome, Outcome::Synced { failed: 1.., .. }));
        f.ctl.take().into_iter().collect::<BTreeSet<_>>()
    };
    let set = |list: &[&[&str]]| list.iter().map(|c| argv(c)).collect::<BTreeSet<_>>();
    let e = |uid: &str, name: &str, groups: &[&str]| entry(uid, Some(name), groups);

    // 20: a first name.
    assert_eq!(
        run("user1", vec![e("user1@domain1", "Ah Be", &[])], ""),
        set(&[&["set_vcard", "user1", d, "FN", "Ah Be"]])
    );
    // 21, 22: the same name, cached (22 with another body).
    assert_eq!(
        run("user1", vec![e("user1@domain1", "Ah Be", &[])], ""),
        set(&[])
    );
    assert_eq!(
        run("user1", vec![e("user1@domain1", "Ah Be", &[])], "dummy"),
        set(&[])
    );
    // 23: a changed name.
    assert_eq!(
        run("user1", vec![e("user1@domain1", "Ce De", &[])], ""),
        set(&[&["set_vcard", "user1", d, "FN", "Ce De"]])
    );
    // 30: a lonely group.
    assert_eq!(
        run("user1", vec![e("user1@domain1", "Ce De", &["Lonely"])], ""),
        set(&[
            &["srg_create", "Lonely", d, "Lonely", "Lonely", "Lonely"],
            &["srg_get_members", "Lonely", d],
            &["srg_user_add", "user1", d, "Lonely", d],
        ])
    );
    // 31: the same login again.
    assert_eq!(
        run("user1", vec![e("user1@domain1", "Ce De", &["Lonely"])], ""),
        set(&[])
    );
    // 32: a normal group.
    assert_eq!(
        run(
            "user1",
            vec![
                e("user1@domain1", "Ce De", &["Lonely", "Family"]),
                e("user2@domain1", "De Be", &["Family"]),
            ],
            ""
        ),
        set(&[
            &["set_vcard", "user2", d, "FN", "De Be"],
            &["srg_create", "Family", d, "Family", "Family", "Family"],
            &["srg_get_members", "Family", d],
            &["srg_user_add", "user1", d, "Family", d],
            &["srg_user_add", "user2", d, "Family", d],
        ])
    );
    // 33: another user logs in.
    let r33 = || {
        vec![
            e("user1@domain1", "Ce De", &["Family"]),
            e("user2@domain1", "De Be", &["Family", "Friends"]),
            e("user3@domain1", "Xy Zzy", &["Friends"]),
        ]
    };
    assert_eq!(
        run("user2", r33(), ""),
        set(&[
            &["set_vcard", "user3", d, "FN", "Xy Zzy"],
            &["srg_create", "Friends", d, "Friends", "Friends", "Friends"],
            &["srg_get_members", "Friends", d],
            &["srg_user_add", "user3", d, "Friends", d],
            &["srg_user_add", "user2", d, "Friends", d],
        ])
    );
    // 34: again, with another body.
    assert_eq!(run("user2", r33(), "dummy"), set(&[]));
    // 40: a third party left a group.
    assert_eq!(
        run(
            "user2",
            vec![
                e("user2@domain1", "De Be", &["Family", "Friends"]),
                e("user3@domain1", "Xy Zzy", &["Friends"]),
            ],
            ""
        ),
        set(&[&["srg_user_del", "user1", d, "Family", d]])
    );
    // 41: user1 left every group.
    assert_eq!(
        run("user1", vec![e("user1@domain1", "Ce De", &[])], ""),
        set(&[
            &["srg_user_del", "user1", d, "Family", d],
            &["srg_user_del", "user1", d, "Lonely", d],
        ])
    );
}

/// Lines (INFO and above) this thread logged since `before` that mention `needle`.
fn lines_about(before: usize, needle: &str) -> Vec<String> {
    crate::testlog::my_lines_at(log::Level::Info)
        .split_off(before)
        .into_iter()
        .filter(|l| l.contains(needle))
        .collect()
}

#[test]
fn names_ejabberdctl_cannot_take_are_left_out_and_the_sync_goes_on() {
    let f = Fixture::new();
    let before = crate::testlog::my_lines_at(log::Level::Info).len();
    let long = "L".repeat(MAX_ARG_BYTES + 1);
    let r = roster(
        vec![
            entry("alice", Some("Alice Liddell"), &["The Team"]),
            entry("eve", Some("Eve\0rm -rf"), &["The Team"]),
            entry("mal\0lory", Some("Mallory"), &["The Team"]),
            entry("lou", Some(&long), &["The Team"]),
            entry("mal", Some("Mal\u{1}lory\u{1b}[31m"), &["The Team"]),
            entry("nul\u{ffff}l", Some("Null"), &["The Team"]),
            entry("bob", Some("Bob"), &["The Team"]),
        ],
        "",
    );
    let (outcome, calls) = f.login("alice", &r);
    let add = |u: &'static str| -> Vec<String> {
        argv(&["srg_user_add", u, "example.org", "The Team", "example.org"])
    };
    let mut expected = cmds(&[
        &["set_vcard", "alice", "example.org", "FN", "Alice Liddell"],
        &["set_vcard", "bob", "example.org", "FN", "Bob"],
        &[
            "srg_create",
            "The Team",
            "example.org",
            "The Team",
            "The Team",
            "The Team",
        ],
        &["srg_get_members", "The Team", "example.org"],
    ]);
    // Eve, Lou and Mal keep their place in the group, without a full name; Mallory and the
    // uid with U+FFFF are left out.
    expected.extend([add("alice"), add("eve"), add("lou"), add("mal"), add("bob")]);
    assert_eq!(calls, expected);
    assert_eq!(
        outcome,
        Outcome::Synced {
            commands: 9,
            failed: 0
        }
    );
    assert_eq!(
        f.rosterinfo("alice@example.org", "responsehash"),
        Some(response_hash(&r.body)),
        "nothing failed: a retry would meet the same names"
    );
    assert_eq!(
        lines_about(before, "eve"),
        ["roster sync alice@example.org: full name of eve not set: it contains a NUL byte"]
    );
    assert_eq!(
        lines_about(before, "mal?lory"),
        ["roster sync alice@example.org: member mal?lory left out: the uid contains a NUL byte"]
    );
    assert_eq!(
        lines_about(before, "lou"),
        [
            "roster sync alice@example.org: full name of lou not set: it is longer than a \
             program argument may be (128 KiB)"
        ]
    );
    assert_eq!(
        lines_about(before, "of mal "),
        [
            "roster sync alice@example.org: full name of mal not set: it contains U+0001, a \
             character XML does not allow"
        ]
    );
    assert_eq!(
        lines_about(before, "nul"),
        [
            "roster sync alice@example.org: member nul\u{ffff}l left out: the uid contains \
             U+FFFF, a character XML does not allow"
        ]
    );
    assert!(
        lines_about(before, "cannot be started").is_empty(),
        "no false diagnosis"
    );
}

#[test]
fn a_stored_member_ejabberdctl_cannot_take_is_not_passed_to_it() {
    // A group row written by another program names a member with a NUL byte; it left the
    // group, but its removal cannot be passed to ejabberdctl.
    let f = Fixture::new();
    state::set_group_members(
        &f.db,
        "The Team@example.org",
        "alice@example.org\tz\0ed@example.org",
    )
    .unwrap();
    let before = crate::testlog::my_lines_at(log::Level::Info).len();
    let r = roster(vec![entry("alice", None, &["The Team"])], "");
    let (outcome, calls) = f.login("alice", &r);
    assert!(calls.is_empty(), "{calls:?}");
    assert_eq!(
        outcome,
        Outcome::Synced {
            commands: 0,
            failed: 0
        }
    );
    assert_eq!(
        lines_about(before, "z?ed"),
        [
            "roster sync alice@example.org: ejabberdctl srg_user_del z?ed example.org The Team \
             example.org: not run, argument 2 contains a NUL byte"
        ]
    );
}

#[test]
fn members_of_another_domain_are_left_out_unless_configured() {
    let r = roster(
        vec![
            entry("alice", Some("Alice Liddell"), &["The Team"]),
            entry("ceo@b.example", Some("Mallory"), &["The Team"]),
            entry("bob@EXAMPLE.org", None, &["The Team"]),
        ],
        "",
    );
    let f = Fixture::new();
    let before = crate::testlog::my_lines_at(log::Level::Info).len();
    let (outcome, calls) = f.login("alice", &r);
    assert_eq!(
        calls,
        cmds(&[
            &["set_vcard", "alice", "example.org", "FN", "Alice Liddell"],
            &[
                "srg_create",
                "The Team",
                "example.org",
                "The Team",
                "The Team",
                "The Team"
            ],
            &["srg_get_members", "The Team", "example.org"],
            &[
                "srg_user_add",
                "alice",
                "example.org",
                "The Team",
                "example.org"
            ],
            &[
                "srg_user_add",
                "bob",
                "EXAMPLE.org",
                "The Team",
                "example.org"
            ],
        ]),
        "nothing names b.example"
    );
    assert_eq!(
        outcome,
        Outcome::Synced {
            commands: 5,
            failed: 0
        }
    );
    assert_eq!(
        lines_about(before, "ceo@b.example"),
        [
            "roster sync alice@example.org: member ceo@b.example left out: not in example.org \
             (roster-other-domains is off)"
        ]
    );

    // roster-other-domains: xcauth 2's behaviour.
    let mut f = Fixture::new();
    f.rules.other_domains = true;
    let (_, calls) = f.login("alice", &r);
    for call in [
        argv(&["set_vcard", "ceo", "b.example", "FN", "Mallory"]),
        argv(&[
            "srg_user_add",
            "ceo",
            "b.example",
            "The Team",
            "example.org",
        ]),
    ] {
        assert!(calls.contains(&call), "{call:?} not in {calls:?}");
    }
}
