//! The shared-roster sync off the reply path (`ejabberdctl=`; docs/xcauth2.md §8).
//!
//! A login only puts a job in a bounded queue; one background thread fetches the user's shared
//! roster and runs [`xcauth_core::roster::sync_roster`], calling ejabberdctl with a timeout on
//! every call, under a process helper that ends whatever the call started
//! ([`crate::reaper`]). Repeated logins of one user while their job waits are coalesced into that job;
//! a full queue drops the job with a warning (the next login schedules it again: the database
//! only marks a roster synced when every command succeeded).
//!
//! When the input ends (ejabberd stopping) or the daemon stops, [`finish`] lets the thread
//! finish the jobs already queued: no ejabberdctl call starts later than one `roster-timeout`
//! after that, and each call is bounded by its own timeout, so the process exits within about
//! twice `roster-timeout` (plus a roster request that had already started, and the few seconds
//! the process helper may take to end a stopped call).

use std::collections::VecDeque;
use std::fs::File;
use std::io::Read;
use std::os::fd::{AsFd, BorrowedFd, OwnedFd};
use std::os::unix::process::CommandExt;
use std::path::PathBuf;
use std::process::{Child, ExitStatus, Stdio};
use std::sync::{Arc, Condvar, Mutex, MutexGuard, OnceLock, PoisonError};
use std::thread::JoinHandle;
use std::time::{Duration, Instant};

use log::{debug, info, warn};
use xcauth_core::assemble::{self, DbState};
use xcauth_core::backend::{Backend, Target};
use xcauth_core::config::{Config, RosterOptions};
use xcauth_core::db::Db;
use xcauth_core::deadline;
use xcauth_core::engine::AfterLogin;
use xcauth_core::logsafe;
use xcauth_core::metrics::{Metrics, SyncResult};
use xcauth_core::roster::{sync_roster, Ctl, CtlError, Outcome as SyncOutcome};
use xcauth_core::vocab::{RosterReply, SharedRoster};
use xcauth_core::{Clock, Engine, SystemClock};

use crate::reaper;

/// Syncs waiting at most; more are dropped (and redone at the user's next login).
const MAX_QUEUED: usize = 256;

/// Output kept from one ejabberdctl call (`srg_get_members` of a big group is the largest).
const MAX_OUTPUT: usize = 4 << 20;

/// ejabberdctl at `path`, each call run under the process helper ([`crate::reaper`]) and
/// stopped, with everything it started, after `timeout`.
#[derive(Debug)]
pub struct Ejabberdctl {
    path: PathBuf,
    timeout: Duration,
}

impl Ejabberdctl {
    /// Calls `path`, bounded by `timeout`.
    pub fn new(path: PathBuf, timeout: Duration) -> Self {
        Self { path, timeout }
    }
}

/// How long the helper may take to end what a stopped call left (its own bound, and a margin)
/// before it is killed itself.
const HELPER_BOUND: Duration = Duration::from_secs(10);

/// How long the output is awaited once the helper exited: it ended every process that held
/// the pipes, unless one was out of its reach.
const OUTPUT_WAIT: Duration = Duration::from_secs(1);

/// The output pipes of one call, read in the thread that runs it, so that nothing reads them
/// once the call is over: a process that still holds one then (out of the helper's reach)
/// writes into a closed pipe. Of each, at most [`MAX_OUTPUT`] is kept; the rest is read and
/// dropped, so the program never blocks on a full pipe.
struct Output {
    /// Standard output and error, until their end.
    pipes: [Option<File>; 2],
    kept: [Vec<u8>; 2],
}

impl Output {
    fn of(child: &mut Child) -> Self {
        let stdout = child.stdout.take().map(|p| File::from(OwnedFd::from(p)));
        let stderr = child.stderr.take().map(|p| File::from(OwnedFd::from(p)));
        Self {
            pipes: [stdout, stderr],
            kept: [Vec::new(), Vec::new()],
        }
    }

    /// True while a pipe has not ended.
    fn open(&self) -> bool {
        self.pipes.iter().any(Option::is_some)
    }

