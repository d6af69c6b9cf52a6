//! The installed systemd units, run without systemd as PID 1: the `ListenStream=` lines and
//! `FileDescriptorName=` of every installed `xc*.socket` become `systemd-socket-activate -l
//! ADDR --fdname=NAME` arguments, and the installed `xcauth.service`'s `ExecStart=` runs as its
//! `User=`/`Group=` (through `setpriv`, which keeps the PID that `LISTEN_PID` names). A
//! shipped address that is busy on this machine (another test, a running daemon) is replaced
//! by a free one of the same kind, and the test log says so. Then one request per framing
//! goes through each address.

#![allow(clippy::unwrap_used, clippy::expect_used, clippy::print_stderr)] // tests

use std::io::{Read, Write};
use std::net::{SocketAddr, TcpListener, TcpStream};
use std::os::unix::net::UnixStream;
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::time::Duration;

use xcauth_tests::machine::{reserve_port, PortLease};
use xcauth_tests::support::{require_program, Proc};

const UNIT_DIR: &str = "/lib/systemd/system";

/// One `ListenStream=` of an installed socket unit, as this test binds it.
#[derive(Debug, Clone)]
pub enum Listen {
    Tcp(SocketAddr),
    Unix(PathBuf),
}

impl Listen {
    fn arg(&self) -> String {
        match self {
            Listen::Tcp(a) => a.to_string(),
            Listen::Unix(p) => p.display().to_string(),
        }
    }
}

/// An installed `xc*.socket`: its unit name, `FileDescriptorName=` and listen addresses (the
/// shipped ones, or free replacements).
#[derive(Debug)]
pub struct SocketUnit {
    pub unit: String,
    pub fdname: String,
    pub listen: Vec<Listen>,
    /// The replacement port, held for this test while the unit lives.
    pub _lease: Option<PortLease>,
}

/// `Key=value` values of `key` in a unit file's text.
fn values<'a>(text: &'a str, key: &str) -> Vec<&'a str> {
    text.lines()
        .filter_map(|l| l.trim().strip_prefix(key)?.strip_prefix('='))
        .map(str::trim)
        .collect()
}

fn tcp_free(addr: SocketAddr) -> bool {
    TcpListener::bind(addr).is_ok()
}

/// Every installed `xc*.socket`, with the shipped addresses where they are free and free
/// replacements (reported on stderr) where not. Unix paths that exist already go to
/// `scratch`.
pub fn installed_sockets(scratch: &Path) -> Vec<SocketUnit> {
    let mut units = Vec::new();
    let mut names: Vec<_> = std::fs::read_dir(UNIT_DIR)
        .unwrap()
        .filter_map(|e| e.ok()?.file_name().into_string().ok())
        .filter(|n| n.starts_with("xc") && n.ends_with(".socket"))
        .collect();
    names.sort();
    for unit in names {
        let text = std::fs::read_to_string(Path::new(UNIT_DIR).join(&unit)).unwrap();
        let fdname = values(&text, "FileDescriptorName")
            .first()
            .unwrap_or_else(|| panic!("{unit} has no FileDescriptorName"))
            .to_string();
        let shipped = values(&text, "ListenStream");
        assert!(!shipped.is_empty(), "{unit} has no ListenStream");
        // All TCP lines of a unit share one port; a busy one moves them together.
        let tcp: Vec<SocketAddr> = shipped.iter().filter_map(|s| s.parse().ok()).collect();
        let lease = (!tcp.iter().all(|a| tcp_free(*a))).then(reserve_port);
        let moved_port = lease.as_ref().map(PortLease::port);
        let mut listen = Vec::new();
        for s in shipped {
            if let Ok(mut addr) = s.parse::<SocketAddr>() {
                if let Some(p) = moved_port {
                    eprintln!("{unit}: {addr} is busy here; using port {p} instead");
                    addr.set_port(p);
                }
                listen.push(Listen::Tcp(addr));
            } else {
                let path = PathBuf::from(s);
                assert!(path.is_absolute(), "{unit}: unexpected ListenStream={s}");
                if path.exists() {
                    let other = scratch.join(format!("{fdname}-{}.sock", listen.len()));
                    eprintln!("{unit}: {s} exists here; using {} instead", other.display());
                    listen.push(Listen::Unix(other));
                } else {
                    listen.push(Listen::Unix(path));
                }
            }
        }
        units.push(SocketUnit {
            unit,
            fdname,
            listen,
            _lease: lease,
        });
    }
    units
}

/// The installed `xcauth.service`'s `ExecStart=`, `User=` and `Group=`.
fn service() -> (Vec<String>, String, String) {
    let text = std::fs::read_to_string(Path::new(UNIT_DIR).join("xcauth.service")).unwrap();
    let one = |k: &str| {
        let v = values(&text, k);
        assert_eq!(v.len(), 1, "xcauth.service: {k}= {v:?}");
        v[0].to_owned()
    };
    let exec = one("ExecStart")
        .split_whitespace()
        .map(str::to_owned)
        .collect();
    (exec, one("User"), one("Group"))
}

/// The running service; on drop it is stopped, and the Unix socket files and directories
/// this test created under the shipped paths are removed (`systemd-socket-activate` leaves
/// its socket files behind).
pub struct Activated {
    pub proc: Proc,
    created_dirs: Vec<PathBuf>,
    created_files: Vec<PathBuf>,
}

