//! Tests across the layers: files and command line → [`Config`].

use std::fs;
use std::net::SocketAddr;
use std::path::Path;
use std::time::Duration;

use super::*;

const SECRET: &str = "S3cr3t-Value-xyzzy";
const PASSWORD: &str = "Hunter2-Pass-plugh";

fn file(text: &str) -> RawConfig {
    RawConfig::parse_str(text, Path::new("/etc/xcauth.conf")).unwrap()
}

fn resolve_file(text: &str) -> Result<Config, ConfigError> {
    Config::resolve(&[RawConfig::parse_str(text, Path::new("/etc/xcauth.conf"))?])
}

fn file_error(text: &str) -> String {
    resolve_file(text).unwrap_err().to_string()
}

fn cli(settings: &[(&str, RawValue)]) -> RawConfig {
    let mut raw = RawConfig::new();
    for (key, value) in settings {
        raw.set(key, value.clone(), Origin::CommandLine);
    }
    raw
}

fn one(text: &str) -> RawValue {
    RawValue::One(text.to_owned())
}

fn many(items: &[&str]) -> RawValue {
    RawValue::Many(items.iter().map(|s| s.to_string()).collect())
}

fn cli_error(key: &str, value: RawValue) -> String {
    Config::resolve(&[cli(&[(key, value)])])
        .unwrap_err()
        .to_string()
}

fn secs(n: u64) -> Duration {
    Duration::from_secs(n)
}

fn tcp(protocol: Protocol, addr: &str) -> ListenSpec {
    ListenSpec {
        protocol,
        addr: ListenAddr::Tcp(addr.parse::<SocketAddr>().unwrap()),
    }
}

/// Every option set to a non-default value, as the file and the command line give it.
fn everything_expected() -> Config {
    Config {
        config_file: None,
        url: Some(
            BackendUrl::parse("https://cloud.example.com:8443/apps/ojsxc/ajax/externalApi.php?x=y")
                .unwrap(),
        ),
        secret: Some(Secret::new(SECRET)),
        db: DbLocation::Memory,
        cache_storage: CacheStorage::Db,
        domain_db: Some("/var/lib/xcauth/domains.db".into()),
        cache_db: Some("/var/cache/xcauth/cache.db".into()),
        shared_roster_db: Some("/var/lib/xcauth/roster.db".into()),
        auth_test: Some((
            "alice".into(),
            "example.org".into(),
            Password::new(PASSWORD),
        )),
        isuser_test: Some(("bob".into(), "example.net".into())),
        roster_test: Some(("carol".into(), "example.com".into())),
        update_roster: true,
        log_dir: "/tmp/xcauth-log".into(),
        debug: true,
        interactive: true,
        protocol: Some(Protocol::Ejabberd),
        timeout: BackendTimeouts {
            connect: secs(3),
            read: secs(20),
        },
        cache_query_ttl: secs(4 * 3600),
        cache_verification_ttl: secs(2 * 86_400),
        cache_unreachable_ttl: secs(3 * 604_800),
        bcrypt_rounds: BcryptRounds {
            persistent: 10,
            memory: 6,
        },
        ejabberdctl: Some("/usr/sbin/ejabberdctl".into()),
        roster: crate::config::RosterOptions::default(),
        listen: vec![
            tcp(Protocol::Prosody, "127.0.0.1:23663"),
            tcp(Protocol::Ejabberd, "[::1]:23662"),
            ListenSpec {
                protocol: Protocol::Saslauthd,
                addr: ListenAddr::Unix("/run/saslauthd/mux".into()),
            },
        ],
        max_connections: 16,
        max_connections_per_user: 4,
        idle_timeout: secs(90),
        max_line: 4096,
        syslog: true,
        db_mode: 0o640,
        socket_mode: 0o600,
        socket_group: Some("sasl".into()),
        request_timeout: secs(20),
        socket_allow_users: vec!["postfix".into(), "33".into()],
        socket_allow_groups: Some(vec!["sasl".into()]),
        breaker_failures: 0,
        breaker_cooldown: secs(120),
        ca_file: Some("/etc/ssl/private-ca.pem".into()),
        served_domains: Some(vec!["example.org".into(), "example.net".into()]),
        allow_insecure_http: false,
        throttle: crate::throttle::ThrottleSettings {
            failures: 7,
            remote_failures: 0,
            window: secs(600),
            backoff: secs(30),
            max_backoff: secs(7200),
            max_entries: 500,
        },
        write_timeout: secs(10),
        metrics_listen: None,
        metrics_allow_remote: false,
        version: false,
    }
}

