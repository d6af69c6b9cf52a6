//! The signed HTTP client for Nextcloud's JSXC external API
//! (docs/jsxc-api.md).
//!
//! - Body: `application/x-www-form-urlencoded`, fields in the original's order,
//!   encoded like Python's `quote_plus`.
//! - Header `X-JSXC-SIGNATURE: sha1=<lower-case hex HMAC-SHA1(secret, body)>`.
//! - reqwest blocking over rustls (system trust store, verification on),
//!   connect and request timeouts, redirects never followed.
//! - Results map to the tri-state in [`crate::vocab`], with the spec's
//!   divergences from xcauth 2 (docs/jsxc-api.md §5.5) (non-object JSON is "unavailable", `isUser` values are
//!   strict).
//!
//! A `JsxcClient` keeps its connection pool for its lifetime, so a daemon
//! reuses keep-alive connections. Dropping it joins reqwest's internal runtime
//! thread: a PAM module that builds one per call leaves no thread behind.
//! The trust store and the TLS configuration are made once per process
//! (`tls`), so building a client per call costs little.

use std::error::Error as _;
use std::fmt;
use std::path::PathBuf;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, OnceLock};
use std::task::{Context, Poll};
use std::time::Duration;

use bytes::Bytes;
use log::{debug, info};
use zeroize::{Zeroize, Zeroizing};

use self::breaker::Breaker;
pub use self::wire::{form, parse_auth_reply, parse_isuser_reply, parse_roster_reply, signature};
use crate::backend::{Backend, CallBudget, Target};
use crate::clock::{Clock, SystemClock};
use crate::secret::Password;
use crate::vocab::{
    AuthReply, ErrorChain, Malformed, RosterReply, Timeout, TlsCause, TlsFailure, Transport,
    Unavailable, UserExists,
};

mod breaker;
mod probe;
mod tls;
mod wire;

pub use self::probe::ProbeReply;

/// Largest response body read from the backend (a big shared roster fits).
const MAX_BODY: u64 = 16 * 1024 * 1024;

/// How the client connects.
#[derive(Debug, Clone)]
pub struct ClientOptions {
    /// TCP + TLS connect timeout.
    pub connect_timeout: Duration,
    /// Bound on the whole request after connecting (xcauth's "read" timeout).
    pub read_timeout: Duration,
    /// Extra PEM CA certificates to trust besides the system store.
    pub ca_file: Option<PathBuf>,
    /// Consecutive transport failures that open a URL's circuit breaker (0 = off).
    pub breaker_failures: u32,
    /// How long an open breaker skips calls before one probe is let through.
    pub breaker_cooldown: Duration,
    /// The caller's whole budget (one PAM call): every request is cut to the time left, and
    /// none starts after it. `None` for the daemon.
    pub budget: Option<Arc<CallBudget>>,
    /// Times the circuit breaker and a response body's deadline.
    pub clock: Arc<dyn Clock>,
}

impl Default for ClientOptions {
    fn default() -> Self {
        Self {
            connect_timeout: Duration::from_secs(5),
            read_timeout: Duration::from_secs(10),
            ca_file: None,
            breaker_failures: 0,
            breaker_cooldown: Duration::from_secs(30),
            budget: None,
            clock: Arc::new(SystemClock),
        }
    }
}

/// The client could not be built (bad CA file, TLS backend failure).
#[derive(Debug)]
pub struct BuildError(String);

impl fmt::Display for BuildError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "cannot set up the HTTP client: {}", self.0)
    }
}

impl std::error::Error for BuildError {}

