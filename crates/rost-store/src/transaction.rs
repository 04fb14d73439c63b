//! Write transactions: stage objects, make them durable, publish, then move refs.
//!
//! ```text
//! tmp/staging-<bootid>-<rand>/      flock'ed while the transaction lives
//!     tmp-<rand>                    an object being written (name unknown yet)
//!     XX/REST.EXT                   a complete object, not yet visible
//! ```
//! `commit()` does: `syncfs` (every staged byte durable) → `renameat(NOREPLACE)`
//! each staged object into `objects/XX/` → `syncfs` (the renames durable) → write
//! refs (temp + fsync + rename + dir fsync). A crash at any point leaves only
//! unreferenced files: a ref never names an object that is not on disk. Staging
//! directories of dead transactions are found by their free lock and removed by
//! the next transaction.

use std::collections::HashSet;
use std::fs::File;
use std::io::{Read, Write};
use std::os::fd::{AsFd, BorrowedFd, OwnedFd};
use std::path::{Path, PathBuf};
use std::sync::Mutex;
use std::sync::atomic::{AtomicBool, AtomicU8, Ordering};

use rustix::fs::{AtFlags, FlockOperation, Mode, OFlags, RenameFlags};
use rustix::io::Errno;
use sha2::Digest;

use crate::error::IoContext;
use crate::fsutil;
use crate::objects::{self, FileHeader, S_IFREG};
use crate::refs::RefSpec;
use crate::repo::{OSTREEMETA_XATTR, RepoLock, RepoMode};
use crate::{Checksum, Error, ObjectType, Repo, Result};

/// Files up to this size are read whole and hashed before writing, so objects
/// that already exist are never rewritten.
const IN_MEMORY_LIMIT: u64 = 4 * 1024 * 1024;

/// `objects/XX` not looked at yet.
const OBJDIR_UNKNOWN: u8 = 0;
/// `objects/XX` existed.
const OBJDIR_PRESENT: u8 = 1;
/// `objects/XX` did not exist.
const OBJDIR_MISSING: u8 = 2;

/// Checks the `ROST_FAILPOINT` environment variable and aborts the process
/// (like a crash) when it names `point`. Used by crash-safety tests.
pub fn failpoint(point: &str) {
    if std::env::var("ROST_FAILPOINT").is_ok_and(|v| v == point) {
        std::process::abort();
    }
}

/// Counters of what a transaction wrote.
#[derive(Debug, Default, Clone, Copy)]
pub struct TransactionStats {
    /// Metadata objects newly written.
    pub metadata_written: u64,
    /// Content objects newly written.
    pub content_written: u64,
    /// Content bytes newly written (uncompressed).
    pub content_bytes_written: u64,
}

/// An open write transaction on a repo.
#[derive(Debug)]
pub struct Transaction<'r> {
    repo: &'r Repo,
    staging: OwnedFd,
    staging_path: PathBuf,
    staged: Mutex<Vec<(Checksum, ObjectType)>>,
    /// Which `XX/` subdirectories of the staging directory exist, by first byte.
    staged_dirs: [AtomicBool; 256],
    /// Per first byte: whether `objects/XX` existed when first looked at
    /// ([`OBJDIR_UNKNOWN`], [`OBJDIR_PRESENT`], [`OBJDIR_MISSING`]).
    objdirs: [AtomicU8; 256],
    seen: Mutex<HashSet<(Checksum, ObjectType)>>,
    stats: Mutex<TransactionStats>,
    refs: Vec<(RefSpec, Option<Checksum>)>,
    _lock: RepoLock,
    done: bool,
}

/// Where the bytes of a content object come from.
#[derive(Debug)]
pub enum ContentSource<'a> {
    /// Bytes in memory (symlinks pass empty bytes).
    Bytes(&'a [u8]),
    /// An open file of a known size.
    File(File, u64),
}

