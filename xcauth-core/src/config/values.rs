//! Typed option values and their parsers.
//!
//! Parsers return the problem as text (`expected …, got '…'`); [`super::Config::resolve`]
//! adds the origin and option name. None of them is used for sensitive options, so quoting
//! the value is safe here.

use std::fmt;
use std::net::{IpAddr, Ipv6Addr, SocketAddr};
use std::path::PathBuf;
use std::str::FromStr;
use std::time::Duration;

use crate::protocol::Protocol;
use crate::vocab::BackendUrl;

/// Where the SQLite database lives (`db`).
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum DbLocation {
    /// `:memory:`: a private database, lost on exit.
    Memory,
    /// A file.
    Path(PathBuf),
}

impl FromStr for DbLocation {
    type Err = String;

    fn from_str(text: &str) -> Result<Self, Self::Err> {
        match text {
            "" => Err("must not be empty".to_owned()),
            ":memory:" => Ok(Self::Memory),
            path => Ok(Self::Path(PathBuf::from(path))),
        }
    }
}

/// Where passwords the backend accepted are cached (`cache-storage`, docs/xcauth2.md §4.2).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum CacheStorage {
    /// No cache.
    None,
    /// A separate in-memory database (bcrypt rounds: [`BcryptRounds::memory`]).
    Memory,
    /// The `authcache` table of `db` (bcrypt rounds: [`BcryptRounds::persistent`]).
    Db,
}

impl CacheStorage {
    /// The option value.
    pub fn as_str(self) -> &'static str {
        match self {
            Self::None => "none",
            Self::Memory => "memory",
            Self::Db => "db",
        }
    }
}

impl FromStr for CacheStorage {
    type Err = String;

    fn from_str(text: &str) -> Result<Self, Self::Err> {
        match text {
            "none" => Ok(Self::None),
            "memory" => Ok(Self::Memory),
            "db" => Ok(Self::Db),
            _ => Err(format!("expected one of none, memory or db, got '{text}'")),
        }
    }
}

/// Backend HTTP timeouts (`timeout`: `N` or `CONNECT,READ`, whole seconds ≥ 1).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct BackendTimeouts {
    /// Time to establish the connection.
    pub connect: Duration,
    /// Time to wait for the response.
    pub read: Duration,
}

impl FromStr for BackendTimeouts {
    type Err = String;

    fn from_str(text: &str) -> Result<Self, Self::Err> {
        let bad = || {
            format!("expected N or CONNECT,READ in whole seconds (each at least 1), got '{text}'")
        };
        let seconds = pair(text, |part| parse_digits(part).filter(|n| *n >= 1)).ok_or_else(bad)?;
        Ok(Self {
            connect: Duration::from_secs(seconds.0),
            read: Duration::from_secs(seconds.1),
        })
    }
}

/// bcrypt cost of cached passwords (`cache-bcrypt-rounds`: `N` or `PERSISTENT,MEMORY`).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct BcryptRounds {
    /// For `cache-storage=db`.
    pub persistent: u32,
    /// For `cache-storage=memory`.
    pub memory: u32,
}

impl FromStr for BcryptRounds {
    type Err = String;

    fn from_str(text: &str) -> Result<Self, Self::Err> {
        let bad = || format!("expected N or PERSISTENT,MEMORY, each from 4 to 31, got '{text}'");
        let parse_one = |part: &str| {
            parse_digits(part)
                .filter(|n| (4..=31).contains(n))
                .and_then(|n| u32::try_from(n).ok())
        };
        let (persistent, memory) = pair(text, parse_one).ok_or_else(bad)?;
        Ok(Self { persistent, memory })
    }
}

/// `A` → `(A, A)`, `A,B` → `(A, B)`; anything else (`1,2,3`, `,`) → `None`.
fn pair<T: Copy>(text: &str, parse: impl Fn(&str) -> Option<T>) -> Option<(T, T)> {
    let parts: Vec<&str> = text.split(',').map(str::trim).collect();
    match parts.as_slice() {
        [both] => parse(both).map(|v| (v, v)),
        [first, second] => Some((parse(first)?, parse(second)?)),
        _ => None,
    }
}

/// A non-empty string of ASCII digits (no sign, no spaces).
fn is_digits(text: &str) -> bool {
    !text.is_empty() && text.bytes().all(|b| b.is_ascii_digit())
}

/// A non-empty string of ASCII digits as a number; `None` also when it overflows.
fn parse_digits(text: &str) -> Option<u64> {
    is_digits(text).then(|| text.parse().ok()).flatten()
}

