//! A test double of Nextcloud's JSXC external API (`/index.php/apps/ojsxc/ajax/externalApi.php`),
//! reproducing the Nextcloud side of `docs/jsxc-api.md` §4 (see also `docs/testing.md` §2): signature middleware, `auth` / `isuser` /
//! `sharedroster`, PHP JSON escaping and `empty()` semantics, plus switchable faults, request
//! counters (all requests, and apart from them those that passed or failed the signature check)
//! and a gate that holds requests until the test lets them through. A real HTTP/1.1 server on `127.0.0.1` built on `std::net`, one thread per
//! connection, keep-alive supported; HTTPS (rustls) with [`Options::tls`].
//!
//! ```no_run
//! use xcauth_tests::double::{BackendDouble, Fault, User};
//! let backend = BackendDouble::start("testsecret");
//! backend.add_user(User::new("alice", "pw").display_name("Alice Liddell"));
//! backend.add_group("team", "The Team", &["alice"]);
//! backend.set_fault(Fault::Garbage);
//! assert_eq!(backend.count("auth"), 0);
//! ```

// Test support code: a poisoned lock or a failed bind in a test double is a test failure, and
// panicking there is the clearest report.
#![allow(clippy::unwrap_used, clippy::expect_used)]

mod api;
pub mod client;
mod directory;
mod http;
pub mod php;
pub mod sig;

use std::collections::HashMap;
use std::io::{self, Write};
use std::net::{Shutdown, SocketAddr, TcpListener, TcpStream};
use std::sync::atomic::{AtomicBool, AtomicU64, AtomicUsize, Ordering};
use std::sync::{Arc, Condvar, Mutex, MutexGuard, PoisonError};
use std::thread::{self, JoinHandle};
use std::time::{Duration, Instant};

pub use directory::User;
pub use sig::{sign, sign_with, PhpVersion};

use http::{Conn, ReadError, Request, Response};

/// The endpoint path (the URL of [`BackendDouble::url`]).
pub const API_PATH: &str = "/index.php/apps/ojsxc/ajax/externalApi.php";
/// The same endpoint with Nextcloud's pretty URLs (also served).
pub const API_PATH_PRETTY: &str = "/apps/ojsxc/ajax/externalApi.php";
/// The control endpoint (only with [`Options::control`]).
pub const CONTROL_PATH: &str = "/__control";

/// A fault applied to every request (except control requests) before normal processing.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub enum Fault {
    /// Normal behaviour.
    #[default]
    None,
    /// Wait this long, then answer normally.
    Delay(Duration),
    /// This status with this HTML body.
    Status(u16, String),
    /// 200 with a body that is not JSON.
    Garbage,
    /// 200 `application/json` with exactly this body (e.g. `{"result":"error"}`, `[]`).
    Json200(String),
    /// Read the request, then close the connection without any response.
    Drop,
    /// Behave as if the server had another secret (`Signature does not match.`).
    WrongSignature,
    /// 302 with this `Location`.
    Redirect(String),
    /// Send the status line and headers of a normal answer (with its `Content-Length`), then
    /// close before the body.
    CloseAfterHeaders,
    /// 200 `application/json`: `{"result":"success"}` padded with spaces to this many bytes
    /// (a cut prefix of it is valid JSON). With `Content-Length` when `with_length`, else
    /// delimited by closing the connection.
    HugeBody {
        /// Total body size in bytes.
        len: usize,
        /// Send `Content-Length` (else: no length, close after the body).
        with_length: bool,
    },
    /// On a keep-alive connection that already served a request: read the request, then
    /// close without answering (the server's idle close crossing the client's request).
    /// A new connection is answered normally and does not use up the fault.
    DropIfReused,
    /// On a keep-alive connection that already served a request: close as soon as the next
    /// request starts arriving, without reading it (the peer sees a reset). Not recorded as a
    /// request; counted in [`BackendDouble::reuse_drops`]. New connections are answered normally.
    ResetIfReused,
}

impl Fault {
    fn reuse_only(&self) -> bool {
        matches!(self, Fault::DropIfReused | Fault::ResetIfReused)
    }
}

/// A certificate chain and its private key (PEM files) for serving HTTPS.
#[derive(Debug, Clone)]
pub struct TlsFiles {
    /// Leaf certificate first, then intermediates.
    pub cert_chain: std::path::PathBuf,
    /// The leaf's private key (PKCS#8, SEC1 or PKCS#1).
    pub key: std::path::PathBuf,
}

