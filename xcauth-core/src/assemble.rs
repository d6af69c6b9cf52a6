//! Building a ready [`Engine`] from a validated [`Config`]: the HTTP client
//! options, the credential cache (`cache-storage`) and the per-domain table
//! of the shared database. Used by xcauthd and by the PAM module, so both
//! read `xcauth.conf` the same way.

use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;
use std::time::Duration;

use std::io::ErrorKind;

use log::warn;

use crate::backend::jsxc::{ClientOptions, JsxcClient};
use crate::backend::CallBudget;
use crate::clock::{Clock, SystemClock};
use crate::config::{CacheStorage, Config, ConfigError, DbLocation};
use crate::db::{CacheSettings, Db, DbCache, DbOptions, DbThrottle, MemoryCache, SqliteDomains};
use crate::domains::{DomainRow, Domains};
use crate::engine::{Engine, GlobalBackend};
use crate::throttle::{self, MemoryStore, Throttle, ThrottleStore};
use crate::trust;

/// Where the engine will live; it decides what is worth keeping.
#[derive(Debug, Clone)]
pub enum Host {
    /// A long-running process (xcauthd, one-shots): memory cache and circuit
    /// breaker make sense.
    Daemon,
    /// One PAM call: nothing outlives the call, so a memory cache or a breaker
    /// would only cost time. `cache-storage=memory` acts as `none` here.
    /// Every backend request ends within `budget`.
    PerCall {
        /// The call's time budget (started by the caller once the password is in).
        budget: Arc<CallBudget>,
    },
}

/// A built engine and what it was built with (for a start-up log line).
#[derive(Debug)]
pub struct Assembly {
    /// The engine.
    pub engine: Engine,
    /// The cache in use: `none`, `memory` or `db`, with why when it is not
    /// the configured one.
    pub cache: String,
    /// The shared database, when one is open (admin commands, roster state).
    pub db: Option<Arc<Db>>,
    /// Where the brute-force throttle keeps its state (`off`, shared database, memory only).
    pub throttle: &'static str,
}

/// HTTP client options from the configuration, timed by `clock`.
pub fn client_options(config: &Config, host: &Host, clock: Arc<dyn Clock>) -> ClientOptions {
    ClientOptions {
        connect_timeout: config.timeout.connect,
        read_timeout: config.timeout.read,
        ca_file: config.ca_file.clone(),
        breaker_failures: match host {
            Host::Daemon => config.breaker_failures,
            Host::PerCall { .. } => 0,
        },
        breaker_cooldown: config.breaker_cooldown,
        budget: match host {
            Host::Daemon => None,
            Host::PerCall { budget } => Some(budget.clone()),
        },
        clock,
    }
}

fn cache_settings(config: &Config, cost: u32) -> CacheSettings {
    CacheSettings {
        query_ttl: config.cache_query_ttl,
        verification_ttl: config.cache_verification_ttl,
        unreachable_ttl: config.cache_unreachable_ttl,
        bcrypt_cost: cost,
    }
}

/// The longest a login waits for another process's lock on the shared
/// database, per operation; then it goes on without the cache (SQLite's own
/// writes take milliseconds, so only a stuck or hostile holder hits this).
pub const LOGIN_DB_WAIT: Duration = Duration::from_secs(1);

/// The shared database as far as this process could open it.
#[derive(Debug)]
pub enum DbState {
    /// No database file (and none needed): no per-domain table exists.
    Absent,
    /// Open.
    Open(Arc<Db>),
    /// The file exists but cannot be used; the reason is log-safe.
    Broken(String),
    /// The file, a companion or its directory could be changed by a user this
    /// process must not trust: its cache rows could let anyone in and its
    /// `domains` rows pick URL and secret. It is not opened at all (SQLite
    /// would run whatever views or WAL content its owner planted): no cache,
    /// no per-domain rows, so `served-domains` alone decides which domains the
    /// global backend serves.
    Untrusted {
        /// Why, log-safe.
        why: String,
    },
}

