//! The raw layer: settings as written, before any value is interpreted.
//!
//! A [`RawConfig`] is one source (a config file, the command line, or the built-in defaults)
//! as an ordered list of `key → value` with where each came from. Keys are checked against
//! [`OPTIONS`] when a file is parsed; values are only split into their pieces here and are
//! interpreted by [`super::Config::resolve`].
//!
//! File syntax (ConfigArgParse's, as xcauth 2 used it):
//!
//! * one setting per line: `key=value`, `key: value` or `key value` — the first `=`, `:` or
//!   whitespace ends the key, so `url=https://h:8443/x?a=b` keeps the whole URL; spaces around
//!   key and value are ignored;
//! * a bare `key` sets a flag; a flag also accepts `true`/`false`, `yes`/`no`, `on`/`off`,
//!   `1`/`0`;
//! * blank lines and lines starting with `#` or `;` are ignored; so is the rest of a line from
//!   a `#` or `;` that follows whitespace (`timeout=5,10  # connect, read`);
//! * a value may be quoted with matching `'…'` or `"…"`; the quotes are removed and the text
//!   inside is taken literally (no list, no comment);
//! * `[a, b]` is a list (for `listen`, `-A`-style options; items may be quoted);
//! * keys may be written `--key` or with `_` for `-`;
//! * there are no sections: a line `[name]` is an error.

use std::fmt;
use std::fs;
use std::io;
use std::path::Path;

use zeroize::{Zeroize, Zeroizing};

use super::error::{ConfigError, Origin};
use super::options::{find_option, normalize_key, OptionKind, OptionSpec, OPTIONS};

/// A value as given, before interpretation. Wiped from memory on drop (it may be a secret).
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum RawValue {
    /// A flag that is set (`--debug`, a bare `debug`, `debug=yes`). A flag switched off in a
    /// file (`debug=no`) is stored as `One("false")`.
    Flag,
    /// One value.
    One(String),
    /// Several values: a list (`listen`) or a fixed count (`-A USER DOMAIN PASSWORD`).
    Many(Vec<String>),
}

impl Drop for RawValue {
    fn drop(&mut self) {
        match self {
            Self::Flag => {}
            Self::One(value) => value.zeroize(),
            Self::Many(values) => values.zeroize(),
        }
    }
}

/// One setting of a [`RawConfig`].
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RawEntry {
    /// The value as given.
    pub value: RawValue,
    /// Where it was given. For a list assembled from several lines of a file: the first line.
    pub origin: Origin,
}

/// The settings of one source, in the order their keys first appeared.
///
/// `Debug` shows the values of options marked [`OptionSpec::sensitive`] as `<redacted>`.
#[derive(Clone, Default, PartialEq, Eq)]
pub struct RawConfig {
    entries: Vec<(String, RawEntry)>,
}

impl RawConfig {
    /// An empty layer; the daemon fills it from the command line with [`RawConfig::set`].
    pub fn new() -> Self {
        Self::default()
    }

    /// The built-in defaults of [`OPTIONS`] as a layer ([`Origin::Default`]).
    pub fn defaults() -> Self {
        let mut raw = Self::new();
        for spec in OPTIONS {
            if let Some(text) = spec.default {
                raw.set(spec.long, RawValue::One(text.to_owned()), Origin::Default);
            }
        }
        raw
    }

    /// Sets `key` (a canonical long name; `_` and leading dashes are normalized), replacing
    /// any earlier value in this layer. Unknown keys are kept and reported by
    /// [`super::Config::resolve`].
    pub fn set(&mut self, key: &str, value: RawValue, origin: Origin) {
        let key = normalize_key(key);
        let entry = RawEntry { value, origin };
        match self.entries.iter_mut().find(|(k, _)| *k == key) {
            Some((_, existing)) => *existing = entry,
            None => self.entries.push((key, entry)),
        }
    }

