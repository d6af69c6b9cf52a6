//! How xcauthd ends: its exit statuses and the one way to fail with a message.
//!
//! | status | meaning |
//! |---|---|
//! | 0 | success; a one-shot's "yes" |
//! | 1 | a failure (cannot listen, database error, no mode given); a one-shot's "no" |
//! | 2 | a configuration or usage error (the message names the file, line and key) |
//! | 3 | a one-shot's "the backend could not answer" |

use std::io::Write;
use std::process::ExitCode;

/// Something went wrong at run time, or no mode was given.
pub const FAILURE: u8 = 1;
/// A one-shot's "no": the password was rejected, the user does not exist.
pub const NO: u8 = 1;
/// A configuration or usage error.
pub const USAGE: u8 = 2;
/// A one-shot's "the backend could not answer".
pub const UNAVAILABLE: u8 = 3;

/// An exit status with the message that explains it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Failure {
    /// The exit status.
    pub code: u8,
    /// One line for stderr (and the log).
    pub message: String,
}

impl Failure {
    /// Prints the message to stderr and returns the status.
    pub fn exit(&self) -> ExitCode {
        fail(self.code, &self.message)
    }
}

/// Prints `xcauthd: msg` to stderr and returns `code`.
#[allow(clippy::print_stderr)] // the CLI's own error channel
pub fn fail(code: u8, msg: &str) -> ExitCode {
    let _ = writeln!(std::io::stderr(), "xcauthd: {msg}");
    ExitCode::from(code)
}
