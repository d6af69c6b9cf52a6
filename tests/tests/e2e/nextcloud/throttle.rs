//! Nextcloud's own brute-force throttle on the OCS login path: failed logins counted per
//! client address, more than ten shut that address for every login (429), an allow-listed
//! address is never shut, and behind a trusted proxy the address comes from
//! `X-Forwarded-For`.

use xcauth_tests::nextcloud::{Nextcloud, Reply, Request, ALICE, BOB};

use super::{assert_is, assert_refused, source};

/// A failed login that costs no password hash: a login name Nextcloud does not know.
fn fail_unknown(nc: &Nextcloud, from: std::net::Ipv4Addr, n: usize) -> Reply {
    nc.send(
        &Request::ocs("cloud/user")
            .basic(&format!("nobody-{n}"), "guess")
            .from(from),
    )
}

fn assert_throttled(reply: &Reply) {
    assert_eq!(reply.status, 429, "{reply:?}");
    assert_eq!(reply.ocs_statuscode(), 429, "{}", reply.text());
    assert_eq!(reply.ocs_message(), "Reached maximum delay");
}

/// `bruteforce` of the anonymous capabilities, as seen from `from`.
fn capabilities(nc: &Nextcloud, from: std::net::Ipv4Addr) -> serde_json::Value {
    let reply = nc.send(&Request::ocs("cloud/capabilities").from(from));
    assert_eq!(reply.status, 200, "{reply:?}");
    reply.ocs_data()["capabilities"]["bruteforce"].clone()
}

#[test]
fn more_than_ten_failures_shut_the_address_for_every_login_even_right_ones() {
    let nc = Nextcloud::start("throttle-shut");
    let gateway = source(2);
    // Two wrong passwords for alice, then her right one: her own failures are cleared.
    for _ in 0..2 {
        assert_refused(
            &nc.send(
                &Request::ocs("cloud/user")
                    .basic(ALICE.id, "wrong")
                    .from(gateway),
            ),
        );
    }
    assert_eq!(nc.bruteforce_attempts("127.0.0.2"), 2);
    assert_is(
        &nc.send(
            &Request::ocs("cloud/user")
                .basic(ALICE.id, ALICE.password)
                .from(gateway),
        ),
        &ALICE,
    );
    assert_eq!(nc.bruteforce_attempts("127.0.0.2"), 0);

    // Ten failures (other names): still open, and alice's success does not clear them.
    for n in 1..=10 {
        assert_refused(&fail_unknown(&nc, gateway, n));
    }
    assert_eq!(nc.bruteforce_attempts("127.0.0.2"), 10);
    // A request without credentials is refused but not counted.
    assert_refused(&nc.send(&Request::ocs("cloud/user").from(gateway)));
    assert_eq!(nc.bruteforce_attempts("127.0.0.2"), 10);
    assert_is(
        &nc.send(
            &Request::ocs("cloud/user")
                .basic(ALICE.id, ALICE.password)
                .from(gateway),
        ),
        &ALICE,
    );
    assert_eq!(nc.bruteforce_attempts("127.0.0.2"), 10);
    let open = capabilities(&nc, gateway);
    assert_eq!(open["allow-listed"], false, "{open}");
    assert!(open["delay"].as_u64().unwrap() > 0, "{open}");

    // The eleventh is still answered 401; after it, everything from this address is 429.
    assert_refused(&fail_unknown(&nc, gateway, 11));
    assert_eq!(nc.bruteforce_attempts("127.0.0.2"), 11);
    let app = &nc.app_passwords().alice.secret;
    for (login, password) in [
        (ALICE.id, ALICE.password),
        (ALICE.id, app.as_str()),
        (BOB.id, BOB.password),
        ("nobody-12", "guess"),
    ] {
        assert_throttled(
            &nc.send(
                &Request::ocs("cloud/user")
                    .basic(login, password)
                    .from(gateway),
            ),
        );
    }
    // Other addresses are not affected.
    assert_is(
        &nc.send(
            &Request::ocs("cloud/user")
                .basic(ALICE.id, ALICE.password)
                .from(source(3)),
        ),
        &ALICE,
    );
    assert_eq!(nc.bruteforce_attempts("127.0.0.3"), 0);
    // `occ security:bruteforce:reset` opens the address again.
    nc.occ(&["security:bruteforce:reset", "127.0.0.2"]);
    assert_is(
        &nc.send(
            &Request::ocs("cloud/user")
                .basic(ALICE.id, ALICE.password)
                .from(gateway),
        ),
        &ALICE,
    );
}