    /// Reads what the pipes have, waiting up to `wait` for something; true when something
    /// came (bytes or an end).
    fn pump(&mut self, wait: Duration) -> bool {
        let open: Vec<usize> = (0..2).filter(|&i| self.pipes[i].is_some()).collect();
        let ready = {
            let fds: Vec<(BorrowedFd<'_>, bool)> = self
                .pipes
                .iter()
                .flatten()
                .map(|p| (p.as_fd(), false))
                .collect();
            if fds.is_empty() {
                std::thread::sleep(wait);
                return false;
            }
            match crate::sys::poll_ready(&fds, wait) {
                Ok(ready) => ready,
                Err(e) => {
                    warn!("ejabberdctl: cannot wait for its output: {e}");
                    std::thread::sleep(wait);
                    return false;
                }
            }
        };
        let mut chunk = [0u8; 8192];
        for &r in &ready {
            let Some(&i) = open.get(r) else { continue };
            let Some(pipe) = self.pipes[i].as_mut() else {
                continue;
            };
            match pipe.read(&mut chunk) {
                Ok(0) => self.pipes[i] = None,
                Ok(n) => {
                    let room = MAX_OUTPUT.saturating_sub(self.kept[i].len());
                    self.kept[i].extend_from_slice(&chunk[..n.min(room)]);
                }
                Err(e) if e.kind() == std::io::ErrorKind::Interrupted => {}
                Err(_) => self.pipes[i] = None,
            }
        }
        !ready.is_empty()
    }

    /// Reads until both pipes ended or `until`; true when one is still open then. The pipes
    /// are closed.
    fn drain(&mut self, until: Instant) -> bool {
        while self.open() {
            let left = deadline::left(until);
            if left.is_zero() {
                break;
            }
            self.pump(left.min(Duration::from_millis(50)));
        }
        let left = self.open();
        self.pipes = [None, None];
        left
    }
}

/// Waits for `child` until `until`, reading its output meanwhile: its status, or `None` when
/// the time is up.
fn wait_reading(child: &mut Child, output: &mut Output, until: Instant) -> Option<ExitStatus> {
    let mut pause = Duration::from_millis(2);
    loop {
        match child.try_wait() {
            Ok(Some(status)) => return Some(status),
            Ok(None) if deadline::now() >= until => return None,
            Ok(None) => {
                if output.pump(pause.min(deadline::left(until))) {
                    pause = Duration::from_millis(2);
                } else {
                    pause = (pause * 2).min(Duration::from_millis(50));
                }
            }
            Err(e) => {
                warn!("ejabberdctl: cannot wait for pid {}: {e}", child.id());
                return None;
            }
        }
    }
}

/// Waits for `child` until `until`: its status, or `None` when the time is up.
fn wait_until(child: &mut Child, until: Instant) -> Option<ExitStatus> {
    let mut pause = Duration::from_millis(2);
    loop {
        match child.try_wait() {
            Ok(Some(status)) => return Some(status),
            Ok(None) if deadline::now() >= until => return None,
            Ok(None) => {
                std::thread::sleep(pause.min(deadline::left(until)));
                pause = (pause * 2).min(Duration::from_millis(50));
            }
            Err(e) => {
                warn!("ejabberdctl: cannot wait for pid {}: {e}", child.id());
                return None;
            }
        }
    }
}

/// Stops a call that ran out of time: the helper ends the program and everything it started;
/// should the helper itself not exit in time, it is killed.
fn stop(child: &mut Child) {
    let _ = crate::sys::signal_process(child.id(), libc::SIGTERM);
    if wait_until(child, deadline::now() + HELPER_BOUND).is_none() {
        warn!(
            "ejabberdctl: its process helper (pid {}) did not end the call within {:?}; \
             killed, processes of the call may be left",
            child.id(),
            HELPER_BOUND
        );
        let _ = child.kill();
        let _ = child.wait();
    }
}

fn describe(status: ExitStatus) -> String {
    use std::os::unix::process::ExitStatusExt;
    match (status.code(), status.signal()) {
        (Some(code), _) => format!("exit status {code}"),
        (None, Some(sig)) => format!("killed by signal {sig}"),
        _ => status.to_string(),
    }
}

fn first_line(bytes: &[u8]) -> String {
    let text = String::from_utf8_lossy(bytes);
    let line = text
        .lines()
        .map(str::trim)
        .find(|l| !l.is_empty())
        .unwrap_or("");
    logsafe::clean(line, 200).into_owned()
}

impl Ctl for Ejabberdctl {
    fn run(&self, args: &[&str]) -> Result<String, CtlError> {
        let mut child = reaper::command(&self.path, args)
            .stdin(Stdio::null())
            .stdout(Stdio::piped())
            .stderr(Stdio::piped())
            .process_group(0)
            .spawn()
            .map_err(|e| {
                CtlError::NotStarted(format!(
                    "{}: its process helper (/proc/self/exe) cannot be started: {e}",
                    self.path.display()
                ))
            })?;
        let mut output = Output::of(&mut child);
        let until = deadline::now() + self.timeout;
        let Some(status) = wait_reading(&mut child, &mut output, until) else {
            drop(output);
            stop(&mut child);
            return Err(CtlError::TimedOut(self.timeout));
        };
        if output.drain(deadline::now() + OUTPUT_WAIT) {
            warn!(
                "ejabberdctl {}: a process it started still holds its output {OUTPUT_WAIT:?} \
                 after it ended (one xcauthd may not signal, of another user?); reading \
                 stopped there",
                logsafe::clean(args.first().copied().unwrap_or(""), 64)
            );
        }
        let [stdout, stderr] = output.kept;
        if status.code() == Some(reaper::NOT_STARTED) {
            let text = String::from_utf8_lossy(&stderr);
            if let Some(why) = text
                .lines()
                .find_map(|l| l.strip_prefix(reaper::CANNOT_START))
            {
                return Err(CtlError::NotStarted(logsafe::clean(why, 300).into_owned()));
            }
        }
        if status.success() {
            Ok(String::from_utf8_lossy(&stdout).into_owned())
        } else {
            let detail = match first_line(&stderr) {
                s if s.is_empty() => first_line(&stdout),
                s => s,
            };
            Err(CtlError::Failed {
                status: describe(status),
                detail,
            })
        }
    }
}

/// Where a job's roster comes from.
#[derive(Debug)]
enum Source {
    /// Ask the backend (after a login).
    Fetch(Target),
    /// Already fetched (`roster:` requests).
    Fetched(SharedRoster),
}

#[derive(Debug)]
struct Job {
    user: String,
    domain: String,
    source: Source,
}

/// The syncs waiting for the worker: a pure value (no lock, no clock of its own), so its rules
/// are unit-tested. A job that runs has left the queue: logins of its user meanwhile queue
/// one more job, and later ones merge into that one.
#[derive(Debug)]
struct Queue {
    jobs: VecDeque<Job>,
    /// At most this many jobs wait.
    max: usize,
    /// Set by [`finish`]: no ejabberdctl call starts after this instant.
    closing: Option<Instant>,
}

/// What [`Queue::push`] did with a job.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Pushed {
    /// Queued behind the others.
    Queued,
    /// Merged into the waiting job of the same user (its roster source replaced).
    Merged,
    /// Dropped: the queue is full.
    Full,
    /// Dropped: the process is exiting.
    Closing,
}

