//! A real Nextcloud 32 for the end-to-end tests: the server shipped in
//! `../shared/peers/nextcloud-32.0.1-xcauth-test.tar.xz` (or the tarball named by
//! `XCAUTH_NEXTCLOUD_TARBALL`), run by PHP's built-in web server on loopback.
//!
//! * [`template`]: the server installed once (SQLite) with a fixed set of accounts, groups and
//!   app passwords ([`ADMIN`], [`SERVICE`], [`ALICE`], …). It is cached under
//!   `target/xcauth-nextcloud/<tarball sha256>-r<RECIPE>/`, so a second test run skips the
//!   install; an `flock` keeps two processes from building it at once.
//! * [`Nextcloud`]: a test's own copy of the template's state (its `config/` folder and its
//!   data folder with the SQLite database) in the test's scratch directory, served by `php -S`
//!   from the template's code folder (shared, never written: `NEXTCLOUD_CONFIG_DIR` names the
//!   copy's config) in a process group of its own, stopped on drop. Helpers change the copy with `occ` (maintenance mode, allow-list,
//!   trusted proxies, app passwords, passwords) and stop and start the server.
//! * [`Request`] and [`Reply`]: raw HTTP/1.1 requests from any loopback source address, so a
//!   test sees exactly what the server answers.
//!
//! See `docs/nextcloud.md` for what the server answers and `docs/testing.md` for the suite.
#![allow(
    clippy::unwrap_used,
    clippy::expect_used,
    clippy::missing_panics_doc,
    clippy::print_stderr
)] // test support

use std::fs::File;
use std::io::{self, Read};
use std::net::SocketAddr;
use std::os::unix::process::CommandExt;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Output, Stdio};
use std::sync::OnceLock;
use std::time::{Duration, Instant};

use serde_json::Value;
use sha2::Digest;

use crate::machine::{reserve_port, PortLease};
use crate::support::{self, require_program, Scratch};

mod http;

pub use http::{send, try_send, Reply, Request};

/// The environment variable naming the Nextcloud server tarball.
pub const TARBALL_ENV: &str = "XCAUTH_NEXTCLOUD_TARBALL";

/// Where Nextcloud looks for its `config.php` instead of `<code>/config/`.
const CONFIG_DIR_ENV: &str = "NEXTCLOUD_CONFIG_DIR";

/// The tarball's file name beside the workspace (`../shared/peers/`).
const TARBALL_NAME: &str = "nextcloud-32.0.1-xcauth-test.tar.xz";

/// The version of the set-up recipe in [`build_template`]: change it whenever the recipe
/// changes, so cached templates made by an older recipe are not reused.
const RECIPE: u32 = 3;

/// How long one `occ` call may take (it is killed after that).
const OCC_LIMIT_SECS: u32 = 300;

/// How long a started server may take to answer `status.php`.
const START_LIMIT: Duration = Duration::from_secs(120);

/// A group of the template.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Group {
    /// The group id (what the OCS API lists a user's groups by).
    pub id: &'static str,
    /// Its display name, different from the id.
    pub display_name: &'static str,
}

/// `staff`, "Staff Team": alice, dave.
pub const STAFF: Group = Group {
    id: "staff",
    display_name: "Staff Team",
};
/// `readers`, "Book Club": alice, joerg.
pub const READERS: Group = Group {
    id: "readers",
    display_name: "Book Club",
};
/// `floor2`, "Second Floor": bob; carol is its group admin.
pub const FLOOR2: Group = Group {
    id: "floor2",
    display_name: "Second Floor",
};
/// `2fa`, "Two-Factor Required": erin. Two-factor authentication is enforced for it.
pub const TWO_FACTOR: Group = Group {
    id: "2fa",
    display_name: "Two-Factor Required",
};

/// Every group the template has, besides Nextcloud's own `admin`.
pub const GROUPS: [Group; 4] = [STAFF, READERS, FLOOR2, TWO_FACTOR];

/// An account of the template.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Account {
    /// The user id (also its login name).
    pub id: &'static str,
    /// Its login password.
    pub password: &'static str,
    /// Its display name; `None`: Nextcloud shows the id.
    pub display_name: Option<&'static str>,
    /// Its e-mail address.
    pub email: Option<&'static str>,
    /// The ids of its groups, in the order Nextcloud lists them (by id).
    pub groups: &'static [&'static str],
}