    /// The setting for canonical name `key`, if this layer has one.
    pub fn get(&self, key: &str) -> Option<&RawEntry> {
        self.entries
            .iter()
            .find(|(k, _)| k == key)
            .map(|(_, entry)| entry)
    }

    /// The settings in order.
    pub fn iter(&self) -> impl Iterator<Item = (&str, &RawEntry)> {
        self.entries
            .iter()
            .map(|(key, entry)| (key.as_str(), entry))
    }

    /// Number of settings.
    pub fn len(&self) -> usize {
        self.entries.len()
    }

    /// True when the layer sets nothing.
    pub fn is_empty(&self) -> bool {
        self.entries.is_empty()
    }

    /// Reads and parses a config file. A file that cannot be read (including a missing one)
    /// is [`ConfigError::Open`].
    pub fn parse_file(path: &Path) -> Result<Self, ConfigError> {
        let file = fs::File::open(path).map_err(|source| ConfigError::Open {
            path: path.to_path_buf(),
            source,
        })?;
        Self::parse_reader(file, path)
    }

    /// Reads a config file from `reader` (a file the caller opened and checked itself) and
    /// parses it; `path` is only used in origins and messages. A read error is
    /// [`ConfigError::Open`].
    pub fn parse_reader(mut reader: impl io::Read, path: &Path) -> Result<Self, ConfigError> {
        let mut bytes = Zeroizing::new(Vec::new());
        reader
            .read_to_end(&mut bytes)
            .map_err(|source| ConfigError::Open {
                path: path.to_path_buf(),
                source,
            })?;
        match std::str::from_utf8(&bytes) {
            Ok(text) => Self::parse_str(text, path),
            Err(e) => {
                let line = 1 + bytes[..e.valid_up_to()]
                    .iter()
                    .filter(|&&b| b == b'\n')
                    .count();
                Err(ConfigError::Syntax {
                    origin: Origin::File {
                        path: path.to_path_buf(),
                        line,
                    },
                    problem: "not valid UTF-8".to_owned(),
                })
            }
        }
    }

    /// Like [`RawConfig::parse_file`], but a missing file is `Ok(None)` (for
    /// `/etc/xcauth.conf`, which is read only if it exists).
    pub fn parse_file_if_exists(path: &Path) -> Result<Option<Self>, ConfigError> {
        match Self::parse_file(path) {
            Ok(raw) => Ok(Some(raw)),
            Err(ConfigError::Open { source, .. }) if source.kind() == io::ErrorKind::NotFound => {
                Ok(None)
            }
            Err(e) => Err(e),
        }
    }

    /// Parses the text of a config file; `path` is only used in origins and messages.
    pub fn parse_str(text: &str, path: &Path) -> Result<Self, ConfigError> {
        let mut raw = Self::new();
        let text = text.strip_prefix('\u{feff}').unwrap_or(text);
        for (index, line) in text.lines().enumerate() {
            let origin = Origin::File {
                path: path.to_path_buf(),
                line: index + 1,
            };
            raw.parse_line(line, origin)?;
        }
        Ok(raw)
    }

