//! Apache (event MPM, workers as www-data) + mod_authnz_pam + pam_xcauth.so with a real
//! `/etc/pam.d` file: Basic auth 200/401 and 50 concurrent requests, in-process and in
//! `socket=` mode (the `pam.d-examples/apache` file) against an in-test `pamsock::serve_pam_connection`.
//! The HTTP client is curl, as in README.
// Helpers outside #[test] fns: a failed set-up step is a test failure.
#![allow(clippy::unwrap_used, clippy::expect_used)]

use std::os::unix::fs::PermissionsExt;
use std::process::{Command, Stdio};
use std::time::Duration;

use xcauth_tests::double::Fault;
use xcauth_tests::machine::{reserve_port, PortLease};
use xcauth_tests::pam_support::{
    example, instantiate, EtcPamService, PamSockServer, World, ALICE_PW, BOB_PW,
};
use xcauth_tests::support::{require_program, Proc};

/// A running Apache; SIGTERM on drop (stops the children too), SIGKILL as a fallback.
struct Apache {
    proc: Proc,
    port: u16,
    /// Apache binds it itself; this test's while Apache runs.
    _lease: PortLease,
}

impl Drop for Apache {
    fn drop(&mut self) {
        self.proc.signal("TERM");
        let _ = self.proc.wait_exit(Duration::from_secs(10));
    }
}

fn start_apache(w: &World, service: &str) -> Apache {
    let modules = "/usr/lib/apache2/modules";
    for m in ["mod_mpm_event.so", "mod_authnz_pam.so"] {
        assert!(
            std::path::Path::new(modules).join(m).exists(),
            "{modules}/{m} is missing: run scripts/install-test-deps.sh (apache2, \
             libapache2-mod-authnz-pam)"
        );
    }
    let root = w.scratch.join("apache");
    let lease = reserve_port();
    let port = lease.port();
    w.scratch
        .write("apache/htdocs/protected/index.html", "protected\n");
    std::fs::create_dir_all(root.join("logs")).unwrap();
    let r = root.display();
    let conf = format!(
        "ServerRoot {r}\nServerName localhost\nListen 127.0.0.1:{port}\nPidFile {r}/httpd.pid\n\
         ErrorLog {r}/error.log\nLogLevel info authnz_pam:debug\n\
         LoadModule mpm_event_module {modules}/mod_mpm_event.so\n\
         LoadModule authn_core_module {modules}/mod_authn_core.so\n\
         LoadModule authz_core_module {modules}/mod_authz_core.so\n\
         LoadModule authz_user_module {modules}/mod_authz_user.so\n\
         LoadModule auth_basic_module {modules}/mod_auth_basic.so\n\
         LoadModule authnz_pam_module {modules}/mod_authnz_pam.so\n\
         LoadModule dir_module {modules}/mod_dir.so\n\
         DirectoryIndex index.html\nUser www-data\nGroup www-data\n\
         DocumentRoot {r}/htdocs\n<Directory {r}/htdocs>\n    Require all granted\n</Directory>\n\
         <Location /protected>\n    AuthType Basic\n    AuthName \"xcauth-test\"\n\
             AuthBasicProvider PAM\n    AuthPAMService {service}\n    Require valid-user\n\
         </Location>\n"
    );
    let conf_path = w.scratch.write("apache/httpd.conf", &conf);
    let mut cmd = Command::new(require_program("apache2"));
    cmd.arg("-f")
        .arg(&conf_path)
        .arg("-DFOREGROUND")
        .stdin(Stdio::null());
    let mut proc = Proc::spawn("apache2", &mut cmd).with_log(&root.join("error.log"));
    proc.wait_for_tcp(lease.addr(), Duration::from_secs(30));
    Apache {
        proc,
        port,
        _lease: lease,
    }
}

/// `curl -s -o /dev/null -w '%{http_code}' [-u USER:PASSWORD] http://127.0.0.1:PORT/PATH`:
/// the HTTP status (0 when curl got none).
fn curl_status(port: u16, path: &str, credentials: Option<(&str, &str)>) -> u16 {
    let mut cmd = Command::new(require_program("curl"));
    cmd.args([
        "-s",
        "-o",
        "/dev/null",
        "-w",
        "%{http_code}",
        "--max-time",
        "30",
    ]);
    if let Some((user, password)) = credentials {
        cmd.arg("-u").arg(format!("{user}:{password}"));
    }
    let out = cmd
        .arg(format!("http://127.0.0.1:{port}{path}"))
        .stdin(Stdio::null())
        .output()
        .expect("run curl");
    String::from_utf8_lossy(&out.stdout)
        .trim()
        .parse()
        .unwrap_or(0)
}

