use super::*;
use crate::db::Db;

fn db() -> Db {
    let db = Db::open_memory().unwrap();
    db.run(|c| {
        c.execute_batch(
            "INSERT INTO authcache (jid, pwhash, firstauth, remoteauth, anyauth) VALUES
               ('alice@a.example', '$2b$04$abcdefghijklmnopqrstuuABCDEFGHIJKLMNOPQRSTUVWXYZ01234', '2020-01-01 10:00:00', '2020-01-02 11:00:00.250000', '2020-01-03 12:00:00'),
               ('bob@A.EXAMPLE', 'h', NULL, NULL, NULL),
               ('carol@a_b.example', 'h', NULL, NULL, NULL),
               ('dave@axb.example', 'h', NULL, NULL, NULL),
               ('eve@sub.a.example', 'h', NULL, NULL, NULL);
             INSERT INTO rosterinfo (jid, fullname, grouplist, responsehash) VALUES
               ('alice@a.example', 'Alice', 'g1', 'abc'),
               ('dave@axb.example', 'Dave', 'g2', 'def');
             INSERT INTO rostergroups (groupname, userlist) VALUES
               ('g1@a.example', 'alice@a.example'),
               ('Team X@a.example', 'alice@a.example'),
               ('g2@axb.example', 'dave@axb.example');
             INSERT INTO domains (xmppdomain, authsecret, authurl, authdomain) VALUES
               ('a.example', 'topsecret', 'https://cloud.a/', NULL),
               ('axb.example', '', 'https://cloud.x/', '');",
        )
    })
    .unwrap();
    db
}

fn count(db: &Db, sql: &str) -> i64 {
    db.run(|c| c.query_row(sql, [], |r| r.get(0))).unwrap()
}

#[test]
fn domains_add_change_remove_list() {
    let db = db();
    let r = add_domain(
        &db,
        "new.example",
        &Secret::new("s3cr3t"),
        "https://n/",
        None,
    )
    .unwrap();
    assert_eq!(
        r.to_string(),
        "added domain new.example (authsecret, authurl, authdomain)"
    );
    assert!(matches!(
        add_domain(&db, "new.example", &Secret::new("x"), "https://n/", None),
        Err(AdminError::AlreadyExists(_))
    ));
    let change = DomainChange {
        url: Some("https://m/".into()),
        ..DomainChange::default()
    };
    let r = change_domain(&db, "new.example", &change).unwrap();
    assert_eq!(r.to_string(), "changed domain new.example: authurl");
    // Only the given field changed.
    let (s, u, a): (String, String, Option<String>) = db
        .run(|c| {
            c.query_row(
                "SELECT authsecret, authurl, authdomain FROM domains WHERE xmppdomain = 'new.example'",
                [],
                |r| Ok((r.get(0)?, r.get(1)?, r.get(2)?)),
            )
        })
        .unwrap();
    assert_eq!((s.as_str(), u.as_str(), a), ("s3cr3t", "https://m/", None));
    let change = DomainChange {
        authdomain: Some(Some("cloud".into())),
        ..DomainChange::default()
    };
    change_domain(&db, "new.example", &change).unwrap();
    let change = DomainChange {
        authdomain: Some(None),
        ..DomainChange::default()
    };
    change_domain(&db, "new.example", &change).unwrap();

    let list: Vec<String> = list_domains(&db)
        .unwrap()
        .iter()
        .map(ToString::to_string)
        .collect();
    assert_eq!(
        list,
        [
            "a.example\tauthsecret=<set>\tauthurl=https://cloud.a/\tauthdomain=<NULL>",
            "axb.example\tauthsecret=\"\"\tauthurl=https://cloud.x/\tauthdomain=\"\"",
            "new.example\tauthsecret=<set>\tauthurl=https://m/\tauthdomain=<NULL>",
        ]
    );
    assert!(!list.concat().contains("s3cr3t") && !list.concat().contains("topsecret"));

    assert_eq!(
        remove_domain(&db, "new.example").unwrap().to_string(),
        "removed domain new.example"
    );
    assert!(matches!(
        remove_domain(&db, "new.example"),
        Err(AdminError::NotFound(_))
    ));
    assert!(matches!(
        change_domain(
            &db,
            "New.example",
            &DomainChange {
                url: Some("https://x/".into()),
                ..DomainChange::default()
            }
        ),
        Err(AdminError::NotFound(_))
    ));
}

#[test]
fn domain_input_is_validated() {
    let db = db();
    let s = Secret::new("s");
    for bad in ["", "u@new.example", "%", "a b", "a.example\n", " a.example"] {
        assert!(
            matches!(
                add_domain(&db, bad, &s, "https://x/", None),
                Err(AdminError::Invalid(_))
            ),
            "{bad:?}"
        );
        assert!(
            matches!(remove_domain(&db, bad), Err(AdminError::Invalid(_))),
            "{bad:?}"
        );
        assert!(
            matches!(delete_host(&db, bad), Err(AdminError::Invalid(_))),
            "{bad:?}"
        );
    }
    assert!(matches!(
        add_domain(&db, "n.example", &Secret::new(""), "https://x/", None),
        Err(AdminError::Invalid(_))
    ));
    assert!(matches!(
        add_domain(&db, "n.example", &s, "ftp://x/", None),
        Err(AdminError::Invalid(_))
    ));
    assert!(matches!(
        add_domain(&db, "n.example", &s, "https://x/", Some("a@b")),
        Err(AdminError::Invalid(_))
    ));
    assert!(matches!(
        change_domain(&db, "a.example", &DomainChange::default()),
        Err(AdminError::Invalid(_))
    ));
    // A rejected change leaves the table as it was.
    assert_eq!(count(&db, "SELECT count(*) FROM domains"), 2);
    // An empty authdomain is legal (sends `domain=`).
    add_domain(&db, "n.example", &s, "https://x/", Some("")).unwrap();
}

