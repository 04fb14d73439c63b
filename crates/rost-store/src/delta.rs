//! Static deltas: generate, parse, apply — in libostree's on-disk format.
//!
//! ```text
//! deltas/MB64(TO)[0:2]/MB64(TO)[2:]/            from-scratch delta
//! deltas/MB64(FROM)[0:2]/MB64(FROM)[2:]-MB64(TO)/  FROM → TO delta
//!     superblock   (a{sv}tayay(COMMIT)aya(uayttay)a(yaytt))
//!     0, 1, …      parts: compression byte ('x' = xz, 0 = none) ‖ payload
//! delta-indexes/MB64(TO)[0:2]/MB64(TO)[2:].index  a{sv}: ostree.static-deltas
//! ```
//! A part payload `(a(uuu)aa(ayay)ayay)` holds modes, xattr sets, a data blob
//! and an opcode stream (one byte, then LEB128 varints): `S` open-splice-close,
//! `o` open, `w` write, `r`/`R` set/unset read source, `c` close, `B` bspatch
//! against the read source. The to-commit itself travels in the superblock.
//! Modified regular files are sent as bsdiff patches against the object of
//! the same path in FROM (the `bsdiff` crate writes and reads exactly the raw
//! control/diff/extra stream libostree's bundled bsdiff uses).

use std::collections::{HashMap, HashSet};
use std::io::{Read, Write};
use std::path::Path;

use crate::gvariant::{Type, Value};
use crate::objects::{self, Commit, FileHeader, Xattrs};
use crate::summary::mb64;
use crate::transaction::ContentSource;
use crate::walk::{ReachOptions, reachable_objects};
use crate::{Checksum, Error, ObjectType, Repo, Result, fsutil};

/// GVariant type of a superblock.
pub const SUPERBLOCK_TYPE: &str = "(a{sv}tayay(a{sv}aya(say)sstayay)aya(uayttay)a(yaytt))";
/// GVariant type of a decompressed part payload.
pub const PART_PAYLOAD_TYPE: &str = "(a(uuu)aa(ayay)ayay)";
/// Objects at least this large are not packed but fetched loose (ostree: 4 MB).
pub const DEFAULT_MIN_FALLBACK_SIZE: u64 = 4 * 1024 * 1024;
/// A new part starts when the blob would grow past this (ostree: 32 MB).
pub const DEFAULT_MAX_CHUNK_SIZE: u64 = 32 * 1024 * 1024;
/// Files larger than this are never bsdiff'ed (time and memory bound).
pub const MAX_BSDIFF_SIZE: u64 = 128 * 1024 * 1024;
/// Upper bound on a decompressed part (hostile-input guard).
pub const MAX_PART_SIZE: u64 = 512 * 1024 * 1024;

const OP_OPEN_SPLICE_CLOSE: u8 = b'S';
const OP_OPEN: u8 = b'o';
const OP_WRITE: u8 = b'w';
const OP_SET_READ_SOURCE: u8 = b'r';
const OP_UNSET_READ_SOURCE: u8 = b'R';
const OP_CLOSE: u8 = b'c';
const OP_BSPATCH: u8 = b'B';

fn ty(s: &str) -> Type {
    Type::parse(s).expect("static GVariant type string is valid")
}

fn corrupt(what: &str, reason: impl std::fmt::Display) -> Error {
    Error::Corrupt {
        object: what.to_owned(),
        reason: reason.to_string(),
    }
}

/// `deltas/…` directory of a delta.
pub fn delta_dir(from: Option<&Checksum>, to: &Checksum) -> String {
    let t = mb64(to);
    match from {
        None => format!("deltas/{}/{}", &t[..2], &t[2..]),
        Some(f) => {
            let f = mb64(f);
            format!("deltas/{}/{}-{t}", &f[..2], &f[2..])
        }
    }
}

/// Superblock metadata key holding a copy of the target's detached metadata
/// (signatures), as libostree names it: the delta directory plus `/commitmeta`.
pub fn detached_metadata_key(from: Option<&Checksum>, to: &Checksum) -> String {
    format!("{}/commitmeta", delta_dir(from, to))
}

/// The name used in summaries and indexes: `TO` or `FROM-TO` (hex).
pub fn delta_name(from: Option<&Checksum>, to: &Checksum) -> String {
    match from {
        None => to.to_string(),
        Some(f) => format!("{f}-{to}"),
    }
}

/// Parses `TO` or `FROM-TO`.
pub fn parse_delta_name(s: &str) -> Result<(Option<Checksum>, Checksum)> {
    match s.split_once('-') {
        Some((f, t)) => Ok((Some(f.parse()?), t.parse()?)),
        None => Ok((None, s.parse()?)),
    }
}

/// Header of one part, as listed in the superblock.
#[derive(Debug, Clone, PartialEq)]
pub struct PartHeader {
    /// Format version (0).
    pub version: u32,
    /// sha256 of the part file.
    pub checksum: Checksum,
    /// Size of the part file.
    pub compressed_size: u64,
    /// Size of the decompressed payload.
    pub uncompressed_size: u64,
    /// Objects the part produces, in order.
    pub objects: Vec<(ObjectType, Checksum)>,
}

