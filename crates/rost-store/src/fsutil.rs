//! Fd-relative filesystem helpers: xattrs, atomic replace, directory listing.
//!
//! Everything below a root fd takes `(dirfd, name)` and never follows a symlink
//! in the last component: trees we commit or check out may be hostile.

use std::ffi::{CStr, OsStr, OsString};
use std::io::Write;
use std::os::fd::{AsFd, AsRawFd, BorrowedFd, OwnedFd};
use std::os::unix::ffi::{OsStrExt, OsStringExt};
use std::path::{Path, PathBuf};

use rustix::fs::{AtFlags, FileType, Mode, OFlags};
use rustix::io::Errno;

use crate::Result;
use crate::error::IoContext;
use crate::objects::Xattrs;

/// How durable a replaced file must be when the call returns.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Durability {
    /// fsync the file before the rename, and the directory after it.
    Now,
    /// No fsync; the caller does one `syncfs` for the whole transaction.
    Batched,
}

/// Path through `/proc/self/fd` naming `name` inside `dir`, for the syscalls
/// (`lgetxattr`, `llistxattr`, `lsetxattr`) that have no `*at` form.
pub fn proc_path(dir: BorrowedFd<'_>, name: &OsStr) -> PathBuf {
    let mut p = PathBuf::from(format!("/proc/self/fd/{}", dir.as_raw_fd()));
    p.push(name);
    p
}

/// Reads all xattrs of `path` (without following a final symlink), sorted by name.
pub fn read_xattrs_path(path: &Path) -> std::io::Result<Xattrs> {
    read_xattrs_with(
        |buf| rustix::fs::llistxattr(path, buf),
        || rustix::fs::llistxattr_query(path),
        |name, buf| rustix::fs::lgetxattr(path, name, buf),
        |name| rustix::fs::lgetxattr_query(path, name),
    )
}

/// Reads all xattrs of an open file or directory, sorted by name.
pub fn read_xattrs_fd(fd: BorrowedFd<'_>) -> std::io::Result<Xattrs> {
    read_xattrs_with(
        |buf| rustix::fs::flistxattr(fd, buf),
        || rustix::fs::flistxattr_query(fd),
        |name, buf| rustix::fs::fgetxattr(fd, name, buf),
        |name| rustix::fs::fgetxattr_query(fd, name),
    )
}

/// The list-then-get loop behind [`read_xattrs_path`] and [`read_xattrs_fd`].
fn read_xattrs_with(
    list: impl Fn(&mut [u8]) -> rustix::io::Result<usize>,
    list_len: impl Fn() -> rustix::io::Result<usize>,
    get: impl Fn(&[u8], &mut [u8]) -> rustix::io::Result<usize>,
    get_len: impl Fn(&[u8]) -> rustix::io::Result<usize>,
) -> std::io::Result<Xattrs> {
    let mut names = vec![0u8; 1024];
    let len = loop {
        match list(&mut names[..]) {
            Ok(n) => break n,
            Err(Errno::RANGE) => {
                let need = list_len()?;
                names.resize(need.max(names.len() * 2), 0);
            }
            Err(Errno::NOTSUP) => return Ok(Vec::new()),
            Err(e) => return Err(e.into()),
        }
    };
    let mut out = Xattrs::new();
    for name in names[..len].split(|&c| c == 0).filter(|n| !n.is_empty()) {
        let mut val = vec![0u8; 256];
        let vlen = loop {
            match get(name, &mut val[..]) {
                Ok(n) => break Some(n),
                Err(Errno::RANGE) => {
                    let need = get_len(name)?;
                    val.resize(need.max(val.len() * 2), 0);
                }
                // Removed between list and get: skip it.
                Err(Errno::NODATA) => break None,
                Err(e) => return Err(e.into()),
            }
        };
        if let Some(vlen) = vlen {
            val.truncate(vlen);
            out.push((name.to_vec(), val));
        }
    }
    out.sort_by(|a, b| a.0.cmp(&b.0));
    Ok(out)
}

