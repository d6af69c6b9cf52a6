//! The one-shot checks `-I`, `-R`, `-A` (docs/xcauth2.md §5).
//!
//! They print what xcauth 2 printed (`True`/`False`/`None`, or the raw roster
//! body) but, unlike xcauth 2, exit with a status a script can test:
//! 0 = yes/accepted, 1 = no/rejected, 3 = the backend could not answer.

use std::io::Write;
use std::process::ExitCode;

use xcauth_core::config::Config;
use xcauth_core::vocab::{AuthDecision, RosterReply, UserExists};

use crate::exit::{self, fail};
use crate::startup;

#[allow(clippy::print_stdout)]
fn say(text: &str) {
    let mut out = std::io::stdout().lock();
    let _ = writeln!(out, "{text}");
    let _ = out.flush();
}

/// Runs the one-shot given in `config` (precedence -I, -R, -A, as xcauth 2).
pub fn run(config: &Config) -> ExitCode {
    let engine = match startup::engine(config) {
        Ok(e) => e,
        Err(failure) => return failure.exit(),
    };
    if let Some((user, domain)) = &config.isuser_test {
        return match engine.isuser(user, domain) {
            UserExists::Yes => {
                say("True");
                ExitCode::SUCCESS
            }
            UserExists::No => {
                say("False");
                ExitCode::from(exit::NO)
            }
            UserExists::Unknown(_) => {
                say("None");
                ExitCode::from(exit::UNAVAILABLE)
            }
        };
    }
    if let Some((user, domain)) = &config.roster_test {
        return match engine.roster(user, domain) {
            RosterReply::Roster(r) => {
                say(&r.body);
                // With ejabberdctl= set, the sync runs now, before exiting (as xcauth 2).
                crate::roster_worker::sync_now(user, domain, &r);
                ExitCode::SUCCESS
            }
            RosterReply::Unavailable(why) => {
                log::warn!("roster: {why}");
                say("None");
                ExitCode::from(exit::UNAVAILABLE)
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
                ExitCode::from(exit::NO)
            }
            AuthDecision::Unavailable(_) => {
                say("False");
                ExitCode::from(exit::UNAVAILABLE)
            }
        };
    }
    fail(exit::FAILURE, "no one-shot command given")
}
