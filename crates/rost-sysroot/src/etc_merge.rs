//! The `/etc` three-way merge.
//!
//! As libostree: the merge deployment's pristine `usr/etc` is diffed against its
//! live `etc`, ignoring xattrs. Paths added or modified there are copied whole
//! into the new deployment's `etc` (a fresh copy of its own `usr/etc`); paths
//! removed there are removed. There is no content-level merge: a file changed
//! both locally and upstream keeps the local version.
//!
//! [`compute_diff`] only reads; [`apply_diff`] writes.

use std::io::Read;
use std::os::fd::{AsFd, BorrowedFd};
use std::path::{Path, PathBuf};

use rost_store::fsutil;
use rustix::fs::{AtFlags, FileType, Gid, Mode, OFlags, Stat, Uid};
use rustix::io::Errno;

use crate::error::{Error, IoContext, Result};
use crate::fsx;

/// What changed between a pristine and a live `/etc` (paths relative to it).
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct EtcDiff {
    /// Present in both, different type, owner, mode, content or link target.
    pub modified: Vec<PathBuf>,
    /// Present only in the pristine tree.
    pub removed: Vec<PathBuf>,
    /// Present only in the live tree (a directory, then everything below it).
    pub added: Vec<PathBuf>,
}

fn lstat(dir: BorrowedFd<'_>, name: &Path, p: &Path) -> Result<Option<Stat>> {
    match rustix::fs::statat(dir, name, AtFlags::SYMLINK_NOFOLLOW) {
        Ok(st) => Ok(Some(st)),
        Err(Errno::NOENT) => Ok(None),
        Err(e) => Err(e).ctx("stat", p),
    }
}

fn sorted_names(fd: BorrowedFd<'_>, p: &Path) -> Result<Vec<std::ffi::OsString>> {
    let mut v: Vec<_> = fsutil::list_dir(fd)
        .ctx("listing", p)?
        .into_iter()
        .map(|e| e.name)
        .collect();
    v.sort();
    Ok(v)
}

fn same_content(a: BorrowedFd<'_>, b: BorrowedFd<'_>, name: &Path, p: &Path) -> Result<bool> {
    let open = |d: BorrowedFd<'_>| {
        rustix::fs::openat(
            d,
            name,
            OFlags::RDONLY | OFlags::CLOEXEC | OFlags::NOFOLLOW,
            Mode::empty(),
        )
        .ctx("opening", p)
    };
    let mut fa = std::fs::File::from(open(a)?);
    let mut fb = std::fs::File::from(open(b)?);
    let mut ba = vec![0u8; 1 << 15];
    let mut bb = vec![0u8; 1 << 15];
    loop {
        let na = read_full(&mut fa, &mut ba).ctx("reading", p)?;
        let nb = read_full(&mut fb, &mut bb).ctx("reading", p)?;
        if na != nb || ba[..na] != bb[..nb] {
            return Ok(false);
        }
        if na == 0 {
            return Ok(true);
        }
    }
}

fn read_full(f: &mut std::fs::File, buf: &mut [u8]) -> std::io::Result<usize> {
    let mut n = 0;
    while n < buf.len() {
        let r = f.read(&mut buf[n..])?;
        if r == 0 {
            break;
        }
        n += r;
    }
    Ok(n)
}

fn differs(
    a: BorrowedFd<'_>,
    sa: &Stat,
    b: BorrowedFd<'_>,
    sb: &Stat,
    name: &Path,
    p: &Path,
) -> Result<bool> {
    let ta = FileType::from_raw_mode(sa.st_mode);
    if ta != FileType::from_raw_mode(sb.st_mode) || sa.st_uid != sb.st_uid || sa.st_gid != sb.st_gid
    {
        return Ok(true);
    }
    match ta {
        FileType::Symlink => {
            let la = rustix::fs::readlinkat(a, name, Vec::new()).ctx("readlink", p)?;
            let lb = rustix::fs::readlinkat(b, name, Vec::new()).ctx("readlink", p)?;
            Ok(la != lb)
        }
        FileType::RegularFile => Ok(sa.st_mode != sb.st_mode
            || sa.st_size != sb.st_size
            || !same_content(a, b, name, p)?),
        _ => Ok(sa.st_mode != sb.st_mode),
    }
}

fn add_recursive(
    dir: BorrowedFd<'_>,
    name: &Path,
    rel: &Path,
    st: &Stat,
    out: &mut Vec<PathBuf>,
) -> Result<()> {
    out.push(rel.to_owned());
    if FileType::from_raw_mode(st.st_mode) == FileType::Directory {
        let fd = fsx::open_dir(dir, name)?;
        for n in sorted_names(fd.as_fd(), rel)? {
            let child = Path::new(&n);
            if let Some(cst) = lstat(fd.as_fd(), child, &rel.join(child))? {
                add_recursive(fd.as_fd(), child, &rel.join(child), &cst, out)?;
            }
        }
    }
    Ok(())
}

