//! The daemon's only contact with raw file descriptors and signals.
//!
//! Everything here is small and has a `SAFETY:` note. The rest of the crate is
//! safe Rust.
#![allow(unsafe_code)]

use std::io;
use std::os::fd::{AsRawFd, BorrowedFd, FromRawFd, OwnedFd, RawFd};
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::Duration;

/// What an inherited descriptor is.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum FdKind {
    /// A listening TCP socket (IPv4 or IPv6).
    TcpListener,
    /// A listening Unix stream socket.
    UnixListener,
    /// A connected TCP socket (inetd "nowait").
    TcpStream,
    /// A connected Unix stream socket.
    UnixStream,
    /// Not a stream socket (pipe, tty, file, datagram socket…).
    NotASocket,
}

fn sockopt_int(fd: BorrowedFd<'_>, opt: libc::c_int) -> io::Result<libc::c_int> {
    let mut value: libc::c_int = 0;
    let mut len = std::mem::size_of::<libc::c_int>() as libc::socklen_t;
    // SAFETY: `fd` is a valid open descriptor for the duration of the borrow;
    // `value` and `len` point to properly sized, writable stack memory.
    let rc = unsafe {
        libc::getsockopt(
            fd.as_raw_fd(),
            libc::SOL_SOCKET,
            opt,
            std::ptr::addr_of_mut!(value).cast(),
            &mut len,
        )
    };
    if rc == 0 {
        Ok(value)
    } else {
        Err(io::Error::last_os_error())
    }
}

/// Classifies a descriptor by socket domain, type and listening state.
pub fn classify(fd: BorrowedFd<'_>) -> FdKind {
    let Ok(ty) = sockopt_int(fd, libc::SO_TYPE) else {
        return FdKind::NotASocket;
    };
    if ty != libc::SOCK_STREAM {
        return FdKind::NotASocket;
    }
    let listening = sockopt_int(fd, libc::SO_ACCEPTCONN)
        .map(|v| v != 0)
        .unwrap_or(false);
    match (sockopt_int(fd, libc::SO_DOMAIN), listening) {
        (Ok(libc::AF_UNIX), true) => FdKind::UnixListener,
        (Ok(libc::AF_UNIX), false) => FdKind::UnixStream,
        (Ok(libc::AF_INET | libc::AF_INET6), true) => FdKind::TcpListener,
        (Ok(libc::AF_INET | libc::AF_INET6), false) => FdKind::TcpStream,
        _ => FdKind::NotASocket,
    }
}

/// Descriptors passed by systemd socket activation (`sd_listen_fds`), with
/// their `FileDescriptorName`s. Empty when not socket-activated or when
/// `LISTEN_PID` names another process.
pub fn take_listen_fds() -> Vec<(OwnedFd, Option<String>)> {
    let pid_ok = std::env::var("LISTEN_PID")
        .ok()
        .and_then(|p| p.parse::<u32>().ok())
        .is_some_and(|p| p == std::process::id());
    let count = std::env::var("LISTEN_FDS")
        .ok()
        .and_then(|n| n.parse::<RawFd>().ok());
    let (true, Some(count)) = (pid_ok, count) else {
        return Vec::new();
    };
    let names: Vec<String> = std::env::var("LISTEN_FDNAMES")
        .map(|n| n.split(':').map(str::to_owned).collect())
        .unwrap_or_default();
    const SD_LISTEN_FDS_START: RawFd = 3;
    let mut fds = Vec::new();
    for i in 0..count.clamp(0, 1024) {
        let raw = SD_LISTEN_FDS_START + i;
        // SAFETY: F_GETFD on any integer is harmless; it tells whether the
        // descriptor is open before we claim it (LISTEN_FDS may overstate).
        if unsafe { libc::fcntl(raw, libc::F_GETFD) } < 0 {
            continue;
        }
        // SAFETY: per the sd_listen_fds protocol, fds 3..3+LISTEN_FDS were
        // opened by the service manager for this PID (checked above) and
        // nothing else in this process owns them; we take each exactly once.
        let fd = unsafe { OwnedFd::from_raw_fd(raw) };
        set_cloexec(&fd);
        let name = names
            .get(usize::try_from(i).unwrap_or(usize::MAX))
            .cloned()
            .filter(|n| !n.is_empty());
        fds.push((fd, name));
    }
    fds
}

