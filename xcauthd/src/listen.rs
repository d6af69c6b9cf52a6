//! Listening sockets: bound by us (`listen=`), inherited from systemd
//! (`LISTEN_FDS`), or fd 0 from inetd; one accept loop for all of them and a
//! worker thread per connection. Each listener has its own `max-connections`
//! slots, so clients that hog one socket cannot starve the others, and a Unix
//! socket only serves the users and groups its [`PeerPolicy`] allows.
//!
//! When a listener's slots are all taken and a client waits, one connection is shut down and
//! the client takes its slot: the one that made no progress for longest
//! ([`Activity::stale_since`]: no reply to a valid request; bytes and malformed requests do not
//! count) if that is [`MIN_STALE`] at least, else the one that held its slot longest if that
//! is [`MAX_TENURE`] at least, so that no client keeps a slot by staying busy. One whose
//! request is being answered never is. On Unix sockets a peer uid other than root holds at
//! most `max-connections-per-user` connections of a listener: beyond, one of its own makes room
//! by the same rule, or the new one waits, unread, until one of theirs may be closed (at most
//! `request-timeout`; at most `max-connections` connections wait so, further ones are closed
//! at once, with one log line per episode: [`Refusals`]). A full listener none of whose
//! connections may be closed yet leaves new clients in its backlog.
//!
//! A connection is served in one of the four framings ([`crate::serve::serve_stream`]) or,
//! on a `listen=pam@unix:…` listener (or a systemd socket named `pam`), in the PAM module's
//! `socket=` protocol ([`xcauth_core::pamsock::serve_pam_connection`]), so the API secret
//! never has to be readable by the PAM host (e.g. www-data).

use std::collections::VecDeque;
use std::io;
use std::net::{Shutdown, TcpListener, TcpStream};
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
use xcauth_core::deadline::{self, Activity, ConnectionTimeouts};
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
        self.admit_peer(stream, label).is_some()
    }

    /// As [`PeerPolicy::admit`], with the allowed peer's credentials.
    pub fn admit_peer(&self, stream: &UnixStream, label: &str) -> Option<sys::PeerCred> {
        match sys::peer_cred(stream.as_fd()) {
            Ok(peer) if self.allows(&peer) => Some(peer),
            Ok(peer) => {
                warn!(
                    "{label}: refused a connection from uid {} gid {} (pid {}): not root, not \
                     in socket-allow-users and not in an allowed group",
                    peer.uid, peer.gid, peer.pid
                );
                None
            }
            Err(e) => {
                warn!("{label}: refused a connection whose peer cannot be identified: {e}");
                None
            }
        }
    }
}

impl Endpoint {
    /// Binds a TCP listener (port 0: any free port; see [`Endpoint::tcp_port`]).
    pub fn bind_tcp(addr: std::net::SocketAddr, service: Service) -> io::Result<Self> {
        let l = TcpListener::bind(addr)?;
        sys::set_backlog(l.as_fd(), sys::LISTEN_BACKLOG)?;
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
        sys::set_backlog(l.as_fd(), sys::LISTEN_BACKLOG)?;
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

/// A second handle on an accepted socket, to shut it down when its connection is closed to
/// free a slot (the serving thread then reads end of input and ends).
#[derive(Debug)]
enum Handle {
    Tcp(TcpStream),
    Unix(UnixStream),
}

impl Handle {
    fn shut(&self) {
        let _ = match self {
            Handle::Tcp(s) => s.shutdown(Shutdown::Both),
            Handle::Unix(s) => s.shutdown(Shutdown::Both),
        };
    }
}

/// How long after its last reply a connection keeps its slot against a waiting client on that
/// account: a client that sends its next request right after a reply is not cut between the
/// two (the request would be lost). Postfix's `tcp_table` keeps its connection for many
/// lookups; the PAM module opens one per PAM call, whose questions (the login, then the
/// `group=` check) follow each other at once.
const MIN_STALE: Duration = Duration::from_secs(1);

/// How long a connection holds its slot before a waiting client may take it however busy it
/// keeps itself (unless a request of it is being answered): a client that completes a cheap
/// request every half second never goes stale, and must not keep a slot for that.
const MAX_TENURE: Duration = Duration::from_secs(5);

/// Why a connection may be closed for a waiting client.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Closable {
    /// No progress (a reply to a valid request) for this long, at least [`MIN_STALE`].
    Stale(Duration),
    /// Its slot held for this long, at least [`MAX_TENURE`], progress or not.
    Tenure(Duration),
}

impl std::fmt::Display for Closable {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            Closable::Stale(d) => write!(f, "that made no progress for longest ({d:?})"),
            Closable::Tenure(d) => write!(
                f,
                "that held its slot longest ({d:?}; it kept making progress)"
            ),
        }
    }
}

