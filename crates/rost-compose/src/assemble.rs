//! Assembling the rootfs from the package commits of the cache.
//!
//! The package trees are read in parallel and merged in install order into
//! one tree in memory (conflicts refused there: two packages with different
//! content at one path, or a file where another package has a directory).
//! Every distinct object is looked at once (header, size, device/inode), then
//! the merged tree is written out: directories first, then every file in
//! parallel as a hardlink to its cache object (symlinks and empty files are
//! created, as `ostree checkout -U --union` does with a bare-user repo), then
//! directory modes, innermost first. The result is what union checkouts of
//! the packages in order would give (a directory takes the mode of the last
//! package that has it; setuid/setgid bits are not set on disk), without
//! replacing any entry or reading an object more than once.
//!
//! The rootfs of the previous compose is kept in the cache directory
//! ([`keep_for_reuse`]) and taken as the start of the next one: what matches
//! the new merged tree (directories, hardlinks to the very cache objects,
//! symlinks with the same target) stays, everything else (script output,
//! copies, postprocessing results, other packages' files) is removed, and only
//! what is missing is created. On this machine's ext4, creating and removing
//! a few thousand directories per compose cost more than the rest of an
//! incremental assembly; a tree that is reused costs a listing and an lstat
//! per entry. The result is the same tree as a fresh write-out.

use std::collections::{HashMap, HashSet};
use std::ffi::OsStr;
use std::io::Write;
use std::os::fd::{AsFd, BorrowedFd};
use std::path::Path;

use rayon::prelude::*;
use rost_store::objects::{DirMeta, FileHeader};
use rost_store::{Checksum, ObjectType, Repo};
use rustix::fs::{AtFlags, FileType, Mode, OFlags};
use rustix::io::Errno;

use crate::error::{Error, Result};
use crate::import;

/// A content object of the package cache, as the assembly found it.
pub(crate) struct CacheObject {
    /// Its header (root-owned: the cache stores every object so).
    pub(crate) header: FileHeader,
    /// Data size (0 for symlinks).
    pub(crate) size: u64,
}

/// What the assembly knows about the tree it wrote.
#[derive(Default)]
pub(crate) struct Assembly {
    /// Each file path and (object, package index) that provides it.
    pub(crate) owners: HashMap<String, (Checksum, usize)>,
    /// Each directory's metadata from the first package that has it.
    pub(crate) dirmetas: HashMap<String, DirMeta>,
    /// Non-root owners by path, by name (later packages win).
    pub(crate) nonroot: HashMap<String, (String, String)>,
    /// Cache objects by the device and inode of their file.
    pub(crate) by_devino: HashMap<(u64, u64), Checksum>,
    /// Every object of the tree.
    pub(crate) objects: HashMap<Checksum, CacheObject>,
}

/// One package's tree, flattened: directories in pre-order with their
/// dirmeta objects, and files with their content objects.
struct Flat {
    dirs: Vec<(String, Checksum)>,
    files: Vec<(String, Checksum)>,
    nonroot: Vec<(String, String, String)>,
}

fn join(prefix: &str, name: &str) -> String {
    if prefix.is_empty() {
        name.to_owned()
    } else {
        format!("{prefix}/{name}")
    }
}

fn flatten(pkgcache: &Repo, commit: &Checksum) -> Result<Flat> {
    let c = pkgcache.load_commit(commit)?;
    let mut flat = Flat {
        dirs: Vec::new(),
        files: Vec::new(),
        nonroot: import::nonroot_of(&c),
    };
    let mut stack = vec![(String::new(), c.root_tree, c.root_meta)];
    while let Some((prefix, t, m)) = stack.pop() {
        let tree = pkgcache.load_dirtree(&t)?;
        for f in &tree.files {
            flat.files.push((join(&prefix, &f.name), f.checksum));
        }
        // Reversed, so that the pops visit subdirectories in name order.
        for d in tree.dirs.iter().rev() {
            stack.push((join(&prefix, &d.name), d.tree, d.meta));
        }
        flat.dirs.push((prefix, m));
    }
    Ok(flat)
}

fn io(op: &'static str, root: &Path, rel: &str) -> impl FnOnce(Errno) -> Error {
    let p = root.join(rel);
    move |e| Error::io(op, p, e.into())
}