/// An object the client fetches loose.
#[derive(Debug, Clone, PartialEq)]
pub struct Fallback {
    /// Its type.
    pub objtype: ObjectType,
    /// Its checksum.
    pub checksum: Checksum,
    /// Archived size.
    pub compressed_size: u64,
    /// Unpacked size.
    pub uncompressed_size: u64,
}

/// A parsed superblock.
#[derive(Debug, Clone, PartialEq)]
pub struct Superblock {
    /// Metadata (`ostree.endianness`, detached metadata copy, …).
    pub metadata: Value,
    /// Generation time (seconds).
    pub timestamp: u64,
    /// Source commit; `None` for a from-scratch delta.
    pub from: Option<Checksum>,
    /// Target commit.
    pub to: Checksum,
    /// The target commit object's bytes.
    pub commit: Vec<u8>,
    /// Parts.
    pub parts: Vec<PartHeader>,
    /// Loose objects.
    pub fallbacks: Vec<Fallback>,
}

fn objtype_of(b: u8) -> Option<ObjectType> {
    ObjectType::ALL.into_iter().find(|t| t.as_u8() == b)
}

fn objects_blob(objs: &[(ObjectType, Checksum)]) -> Vec<u8> {
    let mut v = Vec::with_capacity(objs.len() * 33);
    for (t, c) in objs {
        v.push(t.as_u8());
        v.extend_from_slice(&c.0);
    }
    v
}

fn parse_objects_blob(b: &[u8], what: &str) -> Result<Vec<(ObjectType, Checksum)>> {
    if !b.len().is_multiple_of(33) {
        return Err(corrupt(
            what,
            format!("Invalid checksum array length {}", b.len()),
        ));
    }
    b.chunks(33)
        .map(|c| {
            let t = objtype_of(c[0])
                .ok_or_else(|| corrupt(what, format!("invalid object type {}", c[0])))?;
            let cs = Checksum::from_slice(&c[1..]).ok_or_else(|| corrupt(what, "bad checksum"))?;
            Ok((t, cs))
        })
        .collect()
}

impl Superblock {
    /// Serializes.
    pub fn to_bytes(&self) -> Result<Vec<u8>> {
        let commit = Value::from_bytes(&ty(objects::COMMIT_TYPE), &self.commit)
            .map_err(|e| corrupt("superblock commit", e))?;
        let parts = self
            .parts
            .iter()
            .map(|p| {
                Value::Tuple(vec![
                    Value::U32(p.version),
                    Value::Bytes(p.checksum.0.to_vec()),
                    Value::U64(p.compressed_size),
                    Value::U64(p.uncompressed_size),
                    Value::Bytes(objects_blob(&p.objects)),
                ])
            })
            .collect();
        let fallbacks = self
            .fallbacks
            .iter()
            .map(|f| {
                Value::Tuple(vec![
                    Value::Byte(f.objtype.as_u8()),
                    Value::Bytes(f.checksum.0.to_vec()),
                    Value::U64(f.compressed_size),
                    Value::U64(f.uncompressed_size),
                ])
            })
            .collect();
        Ok(Value::Tuple(vec![
            self.metadata.clone(),
            Value::U64(self.timestamp.to_be()),
            Value::Bytes(self.from.map(|c| c.0.to_vec()).unwrap_or_default()),
            Value::Bytes(self.to.0.to_vec()),
            commit,
            Value::Bytes(Vec::new()),
            Value::Array(ty("(uayttay)"), parts),
            Value::Array(ty("(yaytt)"), fallbacks),
        ])
        .to_bytes())
    }

    /// Parses superblock bytes.
    pub fn parse(b: &[u8]) -> Result<Superblock> {
        let what = "superblock";
        let v = Value::from_bytes(&ty(SUPERBLOCK_TYPE), b).map_err(|e| corrupt(what, e))?;
        let Value::Tuple(m) = v else {
            return Err(corrupt(what, "not a tuple"));
        };
        let big_endian = matches!(m[0].lookup("ostree.endianness"), Some(Value::Byte(b'B')));
        let u64_of = |v: &Value| match v {
            Value::U64(x) if big_endian => u64::from_be(x.to_le()),
            Value::U64(x) => *x,
            _ => 0,
        };
        let csum = |v: &Value| match v {
            Value::Bytes(b) if b.is_empty() => Ok(None),
            Value::Bytes(b) => Checksum::from_slice(b)
                .map(Some)
                .ok_or_else(|| corrupt(what, "bad checksum")),
            _ => Err(corrupt(what, "bad layout")),
        };
        let from = csum(&m[2])?;
        let to = csum(&m[3])?.ok_or_else(|| corrupt(what, "missing target"))?;
        let commit = m[4].to_bytes();
        let mut parts = Vec::new();
        if let Value::Array(_, items) = &m[6] {
            for it in items {
                let Value::Tuple(p) = it else {
                    return Err(corrupt(what, "bad part header"));
                };
                let version = match p[0] {
                    Value::U32(v) if big_endian => u32::from_be(v.to_le()),
                    Value::U32(v) => v,
                    _ => 0,
                };
                let checksum =
                    csum(&p[1])?.ok_or_else(|| corrupt(what, "part without checksum"))?;
                let Value::Bytes(objs) = &p[4] else {
                    return Err(corrupt(what, "bad part objects"));
                };
                parts.push(PartHeader {
                    version,
                    checksum,
                    compressed_size: u64_of(&p[2]),
                    uncompressed_size: u64_of(&p[3]),
                    objects: parse_objects_blob(objs, what)?,
                });
            }
        }
        let mut fallbacks = Vec::new();
        if let Value::Array(_, items) = &m[7] {
            for it in items {
                let Value::Tuple(f) = it else {
                    return Err(corrupt(what, "bad fallback"));
                };
                let Value::Byte(t) = f[0] else {
                    return Err(corrupt(what, "bad fallback"));
                };
                fallbacks.push(Fallback {
                    objtype: objtype_of(t).ok_or_else(|| corrupt(what, "bad fallback type"))?,
                    checksum: csum(&f[1])?.ok_or_else(|| corrupt(what, "bad fallback checksum"))?,
                    compressed_size: u64_of(&f[2]),
                    uncompressed_size: u64_of(&f[3]),
                });
            }
        }
        let timestamp = match m[1] {
            Value::U64(t) => u64::from_be(t.to_le()),
            _ => 0,
        };
        Ok(Superblock {
            metadata: m[0].clone(),
            timestamp,
            from,
            to,
            commit,
            parts,
            fallbacks,
        })
    }
}