#[test]
fn an_allow_listed_address_is_never_shut() {
    let nc = Nextcloud::start("throttle-allow");
    let listed = source(4);
    nc.allow_list(1, "127.0.0.4/32");
    let caps = capabilities(&nc, listed);
    assert_eq!(caps["allow-listed"], true, "{caps}");
    assert_eq!(caps["delay"], 0, "{caps}");
    assert_eq!(capabilities(&nc, source(5))["allow-listed"], false);
    for n in 1..=12 {
        assert_refused(&fail_unknown(&nc, listed, n));
    }
    assert_is(
        &nc.send(
            &Request::ocs("cloud/user")
                .basic(ALICE.id, ALICE.password)
                .from(listed),
        ),
        &ALICE,
    );
    let attempts = nc.occ(&["security:bruteforce:attempts", "127.0.0.4", "--output=json"]);
    let attempts: serde_json::Value = serde_json::from_str(&attempts).unwrap();
    assert_eq!(attempts["bypass-listed"], true, "{attempts}");
    // The same from an address that is not listed shuts it.
    for n in 1..=11 {
        assert_refused(&fail_unknown(&nc, source(5), n));
    }
    assert_throttled(
        &nc.send(
            &Request::ocs("cloud/user")
                .basic(ALICE.id, ALICE.password)
                .from(source(5)),
        ),
    );
}

#[test]
fn behind_a_trusted_proxy_failures_count_under_the_forwarded_address() {
    let nc = Nextcloud::start("throttle-proxy");
    let proxy = source(6);
    let via = |client: &str, login: &str, password: &str| {
        nc.send(
            &Request::ocs("cloud/user")
                .basic(login, password)
                .header("X-Forwarded-For", client)
                .from(proxy),
        )
    };
    // Not trusted yet: the header is ignored, the proxy's address counts.
    assert_refused(&via("203.0.113.9", "nobody", "guess"));
    assert_eq!(nc.bruteforce_attempts("127.0.0.6"), 1);
    assert_eq!(nc.bruteforce_attempts("203.0.113.9"), 0);

    nc.trusted_proxies(&["127.0.0.6"]);
    for n in 1..=11 {
        assert_refused(&via("203.0.113.9", &format!("nobody-{n}"), "guess"));
    }
    assert_eq!(nc.bruteforce_attempts("203.0.113.9"), 11);
    assert_eq!(nc.bruteforce_attempts("127.0.0.6"), 1);
    // That client is shut; another behind the same proxy is not.
    assert_throttled(&via("203.0.113.9", ALICE.id, ALICE.password));
    assert_is(&via("198.51.100.7", ALICE.id, ALICE.password), &ALICE);
    // The rightmost address that is not a trusted proxy counts.
    assert_refused(&via("192.0.2.1, 198.51.100.8", "nobody", "guess"));
    assert_eq!(nc.bruteforce_attempts("198.51.100.8"), 1);
    assert_eq!(nc.bruteforce_attempts("192.0.2.1"), 0);
    // Something that is not an address: the proxy's own address counts.
    assert_refused(&via("client.example.org", "nobody", "guess"));
    assert_eq!(nc.bruteforce_attempts("127.0.0.6"), 2);
}
