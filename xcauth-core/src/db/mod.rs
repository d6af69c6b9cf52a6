//! The shared SQLite database of xcauth 2 (docs/xcauth2.md §3): the
//! credential cache, per-domain settings and the shared-roster state.
//!
//! - [`Db`] opens the file (created mode 0600 unless told otherwise, before
//!   SQLite writes to it). Opening only reads when the file is already in WAL
//!   mode with every table: switching to WAL and creating missing tables (one
//!   write transaction) happen only when needed, so a login never queues
//!   behind another process's write lock just to open the file.
//! - Connections are pooled: a thread takes one for a single operation and
//!   puts it back, so no `rusqlite::Connection` is ever used by two threads at
//!   once. Writes run in `BEGIN IMMEDIATE` transactions and are retried when
//!   SQLite reports the database busy or locked, so saslauthd workers, Apache
//!   threads and xcauthd can share one file. Every operation (waits and
//!   retries together) gives up after the busy timeout.
//! - [`DbCache`] / [`MemoryCache`] are the `cache-storage=db|memory` caches,
//!   [`SqliteDomains`] the `domains` table, [`admin`] the administrator's
//!   operations (domains, cache entries, the GDPR helpers, throttle lock-outs);
//!   [`DbThrottle`] the brute-force throttle's shared `throttle` table.
//!
//! The file holds bcrypt hashes and backend secrets: it should belong to the
//! user xcauthd runs as (`xcauth` in the shipped units) with mode 0600. Logins
//! only use a file this process can trust (see `crate::assemble::open_db`):
//! owned by root or the process's own user, in a directory nobody else can
//! write to.

mod cache_flow;
mod db_cache;
mod memory_cache;
mod schema;
mod sqlite_domains;
mod throttle_table;
mod time;

pub mod admin;

#[cfg(test)]
mod bench_tests;
#[cfg(test)]
mod tests;

use std::fmt;
use std::fs;
use std::io;
use std::os::unix::fs::{OpenOptionsExt, PermissionsExt};
use std::path::{Path, PathBuf};
use std::sync::{Mutex, MutexGuard, PoisonError};
use std::time::Duration;

use log::{debug, warn};
use rusqlite::{Connection, ErrorCode, OpenFlags, Transaction, TransactionBehavior};

use crate::deadline;

/// The SQLite binding [`Db::run`] and [`Db::transaction`] hand out, re-exported
/// so callers (the roster sync, tests) use the same version.
pub use rusqlite;

pub use cache_flow::CacheSettings;
pub use db_cache::DbCache;
pub use memory_cache::MemoryCache;
pub use schema::TABLES;
pub use sqlite_domains::SqliteDomains;
pub use throttle_table::DbThrottle;
pub use time::{format_timestamp, from_unix_micros, parse_timestamp, unix_micros};

/// xcauth 2's default database path (`--db`).
pub const DEFAULT_PATH: &str = "/var/lib/xcauth/xcauth.sqlite3";

/// The path that means "a private in-memory database", as in SQLite.
pub const MEMORY_PATH: &str = ":memory:";

/// Idle connections kept per [`Db`]; busier moments open more and drop them after use.
const MAX_IDLE: usize = 16;

/// How often an operation is retried when SQLite answers "busy"/"locked" at
/// once (WAL snapshot conflicts skip the busy handler), within the busy timeout.
const BUSY_RETRIES: u32 = 8;

/// How a database file is opened.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct DbOptions {
    /// Permission bits of a newly created file (and its `-wal`/`-shm`
    /// files). An existing file keeps its mode. Default `0o600`.
    pub mode: u32,
    /// Open read-only: no table creation, no WAL switch; writes fail (a cache
    /// on such a database never stores anything). Default `false`.
    pub read_only: bool,
    /// The longest one operation (open, read, write transaction) waits for
    /// other connections' locks, retries included. Default 5 s.
    pub busy_timeout: Duration,
}

impl Default for DbOptions {
    fn default() -> Self {
        Self {
            mode: 0o600,
            read_only: false,
            busy_timeout: Duration::from_secs(5),
        }
    }
}