fn push_varint(out: &mut Vec<u8>, mut v: u64) {
    loop {
        let b = (v & 0x7f) as u8;
        v >>= 7;
        if v == 0 {
            out.push(b);
            return;
        }
        out.push(b | 0x80);
    }
}

fn read_varint(ops: &[u8], pos: &mut usize) -> Result<u64> {
    let mut v = 0u64;
    for shift in (0..64).step_by(7) {
        let b = *ops
            .get(*pos)
            .ok_or_else(|| corrupt("delta part", "Unexpected EOF reading varint"))?;
        *pos += 1;
        v |= u64::from(b & 0x7f) << shift;
        if b & 0x80 == 0 {
            return Ok(v);
        }
    }
    Err(corrupt("delta part", "varint too long"))
}

/// Options for [`generate`].
#[derive(Debug, Clone, Copy)]
pub struct GenerateOptions {
    /// Objects at least this large go as fallbacks.
    pub min_fallback_size: u64,
    /// Maximum uncompressed blob per part.
    pub max_chunk_size: u64,
    /// Use bsdiff for modified files.
    pub bsdiff: bool,
}

impl Default for GenerateOptions {
    fn default() -> Self {
        GenerateOptions {
            min_fallback_size: DEFAULT_MIN_FALLBACK_SIZE,
            max_chunk_size: DEFAULT_MAX_CHUNK_SIZE,
            bsdiff: true,
        }
    }
}

/// What a generated delta holds.
#[derive(Debug, Clone, Default)]
pub struct DeltaStats {
    /// Parts written.
    pub parts: usize,
    /// Objects in parts.
    pub objects: usize,
    /// Objects patched with bsdiff.
    pub bsdiff: usize,
    /// Fallback objects.
    pub fallbacks: usize,
    /// Total size of part files.
    pub total_size: u64,
}

struct PartBuilder {
    modes: Vec<(u32, u32, u32)>,
    xattrs: Vec<Xattrs>,
    blob: Vec<u8>,
    ops: Vec<u8>,
    objects: Vec<(ObjectType, Checksum)>,
    /// Bytes of the objects produced (what ostree reports as the part's usize).
    object_bytes: u64,
}

impl PartBuilder {
    fn new() -> PartBuilder {
        PartBuilder {
            modes: Vec::new(),
            xattrs: Vec::new(),
            blob: Vec::new(),
            ops: Vec::new(),
            objects: Vec::new(),
            object_bytes: 0,
        }
    }

    fn mode_idx(&mut self, h: &FileHeader) -> u64 {
        let m = (h.uid, h.gid, h.mode);
        match self.modes.iter().position(|x| *x == m) {
            Some(i) => i as u64,
            None => {
                self.modes.push(m);
                (self.modes.len() - 1) as u64
            }
        }
    }

    fn xattr_idx(&mut self, h: &FileHeader) -> u64 {
        let mut x = h.xattrs.clone();
        x.sort();
        match self.xattrs.iter().position(|y| *y == x) {
            Some(i) => i as u64,
            None => {
                self.xattrs.push(x);
                (self.xattrs.len() - 1) as u64
            }
        }
    }

    fn push_blob(&mut self, data: &[u8]) -> u64 {
        let off = self.blob.len() as u64;
        self.blob.extend_from_slice(data);
        off
    }

    fn add_metadata(&mut self, t: ObjectType, c: Checksum, data: &[u8]) {
        let off = self.push_blob(data);
        self.ops.push(OP_OPEN_SPLICE_CLOSE);
        push_varint(&mut self.ops, data.len() as u64);
        push_varint(&mut self.ops, off);
        self.objects.push((t, c));
        self.object_bytes += data.len() as u64;
    }

