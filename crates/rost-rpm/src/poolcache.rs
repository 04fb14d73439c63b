//! A repository's parsed primary metadata in an interned, pre-indexed form —
//! rost's counterpart of libsolv's `.solv` files — and its binary cache file.
//!
//! [`RepoData`] holds every string of primary once, in one buffer, and
//! everything else as flat `u32` arrays of string ids: a fixed-size record per
//! package, one per dependency, and sorted indexes (package name, provided
//! capability, file path, obsoleted name, required file path → packages). The
//! solver pool ([`crate::solve::Pool`]) works on it directly and turns into a
//! [`RepoPackage`] only the packages it touches, so loading a repository costs
//! a bulk read and a checksum, not an allocation per string.
//!
//! After primary is parsed, its [`RepoData`] is written to
//! `<cachedir>/<repoid>/<repomd-sha256>/primary.rostpkgs`; the next load of the
//! same repository revision reads that file instead of decompressing and parsing
//! XML. The file is keyed by the repomd checksum and the primary checksum (both
//! also stored inside it) and by [`FORMAT_VERSION`], so a new repomd, a new
//! primary or a new rost with a different layout never reads a stale file. It
//! holds every package of primary, before `exclude`/`includepkgs` filtering, so
//! changing those options in a `.repo` file does not need a new cache.
//!
//! Layout (all integers little-endian):
//! ```text
//! b"ROSTPKGS" | format version (u32) | key | sections | CRC-32 of all that precedes (u32)
//! key      = repomd checksum, primary checksum (each u32 length + UTF-8 bytes)
//! sections = 23 × (u64 byte length + bytes): the strings (UTF-8, concatenated),
//!            then u32 arrays: string offsets, packages, dependencies, dependency
//!            offsets, files, file offsets, 5 indexes × (keys, offsets, values),
//!            supplementers
//! ```
//! A loaded [`RepoData`] is that file's buffer as read, with the section
//! bounds: nothing is decoded or copied up front, every accessor reads the
//! words it needs in place.
//!
//! Files are written to a temporary file in the same directory and renamed into
//! place, so readers see either the old file or the complete new one. Reading
//! treats the file as untrusted: its size is capped ([`MAX_FILE_SIZE`]), the
//! CRC-32 (a corruption check: the cache directory is the user's own, its
//! writer could write anything) must match before any section is used, and
//! the section table must lie inside the file. Every accessor is bounds-checked
//! and answers an out-of-range id with an empty value, so a damaged file can
//! give wrong packages but never a panic. Any failure is an error the caller
//! answers by parsing the XML again.

use std::io::{Read, Write};
use std::path::Path;

use crate::error::{Error, Result};
use crate::evr::Sense;
use crate::header::Dependency;
use crate::repomd::{PrimarySink, PrimaryText, RepoPackage};

/// Version of the on-disk layout; bump whenever [`RepoData`]'s arrays change
/// meaning or shape.
pub const FORMAT_VERSION: u32 = 2;

/// Cache files larger than this are neither read nor written (Fedora's primary
/// caches to ~100 MiB).
pub const MAX_FILE_SIZE: u64 = 2 << 30;

/// File name of the cache inside a repository revision's directory.
pub const FILE_NAME: &str = "primary.rostpkgs";

const MAGIC: &[u8; 8] = b"ROSTPKGS";
const CRC_LEN: usize = 4;
/// Sections: strings, string offsets, packages, dependencies, dependency
/// offsets, files, file offsets, 5 × 3 index arrays, supplementers.
const NSEC: usize = 23;
const S_STRINGS: usize = 0;
const S_STR_OFF: usize = 1;
const S_PKGS: usize = 2;
const S_DEPS: usize = 3;
const S_DEP_OFF: usize = 4;
const S_FILES: usize = 5;
const S_FILE_OFF: usize = 6;
const S_INDEX: usize = 7;
const S_SUPPL: usize = 22;

/// Words per package record: name, arch, version, release, epoch,
/// checksum type, checksum, href, size (low, high).
const PKG_WORDS: usize = 10;
/// Words per dependency: name, evr, sense bits | rpm flags << 3 (rpm defines
/// no flag above bit 28).
const DEP_WORDS: usize = 3;

/// The dependency lists of a package, in record order.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
#[repr(usize)]
pub enum DepKind {
    /// Provides.
    Provides = 0,
    /// Requires.
    Requires,
    /// Conflicts.
    Conflicts,
    /// Obsoletes.
    Obsoletes,
    /// Recommends.
    Recommends,
    /// Suggests.
    Suggests,
    /// Supplements.
    Supplements,
    /// Enhances.
    Enhances,
}

const KINDS: usize = 8;
const ALL_KINDS: [DepKind; KINDS] = [
    DepKind::Provides,
    DepKind::Requires,
    DepKind::Conflicts,
    DepKind::Obsoletes,
    DepKind::Recommends,
    DepKind::Suggests,
    DepKind::Supplements,
    DepKind::Enhances,
];

/// The lookup tables of a [`RepoData`].
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum IndexKind {
    /// Package name → packages.
    Names = 0,
    /// Provided capability (explicit provides and the package's own name) → packages.
    Provides,
    /// File path (primary's file subset) → packages.
    Files,
    /// Obsoleted name → packages obsoleting it.
    Obsoletes,
    /// File path required (Requires, Conflicts, Recommends) → packages requiring it.
    RequiredFiles,
}

