//! The repository summary: `(a(s(taya{sv}))a{sv})`, what clients read first.
//!
//! Byte layout as `ostree summary -u` writes it: refs sorted by strcmp; per ref
//! the commit size (host-endian, not swapped — an ostree quirk), the raw
//! checksum and `{ostree.commit.version?, ostree.commit.timestamp (BE)}`; then
//! repo metadata `mode, last-modified (BE), tombstone-commits, static-deltas?,
//! indexed-deltas`.

use std::collections::BTreeMap;
use std::os::fd::AsFd;
use std::path::Path;

use rustix::fs::FileType;
use rustix::io::Errno;

use crate::error::IoContext;
use crate::fsutil::{self, Durability};
use crate::gvariant::{Type, Value};
use crate::{Checksum, Error, ObjectType, Repo, Result};

/// The summary's GVariant type.
pub const SUMMARY_TYPE: &str = "(a(s(taya{sv}))a{sv})";
/// File name of the summary in the repo root.
pub const SUMMARY_FILE: &str = "summary";
/// File name of the summary's detached signatures.
pub const SUMMARY_SIG_FILE: &str = "summary.sig";

/// One ref in a summary.
#[derive(Debug, Clone, PartialEq)]
pub struct SummaryRef {
    /// Ref name.
    pub name: String,
    /// Size of the commit object in bytes.
    pub commit_size: u64,
    /// The commit.
    pub commit: Checksum,
    /// Per-ref metadata (`ostree.commit.timestamp`, `ostree.commit.version`).
    pub metadata: Value,
}

/// A parsed summary.
#[derive(Debug, Clone, PartialEq)]
pub struct Summary {
    /// Refs, sorted by name.
    pub refs: Vec<SummaryRef>,
    /// Repository metadata.
    pub metadata: Value,
}

impl Summary {
    /// Serializes.
    pub fn to_bytes(&self) -> Vec<u8> {
        let refs = self
            .refs
            .iter()
            .map(|r| {
                Value::Tuple(vec![
                    Value::str(r.name.clone()),
                    Value::Tuple(vec![
                        Value::U64(r.commit_size),
                        Value::Bytes(r.commit.0.to_vec()),
                        r.metadata.clone(),
                    ]),
                ])
            })
            .collect();
        Value::Tuple(vec![
            Value::Array(
                Type::parse("(s(taya{sv}))").expect("static GVariant type"),
                refs,
            ),
            self.metadata.clone(),
        ])
        .to_bytes()
    }

    /// Parses summary bytes.
    pub fn parse(b: &[u8]) -> Result<Summary> {
        let bad = |reason: String| Error::Corrupt {
            object: SUMMARY_FILE.into(),
            reason,
        };
        let ty = Type::parse(SUMMARY_TYPE).map_err(|e| bad(e.to_string()))?;
        let v = Value::from_bytes(&ty, b).map_err(|e| bad(e.to_string()))?;
        let Value::Tuple(mut top) = v else {
            return Err(bad("not a tuple".into()));
        };
        let metadata = top.pop().ok_or_else(|| bad("missing metadata".into()))?;
        let Some(Value::Array(_, items)) = top.pop() else {
            return Err(bad("missing refs".into()));
        };
        let mut refs = Vec::with_capacity(items.len());
        for it in items {
            let Value::Tuple(mut m) = it else {
                return Err(bad("bad ref entry".into()));
            };
            let (Some(Value::Tuple(mut inner)), Some(Value::Str(name))) = (m.pop(), m.pop()) else {
                return Err(bad("bad ref entry".into()));
            };
            let meta = inner.pop().ok_or_else(|| bad("bad ref entry".into()))?;
            let (Some(Value::Bytes(c)), Some(Value::U64(size))) = (inner.pop(), inner.pop()) else {
                return Err(bad("bad ref entry".into()));
            };
            let commit =
                Checksum::from_slice(&c).ok_or_else(|| bad(format!("ref {name}: bad checksum")))?;
            refs.push(SummaryRef {
                name,
                commit_size: size,
                commit,
                metadata: meta,
            });
        }
        if refs
            .windows(2)
            .any(|w| w[0].name.as_bytes() >= w[1].name.as_bytes())
        {
            return Err(bad("refs are not sorted".into()));
        }
        Ok(Summary { refs, metadata })
    }

