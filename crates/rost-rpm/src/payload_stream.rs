//! Payload contents handed to a callback, verified, without touching the disk.
//!
//! For importers that store file contents elsewhere (rost-compose writes them
//! straight into an OSTree repository): every regular file of the payload is
//! matched with its header entry, its size and digest are checked, and hardlink
//! group members all receive the content that rpm stores only once.
//!
//! The cpio archive (newc/crc, what rpmbuild writes) is walked here, each
//! entry matched to its header entry by a path lookup: the `rpm` crate's
//! iterator searches the header's file list linearly, with a string
//! conversion per entry, for every payload entry, which made importing a
//! package with thousands of files quadratic. Payloads in rpm's stripped
//! format (`07070X`, packages with files over 4 GiB) still go through the
//! crate's iterator.

use std::collections::HashMap;
use std::io::Read;
use std::path::Path;

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
    let mut groups = Groups::default();
    let payload = &pkg.inner.payload;
    let mut archive = decompress(payload, pkg_path)?;
    let mut magic = [0u8; 6];
    read_exact(&mut archive, &mut magic, pkg_path)?;
    if &magic == b"07070X" {
        drop(archive);
        return for_each_via_crate(pkg, &index, groups, &mut f);
    }
    let mut cpio = Cpio {
        r: archive,
        pos: 6,
        pkg: pkg_path,
    };
    let mut seen: std::collections::HashSet<String> = std::collections::HashSet::new();
    let mut content = Vec::new();
    loop {
        let (name, size) = cpio.entry_header(magic)?;
        if name == "TRAILER!!!" {
            break;
        }
        let path = format!("/{}", name.strip_prefix("./").unwrap_or(&name));
        let (info, _) = index.entry(&path)?;
        if !seen.insert(path) {
            return Err(Error::corrupt(
                pkg_path,
                format!("payload holds {} twice", info.path),
            ));
        }
        if info.is_ghost() || !info.is_regular() {
            cpio.skip(size)?;
        } else {
            cpio.data(size, &mut content)?;
            groups.file(&index, info, &content, &mut f)?;
        }
        read_exact(&mut cpio.r, &mut magic, pkg_path)?;
        cpio.pos += 6;
    }
    groups.finish(pkg_path)
}

/// A decompressing reader over the payload bytes (compression by magic).
fn decompress<'a>(payload: &'a [u8], pkg: &Path) -> Result<Box<dyn Read + 'a>> {
    let io = |e: std::io::Error| Error::io("decompressing the payload of", pkg, e);
    Ok(match rpm::CompressionType::detect(payload) {
        rpm::CompressionType::None => Box::new(payload),
        rpm::CompressionType::Gzip => Box::new(flate2::bufread::GzDecoder::new(payload)),
        rpm::CompressionType::Zstd => {
            Box::new(zstd::stream::read::Decoder::with_buffer(payload).map_err(io)?)
        }
        rpm::CompressionType::Xz => Box::new(liblzma::bufread::XzDecoder::new(payload)),
        rpm::CompressionType::Bzip2 => Box::new(bzip2::bufread::BzDecoder::new(payload)),
    })
}

fn read_exact(r: &mut dyn Read, buf: &mut [u8], pkg: &Path) -> Result<()> {
    r.read_exact(buf)
        .map_err(|e| Error::io("reading the payload of", pkg, e))
}

/// A newc/crc cpio archive being read, after an entry's magic.
struct Cpio<'a, 'p> {
    r: Box<dyn Read + 'a>,
    /// Bytes consumed so far (entries are aligned to 4 bytes).
    pos: u64,
    pkg: &'p Path,
}

impl Cpio<'_, '_> {
    fn read(&mut self, buf: &mut [u8]) -> Result<()> {
        read_exact(&mut self.r, buf, self.pkg)?;
        self.pos += buf.len() as u64;
        Ok(())
    }

    fn align(&mut self) -> Result<()> {
        let pad = (4 - self.pos % 4) % 4;
        let mut b = [0u8; 3];
        self.read(&mut b[..pad as usize])
    }

    /// Reads the rest of an entry header (magic already read): name and data size.
    fn entry_header(&mut self, magic: [u8; 6]) -> Result<(String, u64)> {
        if &magic != b"070701" && &magic != b"070702" {
            return Err(Error::corrupt(
                self.pkg,
                format!(
                    "payload entry with cpio magic {:?}",
                    String::from_utf8_lossy(&magic)
                ),
            ));
        }
        let mut h = [0u8; 104];
        self.read(&mut h)?;
        let field = |i: usize| -> Result<u64> {
            std::str::from_utf8(&h[i * 8..i * 8 + 8])
                .ok()
                .and_then(|s| u64::from_str_radix(s, 16).ok())
                .ok_or_else(|| Error::corrupt(self.pkg, "payload entry with a bad cpio header"))
        };
        let (size, namesize) = (field(6)?, field(11)?);
        if namesize == 0 || namesize > 65536 {
            return Err(Error::corrupt(
                self.pkg,
                "payload entry with a bad name length",
            ));
        }
        let mut name = vec![0u8; namesize as usize];
        self.read(&mut name)?;
        if name.pop() != Some(0) {
            return Err(Error::corrupt(
                self.pkg,
                "payload entry name is not NUL-terminated",
            ));
        }
        self.align()?;
        let name = String::from_utf8(name)
            .map_err(|_| Error::corrupt(self.pkg, "payload entry name is not UTF-8"))?;
        Ok((name, size))
    }

