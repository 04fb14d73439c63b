//! Opening, creating and reading a repository.

use std::fs::File;
use std::io::{BufReader, Read};
use std::os::fd::{AsFd, BorrowedFd, OwnedFd};
use std::path::{Path, PathBuf};

use rustix::fs::{AtFlags, FileType, FlockOperation, Mode, OFlags};
use rustix::io::Errno;

use crate::error::IoContext;
use crate::fsutil::{self, Durability};
use crate::gvariant::Value;
use crate::keyfile::KeyFile;
use crate::objects::{
    self, Commit, DirMeta, DirTree, FileHeader, MAX_METADATA_SIZE, S_IFLNK, S_IFMT,
};
use crate::{Checksum, Error, ObjectType, Result};

/// Name of the repository config file.
pub const CONFIG: &str = "config";
/// Lock file taken shared by writers and exclusively by prune.
pub const LOCK_FILE: &str = ".lock";
/// The bare-user metadata xattr.
pub const OSTREEMETA_XATTR: &str = "user.ostreemeta";

/// How content objects are stored.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum RepoMode {
    /// Real files with real owner, mode and xattrs (needs root).
    Bare,
    /// Regular files; metadata in the `user.ostreemeta` xattr.
    BareUser,
    /// Regular files and symlinks; no ownership and no xattrs.
    BareUserOnly,
    /// Compressed `.filez` objects, for serving over HTTP.
    Archive,
}

impl RepoMode {
    /// Parses a `--mode` value or a config `mode=` value.
    pub fn parse(s: &str) -> Option<RepoMode> {
        Some(match s {
            "bare" => RepoMode::Bare,
            "bare-user" => RepoMode::BareUser,
            "bare-user-only" => RepoMode::BareUserOnly,
            "archive" | "archive-z2" => RepoMode::Archive,
            _ => return None,
        })
    }

    /// The value written to `config`.
    pub fn as_config_str(self) -> &'static str {
        match self {
            RepoMode::Bare => "bare",
            RepoMode::BareUser => "bare-user",
            RepoMode::BareUserOnly => "bare-user-only",
            RepoMode::Archive => "archive-z2",
        }
    }

    /// File extension of content objects in this mode.
    pub fn content_extension(self) -> &'static str {
        if self == RepoMode::Archive {
            "filez"
        } else {
            "file"
        }
    }
}

/// An open repository.
#[derive(Debug)]
pub struct Repo {
    fd: OwnedFd,
    path: PathBuf,
    mode: RepoMode,
    config: KeyFile,
}

/// A held `flock` on the repo's lock file; released on drop.
#[derive(Debug)]
pub struct RepoLock {
    _fd: OwnedFd,
}

/// Streams a content object's bytes.
#[derive(Debug)]
pub enum ContentReader {
    /// Bytes already in memory (symlinks, small objects).
    Memory(std::io::Cursor<Vec<u8>>),
    /// A bare object file.
    File(BufReader<File>),
    /// An archive `.filez` payload being inflated.
    Deflate(Box<flate2::bufread::DeflateDecoder<BufReader<File>>>),
}

impl Read for ContentReader {
    fn read(&mut self, buf: &mut [u8]) -> std::io::Result<usize> {
        match self {
            ContentReader::Memory(c) => c.read(buf),
            ContentReader::File(f) => f.read(buf),
            ContentReader::Deflate(d) => d.read(buf),
        }
    }
}

/// A content object opened for reading.
#[derive(Debug)]
pub struct ContentObject {
    /// Its metadata.
    pub header: FileHeader,
    /// Uncompressed size of the data (0 for symlinks).
    pub size: u64,
    /// The data.
    pub reader: ContentReader,
}

fn boot_id() -> String {
    std::fs::read_to_string("/proc/sys/kernel/random/boot_id")
        .map(|s| s.trim().replace('-', ""))
        .unwrap_or_else(|_| "noboot".to_owned())
}

