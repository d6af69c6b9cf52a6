//! `xcauth.conf` + command line → one validated [`Config`] (docs/xcauth2.md §2).
//!
//! Two layers, as in kanidm's and ripgrep's configuration code:
//!
//! * the raw layer ([`RawConfig`]): one per source — `/etc/xcauth.conf`, the `-c` file, the
//!   command line — holding the settings as written, with their [`Origin`];
//! * the typed layer ([`Config`]): [`Config::resolve`] merges the layers (later ones win, per
//!   key) over the built-in defaults and parses every value once into a `BackendUrl`, `Duration`,
//!   `PathBuf`, enums and [`Secret`]. Nothing downstream re-checks them.
//!
//! Both the file parser and the daemon's command line are driven by [`OPTIONS`]. Errors are
//! [`ConfigError`]s that name the file and line (or the command line) and exit with status 2.

mod error;
mod options;
mod raw;
mod values;

use std::path::{Path, PathBuf};
use std::time::Duration;

pub use self::error::{ConfigError, Origin};
pub use self::options::{find_option, normalize_key, OptionKind, OptionSpec, OPTIONS};
pub use self::raw::{RawConfig, RawEntry, RawValue};
pub use self::values::{
    parse_duration, BackendTimeouts, BcryptRounds, CacheStorage, DbLocation, ListenAddr, ListenSpec,
};
pub use crate::protocol::Protocol;
use crate::secret::{Password, Secret};
use crate::throttle::ThrottleSettings;
use crate::vocab::BackendUrl;

/// The configuration file read when it exists.
pub const SYSTEM_CONFIG_FILE: &str = "/etc/xcauth.conf";

/// The fully resolved configuration. `Debug` is derived: [`Secret`] and [`Password`] redact
/// themselves, and no other field is a credential.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Config {
    /// `-c`: the extra config file that was read, if any.
    pub config_file: Option<PathBuf>,
    /// `-u`: the JSXC external API endpoint (http or https). See [`Config::require_backend`].
    pub url: Option<BackendUrl>,
    /// `-s`: the API secret (never empty). See [`Config::require_backend`].
    pub secret: Option<Secret>,
    /// `--db`: the SQLite database.
    pub db: DbLocation,
    /// `--cache-storage`.
    pub cache_storage: CacheStorage,
    /// `-b`: legacy per-domain database to migrate.
    pub domain_db: Option<PathBuf>,
    /// `--cache-db`: legacy cache database to migrate.
    pub cache_db: Option<PathBuf>,
    /// `--shared-roster-db`: legacy shared roster database to migrate.
    pub shared_roster_db: Option<PathBuf>,
    /// `-A USER DOMAIN PASSWORD`: one-shot auth check.
    pub auth_test: Option<(String, String, Password)>,
    /// `-I USER DOMAIN`: one-shot existence check.
    pub isuser_test: Option<(String, String)>,
    /// `-R USER DOMAIN`: one-shot roster fetch.
    pub roster_test: Option<(String, String)>,
    /// `-T`: deprecated, no effect.
    pub update_roster: bool,
    /// `-l`: directory of `xcauth.log` and `xcauth.err`.
    pub log_dir: PathBuf,
    /// `-d`: DEBUG level in the log file.
    pub debug: bool,
    /// `-i`: log to stderr at DEBUG.
    pub interactive: bool,
    /// `-t`: framing for stdin and unnamed sockets.
    pub protocol: Option<Protocol>,
    /// `--timeout`: backend connect and read timeouts.
    pub timeout: BackendTimeouts,
    /// `--cache-query-ttl`.
    pub cache_query_ttl: Duration,
    /// `--cache-verification-ttl`.
    pub cache_verification_ttl: Duration,
    /// `--cache-unreachable-ttl`.
    pub cache_unreachable_ttl: Duration,
    /// `--cache-bcrypt-rounds`.
    pub bcrypt_rounds: BcryptRounds,
    /// `--ejabberdctl`: enables the shared roster sync.
    pub ejabberdctl: Option<PathBuf>,
    /// `--roster-exclude-groups`, `--roster-max-group-size`, `--roster-timeout` (extensions).
    pub roster: RosterOptions,
    /// `--listen` (extension): addresses to bind when not socket-activated. No duplicates.
    pub listen: Vec<ListenSpec>,
    /// `--max-connections` (extension), at least 1.
    pub max_connections: usize,
    /// `--max-connections-per-user` (extension): connections of one non-root peer uid on a
    /// Unix listener; 0 = no bound.
    pub max_connections_per_user: usize,
    /// `--idle-timeout` (extension), at least 1s.
    pub idle_timeout: Duration,
    /// `--max-line` (extension): longest generic/postfix request line in bytes.
    pub max_line: usize,
    /// `--syslog` (extension): log to syslog instead of files.
    pub syslog: bool,
    /// `--db-mode` (extension): permissions of a newly created database (≤ 0o777, owner rw).
    pub db_mode: u32,
    /// `--socket-mode` (extension): permissions of Unix listener sockets.
    pub socket_mode: u32,
    /// `--socket-group` (extension): group of Unix listener sockets.
    pub socket_group: Option<String>,
    /// `--request-timeout` (extension), at least 1s.
    pub request_timeout: Duration,
    /// `--socket-allow-users` (extension): extra users allowed on Unix sockets.
    pub socket_allow_users: Vec<String>,
    /// `--socket-allow-groups` (extension): groups allowed on Unix sockets; `None`: the
    /// socket file's group.
    pub socket_allow_groups: Option<Vec<String>>,
    /// `--breaker-failures` (extension): failures in a row that open the breaker; 0 = off.
    pub breaker_failures: u32,
    /// `--breaker-cooldown` (extension), at least 1s.
    pub breaker_cooldown: Duration,
    /// `--ca-file` (extension): extra trusted CA certificates (PEM).
    pub ca_file: Option<PathBuf>,
    /// `--served-domains` (extension): the domains the global backend serves, lower-case;
    /// `None` serves every domain.
    pub served_domains: Option<Vec<String>>,
    /// `--allow-insecure-http` (extension): accept plain http to a non-loopback host.
    pub allow_insecure_http: bool,
    /// `--throttle-*` (extension): brute-force throttling.
    pub throttle: ThrottleSettings,
    /// `--write-timeout` (extension), at least 1s.
    pub write_timeout: Duration,
    /// `--metrics-listen` (extension): where to serve Prometheus text; loopback unless
    /// `metrics_allow_remote`.
    pub metrics_listen: Option<std::net::SocketAddr>,
    /// `--metrics-allow-remote` (extension).
    pub metrics_allow_remote: bool,
    /// `--version`.
    pub version: bool,
}