/// What [`Queue::pop`] gives the worker.
#[derive(Debug)]
enum Next {
    /// Run this job.
    Run(Job),
    /// Nothing to do yet: wait for a push.
    Wait,
    /// Exiting and nothing (more) to run; `dropped` jobs were given up as the closing bound
    /// passed.
    Stop { dropped: usize },
}

impl Queue {
    fn new(max: usize) -> Self {
        Self {
            jobs: VecDeque::new(),
            max,
            closing: None,
        }
    }

    fn push(&mut self, job: Job) -> Pushed {
        if self.closing.is_some() {
            return Pushed::Closing;
        }
        if let Some(waiting) = self
            .jobs
            .iter_mut()
            .find(|j| j.user == job.user && j.domain.eq_ignore_ascii_case(&job.domain))
        {
            waiting.source = job.source;
            return Pushed::Merged;
        }
        if self.jobs.len() >= self.max {
            return Pushed::Full;
        }
        self.jobs.push_back(job);
        Pushed::Queued
    }

    /// The next job at `now`, in the order they were queued.
    fn pop(&mut self, now: Instant) -> Next {
        let mut dropped = 0;
        if let Some(until) = self.closing {
            if now >= until {
                dropped = self.jobs.len();
                self.jobs.clear();
            }
        }
        match (self.jobs.pop_front(), self.closing) {
            (Some(job), _) => Next::Run(job),
            (None, None) => Next::Wait,
            (None, Some(_)) => Next::Stop { dropped },
        }
    }
}

