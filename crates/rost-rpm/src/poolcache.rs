//! Binary cache of a repository's parsed primary metadata — rost's counterpart
//! of libsolv's `.solv` files.
//!
//! After primary is parsed, its packages are written to
//! `<cachedir>/<repoid>/<repomd-sha256>/primary.rostpkgs`; the next load of the
//! same repository revision reads that file instead of decompressing and parsing
//! XML. The file is keyed by the repomd checksum and the primary checksum (both
//! also stored inside it) and by [`FORMAT_VERSION`], so a new repomd, a new
//! primary or a new rost with a different layout never reads a stale file. It
//! holds every package of primary, before `exclude`/`includepkgs` filtering, so
//! changing those options in a `.repo` file does not need a new cache.
//!
//! Layout:
//! ```text
//! b"ROSTPKGS" | format version (u32 LE) | body | SHA-256 of all that precedes (32 bytes)
//! body = postcard(Key) ++ postcard(Some(package))… ++ postcard(None::<RepoPackage>)
//! ```
//!
//! Files are written to a temporary file in the same directory and renamed into
//! place, so readers see either the old file or the complete new one. Reading
//! treats the file as untrusted: its size is capped ([`MAX_FILE_SIZE`]), the
//! digest must match before anything beyond the key is decoded, and decoding is
//! bounds-checked (a length prefix can never read past the buffer or reserve
//! more than serde's cautious 1 MiB preallocation; packages are records, not one
//! length-prefixed sequence, so they can be streamed while primary is parsed).
//! Any failure is an error the caller answers by parsing the XML again.
//!
//! Why postcard: it is a serde format with a stable, documented wire
//! specification (1.0), small and actively maintained, decoding from a slice
//! with every length checked against the remaining input; the types already
//! derive serde, so there is no hand-written codec to get wrong. bincode was
//! the other serde candidate but its upstream stopped development in 2025;
//! rkyv's zero-copy archives would need the pool to work on archived types (a
//! rewrite of [`crate::solve`]) and its validation pass over the whole archive
//! costs much of what it saves, while the dominant cost left here — one
//! allocation per string — would remain in the pool anyway.

use std::io::{Read, Write};
use std::path::Path;

use serde::{Deserialize, Serialize};
use sha2::Digest;

use crate::error::{Error, Result};
use crate::repomd::RepoPackage;

/// Version of the on-disk layout; bump whenever [`RepoPackage`],
/// [`crate::Dependency`] or [`crate::evr::Sense`] change shape.
pub const FORMAT_VERSION: u32 = 1;

/// Cache files larger than this are neither read nor written (Fedora's primary
/// caches to ~100 MiB).
pub const MAX_FILE_SIZE: u64 = 2 << 30;

/// File name of the cache inside a repository revision's directory.
pub const FILE_NAME: &str = "primary.rostpkgs";

const MAGIC: &[u8; 8] = b"ROSTPKGS";
const HEAD_LEN: usize = MAGIC.len() + 4;
const DIGEST_LEN: usize = 32;

/// What a cache file must match to be used.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Key {
    /// SHA-256 (hex) of the repomd.xml the packages came from.
    pub repomd_checksum: String,
    /// Checksum (hex) of the primary file, as repomd gives it.
    pub primary_checksum: String,
}

fn corrupt(path: &Path, reason: impl Into<String>) -> Error {
    Error::corrupt(path, reason)
}

/// A writer hashing what passes through it.
struct HashingWriter<W> {
    inner: W,
    hasher: sha2::Sha256,
}

impl<W: Write> Write for HashingWriter<W> {
    fn write(&mut self, buf: &[u8]) -> std::io::Result<usize> {
        let n = self.inner.write(buf)?;
        self.hasher.update(&buf[..n]);
        Ok(n)
    }

    fn flush(&mut self) -> std::io::Result<()> {
        self.inner.flush()
    }
}

fn io_string(e: impl std::fmt::Display) -> String {
    e.to_string()
}

