//! Safe payload extraction.
//!
//! The `rpm` crate decompresses the payload and walks its cpio archive; its own
//! `Package::extract` trusts payload paths and follows symlinks, which is wrong for
//! packages from a hostile mirror. This module writes files itself:
//! every path must be absolute and free of `.`/`..`; parents are created one
//! component at a time and must be real directories (never symlinks); files are
//! created with `O_EXCL`; each regular file's content is checked against the
//! digest recorded in the header before it is kept. Hardlink groups become real
//! hardlinks. Device nodes, FIFOs and sockets are reported, not created.

use std::collections::HashMap;
use std::fs;
use std::io::Write;
use std::os::unix::fs::{OpenOptionsExt, PermissionsExt};
use std::path::{Component, Path, PathBuf};

use sha2::Digest;

use crate::error::{Error, Result};
use crate::header::{FileInfo, RpmPackage};

/// What an extraction wrote.
#[derive(Debug, Default, Clone, PartialEq, Eq)]
pub struct ExtractReport {
    /// Entries written (files, dirs, symlinks, hardlinks).
    pub written: usize,
    /// Special files (devices, FIFOs, sockets) not created, by path.
    pub skipped_special: Vec<String>,
}

/// Members of one hardlink set, and the (path, content, mode) of the member that
/// carries the data in the payload.
type LinkGroup = (Vec<PathBuf>, Option<(PathBuf, Vec<u8>, u32)>);

/// Validates a payload path and returns it relative to the root.
pub fn safe_relative_path(path: &str) -> std::result::Result<PathBuf, String> {
    let stripped = path
        .strip_prefix('/')
        .or_else(|| path.strip_prefix("./"))
        .ok_or_else(|| format!("payload path {path:?} is not absolute"))?;
    let mut out = PathBuf::new();
    for c in Path::new(stripped).components() {
        match c {
            Component::Normal(n) => out.push(n),
            Component::CurDir => {}
            _ => return Err(format!("payload path {path:?} escapes the root")),
        }
    }
    if out.as_os_str().is_empty() {
        return Err(format!("payload path {path:?} names the root"));
    }
    Ok(out)
}

fn digest_hex(algo: rpm::DigestAlgorithm, data: &[u8]) -> Option<String> {
    Some(match algo {
        rpm::DigestAlgorithm::Md5 => hex::encode(md5::Md5::digest(data)),
        rpm::DigestAlgorithm::Sha2_256 => hex::encode(sha2::Sha256::digest(data)),
        rpm::DigestAlgorithm::Sha2_384 => hex::encode(sha2::Sha384::digest(data)),
        rpm::DigestAlgorithm::Sha2_512 => hex::encode(sha2::Sha512::digest(data)),
        rpm::DigestAlgorithm::Sha2_224 => hex::encode(sha2::Sha224::digest(data)),
        _ => return None,
    })
}

/// What every payload reader needs: the header's files by payload path, and
/// the digest algorithm the header uses. Matching and checking live here once.
pub(crate) struct PayloadIndex<'a> {
    pub(crate) pkg_path: &'a Path,
    by_path: HashMap<&'a str, &'a FileInfo>,
    algo: rpm::DigestAlgorithm,
}