impl Repo {
    /// Creates a repository at `path` (idempotent when one of the same mode exists).
    pub fn init(path: &Path, mode: RepoMode) -> Result<Repo> {
        fsutil::ensure_dir_at(rustix::fs::CWD, path, 0o755).ctx("creating", path)?;
        let fd = fsutil::open_dir_at(rustix::fs::CWD, path).ctx("opening", path)?;
        if fsutil::read_file_optional_at(fd.as_fd(), Path::new(CONFIG))?.is_none() {
            for d in [
                "objects",
                "tmp",
                "tmp/cache",
                "extensions",
                "refs",
                "refs/heads",
                "refs/mirrors",
                "refs/remotes",
                "state",
            ] {
                fsutil::ensure_dir_at(fd.as_fd(), Path::new(d), 0o755)
                    .ctx("creating", path.join(d))?;
            }
            let text = format!("[core]\nrepo_version=1\nmode={}\n", mode.as_config_str());
            fsutil::replace_file_at(
                fd.as_fd(),
                Path::new(CONFIG),
                text.as_bytes(),
                0o644,
                Durability::Now,
            )?;
        }
        drop(fd);
        Repo::open(path)
    }

    /// Opens an existing repository.
    pub fn open(path: &Path) -> Result<Repo> {
        // The path the user names may be a symlink to the repository (as
        // libostree allows); below it, nothing is followed.
        let fd = rustix::fs::openat(
            rustix::fs::CWD,
            path,
            OFlags::RDONLY | OFlags::DIRECTORY | OFlags::CLOEXEC,
            Mode::empty(),
        )
        .map_err(|e| Error::NotARepo {
            path: path.to_owned(),
            reason: std::io::Error::from(e).to_string(),
        })?;
        let cfg =
            fsutil::read_file_optional_at(fd.as_fd(), Path::new(CONFIG))?.ok_or_else(|| {
                Error::NotARepo {
                    path: path.to_owned(),
                    reason: "no config file".to_owned(),
                }
            })?;
        let cfg_path = path.join(CONFIG);
        let text = String::from_utf8(cfg).map_err(|_| Error::Config {
            path: cfg_path.clone(),
            reason: "not UTF-8".into(),
        })?;
        let config = KeyFile::parse(&text).map_err(|reason| Error::Config {
            path: cfg_path.clone(),
            reason,
        })?;
        match config.get("core", "repo_version") {
            Some("1") => {}
            Some(v) => {
                return Err(Error::Config {
                    path: cfg_path,
                    reason: format!("core.repo_version: unsupported version {v}"),
                });
            }
            None => {
                return Err(Error::Config {
                    path: cfg_path,
                    reason: "core.repo_version: missing".into(),
                });
            }
        }
        let mode = match config.get("core", "mode") {
            None => RepoMode::Bare,
            Some(m) => RepoMode::parse(m).ok_or_else(|| Error::Config {
                path: cfg_path.clone(),
                reason: format!("core.mode: unsupported mode {m:?}"),
            })?,
        };
        // As libostree: a deleted tmp/ is recreated, it holds nothing durable.
        match rustix::fs::mkdirat(&fd, "tmp", rustix::fs::Mode::from_raw_mode(0o755)) {
            Ok(()) | Err(rustix::io::Errno::EXIST) => {}
            // A read-only repository still opens for reading.
            Err(rustix::io::Errno::ROFS | rustix::io::Errno::ACCESS | rustix::io::Errno::PERM) => {}
            Err(e) => return Err(e).ctx("creating", path.join("tmp")),
        }
        for d in ["objects", "tmp", "refs/heads"] {
            match rustix::fs::statat(&fd, d, AtFlags::empty()) {
                Ok(_) => {}
                Err(e) => {
                    return Err(Error::NotARepo {
                        path: path.to_owned(),
                        reason: format!("{d}: {}", std::io::Error::from(e)),
                    });
                }
            }
        }
        Ok(Repo {
            fd,
            path: path.to_owned(),
            mode,
            config,
        })
    }

    /// The path the repo was opened with.
    pub fn path(&self) -> &Path {
        &self.path
    }

    /// The storage mode.
    pub fn mode(&self) -> RepoMode {
        self.mode
    }

    /// The parsed `config`.
    pub fn config(&self) -> &KeyFile {
        &self.config
    }

    /// Replaces `config` atomically.
    pub fn write_config(&mut self, config: KeyFile) -> Result<()> {
        fsutil::replace_file_at(
            self.dfd(),
            Path::new(CONFIG),
            config.to_text().as_bytes(),
            0o644,
            Durability::Now,
        )?;
        self.config = config;
        Ok(())
    }

