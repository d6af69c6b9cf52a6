//! The one table of options. It drives the file parser ([`super::RawConfig::parse_str`]), the
//! typed layer ([`super::Config::resolve`]) and the daemon's command line (built from it with
//! clap's builder API), so a new option is added here once.

/// How many values an option takes.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum OptionKind {
    /// No value on the command line (`--debug`). In a file: a bare key, or one of
    /// `true`/`false`/`yes`/`no`/`on`/`off`/`1`/`0`.
    Flag,
    /// Exactly one value (`--url URL`, `url=URL`).
    Value,
    /// Exactly this many values (`-A USER DOMAIN PASSWORD`). In a file: space-separated, or
    /// a list `[a, b, c]` (list items may be quoted to keep spaces).
    Values(usize),
    /// Repeatable (`--listen A --listen B`). In a file: repeat the line, or give `[a, b]`.
    /// A later layer replaces the whole list.
    List,
}

/// One option of xcauth, with everything needed for help text and parsing.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct OptionSpec {
    /// Canonical long name, also the key in `xcauth.conf` (`cache-query-ttl`).
    pub long: &'static str,
    /// Single-letter command-line alias (`-u`), if any.
    pub short: Option<char>,
    /// How many values it takes.
    pub kind: OptionKind,
    /// Placeholder(s) for help: one for [`OptionKind::Value`] and [`OptionKind::List`], `n`
    /// for [`OptionKind::Values`], none for flags.
    pub value_names: &'static [&'static str],
    /// The built-in default as the user would write it (`5,10`, `1h`); shown in help and
    /// equal to what [`super::Config::defaults`] holds (a unit test checks this).
    pub default: Option<&'static str>,
    /// One-paragraph help text.
    pub help: &'static str,
    /// Accepted on the command line only, not in a config file (`config-file`, `version`).
    pub cli_only: bool,
    /// The value is a credential: it is never shown in `Debug` output of a raw layer or in
    /// error messages.
    pub sensitive: bool,
}

const fn opt(
    long: &'static str,
    short: Option<char>,
    kind: OptionKind,
    value_names: &'static [&'static str],
    default: Option<&'static str>,
    help: &'static str,
) -> OptionSpec {
    OptionSpec {
        long,
        short,
        kind,
        value_names,
        default,
        help,
        cli_only: false,
        sensitive: false,
    }
}

const fn flag(long: &'static str, short: Option<char>, help: &'static str) -> OptionSpec {
    opt(long, short, OptionKind::Flag, &[], None, help)
}

const fn cli_only(spec: OptionSpec) -> OptionSpec {
    OptionSpec {
        cli_only: true,
        ..spec
    }
}

const fn sensitive(spec: OptionSpec) -> OptionSpec {
    OptionSpec {
        sensitive: true,
        ..spec
    }
}

use OptionKind::{List, Value, Values};

