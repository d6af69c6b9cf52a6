//! `xcauthd --demo`: every framing on 127.0.0.1 against a built-in DEMO
//! backend, so a newcomer can try each client before touching Nextcloud.
//!
//! The demo backend is an in-process [`Backend`] with fixed accounts. It is
//! never used outside `--demo`, and `--demo` binds loopback only.

use std::io::Write;
use std::net::{IpAddr, Ipv4Addr, SocketAddr};
use std::process::ExitCode;
use std::sync::Arc;
use std::time::UNIX_EPOCH;

use xcauth_core::backend::{Backend, Target};
use xcauth_core::codec::Framing;
use xcauth_core::config::Config;
use xcauth_core::engine::GlobalBackend;
use xcauth_core::vocab::{
    AuthReply, BackendUrl, RosterEntry, RosterReply, SharedRoster, UserExists,
};
use xcauth_core::{Clock, Engine, Password, Secret, SystemClock};

use crate::exit::{self, fail};
use crate::listen::{self, Endpoint, Service};
use crate::startup;

/// Demo accounts: (user, password, display name).
pub const ACCOUNTS: [(&str, &str, &str); 2] = [
    ("alice", "secret", "Alice (demo)"),
    ("bob", "builder", "Bob (demo)"),
];
/// An app password valid for `alice` only.
pub const APP_PASSWORD: (&str, &str) = ("alice", "demo-app-password");
/// The demo backend's URL: a reserved name that is never contacted.
const DEMO_URL: &str = "https://demo.invalid/";
/// The demo API secret (tokens below are signed with it).
pub const DEMO_SECRET: &str = "demo-secret-not-for-production";

/// The in-process demo backend.
#[derive(Debug, Default)]
pub struct DemoBackend;

impl DemoBackend {
    fn find(user: &str) -> Option<&'static (&'static str, &'static str, &'static str)> {
        let bare = user.split('@').next().unwrap_or(user);
        ACCOUNTS
            .iter()
            .find(|(u, _, _)| u.eq_ignore_ascii_case(bare))
    }
}

impl Backend for DemoBackend {
    fn auth(&self, _target: &Target, user: &str, password: &Password) -> AuthReply {
        match Self::find(user) {
            Some((u, pw, _)) if *pw == password.expose() => AuthReply::Accepted {
                uid: Some((*u).to_owned()),
            },
            Some((u, _, _)) if *u == APP_PASSWORD.0 && password.expose() == APP_PASSWORD.1 => {
                AuthReply::Accepted {
                    uid: Some((*u).to_owned()),
                }
            }
            _ => AuthReply::Rejected,
        }
    }

    fn isuser(&self, _target: &Target, user: &str) -> UserExists {
        if Self::find(user).is_some() {
            UserExists::Yes
        } else {
            UserExists::No
        }
    }

    fn sharedroster(&self, _target: &Target, user: &str) -> RosterReply {
        if Self::find(user).is_none() {
            return RosterReply::Unavailable(xcauth_core::Unavailable::Status(500));
        }
        let entries: Vec<RosterEntry> = ACCOUNTS
            .iter()
            .map(|(u, _, name)| RosterEntry {
                uid: (*u).to_owned(),
                name: Some((*name).to_owned()),
                groups: vec!["Demo Team".to_owned()],
            })
            .collect();
        let body = format!(
            "{{\"result\":\"success\",\"data\":{{\"sharedRoster\":{{{}}}}}}}",
            ACCOUNTS
                .iter()
                .map(|(u, _, n)| format!("\"{u}\":{{\"name\":\"{n}\",\"groups\":[\"Demo Team\"]}}"))
                .collect::<Vec<_>>()
                .join(",")
        );
        RosterReply::Roster(SharedRoster { entries, body })
    }
}

#[allow(clippy::print_stdout)]
fn banner(text: &str) {
    let mut out = std::io::stdout().lock();
    let _ = out.write_all(text.as_bytes());
    let _ = out.flush();
}

/// The ejabberd port of the shipped socket units; the other framings follow it.
pub const DEFAULT_PORT_BASE: u16 = 23662;

