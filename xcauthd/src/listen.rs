//! Listening sockets: bound by us (`listen=`), inherited from systemd
//! (`LISTEN_FDS`), or fd 0 from inetd; one accept loop for all of them and a
//! worker thread per connection. Each listener has its own `max-connections`
//! slots, so clients that hog one socket cannot starve the others, and a Unix
//! socket only serves the users and groups its [`PeerPolicy`] allows.
//!
//! A connection is served in one of the four framings ([`crate::serve::serve_stream`]) or,
//! on a `listen=pam@unix:…` listener (or a systemd socket named `pam`), in the PAM module's
//! `socket=` protocol ([`xcauth_core::pamsock::serve_pam_connection`]), so the API secret
//! never has to be readable by the PAM host (e.g. www-data).

use std::io;
use std::net::{TcpListener, TcpStream};
use std::os::fd::{AsFd, OwnedFd};
use std::os::unix::fs::PermissionsExt;
use std::os::unix::net::{UnixListener, UnixStream};
use std::path::{Path, PathBuf};
use std::sync::atomic::Ordering;
use std::sync::{Arc, Condvar, Mutex};
use std::time::{Duration, Instant};

use log::{debug, error, info, warn};
use xcauth_core::codec::Framing;
use xcauth_core::config::Protocol;
use xcauth_core::deadline::{self, ConnectionTimeouts};
use xcauth_core::{pamsock, Engine};

use crate::serve::{serve_stream, StreamCtx};
use crate::sys::{self, FdKind};

/// What a listener speaks: a [`Protocol`], with `prosody` and `generic` one framing.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Service {
    /// One of the four wire framings.
    Framing(Framing),
    /// The PAM module's `socket=` protocol.
    Pam,
}

impl Service {
    /// What a listener of `protocol` serves.
    pub fn of(protocol: Protocol) -> Self {
        Framing::of(protocol).map_or(Service::Pam, Service::Framing)
    }

    /// Parses a protocol name (a `FileDescriptorName`).
    pub fn from_name(name: &str) -> Option<Self> {
        name.parse().ok().map(Self::of)
    }

    /// Log name.
    pub fn name(self) -> &'static str {
        match self {
            Service::Framing(f) => f.name(),
            Service::Pam => Protocol::Pam.as_str(),
        }
    }
}

/// A listening socket of either family.
#[derive(Debug)]
pub enum Listener {
    /// TCP.
    Tcp(TcpListener),
    /// Unix stream (the path is removed again on shutdown when we created it).
    Unix(UnixListener, Option<PathBuf>),
}

/// A listener and the protocol it serves.
#[derive(Debug)]
pub struct Endpoint {
    /// The socket.
    pub listener: Listener,
    /// What it speaks.
    pub service: Service,
    /// For logs: address or fd name.
    pub label: String,
    /// Who may connect (Unix sockets; TCP has no peer credentials).
    pub policy: PeerPolicy,
}

/// Which local users may talk to a Unix socket, checked with `SO_PEERCRED` (and
/// `SO_PEERGROUPS`) on every accepted connection.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct PeerPolicy {
    /// Allowed effective uids.
    pub uids: Vec<u32>,
    /// Allowed groups (the peer's primary or a supplementary group).
    pub gids: Vec<u32>,
}

impl PeerPolicy {
    /// Root, this process's user and `users`; `groups`, or else the socket's group.
    pub fn new(users: &[u32], groups: Option<&[u32]>, socket_gid: Option<u32>) -> Self {
        let mut uids = vec![0, sys::euid()];
        uids.extend_from_slice(users);
        uids.dedup();
        let gids = match groups {
            Some(g) => g.to_vec(),
            None => socket_gid.into_iter().collect(),
        };
        Self { uids, gids }
    }

    /// True when `peer` may use the socket.
    pub fn allows(&self, peer: &sys::PeerCred) -> bool {
        self.uids.contains(&peer.uid)
            || self.gids.contains(&peer.gid)
            || peer.groups.iter().any(|g| self.gids.contains(g))
    }