/// One open connection, as the accept loop sees it.
#[derive(Debug)]
struct Open {
    id: u64,
    activity: Arc<Activity>,
    handle: Handle,
    /// The peer's uid (Unix sockets).
    uid: Option<u32>,
    /// When it took its slot.
    opened: Instant,
}

impl Open {
    /// Whether the connection may be closed for a waiting client at `now`, with its place in
    /// the order of choice (lowest first): the connections without progress for
    /// [`MIN_STALE`], the one without progress for longest first; then those that held their
    /// slot for [`MAX_TENURE`], the longest-held first. A connection being answered is never
    /// closable.
    fn closable(&self, now: Instant) -> Option<((u8, Instant), Closable)> {
        let stale = self.activity.stale_since()?;
        let idle = now.saturating_duration_since(stale);
        let held = now.saturating_duration_since(self.opened);
        if idle >= MIN_STALE {
            Some(((0, stale), Closable::Stale(idle)))
        } else if held >= MAX_TENURE {
            Some(((1, self.opened), Closable::Tenure(held)))
        } else {
            None
        }
    }
}

/// The open connections of each endpoint.
#[derive(Debug, Default)]
struct Table {
    next_id: u64,
    endpoints: Vec<Vec<Open>>,
}

/// Connection accounting shared by the accept loop and the workers: the open connections of
/// each endpoint, and the choice of one to close when an endpoint is full.
#[derive(Debug)]
struct Slots {
    table: Mutex<Table>,
    freed: Condvar,
}

impl Slots {
    fn new(endpoints: usize) -> Self {
        Self {
            table: Mutex::new(Table {
                next_id: 0,
                endpoints: (0..endpoints).map(|_| Vec::new()).collect(),
            }),
            freed: Condvar::new(),
        }
    }

    fn lock(&self) -> std::sync::MutexGuard<'_, Table> {
        self.table
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner)
    }

    fn count(&self, endpoint: usize) -> usize {
        self.lock().endpoints.get(endpoint).map_or(0, Vec::len)
    }

    /// True when endpoint `endpoint` has a connection that [`Slots::close_one`] could close at
    /// `now`.
    fn any_closable(&self, endpoint: usize, now: Instant) -> bool {
        self.lock()
            .endpoints
            .get(endpoint)
            .is_some_and(|v| v.iter().any(|o| o.closable(now).is_some()))
    }

    fn count_of(&self, endpoint: usize, uid: u32) -> usize {
        self.lock()
            .endpoints
            .get(endpoint)
            .map_or(0, |v| v.iter().filter(|o| o.uid == Some(uid)).count())
    }

    /// Records a new connection, taking its slot at `now`; its id, for [`Slots::release`].
    fn take(
        &self,
        endpoint: usize,
        activity: Arc<Activity>,
        handle: Handle,
        uid: Option<u32>,
        now: Instant,
    ) -> u64 {
        let mut t = self.lock();
        t.next_id += 1;
        let id = t.next_id;
        if let Some(v) = t.endpoints.get_mut(endpoint) {
            v.push(Open {
                id,
                activity,
                handle,
                uid,
                opened: now,
            });
        }
        id
    }

    fn release(&self, endpoint: usize, id: u64) {
        if let Some(v) = self.lock().endpoints.get_mut(endpoint) {
            v.retain(|o| o.id != id);
        }
        self.freed.notify_all();
    }

    /// Closes the connection of `endpoint` (of peer `uid` only, when given) that comes first in
    /// the order of [`Open::closable`] at `now`; a connection being answered is never chosen.
    /// Why it could be closed, or `None` when there was none to close. Its slot is free once
    /// its thread has ended (at once: it was waiting for input).
    fn close_one(&self, endpoint: usize, uid: Option<u32>, now: Instant) -> Option<Closable> {
        let t = self.lock();
        let open = t.endpoints.get(endpoint)?;
        let mut candidates: Vec<((u8, Instant), Closable, &Open)> = open
            .iter()
            .filter(|o| uid.is_none() || o.uid == uid)
            .filter_map(|o| o.closable(now).map(|(rank, why)| (rank, why, o)))
            .collect();
        candidates.sort_by_key(|(rank, ..)| *rank);
        // The state may change between the look and the take: the next one is tried then.
        for (_, why, o) in candidates {
            if o.activity.take() {
                o.handle.shut();
                return Some(why);
            }
        }
        None
    }
}

