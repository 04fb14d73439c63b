//! Committing a directory tree: scan, hash and store in parallel, then build
//! dirtrees bottom-up and write the commit object.
//!
//! Parallelism never changes bytes: every file gets its checksum independently,
//! and dirtree entries are sorted by name before serialization.

use std::collections::HashMap;
use std::ffi::OsStr;
use std::fs::File;
use std::os::fd::{AsFd, OwnedFd};
use std::os::unix::ffi::OsStrExt;
use std::path::{Path, PathBuf};
use std::sync::Arc;

use rayon::prelude::*;
use rustix::fs::{AtFlags, FileType, Mode, OFlags};

use crate::error::IoContext;
use crate::fsutil;
use crate::gvariant::{Type, Value};
use crate::objects::{
    Commit, DirMeta, DirTree, FileHeader, S_IFDIR, S_IFMT, S_IFREG, TreeDir, TreeFile, Xattrs,
};
use crate::refs::RefSpec;
use crate::repo::RepoMode;
use crate::transaction::{ContentSource, Transaction, TransactionStats};
use crate::{Checksum, Error, ObjectType, Repo, Result};

/// What to commit and how.
#[derive(Debug, Clone, Default)]
pub struct CommitOptions {
    /// Branch to update (and bind the commit to).
    pub branch: Option<String>,
    /// Subject line.
    pub subject: String,
    /// Body text.
    pub body: String,
    /// Extra metadata, in order (stored before ostree's own keys).
    pub metadata: Vec<(String, Value)>,
    /// Detached metadata to store beside the commit.
    pub detached_metadata: Vec<(String, Value)>,
    /// Commit time (seconds since epoch); default now.
    pub timestamp: Option<u64>,
    /// Force every uid.
    pub owner_uid: Option<u32>,
    /// Force every gid.
    pub owner_gid: Option<u32>,
    /// uid = gid = 0 and modes masked to 0755-style.
    pub canonical_permissions: bool,
    /// Parent commit; default: the branch's current commit.
    pub parent: Option<Checksum>,
    /// Create a commit with no parent even if the branch exists.
    pub orphan: bool,
    /// Do not add `ostree.ref-binding`.
    pub no_bindings: bool,
    /// Skip xattrs of the source tree.
    pub no_xattrs: bool,
}

/// The result of a commit.
#[derive(Debug, Clone, Copy)]
pub struct CommitResult {
    /// The new commit.
    pub commit: Checksum,
    /// What was written.
    pub stats: TransactionStats,
}

struct FileEntry {
    dir: Arc<OwnedFd>,
    name: String,
    rel: PathBuf,
    header: FileHeader,
    size: u64,
    devino: (u64, u64),
}

enum Node {
    File(usize),
    Dir(Box<DirNode>),
}

struct DirNode {
    meta: DirMeta,
    children: Vec<(String, Node)>,
}

struct Scanner<'a> {
    opts: &'a CommitOptions,
    mode: RepoMode,
    files: Vec<FileEntry>,
    root: PathBuf,
}