/// Assembles the packages `commits` (in install order; `nevras` names them
/// for errors, by the same index) into the new directory `rootfs`, starting
/// from the tree kept at `reuse` if there is one.
pub(crate) fn assemble(
    pkgcache: &Repo,
    order: &[usize],
    commits: &[Checksum],
    nevras: &[String],
    rootfs: &Path,
    reuse: Option<&Path>,
) -> Result<Assembly> {
    let flats: Vec<Flat> = order
        .par_iter()
        .map(|&i| flatten(pkgcache, &commits[i]))
        .collect::<Result<_>>()?;

    // Merge in install order.
    let mut asm = Assembly::default();
    let mut dir_owner: HashMap<String, usize> = HashMap::new();
    // Directories in first-seen order (a parent before its children), with
    // the dirmeta of the last package that has them (what lands on disk).
    let mut dirs: Vec<(String, Checksum)> = Vec::new();
    let mut dir_index: HashMap<String, usize> = HashMap::new();
    let mut files: Vec<(String, Checksum)> = Vec::new();
    let mut metas: HashMap<Checksum, DirMeta> = HashMap::new();
    for (flat, &i) in flats.iter().zip(order) {
        for (p, u, g) in &flat.nonroot {
            asm.nonroot.insert(p.clone(), (u.clone(), g.clone()));
        }
        for (path, m) in &flat.dirs {
            if let Some((_, j)) = asm.owners.get(path) {
                return Err(Error::Conflict {
                    path: format!("/{path}"),
                    a: nevras[*j].clone(),
                    b: nevras[i].clone(),
                });
            }
            if !metas.contains_key(m) {
                metas.insert(*m, pkgcache.load_dirmeta(m)?);
            }
            if !asm.dirmetas.contains_key(path) {
                asm.dirmetas.insert(path.clone(), metas[m].clone());
                dir_owner.insert(path.clone(), i);
            }
            match dir_index.get(path) {
                Some(&k) => dirs[k].1 = *m,
                None => {
                    dir_index.insert(path.clone(), dirs.len());
                    dirs.push((path.clone(), *m));
                }
            }
        }
        for (path, c) in &flat.files {
            if let Some(j) = dir_owner.get(path) {
                return Err(Error::Conflict {
                    path: format!("/{path}"),
                    a: nevras[*j].clone(),
                    b: nevras[i].clone(),
                });
            }
            match asm.owners.get(path) {
                Some((other, j)) if other != c => {
                    return Err(Error::Conflict {
                        path: format!("/{path}"),
                        a: nevras[*j].clone(),
                        b: nevras[i].clone(),
                    });
                }
                Some(_) => {}
                None => files.push((path.clone(), *c)),
            }
            asm.owners.insert(path.clone(), (*c, i));
        }
    }

    // Every distinct object, once.
    let mut unique: Vec<Checksum> = files.iter().map(|(_, c)| *c).collect();
    unique.sort_unstable();
    unique.dedup();
    let looked: Vec<(Checksum, CacheObject, (u64, u64))> = unique
        .par_iter()
        .map(|c| {
            let obj = pkgcache.load_file(c)?;
            let op = pkgcache.object_path(ObjectType::File, c);
            let st = rustix::fs::statat(pkgcache.dfd(), &op, AtFlags::SYMLINK_NOFOLLOW)
                .map_err(io("stat", pkgcache.path(), &op.to_string_lossy()))?;
            Ok((
                *c,
                CacheObject {
                    header: obj.header,
                    size: obj.size,
                },
                (st.st_dev, st.st_ino),
            ))
        })
        .collect::<Result<_>>()?;
    for (c, obj, devino) in looked {
        asm.by_devino.insert(devino, c);
        asm.objects.insert(c, obj);
    }

    // Write it out: directories, files, then directory modes.
    let reused = match reuse {
        Some(r) => match std::fs::rename(r, rootfs) {
            Ok(()) => true,
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => false,
            Err(e) => return Err(Error::io("renaming", r, e)),
        },
        None => false,
    };
    if !reused {
        std::fs::create_dir(rootfs).map_err(|e| Error::io("creating", rootfs, e))?;
    }
    let root = rustix::fs::open(
        rootfs,
        OFlags::RDONLY | OFlags::DIRECTORY | OFlags::CLOEXEC | OFlags::NOFOLLOW,
        Mode::empty(),
    )
    .map_err(|e| Error::io("opening", rootfs, e.into()))?;
    let root = root.as_fd();
    let (have_dirs, have_files) = if reused {
        prune(root, rootfs, &dirs, &files, &asm)?
    } else {
        Default::default()
    };
    for (path, _) in dirs.iter().filter(|(p, _)| !p.is_empty()) {
        if have_dirs.contains(path.as_str()) {
            continue;
        }
        rustix::fs::mkdirat(root, path.as_str(), Mode::from_raw_mode(0o700)).map_err(io(
            "creating directory",
            rootfs,
            path,
        ))?;
    }
    files
        .par_iter()
        .filter(|(path, _)| !have_files.contains(path.as_str()))
        .try_for_each(|(path, c)| {
            let obj = &asm.objects[c];
            place_file(pkgcache, root, rootfs, path, c, obj)
        })?;
    for (path, m) in dirs.iter().rev() {
        let mode = metas[m].mode & 0o7777 & !0o6000;
        let rel = if path.is_empty() { "." } else { path.as_str() };
        rustix::fs::chmodat(root, rel, Mode::from_raw_mode(mode), AtFlags::empty())
            .map_err(io("chmod", rootfs, path))?;
        rustix::fs::utimensat(
            root,
            rel,
            &rost_store::fsutil::zero_times(),
            AtFlags::SYMLINK_NOFOLLOW,
        )
        .map_err(io("utimensat", rootfs, path))?;
    }
    Ok(asm)
}

