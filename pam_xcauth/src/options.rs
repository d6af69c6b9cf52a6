//! The module's arguments (`auth sufficient pam_xcauth.so quiet domain=example.org`), parsed
//! once into [`Options`].
//!
//! Parsing never fails outright: it returns the best-effort [`Options`] plus every problem, so
//! the caller can first set up logging (which `syslog_socket=` changes) and then log each
//! problem before refusing with `PAM_SERVICE_ERR`. An unknown option is an error, not a
//! warning: a misspelt `group=` must not silently let every user in.

use std::fmt;
use std::path::{Path, PathBuf};
use std::time::Duration;

/// Where the module reads `url`, `secret`, timeouts and cache settings by default.
pub const DEFAULT_CONFIG: &str = "/etc/xcauth.conf";
/// How long one PAM call may take by default, in seconds, whatever it does (backend calls,
/// database, `socket=` exchanges). Well under the time saslauthd's clients and Apache
/// (`Timeout 60`) wait, so the module answers before its host gives up on it.
pub const DEFAULT_TIMEOUT: u64 = 15;
/// Upper bound for `timeout=`, in seconds.
pub const MAX_TIMEOUT: u64 = 300;

/// One module argument as documented (pam_xcauth(8) is generated from this table; unit
/// tests check that [`parse`] accepts every entry in the documented form and refuses the
/// other form, and that every option [`parse`] accepts is in the table).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct OptionDoc {
    /// The argument's name (`domain`).
    pub name: &'static str,
    /// The value placeholder (`DOMAIN[,DOMAIN…]`); `None` for a flag.
    pub value: Option<&'static str>,
    /// A valid example value (for the test); `None` for a flag.
    pub example: Option<&'static str>,
    /// What it does.
    pub help: &'static str,
}

const fn doc_flag(name: &'static str, help: &'static str) -> OptionDoc {
    OptionDoc {
        name,
        value: None,
        example: None,
        help,
    }
}

const fn doc_value(
    name: &'static str,
    value: &'static str,
    example: &'static str,
    help: &'static str,
) -> OptionDoc {
    OptionDoc {
        name,
        value: Some(value),
        example: Some(example),
        help,
    }
}

/// Every production argument of the module (the test-only `syslog_socket=` is left out).
pub static OPTIONS: &[OptionDoc] = &[
    doc_value(
        "config",
        "PATH",
        "/etc/xcauth.conf",
        "The xcauth settings file read in-process (default /etc/xcauth.conf). It must not be a \
         symbolic link, world-readable or writable by others, nor in a directory others could \
         change; otherwise the module answers PAM_SERVICE_ERR",
    ),
    doc_value(
        "socket",
        "PATH",
        "/run/xcauth/pam.sock",
        "Ask the xcauthd listening on this Unix socket instead of reading config= (the host \
         never sees the API secret); wins over config=",
    ),
    doc_value(
        "socket_owner",
        "USER",
        "xcauth",
        "Besides root, the user (name or uid) that may own the socket= file; a password is \
         only sent to a socket owned by root or this user",
    ),
    doc_value(
        "domain",
        "DOMAIN[,DOMAIN...]",
        "example.org,example.net",
        "The domains this service serves: the first completes user names without @, a name in \
         any other domain is PAM_USER_UNKNOWN",
    ),
    doc_value(
        "group",
        "GROUP[,GROUP...]",
        "staff",
        "Only members of one of these Nextcloud groups (display names, exact match) log in",
    ),
    doc_value(
        "timeout",
        "SECONDS",
        "15",
        "Budget of the whole PAM call, 1 to 300 seconds (default 15)",
    ),
    doc_value("socket_timeout", "SECONDS", "15", "Alias of timeout="),
    doc_flag(
        "account_check",
        "In account management, for a user this handle did not authenticate, ask Nextcloud \
         whether the user exists instead of answering PAM_IGNORE (Apache Require pam-account)",
    ),
    doc_flag(
        "try_first_pass",
        "Use a password stacked by an earlier module, else prompt (what the module always does)",
    ),
    doc_flag(
        "use_first_pass",
        "Only use a password stacked by an earlier module; never prompt",
    ),
    doc_flag(
        "quiet",
        "No log line for expected failures (wrong password, unknown user)",
    ),
    doc_flag(
        "debug",
        "Decision details at LOG_DEBUG (never a password, token or secret)",
    ),
];