fn write_head<W: Write>(out: &mut W, key: &Key) -> std::result::Result<(), String> {
    out.write_all(MAGIC).map_err(io_string)?;
    out.write_all(&FORMAT_VERSION.to_le_bytes())
        .map_err(io_string)?;
    postcard::to_io(key, out).map_err(io_string)?;
    Ok(())
}

fn write_records<W: Write>(
    out: &mut W,
    packages: &[RepoPackage],
) -> std::result::Result<(), String> {
    for p in packages {
        postcard::to_io(&Some(p), &mut *out).map_err(io_string)?;
    }
    Ok(())
}

fn write_end<W: Write>(out: &mut W) -> std::result::Result<(), String> {
    postcard::to_io(&None::<&RepoPackage>, out).map_err(io_string)?;
    Ok(())
}

/// Encodes a cache file's bytes.
pub fn encode(key: &Key, packages: &[RepoPackage]) -> std::result::Result<Vec<u8>, String> {
    let mut out = Vec::new();
    write_head(&mut out, key)?;
    write_records(&mut out, packages)?;
    write_end(&mut out)?;
    let digest = sha2::Sha256::digest(&out);
    out.extend_from_slice(&digest);
    Ok(out)
}

/// Decodes a cache file's bytes, checking them against `key`.
pub fn decode(bytes: &[u8], key: &Key) -> std::result::Result<Vec<RepoPackage>, String> {
    if bytes.len() < HEAD_LEN + DIGEST_LEN || &bytes[..MAGIC.len()] != MAGIC {
        return Err("not a rost package cache".into());
    }
    let mut version = [0u8; 4];
    version.copy_from_slice(&bytes[MAGIC.len()..HEAD_LEN]);
    let version = u32::from_le_bytes(version);
    if version != FORMAT_VERSION {
        return Err(format!(
            "format version {version}, this rost reads {FORMAT_VERSION}"
        ));
    }
    let (hashed, digest) = bytes.split_at(bytes.len() - DIGEST_LEN);
    let body = &hashed[HEAD_LEN..];
    let (stored, rest): (Key, &[u8]) =
        postcard::take_from_bytes(body).map_err(|e| format!("key: {e}"))?;
    if stored != *key {
        return Err(format!(
            "written for repomd {} / primary {}, not repomd {} / primary {}",
            stored.repomd_checksum,
            stored.primary_checksum,
            key.repomd_checksum,
            key.primary_checksum
        ));
    }
    if sha2::Sha256::digest(hashed).as_slice() != digest {
        return Err("body digest mismatch".into());
    }
    let mut rest = rest;
    let mut packages = Vec::new();
    loop {
        let (record, tail): (Option<RepoPackage>, &[u8]) = postcard::take_from_bytes(rest)
            .map_err(|e| format!("package {}: {e}", packages.len()))?;
        rest = tail;
        match record {
            Some(p) => packages.push(p),
            None => break,
        }
    }
    if !rest.is_empty() {
        return Err(format!("{} trailing bytes", rest.len()));
    }
    Ok(packages)
}

/// Reads the cache file at `path`, if it exists and matches `key`.
///
/// Every failure (missing, stale, truncated, corrupt) is an error; callers fall
/// back to parsing the XML.
pub fn load(path: &Path, key: &Key) -> Result<Vec<RepoPackage>> {
    let file = std::fs::File::open(path).map_err(|e| Error::io("opening", path, e))?;
    let len = file
        .metadata()
        .map_err(|e| Error::io("inspecting", path, e))?
        .len();
    if len > MAX_FILE_SIZE {
        return Err(corrupt(path, format!("{len} bytes, over the cache cap")));
    }
    let mut bytes = Vec::with_capacity(usize::try_from(len).unwrap_or(0));
    // `take` keeps the cap even if the file grows while being read.
    file.take(MAX_FILE_SIZE + 1)
        .read_to_end(&mut bytes)
        .map_err(|e| Error::io("reading", path, e))?;
    if bytes.len() as u64 > MAX_FILE_SIZE {
        return Err(corrupt(path, "over the cache cap"));
    }
    decode(&bytes, key).map_err(|r| corrupt(path, r))
}