/// Puts one file of the merged tree in place: a hardlink to the cache
/// object, or (symlinks, empty files, objects that cannot be linked) a new
/// entry with the object's content and mode.
fn place_file(
    pkgcache: &Repo,
    root: BorrowedFd<'_>,
    rootfs: &Path,
    path: &str,
    c: &Checksum,
    obj: &CacheObject,
) -> Result<()> {
    let h = &obj.header;
    if h.is_symlink() {
        return rustix::fs::symlinkat(h.symlink_target.as_str(), root, path).map_err(io(
            "creating symlink",
            rootfs,
            path,
        ));
    }
    let src = pkgcache.object_path(ObjectType::File, c);
    if obj.size > 0 {
        match rustix::fs::linkat(pkgcache.dfd(), &src, root, path, AtFlags::empty()) {
            Ok(()) => return Ok(()),
            Err(Errno::XDEV | Errno::MLINK | Errno::PERM) => {}
            Err(e) => return Err(io("hardlinking", rootfs, path)(e)),
        }
    }
    let fd = rustix::fs::openat(
        root,
        path,
        OFlags::WRONLY | OFlags::CREATE | OFlags::EXCL | OFlags::CLOEXEC | OFlags::NOFOLLOW,
        Mode::from_raw_mode(0o600),
    )
    .map_err(io("creating", rootfs, path))?;
    let mut f = std::fs::File::from(fd);
    if obj.size > 0 {
        let mut reader = pkgcache.load_file(c)?.reader;
        let n = std::io::copy(&mut reader, &mut f)
            .map_err(|e| Error::io("copying", rootfs.join(path), e))?;
        if n != obj.size {
            return Err(Error::Invalid {
                msg: format!(
                    "package cache object {c}: {n} bytes of content, header says {}",
                    obj.size
                ),
            });
        }
        f.flush()
            .map_err(|e| Error::io("writing", rootfs.join(path), e))?;
    }
    rustix::fs::fchmod(&f, Mode::from_raw_mode(h.mode & 0o7777 & !0o6000))
        .map_err(io("chmod", rootfs, path))?;
    rustix::fs::futimens(&f, &rost_store::fsutil::zero_times())
        .map_err(io("futimens", rootfs, path))?;
    Ok(())
}

/// Keeps the finished `rootfs` at `reuse` for the next compose; if another
/// compose kept one there meanwhile, removes it instead.
pub(crate) fn keep_for_reuse(rootfs: &Path, reuse: &Path) -> Result<()> {
    match rustix::fs::renameat_with(
        rustix::fs::CWD,
        rootfs,
        rustix::fs::CWD,
        reuse,
        rustix::fs::RenameFlags::NOREPLACE,
    ) {
        Ok(()) => Ok(()),
        Err(Errno::EXIST | Errno::NOTEMPTY) => crate::postprocess::remove_tree_parallel(rootfs),
        Err(e) => Err(Error::io("renaming", rootfs, e.into())),
    }
}

/// The entries of a reused tree that are already right: directories and files.
type Kept = (HashSet<String>, HashSet<String>);

