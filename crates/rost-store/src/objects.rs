//! The OSTree object formats: dirmeta, dirtree, commit, and content headers.
//!
//! Pure: bytes in, structures out (and back). uid, gid, mode and timestamps are
//! stored big-endian inside the GVariants, as libostree does; this module does
//! the swapping so callers deal in native numbers.

use std::sync::LazyLock;

use sha2::Digest;

use crate::gvariant::{GvError, Type, Value};
use crate::{Checksum, Error, ObjectType, Result};

/// GVariant type of a dirmeta object.
pub const DIRMETA_TYPE: &str = "(uuua(ayay))";
/// GVariant type of a dirtree object.
pub const DIRTREE_TYPE: &str = "(a(say)a(sayay))";
/// GVariant type of a commit object.
pub const COMMIT_TYPE: &str = "(a{sv}aya(say)sstayay)";
/// GVariant type of the content-object header that is hashed.
pub const FILE_HEADER_TYPE: &str = "(uuuusa(ayay))";
/// GVariant type of the header inside an archive-mode `.filez` object.
pub const ARCHIVE_HEADER_TYPE: &str = "(tuuuusa(ayay))";
/// GVariant type of detached commit metadata and other `a{sv}` dictionaries.
pub const METADATA_TYPE: &str = "a{sv}";

/// Upper bound on a metadata object's size (libostree's `OSTREE_MAX_METADATA_SIZE`).
pub const MAX_METADATA_SIZE: u64 = 128 * 1024 * 1024;

/// File-type bits of a mode.
pub const S_IFMT: u32 = 0o170000;
/// Directory bit.
pub const S_IFDIR: u32 = 0o040000;
/// Regular file bit.
pub const S_IFREG: u32 = 0o100000;
/// Symlink bit.
pub const S_IFLNK: u32 = 0o120000;

pub(crate) fn ty(s: &'static str) -> &'static Type {
    static TYPES: LazyLock<Vec<(&'static str, Type)>> = LazyLock::new(|| {
        [
            DIRMETA_TYPE,
            DIRTREE_TYPE,
            COMMIT_TYPE,
            FILE_HEADER_TYPE,
            ARCHIVE_HEADER_TYPE,
            METADATA_TYPE,
            "(ayay)",
            "(say)",
            "(sayay)",
        ]
        .into_iter()
        .map(|s| {
            (
                s,
                Type::parse(s).expect("static GVariant type string is valid"),
            )
        })
        .collect()
    });
    TYPES
        .iter()
        .find(|(k, _)| *k == s)
        .map(|(_, t)| t)
        .expect("GVariant type is registered in ty()")
}

/// Extended attributes: (name without NUL, value), kept sorted by name.
pub type Xattrs = Vec<(Vec<u8>, Vec<u8>)>;

fn xattrs_to_value(x: &Xattrs) -> Value {
    let mut sorted: Vec<&(Vec<u8>, Vec<u8>)> = x.iter().collect();
    sorted.sort_by(|a, b| a.0.cmp(&b.0));
    Value::Array(
        ty("(ayay)").clone(),
        sorted
            .into_iter()
            .map(|(n, v)| {
                let mut name = n.clone();
                name.push(0);
                Value::Tuple(vec![Value::Bytes(name), Value::Bytes(v.clone())])
            })
            .collect(),
    )
}

fn xattrs_from_value(v: &Value) -> std::result::Result<Xattrs, &'static str> {
    let Value::Array(_, items) = v else {
        return Err("xattrs are not an array");
    };
    let mut out = Xattrs::with_capacity(items.len());
    for it in items {
        let Value::Tuple(m) = it else {
            return Err("xattr is not a tuple");
        };
        let (Some(Value::Bytes(n)), Some(Value::Bytes(val))) = (m.first(), m.get(1)) else {
            return Err("xattr is not (ayay)");
        };
        let Some((0, name)) = n.split_last() else {
            return Err("xattr name lacks its NUL");
        };
        out.push((name.to_vec(), val.clone()));
    }
    Ok(out)
}

fn be(v: &Value) -> u32 {
    match v {
        Value::U32(x) => u32::from_be(x.to_le()),
        _ => 0,
    }
}

fn corrupt(object: &str, ty: ObjectType, e: impl std::fmt::Display) -> Error {
    Error::Corrupt {
        object: format!("{object}.{ty}"),
        reason: e.to_string(),
    }
}

