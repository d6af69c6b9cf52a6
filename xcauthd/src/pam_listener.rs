//! The daemon side of the PAM module's `socket=` mode: a `listen=pam@unix:…`
//! listener (or a systemd socket named `pam`) answers `pam_xcauth.so` so the
//! API secret never has to be readable by the PAM host (e.g. www-data).

use std::os::unix::net::UnixStream;
use std::time::Duration;

use xcauth_core::Engine;

/// Serves one connection from `pam_xcauth.so socket=…`.
pub fn serve(engine: &Engine, stream: UnixStream, idle: Duration) {
    xcauth_core::pamsock::serve(engine, stream, idle);
}
