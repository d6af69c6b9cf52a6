//! Turning a validated `Config` into a running engine and listeners.

use std::io::Write;
use std::process::ExitCode;
use std::sync::Arc;

use clap::{ArgMatches, Command};
use log::{error, info, warn};
use xcauth_core::assemble::{self, Host};
use xcauth_core::codec::Framing;
use xcauth_core::config::{Config, ListenAddr, Protocol};
use xcauth_core::Engine;

use crate::listen::{self, Conn, Endpoint, Limits, PeerPolicy, Service};
use crate::logging::{self, Sink};
use crate::serve::{serve_stream, StreamCtx};
use crate::sys::{self, FdKind};
use xcauth_core::deadline::ConnectionTimeouts;

/// Prints a one-line error to stderr and returns `code`.
#[allow(clippy::print_stderr)]
pub fn fail(code: u8, msg: &str) -> ExitCode {
    let _ = writeln!(std::io::stderr(), "xcauthd: {msg}");
    ExitCode::from(code)
}

/// Builds the engine for the configured backend, cache and domains.
pub fn build_engine(config: &Config) -> Result<Engine, (u8, String)> {
    let built =
        assemble::engine(config, Host::Daemon).map_err(|e| (e.exit_code(), e.to_string()))?;
    log::debug!("credential cache: {}", built.cache);
    Ok(built.engine)
}

/// Connection limits from the config.
pub fn limits(config: &Config) -> Limits {
    Limits {
        max_connections: config.max_connections,
        timeouts: ConnectionTimeouts {
            idle: config.idle_timeout,
            request: config.request_timeout,
        },
        max_line: config.max_line,
    }
}

/// The ids behind `socket-group`, `socket-allow-users` and `socket-allow-groups`, resolved
/// once at start-up through NSS. A name that does not resolve is a configuration error.
#[derive(Debug, Clone, Default)]
pub struct SocketAccess {
    /// `socket-group`.
    pub group: Option<u32>,
    /// `socket-allow-users`.
    pub users: Vec<u32>,
    /// `socket-allow-groups` (`None`: each socket's own group).
    pub groups: Option<Vec<u32>>,
}

impl SocketAccess {
    /// Resolves the names in `config`.
    pub fn resolve(config: &Config) -> Result<Self, String> {
        let group =
            |key: &str, name: &str| listen::group_id(name).map_err(|e| format!("{key}: {e}"));
        Ok(Self {
            group: config
                .socket_group
                .as_deref()
                .map(|g| group("socket-group", g))
                .transpose()?,
            users: config
                .socket_allow_users
                .iter()
                .map(|u| listen::user_id(u).map_err(|e| format!("socket-allow-users: {e}")))
                .collect::<Result<_, _>>()?,
            groups: config
                .socket_allow_groups
                .as_ref()
                .map(|list| {
                    list.iter()
                        .map(|g| group("socket-allow-groups", g))
                        .collect::<Result<_, _>>()
                })
                .transpose()?,
        })
    }

    /// The policy of a Unix socket whose file belongs to group `socket_gid`.
    pub fn policy(&self, socket_gid: Option<u32>) -> PeerPolicy {
        PeerPolicy::new(&self.users, self.groups.as_deref(), socket_gid)
    }

    /// Gives every Unix endpoint its policy.
    fn apply(&self, endpoints: &mut [Endpoint]) {
        for ep in endpoints {
            if let listen::Listener::Unix(..) = ep.listener {
                ep.policy = self.policy(ep.socket_gid());
                log::debug!("{}: allowed peers {:?}", ep.label, ep.policy);
            }
        }
    }
}

/// Maps a configured protocol to what a listener serves.
pub fn service_of(p: Protocol) -> Service {
    match p {
        Protocol::Generic | Protocol::Prosody => Service::Framing(Framing::Generic),
        Protocol::Ejabberd => Service::Framing(Framing::Ejabberd),
        Protocol::Saslauthd => Service::Framing(Framing::Saslauthd),
        Protocol::Postfix => Service::Framing(Framing::Postfix),
        Protocol::Pam => Service::Pam,
    }
}

fn daemon_sink(config: &Config) -> Sink {
    if config.interactive {
        Sink::Stderr
    } else if config.syslog {
        Sink::Syslog
    } else {
        Sink::Dir(config.log_dir.clone())
    }
}