/// The JSXC backend over HTTPS.
///
/// The HTTP client (with its TLS trust store) is built on first use, so a
/// login decided by a time-limited token never pays for loading CA
/// certificates; a client that is never used never starts reqwest's thread.
pub struct JsxcClient {
    opts: ClientOptions,
    /// The `ca-file=` certificates, trusted besides the system store.
    extra_roots: Vec<rustls::pki_types::CertificateDer<'static>>,
    http: OnceLock<Result<reqwest::blocking::Client, String>>,
    /// A client without a connection pool, for the one retry after a reused
    /// keep-alive connection broke: it always opens a new connection.
    fresh: OnceLock<Result<reqwest::blocking::Client, String>>,
    /// Connections `http` has started (counted by its connector).
    connects: Arc<AtomicU64>,
    breaker: Breaker,
}

impl fmt::Debug for JsxcClient {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("JsxcClient")
            .field("opts", &self.opts)
            .finish_non_exhaustive()
    }
}

impl JsxcClient {
    /// Prepares a client. Fails only on an unreadable or invalid `ca_file`.
    pub fn new(opts: &ClientOptions) -> Result<Self, BuildError> {
        let mut extra_roots = Vec::new();
        if let Some(path) = &opts.ca_file {
            let pem = std::fs::read(path)
                .map_err(|e| BuildError(format!("cannot read ca-file {}: {e}", path.display())))?;
            extra_roots = tls::parse_pem_bundle(&pem)
                .map_err(|e| BuildError(format!("ca-file {}: {e}", path.display())))?;
            let mut check = rustls::RootCertStore::empty();
            for cert in &extra_roots {
                check.add(cert.clone()).map_err(|e| {
                    BuildError(format!(
                        "ca-file {}: unusable certificate: {e}",
                        path.display()
                    ))
                })?;
            }
        }
        Ok(Self {
            opts: opts.clone(),
            extra_roots,
            http: OnceLock::new(),
            fresh: OnceLock::new(),
            connects: Arc::new(AtomicU64::new(0)),
            breaker: Breaker::new(
                opts.breaker_failures,
                opts.breaker_cooldown,
                Arc::clone(&opts.clock),
            ),
        })
    }

    /// A client builder on the process's TLS settings ([`tls`]: the system trust store is
    /// loaded once per process, not per client) plus `ca-file=`.
    fn builder(&self) -> Result<reqwest::blocking::ClientBuilder, String> {
        let tls = tls::client_config(&self.extra_roots)?;
        Ok(reqwest::blocking::Client::builder()
            .use_preconfigured_tls(tls)
            .connect_timeout(self.opts.connect_timeout)
            .timeout(self.opts.read_timeout)
            .redirect(reqwest::redirect::Policy::none())
            .user_agent(concat!("xcauth-rs/", env!("CARGO_PKG_VERSION"))))
    }

    fn http(&self) -> Result<&reqwest::blocking::Client, Unavailable> {
        let built = self.http.get_or_init(|| {
            self.builder()?
                .pool_idle_timeout(Duration::from_secs(60))
                .connector_layer(CountConnects(Arc::clone(&self.connects)))
                .build()
                .map_err(|e| e.to_string())
        });
        built
            .as_ref()
            .map_err(|e| Unavailable::Tls(TlsFailure::Setup(e.clone())))
    }

    fn fresh(&self) -> Result<&reqwest::blocking::Client, Unavailable> {
        let built = self.fresh.get_or_init(|| {
            self.builder()?
                .pool_max_idle_per_host(0)
                .build()
                .map_err(|e| e.to_string())
        });
        built
            .as_ref()
            .map_err(|e| Unavailable::Tls(TlsFailure::Setup(e.clone())))
    }

    /// POSTs a signed form body and returns the status and body, or why not.
    fn post(
        &self,
        target: &Target,
        body: Zeroizing<String>,
    ) -> Result<(u16, Vec<u8>), Unavailable> {
        if !self.breaker.allow(target.url.as_str()) {
            return Err(Unavailable::CircuitOpen);
        }
        let result = self.post_retrying(target, body);
        let transport_failed = matches!(
            result,
            Err(Unavailable::Connect(_)
                | Unavailable::Timeout(_)
                | Unavailable::Tls(_)
                | Unavailable::Transport(_))
        );
        self.breaker.record(target.url.as_str(), !transport_failed);
        result
    }