impl Repo {
    /// Starts a write transaction (takes the shared repo lock).
    pub fn begin(&self) -> Result<Transaction<'_>> {
        let lock = self.lock(false)?;
        self.cleanup_stale_staging()?;
        let name = Repo::new_staging_name();
        let rel = Path::new("tmp").join(&name);
        // Made under a hidden name and locked before it is renamed to its
        // `staging-` name: a concurrent begin()'s cleanup must never see a live
        // staging dir unlocked.
        let hidden = Path::new("tmp").join(format!(".{name}"));
        rustix::fs::mkdirat(self.dfd(), &hidden, Mode::from_raw_mode(0o755))
            .ctx("creating", &hidden)?;
        let staging = fsutil::open_dir_at(self.dfd(), &hidden).ctx("opening", &hidden)?;
        rustix::fs::flock(&staging, FlockOperation::NonBlockingLockExclusive)
            .ctx("locking", &hidden)?;
        rustix::fs::renameat(self.dfd(), &hidden, self.dfd(), &rel).ctx("renaming", &rel)?;
        Ok(Transaction {
            repo: self,
            staging,
            staging_path: rel,
            staged: Mutex::new(Vec::new()),
            staged_dirs: std::array::from_fn(|_| AtomicBool::new(false)),
            objdirs: std::array::from_fn(|_| AtomicU8::new(OBJDIR_UNKNOWN)),
            seen: Mutex::new(HashSet::new()),
            stats: Mutex::new(TransactionStats::default()),
            refs: Vec::new(),
            _lock: lock,
            done: false,
        })
    }

    /// Removes staging directories whose transaction died (their lock is free).
    fn cleanup_stale_staging(&self) -> Result<()> {
        let tmp = fsutil::open_dir_at(self.dfd(), Path::new("tmp")).ctx("opening", "tmp")?;
        for e in fsutil::list_dir(tmp.as_fd()).ctx("listing", "tmp")? {
            let Some(n) = e.name.to_str() else { continue };
            if !n.starts_with("staging-") {
                continue;
            }
            let Ok(fd) = fsutil::open_dir_at(tmp.as_fd(), Path::new(n)) else {
                continue;
            };
            if rustix::fs::flock(&fd, FlockOperation::NonBlockingLockExclusive).is_ok() {
                tracing::debug!(dir = n, "removing stale staging directory");
                fsutil::remove_all_at(tmp.as_fd(), Path::new(n))
                    .ctx("removing", Path::new("tmp").join(n))?;
            }
        }
        Ok(())
    }
}

