//! xcauthd's sockets under hostile or foreign clients: slow-drip (slowloris) clients are cut
//! off at the request timeout, each listener has its own connection slots, a client waiting
//! for a full listener gets the slot of the connection that made no progress for longest, one
//! local user holds at most `max-connections-per-user` connections of a Unix socket, and Unix
//! sockets only serve the local users they allow (`SO_PEERCRED`), whatever the file
//! permissions say.
//! Group names resolve through NSS and an unknown one is a configuration error.

#![allow(clippy::unwrap_used, clippy::expect_used)] // tests: a failed unwrap is a failed test

use std::io::{Read, Write};
use std::net::{SocketAddr, TcpStream};
use std::os::unix::net::UnixStream;
use std::path::{Path, PathBuf};
use std::process::Command;
use std::time::{Duration, Instant};

use xcauth_core::pamsock::{self, PamReply, PamRequest};
use xcauth_tests::double::{BackendDouble, User};
use xcauth_tests::support::{self, Listeners, Proc, Scratch};

const SECRET: &str = "e2e-secret";

fn double() -> BackendDouble {
    let d = BackendDouble::start(SECRET);
    d.add_user(User::new("alice", "secret"));
    d
}

struct Daemon {
    proc: Proc,
    log: PathBuf,
    generic: SocketAddr,
    postfix: SocketAddr,
    pam: PathBuf,
    mux: PathBuf,
}

/// xcauthd on sockets this test bound (socket activation): a generic and a postfix TCP
/// listener, a pam socket and a saslauthd Unix socket (both mode 0666).
fn daemon(s: &Scratch, d: &BackendDouble, extra: &str) -> Daemon {
    let mut listeners = Listeners::new();
    let generic = listeners.tcp("generic");
    let postfix = listeners.tcp("postfix");
    let pam = listeners.unix("pam", &s.join("pam.sock"));
    let mux = listeners.unix("saslauthd", &s.join("mux"));
    let conf = s.write(
        "xcauth.conf",
        &support::xcauth_conf(&d.url(), SECRET, extra),
    );
    let log = s.join("daemon.log");
    let proc = support::start_daemon(&conf, &log, listeners);
    Daemon {
        proc,
        log,
        generic,
        postfix,
        pam,
        mux,
    }
}

/// A daemon that binds its own Unix sockets (`listen=`, in the scratch directory): the pam
/// socket and a saslauthd socket, with the file mode and group the configuration asks for.
struct UnixDaemon {
    proc: Proc,
    pam: PathBuf,
    mux: PathBuf,
}

fn unix_daemon(s: &Scratch, d: &BackendDouble, extra: &str) -> UnixDaemon {
    let pam = s.join("pam.sock");
    let mux = s.join("mux");
    let conf = s.write(
        "xcauth.conf",
        &support::xcauth_conf(
            &d.url(),
            SECRET,
            &format!(
                "listen=[pam@unix:{}, saslauthd@unix:{}]\n{extra}",
                pam.display(),
                mux.display()
            ),
        ),
    );
    let proc = support::start_daemon_listening(&conf, &s.join("daemon.log"));
    UnixDaemon { proc, pam, mux }
}

fn isuser_alice() -> PamRequest {
    PamRequest::IsUser {
        user: "alice".into(),
        domain: "example.org".into(),
    }
}

/// A saslauthd request for alice/secret.
fn sasl_auth() -> Vec<u8> {
    let mut out = Vec::new();
    for f in [&b"alice"[..], b"secret", b"xcauth", b"example.org"] {
        out.extend_from_slice(&u16::try_from(f.len()).unwrap().to_be_bytes());
        out.extend_from_slice(f);
    }
    out
}

const SASL_OK: &[u8] = b"\x00\x0aOK success";

/// Sends `first`, then one byte of `drip` every 100 ms (well inside the old 250 ms tick, even
/// on a busy machine), until the server closes the
/// connection; returns how long that took.
fn trickle<S: Read + Write>(mut stream: S, first: &[u8], drip: u8, limit: Duration) -> Duration {
    let start = Instant::now();
    stream.write_all(first).unwrap();
    while start.elapsed() < limit {
        std::thread::sleep(Duration::from_millis(100));
        if stream.write_all(&[drip]).is_err() {
            return start.elapsed();
        }
    }
    panic!("a client trickling one byte every 100 ms was still served after {limit:?}");
}

