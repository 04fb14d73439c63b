//! Deployment checkout from a bare repository: hardlinks straight from
//! `objects/`, directories in parallel.
//!
//! A bare repo's content object *is* the file (owner, mode and xattrs on the
//! inode), so each file is one `linkat` with no object to open or parse. Only
//! what cannot be linked (empty files, which libostree copies, and
//! cross-device or link-count failures) goes through `rost_store::checkout`.
//! Directories get their dirmeta (owner, mode, xattrs) and mtime 0 last, as in
//! `rost_store::checkout`.

use std::collections::HashMap;
use std::os::fd::{AsFd, BorrowedFd};
use std::path::{Path, PathBuf};
use std::sync::Mutex;

use rayon::prelude::*;
use rost_store::checkout::{CheckoutOptions, checkout};
use rost_store::objects::DirMeta;
use rost_store::{Checksum, ObjectType, Repo, RepoMode, fsutil};
use rustix::fs::{AtFlags, FileType, Gid, Mode, Timespec, Timestamps, Uid};
use rustix::io::Errno;

use crate::error::{IoContext, Result};

struct Ctx<'a> {
    repo: &'a Repo,
    commit: &'a Checksum,
    /// Absolute path of the deployment (for the fallback checkout).
    dest: &'a Path,
    metas: Mutex<HashMap<Checksum, DirMeta>>,
}

/// Checks `commit` out to `dest` (absolute; `parent`/`name` is the same
/// directory fd-relative, and must not exist).
pub(crate) fn checkout_deployment(
    repo: &Repo,
    commit: &Checksum,
    parent: BorrowedFd<'_>,
    name: &Path,
    dest: &Path,
) -> Result<()> {
    if repo.mode() != RepoMode::Bare {
        // A bare-user repo is how an unprivileged user keeps a sysroot: its
        // owners live in xattrs and cannot be applied without root, so the
        // checkout is in user mode there (as `ostree checkout -U`).
        let opts = CheckoutOptions {
            user_mode: !rustix::process::geteuid().is_root(),
            ..Default::default()
        };
        checkout(repo, commit, dest, &opts)?;
        return Ok(());
    }
    let c = repo.load_commit(commit)?;
    let ctx = Ctx {
        repo,
        commit,
        dest,
        metas: Mutex::new(HashMap::new()),
    };
    ctx.dir(parent, name, Path::new(""), &c.root_tree, &c.root_meta)
}

fn zero_times() -> Timestamps {
    let t = Timespec {
        tv_sec: 0,
        tv_nsec: 0,
    };
    Timestamps {
        last_access: t,
        last_modification: t,
    }
}

impl Ctx<'_> {
    fn dirmeta(&self, m: &Checksum) -> Result<DirMeta> {
        if let Ok(g) = self.metas.lock()
            && let Some(d) = g.get(m)
        {
            return Ok(d.clone());
        }
        let d = self.repo.load_dirmeta(m)?;
        if let Ok(mut g) = self.metas.lock() {
            g.insert(*m, d.clone());
        }
        Ok(d)
    }

    fn dir(
        &self,
        parent: BorrowedFd<'_>,
        name: &Path,
        rel: &Path,
        tree: &Checksum,
        meta: &Checksum,
    ) -> Result<()> {
        let shown = || self.dest.join(rel);
        let dm = self.dirmeta(meta)?;
        rustix::fs::mkdirat(parent, name, Mode::from_raw_mode(0o700))
            .ctx("creating directory", shown())?;
        let fd = fsutil::open_dir_at(parent, name).ctx("opening", shown())?;
        let t = self.repo.load_dirtree(tree)?;
        for f in &t.files {
            self.file(fd.as_fd(), &f.name, &rel.join(&f.name), &f.checksum)?;
        }
        t.dirs.par_iter().try_for_each(|d| {
            self.dir(
                fd.as_fd(),
                Path::new(&d.name),
                &rel.join(&d.name),
                &d.tree,
                &d.meta,
            )
        })?;
        rustix::fs::fchown(
            &fd,
            Some(Uid::from_raw(dm.uid)),
            Some(Gid::from_raw(dm.gid)),
        )
        .ctx("chown", shown())?;
        fsutil::fset_xattrs(fd.as_fd(), &dm.xattrs).ctx("setting xattrs on", shown())?;
        rustix::fs::fchmod(&fd, Mode::from_raw_mode(dm.mode & 0o7777)).ctx("chmod", shown())?;
        rustix::fs::futimens(&fd, &zero_times()).ctx("futimens", shown())?;
        Ok(())
    }

    fn file(&self, dir: BorrowedFd<'_>, name: &str, rel: &Path, csum: &Checksum) -> Result<()> {
        let obj: PathBuf = self.repo.object_path(ObjectType::File, csum);
        let st = rustix::fs::statat(self.repo.dfd(), &obj, AtFlags::SYMLINK_NOFOLLOW)
            .ctx("stat", self.repo.path().join(&obj))?;
        let empty_file =
            FileType::from_raw_mode(st.st_mode) == FileType::RegularFile && st.st_size == 0;
        if !empty_file {
            match rustix::fs::linkat(self.repo.dfd(), &obj, dir, name, AtFlags::empty()) {
                Ok(()) => return Ok(()),
                Err(Errno::XDEV) | Err(Errno::MLINK) | Err(Errno::PERM) => {}
                Err(e) => return Err(e).ctx("hardlinking", self.dest.join(rel)),
            }
        }
        checkout(
            self.repo,
            self.commit,
            &self.dest.join(rel),
            &CheckoutOptions {
                subpath: Some(format!("/{}", rel.display())),
                ..Default::default()
            },
        )?;
        Ok(())
    }
}