/// Connections refused because too many already wait for a slot: the first refusal of an
/// episode is logged, the others only counted and summed up in one line once no client waits
/// any more. So a local user who connects in a loop costs two log lines, not one per
/// connection.
#[derive(Debug, Default)]
struct Refusals {
    since: Option<Instant>,
    count: u64,
}

impl Refusals {
    fn refuse(&mut self, label: &str, peer: &str, why: &str, now: Instant) {
        if self.since.is_none() {
            warn!(
                "{label}: refused a connection from {peer}: {why}; further refusals are counted \
                 until no client waits"
            );
            self.since = Some(now);
        }
        self.count += 1;
    }

    fn end(&mut self, label: &str, now: Instant) {
        if let Some(since) = self.since.take() {
            if self.count > 1 {
                warn!(
                    "{label}: {} connections refused in {:?} while clients waited for a slot",
                    self.count,
                    now.saturating_duration_since(since)
                );
            }
            self.count = 0;
        }
    }
}

/// Limits applied to every connection.
#[derive(Debug, Clone, Copy)]
pub struct Limits {
    /// Concurrent connections per listener; when they are all open, a waiting client gets the
    /// slot of one that may be closed ([`Open::closable`]), or waits in the backlog.
    pub max_connections: usize,
    /// Connections of one non-root peer uid per Unix listener; 0: no bound.
    pub max_per_user: usize,
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
    // A full listener with no connection to close (all being answered) is polled again only
    // after a short pause: its clients wait in the backlog meanwhile.
    let mut retry_at: Vec<Option<Instant>> = vec![None; endpoints.len()];
    // Accepted connections of peers whose every connection is being answered (per-user bound)
    // or of a full listener whose connections all are: served when there is room.
    let mut waiting: Vec<VecDeque<Accepted>> =
        (0..endpoints.len()).map(|_| VecDeque::new()).collect();
    let mut refused: Vec<Refusals> = (0..endpoints.len()).map(|_| Refusals::default()).collect();
    while !sys::SHUTDOWN.load(Ordering::SeqCst) {
        crate::logging::reopen_if_requested();
        crate::stats::log_if_requested(&engine);
        log::logger().flush();
        for (i, ep) in endpoints.iter().enumerate() {
            if !waiting[i].is_empty() {
                place_waiting(&engine, &slots, i, ep, limits, &mut waiting[i]);
            }
            if waiting[i].is_empty() {
                refused[i].end(&ep.label, deadline::now());
            }
        }
        let now = deadline::now();
        let mut polled = Vec::with_capacity(endpoints.len());
        let mut any_full = waiting.iter().any(|w| !w.is_empty());
        for (i, ep) in endpoints.iter().enumerate() {
            let full = slots.count(i) >= limits.max_connections;
            match (full, saturated_since[i]) {
                (true, None) => {
                    warn!(
                        "{}: max-connections ({}) reached: a new client gets the slot of the \
                         stalest or longest-held connection, or waits in the listen backlog \
                         while none may be closed",
                        ep.label, limits.max_connections
                    );
                    saturated_since[i] = Some(now);
                }
                (false, Some(since)) => {
                    info!(
                        "{}: connection slots free again after {:?}",
                        ep.label,
                        now.saturating_duration_since(since)
                    );
                    saturated_since[i] = None;
                }
                _ => {}
            }
            if !full {
                retry_at[i] = None;
                polled.push(i);
                continue;
            }
            any_full = true;
            if retry_at[i].is_none_or(|t| now >= t) {
                // Polled to learn whether a client waits.
                polled.push(i);
            }
        }
        // Wake up soon when a saturated listener may have freed a slot meanwhile.
        let wait = if any_full {
            Duration::from_millis(50)
        } else {
            Duration::from_millis(250)
        };
        if polled.is_empty() {
            let t = slots.lock();
            let _ = slots
                .freed
                .wait_timeout(t, wait)
                .unwrap_or_else(std::sync::PoisonError::into_inner);
            continue;
        }
        let fds: Vec<_> = polled
            .iter()
            .map(|&i| match &endpoints[i].listener {
                Listener::Tcp(l) => l.as_fd(),
                Listener::Unix(l, _) => l.as_fd(),
            })
            .collect();
        let ready = sys::poll_readable(&fds, wait)?;
        for r in ready {
            let i = polled[r];
            let ep = &endpoints[i];
            let full = slots.count(i) >= limits.max_connections;
            if full && !slots.any_closable(i, deadline::now()) {
                // Every slot is being answered: the client waits in the backlog.
                retry_at[i] = Some(deadline::now() + Duration::from_millis(50));
                continue;
            }
            let Some(a) = accept_one(ep) else { continue };
            if let Some(a) = place(&engine, &slots, i, ep, limits, a) {
                // Dropping a refused connection closes it.
                match too_many_waiting(&waiting[i], limits) {
                    Some(why) => refused[i].refuse(&ep.label, &a.peer, &why, deadline::now()),
                    None => waiting[i].push_back(a),
                }
            }
        }
    }
    info!("shutting down: no new connections, finishing in-flight requests");
    drop_unix_paths(&endpoints);
    let drain_until = deadline::now() + DRAIN;
    let open = |t: &Table| t.endpoints.iter().map(Vec::len).sum::<usize>();
    let mut table = slots.lock();
    while open(&table) > 0 && deadline::now() < drain_until {
        let (guard, _) = slots
            .freed
            .wait_timeout(table, Duration::from_millis(100))
            .unwrap_or_else(std::sync::PoisonError::into_inner);
        table = guard;
    }
    let left = open(&table);
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
}