impl Account {
    /// The display name Nextcloud answers: the set one, else the id.
    pub fn shown_name(&self) -> &'static str {
        self.display_name.unwrap_or(self.id)
    }
}

/// The administrator made by the install.
pub const ADMIN: Account = Account {
    id: "admin",
    password: "admin-Pass-2026",
    display_name: None,
    email: None,
    groups: &["admin"],
};
/// The service account a backend would use: an administrator with an app password
/// ([`AppPasswords::service`]).
pub const SERVICE: Account = Account {
    id: "xcauth-service",
    password: "service-Pass-2026",
    display_name: Some("xcauth service"),
    email: None,
    groups: &["admin"],
};
/// A plain user in two groups, with a display name, an e-mail address and two app passwords.
pub const ALICE: Account = Account {
    id: "alice",
    password: "alice-Pass-2026",
    display_name: Some("Alice Liddell"),
    email: Some("alice@example.org"),
    groups: &["readers", "staff"],
};
/// A user without display name or e-mail address, in `floor2`.
pub const BOB: Account = Account {
    id: "bob",
    password: "bob-Pass-2026",
    display_name: None,
    email: None,
    groups: &["floor2"],
};
/// A user whose password and display name are not ASCII.
pub const JOERG: Account = Account {
    id: "joerg",
    password: "Grüße-Ωmega-密码-2026",
    display_name: Some("Jörg Müller-Łukasz"),
    email: Some("joerg@example.org"),
    groups: &["readers"],
};
/// A disabled user.
pub const DAVE: Account = Account {
    id: "dave",
    password: "dave-Pass-2026",
    display_name: Some("Dave Disabled"),
    email: None,
    groups: &["staff"],
};
/// A user for whom two-factor authentication is enforced (group `2fa`), with an app password.
pub const ERIN: Account = Account {
    id: "erin",
    password: "erin-Pass-2026",
    display_name: Some("Erin Twofactor"),
    email: None,
    groups: &["2fa"],
};
/// The group admin (sub-admin) of `floor2`, with an app password; in no group itself.
pub const CAROL: Account = Account {
    id: "carol",
    password: "carol-Pass-2026",
    display_name: Some("Carol Groupadmin"),
    email: None,
    groups: &[],
};

/// Every account of the template.
pub const ACCOUNTS: [Account; 8] = [ADMIN, SERVICE, ALICE, BOB, JOERG, DAVE, ERIN, CAROL];

/// An app password of the template.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct AppPassword {
    /// The user it belongs to (created under this login name).
    pub user: String,
    /// Its token id (`occ user:auth-tokens:list`), for revoking it.
    pub token_id: u64,
    /// The app password itself.
    pub secret: String,
}

/// The template's app passwords (made at install time, so they differ between templates).
#[derive(Debug, Clone)]
pub struct AppPasswords {
    /// [`SERVICE`]'s.
    pub service: AppPassword,
    /// [`ALICE`]'s first.
    pub alice: AppPassword,
    /// [`ALICE`]'s second (one for a test to revoke while the other stays).
    pub alice_second: AppPassword,
    /// [`ERIN`]'s (two-factor enforced).
    pub erin: AppPassword,
    /// [`CAROL`]'s (group admin of `floor2`).
    pub carol: AppPassword,
}

/// The installed server every test copies.
#[derive(Debug)]
pub struct Template {
    /// `…/<key>/` holding `nextcloud/` (code, with the template's `config/`) and `data/`.
    dir: PathBuf,
    /// The accounts' app passwords.
    pub app_passwords: AppPasswords,
}

/// The installed template, made (or found in the cache) at the first call in this process.
pub fn template() -> &'static Template {
    static TEMPLATE: OnceLock<Template> = OnceLock::new();
    TEMPLATE.get_or_init(load_or_build_template)
}

/// The port a server listens on (php binds it itself): leased, held for the server's life.
fn server_port() -> PortLease {
    reserve_port()
}

