//! The counters' three outputs: `xcauthd stats` (asks a running daemon over its pam socket),
//! the SIGUSR1 log line, and the Prometheus endpoint of `metrics-listen=`.
//!
//! The endpoint is one thread that serves all its connections at once with `poll(2)`, none
//! waiting behind another: a connection gets [`CONNECTION_DEADLINE`] from accept to the last
//! byte of its answer (a request head of at most [`MAX_REQUEST`] bytes, one request per
//! connection), and at most [`MAX_CONNECTIONS`] are open. A new connection is read at once:
//! a request already there is answered before anything else is accepted, and one its peer
//! closed already takes no slot. Beyond the bound, a new one closes the oldest that has sent
//! nothing (else the oldest still reading, else the oldest). At most [`ACCEPTS_PER_TURN`] are
//! taken before the open ones are read again. So idle or slow clients cost a bounded number of
//! descriptors and never delay a scrape, and a flood of connections cannot push a scrape out
//! before its request is read.

use std::io::{self, Read, Write};
use std::net::{Shutdown, SocketAddr, TcpListener, TcpStream};
use std::os::fd::{AsFd, BorrowedFd};
use std::path::PathBuf;
use std::process::ExitCode;
use std::sync::atomic::Ordering;
use std::sync::Arc;
use std::time::{Duration, Instant};

use clap::{Arg, ArgMatches, Command};
use log::{debug, info, warn};
use xcauth_core::config::{Config, ListenAddr, Protocol};
use xcauth_core::deadline;
use xcauth_core::pamsock::{Connection, PamReply, PamRequest};
use xcauth_core::Engine;

use crate::exit::{self, fail};
use crate::sys;

/// The pam socket of the shipped `xcpam.socket`.
pub const DEFAULT_PAM_SOCKET: &str = "/run/xcauth/pam.sock";

/// How long `xcauthd stats` waits for the daemon.
pub const DEADLINE: Duration = Duration::from_secs(5);

/// Largest HTTP request head the metrics endpoint reads.
pub const MAX_REQUEST: usize = 8192;

/// The longest one connection to the metrics endpoint stays open, from accept to the last byte
/// of the answer (a scrape takes milliseconds).
pub const CONNECTION_DEADLINE: Duration = Duration::from_secs(2);

/// Connections the metrics endpoint holds open at most.
pub const MAX_CONNECTIONS: usize = 64;

/// New connections taken in one turn at most, before the open ones are read again.
pub const ACCEPTS_PER_TURN: usize = 16;

/// How often the endpoint's thread looks at the stop flag.
const TICK: Duration = Duration::from_millis(250);

/// `xcauthd stats`.
pub fn subcommand() -> Command {
    Command::new("stats")
        .about("Print the counters of a running xcauthd (asked over its pam socket)")
        .arg(Arg::new("socket").long("socket").value_name("PATH").help(
            "The daemon's pam socket [default: the first listen=pam@unix: address, else \
             /run/xcauth/pam.sock]",
        ))
}

/// The socket `xcauthd stats` asks.
pub fn socket_path(config: Option<&Config>, sub: &ArgMatches) -> PathBuf {
    if let Some(p) = sub.get_one::<String>("socket") {
        return PathBuf::from(p);
    }
    config
        .and_then(|c| {
            c.listen.iter().find_map(|l| match (&l.protocol, &l.addr) {
                (Protocol::Pam, ListenAddr::Unix(path)) => Some(path.clone()),
                _ => None,
            })
        })
        .unwrap_or_else(|| PathBuf::from(DEFAULT_PAM_SOCKET))
}

