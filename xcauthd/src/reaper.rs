//! The process helper each ejabberdctl call of the roster sync runs under, so that a call that
//! is stopped (or ends) leaves no process behind.
//!
//! Killing the call's process group is not enough: Debian's ejabberdctl, run as root, re-runs
//! itself through `su -c`, which starts a new session; that session outlives the group and
//! holds the output pipes. A cgroup would track it, but needs a writable, delegated cgroup v2
//! tree, which a daemon running as `xcauth` (or a host with cgroup v1) does not have. So each
//! call runs under a helper: this same binary, started through `/proc/self/exe` with
//! [`HELPER_ARG`] (a fork without exec is not safe in a threaded program). The helper
//!
//! 1. makes itself a child subreaper (`PR_SET_CHILD_SUBREAPER`): a descendant whose parent
//!    dies is re-parented to the helper, whatever session, group or user it moved to, so "the
//!    helper has no children" means "no descendant is left";
//! 2. asks for SIGTERM when the xcauthd thread that started it ends (`PR_SET_PDEATHSIG`), and
//!    gives up at once if xcauthd is already gone;
//! 3. starts the program and waits until it exits or a stop request comes (SIGTERM from
//!    xcauthd at `roster-timeout`, SIGINT, SIGHUP, or the death of its parent);
//! 4. ends every descendant still there: SIGTERM first (a `sudo` wrapper passes it on), SIGKILL
//!    after [`GRACE`], until it has no child left or [`BOUND`] passed (a process of another
//!    user that this one may not signal is out of its reach);
//! 5. exits with the program's status (or dies by its signal).
//!
//! The descendants are found by their parent chain in `/proc`; the subreaper makes the chain
//! complete. Each is signalled through a pid file descriptor opened after that look, and only
//! if its parent, read again once the descriptor holds it, is still the helper or one of the
//! descendants: a pid that ended and went to another process meanwhile is left alone.

use std::ffi::OsString;
use std::path::Path;
use std::process::{Command, ExitCode, ExitStatus};
use std::time::Duration;

use xcauth_core::deadline;

use crate::sys::{self, Reaped, SignalSet};

/// The first argument that makes `xcauthd` the helper: `xcauthd HELPER_ARG PARENT PROGRAM
/// ARGS…`, where PARENT is the pid of the xcauthd that starts it. Not a documented option.
pub const HELPER_ARG: &str = "--ejabberdctl-helper";

/// How the helper reports that the program could not be started: this text on its standard
/// error, then the reason, and exit status [`NOT_STARTED`].
pub const CANNOT_START: &str = "xcauthd helper: cannot start ";

/// The helper's exit status when the program was not started.
pub const NOT_STARTED: i32 = 127;

/// The helper's exit status after a stop request.
const STOPPED: u8 = 124;

/// How long the descendants get to end after SIGTERM before they get SIGKILL.
pub const GRACE: Duration = Duration::from_secs(1);

/// The longest the helper spends ending descendants.
pub const BOUND: Duration = Duration::from_secs(5);

/// The helper's command line for running `program ARGS…` (the caller sets up its standard
/// streams).
pub fn command(program: &Path, args: &[&str]) -> Command {
    let mut cmd = Command::new("/proc/self/exe");
    cmd.arg(HELPER_ARG)
        .arg(std::process::id().to_string())
        .arg(program)
        .args(args);
    cmd
}

