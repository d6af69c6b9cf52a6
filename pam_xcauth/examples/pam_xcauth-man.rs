//! Prints pam_xcauth(8): `cargo run -p pam_xcauth --example pam_xcauth-man > pam_xcauth.8`.

#![allow(clippy::print_stdout)] // its output is the page

fn main() {
    print!("{}", pam_xcauth::manpage::render());
}
