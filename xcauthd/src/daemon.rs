//! The daemon: serves the engine on inherited (systemd), configured (`--daemon`), inetd or
//! stdin/stdout connections until told to stop.

use std::os::fd::OwnedFd;
use std::process::ExitCode;
use std::sync::Arc;

use log::{error, info, warn};
use xcauth_core::codec::Framing;
use xcauth_core::config::{Config, ListenAddr};
use xcauth_core::metrics::Metrics;
use xcauth_core::Engine;

use crate::exit::{self, fail};
use crate::listen::{self, Conn, Endpoint, Limits, PeerPolicy, Service};
use crate::logging::{self, Sink};
use crate::serve::{serve_stream, StreamCtx};
use crate::startup;
use crate::stats;
use crate::sys::{self, FdKind};

/// Where the connections come from; the command line picks it.
#[derive(Debug)]
pub enum Start {
    /// systemd socket activation: the inherited listening sockets with their
    /// `FileDescriptorName`s.
    Activated(Vec<(OwnedFd, Option<String>)>),
    /// `--daemon`: bind the `listen=` addresses.
    Listen,
    /// Spawned by ejabberd or Prosody (stdin/stdout), or by inetd (fd 0 is a socket).
    Spawned,
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

fn daemon_sink(config: &Config) -> Sink {
    if config.interactive {
        Sink::Stderr
    } else if config.syslog {
        Sink::Syslog
    } else {
        Sink::Dir(config.log_dir.clone())
    }
}

/// Serves until stopped.
pub fn run(config: &Config, start: Start) -> ExitCode {
    logging::init(&daemon_sink(config), config.debug || config.interactive);
    sys::install_signal_handlers();
    let engine = match startup::engine(config) {
        Ok(e) => {
            let metrics = Arc::new(Metrics::new(e.clock().instant()));
            crate::roster_worker::count_into(Arc::clone(&metrics));
            Arc::new(e.with_metrics(metrics))
        }
        Err(failure) => {
            error!("{}", failure.message);
            return failure.exit();
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
    let limits = startup::limits(config);
    let access = match SocketAccess::resolve(config) {
        Ok(a) => a,
        Err(msg) => {
            error!("{msg}");
            return fail(exit::USAGE, &msg);
        }
    };
    let default_service = config
        .protocol
        .map_or(Service::Framing(Framing::Generic), Service::of);
    // The Prometheus endpoint belongs to a daemon with listeners (not to each process
    // ejabberd spawns); it is bound before serving so a busy port stops the start.
    let listens = matches!(start, Start::Activated(_) | Start::Listen);
    if let (Some(addr), true) = (config.metrics_listen, listens) {
        let started = stats::bind(addr).and_then(|l| stats::spawn(l, Arc::clone(&engine)));
        if let Err(e) = started {
            let msg = format!("cannot serve metrics-listen={addr}: {e}");
            error!("{msg}");
            return fail(exit::FAILURE, &msg);
        }
    }
    match start {
        Start::Activated(inherited) => {
            activated(engine, inherited, default_service, &access, limits)
        }
        Start::Listen => listen_configured(config, engine, &access, limits),
        Start::Spawned => spawned(engine, default_service, &access, limits),
    }
}

/// systemd socket activation: each inherited socket serves the protocol its
/// `FileDescriptorName` names.
fn activated(
    engine: Arc<Engine>,
    inherited: Vec<(OwnedFd, Option<String>)>,
    default_service: Service,
    access: &SocketAccess,
    limits: Limits,
) -> ExitCode {
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
        return fail(
            exit::FAILURE,
            "socket activation passed no usable listening socket",
        );
    }
    access.apply(&mut endpoints);
    run_listeners(engine, endpoints, limits)
}

/// `--daemon`: binds the `listen=` addresses.
fn listen_configured(
    config: &Config,
    engine: Arc<Engine>,
    access: &SocketAccess,
    limits: Limits,
) -> ExitCode {
    if config.listen.is_empty() {
        return fail(
            exit::USAGE,
            "--daemon needs at least one listen= address (e.g. listen=generic@tcp:127.0.0.1:23663)",
        );
    }
    let mut endpoints = Vec::new();
    for spec in &config.listen {
        let service = Service::of(spec.protocol);
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
                return fail(exit::FAILURE, &msg);
            }
        }
    }
    access.apply(&mut endpoints);
    run_listeners(engine, endpoints, limits)
}

/// Spawned by a server (stdin/stdout) or by inetd (fd 0 is a socket).
fn spawned(
    engine: Arc<Engine>,
    default_service: Service,
    access: &SocketAccess,
    limits: Limits,
) -> ExitCode {
    if let Some((fd, kind)) = sys::take_stdin_socket() {
        return match kind {
            FdKind::TcpListener | FdKind::UnixListener => {
                match Endpoint::from_fd(fd, kind, default_service, "inetd:fd0".into()) {
                    Some(ep) => {
                        let mut endpoints = vec![ep];
                        access.apply(&mut endpoints);
                        run_listeners(engine, endpoints, limits)
                    }
                    None => fail(exit::FAILURE, "fd 0 is not a usable listening socket"),
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
                    return ExitCode::from(exit::FAILURE);
                }
                let conn = Conn::Unix(stream);
                listen::serve_accepted(&engine, conn, default_service, "inetd", limits);
                ExitCode::SUCCESS
            }
            FdKind::NotASocket => ExitCode::SUCCESS,
        };
    }
    let Service::Framing(framing) = default_service else {
        return fail(exit::USAGE, "the pam protocol cannot be served on stdin");
    };
    let ctx = StreamCtx {
        engine: &engine,
        max_line: limits.max_line,
        shutdown: &sys::SHUTDOWN,
        activity: None,
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
            ExitCode::from(exit::FAILURE)
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
            ExitCode::from(exit::FAILURE)
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
