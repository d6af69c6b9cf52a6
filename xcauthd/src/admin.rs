//! Administration of the shared database (docs/xcauth2.md §3.5): per-domain settings,
//! cache entries, throttle lock-outs, and the GDPR helpers of xcauth 2's `tools/`
//! (xcdeluser, xcdelgroup, xcdelhost, xcrefreshroster).
//!
//! Every command prints what it did, refuses ambiguous input with a clear
//! message (exit 2) and never prints a secret or password hash. Secrets are
//! read from standard input so they do not show up in `ps` or shell history.

use std::io::{BufRead, Write};
use std::process::ExitCode;

use clap::{Arg, ArgAction, ArgMatches, Command};
use xcauth_core::config::{Config, DbLocation};
use xcauth_core::db::admin::{self, AdminError, DomainChange};
use xcauth_core::db::{Db, DbOptions};
use xcauth_core::Secret;
use zeroize::Zeroizing;

use crate::exit::{self, fail};

fn arg(name: &'static str, help: &'static str) -> Arg {
    Arg::new(name).required(true).help(help)
}

/// The admin subcommands.
pub fn subcommands(cmd: Command) -> Command {
    let secret_stdin = Arg::new("secret-stdin")
        .long("secret-stdin")
        .action(ArgAction::SetTrue)
        .help("Read the domain's API secret from the first line of standard input");
    cmd.subcommand(
        Command::new("domain")
            .about("Per-domain backend settings (the domains table)")
            .subcommand_required(true)
            .subcommand(
                Command::new("add")
                    .about("Add a domain; the API secret is read from standard input")
                    .arg(arg("DOMAIN", "XMPP domain, e.g. example.org"))
                    .arg(arg("URL", "JSXC external API URL of this domain's Nextcloud"))
                    .arg(Arg::new("authdomain").long("authdomain").value_name("DOMAIN").help(
                        "Domain sent to Nextcloud instead of DOMAIN (default: DOMAIN itself)",
                    )),
            )
            .subcommand(
                Command::new("change")
                    .about("Change only the given fields of a domain")
                    .arg(arg("DOMAIN", "XMPP domain"))
                    .arg(Arg::new("url").long("url").value_name("URL"))
                    .arg(Arg::new("authdomain").long("authdomain").value_name("DOMAIN"))
                    .arg(
                        Arg::new("clear-authdomain")
                            .long("clear-authdomain")
                            .action(ArgAction::SetTrue)
                            .conflicts_with("authdomain")
                            .help("Send the XMPP domain itself again"),
                    )
                    .arg(secret_stdin),
            )
            .subcommand(Command::new("remove").about("Remove a domain").arg(arg("DOMAIN", "XMPP domain")))
            .subcommand(Command::new("list").about("List domains (secrets are never shown)")),
    )
    .subcommand(
        Command::new("cache")
            .about("Cached credentials")
            .subcommand_required(true)
            .subcommand(Command::new("show").about("Show a cache entry (never the hash)").arg(arg("JID", "user@domain")))
            .subcommand(Command::new("purge").about("Delete a cache entry").arg(arg("JID", "user@domain"))),
    )
    .subcommand(
        Command::new("delete-user")
            .about("Delete everything held about a user (xcdeluser)")
            .arg(arg("JID", "user@domain")),
    )
    .subcommand(
        Command::new("delete-group")
            .about("Delete a shared-roster group; with --ejabberdctl also from ejabberd (xcdelgroup)")
            .arg(arg("GROUP", "group@domain")),
    )
    .subcommand(
        Command::new("delete-host")
            .about("Delete everything held about a domain, including its settings (xcdelhost)")
            .arg(arg("DOMAIN", "XMPP domain")),
    )
    .subcommand(
        Command::new("throttle")
            .about("Brute-force throttle lock-outs (the throttle table; docs/throttling.md)")
            .subcommand_required(true)
            .subcommand(Command::new("list").about("List the users and remote addresses the throttle remembers, locked ones first"))
            .subcommand(
                Command::new("clear")
                    .about("Lift a lock-out and forget its failures")
                    .arg(Arg::new("WHO").help("user@domain or a remote address").required_unless_present("all"))
                    .arg(Arg::new("all").long("all").action(ArgAction::SetTrue).conflicts_with("WHO").help("Forget every user and address")),
            ),
    )
    .subcommand(
        Command::new("refresh-roster")
            .about("Forget roster state so every user's next login syncs it again (xcrefreshroster)"),
    )
}

