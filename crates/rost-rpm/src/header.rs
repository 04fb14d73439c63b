//! RPM package headers: NEVRA, dependencies, file list, scriptlets.
//!
//! Parsing the binary header is delegated to the `rpm` crate (rpm-rs); this module
//! turns its accessors into owned, serializable rost types, verifies the header
//! and payload digests, and adds what the crate does not expose directly
//! (hardlink groups from `FILEINODES`/`FILEDEVICES`, interpreter-only scriptlets).

use std::fmt;
use std::path::Path;

use rpm::IndexTag;
use serde::Serialize;

use crate::error::{Error, Result};
use crate::evr::{Evr, Sense};

/// `RPMSENSE_*` bits beyond the comparison operator.
pub mod sense_flags {
    /// `Requires(pre)`.
    pub const SCRIPT_PRE: u32 = 1 << 9;
    /// `Requires(post)`.
    pub const SCRIPT_POST: u32 = 1 << 10;
    /// `Requires(preun)`.
    pub const SCRIPT_PREUN: u32 = 1 << 11;
    /// `Requires(postun)`.
    pub const SCRIPT_POSTUN: u32 = 1 << 12;
    /// `Requires(pretrans)`.
    pub const PRETRANS: u32 = 1 << 7;
    /// `Requires(posttrans)`.
    pub const POSTTRANS: u32 = 1 << 5;
    /// Legacy `PreReq`.
    pub const PREREQ: u32 = 1 << 6;
    /// Scriptlet interpreter dependency.
    pub const INTERP: u32 = 1 << 8;
    /// `rpmlib(...)` feature dependency.
    pub const RPMLIB: u32 = 1 << 24;
}

/// `RPMFILE_*` flags.
pub mod file_flags {
    /// `%config`.
    pub const CONFIG: u32 = 1;
    /// `%doc`.
    pub const DOC: u32 = 1 << 1;
    /// `%config(missingok)`.
    pub const MISSINGOK: u32 = 1 << 3;
    /// `%config(noreplace)`.
    pub const NOREPLACE: u32 = 1 << 4;
    /// `%ghost`.
    pub const GHOST: u32 = 1 << 6;
    /// `%license`.
    pub const LICENSE: u32 = 1 << 7;
    /// `%readme`.
    pub const README: u32 = 1 << 8;
    /// `%artifact`.
    pub const ARTIFACT: u32 = 1 << 12;
}

/// One dependency entry (Requires, Provides, …).
#[derive(Debug, Clone, PartialEq, Eq, Hash, Serialize, serde::Deserialize)]
pub struct Dependency {
    /// Capability name (may be a rich dependency in parentheses).
    pub name: String,
    /// Comparison operator.
    pub sense: Sense,
    /// Version as written (`[E:]V[-R]`), empty when unversioned.
    pub evr: String,
    /// Raw `RPMSENSE_*` flags.
    pub flags: u32,
}

impl Dependency {
    /// An unversioned dependency.
    pub fn any(name: &str) -> Self {
        Dependency {
            name: name.to_owned(),
            sense: Sense::ANY,
            evr: String::new(),
            flags: 0,
        }
    }

    /// Parses the EVR part (meaningless when unversioned).
    pub fn parsed_evr(&self) -> Evr {
        Evr::parse(&self.evr)
    }

    /// Whether this is a `Requires(pre)` (or legacy PreReq).
    pub fn is_pre(&self) -> bool {
        self.flags & (sense_flags::SCRIPT_PRE | sense_flags::PREREQ) != 0
    }

    /// Whether this is a `Requires(post)`.
    pub fn is_post(&self) -> bool {
        self.flags & sense_flags::SCRIPT_POST != 0
    }

    /// Whether this is an `rpmlib(...)` feature, which no package provides.
    pub fn is_rpmlib(&self) -> bool {
        self.flags & sense_flags::RPMLIB != 0 || self.name.starts_with("rpmlib(")
    }