/// Start-up options for [`BackendDouble::start_with`].
#[derive(Debug, Clone)]
pub struct Options {
    /// Port on 127.0.0.1; 0 = ephemeral.
    pub port: u16,
    /// Serve `POST /__control` (unsigned, loopback only) to switch faults etc.
    pub control: bool,
    /// How long an idle keep-alive connection stays open.
    pub idle_timeout: Duration,
    /// Serve HTTPS with this certificate (`None`: plain HTTP).
    pub tls: Option<TlsFiles>,
}

impl Default for Options {
    fn default() -> Options {
        Options {
            port: 0,
            control: false,
            idle_timeout: Duration::from_secs(30),
            tls: None,
        }
    }
}

fn tls_config(files: &TlsFiles) -> io::Result<Arc<rustls::ServerConfig>> {
    use rustls::pki_types::pem::PemObject;
    use rustls::pki_types::{CertificateDer, PrivateKeyDer};
    let bad = |e: &dyn std::fmt::Display| io::Error::new(io::ErrorKind::InvalidData, e.to_string());
    let certs = CertificateDer::pem_file_iter(&files.cert_chain)
        .map_err(|e| bad(&e))?
        .collect::<Result<Vec<_>, _>>()
        .map_err(|e| bad(&e))?;
    let key = PrivateKeyDer::from_pem_file(&files.key).map_err(|e| bad(&e))?;
    let provider = Arc::new(rustls::crypto::ring::default_provider());
    let config = rustls::ServerConfig::builder_with_provider(provider)
        .with_safe_default_protocol_versions()
        .map_err(|e| bad(&e))?
        .with_no_client_auth()
        .with_single_cert(certs, key)
        .map_err(|e| bad(&e))?;
    Ok(Arc::new(config))
}

/// A request as the double received it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RecordedRequest {
    /// `POST`, `GET`, …
    pub method: String,
    /// The path, without the query string.
    pub path: String,
    /// The query string without `?` (`""` when none).
    pub query: String,
    /// Headers in arrival order, names as sent (values lossily decoded as UTF-8).
    pub headers: Vec<(String, String)>,
    /// The raw body bytes.
    pub body: Vec<u8>,
    /// The TCP connection (numbered from 1 in accept order) that carried the request.
    pub connection: usize,
}

impl RecordedRequest {
    /// First value of a header (case-insensitive name).
    pub fn header(&self, name: &str) -> Option<&str> {
        self.headers
            .iter()
            .find(|(n, _)| n.eq_ignore_ascii_case(name))
            .map(|(_, v)| v.as_str())
    }

    /// The body as (lossy) text.
    pub fn body_str(&self) -> String {
        String::from_utf8_lossy(&self.body).into_owned()
    }
}

#[derive(Debug, Default)]
struct FaultState {
    fault: Fault,
    /// `Some(n)`: the fault applies to the next n requests, then reverts to `Fault::None`.
    remaining: Option<usize>,
}

#[derive(Debug, Default)]
struct Counters {
    ops: HashMap<String, usize>,
    /// Per operation: requests that passed the signature check (and so were answered by the
    /// API, with `noauth` for a wrong password).
    verified: HashMap<String, usize>,
    /// Requests the signature check refused (missing, unsupported or wrong signature, no
    /// secret).
    bad_signatures: usize,
    total: usize,
    requests: Vec<RecordedRequest>,
}

/// The gate of [`BackendDouble::hold_until`].
#[derive(Debug, Default)]
struct Gate {
    /// Hold requests until this many wait at once (`None`: let everything through).
    until: Option<usize>,
    /// Requests waiting at the gate now.
    waiting: usize,
    /// Counts the openings: a request waits until the gate opened after it arrived.
    opened: u64,
}

/// Requests kept for [`BackendDouble::requests`] (oldest dropped first).
const MAX_RECORDED: usize = 1000;

#[derive(Debug)]
struct Shared {
    secret: Mutex<String>,
    php: Mutex<PhpVersion>,
    dir: Mutex<directory::Directory>,
    fault: Mutex<FaultState>,
    counters: Mutex<Counters>,
    gate: Mutex<Gate>,
    gate_changed: Condvar,
    connections: AtomicUsize,
    stop: AtomicBool,
    control: bool,
    idle_timeout: Duration,
    /// Close keep-alive connections idle for this long (runtime switch; `None`: idle_timeout).
    keepalive: Mutex<Option<Duration>>,
    reuse_drops: AtomicUsize,
    /// `Some(skew)`: every API answer carries a `Date` header this many seconds off the real
    /// time (as Apache sends one); `None`: no `Date` header.
    date_skew: Mutex<Option<i64>>,
    tls: Mutex<Option<Arc<rustls::ServerConfig>>>,
    next_conn: AtomicU64,
    streams: Mutex<HashMap<u64, TcpStream>>,
    handles: Mutex<Vec<JoinHandle<()>>>,
}