impl Config {
    /// The built-in defaults (the `default` column of [`OPTIONS`]; a test keeps them equal).
    pub fn defaults() -> Self {
        Self {
            config_file: None,
            url: None,
            secret: None,
            db: DbLocation::Path(PathBuf::from("/var/lib/xcauth/xcauth.sqlite3")),
            cache_storage: CacheStorage::None,
            domain_db: None,
            cache_db: None,
            shared_roster_db: None,
            auth_test: None,
            isuser_test: None,
            roster_test: None,
            update_roster: false,
            log_dir: PathBuf::from("/var/log/xcauth"),
            debug: false,
            interactive: false,
            protocol: None,
            timeout: BackendTimeouts {
                connect: Duration::from_secs(5),
                read: Duration::from_secs(10),
            },
            cache_query_ttl: Duration::from_secs(3600),
            cache_verification_ttl: Duration::from_secs(86_400),
            cache_unreachable_ttl: Duration::from_secs(604_800),
            bcrypt_rounds: BcryptRounds {
                persistent: 12,
                memory: 4,
            },
            ejabberdctl: None,
            roster: RosterOptions::default(),
            listen: Vec::new(),
            max_connections: 64,
            max_connections_per_user: 16,
            idle_timeout: Duration::from_secs(300),
            max_line: 8192,
            syslog: false,
            db_mode: 0o600,
            socket_mode: 0o660,
            socket_group: None,
            request_timeout: Duration::from_secs(30),
            socket_allow_users: Vec::new(),
            socket_allow_groups: None,
            breaker_failures: 5,
            breaker_cooldown: Duration::from_secs(30),
            ca_file: None,
            served_domains: None,
            allow_insecure_http: false,
            throttle: ThrottleSettings::default(),
            write_timeout: Duration::from_secs(30),
            metrics_listen: None,
            metrics_allow_remote: false,
            version: false,
        }
    }