/// Who answers the module's questions.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Authority {
    /// `config=PATH` (default [`DEFAULT_CONFIG`]): the core engine, built in this process for
    /// each call from the xcauth configuration file.
    InProcess {
        /// The configuration file.
        config: PathBuf,
    },
    /// `socket=PATH`: the xcauthd listening on this Unix socket (no secret needed here).
    /// `config=` is then not read.
    Socket {
        /// The socket file.
        path: PathBuf,
        /// `socket_owner=USER`: besides root, the user (name or uid) that may own the socket
        /// file. A password is only sent to a socket owned by root or by this user.
        owner: Option<String>,
    },
}

/// The parsed arguments.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Options {
    /// `use_first_pass`: only a token stacked by an earlier module; never prompt. libpam's
    /// `pam_get_authtok` reads this option itself from the module's arguments.
    pub use_first_pass: bool,
    /// `try_first_pass`: a stacked token if there is one, else prompt. This is what
    /// `pam_get_authtok` always does, so the flag is accepted for compatibility only.
    pub try_first_pass: bool,
    /// `quiet`: no log line for expected failures (wrong password, unknown user).
    pub quiet: bool,
    /// `debug`: decision detail at LOG_DEBUG (never a password, token or secret).
    pub debug: bool,
    /// `config=` or `socket=` (with `socket_owner=`): who answers.
    pub authority: Authority,
    /// `domain=A[,B…]`: the domains this service serves (lower-cased). The first is the
    /// domain of user names without `@`; a name in any other domain is an unknown user.
    /// Empty: no default domain and no restriction.
    pub domains: Vec<String>,
    /// `account_check`: for a user this module did not authenticate on this handle, ask
    /// whether the user exists instead of answering `PAM_IGNORE`.
    pub account_check: bool,
    /// `group=A[,B…]`: only members of one of these Nextcloud groups (display names, exact
    /// match) are let in. Empty: no group restriction.
    pub groups: Vec<String>,
    /// `timeout=SECONDS` (alias `socket_timeout=`): the budget of the whole PAM call.
    pub timeout: Duration,
    /// The test-only arguments (see [`TestHooks`]).
    pub test_hooks: TestHooks,
}

impl Default for Options {
    fn default() -> Self {
        Self {
            use_first_pass: false,
            try_first_pass: false,
            quiet: false,
            debug: false,
            authority: Authority::InProcess {
                config: PathBuf::from(DEFAULT_CONFIG),
            },
            domains: Vec::new(),
            account_check: false,
            groups: Vec::new(),
            timeout: Duration::from_secs(DEFAULT_TIMEOUT),
            test_hooks: TestHooks::default(),
        }
    }
}

/// A problem with one argument.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum OptionError {
    /// An option this module does not know. Only the name is kept: the value might be a
    /// credential someone put on the wrong line.
    Unknown(String),
    /// Argument number N (from 1) is not an option, and it does not look like an option name
    /// either: it is not shown, as it may be a credential (`pam_xcauth.so s3cret`).
    Unrecognised(usize),
    /// A known option with an unusable value.
    BadValue {
        /// The option name.
        name: &'static str,
        /// What is wrong, in words.
        problem: String,
    },
}

impl fmt::Display for OptionError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            OptionError::Unknown(name) => write!(f, "unknown option '{name}'"),
            OptionError::Unrecognised(n) => write!(
                f,
                "module argument {n} is not an option (not shown: it may hold a credential)"
            ),
            OptionError::BadValue { name, problem } => write!(f, "option {name}=: {problem}"),
        }
    }
}

