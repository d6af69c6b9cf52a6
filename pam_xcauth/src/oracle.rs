//! Who answers the module's three questions (password, existence, groups): the core
//! [`Engine`] built for this one call ("in-process"), or a running xcauthd over its Unix socket
//! (`socket=`).
//!
//! In-process, everything is built inside the PAM call and dropped before it returns: the HTTP
//! client (whose drop joins reqwest's runtime thread), the optional SQLite cache, the engine.
//! The one thing kept between calls is the core's TLS configuration (the parsed system trust
//! store, `xcauth_core::backend::jsxc`): plain data in a static, no thread, no open file, no
//! lock held, so it is safe to inherit across `fork()`. A token or cache login never builds
//! the client and so starts no thread at all.

use std::os::fd::BorrowedFd;
use std::os::unix::fs::OpenOptionsExt;
use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::time::Duration;

use xcauth_core::assemble::{self, Host};
use xcauth_core::backend::CallBudget;
use xcauth_core::config::{Config, RawConfig};
use xcauth_core::pamsock::{Connection, PamReply, PamRequest};
use xcauth_core::trust;
use xcauth_core::vocab::{
    AuthDecision, DaemonCause, Login, LoginRules, NameMatch, Unavailable, UserExists,
};
use xcauth_core::{Engine, Password, SystemClock};

/// Answers the module's questions for one PAM call, in the core's own terms.
pub trait Oracle {
    /// A short description for debug lines (`in-process url=…`, `socket=…`).
    fn describe(&self) -> String;
    /// Starts the call's time budget (the flow calls it once the password is in). An oracle
    /// whose clock starts with its first question needs nothing here.
    fn start_budget(&mut self) {}
    /// Checks `password` (or a token) for `user@domain` from `rhost` (`PAM_RHOST`, which the
    /// throttle counts failures by). The name must spell the account exactly. With `need_uid`
    /// the answer must say which account logged in, so the credential cache is skipped.
    fn auth(
        &mut self,
        user: &str,
        domain: &str,
        password: &Password,
        need_uid: bool,
        rhost: Option<&str>,
    ) -> Login;
    /// Does `user@domain` exist?
    fn isuser(&mut self, user: &str, domain: &str) -> UserExists;
    /// The Nextcloud group display names of exactly the account `uid` (on the backend that
    /// serves `domain`), or why they are unknown.
    fn groups(&mut self, uid: &str, domain: &str) -> Result<Vec<String>, Unavailable>;
}

/// Lets the flow take either oracle chosen at run time.
impl Oracle for Box<dyn Oracle> {
    fn describe(&self) -> String {
        (**self).describe()
    }
    fn start_budget(&mut self) {
        (**self).start_budget();
    }
    fn auth(&mut self, u: &str, d: &str, p: &Password, need_uid: bool, r: Option<&str>) -> Login {
        (**self).auth(u, d, p, need_uid, r)
    }
    fn isuser(&mut self, u: &str, d: &str) -> UserExists {
        (**self).isuser(u, d)
    }
    fn groups(&mut self, u: &str, d: &str) -> Result<Vec<String>, Unavailable> {
        (**self).groups(u, d)
    }
}