/// Trickling into a generic line, a saslauthd frame or a pam frame: each connection is closed
/// about `request-timeout` after its request began, although it never goes 250 ms without
/// sending (so a check made only after a read times out would never fire) and is far from any size cap
/// (an 8 KiB line at 5 bytes a second lasts 27 minutes).
#[test]
fn a_trickling_client_is_cut_off_at_the_request_timeout() {
    let d = double();
    let s = Scratch::new("slowloris");
    let dm = daemon(&s, &d, "request-timeout=2s\nidle-timeout=1m");
    // Nothing but the request timeout closes a connection that sends within the idle timeout
    // (a minute): closed after at least its 2 s and well before the idle timeout, it was that.
    let limit = Duration::from_secs(45);
    let check = |what: &str, took: Duration| {
        assert!(
            took >= Duration::from_millis(1500) && took < Duration::from_secs(30),
            "{what}: closed after {took:?}, expected after the 2 s request timeout"
        );
    };
    let generic = std::thread::spawn(move || {
        trickle(
            TcpStream::connect(dm.generic).unwrap(),
            b"auth:alice:",
            b'x',
            limit,
        )
    });
    let mux = dm.mux.clone();
    // A saslauthd frame announcing a 60000-byte field.
    let sasl = std::thread::spawn(move || {
        trickle(
            UnixStream::connect(mux).unwrap(),
            &[0xea, 0x60],
            b'x',
            limit,
        )
    });
    // A pam frame announcing 60000 bytes.
    let pam = trickle(
        UnixStream::connect(&dm.pam).unwrap(),
        &[0, 0, 0xea, 0x60, 1],
        b'x',
        limit,
    );
    check("pam socket", pam);
    check("generic", generic.join().unwrap());
    check("saslauthd", sasl.join().unwrap());
    let log = dm.proc.log_text();
    assert!(
        log.contains("closing connection after 2s without a complete request"),
        "{log}"
    );

    // A patient but well-behaved client is not affected: idle, then a whole request.
    let mut g = TcpStream::connect(dm.generic).unwrap();
    std::thread::sleep(Duration::from_millis(2500));
    g.write_all(b"isuser:alice:example.org\n").unwrap();
    g.set_read_timeout(Some(Duration::from_secs(5))).unwrap();
    let mut buf = [0u8; 2];
    g.read_exact(&mut buf).unwrap();
    assert_eq!(&buf, b"1\n");
}