    fn parse_line(&mut self, line: &str, origin: Origin) -> Result<(), ConfigError> {
        let line = line.trim();
        if line.is_empty() || line.starts_with('#') || line.starts_with(';') {
            return Ok(());
        }
        if line.starts_with('[') {
            return Err(ConfigError::Syntax {
                origin,
                problem: "sections like [name] are not supported: xcauth.conf is a plain list \
                          of key=value lines"
                    .to_owned(),
            });
        }
        let key_end = line.find(|c: char| c == '=' || c == ':' || c.is_whitespace());
        let (written_key, after_key) = line.split_at(key_end.unwrap_or(line.len()));
        if written_key.trim_start_matches('-').is_empty() {
            return Err(ConfigError::Syntax {
                origin,
                problem: "expected key=value, key: value, key value or a bare key; found no key"
                    .to_owned(),
            });
        }
        let key = normalize_key(written_key);
        let Some(spec) = find_option(&key) else {
            let bare = after_key.trim().is_empty();
            if looks_like_key(written_key, bare) {
                return Err(ConfigError::UnknownKey {
                    origin,
                    key: written_key.to_owned(),
                });
            }
            return Err(ConfigError::UnrecognisedLine { origin });
        };
        if spec.cli_only {
            return Err(ConfigError::CommandLineOnly { origin, key });
        }
        let invalid = |problem: &str| ConfigError::Invalid {
            origin: origin.clone(),
            key: spec.long.to_owned(),
            problem: problem.to_owned(),
        };
        let value = split_value(after_key).map_err(invalid)?;
        match (spec.kind, value) {
            (OptionKind::Flag, None) => self.set(spec.long, RawValue::Flag, origin),
            (OptionKind::Flag, Some(Written::Plain(text) | Written::Quoted(text))) => {
                match parse_bool(&text) {
                    Some(true) => self.set(spec.long, RawValue::Flag, origin),
                    Some(false) => self.set(spec.long, RawValue::One("false".into()), origin),
                    None => {
                        return Err(invalid(&format!(
                            "is a flag: give no value or one of {BOOL_WORDS}, got '{text}'"
                        )))
                    }
                }
            }
            (OptionKind::Flag, Some(Written::List(_))) => {
                return Err(invalid(&format!(
                    "is a flag: give no value or one of {BOOL_WORDS}"
                )))
            }
            (_, None) => return Err(invalid("missing value")),
            (OptionKind::Value, Some(Written::Plain(text) | Written::Quoted(text))) => {
                self.set(spec.long, RawValue::One(text), origin);
            }
            (OptionKind::Value | OptionKind::Values(_), Some(Written::List(items))) => {
                self.set(spec.long, RawValue::Many(items), origin);
            }
            (OptionKind::Values(_), Some(Written::Plain(text))) => {
                let items = text.split_whitespace().map(str::to_owned).collect();
                self.set(spec.long, RawValue::Many(items), origin);
            }
            (OptionKind::Values(_), Some(Written::Quoted(text))) => {
                self.set(spec.long, RawValue::Many(vec![text]), origin);
            }
            (OptionKind::List, Some(written)) => {
                let items = match written {
                    Written::Plain(text) | Written::Quoted(text) => vec![text],
                    Written::List(items) => items,
                };
                self.append(spec, items, origin);
            }
        }
        Ok(())
    }

    /// Adds items to a list option within one file (`listen` given on several lines).
    fn append(&mut self, spec: &OptionSpec, mut items: Vec<String>, origin: Origin) {
        if let Some((_, entry)) = self.entries.iter_mut().find(|(k, _)| k == spec.long) {
            if let RawValue::Many(existing) = &mut entry.value {
                existing.append(&mut items);
                return;
            }
        }
        self.set(spec.long, RawValue::Many(items), origin);
    }
}

impl fmt::Debug for RawConfig {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        struct Redacted<'a>(&'a Origin);
        impl fmt::Debug for Redacted<'_> {
            fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
                f.debug_struct("RawEntry")
                    .field("value", &format_args!("<redacted>"))
                    .field("origin", self.0)
                    .finish()
            }
        }
        let mut map = f.debug_map();
        for (key, entry) in &self.entries {
            if find_option(key).is_some_and(|spec| spec.sensitive) {
                map.entry(key, &Redacted(&entry.origin));
            } else {
                map.entry(key, entry);
            }
        }
        map.finish()
    }
}

/// Whether an unknown first word may be quoted in an error message: only when it has the
/// shape of an option name (a lower-case letter, then up to 31 lower-case letters, digits,
/// `-` or `_`, after optional leading dashes). A line that is a single word (`bare`) must also
/// be free of digits, as option names are: a pasted API secret or password on a line of its
/// own, or the part of one before a `=`/`:`, is never echoed into a log.
fn looks_like_key(written: &str, bare: bool) -> bool {
    crate::logsafe::looks_like_name(written, bare)
}

