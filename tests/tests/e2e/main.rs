//! The end-to-end suite: one test binary (it links once), one module per subject. Run it all
//! with `./scripts/test.sh`, or after `cargo build --workspace --bins`:
//! `cargo test -p xcauth-tests -- --test-threads=2` (add a module path such as `pam::` or
//! `daemon::modes::` to run a part).
//!
//! What each group needs, so that a reader sees which tests run anywhere and which need root
//! and the peer programs `scripts/install-test-deps.sh` installs:
//!
//! | group        | drives                                             | needs                          |
//! |--------------|----------------------------------------------------|--------------------------------|
//! | `double`     | the JSXC backend double over real TCP              | nothing                        |
//! | `in_process` | the core (client, engine, caches, database)        | nothing                        |
//! | `daemon`     | the built `xcauthd` as a process                   | nothing, except: root for      |
//! |              |                                                    | `modes::a_database_another_…`, |
//! |              |                                                    | `sockets::unix_sockets_…` and  |
//! |              |                                                    | `sockets::socket_group_…`;     |
//! |              |                                                    | `systemd-socket-activate`      |
//! | `peers`      | ejabberd, Prosody, Postfix, testsaslauthd, Dovecot | root and the installed peers   |
//! | `pam`        | `pam_xcauth.so` in pamtester, saslauthd, Apache    | root, pamtester, pam_wrapper,  |
//! |              | (under pam_wrapper or with real `/etc/pam.d` files)| apache2, sasl2-bin, curl       |
//! | `nextcloud`  | a real Nextcloud 32 (`php -S`), OpenLDAP behind it | php8.2-*, slapd, ldap-utils,   |
//! |              | (facts the Nextcloud backend relies on)            | the server tarball (see        |
//! |              |                                                    | `docs/nextcloud.md`)           |
//!
//! All tests share this process and run two at a time: every test picks its own free ports,
//! scratch directories, `/etc/pam.d` service names and local user names, and the tests that
//! need the whole process to themselves (they count its threads or install the global
//! logger) re-run themselves alone in a child process
//! ([`xcauth_tests::support::in_own_process`]).

mod double;

mod nextcloud;

mod in_process {
    mod backend_client;
    mod cache_timeline;
    mod db_broken;
    mod db_compat;
    mod db_stress;
    mod no_secrets_in_logs;
}

mod daemon {
    mod activation;
    mod admin;
    mod check;
    mod modes;
    mod roster;
    mod sockets;
    mod stats;
    mod throttle;
    mod tls;
}

mod packaging {
    mod deb;
    mod scripts;
    mod units;
}

mod peers {
    mod dovecot;
    mod ejabberd;
    mod ejabberd_roster;
    mod fail2ban;
    mod postfix;
    mod prosody;
    mod saslauthd;
}

mod pam {
    mod apache;
    mod bench;
    mod etc;
    mod saslauthd;
    mod security;
    mod threads;
    mod throttle;
    mod tls;
    mod wrapper;
}
