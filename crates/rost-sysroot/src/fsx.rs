//! Fd-relative helpers for sysroot work: tree copies, symlink swaps,
//! the immutable bit, recursive removal.

use std::ffi::OsStr;
use std::io::Read;
use std::os::fd::{AsFd, BorrowedFd, OwnedFd};
use std::path::{Path, PathBuf};

use rost_store::fsutil;
use rustix::fs::{AtFlags, FileType, Gid, IFlags, Mode, OFlags, Uid};
use rustix::io::Errno;

use crate::error::{IoContext, Result};

/// Opens a directory beneath `dir` (no final-symlink following).
pub(crate) fn open_dir(dir: BorrowedFd<'_>, name: &Path) -> Result<OwnedFd> {
    fsutil::open_dir_at(dir, name).ctx("opening", name)
}

/// Opens a directory beneath `dir`, `None` if it does not exist.
pub(crate) fn open_dir_optional(dir: BorrowedFd<'_>, name: &Path) -> Result<Option<OwnedFd>> {
    match fsutil::open_dir_at(dir, name) {
        Ok(fd) => Ok(Some(fd)),
        Err(Errno::NOENT) => Ok(None),
        Err(e) => Err(e).ctx("opening", name),
    }
}

/// `readlinkat`, `None` if the link does not exist.
pub(crate) fn readlink_optional(dir: BorrowedFd<'_>, name: &Path) -> Result<Option<String>> {
    match rustix::fs::readlinkat(dir, name, Vec::new()) {
        Ok(t) => Ok(Some(t.to_string_lossy().into_owned())),
        Err(Errno::NOENT) => Ok(None),
        Err(e) => Err(e).ctx("readlink", name),
    }
}

/// Whether `name` exists beneath `dir` (without following a final symlink).
pub(crate) fn exists(dir: BorrowedFd<'_>, name: &Path) -> Result<bool> {
    match rustix::fs::statat(dir, name, AtFlags::SYMLINK_NOFOLLOW) {
        Ok(_) => Ok(true),
        Err(Errno::NOENT) => Ok(false),
        Err(e) => Err(e).ctx("stat", name),
    }
}

/// Reads a whole file, `None` if it does not exist.
pub(crate) fn read_optional(dir: BorrowedFd<'_>, name: &Path) -> Result<Option<Vec<u8>>> {
    let fd = match rustix::fs::openat(dir, name, OFlags::RDONLY | OFlags::CLOEXEC, Mode::empty()) {
        Ok(fd) => fd,
        Err(Errno::NOENT) => return Ok(None),
        Err(e) => return Err(e).ctx("opening", name),
    };
    let mut buf = Vec::new();
    std::fs::File::from(fd)
        .read_to_end(&mut buf)
        .ctx("reading", name)?;
    Ok(Some(buf))
}

/// Points symlink `dir/name` at `target` atomically (temp link + rename).
pub(crate) fn swap_symlink(dir: BorrowedFd<'_>, name: &Path, target: &str) -> Result<()> {
    let mut tmp = name.as_os_str().to_owned();
    tmp.push(".tmp");
    let tmp = PathBuf::from(tmp);
    match rustix::fs::unlinkat(dir, &tmp, AtFlags::empty()) {
        Ok(()) | Err(Errno::NOENT) => {}
        Err(e) => return Err(e).ctx("removing", &tmp),
    }
    rustix::fs::symlinkat(target, dir, &tmp).ctx("creating symlink", &tmp)?;
    rustix::fs::renameat(dir, &tmp, dir, name).ctx("renaming into place", name)?;
    Ok(())
}

/// Sets or clears the immutable bit of an open directory; filesystems and
/// containers that lack it are skipped, as libostree does.
pub(crate) fn set_immutable(fd: BorrowedFd<'_>, on: bool, p: &Path) -> Result<()> {
    let flags = match rustix::fs::ioctl_getflags(fd) {
        Ok(f) => f,
        Err(Errno::NOTTY) | Err(Errno::OPNOTSUPP) | Err(Errno::INVAL) | Err(Errno::PERM) => {
            return Ok(());
        }
        Err(e) => return Err(e).ctx("reading inode flags of", p),
    };
    let want = if on {
        flags | IFlags::IMMUTABLE
    } else {
        flags - IFlags::IMMUTABLE
    };
    if want == flags {
        return Ok(());
    }
    match rustix::fs::ioctl_setflags(fd, want) {
        Ok(()) => Ok(()),
        Err(Errno::NOTTY) | Err(Errno::OPNOTSUPP) | Err(Errno::INVAL) | Err(Errno::PERM) => {
            tracing::warn!("cannot change the immutable bit of {}", p.display());
            Ok(())
        }
        Err(e) => Err(e).ctx("setting inode flags of", p),
    }
}

/// Removes `dir/name` recursively (clearing an immutable bit on it first).
pub(crate) fn remove_all(dir: BorrowedFd<'_>, name: &Path) -> Result<()> {
    if let Ok(fd) = fsutil::open_dir_at(dir, name) {
        set_immutable(fd.as_fd(), false, name)?;
    }
    fsutil::remove_all_at(dir, name).ctx("removing", name)
}

/// Copies xattrs from one path to another (both through `/proc/self/fd`).
fn copy_xattrs(
    sdir: BorrowedFd<'_>,
    sname: &OsStr,
    ddir: BorrowedFd<'_>,
    dname: &OsStr,
    p: &Path,
) -> Result<()> {
    let x =
        fsutil::read_xattrs_path(&fsutil::proc_path(sdir, sname)).ctx("reading xattrs of", p)?;
    if !x.is_empty() {
        fsutil::set_xattrs_path(&fsutil::proc_path(ddir, dname), &x).ctx("setting xattrs on", p)?;
    }
    Ok(())
}