const INDEXES: usize = 5;

/// What a cache file must match to be used.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Key {
    /// SHA-256 (hex) of the repomd.xml the packages came from.
    pub repomd_checksum: String,
    /// Checksum (hex) of the primary file, as repomd gives it.
    pub primary_checksum: String,
}

/// One dependency of a [`RepoData`] package, borrowing its strings.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct DepRef<'a> {
    /// Capability name (may be a rich dependency in parentheses).
    pub name: &'a str,
    /// Comparison operator.
    pub sense: Sense,
    /// Version as written, empty when unversioned.
    pub evr: &'a str,
    /// Raw `RPMSENSE_*` flags.
    pub flags: u32,
}

impl DepRef<'_> {
    /// An owned [`Dependency`].
    pub fn to_dependency(&self) -> Dependency {
        Dependency {
            name: self.name.to_owned(),
            sense: self.sense,
            evr: self.evr.to_owned(),
            flags: self.flags,
        }
    }

    /// Whether this is a rich (boolean) dependency.
    pub fn is_rich(&self) -> bool {
        self.name.starts_with('(')
    }
}

fn sense_bits(s: Sense) -> u32 {
    u32::from(s.less) | (u32::from(s.greater) << 1) | (u32::from(s.equal) << 2)
}

fn bits_sense(b: u32) -> Sense {
    Sense {
        less: b & 1 != 0,
        greater: b & 2 != 0,
        equal: b & 4 != 0,
    }
}

fn le(b: &[u8]) -> u32 {
    match b {
        [a, b, c, d, ..] => u32::from_le_bytes([*a, *b, *c, *d]),
        _ => 0,
    }
}

/// The packages of one repository's primary, interned and indexed (see the
/// module documentation). Built by [`Builder`] or read by [`load`]/[`decode`].
#[derive(Clone)]
pub struct RepoData {
    buf: Vec<u8>,
    /// Byte range of each section in `buf`.
    sec: [(usize, usize); NSEC],
}

impl std::fmt::Debug for RepoData {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("RepoData")
            .field("packages", &self.len())
            .field("strings", &self.nwords(S_STR_OFF).saturating_sub(1))
            .finish()
    }
}

impl PartialEq for RepoData {
    fn eq(&self, other: &Self) -> bool {
        (0..NSEC).all(|s| self.bytes(s) == other.bytes(s))
    }
}

impl Eq for RepoData {}

impl Default for RepoData {
    fn default() -> Self {
        Builder::new().finish()
    }
}

impl RepoData {
    fn bytes(&self, s: usize) -> &[u8] {
        let (a, b) = self.sec[s];
        self.buf.get(a..b).unwrap_or(&[])
    }

    fn nwords(&self, s: usize) -> usize {
        self.bytes(s).len() / 4
    }

    /// Word `i` of section `s`, 0 when out of range.
    fn word(&self, s: usize, i: usize) -> u32 {
        match i.checked_mul(4) {
            Some(o) => self.bytes(s).get(o..).map_or(0, le),
            None => 0,
        }
    }

    /// Number of packages.
    pub fn len(&self) -> usize {
        self.nwords(S_PKGS) / PKG_WORDS
    }