/// A cache file being written: packages are appended batch by batch (so writing
/// can overlap parsing), and the file appears at its path only on [`Writer::finish`].
/// Dropping a writer unfinished removes its temporary file.
pub struct Writer {
    path: std::path::PathBuf,
    out: std::io::BufWriter<HashingWriter<std::fs::File>>,
    tmp: tempfile::NamedTempFile,
}

impl std::fmt::Debug for Writer {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Writer").field("path", &self.path).finish()
    }
}

impl Writer {
    /// Starts a cache file for `path` (in a temporary file beside it).
    pub fn create(path: &Path, key: &Key) -> Result<Self> {
        let dir = path
            .parent()
            .ok_or_else(|| corrupt(path, "cache path has no directory"))?;
        std::fs::create_dir_all(dir).map_err(|e| Error::io("creating directory", dir, e))?;
        let tmp = tempfile::Builder::new()
            .prefix(".primary.")
            .suffix(".tmp")
            .tempfile_in(dir)
            .map_err(|e| Error::io("creating a temporary file in", dir, e))?;
        let file = tmp
            .as_file()
            .try_clone()
            .map_err(|e| Error::io("opening", tmp.path(), e))?;
        // The hasher sits below the buffer, so it sees large writes.
        let mut out = std::io::BufWriter::with_capacity(
            1 << 20,
            HashingWriter {
                inner: file,
                hasher: sha2::Sha256::new(),
            },
        );
        write_head(&mut out, key).map_err(|r| corrupt(path, r))?;
        Ok(Writer {
            path: path.to_owned(),
            out,
            tmp,
        })
    }

    /// Appends packages.
    pub fn push(&mut self, packages: &[RepoPackage]) -> Result<()> {
        write_records(&mut self.out, packages).map_err(|r| corrupt(&self.path, r))
    }

    /// Ends the file and renames it into place.
    pub fn finish(self) -> Result<()> {
        let Writer { path, mut out, tmp } = self;
        write_end(&mut out).map_err(|r| corrupt(&path, r))?;
        let hashing = out
            .into_inner()
            .map_err(|e| Error::io("writing", &path, e.into_error()))?;
        let digest = hashing.hasher.finalize();
        let mut file = hashing.inner;
        file.write_all(&digest)
            .map_err(|e| Error::io("writing", &path, e))?;
        let len = file
            .metadata()
            .map_err(|e| Error::io("inspecting", tmp.path(), e))?
            .len();
        if len > MAX_FILE_SIZE {
            return Err(corrupt(&path, "over the cache cap; not written"));
        }
        // Readable like the rest of the metadata cache (tempfile creates 0600).
        file.set_permissions(
            <std::fs::Permissions as std::os::unix::fs::PermissionsExt>::from_mode(0o644),
        )
        .map_err(|e| Error::io("setting permissions of", tmp.path(), e))?;
        tmp.persist(&path)
            .map_err(|e| Error::io("renaming into place", &path, e.error))?;
        Ok(())
    }
}

