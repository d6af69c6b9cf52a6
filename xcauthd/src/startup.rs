//! What every mode that answers questions builds from the configuration: the engine (daemon,
//! one-shots) and the listeners' connection limits (daemon, demo).

use xcauth_core::assemble::{self, Host};
use xcauth_core::config::Config;
use xcauth_core::Engine;

use crate::exit::Failure;
use crate::listen::Limits;
use xcauth_core::deadline::ConnectionTimeouts;

/// Builds the engine for the configured backend, cache and domains (with the roster sync when
/// `ejabberdctl=` is set).
pub fn engine(config: &Config) -> Result<Engine, Failure> {
    let built = assemble::engine(config, Host::Daemon).map_err(|e| Failure {
        code: e.exit_code(),
        message: e.to_string(),
    })?;
    log::debug!("credential cache: {}", built.cache);
    log::info!("brute-force throttle: {}", built.throttle);
    Ok(crate::roster_worker::attach(config, built.engine, built.db))
}

/// Connection limits from the config.
pub fn limits(config: &Config) -> Limits {
    Limits {
        max_connections: config.max_connections,
        max_per_user: config.max_connections_per_user,
        timeouts: ConnectionTimeouts {
            idle: config.idle_timeout,
            request: config.request_timeout,
        },
        write_timeout: config.write_timeout,
        max_line: config.max_line,
    }
}