/// The helper: `args` are the arguments after [`HELPER_ARG`].
#[allow(clippy::print_stderr)] // its standard error is the caller's pipe: the one way to report
pub fn main(args: Vec<OsString>) -> ExitCode {
    let mut args = args.into_iter();
    let parent = args
        .next()
        .and_then(|p| p.to_str().and_then(|p| p.parse::<u32>().ok()));
    let (Some(parent), Some(program)) = (parent, args.next()) else {
        eprintln!("{CANNOT_START}the program: usage: xcauthd {HELPER_ARG} PARENT PROGRAM ARGS…");
        return not_started();
    };
    let shown = Path::new(&program).display().to_string();
    // Blocked before anything else: from here on a stop request is taken, never fatal.
    let signals =
        match SignalSet::block(&[libc::SIGCHLD, libc::SIGTERM, libc::SIGINT, libc::SIGHUP]) {
            Ok(s) => s,
            Err(e) => {
                eprintln!("{CANNOT_START}{shown}: cannot block signals: {e}");
                return not_started();
            }
        };
    if let Err(e) = sys::become_subreaper() {
        eprintln!("{CANNOT_START}{shown}: cannot track its processes (subreaper): {e}");
        return not_started();
    }
    let _ = sys::die_with_parent(libc::SIGTERM);
    if sys::parent_pid() != parent {
        eprintln!("{CANNOT_START}{shown}: xcauthd is gone");
        return not_started();
    }
    // Reaped below with every other child (waitpid(-1)), not through `Child::wait`.
    #[allow(clippy::zombie_processes)]
    let child = match Command::new(&program).args(args).spawn() {
        Ok(c) => c,
        Err(e) => {
            eprintln!("{CANNOT_START}{shown}: {e}");
            return not_started();
        }
    };
    let status = wait_for(child.id(), &signals);
    end_descendants(&signals);
    match status {
        Some(status) => exit_like(status),
        None => ExitCode::from(STOPPED),
    }
}

fn not_started() -> ExitCode {
    ExitCode::from(u8::try_from(NOT_STARTED).unwrap_or(1))
}

/// Waits until `pid` exits (its status) or a stop request comes (`None`), collecting orphans
/// meanwhile.
fn wait_for(pid: u32, signals: &SignalSet) -> Option<ExitStatus> {
    loop {
        loop {
            match sys::reap_any() {
                Ok(Reaped::Child(p, status)) if p == pid => return Some(status),
                Ok(Reaped::Child(..)) => {}
                Ok(Reaped::Running) => break,
                Ok(Reaped::None) | Err(_) => return None,
            }
        }
        // SIGCHLD, or a periodic look (a signal merged with another is not lost for long).
        match signals.wait(Duration::from_secs(1)) {
            Ok(Some(libc::SIGCHLD) | None) => {}
            Ok(Some(_)) | Err(_) => return None,
        }
    }
}

/// Ends every descendant: SIGTERM, then SIGKILL after [`GRACE`], until no child is left or
/// [`BOUND`] passed.
fn end_descendants(signals: &SignalSet) {
    let me = std::process::id();
    let start = deadline::now();
    loop {
        loop {
            match sys::reap_any() {
                Ok(Reaped::Child(..)) => {}
                Ok(Reaped::Running) => break,
                Ok(Reaped::None) | Err(_) => return,
            }
        }
        let spent = deadline::now().saturating_duration_since(start);
        if spent >= BOUND {
            return;
        }
        let signal = if spent < GRACE {
            libc::SIGTERM
        } else {
            libc::SIGKILL
        };
        let below = descendants(me);
        let mut tree = below.clone();
        tree.push(me);
        for pid in below {
            signal_if_below(pid, &tree, signal);
        }
        // A child's end (SIGCHLD) or a short tick, to catch processes forked meanwhile.
        let _ = signals.wait(Duration::from_millis(50));
    }
}

/// Exits as `status` says the program did.
fn exit_like(status: ExitStatus) -> ExitCode {
    use std::os::unix::process::ExitStatusExt;
    match (status.code(), status.signal()) {
        (Some(code), _) => ExitCode::from(u8::try_from(code & 0xff).unwrap_or(1)),
        (None, Some(signal)) => sys::exit_by_signal(signal),
        _ => ExitCode::from(1),
    }
}

/// Sends `signal` to process `pid` if its parent is one of `tree` now: true when sent. The
/// pid is first held by a pid file descriptor, then its parent read, so the signal reaches the
/// process whose parent was checked, or none (where there are no pidfds, before Linux 5.3 or
/// under a seccomp filter that refuses them, the pid is signalled right after the check).
pub fn signal_if_below(pid: u32, tree: &[u32], signal: libc::c_int) -> bool {
    let held = match sys::PidFd::open(pid) {
        Ok(fd) => Some(fd),
        // Gone already.
        Err(e) if e.raw_os_error() == Some(libc::ESRCH) => return false,
        // No pidfds here (ENOSYS, or a seccomp filter that refuses them).
        Err(_) => None,
    };
    let parent = std::fs::read_to_string(format!("/proc/{pid}/stat"))
        .ok()
        .as_deref()
        .and_then(parent_in_stat);
    if !parent.is_some_and(|p| tree.contains(&p)) {
        return false;
    }
    match held {
        Some(fd) => fd.signal(signal).is_ok(),
        None => sys::signal_process(pid, signal).is_ok(),
    }
}

