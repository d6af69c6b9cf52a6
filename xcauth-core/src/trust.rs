//! Whether a file may be trusted by this process: the settings file (it holds the API secret
//! and decides where logins are checked) and the shared database (its cache rows let users in
//! without asking Nextcloud, its `domains` rows pick URL and secret).
//!
//! Trusted means: owned by root or by this process's effective user, not writable by group or
//! others, and reached through directories that satisfy the same rule up to `/`. Anyone else
//! who could write the file, or rename entries in one of those directories, could decide who
//! logs in. A world-writable directory with the sticky bit (`/tmp`) is accepted as an
//! ancestor: there nobody but an entry's owner can rename or remove it.

use std::fs::{self, Metadata};
use std::io;
use std::os::unix::fs::MetadataExt;
use std::path::{Path, PathBuf};

/// The effective user id of this process, from the `Uid:` line of `/proc/self/status`
/// (real, effective, saved, filesystem). The owner of `/proc/self` is not it: a process that
/// changed its user (Apache's children) keeps a root-owned `/proc/self`. Unreadable: 0, which
/// only makes the checks stricter (files of the real user are then refused).
pub fn euid() -> u32 {
    fs::read_to_string("/proc/self/status")
        .ok()
        .and_then(|status| parse_status_euid(&status))
        .unwrap_or(0)
}

fn parse_status_euid(status: &str) -> Option<u32> {
    let line = status.lines().find(|l| l.starts_with("Uid:"))?;
    line.split_whitespace().nth(2)?.parse().ok()
}

/// How strictly the directory holding the file itself is checked.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Parent {
    /// Like every other ancestor: a sticky world-writable directory is accepted.
    Ancestor,
    /// Never writable by group or others, sticky or not. For the database, whose `-wal` and
    /// `-shm` companions could otherwise be created by someone else before SQLite does.
    Strict,
}

/// Checks owner and mode of an open file's (or a path's) metadata: owned by root or `euid`,
/// not writable by group or others. `what` names it in the message.
pub fn check_owner_and_mode(meta: &Metadata, euid: u32, what: &Path) -> Result<(), String> {
    let shown = what.display();
    if meta.uid() != 0 && meta.uid() != euid {
        return Err(format!(
            "{shown} must be owned by root or uid {euid} (this process), not uid {}",
            meta.uid()
        ));
    }
    let mode = meta.mode() & 0o7777;
    if mode & 0o022 != 0 {
        return Err(format!(
            "{shown} is writable by group or others (mode {:04o})",
            mode & 0o777
        ));
    }
    Ok(())
}

/// Checks every directory on the way to `file` (not `file` itself): each as written, without
/// following a symbolic link (a link must belong to root or `euid`), and, if a link is on the
/// way, each directory of the resolved path too. `file` may be relative to the working
/// directory.
pub fn check_directories(file: &Path, euid: u32, parent: Parent) -> Result<(), String> {
    let absolute = if file.is_absolute() {
        file.to_path_buf()
    } else {
        std::env::current_dir()
            .map_err(|e| format!("cannot resolve {}: {e}", file.display()))?
            .join(file)
    };
    let Some(dir) = absolute.parent() else {
        return Ok(());
    };
    let mut any_link = false;
    for (i, ancestor) in dir.ancestors().enumerate() {
        let meta = fs::symlink_metadata(ancestor).map_err(|e| missing(ancestor, &e))?;
        if meta.file_type().is_symlink() {
            any_link = true;
            if meta.uid() != 0 && meta.uid() != euid {
                return Err(format!(
                    "{} is a symbolic link owned by uid {}, not by root or uid {euid}",
                    ancestor.display(),
                    meta.uid()
                ));
            }
            continue;
        }
        check_directory(ancestor, &meta, euid, strict(i, parent))?;
    }
    if any_link {
        let real: PathBuf = fs::canonicalize(dir).map_err(|e| missing(dir, &e))?;
        for (i, ancestor) in real.ancestors().enumerate() {
            let meta = fs::metadata(ancestor).map_err(|e| missing(ancestor, &e))?;
            check_directory(ancestor, &meta, euid, strict(i, parent))?;
        }
    }
    Ok(())
}