/// The tarball: `$XCAUTH_NEXTCLOUD_TARBALL`, else `<workspace>/../shared/peers/…`.
pub fn tarball() -> PathBuf {
    if let Some(path) = std::env::var_os(TARBALL_ENV) {
        let path = PathBuf::from(path);
        assert!(
            path.is_file(),
            "{TARBALL_ENV}={} is not a file: point it at a Nextcloud 32 server tarball \
             ({TARBALL_NAME}, or the release nextcloud-32.0.1.tar.bz2)",
            path.display()
        );
        return path;
    }
    let default = workspace()
        .join("..")
        .join("shared/peers")
        .join(TARBALL_NAME);
    assert!(
        default.is_file(),
        "the Nextcloud tests need a Nextcloud 32 server tarball and found none: set \
         {TARBALL_ENV} to its path ({TARBALL_NAME} from the project's shared peers, or the \
         release nextcloud-32.0.1.tar.bz2 from download.nextcloud.com), or put it at {}",
        default.display()
    );
    default
}

fn workspace() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR"))
        .parent()
        .expect("workspace dir")
        .to_path_buf()
}

fn sha256_hex(path: &Path) -> String {
    let mut file = File::open(path).unwrap();
    let mut hasher = sha2::Sha256::new();
    let mut buf = vec![0u8; 1 << 16];
    loop {
        let n = file.read(&mut buf).unwrap();
        if n == 0 {
            break;
        }
        hasher.update(&buf[..n]);
    }
    hasher
        .finalize()
        .iter()
        .map(|b| format!("{b:02x}"))
        .collect()
}

/// Finds the cached template for this tarball and recipe, or builds it (under an `flock` on
/// `target/xcauth-nextcloud/lock`, so other test processes wait instead of building too).
fn load_or_build_template() -> Template {
    require_program("php");
    let tarball = tarball();
    let key = format!("{}-r{RECIPE}", &sha256_hex(&tarball)[..16]);
    let cache = support::target_dir()
        .parent()
        .expect("target dir")
        .join("xcauth-nextcloud");
    std::fs::create_dir_all(&cache).unwrap();
    let _lock = FileLock::exclusive(&cache.join("lock"));
    let dir = cache.join(&key);
    if !dir.join("ready").exists() {
        // The cache holds one template: older ones (another tarball or recipe) and what a
        // build that died left go. Nobody else uses them while we hold the lock.
        for entry in std::fs::read_dir(&cache).unwrap().flatten() {
            if entry.file_type().unwrap().is_dir() {
                std::fs::remove_dir_all(entry.path()).unwrap();
            }
        }
        let building = cache.join(format!("building-{}", std::process::id()));
        std::fs::create_dir_all(&building).unwrap();
        let started = Instant::now();
        build_template(&tarball, &building);
        set_datadirectory(&building.join("nextcloud/config"), &dir.join("data"));
        std::fs::rename(&building, &dir).unwrap();
        std::fs::write(dir.join("ready"), "").unwrap();
        eprintln!(
            "nextcloud: installed the template {} in {:.1?}",
            dir.display(),
            started.elapsed()
        );
    }
    let text = std::fs::read_to_string(dir.join("app-passwords.json")).unwrap();
    let json: Value = serde_json::from_str(&text).unwrap();
    let app = |name: &str| {
        let v = &json[name];
        AppPassword {
            user: v["user"].as_str().unwrap().to_owned(),
            token_id: v["token_id"].as_u64().unwrap(),
            secret: v["secret"].as_str().unwrap().to_owned(),
        }
    };
    Template {
        app_passwords: AppPasswords {
            service: app("service"),
            alice: app("alice"),
            alice_second: app("alice_second"),
            erin: app("erin"),
            carol: app("carol"),
        },
        dir,
    }
}