    /// Checks the peer of an accepted Unix connection; logs and returns false when it is not
    /// allowed (the caller just closes the connection: the client learns nothing).
    pub fn admit(&self, stream: &UnixStream, label: &str) -> bool {
        match sys::peer_cred(stream.as_fd()) {
            Ok(peer) if self.allows(&peer) => true,
            Ok(peer) => {
                warn!(
                    "{label}: refused a connection from uid {} gid {} (pid {}): not root, not \
                     in socket-allow-users and not in an allowed group",
                    peer.uid, peer.gid, peer.pid
                );
                false
            }
            Err(e) => {
                warn!("{label}: refused a connection whose peer cannot be identified: {e}");
                false
            }
        }
    }
}

impl Endpoint {
    /// Binds a TCP listener (port 0: any free port; see [`Endpoint::tcp_port`]).
    pub fn bind_tcp(addr: std::net::SocketAddr, service: Service) -> io::Result<Self> {
        let l = TcpListener::bind(addr)?;
        let addr = l.local_addr()?;
        Ok(Self {
            label: format!("tcp:{addr}"),
            listener: Listener::Tcp(l),
            service,
            policy: PeerPolicy::default(),
        })
    }

    /// Binds a Unix listener, replacing a stale socket file, with `mode`
    /// permissions and, if given, owned by group `gid`.
    pub fn bind_unix(
        path: &Path,
        service: Service,
        mode: u32,
        gid: Option<u32>,
    ) -> io::Result<Self> {
        if let Ok(meta) = std::fs::symlink_metadata(path) {
            use std::os::unix::fs::FileTypeExt;
            if meta.file_type().is_socket() && UnixStream::connect(path).is_err() {
                std::fs::remove_file(path)?;
            }
        }
        let l = UnixListener::bind(path)?;
        std::fs::set_permissions(path, std::fs::Permissions::from_mode(mode))?;
        if let Some(gid) = gid {
            std::os::unix::fs::chown(path, None, Some(gid))?;
        }
        Ok(Self {
            label: format!("unix:{}", path.display()),
            listener: Listener::Unix(l, Some(path.to_owned())),
            service,
            policy: PeerPolicy::default(),
        })
    }

    /// The port a TCP listener is bound to.
    pub fn tcp_port(&self) -> Option<u16> {
        match &self.listener {
            Listener::Tcp(l) => l.local_addr().ok().map(|a| a.port()),
            Listener::Unix(..) => None,
        }
    }

    /// Wraps an inherited listening descriptor.
    pub fn from_fd(fd: OwnedFd, kind: FdKind, service: Service, label: String) -> Option<Self> {
        let listener = match kind {
            FdKind::TcpListener => Listener::Tcp(TcpListener::from(fd)),
            FdKind::UnixListener => Listener::Unix(UnixListener::from(fd), None),
            _ => return None,
        };
        Some(Self {
            listener,
            service,
            label,
            policy: PeerPolicy::default(),
        })
    }

    /// The group of the socket file behind a Unix listener (`None` for TCP, abstract or
    /// vanished sockets).
    pub fn socket_gid(&self) -> Option<u32> {
        match &self.listener {
            Listener::Tcp(_) => None,
            Listener::Unix(l, _) => socket_file_gid(&l.local_addr().ok()?),
        }
    }
}

/// The group owning the file of a Unix socket address.
pub fn socket_file_gid(addr: &std::os::unix::net::SocketAddr) -> Option<u32> {
    use std::os::unix::fs::MetadataExt;
    std::fs::metadata(addr.as_pathname()?).ok().map(|m| m.gid())
}

/// The numeric id of a group given by name (looked up through NSS, so LDAP or sssd groups
/// work) or number.
pub fn group_id(group: &str) -> io::Result<u32> {
    if let Ok(gid) = group.parse() {
        return Ok(gid);
    }
    sys::group_by_name(group)?
        .ok_or_else(|| io::Error::new(io::ErrorKind::NotFound, format!("no group named {group:?}")))
}

/// The numeric id of a user given by name (through NSS) or number.
pub fn user_id(user: &str) -> io::Result<u32> {
    if let Ok(uid) = user.parse() {
        return Ok(uid);
    }
    sys::user_by_name(user)?
        .ok_or_else(|| io::Error::new(io::ErrorKind::NotFound, format!("no user named {user:?}")))
}

/// Connection accounting shared by the accept loop and the workers: the number of open
/// connections of each endpoint.
#[derive(Debug)]
struct Slots {
    active: Mutex<Vec<usize>>,
    freed: Condvar,
}