/// Opens the shared database when it is needed: always for `cache-storage=db`,
/// otherwise only if the file exists (its `domains` table may hold per-domain
/// settings). Failures are logged once.
pub fn open_db(config: &Config, need: bool) -> DbState {
    let opts = DbOptions {
        mode: config.db_mode,
        busy_timeout: LOGIN_DB_WAIT,
        ..DbOptions::default()
    };
    let path = match &config.db {
        DbLocation::Memory if need => {
            return match Db::open_memory() {
                Ok(db) => DbState::Open(Arc::new(db)),
                Err(e) => DbState::Broken(e.to_string()),
            }
        }
        DbLocation::Memory => return DbState::Absent,
        DbLocation::Path(path) => path,
    };
    // "Does not exist" must be certain before per-domain settings are
    // assumed absent: an unreadable directory is not an empty one.
    let exists = match std::fs::metadata(path) {
        Ok(_) => true,
        Err(e) if matches!(e.kind(), ErrorKind::NotFound | ErrorKind::NotADirectory) => false,
        Err(e) => {
            let why = format!("cannot check database {}: {e}", path.display());
            warn!("{why}; per-domain settings unknown: logins fail until this is fixed");
            return DbState::Broken(why);
        }
    };
    if !exists && !need {
        return DbState::Absent;
    }
    // Something that is no database at all (a directory, a device) is a broken
    // configuration, not an untrusted file: fail closed as for an unreadable one.
    if let Ok(meta) = std::fs::symlink_metadata(path) {
        if !meta.is_file() && !meta.file_type().is_symlink() {
            let why = format!("database {} is not a regular file", path.display());
            warn!("{why}; per-domain settings unknown: logins fail until this is fixed");
            return DbState::Broken(why);
        }
    }
    let euid = trust::euid();
    if let Err(why) = check_db_trust(path, euid, exists) {
        return untrusted(path, euid, why);
    }
    match Db::open(path, &opts) {
        Ok(db) => DbState::Open(Arc::new(db)),
        Err(e) if !exists => {
            warn!("{e}; continuing without the credential cache");
            DbState::Absent
        }
        Err(e) => {
            warn!("{e}; per-domain settings unknown: logins fail until this is fixed");
            DbState::Broken(e.to_string())
        }
    }
}

/// The database file, its `-wal`/`-shm` companions (when present) and the
/// directories up to `/` must be owned by root or `euid` and writable by
/// nobody else; the file's own directory not even with the sticky bit, as
/// anyone could create the companions there before SQLite does. The file is
/// not a symbolic link (its target's directory would escape the check).
fn check_db_trust(path: &Path, euid: u32, exists: bool) -> Result<(), String> {
    trust::check_directories(path, euid, trust::Parent::Strict)?;
    if exists {
        check_db_file(path, euid)?;
    }
    for suffix in ["-wal", "-shm"] {
        let mut companion = path.as_os_str().to_owned();
        companion.push(suffix);
        let companion = PathBuf::from(companion);
        match std::fs::symlink_metadata(&companion) {
            Err(e) if e.kind() == ErrorKind::NotFound => {}
            _ => check_db_file(&companion, euid)?,
        }
    }
    Ok(())
}

fn check_db_file(file: &Path, euid: u32) -> Result<(), String> {
    let meta = std::fs::symlink_metadata(file)
        .map_err(|e| format!("cannot check {}: {e}", file.display()))?;
    if meta.file_type().is_symlink() {
        return Err(format!("{} is a symbolic link", file.display()));
    }
    if !meta.is_file() {
        return Err(format!("{} is not a regular file", file.display()));
    }
    trust::check_owner_and_mode(&meta, euid, file)
}

/// Set once the "not trusted" warning was logged in this process.
static UNTRUSTED_WARNED: AtomicBool = AtomicBool::new(false);

/// An untrusted database: warned about once per process, never opened.
fn untrusted(path: &Path, euid: u32, why: String) -> DbState {
    if !UNTRUSTED_WARNED.swap(true, Ordering::Relaxed) {
        warn!(
            "database {} is not trusted: {why}; running without the credential cache and \
             without its per-domain settings (served-domains alone limits the domains the \
             global url serves) until it and its directory belong to root or uid {euid} and \
             only their owner can write them",
            path.display()
        );
    }
    DbState::Untrusted { why }
}

