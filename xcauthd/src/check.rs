//! `xcauthd check`: diagnoses the set-up with the configuration read exactly as the daemon
//! reads it. One line per check, `OK`, `WARN` or `FAIL`, with what to do; exit status 0 when
//! nothing failed, 1 otherwise. The API secret is never printed.

use std::fmt::Write as _;
use std::io::Write;
use std::net::{TcpListener, TcpStream, ToSocketAddrs};
use std::os::unix::fs::{FileTypeExt, MetadataExt};
use std::path::{Path, PathBuf};
use std::process::ExitCode;
use std::sync::Arc;

use clap::{Arg, ArgMatches, Command};
use xcauth_core::assemble::{self, DbState, Host};
use xcauth_core::backend::jsxc::{JsxcClient, ProbeReply};
use xcauth_core::backend::{BackendKind, Target};
use xcauth_core::clock::{Clock, SystemClock};
use xcauth_core::config::{CacheStorage, Config, DbLocation, ListenAddr};
use xcauth_core::db::admin;
use xcauth_core::db::SqliteDomains;
use xcauth_core::domains::Domains;
use xcauth_core::engine;
use xcauth_core::trust;
use xcauth_core::vocab::{Unavailable, UserExists};

use crate::exit;

/// The user name the probe asks about (any answer but "error" proves the signature).
const PROBE_USER: &str = "xcauth-check-probe";
/// Clock skew up to this is fine; more is a warning.
const SKEW_WARN_SECS: i64 = 60;
/// Clock skew from this on is a failure.
const SKEW_FAIL_SECS: i64 = 3600;