#[test]
fn defaults_match_the_option_table() {
    let defaults = Config::defaults();
    assert_eq!(Config::resolve(&[]).unwrap(), defaults);
    assert_eq!(Config::resolve(&[RawConfig::defaults()]).unwrap(), defaults);
    assert_eq!(
        defaults.db,
        DbLocation::Path("/var/lib/xcauth/xcauth.sqlite3".into())
    );
    assert_eq!(defaults.log_dir, Path::new("/var/log/xcauth"));
    assert_eq!(
        defaults.timeout,
        BackendTimeouts {
            connect: secs(5),
            read: secs(10)
        }
    );
    assert_eq!(defaults.cache_query_ttl, secs(3600));
    assert_eq!(defaults.cache_verification_ttl, secs(86_400));
    assert_eq!(defaults.cache_unreachable_ttl, secs(604_800));
    assert_eq!(
        defaults.bcrypt_rounds,
        BcryptRounds {
            persistent: 12,
            memory: 4
        }
    );
    assert_eq!(defaults.cache_storage, CacheStorage::None);
    assert_eq!(defaults.max_connections, 64);
    assert_eq!(defaults.max_connections_per_user, 16);
    assert_eq!(defaults.idle_timeout, secs(300));
    assert_eq!(defaults.max_line, 8192);
    assert_eq!(defaults.db_mode, 0o600);
    assert_eq!(defaults.breaker_failures, 5);
    assert_eq!(defaults.breaker_cooldown, secs(30));
    assert!(defaults.url.is_none() && defaults.secret.is_none() && defaults.listen.is_empty());
}

#[test]
fn every_option_from_a_file() {
    let text = format!(
        "# every file option\n\
         url = https://cloud.example.com:8443/apps/ojsxc/ajax/externalApi.php?x=y\n\
         secret={SECRET}\n\
         db=:memory:\n\
         cache-storage: db\n\
         domain-db /var/lib/xcauth/domains.db\n\
         cache-db=/var/cache/xcauth/cache.db\n\
         shared-roster-db=/var/lib/xcauth/roster.db\n\
         auth-test=[alice, example.org, {PASSWORD}]\n\
         isuser-test=bob example.net\n\
         roster-test=[carol,example.com]\n\
         update-roster\n\
         log=/tmp/xcauth-log\n\
         debug\n\
         interactive=yes\n\
         type=ejabberd\n\
         timeout=3,20\n\
         cache-query-ttl=4h\n\
         cache-verification-ttl=2d\n\
         cache-unreachable-ttl=3w\n\
         cache-bcrypt-rounds=10,6\n\
         ejabberdctl=/usr/sbin/ejabberdctl\n\
         listen=prosody@tcp:127.0.0.1:23663\n\
         listen=[ejabberd@tcp:[::1], saslauthd@unix:/run/saslauthd/mux]\n\
         max-connections=16\n\
         max-connections-per-user=4\n\
         idle-timeout=90\n\
         max-line=4096\n\
         syslog=on\n\
         db-mode=0640\n\
         socket-mode=600\n\
         socket-group=sasl\n\
         request-timeout=20s\n\
         socket-allow-users=[postfix, 33]\n\
         socket-allow-groups=sasl\n\
         breaker-failures=0\n\
         breaker-cooldown=2m\n\
         ca-file=/etc/ssl/private-ca.pem\n\
         served-domains=[Example.ORG, example.net]\n\
         throttle-failures=7\n\
         throttle-remote-failures=0\n\
         throttle-window=10m\n\
         throttle-backoff=30s\n\
         throttle-max-backoff=2h\n\
         throttle-max-entries=500\n\
         write-timeout=10s\n"
    );
    assert_eq!(resolve_file(&text).unwrap(), everything_expected());
}