/// What the socket oracle asks of the system and only libc answers. The answers come from
/// `ffi`, the one module allowed `unsafe`, which hands them down here.
#[derive(Debug, Clone, Copy)]
pub struct Lookups {
    /// The uid of the user called `name` (NSS): `Ok(None)` when there is no such user.
    pub user_id: fn(name: &str) -> Result<Option<u32>, String>,
    /// The uid of the process on the other end of a connected Unix socket.
    pub peer_uid: fn(fd: BorrowedFd<'_>) -> Result<u32, String>,
}

/// Reads the configuration and builds the engine for one call, exactly as
/// xcauthd would (cache, per-domain settings), minus what cannot outlive a
/// call (memory cache, circuit breaker). Errors are configuration problems
/// (→ `PAM_SERVICE_ERR`), with the path and what to fix.
pub fn in_process(config_path: &Path, budget: Duration) -> Result<InProcess, String> {
    // Started by the flow once the password is in: the user's typing time is not the
    // backend's (a budget used up while typing would otherwise look like an outage).
    let call_budget = Arc::new(CallBudget::new(budget, Arc::new(SystemClock)));
    let raw = read_config(config_path)?;
    let config = Config::resolve(&[raw]).map_err(|e| e.to_string())?;
    let (url, _) = config
        .require_backend()
        .map_err(|e| format!("{}: {e}", config_path.display()))?;
    let url_host = url.url().host_str().unwrap_or("?").to_owned();
    // Cheap: reqwest's client (TLS roots, runtime thread) is only built on the
    // first backend call, so a token login never pays for it.
    let built = assemble::engine(
        &config,
        Host::PerCall {
            budget: call_budget.clone(),
        },
    )
    .map_err(|e| format!("{}: {e}", config_path.display()))?;
    Ok(InProcess {
        engine: built.engine,
        budget: call_budget,
        summary: format!(
            "in-process config={} url_host={url_host} timeout={}s,{}s budget={}s cache={} \
             throttle={}",
            config_path.display(),
            config.timeout.connect.as_secs(),
            config.timeout.read.as_secs(),
            budget.as_secs(),
            built.cache,
            built.throttle.replace(' ', "_"),
        ),
    })
}

/// Opens the settings file once and parses what that descriptor holds, so the file checked
/// is the file read. It holds the API secret and decides who may log in, so it must be a
/// regular file (not a symbolic link) owned by root or by the user the host runs as, not
/// writable by group or others, not readable by everyone (docs/pam.md §6), in directories that
/// only root or that user can change, up to `/`.
pub fn read_config(path: &Path) -> Result<RawConfig, String> {
    let shown = path.display();
    let euid = trust::euid();
    trust::check_directories(path, euid, trust::Parent::Ancestor)
        .map_err(|why| format!("config file {shown} refused: {why}"))?;
    let file = std::fs::OpenOptions::new()
        .read(true)
        // A FIFO planted in its place must not block the call.
        .custom_flags(libc::O_NOFOLLOW | libc::O_NONBLOCK)
        .open(path)
        .map_err(|e| {
            if e.raw_os_error() == Some(libc::ELOOP) {
                format!(
                    "config file {shown} is a symbolic link: refused; \
                     point config= at the file itself"
                )
            } else {
                format!("cannot open config file {shown}: {e}")
            }
        })?;
    let meta = file
        .metadata()
        .map_err(|e| format!("cannot check config file {shown}: {e}"))?;
    check_config_metadata(&meta, euid, path)?;
    RawConfig::parse_reader(file, path).map_err(|e| e.to_string())
}

/// The rules of [`read_config`] for the opened file itself.
fn check_config_metadata(meta: &std::fs::Metadata, euid: u32, path: &Path) -> Result<(), String> {
    use std::os::unix::fs::MetadataExt;
    let shown = path.display();
    if !meta.is_file() {
        return Err(format!("{shown} is not a regular file"));
    }
    if meta.uid() != 0 && meta.uid() != euid {
        return Err(format!(
            "{shown} must be owned by root or the user running the service (owner uid {})",
            meta.uid()
        ));
    }
    let mode = meta.mode() & 0o777;
    if mode & 0o022 != 0 {
        return Err(format!(
            "{shown} is writable by group or others (mode {mode:04o}): chmod 0640 or 0600"
        ));
    }
    if mode & 0o004 != 0 {
        return Err(format!(
            "{shown} holds the API secret but is readable by everyone (mode {mode:04o}): \
             chmod 0640 and give the service's group read access, or use socket="
        ));
    }
    Ok(())
}

/// The core engine, for one call.
#[derive(Debug)]
pub struct InProcess {
    engine: Engine,
    budget: Arc<CallBudget>,
    summary: String,
}

impl Oracle for InProcess {
    fn describe(&self) -> String {
        self.summary.clone()
    }

    fn start_budget(&mut self) {
        self.budget.start();
    }