#[allow(clippy::print_stdout)] // the admin commands' output
fn say(text: &dyn std::fmt::Display) {
    let mut out = std::io::stdout().lock();
    let _ = writeln!(out, "{text}");
}

fn open(config: &Config, create: bool) -> Result<Db, String> {
    let path = match &config.db {
        DbLocation::Memory => {
            return Err("--db is :memory:; admin commands need a database file".into())
        }
        DbLocation::Path(p) => p,
    };
    if !create && !path.exists() {
        return Err(format!(
            "database {} does not exist (set db= or --db)",
            path.display()
        ));
    }
    Db::open(
        path,
        &DbOptions {
            mode: config.db_mode,
            ..DbOptions::default()
        },
    )
    .map_err(|e| e.to_string())
}

fn read_secret() -> Result<Secret, String> {
    let mut line = Zeroizing::new(String::new());
    std::io::stdin()
        .lock()
        .read_line(&mut line)
        .map_err(|e| format!("cannot read the secret from standard input: {e}"))?;
    let secret = Secret::new(line.trim_end_matches(['\r', '\n']));
    if secret.is_empty() {
        return Err("no secret on standard input (echo SECRET | xcauthd domain …)".into());
    }
    Ok(secret)
}

fn admin_err(e: AdminError) -> ExitCode {
    let code = match e {
        AdminError::Db(_) => exit::FAILURE,
        _ => exit::USAGE,
    };
    fail(code, &e.to_string())
}