/// Parses the module arguments. Later occurrences of an option win; `socket=` wins over
/// `config=` wherever each stands.
pub fn parse(args: &[String]) -> (Options, Vec<OptionError>) {
    let mut opts = Options::default();
    let mut config = PathBuf::from(DEFAULT_CONFIG);
    let mut socket = None;
    let mut socket_owner = None;
    let mut errors = Vec::new();
    for (index, arg) in args.iter().enumerate() {
        let (name, value) = match arg.split_once('=') {
            Some((n, v)) => (n, Some(v)),
            None => (arg.as_str(), None),
        };
        if let Some(result) = test_hook(name, value, &mut opts.test_hooks) {
            errors.extend(result.err());
            continue;
        }
        let result = match (name, value) {
            ("use_first_pass", None) => {
                opts.use_first_pass = true;
                Ok(())
            }
            ("try_first_pass", None) => {
                opts.try_first_pass = true;
                Ok(())
            }
            ("quiet", None) => {
                opts.quiet = true;
                Ok(())
            }
            ("debug", None) => {
                opts.debug = true;
                Ok(())
            }
            ("account_check", None) => {
                opts.account_check = true;
                Ok(())
            }
            ("config", Some(v)) => absolute("config", v).map(|p| config = p),
            ("domain", Some(v)) => domains(v).map(|d| opts.domains = d),
            ("group", Some(v)) => groups(v).map(|g| opts.groups = g),
            ("socket", Some(v)) => absolute("socket", v).map(|p| socket = Some(p)),
            ("timeout" | "socket_timeout", Some(v)) => {
                timeout(value_name(name), v).map(|t| opts.timeout = t)
            }
            ("socket_owner", Some(v)) => owner(v).map(|o| socket_owner = Some(o)),
            (
                "use_first_pass" | "try_first_pass" | "quiet" | "debug" | "account_check",
                Some(_),
            ) => Err(OptionError::BadValue {
                name: flag_name(name),
                problem: "takes no value".into(),
            }),
            (
                "config" | "domain" | "group" | "socket" | "timeout" | "socket_timeout"
                | "socket_owner",
                None,
            ) => Err(OptionError::BadValue {
                name: value_name(name),
                problem: "needs a value (NAME=VALUE)".into(),
            }),
            _ if xcauth_core::logsafe::looks_like_name(name, value.is_none()) => {
                Err(OptionError::Unknown(name.to_owned()))
            }
            _ => Err(OptionError::Unrecognised(index + 1)),
        };
        if let Err(e) = result {
            errors.push(e);
        }
    }
    opts.authority = match socket {
        Some(path) => Authority::Socket {
            path,
            owner: socket_owner,
        },
        None => Authority::InProcess { config },
    };
    (opts, errors)
}

/// Arguments that only the test suite uses, kept out of [`parse`]'s table of production
/// options. They are accepted by every build because the end-to-end tests drive the same
/// `.so` that is shipped; none of them widens who may log in.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct TestHooks {
    /// `syslog_socket=PATH`: send the log lines as syslog datagrams to this Unix socket
    /// instead of calling `pam_syslog` (pam_wrapper and test hosts have no syslog daemon to
    /// read back).
    pub syslog_socket: Option<PathBuf>,
}

/// Parses one test-only argument into `hooks`; `None` when `name` is not one.
fn test_hook(
    name: &str,
    value: Option<&str>,
    hooks: &mut TestHooks,
) -> Option<Result<(), OptionError>> {
    match (name, value) {
        ("syslog_socket", Some(v)) => {
            Some(absolute("syslog_socket", v).map(|p| hooks.syslog_socket = Some(p)))
        }
        ("syslog_socket", None) => Some(Err(OptionError::BadValue {
            name: "syslog_socket",
            problem: "needs a value (NAME=VALUE)".into(),
        })),
        _ => None,
    }
}

fn flag_name(name: &str) -> &'static str {
    match name {
        "use_first_pass" => "use_first_pass",
        "try_first_pass" => "try_first_pass",
        "quiet" => "quiet",
        "account_check" => "account_check",
        _ => "debug",
    }
}

fn value_name(name: &str) -> &'static str {
    match name {
        "config" => "config",
        "domain" => "domain",
        "group" => "group",
        "socket" => "socket",
        "timeout" => "timeout",
        "socket_timeout" => "socket_timeout",
        _ => "socket_owner",
    }
}

fn absolute(name: &'static str, value: &str) -> Result<PathBuf, OptionError> {
    let path = Path::new(value);
    if path.is_absolute() {
        Ok(path.to_path_buf())
    } else {
        Err(OptionError::BadValue {
            name,
            problem: "must be an absolute path".into(),
        })
    }
}

fn domains(value: &str) -> Result<Vec<String>, OptionError> {
    value.split(',').map(|d| domain(d.trim())).collect()
}

fn domain(value: &str) -> Result<String, OptionError> {
    let bad = |problem: &str| OptionError::BadValue {
        name: "domain",
        problem: problem.into(),
    };
    if value.is_empty() {
        return Err(bad("must not be empty"));
    }
    if value.contains('@') {
        return Err(bad("must be a domain, without '@'"));
    }
    if value.ends_with('.') {
        return Err(bad("must not end with a dot"));
    }
    if value.chars().any(|c| c.is_whitespace() || c.is_control()) {
        return Err(bad("must not contain spaces or control characters"));
    }
    if value.len() > xcauth_core::pamsock::MAX_NAME {
        return Err(bad("too long"));
    }
    Ok(value.to_ascii_lowercase())
}

fn groups(value: &str) -> Result<Vec<String>, OptionError> {
    let list: Vec<String> = value.split(',').map(|g| g.trim().to_owned()).collect();
    if list.iter().any(String::is_empty) {
        return Err(OptionError::BadValue {
            name: "group",
            problem: "expected a comma-separated list of group names, without empty entries".into(),
        });
    }
    Ok(list)
}

