//! The shared-roster sync off the reply path (`ejabberdctl=`; docs/xcauth2.md §8).
//!
//! A login only puts a job in a bounded queue; one background thread fetches the user's shared
//! roster and runs [`xcauth_core::roster::sync_roster`], calling ejabberdctl with a timeout on
//! every call. Repeated logins of one user while their job waits are coalesced into that job;
//! a full queue drops the job with a warning (the next login schedules it again: the database
//! only marks a roster synced when every command succeeded).
//!
//! When the input ends (ejabberd stopping) or the daemon stops, [`finish`] lets the thread
//! finish the jobs already queued: no ejabberdctl call starts later than one `roster-timeout`
//! after that, and each call is bounded by its own timeout, so the process exits within about
//! twice `roster-timeout` (plus a roster request that had already started).

use std::collections::VecDeque;
use std::io::Read;
use std::os::unix::process::CommandExt;
use std::path::PathBuf;
use std::process::{Child, Command, ExitStatus, Stdio};
use std::sync::mpsc;
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

/// Syncs waiting at most; more are dropped (and redone at the user's next login).
const MAX_QUEUED: usize = 256;

/// Output kept from one ejabberdctl call (`srg_get_members` of a big group is the largest).
const MAX_OUTPUT: u64 = 4 << 20;

/// ejabberdctl at `path`, each call killed (with everything it started) after `timeout`.
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

fn reader(mut from: impl Read + Send + 'static) -> mpsc::Receiver<Vec<u8>> {
    let (tx, rx) = mpsc::channel();
    std::thread::spawn(move || {
        let mut buf = Vec::new();
        let _ = (&mut from).take(MAX_OUTPUT).read_to_end(&mut buf);
        // Drain the rest so the program never blocks on a full pipe.
        let _ = std::io::copy(&mut from, &mut std::io::sink());
        let _ = tx.send(buf);
    });
    rx
}

/// Kills the process group the call runs in (ejabberdctl is a shell script that starts an
/// Erlang VM: killing only the script would leave the VM running).
#[allow(unsafe_code)]
fn kill_group(child: &mut Child) {
    if let Ok(pid) = libc::pid_t::try_from(child.id()) {
        // SAFETY: kill(2) takes plain integers and touches no memory of this process; the
        // group is the child's own (process_group(0)), which it cannot leave before being
        // reaped, as we have not waited for it yet.
        unsafe {
            libc::kill(-pid, libc::SIGKILL);
        }
    }
    let _ = child.kill();
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
        let mut child = Command::new(&self.path)
            .args(args)
            .stdin(Stdio::null())
            .stdout(Stdio::piped())
            .stderr(Stdio::piped())
            .process_group(0)
            .spawn()
            .map_err(|e| CtlError::NotStarted(format!("{}: {e}", self.path.display())))?;
        let out = child.stdout.take().map(reader);
        let err = child.stderr.take().map(reader);
        let until = deadline::now() + self.timeout;
        let mut pause = Duration::from_millis(2);
        let status = loop {
            match child.try_wait() {
                Ok(Some(status)) => break Some(status),
                Ok(None) if deadline::now() >= until => break None,
                Ok(None) => {
                    std::thread::sleep(pause.min(deadline::left(until)));
                    pause = (pause * 2).min(Duration::from_millis(50));
                }
                Err(e) => {
                    warn!("ejabberdctl: cannot wait for pid {}: {e}", child.id());
                    break None;
                }
            }
        };
        let Some(status) = status else {
            kill_group(&mut child);
            let _ = child.wait();
            return Err(CtlError::TimedOut(self.timeout));
        };
        // The pipes close when the program and whatever it started are gone; something that
        // escaped its process group may hold them: wait briefly, never forever.
        let collect = |rx: Option<mpsc::Receiver<Vec<u8>>>| {
            rx.and_then(|rx| rx.recv_timeout(Duration::from_secs(1)).ok())
                .unwrap_or_default()
        };
        let stdout = collect(out);
        let stderr = collect(err);
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

#[derive(Debug, Default)]
struct Queue {
    jobs: VecDeque<Job>,
    /// Set by [`finish`]: no ejabberdctl call starts after this instant.
    closing: Option<Instant>,
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
        let mut q = lock(&self.queue);
        if q.closing.is_some() {
            debug!("roster sync {jid}: not scheduled, exiting");
            return;
        }
        if let Some(waiting) = q
            .jobs
            .iter_mut()
            .find(|j| j.user == job.user && j.domain.eq_ignore_ascii_case(&job.domain))
        {
            debug!("roster sync {jid}: already scheduled");
            waiting.source = job.source;
            return;
        }
        if q.jobs.len() >= MAX_QUEUED {
            warn!(
                "roster sync {jid}: dropped, {MAX_QUEUED} syncs are already waiting; it runs \
                 at the next login"
            );
            return;
        }
        q.jobs.push_back(job);
        drop(q);
        self.wake.notify_one();
    }

    /// The next job; `None` once closing and nothing is left (or the closing bound passed).
    fn next(&self) -> Option<Job> {
        let mut q = lock(&self.queue);
        loop {
            if let Some(until) = q.closing {
                if deadline::now() >= until && !q.jobs.is_empty() {
                    warn!(
                        "roster sync: exiting; {} scheduled sync(s) not run (they run at the \
                         users' next login)",
                        q.jobs.len()
                    );
                    q.jobs.clear();
                }
                return q.jobs.pop_front();
            }
            if let Some(job) = q.jobs.pop_front() {
                return Some(job);
            }
            q = self.wake.wait(q).unwrap_or_else(PoisonError::into_inner);
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
        queue: Mutex::new(Queue::default()),
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
