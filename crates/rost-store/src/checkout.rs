//! Checking a commit out into a directory.
//!
//! Bare repos (and bare-user repos in user mode) hardlink objects into the
//! checkout; archive repos, zero-length files, and cross-device targets copy.
//! Nothing in the tree is ever followed: entries are created fd-relative with
//! `O_NOFOLLOW`/`AT_SYMLINK_NOFOLLOW`.

use std::fs::File;
use std::io::Write;
use std::os::fd::{AsFd, BorrowedFd};
use std::path::{Path, PathBuf};

use rustix::fs::{AtFlags, Mode, OFlags};
use rustix::io::Errno;

use crate::error::IoContext;
use crate::fsutil;
use crate::objects::{DirMeta, FileHeader};
use crate::repo::RepoMode;
use crate::walk::{TreeNode, lookup_path};
use crate::{Checksum, Error, Repo, Result};

/// Checkout options (ostree's flag names).
#[derive(Debug, Clone, Default)]
pub struct CheckoutOptions {
    /// `-U`: ignore ownership and xattrs; strip setuid/setgid.
    pub user_mode: bool,
    /// `--union`: overwrite existing files.
    pub union: bool,
    /// `--require-hardlinks`: fail instead of copying.
    pub require_hardlinks: bool,
    /// `--subpath`: check out only this path of the tree.
    pub subpath: Option<String>,
    /// `--force-copy`: never hardlink.
    pub force_copy: bool,
}

/// Counters of a checkout.
#[derive(Debug, Default, Clone, Copy)]
pub struct CheckoutStats {
    /// Files hardlinked from the repo.
    pub hardlinked: u64,
    /// Files copied.
    pub copied: u64,
}

struct Ctx<'a> {
    repo: &'a Repo,
    opts: &'a CheckoutOptions,
    can_link: bool,
    dest: PathBuf,
    stats: CheckoutStats,
}

/// Checks `commit` out to `dest` (which must not exist unless `union`).
pub fn checkout(
    repo: &Repo,
    commit: &Checksum,
    dest: &Path,
    opts: &CheckoutOptions,
) -> Result<CheckoutStats> {
    let c = repo.load_commit(commit)?;
    let node = lookup_path(
        repo,
        c.root_tree,
        c.root_meta,
        opts.subpath.as_deref().unwrap_or("/"),
    )?;
    let can_link = !opts.force_copy
        && match repo.mode() {
            // As libostree: a user-mode checkout of a bare repo copies, so the
            // files belong to the caller rather than to the objects' owners.
            RepoMode::Bare => !opts.user_mode,
            RepoMode::BareUser => opts.user_mode,
            RepoMode::BareUserOnly => true,
            RepoMode::Archive => false,
        };
    if opts.require_hardlinks && !can_link {
        // ostree's wording (its tests match on it) for the bare-user case.
        if repo.mode() == RepoMode::BareUser {
            return Err(Error::Other(
                "User repository mode requires user checkout mode (-U) to use --require-hardlinks"
                    .into(),
            ));
        }
        if repo.mode() == RepoMode::Bare && opts.user_mode && !opts.force_copy {
            return Err(Error::Other(crate::msg::BARE_NO_USER_HARDLINKS.to_owned()));
        }
        return Err(Error::Other(format!(
            "cannot use --require-hardlinks with a {} repository",
            repo.mode().as_config_str()
        )));
    }
    let mut ctx = Ctx {
        repo,
        opts,
        can_link,
        dest: dest.to_owned(),
        stats: CheckoutStats::default(),
    };
    let (parent, name) = split_dest(dest)?;
    let pfd = fsutil::open_dir_at(rustix::fs::CWD, &parent).ctx("opening", &parent)?;
    match node {
        TreeNode::Dir(t, m) => ctx.checkout_dir(pfd.as_fd(), Path::new(&name), &t, &m, dest)?,
        TreeNode::File(f) => ctx.checkout_file(pfd.as_fd(), Path::new(&name), &f, dest)?,
    }
    Ok(ctx.stats)
}

fn split_dest(dest: &Path) -> Result<(PathBuf, std::ffi::OsString)> {
    let name = dest
        .file_name()
        .ok_or_else(|| Error::Other(format!("invalid checkout destination {}", dest.display())))?
        .to_owned();
    let parent = match dest.parent() {
        Some(p) if !p.as_os_str().is_empty() => p.to_owned(),
        _ => PathBuf::from("."),
    };
    Ok((parent, name))
}