#[test]
fn every_option_from_the_command_line() {
    let raw = cli(&[
        (
            "url",
            one("https://cloud.example.com:8443/apps/ojsxc/ajax/externalApi.php?x=y"),
        ),
        ("secret", one(SECRET)),
        ("db", one(":memory:")),
        ("cache-storage", one("db")),
        ("domain-db", one("/var/lib/xcauth/domains.db")),
        ("cache-db", one("/var/cache/xcauth/cache.db")),
        ("shared-roster-db", one("/var/lib/xcauth/roster.db")),
        ("auth-test", many(&["alice", "example.org", PASSWORD])),
        ("isuser-test", many(&["bob", "example.net"])),
        ("roster-test", many(&["carol", "example.com"])),
        ("update-roster", RawValue::Flag),
        ("log", one("/tmp/xcauth-log")),
        ("debug", RawValue::Flag),
        ("interactive", RawValue::Flag),
        ("type", one("ejabberd")),
        ("timeout", one("3,20")),
        ("cache-query-ttl", one("4h")),
        ("cache-verification-ttl", one("2d")),
        ("cache-unreachable-ttl", one("3w")),
        ("cache-bcrypt-rounds", one("10,6")),
        ("ejabberdctl", one("/usr/sbin/ejabberdctl")),
        (
            "listen",
            many(&[
                "prosody@tcp:127.0.0.1:23663",
                "ejabberd@tcp:[::1]:23662",
                "saslauthd@unix:/run/saslauthd/mux",
            ]),
        ),
        ("max-connections", one("16")),
        ("max-connections-per-user", one("4")),
        ("idle-timeout", one("90s")),
        ("max-line", one("4096")),
        ("syslog", RawValue::Flag),
        ("db-mode", one("640")),
        ("socket-mode", one("0600")),
        ("socket-group", one("sasl")),
        ("request-timeout", one("20")),
        ("socket-allow-users", many(&["postfix", "33"])),
        ("socket-allow-groups", one("sasl")),
        ("breaker-failures", one("0")),
        ("breaker-cooldown", one("120")),
        ("ca-file", one("/etc/ssl/private-ca.pem")),
        (
            "served-domains",
            RawValue::Many(vec!["example.org".into(), "EXAMPLE.net".into()]),
        ),
        ("throttle-failures", one("7")),
        ("throttle-remote-failures", one("0")),
        ("throttle-window", one("600")),
        ("throttle-backoff", one("30")),
        ("throttle-max-backoff", one("2h")),
        ("throttle-max-entries", one("500")),
        ("write-timeout", one("10")),
    ]);
    assert_eq!(Config::resolve(&[raw]).unwrap(), everything_expected());
    // The command-line-only options.
    let config = Config::resolve(&[cli(&[
        ("config-file", one("/etc/other.conf")),
        ("version", RawValue::Flag),
    ])])
    .unwrap();
    assert_eq!(
        config.config_file.as_deref(),
        Some(Path::new("/etc/other.conf"))
    );
    assert!(config.version);
}

#[test]
fn every_table_option_is_applied() {
    // A sample per option; adding an option to the table without handling it fails here.
    let sample = |long: &str| -> RawValue {
        match long {
            "auth-test" => many(&["u", "d", "p"]),
            "isuser-test" | "roster-test" => many(&["u", "d"]),
            "listen" => many(&["generic@tcp:127.0.0.1:1"]),
            "url" => one("https://h/"),
            "db" => one(":memory:"),
            "cache-storage" => one("memory"),
            "type" => one("postfix"),
            "timeout"
            | "cache-bcrypt-rounds"
            | "max-connections"
            | "max-connections-per-user"
            | "breaker-failures" => one("7"),
            "max-line" => one("2048"),
            "throttle-failures" | "throttle-remote-failures" => one("7"),
            "throttle-max-entries" => one("700"),
            "throttle-window" | "throttle-backoff" | "throttle-max-backoff" | "write-timeout" => {
                one("7m")
            }
            "roster-max-group-size" => one("7"),
            "roster-timeout" => one("7m"),
            "served-domains" => one("example.org"),
            "metrics-listen" => one("127.0.0.1:9101"),
            "db-mode" => one("0660"),
            "socket-mode" => one("0600"),
            "cache-query-ttl"
            | "cache-verification-ttl"
            | "cache-unreachable-ttl"
            | "idle-timeout"
            | "request-timeout"
            | "breaker-cooldown" => one("7m"),
            _ => one("/some/path"),
        }
    };
    for spec in OPTIONS {
        let value = if spec.kind == OptionKind::Flag {
            RawValue::Flag
        } else {
            sample(spec.long)
        };
        let config = Config::resolve(&[cli(&[(spec.long, value)])])
            .unwrap_or_else(|e| panic!("{}: {e}", spec.long));
        assert_ne!(config, Config::defaults(), "{} changed nothing", spec.long);
    }
}

