//! The shared roster on real ejabberd 23.01: Nextcloud groups (from the backend double) are
//! pushed by xcauthd, running as ejabberd's extauth program, through the real ejabberdctl after
//! a login; `ejabberdctl srg_list` / `srg_get_members` / `get_vcard` show them, and an XMPP
//! client (slixmpp) logged in as one member receives the other in its roster, in the group.
//! docs/xcauth2.md §8 and docs/testing.md §5.2.
#![allow(clippy::unwrap_used, clippy::expect_used)]

use std::os::unix::fs::PermissionsExt;
use std::path::Path;
use std::process::{Command, Stdio};
use std::time::Duration;

use xcauth_tests::double::{BackendDouble, User};
use xcauth_tests::support::{xmpp_login, Scratch, XmppLogin};

use super::ejabberd::{chown_ejabberd, read_or_empty, start_ejabberd, Ejabberd, Started, SECRET};

fn ctl_lines(server: &Ejabberd, args: &[&str]) -> Vec<String> {
    let (action, rest) = args.split_first().unwrap();
    let out = server.ctl(action).args(rest).output().unwrap();
    assert!(
        out.status.success(),
        "ejabberdctl {args:?}: {}\n{}",
        out.status,
        String::from_utf8_lossy(&out.stderr)
    );
    let mut lines: Vec<String> = String::from_utf8_lossy(&out.stdout)
        .lines()
        .map(str::trim)
        .filter(|l| !l.is_empty())
        .map(str::to_owned)
        .collect();
    lines.sort();
    lines
}