/// Asks the daemon at `path` and prints one `key value` line per counter.
#[allow(clippy::print_stdout)] // the command's output
pub fn run(path: &std::path::Path) -> ExitCode {
    let reply = Connection::open(path, DEADLINE).and_then(|mut c| c.ask(&PamRequest::Stats));
    match reply {
        Ok(PamReply::Stats(pairs)) => {
            let width = pairs.iter().map(|(k, _)| k.len()).max().unwrap_or(0);
            let mut out = String::new();
            for (key, value) in pairs {
                out.push_str(&format!("{key:<width$} {value}\n"));
            }
            let mut stdout = io::stdout().lock();
            match stdout
                .write_all(out.as_bytes())
                .and_then(|()| stdout.flush())
            {
                Ok(()) => ExitCode::SUCCESS,
                Err(_) => ExitCode::from(exit::FAILURE),
            }
        }
        Ok(PamReply::Unavailable(why)) => fail(exit::FAILURE, &why),
        Ok(_) => fail(exit::FAILURE, "unexpected reply to the stats request"),
        Err(e) => fail(
            exit::FAILURE,
            &format!("{e} (is xcauthd running with a pam socket?)"),
        ),
    }
}

/// Logs the counters in one line if SIGUSR1 arrived since the last call.
pub fn log_if_requested(engine: &Engine) {
    if !sys::DUMP_STATS.swap(false, Ordering::SeqCst) {
        return;
    }
    match engine.stats() {
        Some(snapshot) => info!("{}", snapshot.log_line()),
        None => info!("stats: this process keeps no counters"),
    }
    log::logger().flush();
}

/// Binds the metrics endpoint; the caller reports a failure as a start-up error.
pub fn bind(addr: SocketAddr) -> io::Result<TcpListener> {
    let listener = TcpListener::bind(addr)?;
    sys::set_backlog(listener.as_fd(), sys::LISTEN_BACKLOG)?;
    listener.set_nonblocking(true)?;
    Ok(listener)
}

/// Serves `GET /metrics` on `listener` in its own thread until SIGTERM.
pub fn spawn(listener: TcpListener, engine: Arc<Engine>) -> io::Result<()> {
    let label = listener
        .local_addr()
        .map_or_else(|_| "metrics".to_owned(), |a| a.to_string());
    info!("metrics on http://{label}/metrics");
    std::thread::Builder::new()
        .name("metrics".into())
        .spawn(move || {
            let mut endpoint = Endpoint {
                listener,
                label,
                clients: Vec::new(),
            };
            while !sys::SHUTDOWN.load(Ordering::SeqCst) {
                endpoint.turn(&engine);
            }
        })
        .map(|_| ())
}

/// One connection of the metrics endpoint.
#[derive(Debug)]
struct Client {
    stream: TcpStream,
    peer: SocketAddr,
    until: Instant,
    state: State,
}

#[derive(Debug)]
enum State {
    /// Reading the request head.
    Reading(Vec<u8>),
    /// Writing the answer; `sent` bytes of it are out.
    Writing { out: Vec<u8>, sent: usize },
}

/// The listening socket and the open connections.
#[derive(Debug)]
struct Endpoint {
    listener: TcpListener,
    label: String,
    clients: Vec<Client>,
}