impl<'r> Transaction<'r> {
    /// The repository being written.
    pub fn repo(&self) -> &'r Repo {
        self.repo
    }

    fn staged_rel(&self, ty: ObjectType, csum: &Checksum) -> PathBuf {
        let hex = csum.to_hex();
        let ext = if ty == ObjectType::File {
            self.repo.mode().content_extension()
        } else {
            ty.extension()
        };
        PathBuf::from(format!("{}/{}.{ext}", &hex[..2], &hex[2..]))
    }

    /// Whether `objects/XX` for `csum` may hold objects. Into a fresh repo
    /// this spares one failing `stat` per object. A directory that appears
    /// after we looked (another writer) only means an object is written
    /// twice: `commit()` publishes with `RENAME_NOREPLACE` and takes `EEXIST`
    /// as "already stored".
    fn objdir_may_exist(&self, csum: &Checksum) -> Result<bool> {
        let state = &self.objdirs[usize::from(csum.0[0])];
        match state.load(Ordering::Relaxed) {
            OBJDIR_PRESENT => return Ok(true),
            OBJDIR_MISSING => return Ok(false),
            _ => {}
        }
        let dir = format!("objects/{:02x}", csum.0[0]);
        let present = match rustix::fs::statat(self.repo.dfd(), &dir, AtFlags::SYMLINK_NOFOLLOW) {
            Ok(_) => true,
            Err(Errno::NOENT) => false,
            Err(e) => return Err(e).ctx("stat", dir),
        };
        let new = if present {
            OBJDIR_PRESENT
        } else {
            OBJDIR_MISSING
        };
        state.store(new, Ordering::Relaxed);
        Ok(present)
    }

    /// Claims an object for writing: false if it exists or is being written.
    fn claim(&self, ty: ObjectType, csum: &Checksum) -> Result<bool> {
        {
            let seen = self
                .seen
                .lock()
                .map_err(|_| Error::Other("poisoned lock".into()))?;
            if seen.contains(&(*csum, ty)) {
                return Ok(false);
            }
        }
        if self.objdir_may_exist(csum)? && self.repo.has_object(ty, csum)? {
            return Ok(false);
        }
        let mut seen = self
            .seen
            .lock()
            .map_err(|_| Error::Other("poisoned lock".into()))?;
        Ok(seen.insert((*csum, ty)))
    }

    /// Creates the staging subdirectory `XX/` for `csum` unless already done.
    fn ensure_staged_dir(&self, csum: &Checksum) -> Result<()> {
        let flag = &self.staged_dirs[usize::from(csum.0[0])];
        if flag.load(Ordering::Acquire) {
            return Ok(());
        }
        let dir = format!("{:02x}", csum.0[0]);
        fsutil::ensure_dir_at(self.staging.as_fd(), Path::new(&dir), 0o755)
            .ctx("creating", self.staging_path.join(&dir))?;
        flag.store(true, Ordering::Release);
        Ok(())
    }

    /// Records a complete object in the staging directory for `commit()`.
    fn record_staged(&self, ty: ObjectType, csum: &Checksum) -> Result<()> {
        self.staged
            .lock()
            .map_err(|_| Error::Other("poisoned lock".into()))?
            .push((*csum, ty));
        Ok(())
    }

    /// Moves a finished temp file to its staged name.
    fn stage(&self, tmp: &Path, ty: ObjectType, csum: &Checksum) -> Result<()> {
        let rel = self.staged_rel(ty, csum);
        self.ensure_staged_dir(csum)?;
        rustix::fs::renameat(&self.staging, tmp, &self.staging, &rel)
            .ctx("staging", self.staging_path.join(&rel))?;
        self.record_staged(ty, csum)
    }

    /// Creates `name` (relative to the staging directory), failing if it exists.
    fn create_at(&self, name: &Path, mode: u32) -> Result<File> {
        let fd = rustix::fs::openat(
            &self.staging,
            name,
            OFlags::WRONLY | OFlags::CREATE | OFlags::EXCL | OFlags::CLOEXEC | OFlags::NOFOLLOW,
            Mode::from_raw_mode(mode),
        )
        .ctx("creating", self.staging_path.join(name))?;
        Ok(File::from(fd))
    }

    fn tmp_name() -> PathBuf {
        PathBuf::from(format!("tmp-{}", fsutil::random_suffix()))
    }

    /// Writes a metadata object; returns its checksum.
    pub fn write_metadata(&self, ty: ObjectType, bytes: &[u8]) -> Result<Checksum> {
        let csum = Checksum::of(bytes);
        if !self.claim(ty, &csum)? {
            return Ok(csum);
        }
        // The checksum is known: write straight to the staged name. Staging
        // is private to this transaction and `claim` makes the writer unique.
        self.ensure_staged_dir(&csum)?;
        let rel = self.staged_rel(ty, &csum);
        let mut f = self.create_at(&rel, 0o644)?;
        if let Err(e) = f.write_all(bytes) {
            drop(f);
            let _ = rustix::fs::unlinkat(&self.staging, &rel, AtFlags::empty());
            return Err(e).ctx("writing", self.staging_path.join(&rel));
        }
        drop(f);
        self.record_staged(ty, &csum)?;
        self.stats
            .lock()
            .map_err(|_| Error::Other("poisoned lock".into()))?
            .metadata_written += 1;
        Ok(csum)
    }

    /// Writes a content object with the given metadata; returns its checksum.
    pub fn write_content(
        &self,
        header: &FileHeader,
        source: ContentSource<'_>,
    ) -> Result<Checksum> {
        match source {
            ContentSource::Bytes(b) => {
                let csum = header.checksum(b);
                if !self.claim(ObjectType::File, &csum)? {
                    return Ok(csum);
                }
                // Known checksum: write straight to the staged name.
                self.ensure_staged_dir(&csum)?;
                let rel = self.staged_rel(ObjectType::File, &csum);
                self.write_content_at(&rel, header, Payload::Bytes(b), false)?;
                self.record_staged(ObjectType::File, &csum)?;
                self.count_content(header, b.len() as u64)?;
                Ok(csum)
            }
            ContentSource::File(mut f, size) if size <= IN_MEMORY_LIMIT => {
                let buf = read_exactly(&mut f, size)?;
                self.write_content(header, ContentSource::Bytes(&buf))
            }
            ContentSource::File(mut f, size) => {
                // Too big to hold: stream into a temp file, hashing on the way,
                // and give it its name once the checksum is known.
                let tmp = Self::tmp_name();
                let csum = self
                    .write_content_at(&tmp, header, Payload::Stream(&mut f, size), true)?
                    .ok_or_else(|| Error::Other("streamed object has no checksum".into()))?;
                if !self.claim(ObjectType::File, &csum)? {
                    let _ = rustix::fs::unlinkat(&self.staging, &tmp, AtFlags::empty());
                    return Ok(csum);
                }
                self.stage(&tmp, ObjectType::File, &csum)?;
                self.count_content(header, size)?;
                Ok(csum)
            }
        }
    }

    /// Writes a content object whose checksum the caller already knows: the
    /// same bytes stored under this header before (ostree's devino cache
    /// idea: a hardlink to an object of another repo). The data is neither
    /// hashed nor read when the object is stored already. The caller vouches
    /// for `csum`; a wrong one makes a corrupt object.
    pub fn write_content_known(
        &self,
        header: &FileHeader,
        csum: &Checksum,
        source: ContentSource<'_>,
    ) -> Result<()> {
        if !self.claim(ObjectType::File, csum)? {
            return Ok(());
        }
        self.ensure_staged_dir(csum)?;
        let rel = self.staged_rel(ObjectType::File, csum);
        // Small files go through memory and large ones are streamed, as in
        // `write_content`, so the stored bytes are the same either way.
        let size = match source {
            ContentSource::Bytes(b) => {
                self.write_content_at(&rel, header, Payload::Bytes(b), false)?;
                b.len() as u64
            }
            ContentSource::File(mut f, size) if size <= IN_MEMORY_LIMIT => {
                let buf = read_exactly(&mut f, size)?;
                self.write_content_at(&rel, header, Payload::Bytes(&buf), false)?;
                size
            }
            ContentSource::File(mut f, size) => {
                self.write_content_at(&rel, header, Payload::Stream(&mut f, size), false)?;
                size
            }
        };
        self.record_staged(ObjectType::File, csum)?;
        self.count_content(header, size)
    }

    fn count_content(&self, header: &FileHeader, size: u64) -> Result<()> {
        let mut st = self
            .stats
            .lock()
            .map_err(|_| Error::Other("poisoned lock".into()))?;
        st.content_written += 1;
        st.content_bytes_written += if header.is_symlink() { 0 } else { size };
        Ok(())
    }

    /// Writes the object as `name` (relative to the staging directory, which
    /// must not exist yet) in the repo's storage format; removes it again on
    /// failure. With `hash`, a [`Payload::Stream`] is hashed on the way and
    /// its checksum returned; otherwise (and for a [`Payload::Bytes`], which
    /// the caller has hashed) `None`.
    fn write_content_at(
        &self,
        name: &Path,
        header: &FileHeader,
        payload: Payload<'_>,
        hash: bool,
    ) -> Result<Option<Checksum>> {
        let mode = self.repo.mode();
        let path = self.staging_path.join(name);
        let mut hasher = match payload {
            Payload::Stream(..) if hash => Some(header.hasher()),
            _ => None,
        };
        let res = if header.is_symlink() && matches!(mode, RepoMode::Bare | RepoMode::BareUserOnly)
        {
            rustix::fs::symlinkat(header.symlink_target.as_str(), &self.staging, name)
                .ctx("symlink", &path)?;
            self.finish_symlink_at(name, header, &path)
        } else {
            let f = self.create_at(name, 0o644)?;
            self.write_file_object(f, header, payload, hasher.as_mut(), &path)
        };
        match res {
            Ok(()) => Ok(hasher.map(|h| Checksum(h.finalize().into()))),
            Err(e) => {
                let _ = rustix::fs::unlinkat(&self.staging, name, AtFlags::empty());
                Err(e)
            }
        }
    }

    /// Sets owner, xattrs and times of a bare-mode symlink object.
    fn finish_symlink_at(&self, name: &Path, header: &FileHeader, path: &Path) -> Result<()> {
        if self.repo.mode() == RepoMode::Bare {
            rustix::fs::chownat(
                &self.staging,
                name,
                Some(rustix::fs::Uid::from_raw(header.uid)),
                Some(rustix::fs::Gid::from_raw(header.gid)),
                AtFlags::SYMLINK_NOFOLLOW,
            )
            .ctx("chown", path)?;
            fsutil::set_xattrs_path(
                &fsutil::proc_path(self.staging.as_fd(), name.as_os_str()),
                &header.xattrs,
            )
            .ctx("setting xattrs", path)?;
        }
        rustix::fs::utimensat(
            &self.staging,
            name,
            &fsutil::zero_times(),
            AtFlags::SYMLINK_NOFOLLOW,
        )
        .ctx("utimensat", path)?;
        Ok(())
    }

    /// Fills a freshly created object file `f` in the repo's storage format.
    fn write_file_object(
        &self,
        mut f: File,
        header: &FileHeader,
        payload: Payload<'_>,
        hasher: Option<&mut sha2::Sha256>,
        path: &Path,
    ) -> Result<()> {
        let mode = self.repo.mode();
        let size = if header.is_symlink() {
            0
        } else {
            payload.len()
        };
        match mode {
            RepoMode::Archive => {
                let hdr = header.to_archive_bytes(size);
                let mut out = Vec::with_capacity(8 + hdr.len() + deflate_estimate(size));
                out.extend_from_slice(&objects::length_prefix(hdr.len()));
                out.extend_from_slice(&hdr);
                if !header.is_symlink() {
                    deflate_to(&mut f, out, payload, hasher, path)?;
                } else {
                    f.write_all(&out).ctx("writing", path)?;
                }
            }
            RepoMode::BareUser => {
                if header.is_symlink() {
                    // libostree stores the target NUL-terminated.
                    let mut t = Vec::with_capacity(header.symlink_target.len() + 1);
                    t.extend_from_slice(header.symlink_target.as_bytes());
                    t.push(0);
                    f.write_all(&t).ctx("writing", path)?;
                } else {
                    pump(payload, hasher, path, &mut |b| {
                        f.write_all(b).ctx("writing", path)
                    })?;
                }
                fsutil::fset_xattrs(
                    f.as_fd(),
                    &vec![(
                        OSTREEMETA_XATTR.as_bytes().to_vec(),
                        objects::bare_user_meta(header),
                    )],
                )
                .ctx("setting user.ostreemeta on", path)?;
                let disk_mode = if header.is_symlink() {
                    0o644
                } else {
                    (header.mode & 0o775) | 0o400
                };
                rustix::fs::fchmod(&f, Mode::from_raw_mode(disk_mode)).ctx("chmod", path)?;
            }
            RepoMode::BareUserOnly | RepoMode::Bare => {
                pump(payload, hasher, path, &mut |b| {
                    f.write_all(b).ctx("writing", path)
                })?;
                if mode == RepoMode::Bare {
                    rustix::fs::fchown(
                        &f,
                        Some(rustix::fs::Uid::from_raw(header.uid)),
                        Some(rustix::fs::Gid::from_raw(header.gid)),
                    )
                    .ctx("chown", path)?;
                    fsutil::fset_xattrs(f.as_fd(), &header.xattrs).ctx("setting xattrs", path)?;
                }
                // chmod after chown: chown clears setuid bits.
                rustix::fs::fchmod(&f, Mode::from_raw_mode(header.mode & !S_IFREG & 0o7777))
                    .ctx("chmod", path)?;
            }
        }
        rustix::fs::futimens(&f, &fsutil::zero_times()).ctx("futimens", path)?;
        Ok(())
    }

    /// Queues a ref update, applied after the objects are durable.
    pub fn set_ref(&mut self, spec: RefSpec, target: Option<Checksum>) {
        self.refs.push((spec, target));
    }

    /// Makes every staged object durable and visible, then updates refs.
    pub fn commit(mut self) -> Result<TransactionStats> {
        failpoint("before-syncfs");
        rustix::fs::syncfs(&self.staging).ctx("syncfs", &self.staging_path)?;
        let staged = std::mem::take(
            &mut *self
                .staged
                .lock()
                .map_err(|_| Error::Other("poisoned lock".into()))?,
        );
        let objdir =
            fsutil::open_dir_at(self.repo.dfd(), Path::new("objects")).ctx("opening", "objects")?;
        let mut by_dir: Vec<Vec<(Checksum, ObjectType)>> = vec![Vec::new(); 256];
        for (csum, ty) in staged {
            by_dir[usize::from(csum.0[0])].push((csum, ty));
        }
        for (prefix, objs) in by_dir.iter().enumerate() {
            if objs.is_empty() {
                continue;
            }
            // `objects/XX` missing (a fresh repo): one rename publishes the
            // whole staged `XX/`, which holds exactly these objects.
            let dir = format!("{prefix:02x}");
            match rustix::fs::renameat_with(
                &self.staging,
                &dir,
                &objdir,
                &dir,
                RenameFlags::NOREPLACE,
            ) {
                Ok(()) => continue,
                Err(Errno::EXIST | Errno::NOTEMPTY) => {}
                Err(e) => return Err(e).ctx("publishing", Path::new("objects").join(&dir)),
            }
            fsutil::ensure_dir_at(objdir.as_fd(), Path::new(&dir), 0o755)
                .ctx("creating", Path::new("objects").join(&dir))?;
            for (csum, ty) in objs {
                let rel = self.staged_rel(*ty, csum);
                match rustix::fs::renameat_with(
                    &self.staging,
                    &rel,
                    &objdir,
                    &rel,
                    RenameFlags::NOREPLACE,
                ) {
                    Ok(()) | Err(Errno::EXIST) => {}
                    Err(e) => return Err(e).ctx("publishing", Path::new("objects").join(&rel)),
                }
            }
        }
        failpoint("after-publish");
        rustix::fs::syncfs(&objdir).ctx("syncfs", "objects")?;
        for (spec, target) in std::mem::take(&mut self.refs) {
            self.repo.write_ref(&spec, target.as_ref())?;
        }
        let stats = *self
            .stats
            .lock()
            .map_err(|_| Error::Other("poisoned lock".into()))?;
        self.cleanup();
        Ok(stats)
    }

    fn cleanup(&mut self) {
        if !self.done {
            self.done = true;
            let _ = fsutil::remove_all_at(self.repo.dfd(), &self.staging_path);
        }
    }

    /// Stages `src`'s stored object as a hardlink, as libostree imports
    /// between local repos: metadata always (its format does not depend on
    /// the mode), content objects between repos of one mode. `Ok(false)` when
    /// a link is impossible (other mode, other filesystem, link limit): the
    /// caller copies instead. Verifying the object is the caller's choice.
    pub fn link_object_from(&self, src: &Repo, ty: ObjectType, csum: &Checksum) -> Result<bool> {
        if ty == ObjectType::CommitMeta
            || (ty == ObjectType::File && src.mode() != self.repo.mode())
        {
            return Ok(false);
        }
        if !self.claim(ty, csum)? {
            return Ok(true);
        }
        self.ensure_staged_dir(csum)?;
        let rel = self.staged_rel(ty, csum);
        let from = src.object_path(ty, csum);
        match rustix::fs::linkat(src.dfd(), &from, &self.staging, &rel, AtFlags::empty()) {
            Ok(()) => {
                self.record_staged(ty, csum)?;
                Ok(true)
            }
            Err(Errno::XDEV | Errno::MLINK | Errno::PERM) => {
                self.seen
                    .lock()
                    .map_err(|_| Error::Other("poisoned lock".into()))?
                    .remove(&(*csum, ty));
                Ok(false)
            }
            Err(e) => Err(e).ctx("hardlinking", src.path().join(&from)),
        }
    }

    /// A metadata object's bytes: staged in this transaction, else stored.
    pub fn load_metadata_raw(&self, ty: ObjectType, csum: &Checksum) -> Result<Vec<u8>> {
        match fsutil::read_file_optional_at(self.staging.as_fd(), &self.staged_rel(ty, csum))? {
            Some(b) => Ok(b),
            None => self.repo.load_metadata_raw(ty, csum),
        }
    }

    /// The staging directory fd (for callers that stage files themselves).
    pub fn staging_dir(&self) -> BorrowedFd<'_> {
        self.staging.as_fd()
    }
}