fn diff_dirs(
    orig: BorrowedFd<'_>,
    live: BorrowedFd<'_>,
    rel: &Path,
    d: &mut EtcDiff,
) -> Result<()> {
    let a_names = sorted_names(orig, rel)?;
    let b_names = sorted_names(live, rel)?;
    for n in &a_names {
        let name = Path::new(n);
        let p = rel.join(name);
        let Some(sa) = lstat(orig, name, &p)? else {
            continue;
        };
        let Some(sb) = lstat(live, name, &p)? else {
            d.removed.push(p);
            continue;
        };
        if differs(orig, &sa, live, &sb, name, &p)? {
            d.modified.push(p.clone());
        }
        if FileType::from_raw_mode(sa.st_mode) == FileType::Directory
            && FileType::from_raw_mode(sb.st_mode) == FileType::Directory
        {
            let ca = fsx::open_dir(orig, name)?;
            let cb = fsx::open_dir(live, name)?;
            diff_dirs(ca.as_fd(), cb.as_fd(), &p, d)?;
        }
    }
    for n in &b_names {
        if a_names.binary_search(n).is_ok() {
            continue;
        }
        let name = Path::new(n);
        let p = rel.join(name);
        if let Some(sb) = lstat(live, name, &p)? {
            add_recursive(live, name, &p, &sb, &mut d.added)?;
        }
    }
    Ok(())
}

/// Diffs a pristine `/etc` (`orig`, the deployment's `usr/etc`) against the live
/// one, ignoring xattrs as libostree's merge does.
pub fn compute_diff(orig: BorrowedFd<'_>, live: BorrowedFd<'_>) -> Result<EtcDiff> {
    let mut d = EtcDiff::default();
    diff_dirs(orig, live, Path::new(""), &mut d)?;
    Ok(d)
}

fn copy_dir_attrs(src: BorrowedFd<'_>, dst: BorrowedFd<'_>, rel: &Path) -> Result<()> {
    let st = rustix::fs::statat(src, rel, AtFlags::SYMLINK_NOFOLLOW).ctx("stat", rel)?;
    match rustix::fs::mkdirat(dst, rel, Mode::from_raw_mode(0o700)) {
        Ok(()) => {}
        // As libostree: a directory the new /etc already has keeps the new
        // tree's owner and mode (only its contents are merged).
        Err(Errno::EXIST) if fsx::open_dir_optional(dst, rel).is_ok() => return Ok(()),
        Err(e) => return Err(e).ctx("creating directory", rel),
    }
    let fd = fsx::open_dir(dst, rel).map_err(|e| match e {
        Error::Io { source, .. } if source.raw_os_error() == Some(Errno::NOTDIR.raw_os_error()) => {
            Error::Invalid {
                path: rel.to_owned(),
                reason: "locally a directory, a non-directory in the new /etc: cannot merge".into(),
            }
        }
        e => e,
    })?;
    rustix::fs::fchown(
        &fd,
        Some(Uid::from_raw(st.st_uid)),
        Some(Gid::from_raw(st.st_gid)),
    )
    .ctx("chown", rel)?;
    rustix::fs::fchmod(&fd, Mode::from_raw_mode(st.st_mode & 0o7777)).ctx("chmod", rel)?;
    let x = fsutil::read_xattrs_path(&fsutil::proc_path(src, rel.as_os_str()))
        .ctx("reading xattrs of", rel)?;
    fsutil::fset_xattrs(fd.as_fd(), &x).ctx("setting xattrs on", rel)?;
    Ok(())
}

fn ensure_parents(live: BorrowedFd<'_>, new: BorrowedFd<'_>, rel: &Path) -> Result<()> {
    let mut cur = PathBuf::new();
    let comps: Vec<_> = rel.components().collect();
    for c in comps.iter().take(comps.len().saturating_sub(1)) {
        cur.push(c);
        if !fsx::exists(new, &cur)? {
            copy_dir_attrs(live, new, &cur)?;
        }
    }
    Ok(())
}

fn copy_one(live: BorrowedFd<'_>, new: BorrowedFd<'_>, rel: &Path) -> Result<()> {
    ensure_parents(live, new, rel)?;
    let Some(st) = lstat(live, rel, rel)? else {
        return Ok(());
    };
    if FileType::from_raw_mode(st.st_mode) == FileType::Directory {
        if let Some(nst) = lstat(new, rel, rel)?
            && FileType::from_raw_mode(nst.st_mode) != FileType::Directory
        {
            rustix::fs::unlinkat(new, rel, AtFlags::empty()).ctx("removing", rel)?;
        }
        return copy_dir_attrs(live, new, rel);
    }
    if let Some(nst) = lstat(new, rel, rel)? {
        if FileType::from_raw_mode(nst.st_mode) == FileType::Directory {
            return Err(Error::Invalid {
                path: rel.to_owned(),
                reason: "modified config file newly defaults to directory, cannot merge".into(),
            });
        }
        rustix::fs::unlinkat(new, rel, AtFlags::empty()).ctx("removing", rel)?;
    }
    fsx::copy_tree(live, rel, new, rel, rel)
}

/// Applies a diff: removes `removed` from `new`, then copies `modified` and
/// `added` from `live` into `new`.
pub fn apply_diff(diff: &EtcDiff, live: BorrowedFd<'_>, new: BorrowedFd<'_>) -> Result<()> {
    for rel in &diff.removed {
        fsx::remove_all(new, rel)?;
    }
    for rel in diff.modified.iter().chain(&diff.added) {
        copy_one(live, new, rel)?;
    }
    Ok(())
}
