//! Counters of a long-running xcauthd: requests per framing and result, backend calls and
//! their latency, cache hits, throttling, circuit breakers, roster syncs.
//!
//! One [`Metrics`] registry per daemon, handed to the [`crate::Engine`]
//! ([`crate::Engine::with_metrics`]); everything in it is a relaxed atomic, so counting never
//! takes a lock and never blocks a request. An engine without a registry (the PAM module,
//! one-shots) counts nothing. [`Snapshot`] is a copy taken for output: the `xcauthd stats`
//! lines and the SIGUSR1 log line ([`Snapshot::samples`] with [`Sample::key`]), and the
//! Prometheus text exposition ([`Snapshot::prometheus`]). The names are listed in
//! `docs/metrics.md`.

use std::fmt::Write as _;
use std::sync::atomic::{AtomicU64, Ordering::Relaxed};
use std::time::{Duration, Instant};

use crate::codec::Framing;

/// Where a request came in: one of the four framings or the pam socket.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Channel {
    /// ejabberd's length-prefixed framing.
    Ejabberd,
    /// generic / Prosody lines.
    Generic,
    /// Postfix `tcp_table`.
    Postfix,
    /// saslauthd counted strings.
    Saslauthd,
    /// The PAM module's socket protocol.
    Pam,
}

impl Channel {
    const ALL: [Channel; 5] = [
        Channel::Ejabberd,
        Channel::Generic,
        Channel::Postfix,
        Channel::Saslauthd,
        Channel::Pam,
    ];

    /// The channel of a framing.
    pub fn of(framing: Framing) -> Self {
        match framing {
            Framing::Ejabberd => Channel::Ejabberd,
            Framing::Generic => Channel::Generic,
            Framing::Postfix => Channel::Postfix,
            Framing::Saslauthd => Channel::Saslauthd,
        }
    }

    /// Label value.
    pub fn as_str(self) -> &'static str {
        match self {
            Channel::Ejabberd => "ejabberd",
            Channel::Generic => "generic",
            Channel::Postfix => "postfix",
            Channel::Saslauthd => "saslauthd",
            Channel::Pam => "pam",
        }
    }

    /// The operations this channel can carry (what is reported, zeros included).
    fn ops(self) -> &'static [Op] {
        match self {
            Channel::Ejabberd | Channel::Generic => &[Op::Auth, Op::IsUser, Op::Roster],
            Channel::Postfix => &[Op::IsUser],
            Channel::Saslauthd => &[Op::Auth],
            Channel::Pam => &[Op::Auth, Op::IsUser, Op::Groups],
        }
    }
}

/// What a request asked.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Op {
    /// A login.
    Auth,
    /// Does the user exist?
    IsUser,
    /// A shared roster.
    Roster,
    /// The groups of an account (pam socket).
    Groups,
    /// A malformed request: its operation is unknown.
    Invalid,
}

impl Op {
    const ALL: [Op; 5] = [Op::Auth, Op::IsUser, Op::Roster, Op::Groups, Op::Invalid];

    /// Label value.
    pub fn as_str(self) -> &'static str {
        match self {
            Op::Auth => "auth",
            Op::IsUser => "isuser",
            Op::Roster => "roster",
            Op::Groups => "groups",
            Op::Invalid => "invalid",
        }
    }

    fn results(self) -> &'static [Outcome] {
        match self {
            Op::Auth | Op::IsUser => &[Outcome::Accepted, Outcome::Rejected, Outcome::Unavailable],
            Op::Roster | Op::Groups => &[Outcome::Accepted, Outcome::Unavailable],
            Op::Invalid => &[Outcome::Error],
        }
    }
}

/// How a request was answered. For isuser, "accepted" is "exists" and "rejected" "no such
/// user"; for roster and groups "accepted" is "fetched".
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Outcome {
    /// A positive answer.
    Accepted,
    /// A negative answer.
    Rejected,
    /// The backend could not answer.
    Unavailable,
    /// The request was malformed.
    Error,
}

impl Outcome {
    const ALL: [Outcome; 4] = [
        Outcome::Accepted,
        Outcome::Rejected,
        Outcome::Unavailable,
        Outcome::Error,
    ];

    /// Label value.
    pub fn as_str(self) -> &'static str {
        match self {
            Outcome::Accepted => "accepted",
            Outcome::Rejected => "rejected",
            Outcome::Unavailable => "unavailable",
            Outcome::Error => "error",
        }
    }
}