/// Why the database could not be opened or used. Every variant names the
/// database; none holds a password, hash or secret.
#[derive(Debug)]
#[non_exhaustive]
pub enum DbError {
    /// The file could not be created (missing directory, no permission, the
    /// parent is not a directory…).
    Create {
        /// The database path.
        path: PathBuf,
        /// The operating system's reason.
        source: io::Error,
    },
    /// SQLite could not open or initialise the database (not a database,
    /// corrupt, read-only, locked beyond the busy timeout…).
    Open {
        /// The database path or `:memory:`.
        db: String,
        /// SQLite's reason.
        source: rusqlite::Error,
    },
    /// A statement failed on an open database.
    Query {
        /// The database path or `:memory:`.
        db: String,
        /// SQLite's reason.
        source: rusqlite::Error,
    },
}

impl DbError {
    /// True when SQLite gave up waiting for another process's lock.
    pub fn is_busy(&self) -> bool {
        match self {
            DbError::Open { source, .. } | DbError::Query { source, .. } => is_busy(source),
            DbError::Create { .. } => false,
        }
    }
}

impl fmt::Display for DbError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            DbError::Create { path, source } => write!(
                f,
                "cannot create database {}: {source} (does the directory exist and is it writable by this user?)",
                path.display()
            ),
            DbError::Open { db, source } => write!(
                f,
                "cannot open database {db}: {source} (is it an SQLite file, and readable and writable by this user?)"
            ),
            DbError::Query { db, source } => write!(f, "database {db}: {source}"),
        }
    }
}

impl std::error::Error for DbError {
    fn source(&self) -> Option<&(dyn std::error::Error + 'static)> {
        match self {
            DbError::Create { source, .. } => Some(source),
            DbError::Open { source, .. } | DbError::Query { source, .. } => Some(source),
        }
    }
}

/// A handle on the xcauth database: opens connections, runs reads and
/// retried write transactions. Share it with `Arc`; it is `Send + Sync`.
pub struct Db {
    label: String,
    source: Source,
}

enum Source {
    File {
        path: PathBuf,
        flags: OpenFlags,
        busy_timeout: Duration,
        idle: Mutex<Vec<Connection>>,
    },
    /// One private in-memory database: every connection to `:memory:` would
    /// be a different database, so the one connection is behind a mutex.
    Memory(Mutex<Connection>),
}

impl fmt::Debug for Db {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Db")
            .field("db", &self.label)
            .finish_non_exhaustive()
    }
}

impl Db {
    /// Opens (creating if needed) the database at `path`; `:memory:` opens a
    /// private in-memory database. A new file gets `opts.mode` before SQLite
    /// writes to it. Unless read-only, switches to WAL and creates missing
    /// tables in one transaction.
    ///
    /// Errors are returned, never logged: the caller decides whether a
    /// missing cache is fatal (the daemon carries on without it).
    pub fn open(path: &Path, opts: &DbOptions) -> Result<Db, DbError> {
        if path.as_os_str() == MEMORY_PATH {
            return Db::open_memory();
        }
        let label = path.display().to_string();
        let created = if opts.read_only {
            false
        } else {
            create_file(path, opts.mode)?
        };
        let flags = if opts.read_only {
            OpenFlags::SQLITE_OPEN_READ_ONLY | OpenFlags::SQLITE_OPEN_NO_MUTEX
        } else {
            OpenFlags::SQLITE_OPEN_READ_WRITE | OpenFlags::SQLITE_OPEN_NO_MUTEX
        };
        let open_err = |source| DbError::Open {
            db: label.clone(),
            source,
        };
        let mut conn = connect(path, flags, opts.busy_timeout).map_err(open_err)?;
        // SQLite falls back to read-only when the file is not writable by
        // this user (e.g. a group-readable file opened by a PAM host).
        let read_only = opts.read_only || conn.is_readonly("main").map_err(open_err)?;
        if read_only {
            // Fails here (not on the first login) if the file is not a database.
            schema::column_names(&conn, "authcache").map_err(open_err)?;
        } else {
            initialise(&mut conn, &label, opts.busy_timeout).map_err(open_err)?;
            if created {
                restrict_sidecars(path, opts.mode);
            }
        }
        debug!(
            "database {label} opened{}",
            if read_only { " read-only" } else { "" }
        );
        Ok(Db {
            label,
            source: Source::File {
                path: path.to_owned(),
                flags,
                busy_timeout: opts.busy_timeout,
                idle: Mutex::new(vec![conn]),
            },
        })
    }