fn lock<T>(m: &Mutex<T>) -> MutexGuard<'_, T> {
    m.lock().unwrap_or_else(PoisonError::into_inner)
}

/// The running double. Stops its threads on drop.
#[derive(Debug)]
pub struct BackendDouble {
    addr: SocketAddr,
    shared: Arc<Shared>,
    acceptor: Option<JoinHandle<()>>,
}

impl BackendDouble {
    /// Starts on an ephemeral port with the API secret `secret` (`""` = not configured).
    ///
    /// # Panics
    /// When 127.0.0.1 cannot be bound.
    pub fn start(secret: &str) -> BackendDouble {
        BackendDouble::start_with(secret, Options::default()).expect("bind the backend double")
    }

    /// Starts with explicit options.
    ///
    /// # Errors
    /// When the port cannot be bound.
    pub fn start_with(secret: &str, options: Options) -> io::Result<BackendDouble> {
        let tls = options.tls.as_ref().map(tls_config).transpose()?;
        let listener = TcpListener::bind(("127.0.0.1", options.port))?;
        let addr = listener.local_addr()?;
        let shared = Arc::new(Shared {
            secret: Mutex::new(secret.to_owned()),
            php: Mutex::new(PhpVersion::default()),
            dir: Mutex::new(directory::Directory::default()),
            fault: Mutex::new(FaultState::default()),
            counters: Mutex::new(Counters::default()),
            gate: Mutex::new(Gate::default()),
            gate_changed: Condvar::new(),
            connections: AtomicUsize::new(0),
            stop: AtomicBool::new(false),
            control: options.control,
            idle_timeout: options.idle_timeout,
            keepalive: Mutex::new(None),
            reuse_drops: AtomicUsize::new(0),
            date_skew: Mutex::new(None),
            tls: Mutex::new(tls),
            next_conn: AtomicU64::new(1),
            streams: Mutex::new(HashMap::new()),
            handles: Mutex::new(Vec::new()),
        });
        let acceptor_shared = Arc::clone(&shared);
        let acceptor = thread::Builder::new()
            .name("jsxc-double-accept".to_owned())
            .spawn(move || accept_loop(&listener, &acceptor_shared))?;
        Ok(BackendDouble {
            addr,
            shared,
            acceptor: Some(acceptor),
        })
    }

    /// `http://127.0.0.1:PORT/index.php/apps/ojsxc/ajax/externalApi.php`
    pub fn url(&self) -> String {
        format!("{}{API_PATH}", self.base_url())
    }

    /// `http://127.0.0.1:PORT` (`https://` when serving TLS)
    pub fn base_url(&self) -> String {
        let scheme = if lock(&self.shared.tls).is_some() {
            "https"
        } else {
            "http"
        };
        format!("{scheme}://{}", self.addr)
    }

    /// Closes keep-alive connections once they have been idle for `after` (like Apache's
    /// `KeepAliveTimeout`); `None` restores the start-up idle timeout.
    pub fn set_keepalive_timeout(&self, after: Option<Duration>) {
        *lock(&self.shared.keepalive) = after;
    }

    /// Serves new connections with this certificate from now on (the double must have been
    /// started with [`Options::tls`], so that its URL is `https://`).
    ///
    /// # Errors
    /// When the files cannot be read or do not match.
    pub fn set_tls_identity(&self, files: &TlsFiles) -> io::Result<()> {
        let config = tls_config(files)?;
        *lock(&self.shared.tls) = Some(config);
        Ok(())
    }

    /// Connections closed by [`Fault::ResetIfReused`].
    pub fn reuse_drops(&self) -> usize {
        self.shared.reuse_drops.load(Ordering::SeqCst)
    }

    /// The listening address.
    pub fn addr(&self) -> SocketAddr {
        self.addr
    }

    /// The listening port.
    pub fn port(&self) -> u16 {
        self.addr.port()
    }