/// Serving modes: socket activation, `--daemon`, inetd, stdin/stdout.
pub fn serve(config: &Config, daemon: bool) -> ExitCode {
    let inherited = sys::take_listen_fds();
    if inherited.is_empty() && !daemon && config.protocol.is_none() {
        let _ = crate::cli::print_help_stderr();
        return ExitCode::from(1);
    }
    logging::init(&daemon_sink(config), config.debug || config.interactive);
    sys::install_signal_handlers();
    let engine = match build_engine(config) {
        Ok(e) => Arc::new(e),
        Err((code, msg)) => {
            error!("{msg}");
            return fail(code, &msg);
        }
    };
    if config.served_domains.is_none() {
        log::warn!(
            "served-domains is not set: a name in any domain is checked against the global \
             Nextcloud (alice@other.example logs in as alice); list the domains you serve"
        );
    }
    info!(
        "xcauthd {} starting, backend {}",
        xcauth_core::VERSION,
        config
            .url
            .as_ref()
            .map(ToString::to_string)
            .unwrap_or_default()
    );
    let limits = limits(config);
    let access = match SocketAccess::resolve(config) {
        Ok(a) => a,
        Err(msg) => {
            error!("{msg}");
            return fail(2, &msg);
        }
    };
    let default_service = config
        .protocol
        .map_or(Service::Framing(Framing::Generic), service_of);

    if !inherited.is_empty() {
        let mut endpoints = Vec::new();
        for (fd, name) in inherited {
            let service = match name.as_deref().and_then(Service::from_name) {
                Some(s) => s,
                None => {
                    warn!(
                        "socket {:?} has no known FileDescriptorName; serving {}",
                        name.as_deref().unwrap_or("unknown"),
                        default_service.name()
                    );
                    default_service
                }
            };
            let kind = sys::classify(std::os::fd::AsFd::as_fd(&fd));
            let label = format!("systemd:{}", name.as_deref().unwrap_or("unknown"));
            match Endpoint::from_fd(fd, kind, service, label.clone()) {
                Some(ep) => endpoints.push(ep),
                None => {
                    warn!("{label}: inherited descriptor is not a listening stream socket; ignored")
                }
            }
        }
        if endpoints.is_empty() {
            return fail(1, "socket activation passed no usable listening socket");
        }
        access.apply(&mut endpoints);
        return run_listeners(engine, endpoints, limits);
    }

    if daemon {
        if config.listen.is_empty() {
            return fail(2, "--daemon needs at least one listen= address (e.g. listen=generic@tcp:127.0.0.1:23663)");
        }
        let mut endpoints = Vec::new();
        for spec in &config.listen {
            let service = service_of(spec.protocol);
            let bound = match &spec.addr {
                ListenAddr::Tcp(addr) => Endpoint::bind_tcp(*addr, service),
                ListenAddr::Unix(path) => {
                    Endpoint::bind_unix(path, service, config.socket_mode, access.group)
                }
            };
            match bound {
                Ok(ep) => endpoints.push(ep),
                Err(e) => {
                    let msg = format!("cannot listen on {spec}: {e}");
                    error!("{msg}");
                    return fail(1, &msg);
                }
            }
        }
        access.apply(&mut endpoints);
        return run_listeners(engine, endpoints, limits);
    }

    // Spawned by a server (stdin/stdout) or by inetd (fd 0 is a socket).
    if let Some((fd, kind)) = sys::take_stdin_socket() {
        return match kind {
            FdKind::TcpListener | FdKind::UnixListener => {
                match Endpoint::from_fd(fd, kind, default_service, "inetd:fd0".into()) {
                    Some(ep) => {
                        let mut endpoints = vec![ep];
                        access.apply(&mut endpoints);
                        run_listeners(engine, endpoints, limits)
                    }
                    None => fail(1, "fd 0 is not a usable listening socket"),
                }
            }
            FdKind::TcpStream => {
                let conn = Conn::Tcp(std::net::TcpStream::from(fd));
                listen::serve_accepted(&engine, conn, default_service, "inetd", limits);
                ExitCode::SUCCESS
            }
            FdKind::UnixStream => {
                let stream = std::os::unix::net::UnixStream::from(fd);
                let gid = stream
                    .local_addr()
                    .ok()
                    .and_then(|a| listen::socket_file_gid(&a));
                if !access.policy(gid).admit(&stream, "inetd") {
                    return ExitCode::from(1);
                }
                let conn = Conn::Unix(stream);
                listen::serve_accepted(&engine, conn, default_service, "inetd", limits);
                ExitCode::SUCCESS
            }
            FdKind::NotASocket => ExitCode::SUCCESS,
        };
    }
    let Service::Framing(framing) = default_service else {
        return fail(2, "the pam protocol cannot be served on stdin");
    };
    let ctx = StreamCtx {
        engine: &engine,
        max_line: limits.max_line,
        shutdown: &sys::SHUTDOWN,
    };
    let stdin = std::io::stdin();
    let stdout = std::io::stdout();
    match serve_stream(&ctx, framing, stdin.lock(), stdout.lock(), None) {
        Ok(end) => {
            info!("stdin session ended: {end:?}");
            ExitCode::SUCCESS
        }
        Err(e) => {
            error!("stdin/stdout failed: {e}");
            ExitCode::from(1)
        }
    }
}

fn run_listeners(engine: Arc<Engine>, endpoints: Vec<Endpoint>, limits: Limits) -> ExitCode {
    notify_ready();
    match listen::run(engine, endpoints, limits) {
        Ok(()) => {
            info!("stopped");
            ExitCode::SUCCESS
        }
        Err(e) => {
            error!("listener failed: {e}");
            ExitCode::from(1)
        }
    }
}

/// Tells systemd (Type=notify) that the listeners are up.
fn notify_ready() {
    let Some(path) = std::env::var_os("NOTIFY_SOCKET") else {
        return;
    };
    let sock = match std::os::unix::net::UnixDatagram::unbound() {
        Ok(s) => s,
        Err(e) => {
            warn!("sd_notify: {e}");
            return;
        }
    };
    let bytes = std::os::unix::ffi::OsStrExt::as_bytes(path.as_os_str()).to_vec();
    let sent = if let Some(abstract_name) = bytes.strip_prefix(b"@") {
        use std::os::linux::net::SocketAddrExt;
        std::os::unix::net::SocketAddr::from_abstract_name(abstract_name)
            .and_then(|addr| sock.send_to_addr(b"READY=1", &addr))
    } else {
        sock.send_to(b"READY=1", std::path::Path::new(&path))
    };
    if let Err(e) = sent {
        warn!("sd_notify READY failed: {e}");
    }
}

/// Adds the admin subcommands.
pub fn admin_subcommands(cmd: Command) -> Command {
    crate::admin::subcommands(cmd)
}

/// Runs an admin subcommand.
pub fn run_admin(config: &Config, name: &str, sub: &ArgMatches) -> ExitCode {
    crate::admin::run(config, name, sub)
}
