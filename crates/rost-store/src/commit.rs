//! Committing a directory tree: scan, hash and store in parallel, then build
//! dirtrees bottom-up and write the commit object.
//!
//! Parallelism never changes bytes: every file gets its checksum independently,
//! and dirtree entries are sorted by name before serialization.

use std::collections::HashMap;
use std::ffi::OsStr;
use std::fs::File;
use std::os::fd::{AsFd, BorrowedFd, OwnedFd};
use std::os::unix::ffi::OsStrExt;
use std::path::Path;
use std::sync::Mutex;

use rayon::prelude::*;
use rustix::fs::{AtFlags, FileType, Mode, OFlags, Stat};
use rustix::io::Errno;

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
    /// More refs for `ostree.ref-binding` (`--bind-ref`), besides the branch.
    pub bind_refs: Vec<String>,
    /// Clear the write bits of executable regular files (`--mode-ro-executables`).
    pub mode_ro_executables: bool,
    /// Permission changes by absolute path in the tree (`--statoverride`).
    pub mode_overrides: HashMap<String, ModeOverride>,
    /// Paths (absolute in the tree) left out with everything below them
    /// (`--skip-list`).
    pub skip: std::collections::HashSet<String>,
    /// When the tree equals the parent's, write no commit and move no ref:
    /// the result is the parent.
    pub skip_if_unchanged: bool,
}

/// `--mode-ro-executables`: an executable regular file loses its write bits.
pub fn ro_executable(mode: u32) -> u32 {
    if mode & S_IFMT == S_IFREG && mode & 0o111 != 0 {
        mode & !0o222
    } else {
        mode
    }
}

/// A `--statoverride` entry.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ModeOverride {
    /// Add these mode bits (`MODE PATH` or `+MODE PATH`, decimal).
    Add(u32),
    /// Set the permission bits to these (`=MODE PATH`, decimal).
    Set(u32),
}

/// The result of a commit.
#[derive(Debug, Clone, Copy)]
pub struct CommitResult {
    /// The new commit.
    pub commit: Checksum,
    /// What was written.
    pub stats: TransactionStats,
}

/// A stored directory entry.
enum Child {
    /// A content object.
    File(Checksum),
    /// A subdirectory: (dirtree, dirmeta).
    Dir(Checksum, Checksum),
}

/// What storing a directory entry gave.
enum Visit {
    /// The entry is stored.
    Done(Child),
    /// The entry is a directory, opened, with its status: walk it next.
    Dir(OwnedFd, Stat),
}

/// Directories deeper than this are walked by [`Walker::write_dir_deep`]:
/// parallel recursion puts a few KiB per level on a worker's (2 MiB) stack.
const MAX_PARALLEL_DEPTH: usize = 64;

/// Walks a source tree and stores it: every directory lists its entries and
/// stores them in parallel (subdirectories recursively, so reading, hashing
/// and writing overlap across the whole tree), then writes its own dirtree
/// and dirmeta. Checksums depend only on the tree: entries are sorted by
/// name before the dirtree is serialized.
struct Walker<'a, 'r> {
    tx: &'a Transaction<'r>,
    opts: &'a CommitOptions,
    mode: RepoMode,
    root: &'a Path,
    /// Objects of inodes with several links, so hardlinks are stored once.
    links: Mutex<HashMap<(u64, u64), Checksum>>,
}

impl Walker<'_, '_> {
    fn canonical(&self) -> bool {
        self.opts.canonical_permissions || self.mode == RepoMode::BareUserOnly
    }

    /// The tree path of `rel`, as `--statoverride` and `--skip-list` name it.
    fn tree_path(rel: &Path) -> String {
        format!("/{}", rel.to_string_lossy())
    }

    fn fix_owner_mode(&self, rel: &Path, uid: u32, gid: u32, mode: u32) -> (u32, u32, u32) {
        let (uid, gid, mut mode) = self.owner_mode(uid, gid, mode);
        if self.opts.mode_ro_executables {
            mode = ro_executable(mode);
        }
        if self.opts.mode_overrides.is_empty() {
            return (uid, gid, mode);
        }
        let mode = match self.opts.mode_overrides.get(&Self::tree_path(rel)) {
            Some(ModeOverride::Add(bits)) => mode | bits,
            Some(ModeOverride::Set(bits)) => (mode & S_IFMT) | (bits & 0o7777),
            None => mode,
        };
        (uid, gid, mode)
    }

