//! rpm-md metadata as createrepo_c writes it: `repomd.xml`, `primary.xml`,
//! `filelists.xml`, compressed with gzip, xz, zstd or bzip2.
//!
//! Parsing streams through `quick-xml` over a decompressing reader, so memory holds
//! the parsed packages, never the raw XML (Fedora's primary is ~130 MB unpacked).

use std::borrow::Cow;
use std::collections::HashMap;
use std::io::{BufRead, BufReader, Read};
use std::path::Path;

use quick_xml::events::{BytesStart, Event};
use sha2::Digest;

use crate::error::{Error, Result};
use crate::evr::Sense;
use crate::header::Dependency;
use crate::poolcache::DepKind;

/// One `<data type=…>` entry of `repomd.xml`.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct RepomdRecord {
    /// `primary`, `filelists`, `other`, …
    pub kind: String,
    /// `location href` relative to the repo root.
    pub href: String,
    /// Checksum type (`sha256`, …).
    pub checksum_type: String,
    /// Checksum of the (compressed) file, hex.
    pub checksum: String,
    /// Size in bytes, when given.
    pub size: Option<u64>,
}

/// Parsed `repomd.xml`.
#[derive(Debug, Clone, Default)]
pub struct Repomd {
    /// `<revision>`.
    pub revision: String,
    /// Data records.
    pub records: Vec<RepomdRecord>,
}

impl Repomd {
    /// The record of a kind.
    pub fn record(&self, kind: &str) -> Option<&RepomdRecord> {
        self.records.iter().find(|r| r.kind == kind)
    }
}

fn xml_err(file: &str, reader_pos: u64, e: impl std::fmt::Display) -> Error {
    Error::Parse {
        file: file.to_owned(),
        line: 0,
        reason: format!("XML error at byte {reader_pos}: {e}"),
    }
}

fn attr(e: &BytesStart<'_>, key: &[u8]) -> Option<String> {
    e.attributes()
        .with_checks(false)
        .flatten()
        .find(|a| a.key.as_ref() == key)
        .map(|a| attr_string(&a.value))
}

/// An attribute value as a `String`, unescaping only when it holds an entity.
fn attr_string(raw: &[u8]) -> String {
    if !raw.contains(&b'&') {
        return match std::str::from_utf8(raw) {
            Ok(s) => s.to_owned(),
            Err(_) => String::from_utf8_lossy(raw).into_owned(),
        };
    }
    let lossy = String::from_utf8_lossy(raw);
    match quick_xml::escape::unescape(&lossy) {
        Ok(v) => v.into_owned(),
        Err(_) => lossy.into_owned(),
    }
}

/// Appends an attribute value to `out`, unescaping only when it holds an entity.
fn push_attr(out: &mut String, raw: &[u8]) {
    match std::str::from_utf8(raw) {
        Ok(s) if !raw.contains(&b'&') => out.push_str(s),
        _ => out.push_str(&attr_string(raw)),
    }
}

/// Parses `repomd.xml`.
pub fn parse_repomd(bytes: &[u8], file: &str) -> Result<Repomd> {
    let mut r = quick_xml::Reader::from_reader(bytes);
    let mut buf = Vec::new();
    let mut md = Repomd::default();
    let mut cur: Option<RepomdRecord> = None;
    let mut text_target: Option<&'static str> = None;
    loop {
        let ev = r
            .read_event_into(&mut buf)
            .map_err(|e| xml_err(file, r.buffer_position(), e))?;
        match ev {
            Event::Start(e) | Event::Empty(e) => match e.local_name().as_ref() {
                b"data" => {
                    cur = Some(RepomdRecord {
                        kind: attr(&e, b"type").unwrap_or_default(),
                        ..Default::default()
                    })
                }
                b"location" => {
                    if let Some(c) = cur.as_mut() {
                        c.href = attr(&e, b"href").unwrap_or_default();
                    }
                }
                b"checksum" => {
                    if let Some(c) = cur.as_mut() {
                        c.checksum_type = attr(&e, b"type").unwrap_or_default();
                        text_target = Some("checksum");
                    }
                }
                b"size" if cur.is_some() => text_target = Some("size"),
                b"revision" => text_target = Some("revision"),
                _ => text_target = None,
            },
            Event::Text(t) => {
                let s = t
                    .unescape()
                    .map_err(|e| xml_err(file, r.buffer_position(), e))?;
                let s = s.trim();
                match (text_target, cur.as_mut()) {
                    (Some("checksum"), Some(c)) => c.checksum = s.to_owned(),
                    (Some("size"), Some(c)) => c.size = s.parse().ok(),
                    (Some("revision"), _) => md.revision = s.to_owned(),
                    _ => {}
                }
            }
            Event::End(e) => {
                text_target = None;
                if e.local_name().as_ref() == b"data"
                    && let Some(c) = cur.take()
                {
                    md.records.push(c);
                }
            }
            Event::Eof => break,
            _ => {}
        }
        buf.clear();
    }
    if md.record("primary").is_none() {
        return Err(Error::Parse {
            file: file.to_owned(),
            line: 0,
            reason: "no primary data record".into(),
        });
    }
    Ok(md)
}

