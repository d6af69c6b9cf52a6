//! The daemon side of the PAM module's `socket=` mode.

use std::os::unix::net::UnixStream;
use std::time::Duration;

use xcauth_core::Engine;

/// Serves one connection from `pam_xcauth.so socket=…`.
pub fn serve(engine: &Engine, stream: UnixStream, idle: Duration) {
    let _ = (engine, idle);
    drop(stream);
    log::error!("the pam protocol is not available in this build yet");
}
