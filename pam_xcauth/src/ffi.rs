//! The C boundary: the six `pam_sm_*` symbols libpam looks up; raw `syslog(3)` and the
//! process-wide hooks that write to it; the NSS and `SO_PEERCRED` look-ups the socket oracle
//! needs, handed down as [`LOOKUPS`].
//!
//! This is the only module allowed `unsafe`. pamsm's `pam_module!` macro is deliberately not
//! used: it converts `argv` outside of any panic guard and silently returns `PAM_SERVICE_ERR`
//! for a non-UTF-8 argument. Here every entry point does all its work, argument conversion
//! included, inside [`std::panic::catch_unwind`]; a panic (which would otherwise abort the
//! host, Rust ≥ 1.81) becomes `PAM_SERVICE_ERR` plus a log line. The panic hook installed by
//! [`install_process_hooks`] (inside the guard too) sends the panic location to syslog,
//! never to stderr.
#![allow(unsafe_code)]

use std::ffi::{CStr, CString};
use std::os::raw::{c_char, c_int};
use std::panic::{catch_unwind, AssertUnwindSafe};
use std::sync::Once;

use pamsm::{Pam, PamError, PamFlags};

use crate::entry::{self, BadArgs, Entry};
use crate::logging::{CoreLog, Level, LOG_AUTHPRIV};
use crate::oracle::Lookups;

/// The system look-ups of this module, for the socket oracle.
pub(crate) const LOOKUPS: Lookups = Lookups { user_id, peer_uid };

/// Runs `f`; if it panics, runs `on_panic` (itself guarded) and returns `PAM_SERVICE_ERR`.
pub(crate) fn guarded(f: impl FnOnce() -> PamError, on_panic: impl FnOnce()) -> PamError {
    match catch_unwind(AssertUnwindSafe(f)) {
        Ok(code) => code,
        Err(_) => {
            let _ = catch_unwind(AssertUnwindSafe(on_panic));
            PamError::SERVICE_ERR
        }
    }
}

/// Copies the module arguments, or says why they cannot be read. A NULL `argv` with a
/// positive `argc` is an error, not "no arguments": silently dropping them would drop
/// `group=` and `domain=` and let more users in.
///
/// # Safety
/// `argv` must point to `argc` valid NUL-terminated strings (or be NULL), as libpam
/// guarantees for the duration of a `pam_sm_*` call.
unsafe fn collect_args(argc: c_int, argv: *const *const c_char) -> Result<Vec<String>, BadArgs> {
    let Ok(count) = usize::try_from(argc) else {
        return Err(BadArgs::NegativeCount(argc));
    };
    if argv.is_null() {
        return if count == 0 {
            Ok(Vec::new())
        } else {
            Err(BadArgs::NullVector(count))
        };
    }
    let mut args = Vec::with_capacity(count);
    for i in 0..count {
        // SAFETY: `i < argc`, and the caller guarantees `argv[0..argc]` is readable.
        let ptr = unsafe { *argv.add(i) };
        if ptr.is_null() {
            return Err(BadArgs::NullEntry(i));
        }
        // SAFETY: libpam's argv entries are NUL-terminated strings alive for this call.
        let arg = unsafe { CStr::from_ptr(ptr) };
        args.push(arg.to_str().map_err(|_| BadArgs::NotUtf8(i))?.to_owned());
    }
    Ok(args)
}

/// The body of every entry point.
///
/// # Safety
/// As for [`collect_args`]; `pamh` is the handle libpam passed in.
unsafe fn run(
    entry: Entry,
    pamh: Pam,
    flags: c_int,
    argc: c_int,
    argv: *const *const c_char,
) -> c_int {
    let flags = PamFlags::from_bits_truncate(flags);
    let code = guarded(
        || {
            install_process_hooks();
            // SAFETY: forwarded from the caller's contract.
            let args = unsafe { collect_args(argc, argv) };
            entry::dispatch(entry, &pamh, flags, args, LOOKUPS)
        },
        || {
            // SAFETY: forwarded from the caller's contract.
            let args = unsafe { collect_args(argc, argv) };
            entry::report_panic(entry, &pamh, args);
        },
    );
    code as c_int
}