impl<'a> PayloadIndex<'a> {
    pub(crate) fn new(pkg: &'a RpmPackage) -> PayloadIndex<'a> {
        PayloadIndex {
            pkg_path: pkg.path(),
            by_path: pkg
                .header
                .files
                .iter()
                .map(|f| (f.path.as_str(), f))
                .collect(),
            algo: pkg
                .inner
                .metadata
                .get_file_digest_algorithm()
                .unwrap_or(rpm::DigestAlgorithm::Md5),
        }
    }

    /// The header entry of a payload path and the path relative to the root;
    /// an entry missing from the header or escaping the root is corruption.
    pub(crate) fn entry(&self, path: &str) -> Result<(&'a FileInfo, PathBuf)> {
        let info = *self.by_path.get(path).ok_or_else(|| {
            Error::corrupt(
                self.pkg_path,
                format!("payload entry {path:?} is not in the header"),
            )
        })?;
        let rel = safe_relative_path(path).map_err(|r| Error::corrupt(self.pkg_path, r))?;
        Ok((info, rel))
    }

    /// Checks a regular file's content against the header's size and digest.
    pub(crate) fn check(&self, info: &FileInfo, content: &[u8]) -> Result<()> {
        if content.len() as u64 != info.size {
            return Err(Error::corrupt(
                self.pkg_path,
                format!(
                    "{}: payload has {} bytes, header says {}",
                    info.path,
                    content.len(),
                    info.size
                ),
            ));
        }
        if let Some(expected) = &info.digest
            && let Some(actual) = digest_hex(self.algo, content)
            && !actual.eq_ignore_ascii_case(expected)
        {
            return Err(Error::ChecksumMismatch {
                what: format!("{}: {}", self.pkg_path.display(), info.path),
                expected: expected.clone(),
                actual,
            });
        }
        Ok(())
    }
}

/// Creates the parents of `rel` under `root`, refusing to pass through anything
/// but real directories.
fn ensure_parents(root: &Path, rel: &Path, pkg: &Path) -> Result<()> {
    let mut cur = root.to_path_buf();
    if let Some(parent) = rel.parent() {
        for comp in parent.components() {
            cur.push(comp);
            match fs::symlink_metadata(&cur) {
                Ok(m) if m.is_dir() => {}
                Ok(_) => {
                    return Err(Error::corrupt(
                        pkg,
                        format!(
                            "payload path {} goes through a non-directory",
                            rel.display()
                        ),
                    ));
                }
                Err(e) if e.kind() == std::io::ErrorKind::NotFound => {
                    fs::create_dir(&cur).map_err(|e| Error::io("creating directory", &cur, e))?;
                }
                Err(e) => return Err(Error::io("inspecting", &cur, e)),
            }
        }
    }
    Ok(())
}

fn write_new(path: &Path, content: &[u8], perm: u32) -> Result<()> {
    let mut f = fs::OpenOptions::new()
        .write(true)
        .create_new(true)
        .mode(0o600)
        .open(path)
        .map_err(|e| Error::io("creating", path, e))?;
    f.write_all(content)
        .map_err(|e| Error::io("writing", path, e))?;
    f.set_permissions(fs::Permissions::from_mode(perm))
        .map_err(|e| Error::io("setting mode of", path, e))?;
    Ok(())
}

/// Extracts the payload of `pkg` into `dest`, which must not exist yet.
pub fn extract_payload(pkg: &RpmPackage, dest: &Path) -> Result<ExtractReport> {
    let index = PayloadIndex::new(pkg);
    let pkg_path = index.pkg_path;
    fs::create_dir(dest).map_err(|e| Error::io("creating directory", dest, e))?;
    let mut report = ExtractReport::default();
    let mut dirs: Vec<(PathBuf, u32)> = Vec::new();
    // Hardlink groups: inode -> (paths, holder path with content)
    let mut groups: HashMap<(u32, u32), LinkGroup> = HashMap::new();
    let files = pkg.inner.files().map_err(|source| Error::Rpm {
        path: pkg_path.to_owned(),
        source,
    })?;
    for entry in files {
        let entry = entry.map_err(|source| Error::Rpm {
            path: pkg_path.to_owned(),
            source,
        })?;
        let path_s = entry.metadata.path().to_string_lossy().into_owned();
        let (info, rel) = index.entry(&path_s)?;
        if info.is_ghost() {
            continue;
        }
        ensure_parents(dest, &rel, pkg_path)?;
        let full = dest.join(&rel);
        let perm = info.mode & 0o7777;
        if info.is_dir() {
            match fs::symlink_metadata(&full) {
                Ok(m) if m.is_dir() => {}
                Ok(_) => {
                    return Err(Error::corrupt(
                        pkg_path,
                        format!("directory {path_s:?} collides with another entry"),
                    ));
                }
                Err(_) => {
                    fs::create_dir(&full).map_err(|e| Error::io("creating directory", &full, e))?
                }
            }
            dirs.push((full, perm));
            report.written += 1;
        } else if info.is_symlink() {
            let target = info.linkto.as_deref().unwrap_or("");
            std::os::unix::fs::symlink(target, &full)
                .map_err(|e| Error::io("creating symlink", &full, e))?;
            report.written += 1;
        } else if info.is_regular() {
            let content = entry.content().unwrap_or(&[]);
            if info.nlink > 1 {
                let g = groups.entry(info.inode).or_default();
                g.0.push(full);
                if g.1.is_none() && content.len() as u64 == info.size {
                    index.check(info, content)?;
                    g.1 = Some((rel.clone(), content.to_vec(), perm));
                }
                continue;
            }
            index.check(info, content)?;
            write_new(&full, content, perm)?;
            report.written += 1;
        } else {
            report.skipped_special.push(path_s);
        }
    }
    let mut groups: Vec<_> = groups.into_values().collect();
    groups.sort_by(|a, b| a.0.cmp(&b.0));
    for (paths, holder) in groups {
        let Some((_, content, perm)) = holder else {
            return Err(Error::corrupt(
                pkg_path,
                format!("hardlink group {:?} has no content in the payload", paths),
            ));
        };
        let Some((first, rest)) = paths.split_first() else {
            continue;
        };
        write_new(first, &content, perm)?;
        for p in rest {
            fs::hard_link(first, p).map_err(|e| Error::io("hardlinking", p, e))?;
        }
        report.written += paths.len();
    }
    // Directory modes last, deepest first, so read-only dirs don't block writes.
    dirs.sort();
    for (d, perm) in dirs.into_iter().rev() {
        fs::set_permissions(&d, fs::Permissions::from_mode(perm))
            .map_err(|e| Error::io("setting mode of", &d, e))?;
    }
    Ok(report)
}

#[cfg(test)]
mod tests {
    use super::*;