/// The set-up recipe: unpack, install with SQLite, add the accounts, groups and app
/// passwords, and make carol the group admin of `floor2` through the OCS API.
fn build_template(tarball: &Path, dir: &Path) {
    let out = Command::new("tar")
        .arg("-xf")
        .arg(tarball)
        .arg("-C")
        .arg(dir)
        .output()
        .unwrap();
    assert!(
        out.status.success(),
        "cannot unpack {}: {}",
        tarball.display(),
        String::from_utf8_lossy(&out.stderr)
    );
    let root = dir.join("nextcloud");
    let config = root.join("config");
    assert!(
        root.join("occ").is_file(),
        "{} holds no nextcloud/occ: not a Nextcloud server tarball",
        tarball.display()
    );
    // Set before the install, which keeps them: no sample files copied into the admin's home
    // folder (nor into anyone's at the first login); no app store or lookup server (the test
    // machines reach none); and a cheap Argon2id for login passwords (8 MiB, one pass instead
    // of 64 MiB and four: a login password then costs milliseconds, not half a second of a
    // busy core). Nextcloud re-hashes a password whose cost differs from these at its next
    // login, so they stay in every copy; [`Nextcloud::stock_hashing`] undoes them.
    std::fs::write(
        config.join("config.php"),
        "<?php\n$CONFIG = array (\n  'skeletondirectory' => '',\n  \
         'has_internet_connection' => false,\n  'appstoreenabled' => false,\n  \
         'hashingMemoryCost' => 8192,\n  'hashingTimeCost' => 1,\n  'hashingThreads' => 1,\n);\n",
    )
    .unwrap();
    let data = dir.join("data");
    // No opcache file cache while building: the folder is renamed afterwards.
    let install = Install {
        root: root.clone(),
        config: config.clone(),
        php: Vec::new(),
    };
    let occ = |args: &[&str]| occ_checked(&install, args, &[]);
    occ(&[
        "maintenance:install",
        "--database",
        "sqlite",
        "--admin-user",
        ADMIN.id,
        "--admin-pass",
        ADMIN.password,
        "--data-dir",
        data.to_str().unwrap(),
    ]);
    occ(&[
        "config:system:set",
        "trusted_domains",
        "1",
        "--value=127.0.0.1",
    ]);
    for g in GROUPS {
        occ(&["group:add", "--display-name", g.display_name, g.id]);
    }
    for a in ACCOUNTS.iter().filter(|a| a.id != ADMIN.id) {
        let mut args = vec!["user:add", "--password-from-env"];
        if let Some(name) = a.display_name {
            args.extend(["--display-name", name]);
        }
        for g in a.groups {
            args.extend(["--group", g]);
        }
        args.push(a.id);
        occ_checked(&install, &args, &[("OC_PASS", a.password)]);
        if let Some(mail) = a.email {
            occ(&["user:setting", a.id, "settings", "email", mail]);
        }
    }
    occ(&["user:disable", DAVE.id]);
    occ(&["twofactorauth:enforce", "--on", "--group", TWO_FACTOR.id]);
    let mut apps = serde_json::Map::new();
    for (name, account) in [
        ("service", SERVICE),
        ("alice", ALICE),
        ("alice_second", ALICE),
        ("erin", ERIN),
        ("carol", CAROL),
    ] {
        let app = add_app_password(&install, &account);
        apps.insert(
            name.to_owned(),
            serde_json::json!({"user": app.user, "token_id": app.token_id, "secret": app.secret}),
        );
    }
    std::fs::write(
        dir.join("app-passwords.json"),
        serde_json::to_string_pretty(&Value::Object(apps.clone())).unwrap(),
    )
    .unwrap();

    // occ has no command for group admins: ask the OCS API as the service account.
    let service = apps["service"]["secret"].as_str().unwrap().to_owned();
    let lease = server_port();
    let mut server = PhpServer::start(&install, lease.port(), &dir.join("php-install.log"));
    let made = server.send(
        &Request::ocs_post(
            &format!("cloud/users/{}/subadmins", CAROL.id),
            &format!("groupid={}", FLOOR2.id),
        )
        .basic(SERVICE.id, &service),
    );
    assert_eq!(made.status, 200, "making carol a group admin: {made:?}");
    let seen = server.send(
        &Request::ocs(&format!("cloud/users/{}/subadmins", CAROL.id)).basic(SERVICE.id, &service),
    );
    assert_eq!(seen.ocs_data(), serde_json::json!([FLOOR2.id]), "{seen:?}");
    server.stop();
}

/// `occ user:auth-tokens:add` with the account's password; the new token is the highest id.
fn add_app_password(install: &Install, account: &Account) -> AppPassword {
    let out = occ_checked(
        install,
        &["user:auth-tokens:add", "--password-from-env", account.id],
        &[("OC_PASS", account.password)],
    );
    let secret = out
        .lines()
        .map(str::trim)
        .rfind(|l| !l.is_empty())
        .unwrap()
        .to_owned();
    assert_eq!(secret.len(), 72, "unexpected app password output: {out}");
    AppPassword {
        user: account.id.to_owned(),
        token_id: newest_token(install, account.id),
        secret,
    }
}