/// Wraps `r` in the decompressor its magic bytes call for (gzip, xz, zstd, bzip2,
/// or none).
pub fn decompress<'a>(mut r: impl BufRead + 'a) -> std::io::Result<Box<dyn BufRead + 'a>> {
    let head = r.fill_buf()?;
    let boxed: Box<dyn BufRead + 'a> = if head.starts_with(&[0x1f, 0x8b]) {
        Box::new(BufReader::new(flate2::bufread::MultiGzDecoder::new(r)))
    } else if head.starts_with(&[0xfd, b'7', b'z', b'X', b'Z', 0]) {
        Box::new(BufReader::new(
            liblzma::bufread::XzDecoder::new_multi_decoder(r),
        ))
    } else if head.starts_with(&[0x28, 0xb5, 0x2f, 0xfd]) {
        Box::new(BufReader::new(zstd::stream::read::Decoder::with_buffer(r)?))
    } else if head.starts_with(b"BZh") {
        Box::new(BufReader::new(bzip2::bufread::MultiBzDecoder::new(r)))
    } else {
        Box::new(r)
    };
    Ok(boxed)
}

/// Hex digest of `data` with an rpm-md checksum type.
pub fn checksum_hex(kind: &str, data: &[u8]) -> Option<String> {
    Some(match kind {
        "sha256" => hex::encode(sha2::Sha256::digest(data)),
        "sha512" => hex::encode(sha2::Sha512::digest(data)),
        "sha384" => hex::encode(sha2::Sha384::digest(data)),
        "sha224" => hex::encode(sha2::Sha224::digest(data)),
        "sha" | "sha1" => return None,
        "md5" => hex::encode(md5::Md5::digest(data)),
        _ => return None,
    })
}

/// A package as described by rpm-md.
///
/// The solver pool keeps packages interned ([`crate::poolcache::RepoData`]) and
/// turns them into `RepoPackage`s on demand.
#[derive(Debug, Clone, Default, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
pub struct RepoPackage {
    /// Name.
    pub name: String,
    /// Arch.
    pub arch: String,
    /// Epoch (0 when absent).
    pub epoch: u32,
    /// Version.
    pub version: String,
    /// Release.
    pub release: String,
    /// Package checksum type.
    pub checksum_type: String,
    /// Package checksum (hex); also the `pkgid` joining filelists.
    pub checksum: String,
    /// Location relative to the repo root.
    pub href: String,
    /// Package file size.
    pub size: u64,
    /// Index of the repository in the pool (not serialized: it belongs to the
    /// pool, not to the repository's metadata).
    #[serde(skip)]
    pub repo: usize,
    /// Provides.
    pub provides: Vec<Dependency>,
    /// Requires.
    pub requires: Vec<Dependency>,
    /// Conflicts.
    pub conflicts: Vec<Dependency>,
    /// Obsoletes.
    pub obsoletes: Vec<Dependency>,
    /// Recommends.
    pub recommends: Vec<Dependency>,
    /// Suggests.
    pub suggests: Vec<Dependency>,
    /// Supplements.
    pub supplements: Vec<Dependency>,
    /// Enhances.
    pub enhances: Vec<Dependency>,
    /// Files known so far (primary's subset, then filelists' full list).
    pub files: Vec<String>,
}

impl RepoPackage {
    /// `name-[epoch:]version-release.arch` (epoch shown only when non-zero, as dnf does).
    pub fn nevra(&self) -> String {
        if self.epoch != 0 {
            format!(
                "{}-{}:{}-{}.{}",
                self.name, self.epoch, self.version, self.release, self.arch
            )
        } else {
            format!(
                "{}-{}-{}.{}",
                self.name, self.version, self.release, self.arch
            )
        }
    }
}