/// `tests/scripts/xmpp_roster.py`: logs in and returns the roster lines (`item JID\tNAME\tGROUPS`).
fn xmpp_roster(jid: &str, password: &str, port: u16) -> (Option<i32>, String) {
    let script = Path::new(env!("CARGO_MANIFEST_DIR")).join("scripts/xmpp_roster.py");
    let out = Command::new("timeout")
        .args(["-k", "2", "25", "/usr/bin/python3"])
        .arg(&script)
        .args([jid, password, &port.to_string(), "15"])
        .stdin(Stdio::null())
        .output()
        .expect("run xmpp_roster.py");
    let text = format!(
        "{}{}",
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
    (out.status.code(), text)
}

/// Waits for the last line of `jid`'s roster sync (failing at once if ejabberd exits).
fn wait_for_sync(server: &mut Ejabberd, path: &Path, jid: &str) {
    let prefix = format!("roster sync {jid}: ");
    server.wait_until(
        &format!("xcauthd logging the end of {jid}'s roster sync"),
        Duration::from_secs(120),
        || {
            read_or_empty(path)
                .lines()
                .any(|l| l.contains(&prefix) && l.contains("ejabberdctl command(s)"))
        },
    );
}

#[test]
fn nextcloud_groups_become_ejabberd_shared_roster_groups() {
    let backend = BackendDouble::start(SECRET);
    backend.add_user(User::new("alice", "secret").display_name("Alice Liddell"));
    backend.add_user(User::new("bob", "builder").display_name("Bob the Builder"));
    backend.add_group("team", "The Team", &["alice", "bob"]);
    backend.add_group("hidden", "Hidden\u{200b}", &["alice", "bob"]);

    let w = Scratch::new("ejabberd-roster");
    let Started {
        mut server,
        c2s_port,
        log_dir,
    } = start_with_roster(&w, &backend);

    // Alice logs in: the reply is not held up by the sync, which runs behind it.
    let (rc, out) = xmpp_login("alice@example.org", "secret", c2s_port);
    assert_eq!(rc, XmppLogin::LoggedIn, "alice must log in:\n{out}");
    let xclog = log_dir.join("xcauth.log");
    let synced = "roster sync alice@example.org: 6 ejabberdctl command(s), all succeeded";
    server.wait_until(
        &format!("xcauthd logging {synced:?}"),
        Duration::from_secs(120),
        || read_or_empty(&xclog).contains(synced),
    );

    // ejabberd has the group (not the U+200B one), its members and the full names.
    let groups = ctl_lines(&server, &["srg_list", "example.org"]);
    assert_eq!(groups, ["The Team"], "srg_list");
    let members = ctl_lines(&server, &["srg_get_members", "The Team", "example.org"]);
    assert_eq!(members, ["alice@example.org", "bob@example.org"]);
    let fullname = ctl_lines(&server, &["get_vcard", "alice", "example.org", "FN"]);
    assert_eq!(fullname, ["Alice Liddell"]);

    // Bob logs in and finds Alice in his roster, in the group.
    let (rc, out) = xmpp_roster("bob@example.org", "builder", c2s_port);
    assert_eq!(rc, Some(0), "bob's roster:\n{out}");
    let alice = out
        .lines()
        .find(|l| l.starts_with("item alice@example.org\t"))
        .unwrap_or_else(|| panic!("alice is not in bob's roster:\n{out}"));
    assert!(alice.ends_with("\tThe Team"), "{alice}");

    assert!(
        server.stop(),
        "ejabberdctl stop did not end ejabberd within 10 s"
    );
}

/// Starts ejabberd with xcauthd as its extauth program and the shared roster on, and an
/// ejabberdctl wrapper for this node that xcauthd's roster sync calls.
fn start_with_roster(w: &Scratch, backend: &BackendDouble) -> Started {
    // The roster state lives in the shared database, in a directory only ejabberd (as whom
    // xcauthd runs) may write.
    let db_dir = w.join("xcauth-db");
    std::fs::create_dir(&db_dir).unwrap();
    std::fs::set_permissions(&db_dir, std::fs::Permissions::from_mode(0o700)).unwrap();
    chown_ejabberd(&db_dir);
    let ctl_wrapper = w.join("ejabberdctl-node");
    let extra = format!(
        "db={}\nejabberdctl={}\nroster-timeout=30s",
        db_dir.join("xcauth.sqlite3").display(),
        ctl_wrapper.display()
    );
    let started = start_ejabberd(
        w,
        backend,
        &extra,
        ", mod_admin_extra: {}, mod_roster: {}, mod_shared_roster: {}, mod_vcard: {}",
    );
    // ejabberdctl for this test node (its config, spool and node name). The srg_* and vCard
    // commands come from mod_admin_extra.
    let quoted: Vec<String> = started
        .server
        .args
        .iter()
        .map(|a| format!("'{}'", a.to_string_lossy()))
        .collect();
    std::fs::write(
        &ctl_wrapper,
        format!("#!/bin/sh\nexec ejabberdctl {} \"$@\"\n", quoted.join(" ")),
    )
    .unwrap();
    std::fs::set_permissions(&ctl_wrapper, std::fs::Permissions::from_mode(0o755)).unwrap();
    started
}

/// Names any Nextcloud user can choose do not reach other users' rosters in a harmful shape.
///
/// - A display name with a control character (`U+0001`, an escape sequence): ejabberd would
///   put it, as the vCard full name, into the roster items of every member of the user's
///   groups without escaping it, and each client would drop its session on the ill-formed
///   XML. It is not pushed (one log line), and bob, in a group with mallory, gets his roster.
/// - A group named `Admins\nAdmins` (a literal backslash and `n`): `srg_create` splits its
///   last argument (the groups whose members the group's members see) at `\n`, so the group
///   would show eve the members of "Admins". She sees no one of "Admins".
#[test]
fn hostile_display_and_group_names_reach_no_other_roster() {
    let backend = BackendDouble::start(SECRET);
    backend.add_user(User::new("carol", "c").display_name("Carol Admin"));
    backend.add_user(User::new("dave", "d").display_name("Dave Admin"));
    backend.add_user(User::new("eve", "e").display_name("Eve"));
    backend.add_user(User::new("mallory", "m").display_name("Mal\u{1}lory\u{1b}[31m"));
    backend.add_user(User::new("bob", "b").display_name("Bob"));
    backend.add_group("admins", "Admins", &["carol", "dave"]);
    backend.add_group("lure", "Admins\\nAdmins", &["eve"]);
    backend.add_group("team", "Team", &["mallory", "bob"]);

    let w = Scratch::new("ejabberd-roster-hostile");
    let Started {
        mut server,
        c2s_port,
        log_dir,
    } = start_with_roster(&w, &backend);
    let xclog = log_dir.join("xcauth.log");
    // Carol's login creates "Admins", eve's her group, bob's "Team".
    for (user, password) in [("carol", "c"), ("eve", "e"), ("bob", "b")] {
        let jid = format!("{user}@example.org");
        let (rc, out) = xmpp_login(&jid, password, c2s_port);
        assert_eq!(rc, XmppLogin::LoggedIn, "{jid} must log in:\n{out}");
        wait_for_sync(&mut server, &xclog, &jid);
    }
    // Bob's session survives his roster, mallory is in it (in the group, without the name).
    let (rc, out) = xmpp_roster("bob@example.org", "b", c2s_port);
    assert_eq!(rc, Some(0), "bob's roster:\n{out}");
    let mallory = out
        .lines()
        .find(|l| l.starts_with("item mallory@example.org\t"))
        .unwrap_or_else(|| panic!("mallory is not in bob's roster:\n{out}"));
    assert!(mallory.ends_with("\tTeam"), "{mallory}");

    // Eve sees no admin.
    let (rc, out) = xmpp_roster("eve@example.org", "e", c2s_port);
    assert_eq!(rc, Some(0), "eve's roster:\n{out}");
    assert!(
        !out.contains("carol@") && !out.contains("dave@"),
        "eve sees the admins:\n{out}"
    );
    let groups = ctl_lines(&server, &["srg_list", "example.org"]);
    assert_eq!(groups, ["Admins", "AdminsnAdmins", "Team"], "srg_list");
    let log = read_or_empty(&xclog);
    assert_eq!(
        log.matches("full name of mallory not set: it contains U+0001")
            .count(),
        1,
        "{log}"
    );

    assert!(
        server.stop(),
        "ejabberdctl stop did not end ejabberd within 10 s"
    );
}