/// What the worker thread and the login hook share.
#[derive(Debug)]
struct Shared {
    queue: Mutex<Queue>,
    wake: Condvar,
    backend: Arc<dyn Backend>,
    db: Arc<Db>,
    ctl: Ejabberdctl,
    rules: RosterOptions,
    clock: SystemClock,
}

fn lock<T>(m: &Mutex<T>) -> MutexGuard<'_, T> {
    m.lock().unwrap_or_else(PoisonError::into_inner)
}

impl Shared {
    fn schedule(&self, job: Job) {
        let jid = logsafe::jid(&job.user, &job.domain);
        let pushed = lock(&self.queue).push(job);
        match pushed {
            Pushed::Queued => self.wake.notify_one(),
            Pushed::Merged => debug!("roster sync {jid}: already scheduled"),
            Pushed::Full => warn!(
                "roster sync {jid}: dropped, {MAX_QUEUED} syncs are already waiting; it runs \
                 at the next login"
            ),
            Pushed::Closing => debug!("roster sync {jid}: not scheduled, exiting"),
        }
    }

    /// The next job; `None` once closing and nothing is left (or the closing bound passed).
    fn next(&self) -> Option<Job> {
        let mut q = lock(&self.queue);
        loop {
            match q.pop(deadline::now()) {
                Next::Run(job) => return Some(job),
                Next::Wait => q = self.wake.wait(q).unwrap_or_else(PoisonError::into_inner),
                Next::Stop { dropped } => {
                    if dropped > 0 {
                        warn!(
                            "roster sync: exiting; {dropped} scheduled sync(s) not run (they \
                             run at the users' next login)"
                        );
                    }
                    return None;
                }
            }
        }
    }

    fn run(&self, job: Job) {
        let jid = logsafe::jid(&job.user, &job.domain);
        let roster = match job.source {
            Source::Fetched(r) => r,
            Source::Fetch(target) => match self.backend.sharedroster(&target, &job.user) {
                RosterReply::Roster(r) => r,
                RosterReply::Unavailable(why) => {
                    info!("roster sync {jid}: roster unavailable ({why}); tried again at the next login");
                    count(SyncResult::Failed);
                    return;
                }
            },
        };
        self.sync(&job.user, &job.domain, &roster);
    }

    fn sync(&self, user: &str, domain: &str, roster: &SharedRoster) {
        let ctl = Closing { shared: self };
        let result = sync_roster(
            &self.db,
            &ctl,
            &self.rules,
            user,
            domain,
            roster,
            self.clock.now(),
        );
        count(match &result {
            Ok(SyncOutcome::Synced { failed, .. }) if *failed > 0 => SyncResult::Failed,
            Ok(_) => SyncResult::Ok,
            Err(_) => SyncResult::Failed,
        });
        if let Err(e) = result {
            warn!(
                "roster sync {}: {e}; tried again at the next login",
                logsafe::jid(user, domain)
            );
        }
    }
}

/// ejabberdctl, refusing to start a call once the closing bound has passed.
#[derive(Debug)]
struct Closing<'a> {
    shared: &'a Shared,
}

impl Ctl for Closing<'_> {
    fn run(&self, args: &[&str]) -> Result<String, CtlError> {
        if let Some(until) = lock(&self.shared.queue).closing {
            if deadline::now() >= until {
                return Err(CtlError::Cancelled(
                    "xcauthd is exiting and its roster-timeout passed".into(),
                ));
            }
        }
        self.shared.ctl.run(args)
    }
}

/// The login hook: schedules a sync, never waits for it.
#[derive(Debug)]
struct Hook(Arc<Shared>);

impl AfterLogin for Hook {
    fn after_login(&self, _engine: &Engine, target: &Target, user: &str, domain: &str) {
        self.0.schedule(Job {
            user: user.to_owned(),
            domain: domain.to_owned(),
            source: Source::Fetch(target.clone()),
        });
    }
}

#[derive(Debug)]
struct Worker {
    shared: Arc<Shared>,
    thread: Mutex<Option<JoinHandle<()>>>,
    timeout: Duration,
}

/// The process's worker (one per process: the engine is built once).
static WORKER: OnceLock<Worker> = OnceLock::new();