/// Runs the demo until Ctrl-C, with its TCP listeners from `port_base` on (0: free ports).
pub fn run(config: &Config, port_base: u16) -> ExitCode {
    crate::sys::install_signal_handlers();
    // Never contacted (the demo backend answers in-process); it names the demo in log lines.
    let url = match BackendUrl::parse(DEMO_URL) {
        Ok(url) => url,
        Err(e) => return fail(exit::FAILURE, &format!("demo url: {e}")),
    };
    let engine = Arc::new(Engine::new(
        GlobalBackend {
            url,
            secret: Secret::new(DEMO_SECRET),
        },
        Arc::new(DemoBackend),
        Arc::new(SystemClock),
    ));
    let lo = IpAddr::V4(Ipv4Addr::LOCALHOST);
    let sock_dir = std::env::temp_dir().join(format!("xcauthd-demo-{}", std::process::id()));
    let mux = sock_dir.join("mux");
    let mut endpoints = Vec::new();
    // The shipped units' layout: ejabberd, generic = +1, postfix = +3, saslauthd = +4.
    let mut ports = [0u16; 4];
    for (i, (framing, offset)) in [
        (Framing::Ejabberd, 0),
        (Framing::Generic, 1),
        (Framing::Postfix, 3),
        (Framing::Saslauthd, 4),
    ]
    .into_iter()
    .enumerate()
    {
        let port = if port_base == 0 {
            0
        } else {
            port_base.saturating_add(offset)
        };
        match Endpoint::bind_tcp(SocketAddr::new(lo, port), Service::Framing(framing)) {
            Ok(ep) => {
                ports[i] = ep.tcp_port().unwrap_or(port);
                endpoints.push(ep);
            }
            Err(e) => {
                return fail(
                    exit::FAILURE,
                    &format!("demo: cannot listen on 127.0.0.1:{port}: {e}"),
                )
            }
        }
    }
    if let Err(e) = std::fs::create_dir_all(&sock_dir) {
        return fail(
            exit::FAILURE,
            &format!("demo: cannot create {}: {e}", sock_dir.display()),
        );
    }
    match Endpoint::bind_unix(&mux, Service::Framing(Framing::Saslauthd), 0o666, None) {
        Ok(mut ep) => {
            // Like any Unix listener: root, this user and the socket's group.
            ep.policy = listen::PeerPolicy::new(&[], None, ep.socket_gid());
            endpoints.push(ep);
        }
        Err(e) => {
            return fail(
                exit::FAILURE,
                &format!("demo: cannot listen on {}: {e}", mux.display()),
            )
        }
    }
    let expiry = SystemClock
        .now()
        .duration_since(UNIX_EPOCH)
        .map(|d| d.as_secs() + 3600)
        .unwrap_or(0);
    let [ejabberd, generic, postfix, saslauthd] = ports;
    let token = xcauth_core::token::generate(
        "alice",
        "example.org",
        &Secret::new(DEMO_SECRET),
        u32::try_from(expiry).unwrap_or(u32::MAX),
    );
    banner(&format!(
        "\
xcauthd DEMO — a built-in demo backend, NOT Nextcloud. Loopback only. Ctrl-C stops it.
Accounts: alice/secret, bob/builder; app password for alice: {app}
Token for alice@example.org (valid 1 h): {token}
Ports on 127.0.0.1: ejabberd {ejabberd}, generic {generic}, postfix {postfix}, saslauthd {saslauthd}

Try it:
  generic (Prosody):  printf 'auth:alice:example.org:secret\\nisuser:carol:example.org\\n' | nc 127.0.0.1 {generic}
                      -> 1 and 0
  ejabberd:           printf '\\000\\035auth:alice:example.org:secret' | nc 127.0.0.1 {ejabberd} | od -An -tx1
                      -> 00 02 00 01
  postfix:            postmap -q alice@example.org tcp:127.0.0.1:{postfix}   -> OK (exit 0)
                      postmap -q carol@example.org tcp:127.0.0.1:{postfix}   -> (nothing, exit 1)
  saslauthd:          testsaslauthd -u alice -p secret -f {mux}
                      -> 0: OK \"Success.\"

For the real thing: put url= and secret= of your Nextcloud JSXC app into /etc/xcauth.conf
and see README.md, \"Configuration\".
",
        app = APP_PASSWORD.1,
        mux = mux.display(),
    ));
    let result = listen::run(engine, endpoints, startup::limits(config));
    let _ = std::fs::remove_dir_all(&sock_dir);
    match result {
        Ok(()) => ExitCode::SUCCESS,
        Err(e) => fail(exit::FAILURE, &format!("demo: {e}")),
    }
}
