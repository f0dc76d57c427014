//! Renaming a finished blob into place without replacing one already there: the answer
//! "already there" is the deduplication, in one system call instead of a `stat` and a
//! `rename` (`renameat2(2)` with `RENAME_NOREPLACE`, Linux 3.15 and later).

use std::fs;
use std::io;
use std::path::Path;

/// Renames `from` to `to` unless `to` exists. `Ok(true)`: renamed; `Ok(false)`: `to` was
/// already there and `from` is left where it is. Where the kernel or filesystem cannot
/// rename without replacing, checks for `to` first (as every blob store did before).
pub(crate) fn rename_no_replace(from: &Path, to: &Path) -> io::Result<bool> {
    match renameat2_no_replace(from, to) {
        Ok(()) => Ok(true),
        Err(e) if e.kind() == io::ErrorKind::AlreadyExists => Ok(false),
        Err(e) if matches!(e.raw_os_error(), Some(code) if unsupported(code)) => {
            if to.exists() {
                return Ok(false);
            }
            fs::rename(from, to).map(|()| true)
        }
        Err(e) => Err(e),
    }
}

#[cfg(target_os = "linux")]
fn unsupported(code: i32) -> bool {
    code == libc::EINVAL || code == libc::ENOSYS
}

#[cfg(target_os = "linux")]
fn renameat2_no_replace(from: &Path, to: &Path) -> io::Result<()> {
    use std::ffi::CString;
    use std::os::unix::ffi::OsStrExt;
    let c = |p: &Path| {
        CString::new(p.as_os_str().as_bytes())
            .map_err(|_| io::Error::new(io::ErrorKind::InvalidInput, "a path holds a NUL byte"))
    };
    let (from, to) = (c(from)?, c(to)?);
    // SAFETY: both paths are NUL-terminated strings that live across the call.
    let done = unsafe {
        libc::renameat2(
            libc::AT_FDCWD,
            from.as_ptr(),
            libc::AT_FDCWD,
            to.as_ptr(),
            libc::RENAME_NOREPLACE,
        )
    };
    if done == 0 {
        Ok(())
    } else {
        Err(io::Error::last_os_error())
    }
}

#[cfg(not(target_os = "linux"))]
fn unsupported(_code: i32) -> bool {
    true
}

#[cfg(not(target_os = "linux"))]
fn renameat2_no_replace(_from: &Path, _to: &Path) -> io::Result<()> {
    Err(io::Error::from_raw_os_error(0))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn renames_a_new_name_and_leaves_an_existing_one_alone() {
        let dir = tempfile::tempdir().unwrap();
        let (a, b, c) = (
            dir.path().join("a"),
            dir.path().join("b"),
            dir.path().join("c"),
        );
        fs::write(&a, b"first").unwrap();
        fs::write(&c, b"second").unwrap();
        assert!(rename_no_replace(&a, &b).unwrap());
        assert!(!a.exists());
        assert_eq!(fs::read(&b).unwrap(), b"first");
        assert!(!rename_no_replace(&c, &b).unwrap());
        assert_eq!(fs::read(&b).unwrap(), b"first", "the stored one is kept");
        assert_eq!(
            fs::read(&c).unwrap(),
            b"second",
            "the new one is left in place"
        );
        let missing = dir.path().join("nowhere").join("d");
        assert_eq!(
            rename_no_replace(&c, &missing).unwrap_err().kind(),
            io::ErrorKind::NotFound
        );
    }
}