    /// One exchange, plus one retry on a new connection when a reused
    /// keep-alive connection broke before any answer arrived.
    ///
    /// Nextcloud behind Apache closes idle keep-alive connections after a few
    /// seconds (`KeepAliveTimeout`); when that close crosses our next request
    /// on the wire, the request dies unanswered through no fault of the
    /// backend. Retrying is safe because every operation only reads (`auth`
    /// checks a password, it changes nothing). Never retried: timeouts,
    /// connect and TLS failures, anything after a response head arrived, and
    /// failures on a connection that was new anyway.
    fn post_retrying(
        &self,
        target: &Target,
        body: Zeroizing<String>,
    ) -> Result<(u16, Vec<u8>), Unavailable> {
        let signature = signature(&target.secret, body.as_bytes());
        let body = wipe_on_drop(body);
        let http = self.http()?;
        let connects_before = self.connects.load(Ordering::SeqCst);
        match self.post_once(http, target, &signature, body.clone()) {
            Err(Failed::BeforeResponse(why))
                if self.connects.load(Ordering::SeqCst) == connects_before =>
            {
                info!(
                    "backend {} closed a reused keep-alive connection without answering ({why}); \
                     retrying once on a new connection",
                    target.url
                );
                self.post_once(self.fresh()?, target, &signature, body)
                    .map_err(Failed::into_unavailable)
            }
            result => result.map_err(Failed::into_unavailable),
        }
    }

    fn post_once(
        &self,
        http: &reqwest::blocking::Client,
        target: &Target,
        signature: &str,
        body: Bytes,
    ) -> Result<(u16, Vec<u8>), Failed> {
        let started = self.opts.clock.instant();
        // As configured (the client's own timeouts), but never past the caller's budget.
        let mut request_timeout = self.opts.read_timeout;
        let mut deadline = started + self.opts.connect_timeout + self.opts.read_timeout;
        if let Some(budget) = &self.opts.budget {
            let budget_end = budget.end();
            let left = budget_end.saturating_duration_since(started);
            if left.is_zero() {
                return Err(Failed::Other(Unavailable::BudgetUsedUp));
            }
            request_timeout = request_timeout.min(left);
            deadline = deadline.min(budget_end);
        }
        let response = http
            .post(target.url.url().clone())
            .timeout(request_timeout)
            .header("Content-Type", "application/x-www-form-urlencoded")
            .header("Accept", "*/*")
            .header("X-JSXC-SIGNATURE", signature)
            .body(body)
            .send()
            .map_err(|e| {
                if broke_before_response(&e) {
                    Failed::BeforeResponse(classify(&e))
                } else {
                    Failed::Other(classify(&e))
                }
            })?;
        let status = response.status().as_u16();
        debug!("POST {} -> {status}", target.url);
        if response.content_length().is_some_and(|n| n > MAX_BODY) {
            return Err(Failed::Other(too_large()));
        }
        // The read timeout bounds each read; `deadline` bounds the whole body, so
        // a backend trickling bytes cannot hold a login for longer.
        let mut bytes = Vec::new();
        // One byte more than allowed tells "exactly the limit" from "more":
        // a cut body must never be parsed (its prefix may be valid JSON).
        let mut reader = std::io::Read::take(response, MAX_BODY + 1);
        let mut chunk = [0u8; 16 * 1024];
        loop {
            match std::io::Read::read(&mut reader, &mut chunk) {
                Ok(0) => break,
                Ok(n) => bytes.extend_from_slice(&chunk[..n]),
                Err(e) if e.kind() == std::io::ErrorKind::Interrupted => continue,
                Err(e) => {
                    return Err(Failed::Other(Unavailable::Transport(
                        Transport::ReadingBody(ErrorChain::new(e.to_string())),
                    )))
                }
            }
            if u64::try_from(bytes.len()).map_or(true, |n| n > MAX_BODY) {
                return Err(Failed::Other(too_large()));
            }
            if self.opts.clock.instant() > deadline {
                return Err(Failed::Other(Unavailable::Timeout(Timeout::SlowBody)));
            }
        }
        Ok((status, bytes))
    }
}