    fn auth(
        &mut self,
        user: &str,
        domain: &str,
        password: &Password,
        need_uid: bool,
        rhost: Option<&str>,
    ) -> Login {
        let rules = LoginRules {
            names: NameMatch::Exact,
            need_uid,
            remote: rhost,
        };
        self.engine.login(user, domain, password, rules)
    }

    fn isuser(&mut self, user: &str, domain: &str) -> UserExists {
        self.engine.isuser(user, domain)
    }

    fn groups(&mut self, uid: &str, domain: &str) -> Result<Vec<String>, Unavailable> {
        self.engine.groups_of_account(uid, domain)
    }
}

/// A running xcauthd behind a Unix socket. One connection per PAM call, opened on first use
/// and reused for follow-up questions; every exchange shares the call's timeout budget.
#[derive(Debug)]
pub struct Socket {
    path: PathBuf,
    timeout: Duration,
    owner: u32,
    peer_uid: fn(BorrowedFd<'_>) -> Result<u32, String>,
    conn: Option<Connection>,
}

impl Socket {
    /// Nothing is connected until the first question. The socket file, and the process
    /// serving it (`lookups.peer_uid`), must be root or uid `owner`.
    pub fn new(path: &Path, timeout: Duration, owner: u32, lookups: Lookups) -> Self {
        Self {
            path: path.to_path_buf(),
            timeout,
            owner,
            peer_uid: lookups.peer_uid,
            conn: None,
        }
    }

    fn ask(&mut self, req: &PamRequest) -> Result<PamReply, String> {
        if self.conn.is_none() {
            check_socket_owner(&self.path, self.owner)?;
            let conn = Connection::open(&self.path, self.timeout).map_err(|e| e.to_string())?;
            // The file check above and the connect are two look-ups of the path; the peer's
            // credentials belong to the socket actually connected.
            let peer = (self.peer_uid)(conn.socket())
                .map_err(|e| format!("cannot check who serves {}: {e}", self.path.display()))?;
            if peer != 0 && peer != self.owner {
                return Err(format!(
                    "refusing socket={}: it is served by uid {peer}, not by root or the \
                     socket_owner= user",
                    self.path.display()
                ));
            }
            self.conn = Some(conn);
        }
        let Some(conn) = self.conn.as_mut() else {
            return Err("not connected".into());
        };
        let reply = conn.ask(req).map_err(|e| e.to_string());
        if reply.is_err() {
            // Whatever went wrong, the stream may be out of step: do not reuse it.
            self.conn = None;
        }
        reply
    }
}

/// A password goes only to a socket that root or the daemon's user made: anybody else who
/// managed to put a socket at that path (a stale directory, a wrong unit) could collect them.
pub fn check_socket_owner(path: &Path, owner: u32) -> Result<(), String> {
    use std::os::unix::fs::{FileTypeExt, MetadataExt};
    let meta = std::fs::metadata(path)
        .map_err(|e| format!("cannot connect to {}: {e}", path.display()))?;
    if !meta.file_type().is_socket() {
        return Err(format!(
            "refusing socket={}: not a Unix socket",
            path.display()
        ));
    }
    if meta.uid() != 0 && meta.uid() != owner {
        return Err(format!(
            "refusing socket={}: owned by uid {}, not by root or socket_owner (uid {owner})",
            path.display(),
            meta.uid()
        ));
    }
    Ok(())
}

impl Oracle for Socket {
    fn describe(&self) -> String {
        format!(
            "socket={} timeout={}s",
            self.path.display(),
            self.timeout.as_secs()
        )
    }

    fn auth(
        &mut self,
        user: &str,
        domain: &str,
        password: &Password,
        need_uid: bool,
        rhost: Option<&str>,
    ) -> Login {
        let req = PamRequest::Auth {
            user: user.to_owned(),
            domain: domain.to_owned(),
            password: password.clone(),
            need_uid,
            rhost: rhost.unwrap_or_default().to_owned(),
        };
        let (decision, uid) = match self.ask(&req) {
            Ok(PamReply::Accepted { via, uid }) => (AuthDecision::Accepted(via), uid),
            Ok(PamReply::Rejected) => (AuthDecision::Rejected, None),
            Ok(other) => (AuthDecision::Unavailable(not_answered(other)), None),
            Err(e) => (AuthDecision::Unavailable(not_asked(e)), None),
        };
        Login { decision, uid }
    }

