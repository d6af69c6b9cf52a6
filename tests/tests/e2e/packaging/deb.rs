//! The Debian package: `scripts/build-deb.sh --debug` builds it from the warm debug build
//! (lintian runs in the release build of the script, not here: it costs minutes), then
//! `dpkg -i` installs it on this machine: files, owners, modes, the `xcauth` user and
//! directories. With `/etc/xcauth.conf` pointing at the backend double, the installed units
//! serve one login per framing on their sockets (socket activation by
//! `systemd-socket-activate`, as systemd is not PID 1 here: see `units.rs`), the installed
//! module answers through the pam socket, and with the pam-auth-update profile enabled a
//! Nextcloud user logs in through `common-auth`. A reinstall keeps a modified conffile and the
//! database; purge removes what the install created, takes the module out of
//! `/etc/pam.d/common-*` again and leaves nothing behind but the `xcauth` system user and
//! group (Debian practice). Next to an xcauth 2 (its user, database and log there before the
//! install), purge leaves all of them. Needs root and dpkg; refuses to run over an existing
//! installation. `/etc/pam.d/common-*` and `/var/lib/pam` are backed up first and restored by
//! a drop guard, also when an assertion fails half-way. Both tests hold the machine-wide lock
//! throughout: they install the one package and own the `xcauth` user, and another run of the
//! suite would find the package installed.

#![allow(clippy::unwrap_used, clippy::expect_used)] // tests: a failed unwrap is a failed test

use std::collections::BTreeMap;
use std::os::unix::fs::{MetadataExt, PermissionsExt};
use std::path::{Path, PathBuf};
use std::process::Command;
use std::time::{Duration, Instant};

use xcauth_tests::double::{BackendDouble, User};
use xcauth_tests::machine::MachineLock;
use xcauth_tests::pam_support::{EtcPamService, Pamtester};
use xcauth_tests::support::{xcauth_conf, Scratch};

use super::units::{self, Listen};

const SECRET: &str = "pkg-test-secret-5d1e83";
const ALICE_PW: &str = "alice-pkg-pw-H3n7";