macro_rules! entry_point {
    ($(#[$doc:meta])* $name:ident => $entry:expr) => {
        $(#[$doc])*
        ///
        /// # Safety
        /// Called by libpam with a valid handle and `argc` valid argument strings.
        #[no_mangle]
        pub unsafe extern "C" fn $name(
            pamh: Pam,
            flags: c_int,
            argc: c_int,
            argv: *const *const c_char,
        ) -> c_int {
            // SAFETY: libpam passes its handle and the module's argv for this call.
            unsafe { run($entry, pamh, flags, argc, argv) }
        }
    };
}

entry_point!(
    /// `pam_authenticate`: checks the password or token of `user@domain`.
    pam_sm_authenticate => Entry::Authenticate
);
entry_point!(
    /// `pam_setcred`: always `PAM_SUCCESS`.
    pam_sm_setcred => Entry::SetCred
);
entry_point!(
    /// `pam_acct_mgmt`: success for a user we authenticated, else an isuser check.
    pam_sm_acct_mgmt => Entry::AcctMgmt
);
entry_point!(
    /// `pam_open_session`: `PAM_IGNORE`.
    pam_sm_open_session => Entry::OpenSession
);
entry_point!(
    /// `pam_close_session`: `PAM_IGNORE`.
    pam_sm_close_session => Entry::CloseSession
);
entry_point!(
    /// `pam_chauthtok`: `PAM_IGNORE` (passwords are changed in Nextcloud).
    pam_sm_chauthtok => Entry::ChAuthTok
);

/// The uid of the user called `name`, looked up through NSS (`getpwnam_r`): `Ok(None)` when
/// there is no such user.
fn user_id(name: &str) -> Result<Option<u32>, String> {
    let cname = CString::new(name).map_err(|_| "NUL in a user name".to_owned())?;
    let mut buf: Vec<c_char> = vec![0; 1024];
    loop {
        // SAFETY: an all-zero `passwd` (null pointers, zero ids) is a valid value to be
        // overwritten.
        let mut pw: libc::passwd = unsafe { std::mem::zeroed() };
        let mut result: *mut libc::passwd = std::ptr::null_mut();
        // SAFETY: `cname` is NUL-terminated; `pw`, `buf` (of `buf.len()` bytes) and `result`
        // are writable and outlive the call; the strings `pw` points to live in `buf`, and
        // only the plain `pw_uid` is read afterwards.
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
            e => return Err(std::io::Error::from_raw_os_error(e).to_string()),
        }
    }
}

/// The uid of the process on the other end of a connected Unix socket (`SO_PEERCRED`; for a
/// listening socket, the process that called `listen`).
fn peer_uid(fd: std::os::fd::BorrowedFd<'_>) -> Result<u32, String> {
    use std::os::fd::AsRawFd;
    let mut cred = libc::ucred {
        pid: 0,
        uid: u32::MAX,
        gid: u32::MAX,
    };
    let mut len = libc::socklen_t::try_from(std::mem::size_of::<libc::ucred>())
        .map_err(|_| "ucred size".to_owned())?;
    // SAFETY: `fd` is an open socket for the duration of the borrow; `cred` and `len` are
    // writable, and `len` holds the size of `cred`, which the kernel fills up to that size.
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
        return Err(std::io::Error::last_os_error().to_string());
    }
    Ok(cred.uid)
}

static PROCESS_HOOKS: Once = Once::new();

/// The one core logger handed to `log::set_logger`.
static CORE_LOG: CoreLog = CoreLog::new(raw_syslog);

/// Installs, once per process, the stateless core logger and a panic hook that writes to
/// syslog instead of stderr. Both live in this library's own copy of `std`/`log` (statically
/// linked), so the host's hooks are untouched; `-z nodelete` keeps them mapped.
fn install_process_hooks() {
    PROCESS_HOOKS.call_once(|| {
        if log::set_logger(&CORE_LOG).is_ok() {
            log::set_max_level(log::LevelFilter::Warn);
        }
        std::panic::set_hook(Box::new(|info| {
            let location = info
                .location()
                .map(|l| format!("{}:{}", l.file(), l.line()))
                .unwrap_or_default();
            raw_syslog(Level::Crit, &format!("pam_xcauth: panic at {location}"));
        }));
    });
}

/// `syslog(LOG_AUTHPRIV | level, "%s", msg)` without `openlog`: the host keeps its ident.
/// Used for the core library's log records and the panic hook, where no PAM handle is at hand.
fn raw_syslog(level: Level, msg: &str) {
    let Ok(text) = CString::new(msg.replace('\0', "?")) else {
        return;
    };
    // SAFETY: the format is a static "%s" and its one argument a valid NUL-terminated string
    // that outlives the call; syslog(3) is thread-safe in glibc.
    unsafe {
        libc::syslog(
            LOG_AUTHPRIV | level.severity(),
            c"%s".as_ptr(),
            text.as_ptr(),
        );
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn null_argv_with_a_count_is_an_error_not_an_empty_list() {
        // SAFETY: a NULL vector is never dereferenced.
        let two = unsafe { collect_args(2, std::ptr::null()) };
        assert_eq!(two, Err(BadArgs::NullVector(2)));
        // SAFETY: as above.
        let none = unsafe { collect_args(0, std::ptr::null()) };
        assert_eq!(none, Ok(Vec::new()));
        // SAFETY: as above.
        let negative = unsafe { collect_args(-1, std::ptr::null()) };
        assert_eq!(negative, Err(BadArgs::NegativeCount(-1)));
    }

    #[test]
    fn arguments_are_copied_and_bad_ones_named() {
        let a = c"group=Admins";
        let b = c"debug";
        let argv = [a.as_ptr(), b.as_ptr(), std::ptr::null()];
        // SAFETY: `argv` holds two valid strings.
        let got = unsafe { collect_args(2, argv.as_ptr()) };
        assert_eq!(got, Ok(vec!["group=Admins".to_owned(), "debug".to_owned()]));
        // SAFETY: entry 2 is NULL, which collect_args checks before reading it.
        let null_entry = unsafe { collect_args(3, argv.as_ptr()) };
        assert_eq!(null_entry, Err(BadArgs::NullEntry(2)));
        let bad = [0xffu8, 0];
        let argv = [bad.as_ptr().cast::<c_char>()];
        // SAFETY: one NUL-terminated (non-UTF-8) string.
        let not_utf8 = unsafe { collect_args(1, argv.as_ptr()) };
        assert_eq!(not_utf8, Err(BadArgs::NotUtf8(0)));
    }

    #[test]
    fn guard_turns_a_panic_into_service_err() {
        let mut reported = false;
        #[allow(clippy::panic)]
        let code = guarded(|| -> PamError { panic!("boom") }, || reported = true);
        assert_eq!(code, PamError::SERVICE_ERR);
        assert!(reported);
        // A panic while reporting is swallowed too.
        #[allow(clippy::panic)]
        let code = guarded(|| -> PamError { panic!("boom") }, || panic!("again"));
        assert_eq!(code, PamError::SERVICE_ERR);
        assert_eq!(guarded(|| PamError::AUTH_ERR, || ()), PamError::AUTH_ERR);
    }
}
