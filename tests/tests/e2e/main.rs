//! The end-to-end suite: one test binary (it links once), one module per subject. Run it all
//! with `./scripts/test.sh` (in a network namespace of its own, docs/testing.md §1), or after
//! `cargo build --workspace --bins`: `cargo test -p xcauth-tests -- --test-threads=2` (add a
//! module path such as `pam::` or `daemon::modes::` to run a part).
//!
//! What each group drives and needs: the one list of it (docs/testing.md points here). "Root"
//! tests fail with a clear message without it; a missing program fails with "run
//! scripts/install-test-deps.sh". The machine lock (`xcauth_tests::machine::MachineLock`) is
//! taken by the tests that change the machine; they run one at a time across every run of the
//! suite on this machine.
//!
//! | group        | drives                                              | needs                                      |
//! |--------------|-----------------------------------------------------|--------------------------------------------|
//! | `double`     | the JSXC backend double over real TCP, `jsxc-double`| nothing                                    |
//! | `in_process` | the core (client, engine, caches, SQLite database)  | nothing; as root, `db_broken::file_mode_…` |
//! |              |                                                     | re-runs itself as `nobody` (`setpriv`)     |
//! | `daemon`     | the built `xcauthd` as a process                    | nothing, except: root for                  |
//! |              |                                                     | `modes::a_database_another_…` (chown),     |
//! |              |                                                     | `sockets::unix_sockets_…`,                 |
//! |              |                                                     | `sockets::one_user_holds_…` and            |
//! |              |                                                     | `sockets::socket_group_…` (`setpriv` to    |
//! |              |                                                     | `nobody`, group `nogroup`);                |
//! |              |                                                     | `systemd-socket-activate` (`modes::`),     |
//! |              |                                                     | python3 (`activation::`, a launcher),      |
//! |              |                                                     | `fail2ban-regex` (`throttle::`), curl      |
//! |              |                                                     | (`stats::`), `openssl` (`tls::`)           |
//! | `packaging`  | the Debian package: `build-deb.sh`, `dpkg -i`,      | root, dpkg, `systemd-socket-activate`,     |
//! |              | the installed units and pam-auth-update profile;    | `setpriv`, pamtester; the machine lock     |
//! |              | `install-pam.sh` and `fuzz-smoke.sh` (`scripts::`)  | (`deb::`); `scripts::`: root, pam_wrapper  |
//! | `peers`      | ejabberd (+ roster), Prosody, Postfix `postmap`,    | the installed peers, python3-slixmpp,      |
//! |              | `testsaslauthd`, Dovecot `doveadm`, fail2ban        | `timeout`; root for ejabberd (chown, it    |
//! |              | (`fail2ban-server` with the shipped jail)           | switches user) and Dovecot (`/etc/pam.d`)  |
//! | `pam`        | `pam_xcauth.so` in pamtester, saslauthd, Apache,    | root, pamtester, libpam-wrapper, apache2,  |
//! |              | python3-pam (under pam_wrapper or with real         | sasl2-bin, curl, python3-pam, strace,      |
//! |              | `/etc/pam.d` files)                                 | `setpriv`, `readelf`; local users          |
//! |              |                                                     | (`etc::stacking_…`, `security::acct_…`):   |
//! |              |                                                     | the machine lock                           |
//! | `nextcloud`  | a real Nextcloud 32 (`php -S`), OpenLDAP behind it  | php8.2-*, slapd, ldap-utils, the server    |
//! |              | (facts the Nextcloud backend relies on)             | tarball (see `docs/nextcloud.md`)          |
//!
//! All tests share this process and run two at a time, and another run of the suite may share
//! the machine: a test binds its listeners itself and hands them to xcauthd
//! (`xcauth_tests::activation::Listeners`), leases the ports a peer binds
//! (`xcauth_tests::machine::reserve_port`), and picks its own scratch directories,
//! `/etc/pam.d` service names and local user names. The tests that need the whole process to
//! themselves (they count its threads or install the global logger) re-run themselves alone
//! in a child process ([`xcauth_tests::support::in_own_process`]).

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