impl Ctx<'_> {
    fn apply_meta_fd(
        &self,
        fd: BorrowedFd<'_>,
        uid: u32,
        gid: u32,
        mode: u32,
        xattrs: &crate::objects::Xattrs,
        p: &Path,
    ) -> Result<()> {
        if !self.opts.user_mode {
            rustix::fs::fchown(
                fd,
                Some(rustix::fs::Uid::from_raw(uid)),
                Some(rustix::fs::Gid::from_raw(gid)),
            )
            .ctx("chown", p)?;
            fsutil::fset_xattrs(fd, xattrs).ctx("setting xattrs on", p)?;
        }
        let mut m = mode & 0o7777;
        if self.opts.user_mode {
            m &= !0o6000;
        }
        rustix::fs::fchmod(fd, Mode::from_raw_mode(m)).ctx("chmod", p)?;
        Ok(())
    }

    fn checkout_dir(
        &mut self,
        parent: BorrowedFd<'_>,
        name: &Path,
        tree: &Checksum,
        meta: &Checksum,
        p: &Path,
    ) -> Result<()> {
        let dm: DirMeta = self.repo.load_dirmeta(meta)?;
        match rustix::fs::mkdirat(parent, name, Mode::from_raw_mode(0o700)) {
            Ok(()) => {}
            Err(Errno::EXIST) if self.opts.union => {}
            Err(e) => return Err(e).ctx("creating directory", p),
        }
        let fd = fsutil::open_dir_at(parent, name).ctx("opening", p)?;
        let t = self.repo.load_dirtree(tree)?;
        for f in &t.files {
            self.checkout_file(
                fd.as_fd(),
                Path::new(&f.name),
                &f.checksum,
                &p.join(&f.name),
            )?;
        }
        for d in &t.dirs {
            self.checkout_dir(
                fd.as_fd(),
                Path::new(&d.name),
                &d.tree,
                &d.meta,
                &p.join(&d.name),
            )?;
        }
        // Mode last, so read-only directories can still be filled.
        self.apply_meta_fd(fd.as_fd(), dm.uid, dm.gid, dm.mode, &dm.xattrs, p)?;
        rustix::fs::futimens(&fd, &fsutil::zero_times()).ctx("futimens", p)?;
        Ok(())
    }

    fn remove_existing(&self, dir: BorrowedFd<'_>, name: &Path, p: &Path) -> Result<()> {
        if self.opts.union {
            match rustix::fs::unlinkat(dir, name, AtFlags::empty()) {
                Ok(()) | Err(Errno::NOENT) => {}
                Err(e) => return Err(e).ctx("replacing", p),
            }
        }
        Ok(())
    }

    fn checkout_file(
        &mut self,
        dir: BorrowedFd<'_>,
        name: &Path,
        csum: &Checksum,
        p: &Path,
    ) -> Result<()> {
        let obj = self.repo.load_file(csum)?;
        let h: &FileHeader = &obj.header;
        let linkable = self.can_link
            && (h.is_symlink() || obj.size > 0)
            && !(self.opts.user_mode && self.repo.mode() == RepoMode::Bare && h.mode & 0o6000 != 0);
        if linkable && !(h.is_symlink() && self.repo.mode() == RepoMode::BareUser) {
            let src = self.repo.object_path(crate::ObjectType::File, csum);
            self.remove_existing(dir, name, p)?;
            match rustix::fs::linkat(self.repo.dfd(), &src, dir, name, AtFlags::empty()) {
                Ok(()) => {
                    self.stats.hardlinked += 1;
                    return Ok(());
                }
                Err(Errno::XDEV) | Err(Errno::MLINK) | Err(Errno::PERM)
                    if !self.opts.require_hardlinks => {}
                Err(e) => return Err(e).ctx("hardlinking", p),
            }
        } else if self.opts.require_hardlinks && obj.size > 0 {
            return Err(Error::Other(format!(
                "{}: cannot be hardlinked",
                p.display()
            )));
        }
        self.remove_existing(dir, name, p)?;
        if h.is_symlink() {
            rustix::fs::symlinkat(h.symlink_target.as_str(), dir, name)
                .ctx("creating symlink", p)?;
            if !self.opts.user_mode {
                rustix::fs::chownat(
                    dir,
                    name,
                    Some(rustix::fs::Uid::from_raw(h.uid)),
                    Some(rustix::fs::Gid::from_raw(h.gid)),
                    AtFlags::SYMLINK_NOFOLLOW,
                )
                .ctx("chown", p)?;
                fsutil::set_xattrs_path(&fsutil::proc_path(dir, name.as_os_str()), &h.xattrs)
                    .ctx("setting xattrs on", p)?;
            }
            self.stats.copied += 1;
            return Ok(());
        }
        let fd = rustix::fs::openat(
            dir,
            name,
            OFlags::WRONLY | OFlags::CREATE | OFlags::EXCL | OFlags::CLOEXEC | OFlags::NOFOLLOW,
            Mode::from_raw_mode(0o600),
        )
        .ctx("creating", p)?;
        let mut f = File::from(fd);
        let mut reader = obj.reader;
        let n = std::io::copy(&mut reader, &mut f).map_err(|e| Error::Corrupt {
            object: format!("{csum}.file"),
            reason: format!("reading content: {e}"),
        })?;
        if n != obj.size {
            return Err(Error::Corrupt {
                object: format!("{csum}.file"),
                reason: format!("content is {n} bytes, header says {}", obj.size),
            });
        }
        f.flush().ctx("writing", p)?;
        self.apply_meta_fd(f.as_fd(), h.uid, h.gid, h.mode, &h.xattrs, p)?;
        rustix::fs::futimens(&f, &fsutil::zero_times()).ctx("futimens", p)?;
        self.stats.copied += 1;
        let _ = &self.dest;
        Ok(())
    }
}