fn strict(index: usize, parent: Parent) -> bool {
    index == 0 && parent == Parent::Strict
}

fn missing(path: &Path, e: &io::Error) -> String {
    format!("cannot check directory {}: {e}", path.display())
}

fn check_directory(dir: &Path, meta: &Metadata, euid: u32, strict: bool) -> Result<(), String> {
    let shown = dir.display();
    if !meta.is_dir() {
        return Err(format!("{shown} is not a directory"));
    }
    if meta.uid() != 0 && meta.uid() != euid {
        return Err(format!(
            "directory {shown} must be owned by root or uid {euid} (this process), not uid {}",
            meta.uid()
        ));
    }
    let mode = meta.mode() & 0o7777;
    let sticky = mode & 0o1000 != 0;
    if mode & 0o022 != 0 && (strict || !sticky) {
        return Err(format!(
            "directory {shown} is writable by group or others (mode {mode:04o})"
        ));
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::os::unix::fs::PermissionsExt;

    fn chmod(p: &Path, mode: u32) {
        fs::set_permissions(p, fs::Permissions::from_mode(mode)).unwrap();
    }

    #[test]
    fn directories_are_checked_up_to_the_root() {
        let me = euid();
        let base = tempfile::tempdir().unwrap();
        let dir = base.path().join("a/b");
        fs::create_dir_all(&dir).unwrap();
        for d in [base.path(), &base.path().join("a"), &dir] {
            chmod(d, 0o755);
        }
        let file = dir.join("f");
        assert_eq!(check_directories(&file, me, Parent::Strict), Ok(()));

        chmod(&base.path().join("a"), 0o777);
        let e = check_directories(&file, me, Parent::Ancestor).unwrap_err();
        assert!(
            e.contains("/a is writable by group or others (mode 0777)"),
            "{e}"
        );
        // Sticky: nobody else can rename b.
        chmod(&base.path().join("a"), 0o1777);
        assert_eq!(check_directories(&file, me, Parent::Strict), Ok(()));

        chmod(&dir, 0o1777);
        assert_eq!(check_directories(&file, me, Parent::Ancestor), Ok(()));
        let e = check_directories(&file, me, Parent::Strict).unwrap_err();
        assert!(e.contains("/a/b is writable"), "{e}");
        chmod(&dir, 0o775);
        assert!(check_directories(&file, me, Parent::Ancestor).is_err());
        chmod(&dir, 0o755);

        // Someone else's directory.
        let e = check_directories(&file, me + 1, Parent::Ancestor);
        if me != 0 {
            assert!(e.unwrap_err().contains("must be owned by root or uid"));
        }
    }

    #[test]
    fn a_link_on_the_way_is_followed_and_checked() {
        let me = euid();
        let base = tempfile::tempdir().unwrap();
        chmod(base.path(), 0o755);
        let real = base.path().join("real");
        fs::create_dir(&real).unwrap();
        chmod(&real, 0o777);
        std::os::unix::fs::symlink(&real, base.path().join("link")).unwrap();
        let e = check_directories(&base.path().join("link/f"), me, Parent::Ancestor).unwrap_err();
        assert!(e.contains("/real is writable"), "{e}");
        chmod(&real, 0o700);
        assert_eq!(
            check_directories(&base.path().join("link/f"), me, Parent::Strict),
            Ok(())
        );
        let e = check_directories(&base.path().join("nope/f"), me, Parent::Strict).unwrap_err();
        assert!(e.contains("cannot check directory"), "{e}");
    }

    #[test]
    fn the_effective_uid_is_the_second_uid_of_proc_status() {
        let status = "Name:\tx\nUid:\t1000\t33\t33\t33\nGid:\t1\t2\t2\t2\n";
        assert_eq!(super::parse_status_euid(status), Some(33));
        assert_eq!(super::parse_status_euid("Name:\tx\n"), None);
        // A process that never changed its user owns its /proc/self.
        let owner = std::fs::metadata("/proc/self").unwrap().uid();
        assert_eq!(super::euid(), owner);
    }
}