/// Reads one xattr of an open file, `None` if absent.
pub fn fget_xattr(fd: BorrowedFd<'_>, name: &str) -> std::io::Result<Option<Vec<u8>>> {
    let mut val = vec![0u8; 256];
    loop {
        match rustix::fs::fgetxattr(fd, name, &mut val[..]) {
            Ok(n) => {
                val.truncate(n);
                return Ok(Some(val));
            }
            Err(Errno::RANGE) => {
                let need = rustix::fs::fgetxattr_query(fd, name)?;
                val.resize(need.max(val.len() * 2), 0);
            }
            Err(Errno::NODATA) | Err(Errno::NOTSUP) => return Ok(None),
            Err(e) => return Err(e.into()),
        }
    }
}

/// Sets each xattr on `path` without following a final symlink.
pub fn set_xattrs_path(path: &Path, x: &Xattrs) -> std::io::Result<()> {
    for (n, v) in x {
        rustix::fs::lsetxattr(path, n.as_slice(), v, rustix::fs::XattrFlags::empty())?;
    }
    Ok(())
}

/// Sets each xattr on an open file.
pub fn fset_xattrs(fd: BorrowedFd<'_>, x: &Xattrs) -> std::io::Result<()> {
    for (n, v) in x {
        rustix::fs::fsetxattr(fd, n.as_slice(), v, rustix::fs::XattrFlags::empty())?;
    }
    Ok(())
}

/// Opens a directory beneath `dir` without following a final symlink.
pub fn open_dir_at(dir: BorrowedFd<'_>, name: &Path) -> rustix::io::Result<OwnedFd> {
    rustix::fs::openat(
        dir,
        name,
        OFlags::RDONLY | OFlags::DIRECTORY | OFlags::CLOEXEC | OFlags::NOFOLLOW,
        Mode::empty(),
    )
}

/// Creates a directory if missing (idempotent).
pub fn ensure_dir_at(dir: BorrowedFd<'_>, name: &Path, mode: u32) -> rustix::io::Result<()> {
    match rustix::fs::mkdirat(dir, name, Mode::from_raw_mode(mode)) {
        Ok(()) | Err(Errno::EXIST) => Ok(()),
        Err(e) => Err(e),
    }
}

/// Creates `name` and each missing parent beneath `dir`.
pub fn ensure_dir_all_at(dir: BorrowedFd<'_>, name: &Path, mode: u32) -> rustix::io::Result<()> {
    let mut cur = PathBuf::new();
    for c in name.components() {
        cur.push(c);
        ensure_dir_at(dir, &cur, mode)?;
    }
    Ok(())
}

/// A random suffix for temporary names.
pub fn random_suffix() -> String {
    use rand::Rng;
    let mut rng = rand::rng();
    (0..12)
        .map(|_| char::from(b'a' + rng.random_range(0..26u8)))
        .collect()
}

/// Atomically replaces `dir/name` with `data`: temp file, optional fsync, rename,
/// optional directory fsync. Readers see the old or the new file, never a mix.
pub fn replace_file_at(
    dir: BorrowedFd<'_>,
    name: &Path,
    data: &[u8],
    mode: u32,
    durability: Durability,
) -> Result<()> {
    let parent = name.parent().filter(|p| !p.as_os_str().is_empty());
    let base = name.file_name().unwrap_or(name.as_os_str());
    let tmp_name = {
        let mut t = OsString::from(".tmp-");
        t.push(base);
        t.push(".");
        t.push(random_suffix());
        match parent {
            Some(p) => p.join(t),
            None => PathBuf::from(t),
        }
    };
    let fd = rustix::fs::openat(
        dir,
        &tmp_name,
        OFlags::WRONLY | OFlags::CREATE | OFlags::EXCL | OFlags::CLOEXEC | OFlags::NOFOLLOW,
        Mode::from_raw_mode(mode),
    )
    .ctx("creating", &tmp_name)?;
    let mut f = std::fs::File::from(fd);
    let res = (|| -> Result<()> {
        f.write_all(data).ctx("writing", &tmp_name)?;
        rustix::fs::fchmod(&f, Mode::from_raw_mode(mode)).ctx("chmod", &tmp_name)?;
        if durability == Durability::Now {
            f.sync_all().ctx("fsync", &tmp_name)?;
        }
        rustix::fs::renameat(dir, &tmp_name, dir, name).ctx("renaming into place", name)?;
        Ok(())
    })();
    if res.is_err() {
        let _ = rustix::fs::unlinkat(dir, &tmp_name, AtFlags::empty());
        return res;
    }
    if durability == Durability::Now {
        let pfd = match parent {
            Some(p) => open_dir_at(dir, p).ctx("opening", p)?,
            None => rustix::fs::openat(
                dir,
                ".",
                OFlags::RDONLY | OFlags::DIRECTORY | OFlags::CLOEXEC,
                Mode::empty(),
            )
            .ctx("opening", ".")?,
        };
        rustix::fs::fsync(&pfd).ctx("fsync", parent.unwrap_or(Path::new(".")))?;
    }
    Ok(())
}