    /// Whether there are no packages.
    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }

    /// String `id` as bytes ("" when out of range).
    fn sb(&self, id: u32) -> &[u8] {
        let id = id as usize;
        let (a, b) = (
            self.word(S_STR_OFF, id) as usize,
            self.word(S_STR_OFF, id + 1) as usize,
        );
        self.bytes(S_STRINGS).get(a..b).unwrap_or(&[])
    }

    /// String `id` ("" when out of range or not UTF-8).
    fn s(&self, id: u32) -> &str {
        std::str::from_utf8(self.sb(id)).unwrap_or("")
    }

    fn pword(&self, i: usize, k: usize) -> u32 {
        if i >= self.len() {
            return 0;
        }
        self.word(S_PKGS, i * PKG_WORDS + k)
    }

    /// Interned id of package `i`'s name (equal ids mean equal names within
    /// one `RepoData`).
    pub fn name_id(&self, i: usize) -> u32 {
        self.pword(i, 0)
    }

    /// Interned id of package `i`'s arch.
    pub fn arch_id(&self, i: usize) -> u32 {
        self.pword(i, 1)
    }

    /// Interned ids of package `i`'s name, epoch, version, release and arch.
    pub fn nevra_ids(&self, i: usize) -> [u32; 5] {
        [
            self.pword(i, 0),
            self.pword(i, 4),
            self.pword(i, 2),
            self.pword(i, 3),
            self.pword(i, 1),
        ]
    }

    /// Name of package `i`.
    pub fn name(&self, i: usize) -> &str {
        self.s(self.pword(i, 0))
    }

    /// Arch of package `i`.
    pub fn arch(&self, i: usize) -> &str {
        self.s(self.pword(i, 1))
    }

    /// Version of package `i`.
    pub fn version(&self, i: usize) -> &str {
        self.s(self.pword(i, 2))
    }

    /// Release of package `i`.
    pub fn release(&self, i: usize) -> &str {
        self.s(self.pword(i, 3))
    }

    /// Epoch of package `i`.
    pub fn epoch(&self, i: usize) -> u32 {
        self.pword(i, 4)
    }

    /// Checksum (hex) of package `i`; also its filelists pkgid.
    pub fn checksum(&self, i: usize) -> &str {
        self.s(self.pword(i, 6))
    }

    /// String of an id returned by [`Self::name_id`] or [`Self::arch_id`].
    pub fn string(&self, id: u32) -> &str {
        self.s(id)
    }

    /// Bounds of a range of `i`'s entries in an offsets section.
    fn range(&self, off: usize, k: usize) -> std::ops::Range<usize> {
        let a = self.word(off, k) as usize;
        let b = self.word(off, k + 1) as usize;
        a..b.max(a)
    }

    /// One dependency list of package `i`.
    pub fn deps(&self, i: usize, kind: DepKind) -> impl Iterator<Item = DepRef<'_>> + '_ {
        let r = if i < self.len() {
            self.range(S_DEP_OFF, i * KINDS + kind as usize)
        } else {
            0..0
        };
        let n = self.nwords(S_DEPS) / DEP_WORDS;
        (r.start.min(n)..r.end.min(n)).map(move |d| {
            let w = |k| self.word(S_DEPS, d * DEP_WORDS + k);
            let bits = w(2);
            DepRef {
                name: self.s(w(0)),
                evr: self.s(w(1)),
                sense: bits_sense(bits),
                flags: bits >> 3,
            }
        })
    }

    /// Files of package `i` known to primary.
    pub fn files(&self, i: usize) -> impl Iterator<Item = &str> + '_ {
        let r = if i < self.len() {
            self.range(S_FILE_OFF, i)
        } else {
            0..0
        };
        let n = self.nwords(S_FILES);
        (r.start.min(n)..r.end.min(n)).map(|f| self.s(self.word(S_FILES, f)))
    }

    /// Package `i` as an owned [`RepoPackage`] (with `repo` 0).
    pub fn package(&self, i: usize) -> RepoPackage {
        let list = |k| self.deps(i, k).map(|d| d.to_dependency()).collect();
        RepoPackage {
            name: self.name(i).to_owned(),
            arch: self.arch(i).to_owned(),
            epoch: self.epoch(i),
            version: self.version(i).to_owned(),
            release: self.release(i).to_owned(),
            checksum_type: self.s(self.pword(i, 5)).to_owned(),
            checksum: self.checksum(i).to_owned(),
            href: self.s(self.pword(i, 7)).to_owned(),
            size: u64::from(self.pword(i, 8)) | (u64::from(self.pword(i, 9)) << 32),
            repo: 0,
            provides: list(DepKind::Provides),
            requires: list(DepKind::Requires),
            conflicts: list(DepKind::Conflicts),
            obsoletes: list(DepKind::Obsoletes),
            recommends: list(DepKind::Recommends),
            suggests: list(DepKind::Suggests),
            supplements: list(DepKind::Supplements),
            enhances: list(DepKind::Enhances),
            files: self.files(i).map(str::to_owned).collect(),
        }
    }

    /// Every package as an owned [`RepoPackage`].
    pub fn packages(&self) -> Vec<RepoPackage> {
        (0..self.len()).map(|i| self.package(i)).collect()
    }

    fn index_secs(index: IndexKind) -> (usize, usize, usize) {
        let b = S_INDEX + 3 * index as usize;
        (b, b + 1, b + 2)
    }

    /// The values of key number `k` of an index.
    fn index_vals(&self, index: IndexKind, k: usize) -> impl Iterator<Item = u32> + '_ {
        let (_, off, vals) = Self::index_secs(index);
        let r = self.range(off, k);
        let n = self.nwords(vals);
        (r.start.min(n)..r.end.min(n)).map(move |v| self.word(vals, v))
    }

    /// Packages (ascending indexes) under `key` in an index.
    pub fn lookup(&self, index: IndexKind, key: &str) -> impl Iterator<Item = u32> + '_ {
        let (keys, _, _) = Self::index_secs(index);
        let key = key.as_bytes();
        let (mut lo, mut hi) = (0, self.nwords(keys));
        let mut found = None;
        while lo < hi {
            let mid = lo + (hi - lo) / 2;
            match self.sb(self.word(keys, mid)).cmp(key) {
                std::cmp::Ordering::Less => lo = mid + 1,
                std::cmp::Ordering::Greater => hi = mid,
                std::cmp::Ordering::Equal => {
                    found = Some(mid);
                    break;
                }
            }
        }
        found
            .into_iter()
            .flat_map(move |k| self.index_vals(index, k))
    }

    /// Keys of an index with their packages, in string order.
    pub fn entries(
        &self,
        index: IndexKind,
    ) -> impl Iterator<Item = (&str, impl Iterator<Item = u32> + '_)> + '_ {
        let (keys, _, _) = Self::index_secs(index);
        (0..self.nwords(keys)).map(move |k| (self.s(self.word(keys, k)), self.index_vals(index, k)))
    }

    /// The package lists of an index, in key order.
    pub fn groups(
        &self,
        index: IndexKind,
    ) -> impl Iterator<Item = impl Iterator<Item = u32> + '_> + '_ {
        let (keys, _, _) = Self::index_secs(index);
        (0..self.nwords(keys)).map(move |k| self.index_vals(index, k))
    }

    /// Packages with Supplements, ascending.
    pub fn supplementers(&self) -> impl Iterator<Item = u32> + '_ {
        (0..self.nwords(S_SUPPL)).map(|i| self.word(S_SUPPL, i))
    }
}

