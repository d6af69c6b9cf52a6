//! The questions besides a login: each is one backend call with the scripted answer.

use super::engine;
use super::script::Script;
use crate::cache::CacheCheck;
use crate::vocab::{RosterEntry, RosterReply, SharedRoster, Unavailable, UserExists};

fn entry(uid: &str, groups: &[&str]) -> RosterEntry {
    RosterEntry {
        uid: uid.to_owned(),
        name: None,
        groups: groups.iter().map(|g| (*g).to_owned()).collect(),
    }
}

#[test]
fn isuser_asks_the_backend_and_passes_its_answer_on() {
    let script = Script::default()
        .isuser("alice", UserExists::Yes)
        .isuser("nobody", UserExists::No)
        .isuser("bob", UserExists::Unknown(Unavailable::Status(502)));
    let (e, _) = engine(script, CacheCheck::Hit, CacheCheck::Hit);
    assert_eq!(e.isuser("alice", "d"), UserExists::Yes);
    assert_eq!(e.isuser("nobody", "d"), UserExists::No);
    assert_eq!(
        e.isuser("bob", "d"),
        UserExists::Unknown(Unavailable::Status(502))
    );
}

#[test]
fn the_groups_of_an_account_are_those_of_exactly_that_uid() {
    // Asked with an empty domain, so Nextcloud looks up that account and no other.
    let roster = RosterReply::Roster(SharedRoster {
        entries: vec![
            entry("dave@example.org", &["Admins"]),
            entry("dave", &["Team", "Staff"]),
        ],
        body: String::new(),
    });
    let script = Script::default()
        .roster("dave", "", roster)
        .roster(
            "dave",
            "d",
            RosterReply::Unavailable(Unavailable::Status(500)),
        )
        .roster(
            "erin",
            "",
            RosterReply::Unavailable(Unavailable::Status(500)),
        );
    let (e, _) = engine(script, CacheCheck::Hit, CacheCheck::Hit);
    assert_eq!(
        e.groups_of_account("dave", "d"),
        Ok(vec!["Team".to_owned(), "Staff".to_owned()])
    );
    // The roster itself is asked in the domain's authdomain.
    assert_eq!(
        e.roster("dave", "d"),
        RosterReply::Unavailable(Unavailable::Status(500))
    );
    assert_eq!(
        e.groups_of_account("erin", "d"),
        Err(Unavailable::Status(500))
    );
}