#[test]
fn precedence_defaults_system_file_config_file_command_line() {
    let dir = tempfile::tempdir().unwrap();
    let system = dir.path().join("xcauth.conf");
    let extra = dir.path().join("extra.conf");
    fs::write(
        &system,
        format!(
            "url=https://system.example/\nsecret={SECRET}\ncache-query-ttl=2h\n\
             cache-verification-ttl=2d\ntimeout=7\ndebug\nlisten=[generic@tcp:127.0.0.1:1, \
             generic@tcp:127.0.0.1:2]\n"
        ),
    )
    .unwrap();
    fs::write(
        &extra,
        "cache-query-ttl=3h\ntimeout=8,9\ndebug=false\nlisten=postfix@tcp:127.0.0.1:3\n",
    )
    .unwrap();

    // Defaults only (no system file).
    let config = Config::load(&RawConfig::new(), &dir.path().join("absent.conf")).unwrap();
    assert_eq!(config, Config::defaults());

    // System file over defaults.
    let config = Config::load(&RawConfig::new(), &system).unwrap();
    assert_eq!(
        config.url.as_ref().map(BackendUrl::as_str),
        Some("https://system.example/")
    );
    assert_eq!(config.cache_query_ttl, secs(7200));
    assert_eq!(
        config.timeout,
        BackendTimeouts {
            connect: secs(7),
            read: secs(7)
        }
    );
    assert!(config.debug);
    assert_eq!(config.listen.len(), 2);
    assert_eq!(config.cache_unreachable_ttl, secs(604_800), "default kept");

    // -c file over the system file; keys missing from it still come from the system file.
    let with_c = cli(&[("config-file", one(extra.to_str().unwrap()))]);
    let config = Config::load(&with_c, &system).unwrap();
    assert_eq!(config.config_file.as_deref(), Some(extra.as_path()));
    assert_eq!(config.cache_query_ttl, secs(3 * 3600));
    assert_eq!(
        config.timeout,
        BackendTimeouts {
            connect: secs(8),
            read: secs(9)
        }
    );
    assert!(
        !config.debug,
        "debug=false in the -c file switches the flag off"
    );
    assert_eq!(
        config.listen,
        [tcp(Protocol::Postfix, "127.0.0.1:3")],
        "lists are replaced"
    );
    assert_eq!(
        config.cache_verification_ttl,
        secs(2 * 86_400),
        "from the system file"
    );
    assert_eq!(
        config.secret.as_ref().map(Secret::expose),
        Some(SECRET),
        "from the system file"
    );

    // Command line over both.
    let mut full = with_c.clone();
    full.set("cache-query-ttl", one("5m"), Origin::CommandLine);
    full.set("debug", RawValue::Flag, Origin::CommandLine);
    full.set("listen", many(&[]), Origin::CommandLine);
    let config = Config::load(&full, &system).unwrap();
    assert_eq!(config.cache_query_ttl, secs(300));
    assert!(config.debug);
    assert!(config.listen.is_empty());
    assert_eq!(
        config.timeout,
        BackendTimeouts {
            connect: secs(8),
            read: secs(9)
        },
        "from -c"
    );
    assert_eq!(
        config.url.as_ref().map(BackendUrl::as_str),
        Some("https://system.example/")
    );

    // Errors report the layer they came from.
    fs::write(&extra, "\ncache-query-ttl=2x\n").unwrap();
    let e = Config::load(&with_c, &system).unwrap_err().to_string();
    assert_eq!(
        e,
        format!(
            "{}:2: key 'cache-query-ttl': expected a duration like 30s, 15m, 1h, 1d or 2w, got \
             '2x'",
            extra.display()
        )
    );
    // ... and a bad value in an earlier layer is never parsed when a later one overrides it.
    full.set("cache-query-ttl", one("1m"), Origin::CommandLine);
    assert_eq!(
        Config::load(&full, &system).unwrap().cache_query_ttl,
        secs(60)
    );
}

#[test]
fn missing_or_unreadable_config_files() {
    let dir = tempfile::tempdir().unwrap();
    let missing = dir.path().join("nope.conf");
    let with_c = cli(&[("config-file", one(missing.to_str().unwrap()))]);
    let e = Config::load(&with_c, &dir.path().join("absent.conf")).unwrap_err();
    assert!(matches!(e, ConfigError::Open { .. }));
    assert_eq!(e.exit_code(), 2);
    let text = e.to_string();
    assert!(
        text.starts_with(&format!("cannot open config file {}: ", missing.display())),
        "{text}"
    );
    assert!(text.contains("No such file or directory"), "{text}");
    // A system "file" that exists but cannot be read is an error, not silently skipped.
    let e = Config::load(&RawConfig::new(), dir.path()).unwrap_err();
    assert!(matches!(e, ConfigError::Open { .. }), "{e}");
    let e = cli_error("config-file", one(""));
    assert_eq!(e, "command line: --config-file: must not be empty");
}

#[test]
fn timeout_tuples() {
    let t = |c, r| BackendTimeouts {
        connect: secs(c),
        read: secs(r),
    };
    assert_eq!(resolve_file("timeout=5,10").unwrap().timeout, t(5, 10));
    assert_eq!(resolve_file("timeout=7").unwrap().timeout, t(7, 7));
    assert_eq!(resolve_file("timeout = [2, 3]").unwrap().timeout, t(2, 3));
    assert_eq!(
        file_error("debug\ntimeout=1,2,3"),
        "/etc/xcauth.conf:2: key 'timeout': expected N or CONNECT,READ in whole seconds (each \
         at least 1), got '1,2,3'"
    );
    assert_eq!(
        cli_error("timeout", one("1,2,3")),
        "command line: --timeout: expected N or CONNECT,READ in whole seconds (each at least 1), \
         got '1,2,3'"
    );
    assert!(file_error("timeout=0").ends_with("got '0'"));
    assert!(file_error("timeout=[1,2,3]").ends_with("got '1,2,3'"));
    assert_eq!(
        file_error("timeout"),
        "/etc/xcauth.conf:1: key 'timeout': missing value"
    );
}