/// With max-connections=2 and two trickling clients holding both slots of the generic
/// listener, the other listeners answer at once: slots are per listener. A third client of the
/// generic listener gets the slot of a hog.
#[test]
fn trickling_clients_on_one_listener_do_not_starve_the_others() {
    let d = double();
    let s = Scratch::new("slots");
    let mut dm = daemon(
        &s,
        &d,
        "max-connections=2\nrequest-timeout=1m\nidle-timeout=1m",
    );
    let mut hogs = Vec::new();
    for _ in 0..2 {
        let mut h = TcpStream::connect(dm.generic).unwrap();
        h.write_all(b"auth:alice:").unwrap();
        hogs.push(h);
    }
    // Both slots are taken once the daemon says so (not after a fixed time); the line names
    // the listener, the generic one.
    let full = "systemd:generic: max-connections (2) reached";
    dm.proc.wait_for_log(full, Duration::from_secs(10));
    let stop = std::sync::Arc::new(std::sync::atomic::AtomicBool::new(false));
    let dripper = {
        let stop = std::sync::Arc::clone(&stop);
        std::thread::spawn(move || {
            while !stop.load(std::sync::atomic::Ordering::SeqCst) {
                for h in &mut hogs {
                    let _ = h.write_all(b"x");
                }
                std::thread::sleep(Duration::from_millis(200));
            }
            hogs
        })
    };

    let start = Instant::now();
    assert_eq!(
        pamsock::Connection::open(&dm.pam, Duration::from_secs(30))
            .and_then(|mut conn| conn.ask(&isuser_alice()))
            .map_err(|e| e.to_string()),
        Ok(PamReply::Exists)
    );
    let pam_took = start.elapsed();

    let start = Instant::now();
    let mut p = TcpStream::connect(dm.postfix).unwrap();
    p.set_read_timeout(Some(Duration::from_secs(30))).unwrap();
    p.write_all(b"get alice@example.org\n").unwrap();
    let mut line = [0u8; 2];
    p.read_exact(&mut line).unwrap();
    assert_eq!(&line, b"20");
    let postfix_took = start.elapsed();

    let start = Instant::now();
    let mut m = UnixStream::connect(&dm.mux).unwrap();
    m.set_read_timeout(Some(Duration::from_secs(30))).unwrap();
    m.write_all(&sasl_auth()).unwrap();
    let mut reply = vec![0u8; SASL_OK.len()];
    m.read_exact(&mut reply).unwrap();
    assert_eq!(reply, SASL_OK);
    let sasl_took = start.elapsed();

    // Starved, they would wait for the hogs (a minute's request-timeout), and their 30 s read
    // timeouts above would have failed first; the bound is half the hogs' minute, far above
    // what a busy machine needs to answer.
    for (what, took) in [
        ("pam", pam_took),
        ("postfix", postfix_took),
        ("saslauthd", sasl_took),
    ] {
        assert!(took < Duration::from_secs(30), "{what} waited {took:?}");
    }

    // A client of the hogged listener itself gets in too, in the slot of a hog (waiting for a
    // hog to leave would take the minute of its request-timeout).
    let mut c = TcpStream::connect(dm.generic).unwrap();
    c.write_all(b"isuser:alice:example.org\n").unwrap();
    c.set_read_timeout(Some(Duration::from_secs(30))).unwrap();
    let mut buf = [0u8; 2];
    c.read_exact(&mut buf).unwrap();
    assert_eq!(&buf, b"1\n", "served while the hogs drip");
    stop.store(true, std::sync::atomic::Ordering::SeqCst);
    drop(dripper.join().unwrap());
    let log = dm.proc.log_text();
    assert!(log.contains(full), "{log}");
}

/// True when the server closed `stream` (end of input or reset within `within`).
fn closed_by_server(stream: &mut TcpStream, within: Duration) -> bool {
    stream.set_read_timeout(Some(within)).unwrap();
    let mut buf = [0u8; 16];
    match stream.read(&mut buf) {
        Ok(0) => true,
        Ok(_) => false,
        Err(e) => e.kind() == std::io::ErrorKind::ConnectionReset,
    }
}

