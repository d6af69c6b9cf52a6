//! The command line: built from the core's option table, so every
//! `xcauth.conf` key is also a `--flag`, plus the daemon's own switches.
//! [`run`] picks the mode and calls its entry: an admin command, `--demo`, a
//! one-shot, or the daemon.

use std::ffi::OsString;
use std::io::Write;
use std::process::ExitCode;

use clap::parser::ValueSource;
use clap::{Arg, ArgAction, ArgMatches, Command};
use xcauth_core::config::{Config, OptionKind, Origin, RawConfig, RawValue, OPTIONS};

use crate::daemon::{self, Start};
use crate::exit::{self, fail};
use crate::logging::{self, Sink};
use crate::{admin, check, demo, man, oneshot, stats, sys};

const ABOUT: &str = "Checks XMPP, mail and PAM logins against Nextcloud's JSXC external API.";

const AFTER_HELP: &str = "\
Modes:
  xcauthd -t ejabberd                spawned by ejabberd (extauth_program): stdin/stdout
  xcauthd -t generic                 spawned by Prosody or for line-based tests: stdin/stdout
  xcauthd --daemon                   serve the listen= addresses (TCP/Unix) from the config
  (systemd socket activation)        serve inherited sockets; protocol from FileDescriptorName
  xcauthd -A USER DOMAIN PASSWORD    one login check: prints True/False, exit 0/1 (3: backend down)
  xcauthd -I USER DOMAIN             does the user exist: True/False/None, exit 0/1/3
  xcauthd -R USER DOMAIN             print the user's shared roster (raw JSON), exit 0/3
  xcauthd check [--user U --domain D]  diagnose the set-up: OK/WARN/FAIL per check, exit 0/1
  xcauthd stats [--socket PATH]      print a running daemon's counters (SIGUSR1 logs them)
  xcauthd --demo                     try it out: all four framings on 127.0.0.1 with demo accounts

Settings come from /etc/xcauth.conf, then -c FILE, then the command line (each wins over the
one before). Every option below can be written in a config file as key=value without the
leading dashes. Exit status 2 means a configuration error; the message names the file, line
and key.";

pub(crate) fn command() -> Command {
    let mut cmd = Command::new("xcauthd")
        .version(xcauth_core::VERSION)
        .about(ABOUT)
        .after_help(AFTER_HELP)
        .disable_version_flag(true)
        .arg(
            Arg::new("daemon")
                .long("daemon")
                .action(ArgAction::SetTrue)
                .help("Serve the listen= addresses instead of stdin/stdout"),
        )
        .arg(
            Arg::new("demo")
                .long("demo")
                .action(ArgAction::SetTrue)
                .help("Run all four framings on 127.0.0.1 against a built-in DEMO backend"),
        )
        .arg(
            Arg::new("demo-port-base")
                .long("demo-port-base")
                .value_name("PORT")
                .value_parser(clap::value_parser!(u16))
                .requires("demo")
                .help(
                    "With --demo: the first port (ejabberd; then generic +1, postfix +3, \
                     saslauthd +4; default 23662). 0 picks free ports, printed in the banner",
                ),
        );
    for spec in OPTIONS {
        let mut arg = Arg::new(spec.long).long(spec.long).help(spec.help);
        if let Some(s) = spec.short {
            arg = arg.short(s);
        }
        arg = match spec.kind {
            OptionKind::Flag => arg.action(ArgAction::SetTrue),
            OptionKind::Value => arg
                .num_args(1)
                .action(ArgAction::Set)
                .value_names(spec.value_names.iter().copied()),
            OptionKind::Values(n) => arg
                .num_args(n)
                .action(ArgAction::Set)
                .value_names(spec.value_names.iter().copied()),
            OptionKind::List => arg
                .num_args(1)
                .action(ArgAction::Append)
                .value_names(spec.value_names.iter().copied()),
        };
        if let Some(d) = spec.default {
            arg = arg.help(format!("{} [default: {d}]", spec.help));
        }
        cmd = cmd.arg(arg);
    }
    admin::subcommands(cmd)
        .subcommand(check::subcommand())
        .subcommand(man::subcommand())
        .subcommand(stats::subcommand())
}

/// The command line as a raw configuration layer.
fn raw_from_matches(m: &ArgMatches) -> RawConfig {
    let mut raw = RawConfig::new();
    for spec in OPTIONS {
        if m.value_source(spec.long) != Some(ValueSource::CommandLine) {
            continue;
        }
        let value = match spec.kind {
            OptionKind::Flag => RawValue::Flag,
            OptionKind::Value => match m.get_one::<String>(spec.long) {
                Some(v) => RawValue::One(v.clone()),
                None => continue,
            },
            OptionKind::Values(_) | OptionKind::List => match m.get_many::<String>(spec.long) {
                Some(vs) => RawValue::Many(vs.cloned().collect()),
                None => continue,
            },
        };
        raw.set(spec.long, value, Origin::CommandLine);
    }
    raw
}

