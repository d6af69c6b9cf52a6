//! The OCS user and group API (`provisioning_api`) with app passwords: what an admin service
//! account reads about users and groups, and what a group admin and a plain user may see.

use super::assert_no_such_user;
use serde_json::json;
use xcauth_tests::nextcloud::{
    Nextcloud, Reply, Request, ALICE, BOB, CAROL, DAVE, FLOOR2, GROUPS, READERS, STAFF,
};

/// 404 with OCS status 998: the user exists but the caller may not see it.
fn assert_hidden(reply: &Reply) {
    assert_eq!(reply.status, 404, "{reply:?}");
    assert_eq!(reply.ocs_statuscode(), 998, "{}", reply.text());
}

#[test]
fn the_service_account_reads_any_user_by_id_in_any_case() {
    let nc = Nextcloud::start("prov-users");
    for path in ["cloud/users/alice", "cloud/users/ALICE"] {
        let reply = nc.as_service(path);
        assert_eq!(reply.status, 200, "{reply:?}");
        let data = reply.ocs_data();
        assert_eq!(data["id"], ALICE.id, "{data}");
        assert_eq!(data["displayname"], ALICE.shown_name());
        assert_eq!(data["email"], ALICE.email.unwrap());
        assert_eq!(data["groups"], json!(ALICE.groups));
        assert_eq!(data["enabled"], true);
        assert_eq!(data["backend"], "Database");
    }
    // A disabled user is there, marked disabled.
    let dave = nc.as_service("cloud/users/dave");
    assert_eq!(dave.status, 200, "{dave:?}");
    assert_eq!(dave.ocs_data()["enabled"], false);
    assert_eq!(dave.ocs_data()["groups"], json!(DAVE.groups));
    assert_no_such_user(&nc.as_service("cloud/users/nobody-here"));

    let groups = nc.as_service("cloud/users/alice/groups");
    assert_eq!(groups.status, 200, "{groups:?}");
    assert_eq!(groups.ocs_data(), json!({"groups": ALICE.groups}));
    // Search matches display names too.
    let found = nc.as_service("cloud/users?search=Liddell");
    assert_eq!(found.ocs_data(), json!({"users": ["alice"]}), "{found:?}");
}

#[test]
fn the_service_account_reads_groups_with_display_names_and_members() {
    let nc = Nextcloud::start("prov-groups");
    let staff = nc.as_service("cloud/groups/staff/users/details");
    assert_eq!(staff.status, 200, "{staff:?}");
    let users = staff.ocs_data()["users"].clone();
    let mut ids: Vec<&str> = users
        .as_object()
        .unwrap()
        .keys()
        .map(String::as_str)
        .collect();
    ids.sort_unstable();
    assert_eq!(ids, ["alice", "dave"], "{users}");
    assert_eq!(users["alice"]["displayname"], ALICE.shown_name());
    assert_eq!(users["dave"]["enabled"], false);

    let missing = nc.as_service("cloud/groups/no-such-group/users/details");
    assert_eq!(missing.status, 404, "{missing:?}");
    assert_eq!(missing.ocs_statuscode(), 998);

    // `search` matches the display name as well as the id.
    for (search, group) in [("Book", READERS), ("read", READERS), ("Second", FLOOR2)] {
        let reply = nc.as_service(&format!("cloud/groups/details?search={search}"));
        assert_eq!(reply.status, 200, "{reply:?}");
        let found = reply.ocs_data()["groups"].clone();
        assert_eq!(found.as_array().unwrap().len(), 1, "{search}: {found}");
        assert_eq!(found[0]["id"], group.id);
        assert_eq!(found[0]["displayname"], group.display_name);
    }
    let all = nc.as_service("cloud/groups/details?search=");
    let listed: Vec<String> = all.ocs_data()["groups"]
        .as_array()
        .unwrap()
        .iter()
        .map(|g| g["id"].as_str().unwrap().to_owned())
        .collect();
    for g in GROUPS {
        assert!(listed.iter().any(|id| id == g.id), "{} in {listed:?}", g.id);
    }
    assert!(listed.iter().any(|id| id == "admin"), "{listed:?}");
    let staff_count = all.ocs_data()["groups"]
        .as_array()
        .unwrap()
        .iter()
        .find(|g| g["id"] == STAFF.id)
        .unwrap()["usercount"]
        .clone();
    assert_eq!(staff_count, 2);
}

#[test]
fn a_group_admin_sees_its_groups_users_only_and_others_look_hidden() {
    let nc = Nextcloud::start("prov-subadmin");
    let carol = &nc.app_passwords().carol.secret;
    let get = |path: &str| nc.send(&Request::ocs(path).basic(CAROL.id, carol));
    let bob = get("cloud/users/bob");
    assert_eq!(bob.status, 200, "{bob:?}");
    assert_eq!(bob.ocs_data()["id"], BOB.id);
    assert_eq!(
        get("cloud/users/bob/groups").ocs_data(),
        json!({"groups": BOB.groups})
    );
    let floor2 = get("cloud/groups/floor2/users/details");
    assert_eq!(floor2.status, 200, "{floor2:?}");
    assert!(floor2.ocs_data()["users"].get("bob").is_some());
    // Outside its groups: 404 with OCS status 998, not "User does not exist"…
    assert_hidden(&get("cloud/users/alice"));
    assert_hidden(&get("cloud/users/alice/groups"));
    assert_hidden(&get("cloud/groups/staff/users/details"));
    // …which a user that does not exist gets.
    assert_no_such_user(&get("cloud/users/nobody-here"));
    // The group list with details is for admins.
    let details = get("cloud/groups/details?search=");
    assert_eq!(details.status, 403, "{details:?}");
}

#[test]
fn a_plain_user_sees_itself_only() {
    let nc = Nextcloud::start("prov-plain");
    let alice = &nc.app_passwords().alice.secret;
    let get = |path: &str| nc.send(&Request::ocs(path).basic(ALICE.id, alice));
    let me = get("cloud/users/alice");
    assert_eq!(me.status, 200, "{me:?}");
    assert_eq!(me.ocs_data()["id"], ALICE.id);
    assert_eq!(
        get("cloud/users/alice/groups").ocs_data(),
        json!({"groups": ALICE.groups})
    );
    assert_hidden(&get("cloud/users/bob"));
    assert_no_such_user(&get("cloud/users/nobody-here"));
}