    /// Replaces the API secret (`""` or `"0"` → `Missing secret.`).
    pub fn set_secret(&self, secret: &str) {
        *lock(&self.shared.secret) = secret.to_owned();
    }

    /// Imitates PHP 7 or PHP 8 for checksum algorithms in the signature header.
    pub fn set_php_version(&self, php: PhpVersion) {
        *lock(&self.shared.php) = php;
    }

    /// Adds an account, replacing one with the same UID (case-insensitively).
    pub fn add_user(&self, user: User) {
        lock(&self.shared.dir).add_user(user);
    }

    /// Removes an account; `false` when there was none.
    pub fn remove_user(&self, uid: &str) -> bool {
        lock(&self.shared.dir).remove_user(uid)
    }

    /// Changes an account's password; `false` when there is no such account.
    pub fn set_password(&self, uid: &str, password: &str) -> bool {
        match lock(&self.shared.dir).get_mut(uid) {
            Some(u) => {
                password.clone_into(&mut u.password);
                true
            }
            None => false,
        }
    }

    /// Enables or disables an account; `false` when there is no such account.
    pub fn set_disabled(&self, uid: &str, disabled: bool) -> bool {
        match lock(&self.shared.dir).get_mut(uid) {
            Some(u) => {
                u.disabled = disabled;
                true
            }
            None => false,
        }
    }

    /// Adds (or replaces, same GID) a group. A user's groups are listed in the order the groups
    /// were added; members in UID order.
    pub fn add_group(&self, gid: &str, display_name: &str, members: &[&str]) {
        lock(&self.shared.dir).add_group(gid, display_name, members);
    }

    /// Removes a group; `false` when there was none.
    pub fn remove_group(&self, gid: &str) -> bool {
        lock(&self.shared.dir).remove_group(gid)
    }

    /// Sets a fault for all following requests.
    pub fn set_fault(&self, fault: Fault) {
        *lock(&self.shared.fault) = FaultState {
            fault,
            remaining: None,
        };
    }

    /// Sends a `Date` header with every API answer, `skew_secs` off the real time (a server
    /// whose clock is wrong); `None` sends none (the default).
    pub fn set_date_skew(&self, skew_secs: Option<i64>) {
        *lock(&self.shared.date_skew) = skew_secs;
    }

    /// Sets a fault for the next `times` requests only, then back to [`Fault::None`].
    pub fn set_fault_times(&self, fault: Fault, times: usize) {
        *lock(&self.shared.fault) = FaultState {
            fault,
            remaining: Some(times),
        };
    }

    /// The current fault.
    pub fn fault(&self) -> Fault {
        lock(&self.shared.fault).fault.clone()
    }

    /// Requests seen with `operation=op` (after merging query and body, whatever the outcome).
    pub fn count(&self, op: &str) -> usize {
        lock(&self.shared.counters)
            .ops
            .get(op)
            .copied()
            .unwrap_or(0)
    }

    /// Requests with `operation=op` that passed the signature check: the API itself answered
    /// them (for `auth`: `success`, `noauth` or the disabled-user 401). Unlike [`count`], this
    /// tells a refusal by the API from a refused signature.
    ///
    /// [`count`]: BackendDouble::count
    pub fn verified(&self, op: &str) -> usize {
        lock(&self.shared.counters)
            .verified
            .get(op)
            .copied()
            .unwrap_or(0)
    }

    /// Requests the signature check refused (any operation).
    pub fn bad_signatures(&self) -> usize {
        lock(&self.shared.counters).bad_signatures
    }

    /// Holds the following API requests (after they were read and recorded, before any fault
    /// or answer) until `n` of them wait at once; then all of them go on, and later requests
    /// are not held. `usize::MAX` holds every request until [`release`].
    ///
    /// [`release`]: BackendDouble::release
    pub fn hold_until(&self, n: usize) {
        lock(&self.shared.gate).until = Some(n);
        self.shared.gate_changed.notify_all();
    }

    /// Lets the held requests go on and stops holding.
    pub fn release(&self) {
        let mut gate = lock(&self.shared.gate);
        gate.until = None;
        gate.opened += 1;
        drop(gate);
        self.shared.gate_changed.notify_all();
    }

    /// Requests held at the gate right now.
    pub fn held(&self) -> usize {
        lock(&self.shared.gate).waiting
    }