/// Every option of xcauth 2 (docs/xcauth2.md §2.2), then this rewrite's extensions
/// (marked "Extension" in their help), in the order `--help` lists them.
pub static OPTIONS: &[OptionSpec] = &[
    cli_only(opt(
        "config-file",
        Some('c'),
        Value,
        &["PATH"],
        None,
        "Read settings from PATH after /etc/xcauth.conf; PATH wins over /etc/xcauth.conf and \
         the command line wins over both. Command line only",
    )),
    opt(
        "db",
        None,
        Value,
        &["PATH"],
        Some("/var/lib/xcauth/xcauth.sqlite3"),
        "SQLite database for the password cache, per-domain settings and shared roster state; \
         ':memory:' for a private in-memory database",
    ),
    opt(
        "cache-storage",
        None,
        Value,
        &["MODE"],
        Some("none"),
        "Where to cache passwords the backend accepted: none, memory (lost on exit) or db (the \
         authcache table in --db)",
    ),
    opt(
        "domain-db",
        Some('b'),
        Value,
        &["PATH"],
        None,
        "Legacy per-domain database (Berkeley DB), read only to migrate it into --db",
    ),
    sensitive(opt(
        "auth-test",
        Some('A'),
        Values(3),
        &["USER", "DOMAIN", "PASSWORD"],
        None,
        "Check USER@DOMAIN's PASSWORD once, print the result and exit",
    )),
    opt(
        "isuser-test",
        Some('I'),
        Values(2),
        &["USER", "DOMAIN"],
        None,
        "Check once whether USER@DOMAIN exists, print the result and exit",
    ),
    opt(
        "roster-test",
        Some('R'),
        Values(2),
        &["USER", "DOMAIN"],
        None,
        "Fetch USER@DOMAIN's shared roster once (and update ejabberd's when --ejabberdctl is \
         set), print it and exit",
    ),
    flag(
        "update-roster",
        Some('T'),
        "Deprecated; has no effect (accepted so that old command lines keep working)",
    ),
    opt(
        "url",
        Some('u'),
        Value,
        &["URL"],
        None,
        "URL of the Nextcloud JSXC external API (http or https), as shown on Nextcloud's JSXC \
         admin page",
    ),
    sensitive(opt(
        "secret",
        Some('s'),
        Value,
        &["SECRET"],
        None,
        "API secret shown on Nextcloud's JSXC admin page. Prefer setting it in \
         /etc/xcauth.conf: other users can see command lines",
    )),
    opt(
        "log",
        Some('l'),
        Value,
        &["DIR"],
        Some("/var/log/xcauth"),
        "Directory for xcauth.log and xcauth.err",
    ),
    flag(
        "debug",
        Some('d'),
        "Log at DEBUG level (passwords and tokens are never logged)",
    ),
    flag(
        "interactive",
        Some('i'),
        "Log to stderr at DEBUG level instead of the log files",
    ),
    opt(
        "type",
        Some('t'),
        Value,
        &["TYPE"],
        None,
        "Framing on stdin/stdout and on sockets without a known name: generic, prosody, \
         ejabberd, saslauthd or postfix",
    ),
    opt(
        "timeout",
        None,
        Value,
        &["SECONDS"],
        Some("5,10"),
        "Backend timeouts in whole seconds: N for both, or CONNECT,READ",
    ),
    opt(
        "cache-db",
        None,
        Value,
        &["PATH"],
        None,
        "Legacy cache database, read only to migrate it into --db",
    ),
    opt(
        "cache-query-ttl",
        None,
        Value,
        &["DURATION"],
        Some("1h"),
        "Longest gap between two uses of a cached password. A duration is an integer with an \
         optional suffix s, m, h, d or w (seconds without one)",
    ),
    opt(
        "cache-verification-ttl",
        None,
        Value,
        &["DURATION"],
        Some("1d"),
        "Longest age of the last backend verification for a normal cache hit",
    ),
    opt(
        "cache-unreachable-ttl",
        None,
        Value,
        &["DURATION"],
        Some("1w"),
        "While the backend is unreachable, accept a cached password verified within this time",
    ),
    opt(
        "cache-bcrypt-rounds",
        None,
        Value,
        &["ROUNDS"],
        Some("12,4"),
        "bcrypt cost of cached passwords, 4 to 31: N for both, or PERSISTENT,MEMORY (used by \
         cache-storage=db and cache-storage=memory)",
    ),
    opt(
        "ejabberdctl",
        None,
        Value,
        &["PATH"],
        None,
        "Path of ejabberdctl; enables syncing the shared roster into ejabberd",
    ),
    // The shared-roster sync into ejabberd (with --ejabberdctl).
    opt(
        "roster-exclude-groups",
        None,
        List,
        &["GROUP"],
        None,
        "Extension: Nextcloud groups (display names, or as sanitised for ejabberd) never \
         synced into ejabberd's shared roster; as are groups whose name ends in U+200B",
    ),
    opt(
        "roster-max-group-size",
        None,
        Value,
        &["N"],
        Some("0"),
        "Extension: groups with more members than N in a user's roster are not synced into \
         ejabberd (one huge group floods every roster); 0: no bound",
    ),
    flag(
        "roster-other-domains",
        None,
        "Extension: also sync roster members whose uid names another XMPP domain \
         (ceo@other.example in a roster of example.org): their full names and group \
         memberships are set through ejabberdctl, as xcauth 2 did. Off by default: a \
         domain's Nextcloud must not rename or group the users of another domain",
    ),
    opt(
        "roster-timeout",
        None,
        Value,
        &["DURATION"],
        Some("10s"),
        "Extension: the longest one ejabberdctl call of the roster sync may take before it is \
         killed (at least 1s)",
    ),
    opt(
        "shared-roster-db",
        None,
        Value,
        &["PATH"],
        None,
        "Legacy shared roster database, read only to migrate it into --db",
    ),
    cli_only(flag(
        "version",
        None,
        "Print the version and exit. Command line only",
    )),
    opt(
        "listen",
        None,
        List,
        &["PROTO@ADDR"],
        None,
        "Extension: when not socket-activated, listen on ADDR speaking PROTO (generic, prosody, \
         ejabberd, saslauthd or postfix). ADDR is tcp:IP:PORT (IPv6 as tcp:[::1]:PORT; without \
         :PORT the protocol's usual port) or unix:/absolute/path. Repeat the option; in the file \
         repeat the line or write [a, b]",
    ),
    opt(
        "max-connections",
        None,
        Value,
        &["N"],
        Some("64"),
        "Extension: most connections served at the same time on each listener (at least 1); \
         every listener has its own slots. When they are all taken and another client waits, \
         a connection is closed for it: the one without a reply to a valid request for \
         longest (a second at least), else the one that held its slot longest (5 seconds at \
         least); one being answered never is",
    ),
    opt(
        "max-connections-per-user",
        None,
        Value,
        &["N"],
        Some("16"),
        "Extension: most connections one local user (not root) may hold on each Unix socket; \
         beyond, one of their own is closed for the new one (as for max-connections), or the \
         new one waits (unread, up to request-timeout) until one may be. 0: no bound. \
         TCP peers have no user: \
         bind TCP listeners to loopback and see the README (Full listeners)",
    ),
    opt(
        "idle-timeout",
        None,
        Value,
        &["DURATION"],
        Some("5m"),
        "Extension: close a connection that sends no request for this long (at least 1s)",
    ),
    opt(
        "max-line",
        None,
        Value,
        &["BYTES"],
        Some("8192"),
        "Extension: longest request line accepted in the generic/prosody and postfix framings, \
         in bytes (1024 to 1048576); longer lines are rejected",
    ),
    flag(
        "syslog",
        None,
        "Extension: log to syslog instead of the files in --log",
    ),
    opt(
        "db-mode",
        None,
        Value,
        &["MODE"],
        Some("0600"),
        "Extension: octal permissions of a newly created database file; the owner must be able \
         to read and write it",
    ),
    opt(
        "socket-mode",
        None,
        Value,
        &["MODE"],
        Some("0660"),
        "Extension: octal permissions of the Unix sockets xcauthd --daemon creates for listen= \
         (systemd socket units set their own with SocketMode=)",
    ),
    opt(
        "socket-group",
        None,
        Value,
        &["GROUP"],
        None,
        "Extension: group that owns the Unix sockets xcauthd --daemon creates, e.g. sasl for a \
         saslauthd socket or www-data for pam_xcauth.so socket= under Apache",
    ),
    opt(
        "request-timeout",
        None,
        Value,
        &["DURATION"],
        Some("30s"),
        "Extension: close a connection whose request is not complete this long after its \
         first byte arrived, however slowly it trickles in (at least 1s)",
    ),
    opt(
        "socket-allow-users",
        None,
        List,
        &["USER"],
        None,
        "Extension: users (names or uids) that may connect to xcauthd's Unix sockets, checked \
         with SO_PEERCRED; root and xcauthd's own user always may",
    ),
    opt(
        "socket-allow-groups",
        None,
        List,
        &["GROUP"],
        None,
        "Extension: groups (names or gids, primary or supplementary) whose members may connect \
         to xcauthd's Unix sockets. Default: the socket file's group (--socket-group)",
    ),
    opt(
        "breaker-failures",
        None,
        Value,
        &["N"],
        Some("5"),
        "Extension: after N backend failures in a row, stop asking the backend for \
         --breaker-cooldown and answer from the cache; 0 disables the circuit breaker",
    ),
    opt(
        "breaker-cooldown",
        None,
        Value,
        &["DURATION"],
        Some("30s"),
        "Extension: how long the circuit breaker stays open before the backend is tried again \
         (at least 1s)",
    ),
    opt(
        "served-domains",
        None,
        List,
        &["DOMAIN"],
        None,
        "Extension: the domains the global url/secret serve (a domain with a row in the \
         database's domains table is served by that row). A name in any other domain is an \
         unknown user. Unset: every domain, as xcauth 2 did",
    ),
    opt(
        "ca-file",
        None,
        Value,
        &["PATH"],
        None,
        "Extension: PEM file of extra CA certificates trusted for the backend, in addition to \
         the system's",
    ),
    flag(
        "allow-insecure-http",
        None,
        "Extension: accept a plain http:// backend URL (url= or a per-domain authurl) on a host \
         other than loopback. Off by default: the backend's answers are not signed, so anyone \
         on the network path could accept any password",
    ),
    opt(
        "throttle-failures",
        None,
        Value,
        &["N"],
        Some("5"),
        "Extension: rejected passwords for one user@domain within --throttle-window that lock \
         it out: during a lock-out no password is checked (answered rejected at once), valid \
         time-limited tokens still log in; 0 turns the per-user throttle off",
    ),
    opt(
        "throttle-remote-failures",
        None,
        Value,
        &["N"],
        Some("20"),
        "Extension: rejected passwords from one remote address (PAM_RHOST, any user) within \
         --throttle-window that lock the address out; 0 counts no addresses",
    ),
    opt(
        "throttle-window",
        None,
        Value,
        &["DURATION"],
        Some("15m"),
        "Extension: how long failures count, and how long after a lock-out one more failure \
         locks again for twice as long (at least 1s)",
    ),
    opt(
        "throttle-backoff",
        None,
        Value,
        &["DURATION"],
        Some("1m"),
        "Extension: length of the first lock-out; each further one doubles it (at least 1s)",
    ),
    opt(
        "throttle-max-backoff",
        None,
        Value,
        &["DURATION"],
        Some("1h"),
        "Extension: longest lock-out (at least --throttle-backoff)",
    ),
    opt(
        "throttle-max-entries",
        None,
        Value,
        &["N"],
        Some("10000"),
        "Extension: most users and addresses the throttle remembers, in memory and in the \
         database's throttle table each (at least 100); expired ones are dropped first",
    ),
    opt(
        "write-timeout",
        None,
        Value,
        &["DURATION"],
        Some("30s"),
        "Extension: longest time xcauthd waits to write a reply to a client that does not \
         read it, then closes the connection (at least 1s)",
    ),
    // Counters (docs/metrics.md).
    opt(
        "metrics-listen",
        None,
        Value,
        &["IP:PORT"],
        None,
        "Extension: serve the counters as Prometheus text at http://IP:PORT/metrics (daemon \
         with listeners only); a loopback address unless --metrics-allow-remote",
    ),
    flag(
        "metrics-allow-remote",
        None,
        "Extension: allow a --metrics-listen address other than loopback (the endpoint has \
         no authentication)",
    ),
];

