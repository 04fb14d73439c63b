//! Object identities: [`Checksum`] (sha256) and [`ObjectType`].

use std::fmt;
use std::str::FromStr;

use crate::Error;

/// A SHA-256 object id. Displays as 64 lowercase hex digits.
#[derive(Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct Checksum(pub [u8; 32]);

impl Checksum {
    /// Builds a checksum from 32 raw bytes, as stored inside dirtrees and commits.
    pub fn from_slice(b: &[u8]) -> Option<Checksum> {
        Some(Checksum(b.try_into().ok()?))
    }

    /// SHA-256 of `data`.
    pub fn of(data: &[u8]) -> Checksum {
        use sha2::Digest;
        Checksum(sha2::Sha256::digest(data).into())
    }

    /// Lowercase hex form.
    pub fn to_hex(&self) -> String {
        hex::encode(self.0)
    }

    /// Whether `s` is a full checksum string: 64 characters of `[0-9a-f]`.
    pub fn is_valid_hex(s: &str) -> bool {
        s.len() == 64
            && s.bytes()
                .all(|c| c.is_ascii_digit() || (b'a'..=b'f').contains(&c))
    }
}

impl fmt::Display for Checksum {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let mut buf = [0u8; 64];
        // hex::encode_to_slice cannot fail for a 64-byte buffer.
        let _ = hex::encode_to_slice(self.0, &mut buf);
        f.write_str(std::str::from_utf8(&buf).map_err(|_| fmt::Error)?)
    }
}

impl fmt::Debug for Checksum {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "Checksum({self})")
    }
}

impl FromStr for Checksum {
    type Err = Error;
    fn from_str(s: &str) -> Result<Self, Error> {
        if !Checksum::is_valid_hex(s) {
            return Err(Error::InvalidChecksum(s.to_owned()));
        }
        let mut out = [0u8; 32];
        hex::decode_to_slice(s, &mut out).map_err(|_| Error::InvalidChecksum(s.to_owned()))?;
        Ok(Checksum(out))
    }
}

/// The kind of an object, which determines its file extension and format.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub enum ObjectType {
    /// A file, symlink (content object): `.file` / `.filez`.
    File,
    /// A directory listing: `.dirtree`.
    DirTree,
    /// Directory ownership, mode and xattrs: `.dirmeta`.
    DirMeta,
    /// A commit: `.commit`.
    Commit,
    /// A deleted-commit marker: `.commit-tombstone`.
    TombstoneCommit,
    /// Detached commit metadata (signatures): `.commitmeta`.
    CommitMeta,
}

impl ObjectType {
    /// Every object type, in OSTree's enum order.
    pub const ALL: [ObjectType; 6] = [
        ObjectType::File,
        ObjectType::DirTree,
        ObjectType::DirMeta,
        ObjectType::Commit,
        ObjectType::TombstoneCommit,
        ObjectType::CommitMeta,
    ];

    /// The on-disk extension (without the dot), for non-archive modes.
    pub fn extension(self) -> &'static str {
        match self {
            ObjectType::File => "file",
            ObjectType::DirTree => "dirtree",
            ObjectType::DirMeta => "dirmeta",
            ObjectType::Commit => "commit",
            ObjectType::TombstoneCommit => "commit-tombstone",
            ObjectType::CommitMeta => "commitmeta",
        }
    }

    /// Parses an extension (`filez` is accepted as [`ObjectType::File`]).
    pub fn from_extension(ext: &str) -> Option<ObjectType> {
        Some(match ext {
            "file" | "filez" => ObjectType::File,
            "dirtree" => ObjectType::DirTree,
            "dirmeta" => ObjectType::DirMeta,
            "commit" => ObjectType::Commit,
            "commit-tombstone" => ObjectType::TombstoneCommit,
            "commitmeta" => ObjectType::CommitMeta,
            _ => return None,
        })
    }

    /// OSTree's numeric value for this type (used in deltas and `ostree.sizes`).
    pub fn as_u8(self) -> u8 {
        match self {
            ObjectType::File => 1,
            ObjectType::DirTree => 2,
            ObjectType::DirMeta => 3,
            ObjectType::Commit => 4,
            ObjectType::TombstoneCommit => 5,
            ObjectType::CommitMeta => 6,
        }
    }

    /// Whether this is a metadata object (stored uncompressed, hashed as bytes).
    pub fn is_meta(self) -> bool {
        self != ObjectType::File
    }
}

impl fmt::Display for ObjectType {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.extension())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parses_and_displays_hex() {
        let s = "446a0ef11b7cc167f3b603e585c7eeeeb675faa412d5ec73f62988eb0b6c5488";
        let c: Checksum = s.parse().unwrap();
        assert_eq!(c.to_string(), s);
        for bad in [
            "",
            "446A0EF11B7CC167F3B603E585C7EEEEB675FAA412D5EC73F62988EB0B6C5488",
            &s[1..],
            "zz",
        ] {
            assert!(bad.parse::<Checksum>().is_err(), "{bad}");
        }
    }

    #[test]
    fn extensions_roundtrip() {
        for t in ObjectType::ALL {
            assert_eq!(ObjectType::from_extension(t.extension()), Some(t));
        }
        assert_eq!(ObjectType::from_extension("filez"), Some(ObjectType::File));
    }
}