/// Builds a [`RepoData`] package by package, interning strings as it goes.
pub struct Builder {
    strings: String,
    str_off: Vec<u32>,
    table: hashbrown::HashTable<u32>,
    hasher: rustc_hash::FxBuildHasher,
    /// Direct-mapped cache of recent (hash, id) pairs in front of `table`:
    /// the same few names and versions recur in most packages.
    recent: Vec<(u64, u32)>,
    pkgs: Vec<u32>,
    deps: Vec<u32>,
    dep_off: Vec<u32>,
    files: Vec<u32>,
    file_off: Vec<u32>,
    cur: Scratch,
}

/// The package being received through [`PrimarySink`].
#[derive(Default)]
struct Scratch {
    name: String,
    arch: String,
    checksum: String,
    epoch: u32,
    version: u32,
    release: u32,
    checksum_type: u32,
    href: u32,
    size: u64,
    deps: [Vec<[u32; DEP_WORDS]>; KINDS],
    files: Vec<u32>,
}

impl std::fmt::Debug for Builder {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Builder")
            .field("packages", &(self.pkgs.len() / PKG_WORDS))
            .finish()
    }
}

impl Default for Builder {
    fn default() -> Self {
        Self::new()
    }
}

fn str_at<'a>(strings: &'a str, off: &[u32], id: u32) -> &'a str {
    let id = id as usize;
    match (off.get(id), off.get(id + 1)) {
        (Some(&a), Some(&b)) => strings.get(a as usize..b as usize).unwrap_or(""),
        _ => "",
    }
}

/// Slots of [`Builder`]'s recent-string cache.
const RECENT: usize = 4096;

fn to_u32(n: usize) -> u32 {
    // Cache files are capped far below 4 GiB of any one array.
    u32::try_from(n).unwrap_or(u32::MAX)
}

impl Builder {
    /// An empty builder.
    pub fn new() -> Self {
        Builder {
            strings: String::new(),
            // String 0 is "" (never in `table`: `intern` answers it first).
            str_off: vec![0, 0],
            table: hashbrown::HashTable::new(),
            hasher: rustc_hash::FxBuildHasher,
            recent: vec![(0, 0); RECENT],
            pkgs: Vec::new(),
            deps: Vec::new(),
            dep_off: vec![0],
            files: Vec::new(),
            file_off: vec![0],
            cur: Scratch::default(),
        }
    }

    /// An empty builder with room for about `packages` packages.
    pub fn with_capacity(packages: usize) -> Self {
        let mut b = Self::new();
        b.table.reserve(packages * 4, |_| 0);
        b.strings.reserve(packages * 100);
        b.str_off.reserve(packages * 4);
        b.pkgs.reserve(packages * PKG_WORDS);
        b.deps.reserve(packages * 8 * DEP_WORDS);
        b.dep_off.reserve(packages * KINDS + 1);
        b
    }

    fn intern(&mut self, s: &str) -> u32 {
        use std::hash::BuildHasher;
        if s.is_empty() {
            // Unversioned dependencies' EVR, mostly.
            return 0;
        }
        let h = self.hasher.hash_one(s);
        let Builder {
            strings,
            str_off,
            table,
            hasher,
            recent,
            ..
        } = self;
        let slot = (h >> 32) as usize % RECENT;
        let (rh, rid) = recent[slot];
        if rh == h && str_at(strings, str_off, rid) == s {
            return rid;
        }
        let id = match table.find(h, |&id| str_at(strings, str_off, id) == s) {
            Some(&id) => id,
            None => {
                let id = to_u32(str_off.len() - 1);
                strings.push_str(s);
                str_off.push(to_u32(strings.len()));
                table.insert_unique(h, id, |&id| hasher.hash_one(str_at(strings, str_off, id)));
                id
            }
        };
        recent[slot] = (h, id);
        id
    }

    /// Stores a string that is never looked up again (a checksum, an href):
    /// not interned, so not hashed.
    fn unique(&mut self, s: &str) -> u32 {
        if s.is_empty() {
            return 0;
        }
        let id = to_u32(self.str_off.len() - 1);
        self.strings.push_str(s);
        self.str_off.push(to_u32(self.strings.len()));
        id
    }

    /// Appends a package (its `repo` is not kept).
    pub fn push(&mut self, p: &RepoPackage) {
        self.start();
        self.text(PrimaryText::Name, &p.name);
        self.text(PrimaryText::Arch, &p.arch);
        self.text(PrimaryText::Checksum, &p.checksum);
        self.version(p.epoch, &p.version, &p.release);
        self.checksum_type(&p.checksum_type);
        self.href(&p.href);
        self.size(p.size);
        for (kind, list) in ALL_KINDS.into_iter().zip([
            &p.provides,
            &p.requires,
            &p.conflicts,
            &p.obsoletes,
            &p.recommends,
            &p.suggests,
            &p.supplements,
            &p.enhances,
        ]) {
            for d in list {
                self.dep(kind, &d.name, d.sense, &d.evr, d.flags);
            }
        }
        for f in &p.files {
            self.text(PrimaryText::File, f);
        }
        self.flush();
    }

