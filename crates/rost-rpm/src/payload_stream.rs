//! Payload contents handed to a callback, verified, without touching the disk.
//!
//! For importers that store file contents elsewhere (rost-compose writes them
//! straight into an OSTree repository): every regular file of the payload is
//! matched with its header entry, its size and digest are checked, and hardlink
//! group members all receive the content that rpm stores only once.

use std::collections::HashMap;

use sha2::Digest;

use crate::error::{Error, Result};
use crate::header::{FileInfo, RpmPackage};

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

/// Calls `f(info, content)` for every non-ghost regular file of `pkg`'s payload,
/// after checking the content against the header's size and digest.
pub fn for_each_regular_file(
    pkg: &RpmPackage,
    mut f: impl FnMut(&FileInfo, &[u8]) -> Result<()>,
) -> Result<()> {
    let pkg_path = pkg.path();
    let by_path: HashMap<&str, &FileInfo> = pkg
        .header
        .files
        .iter()
        .map(|f| (f.path.as_str(), f))
        .collect();
    let algo = pkg
        .inner
        .metadata
        .get_file_digest_algorithm()
        .unwrap_or(rpm::DigestAlgorithm::Md5);
    let check = |info: &FileInfo, content: &[u8]| -> Result<()> {
        if content.len() as u64 != info.size {
            return Err(Error::corrupt(
                pkg_path,
                format!(
                    "{}: payload has {} bytes, header says {}",
                    info.path,
                    content.len(),
                    info.size
                ),
            ));
        }
        if let Some(expected) = &info.digest
            && let Some(actual) = digest_hex(algo, content)
            && !actual.eq_ignore_ascii_case(expected)
        {
            return Err(Error::ChecksumMismatch {
                what: format!("{}: {}", pkg_path.display(), info.path),
                expected: expected.clone(),
                actual,
            });
        }
        Ok(())
    };
    // Hardlink groups: members seen before the one carrying the content wait here.
    let mut waiting: HashMap<(u32, u32), Vec<&FileInfo>> = HashMap::new();
    let mut held: HashMap<(u32, u32), Vec<u8>> = HashMap::new();
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
        let Some(info) = by_path.get(path_s.as_str()).copied() else {
            return Err(Error::corrupt(
                pkg_path,
                format!("payload entry {path_s:?} is not in the header"),
            ));
        };
        crate::payload::safe_relative_path(&path_s).map_err(|r| Error::corrupt(pkg_path, r))?;
        if info.is_ghost() || !info.is_regular() {
            continue;
        }
        let content = entry.content().unwrap_or(&[]);
        if info.nlink > 1 && info.size > 0 {
            if let Some(c) = held.get(&info.inode) {
                f(info, c)?;
            } else if content.len() as u64 == info.size {
                check(info, content)?;
                for w in waiting.remove(&info.inode).unwrap_or_default() {
                    f(w, content)?;
                }
                f(info, content)?;
                held.insert(info.inode, content.to_vec());
            } else {
                waiting.entry(info.inode).or_default().push(info);
            }
            continue;
        }
        check(info, content)?;
        f(info, content)?;
    }
    if let Some(w) = waiting.into_values().flatten().next() {
        return Err(Error::corrupt(
            pkg_path,
            format!("hardlink group of {} has no content in the payload", w.path),
        ));
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::path::Path;

    #[test]
    fn streams_verified_contents() {
        let mut b = rpm::PackageBuilder::new("s", "1", "MIT", "noarch", "s");
        b.with_file_contents(
            b"one\n".to_vec(),
            rpm::FileOptions::new("/usr/share/s/one").permissions(0o644),
        )
        .unwrap()
        .with_symlink(rpm::FileOptions::symlink("/usr/share/s/link", "one"))
        .unwrap();
        let mut bytes = Vec::new();
        b.build().unwrap().write(&mut bytes).unwrap();
        let pkg = crate::header::parse_package(&bytes, Path::new("s.rpm")).unwrap();
        let mut seen = Vec::new();
        for_each_regular_file(&pkg, |i, c| {
            seen.push((i.path.clone(), c.to_vec()));
            Ok(())
        })
        .unwrap();
        assert_eq!(
            seen,
            vec![("/usr/share/s/one".to_owned(), b"one\n".to_vec())]
        );
    }
}