#[test]
fn bcrypt_round_tuples() {
    let r = |persistent, memory| BcryptRounds { persistent, memory };
    assert_eq!(
        resolve_file("cache-bcrypt-rounds=12,4")
            .unwrap()
            .bcrypt_rounds,
        r(12, 4)
    );
    assert_eq!(
        resolve_file("cache-bcrypt-rounds=8").unwrap().bcrypt_rounds,
        r(8, 8)
    );
    assert_eq!(
        file_error("cache-bcrypt-rounds=1,2,3"),
        "/etc/xcauth.conf:1: key 'cache-bcrypt-rounds': expected N or PERSISTENT,MEMORY, each \
         from 4 to 31, got '1,2,3'"
    );
    assert_eq!(
        cli_error("cache-bcrypt-rounds", one("3")),
        "command line: --cache-bcrypt-rounds: expected N or PERSISTENT,MEMORY, each from 4 to \
         31, got '3'"
    );
}

#[test]
fn durations_in_every_ttl_option() {
    for (text, seconds) in [
        ("45", 45),
        ("45s", 45),
        ("5m", 300),
        ("1h", 3600),
        ("1d", 86_400),
        ("1w", 604_800),
    ] {
        let config = resolve_file(&format!(
            "cache-query-ttl={text}\ncache-verification-ttl={text}\ncache-unreachable-ttl={text}\n\
             idle-timeout={text}\nbreaker-cooldown={text}"
        ))
        .unwrap();
        assert_eq!(config.cache_query_ttl, secs(seconds));
        assert_eq!(config.cache_verification_ttl, secs(seconds));
        assert_eq!(config.cache_unreachable_ttl, secs(seconds));
        assert_eq!(config.idle_timeout, secs(seconds));
        assert_eq!(config.breaker_cooldown, secs(seconds));
    }
    for bad in ["2x", "-1h", "h", "1.5h", "''"] {
        let shown = if bad == "''" { "" } else { bad };
        for key in [
            "cache-query-ttl",
            "cache-verification-ttl",
            "cache-unreachable-ttl",
        ] {
            assert_eq!(
                file_error(&format!("{key}={bad}")),
                format!(
                    "/etc/xcauth.conf:1: key '{key}': expected a duration like 30s, 15m, 1h, \
                     1d or 2w, got '{shown}'"
                )
            );
        }
    }
    assert_eq!(
        cli_error("cache-unreachable-ttl", one("1.5h")),
        "command line: --cache-unreachable-ttl: expected a duration like 30s, 15m, 1h, 1d or \
         2w, got '1.5h'"
    );
    // A zero TTL is allowed (the cache never hits); a zero idle timeout or cooldown is not.
    assert_eq!(
        resolve_file("cache-query-ttl=0").unwrap().cache_query_ttl,
        secs(0)
    );
    assert_eq!(
        file_error("idle-timeout=0s"),
        "/etc/xcauth.conf:1: key 'idle-timeout': must be at least 1s, got '0s'"
    );
    assert!(file_error("breaker-cooldown=0").contains("must be at least 1s"));
}

#[test]
fn url_validation() {
    let config = resolve_file("url=https://h:8443/x?a=b").unwrap();
    assert_eq!(
        config.url.as_ref().map(BackendUrl::as_str),
        Some("https://h:8443/x?a=b")
    );
    let config =
        resolve_file("url: http://localhost/index.php/apps/ojsxc/ajax/externalApi.php").unwrap();
    assert_eq!(
        config.url.as_ref().and_then(|u| u.url().host_str()),
        Some("localhost")
    );
    assert_eq!(
        file_error("url=ftp://h/x"),
        "/etc/xcauth.conf:1: key 'url': 'ftp://h/x' is not an http or https URL (scheme 'ftp' \
         is not supported)"
    );
    assert_eq!(
        cli_error("url", one("garbage")),
        "command line: --url: 'garbage' is not a valid URL: relative URL without a base"
    );
    assert!(cli_error("url", one("https://")).starts_with("command line: --url: 'https://'"));
    let err = file_error("url=https://admin:Hunter2@cloud.example/x");
    assert!(
        err.contains("must not contain a user name or password"),
        "{err}"
    );
    assert!(!err.contains("Hunter2"), "{err}");
    assert!(
        resolve_file("url=https://h/x?mail=a@b").is_ok(),
        "'@' after the host is fine"
    );
    assert_eq!(
        cli_error("url", many(&["https://a/", "https://b/"])),
        "command line: --url: takes a single value, not a list"
    );
}