    /// Looks a ref up (binary search, as clients do).
    pub fn lookup(&self, name: &str) -> Option<&SummaryRef> {
        self.refs
            .binary_search_by(|r| r.name.as_bytes().cmp(name.as_bytes()))
            .ok()
            .map(|i| &self.refs[i])
    }
}

/// Modified base64 (`/` → `_`, no padding) of a checksum, as delta paths use.
pub fn mb64(c: &Checksum) -> String {
    const ALPHABET: &[u8; 64] = b"ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+_";
    let mut out = String::with_capacity(43);
    let b = &c.0;
    let mut i = 0;
    while i < b.len() {
        let n = (b[i] as u32) << 16
            | (*b.get(i + 1).unwrap_or(&0) as u32) << 8
            | *b.get(i + 2).unwrap_or(&0) as u32;
        let chars = if i + 2 < b.len() {
            4
        } else {
            1 + (b.len() - i)
        };
        for k in 0..chars {
            out.push(ALPHABET[((n >> (18 - 6 * k)) & 63) as usize] as char);
        }
        i += 3;
    }
    out
}

/// Decodes [`mb64`].
pub fn mb64_decode(s: &str) -> Option<Checksum> {
    let val = |c: u8| -> Option<u32> {
        Some(match c {
            b'A'..=b'Z' => c - b'A',
            b'a'..=b'z' => c - b'a' + 26,
            b'0'..=b'9' => c - b'0' + 52,
            b'+' => 62,
            b'_' | b'/' => 63,
            _ => return None,
        } as u32)
    };
    if s.len() != 43 {
        return None;
    }
    let mut bits = 0u32;
    let mut nbits = 0;
    let mut out = Vec::with_capacity(32);
    for c in s.bytes() {
        bits = (bits << 6) | val(c)?;
        nbits += 6;
        if nbits >= 8 {
            nbits -= 8;
            out.push((bits >> nbits) as u8);
            bits &= (1 << nbits) - 1;
        }
    }
    Checksum::from_slice(&out)
}

/// Static deltas present in `deltas/`: name (`TO` or `FROM-TO`, hex) → superblock sha256.
pub fn list_static_deltas(repo: &Repo) -> Result<BTreeMap<String, Checksum>> {
    let mut out = BTreeMap::new();
    let deltas = match fsutil::open_dir_at(repo.dfd(), Path::new("deltas")) {
        Ok(fd) => fd,
        Err(Errno::NOENT) => return Ok(out),
        Err(e) => return Err(e).ctx("opening", "deltas"),
    };
    for pfx in fsutil::list_dir(deltas.as_fd()).ctx("listing", "deltas")? {
        let Some(p) = pfx.name.to_str() else { continue };
        if pfx.file_type != FileType::Directory {
            continue;
        }
        let sub = fsutil::open_dir_at(deltas.as_fd(), Path::new(p))
            .ctx("opening", format!("deltas/{p}"))?;
        for e in fsutil::list_dir(sub.as_fd()).ctx("listing", format!("deltas/{p}"))? {
            let Some(rest) = e.name.to_str() else {
                continue;
            };
            let full = format!("{p}{rest}");
            let name = match full.split_once('-') {
                Some((from, to)) => match (mb64_decode(from), mb64_decode(to)) {
                    (Some(f), Some(t)) => format!("{f}-{t}"),
                    _ => continue,
                },
                None => match mb64_decode(&full) {
                    Some(t) => t.to_string(),
                    None => continue,
                },
            };
            let sb = Path::new("deltas").join(p).join(rest).join("superblock");
            if let Some(bytes) = fsutil::read_file_optional_at(repo.dfd(), &sb)? {
                out.insert(name, Checksum::of(&bytes));
            }
        }
    }
    Ok(out)
}