#[test]
fn errors_never_echo_the_secret() {
    let db = db();
    let e = add_domain(
        &db,
        "a.example",
        &Secret::new("hunter2"),
        "https://x/",
        None,
    )
    .unwrap_err();
    assert!(!e.to_string().contains("hunter2"), "{e}");
    let e = add_domain(
        &db,
        "z.example",
        &Secret::new("hunter2\n"),
        "https://x/",
        None,
    )
    .unwrap_err();
    assert!(!e.to_string().contains("hunter2"), "{e}");
}

#[test]
fn cache_show_and_purge() {
    let db = db();
    let info = show_cache(&db, "alice@a.example").unwrap().unwrap();
    let text = info.to_string();
    assert_eq!(
        text,
        "alice@a.example\tpwhash=<set>\tfirstauth=2020-01-01 10:00:00\tremoteauth=2020-01-02 11:00:00.250000\tanyauth=2020-01-03 12:00:00"
    );
    assert!(!text.contains("$2b$"));
    assert_eq!(show_cache(&db, "nobody@a.example").unwrap(), None);
    assert_eq!(purge_cache(&db, "alice@a.example").unwrap().authcache, 1);
    let again = purge_cache(&db, "alice@a.example").unwrap();
    assert_eq!(
        again.to_string(),
        "no cache entry for alice@a.example; nothing deleted"
    );
    for bad in [
        "alice",
        "a@b@c",
        "@a.example",
        "alice@",
        "alice@a%",
        "al ice@a.example\n",
    ] {
        assert!(
            matches!(show_cache(&db, bad), Err(AdminError::Invalid(_))),
            "{bad:?}"
        );
        assert!(
            matches!(purge_cache(&db, bad), Err(AdminError::Invalid(_))),
            "{bad:?}"
        );
        assert!(
            matches!(delete_user(&db, bad), Err(AdminError::Invalid(_))),
            "{bad:?}"
        );
    }
}

#[test]
fn delete_user_removes_roster_and_cache_rows() {
    let db = db();
    let r = delete_user(&db, "alice@a.example").unwrap();
    assert_eq!((r.rosterinfo, r.authcache), (1, 1));
    assert_eq!(
        r.to_string(),
        "deleted user alice@a.example: 1 rosterinfo row, 1 authcache row (group memberships are updated at the next login of a member)"
    );
    let r = delete_user(&db, "alice@a.example").unwrap();
    assert_eq!((r.rosterinfo, r.authcache), (0, 0));
    assert_eq!(count(&db, "SELECT count(*) FROM rosterinfo"), 1);
}

#[test]
fn delete_group_returns_its_parts() {
    let db = db();
    let r = delete_group(&db, "Team X@a.example").unwrap();
    assert_eq!(
        (r.group.as_str(), r.domain.as_str(), r.rostergroups),
        ("Team X", "a.example", 1)
    );
    assert_eq!(
        r.to_string(),
        "deleted group Team X@a.example: 1 rostergroups row"
    );
    assert_eq!(delete_group(&db, "nope@a.example").unwrap().rostergroups, 0);
    for bad in [
        "g1",
        "g1@a@b",
        "@a.example",
        "g1@",
        "g\n@a.example",
        "g1@a%b",
    ] {
        assert!(
            matches!(delete_group(&db, bad), Err(AdminError::Invalid(_))),
            "{bad:?}"
        );
    }
    assert_eq!(count(&db, "SELECT count(*) FROM rostergroups"), 2);
}

#[test]
fn delete_host_matches_the_domain_suffix_only() {
    let db = db();
    // `_` must not act as a wildcard: axb.example survives.
    let r = delete_host(&db, "a_b.example").unwrap();
    assert_eq!(
        (r.rostergroups, r.rosterinfo, r.authcache, r.domains),
        (0, 0, 1, 0)
    );
    assert_eq!(
        count(
            &db,
            "SELECT count(*) FROM authcache WHERE jid = 'dave@axb.example'"
        ),
        1
    );

    let r = delete_host(&db, "a.example").unwrap();
    // bob@A.EXAMPLE goes too (LIKE is case-insensitive, as in the original);
    // eve@sub.a.example does not (the match is on "@a.example").
    assert_eq!(
        (r.rostergroups, r.rosterinfo, r.authcache, r.domains),
        (2, 1, 2, 1)
    );
    assert_eq!(
        r.to_string(),
        "deleted host a.example: 2 rostergroups rows, 1 rosterinfo row, 2 authcache rows, 1 domains row"
    );
    assert_eq!(
        count(
            &db,
            "SELECT count(*) FROM authcache WHERE jid = 'eve@sub.a.example'"
        ),
        1
    );
    assert_eq!(count(&db, "SELECT count(*) FROM rostergroups"), 1);
    assert_eq!(count(&db, "SELECT count(*) FROM domains"), 1);
}

#[test]
fn like_pattern_escapes_wildcards() {
    assert_eq!(at_domain_pattern("a_b%c\\d"), "%@a\\_b\\%c\\\\d");
}

#[test]
fn refresh_roster_clears_three_columns() {
    let db = db();
    let r = refresh_roster(&db).unwrap();
    assert_eq!(r.rosterinfo, 2);
    assert_eq!(
        count(&db, "SELECT count(*) FROM rosterinfo WHERE fullname IS NULL AND grouplist IS NULL AND responsehash IS NULL"),
        2
    );
}