#[test]
fn plain_http_to_a_remote_host_is_refused_unless_allowed() {
    let err = file_error("secret=s\nurl=http://cloud.example.org/x");
    assert!(
        err.starts_with("/etc/xcauth.conf:2: key 'url': plain http to a host other than loopback"),
        "{err}"
    );
    assert!(
        cli_error("url", one("http://192.0.2.7/x")).starts_with("command line: --url: plain http")
    );
    for loopback in [
        "http://127.0.0.1:8080/x",
        "http://127.1.2.3/x",
        "http://[::1]:80/x",
        "http://localhost/x",
        "http://LOCALHOST:81/x",
        "https://cloud.example.org/x",
    ] {
        assert!(
            resolve_file(&format!("url={loopback}")).is_ok(),
            "{loopback}"
        );
    }
    for allowed in [
        "allow-insecure-http\nurl=http://cloud.example.org/x",
        "url=http://cloud.example.org/x\nallow-insecure-http=yes",
    ] {
        let config = resolve_file(allowed).unwrap();
        assert!(config.allow_insecure_http);
    }
    // The flag in one layer, the URL in another.
    let system =
        RawConfig::parse_str("url=http://10.0.0.5/x", Path::new("/etc/xcauth.conf")).unwrap();
    assert!(Config::resolve(std::slice::from_ref(&system)).is_err());
    assert!(Config::resolve(&[system, cli(&[("allow-insecure-http", RawValue::Flag)])]).is_ok());
}

#[test]
fn enum_values_list_the_choices() {
    assert_eq!(
        resolve_file("type=saslauthd").unwrap().protocol,
        Some(Protocol::Saslauthd)
    );
    assert_eq!(
        file_error("type=xmpp"),
        "/etc/xcauth.conf:1: key 'type': expected one of generic, prosody, ejabberd, saslauthd \
         or postfix, got 'xmpp'"
    );
    assert_eq!(
        resolve_file("cache-storage=memory").unwrap().cache_storage,
        CacheStorage::Memory
    );
    assert_eq!(
        cli_error("cache-storage", one("disk")),
        "command line: --cache-storage: expected one of none, memory or db, got 'disk'"
    );
}

#[test]
fn numeric_extension_bounds() {
    assert_eq!(resolve_file("max-line=1024").unwrap().max_line, 1024);
    assert_eq!(
        resolve_file("max-line=1048576").unwrap().max_line,
        1_048_576
    );
    assert_eq!(
        file_error("max-line=1023"),
        "/etc/xcauth.conf:1: key 'max-line': expected a whole number from 1024 to 1048576, got \
         '1023'"
    );
    assert!(file_error("max-line=1048577").ends_with("got '1048577'"));
    assert_eq!(
        file_error("max-connections=0"),
        "/etc/xcauth.conf:1: key 'max-connections': expected a whole number of at least 1, got \
         '0'"
    );
    assert!(file_error("breaker-failures=-1").contains("(0 disables the breaker)"));
    assert_eq!(
        file_error("breaker-failures=-1"),
        "/etc/xcauth.conf:1: key 'breaker-failures': expected a whole number, got '-1' (0 \
         disables the breaker)"
    );
    assert!(file_error("breaker-failures=4294967296")
        .ends_with("'4294967296' is too large (0 disables the breaker)"));
    assert!(file_error("max-connections=99999999999999999999999").ends_with("is too large"));
    assert_eq!(resolve_file("db-mode=600").unwrap().db_mode, 0o600);
    assert!(file_error("db-mode=0400").contains("does not let the owner read and write"));
}

#[test]
fn listen_errors_name_the_item() {
    assert_eq!(
        file_error("listen=[generic@tcp:127.0.0.1:1, bogus@tcp:127.0.0.1:2]"),
        "/etc/xcauth.conf:1: key 'listen': expected one of generic, prosody, ejabberd, \
         saslauthd or postfix, got 'bogus'"
    );
    assert_eq!(
        file_error("listen=prosody@tcp:127.0.0.1:23663\nlisten=generic@tcp:127.0.0.1:23663"),
        "/etc/xcauth.conf:1: key 'listen': tcp:127.0.0.1:23663 is listed twice"
    );
    assert!(cli_error("listen", one("generic@tcp:localhost:1")).contains("host names"));
}

