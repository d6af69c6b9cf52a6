//! Listening sockets: bound by us (`listen=`), inherited from systemd
//! (`LISTEN_FDS`), or fd 0 from inetd; one accept loop for all of them and a
//! worker thread per connection, bounded by `max-connections`.

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
use xcauth_core::Engine;

use crate::serve::{self, Ctx, Timeouts};
use crate::sys::{self, FdKind};

/// What a listener speaks.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Service {
    /// One of the four wire framings.
    Framing(Framing),
    /// The PAM module's `socket=` protocol.
    Pam,
}

impl Service {
    /// Parses a protocol / FileDescriptorName.
    pub fn from_name(name: &str) -> Option<Self> {
        Some(match name {
            "generic" | "prosody" => Service::Framing(Framing::Generic),
            "ejabberd" => Service::Framing(Framing::Ejabberd),
            "saslauthd" => Service::Framing(Framing::Saslauthd),
            "postfix" => Service::Framing(Framing::Postfix),
            "pam" => Service::Pam,
            _ => return None,
        })
    }

    /// Log name.
    pub fn name(self) -> &'static str {
        match self {
            Service::Framing(f) => f.name(),
            Service::Pam => "pam",
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
}

impl Endpoint {
    /// Binds a TCP listener.
    pub fn bind_tcp(addr: std::net::SocketAddr, service: Service) -> io::Result<Self> {
        let l = TcpListener::bind(addr)?;
        Ok(Self {
            label: format!("tcp:{addr}"),
            listener: Listener::Tcp(l),
            service,
        })
    }

    /// Binds a Unix listener, replacing a stale socket file, with `mode`
    /// permissions and, if given, owned by `group` (a name or a number).
    pub fn bind_unix(
        path: &Path,
        service: Service,
        mode: u32,
        group: Option<&str>,
    ) -> io::Result<Self> {
        if let Ok(meta) = std::fs::symlink_metadata(path) {
            use std::os::unix::fs::FileTypeExt;
            if meta.file_type().is_socket() && UnixStream::connect(path).is_err() {
                std::fs::remove_file(path)?;
            }
        }
        let l = UnixListener::bind(path)?;
        std::fs::set_permissions(path, std::fs::Permissions::from_mode(mode))?;
        if let Some(group) = group {
            std::os::unix::fs::chown(path, None, Some(group_id(group)?))?;
        }
        Ok(Self {
            label: format!("unix:{}", path.display()),
            listener: Listener::Unix(l, Some(path.to_owned())),
            service,
        })
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
        })
    }
}

/// The numeric id of a group given by name (looked up in /etc/group) or number.
fn group_id(group: &str) -> io::Result<u32> {
    if let Ok(gid) = group.parse() {
        return Ok(gid);
    }
    let text = std::fs::read_to_string("/etc/group")?;
    text.lines()
        .filter_map(|line| {
            let mut f = line.split(':');
            let name = f.next()?;
            let gid = f.nth(1)?.parse().ok()?;
            (name == group).then_some(gid)
        })
        .next()
        .ok_or_else(|| io::Error::new(io::ErrorKind::NotFound, format!("no group named {group:?}")))
}

/// Connection accounting shared by the accept loop and the workers.
#[derive(Debug, Default)]
struct Slots {
    active: Mutex<usize>,
    freed: Condvar,
}

impl Slots {
    fn release(&self) {
        let mut n = self
            .active
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner);
        *n = n.saturating_sub(1);
        self.freed.notify_all();
    }
}