    /// Whether this is a rich (boolean) dependency.
    pub fn is_rich(&self) -> bool {
        self.name.starts_with('(')
    }
}

impl fmt::Display for Dependency {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.name)?;
        if self.sense.is_versioned() {
            write!(f, " {} {}", self.sense.as_str(), self.evr)?;
        }
        Ok(())
    }
}

/// One file of a package.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct FileInfo {
    /// Absolute path.
    pub path: String,
    /// Full `st_mode` (type and permission bits).
    pub mode: u32,
    /// Owner name.
    pub user: String,
    /// Group name.
    pub group: String,
    /// Size in bytes.
    pub size: u64,
    /// Modification time (seconds since the epoch).
    pub mtime: u32,
    /// Hex digest of a regular file's content, if recorded.
    pub digest: Option<String>,
    /// Symlink target.
    pub linkto: Option<String>,
    /// `RPMFILE_*` flags (see [`file_flags`]).
    pub flags: u32,
    /// File capabilities in text form (`cap_net_raw=ep`), if any.
    pub caps: Option<String>,
    /// Device number (`rdev`) for device nodes.
    pub rdev: u16,
    /// Hardlink group: files of the package sharing (device, inode) have the same value.
    pub inode: (u32, u32),
    /// Number of files of this package sharing this file's inode.
    pub nlink: u32,
}

/// File type bits of `st_mode`.
pub mod mode {
    /// Mask of the type bits.
    pub const S_IFMT: u32 = 0o170000;
    /// Directory.
    pub const S_IFDIR: u32 = 0o040000;
    /// Regular file.
    pub const S_IFREG: u32 = 0o100000;
    /// Symbolic link.
    pub const S_IFLNK: u32 = 0o120000;
    /// Character device.
    pub const S_IFCHR: u32 = 0o020000;
    /// Block device.
    pub const S_IFBLK: u32 = 0o060000;
    /// FIFO.
    pub const S_IFIFO: u32 = 0o010000;
    /// Socket.
    pub const S_IFSOCK: u32 = 0o140000;
}

impl FileInfo {
    /// Whether `%config`.
    pub fn is_config(&self) -> bool {
        self.flags & file_flags::CONFIG != 0
    }
    /// Whether `%doc`.
    pub fn is_doc(&self) -> bool {
        self.flags & file_flags::DOC != 0
    }
    /// Whether `%ghost` (not in the payload).
    pub fn is_ghost(&self) -> bool {
        self.flags & file_flags::GHOST != 0
    }
    /// Whether `%missingok`.
    pub fn is_missingok(&self) -> bool {
        self.flags & file_flags::MISSINGOK != 0
    }
    /// Whether a directory.
    pub fn is_dir(&self) -> bool {
        self.mode & mode::S_IFMT == mode::S_IFDIR
    }
    /// Whether a regular file.
    pub fn is_regular(&self) -> bool {
        self.mode & mode::S_IFMT == mode::S_IFREG
    }
    /// Whether a symlink.
    pub fn is_symlink(&self) -> bool {
        self.mode & mode::S_IFMT == mode::S_IFLNK
    }
}

/// A scriptlet with its interpreter.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct Scriptlet {
    /// Which one: `pretrans`, `pre`, `post`, `preun`, `postun`, `posttrans`, `verify`, ….
    pub kind: &'static str,
    /// Interpreter and its arguments (`["/bin/sh"]`, `["/sbin/ldconfig"]`).
    pub interpreter: Vec<String>,
    /// Script body; `None` for interpreter-only scriptlets (`%post -p /sbin/ldconfig`).
    pub body: Option<String>,
}