#[test]
fn flags_on_the_command_line_and_in_files() {
    let config = resolve_file("debug=no\ninteractive=1\nupdate-roster=off\nsyslog").unwrap();
    assert!(!config.debug && config.interactive && !config.update_roster && config.syslog);
    // A later layer can switch a flag off.
    let config = Config::resolve(&[file("debug"), file("debug=false")]).unwrap();
    assert!(!config.debug);
    assert_eq!(
        cli_error("debug", one("maybe")),
        "command line: --debug: is a flag: give no value or one of true/false/yes/no/on/off/1/0, \
         got 'maybe'"
    );
    assert_eq!(
        cli_error("syslog", many(&["a"])),
        "command line: --syslog: is a flag and takes no list"
    );
}

#[test]
fn one_shot_value_counts() {
    assert_eq!(
        resolve_file("isuser-test=[u]").unwrap_err().to_string(),
        "/etc/xcauth.conf:1: key 'isuser-test': expected 2 values (USER DOMAIN), got 1"
    );
    assert_eq!(
        cli_error("roster-test", many(&["a", "b", "c"])),
        "command line: --roster-test: expected 2 values (USER DOMAIN), got 3"
    );
    let config = Config::resolve(&[cli(&[("isuser-test", one("u d"))])]).unwrap();
    assert_eq!(config.isuser_test, Some(("u".into(), "d".into())));
    // A password with spaces, quoted as a list item in a file.
    let config = resolve_file("auth-test=[u, d, \"a b c\"]").unwrap();
    assert_eq!(
        config.auth_test.map(|(_, _, p)| p),
        Some(Password::new("a b c"))
    );
    assert_eq!(
        file_error("auth-test"),
        "/etc/xcauth.conf:1: key 'auth-test': missing value"
    );
}

#[test]
fn unknown_keys() {
    assert_eq!(
        file_error("debug\n\n  foo = bar"),
        "/etc/xcauth.conf:3: unknown key 'foo'"
    );
    let mut raw = RawConfig::new();
    raw.set("frobnicate", RawValue::Flag, Origin::CommandLine);
    let e = Config::resolve(&[raw]).unwrap_err();
    assert_eq!(e.to_string(), "command line: unknown option --frobnicate");
    assert_eq!(e.exit_code(), 2);
}

#[test]
fn unknown_lines_never_echo_what_may_be_a_secret() {
    // A typo in a key is named, the value never.
    assert_eq!(
        file_error(&format!("secrte={SECRET}")),
        "/etc/xcauth.conf:1: unknown key 'secrte'"
    );
    assert_eq!(
        file_error("debgu"),
        "/etc/xcauth.conf:1: unknown key 'debgu'"
    );
    assert_eq!(
        file_error("cache-ttl2 = 1h"),
        "/etc/xcauth.conf:1: unknown key 'cache-ttl2'"
    );
    // A line that is just the secret, or starts with a piece of it, is not quoted.
    let hidden = [
        SECRET.to_owned(),
        format!("  {SECRET}  "),
        "hunter2".to_owned(),
        format!("{SECRET}=x"),
        "Ab0:rest-of-the-secret".to_owned(),
        "0a1b2c3d4e5f60718293a4b5c6d7e8f9a0b1c2d3".to_owned(),
        "abcdefghijklmnopqrstuvwxyzabcdefghij=1".to_owned(),
        "s3cr3t/with+symbols=".to_owned(),
        "pässwort".to_owned(),
    ];
    for line in hidden {
        let e = file_error(&format!("debug\n{line}"));
        assert_eq!(
            e,
            "/etc/xcauth.conf:2: unrecognised line (not a known key; its text is not shown \
             because it may hold a secret)",
            "{line}"
        );
        let word = line.trim().split(['=', ':']).next().unwrap_or_default();
        assert!(!e.contains(word), "{e}");
    }
}

#[test]
fn errors_of_sensitive_keys_do_not_quote_values() {
    for text in [
        format!("secret=\"{SECRET}"),
        format!("secret=\"{SECRET}\"x"),
        format!("auth-test=[u, d, \"{PASSWORD}]"),
        format!("auth-test=[u, {PASSWORD}]"),
        format!("auth-test=u d {PASSWORD} extra"),
        format!("secret=[{SECRET}, {SECRET}]"),
    ] {
        let e = file_error(&text);
        assert!(!e.contains(SECRET) && !e.contains(PASSWORD), "{e}");
        assert!(e.starts_with("/etc/xcauth.conf:1: key '"), "{e}");
    }
}

#[test]
fn require_backend() {
    let e = Config::defaults().require_backend().unwrap_err();
    assert_eq!(
        e.to_string(),
        "url is required (set url= in /etc/xcauth.conf or --url)"
    );
    let config = resolve_file("url=https://h/").unwrap();
    assert_eq!(
        config.require_backend().unwrap_err().to_string(),
        "secret is required (set secret= in /etc/xcauth.conf or --secret)"
    );
    let config = resolve_file(&format!("url=https://h/\nsecret={SECRET}")).unwrap();
    let (url, secret) = config.require_backend().unwrap();
    assert_eq!(url.as_str(), "https://h/");
    assert_eq!(secret.expose(), SECRET);
    assert_eq!(
        file_error("secret=\"\""),
        "/etc/xcauth.conf:1: key 'secret': must not be empty"
    );
}