    /// The repo's directory fd.
    pub fn dfd(&self) -> BorrowedFd<'_> {
        self.fd.as_fd()
    }

    /// Takes the repo lock (shared for writers, exclusive for prune).
    pub fn lock(&self, exclusive: bool) -> Result<RepoLock> {
        let fd = rustix::fs::openat(
            self.dfd(),
            LOCK_FILE,
            OFlags::RDWR | OFlags::CREATE | OFlags::CLOEXEC,
            Mode::from_raw_mode(0o600),
        )
        .ctx("opening", self.path.join(LOCK_FILE))?;
        let op = if exclusive {
            FlockOperation::LockExclusive
        } else {
            FlockOperation::LockShared
        };
        rustix::fs::flock(&fd, op).ctx("locking", self.path.join(LOCK_FILE))?;
        Ok(RepoLock { _fd: fd })
    }

    /// `objects/XX/REST.EXT` for an object.
    pub fn object_path(&self, ty: ObjectType, csum: &Checksum) -> PathBuf {
        let hex = csum.to_hex();
        let ext = if ty == ObjectType::File {
            self.mode.content_extension()
        } else {
            ty.extension()
        };
        PathBuf::from(format!("objects/{}/{}.{ext}", &hex[..2], &hex[2..]))
    }

    /// Whether the object is stored.
    pub fn has_object(&self, ty: ObjectType, csum: &Checksum) -> Result<bool> {
        let p = self.object_path(ty, csum);
        match rustix::fs::statat(self.dfd(), &p, AtFlags::SYMLINK_NOFOLLOW) {
            Ok(_) => Ok(true),
            Err(Errno::NOENT) => Ok(false),
            Err(e) => Err(e).ctx("stat", p),
        }
    }

    /// Reads a metadata object's raw bytes.
    pub fn load_metadata_raw(&self, ty: ObjectType, csum: &Checksum) -> Result<Vec<u8>> {
        self.load_metadata_raw_optional(ty, csum)?
            .ok_or_else(|| Error::NotFound(format!("No such metadata object {csum}.{ty}")))
    }

    /// Reads a metadata object's raw bytes, `None` when absent.
    pub fn load_metadata_raw_optional(
        &self,
        ty: ObjectType,
        csum: &Checksum,
    ) -> Result<Option<Vec<u8>>> {
        let p = self.object_path(ty, csum);
        let fd = match rustix::fs::openat(
            self.dfd(),
            &p,
            OFlags::RDONLY | OFlags::CLOEXEC | OFlags::NOFOLLOW,
            Mode::empty(),
        ) {
            Ok(fd) => fd,
            Err(Errno::NOENT) => return Ok(None),
            Err(e) => return Err(e).ctx("opening", p),
        };
        let st = rustix::fs::fstat(&fd).ctx("stat", &p)?;
        if st.st_size as u64 > MAX_METADATA_SIZE {
            return Err(Error::Corrupt {
                object: format!("{csum}.{ty}"),
                reason: format!("metadata object of {} bytes exceeds the limit", st.st_size),
            });
        }
        let mut buf = Vec::with_capacity(st.st_size as usize);
        File::from(fd).read_to_end(&mut buf).ctx("reading", p)?;
        Ok(Some(buf))
    }

    /// Loads and parses a commit.
    pub fn load_commit(&self, csum: &Checksum) -> Result<Commit> {
        let b = self.load_metadata_raw(ObjectType::Commit, csum)?;
        Commit::parse(&b, &csum.to_hex())
    }

    /// Loads and parses a dirtree.
    pub fn load_dirtree(&self, csum: &Checksum) -> Result<DirTree> {
        let b = self.load_metadata_raw(ObjectType::DirTree, csum)?;
        DirTree::parse(&b, &csum.to_hex())
    }

    /// Loads and parses a dirmeta.
    pub fn load_dirmeta(&self, csum: &Checksum) -> Result<DirMeta> {
        let b = self.load_metadata_raw(ObjectType::DirMeta, csum)?;
        DirMeta::parse(&b, &csum.to_hex())
    }

    /// Loads a commit's detached metadata, if any.
    pub fn load_detached_metadata(&self, csum: &Checksum) -> Result<Option<Value>> {
        let Some(b) = self.load_metadata_raw_optional(ObjectType::CommitMeta, csum)? else {
            return Ok(None);
        };
        let v = Value::from_bytes(objects::ty(objects::METADATA_TYPE), &b).map_err(|e| {
            Error::Corrupt {
                object: format!("{csum}.commitmeta"),
                reason: e.to_string(),
            }
        })?;
        Ok(Some(v))
    }

    /// Writes (or with `None` deletes) a commit's detached metadata.
    pub fn write_detached_metadata(&self, csum: &Checksum, meta: Option<&Value>) -> Result<()> {
        let p = self.object_path(ObjectType::CommitMeta, csum);
        match meta {
            Some(v) => {
                if let Some(parent) = p.parent() {
                    fsutil::ensure_dir_at(self.dfd(), parent, 0o755).ctx("creating", parent)?;
                }
                fsutil::replace_file_at(self.dfd(), &p, &v.to_bytes(), 0o644, Durability::Now)
            }
            None => match rustix::fs::unlinkat(self.dfd(), &p, AtFlags::empty()) {
                Ok(()) | Err(Errno::NOENT) => Ok(()),
                Err(e) => Err(e).ctx("removing", p),
            },
        }
    }

    /// Opens a content object: its header and a reader over its data.
    pub fn load_file(&self, csum: &Checksum) -> Result<ContentObject> {
        let p = self.object_path(ObjectType::File, csum);
        let name = format!("{csum}.file");
        let corrupt = |reason: String| Error::Corrupt {
            object: name.clone(),
            reason,
        };
        let st = match rustix::fs::statat(self.dfd(), &p, AtFlags::SYMLINK_NOFOLLOW) {
            Ok(st) => st,
            Err(Errno::NOENT) => {
                return Err(Error::NotFound(crate::msg::no_file_object(csum)));
            }
            Err(e) => return Err(e).ctx("stat", p),
        };
        let ftype = FileType::from_raw_mode(st.st_mode);
        if ftype == FileType::Symlink {
            if !matches!(self.mode, RepoMode::Bare | RepoMode::BareUserOnly) {
                return Err(corrupt(
                    "symlink object in a repo mode that stores none".into(),
                ));
            }
            let target = rustix::fs::readlinkat(self.dfd(), &p, Vec::new()).ctx("readlink", &p)?;
            let target = String::from_utf8(target.into_bytes())
                .map_err(|_| corrupt("symlink target is not UTF-8".into()))?;
            let (uid, gid, xattrs) = self.bare_owner_and_xattrs(&p, &st)?;
            let header = FileHeader {
                uid,
                gid,
                mode: st.st_mode,
                symlink_target: target,
                xattrs,
            };
            return Ok(ContentObject {
                header,
                size: 0,
                reader: ContentReader::Memory(Default::default()),
            });
        }
        if ftype != FileType::RegularFile {
            return Err(corrupt("not a regular file".into()));
        }
        let fd = rustix::fs::openat(
            self.dfd(),
            &p,
            OFlags::RDONLY | OFlags::CLOEXEC | OFlags::NOFOLLOW,
            Mode::empty(),
        )
        .ctx("opening", &p)?;
        match self.mode {
            RepoMode::Archive => {
                let mut f = BufReader::with_capacity(64 * 1024, File::from(fd));
                let mut prefix = [0u8; 8];
                f.read_exact(&mut prefix)
                    .map_err(|_| corrupt("truncated before its header".into()))?;
                let len = u32::from_be_bytes([prefix[0], prefix[1], prefix[2], prefix[3]]) as u64;
                if len > MAX_METADATA_SIZE || len + 8 > st.st_size as u64 {
                    return Err(corrupt(format!("header length {len} exceeds the object")));
                }
                let mut hdr = vec![0u8; len as usize];
                f.read_exact(&mut hdr)
                    .map_err(|_| corrupt("truncated header".into()))?;
                let (header, size) = FileHeader::parse_archive(&hdr).map_err(corrupt)?;
                let reader = if header.is_symlink() {
                    ContentReader::Memory(Default::default())
                } else {
                    ContentReader::Deflate(Box::new(flate2::bufread::DeflateDecoder::new(f)))
                };
                let size = if header.is_symlink() { 0 } else { size };
                Ok(ContentObject {
                    header,
                    size,
                    reader,
                })
            }
            RepoMode::BareUser => {
                let meta = fsutil::fget_xattr(fd.as_fd(), OSTREEMETA_XATTR)
                    .ctx("reading xattr", &p)?
                    .ok_or_else(|| corrupt(format!("missing {OSTREEMETA_XATTR} xattr")))?;
                let (uid, gid, mode, xattrs) =
                    objects::parse_bare_user_meta(&meta).map_err(corrupt)?;
                let mut f = File::from(fd);
                if mode & S_IFMT == S_IFLNK {
                    let mut t = Vec::new();
                    f.read_to_end(&mut t).ctx("reading", &p)?;
                    if t.last() == Some(&0) {
                        t.pop();
                    }
                    let target = String::from_utf8(t)
                        .map_err(|_| corrupt("symlink target is not UTF-8".into()))?;
                    let header = FileHeader {
                        uid,
                        gid,
                        mode,
                        symlink_target: target,
                        xattrs,
                    };
                    return Ok(ContentObject {
                        header,
                        size: 0,
                        reader: ContentReader::Memory(Default::default()),
                    });
                }
                let header = FileHeader {
                    uid,
                    gid,
                    mode,
                    symlink_target: String::new(),
                    xattrs,
                };
                Ok(ContentObject {
                    header,
                    size: st.st_size as u64,
                    reader: ContentReader::File(BufReader::new(f)),
                })
            }
            RepoMode::Bare | RepoMode::BareUserOnly => {
                let (uid, gid, xattrs) = self.bare_owner_and_xattrs(&p, &st)?;
                let header = FileHeader {
                    uid,
                    gid,
                    mode: st.st_mode,
                    symlink_target: String::new(),
                    xattrs,
                };
                Ok(ContentObject {
                    header,
                    size: st.st_size as u64,
                    reader: ContentReader::File(BufReader::new(File::from(fd))),
                })
            }
        }
    }

    /// Owner and xattrs of a bare-mode object: real ones in `bare`, none
    /// (root, no xattrs) in `bare-user-only`.
    fn bare_owner_and_xattrs(
        &self,
        p: &Path,
        st: &rustix::fs::Stat,
    ) -> Result<(u32, u32, objects::Xattrs)> {
        if self.mode != RepoMode::Bare {
            return Ok((0, 0, Vec::new()));
        }
        let x = fsutil::read_xattrs_path(&fsutil::proc_path(self.dfd(), p.as_os_str()))
            .ctx("reading xattrs", p)?;
        Ok((st.st_uid, st.st_gid, x))
    }

    /// Lists every object in `objects/`, in path order.
    pub fn list_objects(&self) -> Result<Vec<(Checksum, ObjectType)>> {
        let objdir =
            fsutil::open_dir_at(self.dfd(), Path::new("objects")).ctx("opening", "objects")?;
        let mut prefixes = fsutil::list_dir(objdir.as_fd()).ctx("listing", "objects")?;
        prefixes.sort_by(|a, b| a.name.cmp(&b.name));
        let mut out = Vec::new();
        for pfx in prefixes {
            let Some(pname) = pfx.name.to_str() else {
                continue;
            };
            if pfx.file_type != FileType::Directory || pname.len() != 2 {
                continue;
            }
            let sub = fsutil::open_dir_at(objdir.as_fd(), Path::new(pname))
                .ctx("opening", format!("objects/{pname}"))?;
            let mut entries =
                fsutil::list_dir(sub.as_fd()).ctx("listing", format!("objects/{pname}"))?;
            entries.sort_by(|a, b| a.name.cmp(&b.name));
            for e in entries {
                let Some(n) = e.name.to_str() else { continue };
                let Some((rest, ext)) = n.split_once('.') else {
                    continue;
                };
                let Some(ty) = ObjectType::from_extension(ext) else {
                    continue;
                };
                if ty == ObjectType::File && ext != self.mode.content_extension() {
                    continue;
                }
                if let Ok(c) = format!("{pname}{rest}").parse::<Checksum>() {
                    out.push((c, ty));
                }
            }
        }
        Ok(out)
    }

    /// Deletes an object file (missing is fine).
    pub fn delete_object(&self, ty: ObjectType, csum: &Checksum) -> Result<()> {
        let p = self.object_path(ty, csum);
        match rustix::fs::unlinkat(self.dfd(), &p, AtFlags::empty()) {
            Ok(()) | Err(Errno::NOENT) => Ok(()),
            Err(e) => Err(e).ctx("removing", p),
        }
    }

    /// A fresh staging directory name for a transaction.
    pub(crate) fn new_staging_name() -> String {
        format!("staging-{}-{}", boot_id(), fsutil::random_suffix())
    }
}