/// An accepted connection that is not served yet.
#[derive(Debug)]
struct Accepted {
    conn: Conn,
    handle: Handle,
    /// The peer's uid (Unix sockets).
    uid: Option<u32>,
    /// For logs and the thread name.
    peer: String,
    /// When it was accepted.
    at: Instant,
}

/// Accepts one connection of endpoint `ep`; `None` when there was none, or the peer was
/// refused by the socket's policy (closed at once, before it costs anyone a slot).
fn accept_one(ep: &Endpoint) -> Option<Accepted> {
    let accepted = match &ep.listener {
        Listener::Tcp(l) => l.accept().and_then(|(s, a)| {
            let handle = Handle::Tcp(s.try_clone()?);
            Ok(Some((Conn::Tcp(s), handle, None, a.to_string())))
        }),
        Listener::Unix(l, _) => l.accept().and_then(|(s, _)| {
            let Some(peer) = ep.policy.admit_peer(&s, &ep.label) else {
                return Ok(None);
            };
            let handle = Handle::Unix(s.try_clone()?);
            Ok(Some((
                Conn::Unix(s),
                handle,
                Some(peer.uid),
                format!("uid {}", peer.uid),
            )))
        }),
    };
    match accepted {
        Ok(Some((conn, handle, uid, peer))) => Some(Accepted {
            conn,
            handle,
            uid,
            peer,
            at: deadline::now(),
        }),
        Ok(None) => None,
        Err(e) if e.kind() == io::ErrorKind::WouldBlock => None,
        Err(e) => {
            // EMFILE and friends: back off briefly instead of spinning.
            error!("accept on {} failed: {e}", ep.label);
            std::thread::sleep(Duration::from_millis(100));
            None
        }
    }
}

/// Why a connection that found no room may not wait for a slot: the endpoint has
/// `max-connections` waiting already. (Not bounded per user: a burst of logins of one user,
/// Apache's `www-data`, may need more than its share of places in the queue.)
fn too_many_waiting(waiting: &VecDeque<Accepted>, limits: Limits) -> Option<String> {
    (waiting.len() >= limits.max_connections)
        .then(|| format!("{} connections already wait for a slot", waiting.len()))
}