    fn isuser(&mut self, user: &str, domain: &str) -> UserExists {
        let req = PamRequest::IsUser {
            user: user.to_owned(),
            domain: domain.to_owned(),
        };
        match self.ask(&req) {
            Ok(PamReply::Exists) => UserExists::Yes,
            Ok(PamReply::NoSuchUser) => UserExists::No,
            Ok(other) => UserExists::Unknown(not_answered(other)),
            Err(e) => UserExists::Unknown(not_asked(e)),
        }
    }

    fn groups(&mut self, uid: &str, domain: &str) -> Result<Vec<String>, Unavailable> {
        let req = PamRequest::Groups {
            uid: uid.to_owned(),
            domain: domain.to_owned(),
        };
        match self.ask(&req) {
            Ok(PamReply::Groups(groups)) => Ok(groups),
            Ok(other) => Err(not_answered(other)),
            Err(e) => Err(not_asked(e)),
        }
    }
}

/// xcauthd answered, but not with an answer to the question: it said the backend is
/// unavailable (its reason is kept as it came over the socket), or it sent a reply that
/// belongs to another question.
fn not_answered(reply: PamReply) -> Unavailable {
    Unavailable::Daemon(match reply {
        PamReply::Unavailable(why) => DaemonCause::Said(why),
        other => DaemonCause::UnexpectedReply(format!("{other:?}")),
    })
}

/// xcauthd could not be asked (or did not answer); `why` is the whole log-safe reason.
fn not_asked(why: String) -> Unavailable {
    Unavailable::Daemon(DaemonCause::NotAsked(why))
}

#[cfg(test)]
mod permission_tests {
    use std::os::unix::fs::PermissionsExt;

    use super::read_config;

    fn chmod(path: &std::path::Path, mode: u32) {
        std::fs::set_permissions(path, std::fs::Permissions::from_mode(mode)).unwrap();
    }

    #[test]
    fn config_file_permissions() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("xcauth.conf");
        std::fs::write(&path, "url=https://x/\nsecret=s\n").unwrap();
        for ok in [0o600, 0o640, 0o400] {
            chmod(&path, ok);
            let raw = read_config(&path);
            assert!(
                raw.as_ref().is_ok_and(|r| r.get("url").is_some()),
                "{ok:o}: {raw:?}"
            );
        }
        chmod(&path, 0o644);
        assert!(read_config(&path)
            .unwrap_err()
            .contains("readable by everyone"));
        chmod(&path, 0o660);
        assert!(read_config(&path)
            .unwrap_err()
            .contains("writable by group"));
        chmod(&path, 0o602);
        assert!(read_config(&path).is_err());
        assert!(read_config(dir.path())
            .unwrap_err()
            .contains("not a regular file"));
        let e = read_config(&dir.path().join("missing")).unwrap_err();
        assert!(e.starts_with("cannot open config file "), "{e}");
    }

    #[test]
    fn links_and_open_directories_are_refused() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("xcauth.conf");
        std::fs::write(&path, "url=https://x/\nsecret=s\n").unwrap();
        chmod(&path, 0o600);
        let link = dir.path().join("link.conf");
        std::os::unix::fs::symlink(&path, &link).unwrap();
        let e = read_config(&link).unwrap_err();
        assert!(e.contains("is a symbolic link: refused"), "{e}");

        let open = dir.path().join("open");
        std::fs::create_dir(&open).unwrap();
        let inner = open.join("xcauth.conf");
        std::fs::copy(&path, &inner).unwrap();
        chmod(&inner, 0o600);
        chmod(&open, 0o777);
        let e = read_config(&inner).unwrap_err();
        assert!(
            e.contains("is writable by group or others (mode 0777)"),
            "{e}"
        );
        chmod(&open, 0o755);
        assert!(read_config(&inner).is_ok());
    }
}
