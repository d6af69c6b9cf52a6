//! The counters' three outputs: `xcauthd stats` (asks a running daemon over its pam socket),
//! the SIGUSR1 log line, and the Prometheus endpoint of `metrics-listen=`.
//!
//! The endpoint is one thread serving one connection at a time: a request must arrive
//! completely (at most [`MAX_REQUEST`] bytes) within [`DEADLINE`] and the answer be written
//! within another, so a stuck scraper delays the next by at most that and costs nothing else.

use std::io::{self, Read, Write};
use std::net::{SocketAddr, TcpListener, TcpStream};
use std::os::fd::AsFd;
use std::path::PathBuf;
use std::process::ExitCode;
use std::sync::atomic::Ordering;
use std::sync::Arc;
use std::time::Duration;

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

/// How long `xcauthd stats` waits for the daemon, and the metrics endpoint for a request.
pub const DEADLINE: Duration = Duration::from_secs(5);

/// Largest HTTP request head the metrics endpoint reads.
pub const MAX_REQUEST: usize = 8192;

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
            while !sys::SHUTDOWN.load(Ordering::SeqCst) {
                match sys::poll_readable(&[listener.as_fd()], Duration::from_millis(250)) {
                    Ok(ready) if ready.is_empty() => continue,
                    Ok(_) => {}
                    Err(e) => {
                        warn!("metrics endpoint {label}: {e}");
                        std::thread::sleep(Duration::from_millis(250));
                        continue;
                    }
                }
                match listener.accept() {
                    Ok((stream, peer)) => {
                        if let Err(e) = serve(&engine, stream) {
                            debug!("metrics request from {peer}: {e}");
                        }
                    }
                    Err(e) if e.kind() == io::ErrorKind::WouldBlock => {}
                    Err(e) => {
                        warn!("metrics endpoint {label}: accept failed: {e}");
                        std::thread::sleep(Duration::from_millis(100));
                    }
                }
            }
        })
        .map(|_| ())
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

/// Reads the request head before [`DEADLINE`], at most [`MAX_REQUEST`] bytes.
fn read_head(stream: &mut TcpStream) -> io::Result<Option<Vec<u8>>> {
    let until = deadline::now() + DEADLINE;
    let mut buf = Vec::with_capacity(512);
    let mut chunk = [0u8; 1024];
    loop {
        if let Some(end) = find_end(&buf) {
            buf.truncate(end);
            return Ok(Some(buf));
        }
        if buf.len() >= MAX_REQUEST {
            return Ok(None);
        }
        let left = deadline::left(until);
        if left.is_zero() {
            return Err(io::Error::new(io::ErrorKind::TimedOut, "request too slow"));
        }
        stream.set_read_timeout(Some(left))?;
        let room = (MAX_REQUEST - buf.len()).min(chunk.len());
        match stream.read(&mut chunk[..room]) {
            Ok(0) => return Err(io::Error::new(io::ErrorKind::UnexpectedEof, "closed")),
            Ok(n) => buf.extend_from_slice(&chunk[..n]),
            Err(e) if e.kind() == io::ErrorKind::Interrupted => {}
            Err(e) => return Err(e),
        }
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

fn serve(engine: &Engine, mut stream: TcpStream) -> io::Result<()> {
    stream.set_nonblocking(false)?;
    stream.set_write_timeout(Some(DEADLINE))?;
    let (status, body) = match read_head(&mut stream)? {
        None => ("431 Request Header Fields Too Large", String::new()),
        Some(head) => match parse_head(&head) {
            Asked::Metrics => match engine.stats() {
                Some(s) => ("200 OK", s.prometheus()),
                None => ("503 Service Unavailable", String::new()),
            },
            Asked::NotFound => ("404 Not Found", "try /metrics\n".to_owned()),
            Asked::BadMethod => ("405 Method Not Allowed", String::new()),
            Asked::Bad => ("400 Bad Request", String::new()),
        },
    };
    let head = format!(
        "HTTP/1.1 {status}\r\nContent-Type: text/plain; version=0.0.4; charset=utf-8\r\n\
         Content-Length: {}\r\nConnection: close\r\n\r\n",
        body.len()
    );
    stream.write_all(head.as_bytes())?;
    stream.write_all(body.as_bytes())?;
    stream.flush()
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
