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

use rustix::fs::{AtFlags, FlockOperation, Mode, OFlags, RenameFlags, Timespec, Timestamps};
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
        rustix::fs::mkdirat(self.dfd(), &rel, Mode::from_raw_mode(0o755)).ctx("creating", &rel)?;
        let staging = fsutil::open_dir_at(self.dfd(), &rel).ctx("opening", &rel)?;
        rustix::fs::flock(&staging, FlockOperation::NonBlockingLockExclusive)
            .ctx("locking", &rel)?;
        Ok(Transaction {
            repo: self,
            staging,
            staging_path: rel,
            staged: Mutex::new(Vec::new()),
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
        if self.repo.has_object(ty, csum)? {
            return Ok(false);
        }
        let mut seen = self
            .seen
            .lock()
            .map_err(|_| Error::Other("poisoned lock".into()))?;
        Ok(seen.insert((*csum, ty)))
    }

    /// Moves a finished temp file to its staged name.
    fn stage(&self, tmp: &Path, ty: ObjectType, csum: &Checksum) -> Result<()> {
        let rel = self.staged_rel(ty, csum);
        if let Some(parent) = rel.parent() {
            fsutil::ensure_dir_at(self.staging.as_fd(), parent, 0o755)
                .ctx("creating", self.staging_path.join(parent))?;
        }
        rustix::fs::renameat(&self.staging, tmp, &self.staging, &rel)
            .ctx("staging", self.staging_path.join(&rel))?;
        self.staged
            .lock()
            .map_err(|_| Error::Other("poisoned lock".into()))?
            .push((*csum, ty));
        Ok(())
    }

    fn create_tmp(&self, mode: u32) -> Result<(PathBuf, File)> {
        let name = PathBuf::from(format!("tmp-{}", fsutil::random_suffix()));
        let fd = rustix::fs::openat(
            &self.staging,
            &name,
            OFlags::WRONLY | OFlags::CREATE | OFlags::EXCL | OFlags::CLOEXEC | OFlags::NOFOLLOW,
            Mode::from_raw_mode(mode),
        )
        .ctx("creating", self.staging_path.join(&name))?;
        Ok((name, File::from(fd)))
    }

    /// Writes a metadata object; returns its checksum.
    pub fn write_metadata(&self, ty: ObjectType, bytes: &[u8]) -> Result<Checksum> {
        let csum = Checksum::of(bytes);
        if !self.claim(ty, &csum)? {
            return Ok(csum);
        }
        let (name, mut f) = self.create_tmp(0o644)?;
        f.write_all(bytes)
            .ctx("writing", self.staging_path.join(&name))?;
        drop(f);
        self.stage(&name, ty, &csum)?;
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
                let tmp = self
                    .write_content_tmp(header, &mut std::io::Cursor::new(b), b.len() as u64)?
                    .0;
                self.finish_content(&tmp, header, &csum, b.len() as u64)?;
                Ok(csum)
            }
            ContentSource::File(mut f, size) if size <= IN_MEMORY_LIMIT => {
                let mut buf = Vec::with_capacity(size as usize);
                (&mut f)
                    .take(size + 1)
                    .read_to_end(&mut buf)
                    .ctx("reading", "source file")?;
                if buf.len() as u64 != size {
                    return Err(Error::Other(format!(
                        "file changed size while being read ({size} → {})",
                        buf.len()
                    )));
                }
                self.write_content(header, ContentSource::Bytes(&buf))
            }
            ContentSource::File(mut f, size) => {
                let (tmp, csum) = self.write_content_tmp(header, &mut f, size)?;
                if !self.claim(ObjectType::File, &csum)? {
                    let _ = rustix::fs::unlinkat(&self.staging, &tmp, AtFlags::empty());
                    return Ok(csum);
                }
                self.finish_content(&tmp, header, &csum, size)?;
                Ok(csum)
            }
        }
    }

    fn finish_content(
        &self,
        tmp: &Path,
        header: &FileHeader,
        csum: &Checksum,
        size: u64,
    ) -> Result<()> {
        self.stage(tmp, ObjectType::File, csum)?;
        let mut st = self
            .stats
            .lock()
            .map_err(|_| Error::Other("poisoned lock".into()))?;
        st.content_written += 1;
        st.content_bytes_written += if header.is_symlink() { 0 } else { size };
        Ok(())
    }

    /// Writes the object to a temp file in the repo's storage format, hashing
    /// the logical content on the way. Returns (temp name, checksum).
    fn write_content_tmp(
        &self,
        header: &FileHeader,
        src: &mut dyn Read,
        size: u64,
    ) -> Result<(PathBuf, Checksum)> {
        let mode = self.repo.mode();
        let mut hasher = header.hasher();
        let tpath = |n: &Path| self.staging_path.join(n);
        if header.is_symlink() && matches!(mode, RepoMode::Bare | RepoMode::BareUserOnly) {
            let name = PathBuf::from(format!("tmp-{}", fsutil::random_suffix()));
            rustix::fs::symlinkat(header.symlink_target.as_str(), &self.staging, &name)
                .ctx("symlink", tpath(&name))?;
            if mode == RepoMode::Bare {
                rustix::fs::chownat(
                    &self.staging,
                    &name,
                    Some(rustix::fs::Uid::from_raw(header.uid)),
                    Some(rustix::fs::Gid::from_raw(header.gid)),
                    AtFlags::SYMLINK_NOFOLLOW,
                )
                .ctx("chown", tpath(&name))?;
                fsutil::set_xattrs_path(
                    &fsutil::proc_path(self.staging.as_fd(), name.as_os_str()),
                    &header.xattrs,
                )
                .ctx("setting xattrs", tpath(&name))?;
            }
            rustix::fs::utimensat(
                &self.staging,
                &name,
                &zero_times(),
                AtFlags::SYMLINK_NOFOLLOW,
            )
            .ctx("utimensat", tpath(&name))?;
            return Ok((name, Checksum(hasher.finalize().into())));
        }
        let (name, mut f) = self.create_tmp(0o644)?;
        let res = (|| -> Result<Checksum> {
            match mode {
                RepoMode::Archive => {
                    let size = if header.is_symlink() { 0 } else { size };
                    let hdr = header.to_archive_bytes(size);
                    let mut w = std::io::BufWriter::with_capacity(128 * 1024, &mut f);
                    w.write_all(&objects::length_prefix(hdr.len()))
                        .ctx("writing", tpath(&name))?;
                    w.write_all(&hdr).ctx("writing", tpath(&name))?;
                    if !header.is_symlink() {
                        let mut enc =
                            flate2::write::DeflateEncoder::new(w, flate2::Compression::new(6));
                        copy_hashing(src, &mut enc, &mut hasher, size, &tpath(&name))?;
                        let mut w = enc.finish().ctx("compressing", tpath(&name))?;
                        w.flush().ctx("writing", tpath(&name))?;
                    } else {
                        w.flush().ctx("writing", tpath(&name))?;
                    }
                }
                RepoMode::BareUser => {
                    if header.is_symlink() {
                        // libostree stores the target NUL-terminated.
                        f.write_all(header.symlink_target.as_bytes())
                            .ctx("writing", tpath(&name))?;
                        f.write_all(b"\0").ctx("writing", tpath(&name))?;
                    } else {
                        copy_hashing(src, &mut f, &mut hasher, size, &tpath(&name))?;
                    }
                    fsutil::fset_xattrs(
                        f.as_fd(),
                        &vec![(
                            OSTREEMETA_XATTR.as_bytes().to_vec(),
                            objects::bare_user_meta(header),
                        )],
                    )
                    .ctx("setting user.ostreemeta on", tpath(&name))?;
                    let disk_mode = if header.is_symlink() {
                        0o644
                    } else {
                        (header.mode & 0o775) | 0o400
                    };
                    rustix::fs::fchmod(&f, Mode::from_raw_mode(disk_mode))
                        .ctx("chmod", tpath(&name))?;
                }
                RepoMode::BareUserOnly | RepoMode::Bare => {
                    copy_hashing(src, &mut f, &mut hasher, size, &tpath(&name))?;
                    if mode == RepoMode::Bare {
                        rustix::fs::fchown(
                            &f,
                            Some(rustix::fs::Uid::from_raw(header.uid)),
                            Some(rustix::fs::Gid::from_raw(header.gid)),
                        )
                        .ctx("chown", tpath(&name))?;
                        fsutil::fset_xattrs(f.as_fd(), &header.xattrs)
                            .ctx("setting xattrs", tpath(&name))?;
                    }
                    // chmod after chown: chown clears setuid bits.
                    rustix::fs::fchmod(&f, Mode::from_raw_mode(header.mode & !S_IFREG & 0o7777))
                        .ctx("chmod", tpath(&name))?;
                }
            }
            rustix::fs::futimens(&f, &zero_times()).ctx("futimens", tpath(&name))?;
            Ok(Checksum(hasher.clone().finalize().into()))
        })();
        match res {
            Ok(c) => Ok((name, c)),
            Err(e) => {
                let _ = rustix::fs::unlinkat(&self.staging, &name, AtFlags::empty());
                Err(e)
            }
        }
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
        let mut made_dirs = HashSet::new();
        for (csum, ty) in &staged {
            let rel = self.staged_rel(*ty, csum);
            let hex = csum.to_hex();
            if made_dirs.insert(hex[..2].to_owned()) {
                fsutil::ensure_dir_at(objdir.as_fd(), Path::new(&hex[..2]), 0o755)
                    .ctx("creating", format!("objects/{}", &hex[..2]))?;
            }
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

fn copy_hashing(
    src: &mut dyn Read,
    dst: &mut dyn Write,
    hasher: &mut sha2::Sha256,
    size: u64,
    what: &Path,
) -> Result<()> {
    let mut buf = vec![0u8; 128 * 1024];
    let mut total = 0u64;
    loop {
        let n = match src.read(&mut buf) {
            Ok(0) => break,
            Ok(n) => n,
            Err(e) if e.kind() == std::io::ErrorKind::Interrupted => continue,
            Err(e) => return Err(e).ctx("reading source for", what),
        };
        hasher.update(&buf[..n]);
        dst.write_all(&buf[..n]).ctx("writing", what)?;
        total += n as u64;
        if total > size {
            break;
        }
    }
    if total != size {
        return Err(Error::Other(format!(
            "source changed size while being read ({size} → {total} bytes)"
        )));
    }
    Ok(())
}