/// The daemon's counters, when it keeps them: each sync counts into `roster_syncs`.
static METRICS: OnceLock<Arc<Metrics>> = OnceLock::new();

/// Counts the syncs of this process into `metrics` (the daemon's registry).
pub fn count_into(metrics: Arc<Metrics>) {
    let _ = METRICS.set(metrics);
}

fn count(result: SyncResult) {
    if let Some(m) = METRICS.get() {
        m.roster_sync(result);
    }
}

/// With `ejabberdctl=` set, starts the worker and returns `engine` with the login hook;
/// otherwise returns `engine` unchanged. `db` is the database the engine opened, if any (the
/// roster state needs one: it is opened here otherwise).
pub fn attach(config: &Config, engine: Engine, db: Option<Arc<Db>>) -> Engine {
    let Some(path) = &config.ejabberdctl else {
        return engine;
    };
    let db = match db {
        Some(db) => db,
        None => match assemble::open_db(config, true) {
            DbState::Open(db) => db,
            _ => {
                warn!(
                    "ejabberdctl is set but the database cannot be used: the shared roster is \
                     not synced into ejabberd"
                );
                return engine;
            }
        },
    };
    let shared = Arc::new(Shared {
        queue: Mutex::new(Queue::new(MAX_QUEUED)),
        wake: Condvar::new(),
        backend: engine.shared_backend(),
        db,
        ctl: Ejabberdctl::new(path.clone(), config.roster.timeout),
        rules: config.roster.clone(),
        clock: SystemClock,
    });
    let runner = Arc::clone(&shared);
    let thread = std::thread::Builder::new()
        .name("roster-sync".into())
        .spawn(move || {
            while let Some(job) = runner.next() {
                let outcome = std::panic::catch_unwind(std::panic::AssertUnwindSafe(|| {
                    runner.run(job);
                }));
                if outcome.is_err() {
                    log::error!("roster sync: internal error (panic); the worker goes on");
                }
                // The log is buffered and the serving loop flushes it only around requests:
                // a sync's lines must not wait for the next login.
                log::logger().flush();
            }
        });
    let thread = match thread {
        Ok(t) => t,
        Err(e) => {
            warn!("cannot start the roster sync thread: {e}; the shared roster is not synced");
            return engine;
        }
    };
    let worker = Worker {
        shared: Arc::clone(&shared),
        thread: Mutex::new(Some(thread)),
        timeout: config.roster.timeout,
    };
    if WORKER.set(worker).is_err() {
        warn!("roster sync worker started twice; the second is not used");
        return engine;
    }
    debug!(
        "roster sync into ejabberd through {} enabled",
        path.display()
    );
    engine.with_after_login(Arc::new(Hook(shared)))
}

/// Schedules a sync of a roster already fetched (the `roster:` request), when enabled.
pub fn schedule_fetched(user: &str, domain: &str, roster: &SharedRoster) {
    if let Some(w) = WORKER.get() {
        w.shared.schedule(Job {
            user: user.to_owned(),
            domain: domain.to_owned(),
            source: Source::Fetched(roster.clone()),
        });
    }
}

/// Syncs a roster already fetched in this thread and returns when done (`-R`); no-op when not
/// enabled. True when the sync ran.
pub fn sync_now(user: &str, domain: &str, roster: &SharedRoster) -> bool {
    match WORKER.get() {
        Some(w) => {
            w.shared.sync(user, domain, roster);
            true
        }
        None => false,
    }
}

/// Lets the worker finish the syncs already scheduled (bounded, see the module comment) and
/// waits for it. Called once, when the process is about to exit.
pub fn finish() {
    let Some(w) = WORKER.get() else { return };
    let Some(thread) = lock(&w.thread).take() else {
        return;
    };
    {
        let mut q = lock(&w.shared.queue);
        if !q.jobs.is_empty() {
            info!(
                "finishing {} scheduled roster sync(s) before exiting",
                q.jobs.len()
            );
        }
        q.closing = Some(deadline::now() + w.timeout);
    }
    w.shared.wake.notify_all();
    let _ = thread.join();
}

#[cfg(test)]
mod tests {
    use super::*;