    /// Waits up to `within` until `n` requests are held at the gate; false when they are not.
    pub fn wait_held(&self, n: usize, within: Duration) -> bool {
        let end = Instant::now() + within;
        let mut gate = lock(&self.shared.gate);
        while gate.waiting < n {
            let now = Instant::now();
            if now >= end {
                return false;
            }
            gate = self
                .shared
                .gate_changed
                .wait_timeout(gate, end - now)
                .unwrap_or_else(PoisonError::into_inner)
                .0;
        }
        true
    }

    /// All requests seen (any path or method; control requests excluded).
    pub fn total(&self) -> usize {
        lock(&self.shared.counters).total
    }

    /// TCP connections accepted (not counting those whose first request was a control request).
    pub fn connections(&self) -> usize {
        self.shared.connections.load(Ordering::SeqCst)
    }

    /// TCP connections open right now (the double has not closed them yet).
    pub fn open_connections(&self) -> usize {
        lock(&self.shared.streams).len()
    }

    /// The most recent request.
    pub fn last_request(&self) -> Option<RecordedRequest> {
        lock(&self.shared.counters).requests.last().cloned()
    }

    /// The recorded requests, oldest first (at most the last 1000).
    pub fn requests(&self) -> Vec<RecordedRequest> {
        lock(&self.shared.counters).requests.clone()
    }

    /// Clears the counters (all of them), the recorded requests and the connection count.
    pub fn reset_counters(&self) {
        *lock(&self.shared.counters) = Counters::default();
        self.shared.connections.store(0, Ordering::SeqCst);
    }
}

impl Drop for BackendDouble {
    fn drop(&mut self) {
        self.shared.stop.store(true, Ordering::SeqCst);
        self.shared.gate_changed.notify_all();
        // Wake the blocking accept().
        let _ = TcpStream::connect_timeout(&self.addr, Duration::from_secs(1));
        if let Some(acceptor) = self.acceptor.take() {
            let _ = acceptor.join();
        }
        for stream in lock(&self.shared.streams).values() {
            let _ = stream.shutdown(Shutdown::Both);
        }
        let handles: Vec<_> = lock(&self.shared.handles).drain(..).collect();
        for handle in handles {
            let _ = handle.join();
        }
    }
}

fn accept_loop(listener: &TcpListener, shared: &Arc<Shared>) {
    for stream in listener.incoming() {
        if shared.stop.load(Ordering::SeqCst) {
            break;
        }
        let Ok(stream) = stream else {
            thread::sleep(Duration::from_millis(10));
            continue;
        };
        let number = shared.connections.fetch_add(1, Ordering::SeqCst) + 1;
        let id = shared.next_conn.fetch_add(1, Ordering::SeqCst);
        if let Ok(clone) = stream.try_clone() {
            lock(&shared.streams).insert(id, clone);
        }
        let conn_shared = Arc::clone(shared);
        let spawned = thread::Builder::new()
            .name(format!("jsxc-double-conn-{id}"))
            .spawn(move || {
                serve_connection(stream, &conn_shared, number);
                lock(&conn_shared.streams).remove(&id);
            });
        let mut handles = lock(&shared.handles);
        handles.retain(|h| !h.is_finished());
        if let Ok(handle) = spawned {
            handles.push(handle);
        }
    }
}

/// Sleeps up to `d`, returning early when the double stops.
fn sleep_interruptibly(shared: &Shared, d: Duration) {
    let end = Instant::now() + d;
    while !shared.stop.load(Ordering::SeqCst) {
        let now = Instant::now();
        if now >= end {
            break;
        }
        thread::sleep((end - now).min(Duration::from_millis(10)));
    }
}