/// The option with this canonical long name (`cache-query-ttl`), if any. Use
/// [`normalize_key`] first for names as a user wrote them.
pub fn find_option(long: &str) -> Option<&'static OptionSpec> {
    OPTIONS.iter().find(|spec| spec.long == long)
}

/// The canonical form of a key as written in a file: leading dashes removed (`--debug`) and
/// `_` read as `-` (`cache_query_ttl`).
pub fn normalize_key(key: &str) -> String {
    key.trim_start_matches('-').replace('_', "-")
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn table_is_consistent() {
        for (i, spec) in OPTIONS.iter().enumerate() {
            assert!(
                OPTIONS[..i].iter().all(|other| other.long != spec.long),
                "duplicate {}",
                spec.long
            );
            if let Some(short) = spec.short {
                assert!(
                    OPTIONS[..i].iter().all(|other| other.short != Some(short)),
                    "duplicate -{short}"
                );
            }
            let names = match spec.kind {
                OptionKind::Flag => 0,
                OptionKind::Value | OptionKind::List => 1,
                OptionKind::Values(n) => n,
            };
            assert_eq!(
                spec.value_names.len(),
                names,
                "value names of {}",
                spec.long
            );
            assert!(!spec.help.is_empty());
            assert_eq!(normalize_key(spec.long), spec.long);
        }
    }

    #[test]
    fn xcauth2_short_options() {
        let shorts: Vec<(char, &str)> = OPTIONS
            .iter()
            .filter_map(|s| s.short.map(|c| (c, s.long)))
            .collect();
        assert_eq!(
            shorts,
            [
                ('c', "config-file"),
                ('b', "domain-db"),
                ('A', "auth-test"),
                ('I', "isuser-test"),
                ('R', "roster-test"),
                ('T', "update-roster"),
                ('u', "url"),
                ('s', "secret"),
                ('l', "log"),
                ('d', "debug"),
                ('i', "interactive"),
                ('t', "type"),
            ]
        );
    }

    #[test]
    fn lookup_and_normalize() {
        assert_eq!(
            find_option("cache-query-ttl").map(|s| s.default),
            Some(Some("1h"))
        );
        assert!(find_option("foo").is_none());
        assert_eq!(normalize_key("--cache_query_ttl"), "cache-query-ttl");
        assert!(find_option("secret").is_some_and(|s| s.sensitive));
        assert!(find_option("auth-test").is_some_and(|s| s.sensitive));
        assert!(find_option("version").is_some_and(|s| s.cli_only));
    }
}