fn set_cloexec(fd: &OwnedFd) {
    // SAFETY: plain fcntl on a descriptor we own; no memory is passed.
    unsafe {
        let flags = libc::fcntl(fd.as_raw_fd(), libc::F_GETFD);
        if flags >= 0 {
            libc::fcntl(fd.as_raw_fd(), libc::F_SETFD, flags | libc::FD_CLOEXEC);
        }
    }
}

/// Takes ownership of standard input's descriptor if it is a socket (inetd
/// mode). Returns `None` (and leaves fd 0 alone) for pipes, ttys and files.
pub fn take_stdin_socket() -> Option<(OwnedFd, FdKind)> {
    // SAFETY: fd 0 is open for the life of the process (or getsockopt fails
    // with EBADF and we classify it as not a socket).
    let borrowed = unsafe { BorrowedFd::borrow_raw(0) };
    match classify(borrowed) {
        FdKind::NotASocket => None,
        kind => {
            // SAFETY: fd 0 is a socket that nothing else in this process uses
            // once we take it (stdin is not read in socket mode).
            let fd = unsafe { OwnedFd::from_raw_fd(0) };
            Some((fd, kind))
        }
    }
}

/// True when fd 2 is a socket (inetd passes the connection as fds 0, 1 and
/// 2): log lines written there would land in the protocol stream.
pub fn stderr_is_socket() -> bool {
    // SAFETY: fd 2 stays open for the life of the process (or getsockopt
    // fails with EBADF and it is classified as not a socket).
    let borrowed = unsafe { BorrowedFd::borrow_raw(2) };
    classify(borrowed) != FdKind::NotASocket
}

/// The listen backlog of the sockets xcauthd binds itself: that of systemd's socket units
/// (`Backlog=` defaults to `SOMAXCONN`); the kernel caps it at `net.core.somaxconn`. Rust's
/// `bind` asks for 128, and a flood of connections that fills such a queue makes the kernel
/// drop a legitimate client's SYN: it retries only after 1 s, then 3 s.
pub const LISTEN_BACKLOG: libc::c_int = 4096;

/// Sets the backlog of the listening socket `fd` (listening again changes it).
pub fn set_backlog(fd: BorrowedFd<'_>, backlog: libc::c_int) -> io::Result<()> {
    // SAFETY: listen(2) on a borrowed, open descriptor; no memory is passed.
    let rc = unsafe { libc::listen(fd.as_raw_fd(), backlog) };
    if rc < 0 {
        return Err(io::Error::last_os_error());
    }
    Ok(())
}

