//! The one-shot checks `-I`, `-R`, `-A` (xcauth-behaviour.md 1.6).
//!
//! They print what xcauth 2 printed (`True`/`False`/`None`, or the raw roster
//! body) but, unlike xcauth 2, exit with a status a script can test:
//! 0 = yes/accepted, 1 = no/rejected, 3 = the backend could not answer.

use std::io::Write;
use std::process::ExitCode;

use xcauth_core::backend::{RosterReply, UserExists};
use xcauth_core::config::Config;
use xcauth_core::AuthDecision;

use crate::setup::{build_engine, fail};

/// Exit status when the backend could not answer.
pub const EXIT_UNAVAILABLE: u8 = 3;

#[allow(clippy::print_stdout)]
fn say(text: &str) {
    let mut out = std::io::stdout().lock();
    let _ = writeln!(out, "{text}");
    let _ = out.flush();
}

/// Runs the one-shot given in `config` (precedence -I, -R, -A, as xcauth 2).
pub fn run(config: &Config) -> ExitCode {
    let engine = match build_engine(config) {
        Ok(e) => e,
        Err((code, msg)) => return fail(code, &msg),
    };
    if let Some((user, domain)) = &config.isuser_test {
        return match engine.isuser(user, domain) {
            UserExists::Yes => {
                say("True");
                ExitCode::SUCCESS
            }
            UserExists::No => {
                say("False");
                ExitCode::from(1)
            }
            UserExists::Unknown(_) => {
                say("None");
                ExitCode::from(EXIT_UNAVAILABLE)
            }
        };
    }
    if let Some((user, domain)) = &config.roster_test {
        return match engine.roster(user, domain) {
            RosterReply::Roster(r) => {
                say(&r.body);
                ExitCode::SUCCESS
            }
            RosterReply::Unavailable(why) => {
                log::warn!("roster: {why}");
                say("None");
                ExitCode::from(EXIT_UNAVAILABLE)
            }
        };
    }
    if let Some((user, domain, password)) = &config.auth_test {
        return match engine.auth(user, domain, password) {
            AuthDecision::Accepted(_) => {
                say("True");
                ExitCode::SUCCESS
            }
            AuthDecision::Rejected => {
                say("False");
                ExitCode::from(1)
            }
            AuthDecision::Unavailable(_) => {
                say("False");
                ExitCode::from(EXIT_UNAVAILABLE)
            }
        };
    }
    fail(1, "no one-shot command given")
}
