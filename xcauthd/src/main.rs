//! xcauthd: the xcauth daemon and command-line tool.
//!
//! Modes, in order of precedence: `--version`; an admin command; `--demo`;
//! the one-shots `-I`, `-R`, `-A`; systemd socket activation; `--daemon`
//! with `listen=` addresses; inetd (fd 0 is a socket); stdin/stdout as
//! spawned by ejabberd or Prosody.

mod admin;
mod check;
mod cli;
mod daemon;
mod demo;
mod exit;
mod listen;
mod logging;
mod man;
mod oneshot;
mod reaper;
mod roster_worker;
mod serve;
mod startup;
mod stats;
mod sys;

use std::process::ExitCode;

fn main() -> ExitCode {
    let mut args = std::env::args_os();
    if args.nth(1).is_some_and(|a| a == reaper::HELPER_ARG) {
        // The process helper of one ejabberdctl call, nothing else of xcauthd.
        return reaper::main(args.collect());
    }
    let code = cli::run();
    // Syncs scheduled by the last logins (ejabberd closing stdin, a stop signal, a one-shot).
    roster_worker::finish();
    log::logger().flush();
    code
}
