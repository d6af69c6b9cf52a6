//! `db-stress-worker DB WORKER`: one worker of the multi-process database test (see
//! `xcauth_tests::db_stress`). Prints its `STRESS-RESULT` line; exit status 1 (with the
//! problems on stderr) when a login was decided wrongly or the database code logged a problem,
//! 2 on bad arguments.
#![allow(clippy::print_stdout, clippy::print_stderr)] // a test program's report

use std::process::ExitCode;

fn main() -> ExitCode {
    let args: Vec<String> = std::env::args().skip(1).collect();
    let (Some(path), Some(Ok(worker)), 2) = (
        args.first(),
        args.get(1).map(|w| w.parse::<usize>()),
        args.len(),
    ) else {
        eprintln!("usage: db-stress-worker DATABASE WORKER-NUMBER");
        return ExitCode::from(2);
    };
    let outcome = xcauth_tests::db_stress::run_worker(path.as_ref(), worker);
    println!("{}", outcome.line);
    if outcome.wrong.is_empty() {
        ExitCode::SUCCESS
    } else {
        eprintln!("{:#?}", outcome.wrong);
        ExitCode::FAILURE
    }
}