    /// Reads `system_file` (normally [`SYSTEM_CONFIG_FILE`]) if it exists, then the file named
    /// by `config-file` in `cli` (which must exist), then applies `cli`.
    pub fn load(cli: &RawConfig, system_file: &Path) -> Result<Self, ConfigError> {
        let mut layers = Vec::with_capacity(3);
        if let Some(system) = RawConfig::parse_file_if_exists(system_file)? {
            layers.push(system);
        }
        if let Some(entry) = cli.get("config-file") {
            let spec = find_option("config-file").ok_or_else(|| ConfigError::UnknownKey {
                origin: entry.origin.clone(),
                key: "config-file".to_owned(),
            })?;
            let path = Field { spec, entry }.path()?;
            layers.push(RawConfig::parse_file(&path)?);
        }
        layers.push(cli.clone());
        Self::resolve(&layers)
    }

    /// Merges `layers` (later ones win, per key; a list option is replaced as a whole) over
    /// the defaults and parses every value. Errors name the origin of the bad setting.
    pub fn resolve(layers: &[RawConfig]) -> Result<Self, ConfigError> {
        let mut merged: Vec<Option<&RawEntry>> = vec![None; OPTIONS.len()];
        for layer in layers {
            for (key, entry) in layer.iter() {
                let index = OPTIONS
                    .iter()
                    .position(|spec| spec.long == key)
                    .ok_or_else(|| ConfigError::UnknownKey {
                        origin: entry.origin.clone(),
                        key: key.to_owned(),
                    })?;
                merged[index] = Some(entry);
            }
        }
        let mut config = Self::defaults();
        let mut url_field = None;
        let mut metrics_field = None;
        for (spec, entry) in OPTIONS.iter().zip(merged) {
            if let Some(entry) = entry {
                let field = Field { spec, entry };
                config.apply(field)?;
                if spec.long == "url" {
                    url_field = Some(field);
                }
                if spec.long == "metrics-listen" {
                    metrics_field = Some(field);
                }
            }
        }
        if config.throttle.max_backoff < config.throttle.backoff {
            return Err(ConfigError::Invalid {
                origin: Origin::Default,
                key: "throttle-max-backoff".into(),
                problem: format!(
                    "{}s is shorter than throttle-backoff ({}s)",
                    config.throttle.max_backoff.as_secs(),
                    config.throttle.backoff.as_secs()
                ),
            });
        }
        if let (Some(addr), Some(field)) = (config.metrics_listen, metrics_field) {
            if !addr.ip().is_loopback() && !config.metrics_allow_remote {
                return Err(field.invalid(
                    "not a loopback address: the metrics endpoint has no authentication; use \
                     127.0.0.1 or ::1 (or set metrics-allow-remote)",
                ));
            }
        }
        if let (Some(url), Some(field)) = (&config.url, url_field) {
            if !config.allow_insecure_http && url.is_insecure() {
                return Err(field.invalid(
                    "plain http to a host other than loopback: the backend's answers are not \
                     signed, anyone on the network path could accept any password; use https \
                     (or set allow-insecure-http if the path is trusted)",
                ));
            }
        }
        Ok(config)
    }

    /// The backend URL and secret, which every mode that talks to Nextcloud needs.
    pub fn require_backend(&self) -> Result<(&BackendUrl, &Secret), ConfigError> {
        let url = self
            .url
            .as_ref()
            .ok_or(ConfigError::Required { key: "url" })?;
        let secret = self
            .secret
            .as_ref()
            .ok_or(ConfigError::Required { key: "secret" })?;
        Ok((url, secret))
    }