/// Serves `a` on endpoint `i` if there is room: a peer at its per-user bound takes the slot of
/// one of its own connections, and on a full endpoint the new connection takes the slot of
/// another one ([`Slots::close_one`]). Gives `a` back when there is no room now (none of the
/// connections it could take the place of may be closed yet): it then waits, unread, like a
/// client in the backlog.
fn place(
    engine: &Arc<Engine>,
    slots: &Arc<Slots>,
    i: usize,
    ep: &Endpoint,
    limits: Limits,
    a: Accepted,
) -> Option<Accepted> {
    let mut room = slots.count(i) < limits.max_connections;
    if let Some(uid) = a.uid.filter(|&u| u != 0 && limits.max_per_user > 0) {
        if slots.count_of(i, uid) >= limits.max_per_user {
            let Some(why) = slots.close_one(i, Some(uid), deadline::now()) else {
                return Some(a);
            };
            info!(
                "{}: uid {uid} holds max-connections-per-user ({}): closed its connection \
                 {why} for its new one",
                ep.label, limits.max_per_user
            );
            room = true;
        }
    }
    if !room {
        let Some(why) = slots.close_one(i, None, deadline::now()) else {
            return Some(a);
        };
        info!(
            "{}: every slot taken and a client waiting: closed the connection {why}",
            ep.label
        );
    }
    let Accepted {
        conn,
        handle,
        uid,
        peer,
        ..
    } = a;
    let now = deadline::now();
    let activity = Arc::new(Activity::new(now));
    let id = slots.take(i, Arc::clone(&activity), handle, uid, now);
    let engine = Arc::clone(engine);
    let worker_slots = Arc::clone(slots);
    let service = ep.service;
    let name = format!("worker-{}-{peer}", service.name());
    let spawned = std::thread::Builder::new().name(name).spawn(move || {
        struct Release(Arc<Slots>, usize, u64);
        impl Drop for Release {
            fn drop(&mut self) {
                self.0.release(self.1, self.2);
            }
        }
        let _release = Release(worker_slots, i, id);
        serve_tracked(&engine, conn, service, &peer, limits, &activity);
    });
    if let Err(e) = spawned {
        error!("cannot start a worker thread: {e}");
        slots.release(i, id);
    }
    None
}

/// Serves the waiting connections of endpoint `i` that have room now, in the order they came;
/// one that waited longer than the request timeout is closed.
fn place_waiting(
    engine: &Arc<Engine>,
    slots: &Arc<Slots>,
    i: usize,
    ep: &Endpoint,
    limits: Limits,
    waiting: &mut VecDeque<Accepted>,
) {
    let now = deadline::now();
    for a in std::mem::take(waiting) {
        if now.saturating_duration_since(a.at) >= limits.timeouts.request {
            warn!(
                "{}: a connection from {} waited {:?} for a slot; closed",
                ep.label, a.peer, limits.timeouts.request
            );
            continue;
        }
        if let Some(a) = place(engine, slots, i, ep, limits, a) {
            waiting.push_back(a);
        }
    }
}

/// Serves one accepted (or inetd-inherited) connection to its end.
pub fn serve_accepted(engine: &Engine, conn: Conn, service: Service, peer: &str, limits: Limits) {
    let activity = Activity::new(deadline::now());
    serve_tracked(engine, conn, service, peer, limits, &activity);
}