    fn owner_mode(&self, uid: u32, gid: u32, mode: u32) -> (u32, u32, u32) {
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

    fn wants_xattrs(&self) -> bool {
        !(self.opts.no_xattrs || self.mode == RepoMode::BareUserOnly)
    }

    /// Xattrs of an open file or directory.
    fn xattrs_fd(&self, fd: BorrowedFd<'_>, rel: &Path) -> Result<Xattrs> {
        if !self.wants_xattrs() {
            return Ok(Vec::new());
        }
        fsutil::read_xattrs_fd(fd).ctx("reading xattrs of", self.root.join(rel))
    }

    /// Reads a directory's dirmeta and its entries, sorted by name.
    fn open_dir(
        &self,
        dir: &OwnedFd,
        rel: &Path,
        st: &Stat,
    ) -> Result<(DirMeta, Vec<fsutil::Entry>)> {
        let (uid, gid, mode) = self.fix_owner_mode(rel, st.st_uid, st.st_gid, st.st_mode);
        let meta = DirMeta {
            uid,
            gid,
            mode,
            xattrs: self.xattrs_fd(dir.as_fd(), rel)?,
        };
        let mut entries = fsutil::list_dir(dir.as_fd()).ctx("listing", self.root.join(rel))?;
        if !self.opts.skip.is_empty() {
            entries.retain(|e| {
                !self
                    .opts
                    .skip
                    .contains(&Self::tree_path(&rel.join(&e.name)))
            });
        }
        entries.sort_by(|a, b| a.name.as_bytes().cmp(b.name.as_bytes()));
        Ok((meta, entries))
    }

    /// An entry's name as stored (UTF-8 only).
    fn entry_name(&self, e: &fsutil::Entry, crel: &Path) -> Result<String> {
        e.name
            .to_str()
            .map(str::to_owned)
            .ok_or_else(|| Error::Unsupported {
                path: self.root.join(crel),
                reason: crate::msg::invalid_utf8_filename(e.name.to_string_lossy()),
            })
    }

    /// Writes the dirtree of `children` (in any order) and `meta`.
    fn finish_dir(&self, children: Vec<(String, Child)>, meta: &DirMeta) -> Result<Child> {
        let mut tree = DirTree::default();
        for (name, child) in children {
            match child {
                Child::File(checksum) => tree.files.push(TreeFile { name, checksum }),
                Child::Dir(t, m) => tree.dirs.push(TreeDir {
                    name,
                    tree: t,
                    meta: m,
                }),
            }
        }
        let t = self
            .tx
            .write_metadata(ObjectType::DirTree, &tree.to_bytes())?;
        let m = self
            .tx
            .write_metadata(ObjectType::DirMeta, &meta.to_bytes())?;
        Ok(Child::Dir(t, m))
    }

    /// Stores the directory open as `dir` (status `st`, `depth` levels below
    /// the root), its entries in parallel.
    fn write_dir(&self, dir: &OwnedFd, rel: &Path, st: &Stat, depth: usize) -> Result<Child> {
        if depth >= MAX_PARALLEL_DEPTH {
            return self.write_dir_deep(dir, rel, st);
        }
        let (meta, entries) = self.open_dir(dir, rel, st)?;
        let children = entries
            .into_par_iter()
            .map(|e| {
                let crel = rel.join(&e.name);
                let name = self.entry_name(&e, &crel)?;
                let child = match self.write_entry(dir, &crel, &e)? {
                    Visit::Done(c) => c,
                    Visit::Dir(fd, st) => self.write_dir(&fd, &crel, &st, depth + 1)?,
                };
                Ok((name, child))
            })
            .collect::<Result<Vec<_>>>()?;
        self.finish_dir(children, &meta)
    }

    /// Like [`Self::write_dir`], sequentially and with a heap stack instead
    /// of recursion, so that however deep the tree, no thread stack overflows.
    fn write_dir_deep(&self, dir: &OwnedFd, rel: &Path, st: &Stat) -> Result<Child> {
        struct Frame {
            fd: Option<OwnedFd>,
            rel: std::path::PathBuf,
            name: String,
            meta: DirMeta,
            entries: std::vec::IntoIter<fsutil::Entry>,
            children: Vec<(String, Child)>,
        }
        let (meta, entries) = self.open_dir(dir, rel, st)?;
        let mut stack = vec![Frame {
            fd: None,
            rel: rel.to_owned(),
            name: String::new(),
            meta,
            entries: entries.into_iter(),
            children: Vec::new(),
        }];
        loop {
            let Some(top) = stack.last_mut() else {
                return Err(Error::Other("directory walk stack is empty".into()));
            };
            if let Some(e) = top.entries.next() {
                let crel = top.rel.join(&e.name);
                let name = self.entry_name(&e, &crel)?;
                let parent = top.fd.as_ref().unwrap_or(dir);
                match self.write_entry(parent, &crel, &e)? {
                    Visit::Done(c) => top.children.push((name, c)),
                    Visit::Dir(fd, st) => {
                        let (meta, entries) = self.open_dir(&fd, &crel, &st)?;
                        stack.push(Frame {
                            fd: Some(fd),
                            rel: crel,
                            name,
                            meta,
                            entries: entries.into_iter(),
                            children: Vec::new(),
                        });
                    }
                }
                continue;
            }
            let Some(done) = stack.pop() else {
                return Err(Error::Other("directory walk stack is empty".into()));
            };
            let child = self.finish_dir(done.children, &done.meta)?;
            match stack.last_mut() {
                Some(parent) => parent.children.push((done.name, child)),
                None => return Ok(child),
            }
        }
    }

    /// Stores one directory entry. Regular files and directories (by
    /// `d_type`) are opened first and examined through the fd, so what is
    /// read is what was examined; anything else is looked at with `lstat`.
    fn write_entry(&self, dir: &OwnedFd, rel: &Path, e: &fsutil::Entry) -> Result<Visit> {
        let name = e.name.as_os_str();
        let path = || self.root.join(rel);
        let extra = match e.file_type {
            FileType::Directory => Some(OFlags::DIRECTORY),
            FileType::RegularFile => Some(OFlags::empty()),
            _ => None,
        };
        if let Some(extra) = extra {
            // NONBLOCK: a FIFO swapped in since the listing must not hang us.
            let flags = OFlags::RDONLY | OFlags::CLOEXEC | OFlags::NOFOLLOW | OFlags::NONBLOCK;
            match rustix::fs::openat(dir, name, flags | extra, Mode::empty()) {
                Ok(fd) => return self.write_opened(fd, rel),
                // Replaced by a symlink (or a non-directory) meanwhile: look again.
                Err(Errno::LOOP | Errno::NOTDIR) => {}
                Err(err) => return Err(err).ctx("opening", path()),
            }
        }
        let st = rustix::fs::statat(dir, name, AtFlags::SYMLINK_NOFOLLOW).ctx("stat", path())?;
        match FileType::from_raw_mode(st.st_mode) {
            FileType::Symlink => Ok(Visit::Done(self.write_symlink(dir, rel, name, &st)?)),
            FileType::Directory | FileType::RegularFile => {
                let fd = rustix::fs::openat(
                    dir,
                    name,
                    OFlags::RDONLY | OFlags::CLOEXEC | OFlags::NOFOLLOW | OFlags::NONBLOCK,
                    Mode::empty(),
                )
                .ctx("opening", path())?;
                self.write_opened(fd, rel)
            }
            other => Err(self.unsupported(other, rel)),
        }
    }

    fn unsupported(&self, ft: FileType, rel: &Path) -> Error {
        let what = match ft {
            FileType::Socket => "a socket",
            FileType::Fifo => "a FIFO",
            FileType::CharacterDevice => "a character device",
            FileType::BlockDevice => "a block device",
            _ => "an unsupported file type",
        };
        Error::Unsupported {
            path: self.root.join(rel),
            reason: format!(
                "is {what}; only regular files, symlinks and directories can be committed"
            ),
        }
    }

    /// Stores an opened regular file, or hands back an opened directory.
    fn write_opened(&self, fd: OwnedFd, rel: &Path) -> Result<Visit> {
        let st = rustix::fs::fstat(&fd).ctx("stat", self.root.join(rel))?;
        match FileType::from_raw_mode(st.st_mode) {
            FileType::Directory => Ok(Visit::Dir(fd, st)),
            FileType::RegularFile => {
                let key = (st.st_dev, st.st_ino);
                if st.st_nlink > 1
                    && let Some(c) = self.lock_links()?.get(&key)
                {
                    return Ok(Visit::Done(Child::File(*c)));
                }
                let (uid, gid, mode) = self.fix_owner_mode(rel, st.st_uid, st.st_gid, st.st_mode);
                let header = FileHeader {
                    uid,
                    gid,
                    mode,
                    symlink_target: String::new(),
                    xattrs: self.xattrs_fd(fd.as_fd(), rel)?,
                };
                let size = st.st_size as u64;
                let csum = self
                    .tx
                    .write_content(&header, ContentSource::File(File::from(fd), size))
                    .map_err(|e| match e {
                        Error::Other(reason) => Error::Unsupported {
                            path: self.root.join(rel),
                            reason,
                        },
                        e => e,
                    })?;
                if st.st_nlink > 1 {
                    self.lock_links()?.insert(key, csum);
                }
                Ok(Visit::Done(Child::File(csum)))
            }
            other => Err(self.unsupported(other, rel)),
        }
    }

    fn lock_links(&self) -> Result<std::sync::MutexGuard<'_, HashMap<(u64, u64), Checksum>>> {
        self.links
            .lock()
            .map_err(|_| Error::Other("poisoned lock".into()))
    }