    /// Appends the package in `cur`.
    fn flush(&mut self) {
        let name = std::mem::take(&mut self.cur.name);
        let arch = std::mem::take(&mut self.cur.arch);
        let checksum = std::mem::take(&mut self.cur.checksum);
        let rec = [
            self.intern(&name),
            self.intern(&arch),
            self.cur.version,
            self.cur.release,
            self.cur.epoch,
            self.cur.checksum_type,
            self.unique(&checksum),
            self.cur.href,
            self.cur.size as u32,
            (self.cur.size >> 32) as u32,
        ];
        // Keep the buffers' capacity for the next package.
        (self.cur.name, self.cur.arch, self.cur.checksum) = (name, arch, checksum);
        self.pkgs.extend_from_slice(&rec);
        for list in &self.cur.deps {
            self.deps.extend(list.iter().flatten());
            self.dep_off.push(to_u32(self.deps.len() / DEP_WORDS));
        }
        self.files.extend_from_slice(&self.cur.files);
        self.file_off.push(to_u32(self.files.len()));
    }

    /// Builds the indexes.
    pub fn finish(self) -> RepoData {
        let Builder {
            strings,
            str_off,
            pkgs,
            deps,
            dep_off,
            files,
            file_off,
            table,
            ..
        } = self;
        drop(table);
        let n = pkgs.len() / PKG_WORDS;
        let mut pairs: [Vec<(u32, u32)>; INDEXES] = Default::default();
        pairs[IndexKind::Names as usize].reserve(n);
        pairs[IndexKind::Provides as usize].reserve(n * 2);
        let mut supplementers = Vec::new();
        let at = |v: &[u32], i: usize| v.get(i).copied().unwrap_or(0) as usize;
        for i in 0..n {
            let p = to_u32(i);
            let name = pkgs[i * PKG_WORDS];
            pairs[IndexKind::Names as usize].push((name, p));
            pairs[IndexKind::Provides as usize].push((name, p));
            for kind in ALL_KINDS {
                let k = i * KINDS + kind as usize;
                for d in at(&dep_off, k)..at(&dep_off, k + 1) {
                    let dname = deps[d * DEP_WORDS];
                    match kind {
                        DepKind::Provides => pairs[IndexKind::Provides as usize].push((dname, p)),
                        DepKind::Obsoletes => pairs[IndexKind::Obsoletes as usize].push((dname, p)),
                        DepKind::Requires | DepKind::Conflicts | DepKind::Recommends
                            if str_at(&strings, &str_off, dname).starts_with('/') =>
                        {
                            pairs[IndexKind::RequiredFiles as usize].push((dname, p))
                        }
                        _ => {}
                    }
                }
            }
            let s = i * KINDS + DepKind::Supplements as usize;
            if at(&dep_off, s) != at(&dep_off, s + 1) {
                supplementers.push(p);
            }
            for &f in &files[at(&file_off, i)..at(&file_off, i + 1)] {
                pairs[IndexKind::Files as usize].push((f, p));
            }
        }
        let indexes = pairs.map(|mut v| {
            v.sort_unstable();
            v.dedup();
            // Runs of one key, then the runs in string order (compared by an
            // 8-byte prefix first, which settles most pairs without touching
            // the strings).
            let prefix = |id: u32| {
                let mut b = [0u8; 8];
                let s = str_at(&strings, &str_off, id).as_bytes();
                let n = s.len().min(8);
                b[..n].copy_from_slice(&s[..n]);
                u64::from_be_bytes(b)
            };
            let mut runs: Vec<(u64, u32, usize, usize)> = Vec::new();
            let mut start = 0;
            for j in 1..=v.len() {
                if j == v.len() || v[j].0 != v[start].0 {
                    runs.push((prefix(v[start].0), v[start].0, start, j));
                    start = j;
                }
            }
            runs.sort_unstable_by(|a, b| {
                a.0.cmp(&b.0).then_with(|| {
                    str_at(&strings, &str_off, a.1).cmp(str_at(&strings, &str_off, b.1))
                })
            });
            let mut keys = Vec::with_capacity(runs.len());
            let mut off = Vec::with_capacity(runs.len() + 1);
            let mut vals = Vec::with_capacity(v.len());
            off.push(0);
            for (_, key, a, b) in runs {
                keys.push(key);
                vals.extend(v[a..b].iter().map(|&(_, p)| p));
                off.push(to_u32(vals.len()));
            }
            [keys, off, vals]
        });
        let mut arrays: Vec<&[u32]> = vec![&str_off, &pkgs, &deps, &dep_off, &files, &file_off];
        for ix in &indexes {
            arrays.extend(ix.iter().map(Vec::as_slice));
        }
        arrays.push(&supplementers);
        let total = strings.len() + arrays.iter().map(|a| a.len() * 4).sum::<usize>() + 8 * NSEC;
        let mut buf = Vec::with_capacity(total);
        let mut sec = [(0, 0); NSEC];
        buf.extend_from_slice(&(strings.len() as u64).to_le_bytes());
        sec[S_STRINGS] = (buf.len(), buf.len() + strings.len());
        buf.extend_from_slice(strings.as_bytes());
        for (k, a) in arrays.iter().enumerate() {
            buf.extend_from_slice(&((a.len() * 4) as u64).to_le_bytes());
            let start = buf.len();
            for x in a.iter() {
                buf.extend_from_slice(&x.to_le_bytes());
            }
            sec[k + 1] = (start, buf.len());
        }
        RepoData { buf, sec }
    }
}

