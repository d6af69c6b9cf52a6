//! Listening sockets a test binds itself and hands to xcauthd through its socket-activation
//! path, the way systemd does (`LISTEN_FDS`, `LISTEN_PID`, `LISTEN_FDNAMES`; descriptors 3,
//! 4, … in the order added). The kernel picks each TCP port (the test each Unix path in its
//! scratch directory) and the socket listens before xcauthd starts: no other program can take
//! the address in between, and a client may connect at once (it waits in the backlog until
//! xcauthd accepts). xcauthd names each listener `systemd:NAME` in its log.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::missing_panics_doc)] // test support

use std::net::{SocketAddr, TcpListener};
use std::os::fd::{AsRawFd, OwnedFd, RawFd};
use std::os::unix::fs::PermissionsExt;
use std::os::unix::net::UnixListener;
use std::os::unix::process::CommandExt;
use std::path::{Path, PathBuf};
use std::process::Command;

/// The first descriptor of the socket-activation protocol (`SD_LISTEN_FDS_START`).
const FIRST_FD: RawFd = 3;

/// Sockets to pass, each with its `FileDescriptorName` (the framing xcauthd serves on it:
/// `generic`, `prosody`, `ejabberd`, `postfix`, `saslauthd` or `pam`).
#[derive(Debug, Default)]
pub struct Listeners {
    sockets: Vec<(OwnedFd, String)>,
}

impl Listeners {
    /// No sockets yet.
    pub fn new() -> Listeners {
        Listeners::default()
    }

    /// A TCP listener on 127.0.0.1 with a port the kernel picks, for framing `name`.
    pub fn tcp(&mut self, name: &str) -> SocketAddr {
        let listener = TcpListener::bind("127.0.0.1:0").unwrap();
        let addr = listener.local_addr().unwrap();
        self.sockets
            .push((OwnedFd::from(listener), name.to_owned()));
        addr
    }

    /// A TCP listener on `addr`, for framing `name`: for a port from
    /// [`crate::machine::reserve_port`], when a test needs the port to stay unused after the
    /// daemon is gone (a kernel-chosen one may go to another test's listener at once).
    pub fn tcp_at(&mut self, name: &str, addr: SocketAddr) -> SocketAddr {
        let listener = TcpListener::bind(addr).unwrap_or_else(|e| panic!("bind {addr}: {e}"));
        self.sockets
            .push((OwnedFd::from(listener), name.to_owned()));
        addr
    }

    /// A Unix listener at `path`, mode 0666 (systemd's default `SocketMode=`), for framing
    /// `name`. Returns the path.
    pub fn unix(&mut self, name: &str, path: &Path) -> PathBuf {
        let listener =
            UnixListener::bind(path).unwrap_or_else(|e| panic!("bind {}: {e}", path.display()));
        std::fs::set_permissions(path, std::fs::Permissions::from_mode(0o666)).unwrap();
        self.sockets
            .push((OwnedFd::from(listener), name.to_owned()));
        path.to_path_buf()
    }