/// A backend operation.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum BackendOp {
    /// `auth`.
    Auth,
    /// `isuser`.
    IsUser,
    /// `sharedroster`.
    Roster,
}

impl BackendOp {
    const ALL: [BackendOp; 3] = [BackendOp::Auth, BackendOp::IsUser, BackendOp::Roster];

    fn as_str(self) -> &'static str {
        match self {
            BackendOp::Auth => "auth",
            BackendOp::IsUser => "isuser",
            BackendOp::Roster => "roster",
        }
    }
}

/// How a backend call went.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum CallOutcome {
    /// The backend answered (yes or no).
    Answered,
    /// It could not answer (connect, timeout, TLS, status, malformed reply…).
    Unavailable,
    /// Not sent: the URL's circuit breaker is open. Not timed.
    Skipped,
}

impl CallOutcome {
    const ALL: [CallOutcome; 3] = [
        CallOutcome::Answered,
        CallOutcome::Unavailable,
        CallOutcome::Skipped,
    ];

    fn as_str(self) -> &'static str {
        match self {
            CallOutcome::Answered => "answered",
            CallOutcome::Unavailable => "unavailable",
            CallOutcome::Skipped => "skipped",
        }
    }
}

/// Upper bounds of the latency histogram's buckets, in milliseconds; one more bucket takes
/// everything slower.
pub const LATENCY_BOUNDS_MS: [u64; 14] = [
    1, 2, 5, 10, 25, 50, 100, 250, 500, 1000, 2500, 5000, 10_000, 30_000,
];
const BUCKETS: usize = LATENCY_BOUNDS_MS.len() + 1;

/// A fixed-bucket latency histogram (lock-free).
#[derive(Debug)]
struct Histogram {
    counts: [AtomicU64; BUCKETS],
    sum_us: AtomicU64,
    max_us: AtomicU64,
}

impl Histogram {
    fn new() -> Self {
        Self {
            counts: std::array::from_fn(|_| AtomicU64::new(0)),
            sum_us: AtomicU64::new(0),
            max_us: AtomicU64::new(0),
        }
    }

    fn observe(&self, took: Duration) {
        let us = u64::try_from(took.as_micros()).unwrap_or(u64::MAX);
        let bucket = LATENCY_BOUNDS_MS
            .iter()
            .position(|&ms| us <= ms * 1000)
            .unwrap_or(BUCKETS - 1);
        self.counts[bucket].fetch_add(1, Relaxed);
        self.sum_us.fetch_add(us, Relaxed);
        self.max_us.fetch_max(us, Relaxed);
    }
}

/// How a shared-roster sync ended.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum SyncResult {
    /// The roster was pushed (or was already current).
    Ok,
    /// It could not be fetched or pushed.
    Failed,
}

const REQUESTS: usize = Channel::ALL.len() * Op::ALL.len() * Outcome::ALL.len();
const CALLS: usize = BackendOp::ALL.len() * CallOutcome::ALL.len();

/// The registry: every counter of one daemon.
#[derive(Debug)]
pub struct Metrics {
    started: Instant,
    requests: [AtomicU64; REQUESTS],
    calls: [AtomicU64; CALLS],
    latency: Histogram,
    logins_via: [AtomicU64; 4],
    cache_hits: [AtomicU64; 2],
    cache_misses: [AtomicU64; 2],
    lockouts: [AtomicU64; 2],
    throttle_refused: AtomicU64,
    roster_syncs: [AtomicU64; 2],
}

fn zeros<const N: usize>() -> [AtomicU64; N] {
    std::array::from_fn(|_| AtomicU64::new(0))
}

fn index<T: PartialEq>(all: &[T], x: &T) -> usize {
    all.iter().position(|a| a == x).unwrap_or(0)
}

fn request_index(channel: Channel, op: Op, outcome: Outcome) -> usize {
    (index(&Channel::ALL, &channel) * Op::ALL.len() + index(&Op::ALL, &op)) * Outcome::ALL.len()
        + index(&Outcome::ALL, &outcome)
}

fn call_index(op: BackendOp, outcome: CallOutcome) -> usize {
    index(&BackendOp::ALL, &op) * CallOutcome::ALL.len() + index(&CallOutcome::ALL, &outcome)
}