impl Scanner<'_> {
    fn canonical(&self) -> bool {
        self.opts.canonical_permissions || self.mode == RepoMode::BareUserOnly
    }

    fn fix_owner_mode(&self, uid: u32, gid: u32, mode: u32) -> (u32, u32, u32) {
        if self.canonical() {
            let m = if mode & S_IFMT == S_IFREG || mode & S_IFMT == S_IFDIR {
                mode & (S_IFMT | 0o755)
            } else {
                mode
            };
            return (0, 0, m);
        }
        (
            self.opts.owner_uid.unwrap_or(uid),
            self.opts.owner_gid.unwrap_or(gid),
            mode,
        )
    }

    fn xattrs(&self, dir: &OwnedFd, name: &OsStr, rel: &Path) -> Result<Xattrs> {
        if self.opts.no_xattrs || self.mode == RepoMode::BareUserOnly {
            return Ok(Vec::new());
        }
        fsutil::read_xattrs_path(&fsutil::proc_path(dir.as_fd(), name))
            .ctx("reading xattrs of", self.root.join(rel))
    }

    fn scan_dir(&mut self, dir: Arc<OwnedFd>, rel: &Path, meta: DirMeta) -> Result<DirNode> {
        let mut entries = fsutil::list_dir(dir.as_fd()).ctx("listing", self.root.join(rel))?;
        entries.sort_by(|a, b| a.name.as_bytes().cmp(b.name.as_bytes()));
        let mut children = Vec::with_capacity(entries.len());
        for e in entries {
            let crel = rel.join(&e.name);
            let name = e
                .name
                .to_str()
                .ok_or_else(|| Error::Unsupported {
                    path: self.root.join(&crel),
                    reason: "file name is not valid UTF-8".into(),
                })?
                .to_owned();
            let st = rustix::fs::statat(&*dir, &e.name, AtFlags::SYMLINK_NOFOLLOW)
                .ctx("stat", self.root.join(&crel))?;
            let ft = FileType::from_raw_mode(st.st_mode);
            match ft {
                FileType::Directory => {
                    let sub = fsutil::open_dir_at(dir.as_fd(), Path::new(&e.name))
                        .ctx("opening", self.root.join(&crel))?;
                    let sub = Arc::new(sub);
                    let (uid, gid, mode) = self.fix_owner_mode(st.st_uid, st.st_gid, st.st_mode);
                    let xattrs = self.xattrs(&sub, OsStr::new("."), &crel)?;
                    let node = self.scan_dir(
                        sub,
                        &crel,
                        DirMeta {
                            uid,
                            gid,
                            mode,
                            xattrs,
                        },
                    )?;
                    children.push((name, Node::Dir(Box::new(node))));
                }
                FileType::RegularFile | FileType::Symlink => {
                    let (uid, gid, mode) = self.fix_owner_mode(st.st_uid, st.st_gid, st.st_mode);
                    let symlink_target = if ft == FileType::Symlink {
                        let t = rustix::fs::readlinkat(&*dir, &e.name, Vec::new())
                            .ctx("readlink", self.root.join(&crel))?;
                        String::from_utf8(t.into_bytes()).map_err(|_| Error::Unsupported {
                            path: self.root.join(&crel),
                            reason: "symlink target is not valid UTF-8".into(),
                        })?
                    } else {
                        String::new()
                    };
                    let xattrs = self.xattrs(&dir, &e.name, &crel)?;
                    self.files.push(FileEntry {
                        dir: dir.clone(),
                        name: name.clone(),
                        rel: crel,
                        header: FileHeader {
                            uid,
                            gid,
                            mode,
                            symlink_target,
                            xattrs,
                        },
                        size: if ft == FileType::Symlink {
                            0
                        } else {
                            st.st_size as u64
                        },
                        devino: (st.st_dev, st.st_ino),
                    });
                    children.push((name, Node::File(self.files.len() - 1)));
                }
                other => {
                    let what = match other {
                        FileType::Socket => "a socket",
                        FileType::Fifo => "a FIFO",
                        FileType::CharacterDevice => "a character device",
                        FileType::BlockDevice => "a block device",
                        _ => "an unsupported file type",
                    };
                    return Err(Error::Unsupported {
                        path: self.root.join(&crel),
                        reason: format!(
                            "is {what}; only regular files, symlinks and directories can be committed"
                        ),
                    });
                }
            }
        }
        Ok(DirNode { meta, children })
    }
}

fn write_file_entry(tx: &Transaction<'_>, f: &FileEntry, root: &Path) -> Result<Checksum> {
    if f.header.is_symlink() {
        return tx.write_content(&f.header, ContentSource::Bytes(&[]));
    }
    let fd = rustix::fs::openat(
        &*f.dir,
        f.name.as_str(),
        OFlags::RDONLY | OFlags::CLOEXEC | OFlags::NOFOLLOW,
        Mode::empty(),
    )
    .ctx("opening", root.join(&f.rel))?;
    tx.write_content(&f.header, ContentSource::File(File::from(fd), f.size))
        .map_err(|e| match e {
            Error::Other(reason) => Error::Unsupported {
                path: root.join(&f.rel),
                reason,
            },
            e => e,
        })
}

fn write_dir(
    tx: &Transaction<'_>,
    node: &DirNode,
    sums: &[Checksum],
) -> Result<(Checksum, Checksum)> {
    let mut tree = DirTree::default();
    for (name, child) in &node.children {
        match child {
            Node::File(i) => tree.files.push(TreeFile {
                name: name.clone(),
                checksum: sums[*i],
            }),
            Node::Dir(d) => {
                let (t, m) = write_dir(tx, d, sums)?;
                tree.dirs.push(TreeDir {
                    name: name.clone(),
                    tree: t,
                    meta: m,
                });
            }
        }
    }
    let t = tx.write_metadata(ObjectType::DirTree, &tree.to_bytes())?;
    let m = tx.write_metadata(ObjectType::DirMeta, &node.meta.to_bytes())?;
    Ok((t, m))
}