/// Every slot of a loopback TCP listener is held by clients that began a request and drip a
/// byte every 200 ms (never idle by byte count): a login waiting for the listener gets in at
/// once, in the slot of one of them; the others keep theirs. Then, with the slots held by two
/// idle clients and a keep-alive client answered after they connected, the next login takes
/// the slot of the first idle client and the keep-alive client keeps its connection. (Before,
/// a login waited for a slot until a hog's request or idle timeout.)
#[test]
fn a_waiting_login_gets_the_slot_of_the_idlest_connection() {
    let d = double();
    let s = Scratch::new("slots-idlest");
    // Without a slot of its own, the login would wait for a hog's request or idle timeout (a
    // minute); half of that is far above what a busy machine needs to answer.
    let login = |dm: &Daemon| {
        let started = Instant::now();
        let mut login = TcpStream::connect(dm.generic).unwrap();
        login
            .set_read_timeout(Some(Duration::from_secs(30)))
            .unwrap();
        login.write_all(b"auth:alice:example.org:secret\n").unwrap();
        let mut buf = [0u8; 2];
        login
            .read_exact(&mut buf)
            .expect("the login got no slot within 30 s");
        assert_eq!(&buf, b"1\n");
        let took = started.elapsed();
        assert!(took < Duration::from_secs(30), "the login waited {took:?}");
    };
    let settings = "max-connections=3\nrequest-timeout=1m\nidle-timeout=1m";
    let closed_one = "every slot taken and a client waiting: closed the connection";
    let full = "systemd:generic: max-connections (3) reached";

    // 1. Three drippers.
    let mut dm = daemon(&s, &d, settings);
    let mut hogs: Vec<TcpStream> = (0..3)
        .map(|_| {
            let mut h = TcpStream::connect(dm.generic).unwrap();
            h.write_all(b"auth:alice:").unwrap();
            h
        })
        .collect();
    let stop = std::sync::Arc::new(std::sync::atomic::AtomicBool::new(false));
    let clones: Vec<TcpStream> = hogs.iter().map(|h| h.try_clone().unwrap()).collect();
    let dripper = {
        let stop = std::sync::Arc::clone(&stop);
        std::thread::spawn(move || {
            let mut clones = clones;
            while !stop.load(std::sync::atomic::Ordering::SeqCst) {
                for h in &mut clones {
                    let _ = h.write_all(b"x");
                }
                std::thread::sleep(Duration::from_millis(200));
            }
        })
    };
    dm.proc.wait_for_log(full, Duration::from_secs(20));
    login(&dm);
    stop.store(true, std::sync::atomic::Ordering::SeqCst);
    dripper.join().unwrap();
    dm.proc.wait_for_log(closed_one, Duration::from_secs(20));
    let log = dm.proc.log_text();
    // The closed one was shut down before the login was served: its end is there already.
    let closed: Vec<bool> = hogs
        .iter_mut()
        .map(|h| closed_by_server(h, Duration::from_millis(300)))
        .collect();
    assert_eq!(
        closed.iter().filter(|c| **c).count(),
        1,
        "{closed:?}\n{log}"
    );
    drop(hogs);
    drop(dm);

    // 2. Two idle clients, then a keep-alive client answered after they connected (so after
    //    they were accepted, in the order of the listen backlog).
    let s = Scratch::new("slots-keepalive");
    let mut dm = daemon(&s, &d, settings);
    let mut idle: Vec<TcpStream> = (0..2)
        .map(|_| TcpStream::connect(dm.generic).unwrap())
        .collect();
    let mut keep = TcpStream::connect(dm.generic).unwrap();
    keep.set_read_timeout(Some(Duration::from_secs(30)))
        .unwrap();
    let mut buf = [0u8; 2];
    keep.write_all(b"isuser:alice:example.org\n").unwrap();
    keep.read_exact(&mut buf).unwrap();
    assert_eq!(&buf, b"1\n");
    dm.proc.wait_for_log(full, Duration::from_secs(20));
    login(&dm);
    dm.proc.wait_for_log(closed_one, Duration::from_secs(20));
    assert!(closed_by_server(&mut idle[0], Duration::from_secs(30)));
    assert!(!closed_by_server(&mut idle[1], Duration::from_millis(300)));
    keep.write_all(b"isuser:alice:example.org\n").unwrap();
    keep.read_exact(&mut buf).unwrap();
    assert_eq!(&buf, b"1\n", "the keep-alive connection still works");
}