/// Everything rost reads from a package header.
#[derive(Debug, Clone, Serialize)]
pub struct PackageHeader {
    /// Name.
    pub name: String,
    /// Epoch, `None` when absent.
    pub epoch: Option<u32>,
    /// Version.
    pub version: String,
    /// Release.
    pub release: String,
    /// Architecture (`noarch`, `x86_64`; `src` for source packages).
    pub arch: String,
    /// One-line summary.
    pub summary: String,
    /// Description.
    pub description: String,
    /// License.
    pub license: String,
    /// Group.
    pub group: String,
    /// URL.
    pub url: String,
    /// Vendor.
    pub vendor: String,
    /// Packager.
    pub packager: String,
    /// Build host.
    pub buildhost: String,
    /// Build time (seconds since the epoch).
    pub buildtime: u64,
    /// Source RPM file name.
    pub sourcerpm: String,
    /// Installed size in bytes.
    pub size: u64,
    /// Payload compressor (`gzip`, `xz`, `zstd`, `bzip2`, `none`).
    pub payload_compressor: String,
    /// Requires.
    pub requires: Vec<Dependency>,
    /// Provides.
    pub provides: Vec<Dependency>,
    /// Conflicts.
    pub conflicts: Vec<Dependency>,
    /// Obsoletes.
    pub obsoletes: Vec<Dependency>,
    /// Recommends.
    pub recommends: Vec<Dependency>,
    /// Suggests.
    pub suggests: Vec<Dependency>,
    /// Supplements.
    pub supplements: Vec<Dependency>,
    /// Enhances.
    pub enhances: Vec<Dependency>,
    /// Files, in header order.
    pub files: Vec<FileInfo>,
    /// Scriptlets present in the header.
    pub scriptlets: Vec<Scriptlet>,
}

impl PackageHeader {
    /// `name-[epoch:]version-release.arch`, as rpm prints NEVRAs.
    pub fn nevra(&self) -> String {
        match self.epoch {
            Some(e) => format!(
                "{}-{e}:{}-{}.{}",
                self.name, self.version, self.release, self.arch
            ),
            None => format!(
                "{}-{}-{}.{}",
                self.name, self.version, self.release, self.arch
            ),
        }
    }

    /// The package's EVR.
    pub fn evr(&self) -> Evr {
        Evr::new(self.epoch, &self.version, Some(&self.release))
    }
}

/// A package file opened and verified: its header plus the raw package for payload access.
#[derive(Debug)]
pub struct RpmPackage {
    /// The parsed header.
    pub header: PackageHeader,
    pub(crate) inner: rpm::Package,
    pub(crate) path: std::path::PathBuf,
}

impl RpmPackage {
    /// The file this package was read from.
    pub fn path(&self) -> &Path {
        &self.path
    }
}

/// Reads an RPM file, verifies its header and payload digests, and parses its header.
pub fn load_package(path: &Path) -> Result<RpmPackage> {
    let file = std::fs::File::open(path).map_err(|e| Error::io("opening", path, e))?;
    let mut reader = std::io::BufReader::new(file);
    let pkg = rpm::Package::parse(&mut reader).map_err(|source| Error::Rpm {
        path: path.to_owned(),
        source,
    })?;
    let report = pkg.check_digests().map_err(|source| Error::Rpm {
        path: path.to_owned(),
        source,
    })?;
    if let Err(e) = report.result() {
        return Err(Error::corrupt(
            path,
            format!("digest verification failed: {e}"),
        ));
    }
    let header = parse_metadata(&pkg.metadata).map_err(|source| Error::Rpm {
        path: path.to_owned(),
        source,
    })?;
    Ok(RpmPackage {
        header,
        inner: pkg,
        path: path.to_owned(),
    })
}