/// Stands in for a `domains` table that exists but cannot be read: every
/// lookup fails, so the engine fails closed instead of using the global URL.
#[derive(Debug)]
struct BrokenDomains(String);

impl Domains for BrokenDomains {
    fn lookup(&self, _xmppdomain: &str) -> Result<Option<DomainRow>, String> {
        Err(self.0.clone())
    }
}

/// Builds the engine `config` describes. Errors are configuration errors
/// (missing url/secret, unreadable ca-file).
pub fn engine(config: &Config, host: Host) -> Result<Assembly, ConfigError> {
    let (url, secret) = config.require_backend()?;
    if url.is_insecure() {
        // Only reachable with allow-insecure-http: the config refuses it otherwise.
        warn!("backend url {url} is plain http (allow-insecure-http is set): anyone on the network path can forge answers");
    }
    let clock: Arc<dyn Clock> = Arc::new(SystemClock);
    let options = client_options(config, &host, Arc::clone(&clock));
    let client = JsxcClient::new(&options).map_err(|e| ConfigError::Invalid {
        origin: crate::config::Origin::Default,
        key: "ca-file".into(),
        problem: e.to_string(),
    })?;
    let global = GlobalBackend {
        url: url.clone(),
        secret: secret.clone(),
    };
    let mut engine = Engine::new(global, Arc::new(client), clock.clone())
        .with_served_domains(config.served_domains.clone())
        .with_insecure_http(config.allow_insecure_http);
    let wants_db = config.cache_storage == CacheStorage::Db;
    let state = open_db(config, wants_db);
    if let DbState::Broken(why) = &state {
        engine = engine.with_domains(Arc::new(BrokenDomains(why.clone())));
    }
    let mut untrusted = None;
    let db = match state {
        DbState::Open(db) => Some(db),
        DbState::Untrusted { why } => {
            untrusted = Some(why);
            None
        }
        DbState::Absent | DbState::Broken(_) => None,
    };
    let cache = match (config.cache_storage, &host, &db) {
        (CacheStorage::Db, _, Some(db)) => {
            let settings = cache_settings(config, config.bcrypt_rounds.persistent);
            engine = engine.with_cache(Arc::new(DbCache::new(db.clone(), settings)));
            "db".to_owned()
        }
        (CacheStorage::Db, _, None) => match &untrusted {
            Some(why) => format!("none (database not trusted: {why})"),
            None => "none (database unavailable)".to_owned(),
        },
        (CacheStorage::Memory, Host::Daemon, _) => {
            let settings = cache_settings(config, config.bcrypt_rounds.memory);
            engine = engine.with_cache(Arc::new(MemoryCache::new(settings)));
            "memory".to_owned()
        }
        (CacheStorage::Memory, Host::PerCall { .. }, _) => {
            "none (a memory cache lasts one PAM call)".to_owned()
        }
        (CacheStorage::None, _, _) => "none".to_owned(),
    };
    if let Some(db) = &db {
        engine = engine.with_domains(Arc::new(SqliteDomains::new(db.clone())));
    }
    let throttle = build_throttle(config, &host, db.as_ref(), clock);
    let described = throttle.describe();
    if !config.throttle.is_off() {
        engine = engine.with_throttle(Arc::new(throttle));
    }
    Ok(Assembly {
        engine,
        cache,
        db,
        throttle: described,
    })
}

/// The brute-force throttle: its state in the shared database's `throttle` table when one is
/// open (so every process using the file counts together), with a memory copy. Without a
/// (trusted) database it lives in this process's memory only: for a PAM call that is the
/// process-wide store ([`throttle::process_memory`]), which outlives the call.
fn build_throttle(
    config: &Config,
    host: &Host,
    db: Option<&Arc<Db>>,
    clock: Arc<dyn Clock>,
) -> Throttle {
    let settings = config.throttle;
    let memory = match host {
        Host::Daemon => Arc::new(MemoryStore::new(settings.max_entries)),
        Host::PerCall { .. } => throttle::process_memory(settings.max_entries),
    };
    let shared = db.map(|db| {
        Arc::new(DbThrottle::new(db.clone(), settings.max_entries)) as Arc<dyn ThrottleStore>
    });
    Throttle::new(settings, clock, memory, shared)
}