/// Clients that fill a listener's slots and keep busy on them, completing a request every
/// 200 ms: a login waiting for the listener still gets in, in the slot of one of them, while
/// they go on. Once with valid requests (the hogs never go a second without a reply: the
/// slot held longest goes), once with malformed lines (answered with an error, they are not
/// progress: the hog that made none goes, as soon as that is a second). Before, a client that
/// completed any line within every second kept its slot, and the login waited until the hogs
/// stopped.
#[test]
fn clients_that_keep_busy_do_not_keep_a_login_out() {
    let d = double();
    for (tag, line, reply, closed) in [
        (
            "busy-valid",
            &b"isuser:alice:example.org\n"[..],
            &b"1\n"[..],
            "every slot taken and a client waiting: closed the connection",
        ),
        (
            "busy-garbage",
            &b"garbage\n"[..],
            &b"0\n"[..],
            "every slot taken and a client waiting: closed the connection that made no \
             progress for longest",
        ),
    ] {
        let s = Scratch::new(&format!("slots-{tag}"));
        let mut dm = daemon(
            &s,
            &d,
            "max-connections=3\nrequest-timeout=1m\nidle-timeout=1m",
        );
        let stop = std::sync::Arc::new(std::sync::atomic::AtomicBool::new(false));
        let hogs: Vec<_> = (0..3)
            .map(|_| {
                let mut h = TcpStream::connect(dm.generic).unwrap();
                h.set_read_timeout(Some(Duration::from_secs(10))).unwrap();
                let stop = std::sync::Arc::clone(&stop);
                std::thread::spawn(move || {
                    // Until the login is in, or the server closes this one; then whether it
                    // did.
                    let mut exchange = || {
                        let mut buf = [0u8; 2];
                        h.write_all(line)?;
                        h.read_exact(&mut buf)?;
                        assert_eq!(&buf, reply);
                        std::io::Result::Ok(())
                    };
                    while !stop.load(std::sync::atomic::Ordering::SeqCst) {
                        if exchange().is_err() {
                            return true;
                        }
                        std::thread::sleep(Duration::from_millis(200));
                    }
                    exchange().is_err()
                })
            })
            .collect();
        dm.proc.wait_for_log(
            "systemd:generic: max-connections (3) reached",
            Duration::from_secs(30),
        );
        let mut login = TcpStream::connect(dm.generic).unwrap();
        login
            .set_read_timeout(Some(Duration::from_secs(30)))
            .unwrap();
        login.write_all(b"auth:alice:example.org:secret\n").unwrap();
        let mut buf = [0u8; 2];
        let answered = login.read_exact(&mut buf);
        stop.store(true, std::sync::atomic::Ordering::SeqCst);
        let closed_hogs = hogs
            .into_iter()
            .map(|h| h.join().unwrap())
            .filter(|c| *c)
            .count();
        let log = std::fs::read_to_string(&dm.log).unwrap();
        assert!(
            answered.is_ok(),
            "{tag}: the login got no slot within 30 s while the hogs kept busy:\n{log}"
        );
        assert_eq!(&buf, b"1\n");
        assert_eq!(closed_hogs, 1, "{tag}: one hog lost its slot\n{log}");
        assert!(log.contains(closed), "{tag}: {log}");
    }
}

