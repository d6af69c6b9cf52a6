//! The daemon side of the PAM module's `socket=` mode: a `listen=pam@unix:…`
//! listener (or a systemd socket named `pam`) answers `pam_xcauth.so` so the
//! API secret never has to be readable by the PAM host (e.g. www-data).

use std::os::unix::net::UnixStream;

use xcauth_core::Engine;

use crate::serve::Timeouts;

/// Serves one connection from `pam_xcauth.so socket=…`.
pub fn serve(engine: &Engine, stream: UnixStream, timeouts: Timeouts) {
    xcauth_core::pamsock::serve(engine, stream, timeouts.idle, timeouts.request);
}