/// Whether a cache lookup was the normal one or the one while the backend is unreachable.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum CacheLookup {
    /// Before asking the backend.
    Normal,
    /// After the backend could not answer.
    Unreachable,
}

const LOOKUPS: [&str; 2] = ["normal", "unreachable"];
const VIAS: [&str; 4] = ["token", "cache", "backend", "cache_backend_unreachable"];
const SCOPES: [&str; 2] = ["user", "remote"];
const SYNCS: [&str; 2] = ["ok", "failed"];

impl Metrics {
    /// A registry with every counter at zero; uptime counts from `started` (a
    /// [`crate::Clock::instant`]).
    pub fn new(started: Instant) -> Self {
        Self {
            started,
            requests: zeros(),
            calls: zeros(),
            latency: Histogram::new(),
            logins_via: zeros(),
            cache_hits: zeros(),
            cache_misses: zeros(),
            lockouts: zeros(),
            throttle_refused: AtomicU64::new(0),
            roster_syncs: zeros(),
        }
    }

    /// Counts one answered request.
    pub fn request(&self, channel: Channel, op: Op, outcome: Outcome) {
        self.requests[request_index(channel, op, outcome)].fetch_add(1, Relaxed);
    }

    /// Counts one malformed request (answered as an error, or closed).
    pub fn invalid_request(&self, channel: Channel) {
        self.request(channel, Op::Invalid, Outcome::Error);
    }

    /// Counts one backend call; `took` is recorded in the latency histogram unless the call
    /// was skipped.
    pub fn backend_call(&self, op: BackendOp, outcome: CallOutcome, took: Duration) {
        self.calls[call_index(op, outcome)].fetch_add(1, Relaxed);
        if outcome != CallOutcome::Skipped {
            self.latency.observe(took);
        }
    }

    /// Counts an accepted login by how it was vouched for ([`crate::Via::as_str`]: `token`,
    /// `cache`, `backend`, `cache_backend_unreachable`).
    pub fn login(&self, via: &str) {
        if let Some(i) = VIAS.iter().position(|v| *v == via) {
            self.logins_via[i].fetch_add(1, Relaxed);
        }
    }

    /// Counts a credential-cache lookup.
    pub fn cache_lookup(&self, lookup: CacheLookup, hit: bool) {
        let i = usize::from(lookup == CacheLookup::Unreachable);
        let counters = if hit {
            &self.cache_hits
        } else {
            &self.cache_misses
        };
        counters[i].fetch_add(1, Relaxed);
    }

    /// Counts a lock-out the throttle opened.
    pub fn lockout(&self, scope: crate::throttle::Scope) {
        let i = usize::from(scope == crate::throttle::Scope::Remote);
        self.lockouts[i].fetch_add(1, Relaxed);
    }

    /// Counts a password attempt refused unchecked during a lock-out.
    pub fn throttle_refused(&self) {
        self.throttle_refused.fetch_add(1, Relaxed);
    }

    /// Counts one shared-roster sync. The hook for the roster worker: it reaches the
    /// registry through [`crate::Engine::metrics`] (or the `Arc` the daemon made).
    pub fn roster_sync(&self, result: SyncResult) {
        let i = usize::from(result == SyncResult::Failed);
        self.roster_syncs[i].fetch_add(1, Relaxed);
    }

    /// A copy of every counter at `now` (same clock as `started`), with the URLs whose
    /// circuit breaker is open.
    pub fn snapshot(&self, now: Instant, open_breakers: Vec<String>) -> Snapshot {
        let load = |a: &[AtomicU64]| a.iter().map(|c| c.load(Relaxed)).collect::<Vec<_>>();
        Snapshot {
            uptime: now.saturating_duration_since(self.started),
            requests: load(&self.requests),
            calls: load(&self.calls),
            latency_counts: load(&self.latency.counts),
            latency_sum_us: self.latency.sum_us.load(Relaxed),
            latency_max_us: self.latency.max_us.load(Relaxed),
            logins_via: load(&self.logins_via),
            cache_hits: load(&self.cache_hits),
            cache_misses: load(&self.cache_misses),
            lockouts: load(&self.lockouts),
            throttle_refused: self.throttle_refused.load(Relaxed),
            roster_syncs: load(&self.roster_syncs),
            open_breakers,
        }
    }
}