impl Drop for Transaction<'_> {
    fn drop(&mut self) {
        self.cleanup();
    }
}

/// The content of an object being written.
enum Payload<'a> {
    /// All of it, already hashed by the caller.
    Bytes(&'a [u8]),
    /// A reader that must yield exactly this many bytes.
    Stream(&'a mut dyn Read, u64),
}

impl Payload<'_> {
    fn len(&self) -> u64 {
        match self {
            Payload::Bytes(b) => b.len() as u64,
            Payload::Stream(_, n) => *n,
        }
    }
}

/// Reads exactly `size` bytes of `f` (a file that must not change meanwhile).
fn read_exactly(f: &mut File, size: u64) -> Result<Vec<u8>> {
    let mut buf = Vec::with_capacity(size as usize);
    f.take(size + 1)
        .read_to_end(&mut buf)
        .ctx("reading", "source file")?;
    if buf.len() as u64 != size {
        return Err(Error::Other(format!(
            "file changed size while being read ({size} → {})",
            buf.len()
        )));
    }
    Ok(buf)
}

/// Read size for streamed payloads.
const CHUNK: usize = 128 * 1024;

/// Feeds the payload to `sink` in order, hashing streamed chunks into
/// `hasher`; fails if a stream yields more or fewer bytes than announced.
fn pump(
    payload: Payload<'_>,
    mut hasher: Option<&mut sha2::Sha256>,
    what: &Path,
    sink: &mut dyn FnMut(&[u8]) -> Result<()>,
) -> Result<()> {
    let (src, size) = match payload {
        Payload::Bytes(b) => return sink(b),
        Payload::Stream(src, size) => (src, size),
    };
    let mut buf = vec![0u8; CHUNK];
    let mut total = 0u64;
    loop {
        let n = match src.read(&mut buf) {
            Ok(0) => break,
            Ok(n) => n,
            Err(e) if e.kind() == std::io::ErrorKind::Interrupted => continue,
            Err(e) => return Err(e).ctx("reading source for", what),
        };
        total += n as u64;
        if total > size {
            break;
        }
        if let Some(h) = hasher.as_deref_mut() {
            h.update(&buf[..n]);
        }
        sink(&buf[..n])?;
    }
    if total != size {
        return Err(Error::Other(format!(
            "source changed size while being read ({size} → {total} bytes)"
        )));
    }
    Ok(())
}