/// Removes from the reused tree at `root` whatever the merged tree does not
/// hold as it is; returns the directories and files that stay. Directories
/// are listed in parallel; each one decides about its non-directory entries
/// and removes subdirectories the merged tree lacks (a wanted directory that
/// is not a directory on disk is removed by its parent and made anew).
fn prune(
    root: BorrowedFd<'_>,
    rootfs: &Path,
    dirs: &[(String, Checksum)],
    files: &[(String, Checksum)],
    asm: &Assembly,
) -> Result<Kept> {
    let want_dirs: HashSet<&str> = dirs.iter().map(|(p, _)| p.as_str()).collect();
    let want_files: HashMap<&str, &Checksum> = files.iter().map(|(p, c)| (p.as_str(), c)).collect();
    let owner = (
        rustix::process::geteuid().as_raw(),
        rustix::process::getegid().as_raw(),
    );
    let per_dir: Vec<Option<Vec<String>>> = dirs
        .par_iter()
        .map(|(dir, _)| prune_dir(root, rootfs, dir, &want_dirs, &want_files, asm, owner))
        .collect::<Result<_>>()?;
    let mut have_dirs = HashSet::new();
    let mut have_files = HashSet::new();
    for ((dir, _), kept) in dirs.iter().zip(per_dir) {
        if let Some(kept) = kept {
            have_dirs.insert(dir.clone());
            have_files.extend(kept);
        }
    }
    Ok((have_dirs, have_files))
}

/// [`prune`] for one wanted directory: `None` if it is not there (as a
/// directory), else the files in it that stay.
fn prune_dir(
    root: BorrowedFd<'_>,
    rootfs: &Path,
    dir: &str,
    want_dirs: &HashSet<&str>,
    want_files: &HashMap<&str, &Checksum>,
    asm: &Assembly,
    owner: (u32, u32),
) -> Result<Option<Vec<String>>> {
    let rel = if dir.is_empty() { "." } else { dir };
    let fd = match rustix::fs::openat(
        root,
        rel,
        OFlags::RDONLY | OFlags::DIRECTORY | OFlags::CLOEXEC | OFlags::NOFOLLOW,
        Mode::empty(),
    ) {
        Ok(fd) => fd,
        Err(Errno::NOENT | Errno::NOTDIR | Errno::LOOP) => return Ok(None),
        Err(e) => return Err(io("opening", rootfs, dir)(e)),
    };
    // As a new directory would be: ours, and writable while it is filled.
    let st = rustix::fs::fstat(&fd).map_err(io("stat", rootfs, dir))?;
    if (st.st_uid, st.st_gid) != owner {
        rustix::fs::fchown(
            &fd,
            Some(rustix::fs::Uid::from_raw(owner.0)),
            Some(rustix::fs::Gid::from_raw(owner.1)),
        )
        .map_err(io("chown", rootfs, dir))?;
    }
    if st.st_mode & 0o700 != 0o700 {
        rustix::fs::fchmod(&fd, Mode::from_raw_mode(0o700)).map_err(io("chmod", rootfs, dir))?;
    }
    let mut kept = Vec::new();
    let entries = rost_store::fsutil::list_dir(fd.as_fd()).map_err(io("listing", rootfs, dir))?;
    for e in entries {
        let Some(name) = e.name.to_str() else {
            remove_entry(fd.as_fd(), rootfs, dir, &e.name)?;
            continue;
        };
        let path = join(dir, name);
        let st = rustix::fs::statat(&fd, name, AtFlags::SYMLINK_NOFOLLOW)
            .map_err(io("stat", rootfs, &path))?;
        let ft = FileType::from_raw_mode(st.st_mode);
        if ft == FileType::Directory && want_dirs.contains(path.as_str()) {
            continue;
        }
        let keep = want_files.get(path.as_str()).is_some_and(|c| {
            let obj = &asm.objects[*c];
            match ft {
                FileType::Symlink => {
                    obj.header.is_symlink()
                        && (st.st_uid, st.st_gid) == owner
                        && rustix::fs::readlinkat(&fd, name, Vec::new())
                            .is_ok_and(|t| t.as_bytes() == obj.header.symlink_target.as_bytes())
                }
                // The cache object itself, untouched (objects have mtime 0).
                FileType::RegularFile => {
                    obj.size > 0
                        && st.st_mtime == 0
                        && asm.by_devino.get(&(st.st_dev, st.st_ino)) == Some(*c)
                }
                _ => false,
            }
        });
        if keep {
            kept.push(path);
        } else {
            remove_entry(fd.as_fd(), rootfs, dir, &e.name)?;
        }
    }
    Ok(Some(kept))
}

/// Removes the entry `name` of the directory `dir` (a whole tree if it is one).
fn remove_entry(dirfd: BorrowedFd<'_>, rootfs: &Path, dir: &str, name: &OsStr) -> Result<()> {
    let p = rootfs.join(dir).join(name);
    match rustix::fs::unlinkat(dirfd, name, AtFlags::empty()) {
        Ok(()) => Ok(()),
        Err(Errno::ISDIR | Errno::PERM) => crate::postprocess::remove_tree_parallel(&p),
        Err(e) => Err(Error::io("removing", p, e.into())),
    }
}