/// Single requests for each outcome, then 50 concurrent mixed ones, all answered correctly.
fn exercise(w: &World, apache: &Apache) {
    let port = apache.port;
    let token = w.token("alice");
    let get = |creds: Option<(&str, &str)>| curl_status(port, "/protected/", creds);
    let first = get(Some(("alice@example.org", ALICE_PW)));
    assert_eq!(first, 200, "module log: {:#?}", w.log.lines());
    assert_eq!(
        get(Some(("alice", ALICE_PW))),
        200,
        "domain=example.org completes bare names"
    );
    assert_eq!(get(Some(("alice@example.org", &token))), 200);
    assert_eq!(get(Some(("alice@example.org", "wrong-http-1"))), 401);
    assert_eq!(get(Some(("carol@example.org", "wrong-http-2"))), 401);
    assert_eq!(get(None), 401);

    let cases: Vec<(&str, String, u16)> = (0..50)
        .map(|i| match i % 5 {
            0 | 1 => ("alice@example.org", ALICE_PW.to_owned(), 200),
            2 => ("bob@example.org", BOB_PW.to_owned(), 200),
            3 => ("alice@example.org", token.clone(), 200),
            // A user of its own: its failures lock it out (the throttle), not bob.
            _ => ("carol@example.org", format!("wrong-http-{i}"), 401),
        })
        .collect();
    let got: Vec<u16> = std::thread::scope(|s| {
        let handles: Vec<_> = cases
            .iter()
            .map(|(u, p, _)| s.spawn(move || curl_status(port, "/protected/", Some((u, p)))))
            .collect();
        handles.into_iter().map(|h| h.join().unwrap()).collect()
    });
    let expected: Vec<u16> = cases.iter().map(|c| c.2).collect();
    assert_eq!(got, expected);

    w.double.set_fault(Fault::Status(503, "down".into()));
    assert_eq!(get(Some(("alice@example.org", ALICE_PW))), 401);
    w.log.wait_for("backend unavailable");
    w.double.set_fault(Fault::None);
    assert_eq!(get(Some(("alice@example.org", ALICE_PW))), 200);

    let lines = w.log.lines();
    assert!(
        lines.iter().any(|l| l.contains("rhost=127.0.0.1")),
        "{lines:#?}"
    );
    let mut secrets = w.secrets(&[&token, "wrong-http-1", "wrong-http-2"]);
    let wrong: Vec<String> = (0..50).map(|i| format!("wrong-http-{i}")).collect();
    secrets.extend(wrong.iter().map(String::as_str));
    w.log.assert_no_secrets(&secrets, &[]);
}

#[test]
fn apache_basic_auth_in_process() {
    let w = World::new("apache-inproc");
    let m = w.module();
    let svc = EtcPamService::new(
        "apache-inproc",
        &format!("auth required {m} domain=example.org\naccount required {m} domain=example.org\n"),
    );
    let apache = start_apache(&w, &svc.name);
    exercise(&w, &apache);
    assert!(w.log.lines().iter().any(|l| l.contains("via=backend")));
}

#[test]
fn apache_basic_auth_via_xcauthd_socket() {
    let w = World::new("apache-socket");
    let server = PamSockServer::start(&w.scratch.join("pam.sock"), w.engine());
    // The shipped example as it is, with the module path, test logging and socket path put in.
    // The config file is made unreadable for www-data to show that socket mode does not need it.
    std::fs::set_permissions(&w.conf, std::fs::Permissions::from_mode(0o600)).unwrap();
    let text = instantiate(&example("apache"), &w.module(), Some(server.path()));
    assert!(
        text.contains(&format!("socket={}", server.path().display())),
        "{text}"
    );
    let svc = EtcPamService::new("apache-socket", &text);
    let apache = start_apache(&w, &svc.name);
    exercise(&w, &apache);
    assert!(
        server.connections() >= 57,
        "every login goes through the socket: {}",
        server.connections()
    );
}

#[test]
fn apache_basic_auth_via_real_xcauthd() {
    let w = World::new("apache-xcauthd");
    // xcauthd serves the pam protocol on a Unix socket owned by group www-data;
    // the module's own config is unreadable for www-data: it needs none.
    let sock = w.scratch.join("xcauthd-pam.sock");
    let daemon_conf = w.scratch.write(
        "xcauthd.conf",
        &format!(
            "{}listen=pam@unix:{}\nsocket-mode=0660\nsocket-group=www-data\n",
            std::fs::read_to_string(&w.conf).unwrap(),
            sock.display()
        ),
    );
    std::fs::set_permissions(&daemon_conf, std::fs::Permissions::from_mode(0o600)).unwrap();
    std::fs::set_permissions(&w.conf, std::fs::Permissions::from_mode(0o600)).unwrap();
    // xcauthd binds the socket itself: its mode and group are part of the subject.
    let _daemon =
        xcauth_tests::support::start_daemon_listening(&daemon_conf, &w.scratch.join("xcauthd.log"));
    let meta = std::fs::metadata(&sock).unwrap();
    assert_eq!(meta.permissions().mode() & 0o777, 0o660);

    let text = instantiate(&example("apache"), &w.module(), Some(&sock));
    let svc = EtcPamService::new("apache-xcauthd", &text);
    let apache = start_apache(&w, &svc.name);
    w.double.reset_counters();
    exercise(&w, &apache);
    assert!(
        w.double.count("auth") >= 20,
        "logins reached the backend through xcauthd"
    );
    let daemon_log = std::fs::read_to_string(w.scratch.join("xcauthd.log")).unwrap();
    assert!(
        daemon_log.contains("auth alice@example.org: accepted"),
        "{daemon_log}"
    );
    w.log.assert_no_secrets(
        &w.secrets(&["wrong-http-1", "wrong-http-2"]),
        &[&daemon_log],
    );
}