fn serve_connection(stream: TcpStream, shared: &Shared, number: usize) {
    let peer = stream.peer_addr().ok();
    let _ = stream.set_read_timeout(Some(shared.idle_timeout));
    let _ = stream.set_nodelay(true);
    let Ok(raw) = stream.try_clone() else {
        return;
    };
    let tls = lock(&shared.tls).clone();
    let io: Box<dyn http::Stream> = match tls {
        Some(config) => match rustls::ServerConnection::new(config) {
            Ok(tls) => Box::new(rustls::StreamOwned::new(tls, stream)),
            Err(_) => return,
        },
        None => Box::new(stream),
    };
    let mut conn = Conn::new(io);
    // A connection whose first request is a control request is not counted in `connections()`.
    let mut first = true;
    // API requests answered on this connection so far.
    let mut served = 0usize;
    while !shared.stop.load(Ordering::SeqCst) {
        if served > 0 {
            let keepalive = lock(&shared.keepalive).unwrap_or(shared.idle_timeout);
            let _ = raw.set_read_timeout(Some(keepalive));
            if lock(&shared.fault).fault == Fault::ResetIfReused && !conn.has_buffered() {
                // Wait for the next request's first bytes without reading them, then close.
                let mut probe = [0u8; 1];
                if !matches!(raw.peek(&mut probe), Ok(n) if n > 0) {
                    break;
                }
                if take_fault(shared, true) == Fault::ResetIfReused {
                    shared.reuse_drops.fetch_add(1, Ordering::SeqCst);
                    break;
                }
            }
        }
        let req = match conn.read_request() {
            Ok(req) => req,
            Err(ReadError::Closed) => break,
            Err(ReadError::Bad(status)) => {
                let resp = api::html(status, http::reason(status), http::reason(status));
                let _ = resp.write_to(&mut conn.stream, true, false);
                break;
            }
        };
        let close = req.wants_close();
        let head_only = req.method == "HEAD";
        let is_control = shared.control
            && req.path() == CONTROL_PATH
            && peer.is_some_and(|p| p.ip().is_loopback());
        if is_control {
            if first {
                let _ = shared
                    .connections
                    .fetch_update(Ordering::SeqCst, Ordering::SeqCst, |c| c.checked_sub(1));
            }
            first = false;
            let resp = control(shared, &req);
            if resp.write_to(&mut conn.stream, close, head_only).is_err() || close {
                break;
            }
            continue;
        }
        first = false;
        let params = api::params(&req);
        record(shared, &req, &params, number);
        pass_gate(shared);
        if shared.stop.load(Ordering::SeqCst) {
            break;
        }
        let reused = served > 0;
        served += 1;
        let fault = take_fault(shared, reused);
        let resp = match fault {
            Fault::Drop | Fault::DropIfReused | Fault::ResetIfReused => break,
            Fault::HugeBody { len, with_length } => {
                let mut body = br#"{"result":"success"}"#.to_vec();
                body.resize(len.max(body.len()), b' ');
                let resp = Response::new(200, api::JSON_TYPE, body);
                if with_length {
                    resp
                } else {
                    let mut bytes = format!(
                        "HTTP/1.1 200 OK\r\nContent-Type: {}\r\nConnection: close\r\n\r\n",
                        api::JSON_TYPE
                    )
                    .into_bytes();
                    bytes.extend_from_slice(&resp.body);
                    let _ = conn.stream.write_all(&bytes);
                    let _ = conn.stream.flush();
                    break;
                }
            }
            Fault::Delay(d) => {
                sleep_interruptibly(shared, d);
                if shared.stop.load(Ordering::SeqCst) {
                    break;
                }
                respond(shared, &req, &params, false)
            }
            Fault::Status(status, body) => Response::new(status, api::HTML_TYPE, body),
            Fault::Garbage => Response::new(
                200,
                api::HTML_TYPE,
                "<!DOCTYPE html>\n<html><body>This is not JSON {</body></html>\n",
            ),
            Fault::Json200(body) => Response::new(200, api::JSON_TYPE, body),
            Fault::Redirect(location) => {
                api::html(302, "Found", "Moved").with_header("Location", &location)
            }
            Fault::WrongSignature => respond(shared, &req, &params, true),
            Fault::CloseAfterHeaders => {
                let resp = respond(shared, &req, &params, false);
                let _ = conn.stream.write_all(&resp.head_bytes(false));
                let _ = conn.stream.flush();
                break;
            }
            Fault::None => respond(shared, &req, &params, false),
        };
        let resp = match *lock(&shared.date_skew) {
            Some(skew) => resp.with_header("Date", &http_date(skew)),
            None => resp,
        };
        if resp.write_to(&mut conn.stream, close, head_only).is_err() || close {
            break;
        }
    }
    let _ = conn.stream.flush();
    drop(conn);
    let _ = raw.shutdown(Shutdown::Both);
}

/// Waits at the gate of [`BackendDouble::hold_until`] while it holds requests (or until the
/// double stops).
fn pass_gate(shared: &Shared) {
    let mut gate = lock(&shared.gate);
    let Some(until) = gate.until else {
        return;
    };
    let arrived = gate.opened;
    gate.waiting += 1;
    if gate.waiting >= until {
        gate.until = None;
        gate.opened += 1;
    }
    shared.gate_changed.notify_all();
    while gate.opened == arrived && !shared.stop.load(Ordering::SeqCst) {
        gate = shared
            .gate_changed
            .wait_timeout(gate, Duration::from_millis(50))
            .unwrap_or_else(PoisonError::into_inner)
            .0;
    }
    gate.waiting -= 1;
    shared.gate_changed.notify_all();
}