    /// Reads an entry's data into `buf`.
    fn data(&mut self, size: u64, buf: &mut Vec<u8>) -> Result<()> {
        buf.clear();
        let n = (&mut self.r)
            .take(size)
            .read_to_end(buf)
            .map_err(|e| Error::io("reading the payload of", self.pkg, e))?;
        if n as u64 != size {
            return Err(Error::corrupt(self.pkg, "payload ends inside an entry"));
        }
        self.pos += size;
        self.align()
    }

    fn skip(&mut self, size: u64) -> Result<()> {
        let n = std::io::copy(&mut (&mut self.r).take(size), &mut std::io::sink())
            .map_err(|e| Error::io("reading the payload of", self.pkg, e))?;
        if n != size {
            return Err(Error::corrupt(self.pkg, "payload ends inside an entry"));
        }
        self.pos += size;
        self.align()
    }
}

/// The `rpm` crate's payload iterator (for the stripped cpio format).
fn for_each_via_crate<'a>(
    pkg: &RpmPackage,
    index: &crate::payload::PayloadIndex<'a>,
    mut groups: Groups<'a>,
    f: &mut dyn FnMut(&FileInfo, &[u8]) -> Result<()>,
) -> Result<()> {
    let pkg_path = index.pkg_path;
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
        groups.file(index, info, entry.content().unwrap_or(&[]), f)?;
    }
    groups.finish(pkg_path)
}

/// Hardlink groups: members seen before the one carrying the content wait
/// in `waiting`; the content, once seen, is `held` for later members.
#[derive(Default)]
struct Groups<'a> {
    waiting: HashMap<(u32, u32), Vec<&'a FileInfo>>,
    held: HashMap<(u32, u32), Vec<u8>>,
}

impl<'a> Groups<'a> {
    /// Hands one regular file of the payload to `f`, checked.
    fn file(
        &mut self,
        index: &crate::payload::PayloadIndex<'a>,
        info: &'a FileInfo,
        content: &[u8],
        f: &mut dyn FnMut(&FileInfo, &[u8]) -> Result<()>,
    ) -> Result<()> {
        let check = |info: &FileInfo, content: &[u8]| index.check(info, content);
        let (waiting, held) = (&mut self.waiting, &mut self.held);
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
            return Ok(());
        }
        check(info, content)?;
        f(info, content)
    }

    /// Fails if a hardlink group never got its content.
    fn finish(self, pkg_path: &Path) -> Result<()> {
        if let Some(w) = self.waiting.into_values().flatten().next() {
            return Err(Error::corrupt(
                pkg_path,
                format!("hardlink group of {} has no content in the payload", w.path),
            ));
        }
        Ok(())
    }
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

    #[test]
    fn walks_the_cpio_archive_of_every_compression() {
        for c in [
            rpm::CompressionType::None,
            rpm::CompressionType::Gzip,
            rpm::CompressionType::Xz,
            rpm::CompressionType::Zstd,
            rpm::CompressionType::Bzip2,
        ] {
            let mut b = rpm::PackageBuilder::new("m", "1", "MIT", "noarch", "m");
            b.using_config(rpm::BuildConfig::v4().compression(c));
            // Sizes that leave every padding length (0 to 3) behind the data.
            for (i, len) in [0usize, 1, 2, 3, 4, 5, 300_001].into_iter().enumerate() {
                let content: Vec<u8> = (0..len).map(|k| (k * 7 + i) as u8).collect();
                b.with_file_contents(
                    content,
                    rpm::FileOptions::new(format!("/usr/share/m/f{i}{}", "x".repeat(i))),
                )
                .unwrap();
            }
            b.with_dir_entry(rpm::FileOptions::dir("/usr/share/m/d"))
                .unwrap()
                .with_symlink(rpm::FileOptions::symlink("/usr/share/m/l", "f1x"))
                .unwrap()
                .with_ghost(rpm::FileOptions::ghost("/usr/share/m/ghost"))
                .unwrap();
            let mut bytes = Vec::new();
            b.build().unwrap().write(&mut bytes).unwrap();
            let pkg = crate::header::parse_package(&bytes, Path::new("m.rpm")).unwrap();
            let mut seen = Vec::new();
            for_each_regular_file(&pkg, |i, content| {
                seen.push((i.path.clone(), content.to_vec()));
                Ok(())
            })
            .unwrap();
            seen.sort();
            let want: Vec<(String, Vec<u8>)> = [0usize, 1, 2, 3, 4, 5, 300_001]
                .into_iter()
                .enumerate()
                .map(|(i, len)| {
                    (
                        format!("/usr/share/m/f{i}{}", "x".repeat(i)),
                        (0..len).map(|k| (k * 7 + i) as u8).collect(),
                    )
                })
                .collect();
            assert_eq!(seen, want, "{c:?}");
        }
    }
}