/// Parses a package from bytes (header and payload), verifying digests.
pub fn parse_package(bytes: &[u8], name_for_errors: &Path) -> Result<RpmPackage> {
    let mut cursor = std::io::Cursor::new(bytes);
    let pkg = rpm::Package::parse(&mut cursor).map_err(|source| Error::Rpm {
        path: name_for_errors.to_owned(),
        source,
    })?;
    if let Err(e) = pkg
        .check_digests()
        .map_err(|source| Error::Rpm {
            path: name_for_errors.to_owned(),
            source,
        })?
        .result()
    {
        return Err(Error::corrupt(
            name_for_errors,
            format!("digest verification failed: {e}"),
        ));
    }
    let header = parse_metadata(&pkg.metadata).map_err(|source| Error::Rpm {
        path: name_for_errors.to_owned(),
        source,
    })?;
    Ok(RpmPackage {
        header,
        inner: pkg,
        path: name_for_errors.to_owned(),
    })
}

fn opt_str(r: std::result::Result<&str, rpm::Error>) -> String {
    r.map(str::to_owned).unwrap_or_default()
}

fn deps(r: std::result::Result<Vec<rpm::Dependency>, rpm::Error>) -> Vec<Dependency> {
    r.unwrap_or_default()
        .into_iter()
        .map(|d| Dependency {
            sense: Sense::from_rpm_flags(d.flags.bits()),
            flags: d.flags.bits(),
            name: d.name,
            evr: d.version,
        })
        .collect()
}

const SCRIPTLET_TAGS: &[(&str, IndexTag, IndexTag)] = &[
    (
        "pretrans",
        IndexTag::RPMTAG_PRETRANS,
        IndexTag::RPMTAG_PRETRANSPROG,
    ),
    ("pre", IndexTag::RPMTAG_PREIN, IndexTag::RPMTAG_PREINPROG),
    ("post", IndexTag::RPMTAG_POSTIN, IndexTag::RPMTAG_POSTINPROG),
    ("preun", IndexTag::RPMTAG_PREUN, IndexTag::RPMTAG_PREUNPROG),
    (
        "postun",
        IndexTag::RPMTAG_POSTUN,
        IndexTag::RPMTAG_POSTUNPROG,
    ),
    (
        "posttrans",
        IndexTag::RPMTAG_POSTTRANS,
        IndexTag::RPMTAG_POSTTRANSPROG,
    ),
    (
        "verify",
        IndexTag::RPMTAG_VERIFYSCRIPT,
        IndexTag::RPMTAG_VERIFYSCRIPTPROG,
    ),
];

fn scriptlets(h: &rpm::Header<IndexTag>) -> Vec<Scriptlet> {
    let mut out = Vec::new();
    for &(kind, body_tag, prog_tag) in SCRIPTLET_TAGS {
        let body = h.get_entry_data_as_string(body_tag).ok().map(str::to_owned);
        let interpreter: Vec<String> = match h.get_entry_data_as_string_array(prog_tag) {
            Ok(v) => v.into_iter().map(str::to_owned).collect(),
            Err(_) => h
                .get_entry_data_as_string(prog_tag)
                .map(|s| vec![s.to_owned()])
                .unwrap_or_default(),
        };
        if body.is_none() && interpreter.is_empty() {
            continue;
        }
        out.push(Scriptlet {
            kind,
            interpreter,
            body,
        });
    }
    out
}