/// As [`serve_accepted`], reporting the request cycle to `activity`.
fn serve_tracked(
    engine: &Engine,
    conn: Conn,
    service: Service,
    peer: &str,
    limits: Limits,
    activity: &Activity,
) {
    debug!("{} connection from {peer}", service.name());
    let ctx = StreamCtx {
        engine,
        max_line: limits.max_line,
        shutdown: &sys::SHUTDOWN,
        activity: Some(activity),
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
                activity,
            );
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

#[cfg(test)]
mod tests {
    use super::*;
    use std::io::Read;

    /// A connection in `slots` (endpoint 0), its slot taken at `opened`, whose far end is
    /// returned, to see it closed.
    fn open(
        slots: &Slots,
        activity: &Arc<Activity>,
        uid: Option<u32>,
        opened: Instant,
    ) -> UnixStream {
        let (near, far) = UnixStream::pair().unwrap();
        slots.take(0, Arc::clone(activity), Handle::Unix(near), uid, opened);
        far
    }

    fn shut(far: &mut UnixStream) -> bool {
        far.set_read_timeout(Some(Duration::from_millis(1)))
            .unwrap();
        matches!(far.read(&mut [0u8; 1]), Ok(0))
    }

    #[test]
    fn the_stalest_connection_goes_first_then_the_longest_held() {
        let t0 = deadline::now();
        let at = |s: u64| t0 + Duration::from_secs(s);
        let ms = |ms: u64| Duration::from_millis(ms);
        let now = at(20);
        let slots = Slots::new(1);
        // Answered at 5, waiting since.
        let keep = Arc::new(Activity::new(at(0)));
        keep.waiting(at(5));
        // Never answered since its start at 0 (whatever bytes it sent).
        let drip = Arc::new(Activity::new(at(0)));
        // Being answered: never closed.
        let busy = Arc::new(Activity::new(at(0)));
        assert!(busy.answering());
        // Another user's, idle since 0, for the per-user choice.
        let other = Arc::new(Activity::new(at(0)));
        // Another user's, answered half a second ago, every time: never stale, but its slot
        // is 20 s old.
        let fresh = Arc::new(Activity::new(at(0)));
        fresh.waiting(now - ms(500));
        // A second old and answered just now: neither stale nor old.
        let young = Arc::new(Activity::new(at(19)));
        young.waiting(now - ms(200));
        let mut far_keep = open(&slots, &keep, Some(1), at(0));
        let mut far_drip = open(&slots, &drip, Some(1), at(0));
        let mut far_busy = open(&slots, &busy, Some(1), at(0));
        let mut far_other = open(&slots, &other, Some(2), at(0));
        let mut far_fresh = open(&slots, &fresh, Some(2), at(0));
        let mut far_young = open(&slots, &young, Some(2), at(19));
        assert_eq!(slots.count(0), 6);
        assert_eq!(slots.count_of(0, 1), 3);

        // Nothing has been stale for a second, nor held for five, at 0.5 s.
        let early = at(0) + ms(500);
        assert!(!slots.any_closable(0, early));
        assert_eq!(slots.close_one(0, None, early), None);
        assert!(!shut(&mut far_other));

        assert_eq!(
            slots.close_one(0, Some(1), now),
            Some(Closable::Stale(Duration::from_secs(20)))
        );
        assert!(
            shut(&mut far_drip),
            "uid 1's stalest is the one never answered"
        );
        assert!(!shut(&mut far_keep) && !shut(&mut far_other));
        assert_eq!(
            slots.close_one(0, None, now),
            Some(Closable::Stale(Duration::from_secs(20)))
        );
        assert!(shut(&mut far_other), "then the stalest of all");
        assert_eq!(
            slots.close_one(0, None, now),
            Some(Closable::Stale(Duration::from_secs(15)))
        );
        assert!(shut(&mut far_keep));
        // No stale one left: the longest-held that is not being answered, busy as it keeps.
        assert_eq!(
            slots.close_one(0, None, now),
            Some(Closable::Tenure(Duration::from_secs(20)))
        );
        assert!(shut(&mut far_fresh));
        assert!(!slots.any_closable(0, now) && slots.close_one(0, None, now).is_none());
        assert!(!shut(&mut far_busy), "a connection being answered stays");
        assert!(
            !shut(&mut far_young),
            "a young connection that makes progress stays"
        );
        // Closed connections count until their thread releases them.
        assert_eq!(slots.count(0), 6);
        slots.release(0, 2);
        assert_eq!(slots.count(0), 5);
        // The one being answered can be closed once its reply is out (its slot is old).
        busy.waiting(now - ms(100));
        assert_eq!(
            slots.close_one(0, None, now),
            Some(Closable::Tenure(Duration::from_secs(20)))
        );
        assert!(shut(&mut far_busy));
        // The young one, answered every half second, once it held its slot for 5 s.
        young.waiting(at(24) - ms(500));
        assert!(!slots.any_closable(0, at(24) - ms(1)));
        assert_eq!(
            slots.close_one(0, None, at(24)),
            Some(Closable::Tenure(Duration::from_secs(5)))
        );
        assert!(shut(&mut far_young));
    }
}