/// The words a flag accepts as its value, for messages.
pub(crate) const BOOL_WORDS: &str = "true/false/yes/no/on/off/1/0";

/// `true`/`yes`/`on`/`1` → true, `false`/`no`/`off`/`0` → false (any case).
pub(crate) fn parse_bool(text: &str) -> Option<bool> {
    match text.to_ascii_lowercase().as_str() {
        "true" | "yes" | "on" | "1" => Some(true),
        "false" | "no" | "off" | "0" => Some(false),
        _ => None,
    }
}

/// The value part of a line, as written.
enum Written {
    Plain(String),
    Quoted(String),
    List(Vec<String>),
}

/// Splits what follows the key: an optional `=`/`:` separator, the value, an optional
/// comment. `None` for a bare key. Errors never quote the text (it may be a secret).
fn split_value(after_key: &str) -> Result<Option<Written>, &'static str> {
    let trimmed = after_key.trim_start();
    let after_separator = match trimmed.strip_prefix(['=', ':']) {
        Some(rest) => rest,
        None => trimmed,
    };
    let value = after_separator.trim_start();
    // Whitespace right before the value (`key #c`, `key = #c`) makes a leading `#`/`;` a
    // comment; `key=#c` is the value `#c`.
    let spaced = value.len() < after_separator.len()
        || (after_separator.len() == trimmed.len() && trimmed.len() < after_key.len());
    if value.is_empty() || (spaced && value.starts_with(['#', ';'])) {
        return Ok(None);
    }
    if let Some(quote) = value.chars().next().filter(|c| *c == '"' || *c == '\'') {
        let body = &value[1..];
        let end = body.find(quote).ok_or("unterminated quote")?;
        let rest = &body[end + 1..];
        if !(rest.trim().is_empty() || (rest.starts_with(char::is_whitespace) && is_comment(rest)))
        {
            return Err("unexpected text after the closing quote");
        }
        return Ok(Some(Written::Quoted(body[..end].to_owned())));
    }
    let value = strip_comment(value);
    if let Some(inner) = value.strip_prefix('[').and_then(|v| v.strip_suffix(']')) {
        return split_list(inner).map(|items| Some(Written::List(items)));
    }
    Ok(Some(Written::Plain(value.to_owned())))
}

/// True when `text` (after whitespace) is a comment.
fn is_comment(text: &str) -> bool {
    text.trim_start().starts_with(['#', ';'])
}

/// Cuts a `#` or `;` comment that follows whitespace, and trailing whitespace.
fn strip_comment(value: &str) -> &str {
    let mut previous_space = false;
    for (i, c) in value.char_indices() {
        if previous_space && (c == '#' || c == ';') {
            return value[..i].trim_end();
        }
        previous_space = c.is_whitespace();
    }
    value.trim_end()
}

/// The items of `a, "b, c", 'd'` (the text between `[` and `]`): split at commas outside
/// quotes, trimmed, quotes removed. `[]` is the empty list.
fn split_list(inner: &str) -> Result<Vec<String>, &'static str> {
    if inner.trim().is_empty() {
        return Ok(Vec::new());
    }
    let mut items = Vec::new();
    let mut current = Zeroizing::new(String::new());
    let mut quote = None;
    for c in inner.chars() {
        match quote {
            Some(q) if c == q => quote = None,
            Some(_) => {}
            None if c == '"' || c == '\'' => quote = Some(c),
            None if c == ',' => {
                items.push(unquote(&current));
                current.zeroize();
                continue;
            }
            None => {}
        }
        current.push(c);
    }
    if quote.is_some() {
        items.zeroize();
        return Err("unterminated quote in list");
    }
    items.push(unquote(&current));
    Ok(items)
}

/// Trims an item and removes one pair of matching surrounding quotes.
fn unquote(item: &str) -> String {
    let item = item.trim();
    for q in ['"', '\''] {
        if let Some(inner) = item.strip_prefix(q).and_then(|i| i.strip_suffix(q)) {
            return inner.to_owned();
        }
    }
    item.to_owned()
}

