//! `xcauthd check` against the backend double: a good set-up passes (exit 0, nothing FAILs);
//! a wrong secret, a wrong URL path, an unreachable host, a refused certificate, a
//! world-readable config and a skewed server clock each give a FAIL or WARN line naming the
//! cause. The secret never appears in the output.

#![allow(clippy::unwrap_used, clippy::expect_used)] // tests: a failed unwrap is a failed test

use std::os::unix::fs::PermissionsExt;
use std::path::Path;

use xcauth_tests::double::{BackendDouble, Fault, User};
use xcauth_tests::support::{self, Scratch};
use xcauth_tests::tls::TestPki;

const SECRET: &str = "check-test-secret-4711";

/// Runs `xcauthd -c CONF check ARGS`: (exit status, stdout + stderr).
fn check(conf: &Path, args: &[&str]) -> (i32, String) {
    let out = support::xcauthd(conf)
        .arg("check")
        .args(args)
        .output()
        .unwrap();
    let text = format!(
        "{}{}",
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
    assert!(!text.contains(SECRET), "the secret was printed:\n{text}");
    (out.status.code().unwrap(), text)
}

fn conf(s: &Scratch, name: &str, url: &str, secret: &str, extra: &str) -> std::path::PathBuf {
    let p = s.write(
        name,
        &format!(
            "url={url}\nsecret={secret}\ntimeout=2,3\nserved-domains=[example.org]\n\
             cache-storage=db\ndb={}\n{extra}\n",
            s.join("xcauth.sqlite3").display()
        ),
    );
    std::fs::set_permissions(&p, std::fs::Permissions::from_mode(0o640)).unwrap();
    p
}

fn has_line(text: &str, level: &str, topic: &str, words: &str) -> bool {
    text.lines()
        .any(|l| l.starts_with(level) && l.contains(topic) && l.contains(words))
}

#[test]
fn a_good_setup_passes_and_isuser_is_tried() {
    let s = Scratch::new("check-good");
    let d = BackendDouble::start(SECRET);
    d.add_user(User::new("alice", "pw"));
    d.set_date_skew(Some(0));
    let c = conf(&s, "good.conf", &d.url(), SECRET, "");
    // A login through the one-shot creates the database (cache-storage=db).
    let out = support::xcauthd(&c)
        .args(["-A", "alice", "example.org", "pw"])
        .output()
        .unwrap();
    assert!(out.status.success(), "{out:?}");
    let (code, text) = check(&c, &["--user", "alice", "--domain", "example.org"]);
    assert_eq!(code, 0, "{text}");
    assert!(!text.contains("FAIL"), "{text}");
    for (topic, words) in [
        ("config", "mode 0640"),
        ("backend endpoint", "is the JSXC external API"),
        ("backend secret", "signed probe accepted"),
        ("backend clock", "0s"),
        ("database", "writable"),
        ("isuser alice@example.org", "knows this user"),
    ] {
        assert!(
            has_line(&text, "OK", topic, words),
            "{topic}: {words}\n{text}"
        );
    }
    // The probe went to the API, signed (the double counts verified requests).
    assert!(d.count("isuser") >= 2, "{text}");

    let (code, text) = check(&c, &["--user", "nobody", "--domain", "example.org"]);
    assert_eq!(code, 1, "{text}");
    assert!(
        has_line(&text, "FAIL", "isuser nobody", "does not know"),
        "{text}"
    );
}

#[test]
fn each_broken_setting_is_named() {
    let s = Scratch::new("check-bad");
    let d = BackendDouble::start(SECRET);
    d.set_date_skew(Some(0));

    let c = conf(&s, "wrongsecret.conf", &d.url(), "not-the-secret", "");
    let (code, text) = check(&c, &[]);
    assert_eq!(code, 1, "{text}");
    assert!(
        has_line(&text, "FAIL", "backend secret", "Signature does not match"),
        "{text}"
    );
    assert!(has_line(&text, "OK", "backend endpoint", "JSXC"), "{text}");

    let wrong_path = d.url().replace("externalApi.php", "nothing.php");
    let c = conf(&s, "path.conf", &wrong_path, SECRET, "");
    let (code, text) = check(&c, &[]);
    assert_eq!(code, 1, "{text}");
    assert!(
        has_line(&text, "FAIL", "backend endpoint", "HTTP 404"),
        "{text}"
    );

    // A login page: 200 with HTML.
    d.set_fault(Fault::Garbage);
    let c = conf(&s, "login.conf", &d.url(), SECRET, "");
    let (code, text) = check(&c, &[]);
    assert_eq!(code, 1, "{text}");
    assert!(
        has_line(&text, "FAIL", "backend endpoint", "not JSON"),
        "{text}"
    );
    d.set_fault(Fault::Redirect("https://cloud.example/login".into()));
    let (_, text) = check(&c, &[]);
    assert!(
        has_line(&text, "FAIL", "backend endpoint", "redirect"),
        "{text}"
    );
    d.set_fault(Fault::None);

    // A port reserved for this test and bound by nobody: refused, whatever else runs.
    let lease = xcauth_tests::machine::reserve_port();
    let dead = format!("http://127.0.0.1:{}/index.php", lease.port());
    let c = conf(&s, "dead.conf", &dead, SECRET, "");
    let (code, text) = check(&c, &[]);
    assert_eq!(code, 1, "{text}");
    assert!(
        has_line(&text, "FAIL", "backend tcp", "cannot connect"),
        "{text}"
    );

    let c = conf(&s, "open.conf", &d.url(), SECRET, "");
    std::fs::set_permissions(&c, std::fs::Permissions::from_mode(0o644)).unwrap();
    let (code, text) = check(&c, &[]);
    assert_eq!(code, 1, "{text}");
    assert!(
        has_line(&text, "FAIL", "open.conf", "world-readable"),
        "{text}"
    );

    let c = conf(&s, "clock.conf", &d.url(), SECRET, "");
    d.set_date_skew(Some(300));
    let (code, text) = check(&c, &[]);
    assert_eq!(code, 0, "{text}");
    assert!(
        has_line(&text, "WARN", "backend clock", "ahead of"),
        "{text}"
    );
    d.set_date_skew(Some(-7200));
    let (code, text) = check(&c, &[]);
    assert_eq!(code, 1, "{text}");
    assert!(has_line(&text, "FAIL", "backend clock", "behind"), "{text}");
    d.set_date_skew(None);
    let (_, text) = check(&c, &[]);
    assert!(
        has_line(&text, "WARN", "backend clock", "no Date header"),
        "{text}"
    );

    let c = s.write(
        "unserved.conf",
        &format!("url={}\nsecret={SECRET}\ndb=:memory:\n", d.url()),
    );
    std::fs::set_permissions(&c, std::fs::Permissions::from_mode(0o600)).unwrap();
    let (code, text) = check(&c, &[]);
    assert_eq!(code, 0, "{text}");
    assert!(has_line(&text, "WARN", "served-domains", "unset"), "{text}");
}

#[test]
fn certificate_errors_are_named() {
    let s = Scratch::new("check-tls");
    let pki = TestPki::new(s.path());
    let d = pki.https_double(SECRET);
    d.set_date_skew(Some(0));
    let ca = format!("ca-file={}", pki.ca.cert.display());
    let good = conf(&s, "tls.conf", &d.url(), SECRET, &ca);
    let (code, text) = check(&good, &[]);
    assert_eq!(code, 0, "{text}");
    assert!(
        has_line(&text, "OK", "backend tls", "certificate accepted"),
        "{text}"
    );
    let no_ca = conf(&s, "noca.conf", &d.url(), SECRET, "");
    let (code, text) = check(&no_ca, &[]);
    assert_eq!(code, 1, "{text}");
    assert!(
        has_line(&text, "FAIL", "backend tls", "not signed by a trusted CA"),
        "{text}"
    );
    d.set_tls_identity(&pki.expired).unwrap();
    let (_, text) = check(&good, &[]);
    assert!(has_line(&text, "FAIL", "backend tls", "expired"), "{text}");
}

#[test]
fn a_domains_row_is_checked_like_the_global_backend() {
    let s = Scratch::new("check-rows");
    let d = BackendDouble::start(SECRET);
    d.set_date_skew(Some(0));
    let c = conf(&s, "rows.conf", &d.url(), SECRET, "");
    let mut add = support::xcauthd(&c);
    add.args(["domain", "add", "other.example", &d.url()])
        .stdin(std::process::Stdio::piped())
        .stdout(std::process::Stdio::null());
    let mut child = add.spawn().unwrap();
    std::io::Write::write_all(child.stdin.as_mut().unwrap(), b"wrong-row-secret\n").unwrap();
    drop(child.stdin.take());
    assert!(child.wait().unwrap().success());
    let (code, text) = check(&c, &[]);
    assert_eq!(code, 1, "{text}");
    assert!(
        has_line(&text, "OK", "backend secret", "accepted"),
        "{text}"
    );
    assert!(
        has_line(
            &text,
            "FAIL",
            "domain other.example secret",
            "Signature does not match"
        ),
        "{text}"
    );
}