/// One address to listen on (`listen=PROTO@tcp:HOST:PORT` or `PROTO@unix:/path`).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ListenSpec {
    /// The framing spoken on it.
    pub protocol: Protocol,
    /// Where.
    pub addr: ListenAddr,
}

/// A listening address.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub enum ListenAddr {
    /// A TCP socket address (IP literal; host names are not resolved).
    Tcp(SocketAddr),
    /// A Unix stream socket at an absolute path.
    Unix(PathBuf),
}

impl fmt::Display for ListenAddr {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Self::Tcp(addr) => write!(f, "tcp:{addr}"),
            Self::Unix(path) => write!(f, "unix:{}", path.display()),
        }
    }
}

impl fmt::Display for ListenSpec {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}@{}", self.protocol, self.addr)
    }
}

impl FromStr for ListenSpec {
    type Err = String;

    fn from_str(text: &str) -> Result<Self, Self::Err> {
        let (protocol, addr) = text.split_once('@').ok_or_else(|| {
            format!("expected PROTO@tcp:IP:PORT or PROTO@unix:/path, got '{text}'")
        })?;
        let protocol: Protocol = protocol.parse()?;
        let addr = if let Some(host) = addr.strip_prefix("tcp:") {
            if protocol == Protocol::Pam {
                return Err(
                    "the pam protocol is served on unix sockets only: pam@unix:/path".into(),
                );
            }
            ListenAddr::Tcp(parse_tcp(host, protocol.default_port())?)
        } else if let Some(path) = addr.strip_prefix("unix:") {
            if !path.starts_with('/') {
                return Err(format!("a unix socket path must be absolute, got '{path}'"));
            }
            ListenAddr::Unix(PathBuf::from(path))
        } else {
            return Err(format!(
                "expected tcp:IP:PORT or unix:/path after '{protocol}@', got '{addr}'"
            ));
        };
        Ok(Self { protocol, addr })
    }
}

/// `127.0.0.1:23663`, `[::1]:23663`, or an IP without port (→ `default_port`).
fn parse_tcp(text: &str, default_port: u16) -> Result<SocketAddr, String> {
    let addr = if let Ok(addr) = text.parse::<SocketAddr>() {
        addr
    } else if let Ok(ip) = text.parse::<IpAddr>() {
        SocketAddr::new(ip, default_port)
    } else if let Some(ip) = text
        .strip_prefix('[')
        .and_then(|t| t.strip_suffix(']'))
        .and_then(|t| t.parse::<Ipv6Addr>().ok())
    {
        SocketAddr::new(IpAddr::V6(ip), default_port)
    } else {
        return Err(format!(
            "expected an IP address and optional port such as 127.0.0.1:{default_port} or \
             [::1]:{default_port} (host names are not resolved), got '{text}'"
        ));
    };
    if addr.port() == 0 {
        return Err(format!("port 0 is not allowed, got '{text}'"));
    }
    Ok(addr)
}

const DURATION_HINT: &str = "expected a duration like 30s, 15m, 1h, 1d or 2w";

/// Parses a TTL-style duration: an integer with an optional single suffix `s`, `m`, `h`, `d`
/// or `w` (seconds without one). Anything else (`2x`, `-1h`, `1.5h`, `h`, ``, spaces) is an
/// error whose text quotes the input.
pub fn parse_duration(text: &str) -> Result<Duration, String> {
    let bad = || format!("{DURATION_HINT}, got '{text}'");
    let (digits, unit) = match text.char_indices().next_back() {
        Some((i, c)) if c.is_ascii_alphabetic() => (&text[..i], c),
        _ => (text, 's'),
    };
    let unit_seconds: u64 = match unit {
        's' => 1,
        'm' => 60,
        'h' => 3600,
        'd' => 86_400,
        'w' => 604_800,
        _ => return Err(bad()),
    };
    if !is_digits(digits) {
        return Err(bad());
    }
    let too_large = || format!("duration '{text}' is too large");
    let count: u64 = digits.parse().map_err(|_| too_large())?;
    count
        .checked_mul(unit_seconds)
        .map(Duration::from_secs)
        .ok_or_else(too_large)
}

/// A backend URL: absolute, `http` or `https`, with a host ([`BackendUrl::parse`]).
pub(crate) fn parse_url(text: &str) -> Result<BackendUrl, String> {
    BackendUrl::parse(text).map_err(|e| e.to_string())
}