#[test]
fn secrets_never_leak_into_debug_or_errors() {
    let config = everything_expected();
    let shown = format!("{config:?} {config:#?}");
    assert!(!shown.contains(SECRET), "{shown}");
    assert!(!shown.contains(PASSWORD), "{shown}");
    assert!(shown.contains("<redacted>"));
    let raw = file(&format!("secret={SECRET}\nauth-test=u d {PASSWORD}"));
    let shown = format!("{raw:?}");
    assert!(
        !shown.contains(SECRET) && !shown.contains(PASSWORD),
        "{shown}"
    );

    let mut errors: Vec<ConfigError> = Vec::new();
    let file_cases = [
        format!("secret=[{SECRET}]"),
        format!("secret=\"{SECRET}"),
        format!("secret=\"{SECRET}\" trailing"),
        format!("secret='{SECRET}' x"),
        "secret".to_owned(),
        "secret=''".to_owned(),
        format!("auth-test=[u, d, {PASSWORD}, extra]"),
        format!("auth-test=u d {PASSWORD} extra"),
        format!("auth-test=[u, d, \"{PASSWORD}]"),
        format!("auth-test=\"{PASSWORD}\""),
        format!("secret={SECRET}\nfoo=1"),
        format!("secret={SECRET}\nurl=ftp://x/"),
        format!("secret={SECRET}\n[section]"),
    ];
    for text in &file_cases {
        errors.push(resolve_file(text).unwrap_err());
    }
    let cli_cases = [
        ("secret", many(&[SECRET, SECRET])),
        ("secret", RawValue::Flag),
        ("secret", one("")),
        ("auth-test", many(&["u", PASSWORD])),
        ("auth-test", one(&format!("u d {PASSWORD} x"))),
        ("auth-test", RawValue::Flag),
    ];
    for (key, value) in cli_cases {
        errors.push(Config::resolve(&[cli(&[(key, value)])]).unwrap_err());
    }
    assert_eq!(errors.len(), file_cases.len() + 6);
    for e in &errors {
        let text = format!("{e} {e:?}");
        assert!(!text.contains(SECRET), "{text}");
        assert!(!text.contains(PASSWORD), "{text}");
        assert_eq!(e.exit_code(), 2);
    }
}

#[test]
fn served_domains_refuse_what_is_not_a_domain() {
    for bad in ["example.org.", "a@example.org", "[]", "http://x", "a b"] {
        let text = format!("served-domains={bad}\n");
        let e = resolve_file(&text).unwrap_err().to_string();
        assert!(e.contains("served-domains"), "{bad}: {e}");
    }
}

#[test]
fn throttle_and_write_timeout_settings_are_checked() {
    let d = Config::defaults();
    assert_eq!(d.throttle, crate::throttle::ThrottleSettings::default());
    assert_eq!((d.throttle.failures, d.throttle.remote_failures), (5, 20));
    assert_eq!(d.throttle.window, secs(900));
    assert_eq!(
        (d.throttle.backoff, d.throttle.max_backoff),
        (secs(60), secs(3600))
    );
    assert_eq!(d.write_timeout, secs(30));
    let off = resolve_file("throttle-failures=0\nthrottle-remote-failures=0\n").unwrap();
    assert!(off.throttle.is_off());
    let e = file_error("throttle-backoff=10m\nthrottle-max-backoff=5m\n");
    assert!(e.contains("throttle-max-backoff"), "{e}");
    let e = file_error("throttle-max-entries=10\n");
    assert!(e.contains("throttle-max-entries"), "{e}");
    let e = file_error("write-timeout=0\n");
    assert!(
        e.contains("write-timeout") && e.contains("at least 1s"),
        "{e}"
    );
}

#[test]
fn metrics_listen_is_loopback_unless_allowed() {
    let config = resolve_file("metrics-listen=127.0.0.1:9101").unwrap();
    assert_eq!(
        config.metrics_listen,
        Some("127.0.0.1:9101".parse().unwrap())
    );
    assert!(resolve_file("metrics-listen=[::1]:9101").is_ok());
    let e = file_error("metrics-listen=0.0.0.0:9101");
    assert!(
        e.contains("metrics-listen") && e.contains("loopback"),
        "{e}"
    );
    assert!(file_error("metrics-listen=localhost:9101").contains("IP:PORT"));
    let config = resolve_file("metrics-listen=192.0.2.1:9101\nmetrics-allow-remote").unwrap();
    assert!(config.metrics_allow_remote);
}