    /// A private in-memory database with the full schema (`--db=:memory:`).
    pub fn open_memory() -> Result<Db, DbError> {
        let label = MEMORY_PATH.to_owned();
        let open_err = |source| DbError::Open {
            db: label.clone(),
            source,
        };
        let mut conn = Connection::open_in_memory().map_err(open_err)?;
        let tx = conn.transaction().map_err(open_err)?;
        schema::create_missing(&tx).map_err(open_err)?;
        tx.commit().map_err(open_err)?;
        Ok(Db {
            label,
            source: Source::Memory(Mutex::new(conn)),
        })
    }

    /// The path, or `:memory:`, for messages.
    pub fn label(&self) -> &str {
        &self.label
    }

    /// The file path; `None` for an in-memory database.
    pub fn path(&self) -> Option<&Path> {
        match &self.source {
            Source::File { path, .. } => Some(path),
            Source::Memory(_) => None,
        }
    }

    /// Runs `f` on a connection in autocommit mode (for reads and
    /// single-statement writes), retrying on "busy"/"locked".
    pub fn run<T>(
        &self,
        mut f: impl FnMut(&Connection) -> rusqlite::Result<T>,
    ) -> Result<T, DbError> {
        self.with_conn(|conn| f(conn))
    }

    /// Runs `f` inside a `BEGIN IMMEDIATE` transaction and commits it; on
    /// "busy"/"locked" the whole transaction is rolled back and retried, so
    /// `f` may run more than once and must not have other side effects.
    pub fn transaction<T>(
        &self,
        mut f: impl FnMut(&Transaction<'_>) -> rusqlite::Result<T>,
    ) -> Result<T, DbError> {
        self.with_conn(|conn| {
            let tx = conn.transaction_with_behavior(TransactionBehavior::Immediate)?;
            let value = f(&tx)?;
            tx.commit()?;
            Ok(value)
        })
    }

    fn with_conn<T>(
        &self,
        mut op: impl FnMut(&mut Connection) -> rusqlite::Result<T>,
    ) -> Result<T, DbError> {
        let query_err = |source| DbError::Query {
            db: self.label.clone(),
            source,
        };
        match &self.source {
            Source::Memory(conn) => op(&mut lock(conn)).map_err(query_err),
            Source::File {
                path,
                flags,
                busy_timeout,
                idle,
            } => {
                let taken = lock(idle).pop();
                let mut conn = match taken {
                    Some(conn) => conn,
                    None => {
                        connect(path, *flags, *busy_timeout).map_err(|source| DbError::Open {
                            db: self.label.clone(),
                            source,
                        })?
                    }
                };
                let result = retry_busy(&self.label, *busy_timeout, &mut conn, |c| op(c));
                // A connection is only reused after a clean operation: after
                // an error its state (open transaction, broken file) is suspect.
                if result.is_ok() {
                    let mut idle = lock(idle);
                    if idle.len() < MAX_IDLE {
                        idle.push(conn);
                    }
                }
                result.map_err(query_err)
            }
        }
    }
}

/// Locks `m`, recovering from poisoning: the guarded values (connections)
/// hold no invariant a panicking holder could have broken halfway.
fn lock<T>(m: &Mutex<T>) -> MutexGuard<'_, T> {
    m.lock().unwrap_or_else(PoisonError::into_inner)
}

fn is_busy(e: &rusqlite::Error) -> bool {
    matches!(
        e.sqlite_error_code(),
        Some(ErrorCode::DatabaseBusy | ErrorCode::DatabaseLocked)
    )
}