    /// Parses one setting into its field.
    fn apply(&mut self, field: Field<'_>) -> Result<(), ConfigError> {
        match field.spec.long {
            "config-file" => self.config_file = Some(field.path()?),
            "db" => self.db = field.parse(str::parse)?,
            "cache-storage" => self.cache_storage = field.parse(str::parse)?,
            "domain-db" => self.domain_db = Some(field.path()?),
            "auth-test" => {
                let [user, domain, password] = field.exactly::<3>()?;
                self.auth_test =
                    Some((user.to_owned(), domain.to_owned(), Password::new(password)));
            }
            "isuser-test" => {
                let [user, domain] = field.exactly::<2>()?;
                self.isuser_test = Some((user.to_owned(), domain.to_owned()));
            }
            "roster-test" => {
                let [user, domain] = field.exactly::<2>()?;
                self.roster_test = Some((user.to_owned(), domain.to_owned()));
            }
            "update-roster" => self.update_roster = field.flag()?,
            "url" => self.url = Some(field.parse(values::parse_url)?),
            "secret" => {
                let secret = field.one()?;
                if secret.is_empty() {
                    return Err(field.invalid("must not be empty"));
                }
                self.secret = Some(Secret::new(secret));
            }
            "log" => self.log_dir = field.path()?,
            "debug" => self.debug = field.flag()?,
            "interactive" => self.interactive = field.flag()?,
            "type" => {
                let p: Protocol = field.parse(str::parse)?;
                if p == Protocol::Pam {
                    return Err(field.invalid(
                        "pam is a listener protocol (listen=pam@unix:/path), not a type",
                    ));
                }
                self.protocol = Some(p);
            }
            "timeout" => self.timeout = field.parse_pair()?,
            "cache-db" => self.cache_db = Some(field.path()?),
            "cache-query-ttl" => self.cache_query_ttl = field.parse(parse_duration)?,
            "cache-verification-ttl" => {
                self.cache_verification_ttl = field.parse(parse_duration)?
            }
            "cache-unreachable-ttl" => self.cache_unreachable_ttl = field.parse(parse_duration)?,
            "cache-bcrypt-rounds" => self.bcrypt_rounds = field.parse_pair()?,
            "ejabberdctl" => self.ejabberdctl = Some(field.path()?),
            "shared-roster-db" => self.shared_roster_db = Some(field.path()?),
            "roster-exclude-groups" => self.roster.exclude_groups = field.group_names()?,
            "roster-max-group-size" => {
                self.roster.max_group_size = field.parse(|t| bounded(t, 0, None))?;
            }
            "roster-timeout" => self.roster.timeout = field.parse(positive_duration)?,
            "roster-other-domains" => self.roster.other_domains = field.flag()?,
            "version" => self.version = field.flag()?,
            "listen" => self.listen = field.listen()?,
            "max-connections" => {
                self.max_connections = field.parse(|t| bounded(t, 1, None))?;
            }
            "max-connections-per-user" => {
                self.max_connections_per_user = field.parse(|t| bounded(t, 0, None))?;
            }
            "idle-timeout" => self.idle_timeout = field.parse(positive_duration)?,
            "max-line" => self.max_line = field.parse(|t| bounded(t, 1024, Some(1_048_576)))?,
            "syslog" => self.syslog = field.flag()?,
            "db-mode" => self.db_mode = field.parse(values::parse_file_mode)?,
            "socket-mode" => self.socket_mode = field.parse(values::parse_file_mode)?,
            "socket-group" => self.socket_group = Some(field.one()?.to_owned()),
            "request-timeout" => self.request_timeout = field.parse(positive_duration)?,
            "socket-allow-users" => self.socket_allow_users = field.names()?,
            "socket-allow-groups" => self.socket_allow_groups = Some(field.names()?),
            "breaker-failures" => {
                self.breaker_failures = field.parse(|t| {
                    bounded(t, 0, None).map_err(|e| format!("{e} (0 disables the breaker)"))
                })?;
            }
            "breaker-cooldown" => self.breaker_cooldown = field.parse(positive_duration)?,
            "ca-file" => self.ca_file = Some(field.path()?),
            "served-domains" => self.served_domains = Some(field.domains()?),
            "allow-insecure-http" => self.allow_insecure_http = field.flag()?,
            "throttle-failures" => self.throttle.failures = field.parse(|t| bounded(t, 0, None))?,
            "throttle-remote-failures" => {
                self.throttle.remote_failures = field.parse(|t| bounded(t, 0, None))?;
            }
            "throttle-window" => self.throttle.window = field.parse(positive_duration)?,
            "throttle-backoff" => self.throttle.backoff = field.parse(positive_duration)?,
            "throttle-max-backoff" => self.throttle.max_backoff = field.parse(positive_duration)?,
            "throttle-max-entries" => {
                self.throttle.max_entries = field.parse(|t| bounded(t, 100, None))?;
            }
            "write-timeout" => self.write_timeout = field.parse(positive_duration)?,
            "metrics-listen" => {
                self.metrics_listen = Some(field.parse(|t| {
                    t.parse()
                        .map_err(|_| format!("'{t}' is not IP:PORT (e.g. 127.0.0.1:9101)"))
                })?);
            }
            "metrics-allow-remote" => self.metrics_allow_remote = field.flag()?,
            _ => {
                return Err(ConfigError::UnknownKey {
                    origin: field.entry.origin.clone(),
                    key: field.spec.long.to_owned(),
                })
            }
        }
        Ok(())
    }
}