fn owner(value: &str) -> Result<String, OptionError> {
    if value.is_empty()
        || value.len() > 256
        || value.chars().any(|c| c.is_whitespace() || c.is_control())
    {
        return Err(OptionError::BadValue {
            name: "socket_owner",
            problem: "expected a user name or uid".into(),
        });
    }
    Ok(value.to_owned())
}

fn timeout(name: &'static str, value: &str) -> Result<Duration, OptionError> {
    match value.parse::<u64>() {
        Ok(secs) if (1..=MAX_TIMEOUT).contains(&secs) => Ok(Duration::from_secs(secs)),
        _ => Err(OptionError::BadValue {
            name,
            problem: format!("expected whole seconds from 1 to {MAX_TIMEOUT}"),
        }),
    }
}

/// What the parser itself accepts, found without [`OPTIONS`]: for the tests that hold the
/// table, the man page and docs/pam.md against the parser, in both directions.
#[cfg(test)]
pub(crate) mod accepted {
    use std::collections::BTreeMap;

    use super::{parse, OptionError};

    /// How [`parse`] takes an option.
    #[derive(Debug, Clone, Copy, PartialEq, Eq)]
    pub(crate) enum Shape {
        /// `name` alone.
        Flag,
        /// `name=VALUE`.
        Value,
    }

    /// The test-only options: accepted by every build, left off the man page, marked "tests
    /// only" in docs/pam.md.
    pub(crate) const TEST_ONLY: &[&str] = &["syslog_socket"];

    /// How [`parse`] takes `name`; `None` when it does not know it.
    pub(crate) fn shape(name: &str) -> Option<Shape> {
        match parse(&[name.to_owned()]).1.as_slice() {
            [] => Some(Shape::Flag),
            [OptionError::BadValue { .. }] => Some(Shape::Value),
            _ => None,
        }
    }

    /// Every option [`parse`] accepts: each word-shaped string literal in this file's source
    /// (every name the parser matches is one), kept when [`parse`] knows it.
    pub(crate) fn options() -> BTreeMap<String, Shape> {
        let source = include_str!("options.rs");
        source
            .split('"')
            .skip(1)
            .step_by(2)
            .filter(|lit| {
                lit.starts_with(|c: char| c.is_ascii_lowercase())
                    && lit
                        .chars()
                        .all(|c| c.is_ascii_lowercase() || c.is_ascii_digit() || c == '_')
            })
            .filter_map(|name| Some((name.to_owned(), shape(name)?)))
            .collect()
    }
}

#[cfg(test)]
#[allow(clippy::panic)] // tests: a panic is a failed test
mod tests {
    use super::*;

    /// The other direction: every option the parser accepts is in [`OPTIONS`] with the same
    /// shape, or is a test hook.
    #[test]
    fn every_parsed_option_is_documented() {
        use accepted::Shape;
        let accepted = accepted::options();
        // The scan finds the parser's names (a sanity check of the scan itself).
        for name in ["config", "socket_timeout", "quiet", "syslog_socket"] {
            assert!(accepted.contains_key(name), "{name}: {accepted:?}");
        }
        for (name, shape) in &accepted {
            if accepted::TEST_ONLY.contains(&name.as_str()) {
                assert!(
                    OPTIONS.iter().all(|d| d.name != name),
                    "{name} is test-only"
                );
                continue;
            }
            let doc = OPTIONS.iter().find(|d| d.name == name);
            let doc = doc.unwrap_or_else(|| panic!("{name} is parsed but not in OPTIONS"));
            let documented = if doc.value.is_some() {
                Shape::Value
            } else {
                Shape::Flag
            };
            assert_eq!(documented, *shape, "{name}");
        }
        assert_eq!(
            OPTIONS.len() + accepted::TEST_ONLY.len(),
            accepted.len(),
            "{accepted:?}"
        );
    }

    #[test]
    fn the_documented_options_are_the_parsed_ones() {
        for doc in OPTIONS {
            let (good, bad) = match doc.example {
                Some(example) => (format!("{}={example}", doc.name), doc.name.to_owned()),
                None => (doc.name.to_owned(), format!("{}=1", doc.name)),
            };
            assert_eq!(parse(std::slice::from_ref(&good)).1, vec![], "{good}");
            assert!(
                matches!(
                    &parse(std::slice::from_ref(&bad)).1[..],
                    [OptionError::BadValue { .. }]
                ),
                "{bad}"
            );
        }
        assert!(matches!(
            &parse(&["undocumented".to_owned()]).1[..],
            [OptionError::Unknown(_)]
        ));
    }