fn newest_token(install: &Install, user: &str) -> u64 {
    let out = occ_checked(
        install,
        &["user:auth-tokens:list", user, "--output=json"],
        &[],
    );
    let tokens: Value = serde_json::from_str(&out).unwrap();
    tokens
        .as_array()
        .unwrap()
        .iter()
        .filter_map(|t| t["id"].as_u64())
        .max()
        .unwrap()
}

/// Points `CONFIG/config.php` at another data folder (the SQLite database lives in it).
fn set_datadirectory(config: &Path, data: &Path) {
    let data = data.to_str().unwrap();
    assert!(
        !data.contains(['\'', '\\']),
        "a data path PHP would need escaped: {data}"
    );
    let config = config.join("config.php");
    let text = std::fs::read_to_string(&config).unwrap();
    let mut found = 0;
    let rewritten: Vec<String> = text
        .lines()
        .map(|line| {
            if line.trim_start().starts_with("'datadirectory' =>") {
                found += 1;
                format!("  'datadirectory' => '{data}',")
            } else {
                line.to_owned()
            }
        })
        .collect();
    assert_eq!(
        found,
        1,
        "no single datadirectory line in {}",
        config.display()
    );
    std::fs::write(&config, rewritten.join("\n") + "\n").unwrap();
}

/// Which server: its code, its configuration (and so its data), and options for `php`.
#[derive(Debug, Clone)]
struct Install {
    /// The code folder (holding `occ`).
    root: PathBuf,
    /// The folder holding `config.php`.
    config: PathBuf,
    /// `-d name=value` options for every `php` run on it.
    php: Vec<String>,
}

/// Runs `occ ARGS` on `install` with `env` (passwords go through `OC_PASS`, never the command
/// line), bounded by `timeout`.
fn occ_output(install: &Install, args: &[&str], env: &[(&str, &str)]) -> Output {
    Command::new("timeout")
        .args(["-k", "5", &OCC_LIMIT_SECS.to_string(), "php"])
        .args(&install.php)
        .args(["-d", "memory_limit=512M", "occ", "--no-interaction"])
        .args(args)
        .env(CONFIG_DIR_ENV, &install.config)
        .envs(env.iter().copied())
        .current_dir(&install.root)
        .stdin(Stdio::null())
        .output()
        .unwrap()
}

