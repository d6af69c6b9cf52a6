//! Prints `COUNT` generic-framing token logins, `auth:USER:DOMAIN:TOKEN`, one a line, with a
//! token made by the crate's own token code for `SECRET` (never expiring). The input of the
//! streamed token benchmark in BENCHMARKS.md:
//!
//! ```sh
//! cargo run -q --release -p xcauth-core --example token_lines -- 100000 alice example.org SECRET
//! ```
#![allow(clippy::print_stderr)]

use std::io::Write;

use xcauth_core::{token, Secret};

fn main() -> std::process::ExitCode {
    let args: Vec<String> = std::env::args().skip(1).collect();
    let [count, user, domain, secret] = args.as_slice() else {
        eprintln!("usage: token_lines COUNT USER DOMAIN SECRET");
        return std::process::ExitCode::from(2);
    };
    let Ok(count) = count.parse::<usize>() else {
        eprintln!("COUNT must be a whole number");
        return std::process::ExitCode::from(2);
    };
    let line = format!(
        "auth:{user}:{domain}:{}\n",
        token::generate(user, domain, &Secret::new(secret.as_str()), u32::MAX)
    );
    let mut out = std::io::BufWriter::new(std::io::stdout().lock());
    for _ in 0..count {
        if out.write_all(line.as_bytes()).is_err() {
            return std::process::ExitCode::FAILURE;
        }
    }
    match out.flush() {
        Ok(()) => std::process::ExitCode::SUCCESS,
        Err(_) => std::process::ExitCode::FAILURE,
    }
}