fn run(cmd: &mut Command) -> String {
    let out = cmd.output().unwrap();
    let text = format!(
        "{}{}",
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
    assert!(out.status.success(), "{cmd:?}: {text}");
    text
}

/// dpkg, waiting up to a minute for another dpkg/apt run to release its lock.
fn dpkg(args: &[&str]) -> String {
    let end = Instant::now() + Duration::from_secs(60);
    loop {
        let out = Command::new("dpkg").args(args).output().unwrap();
        let text = format!(
            "{}{}",
            String::from_utf8_lossy(&out.stdout),
            String::from_utf8_lossy(&out.stderr)
        );
        if out.status.success() {
            return text;
        }
        assert!(
            text.contains("lock") && Instant::now() < end,
            "dpkg {args:?}: {text}"
        );
        std::thread::sleep(Duration::from_millis(500));
    }
}

fn owner_mode(p: &str) -> (String, u32) {
    let m = std::fs::metadata(p).unwrap_or_else(|e| panic!("{p}: {e}"));
    let user = run(Command::new("stat").args(["-c", "%U:%G", p]));
    (user.trim().to_owned(), m.mode() & 0o7777)
}

#[allow(clippy::print_stderr)] // the measured build time, for the test log
fn build() -> PathBuf {
    let root = Path::new(env!("CARGO_MANIFEST_DIR")).parent().unwrap();
    let started = Instant::now();
    let text = run(Command::new("bash")
        .arg(root.join("scripts/build-deb.sh"))
        .args(["--debug", "--no-lintian"])
        .current_dir(root));
    eprintln!("build-deb.sh --debug took {:?}", started.elapsed());
    let line = text
        .lines()
        .find_map(|l| l.strip_prefix("build-deb: "))
        .unwrap_or_else(|| panic!("no package path in: {text}"));
    PathBuf::from(line.trim())
}

/// Checks that nothing of xcauth is on this machine (the tests would replace or remove it).
fn assert_clean_machine() {
    assert_eq!(unsafe_free_euid(), 0, "needs root (dpkg -i)");
    for p in [
        "/etc/xcauth.conf",
        "/usr/sbin/xcauthd",
        "/var/lib/xcauth",
        "/var/log/xcauth",
    ] {
        assert!(
            !Path::new(p).exists(),
            "{p} exists on this machine: an xcauth installation the package test would replace"
        );
    }
}

fn exists(db: &str, name: &str) -> bool {
    Command::new("getent")
        .args([db, name])
        .output()
        .unwrap()
        .status
        .success()
}

/// Removes the `xcauth` user and group when dropped, if they were not there at `new`: purge
/// leaves them (Debian practice), the test does not.
struct SystemUser {
    existed: bool,
}

impl SystemUser {
    fn new() -> SystemUser {
        SystemUser {
            existed: exists("passwd", "xcauth") || exists("group", "xcauth"),
        }
    }
}

impl Drop for SystemUser {
    fn drop(&mut self) {
        if !self.existed {
            let _ = Command::new("deluser")
                .args(["--system", "--quiet", "xcauth"])
                .output();
            let _ = Command::new("delgroup")
                .args(["--system", "--quiet", "xcauth"])
                .output();
        }
    }
}

#[test]
fn install_upgrade_and_purge() {
    // The whole machine is the subject: one such test at a time, in every run of the suite.
    let _machine = MachineLock::take("packaging::deb::install_upgrade_and_purge");
    assert_clean_machine();
    let _user = SystemUser::new();
    let deb = build();
    let deb = deb.to_str().unwrap();
    let contents = run(Command::new("dpkg-deb").args(["-c", deb]));
    // Before anything is installed: what purge must give back.
    let pam_state = PamState::save();
    for f in [
        "./usr/sbin/xcauthd",
        "/security/pam_xcauth.so",
        "./etc/xcauth.conf",
        "./lib/systemd/system/xcauth.service",
        "./lib/systemd/system/xcpam.socket",
        "./usr/share/xcauth/prosody/mod_auth_xcauth.lua",
        "./usr/share/doc/xcauth/pam.d-examples/dovecot",
        "./usr/share/pam-configs/xcauth",
        "./usr/share/man/man8/xcauthd.8.gz",
        "./usr/share/man/man8/pam_xcauth.8.gz",
        "./usr/share/man/man5/xcauth.conf.5.gz",
    ] {
        assert!(
            contents.contains(f),
            "{f} missing from the package:\n{contents}"
        );
    }

    dpkg(&["-i", deb]);
    let purge = Purge;
    assert!(run(Command::new("getent").args(["passwd", "xcauth"])).contains("/usr/sbin/nologin"));
    assert_eq!(
        owner_mode("/etc/xcauth.conf"),
        ("root:xcauth".into(), 0o640)
    );
    assert_eq!(
        owner_mode("/var/lib/xcauth"),
        ("xcauth:xcauth".into(), 0o750)
    );
    assert_eq!(
        owner_mode("/var/log/xcauth"),
        ("xcauth:xcauth".into(), 0o750)
    );
    assert_eq!(owner_mode("/usr/sbin/xcauthd"), ("root:root".into(), 0o755));
    let conffiles = dpkg(&["-s", "xcauth"]);
    assert!(conffiles.contains("/etc/xcauth.conf"), "{conffiles}");
    // The shipped settings file sets nothing and documents every key.
    let conf = std::fs::read_to_string("/etc/xcauth.conf").unwrap();
    assert!(
        conf.contains("#served-domains=") && conf.contains("#url=URL"),
        "{conf}"
    );
    // The installed binary works and finds no url in the shipped file.
    let check = Command::new("/usr/sbin/xcauthd")
        .arg("check")
        .output()
        .unwrap();
    let text = String::from_utf8_lossy(&check.stdout);
    assert_eq!(check.status.code(), Some(1), "{text}");
    assert!(text.contains("FAIL url: url= is not set"), "{text}");
    // The pam-auth-update profile is registered but not enabled by default.
    let common = std::fs::read_to_string("/etc/pam.d/common-auth").unwrap_or_default();
    assert!(!common.contains("pam_xcauth"), "{common}");

    // The installed pieces at work, against the backend double.
    let double = BackendDouble::start(SECRET);
    double.add_user(User::new("alice", ALICE_PW));
    std::fs::write("/etc/xcauth.conf", xcauth_conf(&double.url(), SECRET, "")).unwrap();
    assert_eq!(
        owner_mode("/etc/xcauth.conf"),
        ("root:xcauth".into(), 0o640)
    );
    installed_units_serve_every_framing(&double);
    pam_auth_update_profile_logs_in(&double);

    // Upgrade (reinstall): a modified conffile and the database stay.
    let modified = format!("{conf}\nurl=https://cloud.example.org/x\n");
    std::fs::write("/etc/xcauth.conf", &modified).unwrap();
    std::fs::write("/var/lib/xcauth/xcauth.sqlite3", b"db").unwrap();
    dpkg(&["--force-confold", "-i", deb]);
    assert_eq!(
        std::fs::read_to_string("/etc/xcauth.conf").unwrap(),
        modified
    );
    assert_eq!(
        std::fs::read("/var/lib/xcauth/xcauth.sqlite3").unwrap(),
        b"db"
    );
    assert_eq!(
        owner_mode("/etc/xcauth.conf"),
        ("root:xcauth".into(), 0o640)
    );

    drop(purge);
    // Every file the package shipped is gone (directories it shares with others stay).
    for line in contents.lines() {
        let Some(path) = line.split_whitespace().nth(5) else {
            continue;
        };
        let path = path.trim_start_matches('.');
        if !line.starts_with('d') && !path.is_empty() {
            assert!(!Path::new(path).exists(), "{path} left behind");
        }
    }
    // The module is out of the common-* stacks: they are as before the install.
    pam_state.assert_common_unchanged();
    assert!(
        !Path::new("/run/xcauth").exists(),
        "/run/xcauth left behind"
    );
    for gone in [
        "/etc/xcauth.conf",
        "/usr/sbin/xcauthd",
        "/var/lib/xcauth",
        "/var/log/xcauth",
        "/usr/share/pam-configs/xcauth",
        "/lib/systemd/system/xcauth.service",
    ] {
        assert!(!Path::new(gone).exists(), "{gone} left behind");
    }
    // The system user and group stay, as Debian does: a freed uid would go to the next
    // system user, who would own whatever is left.
    assert!(exists("passwd", "xcauth"), "purge removed the xcauth user");
    assert!(exists("group", "xcauth"), "purge removed the xcauth group");
}

/// The machine as xcauth 2 leaves it (its user and group, database, log and settings), made
/// before the install and removed when dropped.
struct Xcauth2;

impl Xcauth2 {
    const DB: &'static str = "/var/lib/xcauth/xcauth.sqlite3";
    const LOG: &'static str = "/var/log/xcauth/xcauth.log";
    const CONF: &'static str =
        "# xcauth 2's settings\nurl=https://cloud.example.org/\nsecret=xcauth2-Qm4v9sT7\n";
    const SECRET: &'static str = "xcauth2-Qm4v9sT7";

    fn new() -> Xcauth2 {
        run(Command::new("adduser").args([
            "--system",
            "--quiet",
            "--group",
            "--home",
            "/var/lib/xcauth",
            "--no-create-home",
            "xcauth",
        ]));
        let x = Xcauth2;
        for (dir, file, data, mode) in [
            ("/var/lib/xcauth", Self::DB, "xcauth 2 database", 0o700),
            ("/var/log/xcauth", Self::LOG, "xcauth 2 log\n", 0o755),
        ] {
            std::fs::create_dir(dir).unwrap();
            std::fs::set_permissions(dir, std::fs::Permissions::from_mode(mode)).unwrap();
            std::fs::write(file, data).unwrap();
            run(Command::new("chown").args(["-R", "xcauth:xcauth", dir]));
        }
        // Readable by all, as some xcauth 2 installations have it.
        std::fs::write("/etc/xcauth.conf", Self::CONF).unwrap();
        run(Command::new("chown").args(["root:xcauth", "/etc/xcauth.conf"]));
        std::fs::set_permissions("/etc/xcauth.conf", std::fs::Permissions::from_mode(0o644))
            .unwrap();
        x
    }
}

impl Drop for Xcauth2 {
    fn drop(&mut self) {
        let _ = dpkg(&["--purge", "xcauth"]);
        for dir in ["/var/lib/xcauth", "/var/log/xcauth"] {
            let _ = std::fs::remove_dir_all(dir);
        }
        let _ = std::fs::remove_file("/etc/xcauth.conf");
        let _ = std::fs::remove_dir_all(Self::KEPT_DIR);
    }
}

impl Xcauth2 {
    /// Where the installation keeps xcauth 2's settings until purge.
    const KEPT_DIR: &'static str = "/etc/xcauth-before-package";

    /// The files under /etc (two levels down) that hold xcauth 2's API secret.
    fn copies_of_the_secret() -> Vec<PathBuf> {
        let mut found = Vec::new();
        let mut dirs = vec![(PathBuf::from("/etc"), 0)];
        while let Some((dir, depth)) = dirs.pop() {
            let Ok(entries) = std::fs::read_dir(&dir) else {
                continue;
            };
            for e in entries.flatten() {
                let Ok(kind) = e.file_type() else { continue };
                if kind.is_dir() && depth < 1 {
                    dirs.push((e.path(), depth + 1));
                } else if kind.is_file()
                    && std::fs::read(e.path())
                        .is_ok_and(|b| String::from_utf8_lossy(&b).contains(Self::SECRET))
                {
                    found.push(e.path());
                }
            }
        }
        found
    }
}

/// True when user `nobody` can read `path`.
fn nobody_reads(path: &Path) -> bool {
    Command::new("setpriv")
        .args(["--reuid=nobody", "--regid=nogroup", "--clear-groups", "cat"])
        .arg(path)
        .stdout(std::process::Stdio::null())
        .stderr(std::process::Stdio::null())
        .status()
        .unwrap()
        .success()
}

/// xcauth-rs installed next to xcauth 2 (the path docs/migration.md describes) and purged
/// again: the database, the log and their directories are left exactly as they were, and so
/// is the user with its uid, so xcauth 2 (or the next system user) finds nothing changed.
#[test]
fn purge_next_to_xcauth2_leaves_what_was_there() {
    let _machine = MachineLock::take("packaging::deb::purge_next_to_xcauth2_leaves_what_was_there");
    assert_clean_machine();
    let _user = SystemUser::new();
    let deb = build();
    let _xcauth2 = Xcauth2::new();
    let uid = run(Command::new("id").args(["-u", "xcauth"]));
    let before = [owner_mode("/var/lib/xcauth"), owner_mode("/var/log/xcauth")];
    let conf_before_install = owner_mode("/etc/xcauth.conf");
    assert_eq!(conf_before_install, ("root:xcauth".into(), 0o644));
    assert!(nobody_reads(Path::new("/etc/xcauth.conf")));

    dpkg(&["--force-confold", "-i", deb.to_str().unwrap()]);
    // The settings file is the package's now (root:xcauth 0640), and the copy kept for purge
    // gives the secret away no more than it does.
    let copies = Xcauth2::copies_of_the_secret();
    assert!(copies.len() >= 2, "{copies:?}");
    for copy in &copies {
        assert!(
            !nobody_reads(copy),
            "{} is readable by others",
            copy.display()
        );
    }
    assert_eq!(
        [owner_mode("/var/lib/xcauth"), owner_mode("/var/log/xcauth")],
        before,
        "the install changed xcauth 2's directories"
    );
    assert_eq!(
        std::fs::read_to_string("/etc/xcauth.conf").unwrap(),
        Xcauth2::CONF
    );

    dpkg(&["--purge", "xcauth"]);
    assert!(!Path::new("/usr/sbin/xcauthd").exists());
    assert_eq!(
        std::fs::read_to_string(Xcauth2::DB).ok().as_deref(),
        Some("xcauth 2 database"),
        "purge removed xcauth 2's database"
    );
    assert_eq!(
        std::fs::read_to_string(Xcauth2::LOG).ok().as_deref(),
        Some("xcauth 2 log\n"),
        "purge removed xcauth 2's log"
    );
    assert_eq!(
        [owner_mode("/var/lib/xcauth"), owner_mode("/var/log/xcauth")],
        before
    );
    // dpkg removed the conffile; postrm put xcauth 2's back, as it was.
    assert_eq!(
        std::fs::read_to_string("/etc/xcauth.conf").ok().as_deref(),
        Some(Xcauth2::CONF),
        "xcauth 2's settings file is gone"
    );
    assert_eq!(owner_mode("/etc/xcauth.conf"), conf_before_install);
    assert_eq!(
        Xcauth2::copies_of_the_secret(),
        [PathBuf::from("/etc/xcauth.conf")]
    );
    assert!(!Path::new(Xcauth2::KEPT_DIR).exists());
    for dir in ["/var/lib/xcauth", "/var/log/xcauth"] {
        let names: Vec<String> = std::fs::read_dir(dir)
            .unwrap()
            .map(|e| e.unwrap().file_name().to_string_lossy().into_owned())
            .collect();
        assert_eq!(names.len(), 1, "{dir}: {names:?}");
    }
    assert_eq!(
        run(Command::new("id").args(["-u", "xcauth"])),
        uid,
        "the xcauth user is gone or changed"
    );
    assert!(exists("group", "xcauth"));
}

/// Socket activation of the installed `xcauth.service` with every installed `xc*.socket`:
/// one login per framing on each address (the pam socket through pamtester and the installed
/// module with `socket=`), a wrong password refused, and the daemon runs as `xcauth`.
fn installed_units_serve_every_framing(double: &BackendDouble) {
    let scratch = Scratch::new("pkg-units");
    let sockets = units::installed_sockets(scratch.path());
    let mut framings: Vec<&str> = sockets.iter().map(|u| u.fdname.as_str()).collect();
    framings.dedup();
    for f in ["ejabberd", "prosody", "postfix", "saslauthd", "pam"] {
        assert!(
            framings.contains(&f),
            "no installed socket for {f}: {sockets:?}"
        );
    }
    let log = scratch.join("xcauthd.log");
    let running = units::activate(&sockets, &log);
    let show_log = || std::fs::read_to_string(&log).unwrap_or_default();
    let before = double.count("auth");
    for u in &sockets {
        for l in &u.listen {
            if u.fdname == "pam" {
                let Listen::Unix(path) = l else {
                    panic!("{}: the pam socket is a Unix socket", u.unit)
                };
                let svc = EtcPamService::new(
                    "pkg-sock",
                    &format!(
                        "auth required pam_xcauth.so socket={} domain=example.org\n",
                        path.display()
                    ),
                );
                let r = Pamtester::new(&svc.name, "alice@example.org", &["authenticate"])
                    .password(ALICE_PW)
                    .run();
                assert_eq!(
                    r.code,
                    "SUCCESS",
                    "{}: {}\n{}",
                    u.unit,
                    r.output,
                    show_log()
                );
                let r = Pamtester::new(&svc.name, "alice@example.org", &["authenticate"])
                    .password("wrong-pkg-sock")
                    .run();
                assert_eq!(r.code, "AUTH_ERR", "{}: {}", u.unit, r.output);
            } else {
                assert!(
                    units::login(&u.fdname, l, "alice", ALICE_PW),
                    "{} {l:?} refused alice\n{}",
                    u.unit,
                    show_log()
                );
                assert!(
                    !units::login(&u.fdname, l, "nobody", "wrong-pkg-1"),
                    "{} {l:?} accepted nobody",
                    u.unit
                );
            }
        }
    }
    assert!(double.count("auth") > before, "the backend was never asked");
    let status = std::fs::read_to_string(format!("/proc/{}/status", running.proc.child.id()));
    let uid = run(Command::new("id").args(["-u", "xcauth"]));
    let uid_line = status
        .unwrap()
        .lines()
        .find(|l| l.starts_with("Uid:"))
        .unwrap()
        .to_owned();
    assert!(
        uid_line.split_whitespace().nth(1) == Some(uid.trim()),
        "xcauthd does not run as xcauth: {uid_line}"
    );
    let created = running.created();
    drop(running);
    for p in created {
        assert!(!p.exists(), "{} left behind", p.display());
    }
}

/// `pam-auth-update --enable xcauth`: a Nextcloud user (unknown to pam_unix) logs in through
/// `common-auth` with the installed module and `/etc/xcauth.conf`; before, the same login
/// failed; a wrong password still fails.
fn pam_auth_update_profile_logs_in(double: &BackendDouble) {
    let svc = EtcPamService::new("pkg-common", "auth include common-auth\n");
    let login = |pw: &str| {
        Pamtester::new(&svc.name, "alice@example.org", &["authenticate"])
            .password(pw)
            .run()
    };
    let r = login(ALICE_PW);
    assert_eq!(
        r.code, "AUTH_ERR",
        "before the profile is enabled: {}",
        r.output
    );
    run(Command::new("pam-auth-update")
        .args(["--enable", "xcauth"])
        .env("DEBIAN_FRONTEND", "noninteractive"));
    let common = std::fs::read_to_string("/etc/pam.d/common-auth").unwrap();
    assert!(common.contains("pam_xcauth.so"), "{common}");
    let before = double.count("auth");
    let r = login(ALICE_PW);
    assert_eq!(r.code, "SUCCESS", "{}\n{common}", r.output);
    assert!(
        double.count("auth") > before,
        "pam_xcauth did not ask the backend"
    );
    assert_eq!(login("wrong-pkg-common").code, "AUTH_ERR");
}

/// `/etc/pam.d/common-*` and `/var/lib/pam/*` as they were; written back when dropped.
struct PamState {
    files: BTreeMap<PathBuf, (Vec<u8>, u32)>,
}

impl PamState {
    fn list() -> Vec<PathBuf> {
        let mut v = Vec::new();
        for (dir, prefix) in [("/etc/pam.d", "common-"), ("/var/lib/pam", "")] {
            for e in std::fs::read_dir(dir).into_iter().flatten().flatten() {
                let name = e.file_name().to_string_lossy().into_owned();
                if name.starts_with(prefix) && e.path().is_file() {
                    v.push(e.path());
                }
            }
        }
        v
    }

    fn save() -> PamState {
        let files = Self::list()
            .into_iter()
            .map(|p| {
                let data = std::fs::read(&p).unwrap();
                let mode = std::fs::metadata(&p).unwrap().mode() & 0o7777;
                (p, (data, mode))
            })
            .collect();
        PamState { files }
    }

    fn assert_common_unchanged(&self) {
        for p in Self::list() {
            if p.starts_with("/etc/pam.d") {
                let (data, _) = self
                    .files
                    .get(&p)
                    .unwrap_or_else(|| panic!("{} is new", p.display()));
                assert!(
                    std::fs::read(&p).unwrap() == *data,
                    "{} differs from before the install:\n{}",
                    p.display(),
                    std::fs::read_to_string(&p).unwrap_or_default()
                );
            }
        }
    }
}

impl Drop for PamState {
    fn drop(&mut self) {
        for p in Self::list() {
            if !self.files.contains_key(&p) {
                let _ = std::fs::remove_file(&p);
            }
        }
        for (p, (data, mode)) in &self.files {
            if std::fs::read(p).ok().as_ref() != Some(data) {
                let _ = std::fs::write(p, data);
            }
            let _ = std::fs::set_permissions(p, std::fs::Permissions::from_mode(*mode));
        }
    }
}

/// Purges the package when dropped (also when an assertion failed half-way).
struct Purge;

impl Drop for Purge {
    fn drop(&mut self) {
        let _ = dpkg(&["--purge", "xcauth"]);
    }
}

fn unsafe_free_euid() -> u32 {
    xcauth_core::trust::euid()
}