/// How the shared roster is synced into ejabberd (docs/xcauth2.md §8).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RosterOptions {
    /// `roster-exclude-groups`: group display names (or their sanitised form) never synced.
    pub exclude_groups: Vec<String>,
    /// `roster-max-group-size`: groups with more members are not synced; 0 = no bound.
    pub max_group_size: usize,
    /// `roster-timeout`: the longest one ejabberdctl call may take.
    pub timeout: Duration,
    /// `roster-other-domains`: members whose uid names another domain are synced too
    /// (xcauth 2's behaviour); by default they are left out.
    pub other_domains: bool,
}

impl Default for RosterOptions {
    fn default() -> Self {
        Self {
            exclude_groups: Vec::new(),
            max_group_size: 0,
            timeout: Duration::from_secs(10),
            other_domains: false,
        }
    }
}

/// An integer of type `T` in `min..=max` (`None`: up to the type's maximum).
fn bounded<T: TryFrom<u64>>(text: &str, min: u64, max: Option<u64>) -> Result<T, String> {
    let n = values::parse_bounded(text, min, max)?;
    T::try_from(n).map_err(|_| format!("'{text}' is too large"))
}

/// A duration of at least one second.
fn positive_duration(text: &str) -> Result<Duration, String> {
    let duration = parse_duration(text)?;
    if duration < Duration::from_secs(1) {
        return Err(format!("must be at least 1s, got '{text}'"));
    }
    Ok(duration)
}

/// One winning setting, with what is needed to parse it and to report errors.
#[derive(Clone, Copy)]
struct Field<'a> {
    spec: &'static OptionSpec,
    entry: &'a RawEntry,
}

impl<'a> Field<'a> {
    fn invalid(&self, problem: impl Into<String>) -> ConfigError {
        ConfigError::Invalid {
            origin: self.entry.origin.clone(),
            key: self.spec.long.to_owned(),
            problem: problem.into(),
        }
    }

    /// A flag: set, or a true/false word.
    fn flag(&self) -> Result<bool, ConfigError> {
        match &self.entry.value {
            RawValue::Flag => Ok(true),
            RawValue::One(text) => raw::parse_bool(text).ok_or_else(|| {
                self.invalid(format!(
                    "is a flag: give no value or one of {}, got '{text}'",
                    raw::BOOL_WORDS
                ))
            }),
            RawValue::Many(_) => Err(self.invalid("is a flag and takes no list")),
        }
    }

