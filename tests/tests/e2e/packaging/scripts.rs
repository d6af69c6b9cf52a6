//! The shell scripts under `scripts/` that no other test runs.
//!
//! * `fuzz-smoke.sh`: its verdict per target, with a stand-in `cargo` first on `PATH` (the
//!   real nightly fuzz build takes minutes; what is tested here is the script's own logic: a
//!   target passes only when libFuzzer reported `Done N runs` with N > 0).
//! * `install-pam.sh`: installs the module (the one this test run built, staged as
//!   `$CARGO_TARGET_DIR/release/libpam_xcauth.so` and installed with `--no-build`: a release
//!   build would cost the suite minutes) under a temporary `--prefix`, into the multiarch
//!   `security` directory, and a real PAM stack (pamtester under pam_wrapper) loads the
//!   installed file and logs in through it. Needs root, like every PAM test.

#![allow(clippy::unwrap_used, clippy::expect_used)] // tests

use std::os::unix::fs::MetadataExt;
use std::os::unix::fs::PermissionsExt;
use std::path::{Path, PathBuf};
use std::process::{Command, Output};

use xcauth_tests::pam_support::{module_so, require_pam_wrapper, Pamtester, World, ALICE_PW};
use xcauth_tests::support::Scratch;

fn repo() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR"))
        .parent()
        .unwrap()
        .to_path_buf()
}

fn text(out: &Output) -> String {
    format!(
        "{}{}",
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    )
}

/// A stand-in `cargo` for `fuzz-smoke.sh`: `fuzz build` succeeds, `fuzz list` prints
/// `$FAKE/targets`, `fuzz run TARGET …` prints `$FAKE/TARGET.out` and exits with
/// `$FAKE/TARGET.rc` (default 0). Every call is appended to `$FAKE/calls`.
const FAKE_CARGO: &str = r#"#!/bin/sh
echo "$*" >> "$FAKE/calls"
case "$1 $2 $3" in
  "+nightly fuzz build") exit 0 ;;
  "+nightly fuzz list") cat "$FAKE/targets"; exit 0 ;;
  "+nightly fuzz run")
    cat "$FAKE/$4.out"
    if [ -f "$FAKE/$4.rc" ]; then exit "$(cat "$FAKE/$4.rc")"; fi
    exit 0 ;;
esac
echo "fake cargo: unexpected arguments: $*" >&2
exit 99
"#;

/// A smoke run where each target prints the given libFuzzer output and exits with the given
/// status: the script's status and its stderr (plus the recorded cargo calls).
fn fuzz_smoke(targets: &[(&str, &str, i32)]) -> (Option<i32>, String, String) {
    let s = Scratch::new("fuzz-smoke");
    let fake = s.join("fake");
    std::fs::create_dir_all(fake.join("bin")).unwrap();
    let cargo = s.write("fake/bin/cargo", FAKE_CARGO);
    std::fs::set_permissions(&cargo, std::fs::Permissions::from_mode(0o755)).unwrap();
    let names: Vec<&str> = targets.iter().map(|t| t.0).collect();
    s.write("fake/targets", &format!("{}\n", names.join("\n")));
    for (name, out, rc) in targets {
        s.write(&format!("fake/{name}.out"), out);
        s.write(&format!("fake/{name}.rc"), &rc.to_string());
    }
    let path = format!(
        "{}:{}",
        fake.join("bin").display(),
        std::env::var("PATH").unwrap_or_default()
    );
    let out = Command::new("bash")
        .arg(repo().join("scripts/fuzz-smoke.sh"))
        .env("PATH", path)
        .env("FAKE", &fake)
        .env("FUZZ_SMOKE_DIR", s.join("work"))
        .env("FUZZ_SECONDS", "2")
        .output()
        .unwrap();
    let calls = std::fs::read_to_string(fake.join("calls")).unwrap_or_default();
    (
        out.status.code(),
        String::from_utf8_lossy(&out.stderr).into_owned(),
        calls,
    )
}

const DONE: &str =
    "INFO: Seed: 1\n#2\tINITED cov: 10 ft: 10 corp: 1/1b\nDone 4242 runs in 2 second(s)\n";

#[test]
fn fuzz_smoke_passes_only_targets_that_ran_inputs() {
    // Every target ran: the run passes, says how much each ran, and ran each for
    // FUZZ_SECONDS from its seeds.
    let (rc, err, calls) = fuzz_smoke(&[("alpha", DONE, 0), ("beta", DONE, 0)]);
    assert_eq!(rc, Some(0), "{err}");
    assert!(
        err.contains("fuzz smoke: alpha: 4242 runs") && err.contains("fuzz smoke: beta: 4242 runs"),
        "{err}"
    );
    assert!(
        calls.contains("+nightly fuzz run beta ")
            && calls.contains(" fuzz/corpus/beta -- -max_total_time=2"),
        "{calls}"
    );

    // A target that reports zero runs, or no "Done" line at all, fails the run, by name;
    // the targets after it are not run.
    let zero = "INFO: Seed: 1\nDone 0 runs in 2 second(s)\n";
    let silent = "INFO: Seed: 1\nINFO: 0 files found in fuzz/corpus/beta\n";
    for (what, out) in [("zero runs", zero), ("no Done line", silent)] {
        let (rc, err, calls) =
            fuzz_smoke(&[("alpha", DONE, 0), ("beta", out, 0), ("gamma", DONE, 0)]);
        assert_eq!(rc, Some(1), "{what}: {err}");
        assert!(
            err.contains("fuzz smoke: beta ran no input"),
            "{what}: {err}"
        );
        assert!(!calls.contains("fuzz run gamma"), "{what}: {calls}");
    }

    // A crash fails the run (as before).
    let (rc, err, _) = fuzz_smoke(&[("alpha", "==1== ERROR: libFuzzer: deadly signal\n", 77)]);
    assert_eq!(rc, Some(1), "{err}");
    assert!(err.contains("fuzz smoke: alpha failed"), "{err}");

    // No target at all is not a pass either.
    let (rc, err, _) = fuzz_smoke(&[]);
    assert_eq!(rc, Some(1), "{err}");
    assert!(err.contains("named no target"), "{err}");
}