/// libostree's compression level for archive-mode objects (zlib's default).
const ARCHIVE_COMPRESSION_LEVEL: u32 = 6;

/// Pending compressed output is written out once it grows past this.
const DEFLATE_FLUSH_AT: usize = 1024 * 1024;

/// A raw-deflate state and its output window.
struct Deflater {
    c: flate2::Compress,
    window: Vec<u8>,
}

thread_local! {
    /// One deflate state per thread, reset between objects: setting one up
    /// allocates and clears a few hundred KiB, too much per small file.
    static DEFLATE: std::cell::RefCell<Option<Deflater>> = const { std::cell::RefCell::new(None) };
}

/// A first guess at the compressed size of `size` bytes (the buffer grows if needed).
fn deflate_estimate(size: u64) -> usize {
    (size.min(DEFLATE_FLUSH_AT as u64) as usize) / 2 + 64
}

/// Output space offered to each deflate call. zlib's stored blocks (what
/// incompressible data becomes) are cut where the output buffer fills, so the
/// compressed bytes depend on it: fixed at the 32 KiB that earlier releases
/// (flate2's `DeflateEncoder`) used, as is the [`CHUNK`]-sized input feeding.
const DEFLATE_OUT_WINDOW: usize = 32 * 1024;

/// Writes `out` (what goes before the data), then the payload raw-deflated at
/// [`ARCHIVE_COMPRESSION_LEVEL`], to `f`.
fn deflate_to(
    f: &mut File,
    mut out: Vec<u8>,
    payload: Payload<'_>,
    hasher: Option<&mut sha2::Sha256>,
    what: &Path,
) -> Result<()> {
    let mut c = DEFLATE
        .with(|cell| cell.borrow_mut().take())
        .unwrap_or_else(|| Deflater {
            c: flate2::Compress::new(flate2::Compression::new(ARCHIVE_COMPRESSION_LEVEL), false),
            window: vec![0; DEFLATE_OUT_WINDOW],
        });
    let mut feed = |chunk: &[u8]| -> Result<()> {
        deflate_chunk(&mut c, chunk, &mut out, what)?;
        if out.len() >= DEFLATE_FLUSH_AT {
            f.write_all(&out).ctx("writing", what)?;
            out.clear();
        }
        Ok(())
    };
    match payload {
        Payload::Bytes(b) => b.chunks(CHUNK).try_for_each(&mut feed)?,
        p @ Payload::Stream(..) => pump(p, hasher, what, &mut feed)?,
    }
    deflate_finish(&mut c, &mut out, what)?;
    f.write_all(&out).ctx("writing", what)?;
    // Only a stream that ended cleanly is reused; an error drops the state.
    c.c.reset();
    DEFLATE.with(|cell| *cell.borrow_mut() = Some(c));
    Ok(())
}