    fn add_content(&mut self, c: Checksum, h: &FileHeader, data: &[u8]) {
        let mi = self.mode_idx(h);
        let xi = self.xattr_idx(h);
        let payload: &[u8] = if h.is_symlink() {
            h.symlink_target.as_bytes()
        } else {
            data
        };
        let off = self.push_blob(payload);
        self.ops.push(OP_OPEN_SPLICE_CLOSE);
        push_varint(&mut self.ops, mi);
        push_varint(&mut self.ops, xi);
        push_varint(&mut self.ops, payload.len() as u64);
        push_varint(&mut self.ops, off);
        self.objects.push((ObjectType::File, c));
        self.object_bytes += payload.len() as u64;
    }

    fn add_bsdiff(
        &mut self,
        c: Checksum,
        h: &FileHeader,
        size: u64,
        source: &Checksum,
        patch: &[u8],
    ) {
        let mi = self.mode_idx(h);
        let xi = self.xattr_idx(h);
        self.ops.push(OP_OPEN);
        push_varint(&mut self.ops, mi);
        push_varint(&mut self.ops, xi);
        push_varint(&mut self.ops, size);
        let src_off = self.push_blob(&source.0);
        self.ops.push(OP_SET_READ_SOURCE);
        push_varint(&mut self.ops, src_off);
        let p_off = self.push_blob(patch);
        self.ops.push(OP_BSPATCH);
        push_varint(&mut self.ops, p_off);
        push_varint(&mut self.ops, patch.len() as u64);
        self.ops.push(OP_UNSET_READ_SOURCE);
        self.ops.push(OP_CLOSE);
        self.objects.push((ObjectType::File, c));
        self.object_bytes += size;
    }

    fn payload(&self) -> Vec<u8> {
        let modes = self
            .modes
            .iter()
            .map(|(u, g, m)| {
                Value::Tuple(vec![
                    Value::U32(u.to_be()),
                    Value::U32(g.to_be()),
                    Value::U32(m.to_be()),
                ])
            })
            .collect();
        let xattrs = self
            .xattrs
            .iter()
            .map(|x| {
                Value::Array(
                    ty("(ayay)"),
                    x.iter()
                        .map(|(n, v)| {
                            let mut n = n.clone();
                            n.push(0);
                            Value::Tuple(vec![Value::Bytes(n), Value::Bytes(v.clone())])
                        })
                        .collect(),
                )
            })
            .collect();
        Value::Tuple(vec![
            Value::Array(ty("(uuu)"), modes),
            Value::Array(ty("a(ayay)"), xattrs),
            Value::Bytes(self.blob.clone()),
            Value::Bytes(self.ops.clone()),
        ])
        .to_bytes()
    }
}

fn xz_compress(data: &[u8]) -> Result<Vec<u8>> {
    let mut enc = liblzma::write::XzEncoder::new(Vec::new(), 6);
    enc.write_all(data)
        .map_err(|e| Error::Other(format!("xz: {e}")))?;
    enc.finish().map_err(|e| Error::Other(format!("xz: {e}")))
}

fn xz_decompress(data: &[u8], limit: u64) -> Result<Vec<u8>> {
    let mut out = Vec::new();
    liblzma::read::XzDecoder::new(data)
        .take(limit + 1)
        .read_to_end(&mut out)
        .map_err(|e| corrupt("delta part", format!("xz: {e}")))?;
    if out.len() as u64 > limit {
        return Err(corrupt(
            "delta part",
            "decompresses beyond its declared size",
        ));
    }
    Ok(out)
}

/// Content (header, bytes) of a stored object.
fn read_content(repo: &Repo, c: &Checksum) -> Result<(FileHeader, Vec<u8>)> {
    let mut obj = repo.load_file(c)?;
    let mut data = Vec::with_capacity(obj.size as usize);
    obj.reader
        .read_to_end(&mut data)
        .map_err(|e| corrupt(&format!("{c}.file"), e))?;
    Ok((obj.header, data))
}

/// Regular files by path in a commit's tree.
fn files_by_path(repo: &Repo, commit: &Commit) -> Result<HashMap<String, Checksum>> {
    let mut out = HashMap::new();
    let mut stack = vec![(String::new(), commit.root_tree)];
    while let Some((base, t)) = stack.pop() {
        let tree = repo.load_dirtree(&t)?;
        for f in tree.files {
            out.insert(format!("{base}/{}", f.name), f.checksum);
        }
        for d in tree.dirs {
            stack.push((format!("{base}/{}", d.name), d.tree));
        }
    }
    Ok(out)
}