    /// A package written with the `rpm` crate (a second, independent writer).
    fn built(compression: rpm::CompressionType) -> Vec<u8> {
        let mut b = rpm::PackageBuilder::new("built", "1.0", "MIT", "noarch", "built by rpm-rs");
        b.release("2")
            .epoch(3)
            .using_config(rpm::BuildConfig::v4().compression(compression))
            .requires(rpm::Dependency::greater_eq("dep", "1.5"))
            .provides(rpm::Dependency::eq("virt", "2"));
        b.with_file_contents(
            b"#!/bin/sh\necho hi\n".to_vec(),
            rpm::FileOptions::new("/usr/bin/built").permissions(0o755),
        )
        .unwrap()
        .with_file_contents(
            b"conf\n".to_vec(),
            rpm::FileOptions::new("/etc/built.conf").config(),
        )
        .unwrap()
        .with_symlink(rpm::FileOptions::symlink("/usr/bin/built-link", "built"))
        .unwrap();
        let pkg = b.build().unwrap();
        let mut out = Vec::new();
        pkg.write(&mut out).unwrap();
        out
    }

    #[test]
    fn rpm_crate_fixtures_read_and_extract() {
        for c in [
            rpm::CompressionType::Gzip,
            rpm::CompressionType::Xz,
            rpm::CompressionType::Zstd,
            rpm::CompressionType::Bzip2,
        ] {
            let bytes = built(c);
            let pkg = crate::header::parse_package(&bytes, Path::new("built.rpm")).unwrap();
            let h = &pkg.header;
            assert_eq!(h.nevra(), "built-3:1.0-2.noarch", "{c:?}");
            assert!(h.requires.iter().any(|d| d.to_string() == "dep >= 1.5"));
            assert!(h.provides.iter().any(|d| d.to_string() == "virt = 2"));
            let conf = h
                .files
                .iter()
                .find(|f| f.path == "/etc/built.conf")
                .unwrap();
            assert!(conf.is_config());
            let tmp = tempfile::tempdir().unwrap();
            let dest = tmp.path().join("root");
            extract_payload(&pkg, &dest).unwrap();
            assert_eq!(
                std::fs::read(dest.join("usr/bin/built")).unwrap(),
                b"#!/bin/sh\necho hi\n"
            );
            let mode = std::fs::metadata(dest.join("usr/bin/built"))
                .unwrap()
                .permissions()
                .mode();
            assert_eq!(mode & 0o7777, 0o755);
            assert_eq!(
                std::fs::read_link(dest.join("usr/bin/built-link")).unwrap(),
                Path::new("built")
            );
            // Any flipped payload byte is caught (payload digest or decompression).
            let mut bad = bytes.clone();
            let n = bad.len();
            bad[n - 20] ^= 0x55;
            let err = crate::header::parse_package(&bad, Path::new("bad.rpm")).unwrap_err();
            assert!(err.to_string().contains("bad.rpm"), "{err}");
        }
    }

    #[test]
    fn payload_path_validation() {
        let cases: &[(&str, Option<&str>)] = &[
            ("/usr/bin/foo", Some("usr/bin/foo")),
            ("./usr/bin/foo", Some("usr/bin/foo")),
            ("/usr/./bin", Some("usr/bin")),
            ("/usr/../etc/passwd", None),
            ("/../../etc/passwd", None),
            ("usr/bin/foo", None),
            ("/", None),
            ("/a/b/..", None),
        ];
        for &(p, want) in cases {
            let got = safe_relative_path(p).ok();
            assert_eq!(got.as_deref(), want.map(Path::new), "{p}");
        }
    }
}