impl Slots {
    fn new(endpoints: usize) -> Self {
        Self {
            active: Mutex::new(vec![0; endpoints]),
            freed: Condvar::new(),
        }
    }

    fn lock(&self) -> std::sync::MutexGuard<'_, Vec<usize>> {
        self.active
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner)
    }

    fn take(&self, endpoint: usize) {
        if let Some(n) = self.lock().get_mut(endpoint) {
            *n += 1;
        }
    }

    fn release(&self, endpoint: usize) {
        if let Some(n) = self.lock().get_mut(endpoint) {
            *n = n.saturating_sub(1);
        }
        self.freed.notify_all();
    }
}

/// Limits applied to every connection.
#[derive(Debug, Clone, Copy)]
pub struct Limits {
    /// Concurrent connections per listener; further clients wait in its listen backlog.
    pub max_connections: usize,
    /// Timeouts per connection.
    pub timeouts: ConnectionTimeouts,
    /// Longest wait to write a reply to a client that does not read (`write-timeout`).
    pub write_timeout: Duration,
    /// Bound on generic/postfix lines.
    pub max_line: usize,
}

/// How long shutdown waits for in-flight requests.
const DRAIN: Duration = Duration::from_secs(30);

/// Serves all endpoints until SIGTERM/SIGINT, then drains.
pub fn run(engine: Arc<Engine>, endpoints: Vec<Endpoint>, limits: Limits) -> io::Result<()> {
    for ep in &endpoints {
        match &ep.listener {
            Listener::Tcp(l) => l.set_nonblocking(true)?,
            Listener::Unix(l, _) => l.set_nonblocking(true)?,
        }
        info!("listening on {} ({})", ep.label, ep.service.name());
    }
    let slots = Arc::new(Slots::new(endpoints.len()));
    let mut saturated_since: Vec<Option<Instant>> = vec![None; endpoints.len()];
    while !sys::SHUTDOWN.load(Ordering::SeqCst) {
        crate::logging::reopen_if_requested();
        crate::stats::log_if_requested(&engine);
        log::logger().flush();
        // Only listeners with a free slot are polled: excess clients of one listener wait in
        // its backlog while the others go on serving.
        let open: Vec<usize> = {
            let active = slots.lock();
            let mut open = Vec::with_capacity(endpoints.len());
            for (i, ep) in endpoints.iter().enumerate() {
                let full = active.get(i).copied().unwrap_or(0) >= limits.max_connections;
                match (full, saturated_since[i]) {
                    (true, None) => {
                        warn!(
                            "{}: max-connections ({}) reached: new clients wait in the listen \
                             backlog",
                            ep.label, limits.max_connections
                        );
                        saturated_since[i] = Some(deadline::now());
                    }
                    (false, Some(since)) => {
                        info!(
                            "{}: connection slots free again after {:?}",
                            ep.label,
                            deadline::now().saturating_duration_since(since)
                        );
                        saturated_since[i] = None;
                    }
                    _ => {}
                }
                if !full {
                    open.push(i);
                }
            }
            if open.is_empty() {
                let _ = slots
                    .freed
                    .wait_timeout(active, Duration::from_millis(250))
                    .unwrap_or_else(std::sync::PoisonError::into_inner);
                continue;
            }
            open
        };
        let fds: Vec<_> = open
            .iter()
            .map(|&i| match &endpoints[i].listener {
                Listener::Tcp(l) => l.as_fd(),
                Listener::Unix(l, _) => l.as_fd(),
            })
            .collect();
        // Wake up soon when a saturated listener may have freed a slot meanwhile.
        let wait = if open.len() < endpoints.len() {
            Duration::from_millis(50)
        } else {
            Duration::from_millis(250)
        };
        let ready = sys::poll_readable(&fds, wait)?;
        for r in ready {
            let i = open[r];
            let ep = &endpoints[i];
            let accepted = match &ep.listener {
                Listener::Tcp(l) => l.accept().map(|(s, a)| (Conn::Tcp(s), a.to_string())),
                Listener::Unix(l, _) => l.accept().map(|(s, _)| {
                    // Refused peers are closed before they take a slot or a thread.
                    if ep.policy.admit(&s, &ep.label) {
                        (Conn::Unix(s), "unix".to_owned())
                    } else {
                        (Conn::Refused, String::new())
                    }
                }),
            };
            match accepted {
                Ok((Conn::Refused, _)) => {}
                Ok((conn, peer)) => {
                    slots.take(i);
                    spawn_worker(&engine, &slots, i, conn, ep.service, peer, limits);
                }
                Err(e) if e.kind() == io::ErrorKind::WouldBlock => {}
                Err(e) => {
                    // EMFILE and friends: back off briefly instead of spinning.
                    error!("accept on {} failed: {e}", ep.label);
                    std::thread::sleep(Duration::from_millis(100));
                }
            }
        }
    }
    info!("shutting down: no new connections, finishing in-flight requests");
    drop_unix_paths(&endpoints);
    let drain_until = deadline::now() + DRAIN;
    let mut active = slots.lock();
    while active.iter().sum::<usize>() > 0 && deadline::now() < drain_until {
        let (guard, _) = slots
            .freed
            .wait_timeout(active, Duration::from_millis(100))
            .unwrap_or_else(std::sync::PoisonError::into_inner);
        active = guard;
    }
    let left: usize = active.iter().sum();
    if left > 0 {
        warn!("{left} connection(s) still open after {DRAIN:?}; exiting anyway");
    }
    log::logger().flush();
    Ok(())
}