/// Generates a delta from `from` (or from scratch) to `to` and writes it.
pub fn generate(
    repo: &Repo,
    from: Option<&Checksum>,
    to: &Checksum,
    opts: GenerateOptions,
    now: u64,
) -> Result<DeltaStats> {
    let to_commit = repo.load_commit(to)?;
    let to_raw = repo.load_metadata_raw(ObjectType::Commit, to)?;
    let mut want = HashSet::new();
    reachable_objects(
        repo,
        to,
        ReachOptions {
            depth: 0,
            ignore_missing: false,
        },
        &mut want,
    )?;
    let mut have = HashSet::new();
    let mut old_by_path = HashMap::new();
    if let Some(f) = from {
        reachable_objects(
            repo,
            f,
            ReachOptions {
                depth: 0,
                ignore_missing: false,
            },
            &mut have,
        )?;
        old_by_path = files_by_path(repo, &repo.load_commit(f)?)?;
    }
    let new_by_path = files_by_path(repo, &to_commit)?;
    // For each new content object, an old object at the same path (bsdiff source).
    let mut source_of: HashMap<Checksum, Checksum> = HashMap::new();
    for (p, c) in &new_by_path {
        if let Some(o) = old_by_path.get(p)
            && o != c
            && have.contains(&(*o, ObjectType::File))
        {
            source_of.entry(*c).or_insert(*o);
        }
    }
    let mut todo: Vec<(Checksum, ObjectType)> = want
        .into_iter()
        .filter(|k| {
            !have.contains(k) && !matches!(k.1, ObjectType::Commit | ObjectType::CommitMeta)
        })
        .collect();
    // Metadata first, then content, each by checksum: deterministic parts.
    todo.sort_by_key(|(c, t)| (!t.is_meta(), *t, *c));

    let dir = delta_dir(from, to);
    fsutil::ensure_dir_all_at(repo.dfd(), Path::new(&dir), 0o755).map_err(|e| Error::Io {
        op: "creating",
        path: dir.clone().into(),
        source: e.into(),
    })?;
    let mut stats = DeltaStats::default();
    let mut parts: Vec<PartHeader> = Vec::new();
    let mut fallbacks = Vec::new();
    let mut cur = PartBuilder::new();
    let flush = |cur: &mut PartBuilder,
                 parts: &mut Vec<PartHeader>,
                 stats: &mut DeltaStats|
     -> Result<()> {
        if cur.objects.is_empty() {
            return Ok(());
        }
        let payload = cur.payload();
        let mut file = vec![b'x'];
        file.extend_from_slice(&xz_compress(&payload)?);
        let idx = parts.len();
        let rel = format!("{dir}/{idx}");
        fsutil::replace_file_at(
            repo.dfd(),
            Path::new(&rel),
            &file,
            0o644,
            fsutil::Durability::Batched,
        )?;
        stats.parts += 1;
        stats.objects += cur.objects.len();
        stats.total_size += file.len() as u64;
        parts.push(PartHeader {
            version: 0,
            checksum: Checksum::of(&file),
            compressed_size: file.len() as u64,
            uncompressed_size: cur.object_bytes,
            objects: std::mem::take(&mut cur.objects),
        });
        *cur = PartBuilder::new();
        Ok(())
    };
    for (c, t) in todo {
        if t.is_meta() {
            let b = repo.load_metadata_raw(t, &c)?;
            cur.add_metadata(t, c, &b);
        } else {
            let (h, data) = read_content(repo, &c)?;
            if data.len() as u64 >= opts.min_fallback_size {
                let p = repo.object_path(ObjectType::File, &c);
                let archived =
                    rustix::fs::statat(repo.dfd(), &p, rustix::fs::AtFlags::SYMLINK_NOFOLLOW)
                        .map(|s| s.st_size as u64)
                        .unwrap_or(data.len() as u64);
                fallbacks.push(Fallback {
                    objtype: ObjectType::File,
                    checksum: c,
                    compressed_size: archived,
                    uncompressed_size: data.len() as u64,
                });
                stats.fallbacks += 1;
                continue;
            }
            let mut done = false;
            if let (true, Some(src), false) = (opts.bsdiff, source_of.get(&c), h.is_symlink()) {
                let (sh, old) = read_content(repo, src)?;
                if !sh.is_symlink() && (old.len() as u64) < MAX_BSDIFF_SIZE && !old.is_empty() {
                    let mut patch = Vec::new();
                    bsdiff::diff(&old, &data, &mut patch)
                        .map_err(|e| Error::Other(format!("bsdiff: {e}")))?;
                    // The raw patch is mostly zeros where the files agree; the part is
                    // xz-compressed, so compare against a generous bound, not the file size.
                    if patch.len() <= data.len().saturating_mul(2) + 4096 {
                        cur.add_bsdiff(c, &h, data.len() as u64, src, &patch);
                        stats.bsdiff += 1;
                        done = true;
                    }
                }
            }
            if !done {
                cur.add_content(c, &h, &data);
            }
        }
        if cur.blob.len() as u64 >= opts.max_chunk_size {
            flush(&mut cur, &mut parts, &mut stats)?;
        }
    }
    flush(&mut cur, &mut parts, &mut stats)?;
    let mut meta = vec![("ostree.endianness".to_owned(), Value::Byte(b'l'))];
    if let Some(dm) = repo.load_detached_metadata(to)? {
        meta.push((detached_metadata_key(from, to), dm));
    }
    let sb = Superblock {
        metadata: Value::dict_sv(meta),
        timestamp: now,
        from: from.copied(),
        to: *to,
        commit: to_raw,
        parts,
        fallbacks,
    };
    let bytes = sb.to_bytes()?;
    fsutil::replace_file_at(
        repo.dfd(),
        Path::new(&format!("{dir}/superblock")),
        &bytes,
        0o644,
        fsutil::Durability::Now,
    )?;
    let _ = to_commit;
    Ok(stats)
}