    fn args(list: &[&str]) -> Vec<String> {
        list.iter().map(|s| (*s).to_owned()).collect()
    }

    #[test]
    fn defaults() {
        let (o, e) = parse(&[]);
        assert!(e.is_empty());
        assert_eq!(o, Options::default());
        assert_eq!(
            o.authority,
            Authority::InProcess {
                config: "/etc/xcauth.conf".into()
            }
        );
        assert_eq!(o.timeout, Duration::from_secs(15));
        assert!(!o.account_check);
    }

    #[test]
    fn every_option() {
        let (o, e) = parse(&args(&[
            "use_first_pass",
            "try_first_pass",
            "quiet",
            "debug",
            "config=/etc/x.conf",
            "domain=Example.ORG, example.com",
            "account_check",
            "group=Team A, admins",
            "socket=/run/xcauth/pam.sock",
            "socket_timeout=7",
            "socket_owner=xcauth",
            "syslog_socket=/tmp/log.sock",
        ]));
        assert_eq!(e, vec![]);
        assert!(o.use_first_pass && o.try_first_pass && o.quiet && o.debug);
        assert_eq!(o.domains, vec!["example.org", "example.com"]);
        assert!(o.account_check);
        assert_eq!(o.groups, vec!["Team A".to_owned(), "admins".to_owned()]);
        // socket= wins over config=, wherever each stands.
        assert_eq!(
            o.authority,
            Authority::Socket {
                path: "/run/xcauth/pam.sock".into(),
                owner: Some("xcauth".into()),
            }
        );
        assert_eq!(o.timeout, Duration::from_secs(7));
        assert_eq!(
            o.test_hooks.syslog_socket.as_deref(),
            Some(Path::new("/tmp/log.sock"))
        );
        let (o, e) = parse(&args(&["config=/etc/x.conf"]));
        assert!(e.is_empty());
        assert_eq!(
            o.authority,
            Authority::InProcess {
                config: "/etc/x.conf".into()
            }
        );
        let (o, e) = parse(&args(&["timeout=9"]));
        assert!(e.is_empty());
        assert_eq!(o.timeout, Duration::from_secs(9));
    }

    #[test]
    fn later_options_win() {
        let (o, e) = parse(&args(&["domain=a.org", "domain=b.org"]));
        assert!(e.is_empty());
        assert_eq!(o.domains, vec!["b.org"]);
    }

    #[test]
    fn unknown_options_keep_only_their_name() {
        let (_, e) = parse(&args(&["secret=hunter2", "groups=admins", "nodelay"]));
        assert_eq!(
            e,
            vec![
                OptionError::Unknown("secret".into()),
                OptionError::Unknown("groups".into()),
                OptionError::Unknown("nodelay".into()),
            ]
        );
        assert!(!e
            .iter()
            .map(ToString::to_string)
            .any(|s| s.contains("hunter2")));
    }

    /// A password typed into the module line by mistake is not echoed into the log.
    #[test]
    fn a_stray_credential_in_the_arguments_is_not_shown() {
        let (_, e) = parse(&args(&["quiet", "s3cr3tPass", "Hunter2=x", "x y"]));
        assert_eq!(
            e,
            vec![
                OptionError::Unrecognised(2),
                OptionError::Unrecognised(3),
                OptionError::Unrecognised(4),
            ]
        );
        for text in e.iter().map(ToString::to_string) {
            assert!(
                !text.contains("s3cr3t") && !text.contains("Hunter2"),
                "{text}"
            );
        }
    }

    #[test]
    fn bad_values() {
        let cases = [
            ("config=relative.conf", "config"),
            ("config", "config"),
            ("socket=run/x.sock", "socket"),
            ("domain=", "domain"),
            ("domain=a@b", "domain"),
            ("domain=a b", "domain"),
            ("domain=example.org.", "domain"),
            ("domain=a.org,,b.org", "domain"),
            ("timeout=0", "timeout"),
            ("account_check=yes", "account_check"),
            ("group=", "group"),
            ("group=a,,b", "group"),
            ("socket_timeout=0", "socket_timeout"),
            ("socket_timeout=301", "socket_timeout"),
            ("socket_timeout=x", "socket_timeout"),
            ("quiet=1", "quiet"),
            ("socket_owner=", "socket_owner"),
            ("socket_owner", "socket_owner"),
            ("syslog_socket=x", "syslog_socket"),
        ];
        for (arg, name) in cases {
            let (_, e) = parse(&args(&[arg]));
            assert!(
                matches!(e.as_slice(), [OptionError::BadValue { name: n, .. }] if *n == name),
                "{arg}: {e:?}"
            );
        }
    }
}