fn drop_unix_paths(endpoints: &[Endpoint]) {
    for ep in endpoints {
        if let Listener::Unix(_, Some(path)) = &ep.listener {
            let _ = std::fs::remove_file(path);
        }
    }
}

/// An accepted connection.
#[derive(Debug)]
pub enum Conn {
    /// TCP.
    Tcp(TcpStream),
    /// Unix.
    Unix(UnixStream),
    /// A Unix peer that the socket's policy refused: already closed.
    Refused,
}

fn spawn_worker(
    engine: &Arc<Engine>,
    slots: &Arc<Slots>,
    endpoint: usize,
    conn: Conn,
    service: Service,
    peer: String,
    limits: Limits,
) {
    let engine = Arc::clone(engine);
    let worker_slots = Arc::clone(slots);
    let name = format!("worker-{}-{peer}", service.name());
    let spawned = std::thread::Builder::new().name(name).spawn(move || {
        struct Release(Arc<Slots>, usize);
        impl Drop for Release {
            fn drop(&mut self) {
                self.0.release(self.1);
            }
        }
        let _release = Release(worker_slots, endpoint);
        serve_accepted(&engine, conn, service, &peer, limits);
    });
    if let Err(e) = spawned {
        error!("cannot start a worker thread: {e}");
        slots.release(endpoint);
    }
}

/// Serves one accepted (or inetd-inherited) connection to its end.
pub fn serve_accepted(engine: &Engine, conn: Conn, service: Service, peer: &str, limits: Limits) {
    debug!("{} connection from {peer}", service.name());
    let ctx = StreamCtx {
        engine,
        max_line: limits.max_line,
        shutdown: &sys::SHUTDOWN,
    };
    let result = match (service, conn) {
        (Service::Framing(f), Conn::Tcp(s)) => {
            let _ = s.set_nonblocking(false);
            // A client that sends but never reads must not pin a worker.
            let _ = s.set_write_timeout(Some(limits.write_timeout));
            match s.try_clone() {
                Ok(w) => serve_stream(&ctx, f, s, w, Some(limits.timeouts)).map(|_| ()),
                Err(e) => Err(e),
            }
        }
        (Service::Framing(f), Conn::Unix(s)) => {
            let _ = s.set_nonblocking(false);
            let _ = s.set_write_timeout(Some(limits.write_timeout));
            match s.try_clone() {
                Ok(w) => serve_stream(&ctx, f, s, w, Some(limits.timeouts)).map(|_| ()),
                Err(e) => Err(e),
            }
        }
        (Service::Pam, Conn::Unix(s)) => {
            let _ = s.set_nonblocking(false);
            // Idle pam clients are dropped on SIGTERM like the framings' (within a tick).
            pamsock::serve_pam_connection_until(
                engine,
                s,
                limits.timeouts,
                limits.write_timeout,
                &sys::SHUTDOWN,
            );
            Ok(())
        }
        (Service::Pam, Conn::Tcp(_)) => {
            error!("the pam protocol is served on Unix sockets only; closing {peer}");
            Ok(())
        }
        (_, Conn::Refused) => Ok(()),
    };
    if let Err(e) = result {
        debug!("{} connection from {peer} ended: {e}", service.name());
    }
}