    /// A command that runs `program` with these sockets as its descriptors 3, 4, … and the
    /// variables that name them. `LISTEN_PID` must be the program's own PID, which is known
    /// only in the child: `/bin/sh` sets it to its own (`$$`) and `exec`s the program, which
    /// keeps that PID. The returned command owns the sockets; drop it once the child is
    /// spawned, so that only the child holds them (then a stopped daemon really stops
    /// accepting).
    pub fn into_command(self, program: &Path) -> Command {
        let count = self.sockets.len();
        let names: Vec<&str> = self.sockets.iter().map(|(_, n)| n.as_str()).collect();
        let mut cmd = Command::new("/bin/sh");
        cmd.arg("-c")
            .arg(r#"LISTEN_PID=$$; export LISTEN_PID; exec "$0" "$@""#)
            .arg(program)
            .env("LISTEN_FDS", count.to_string())
            .env("LISTEN_FDNAMES", names.join(":"));
        let fds: Vec<OwnedFd> = self.sockets.into_iter().map(|(fd, _)| fd).collect();
        // Filled in the child; allocated here, as the child may not allocate.
        let mut moved: Vec<RawFd> = vec![-1; count];
        let place = move || place_listen_fds(&fds, &mut moved);
        // SAFETY: the closure runs in the forked child before exec and only calls fcntl and
        // dup2, which are async-signal-safe; it allocates nothing and takes no lock.
        #[allow(unsafe_code)]
        unsafe {
            cmd.pre_exec(place);
        }
        cmd
    }
}

/// In the forked child: makes `fds` its descriptors 3, 4, … (`moved` has room for one
/// number per socket).
#[allow(unsafe_code)]
fn place_listen_fds(fds: &[OwnedFd], moved: &mut [RawFd]) -> std::io::Result<()> {
    let first_free = FIRST_FD.saturating_add(RawFd::try_from(fds.len()).unwrap_or(RawFd::MAX));
    // First every socket to a number above the target range (so that moving one never
    // overwrites another that is still to be moved), closed again on exec …
    for (fd, slot) in fds.iter().zip(moved.iter_mut()) {
        // SAFETY: fcntl(F_DUPFD_CLOEXEC) on a descriptor the caller owns; async-signal-safe,
        // and no memory of ours is passed.
        let copy = unsafe { libc::fcntl(fd.as_raw_fd(), libc::F_DUPFD_CLOEXEC, first_free) };
        if copy < 0 {
            return Err(std::io::Error::last_os_error());
        }
        *slot = copy;
    }
    // … then each onto 3, 4, …: dup2 leaves the target without FD_CLOEXEC, so exactly these
    // survive the exec.
    for (target, &copy) in (FIRST_FD..).zip(moved.iter()) {
        // SAFETY: dup2 between descriptors of this (forked) process; async-signal-safe.
        // Whatever the target number held is closed: between fork and exec that is at most
        // std's exec-error pipe, which then reports a successful exec (the program is
        // /bin/sh, which exists).
        if unsafe { libc::dup2(copy, target) } < 0 {
            return Err(std::io::Error::last_os_error());
        }
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::os::unix::fs::MetadataExt;

    /// The socket inode of `fd`, as `/proc/PID/fd/N` names it (`socket:[INODE]`).
    fn inode(fd: &OwnedFd) -> u64 {
        std::fs::metadata(format!("/proc/self/fd/{}", fd.as_raw_fd()))
            .unwrap()
            .ino()
    }

    #[test]
    fn the_program_gets_the_sockets_in_order_with_its_own_pid() {
        let dir = tempfile::tempdir().unwrap();
        let mut listeners = Listeners::new();
        listeners.tcp("generic");
        listeners.unix("pam", &dir.path().join("pam.sock"));
        let inodes: Vec<u64> = listeners.sockets.iter().map(|(fd, _)| inode(fd)).collect();
        let mut cmd = listeners.into_command(Path::new("/bin/sh"));
        cmd.args([
            "-c",
            r#"echo "$$ $LISTEN_PID $LISTEN_FDS $LISTEN_FDNAMES"; readlink /proc/$$/fd/3 /proc/$$/fd/4; [ -e /proc/$$/fd/5 ] && echo extra; true"#,
        ]);
        let out = cmd.output().unwrap();
        drop(cmd);
        let text = String::from_utf8(out.stdout).unwrap();
        let lines: Vec<&str> = text.lines().collect();
        let first: Vec<&str> = lines[0].split(' ').collect();
        assert_eq!(
            first[0], first[1],
            "LISTEN_PID is the program's PID: {text}"
        );
        assert_eq!(&first[2..], ["2", "generic:pam"], "{text}");
        assert_eq!(
            &lines[1..],
            [
                format!("socket:[{}]", inodes[0]),
                format!("socket:[{}]", inodes[1])
            ],
            "fds 3 and 4 are the sockets, in the order added, and nothing else is open"
        );
    }

    #[test]
    fn the_sockets_close_with_the_command() {
        // A leased port: no other test binds it once the command has let it go.
        let lease = crate::machine::reserve_port();
        let mut listeners = Listeners::new();
        let addr = listeners.tcp_at("generic", lease.addr());
        let cmd = listeners.into_command(Path::new("/bin/true"));
        assert!(
            std::net::TcpStream::connect(addr).is_ok(),
            "still listening"
        );
        drop(cmd);
        assert!(
            std::net::TcpStream::connect(addr).is_err(),
            "closed with it"
        );
    }
}
