//! The Debian package: `scripts/build-deb.sh --debug` builds it from the warm debug build
//! (lintian runs in the release build of the script, not here: it costs minutes), then
//! `dpkg -i` installs it on this machine: files, owners, modes, the `xcauth` user and
//! directories; a reinstall keeps a modified conffile and the database; purge removes what
//! the install created. Needs root and dpkg; refuses to run over an existing installation.

#![allow(clippy::unwrap_used, clippy::expect_used)] // tests: a failed unwrap is a failed test

use std::os::unix::fs::MetadataExt;
use std::path::{Path, PathBuf};
use std::process::Command;
use std::time::{Duration, Instant};

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

#[test]
fn install_upgrade_and_purge() {
    assert_eq!(unsafe_free_euid(), 0, "needs root (dpkg -i)");
    assert!(
        !Path::new("/etc/xcauth.conf").exists() && !Path::new("/usr/sbin/xcauthd").exists(),
        "an xcauth installation exists on this machine; the package test would replace it"
    );
    let deb = build();
    let deb = deb.to_str().unwrap();
    let contents = run(Command::new("dpkg-deb").args(["-c", deb]));
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
    let user = Command::new("getent")
        .args(["passwd", "xcauth"])
        .output()
        .unwrap();
    assert!(!user.status.success(), "the xcauth user is left behind");
    let group = Command::new("getent")
        .args(["group", "xcauth"])
        .output()
        .unwrap();
    assert!(!group.status.success(), "the xcauth group is left behind");
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