#[cfg(test)]
mod tests {
    use super::*;

    fn parse(text: &str) -> Result<RawConfig, ConfigError> {
        RawConfig::parse_str(text, Path::new("/etc/xcauth.conf"))
    }

    fn value(raw: &RawConfig, key: &str) -> RawValue {
        raw.get(key).map(|e| e.value.clone()).unwrap()
    }

    fn one(text: &str) -> RawValue {
        RawValue::One(text.to_owned())
    }

    fn many(items: &[&str]) -> RawValue {
        RawValue::Many(items.iter().map(|s| s.to_string()).collect())
    }

    #[test]
    fn three_separators_and_spacing() {
        let raw = parse("url=https://a/\nsecret: s1\nlog  /tmp/l\n  db =  /x.db  \ntype :prosody")
            .unwrap();
        assert_eq!(value(&raw, "url"), one("https://a/"));
        assert_eq!(value(&raw, "secret"), one("s1"));
        assert_eq!(value(&raw, "log"), one("/tmp/l"));
        assert_eq!(value(&raw, "db"), one("/x.db"));
        assert_eq!(value(&raw, "type"), one("prosody"));
        assert_eq!(raw.len(), 5);
        let order: Vec<&str> = raw.iter().map(|(k, _)| k).collect();
        assert_eq!(order, ["url", "secret", "log", "db", "type"]);
    }

    #[test]
    fn separators_inside_the_value_are_kept() {
        let raw = parse("url=https://h:8443/x?a=b\nsecret=ab=cd\ncache-db: c:d=e").unwrap();
        assert_eq!(value(&raw, "url"), one("https://h:8443/x?a=b"));
        assert_eq!(value(&raw, "secret"), one("ab=cd"));
        assert_eq!(value(&raw, "cache-db"), one("c:d=e"));
        let raw = parse("url: https://h:8443/x").unwrap();
        assert_eq!(value(&raw, "url"), one("https://h:8443/x"));
    }

    #[test]
    fn origins_are_file_and_line() {
        let raw = parse("# comment\n\ndebug\n").unwrap();
        assert_eq!(
            raw.get("debug").unwrap().origin,
            Origin::File {
                path: "/etc/xcauth.conf".into(),
                line: 3
            }
        );
        assert_eq!(
            raw.get("debug").unwrap().origin.to_string(),
            "/etc/xcauth.conf:3"
        );
    }

    #[test]
    fn flags_bare_and_with_values() {
        let raw = parse("debug\ninteractive=yes\nsyslog: off\nupdate-roster 0").unwrap();
        assert_eq!(value(&raw, "debug"), RawValue::Flag);
        assert_eq!(value(&raw, "interactive"), RawValue::Flag);
        assert_eq!(value(&raw, "syslog"), one("false"));
        assert_eq!(value(&raw, "update-roster"), one("false"));
        for word in ["true", "TRUE", "yes", "on", "1"] {
            assert_eq!(
                value(&parse(&format!("debug={word}")).unwrap(), "debug"),
                RawValue::Flag
            );
        }
        for word in ["false", "no", "Off", "0"] {
            assert_eq!(
                value(&parse(&format!("debug={word}")).unwrap(), "debug"),
                one("false")
            );
        }
        let e = parse("\ndebug=maybe").unwrap_err().to_string();
        assert_eq!(
            e,
            "/etc/xcauth.conf:2: key 'debug': is a flag: give no value or one of \
             true/false/yes/no/on/off/1/0, got 'maybe'"
        );
        assert!(parse("debug=[a]")
            .unwrap_err()
            .to_string()
            .contains("is a flag"));
    }