/// Waits until one of `fds` is readable or `timeout` passes. Returns the
/// indexes of the ready descriptors.
pub fn poll_readable(fds: &[BorrowedFd<'_>], timeout: Duration) -> io::Result<Vec<usize>> {
    let fds: Vec<(BorrowedFd<'_>, bool)> = fds.iter().map(|fd| (*fd, false)).collect();
    poll_ready(&fds, timeout)
}

/// Waits until one of `fds` is ready or `timeout` passes: readable, or writable for the ones
/// marked `true`; an error or hang-up counts as ready too. Returns the indexes of the ready
/// descriptors.
pub fn poll_ready(fds: &[(BorrowedFd<'_>, bool)], timeout: Duration) -> io::Result<Vec<usize>> {
    let mut pfds: Vec<libc::pollfd> = fds
        .iter()
        .map(|(fd, write)| libc::pollfd {
            fd: fd.as_raw_fd(),
            events: if *write { libc::POLLOUT } else { libc::POLLIN },
            revents: 0,
        })
        .collect();
    let ms = libc::c_int::try_from(timeout.as_millis()).unwrap_or(libc::c_int::MAX);
    // SAFETY: `pfds` is a valid, writable array of `pfds.len()` pollfd structs that outlives
    // the call; the descriptors are borrowed and open.
    let rc = unsafe { libc::poll(pfds.as_mut_ptr(), pfds.len() as libc::nfds_t, ms) };
    if rc < 0 {
        let e = io::Error::last_os_error();
        if e.kind() == io::ErrorKind::Interrupted {
            return Ok(Vec::new());
        }
        return Err(e);
    }
    Ok(pfds
        .iter()
        .enumerate()
        .filter(|(_, p)| p.revents != 0)
        .map(|(i, _)| i)
        .collect())
}

/// Set by SIGTERM/SIGINT: stop accepting, finish in-flight requests, exit.
pub static SHUTDOWN: AtomicBool = AtomicBool::new(false);
/// Set by SIGHUP: reopen log files (logrotate).
pub static REOPEN_LOGS: AtomicBool = AtomicBool::new(false);
/// Set by SIGUSR1: log the counters.
pub static DUMP_STATS: AtomicBool = AtomicBool::new(false);

extern "C" fn on_usr1(_: libc::c_int) {
    DUMP_STATS.store(true, Ordering::SeqCst);
}

extern "C" fn on_terminate(_: libc::c_int) {
    SHUTDOWN.store(true, Ordering::SeqCst);
}

extern "C" fn on_hangup(_: libc::c_int) {
    REOPEN_LOGS.store(true, Ordering::SeqCst);
}

/// Installs the daemon's signal handlers (only atomic stores: async-signal-safe).
pub fn install_signal_handlers() {
    for (sig, handler) in [
        (libc::SIGTERM, on_terminate as extern "C" fn(libc::c_int)),
        (libc::SIGINT, on_terminate),
        (libc::SIGHUP, on_hangup),
        (libc::SIGUSR1, on_usr1),
    ] {
        // SAFETY: a zeroed sigaction is a valid starting value; the handler
        // only performs an atomic store, which is async-signal-safe; SA_RESTART
        // is not set so blocking calls wake with EINTR and see the flag.
        unsafe {
            let mut action: libc::sigaction = std::mem::zeroed();
            action.sa_sigaction = handler as usize;
            libc::sigemptyset(&mut action.sa_mask);
            action.sa_flags = 0;
            libc::sigaction(sig, &action, std::ptr::null_mut());
        }
    }
    // SAFETY: ignoring SIGPIPE is process-wide and makes a write to a closed
    // socket return EPIPE instead of killing the daemon.
    unsafe {
        libc::signal(libc::SIGPIPE, libc::SIG_IGN);
    }
}

/// The credentials of the process on the other end of a Unix stream socket, as the kernel
/// recorded them at connect time.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct PeerCred {
    /// Process id (for logs).
    pub pid: i32,
    /// Effective user id.
    pub uid: u32,
    /// Effective group id.
    pub gid: u32,
    /// Supplementary groups (empty when the kernel cannot tell, before Linux 4.13).
    pub groups: Vec<u32>,
}

/// `SO_PEERGROUPS` (Linux 4.13+), not exported by the libc crate. Its number is the generic
/// one on every architecture except SPARC.
#[cfg(not(any(target_arch = "sparc", target_arch = "sparc64")))]
const SO_PEERGROUPS: libc::c_int = 59;
#[cfg(any(target_arch = "sparc", target_arch = "sparc64"))]
const SO_PEERGROUPS: libc::c_int = 0x003d;

/// Reads `SO_PEERCRED` and `SO_PEERGROUPS` of a connected Unix stream socket.
pub fn peer_cred(fd: BorrowedFd<'_>) -> io::Result<PeerCred> {
    let mut cred = libc::ucred {
        pid: 0,
        uid: u32::MAX,
        gid: u32::MAX,
    };
    let mut len = std::mem::size_of::<libc::ucred>() as libc::socklen_t;
    // SAFETY: `fd` is open for the borrow; `cred` and `len` are writable stack values of the
    // size passed, which is what SO_PEERCRED fills in.
    let rc = unsafe {
        libc::getsockopt(
            fd.as_raw_fd(),
            libc::SOL_SOCKET,
            libc::SO_PEERCRED,
            std::ptr::addr_of_mut!(cred).cast(),
            &mut len,
        )
    };
    if rc != 0 {
        return Err(io::Error::last_os_error());
    }
    if len as usize != std::mem::size_of::<libc::ucred>() {
        return Err(io::Error::other("SO_PEERCRED returned a short answer"));
    }
    let mut groups: Vec<libc::gid_t> = vec![0; 64];
    let groups = loop {
        let mut len = (groups.len() * std::mem::size_of::<libc::gid_t>()) as libc::socklen_t;
        // SAFETY: `groups` is a writable buffer of exactly `len` bytes; the kernel writes at
        // most `len` bytes and stores the size it needs (or used) in `len`.
        let rc = unsafe {
            libc::getsockopt(
                fd.as_raw_fd(),
                libc::SOL_SOCKET,
                SO_PEERGROUPS,
                groups.as_mut_ptr().cast(),
                &mut len,
            )
        };
        let count = len as usize / std::mem::size_of::<libc::gid_t>();
        if rc == 0 {
            groups.truncate(count);
            break groups;
        }
        let e = io::Error::last_os_error();
        match e.raw_os_error() {
            Some(libc::ERANGE) if count > groups.len() && count <= 65_536 => {
                groups.resize(count, 0);
            }
            // An old kernel without SO_PEERGROUPS: primary group only.
            Some(libc::ENOPROTOOPT) => break Vec::new(),
            _ => return Err(e),
        }
    };
    Ok(PeerCred {
        pid: cred.pid,
        uid: cred.uid,
        gid: cred.gid,
        groups,
    })
}

/// This process's effective user id.
pub fn euid() -> u32 {
    // SAFETY: geteuid has no preconditions and cannot fail.
    unsafe { libc::geteuid() }
}

/// Looks a group up by name through NSS (files, LDAP, sssd…): `Ok(None)` when there is no such
/// group.
pub fn group_by_name(name: &str) -> io::Result<Option<u32>> {
    let cname = std::ffi::CString::new(name)
        .map_err(|_| io::Error::new(io::ErrorKind::InvalidInput, "NUL in a group name"))?;
    let mut buf: Vec<libc::c_char> = vec![0; 1024];
    loop {
        // SAFETY: an all-zero `group` is a valid value to be overwritten (null pointers,
        // zero ids).
        let mut group: libc::group = unsafe { std::mem::zeroed() };
        let mut result: *mut libc::group = std::ptr::null_mut();
        // SAFETY: `cname` is NUL-terminated; `group`, `buf` (of `buf.len()` bytes) and
        // `result` are writable and outlive the call; the strings `group` points to live in
        // `buf`, and only the plain `gr_gid` is read afterwards.
        let rc = unsafe {
            libc::getgrnam_r(
                cname.as_ptr(),
                &mut group,
                buf.as_mut_ptr(),
                buf.len(),
                &mut result,
            )
        };
        match rc {
            0 if result.is_null() => return Ok(None),
            0 => return Ok(Some(group.gr_gid)),
            libc::ERANGE if buf.len() < 1 << 20 => buf.resize(buf.len() * 4, 0),
            libc::EINTR => {}
            // Some NSS modules report "not found" as an error number.
            libc::ENOENT | libc::ESRCH | libc::EBADF | libc::EPERM => return Ok(None),
            e => return Err(io::Error::from_raw_os_error(e)),
        }
    }
}

/// Looks a user up by name through NSS: `Ok(None)` when there is no such user.
pub fn user_by_name(name: &str) -> io::Result<Option<u32>> {
    let cname = std::ffi::CString::new(name)
        .map_err(|_| io::Error::new(io::ErrorKind::InvalidInput, "NUL in a user name"))?;
    let mut buf: Vec<libc::c_char> = vec![0; 1024];
    loop {
        // SAFETY: an all-zero `passwd` is a valid value to be overwritten.
        let mut pw: libc::passwd = unsafe { std::mem::zeroed() };
        let mut result: *mut libc::passwd = std::ptr::null_mut();
        // SAFETY: as for getgrnam_r above: every pointer is valid and writable for the call,
        // and only the plain `pw_uid` is read afterwards.
        let rc = unsafe {
            libc::getpwnam_r(
                cname.as_ptr(),
                &mut pw,
                buf.as_mut_ptr(),
                buf.len(),
                &mut result,
            )
        };
        match rc {
            0 if result.is_null() => return Ok(None),
            0 => return Ok(Some(pw.pw_uid)),
            libc::ERANGE if buf.len() < 1 << 20 => buf.resize(buf.len() * 4, 0),
            libc::EINTR => {}
            libc::ENOENT | libc::ESRCH | libc::EBADF | libc::EPERM => return Ok(None),
            e => return Err(io::Error::from_raw_os_error(e)),
        }
    }
}

// The process helper of the roster sync (`crate::reaper`): a subreaper that outlives nothing
// it started.

/// Makes this process the subreaper of its descendants: a descendant whose parent dies is
/// re-parented to this process instead of to init, even across `setsid` and user switches.
pub fn become_subreaper() -> io::Result<()> {
    // SAFETY: prctl(PR_SET_CHILD_SUBREAPER, 1) takes plain integers and only sets a flag of
    // this process.
    let rc = unsafe { libc::prctl(libc::PR_SET_CHILD_SUBREAPER, 1 as libc::c_ulong) };
    if rc == 0 {
        Ok(())
    } else {
        Err(io::Error::last_os_error())
    }
}

/// Asks the kernel to send `signal` to this process when the thread that started it exits.
pub fn die_with_parent(signal: libc::c_int) -> io::Result<()> {
    let signal = libc::c_ulong::try_from(signal)
        .map_err(|_| io::Error::new(io::ErrorKind::InvalidInput, "negative signal"))?;
    // SAFETY: prctl(PR_SET_PDEATHSIG, sig) takes plain integers and only sets a flag of this
    // process.
    let rc = unsafe { libc::prctl(libc::PR_SET_PDEATHSIG, signal) };
    if rc == 0 {
        Ok(())
    } else {
        Err(io::Error::last_os_error())
    }
}

/// This process's parent.
pub fn parent_pid() -> u32 {
    // SAFETY: getppid has no preconditions and cannot fail.
    let pid = unsafe { libc::getppid() };
    u32::try_from(pid).unwrap_or(0)
}

/// A set of signals held back from delivery, to be taken with [`SignalSet::wait`].
#[derive(Clone, Copy)]
pub struct SignalSet(libc::sigset_t);

impl std::fmt::Debug for SignalSet {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("SignalSet")
    }
}

impl SignalSet {
    /// Blocks `signals` in the calling thread (call it before any thread is started, so every
    /// thread inherits the mask) and returns them as a set to wait on. A program started later
    /// does not inherit the mask: `std::process::Command` clears it in the child.
    pub fn block(signals: &[libc::c_int]) -> io::Result<Self> {
        // SAFETY: an all-zero sigset_t is valid storage, initialised by sigemptyset before use.
        let mut set: libc::sigset_t = unsafe { std::mem::zeroed() };
        // SAFETY: `set` is a valid, writable sigset_t for each call.
        unsafe {
            libc::sigemptyset(&mut set);
            for &s in signals {
                if libc::sigaddset(&mut set, s) != 0 {
                    return Err(io::Error::last_os_error());
                }
            }
        }
        // SAFETY: `set` is initialised; the old mask is not asked for (null is allowed).
        let rc = unsafe { libc::pthread_sigmask(libc::SIG_BLOCK, &set, std::ptr::null_mut()) };
        if rc == 0 {
            Ok(Self(set))
        } else {
            Err(io::Error::from_raw_os_error(rc))
        }
    }

    /// Takes one pending signal of the set, waiting at most `timeout`; `None` when none came.
    pub fn wait(&self, timeout: Duration) -> io::Result<Option<libc::c_int>> {
        let ts = libc::timespec {
            tv_sec: libc::time_t::try_from(timeout.as_secs()).unwrap_or(libc::time_t::MAX),
            // Below 10^9: fits a c_long of any width.
            tv_nsec: timeout.subsec_nanos() as libc::c_long,
        };
        // SAFETY: the set and the timespec are valid for the call; the siginfo is not asked
        // for (null is allowed).
        let rc = unsafe { libc::sigtimedwait(&self.0, std::ptr::null_mut(), &ts) };
        if rc >= 0 {
            return Ok(Some(rc));
        }
        let e = io::Error::last_os_error();
        match e.raw_os_error() {
            Some(libc::EAGAIN | libc::EINTR) => Ok(None),
            _ => Err(e),
        }
    }
}

/// What [`reap_any`] found.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Reaped {
    /// A child ended: its pid and wait status.
    Child(u32, std::process::ExitStatus),
    /// Children remain, none has ended yet.
    Running,
    /// No children at all.
    None,
}

/// Collects one ended child (of this process, including re-parented orphans), without waiting.
pub fn reap_any() -> io::Result<Reaped> {
    use std::os::unix::process::ExitStatusExt;
    let mut status: libc::c_int = 0;
    loop {
        // SAFETY: `status` is a writable c_int for the call; waitpid(-1) touches nothing else.
        let pid = unsafe { libc::waitpid(-1, &mut status, libc::WNOHANG) };
        if pid > 0 {
            let pid = u32::try_from(pid).unwrap_or(0);
            return Ok(Reaped::Child(
                pid,
                std::process::ExitStatus::from_raw(status),
            ));
        }
        if pid == 0 {
            return Ok(Reaped::Running);
        }
        let e = io::Error::last_os_error();
        match e.raw_os_error() {
            Some(libc::ECHILD) => return Ok(Reaped::None),
            Some(libc::EINTR) => {}
            _ => return Err(e),
        }
    }
}

/// Sends `signal` to process `pid` (a positive pid: never a group or every process).
pub fn signal_process(pid: u32, signal: libc::c_int) -> io::Result<()> {
    let pid = libc::pid_t::try_from(pid)
        .ok()
        .filter(|p| *p > 0)
        .ok_or_else(|| io::Error::new(io::ErrorKind::InvalidInput, "not a process id"))?;
    // SAFETY: kill(2) with a positive pid signals that one process; it takes plain integers
    // and touches no memory of this process.
    let rc = unsafe { libc::kill(pid, signal) };
    if rc == 0 {
        Ok(())
    } else {
        Err(io::Error::last_os_error())
    }
}

/// A process held by a pid file descriptor (`pidfd_open(2)`): a signal sent through it reaches
/// that process or none, even once its pid has gone to another process.
#[derive(Debug)]
pub struct PidFd(OwnedFd);

impl PidFd {
    /// Holds process `pid`; an error when there is none (or the kernel has no pidfds, before
    /// Linux 5.3: `ENOSYS`).
    pub fn open(pid: u32) -> io::Result<PidFd> {
        let pid = libc::pid_t::try_from(pid)
            .ok()
            .filter(|p| *p > 0)
            .ok_or_else(|| io::Error::new(io::ErrorKind::InvalidInput, "not a process id"))?;
        // SAFETY: pidfd_open(2) takes a pid and flags (0) and touches no memory of this
        // process; it returns a new descriptor or -1.
        let fd = unsafe { libc::syscall(libc::SYS_pidfd_open, pid, 0 as libc::c_uint) };
        if fd < 0 {
            return Err(io::Error::last_os_error());
        }
        let fd = RawFd::try_from(fd)
            .map_err(|_| io::Error::new(io::ErrorKind::InvalidData, "pidfd out of range"))?;
        // SAFETY: `fd` was just returned by pidfd_open: open, and owned by nothing else.
        Ok(PidFd(unsafe { OwnedFd::from_raw_fd(fd) }))
    }

    /// Sends `signal` to the held process.
    pub fn signal(&self, signal: libc::c_int) -> io::Result<()> {
        // SAFETY: pidfd_send_signal(2) on a descriptor this value owns, with no siginfo (a
        // null pointer: the kernel fills one in as for kill) and no flags.
        let rc = unsafe {
            libc::syscall(
                libc::SYS_pidfd_send_signal,
                self.0.as_raw_fd(),
                signal,
                std::ptr::null::<libc::siginfo_t>(),
                0 as libc::c_uint,
            )
        };
        if rc == 0 {
            Ok(())
        } else {
            Err(io::Error::last_os_error())
        }
    }
}

/// Ends this process the way `signal` ended the program it ran (so the caller's wait status
/// tells the same story), without a core file; exits with 128 + `signal` if it survives.
pub fn exit_by_signal(signal: libc::c_int) -> ! {
    let none = libc::rlimit {
        rlim_cur: 0,
        rlim_max: 0,
    };
    // SAFETY: setrlimit reads the valid `none`; signal() and raise() take plain integers;
    // resetting the disposition to default and unblocking the signal lets it take effect.
    unsafe {
        libc::setrlimit(libc::RLIMIT_CORE, &none);
        libc::signal(signal, libc::SIG_DFL);
        let mut set: libc::sigset_t = std::mem::zeroed();
        libc::sigemptyset(&mut set);
        libc::sigaddset(&mut set, signal);
        libc::pthread_sigmask(libc::SIG_UNBLOCK, &set, std::ptr::null_mut());
        libc::raise(signal);
    }
    std::process::exit(128 + signal)
}
