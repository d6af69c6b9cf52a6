//! Configuration errors. Every message names where the bad setting came from ([`Origin`]: file
//! and line, or the command line) and never contains the value of a sensitive option.

use std::error::Error;
use std::fmt;
use std::io;
use std::path::PathBuf;

/// Where a setting came from, for error messages.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Origin {
    /// The built-in default of the option table.
    Default,
    /// A line of a config file (1-based).
    File {
        /// The file.
        path: PathBuf,
        /// Line number, starting at 1.
        line: usize,
    },
    /// The command line.
    CommandLine,
}

impl fmt::Display for Origin {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Self::Default => f.write_str("built-in default"),
            Self::File { path, line } => write!(f, "{}:{line}", path.display()),
            Self::CommandLine => f.write_str("command line"),
        }
    }
}

/// Why the configuration could not be loaded. All of these end the process with exit status
/// [`ConfigError::exit_code`] (docs/xcauth2.md §2.4).
#[derive(Debug)]
pub enum ConfigError {
    /// A config file exists (or was named with `-c`) but could not be read.
    Open {
        /// The file.
        path: PathBuf,
        /// The OS error.
        source: io::Error,
    },
    /// A line of a config file that is not `key`, `key=value`, `key: value` or `key value`.
    Syntax {
        /// File and line.
        origin: Origin,
        /// What is wrong, without the line's content.
        problem: String,
    },
    /// A key that is not an option of xcauth.
    UnknownKey {
        /// Where it was given.
        origin: Origin,
        /// The key as written.
        key: String,
    },
    /// A line of a config file whose first word is not a known key and does not look like a
    /// key either (it may be a stray secret): reported without its text.
    UnrecognisedLine {
        /// File and line.
        origin: Origin,
    },
    /// An option that only the command line accepts (`config-file`, `version`) in a file.
    CommandLineOnly {
        /// File and line.
        origin: Origin,
        /// Canonical option name.
        key: String,
    },
    /// A known option with a missing, surplus or malformed value.
    Invalid {
        /// Where it was given.
        origin: Origin,
        /// Canonical option name.
        key: String,
        /// What is wrong; quotes the value only for options that are not sensitive.
        problem: String,
    },
    /// An option needed for this mode of operation was not given anywhere.
    Required {
        /// Canonical option name (`url`, `secret`).
        key: &'static str,
    },
}

impl ConfigError {
    /// The process exit status for a configuration error: 2, like argparse's usage errors
    /// in xcauth 2.
    pub fn exit_code(&self) -> u8 {
        2
    }
}

/// `key 'name'` for a file, `--name` for the command line.
struct KeyLabel<'a>(&'a Origin, &'a str);

impl fmt::Display for KeyLabel<'_> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self.0 {
            Origin::CommandLine => write!(f, "--{}", self.1),
            Origin::Default | Origin::File { .. } => write!(f, "key '{}'", self.1),
        }
    }
}

impl fmt::Display for ConfigError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Self::Open { path, source } => {
                write!(f, "cannot open config file {}: {source}", path.display())
            }
            Self::Syntax { origin, problem } => write!(f, "{origin}: {problem}"),
            Self::UnknownKey {
                origin: Origin::CommandLine,
                key,
            } => {
                write!(f, "command line: unknown option --{key}")
            }
            Self::UnknownKey { origin, key } => write!(f, "{origin}: unknown key '{key}'"),
            Self::UnrecognisedLine { origin } => write!(
                f,
                "{origin}: unrecognised line (not a known key; its text is not shown because it \
                 may hold a secret)"
            ),
            Self::CommandLineOnly { origin, key } => write!(
                f,
                "{origin}: key '{key}' is only accepted on the command line (--{key})"
            ),
            Self::Invalid {
                origin,
                key,
                problem,
            } => {
                write!(f, "{origin}: {}: {problem}", KeyLabel(origin, key))
            }
            Self::Required { key } => {
                write!(
                    f,
                    "{key} is required (set {key}= in /etc/xcauth.conf or --{key})"
                )
            }
        }
    }
}

impl Error for ConfigError {
    fn source(&self) -> Option<&(dyn Error + 'static)> {
        match self {
            Self::Open { source, .. } => Some(source),
            _ => None,
        }
    }
}

#[cfg(test)]
mod tests {
    use std::path::Path;

    use super::*;

    fn at(line: usize) -> Origin {
        Origin::File {
            path: Path::new("/etc/xcauth.conf").to_path_buf(),
            line,
        }
    }

    #[test]
    fn messages_name_their_origin() {
        let e = ConfigError::Invalid {
            origin: at(12),
            key: "cache-query-ttl".into(),
            problem: "expected a duration like 30s, 15m, 1h, 1d or 2w, got '2x'".into(),
        };
        assert_eq!(
            e.to_string(),
            "/etc/xcauth.conf:12: key 'cache-query-ttl': expected a duration like 30s, 15m, 1h, \
             1d or 2w, got '2x'"
        );
        let e = ConfigError::Invalid {
            origin: Origin::CommandLine,
            key: "timeout".into(),
            problem: "bad".into(),
        };
        assert_eq!(e.to_string(), "command line: --timeout: bad");
        let e = ConfigError::UnknownKey {
            origin: at(3),
            key: "foo".into(),
        };
        assert_eq!(e.to_string(), "/etc/xcauth.conf:3: unknown key 'foo'");
        let e = ConfigError::UnknownKey {
            origin: Origin::CommandLine,
            key: "foo".into(),
        };
        assert_eq!(e.to_string(), "command line: unknown option --foo");
        assert_eq!(
            ConfigError::Required { key: "url" }.to_string(),
            "url is required (set url= in /etc/xcauth.conf or --url)"
        );
        let e = ConfigError::Open {
            path: "/nonexistent/x.conf".into(),
            source: io::Error::from(io::ErrorKind::NotFound),
        };
        assert!(e
            .to_string()
            .starts_with("cannot open config file /nonexistent/x.conf: "));
        assert!(e.source().is_some());
        assert_eq!(e.exit_code(), 2);
    }
}