    #[test]
    fn comments_are_ignored() {
        let raw = parse(
            "# a comment\n; another\n   # indented\n\ntimeout=5,10  # connect, read\n\
             debug # on\nurl=https://h/x#frag\nlog = /l ; where\ndb=#notacomment",
        )
        .unwrap();
        assert_eq!(value(&raw, "timeout"), one("5,10"));
        assert_eq!(value(&raw, "debug"), RawValue::Flag);
        assert_eq!(value(&raw, "url"), one("https://h/x#frag"));
        assert_eq!(value(&raw, "log"), one("/l"));
        assert_eq!(value(&raw, "db"), one("#notacomment"));
        assert_eq!(raw.len(), 5);
        assert!(parse("").unwrap().is_empty());
        assert!(parse("\n  \n\t\n").unwrap().is_empty());
    }

    #[test]
    fn quoted_values() {
        let raw = parse(
            "secret=\"a b # c\"\nurl='https://h/'\nlog = \"/l\"  # comment\ndb=\"[x]\"\ncache-db=''",
        )
        .unwrap();
        assert_eq!(value(&raw, "secret"), one("a b # c"));
        assert_eq!(value(&raw, "url"), one("https://h/"));
        assert_eq!(value(&raw, "log"), one("/l"));
        assert_eq!(value(&raw, "db"), one("[x]"));
        assert_eq!(value(&raw, "cache-db"), one(""));
        let e = parse("secret=\"hunter2").unwrap_err().to_string();
        assert_eq!(e, "/etc/xcauth.conf:1: key 'secret': unterminated quote");
        let e = parse("secret=\"hunter2\"x").unwrap_err().to_string();
        assert_eq!(
            e,
            "/etc/xcauth.conf:1: key 'secret': unexpected text after the closing quote"
        );
        // Mismatched quotes are an unterminated quote.
        assert!(parse("db='x\"").is_err());
    }

    #[test]
    fn lists() {
        let raw = parse("listen=[a@x, b@y]\nauth-test=[u,d, \"p w, x\"]\nisuser-test u d").unwrap();
        assert_eq!(value(&raw, "listen"), many(&["a@x", "b@y"]));
        assert_eq!(value(&raw, "auth-test"), many(&["u", "d", "p w, x"]));
        assert_eq!(value(&raw, "isuser-test"), many(&["u", "d"]));
        let raw = parse("listen = [\"a@x\",'b@y']").unwrap();
        assert_eq!(value(&raw, "listen"), many(&["a@x", "b@y"]));
        let raw = parse("listen=[]").unwrap();
        assert_eq!(value(&raw, "listen"), many(&[]));
        // Repeated lines append within one file; the origin stays the first line.
        let raw = parse("listen=a@x\nlisten=[b@y, c@z]\nlisten d@w").unwrap();
        assert_eq!(value(&raw, "listen"), many(&["a@x", "b@y", "c@z", "d@w"]));
        assert_eq!(
            raw.get("listen").unwrap().origin.to_string(),
            "/etc/xcauth.conf:1"
        );
        // A bracketed value of a single-value option is kept as a list for the typed layer.
        assert_eq!(
            value(&parse("timeout=[5, 10]").unwrap(), "timeout"),
            many(&["5", "10"])
        );
        let e = parse("listen=[\"a, b]").unwrap_err().to_string();
        assert!(e.ends_with("unterminated quote in list"), "{e}");
    }

    #[test]
    fn repeated_single_value_last_wins() {
        let raw = parse("log=/a\nlog=/b").unwrap();
        assert_eq!(value(&raw, "log"), one("/b"));
        assert_eq!(
            raw.get("log").unwrap().origin.to_string(),
            "/etc/xcauth.conf:2"
        );
    }

    #[test]
    fn dashes_and_underscores_in_keys() {
        let raw = parse("--cache-query-ttl=4h\ncache_verification_ttl=2d\n--debug").unwrap();
        assert_eq!(value(&raw, "cache-query-ttl"), one("4h"));
        assert_eq!(value(&raw, "cache-verification-ttl"), one("2d"));
        assert_eq!(value(&raw, "debug"), RawValue::Flag);
    }