/// Copies `sdir/sname` to `ddir/dname` recursively, keeping type, content,
/// owner, mode and xattrs. An existing destination directory is reused; any
/// other existing destination is an error.
pub(crate) fn copy_tree(
    sdir: BorrowedFd<'_>,
    sname: &Path,
    ddir: BorrowedFd<'_>,
    dname: &Path,
    p: &Path,
) -> Result<()> {
    let st = rustix::fs::statat(sdir, sname, AtFlags::SYMLINK_NOFOLLOW).ctx("stat", p)?;
    let ft = FileType::from_raw_mode(st.st_mode);
    let uid = Some(Uid::from_raw(st.st_uid));
    let gid = Some(Gid::from_raw(st.st_gid));
    let mode = Mode::from_raw_mode(st.st_mode & 0o7777);
    match ft {
        FileType::Directory => {
            fsutil::ensure_dir_at(ddir, dname, 0o700).ctx("creating directory", p)?;
            let s = open_dir(sdir, sname)?;
            let d = open_dir(ddir, dname)?;
            for e in fsutil::list_dir(s.as_fd()).ctx("listing", p)? {
                let n = Path::new(&e.name);
                copy_tree(s.as_fd(), n, d.as_fd(), n, &p.join(n))?;
            }
            rustix::fs::fchown(&d, uid, gid).ctx("chown", p)?;
            rustix::fs::fchmod(&d, mode).ctx("chmod", p)?;
            copy_xattrs(sdir, sname.as_os_str(), ddir, dname.as_os_str(), p)?;
        }
        FileType::Symlink => {
            let t = rustix::fs::readlinkat(sdir, sname, Vec::new()).ctx("readlink", p)?;
            rustix::fs::symlinkat(t.as_c_str(), ddir, dname).ctx("creating symlink", p)?;
            rustix::fs::chownat(ddir, dname, uid, gid, AtFlags::SYMLINK_NOFOLLOW)
                .ctx("chown", p)?;
            copy_xattrs(sdir, sname.as_os_str(), ddir, dname.as_os_str(), p)?;
        }
        FileType::RegularFile => {
            let s = rustix::fs::openat(
                sdir,
                sname,
                OFlags::RDONLY | OFlags::CLOEXEC | OFlags::NOFOLLOW,
                Mode::empty(),
            )
            .ctx("opening", p)?;
            let d = rustix::fs::openat(
                ddir,
                dname,
                OFlags::WRONLY | OFlags::CREATE | OFlags::EXCL | OFlags::CLOEXEC | OFlags::NOFOLLOW,
                Mode::from_raw_mode(0o600),
            )
            .ctx("creating", p)?;
            let mut sf = std::fs::File::from(s);
            let mut df = std::fs::File::from(d);
            std::io::copy(&mut sf, &mut df).ctx("copying", p)?;
            rustix::fs::fchown(&df, uid, gid).ctx("chown", p)?;
            rustix::fs::fchmod(&df, mode).ctx("chmod", p)?;
            let x = fsutil::read_xattrs_path(&fsutil::proc_path(sdir, sname.as_os_str()))
                .ctx("reading xattrs of", p)?;
            fsutil::fset_xattrs(df.as_fd(), &x).ctx("setting xattrs on", p)?;
        }
        _ => {
            return Err(crate::Error::Invalid {
                path: p.to_owned(),
                reason: "unsupported file type (not a regular file, symlink or directory)".into(),
            });
        }
    }
    Ok(())
}

/// Hardlinks `sdir/sname` to `ddir/dname` through a temporary name, falling
/// back to a copy across filesystems; the file appears complete or not at all.
pub(crate) fn link_or_copy_durable(
    sdir: BorrowedFd<'_>,
    sname: &Path,
    ddir: BorrowedFd<'_>,
    dname: &Path,
    shown: &Path,
) -> Result<()> {
    let tmp = PathBuf::from(format!(".tmp-{}", fsutil::random_suffix()));
    match rustix::fs::linkat(sdir, sname, ddir, &tmp, AtFlags::empty()) {
        Ok(()) => {}
        Err(Errno::XDEV) | Err(Errno::MLINK) | Err(Errno::PERM) => {
            let s =
                rustix::fs::openat(sdir, sname, OFlags::RDONLY | OFlags::CLOEXEC, Mode::empty())
                    .ctx("opening", sname)?;
            let st = rustix::fs::fstat(&s).ctx("stat", sname)?;
            let d = rustix::fs::openat(
                ddir,
                &tmp,
                OFlags::WRONLY | OFlags::CREATE | OFlags::EXCL | OFlags::CLOEXEC,
                Mode::from_raw_mode(0o600),
            )
            .ctx("creating", shown)?;
            let mut sf = std::fs::File::from(s);
            let mut df = std::fs::File::from(d);
            let res = (|| -> Result<()> {
                std::io::copy(&mut sf, &mut df).ctx("copying to", shown)?;
                rustix::fs::fchmod(&df, Mode::from_raw_mode(st.st_mode & 0o7777))
                    .ctx("chmod", shown)?;
                df.sync_all().ctx("fsync", shown)?;
                Ok(())
            })();
            if let Err(e) = res {
                let _ = rustix::fs::unlinkat(ddir, &tmp, AtFlags::empty());
                return Err(e);
            }
        }
        Err(e) => return Err(e).ctx("hardlinking", shown),
    }
    rustix::fs::renameat(ddir, &tmp, ddir, dname).ctx("renaming into place", shown)?;
    Ok(())
}