    fn write_symlink(&self, dir: &OwnedFd, rel: &Path, name: &OsStr, st: &Stat) -> Result<Child> {
        let (uid, gid, mode) = self.fix_owner_mode(rel, st.st_uid, st.st_gid, st.st_mode);
        let t =
            rustix::fs::readlinkat(dir, name, Vec::new()).ctx("readlink", self.root.join(rel))?;
        let symlink_target = String::from_utf8(t.into_bytes()).map_err(|_| Error::Unsupported {
            path: self.root.join(rel),
            reason: "symlink target is not valid UTF-8".into(),
        })?;
        let xattrs = if self.wants_xattrs() {
            fsutil::read_xattrs_path(&fsutil::proc_path(dir.as_fd(), name))
                .ctx("reading xattrs of", self.root.join(rel))?
        } else {
            Vec::new()
        };
        let header = FileHeader {
            uid,
            gid,
            mode,
            symlink_target,
            xattrs,
        };
        Ok(Child::File(
            self.tx.write_content(&header, ContentSource::Bytes(&[]))?,
        ))
    }
}

/// Stages the content of `src` into `tx`; returns (root dirtree, root dirmeta).
pub fn write_directory(
    tx: &Transaction<'_>,
    src: &Path,
    opts: &CommitOptions,
) -> Result<(Checksum, Checksum)> {
    let root_fd = fsutil::open_dir_at(rustix::fs::CWD, src).ctx("opening", src)?;
    let st = rustix::fs::fstat(&root_fd).ctx("stat", src)?;
    let walker = Walker {
        tx,
        opts,
        mode: tx.repo().mode(),
        root: src,
        links: Mutex::new(HashMap::new()),
    };
    match walker.write_dir(&root_fd, Path::new(""), &st, 0)? {
        Child::Dir(t, m) => Ok((t, m)),
        Child::File(_) => Err(Error::Other("root is not a directory".into())),
    }
}

