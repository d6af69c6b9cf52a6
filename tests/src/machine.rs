//! What the tests share with everything else on the machine, including a second run of the
//! suite from another clone: loopback ports for programs that bind their own listeners, and
//! one lock for the tests that change the machine itself.
//!
//! Both live as `flock(2)` locks on files under [`LOCK_DIR`]. A lock belongs to the open file
//! it was taken on, so two threads of one test process, a child the process re-runs itself in
//! ([`crate::support::in_own_process`]) and another run of the suite all exclude each other,
//! and the kernel drops the lock when its holder dies: a crashed test leaves nothing stuck.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::missing_panics_doc)] // test support

use std::cell::Cell;
use std::fs::File;
use std::io::{Seek, Write};
use std::net::{Ipv4Addr, Ipv6Addr, SocketAddr, TcpListener};
use std::os::fd::AsRawFd;
use std::os::unix::fs::{OpenOptionsExt, PermissionsExt};
use std::path::{Path, PathBuf};
use std::time::{Duration, Instant};

/// Where the lock files live: a tmpfs every user may write to (Debian's `/run/lock` is 1777),
/// shared by every run of the suite on this machine.
pub const LOCK_DIR: &str = "/run/lock/xcauth-e2e";

/// The ports [`reserve_port`] hands out: below the kernel's ephemeral range (32768–60999 by
/// default, `net.ipv4.ip_local_port_range`), so neither a `bind` to port 0 nor a client's
/// source port ever lands in it, and above the ports Debian's packaged services use.
pub const PORTS: std::ops::Range<u16> = 20_000..22_000;

/// The machine lock is waited for this long before the test fails (the package test, which
/// holds it longest, builds and installs a package in a minute or two).
const MACHINE_LOCK_PATIENCE: Duration = Duration::from_secs(30 * 60);

fn lock_dir() -> PathBuf {
    let dir = Path::new(LOCK_DIR);
    if !dir.is_dir() {
        std::fs::create_dir_all(dir)
            .unwrap_or_else(|e| panic!("cannot create {}: {e}", dir.display()));
        // Any user's run may add its lock files (sticky, like /run/lock itself).
        let _ = std::fs::set_permissions(dir, std::fs::Permissions::from_mode(0o1777));
    }
    dir.to_path_buf()
}

/// Opens (creating it, world-writable) the lock file `path`.
fn open_lock_file(path: &Path) -> std::io::Result<File> {
    let file = std::fs::OpenOptions::new()
        .read(true)
        .write(true)
        .create(true)
        .truncate(false)
        .mode(0o666)
        .open(path)
        .or_else(|_| File::open(path))?;
    // Against the umask, so that another user's run can open it for writing too.
    let _ = file.set_permissions(std::fs::Permissions::from_mode(0o666));
    Ok(file)
}

/// `flock(LOCK_EX | LOCK_NB)`: true when this open file now holds the lock.
fn try_flock(file: &File) -> bool {
    // SAFETY: flock on a descriptor this function borrows from an open File; no memory passes.
    #[allow(unsafe_code)]
    let rc = unsafe { libc::flock(file.as_raw_fd(), libc::LOCK_EX | libc::LOCK_NB) };
    rc == 0
}

/// A loopback port that this test alone may let a program bind, until dropped.
#[derive(Debug)]
pub struct PortLease {
    port: u16,
    _lock: File,
}

impl PortLease {
    /// The port number.
    pub fn port(&self) -> u16 {
        self.port
    }

    /// `127.0.0.1:PORT`.
    pub fn addr(&self) -> SocketAddr {
        SocketAddr::from((Ipv4Addr::LOCALHOST, self.port))
    }
}

/// A port in [`PORTS`] for a program that binds its own listener (ejabberd, Prosody, Apache,
/// xcauthd's `listen=` and `metrics-listen=`, …): no other test of this or another run holds
/// it while the lease lives, and it was free on 127.0.0.1 and ::1 when handed out. Where the
/// test can bind the socket itself and hand it over, prefer
/// [`crate::activation::Listeners`].
pub fn reserve_port() -> PortLease {
    let dir = lock_dir();
    let span = usize::from(PORTS.end - PORTS.start);
    // Start somewhere else each time, so that a port just given back (its last connections
    // maybe still in TIME_WAIT) is not the next one handed out.
    let nanos = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map_or(0, |d| d.subsec_nanos());
    let seed = usize::try_from(std::process::id()).unwrap_or(0) * 7919
        + crate::support::unique() * 104_729
        + usize::try_from(nanos).unwrap_or(0);
    for k in 0..span {
        let port = PORTS.start + u16::try_from((seed + k) % span).unwrap();
        let Ok(file) = open_lock_file(&dir.join(format!("port-{port}"))) else {
            continue;
        };
        if !try_flock(&file) {
            continue;
        }
        if bindable(port) {
            return PortLease { port, _lock: file };
        }
    }
    panic!(
        "no free port in {PORTS:?}: every one is leased (lock files in {LOCK_DIR}) or bound \
         by a program outside the test suite"
    );
}