/// The fault for this request, using up one of a limited count. A fault meant for reused
/// connections does not apply to (and is not used up by) a new connection's first request.
fn take_fault(shared: &Shared, reused: bool) -> Fault {
    let mut state = lock(&shared.fault);
    let fault = state.fault.clone();
    if fault.reuse_only() && !reused {
        return Fault::None;
    }
    if let Some(n) = state.remaining {
        if n <= 1 {
            *state = FaultState::default();
        } else {
            state.remaining = Some(n - 1);
        }
        if n == 0 {
            return Fault::None;
        }
    }
    fault
}

fn record(shared: &Shared, req: &Request, params: &HashMap<Vec<u8>, Vec<u8>>, number: usize) {
    let mut counters = lock(&shared.counters);
    counters.total += 1;
    if req.method == "POST" && is_api_path(req.path()) {
        if let Some(op) = params.get(&b"operation"[..]) {
            *counters
                .ops
                .entry(String::from_utf8_lossy(op).into_owned())
                .or_insert(0) += 1;
        }
    }
    if counters.requests.len() >= MAX_RECORDED {
        counters.requests.remove(0);
    }
    counters.requests.push(RecordedRequest {
        method: req.method.clone(),
        path: req.path().to_owned(),
        query: req.query().to_owned(),
        headers: req
            .headers
            .iter()
            .map(|(n, v)| (n.clone(), String::from_utf8_lossy(v).into_owned()))
            .collect(),
        body: req.body.clone(),
        connection: number,
    });
}

fn is_api_path(path: &str) -> bool {
    path == API_PATH || path == API_PATH_PRETTY
}

/// The normal answer: routing, method, signature, operation.
fn respond(
    shared: &Shared,
    req: &Request,
    params: &HashMap<Vec<u8>, Vec<u8>>,
    wrong_secret: bool,
) -> Response {
    if !is_api_path(req.path()) {
        return api::html(
            404,
            "Page not found",
            "The page could not be found on the server.",
        );
    }
    if req.method != "POST" {
        return api::html(405, "Method Not Allowed", "Method not allowed")
            .with_header("Allow", "POST");
    }
    let mut secret = lock(&shared.secret).clone();
    if wrong_secret && !php::empty(Some(secret.as_bytes())) {
        secret.push_str("-but-not-this-one");
    }
    let php_version = *lock(&shared.php);
    if let Err(resp) = api::check_signature(req, &secret, php_version) {
        lock(&shared.counters).bad_signatures += 1;
        return resp;
    }
    if let Some(op) = params.get(&b"operation"[..]) {
        *lock(&shared.counters)
            .verified
            .entry(String::from_utf8_lossy(op).into_owned())
            .or_insert(0) += 1;
    }
    let dir = lock(&shared.dir);
    api::dispatch(req, params, &dir)
}

/// `POST /__control` with form fields `fault=…`, `secret=…`, `reset=1`, `stats=1`.
fn control(shared: &Shared, req: &Request) -> Response {
    if req.method != "POST" {
        return Response::new(405, "text/plain; charset=utf-8", "POST only\n");
    }
    let mut fields = HashMap::new();
    php::parse_form(req.query().as_bytes(), &mut fields);
    php::parse_form(&req.body, &mut fields);
    let text = |k: &str| {
        fields
            .get(k.as_bytes())
            .map(|v| String::from_utf8_lossy(v).into_owned())
    };
    if let Some(spec) = text("fault") {
        match parse_fault(&spec) {
            Some(fault) => {
                *lock(&shared.fault) = FaultState {
                    fault,
                    remaining: None,
                };
            }
            None => {
                return Response::new(400, "text/plain; charset=utf-8", "unknown fault\n");
            }
        }
    }
    if let Some(secret) = text("secret") {
        *lock(&shared.secret) = secret;
    }
    if let Some(ms) = text("keepalive") {
        *lock(&shared.keepalive) = match ms.parse::<u64>() {
            Ok(0) => None,
            Ok(ms) => Some(Duration::from_millis(ms)),
            Err(_) => {
                return Response::new(400, "text/plain; charset=utf-8", "bad keepalive\n");
            }
        };
    }
    if text("reset").is_some() {
        *lock(&shared.counters) = Counters::default();
        shared.connections.store(0, Ordering::SeqCst);
    }
    if text("stats").is_some() {
        let counters = lock(&shared.counters);
        let get = |op: &str| i64::try_from(counters.ops.get(op).copied().unwrap_or(0)).unwrap_or(0);
        let stats = php::Json::obj([
            ("auth", php::Json::Int(get("auth"))),
            ("isuser", php::Json::Int(get("isuser"))),
            ("sharedroster", php::Json::Int(get("sharedroster"))),
            (
                "total",
                php::Json::Int(i64::try_from(counters.total).unwrap_or(0)),
            ),
            (
                "connections",
                php::Json::Int(
                    i64::try_from(shared.connections.load(Ordering::SeqCst)).unwrap_or(0),
                ),
            ),
        ]);
        return Response::new(200, api::JSON_TYPE, stats.encode());
    }
    Response::new(200, "text/plain; charset=utf-8", "ok")
}