/// Parses the command line and runs the chosen mode.
pub fn run() -> ExitCode {
    run_with(std::env::args_os().collect())
}

fn run_with(args: Vec<OsString>) -> ExitCode {
    let matches = match command().try_get_matches_from(args) {
        Ok(m) => m,
        Err(e) => {
            let code = if e.use_stderr() { exit::USAGE } else { 0 };
            let _ = e.print();
            return ExitCode::from(code);
        }
    };
    let raw = raw_from_matches(&matches);
    if raw.get("version").is_some() {
        // Answer even when /etc/xcauth.conf is broken.
        return print_version();
    }
    // XCAUTH_SYSTEM_CONFIG replaces /etc/xcauth.conf (tests, packaging
    // checks). xcauthd is never setuid; the PAM module reads no environment.
    let system_file = std::env::var_os("XCAUTH_SYSTEM_CONFIG")
        .map(std::path::PathBuf::from)
        .unwrap_or_else(|| xcauth_core::config::SYSTEM_CONFIG_FILE.into());
    if let Some(("man", sub)) = matches.subcommand() {
        // Independent of any configuration: it documents the defaults.
        return man::run(&command(), sub);
    }
    if let Some(("stats", sub)) = matches.subcommand() {
        if sub.contains_id("socket") {
            // Independent of the configuration (a user who may not read it may ask).
            return stats::run(&stats::socket_path(None, sub));
        }
    }
    let checking = matches.subcommand_name() == Some("check");
    let config = match Config::load(&raw, &system_file) {
        Ok(c) => c,
        Err(e) if checking => return check::config_failed(&e.to_string()),
        Err(e) => return fail(e.exit_code(), &e.to_string()),
    };
    if config.version {
        return print_version();
    }
    if let Some(("check", sub)) = matches.subcommand() {
        logging::init(&Sink::Stderr, config.debug);
        let mut files: Vec<std::path::PathBuf> = Vec::new();
        if system_file.exists() {
            files.push(system_file);
        }
        files.extend(config.config_file.clone());
        return check::run(&config, &files, sub);
    }
    if let Some(("stats", sub)) = matches.subcommand() {
        return stats::run(&stats::socket_path(Some(&config), sub));
    }
    if let Some((name, sub)) = matches.subcommand() {
        logging::init(&Sink::Stderr, config.debug);
        return admin::run(&config, name, sub);
    }
    if matches.get_flag("demo") {
        logging::init(&Sink::Stderr, config.debug || config.interactive);
        let base = matches
            .get_one::<u16>("demo-port-base")
            .copied()
            .unwrap_or(demo::DEFAULT_PORT_BASE);
        return demo::run(&config, base);
    }
    if config.isuser_test.is_some() || config.roster_test.is_some() || config.auth_test.is_some() {
        // Interactive modes log to stderr (xcauth 2: DEBUG with -i, here INFO unless -d).
        logging::init(&Sink::Stderr, config.debug || config.interactive);
        return oneshot::run(&config);
    }
    let inherited = sys::take_listen_fds();
    let start = if !inherited.is_empty() {
        Start::Activated(inherited)
    } else if matches.get_flag("daemon") {
        Start::Listen
    } else if config.protocol.is_some() {
        Start::Spawned
    } else {
        // No mode given: help on stderr and status 1, as xcauth 2.
        let _ = print_help_stderr();
        return ExitCode::from(exit::FAILURE);
    };
    daemon::run(&config, start)
}

#[allow(clippy::print_stdout)] // --version output
fn print_version() -> ExitCode {
    let _ = writeln!(
        std::io::stdout(),
        "xcauthd {} (compatible with xcauth 2.0.4+)",
        xcauth_core::VERSION
    );
    ExitCode::SUCCESS
}

/// Prints `--help` to stderr.
fn print_help_stderr() -> std::io::Result<()> {
    let help = command().render_help();
    write!(std::io::stderr(), "{help}")
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn every_option_is_on_the_command_line() {
        command().debug_assert();
        let m = command()
            .try_get_matches_from([
                "xcauthd",
                "-A",
                "u",
                "d",
                "p:w",
                "--timeout",
                "3",
                "-d",
                "--listen",
                "generic@tcp:127.0.0.1:1",
                "--listen",
                "postfix@tcp:127.0.0.1:2",
            ])
            .unwrap();
        let raw = raw_from_matches(&m);
        assert_eq!(
            raw.get("auth-test").unwrap().value,
            RawValue::Many(vec!["u".into(), "d".into(), "p:w".into()])
        );
        assert_eq!(raw.get("timeout").unwrap().value, RawValue::One("3".into()));
        assert_eq!(raw.get("debug").unwrap().value, RawValue::Flag);
        assert!(matches!(&raw.get("listen").unwrap().value, RawValue::Many(v) if v.len() == 2));
        assert!(
            raw.get("url").is_none(),
            "defaults are not command-line values"
        );
    }
}