/// True when nothing listens on `port` on 127.0.0.1 or on ::1 (where IPv6 exists).
fn bindable(port: u16) -> bool {
    if TcpListener::bind((Ipv4Addr::LOCALHOST, port)).is_err() {
        return false;
    }
    match TcpListener::bind((Ipv6Addr::LOCALHOST, port)) {
        Ok(_) => true,
        // No IPv6 loopback here: nothing can listen there either.
        Err(e) => e.kind() == std::io::ErrorKind::AddrNotAvailable,
    }
}

thread_local! {
    /// How many machine locks the current thread holds (for [`MachineLock::assert_held`]).
    static HELD: Cell<usize> = const { Cell::new(0) };
}

/// The machine-wide lock for a test that changes the machine outside its scratch directory
/// (installs or purges the package, writes `/etc/xcauth.conf` or `/etc/pam.d/common-*`, adds
/// or deletes local users): one such test at a time, across every run of the suite here. Held
/// until dropped; take it first thing in the test, before its other drop guards, so that it
/// is given back after they have undone their changes.
#[derive(Debug)]
pub struct MachineLock {
    _file: File,
}

impl MachineLock {
    /// Waits for the lock (the holder's name is in the panic message if it never comes).
    pub fn take(test: &str) -> MachineLock {
        // A second lock on a new open file would wait for the first one: for ever.
        assert_eq!(
            HELD.with(Cell::get),
            0,
            "{test}: this thread holds the machine lock already"
        );
        let path = lock_dir().join("machine");
        let mut file = open_lock_file(&path)
            .unwrap_or_else(|e| panic!("cannot open the machine lock {}: {e}", path.display()));
        let end = Instant::now() + MACHINE_LOCK_PATIENCE;
        while !try_flock(&file) {
            assert!(
                Instant::now() < end,
                "the machine lock {} was not free for {MACHINE_LOCK_PATIENCE:?}; its holder: {}",
                path.display(),
                std::fs::read_to_string(&path).unwrap_or_default().trim()
            );
            std::thread::sleep(Duration::from_millis(100));
        }
        // Who holds it, for whoever waits.
        let _ = file.set_len(0);
        let _ = file.rewind();
        let _ = writeln!(file, "pid {} test {test}", std::process::id());
        HELD.with(|h| h.set(h.get() + 1));
        MachineLock { _file: file }
    }

    /// Fails unless the current thread holds the machine lock: for helpers that change the
    /// machine, so that a test cannot forget to take it.
    pub fn assert_held(what: &str) {
        assert!(
            HELD.with(Cell::get) > 0,
            "{what} changes the machine: take xcauth_tests::machine::MachineLock first"
        );
    }
}

impl Drop for MachineLock {
    fn drop(&mut self) {
        HELD.with(|h| h.set(h.get().saturating_sub(1)));
        // Closing the file releases the flock.
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn leases_are_distinct_and_exclusive_while_held() {
        let leases: Vec<PortLease> = (0..20).map(|_| reserve_port()).collect();
        let mut ports: Vec<u16> = leases.iter().map(PortLease::port).collect();
        ports.sort_unstable();
        ports.dedup();
        assert_eq!(ports.len(), 20, "{ports:?}");
        for lease in &leases {
            assert!(PORTS.contains(&lease.port()));
            // Another open file of the lock, as another test process would open it.
            let other = open_lock_file(&lock_dir().join(format!("port-{}", lease.port()))).unwrap();
            assert!(!try_flock(&other), "port {} leased twice", lease.port());
        }
        let port = leases[0].port();
        drop(leases);
        let other = open_lock_file(&lock_dir().join(format!("port-{port}"))).unwrap();
        assert!(try_flock(&other), "a dropped lease gives the port back");
    }

    #[test]
    #[should_panic(expected = "take xcauth_tests::machine::MachineLock first")]
    fn changing_the_machine_needs_the_lock() {
        MachineLock::assert_held("a test helper");
    }
}