/// Text fields of a `<package>` in primary.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum PrimaryText {
    /// `<name>`.
    Name,
    /// `<arch>`.
    Arch,
    /// `<checksum>` (trimmed).
    Checksum,
    /// `<file>` (one per element).
    File,
}

/// Receives primary's packages piece by piece, with strings borrowed from the
/// parser's buffer (so a consumer that interns them allocates nothing per
/// string). Calls come between [`PrimarySink::start`] and [`PrimarySink::end`].
pub trait PrimarySink {
    /// A `<package>` begins.
    fn start(&mut self);
    /// Text of a field; `Name`, `Arch` and `Checksum` may come in pieces.
    fn text(&mut self, field: PrimaryText, s: &str);
    /// `<version epoch ver rel>`.
    fn version(&mut self, epoch: u32, ver: &str, rel: &str);
    /// `<checksum type>`.
    fn checksum_type(&mut self, s: &str);
    /// `<location href>`.
    fn href(&mut self, s: &str);
    /// `<size package>`.
    fn size(&mut self, n: u64);
    /// One `<rpm:entry>` of a dependency list.
    fn dep(&mut self, kind: DepKind, name: &str, sense: Sense, evr: &str, flags: u32);
    /// The `<package>` ends.
    fn end(&mut self);
}

/// Collects [`RepoPackage`]s for a callback.
struct PackageSink<F> {
    cur: RepoPackage,
    sink: F,
}

impl<F: FnMut(RepoPackage)> PrimarySink for PackageSink<F> {
    fn start(&mut self) {
        self.cur = RepoPackage::default();
    }
    fn text(&mut self, field: PrimaryText, s: &str) {
        match field {
            PrimaryText::Name => self.cur.name.push_str(s),
            PrimaryText::Arch => self.cur.arch.push_str(s),
            PrimaryText::Checksum => self.cur.checksum.push_str(s),
            PrimaryText::File => self.cur.files.push(s.to_owned()),
        }
    }
    fn version(&mut self, epoch: u32, ver: &str, rel: &str) {
        self.cur.epoch = epoch;
        self.cur.version = ver.to_owned();
        self.cur.release = rel.to_owned();
    }
    fn checksum_type(&mut self, s: &str) {
        self.cur.checksum_type = s.to_owned();
    }
    fn href(&mut self, s: &str) {
        self.cur.href = s.to_owned();
    }
    fn size(&mut self, n: u64) {
        self.cur.size = n;
    }
    fn dep(&mut self, kind: DepKind, name: &str, sense: Sense, evr: &str, flags: u32) {
        let d = Dependency {
            name: name.to_owned(),
            sense,
            evr: evr.to_owned(),
            flags,
        };
        let p = &mut self.cur;
        match kind {
            DepKind::Provides => p.provides.push(d),
            DepKind::Requires => p.requires.push(d),
            DepKind::Conflicts => p.conflicts.push(d),
            DepKind::Obsoletes => p.obsoletes.push(d),
            DepKind::Recommends => p.recommends.push(d),
            DepKind::Suggests => p.suggests.push(d),
            DepKind::Supplements => p.supplements.push(d),
            DepKind::Enhances => p.enhances.push(d),
        }
    }
    fn end(&mut self) {
        let mut p = std::mem::take(&mut self.cur);
        // A package requiring what it provides itself needs nothing.
        p.requires.dedup();
        (self.sink)(p);
    }
}

