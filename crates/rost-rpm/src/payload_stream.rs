//! Payload contents handed to a callback, verified, without touching the disk.
//!
//! For importers that store file contents elsewhere (rost-compose writes them
//! straight into an OSTree repository): every regular file of the payload is
//! matched with its header entry, its size and digest are checked, and hardlink
//! group members all receive the content that rpm stores only once.

use std::collections::HashMap;

use crate::error::{Error, Result};
use crate::header::{FileInfo, RpmPackage};

/// Calls `f(info, content)` for every non-ghost regular file of `pkg`'s payload,
/// after checking the content against the header's size and digest.
pub fn for_each_regular_file(
    pkg: &RpmPackage,
    mut f: impl FnMut(&FileInfo, &[u8]) -> Result<()>,
) -> Result<()> {
    let index = crate::payload::PayloadIndex::new(pkg);
    let pkg_path = index.pkg_path;
    let check = |info: &FileInfo, content: &[u8]| index.check(info, content);
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
        let (info, _) = index.entry(&path_s)?;
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