/// Ownership, mode and xattrs of a directory.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct DirMeta {
    /// Owner uid.
    pub uid: u32,
    /// Owner gid.
    pub gid: u32,
    /// Full mode including `S_IFDIR`.
    pub mode: u32,
    /// Extended attributes.
    pub xattrs: Xattrs,
}

impl DirMeta {
    /// Serializes to the object bytes.
    pub fn to_bytes(&self) -> Vec<u8> {
        Value::Tuple(vec![
            Value::U32(self.uid.to_be()),
            Value::U32(self.gid.to_be()),
            Value::U32(self.mode.to_be()),
            xattrs_to_value(&self.xattrs),
        ])
        .to_bytes()
    }

    /// Parses object bytes; `name` labels errors.
    pub fn parse(b: &[u8], name: &str) -> Result<DirMeta> {
        let v = Value::from_bytes(ty(DIRMETA_TYPE), b)
            .map_err(|e| corrupt(name, ObjectType::DirMeta, e))?;
        let Value::Tuple(m) = v else {
            return Err(corrupt(name, ObjectType::DirMeta, "not a tuple"));
        };
        let xattrs = xattrs_from_value(&m[3]).map_err(|e| corrupt(name, ObjectType::DirMeta, e))?;
        if xattrs.windows(2).any(|w| w[0].0 >= w[1].0) {
            return Err(corrupt(name, ObjectType::DirMeta, "xattrs not sorted"));
        }
        Ok(DirMeta {
            uid: be(&m[0]),
            gid: be(&m[1]),
            mode: be(&m[2]),
            xattrs,
        })
    }
}

/// A file entry in a dirtree: name and content checksum.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct TreeFile {
    /// Entry name.
    pub name: String,
    /// Content object checksum.
    pub checksum: Checksum,
}

/// A subdirectory entry in a dirtree.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct TreeDir {
    /// Entry name.
    pub name: String,
    /// The subdirectory's dirtree.
    pub tree: Checksum,
    /// The subdirectory's dirmeta.
    pub meta: Checksum,
}

/// A directory listing.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct DirTree {
    /// Non-directories, sorted by name (strcmp).
    pub files: Vec<TreeFile>,
    /// Subdirectories, sorted by name (strcmp).
    pub dirs: Vec<TreeDir>,
}

/// Checks a dirtree entry name as libostree does (its wording).
pub fn validate_filename(name: &str) -> std::result::Result<(), String> {
    if name.is_empty() {
        Err(crate::msg::INVALID_EMPTY_FILENAME.to_owned())
    } else if name == "." {
        Err(crate::msg::INVALID_DOT_FILENAME.to_owned())
    } else if name == ".." {
        Err(crate::msg::INVALID_DOTDOT_FILENAME.to_owned())
    } else if name.contains('/') {
        Err(crate::msg::invalid_slash_in_filename(name))
    } else {
        Ok(())
    }
}

impl DirTree {
    /// Serializes to the object bytes, sorting both lists first.
    pub fn to_bytes(&self) -> Vec<u8> {
        let mut files: Vec<&TreeFile> = self.files.iter().collect();
        files.sort_by(|a, b| a.name.as_bytes().cmp(b.name.as_bytes()));
        let mut dirs: Vec<&TreeDir> = self.dirs.iter().collect();
        dirs.sort_by(|a, b| a.name.as_bytes().cmp(b.name.as_bytes()));
        Value::Tuple(vec![
            Value::Array(
                ty("(say)").clone(),
                files
                    .iter()
                    .map(|f| {
                        Value::Tuple(vec![
                            Value::str(f.name.clone()),
                            Value::Bytes(f.checksum.0.to_vec()),
                        ])
                    })
                    .collect(),
            ),
            Value::Array(
                ty("(sayay)").clone(),
                dirs.iter()
                    .map(|d| {
                        Value::Tuple(vec![
                            Value::str(d.name.clone()),
                            Value::Bytes(d.tree.0.to_vec()),
                            Value::Bytes(d.meta.0.to_vec()),
                        ])
                    })
                    .collect(),
            ),
        ])
        .to_bytes()
    }