impl PrimarySink for Builder {
    fn start(&mut self) {
        let c = &mut self.cur;
        c.name.clear();
        c.arch.clear();
        c.checksum.clear();
        (
            c.epoch,
            c.version,
            c.release,
            c.checksum_type,
            c.href,
            c.size,
        ) = (0, 0, 0, 0, 0, 0);
        c.deps.iter_mut().for_each(Vec::clear);
        c.files.clear();
    }

    fn text(&mut self, field: PrimaryText, s: &str) {
        match field {
            PrimaryText::Name => self.cur.name.push_str(s),
            PrimaryText::Arch => self.cur.arch.push_str(s),
            PrimaryText::Checksum => self.cur.checksum.push_str(s),
            PrimaryText::File => {
                let id = self.intern(s);
                self.cur.files.push(id);
            }
        }
    }

    fn version(&mut self, epoch: u32, ver: &str, rel: &str) {
        self.cur.epoch = epoch;
        self.cur.version = self.intern(ver);
        self.cur.release = self.intern(rel);
    }

    fn checksum_type(&mut self, s: &str) {
        self.cur.checksum_type = self.intern(s);
    }

    fn href(&mut self, s: &str) {
        self.cur.href = self.unique(s);
    }

    fn size(&mut self, n: u64) {
        self.cur.size = n;
    }

    fn dep(&mut self, kind: DepKind, name: &str, sense: Sense, evr: &str, flags: u32) {
        let rec = [
            self.intern(name),
            self.intern(evr),
            sense_bits(sense) | (flags << 3),
        ];
        self.cur.deps[kind as usize].push(rec);
    }

    fn end(&mut self) {
        // A package requiring what it provides itself needs nothing.
        self.cur.deps[DepKind::Requires as usize].dedup();
        self.flush();
    }
}

impl RepoData {
    /// Interned data of `packages`.
    pub fn from_packages<'a>(packages: impl IntoIterator<Item = &'a RepoPackage>) -> Self {
        let mut b = Builder::new();
        for p in packages {
            b.push(p);
        }
        b.finish()
    }
}

fn corrupt(path: &Path, reason: impl Into<String>) -> Error {
    Error::corrupt(path, reason)
}

fn header(key: &Key) -> Vec<u8> {
    let mut out = Vec::with_capacity(MAGIC.len() + 12 + 256);
    out.extend_from_slice(MAGIC);
    out.extend_from_slice(&FORMAT_VERSION.to_le_bytes());
    for s in [&key.repomd_checksum, &key.primary_checksum] {
        out.extend_from_slice(&to_u32(s.len()).to_le_bytes());
        out.extend_from_slice(s.as_bytes());
    }
    out
}

/// The sections of `data` as stored (without the header).
fn sections(data: &RepoData) -> impl Iterator<Item = &[u8]> + '_ {
    (0..NSEC).map(|s| data.bytes(s))
}

/// Encodes a cache file's bytes.
pub fn encode(key: &Key, data: &RepoData) -> Vec<u8> {
    let mut out = header(key);
    for b in sections(data) {
        out.extend_from_slice(&(b.len() as u64).to_le_bytes());
        out.extend_from_slice(b);
    }
    let crc = crc32fast::hash(&out);
    out.extend_from_slice(&crc.to_le_bytes());
    out
}

/// A bounds-checked cursor over a cache file's bytes.
struct Cursor<'a> {
    bytes: &'a [u8],
    pos: usize,
}

impl<'a> Cursor<'a> {
    fn take(&mut self, n: usize, what: &str) -> std::result::Result<(usize, usize), String> {
        match self.pos.checked_add(n) {
            Some(end) if end <= self.bytes.len() => {
                let r = (self.pos, end);
                self.pos = end;
                Ok(r)
            }
            _ => Err(format!("truncated in {what}")),
        }
    }

    fn u32(&mut self, what: &str) -> std::result::Result<u32, String> {
        let (a, _) = self.take(4, what)?;
        Ok(le(&self.bytes[a..]))
    }

    fn len64(&mut self, what: &str) -> std::result::Result<usize, String> {
        let (a, b) = self.take(8, what)?;
        let mut x = [0u8; 8];
        x.copy_from_slice(&self.bytes[a..b]);
        usize::try_from(u64::from_le_bytes(x)).map_err(|_| format!("{what}: length overflows"))
    }

    fn string(&mut self, what: &str) -> std::result::Result<&'a str, String> {
        let n = self.u32(what)? as usize;
        let (a, b) = self.take(n, what)?;
        std::str::from_utf8(&self.bytes[a..b]).map_err(|_| format!("{what}: not UTF-8"))
    }
}