/// Writes the cache file at `path` atomically (temporary file, then rename).
pub fn store(path: &Path, key: &Key, packages: &[RepoPackage]) -> Result<()> {
    let mut w = Writer::create(path, key)?;
    w.push(packages)?;
    w.finish()
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::Dependency;
    use crate::evr::Sense;

    fn key(repomd: &str) -> Key {
        Key {
            repomd_checksum: repomd.into(),
            primary_checksum: "p1".into(),
        }
    }

    fn packages() -> Vec<RepoPackage> {
        (0..50)
            .map(|i| RepoPackage {
                name: format!("pkg{i}"),
                arch: "x86_64".into(),
                epoch: i % 3,
                version: format!("1.{i}"),
                release: "1.fc41".into(),
                checksum_type: "sha256".into(),
                checksum: format!("{i:064x}"),
                href: format!("Packages/pkg{i}.rpm"),
                size: 1000 + u64::from(i),
                repo: 0,
                provides: vec![Dependency {
                    name: format!("pkg{i}"),
                    sense: Sense::EQ,
                    evr: format!("1.{i}-1.fc41"),
                    flags: 0,
                }],
                requires: vec![
                    Dependency::any("/bin/sh"),
                    Dependency::any("(a or b)"),
                    Dependency {
                        name: "libc.so.6()(64bit)".into(),
                        sense: Sense::parse("GE").unwrap_or(Sense::ANY),
                        evr: "2.38".into(),
                        flags: crate::header::sense_flags::PREREQ,
                    },
                ],
                conflicts: vec![Dependency::any("ünïcode")],
                recommends: if i % 2 == 0 {
                    vec![Dependency::any("r")]
                } else {
                    vec![]
                },
                files: vec![format!("/usr/bin/pkg{i}")],
                ..Default::default()
            })
            .collect()
    }

    #[test]
    fn round_trip() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("sub").join(FILE_NAME);
        let pkgs = packages();
        store(&path, &key("r1"), &pkgs).unwrap();
        assert_eq!(load(&path, &key("r1")).unwrap(), pkgs);
        // Nothing but the cache file is left behind.
        let names: Vec<_> = std::fs::read_dir(path.parent().unwrap())
            .unwrap()
            .map(|e| e.unwrap().file_name())
            .collect();
        assert_eq!(names, [FILE_NAME]);
        // Empty repos round-trip too.
        store(&path, &key("r1"), &[]).unwrap();
        assert!(load(&path, &key("r1")).unwrap().is_empty());
    }

    #[test]
    fn checksum_change_invalidates() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join(FILE_NAME);
        store(&path, &key("r1"), &packages()).unwrap();
        let e = load(&path, &key("r2")).unwrap_err().to_string();
        assert!(e.contains("not repomd r2"), "{e}");
        let other_primary = Key {
            primary_checksum: "p2".into(),
            ..key("r1")
        };
        assert!(load(&path, &other_primary).is_err());
    }

    #[test]
    fn corrupt_files_are_rejected() {
        let good = encode(&key("r1"), &packages()).unwrap();
        assert_eq!(decode(&good, &key("r1")).unwrap(), packages());
        // Every truncation fails, none panics.
        for n in (0..good.len()).step_by(97) {
            assert!(decode(&good[..n], &key("r1")).is_err(), "truncated at {n}");
        }
        // Flipped bytes anywhere fail (magic, version, digest, key, packages).
        for i in (0..good.len()).step_by(31) {
            let mut bad = good.clone();
            bad[i] ^= 0x40;
            assert!(decode(&bad, &key("r1")).is_err(), "flipped byte {i}");
        }
        // Trailing garbage fails.
        let mut long = good.clone();
        long.push(0);
        assert!(decode(&long, &key("r1")).is_err());
        // A newer format version is not read.
        let mut newer = good.clone();
        newer[8..12].copy_from_slice(&(FORMAT_VERSION + 1).to_le_bytes());
        assert!(
            decode(&newer, &key("r1"))
                .unwrap_err()
                .contains("format version")
        );
    }

    #[test]
    fn hostile_lengths_do_not_allocate() {
        // A correctly digested body whose first record has an invalid tag, or
        // whose first string claims 2^41 bytes: decoding fails without reserving them.
        for tail in [
            &[0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0x3f][..],
            &[0x01, 0x80, 0x80, 0x80, 0x80, 0x80, 0x40, b'x'][..],
        ] {
            let mut body = postcard::to_allocvec(&key("r1")).unwrap();
            body.extend_from_slice(tail);
            let mut file = Vec::new();
            file.extend_from_slice(MAGIC);
            file.extend_from_slice(&FORMAT_VERSION.to_le_bytes());
            file.extend_from_slice(&body);
            let digest = sha2::Sha256::digest(&file);
            file.extend_from_slice(&digest);
            assert!(decode(&file, &key("r1")).is_err());
        }
    }

    #[test]
    fn load_errors_name_the_file() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join(FILE_NAME);
        assert!(load(&path, &key("r1")).is_err());
        std::fs::write(&path, b"garbage").unwrap();
        let e = load(&path, &key("r1")).unwrap_err().to_string();
        assert!(e.contains(FILE_NAME), "{e}");
    }
}