    /// Parses object bytes and validates names and checksum lengths.
    pub fn parse(b: &[u8], name: &str) -> Result<DirTree> {
        let err = |e: &dyn std::fmt::Display| corrupt(name, ObjectType::DirTree, e);
        let v = Value::from_bytes(ty(DIRTREE_TYPE), b).map_err(|e| err(&e))?;
        let Value::Tuple(m) = v else {
            return Err(err(&"not a tuple"));
        };
        let (Value::Array(_, files), Value::Array(_, dirs)) = (&m[0], &m[1]) else {
            return Err(err(&"bad layout"));
        };
        let mut out = DirTree::default();
        for f in files {
            let Value::Tuple(f) = f else {
                return Err(err(&"bad file entry"));
            };
            let n = f[0].as_str().unwrap_or_default().to_owned();
            validate_filename(&n).map_err(|e| err(&e))?;
            let Value::Bytes(c) = &f[1] else {
                return Err(err(&"bad file entry"));
            };
            let checksum = Checksum::from_slice(c).ok_or_else(|| {
                err(&format!(
                    "Invalid checksum of length {} for file {n:?}",
                    c.len()
                ))
            })?;
            out.files.push(TreeFile { name: n, checksum });
        }
        for d in dirs {
            let Value::Tuple(d) = d else {
                return Err(err(&"bad dir entry"));
            };
            let n = d[0].as_str().unwrap_or_default().to_owned();
            validate_filename(&n).map_err(|e| err(&e))?;
            let (Value::Bytes(t), Value::Bytes(mm)) = (&d[1], &d[2]) else {
                return Err(err(&"bad dir entry"));
            };
            let tree = Checksum::from_slice(t).ok_or_else(|| {
                err(&format!(
                    "Invalid checksum of length {} for dir {n:?}",
                    t.len()
                ))
            })?;
            let meta = Checksum::from_slice(mm).ok_or_else(|| {
                err(&format!(
                    "Invalid checksum of length {} for dir {n:?}",
                    mm.len()
                ))
            })?;
            out.dirs.push(TreeDir {
                name: n,
                tree,
                meta,
            });
        }
        Ok(out)
    }
}

/// A commit object.
#[derive(Debug, Clone, PartialEq)]
pub struct Commit {
    /// The `a{sv}` metadata, in its stored order.
    pub metadata: Value,
    /// Parent commit, if any.
    pub parent: Option<Checksum>,
    /// One-line subject.
    pub subject: String,
    /// Body text.
    pub body: String,
    /// Seconds since the epoch, UTC.
    pub timestamp: u64,
    /// Root dirtree.
    pub root_tree: Checksum,
    /// Root dirmeta.
    pub root_meta: Checksum,
}

impl Commit {
    /// Serializes to the object bytes.
    pub fn to_bytes(&self) -> Vec<u8> {
        Value::Tuple(vec![
            self.metadata.clone(),
            Value::Bytes(self.parent.map(|p| p.0.to_vec()).unwrap_or_default()),
            Value::Array(ty("(say)").clone(), vec![]),
            Value::str(self.subject.clone()),
            Value::str(self.body.clone()),
            Value::U64(self.timestamp.to_be()),
            Value::Bytes(self.root_tree.0.to_vec()),
            Value::Bytes(self.root_meta.0.to_vec()),
        ])
        .to_bytes()
    }

    /// Parses object bytes.
    pub fn parse(b: &[u8], name: &str) -> Result<Commit> {
        let err = |e: &dyn std::fmt::Display| corrupt(name, ObjectType::Commit, e);
        let v = Value::from_bytes(ty(COMMIT_TYPE), b).map_err(|e| err(&e))?;
        let Value::Tuple(mut m) = v else {
            return Err(err(&"not a tuple"));
        };
        let csum = |v: &Value, what: &str| -> Result<Checksum> {
            match v {
                Value::Bytes(b) => Checksum::from_slice(b).ok_or_else(|| {
                    err(&format!(
                        "Invalid checksum of length {} for {what}",
                        b.len()
                    ))
                }),
                _ => Err(err(&"bad layout")),
            }
        };
        let parent = match &m[1] {
            Value::Bytes(b) if b.is_empty() => None,
            other => Some(csum(other, "parent")?),
        };
        let root_tree = csum(&m[6], "root tree")?;
        let root_meta = csum(&m[7], "root meta")?;
        let timestamp = match m[5] {
            Value::U64(t) => u64::from_be(t.to_le()),
            _ => 0,
        };
        let subject = m[3].as_str().unwrap_or_default().to_owned();
        let body = m[4].as_str().unwrap_or_default().to_owned();
        let metadata = std::mem::replace(&mut m[0], Value::Bool(false));
        Ok(Commit {
            metadata,
            parent,
            subject,
            body,
            timestamp,
            root_tree,
            root_meta,
        })
    }

