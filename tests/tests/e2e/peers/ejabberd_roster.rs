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

#[test]
fn nextcloud_groups_become_ejabberd_shared_roster_groups() {
    let backend = BackendDouble::start(SECRET);
    backend.add_user(User::new("alice", "secret").display_name("Alice Liddell"));
    backend.add_user(User::new("bob", "builder").display_name("Bob the Builder"));
    backend.add_group("team", "The Team", &["alice", "bob"]);
    backend.add_group("hidden", "Hidden\u{200b}", &["alice", "bob"]);

    let w = Scratch::new("ejabberd-roster");
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
    let Started {
        mut server,
        c2s_port,
        log_dir,
    } = start_ejabberd(
        &w,
        &backend,
        &extra,
        ", mod_admin_extra: {}, mod_roster: {}, mod_shared_roster: {}, mod_vcard: {}",
    );
    // ejabberdctl for this test node (its config, spool and node name). The srg_* and vCard
    // commands come from mod_admin_extra.
    let quoted: Vec<String> = server
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