/// An attribute value, borrowed from the event when it needs no unescaping.
fn attr_cow(v: Cow<'_, [u8]>) -> Cow<'_, str> {
    match v {
        Cow::Borrowed(b) if !b.contains(&b'&') => match std::str::from_utf8(b) {
            Ok(s) => Cow::Borrowed(s),
            Err(_) => Cow::Owned(String::from_utf8_lossy(b).into_owned()),
        },
        other => Cow::Owned(attr_string(&other)),
    }
}

/// Streams `primary.xml` (already decompressed) and calls `sink` per package.
pub fn parse_primary(
    input: impl BufRead,
    file: &str,
    sink: impl FnMut(RepoPackage),
) -> Result<usize> {
    parse_primary_into(
        input,
        file,
        &mut PackageSink {
            cur: RepoPackage::default(),
            sink,
        },
    )
}

/// Streams `primary.xml` (already decompressed) into `sink`; returns the
/// number of packages.
pub fn parse_primary_into(
    input: impl BufRead,
    file: &str,
    sink: &mut impl PrimarySink,
) -> Result<usize> {
    let mut r = quick_xml::Reader::from_reader(input);
    let mut buf = Vec::new();
    let mut in_pkg = false;
    let mut list: Option<DepKind> = None;
    let mut text: Option<PrimaryText> = None;
    let mut evr = String::new();
    let mut count = 0;
    loop {
        let ev = r
            .read_event_into(&mut buf)
            .map_err(|e| xml_err(file, r.buffer_position(), e))?;
        match ev {
            Event::Start(e) | Event::Empty(e) => {
                let name = e.local_name();
                let name = name.as_ref();
                match name {
                    b"package" => {
                        in_pkg = true;
                        sink.start();
                    }
                    _ if !in_pkg => {}
                    b"name" => text = Some(PrimaryText::Name),
                    b"arch" => text = Some(PrimaryText::Arch),
                    b"file" => text = Some(PrimaryText::File),
                    b"checksum" => {
                        sink.checksum_type(&attr(&e, b"type").unwrap_or_default());
                        text = Some(PrimaryText::Checksum);
                    }
                    b"version" => {
                        let (mut epoch, mut ver, mut rel) =
                            (0, Cow::Borrowed(""), Cow::Borrowed(""));
                        for a in e.attributes().with_checks(false).flatten() {
                            match a.key.as_ref() {
                                b"epoch" => {
                                    epoch = std::str::from_utf8(&a.value)
                                        .ok()
                                        .and_then(|s| s.parse().ok())
                                        .unwrap_or(0)
                                }
                                b"ver" => ver = attr_cow(a.value),
                                b"rel" => rel = attr_cow(a.value),
                                _ => {}
                            }
                        }
                        sink.version(epoch, &ver, &rel);
                    }
                    b"location" => sink.href(&attr(&e, b"href").unwrap_or_default()),
                    b"size" => sink.size(
                        attr(&e, b"package")
                            .and_then(|s| s.parse().ok())
                            .unwrap_or(0),
                    ),
                    b"provides" => list = Some(DepKind::Provides),
                    b"requires" => list = Some(DepKind::Requires),
                    b"conflicts" => list = Some(DepKind::Conflicts),
                    b"obsoletes" => list = Some(DepKind::Obsoletes),
                    b"recommends" => list = Some(DepKind::Recommends),
                    b"suggests" => list = Some(DepKind::Suggests),
                    b"supplements" => list = Some(DepKind::Supplements),
                    b"enhances" => list = Some(DepKind::Enhances),
                    b"entry" => {
                        if let Some(kind) = list {
                            entry_dep(&e, kind, &mut evr, sink);
                        }
                    }
                    _ => {}
                }
            }
            Event::Text(t) => {
                if let (Some(which), true) = (text, in_pkg) {
                    let s = t
                        .unescape()
                        .map_err(|e| xml_err(file, r.buffer_position(), e))?;
                    match which {
                        PrimaryText::Checksum => sink.text(which, s.trim()),
                        _ => sink.text(which, &s),
                    }
                }
            }
            Event::End(e) => {
                text = None;
                match e.local_name().as_ref() {
                    b"package" if in_pkg => {
                        in_pkg = false;
                        sink.end();
                        count += 1;
                    }
                    b"provides" | b"requires" | b"conflicts" | b"obsoletes" | b"recommends"
                    | b"suggests" | b"supplements" | b"enhances" => list = None,
                    _ => {}
                }
            }
            Event::Eof => break,
            _ => {}
        }
        buf.clear();
    }
    Ok(count)
}

fn entry_dep(e: &BytesStart<'_>, kind: DepKind, evr: &mut String, sink: &mut impl PrimarySink) {
    // One pass over the attributes (this runs for every dependency of every package).
    let mut name: Cow<'_, str> = Cow::Borrowed("");
    let mut sense = Sense::ANY;
    // Borrowed from the event buffer: no allocation unless unescaping.
    let mut epoch: Cow<'_, [u8]> = Cow::Borrowed(b"");
    let mut ver: Cow<'_, [u8]> = Cow::Borrowed(b"");
    let mut rel: Option<Cow<'_, [u8]>> = None;
    let mut pre = false;
    for a in e.attributes().with_checks(false).flatten() {
        match a.key.as_ref() {
            b"name" => name = attr_cow(a.value),
            b"flags" => {
                sense = std::str::from_utf8(&a.value)
                    .ok()
                    .and_then(Sense::parse)
                    .unwrap_or(Sense::ANY)
            }
            b"epoch" => epoch = a.value,
            b"ver" => ver = a.value,
            b"rel" => rel = Some(a.value),
            b"pre" => pre = matches!(a.value.as_ref(), b"1" | b"true"),
            _ => {}
        }
    }
    evr.clear();
    if sense.is_versioned() {
        if !epoch.is_empty() && *epoch != *b"0" {
            push_attr(evr, &epoch);
            evr.push(':');
        }
        push_attr(evr, &ver);
        if let Some(rel) = rel {
            evr.push('-');
            push_attr(evr, &rel);
        }
    }
    let flags = if pre {
        crate::header::sense_flags::PREREQ
    } else {
        0
    };
    sink.dep(kind, &name, sense, evr, flags);
}

/// Streams `filelists.xml` and calls `sink(pkgid, files)` per package.
pub fn parse_filelists(
    input: impl BufRead,
    file: &str,
    mut sink: impl FnMut(&str, Vec<String>),
) -> Result<()> {
    let mut r = quick_xml::Reader::from_reader(input);
    let mut buf = Vec::new();
    let mut pkgid: Option<String> = None;
    let mut files = Vec::new();
    let mut in_file = false;
    loop {
        let ev = r
            .read_event_into(&mut buf)
            .map_err(|e| xml_err(file, r.buffer_position(), e))?;
        match ev {
            Event::Start(e) => match e.local_name().as_ref() {
                b"package" => {
                    pkgid = attr(&e, b"pkgid");
                    files.clear();
                }
                b"file" => in_file = true,
                _ => {}
            },
            Event::Text(t) if in_file => {
                let s = t
                    .unescape()
                    .map_err(|e| xml_err(file, r.buffer_position(), e))?;
                files.push(s.into_owned());
            }
            Event::End(e) => match e.local_name().as_ref() {
                b"file" => in_file = false,
                b"package" => {
                    if let Some(id) = pkgid.take() {
                        sink(&id, std::mem::take(&mut files));
                    }
                }
                _ => {}
            },
            Event::Eof => break,
            _ => {}
        }
        buf.clear();
    }
    Ok(())
}

/// Verifies `data` against a record's checksum.
pub fn verify_record(rec: &RepomdRecord, data: &[u8], what: &str) -> Result<()> {
    match checksum_hex(&rec.checksum_type, data) {
        Some(actual) if actual.eq_ignore_ascii_case(&rec.checksum) => Ok(()),
        Some(actual) => Err(Error::ChecksumMismatch {
            what: what.to_owned(),
            expected: rec.checksum.clone(),
            actual,
        }),
        None => Err(Error::Parse {
            file: what.to_owned(),
            line: 0,
            reason: format!("unsupported checksum type {:?}", rec.checksum_type),
        }),
    }
}

/// Reads a compressed metadata file from disk, verifies its checksum while reading,
/// and streams it decompressed into `f`.
pub fn read_verified<T>(
    path: &Path,
    rec: &RepomdRecord,
    f: impl FnOnce(Box<dyn BufRead + '_>) -> Result<T>,
) -> Result<T> {
    struct HashingReader<R> {
        inner: R,
        hasher: sha2::Sha256,
    }
    impl<R: Read> Read for HashingReader<R> {
        fn read(&mut self, buf: &mut [u8]) -> std::io::Result<usize> {
            let n = self.inner.read(buf)?;
            self.hasher.update(&buf[..n]);
            Ok(n)
        }
    }
    let what = path.display().to_string();
    if rec.checksum_type != "sha256" {
        // Uncommon: hash the whole file up front.
        let data = std::fs::read(path).map_err(|e| Error::io("reading", path, e))?;
        verify_record(rec, &data, &what)?;
        let r = decompress(std::io::Cursor::new(data))
            .map_err(|e| Error::io("decompressing", path, e))?;
        return f(r);
    }
    let file = std::fs::File::open(path).map_err(|e| Error::io("opening", path, e))?;
    // Reading, hashing and decompressing run on their own thread, feeding the
    // parser chunks of decompressed XML: the two halves overlap on two cores.
    let (tx, rx) = std::sync::mpsc::sync_channel::<std::io::Result<Vec<u8>>>(8);
    let (out, digest) = std::thread::scope(|scope| {
        let producer = scope.spawn(move || -> std::io::Result<String> {
            let mut hr = HashingReader {
                inner: file,
                hasher: sha2::Sha256::new(),
            };
            {
                let br = BufReader::with_capacity(1 << 17, &mut hr);
                let mut r = decompress(br)?;
                loop {
                    let mut chunk = vec![0u8; 1 << 18];
                    let mut filled = 0;
                    while filled < chunk.len() {
                        match r.read(&mut chunk[filled..]) {
                            Ok(0) => break,
                            Ok(n) => filled += n,
                            Err(e) if e.kind() == std::io::ErrorKind::Interrupted => {}
                            Err(e) => {
                                let _ = tx.send(Err(std::io::Error::new(e.kind(), e.to_string())));
                                return Err(e);
                            }
                        }
                    }
                    if filled == 0 {
                        break;
                    }
                    chunk.truncate(filled);
                    if tx.send(Ok(chunk)).is_err() {
                        // The parser stopped early (an error); nothing more to do.
                        return Ok(String::new());
                    }
                }
            }
            drop(tx);
            // Drain anything the decompressor did not consume so the digest covers the file.
            std::io::copy(&mut hr, &mut std::io::sink())?;
            Ok(hex::encode(hr.hasher.finalize()))
        });
        let reader = ChunkReader {
            rx,
            cur: Vec::new(),
            pos: 0,
        };
        let out = f(Box::new(reader));
        let digest = producer
            .join()
            .unwrap_or_else(|_| Err(std::io::Error::other("decompression thread panicked")));
        (out, digest)
    });
    let out = out?;
    let actual = digest.map_err(|e| Error::io("reading", path, e))?;
    if !actual.eq_ignore_ascii_case(&rec.checksum) {
        return Err(Error::ChecksumMismatch {
            what,
            expected: rec.checksum.clone(),
            actual,
        });
    }
    Ok(out)
}

/// A `BufRead` over chunks arriving on a channel.
struct ChunkReader {
    rx: std::sync::mpsc::Receiver<std::io::Result<Vec<u8>>>,
    cur: Vec<u8>,
    pos: usize,
}

impl Read for ChunkReader {
    fn read(&mut self, buf: &mut [u8]) -> std::io::Result<usize> {
        let avail = self.fill_buf()?;
        let n = avail.len().min(buf.len());
        buf[..n].copy_from_slice(&avail[..n]);
        self.consume(n);
        Ok(n)
    }
}

impl BufRead for ChunkReader {
    fn fill_buf(&mut self) -> std::io::Result<&[u8]> {
        while self.pos >= self.cur.len() {
            match self.rx.recv() {
                Ok(Ok(chunk)) => {
                    self.cur = chunk;
                    self.pos = 0;
                }
                Ok(Err(e)) => return Err(e),
                Err(_) => {
                    self.cur.clear();
                    self.pos = 0;
                    return Ok(&[]);
                }
            }
        }
        Ok(&self.cur[self.pos..])
    }

    fn consume(&mut self, amt: usize) {
        self.pos = (self.pos + amt).min(self.cur.len());
    }
}

/// Joins filelists into packages by pkgid (checksum).
pub fn merge_filelists(pkgs: &mut [RepoPackage], lists: HashMap<String, Vec<String>>) {
    for p in pkgs {
        if let Some(f) = lists.get(&p.checksum) {
            p.files = f.clone();
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const REPOMD: &str = r#"<?xml version="1.0" encoding="UTF-8"?>
<repomd xmlns="http://linux.duke.edu/metadata/repo" xmlns:rpm="http://linux.duke.edu/metadata/rpm">
  <revision>1700000000</revision>
  <data type="primary">
    <checksum type="sha256">abc</checksum>
    <open-checksum type="sha256">def</open-checksum>
    <location href="repodata/abc-primary.xml.zst"/>
    <size>123</size>
  </data>
  <data type="filelists">
    <checksum type="sha256">f00</checksum>
    <location href="repodata/f00-filelists.xml.gz"/>
  </data>
</repomd>"#;

    const PRIMARY: &str = r#"<?xml version="1.0" encoding="UTF-8"?>
<metadata xmlns="http://linux.duke.edu/metadata/common" xmlns:rpm="http://linux.duke.edu/metadata/rpm" packages="2">
<package type="rpm">
  <name>foo</name><arch>x86_64</arch>
  <version epoch="1" ver="2.0" rel="3"/>
  <checksum type="sha256" pkgid="YES">aaa</checksum>
  <location href="Packages/foo-2.0-3.x86_64.rpm"/>
  <size package="1000" installed="10" archive="20"/>
  <format>
    <rpm:provides><rpm:entry name="foo" flags="EQ" epoch="1" ver="2.0" rel="3"/><rpm:entry name="libfoo.so()(64bit)"/></rpm:provides>
    <rpm:requires><rpm:entry name="/bin/sh" pre="1"/><rpm:entry name="bar" flags="GE" epoch="0" ver="1.0"/></rpm:requires>
    <rpm:conflicts><rpm:entry name="baz" flags="LT" epoch="0" ver="2"/></rpm:conflicts>
    <rpm:recommends><rpm:entry name="(a &amp; b)"/></rpm:recommends>
    <file>/usr/bin/foo</file>
  </format>
</package>
<package type="rpm"><name>bar</name><arch>noarch</arch><version epoch="0" ver="1.0" rel="1"/>
<checksum type="sha256" pkgid="YES">bbb</checksum><location href="bar.rpm"/><format/></package>
</metadata>"#;

    #[test]
    fn repomd_records() {
        let md = parse_repomd(REPOMD.as_bytes(), "repomd.xml").unwrap();
        assert_eq!(md.revision, "1700000000");
        let p = md.record("primary").unwrap();
        assert_eq!(p.href, "repodata/abc-primary.xml.zst");
        assert_eq!(
            (p.checksum_type.as_str(), p.checksum.as_str()),
            ("sha256", "abc")
        );
        assert_eq!(p.size, Some(123));
        assert_eq!(md.record("filelists").unwrap().checksum, "f00");
        assert!(parse_repomd(b"<repomd/>", "x").is_err());
        assert!(parse_repomd(b"<repomd><data", "x").is_err());
    }

    #[test]
    fn primary_packages_and_deps() {
        let mut pkgs = Vec::new();
        let n = parse_primary(PRIMARY.as_bytes(), "primary.xml", |p| pkgs.push(p)).unwrap();
        assert_eq!(n, 2);
        let foo = &pkgs[0];
        assert_eq!(foo.nevra(), "foo-1:2.0-3.x86_64");
        assert_eq!(foo.href, "Packages/foo-2.0-3.x86_64.rpm");
        assert_eq!(foo.size, 1000);
        let shown: Vec<String> = foo.provides.iter().map(|d| d.to_string()).collect();
        assert_eq!(shown, ["foo = 1:2.0-3", "libfoo.so()(64bit)"]);
        assert!(foo.requires[0].is_pre());
        assert_eq!(foo.requires[1].to_string(), "bar >= 1.0");
        assert_eq!(foo.conflicts[0].to_string(), "baz < 2");
        assert_eq!(foo.recommends[0].name, "(a & b)");
        assert_eq!(foo.files, ["/usr/bin/foo"]);
        assert_eq!(pkgs[1].nevra(), "bar-1.0-1.noarch");
    }

    #[test]
    fn decompression_by_magic() {
        use std::io::Write;
        let data = b"<x>hello</x>".repeat(100);
        let gz = {
            let mut e = flate2::write::GzEncoder::new(Vec::new(), flate2::Compression::default());
            e.write_all(&data).unwrap();
            e.finish().unwrap()
        };
        let xz = {
            let mut e = liblzma::write::XzEncoder::new(Vec::new(), 6);
            e.write_all(&data).unwrap();
            e.finish().unwrap()
        };
        let zst = zstd::stream::encode_all(&data[..], 3).unwrap();
        let bz = {
            let mut e = bzip2::write::BzEncoder::new(Vec::new(), bzip2::Compression::default());
            e.write_all(&data).unwrap();
            e.finish().unwrap()
        };
        for (name, c) in [
            ("gz", gz),
            ("xz", xz),
            ("zst", zst),
            ("bz2", bz),
            ("raw", data.clone()),
        ] {
            let mut out = Vec::new();
            decompress(&c[..]).unwrap().read_to_end(&mut out).unwrap();
            assert_eq!(out, data, "{name}");
        }
    }
}