/// Loads a stored delta's superblock.
pub fn load_superblock(repo: &Repo, from: Option<&Checksum>, to: &Checksum) -> Result<Superblock> {
    let rel = format!("{}/superblock", delta_dir(from, to));
    let b = fsutil::read_file_optional_at(repo.dfd(), Path::new(&rel))?
        .ok_or_else(|| Error::NotFound(format!("No static delta {}", delta_name(from, to))))?;
    Superblock::parse(&b)
}

/// Deletes a stored delta.
pub fn delete(repo: &Repo, from: Option<&Checksum>, to: &Checksum) -> Result<()> {
    let dir = delta_dir(from, to);
    load_superblock(repo, from, to)?;
    fsutil::remove_all_at(repo.dfd(), Path::new(&dir)).map_err(|e| Error::Io {
        op: "removing",
        path: dir.into(),
        source: e.into(),
    })
}

/// Decodes a part file (verifying its checksum) into its payload value.
pub fn decode_part(header: &PartHeader, file: &[u8]) -> Result<Vec<u8>> {
    let actual = Checksum::of(file);
    if actual != header.checksum {
        return Err(Error::ChecksumMismatch {
            object: "delta part".into(),
            expected: header.checksum.to_string(),
            actual: actual.to_string(),
        });
    }
    let (kind, rest) = file
        .split_first()
        .ok_or_else(|| corrupt("delta part", "empty"))?;
    // `uncompressed_size` counts the objects' bytes, not the payload's, so the
    // payload is bounded by a fixed limit instead.
    let payload = match kind {
        0 => rest.to_vec(),
        b'x' => xz_decompress(rest, MAX_PART_SIZE)?,
        k => {
            return Err(corrupt(
                "delta part",
                format!("unknown compression type {k}"),
            ));
        }
    };
    Ok(payload)
}