    fn job(user: &str, domain: &str, body: &str) -> Job {
        Job {
            user: user.into(),
            domain: domain.into(),
            source: Source::Fetched(SharedRoster {
                entries: Vec::new(),
                body: body.into(),
            }),
        }
    }

    fn run(next: Next) -> (String, String, String) {
        match next {
            Next::Run(Job {
                user,
                domain,
                source: Source::Fetched(r),
            }) => (user, domain, r.body),
            other => panic!("expected a job to run, got {other:?}"),
        }
    }

    fn at(secs: u64) -> Instant {
        static BASE: OnceLock<Instant> = OnceLock::new();
        *BASE.get_or_init(deadline::now) + Duration::from_secs(secs)
    }

    #[test]
    fn logins_during_a_sync_queue_one_more_sync_not_many() {
        let mut q = Queue::new(MAX_QUEUED);
        assert_eq!(q.push(job("alice", "example.org", "r1")), Pushed::Queued);
        // The worker takes it: alice's sync runs.
        assert_eq!(run(q.pop(at(0))).2, "r1");
        // Five more logins of alice while it runs (one with the domain in other case), one of bob.
        assert_eq!(q.push(job("alice", "example.org", "r2")), Pushed::Queued);
        assert_eq!(q.push(job("bob", "example.org", "b1")), Pushed::Queued);
        for (domain, body) in [
            ("example.org", "r3"),
            ("EXAMPLE.org", "r4"),
            ("example.org", "r5"),
            ("example.org", "r6"),
        ] {
            assert_eq!(q.push(job("alice", domain, body)), Pushed::Merged);
        }
        // Another user name or domain is another job.
        assert_eq!(q.push(job("Alice", "example.org", "x")), Pushed::Queued);
        assert_eq!(q.push(job("alice", "other.example", "y")), Pushed::Queued);
        // One more sync of alice, with the newest roster, in her first place.
        assert_eq!(
            run(q.pop(at(0))),
            ("alice".into(), "example.org".into(), "r6".into())
        );
        assert_eq!(run(q.pop(at(0))).0, "bob");
        assert_eq!(run(q.pop(at(0))).0, "Alice");
        assert_eq!(run(q.pop(at(0))).1, "other.example");
        assert!(matches!(q.pop(at(0)), Next::Wait));
    }

    #[test]
    fn at_most_256_syncs_wait() {
        assert_eq!(MAX_QUEUED, 256);
        let mut q = Queue::new(MAX_QUEUED);
        for i in 0..MAX_QUEUED {
            assert_eq!(q.push(job(&format!("u{i}"), "d", "")), Pushed::Queued);
        }
        assert_eq!(q.push(job("late", "d", "")), Pushed::Full);
        // A user already waiting is merged even then.
        assert_eq!(q.push(job("u7", "d", "new")), Pushed::Merged);
        assert_eq!(q.jobs.len(), MAX_QUEUED);
        // Once one runs, there is room for one more.
        assert_eq!(run(q.pop(at(0))).0, "u0");
        assert_eq!(q.push(job("late", "d", "")), Pushed::Queued);
        assert_eq!(q.push(job("later", "d", "")), Pushed::Full);
        let order: Vec<String> = std::iter::from_fn(|| match q.pop(at(0)) {
            Next::Run(j) => Some(j.user),
            _ => None,
        })
        .collect();
        assert_eq!(order.len(), MAX_QUEUED);
        assert_eq!(order.first().map(String::as_str), Some("u1"));
        assert_eq!(order.last().map(String::as_str), Some("late"));
    }

    #[test]
    fn closing_runs_what_waits_until_the_bound_then_drops_the_rest() {
        let mut q = Queue::new(MAX_QUEUED);
        for user in ["a", "b", "c"] {
            q.push(job(user, "d", ""));
        }
        q.closing = Some(at(10));
        assert_eq!(q.push(job("d", "d", "")), Pushed::Closing);
        assert_eq!(run(q.pop(at(9))).0, "a");
        assert!(matches!(q.pop(at(10)), Next::Stop { dropped: 2 }));
        assert!(matches!(q.pop(at(11)), Next::Stop { dropped: 0 }));
        // Nothing waiting: stop at once, before the bound.
        let mut q = Queue::new(MAX_QUEUED);
        q.closing = Some(at(10));
        assert!(matches!(q.pop(at(0)), Next::Stop { dropped: 0 }));
    }
}