/// [`occ_output`] that must succeed; returns its standard output.
fn occ_checked(install: &Install, args: &[&str], env: &[(&str, &str)]) -> String {
    let out = occ_output(install, args, env);
    assert!(
        out.status.success(),
        "occ {args:?} failed ({}):\n{}{}",
        out.status,
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
    String::from_utf8(out.stdout).unwrap()
}

/// An exclusive `flock(2)` on a file, released when dropped (or when the process dies).
struct FileLock {
    _file: File,
}

impl FileLock {
    fn exclusive(path: &Path) -> FileLock {
        use std::os::fd::AsRawFd;
        let file = File::options()
            .create(true)
            .truncate(false)
            .write(true)
            .open(path)
            .unwrap();
        // std's File::lock needs Rust 1.89, newer than the workspace's rust-version.
        #[allow(unsafe_code)]
        // SAFETY: flock only reads the descriptor number; `file` keeps it open for the call.
        let rc = unsafe { libc::flock(file.as_raw_fd(), libc::LOCK_EX) };
        assert_eq!(
            rc,
            0,
            "flock {}: {}",
            path.display(),
            io::Error::last_os_error()
        );
        FileLock { _file: file }
    }
}

/// `php -S 127.0.0.1:PORT -t ROOT` with four workers and the opcache, in a process group of
/// its own (the workers are its children); the whole group is stopped on drop.
#[derive(Debug)]
struct PhpServer {
    child: Child,
    port: u16,
    config: PathBuf,
    log: PathBuf,
}

impl PhpServer {
    /// Starts the server for `install` and waits until `status.php` answers.
    fn start(install: &Install, port: u16, log: &Path) -> PhpServer {
        let logfile = File::options().create(true).append(true).open(log).unwrap();
        let child = Command::new("php")
            .args(&install.php)
            .args([
                "-d",
                "opcache.enable=1",
                "-d",
                "opcache.enable_cli=1",
                // Re-check a script's mtime on every request: occ rewrites config/config.php
                // while the server runs, and a test's next request must see the change.
                "-d",
                "opcache.revalidate_freq=0",
                "-d",
                "memory_limit=512M",
                "-S",
                &format!("127.0.0.1:{port}"),
                "-t",
            ])
            .arg(&install.root)
            .current_dir(&install.root)
            .env(CONFIG_DIR_ENV, &install.config)
            .env("PHP_CLI_SERVER_WORKERS", "4")
            .process_group(0)
            .stdin(Stdio::null())
            .stdout(logfile.try_clone().unwrap())
            .stderr(logfile)
            .spawn()
            .unwrap_or_else(|e| panic!("cannot start php: {e}"));
        let mut server = PhpServer {
            child,
            port,
            config: install.config.clone(),
            log: log.to_path_buf(),
        };
        server.wait_ready();
        server
    }

    fn addr(&self) -> SocketAddr {
        SocketAddr::from(([127, 0, 0, 1], self.port))
    }

    /// Polls `status.php` until it answers 200, failing at once if php died.
    fn wait_ready(&mut self) {
        let end = Instant::now() + START_LIMIT;
        loop {
            if let Ok(Some(status)) = self.child.try_wait() {
                panic!(
                    "php -S on port {} exited ({status}) before answering:\n{}",
                    self.port,
                    std::fs::read_to_string(&self.log).unwrap_or_default()
                );
            }
            if let Ok(reply) = try_send(self.addr(), &Request::get("/status.php")) {
                assert_eq!(
                    reply.status,
                    200,
                    "status.php answered {reply:?}\nphp log:\n{}\nnextcloud.log:\n{}",
                    std::fs::read_to_string(&self.log).unwrap_or_default(),
                    nextcloud_log_tail(&self.config)
                );
                return;
            }
            assert!(
                Instant::now() < end,
                "php -S on port {} did not answer within {START_LIMIT:?}:\n{}",
                self.port,
                std::fs::read_to_string(&self.log).unwrap_or_default()
            );
            std::thread::sleep(Duration::from_millis(50));
        }
    }

    fn send(&self, req: &Request) -> Reply {
        send(self.addr(), req)
    }

    /// SIGTERM to the group, SIGKILL if it lingers; returns once no process of it is left.
    /// Safe to call again: a group that is gone is not signalled.
    fn stop(&mut self) {
        let pgid = self.child.id();
        let end = Instant::now() + Duration::from_secs(30);
        let mut sent = None;
        loop {
            let leader_reaped = matches!(self.child.try_wait(), Ok(Some(_)));
            // The group's id cannot be reused while its unreaped leader or a member exists,
            // so it is only signalled then.
            if leader_reaped && !group_alive(pgid) {
                return;
            }
            let signal = if Instant::now() > end { "KILL" } else { "TERM" };
            if sent != Some(signal) {
                kill_group(pgid, signal);
                sent = Some(signal);
            }
            std::thread::sleep(Duration::from_millis(20));
        }
    }
}

impl Drop for PhpServer {
    fn drop(&mut self) {
        self.stop();
    }
}

fn kill_group(pgid: u32, signal: &str) {
    let _ = Command::new("kill")
        .args([&format!("-{signal}"), "--", &format!("-{pgid}")])
        .stderr(Stdio::null())
        .status();
}

/// Whether a process other than a zombie is left in process group `pgid` (from `/proc`).
fn group_alive(pgid: u32) -> bool {
    let Ok(entries) = std::fs::read_dir("/proc") else {
        return false;
    };
    entries.flatten().any(|e| {
        let Ok(stat) = std::fs::read_to_string(e.path().join("stat")) else {
            return false;
        };
        // pid (comm) state ppid pgrp …; comm may hold spaces and parentheses.
        let Some((_, rest)) = stat.rsplit_once(')') else {
            return false;
        };
        let fields: Vec<&str> = rest.split_whitespace().collect();
        fields.len() > 2 && fields[0] != "Z" && fields[2] == pgid.to_string()
    })
}

/// The end of the log of the installation configured in `config`.
fn nextcloud_log_tail(config: &Path) -> String {
    let Some(data) = std::fs::read_to_string(config.join("config.php"))
        .ok()
        .and_then(|c| {
            c.lines()
                .find_map(|l| l.trim().strip_prefix("'datadirectory' => '"))
                .map(|v| v.trim_end_matches("',").to_owned())
        })
    else {
        return String::new();
    };
    let log = std::fs::read_to_string(Path::new(&data).join("nextcloud.log")).unwrap_or_default();
    let start = log.len().saturating_sub(4000);
    log.get(start..).unwrap_or_default().to_owned()
}

/// A test's own Nextcloud: a copy of the [`template`] in a scratch directory and, once
/// started, `php -S` serving it.
#[derive(Debug)]
pub struct Nextcloud {
    server: Option<PhpServer>,
    port: u16,
    /// The lease on `port`, held from the first start to drop (also while the server is
    /// stopped, so nothing else answers there then).
    lease: Option<PortLease>,
    /// The template's code folder (shared by every copy, never written) and this copy's
    /// `config/`.
    install: Install,
    template: &'static Template,
    // Last: removed after the server has stopped.
    scratch: Scratch,
}

impl Nextcloud {
    /// Copies the template into a new scratch directory, without starting the server (for
    /// set-up that must happen before the first request).
    pub fn copy(tag: &str) -> Nextcloud {
        let template = template();
        let started = Instant::now();
        let scratch = Scratch::new(&format!("nc-{tag}"));
        let out = Command::new("cp")
            .arg("-a")
            .arg(template.dir.join("nextcloud/config"))
            .arg(template.dir.join("data"))
            .arg(scratch.path())
            .output()
            .unwrap();
        assert!(
            out.status.success(),
            "copying the Nextcloud template: {}",
            String::from_utf8_lossy(&out.stderr)
        );
        let config = scratch.join("config");
        set_datadirectory(&config, &scratch.join("data"));
        // The code's compiled scripts are kept on disk beside the template and shared by every
        // server and occ run (the first request of a new server then compiles nothing);
        // the copy's own config.php is never cached, so a change by occ is seen at once.
        let opcache = template.dir.join("opcache");
        std::fs::create_dir_all(&opcache).unwrap();
        let blacklist = scratch.write("opcache-blacklist.txt", &format!("{}/\n", config.display()));
        let php = [
            "opcache.enable_cli=1".to_owned(),
            format!("opcache.file_cache={}", opcache.display()),
            format!("opcache.blacklist_filename={}", blacklist.display()),
        ]
        .into_iter()
        .flat_map(|option| ["-d".to_owned(), option])
        .collect();
        eprintln!("nextcloud {tag}: copied in {:.1?}", started.elapsed());
        Nextcloud {
            server: None,
            port: 0,
            lease: None,
            install: Install {
                root: template.dir.join("nextcloud"),
                config,
                php,
            },
            template,
            scratch,
        }
    }

    /// A copy of the template, served.
    pub fn start(tag: &str) -> Nextcloud {
        let mut nc = Nextcloud::copy(tag);
        nc.start_server();
        nc
    }

    /// Starts the server (again, on the same port after [`Nextcloud::stop_server`]).
    pub fn start_server(&mut self) {
        assert!(self.server.is_none(), "the server already runs");
        if self.lease.is_none() {
            let lease = server_port();
            self.port = lease.port();
            self.lease = Some(lease);
        }
        let log = self.scratch.join("php.log");
        let started = Instant::now();
        self.server = Some(PhpServer::start(&self.install, self.port, &log));
        eprintln!(
            "nextcloud: serving {} on port {} after {:.1?}",
            self.scratch.path().display(),
            self.port,
            started.elapsed()
        );
    }

    /// Stops the server and all its workers; the port then refuses connections.
    pub fn stop_server(&mut self) {
        if let Some(mut server) = self.server.take() {
            server.stop();
        }
    }

    /// `http://127.0.0.1:PORT` (the server must have been started).
    pub fn url(&self) -> String {
        format!("http://{}", self.addr())
    }

    /// The server's address (the server must have been started once).
    pub fn addr(&self) -> SocketAddr {
        assert_ne!(self.port, 0, "the server was never started");
        SocketAddr::from(([127, 0, 0, 1], self.port))
    }

    /// The scratch directory (holding `config/`, `data/`, `php.log`).
    pub fn dir(&self) -> &Path {
        self.scratch.path()
    }

    /// The template's app passwords (the same in every copy until a test revokes one).
    pub fn app_passwords(&self) -> &'static AppPasswords {
        &self.template.app_passwords
    }

    /// Sends a request; panics if the server cannot be reached.
    pub fn send(&self, req: &Request) -> Reply {
        send(self.addr(), req)
    }

    /// Sends a request; the connection error if the server cannot be reached.
    ///
    /// # Errors
    /// Connecting, writing or reading failed.
    pub fn try_send(&self, req: &Request) -> io::Result<Reply> {
        try_send(self.addr(), req)
    }

    /// `GET /ocs/v2.php/cloud/user` with Basic auth: who the credentials log in as.
    pub fn cloud_user(&self, login: &str, password: &str) -> Reply {
        self.send(&Request::ocs("cloud/user").basic(login, password))
    }

    /// `GET /ocs/v2.php/PATH` with the service account's app password.
    pub fn as_service(&self, path: &str) -> Reply {
        self.send(&Request::ocs(path).basic(SERVICE.id, &self.app_passwords().service.secret))
    }

    /// Runs `occ ARGS` on this copy and returns its output, whatever the exit status.
    pub fn try_occ(&self, args: &[&str]) -> Output {
        occ_output(&self.install, args, &[])
    }

    /// Runs `occ ARGS` on this copy; it must succeed. Returns its standard output.
    pub fn occ(&self, args: &[&str]) -> String {
        occ_checked(&self.install, args, &[])
    }

    /// Runs `occ ARGS` with `OC_PASS` set to `password`; it must succeed.
    pub fn occ_with_password(&self, args: &[&str], password: &str) -> String {
        occ_checked(&self.install, args, &[("OC_PASS", password)])
    }

    /// Nextcloud's own password hashing cost from now on (64 MiB, four passes): passwords set
    /// afterwards ([`Nextcloud::set_password`]) cost what they cost on a stock server.
    pub fn stock_hashing(&self) {
        for key in ["hashingMemoryCost", "hashingTimeCost", "hashingThreads"] {
            self.occ(&["config:system:delete", key]);
        }
    }

    /// Maintenance mode on or off.
    pub fn maintenance(&self, on: bool) {
        self.occ(&["maintenance:mode", if on { "--on" } else { "--off" }]);
    }

    /// Allow-lists `cidr` (e.g. `127.0.0.2/32`) for the brute-force throttle as entry `n`
    /// (the `bruteforcesettings` app's `bruteForce whitelist_N` setting).
    pub fn allow_list(&self, n: u32, cidr: &str) {
        self.occ(&[
            "config:app:set",
            "bruteForce",
            &format!("whitelist_{n}"),
            &format!("--value={cidr}"),
        ]);
    }

    /// Sets `trusted_proxies` to `proxies` (addresses or CIDRs).
    pub fn trusted_proxies(&self, proxies: &[&str]) {
        for (i, p) in proxies.iter().enumerate() {
            self.occ(&[
                "config:system:set",
                "trusted_proxies",
                &i.to_string(),
                &format!("--value={p}"),
            ]);
        }
    }

    /// The brute-force attempts Nextcloud has recorded for `addr` in its window.
    pub fn bruteforce_attempts(&self, addr: &str) -> u64 {
        let out = self.occ(&["security:bruteforce:attempts", addr, "--output=json"]);
        let json: Value = serde_json::from_str(&out)
            .unwrap_or_else(|e| panic!("security:bruteforce:attempts: {e}: {out}"));
        json["attempts"]
            .as_u64()
            .unwrap_or_else(|| panic!("no attempts in {out}"))
    }

    /// Revokes an app password.
    pub fn revoke_app_password(&self, app: &AppPassword) {
        self.occ(&[
            "user:auth-tokens:delete",
            &app.user,
            &app.token_id.to_string(),
        ]);
    }

    /// A new app password for `account` (made with its login password).
    pub fn add_app_password(&self, account: &Account) -> AppPassword {
        add_app_password(&self.install, account)
    }

    /// Sets a user's login password.
    pub fn set_password(&self, user: &str, password: &str) {
        self.occ_with_password(
            &["user:resetpassword", "--password-from-env", user],
            password,
        );
    }

    /// The tail of this copy's `nextcloud.log` (for failure messages).
    pub fn log_tail(&self) -> String {
        nextcloud_log_tail(&self.install.config)
    }
}