/// Decodes a cache file's bytes (taking the buffer: the data stays in it),
/// checking them against `key`.
pub fn decode(bytes: Vec<u8>, key: &Key) -> std::result::Result<RepoData, String> {
    if bytes.len() < MAGIC.len() + 4 + CRC_LEN || &bytes[..MAGIC.len()] != MAGIC {
        return Err("not a rost package cache".into());
    }
    let body_len = bytes.len() - CRC_LEN;
    let (sec, rest) = {
        let mut c = Cursor {
            bytes: &bytes[..body_len],
            pos: MAGIC.len(),
        };
        let version = c.u32("version")?;
        if version != FORMAT_VERSION {
            return Err(format!(
                "format version {version}, this rost reads {FORMAT_VERSION}"
            ));
        }
        let repomd = c.string("key")?;
        let primary = c.string("key")?;
        if repomd != key.repomd_checksum || primary != key.primary_checksum {
            return Err(format!(
                "written for repomd {repomd} / primary {primary}, not repomd {} / primary {}",
                key.repomd_checksum, key.primary_checksum
            ));
        }
        if crc32fast::hash(&bytes[..body_len]) != le(&bytes[body_len..]) {
            return Err("checksum mismatch".into());
        }
        let mut sec = [(0, 0); NSEC];
        for (k, s) in sec.iter_mut().enumerate() {
            let n = c.len64("section table")?;
            if k != S_STRINGS && n % 4 != 0 {
                return Err(format!("section {k}: {n} bytes, not whole words"));
            }
            *s = c.take(n, "sections")?;
        }
        (sec, body_len - c.pos)
    };
    if rest != 0 {
        return Err(format!("{rest} trailing bytes"));
    }
    let data = RepoData { buf: bytes, sec };
    if !data.nwords(S_PKGS).is_multiple_of(PKG_WORDS)
        || !data.nwords(S_DEPS).is_multiple_of(DEP_WORDS)
        || data.nwords(S_DEP_OFF) != data.len() * KINDS + 1
        || data.nwords(S_FILE_OFF) != data.len() + 1
    {
        return Err("section sizes do not agree".into());
    }
    Ok(data)
}

/// Reads the cache file at `path`, if it exists and matches `key`.
///
/// Every failure (missing, stale, truncated, corrupt) is an error; callers fall
/// back to parsing the XML.
pub fn load(path: &Path, key: &Key) -> Result<RepoData> {
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
    decode(bytes, key).map_err(|r| corrupt(path, r))
}