    /// `ContentChecksum` as `ostree show` prints it: sha256(root tree ‖ root meta).
    pub fn content_checksum(&self) -> Checksum {
        let mut h = sha2::Sha256::new();
        h.update(self.root_tree.0);
        h.update(self.root_meta.0);
        Checksum(h.finalize().into())
    }

    /// The `version` metadata string, if present.
    pub fn version(&self) -> Option<&str> {
        self.metadata.lookup("version").and_then(Value::as_str)
    }
}

/// The metadata of a content object (what is hashed besides the bytes).
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub struct FileHeader {
    /// Owner uid.
    pub uid: u32,
    /// Owner gid.
    pub gid: u32,
    /// Full mode including `S_IFREG` or `S_IFLNK`.
    pub mode: u32,
    /// Symlink target (empty for regular files).
    pub symlink_target: String,
    /// Extended attributes.
    pub xattrs: Xattrs,
}

impl FileHeader {
    /// Whether this is a symlink.
    pub fn is_symlink(&self) -> bool {
        self.mode & S_IFMT == S_IFLNK
    }

    /// The `(uuuusa(ayay))` bytes.
    pub fn to_bytes(&self) -> Vec<u8> {
        Value::Tuple(vec![
            Value::U32(self.uid.to_be()),
            Value::U32(self.gid.to_be()),
            Value::U32(self.mode.to_be()),
            Value::U32(0),
            Value::str(self.symlink_target.clone()),
            xattrs_to_value(&self.xattrs),
        ])
        .to_bytes()
    }

    /// The archive-mode `(tuuuusa(ayay))` bytes for a payload of `size` bytes.
    pub fn to_archive_bytes(&self, size: u64) -> Vec<u8> {
        Value::Tuple(vec![
            Value::U64(size.to_be()),
            Value::U32(self.uid.to_be()),
            Value::U32(self.gid.to_be()),
            Value::U32(self.mode.to_be()),
            Value::U32(0),
            Value::str(self.symlink_target.clone()),
            xattrs_to_value(&self.xattrs),
        ])
        .to_bytes()
    }

    /// Parses `(uuuusa(ayay))`.
    pub fn parse(b: &[u8]) -> std::result::Result<FileHeader, String> {
        let v = Value::from_bytes(ty(FILE_HEADER_TYPE), b).map_err(|e: GvError| e.to_string())?;
        let Value::Tuple(m) = v else {
            return Err("not a tuple".into());
        };
        Self::from_members(&m)
    }

    fn from_members(m: &[Value]) -> std::result::Result<FileHeader, String> {
        let xattrs = xattrs_from_value(&m[5])?;
        let symlink_target = m[4].as_str().unwrap_or_default().to_owned();
        Ok(FileHeader {
            uid: be(&m[0]),
            gid: be(&m[1]),
            mode: be(&m[2]),
            symlink_target,
            xattrs,
        })
    }

    /// Parses an archive header, returning it and the uncompressed size.
    pub fn parse_archive(b: &[u8]) -> std::result::Result<(FileHeader, u64), String> {
        let v = Value::from_bytes(ty(ARCHIVE_HEADER_TYPE), b).map_err(|e| e.to_string())?;
        let Value::Tuple(m) = v else {
            return Err("not a tuple".into());
        };
        let size = match m[0] {
            Value::U64(s) => u64::from_be(s.to_le()),
            _ => 0,
        };
        let h = Self::from_members(&m[1..])?;
        Ok((h, size))
    }

    /// A hasher primed with the length-prefixed header; feed it the content next.
    pub fn hasher(&self) -> sha2::Sha256 {
        let hdr = self.to_bytes();
        let mut h = sha2::Sha256::new();
        h.update(length_prefix(hdr.len()));
        h.update(&hdr);
        h
    }

    /// The content checksum for this header and `content`.
    pub fn checksum(&self, content: &[u8]) -> Checksum {
        let mut h = self.hasher();
        h.update(content);
        Checksum(h.finalize().into())
    }
}

/// The 8-byte prefix before a serialized header: BE u32 length, then 4 zero bytes.
pub fn length_prefix(len: usize) -> [u8; 8] {
    let mut p = [0u8; 8];
    p[..4].copy_from_slice(&(len as u32).to_be_bytes());
    p
}

/// Splits a length-prefixed `.filez` / stream header off `b`: returns (header, rest).
pub fn split_prefixed(b: &[u8]) -> std::result::Result<(&[u8], &[u8]), &'static str> {
    if b.len() < 8 {
        return Err("too short for its header length");
    }
    let len = u32::from_be_bytes([b[0], b[1], b[2], b[3]]) as usize;
    if b.len() < 8 + len {
        return Err("header length exceeds object size");
    }
    Ok((&b[8..8 + len], &b[8 + len..]))
}

