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

use std::collections::HashMap;
use std::io::Write;
use std::os::fd::AsFd;
use std::path::Path;

use rayon::prelude::*;
use rost_store::objects::{DirMeta, FileHeader};
use rost_store::{Checksum, ObjectType, Repo};
use rustix::fs::{AtFlags, Mode, OFlags};
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
/// for errors, by the same index) into the new directory `rootfs`.
pub(crate) fn assemble(
    pkgcache: &Repo,
    order: &[usize],
    commits: &[Checksum],
    nevras: &[String],
    rootfs: &Path,
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
    std::fs::create_dir(rootfs).map_err(|e| Error::io("creating", rootfs, e))?;
    let root = rustix::fs::open(
        rootfs,
        OFlags::RDONLY | OFlags::DIRECTORY | OFlags::CLOEXEC | OFlags::NOFOLLOW,
        Mode::empty(),
    )
    .map_err(|e| Error::io("opening", rootfs, e.into()))?;
    let root = root.as_fd();
    for (path, _) in dirs.iter().filter(|(p, _)| !p.is_empty()) {
        rustix::fs::mkdirat(root, path.as_str(), Mode::from_raw_mode(0o700)).map_err(io(
            "creating directory",
            rootfs,
            path,
        ))?;
    }
    files.par_iter().try_for_each(|(path, c)| {
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
    root: std::os::fd::BorrowedFd<'_>,
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