/// Counters copied at one moment.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Snapshot {
    uptime: Duration,
    requests: Vec<u64>,
    calls: Vec<u64>,
    latency_counts: Vec<u64>,
    latency_sum_us: u64,
    latency_max_us: u64,
    logins_via: Vec<u64>,
    cache_hits: Vec<u64>,
    cache_misses: Vec<u64>,
    lockouts: Vec<u64>,
    throttle_refused: u64,
    roster_syncs: Vec<u64>,
    open_breakers: Vec<String>,
}

/// Counter or gauge (Prometheus `TYPE`).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Kind {
    /// Only grows.
    Counter,
    /// Goes up and down.
    Gauge,
}

/// One value of a snapshot.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Sample {
    /// Base name (`requests`).
    pub name: &'static str,
    /// Labels in order (`framing`, `op`, `result`).
    pub labels: Vec<(&'static str, String)>,
    /// The value.
    pub value: u64,
    /// Counter or gauge.
    pub kind: Kind,
}

impl Sample {
    fn new(
        name: &'static str,
        labels: Vec<(&'static str, String)>,
        value: u64,
        kind: Kind,
    ) -> Self {
        Self {
            name,
            labels,
            value,
            kind,
        }
    }

    /// The short key of `xcauthd stats` and the SIGUSR1 line: the name and the label values
    /// joined by dots (`requests.generic.auth.accepted`).
    pub fn key(&self) -> String {
        let mut key = self.name.to_owned();
        for (_, v) in &self.labels {
            key.push('.');
            key.push_str(v);
        }
        key
    }
}

/// Most open-breaker URLs reported (one per `domains` row at worst).
const MAX_URLS: usize = 64;
/// Longest URL reported, in bytes.
const MAX_URL: usize = 512;

fn clip(s: &str) -> String {
    let mut end = s.len().min(MAX_URL);
    while !s.is_char_boundary(end) {
        end -= 1;
    }
    s[..end].to_owned()
}

impl Snapshot {
    /// Latency percentile `q` (0 < q ≤ 1) in milliseconds, estimated from the histogram: the
    /// upper bound of the bucket holding that rank, or the slowest call seen if that is
    /// less. 0 without calls.
    pub fn latency_percentile_ms(&self, q: f64) -> u64 {
        let total: u64 = self.latency_counts.iter().sum();
        if total == 0 {
            return 0;
        }
        // The rank of the q-th call, 1-based: ceil(q * total), at least 1.
        let rank = ((q * total as f64).ceil() as u64).clamp(1, total);
        let max_ms = self.latency_max_us.div_ceil(1000);
        let mut seen = 0;
        for (i, count) in self.latency_counts.iter().enumerate() {
            seen += count;
            if seen >= rank {
                return LATENCY_BOUNDS_MS.get(i).map_or(max_ms, |&b| b.min(max_ms));
            }
        }
        max_ms
    }

    /// Every value, in a fixed order (zeros included), for `xcauthd stats` and the log.
    pub fn samples(&self) -> Vec<Sample> {
        use Kind::{Counter, Gauge};
        let mut out = Vec::with_capacity(128);
        out.push(Sample::new(
            "uptime_seconds",
            vec![],
            self.uptime.as_secs(),
            Gauge,
        ));
        for channel in Channel::ALL {
            for &op in channel.ops().iter().chain(&[Op::Invalid]) {
                for &result in op.results() {
                    out.push(Sample::new(
                        "requests",
                        vec![
                            ("framing", channel.as_str().to_owned()),
                            ("op", op.as_str().to_owned()),
                            ("result", result.as_str().to_owned()),
                        ],
                        self.requests[request_index(channel, op, result)],
                        Counter,
                    ));
                }
            }
        }
        for op in BackendOp::ALL {
            for outcome in CallOutcome::ALL {
                out.push(Sample::new(
                    "backend_calls",
                    vec![
                        ("op", op.as_str().to_owned()),
                        ("outcome", outcome.as_str().to_owned()),
                    ],
                    self.calls[call_index(op, outcome)],
                    Counter,
                ));
            }
        }
        for (q, name) in [(0.5, "p50"), (0.9, "p90"), (0.99, "p99")] {
            out.push(Sample::new(
                "backend_latency_ms",
                vec![("quantile", name.to_owned())],
                self.latency_percentile_ms(q),
                Gauge,
            ));
        }
        out.push(Sample::new(
            "backend_latency_ms",
            vec![("quantile", "max".to_owned())],
            self.latency_max_us.div_ceil(1000),
            Gauge,
        ));
        let labelled = |out: &mut Vec<Sample>, name, label, names: &[&str], values: &[u64]| {
            for (n, v) in names.iter().zip(values) {
                out.push(Sample::new(
                    name,
                    vec![(label, (*n).to_owned())],
                    *v,
                    Counter,
                ));
            }
        };
        labelled(&mut out, "logins", "via", &VIAS, &self.logins_via);
        labelled(&mut out, "cache_hits", "lookup", &LOOKUPS, &self.cache_hits);
        labelled(
            &mut out,
            "cache_misses",
            "lookup",
            &LOOKUPS,
            &self.cache_misses,
        );
        labelled(
            &mut out,
            "throttle_lockouts",
            "scope",
            &SCOPES,
            &self.lockouts,
        );
        out.push(Sample::new(
            "throttle_refused",
            vec![],
            self.throttle_refused,
            Counter,
        ));
        labelled(
            &mut out,
            "roster_syncs",
            "result",
            &SYNCS,
            &self.roster_syncs,
        );
        out.push(Sample::new(
            "breakers_open",
            vec![],
            self.open_breakers.len() as u64,
            Gauge,
        ));
        for url in self.open_breakers.iter().take(MAX_URLS) {
            out.push(Sample::new(
                "breaker_open",
                vec![("url", clip(url))],
                1,
                Gauge,
            ));
        }
        out
    }