/// Reads a whole file beneath `dir`, `None` if it does not exist.
pub fn read_file_optional_at(dir: BorrowedFd<'_>, name: &Path) -> Result<Option<Vec<u8>>> {
    use std::io::Read;
    let fd = match rustix::fs::openat(
        dir,
        name,
        OFlags::RDONLY | OFlags::CLOEXEC | OFlags::NOFOLLOW,
        Mode::empty(),
    ) {
        Ok(fd) => fd,
        Err(Errno::NOENT) => return Ok(None),
        Err(e) => return Err(e).ctx("opening", name),
    };
    let mut f = std::fs::File::from(fd);
    let mut buf = Vec::new();
    f.read_to_end(&mut buf).ctx("reading", name)?;
    Ok(Some(buf))
}

/// One directory entry: raw name and type (from `d_type`, or `lstat` when unknown).
#[derive(Debug, Clone)]
pub struct Entry {
    /// Raw file name.
    pub name: OsString,
    /// File type.
    pub file_type: FileType,
}

/// Lists a directory, skipping `.` and `..`.
pub fn list_dir(fd: BorrowedFd<'_>) -> rustix::io::Result<Vec<Entry>> {
    let mut d = rustix::fs::Dir::read_from(fd)?;
    let mut out = Vec::new();
    while let Some(e) = d.read() {
        let e = e?;
        let name: &CStr = e.file_name();
        let bytes = name.to_bytes();
        if bytes == b"." || bytes == b".." {
            continue;
        }
        let name = OsString::from_vec(bytes.to_vec());
        let mut file_type = e.file_type();
        if file_type == FileType::Unknown {
            file_type = FileType::from_raw_mode(
                rustix::fs::statat(fd, &name, AtFlags::SYMLINK_NOFOLLOW)?.st_mode,
            );
        }
        out.push(Entry { name, file_type });
    }
    Ok(out)
}

/// Removes `name` beneath `dir` recursively; missing is fine.
pub fn remove_all_at(dir: BorrowedFd<'_>, name: &Path) -> rustix::io::Result<()> {
    match rustix::fs::unlinkat(dir, name, AtFlags::empty()) {
        Ok(()) | Err(Errno::NOENT) => return Ok(()),
        Err(Errno::ISDIR) | Err(Errno::PERM) => {}
        Err(e) => return Err(e),
    }
    let sub = match open_dir_at(dir, name) {
        Ok(fd) => fd,
        Err(Errno::NOENT) => return Ok(()),
        Err(e) => return Err(e),
    };
    for e in list_dir(sub.as_fd())? {
        if e.file_type == FileType::Directory {
            remove_all_at(sub.as_fd(), Path::new(&e.name))?;
        } else {
            match rustix::fs::unlinkat(&sub, &e.name, AtFlags::empty()) {
                Ok(()) | Err(Errno::NOENT) => {}
                Err(err) => return Err(err),
            }
        }
    }
    match rustix::fs::unlinkat(dir, name, AtFlags::REMOVEDIR) {
        Ok(()) | Err(Errno::NOENT) => Ok(()),
        Err(e) => Err(e),
    }
}

/// Converts raw name bytes to a `&Path`.
pub fn path_of(b: &[u8]) -> &Path {
    Path::new(OsStr::from_bytes(b))
}

/// Timestamps of the epoch: OSTree objects and checkouts have mtime 0.
pub fn zero_times() -> rustix::fs::Timestamps {
    let t = rustix::fs::Timespec {
        tv_sec: 0,
        tv_nsec: 0,
    };
    rustix::fs::Timestamps {
        last_access: t,
        last_modification: t,
    }
}