impl Backend for JsxcClient {
    fn auth(&self, target: &Target, user: &str, password: &Password) -> AuthReply {
        let body = form(&[
            ("operation", "auth"),
            ("username", user),
            ("domain", &target.authdomain),
            ("password", password.expose()),
        ]);
        match self.post(target, body) {
            Ok((status, bytes)) => parse_auth_reply(status, &bytes),
            Err(why) => AuthReply::Unavailable(why),
        }
    }

    fn isuser(&self, target: &Target, user: &str) -> UserExists {
        let body = form(&[
            ("operation", "isuser"),
            ("username", user),
            ("domain", &target.authdomain),
        ]);
        match self.post(target, body) {
            Ok((status, bytes)) => parse_isuser_reply(status, &bytes),
            Err(why) => UserExists::Unknown(why),
        }
    }

    fn open_circuits(&self) -> Vec<String> {
        self.breaker.open_urls()
    }

    fn sharedroster(&self, target: &Target, user: &str) -> RosterReply {
        let body = form(&[
            ("operation", "sharedroster"),
            ("username", user),
            ("domain", &target.authdomain),
        ]);
        match self.post(target, body) {
            Ok((status, bytes)) => parse_roster_reply(status, &bytes),
            Err(why) => RosterReply::Unavailable(why),
        }
    }
}

/// Why one exchange failed, and whether a retry may help.
enum Failed {
    /// The connection broke after the request was handed over but before any
    /// response head arrived (closed, reset, or "connection closed before
    /// message completed").
    BeforeResponse(Unavailable),
    /// Anything else: never retried.
    Other(Unavailable),
}

impl Failed {
    fn into_unavailable(self) -> Unavailable {
        match self {
            Failed::BeforeResponse(why) | Failed::Other(why) => why,
        }
    }
}

fn too_large() -> Unavailable {
    Unavailable::Malformed(Malformed::TooLarge {
        limit_mib: MAX_BODY / (1024 * 1024),
    })
}

/// True when `e` says the server closed or reset the connection without an
/// answer. Timeouts, connect and TLS failures and malformed answers are not
/// this case. (A response cut inside its status line also reads as
/// "closed before message completed": reqwest does not tell the two apart.)
fn broke_before_response(e: &reqwest::Error) -> bool {
    if e.is_timeout() || e.is_connect() || e.is_builder() || e.is_redirect() || e.is_body() {
        return false;
    }
    let mut source = e.source();
    let mut closed = false;
    while let Some(s) = source {
        if is_rustls(s) {
            return false;
        }
        if let Some(h) = s.downcast_ref::<hyper::Error>() {
            if h.is_parse() || h.is_timeout() || h.is_user() {
                return false;
            }
            closed |= h.is_incomplete_message() || h.is_canceled() || h.is_closed();
        }
        if let Some(io) = s.downcast_ref::<std::io::Error>() {
            closed |= matches!(
                io.kind(),
                std::io::ErrorKind::ConnectionReset
                    | std::io::ErrorKind::ConnectionAborted
                    | std::io::ErrorKind::BrokenPipe
                    | std::io::ErrorKind::UnexpectedEof
            );
        }
        source = s.source();
    }
    closed
}

/// The body as bytes reqwest can send without copying; the buffer is wiped
/// when reqwest (and we) drop the last reference to it.
fn wipe_on_drop(mut body: Zeroizing<String>) -> Bytes {
    Bytes::from_owner(WipedBuf(std::mem::take(&mut *body).into_bytes()))
}

struct WipedBuf(Vec<u8>);

impl AsRef<[u8]> for WipedBuf {
    fn as_ref(&self) -> &[u8] {
        &self.0
    }
}