    /// `key value` pairs of [`Snapshot::samples`] (what the pam socket's stats reply carries).
    pub fn pairs(&self) -> Vec<(String, u64)> {
        self.samples()
            .into_iter()
            .map(|s| (s.key(), s.value))
            .collect()
    }

    /// One log line: `key=value` for every value that is not zero (uptime always).
    pub fn log_line(&self) -> String {
        let mut line = String::from("stats:");
        for s in self.samples() {
            if s.value != 0 || s.name == "uptime_seconds" {
                let _ = write!(line, " {}={}", s.key(), s.value);
            }
        }
        line
    }

    /// The Prometheus text exposition (format 0.0.4): every sample as `xcauth_NAME`
    /// (`_total` for counters) and the latency as the histogram
    /// `xcauth_backend_latency_seconds`. The percentiles are left to the server
    /// (`histogram_quantile`).
    pub fn prometheus(&self) -> String {
        let mut out = String::with_capacity(8192);
        let mut last = "";
        for s in self.samples() {
            if s.name == "backend_latency_ms" {
                continue;
            }
            let suffix = if s.kind == Kind::Counter {
                "_total"
            } else {
                ""
            };
            let full = format!("xcauth_{}{suffix}", s.name);
            if s.name != last {
                let ty = if s.kind == Kind::Counter {
                    "counter"
                } else {
                    "gauge"
                };
                let _ = writeln!(out, "# TYPE {full} {ty}");
                last = s.name;
            }
            let _ = writeln!(out, "{full}{} {}", prom_labels(&s.labels), s.value);
        }
        let name = "xcauth_backend_latency_seconds";
        let _ = writeln!(out, "# TYPE {name} histogram");
        let mut cumulative = 0u64;
        for (i, count) in self.latency_counts.iter().enumerate() {
            cumulative += count;
            let le = LATENCY_BOUNDS_MS.get(i).map_or_else(
                || "+Inf".to_owned(),
                |ms| format!("{}", *ms as f64 / 1000.0),
            );
            let _ = writeln!(out, "{name}_bucket{{le=\"{le}\"}} {cumulative}");
        }
        let _ = writeln!(
            out,
            "{name}_sum {}",
            self.latency_sum_us as f64 / 1_000_000.0
        );
        let _ = writeln!(out, "{name}_count {cumulative}");
        out
    }
}

fn prom_labels(labels: &[(&'static str, String)]) -> String {
    if labels.is_empty() {
        return String::new();
    }
    let inner: Vec<String> = labels
        .iter()
        .map(|(k, v)| {
            let v = v
                .replace('\\', "\\\\")
                .replace('"', "\\\"")
                .replace('\n', "\\n");
            format!("{k}=\"{v}\"")
        })
        .collect();
    format!("{{{}}}", inner.join(","))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn t0() -> Instant {
        crate::deadline::now()
    }

    fn value(s: &Snapshot, key: &str) -> u64 {
        s.samples()
            .into_iter()
            .find(|x| x.key() == key)
            .unwrap_or_else(|| panic!("no {key}"))
            .value
    }

    #[test]
    fn counts_land_under_their_keys() {
        let m = Metrics::new(t0());
        m.request(Channel::Generic, Op::Auth, Outcome::Accepted);
        m.request(Channel::Generic, Op::Auth, Outcome::Accepted);
        m.request(Channel::Pam, Op::Auth, Outcome::Unavailable);
        m.invalid_request(Channel::Postfix);
        m.cache_lookup(CacheLookup::Unreachable, true);
        m.lockout(crate::throttle::Scope::Remote);
        m.roster_sync(SyncResult::Failed);
        let s = m.snapshot(t0(), vec!["https://x.example/a".into()]);
        assert_eq!(value(&s, "requests.generic.auth.accepted"), 2);
        assert_eq!(value(&s, "requests.generic.auth.rejected"), 0);
        assert_eq!(value(&s, "requests.pam.auth.unavailable"), 1);
        assert_eq!(value(&s, "requests.postfix.invalid.error"), 1);
        assert_eq!(value(&s, "cache_hits.unreachable"), 1);
        assert_eq!(value(&s, "throttle_lockouts.remote"), 1);
        assert_eq!(value(&s, "roster_syncs.failed"), 1);
        assert_eq!(value(&s, "breakers_open"), 1);
        assert_eq!(value(&s, "breaker_open.https://x.example/a"), 1);
        let line = s.log_line();
        assert!(line.contains(" requests.generic.auth.accepted=2"), "{line}");
        assert!(!line.contains("rejected=0"), "{line}");
        let prom = s.prometheus();
        assert!(prom.contains(
            "xcauth_requests_total{framing=\"generic\",op=\"auth\",result=\"accepted\"} 2\n"
        ));
        assert!(prom.contains("xcauth_breaker_open{url=\"https://x.example/a\"} 1\n"));
        assert_eq!(
            prom.matches("# TYPE xcauth_requests_total counter").count(),
            1
        );
    }

    #[test]
    fn percentiles_come_from_the_buckets() {
        let m = Metrics::new(t0());
        let s = m.snapshot(t0(), Vec::new());
        assert_eq!(s.latency_percentile_ms(0.5), 0);
        for _ in 0..90 {
            m.backend_call(
                BackendOp::Auth,
                CallOutcome::Answered,
                Duration::from_millis(3),
            );
        }
        for _ in 0..9 {
            m.backend_call(
                BackendOp::Auth,
                CallOutcome::Unavailable,
                Duration::from_millis(700),
            );
        }
        m.backend_call(
            BackendOp::IsUser,
            CallOutcome::Answered,
            Duration::from_secs(40),
        );
        m.backend_call(
            BackendOp::Auth,
            CallOutcome::Skipped,
            Duration::from_secs(99),
        );
        let s = m.snapshot(t0(), Vec::new());
        assert_eq!(s.latency_percentile_ms(0.5), 5);
        assert_eq!(s.latency_percentile_ms(0.9), 5);
        assert_eq!(s.latency_percentile_ms(0.99), 1000);
        assert_eq!(
            s.latency_percentile_ms(1.0),
            40_000,
            "beyond the last bound: the max"
        );
        assert_eq!(value(&s, "backend_calls.auth.skipped"), 1);
        assert_eq!(value(&s, "backend_calls.auth.answered"), 90);
        let prom = s.prometheus();
        assert!(prom.contains("xcauth_backend_latency_seconds_bucket{le=\"0.005\"} 90\n"));
        assert!(prom.contains("xcauth_backend_latency_seconds_bucket{le=\"+Inf\"} 100\n"));
        assert!(prom.contains("xcauth_backend_latency_seconds_count 100\n"));
    }

    #[test]
    fn a_small_latency_is_bounded_by_the_slowest_call() {
        let m = Metrics::new(t0());
        m.backend_call(
            BackendOp::Auth,
            CallOutcome::Answered,
            Duration::from_micros(300),
        );
        let s = m.snapshot(t0(), Vec::new());
        assert_eq!(s.latency_percentile_ms(0.99), 1);
    }

    #[test]
    fn label_values_are_escaped() {
        let s = Metrics::new(t0()).snapshot(t0(), vec!["a\"b\\c\nd".into()]);
        assert!(s
            .prometheus()
            .contains("xcauth_breaker_open{url=\"a\\\"b\\\\c\\nd\"} 1\n"));
    }
}