impl Activated {
    /// What this test created outside its scratch directory.
    pub fn created(&self) -> Vec<PathBuf> {
        self.created_files
            .iter()
            .chain(&self.created_dirs)
            .cloned()
            .collect()
    }
}

impl Drop for Activated {
    fn drop(&mut self) {
        self.proc.signal("TERM");
        let _ = self.proc.wait_exit(Duration::from_secs(10));
        for f in &self.created_files {
            let _ = std::fs::remove_file(f);
        }
        for d in self.created_dirs.iter().rev() {
            let _ = std::fs::remove_dir_all(d);
        }
    }
}

/// Starts the installed service the way systemd would: every socket of `units` bound by
/// `systemd-socket-activate` with its name, the service's command as its user; stderr to
/// `log`. Waits until every address accepts (failing at once, with the log, should it exit).
pub fn activate(units: &[SocketUnit], log: &Path) -> Activated {
    let (exec, user, group) = service();
    let mut created_dirs = Vec::new();
    let mut created_files = Vec::new();
    let mut cmd = Command::new(require_program("systemd-socket-activate"));
    for u in units {
        for l in &u.listen {
            if let Listen::Unix(p) = l {
                created_files.push(p.clone());
                let dir = p.parent().unwrap();
                if !dir.exists() {
                    std::fs::create_dir_all(dir).unwrap();
                    created_dirs.push(dir.to_path_buf());
                }
            }
            cmd.args(["-l", &l.arg(), &format!("--fdname={}", u.fdname)]);
        }
    }
    cmd.arg(require_program("setpriv"))
        .args([
            &format!("--reuid={user}"),
            &format!("--regid={group}"),
            "--init-groups",
        ])
        .args(&exec)
        .stdin(Stdio::null())
        .stdout(Stdio::null())
        .stderr(std::fs::File::create(log).unwrap());
    let proc = Proc::spawn("systemd-socket-activate", &mut cmd).with_log(log);
    // The guard first: it cleans up also when a wait fails.
    let mut activated = Activated {
        proc,
        created_dirs,
        created_files,
    };
    for u in units {
        for l in &u.listen {
            match l {
                Listen::Tcp(a) => activated.proc.wait_for_tcp(*a, Duration::from_secs(10)),
                Listen::Unix(p) => activated.proc.wait_for_unix(p, Duration::from_secs(10)),
            }
        }
    }
    activated
}

fn frame(text: &[u8]) -> Vec<u8> {
    let mut v = u16::try_from(text.len()).unwrap().to_be_bytes().to_vec();
    v.extend_from_slice(text);
    v
}

fn connect(l: &Listen) -> Box<dyn ReadWrite> {
    let limit = Some(Duration::from_secs(10));
    match l {
        Listen::Tcp(a) => {
            let s = TcpStream::connect_timeout(a, Duration::from_secs(5)).unwrap();
            s.set_read_timeout(limit).unwrap();
            Box::new(s)
        }
        Listen::Unix(p) => {
            let s = UnixStream::connect(p).unwrap();
            s.set_read_timeout(limit).unwrap();
            Box::new(s)
        }
    }
}

trait ReadWrite: Read + Write {}
impl<T: Read + Write> ReadWrite for T {}

/// Sends `request` and returns the first `expected_len` bytes of the reply (fewer when the
/// connection ended first).
fn exchange(l: &Listen, request: &[u8], expected_len: usize) -> Vec<u8> {
    let mut s = connect(l);
    s.write_all(request).unwrap();
    let mut got = Vec::new();
    let mut buf = [0u8; 256];
    while got.len() < expected_len {
        match s.read(&mut buf) {
            Ok(0) => break,
            Ok(n) => got.extend_from_slice(&buf[..n]),
            Err(e) => panic!("{}: {e} after {got:?}", l.arg()),
        }
    }
    got.truncate(expected_len);
    got
}

/// One login (Postfix: one lookup, the only question its framing asks) with `user`@example.org
/// and `password` through `l` in `fdname`'s framing; true when accepted. The pam socket is
/// driven by pamtester elsewhere (it needs the module).
pub fn login(fdname: &str, l: &Listen, user: &str, password: &str) -> bool {
    let auth = format!("auth:{user}:example.org:{password}");
    match fdname {
        "ejabberd" => {
            let reply = exchange(l, &frame(auth.as_bytes()), 4);
            assert!(reply == [0, 2, 0, 1] || reply == [0, 2, 0, 0], "{reply:?}");
            reply == [0, 2, 0, 1]
        }
        "prosody" | "generic" => {
            let reply = exchange(l, format!("{auth}\n").as_bytes(), 2);
            assert!(reply == b"1\n" || reply == b"0\n", "{reply:?}");
            reply == b"1\n"
        }
        "postfix" => {
            let reply = exchange(l, format!("get {user}@example.org\n").as_bytes(), 4);
            assert!(reply == b"200 " || reply == b"500 ", "{reply:?}");
            reply == b"200 "
        }
        "saslauthd" => {
            let request: Vec<u8> = [
                user.as_bytes(),
                password.as_bytes(),
                b"smtp",
                b"example.org",
            ]
            .iter()
            .flat_map(|f| frame(f))
            .collect();
            let reply = exchange(l, &request, 4);
            assert!(
                reply == b"\x00\x0aOK" || reply == b"\x00\x20NO",
                "{reply:?}"
            );
            reply == b"\x00\x0aOK"
        }
        other => panic!("no client for framing {other}"),
    }
}