/// Runs the admin subcommand `name`.
pub fn run(config: &Config, name: &str, m: &ArgMatches) -> ExitCode {
    let creates = matches!((name, m.subcommand_name()), ("domain", Some("add")));
    let db = match open(config, creates) {
        Ok(db) => db,
        Err(e) => return fail(exit::FAILURE, &e),
    };
    let s = |k: &str| {
        m.get_one::<String>(k)
            .map(String::as_str)
            .unwrap_or_default()
    };
    match name {
        "domain" => match m.subcommand() {
            Some(("add", a)) => {
                let secret = match read_secret() {
                    Ok(s) => s,
                    Err(e) => return fail(exit::USAGE, &e),
                };
                let get = |k: &str| a.get_one::<String>(k).map(String::as_str);
                match admin::add_domain(
                    &db,
                    get("DOMAIN").unwrap_or_default(),
                    &secret,
                    get("URL").unwrap_or_default(),
                    get("authdomain"),
                ) {
                    Ok(r) => say(&r),
                    Err(e) => return admin_err(e),
                }
            }
            Some(("change", a)) => {
                let secret = if a.get_flag("secret-stdin") {
                    match read_secret() {
                        Ok(s) => Some(s),
                        Err(e) => return fail(exit::USAGE, &e),
                    }
                } else {
                    None
                };
                let authdomain = if a.get_flag("clear-authdomain") {
                    Some(None)
                } else {
                    a.get_one::<String>("authdomain").map(|d| Some(d.clone()))
                };
                let change = DomainChange {
                    secret,
                    url: a.get_one::<String>("url").cloned(),
                    authdomain,
                };
                if change.secret.is_none() && change.url.is_none() && change.authdomain.is_none() {
                    return fail(exit::USAGE, "nothing to change: give --url, --authdomain, --clear-authdomain or --secret-stdin");
                }
                let domain = a
                    .get_one::<String>("DOMAIN")
                    .map(String::as_str)
                    .unwrap_or_default();
                match admin::change_domain(&db, domain, &change) {
                    Ok(r) => say(&r),
                    Err(e) => return admin_err(e),
                }
            }
            Some(("remove", a)) => {
                let domain = a
                    .get_one::<String>("DOMAIN")
                    .map(String::as_str)
                    .unwrap_or_default();
                match admin::remove_domain(&db, domain) {
                    Ok(r) => say(&r),
                    Err(e) => return admin_err(e),
                }
            }
            Some(("list", _)) => match admin::list_domains(&db) {
                Ok(rows) if rows.is_empty() => {
                    say(&"no domains configured (all use url= and secret=)")
                }
                Ok(rows) => rows.iter().for_each(|r| say(r)),
                Err(e) => return admin_err(e),
            },
            _ => return fail(exit::USAGE, "unknown domain command"),
        },
        "cache" => match m.subcommand() {
            Some(("show", a)) => {
                let jid = a
                    .get_one::<String>("JID")
                    .map(String::as_str)
                    .unwrap_or_default();
                match admin::show_cache(&db, jid) {
                    Ok(Some(info)) => say(&info),
                    Ok(None) => {
                        say(&format!("no cache entry for {jid}"));
                        return ExitCode::from(exit::NO);
                    }
                    Err(e) => return admin_err(e),
                }
            }
            Some(("purge", a)) => {
                let jid = a
                    .get_one::<String>("JID")
                    .map(String::as_str)
                    .unwrap_or_default();
                match admin::purge_cache(&db, jid) {
                    Ok(r) => say(&r),
                    Err(e) => return admin_err(e),
                }
            }
            _ => return fail(exit::USAGE, "unknown cache command"),
        },
        "delete-user" => match admin::delete_user(&db, s("JID")) {
            Ok(r) => say(&r),
            Err(e) => return admin_err(e),
        },
        "delete-group" => match admin::delete_group(&db, s("GROUP")) {
            Ok(r) => {
                say(&r);
                if let Some(ctl) = &config.ejabberdctl {
                    let status = std::process::Command::new(ctl)
                        .args(["srg_delete", &r.group, &r.domain])
                        .status();
                    match status {
                        Ok(st) if st.success() => say(&format!(
                            "ejabberd: shared roster group {} deleted",
                            r.group
                        )),
                        Ok(st) => {
                            return fail(
                                exit::FAILURE,
                                &format!("{} srg_delete failed: {st}", ctl.display()),
                            )
                        }
                        Err(e) => {
                            return fail(
                                exit::FAILURE,
                                &format!("cannot run {}: {e}", ctl.display()),
                            )
                        }
                    }
                }
            }
            Err(e) => return admin_err(e),
        },
        "delete-host" => match admin::delete_host(&db, s("DOMAIN")) {
            Ok(r) => say(&r),
            Err(e) => return admin_err(e),
        },
        "throttle" => match m.subcommand() {
            Some(("list", _)) => {
                let now = xcauth_core::Clock::unix_seconds(&xcauth_core::SystemClock);
                match admin::list_lockouts(&db, now) {
                    Ok(rows) if rows.is_empty() => say(&"no failed logins remembered"),
                    Ok(rows) => rows.iter().for_each(|r| say(r)),
                    Err(e) => return admin_err(e),
                }
            }
            Some(("clear", a)) => {
                let who = a.get_one::<String>("WHO").map(String::as_str);
                match admin::clear_lockouts(&db, who) {
                    Ok(r) => say(&r),
                    Err(e) => return admin_err(e),
                }
            }
            _ => return fail(exit::USAGE, "unknown throttle command"),
        },
        "refresh-roster" => match admin::refresh_roster(&db) {
            Ok(r) => say(&r),
            Err(e) => return admin_err(e),
        },
        other => return fail(exit::USAGE, &format!("unknown command {other}")),
    }
    ExitCode::SUCCESS
}