/// One deflate call with [`DEFLATE_OUT_WINDOW`] bytes of output space,
/// appended to `out`. Returns (input consumed, output produced, status).
fn deflate_call(
    d: &mut Deflater,
    input: &[u8],
    out: &mut Vec<u8>,
    flush: flate2::FlushCompress,
    what: &Path,
) -> Result<(usize, usize, flate2::Status)> {
    let (in0, out0) = (d.c.total_in(), d.c.total_out());
    let status =
        d.c.compress(input, &mut d.window, flush)
            .map_err(std::io::Error::other)
            .ctx("compressing", what)?;
    let produced = (d.c.total_out() - out0) as usize;
    out.extend_from_slice(&d.window[..produced]);
    Ok(((d.c.total_in() - in0) as usize, produced, status))
}

/// Compresses all of `input` into `out` (no flush).
fn deflate_chunk(d: &mut Deflater, mut input: &[u8], out: &mut Vec<u8>, what: &Path) -> Result<()> {
    while !input.is_empty() {
        let (used, _, _) = deflate_call(d, input, out, flate2::FlushCompress::None, what)?;
        input = &input[used..];
    }
    Ok(())
}

/// Ends the stream: finishes until a call produces nothing more.
fn deflate_finish(d: &mut Deflater, out: &mut Vec<u8>, what: &Path) -> Result<()> {
    loop {
        let (_, produced, status) = deflate_call(d, &[], out, flate2::FlushCompress::Finish, what)?;
        if produced == 0 || status == flate2::Status::StreamEnd {
            return Ok(());
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Small (in memory) and large (streamed) contents, written with and
    /// without the known checksum, give byte-identical objects in every
    /// mode; an object already stored is not read again.
    #[test]
    fn known_checksum_writes_the_same_objects() {
        let small = b"known content\n".to_vec();
        let large: Vec<u8> = (0..IN_MEMORY_LIMIT as usize + 4097)
            .map(|i| (i * 31 % 251) as u8)
            .collect();
        let header = FileHeader {
            uid: 0,
            gid: 0,
            mode: S_IFREG | 0o644,
            symlink_target: String::new(),
            xattrs: Vec::new(),
        };
        for mode in [
            RepoMode::Archive,
            RepoMode::BareUser,
            RepoMode::BareUserOnly,
        ] {
            let d = tempfile::tempdir().unwrap();
            let src = d.path().join("src");
            let (a, b) = (
                Repo::init(&d.path().join("a"), mode).unwrap(),
                Repo::init(&d.path().join("b"), mode).unwrap(),
            );
            for content in [&small, &large] {
                std::fs::write(&src, content).unwrap();
                let open = || File::open(&src).unwrap();
                let n = content.len() as u64;
                let tx = a.begin().unwrap();
                let csum = tx
                    .write_content(&header, ContentSource::File(open(), n))
                    .unwrap();
                tx.commit().unwrap();
                let tx = b.begin().unwrap();
                tx.write_content_known(&header, &csum, ContentSource::File(open(), n))
                    .unwrap();
                let stats = tx.commit().unwrap();
                assert_eq!(stats.content_written, 1, "{mode:?}");
                let p = a.object_path(ObjectType::File, &csum);
                assert_eq!(
                    std::fs::read(a.path().join(&p)).unwrap(),
                    std::fs::read(b.path().join(&p)).unwrap(),
                    "{mode:?}, {n} bytes"
                );
                // Stored already: nothing is read (an empty source would not do).
                let tx = b.begin().unwrap();
                tx.write_content_known(&header, &csum, ContentSource::Bytes(&[]))
                    .unwrap();
                assert_eq!(tx.commit().unwrap().content_written, 0);
            }
        }
    }
}