/// Writes the cache file at `path` atomically (temporary file, then rename).
pub fn store(path: &Path, key: &Key, data: &RepoData) -> Result<()> {
    let head = header(key);
    let size = head.len() + (0..NSEC).map(|s| 8 + data.bytes(s).len()).sum::<usize>() + CRC_LEN;
    if size as u64 > MAX_FILE_SIZE {
        return Err(corrupt(path, "over the cache cap; not written"));
    }
    let dir = path
        .parent()
        .ok_or_else(|| corrupt(path, "cache path has no directory"))?;
    std::fs::create_dir_all(dir).map_err(|e| Error::io("creating directory", dir, e))?;
    let mut tmp = tempfile::Builder::new()
        .prefix(".primary.")
        .suffix(".tmp")
        .tempfile_in(dir)
        .map_err(|e| Error::io("creating a temporary file in", dir, e))?;
    {
        let mut crc = crc32fast::Hasher::new();
        let mut out = std::io::BufWriter::with_capacity(1 << 20, tmp.as_file_mut());
        let mut put = |b: &[u8]| -> std::io::Result<()> {
            crc.update(b);
            out.write_all(b)
        };
        let written: std::io::Result<()> = (|| {
            put(&head)?;
            for b in sections(data) {
                put(&(b.len() as u64).to_le_bytes())?;
                put(b)?;
            }
            Ok(())
        })();
        written
            .and_then(|()| out.write_all(&crc.finalize().to_le_bytes()))
            .and_then(|()| out.flush())
            .map_err(|e| Error::io("writing", path, e))?;
    }
    // Readable like the rest of the metadata cache (tempfile creates 0600).
    tmp.as_file()
        .set_permissions(
            <std::fs::Permissions as std::os::unix::fs::PermissionsExt>::from_mode(0o644),
        )
        .map_err(|e| Error::io("setting permissions of", tmp.path(), e))?;
    tmp.persist(path)
        .map_err(|e| Error::io("renaming into place", path, e.error))?;
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;
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
                name: format!("pkg{}", i % 40),
                arch: "x86_64".into(),
                epoch: i % 3,
                version: format!("1.{i}"),
                release: "1.fc41".into(),
                checksum_type: "sha256".into(),
                checksum: format!("{i:064x}"),
                href: format!("Packages/pkg{i}.rpm"),
                size: 1000 + u64::from(i) + (u64::from(i) << 33),
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
                obsoletes: vec![Dependency::any(&format!("old{}", i % 7))],
                recommends: if i % 2 == 0 {
                    vec![Dependency::any("r")]
                } else {
                    vec![]
                },
                supplements: if i % 5 == 0 {
                    vec![Dependency::any("s")]
                } else {
                    vec![]
                },
                files: vec![format!("/usr/bin/pkg{i}"), "/usr/share/doc".into()],
                ..Default::default()
            })
            .collect()
    }

    #[test]
    fn round_trip() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("sub").join(FILE_NAME);
        let pkgs = packages();
        let data = RepoData::from_packages(&pkgs);
        assert_eq!(data.packages(), pkgs);
        store(&path, &key("r1"), &data).unwrap();
        let back = load(&path, &key("r1")).unwrap();
        assert_eq!(back, data);
        assert_eq!(back.packages(), pkgs);
        // Nothing but the cache file is left behind.
        let names: Vec<_> = std::fs::read_dir(path.parent().unwrap())
            .unwrap()
            .map(|e| e.unwrap().file_name())
            .collect();
        assert_eq!(names, [FILE_NAME]);
        // Empty repos round-trip too.
        store(&path, &key("r1"), &RepoData::default()).unwrap();
        assert!(load(&path, &key("r1")).unwrap().is_empty());
    }

    #[test]
    fn indexes() {
        let data = RepoData::from_packages(&packages());
        let get = |k, key| data.lookup(k, key).collect::<Vec<u32>>();
        assert_eq!(get(IndexKind::Names, "pkg3"), [3, 43]);
        assert_eq!(get(IndexKind::Names, "pkg45"), [] as [u32; 0]);
        // Own names and explicit provides.
        assert_eq!(get(IndexKind::Provides, "pkg45"), [45]);
        assert_eq!(get(IndexKind::Provides, "pkg5"), [5, 45]);
        assert_eq!(get(IndexKind::Files, "/usr/bin/pkg7"), [7]);
        assert_eq!(get(IndexKind::Files, "/usr/share/doc").len(), 50);
        assert_eq!(
            get(IndexKind::Obsoletes, "old3"),
            [3, 10, 17, 24, 31, 38, 45]
        );
        let req: Vec<&str> = data
            .entries(IndexKind::RequiredFiles)
            .map(|(k, _)| k)
            .collect();
        assert_eq!(req, ["/bin/sh"]);
        assert_eq!(
            data.supplementers().collect::<Vec<_>>(),
            [0, 5, 10, 15, 20, 25, 30, 35, 40, 45]
        );
        let keys: Vec<&str> = data.entries(IndexKind::Names).map(|(k, _)| k).collect();
        assert!(keys.windows(2).all(|w| w[0] < w[1]), "{keys:?}");
    }

    #[test]
    fn checksum_change_invalidates() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join(FILE_NAME);
        store(&path, &key("r1"), &RepoData::from_packages(&packages())).unwrap();
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
        let good = encode(&key("r1"), &RepoData::from_packages(&packages()));
        assert_eq!(
            decode(good.clone(), &key("r1")).unwrap().packages(),
            packages()
        );
        // Every truncation fails, none panics.
        for n in (0..good.len()).step_by(37) {
            assert!(
                decode(good[..n].to_vec(), &key("r1")).is_err(),
                "truncated at {n}"
            );
        }
        // Flipped bytes anywhere fail (magic, version, checksum, key, packages).
        for i in (0..good.len()).step_by(13) {
            let mut bad = good.clone();
            bad[i] ^= 0x40;
            assert!(decode(bad, &key("r1")).is_err(), "flipped byte {i}");
        }
        // Trailing garbage fails.
        let mut long = good.clone();
        long.push(0);
        assert!(decode(long, &key("r1")).is_err());
        // A newer format version is not read.
        let mut newer = good.clone();
        newer[8..12].copy_from_slice(&(FORMAT_VERSION + 1).to_le_bytes());
        assert!(
            decode(newer, &key("r1"))
                .unwrap_err()
                .contains("format version")
        );
    }

    /// Re-checksums a tampered body, so that only the structural checks and
    /// the bounds-checked accessors stand between it and the pool.
    fn rechecksum(mut body: Vec<u8>) -> Vec<u8> {
        let crc = crc32fast::hash(&body);
        body.extend_from_slice(&crc.to_le_bytes());
        body
    }

    #[test]
    fn damage_with_a_good_checksum_never_panics() {
        let good = encode(&key("r1"), &RepoData::from_packages(&packages()));
        let body = &good[..good.len() - CRC_LEN];
        // Every single-byte change past the key, re-checksummed: decoding either
        // fails or yields data whose accessors stay in bounds.
        let head = MAGIC.len() + 4 + 4 + 2 + 4 + 2;
        for i in (head..body.len()).step_by(41) {
            for x in [0x01, 0x80, 0xff] {
                let mut bad = body.to_vec();
                bad[i] ^= x;
                if let Ok(d) = decode(rechecksum(bad), &key("r1")) {
                    let _ = d.supplementers().count();
                    for p in 0..d.len() {
                        let _ = d.package(p);
                    }
                    for kind in [
                        IndexKind::Names,
                        IndexKind::Provides,
                        IndexKind::Files,
                        IndexKind::Obsoletes,
                        IndexKind::RequiredFiles,
                    ] {
                        let _ = d.entries(kind).map(|(_, v)| v.count()).sum::<usize>();
                        let _ = d.lookup(kind, "pkg3").count();
                    }
                }
            }
        }
        // Lengths claiming more than the file: rejected without allocating them.
        let mut huge = body[..head].to_vec();
        huge.extend_from_slice(&(1u64 << 60).to_le_bytes());
        assert!(decode(rechecksum(huge), &key("r1")).is_err());
        let mut huge = body[..head].to_vec();
        huge.extend_from_slice(&0u64.to_le_bytes());
        huge.extend_from_slice(&(u64::MAX / 2).to_le_bytes());
        assert!(decode(rechecksum(huge), &key("r1")).is_err());
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