/// The processes below `root`, found through the parent pid of every process in `/proc`.
pub fn descendants(root: u32) -> Vec<u32> {
    let mut links: Vec<(u32, u32)> = Vec::new();
    if let Ok(dir) = std::fs::read_dir("/proc") {
        for entry in dir.flatten() {
            let Some(pid) = entry
                .file_name()
                .to_str()
                .and_then(|n| n.parse::<u32>().ok())
            else {
                continue;
            };
            // A process that ended meanwhile has no stat any more: skipped.
            if let Some(ppid) = std::fs::read_to_string(entry.path().join("stat"))
                .ok()
                .as_deref()
                .and_then(parent_in_stat)
            {
                links.push((pid, ppid));
            }
        }
    }
    let mut found = vec![root];
    let mut next = 0;
    while let Some(&parent) = found.get(next) {
        for &(pid, ppid) in &links {
            if ppid == parent && !found.contains(&pid) {
                found.push(pid);
            }
        }
        next += 1;
    }
    found.remove(0);
    found
}

/// The parent pid in a `/proc/PID/stat` line: `PID (COMM) STATE PPID …`, where COMM may hold
/// spaces and parentheses (so the last `)` ends it).
fn parent_in_stat(stat: &str) -> Option<u32> {
    let rest = stat.get(stat.rfind(')')? + 1..)?;
    let mut fields = rest.split_whitespace();
    let _state = fields.next()?;
    fields.next()?.parse().ok()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parent_pids_in_stat_lines() {
        assert_eq!(parent_in_stat("42 (sh) S 7 42 42 0 -1"), Some(7));
        assert_eq!(parent_in_stat("42 (a) b) (c) R 9 1 1"), Some(9));
        assert_eq!(parent_in_stat("42 (sh"), None);
        assert_eq!(parent_in_stat(""), None);
    }

    #[test]
    fn descendants_follow_the_parent_chain() {
        // sh starts a sleep and waits: both are below this process, the sleep two levels down.
        let mut sh = Command::new("sh")
            .args(["-c", "sleep 30 & echo $!; wait"])
            .stdout(std::process::Stdio::piped())
            .spawn()
            .unwrap();
        let mut line = String::new();
        std::io::BufRead::read_line(
            &mut std::io::BufReader::new(sh.stdout.take().unwrap()),
            &mut line,
        )
        .unwrap();
        let sleep: u32 = line.trim().parse().unwrap();
        let below = descendants(std::process::id());
        let _ = sys::signal_process(sleep, libc::SIGKILL);
        let _ = sh.wait();
        assert!(below.contains(&sh.id()), "{below:?}");
        assert!(below.contains(&sleep), "{below:?}");
        assert!(!below.contains(&std::process::id()));
    }

    /// True while `pid` is a live (not zombie) process.
    fn alive(pid: u32) -> bool {
        std::fs::read_to_string(format!("/proc/{pid}/stat"))
            .is_ok_and(|stat| !stat.contains(") Z "))
    }

    #[test]
    fn only_a_process_whose_parent_is_in_the_tree_is_signalled() {
        // A sleep whose parent is this process, which a stale look at /proc took for one in
        // another tree (its pid reused): not signalled.
        let mut sleep = Command::new("sleep").arg("30").spawn().unwrap();
        let me = std::process::id();
        assert!(!signal_if_below(sleep.id(), &[1, me + 1], libc::SIGKILL));
        assert!(
            alive(sleep.id()),
            "a process outside the tree was signalled"
        );
        // Its parent is in the tree: signalled.
        assert!(signal_if_below(sleep.id(), &[1, me], libc::SIGKILL));
        let status = sleep.wait().unwrap();
        use std::os::unix::process::ExitStatusExt;
        assert_eq!(status.signal(), Some(libc::SIGKILL));
        // A process that is gone is not signalled.
        assert!(!signal_if_below(sleep.id(), &[me], libc::SIGKILL));
    }
}