/// Limits applied to every connection.
#[derive(Debug, Clone, Copy)]
pub struct Limits {
    /// Concurrent connections; further clients wait in the listen backlog.
    pub max_connections: usize,
    /// Timeouts per connection.
    pub timeouts: Timeouts,
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
    let slots = Arc::new(Slots::default());
    let mut saturated_since: Option<Instant> = None;
    while !sys::SHUTDOWN.load(Ordering::SeqCst) {
        crate::logging::reopen_if_requested();
        log::logger().flush();
        // Wait for a free slot before accepting: excess clients wait in the backlog.
        {
            let mut n = slots
                .active
                .lock()
                .unwrap_or_else(std::sync::PoisonError::into_inner);
            if *n >= limits.max_connections {
                if saturated_since.is_none() {
                    warn!(
                        "max-connections ({}) reached: new clients wait in the listen backlog",
                        limits.max_connections
                    );
                    saturated_since = Some(Instant::now());
                }
                let (guard, _) = slots
                    .freed
                    .wait_timeout(n, Duration::from_millis(250))
                    .unwrap_or_else(std::sync::PoisonError::into_inner);
                n = guard;
                drop(n);
                continue;
            }
            if let Some(since) = saturated_since.take() {
                info!("connection slots free again after {:?}", since.elapsed());
            }
        }
        let fds: Vec<_> = endpoints
            .iter()
            .map(|ep| match &ep.listener {
                Listener::Tcp(l) => l.as_fd(),
                Listener::Unix(l, _) => l.as_fd(),
            })
            .collect();
        let ready = sys::poll_readable(&fds, Duration::from_millis(250))?;
        for i in ready {
            let ep = &endpoints[i];
            let accepted = match &ep.listener {
                Listener::Tcp(l) => l.accept().map(|(s, a)| (Conn::Tcp(s), a.to_string())),
                Listener::Unix(l, _) => l.accept().map(|(s, _)| (Conn::Unix(s), "unix".to_owned())),
            };
            match accepted {
                Ok((conn, peer)) => {
                    {
                        let mut n = slots
                            .active
                            .lock()
                            .unwrap_or_else(std::sync::PoisonError::into_inner);
                        *n += 1;
                    }
                    spawn_worker(&engine, &slots, conn, ep.service, peer, limits);
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
    let deadline = Instant::now() + DRAIN;
    let mut n = slots
        .active
        .lock()
        .unwrap_or_else(std::sync::PoisonError::into_inner);
    while *n > 0 && Instant::now() < deadline {
        let (guard, _) = slots
            .freed
            .wait_timeout(n, Duration::from_millis(100))
            .unwrap_or_else(std::sync::PoisonError::into_inner);
        n = guard;
    }
    if *n > 0 {
        warn!(
            "{} connection(s) still open after {:?}; exiting anyway",
            *n, DRAIN
        );
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
}

fn spawn_worker(
    engine: &Arc<Engine>,
    slots: &Arc<Slots>,
    conn: Conn,
    service: Service,
    peer: String,
    limits: Limits,
) {
    let engine = Arc::clone(engine);
    let worker_slots = Arc::clone(slots);
    let name = format!("worker-{}-{peer}", service.name());
    let spawned = std::thread::Builder::new().name(name).spawn(move || {
        struct Release(Arc<Slots>);
        impl Drop for Release {
            fn drop(&mut self) {
                self.0.release();
            }
        }
        let _release = Release(worker_slots);
        serve_conn(&engine, conn, service, &peer, limits);
    });
    if let Err(e) = spawned {
        error!("cannot start a worker thread: {e}");
        slots.release();
    }
}

/// Serves one accepted (or inetd-inherited) connection to its end.
pub fn serve_conn(engine: &Engine, conn: Conn, service: Service, peer: &str, limits: Limits) {
    debug!("{} connection from {peer}", service.name());
    let ctx = Ctx {
        engine,
        max_line: limits.max_line,
        shutdown: &sys::SHUTDOWN,
    };
    let result = match (service, conn) {
        (Service::Framing(f), Conn::Tcp(s)) => {
            let _ = s.set_nonblocking(false);
            // A client that sends but never reads must not pin a worker.
            let _ = s.set_write_timeout(Some(limits.timeouts.request));
            match s.try_clone() {
                Ok(w) => serve::serve(&ctx, f, s, w, Some(limits.timeouts)).map(|_| ()),
                Err(e) => Err(e),
            }
        }
        (Service::Framing(f), Conn::Unix(s)) => {
            let _ = s.set_nonblocking(false);
            let _ = s.set_write_timeout(Some(limits.timeouts.request));
            match s.try_clone() {
                Ok(w) => serve::serve(&ctx, f, s, w, Some(limits.timeouts)).map(|_| ()),
                Err(e) => Err(e),
            }
        }
        (Service::Pam, Conn::Unix(s)) => {
            let _ = s.set_nonblocking(false);
            crate::pam_listener::serve(engine, s, limits.timeouts);
            Ok(())
        }
        (Service::Pam, Conn::Tcp(_)) => {
            error!("the pam protocol is served on Unix sockets only; closing {peer}");
            Ok(())
        }
    };
    if let Err(e) = result {
        debug!("{} connection from {peer} ended: {e}", service.name());
    }
}
