//! `jsxc-double`: the JSXC backend double as a process, for shell-driven end-to-end scripts.
//!
//! ```text
//! jsxc-double --secret S [--port P] [--port-file PATH] [--exit-on-stdin-eof] [--php7]
//!             [--user uid:password[:display name]]... [--app-password uid:loginname:password]...
//!             [--group gid:display:uid1,uid2]... [--disabled uid]... [--fault SPEC]
//!             [--tls-cert CHAIN.pem --tls-key KEY.pem]
//! ```
//! Prints `READY <url>` once listening. `POST /__control` (loopback, unsigned) with
//! `fault=none|garbage|drop|wrongsig|closeafterheaders|status:503[:body]|delay:3000|redirect[:url]|json:BODY`
//! (also `huge:BYTES`, `hugenolength:BYTES`, `dropifreused`, `resetifreused`),
//! `keepalive=MILLIS` (close idle keep-alive connections; 0 = default),
//! `secret=S`, `reset=1` or `stats=1` changes the double at run time.

use std::io::{self, Read, Write};
use std::process::ExitCode;
use std::time::Duration;

use xcauth_tests::double::{parse_fault, BackendDouble, Options, PhpVersion, TlsFiles, User};

const USAGE: &str = "usage: jsxc-double --secret S [--port P] [--port-file PATH] \
[--exit-on-stdin-eof] [--php7] [--user uid:password[:display name]]... \
[--app-password uid:loginname:password]... [--group gid:display:uid1,uid2]... \
[--disabled uid]... [--fault SPEC] [--tls-cert CHAIN.pem --tls-key KEY.pem]\n";

fn main() -> ExitCode {
    match run() {
        Ok(()) => ExitCode::SUCCESS,
        Err(msg) => {
            let _ = io::stderr().write_all(format!("jsxc-double: {msg}\n{USAGE}").as_bytes());
            ExitCode::from(2)
        }
    }
}

fn run() -> Result<(), String> {
    let mut args = std::env::args().skip(1);
    let mut secret = None;
    let mut options = Options {
        control: true,
        ..Options::default()
    };
    let mut port_file = None;
    let mut tls_cert: Option<String> = None;
    let mut tls_key: Option<String> = None;
    let mut stdin_eof = false;
    let mut php7 = false;
    let mut fault = None;
    let mut users: Vec<User> = Vec::new();
    let mut app_passwords = Vec::new();
    let mut groups = Vec::new();
    let mut disabled = Vec::new();
    while let Some(arg) = args.next() {
        let mut value = |name: &str| args.next().ok_or(format!("{name} needs a value"));
        match arg.as_str() {
            "--secret" => secret = Some(value("--secret")?),
            "--port" => {
                options.port = value("--port")?
                    .parse()
                    .map_err(|_| "--port: not a port number".to_owned())?;
            }
            "--port-file" => port_file = Some(value("--port-file")?),
            "--tls-cert" => tls_cert = Some(value("--tls-cert")?),
            "--tls-key" => tls_key = Some(value("--tls-key")?),
            "--exit-on-stdin-eof" => stdin_eof = true,
            "--php7" => php7 = true,
            "--fault" => {
                let spec = value("--fault")?;
                fault = Some(parse_fault(&spec).ok_or(format!("unknown fault {spec:?}"))?);
            }
            "--user" => {
                let spec = value("--user")?;
                let mut parts = spec.splitn(3, ':');
                let (Some(uid), Some(password)) = (parts.next(), parts.next()) else {
                    return Err(format!("--user {spec:?}: expected uid:password[:display]"));
                };
                let mut user = User::new(uid, password);
                if let Some(display) = parts.next() {
                    user = user.display_name(display);
                }
                users.push(user);
            }
            "--app-password" => {
                let spec = value("--app-password")?;
                let parts: Vec<&str> = spec.splitn(3, ':').collect();
                let [uid, login, password] = parts[..] else {
                    return Err(format!(
                        "--app-password {spec:?}: expected uid:loginname:password"
                    ));
                };
                app_passwords.push((uid.to_owned(), login.to_owned(), password.to_owned()));
            }
            "--group" => {
                let spec = value("--group")?;
                let parts: Vec<&str> = spec.splitn(3, ':').collect();
                let [gid, display, members] = parts[..] else {
                    return Err(format!("--group {spec:?}: expected gid:display:uid1,uid2"));
                };
                let members: Vec<String> = members
                    .split(',')
                    .filter(|m| !m.is_empty())
                    .map(str::to_owned)
                    .collect();
                groups.push((gid.to_owned(), display.to_owned(), members));
            }
            "--disabled" => disabled.push(value("--disabled")?),
            "-h" | "--help" => {
                let _ = io::stdout().write_all(USAGE.as_bytes());
                return Ok(());
            }
            other => return Err(format!("unknown argument {other:?}")),
        }
    }
    let secret = secret.ok_or("--secret is required")?;
    options.tls = match (tls_cert, tls_key) {
        (Some(cert), Some(key)) => Some(TlsFiles {
            cert_chain: cert.into(),
            key: key.into(),
        }),
        (None, None) => None,
        _ => return Err("--tls-cert and --tls-key go together".to_owned()),
    };
    for (uid, login, password) in app_passwords {
        let user = users
            .iter_mut()
            .find(|u| u.uid() == uid)
            .ok_or(format!("--app-password: no --user {uid:?}"))?;
        *user = user.clone().app_password(&login, &password);
    }
    for uid in &disabled {
        let user = users
            .iter_mut()
            .find(|u| u.uid() == uid)
            .ok_or(format!("--disabled: no --user {uid:?}"))?;
        *user = user.clone().disabled();
    }

    let double = BackendDouble::start_with(&secret, options).map_err(|e| format!("bind: {e}"))?;
    for user in users {
        double.add_user(user);
    }
    for (gid, display, members) in &groups {
        let members: Vec<&str> = members.iter().map(String::as_str).collect();
        double.add_group(gid, display, &members);
    }
    if php7 {
        double.set_php_version(PhpVersion::Php7);
    }
    if let Some(fault) = fault {
        double.set_fault(fault);
    }
    if let Some(path) = port_file {
        std::fs::write(&path, format!("{}\n", double.port()))
            .map_err(|e| format!("--port-file {path}: {e}"))?;
    }
    let mut stdout = io::stdout();
    writeln!(stdout, "READY {}", double.url()).map_err(|e| e.to_string())?;
    stdout.flush().map_err(|e| e.to_string())?;

    if stdin_eof {
        let mut sink = [0u8; 1024];
        let mut stdin = io::stdin();
        while matches!(stdin.read(&mut sink), Ok(n) if n > 0) {}
        drop(double);
        return Ok(());
    }
    loop {
        std::thread::sleep(Duration::from_secs(3600));
    }
}