/// Parses a fault spec as used by the control endpoint and the binary:
/// `none`, `garbage`, `drop`, `wrongsig`, `closeafterheaders`, `status:CODE[:HTML body]`,
/// `delay:MILLIS`, `redirect[:LOCATION]`, `json:BODY`, `huge:BYTES`, `hugenolength:BYTES`,
/// `dropifreused`, `resetifreused`.
pub fn parse_fault(spec: &str) -> Option<Fault> {
    let (kind, arg) = match spec.split_once(':') {
        Some((k, a)) => (k, Some(a)),
        None => (spec, None),
    };
    Some(match (kind.to_ascii_lowercase().as_str(), arg) {
        ("none", None) => Fault::None,
        ("garbage", None) => Fault::Garbage,
        ("drop", None) => Fault::Drop,
        ("wrongsig" | "wrongsignature", None) => Fault::WrongSignature,
        ("closeafterheaders", None) => Fault::CloseAfterHeaders,
        ("dropifreused", None) => Fault::DropIfReused,
        ("resetifreused", None) => Fault::ResetIfReused,
        ("huge", Some(len)) => Fault::HugeBody {
            len: len.parse().ok()?,
            with_length: true,
        },
        ("hugenolength", Some(len)) => Fault::HugeBody {
            len: len.parse().ok()?,
            with_length: false,
        },
        ("status", Some(arg)) => {
            let (code, body) = match arg.split_once(':') {
                Some((c, b)) => (c, b.to_owned()),
                None => (arg, String::new()),
            };
            let code: u16 = code.parse().ok().filter(|c| (100..=999).contains(c))?;
            let body = if body.is_empty() {
                format!(
                    "<!DOCTYPE html>\n<html><body><h1>{code} {}</h1></body></html>\n",
                    http::reason(code)
                )
            } else {
                body
            };
            Fault::Status(code, body)
        }
        ("delay", Some(ms)) => Fault::Delay(Duration::from_millis(ms.parse().ok()?)),
        ("redirect", None) => Fault::Redirect("https://example.invalid/".to_owned()),
        ("redirect", Some(location)) => Fault::Redirect(location.to_owned()),
        ("json", Some(body)) => Fault::Json200(body.to_owned()),
        _ => return None,
    })
}

/// The current time plus `skew` seconds as an IMF-fixdate (`Sun, 06 Nov 1994 08:49:37 GMT`).
fn http_date(skew: i64) -> String {
    let now = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map_or(0, |d| i64::try_from(d.as_secs()).unwrap_or(0));
    let c = xcauth_core::clock::Civil::from_unix(now + skew);
    let days = (now + skew).div_euclid(86_400);
    const WEEKDAYS: [&str; 7] = ["Thu", "Fri", "Sat", "Sun", "Mon", "Tue", "Wed"];
    const MONTHS: [&str; 12] = [
        "Jan", "Feb", "Mar", "Apr", "May", "Jun", "Jul", "Aug", "Sep", "Oct", "Nov", "Dec",
    ];
    format!(
        "{}, {:02} {} {} {:02}:{:02}:{:02} GMT",
        WEEKDAYS[usize::try_from(days.rem_euclid(7)).unwrap_or(0)],
        c.day,
        MONTHS[usize::try_from(c.month).unwrap_or(1) - 1],
        c.year,
        c.hour,
        c.minute,
        c.second
    )
}