/// One local user connecting in a loop to a Unix socket while its share of it is busy: its
/// first further connections wait for a slot (as many as max-connections), the others are
/// closed at once, and the log gets one line when that starts and one with the count when no
/// client waits any more (before, a line per connection: megabytes a second).
#[test]
fn a_user_connecting_in_a_loop_costs_two_log_lines() {
    pam_support_require_root();
    support::require_program("setpriv");
    let d = double();
    // nobody's two requests stay at the backend until released: both its slots are busy.
    d.hold_until(usize::MAX);
    let s = Scratch::new("slots-refusals");
    let mut dm = daemon(
        &s,
        &d,
        "socket-allow-users=nobody\nmax-connections=4\n\
         max-connections-per-user=2\nrequest-timeout=1m\nidle-timeout=1m",
    );
    let script = r"
import socket, struct, sys
def frame(*fields):
    return b''.join(struct.pack('>H', len(f)) + f for f in fields)
busy = []
for i in range(2):
    s = socket.socket(socket.AF_UNIX)
    s.settimeout(30)
    s.connect(sys.argv[1])
    s.sendall(frame(b'alice', b'secret', b'xcauth', b'example.org'))
    busy.append(s)
print('sent', flush=True)
sys.stdin.readline()
for i in range(int(sys.argv[2])):
    s = socket.socket(socket.AF_UNIX)
    s.settimeout(30)
    s.connect(sys.argv[1])
    s.close()
print('done', flush=True)
sys.stdin.readline()
";
    let mut child = Command::new("setpriv")
        .args([
            "--reuid=nobody",
            "--regid=nogroup",
            "--clear-groups",
            "/usr/bin/python3",
            "-c",
            script,
        ])
        .arg(&dm.mux)
        .arg("500")
        .stdin(std::process::Stdio::piped())
        .stdout(std::process::Stdio::piped())
        .spawn()
        .unwrap();
    let mut stdin = child.stdin.take().unwrap();
    let mut out = std::io::BufReader::new(child.stdout.take().unwrap());
    let mut line = String::new();
    let mut next = |line: &mut String| {
        line.clear();
        std::io::BufRead::read_line(&mut out, line).unwrap();
        line.trim().to_owned()
    };
    assert_eq!(next(&mut line), "sent");
    assert!(
        d.wait_held(2, Duration::from_secs(20)),
        "nobody's two requests did not reach the backend"
    );
    let before = std::fs::read_to_string(&dm.log).unwrap();
    stdin.write_all(b"go\n").unwrap();
    assert_eq!(next(&mut line), "done");
    let during = std::fs::read_to_string(&dm.log).unwrap();
    let added = &during[before.len()..];
    let refused = "systemd:saslauthd: refused a connection from uid 65534: 4 connections already \
                   wait for a slot";
    assert_eq!(added.matches(refused).count(), 1, "{added}");
    assert!(
        added.lines().count() < 20,
        "{} log lines for 500 connections:\n{added}",
        added.lines().count()
    );
    // Once nobody's requests are answered, its waiting connections get its slots: no one
    // waits any more, and one line counts the refusals.
    d.release();
    dm.proc
        .wait_for_log("connections refused in", Duration::from_secs(30));
    let log = std::fs::read_to_string(&dm.log).unwrap();
    let summary = log
        .lines()
        .find(|l| l.contains("connections refused in"))
        .unwrap();
    let count: usize = summary
        .split(" connections refused in")
        .next()
        .and_then(|head| head.rsplit(' ').next())
        .and_then(|n| n.parse().ok())
        .unwrap_or_else(|| panic!("{summary}"));
    assert!(count > 400, "{summary}");
    stdin.write_all(b"end\n").unwrap();
    let _ = child.wait();
}

/// Runs a Python client as `nobody` that opens `count` connections to `socket`, one after the
/// other, sending nothing; on a line on its standard input it prints, per connection, whether
/// the server closed it (`1`) or not (`0`).
struct NobodyConnections {
    child: std::process::Child,
    out: std::io::BufReader<std::process::ChildStdout>,
}

impl NobodyConnections {
    fn open(socket: &Path, count: usize) -> NobodyConnections {
        support::require_program("setpriv");
        let script = r"
import socket, sys
conns = []
for i in range(int(sys.argv[2])):
    s = socket.socket(socket.AF_UNIX)
    s.settimeout(10)
    s.connect(sys.argv[1])
    conns.append(s)
print('opened', flush=True)
sys.stdin.readline()
states = []
for s in conns:
    s.settimeout(1)
    try:
        states.append('1' if s.recv(16) == b'' else '0')
    except socket.timeout:
        states.append('0')
    except OSError:
        states.append('1')
print(''.join(states), flush=True)
";
        let mut child = Command::new("setpriv")
            .args([
                "--reuid=nobody",
                "--regid=nogroup",
                "--clear-groups",
                "/usr/bin/python3",
                "-c",
                script,
            ])
            .arg(socket)
            .arg(count.to_string())
            .stdin(std::process::Stdio::piped())
            .stdout(std::process::Stdio::piped())
            .spawn()
            .unwrap();
        let mut out = std::io::BufReader::new(child.stdout.take().unwrap());
        let mut line = String::new();
        std::io::BufRead::read_line(&mut out, &mut line).unwrap();
        assert_eq!(line.trim(), "opened");
        NobodyConnections { child, out }
    }

    /// Which connections the server closed, in the order they were opened.
    fn closed(&mut self) -> String {
        self.child
            .stdin
            .as_mut()
            .unwrap()
            .write_all(b"probe\n")
            .unwrap();
        let mut line = String::new();
        std::io::BufRead::read_line(&mut self.out, &mut line).unwrap();
        line.trim().to_owned()
    }
}