    #[test]
    fn unknown_key_names_file_line_and_key() {
        let e = parse("debug\n\nfoo=bar").unwrap_err();
        assert!(matches!(e, ConfigError::UnknownKey { .. }));
        assert_eq!(e.to_string(), "/etc/xcauth.conf:3: unknown key 'foo'");
        let e = parse("u=https://x").unwrap_err();
        assert_eq!(e.to_string(), "/etc/xcauth.conf:1: unknown key 'u'");
        assert_eq!(e.exit_code(), 2);
    }

    #[test]
    fn structural_errors() {
        let e = parse("debug\n[main]").unwrap_err().to_string();
        assert!(
            e.starts_with("/etc/xcauth.conf:2: sections like [name] are not supported"),
            "{e}"
        );
        let e = parse("=value").unwrap_err().to_string();
        assert!(
            e.starts_with("/etc/xcauth.conf:1: expected key=value"),
            "{e}"
        );
        assert!(!e.contains("value'"));
        let e = parse("url").unwrap_err().to_string();
        assert_eq!(e, "/etc/xcauth.conf:1: key 'url': missing value");
        let e = parse("url =   # nothing").unwrap_err().to_string();
        assert_eq!(e, "/etc/xcauth.conf:1: key 'url': missing value");
        let e = parse("listen").unwrap_err().to_string();
        assert_eq!(e, "/etc/xcauth.conf:1: key 'listen': missing value");
        let e = parse("config-file=/x").unwrap_err().to_string();
        assert_eq!(
            e,
            "/etc/xcauth.conf:1: key 'config-file' is only accepted on the command line \
             (--config-file)"
        );
        assert!(parse("version").is_err());
    }

    #[test]
    fn crlf_and_bom() {
        let raw = parse("\u{feff}debug\r\nlog=/l\r\n").unwrap();
        assert_eq!(value(&raw, "debug"), RawValue::Flag);
        assert_eq!(value(&raw, "log"), one("/l"));
    }

    #[test]
    fn set_replaces_and_normalizes() {
        let mut raw = RawConfig::new();
        raw.set("log", one("/a"), Origin::CommandLine);
        raw.set("--log", one("/b"), Origin::CommandLine);
        raw.set("cache_db", one("/c"), Origin::CommandLine);
        assert_eq!(raw.len(), 2);
        assert_eq!(value(&raw, "log"), one("/b"));
        assert_eq!(value(&raw, "cache-db"), one("/c"));
    }

    #[test]
    fn debug_redacts_sensitive_values() {
        let raw = parse("secret=s3cr3t-value\nauth-test=[u, d, hunter2-pw]\nlog=/visible").unwrap();
        let out = format!("{raw:?} {raw:#?}");
        assert!(!out.contains("s3cr3t-value"), "{out}");
        assert!(!out.contains("hunter2-pw"), "{out}");
        assert!(out.contains("/visible"), "{out}");
        assert!(out.contains("<redacted>"), "{out}");
    }

    #[test]
    fn files_on_disk() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("x.conf");
        fs::write(&path, "debug\nlog=/l\n").unwrap();
        let raw = RawConfig::parse_file(&path).unwrap();
        assert_eq!(value(&raw, "log"), one("/l"));
        let missing = dir.path().join("missing.conf");
        let e = RawConfig::parse_file(&missing).unwrap_err().to_string();
        assert!(
            e.starts_with(&format!("cannot open config file {}: ", missing.display())),
            "{e}"
        );
        assert!(e.contains("os error 2"), "{e}");
        assert!(RawConfig::parse_file_if_exists(&missing).unwrap().is_none());
        fs::write(&path, b"debug\nlog=\xff\n").unwrap();
        let e = RawConfig::parse_file(&path).unwrap_err().to_string();
        assert_eq!(e, format!("{}:2: not valid UTF-8", path.display()));
        // A directory is not a readable file.
        assert!(matches!(
            RawConfig::parse_file(dir.path()),
            Err(ConfigError::Open { .. })
        ));
    }
}