impl Drop for WipedBuf {
    fn drop(&mut self) {
        self.0.zeroize();
    }
}

/// A connector layer counting the connections the pooled client opens, so a
/// failed request can tell whether it ran on a reused connection.
#[derive(Clone)]
struct CountConnects(Arc<AtomicU64>);

impl<S> tower_layer::Layer<S> for CountConnects {
    type Service = Counted<S>;
    fn layer(&self, inner: S) -> Counted<S> {
        Counted {
            inner,
            count: Arc::clone(&self.0),
        }
    }
}

#[derive(Clone)]
struct Counted<S> {
    inner: S,
    count: Arc<AtomicU64>,
}

impl<S: tower_service::Service<R>, R> tower_service::Service<R> for Counted<S> {
    type Response = S::Response;
    type Error = S::Error;
    type Future = S::Future;

    fn poll_ready(&mut self, cx: &mut Context<'_>) -> Poll<Result<(), S::Error>> {
        self.inner.poll_ready(cx)
    }

    fn call(&mut self, req: R) -> S::Future {
        self.count.fetch_add(1, Ordering::SeqCst);
        self.inner.call(req)
    }
}

/// Turns a reqwest error into a log-safe reason. reqwest errors never carry
/// the request body, but we still only keep the error chain's text. A TLS
/// failure starts with its cause in plain words, for the admin reading the log.
fn classify(e: &reqwest::Error) -> Unavailable {
    let mut chain = e.to_string();
    let mut source = e.source();
    let mut tls: Option<TlsCause> = None;
    while let Some(s) = source {
        if let Some(err) = find_rustls(s) {
            tls = tls.or(Some(tls_cause(err)));
        }
        chain.push_str(": ");
        chain.push_str(&s.to_string());
        source = s.source();
    }
    let chain = ErrorChain::new(chain);
    if e.is_timeout() {
        Unavailable::Timeout(Timeout::Exchange(chain))
    } else if let Some(cause) = tls {
        Unavailable::Tls(TlsFailure::Handshake { cause, chain })
    } else if e.is_connect() {
        Unavailable::Connect(chain)
    } else {
        Unavailable::Transport(Transport::Exchange(chain))
    }
}

/// What a TLS failure was.
fn tls_cause(err: &rustls::Error) -> TlsCause {
    use rustls::CertificateError as C;
    match err {
        rustls::Error::InvalidCertificate(cert) => match cert {
            C::Expired | C::ExpiredContext { .. } => TlsCause::Expired,
            C::NotValidYet | C::NotValidYetContext { .. } => TlsCause::NotValidYet,
            C::NotValidForName | C::NotValidForNameContext { .. } => TlsCause::WrongName,
            C::UnknownIssuer => TlsCause::UnknownIssuer,
            C::Revoked => TlsCause::Revoked,
            C::BadSignature => TlsCause::BadSignature,
            _ => TlsCause::CertificateRefused,
        },
        rustls::Error::InvalidMessage(_) | rustls::Error::InappropriateMessage { .. } => {
            TlsCause::NotTls
        }
        rustls::Error::AlertReceived(_) => TlsCause::Aborted,
        _ => TlsCause::Failed,
    }
}

/// The rustls error in `err`, possibly wrapped in (nested) `io::Error`s the
/// way hyper's connectors report handshake failures.
fn find_rustls<'a>(mut err: &'a (dyn std::error::Error + 'static)) -> Option<&'a rustls::Error> {
    for _ in 0..8 {
        if let Some(tls) = err.downcast_ref::<rustls::Error>() {
            return Some(tls);
        }
        match err
            .downcast_ref::<std::io::Error>()
            .and_then(std::io::Error::get_ref)
        {
            Some(inner) => err = inner,
            None => return None,
        }
    }
    None
}

fn is_rustls(err: &(dyn std::error::Error + 'static)) -> bool {
    find_rustls(err).is_some()
}