/// The `check` subcommand.
pub fn subcommand() -> Command {
    Command::new("check")
        .about(
            "Check the set-up: file permissions, URL, TCP/TLS, the JSXC endpoint, the secret, \
             clock skew, domains rows, database, listeners; exit 0 when nothing FAILs",
        )
        .arg(
            Arg::new("user")
                .long("user")
                .value_name("USER")
                .requires("domain")
                .help("Also ask the backend whether USER exists in --domain"),
        )
        .arg(
            Arg::new("domain")
                .long("domain")
                .value_name("DOMAIN")
                .requires("user")
                .help("The domain of --user"),
        )
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Level {
    Ok,
    Warn,
    Fail,
}

#[derive(Debug, Default)]
struct Report {
    failed: bool,
}

impl Report {
    #[allow(clippy::print_stdout)] // the check's output
    fn line(&mut self, level: Level, topic: &str, text: &str) {
        let word = match level {
            Level::Ok => "OK  ",
            Level::Warn => "WARN",
            Level::Fail => {
                self.failed = true;
                "FAIL"
            }
        };
        let mut out = std::io::stdout().lock();
        let _ = writeln!(out, "{word} {topic}: {text}");
    }
    fn ok(&mut self, topic: &str, text: &str) {
        self.line(Level::Ok, topic, text);
    }
    fn warn(&mut self, topic: &str, text: &str) {
        self.line(Level::Warn, topic, text);
    }
    fn fail(&mut self, topic: &str, text: &str) {
        self.line(Level::Fail, topic, text);
    }
}

/// A configuration that could not be loaded: one FAIL line, exit 1.
pub fn config_failed(why: &str) -> ExitCode {
    let mut r = Report::default();
    r.fail("config", &format!("{why} → fix the named line"));
    ExitCode::from(exit::FAILURE)
}

/// Runs every check. `files` are the configuration files the daemon read.
pub fn run(config: &Config, files: &[PathBuf], m: &ArgMatches) -> ExitCode {
    let mut r = Report::default();
    let euid = trust::euid();
    for file in files {
        config_file(&mut r, file, euid);
    }
    let db = database(&mut r, config, euid);
    match (&config.url, &config.secret) {
        (Some(url), Some(secret)) => {
            let global = Target {
                kind: BackendKind::Jsxc,
                url: url.clone(),
                secret: secret.clone(),
                authdomain: config
                    .served_domains
                    .as_ref()
                    .and_then(|d| d.first().cloned())
                    .unwrap_or_else(|| "example.invalid".into()),
            };
            backend(&mut r, config, "backend", &global);
        }
        (None, _) => r.fail(
            "url",
            "url= is not set → copy it from Nextcloud's JSXC admin page",
        ),
        (_, None) => r.fail(
            "secret",
            "secret= is not set → copy it from Nextcloud's JSXC admin page",
        ),
    }
    if let Some(db) = &db {
        domain_rows(&mut r, config, db);
    }
    if config.served_domains.is_none() {
        r.warn(
            "served-domains",
            "unset: the global url serves every domain → set served-domains=[your.domain, …]",
        );
    } else {
        r.ok("served-domains", "set");
    }
    listeners(&mut r, config);
    if let (Some(user), Some(domain)) = (m.get_one::<String>("user"), m.get_one::<String>("domain"))
    {
        isuser(&mut r, config, user, domain);
    }
    if r.failed {
        ExitCode::from(exit::FAILURE)
    } else {
        ExitCode::SUCCESS
    }
}

fn config_file(r: &mut Report, file: &Path, euid: u32) {
    let topic = format!("config {}", file.display());
    let meta = match std::fs::symlink_metadata(file) {
        Ok(m) => m,
        Err(e) => return r.fail(&topic, &format!("cannot read: {e}")),
    };
    if meta.file_type().is_symlink() {
        return r.fail(
            &topic,
            "is a symbolic link; pam_xcauth.so refuses it → replace it with the file",
        );
    }
    if let Err(why) = trust::check_owner_and_mode(&meta, euid, file)
        .and_then(|()| trust::check_directories(file, euid, trust::Parent::Ancestor))
    {
        return r.fail(
            &topic,
            &format!("{why} → chown root:xcauth, chmod 0640 and fix the directories"),
        );
    }
    let mode = meta.mode() & 0o777;
    if mode & 0o004 != 0 {
        return r.fail(
            &topic,
            &format!(
                "is world-readable (mode {mode:04o}): anyone can read the API secret → \
                 chmod 0640 and chown root:xcauth"
            ),
        );
    }
    r.ok(
        &topic,
        &format!(
            "owner uid {}, group gid {}, mode {mode:04o}",
            meta.uid(),
            meta.gid()
        ),
    );
}

fn database(r: &mut Report, config: &Config, euid: u32) -> Option<Arc<xcauth_core::db::Db>> {
    let path = match &config.db {
        DbLocation::Memory => {
            r.ok("database", ":memory: (private, nothing to check)");
            return None;
        }
        DbLocation::Path(p) => p.clone(),
    };
    let topic = format!("database {}", path.display());
    let need = config.cache_storage == CacheStorage::Db;
    match assemble::open_db(config, false) {
        DbState::Absent if need => {
            r.warn(
                &topic,
                "does not exist yet; xcauthd creates it at the first login → make sure its \
                 directory is writable by xcauthd's user",
            );
            None
        }
        DbState::Absent => {
            r.ok(&topic, "absent and not needed (cache-storage is not db)");
            None
        }
        DbState::Untrusted { why } => {
            r.fail(
                &topic,
                &format!(
                    "not trusted by uid {euid}: {why} → the file and its directory must belong \
                     to root or xcauthd's user, writable only by their owner"
                ),
            );
            None
        }
        DbState::Broken(why) => {
            r.fail(&topic, &format!("{why} → restore or remove the file"));
            None
        }
        DbState::Open(db) => {
            let probe = db.transaction(|tx| {
                tx.execute_batch(
                    "CREATE TABLE xcauth_check_probe(x); DROP TABLE xcauth_check_probe;",
                )
            });
            match probe {
                Ok(()) => r.ok(&topic, &format!("opens and is writable (as uid {euid})")),
                Err(e) => r.fail(
                    &topic,
                    &format!("opens but is not writable as uid {euid}: {e} → fix owner/mode"),
                ),
            }
            Some(db)
        }
    }
}

/// URL, name resolution, TCP, TLS, the endpoint, the secret and the clock for one target.
fn backend(r: &mut Report, config: &Config, topic: &str, target: &Target) {
    let url = match reqwest_url(target.url.as_str()) {
        Ok(u) => u,
        Err(why) => return r.fail(topic, &format!("url does not parse: {why}")),
    };
    r.ok(&format!("{topic} url"), &url.0);
    let (host, port) = (url.1, url.2);
    let addrs: Vec<_> = match (host.as_str(), port).to_socket_addrs() {
        Ok(a) => a.collect(),
        Err(e) => {
            return r.fail(
                &format!("{topic} dns"),
                &format!("{host} does not resolve: {e} → check the host name and DNS"),
            )
        }
    };
    let Some(first) = addrs.first() else {
        return r.fail(&format!("{topic} dns"), &format!("{host} has no address"));
    };
    r.ok(&format!("{topic} dns"), &format!("{host} → {}", first.ip()));
    match TcpStream::connect_timeout(first, config.timeout.connect) {
        Ok(_) => r.ok(&format!("{topic} tcp"), &format!("{first} reachable")),
        Err(e) => {
            return r.fail(
                &format!("{topic} tcp"),
                &format!(
                    "cannot connect to {first}: {e} → is the server up, a firewall in the way?"
                ),
            )
        }
    }
    let opts = assemble::client_options(config, &Host::Daemon, Arc::new(SystemClock));
    let client = match JsxcClient::new(&opts) {
        Ok(c) => c,
        Err(e) => return r.fail(&format!("{topic} tls"), &format!("{e} → fix ca-file=")),
    };
    let https = target.url.url().scheme() == "https";
    let reply = match client.probe(target, PROBE_USER) {
        Ok(reply) => reply,
        Err(Unavailable::Tls(why)) => {
            return r.fail(
                &format!("{topic} tls"),
                &format!("certificate/TLS error: {why}"),
            )
        }
        Err(why) => return r.fail(&format!("{topic} http"), &why.to_string()),
    };
    if https {
        r.ok(&format!("{topic} tls"), "certificate accepted");
    }
    endpoint(r, topic, &reply);
    clock(r, topic, reply.date.as_deref());
}

/// (URL text, host, port) of a URL the client would use.
fn reqwest_url(url: &str) -> Result<(String, String, u16), String> {
    let (scheme, rest) = url.split_once("://").ok_or("no scheme")?;
    let default = match scheme {
        "https" => 443,
        "http" => 80,
        other => return Err(format!("scheme {other} (use https)")),
    };
    let authority = rest.split(['/', '?', '#']).next().unwrap_or_default();
    let authority = authority.rsplit_once('@').map_or(authority, |(_, a)| a);
    let (host, port) = if let Some(v6) = authority.strip_prefix('[') {
        let (h, after) = v6.split_once(']').ok_or("unclosed [")?;
        (h.to_owned(), after.strip_prefix(':'))
    } else {
        match authority.split_once(':') {
            Some((h, p)) => (h.to_owned(), Some(p)),
            None => (authority.to_owned(), None),
        }
    };
    if host.is_empty() {
        return Err("no host".into());
    }
    let port = match port {
        Some(p) => p.parse().map_err(|_| format!("bad port {p}"))?,
        None => default,
    };
    Ok((url.to_owned(), host, port))
}

fn endpoint(r: &mut Report, topic: &str, reply: &ProbeReply) {
    let ep = format!("{topic} endpoint");
    let sec = format!("{topic} secret");
    let json: Option<serde_json::Value> = serde_json::from_slice(&reply.body).ok();
    // The API answers its own errors (a bad signature) as JSON with status 500.
    let api_error = json
        .as_ref()
        .is_some_and(|j| j.get("result").and_then(serde_json::Value::as_str) == Some("error"));
    match reply.status {
        200 => {}
        500 if api_error => {}
        301 | 302 | 303 | 307 | 308 => {
            let to = reply.location.as_deref().unwrap_or("?");
            return r.fail(
                &ep,
                &format!(
                    "HTTP {} redirect to {} (a login page, or http→https) → put the final \
                     externalApi.php URL in url=",
                    reply.status,
                    xcauth_core::logsafe::clean(to, 200)
                ),
            );
        }
        404 => {
            return r.fail(
                &ep,
                "HTTP 404: not the JSXC external API → url= must end in \
                 /index.php/apps/ojsxc/ajax/externalApi.php and the ojsxc app must be enabled",
            )
        }
        s => {
            return r.fail(
                &ep,
                &format!("HTTP {s} instead of 200 → check url= and the server log"),
            )
        }
    }
    let json = match json {
        Some(j) => j,
        None => {
            let kind = reply.content_type.as_deref().unwrap_or("no Content-Type");
            return r.fail(
                &ep,
                &format!(
                    "answered 200 with something that is not JSON ({}), e.g. a login page → \
                     check url=",
                    xcauth_core::logsafe::clean(kind, 80)
                ),
            );
        }
    };
    let result = json.get("result").and_then(serde_json::Value::as_str);
    let msg = json
        .get("data")
        .and_then(|d| d.get("msg"))
        .and_then(serde_json::Value::as_str)
        .unwrap_or_default();
    match result {
        Some("success") if json.get("data").and_then(|d| d.get("isUser")).is_some() => {
            r.ok(&ep, "is the JSXC external API");
            r.ok(&sec, "signed probe accepted");
        }
        Some("error") if msg.contains("Signature does not match") => {
            r.ok(&ep, "is the JSXC external API");
            r.fail(
                &sec,
                "wrong secret: the backend says \"Signature does not match.\" → copy the API \
                 secret from Nextcloud's JSXC admin page into secret=",
            );
        }
        Some("error") => {
            r.ok(&ep, "is the JSXC external API");
            r.fail(
                &sec,
                &format!(
                    "the backend refused the probe: {} → check the JSXC admin page",
                    xcauth_core::logsafe::clean(msg, 200)
                ),
            );
        }
        _ => r.fail(
            &ep,
            "answered JSON that is not the JSXC external API's → check url=",
        ),
    }
}

fn clock(r: &mut Report, topic: &str, date: Option<&str>) {
    let topic = format!("{topic} clock");
    let Some(date) = date else {
        return r.warn(&topic, "the backend sent no Date header; skew not measured");
    };
    let Some(theirs) = parse_http_date(date) else {
        return r.warn(
            &topic,
            &format!(
                "unreadable Date header {}",
                xcauth_core::logsafe::clean(date, 64)
            ),
        );
    };
    let skew = theirs - SystemClock.unix_seconds();
    let text = format!(
        "the backend's clock is {}s {} ours",
        skew.abs(),
        if skew >= 0 { "ahead of" } else { "behind" }
    );
    if skew.abs() >= SKEW_FAIL_SECS {
        r.fail(
            &topic,
            &format!("{text}: tokens will be refused or live too long → run NTP on both"),
        );
    } else if skew.abs() > SKEW_WARN_SECS {
        r.warn(
            &topic,
            &format!("{text}: token lifetimes shift by as much → run NTP on both"),
        );
    } else {
        r.ok(&topic, &text);
    }
}

/// Unix seconds of an IMF-fixdate (`Sun, 06 Nov 1994 08:49:37 GMT`).
fn parse_http_date(text: &str) -> Option<i64> {
    let parts: Vec<&str> = text.split_whitespace().collect();
    let [_, day, month, year, time, "GMT"] = parts[..] else {
        return None;
    };
    const MONTHS: [&str; 12] = [
        "Jan", "Feb", "Mar", "Apr", "May", "Jun", "Jul", "Aug", "Sep", "Oct", "Nov", "Dec",
    ];
    let month = i64::try_from(MONTHS.iter().position(|m| *m == month)? + 1).ok()?;
    let (day, year): (i64, i64) = (day.parse().ok()?, year.parse().ok()?);
    let hms: Vec<i64> = time
        .split(':')
        .map(str::parse)
        .collect::<Result<_, _>>()
        .ok()?;
    let [h, mi, s] = hms[..] else { return None };
    // Days from the civil date (Howard Hinnant's algorithm).
    let y = if month <= 2 { year - 1 } else { year };
    let era = y.div_euclid(400);
    let yoe = y - era * 400;
    let mp = (month + 9) % 12;
    let doy = (153 * mp + 2) / 5 + day - 1;
    let doe = yoe * 365 + yoe / 4 - yoe / 100 + doy;
    let days = era * 146_097 + doe - 719_468;
    Some(days * 86_400 + h * 3600 + mi * 60 + s)
}

fn domain_rows(r: &mut Report, config: &Config, db: &Arc<xcauth_core::db::Db>) {
    let rows = match admin::list_domains(db) {
        Ok(rows) => rows,
        Err(e) => return r.fail("domains", &format!("cannot read the domains table: {e}")),
    };
    if rows.is_empty() {
        return r.ok("domains", "no per-domain rows");
    }
    let table = SqliteDomains::new(Arc::clone(db));
    for listing in rows {
        let name = listing.xmppdomain;
        let topic = format!("domain {name}");
        let row = match table.lookup(&name) {
            Ok(Some(row)) => row,
            // Removed since it was listed: nothing left to check.
            Ok(None) => continue,
            Err(e) => {
                r.fail(&topic, &e);
                continue;
            }
        };
        match engine::resolve_row(row, &name) {
            Ok(target) => backend(r, config, &topic, &target),
            Err(why) => r.fail(&topic, &format!("{why} → xcauthd domain change {name} …")),
        }
    }
}

fn listeners(r: &mut Report, config: &Config) {
    if config.listen.is_empty() {
        return r.ok(
            "listen",
            "no listen= addresses (systemd sockets, inetd or stdin/stdout)",
        );
    }
    for spec in &config.listen {
        let topic = format!("listen {}@{}", spec.protocol, spec.addr);
        match &spec.addr {
            ListenAddr::Tcp(addr) => match TcpListener::bind(addr) {
                Ok(_) => r.ok(&topic, "bindable"),
                Err(e) if e.kind() == std::io::ErrorKind::AddrInUse => r.warn(
                    &topic,
                    "in use (is xcauthd already running? otherwise pick another port)",
                ),
                Err(e) => r.fail(&topic, &format!("cannot bind: {e}")),
            },
            ListenAddr::Unix(path) => match std::fs::symlink_metadata(path) {
                Ok(m) if m.file_type().is_socket() => r.ok(&topic, "socket present"),
                Ok(_) => r.fail(&topic, "exists and is not a socket → remove it"),
                Err(_) => match path.parent() {
                    Some(dir) if dir.is_dir() => r.ok(&topic, "can be created"),
                    _ => r.fail(
                        &topic,
                        "its directory does not exist → create it (RuntimeDirectory=)",
                    ),
                },
            },
        }
    }
}

fn isuser(r: &mut Report, config: &Config, user: &str, domain: &str) {
    let topic = format!("isuser {user}@{domain}");
    let engine = match assemble::engine(config, Host::Daemon) {
        Ok(built) => built.engine,
        Err(e) => return r.fail(&topic, &e.to_string()),
    };
    match engine.isuser(user, domain) {
        UserExists::Yes => r.ok(&topic, "the backend knows this user"),
        UserExists::No => r.fail(&topic, "the backend does not know this user"),
        UserExists::Unknown(why) => {
            let mut text = String::new();
            let _ = write!(text, "no answer: {why}");
            r.fail(&topic, &text);
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn http_dates() {
        assert_eq!(
            parse_http_date("Sun, 06 Nov 1994 08:49:37 GMT"),
            Some(784_111_777)
        );
        assert_eq!(parse_http_date("Thu, 01 Jan 1970 00:00:00 GMT"), Some(0));
        assert_eq!(
            parse_http_date("Thu, 29 Feb 2024 12:00:00 GMT"),
            Some(1_709_208_000)
        );
        assert_eq!(parse_http_date("Sunday, 06-Nov-94 08:49:37 GMT"), None);
    }

    #[test]
    fn url_parts() {
        assert_eq!(
            reqwest_url("https://cloud.example.org/index.php")
                .unwrap()
                .1,
            "cloud.example.org"
        );
        assert_eq!(reqwest_url("http://127.0.0.1:8080/x").unwrap().2, 8080);
        assert_eq!(reqwest_url("https://[::1]/x").unwrap().1, "::1");
        assert!(reqwest_url("ftp://x/").is_err());
    }
}