/// The bare-user `user.ostreemeta` xattr value: `(uuua(ayay))`.
pub fn bare_user_meta(h: &FileHeader) -> Vec<u8> {
    DirMeta {
        uid: h.uid,
        gid: h.gid,
        mode: h.mode,
        xattrs: h.xattrs.clone(),
    }
    .to_bytes()
}

/// Parses a `user.ostreemeta` value.
pub fn parse_bare_user_meta(b: &[u8]) -> std::result::Result<(u32, u32, u32, Xattrs), String> {
    let v = Value::from_bytes(ty(DIRMETA_TYPE), b).map_err(|e| e.to_string())?;
    let Value::Tuple(m) = v else {
        return Err("not a tuple".into());
    };
    Ok((be(&m[0]), be(&m[1]), be(&m[2]), xattrs_from_value(&m[3])?))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn hdr(mode: u32, target: &str) -> FileHeader {
        FileHeader {
            uid: 0,
            gid: 0,
            mode,
            symlink_target: target.into(),
            xattrs: vec![],
        }
    }

    #[test]
    fn golden_object_ids_from_real_ostree() {
        let root = DirMeta {
            uid: 0,
            gid: 0,
            mode: 0o40755,
            xattrs: vec![],
        };
        assert_eq!(
            Checksum::of(&root.to_bytes()).to_string(),
            "446a0ef11b7cc167f3b603e585c7eeeeb675faa412d5ec73f62988eb0b6c5488"
        );
        assert_eq!(
            Checksum::of(&DirTree::default().to_bytes()).to_string(),
            "6e340b9cffb37a989ca544e6bb780a2c78901d3fb33738768511a30617afa01d"
        );
        assert_eq!(
            hdr(0o100755, "").checksum(b"hello\n").to_string(),
            "d6f58149fd47ec2be3fafef4fe767915f195e7ae67b9a0c090b842b156cd07f3"
        );
        assert_eq!(
            hdr(0o120777, "hello").checksum(b"").to_string(),
            "73baaba0102e9154b8522687d33eedb8ed1bc78eadb82428b2616144ec502934"
        );
        assert_eq!(
            hdr(0o100644, "").checksum(b"").to_string(),
            "cc700d46f407c6c5ab2d5dde474366a928b7398277e61162e7f8ec06f469f07e"
        );
    }

    #[test]
    fn xattr_example_prefix_matches() {
        let mut h = hdr(0o100644, "");
        h.xattrs = vec![
            (b"user.b".to_vec(), b"BV".to_vec()),
            (b"user.a".to_vec(), b"AV".to_vec()),
        ];
        let c = h.checksum(b"conf=1\n").to_string();
        assert!(c.starts_with("cf7b1722") && c.ends_with("3c15"), "{c}");
    }

    #[test]
    fn commit_roundtrip() {
        let c = Commit {
            metadata: Value::dict_sv([("version".into(), Value::str("1.0"))]),
            parent: Some(Checksum([7; 32])),
            subject: "s".into(),
            body: "".into(),
            timestamp: 1_577_836_800,
            root_tree: Checksum([1; 32]),
            root_meta: Checksum([2; 32]),
        };
        let b = c.to_bytes();
        assert_eq!(Commit::parse(&b, "x").unwrap(), c);
        assert_eq!(c.version(), Some("1.0"));
    }

    #[test]
    fn dirtree_roundtrip_sorted() {
        let t = DirTree {
            files: vec![
                TreeFile {
                    name: "b".into(),
                    checksum: Checksum([1; 32]),
                },
                TreeFile {
                    name: "B".into(),
                    checksum: Checksum([2; 32]),
                },
            ],
            dirs: vec![TreeDir {
                name: "d".into(),
                tree: Checksum([3; 32]),
                meta: Checksum([4; 32]),
            }],
        };
        let back = DirTree::parse(&t.to_bytes(), "x").unwrap();
        assert_eq!(back.files[0].name, "B");
        assert_eq!(back.dirs, t.dirs);
    }

    #[test]
    fn archive_header_roundtrip() {
        let h = hdr(0o100644, "");
        let (back, size) = FileHeader::parse_archive(&h.to_archive_bytes(42)).unwrap();
        assert_eq!((back, size), (h, 42));
    }
}