/// Runs `op` on `conn` until it succeeds, fails for another reason, or
/// `budget` is spent: SQLite's busy handler waits at most the time left, and
/// an immediate "busy" is retried after a short pause while time is left.
fn retry_busy<T>(
    label: &str,
    budget: Duration,
    conn: &mut Connection,
    mut op: impl FnMut(&mut Connection) -> rusqlite::Result<T>,
) -> rusqlite::Result<T> {
    let until = deadline::now() + budget;
    let mut attempt = 0;
    loop {
        let left = deadline::left(until);
        conn.busy_timeout(left)?;
        match op(conn) {
            Err(e) if is_busy(&e) && attempt < BUSY_RETRIES && !left.is_zero() => {
                attempt += 1;
                debug!("database {label} busy ({e}), retry {attempt}/{BUSY_RETRIES}");
                let pause = Duration::from_millis(2u64 << attempt.min(7));
                std::thread::sleep(pause.min(deadline::left(until)));
            }
            other => return other,
        }
    }
}

fn connect(path: &Path, flags: OpenFlags, busy_timeout: Duration) -> rusqlite::Result<Connection> {
    let conn = Connection::open_with_flags(path, flags)?;
    conn.busy_timeout(busy_timeout)?;
    // Our schema has no views or triggers: nothing a file's schema defines
    // may call functions with side effects.
    conn.execute_batch("PRAGMA trusted_schema = OFF")?;
    Ok(conn)
}

/// WAL (persistent in the file) and missing tables. Both are writes, so they
/// only happen when the file needs them: an initialised file is only read.
fn initialise(conn: &mut Connection, label: &str, budget: Duration) -> rusqlite::Result<()> {
    retry_busy(label, budget, conn, |conn| {
        let mode: String = conn.query_row("PRAGMA journal_mode", [], |r| r.get(0))?;
        if mode.eq_ignore_ascii_case("wal") {
            return Ok(());
        }
        let mode: String = conn.query_row("PRAGMA journal_mode=WAL", [], |r| r.get(0))?;
        if !mode.eq_ignore_ascii_case("wal") {
            warn!("database {label}: cannot switch to WAL (journal mode is {mode}); concurrent access will be slower");
        }
        Ok(())
    })?;
    let complete = retry_busy(label, budget, conn, |conn| schema::all_tables_exist(conn))?;
    if !complete {
        retry_busy(label, budget, conn, |conn| {
            let tx = conn.transaction_with_behavior(TransactionBehavior::Immediate)?;
            schema::create_missing(&tx)?;
            tx.commit()
        })?;
    }
    schema::warn_about_missing_columns(conn, label)
}

/// Creates `path` with exactly `mode` if it does not exist. True if this call
/// created it. An empty file is a valid, empty SQLite database.
fn create_file(path: &Path, mode: u32) -> Result<bool, DbError> {
    let created = fs::OpenOptions::new()
        .write(true)
        .create_new(true)
        .mode(mode)
        .open(path);
    let file = match created {
        Ok(file) => file,
        Err(e) if e.kind() == io::ErrorKind::AlreadyExists => return Ok(false),
        Err(source) => {
            return Err(DbError::Create {
                path: path.to_owned(),
                source,
            })
        }
    };
    // The umask may have cleared bits of `mode` (e.g. group read): set it exactly.
    file.set_permissions(fs::Permissions::from_mode(mode))
        .map_err(|source| DbError::Create {
            path: path.to_owned(),
            source,
        })?;
    debug!("database {} created with mode {mode:o}", path.display());
    Ok(true)
}

/// SQLite gives `-wal`/`-shm` the database file's mode itself; this makes it
/// explicit for a file created here (best effort, they may not exist yet).
fn restrict_sidecars(path: &Path, mode: u32) {
    for suffix in ["-wal", "-shm"] {
        let mut side = path.as_os_str().to_owned();
        side.push(suffix);
        let side = PathBuf::from(side);
        if side.exists() {
            if let Err(e) = fs::set_permissions(&side, fs::Permissions::from_mode(mode)) {
                debug!("cannot set mode {mode:o} on {}: {e}", side.display());
            }
        }
    }
}