impl Drop for NobodyConnections {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// One local user cannot take a Unix socket's slots: with max-connections=4 and
/// max-connections-per-user=2, `nobody` opening four idle connections to the pam socket keeps
/// only its last two (its oldest are closed for its newer ones), and root is served at once.
#[test]
fn one_user_holds_at_most_its_share_of_a_unix_socket() {
    pam_support_require_root();
    let d = double();
    let s = Scratch::new("slots-per-user");
    // The pam socket is mode 0666 (Listeners::unix); only the policy keeps users out.
    let mut dm = daemon(
        &s,
        &d,
        "socket-allow-users=nobody\nmax-connections=4\n\
         max-connections-per-user=2\nrequest-timeout=1m\nidle-timeout=1m",
    );
    let mut nobody = NobodyConnections::open(&dm.pam, 4);
    // Both of the extra connections made room in nobody's own share.
    let log = s.join("daemon.log");
    dm.proc.wait_until(
        "closing two of nobody's connections",
        Duration::from_secs(20),
        || {
            std::fs::read_to_string(&log)
                .unwrap_or_default()
                .matches("uid 65534 holds max-connections-per-user (2): closed its connection")
                .count()
                >= 2
        },
    );
    assert_eq!(nobody.closed(), "1100");
    // Root, twice at once: the two slots nobody cannot take.
    let ask = || {
        pamsock::Connection::open(&dm.pam, Duration::from_secs(30))
            .and_then(|mut conn| conn.ask(&isuser_alice()))
            .map_err(|e| e.to_string())
    };
    std::thread::scope(|scope| {
        let other = scope.spawn(ask);
        assert_eq!(ask(), Ok(PamReply::Exists));
        assert_eq!(other.join().unwrap(), Ok(PamReply::Exists));
    });
    assert!(
        !dm.proc.log_text().contains("every slot taken"),
        "root needed no one else's slot"
    );
}

/// Connects to `socket` as user `nobody` (group `nogroup`, no supplementary groups), sends
/// `request` and returns whatever came back before the server closed the connection.
fn exchange_as_nobody(socket: &Path, request: &[u8]) -> Vec<u8> {
    support::require_program("setpriv");
    let script = r"
import socket, sys
s = socket.socket(socket.AF_UNIX)
s.settimeout(5)
s.connect(sys.argv[1])
try:
    s.sendall(bytes.fromhex(sys.argv[2]))
    s.shutdown(socket.SHUT_WR)
except OSError:
    pass
out = b''
try:
    while True:
        b = s.recv(4096)
        if not b:
            break
        out += b
except OSError:
    pass
print(out.hex())
";
    let hex: String = request.iter().map(|b| format!("{b:02x}")).collect();
    let out = Command::new("setpriv")
        .args([
            "--reuid=nobody",
            "--regid=nogroup",
            "--clear-groups",
            "/usr/bin/python3",
            "-c",
            script,
        ])
        .arg(socket)
        .arg(hex)
        .output()
        .unwrap();
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let text = String::from_utf8(out.stdout).unwrap();
    (0..text.trim().len())
        .step_by(2)
        .map(|i| u8::from_str_radix(&text[i..i + 2], 16).unwrap())
        .collect()
}

fn pam_isuser_frame() -> Vec<u8> {
    pamsock::encode_request(&isuser_alice()).unwrap().to_vec()
}

/// The sockets are world-writable (socket-mode=0666), so only the peer check stands between
/// `nobody` and the daemon: refused by default (closed without a byte, one log line), served
/// once allowed by user or by group. Root is always served.
#[test]
fn unix_sockets_serve_only_allowed_peers() {
    pam_support_require_root();
    let d = double();
    let pam_reply_exists = pamsock::encode_reply(&PamReply::Exists).unwrap();

    let s = Scratch::new("peercred");
    let dm = unix_daemon(&s, &d, "socket-mode=0666");
    assert_eq!(exchange_as_nobody(&dm.pam, &pam_isuser_frame()), b"");
    assert_eq!(exchange_as_nobody(&dm.mux, &sasl_auth()), b"");
    let log = dm.proc.log_text();
    let refused = format!(
        "unix:{}: refused a connection from uid 65534 gid 65534",
        dm.pam.display()
    );
    assert!(log.contains(&refused), "{log}");
    assert!(
        log.contains(&format!(
            "unix:{}: refused a connection from uid 65534",
            dm.mux.display()
        )),
        "{log}"
    );
    // Root (this test) is served.
    assert_eq!(
        pamsock::Connection::open(&dm.pam, Duration::from_secs(5))
            .and_then(|mut conn| conn.ask(&isuser_alice()))
            .map_err(|e| e.to_string()),
        Ok(PamReply::Exists)
    );
    drop(dm);

    let s = Scratch::new("peercred-user");
    let dm = unix_daemon(&s, &d, "socket-mode=0666\nsocket-allow-users=nobody");
    assert_eq!(
        exchange_as_nobody(&dm.pam, &pam_isuser_frame()),
        pam_reply_exists
    );
    assert_eq!(exchange_as_nobody(&dm.mux, &sasl_auth()), SASL_OK);
    drop(dm);

    // By group: the socket's own group (socket-group) is the default.
    let s = Scratch::new("peercred-group");
    let dm = unix_daemon(&s, &d, "socket-mode=0666\nsocket-group=nogroup");
    assert_eq!(
        exchange_as_nobody(&dm.pam, &pam_isuser_frame()),
        pam_reply_exists
    );
    drop(dm);

    // socket-allow-groups replaces the socket's group.
    let s = Scratch::new("peercred-groups");
    let dm = unix_daemon(
        &s,
        &d,
        "socket-mode=0666\nsocket-group=nogroup\nsocket-allow-groups=root",
    );
    assert_eq!(exchange_as_nobody(&dm.pam, &pam_isuser_frame()), b"");
}

fn pam_support_require_root() {
    xcauth_tests::pam_support::require_root();
}

/// socket-group names go through NSS (getgrnam_r): an existing group is applied to the
/// socket file; an unknown one stops xcauthd with a configuration error naming the key.
#[test]
fn socket_group_names_resolve_and_unknown_ones_are_config_errors() {
    use std::os::unix::fs::MetadataExt;
    let d = double();
    let s = Scratch::new("sockgroup");
    let dm = unix_daemon(&s, &d, "socket-group=nogroup");
    let gid = std::fs::metadata(&dm.pam).unwrap().gid();
    assert_eq!(gid, 65534, "nogroup's gid");
    drop(dm);

    for (key, expected) in [
        (
            "socket-group",
            "socket-group: no group named \"no-such-group-xc\"",
        ),
        (
            "socket-allow-groups",
            "socket-allow-groups: no group named \"no-such-group-xc\"",
        ),
    ] {
        let s = Scratch::new("sockgroup-bad");
        let conf = s.write(
            "xcauth.conf",
            &support::xcauth_conf(
                &d.url(),
                SECRET,
                &format!(
                    "listen=pam@unix:{}\n{key}=no-such-group-xc",
                    s.join("p.sock").display()
                ),
            ),
        );
        let out = support::xcauthd(&conf)
            .args(["--daemon", "-i"])
            .output()
            .unwrap();
        let err = String::from_utf8_lossy(&out.stderr);
        assert_eq!(out.status.code(), Some(2), "{err}");
        assert!(err.contains(expected), "{err}");
    }
    let s = Scratch::new("sockuser-bad");
    let conf = s.write(
        "xcauth.conf",
        &support::xcauth_conf(
            &d.url(),
            SECRET,
            &format!(
                "listen=pam@unix:{}\nsocket-allow-users=no-such-user-xc",
                s.join("p.sock").display()
            ),
        ),
    );
    let out = support::xcauthd(&conf)
        .args(["--daemon", "-i"])
        .output()
        .unwrap();
    let err = String::from_utf8_lossy(&out.stderr);
    assert_eq!(out.status.code(), Some(2), "{err}");
    assert!(
        err.contains("socket-allow-users: no user named \"no-such-user-xc\""),
        "{err}"
    );
}