/// Executes a decoded part payload, writing its objects into `tx`.
pub fn execute_part(
    repo: &Repo,
    tx: &crate::transaction::Transaction<'_>,
    objects: &[(ObjectType, Checksum)],
    payload: &[u8],
) -> Result<()> {
    let what = "delta part";
    let v = Value::from_bytes(&ty(PART_PAYLOAD_TYPE), payload).map_err(|e| corrupt(what, e))?;
    let Value::Tuple(m) = v else {
        return Err(corrupt(what, "not a tuple"));
    };
    let modes: Vec<(u32, u32, u32)> = match &m[0] {
        Value::Array(_, items) => items
            .iter()
            .map(|it| match it {
                Value::Tuple(t) => match (&t[0], &t[1], &t[2]) {
                    (Value::U32(u), Value::U32(g), Value::U32(md)) => {
                        Ok((u32::from_be(*u), u32::from_be(*g), u32::from_be(*md)))
                    }
                    _ => Err(corrupt(what, "bad mode")),
                },
                _ => Err(corrupt(what, "bad mode")),
            })
            .collect::<Result<_>>()?,
        _ => return Err(corrupt(what, "bad modes")),
    };
    let xattrs: Vec<Xattrs> = match &m[1] {
        Value::Array(_, items) => items
            .iter()
            .map(|set| match set {
                Value::Array(_, xs) => xs
                    .iter()
                    .map(|x| match x {
                        Value::Tuple(p) => match (&p[0], &p[1]) {
                            (Value::Bytes(n), Value::Bytes(val)) => {
                                let n = n.strip_suffix(&[0]).unwrap_or(n).to_vec();
                                Ok((n, val.clone()))
                            }
                            _ => Err(corrupt(what, "bad xattr")),
                        },
                        _ => Err(corrupt(what, "bad xattr")),
                    })
                    .collect::<Result<Xattrs>>(),
                _ => Err(corrupt(what, "bad xattrs")),
            })
            .collect::<Result<_>>()?,
        _ => return Err(corrupt(what, "bad xattrs")),
    };
    let (Value::Bytes(blob), Value::Bytes(ops)) = (&m[2], &m[3]) else {
        return Err(corrupt(what, "bad payload"));
    };
    let slice = |off: u64, len: u64| -> Result<&[u8]> {
        let end = off
            .checked_add(len)
            .ok_or_else(|| corrupt(what, "offset overflow"))?;
        blob.get(off as usize..end as usize)
            .ok_or_else(|| corrupt(what, format!("Invalid offset/length {off}/{len}")))
    };
    let header_for = |mi: u64, xi: u64| -> Result<FileHeader> {
        let (uid, gid, mode) = *modes
            .get(mi as usize)
            .ok_or_else(|| corrupt(what, "mode index out of range"))?;
        let x = xattrs
            .get(xi as usize)
            .ok_or_else(|| corrupt(what, "xattr index out of range"))?
            .clone();
        Ok(FileHeader {
            uid,
            gid,
            mode,
            symlink_target: String::new(),
            xattrs: x,
        })
    };
    let mut pos = 0usize;
    let mut idx = 0usize;
    // State of an object opened with 'o'.
    let mut open: Option<(FileHeader, u64, Vec<u8>)> = None;
    let mut source: Option<Vec<u8>> = None;
    let next_target = |idx: usize| -> Result<(ObjectType, Checksum)> {
        objects
            .get(idx)
            .copied()
            .ok_or_else(|| corrupt(what, "more objects in ops than in the superblock"))
    };
    let finish = |t: ObjectType, c: Checksum, h: &FileHeader, data: &[u8]| -> Result<()> {
        if t != ObjectType::File {
            return Err(corrupt(what, "content op for a metadata object"));
        }
        let mut h = h.clone();
        let content: &[u8] = if h.is_symlink() {
            h.symlink_target = String::from_utf8(data.to_vec())
                .map_err(|_| corrupt(what, "symlink target not UTF-8"))?;
            &[]
        } else {
            data
        };
        let got = tx.write_content(&h, ContentSource::Bytes(content))?;
        if got != c {
            return Err(Error::ChecksumMismatch {
                object: format!("{c}.file"),
                expected: c.to_string(),
                actual: got.to_string(),
            });
        }
        Ok(())
    };
    while pos < ops.len() {
        let op = ops[pos];
        pos += 1;
        match op {
            OP_OPEN_SPLICE_CLOSE => {
                let (t, c) = next_target(idx)?;
                if t.is_meta() {
                    let len = read_varint(ops, &mut pos)?;
                    let off = read_varint(ops, &mut pos)?;
                    let data = slice(off, len)?;
                    let got = tx.write_metadata(t, data)?;
                    if got != c {
                        return Err(Error::ChecksumMismatch {
                            object: format!("{c}.{t}"),
                            expected: c.to_string(),
                            actual: got.to_string(),
                        });
                    }
                } else {
                    let mi = read_varint(ops, &mut pos)?;
                    let xi = read_varint(ops, &mut pos)?;
                    let size = read_varint(ops, &mut pos)?;
                    let off = read_varint(ops, &mut pos)?;
                    let h = header_for(mi, xi)?;
                    finish(t, c, &h, slice(off, size)?)?;
                }
                idx += 1;
                source = None;
            }
            OP_OPEN => {
                let mi = read_varint(ops, &mut pos)?;
                let xi = read_varint(ops, &mut pos)?;
                let size = read_varint(ops, &mut pos)?;
                if size > MAX_PART_SIZE {
                    return Err(corrupt(what, "object too large"));
                }
                open = Some((header_for(mi, xi)?, size, Vec::with_capacity(size as usize)));
            }
            OP_WRITE => {
                let len = read_varint(ops, &mut pos)?;
                let off = read_varint(ops, &mut pos)?;
                let (_, _, buf) = open
                    .as_mut()
                    .ok_or_else(|| corrupt(what, "write without open"))?;
                match &source {
                    Some(src) => {
                        let end = off
                            .checked_add(len)
                            .ok_or_else(|| corrupt(what, "offset overflow"))?;
                        buf.extend_from_slice(
                            src.get(off as usize..end as usize)
                                .ok_or_else(|| corrupt(what, "read past the source object"))?,
                        )
                    }
                    None => buf.extend_from_slice(slice(off, len)?),
                }
            }
            OP_SET_READ_SOURCE => {
                let off = read_varint(ops, &mut pos)?;
                let c = Checksum::from_slice(slice(off, 32)?)
                    .ok_or_else(|| corrupt(what, "bad source checksum"))?;
                source = Some(read_content(repo, &c)?.1);
            }
            OP_UNSET_READ_SOURCE => source = None,
            OP_BSPATCH => {
                let off = read_varint(ops, &mut pos)?;
                let len = read_varint(ops, &mut pos)?;
                let patch = slice(off, len)?;
                let (_, size, buf) = open
                    .as_mut()
                    .ok_or_else(|| corrupt(what, "bspatch without open"))?;
                let old = source
                    .as_ref()
                    .ok_or_else(|| corrupt(what, "bspatch without a read source"))?;
                let mut out = Vec::with_capacity(*size as usize);
                bsdiff::patch(old, &mut &patch[..], &mut out)
                    .map_err(|e| corrupt(what, format!("bspatch: {e}")))?;
                buf.extend_from_slice(&out);
            }
            OP_CLOSE => {
                let (h, size, buf) = open
                    .take()
                    .ok_or_else(|| corrupt(what, "close without open"))?;
                if buf.len() as u64 != size {
                    return Err(corrupt(
                        what,
                        format!("object is {} bytes, open said {size}", buf.len()),
                    ));
                }
                let (t, c) = next_target(idx)?;
                finish(t, c, &h, &buf)?;
                idx += 1;
                source = None;
            }
            other => {
                return Err(corrupt(
                    what,
                    format!("Unknown opcode {other} at offset {}", pos - 1),
                ));
            }
        }
    }
    if idx != objects.len() {
        return Err(corrupt(
            what,
            format!(
                "ops produced {idx} objects, superblock lists {}",
                objects.len()
            ),
        ));
    }
    Ok(())
}