fn parse_metadata(md: &rpm::PackageMetadata) -> std::result::Result<PackageHeader, rpm::Error> {
    let h = &md.header;
    let entries = md.get_file_entries().unwrap_or_default();
    let inodes = h
        .get_entry_data_as_u32_array(IndexTag::RPMTAG_FILEINODES)
        .unwrap_or_default();
    let devices = h
        .get_entry_data_as_u32_array(IndexTag::RPMTAG_FILEDEVICES)
        .unwrap_or_default();
    let long_sizes = h
        .get_entry_data_as_u64_array(IndexTag::RPMTAG_LONGFILESIZES)
        .ok();
    let mut files: Vec<FileInfo> = entries
        .iter()
        .enumerate()
        .map(|(i, e)| FileInfo {
            path: e.path().to_string_lossy().into_owned(),
            mode: u32::from(e.mode().raw_mode()),
            user: e.user().to_owned(),
            group: e.group().to_owned(),
            size: long_sizes
                .as_ref()
                .and_then(|s| s.get(i).copied())
                .unwrap_or(e.size() as u64),
            mtime: e.modified_at().0,
            digest: e
                .digest()
                .map(|d| d.as_hex().to_owned())
                .filter(|d| !d.is_empty()),
            linkto: e.linkto().filter(|l| !l.is_empty()).map(str::to_owned),
            flags: e.flags().bits(),
            caps: e.caps().filter(|c| !c.is_empty()).map(str::to_owned),
            rdev: e.rdev(),
            inode: (
                devices.get(i).copied().unwrap_or(0),
                inodes.get(i).copied().unwrap_or(i as u32),
            ),
            nlink: 1,
        })
        .collect();
    let mut counts: std::collections::HashMap<(u32, u32), u32> = Default::default();
    for f in &files {
        *counts.entry(f.inode).or_default() += 1;
    }
    for f in &mut files {
        f.nlink = counts.get(&f.inode).copied().unwrap_or(1);
    }
    let epoch = h.get_entry_data_as_u32(IndexTag::RPMTAG_EPOCH).ok();
    let size = h
        .get_entry_data_as_u64(IndexTag::RPMTAG_LONGSIZE)
        .or_else(|_| {
            h.get_entry_data_as_u32(IndexTag::RPMTAG_SIZE)
                .map(u64::from)
        })
        .unwrap_or(0);
    Ok(PackageHeader {
        name: md.get_name()?.to_owned(),
        epoch,
        version: md.get_version()?.to_owned(),
        release: md.get_release()?.to_owned(),
        arch: if md.is_source_package() {
            "src".to_owned()
        } else {
            opt_str(md.get_arch())
        },
        summary: opt_str(md.get_summary()),
        description: opt_str(md.get_description()),
        license: opt_str(md.get_license()),
        group: opt_str(md.get_group()),
        url: opt_str(md.get_url()),
        vendor: opt_str(md.get_vendor()),
        packager: opt_str(md.get_packager()),
        buildhost: opt_str(md.get_build_host()),
        buildtime: md.get_build_time().unwrap_or(0),
        sourcerpm: opt_str(md.get_source_rpm()),
        size,
        payload_compressor: h
            .get_entry_data_as_string(IndexTag::RPMTAG_PAYLOADCOMPRESSOR)
            .unwrap_or("gzip")
            .to_owned(),
        requires: deps(md.get_requires()),
        provides: deps(md.get_provides()),
        conflicts: deps(md.get_conflicts()),
        obsoletes: deps(md.get_obsoletes()),
        recommends: deps(md.get_recommends()),
        suggests: deps(md.get_suggests()),
        supplements: deps(md.get_supplements()),
        enhances: deps(md.get_enhances()),
        files,
        scriptlets: scriptlets(h),
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn dependency_display_and_flags() {
        let cases: &[(&str, u32, &str, &str, bool, bool)] = &[
            ("foo", 0, "", "foo", false, false),
            ("foo", 8 | 4, "1.0-1", "foo >= 1.0-1", false, false),
            ("bar", 2, "2", "bar < 2", false, false),
            (
                "/bin/sh",
                sense_flags::SCRIPT_PRE,
                "",
                "/bin/sh",
                true,
                false,
            ),
            (
                "/bin/sh",
                sense_flags::SCRIPT_POST,
                "",
                "/bin/sh",
                false,
                true,
            ),
        ];
        for &(name, flags, evr, shown, pre, post) in cases {
            let d = Dependency {
                name: name.into(),
                sense: Sense::from_rpm_flags(flags),
                evr: evr.into(),
                flags,
            };
            assert_eq!(d.to_string(), shown);
            assert_eq!(d.is_pre(), pre, "{shown}");
            assert_eq!(d.is_post(), post, "{shown}");
        }
    }
}