/// An integer in `min..=max` (`max` `None`: no upper bound except the type's).
pub(crate) fn parse_bounded(text: &str, min: u64, max: Option<u64>) -> Result<u64, String> {
    let range = match (min, max) {
        (_, Some(max)) => format!(" from {min} to {max}"),
        (0, None) => String::new(),
        (_, None) => format!(" of at least {min}"),
    };
    if !is_digits(text) {
        return Err(format!("expected a whole number{range}, got '{text}'"));
    }
    let n: u64 = text.parse().map_err(|_| format!("'{text}' is too large"))?;
    if n < min || max.is_some_and(|max| n > max) {
        return Err(format!("expected a whole number{range}, got '{text}'"));
    }
    Ok(n)
}

/// An octal file mode such as `0600`, `640` or `0o640`, at most `0777`, that lets the owner
/// read and write.
pub(crate) fn parse_file_mode(text: &str) -> Result<u32, String> {
    let digits = text.strip_prefix("0o").unwrap_or(text);
    let mode = if !digits.is_empty()
        && digits.len() <= 4
        && digits.bytes().all(|b| (b'0'..=b'7').contains(&b))
    {
        u32::from_str_radix(digits, 8).ok().filter(|m| *m <= 0o777)
    } else {
        None
    };
    let mode = mode.ok_or_else(|| {
        format!("expected an octal file mode from 0600 to 0777 such as 0600 or 0640, got '{text}'")
    })?;
    if mode & 0o600 != 0o600 {
        return Err(format!(
            "mode {mode:04o} does not let the owner read and write the database, got '{text}'"
        ));
    }
    Ok(mode)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn durations_every_suffix() {
        let cases = [
            ("0", 0),
            ("45", 45),
            ("30s", 30),
            ("15m", 900),
            ("1h", 3600),
            ("4h", 14_400),
            ("1d", 86_400),
            ("2w", 1_209_600),
            ("007m", 420),
        ];
        for (text, secs) in cases {
            assert_eq!(
                parse_duration(text),
                Ok(Duration::from_secs(secs)),
                "{text}"
            );
        }
    }

    #[test]
    fn durations_rejected() {
        for text in [
            "2x", "-1h", "h", "1.5h", "", " 1h", "1h ", "1hh", "+1h", "1H", "1 h", "1é",
        ] {
            assert_eq!(
                parse_duration(text),
                Err(format!(
                    "expected a duration like 30s, 15m, 1h, 1d or 2w, got '{text}'"
                )),
                "{text:?}"
            );
        }
        assert_eq!(
            parse_duration("99999999999999999999w").unwrap_err(),
            "duration '99999999999999999999w' is too large"
        );
        assert!(parse_duration("30500000000000000w")
            .unwrap_err()
            .contains("too large"));
    }

    #[test]
    fn timeouts() {
        let t = |c, r| BackendTimeouts {
            connect: Duration::from_secs(c),
            read: Duration::from_secs(r),
        };
        assert_eq!("5,10".parse(), Ok(t(5, 10)));
        assert_eq!("7".parse(), Ok(t(7, 7)));
        assert_eq!("3, 4".parse(), Ok(t(3, 4)));
        for bad in ["1,2,3", "0", "5,0", "", ",", "5,", "1.5", "-1", "5s", "a,b"] {
            assert_eq!(
                bad.parse::<BackendTimeouts>().unwrap_err(),
                format!(
                    "expected N or CONNECT,READ in whole seconds (each at least 1), got '{bad}'"
                )
            );
        }
    }

    #[test]
    fn bcrypt_rounds() {
        let r = |persistent, memory| BcryptRounds { persistent, memory };
        assert_eq!("12,4".parse(), Ok(r(12, 4)));
        assert_eq!("8".parse(), Ok(r(8, 8)));
        assert_eq!("4,31".parse(), Ok(r(4, 31)));
        for bad in ["1,2,3", "3", "32", "12,3", "", "x", "12,"] {
            assert_eq!(
                bad.parse::<BcryptRounds>().unwrap_err(),
                format!("expected N or PERSISTENT,MEMORY, each from 4 to 31, got '{bad}'")
            );
        }
    }

    #[test]
    fn listen_specs() {
        let tcp = |p, a: &str| ListenSpec {
            protocol: p,
            addr: ListenAddr::Tcp(a.parse().unwrap()),
        };
        let cases = [
            (
                "prosody@tcp:127.0.0.1:23663",
                tcp(Protocol::Prosody, "127.0.0.1:23663"),
            ),
            (
                "ejabberd@tcp:[::1]:13662",
                tcp(Protocol::Ejabberd, "[::1]:13662"),
            ),
            (
                "postfix@tcp:127.0.0.1",
                tcp(Protocol::Postfix, "127.0.0.1:23665"),
            ),
            (
                "saslauthd@tcp:[::1]",
                tcp(Protocol::Saslauthd, "[::1]:23666"),
            ),
            ("generic@tcp:::", tcp(Protocol::Generic, "[::]:23663")),
            (
                "saslauthd@unix:/var/run/saslauthd/mux",
                ListenSpec {
                    protocol: Protocol::Saslauthd,
                    addr: ListenAddr::Unix("/var/run/saslauthd/mux".into()),
                },
            ),
        ];
        for (text, spec) in cases {
            assert_eq!(text.parse::<ListenSpec>().as_ref(), Ok(&spec), "{text}");
        }
        assert_eq!(
            "generic@tcp:127.0.0.1"
                .parse::<ListenSpec>()
                .unwrap()
                .to_string(),
            "generic@tcp:127.0.0.1:23663"
        );
        let errors = [
            (
                "127.0.0.1:23663",
                "expected PROTO@tcp:IP:PORT or PROTO@unix:/path",
            ),
            (
                "jabber@tcp:127.0.0.1:1",
                "expected one of generic, prosody, ejabberd",
            ),
            (
                "generic@udp:127.0.0.1:1",
                "expected tcp:IP:PORT or unix:/path after 'generic@'",
            ),
            ("generic@tcp:localhost:23663", "host names are not resolved"),
            ("generic@tcp:::1:23663", "host names are not resolved"),
            ("generic@tcp:127.0.0.1:0", "port 0 is not allowed"),
            ("generic@tcp:127.0.0.1:70000", "expected an IP address"),
            (
                "generic@unix:relative/sock",
                "a unix socket path must be absolute",
            ),
            ("", "expected PROTO@"),
        ];
        for (text, fragment) in errors {
            let e = text.parse::<ListenSpec>().unwrap_err();
            assert!(e.contains(fragment), "{text}: {e}");
        }
    }

    #[test]
    fn storage_and_db() {
        assert_eq!("none".parse(), Ok(CacheStorage::None));
        assert_eq!("memory".parse(), Ok(CacheStorage::Memory));
        assert_eq!("db".parse(), Ok(CacheStorage::Db));
        assert_eq!(
            "disk".parse::<CacheStorage>().unwrap_err(),
            "expected one of none, memory or db, got 'disk'"
        );
        assert_eq!(":memory:".parse(), Ok(DbLocation::Memory));
        assert_eq!("/x.db".parse(), Ok(DbLocation::Path("/x.db".into())));
        assert!("".parse::<DbLocation>().is_err());
    }

    #[test]
    fn urls() {
        let url = parse_url(
            "https://cloud.example.com:8443/index.php/apps/ojsxc/ajax/externalApi.php?a=b",
        )
        .unwrap();
        assert_eq!(url.url().port(), Some(8443));
        assert_eq!(url.url().query(), Some("a=b"));
        assert!(parse_url("http://localhost/x").is_ok());
        let e = parse_url("ftp://h/x").unwrap_err();
        assert_eq!(
            e,
            "'ftp://h/x' is not an http or https URL (scheme 'ftp' is not supported)"
        );
        let e = parse_url("not a url").unwrap_err();
        assert_eq!(
            e,
            "'not a url' is not a valid URL: relative URL without a base"
        );
        assert!(parse_url("https://")
            .unwrap_err()
            .starts_with("'https://' is not a valid URL"));
        assert!(parse_url("file:///etc/passwd")
            .unwrap_err()
            .contains("scheme 'file'"));
    }

    #[test]
    fn bounded_integers_and_modes() {
        assert_eq!(parse_bounded("8192", 1024, Some(1_048_576)), Ok(8192));
        assert_eq!(
            parse_bounded("1023", 1024, Some(1_048_576)).unwrap_err(),
            "expected a whole number from 1024 to 1048576, got '1023'"
        );
        assert_eq!(
            parse_bounded("0", 1, None).unwrap_err(),
            "expected a whole number of at least 1, got '0'"
        );
        assert!(parse_bounded("-5", 0, None).is_err());
        assert_eq!(parse_file_mode("0600"), Ok(0o600));
        assert_eq!(parse_file_mode("640"), Ok(0o640));
        assert_eq!(parse_file_mode("0o660"), Ok(0o660));
        assert!(parse_file_mode("0800")
            .unwrap_err()
            .contains("expected an octal file mode"));
        assert!(parse_file_mode("4755")
            .unwrap_err()
            .contains("expected an octal file mode"));
        assert!(parse_file_mode("").is_err());
        assert_eq!(
            parse_file_mode("0400").unwrap_err(),
            "mode 0400 does not let the owner read and write the database, got '0400'"
        );
    }
}