/// `scripts/install-pam.sh ARGS` with `CARGO_TARGET_DIR=target`.
fn install_pam(target: &Path, args: &[&str]) -> Output {
    Command::new("bash")
        .arg(repo().join("scripts/install-pam.sh"))
        .args(args)
        .env("CARGO_TARGET_DIR", target)
        .output()
        .unwrap()
}

#[test]
fn install_pam_installs_a_module_a_real_pam_stack_loads() {
    require_pam_wrapper();
    let w = World::new("install-pam");
    // The module this run built, where the script expects a release build.
    let target = w.scratch.join("target");
    std::fs::create_dir_all(target.join("release")).unwrap();
    let built = target.join("release/libpam_xcauth.so");
    std::fs::copy(module_so(), &built).unwrap();
    let prefix = w.scratch.join("root");

    let out = install_pam(
        &target,
        &["--no-build", "--prefix", prefix.to_str().unwrap()],
    );
    assert!(out.status.success(), "{}", text(&out));
    // Debian's multiarch module directory, as the distribution's own modules use it.
    assert!(Path::new("/lib/x86_64-linux-gnu/security/pam_unix.so").exists());
    let dir = prefix.join("lib/x86_64-linux-gnu/security");
    let installed = dir.join("pam_xcauth.so");
    assert!(
        text(&out).contains(&format!("installed {}", installed.display())),
        "{}",
        text(&out)
    );
    let meta = std::fs::metadata(&installed).unwrap();
    assert_eq!(meta.mode() & 0o7777, 0o644, "{}", installed.display());
    assert!(
        std::fs::read(&installed).unwrap() == std::fs::read(&built).unwrap(),
        "{} is not a copy of the built module",
        installed.display()
    );
    // Only the module: the temporary name it was copied under is gone.
    let names: Vec<_> = std::fs::read_dir(&dir)
        .unwrap()
        .map(|e| e.unwrap().file_name())
        .collect();
    assert_eq!(names, ["pam_xcauth.so"]);
    // Installing again replaces it in place.
    let out = install_pam(
        &target,
        &["--no-build", &format!("--prefix={}", prefix.display())],
    );
    assert!(out.status.success(), "{}", text(&out));

    // A real PAM stack loads the installed file and logs in through it.
    let module = format!(
        "{} config={} syslog_socket={}",
        installed.display(),
        w.conf.display(),
        w.log.path().display()
    );
    let services = w.wrapper_service(
        "installed",
        &format!("auth required {module}\naccount required {module}\n"),
    );
    let run = |pw: &str| {
        Pamtester::new(
            "installed",
            "alice@example.org",
            &["authenticate", "acct_mgmt"],
        )
        .wrapped(&services)
        .password(pw)
        .run()
    };
    let r = run(ALICE_PW);
    assert_eq!(r.code, "SUCCESS", "{}", r.output);
    w.log
        .wait_for("authentication success; user=alice@example.org via=backend");
    let r = run("wrong-install-1");
    assert_eq!(r.code, "AUTH_ERR", "{}", r.output);
    assert_eq!(w.double.count("auth"), 2);
    w.log
        .assert_no_secrets(&w.secrets(&["wrong-install-1"]), &[]);

    // Mistakes get a clear answer and install nothing.
    let empty = w.scratch.join("empty-target");
    let elsewhere = w.scratch.join("elsewhere");
    let out = install_pam(
        &empty,
        &["--no-build", "--prefix", elsewhere.to_str().unwrap()],
    );
    assert_eq!(out.status.code(), Some(1), "{}", text(&out));
    assert!(
        text(&out).contains("libpam_xcauth.so not found"),
        "{}",
        text(&out)
    );
    let out = install_pam(&target, &["--prefix"]);
    assert_eq!(out.status.code(), Some(2), "{}", text(&out));
    assert!(
        text(&out).contains("--prefix needs a directory"),
        "{}",
        text(&out)
    );
    let out = install_pam(&target, &["--destdir", "/tmp"]);
    assert_eq!(out.status.code(), Some(2), "{}", text(&out));
    assert!(
        text(&out).contains("unknown argument '--destdir'"),
        "{}",
        text(&out)
    );
    assert!(!elsewhere.exists());
}