/// Applies a delta whose files are read by `read(rel_path_in_delta_dir)`;
/// fallbacks are fetched with `fallback(csum)` (archive `.filez` bytes).
/// Writes the target commit (and detached metadata from the superblock).
pub fn apply(
    repo: &Repo,
    sb: &Superblock,
    read: &dyn Fn(&str) -> Result<Vec<u8>>,
    fallback: &dyn Fn(&Checksum) -> Result<Vec<u8>>,
) -> Result<()> {
    if let Some(f) = &sb.from
        && !repo.has_object(ObjectType::Commit, f)?
    {
        return Err(Error::NotFound(format!(
            "Commit {f} (the delta's source) is not in the repository"
        )));
    }
    for (i, ph) in sb.parts.iter().enumerate() {
        if ph.version != 0 {
            return Err(corrupt(
                "superblock",
                format!("unsupported part version {}", ph.version),
            ));
        }
        let all_present = ph
            .objects
            .iter()
            .all(|(t, c)| repo.has_object(*t, c).unwrap_or(false));
        if all_present {
            continue;
        }
        let file = read(&i.to_string())?;
        let payload = decode_part(ph, &file)?;
        let tx = repo.begin()?;
        execute_part(repo, &tx, &ph.objects, &payload)?;
        tx.commit()?;
    }
    if !sb.fallbacks.is_empty() {
        let tx = repo.begin()?;
        for f in &sb.fallbacks {
            if repo.has_object(f.objtype, &f.checksum)? {
                continue;
            }
            let bytes = fallback(&f.checksum)?;
            if f.objtype.is_meta() {
                tx.write_metadata(f.objtype, &bytes)?;
            } else {
                let (h, content) = crate::pull::verify_filez(&f.checksum, &bytes)?;
                tx.write_content(&h, ContentSource::Bytes(&content))?;
            }
        }
        tx.commit()?;
    }
    let tx = repo.begin()?;
    let got = tx.write_metadata(ObjectType::Commit, &sb.commit)?;
    if got != sb.to {
        return Err(Error::ChecksumMismatch {
            object: format!("{}.commit", sb.to),
            expected: sb.to.to_string(),
            actual: got.to_string(),
        });
    }
    tx.commit()?;
    if let Some(dm) = sb
        .metadata
        .lookup(&detached_metadata_key(sb.from.as_ref(), &sb.to))
    {
        repo.write_detached_metadata(&sb.to, Some(dm))?;
    }
    Ok(())
}

/// `static-delta apply-offline PATH`: PATH is a delta directory or its superblock.
pub fn apply_offline(repo: &Repo, path: &Path) -> Result<Checksum> {
    let dir = if path.is_dir() {
        path.to_owned()
    } else {
        path.parent().unwrap_or(Path::new(".")).to_owned()
    };
    let sb_path = dir.join("superblock");
    let b = std::fs::read(&sb_path).map_err(|source| Error::Io {
        op: "reading",
        path: sb_path.clone(),
        source,
    })?;
    let sb = Superblock::parse(&b)?;
    let read = |rel: &str| -> Result<Vec<u8>> {
        let p = dir.join(rel);
        std::fs::read(&p).map_err(|source| Error::Io {
            op: "reading",
            path: p,
            source,
        })
    };
    let fallback = |c: &Checksum| -> Result<Vec<u8>> {
        Err(Error::NotFound(format!(
            "delta needs fallback object {c}, which apply-offline cannot fetch"
        )))
    };
    apply(repo, &sb, &read, &fallback)?;
    Ok(sb.to)
}

/// Writes `delta-indexes/XX/REST.index` for every commit some delta targets.
pub fn write_indexes(repo: &Repo) -> Result<()> {
    let deltas = crate::summary::list_static_deltas(repo)?;
    let mut by_to: HashMap<String, Vec<(String, Checksum)>> = HashMap::new();
    for (name, sb) in deltas {
        let to = name.rsplit('-').next().unwrap_or(&name).to_owned();
        by_to.entry(to).or_default().push((name, sb));
    }
    for (to, mut list) in by_to {
        list.sort();
        let v = Value::dict_sv([(
            "ostree.static-deltas".to_owned(),
            Value::dict_sv(
                list.into_iter()
                    .map(|(n, c)| (n, Value::Bytes(c.0.to_vec()))),
            ),
        )]);
        // Index paths use the modified-base64 form of TO, like delta directories.
        let to = mb64(&to.parse::<Checksum>()?);
        let dir = format!("delta-indexes/{}", &to[..2]);
        fsutil::ensure_dir_all_at(repo.dfd(), Path::new(&dir), 0o755).map_err(|e| Error::Io {
            op: "creating",
            path: dir.clone().into(),
            source: e.into(),
        })?;
        fsutil::replace_file_at(
            repo.dfd(),
            Path::new(&format!("{dir}/{}.index", &to[2..])),
            &v.to_bytes(),
            0o644,
            fsutil::Durability::Now,
        )?;
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn varints_roundtrip() {
        for v in [0u64, 1, 127, 128, 300, 1 << 32, u64::MAX] {
            let mut b = Vec::new();
            push_varint(&mut b, v);
            let mut pos = 0;
            assert_eq!(read_varint(&b, &mut pos).unwrap(), v);
            assert_eq!(pos, b.len());
        }
        assert!(read_varint(&[0x80], &mut 0).is_err());
    }

    #[test]
    fn delta_names() {
        let a = Checksum([1; 32]);
        let b = Checksum([2; 32]);
        assert_eq!(
            parse_delta_name(&delta_name(Some(&a), &b)).unwrap(),
            (Some(a), b)
        );
        assert_eq!(parse_delta_name(&delta_name(None, &b)).unwrap(), (None, b));
        assert!(delta_dir(Some(&a), &b).contains('-'));
    }
}