impl Endpoint {
    /// Waits (at most a tick) for something to do and does it.
    fn turn(&mut self, engine: &Engine) {
        let now = deadline::now();
        self.clients.retain(|c| {
            let alive = now < c.until;
            if !alive {
                debug!(
                    "metrics request from {}: not done within {CONNECTION_DEADLINE:?}; closed",
                    c.peer
                );
            }
            alive
        });
        let wait = self
            .clients
            .iter()
            .map(|c| c.until.saturating_duration_since(now))
            .min()
            .unwrap_or(TICK)
            .min(TICK);
        let ready = {
            let mut fds: Vec<(BorrowedFd<'_>, bool)> = vec![(self.listener.as_fd(), false)];
            fds.extend(
                self.clients
                    .iter()
                    .map(|c| (c.stream.as_fd(), matches!(c.state, State::Writing { .. }))),
            );
            match sys::poll_ready(&fds, wait) {
                Ok(ready) => ready,
                Err(e) => {
                    warn!("metrics endpoint {}: {e}", self.label);
                    std::thread::sleep(TICK);
                    return;
                }
            }
        };
        // Connections first (their indexes are the poll's minus one), from the last, so that
        // removing one keeps the others' places; new connections after.
        for &i in ready.iter().rev() {
            let Some(at) = i.checked_sub(1) else { continue };
            if !step(engine, &mut self.clients[at]) {
                self.clients.swap_remove(at);
            }
        }
        if ready.first() == Some(&0) {
            self.accept(engine);
        }
    }

    /// Takes up to [`ACCEPTS_PER_TURN`] waiting connections, each read at once (and answered,
    /// when its request is there); beyond [`MAX_CONNECTIONS`], each new one that still waits
    /// for its request closes another ([`Endpoint::evict`]).
    fn accept(&mut self, engine: &Engine) {
        for _ in 0..ACCEPTS_PER_TURN {
            match self.listener.accept() {
                Ok((stream, peer)) => {
                    if let Err(e) = stream.set_nonblocking(true) {
                        debug!("metrics request from {peer}: {e}");
                        continue;
                    }
                    let mut client = Client {
                        stream,
                        peer,
                        until: deadline::now() + CONNECTION_DEADLINE,
                        state: State::Reading(Vec::with_capacity(256)),
                    };
                    // Answered, or closed by its peer, already: it takes no slot.
                    if !step(engine, &mut client) {
                        continue;
                    }
                    if self.clients.len() >= MAX_CONNECTIONS {
                        self.evict();
                    }
                    self.clients.push(client);
                }
                Err(e) if e.kind() == io::ErrorKind::WouldBlock => return,
                Err(e) if e.kind() == io::ErrorKind::Interrupted => {}
                Err(e) => {
                    // EMFILE and friends: back off instead of spinning on a readable listener.
                    warn!("metrics endpoint {}: accept failed: {e}", self.label);
                    std::thread::sleep(Duration::from_millis(100));
                    return;
                }
            }
        }
    }

    /// Closes one connection to make room: the oldest that has sent nothing, else the oldest
    /// still reading its request, else the oldest. (Every one was read at least once, at
    /// accept.)
    fn evict(&mut self) {
        let rank = |c: &Client| match &c.state {
            State::Reading(buf) if buf.is_empty() => 0,
            State::Reading(_) => 1,
            State::Writing { .. } => 2,
        };
        let Some(i) = self
            .clients
            .iter()
            .enumerate()
            .min_by_key(|(_, c)| (rank(c), c.until))
            .map(|(i, _)| i)
        else {
            return;
        };
        let gone = self.clients.swap_remove(i);
        debug!(
            "metrics endpoint {}: {MAX_CONNECTIONS} connections open; closed one (from {})",
            self.label, gone.peer
        );
    }
}

/// Moves one connection on as far as it goes without waiting; false when it is done with
/// (answered, closed by the client, or failed).
fn step(engine: &Engine, c: &mut Client) -> bool {
    if let State::Reading(buf) = &mut c.state {
        let mut chunk = [0u8; 1024];
        let head = loop {
            if let Some(end) = find_end(buf) {
                buf.truncate(end);
                break Some(std::mem::take(buf));
            }
            if buf.len() >= MAX_REQUEST {
                break None;
            }
            let room = (MAX_REQUEST - buf.len()).min(chunk.len());
            match c.stream.read(&mut chunk[..room]) {
                Ok(0) => return false,
                Ok(n) => buf.extend_from_slice(&chunk[..n]),
                Err(e) if e.kind() == io::ErrorKind::WouldBlock => return true,
                Err(e) if e.kind() == io::ErrorKind::Interrupted => {}
                Err(e) => {
                    debug!("metrics request from {}: {e}", c.peer);
                    return false;
                }
            }
        };
        c.state = State::Writing {
            out: answer(engine, head.as_deref()),
            sent: 0,
        };
    }
    let State::Writing { out, sent } = &mut c.state else {
        return true;
    };
    while *sent < out.len() {
        match c.stream.write(&out[*sent..]) {
            Ok(0) => return false,
            Ok(n) => *sent += n,
            Err(e) if e.kind() == io::ErrorKind::WouldBlock => return true,
            Err(e) if e.kind() == io::ErrorKind::Interrupted => {}
            Err(e) => {
                debug!("metrics request from {}: {e}", c.peer);
                return false;
            }
        }
    }
    let _ = c.stream.shutdown(Shutdown::Write);
    false
}

/// What the request head asked for.
#[derive(Debug, PartialEq, Eq)]
enum Asked {
    Metrics,
    NotFound,
    BadMethod,
    Bad,
}

/// Parses a request head (everything before the empty line).
fn parse_head(head: &[u8]) -> Asked {
    let Some(line) = head.split(|&b| b == b'\n').next() else {
        return Asked::Bad;
    };
    let line = line.strip_suffix(b"\r").unwrap_or(line);
    let mut parts = line.split(|&b| b == b' ');
    let (Some(method), Some(target), Some(version), None) =
        (parts.next(), parts.next(), parts.next(), parts.next())
    else {
        return Asked::Bad;
    };
    if !version.starts_with(b"HTTP/1.") {
        return Asked::Bad;
    }
    if method != b"GET" {
        return Asked::BadMethod;
    }
    let path = target.split(|&b| b == b'?').next().unwrap_or(target);
    if path == b"/metrics" {
        Asked::Metrics
    } else {
        Asked::NotFound
    }
}

fn find_end(buf: &[u8]) -> Option<usize> {
    let crlf = buf.windows(4).position(|w| w == b"\r\n\r\n");
    let lf = buf.windows(2).position(|w| w == b"\n\n");
    match (crlf, lf) {
        (Some(a), Some(b)) => Some(a.min(b)),
        (a, b) => a.or(b),
    }
}

/// The whole answer to a request head (`None`: larger than [`MAX_REQUEST`]).
fn answer(engine: &Engine, head: Option<&[u8]>) -> Vec<u8> {
    let (status, body) = match head {
        None => ("431 Request Header Fields Too Large", String::new()),
        Some(head) => match parse_head(head) {
            Asked::Metrics => match engine.stats() {
                Some(s) => ("200 OK", s.prometheus()),
                None => ("503 Service Unavailable", String::new()),
            },
            Asked::NotFound => ("404 Not Found", "try /metrics\n".to_owned()),
            Asked::BadMethod => ("405 Method Not Allowed", String::new()),
            Asked::Bad => ("400 Bad Request", String::new()),
        },
    };
    let mut out = format!(
        "HTTP/1.1 {status}\r\nContent-Type: text/plain; version=0.0.4; charset=utf-8\r\n\
         Content-Length: {}\r\nConnection: close\r\n\r\n",
        body.len()
    )
    .into_bytes();
    out.extend_from_slice(body.as_bytes());
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn request_heads() {
        assert_eq!(
            parse_head(b"GET /metrics HTTP/1.1\r\nHost: x"),
            Asked::Metrics
        );
        assert_eq!(parse_head(b"GET /metrics?x=1 HTTP/1.0"), Asked::Metrics);
        assert_eq!(parse_head(b"GET / HTTP/1.1"), Asked::NotFound);
        assert_eq!(parse_head(b"POST /metrics HTTP/1.1"), Asked::BadMethod);
        assert_eq!(parse_head(b"GET /metrics"), Asked::Bad);
        assert_eq!(parse_head(b"GET /metrics SPDY/3"), Asked::Bad);
        assert_eq!(parse_head(b""), Asked::Bad);
        assert_eq!(find_end(b"GET / HTTP/1.1\r\n\r\nrest"), Some(14));
        assert_eq!(find_end(b"GET / HTTP/1.1\n\n"), Some(14));
        assert_eq!(find_end(b"GET / HTTP/1.1\r\n"), None);
    }
}