/// Stages the content of `src` into `tx`; returns (root dirtree, root dirmeta).
pub fn write_directory(
    tx: &Transaction<'_>,
    src: &Path,
    opts: &CommitOptions,
) -> Result<(Checksum, Checksum)> {
    let root_fd = fsutil::open_dir_at(rustix::fs::CWD, src).ctx("opening", src)?;
    let st = rustix::fs::fstat(&root_fd).ctx("stat", src)?;
    let mut scanner = Scanner {
        opts,
        mode: tx.repo().mode(),
        files: Vec::new(),
        root: src.to_owned(),
    };
    let (uid, gid, mode) = scanner.fix_owner_mode(st.st_uid, st.st_gid, st.st_mode);
    let root_fd = Arc::new(root_fd);
    let xattrs = scanner.xattrs(&root_fd, OsStr::new("."), Path::new(""))?;
    let tree = scanner.scan_dir(
        root_fd,
        Path::new(""),
        DirMeta {
            uid,
            gid,
            mode,
            xattrs,
        },
    )?;
    let files = scanner.files;

    // Hardlinked sources share one object: hash only the first of each inode.
    let mut first_of: HashMap<((u64, u64), &FileHeader), usize> = HashMap::new();
    let leaders: Vec<usize> = (0..files.len())
        .filter(|&i| {
            *first_of
                .entry((files[i].devino, &files[i].header))
                .or_insert(i)
                == i
        })
        .collect();
    let leader_sums: Vec<(usize, Checksum)> = leaders
        .par_iter()
        .map(|&i| write_file_entry(tx, &files[i], src).map(|c| (i, c)))
        .collect::<Result<_>>()?;
    let by_leader: HashMap<usize, Checksum> = leader_sums.into_iter().collect();
    let sums: Vec<Checksum> = files
        .iter()
        .map(|f| by_leader[&first_of[&(f.devino, &f.header)]])
        .collect();
    write_dir(tx, &tree, &sums)
}

/// Builds the commit metadata a{sv}: user keys first, then ostree's bindings.
fn commit_metadata(repo: &Repo, opts: &CommitOptions) -> Value {
    let mut entries: Vec<(String, Value)> = opts.metadata.clone();
    if let (Some(branch), false) = (&opts.branch, opts.no_bindings) {
        if let Some(cid) = repo.config().get("core", "collection-id") {
            entries.push(("ostree.collection-binding".into(), Value::str(cid)));
        }
        entries.push((
            "ostree.ref-binding".into(),
            Value::Array(Type::Str, vec![Value::str(branch.clone())]),
        ));
    }
    Value::dict_sv(entries)
}

/// Commits the directory `src` into `repo`; updates the branch if given.
pub fn commit_directory(repo: &Repo, src: &Path, opts: &CommitOptions) -> Result<CommitResult> {
    let branch = match &opts.branch {
        Some(b) => Some(RefSpec::parse(b)?),
        None => None,
    };
    let mut tx = repo.begin()?;
    let (root_tree, root_meta) = write_directory(&tx, src, opts)?;
    let parent = match (&opts.parent, &branch, opts.orphan) {
        (_, _, true) => None,
        (Some(p), _, _) => Some(*p),
        (None, Some(b), _) => repo.read_ref(b)?,
        (None, None, _) => None,
    };
    let commit = Commit {
        metadata: commit_metadata(repo, opts),
        parent,
        subject: opts.subject.clone(),
        body: opts.body.clone(),
        timestamp: opts
            .timestamp
            .unwrap_or_else(|| chrono::Utc::now().timestamp().max(0) as u64),
        root_tree,
        root_meta,
    };
    let csum = tx.write_metadata(ObjectType::Commit, &commit.to_bytes())?;
    if let Some(b) = branch {
        tx.set_ref(b, Some(csum));
    }
    let stats = tx.commit()?;
    if !opts.detached_metadata.is_empty() {
        repo.write_detached_metadata(&csum, Some(&Value::dict_sv(opts.detached_metadata.clone())))?;
    }
    Ok(CommitResult {
        commit: csum,
        stats,
    })
}