/// Builds the summary for the repo's local refs.
pub fn generate_summary(repo: &Repo, last_modified: u64) -> Result<Summary> {
    let mut refs = Vec::new();
    for (spec, c) in repo.list_refs()? {
        if spec.remote.is_some() {
            continue;
        }
        let raw = repo.load_metadata_raw(ObjectType::Commit, &c)?;
        let commit = crate::objects::Commit::parse(&raw, &c.to_hex())?;
        let mut meta = Vec::new();
        if let Some(v) = commit.version() {
            meta.push(("ostree.commit.version".to_owned(), Value::str(v)));
        }
        meta.push((
            "ostree.commit.timestamp".to_owned(),
            Value::U64(commit.timestamp.to_be()),
        ));
        refs.push(SummaryRef {
            name: spec.name,
            commit_size: raw.len() as u64,
            commit: c,
            metadata: Value::dict_sv(meta),
        });
    }
    refs.sort_by(|a, b| a.name.as_bytes().cmp(b.name.as_bytes()));
    let mut meta = vec![
        (
            "ostree.summary.mode".to_owned(),
            Value::str(repo.mode().as_config_str()),
        ),
        (
            "ostree.summary.last-modified".to_owned(),
            Value::U64(last_modified.to_be()),
        ),
        (
            "ostree.summary.tombstone-commits".to_owned(),
            Value::Bool(
                repo.config()
                    .get_bool("core", "tombstone-commits")
                    .unwrap_or(false),
            ),
        ),
    ];
    let deltas = list_static_deltas(repo)?;
    if !deltas.is_empty() {
        meta.push((
            "ostree.static-deltas".to_owned(),
            Value::dict_sv(
                deltas
                    .into_iter()
                    .map(|(k, v)| (k, Value::Bytes(v.0.to_vec()))),
            ),
        ));
    }
    meta.push((
        "ostree.summary.indexed-deltas".to_owned(),
        Value::Bool(true),
    ));
    Ok(Summary {
        refs,
        metadata: Value::dict_sv(meta),
    })
}

/// Regenerates `summary` (and drops a now-stale `summary.sig`), as `ostree summary -u`.
pub fn update_summary(repo: &mut Repo, last_modified: u64) -> Result<Summary> {
    let s = generate_summary(repo, last_modified)?;
    if repo.config().get("core", "indexed-deltas") != Some("true") {
        let mut cfg = repo.config().clone();
        cfg.set("core", "indexed-deltas", "true");
        repo.write_config(cfg)?;
    }
    match rustix::fs::unlinkat(repo.dfd(), SUMMARY_SIG_FILE, rustix::fs::AtFlags::empty()) {
        Ok(()) | Err(Errno::NOENT) => {}
        Err(e) => return Err(e).ctx("removing", SUMMARY_SIG_FILE),
    }
    fsutil::replace_file_at(
        repo.dfd(),
        Path::new(SUMMARY_FILE),
        &s.to_bytes(),
        0o644,
        Durability::Now,
    )?;
    Ok(s)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn mb64_matches_ostree_example() {
        let m = "kuEFu3XIYMCWi70JVKduGygyAbqCFI_9q9olUmI9uAk";
        let c = mb64_decode(m).unwrap();
        assert!(c.to_string().starts_with("92e105"), "{c}");
        assert_eq!(mb64(&c), m);
    }

    #[test]
    fn summary_roundtrip_and_lookup() {
        let s = Summary {
            refs: vec![
                SummaryRef {
                    name: "a/b".into(),
                    commit_size: 134,
                    commit: Checksum([1; 32]),
                    metadata: Value::dict_sv([(
                        "ostree.commit.timestamp".into(),
                        Value::U64(5u64.to_be()),
                    )]),
                },
                SummaryRef {
                    name: "z".into(),
                    commit_size: 1,
                    commit: Checksum([2; 32]),
                    metadata: Value::dict_sv([]),
                },
            ],
            metadata: Value::dict_sv([("ostree.summary.mode".into(), Value::str("archive-z2"))]),
        };
        let back = Summary::parse(&s.to_bytes()).unwrap();
        assert_eq!(back, s);
        assert_eq!(back.lookup("z").unwrap().commit, Checksum([2; 32]));
        assert!(back.lookup("y").is_none());
    }
}