/// Builds the commit metadata a{sv}: user keys first, then ostree's bindings.
fn commit_metadata(repo: &Repo, opts: &CommitOptions) -> Value {
    let mut entries: Vec<(String, Value)> = opts.metadata.clone();
    let mut bound: Vec<String> = opts.branch.iter().chain(&opts.bind_refs).cloned().collect();
    // As libostree: the binding list is sorted.
    bound.sort();
    bound.dedup();
    if !bound.is_empty() && !opts.no_bindings {
        if let Some(cid) = repo.config().get("core", "collection-id") {
            entries.push(("ostree.collection-binding".into(), Value::str(cid)));
        }
        entries.push((
            "ostree.ref-binding".into(),
            Value::Array(Type::Str, bound.into_iter().map(Value::str).collect()),
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
    let tx = repo.begin()?;
    let (root_tree, root_meta) = write_directory(&tx, src, opts)?;
    finish_commit(repo, tx, branch, root_tree, root_meta, opts)
}

/// Writes the commit object for a staged root (and the branch), commits the
/// transaction, then stores detached metadata.
pub(crate) fn finish_commit(
    repo: &Repo,
    mut tx: Transaction<'_>,
    branch: Option<RefSpec>,
    root_tree: Checksum,
    root_meta: Checksum,
    opts: &CommitOptions,
) -> Result<CommitResult> {
    let parent = match (&opts.parent, &branch, opts.orphan) {
        (_, _, true) => None,
        (Some(p), _, _) => Some(*p),
        (None, Some(b), _) => repo.read_ref(b)?,
        (None, None, _) => None,
    };
    if let (true, Some(p)) = (opts.skip_if_unchanged, parent) {
        let pc = repo.load_commit(&p)?;
        if (pc.root_tree, pc.root_meta) == (root_tree, root_meta) {
            let stats = tx.commit()?;
            return Ok(CommitResult { commit: p, stats });
        }
    }
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

#[cfg(test)]
mod tests {
    use super::*;
    use crate::fsck::{FsckOptions, fsck};

    /// A tree deeper than [`MAX_PARALLEL_DEPTH`], with files, symlinks,
    /// hardlinks and empty directories along the way.
    fn make_tree(root: &Path, depth: usize) {
        let mut dir = root.to_owned();
        for i in 0..depth {
            std::fs::write(dir.join(format!("f{i}")), format!("{i}\n")).unwrap();
            std::fs::write(dir.join("same"), "same\n").unwrap();
            std::os::unix::fs::symlink(format!("f{i}"), dir.join("link")).unwrap();
            std::fs::create_dir(dir.join("empty")).unwrap();
            if i % 7 == 0 {
                std::fs::hard_link(dir.join(format!("f{i}")), dir.join("hard")).unwrap();
            }
            dir.push("d");
            std::fs::create_dir(&dir).unwrap();
        }
    }

    fn commit_with_threads(src: &Path, repo: &Path, mode: RepoMode, threads: usize) -> Checksum {
        let repo = Repo::init(repo, mode).unwrap();
        let opts = CommitOptions {
            branch: Some("b".into()),
            timestamp: Some(1_577_836_800),
            ..Default::default()
        };
        let pool = rayon::ThreadPoolBuilder::new()
            .num_threads(threads)
            .build()
            .unwrap();
        let res = pool
            .install(|| commit_directory(&repo, src, &opts))
            .unwrap();
        let report = fsck(&repo, FsckOptions::default()).unwrap();
        assert!(report.problems.is_empty(), "{:?}", report.problems);
        res.commit
    }

    #[test]
    fn thread_count_and_depth_do_not_change_bytes() {
        let t = tempfile::tempdir().unwrap();
        let src = t.path().join("src");
        std::fs::create_dir(&src).unwrap();
        make_tree(&src, MAX_PARALLEL_DEPTH * 2 + 5);
        for mode in [RepoMode::Archive, RepoMode::BareUser] {
            let one = commit_with_threads(&src, &t.path().join(format!("{mode:?}-1")), mode, 1);
            let two = commit_with_threads(&src, &t.path().join(format!("{mode:?}-2")), mode, 2);
            assert_eq!(one, two, "{mode:?}");
        }
    }

    #[test]
    fn iterative_walk_matches_parallel_walk() {
        let t = tempfile::tempdir().unwrap();
        let src = t.path().join("src");
        std::fs::create_dir(&src).unwrap();
        make_tree(&src, 12);
        let repo = Repo::init(&t.path().join("repo"), RepoMode::BareUser).unwrap();
        let tx = repo.begin().unwrap();
        let opts = CommitOptions::default();
        let walker = Walker {
            tx: &tx,
            opts: &opts,
            mode: repo.mode(),
            root: &src,
            links: Mutex::new(HashMap::new()),
        };
        let fd = fsutil::open_dir_at(rustix::fs::CWD, &src).unwrap();
        let st = rustix::fs::fstat(&fd).unwrap();
        let parallel = walker.write_dir(&fd, Path::new(""), &st, 0).unwrap();
        let deep = walker.write_dir_deep(&fd, Path::new(""), &st).unwrap();
        let (Child::Dir(pt, pm), Child::Dir(dt, dm)) = (parallel, deep) else {
            panic!("root is not a directory");
        };
        assert_eq!((pt, pm), (dt, dm));
    }

    #[test]
    fn second_commit_publishes_into_existing_object_dirs() {
        let t = tempfile::tempdir().unwrap();
        let src = t.path().join("src");
        std::fs::create_dir(&src).unwrap();
        make_tree(&src, 3);
        let repo = Repo::init(&t.path().join("repo"), RepoMode::Archive).unwrap();
        let opts = CommitOptions {
            branch: Some("b".into()),
            ..Default::default()
        };
        let first = commit_directory(&repo, &src, &opts).unwrap();
        for i in 0..300 {
            std::fs::write(src.join(format!("new{i}")), format!("new {i}\n")).unwrap();
        }
        let second = commit_directory(&repo, &src, &opts).unwrap();
        assert_eq!(second.stats.content_written, 300);
        assert_eq!(
            repo.load_commit(&second.commit).unwrap().parent,
            Some(first.commit)
        );
        let report = fsck(&repo, FsckOptions::default()).unwrap();
        assert!(report.problems.is_empty(), "{:?}", report.problems);
    }
}