    /// The single value.
    fn one(&self) -> Result<&'a str, ConfigError> {
        match &self.entry.value {
            RawValue::One(text) => Ok(text),
            RawValue::Flag => Err(self.invalid("missing value")),
            RawValue::Many(_) => Err(self.invalid("takes a single value, not a list")),
        }
    }

    /// A non-empty path.
    fn path(&self) -> Result<PathBuf, ConfigError> {
        match self.one()? {
            "" => Err(self.invalid("must not be empty")),
            path => Ok(PathBuf::from(path)),
        }
    }

    /// The single value, parsed. Only for options that are not sensitive: the parser's
    /// message may quote the value.
    fn parse<T>(&self, parse: impl FnOnce(&str) -> Result<T, String>) -> Result<T, ConfigError> {
        parse(self.one()?).map_err(|problem| self.invalid(problem))
    }

    /// `N` or `A,B` options, also accepting the list form `[A, B]`.
    fn parse_pair<T: std::str::FromStr<Err = String>>(&self) -> Result<T, ConfigError> {
        match &self.entry.value {
            RawValue::Many(items) => items.join(",").parse().map_err(|p| self.invalid(p)),
            _ => self.parse(str::parse),
        }
    }

    /// Exactly `N` values (`-A`, `-I`, `-R`). A single value is split at whitespace.
    /// Messages never quote the values (`-A` carries a password).
    fn exactly<const N: usize>(&self) -> Result<[&'a str; N], ConfigError> {
        let items: Vec<&'a str> = match &self.entry.value {
            RawValue::Many(items) => items.iter().map(String::as_str).collect(),
            RawValue::One(text) => text.split_whitespace().collect(),
            RawValue::Flag => Vec::new(),
        };
        let count = items.len();
        items.try_into().map_err(|_| {
            self.invalid(format!(
                "expected {N} values ({}), got {count}",
                self.spec.value_names.join(" ")
            ))
        })
    }

    /// A list of user or group names (or numbers): no empty items, no spaces.
    fn names(&self) -> Result<Vec<String>, ConfigError> {
        let items: Vec<&str> = match &self.entry.value {
            RawValue::Many(items) => items.iter().map(String::as_str).collect(),
            RawValue::One(text) => text.split(',').map(str::trim).collect(),
            RawValue::Flag => return Err(self.invalid("missing value")),
        };
        if items
            .iter()
            .any(|i| i.is_empty() || i.chars().any(|c| c.is_whitespace() || c.is_control()))
        {
            return Err(self.invalid("expected names or numbers, without empty items or spaces"));
        }
        Ok(items.into_iter().map(str::to_owned).collect())
    }

    /// Group names: list items as written (trimmed; spaces inside are kept), none empty.
    fn group_names(&self) -> Result<Vec<String>, ConfigError> {
        let items: Vec<&str> = match &self.entry.value {
            RawValue::Many(items) => items.iter().map(|i| i.trim()).collect(),
            RawValue::One(text) => vec![text.trim()],
            RawValue::Flag => return Err(self.invalid("missing value")),
        };
        if items.iter().any(|i| i.is_empty()) {
            return Err(self.invalid("group names must not be empty"));
        }
        Ok(items.into_iter().map(str::to_owned).collect())
    }

    /// The `listen` items, parsed, without duplicates.
    /// A list of domain names, lower-cased; no `@`, no trailing dot, no blanks.
    fn domains(&self) -> Result<Vec<String>, ConfigError> {
        let items: Vec<&str> = match &self.entry.value {
            RawValue::Many(items) => items.iter().map(String::as_str).collect(),
            RawValue::One(text) => vec![text.as_str()],
            RawValue::Flag => return Err(self.invalid("missing value")),
        };
        let mut out = Vec::with_capacity(items.len());
        for item in items {
            let d = item.trim();
            if d.is_empty()
                || d.ends_with('.')
                || d.contains(['@', '/', ':'])
                || d.chars().any(char::is_whitespace)
            {
                return Err(self.invalid(format!(
                    "'{}' is not a domain name (no '@', ':', '/', spaces or trailing dot)",
                    crate::logsafe::clean(d, 64)
                )));
            }
            out.push(d.to_lowercase());
        }
        if out.is_empty() {
            return Err(self.invalid("the list is empty"));
        }
        Ok(out)
    }

    fn listen(&self) -> Result<Vec<ListenSpec>, ConfigError> {
        let items: Vec<&str> = match &self.entry.value {
            RawValue::Many(items) => items.iter().map(String::as_str).collect(),
            RawValue::One(text) => vec![text.as_str()],
            RawValue::Flag => return Err(self.invalid("missing value")),
        };
        let mut specs: Vec<ListenSpec> = Vec::with_capacity(items.len());
        for item in items {
            let spec: ListenSpec = item.parse().map_err(|p: String| self.invalid(p))?;
            if specs.iter().any(|other| other.addr == spec.addr) {
                return Err(self.invalid(format!("{} is listed twice", spec.addr)));
            }
            specs.push(spec);
        }
        Ok(specs)
    }
}

#[cfg(test)]
mod tests;
